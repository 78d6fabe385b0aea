//! Where reads go: `--source-read-from` against real ensembles. The
//! servers' own request counters (`srvr`'s `Received:`) say which served
//! a compare's reads.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use serde_json::Value;
use zkparity_sandbox::{Ensemble, Release, ServerOptions};

/// Nodes of the tree each compare walks: enough that the reads dwarf
/// session set-up.
const NODES: usize = 3000;

/// Packets a server not read from may still receive: the identity check's
/// session and the like, never the walk's thousands.
const SET_UP_PACKETS: u64 = 50;

fn options(release: Release) -> ServerOptions {
    ServerOptions {
        release,
        heap_mb: 256,
        ..ServerOptions::default()
    }
}

/// A 3-voter 3.8 quorum, and one with an observer besides.
fn quorum() -> &'static Ensemble {
    static E: OnceLock<Ensemble> = OnceLock::new();
    E.get_or_init(|| Ensemble::start(3, &options(Release::V3_8_0)).expect("a 3.8 quorum"))
}

fn observed() -> &'static Ensemble {
    static E: OnceLock<Ensemble> = OnceLock::new();
    E.get_or_init(|| {
        Ensemble::start_with_observers(3, 1, &options(Release::V3_8_0))
            .expect("a 3.8 quorum with an observer")
    })
}

fn quorum_of(release: Release) -> &'static Ensemble {
    static E: [OnceLock<Ensemble>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    E[release.index()].get_or_init(|| {
        Ensemble::start(3, &options(release)).unwrap_or_else(|e| panic!("a {release} quorum: {e}"))
    })
}

/// Held by each test that counts the shared quorum's packets: another
/// test's writes or reads meanwhile would be counted too.
async fn counting() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// `Received:` of one server.
fn received_by(server: &str) -> u64 {
    let text = zkparity_sandbox::four_letter_word(server, "srvr", Duration::from_secs(5))
        .expect("srvr answers");
    text.lines()
        .find_map(|l| l.strip_prefix("Received: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Received: line")
}

/// `Received:` of every server, by address.
fn received(e: &Ensemble) -> BTreeMap<String, u64> {
    e.servers
        .iter()
        .map(|s| (s.connect_string(), received_by(&s.connect_string())))
        .collect()
}

fn grown(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before[k]))
        .collect()
}

fn modes(e: &Ensemble) -> BTreeMap<String, String> {
    e.servers
        .iter()
        .map(|s| (s.connect_string(), s.mode().unwrap_or_default()))
        .collect()
}

/// The same tree of `NODES` nodes under `root` on the ensemble and on the
/// standalone target.
async fn seeded(connect: &str, root: &str, writes_as_3_4: bool) {
    let target = pair();
    let s = if writes_as_3_4 {
        zookeeper_client::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_server_version(3, 4, 6)
            .connect(connect)
            .await
            .expect("a 3.4 session")
    } else {
        common::connect(connect).await
    };
    let t = client(&target.target).await;
    if writes_as_3_4 {
        // 3.4 refuses the Create2 inside a multi: one create at a time,
        // pipelined.
        let children: Vec<String> = (0..NODES).map(|i| format!("{root}/c{i:05}")).collect();
        for c in [&s, &t] {
            create(c, root, b"").await;
            for chunk in children.chunks(500) {
                let made = futures::future::join_all(
                    chunk.iter().map(|p| c.create(p, b"v", &common::open())),
                )
                .await;
                for (p, m) in chunk.iter().zip(made) {
                    m.unwrap_or_else(|e| panic!("create {p}: {e}"));
                }
            }
        }
    } else {
        wide_tree(&s, &t, root, NODES, b"v").await;
    }
    // Every follower has the tree before the counters are read.
    s.sync(root).await.expect("sync");
}

/// Compares `root` of `connect` with the standalone target, reading the
/// source from `read_from`; answers the run and each source server's growth
/// in received packets.
async fn compare_from(
    e: &'static Ensemble,
    root: &str,
    read_from: &str,
    extra: &[&str],
) -> (Run, BTreeMap<String, u64>) {
    let before = blocking(move || received(e)).await;
    let mut args = vec!["--path", root, "--source-read-from", read_from];
    args.extend_from_slice(extra);
    let run = compare_connects(&e.connect_string(), &pair().target.connect_string(), &args).await;
    let after = blocking(move || received(e)).await;
    (run, grown(&before, &after))
}

fn verdict(run: &Run) -> Value {
    run.json()["summary"]["verdict"].clone()
}

fn role_of(modes: &BTreeMap<String, String>, role: &str) -> Vec<String> {
    modes
        .iter()
        .filter(|(_, m)| m.as_str() == role)
        .map(|(a, _)| a.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn followers_spare_the_leader_while_they_serve_every_read() {
    let _counting = counting().await;
    let e = blocking(quorum).await;
    let root = unique_path("followers");
    seeded(&e.connect_string(), &root, false).await;
    let m = blocking(move || modes(e)).await;
    let leader = role_of(&m, "leader");
    let followers = role_of(&m, "follower");
    assert_eq!((leader.len(), followers.len()), (1, 2), "{m:?}");

    let (any, any_growth) = compare_from(e, &root, "any", &[]).await;
    assert_eq!(any.code, 0, "{}", ctx(&any));
    let (run, growth) = compare_from(e, &root, "followers", &["--sessions", "8"]).await;
    assert_eq!(run.code, 0, "{}", ctx(&run));
    eprintln!("packets received during a compare of {NODES} nodes: any {any_growth:?}, followers {growth:?}");
    assert_eq!(verdict(&run), verdict(&any));
    assert!(
        growth[&leader[0]] < SET_UP_PACKETS,
        "the leader received {} packets: {growth:?}",
        growth[&leader[0]]
    );
    for f in &followers {
        assert!(growth[f] > 1000, "follower {f}: {growth:?}");
    }

    // The report names the servers read, their roles and what each did.
    let placed = &run.json()["source"]["read_placement"];
    assert_eq!(placed["read_from"], "followers");
    let servers = placed["servers"].as_array().expect("servers");
    let mut named: Vec<String> = servers
        .iter()
        .map(|s| s["server"].as_str().unwrap().to_string())
        .collect();
    named.sort();
    assert_eq!(named, followers, "{placed}");
    let sessions: Vec<u64> = servers
        .iter()
        .map(|s| s["sessions"].as_u64().unwrap())
        .collect();
    assert_eq!(sessions, [4, 4], "{placed}");
    let nodes: u64 = servers.iter().map(|s| s["nodes"].as_u64().unwrap()).sum();
    assert!(nodes >= NODES as u64, "{placed}");
    for s in servers {
        assert_eq!(s["role"], "follower", "{placed}");
        assert!(s["zxid"].as_str().unwrap().starts_with("0x"), "{placed}");
        assert!(s["reads"].as_u64().unwrap() > 1000, "{placed}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_sessions_over_three_servers_go_three_three_two() {
    let _counting = counting().await;
    let e = blocking(quorum).await;
    let root = unique_path("spread");
    seeded(&e.connect_string(), &root, false).await;
    let all = e.connect_string();
    let (run, _) = compare_from(e, &root, &all, &["--sessions", "8"]).await;
    assert_eq!(run.code, 0, "{}", ctx(&run));
    let placed = &run.json()["source"]["read_placement"];
    let sessions: Vec<u64> = placed["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sessions"].as_u64().unwrap())
        .collect();
    assert_eq!(sessions, [3, 3, 2], "{placed}");
    let text = compare_connects(
        &e.connect_string(),
        &pair().target.connect_string(),
        &[
            "--path",
            &root,
            "--source-read-from",
            "followers",
            "--format",
            "text",
        ],
    )
    .await;
    let line = text
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("source read from followers:"))
        .unwrap_or_else(|| panic!("no line naming the servers read: {}", text.stdout));
    assert!(line.contains("follower ("), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn observers_alone_serve_reads_when_asked_for() {
    let e = blocking(observed).await;
    let root = unique_path("observers");
    seeded(&e.connect_string(), &root, false).await;
    let m = blocking(move || modes(e)).await;
    let observer = role_of(&m, "observer");
    assert_eq!(observer.len(), 1, "{m:?}");
    let (any, _) = compare_from(e, &root, "any", &[]).await;
    let (run, growth) = compare_from(e, &root, "observers", &[]).await;
    assert_eq!(run.code, 0, "{}", ctx(&run));
    eprintln!("packets received during a compare of {NODES} nodes: observers {growth:?}");
    assert_eq!(verdict(&run), verdict(&any));
    for (server, n) in &growth {
        if *server == observer[0] {
            assert!(*n > 1000, "the observer: {growth:?}");
        } else {
            assert!(*n < SET_UP_PACKETS, "{server} ({}): {growth:?}", m[server]);
        }
    }
    let placed = &run.json()["source"]["read_placement"];
    assert_eq!(placed["servers"][0]["role"], "observer", "{placed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn followers_spare_the_leader_on_3_4_and_3_9_too() {
    for release in [Release::V3_4_6, Release::V3_9_3] {
        let e = blocking(move || quorum_of(release)).await;
        let root = unique_path("release");
        seeded(&e.connect_string(), &root, release == Release::V3_4_6).await;
        let m = blocking(move || modes(e)).await;
        let leader = role_of(&m, "leader");
        let (run, growth) = compare_from(e, &root, "followers", &[]).await;
        assert_eq!(run.code, 0, "{release}: {}", ctx(&run));
        assert!(
            growth[&leader[0]] < SET_UP_PACKETS,
            "{release}: the leader received {growth:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_every_follower_stopped_followers_refuse_and_followers_preferred_read_the_leader_with_a_note(
) {
    // One voter (the leader) and one observer: stopping the observer
    // leaves a leader that still serves, and no follower at all.
    let mut e = blocking(|| {
        Ensemble::start_with_observers(1, 1, &options(Release::V3_8_0))
            .expect("a voter and an observer")
    })
    .await;
    let connect = e.connect_string();
    let root = unique_path("stopped");
    seeded(&connect, &root, false).await;
    let leader = e.servers[0].connect_string();
    e.servers[1].stop();
    let target = pair().target.connect_string();

    let run = compare_connects(
        &connect,
        &target,
        &["--path", &root, "--source-read-from", "followers"],
    )
    .await;
    assert_eq!(run.code, 2, "{}", ctx(&run));
    assert!(
        run.stderr.contains("no follower or observer answers")
            && run.stderr.contains(&format!("{leader} leader"))
            && run.stderr.contains("down"),
        "{}",
        run.stderr
    );

    let check = run_env(
        &[
            "check",
            "parity",
            "--source",
            &connect,
            "--target",
            &target,
            "--path",
            &root,
            "--source-read-from",
            "followers",
        ],
        &[],
    )
    .await;
    assert_eq!(check.code, 3, "UNKNOWN: {}", ctx(&check));
    assert!(
        check.stdout.contains("no follower or observer answers"),
        "{}",
        ctx(&check)
    );

    let run = compare_connects(
        &connect,
        &target,
        &["--path", &root, "--source-read-from", "followers-preferred"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", ctx(&run));
    let report = run.json();
    let placed = &report["source"]["read_placement"];
    assert_eq!(placed["servers"][0]["server"], leader.as_str(), "{placed}");
    assert_eq!(placed["servers"][0]["role"], "leader", "{placed}");
    assert!(
        placed["note"]
            .as_str()
            .unwrap()
            .contains("read from the leader"),
        "{placed}"
    );
    assert!(
        report["notes"].to_string().contains("read from the leader"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standalone_server_has_no_followers_to_read() {
    let p = pair();
    let (s, t) = (p.source.connect_string(), p.target.connect_string());
    let run = compare_connects(&s, &t, &["--source-read-from", "followers"]).await;
    assert_eq!(run.code, 2, "{}", ctx(&run));
    assert!(run.stderr.contains("standalone server"), "{}", run.stderr);
    let (a, b) = (client(&p.source).await, client(&p.target).await);
    let root = unique_path("standalone");
    both(&a, &b, &root, &[("x", b"1")]).await;
    let run = compare_connects(
        &s,
        &t,
        &[
            "--path",
            &root,
            "--source-read-from",
            "leader",
            "--target-read-from",
            "followers-preferred",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", ctx(&run));
    assert_eq!(
        run.json()["target"]["read_placement"]["servers"][0]["role"],
        "standalone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_that_names_no_member_is_refused() {
    let _counting = counting().await;
    let e = blocking(quorum).await;
    let stranger = format!("127.0.0.1:{}", dead_port());
    let run = compare_connects(
        &e.connect_string(),
        &pair().target.connect_string(),
        &["--source-read-from", &stranger],
    )
    .await;
    assert_eq!(run.code, 2, "{}", ctx(&run));
    assert!(
        run.stderr.contains("not in the connect string"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_read_from_followers_spares_the_leader() {
    let _counting = counting().await;
    let e = blocking(quorum).await;
    let root = unique_path("snapshot");
    seeded(&e.connect_string(), &root, false).await;
    let m = blocking(move || modes(e)).await;
    let leader = role_of(&m, "leader");
    let dir = tempfile::tempdir().expect("a directory");
    let out = dir.path().join("s.zkps");
    let before = blocking(move || received(e)).await;
    let run = run(&[
        "snapshot",
        "--server",
        &e.connect_string(),
        "--path",
        &root,
        "--read-from",
        "followers",
        "--out",
        &out.to_string_lossy(),
        "--quiet",
    ])
    .await;
    let after = blocking(move || received(e)).await;
    assert_eq!(run.code, 0, "{}", ctx(&run));
    let growth = grown(&before, &after);
    assert!(growth[&leader[0]] < SET_UP_PACKETS, "{growth:?}");
    assert!(growth.values().sum::<u64>() > 1000, "{growth:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_leader_mid_walk_under_followers_finishes_without_reading_the_new_leader() {
    // An ensemble of its own: the test kills its leader.
    let mut e =
        blocking(|| Ensemble::start(3, &options(Release::V3_8_0)).expect("a 3.8 quorum")).await;
    let connect = e.connect_string();
    let root = unique_path("killed");
    seeded(&connect, &root, false).await;
    let m = modes(&e);
    let old_leader = role_of(&m, "leader");
    assert_eq!(old_leader.len(), 1, "{m:?}");
    let target = pair().target.connect_string();

    // Capped so the walk of 3 × NODES reads lasts several seconds and the
    // election happens in the middle of it.
    let walk = {
        let (connect, target, root) = (connect.clone(), target.clone(), root.clone());
        tokio::spawn(async move {
            compare_connects(
                &connect,
                &target,
                &[
                    "--path",
                    &root,
                    "--source-read-from",
                    "followers",
                    "--max-reads-per-second",
                    "1200",
                ],
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = e
        .servers
        .iter()
        .position(|s| s.connect_string() == old_leader[0])
        .expect("the leader is a member");
    e.servers[killed].kill();

    // The new leader's counters start when it takes the role, so what it
    // has received by the end is what reached it as leader.
    let new_leader = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let m = blocking({
                let alive: Vec<String> = e
                    .servers
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != killed)
                    .map(|(_, s)| s.connect_string())
                    .collect();
                move || {
                    alive
                        .into_iter()
                        .filter_map(|a| {
                            let srvr = zkparity_sandbox::four_letter_word(
                                &a,
                                "srvr",
                                Duration::from_secs(2),
                            )
                            .ok()?;
                            (zkparity_sandbox::parse_mode(&srvr) == Some("leader")).then_some(a)
                        })
                        .next()
                }
            })
            .await;
            if let Some(l) = m {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a new leader within 30 s");

    let run = walk.await.expect("the compare");
    assert_eq!(run.code, 0, "{}", ctx(&run));
    assert_eq!(verdict(&run), "identical", "{}", ctx(&run));
    let reached = {
        let l = new_leader.clone();
        blocking(move || received_by(&l)).await
    };
    assert!(
        reached < SET_UP_PACKETS,
        "the new leader {new_leader} received {reached} packets as leader: {}",
        ctx(&run)
    );
    // Every read after the election went to the follower that is left.
    let placed = &run.json()["source"]["read_placement"];
    let servers = placed["servers"].as_array().expect("servers");
    assert!(
        servers
            .iter()
            .all(|s| s["server"] != new_leader.as_str() || s["role"] != "leader"),
        "{placed}"
    );
    let moved = placed["moved"].to_string();
    assert!(
        moved.contains(&format!("{new_leader} no longer fits followers")),
        "the report says the sessions moved: {placed}\n{}\n{}",
        run.json()["notes"],
        run.stderr
    );
    eprintln!("placement after the leader was killed: {placed}");
}

/// `zkparity show` of `path` between the ensemble and the standalone
/// target, reading the source from `read_from`.
async fn show_from(e: &Ensemble, path: &str, read_from: &str, extra: &[&str]) -> Run {
    let (source, target) = (e.connect_string(), pair().target.connect_string());
    let mut args = vec![
        "show",
        "--source",
        &source,
        "--target",
        &target,
        "--source-read-from",
        read_from,
    ];
    args.extend_from_slice(extra);
    args.push(path);
    run(&args).await
}

#[tokio::test(flavor = "multi_thread")]
async fn show_reads_one_znode_from_the_chosen_server_after_syncing_it() {
    let e = blocking(quorum).await;
    let root = unique_path("show");
    let source = common::connect(&e.connect_string()).await;
    let target = client(&pair().target).await;
    for c in [&source, &target] {
        create(c, &root, b"same on both").await;
    }
    let m = blocking(move || modes(e)).await;
    let followers = role_of(&m, "follower");

    let run = show_from(e, &root, "followers", &["--format", "json"]).await;
    assert_eq!(run.code, 0, "{}", ctx(&run));
    let shown = run.json();
    let read_from = shown["source"]["read_from"]
        .as_str()
        .expect("the server read");
    assert!(
        followers
            .iter()
            .any(|f| read_from == format!("{f} (follower)")),
        "{read_from} is not one of the followers {followers:?}"
    );
    assert!(shown["target"].get("read_from").is_none(), "{shown}");

    let text = show_from(e, &root, "observers", &[]).await;
    assert_eq!(
        text.code,
        2,
        "no observer in a 3-voter quorum: {}",
        ctx(&text)
    );
    assert!(text.stderr.contains("observer"), "{}", ctx(&text));
}
