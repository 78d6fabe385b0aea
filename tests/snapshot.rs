//! Snapshot files against real servers: a snapshot stands in for its live
//! source, stays frozen while the source moves on, and a changed, cut or
//! foreign file is refused before anything is compared.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use zookeeper_client as zk;

fn digest_acl() -> Vec<zk::Acl> {
    vec![
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("world", "anyone")),
        zk::Acl::new(
            zk::Permission::READ,
            zk::AuthId::new("digest", "ops:ZxC0MTjvnsYWdEj2rM+sVSwj4Nk="),
        ),
    ]
}

/// A tree with what copy tools lose: binary and inner-node data, a value
/// over 128 KiB, a custom ACL, sequential children and an ephemeral.
async fn rich_tree(c: &zk::Client, root: &str) {
    let all_bytes: Vec<u8> = (0..=255).collect();
    let big = vec![b'x'; 200 * 1024];
    tree(
        c,
        root,
        &[
            ("inner", b"inner data"),
            ("inner/leaf", &all_bytes),
            ("big", &big),
            ("queue", b""),
            ("odd name \u{e9}", b"unicode"),
        ],
    )
    .await;
    let acl = digest_acl();
    c.create(
        &format!("{root}/guarded"),
        b"g",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl)),
    )
    .await
    .expect("create guarded");
    for _ in 0..3 {
        c.create(
            &format!("{root}/queue/item-"),
            b"q",
            &zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .expect("create sequential");
    }
    c.create(&format!("{root}/session"), b"e", &ephemeral())
        .await
        .expect("create ephemeral");
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn snap(server: &str, path: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "snapshot",
        "--server",
        server,
        "--path",
        path,
        "--out",
        out.to_str().expect("utf-8 path"),
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

async fn run_owned(args: Vec<String>) -> Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs).await
}

async fn take(path: &str, out: &Path, extra: &[&str]) -> Run {
    let r = run_owned(snap(&pair().source.connect_string(), path, out, extra)).await;
    assert_eq!(r.code, 0, "snapshot failed: {}{}", r.stdout, r.stderr);
    r
}

async fn compare_files(source: &str, target: &str, path: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--path", path, "--limit", "0"];
    args.extend_from_slice(extra);
    compare_connects(source, target, &args).await
}

fn lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .expect("read snapshot")
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(file: &Path, lines: &[String]) {
    std::fs::write(file, lines.join("\n") + "\n").expect("write file");
}

/// A fresh tree `name` on the source and a snapshot of it:
/// (session, root, the snapshot's directory, the snapshot).
async fn snapshot_of_tree(
    name: &str,
    nodes: &[(&str, &[u8])],
    extra: &[&str],
) -> (zk::Client, String, tempfile::TempDir, PathBuf) {
    let c = client(&pair().source).await;
    let root = unique_path(name);
    tree(&c, &root, nodes).await;
    let dir = temp_dir();
    let file = dir.path().join(format!("{name}.zkps"));
    take(&root, &file, extra).await;
    (c, root, dir, file)
}

#[tokio::test]
async fn snapshot_compared_with_its_live_source_is_identical() {
    let p = pair();
    let c = client(&p.source).await;
    let root = unique_path("snap-same");
    rich_tree(&c, &root).await;
    let dir = temp_dir();
    let file = dir.path().join("source.zkps");
    let r = take(&root, &file, &["--format", "json"]).await;
    let summary = r.json();
    // root, inner, leaf, big, queue + 3 items, odd name, guarded, session
    assert_eq!(summary["records"], 11, "{summary}");
    assert_eq!(summary["ephemerals"], 1, "{summary}");

    let live = p.source.connect_string();
    let file_arg = file.to_str().unwrap();
    for (s, t) in [(file_arg, live.as_str()), (live.as_str(), file_arg)] {
        let r = compare_files(s, t, &root, &["--ephemerals", "compare"]).await;
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let report = r.json();
        assert_eq!(report["summary"]["source"]["nodes"], 11);
        assert_eq!(report["summary"]["target"]["nodes"], 11);
        assert_eq!(report["settings"]["acls_compared"], true);
    }
    let report = compare_files(file_arg, &live, &root, &[]).await.json();
    assert_eq!(report["source"]["file"], "snapshot");
    assert_eq!(report["source"]["connect"], file_arg);
    assert!(report["target"].get("file").is_none(), "{report}");
    // The trailer's checksum is the one compare computes for the root.
    let trailer: serde_json::Value =
        serde_json::from_str(lines(&file).last().unwrap()).expect("trailer JSON");
    let root_row = report["subtrees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["path"] == root.as_str())
        .expect("root row");
    assert_eq!(root_row["target"]["checksum"], trailer["end"]["checksum"]);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "a snapshot holds digest ids: it must be private"
    );
}

#[tokio::test]
async fn gzip_snapshot_reads_the_same_as_plain() {
    let p = pair();
    let c = client(&p.source).await;
    let root = unique_path("snap-gz");
    rich_tree(&c, &root).await;
    let dir = temp_dir();
    let plain = dir.path().join("plain.zkps");
    let packed = dir.path().join("packed.zkps.gz");
    take(&root, &plain, &[]).await;
    take(&root, &packed, &["--compress"]).await;
    let head = std::fs::read(&packed).unwrap();
    assert_eq!(&head[..2], &[0x1f, 0x8b], "not gzip");
    assert!(head.len() < std::fs::metadata(&plain).unwrap().len() as usize / 4);
    let r = compare_files(
        packed.to_str().unwrap(),
        plain.to_str().unwrap(),
        &root,
        &["--ephemerals", "compare"],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[tokio::test]
async fn snapshot_stays_frozen_while_the_source_moves_on() {
    let p = pair();
    let (c, root, _dir, file) =
        snapshot_of_tree("snap-frozen", &[("a", b"1"), ("b", b"2")], &[]).await;
    c.set_data(&format!("{root}/a"), b"changed", None)
        .await
        .unwrap();
    create(&c, &format!("{root}/new"), b"").await;
    c.delete(&format!("{root}/b"), None).await.unwrap();

    let r = compare_files(
        file.to_str().unwrap(),
        &p.source.connect_string(),
        &root,
        &[],
    )
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let report = r.json();
    assert_eq!(count(&report, "data"), 1);
    assert_eq!(count(&report, "extra_in_target"), 1);
    assert_eq!(count(&report, "missing_in_target"), 1);
    assert_eq!(
        of_kind(&report, "missing_in_target")[0]["path"],
        format!("{root}/b")
    );
}

#[tokio::test]
async fn snapshot_of_the_source_finds_what_live_compare_finds() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("snap-kinds");
    both(
        &s,
        &t,
        &root,
        &[("data", b"one"), ("acl", b""), ("gone", b"")],
    )
    .await;
    for c in [&s, &t] {
        create(c, &format!("{root}/q"), b"").await;
    }
    s.set_data(&format!("{root}/data"), b"two", None)
        .await
        .unwrap();
    s.set_acl(&format!("{root}/acl"), &digest_acl(), None)
        .await
        .unwrap();
    t.delete(&format!("{root}/gone"), None).await.unwrap();
    create(&t, &format!("{root}/extra"), b"").await;
    for _ in 0..2 {
        s.create(
            &format!("{root}/q/n-"),
            b"",
            &zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all()),
        )
        .await
        .unwrap();
    }
    let dir = temp_dir();
    let file = dir.path().join("source.zkps");
    take(&root, &file, &[]).await;

    let (_, live) = compare_json(&root, &[]).await;
    let r = compare_files(
        file.to_str().unwrap(),
        &p.target.connect_string(),
        &root,
        &[],
    )
    .await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let from_file = r.json();
    for kind in [
        "data",
        "acl",
        "missing_in_target",
        "extra_in_target",
        "sequence_counter",
    ] {
        assert!(count(&live, kind) > 0, "live compare found no {kind}");
        assert_eq!(count(&from_file, kind), count(&live, kind), "{kind}");
    }
    assert_eq!(from_file["differences"], live["differences"]);
}

#[tokio::test]
async fn changed_cut_or_foreign_files_are_refused_with_exit_2() {
    let p = pair();
    let (_c, root, dir, good) =
        snapshot_of_tree("snap-bad", &[("a", b"value"), ("b", b"")], &[]).await;
    let original = lines(&good);
    let target = p.target.connect_string();

    let variants: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "cut",
            original[..original.len() - 1].to_vec(),
            "no trailer line",
        ),
        (
            "edited",
            original
                .iter()
                .map(|l| l.replace("\"dmFsdWU=\"", "\"VkFMVUU=\""))
                .collect(),
            "SHA-256",
        ),
        (
            "newer",
            std::iter::once(original[0].replace("\"version\":1", "\"version\":9"))
                .chain(original[1..].iter().cloned())
                .collect(),
            "version 9 is not supported",
        ),
        (
            "garbage record",
            [
                &original[..1],
                &["{\"path\":\"/x\",\"bogus\":1}".to_string()][..],
                &original[1..],
            ]
            .concat(),
            "line 2",
        ),
        (
            "foreign",
            vec!["{\"hello\":\"world\"}".to_string()],
            "header",
        ),
    ];
    for (name, content, expected) in variants {
        let file = dir.path().join(format!("{name}.zkps"));
        write_lines(&file, &content);
        let r = compare_files(file.to_str().unwrap(), &target, &root, &[]).await;
        assert_eq!(r.code, 2, "{name}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.is_empty(),
            "{name}: printed a report: {}",
            r.stdout
        );
        assert!(
            r.stderr.contains(expected) && r.stderr.contains(file.to_str().unwrap()),
            "{name}: stderr does not say {expected:?} and name the file: {}",
            r.stderr
        );
    }
    // Cut mid-line: the last line has no newline.
    let file = dir.path().join("cut-mid-line.zkps");
    let text = std::fs::read_to_string(&good).unwrap();
    std::fs::write(&file, &text[..text.len() - 10]).unwrap();
    let r = compare_files(file.to_str().unwrap(), &target, &root, &[]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    // A gzip file that is not gzip inside.
    let file = dir.path().join("bad.gz");
    std::fs::write(&file, [0x1f, 0x8b, 0, 1, 2, 3]).unwrap();
    let r = compare_files(file.to_str().unwrap(), &target, &root, &[]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("gzip"), "{}", r.stderr);
}

/// No snapshot and no temporary file in `dir`.
fn assert_nothing_left(dir: &Path) {
    let left: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn failed_snapshot_leaves_no_file_behind() {
    let p = pair();
    let dir = temp_dir();
    let out = dir.path().join("never.zkps");
    let missing = unique_path("snap-missing");
    let r = run_owned(snap(&p.source.connect_string(), &missing, &out, &[])).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&missing), "{}", r.stderr);
    let dead = format!("127.0.0.1:{}", dead_port());
    let r = run_owned(snap(&dead, "/", &out, &["--connect-timeout", "1s"])).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_nothing_left(dir.path());
}

#[tokio::test]
async fn compare_path_outside_the_snapshot_is_a_usage_error() {
    let p = pair();
    let c = client(&p.source).await;
    let root = unique_path("snap-scope");
    tree(&c, &root, &[("inside", b"")]).await;
    let dir = temp_dir();
    let file = dir.path().join("scope.zkps");
    take(&format!("{root}/inside"), &file, &[]).await;
    let r = compare_files(
        file.to_str().unwrap(),
        &p.target.connect_string(),
        &root,
        &[],
    )
    .await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!("{root}/inside")),
        "does not say what the snapshot holds: {}",
        r.stderr
    );
}

#[tokio::test]
async fn a_snapshot_stopped_by_sigterm_leaves_nothing_behind() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("snap-term");
    wide_tree(&s, &t, &root, 3000, b"v").await;
    let dir = temp_dir();
    let out = dir.path().join("stopped.zkps");
    // About 6 s at this cap: time enough to stop it half-way.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_zkparity"))
        .args(snap(
            &p.source.connect_string(),
            &root,
            &out,
            &["--max-reads-per-second", "1500"],
        ))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start snapshot");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() > 0,
        "no temporary file while writing"
    );
    // SAFETY: a plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let done = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status.code(), Some(143), "128 + SIGTERM");
    assert!(
        String::from_utf8_lossy(&done.stderr).contains("stopped (SIGTERM): nothing written"),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_nothing_left(dir.path());
}

#[tokio::test]
async fn a_snapshot_without_ephemerals_is_not_compared_as_if_it_had_them() {
    let p = pair();
    let (_c, root, _dir, file) =
        snapshot_of_tree("snap-noeph", &[("a", b"1")], &["--ephemerals", "skip"]).await;
    let live = p.source.connect_string();
    let r = compare_files(
        file.to_str().unwrap(),
        &live,
        &root,
        &["--ephemerals", "compare"],
    )
    .await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--ephemerals skip"), "{}", r.stderr);
    let r = compare_files(file.to_str().unwrap(), &live, &root, &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}
