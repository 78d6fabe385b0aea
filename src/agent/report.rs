//! What a round (or an early re-check) tells: the state file, Nagios's
//! passive results, Ganglia, Prometheus and the log; and the log speaks of
//! changes rather than repeating itself.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::{debug, error, info, warn};

use crate::nagios::output::{CheckResult, State};
use crate::prometheus::Update;
use crate::report::{CompareReport, DiffKind};

use super::config::{default_check, NagiosOutput, PairConfig};
use super::confirm::Changes;
use super::ganglia::GangliaOut;
use super::recheck::Rechecked;
use super::registrations::registrations_service;
use super::round::{Globals, History};
use super::verdict::verdict;
use super::watch::Watches;
use crate::nagios::passive;
use crate::report::state::{
    state_path, write_state, ConfirmSettings, PairState, PairStatus, RoundKind, RoundSummary,
    Timestamp, STATE_SCHEMA,
};

/// Drift paths named in the log per round; the state file has them all.
const LOGGED_CHANGES: usize = 20;

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

/// Reports rounds, and remembers what it last said so logs speak of changes.
#[derive(Default)]
pub(super) struct Reporter {
    ganglia: Option<GangliaOut>,
    last_status: Option<PairStatus>,
    last_reason: Option<String>,
    nagios_failing: bool,
    /// Early re-checks are failing: said once at warn.
    pub(super) early_failing: bool,
}

impl Reporter {
    pub(super) async fn report(
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
    pub(super) async fn report_early(
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
    pub(super) fn early_failed(&mut self, cfg: &PairConfig, w: &Watches, reason: &str) {
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
        reads: history.reads.clone(),
    }
}
