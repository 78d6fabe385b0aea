//! A ZooKeeper server's own files as a side: its data directory (the
//! `dataDir`, its `version-2`, or the server's `zoo.cfg`, which also names a
//! separate `dataLogDir`) or a single `snapshot.<zxid>` file. The newest
//! valid snapshot is read and the logs after it replayed, up to the last
//! whole transaction or `--at-zxid`; the tree then answers the walk's reads
//! with no server involved. Nothing is written, locked or created beside
//! the data (format notes: `docs/datadir.md`).
//!
//! - [`jute`]: ZooKeeper's record encoding.
//! - [`record`]: stats, ACLs and the logged transactions.
//! - [`snapfile`]: snapshot files, plain, gzip or snappy.
//! - [`txnlog`]: transaction logs, to the last whole record.
//! - [`tree`]: the compact tree the files are read into.
//! - [`replay`]: transactions applied to it.
//! - [`layout`]: finding the snapshots and logs of a directory.
//! - [`cores`]: batches read and digested on every core.

mod cores;
mod jute;
mod layout;
mod record;
mod replay;
mod snapfile;
mod tree;
mod txnlog;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::digest::NodeKind;
use crate::error::{Error, Result};
use crate::tree::{NodeRead, ReaderOptions, SideNode};

pub(crate) use layout::{env_limits, looks_like_zoo_cfg, read_config};

/// The environment variable that gives the `jute.maxbuffer` ZooKeeper's
/// files were written under, when no zoo.cfg given says it: a length past
/// what a server with it reads back marks a damaged file.
pub const JUTE_MAXBUFFER_ENV: &str = "ZKPARITY_JUTE_MAXBUFFER";
use record::Owner;
pub(crate) use snapfile::Packing;

/// Where a data-directory side stands, for the report.
#[derive(Clone, Debug, Default)]
pub struct Position {
    /// The zxid of the last transaction applied (or the snapshot's, if no
    /// log followed it).
    pub zxid: i64,
    pub snapshot: PathBuf,
    pub snapshot_zxid: i64,
    /// Logs read, in order.
    pub logs: Vec<PathBuf>,
    /// Transactions applied after the snapshot.
    pub applied: u64,
    /// When the last of them was logged (ms since the epoch, the leader's
    /// clock); `None` when no log followed the snapshot.
    pub last_txn_time_ms: Option<i64>,
    /// What the operator should know: a snapshot passed over, a log
    /// still being written.
    pub warnings: Vec<String>,
}

/// A data directory read into memory, answering reads.
pub struct DataDir {
    /// Shared with the CPU pool, which reads batches while the walk goes on.
    shared: Arc<Shared>,
}

struct Shared {
    state: replay::State,
    position: Position,
    keep_data: bool,
    read_acls: bool,
    extended_kinds: bool,
    reads: AtomicU64,
    /// Container and TTL nodes read as persistent (a side that cannot
    /// tell them is compared with this one).
    as_persistent: AtomicU64,
}

fn damaged(file: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::DataDir {
        path: file.to_path_buf(),
        offset: Some(offset),
        reason: reason.into(),
    }
}

impl DataDir {
    /// Reads `path` (a directory, zoo.cfg or snapshot file) as it stands at
    /// `at_zxid`, or at its last whole transaction.
    pub fn open(path: &Path, at_zxid: Option<i64>, options: &ReaderOptions) -> Result<DataDir> {
        let files = layout::find(path)?;
        let (exact, fuzzy) = candidates(&files.snapshots, at_zxid);
        // A server with no usable snapshot replays its logs from the first
        // transaction over the empty tree (3.4 takes its first snapshot only
        // after snapCount/2 transactions): so do we, when the logs reach back
        // that far. That is also exact at any zxid, so it comes before a
        // snapshot that might hold changes past `at_zxid`.
        let from_start = !files.single && files.logs.first().is_some_and(|l| l.zxid <= 1);
        let mut candidates = exact;
        if !(from_start && candidates.is_empty()) {
            candidates.extend(fuzzy.iter().copied());
        }
        if candidates.is_empty() && !from_start {
            return Err(Error::DataDir {
                path: path.to_path_buf(),
                offset: None,
                reason: match at_zxid {
                    Some(z) if !files.snapshots.is_empty() => format!(
                        "no snapshot at or before zxid {z:#x} (the oldest is {:#x})",
                        files.snapshots.iter().map(|s| s.zxid).min().unwrap_or(0)
                    ),
                    _ => "no ZooKeeper snapshot (snapshot.<zxid>) here".into(),
                },
            });
        }
        let mut warnings = Vec::new();
        if files.logs.is_empty() && !files.single {
            warnings.push(
                "no transaction logs beside the snapshots: the tree stands at the snapshot; if the server keeps its logs in a dataLogDir, give its zoo.cfg".into(),
            );
        }
        let (snap, mut state) = load_first(&files, candidates, from_start, &mut warnings)?;
        let mut position = Position {
            zxid: snap.zxid,
            snapshot: snap.path.clone(),
            snapshot_zxid: snap.zxid,
            ..Position::default()
        };
        let went_past = replay_logs(&files, &snap, at_zxid, &mut state, &mut position)?;
        if let (Some(z), true) = (at_zxid, went_past) {
            if fuzzy.iter().any(|f| f.path == snap.path) {
                warnings.push(format!(
                    "{} was written while transactions went on and may hold some logged after {z:#x} (up to the next snapshot's zxid); no older snapshot, nor logs from the first transaction, to start from instead",
                    snap.path.display()
                ));
            }
        }
        check_reached(path, &files, at_zxid, &position)?;
        drop_orphans(&mut state, &position, &mut warnings)?;
        state.tree.sort_children();
        position.warnings.splice(0..0, warnings);
        let shared = Shared {
            state,
            position,
            keep_data: options.keep_data,
            read_acls: options.read_acls,
            extended_kinds: options.extended_kinds,
            reads: AtomicU64::new(0),
            as_persistent: AtomicU64::new(0),
        };
        Ok(DataDir {
            shared: Arc::new(shared),
        })
    }

    pub fn position(&self) -> &Position {
        &self.shared.position
    }

    pub(crate) fn reads(&self) -> u64 {
        self.shared.reads.load(Ordering::Relaxed)
    }

    /// Container and TTL nodes read as persistent so far.
    pub(crate) fn read_as_persistent(&self) -> u64 {
        self.shared.as_persistent.load(Ordering::Relaxed)
    }

    /// Reads `paths` as a live side would answer them, on the caller's
    /// thread. The walk reads through [`crate::tree::ReadNodes`] instead,
    /// which does the same on the CPU pool.
    pub fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
        self.shared.read_nodes(paths, names)
    }
}

impl Shared {
    fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
        self.reads.fetch_add(paths.len() as u64, Ordering::Relaxed);
        let tree = &self.state.tree;
        // A batch is mostly siblings: find their parent once.
        let mut last: Option<(&str, Option<u32>)> = None;
        let ids: Vec<Option<u32>> = paths
            .iter()
            .map(|path| {
                let (parent, name) = path.rsplit_once('/')?;
                if name.is_empty() {
                    return tree.lookup(path);
                }
                let parent = if parent.is_empty() { "/" } else { parent };
                let pid = match last {
                    Some((p, id)) if p == parent => id,
                    _ => {
                        let id = tree.lookup(parent);
                        last = Some((parent, id));
                        id
                    }
                };
                pid.and_then(|p| tree.child(p, name))
            })
            .collect();
        let present: Vec<(usize, u32)> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| id.map(|id| (i, id)))
            .collect();
        let wanted: Vec<u32> = present.iter().map(|(_, id)| *id).collect();
        let mut out: Vec<SideNode> = Vec::with_capacity(paths.len());
        out.resize_with(paths.len(), || SideNode::Absent);
        let no_acl = crate::digest::acl_fingerprint(&[]);
        tree.read_many(&wanted, &self.state.store, |k, data, acl, stat| {
            let (i, id) = present[k];
            let kind = match Owner::of(stat.ephemeral_owner) {
                Owner::None => NodeKind::Persistent,
                Owner::Session(_) => NodeKind::Ephemeral,
                Owner::Container if self.extended_kinds => NodeKind::Container,
                Owner::Ttl(_) if self.extended_kinds => NodeKind::Ttl,
                Owner::Container | Owner::Ttl(_) => {
                    self.as_persistent.fetch_add(1, Ordering::Relaxed);
                    NodeKind::Persistent
                }
            };
            let children = tree.child_names(id);
            let (acl, fingerprint) = if self.read_acls {
                let a = acl as usize;
                (Some(tree.acls[a].0.clone()), tree.acl_fingerprints[a])
            } else {
                (None, no_acl)
            };
            out[i] = SideNode::Present(Box::new(NodeRead::from_slice(
                names[i],
                kind,
                data,
                self.keep_data,
                Some(stat.to_zk(data.len(), children.len())),
                acl,
                fingerprint,
                children,
            )));
        })
        .map_err(|e| Error::Io {
            context: format!("reading back {}", self.position.snapshot.display()),
            source: e,
        })?;
        Ok(out)
    }
}

impl crate::tree::ReadNodes for DataDir {
    /// Reads and digests the batch on the CPU pool: the walk folds the
    /// batches already read meanwhile, and batches in flight (of both
    /// sides) are hashed on every core.
    async fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
        let shared = Arc::clone(&self.shared);
        // One buffer for the batch's paths and names, not two allocations
        // a node, each freed by another thread.
        let batch = cores::Strings::of(paths.iter().chain(names));
        let snapshot = self.shared.position.snapshot.clone();
        cores::on_pool(move || {
            let all = batch.slices();
            let (paths, names) = all.split_at(all.len() / 2);
            shared.read_nodes(paths, names)
        })
        .await
        .unwrap_or_else(|| {
            Err(Error::Io {
                context: format!("reading back {}", snapshot.display()),
                source: std::io::Error::other("the reading thread failed"),
            })
        })
    }
}

/// The first of `candidates` (newest first) that loads whole, each passed
/// over said in `warnings`; the empty tree at zxid 0 when none does and
/// the logs reach back to the first transaction (`from_start`).
fn load_first(
    files: &layout::Files,
    candidates: Vec<&layout::Snap>,
    from_start: bool,
    warnings: &mut Vec<String>,
) -> Result<(layout::Snap, replay::State)> {
    let mut loaded = None;
    let mut failures = Vec::new();
    for snap in candidates {
        match snapfile::load(&snap.path, files.limits) {
            Ok(l) => {
                loaded = Some((snap.clone(), l));
                break;
            }
            Err(e) => {
                warnings.push(format!(
                    "snapshot {} passed over (being written, or damaged): byte {}: {}; the one before it was read",
                    e.file.display(),
                    e.offset,
                    e.reason
                ));
                tracing::warn!("{e}; trying the one before it");
                failures.push(e);
            }
        }
    }
    if !failures.is_empty() && files.single {
        let e = failures.remove(0);
        return Err(damaged(&e.file, e.offset, e.reason));
    }
    let (snap, state) = match loaded {
        Some((snap, loaded)) => (snap, loaded),
        None if from_start => {
            let empty = replay::State::empty().map_err(|e| Error::Io {
                context: "a temporary file for an empty tree".into(),
                source: e,
            })?;
            let start = layout::Snap {
                path: files.root.clone(),
                zxid: 0,
            };
            (start, empty)
        }
        None => {
            let e = failures.remove(0);
            return Err(damaged(&e.file, e.offset, e.reason));
        }
    };
    Ok((snap, state))
}

/// A snapshot file alone cannot be taken past its own zxid.
fn check_reached(
    path: &Path,
    files: &layout::Files,
    at_zxid: Option<i64>,
    position: &Position,
) -> Result<()> {
    if let Some(z) = at_zxid {
        if position.zxid < z && files.single {
            return Err(Error::DataDir {
                path: path.to_path_buf(),
                offset: None,
                reason: format!(
                    "a snapshot file alone stands at zxid {:#x}: --at-zxid {z:#x} needs the logs (give the data directory)",
                    position.zxid
                ),
            });
        }
    }
    Ok(())
}

/// Ephemerals of sessions closed by `position` left out, as the server
/// leaves them out on load.
fn drop_orphans(
    state: &mut replay::State,
    position: &Position,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let orphans = state.drop_orphans(position.zxid).map_err(|e| Error::Io {
        context: format!("reading back {}", position.snapshot.display()),
        source: e,
    })?;
    if orphans > 0 {
        warnings.push(format!(
            "{orphans} ephemeral node{} of sessions no longer open at {:#x} left out, as the server leaves them out when it loads these files",
            if orphans == 1 { "" } else { "s" },
            position.zxid
        ));
    }
    Ok(())
}

/// The snapshots to try, in order. Without `at_zxid`: newest first. With
/// it, those at or before it, and first those that cannot hold a change
/// past it: a snapshot is written while transactions go on (fuzzy), so it
/// may hold changes logged after its name's zxid, but never past the next
/// snapshot's, since a server starts a snapshot only once the previous one
/// is written. Replaying from such a snapshot stands exactly at `at_zxid`.
/// The second list holds those that may hold a change past `at_zxid`.
fn candidates(
    snapshots: &[layout::Snap],
    at_zxid: Option<i64>,
) -> (Vec<&layout::Snap>, Vec<&layout::Snap>) {
    let Some(z) = at_zxid else {
        return (snapshots.iter().collect(), Vec::new());
    };
    // Newest first: the one before `i` in the list is the next newer.
    let settled = |i: &usize| *i > 0 && snapshots[*i - 1].zxid <= z;
    let (exact, fuzzy): (Vec<usize>, Vec<usize>) = (0..snapshots.len())
        .filter(|i| snapshots[*i].zxid <= z)
        .partition(settled);
    let pick = |v: Vec<usize>| v.into_iter().map(|i| &snapshots[i]).collect();
    (pick(exact), pick(fuzzy))
}

/// Whether `b` can directly follow `a`: the next counter of one epoch, or
/// the first transaction of a later epoch.
fn follows(a: i64, b: i64) -> bool {
    b == a + 1 || ((b >> 32) > (a >> 32) && (b & 0xffff_ffff) <= 1)
}

/// Replays the logs after `snap` onto `state`, up to `at_zxid` or the end;
/// true if the logs go on past `at_zxid`.
fn replay_logs(
    files: &layout::Files,
    snap: &layout::Snap,
    at_zxid: Option<i64>,
    state: &mut replay::State,
    position: &mut Position,
) -> Result<bool> {
    let logs = files.logs_after(snap.zxid);
    let mut last = snap.zxid;
    let mut last_file: Option<PathBuf> = None;
    let count = logs.len();
    let mut reached = false;
    for (i, log) in logs.iter().enumerate() {
        let mut failure: Option<Error> = None;
        let end = txnlog::read_log(&log.path, files.limits, |entry| {
            let zxid = entry.header.zxid;
            if zxid <= last {
                return Ok(txnlog::Flow::More);
            }
            if at_zxid.is_some_and(|z| zxid > z) {
                reached = true;
                return Ok(txnlog::Flow::Stop);
            }
            if !follows(last, zxid) {
                let before = last_file
                    .as_ref()
                    .map(|f| f.display().to_string())
                    .unwrap_or_else(|| snap.path.display().to_string());
                return Err(txnlog::LogError {
                    file: log.path.clone(),
                    offset: entry.offset,
                    reason: format!(
                        "a gap in the transactions: {last:#x} (in {before}) is followed by {zxid:#x}; the logs between are missing"
                    ),
                });
            }
            if let Err(e) = state.apply(&entry.header, &entry.txn) {
                failure = Some(Error::Io {
                    context: format!("replaying {zxid:#x} from {}", log.path.display()),
                    source: e,
                });
                return Ok(txnlog::Flow::Stop);
            }
            last = zxid;
            position.applied += 1;
            position.last_txn_time_ms = Some(entry.header.time);
            Ok(txnlog::Flow::More)
        })
        .map_err(|e| damaged(&e.file, e.offset, e.reason))?;
        if let Some(e) = failure {
            return Err(e);
        }
        position.logs.push(log.path.clone());
        last_file = Some(log.path.clone());
        if let txnlog::End::CutTail { offset, reason } = end {
            // A server killed while writing leaves a torn record and goes
            // on in a new log after a restart; the gap check above tells
            // a torn tail from missing transactions.
            let more = if i + 1 < count {
                "a later log goes on from there"
            } else {
                "a server writing it, or stopped while it wrote"
            };
            position.warnings.push(format!(
                "{} ends in an incomplete record at byte {offset} ({reason}; {more}): read up to its last whole transaction",
                log.path.display()
            ));
        }
        if reached {
            break;
        }
    }
    if let Some(z) = at_zxid {
        if last < z && !reached && !files.single {
            let end = position
                .logs
                .last()
                .map(|l| l.display().to_string())
                .unwrap_or_else(|| snap.path.display().to_string());
            return Err(Error::DataDir {
                path: files.root.clone(),
                offset: None,
                reason: format!(
                    "the transactions end at zxid {last:#x} (in {end}), before --at-zxid {z:#x}"
                ),
            });
        }
    }
    position.zxid = last;
    Ok(reached)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snaps(zxids: &[i64]) -> Vec<layout::Snap> {
        zxids
            .iter()
            .map(|z| layout::Snap {
                path: PathBuf::from(format!("snapshot.{z:x}")),
                zxid: *z,
            })
            .collect()
    }

    fn zxids(v: &[&layout::Snap]) -> Vec<i64> {
        v.iter().map(|s| s.zxid).collect()
    }

    #[test]
    fn at_a_zxid_snapshots_that_cannot_hold_later_changes_come_first() {
        let s = snaps(&[0x30, 0x20, 0x10]);
        let (exact, fuzzy) = candidates(&s, Some(0x25));
        assert_eq!(zxids(&exact), [0x10], "0x20 may hold changes up to 0x30");
        assert_eq!(zxids(&fuzzy), [0x20]);
        let (exact, fuzzy) = candidates(&s, Some(0x30));
        assert_eq!(zxids(&exact), [0x20, 0x10]);
        assert_eq!(zxids(&fuzzy), [0x30]);
        let (exact, fuzzy) = candidates(&s, None);
        assert_eq!(zxids(&exact), [0x30, 0x20, 0x10], "newest first");
        assert!(fuzzy.is_empty());
        let (exact, fuzzy) = candidates(&s, Some(0x5));
        assert!(exact.is_empty() && fuzzy.is_empty());
    }

    #[test]
    fn a_transaction_follows_the_next_counter_or_a_new_epochs_first() {
        assert!(follows(0x1_0000_0005, 0x1_0000_0006));
        assert!(follows(0x1_0000_0005, 0x2_0000_0001));
        assert!(follows(0, 1));
        assert!(!follows(0x1_0000_0005, 0x1_0000_0007), "one missing");
        assert!(
            !follows(0x1_0000_0005, 0x2_0000_0002),
            "the new epoch's first missing"
        );
        assert!(!follows(0x2_0000_0001, 0x1_0000_0002), "an older epoch");
    }

    /// The same directory read on the caller's thread, as the walk read it
    /// before batches went to the CPU pool.
    struct OnCaller<'a>(&'a DataDir);

    impl crate::tree::ReadNodes for OnCaller<'_> {
        async fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
            self.0.read_nodes(paths, names)
        }
    }

    /// Every node's digests and every subtree's checksums, by path.
    #[derive(Default)]
    struct Digests(Vec<(String, Vec<u8>)>);

    impl crate::tree::Visitor for Digests {
        fn visit(&mut self, visit: &crate::tree::Visit<'_>) -> crate::tree::Tag {
            if let Some(n) = visit.sides[0].present() {
                let mut v = n.digest.to_vec();
                v.extend_from_slice(&n.data_sha256);
                v.extend_from_slice(&n.acl_fingerprint);
                self.0.push((format!("node {}", visit.path), v));
            }
            0
        }

        fn subtree_done(
            &mut self,
            path: &str,
            _: u32,
            _: crate::tree::Tag,
            sides: &[Option<crate::tree::SubtreeSummary>; 2],
        ) {
            if let Some(s) = &sides[0] {
                let mut v = s.checksum.to_vec();
                v.extend_from_slice(&s.acl_fingerprint);
                v.extend_from_slice(&s.nodes.to_be_bytes());
                self.0.push((format!("subtree {path}"), v));
            }
        }
    }

    async fn walk_digests<R: crate::tree::ReadNodes>(
        side: &R,
        options: &crate::tree::WalkOptions,
    ) -> (Option<crate::tree::SubtreeSummary>, Vec<(String, Vec<u8>)>) {
        let mut seen = Digests::default();
        let [root, _] = crate::tree::walk([Some(side), None], "/", options, &mut seen, &mut ())
            .await
            .expect("the fixture walks");
        seen.0.sort();
        (root, seen.0)
    }

    #[tokio::test]
    async fn digests_read_on_the_pool_equal_those_read_on_the_callers_thread() {
        use crate::tree::{EphemeralPolicy, WalkOptions};
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zookeeper");
        for release in ["3.4.6", "3.8.0", "3.9.3"] {
            let options = ReaderOptions {
                extended_kinds: true,
                ..ReaderOptions::default()
            };
            let dir = DataDir::open(&fixtures.join(release), None, &options).expect("fixture");
            let excludes = crate::exclude::Excludes::new::<&str>(&[]).expect("no patterns");
            let mut walk = WalkOptions::new(EphemeralPolicy::Compare, excludes);
            // Small batches, many at once: they finish out of order, on
            // whichever core.
            walk.batch_nodes = 2;
            walk.in_flight = 16;
            let (pooled_root, pooled) = walk_digests(&dir, &walk).await;
            walk.batch_nodes = 1;
            walk.in_flight = 1;
            let (caller_root, caller) = walk_digests(&OnCaller(&dir), &walk).await;
            assert!(caller.len() > 20, "{release}: a fixture of some size");
            assert_eq!(pooled, caller, "{release}");
            assert_eq!(pooled_root, caller_root, "{release}");
        }
    }
}
