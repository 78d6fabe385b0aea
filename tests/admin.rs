//! Probes over the AdminServer, against real ZooKeeper 3.8 servers that run
//! it (Debian's Jetty 9.4 and Jackson on the classpath) with the words
//! whitelisted as 3.5+ does by default: `srvr` only.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use zkparity_sandbox::{Ensemble, Guarded, ServerOptions, ZkServer};

fn hardened() -> ServerOptions {
    ServerOptions {
        admin_server: true,
        four_letter_words: "srvr".into(),
        heap_mb: 256,
        ..ServerOptions::default()
    }
}

struct Servers {
    a: ZkServer,
    b: ZkServer,
    quorum: Ensemble,
}

/// Two standalone servers and a 3-node ensemble, each with its
/// AdminServer and the default whitelist; shared by the binary's tests.
fn servers() -> &'static Servers {
    static S: OnceLock<Servers> = OnceLock::new();
    S.get_or_init(|| {
        let q = std::thread::spawn(|| Ensemble::start(3, &hardened()));
        let a = ZkServer::start_standalone(&hardened()).expect("server a");
        let b = ZkServer::start_standalone(&hardened()).expect("server b");
        let quorum = q.join().expect("join").expect("ensemble");
        Servers { a, b, quorum }
    })
}

fn admin_port(s: &ZkServer) -> String {
    s.admin_port().expect("an AdminServer").to_string()
}

async fn probe_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["probe", "--format", "json", "--timeout", "5s"];
    all.extend_from_slice(args);
    let r = run(&all).await;
    let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", ctx(&r)));
    (r.code, v)
}

fn words(server: &Value, key: &str) -> Vec<String> {
    server[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn what_the_whitelist_refuses_is_read_from_the_admin_server() {
    let s = servers();
    let (code, v) = probe_json(&[
        "--source",
        &s.a.connect_string(),
        "--source-admin-port",
        &admin_port(&s.a),
    ])
    .await;
    assert_eq!(code, 0, "{v:#}");
    let server = &v["source"]["servers"][0];
    assert_eq!(server["state"]["kind"], "up", "{server:#}");
    assert_eq!(
        words(server, "admin_words"),
        ["mntr", "isro", "ruok", "conf", "wchs", "envi"],
        "srvr answered over the client port; the rest came from the AdminServer"
    );
    assert!(server["ephemerals"].is_u64(), "mntr's numbers: {server:#}");
    assert!(server["open_fds"].is_u64(), "{server:#}");
    assert_eq!(server["ruok"], true);
    assert!(server["java_version"].is_string(), "envi's: {server:#}");
    assert!(
        v["source"]["unchecked"]
            .as_array()
            .is_some_and(|u| u.is_empty()),
        "nothing left unchecked: {:#}",
        v["source"]["unchecked"]
    );

    // The text says which way each server was read.
    let r = run(&[
        "probe",
        "--source",
        &s.a.connect_string(),
        "--source-admin-port",
        &admin_port(&s.a),
    ])
    .await;
    assert!(
        r.stdout
            .contains("read through its AdminServer: mntr, isro, ruok, conf, wchs, envi"),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn probe_via_4lw_leaves_refused_words_unchecked_as_before() {
    let s = servers();
    let (code, v) = probe_json(&[
        "--source",
        &s.a.connect_string(),
        "--source-admin-port",
        &admin_port(&s.a),
        "--probe-via",
        "4lw",
    ])
    .await;
    assert_eq!(code, 0, "{v:#}");
    let server = &v["source"]["servers"][0];
    assert_eq!(server["admin_words"], serde_json::json!([]), "{server:#}");
    assert!(server["ephemerals"].is_null(), "{server:#}");
    assert_eq!(server["words"]["mntr"]["status"], "refused");
    let unchecked = v["source"]["unchecked"].to_string();
    assert!(unchecked.contains("refuses mntr"), "{unchecked}");
}

#[tokio::test]
async fn probe_via_admin_reads_every_fact_from_the_admin_server_alone() {
    let s = servers();
    let (code, v) = probe_json(&[
        "--source",
        &s.a.connect_string(),
        "--source-admin-port",
        &admin_port(&s.a),
        "--probe-via",
        "admin",
    ])
    .await;
    assert_eq!(code, 0, "{v:#}");
    let server = &v["source"]["servers"][0];
    assert_eq!(words(server, "admin_words").len(), 7, "{server:#}");
    assert_eq!(server["mode"], "standalone");
    assert!(
        server["zxid"].is_u64() || server["zxid"].is_string(),
        "{server:#}"
    );
    assert!(server["znodes"].is_u64(), "{server:#}");
}

#[tokio::test]
async fn a_server_that_offers_neither_way_is_unknown_with_the_reason() {
    let s = servers();
    let dead = dead_port().to_string();
    let r = run(&[
        "check",
        "counts",
        "--source",
        &s.a.connect_string(),
        "--target",
        &s.b.connect_string(),
        "--probe-via",
        "admin",
        "--source-admin-port",
        &dead,
        "--target-admin-port",
        &admin_port(&s.b),
    ])
    .await;
    assert_eq!(r.code, 3, "{}", ctx(&r));
    assert!(
        r.stdout.starts_with("ZKPARITY COUNTS UNKNOWN"),
        "{}",
        r.stdout
    );

    let (code, v) = probe_json(&[
        "--source",
        &s.a.connect_string(),
        "--source-admin-port",
        &dead,
        "--probe-via",
        "admin",
    ])
    .await;
    assert_eq!(code, 1, "a server read by nobody is unhealthy: {v:#}");
    let server = &v["source"]["servers"][0];
    assert_eq!(server["state"]["kind"], "down", "{server:#}");
    assert!(
        server["admin_error"]
            .as_str()
            .is_some_and(|e| e.contains("connection refused")),
        "{server:#}"
    );
}

#[tokio::test]
async fn check_counts_reads_both_ensembles_through_their_admin_servers() {
    let s = servers();
    let (pa, pb) = (admin_port(&s.a), admin_port(&s.b));
    let args = |via: &'static str| {
        vec![
            "check".to_string(),
            "counts".into(),
            "--source".into(),
            s.a.connect_string(),
            "--target".into(),
            s.b.connect_string(),
            "--source-admin-port".into(),
            pa.clone(),
            "--target-admin-port".into(),
            pb.clone(),
            "--probe-via".into(),
            via.into(),
        ]
    };
    // With the words alone, mntr's ephemeral count is refused: no answer.
    let four: Vec<String> = args("4lw");
    let r = run(&four.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(r.code, 3, "{}", ctx(&r));
    let auto: Vec<String> = args("auto");
    let r = run(&auto.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert!(r.stdout.starts_with("ZKPARITY COUNTS OK"), "{}", ctx(&r));
    assert!(r.stdout.contains('|'), "perfdata: {}", r.stdout);
}

#[tokio::test]
async fn a_quorum_is_read_through_each_members_admin_server() {
    let s = servers();
    let connect = s.quorum.connect_string();
    let ports: Vec<String> = s.quorum.servers.iter().map(admin_port).collect();
    let ports = ports.join(",");
    let (code, v) = probe_json(&["--source", &connect, "--source-admin-port", &ports]).await;
    assert_eq!(code, 0, "{v:#}");
    let view = &v["source"];
    assert_eq!(view["healthy"], true, "{view:#}");
    assert_eq!(view["leaders"], 1);
    assert_eq!(view["synced_followers"], 2, "the leader's mntr: {view:#}");
    for server in view["servers"].as_array().expect("servers") {
        assert!(words(server, "admin_words").contains(&"conf".to_string()));
        assert_eq!(
            server["members"].as_array().map(Vec::len),
            Some(3),
            "voting_view's members: {server:#}"
        );
    }
    let r = run(&[
        "check",
        "health",
        "--source",
        &connect,
        "--source-admin-port",
        &ports,
    ])
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));

    // A list that does not match the servers is a usage error.
    let r = run(&["probe", "--source", &connect, "--source-admin-port", "1,2"]).await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(r.stderr.contains("--source-admin-port"), "{}", r.stderr);
}

#[tokio::test]
async fn the_agents_probes_read_the_admin_server_and_prometheus_shows_it() {
    let s = servers();
    let dir = tempfile::tempdir().expect("temp dir");
    let metrics_port = zkparity_sandbox::free_ports(1).expect("port")[0];
    let config = format!(
        "state_dir = {:?}\nprobe_interval = \"1s\"\n[prometheus]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
         [[pair]]\nname = \"hardened\"\nsource = {:?}\ntarget = {:?}\n\
         source_admin_port = {}\ntarget_admin_port = [{}]\ninterval = \"2s\"\n",
        dir.path(),
        s.a.connect_string(),
        s.b.connect_string(),
        admin_port(&s.a),
        admin_port(&s.b),
    );
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, config).expect("config");
    let log = std::fs::File::create(dir.path().join("agent.log")).expect("log");
    let mut agent = Guarded::spawn(agent_command(&file).stderr(log)).expect("agent");
    let probe_file: PathBuf = dir.path().join("hardened.probe.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let report: Value = loop {
        let v = std::fs::read_to_string(&probe_file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        if let Some(v) = v {
            break v;
        }
        assert!(
            matches!(agent.try_wait(), Ok(None)) && Instant::now() < deadline,
            "no probe file: {}",
            std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for side in ["source", "target"] {
        let server = &report[side]["servers"][0];
        assert!(
            words(server, "admin_words").contains(&"mntr".to_string()),
            "{side}: {server:#}"
        );
    }
    let metrics = tokio::task::spawn_blocking(move || scrape_metrics(metrics_port))
        .await
        .unwrap_or_default();
    assert!(
        metrics.contains("zkparity_server_ephemerals{pair=\"hardened\",side=\"target\""),
        "mntr's numbers reach Prometheus: {metrics}"
    );
    let _ = agent.signal(libc::SIGTERM);
    let _ = agent.wait();
}

#[tokio::test]
async fn admin_ports_that_do_not_match_the_servers_are_a_config_error() {
    let s = servers();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("agent.toml");
    std::fs::write(
        &file,
        format!(
            "state_dir = {:?}\n[[pair]]\nname = \"x\"\nsource = {:?}\ntarget = {:?}\n\
             source_admin_port = [1, 2]\n",
            dir.path(),
            s.a.connect_string(),
            s.b.connect_string()
        ),
    )
    .expect("config");
    let r = run(&[
        "agent",
        "--check-config",
        "--config",
        &file.display().to_string(),
    ])
    .await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr.contains("pair[0].source_admin_port"),
        "{}",
        r.stderr
    );
}
