//! Faults during a compare, against real servers: connections cut
//! mid-batch, a leader killed mid-walk, a side gone for longer than the
//! session timeout. The rule under test: a compare either finishes with the
//! right answer or fails with a clear error and exit 2 — it never reports
//! "identical" on a partial walk.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zkparity_sandbox::{Ensemble, ServerOptions, ZkServer};

/// A TCP proxy that forwards to `upstream` and cuts a connection once it has
/// passed `cut_after` bytes from the server, so faults land in the middle of
/// replies — `max_cuts` times, then it only forwards. Returns the proxy's
/// address and a count of cuts.
async fn cutting_proxy(
    upstream: String,
    cut_after: usize,
    max_cuts: usize,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let cuts = Arc::new(AtomicUsize::new(0));
    let counter = cuts.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                };
                let down = async {
                    let mut passed = 0;
                    let cutting = counter.load(Ordering::Relaxed) < max_cuts;
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        let n = if cutting {
                            n.min(cut_after - passed)
                        } else {
                            n
                        };
                        if cw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        passed += n;
                        if cutting && passed >= cut_after {
                            counter.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                };
                // Whichever direction ends first closes both.
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
            });
        }
    });
    (addr, cuts)
}

#[tokio::test]
async fn connections_cut_mid_reply_are_retried_to_the_right_answer() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("cut");
    wide_tree(&s, &t, &root, 4000, &[b'x'; 100]).await;
    let (proxy, cuts) = cutting_proxy(p.target.connect_string(), 150_000, 3).await;
    let run = compare_connects(
        &p.source.connect_string(),
        &proxy,
        &["--path", &root, "--sessions", "1"],
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(
        r["summary"]["target"]["nodes"], 4001,
        "every node read despite the cuts"
    );
    assert_eq!(
        cuts.load(Ordering::Relaxed),
        3,
        "the proxy did cut connections mid-walk"
    );
}

#[tokio::test]
async fn a_difference_is_still_found_through_cut_connections() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("cutdiff");
    wide_tree(&s, &t, &root, 3000, &[b'x'; 100]).await;
    t.set_data(&format!("{root}/c02999"), b"changed", None)
        .await
        .unwrap();
    let (proxy, _) = cutting_proxy(p.target.connect_string(), 120_000, 3).await;
    let run = compare_connects(
        &p.source.connect_string(),
        &proxy,
        &["--path", &root, "--sessions", "1"],
    )
    .await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(of_kind(&r, "data").len(), 1, "{r:#}");
    assert_eq!(r["summary"]["confirmed"], 1);
}

fn ensemble() -> &'static Mutex<Ensemble> {
    static ENSEMBLE: OnceLock<Mutex<Ensemble>> = OnceLock::new();
    ENSEMBLE.get_or_init(|| {
        Mutex::new(Ensemble::start(3, &ServerOptions::default()).expect("start ensemble"))
    })
}

#[tokio::test]
async fn killing_the_leader_mid_walk_still_gives_the_right_answer() {
    let (connect, leader) = {
        let mut e = ensemble().lock().unwrap();
        let leader = e.wait_for_leader(Duration::from_secs(30)).unwrap();
        (e.connect_string(), leader)
    };
    let root = unique_path("leaderkill");
    let (src, dst) = two_copies(&connect, &root).await;
    let walk = slow_compare::<&str>(&src, &dst, &[]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    ensemble().lock().unwrap().servers[leader].kill();
    let run = walk.await.unwrap();
    // Bring it back for anyone after us.
    {
        let mut e = ensemble().lock().unwrap();
        e.servers[leader].restart().unwrap();
        e.wait_for_leader(Duration::from_secs(30)).unwrap();
    }
    assert_complete_or_clear_error(&run);
}

/// Two identical subtrees `root/a` and `root/b` of 6,000 children each, and
/// connect strings rooted at them.
async fn two_copies(connect: &str, root: &str) -> (String, String) {
    let c = connect_to(connect).await;
    for sub in ["a", "b"] {
        let base = format!("{root}/{sub}");
        zkparity_sandbox::seed::ensure_path(&c, &base)
            .await
            .unwrap();
        zkparity_sandbox::seed::create_many(
            &c,
            (0..6000).map(|i| (format!("{base}/c{i:05}"), b"v".to_vec())),
        )
        .await
        .unwrap();
    }
    c.sync(root).await.unwrap();
    (format!("{connect}{root}/a"), format!("{connect}{root}/b"))
}

/// A compare capped slow enough (about 4.5 s) that a fault lands mid-walk;
/// `extra` flags come last and win.
fn slow_compare<S: AsRef<str>>(src: &str, dst: &str, extra: &[S]) -> tokio::task::JoinHandle<Run> {
    let mut args: Vec<String> = [
        "compare",
        "--source",
        src,
        "--target",
        dst,
        "--format",
        "json",
        "--recheck-delay",
        "0s",
        "--max-reads-per-second",
        "8000",
        "--session-timeout",
        "10s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.as_ref().to_string()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        zkparity(&args)
    })
}

/// The rule: the right answer from a complete walk, or a clear error.
fn assert_complete_or_clear_error(run: &Run) {
    assert!(
        run.code == 0 || run.code == 2,
        "exit {}: {}{}",
        run.code,
        run.stdout,
        run.stderr
    );
    if run.code == 0 {
        let r = run.json();
        assert_eq!(
            r["summary"]["source"]["nodes"], 6001,
            "a complete walk, not a partial one"
        );
        assert_eq!(r["summary"]["target"]["nodes"], 6001);
        assert_eq!(r["summary"]["identical"], true);
    } else {
        assert!(run.stderr.starts_with("zkparity: error:"), "{}", run.stderr);
    }
}

async fn connect_to(connect: &str) -> zookeeper_client::Client {
    common::connect(connect).await
}

/// A target server of its own, holding the same 6,000-child tree under
/// `root` as the shared source; returns it with a session on it.
async fn own_target(root: &str) -> (ZkServer, zookeeper_client::Client) {
    let target = own_server().await;
    let s = client(&pair().source).await;
    let t = connect_to(&target.connect_string()).await;
    wide_tree(&s, &t, root, 6000, &[b'x'; 100]).await;
    (target, t)
}

/// Flags for a compare of `root` against a target of its own, slowed to
/// about 3 s, with a 2 s session timeout.
fn own_target_flags(root: &str) -> Vec<String> {
    [
        "--path",
        root,
        "--max-reads-per-second",
        "6000",
        "--session-timeout",
        "2s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test]
async fn a_side_gone_past_the_session_timeout_fails_clearly_never_identical() {
    // Its own server: it is stopped for good in the middle of the walk.
    let root = unique_path("expire");
    let (mut target, t) = own_target(&root).await;
    drop(t);
    let started = Instant::now();
    let source = pair().source.connect_string();
    let walk = slow_compare(&source, &target.connect_string(), &own_target_flags(&root));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let target = tokio::task::spawn_blocking(move || {
        target.kill();
        target
    })
    .await
    .unwrap();
    let run = walk.await.unwrap();
    drop(target);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.is_empty(),
        "no report from a partial walk: {}",
        run.stdout
    );
    assert!(
        run.stderr.starts_with("zkparity: error: reading ") && run.stderr.contains("target"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "gave up in bounded time"
    );
}

#[tokio::test]
async fn a_side_back_after_its_session_expired_is_walked_to_the_right_answer() {
    let root = unique_path("renew");
    let (mut target, t) = own_target(&root).await;
    // One difference the walk must still find after the outage.
    let last = format!("{root}/c05999");
    t.set_data(&last, b"changed", None).await.unwrap();
    drop(t);
    let source = pair().source.connect_string();
    let mut flags = own_target_flags(&root);
    flags.extend(["--connect-timeout".to_string(), "20s".to_string()]);
    let walk = slow_compare(&source, &target.connect_string(), &flags);
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Down for longer than the client's own expiry (7/5 of the session
    // timeout), then back with its data.
    let target = tokio::task::spawn_blocking(move || {
        target.kill();
        std::thread::sleep(Duration::from_secs(5));
        target.restart().expect("restart the target");
        target
    })
    .await
    .unwrap();
    let run = walk.await.unwrap();
    drop(target);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["summary"]["source"]["nodes"], 6001);
    assert_eq!(report["summary"]["target"]["nodes"], 6001, "{report}");
    assert_eq!(report["summary"]["confirmed"], 1, "{report}");
    assert_eq!(of_kind(&report, "data")[0]["path"], last.as_str());
}

#[tokio::test]
async fn restarting_the_follower_the_client_uses_mid_walk_still_gives_the_right_answer() {
    let (follower, follower_connect, all) = {
        let mut e = ensemble().lock().unwrap();
        let leader = e.wait_for_leader(Duration::from_secs(30)).unwrap();
        let follower = (leader + 1) % e.servers.len();
        (
            follower,
            e.servers[follower].connect_string(),
            e.connect_string(),
        )
    };
    let root = unique_path("followerrestart");
    two_copies(&all, &root).await;
    // Only that follower: the client has nowhere else to go.
    let src = format!("{follower_connect}{root}/a");
    let dst = format!("{follower_connect}{root}/b");
    let walk = slow_compare::<&str>(&src, &dst, &[]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    tokio::task::spawn_blocking(move || {
        let mut e = ensemble().lock().unwrap();
        e.servers[follower].restart().unwrap();
        e.wait_for_leader(Duration::from_secs(30)).unwrap();
    })
    .await
    .unwrap();
    let run = walk.await.unwrap();
    assert_complete_or_clear_error(&run);
}
