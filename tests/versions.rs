//! Every ZooKeeper release in service: real 3.4.6, 3.6.3, 3.8.0 and 3.9.3
//! servers, each run with its own defaults (3.4: no whitelist, every word
//! answers; 3.5+: only `srvr`, and the AdminServer on), one pair per
//! release for the whole binary.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use zkparity_sandbox::{Ensemble, Guarded, Release, ServerOptions, ZkServer};
use zookeeper_client as zk;

/// A release's servers as operators get them: its default whitelist, and
/// the AdminServer where the release has one.
fn defaults(release: Release) -> ServerOptions {
    ServerOptions {
        release,
        heap_mb: 256,
        admin_server: release.is_3_5_or_later(),
        four_letter_words: "srvr".into(),
        ..ServerOptions::default()
    }
}

struct Pair {
    source: ZkServer,
    target: ZkServer,
}

/// The pair of `release`, started on first use.
fn pair_of(release: Release) -> &'static Pair {
    static PAIRS: [OnceLock<Pair>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    PAIRS[release.index()].get_or_init(|| {
        let o = defaults(release);
        let other = o.clone();
        let t = std::thread::spawn(move || ZkServer::start_standalone(&other));
        let source = ZkServer::start_standalone(&o)
            .unwrap_or_else(|e| panic!("a {release} source starts: {e}"));
        let target = t
            .join()
            .expect("join")
            .unwrap_or_else(|e| panic!("a {release} target starts: {e}"));
        Pair { source, target }
    })
}

fn admin(s: &ZkServer) -> String {
    s.admin_port().map_or("8080".into(), |p| p.to_string())
}

/// A small estate: data on inner nodes, a digest ACL, persistent sequential
/// children (a counter that matters), a 200 KB value.
async fn seed(c: &zk::Client, root: &str) {
    let opts = open();
    c.create(root, b"root", &opts).await.expect("root");
    for (rel, data) in [
        ("config", &b"{\"retention\":7}"[..]),
        ("config/topics", b"inner data"),
        ("config/topics/orders", b"v1"),
        ("queue", b""),
    ] {
        c.create(&format!("{root}/{rel}"), data, &opts)
            .await
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
    let big = vec![b'x'; 200 * 1024];
    c.create(&format!("{root}/big"), &big, &opts)
        .await
        .expect("a 200 KB value");
    let acls = [
        zk::Acl::new(zk::Permission::READ, zk::AuthId::new("world", "anyone")),
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("ip", "127.0.0.1")),
    ];
    let guarded = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acls));
    c.create(&format!("{root}/guarded"), b"g", &guarded)
        .await
        .expect("guarded");
    // Five jobs queued, the first two done: the counter (5) runs ahead of
    // the children (3), as on any live queue.
    let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    for _ in 0..5 {
        c.create(&format!("{root}/queue/item-"), b"job", &seq)
            .await
            .expect("sequential");
    }
    for done in ["item-0000000000", "item-0000000001"] {
        c.delete(&format!("{root}/queue/{done}"), None)
            .await
            .expect("a job done");
    }
}

async fn compare_json_between(source: &str, target: &str, root: &str) -> (i32, Value) {
    let r = run(&[
        "compare",
        "--source",
        source,
        "--target",
        target,
        "--path",
        root,
        "--format",
        "json",
        "--recheck-delay",
        "0s",
        "--limit",
        "0",
    ])
    .await;
    assert!(matches!(r.code, 0 | 1 | 3), "{}", ctx(&r));
    (r.code, r.json())
}

fn found(r: &Value) -> BTreeSet<String> {
    r["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["kind"].as_str().unwrap_or(""),
                d["path"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// `repair --apply` of `root` from `source` into `target` (created there).
async fn copy(source: &str, target: &str, root: &str) {
    let r = run(&[
        "repair",
        "--source",
        source,
        "--target",
        target,
        "--path",
        root,
        "--apply",
        "--create-path",
        "--format",
        "json",
        "--recheck-delay",
        "0s",
    ])
    .await;
    assert_eq!(r.code, 0, "the copy verifies: {}", ctx(&r));
    let j = r.json();
    assert_eq!(j["apply"]["failed"], 0, "{j:#}");
}

/// Copies the estate from `src` to `dst` with repair, proves it identical,
/// then injects the classic copy faults on `dst` and proves each is found
/// with its kind and nothing else.
async fn migrate_and_judge(from: Release, src: &ZkServer, to: Release, dst: &ZkServer) {
    let root = unique_path(&format!("mig-{from}-{to}").replace('.', ""));
    let s = release_session(from, src).await;
    seed(&s, &root).await;
    copy(&src.connect_string(), &dst.connect_string(), &root).await;
    let (code, r) = compare_json_between(&src.connect_string(), &dst.connect_string(), &root).await;
    assert_eq!((code, found(&r).len()), (0, 0), "{from} → {to}: {r:#}");

    let t = release_session(to, dst).await;
    t.set_data(&format!("{root}/config/topics/orders"), b"v2", None)
        .await
        .expect("a value changed");
    t.delete(&format!("{root}/big"), None)
        .await
        .expect("a node lost");
    t.set_acl(&format!("{root}/guarded"), &zk::Acls::anyone_all(), None)
        .await
        .expect("an ACL loosened");
    // The queue recreated as a copy tool does: same children, counter reset.
    let queue = format!("{root}/queue");
    let mut items = t.list_children(&queue).await.expect("items");
    items.sort();
    for i in &items {
        t.delete(&format!("{queue}/{i}"), None)
            .await
            .expect("delete item");
    }
    t.delete(&queue, None).await.expect("delete queue");
    t.create(&queue, b"", &open()).await.expect("queue again");
    for i in &items {
        t.create(&format!("{queue}/{i}"), b"job", &open())
            .await
            .expect("item again");
    }
    let (code, r) = compare_json_between(&src.connect_string(), &dst.connect_string(), &root).await;
    let want: BTreeSet<String> = [
        format!("data {root}/config/topics/orders"),
        format!("missing_in_target {root}/big"),
        format!("acl {root}/guarded"),
        format!("sequence_counter {queue}"),
    ]
    .into_iter()
    .collect();
    assert_eq!(found(&r), want, "{from} → {to}: {r:#}");
    assert_eq!(code, 1);
}

async fn each_copy_fault_is_found_alone_within(release: Release) {
    let p = pair_of(release);
    migrate_and_judge(release, &p.source, release, &p.target).await;
}

async fn probe_reads_the_release_as_its_defaults_allow(release: Release) {
    let p = pair_of(release);
    let r = run(&[
        "probe",
        "--source",
        &p.source.connect_string(),
        "--target",
        &p.target.connect_string(),
        "--source-admin-port",
        &admin(&p.source),
        "--target-admin-port",
        &admin(&p.target),
        "--format",
        "json",
    ])
    .await;
    // Other tests write to these servers: their counts may differ (exit 1),
    // but both ensembles are healthy.
    assert!(matches!(r.code, 0 | 1), "{}", ctx(&r));
    let j = r.json();
    assert_eq!(j["healthy"], true, "{j:#}");
    let server = &j["source"]["servers"][0];
    assert!(
        server["version"]["text"]
            .as_str()
            .is_some_and(|v| v.starts_with(release.name())),
        "{server:#}"
    );
    assert_eq!(server["mode"], "standalone");
    assert!(
        server["ephemerals"].is_u64(),
        "mntr's numbers, one way or the other: {server:#}"
    );
    let through_admin: Vec<&str> = server["admin_words"]
        .as_array()
        .expect("admin_words")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if release.is_3_5_or_later() {
        assert_eq!(server["words"]["srvr"]["status"], "answered");
        assert!(through_admin.contains(&"mntr"), "{server:#}");
    } else {
        // 3.4 has no whitelist: every word answers on the client port.
        assert!(through_admin.is_empty(), "{server:#}");
        assert_eq!(server["words"]["mntr"]["status"], "answered", "{server:#}");
    }
    // Other tests write to these servers: the counts are read, not equal.
    assert!(
        j["parity"]["persistent_delta"].is_i64(),
        "{:#}",
        j["parity"]
    );
}

async fn the_checks_answer_on_the_release(release: Release) {
    let p = pair_of(release);
    let (src, tgt) = (p.source.connect_string(), p.target.connect_string());
    let (pa, pb) = (admin(&p.source), admin(&p.target));
    let with_admin = |mut args: Vec<&'static str>| {
        let mut a: Vec<String> = args.drain(..).map(String::from).collect();
        a.extend(["--source-admin-port".to_string(), pa.clone()]);
        a
    };
    let mut health = with_admin(vec!["check", "health"]);
    health.extend(["--source".into(), src.clone()]);
    let r = run(&health.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(r.code, 0, "check health on {release}: {}", ctx(&r));

    let mut counts = with_admin(vec!["check", "counts"]);
    counts.extend([
        // The servers are shared: the counts are read, not equal.
        "-w".into(),
        "-1000000:1000000".into(),
        "--source".into(),
        src.clone(),
        "--target".into(),
        tgt.clone(),
        "--target-admin-port".into(),
        pb.clone(),
    ]);
    let r = run(&counts.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(r.code, 0, "check counts on {release}: {}", ctx(&r));

    let root = unique_path(&format!("znode-{release}").replace('.', ""));
    let s = release_session(release, &p.source).await;
    s.create(&root, b"ENABLED", &open()).await.expect("node");
    let r = run(&[
        "check",
        "znode",
        "--source",
        &src,
        "--path",
        &root,
        "--data-regex",
        "ENABLED",
        "--persistent",
    ])
    .await;
    assert_eq!(r.code, 0, "check znode on {release}: {}", ctx(&r));
}

async fn a_snapshot_of_the_release_compares_identical_with_it(release: Release) {
    let p = pair_of(release);
    let root = unique_path(&format!("snap-{release}").replace('.', ""));
    let s = release_session(release, &p.source).await;
    seed(&s, &root).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("before.zkps");
    let file_arg = file.display().to_string();
    let r = run(&[
        "snapshot",
        "--server",
        &p.source.connect_string(),
        "--path",
        &root,
        "--out",
        &file_arg,
        "--quiet",
    ])
    .await;
    assert_eq!(r.code, 0, "snapshot of {release}: {}", ctx(&r));
    let (code, r) = compare_json_between(&file_arg, &p.source.connect_string(), &root).await;
    assert_eq!(code, 0, "{release}: {r:#}");
    assert_eq!(
        r["summary"]["source"]["nodes"],
        r["summary"]["target"]["nodes"]
    );
}

async fn the_agent_watches_or_walks_the_release(release: Release) {
    let p = pair_of(release);
    let root = unique_path(&format!("agent-{release}").replace('.', ""));
    let s = release_session(release, &p.source).await;
    let t = release_session(release, &p.target).await;
    for c in [&s, &t] {
        c.create(&root, b"r", &open()).await.expect("root");
        c.create(&format!("{root}/a"), b"1", &open())
            .await
            .expect("a");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("agent.toml");
    std::fs::write(
        &file,
        format!(
            "state_dir = {:?}\n[[pair]]\nname = \"v\"\nsource = {:?}\ntarget = {:?}\npath = {root:?}\n\
             interval = \"1s\"\njitter = \"100ms\"\nrecheck_delay = \"200ms\"\nconfirm_rounds = 2\n",
            dir.path(),
            p.source.connect_string(),
            p.target.connect_string()
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.path().join("agent.log")).expect("log");
    let mut agent = Guarded::spawn(agent_command(&file).stderr(log)).expect("agent");
    let state_file = dir.path().join("v.json");
    let state = |want: &dyn Fn(&Value) -> bool| {
        let v = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        v.filter(|v| want(v))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let settled = loop {
        if let Some(v) = state(&|v| v["round"].as_u64().unwrap_or(0) >= 3) {
            break v;
        }
        assert!(
            matches!(agent.try_wait(), Ok(None)) && Instant::now() < deadline,
            "{release}: {}",
            std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(settled["status"], "ok", "{release}: {settled:#}");
    if release >= Release::V3_6_3 {
        assert_eq!(settled["watch"]["source"], "live", "{release}: {settled:#}");
        assert_ne!(settled["round_kind"], "full_walk", "{release}: {settled:#}");
    } else {
        // No persistent watches before 3.6: every round walks.
        assert_eq!(settled["watch"]["source"], "unsupported", "{settled:#}");
        assert_eq!(settled["round_kind"], "full_walk", "{settled:#}");
    }
    // A drift is confirmed either way.
    t.set_data(&format!("{root}/a"), b"2", None)
        .await
        .expect("drift");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if state(&|v| v["status"] == "drift").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{release}: drift never confirmed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = agent.signal(libc::SIGTERM);
    let _ = agent.wait();
}

macro_rules! per_release {
    ($($module:ident => $release:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[tokio::test]
            async fn each_copy_fault_is_found_alone() {
                each_copy_fault_is_found_alone_within($release).await
            }

            #[tokio::test]
            async fn probe_reads_it_as_its_defaults_allow() {
                probe_reads_the_release_as_its_defaults_allow($release).await
            }

            #[tokio::test]
            async fn the_checks_answer() {
                the_checks_answer_on_the_release($release).await
            }

            #[tokio::test]
            async fn a_snapshot_compares_identical_with_it() {
                a_snapshot_of_the_release_compares_identical_with_it($release).await
            }

            #[tokio::test]
            async fn the_agent_watches_or_walks_it() {
                the_agent_watches_or_walks_the_release($release).await
            }
        }
    )*};
}

per_release! {
    zk_3_4 => Release::V3_4_6,
    zk_3_6 => Release::V3_6_3,
    zk_3_8 => Release::V3_8_0,
    zk_3_9 => Release::V3_9_3,
}

#[tokio::test]
async fn migrations_across_releases_give_the_verdicts_of_a_same_release_copy() {
    for (from, to) in [
        (Release::V3_4_6, Release::V3_8_0),
        (Release::V3_6_3, Release::V3_9_3),
        // A downgrade.
        (Release::V3_9_3, Release::V3_8_0),
    ] {
        migrate_and_judge(from, &pair_of(from).source, to, &pair_of(to).target).await;
    }
}

#[tokio::test]
async fn a_3_9_ensemble_is_probed_through_its_admin_servers_and_copied_into() {
    static QUORUM: OnceLock<Ensemble> = OnceLock::new();
    let quorum = tokio::task::spawn_blocking(|| {
        QUORUM.get_or_init(|| Ensemble::start(3, &defaults(Release::V3_9_3)).expect("3.9 quorum"))
    })
    .await
    .expect("starter");
    let connect = quorum.connect_string();
    let ports: Vec<String> = quorum.servers.iter().map(admin).collect();
    let r = run(&[
        "probe",
        "--source",
        &connect,
        "--source-admin-port",
        &ports.join(","),
        "--format",
        "json",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let j = r.json();
    assert_eq!(j["source"]["leaders"], 1, "{:#}", j["source"]);
    assert_eq!(j["source"]["synced_followers"], 2, "{:#}", j["source"]);
    // A 3.8 source copied into the 3.9 quorum, then judged.
    let p = pair_of(Release::V3_8_0);
    migrate_and_judge(
        Release::V3_8_0,
        &p.source,
        Release::V3_9_3,
        &quorum.servers[0],
    )
    .await;
}

#[tokio::test]
async fn every_release_forms_a_quorum_that_the_probe_finds_healthy() {
    for release in [Release::V3_4_6, Release::V3_6_3] {
        let quorum = tokio::task::spawn_blocking(move || Ensemble::start(3, &defaults(release)))
            .await
            .expect("starter")
            .unwrap_or_else(|e| panic!("a {release} quorum: {e}"));
        let ports: Vec<String> = quorum.servers.iter().map(admin).collect();
        let r = run(&[
            "probe",
            "--source",
            &quorum.connect_string(),
            "--source-admin-port",
            &if release.is_3_5_or_later() {
                ports.join(",")
            } else {
                "8080".to_string()
            },
            "--format",
            "json",
        ])
        .await;
        assert_eq!(r.code, 0, "{release}: {}", ctx(&r));
        let j = r.json();
        assert_eq!(
            j["source"]["kind"], "quorum",
            "{release}: {:#}",
            j["source"]
        );
        assert_eq!(j["source"]["leaders"], 1, "{release}: {:#}", j["source"]);
        assert_eq!(
            j["source"]["synced_followers"], 2,
            "{release}: {:#}",
            j["source"]
        );
    }
}
