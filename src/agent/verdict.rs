//! What Nagios is told about a pair, from its state: one verdict for the
//! agent's passive results and for `check parity --state`, so both say the
//! same words about the same state file, with the same age.

use std::path::Path;
use std::time::Duration;

use crate::nagios::output::CheckResult;
use crate::nagios::parity::{ParityCheck, ParityFacts};

use crate::report::state::{read_state, PairState, PairStatus, Timestamp};

/// The check's answer for `state` at `now`. A state older than `max_age`
/// (the agent stopped or stuck) is UNKNOWN, as is a pair whose latest round
/// could not compare. Otherwise confirmed drift is judged like a live
/// comparison's confirmed differences; differences still inside the
/// confirmation window are shown ("not yet confirmed", perfdata
/// `unconfirmed`) but do not alert.
pub(crate) fn verdict(
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
                    "state of pair {} is {}s old, more than --max-age {}s (is the agent running?)",
                    state.pair,
                    age as u64,
                    max.as_secs()
                ),
            );
        }
    }
    if state.status == PairStatus::Unknown {
        let reason = state
            .reason
            .as_deref()
            .unwrap_or("the last round could not compare");
        return CheckResult::unknown("PARITY", format!("pair {}: {reason}", state.pair));
    }
    check.judge_facts(&facts(state, age))
}

/// `check parity --state FILE`: the verdict on the state file as it is now;
/// a file that cannot be read is UNKNOWN with the reason.
pub fn verdict_of_file(path: &Path, check: &ParityCheck, max_age: Duration) -> CheckResult {
    match read_state(path) {
        Ok(state) => verdict(&state, check, Timestamp::now(), Some(max_age)),
        Err(e) => CheckResult::unknown("PARITY", e.to_string()),
    }
}

/// The state's confirmed drift, as a live comparison's confirmed
/// differences; what is not yet confirmed takes the place of the healed.
fn facts(state: &PairState, age_seconds: f64) -> ParityFacts {
    let summary = state.summary.as_ref();
    ParityFacts {
        source_nodes: summary.map_or(0, |s| s.source.nodes),
        target_nodes: summary.map_or(0, |s| s.target.nodes),
        by_kind: state.confirmed_by_kind.clone(),
        total: state.confirmed_total,
        unreadable: state.unreadable_total,
        transient: state.unconfirmed_total,
        transient_label: "unconfirmed",
        elapsed_seconds: summary.map_or(0.0, |s| s.elapsed_seconds),
        listed: state
            .confirmed
            .iter()
            .map(|t| (t.kind.clone(), t.path.clone()))
            .collect(),
        note: Some(format!(
            "agent round {} of pair {}, {age_seconds:.0}s ago",
            state.round, state.pair
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::nagios::output::State;
    use crate::nagios::parity::DEFAULT_CRITICAL_KINDS;
    use crate::report::state::tests::sample;
    use crate::report::state::{RoundSummary, Totals};

    fn check() -> ParityCheck {
        ParityCheck {
            warning: "0".parse().unwrap(),
            critical: None,
            critical_kinds: DEFAULT_CRITICAL_KINDS.to_vec(),
            details: 10,
            unreadable: State::Unknown,
            rules: Vec::new(),
        }
    }

    fn with_summary(mut s: PairState) -> PairState {
        s.summary = Some(RoundSummary {
            round: s.round,
            finished: s.finished,
            identical: false,
            verdict: Some(crate::report::Verdict::Different),
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
            unreadable: 0,
            transient: 0,
            rechecked: true,
            elapsed_seconds: 0.5,
            reads: BTreeMap::new(),
        });
        s
    }

    #[test]
    fn confirmed_data_drift_is_critical_with_the_check_parity_wording() {
        let s = with_summary(sample());
        let r = verdict(&s, &check(), s.finished, None);
        assert_eq!(r.state, State::Critical);
        let text = r.render();
        assert!(
            text.starts_with(
                "ZKPARITY PARITY CRITICAL - 1 confirmed difference (data 1); source 12 nodes, target 11"
            ),
            "{text}"
        );
        assert!(text.contains("\ndata /brokers/ids\n"), "{text}");
    }

    #[test]
    fn unconfirmed_differences_are_shown_but_do_not_alert() {
        let mut s = with_summary(sample());
        s.status = PairStatus::Ok;
        s.unconfirmed = std::mem::take(&mut s.confirmed);
        s.unconfirmed_total = 1;
        s.confirmed_total = 0;
        s.confirmed_by_kind.clear();
        s.lag_seconds = 4.4;
        let r = verdict(&s, &check(), s.finished, None);
        assert_eq!(r.state, State::Ok);
        assert!(r.summary.contains("1 not yet confirmed"), "{}", r.summary);
        assert!(r.render().contains("unconfirmed=1"));
    }

    #[test]
    fn a_failed_round_is_unknown_with_its_reason() {
        let mut s = sample();
        s.status = PairStatus::Unknown;
        s.reason = Some("cannot connect to the source ensemble old:2181: refused".into());
        let r = verdict(&s, &check(), s.finished, None);
        assert_eq!(r.state, State::Unknown);
        assert_eq!(
            r.summary,
            "pair kafka: cannot connect to the source ensemble old:2181: refused"
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
    fn a_state_file_is_judged_by_the_same_verdict_at_the_same_age() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kafka.json");
        let mut s = with_summary(sample());
        s.finished = Timestamp::now();
        crate::report::state::write_state(&path, &s).unwrap();
        let from_file = verdict_of_file(&path, &check(), Duration::from_secs(300));
        let direct = verdict(&s, &check(), s.finished, Some(Duration::from_secs(300)));
        assert_eq!(from_file.render(), direct.render());
        assert!(
            from_file.summary.ends_with(", 0s ago)"),
            "{}",
            from_file.summary
        );

        s.finished = Timestamp(s.finished.0 - Duration::from_secs(600));
        crate::report::state::write_state(&path, &s).unwrap();
        let stale = verdict_of_file(&path, &check(), Duration::from_secs(300));
        assert_eq!(stale.state, State::Unknown);
        assert_eq!(
            stale.summary,
            "state of pair kafka is 600s old, more than --max-age 300s (is the agent running?)"
        );
        let missing = verdict_of_file(&dir.path().join("absent.json"), &check(), Duration::MAX);
        assert_eq!(missing.state, State::Unknown);
    }
}
