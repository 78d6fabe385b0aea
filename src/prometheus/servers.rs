//! The metrics of a pair's two ensembles and their servers, from the
//! agent's four-letter-word probes ([`crate::probe`]).
//!
//! Server numbers are named after ZooKeeper's own Prometheus provider
//! (`znode_count` → `zkparity_server_znodes`, `avg_latency` →
//! `zkparity_server_avg_latency_seconds`), with base units and without the
//! `_count` suffix that Prometheus reserves for histograms and summaries.
//! A number the server did not give is left out, not written as 0.

use std::time::SystemTime;

use crate::probe::{EnsembleView, ProbeReport, ServerProbe, ServerState};

use super::exposition::{Exposition, Kind};
use super::pair::epoch;

type Labels = Vec<(&'static str, String)>;

/// The servers of a connect string, without its chroot: the ensemble.
fn ensemble(connect: &str) -> String {
    connect.split('/').next().unwrap_or(connect).to_string()
}

/// A probe's families for pair `pair`, taken at `at`.
pub(crate) fn write_probe(e: &mut Exposition, pair: &str, report: &ProbeReport, at: SystemTime) {
    e.add(
        "zkparity_probe_last_timestamp_seconds",
        "When the pair's ensembles were last probed with the four-letter words (Unix time).",
        Kind::Gauge,
        vec![("pair", pair.to_string())],
        epoch(at),
    );
    for view in report.views() {
        write_ensemble(e, pair, view);
    }
}

fn write_ensemble(e: &mut Exposition, pair: &str, v: &EnsembleView) {
    let labels = || -> Labels {
        vec![
            ("pair", pair.to_string()),
            ("side", v.side.clone()),
            ("ensemble", ensemble(&v.connect)),
        ]
    };
    e.add(
        "zkparity_ensemble_healthy",
        "1 if the probe found the ensemble healthy (quorum, one leader, followers in sync, counts close).",
        Kind::Gauge,
        labels(),
        if v.healthy { 1.0 } else { 0.0 },
    );
    e.add(
        "zkparity_ensemble_servers",
        "Servers listed for the ensemble.",
        Kind::Gauge,
        labels(),
        v.servers_listed as f64,
    );
    e.add(
        "zkparity_ensemble_servers_serving",
        "Servers of the ensemble serving requests.",
        Kind::Gauge,
        labels(),
        v.servers_serving as f64,
    );
    e.add(
        "zkparity_ensemble_leaders",
        "Servers of the ensemble that say they lead (1 in a healthy quorum, 0 standalone).",
        Kind::Gauge,
        labels(),
        v.leaders as f64,
    );
    for s in &v.servers {
        let mut l = labels();
        l.push(("server", s.address.clone()));
        write_server(e, l, s);
    }
}

fn write_server(e: &mut Exposition, labels: Labels, s: &ServerProbe) {
    write_standing(e, &labels, s);
    write_contents(e, &labels, s);
    write_timing_and_sync(e, &labels, s);
}

fn gauge(
    e: &mut Exposition,
    labels: &Labels,
    name: &'static str,
    help: &'static str,
    v: Option<f64>,
) {
    if let Some(v) = v {
        e.add(name, help, Kind::Gauge, labels.clone(), v);
    }
}

fn n(v: Option<u64>) -> Option<f64> {
    v.map(|v| v as f64)
}

/// Whether the server answered and serves, and as what.
fn write_standing(e: &mut Exposition, labels: &Labels, s: &ServerProbe) {
    let answered = matches!(
        s.state,
        ServerState::Up | ServerState::NotServing | ServerState::Refused
    );
    e.add(
        "zkparity_server_up",
        "1 if the server answered as ZooKeeper (serving or not), 0 if it did not.",
        Kind::Gauge,
        labels.clone(),
        if answered { 1.0 } else { 0.0 },
    );
    e.add(
        "zkparity_server_serving",
        "1 if the server serves client requests.",
        Kind::Gauge,
        labels.clone(),
        if s.is_serving() { 1.0 } else { 0.0 },
    );
    if let Some(isro) = &s.isro {
        e.add(
            "zkparity_server_read_only",
            "1 if the server serves read-only clients only (isro).",
            Kind::Gauge,
            labels.clone(),
            if *isro == crate::probe::parse::Isro::ReadOnly {
                1.0
            } else {
                0.0
            },
        );
    }
    if let Some(mode) = &s.mode {
        let mut l = labels.clone();
        l.push(("mode", mode.as_str().to_string()));
        e.add(
            "zkparity_server_mode",
            "1 for the server's mode: leader, follower, observer, standalone or read-only.",
            Kind::Gauge,
            l,
            1.0,
        );
    }
}

/// What the server holds and carries: znodes, watches, connections, file
/// descriptors.
fn write_contents(e: &mut Exposition, labels: &Labels, s: &ServerProbe) {
    gauge(
        e,
        labels,
        "zkparity_server_znodes",
        "Znodes the server holds (mntr/srvr znode_count).",
        n(s.znodes),
    );
    gauge(
        e,
        labels,
        "zkparity_server_ephemerals",
        "Ephemeral znodes the server holds (ephemerals_count).",
        n(s.ephemerals),
    );
    gauge(
        e,
        labels,
        "zkparity_server_watches",
        "Watches set on the server (watch_count).",
        n(s.watches),
    );
    gauge(
        e,
        labels,
        "zkparity_server_approximate_data_size_bytes",
        "Approximate size of the server's data (approximate_data_size).",
        n(s.approx_data_size),
    );
    gauge(
        e,
        labels,
        "zkparity_server_outstanding_requests",
        "Requests queued on the server (outstanding_requests).",
        n(s.outstanding),
    );
    gauge(
        e,
        labels,
        "zkparity_server_num_alive_connections",
        "Client connections to the server (num_alive_connections).",
        n(s.connections),
    );
    gauge(
        e,
        labels,
        "zkparity_server_open_file_descriptors",
        "File descriptors the server has open (open_file_descriptor_count).",
        n(s.open_fds),
    );
    gauge(
        e,
        labels,
        "zkparity_server_max_file_descriptors",
        "The server's file descriptor limit (max_file_descriptor_count).",
        n(s.max_fds),
    );
}

/// Latencies, the quorum and its syncing, uptime, zxid and packet counters.
fn write_timing_and_sync(e: &mut Exposition, labels: &Labels, s: &ServerProbe) {
    let ms = |v: f64| v / 1000.0;
    gauge(
        e,
        labels,
        "zkparity_server_min_latency_seconds",
        "The server's minimum request latency (min_latency).",
        s.latency.map(|l| ms(l.min)),
    );
    gauge(
        e,
        labels,
        "zkparity_server_avg_latency_seconds",
        "The server's average request latency (avg_latency).",
        s.latency.map(|l| ms(l.avg)),
    );
    gauge(
        e,
        labels,
        "zkparity_server_max_latency_seconds",
        "The server's maximum request latency (max_latency).",
        s.latency.map(|l| ms(l.max)),
    );
    gauge(
        e,
        labels,
        "zkparity_server_quorum_size",
        "Voting members the server counts in its quorum (quorum_size).",
        n(s.quorum_size),
    );
    gauge(
        e,
        labels,
        "zkparity_server_learners",
        "Learners connected to the leader (learners).",
        n(s.learners),
    );
    gauge(
        e,
        labels,
        "zkparity_server_synced_followers",
        "Followers in sync with the leader (synced_followers).",
        n(s.synced_followers),
    );
    gauge(
        e,
        labels,
        "zkparity_server_pending_syncs",
        "Learners the leader is still syncing (pending_syncs).",
        n(s.pending_syncs),
    );
    gauge(
        e,
        labels,
        "zkparity_server_uptime_seconds",
        "How long the server has been up (uptime).",
        s.uptime_ms.map(|v| v as f64 / 1000.0),
    );
    // Exact as a float while the epoch stays below 2^21.
    gauge(
        e,
        labels,
        "zkparity_server_zxid",
        "The server's last zxid (epoch in the high 32 bits).",
        s.zxid.map(|z| z.0 as f64),
    );
    for (name, help, v) in [
        (
            "zkparity_server_packets_received",
            "Packets the server received since its start (packets_received).",
            s.packets_received,
        ),
        (
            "zkparity_server_packets_sent",
            "Packets the server sent since its start (packets_sent).",
            s.packets_sent,
        ),
    ] {
        if let Some(v) = v {
            e.add(name, help, Kind::Counter, labels.clone(), v as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ensemble_label_is_the_server_list_without_the_chroot() {
        assert_eq!(ensemble("a:2181,b:2181/kafka"), "a:2181,b:2181");
        assert_eq!(ensemble("a:2181"), "a:2181");
    }
}
