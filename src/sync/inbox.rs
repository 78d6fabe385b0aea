//! Where the watches' [`Change`]s wait until the follow loop reads them.
//!
//! The loop does not read while the initial copy or a pass runs, which can
//! take hours, while the source may change thousands of times a second: so
//! what waits is bounded ([`MAX_WAITING`] changes, [`MAX_WAITING_BYTES`] of
//! paths and reasons). Past the bound a side's changes are dropped, but
//! never silently: a `Gap` takes their place (for the source: a full pass
//! copies what they named), and the side's last `Live`/`Down` comes right
//! after it, so the loop still knows whether the watch is up.
//!
//! Target events of sync's own writes (one per node the copy writes) are
//! dropped as they arrive rather than queued: [`OwnWrites`] says which
//! subtrees sync is writing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::watch::{Change, Side};
use crate::exclude::Excludes;
use crate::tree::path::{parent, within};

/// Changes waiting at most, and bytes of their paths and reasons.
pub const MAX_WAITING: usize = 10_000;
pub const MAX_WAITING_BYTES: usize = 4 * 1024 * 1024;
/// Subtrees remembered as being written by sync at most; past this they
/// are merged into a few common ancestors (see [`OwnWrites::insert`]).
pub const MAX_OWN: usize = 50_000;
/// What `MAX_OWN` subtrees are merged into.
const OWN_MERGED: usize = 16;

/// Subtrees sync is writing or just wrote, until when: target events in
/// them are its own.
#[derive(Debug)]
pub struct OwnWrites {
    root: String,
    until: BTreeMap<String, Instant>,
}

impl OwnWrites {
    pub fn new(root: &str) -> OwnWrites {
        OwnWrites {
            root: root.to_string(),
            until: BTreeMap::new(),
        }
    }

    /// Target events under `path` are sync's own until `until`. Past
    /// `MAX_OWN` live entries they are merged into common ancestors, each
    /// until the latest of what it covers: a write by someone else there
    /// meanwhile is taken for sync's (the final compare still sees it).
    pub fn insert(&mut self, path: &str, until: Instant) {
        self.until.insert(path.to_string(), until);
        if self.until.len() <= MAX_OWN {
            return;
        }
        let now = Instant::now();
        self.until.retain(|_, u| *u > now);
        // Half the bound left free, so that this sweep comes at most once
        // in MAX_OWN / 2 inserts.
        if self.until.len() <= MAX_OWN / 2 {
            return;
        }
        // The deepest cut that leaves few enough, in one sweep per depth
        // (no pairwise comparison: there are many).
        let depth = |p: &str| p.split('/').filter(|n| !n.is_empty()).count();
        let base = depth(&self.root);
        let deepest = self.until.keys().map(|p| depth(p)).max().unwrap_or(base);
        let mut keep = deepest;
        while keep > base {
            let cut: BTreeSet<&str> = self.until.keys().map(|p| cut_at(p, keep)).collect();
            if cut.len() <= OWN_MERGED {
                break;
            }
            keep -= 1;
        }
        let mut into: BTreeMap<String, Instant> = BTreeMap::new();
        for (p, u) in &self.until {
            let e = into.entry(cut_at(p, keep).to_string()).or_insert(*u);
            *e = (*e).max(*u);
        }
        self.until = into;
    }

    /// Whether a target event at `path` seen at `at` comes from sync's own
    /// writes: the path or an ancestor is being written, or was just now.
    pub fn contains(&self, path: &str, at: Instant) -> bool {
        let mut p = path;
        loop {
            if self.until.get(p).is_some_and(|until| *until > at) {
                return true;
            }
            match parent(p) {
                Some(up) if within(up, &self.root) => p = up,
                _ => return false,
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.until.len()
    }
}

/// `path` cut to its first `names` names.
fn cut_at(path: &str, names: usize) -> &str {
    if names == 0 {
        return "/";
    }
    let mut seen = 0;
    for (i, b) in path.bytes().enumerate().skip(1) {
        if b == b'/' {
            seen += 1;
            if seen == names {
                return &path[..i];
            }
        }
    }
    path
}

#[derive(Debug)]
struct Waiting {
    queue: VecDeque<Change>,
    bytes: usize,
    /// Per side: an overflow `Gap` is queued, and the side's changes are
    /// dropped until the loop reads it.
    overflowed: [bool; 2],
    /// Per side: the last `Live` or `Down` dropped meanwhile.
    status: [Option<Change>; 2],
    /// Watch tasks still sending.
    senders: usize,
}

#[derive(Debug)]
struct Shared {
    waiting: Mutex<Waiting>,
    arrived: Notify,
    own: Arc<Mutex<OwnWrites>>,
    root: String,
    excludes: Excludes,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent at every await-free step: a panic elsewhere
    // does not make it unusable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A watch task's end of the inbox.
#[derive(Debug)]
pub struct Sender {
    shared: Arc<Shared>,
}

/// The follow loop's end.
#[derive(Debug)]
pub struct Receiver {
    shared: Arc<Shared>,
}

/// An inbox for changes under `root` (less `excludes`), with the own-writes
/// map it filters the target's events by.
pub fn inbox(root: &str, excludes: Excludes, own: Arc<Mutex<OwnWrites>>) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        waiting: Mutex::new(Waiting {
            queue: VecDeque::new(),
            bytes: 0,
            overflowed: [false, false],
            status: [None, None],
            senders: 1,
        }),
        arrived: Notify::new(),
        own,
        root: root.to_string(),
        excludes,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

fn side_of(change: &Change) -> Side {
    match change {
        Change::Node { side, .. }
        | Change::Live { side }
        | Change::Down { side, .. }
        | Change::Gap { side, .. }
        | Change::Unsupported { side } => *side,
    }
}

/// What a change costs while it waits, besides its slot.
fn weight(change: &Change) -> usize {
    match change {
        Change::Node { path, .. } => path.len(),
        Change::Down { reason, .. } | Change::Gap { reason, .. } => reason.len(),
        Change::Live { .. } | Change::Unsupported { .. } => 0,
    }
}

impl Clone for Sender {
    fn clone(&self) -> Sender {
        lock(&self.shared.waiting).senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        lock(&self.shared.waiting).senders -= 1;
        self.shared.arrived.notify_one();
    }
}

impl Sender {
    pub fn send(&self, change: Change) {
        let shared = &*self.shared;
        if let Change::Node { side, path, at, .. } = &change {
            if !within(path, &shared.root) || shared.excludes.leaves_out(path, &shared.root) {
                return;
            }
            if *side == Side::Target && lock(&shared.own).contains(path, *at) {
                return;
            }
        }
        let side = side_of(&change);
        let mut w = lock(&shared.waiting);
        if w.overflowed[side as usize] {
            match change {
                Change::Node { .. } | Change::Gap { .. } => {}
                Change::Live { .. } | Change::Down { .. } => w.status[side as usize] = Some(change),
                // Once in a watch's life: always kept.
                Change::Unsupported { .. } => w.queue.push_back(change),
            }
            return;
        }
        let bytes = weight(&change);
        if w.queue.len() >= MAX_WAITING || w.bytes + bytes > MAX_WAITING_BYTES {
            w.overflowed[side as usize] = true;
            let reason = format!(
                "had more than {MAX_WAITING} changes (or {} MiB) waiting to be read",
                MAX_WAITING_BYTES / (1024 * 1024)
            );
            w.bytes += reason.len();
            w.queue.push_back(Change::Gap { side, reason });
            if let Change::Live { .. } | Change::Down { .. } = change {
                w.status[side as usize] = Some(change);
            }
        } else {
            w.bytes += bytes;
            w.queue.push_back(change);
        }
        drop(w);
        shared.arrived.notify_one();
    }
}

impl Receiver {
    /// The next change if one waits.
    pub fn try_recv(&mut self) -> Option<Change> {
        let mut w = lock(&self.shared.waiting);
        let change = w.queue.pop_front()?;
        w.bytes = w.bytes.saturating_sub(weight(&change));
        if let Change::Gap { side, .. } = &change {
            let s = *side as usize;
            if w.overflowed[s] {
                // What was dropped is covered by this gap from here on; the
                // side's status comes next, ahead of anything else.
                w.overflowed[s] = false;
                if let Some(status) = w.status[s].take() {
                    w.bytes += weight(&status);
                    w.queue.push_front(status);
                }
            }
        }
        Some(change)
    }

    /// The next change; `None` once no watch sends any more and none waits.
    pub async fn recv(&mut self) -> Option<Change> {
        let shared = self.shared.clone();
        loop {
            // Made before looking, so a change sent in between still wakes.
            let arrived = shared.arrived.notified();
            if let Some(change) = self.try_recv() {
                return Some(change);
            }
            if lock(&shared.waiting).senders == 0 {
                return None;
            }
            arrived.await;
        }
    }

    #[cfg(test)]
    fn waiting(&self) -> (usize, usize) {
        let w = lock(&self.shared.waiting);
        (w.queue.len(), w.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zookeeper_client as zk;

    fn node(side: Side, path: &str) -> Change {
        Change::Node {
            side,
            path: path.to_string(),
            event: zk::EventType::NodeDataChanged,
            at: Instant::now(),
        }
    }

    fn setup() -> (Sender, Receiver, Arc<Mutex<OwnWrites>>) {
        let own = Arc::new(Mutex::new(OwnWrites::new("/app")));
        let (tx, rx) = inbox("/app", Excludes::new::<&str>(&[]).unwrap(), own.clone());
        (tx, rx, own)
    }

    fn drain(rx: &mut Receiver) -> Vec<Change> {
        std::iter::from_fn(|| rx.try_recv()).collect()
    }

    #[test]
    fn changes_past_the_bound_become_one_gap_of_their_side() {
        let (tx, mut rx, _) = setup();
        for i in 0..MAX_WAITING + 500 {
            tx.send(node(Side::Source, &format!("/app/n{i}")));
        }
        assert_eq!(rx.waiting().0, MAX_WAITING + 1);
        let got = drain(&mut rx);
        assert_eq!(got.len(), MAX_WAITING + 1);
        assert!(got[..MAX_WAITING]
            .iter()
            .all(|c| matches!(c, Change::Node { .. })));
        assert!(matches!(
            got.last(),
            Some(Change::Gap {
                side: Side::Source,
                ..
            })
        ));
        assert_eq!(rx.waiting(), (0, 0));
        // Once the gap is read, changes are queued again (and a new
        // overflow gives a new gap).
        tx.send(node(Side::Source, "/app/after"));
        assert!(matches!(rx.try_recv(), Some(Change::Node { path, .. }) if path == "/app/after"));
    }

    #[test]
    fn long_paths_overflow_by_their_bytes_before_their_count() {
        let (tx, mut rx, _) = setup();
        let long = format!("/app/{}", "x".repeat(100_000));
        for _ in 0..100 {
            tx.send(node(Side::Source, &long));
        }
        let (n, bytes) = rx.waiting();
        assert!(n < 100, "{n} waiting");
        assert!(bytes <= MAX_WAITING_BYTES + 1024, "{bytes} bytes");
        assert!(matches!(
            drain(&mut rx).last(),
            Some(Change::Gap {
                side: Side::Source,
                ..
            })
        ));
    }

    #[test]
    fn an_overflowing_side_keeps_its_last_status_and_the_other_side_its_events() {
        let (tx, mut rx, _) = setup();
        for i in 0..MAX_WAITING {
            tx.send(node(Side::Source, &format!("/app/n{i}")));
        }
        tx.send(Change::Down {
            side: Side::Source,
            reason: "disconnected".into(),
        });
        tx.send(Change::Live { side: Side::Source });
        tx.send(node(Side::Source, "/app/lost"));
        // The target's side overflows on its own, with its own gap.
        tx.send(node(Side::Target, "/app/theirs"));
        let got = drain(&mut rx);
        let tail: Vec<String> = got[MAX_WAITING..]
            .iter()
            .map(|c| format!("{c:?}"))
            .collect();
        assert_eq!(tail.len(), 3, "{tail:?}");
        assert!(tail[0].starts_with("Gap { side: Source"), "{tail:?}");
        assert!(tail[1].starts_with("Live { side: Source"), "{tail:?}");
        assert!(tail[2].starts_with("Gap { side: Target"), "{tail:?}");
    }

    #[test]
    fn target_events_of_syncs_own_writes_are_not_queued_but_others_are() {
        let (tx, mut rx, own) = setup();
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        lock(&own).insert("/app/copying", far);
        for i in 0..MAX_WAITING * 2 {
            tx.send(node(Side::Target, &format!("/app/copying/n{i}")));
        }
        tx.send(node(Side::Target, "/app/elsewhere"));
        tx.send(node(Side::Source, "/app/copying/n1"));
        let got: Vec<String> = drain(&mut rx)
            .into_iter()
            .map(|c| match c {
                Change::Node { side, path, .. } => format!("{side:?} {path}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(got, ["Target /app/elsewhere", "Source /app/copying/n1"]);
    }

    #[test]
    fn excluded_paths_take_no_room() {
        let own = Arc::new(Mutex::new(OwnWrites::new("/app")));
        let excludes = Excludes::new(&["/app/queue/**".to_string()]).unwrap();
        let (tx, mut rx) = inbox("/app", excludes, own);
        for i in 0..MAX_WAITING * 2 {
            tx.send(node(Side::Source, &format!("/app/queue/n{i}")));
        }
        tx.send(node(Side::Source, "/other"));
        assert!(rx.try_recv().is_none());
    }

    #[test]
    fn own_writes_past_their_bound_merge_into_ancestors_that_still_cover_them() {
        let mut own = OwnWrites::new("/app");
        let until = Instant::now() + std::time::Duration::from_secs(60);
        for i in 0..MAX_OWN + 1 {
            own.insert(&format!("/app/d{}/n{i}", i % 3), until);
        }
        assert!(own.len() <= OWN_MERGED, "{}", own.len());
        let now = Instant::now();
        assert!(own.contains("/app/d0/n0", now));
        assert!(own.contains(&format!("/app/d2/n{MAX_OWN}"), now));
    }

    #[test]
    fn a_path_is_cut_at_whole_names() {
        assert_eq!(cut_at("/a/b/c", 0), "/");
        assert_eq!(cut_at("/a/b/c", 1), "/a");
        assert_eq!(cut_at("/a/b/c", 2), "/a/b");
        assert_eq!(cut_at("/a/b/c", 3), "/a/b/c");
        assert_eq!(cut_at("/a/b/c", 9), "/a/b/c");
    }

    #[tokio::test]
    async fn recv_ends_once_every_watch_is_gone_and_nothing_waits() {
        let (tx, mut rx, _) = setup();
        let second = tx.clone();
        tx.send(Change::Live { side: Side::Source });
        drop(tx);
        drop(second);
        assert!(matches!(rx.recv().await, Some(Change::Live { .. })));
        assert!(rx.recv().await.is_none());
    }
}
