//! What Nagios is told about a pair, from its state file: the agent's passive
//! results and `check parity --state` both come from here, so they say the
//! same thing in the same words as a direct `check parity`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::digest::DIGEST_VERSION;
use crate::nagios::output::{number, CheckResult, Perf, State};
use crate::nagios::parity::ParityCheck;
use crate::report::{
    CompareReport, DiffKind, Difference, Endpoint, NodeDetail, Settings, SideTotals, Summary,
};
use crate::walker::EphemeralPolicy;

use super::state::{PairState, Status, Timestamp, Totals};

/// The check's answer for `state` at `now`. A state older than `max_age`
/// (the agent stopped, or is stuck) is UNKNOWN, as is a pair whose latest
/// round could not compare. Otherwise only confirmed drift counts against the
/// thresholds; differences still inside the confirmation window are shown
/// (count and lag) but do not alert.
pub fn verdict(
    state: &PairState,
    check: &ParityCheck,
    now: Timestamp,
    max_age: Option<Duration>,
) -> CheckResult {
    let age = state.finished.seconds_until(now);
    if let Some(max) = max_age {
        if age > max.as_secs_f64() {
            return CheckResult::unknown(
                "PARITY",
                format!(
                    "state of pair {} is {}s old (round {} finished {}); is the agent running?",
                    state.pair,
                    number(age.round()),
                    state.round,
                    state.finished
                ),
            );
        }
    }
    if state.status == Status::Unknown {
        let last = match state.last_success {
            Some(t) => format!("last success {t}"),
            None => "no round has succeeded yet".to_string(),
        };
        let known = match state.confirmed_total {
            0 => String::new(),
            n => format!("; last known drift: {n} confirmed"),
        };
        let mut r = CheckResult::unknown(
            "PARITY",
            format!(
                "{} (round {}, {last}{known})",
                state.reason.as_deref().unwrap_or("the round failed"),
                state.round
            ),
        );
        r.long_output = drift_lines(state, check.details);
        return r;
    }
    let mut result = check.judge(&as_report(state, check.details));
    if state.unconfirmed_total > 0 {
        result.summary.push_str(&format!(
            "; {} unconfirmed, oldest {}s",
            state.unconfirmed_total,
            number(state.lag_seconds.round())
        ));
    }
    result
        .perfdata
        .push(Perf::count("unconfirmed", state.unconfirmed_total));
    result.perfdata.push(Perf::seconds(
        "lag",
        (state.lag_seconds * 1000.0).round() / 1000.0,
    ));
    result
}

fn drift_lines(state: &PairState, details: usize) -> Vec<String> {
    state
        .confirmed
        .iter()
        .take(details)
        .map(|t| format!("{} {}", t.kind, t.path))
        .collect()
}

fn side(t: &Totals) -> SideTotals {
    SideTotals {
        nodes: t.nodes,
        ephemerals: t.ephemerals,
        bytes: t.bytes,
        unreadable: t.unreadable,
    }
}

/// The pair's confirmed drift as a report, for [`ParityCheck::judge`].
fn as_report(state: &PairState, details: usize) -> CompareReport {
    let summary = state.summary.as_ref();
    let by_kind: BTreeMap<&'static str, u64> = DiffKind::ALL
        .iter()
        .map(|k| {
            let n = state.confirmed_by_kind.get(k.as_str()).copied();
            (k.as_str(), n.unwrap_or(0))
        })
        .collect();
    let differences: Vec<Difference> = state
        .confirmed
        .iter()
        .take(details)
        .filter_map(|t| {
            let kind = DiffKind::ALL.into_iter().find(|k| k.as_str() == t.kind)?;
            Some(Difference {
                path: t.path.clone(),
                kind,
                subtree_nodes: None,
                source: NodeDetail::default(),
                target: NodeDetail::default(),
            })
        })
        .collect();
    let endpoint = |connect: &str| Endpoint {
        connect: connect.to_string(),
        path: state.path.clone(),
    };
    CompareReport {
        zkparity_version: env!("CARGO_PKG_VERSION"),
        digest_version: DIGEST_VERSION,
        source: endpoint(&state.source),
        target: endpoint(&state.target),
        settings: Settings {
            ephemerals: EphemeralPolicy::Count,
            excludes: Vec::new(),
            subtree_depth: 0,
            recheck_delay_seconds: None,
            limit: details,
        },
        summary: Summary {
            identical: state.confirmed_total == 0,
            source: summary.map(|s| side(&s.source)).unwrap_or_default(),
            target: summary.map(|s| side(&s.target)).unwrap_or_default(),
            differences: by_kind,
            confirmed: state.confirmed_total,
            transient: summary.map(|s| s.transient).unwrap_or(0),
            rechecked: summary.is_some_and(|s| s.rechecked),
            elapsed_seconds: summary.map(|s| s.elapsed_seconds).unwrap_or(0.0),
            reads: BTreeMap::new(),
        },
        subtrees: Vec::new(),
        differences_not_listed: state
            .confirmed_total
            .saturating_sub(state.confirmed.len().min(details) as u64),
        differences,
    }
}

/// The state Nagios gets for a pair, by its status alone (for logs).
pub fn status_state(status: Status) -> State {
    match status {
        Status::Ok => State::Ok,
        Status::Drift => State::Critical,
        Status::Unknown => State::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::tests::sample;
    use super::super::state::{RoundSummary, Tracked};
    use super::*;
    use crate::nagios::parity::DEFAULT_CRITICAL_KINDS;

    fn check() -> ParityCheck {
        ParityCheck {
            warning: "0".parse().unwrap(),
            critical: None,
            critical_kinds: DEFAULT_CRITICAL_KINDS.to_vec(),
            details: 10,
        }
    }

    fn with_summary(mut s: PairState) -> PairState {
        s.summary = Some(RoundSummary {
            round: s.round,
            finished: s.finished,
            identical: false,
            source: Totals {
                nodes: 12,
                ..Totals::default()
            },
            target: Totals {
                nodes: 11,
                ..Totals::default()
            },
            differences: BTreeMap::new(),
            confirmed: 1,
            transient: 0,
            rechecked: true,
            elapsed_seconds: 0.5,
            reads: BTreeMap::new(),
        });
        s
    }

    #[test]
    fn confirmed_data_drift_is_critical_with_the_check_parity_wording() {
        let r = verdict(&with_summary(sample()), &check(), sample().finished, None);
        assert_eq!(r.state, State::Critical);
        let text = r.render();
        assert!(
            text.starts_with(
                "ZKPARITY PARITY CRITICAL - 1 confirmed difference (data 1); source 12 nodes, target 11"
            ),
            "{text}"
        );
        assert!(text.contains("\ndata /brokers/ids\n"), "{text}");
        assert!(text.contains(" unconfirmed=0;;;0 lag=0s;;;0"), "{text}");
    }

    #[test]
    fn unconfirmed_differences_show_their_lag_but_do_not_alert() {
        let mut s = with_summary(sample());
        s.status = Status::Ok;
        s.unconfirmed = std::mem::take(&mut s.confirmed);
        s.unconfirmed_total = 1;
        s.confirmed_total = 0;
        s.confirmed_by_kind.clear();
        s.lag_seconds = 4.4;
        let r = verdict(&s, &check(), s.finished, None);
        assert_eq!(r.state, State::Ok);
        assert!(
            r.summary
                .ends_with("source and target match: 12 nodes; 1 unconfirmed, oldest 4s"),
            "{}",
            r.summary
        );
        assert!(r.render().contains("lag=4.4s"));
    }

    #[test]
    fn a_failed_round_is_unknown_with_its_reason_and_the_last_known_drift() {
        let mut s = sample();
        s.status = Status::Unknown;
        s.reason = Some("cannot connect to the source ensemble old:2181: refused".into());
        let r = verdict(&s, &check(), s.finished, None);
        assert_eq!(r.state, State::Unknown);
        assert!(
            r.summary.contains("refused (round 7, last success"),
            "{}",
            r.summary
        );
        assert!(
            r.summary.ends_with("last known drift: 1 confirmed)"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn a_stale_state_is_unknown() {
        let s = sample();
        let later = Timestamp(s.finished.0 + Duration::from_secs(600));
        let r = verdict(&s, &check(), later, Some(Duration::from_secs(300)));
        assert_eq!(r.state, State::Unknown);
        assert!(r.summary.contains("600s old"), "{}", r.summary);
        let r = verdict(&s, &check(), later, Some(Duration::from_secs(900)));
        assert_eq!(r.state, State::Critical);
    }

    #[test]
    fn counted_only_drift_still_counts() {
        let mut s = with_summary(sample());
        s.confirmed.push(Tracked {
            path: "*".into(),
            kind: "extra_in_target".into(),
            first_seen: s.started,
            age_seconds: 1.0,
            rounds: 2,
            count: Some(5),
        });
        s.confirmed_total = 6;
        s.confirmed_by_kind.insert("extra_in_target".into(), 5);
        let r = verdict(&s, &check(), s.finished, None);
        assert!(
            r.summary.starts_with("6 confirmed differences"),
            "{}",
            r.summary
        );
    }
}
