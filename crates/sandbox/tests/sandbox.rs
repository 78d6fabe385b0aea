//! The sandbox against real ZooKeeper 3.8.0 servers (Debian's jars): each
//! kind of server is started once, since JVM startup dominates the run time.

use std::path::Path;
use std::time::{Duration, Instant};

use zkparity_sandbox::{four_letter_word, Ensemble, SandboxError, ServerOptions, ZkServer};
use zookeeper_client as zk;

const FLW_TIMEOUT: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Whether a process with this PID exists (a zombie counts as gone).
fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Live (non-zombie) processes in the process group led by `pgid`: the JVM
/// and its watchdog share one. Zombies are left out: orphans are reaped by
/// init, which may take a while.
fn live_group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After "comm)": state ppid pgrp ...
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
        })
        .collect()
}

/// Polls: the watchdog notices its JVM is gone within half a second.
fn group_gone_within(pgid: u32, timeout: Duration) -> bool {
    let t = Instant::now();
    loop {
        if live_group_members(pgid).is_empty() {
            return true;
        }
        if t.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn conf_line(conf: &str, key: &str) -> Option<String> {
    conf.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
}

#[test]
fn standalone_server_serves_restarts_and_stops_cleanly() {
    let opts = ServerOptions {
        heap_mb: 256,
        jute_maxbuffer: Some(8 << 20),
        extra_config: vec![("minSessionTimeout".to_string(), "1200".to_string())],
        ..ServerOptions::default()
    };
    let t = Instant::now();
    let mut server = ZkServer::start_standalone(&opts).expect("standalone server starts");
    eprintln!("standalone server serving after {:?}", t.elapsed());
    let addr = server.connect_string();
    assert_eq!(addr, format!("127.0.0.1:{}", server.port()));
    assert!(server.is_running());

    let ruok = four_letter_word(&addr, "ruok", FLW_TIMEOUT).expect("ruok");
    assert_eq!(ruok, "imok");
    let srvr = four_letter_word(&addr, "srvr", FLW_TIMEOUT).expect("srvr");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert!(srvr.contains("Zookeeper version: 3.8.0"), "{srvr}");
    let conf = four_letter_word(&addr, "conf", FLW_TIMEOUT).expect("conf");
    assert_eq!(
        conf_line(&conf, "clientPort"),
        Some(server.port().to_string())
    );
    assert_eq!(conf_line(&conf, "tickTime").as_deref(), Some("500"));
    assert_eq!(
        conf_line(&conf, "minSessionTimeout").as_deref(),
        Some("1200")
    );
    let dir = server.dir().to_path_buf();
    assert!(server.data_dir().join("version-2").is_dir());
    assert!(server.data_dir().starts_with(&dir));

    // A znode written before the restart proves the dataDir was kept.
    let rt = runtime();
    rt.block_on(async {
        let client = zk::Client::connect(&addr).await.expect("connect");
        let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        client
            .create("/kept", b"across restarts", &opts)
            .await
            .expect("create");
    });

    let port = server.port();
    let old_pid = server.pid().expect("pid");
    let t = Instant::now();
    server.restart().expect("restart");
    eprintln!("standalone restart (stop + start) took {:?}", t.elapsed());
    assert_eq!(server.port(), port);
    let new_pid = server.pid().expect("pid");
    assert_ne!(new_pid, old_pid);
    assert!(!process_exists(old_pid), "old JVM {old_pid} still exists");
    let srvr = four_letter_word(&addr, "srvr", FLW_TIMEOUT).expect("srvr after restart");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    rt.block_on(async {
        let client = zk::Client::connect(&addr).await.expect("reconnect");
        let (data, _) = client.get_data("/kept").await.expect("znode kept");
        assert_eq!(data, b"across restarts");
    });

    // kill() is a crash: the next restart must cope with it.
    server.kill();
    assert!(!server.is_running());
    assert!(!process_exists(new_pid));
    assert!(group_gone_within(new_pid, Duration::from_secs(2)));
    server.restart().expect("restart after kill");
    let pid = server.pid().expect("pid");
    assert!(four_letter_word(&addr, "ruok", FLW_TIMEOUT).is_ok());

    server.stop();
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    assert!(!process_exists(pid), "JVM {pid} survived stop()");
    assert!(
        group_gone_within(pid, Duration::from_secs(2)),
        "watchdog of {pid} survived stop()"
    );
    assert!(four_letter_word(&addr, "ruok", Duration::from_millis(500)).is_err());
    server.stop(); // idempotent

    drop(server);
    assert!(!dir.exists(), "temp dir {} left behind", dir.display());
}

#[test]
fn three_node_ensemble_has_exactly_one_leader() {
    let opts = ServerOptions {
        heap_mb: 256,
        ..ServerOptions::default()
    };
    let t = Instant::now();
    let mut ensemble = Ensemble::start(3, &opts).expect("ensemble starts");
    eprintln!(
        "3-node ensemble serving with a leader after {:?}",
        t.elapsed()
    );
    assert_eq!(ensemble.servers.len(), 3);

    let mut modes = Vec::new();
    for server in &ensemble.servers {
        let srvr = four_letter_word(&server.connect_string(), "srvr", FLW_TIMEOUT).expect("srvr");
        assert!(srvr.contains("Zookeeper version: 3.8.0"), "{srvr}");
        let mode = srvr
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .expect("mode")
            .to_string();
        let conf = four_letter_word(&server.connect_string(), "conf", FLW_TIMEOUT).expect("conf");
        assert_eq!(
            conf_line(&conf, "clientPort"),
            Some(server.port().to_string())
        );
        modes.push(mode);
    }
    modes.sort();
    assert_eq!(modes, ["follower", "follower", "leader"]);

    let connect = ensemble.connect_string();
    let parts: Vec<&str> = connect.split(',').collect();
    assert_eq!(parts.len(), 3);
    for (part, server) in parts.iter().zip(&ensemble.servers) {
        assert_eq!(*part, server.connect_string());
    }
    let dirs: Vec<_> = ensemble
        .servers
        .iter()
        .map(|s| s.dir().to_path_buf())
        .collect();
    for (i, server) in ensemble.servers.iter().enumerate() {
        let myid = std::fs::read_to_string(server.data_dir().join("myid")).expect("myid");
        assert_eq!(myid.trim(), (i + 1).to_string());
    }

    // The whole connect string works for a client, and sees the quorum config.
    runtime().block_on(async {
        let client = zk::Client::connect(&connect).await.expect("connect");
        let (config, _) = client.get_config().await.expect("config");
        let config = String::from_utf8_lossy(&config);
        for server in &ensemble.servers {
            assert!(
                config.contains(&format!("participant;127.0.0.1:{}", server.port())),
                "{config}"
            );
        }
    });

    // Losing the leader: the other two elect a new one, and the old leader
    // comes back as a follower on its old port.
    let leader = ensemble.leader().expect("a leader");
    let t = Instant::now();
    ensemble.servers[leader].kill();
    let new_leader = ensemble
        .wait_for_leader(Duration::from_secs(20))
        .expect("re-election");
    eprintln!(
        "re-election after killing the leader took {:?}",
        t.elapsed()
    );
    assert_ne!(new_leader, leader);
    ensemble.servers[leader]
        .restart()
        .expect("old leader rejoins");
    let again = ensemble
        .wait_for_leader(Duration::from_secs(20))
        .expect("leader after rejoin");
    assert_eq!(again, new_leader);
    assert_eq!(ensemble.servers[leader].mode().as_deref(), Some("follower"));

    let pids: Vec<u32> = ensemble.servers.iter().filter_map(|s| s.pid()).collect();
    assert_eq!(pids.len(), 3);
    let t = Instant::now();
    drop(ensemble);
    eprintln!("ensemble shutdown took {:?}", t.elapsed());
    for pid in pids {
        assert!(!process_exists(pid), "JVM {pid} survived the ensemble");
        assert!(group_gone_within(pid, Duration::from_secs(2)));
    }
    for dir in dirs {
        assert!(!dir.exists(), "temp dir {} left behind", dir.display());
    }
}

#[test]
fn bad_options_fail_before_any_jvm_starts() {
    let opts = ServerOptions {
        extra_config: vec![("clientPort".to_string(), "2181".to_string())],
        ..ServerOptions::default()
    };
    match ZkServer::start_standalone(&opts) {
        Err(SandboxError::ManagedConfigKey { key }) => assert_eq!(key, "clientPort"),
        other => panic!("expected ManagedConfigKey, got {other:?}"),
    }
    assert!(matches!(
        Ensemble::start(0, &ServerOptions::default()),
        Err(SandboxError::BadEnsembleSize { size: 0 })
    ));
}

#[test]
fn base_dir_is_kept_after_the_server_is_dropped() {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("zk");
    let opts = ServerOptions {
        heap_mb: 128,
        base_dir: Some(dir.clone()),
        ..ServerOptions::default()
    };
    let mut server = ZkServer::start_standalone(&opts).expect("server in base_dir");
    assert_eq!(server.dir(), dir);
    assert_eq!(server.data_dir(), dir.join("data"));

    // Someone else takes the port while the server is down: restart() says so.
    server.stop();
    let port = server.port();
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("take the port");
    match server.restart() {
        Err(SandboxError::PortTaken { port: p, tail, .. }) => {
            assert_eq!(p, port);
            assert!(tail.contains("Address already in use"), "{tail}");
        }
        other => panic!("expected PortTaken, got {other:?}"),
    }
    assert!(!server.is_running());
    drop(squatter);
    server.restart().expect("restart once the port is free");
    assert_eq!(server.port(), port);
    drop(server);
    assert!(Path::new(&dir).join("data/version-2").is_dir());
    let log = std::fs::read_to_string(dir.join("server.log")).expect("log");
    assert!(log.contains("zkparity sandbox: starting"), "{log}");
}
