//! The parity metrics of one ensemble pair, shown in Ganglia under a host
//! named for the pair (group `zkparity`): those of a comparison, its
//! outcome, and the agent's drift across rounds, all built by
//! [`PairMetrics`].

use std::time::Duration;

use super::{sanitize, Metric, Slope, Spoof, Value};
use crate::report::{CompareReport, DiffKind};

/// The web UI's metric group of every parity metric.
pub(crate) const GROUP: &str = "zkparity";

/// tmax and dmax of every metric a round sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The longest expected gap between rounds, in seconds.
    pub tmax: u32,
    /// Seconds of silence (no metadata) before gmond forgets a metric; 0: never.
    pub dmax: u32,
}

impl Default for Timing {
    /// gmetric's defaults.
    fn default() -> Self {
        Timing { tmax: 60, dmax: 0 }
    }
}

/// A host name for the pair from its connect strings, used when the user
/// gives none: `zk-old-1_2181--zk-new-1_2181` for `zk-old-1:2181,…` and
/// `zk-new-1:2181/app`. The first server of each side stands for the side.
pub fn default_pair_name(source: &str, target: &str) -> String {
    fn side(connect: &str) -> String {
        let (hosts, chroot) = connect.split_once('/').unwrap_or((connect, ""));
        let first = hosts.split(',').next().unwrap_or(hosts).trim();
        let mut s = sanitize::token(first.trim_start_matches('[').replace("]:", ":").as_str());
        let chroot = sanitize::token(chroot.trim_matches('/'));
        if !chroot.is_empty() {
            s.push('_');
            s.push_str(&chroot);
        }
        s
    }
    format!("{}--{}", side(source), side(target))
}

/// The spoofed host of a pair. There is no address to key it by, and gmond
/// takes any string without a colon as the key, so the name is the key.
pub fn pair_host(name: &str) -> Spoof {
    let name = sanitize::token(name);
    Spoof::new(name.clone(), name)
}

/// Builds the metrics of one pair: each under the pair's host, in group
/// `zkparity`, slope both, with the same tmax and dmax. Every parity metric,
/// whether `zkparity gmetric` or the agent sends it, is made here.
pub(crate) struct PairMetrics<'a> {
    pair: &'a Spoof,
    timing: Timing,
}

/// What only a long-running agent knows about a pair, from across rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Drift {
    /// Differences confirmed as drift (the alarm).
    pub confirmed: u64,
    /// Differences still inside the confirmation window.
    pub unconfirmed: u64,
    /// Age of the oldest unconfirmed difference.
    pub lag_seconds: f64,
    /// As Nagios codes: 0 ok, 1 drift, 3 unknown.
    pub status: u32,
}

/// The registrations an agent's pair looks for on its target (`expect`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Registrations {
    /// `None` when they could not be read (the status says UNKNOWN).
    pub counts: Option<RegistrationCounts>,
    /// As Nagios codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub status: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RegistrationCounts {
    pub expected: u64,
    pub present: u64,
    pub missing: u64,
}

fn count(v: u64) -> Value {
    Value::U32(u32::try_from(v).unwrap_or(u32::MAX))
}

impl<'a> PairMetrics<'a> {
    pub(crate) fn new(pair: &'a Spoof, timing: Timing) -> PairMetrics<'a> {
        PairMetrics { pair, timing }
    }

    fn metric(&self, name: &str, value: Value, units: &str, title: &str) -> Metric {
        Metric {
            units: units.into(),
            slope: Slope::Both,
            tmax: self.timing.tmax,
            dmax: self.timing.dmax,
            groups: vec![GROUP.into()],
            title: title.into(),
            spoof: Some(self.pair.clone()),
            ..Metric::new(name, value)
        }
    }

    /// The numbers of a finished comparison.
    pub(crate) fn report(&self, report: &CompareReport) -> Vec<Metric> {
        let s = &report.summary;
        let mut out = vec![
            self.metric(
                "zkparity_source_nodes",
                count(s.source.nodes),
                "nodes",
                "Nodes on the source",
            ),
            self.metric(
                "zkparity_target_nodes",
                count(s.target.nodes),
                "nodes",
                "Nodes on the target",
            ),
        ];
        for kind in DiffKind::DIFFERENCES {
            let n = s.differences.get(kind.as_str()).copied().unwrap_or(0);
            out.push(self.metric(
                &format!("zkparity_diff_{}", kind.as_str()),
                count(n),
                "differences",
                &format!("Confirmed differences: {}", kind.as_str().replace('_', " ")),
            ));
        }
        // Under the name it always had, but not a difference: the paths
        // a side could not read, which make the verdict incomplete.
        out.push(self.metric(
            "zkparity_diff_unreadable",
            count(s.unreadable),
            "paths",
            "Paths a side could not read (the comparison is incomplete)",
        ));
        let matching = report.subtrees.iter().filter(|r| r.matches).count() as u64;
        out.extend([
            self.metric(
                "zkparity_diff_confirmed",
                count(s.confirmed),
                "differences",
                "Confirmed differences",
            ),
            self.metric(
                "zkparity_diff_transient",
                count(s.transient),
                "differences",
                "Differences that healed by the re-check",
            ),
            self.metric(
                "zkparity_subtrees_matching",
                count(matching),
                "subtrees",
                "Subtrees whose checksums match",
            ),
            self.metric(
                "zkparity_subtrees_total",
                count(report.subtrees.len() as u64),
                "subtrees",
                "Subtrees compared",
            ),
            self.metric(
                "zkparity_identical",
                count(u64::from(s.identical)),
                "",
                "Identical (1) or not (0)",
            ),
            self.metric(
                "zkparity_compare_duration",
                Value::Double(s.elapsed_seconds, 3),
                "s",
                "Duration of the last compare",
            ),
        ]);
        out
    }

    /// Whether the round's compare succeeded, and how long ago the last one
    /// did (`None`: never, as far as this sender knows).
    pub(crate) fn status(&self, ok: bool, since_success: Option<Duration>) -> Vec<Metric> {
        let mut out = vec![self.metric(
            "zkparity_compare_ok",
            count(u64::from(ok)),
            "",
            "Last compare succeeded (1) or failed (0)",
        )];
        if let Some(age) = since_success {
            out.push(self.metric(
                "zkparity_last_success_age",
                count(age.as_secs()),
                "s",
                "Seconds since the last successful compare",
            ));
        }
        out
    }

    /// The registrations' numbers, totals over every role.
    pub(crate) fn registrations(&self, r: &Registrations) -> Vec<Metric> {
        let mut out = Vec::new();
        if let Some(c) = r.counts {
            out.extend([
                self.metric(
                    "zkparity_registrations_expected",
                    count(c.expected),
                    "registrations",
                    "Registrations expected on the target",
                ),
                self.metric(
                    "zkparity_registrations_present",
                    count(c.present),
                    "registrations",
                    "Expected registrations back on the target",
                ),
                self.metric(
                    "zkparity_registrations_missing",
                    count(c.missing),
                    "registrations",
                    "Expected registrations not on the target",
                ),
            ]);
        }
        out.push(self.metric(
            "zkparity_registrations_status",
            Value::U32(r.status),
            "",
            "Registrations: 0 ok, 1 warning, 2 critical, 3 unknown",
        ));
        out
    }

    /// A server's reads and nodes answered on one side, added up over the
    /// agent's full walks: ever-growing, so sent with a positive slope and
    /// graphed by gmetad as a rate. The server is named in the metric
    /// (`zkparity_source_reads_zk1_2181`), `any` when the client library
    /// chose the servers.
    pub(crate) fn reads(&self, side: &str, server: &str, reads: u64, nodes: u64) -> Vec<Metric> {
        let server_token = sanitize::token(server);
        let counter = |what: &str, value: u64, units: &str, title: String| Metric {
            slope: Slope::Positive,
            ..self.metric(
                &format!("zkparity_{side}_{what}_{server_token}"),
                Value::Double(value as f64, 0),
                units,
                &title,
            )
        };
        vec![
            counter(
                "reads",
                reads,
                "reads",
                format!("Reads sent to {server} ({side})"),
            ),
            counter(
                "nodes_answered",
                nodes,
                "nodes",
                format!("Nodes {server} answered ({side})"),
            ),
        ]
    }

    /// The agent's numbers from across rounds.
    pub(crate) fn drift(&self, d: &Drift) -> Vec<Metric> {
        vec![
            self.metric(
                "zkparity_drift_confirmed",
                count(d.confirmed),
                "differences",
                "Differences confirmed as drift",
            ),
            self.metric(
                "zkparity_drift_unconfirmed",
                count(d.unconfirmed),
                "differences",
                "Differences inside the confirmation window",
            ),
            self.metric(
                "zkparity_lag",
                Value::Double(d.lag_seconds, 1),
                "s",
                "Age of the oldest unconfirmed difference",
            ),
            self.metric(
                "zkparity_pair_status",
                Value::U32(d.status),
                "",
                "Pair status: 0 ok, 1 drift, 3 unknown",
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pair_names_come_from_the_first_server_and_chroot() {
        assert_eq!(
            default_pair_name("zk-old-1:2181,zk-old-2:2181", "zk-new-1:2181/app/x"),
            "zk-old-1_2181--zk-new-1_2181_app_x"
        );
        assert_eq!(
            default_pair_name("[::1]:2181", "127.0.0.1:2182"),
            "__1_2181--127.0.0.1_2182"
        );
    }

    #[test]
    fn reads_are_named_by_side_and_server_and_sent_as_counters() {
        let host = pair_host("kafka");
        let ms = PairMetrics::new(&host, Timing { tmax: 60, dmax: 0 }).reads(
            "source",
            "zk1.example:2181",
            12,
            7,
        );
        let names: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "zkparity_source_reads_zk1.example_2181",
                "zkparity_source_nodes_answered_zk1.example_2181"
            ]
        );
        assert_eq!(ms[0].value, Value::Double(12.0, 0));
        assert!(ms.iter().all(|m| m.slope == Slope::Positive));
        assert!(ms
            .iter()
            .all(|m| crate::gmetric::sanitize::metric(m).is_ok()));
    }

    #[test]
    fn the_pair_host_is_keyed_by_its_own_name() {
        assert_eq!(pair_host("a:b").wire(), "a_b:a_b");
    }
}
