//! `zkparity check ephemerals` against real servers: an estate of Kafka-,
//! HBase-, Solr-, ClickHouse- and Curator-shaped registrations held by test
//! sessions on the shared pair's source is taken as the expectation (a
//! snapshot, the old servers' data directory, or the old ensemble itself),
//! then "applications" (test sessions, and a real Curator program) register
//! on the target one by one, as after a cutover, under the new names their
//! restart gives them (start codes, sequence numbers, instance ids).

mod common;
mod real_apps_support;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use zookeeper_client as zk;

// ---------------------------------------------------------------------------
// Helpers

fn ephemeral_sequential() -> zk::CreateOptions<'static> {
    zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all())
}

/// The persistent nodes the applications register under, as a copy of
/// the tree puts them on the target too.
const SKELETON: &[&str] = &[
    "brokers",
    "brokers/ids",
    "hbase",
    "hbase/rs",
    "solr",
    "solr/live_nodes",
    "solr/overseer_elect",
    "solr/overseer_elect/election",
    "ch",
    "ch/tables",
    "ch/tables/t1",
    "ch/tables/t1/replicas",
    "ch/tables/t1/replicas/r1",
    "ch/tables/t1/replicas/r2",
    "ch/tables/t1/leader_election",
    "services",
    "services/api",
];

async fn skeleton(c: &zk::Client, root: &str) {
    let nodes: Vec<(&str, &[u8])> = SKELETON.iter().map(|n| (*n, &b""[..])).collect();
    tree(c, root, &nodes).await;
}

async fn eph(c: &zk::Client, path: &str, data: &[u8]) {
    c.create(path, data, &ephemeral())
        .await
        .unwrap_or_else(|e| panic!("create ephemeral {path}: {e}"));
}

async fn eph_seq(c: &zk::Client, prefix: &str) {
    c.create(prefix, b"", &ephemeral_sequential())
        .await
        .unwrap_or_else(|e| panic!("create ephemeral sequential {prefix}: {e}"));
}

/// Moves a parent's sequence counter on, so a new registration under it
/// cannot get the name the old one had.
async fn bump_counter(c: &zk::Client, parent: &str, by: usize) {
    let prefix = format!("{parent}/bump-");
    create_sequential(c, &prefix, b"", by).await;
    for name in c.list_children(parent).await.expect("list") {
        if name.starts_with("bump-") {
            c.delete(&format!("{parent}/{name}"), None)
                .await
                .expect("delete bump");
        }
    }
}

/// Kafka: the given brokers, and the controller if `controller`.
async fn kafka(c: &zk::Client, root: &str, brokers: &[u32], controller: bool) {
    for id in brokers {
        eph(
            c,
            &format!("{root}/brokers/ids/{id}"),
            format!("{{\"host\":\"b{id}\",\"port\":9092}}").as_bytes(),
        )
        .await;
    }
    if controller {
        eph(c, &format!("{root}/controller"), b"{\"brokerid\":1}").await;
    }
}

/// HBase: the master and two region servers started at `startcode`.
async fn hbase(c: &zk::Client, root: &str, startcode: u64) {
    eph(c, &format!("{root}/hbase/master"), b"PBUF").await;
    for host in ["h1", "h2"] {
        eph(c, &format!("{root}/hbase/rs/{host},16020,{startcode}"), b"").await;
    }
}

/// Solr: two live nodes, both standing in the overseer election.
async fn solr(c: &zk::Client, root: &str, session: u64) {
    for node in ["h1:8983_solr", "h2:8983_solr"] {
        eph(c, &format!("{root}/solr/live_nodes/{node}"), b"").await;
        eph_seq(
            c,
            &format!("{root}/solr/overseer_elect/election/{session}-{node}-n_"),
        )
        .await;
    }
}

/// ClickHouse: both replicas active, one in the (old-style) leader election.
async fn clickhouse(c: &zk::Client, root: &str) {
    for r in ["r1", "r2"] {
        eph(
            c,
            &format!("{root}/ch/tables/t1/replicas/{r}/is_active"),
            b"run-uuid",
        )
        .await;
    }
    eph_seq(
        c,
        &format!("{root}/ch/tables/t1/leader_election/leader_election-"),
    )
    .await;
}

fn uuid() -> String {
    let h = |n: usize| {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)]))
            .collect::<String>()
    };
    format!("{}-{}-{}-{}-{}", h(8), h(4), h(4), h(4), h(12))
}

/// Curator service discovery: two instances of `api` under random ids.
async fn discovery(c: &zk::Client, root: &str) {
    for _ in 0..2 {
        eph(c, &format!("{root}/services/api/{}", uuid()), b"{}").await;
    }
}

async fn snapshot(root: &str) -> (tempfile::TempDir, String) {
    snapshot_with(root, &[]).await
}

async fn snapshot_with(root: &str, extra: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("before.zkps").display().to_string();
    let source = pair().source.connect_string();
    let mut args = vec![
        "snapshot", "--server", &source, "--path", root, "--out", &file, "--quiet",
    ];
    args.extend_from_slice(extra);
    let r = run(&args).await;
    assert_eq!(r.code, 0, "snapshot: {}", ctx(&r));
    (dir, file)
}

/// `zkparity check ephemerals` of `root` against the shared target.
async fn check(expect: &str, root: &str, extra: &[&str]) -> Run {
    let target = pair().target.connect_string();
    let mut args = vec![
        "check",
        "ephemerals",
        "--expect",
        expect,
        "--target",
        &target,
        "--path",
        root,
    ];
    args.extend_from_slice(extra);
    let r = run(&args).await;
    eprintln!("{}", r.stdout.lines().next().unwrap_or_default());
    r
}

fn status(r: &Run) -> &str {
    r.stdout.lines().next().unwrap_or_default()
}

/// Asserts the check's state, by exit code and status line.
fn assert_state(r: &Run, code: i32, state: &str) {
    assert_eq!(r.code, code, "{}", ctx(r));
    assert!(
        status(r).starts_with(&format!("ZKPARITY EPHEMERALS {state} - ")),
        "{}",
        ctx(r)
    );
}

fn epoch_seconds_ago(s: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs();
    (now - s).to_string()
}

const GRACE_PAST: &[&str] = &["--grace", "0s"];
const GRACE_WITHIN: &[&str] = &["--grace", "1h"];

// ---------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread")]
async fn applications_coming_back_one_by_one_turn_the_check_from_critical_or_warning_to_ok() {
    let (_, src, dst) = pair_clients().await;
    let root = unique_path("estate");
    skeleton(&src, &root).await;
    skeleton(&dst, &root).await;
    // The old ensemble's applications, each with its session.
    let old: Vec<zk::Client> =
        futures::future::join_all((0..5).map(|_| client(&pair().source))).await;
    kafka(&old[0], &root, &[1, 2, 3], true).await;
    hbase(&old[1], &root, 1_700_000_000_000).await;
    solr(&old[2], &root, 72057594037927936).await;
    clickhouse(&old[3], &root).await;
    discovery(&old[4], &root).await;
    let (_dir, expected) = snapshot(&root).await;

    let r = check(&expected, &root, GRACE_PAST).await;
    assert_state(&r, 2, "CRITICAL");
    assert!(
        status(&r).contains("16 of 16 registrations missing"),
        "{}",
        ctx(&r)
    );
    assert_state(&check(&expected, &root, GRACE_WITHIN).await, 1, "WARNING");

    // After the cutover: sequence counters on the new ensemble are where
    // its own history left them.
    for parent in [
        "solr/overseer_elect/election",
        "ch/tables/t1/leader_election",
    ] {
        bump_counter(&dst, &format!("{root}/{parent}"), 5).await;
    }
    let new: Vec<zk::Client> =
        futures::future::join_all((0..5).map(|_| client(&pair().target))).await;

    // Kafka, with broker 3 still down.
    kafka(&new[0], &root, &[1, 2], true).await;
    let r = check(&expected, &root, GRACE_PAST).await;
    assert_state(&r, 2, "CRITICAL");
    assert!(status(&r).contains("13 of 16"), "{}", ctx(&r));
    assert_state(&check(&expected, &root, GRACE_WITHIN).await, 1, "WARNING");

    // HBase, its region servers under new start codes.
    hbase(&new[1], &root, 1_700_000_999_999).await;
    assert_state(&check(&expected, &root, GRACE_PAST).await, 2, "CRITICAL");
    // Solr, its election nodes under new sessions and sequence numbers.
    solr(&new[2], &root, 144115188075855872).await;
    assert_state(&check(&expected, &root, GRACE_PAST).await, 2, "CRITICAL");
    // ClickHouse and the discovered services (new instance ids).
    clickhouse(&new[3], &root).await;
    discovery(&new[4], &root).await;

    // Only broker 3 is missing now, and it is named.
    let r = check(&expected, &root, GRACE_PAST).await;
    assert_state(&r, 2, "CRITICAL");
    assert!(
        status(&r).contains("1 of 16 registrations missing"),
        "{}",
        ctx(&r)
    );
    let line = format!("kafka brokers 2 of 3: missing {root}/brokers/ids/3");
    assert!(r.stdout.lines().any(|l| l == line), "{}", ctx(&r));
    for back in [
        "hbase region servers 2 of 2: all back",
        "solr elections 2 of 2: all back",
        "clickhouse leader elections 1 of 1: all back",
        "service discovery instances 2 of 2: all back",
    ] {
        assert!(r.stdout.lines().any(|l| l == back), "{back}: {}", ctx(&r));
    }
    assert!(status(&r).contains("kafka_brokers=2;;;0;3"), "{}", ctx(&r));
    assert_state(&check(&expected, &root, GRACE_WITHIN).await, 1, "WARNING");
    // A cutover an hour ago is past the default grace.
    let since = epoch_seconds_ago(3600);
    assert_state(
        &check(&expected, &root, &["--since", &since]).await,
        2,
        "CRITICAL",
    );

    // Broker 3 is back.
    kafka(&new[0], &root, &[3], false).await;
    let r = check(&expected, &root, GRACE_PAST).await;
    assert_state(&r, 0, "OK");
    assert!(
        status(&r).contains("16 of 16 registrations back"),
        "{}",
        ctx(&r)
    );
    assert_state(&check(&expected, &root, GRACE_WITHIN).await, 0, "OK");

    let j = check(&expected, &root, &["--format", "json"]).await.json();
    assert_eq!(j["state"], "OK", "{j:#}");
    assert_eq!(
        (j["expected"].as_u64(), j["present"].as_u64()),
        (Some(16), Some(16))
    );
    assert_eq!(j["missing"], 0);
    assert_eq!(j["cutover_from"], "snapshot_created");
    let roles = j["roles"].as_array().expect("roles");
    let hbase_rs = roles
        .iter()
        .find(|r| r["role"] == "hbase region servers")
        .expect("hbase region servers");
    assert_eq!(hbase_rs["matched_by"], "host_port");
    assert_eq!(hbase_rs["application"], "HBase");
    drop(old);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expected_ephemeral_copied_as_a_persistent_node_is_critical_even_within_the_grace() {
    let (_, src, dst) = pair_clients().await;
    let root = unique_path("copied");
    skeleton(&src, &root).await;
    skeleton(&dst, &root).await;
    let old = client(&pair().source).await;
    kafka(&old, &root, &[1, 2], false).await;
    let (_dir, expected) = snapshot(&root).await;
    // A copy tool that made broker 1 persistent; broker 2 came back.
    create(&dst, &format!("{root}/brokers/ids/1"), b"copied").await;
    let new = client(&pair().target).await;
    kafka(&new, &root, &[2], false).await;

    let r = check(&expected, &root, GRACE_WITHIN).await;
    assert_state(&r, 2, "CRITICAL");
    assert!(
        status(&r).contains("persistent on the target"),
        "{}",
        ctx(&r)
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("kafka brokers: persistent on the target")
                && l.ends_with(&format!("{root}/brokers/ids/1"))),
        "{}",
        ctx(&r)
    );
    let j = check(&expected, &root, &["--format", "json", "--grace", "1h"])
        .await
        .json();
    assert_eq!(j["persistent"], 1, "{j:#}");
    assert_eq!(j["state"], "CRITICAL");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_target_is_unknown() {
    let (_, src, _) = pair_clients().await;
    let root = unique_path("unreachable");
    skeleton(&src, &root).await;
    let old = client(&pair().source).await;
    kafka(&old, &root, &[1], false).await;
    let (_dir, expected) = snapshot(&root).await;
    let dead = format!("127.0.0.1:{}", dead_port());
    let r = run(&[
        "check",
        "ephemerals",
        "--expect",
        &expected,
        "--target",
        &dead,
        "--path",
        &root,
        "-t",
        "5s",
    ])
    .await;
    eprintln!("{}", status(&r));
    assert_state(&r, 3, "UNKNOWN");
    let r = run(&[
        "check",
        "ephemerals",
        "--expect",
        &expected,
        "--target",
        &dead,
        "--path",
        &root,
        "-t",
        "5s",
        "--format",
        "json",
    ])
    .await;
    assert_eq!(r.code, 3, "{}", ctx(&r));
    assert_eq!(r.json()["state"], "UNKNOWN");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_taken_without_ephemerals_is_unknown_not_ok() {
    let (_, src, dst) = pair_clients().await;
    let root = unique_path("skipped");
    skeleton(&src, &root).await;
    skeleton(&dst, &root).await;
    let old = client(&pair().source).await;
    kafka(&old, &root, &[1], false).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("skip.zkps").display().to_string();
    let r = run(&[
        "snapshot",
        "--server",
        &pair().source.connect_string(),
        "--path",
        &root,
        "--out",
        &file,
        "--ephemerals",
        "skip",
        "--quiet",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let r = check(&file, &root, &[]).await;
    assert_state(&r, 3, "UNKNOWN");
    assert!(status(&r).contains("--ephemerals skip"), "{}", ctx(&r));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_old_ensemble_while_it_runs_is_an_expectation_from_now() {
    let (p, src, dst) = pair_clients().await;
    let root = unique_path("live");
    skeleton(&src, &root).await;
    skeleton(&dst, &root).await;
    let old = client(&p.source).await;
    kafka(&old, &root, &[1, 2], true).await;
    hbase(&old, &root, 100).await;
    let source = p.source.connect_string();

    // The cutover is now: within the default grace.
    let r = check(&source, &root, &[]).await;
    assert_state(&r, 1, "WARNING");
    assert!(
        status(&r).contains("6 of 6 registrations missing"),
        "{}",
        ctx(&r)
    );
    let since = epoch_seconds_ago(3600);
    assert_state(
        &check(&source, &root, &["--since", &since]).await,
        2,
        "CRITICAL",
    );

    let new = client(&p.target).await;
    kafka(&new, &root, &[1, 2], true).await;
    hbase(&new, &root, 200).await;
    let r = check(&source, &root, &["--since", &since]).await;
    assert_state(&r, 0, "OK");
    let j = check(&source, &root, &["--format", "json"]).await.json();
    assert_eq!(j["cutover_from"], "now", "{j:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_old_servers_data_directory_is_an_expectation_from_its_last_transaction() {
    let old_server = own_server().await;
    let (_, _, dst) = pair_clients().await;
    let root = unique_path("datadir");
    let c = client(&old_server).await;
    skeleton(&c, &root).await;
    skeleton(&dst, &root).await;
    kafka(&c, &root, &[1, 2], false).await;
    solr(&c, &root, 1).await;
    let data_dir = old_server.data_dir().display().to_string();

    let r = check(&data_dir, &root, GRACE_WITHIN).await;
    assert_state(&r, 1, "WARNING");
    assert!(
        status(&r).contains("6 of 6 registrations missing"),
        "{}",
        ctx(&r)
    );
    assert_state(&check(&data_dir, &root, GRACE_PAST).await, 2, "CRITICAL");
    let j = check(&data_dir, &root, &["--format", "json"]).await.json();
    assert_eq!(j["cutover_from"], "last_transaction", "{j:#}");

    bump_counter(&dst, &format!("{root}/solr/overseer_elect/election"), 3).await;
    let new = client(&pair().target).await;
    kafka(&new, &root, &[1, 2], false).await;
    solr(&new, &root, 2).await;
    assert_state(&check(&data_dir, &root, GRACE_PAST).await, 0, "OK");
}

/// Real Curator 5.4: its LeaderLatch, InterProcessMutex and service
/// discovery registrations on the old ensemble are back once the same
/// program runs against the new one, under new `_c_<uuid>-` names and
/// sequence numbers; its service instance, whose id the program fixes
/// (`worker-1`), by its path. The lock two takers pass back and forth holds one
/// or two candidates at any moment, so it is left out.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_curator_applications_latch_lock_and_service_come_back() {
    let (p, _, dst) = pair_clients().await;
    let root = unique_path("curator");
    let mut old_app = {
        let (connect, root) = (p.source.connect_string(), root.clone());
        tokio::task::spawn_blocking(move || real_apps_support::CuratorApp::start(&connect, &root))
            .await
            .expect("curator starter")
    };
    // Registrations are told by name and kind: an ACL whose digest ids the
    // snapshot could not see does not matter here.
    let (_dir, expected) = snapshot_with(&root, &["--allow-incomplete"]).await;
    // What a copy leaves on the new ensemble: the persistent tree only.
    create(&dst, &root, b"").await;
    let turns = format!("{root}/locks/turns");
    let exclude = ["--exclude", turns.as_str()];
    let r = check(&expected, &root, &[&exclude[..], GRACE_PAST].concat()).await;
    assert_state(&r, 2, "CRITICAL");
    assert!(
        r.stdout.contains("curator latches and locks 0 of 2"),
        "{}",
        ctx(&r)
    );
    old_app.stop();

    let _new_app = {
        let (connect, root) = (p.target.connect_string(), root.clone());
        tokio::task::spawn_blocking(move || real_apps_support::CuratorApp::start(&connect, &root))
            .await
            .expect("curator starter")
    };
    let r = check(&expected, &root, &[&exclude[..], GRACE_PAST].concat()).await;
    assert_state(&r, 0, "OK");
    assert!(
        r.stdout
            .lines()
            .any(|l| l == "curator latches and locks 2 of 2: all back"),
        "{}",
        ctx(&r)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_name_runs_the_check_and_arguments_it_cannot_use_are_unknown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugin = dir.path().join("check_zkparity_ephemerals");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_zkparity"), &plugin).expect("link");
    let target = pair().target.connect_string();
    let cases: [(&[&str], &str); 3] = [
        (&["--target", &target], "--expect"),
        (
            &["--expect", "/no/such/file", "--target", &target],
            "no such file",
        ),
        (
            &[
                "--expect",
                &target,
                "--target",
                &target,
                "--since",
                "yesterday",
            ],
            "--since",
        ),
    ];
    for (args, reason) in cases {
        let out = std::process::Command::new(&plugin)
            .args(args)
            .output()
            .expect("run the plugin");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stdout}");
        assert!(
            stdout.starts_with("ZKPARITY EPHEMERALS UNKNOWN - ") && stdout.contains(reason),
            "{args:?}: {stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_estate_migrated_with_sync_comes_back_on_the_target_as_its_applications_reconnect() {
    let (_, src, dst) = pair_clients().await;
    let root = unique_path("migrated");
    skeleton(&src, &root).await;
    create(&dst, &root, b"").await;
    let old: Vec<zk::Client> =
        futures::future::join_all((0..4).map(|_| client(&pair().source))).await;
    kafka(&old[0], &root, &[1, 2, 3], true).await;
    hbase(&old[1], &root, 1_700_000_000_000).await;
    solr(&old[2], &root, 72057594037927936).await;
    clickhouse(&old[3], &root).await;

    // sync copies the estate and, while the applications run, keeps their
    // registrations as the expectation.
    let dir = tempfile::tempdir().unwrap();
    let expect = dir.path().join("expected.zkps");
    let args: Vec<String> = [
        "sync",
        "--source",
        &pair().source.connect_string(),
        "--target",
        &pair().target.connect_string(),
        "--path",
        &root,
        "--apply",
        "--settle",
        "200ms",
        "--until-quiet",
        "2s",
        "--recheck-delay",
        "0s",
        "--expect-out",
        expect.to_str().unwrap(),
        "--format",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let sync =
        tokio::spawn(
            async move { run(&args.iter().map(String::as_str).collect::<Vec<_>>()).await },
        );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !expect.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no expectation written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The writers stop: the applications leave the old ensemble.
    drop(old);
    let synced = sync.await.unwrap();
    assert_eq!(synced.code, 0, "{}", ctx(&synced));
    let expected = expect.to_str().unwrap();

    let r = check(expected, &root, GRACE_WITHIN).await;
    assert_state(&r, 1, "WARNING");
    assert!(
        status(&r).contains("14 of 14 registrations missing"),
        "{}",
        ctx(&r)
    );
    // The applications reconnect to the target one by one.
    let new: Vec<zk::Client> =
        futures::future::join_all((0..4).map(|_| client(&pair().target))).await;
    kafka(&new[0], &root, &[1, 2], true).await;
    hbase(&new[1], &root, 1_700_000_999_999).await;
    solr(&new[2], &root, 144115188075855872).await;
    assert_state(&check(expected, &root, GRACE_WITHIN).await, 1, "WARNING");
    clickhouse(&new[3], &root).await;
    let r = check(expected, &root, GRACE_PAST).await;
    assert_state(&r, 2, "CRITICAL");
    let line = format!("kafka brokers 2 of 3: missing {root}/brokers/ids/3");
    assert!(r.stdout.lines().any(|l| l == line), "{}", ctx(&r));
    kafka(&new[0], &root, &[3], false).await;
    assert_state(&check(expected, &root, GRACE_PAST).await, 0, "OK");
}
