//! `zkparity probe` and the probe library against real ZooKeeper 3.8.0
//! servers: a 3-node ensemble, a standalone server, a server with the default
//! whitelist, a stopped server, and a follower cut off from its quorum; plus
//! the parsers on captured outputs, and the TCP client against hand-made
//! misbehaving peers.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use zkparity::connect::ConnectString;
use zkparity::probe::{
    self, parse, EnsembleKind, EnsembleView, ProbeOptions, ProbeReport, ReasonCode, ServerProbe,
    ServerState, Verdict, Word, WordError, WordOutcome,
};
use zkparity_sandbox::tempdir::make_temp_dir;
use zkparity_sandbox::{
    self as sandbox, guarded_command, Ensemble, Guarded, ServerOptions, ZkServer,
};
use zookeeper_client as zk;

// ---------------------------------------------------------------------------
// Servers, started once for this binary.

/// A healthy 3-node ensemble.
fn ensemble() -> &'static Ensemble {
    static E: OnceLock<Ensemble> = OnceLock::new();
    E.get_or_init(|| Ensemble::start(3, &ServerOptions::default()).expect("ensemble"))
}

/// A standalone server with every word whitelisted (the sandbox default).
fn standalone() -> &'static ZkServer {
    static S: OnceLock<ZkServer> = OnceLock::new();
    S.get_or_init(|| ZkServer::start_standalone(&ServerOptions::default()).expect("standalone"))
}

/// Tests that write to the shared servers, or assert counts on them, take
/// turns.
static COUNTS_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A standalone server with ZooKeeper's default whitelist (only `srvr`).
///
/// The sandbox cannot start one: it writes `4lw.commands.whitelist=*`
/// into every zoo.cfg, because its readiness check needs `conf`, and
/// zoo.cfg wins over `-Dzookeeper.4lw.commands.whitelist`. So this test
/// runs the same jars itself, with a zoo.cfg that leaves the whitelist out.
struct DefaultWhitelistServer {
    port: u16,
    /// Never dropped (a static): the watchdog and the exit hook stop it and
    /// remove its directory.
    _jvm: Guarded,
}

impl DefaultWhitelistServer {
    fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn default_whitelist() -> &'static DefaultWhitelistServer {
    static S: OnceLock<DefaultWhitelistServer> = OnceLock::new();
    S.get_or_init(|| {
        let java = sandbox::find_java().expect("java");
        let classpath = sandbox::zookeeper_classpath().expect("zookeeper jars");
        let port = sandbox::free_ports(1).expect("port")[0];
        let dir = make_temp_dir("probe-default-whitelist").expect("tempdir");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\nforceSync=no\n",
                data.display()
            ),
        )
        .expect("zoo.cfg");
        let log = std::fs::File::create(dir.join("server.log")).expect("log");
        let jvm = Guarded::spawn(
            guarded_command(java, Some(&dir))
                .args([
                    "-Xmx256m",
                    "-XX:-UsePerfData",
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                    "-cp",
                    &classpath,
                    "org.apache.zookeeper.server.ZooKeeperServerMain",
                ])
                .arg(&cfg)
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
        )
        .expect("spawn java");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let srvr = sandbox::four_letter_word(&addr, "srvr", Duration::from_secs(1));
            if srvr
                .as_deref()
                .is_ok_and(|s| s.contains("Mode: standalone"))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "default-whitelist server never served: {srvr:?}; log: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        DefaultWhitelistServer { port, _jvm: jvm }
    })
}

// ---------------------------------------------------------------------------
// Helpers.

fn cstr(s: &str) -> ConnectString {
    ConnectString::parse(s).expect("connect string")
}

async fn view(connect_string: &str) -> EnsembleView {
    probe::probe_ensemble("source", &cstr(connect_string), &ProbeOptions::default()).await
}

fn server<'a>(v: &'a EnsembleView, address: &str) -> &'a ServerProbe {
    v.servers
        .iter()
        .find(|s| s.address == address)
        .unwrap_or_else(|| panic!("{address} not in {:#?}", v.servers))
}

fn codes(v: &EnsembleView) -> Vec<ReasonCode> {
    v.reasons.iter().map(|r| r.code).collect()
}

/// Starts the blocking servers off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

fn refusal(word: Word) -> String {
    format!("{word} is not executed because it is not in the whitelist.\n")
}

/// The answers a server in `role` gave to `words`, as captured
/// (`tests/fixtures/4lw/ROLE-WORD.txt`).
fn captured(role: &str, words: &[Word]) -> Vec<(Word, Option<Result<String, WordError>>)> {
    let answers: Vec<(Word, String)> = words
        .iter()
        .map(|&w| (w, captured_answer(&format!("{role}-{w}.txt"))))
        .collect();
    answered(&answers)
}

fn answered(answers: &[(Word, String)]) -> Vec<(Word, Option<Result<String, WordError>>)> {
    answers
        .iter()
        .map(|(w, a)| (*w, Some(Ok(a.clone()))))
        .collect()
}

/// Probes until every serving member agrees on the last zxid and the
/// znode count (a write reaches followers a moment after the leader).
async fn settled_view(connect_string: &str) -> EnsembleView {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = view(connect_string).await;
        let agreed = v.zxid.is_some_and(|z| z.spread == 0) && v.znode_spread == Some(0);
        if agreed || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// A healthy 3-node ensemble.

#[tokio::test]
async fn three_node_ensemble_shows_its_one_leader_and_two_synced_followers() {
    let _turn = COUNTS_TURN.lock().await;
    let (cs, addrs, leader) = blocking(|| {
        let e = ensemble();
        let addrs: Vec<String> = e.servers.iter().map(ZkServer::connect_string).collect();
        (e.connect_string(), addrs, e.leader().expect("a leader"))
    })
    .await;
    let v = settled_view(&cs).await;
    assert_eq!(v.kind, EnsembleKind::Quorum);
    assert_eq!(v.verdict, Verdict::Healthy, "{:#?}", v.reasons);
    assert!(v.healthy && v.reasons.is_empty());
    assert_eq!(v.leader.as_deref(), Some(addrs[leader].as_str()));
    assert_eq!((v.leaders, v.followers, v.observers), (1, 2, 0));
    assert_eq!(v.servers_serving, 3);
    assert_eq!(v.quorum_size, Some(3));
    assert_eq!(v.synced_followers, Some(2));
    assert_eq!(v.learners, Some(2));
    assert_eq!(v.pending_syncs, Some(0));
    assert_eq!(v.zxid.map(|z| z.spread), Some(0));
    assert_eq!(v.reference.as_deref(), Some(addrs[leader].as_str()));
    let mut ids = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let s = server(&v, addr);
        let want = if i == leader { "leader" } else { "follower" };
        assert_eq!(s.role(), want, "{addr}");
        assert_eq!(s.ruok, Some(true));
        assert_eq!(s.isro, Some(parse::Isro::ReadWrite));
        assert_eq!(
            s.version.as_ref().and_then(|v| v.release.as_deref()),
            Some("3.8.0")
        );
        assert!(
            s.words.values().all(|w| *w == WordOutcome::Answered),
            "{addr}: {:?}",
            s.words
        );
        // A 3.8 mntr is ~18 KB: all of it arrived, not the first 2 KB.
        assert!(s.mntr.len() > 450, "{addr}: {} mntr keys", s.mntr.len());
        assert_eq!(s.members.len(), 3);
        assert!(s.open_fds.is_some() && s.max_fds.is_some());
        assert!(s
            .peer_state
            .as_deref()
            .is_some_and(|p| p.ends_with("broadcast")));
        ids.push(s.server_id.expect("serverId"));
    }
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3]);
}

#[tokio::test]
async fn ensemble_counts_follow_writes_on_every_member() {
    let _turn = COUNTS_TURN.lock().await;
    let cs = blocking(|| ensemble().connect_string()).await;
    let before = settled_view(&cs).await;
    let c = connect(&cs).await;
    let root = unique_path("counts");
    tree(&c, &root, &[("a", b"12345"), ("b", b""), ("c", b"")]).await;
    c.create(&format!("{root}/e"), b"", &ephemeral())
        .await
        .expect("ephemeral");
    let (_, _, watch) = c
        .get_and_watch_data(&format!("{root}/a"))
        .await
        .expect("watch");
    let after = settled_view(&cs).await;
    assert_eq!(after.znodes, before.znodes.map(|n| n + 5), "{after:#?}");
    assert_eq!(after.ephemerals, before.ephemerals.map(|n| n + 1));
    assert_eq!(after.znode_spread, Some(0));
    assert_eq!(after.ephemeral_spread, Some(0));
    assert_eq!(after.zxid.map(|z| z.spread), Some(0));
    let grown = after.approx_data_size.unwrap() - before.approx_data_size.unwrap();
    assert!(grown >= 5, "data of /a alone is 5 bytes, grew {grown}");
    assert!(after.watches_total.unwrap() > before.watches_total.unwrap());
    assert!(after.healthy, "{:#?}", after.reasons);
    drop(watch);
}

#[tokio::test]
async fn cli_probe_prints_each_member_with_its_mode_and_exits_zero() {
    let (cs, addrs, leader) = blocking(|| {
        let e = ensemble();
        let addrs: Vec<String> = e.servers.iter().map(ZkServer::connect_string).collect();
        (e.connect_string(), addrs, e.leader().expect("a leader"))
    })
    .await;
    let r = run(&["probe", "--source", &cs]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("HEALTHY: quorum of 3 voters"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("leader {}", addrs[leader])),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("2 of 2 followers in sync"),
        "{}",
        r.stdout
    );
    for (i, addr) in addrs.iter().enumerate() {
        let row = r
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(addr.as_str()))
            .unwrap_or_else(|| panic!("no row for {addr}:\n{}", r.stdout));
        let mode = if i == leader { "leader" } else { "follower" };
        assert!(row.contains(mode) && row.contains("3.8.0"), "{row}");
    }
}

/// Field names listed in the tables of one section of docs/probe-json.md.
fn documented_fields(doc: &str, section: &str) -> Vec<String> {
    let heading = format!(" {section}\n");
    let start = doc
        .match_indices(&heading)
        .map(|(i, _)| i + heading.len())
        .find(|i| {
            doc[..*i]
                .rsplit('\n')
                .nth(1)
                .is_some_and(|l| l.starts_with('#'))
        })
        .unwrap_or_else(|| panic!("no section {section:?} in docs/probe-json.md"));
    let body = &doc[start..];
    let body = &body[..body.find("\n#").unwrap_or(body.len())];
    body.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[tokio::test]
async fn cli_json_carries_every_documented_field_and_nothing_undocumented() {
    let _turn = COUNTS_TURN.lock().await;
    let (e, s) = blocking(|| (ensemble().connect_string(), standalone().connect_string())).await;
    let r = run(&["probe", "--source", &e, "--target", &s, "--format", "json"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let json = r.json();
    let doc = std::fs::read_to_string(format!("{}/docs/probe-json.md", env!("CARGO_MANIFEST_DIR")))
        .expect("docs/probe-json.md");
    let leader = json["source"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["mode"] == "leader")
        .expect("a leader in the JSON");
    for (section, object) in [
        ("Top level", &json),
        ("Ensemble", &json["source"]),
        ("Server", leader),
        ("Parity", &json["parity"]),
        ("Side counts", &json["parity"]["source"]),
    ] {
        let want = documented_fields(&doc, section);
        let have: Vec<String> = object
            .as_object()
            .unwrap_or_else(|| panic!("{section}: not an object"))
            .keys()
            .cloned()
            .collect();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        let mut have_sorted = have.clone();
        have_sorted.sort();
        assert_eq!(have_sorted, want_sorted, "section {section:?}");
    }
    assert_eq!(json["source"]["kind"], "quorum");
    assert_eq!(json["target"]["kind"], "standalone");
    assert_eq!(json["parity"]["source"]["system_nodes"], 5);
    assert!(leader["zxid"].as_str().unwrap().starts_with("0x"));
    assert_eq!(leader["words"]["mntr"]["status"], "answered");
    assert!(leader["mntr"]["zk_avg_latency"].is_number());
    assert_eq!(leader["mntr"]["zk_server_state"], "leader");
}

// ---------------------------------------------------------------------------
// A standalone server, and one with the default whitelist.

#[tokio::test]
async fn standalone_server_is_a_healthy_ensemble_of_one() {
    let cs = blocking(|| standalone().connect_string()).await;
    let v = view(&cs).await;
    assert_eq!(v.kind, EnsembleKind::Standalone);
    assert!(v.healthy, "{:#?}", v.reasons);
    assert_eq!(v.leaders, 0);
    assert_eq!(v.quorum_size, None);
    let s = &v.servers[0];
    assert_eq!(s.mode, Some(parse::Mode::Standalone));
    assert_eq!(s.server_id, Some(0));
    assert_eq!(s.isro, Some(parse::Isro::ReadWrite));
    assert!(s.members.is_empty());
    assert_eq!(s.synced_followers, None, "leader-only keys stay None");
    assert!(s.java_version.is_some(), "envi answered");
    assert_eq!(v.reference.as_deref(), Some(cs.as_str()));
}

#[tokio::test]
async fn default_whitelist_server_reports_what_srvr_gives_and_the_rest_as_unchecked() {
    let cs = blocking(|| default_whitelist().connect_string()).await;
    let v = view(&cs).await;
    let s = &v.servers[0];
    assert_eq!(s.state, ServerState::Up);
    assert_eq!(s.mode, Some(parse::Mode::Standalone));
    assert!(s.zxid.is_some() && s.latency.is_some() && s.connections.is_some());
    assert_eq!(s.znodes, Some(5), "an empty 3.8 tree");
    assert_eq!(
        s.version.as_ref().and_then(|v| v.release.as_deref()),
        Some("3.8.0")
    );
    assert_eq!(s.words[&Word::Srvr], WordOutcome::Answered);
    for w in &Word::ALL[1..] {
        assert_eq!(s.words[w], WordOutcome::Refused, "{w}");
    }
    assert_eq!((s.ephemerals, s.open_fds, s.watches), (None, None, None));
    assert!(s.mntr.is_empty());
    // What srvr says is all healthy; what it cannot say is listed, not
    // counted against the server.
    assert!(v.healthy, "{:#?}", v.reasons);
    assert!(
        v.unchecked.iter().any(|u| u.contains("refuses mntr")),
        "{:?}",
        v.unchecked
    );
    let r = run(&["probe", "--source", &cs]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("not checked:"), "{}", r.stdout);
}

#[tokio::test]
async fn two_standalone_servers_in_one_connect_string_are_two_ensembles() {
    let (a, b) = blocking(|| {
        (
            standalone().connect_string(),
            default_whitelist().connect_string(),
        )
    })
    .await;
    let v = view(&format!("{a},{b}")).await;
    assert_eq!(v.kind, EnsembleKind::Standalone);
    assert_eq!(v.verdict, Verdict::Critical);
    assert_eq!(codes(&v), [ReasonCode::SeveralStandalone]);
}

#[tokio::test]
async fn standalone_listed_with_quorum_members_is_flagged_as_mixed() {
    let (e, s) = blocking(|| (ensemble().connect_string(), standalone().connect_string())).await;
    let v = view(&format!("{e},{s}")).await;
    assert_eq!(v.kind, EnsembleKind::Mixed);
    assert_eq!(v.verdict, Verdict::Critical);
    assert!(
        codes(&v).contains(&ReasonCode::MixedModes),
        "{:#?}",
        v.reasons
    );
}

#[tokio::test]
async fn a_server_listed_twice_is_probed_once() {
    let cs = blocking(|| standalone().connect_string()).await;
    let v = view(&format!("{cs},{cs}/chroot")).await;
    assert_eq!(v.servers_listed, 1);
    assert_eq!(v.connect, cs);
    assert!(v.healthy, "{:#?}", v.reasons);
}

// ---------------------------------------------------------------------------
// Counts across two ensembles.

#[tokio::test]
async fn parity_leaves_out_system_nodes_and_counts_ephemerals_apart() {
    let _turn = COUNTS_TURN.lock().await;
    let (src, tgt) =
        blocking(|| (ensemble().connect_string(), standalone().connect_string())).await;
    let opts = ProbeOptions::default();
    let both = || async {
        probe::probe(&cstr(&src), Some(&cstr(&tgt)), &opts)
            .await
            .parity
            .expect("parity with a target")
    };
    let before = both().await;
    assert_eq!(before.source.as_ref().unwrap().system_nodes, 5);
    assert_eq!(before.target.as_ref().unwrap().system_nodes, 5);

    let (s, t) = (connect(&src).await, connect(&tgt).await);
    let root = unique_path("parity");
    both_trees(&s, &t, &root).await;
    s.create(&format!("{root}/e1"), b"", &ephemeral())
        .await
        .unwrap();
    t.create(&format!("{root}/e1"), b"", &ephemeral())
        .await
        .unwrap();
    t.create(&format!("{root}/e2"), b"", &ephemeral())
        .await
        .unwrap();
    create(&t, &format!("{root}/extra"), b"x").await;
    // The leader counts a write before the probe reads it.
    settled_view(&src).await;
    let after = both().await;

    let shift = |b: Option<i64>, a: Option<i64>| a.unwrap() - b.unwrap();
    assert_eq!(shift(before.persistent_delta, after.persistent_delta), 1);
    assert_eq!(shift(before.ephemeral_delta, after.ephemeral_delta), 1);
    assert_eq!(shift(before.znode_delta, after.znode_delta), 2);
    let (bs, as_) = (before.source.unwrap(), after.source.unwrap());
    assert_eq!(as_.persistent.unwrap() - bs.persistent.unwrap(), 3);
    assert_eq!(as_.ephemerals.unwrap() - bs.ephemerals.unwrap(), 1);
    assert_eq!(after.counts_match, Some(after.persistent_delta == Some(0)));
    drop((s, t));
}

async fn both_trees(s: &zk::Client, t: &zk::Client, root: &str) {
    both(s, t, root, &[("a", b"1"), ("b", b"2")]).await;
}

// ---------------------------------------------------------------------------
// Failure states.

#[tokio::test]
async fn stopped_server_is_down_with_the_reason_and_makes_the_probe_exit_one() {
    let cs = blocking(|| {
        let mut s = ZkServer::start_standalone(&ServerOptions::default()).expect("standalone");
        s.stop();
        s.connect_string()
    })
    .await;
    let v = view(&cs).await;
    let s = &v.servers[0];
    assert!(
        matches!(
            &s.state,
            ServerState::Down { error: WordError::ConnectionRefused, reason } if reason == "connection refused"
        ),
        "{:?}",
        s.state
    );
    assert!(matches!(s.words[&Word::Srvr], WordOutcome::Failed { .. }));
    assert!(s
        .words
        .iter()
        .filter(|(w, _)| **w != Word::Srvr)
        .all(|(_, o)| *o == WordOutcome::Skipped));
    assert_eq!(v.kind, EnsembleKind::Unknown);
    assert_eq!(v.verdict, Verdict::Critical);
    assert_eq!(
        codes(&v),
        [ReasonCode::ServerDown, ReasonCode::NoServerServing]
    );
    assert!(
        v.reasons[0].message.contains(&cs),
        "{}",
        v.reasons[0].message
    );
    let r = run(&["probe", "--source", &cs]).await;
    assert_eq!(
        r.code, 1,
        "a down server is an answer: {}{}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.contains("CRITICAL"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains(&format!("{cs} is down: connection refused")),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn follower_cut_off_from_its_quorum_answers_imok_but_is_never_healthy() {
    // Read-only mode off: the cut-off follower stays "not serving" instead
    // of turning read-only after 2 s (a state the fixtures cover).
    let opts = ServerOptions {
        jvm_flags: vec!["-Dreadonlymode.enabled=false".to_string()],
        ..ServerOptions::default()
    };
    let mut e = blocking(move || Ensemble::start(3, &opts).expect("ensemble")).await;
    let cs = e.connect_string();
    let leader = e.leader().expect("leader");
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let addr = e.servers[follower].connect_string();
    assert!(view(&cs).await.healthy);

    let mut e = blocking(move || {
        for i in (0..3).filter(|i| *i != follower) {
            e.servers[i].kill();
        }
        e
    })
    .await;
    // While its server shuts down, answers may come back empty; from the
    // moment it stops being a follower, no probe may call it healthy.
    let deadline = Instant::now() + Duration::from_secs(15);
    let alone = loop {
        let v = view(&addr).await;
        let s = &v.servers[0];
        if s.mode != Some(parse::Mode::Follower) {
            assert!(!v.healthy, "{v:#?}");
        }
        if s.words[&Word::Srvr] == WordOutcome::NotServing {
            break v;
        }
        assert!(Instant::now() < deadline, "never settled: {s:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let s = &alone.servers[0];
    assert_eq!(s.state, ServerState::NotServing);
    assert_eq!(s.ruok, Some(true), "ruok still says imok");
    assert_eq!(s.isro, Some(parse::Isro::NotServing), "isro says null");
    for w in [Word::Srvr, Word::Mntr, Word::Conf] {
        assert_eq!(s.words[&w], WordOutcome::NotServing, "{w}");
    }
    assert!(s.version.is_some(), "envi answers even when not serving");
    assert_eq!(s.mode, None);
    assert!(!alone.healthy);
    assert_eq!(alone.verdict, Verdict::Critical);
    assert_eq!(
        codes(&alone),
        [ReasonCode::NotServing, ReasonCode::NoServerServing]
    );
    assert!(
        alone.reasons[0].message.contains("ruok: imok, isro: null"),
        "{}",
        alone.reasons[0].message
    );

    let whole = view(&cs).await;
    assert_eq!(whole.verdict, Verdict::Critical);
    assert_eq!(whole.leaders, 0);
    let mut c = codes(&whole);
    c.sort();
    assert_eq!(
        c,
        [
            ReasonCode::ServerDown,
            ReasonCode::ServerDown,
            ReasonCode::NotServing,
            ReasonCode::NoServerServing
        ]
    );
    let r = run(&["probe", "--source", &addr]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("not serving"), "{}", r.stdout);
    blocking(move || drop(e.servers.drain(..).collect::<Vec<_>>())).await;
}

// ---------------------------------------------------------------------------
// Misbehaving peers: a hung port, a slow large answer, another protocol.

/// Serves `answer(word)` to each connection, `chunk` bytes at a time with
/// `pause` between chunks; `None` holds the connection open, silent.
async fn fake_server(
    answer: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    chunk: usize,
    pause: Duration,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        // Bounded: a test needs a handful of connections.
        for _ in 0..64 {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut word = [0u8; 4];
                if sock.read_exact(&mut word).await.is_err() {
                    return;
                }
                match answer(&String::from_utf8_lossy(&word)) {
                    None => tokio::time::sleep(Duration::from_secs(10)).await,
                    Some(text) => {
                        for part in text.as_bytes().chunks(chunk.max(1)) {
                            if sock.write_all(part).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_port_that_accepts_but_never_answers_costs_one_timeout_not_one_per_word() {
    let addr = fake_server(|_| None, 1, Duration::ZERO).await;
    let opts = ProbeOptions {
        timeout: Duration::from_millis(300),
        ..ProbeOptions::default()
    };
    let started = Instant::now();
    let v = probe::probe_ensemble("source", &cstr(&addr), &opts).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let s = &v.servers[0];
    assert!(
        matches!(
            &s.state,
            ServerState::Down {
                error: WordError::Timeout { timeout_ms: 300 },
                ..
            }
        ),
        "{:?}",
        s.state
    );
    assert_eq!(
        s.words
            .values()
            .filter(|o| **o == WordOutcome::Skipped)
            .count(),
        6
    );
    assert_eq!(v.verdict, Verdict::Critical);
}

#[tokio::test]
async fn a_large_answer_trickling_in_is_read_to_the_end() {
    let (srvr, mntr) = (
        captured_answer("leader-srvr.txt"),
        captured_answer("leader-mntr.txt"),
    );
    let keys = mntr.lines().count();
    let addr = fake_server(
        move |w| match w {
            "srvr" => Some(srvr.clone()),
            "mntr" => Some(mntr.clone()),
            other => Some(format!(
                "{other} is not executed because it is not in the whitelist.\n"
            )),
        },
        700,
        Duration::from_millis(1),
    )
    .await;
    let v = view(&addr).await;
    let s = &v.servers[0];
    assert_eq!(s.mode, Some(parse::Mode::Leader));
    assert_eq!(s.mntr.len(), keys);
    assert_eq!(keys, 534, "the captured leader mntr");
    // The answer's last line arrived too.
    assert!(s.mntr.contains_key("zk_p999_2_learner_handler_qp_time_ms"));
    assert_eq!(s.synced_followers, Some(2));
}

#[tokio::test]
async fn another_protocol_on_the_port_is_unrecognised_not_a_crash() {
    let addr = fake_server(
        |_| Some("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_string()),
        64,
        Duration::ZERO,
    )
    .await;
    let v = view(&addr).await;
    assert!(
        matches!(&v.servers[0].state, ServerState::Unrecognised { reason } if reason.contains("HTTP/1.1 400")),
        "{:?}",
        v.servers[0].state
    );
    assert_eq!(
        v.verdict,
        Verdict::Critical,
        "no server serves: {:#?}",
        v.reasons
    );
    assert!(codes(&v).contains(&ReasonCode::Unrecognised));
    let r = run(&["probe", "--source", &addr]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
}

#[tokio::test]
async fn bad_usage_exits_two_and_an_unresolvable_host_is_down() {
    for args in [
        &["probe", "--source", "zk://localhost:2181"][..],
        &["probe", "--source", "h:1,,h:2"],
        &["probe", "--source", "h:1", "--target", "h:0"],
        &["probe", "--source", "h:1", "--timeout", "0s"],
        &["probe", "--source", "h:1", "--timeout", "soon"],
    ] {
        let r = run(args).await;
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert!(
            r.stderr.starts_with("zkparity: error:"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let r = run(&[
        "probe",
        "--source",
        "no-such-host.invalid:2181",
        "--timeout",
        "2s",
    ])
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("cannot resolve"), "{}", r.stdout);
}

// ---------------------------------------------------------------------------
// Parsers on captured 3.8.0 outputs (tests/fixtures/4lw, from the reference
// captures and this machine's Debian 3.8.0), and on outputs constructed to
// the 3.4 and Prometheus-provider formats.

#[test]
fn captured_mntr_answers_parse_to_every_key() {
    for (name, keys) in [
        ("leader-mntr.txt", 534),
        ("follower-mntr.txt", 502),
        ("standalone-mntr.txt", 485),
    ] {
        let m = parse::parse_mntr(&captured_answer(name));
        assert_eq!(m.metrics.len(), keys, "{name}");
        assert_eq!(m.malformed_lines, 0, "{name}");
    }
}

#[test]
fn captured_follower_answers_make_an_up_follower() {
    let s = ServerProbe::from_answers("f:2182", &captured("follower", &Word::ALL));
    assert_eq!(s.state, ServerState::Up);
    assert_eq!(s.mode, Some(parse::Mode::Follower));
    assert_eq!(s.zxid.map(|z| z.0), Some(0x2_0000_000c));
    let lat = s.latency.unwrap();
    assert_eq!(
        (lat.min, lat.avg, lat.max),
        (1.0, 2.5, 5.0),
        "srvr's decimal average"
    );
    assert_eq!(
        s.znodes,
        Some(9),
        "srvr's count wins: it goes with the zxid"
    );
    assert_eq!(s.ephemerals, Some(1));
    assert_eq!(s.watches, Some(2));
    assert_eq!(s.watched_paths, Some(2));
    assert_eq!((s.open_fds, s.max_fds), (Some(45), Some(20000)));
    assert_eq!(s.peer_state.as_deref(), Some("following - broadcast"));
    assert_eq!(s.server_id, Some(2));
    assert_eq!(s.members.len(), 3);
    assert_eq!(s.java_version.as_deref(), Some("17.0.15"));
    assert_eq!(s.learners, None, "leader only");
    assert_eq!(
        s.version.as_ref().unwrap().text,
        "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC"
    );
    assert_eq!(s.namespaces["app"].write_count, Some(301));
    assert!(
        s.words.values().all(|o| *o == WordOutcome::Answered),
        "{:?}",
        s.words
    );
}

#[test]
fn captured_leader_answers_carry_the_sync_state() {
    let s = ServerProbe::from_answers("l:2181", &captured("leader", &[Word::Srvr, Word::Mntr]));
    assert_eq!(s.mode, Some(parse::Mode::Leader));
    assert_eq!(s.quorum_size, Some(3));
    assert_eq!(s.learners, Some(2));
    assert_eq!(s.synced_followers, Some(2));
    assert_eq!(s.synced_observers, Some(0));
    assert_eq!(s.pending_syncs, Some(0));
    assert_eq!(s.digest_mismatches, Some(0));
    assert_eq!(s.approx_data_size, Some(5997));
}

#[test]
fn captured_stat_reads_like_srvr() {
    let stat = parse::parse_srvr(&captured_answer("follower-stat.txt"));
    let srvr = parse::parse_srvr(&captured_answer("follower-srvr.txt"));
    assert_eq!(stat.mode, srvr.mode);
    assert_eq!(stat.zxid, srvr.zxid);
    assert_eq!(stat.connections, Some(2));
    assert_eq!(stat.received, Some(12));
}

#[test]
fn captured_refusals_leave_what_srvr_says() {
    let mut answers = vec![(Word::Srvr, captured_answer("standalone-srvr.txt"))];
    // Every word after srvr, which comes first.
    answers.extend(Word::ALL[1..].iter().map(|&w| (w, refusal(w))));
    // The refusals as captured, word for word.
    assert_eq!(
        refusal(Word::Ruok),
        captured_answer("default-whitelist-ruok.txt")
    );
    assert_eq!(
        refusal(Word::Mntr),
        captured_answer("default-whitelist-mntr.txt")
    );
    let s = ServerProbe::from_answers("s:2181", &answered(&answers));
    assert_eq!(s.state, ServerState::Up);
    assert_eq!(s.znodes, Some(5));
    assert!(s.refused(Word::Mntr) && s.refused(Word::Ruok));
    assert_eq!(s.ruok, None);

    let only_refusals = ServerProbe::from_answers(
        "s:2181",
        &answered(&[
            (Word::Srvr, refusal(Word::Srvr)),
            (Word::Mntr, refusal(Word::Mntr)),
        ]),
    );
    assert_eq!(only_refusals.state, ServerState::Refused);
    let v = EnsembleView::build("source", "s:2181", vec![only_refusals], &Default::default());
    assert!(codes(&v).contains(&ReasonCode::Refused));
}

#[test]
fn captured_not_serving_answers_make_a_not_serving_server() {
    let ns = captured_answer("not-serving.txt");
    let s = ServerProbe::from_answers(
        "f:2182",
        &answered(&[
            (Word::Srvr, ns.clone()),
            (Word::Mntr, ns.clone()),
            (Word::Isro, "null".to_string()),
            (Word::Ruok, "imok".to_string()),
            (Word::Conf, ns),
        ]),
    );
    assert_eq!(s.state, ServerState::NotServing);
    assert_eq!(s.role(), "not serving");
}

#[test]
fn a_live_server_that_answers_srvr_with_nothing_is_not_serving() {
    // Seen on a follower shutting its server down as it loses its quorum.
    let s = ServerProbe::from_answers(
        "f:2182",
        &answered(&[
            (Word::Srvr, String::new()),
            (Word::Ruok, "imok".to_string()),
        ]),
    );
    assert_eq!(s.state, ServerState::NotServing);
    assert_eq!(s.words[&Word::Srvr], WordOutcome::Empty);
    let silent = ServerProbe::from_answers("x:2181", &answered(&[(Word::Srvr, String::new())]));
    assert!(
        matches!(&silent.state, ServerState::Unrecognised { reason } if reason.contains("without answering srvr")),
        "{:?}",
        silent.state
    );
}

#[test]
fn captured_read_only_member_serves_but_is_not_healthy() {
    let s = ServerProbe::from_answers(
        "r:2181",
        &answered(&[
            (Word::Srvr, captured_answer("read-only-srvr.txt")),
            (Word::Isro, "ro".to_string()),
        ]),
    );
    assert_eq!(s.state, ServerState::Up);
    assert_eq!(s.mode, Some(parse::Mode::ReadOnly));
    assert_eq!(s.znodes, Some(308));
    let v = EnsembleView::build("source", "r:2181", vec![s], &Default::default());
    assert_eq!(v.kind, EnsembleKind::Quorum);
    assert_eq!(v.verdict, Verdict::Critical);
    let mut c = codes(&v);
    c.sort();
    assert_eq!(c, [ReasonCode::ReadOnly, ReasonCode::NoLeader]);
}

#[test]
fn constructed_3_4_leader_counts_learners_from_zk_followers_and_four_system_nodes() {
    let s = ServerProbe::from_answers(
        "old:2181",
        &captured("constructed-3.4-leader", &[Word::Srvr, Word::Mntr]),
    );
    assert_eq!(s.learners, Some(2));
    assert_eq!(
        s.latency.map(|l| (l.min, l.avg, l.max)),
        Some((0.0, 0.0, 12.0))
    );
    let v = EnsembleView::build("source", "old:2181", vec![s], &Default::default());
    let (system, known) = probe::ensemble::system_nodes(v.servers[0].version.as_ref());
    assert_eq!((system, known), (4, true));
}

#[test]
fn constructed_prometheus_mntr_reads_doubles_as_counts_and_labels_as_namespaces() {
    let s = ServerProbe::from_answers(
        "p:2181",
        &answered(&[(
            Word::Mntr,
            captured_answer("constructed-prometheus-follower-mntr.txt"),
        )]),
    );
    assert_eq!(s.state, ServerState::Up, "mntr alone gives the mode");
    assert_eq!(s.mode, Some(parse::Mode::Follower));
    assert_eq!(s.znodes, Some(309));
    assert_eq!(s.max_fds, Some(20000));
    assert_eq!(s.latency.map(|l| l.avg), Some(0.3333));
    assert_eq!(s.namespaces["app"].write_count, Some(301));
    assert_eq!(s.namespaces["app"].quota_count_usage, Some(303));
    assert!(s.mntr.contains_key(
        "zk_jvm_info{runtime=\"OpenJDK Runtime Environment\",vendor=\"Debian\",version=\"17.0.15+6-Debian-1deb12u1\"}"
    ));
}

#[test]
fn text_report_of_captured_answers_lists_every_server_and_reason() {
    let leader =
        ServerProbe::from_answers("l:2181", &captured("leader", &[Word::Srvr, Word::Mntr]));
    let down = ServerProbe::from_answers(
        "d:2181",
        &[
            (Word::Srvr, Some(Err(WordError::ConnectionRefused))),
            (Word::Mntr, None),
        ],
    );
    let v = EnsembleView::build(
        "source",
        "l:2181,d:2181",
        vec![leader, down],
        &Default::default(),
    );
    let report = ProbeReport::new(v, None, Duration::from_secs(5));
    let text = probe::render::text(&report);
    assert!(
        text.contains("WARNING: quorum of 3 voters, 1 of 2 listed serving, leader l:2181"),
        "{text}"
    );
    assert!(
        text.contains("d:2181 is down: connection refused"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("d:2181") && l.contains("down")),
        "{text}"
    );
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn probe_exits_one_when_the_persistent_counts_differ() {
    let (a, b) = tokio::join!(own_server(), own_server());
    let args = |a: &str, b: &str| {
        vec![
            "probe".to_string(),
            "--source".into(),
            a.to_string(),
            "--target".into(),
            b.to_string(),
        ]
    };
    let (sa, sb) = (a.connect_string(), b.connect_string());
    let same = args(&sa, &sb);
    let r = run(&same.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(r.code, 0, "two empty servers: {}", ctx(&r));
    let c = client(&a).await;
    create(&c, "/only-on-the-source", b"x").await;
    let r = run(&same.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(r.code, 1, "{}", ctx(&r));
    assert!(
        r.stdout.contains("persistent znodes        -1"),
        "{}",
        r.stdout
    );
}
