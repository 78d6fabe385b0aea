//! One pair's life in the agent: a task that runs a round every interval and
//! reports each one, and re-checks changed paths early in between.
//!
//! A round reads through fresh sessions (those of
//! [`compare`](crate::compare::compare)) and closes them at its end, so a
//! server restart, a lost quorum or an expired session costs at most that
//! round: it is reported UNKNOWN and the next round starts from new sessions.
//! What survives from round to round is the confirmation history and the ACL
//! caches (whose entries are checked against every node's fresh stat, so they
//! stay valid across sessions).
//!
//! With watches ([`super::watch`]), a round reads only what needs reading:
//! the whole subtree (the first round, every `full_walk_every` rounds, and
//! after any watch gap), the paths that changed since the last round, or
//! nothing. A changed path is also re-checked *early*, once it has been quiet
//! for `watch_settle`, and the result folded into the confirmation history —
//! not as a round: early sightings start runs of 0 rounds, and heals are
//! taken at once (see [`Tracker::recheck`]).
//!
//! Stopping is prompt: a stop request abandons a comparison in progress or a
//! wait, but never interrupts a state file being written.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::aclcache::AclCache;
use crate::compare::{compare_sides_known, compare_subtrees};
use crate::error::Error;
use crate::gmetric::Channel;
use crate::identity::Evidence;
use crate::nagios::output::CheckResult;
use crate::progress::Progress;
use crate::report::{CompareReport, DiffKind, Verdict};
use crate::tree::path::within;

use crate::nagios::output::State;
use crate::prometheus::{Registry, Update};

use super::config::{default_check, NagiosOutput, PairConfig, ProbeSettings};
use super::confirm::{seen_in, Changes, Seen, Tracker, COUNTED_PATH};
use super::ganglia::GangliaOut;
use super::passive;
use super::registrations::{registrations_service, Looked, Registrations};
use super::schedule;
use super::state::{
    read_state, state_path, write_state, Checks, ConfirmSettings, PairState, PairStatus, RoundKind,
    RoundSummary, StateError, Timestamp, WatchStatus, STATE_SCHEMA,
};
use super::stopped;
use super::verdict::verdict;
use super::watch::{self as watches, coarsen, covering, Early, Plan, SideWatch, Watches};

/// Settings every pair reads at each round, replaced on reload.
#[derive(Debug)]
pub(crate) struct Globals {
    pub state_dir: PathBuf,
    pub state_list_limit: usize,
    pub nagios: Option<NagiosOutput>,
    pub ganglia: Vec<Channel>,
    /// Where rounds are published for `/metrics`; `None`: not served.
    pub prometheus: Option<Arc<Registry>>,
    pub probes: Option<ProbeSettings>,
}

/// Drift paths named in the log per round; the state file has them all.
const LOGGED_CHANGES: usize = 20;

/// Subtrees one re-check compares at most (over one session a side): more
/// changed places than this are re-checked as fewer, larger subtrees, so a
/// re-check's cost stays bounded.
const MAX_RECHECK_SUBTREES: usize = 16;

/// Subtrees compared at once during a re-check.
const RECHECK_PARALLEL: usize = 4;

/// What a pair carries from round to round.
struct History {
    round: u64,
    tracker: Tracker,
    summary: Option<RoundSummary>,
    last_success: Option<Timestamp>,
    /// The latest round's times and failure, for the state written by early
    /// re-checks between rounds.
    started: Timestamp,
    finished: Timestamp,
    reason: Option<String>,
    checks: Checks,
    /// The latest full walk's report (its difference list dropped): rounds
    /// that do not walk report node counts and subtrees from it.
    last_walk: Option<CompareReport>,
    /// Rounds since the latest full walk.
    rounds_since_walk: u64,
    /// The latest round's look at the registrations (`expect`).
    registrations: Option<Looked>,
}

/// Picks up the history a previous run of the agent left in the state file,
/// if it is about the same comparison.
fn restore(cfg: &PairConfig, globals: &Globals) -> History {
    let now = Timestamp::now();
    let fresh = History {
        round: 0,
        tracker: Tracker::new(cfg.confirm),
        summary: None,
        last_success: None,
        started: now,
        finished: now,
        reason: None,
        checks: Checks::default(),
        last_walk: None,
        rounds_since_walk: 0,
        registrations: None,
    };
    let path = state_path(&globals.state_dir, &cfg.name);
    let state = match read_state(&path) {
        Ok(s) => s,
        Err(StateError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return fresh
        }
        Err(e) => {
            warn!(pair = %cfg.name, error = %e, "previous state unreadable; starting afresh");
            return fresh;
        }
    };
    if state.pair != cfg.name {
        return fresh;
    }
    let same_comparison = state.source == cfg.source.describe()
        && state.target == cfg.target.describe()
        && state.path == cfg.options.path;
    if !same_comparison {
        info!(pair = %cfg.name, "source, target or path changed; earlier differences forgotten");
        return History {
            round: state.round,
            ..fresh
        };
    }
    debug!(pair = %cfg.name, round = state.round, "continuing from the state file");
    History {
        round: state.round,
        tracker: Tracker::restore(cfg.confirm, &state),
        summary: state.summary,
        last_success: state.last_success,
        checks: Checks {
            last_full_walk: state.checks.last_full_walk,
            last_early_recheck: state.checks.last_early_recheck,
            ..Checks::default()
        },
        ..fresh
    }
}

/// Ends the watch tasks with the pair's task, however it ends.
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// What a round (or an early re-check) read.
enum Read {
    /// The whole subtree.
    Walked(Box<CompareReport>),
    /// Some subtrees.
    Rechecked(Rechecked),
    /// Nothing: the watches said nothing changed.
    Nothing,
}

/// The outcome of re-checking some subtrees.
struct Rechecked {
    scopes: Vec<String>,
    /// Changed paths behind those subtrees.
    paths: usize,
    seen: Vec<Seen>,
    reads: BTreeMap<&'static str, u64>,
    transient: u64,
    lagging: u64,
    /// A subtree had more differences than a comparison lists: only a full
    /// walk can track them.
    counted_only: bool,
}

/// The subtrees to re-check for `paths`: each path, or the tracked missing,
/// extra or unreadable subtree it lies in (a walk reports those once, at
/// their root), the fewest that cover them all, and not too many.
fn scopes_for(paths: &[String], tracker: &Tracker, root: &str) -> Vec<String> {
    let roots = tracker.subtree_roots();
    let rebased: Vec<String> = paths
        .iter()
        .map(|p| {
            roots
                .iter()
                .filter(|r| within(p, r) && within(r, root))
                .min_by_key(|r| r.len())
                .unwrap_or(p)
                .clone()
        })
        .collect();
    coarsen(covering(&rebased), root, MAX_RECHECK_SUBTREES)
}

/// Compares one subtree; `None` when it exists on neither side (nothing can
/// differ there), unless it is the pair's own path, which must exist.
async fn compare_scope(
    cfg: &PairConfig,
    caches: &[Arc<AclCache>; 2],
    scope: &str,
    known: Option<&Option<Evidence>>,
) -> Result<Option<CompareReport>, Error> {
    let mut options = cfg.options.clone();
    options.acl_caches = [Some(caches[0].clone()), Some(caches[1].clone())];
    let whole = scope == cfg.options.path;
    if !whole {
        options.path = scope.to_string();
        options.reader.sessions = 1;
    }
    let mut quiet = Progress::new(false);
    match compare_sides_known(&cfg.source, &cfg.target, &options, &mut quiet, known).await {
        Ok(r) => Ok(Some(r)),
        Err(Error::RootMissing { .. }) if !whole => Ok(None),
        Err(e) => Err(e),
    }
}

/// Re-checks `scopes`: the pair's whole path as a compare of its own, any
/// number of smaller subtrees a few at a time over one session a side.
/// (Boxed: the compiler cannot prove the borrowing futures `Send` for every
/// lifetime otherwise.)
fn recheck_scopes<'a>(
    cfg: &'a PairConfig,
    caches: &'a [Arc<AclCache>; 2],
    scopes: Vec<String>,
    paths: usize,
    known: Option<&'a Option<Evidence>>,
) -> BoxFuture<'a, Result<(Rechecked, Option<CompareReport>), Error>> {
    async move {
        if scopes.contains(&cfg.options.path) {
            let results: Vec<Result<Option<CompareReport>, Error>> = stream::iter(scopes.clone())
                .map(|scope| async move { compare_scope(cfg, caches, &scope, known).await })
                .buffered(RECHECK_PARALLEL)
                .collect()
                .await;
            return fold_rechecks(cfg, scopes, results, paths, None);
        }
        let mut options = cfg.options.clone();
        options.acl_caches = [Some(caches[0].clone()), Some(caches[1].clone())];
        // Changed subtrees are usually small: one session a side serves them
        // all.
        options.reader.sessions = 1;
        let (reports, reads) = compare_subtrees(
            &cfg.source,
            &cfg.target,
            &options,
            &scopes,
            RECHECK_PARALLEL,
        )
        .await?;
        let results = reports.into_iter().map(Ok).collect();
        fold_rechecks(cfg, scopes, results, paths, Some(reads))
    }
    .boxed()
}

/// `reads`: the reads of all `results` together, where they shared sessions;
/// otherwise each report's own are added up.
fn fold_rechecks(
    cfg: &PairConfig,
    scopes: Vec<String>,
    results: Vec<Result<Option<CompareReport>, Error>>,
    paths: usize,
    reads: Option<BTreeMap<&'static str, u64>>,
) -> Result<(Rechecked, Option<CompareReport>), Error> {
    let mut out = Rechecked {
        scopes: Vec::new(),
        paths,
        seen: Vec::new(),
        reads: BTreeMap::new(),
        transient: 0,
        lagging: 0,
        counted_only: false,
    };
    let mut whole = None;
    for (scope, result) in scopes.into_iter().zip(results) {
        if let Some(report) = result? {
            for s in seen_in(&report) {
                if s.path == COUNTED_PATH {
                    out.counted_only = true;
                } else {
                    out.seen.push(s);
                }
            }
            if reads.is_none() {
                for (side, n) in &report.summary.reads {
                    *out.reads.entry(side).or_default() += n;
                }
            }
            out.transient += report.summary.transient;
            out.lagging += report.summary.lagging;
            if scope == cfg.options.path {
                whole = Some(report);
            }
        }
        out.scopes.push(scope);
    }
    if let Some(reads) = reads {
        out.reads = reads;
    }
    Ok((out, whole))
}

/// A walk's report without its difference list, kept between walks.
fn kept(report: &CompareReport) -> CompareReport {
    CompareReport {
        zkparity_version: report.zkparity_version,
        digest_version: report.digest_version,
        source: report.source.clone(),
        target: report.target.clone(),
        settings: report.settings.clone(),
        summary: report.summary.clone(),
        subtrees: report.subtrees.clone(),
        differences: Vec::new(),
        differences_not_listed: report.differences_not_listed,
        acl_unverified: Vec::new(),
        one_ensemble: report.one_ensemble.clone(),
        notes: report.notes.clone(),
    }
}

/// The report of a round that did not walk: node counts and subtrees from
/// the latest walk, differences as now known, this round's reads and time.
fn derived_report(
    last: &CompareReport,
    seen: &[Seen],
    elapsed: f64,
    read: Option<&Rechecked>,
) -> CompareReport {
    let mut r = last.clone();
    let (by_kind, total, unreadable) = crate::compare::tally(seen.iter().filter_map(|s| {
        DiffKind::ALL
            .iter()
            .find(|k| k.as_str() == s.kind)
            .map(|k| (*k, s.count.unwrap_or(1)))
    }));
    let verdict = Verdict::of(total, unreadable);
    r.summary.differences = by_kind;
    r.summary.confirmed = total;
    r.summary.unreadable = unreadable;
    r.summary.verdict = verdict;
    r.summary.identical = verdict == Verdict::Identical;
    r.summary.elapsed_seconds = elapsed;
    r.summary.transient = read.map(|x| x.transient).unwrap_or(0);
    r.summary.lagging = read.map(|x| x.lagging).unwrap_or(0);
    r.summary.rechecked = read.is_some_and(|x| !x.seen.is_empty());
    r.summary.reads = read
        .map(|x| x.reads.clone())
        .unwrap_or_else(|| BTreeMap::from([("source", 0), ("target", 0)]));
    r.differences_not_listed = 0;
    r
}

/// The same-ensemble check's answer for a pair, kept while its connections
/// hold: asking resumes a session on the target, too much for every round.
/// It is asked again after a round or re-check fails (servers may have
/// moved), while a watch has lost its connection, and after a reload.
#[derive(Default)]
struct OneEnsemble {
    answer: Option<Option<Evidence>>,
}

impl OneEnsemble {
    /// The answer for two live sides, asked now if not known; `None` when a
    /// side is a file (there is nothing to ask).
    async fn known(&mut self, cfg: &PairConfig) -> Result<Option<&Option<Evidence>>, Error> {
        let Some([source, target]) = cfg.live() else {
            return Ok(None);
        };
        if self.answer.is_none() {
            debug!(pair = %cfg.name, "asking whether source and target are one ensemble");
            self.answer = Some(crate::identity::one_ensemble(source, target).await?);
        }
        Ok(self.answer.as_ref())
    }

    fn forget(&mut self) {
        self.answer = None;
    }
}

/// What woke a pair's task between rounds.
enum Wake {
    Round,
    /// The watches saw a change: when to wake is worked out again.
    Changed,
    Early,
    Stop,
}

/// One pair's task: what it keeps from round to round.
struct PairTask {
    cfg: Arc<PairConfig>,
    globals: watch::Receiver<Arc<Globals>>,
    stop: watch::Receiver<bool>,
    history: History,
    caches: [Arc<AclCache>; 2],
    reporter: Reporter,
    registrations: Registrations,
    one_ensemble: OneEnsemble,
}

/// Runs rounds of `cfg` until told to stop.
pub(crate) async fn run_pair(
    cfg: Arc<PairConfig>,
    globals: watch::Receiver<Arc<Globals>>,
    stop: watch::Receiver<bool>,
) {
    let mut history = restore(&cfg, &globals.borrow());
    history.tracker.set_policy(cfg.confirm);
    let mut task = PairTask {
        cfg,
        globals,
        stop,
        history,
        caches: [AclCache::new(), AclCache::new()],
        reporter: Reporter::default(),
        registrations: Registrations::default(),
        one_ensemble: OneEnsemble::default(),
    };
    let (watches, _watch_tasks) = task.start_watches();
    let watches = watches.as_deref();
    if task.watches_started(watches).await.is_break() {
        return;
    }
    let mut next = Instant::now() + schedule::jitter(task.cfg.jitter);
    loop {
        match task.wait(watches, next).await {
            Wake::Round => {}
            Wake::Changed => continue,
            Wake::Early => {
                if let Some(w) = watches {
                    if task.early_recheck(w).await.is_break() {
                        return;
                    }
                }
                continue;
            }
            Wake::Stop => return,
        }
        let started_at = Instant::now();
        if task.round(watches, started_at).await.is_break() {
            return;
        }
        next = schedule::next_start(started_at, Instant::now(), task.cfg.interval)
            + schedule::jitter(task.cfg.jitter);
    }
}

impl PairTask {
    /// The watches of a pair of live sides, when they are on.
    fn start_watches(&self) -> (Option<Arc<Watches>>, AbortOnDrop) {
        let cfg = &self.cfg;
        match (cfg.watch.enabled, cfg.live()) {
            (true, Some(specs)) => {
                let (w, tasks) = watches::start(
                    &cfg.name,
                    specs,
                    &cfg.options.path,
                    cfg.options.walk.excludes.clone(),
                    self.stop.clone(),
                );
                (Some(w), AbortOnDrop(tasks.into()))
            }
            _ => (None, AbortOnDrop(Vec::new())),
        }
    }

    /// A first walk that starts before the watches are in place cannot
    /// tell later rounds what is unchanged; a walk that does is worth a
    /// short wait.
    async fn watches_started(&mut self, watches: Option<&Watches>) -> ControlFlow<()> {
        let Some(w) = watches else {
            return ControlFlow::Continue(());
        };
        let limit = self.cfg.live().map_or(Duration::ZERO, |[s, t]| {
            s.connect_timeout.max(t.connect_timeout)
        });
        tokio::select! {
            _ = w.started(limit) => ControlFlow::Continue(()),
            _ = stopped(&mut self.stop) => ControlFlow::Break(()),
        }
    }

    /// Waits for the next round, a change, an early re-check or a stop.
    async fn wait(&mut self, watches: Option<&Watches>, next: Instant) -> Wake {
        let early_at = watches.and_then(|w| w.next_early(self.cfg.watch.settle));
        let early_due = async move {
            match early_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let changed = async move {
            match watches {
                Some(w) => w.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(next) => Wake::Round,
            _ = changed => Wake::Changed,
            _ = early_due => Wake::Early,
            _ = stopped(&mut self.stop) => Wake::Stop,
        }
    }

    /// The settings as of now. A reload since the last look may have moved
    /// the servers behind unchanged names: the same-ensemble answer goes.
    fn settings(&mut self) -> Arc<Globals> {
        if self.globals.has_changed().unwrap_or(false) {
            self.one_ensemble.forget();
        }
        self.globals.borrow_and_update().clone()
    }

    /// Re-checks the changed paths the watches say are due, between rounds.
    async fn early_recheck(&mut self, w: &Watches) -> ControlFlow<()> {
        let Some(early) = w.take_early(self.cfg.watch.settle) else {
            return ControlFlow::Continue(());
        };
        let started = Timestamp::now();
        let timer = Instant::now();
        let root = &self.cfg.options.path;
        let (scopes, paths) = match early {
            Early::Full => (vec![root.clone()], 0),
            Early::Paths(p) => (scopes_for(&p, &self.history.tracker, root), p.len()),
        };
        let (cfg, caches, one_ensemble) = (&self.cfg, &self.caches, &mut self.one_ensemble);
        let work = async move {
            let known = one_ensemble.known(cfg).await?;
            recheck_scopes(cfg, caches, scopes, paths, known).await
        };
        let result = tokio::select! {
            r = tokio::time::timeout(cfg.round_timeout, work) => r,
            _ = stopped(&mut self.stop) => return ControlFlow::Break(()),
        };
        let g = self.settings();
        match result {
            Ok(Ok((read, whole))) => {
                if read.counted_only {
                    w.require_full("a re-checked subtree had more differences than are listed");
                }
                let h = &mut self.history;
                let changes = h.tracker.recheck(started, &read.scopes, read.seen.clone());
                let now = Timestamp::now();
                if let Some(report) = &whole {
                    h.last_walk = Some(kept(report));
                    h.checks.last_full_walk = Some(now);
                }
                h.checks.early_rechecks += 1;
                h.checks.last_early_recheck = Some(now);
                h.checks.watch = Some(watch_status(w));
                self.reporter.early_failing = false;
                self.reporter
                    .report_early(&self.cfg, &g, h, &changes, &read, timer.elapsed())
                    .await;
            }
            Ok(Err(e)) => {
                self.one_ensemble.forget();
                self.reporter.early_failed(&self.cfg, w, &e.to_string());
            }
            Err(_) => {
                self.one_ensemble.forget();
                self.reporter
                    .early_failed(&self.cfg, w, "timed out (round_timeout)");
            }
        }
        ControlFlow::Continue(())
    }

    /// One round: read what needs reading, fold it into the history, look
    /// at the registrations, report.
    async fn round(&mut self, watches: Option<&Watches>, started_at: Instant) -> ControlFlow<()> {
        let started = Timestamp::now();
        self.history.round += 1;
        let lost = |w: &Watches| {
            w.sides()
                .iter()
                .any(|s| matches!(s, SideWatch::Disconnected | SideWatch::Down))
        };
        if watches.is_some_and(lost) {
            self.one_ensemble.forget();
        }
        let (plan, targeted) = self.plan(watches);
        let Some(read) = self.read(&plan, targeted).await else {
            info!(pair = %self.cfg.name, round = self.history.round, "stopping: round abandoned");
            return ControlFlow::Break(());
        };
        let elapsed = started_at.elapsed().as_secs_f64();
        note_plan(&mut self.history.checks, &plan);
        let outcome = self.fold(read, started, elapsed, watches);
        if outcome.is_err() {
            self.one_ensemble.forget();
        }
        self.history.checks.watch = watches.map(watch_status);
        if self.look_at_registrations().await.is_break() {
            return ControlFlow::Break(());
        }
        let g = self.settings();
        // Not raced against `stop`: a state file is always written whole.
        self.reporter
            .report(&self.cfg, &g, &mut self.history, started, outcome)
            .await;
        self.history.checks.early_rechecks = 0;
        ControlFlow::Continue(())
    }

    /// What this round reads, and the subtrees of a targeted round with the
    /// number of changed paths behind them.
    fn plan(&self, watches: Option<&Watches>) -> (Plan, Option<(Vec<String>, usize)>) {
        let (cfg, history) = (&self.cfg, &self.history);
        let every = cfg.watch.full_walk_every;
        let walk_due = (history.rounds_since_walk + 1 >= every).then(|| {
            format!("every {every} rounds (full_walk_every; ACL changes fire no watch event)")
        });
        let mut plan = match watches {
            None => Plan::Full("watches off".into()),
            Some(w) => w.plan(walk_due),
        };
        // A round that does not walk reports node counts from the latest
        // walk: there must be one.
        if !matches!(plan, Plan::Full(_)) && history.last_walk.is_none() {
            plan = Plan::Full("no full walk yet".into());
        }
        let Plan::Targeted(paths) = &plan else {
            return (plan, None);
        };
        let scopes = scopes_for(paths, &history.tracker, &cfg.options.path);
        if scopes.contains(&cfg.options.path) {
            return (Plan::Full("changes all over the tree".into()), None);
        }
        let paths = paths.len();
        (plan, Some((scopes, paths)))
    }

    /// Reads what `plan` says, within the round's timeout; `None` when
    /// stopped first.
    async fn read(
        &mut self,
        plan: &Plan,
        targeted: Option<(Vec<String>, usize)>,
    ) -> Option<Result<Read, String>> {
        let (cfg, caches, one_ensemble) = (&self.cfg, &self.caches, &mut self.one_ensemble);
        let work = async move {
            let known = one_ensemble.known(cfg).await?;
            match (plan, targeted) {
                (Plan::Full(_), _) => {
                    let mut options = cfg.options.clone();
                    options.acl_caches = [Some(caches[0].clone()), Some(caches[1].clone())];
                    let mut quiet = Progress::new(false);
                    compare_sides_known(&cfg.source, &cfg.target, &options, &mut quiet, known)
                        .await
                        .map(|r| Read::Walked(Box::new(r)))
                }
                (Plan::Targeted(_), Some((scopes, paths))) => {
                    recheck_scopes(cfg, caches, scopes, paths, known)
                        .await
                        .map(|(r, _)| Read::Rechecked(r))
                }
                _ => Ok(Read::Nothing),
            }
        };
        let outcome = tokio::select! {
            r = tokio::time::timeout(cfg.round_timeout, work) => r,
            _ = stopped(&mut self.stop) => return None,
        };
        Some(match outcome {
            Ok(Ok(read)) => Ok(read),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "round timed out after {} (round_timeout)",
                humantime::format_duration(cfg.round_timeout)
            )),
        })
    }

    /// Folds what the round read into the history: the report of the round
    /// and the drift it confirmed or healed, or why it failed.
    fn fold(
        &mut self,
        read: Result<Read, String>,
        started: Timestamp,
        elapsed: f64,
        watches: Option<&Watches>,
    ) -> Result<(CompareReport, Changes), String> {
        let history = &mut self.history;
        let (current, changes, rechecked) = match read {
            Ok(Read::Walked(report)) => {
                // Forget ACLs of nodes gone for two walks, so a churning
                // tree (queues, locks) does not grow the caches.
                for cache in &self.caches {
                    cache.end_round();
                }
                let changes = history.tracker.observe(started, seen_in(&report));
                history.last_walk = Some(kept(&report));
                history.checks.last_full_walk = Some(Timestamp::now());
                history.rounds_since_walk = 0;
                return Ok((*report, changes));
            }
            Ok(Read::Rechecked(r)) => {
                if r.counted_only {
                    if let Some(w) = watches {
                        w.require_full("a re-checked subtree had more differences than are listed");
                    }
                }
                let healed = history.tracker.recheck(started, &r.scopes, r.seen.clone());
                let current = history.tracker.current();
                let changes = healed.then(history.tracker.observe(started, current.clone()));
                history.checks.rechecked_paths = r.paths as u64;
                history.checks.rechecked_subtrees = r.scopes.len() as u64;
                (current, changes, Some(r))
            }
            Ok(Read::Nothing) => {
                // Nothing changed since the last look: every tracked
                // difference is still there, and this round saw it.
                let current = history.tracker.current();
                let changes = history.tracker.observe(started, current.clone());
                (current, changes, None)
            }
            Err(reason) => {
                if let Some(w) = watches {
                    w.require_full("the previous round failed");
                }
                return Err(reason);
            }
        };
        history.rounds_since_walk += 1;
        let report = history
            .last_walk
            .as_ref()
            .map(|last| derived_report(last, &current, elapsed, rechecked.as_ref()));
        report
            .map(|rep| (rep, changes))
            .ok_or_else(|| "no full walk yet".to_string())
    }

    /// `check ephemerals` of a pair with `expect`, within the round's
    /// timeout; `Break` when stopped first.
    async fn look_at_registrations(&mut self) -> ControlFlow<()> {
        let cfg = &self.cfg;
        let Some(rc) = &cfg.registrations else {
            return ControlFlow::Continue(());
        };
        let limit = self.globals.borrow().state_list_limit;
        let look = tokio::time::timeout(cfg.round_timeout, self.registrations.look(cfg, rc, limit));
        let looked = tokio::select! {
            r = look => r.unwrap_or_else(|_| Looked::unknown(rc, "timed out (round_timeout)")),
            _ = stopped(&mut self.stop) => {
                info!(pair = %cfg.name, round = self.history.round, "stopping: round abandoned");
                return ControlFlow::Break(());
            }
        };
        self.history.registrations = Some(looked);
        ControlFlow::Continue(())
    }
}

/// The round's kind and why it walks, in the state's checks; the figures
/// of a targeted round are set once it has read.
fn note_plan(checks: &mut Checks, plan: &Plan) {
    checks.round_kind = Some(match plan {
        Plan::Full(_) => RoundKind::FullWalk,
        Plan::Targeted(_) => RoundKind::Targeted,
        Plan::Clean => RoundKind::WatchClean,
    });
    checks.full_walk_reason = match plan {
        Plan::Full(reason) => Some(reason.clone()),
        _ => None,
    };
    checks.rechecked_paths = 0;
    checks.rechecked_subtrees = 0;
}

/// What Nagios would be told of `state`: with the `[nagios]` thresholds
/// when they are configured, the defaults otherwise.
fn nagios_state(g: &Globals, state: &PairState, now: Timestamp) -> State {
    match &g.nagios {
        Some(n) => verdict(state, &n.check, now, None).state,
        None => verdict(state, &default_check(), now, None).state,
    }
}

/// The round's own duration: the comparison's when it ran, the wall time
/// from start to end otherwise.
fn round_seconds(
    outcome: &Result<CompareReport, String>,
    started: Timestamp,
    finished: Timestamp,
) -> f64 {
    match outcome {
        Ok(r) => r.summary.elapsed_seconds,
        Err(_) => started.seconds_until(finished),
    }
}

fn watch_status(w: &Watches) -> WatchStatus {
    let [s, t] = w.sides();
    WatchStatus {
        source: s.as_str().to_string(),
        target: t.as_str().to_string(),
    }
}

/// Reports rounds, and remembers what it last said so logs speak of changes.
#[derive(Default)]
struct Reporter {
    ganglia: Option<GangliaOut>,
    last_status: Option<PairStatus>,
    last_reason: Option<String>,
    nagios_failing: bool,
    /// Early re-checks are failing: said once at warn.
    early_failing: bool,
}

impl Reporter {
    async fn report(
        &mut self,
        cfg: &PairConfig,
        g: &Globals,
        history: &mut History,
        started: Timestamp,
        outcome: Result<(CompareReport, Changes), String>,
    ) {
        let outcome = outcome.map(|(report, changes)| {
            log_changes(&cfg.name, &changes);
            report
        });
        let (reason, nodes, elapsed) = match &outcome {
            Ok(report) => {
                history.summary = Some(RoundSummary::from_report(
                    history.round,
                    Timestamp::now(),
                    &report.summary,
                ));
                history.last_success = Some(Timestamp::now());
                (
                    None,
                    Some(report.summary.source.nodes),
                    report.summary.elapsed_seconds,
                )
            }
            Err(reason) => (Some(reason.clone()), None, 0.0),
        };
        let finished = Timestamp::now();
        history.started = started;
        history.finished = finished;
        history.reason = reason;
        let state = build_state(cfg, g, history, finished);
        // Logged before the state file is written, so whoever sees the new
        // state also finds its round in the log.
        self.log_round(cfg, &state, nodes, elapsed);
        write_state_file(cfg, g, &state).await;
        if let Some(registry) = &g.prometheus {
            let how = Update::Round {
                success: outcome.is_ok(),
                seconds: round_seconds(&outcome, started, finished),
                subtrees: outcome.as_ref().ok().map(crate::prometheus::pair::subtrees),
            };
            registry.publish(&state, nagios_state(g, &state, finished), how);
        }

        if let Some(n) = &g.nagios {
            let result = verdict(&state, &n.check, finished, None);
            self.send_passive(cfg, n, &cfg.nagios_service, finished, &result)
                .await;
            if let Some(look) = &history.registrations {
                let service = registrations_service(cfg);
                self.send_passive(cfg, n, &service, finished, &look.result)
                    .await;
            }
        }

        if !g.ganglia.is_empty() {
            let out = GangliaOut::current(&mut self.ganglia, cfg, &g.ganglia);
            if let Some(out) = out {
                out.emit(cfg, outcome.as_ref().ok(), &state);
            }
        } else {
            self.ganglia = None;
        }
    }

    /// Reports an early re-check: the state file, and a passive result if
    /// the pair's status moved (a heal or a UNKNOWN pair's differences do
    /// not wait for the round).
    async fn report_early(
        &mut self,
        cfg: &PairConfig,
        g: &Globals,
        history: &History,
        changes: &Changes,
        read: &Rechecked,
        took: Duration,
    ) {
        log_changes(&cfg.name, changes);
        let now = Timestamp::now();
        let state = build_state(cfg, g, history, now);
        write_state_file(cfg, g, &state).await;
        if let Some(registry) = &g.prometheus {
            registry.publish(&state, nagios_state(g, &state, now), Update::Early);
        }
        if self.last_status.is_some() && self.last_status != Some(state.status) {
            if let Some(n) = &g.nagios {
                let result = verdict(&state, &n.check, now, None);
                self.send_passive(cfg, n, &cfg.nagios_service, now, &result)
                    .await;
            }
            info!(
                pair = %cfg.name,
                round = state.round,
                status = state.status.as_str(),
                "status changed on an early re-check"
            );
            self.last_status = Some(state.status);
        }
        debug!(
            pair = %cfg.name,
            paths = read.paths,
            subtrees = read.scopes.len(),
            differences = read.seen.len(),
            confirmed = state.confirmed_total,
            unconfirmed = state.unconfirmed_total,
            elapsed_s = (took.as_secs_f64() * 1000.0).round() / 1000.0,
            "early re-check"
        );
    }

    /// An early re-check could not read: the next round walks in full.
    fn early_failed(&mut self, cfg: &PairConfig, w: &Watches, reason: &str) {
        w.require_full("an early re-check failed");
        if self.early_failing {
            debug!(pair = %cfg.name, reason, "early re-check failed");
        } else {
            warn!(pair = %cfg.name, reason, "early re-check failed; the next round walks in full");
        }
        self.early_failing = true;
    }

    async fn send_passive(
        &mut self,
        cfg: &PairConfig,
        n: &NagiosOutput,
        service: &str,
        at: Timestamp,
        result: &CheckResult,
    ) {
        let line = passive::command_line(at.epoch_seconds(), &n.host_name, service, result);
        let file = n.command_file.clone();
        let sent = tokio::task::spawn_blocking(move || passive::submit(&file, &line)).await;
        match sent {
            Ok(Ok(())) => {
                if self.nagios_failing {
                    info!(pair = %cfg.name, "passive results reach Nagios again");
                }
                self.nagios_failing = false;
            }
            Ok(Err(e)) => {
                // Once per outage at warn; Nagios may be down for a while.
                if self.nagios_failing {
                    debug!(pair = %cfg.name, error = %e, "passive result skipped");
                } else {
                    warn!(pair = %cfg.name, error = %e, "passive result skipped");
                }
                self.nagios_failing = true;
            }
            Err(e) => error!(pair = %cfg.name, error = %e, "passive result writer failed"),
        }
    }

    fn log_round(&mut self, cfg: &PairConfig, s: &PairState, nodes: Option<u64>, elapsed: f64) {
        match (s.status, self.last_status) {
            // A pair down for hours should not fill the log with warnings:
            // warn when it fails or its reason changes, then one info a round.
            (PairStatus::Unknown, _) if s.reason != self.last_reason => warn!(
                pair = %cfg.name,
                round = s.round,
                reason = s.reason.as_deref().unwrap_or(""),
                "round failed; pair UNKNOWN"
            ),
            (PairStatus::Unknown, _) => info!(
                pair = %cfg.name,
                round = s.round,
                reason = s.reason.as_deref().unwrap_or(""),
                "round failed again; pair still UNKNOWN"
            ),
            (status, last) => {
                if last == Some(PairStatus::Unknown) {
                    info!(pair = %cfg.name, round = s.round, "pair readable again");
                }
                info!(
                    pair = %cfg.name,
                    round = s.round,
                    status = status.as_str(),
                    confirmed = s.confirmed_total,
                    unconfirmed = s.unconfirmed_total,
                    lag_s = s.lag_seconds,
                    nodes = nodes.unwrap_or(0),
                    elapsed_s = (elapsed * 1000.0).round() / 1000.0,
                    kind = s.checks.round_kind.map(RoundKind::as_str).unwrap_or(""),
                    rechecked = s.checks.rechecked_paths,
                    early = s.checks.early_rechecks,
                    "round finished"
                );
            }
        }
        self.last_status = Some(s.status);
        self.last_reason = s.reason.clone();
    }
}

fn log_changes(pair: &str, changes: &Changes) {
    log_listed(
        &changes.confirmed,
        |path, kind| warn!(pair, path = %path, kind = %kind, "drift confirmed"),
        |more| warn!(pair, more, "more drift confirmed (see the state file)"),
    );
    log_listed(
        &changes.healed,
        |path, kind| info!(pair, path = %path, kind = %kind, "drift healed"),
        |more| info!(pair, more, "more drift healed"),
    );
}

/// Logs the first [`LOGGED_CHANGES`] of `changes` one by one, then how many
/// more there are. (Two closures: a log line's level is fixed where it is
/// written.)
fn log_listed(changes: &[(String, String)], one: impl Fn(&str, &str), more: impl Fn(usize)) {
    for (path, kind) in changes.iter().take(LOGGED_CHANGES) {
        one(path, kind);
    }
    if changes.len() > LOGGED_CHANGES {
        more(changes.len() - LOGGED_CHANGES);
    }
}

async fn write_state_file(cfg: &PairConfig, g: &Globals, state: &PairState) {
    let path = state_path(&g.state_dir, &cfg.name);
    let to_write = state.clone();
    let written = tokio::task::spawn_blocking(move || write_state(&path, &to_write)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!(pair = %cfg.name, error = %e, "state file not written"),
        Err(e) => error!(pair = %cfg.name, error = %e, "state writer failed"),
    }
}

/// The state as of `now`: the latest round's times and outcome, the
/// differences as tracked now (early re-checks included).
fn build_state(cfg: &PairConfig, g: &Globals, history: &History, now: Timestamp) -> PairState {
    let reason = history.reason.clone();
    let view = history.tracker.view(now);
    let (by_kind, confirmed_total, unreadable_total) =
        crate::compare::tally(view.confirmed.iter().filter_map(|e| {
            DiffKind::ALL
                .iter()
                .find(|k| k.as_str() == e.kind)
                .map(|k| (*k, e.weight()))
        }));
    let confirmed_by_kind = by_kind
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
    let unconfirmed_total = view.unconfirmed_total();
    let lag_since = view.unconfirmed.iter().map(|t| t.first_seen).min();
    let mut unconfirmed_by_kind: BTreeMap<String, u64> = DiffKind::DIFFERENCES
        .iter()
        .map(|k| (k.as_str().to_string(), 0))
        .collect();
    for e in &view.unconfirmed {
        *unconfirmed_by_kind.entry(e.kind.clone()).or_default() += e.weight();
    }
    let status = match (&reason, confirmed_total, unreadable_total) {
        (Some(_), _, _) => PairStatus::Unknown,
        (None, 0, 0) => PairStatus::Ok,
        (None, 0, _) => PairStatus::Incomplete,
        (None, _, _) => PairStatus::Drift,
    };
    let limit = |mut v: Vec<_>| {
        v.truncate(g.state_list_limit);
        v
    };
    PairState {
        schema: STATE_SCHEMA,
        pair: cfg.name.clone(),
        source: cfg.source.describe(),
        target: cfg.target.describe(),
        path: cfg.options.path.clone(),
        round: history.round,
        started: history.started,
        finished: history.finished,
        interval_seconds: cfg.interval.as_secs_f64(),
        status,
        reason,
        confirm: ConfirmSettings {
            rounds: cfg.confirm.rounds,
            after_seconds: cfg.confirm.min_age.as_secs_f64(),
        },
        summary: history.summary.clone(),
        confirmed: limit(view.confirmed),
        confirmed_total,
        confirmed_by_kind,
        unreadable_total,
        unconfirmed: limit(view.unconfirmed),
        unconfirmed_total,
        unconfirmed_by_kind,
        lag_seconds: view.lag_seconds,
        lag_since,
        last_success: history.last_success,
        checks: history.checks.clone(),
        registrations: history.registrations.as_ref().map(|l| l.state.clone()),
    }
}

/// How long the supervisor waits for pairs to finish writing on shutdown.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(30);
