//! What Nagios is told about a pair, from its state: the agent's passive
//! results say exactly what `check parity --state` prints for the same state
//! file, because both judge it with [`ParityCheck::judge_facts`] on
//! [`ParityFacts::from_state`].

use std::time::Duration;

use crate::nagios::output::CheckResult;
use crate::nagios::parity::{ParityCheck, ParityFacts};

use super::state::{PairState, Status, Timestamp};

/// The check's answer for `state` at `now`. A state older than `max_age`
/// (the agent stopped or stuck) is UNKNOWN, as is a pair whose latest round
/// could not compare. Otherwise confirmed drift is judged like a live
/// comparison's confirmed differences; differences still inside the
/// confirmation window are shown ("not yet confirmed", perfdata
/// `unconfirmed`) but do not alert.
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
                    "state of pair {} is {}s old, more than {}s (is the agent running?)",
                    state.pair,
                    age as u64,
                    max.as_secs()
                ),
            );
        }
    }
    if state.status == Status::Unknown {
        let reason = state
            .reason
            .as_deref()
            .unwrap_or("the last round could not compare");
        return CheckResult::unknown("PARITY", format!("pair {}: {reason}", state.pair));
    }
    check.judge_facts(&ParityFacts::from_state(state, age))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::state::tests::sample;
    use super::super::state::{RoundSummary, Totals};
    use super::*;
    use crate::nagios::output::State;
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
        s.status = Status::Ok;
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
        s.status = Status::Unknown;
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
}
