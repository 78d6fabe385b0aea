//! `zkparity repair` against real ZooKeeper servers: every difference kind a
//! compare reports is repaired (or left alone with a reason) and a compare
//! afterwards agrees; an apply killed mid-way resumes to exactly the right
//! tree and counters; the source is never written to; a whole migration
//! runs from a snapshot.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use zkparity_sandbox::{Ensemble, ServerOptions};
use zookeeper_client as zk;

// ---------------------------------------------------------------------------
// Helpers

/// `zkparity repair --format json` from `source` to `target`; `extra`
/// flags come last.
async fn repair(source: &str, target: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "repair",
        "--source",
        source,
        "--target",
        target,
        "--format",
        "json",
        "--recheck-delay",
        "0s",
        "--limit",
        "0",
    ];
    args.extend_from_slice(extra);
    run(&args).await
}

/// The shared pair's connect strings.
fn connects() -> (String, String) {
    let p = pair();
    (p.source.connect_string(), p.target.connect_string())
}

fn with_acls(acls: &[zk::Acl]) -> zk::CreateOptions<'_> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::new(acls))
}

async fn cversion(c: &zk::Client, path: &str) -> i32 {
    c.check_stat(path)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{path} missing"))
        .cversion
}

/// A source queue that handed out `handed_out` sequential items and kept
/// the last `kept`: its counter is `handed_out + deleted`.
async fn source_queue(s: &zk::Client, queue: &str, handed_out: usize, kept: usize) {
    create(s, queue, b"").await;
    let items = format!("{queue}/item-");
    create_sequential(s, &items, b"q", handed_out).await;
    delete_sequential(s, &items, 0..handed_out - kept).await;
}

/// That queue, and on the target copies of the kept items only (what a
/// copy tool leaves behind): the target's counter is behind.
async fn queue_with_counter_behind(
    s: &zk::Client,
    t: &zk::Client,
    queue: &str,
    handed_out: usize,
    kept: usize,
) {
    source_queue(s, queue, handed_out, kept).await;
    create(t, queue, b"").await;
    copy_sequential(
        t,
        &format!("{queue}/item-"),
        b"q",
        handed_out - kept..handed_out,
    )
    .await;
}

fn counts(r: &serde_json::Value) -> BTreeMap<String, u64> {
    r["plan"]["actions"]
        .as_object()
        .expect("plan.actions")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

fn skipped(r: &serde_json::Value, reason: &str) -> u64 {
    r["plan"]["skipped"][reason].as_u64().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Every difference kind

/// The differences of the compare issue, one (or more) of each kind that a
/// repair can fix: a missing subtree (binary data, a restrictive ACL, a
/// value too large to share a multi-write), data, ACL, an extra subtree and
/// a sequence counter behind.
async fn fixable_differences(s: &zk::Client, t: &zk::Client, root: &str) {
    both(
        s,
        t,
        root,
        &[("app", b"v1"), ("app/conf", b"x=1"), ("app/acl", b"a")],
    )
    .await;
    s.set_data(&format!("{root}/app/conf"), b"x=2", None)
        .await
        .unwrap();
    // Tighter on the source; the target's (open) ACL lets us change it.
    s.set_acl(
        &format!("{root}/app/acl"),
        &[zk::Acl::new(
            zk::Permission::READ | zk::Permission::ADMIN,
            zk::AuthId::anyone(),
        )],
        None,
    )
    .await
    .unwrap();
    let all: Vec<u8> = (0..=255u8).collect();
    tree(s, &format!("{root}/gone"), &[("bin", &all), ("deep", b"d")]).await;
    create(s, &format!("{root}/gone/deep/er"), b"e").await;
    let mixed = [
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("ip", "127.0.0.1")),
    ];
    s.create(&format!("{root}/gone/guarded"), b"g", &with_acls(&mixed))
        .await
        .unwrap();
    let big = vec![7u8; 600 * 1024];
    create(s, &format!("{root}/gone/big"), &big).await;
    tree(t, &format!("{root}/stale"), &[("x", b"1"), ("x/y", b"2")]).await;
    queue_with_counter_behind(s, t, &format!("{root}/queue"), 5, 2).await;
}

#[tokio::test]
async fn dry_run_lists_every_action_with_counts_and_writes_nothing() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("dry");
    fixable_differences(&s, &t, &root).await;
    let before = [read_tree(&s, &root).await, read_tree(&t, &root).await];
    let (src, dst) = connects();

    let r = repair(&src, &dst, &["--path", &root]).await;
    assert_eq!(r.code, 1, "work to do: {}", ctx(&r));
    let j = r.json();
    assert_eq!(j["mode"], "dry_run");
    let c = counts(&j);
    assert_eq!(c["create"], 6, "gone + 5 below: {j:#}");
    assert_eq!(c["set_data"], 1, "{j:#}");
    assert_eq!(c["set_acl"], 1, "{j:#}");
    assert_eq!(c["sequence_counter"], 1, "{j:#}");
    assert_eq!(c["delete"], 0, "no --delete-extra: {j:#}");
    assert_eq!(skipped(&j, "extra_kept"), 1, "{j:#}");
    assert_eq!(j["plan"]["extra_nodes_kept"], 3);
    let listed = j["plan"]["listed"].as_array().unwrap();
    assert_eq!(listed.len(), 9);
    // Parents before children.
    let created: Vec<&str> = listed
        .iter()
        .filter(|a| a["op"] == "create")
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    assert_eq!(created[0], format!("{root}/gone"));
    let seq = listed
        .iter()
        .find(|a| a["op"] == "sequence_counter")
        .unwrap();
    assert_eq!(seq["path"], format!("{root}/queue"));
    assert_eq!(
        (
            seq["next_sequence_from"].as_i64(),
            seq["next_sequence"].as_i64()
        ),
        (Some(2), Some(5)),
        "5 handed out on the source, 2 created on the target"
    );
    assert!(j.get("apply").is_none() && j.get("verification").is_none());

    // The text form counts per action and lists them.
    let text = run(&[
        "repair", "--source", &src, "--target", &dst, "--path", &root,
    ])
    .await;
    assert_eq!(text.code, 1, "{}", ctx(&text));
    assert!(
        text.stdout.contains("dry run, nothing written"),
        "{}",
        ctx(&text)
    );
    assert!(
        text.stdout.contains("sequence_counter          1"),
        "{}",
        ctx(&text)
    );
    assert!(
        text.stdout.contains(&format!("{root}/app/conf")),
        "{}",
        ctx(&text)
    );

    let after = [read_tree(&s, &root).await, read_tree(&t, &root).await];
    assert_eq!(before, after, "a dry run changed a Stat or a value");
}

#[tokio::test]
async fn apply_repairs_every_fixable_kind_and_a_compare_then_finds_none() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("fix");
    fixable_differences(&s, &t, &root).await;
    let (src, dst) = connects();
    let (code, before) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    for kind in [
        "missing_in_target",
        "extra_in_target",
        "data",
        "acl",
        "sequence_counter",
    ] {
        assert_eq!(count(&before, kind), 1, "{kind}: {before:#}");
    }

    let r = repair(
        &src,
        &dst,
        &[
            "--path",
            &root,
            "--apply",
            "--delete-extra",
            "--max-delete",
            "3",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let j = r.json();
    assert_eq!(j["verification"]["identical"], true, "{j:#}");
    assert_eq!(counts(&j)["delete"], 3, "stale, x, x/y: {j:#}");
    let a = &j["apply"];
    assert_eq!(a["applied"], 12, "{j:#}");
    assert_eq!(
        (a["conflicts"].as_u64(), a["failed"].as_u64()),
        (Some(0), Some(0))
    );

    // An independent compare agrees, and the details are exact.
    let (code, after) = compare_json(&root, &[]).await;
    assert_eq!(code, 0, "{after:#}");
    assert_eq!(
        cversion(&t, &format!("{root}/queue")).await,
        cversion(&s, &format!("{root}/queue")).await,
        "an even gap is closed exactly"
    );
    let acl_of = |c: &zk::Client| {
        let c = c.clone();
        let path = format!("{root}/gone/guarded");
        async move {
            let (acl, _) = c.get_acl(&path).await.unwrap();
            let mut acl: Vec<String> = acl.iter().map(|a| format!("{a:?}")).collect();
            acl.sort();
            acl
        }
    };
    assert_eq!(acl_of(&t).await, acl_of(&s).await);
    let (big, _) = t.get_data(&format!("{root}/gone/big")).await.unwrap();
    assert_eq!(big.len(), 600 * 1024);
    let kids = t.list_children(&format!("{root}/queue")).await.unwrap();
    assert_eq!(kids.len(), 2, "no top-up child left behind: {kids:?}");

    // A second run has nothing to do.
    let again = repair(&src, &dst, &["--path", &root, "--delete-extra"]).await;
    assert_eq!(again.code, 0, "{}", ctx(&again));
    assert_eq!(again.json()["plan"]["total_actions"], 0);
}

#[tokio::test]
async fn a_counter_with_ephemeral_children_is_matched_on_the_next_sequential_name() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("ephseq");
    create(&s, &root, b"").await;
    create(&t, &root, b"").await;
    // Source: items 0..2 handed out, 0 deleted, and a lock held by a live
    // session (never copied). Target: the 2 kept items.
    let queue = format!("{root}/q");
    queue_with_counter_behind(&s, &t, &queue, 3, 2).await;
    let eph_seq = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    s.create(&format!("{queue}/lock-"), b"", &eph_seq)
        .await
        .unwrap();
    let (src, dst) = connects();
    let r = repair(&src, &dst, &["--path", &root, "--apply"]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let j = r.json();
    assert_eq!(skipped(&j, "source_ephemeral"), 1, "{j:#}");
    assert_eq!(counts(&j)["sequence_counter"], 1, "{j:#}");
    // The target's next sequential child gets the number the source's would.
    let next_t = t
        .create(&format!("{queue}/item-"), b"", &seq())
        .await
        .unwrap();
    let next_s = s
        .create(&format!("{queue}/item-"), b"", &seq())
        .await
        .unwrap();
    assert_eq!(next_t.1.into_i64(), 4);
    assert_eq!(next_t.1, next_s.1);
}

#[tokio::test]
async fn ephemerals_kind_changes_and_unreadable_nodes_are_left_alone_with_reasons() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("alone");
    both(&s, &t, &root, &[("kind", b""), ("holder", b"")]).await;
    // node_kind: persistent on the source, ephemeral on the target.
    create(&s, &format!("{root}/flip"), b"f").await;
    t.create(&format!("{root}/flip"), b"f", &ephemeral())
        .await
        .unwrap();
    // An ephemeral on the source only: never created.
    s.create(&format!("{root}/kind/session"), b"", &ephemeral())
        .await
        .unwrap();
    // An extra subtree holding another session's ephemeral: not deletable.
    create(&t, &format!("{root}/holder/extra"), b"").await;
    t.create(&format!("{root}/holder/extra/live"), b"", &ephemeral())
        .await
        .unwrap();
    // Unreadable on the source: only alice may read it.
    let alice = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="),
    )];
    s.create(&format!("{root}/locked"), b"secret", &with_acls(&alice))
        .await
        .unwrap();
    let flip_owner = t
        .check_stat(&format!("{root}/flip"))
        .await
        .unwrap()
        .unwrap()
        .ephemeral_owner;
    let (src, dst) = connects();

    let r = repair(
        &src,
        &dst,
        &[
            "--path",
            &root,
            "--apply",
            "--delete-extra",
            "--target-in-use",
            "--max-delete",
            "10",
        ],
    )
    .await;
    assert_eq!(r.code, 1, "differences remain: {}", ctx(&r));
    let j = r.json();
    assert_eq!(j["plan"]["total_actions"], 0, "{j:#}");
    assert_eq!(skipped(&j, "node_kind"), 1, "{j:#}");
    assert_eq!(skipped(&j, "source_ephemeral"), 1, "{j:#}");
    assert_eq!(skipped(&j, "extra_not_deletable"), 1, "{j:#}");
    assert_eq!(skipped(&j, "unreadable"), 1, "{j:#}");
    let reasons: Vec<&str> = j["plan"]["listed_skips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["detail"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("ephemeral node")),
        "{reasons:?}"
    );
    let v = &j["verification"];
    assert_eq!(v["identical"], false);
    assert_eq!(v["differences"]["node_kind"], 1, "{j:#}");
    assert_eq!(v["unreadable"], 1, "{j:#}");
    assert_eq!(v["verdict"], "different", "{j:#}");
    assert_eq!(v["differences"]["extra_in_target"], 1, "{j:#}");

    // Nothing ephemeral was touched, on either side.
    let flip = t
        .check_stat(&format!("{root}/flip"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flip.ephemeral_owner, flip_owner);
    assert!(t
        .check_stat(&format!("{root}/holder/extra/live"))
        .await
        .unwrap()
        .is_some());
    assert!(t
        .check_stat(&format!("{root}/kind/session"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_value_changed_on_the_target_since_the_plan_is_a_conflict_not_overwritten() {
    use zkparity::repair::plan::PlanSink;
    use zkparity::repair::plan::{Action, PlanSummary};
    use zkparity::repair::resume::{Identity, PlanWriter};
    let (_, s, t) = pair_clients().await;
    let root = unique_path("conflict");
    both(&s, &t, &root, &[("a", b"old"), ("b", b"old")]).await;
    s.set_data(&format!("{root}/a"), b"new", None)
        .await
        .unwrap();
    s.set_data(&format!("{root}/b"), b"new", None)
        .await
        .unwrap();
    let (src, dst) = connects();
    // A plan made while both were at version 0 ...
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan");
    let identity = Identity {
        source: src.clone(),
        target: dst.clone(),
        path: root.clone(),
        excludes: vec!["/zookeeper".into()],
        delete_extra: false,
    };
    let mut w = PlanWriter::create(&file, &identity).unwrap();
    for name in ["a", "b"] {
        w.action(&Action::SetData {
            path: format!("{root}/{name}"),
            data: b"new".to_vec(),
            version: 0,
        })
        .unwrap();
    }
    w.finish(&PlanSummary::default()).unwrap();
    // ... then someone writes to one of them on the target.
    t.set_data(&format!("{root}/a"), b"theirs", None)
        .await
        .unwrap();

    let f = file.to_str().unwrap();
    let r = repair(&src, &dst, &["--path", &root, "--apply", "--resume", f]).await;
    assert_eq!(r.code, 1, "{}", ctx(&r));
    let j = r.json();
    assert_eq!(j["apply"]["conflicts"], 1, "{j:#}");
    assert_eq!(j["apply"]["applied"], 1, "{j:#}");
    let problem = &j["apply"]["problems"][0];
    assert_eq!(problem["path"], format!("{root}/a"));
    assert!(problem["reason"]
        .as_str()
        .unwrap()
        .contains("changed on the target"));
    assert_eq!(t.get_data(&format!("{root}/a")).await.unwrap().0, b"theirs");
    assert_eq!(t.get_data(&format!("{root}/b")).await.unwrap().0, b"new");
    assert_eq!(j["verification"]["differences"]["data"], 1, "{j:#}");
}

#[tokio::test]
async fn target_credentials_come_from_the_environment_and_are_never_printed() {
    let (_, s, t) = pair_clients().await;
    for c in [&s, &t] {
        c.auth("digest", b"alice:secret").await.unwrap();
    }
    let root = unique_path("creds");
    both(&s, &t, &root, &[]).await;
    let alice = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="),
    )];
    for (c, v) in [(&s, &b"new"[..]), (&t, &b"old"[..])] {
        c.create(&format!("{root}/mine"), v, &with_acls(&alice))
            .await
            .unwrap();
    }
    let (src, dst) = connects();
    let mut args = vec![
        "repair",
        "--source",
        &src,
        "--target",
        &dst,
        "--path",
        &root,
        "--apply",
        "--recheck-delay",
        "0s",
    ];
    let env = [
        ("ZKPARITY_SOURCE_AUTH", "alice:secret"),
        ("ZKPARITY_TARGET_AUTH", "alice:secret"),
    ];
    let r = run_env(&args, &env).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert!(!r.stdout.contains("secret") && !r.stderr.contains("secret"));
    assert_eq!(t.get_data(&format!("{root}/mine")).await.unwrap().0, b"new");
    args.extend(["--format", "json"]);
    let r = run_env(&args, &env).await;
    assert!(!r.stdout.contains("secret"), "{}", ctx(&r));
}

// ---------------------------------------------------------------------------
// Interrupted and resumed

/// Polls until `done` holds, or fails after 60 s.
async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The last `done` recorded in a resume file.
fn progress_done(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["progress"]["done"].as_u64())
        .unwrap_or(0)
}

/// The ops of the actions in a resume file, in plan order.
fn planned_ops(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["action"]["op"].as_str().map(str::to_string))
        .collect()
}

fn spawn_repair(args: &[String]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_zkparity"))
        .args(args)
        .env_remove("ZKPARITY_SOURCE_AUTH")
        .env_remove("ZKPARITY_TARGET_AUTH")
        .env("ZKPARITY_BACKUP_DIR", backup_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start zkparity repair")
}

#[tokio::test]
async fn an_apply_killed_twice_resumes_to_exactly_the_source_tree_and_counters() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("resume");
    create(&s, &root, b"").await;
    create(&t, &root, b"").await;
    // 2,001 nodes missing from the target, and a counter 1,996 behind (998
    // create+delete pairs).
    let bulk = format!("{root}/bulk");
    let nodes: Vec<(String, Vec<u8>)> = std::iter::once((bulk.clone(), b"".to_vec()))
        .chain((0..2000).map(|i| (format!("{bulk}/n{i:05}"), format!("v{i}").into_bytes())))
        .collect();
    zkparity_sandbox::seed::create_many(&s, nodes)
        .await
        .unwrap();
    let queue = format!("{root}/queue");
    queue_with_counter_behind(&s, &t, &queue, 1000, 2).await;
    let source_counter = cversion(&s, &queue).await;
    assert_eq!(source_counter, 1998);
    let target_start = cversion(&t, &queue).await;

    let (src, dst) = connects();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resume.plan");
    let args = |capped: bool| {
        let mut a: Vec<String> = [
            "repair",
            "--source",
            &src,
            "--target",
            &dst,
            "--path",
            &root,
            "--apply",
            "--resume",
            file.to_str().unwrap(),
            // A killed writer's lock lasts until its session times out.
            "--session-timeout",
            "4s",
            "--format",
            "json",
            "--recheck-delay",
            "0s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if capped {
            a.extend(["--max-writes-per-second".to_string(), "600".to_string()]);
        }
        a
    };

    // Kill 1: in the middle of the counter top-up, which is one action:
    // everything before it settled, it not.
    let mut child = spawn_repair(&args(true));
    wait_until("the top-up to be under way", || async {
        cversion(&t, &queue).await >= target_start + 400
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the killed writer's lock to expire", || async {
        writer_locks(&t, &root).await == 0
    })
    .await;
    // Depth first, the queue's children are read before most of bulk's, so
    // its top-up comes early in the plan, with most creates after it.
    let top_up = planned_ops(&file)
        .iter()
        .position(|op| op == "sequence_counter")
        .expect("a top-up in the plan") as u64;
    assert_eq!(planned_ops(&file).len(), 2002);
    assert!(top_up < 1000, "the top-up is action {top_up}");
    let mid = cversion(&t, &queue).await;
    assert!(
        mid < source_counter,
        "killed too late to test anything: {mid}"
    );
    assert_eq!(progress_done(&file), top_up);

    // Kill 2: in the middle of the creates after it.
    let mut child = spawn_repair(&args(true));
    wait_until("creates to be under way", || async {
        progress_done(&file) >= top_up + 600
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the killed writer's lock to expire", || async {
        writer_locks(&t, &root).await == 0
    })
    .await;
    let settled = progress_done(&file);
    let partial = t.list_children(&bulk).await.map(|c| c.len()).unwrap_or(0);
    assert!(
        settled < 2002 && partial < 2000,
        "killed too late: {settled}, {partial}"
    );
    assert_eq!(
        cversion(&t, &queue).await,
        source_counter,
        "the interrupted top-up, finished by the second run, added only what was missing"
    );

    // The third run finishes what is left, and the top-up counts only what
    // is still missing.
    let r = run(&args(false).iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let j = r.json();
    assert_eq!(j["resumed"]["from_action"], settled, "{j:#}");
    assert_eq!(j["resumed"]["of"], 2002);
    assert_eq!(j["verification"]["identical"], true, "{j:#}");
    let a = &j["apply"];
    let total = ["applied", "already_done", "conflicts", "failed"]
        .iter()
        .map(|k| a[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(total, 2002, "every action settled exactly once: {a:#}");
    assert_eq!(
        (a["conflicts"].as_u64(), a["failed"].as_u64()),
        (Some(0), Some(0))
    );

    // Exactly the source's tree and counter: nothing lost, nothing twice.
    assert_eq!(
        cversion(&t, &queue).await,
        source_counter,
        "no duplicate top-up"
    );
    assert_eq!(
        t.list_children(&queue).await.unwrap().len(),
        2,
        "no top-up child left behind"
    );
    let src_tree = read_tree(&s, &bulk).await;
    let dst_tree = read_tree(&t, &bulk).await;
    assert_eq!(src_tree.len(), dst_tree.len());
    for (path, (_, data)) in &src_tree {
        assert_eq!(&dst_tree[path].1, data, "{path}");
    }
    assert_eq!(
        cversion(&t, &bulk).await,
        2000,
        "each child created once and never deleted"
    );
    let (code, cmp) = compare_json(&root, &[]).await;
    assert_eq!(code, 0, "{cmp:#}");
}

#[tokio::test]
async fn an_apply_rides_out_a_target_restart_and_finishes_verified() {
    let p = pair();
    // A target of its own, to restart.
    let mut server = own_server().await;
    let dst = server.connect_string();
    let (s, t) = (client(&p.source).await, connect(&dst).await);
    let root = unique_path("restart");
    create(&s, &root, b"").await;
    create(&t, &root, b"").await;
    let bulk = format!("{root}/bulk");
    let nodes: Vec<(String, Vec<u8>)> = std::iter::once((bulk.clone(), b"".to_vec()))
        .chain((0..3000).map(|i| (format!("{bulk}/n{i:05}"), b"v".to_vec())))
        .collect();
    zkparity_sandbox::seed::create_many(&s, nodes)
        .await
        .unwrap();
    let src = p.source.connect_string();
    let args: Vec<String> = [
        "repair",
        "--source",
        &src,
        "--target",
        &dst,
        "--path",
        &root,
        "--apply",
        "--format",
        "json",
        "--recheck-delay",
        "0s",
        "--max-writes-per-second",
        "1000",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let running = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        zkparity(&args)
    });
    wait_until("creates to be under way", || async {
        t.list_children(&bulk).await.map_or(0, |c| c.len()) >= 600
    })
    .await;
    let server = tokio::task::spawn_blocking(move || {
        server.restart().expect("restart the target");
        server
    })
    .await
    .unwrap();
    let r = running.await.unwrap();
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let j = r.json();
    assert_eq!(j["verification"]["identical"], true, "{j:#}");
    let a = &j["apply"];
    assert_eq!(
        a["applied"].as_u64().unwrap() + a["already_done"].as_u64().unwrap(),
        3001,
        "{a:#}"
    );
    assert_eq!(
        (a["conflicts"].as_u64(), a["failed"].as_u64()),
        (Some(0), Some(0))
    );
    let t = connect(&server.connect_string()).await;
    assert_eq!(cversion(&t, &bulk).await, 3000, "each child created once");
}

// ---------------------------------------------------------------------------
// The source is only read

/// A 3-node ensemble with local sessions, where opening and closing a
/// session is no transaction: only a write moves its zxid.
fn ensemble() -> &'static Ensemble {
    static ENSEMBLE: OnceLock<Ensemble> = OnceLock::new();
    ENSEMBLE.get_or_init(|| Ensemble::start(3, &ServerOptions::default()).expect("ensemble"))
}

#[tokio::test]
async fn repair_never_writes_to_the_source_and_its_zxid_stays_put() {
    let e = ensemble();
    let p = pair();
    let ens = e.connect_string();
    let (s, t) = (connect(&ens).await, client(&p.target).await);
    let root = unique_path("ro-source");
    fixable_differences(&s, &t, &root).await;
    // Something ephemeral on the source too: a repair must not mirror it.
    s.create(&format!("{root}/app/session"), b"", &ephemeral())
        .await
        .unwrap();
    let before = settled(e, &s).await;
    let tree_before = read_tree(&s, &root).await;

    let dst = p.target.connect_string();
    let dry = repair(&ens, &dst, &["--path", &root]).await;
    assert_eq!(dry.code, 1, "{}", ctx(&dry));
    let r = repair(
        &ens,
        &dst,
        &[
            "--path",
            &root,
            "--apply",
            "--delete-extra",
            "--max-delete",
            "3",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert_eq!(r.json()["verification"]["identical"], true);

    let after = settled(e, &s).await;
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b, a, "member {} moved from zxid {b:#x} to {a:#x}", i + 1);
    }
    assert_eq!(tree_before, read_tree(&s, &root).await);
}

// ---------------------------------------------------------------------------
// A whole migration with zkparity alone

#[tokio::test]
async fn a_migration_from_a_snapshot_into_an_empty_target_compares_equal() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("migrate");
    let all: Vec<u8> = (0..=255u8).collect();
    tree(
        &s,
        &root,
        &[
            ("kafka", b""),
            ("kafka/brokers", b"{}"),
            ("kafka/bin", &all),
        ],
    )
    .await;
    let guarded = [
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("ip", "127.0.0.1")),
    ];
    s.create(&format!("{root}/kafka/acl"), b"a", &with_acls(&guarded))
        .await
        .unwrap();
    source_queue(&s, &format!("{root}/q"), 6, 1).await;
    assert!(
        t.check_stat(&root).await.unwrap().is_none(),
        "an empty target"
    );

    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("before.zkps");
    let snap = snap.to_str().unwrap();
    let (src, dst) = connects();
    let r = run(&["snapshot", "--server", &src, "--path", &root, "--out", snap]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));

    // The target has no such path: refused unless asked for.
    let refused = repair(snap, &dst, &["--path", &root, "--apply"]).await;
    assert_eq!(refused.code, 2, "{}", ctx(&refused));
    assert!(
        refused.stderr.contains("--create-path"),
        "{}",
        ctx(&refused)
    );
    assert!(
        t.check_stat(&root).await.unwrap().is_none(),
        "nothing written"
    );
    let dry = repair(snap, &dst, &["--path", &root, "--create-path"]).await;
    assert_eq!(dry.code, 1, "{}", ctx(&dry));
    assert_eq!(counts(&dry.json())["create"], 7, "{:#}", dry.json());
    let notes = dry.json()["notes"].to_string();
    assert!(
        notes.contains("created (--create-path)"),
        "the plan says so: {notes}"
    );
    let r = repair(snap, &dst, &["--path", &root, "--apply", "--create-path"]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert_eq!(r.json()["verification"]["identical"], true);

    // Compared to the live source as well as to the snapshot.
    let (code, cmp) = compare_json(&root, &[]).await;
    assert_eq!(code, 0, "{cmp:#}");
    let r = compare_connects(snap, &dst, &["--path", &root]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert_eq!(
        cversion(&t, &format!("{root}/q")).await,
        cversion(&s, &format!("{root}/q")).await
    );
}

#[tokio::test]
async fn a_file_target_is_refused_before_anything_is_read() {
    let (src, _) = connects();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.xml");
    std::fs::write(&file, "<root/>").unwrap();
    let r = repair(&src, file.to_str().unwrap(), &["--apply"]).await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(r.stderr.contains("must be a live ensemble"), "{}", ctx(&r));
}
