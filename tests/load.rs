//! The reads-per-second cap and the latency limit, measured where it
//! matters: by the server's own counters (`mntr`), not by zkparity's account
//! of itself. Its own binary, so no other test's reads land on these servers'
//! counters, and its tests take turns for the same reason.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Held for a whole test: each reads (or resets) the servers' counters.
async fn turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// Resets the server's statistics (latency summaries and counters); only
/// for the test's own servers, which nothing else monitors.
fn reset_stats(server: &zkparity_sandbox::ZkServer) {
    let answer = zkparity_sandbox::four_letter_word(
        &server.connect_string(),
        "srst",
        Duration::from_secs(5),
    )
    .expect("srst");
    assert!(answer.contains("reset"), "srst: {answer}");
}

/// `mntr` values by key.
fn mntr(server: &zkparity_sandbox::ZkServer) -> std::collections::HashMap<String, f64> {
    let text = zkparity_sandbox::four_letter_word(
        &server.connect_string(),
        "mntr",
        Duration::from_secs(5),
    )
    .expect("mntr");
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn the_server_sees_every_read_and_no_more_than_the_cap_allows() {
    let _turn = turn().await;
    let (p, s, t) = pair_clients().await;
    // Top-level, so the server's per-namespace read counter is ours alone.
    let root = "/capped";
    let nodes = 3000;
    for c in [&s, &t] {
        zkparity_sandbox::seed::ensure_path(c, root).await.unwrap();
        zkparity_sandbox::seed::create_many(
            c,
            (0..nodes).map(|i| (format!("{root}/n{i:04}"), vec![b'x'; 16])),
        )
        .await
        .unwrap();
    }
    drop((s, t));
    let cap = 3000.0;
    let before = mntr(&p.source);
    let started = Instant::now();
    let r = compare_connects(
        &p.source.connect_string(),
        &p.target.connect_string(),
        &[
            "--path",
            root,
            "--recheck-delay",
            "off",
            "--max-reads-per-second",
            "3000",
        ],
    )
    .await;
    let wall = started.elapsed().as_secs_f64();
    let after = mntr(&p.source);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let ops = 3.0 * (nodes as f64 + 1.0);
    assert_eq!(r.json()["summary"]["reads"]["source"].as_f64(), Some(ops));

    // getData and getChildren, counted by the server one by one even inside
    // multi-reads.
    let key = "zk_cnt_capped_read_per_namespace";
    let data_and_children = after[key] - before.get(key).copied().unwrap_or(0.0);
    assert_eq!(data_and_children, 2.0 * (nodes as f64 + 1.0));
    // Every request the server timed: the getACLs, the multi-reads, and the
    // session's own few (connect, ping, close).
    let requests = after["zk_cnt_readlatency"] - before["zk_cnt_readlatency"];
    let multi_reads = ((nodes as f64 + 1.0) / 200.0).ceil();
    assert!(
        requests >= nodes as f64 + 1.0 + multi_reads,
        "{requests} requests for {} getACL and {multi_reads} multi-reads",
        nodes + 1
    );
    let server_ops = data_and_children + (requests - multi_reads);
    // One second's worth may go at once; beyond that, the cap.
    let allowed = cap * wall + cap;
    assert!(
        server_ops <= allowed + 16.0,
        "the server saw {server_ops} reads in {wall:.2}s: more than a {cap}/s cap allows"
    );
    assert!(
        wall >= (ops - cap) / cap,
        "{ops} reads in {wall:.2}s: faster than the cap"
    );
}

/// One compare of `path` with `--max-latency limit`, the servers' statistics
/// reset before it: the report, and `mntr` of source and target after it.
async fn compare_under(
    path: &str,
    limit: &str,
) -> (
    serde_json::Value,
    [std::collections::HashMap<String, f64>; 2],
) {
    let p = pair();
    reset_stats(&p.source);
    reset_stats(&p.target);
    let r = compare_connects(
        &p.source.connect_string(),
        &p.target.connect_string(),
        &[
            "--path",
            path,
            "--recheck-delay",
            "off",
            "--max-latency",
            limit,
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    (r.json(), [mntr(&p.source), mntr(&p.target)])
}

/// A figure line per side, for the record (`--nocapture`).
fn describe(
    run: &str,
    report: &serde_json::Value,
    servers: &[std::collections::HashMap<String, f64>; 2],
) {
    for (side, m) in ["source", "target"].iter().zip(servers) {
        let l = &report["summary"]["latency"][side];
        eprintln!(
            "{run} {side}: {:.1}s; round trips max {:.0} ms, {} of {} over the limit; \
             server read latency avg {} p99 {} max {} ms",
            report["summary"]["elapsed_seconds"].as_f64().unwrap_or(0.0),
            l["max_round_trip_ms"].as_f64().unwrap_or(0.0),
            l["over_limit"],
            l["groups"],
            m["zk_avg_readlatency"],
            m["zk_p99_readlatency"],
            m["zk_max_readlatency"],
        );
    }
}

#[tokio::test]
async fn a_large_compare_keeps_round_trips_and_the_server_under_the_latency_limit() {
    let _turn = turn().await;
    let (_, s, t) = pair_clients().await;
    let root = "/latency";
    for c in [&s, &t] {
        // 111,111 nodes: wide enough below the third level that every batch
        // of the walk's window is full.
        zkparity_sandbox::seed::create_uniform_tree(c, root, 10, 5, 64)
            .await
            .unwrap();
    }
    drop((s, t));
    let limit_ms = 50.0;

    // A limit nothing reaches times every round trip yet holds nothing back:
    // what an unthrottled walk does to this machine.
    let (free, free_servers) = compare_under(root, "1h").await;
    describe("no limit", &free, &free_servers);
    let (limited, servers) = compare_under(root, "50ms").await;
    describe("50ms limit", &limited, &servers);

    assert_eq!(limited["summary"]["source"]["nodes"], 111_111);
    assert_eq!(limited["summary"]["identical"], true);
    let worst_free = ["source", "target"]
        .iter()
        .map(|side| free["summary"]["latency"][side]["max_round_trip_ms"].as_f64())
        .fold(0.0, |a: f64, b| a.max(b.unwrap_or(0.0)));
    assert!(
        worst_free > 1.5 * limit_ms,
        "without a limit the slowest round trip took {worst_free:.0} ms: this tree does \
         not load this machine enough for a {limit_ms} ms limit to hold anything back"
    );
    for (side, m) in ["source", "target"].iter().zip(&servers) {
        let l = &limited["summary"]["latency"][side];
        assert_eq!(l["limit_ms"].as_f64(), Some(limit_ms));
        let groups = l["groups"].as_f64().expect("groups");
        let over = l["over_limit"].as_f64().expect("over_limit");
        // Over the limit: the round trips that trigger each back-off, those
        // already on the wire when it comes, and stalls of a shared machine.
        assert!(
            over <= groups / 10.0,
            "{side}: {over} of {groups} round trips over {limit_ms} ms"
        );
        // The server timed each of our requests within a round trip, so it
        // saw them under the limit too. Its p99, not its max: the max is one
        // request, and any request caught in a scheduling stall of this
        // 2-core machine or a JVM pause waits longer than any limit, whoever
        // sent it.
        let p99 = m["zk_p99_readlatency"];
        assert!(
            p99 <= limit_ms,
            "{side} server: p99 read latency {p99} ms over the {limit_ms} ms limit"
        );
        assert!(m["zk_cnt_readlatency"] >= 111_111.0, "{side}: {m:?}");
    }
}

#[tokio::test]
async fn a_latency_limit_needs_a_unit() {
    let r = zkparity(&[
        "compare",
        "--source",
        "127.0.0.1:1",
        "--target",
        "127.0.0.1:1",
        "--max-latency",
        "200",
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--max-latency"), "{}", r.stderr);
    assert!(r.stderr.contains("unit"), "{}", r.stderr);
}
