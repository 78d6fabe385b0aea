//! A compare (and a snapshot or export) never writes to either ensemble:
//! not a node, not a Stat, and on
//! a quorum (where local sessions keep session open/close out of the log)
//! not a single transaction.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use zkparity_sandbox::{Ensemble, Guarded, ServerOptions, ZkServer};
use zookeeper_client as zk;

/// A 3-node ensemble, started once for this binary.
fn ensemble() -> &'static Ensemble {
    static ENSEMBLE: OnceLock<Ensemble> = OnceLock::new();
    ENSEMBLE.get_or_init(|| Ensemble::start(3, &ServerOptions::default()).expect("ensemble"))
}

/// Tests that write to the ensemble or watch its zxids take turns.
static ENSEMBLE_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Closes a session and waits until the server has confirmed it.
async fn close(c: zk::Client) {
    let mut watcher = c.state_watcher();
    drop(c);
    let closed = async {
        while !watcher.peek_state().is_terminated() {
            watcher.changed().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("session closes");
}

/// Two trees under `root/a` and `root/b` with one difference of each kind
/// below `app`: data, ACL, missing, extra, sequence counter.
async fn differing_trees(c: &zk::Client, root: &str) {
    create(c, root, b"").await;
    let (a, b) = (format!("{root}/a"), format!("{root}/b"));
    let common: &[(&str, &[u8])] = &[("app", b"v1"), ("app/conf", b""), ("app/queue", b"")];
    tree(c, &a, common).await;
    tree(c, &b, common).await;
    for (side, value) in [(&a, b"x=1"), (&b, b"x=2")] {
        c.set_data(&format!("{side}/app/conf"), value, None)
            .await
            .unwrap();
    }
    let read_only = [zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone())];
    create(c, &format!("{a}/app/acl"), b"same").await;
    c.create(
        &format!("{b}/app/acl"),
        b"same",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&read_only)),
    )
    .await
    .unwrap();
    tree(c, &format!("{a}/app/gone"), &[("child", b"1")]).await;
    create(c, &format!("{b}/app/stale"), b"old").await;
    // The source handed out item-0..4 and kept 3 and 4; a copy tool
    // recreated those names on the target, leaving its counter behind.
    let items = format!("{a}/app/queue/item-");
    create_sequential(c, &items, b"q", 5).await;
    delete_sequential(c, &items, 0..3).await;
    copy_sequential(c, &format!("{b}/app/queue/item-"), b"q", 3..5).await;
}

const EXPECTED_KINDS: [(&str, &str); 5] = [
    ("data", "/app/conf"),
    ("acl", "/app/acl"),
    ("missing_in_target", "/app/gone"),
    ("extra_in_target", "/app/stale"),
    ("sequence_counter", "/app/queue"),
];

fn assert_found_every_difference(r: &Run) {
    assert_eq!(r.code, 1, "{}", ctx(r));
    let report = r.json();
    assert_eq!(report["summary"]["confirmed"], 5, "{report:#}");
    for (kind, path) in EXPECTED_KINDS {
        let found = of_kind(&report, kind);
        assert_eq!(found.len(), 1, "{kind}: {report:#}");
        assert_eq!(found[0]["path"], path, "{kind}");
    }
}

#[tokio::test]
async fn compares_of_a_quorum_leave_every_members_zxid_unchanged() {
    let e = ensemble();
    let _turn = ENSEMBLE_TURN.lock().await;
    let ens = e.connect_string();
    let c = connect(&ens).await;
    let root = unique_path("ro-quorum");
    differing_trees(&c, &root).await;
    let before = settled(e, &c).await;

    // Precondition: with local sessions, a plain session (opened, used for a
    // read, closed) on any member is no transaction. If this failed, the
    // zxid could not tell a write from zkparity's own sessions.
    for addr in e
        .servers
        .iter()
        .map(ZkServer::connect_string)
        .chain([ens.clone()])
    {
        let plain = connect(&addr).await;
        plain.get_data("/").await.unwrap();
        close(plain).await;
    }
    assert_eq!(
        settled(e, &c).await,
        before,
        "a plain session moved the zxid: sessions are transactions on this ensemble"
    );

    let (a, b) = (format!("{ens}{root}/a"), format!("{ens}{root}/b"));
    // Chroots in the connect strings, text report, default re-check path.
    let r = run(&[
        "compare",
        "--source",
        &a,
        "--target",
        &b,
        "--recheck-delay",
        "300ms",
    ])
    .await;
    assert_eq!(r.code, 1, "{}", ctx(&r));
    for (_, path) in EXPECTED_KINDS {
        assert!(r.stdout.contains(path), "{path} not listed: {}", ctx(&r));
    }
    // --path below the chroots, JSON, immediate re-check.
    let r = compare_connects(&a, &b, &["--path", "/app"]).await;
    assert_found_every_difference(&r);
    // Pinned to each member in turn (leader and followers), single reads,
    // ephemerals compared.
    for i in 0..e.servers.len() {
        let src = format!("{}{root}/a", e.servers[i].connect_string());
        let dst = format!("{}{root}/b", e.servers[(i + 1) % 3].connect_string());
        let r = compare_connects(
            &src,
            &dst,
            &[
                "--path",
                "/app",
                "--no-multi-read",
                "--ephemerals",
                "compare",
            ],
        )
        .await;
        assert_found_every_difference(&r);
    }
    // A snapshot, a compare against it, and exports live and from the file.
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("a.zkps");
    let snap = snap.to_str().unwrap();
    let xml = dir.path().join("a.xml");
    let r = run(&["snapshot", "--server", &a, "--out", snap, "-q"]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let r = compare_connects(snap, &b, &["--path", "/app"]).await;
    assert_found_every_difference(&r);
    for server in [a.as_str(), snap] {
        let r = run(&[
            "export",
            "--server",
            server,
            "--path",
            "/app",
            "--out",
            xml.to_str().unwrap(),
        ])
        .await;
        assert_eq!(r.code, 0, "{}", ctx(&r));
    }

    let after = settled(e, &c).await;
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(
            b,
            a,
            "member {} ({}) moved from zxid {b:#x} to {a:#x}",
            i + 1,
            e.servers[i].connect_string()
        );
    }
    close(c).await;
}

#[tokio::test]
async fn compares_in_every_mode_leave_every_stat_unchanged() {
    let (p, s, t) = pair_clients().await;
    // alice may read everything, including the node only she may read.
    for c in [&s, &t] {
        c.auth("digest", b"alice:secret").await.unwrap();
    }
    let root = unique_path("ro-modes");
    let nodes: &[(&str, &[u8])] = &[
        ("app", b"v1"),
        ("app/conf", b"x=1"),
        ("app/acl", b"a"),
        ("queue", b""),
    ];
    both(&s, &t, &root, nodes).await;
    s.set_data(&format!("{root}/app/conf"), b"x=2", None)
        .await
        .unwrap();
    t.set_acl(
        &format!("{root}/app/acl"),
        &[zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone())],
        None,
    )
    .await
    .unwrap();
    tree(&s, &format!("{root}/gone"), &[("child", b"1")]).await;
    create(&t, &format!("{root}/stale"), b"").await;
    for c in [&s, &t] {
        for _ in 0..3 {
            c.create(&format!("{root}/queue/item-"), b"q", &seq())
                .await
                .unwrap();
        }
    }
    s.delete(&format!("{root}/queue/item-0000000000"), None)
        .await
        .unwrap();
    let alice = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="),
    )];
    for c in [&s, &t] {
        c.create(
            &format!("{root}/locked"),
            b"secret",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&alice)),
        )
        .await
        .unwrap();
        c.create(&format!("{root}/app/broker"), b"b", &ephemeral())
            .await
            .unwrap();
    }
    s.create(&format!("{root}/app/lonely"), b"l", &ephemeral())
        .await
        .unwrap();

    let before = [read_tree(&s, &root).await, read_tree(&t, &root).await];
    assert_eq!(before[0].len(), 12, "{:#?}", before[0].keys());

    let (ps, pt) = (p.source.connect_string(), p.target.connect_string());
    let base = ["compare", "--source", &ps, "--target", &pt, "--path", &root];
    let modes: &[&[&str]] = &[
        &["--ephemerals", "skip"],
        &["--ephemerals", "count"],
        &["--ephemerals", "compare"],
        &["--no-multi-read"],
        &["--format", "json"],
        &[
            "--format",
            "json",
            "--ephemerals",
            "compare",
            "--no-multi-read",
        ],
        &["--sessions", "1", "--batch-size", "1", "--in-flight", "1"],
        &["--recheck-delay", "off", "--limit", "0", "--show-acl-ids"],
        &["--max-reads-per-second", "300", "--subtree-depth", "3"],
        &["--exclude", "/**/queue", "--include-zookeeper"],
    ];
    for extra in modes {
        let mut args = base.to_vec();
        if !extra.contains(&"--recheck-delay") {
            args.extend(["--recheck-delay", "0s"]);
        }
        args.extend_from_slice(extra);
        let r = run(&args).await;
        assert_eq!(r.code, 1, "{extra:?}: {}", ctx(&r));
    }
    // With credentials, the locked node is read too.
    let r = run_env(
        &[&base[..], &["--format", "json", "--recheck-delay", "0s"]].concat(),
        &[
            ("ZKPARITY_SOURCE_AUTH", "alice:secret"),
            ("ZKPARITY_TARGET_AUTH", "alice:secret"),
        ],
    )
    .await;
    assert_eq!(r.code, 1, "{}", ctx(&r));
    assert_eq!(count(&r.json(), "unreadable"), 0, "{}", ctx(&r));

    let after = [read_tree(&s, &root).await, read_tree(&t, &root).await];
    for (side, (b, a)) in ["source", "target"].iter().zip(before.iter().zip(&after)) {
        for (path, (stat, data)) in b {
            let (stat_after, data_after) = a
                .get(path)
                .unwrap_or_else(|| panic!("{side} {path} vanished"));
            assert_eq!(stat, stat_after, "{side} {path}: Stat changed");
            assert_eq!(data, data_after, "{side} {path}: data changed");
        }
        assert_eq!(b.len(), a.len(), "{side}: nodes appeared: {:#?}", a.keys());
    }
}

#[tokio::test]
async fn an_ensemble_listed_by_all_its_members_is_a_real_target() {
    let p = pair();
    let e = ensemble();
    let _turn = ENSEMBLE_TURN.lock().await;
    let ens = e.connect_string();
    let (s, t) = (client(&p.source).await, connect(&ens).await);
    let root = unique_path("ro-target");
    let nodes: &[(&str, &[u8])] = &[("brokers", b""), ("brokers/1", b"{}"), ("config", b"c")];
    both(&s, &t, &root, nodes).await;
    settled(e, &t).await;
    let src = p.source.connect_string();
    let r = compare_connects(&src, &ens, &["--path", &root]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let report = r.json();
    assert_eq!(report["summary"]["target"]["nodes"], 4, "{report:#}");
    assert_eq!(report["target"]["connect"], ens.as_str());

    // Chroots on both sides, and a change on the ensemble is seen.
    t.set_data(&format!("{root}/brokers/1"), b"{\"v\":2}", None)
        .await
        .unwrap();
    settled(e, &t).await;
    let (src, dst) = (format!("{src}{root}"), format!("{ens}{root}"));
    let r = compare_connects(&src, &dst, &[]).await;
    assert_eq!(r.code, 1, "{}", ctx(&r));
    let data = of_kind(&r.json(), "data")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(data.len(), 1, "{}", ctx(&r));
    assert_eq!(data[0]["path"], "/brokers/1");
    close(t).await;
}

/// The agent's standing sessions (its watches on both sides), its early
/// re-checks and its rounds of every kind add no transaction: one write by
/// the test moves every member's zxid by exactly one.
#[tokio::test]
async fn an_agent_watching_a_quorum_adds_no_transaction_of_its_own() {
    use zkparity::agent::state::{read_state, state_path, PairState, RoundKind};
    let e = ensemble();
    let _turn = ENSEMBLE_TURN.lock().await;
    let ens = e.connect_string();
    let c = connect(&ens).await;
    let root = unique_path("ro-agent");
    differing_trees(&c, &root).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[[pair]]\nname = \"ro\"\nsource = \"{ens}{root}/a\"\n\
             target = \"{ens}{root}/b\"\npath = \"/app\"\ninterval = \"3s\"\njitter = \"0s\"\n\
             recheck_delay = \"200ms\"\nwatch_settle = \"200ms\"\nfull_walk_every = 2\n",
            dir.path()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    // Killed when dropped.
    let _agent = Guarded::spawn(
        agent_command(&config)
            .env("ZKPARITY_LOG", "zkparity=debug")
            .stderr(log),
    )
    .expect("start the agent");
    let state = || read_state(&state_path(dir.path(), "ro")).ok();
    let agent_log = || std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default();
    let wait = |what: &'static str, pred: Box<dyn Fn(&PairState) -> bool>| {
        let agent_log = &agent_log;
        async move {
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                if let Some(s) = state() {
                    if pred(&s) {
                        return s;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "waited too long for {what}: {:#?}\n{}",
                    state(),
                    agent_log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let live = |s: &PairState| {
        s.checks
            .watch
            .as_ref()
            .is_some_and(|w| w.source == "live" && w.target == "live")
    };
    let first = wait("a first round, watches live", Box::new(move |s| live(s))).await;
    assert_eq!(first.unconfirmed_total + first.confirmed_total, 5);
    let before = settled(e, &c).await;

    // One write, just after a round, so it is re-checked early: the target's
    // data catches up with the source's.
    let r = state().map(|s| s.round).unwrap_or(0);
    wait("the next round", Box::new(move |s| s.round > r)).await;
    c.set_data(&format!("{root}/b/app/conf"), b"x=1", None)
        .await
        .unwrap();
    let healed = wait(
        "the data difference healed",
        Box::new(|s: &PairState| s.unconfirmed_total + s.confirmed_total == 4),
    )
    .await;
    // Rounds of every kind after it: watch-clean and a periodic walk.
    let mut kinds = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !(kinds.contains(&RoundKind::WatchClean) && kinds.contains(&RoundKind::FullWalk)) {
        if let Some(s) = state() {
            if s.round > healed.round {
                kinds.extend(s.checks.round_kind);
            }
        }
        assert!(
            Instant::now() < deadline,
            "rounds: {kinds:?}\n{}",
            agent_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(agent_log().contains("early re-check"), "{}", agent_log());

    let after = settled(e, &c).await;
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(
            *a,
            b + 1,
            "member {} moved from zxid {b:#x} to {a:#x}: the agent wrote",
            i + 1
        );
    }
    close(c).await;
}
