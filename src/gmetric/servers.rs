//! The per-server ZooKeeper metrics: each server as its own Ganglia host,
//! under the names of ZooKeeper's contrib gmond module (group `zookeeper`).
//!
//! Everything comes from a four-letter-word [`ServerProbe`]: `srvr` and
//! `mntr` are all it takes ([`probe_options`]). What a server did not say
//! is not sent: a down server sends nothing at all (its host then goes
//! "down" in gweb), a server that refuses `mntr` sends what `srvr` gave, and
//! leader-only numbers (learners, syncs, proposal sizes) come only from the
//! leader. Zeros for numbers nobody reported would look like data.
//!
//! # Host names
//!
//! A server is shown as the host `HOST_PORT`, keyed `IP_PORT`: `zk-old-1:2181`
//! resolving to 10.0.0.5 becomes `10.0.0.5_2181:zk-old-1_2181` on the wire.
//! gmond keys a spoofed host by the part before the colon alone, so two
//! servers on one address (a loopback test ensemble, or a new ensemble
//! co-located with the old one on other ports) would otherwise share one
//! host, the second one's name ignored. The port is in the key always, not
//! only when addresses repeat, so a server's host never changes with what
//! else is listed; and a bare IP would land on the machine's own gmond host,
//! whose name gmond picks by reverse DNS, making the shown name depend on
//! which packet a restarted gmond heard first. `_` joins address and port as
//! in the pair's default name; only a sanitised IPv6 address brings `_`s of
//! its own into a key, and the port after the last one keeps keys unique.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::parity::Timing;
use super::sanitize::{self, MAX_SPOOF_NAME_LEN};
use super::{Metric, Slope, Spoof, Value};
use crate::connect::ConnectString;
use crate::probe::{self, AdminEndpoint, ProbeOptions, ServerProbe, ServerState, Word};

/// The web UI's metric group of every per-server metric, as the contrib
/// module has it.
pub(crate) const GROUP: &str = "zookeeper";

/// Decimals of `zk_avg_latency`: `mntr` rounds averages to four.
pub(crate) const AVG_LATENCY_DECIMALS: u8 = 4;

/// Probe options for the per-server metrics: `srvr` (whitelisted by default
/// since 3.5.3) and `mntr`, nothing else. `conf`, `envi`, `wchs` and the rest
/// add nothing a metric needs, and each would cost a connection per server
/// and round.
pub fn probe_options(timeout: Duration) -> ProbeOptions {
    ProbeOptions {
        timeout,
        words: vec![Word::Srvr, Word::Mntr],
        ..ProbeOptions::default()
    }
}

/// Probes every server listed in `connects` at once (each with its
/// ensemble's AdminServer), each server once even when several connect
/// strings list it (chroots play no part).
pub async fn probe_servers(
    connects: &[(&ConnectString, &AdminEndpoint)],
    opts: &ProbeOptions,
) -> Vec<ServerProbe> {
    let mut seen = HashSet::new();
    let hosts: Vec<(&(String, u16), &AdminEndpoint, u16)> = connects
        .iter()
        .flat_map(|(c, admin)| {
            c.hosts
                .iter()
                .enumerate()
                .map(move |(i, h)| (h, *admin, admin.port_for(i)))
        })
        .filter(|(h, _, _)| seen.insert(*h))
        .collect();
    futures::future::join_all(
        hosts
            .iter()
            .map(|((h, p), admin, port)| probe::probe_server(h, *p, opts, admin, *port)),
    )
    .await
}

/// Host and port of a probe's `host:port` (`[v6]:port`) address.
fn listed_host(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    Some((host, port.parse().ok()?))
}

/// The Ganglia host a server's metrics go to (see the module docs), or
/// `None` when nothing answered, so there is no address to key it by.
pub(crate) fn server_host(p: &ServerProbe) -> Option<Spoof> {
    let resolved: SocketAddr = p.resolved.as_deref()?.parse().ok()?;
    let ip = match resolved.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(IpAddr::V6(v6), IpAddr::V4)
            .to_string(),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let port = resolved.port();
    let listed = listed_host(&p.address).map_or(ip.as_str(), |(h, _)| h);
    let suffix = format!("_{port}");
    // A name over gmond's limit would be refused every round; a cut host
    // part with the port kept still names the server. The token is ASCII,
    // so any length is a character boundary.
    let mut name = sanitize::token(listed);
    name.truncate(MAX_SPOOF_NAME_LEN - suffix.len());
    name.push_str(&suffix);
    Some(Spoof::new(
        format!("{}{suffix}", sanitize::token(&ip)),
        name,
    ))
}

/// Whether anything the server said is worth a host: a down server gets
/// none, and neither does a port that answered but not as ZooKeeper unless
/// it gave a version first (it answered `srvr`, then stopped answering).
fn reports(p: &ServerProbe) -> bool {
    match p.state {
        ServerState::Up | ServerState::NotServing | ServerState::Refused => true,
        ServerState::Unrecognised { .. } => p.version.is_some(),
        ServerState::Down { .. } => false,
    }
}

/// A count as uint32; `None` (not sent) past its range rather than a
/// clamped number that would look real.
fn count(v: Option<u64>) -> Option<Value> {
    v.and_then(|n| u32::try_from(n).ok()).map(Value::U32)
}

/// A count that can pass 2^32 (cumulative packets, bytes of data) as a
/// double printed without decimals: exact up to 2^53, and a whole number
/// is what an RRD COUNTER takes.
fn big(v: Option<u64>) -> Option<Value> {
    v.map(|n| Value::Double(n as f64, 0))
}

/// Whole milliseconds, as ZooKeeper measures min and max latency.
fn millis(v: f64) -> Option<Value> {
    (v.is_finite() && v >= 0.0 && v <= f64::from(u32::MAX)).then(|| Value::U32(v.round() as u32))
}

/// A leader's proposal size from `mntr`; -1 (before the first proposal)
/// is "none yet", not a size.
fn proposal_size(p: &ServerProbe, key: &str) -> Option<Value> {
    let n = p.mntr.get(key)?.as_i64()?;
    u32::try_from(n).ok().map(Value::U32)
}

/// The server's metrics and its heartbeat, or nothing (see the module docs).
pub(crate) fn server_metrics(p: &ServerProbe, t: Timing, started_epoch: u32) -> Vec<Metric> {
    let Some(host) = server_host(p).filter(|_| reports(p)) else {
        return Vec::new();
    };
    let mut out = vec![Metric::heartbeat(host.clone(), started_epoch)];
    let mut add = |name: &str, value: Option<Value>, units: &str, slope: Slope, title: &str| {
        if let Some(value) = value {
            out.push(Metric {
                units: units.into(),
                slope,
                tmax: t.tmax,
                dmax: t.dmax,
                groups: vec![GROUP.into()],
                title: title.into(),
                spoof: Some(host.clone()),
                ..Metric::new(name, value)
            });
        }
    };
    let gauge = Slope::Both;
    let lat = p.latency;
    let avg_latency = lat
        .map(|l| l.avg)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| Value::Double(v, AVG_LATENCY_DECIMALS));
    let version = p.version.as_ref().map(|v| Value::Str(v.text.clone()));
    #[rustfmt::skip]
    let metrics = [
        // Slope zero, as gmond's own text metrics (os_name, …): they
        // describe the host, gmetad keeps no RRD for them.
        ("zk_server_state", Some(Value::Str(p.role().to_string())), "", Slope::Zero, "Server state"),
        ("zk_version", version, "", Slope::Zero, "ZooKeeper version"),
        ("zk_avg_latency", avg_latency, "ms", gauge, "Average request latency"),
        ("zk_min_latency", lat.and_then(|l| millis(l.min)), "ms", gauge, "Minimum request latency"),
        ("zk_max_latency", lat.and_then(|l| millis(l.max)), "ms", gauge, "Maximum request latency"),
        // Cumulative since the server started: slope positive makes gmetad
        // keep an RRD COUNTER, so the graphs show packets per second.
        ("zk_packets_received", big(p.packets_received), "packets", Slope::Positive, "Packets received"),
        ("zk_packets_sent", big(p.packets_sent), "packets", Slope::Positive, "Packets sent"),
        ("zk_num_alive_connections", count(p.connections), "connections", gauge, "Client connections"),
        ("zk_outstanding_requests", count(p.outstanding), "requests", gauge, "Outstanding requests"),
        ("zk_znode_count", count(p.znodes), "znodes", gauge, "Znodes"),
        ("zk_watch_count", count(p.watches), "watches", gauge, "Watches"),
        ("zk_ephemerals_count", count(p.ephemerals), "znodes", gauge, "Ephemeral znodes"),
        ("zk_approximate_data_size", big(p.approx_data_size), "bytes", gauge, "Approximate data size"),
        ("zk_open_file_descriptor_count", count(p.open_fds), "descriptors", gauge, "Open file descriptors"),
        ("zk_max_file_descriptor_count", count(p.max_fds), "descriptors", gauge, "File descriptor limit"),
        // Leader only. `zk_followers` was renamed `zk_learners` in 3.6; both
        // names carry the number, so graphs made for either keep working.
        ("zk_learners", count(p.learners), "nodes", gauge, "Learners (followers and observers)"),
        ("zk_followers", count(p.learners), "nodes", gauge, "Learners (zk_followers before 3.6)"),
        ("zk_synced_followers", count(p.synced_followers), "nodes", gauge, "Synced followers"),
        ("zk_pending_syncs", count(p.pending_syncs), "syncs", gauge, "Pending syncs"),
    ];
    for (name, value, units, slope, title) in metrics {
        add(name, value, units, slope, title);
    }
    for (key, title) in [
        ("zk_last_proposal_size", "Last proposal size"),
        ("zk_min_proposal_size", "Minimum proposal size"),
        ("zk_max_proposal_size", "Maximum proposal size"),
    ] {
        add(key, proposal_size(p, key), "bytes", gauge, title);
    }
    out
}

/// Every server's metrics for one round, each server once: a server listed
/// in both ensembles (or twice under different names) is one host.
pub(crate) fn round_metrics<'a>(
    servers: impl IntoIterator<Item = &'a ServerProbe>,
    t: Timing,
    started_epoch: u32,
) -> Vec<Metric> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for p in servers {
        if server_host(p).is_some_and(|h| seen.insert(h.ip)) {
            out.extend(server_metrics(p, t, started_epoch));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::WordError;

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/4lw")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A probe of `127.0.0.1:port` from captured answers; `None` for a word
    /// that failed to connect.
    fn probe(port: u16, srvr: Option<&str>, mntr: Option<&str>) -> ServerProbe {
        let answer =
            |a: Option<&str>| Some(a.map(str::to_string).ok_or(WordError::ConnectionRefused));
        let mut p = ServerProbe::from_answers(
            &format!("127.0.0.1:{port}"),
            &[(Word::Srvr, answer(srvr)), (Word::Mntr, answer(mntr))],
        );
        if srvr.is_some() || mntr.is_some() {
            p.resolved = Some(format!("127.0.0.1:{port}"));
        }
        p
    }

    fn names(ms: &[Metric]) -> Vec<&str> {
        ms.iter().map(|m| m.name.as_str()).collect()
    }

    fn value<'a>(ms: &'a [Metric], name: &str) -> Option<&'a Value> {
        ms.iter().find(|m| m.name == name).map(|m| &m.value)
    }

    const EVERY_SERVER: [&str; 16] = [
        "heartbeat",
        "zk_server_state",
        "zk_version",
        "zk_avg_latency",
        "zk_min_latency",
        "zk_max_latency",
        "zk_packets_received",
        "zk_packets_sent",
        "zk_num_alive_connections",
        "zk_outstanding_requests",
        "zk_znode_count",
        "zk_watch_count",
        "zk_ephemerals_count",
        "zk_approximate_data_size",
        "zk_open_file_descriptor_count",
        "zk_max_file_descriptor_count",
    ];

    const LEADER_ONLY: [&str; 7] = [
        "zk_learners",
        "zk_followers",
        "zk_synced_followers",
        "zk_pending_syncs",
        "zk_last_proposal_size",
        "zk_min_proposal_size",
        "zk_max_proposal_size",
    ];

    #[test]
    fn a_leader_sends_the_whole_contrib_set_with_corrected_types() {
        let p = probe(
            2181,
            Some(&fixture("leader-srvr.txt")),
            Some(&fixture("leader-mntr.txt")),
        );
        let ms = server_metrics(
            &p,
            Timing {
                tmax: 90,
                dmax: 600,
            },
            1_700_000_000,
        );
        let want: Vec<&str> = EVERY_SERVER.iter().chain(&LEADER_ONLY).copied().collect();
        assert_eq!(names(&ms), want);
        // srvr's snapshot wins where both words carry a number.
        assert_eq!(
            value(&ms, "zk_avg_latency"),
            Some(&Value::Double(0.0, AVG_LATENCY_DECIMALS))
        );
        assert_eq!(value(&ms, "zk_max_latency"), Some(&Value::U32(0)));
        assert_eq!(
            value(&ms, "zk_packets_received"),
            Some(&Value::Double(1.0, 0))
        );
        assert_eq!(
            value(&ms, "zk_approximate_data_size"),
            Some(&Value::Double(5997.0, 0))
        );
        assert_eq!(value(&ms, "zk_learners"), Some(&Value::U32(2)));
        assert_eq!(value(&ms, "zk_followers"), Some(&Value::U32(2)));
        assert_eq!(value(&ms, "zk_synced_followers"), Some(&Value::U32(2)));
        assert_eq!(value(&ms, "zk_min_proposal_size"), Some(&Value::U32(48)));
        assert_eq!(value(&ms, "zk_max_proposal_size"), Some(&Value::U32(104)));
        assert_eq!(
            value(&ms, "zk_server_state"),
            Some(&Value::Str("leader".into()))
        );
        let host = server_host(&p).expect("host");
        assert_eq!(host.wire(), "127.0.0.1_2181:127.0.0.1_2181");
        for m in &ms[1..] {
            assert_eq!(m.spoof.as_ref(), Some(&host));
            assert_eq!(m.groups, vec![GROUP.to_string()], "{}", m.name);
            assert_eq!((m.tmax, m.dmax), (90, 600), "{}", m.name);
            assert!(!m.title.is_empty(), "{}", m.name);
            let want = match m.name.as_str() {
                "zk_packets_received" | "zk_packets_sent" => Slope::Positive,
                "zk_server_state" | "zk_version" => Slope::Zero,
                _ => Slope::Both,
            };
            assert_eq!(m.slope, want, "{}", m.name);
        }
        assert_eq!(ms[0].value, Value::U32(1_700_000_000));
    }

    #[test]
    fn a_follower_sends_no_leader_only_metric() {
        let p = probe(
            2182,
            Some(&fixture("follower-srvr.txt")),
            Some(&fixture("follower-mntr.txt")),
        );
        let ms = server_metrics(&p, Timing::default(), 0);
        assert_eq!(names(&ms), EVERY_SERVER);
        // 3.6+ prints a decimal average; it goes out as one.
        assert_eq!(
            value(&ms, "zk_avg_latency"),
            Some(&Value::Double(2.5, AVG_LATENCY_DECIMALS))
        );
        assert_eq!(value(&ms, "zk_min_latency"), Some(&Value::U32(1)));
        assert_eq!(value(&ms, "zk_max_latency"), Some(&Value::U32(5)));
    }

    #[test]
    fn a_34_leader_reports_followers_and_no_proposal_sizes_before_the_first() {
        let p = probe(
            2181,
            Some(&fixture("constructed-3.4-leader-srvr.txt")),
            Some(&fixture("constructed-3.4-leader-mntr.txt")),
        );
        let ms = server_metrics(&p, Timing::default(), 0);
        let n = names(&ms);
        assert!(
            n.contains(&"zk_learners") && n.contains(&"zk_followers"),
            "{n:?}"
        );
        assert!(!n.iter().any(|n| n.ends_with("_proposal_size")), "{n:?}");
        // An integer average before 3.6, still a double for one RRD type.
        assert_eq!(
            value(&ms, "zk_avg_latency"),
            Some(&Value::Double(0.0, AVG_LATENCY_DECIMALS))
        );
        assert_eq!(value(&ms, "zk_max_latency"), Some(&Value::U32(12)));
    }

    #[test]
    fn prometheus_doubles_become_the_same_types() {
        let p = probe(
            2183,
            None,
            Some(&fixture("constructed-prometheus-follower-mntr.txt")),
        );
        let ms = server_metrics(&p, Timing::default(), 0);
        // The fixture has no packet counters: nothing stands in for them.
        let want: Vec<&str> = EVERY_SERVER
            .iter()
            .copied()
            .filter(|n| !n.starts_with("zk_packets_"))
            .collect();
        assert_eq!(names(&ms), want);
        assert_eq!(value(&ms, "zk_znode_count"), Some(&Value::U32(309)));
        assert_eq!(value(&ms, "zk_max_latency"), Some(&Value::U32(1)));
        assert_eq!(
            value(&ms, "zk_avg_latency"),
            Some(&Value::Double(0.3333, AVG_LATENCY_DECIMALS))
        );
    }

    #[test]
    fn a_server_refusing_mntr_sends_only_what_srvr_said() {
        let p = probe(
            2181,
            Some(&fixture("follower-srvr.txt")),
            Some("mntr is not executed because it is not in the whitelist.\n"),
        );
        let ms = server_metrics(&p, Timing::default(), 0);
        // Every server's metrics up to the znode count are srvr's.
        assert_eq!(names(&ms), EVERY_SERVER[..11]);
        assert_eq!(value(&ms, "zk_znode_count"), Some(&Value::U32(9)));
    }

    #[test]
    fn a_server_without_numbers_sends_its_state_and_a_down_one_nothing() {
        let not_serving = fixture("not-serving.txt");
        let first = not_serving.lines().next().expect("a line");
        let p = probe(2181, Some(first), Some(first));
        let ms = server_metrics(&p, Timing::default(), 0);
        assert_eq!(names(&ms), ["heartbeat", "zk_server_state"]);
        assert_eq!(ms[1].value, Value::Str("not serving".into()));

        let refused = "srvr is not executed because it is not in the whitelist.";
        let mntr_refused = "mntr is not executed because it is not in the whitelist.";
        let p = probe(2181, Some(refused), Some(mntr_refused));
        let ms = server_metrics(&p, Timing::default(), 0);
        assert_eq!(names(&ms), ["heartbeat", "zk_server_state"]);
        assert_eq!(ms[1].value, Value::Str("refused".into()));

        let down = probe(2181, None, None);
        assert!(matches!(down.state, ServerState::Down { .. }));
        assert!(server_metrics(&down, Timing::default(), 0).is_empty());

        // Something else on the port: no host for it.
        let p = probe(2181, Some("HTTP/1.1 400 Bad Request\r\n\r\n"), None);
        assert!(
            matches!(p.state, ServerState::Unrecognised { .. }),
            "{:?}",
            p.state
        );
        assert!(server_metrics(&p, Timing::default(), 0).is_empty());
    }

    #[test]
    fn numbers_out_of_range_or_not_finite_are_left_out() {
        let mut p = probe(2181, Some(&fixture("follower-srvr.txt")), None);
        p.latency = Some(crate::probe::parse::Latency {
            min: -1.0,
            avg: f64::NAN,
            max: 1e12,
        });
        p.znodes = Some(u64::from(u32::MAX) + 1);
        p.packets_sent = Some(u64::from(u32::MAX) + 1);
        let ms = server_metrics(&p, Timing::default(), 0);
        let n = names(&ms);
        for gone in [
            "zk_avg_latency",
            "zk_min_latency",
            "zk_max_latency",
            "zk_znode_count",
        ] {
            assert!(!n.contains(&gone), "{gone} in {n:?}");
        }
        assert_eq!(
            value(&ms, "zk_packets_sent"),
            Some(&Value::Double(4_294_967_296.0, 0))
        );
    }

    #[test]
    fn hosts_are_keyed_by_address_and_port_and_named_as_listed() {
        let mut p = probe(2181, Some(&fixture("follower-srvr.txt")), None);
        p.address = "zk-old-1.example.com:2181".into();
        p.resolved = Some("10.0.0.5:2181".into());
        assert_eq!(
            server_host(&p).unwrap().wire(),
            "10.0.0.5_2181:zk-old-1.example.com_2181"
        );
        p.address = "[::1]:2182".into();
        p.resolved = Some("[::1]:2182".into());
        assert_eq!(server_host(&p).unwrap().wire(), "__1_2182:__1_2182");
        p.address = "[::ffff:10.0.0.7]:2181".into();
        p.resolved = Some("[::ffff:10.0.0.7]:2181".into());
        assert_eq!(server_host(&p).unwrap().ip, "10.0.0.7_2181");
        // Every host the sanitiser lets through unchanged, port kept when cut.
        p.address = format!("{}:2181", "h".repeat(300));
        let host = server_host(&p).unwrap();
        assert_eq!(host.name.len(), MAX_SPOOF_NAME_LEN);
        assert!(host.name.ends_with("h_2181"));
        let sane = sanitize::metric(&Metric {
            spoof: Some(host.clone()),
            ..Metric::new("x", Value::U32(1))
        })
        .expect("within gmond's limits");
        assert_eq!(sane.spoof, Some(host));
        p.resolved = None;
        assert_eq!(server_host(&p), None);
    }

    #[test]
    fn servers_sharing_an_address_are_separate_hosts_and_a_repeat_is_sent_once() {
        let srvr = fixture("standalone-srvr.txt");
        let a = probe(21810, Some(&srvr), None);
        let b = probe(21811, Some(&srvr), None);
        let mut a_again = a.clone();
        a_again.address = "localhost:21810".into();
        let ms = round_metrics([&a, &b, &a_again], Timing::default(), 0);
        let hosts: HashSet<String> = ms
            .iter()
            .filter_map(|m| m.spoof.as_ref().map(Spoof::wire))
            .collect();
        let want: HashSet<String> = [
            "127.0.0.1_21810:127.0.0.1_21810".to_string(),
            "127.0.0.1_21811:127.0.0.1_21811".to_string(),
        ]
        .into();
        assert_eq!(hosts, want);
        assert_eq!(ms.iter().filter(|m| m.name == "heartbeat").count(), 2);
    }
}
