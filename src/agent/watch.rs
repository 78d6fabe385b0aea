//! Persistent recursive watches on both sides of a pair, so that a round need
//! not walk a tree that did not change, and a change is re-checked soon after
//! it happens rather than at the next round.
//!
//! Per side, one [`crate::follow`] loop holds a `PersistentRecursive` watch on
//! the pair's path. Its events are drained into a bounded set of changed paths
//! ([`Watches`]); the rounds ([`super::round`]) ask it for a [`Plan`]: walk
//! everything, re-check the changed paths, or nothing at all.
//!
//! What a watch cannot see, and how it is covered:
//!
//! - Events while disconnected are lost (ZOOKEEPER-4698). After a gap the next
//!   round walks in full, and the whole subtree is also re-checked early, as
//!   soon as the session is back.
//! - A watch added again after a reconnect, or on a new session after one
//!   expired or closed, is followed by a full walk.
//! - ACL changes fire no event at all: every `full_walk_every` rounds walk in
//!   full regardless.
//! - Servers before 3.6 have no persistent watches: every round walks, as
//!   without watches.
//!
//! Nothing here writes: adding a watch is a read-side request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use crate::connect::EnsembleSpec;
use crate::exclude::Excludes;
use crate::follow::{self, Backoff, Registered};
pub(crate) use crate::tree::path::{coarsen, covering};
use crate::tree::path::{name_of, parent, within};
use crate::tree::sequence::looks_sequential;

/// Changed paths remembered between rounds; past this the next round walks
/// everything instead (a bulk load is cheaper to walk than to re-check path
/// by path, and memory stays bounded).
pub(crate) const MAX_CHANGED_PATHS: usize = 10_000;

/// Back-off between attempts to (re)build a watch session.
const RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));

const SIDES: [&str; 2] = ["source", "target"];

/// Where one side's watch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SideWatch {
    /// No session yet.
    Starting,
    /// Registered and connected: events are arriving.
    Live,
    /// Connected before, disconnected now; events are being lost.
    Disconnected,
    /// The session is gone (expired, closed, or cannot be built); retrying.
    Down,
    /// The servers do not have persistent watches (before 3.6).
    Unsupported,
}

impl SideWatch {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SideWatch::Starting => "starting",
            SideWatch::Live => "live",
            SideWatch::Disconnected => "disconnected",
            SideWatch::Down => "down",
            SideWatch::Unsupported => "unsupported",
        }
    }
}

/// What a round should do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Walk the whole subtree, for the reason given.
    Full(String),
    /// Re-check these changed paths (nothing else changed, as far as the
    /// watches can tell).
    Targeted(Vec<String>),
    /// Nothing changed since the last round: no need to read anything.
    Clean,
}

/// An early re-check due now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Early {
    /// The whole subtree, after a watch gap.
    Full,
    Paths(Vec<String>),
}

#[derive(Debug)]
struct Inner {
    sides: [SideWatch; 2],
    /// Paths changed since the last round began: that round re-checks them
    /// all, including those re-checked early, since an early re-check may have
    /// read a server that had not yet applied the change.
    round: HashSet<String>,
    /// Of those, the ones not yet re-checked early, with their latest event:
    /// a path is re-checked once it has been quiet for the settle delay.
    early: HashMap<String, Instant>,
    /// The next round must walk everything, and why.
    full: Option<String>,
    /// A full re-check is due early (after a gap), from this instant.
    early_full: Option<Instant>,
    /// Some full walk began with both watches live: a gap after that warrants
    /// an early full re-check.
    baseline: bool,
    events: u64,
}

/// The changed paths of one pair, fed by both sides' watch tasks.
#[derive(Debug)]
pub(crate) struct Watches {
    inner: Mutex<Inner>,
    notify: Notify,
    root: String,
    excludes: Excludes,
}

impl Watches {
    pub(crate) fn new(root: &str, excludes: Excludes) -> Watches {
        Watches {
            inner: Mutex::new(Inner {
                sides: [SideWatch::Starting; 2],
                round: HashSet::new(),
                early: HashMap::new(),
                full: Some("first round".into()),
                early_full: None,
                baseline: false,
                events: 0,
            }),
            notify: Notify::new(),
            root: root.to_string(),
            excludes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain data: still consistent after a panic elsewhere.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves when something changed (an event, a side's state).
    pub(crate) async fn changed(&self) {
        self.notify.notified().await
    }

    /// Waits (at most `limit`) until both sides have tried their first
    /// session, so that the first walk can be the one later rounds build on.
    pub(crate) async fn started(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.sides().contains(&SideWatch::Starting) {
            tokio::select! {
                _ = self.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    pub(crate) fn sides(&self) -> [SideWatch; 2] {
        self.lock().sides
    }

    /// Whether `path` is left out of the comparison (itself or an ancestor
    /// matches an exclude), so its events are of no interest.
    fn excluded(&self, path: &str) -> bool {
        self.excludes.leaves_out(path, &self.root)
    }

    /// Takes in a node event.
    pub(crate) fn record(&self, path: &str, event: zk::EventType) {
        if !within(path, &self.root) || self.excluded(path) {
            return;
        }
        let now = Instant::now();
        let mut paths = vec![path];
        // A created or deleted child moves its parent's child counter, which
        // matters (sequence_counter) when the names are sequential; the
        // parent's own event does not fire for it.
        if matches!(
            event,
            zk::EventType::NodeCreated | zk::EventType::NodeDeleted
        ) && looks_sequential(name_of(path))
        {
            if let Some(up) = parent(path).filter(|up| within(up, &self.root)) {
                paths.push(up);
            }
        }
        let mut inner = self.lock();
        inner.events += 1;
        for p in paths {
            inner.round.insert(p.to_string());
            inner.early.insert(p.to_string(), now);
        }
        if inner.round.len() > MAX_CHANGED_PATHS {
            inner.round.clear();
            inner.early.clear();
            inner.full = Some(format!(
                "more than {MAX_CHANGED_PATHS} paths changed since the last round"
            ));
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// A side's watch is registered (for the first time or again).
    fn live(&self, side: usize) {
        let mut inner = self.lock();
        let was = inner.sides[side];
        inner.sides[side] = SideWatch::Live;
        if was != SideWatch::Starting || inner.baseline {
            inner
                .full
                .get_or_insert_with(|| format!("the {} watch was re-established", SIDES[side]));
            if inner.baseline {
                inner.early_full = Some(Instant::now());
            }
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// A side lost its connection or its session: events are being lost.
    fn gap(&self, side: usize, state: SideWatch, why: &str) {
        let mut inner = self.lock();
        inner.sides[side] = state;
        inner.full = Some(format!("the {} watch {why}", SIDES[side]));
        drop(inner);
        self.notify.notify_one();
    }

    fn unsupported(&self, side: usize) {
        self.lock().sides[side] = SideWatch::Unsupported;
        self.notify.notify_one();
    }

    /// The next round must walk everything.
    pub(crate) fn require_full(&self, reason: &str) {
        self.lock().full.get_or_insert_with(|| reason.to_string());
    }

    /// What the round starting now should do. `walk_due` says the periodic
    /// full walk is due (ACL changes fire no event). Takes the changed paths:
    /// the round is responsible for them from here on.
    pub(crate) fn plan(&self, walk_due: Option<String>) -> Plan {
        let mut inner = self.lock();
        let paths: Vec<String> = inner.round.drain().collect();
        inner.early.clear();
        inner.early_full = None;
        let not_live = inner
            .sides
            .iter()
            .enumerate()
            .find(|(_, s)| **s != SideWatch::Live)
            .map(|(i, s)| format!("the {} watch is {}", SIDES[i], s.as_str()));
        if let Some(reason) = not_live {
            // Stays due until a walk starts with both watches live: only then
            // does an unchanged tree mean what it says.
            let reason = inner.full.take().unwrap_or(reason);
            inner.full = Some(reason.clone());
            return Plan::Full(reason);
        }
        if let Some(reason) = inner.full.take() {
            inner.baseline = true;
            return Plan::Full(reason);
        }
        if let Some(reason) = walk_due {
            return Plan::Full(reason);
        }
        if paths.is_empty() {
            Plan::Clean
        } else {
            let mut paths = paths;
            paths.sort();
            Plan::Targeted(paths)
        }
    }

    /// When the next early re-check is due, if any.
    pub(crate) fn next_early(&self, settle: Duration) -> Option<Instant> {
        let inner = self.lock();
        let paths = inner.early.values().min().map(|t| *t + settle);
        // Not before both watches are back: it would be due, yet not taken.
        let live = inner.sides.iter().all(|s| *s == SideWatch::Live);
        let full = inner.early_full.filter(|_| live).map(|t| t + settle);
        match (paths, full) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The early re-check due now: paths quiet for `settle` (or, after a
    /// gap, the whole subtree once both watches are live again).
    pub(crate) fn take_early(&self, settle: Duration) -> Option<Early> {
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(t) = inner.early_full {
            if t + settle <= now && inner.sides.iter().all(|s| *s == SideWatch::Live) {
                inner.early_full = None;
                inner.early.clear();
                return Some(Early::Full);
            }
        }
        // Paths still changing wait for the next quiet moment (or the
        // round): a sync tool copying them is not done yet.
        let due: Vec<String> = inner
            .early
            .iter()
            .filter(|(_, t)| **t + settle <= now)
            .map(|(p, _)| p.clone())
            .collect();
        if due.is_empty() {
            return None;
        }
        for p in &due {
            inner.early.remove(p);
        }
        let mut due = due;
        due.sort();
        Some(Early::Paths(due))
    }
}

// ---------------------------------------------------------------------------
// The watch sessions.

/// Starts both sides' watch tasks; they run until `stop`.
pub(crate) fn start(
    pair: &str,
    specs: [&EnsembleSpec; 2],
    root: &str,
    excludes: Excludes,
    stop: watch::Receiver<bool>,
) -> (Arc<Watches>, [JoinHandle<()>; 2]) {
    let watches = Arc::new(Watches::new(root, excludes));
    let task = |side: usize| {
        tokio::spawn(run_side(
            watches.clone(),
            side,
            specs[side].clone(),
            pair.to_string(),
            stop.clone(),
        ))
    };
    let handles = [task(0), task(1)];
    (watches, handles)
}

/// Follows one side of a pair for its [`Watches`]; runs until `stop`.
async fn run_side(
    watches: Arc<Watches>,
    side: usize,
    spec: EnsembleSpec,
    pair: String,
    stop: watch::Receiver<bool>,
) {
    let root = watches.root.clone();
    let mut sink = SideSink {
        watches,
        side,
        pair,
        down_logged: false,
    };
    follow::follow(&spec, &root, RETRY, &mut sink, stop).await
}

/// One side's watch, as what changed for the rounds.
struct SideSink {
    watches: Arc<Watches>,
    side: usize,
    pair: String,
    /// The current outage was logged at warn: the rest of it goes to debug.
    down_logged: bool,
}

impl follow::Sink for SideSink {
    fn live(&mut self, how: Registered) {
        self.watches.live(self.side);
        let (pair, side) = (self.pair.as_str(), SIDES[self.side]);
        if how == Registered::Reconnected {
            debug!(pair, side, "watch session reconnected; watch added again");
        } else {
            debug!(pair, side, path = self.watches.root.as_str(), "watching");
        }
    }

    fn event(&mut self, path: &str, event: zk::EventType) {
        self.watches.record(path, event);
    }

    fn disconnected(&mut self) {
        let (pair, side) = (self.pair.as_str(), SIDES[self.side]);
        self.watches
            .gap(self.side, SideWatch::Disconnected, "was disconnected");
        debug!(pair, side, "watch session disconnected");
    }

    fn lost(&mut self, reason: String, was_live: bool) {
        let (pair, side) = (&self.pair, SIDES[self.side]);
        self.watches
            .gap(self.side, SideWatch::Down, "session is down");
        if was_live {
            self.down_logged = false;
        }
        // Once per outage at warn: the rounds report the ensemble.
        if self.down_logged {
            debug!(pair = %pair, side, reason = %reason, "watch session still down");
        } else {
            warn!(pair = %pair, side, reason = %reason, "watch session lost; rounds walk in full until it is back");
            self.down_logged = true;
        }
    }

    fn unsupported(&mut self) {
        self.watches.unsupported(self.side);
        info!(
            pair = %self.pair,
            side = SIDES[self.side],
            "persistent watches unsupported (server before 3.6): every round walks in full"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|p| p.to_string()).collect()
    }

    fn watches(root: &str) -> Watches {
        Watches::new(root, Excludes::new(&["/zookeeper", "/r/skip/**"]).unwrap())
    }

    fn live(w: &Watches) {
        w.live(0);
        w.live(1);
    }

    #[test]
    fn the_first_round_walks_then_an_unchanged_tree_is_clean() {
        let w = watches("/r");
        assert!(matches!(w.plan(None), Plan::Full(_)), "no watch yet");
        live(&w);
        assert_eq!(w.plan(None), Plan::Full("first round".into()));
        assert_eq!(w.plan(None), Plan::Clean);
        assert_eq!(
            w.plan(Some("every 3 rounds".into())),
            Plan::Full("every 3 rounds".into())
        );
    }

    #[test]
    fn changed_paths_make_a_targeted_round_excluded_ones_do_not() {
        let w = watches("/r");
        live(&w);
        w.plan(None);
        w.record("/r/a", zk::EventType::NodeDataChanged);
        w.record("/r/skip/x", zk::EventType::NodeDataChanged);
        w.record("/other", zk::EventType::NodeDataChanged);
        w.record("/r/q/lock-0000000007", zk::EventType::NodeCreated);
        assert_eq!(
            w.plan(None),
            Plan::Targeted(s(&["/r/a", "/r/q", "/r/q/lock-0000000007"]))
        );
        assert_eq!(w.plan(None), Plan::Clean);
    }

    #[test]
    fn a_gap_forces_a_full_walk_until_one_starts_with_both_watches_live() {
        let w = watches("/r");
        live(&w);
        w.plan(None);
        w.gap(1, SideWatch::Disconnected, "was disconnected");
        assert!(matches!(w.plan(None), Plan::Full(r) if r.contains("target")));
        // Still disconnected: still full.
        assert!(matches!(w.plan(None), Plan::Full(_)));
        w.live(1);
        assert!(matches!(w.plan(None), Plan::Full(_)));
        assert_eq!(w.plan(None), Plan::Clean);
    }

    #[test]
    fn after_a_gap_the_whole_subtree_is_rechecked_early_once_live() {
        let w = watches("/r");
        live(&w);
        w.plan(None);
        w.gap(0, SideWatch::Disconnected, "was disconnected");
        assert_eq!(w.take_early(Duration::ZERO), None);
        assert_eq!(w.next_early(Duration::ZERO), None, "not due while away");
        w.live(0);
        assert!(w.next_early(Duration::ZERO).is_some());
        assert_eq!(w.take_early(Duration::ZERO), Some(Early::Full));
        assert_eq!(w.take_early(Duration::ZERO), None);
    }

    #[test]
    fn early_rechecks_wait_for_paths_to_settle_and_the_round_still_covers_them() {
        let w = watches("/r");
        live(&w);
        w.plan(None);
        w.record("/r/a", zk::EventType::NodeDataChanged);
        assert_eq!(w.take_early(Duration::from_secs(3600)), None);
        assert!(w.next_early(Duration::from_secs(1)).is_some());
        assert_eq!(
            w.take_early(Duration::ZERO),
            Some(Early::Paths(s(&["/r/a"])))
        );
        assert_eq!(w.next_early(Duration::ZERO), None);
        assert_eq!(w.plan(None), Plan::Targeted(s(&["/r/a"])));
    }

    #[tokio::test(start_paused = true)]
    async fn a_path_that_keeps_changing_does_not_hold_back_a_quiet_one() {
        let w = watches("/r");
        live(&w);
        w.plan(None);
        let settle = Duration::from_secs(2);
        w.record("/r/quiet", zk::EventType::NodeDataChanged);
        for _ in 0..5 {
            w.record("/r/busy", zk::EventType::NodeDataChanged);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(w.take_early(settle), Some(Early::Paths(s(&["/r/quiet"]))));
        assert!(w.next_early(settle).is_some_and(|t| t > Instant::now()));
        assert_eq!(w.take_early(settle), None);
    }

    #[test]
    fn too_many_changed_paths_turn_into_a_full_walk() {
        let w = watches("/r");
        live(&w);
        w.plan(None);
        for i in 0..=MAX_CHANGED_PATHS {
            w.record(&format!("/r/n{i}"), zk::EventType::NodeCreated);
        }
        assert!(matches!(w.plan(None), Plan::Full(r) if r.contains("more than")));
        assert_eq!(w.take_early(Duration::ZERO), None);
    }
}
