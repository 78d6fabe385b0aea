//! A ZooKeeper server's own files as a side: real 3.4.6, 3.6.3, 3.8.0 and
//! 3.9.3 servers with a small `snapCount` (so snapshots and logs rotate),
//! compressed snapshots (gzip on 3.6, snappy on 3.9), container and TTL
//! nodes where the release has them; each directory compared with its own
//! live server, with another release's directory, at an earlier zxid,
//! after a SIGKILL, damaged, and watched for writes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use zkparity_sandbox::{Release, ServerOptions, ZkServer};
use zookeeper_client as zk;

/// How each release's server keeps its files.
fn options(release: Release) -> ServerOptions {
    let mut jvm_flags = Vec::new();
    if release.is_3_5_or_later() {
        jvm_flags.push("-Dzookeeper.extendedTypesEnabled=true".to_string());
        // Empty containers and expired TTL nodes go within a second or so
        // (a deleteContainer transaction), not after the default minute.
        jvm_flags.push("-Dznode.container.checkIntervalMs=300".to_string());
    }
    match release {
        Release::V3_6_3 => jvm_flags.push("-Dzookeeper.snapshot.compression.method=gz".into()),
        Release::V3_9_3 => jvm_flags.push("-Dzookeeper.snapshot.compression.method=snappy".into()),
        _ => {}
    }
    ServerOptions {
        release,
        heap_mb: 256,
        // A snapshot and a new log every 10 to 20 transactions.
        extra_config: vec![("snapCount".into(), "20".into())],
        jvm_flags,
        ..ServerOptions::default()
    }
}

/// The server of `release`, shared by the binary's tests.
fn server(release: Release) -> &'static ZkServer {
    static SERVERS: [OnceLock<ZkServer>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    SERVERS[release.index()].get_or_init(|| {
        ZkServer::start_standalone(&options(release))
            .unwrap_or_else(|e| panic!("a {release} server starts: {e}"))
    })
}

async fn started(release: Release) -> &'static ZkServer {
    tokio::task::spawn_blocking(move || {
        server(release);
    })
    .await
    .expect("server starter");
    server(release)
}

fn container() -> zk::CreateOptions<'static> {
    zk::CreateMode::Container.with_acls(zk::Acls::anyone_all())
}

fn data_dir(s: &ZkServer) -> String {
    s.data_dir().to_string_lossy().into_owned()
}

/// An estate with what copy tools lose: data on inner nodes, a digest ACL,
/// sequential children with gaps, data changed and ACLs changed after
/// creation, a 200 KB value, an ephemeral, and on 3.5+ a multi, a container
/// and a TTL node. Enough transactions that snapshots and logs rotate.
async fn seed(release: Release, c: &zk::Client, root: &str) {
    create(c, root, b"root data").await;
    create(c, &format!("{root}/inner"), b"inner data").await;
    create(c, &format!("{root}/inner/leaf"), b"leaf").await;
    let digest = zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", "bob:h7sRkHA2vEbbbYrWbmO/JQmxxBo="),
    );
    let world_read = zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone());
    let acls = [digest, world_read];
    c.create(
        &format!("{root}/guarded"),
        b"secret-ish",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acls)),
    )
    .await
    .expect("create guarded");
    create(c, &format!("{root}/queue"), b"").await;
    create_sequential(c, &format!("{root}/queue/item-"), b"q", 12).await;
    delete_sequential(c, &format!("{root}/queue/item-"), 3..7).await;
    for i in 0..25 {
        c.set_data(&format!("{root}/inner"), format!("v{i}").as_bytes(), None)
            .await
            .expect("set data");
    }
    c.set_acl(
        &format!("{root}/inner/leaf"),
        &[zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone())],
        None,
    )
    .await
    .expect("set acl");
    create(c, &format!("{root}/big"), &vec![0x5a; 200 * 1024]).await;
    c.create(&format!("{root}/held"), b"eph", &ephemeral())
        .await
        .expect("ephemeral");
    if release.is_3_5_or_later() {
        let mut m = c.new_multi_writer();
        m.add_create(&format!("{root}/m1"), b"one", &open())
            .expect("multi create");
        m.add_create(&format!("{root}/m2"), b"two", &open())
            .expect("multi create");
        m.add_set_data(&format!("{root}/m1"), b"one again", None)
            .expect("multi set");
        m.add_check_version(&format!("{root}/m2"), 0)
            .expect("multi check");
        m.commit().await.expect("multi commits");
        // A failed multi: none of it may show.
        let mut m = c.new_multi_writer();
        m.add_create(&format!("{root}/never"), b"", &open())
            .expect("multi create");
        m.add_create(&format!("{root}/m1"), b"exists", &open())
            .expect("multi create");
        assert!(m.commit().await.is_err(), "a multi with a failing op fails");
        c.create(&format!("{root}/box"), b"container", &container())
            .await
            .expect("container");
        create(c, &format!("{root}/box/inside"), b"").await;
        c.create(
            &format!("{root}/lease"),
            b"ttl",
            &zk::CreateMode::Persistent
                .with_acls(zk::Acls::anyone_all())
                .with_ttl(Duration::from_secs(3600)),
        )
        .await
        .expect("ttl node");
    }
    // A create that fails is logged as an error transaction.
    assert!(c
        .create(&format!("{root}/inner"), b"", &open())
        .await
        .is_err());
    c.delete(&format!("{root}/inner/leaf"), None)
        .await
        .expect("delete");
    create(c, &format!("{root}/inner/leaf"), b"again").await;
}

fn snapshots_and_logs(dir: &Path) -> (usize, usize) {
    let v2 = dir.join("version-2");
    let names: Vec<String> = std::fs::read_dir(&v2)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    (
        names.iter().filter(|n| n.starts_with("snapshot.")).count(),
        names.iter().filter(|n| n.starts_with("log.")).count(),
    )
}

fn compare(source: &str, target: &str, path: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "compare", "--source", source, "--target", target, "--path", path, "--format", "json",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    zkparity(&args)
}

/// `compare` of `source` with `target` at `path`, ephemerals compared:
/// exit 0 asserted; the JSON report.
fn identical(source: &str, target: &str, path: &str) -> serde_json::Value {
    let r = compare(source, target, path, &["--ephemerals", "compare"]);
    assert_eq!(r.code, 0, "{source} vs {target}: {}", ctx(&r));
    r.json()
}

/// Every record of a zkparity snapshot of `path` on `server` (a live
/// ensemble or a data directory), by path: what `snapshot` saw of each
/// node, stat included.
fn records(server: &str, path: &str, out: &Path) -> BTreeMap<String, serde_json::Value> {
    let r = zkparity(&[
        "snapshot",
        "--server",
        server,
        "--path",
        path,
        "--out",
        &out.to_string_lossy(),
        "--force",
        "--quiet",
        // 3.5+ servers hide digest ids from readers without ADMIN.
        "--allow-incomplete",
    ]);
    assert_eq!(r.code, 0, "snapshot of {server}: {}", ctx(&r));
    let text = std::fs::read_to_string(out).expect("snapshot written");
    text.lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v["path"].as_str()?.to_string(), v)))
        .collect()
}

/// A data directory is its own live server, node for node: digests (the
/// compare) and every stat field (snapshots of both).
async fn matches_its_live_server(release: Release) {
    let s = started(release).await;
    let c = release_session(release, s).await;
    let root = unique_path(&format!("own-{release}"));
    seed(release, &c, &root).await;
    let (snaps, logs) = snapshots_and_logs(s.data_dir());
    let suffix = match release {
        Release::V3_6_3 => Some(".gz"),
        Release::V3_9_3 => Some(".snappy"),
        _ => None,
    };
    if let Some(suffix) = suffix {
        let names: Vec<String> = std::fs::read_dir(s.data_dir().join("version-2"))
            .expect("version-2")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("snapshot.") && n.ends_with(suffix)),
            "{release} writes {suffix} snapshots: {names:?}"
        );
    }
    assert!(
        snaps >= 2 && logs >= 2,
        "snapshots and logs rotate: {snaps} snapshots, {logs} logs"
    );
    let dir = data_dir(s);
    let j = identical(&dir, &s.connect_string(), &root);
    assert_eq!(j["source"]["file"], "zookeeper", "{j:#}");
    let zxid = j["source"]["zxid"]
        .as_str()
        .expect("the report names the zxid");
    assert!(zxid.starts_with("0x"), "{zxid}");
    let expected_nodes = if release.is_3_5_or_later() { 20 } else { 15 };
    assert_eq!(j["summary"]["source"]["nodes"], expected_nodes, "{j:#}");
    let read = j["notes"][0].as_str().unwrap_or_default();
    assert!(
        read.starts_with("source: read snapshot.") && read.ends_with(&format!("to zxid {zxid}")),
        "the report says which files it read: {read}"
    );
    if release.is_3_5_or_later() {
        let notes = j["notes"].to_string();
        assert!(
            notes.contains("2 container or TTL nodes compared as persistent"),
            "{j:#}"
        );
    }

    let inner = format!("{root}/inner");
    let shown = zkparity(&[
        "show",
        "--source",
        &dir,
        "--target",
        &s.connect_string(),
        &inner,
        "--format",
        "json",
    ]);
    assert_eq!(shown.code, 0, "show: {}", ctx(&shown));
    let shown = shown.json();
    assert_eq!(shown["source"]["version"], 25, "{shown:#}");
    assert_eq!(shown["source"], shown["target"], "{shown:#}");

    let tmp = tempfile::tempdir().expect("temp dir");
    let from_dir = records(&dir, &root, &tmp.path().join("dir.zkps"));
    let from_live = records(&s.connect_string(), &root, &tmp.path().join("live.zkps"));
    assert_eq!(from_dir.len(), from_live.len());
    for (path, live) in &from_live {
        let d = &from_dir[path];
        for field in ["stat", "data", "kind", "children"] {
            assert_eq!(d[field], live[field], "{release} {path} {field}");
        }
        if !live["acl"].to_string().contains(":x\"") {
            assert_eq!(d["acl"], live["acl"], "{release} {path} acl");
        }
    }
    drop(c);
}

#[tokio::test]
async fn a_3_4_6_data_directory_matches_its_live_server_node_for_node() {
    matches_its_live_server(Release::V3_4_6).await;
}

#[tokio::test]
async fn a_3_6_3_data_directory_with_gzip_snapshots_matches_its_live_server() {
    matches_its_live_server(Release::V3_6_3).await;
}

#[tokio::test]
async fn a_3_8_0_data_directory_matches_its_live_server_node_for_node() {
    matches_its_live_server(Release::V3_8_0).await;
}

#[tokio::test]
async fn a_3_9_3_data_directory_with_snappy_snapshots_matches_its_live_server() {
    matches_its_live_server(Release::V3_9_3).await;
}

fn files_of(dir: &Path) -> BTreeMap<PathBuf, (u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("list").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                let mtime = e
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as u64);
                out.insert(p, (mtime, bytes));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_stopped_servers_directory_is_read_without_a_byte_or_file_changing() {
    let mut s = own_server_with(options(Release::V3_8_0)).await;
    let c = release_session(Release::V3_8_0, &s).await;
    let root = unique_path("readonly");
    seed(Release::V3_8_0, &c, &root).await;
    drop(c);
    let dir = s.data_dir().to_path_buf();
    s.stop();
    let before = files_of(&dir);
    let d = dir.to_string_lossy().into_owned();
    let r = compare(&d, &d, &root, &[]);
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let export = tempfile::NamedTempFile::new().expect("temp");
    let r = zkparity(&[
        "export",
        "--server",
        &d,
        "--path",
        &root,
        "--out",
        &export.path().to_string_lossy(),
    ]);
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let after = files_of(&dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "no file appears or goes"
    );
    for (p, (mtime, bytes)) in &before {
        let (m2, b2) = &after[p];
        assert_eq!(mtime, m2, "{} keeps its mtime", p.display());
        assert!(bytes == b2, "{} keeps its bytes", p.display());
    }
}

async fn own_server_with(o: ServerOptions) -> ZkServer {
    tokio::task::spawn_blocking(move || ZkServer::start_standalone(&o))
        .await
        .expect("server starter")
        .expect("a server of its own starts")
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// `version-2`'s files named `prefix.*`, oldest first by zxid.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir.join("version-2"))
        .expect("version-2")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let hex = name.strip_prefix(prefix)?.split('.').next()?.to_string();
            Some((u64::from_str_radix(&hex, 16).ok()?, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

fn hex(z: u64) -> String {
    format!("{z:#x}")
}

#[tokio::test]
async fn at_zxid_reads_the_tree_as_it_stood_then() {
    let s = started(Release::V3_8_0).await;
    let c = release_session(Release::V3_8_0, s).await;
    let root = unique_path("atzxid");
    tree(&c, &root, &[("a", b"1"), ("b", b"2"), ("b/c", b"3")]).await;
    let then = zxid(s);
    let tmp = tempfile::tempdir().expect("temp dir");
    let before = tmp.path().join("before.zkps");
    records(&s.connect_string(), &root, &before);
    c.set_data(&format!("{root}/a"), b"changed", None)
        .await
        .expect("set");
    c.delete(&format!("{root}/b/c"), None)
        .await
        .expect("delete");
    create(&c, &format!("{root}/d"), b"new").await;
    for _ in 0..30 {
        c.set_data(&format!("{root}/d"), b"churn", None)
            .await
            .expect("set");
    }
    let dir = data_dir(s);
    let before = before.to_string_lossy().into_owned();
    let at = hex(then);
    let r = compare(&dir, &before, &root, &["--source-at-zxid", &at]);
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert_eq!(r.json()["source"]["zxid"], at);
    let now = compare(&dir, &before, &root, &[]);
    assert_eq!(now.code, 1, "today's tree differs: {}", ctx(&now));
    let j = now.json();
    assert_eq!(j["summary"]["differences"]["data"], 1, "{j:#}");
    assert_eq!(j["summary"]["differences"]["missing_in_target"], 1, "{j:#}");
    assert_eq!(j["summary"]["differences"]["extra_in_target"], 1, "{j:#}");

    let live = s.connect_string();
    let r = compare(&live, &before, &root, &["--source-at-zxid", &at]);
    assert_eq!(r.code, 2, "a live side has no past: {}", ctx(&r));
    assert!(r.stderr.contains("--source-at-zxid"), "{}", ctx(&r));
    let far = hex(then + (1 << 40));
    let r = compare(&dir, &before, &root, &["--source-at-zxid", &far]);
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(r.stderr.contains("before --at-zxid"), "{}", ctx(&r));
}

#[tokio::test]
async fn replaying_every_log_from_the_oldest_snapshot_gives_the_newest_tree() {
    let s = started(Release::V3_8_0).await;
    let c = release_session(Release::V3_8_0, s).await;
    let root = unique_path("replay");
    seed(Release::V3_8_0, &c, &root).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let copy = tmp.path().join("data");
    copy_dir(s.data_dir(), &copy);
    let snaps = named(&copy, "snapshot.");
    assert!(snaps.len() >= 3, "{snaps:?}");
    for old in &snaps[1..] {
        std::fs::remove_file(old).expect("remove a newer snapshot");
    }
    identical(&copy.to_string_lossy(), &data_dir(s), &root);
    identical(&copy.to_string_lossy(), &s.connect_string(), &root);
}

#[tokio::test]
async fn a_session_closed_after_the_snapshot_takes_its_ephemerals_with_it() {
    let s = started(Release::V3_8_0).await;
    let c = release_session(Release::V3_8_0, s).await;
    let root = unique_path("closed");
    create(&c, &root, b"").await;
    let owner = release_session(Release::V3_8_0, s).await;
    for i in 0..3 {
        owner
            .create(&format!("{root}/e{i}"), b"", &ephemeral())
            .await
            .expect("ephemeral");
    }
    // Enough writes for a snapshot that holds the ephemerals.
    let snaps = named(s.data_dir(), "snapshot.").len();
    create(&c, &format!("{root}/churn"), b"").await;
    let mut n = 0;
    while named(s.data_dir(), "snapshot.").len() == snaps && n < 200 {
        c.set_data(&format!("{root}/churn"), b"x", None)
            .await
            .expect("set");
        n += 1;
    }
    let dir = data_dir(s);
    let j = identical(&dir, &s.connect_string(), &root);
    assert_eq!(j["summary"]["source"]["ephemerals"], 3, "{j:#}");
    drop(owner);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let j = identical(&dir, &s.connect_string(), &root);
    assert_eq!(j["summary"]["source"]["ephemerals"], 0, "{j:#}");
}

#[tokio::test]
async fn directories_of_two_releases_compare_and_tell_containers_apart() {
    let (a, b) = (
        started(Release::V3_8_0).await,
        started(Release::V3_9_3).await,
    );
    let (ca, cb) = (
        release_session(Release::V3_8_0, a).await,
        release_session(Release::V3_9_3, b).await,
    );
    let root = unique_path("releases");
    seed(Release::V3_8_0, &ca, &root).await;
    seed(Release::V3_9_3, &cb, &root).await;
    let (da, db) = (data_dir(a), data_dir(b));
    let r = compare(&da, &db, &root, &[]);
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert!(
        !r.stdout.contains("compared as persistent"),
        "both sides tell kinds: {}",
        ctx(&r)
    );
    cb.create(&format!("{root}/kind"), b"", &container())
        .await
        .expect("container");
    create(&cb, &format!("{root}/kind/child"), b"").await;
    create(&ca, &format!("{root}/kind"), b"").await;
    create(&ca, &format!("{root}/kind/child"), b"").await;
    let r = compare(&da, &db, &root, &[]);
    assert_eq!(r.code, 1, "{}", ctx(&r));
    let j = r.json();
    let kinds = of_kind(&j, "node_kind");
    assert_eq!(kinds.len(), 1, "{j:#}");
    assert_eq!(kinds[0]["path"], format!("{root}/kind"));
    // Against the live 3.8 server, the container is persistent, said so.
    let r = compare(&db, &a.connect_string(), &root, &[]);
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert!(
        r.json()["notes"]
            .to_string()
            .contains("3 container or TTL nodes compared as persistent"),
        "{}",
        ctx(&r)
    );
}

#[tokio::test]
async fn a_3_4_directory_repaired_onto_a_3_8_target_then_matches_it() {
    let old = started(Release::V3_4_6).await;
    let new = started(Release::V3_8_0).await;
    let c = release_session(Release::V3_4_6, old).await;
    let root = unique_path("migrate");
    seed(Release::V3_4_6, &c, &root).await;
    let dir = data_dir(old);
    let target = new.connect_string();
    let r = zkparity(&[
        "repair",
        "--source",
        &dir,
        "--target",
        &target,
        "--path",
        &root,
        "--create-path",
        "--apply",
        "--quiet",
    ]);
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let r = compare(&dir, &target, &root, &[]);
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let j = r.json();
    assert_eq!(j["summary"]["source"]["nodes"], 15, "{j:#}");
    let r = zkparity(&[
        "check", "parity", "--source", &dir, "--target", &target, "--path", &root,
    ]);
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert!(r.stdout.contains("PARITY OK"), "{}", ctx(&r));
}

#[tokio::test]
async fn a_killed_server_leaves_a_log_read_to_its_last_whole_transaction() {
    let mut s = own_server_with(ServerOptions {
        extra_config: vec![("snapCount".into(), "100000".into())],
        ..options(Release::V3_8_0)
    })
    .await;
    let c = release_session(Release::V3_8_0, &s).await;
    let root = "/killed";
    create(&c, root, b"").await;
    let writes = {
        let c = c.clone();
        tokio::spawn(async move {
            for i in 0.. {
                if c.create(&format!("/killed/n{i:06}"), b"v", &open())
                    .await
                    .is_err()
                {
                    return i;
                }
            }
            0
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.kill();
    let written = writes.await.expect("writer");
    assert!(written > 10, "{written} writes before the kill");
    let dir = s.data_dir().to_path_buf();
    let tmp = tempfile::tempdir().expect("temp dir");
    let torn = tmp.path().join("torn");
    copy_dir(&dir, &torn);
    // Tear the newest log's last record: zeros over its end, as a write
    // cut short leaves a preallocated file.
    let log = named(&torn, "log.").pop().expect("a log");
    let mut bytes = std::fs::read(&log).expect("read log");
    let end = bytes.iter().rposition(|b| *b != 0).expect("records") + 1;
    for b in &mut bytes[end - 10..end] {
        *b = 0;
    }
    std::fs::write(&log, &bytes).expect("tear the log");

    let d = dir.to_string_lossy().into_owned();
    let t = torn.to_string_lossy().into_owned();
    let r = compare(&t, &d, root, &[]);
    assert_eq!(r.code, 1, "one create less: {}", ctx(&r));
    let j = r.json();
    assert_eq!(j["summary"]["differences"]["extra_in_target"], 1, "{j:#}");
    assert!(
        j["notes"].to_string().contains("incomplete record"),
        "{j:#}"
    );
    let zxid = |v: &serde_json::Value| {
        u64::from_str_radix(v.as_str().unwrap_or("0x0").trim_start_matches("0x"), 16).unwrap()
    };
    assert_eq!(zxid(&j["source"]["zxid"]) + 1, zxid(&j["target"]["zxid"]));

    tokio::task::spawn_blocking(move || {
        s.restart().expect("restarts on its files");
        s
    })
    .await
    .map(|s| {
        let r = compare(&d, &s.connect_string(), root, &[]);
        assert_eq!(
            r.code,
            0,
            "the files are what the restarted server serves: {}",
            ctx(&r)
        );
    })
    .expect("restart");
}

#[tokio::test]
async fn damaged_files_are_named_with_the_byte_and_exit_2() {
    let s = started(Release::V3_8_0).await;
    let c = release_session(Release::V3_8_0, s).await;
    let root = unique_path("damaged");
    seed(Release::V3_8_0, &c, &root).await;
    let live = s.connect_string();
    let tmp = tempfile::tempdir().expect("temp dir");
    let fresh = |name: &str| {
        let d = tmp.path().join(name);
        copy_dir(s.data_dir(), &d);
        d
    };

    // A byte changed inside a log's first record, with records after it.
    let d = fresh("flipped");
    for log in named(&d, "log.") {
        let mut bytes = std::fs::read(&log).expect("read");
        bytes[16 + 12 + 20] ^= 0xff;
        std::fs::write(&log, bytes).expect("write");
    }
    let r = compare(&d.to_string_lossy(), &live, &root, &[]);
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr.contains("log.") && r.stderr.contains("at byte 16"),
        "{}",
        ctx(&r)
    );
    let r = zkparity(&[
        "check",
        "parity",
        "--source",
        &d.to_string_lossy(),
        "--target",
        &live,
        "--path",
        &root,
    ]);
    assert_eq!(r.code, 3, "a check answers UNKNOWN: {}", ctx(&r));

    // A log missing between the snapshot and the newest log.
    let d = fresh("gap");
    let snaps = named(&d, "snapshot.");
    for old in &snaps[1..] {
        std::fs::remove_file(old).expect("remove");
    }
    let logs = named(&d, "log.");
    assert!(logs.len() >= 3, "{logs:?}");
    std::fs::remove_file(&logs[1]).expect("remove a log");
    let r = compare(&d.to_string_lossy(), &live, &root, &[]);
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(r.stderr.contains("gap"), "{}", ctx(&r));
    let after = logs[2].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        r.stderr.contains(&after),
        "names the log after the gap: {}",
        ctx(&r)
    );

    // The newest snapshot cut short: the one before it, with a note.
    let d = fresh("cut");
    let newest = named(&d, "snapshot.").pop().expect("snapshot");
    let len = std::fs::metadata(&newest).expect("stat").len();
    std::fs::File::options()
        .write(true)
        .open(&newest)
        .and_then(|f| f.set_len(len / 2))
        .expect("cut");
    let j = identical(&d.to_string_lossy(), &live, &root);
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    let notes = j["notes"].to_string();
    assert!(
        notes.contains(&name) && notes.contains("passed over"),
        "{notes}"
    );

    // That snapshot alone: nothing to fall back on.
    let r = compare(&newest.to_string_lossy(), &live, &root, &[]);
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr.contains(&name) && r.stderr.contains("at byte"),
        "{}",
        ctx(&r)
    );
}

/// Writes `tests/fixtures/zookeeper/<release>/version-2` (the property
/// tests' seeds): a small estate's snapshots and logs, the logs' zero
/// padding cut off. Run by hand: `cargo test --test datadir -- --ignored`.
#[tokio::test]
#[ignore]
async fn regenerate_fixtures() {
    for release in [Release::V3_4_6, Release::V3_8_0, Release::V3_9_3] {
        let mut s = own_server_with(ServerOptions {
            extra_config: vec![("snapCount".into(), "10".into())],
            ..options(release)
        })
        .await;
        let c = release_session(release, &s).await;
        seed(release, &c, "/fx").await;
        c.set_data("/fx/big", b"small again", None).await.unwrap();
        drop(c);
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.stop();
        let out = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/zookeeper")
            .join(release.name())
            .join("version-2");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        for e in std::fs::read_dir(s.data_dir().join("version-2"))
            .unwrap()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("log.") || name.starts_with("snapshot.")) {
                continue;
            }
            let mut bytes = std::fs::read(e.path()).unwrap();
            if name.starts_with("log.") {
                let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                bytes.truncate(end);
            }
            std::fs::write(out.join(name), bytes).unwrap();
        }
    }
}

#[tokio::test]
async fn a_3_4_directory_without_a_snapshot_yet_is_replayed_from_its_first_log() {
    let s = own_server_with(ServerOptions {
        extra_config: vec![("snapCount".into(), "100000".into())],
        ..options(Release::V3_4_6)
    })
    .await;
    let c = release_session(Release::V3_4_6, &s).await;
    let root = unique_path("nosnap");
    tree(&c, &root, &[("a", b"1"), ("a/b", b"2")]).await;
    c.set_data(&format!("{root}/a"), b"again", None)
        .await
        .expect("set");
    assert_eq!(
        snapshots_and_logs(s.data_dir()).0,
        0,
        "3.4 takes its first snapshot only after snapCount/2 transactions"
    );
    let j = identical(&data_dir(&s), &s.connect_string(), "/");
    assert_eq!(j["summary"]["source"]["nodes"], 4, "{j:#}");
}

#[tokio::test]
async fn a_zoo_cfg_finds_logs_kept_in_a_separate_data_log_dir() {
    let logs = tempfile::tempdir().expect("temp dir");
    let s = own_server_with(ServerOptions {
        extra_config: vec![
            ("snapCount".into(), "20".into()),
            (
                "dataLogDir".into(),
                logs.path().to_string_lossy().into_owned(),
            ),
        ],
        ..options(Release::V3_8_0)
    })
    .await;
    let c = release_session(Release::V3_8_0, &s).await;
    let root = unique_path("logdir");
    seed(Release::V3_8_0, &c, &root).await;
    assert!(
        !named(logs.path(), "log.").is_empty(),
        "the logs are in dataLogDir"
    );
    let cfg = s.dir().join("zoo.cfg").to_string_lossy().into_owned();
    let j = identical(&cfg, &s.connect_string(), &root);
    assert_eq!(j["source"]["file"], "zookeeper", "{j:#}");
    // The dataDir alone has snapshots only: the report says what is missing.
    let r = compare(&data_dir(&s), &s.connect_string(), &root, &[]);
    assert!(
        r.json()["notes"]
            .to_string()
            .contains("no transaction logs"),
        "{}",
        ctx(&r)
    );
}

#[tokio::test]
async fn emptied_containers_and_expired_ttl_nodes_go_as_the_server_deletes_them() {
    let s = started(Release::V3_8_0).await;
    let c = release_session(Release::V3_8_0, s).await;
    let root = unique_path("expire");
    create(&c, &root, b"").await;
    let emptied = format!("{root}/emptied");
    c.create(&emptied, b"", &container())
        .await
        .expect("container");
    create(&c, &format!("{emptied}/only"), b"").await;
    c.delete(&format!("{emptied}/only"), None)
        .await
        .expect("delete");
    c.create(
        &format!("{root}/short"),
        b"",
        &zk::CreateMode::Persistent
            .with_acls(zk::Acls::anyone_all())
            .with_ttl(Duration::from_millis(200)),
    )
    .await
    .expect("ttl node");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (children, _) = c.get_children(&root).await.expect("children");
        if children.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server deletes them: {children:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let j = identical(&data_dir(s), &s.connect_string(), &root);
    assert_eq!(j["summary"]["source"]["nodes"], 1, "{j:#}");
}

#[tokio::test]
async fn every_member_of_an_ensemble_reads_as_the_tree_across_leader_changes() {
    let mut e = tokio::task::spawn_blocking(|| {
        zkparity_sandbox::Ensemble::start(3, &options(Release::V3_8_0)).expect("an ensemble starts")
    })
    .await
    .expect("starter");
    let c = connect(&e.connect_string()).await;
    let root = unique_path("quorum");
    seed(Release::V3_8_0, &c, &root).await;
    drop(c);
    // A new leader: a new epoch in the zxids, a new log on every member.
    let leader = e
        .wait_for_leader(Duration::from_secs(30))
        .expect("a leader");
    e.servers[leader].kill();
    let e = tokio::task::spawn_blocking(move || {
        e.wait_for_leader(Duration::from_secs(30))
            .expect("another leader");
        e.servers[leader].restart().expect("the old leader rejoins");
        e
    })
    .await
    .expect("restart");
    let c = connect(&e.connect_string()).await;
    c.sync(&root).await.expect("sync");
    for i in 0..30 {
        c.set_data(
            &format!("{root}/inner"),
            format!("after {i}").as_bytes(),
            None,
        )
        .await
        .expect("set after the election");
    }
    let live = e.connect_string();
    for s in &e.servers {
        // Each member has written what the quorum acknowledged; the one
        // read last may still be applying: poll briefly.
        let dir = data_dir(s);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = compare(&dir, &live, &root, &[]);
            if r.code == 0 {
                let j = r.json();
                let zxid = j["source"]["zxid"].as_str().unwrap_or_default().to_string();
                assert!(
                    zxid.starts_with("0x2") || zxid.starts_with("0x3"),
                    "a later epoch: {zxid}"
                );
                break;
            }
            assert_ne!(r.code, 2, "{}: {}", dir, ctx(&r));
            assert!(std::time::Instant::now() < deadline, "{dir}: {}", ctx(&r));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // From each member's oldest snapshot, the replay crosses the new epoch.
    let tmp = tempfile::tempdir().expect("temp dir");
    for (i, s) in e.servers.iter().enumerate() {
        let copy = tmp.path().join(format!("s{i}"));
        copy_dir(s.data_dir(), &copy);
        let snaps = named(&copy, "snapshot.");
        for newer in &snaps[1..] {
            std::fs::remove_file(newer).expect("remove a newer snapshot");
        }
        let j = identical(&copy.to_string_lossy(), &data_dir(s), &root);
        let applied = j["notes"][0].to_string();
        assert!(!applied.contains("(0 transactions"), "{applied}");
    }
}

#[test]
fn a_side_that_is_missing_or_files_where_servers_are_needed_is_said_so() {
    let r = zkparity(&[
        "compare",
        "--source",
        "/var/lib/zookeeper-typo/data",
        "--target",
        "127.0.0.1:1",
    ]);
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr
            .contains("--source /var/lib/zookeeper-typo/data: no such file or directory"),
        "{}",
        ctx(&r)
    );
    let r = zkparity(&["export", "--server", "./nothing-here"]);
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr.contains("no such file or directory"),
        "{}",
        ctx(&r)
    );
    // Commands that only ask live servers say so of a directory.
    let dir = env!("CARGO_MANIFEST_DIR").to_string() + "/tests/fixtures/zookeeper/3.8.0";
    let r = zkparity(&[
        "gmetric",
        "--source",
        &dir,
        "--target",
        "127.0.0.1:1",
        "--ganglia",
        "127.0.0.1:1",
    ]);
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(r.stderr.contains("reads live ensembles"), "{}", ctx(&r));
    let r = zkparity(&[
        "check",
        "counts",
        "--source",
        &dir,
        "--target",
        "127.0.0.1:1",
    ]);
    assert_eq!(r.code, 3, "{}", ctx(&r));
    assert!(r.stdout.contains("asks live servers"), "{}", ctx(&r));
}
