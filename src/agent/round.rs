//! One pair's life in the agent: a task that runs a round every interval and
//! reports each one ([`super::report`]), and re-checks changed paths early
//! in between ([`super::recheck`]).
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

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::aclcache::AclCache;
use crate::compare::compare_sides_known;
use crate::error::Error;
use crate::gmetric::Channel;
use crate::identity::Evidence;
use crate::progress::Progress;
use crate::prometheus::Registry;
use crate::report::CompareReport;
use crate::stop::stopped;

use super::config::{NagiosOutput, PairConfig, ProbeSettings};
use super::confirm::{seen_in, Changes, Tracker};
use super::recheck::{derived_report, kept, recheck_scopes, scopes_for, Rechecked};
use super::registrations::{Looked, Registrations};
use super::report::Reporter;
use super::schedule;
use super::watch::{self as watches, Early, Plan, SideWatch, Watches};
use crate::report::state::{
    read_state, state_path, Checks, Reads, RoundKind, RoundSummary, StateError, Timestamp,
    WatchStatus,
};

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

/// What a pair carries from round to round.
pub(super) struct History {
    pub(super) round: u64,
    pub(super) tracker: Tracker,
    pub(super) summary: Option<RoundSummary>,
    pub(super) last_success: Option<Timestamp>,
    /// The latest round's times and failure, for the state written by early
    /// re-checks between rounds.
    pub(super) started: Timestamp,
    pub(super) finished: Timestamp,
    pub(super) reason: Option<String>,
    pub(super) checks: Checks,
    /// The latest full walk's report (its difference list dropped): rounds
    /// that do not walk report node counts and subtrees from it.
    pub(super) last_walk: Option<CompareReport>,
    /// Rounds since the latest full walk.
    pub(super) rounds_since_walk: u64,
    /// The latest round's look at the registrations (`expect`).
    pub(super) registrations: Option<Looked>,
    /// Where the full walks' reads went, added up since the state began.
    pub(super) reads: Reads,
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
        reads: Reads::default(),
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
        reads: state.reads,
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
                history.reads.add_walk(&report);
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

fn watch_status(w: &Watches) -> WatchStatus {
    let [s, t] = w.sides();
    WatchStatus {
        source: s.as_str().to_string(),
        target: t.as_str().to_string(),
    }
}

/// How long the supervisor waits for pairs to finish writing on shutdown.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(30);
