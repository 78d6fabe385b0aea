//! A target a little behind a busy source: the re-check takes a target
//! that holds what the source held at the first read for lag (transient,
//! counted in `summary.lagging`), never for drift, while a value only the
//! target ever had is still drift. Against `zkparity sync` following a
//! writer, and step by step against a compare's re-check.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use zkparity_sandbox::{guarded_command, Guarded};

/// Parity checks run while sync follows the writer.
const RUNS: usize = 20;

/// `zkparity sync --apply` of `path` on the shared pair, once its initial
/// copy is done; stopped when dropped.
fn follow(path: &str) -> Guarded {
    let p = pair();
    let mut cmd = guarded_command(env!("CARGO_BIN_EXE_zkparity"), None);
    cmd.args([
        "sync",
        "--source",
        &p.source.connect_string(),
        "--target",
        &p.target.connect_string(),
        "--path",
        path,
        "--apply",
        "--create-path",
        "--format",
        "json",
        "--settle",
        "200ms",
        "--recheck-delay",
        "0s",
        "--quiet",
    ])
    .env("ZKPARITY_BACKUP_DIR", backup_dir())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut process = Guarded::spawn(&mut cmd).expect("sync starts");
    let out = process.take_stdout().expect("sync's stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("sync copied nothing within 30s"));
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if event["event"] == "copied" {
            break;
        }
    }
    // Keep draining stdout so sync never blocks on a full pipe.
    std::thread::spawn(move || while lines.recv().is_ok() {});
    process
}

async fn parity(root: &str, delay: &str) -> Run {
    let p = pair();
    let (s, t) = (p.source.connect_string(), p.target.connect_string());
    run(&[
        "check",
        "parity",
        "--source",
        &s,
        "--target",
        &t,
        "--path",
        root,
        "--recheck-delay",
        delay,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_synced_behind_a_busy_source_is_never_an_alarm_and_drift_on_it_still_is() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("lag");
    tree(
        &s,
        &root,
        &[("changes", b""), ("state", b"0"), ("pinned", b"as copied")],
    )
    .await;
    let mut sync = follow(&root);

    // Kafka's config change log and a value rewritten every second: the
    // source is always a little ahead, at the walk and at the re-check.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let (changes, state) = (
            format!("{root}/changes/config_change_"),
            format!("{root}/state"),
        );
        let w = client(&p.source).await;
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                w.create(&changes, b"{}", &seq())
                    .await
                    .expect("a sequential child");
                w.set_data(&state, n.to_string().as_bytes(), None)
                    .await
                    .expect("the value is rewritten");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut alarms = Vec::new();
    for _ in 0..RUNS {
        let r = parity(&root, "1s").await;
        if r.code != 0 {
            alarms.push(r.stdout.lines().next().unwrap_or_default().to_string());
        }
    }
    eprintln!("false alarms: {} of {RUNS}: {alarms:#?}", alarms.len());

    // A value the source never had, written on the target alone.
    t.set_data(&format!("{root}/pinned"), b"changed on the target", None)
        .await
        .unwrap();
    let drift = parity(&root, "1s").await;

    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    sync.stop(Duration::from_secs(10));

    // A loaded machine slows the writer's own round trips: a handful of
    // writes across the checks is what makes them run against a moving
    // source.
    assert!(writes >= 5, "the writer kept writing: {writes}");
    assert!(
        alarms.is_empty(),
        "{} of {RUNS} checks alarmed on lag: {alarms:#?}",
        alarms.len()
    );
    assert_eq!(drift.code, 2, "{}{}", drift.stdout, drift.stderr);
    let pinned = format!("data {root}/pinned");
    assert!(
        drift.stdout.contains(" CRITICAL - ") && drift.stdout.lines().any(|l| l == pinned),
        "{}",
        drift.stdout
    );
}

/// Starts a compare of `root` that re-checks after 3s, gives it a moment to
/// walk, then lets `meanwhile` move both sides before the re-check.
async fn compare_across(root: &str, meanwhile: impl std::future::Future<Output = ()>) -> Run {
    let walk = compare_in_background(root, &["--recheck-delay", "3s"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    meanwhile.await;
    walk.await.expect("zkparity runner")
}

#[tokio::test]
async fn a_value_the_target_reaches_after_the_source_moved_on_is_lagging_and_any_other_is_drift() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("lag-data");
    tree(&s, &root, &[("k", b"v1")]).await;
    tree(&t, &root, &[("k", b"v0")]).await;
    let k = format!("{root}/k");

    let run = compare_across(&root, async {
        t.set_data(&k, b"v1", None).await.unwrap();
        s.set_data(&k, b"v2", None).await.unwrap();
    })
    .await;
    let r = run.json();
    assert_eq!(run.code, 0, "{r:#}");
    assert_eq!(r["summary"]["confirmed"], 0, "{r:#}");
    assert_eq!(r["summary"]["transient"], 1, "{r:#}");
    assert_eq!(r["summary"]["lagging"], 1, "{r:#}");

    // Now v2 on the source: a target at v3 holds what the source never had.
    let run = compare_across(&root, async {
        t.set_data(&k, b"v3", None).await.unwrap();
        s.set_data(&k, b"v4", None).await.unwrap();
    })
    .await;
    let r = run.json();
    assert_eq!(run.code, 1, "{r:#}");
    assert_eq!(of_kind(&r, "data").len(), 1, "{r:#}");
    assert_eq!(r["summary"]["lagging"], 0, "{r:#}");
}

#[tokio::test]
async fn a_counter_that_reaches_the_sources_earlier_value_is_lagging() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("lag-counter");
    create(&s, &root, b"").await;
    create(&t, &root, b"").await;
    // The source handed out 4 numbers and deleted one; the copy holds the
    // 3 left under their names, its counter at 3.
    create_sequential(&s, &format!("{root}/item-"), b"q", 4).await;
    delete_sequential(&s, &format!("{root}/item-"), 0..1).await;
    copy_sequential(&t, &format!("{root}/item-"), b"q", 1..4).await;
    // One create and one delete each: the target's counter reaches 4, the
    // source's 5.
    let pad = format!("{root}/pad");
    let run = compare_across(&root, async {
        for side in [&t, &s] {
            create(side, &pad, b"").await;
            side.delete(&pad, None).await.unwrap();
        }
    })
    .await;
    let r = run.json();
    assert_eq!(run.code, 0, "{r:#}");
    assert_eq!(r["summary"]["lagging"], 1, "{r:#}");
}

/// The agent's rounds on a pair that sync keeps a second behind a source
/// gaining a sequential child every second: no round confirms drift.
#[tokio::test(flavor = "multi_thread")]
async fn the_agent_confirms_no_drift_over_20_rounds_of_a_pair_synced_behind_a_busy_source() {
    use zkparity::agent::state::{read_state, state_path, PairStatus};
    let (p, s, _) = pair_clients().await;
    let root = unique_path("lag-agent");
    tree(&s, &root, &[("changes", b"")]).await;
    let mut sync = follow(&root);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let changes = format!("{root}/changes/config_change_");
        let w = client(&p.source).await;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                w.create(&changes, b"{}", &seq())
                    .await
                    .expect("a sequential child");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[[pair]]\nname = \"lagging\"\nsource = {:?}\ntarget = {:?}\n\
             path = {root:?}\ninterval = \"1s\"\njitter = \"0s\"\nrecheck_delay = \"1s\"\n",
            dir.path(),
            p.source.connect_string(),
            p.target.connect_string()
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    let mut agent = Guarded::spawn(
        agent_command(&config)
            .env_remove("ZKPARITY_LOG")
            .stderr(std::fs::File::create(&log).unwrap()),
    )
    .expect("the agent starts");
    let state = state_path(dir.path(), "lagging");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut rounds_seen = std::collections::BTreeSet::new();
    let mut alarms = Vec::new();
    while rounds_seen.len() < RUNS {
        assert!(
            Instant::now() < deadline,
            "only {} rounds: {}",
            rounds_seen.len(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        if let Ok(st) = read_state(&state) {
            if rounds_seen.insert(st.round)
                && (st.confirmed_total > 0 || st.status == PairStatus::Drift)
            {
                alarms.push(format!("round {}: {:?}", st.round, st.status));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent.stop(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    sync.stop(Duration::from_secs(10));
    assert!(alarms.is_empty(), "rounds that alarmed on lag: {alarms:#?}");
}
