//! Real applications writing ZooKeeper, judged by zkparity: Apache Curator's
//! recipes (a program compiled from tests/apps/curator at test time) and
//! ClickHouse's ReplicatedMergeTree, each a guarded child of this binary,
//! build their trees on the shared pair's source. `zkparity repair --apply`
//! copies a tree while the application keeps working, and a compare then
//! finds the copy identical; faults put on the copy afterwards are each
//! reported with exactly their kind at their path, and nothing else is.
//!
//! Sequential directories count only where their counter means something:
//! persistent children named with ZooKeeper's ten-digit suffix (a queue, a
//! replication log). Lock, latch and election directories hold only
//! ephemerals; ClickHouse's block hashes merely end in long digit runs.

mod common;
mod real_apps_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use real_apps_support::{ClickHouse, CuratorApp};
use zookeeper_client as zk;

// ---------------------------------------------------------------------------
// Helpers

/// `zkparity repair --apply` of `root` from the shared pair's source to its
/// target, as `auth` (`user:password`) on both sides: without ADMIN on a
/// node the server hides the digests in its ACL (`user:x`); a copy of that
/// would lock its owner out, and a verification reading one side with and
/// the other without would see ACLs differ. Every planned write must
/// succeed; the report (with its verification) is returned.
async fn repair_apply(root: &str, auth: &str) -> serde_json::Value {
    let p = pair();
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    let r = run_env(
        &[
            "repair",
            "--source",
            &src,
            "--target",
            &dst,
            "--path",
            root,
            // The target starts empty: the app's root is created.
            "--create-path",
            "--format",
            "json",
            "--recheck-delay",
            "0s",
            "--limit",
            "0",
            "--apply",
        ],
        &[
            ("ZKPARITY_SOURCE_AUTH", auth),
            ("ZKPARITY_TARGET_AUTH", auth),
        ],
    )
    .await;
    assert!(
        r.code == 0 || r.code == 1,
        "repair --apply {root}: {}",
        ctx(&r)
    );
    let j = r.json();
    let a = &j["apply"];
    assert!(
        a["failed"] == 0 && a["conflicts"] == 0 && a["applied"].as_u64() > Some(0),
        "repair --apply {root}: {j:#}"
    );
    eprintln!(
        "repair of {root}: {} applied; verification {}",
        a["applied"], j["verification"]
    );
    j
}

/// The repair's own verification found the copy identical.
fn assert_verified(repair: &serde_json::Value) {
    assert_eq!(
        repair["verification"]["identical"], true,
        "the repair's verification: {:#}",
        repair["verification"]
    );
}

fn differences(report: &serde_json::Value) -> BTreeSet<(String, String)> {
    report["differences"]
        .as_array()
        .expect("differences array")
        .iter()
        .map(|d| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            (s(&d["path"]), s(&d["kind"]))
        })
        .collect()
}

fn listing(report: &serde_json::Value) -> String {
    differences(report)
        .iter()
        .map(|(path, kind)| format!("  {kind} {path}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn assert_identical(root: &str, app: &str) {
    let (code, report) = compare_json(root, &[]).await;
    assert!(
        code == 0 && report["summary"]["confirmed"] == 0,
        "{app}'s copy differs (exit {code}, {} confirmed):\n{}\nsummary: {:#}",
        report["summary"]["confirmed"],
        listing(&report),
        report["summary"]
    );
}

/// A compare of `root` finds exactly `expected` (path, kind) and nothing else.
async fn assert_exactly(root: &str, expected: &[(String, &str)]) {
    let (code, report) = compare_json(root, &[]).await;
    let want: BTreeSet<(String, String)> = expected
        .iter()
        .map(|(p, k)| (p.clone(), k.to_string()))
        .collect();
    let got = differences(&report);
    assert_eq!(
        got,
        want,
        "found:\n{}\nexpected:\n{}",
        listing(&report),
        want.iter()
            .map(|(p, k)| format!("  {k} {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(code, 1);
    assert_eq!(report["summary"]["confirmed"], expected.len() as u64);
}

async fn stat(c: &zk::Client, path: &str) -> zk::Stat {
    c.check_stat(path)
        .await
        .unwrap_or_else(|e| panic!("stat {path}: {e}"))
        .unwrap_or_else(|| panic!("{path} missing"))
}

async fn children(c: &zk::Client, path: &str) -> Vec<String> {
    let mut names = c
        .list_children(path)
        .await
        .unwrap_or_else(|e| panic!("list {path}: {e}"));
    names.sort();
    names
}

/// Waits (bounded) until `done` holds, re-evaluated every 100 ms.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rebuilds `dir` on `c` by plain creates of the same children with the
/// same data and ACLs, as a copy tool that knows nothing of counters would:
/// the children match, the parent's counter is only their number.
async fn rebuild_without_counter(c: &zk::Client, dir: &str) {
    let names = children(c, dir).await;
    let mut saved = Vec::new();
    for name in &names {
        let path = format!("{dir}/{name}");
        let (data, _) = c.get_data(&path).await.expect("get_data");
        let (acl, _) = c.get_acl(&path).await.expect("get_acl");
        saved.push((path, data, acl));
    }
    let (dir_data, _) = c.get_data(dir).await.expect("get_data");
    let (dir_acl, _) = c.get_acl(dir).await.expect("get_acl");
    for (path, _, _) in &saved {
        c.delete(path, None).await.expect("delete child");
    }
    c.delete(dir, None).await.expect("delete dir");
    c.create(
        dir,
        &dir_data,
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&dir_acl)),
    )
    .await
    .expect("create dir");
    for (path, data, acl) in &saved {
        c.create(
            path,
            data,
            &zk::CreateMode::Persistent.with_acls(zk::Acls::new(acl)),
        )
        .await
        .expect("create child");
    }
}

/// The app's ephemeral, as a persistent node of the same data on `t`.
async fn persistent_copy_of_ephemeral(s: &zk::Client, t: &zk::Client, path: &str) {
    let owner = stat(s, path).await.ephemeral_owner;
    assert_ne!(owner, 0, "{path} is ephemeral on the source");
    assert!(
        t.check_stat(path).await.unwrap().is_none(),
        "repair copies no ephemeral: {path}"
    );
    let (data, _) = s.get_data(path).await.expect("get_data");
    create(t, path, &data).await;
}

async fn cut_value(t: &zk::Client, path: &str) {
    let (data, _) = t.get_data(path).await.expect("get_data");
    assert!(data.len() > 1, "{path} has a value to cut");
    t.set_data(path, &data[..data.len() / 2], None)
        .await
        .expect("set_data");
}

fn world_all() -> Vec<zk::Acl> {
    vec![zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("world", "anyone"),
    )]
}

/// How many nodes (and ephemerals) a tree holds, for the test's log.
async fn census(c: &zk::Client, root: &str) -> String {
    let tree = read_tree(c, root).await;
    let ephemerals = tree
        .values()
        .filter(|(s, _)| s.ephemeral_owner != 0)
        .count();
    format!("{} nodes, {ephemerals} ephemeral", tree.len())
}

// ---------------------------------------------------------------------------
// Curator

/// The digest identity CuratorEstate gives its config/cluster/owner.
const CURATOR_IDENTITY: &str = "estate:s3cret";

async fn start_curator(root: &str) -> CuratorApp {
    let connect = pair().source.connect_string();
    let root = root.to_string();
    tokio::task::spawn_blocking(move || CuratorApp::start(&connect, &root))
        .await
        .expect("CuratorEstate starter")
}

/// The lock turns a little further: the source's lock counter moves on.
async fn more_lock_turns(s: &zk::Client, root: &str, turns: i32) {
    let lock = format!("{root}/locks/turns");
    let from = stat(s, &lock).await.cversion;
    wait_for("more lock turns", Duration::from_secs(15), || async {
        stat(s, &lock).await.cversion >= from + 2 * turns
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_recipes_copied_while_their_locks_turn_compare_identical() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("curator-copy");
    let mut app = start_curator(&root).await;
    eprintln!("Curator wrote {}", census(&s, &root).await);

    let repair = repair_apply(&root, CURATOR_IDENTITY).await;
    more_lock_turns(&s, &root, 10).await;

    // The copy holds the recipes' persistent nodes and none of their ephemerals.
    assert_eq!(
        children(&t, &format!("{root}/queue")).await.len(),
        6,
        "queue items copied"
    );
    assert!(children(&t, &format!("{root}/locks/held")).await.is_empty());
    assert_identical(&root, "Curator").await;
    assert_verified(&repair);
    app.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_faults_on_the_copy_are_each_found_at_their_path_alone() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("curator-faults");
    let mut app = start_curator(&root).await;
    repair_apply(&root, CURATOR_IDENTITY).await;

    let queue = format!("{root}/queue");
    rebuild_without_counter(&t, &queue).await;
    let settings = format!("{root}/config/cluster/settings");
    cut_value(&t, &settings).await;
    let owner = format!("{root}/config/cluster/owner");
    let (acl, _) = s.get_acl(&owner).await.expect("get_acl");
    assert!(
        acl.iter().any(|a| a.scheme() == "digest"),
        "the app's own digest ACL: {acl:?}"
    );
    t.auth("digest", CURATOR_IDENTITY.as_bytes())
        .await
        .expect("auth");
    t.set_acl(&owner, &world_all(), None)
        .await
        .expect("set_acl");
    let worker = format!("{root}/services/worker/worker-1");
    persistent_copy_of_ephemeral(&s, &t, &worker).await;
    let counter = format!("{root}/counter");
    t.delete(&counter, None).await.expect("delete counter");

    more_lock_turns(&s, &root, 5).await;
    assert_exactly(
        &root,
        &[
            (queue, "sequence_counter"),
            (settings, "data"),
            (owner, "acl"),
            (worker, "node_kind"),
            (counter, "missing_in_target"),
        ],
    )
    .await;
    app.stop();
}

// ---------------------------------------------------------------------------
// ClickHouse

/// The ZooKeeper path of the replicated table, below the server's root.
const TABLE_PATH: &str = "/clickhouse/tables/01/events";
const BATCHES: usize = 4;
/// The digest identity of the credentials node kept next to ClickHouse's
/// tables (`ops:` + base64 of SHA-1 of `ops:ops` in its ACL).
const CLICKHOUSE_IDENTITY: &str = "ops:ops";
const ROWS_PER_BATCH: usize = 50;

/// A ClickHouse server chrooted at `root` on the source, with two replicas
/// of one table that has replicated `BATCHES` inserts (one partition each,
/// so no merge rewrites the tree later) and pruned its log to the last two
/// entries, as its cleanup does on a busy table.
async fn clickhouse_estate(s: &zk::Client, root: &str) -> ClickHouse {
    create(s, root, b"").await;
    let port = pair().source.port();
    let root_owned = root.to_string();
    let ch = tokio::task::spawn_blocking(move || {
        let ch = ClickHouse::start(port, &root_owned);
        for replica in ["r1", "r2"] {
            ch.query(&format!(
                "CREATE TABLE events_{replica} (day Date, id UInt64, what String) \
                 ENGINE = ReplicatedMergeTree('{TABLE_PATH}', '{replica}') \
                 PARTITION BY day ORDER BY id \
                 SETTINGS min_replicated_logs_to_keep = 2, max_replicated_logs_to_keep = 3, \
                 cleanup_delay_period = 1, cleanup_delay_period_random_add = 0"
            ));
        }
        for batch in 0..BATCHES {
            let rows = (0..ROWS_PER_BATCH)
                .map(|i| {
                    format!(
                        "('2024-01-{:02}', {}, 'event {i}')",
                        batch + 1,
                        batch * 1000 + i
                    )
                })
                .collect::<Vec<_>>()
                .join(",");
            ch.query(&format!("INSERT INTO events_r1 VALUES {rows}"));
        }
        ch
    })
    .await
    .expect("ClickHouse starter");

    let table = format!("{root}{TABLE_PATH}");
    let want = (BATCHES * ROWS_PER_BATCH).to_string();
    wait_for(
        "the second replica to fetch every part",
        Duration::from_secs(30),
        || async { ch.query("SELECT count() FROM events_r2").trim() == want },
    )
    .await;
    wait_for("the log's cleanup", Duration::from_secs(30), || async {
        children(s, &format!("{table}/log")).await.len() <= 2
    })
    .await;
    let log = stat(s, &format!("{table}/log")).await;
    assert!(
        log.cversion as usize >= BATCHES,
        "the log handed out {BATCHES} entries: {log:?}"
    );
    ch
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_replicated_table_copied_while_served_compares_identical() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("clickhouse-copy");
    let ch = clickhouse_estate(&s, &root).await;
    eprintln!("ClickHouse wrote {}", census(&s, &root).await);

    let repair = repair_apply(&root, CLICKHOUSE_IDENTITY).await;
    // The replicas stay active, the leader stays elected; nothing is inserted.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let table = format!("{root}{TABLE_PATH}");
    assert_eq!(
        children(&t, &format!("{table}/log")).await,
        children(&s, &format!("{table}/log")).await
    );
    assert_identical(&root, "ClickHouse").await;
    assert_verified(&repair);
    drop(ch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_faults_on_the_copy_are_each_found_at_their_path_alone() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("clickhouse-faults");
    let ch = clickhouse_estate(&s, &root).await;
    // ClickHouse sets no ACLs of its own: a credentials node kept next to it.
    let secret = format!("{root}/clickhouse/credentials");
    let digest = zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", "ops:SsQq36Kt1EzuJAUnfWdST38r8U0="),
    );
    let read = zk::Acl::new(zk::Permission::READ, zk::AuthId::new("world", "anyone"));
    s.create(
        &secret,
        b"user=ops",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&[digest, read])),
    )
    .await
    .expect("create credentials");
    repair_apply(&root, CLICKHOUSE_IDENTITY).await;

    let table = format!("{root}{TABLE_PATH}");
    let log = format!("{table}/log");
    rebuild_without_counter(&t, &log).await;
    let metadata = format!("{table}/metadata");
    cut_value(&t, &metadata).await;
    t.auth("digest", CLICKHOUSE_IDENTITY.as_bytes())
        .await
        .expect("auth");
    t.set_acl(&secret, &world_all(), None)
        .await
        .expect("set_acl");
    let active = format!("{table}/replicas/r1/is_active");
    persistent_copy_of_ephemeral(&s, &t, &active).await;
    let pointer = format!("{table}/replicas/r2/log_pointer");
    t.delete(&pointer, None).await.expect("delete log_pointer");

    assert_exactly(
        &root,
        &[
            (log, "sequence_counter"),
            (metadata, "data"),
            (secret, "acl"),
            (active, "node_kind"),
            (pointer, "missing_in_target"),
        ],
    )
    .await;
    drop(ch);
}
