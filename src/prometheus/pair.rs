//! The metrics of one ensemble pair: what a comparison found (the same for a
//! single `compare`/`check parity` run written as a textfile and for an
//! agent's round) and what only the agent knows from across rounds.
//!
//! Every kind is always present (0 when none), so an alert on a kind never
//! meets a missing series. No label carries a credential or an ACL id.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::nagios::output::State;
use crate::report::state::{PairState, PairStatus, Reads, RegistrationsState, RoundKind};
use crate::report::{CompareReport, DiffKind};

use super::exposition::{Exposition, Kind};

/// Nodes, ephemerals and data bytes of one side.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SideCounts {
    pub nodes: u64,
    pub ephemerals: u64,
    pub bytes: u64,
}

/// What a comparison said about a pair, however it ran.
#[derive(Clone, Debug, PartialEq)]
pub struct PairView {
    pub pair: String,
    /// As Nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub status: State,
    /// Confirmed differences by kind (`DiffKind::DIFFERENCES` names).
    pub confirmed: BTreeMap<String, u64>,
    pub unreadable: u64,
    /// From the latest comparison that succeeded; `None` before one.
    pub sides: Option<[SideCounts; 2]>,
    /// Subtrees matching and differing, when known.
    pub subtrees: Option<(u64, u64)>,
    pub round_end: SystemTime,
    pub round_seconds: f64,
    pub round_success: bool,
    pub last_success: Option<SystemTime>,
}

impl PairView {
    /// The view of one comparison: `outcome` is its report, or `Err` when it
    /// could not compare. `status` is the check's answer.
    pub fn of_comparison(
        pair: &str,
        status: State,
        outcome: Result<&CompareReport, ()>,
        ended: SystemTime,
        seconds: f64,
    ) -> PairView {
        match outcome {
            Ok(r) => {
                let s = &r.summary;
                let side = |t: &crate::report::SideTotals| SideCounts {
                    nodes: t.nodes,
                    ephemerals: t.ephemerals,
                    bytes: t.bytes,
                };
                PairView {
                    pair: pair.to_string(),
                    status,
                    confirmed: s
                        .differences
                        .iter()
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect(),
                    unreadable: s.unreadable,
                    sides: Some([side(&s.source), side(&s.target)]),
                    subtrees: Some(subtrees(r)),
                    round_end: ended,
                    round_seconds: seconds,
                    round_success: true,
                    last_success: Some(ended),
                }
            }
            Err(()) => PairView {
                pair: pair.to_string(),
                status,
                confirmed: BTreeMap::new(),
                unreadable: 0,
                sides: None,
                subtrees: None,
                round_end: ended,
                round_seconds: seconds,
                round_success: false,
                last_success: None,
            },
        }
    }
}

/// Subtrees matching and differing in a report's table.
pub(crate) fn subtrees(r: &CompareReport) -> (u64, u64) {
    let matching = r.subtrees.iter().filter(|s| s.matches).count() as u64;
    (matching, r.subtrees.len() as u64 - matching)
}

pub(crate) fn epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn pair_label(pair: &str) -> Vec<(&'static str, String)> {
    vec![("pair", pair.to_string())]
}

fn with(pair: &str, name: &'static str, value: &str) -> Vec<(&'static str, String)> {
    vec![("pair", pair.to_string()), (name, value.to_string())]
}

/// The families every way of comparing gives.
pub fn write_view(e: &mut Exposition, v: &PairView) {
    let p = v.pair.as_str();
    e.add(
        "zkparity_pair_status",
        "The pair's standing as Nagios codes it: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        Kind::Gauge,
        pair_label(p),
        f64::from(v.status.exit_code()),
    );
    // Nothing is known of the differences before a comparison succeeded:
    // zeros would resolve the alerts on them.
    if v.round_success || v.last_success.is_some() {
        for kind in DiffKind::DIFFERENCES {
            let n = v.confirmed.get(kind.as_str()).copied().unwrap_or(0);
            e.add(
                "zkparity_differences_confirmed",
                "Differences between source and target confirmed as drift, by kind.",
                Kind::Gauge,
                with(p, "kind", kind.as_str()),
                n as f64,
            );
        }
        e.add(
            "zkparity_unreadable_nodes",
            "Paths a side could not read (no permission): the verification is incomplete there.",
            Kind::Gauge,
            pair_label(p),
            v.unreadable as f64,
        );
    }
    if let Some(sides) = &v.sides {
        for (side, c) in ["source", "target"].into_iter().zip(sides) {
            e.add(
                "zkparity_nodes",
                "Nodes under the pair's path on a side, as of the latest full walk (the agent's rounds between walks read only what changed).",
                Kind::Gauge,
                with(p, "side", side),
                c.nodes as f64,
            );
            e.add(
                "zkparity_ephemeral_nodes",
                "Ephemeral nodes under the pair's path on a side.",
                Kind::Gauge,
                with(p, "side", side),
                c.ephemerals as f64,
            );
            e.add(
                "zkparity_data_bytes",
                "Bytes of node data under the pair's path on a side.",
                Kind::Gauge,
                with(p, "side", side),
                c.bytes as f64,
            );
        }
    }
    if let Some((matching, differing)) = v.subtrees {
        e.add(
            "zkparity_subtrees_matching",
            "Subtrees whose checksums are equal on both sides.",
            Kind::Gauge,
            pair_label(p),
            matching as f64,
        );
        e.add(
            "zkparity_subtrees_differing",
            "Subtrees whose checksums differ between the sides.",
            Kind::Gauge,
            pair_label(p),
            differing as f64,
        );
    }
    e.add(
        "zkparity_last_round_end_timestamp_seconds",
        "When the latest comparison ended, succeeded or not (Unix time).",
        Kind::Gauge,
        pair_label(p),
        epoch(v.round_end),
    );
    e.add(
        "zkparity_last_round_duration_seconds",
        "How long the latest comparison took.",
        Kind::Gauge,
        pair_label(p),
        v.round_seconds,
    );
    e.add(
        "zkparity_last_round_success",
        "1 if the latest comparison could compare, 0 if it failed (a side unreachable, a timeout).",
        Kind::Gauge,
        pair_label(p),
        if v.round_success { 1.0 } else { 0.0 },
    );
    if let Some(t) = v.last_success {
        e.add(
            "zkparity_last_success_timestamp_seconds",
            "When a comparison of the pair last succeeded (Unix time).",
            Kind::Gauge,
            pair_label(p),
            epoch(t),
        );
    }
}

/// What the agent knows of a pair beyond its latest comparison.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AgentPair {
    pub view: PairView,
    pub status: PairStatus,
    pub unconfirmed: BTreeMap<String, u64>,
    pub lag_seconds: f64,
    /// When the oldest unconfirmed difference was first seen: the lag is
    /// computed from it at each scrape, not frozen between rounds.
    pub lag_since: Option<SystemTime>,
    pub interval_seconds: f64,
    pub round_kind: Option<RoundKind>,
    pub rounds: u64,
    pub rounds_failed: u64,
    pub early_rechecks: u64,
    /// The latest look at the registrations (`expect`).
    pub registrations: Option<RegistrationsState>,
    /// Where the full walks' reads went, per side and server.
    pub reads: Reads,
}

impl AgentPair {
    /// The pair as its state file has it now.
    pub(crate) fn update(&mut self, state: &PairState, status: State) {
        let v = &mut self.view;
        v.status = status;
        v.confirmed = state.confirmed_by_kind.clone();
        v.unreadable = state.unreadable_total;
        v.round_end = state.finished.0;
        v.last_success = state.last_success.map(|t| t.0);
        if let Some(s) = &state.summary {
            let side = |t: &crate::report::state::Totals| SideCounts {
                nodes: t.nodes,
                ephemerals: t.ephemerals,
                bytes: t.bytes,
            };
            v.sides = Some([side(&s.source), side(&s.target)]);
        }
        self.status = state.status;
        self.unconfirmed = state.unconfirmed_by_kind.clone();
        self.lag_seconds = state.lag_seconds;
        self.lag_since = state.lag_since.map(|t| t.0);
        self.interval_seconds = state.interval_seconds;
        self.round_kind = state.checks.round_kind;
        self.registrations = state.registrations.clone();
        self.reads = state.reads.clone();
    }

    pub(crate) fn new(state: &PairState, status: State) -> AgentPair {
        let mut p = AgentPair {
            view: PairView {
                pair: state.pair.clone(),
                status,
                confirmed: BTreeMap::new(),
                unreadable: 0,
                sides: None,
                subtrees: None,
                round_end: state.finished.0,
                round_seconds: 0.0,
                round_success: false,
                last_success: None,
            },
            status: state.status,
            unconfirmed: BTreeMap::new(),
            lag_seconds: 0.0,
            lag_since: None,
            interval_seconds: state.interval_seconds,
            round_kind: None,
            rounds: 0,
            rounds_failed: 0,
            early_rechecks: 0,
            registrations: None,
            reads: Reads::default(),
        };
        p.update(state, status);
        p
    }
}

/// The agent's families of one pair.
pub(crate) fn write_agent_pair(e: &mut Exposition, a: &AgentPair) {
    write_view(e, &a.view);
    let p = a.view.pair.as_str();
    for s in [
        PairStatus::Ok,
        PairStatus::Drift,
        PairStatus::Incomplete,
        PairStatus::Unknown,
    ] {
        e.add(
            "zkparity_pair_state",
            "1 for the pair's standing after its latest round: ok, drift, incomplete or unknown.",
            Kind::Gauge,
            with(p, "state", s.as_str()),
            if a.status == s { 1.0 } else { 0.0 },
        );
    }
    for kind in DiffKind::DIFFERENCES {
        let n = a.unconfirmed.get(kind.as_str()).copied().unwrap_or(0);
        e.add(
            "zkparity_differences_unconfirmed",
            "Differences seen but still inside the confirmation window, by kind.",
            Kind::Gauge,
            with(p, "kind", kind.as_str()),
            n as f64,
        );
    }
    e.add(
        "zkparity_confirmation_lag_seconds",
        "Age of the oldest difference not yet confirmed: the replication lag as the agent sees it.",
        Kind::Gauge,
        pair_label(p),
        a.lag_since.map_or(a.lag_seconds, |since| {
            SystemTime::now()
                .duration_since(since)
                .map_or(a.lag_seconds, |d| d.as_secs_f64())
        }),
    );
    e.add(
        "zkparity_round_interval_seconds",
        "The configured interval between the pair's rounds.",
        Kind::Gauge,
        pair_label(p),
        a.interval_seconds,
    );
    if let Some(current) = a.round_kind {
        for k in [
            RoundKind::FullWalk,
            RoundKind::Targeted,
            RoundKind::WatchClean,
        ] {
            e.add(
                "zkparity_last_round_kind",
                "1 for how the latest round looked: full_walk, targeted (what watches said changed) or watch_clean.",
                Kind::Gauge,
                with(p, "kind", k.as_str()),
                if k == current { 1.0 } else { 0.0 },
            );
        }
    }
    e.add(
        "zkparity_rounds",
        "Rounds run since the agent started.",
        Kind::Counter,
        pair_label(p),
        a.rounds as f64,
    );
    e.add(
        "zkparity_rounds_failed",
        "Rounds that could not compare since the agent started.",
        Kind::Counter,
        pair_label(p),
        a.rounds_failed as f64,
    );
    e.add(
        "zkparity_early_rechecks",
        "Re-checks between rounds, started by what the watches saw change.",
        Kind::Counter,
        pair_label(p),
        a.early_rechecks as f64,
    );
    write_reads(e, p, &a.reads);
    if let Some(r) = &a.registrations {
        write_registrations(e, p, r);
    }
}

/// Reads and nodes answered per server of each side, over the full walks
/// since the pair's state began. A side read with `read_from = "any"` has
/// one series, `server="any"`, with all its reads: the client library chose
/// the servers, and a sum over `server` is the side's load either way.
fn write_reads(e: &mut Exposition, p: &str, r: &Reads) {
    let sides = [
        ("source", &r.reads_by_server.source),
        ("target", &r.reads_by_server.target),
    ];
    for (side, servers) in sides {
        for (server, c) in servers {
            let labels = || {
                vec![
                    ("pair", p.to_string()),
                    ("side", side.to_string()),
                    ("server", server.clone()),
                ]
            };
            e.add(
                "zkparity_reads",
                "Read operations (getData, getChildren, getACL) sent to a server of a side by the full walks; server=\"any\" when the client library chose.",
                Kind::Counter,
                labels(),
                c.reads as f64,
            );
            e.add(
                "zkparity_nodes_answered",
                "Nodes a server of a side answered in the full walks; server=\"any\" when the client library chose.",
                Kind::Counter,
                labels(),
                c.nodes as f64,
            );
        }
    }
}

/// A pair's registrations by role (`expect`): what `check ephemerals`
/// reports, with its state as the Nagios code.
fn write_registrations(e: &mut Exposition, p: &str, r: &RegistrationsState) {
    let state = State::named(&r.state);
    e.add(
        "zkparity_registrations_status",
        "The registrations check as Nagios codes it: 0 OK, 1 WARNING (missing within the grace), 2 CRITICAL (missing past it, or copied as persistent), 3 UNKNOWN.",
        Kind::Gauge,
        pair_label(p),
        f64::from(state.exit_code()),
    );
    // Nothing is known of the counts of a look that could not read: zeros
    // would resolve the alerts on them.
    if state == State::Unknown {
        return;
    }
    for role in &r.roles {
        let labels = || with(p, "role", &role.role);
        e.add(
            "zkparity_registrations_expected",
            "Ephemeral registrations expected on the target (from the pair's expect), by role.",
            Kind::Gauge,
            labels(),
            role.expected as f64,
        );
        e.add(
            "zkparity_registrations_present",
            "Expected registrations back on the target, by role.",
            Kind::Gauge,
            labels(),
            role.present as f64,
        );
        e.add(
            "zkparity_registrations_missing",
            "Expected registrations not (yet) on the target, by role.",
            Kind::Gauge,
            labels(),
            role.missing as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::exposition::Format;

    fn view() -> PairView {
        let mut confirmed = BTreeMap::new();
        confirmed.insert("acl".to_string(), 2);
        PairView {
            pair: "kafka".into(),
            status: State::Critical,
            confirmed,
            unreadable: 1,
            sides: Some([
                SideCounts {
                    nodes: 10,
                    ephemerals: 2,
                    bytes: 300,
                },
                SideCounts {
                    nodes: 9,
                    ephemerals: 2,
                    bytes: 290,
                },
            ]),
            subtrees: Some((3, 1)),
            round_end: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
            round_seconds: 0.5,
            round_success: true,
            last_success: None,
        }
    }

    #[test]
    fn every_kind_is_present_and_the_status_is_the_nagios_code() {
        let mut e = Exposition::new();
        write_view(&mut e, &view());
        let text = e.render(Format::Text);
        assert!(text.contains("zkparity_pair_status{pair=\"kafka\"} 2\n"));
        for kind in DiffKind::DIFFERENCES {
            let n = if kind == DiffKind::Acl { 2 } else { 0 };
            let line = format!(
                "zkparity_differences_confirmed{{pair=\"kafka\",kind=\"{}\"}} {n}\n",
                kind.as_str()
            );
            assert!(text.contains(&line), "{line} in\n{text}");
        }
        assert!(text.contains("zkparity_nodes{pair=\"kafka\",side=\"target\"} 9\n"));
        assert!(text.contains("zkparity_subtrees_differing{pair=\"kafka\"} 1\n"));
        assert!(
            text.contains("zkparity_last_round_end_timestamp_seconds{pair=\"kafka\"} 1700000000\n")
        );
        assert!(!text.contains("zkparity_last_success_timestamp_seconds"));
    }

    #[test]
    fn the_lag_is_computed_at_each_scrape_not_frozen_between_rounds() {
        let mut state = crate::report::state::tests::sample();
        state.lag_seconds = 1.0;
        state.lag_since = Some(crate::report::state::Timestamp(
            SystemTime::now() - std::time::Duration::from_secs(30),
        ));
        let a = AgentPair::new(&state, State::Ok);
        let mut e = Exposition::new();
        write_agent_pair(&mut e, &a);
        let text = e.render(Format::Text);
        let lag: f64 = text
            .lines()
            .find(|l| l.starts_with("zkparity_confirmation_lag_seconds{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .expect("a lag sample");
        assert!((30.0..60.0).contains(&lag), "{lag} in\n{text}");
    }

    #[test]
    fn a_failed_comparison_says_so_and_claims_no_counts() {
        let v = PairView::of_comparison("p", State::Unknown, Err(()), SystemTime::UNIX_EPOCH, 1.0);
        let mut e = Exposition::new();
        write_view(&mut e, &v);
        let text = e.render(Format::Text);
        assert!(text.contains("zkparity_last_round_success{pair=\"p\"} 0\n"));
        assert!(text.contains("zkparity_pair_status{pair=\"p\"} 3\n"));
        assert!(!text.contains("zkparity_nodes"));
        assert!(!text.contains("zkparity_differences_confirmed"));
        assert!(!text.contains("zkparity_unreadable_nodes"));
    }

    #[test]
    fn reads_are_counted_per_side_and_server() {
        use crate::report::state::ReadCount;
        let mut state = crate::report::state::tests::sample();
        let text = |s: &PairState| {
            let mut e = Exposition::new();
            write_agent_pair(&mut e, &AgentPair::new(s, State::Ok));
            e.render(Format::Text)
        };
        assert!(!text(&state).contains("zkparity_reads"));
        state.reads.reads_by_server.source = BTreeMap::from([
            ("zk1:2181".to_string(), ReadCount { reads: 7, nodes: 5 }),
            ("zk2:2181".to_string(), ReadCount { reads: 3, nodes: 2 }),
        ]);
        state.reads.reads_by_server.target =
            BTreeMap::from([("any".to_string(), ReadCount { reads: 9, nodes: 7 })]);
        let served = text(&state);
        for line in [
            "# TYPE zkparity_reads_total counter\n",
            "zkparity_reads_total{pair=\"kafka\",side=\"source\",server=\"zk1:2181\"} 7\n",
            "zkparity_reads_total{pair=\"kafka\",side=\"source\",server=\"zk2:2181\"} 3\n",
            "zkparity_reads_total{pair=\"kafka\",side=\"target\",server=\"any\"} 9\n",
            "zkparity_nodes_answered_total{pair=\"kafka\",side=\"source\",server=\"zk1:2181\"} 5\n",
        ] {
            assert!(served.contains(line), "{line} in\n{served}");
        }
    }

    #[test]
    fn registrations_are_served_by_role_with_the_checks_state() {
        use crate::report::state::{RegistrationsState, RoleRegistrations};
        let mut state = crate::report::state::tests::sample();
        let role = |name: &str, expected, present| RoleRegistrations {
            role: name.into(),
            expected,
            present,
            missing: expected - present,
            missing_paths: Vec::new(),
        };
        let mut r = RegistrationsState {
            state: "CRITICAL".into(),
            summary: "1 of 4 registrations missing".into(),
            checked: state.finished,
            expected_from: "before.zkps".into(),
            cutover: None,
            cutover_from: None,
            grace_seconds: 0,
            expected: 4,
            present: 3,
            missing: 1,
            persistent: 0,
            new: 0,
            roles: vec![role("kafka brokers", 3, 2), role("kafka controller", 1, 1)],
        };
        state.registrations = Some(r.clone());
        let text = |s: &PairState| {
            let mut e = Exposition::new();
            write_agent_pair(&mut e, &AgentPair::new(s, State::Ok));
            e.render(Format::Text)
        };
        let served = text(&state);
        for line in [
            "zkparity_registrations_status{pair=\"kafka\"} 2\n",
            "zkparity_registrations_expected{pair=\"kafka\",role=\"kafka brokers\"} 3\n",
            "zkparity_registrations_present{pair=\"kafka\",role=\"kafka brokers\"} 2\n",
            "zkparity_registrations_missing{pair=\"kafka\",role=\"kafka brokers\"} 1\n",
            "zkparity_registrations_missing{pair=\"kafka\",role=\"kafka controller\"} 0\n",
        ] {
            assert!(served.contains(line), "{line} in\n{served}");
        }
        r.state = "UNKNOWN".into();
        state.registrations = Some(r);
        let served = text(&state);
        assert!(served.contains("zkparity_registrations_status{pair=\"kafka\"} 3\n"));
        assert!(
            !served.contains("zkparity_registrations_missing"),
            "{served}"
        );
        state.registrations = None;
        assert!(!text(&state).contains("zkparity_registrations"));
    }
}
