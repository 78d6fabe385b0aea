//! Ganglia metrics against a real gmond 3.7.2 and Debian's own `gmetric`:
//! what gmond shows for every field, byte-for-byte equality with gmetric,
//! expiry and restarts, the `zkparity gmetric` round, and every ZooKeeper
//! server of a standalone and a three-member ensemble as its own host.

mod common;
mod gmetric_support;

use std::net::UdpSocket;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gmetric_support::{
    gmetric_datagrams, recv_all, FakeZk, Ganglia, Gmond, Mode, XmlHost, XmlMetric,
};
use zkparity::connect::ConnectString;
use zkparity::gmetric::xdr::{self, ValueWire, MAX_PACKET_LEN};
use zkparity::gmetric::{
    servers, Channel, Emitter, MetadataPolicy, Metric, Outcome, Sender, SenderOptions, Slope,
    Spoof, Timing, Value,
};
use zkparity::probe::parse::Mode as ZkMode;
use zkparity::probe::ServerProbe;
use zkparity_sandbox::{Ensemble, ServerOptions, ZkServer};

/// The mute gmond shared by the tests that only send and read.
fn gmond() -> &'static Gmond {
    static G: OnceLock<Gmond> = OnceLock::new();
    G.get_or_init(|| Gmond::start(Mode::Mute))
}

fn sender_to(channel: &str, options: SenderOptions) -> Sender {
    Sender::new(
        vec![Channel::resolve(channel, 1).expect("channel")],
        options,
    )
    .expect("sender")
}

fn send(g: &Gmond, metrics: &[Metric]) {
    let mut s = sender_to(&g.channel(), SenderOptions::default());
    let r = s.send(metrics);
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    assert_eq!(r.metrics_sent, metrics.len());
}

fn spoofed(ip: &str, host: &str, m: Metric) -> Metric {
    Metric {
        spoof: Some(Spoof::new(ip, host)),
        ..m
    }
}

/// NAME, VAL, TYPE, UNITS, TMAX, DMAX, SLOPE as gmond prints them.
fn fields(m: &XmlMetric) -> [&str; 7] {
    [
        &m.name, &m.val, &m.r#type, &m.units, &m.tmax, &m.dmax, &m.slope,
    ]
}

#[test]
fn every_value_type_reaches_gmond_with_its_metadata() {
    let g = gmond();
    let base = |name: &str, v: Value| Metric {
        units: "things".into(),
        tmax: 90,
        dmax: 600,
        groups: vec!["typed".into()],
        ..Metric::new(name, v)
    };
    let metrics = vec![
        spoofed("10.77.0.1", "typed-host", base("t_u16", Value::U16(65535))),
        spoofed("10.77.0.1", "typed-host", base("t_i16", Value::I16(-5))),
        spoofed(
            "10.77.0.1",
            "typed-host",
            base("t_u32", Value::U32(4_000_000_000)),
        ),
        spoofed(
            "10.77.0.1",
            "typed-host",
            base("t_i32", Value::I32(-123_456)),
        ),
        spoofed(
            "10.77.0.1",
            "typed-host",
            base("t_float", Value::Float(0.67, 2)),
        ),
        spoofed(
            "10.77.0.1",
            "typed-host",
            base("t_double", Value::Double(1234.56789, 3)),
        ),
        spoofed(
            "10.77.0.1",
            "typed-host",
            base("t_string", Value::Str("3.8.0 <leader> & \"co\"".into())),
        ),
    ];
    send(g, &metrics);
    let x = g.wait_for("all seven typed metrics", |x| {
        x.host("typed-host").is_some_and(|h| h.metrics.len() == 7)
    });
    let host = x.host("typed-host").unwrap();
    assert_eq!(host.ip, "10.77.0.1");
    let want = [
        ["t_u16", "65535", "uint16"],
        ["t_i16", "-5", "int16"],
        ["t_u32", "4000000000", "uint32"],
        ["t_i32", "-123456", "int32"],
        ["t_float", "0.67", "float"],
        ["t_double", "1234.568", "double"],
        ["t_string", "3.8.0 <leader> & \"co\"", "string"],
    ];
    for [name, val, ty] in want {
        let m = x.metric("typed-host", name).unwrap();
        assert_eq!(
            fields(m),
            [name, val, ty, "things", "90", "600", "both"],
            "{m:?}"
        );
        assert_eq!(m.extra("GROUP"), vec!["typed"]);
        assert_eq!(m.extra("SPOOF_HOST"), vec!["10.77.0.1:typed-host"]);
    }
}

#[test]
fn slopes_titles_descriptions_and_groups_show_in_gmond() {
    let g = gmond();
    let slopes = [
        Slope::Zero,
        Slope::Positive,
        Slope::Negative,
        Slope::Both,
        Slope::Unspecified,
        Slope::Derivative,
    ];
    let metrics: Vec<Metric> = slopes
        .iter()
        .map(|&slope| {
            spoofed(
                "10.77.0.2",
                "slope-host",
                Metric {
                    slope,
                    tmax: 5,
                    dmax: 0,
                    groups: vec!["zookeeper".into(), "zkparity".into()],
                    title: format!("Slope {}", slope.as_str()),
                    desc: "How it changes".into(),
                    ..Metric::new(format!("slope_{}", slope.as_str()), Value::U32(1))
                },
            )
        })
        .collect();
    send(g, &metrics);
    let x = g.wait_for("six slopes", |x| {
        x.host("slope-host").is_some_and(|h| h.metrics.len() == 6)
    });
    for slope in slopes {
        let m = x
            .metric("slope-host", &format!("slope_{}", slope.as_str()))
            .unwrap();
        assert_eq!(m.slope, slope.as_str());
        assert_eq!((m.tmax.as_str(), m.dmax.as_str()), ("5", "0"));
        let mut groups = m.extra("GROUP");
        groups.sort_unstable();
        assert_eq!(groups, vec!["zkparity", "zookeeper"]);
        assert_eq!(m.extra("TITLE"), vec![format!("Slope {}", slope.as_str())]);
        assert_eq!(m.extra("DESC"), vec!["How it changes"]);
    }
}

#[test]
fn unspoofed_metrics_land_on_the_sending_address() {
    let g = gmond();
    send(g, &[Metric::new("unspoofed_probe", Value::U32(7))]);
    let x = g.wait_for("unspoofed_probe", |x| {
        x.metric_anywhere("unspoofed_probe").is_some()
    });
    let (host, m) = x.metric_anywhere("unspoofed_probe").unwrap();
    assert_eq!(host.ip, "127.0.0.1");
    assert_eq!(m.val, "7");
    assert!(m.extra("SPOOF_HOST").is_empty());
}

#[test]
fn string_wire_values_show_like_gmetrics() {
    let g = gmond();
    let mut s = sender_to(
        &g.channel(),
        SenderOptions {
            wire: ValueWire::String,
            ..SenderOptions::default()
        },
    );
    let r = s.send(&[spoofed(
        "10.77.0.3",
        "string-wire",
        Metric::new("sw_double", Value::Double(2.5, 2)),
    )]);
    assert_eq!(r.error_count, 0);
    let x = g.wait_for("sw_double", |x| {
        x.metric("string-wire", "sw_double").is_some()
    });
    let m = x.metric("string-wire", "sw_double").unwrap();
    assert_eq!((m.val.as_str(), m.r#type.as_str()), ("2.50", "double"));
}

#[test]
fn hostile_names_units_and_extra_data_keep_gmonds_xml_well_formed() {
    let g = gmond();
    let m = Metric {
        units: "say \"hi\" & <bye>".into(),
        groups: vec!["a\"b".into()],
        title: "T&T's <title>".into(),
        desc: "line one\nline \"two\"".into(),
        spoof: Some(Spoof::new("10.77.0.4", "bad\"host<&>:x")),
        ..Metric::new("bad\"name<&>:x y", Value::Str("v\u{1}\"<&>".into()))
    };
    send(g, &[m]);
    // `Gmond::xml` parses strictly: a raw quote or ampersand fails here.
    let x = g.wait_for("the sanitised metric", |x| {
        x.metric("bad_host____x", "bad_name____x_y").is_some()
    });
    let host = x.host("bad_host____x").unwrap();
    assert_eq!(host.ip, "10.77.0.4");
    let m = &host.metrics[0];
    assert_eq!(m.units, "say hi  bye");
    assert_eq!(m.val, "v\"<&>");
    assert_eq!(m.extra("GROUP"), vec!["ab"]);
    assert_eq!(m.extra("TITLE"), vec!["TTs title"]);
    assert_eq!(m.extra("DESC"), vec!["line oneline two"]);
}

#[test]
fn a_metadata_packet_of_exactly_the_size_limit_is_accepted() {
    let g = gmond();
    // Spread over several extra-data pairs: gmond cuts any one XML line at
    // 1023 bytes, so no single field may carry it all.
    let mut m = spoofed(
        "10.77.0.5",
        "big-host",
        Metric {
            title: "t".repeat(500),
            groups: vec!["g".repeat(400)],
            ..Metric::new("big_metadata", Value::U32(1))
        },
    );
    let host = SenderOptions::default().local_host;
    let mut n = 0;
    let len = loop {
        m.desc = "d".repeat(n);
        let len = xdr::metadata_packet(&host, &m).map_or(0, |p| p.len());
        if len >= MAX_PACKET_LEN {
            break len;
        }
        n += 1;
    };
    assert_eq!(len, MAX_PACKET_LEN);
    send(g, &[m]);
    let x = g.wait_for("big_metadata", |x| {
        x.metric("big-host", "big_metadata").is_some()
    });
    let shown = x.metric("big-host", "big_metadata").unwrap();
    assert_eq!(shown.extra("DESC"), vec!["d".repeat(n)]);
}

#[test]
fn spoofed_hosts_show_the_heartbeats_start_time_and_no_heartbeat_metric() {
    let g = gmond();
    let spoof = Spoof::new("10.77.0.6", "beating");
    send(
        g,
        &[
            Metric::heartbeat(spoof.clone(), 1_700_000_000),
            spoofed("10.77.0.6", "beating", Metric::new("alive", Value::U32(1))),
        ],
    );
    let x = g.wait_for("the beating host", |x| {
        x.host("beating")
            .is_some_and(|h| h.gmond_started == "1700000000" && !h.metrics.is_empty())
    });
    let h = x.host("beating").unwrap();
    assert!(h.metrics.iter().all(|m| m.name != "heartbeat"), "{h:?}");
}

// ---------------------------------------------------------------------------
// Byte for byte against Debian's gmetric.

/// Our datagrams for `m`, sent as gmetric sends: metadata before every value,
/// the value as a string, the hostname in unspoofed packets.
fn our_datagrams(m: &Metric) -> Vec<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut s = sender_to(
        &sock.local_addr().unwrap().to_string(),
        SenderOptions {
            metadata: MetadataPolicy::Always,
            wire: ValueWire::String,
            ..SenderOptions::default()
        },
    );
    let r = s.send(std::slice::from_ref(m));
    assert_eq!(r.error_count, 0, "{:?}", r.errors);
    recv_all(&sock)
}

fn hex(packets: &[Vec<u8>]) -> Vec<String> {
    packets.iter().map(hex::encode).collect()
}

#[test]
fn our_packets_equal_debian_gmetrics_byte_for_byte() {
    let cases: Vec<(Vec<&str>, Metric)> = vec![
        (
            vec![
                "-n",
                "temp_c",
                "-v",
                "42",
                "-t",
                "uint32",
                "-u",
                "Celsius",
                "-x",
                "60",
                "-d",
                "0",
                "-g",
                "sensors",
                "-D",
                "Temperature",
                "-T",
                "Temp",
            ],
            Metric {
                units: "Celsius".into(),
                groups: vec!["sensors".into()],
                desc: "Temperature".into(),
                title: "Temp".into(),
                ..Metric::new("temp_c", Value::U32(42))
            },
        ),
        (
            vec![
                "-n",
                "zk_avg_latency",
                "-v",
                "2.178",
                "-t",
                "double",
                "-u",
                "ms",
                "-x",
                "90",
                "-d",
                "300",
                "-g",
                "zookeeper",
                "-S",
                "10.0.0.5:zk1",
            ],
            spoofed(
                "10.0.0.5",
                "zk1",
                Metric {
                    units: "ms".into(),
                    tmax: 90,
                    dmax: 300,
                    groups: vec!["zookeeper".into()],
                    ..Metric::new("zk_avg_latency", Value::Double(2.178, 3))
                },
            ),
        ),
        (
            vec![
                "-n",
                "zk_server_state",
                "-v",
                "leader",
                "-t",
                "string",
                "-g",
                "zookeeper,zkparity",
                "-T",
                "Server state",
                "-S",
                "10.0.0.5:zk1",
            ],
            spoofed(
                "10.0.0.5",
                "zk1",
                Metric {
                    groups: vec!["zookeeper".into(), "zkparity".into()],
                    title: "Server state".into(),
                    ..Metric::new("zk_server_state", Value::Str("leader".into()))
                },
            ),
        ),
        (
            vec!["-n", "neg", "-v", "-3", "-t", "int32", "-s", "zero"],
            Metric {
                slope: Slope::Zero,
                ..Metric::new("neg", Value::I32(-3))
            },
        ),
        (
            vec![
                "-n", "pkts", "-v", "65535", "-t", "uint16", "-s", "positive", "-u", "packets",
            ],
            Metric {
                slope: Slope::Positive,
                units: "packets".into(),
                ..Metric::new("pkts", Value::U16(65535))
            },
        ),
        (
            vec!["-n", "drift", "-v", "-7", "-t", "int16", "-s", "derivative"],
            Metric {
                slope: Slope::Derivative,
                ..Metric::new("drift", Value::I16(-7))
            },
        ),
        (
            vec![
                "-n", "ratio", "-v", "0.50", "-t", "float", "-s", "negative", "-d", "5",
            ],
            Metric {
                slope: Slope::Negative,
                dmax: 5,
                ..Metric::new("ratio", Value::Float(0.5, 2))
            },
        ),
    ];
    for (args, metric) in cases {
        let theirs = gmetric_datagrams(&args);
        assert_eq!(theirs.len(), 2, "gmetric {args:?} sends metadata and value");
        assert_eq!(
            hex(&our_datagrams(&metric)),
            hex(&theirs),
            "gmetric {args:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Expiry and restarts, each on a gmond of its own.

#[test]
fn a_metric_survives_past_dmax_while_metadata_keeps_coming() {
    let g = Gmond::start(Mode::Ticking);
    let dmax = 2;
    let kept = spoofed(
        "10.77.1.1",
        "expiry",
        Metric {
            dmax,
            ..Metric::new("kept", Value::U32(1))
        },
    );
    // The control: metadata once, then values only, the way a sender that
    // never re-sends metadata behaves. gmond must delete it, or this test
    // could not tell survival from a gmond that expires nothing.
    let once = Metric {
        name: "once".into(),
        ..kept.clone()
    };
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    let host = "ignored";
    raw.send_to(&xdr::metadata_packet(host, &once).unwrap(), g.udp_addr())
        .unwrap();
    let mut s = sender_to(&g.channel(), SenderOptions::default());
    let start = Instant::now();
    let mut seen_once = false;
    while start.elapsed() < Duration::from_secs(u64::from(dmax) * 3) {
        let r = s.send(std::slice::from_ref(&kept));
        assert_eq!(r.error_count, 0);
        raw.send_to(
            &xdr::value_packet(host, &once, ValueWire::Typed).unwrap(),
            g.udp_addr(),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        seen_once |= parse_now(&g).metric("expiry", "once").is_some();
    }
    assert!(seen_once, "the control metric showed at first");
    let x = g.wait_for("the control metric deleted", |x| {
        x.metric("expiry", "once").is_none()
    });
    let m = x.metric("expiry", "kept").expect("kept survives past dmax");
    assert_eq!(m.dmax, dmax.to_string());
}

fn parse_now(g: &Gmond) -> Ganglia {
    gmetric_support::parse(&g.xml())
}

#[test]
fn metrics_reappear_after_gmond_restarts_and_sending_to_it_while_down_is_harmless() {
    let mut g = Gmond::start(Mode::Mute);
    let m = spoofed(
        "10.77.1.2",
        "restarted",
        Metric::new("comeback", Value::U32(5)),
    );
    let interval = Duration::from_millis(500);
    let mut s = sender_to(
        &g.channel(),
        SenderOptions {
            metadata: MetadataPolicy::Every(interval),
            ..SenderOptions::default()
        },
    );
    s.send(std::slice::from_ref(&m));
    g.wait_for("comeback", |x| x.metric("restarted", "comeback").is_some());

    g.stop();
    for _ in 0..5 {
        let r = s.send(std::slice::from_ref(&m));
        assert_eq!((r.metrics_sent, r.error_count), (1, 0), "{:?}", r.errors);
    }
    g.restart();
    assert!(
        parse_now(&g).host("restarted").is_none(),
        "a restarted gmond starts empty"
    );
    // Values alone stay invisible to a gmond without metadata; it shows up
    // again once the interval has passed and the metadata follows.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        s.send(std::slice::from_ref(&m));
        if parse_now(&g).metric("restarted", "comeback").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "never reappeared: {}", g.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// `zkparity gmetric`: one compare, one round of parity metrics.

/// `zkparity gmetric` of `path` between `source` and `target`, sent to
/// `channel`, every difference re-checked at once; `extra` flags come last.
async fn gmetric_run(
    channel: &str,
    source: &str,
    target: &str,
    path: &str,
    extra: &[&str],
) -> common::Run {
    let mut args = vec![
        "gmetric",
        "--ganglia",
        channel,
        "--source",
        source,
        "--target",
        target,
        "--path",
        path,
        "--recheck-delay",
        "0s",
    ];
    args.extend_from_slice(extra);
    common::run(&args).await
}

/// Every parity metric a successful round sends for its pair.
const PARITY_METRICS: [&str; 17] = [
    "zkparity_source_nodes",
    "zkparity_target_nodes",
    "zkparity_diff_missing_in_target",
    "zkparity_diff_extra_in_target",
    "zkparity_diff_data",
    "zkparity_diff_acl",
    "zkparity_diff_node_kind",
    "zkparity_diff_sequence_counter",
    "zkparity_diff_unreadable",
    "zkparity_diff_confirmed",
    "zkparity_diff_transient",
    "zkparity_subtrees_matching",
    "zkparity_subtrees_total",
    "zkparity_identical",
    "zkparity_compare_duration",
    "zkparity_compare_ok",
    "zkparity_last_success_age",
];

#[tokio::test]
async fn gmetric_sends_the_parity_of_a_pair_under_the_pairs_host() {
    use common::*;
    let g = gmond();
    let (p, s, t) = pair_clients().await;
    let root = unique_path("gmetric-parity");
    both(&s, &t, &root, &[("same", b"1"), ("data", b"a")]).await;
    create(&s, &format!("{root}/missing"), b"").await;
    create(&s, &format!("{root}/missing/child"), b"").await;
    t.set_data(&format!("{root}/data"), b"b", None)
        .await
        .expect("set data");

    let run = gmetric_run(
        &g.channel(),
        &p.source.connect_string(),
        &p.target.connect_string(),
        &root,
        &[
            "--pair-name",
            "parity-pair",
            "--tmax",
            "120",
            "--dmax",
            "3600",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    let x = g.wait_for("every parity metric", |x| {
        x.host("parity-pair")
            .is_some_and(|h| h.metrics.len() == PARITY_METRICS.len())
    });
    let host = x.host("parity-pair").unwrap();
    assert_eq!(host.ip, "parity-pair");
    assert_ne!(host.gmond_started, "0", "the heartbeat sets the start time");
    let val = |name: &str| {
        let m = x
            .metric("parity-pair", name)
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!((m.tmax.as_str(), m.dmax.as_str()), ("120", "3600"), "{m:?}");
        assert_eq!(m.slope, "both", "{m:?}");
        assert_eq!(m.extra("GROUP"), vec!["zkparity"], "{m:?}");
        assert_eq!(m.extra("SPOOF_HOST"), vec!["parity-pair:parity-pair"]);
        assert!(!m.extra("TITLE").is_empty(), "{m:?}");
        (m.val.clone(), m.r#type.clone(), m.units.clone())
    };
    let count = |v: &str, units: &str| (v.to_string(), "uint32".to_string(), units.to_string());
    // root, same, data, missing, missing/child on the source; three on the target.
    assert_eq!(val("zkparity_source_nodes"), count("5", "nodes"));
    assert_eq!(val("zkparity_target_nodes"), count("3", "nodes"));
    assert_eq!(
        val("zkparity_diff_missing_in_target"),
        count("1", "differences")
    );
    assert_eq!(val("zkparity_diff_data"), count("1", "differences"));
    for kind in ["extra_in_target", "acl", "node_kind", "sequence_counter"] {
        assert_eq!(
            val(&format!("zkparity_diff_{kind}")),
            count("0", "differences")
        );
    }
    // Not a difference: the paths a side could not read.
    assert_eq!(val("zkparity_diff_unreadable"), count("0", "paths"));
    assert_eq!(val("zkparity_diff_confirmed"), count("2", "differences"));
    assert_eq!(val("zkparity_diff_transient"), count("0", "differences"));
    // The root row and one per child: same matches, data and missing do not.
    assert_eq!(val("zkparity_subtrees_total"), count("4", "subtrees"));
    assert_eq!(val("zkparity_subtrees_matching"), count("1", "subtrees"));
    assert_eq!(val("zkparity_identical"), count("0", ""));
    assert_eq!(val("zkparity_compare_ok"), count("1", ""));
    assert_eq!(val("zkparity_last_success_age"), count("0", "s"));
    let (secs, ty, units) = val("zkparity_compare_duration");
    assert_eq!((ty.as_str(), units.as_str()), ("double", "s"));
    let secs: f64 = secs.parse().expect("seconds");
    assert!(secs > 0.0 && secs.to_string().len() <= 8, "{secs}");
}

#[test]
fn gmetric_reports_a_failed_compare_and_exits_2() {
    let g = gmond();
    let dead = format!("127.0.0.1:{}", zkparity_sandbox::free_ports(1).unwrap()[0]);
    let run = common::zkparity(&[
        "gmetric",
        "--ganglia",
        &g.channel(),
        "--source",
        &dead,
        "--target",
        &dead,
        "--connect-timeout",
        "1s",
        "--pair-name",
        "failing-pair",
    ]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains(&dead), "{}", run.stderr);
    let x = g.wait_for("compare_ok = 0", |x| {
        x.metric("failing-pair", "zkparity_compare_ok").is_some()
    });
    let h = x.host("failing-pair").unwrap();
    assert_eq!(
        h.metrics.len(),
        1,
        "no parity numbers without a compare: {h:?}"
    );
    assert_eq!(h.metrics[0].val, "0");
}

#[tokio::test]
async fn gmetric_to_a_gmond_that_is_down_still_completes_the_round() {
    use common::*;
    let (p, s, t) = pair_clients().await;
    let root = unique_path("gmetric-down");
    both(&s, &t, &root, &[]).await;
    let nobody = format!("127.0.0.1:{}", zkparity_sandbox::free_ports(1).unwrap()[0]);
    let run = gmetric_run(
        &nobody,
        &p.source.connect_string(),
        &p.target.connect_string(),
        &root,
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[test]
fn gmetric_refuses_a_bad_channel_before_comparing() {
    for bad in ["gmond1", "gmond1:0", "no-such-host.invalid:8649"] {
        let run = common::zkparity(&[
            "gmetric",
            "--ganglia",
            bad,
            "--source",
            "127.0.0.1:1",
            "--target",
            "127.0.0.1:1",
        ]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains(bad), "{}", run.stderr);
        assert!(
            !run.stderr.contains("127.0.0.1:1"),
            "no compare ran: {}",
            run.stderr
        );
    }
}

#[test]
fn gmetric_refuses_a_probe_timeout_that_is_not_a_positive_duration() {
    let g = gmond();
    for bad in ["0s", "soon"] {
        let run = common::zkparity(&[
            "gmetric",
            "--ganglia",
            &g.channel(),
            "--source",
            "127.0.0.1:1",
            "--target",
            "127.0.0.1:1",
            "--probe-timeout",
            bad,
        ]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("--probe-timeout"), "{}", run.stderr);
    }
}

// ---------------------------------------------------------------------------
// The ganglia/ folder agrees with what zkparity sends.

fn ganglia_file(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ganglia")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn gweb_definitions_graph_only_metrics_zkparity_sends() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ganglia/gweb/graph.d");
    let mut reports = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("graph.d") {
        let path = entry.expect("entry").path();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = json["report_name"].as_str().expect("report_name");
        assert_eq!(
            path.file_name().and_then(|f| f.to_str()),
            Some(format!("{name}.json").as_str()),
            "gweb finds a report by its file name"
        );
        assert!(name.ends_with("_report"), "{name}");
        assert_eq!(json["report_type"], "standard");
        let series = json["series"].as_array().expect("series");
        assert!(!series.is_empty());
        for s in series {
            let metric = s["metric"].as_str().expect("metric");
            assert!(PARITY_METRICS.contains(&metric), "{name}: {metric}");
            assert!(s["color"].as_str().is_some_and(|c| c.len() == 6));
            assert!(matches!(s["type"].as_str(), Some("line" | "stack")));
        }
        reports.push(name.to_string());
    }
    let view: serde_json::Value =
        serde_json::from_str(&ganglia_file("gweb/conf/view_zkparity.json")).expect("view");
    for item in view["items"].as_array().expect("items") {
        // Every item shows something: a report, a metric or an aggregate.
        assert!(
            item["graph"].is_string()
                || item["metric"].is_string()
                || item["metric_regex"].is_array(),
            "view item shows nothing: {item}"
        );
        if let Some(graph) = item["graph"].as_str() {
            assert!(reports.iter().any(|r| r == graph), "view uses {graph}");
        }
        if let Some(metric) = item["metric"].as_str() {
            assert!(PARITY_METRICS.contains(&metric), "view uses {metric}");
        }
        // Aggregate graphs name their one metric as an anchored regex.
        for r in item["metric_regex"].as_array().into_iter().flatten() {
            let regex = r["regex"].as_str().expect("regex");
            let metric = regex
                .strip_prefix('^')
                .and_then(|m| m.strip_suffix('$'))
                .unwrap_or_else(|| panic!("unanchored {regex}"));
            let per_server = SERVER_METRICS.iter().any(|(name, ..)| *name == metric);
            assert!(
                PARITY_METRICS.contains(&metric) || per_server,
                "view aggregates {metric}"
            );
            // gweb matches host names with PHP's preg_match, which agrees
            // with the regex crate on these simple patterns.
            let host = if per_server {
                server_host(2181)
            } else {
                zkparity::gmetric::parity::default_pair_name("old-1:2181", "new-1:2181")
            };
            for h in item["host_regex"].as_array().into_iter().flatten() {
                let re = regex::Regex::new(h["regex"].as_str().expect("regex")).expect("valid");
                assert!(re.is_match(&host), "{re} misses {host}");
            }
        }
    }
}

#[test]
fn the_shipped_gmond_snippet_receives_zkparitys_packets() {
    let port = zkparity_sandbox::free_ports(1).unwrap()[0];
    let snippet = ganglia_file("gmond.d/zkparity.conf")
        .replace("port = 8650", &format!("port = {port}  bind = 127.0.0.1"))
        .replace("ip = 192.0.2.10", "ip = 127.0.0.1");
    assert!(snippet.contains(&format!("port = {port}")), "{snippet}");
    let g = Gmond::start_with(Mode::Mute, &snippet);
    let mut s = sender_to(&format!("127.0.0.1:{port}"), SenderOptions::default());
    let r = s.send(&[spoofed(
        "10.77.2.1",
        "via-snippet",
        Metric::new("snippet_probe", Value::U32(3)),
    )]);
    assert_eq!(r.error_count, 0);
    g.wait_for("snippet_probe", |x| {
        x.metric("via-snippet", "snippet_probe").is_some()
    });
}

// ---------------------------------------------------------------------------
// Per-server metrics: every ZooKeeper server as its own host.

/// NAME, TYPE, UNITS, SLOPE of every per-server metric (group `zookeeper`);
/// the last [`LEADER_ONLY`] come from a leader alone.
const SERVER_METRICS: [(&str, &str, &str, &str); 22] = [
    ("zk_server_state", "string", "", "zero"),
    ("zk_version", "string", "", "zero"),
    ("zk_avg_latency", "double", "ms", "both"),
    ("zk_min_latency", "uint32", "ms", "both"),
    ("zk_max_latency", "uint32", "ms", "both"),
    ("zk_packets_received", "double", "packets", "positive"),
    ("zk_packets_sent", "double", "packets", "positive"),
    ("zk_num_alive_connections", "uint32", "connections", "both"),
    ("zk_outstanding_requests", "uint32", "requests", "both"),
    ("zk_znode_count", "uint32", "znodes", "both"),
    ("zk_watch_count", "uint32", "watches", "both"),
    ("zk_ephemerals_count", "uint32", "znodes", "both"),
    ("zk_approximate_data_size", "double", "bytes", "both"),
    (
        "zk_open_file_descriptor_count",
        "uint32",
        "descriptors",
        "both",
    ),
    (
        "zk_max_file_descriptor_count",
        "uint32",
        "descriptors",
        "both",
    ),
    ("zk_learners", "uint32", "nodes", "both"),
    ("zk_followers", "uint32", "nodes", "both"),
    ("zk_synced_followers", "uint32", "nodes", "both"),
    ("zk_pending_syncs", "uint32", "syncs", "both"),
    ("zk_last_proposal_size", "uint32", "bytes", "both"),
    ("zk_min_proposal_size", "uint32", "bytes", "both"),
    ("zk_max_proposal_size", "uint32", "bytes", "both"),
];
const LEADER_ONLY: usize = 7;

/// The tree both server sets hold, so that a compare of it is identical.
const SERVERS_TREE: &str = "/gmetric-servers";

/// A three-member ensemble and a standalone server of these tests' own: the
/// shared pair takes other tests' writes, which would move the counts
/// compared here. Both hold [`SERVERS_TREE`], written through the ensemble's
/// leader so that it has proposal sizes to report.
struct ServerSets {
    ensemble: Ensemble,
    standalone: ZkServer,
}

fn server_sets() -> &'static ServerSets {
    static S: OnceLock<ServerSets> = OnceLock::new();
    S.get_or_init(|| {
        let standalone =
            std::thread::spawn(|| ZkServer::start_standalone(&ServerOptions::default()));
        let ensemble = Ensemble::start(3, &ServerOptions::default()).expect("start the ensemble");
        let standalone = standalone.join().expect("join").expect("start standalone");
        let connects = [ensemble.connect_string(), standalone.connect_string()];
        // Off any test's runtime: this may run inside one.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                for connect in &connects {
                    let c = common::connect(connect).await;
                    common::tree(&c, SERVERS_TREE, &[("a", b"1"), ("b", b"22")]).await;
                }
            });
        })
        .join()
        .expect("write the tree");
        // Followers apply the commits a moment after the leader: the counts
        // compared below must have settled.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let counts: Vec<Option<String>> = ensemble
                .servers
                .iter()
                .map(|s| {
                    zkparity_sandbox::four_letter_word(
                        &s.connect_string(),
                        "srvr",
                        Duration::from_secs(5),
                    )
                    .ok()
                    .and_then(|a| {
                        a.lines()
                            .find_map(|l| l.strip_prefix("Node count: ").map(str::to_string))
                    })
                })
                .collect();
            if counts[0].is_some() && counts.iter().all(|c| *c == counts[0]) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "counts never settled: {counts:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        ServerSets {
            ensemble,
            standalone,
        }
    })
}

/// The host a loopback server on `port` appears as, key and name alike.
fn server_host(port: u16) -> String {
    format!("127.0.0.1_{port}")
}

fn port_of(address: &str) -> u16 {
    address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {address}"))
}

/// Every server of `connects`, probed as `zkparity gmetric` probes them.
async fn probe_all(connects: &[&str]) -> Vec<ServerProbe> {
    let parsed: Vec<ConnectString> = connects
        .iter()
        .map(|c| ConnectString::parse(c).expect("connect string"))
        .collect();
    let admin = zkparity::probe::AdminEndpoint::default();
    let refs: Vec<_> = parsed.iter().map(|c| (c, &admin)).collect();
    servers::probe_servers(&refs, &servers::probe_options(Duration::from_secs(5))).await
}

/// What gmond should show as `name`'s VAL for what the server said, or
/// `None` where the server said nothing to send.
fn probe_val(p: &ServerProbe, name: &str) -> Option<String> {
    let lat = p.latency;
    let n = |v: Option<u64>| v.map(|v| v.to_string());
    let proposal = |key: &str| {
        p.mntr
            .get(key)
            .and_then(|v| v.as_i64())
            .filter(|v| *v >= 0)
            .map(|v| v.to_string())
    };
    match name {
        "zk_server_state" => Some(p.role().to_string()),
        "zk_version" => p.version.as_ref().map(|v| v.text.clone()),
        "zk_avg_latency" => lat.map(|l| format!("{:.4}", l.avg)),
        "zk_min_latency" => lat.map(|l| format!("{:.0}", l.min)),
        "zk_max_latency" => lat.map(|l| format!("{:.0}", l.max)),
        "zk_packets_received" => n(p.packets_received),
        "zk_packets_sent" => n(p.packets_sent),
        "zk_num_alive_connections" => n(p.connections),
        "zk_outstanding_requests" => n(p.outstanding),
        "zk_znode_count" => n(p.znodes),
        "zk_watch_count" => n(p.watches),
        "zk_ephemerals_count" => n(p.ephemerals),
        "zk_approximate_data_size" => n(p.approx_data_size),
        "zk_open_file_descriptor_count" => n(p.open_fds),
        "zk_max_file_descriptor_count" => n(p.max_fds),
        "zk_learners" | "zk_followers" => n(p.learners),
        "zk_synced_followers" => n(p.synced_followers),
        "zk_pending_syncs" => n(p.pending_syncs),
        "zk_last_proposal_size" | "zk_min_proposal_size" | "zk_max_proposal_size" => proposal(name),
        other => panic!("no such per-server metric {other}"),
    }
}

/// How many per-server metrics a server of this mode sends, every one of
/// them answered: all of them on a leader that has made proposals, all but
/// the leader's own elsewhere.
fn full_set(mode: Option<&ZkMode>) -> usize {
    match mode {
        Some(ZkMode::Leader) => SERVER_METRICS.len(),
        _ => SERVER_METRICS.len() - LEADER_ONLY,
    }
}

/// The server's host in gmond, checked to be its own (keyed and named
/// `127.0.0.1_PORT`, heartbeat received), with every metric's TYPE, UNITS,
/// SLOPE, TMAX, DMAX, GROUP, SPOOF_HOST and TITLE as sent. Returns the
/// metrics by name.
fn server_metrics_in<'a>(
    x: &'a Ganglia,
    p: &ServerProbe,
    tmax: &str,
    dmax: &str,
) -> Vec<(&'static str, &'a XmlMetric)> {
    let name = server_host(port_of(&p.address));
    let host: &XmlHost = x
        .host(&name)
        .unwrap_or_else(|| panic!("no host {name}: {x:#?}"));
    assert_eq!(host.ip, name, "keyed by address and port");
    assert_ne!(host.gmond_started, "0", "{name}: no heartbeat");
    let mut out = Vec::new();
    for (metric, ty, units, slope) in SERVER_METRICS {
        let Some(m) = x.metric(&name, metric) else {
            continue;
        };
        assert_eq!(
            [m.r#type.as_str(), &m.units, &m.slope, &m.tmax, &m.dmax],
            [ty, units, slope, tmax, dmax],
            "{name} {metric}"
        );
        assert_eq!(m.extra("GROUP"), vec!["zookeeper"], "{name} {metric}");
        assert_eq!(m.extra("SPOOF_HOST"), vec![format!("{name}:{name}")]);
        assert!(!m.extra("TITLE").is_empty(), "{name} {metric}");
        out.push((metric, m));
    }
    assert_eq!(
        out.len(),
        host.metrics.len(),
        "{name} shows only per-server metrics: {host:?}"
    );
    out
}

#[tokio::test]
async fn every_per_server_metric_shows_the_probes_value_under_the_servers_own_host() {
    let sets = server_sets();
    let g = Gmond::start(Mode::Mute);
    let (ensemble, standalone) = (
        sets.ensemble.connect_string(),
        sets.standalone.connect_string(),
    );
    let probes = probe_all(&[&ensemble, &standalone]).await;
    assert_eq!(probes.len(), 4);
    let mut emitter = Emitter::new(
        sender_to(&g.channel(), SenderOptions::default()),
        "servers-library",
        Timing {
            tmax: 90,
            dmax: 3600,
        },
    );
    let sent = emitter.emit_round(Outcome::Failed, &probes);
    assert_eq!(sent.error_count, 0, "{:?}", sent.errors);
    let x = g.wait_for("every server's full set", |x| {
        probes.iter().all(|p| {
            x.host(&server_host(port_of(&p.address)))
                .is_some_and(|h| h.metrics.len() == full_set(p.mode.as_ref()))
        })
    });
    let mut modes = Vec::new();
    for p in &probes {
        for (name, m) in server_metrics_in(&x, p, "90", "3600") {
            let want = probe_val(p, name).unwrap_or_else(|| panic!("{name} sent unasked"));
            assert_eq!(m.val, want, "{} {name}", p.address);
        }
        modes.push(p.role().to_string());
    }
    modes.sort();
    assert_eq!(modes, ["follower", "follower", "leader", "standalone"]);
    // The pair's own host next to them, nothing else.
    assert_eq!(x.hosts.len(), 5, "{x:#?}");
    assert!(x.metric("servers-library", "zkparity_compare_ok").is_some());
}

#[tokio::test]
async fn gmetric_sends_every_server_of_both_ensembles_under_its_own_host() {
    let sets = server_sets();
    let g = Gmond::start(Mode::Mute);
    let (source, target) = (
        sets.ensemble.connect_string(),
        sets.standalone.connect_string(),
    );
    let before = probe_all(&[&source, &target]).await;
    let run = gmetric_run(
        &g.channel(),
        &source,
        &target,
        SERVERS_TREE,
        &[
            "--pair-name",
            "servers-pair",
            "--tmax",
            "120",
            "--dmax",
            "3600",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let after = probe_all(&[&source, &target]).await;

    let x = g.wait_for("the pair and every server's full set", |x| {
        x.host("servers-pair")
            .is_some_and(|h| h.metrics.len() == PARITY_METRICS.len())
            && before.iter().all(|p| {
                x.host(&server_host(port_of(&p.address)))
                    .is_some_and(|h| h.metrics.len() == full_set(p.mode.as_ref()))
            })
    });
    assert_eq!(x.hosts.len(), 5, "the pair and four servers: {x:#?}");
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.address, a.address);
        let shown = server_metrics_in(&x, b, "120", "3600");
        let val = |name: &str| {
            shown
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, m)| m.val.as_str())
                .unwrap_or_else(|| panic!("{} has no {name}", b.address))
        };
        let num = |name: &str| -> f64 {
            val(name)
                .parse()
                .unwrap_or_else(|e| panic!("{} {name}: {e}", b.address))
        };
        for (name, m) in &shown {
            match *name {
                // Cumulative: what the gmetric round read lies between the
                // probes before and after it.
                "zk_packets_received" | "zk_packets_sent" => {
                    let v: u64 = m.val.parse().expect("a whole number of packets");
                    let lo: u64 = probe_val(b, name).unwrap().parse().unwrap();
                    let hi: u64 = probe_val(a, name).unwrap().parse().unwrap();
                    assert!(
                        lo <= v && v <= hi,
                        "{} {name}: {lo} <= {v} <= {hi}",
                        b.address
                    );
                }
                // Moved by the probes' and the compare's own requests.
                "zk_avg_latency" => {
                    let (int, dec) = m.val.split_once('.').expect("decimals");
                    assert!(int.parse::<u32>().is_ok() && dec.len() == 4, "{}", m.val);
                }
                "zk_min_latency"
                | "zk_max_latency"
                | "zk_num_alive_connections"
                | "zk_outstanding_requests"
                | "zk_open_file_descriptor_count" => {
                    m.val.parse::<u32>().expect("uint32");
                }
                // Nothing wrote between the first probe and the round.
                _ => assert_eq!(
                    Some(m.val.as_str()),
                    probe_val(b, name).as_deref(),
                    "{} {name}",
                    b.address
                ),
            }
        }
        assert!(num("zk_min_latency") <= num("zk_max_latency"));
        assert!(
            num("zk_num_alive_connections") >= 1.0,
            "its own srvr counts"
        );
        assert!(num("zk_open_file_descriptor_count") <= num("zk_max_file_descriptor_count"));
    }
    let leader = before
        .iter()
        .find(|p| p.mode == Some(ZkMode::Leader))
        .expect("a leader");
    let leader_host = server_host(port_of(&leader.address));
    assert_eq!(x.metric(&leader_host, "zk_learners").unwrap().val, "2");
    assert_eq!(
        x.metric(&leader_host, "zk_synced_followers").unwrap().val,
        "2"
    );

    let pair = |name: &str| {
        x.metric("servers-pair", name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    for name in PARITY_METRICS {
        assert_eq!(pair(name).extra("GROUP"), vec!["zkparity"], "{name}");
    }
    assert_eq!(pair("zkparity_identical").val, "1");
    assert_eq!(pair("zkparity_source_nodes").val, "3");
}

#[tokio::test]
async fn a_server_that_does_not_answer_gets_no_host_and_the_others_still_report() {
    use common::*;
    let g = Gmond::start(Mode::Mute);
    let (p, s, t) = pair_clients().await;
    let root = unique_path("gmetric-down-server");
    both(&s, &t, &root, &[]).await;
    let dead = zkparity_sandbox::free_ports(1).unwrap()[0];
    let source = format!("{},127.0.0.1:{dead}", p.source.connect_string());
    let run = gmetric_run(
        &g.channel(),
        &source,
        &p.target.connect_string(),
        &root,
        &["--pair-name", "down-pair"],
    )
    .await;
    assert_eq!(
        run.code, 0,
        "a down server is no failed round: {}",
        run.stderr
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let live = [server_host(p.source.port()), server_host(p.target.port())];
    let standalone = full_set(Some(&ZkMode::Standalone));
    let x = g.wait_for("the pair and both live servers", |x| {
        x.host("down-pair")
            .is_some_and(|h| h.metrics.len() == PARITY_METRICS.len())
            && live
                .iter()
                .all(|h| x.host(h).is_some_and(|h| h.metrics.len() == standalone))
    });
    let mut hosts: Vec<&str> = x.hosts.iter().map(|h| h.name.as_str()).collect();
    hosts.sort_unstable();
    let mut want = vec!["down-pair", &live[0], &live[1]];
    want.sort_unstable();
    assert_eq!(hosts, want, "nothing at all for 127.0.0.1:{dead}");
}

#[tokio::test]
async fn gmetric_without_servers_sends_the_pair_alone() {
    use common::*;
    let g = Gmond::start(Mode::Mute);
    let (p, s, t) = pair_clients().await;
    let root = unique_path("gmetric-no-servers");
    both(&s, &t, &root, &[]).await;
    let run = gmetric_run(
        &g.channel(),
        &p.source.connect_string(),
        &p.target.connect_string(),
        &root,
        &["--pair-name", "pair-only", "--no-servers"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let x = g.wait_for("the pair", |x| {
        x.host("pair-only")
            .is_some_and(|h| h.metrics.len() == PARITY_METRICS.len())
    });
    assert_eq!(x.hosts.len(), 1, "{x:#?}");
}

#[tokio::test]
async fn servers_refusing_mntr_or_not_serving_send_what_they_said_and_no_zeros() {
    let g = Gmond::start(Mode::Mute);
    let not_in_whitelist =
        |word: &str| format!("{word} is not executed because it is not in the whitelist.\n");
    let not_serving = common::captured_answer("not-serving.txt");
    let srvr_only = FakeZk::start(&[
        ("srvr", &common::captured_answer("follower-srvr.txt")),
        (
            "mntr",
            &common::captured_answer("default-whitelist-mntr.txt"),
        ),
    ]);
    let idle = FakeZk::start(&[("srvr", &not_serving), ("mntr", &not_serving)]);
    let refusing = FakeZk::start(&[
        ("srvr", &not_in_whitelist("srvr")),
        ("mntr", &not_in_whitelist("mntr")),
    ]);
    let connect = [&srvr_only, &idle, &refusing]
        .iter()
        .map(|f| f.address())
        .collect::<Vec<_>>()
        .join(",");
    let probes = probe_all(&[&connect]).await;
    let mut emitter = Emitter::new(
        sender_to(&g.channel(), SenderOptions::default()),
        "fakes",
        Timing::default(),
    );
    let sent = emitter.emit_round(Outcome::Failed, &probes);
    assert_eq!(sent.error_count, 0, "{:?}", sent.errors);

    // follower-srvr.txt, number for number; nothing mntr alone carries.
    let srvr_vals = [
        ("zk_server_state", "follower"),
        (
            "zk_version",
            "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC",
        ),
        ("zk_avg_latency", "2.5000"),
        ("zk_min_latency", "1"),
        ("zk_max_latency", "5"),
        ("zk_packets_received", "11"),
        ("zk_packets_sent", "10"),
        ("zk_num_alive_connections", "2"),
        ("zk_outstanding_requests", "0"),
        ("zk_znode_count", "9"),
    ];
    let (a, b, c) = (
        server_host(srvr_only.port),
        server_host(idle.port),
        server_host(refusing.port),
    );
    let x = g.wait_for("the three fakes", |x| {
        x.host(&a)
            .is_some_and(|h| h.metrics.len() == srvr_vals.len())
            && x.host(&b).is_some_and(|h| h.metrics.len() == 1)
            && x.host(&c).is_some_and(|h| h.metrics.len() == 1)
    });
    for p in &probes {
        server_metrics_in(&x, p, "60", "0");
    }
    for (name, val) in srvr_vals {
        assert_eq!(
            x.metric(&a, name).map(|m| m.val.as_str()),
            Some(val),
            "{name}"
        );
    }
    assert_eq!(x.metric(&b, "zk_server_state").unwrap().val, "not serving");
    assert_eq!(x.metric(&c, "zk_server_state").unwrap().val, "refused");
}
