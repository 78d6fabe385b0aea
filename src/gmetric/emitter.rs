//! One reporting round after another for one ensemble pair.
//!
//! `zkparity gmetric` builds an [`Emitter`] and emits one round; an agent
//! keeps one and emits every interval, so that metadata re-sending and
//! "seconds since the last successful compare" carry across rounds. A round
//! is the pair's parity metrics and, when its servers were probed, each
//! server's own metrics under its own host ([`servers`](super::servers)).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::parity::{self, PairMetrics, Timing};
use super::{servers, Metric, SendReport, Sender, Spoof};
use crate::probe::ServerProbe;
use crate::report::CompareReport;

/// What the round's compare came to.
#[derive(Clone, Copy, Debug)]
pub enum Outcome<'a> {
    Compared(&'a CompareReport),
    /// The compare could not run or finish (unreachable ensemble and so on).
    Failed,
}

pub struct Emitter {
    sender: Sender,
    pair: Spoof,
    timing: Timing,
    last_success: Option<Instant>,
    /// Shown as the spoofed hosts' `GMOND_STARTED`: when this sender began.
    started_epoch: u32,
}

impl Emitter {
    pub fn new(sender: Sender, pair_name: &str, timing: Timing) -> Emitter {
        let started_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        Emitter {
            sender,
            pair: parity::pair_host(pair_name),
            timing,
            last_success: None,
            started_epoch,
        }
    }

    /// The pair's host as gmond will show it.
    pub(crate) fn pair_host(&self) -> &Spoof {
        &self.pair
    }

    /// The builder of this pair's metrics, with this emitter's tmax and dmax.
    pub(crate) fn pair_metrics(&self) -> PairMetrics<'_> {
        PairMetrics::new(&self.pair, self.timing)
    }

    pub(crate) fn sender_mut(&mut self) -> &mut Sender {
        &mut self.sender
    }

    /// The metrics of a round that ends `now`. A failed compare sends no
    /// parity numbers: the last good ones stay on the graphs, ageing, next
    /// to `zkparity_compare_ok` = 0.
    pub(crate) fn metrics(&mut self, outcome: Outcome<'_>, now: Instant) -> Vec<Metric> {
        let mut out = vec![Metric::heartbeat(self.pair.clone(), self.started_epoch)];
        let ok = match outcome {
            Outcome::Compared(report) => {
                self.last_success = Some(now);
                out.extend(self.pair_metrics().report(report));
                true
            }
            Outcome::Failed => false,
        };
        let since = self.last_success.map(|t| now.saturating_duration_since(t));
        out.extend(self.pair_metrics().status(ok, since));
        out
    }

    /// The per-server metrics of the round's probes, each server under its
    /// own host with its heartbeat, with this pair's tmax and dmax. A server
    /// listed on both sides is sent once; a down one not at all.
    pub(crate) fn server_metrics<'a>(
        &self,
        servers: impl IntoIterator<Item = &'a ServerProbe>,
    ) -> Vec<Metric> {
        servers::round_metrics(servers, self.timing, self.started_epoch)
    }

    /// Builds and sends one round: the pair's metrics, then the servers'.
    pub fn emit_round<'a>(
        &mut self,
        outcome: Outcome<'_>,
        servers: impl IntoIterator<Item = &'a ServerProbe>,
    ) -> SendReport {
        let mut metrics = self.metrics(outcome, Instant::now());
        metrics.extend(self.server_metrics(servers));
        self.sender.send(&metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gmetric::{SenderOptions, Value};
    use std::time::Duration;

    fn names(ms: &[Metric]) -> Vec<&str> {
        ms.iter().map(|m| m.name.as_str()).collect()
    }

    #[test]
    fn a_failed_round_sends_status_only_and_ages_the_last_success() {
        let sender = Sender::new(Vec::new(), SenderOptions::default()).expect("sender");
        let mut e = Emitter::new(sender, "a:b", Timing::default());
        assert_eq!(e.pair_host().wire(), "a_b:a_b");
        let t0 = Instant::now();
        let first = e.metrics(Outcome::Failed, t0);
        assert_eq!(names(&first), ["heartbeat", "zkparity_compare_ok"]);
        assert_eq!(first[1].value, Value::U32(0));

        e.last_success = Some(t0);
        let later = e.metrics(Outcome::Failed, t0 + Duration::from_secs(125));
        assert_eq!(
            names(&later),
            [
                "heartbeat",
                "zkparity_compare_ok",
                "zkparity_last_success_age"
            ]
        );
        assert_eq!(later[2].value, Value::U32(125));
        assert!(later
            .iter()
            .all(|m| m.spoof.as_ref() == Some(e.pair_host())));
    }

    #[test]
    fn a_round_carries_the_pairs_metrics_then_each_answering_servers() {
        use crate::probe::{Word, WordError};
        let sender = Sender::new(Vec::new(), SenderOptions::default()).expect("sender");
        let mut e = Emitter::new(sender, "pair", Timing { tmax: 120, dmax: 0 });
        let srvr = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nReceived: 1\n\
                    Sent: 0\nConnections: 1\nOutstanding: 0\nZxid: 0x0\nMode: standalone\n\
                    Node count: 5\n";
        let mut up = ServerProbe::from_answers(
            "127.0.0.1:2181",
            &[(Word::Srvr, Some(Ok(srvr.to_string())))],
        );
        up.resolved = Some("127.0.0.1:2181".into());
        let down = ServerProbe::from_answers(
            "127.0.0.1:2182",
            &[(Word::Srvr, Some(Err(WordError::ConnectionRefused)))],
        );
        let mut round = e.metrics(Outcome::Failed, Instant::now());
        let pair_len = round.len();
        round.extend(e.server_metrics([&up, &down]));
        let servers = &round[pair_len..];
        assert_eq!(servers[0].name, "heartbeat");
        assert!(servers
            .iter()
            .all(|m| m.spoof.as_ref().map(Spoof::wire).as_deref()
                == Some("127.0.0.1_2181:127.0.0.1_2181")));
        assert!(servers[1..].iter().all(|m| m.tmax == 120));
    }
}
