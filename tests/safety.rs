//! The write path against real servers: every mistake an operator can type
//! into `repair --apply` or `sync --apply` is refused before the first
//! write, with both sides checked unchanged against snapshots taken before;
//! the backup taken before a write restores a damaged target; a second
//! writer is refused while the first holds the subtree, and a writer
//! killed with SIGKILL holds it no longer than its session timeout; a
//! signal stops sync's initial copy at once.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use zkparity_sandbox::{guarded_command, Guarded};
use zookeeper_client as zk;

// ---------------------------------------------------------------------------
// Helpers

/// A zkparity snapshot of `path` on `connect`, taken before a mistake.
struct Before {
    connect: String,
    path: String,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Before {
    async fn take(connect: &str, path: &str) -> Before {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("before.zkps");
        let r = run(&[
            "snapshot",
            "--server",
            connect,
            "--path",
            path,
            "--out",
            file.to_str().unwrap(),
            "--quiet",
        ])
        .await;
        assert_eq!(r.code, 0, "snapshot: {}", r.stderr);
        Before {
            connect: connect.to_string(),
            path: path.to_string(),
            file,
            _dir: dir,
        }
    }

    /// The ensemble still holds exactly what the snapshot holds: data,
    /// ACLs, kinds, counters.
    async fn assert_unchanged(&self, after: &str) {
        let r = compare_connects(
            self.file.to_str().unwrap(),
            &self.connect,
            &["--path", &self.path, "--limit", "0"],
        )
        .await;
        assert_eq!(
            r.code, 0,
            "{} changed under {} after {after}:\n{}\n{}",
            self.connect, self.path, r.stdout, r.stderr
        );
    }
}

/// `zkparity repair --format json` with `args`.
async fn repair(args: &[&str]) -> Run {
    let mut all = vec!["repair", "--format", "json", "--recheck-delay", "0s"];
    all.extend_from_slice(args);
    run(&all).await
}

/// `repair` of `root` from the shared pair's source to its target.
async fn repair_shared(root: &str, extra: &[&str]) -> Run {
    let p = pair();
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    let mut args = vec!["--source", &src, "--target", &dst, "--path", root];
    args.extend_from_slice(extra);
    repair(&args).await
}

/// A zkparity command running in the background, its output in files.
struct Background {
    process: Guarded,
    stdout: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Background {
    fn start(args: &[&str]) -> Background {
        let dir = tempfile::tempdir().unwrap();
        let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let mut cmd = guarded_command(env!("CARGO_BIN_EXE_zkparity"), None);
        cmd.args(args)
            .env("ZKPARITY_BACKUP_DIR", backup_dir())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        Background {
            process: Guarded::spawn(&mut cmd).expect("zkparity starts"),
            stdout,
            stderr,
            _dir: dir,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until stdout holds `text`.
    async fn wait_for(&mut self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.stdout().contains(text) {
            assert!(
                self.process.is_running(),
                "exited before printing {text}:\n{}\n{}",
                self.stdout(),
                self.stderr()
            );
            assert!(
                Instant::now() < deadline,
                "no {text} within {within:?}:\n{}\n{}",
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The exit code, once it exits within `within`, and how long that took.
    async fn exit(&mut self, within: Duration) -> (i32, Duration) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                return (status.code().unwrap_or(-1), started.elapsed());
            }
            assert!(
                started.elapsed() < within,
                "still running after {within:?}:\n{}\n{}",
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `zkparity sync --apply` arguments, following until `--until-quiet`.
fn sync_args<'a>(source: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "sync",
        "--source",
        source,
        "--target",
        target,
        "--apply",
        "--format",
        "json",
        "--settle",
        "200ms",
        "--recheck-delay",
        "0s",
    ];
    args.extend_from_slice(extra);
    args
}

fn with_chroot(server: &str, chroot: &str) -> String {
    format!("{server}{chroot}")
}

async fn children(c: &zk::Client, path: &str) -> usize {
    c.list_children(path).await.map(|c| c.len()).unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Refused before the first write

#[tokio::test]
async fn a_mistyped_source_chroot_is_refused_and_neither_side_changes() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("typo");
    let kafka = [
        ("kafka", b"" as &[u8]),
        ("kafka/brokers", b"b"),
        ("kafka/config", b"c"),
    ];
    both(&s, &t, &root, &kafka).await;
    create(&t, &format!("{root}/kafka/config/topics"), b"t").await;
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    let typo = with_chroot(&src, &format!("{root}/kafak"));
    let target = with_chroot(&dst, &format!("{root}/kafka"));
    let before = [
        Before::take(&src, &root).await,
        Before::take(&dst, &root).await,
    ];

    let r = repair(&[
        "--source",
        &typo,
        "--target",
        &target,
        "--apply",
        "--delete-extra",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("does not exist on the source") && r.stderr.contains("mistyped"),
        "{}",
        r.stderr
    );
    // The dry run says the same: it would have planned to delete it all.
    let r = repair(&["--source", &typo, "--target", &target, "--delete-extra"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    for extra in [&[][..], &["--delete-extra"][..]] {
        let mut args = sync_args(&typo, &target, &["--until-quiet", "1s"]);
        args.extend_from_slice(extra);
        let r = run(&args).await;
        assert_eq!(r.code, 2, "sync {extra:?}: {}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("does not exist on the source"),
            "{}",
            r.stderr
        );
    }
    for b in &before {
        b.assert_unchanged("a mistyped source chroot").await;
    }
}

#[tokio::test]
async fn overlapping_paths_of_one_ensemble_are_refused_for_writes_and_noted_for_compare() {
    let (p, s, _) = pair_clients().await;
    let root = unique_path("nested");
    tree(
        &s,
        &root,
        &[("app", b"a"), ("app/cfg", b"c"), ("other", b"o")],
    )
    .await;
    let zk = p.source.connect_string();
    let app = with_chroot(&zk, &format!("{root}/app"));
    let outer = with_chroot(&zk, &root);
    let before = Before::take(&zk, &root).await;

    // The target holds the source: deleting its extras deletes the source.
    let r = repair(&[
        "--source",
        &app,
        "--target",
        &outer,
        "--apply",
        "--delete-extra",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("lies inside"), "{}", r.stderr);
    // The source holds the target: sync would copy its own writes back.
    let copy = with_chroot(&zk, &format!("{root}/app/copy"));
    let r = run(&sync_args(
        &app,
        &copy,
        &["--until-quiet", "1s", "--create-path"],
    ))
    .await;
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("lies inside"), "{}", r.stderr);
    before.assert_unchanged("overlapping writes").await;

    // Comparing them only reads: allowed, and said.
    let r = compare_connects(&app, &outer, &[]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let one = r.json()["one_ensemble"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(one.contains("one inside the other"), "{one}");
}

#[tokio::test]
async fn disjoint_paths_of_one_ensemble_may_be_written_and_the_plan_says_so() {
    let (p, s, _) = pair_clients().await;
    let root = unique_path("one-ensemble");
    tree(&s, &root, &[("a", b""), ("a/x", b"1"), ("b", b"")]).await;
    let zk = p.source.connect_string();
    let (a, b) = (
        with_chroot(&zk, &format!("{root}/a")),
        with_chroot(&zk, &format!("{root}/b")),
    );
    let r = repair(&["--source", &a, "--target", &b, "--apply"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let notes = r.json()["notes"].to_string();
    assert!(notes.contains("are on one ensemble"), "{notes}");
    let data = s.get_data(&format!("{root}/b/x")).await.unwrap().0;
    assert_eq!(data, b"1");
}

#[tokio::test]
async fn a_plan_deleting_most_of_the_target_is_refused_until_max_delete_says_so() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("max-delete");
    both(&s, &t, &root, &[("keep", b"k")]).await;
    create(&t, &format!("{root}/old"), b"").await;
    for i in 0..30 {
        create(&t, &format!("{root}/old/n{i}"), b"x").await;
    }
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    let before = Before::take(&dst, &root).await;
    let args = |extra: &[&'static str]| {
        let mut a: Vec<String> = ["--source", &src, "--target", &dst, "--path", &root]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--delete-extra".into(), "--limit".into(), "0".into()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let repair_with = |extra: &[&'static str]| {
        let a = args(extra);
        async move { repair(&a.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };

    let r = repair_with(&["--apply"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("deletes 31 node(s), 93.9 % of the target subtree's 33"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--max-delete 31"), "{}", r.stderr);
    before.assert_unchanged("a refused delete").await;
    // A lower explicit cap refuses too.
    let r = repair_with(&["--apply", "--max-delete", "30"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    // The dry run shows the plan and what --apply would refuse.
    let r = repair_with(&[]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.json()["notes"]
            .to_string()
            .contains("--apply would refuse this"),
        "{}",
        r.stdout
    );
    before.assert_unchanged("a dry run").await;

    let r = repair_with(&["--apply", "--max-delete", "31"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(children(&t, &root).await, 1);
}

#[tokio::test]
async fn a_target_in_use_by_applications_is_refused_unless_said() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("in-use");
    both(&s, &t, &root, &[("brokers", b""), ("brokers/ids", b"")]).await;
    s.set_data(&root, b"new", None).await.unwrap();
    // A broker registered on the target: it is in use.
    let broker = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    t.create(&format!("{root}/brokers/ids/1"), b"{}", &broker)
        .await
        .unwrap();
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    let before = Before::take(&dst, &root).await;

    let r = repair_shared(&root, &["--apply"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("1 ephemeral node(s) of live sessions")
            && r.stderr.contains(&format!("{root}/brokers/ids/1"))
            && r.stderr.contains("--target-in-use"),
        "{}",
        r.stderr
    );
    before
        .assert_unchanged("a refused write to a target in use")
        .await;
    // Swapped sides in sync: the same refusal.
    let r = run(&sync_args(
        &src,
        &dst,
        &["--path", &root, "--until-quiet", "1s"],
    ))
    .await;
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--target-in-use"), "{}", r.stderr);
    before
        .assert_unchanged("a refused sync to a target in use")
        .await;

    let r = repair_shared(&root, &["--apply", "--target-in-use"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(t.get_data(&root).await.unwrap().0, b"new");
}

// ---------------------------------------------------------------------------
// The backup

#[tokio::test]
async fn the_backup_taken_before_writing_restores_a_damaged_target_to_identical() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("backup");
    let alice = [zk::Acl::new(
        zk::Permission::READ | zk::Permission::WRITE,
        zk::AuthId::new("world", "anyone"),
    )];
    for c in [&s, &t] {
        tree(c, &root, &[("conf", b"v1"), ("queue", b"")]).await;
        c.create(
            &format!("{root}/ro"),
            b"r",
            &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&alice)),
        )
        .await
        .unwrap();
    }
    // The target's queue handed out 40 items, the source's none.
    create_sequential(&t, &format!("{root}/queue/item-"), b"q", 40).await;
    delete_sequential(&t, &format!("{root}/queue/item-"), 0..38).await;
    s.set_data(&format!("{root}/conf"), b"v2", None)
        .await
        .unwrap();
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());

    let r = repair_shared(&root, &["--apply", "--delete-extra", "--max-delete", "2"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let backup = r.json()["backup"]
        .as_str()
        .expect("a backup file")
        .to_string();
    assert!(Path::new(&backup).starts_with(backup_dir()), "{backup}");
    // Said before the first write: what changes, and where the backup is.
    assert!(
        r.stderr
            .contains(&format!("zkparity repair: writing to {dst} under {root}: "))
            && r.stderr.contains("1 set_data")
            && r.stderr.contains(&format!("kept in {backup}")),
        "{}",
        r.stderr
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{backup}");
    let text = run(&[
        "repair", "--source", &src, "--target", &dst, "--path", &root,
    ])
    .await;
    assert_eq!(text.code, 0, "{}", text.stderr);

    // The damage: data, a deleted counter-bearing subtree, a stray node.
    t.set_data(&format!("{root}/conf"), b"oops", None)
        .await
        .unwrap();
    for item in t.list_children(&format!("{root}/queue")).await.unwrap() {
        t.delete(&format!("{root}/queue/{item}"), None)
            .await
            .unwrap();
    }
    t.delete(&format!("{root}/queue"), None).await.unwrap();
    create(&t, &format!("{root}/stray"), b"s").await;

    let r = repair(&[
        "--source",
        &backup,
        "--target",
        &dst,
        "--path",
        &root,
        "--apply",
        "--delete-extra",
        "--max-delete",
        "1",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json().get("backup").is_some(), "a restore backs up too");
    let r = compare_connects(&backup, &dst, &["--path", &root, "--limit", "0"]).await;
    assert_eq!(r.code, 0, "the restored target:\n{}", r.stdout);
    assert_eq!(t.get_data(&format!("{root}/conf")).await.unwrap().0, b"v1");
    let queue = t
        .check_stat(&format!("{root}/queue"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        (queue.cversion + queue.num_children) / 2 >= 40,
        "the counter restored: {queue:?}"
    );
}

#[tokio::test]
async fn no_backup_writes_no_file_and_a_write_with_nothing_to_do_takes_none() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("no-backup");
    both(&s, &t, &root, &[("a", b"1")]).await;
    let r = repair_shared(&root, &["--apply"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json().get("backup").is_none(), "{}", r.stdout);
    s.set_data(&format!("{root}/a"), b"2", None).await.unwrap();
    let r = repair_shared(&root, &["--apply", "--no-backup"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.json().get("backup").is_none(), "{}", r.stdout);
}

// ---------------------------------------------------------------------------
// Signals, the writer lock, sync's deletes

#[tokio::test]
async fn a_signal_stops_syncs_initial_copy_at_once_and_says_where_the_backup_is() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("sync-stop");
    create(&t, &root, b"").await;
    let nodes: Vec<(String, Vec<u8>)> = std::iter::once((root.clone(), b"".to_vec()))
        .chain((0..600).map(|i| (format!("{root}/n{i:04}"), b"v".to_vec())))
        .collect();
    zkparity_sandbox::seed::create_many(&s, nodes)
        .await
        .unwrap();
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let copied = children(&t, &root).await;
        let mut sync = Background::start(&sync_args(
            &src,
            &dst,
            &["--path", &root, "--max-writes-per-second", "40"],
        ));
        let deadline = Instant::now() + Duration::from_secs(30);
        while children(&t, &root).await < copied + 20 {
            assert!(Instant::now() < deadline, "no copy:\n{}", sync.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sync.process.signal(signal).unwrap();
        let (exit, took) = sync.exit(Duration::from_secs(10)).await;
        assert_eq!(exit, code, "{}", sync.stderr());
        assert!(took < Duration::from_secs(3), "stopped after {took:?}");
        let err = sync.stderr();
        assert!(
            err.contains("the initial copy stopped") && err.contains("zkparity-backup-"),
            "{err}"
        );
        assert!(!sync.stdout().contains("\"copied\""), "{}", sync.stdout());
        let left = children(&t, &root).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            children(&t, &root).await,
            left,
            "writes went on after the stop"
        );
        assert!(left < 600, "the copy had finished: {left}");
    }
}

#[tokio::test]
async fn a_second_writer_is_refused_naming_the_first_until_its_session_ends() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("lock");
    both(&s, &t, &root, &[("sub", b""), ("sub/a", b"1")]).await;
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    let mut first = Background::start(&sync_args(
        &src,
        &dst,
        &["--path", &root, "--session-timeout", "4s"],
    ));
    first.wait_for("\"copied\"", Duration::from_secs(30)).await;
    assert_eq!(writer_locks(&t, &root).await, 1);

    let sub = format!("{root}/sub");
    let r = repair(&[
        "--source", &src, "--target", &dst, "--path", &sub, "--apply",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("another writer holds")
            && r.stderr.contains(&format!("pid {}", first.process.id()))
            && r.stderr.contains("zkparity sync of"),
        "{}",
        r.stderr
    );
    // The lock is never a difference, even comparing the whole ensemble.
    let r = compare_connects(&src, &dst, &["--limit", "0"]).await;
    assert!(!r.stdout.contains("zkparity-writer-"), "{}", r.stdout);

    // SIGKILL: the lock lasts until the session times out, no longer.
    first.process.kill();
    let killed = Instant::now();
    let r = repair(&[
        "--source", &src, "--target", &dst, "--path", &sub, "--apply",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    while writer_locks(&t, &root).await > 0 {
        assert!(
            killed.elapsed() < Duration::from_secs(12),
            "the lock outlived the 4 s session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.set_data(&format!("{sub}/a"), b"2", None).await.unwrap();
    let r = repair(&[
        "--source", &src, "--target", &dst, "--path", &sub, "--apply",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(writer_locks(&t, &root).await, 0, "released at exit");
}

#[tokio::test]
async fn sync_keeps_target_only_nodes_unless_delete_extra_but_copies_the_sources_deletes() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("sync-extra");
    tree(&s, &root, &[("a", b"1"), ("gone", b"g")]).await;
    tree(&t, &root, &[("extra", b"e")]).await;
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    let mut sync = Background::start(&sync_args(
        &src,
        &dst,
        &["--path", &root, "--until-quiet", "2s"],
    ));
    sync.wait_for("\"copied\"", Duration::from_secs(30)).await;
    assert!(t
        .check_stat(&format!("{root}/gone"))
        .await
        .unwrap()
        .is_some());
    s.delete(&format!("{root}/gone"), None).await.unwrap();
    let (code, _) = sync.exit(Duration::from_secs(30)).await;
    // Identical but for the kept extra.
    assert_eq!(code, 1, "{}\n{}", sync.stdout(), sync.stderr());
    assert!(t
        .check_stat(&format!("{root}/gone"))
        .await
        .unwrap()
        .is_none());
    assert!(t
        .check_stat(&format!("{root}/extra"))
        .await
        .unwrap()
        .is_some());
    assert!(
        sync.stdout().contains("extra_in_target"),
        "{}",
        sync.stdout()
    );

    let r = run(&sync_args(
        &src,
        &dst,
        &[
            "--path",
            &root,
            "--until-quiet",
            "1s",
            "--delete-extra",
            "--max-delete",
            "1",
        ],
    ))
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(t
        .check_stat(&format!("{root}/extra"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_source_root_that_vanishes_while_sync_follows_stops_it_and_the_target_keeps_its_tree() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("vanish");
    tree(&s, &root, &[("a", b"1"), ("b", b"2")]).await;
    create(&t, &root, b"").await;
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    let mut sync = Background::start(&sync_args(&src, &dst, &["--path", &root]));
    sync.wait_for("\"copied\"", Duration::from_secs(30)).await;
    let copied = Before::take(&dst, &root).await;
    // One transaction: the subtree goes at once, as a mistaken
    // `deleteall` would take it.
    let mut w = s.new_multi_writer();
    for path in [format!("{root}/a"), format!("{root}/b"), root.clone()] {
        w.add_delete(&path, None).unwrap();
    }
    w.commit().await.unwrap();
    let (code, _) = sync.exit(Duration::from_secs(30)).await;
    assert_eq!(code, 2, "{}\n{}", sync.stdout(), sync.stderr());
    assert!(
        sync.stderr().contains("disappeared from the source"),
        "{}",
        sync.stderr()
    );
    copied.assert_unchanged("the source's root vanished").await;
}
