//! One pair's life in the agent: a task that runs a round every interval and
//! reports each one.
//!
//! A round opens fresh sessions to both ensembles (through
//! [`compare`](crate::compare::compare)) and closes them at its end, so a
//! server restart, a lost quorum or an expired session costs at most that
//! round: it is reported UNKNOWN and the next round starts from new
//! sessions. Events missed while disconnected cannot matter either, since
//! every round walks the whole subtree. What survives from round to round is
//! the confirmation history and the ACL caches (whose entries are checked
//! against every node's fresh stat, so they stay valid across sessions).
//!
//! Stopping is prompt: a stop request abandons a comparison in progress or a
//! wait, but never interrupts a state file being written.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::aclcache::AclCache;
use crate::compare::compare;
use crate::gmetric::Channel;
use crate::nagios::output::CheckResult;
use crate::progress::Progress;
use crate::report::CompareReport;

use super::config::{NagiosOutput, PairConfig, ProbeSettings};
use super::confirm::{seen_in, Changes, Tracker};
use super::ganglia::GangliaOut;
use super::passive;
use super::schedule;
use super::state::{
    read_state, state_path, write_state, ConfirmSettings, PairState, RoundSummary, StateError,
    Status, Timestamp, STATE_SCHEMA,
};
use super::verdict::verdict;

/// Settings every pair reads at each round, replaced on reload.
#[derive(Debug)]
pub struct Globals {
    pub state_dir: PathBuf,
    pub state_list_limit: usize,
    pub nagios: Option<NagiosOutput>,
    pub ganglia: Vec<Channel>,
    pub probes: Option<ProbeSettings>,
}

/// Drift paths named in the log per round; the state file has them all.
const LOGGED_CHANGES: usize = 20;

/// Resolves once a stop is requested (or the supervisor is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// What a pair carries from round to round.
struct History {
    round: u64,
    tracker: Tracker,
    summary: Option<RoundSummary>,
    last_success: Option<Timestamp>,
}

/// Picks up the history a previous run of the agent left in the state file,
/// if it is about the same comparison.
fn restore(cfg: &PairConfig, globals: &Globals) -> History {
    let fresh = History {
        round: 0,
        tracker: Tracker::new(cfg.confirm),
        summary: None,
        last_success: None,
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
    let same_comparison = state.source == cfg.source.connect.to_string()
        && state.target == cfg.target.connect.to_string()
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
    }
}

/// Runs rounds of `cfg` until told to stop.
pub async fn run_pair(
    cfg: Arc<PairConfig>,
    globals: watch::Receiver<Arc<Globals>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut history = restore(&cfg, &globals.borrow());
    history.tracker.set_policy(cfg.confirm);
    let caches = [AclCache::new(), AclCache::new()];
    let mut reporter = Reporter::default();
    let mut next = Instant::now() + schedule::jitter(cfg.jitter);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stopped(&mut stop) => return,
        }
        let started_at = Instant::now();
        let started = Timestamp::now();
        history.round += 1;
        let mut options = cfg.options.clone();
        options.acl_caches = [Some(caches[0].clone()), Some(caches[1].clone())];
        let work = async {
            let mut quiet = Progress::new(false);
            tokio::time::timeout(
                cfg.round_timeout,
                compare(&cfg.source, &cfg.target, &options, &mut quiet),
            )
            .await
        };
        let outcome = tokio::select! {
            r = work => r,
            _ = stopped(&mut stop) => {
                info!(pair = %cfg.name, round = history.round, "stopping: round abandoned");
                return;
            }
        };
        let outcome: Result<CompareReport, String> = match outcome {
            Ok(Ok(report)) => {
                // Forget ACLs of nodes gone for two rounds, so a churning
                // tree (queues, locks) does not grow the caches.
                for cache in &caches {
                    cache.end_round();
                }
                Ok(report)
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "round timed out after {} (round_timeout)",
                humantime::format_duration(cfg.round_timeout)
            )),
        };
        let g = globals.borrow().clone();
        // Not raced against `stop`: a state file is always written whole.
        reporter
            .report(&cfg, &g, &mut history, started, outcome)
            .await;
        next = schedule::next_start(started_at, Instant::now(), cfg.interval)
            + schedule::jitter(cfg.jitter);
    }
}

/// Reports rounds, and remembers what it last said so logs speak of changes.
#[derive(Default)]
struct Reporter {
    ganglia: Option<GangliaOut>,
    last_status: Option<Status>,
    last_reason: Option<String>,
    nagios_failing: bool,
}

impl Reporter {
    async fn report(
        &mut self,
        cfg: &PairConfig,
        g: &Globals,
        history: &mut History,
        started: Timestamp,
        outcome: Result<CompareReport, String>,
    ) {
        let (reason, nodes, elapsed) = match &outcome {
            Ok(report) => {
                let changes = history.tracker.observe(started, seen_in(report));
                log_changes(&cfg.name, &changes);
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
        let state = build_state(cfg, g, history, started, finished, reason);

        let path = state_path(&g.state_dir, &cfg.name);
        let to_write = state.clone();
        let written = tokio::task::spawn_blocking(move || write_state(&path, &to_write)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(pair = %cfg.name, error = %e, "state file not written"),
            Err(e) => error!(pair = %cfg.name, error = %e, "state writer failed"),
        }

        if let Some(n) = &g.nagios {
            let result = verdict(&state, &n.check, finished, None);
            self.send_passive(cfg, n, finished, &result).await;
        }

        if !g.ganglia.is_empty() {
            let out = GangliaOut::current(&mut self.ganglia, cfg, &g.ganglia);
            if let Some(out) = out {
                out.emit(cfg, outcome.as_ref().ok(), &state);
            }
        } else {
            self.ganglia = None;
        }

        self.log_round(cfg, &state, nodes, elapsed);
    }

    async fn send_passive(
        &mut self,
        cfg: &PairConfig,
        n: &NagiosOutput,
        at: Timestamp,
        result: &CheckResult,
    ) {
        let line = passive::command_line(
            at.epoch_seconds(),
            &n.host_name,
            &cfg.nagios_service,
            result,
        );
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
            (Status::Unknown, _) if s.reason != self.last_reason => warn!(
                pair = %cfg.name,
                round = s.round,
                reason = s.reason.as_deref().unwrap_or(""),
                "round failed; pair UNKNOWN"
            ),
            (Status::Unknown, _) => info!(
                pair = %cfg.name,
                round = s.round,
                reason = s.reason.as_deref().unwrap_or(""),
                "round failed again; pair still UNKNOWN"
            ),
            (status, last) => {
                if last == Some(Status::Unknown) {
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
                    "round finished"
                );
            }
        }
        self.last_status = Some(s.status);
        self.last_reason = s.reason.clone();
    }
}

fn log_changes(pair: &str, changes: &Changes) {
    for (path, kind) in changes.confirmed.iter().take(LOGGED_CHANGES) {
        warn!(pair, path = %path, kind = %kind, "drift confirmed");
    }
    if changes.confirmed.len() > LOGGED_CHANGES {
        warn!(
            pair,
            more = changes.confirmed.len() - LOGGED_CHANGES,
            "more drift confirmed (see the state file)"
        );
    }
    for (path, kind) in changes.healed.iter().take(LOGGED_CHANGES) {
        info!(pair, path = %path, kind = %kind, "drift healed");
    }
    if changes.healed.len() > LOGGED_CHANGES {
        info!(
            pair,
            more = changes.healed.len() - LOGGED_CHANGES,
            "more drift healed"
        );
    }
}

fn build_state(
    cfg: &PairConfig,
    g: &Globals,
    history: &History,
    started: Timestamp,
    finished: Timestamp,
    reason: Option<String>,
) -> PairState {
    let view = history.tracker.view(finished);
    let mut confirmed_by_kind: std::collections::BTreeMap<String, u64> =
        crate::report::DiffKind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), 0))
            .collect();
    for e in &view.confirmed {
        *confirmed_by_kind.entry(e.kind.clone()).or_default() += e.weight();
    }
    let (confirmed_total, unconfirmed_total) = (view.confirmed_total(), view.unconfirmed_total());
    let status = match (&reason, confirmed_total) {
        (Some(_), _) => Status::Unknown,
        (None, 0) => Status::Ok,
        (None, _) => Status::Drift,
    };
    let limit = |mut v: Vec<_>| {
        v.truncate(g.state_list_limit);
        v
    };
    PairState {
        schema: STATE_SCHEMA,
        pair: cfg.name.clone(),
        source: cfg.source.connect.to_string(),
        target: cfg.target.connect.to_string(),
        path: cfg.options.path.clone(),
        round: history.round,
        started,
        finished,
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
        unconfirmed: limit(view.unconfirmed),
        unconfirmed_total,
        lag_seconds: view.lag_seconds,
        last_success: history.last_success,
    }
}

/// How long the supervisor waits for pairs to finish writing on shutdown.
pub const STOP_GRACE: Duration = Duration::from_secs(30);
