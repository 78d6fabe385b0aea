//! The reads-per-second cap, measured where it matters: by the server's own
//! counters (`mntr`), not by zkparity's account of itself. Its own binary, so
//! no other test's reads land on these servers' counters.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// `mntr` values by key.
fn mntr(server: &zkparity::sandbox::ZkServer) -> std::collections::HashMap<String, f64> {
    let text = zkparity::sandbox::four_letter_word(
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
    let p = pair();
    let (s, t) = (client(&p.source).await, client(&p.target).await);
    // Top-level, so the server's per-namespace read counter is ours alone.
    let root = "/capped";
    let nodes = 3000;
    for c in [&s, &t] {
        zkparity::seed::ensure_path(c, root).await.unwrap();
        zkparity::seed::create_many(
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
    let r = run(&[
        "compare",
        "--source",
        &p.source.connect_string(),
        "--target",
        &p.target.connect_string(),
        "--path",
        root,
        "--format",
        "json",
        "--recheck-delay",
        "off",
        "--max-reads-per-second",
        "3000",
    ])
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
