//! Each round's metrics to Ganglia, through the gmetric sender.
//!
//! Per pair, under the host `zkparity-<pair>` (group `zkparity`; the prefix
//! keeps a pair named like a real machine from merging with it): the numbers
//! `zkparity gmetric` sends for one comparison (nodes per side, the round's
//! differences by kind, duration, compare ok, seconds since the last
//! success), plus what only the agent knows, from across rounds:
//!
//! | metric | meaning |
//! |---|---|
//! | `zkparity_drift_confirmed` | differences confirmed as drift (the alarm) |
//! | `zkparity_drift_unconfirmed` | differences still inside the window |
//! | `zkparity_lag` | age of the oldest unconfirmed difference, seconds |
//! | `zkparity_pair_status` | 0 ok, 1 drift, 3 unknown (as Nagios codes) |
//! | `zkparity_registrations_expected`, `_present`, `_missing` | with `expect`: the registrations, totals over every role |
//! | `zkparity_registrations_status` | with `expect`: the check's state as a Nagios code |
//! | `zkparity_<side>_reads_<server>`, `zkparity_<side>_nodes_answered_<server>` | reads sent to and nodes answered by each server of a side over the full walks (positive slope); `<server>` is `host_port`, or `any` when the client library chose |
//!
//! Sending never blocks and never fails a round: UDP to a gmond that is down
//! is a lost datagram, logged once per outage.

use tracing::{debug, error, info, warn};

use crate::gmetric::parity::{Drift, PairMetrics, RegistrationCounts, Registrations, Timing};
use crate::gmetric::{Channel, Emitter, Metric, Outcome, Sender, SenderOptions, Spoof};
use crate::nagios::output::State;
use crate::report::CompareReport;

use super::config::PairConfig;
use crate::report::state::{PairState, PairStatus};

/// A pair's emitter, for the channels it was built for.
pub(crate) struct GangliaOut {
    channels: Vec<Channel>,
    emitter: Emitter,
    timing: Timing,
    failing: bool,
}

/// The Ganglia host a pair's metrics go under.
pub(crate) fn pair_host_name(pair: &str) -> String {
    format!("zkparity-{pair}")
}

/// tmax: the longest expected gap between two rounds.
fn timing(cfg: &PairConfig) -> Timing {
    let gap = (cfg.interval + cfg.jitter).as_secs_f64().ceil() as u32;
    Timing {
        tmax: gap.max(1),
        dmax: 0,
    }
}

impl GangliaOut {
    /// The emitter for `channels`, (re)built when they changed (a reload).
    pub(crate) fn current<'a>(
        slot: &'a mut Option<GangliaOut>,
        cfg: &PairConfig,
        channels: &[Channel],
    ) -> Option<&'a mut GangliaOut> {
        if slot.as_ref().is_some_and(|o| o.channels != channels) {
            *slot = None;
        }
        if slot.is_none() {
            match Sender::new(channels.to_vec(), SenderOptions::default()) {
                Ok(sender) => {
                    let timing = timing(cfg);
                    *slot = Some(GangliaOut {
                        channels: channels.to_vec(),
                        emitter: Emitter::new(sender, &pair_host_name(&cfg.name), timing),
                        timing,
                        failing: false,
                    });
                }
                Err(e) => {
                    error!(pair = %cfg.name, error = %e, "Ganglia output not set up");
                    return None;
                }
            }
        }
        slot.as_mut()
    }

    /// Sends the round's metrics.
    pub(crate) fn emit(
        &mut self,
        cfg: &PairConfig,
        report: Option<&CompareReport>,
        state: &PairState,
    ) {
        let outcome = match report {
            Some(r) => Outcome::Compared(r),
            None => Outcome::Failed,
        };
        let mut metrics = self.emitter.metrics(outcome, std::time::Instant::now());
        metrics.extend(drift_metrics(self.emitter.pair_host(), state, self.timing));
        metrics.extend(registration_metrics(
            self.emitter.pair_host(),
            state,
            self.timing,
        ));
        metrics.extend(read_metrics(self.emitter.pair_host(), state, self.timing));
        let sent = self.emitter.sender_mut().send(&metrics);
        if sent.error_count == 0 {
            if self.failing {
                info!(pair = %cfg.name, "metrics reach Ganglia again");
            }
            self.failing = false;
            return;
        }
        let first = sent
            .errors
            .first()
            .map(|e| e.to_string())
            .unwrap_or_default();
        if self.failing {
            debug!(pair = %cfg.name, errors = sent.error_count, first = %first, "metrics not sent");
        } else {
            warn!(pair = %cfg.name, errors = sent.error_count, first = %first, "metrics not sent");
        }
        self.failing = true;
    }
}

/// The agent's own metrics for a pair.
pub(crate) fn drift_metrics(pair: &Spoof, state: &PairState, t: Timing) -> Vec<Metric> {
    let status = match state.status {
        PairStatus::Ok => 0,
        PairStatus::Drift => 1,
        PairStatus::Incomplete | PairStatus::Unknown => 3,
    };
    PairMetrics::new(pair, t).drift(&Drift {
        confirmed: state.confirmed_total,
        unconfirmed: state.unconfirmed_total,
        lag_seconds: state.lag_seconds,
        status,
    })
}

/// Each side's reads and nodes answered per server, since the state began.
pub(crate) fn read_metrics(pair: &Spoof, state: &PairState, t: Timing) -> Vec<Metric> {
    let m = &PairMetrics::new(pair, t);
    let by_server = &state.reads.reads_by_server;
    [("source", &by_server.source), ("target", &by_server.target)]
        .into_iter()
        .flat_map(|(side, servers)| {
            servers
                .iter()
                .flat_map(move |(server, c)| m.reads(side, server, c.reads, c.nodes))
        })
        .collect()
}

/// The registrations' metrics of a pair with `expect`; none without.
pub(crate) fn registration_metrics(pair: &Spoof, state: &PairState, t: Timing) -> Vec<Metric> {
    let Some(r) = &state.registrations else {
        return Vec::new();
    };
    let status = State::named(&r.state);
    PairMetrics::new(pair, t).registrations(&Registrations {
        counts: (status != State::Unknown).then_some(RegistrationCounts {
            expected: r.expected,
            present: r.present,
            missing: r.missing,
        }),
        status: status.exit_code() as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gmetric::parity::{pair_host, GROUP};
    use crate::gmetric::Value;

    #[test]
    fn drift_metrics_carry_the_states_numbers_under_the_pairs_host() {
        let s = crate::report::state::tests::sample();
        let t = Timing { tmax: 66, dmax: 0 };
        let ms = drift_metrics(&pair_host(&pair_host_name("kafka")), &s, t);
        let names: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "zkparity_drift_confirmed",
                "zkparity_drift_unconfirmed",
                "zkparity_lag",
                "zkparity_pair_status"
            ]
        );
        assert_eq!(ms[0].value, Value::U32(1));
        assert_eq!(ms[3].value, Value::U32(1));
        assert!(ms.iter().all(|m| m.tmax == 66
            && m.groups == [GROUP]
            && m.spoof.as_ref().is_some_and(|s| s.name == "zkparity-kafka")));
    }

    #[test]
    fn read_metrics_name_each_side_and_server_of_the_state() {
        use crate::report::state::ReadCount;
        let mut s = crate::report::state::tests::sample();
        let t = Timing { tmax: 66, dmax: 0 };
        let host = pair_host(&pair_host_name("kafka"));
        assert!(read_metrics(&host, &s, t).is_empty());
        s.reads.reads_by_server.source = std::collections::BTreeMap::from([(
            "zk2:2181".to_string(),
            ReadCount { reads: 4, nodes: 2 },
        )]);
        s.reads.reads_by_server.target = std::collections::BTreeMap::from([(
            "any".to_string(),
            ReadCount { reads: 5, nodes: 3 },
        )]);
        let ms = read_metrics(&host, &s, t);
        let names: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "zkparity_source_reads_zk2_2181",
                "zkparity_source_nodes_answered_zk2_2181",
                "zkparity_target_reads_any",
                "zkparity_target_nodes_answered_any"
            ]
        );
        assert_eq!(ms[2].value, Value::Double(5.0, 0));
    }
}
