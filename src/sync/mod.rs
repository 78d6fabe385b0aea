//! `zkparity sync`: a full copy of the source into the target (exactly as
//! `repair --apply`), then following the source until cutover, then a final
//! compare that must find the two identical.
//!
//! Following: a persistent recursive watch on the source names the paths
//! that change ([`watch`]). Once a path has been quiet for the settle delay
//! (or has waited too long under constant churn), the smallest subtree that
//! holds the change is copied. New data alone is copied node by node
//! ([`data`]): both sides read with multi-reads, then conditional
//! multi-writes (a node the target moved in between is a suspect, see
//! below). While a pass runs the watches' changes are still taken in, so
//! that a fast writer's events neither overflow the inbox behind it (a gap,
//! and a full pass) nor wait for the pass to be seen. A created or deleted node changes its
//! parent's children and child counter: the parent's subtree gets a
//! `repair --apply --delete-extra`, so what is copied is what repair copies:
//! data, ACLs, node kinds, sequence counters topped up, never an ephemeral,
//! never a write to the source.
//! ACL changes fire no watch, and servers before 3.6 have no persistent
//! watches: a full pass every `verify_every` (or `poll_every`) covers them.
//!
//! Someone else writing the target: a second watch, on the target, sees
//! events that sync's own passes did not cause. Such a subtree is reported
//! as a conflict and no longer followed (its nodes are left as they are),
//! unless `force`, which copies the source over it again.
//!
//! Memory is bounded by constants here, not by the tree or the write rate:
//! changes wait in a bounded [`inbox`] (a gap past it), pending paths, the
//! source's deletions and the suspects are capped, and new data is copied
//! batch by batch.

mod data;
pub mod inbox;
pub mod outputs;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::compare::{compare_sides, CompareOptions};
use crate::connect::EnsembleSpec;
use crate::error::{Error, Result, StopSignal};
use crate::exclude::Excludes;
use crate::follow::Backoff;
use crate::progress::Progress;
use crate::repair::report::RepairReport;
use crate::repair::RepairOptions;
use crate::report::CompareReport;
use crate::source::SideSpec;
use crate::tree::path::{coarsen, covering, parent, within};
use inbox::OwnWrites;
use watch::{Change, Side};

/// Paths a pass took out of pending → (first seen, last seen, new data
/// alone).
type Taken = BTreeMap<String, (Instant, Instant, bool)>;

/// Waits between passes that cannot reach an ensemble: 1 s, doubled up
/// to 16 s.
const PASS_RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(16));
/// Changed paths remembered at most; past this a full pass copies them.
const MAX_PENDING: usize = 50_000;
/// At most this many subtrees per pass; more are cut to common ancestors.
const MAX_PASS_SUBTREES: usize = 16;
/// Target events inside a subtree sync just wrote are its own for this long
/// after the pass ends (events arrive after the writes are acknowledged).
/// A later event whose node matches the source is not a conflict either.
const OWN_WRITES_GRACE: Duration = Duration::from_secs(1);
/// Target nodes written by others waiting to be judged at most; past this
/// they are counted and left to the final compare (said on the watch line).
const MAX_SUSPECTS: usize = 10_000;
/// Suspects looked at on both sides at once.
const SUSPECTS_IN_FLIGHT: usize = 32;
/// Subtrees in conflict at most (each one an exclude every walk matches):
/// this many means the target is someone else's, and sync cuts over, so
/// the final compare reports them all.
const MAX_CONFLICTS: usize = 1_000;

/// How `sync` follows, besides the sides, the path and the writes.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// The writes (batch size, rate, in flight); `apply` false makes the
    /// whole sync a dry run of its initial pass.
    pub repair: RepairOptions,
    /// A changed path is copied once it has been quiet this long.
    pub settle: Duration,
    /// ...or once it has waited this long, however busy it is.
    pub max_wait: Duration,
    /// A full pass this often (ACL changes fire no watch).
    pub verify_every: Duration,
    /// With servers that cannot watch (before 3.6): a full pass this often.
    pub poll_every: Duration,
    /// Cut over by itself once the source has been quiet this long.
    pub until_quiet: Option<Duration>,
    /// Copy over subtrees someone else changed on the target.
    pub force: bool,
    /// Where sync keeps what it stands at now, for outputs that publish on
    /// their own timer.
    pub live: Arc<Live>,
    /// Where the source's ephemerals, as last seen with the applications
    /// connected, are kept for `zkparity check ephemerals --expect`.
    pub expect_out: Option<PathBuf>,
}

/// The registrations to come back after cutover: a snapshot of the source
/// taken while it last held ephemerals.
#[derive(Clone, Debug, Serialize)]
pub struct Expected {
    pub file: PathBuf,
    pub ephemerals: u64,
    /// When the snapshot was taken (its header's `created_unix`).
    pub created_unix: u64,
}

/// The default expectation file in `dir`: named for the source's first
/// server and the time, as backups are, so runs never replace each other.
pub fn expect_file_in(dir: &Path, source: &SideSpec) -> PathBuf {
    crate::repair::backup::named_for(dir, "expect", source, "source")
}

/// Takes a snapshot of the source subtree and keeps it as the expectation
/// if it holds ephemerals; one without (the writers gone) leaves the last
/// one that had them in place.
async fn refresh_expectation(
    source: &SideSpec,
    options: &CompareOptions,
    out: &Path,
) -> Result<Option<Expected>> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "zkparity-expect.zkps".into());
    let next = out.with_file_name(format!(".{name}.next"));
    let mut walk = options.walk.clone();
    walk.ephemerals = crate::tree::EphemeralPolicy::Count;
    let snapshot = crate::capture::SnapshotOptions {
        path: options.path.clone(),
        walk,
        reader: options.reader.clone(),
        out: next.clone(),
        compress: false,
        force: true,
        // What a side cannot read is no registration anyway.
        allow_incomplete: true,
    };
    let created_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let taken = crate::capture::take_snapshot(source, &snapshot, &mut Progress::new(false)).await?;
    let io = |e: std::io::Error| Error::Io {
        context: format!("keeping the expectation {}", out.display()),
        source: e,
    };
    if taken.ephemerals == 0 {
        std::fs::remove_file(&next).map_err(io)?;
        return Ok(None);
    }
    std::fs::rename(&next, out).map_err(io)?;
    Ok(Some(Expected {
        file: out.to_path_buf(),
        ephemerals: taken.ephemerals,
        created_unix,
    }))
}

/// What a sync stands at this moment: kept by the follower as changes
/// arrive and passes end, read by the outputs every second, so that the
/// lag keeps counting while a pass hangs or fails (a stopped target), not
/// only when one completes.
#[derive(Debug, Default)]
pub struct Live(Mutex<LiveState>);

#[derive(Clone, Debug, Default)]
pub struct LiveState {
    /// When the oldest change not yet copied was seen (or events began to
    /// be lost, for a watch gap not yet covered by a full pass).
    pub oldest: Option<std::time::Instant>,
    pub pending: u64,
    /// Why the source, then the target, cannot be reached, while it cannot.
    pub unreachable: [Option<String>; 2],
}

impl LiveState {
    /// The age of the oldest change not yet copied, now.
    pub fn lag_seconds(&self) -> f64 {
        self.oldest.map_or(0.0, |at| at.elapsed().as_secs_f64())
    }
}

impl Live {
    pub fn now(&self) -> LiveState {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, state: LiveState) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

/// What `sync` reports while following, and at the end.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SyncEvent {
    /// The initial full copy is done.
    Copied {
        actions: u64,
        applied: u64,
        elapsed_seconds: f64,
    },
    /// A pass copied changes.
    Followed {
        subtrees: Vec<String>,
        /// Changed paths this pass covered.
        changes: u64,
        /// Writes it sent.
        applied: u64,
        /// Changes still waiting.
        pending: u64,
        /// How far behind the source the target is: the age of the oldest
        /// change not yet copied when this pass began.
        lag_seconds: f64,
        elapsed_seconds: f64,
        full: bool,
    },
    /// Someone else wrote the target under `path`.
    Conflict {
        path: String,
        /// `stopped_following`, or `copying_over` with --force.
        action: &'static str,
    },
    /// A watch fell back or came back.
    Watch { side: &'static str, state: String },
    /// A pass could not reach an ensemble; its changes stay pending.
    Retry {
        reason: String,
        retry_in_seconds: f64,
        pending: u64,
    },
    /// Cutover: why following stopped.
    Cutover { reason: String },
}

/// What listens to a sync: progress lines, JSON lines, a log.
pub trait SyncObserver {
    fn event(&mut self, event: &SyncEvent);
}

/// The end of a sync.
pub struct SyncOutcome {
    /// The initial pass, as repair reports it (the dry run's plan without
    /// --apply).
    pub initial: RepairReport,
    /// The final compare; `None` for a dry run.
    pub verification: Option<CompareReport>,
    pub passes: u64,
    pub changes_followed: u64,
    pub conflicts: Vec<String>,
    pub followed_seconds: f64,
    /// The source's ephemerals as last seen, if it ever held any.
    pub expected: Option<Expected>,
}

impl SyncOutcome {
    /// 0 when the target was proved identical at cutover (or a dry run
    /// found nothing to do), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match &self.verification {
            Some(report) => report.exit_code(),
            None => self.initial.exit_code(),
        }
    }
}

/// One side's live connection, as `sync` needs it.
fn live(side: &SideSpec) -> Result<&EnsembleSpec> {
    side.live().ok_or_else(|| {
        Error::Usage(
            "sync follows live ensembles: --source and --target must be connect strings".into(),
        )
    })
}

/// What a stop during the initial copy left, for its message.
fn stopped_copy(signal: StopSignal, sync: &SyncOptions) -> Error {
    let backup = sync
        .repair
        .first_write
        .as_ref()
        .and_then(|f| f.backup.as_ref())
        .map(|file| {
            format!(
                "; the target as it was before the first write is in {} (if writing had begun)",
                file.display()
            )
        })
        .unwrap_or_default();
    Error::Stopped {
        signal,
        after: format!(
            "the initial copy stopped, pending writes abandoned; what it wrote stays{backup}; run sync again to copy the rest"
        ),
    }
}

fn own_writes(own: &Mutex<OwnWrites>) -> std::sync::MutexGuard<'_, OwnWrites> {
    // Every change to it is one await-free call: a panic elsewhere leaves
    // it whole.
    own.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolves with the signal once one has come (never if the sender goes).
async fn signalled(stop: &mut tokio::sync::watch::Receiver<Option<StopSignal>>) -> StopSignal {
    loop {
        if let Some(signal) = *stop.borrow_and_update() {
            return signal;
        }
        if stop.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Runs a sync until `stop` (SIGINT, SIGTERM) or `until_quiet`. A signal
/// during the initial copy abandons it (`Error::Stopped`); once following,
/// it starts the cutover.
pub async fn run(
    (source, target): (SideSpec, SideSpec),
    options: CompareOptions,
    sync: &SyncOptions,
    progress: &mut Progress,
    observer: &mut dyn SyncObserver,
    mut stop: tokio::sync::watch::Receiver<Option<StopSignal>>,
) -> Result<SyncOutcome> {
    let (_, target_spec) = (live(&source)?, live(&target)?.clone());
    let root = options.path.clone();
    let mut initial_args = sync.repair.clone();
    initial_args.verify = false;
    if !sync.repair.apply {
        let initial = tokio::select! {
            r = crate::repair::run((source, target), options, &initial_args, progress) => r?,
            signal = signalled(&mut stop) => return Err(Error::Stopped {
                signal,
                after: "nothing written (a dry run)".into(),
            }),
        };
        return Ok(SyncOutcome {
            initial,
            verification: None,
            passes: 0,
            changes_followed: 0,
            conflicts: Vec::new(),
            followed_seconds: 0.0,
            expected: None,
        });
    }

    // One writer per target subtree for the whole run: the initial copy
    // does not take its own. Overlapping paths of one ensemble are refused
    // before the lock is written.
    crate::compare::one_ensemble_at(&source, &target, &root, true).await?;
    if let Some(first) = &mut initial_args.first_write {
        first.lock = false;
    }
    let lock = tokio::select! {
        l = crate::repair::lock::take(&target_spec, &root, "sync") => l?,
        signal = signalled(&mut stop) => return Err(stopped_copy(signal, sync)),
    };
    let result = follow(
        (source, target),
        options,
        sync,
        &initial_args,
        progress,
        observer,
        stop,
    )
    .await;
    lock.release().await;
    result
}

/// [`run`] with `--apply`, under the writer lock.
async fn follow(
    (source, target): (SideSpec, SideSpec),
    options: CompareOptions,
    sync: &SyncOptions,
    initial_args: &RepairOptions,
    progress: &mut Progress,
    observer: &mut dyn SyncObserver,
    mut stop: tokio::sync::watch::Receiver<Option<StopSignal>>,
) -> Result<SyncOutcome> {
    let (source_spec, target_spec) = (live(&source)?.clone(), live(&target)?.clone());
    let root = options.path.clone();
    let started = std::time::Instant::now();
    // The watches start before the copy, so that nothing changing while it
    // runs goes unseen: the source's events are copied after it, and the
    // target's, until it ends, are the copy's own writes: dropped as they
    // arrive, so the copy's many writes take no memory.
    let own = Arc::new(Mutex::new(OwnWrites::new(&root)));
    let far = Instant::now() + Duration::from_secs(3600 * 24 * 365);
    own_writes(&own).insert(&root, far);
    let excludes = options.walk.excludes.clone();
    let mut watching = Watching::start(&root, excludes, own.clone(), [&source_spec, &target_spec]);
    let deadline = Instant::now() + source_spec.connect_timeout.max(target_spec.connect_timeout);
    let (early, watched) = watching.first_changes(deadline).await;

    let copied = tokio::select! {
        r = crate::repair::run(
            (source.clone(), target.clone()),
            options.clone(),
            initial_args,
            progress,
        ) => r,
        signal = signalled(&mut stop) => Err(stopped_copy(signal, sync)),
    };
    let initial = match copied {
        Ok(r) => r,
        Err(e) => {
            let _ = watching.stop.send(true);
            return Err(e);
        }
    };
    let applied = |r: &RepairReport| r.apply.as_ref().map_or(0, |a| a.counts.applied);
    observer.event(&SyncEvent::Copied {
        actions: initial.plan.total_actions,
        applied: applied(&initial),
        elapsed_seconds: started.elapsed().as_secs_f64(),
    });

    let excludes = options.walk.excludes.clone();
    let mut follower = Follower::new(&root, excludes, own, sync.live.clone());
    // The copy's own writes: target events until a little after it.
    own_writes(&follower.own).insert(&root, Instant::now() + OWN_WRITES_GRACE);
    for change in early {
        follower.take(change, observer);
    }
    if !watched[Side::Source as usize] && follower.full_due.is_none() {
        // The source's watch was not in place while the copy ran: what
        // changed meanwhile is known only by walking.
        follower.full_due = Some("the source's watch started after the copy".into());
    }
    // The applications are connected now: their registrations are what
    // must come back after cutover. Refreshed after each periodic full
    // pass, so that it is at most --verify-every old when the writers stop.
    let mut expectation = Expectation {
        out: sync.expect_out.as_deref(),
        expected: None,
    };
    expectation.refresh(&source, &options).await;
    let following = Instant::now();
    let ctx = Context {
        source: &source,
        target: &target,
        source_spec: &source_spec,
        target_spec: &target_spec,
        options: &options,
        sync,
    };
    let result = follower
        .until_cutover(
            &ctx,
            &mut watching.rx,
            &mut expectation,
            observer,
            progress,
            &mut stop,
        )
        .await;
    watching.stop().await;
    result?;
    let followed_seconds = following.elapsed().as_secs_f64();

    // Over everything, conflicts included: a subtree someone else changed
    // is not identical, and the report shows how.
    let verification = compare_sides(&source, &target, &options, progress).await?;
    Ok(SyncOutcome {
        initial,
        verification: Some(verification),
        passes: follower.passes,
        changes_followed: follower.changes,
        conflicts: follower.conflicts.into_iter().collect(),
        followed_seconds,
        expected: expectation.expected,
    })
}

/// What following reads and never changes: the sides and how to follow.
struct Context<'a> {
    source: &'a SideSpec,
    target: &'a SideSpec,
    source_spec: &'a EnsembleSpec,
    target_spec: &'a EnsembleSpec,
    options: &'a CompareOptions,
    sync: &'a SyncOptions,
}

/// Both sides' watch tasks, and the inbox they fill.
struct Watching {
    rx: inbox::Receiver,
    stop: tokio::sync::watch::Sender<bool>,
    handles: [JoinHandle<()>; 2],
}

impl Watching {
    /// Starts the source's and the target's watches on `root`.
    fn start(
        root: &str,
        excludes: Excludes,
        own: Arc<Mutex<OwnWrites>>,
        [source, target]: [&EnsembleSpec; 2],
    ) -> Watching {
        let (tx, rx) = inbox::inbox(root, excludes, own);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let spawn = |side, spec: &EnsembleSpec| {
            let (spec, root) = (spec.clone(), root.to_string());
            tokio::spawn(watch::run(side, spec, root, tx.clone(), stopped.clone()))
        };
        let handles = [spawn(Side::Source, source), spawn(Side::Target, target)];
        Watching { rx, stop, handles }
    }

    /// Waits, until `deadline` at most, for both watches to be in place
    /// (or known not to be possible). Returns the changes seen meanwhile
    /// that still matter once the copy is done, and which sides were in
    /// place.
    async fn first_changes(&mut self, deadline: Instant) -> (Vec<Change>, [bool; 2]) {
        let mut early = Vec::new();
        let mut live = [false, false];
        while live != [true, true] {
            tokio::select! {
                change = self.rx.recv() => match change {
                    Some(Change::Live { side }) => live[side as usize] = true,
                    Some(change @ Change::Unsupported { side }) => {
                        live[side as usize] = true;
                        early.push(change);
                    }
                    // The copy reads the source after this: it copies what
                    // changed before it anyway, so these take no memory.
                    Some(Change::Node { .. }) => {}
                    // A side that cannot be reached: waiting for its watch
                    // until the connect timeout would only delay the copy's
                    // own connect, which says so at once, as compare does.
                    Some(change @ Change::Down { .. }) => {
                        early.push(change);
                        break;
                    }
                    Some(change) => early.push(change),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        (early, live)
    }

    /// Ends both watches and waits until they have.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }
}

/// Where the source's ephemerals, as last seen with the applications
/// connected, are kept for `check ephemerals --expect`.
struct Expectation<'a> {
    out: Option<&'a Path>,
    expected: Option<Expected>,
}

impl Expectation<'_> {
    /// Takes the source's ephemerals again, if they are to be kept; a
    /// failure keeps the last ones seen.
    async fn refresh(&mut self, source: &SideSpec, options: &CompareOptions) {
        let Some(out) = self.out else {
            return;
        };
        match refresh_expectation(source, options, out).await {
            Ok(Some(e)) => self.expected = Some(e),
            Ok(None) => {}
            Err(e) => eprintln!(
                "zkparity sync: the source's ephemerals could not be kept for check ephemerals ({e}); keeping the last ones seen"
            ),
        }
    }
}

struct Follower {
    root: String,
    /// The walk's excludes, plus every subtree in conflict.
    excludes: Excludes,
    /// Subtree to copy → (first seen, last seen).
    pending: BTreeMap<String, (Instant, Instant)>,
    /// Subtrees sync is writing or just wrote: the inbox drops target
    /// events in them as sync's own.
    own: Arc<Mutex<OwnWrites>>,
    /// Paths the source deleted while followed, not yet copied: deleted on
    /// the target even without --delete-extra (at most MAX_PENDING; past
    /// that a deleted node stays on the target, reported as extra).
    deleted: BTreeSet<String>,
    /// Pending paths whose only events were new data: copied node by node
    /// (get, compare, conditional set), without walking.
    data_only: BTreeSet<String>,
    /// At most MAX_CONFLICTS: reaching it cuts over.
    conflicts: BTreeSet<String>,
    /// Why following must end now (too many conflicts).
    overrun: Option<String>,
    /// Target paths written by someone other than sync, as far as the
    /// watch can tell: conflicts once the node is seen to differ from the
    /// source's. At most MAX_SUSPECTS.
    suspects: BTreeSet<String>,
    /// Suspects past MAX_SUSPECTS since the last judging.
    unjudged: u64,
    /// One session a side for those looks, made when first needed.
    clients: Option<(zk::Client, zk::Client)>,
    full_due: Option<String>,
    /// The source's watch is registered and connected: quiet means quiet.
    source_live: bool,
    polling: bool,
    last_source_event: Instant,
    last_full: Instant,
    passes: u64,
    changes: u64,
    /// When the oldest change not yet copied was first seen: pending, or
    /// in the pass that runs.
    oldest: Option<Instant>,
    /// The oldest change the running pass took out of pending.
    in_flight: Option<Instant>,
    /// Nodes the source deleted while the running pass ran: still to be
    /// deleted after it, whatever it walked.
    deleted_meanwhile: BTreeSet<String>,
    /// Which sides answer multi-reads.
    multi_read: Arc<data::MultiRead>,
    /// Since when the source's events may have been lost, until a full
    /// pass covers it: unseen changes are lag too.
    gap_since: Option<Instant>,
    down_since: Option<Instant>,
    /// Why a side's watch is down, while it is (source, target).
    down: [Option<String>; 2],
    /// Why the last pass could not reach a side, until one succeeds.
    failing: [Option<String>; 2],
    live: Arc<Live>,
}

impl Follower {
    fn new(
        root: &str,
        excludes: Excludes,
        own: Arc<Mutex<OwnWrites>>,
        live: Arc<Live>,
    ) -> Follower {
        Follower {
            root: root.to_string(),
            excludes,
            pending: BTreeMap::new(),
            deleted: BTreeSet::new(),
            own,
            data_only: BTreeSet::new(),
            conflicts: BTreeSet::new(),
            overrun: None,
            suspects: BTreeSet::new(),
            unjudged: 0,
            clients: None,
            full_due: None,
            source_live: true,
            polling: false,
            last_source_event: Instant::now(),
            last_full: Instant::now(),
            passes: 0,
            changes: 0,
            oldest: None,
            in_flight: None,
            deleted_meanwhile: BTreeSet::new(),
            multi_read: Arc::default(),
            gap_since: None,
            down_since: None,
            down: [None, None],
            failing: [None, None],
            live,
        }
    }

    /// Follows the source until cutover (a signal, `--until-quiet`, too many
    /// conflicts): copies what changed once it settles, a full pass when one
    /// is due, everything pending at cutover; waits out an ensemble that
    /// cannot be reached.
    async fn until_cutover(
        &mut self,
        ctx: &Context<'_>,
        rx: &mut inbox::Receiver,
        expectation: &mut Expectation<'_>,
        observer: &mut dyn SyncObserver,
        progress: &mut Progress,
        stop: &mut tokio::sync::watch::Receiver<Option<StopSignal>>,
    ) -> Result<()> {
        let mut stopping: Option<String> = None;
        let mut retry = PASS_RETRY;
        let mut final_walk_done = false;
        loop {
            // Everything the watches said so far, before deciding anything: a
            // pass or a retry may have taken a while.
            while let Some(change) = rx.try_recv() {
                self.take(change, observer);
            }
            self.publish();
            let now = Instant::now();
            if stopping.is_none() {
                stopping = self.quiet(ctx.sync, now);
            }
            let cutover = stopping.is_some();
            if cutover
                && !final_walk_done
                && (!self.source_live || self.polling)
                && self.full_due.is_none()
            {
                // Stopped while the source's watch was down, or with a source
                // that cannot be watched: what changed is known only by walking.
                self.full_due = Some("cutover without a watch on the source".into());
                final_walk_done = true;
            }
            let full_every = self.full_every(ctx.sync);
            self.periodic_full(full_every, now);
            let mut outcome = Ok(());
            if !self.suspects.is_empty() {
                outcome = self
                    .judge_suspects(ctx.source_spec, ctx.target_spec, ctx.sync, observer)
                    .await;
            }
            if let Some(reason) = self.overrun.take() {
                stopping.get_or_insert(reason);
            }
            let job = match outcome {
                Ok(()) => self.next_job(now, ctx.sync, cutover),
                Err(_) => None,
            };
            if let Some(job) = job {
                outcome = self
                    .run_job(ctx, job, cutover, expectation, (rx, observer), progress)
                    .await;
                if outcome.is_ok() {
                    retry.reset();
                    if !cutover {
                        continue;
                    }
                }
            }
            if let Err(e) = outcome {
                if cutover || !retryable(&e) {
                    return Err(e);
                }
                if let Some(reason) = self.retry_later(&e, &mut retry, observer, stop).await {
                    stopping = Some(reason);
                }
                continue;
            }
            if let Some(reason) = &stopping {
                observer.event(&SyncEvent::Cutover {
                    reason: reason.clone(),
                });
                return Ok(());
            }
            let mut wake = self
                .next_due(ctx.sync)
                .unwrap_or(now + Duration::from_millis(500))
                .min(self.last_full + full_every)
                .max(now + Duration::from_millis(20));
            loop {
                tokio::select! {
                    change = rx.recv() => match change {
                        Some(change) => {
                            let source_node =
                                matches!(change, Change::Node { side: Side::Source, .. });
                            self.take(change, observer);
                            // A source node's change is due a settle delay
                            // from now at the soonest: waited for without
                            // deciding anything again, so that a fast writer
                            // costs no look at all that pends per event.
                            if source_node && self.full_due.is_none() {
                                self.publish();
                                let soonest = ctx.sync.settle.min(ctx.sync.max_wait);
                                wake = wake.min(Instant::now() + soonest);
                                if Instant::now() < wake {
                                    continue;
                                }
                            }
                        }
                        None => return Err(Error::Usage("the watch sessions ended".into())),
                    },
                    _ = tokio::time::sleep_until(wake) => {}
                    _ = signalled(stop) => {
                        stopping = Some("stopped by signal".into());
                    }
                }
                break;
            }
        }
    }

    /// With `--until-quiet`: why to cut over now, once everything is copied
    /// and the source has been quiet that long.
    fn quiet(&self, sync: &SyncOptions, now: Instant) -> Option<String> {
        let quiet = sync.until_quiet?;
        // A watch that is down sees nothing: that is not quiet.
        let is_quiet = self.pending.is_empty()
            && self.full_due.is_none()
            && (self.source_live || self.polling)
            && now.duration_since(self.last_source_event) >= quiet;
        is_quiet.then(|| {
            format!(
                "the source was quiet for {}",
                humantime::format_duration(quiet)
            )
        })
    }

    /// How often a full pass comes.
    fn full_every(&self, sync: &SyncOptions) -> Duration {
        if self.polling {
            sync.poll_every
        } else {
            sync.verify_every
        }
    }

    /// Makes a full pass due once `every` has gone by since the last one.
    fn periodic_full(&mut self, every: Duration, now: Instant) {
        if self.full_due.is_none() && now.duration_since(self.last_full) >= every {
            self.full_due = Some(if self.polling {
                "the source cannot be watched (before 3.6)".into()
            } else {
                "the periodic full pass (ACL changes fire no watch)".into()
            });
        }
    }

    /// What to copy now, and why in full if it is a full pass: at cutover
    /// everything pending, settled or not; a full pass when one is due;
    /// else the settled changes.
    fn next_job(
        &mut self,
        now: Instant,
        sync: &SyncOptions,
        cutover: bool,
    ) -> Option<(Vec<String>, Option<String>)> {
        if let Some(reason) = self.full_due.take() {
            let mut due = vec![self.root.clone()];
            due.extend(self.take_all());
            Some((due, Some(reason)))
        } else if cutover {
            Some((self.take_all(), None)).filter(|(d, _)| !d.is_empty())
        } else {
            Some((self.take_due(now, sync), None)).filter(|(d, _)| !d.is_empty())
        }
    }

    /// Copies one job's paths; a full pass that fails stays due.
    async fn run_job(
        &mut self,
        ctx: &Context<'_>,
        (due, full): (Vec<String>, Option<String>),
        cutover: bool,
        expectation: &mut Expectation<'_>,
        (rx, observer): (&mut inbox::Receiver, &mut dyn SyncObserver),
        progress: &mut Progress,
    ) -> Result<()> {
        let is_full = full.is_some();
        let outcome = self
            .pass(ctx, due, is_full, (rx, &mut *observer), progress)
            .await;
        match &outcome {
            Ok(()) if is_full => {
                self.last_full = Instant::now();
                // A gap that opened while the pass ran is not covered by it.
                if self.full_due.is_none() {
                    self.gap_since = None;
                }
                if !cutover {
                    expectation.refresh(ctx.source, ctx.options).await;
                }
            }
            Ok(()) => {}
            Err(_) => self.full_due = full,
        }
        if outcome.is_ok() {
            self.failing = [None, None];
        }
        self.publish();
        outcome
    }

    /// After a pass failed on an ensemble restarting or a leader changing:
    /// the changes stay pending, and are copied once it answers again,
    /// after the back-off. Returns why to cut over if a signal came
    /// meanwhile.
    async fn retry_later(
        &mut self,
        e: &Error,
        retry: &mut Backoff,
        observer: &mut dyn SyncObserver,
        stop: &mut tokio::sync::watch::Receiver<Option<StopSignal>>,
    ) -> Option<String> {
        if let Error::Connect { side, .. } | Error::Read { side, .. } = e {
            let at = if side == "source" { 0 } else { 1 };
            self.failing[at] = Some(e.to_string());
        }
        self.publish();
        let wait = retry.next_wait();
        observer.event(&SyncEvent::Retry {
            reason: e.to_string(),
            retry_in_seconds: wait.as_secs_f64(),
            pending: self.pending.len() as u64,
        });
        self.clients = None;
        tokio::select! {
            _ = tokio::time::sleep(wait) => None,
            _ = signalled(stop) => Some("stopped by signal".into()),
        }
    }

    /// Hands what the follower stands at to the outputs' timer.
    fn publish(&self) {
        let oldest = earliest(self.oldest, self.gap_since);
        let side = |i: usize| self.down[i].clone().or_else(|| self.failing[i].clone());
        self.live.set(LiveState {
            oldest: oldest.map(Instant::into_std),
            pending: self.pending.len() as u64,
            unreachable: [side(0), side(1)],
        });
    }

    /// The oldest change not yet copied again, once some were copied,
    /// dropped or taken into a pass.
    fn recount(&mut self) {
        let pending = self.pending.values().map(|(first, _)| *first).min();
        self.oldest = earliest(pending, self.in_flight);
    }

    fn excluded(&self, path: &str) -> bool {
        self.excludes.leaves_out(path, &self.root)
    }

    /// Takes in a source node event: its subtree is pending from now.
    fn source_event(&mut self, path: String, event: zk::EventType, at: Instant) {
        if !within(&path, &self.root) || self.excluded(&path) {
            return;
        }
        self.last_source_event = at;
        match event {
            zk::EventType::NodeDeleted if self.deleted.len() < MAX_PENDING => {
                self.deleted.insert(path.clone());
                if self.in_flight.is_some() {
                    self.deleted_meanwhile.insert(path.clone());
                }
            }
            zk::EventType::NodeCreated => {
                self.deleted.remove(&path);
                self.deleted_meanwhile.remove(&path);
            }
            _ => {}
        }
        let (scope, structural) = scope_of(&path, event, &self.root);
        let existed = self.pending.contains_key(&scope);
        if structural {
            self.data_only.remove(&scope);
        } else if !existed {
            self.data_only.insert(scope.clone());
        }
        self.pending
            .entry(scope)
            .and_modify(|(_, last)| *last = at)
            .or_insert((at, at));
        self.oldest = Some(self.oldest.map_or(at, |o| o.min(at)));
        if self.pending.len() > MAX_PENDING {
            // A bulk load: one walk is cheaper than path by path,
            // and memory stays bounded. What waited is lag still.
            self.gap_since = earliest(self.gap_since, self.oldest);
            self.oldest = None;
            self.pending.clear();
            self.data_only.clear();
            self.full_due = Some(format!("more than {MAX_PENDING} changed paths"));
        }
    }

    fn take(&mut self, change: Change, observer: &mut dyn SyncObserver) {
        let side_name = |s: Side| match s {
            Side::Source => "source",
            Side::Target => "target",
        };
        match change {
            Change::Node {
                side: Side::Source,
                path,
                event,
                at,
            } => self.source_event(path, event, at),
            Change::Node {
                side: Side::Target,
                path,
                event: _,
                at: _,
            } => {
                if !within(&path, &self.root) || self.excluded(&path) {
                    return;
                }
                self.suspect(path);
            }
            Change::Gap {
                side: Side::Source,
                reason,
            } => {
                // What went unseen may be changes up to now: quiet counts
                // from here.
                self.last_source_event = Instant::now();
                let since = self.down_since.take().unwrap_or_else(Instant::now);
                self.gap_since = Some(self.gap_since.map_or(since, |g| g.min(since)));
                self.full_due = Some(format!("the source watch {reason}"));
                observer.event(&SyncEvent::Watch {
                    side: "source",
                    state: format!("gap: {reason}; a full pass follows"),
                });
            }
            Change::Gap { side, reason } => observer.event(&SyncEvent::Watch {
                side: side_name(side),
                state: format!("gap: {reason}; writes by others in it go unseen"),
            }),
            Change::Unsupported { side } => {
                if side == Side::Source {
                    self.polling = true;
                }
                observer.event(&SyncEvent::Watch {
                    side: side_name(side),
                    state: "unsupported (before 3.6): full passes instead".into(),
                });
            }
            Change::Down {
                side: Side::Source,
                reason,
            } => {
                self.source_live = false;
                self.down_since.get_or_insert_with(Instant::now);
                self.down[0] = Some(reason.clone());
                observer.event(&SyncEvent::Watch {
                    side: "source",
                    state: format!("down ({reason}); a full pass follows its return"),
                });
            }
            Change::Down { side, reason } => {
                self.down[side as usize] = Some(reason.clone());
                observer.event(&SyncEvent::Watch {
                    side: side_name(side),
                    state: format!("down ({reason})"),
                })
            }
            Change::Live { side } => {
                if side == Side::Source {
                    self.source_live = true;
                    self.down_since = None;
                }
                self.down[side as usize] = None;
            }
        }
    }

    /// The one session a side that looks at single nodes, made when first
    /// needed and again after it failed (sessions are transactions on the
    /// servers: not one per look).
    async fn sessions(
        &mut self,
        source: &EnsembleSpec,
        target: &EnsembleSpec,
    ) -> Result<(zk::Client, zk::Client)> {
        if let Some(clients) = &self.clients {
            return Ok(clients.clone());
        }
        let clients = (source.connect().await?, target.connect().await?);
        self.clients = Some(clients.clone());
        Ok(clients)
    }

    /// Conflicts among the suspects: target nodes that now differ from the
    /// source's (a late event of sync's own write finds them equal).
    async fn judge_suspects(
        &mut self,
        source: &EnsembleSpec,
        target: &EnsembleSpec,
        sync: &SyncOptions,
        observer: &mut dyn SyncObserver,
    ) -> Result<()> {
        let (s, t) = self.sessions(source, target).await?;
        if self.unjudged > 0 {
            observer.event(&SyncEvent::Watch {
                side: "target",
                state: format!(
                    "{} more writes by others than the {MAX_SUSPECTS} judged at once: left to the final compare",
                    self.unjudged
                ),
            });
            self.unjudged = 0;
        }
        let suspects: Vec<String> = std::mem::take(&mut self.suspects)
            .into_iter()
            .filter(|p| !self.excluded(p))
            .collect();
        // Looked at pipelined: one round trip per suspect would hold the
        // follow loop up for seconds behind a burst of them.
        let differing: Vec<String> = {
            use futures::stream::{self, StreamExt};
            stream::iter(suspects)
                .map(|path| {
                    let (s, t) = (&s, &t);
                    async move { node_differs(s, t, &path).await.then_some(path) }
                })
                .buffered(SUSPECTS_IN_FLIGHT)
                .filter_map(std::future::ready)
                .collect()
                .await
        };
        for path in differing {
            if self.excluded(&path) {
                continue;
            }
            let now = Instant::now();
            if sync.force {
                observer.event(&SyncEvent::Conflict {
                    path: path.clone(),
                    action: "copying_over",
                });
                let scope = parent(&path)
                    .filter(|p| within(p, &self.root))
                    .unwrap_or(&self.root)
                    .to_string();
                self.pending.entry(scope).or_insert((now, now));
                self.oldest = Some(self.oldest.map_or(now, |o| o.min(now)));
                continue;
            }
            observer.event(&SyncEvent::Conflict {
                path: path.clone(),
                action: "stopped_following",
            });
            self.pending.retain(|p, _| !within(p, &path));
            self.recount();
            let mut patterns: Vec<String> = self.excludes.patterns().to_vec();
            patterns.push(globset::escape(&path));
            if let Ok(e) = Excludes::new(&patterns) {
                self.excludes = e;
            }
            self.conflicts.insert(path);
            if self.conflicts.len() >= MAX_CONFLICTS && self.overrun.is_none() {
                self.overrun = Some(format!(
                    "{MAX_CONFLICTS} subtrees in conflict: someone else writes the target"
                ));
            }
        }
        Ok(())
    }

    /// Remembers a target node someone else may have written, within
    /// MAX_SUSPECTS.
    fn suspect(&mut self, path: String) {
        if self.suspects.len() < MAX_SUSPECTS || self.suspects.contains(&path) {
            self.suspects.insert(path);
        } else {
            self.unjudged += 1;
        }
    }

    /// Scopes quiet for the settle delay, or waiting longer than max_wait.
    fn take_due(&mut self, now: Instant, sync: &SyncOptions) -> Vec<String> {
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, (first, last))| {
                now.duration_since(*last) >= sync.settle
                    || now.duration_since(*first) >= sync.max_wait
            })
            .map(|(p, _)| p.clone())
            .collect();
        due
    }

    fn next_due(&self, sync: &SyncOptions) -> Option<Instant> {
        self.pending
            .values()
            .map(|(first, last)| (*last + sync.settle).min(*first + sync.max_wait))
            .min()
    }

    fn take_all(&mut self) -> Vec<String> {
        self.pending.keys().cloned().collect()
    }

    /// Takes `due` out of pending for a pass: what changes while it runs
    /// pends anew, and the oldest taken still counts as lag until the pass
    /// is done.
    fn take_out(&mut self, due: &[String]) -> Taken {
        let taken: Taken = due
            .iter()
            .filter_map(|p| {
                let (first, last) = self.pending.remove(p)?;
                Some((p.clone(), (first, last, self.data_only.remove(p))))
            })
            .collect();
        self.in_flight = taken.values().map(|(first, _, _)| *first).min();
        self.deleted_meanwhile.clear();
        self.recount();
        taken
    }

    /// What a pass that failed took out of pending, back in it (merged
    /// with what changed meanwhile).
    fn put_back(&mut self, taken: Taken) {
        for (path, (first, last, data_only)) in taken {
            let room = self.pending.len() < MAX_PENDING;
            match self.pending.get_mut(&path) {
                Some(entry) => {
                    entry.0 = entry.0.min(first);
                    entry.1 = entry.1.max(last);
                    if !data_only {
                        self.data_only.remove(&path);
                    }
                }
                None if room => {
                    if data_only {
                        self.data_only.insert(path.clone());
                    }
                    self.pending.insert(path, (first, last));
                }
                None => {
                    // As in source_event: past the bound a full pass copies
                    // them, and what waited is lag still.
                    self.gap_since = earliest(self.gap_since, Some(first));
                    self.full_due
                        .get_or_insert_with(|| format!("more than {MAX_PENDING} changed paths"));
                }
            }
        }
        self.in_flight = None;
        self.recount();
    }

    /// Copies the paths taken for a pass: new data node by node, the rest
    /// (and what turns out to need more) by walking the subtrees that hold
    /// them. Returns the writes made and the subtrees walked.
    async fn copy_taken(
        &mut self,
        (ctx, progress): (&Context<'_>, &mut Progress),
        taken: &Taken,
        full: bool,
        (rx, observer): (&mut inbox::Receiver, &mut dyn SyncObserver),
    ) -> Result<(u64, Vec<String>, usize)> {
        let (source, target, options, sync) = (ctx.source, ctx.target, ctx.options, ctx.sync);
        let mut applied = 0;
        // New data alone: node by node, no walk. What turns out to need
        // more (a node gone on either side) is walked from its parent.
        let (mut fast, mut walk) = (Vec::new(), Vec::new());
        for (path, (_, _, data_only)) in taken {
            if *data_only && !full {
                fast.push(path.clone());
            } else {
                walk.push(path.clone());
            }
        }
        if full {
            walk.push(self.root.clone());
        }
        let fast_nodes = fast.len();
        if !fast.is_empty() {
            let (copied, more) = self
                .copy_data(
                    (source, target),
                    fast,
                    sync.repair.max_writes_per_second,
                    (&mut *rx, &mut *observer),
                )
                .await?;
            applied += copied;
            walk.extend(more);
        }
        let scopes = if walk.is_empty() {
            Vec::new()
        } else {
            coarsen(covering(&walk), &self.root, MAX_PASS_SUBTREES)
        };
        let mut args = sync.repair.clone();
        // Without --delete-extra, what was on the target only before the
        // copy stays; what the source deletes while followed still goes.
        args.delete_also = std::sync::Arc::new(self.deleted.clone());
        args.first_write = None;
        args.create_path = true;
        args.verify = false;
        args.resume = None;
        for scope in &scopes {
            let scope = self.existing_on_source(source, target, scope).await?;
            // Until the pass ends, and a little after, the target's events
            // under this scope are sync's own writes.
            own_writes(&self.own).insert(&scope, Instant::now() + Duration::from_secs(3600));
            let mut opts = options.clone();
            opts.path = scope.clone();
            opts.walk.excludes = self.excludes.clone();
            // One session a side: a pass is small, and sessions are
            // transactions on the servers.
            opts.reader.sessions = 1;
            let repair =
                crate::repair::run((source.clone(), target.clone()), opts, &args, progress);
            let report = self.taking(repair, &mut *rx, &mut *observer).await;
            own_writes(&self.own).insert(&scope, Instant::now() + OWN_WRITES_GRACE);
            let report = report?;
            applied += report.apply.as_ref().map_or(0, |a| a.counts.applied);
        }
        Ok((applied, scopes, fast_nodes))
    }

    /// Copies `due` (taken out of pending; put back if the pass fails).
    async fn pass(
        &mut self,
        ctx: &Context<'_>,
        due: Vec<String>,
        full: bool,
        (rx, observer): (&mut inbox::Receiver, &mut dyn SyncObserver),
        progress: &mut Progress,
    ) -> Result<()> {
        let started = Instant::now();
        let changes = due.len() as u64;
        let taken = self.take_out(&due);
        let copied = self
            .copy_taken((ctx, progress), &taken, full, (&mut *rx, &mut *observer))
            .await;
        let (applied, scopes, fast_nodes) = match copied {
            Ok(copied) => copied,
            Err(e) => {
                self.put_back(taken);
                return Err(e);
            }
        };
        // Without a watch, a full pass that copied something is the only
        // sign the source moved: it is not quiet yet.
        if self.polling && applied > 0 {
            self.last_source_event = Instant::now();
        }
        // How long the oldest change waited until copied.
        let now = Instant::now();
        let lag = taken
            .values()
            .map(|(first, _, _)| now.duration_since(*first).as_secs_f64())
            .fold(0.0, f64::max);
        // Only now: a pass that failed leaves its changes pending. A node
        // the source deleted again while the pass ran is deleted still.
        let meanwhile = std::mem::take(&mut self.deleted_meanwhile);
        self.deleted
            .retain(|d| meanwhile.contains(d) || !scopes.iter().any(|scope| within(d, scope)));
        self.in_flight = None;
        self.recount();
        self.passes += 1;
        self.changes += changes;
        let mut subtrees = scopes;
        if fast_nodes > 0 {
            subtrees.push(format!("{fast_nodes} node(s) with new data"));
        }
        observer.event(&SyncEvent::Followed {
            subtrees,
            changes,
            applied,
            pending: self.pending.len() as u64,
            lag_seconds: (lag * 1000.0).round() / 1000.0,
            elapsed_seconds: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            full,
        });
        Ok(())
    }

    /// Copies the data of `paths` node by node ([`data::copy`]), taking in
    /// what the watches say meanwhile. Returns the writes made and the
    /// paths that need a walk of their parent instead; target nodes that
    /// moved in between become suspects.
    async fn copy_data(
        &mut self,
        (source, target): (&SideSpec, &SideSpec),
        paths: Vec<String>,
        max_writes_per_second: u32,
        (rx, observer): (&mut inbox::Receiver, &mut dyn SyncObserver),
    ) -> Result<(u64, Vec<String>)> {
        let (source_spec, target_spec) = (live(source)?, live(target)?);
        let (s, t) = self.sessions(source_spec, target_spec).await?;
        let until = Instant::now() + Duration::from_secs(3600);
        {
            let mut own = own_writes(&self.own);
            for p in &paths {
                own.insert(p, until);
            }
        }
        let (root, multi) = (self.root.clone(), self.multi_read.clone());
        let copying = async {
            let copied = data::copy(&s, &t, &paths, &root, max_writes_per_second, &multi).await;
            (copied, paths)
        };
        let (copied, paths) = self.taking(copying, rx, observer).await;
        // Failed or not: what was written is no longer being written.
        {
            let grace = Instant::now() + OWN_WRITES_GRACE;
            let mut own = own_writes(&self.own);
            for p in &paths {
                own.insert(p, grace);
            }
        }
        match copied {
            Ok(copies) => {
                for path in copies.moved {
                    self.suspect(path);
                }
                Ok((copies.applied, copies.walk))
            }
            Err((path, side, e)) => {
                self.clients = None;
                let spec = if side == Side::Source {
                    source_spec
                } else {
                    target_spec
                };
                Err(Error::Read {
                    side: spec.side.clone(),
                    ensemble: spec.connect.to_string(),
                    path,
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Awaits `work` while taking in the watches' changes as they come:
    /// behind a pass that does not read them the inbox overflows under a
    /// fast writer, and its gap costs a full pass. `work` must not hold
    /// the follower; what changes meanwhile is pending anew.
    async fn taking<T>(
        &mut self,
        work: impl std::future::Future<Output = T>,
        rx: &mut inbox::Receiver,
        observer: &mut dyn SyncObserver,
    ) -> T {
        let mut work = std::pin::pin!(work);
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                out = &mut work => return out,
                change = rx.recv(), if open => match change {
                    Some(change) => {
                        self.take(change, observer);
                        self.publish();
                    }
                    // Said by the follow loop once the pass is over.
                    None => open = false,
                },
            }
        }
    }

    /// `scope`, or its nearest ancestor the source still has (a deleted
    /// subtree is repaired from the parent that lost it).
    async fn existing_on_source(
        &mut self,
        source: &SideSpec,
        target: &SideSpec,
        scope: &str,
    ) -> Result<String> {
        let spec = live(source)?;
        let (client, _) = self.sessions(spec, live(target)?).await?;
        let mut p = scope.to_string();
        let found = loop {
            match client.check_stat(&p).await {
                Ok(Some(_)) => break p,
                Ok(None) if p == self.root => {
                    return Err(Error::Refused {
                        reason: format!(
                            "{} disappeared from the source {} while sync followed it: sync stopped, and the target keeps its tree",
                            self.root, spec.connect
                        ),
                        fix: "find out why the source lost it before syncing again".into(),
                    });
                }
                Ok(None) => match parent(&p) {
                    Some(up) if within(up, &self.root) => p = up.to_string(),
                    _ => break self.root.clone(),
                },
                Err(zk::Error::NoAuth) => break p,
                Err(e) => {
                    self.clients = None;
                    return Err(Error::Read {
                        side: spec.side.clone(),
                        ensemble: spec.connect.to_string(),
                        path: p,
                        reason: e.to_string(),
                    });
                }
            }
        };
        Ok(found)
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Errors an ensemble that is restarting or electing gives: worth waiting
/// out while following.
fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Connect { .. } | Error::Read { .. } | Error::TaskFailed { .. }
    )
}

/// Whether a node differs between the two sides in what sync copies:
/// existence, data, ACL. A node that cannot be read is not judged.
async fn node_differs(s: &zk::Client, t: &zk::Client, path: &str) -> bool {
    async fn read(c: &zk::Client, path: &str) -> Option<Option<(Vec<u8>, Vec<zk::Acl>)>> {
        match c.get_data(path).await {
            Ok((data, _)) => match c.get_acl(path).await {
                Ok((acl, _)) => Some(Some((data, acl))),
                Err(zk::Error::NoNode) => Some(None),
                Err(_) => None,
            },
            Err(zk::Error::NoNode) => Some(None),
            Err(_) => None,
        }
    }
    match (read(s, path).await, read(t, path).await) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// The subtree a node event asks to copy: a created or deleted node
/// changes its parent's children (and, for sequential names, its child
/// counter); new data changes the node alone.
fn scope_of(path: &str, event: zk::EventType, root: &str) -> (String, bool) {
    match event {
        zk::EventType::NodeCreated | zk::EventType::NodeDeleted => (
            parent(path)
                .filter(|p| within(p, root))
                .unwrap_or(root)
                .to_string(),
            true,
        ),
        _ => (path.to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follower() -> Follower {
        let own = Arc::new(Mutex::new(OwnWrites::new("/app")));
        let excludes = Excludes::new::<&str>(&[]).unwrap();
        Follower::new("/app", excludes, own, Arc::default())
    }

    #[test]
    fn changes_taken_into_a_pass_still_count_as_lag_until_it_is_done() {
        let mut f = follower();
        let first = Instant::now();
        f.source_event("/app/a".into(), zk::EventType::NodeDataChanged, first);
        let taken = f.take_out(&["/app/a".to_string()]);
        assert!(f.pending.is_empty());
        assert_eq!(f.oldest, Some(first));
        let later = first + Duration::from_millis(5);
        f.source_event("/app/b".into(), zk::EventType::NodeDataChanged, later);
        assert_eq!(f.oldest, Some(first));
        drop(taken);
        f.in_flight = None;
        f.recount();
        assert_eq!(f.oldest, Some(later));
    }

    #[test]
    fn a_failed_pass_puts_its_changes_back_merged_with_those_that_came_meanwhile() {
        let mut f = follower();
        let first = Instant::now();
        f.source_event("/app/a".into(), zk::EventType::NodeDataChanged, first);
        f.source_event("/app/q/n1".into(), zk::EventType::NodeCreated, first);
        let due: Vec<String> = f.pending.keys().cloned().collect();
        let taken = f.take_out(&due);
        // While the pass ran: new data on the node taken, and one more.
        let later = first + Duration::from_millis(5);
        f.source_event("/app/a".into(), zk::EventType::NodeDataChanged, later);
        f.source_event("/app/q".into(), zk::EventType::NodeDataChanged, later);
        f.put_back(taken);
        assert_eq!(f.pending.get("/app/a"), Some(&(first, later)));
        assert_eq!(f.pending.get("/app/q"), Some(&(first, later)));
        // New data alone stays node by node; a created child still walks.
        assert!(f.data_only.contains("/app/a"));
        assert!(!f.data_only.contains("/app/q"));
        assert_eq!(f.oldest, Some(first));
    }

    #[test]
    fn a_created_node_is_copied_from_its_parent_and_new_data_from_itself() {
        use zk::EventType::*;
        let s = |p: &str| (p.to_string(), true);
        assert_eq!(scope_of("/app/q/n-0001", NodeCreated, "/app"), s("/app/q"));
        assert_eq!(scope_of("/app/q/n-0001", NodeDeleted, "/app"), s("/app/q"));
        assert_eq!(scope_of("/app", NodeDeleted, "/app"), s("/app"));
        assert_eq!(
            scope_of("/app/cfg", NodeDataChanged, "/app"),
            ("/app/cfg".to_string(), false)
        );
    }
}
