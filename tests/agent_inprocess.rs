//! `zkparity::agent::run` driven in-process, with the test's own stop and
//! reload in place of signals, against the shared real pair.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{both, pair_clients, unique_path};
use tokio::sync::{mpsc, oneshot};
use zkparity::agent::state::{read_state, state_path, PairState, PairStatus};
use zkparity::error::StopSignal;

/// Liveness bound for what the test waits on (not a speed assertion).
const PATIENCE: Duration = Duration::from_secs(90);

fn pair_table(name: &str, path: &str) -> String {
    let p = common::pair();
    format!(
        "[[pair]]\nname = {name:?}\nsource = {:?}\ntarget = {:?}\npath = {path:?}\n\
         interval = \"200ms\"\njitter = \"0s\"\nrecheck_delay = \"off\"\n\
         connect_timeout = \"3s\"\nsession_timeout = \"4s\"\n",
        p.source.connect_string(),
        p.target.connect_string(),
    )
}

fn write_config(file: &Path, state_dir: &Path, pairs: &[String]) {
    let text = format!("state_dir = {state_dir:?}\n{}", pairs.concat());
    std::fs::write(file, text).expect("write config");
}

/// Polls the pair's state file until `pred` holds.
async fn wait_for(state_dir: &Path, pair: &str, pred: impl Fn(&PairState) -> bool) -> PairState {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(s) = read_state(&state_path(state_dir, pair)) {
            if pred(&s) {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "waited too long for the state of {pair}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_run_takes_its_stop_and_reload_from_the_caller_and_returns_ok_once_stopped() {
    let (_, s, t) = pair_clients().await;
    let (first, second) = (unique_path("inproc-a"), unique_path("inproc-b"));
    for root in [&first, &second] {
        both(&s, &t, root, &[("x", b"1"), ("x/y", b"2")]).await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("agent.toml");
    write_config(&config, dir.path(), &[pair_table("first", &first)]);

    let (stop_tx, stop_rx) = oneshot::channel();
    let (reload_tx, reload_rx) = mpsc::channel(1);
    let stop = async move { stop_rx.await.unwrap_or(StopSignal::Terminate) };
    let file = config.clone();
    let agent = tokio::spawn(async move { zkparity::agent::run(&file, stop, reload_rx).await });

    let state = wait_for(dir.path(), "first", |s| s.round >= 3).await;
    assert_eq!(state.status, PairStatus::Ok, "{state:#?}");

    // A reload adds a pair, and the running one goes on.
    write_config(
        &config,
        dir.path(),
        &[pair_table("first", &first), pair_table("second", &second)],
    );
    reload_tx.send(()).await.expect("the agent takes reloads");
    let added = wait_for(dir.path(), "second", |s| s.round >= 2).await;
    assert_eq!(added.status, PairStatus::Ok, "{added:#?}");
    let went_on = wait_for(dir.path(), "first", |s| s.round > state.round).await;
    assert_eq!(went_on.status, PairStatus::Ok);

    stop_tx
        .send(StopSignal::Interrupt)
        .expect("the agent waits for its stop");
    let stopped = tokio::time::timeout(PATIENCE, agent)
        .await
        .expect("the agent stops")
        .expect("the agent's task")
        .expect("the agent ran");
    assert_eq!(stopped.by, StopSignal::Interrupt);
    assert_eq!(stopped.pairs, ["first", "second"]);
    // Stopped means stopped: no round after it.
    let at_stop = read_state(&state_path(dir.path(), "first")).expect("state file");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = read_state(&state_path(dir.path(), "first")).expect("state file");
    assert_eq!(later.round, at_stop.round);
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .expect("state dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[tokio::test]
async fn agent_run_refuses_a_configuration_that_does_not_validate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[[pair]]\nname = \"p\"\nsource = \"a:1\"\ntarget = \"b:1\"\ncolour = 1\n",
            dir.path()
        ),
    )
    .expect("write config");
    let (_reload_tx, reload_rx) = mpsc::channel(1);
    let stop = std::future::pending::<StopSignal>();
    let refused = zkparity::agent::run(&config, stop, reload_rx)
        .await
        .expect_err("the configuration does not validate");
    assert!(
        refused.to_string().contains("key pair[0].colour"),
        "{refused}"
    );
    assert!(!state_path(dir.path(), "p").exists());
}
