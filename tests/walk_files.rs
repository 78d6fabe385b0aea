//! The walk engine and the comparison over file sides (snapshot and
//! zktreeutil files made here), in process: no server needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use zkparity::compare::{compare_sides, CompareOptions};
use zkparity::exclude::Excludes;
use zkparity::progress::Progress;
use zkparity::report::{CompareReport, DiffKind};
use zkparity::snapshot::SnapshotFile;
use zkparity::source::{SideSpec, Source};
use zkparity::tree::{
    self, EphemeralPolicy, Observer, ReaderOptions, SubtreeSummary, Tag, Visit, Visitor,
    WalkOptions,
};
use zkparity::zktreeutil::{self, XmlTree};

// ---------------------------------------------------------------------------
// Files made by hand.

/// One record of a snapshot being made.
#[derive(Clone)]
struct Record {
    ephemeral: bool,
    data: Vec<u8>,
    /// (scheme, id, perms)
    acl: Vec<(String, String, u32)>,
    cversion: Option<i32>,
    unreadable: Option<String>,
}

/// A snapshot file's content, built node by node; child lists, stats and
/// the trailer's record count and SHA-256 are worked out on writing.
#[derive(Clone)]
struct Snap {
    root: String,
    ephemerals: &'static str,
    excludes: Vec<String>,
    nodes: BTreeMap<String, Record>,
}

impl Snap {
    fn new(root: &str) -> Snap {
        Snap {
            root: root.to_string(),
            ephemerals: "count",
            excludes: Vec::new(),
            nodes: BTreeMap::new(),
        }
        .node(root, b"")
    }

    fn put(mut self, path: &str, data: &[u8], ephemeral: bool) -> Snap {
        self.nodes.insert(
            path.to_string(),
            Record {
                ephemeral,
                data: data.to_vec(),
                acl: vec![("world".into(), "anyone".into(), 31)],
                cversion: None,
                unreadable: None,
            },
        );
        self
    }

    fn node(self, path: &str, data: &[u8]) -> Snap {
        self.put(path, data, false)
    }

    fn ephemeral(self, path: &str, data: &[u8]) -> Snap {
        self.put(path, data, true)
    }

    fn unreadable(mut self, path: &str) -> Snap {
        self = self.node(path, b"");
        self.nodes.get_mut(path).unwrap().unreadable =
            Some("NoAuth: not authorised to read".into());
        self
    }

    fn acl(mut self, path: &str, scheme: &str, id: &str, perms: u32) -> Snap {
        self.nodes.get_mut(path).unwrap().acl = vec![(scheme.into(), id.into(), perms)];
        self
    }

    fn cversion(mut self, path: &str, cversion: i32) -> Snap {
        self.nodes.get_mut(path).unwrap().cversion = Some(cversion);
        self
    }

    fn without(mut self, path: &str) -> Snap {
        let below = format!("{path}/");
        self.nodes
            .retain(|p, _| p != path && !p.starts_with(&below));
        self
    }

    fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        let mut names: Vec<String> = self
            .nodes
            .keys()
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_string)
            .collect();
        names.sort_unstable();
        names
    }

    fn text(&self) -> String {
        let header = serde_json::json!({
            "format": "zkparity-snapshot",
            "version": 1,
            "digest_version": "zkparity-digest-v1",
            "source": "h:1",
            "path": self.root,
            "excludes": self.excludes,
            "ephemerals": self.ephemerals,
            "created_unix": 0,
            "zkparity": "0",
        });
        let mut lines = vec![header.to_string()];
        // Path order puts every parent before its children.
        for (path, r) in &self.nodes {
            let line = match &r.unreadable {
                Some(reason) => serde_json::json!({"path": path, "unreadable": reason}),
                None => {
                    let children = self.children(path);
                    let n = children.len() as i32;
                    serde_json::json!({
                        "path": path,
                        "kind": if r.ephemeral { "ephemeral" } else { "persistent" },
                        "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                        "acl": r.acl.iter().map(|(s, i, p)| serde_json::json!({"scheme": s, "id": i, "perms": p})).collect::<Vec<_>>(),
                        "stat": {
                            "czxid": 5, "mzxid": 5, "pzxid": 9, "ctime": 1, "mtime": 1,
                            "version": 0, "cversion": r.cversion.unwrap_or(n), "aversion": 0,
                            "ephemeral_owner": if r.ephemeral { 77 } else { 0 },
                            "data_length": r.data.len(), "num_children": n,
                        },
                        "children": children,
                    })
                }
            };
            lines.push(line.to_string());
        }
        let mut body = lines.join("\n") + "\n";
        let sha = hex::encode(Sha256::digest(body.as_bytes()));
        let trailer = serde_json::json!({"end": {
            "nodes": self.nodes.len(), "ephemerals": 0, "unreadable": 0, "bytes": 0,
            "checksum": "00", "acl_fingerprint": "00",
            "records": self.nodes.len(), "sha256": sha,
        }});
        body.push_str(&trailer.to_string());
        body.push('\n');
        body
    }

    fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let file = dir.join(name);
        std::fs::write(&file, self.text()).expect("writing the snapshot");
        file
    }

    fn open(&self, dir: &Path, name: &str, read_acls: bool) -> SnapshotFile {
        let options = ReaderOptions {
            read_acls,
            keep_data: true,
            ..ReaderOptions::default()
        };
        SnapshotFile::open(&self.write(dir, name), &options).expect("a valid snapshot")
    }
}

/// The tree most tests start from, rooted at `/r`.
fn sample() -> Snap {
    Snap::new("/r")
        .node("/r/app", b"config")
        .node("/r/app/a", b"1")
        .node("/r/app/b", b"22")
        .node("/r/app/b/deep", b"333")
        .node("/r/locks", b"")
        .ephemeral("/r/locks/lock-0000000001", b"host-a")
        .node("/r/other", b"x")
}

fn xml(text: &str) -> XmlTree {
    XmlTree::parse(text, Path::new("test.xml")).expect("valid zktreeutil XML")
}

fn no_excludes() -> Excludes {
    Excludes::new::<&str>(&[]).unwrap()
}

fn walk_options(policy: EphemeralPolicy) -> WalkOptions {
    WalkOptions::new(policy, no_excludes())
}

// ---------------------------------------------------------------------------
// A visitor that remembers what it was shown.

#[derive(Default)]
struct Recorder {
    visited: Vec<(String, Tag)>,
    /// Path -> per-side summaries, in the order subtrees finished.
    done: Vec<(String, [Option<SubtreeSummary>; 2])>,
    /// Tag to give children of a path.
    tags: BTreeMap<String, Tag>,
}

impl Visitor for Recorder {
    fn visit(&mut self, v: &Visit<'_>) -> Tag {
        self.visited.push((v.path.to_string(), v.tag));
        self.tags.get(v.path).copied().unwrap_or(v.tag)
    }

    fn subtree_done(
        &mut self,
        path: &str,
        _depth: u32,
        _tag: Tag,
        sides: &[Option<SubtreeSummary>; 2],
    ) {
        self.done.push((path.to_string(), sides.clone()));
    }
}

impl Recorder {
    fn visited_paths(&self) -> BTreeSet<String> {
        self.visited.iter().map(|(p, _)| p.clone()).collect()
    }

    fn summaries(&self, side: usize) -> BTreeMap<String, SubtreeSummary> {
        self.done
            .iter()
            .filter_map(|(p, s)| s[side].clone().map(|s| (p.clone(), s)))
            .collect()
    }
}

/// Counts the observer's calls.
#[derive(Default)]
struct Batches {
    seen: Vec<u64>,
    done: u32,
}

impl<V> Observer<V> for Batches {
    fn batch_done(&mut self, nodes: u64, _: &V) {
        self.seen.push(nodes);
    }

    fn walk_done(&mut self) {
        self.done += 1;
    }
}

fn walk_one<R: tree::ReadNodes>(
    side: &R,
    root: &str,
    options: &WalkOptions,
) -> (Recorder, Option<SubtreeSummary>) {
    let mut recorder = Recorder::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let [root, _] = rt
        .block_on(tree::walk(
            [Some(side), None],
            root,
            options,
            &mut recorder,
            &mut (),
        ))
        .expect("the walk");
    (recorder, root)
}

// ---------------------------------------------------------------------------
// The walk.

#[test]
fn a_walk_counts_every_node_byte_and_ephemeral() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sample().open(dir.path(), "s.snap", true);
    let (rec, root) = walk_one(&snap, "/r", &walk_options(EphemeralPolicy::Count));
    let root = root.expect("the root exists");
    assert_eq!(root.nodes, 8);
    assert_eq!(root.ephemerals, 1);
    assert_eq!(root.bytes, (6 + 1 + 2 + 3 + 6 + 1) as u64);
    assert_eq!(root.unreadable, 0);
    assert_eq!(rec.visited.len(), 8);
    let app = &rec.summaries(0)["/r/app"];
    assert_eq!((app.nodes, app.bytes), (4, 12));
}

#[test]
fn every_subtree_finishes_once_and_after_everything_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sample().open(dir.path(), "s.snap", true);
    let (rec, _) = walk_one(&snap, "/r", &walk_options(EphemeralPolicy::Count));
    let order: Vec<&str> = rec.done.iter().map(|(p, _)| p.as_str()).collect();
    let unique: BTreeSet<&str> = order.iter().copied().collect();
    assert_eq!(unique.len(), order.len(), "{order:?}");
    assert_eq!(
        unique,
        rec.visited_paths().iter().map(String::as_str).collect()
    );
    for (i, path) in order.iter().enumerate() {
        let below = format!("{path}/");
        assert!(
            order[i..].iter().all(|p| !p.starts_with(&below)),
            "{path} finished before something below it: {order:?}"
        );
    }
    assert_eq!(order.last(), Some(&"/r"));
}

#[test]
fn parents_are_visited_before_their_children() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sample().open(dir.path(), "s.snap", true);
    let (rec, _) = walk_one(&snap, "/r", &walk_options(EphemeralPolicy::Count));
    for (i, (path, _)) in rec.visited.iter().enumerate() {
        if let Some(up) = tree::path::parent(path).filter(|_| path != "/r") {
            assert!(
                rec.visited[..i].iter().any(|(p, _)| p == up),
                "{path} visited before {up}"
            );
        }
    }
}

#[test]
fn children_inherit_the_tag_their_parent_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sample().open(dir.path(), "s.snap", true);
    let mut rec = Recorder::default();
    rec.tags.insert("/r/app".into(), 7);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(tree::walk(
        [Some(&snap), None],
        "/r",
        &walk_options(EphemeralPolicy::Count),
        &mut rec,
        &mut (),
    ))
    .unwrap();
    let tags: BTreeMap<String, Tag> = rec.visited.iter().cloned().collect();
    assert_eq!(tags["/r"], 0);
    assert_eq!(tags["/r/app"], 0, "a node keeps the tag it came with");
    assert_eq!(tags["/r/app/a"], 7);
    assert_eq!(
        tags["/r/app/b/deep"], 7,
        "and its whole subtree gets the new one"
    );
    assert_eq!(tags["/r/other"], 0);
}

#[test]
fn excluded_subtrees_are_neither_visited_nor_counted() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sample().open(dir.path(), "s.snap", true);
    let options = WalkOptions::new(
        EphemeralPolicy::Count,
        Excludes::new(&["/r/app/b", "/r/locks/*"]).unwrap(),
    );
    let (rec, root) = walk_one(&snap, "/r", &options);
    let visited = rec.visited_paths();
    assert!(!visited.contains("/r/app/b"));
    assert!(!visited.contains("/r/app/b/deep"));
    assert!(!visited.contains("/r/locks/lock-0000000001"));
    assert!(visited.contains("/r/locks"));
    let root = root.unwrap();
    assert_eq!((root.nodes, root.ephemerals), (5, 0));

    // The same as a tree that never had them.
    let cut = sample()
        .without("/r/app/b")
        .without("/r/locks/lock-0000000001")
        .open(dir.path(), "cut.snap", true);
    let (_, plain) = walk_one(&cut, "/r", &walk_options(EphemeralPolicy::Count));
    assert_eq!(plain.unwrap().checksum, root.checksum);
}

/// Walks the sample under `policy` with its ephemeral lock and without it:
/// what the walk with it recorded, and both roots.
fn with_and_without_the_lock(
    policy: EphemeralPolicy,
) -> (Recorder, SubtreeSummary, SubtreeSummary) {
    let dir = tempfile::tempdir().unwrap();
    let snap = sample().open(dir.path(), "s.snap", true);
    let bare = sample()
        .without("/r/locks/lock-0000000001")
        .open(dir.path(), "bare.snap", true);
    let options = walk_options(policy);
    let (rec, with) = walk_one(&snap, "/r", &options);
    let (_, without) = walk_one(&bare, "/r", &options);
    (rec, with.unwrap(), without.unwrap())
}

#[test]
fn skipped_ephemerals_are_neither_counted_nor_in_checksums() {
    let (_, with, without) = with_and_without_the_lock(EphemeralPolicy::Skip);
    assert_eq!((with.nodes, with.ephemerals), (7, 0));
    assert_eq!(with.bytes, without.bytes);
    assert_eq!(with.checksum, without.checksum);
}

#[test]
fn counted_ephemerals_are_counted_but_kept_out_of_checksums() {
    let (rec, with, without) = with_and_without_the_lock(EphemeralPolicy::Count);
    assert_eq!((with.nodes, with.ephemerals), (8, 1));
    assert_eq!(with.checksum, without.checksum);
    let lock = &rec.summaries(0)["/r/locks/lock-0000000001"];
    assert!(!lock.in_checksum);
}

#[test]
fn compared_ephemerals_count_in_checksums() {
    let (_, with, without) = with_and_without_the_lock(EphemeralPolicy::Compare);
    assert_eq!((with.nodes, with.ephemerals), (8, 1));
    assert_ne!(with.checksum, without.checksum);
}

#[test]
fn an_unreadable_node_is_counted_as_such_and_changes_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let readable = sample()
        .node("/r/secret", b"s")
        .open(dir.path(), "a.snap", true);
    let shut = sample()
        .unreadable("/r/secret")
        .open(dir.path(), "b.snap", true);
    let options = walk_options(EphemeralPolicy::Count);
    let (_, a) = walk_one(&readable, "/r", &options);
    let (_, b) = walk_one(&shut, "/r", &options);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.unreadable, b.unreadable), (0, 1));
    assert_eq!(a.nodes, b.nodes);
    assert_ne!(a.checksum, b.checksum);
}

#[test]
fn batch_sizes_and_reads_in_flight_do_not_change_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = sample();
    for i in 0..40 {
        big = big.node(&format!("/r/many/n{i:02}"), format!("{i}").as_bytes());
    }
    let snap = big.node("/r/many", b"").open(dir.path(), "s.snap", true);
    let reference = walk_one(&snap, "/r", &walk_options(EphemeralPolicy::Count));
    let want = reference.0.summaries(0);
    for (batch_nodes, batch_bytes, in_flight) in [(1, 1 << 20, 1), (3, 1 << 20, 4), (200, 20, 2)] {
        let mut options = walk_options(EphemeralPolicy::Count);
        options.batch_nodes = batch_nodes;
        options.batch_bytes = batch_bytes;
        options.in_flight = in_flight;
        let (rec, root) = walk_one(&snap, "/r", &options);
        assert_eq!(root, reference.1, "{batch_nodes}/{batch_bytes}/{in_flight}");
        assert_eq!(
            rec.summaries(0),
            want,
            "{batch_nodes}/{batch_bytes}/{in_flight}"
        );
    }
}

#[test]
fn the_observer_hears_of_every_batch_and_of_the_end_once() {
    let dir = tempfile::tempdir().unwrap();
    let snap = sample().open(dir.path(), "s.snap", true);
    let mut options = walk_options(EphemeralPolicy::Count);
    options.batch_nodes = 1;
    let mut batches = Batches::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(tree::walk(
        [Some(&snap), None],
        "/r",
        &options,
        &mut Recorder::default(),
        &mut batches,
    ))
    .unwrap();
    // One node a batch: one call per node, counting up to all of them.
    assert_eq!(batches.seen, (1..=8).collect::<Vec<u64>>());
    assert_eq!(batches.done, 1);
}

#[test]
fn a_two_sided_walk_visits_the_union_of_both_trees() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample()
        .without("/r/other")
        .open(dir.path(), "a.snap", true);
    let b = sample()
        .without("/r/app/b")
        .node("/r/new", b"n")
        .open(dir.path(), "b.snap", true);
    let mut rec = Recorder::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let [ra, rb] = rt
        .block_on(tree::walk(
            [Some(&a), Some(&b)],
            "/r",
            &walk_options(EphemeralPolicy::Count),
            &mut rec,
            &mut (),
        ))
        .unwrap();
    let visited = rec.visited_paths();
    for p in [
        "/r/other",
        "/r/new",
        "/r/app/b",
        "/r/app/b/deep",
        "/r/app/a",
    ] {
        assert!(visited.contains(p), "{p} not visited");
    }
    let done: BTreeMap<String, [Option<SubtreeSummary>; 2]> = rec.done.into_iter().collect();
    assert!(done["/r/other"][0].is_none() && done["/r/other"][1].is_some());
    assert!(done["/r/app/b/deep"][0].is_some() && done["/r/app/b/deep"][1].is_none());
    assert_eq!(ra.unwrap().nodes, 7);
    assert_eq!(rb.unwrap().nodes, 7);
}

#[test]
fn a_subtree_digests_the_same_wherever_it_sits() {
    let dir = tempfile::tempdir().unwrap();
    let here = sample().open(dir.path(), "a.snap", true);
    let mut moved = Snap::new("/elsewhere").node("/elsewhere/deeper", b"");
    for (path, record) in &sample().nodes {
        let path = path.replacen("/r", "/elsewhere/deeper/r2", 1);
        moved.nodes.insert(path, record.clone());
    }
    let there = moved.open(dir.path(), "b.snap", true);
    let options = walk_options(EphemeralPolicy::Count);
    let (_, a) = walk_one(&here, "/r", &options);
    let (_, b) = walk_one(&there, "/elsewhere/deeper/r2", &options);
    assert_eq!(a.unwrap().checksum, b.unwrap().checksum);
}

#[test]
fn snapshot_and_its_zktreeutil_export_have_equal_subtree_checksums() {
    let dir = tempfile::tempdir().unwrap();
    // zktreeutil holds text values, no ACLs and no ephemerals.
    let snap = sample().open(dir.path(), "s.snap", false);
    for policy in [EphemeralPolicy::Skip, EphemeralPolicy::Count] {
        let options = walk_options(policy);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut out = Vec::new();
        rt.block_on(zktreeutil::export(&snap, "/r", &options, &mut out))
            .expect("export");
        let exported = xml(std::str::from_utf8(&out).unwrap());
        let (from_snap, a) = walk_one(&snap, "/r", &options);
        let (from_xml, b) = walk_one(&exported, "/r", &options);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.checksum, b.checksum, "{policy:?}");
        assert_eq!(a.acl_fingerprint, b.acl_fingerprint, "{policy:?}");
        let checksums = |r: &Recorder| -> BTreeMap<String, _> {
            r.summaries(0)
                .into_iter()
                .filter(|(_, s)| s.in_checksum)
                .map(|(p, s)| (p, s.checksum))
                .collect()
        };
        assert_eq!(
            checksums(&from_snap).len(),
            7,
            "every node but the ephemeral"
        );
        assert_eq!(checksums(&from_snap), checksums(&from_xml), "{policy:?}");
    }
}

#[test]
fn a_zktreeutil_file_walks_like_the_tree_it_describes() {
    let tree = xml(r#"<?xml version="1.0" encoding="UTF-8"?>
<root>
  <zknode name="r">
    <zknode name="a" value="1"/>
    <zknode name="b" value="22">
      <zknode name="c" value="333"/>
    </zknode>
  </zknode>
</root>
"#);
    let (rec, root) = walk_one(&tree, "/r", &walk_options(EphemeralPolicy::Count));
    let root = root.unwrap();
    assert_eq!((root.nodes, root.bytes, root.ephemerals), (4, 6, 0));
    let visited: Vec<String> = rec.visited_paths().into_iter().collect();
    assert_eq!(visited, ["/r", "/r/a", "/r/b", "/r/b/c"]);
}

// ---------------------------------------------------------------------------
// The comparison.

fn compare_options(path: &str, policy: EphemeralPolicy) -> CompareOptions {
    CompareOptions {
        path: path.to_string(),
        walk: walk_options(policy),
        reader: ReaderOptions::default(),
        subtree_depth: 1,
        recheck_delay: Some(Duration::ZERO),
        limit: 0,
        show_acl_ids: false,
        acl_caches: [None, None],
    }
}

fn file(path: &Path) -> SideSpec {
    SideSpec::file("side", &path.to_string_lossy(), None)
}

async fn compare_files(source: &Path, target: &Path, options: &CompareOptions) -> CompareReport {
    let mut quiet = Progress::new(false);
    compare_sides(&file(source), &file(target), options, &mut quiet)
        .await
        .expect("the comparison")
}

/// Compares the sample, as the source, with `target` under `policy`.
async fn against_sample(target: Snap, policy: EphemeralPolicy) -> CompareReport {
    let dir = tempfile::tempdir().unwrap();
    let source = sample().write(dir.path(), "a.snap");
    let target = target.write(dir.path(), "b.snap");
    compare_files(&source, &target, &compare_options("/r", policy)).await
}

/// (path, kind) of every difference reported.
fn found(report: &CompareReport) -> Vec<(String, DiffKind)> {
    report
        .differences
        .iter()
        .map(|d| (d.path.clone(), d.kind))
        .collect()
}

fn one(path: &str, kind: DiffKind) -> Vec<(String, DiffKind)> {
    vec![(path.to_string(), kind)]
}

#[tokio::test]
async fn identical_snapshots_compare_identical() {
    let report = against_sample(sample(), EphemeralPolicy::Count).await;
    assert!(report.summary.identical);
    assert_eq!(report.summary.confirmed, 0);
    assert!(report.differences.is_empty());
    assert_eq!(report.summary.source.nodes, 8);
    assert_eq!(report.summary.source, report.summary.target);
    assert!(report.subtrees.iter().all(|row| row.matches));
    assert!(report.settings.acls_compared);
}

#[tokio::test]
async fn a_snapshot_and_its_zktreeutil_export_compare_identical() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample().write(dir.path(), "a.snap");
    let snap = sample().open(dir.path(), "s.snap", false);
    let options = compare_options("/r", EphemeralPolicy::Count);
    let mut out = Vec::new();
    zktreeutil::export(&Source::Snapshot(snap), "/r", &options.walk, &mut out)
        .await
        .unwrap();
    let x = dir.path().join("export.xml");
    std::fs::write(&x, out).unwrap();
    let report = compare_files(&a, &x, &options).await;
    assert!(report.summary.identical, "{:?}", found(&report));
    assert!(
        !report.settings.acls_compared,
        "a zktreeutil side holds no ACLs"
    );
}

#[tokio::test]
async fn different_data_is_a_data_difference_at_that_path() {
    let report = against_sample(
        sample().node("/r/app/b", b"changed"),
        EphemeralPolicy::Count,
    )
    .await;
    assert_eq!(found(&report), one("/r/app/b", DiffKind::Data));
    assert!(!report.summary.identical);
    assert_eq!(report.summary.differences["data"], 1);
}

#[tokio::test]
async fn a_different_acl_is_an_acl_difference_at_that_path() {
    let report = against_sample(
        sample().acl("/r/app/a", "digest", "alice:hash=", 1),
        EphemeralPolicy::Count,
    )
    .await;
    assert_eq!(found(&report), one("/r/app/a", DiffKind::Acl));
}

#[tokio::test]
async fn an_ephemeral_against_a_persistent_node_is_a_node_kind_difference() {
    let report = against_sample(
        sample().node("/r/locks/lock-0000000001", b"host-a"),
        EphemeralPolicy::Compare,
    )
    .await;
    assert_eq!(
        found(&report),
        one("/r/locks/lock-0000000001", DiffKind::NodeKind)
    );
}

#[tokio::test]
async fn a_target_counter_behind_the_source_matters_only_over_persistent_sequential_children() {
    let dir = tempfile::tempdir().unwrap();
    // Ten creates under /r/locks on the source, one on the target; the
    // lock is ephemeral: it starts over with a live session, no risk.
    let locks = sample()
        .cversion("/r/locks", 19)
        .write(dir.path(), "locks.snap");
    let fresh = sample().write(dir.path(), "fresh.snap");
    let options = compare_options("/r", EphemeralPolicy::Count);
    let report = compare_files(&locks, &fresh, &options).await;
    assert!(report.summary.identical, "{:?}", found(&report));
    // A persistent sequential child survives the migration: at risk.
    let queue = |name: &str, cversion: Option<i32>| {
        let snap = sample().node("/r/locks/lock-0000000001", b"item");
        match cversion {
            Some(c) => snap.cversion("/r/locks", c),
            None => snap,
        }
        .write(dir.path(), name)
    };
    let (a, b) = (queue("a.snap", Some(19)), queue("b.snap", None));
    let report = compare_files(&a, &b, &options).await;
    assert_eq!(found(&report), one("/r/locks", DiffKind::SequenceCounter));
    let why = report.differences[0].reason.as_deref().unwrap_or_default();
    assert!(why.contains("lock-0000000001"), "{why}");
    // A target ahead is not behind.
    let report = compare_files(&b, &a, &compare_options("/r", EphemeralPolicy::Count)).await;
    assert!(report.summary.identical, "{:?}", found(&report));
}

#[tokio::test]
async fn a_missing_subtree_is_reported_once_at_its_root() {
    let report = against_sample(sample().without("/r/app/b"), EphemeralPolicy::Count).await;
    assert_eq!(found(&report), one("/r/app/b", DiffKind::MissingInTarget));
    assert_eq!(report.differences[0].subtree_nodes, Some(2));
    assert_eq!(report.summary.confirmed, 1);
}

#[tokio::test]
async fn an_extra_subtree_is_reported_once_at_its_root() {
    let report = against_sample(
        sample()
            .node("/r/extra", b"")
            .node("/r/extra/x", b"")
            .node("/r/extra/x/y", b""),
        EphemeralPolicy::Count,
    )
    .await;
    assert_eq!(found(&report), one("/r/extra", DiffKind::ExtraInTarget));
    assert_eq!(report.differences[0].subtree_nodes, Some(3));
}

#[tokio::test]
async fn an_unreadable_node_is_an_unreadable_difference_and_hides_what_is_below() {
    let report = against_sample(
        sample().without("/r/app/b").unreadable("/r/app/b"),
        EphemeralPolicy::Count,
    )
    .await;
    assert_eq!(found(&report), one("/r/app/b", DiffKind::Unreadable));
}

#[tokio::test]
async fn ephemerals_on_one_side_only_count_as_differences_only_when_compared() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample().write(dir.path(), "a.snap");
    // The target's lock was created too, and is gone with its session.
    let b = sample()
        .without("/r/locks/lock-0000000001")
        .cversion("/r/locks", 2)
        .write(dir.path(), "b.snap");
    for policy in [EphemeralPolicy::Skip, EphemeralPolicy::Count] {
        let report = compare_files(&a, &b, &compare_options("/r", policy)).await;
        assert!(report.summary.identical, "{policy:?}: {:?}", found(&report));
    }
    let report = compare_files(&a, &b, &compare_options("/r", EphemeralPolicy::Compare)).await;
    assert_eq!(
        found(&report),
        one("/r/locks/lock-0000000001", DiffKind::MissingInTarget)
    );
}

#[tokio::test]
async fn differences_in_excluded_subtrees_are_not_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample().write(dir.path(), "a.snap");
    let b = sample()
        .node("/r/app/b/deep", b"changed")
        .node("/r/other", b"changed")
        .write(dir.path(), "b.snap");
    let mut options = compare_options("/r", EphemeralPolicy::Count);
    options.walk.excludes = Excludes::new(&["/r/app/b"]).unwrap();
    let report = compare_files(&a, &b, &options).await;
    assert_eq!(found(&report), one("/r/other", DiffKind::Data));
}

#[tokio::test]
async fn what_a_snapshot_left_out_is_left_out_of_the_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let mut cut = sample().without("/r/app/b");
    cut.excludes = vec!["/r/app/b".into()];
    let a = cut.write(dir.path(), "a.snap");
    let b = sample().write(dir.path(), "b.snap");
    let report = compare_files(&a, &b, &compare_options("/r", EphemeralPolicy::Count)).await;
    assert!(report.summary.identical, "{:?}", found(&report));
    assert!(report.settings.excludes.contains(&"/r/app/b".to_string()));
}

#[tokio::test]
async fn subtrees_marked_ignore_in_zktreeutil_are_left_out_of_the_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample().write(dir.path(), "a.snap");
    let x = dir.path().join("t.xml");
    std::fs::write(
        &x,
        r#"<root>
  <zknode name="r">
    <zknode name="app" value="config">
      <zknode name="a" value="1"/>
      <zknode name="b" ignore="true"/>
    </zknode>
    <zknode name="locks"/>
    <zknode name="other" value="x"/>
  </zknode>
</root>
"#,
    )
    .unwrap();
    let report = compare_files(&a, &x, &compare_options("/r", EphemeralPolicy::Count)).await;
    assert!(report.summary.identical, "{:?}", found(&report));
}

#[tokio::test]
async fn every_difference_kind_is_found_at_its_own_path_in_one_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let a = sample()
        .node("/r/gone", b"")
        .node("/r/gone/child", b"")
        .node("/r/queue", b"")
        .node("/r/queue/q-0000000009", b"item")
        .cversion("/r/queue", 19)
        .write(dir.path(), "a.snap");
    let b = sample()
        .node("/r/queue", b"")
        .node("/r/queue/q-0000000009", b"item")
        .node("/r/app/a", b"other")
        .acl("/r/app/b", "digest", "bob:hash=", 31)
        .node("/r/locks/lock-0000000001", b"host-a")
        .without("/r/other")
        .unreadable("/r/other")
        .node("/r/new", b"")
        .write(dir.path(), "b.snap");
    let report = compare_files(&a, &b, &compare_options("/r", EphemeralPolicy::Compare)).await;
    let mut want = vec![
        ("/r/app/a".to_string(), DiffKind::Data),
        ("/r/app/b".to_string(), DiffKind::Acl),
        ("/r/gone".to_string(), DiffKind::MissingInTarget),
        ("/r/locks/lock-0000000001".to_string(), DiffKind::NodeKind),
        ("/r/queue".to_string(), DiffKind::SequenceCounter),
        ("/r/new".to_string(), DiffKind::ExtraInTarget),
        ("/r/other".to_string(), DiffKind::Unreadable),
    ];
    want.sort();
    let mut got = found(&report);
    got.sort();
    assert_eq!(got, want);
    // The unreadable node is listed, but not counted as a difference.
    assert_eq!(report.summary.confirmed, 6);
    assert_eq!(report.summary.unreadable, 1);
    let rows: BTreeMap<&str, bool> = report
        .subtrees
        .iter()
        .map(|r| (r.path.as_str(), r.matches))
        .collect();
    assert!(!rows["/r"]);
    assert!(!rows["/r/app"]);
}
