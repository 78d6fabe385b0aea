//! Bad input to `zkparity compare`: every case exits 2 with one clear
//! `zkparity: error:` line (or clap's `error:` for argument-level mistakes)
//! that names the offending flag, value, side or file, prints nothing on
//! stdout, never echoes a secret, and leaves the servers' trees untouched.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use zookeeper_client as zk;

// ---------------------------------------------------------------------------
// Helpers

/// Exit 2, nothing on stdout, and exactly one `zkparity: error:` line on
/// stderr containing every needle.
fn assert_error(run: &Run, needles: &[&str]) {
    let ctx = format!(
        "exit {}\nstdout: {}\nstderr: {}",
        run.code, run.stdout, run.stderr
    );
    assert_eq!(run.code, 2, "{ctx}");
    assert!(run.stdout.is_empty(), "nothing half-printed: {ctx}");
    assert!(run.stderr.starts_with("zkparity: error: "), "{ctx}");
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "one line: {ctx}");
    assert!(!run.stderr.contains("panicked"), "{ctx}");
    for needle in needles {
        assert!(run.stderr.contains(needle), "expected {needle:?}: {ctx}");
    }
}

/// A clap-level usage error: exit 2, nothing on stdout, `error:` first.
fn assert_usage_error(run: &Run, needles: &[&str]) {
    let ctx = format!(
        "exit {}\nstdout: {}\nstderr: {}",
        run.code, run.stdout, run.stderr
    );
    assert_eq!(run.code, 2, "{ctx}");
    assert!(run.stdout.is_empty(), "{ctx}");
    assert!(run.stderr.starts_with("error: "), "{ctx}");
    for needle in needles {
        assert!(run.stderr.contains(needle), "expected {needle:?}: {ctx}");
    }
}

/// A small tree that differs a little between the two servers (a compare of
/// it exits 1), for checking that failing runs write nothing to it.
struct Fixture {
    root: String,
    source: zk::Client,
    target: zk::Client,
    before: [Tree; 2],
}

impl Fixture {
    /// `zkparity compare` of this fixture's root on the shared pair, with
    /// `extra` flags and `env` variables.
    async fn compare(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let (s, t) = servers();
        let mut args = vec![
            "compare", "--source", &s, "--target", &t, "--path", &self.root,
        ];
        args.extend_from_slice(extra);
        run_env(&args, env).await
    }

    async fn new(name: &str) -> Fixture {
        let (_, s, t) = pair_clients().await;
        let root = unique_path(name);
        both(
            &s,
            &t,
            &root,
            &[("app", b"v1"), ("app/conf", b"x=1"), ("queue", b"")],
        )
        .await;
        create(&s, &format!("{root}/app/only-in-source"), b"").await;
        let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
        for c in [&s, &t] {
            c.create(&format!("{root}/queue/item-"), b"q", &seq)
                .await
                .unwrap();
        }
        let before = [read_tree(&s, &root).await, read_tree(&t, &root).await];
        assert_eq!(before[0].len(), 6);
        Fixture {
            root,
            source: s,
            target: t,
            before,
        }
    }

    /// Both trees are exactly as they were when the fixture was made.
    async fn assert_untouched(&self) {
        let after = [
            read_tree(&self.source, &self.root).await,
            read_tree(&self.target, &self.root).await,
        ];
        for (side, (before, after)) in ["source", "target"]
            .iter()
            .zip(self.before.iter().zip(&after))
        {
            assert_eq!(before, after, "the {side} tree under {} changed", self.root);
        }
    }
}

fn servers() -> (String, String) {
    let p = pair();
    (p.source.connect_string(), p.target.connect_string())
}

/// Accepts connections and either writes garbage to them or holds them
/// silently; never speaks ZooKeeper.
struct FakeServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    fn start(garbage: bool) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                if garbage {
                    let _ = stream.write_all(b"garbage\n");
                }
                held.push(stream);
            }
        });
        FakeServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_auth_file(dir: &Path, name: &str, content: &str, mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------
// Connect strings and connections

#[tokio::test]
async fn malformed_connect_strings_are_refused_naming_the_string_and_reason() {
    let fx = Fixture::new("cli-connect").await;
    let (s, t) = servers();
    for (bad, reason) in [
        ("zk://localhost:2181", "not a URL"),
        ("h1:2181;h2:2181", "commas, not semicolons"),
        ("h:99999", "is not a port number"),
        ("h:1,,h:2", "empty host entry"),
        ("h:1/a/", "must not end with '/'"),
    ] {
        let quoted = format!("invalid connect string {bad:?}");
        let r = run(&[
            "compare", "--source", bad, "--target", &t, "--path", &fx.root,
        ])
        .await;
        assert_error(&r, &[&quoted, reason]);
        let r = run(&[
            "compare", "--source", &s, "--target", bad, "--path", &fx.root,
        ])
        .await;
        assert_error(&r, &[&quoted, reason]);
    }
    fx.assert_untouched().await;
}

#[tokio::test]
async fn a_port_with_no_server_fails_fast_naming_the_side_and_ensemble() {
    let fx = Fixture::new("cli-dead").await;
    let (s, t) = servers();
    let dead = format!("127.0.0.1:{}", dead_port());
    for (side, source, target) in [("source", &dead, &t), ("target", &s, &dead)] {
        let started = Instant::now();
        let r = run(&[
            "compare", "--source", source, "--target", target, "--path", &fx.root,
        ])
        .await;
        let elapsed = started.elapsed();
        let expected = format!("cannot connect to the {side} ensemble {dead}");
        assert_error(&r, &[&expected]);
        assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    }
    fx.assert_untouched().await;
}

#[tokio::test]
async fn an_unknown_host_fails_naming_the_side() {
    let fx = Fixture::new("cli-nohost").await;
    let (s, t) = servers();
    let unknown = "no-such-host.invalid:2181";
    for (side, source, target) in [("source", unknown, t.as_str()), ("target", &s, unknown)] {
        let started = Instant::now();
        let r = run(&[
            "compare",
            "--source",
            source,
            "--target",
            target,
            "--path",
            &fx.root,
            "--connect-timeout",
            "5s",
        ])
        .await;
        let expected = format!("cannot connect to the {side} ensemble {unknown}");
        assert_error(&r, &[&expected]);
        // Even a resolver that never answers is bounded by --connect-timeout.
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "{:?}",
            started.elapsed()
        );
    }
    fx.assert_untouched().await;
}

#[tokio::test]
async fn a_server_that_answers_garbage_or_nothing_times_out_without_panicking() {
    let fx = Fixture::new("cli-garbage").await;
    let (s, t) = servers();
    let garbage = FakeServer::start(true);
    let silent = FakeServer::start(false);
    let mut cases = Vec::new();
    for fake in [garbage.addr(), silent.addr()] {
        cases.push(("source", fake.clone(), t.clone()));
        cases.push(("target", s.clone(), fake));
    }
    // All at once: each may take the whole connect timeout.
    let runs = cases.iter().map(|(_, source, target)| async {
        let started = Instant::now();
        let r = run(&[
            "compare",
            "--source",
            source,
            "--target",
            target,
            "--path",
            &fx.root,
            "--connect-timeout",
            "2s",
        ])
        .await;
        (r, started.elapsed())
    });
    let results = futures::future::join_all(runs).await;
    for ((side, source, target), (r, elapsed)) in cases.iter().zip(results) {
        let fake = if *side == "source" { source } else { target };
        let expected = format!("cannot connect to the {side} ensemble {fake}");
        assert_error(&r, &[&expected]);
        assert!(
            elapsed < Duration::from_secs(6),
            "--connect-timeout 2s, took {elapsed:?}"
        );
    }
    fx.assert_untouched().await;
}

// ---------------------------------------------------------------------------
// Flags

#[tokio::test]
async fn bad_flag_values_are_refused_naming_the_flag_and_value() {
    let fx = Fixture::new("cli-flags").await;
    let (s, t) = servers();
    let base = ["compare", "--source", &s, "--target", &t];
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--recheck-delay", "soon"],
            &["--recheck-delay \"soon\"", "500ms"],
        ),
        (&["--session-timeout=-1"], &["--session-timeout \"-1\""]),
        (&["--connect-timeout", "10 parsecs"], &["--connect-timeout"]),
        (
            &["--exclude", "relative/*"],
            &[
                "invalid --exclude pattern \"relative/*\"",
                "must start with '/'",
            ],
        ),
        (
            &["--exclude", "/a/[b"],
            &["invalid --exclude pattern \"/a/[b\"", "unclosed"],
        ),
        (
            &["--sessions", "0"],
            &["--sessions 0: must be between 1 and 16"],
        ),
        (
            &["--sessions", "1000"],
            &["--sessions 1000: must be between 1 and 16"],
        ),
        (
            &["--batch-size", "100000"],
            &["--batch-size 100000: must be between 1 and 1000"],
        ),
        (
            &["--in-flight", "500"],
            &["--in-flight 500: must be between 1 and 64"],
        ),
        (&["--batch-size", "0"], &["--batch-size"]),
        (&["--in-flight", "0"], &["--in-flight"]),
        (
            &["--path", "nope"],
            &["invalid path \"nope\"", "must start with '/'"],
        ),
        (
            &["--path", "/a/"],
            &["invalid path \"/a/\"", "must not end with '/'"],
        ),
        (&["--path", "/a//b"], &["invalid path \"/a//b\"", "'//'"]),
    ];
    for (extra, needles) in cases {
        let mut args = base.to_vec();
        if !extra.contains(&"--path") {
            args.extend(["--path", &fx.root]);
        }
        args.extend_from_slice(extra);
        assert_error(&run(&args).await, needles);
    }
    fx.assert_untouched().await;
}

#[tokio::test]
async fn argument_level_mistakes_are_clap_usage_errors() {
    let fx = Fixture::new("cli-clap").await;
    let (s, t) = servers();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[
                "compare",
                "--source",
                &s,
                "--target",
                &t,
                "--ephemerals",
                "maybe",
            ],
            &["'maybe'", "--ephemerals", "skip", "count", "compare"],
        ),
        // Without '=', a negative value reads as an unknown flag.
        (
            &[
                "compare",
                "--source",
                &s,
                "--target",
                &t,
                "--session-timeout",
                "-1",
            ],
            &["'-1'"],
        ),
        (&["compare", "--target", &t], &["--source"]),
        (&["compare", "--source", &s], &["--target"]),
        (
            &[
                "compare",
                "--source",
                &s,
                "--target",
                &t,
                "--sessions",
                "many",
            ],
            &["'many'", "--sessions"],
        ),
        (
            &["compare", "--source", &s, "--target", &t, "--format", "xml"],
            &["'xml'", "--format"],
        ),
        (
            &["compare", "--source", &s, "--target", &t, "--no-such-flag"],
            &["--no-such-flag"],
        ),
        (&["frobnicate"], &["frobnicate"]),
    ];
    for (args, needles) in cases {
        let mut args = args.to_vec();
        args.extend(["--path", &fx.root]);
        assert_usage_error(&run(&args).await, needles);
    }
    fx.assert_untouched().await;
}

#[tokio::test]
async fn a_path_on_neither_side_is_an_error_not_identical() {
    let fx = Fixture::new("cli-nopath").await;
    let (s, t) = servers();
    let absent = format!("{}/not-there", fx.root);
    let r = run(&[
        "compare", "--source", &s, "--target", &t, "--path", &absent, "--format", "json",
    ])
    .await;
    let expected = format!("{absent} does not exist on either ensemble");
    assert_error(&r, &[&expected]);
    for c in [&fx.source, &fx.target] {
        assert_eq!(c.check_stat(&absent).await.unwrap(), None, "not created");
    }
    // Through a chroot that does not exist either.
    let src = format!("{s}{absent}");
    let dst = format!("{t}{absent}");
    let r = run(&["compare", "--source", &src, "--target", &dst]).await;
    let under = format!("under the source's chroot {absent} and the target's chroot {absent}");
    assert_error(&r, &["does not exist on either ensemble", &under]);
    fx.assert_untouched().await;
}

#[tokio::test]
async fn a_host_name_that_does_not_resolve_is_named_not_taken_for_a_server_down() {
    let (_, t) = servers();
    let r = run(&[
        "compare",
        "--source",
        "no-such-zk-host.invalid:2181",
        "--target",
        &t,
        "--connect-timeout",
        "3s",
    ])
    .await;
    assert_error(
        &r,
        &["\"no-such-zk-host.invalid\" does not resolve", "typo"],
    );
}

#[tokio::test]
async fn a_directory_given_as_an_auth_file_is_called_a_directory() {
    let (s, t) = servers();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let r = run(&[
        "compare",
        "--source",
        &s,
        "--target",
        &t,
        "--source-auth-file",
        &d,
    ])
    .await;
    assert_error(&r, &["is a directory"]);
    assert!(!r.stderr.contains("mode"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------
// Credentials

#[tokio::test]
async fn an_auth_file_readable_by_others_is_refused_without_showing_its_content() {
    let fx = Fixture::new("cli-authmode").await;
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o644, 0o640, 0o604] {
        let file = write_auth_file(dir.path(), "auth", "bob:leaky-secret-644\n", mode);
        for flag in ["--source-auth-file", "--target-auth-file"] {
            let r = fx.compare(&[flag, &file], &[]).await;
            let named = format!("credentials file {file}");
            let shown = format!("{:o}", mode);
            assert_error(&r, &[&named, "chmod 600", &shown]);
            assert!(!r.stderr.contains("leaky-secret-644"), "{}", r.stderr);
            assert!(!r.stdout.contains("leaky-secret-644"));
        }
    }
    fx.assert_untouched().await;
}

#[tokio::test]
async fn a_missing_or_malformed_auth_file_is_named() {
    let fx = Fixture::new("cli-authmissing").await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-auth-file");
    let missing = missing.to_str().unwrap();
    for flag in ["--source-auth-file", "--target-auth-file"] {
        let r = fx.compare(&[flag, missing], &[]).await;
        let named = format!("credentials file {missing}");
        assert_error(&r, &[&named]);
    }
    let malformed = write_auth_file(dir.path(), "bad", "nocolon-secret-value\n", 0o600);
    let r = fx.compare(&["--source-auth-file", &malformed], &[]).await;
    let named = format!("credentials file {malformed}");
    assert_error(&r, &[&named, "user:password"]);
    assert!(!r.stderr.contains("nocolon-secret-value"), "{}", r.stderr);
    fx.assert_untouched().await;
}

#[tokio::test]
async fn malformed_auth_in_the_environment_names_the_variable_not_the_value() {
    let fx = Fixture::new("cli-authenv").await;
    for var in ["ZKPARITY_SOURCE_AUTH", "ZKPARITY_TARGET_AUTH"] {
        for value in ["nocolon-env-secret", ":only-a-password-secret"] {
            let r = fx.compare(&[], &[(var, value)]).await;
            let named = format!("environment variable {var}");
            assert_error(&r, &[&named, "user:password"]);
            assert!(!r.stderr.contains("secret"), "{}", r.stderr);
            assert!(!r.stdout.contains("secret"));
        }
    }
    fx.assert_untouched().await;
}

#[tokio::test]
async fn valid_credentials_are_used_and_never_printed() {
    let (_, sc, tc) = pair_clients().await;
    let (s, t) = servers();
    let root = unique_path("cli-authok");
    // Only bob may read "private"; his id is base64(sha1("bob:hunter2-secret")).
    let id = "bob:XVkvgHXkErbEewc7kTmi18017Jw=";
    let acl = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", id),
    )];
    let locked = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl));
    both(&sc, &tc, &root, &[("app", b"v")]).await;
    for c in [&sc, &tc] {
        c.create(&format!("{root}/private"), b"p", &locked)
            .await
            .unwrap();
    }
    let before = [read_tree(&sc, &root).await, read_tree(&tc, &root).await];
    assert_eq!(before[0].len(), 3);

    let dir = tempfile::tempdir().unwrap();
    let file = write_auth_file(dir.path(), "bob", "bob:hunter2-secret\n", 0o600);
    let no_secret = |r: &Run| {
        assert!(!r.stdout.contains("hunter2"), "{}", r.stdout);
        assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    };
    for format in ["text", "json"] {
        let r = run(&[
            "compare",
            "--source",
            &s,
            "--target",
            &t,
            "--path",
            &root,
            "--format",
            format,
            "--recheck-delay",
            "0s",
            "--show-acl-ids",
            "--source-auth-file",
            &file,
            "--target-auth-file",
            &file,
        ])
        .await;
        assert_eq!(
            r.code, 0,
            "bob reads private on both: {}{}",
            r.stdout, r.stderr
        );
        assert!(!r.stdout.is_empty());
        no_secret(&r);
    }
    // The same from the environment.
    let r = run_env(
        &[
            "compare",
            "--source",
            &s,
            "--target",
            &t,
            "--path",
            &root,
            "--format",
            "json",
            "--recheck-delay",
            "0s",
        ],
        &[
            ("ZKPARITY_SOURCE_AUTH", "bob:hunter2-secret"),
            ("ZKPARITY_TARGET_AUTH", "bob:hunter2-secret"),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["summary"]["source"]["nodes"], 3);
    no_secret(&r);
    // Without them, private cannot be verified: never "identical", and
    // never a difference either.
    let r = run(&[
        "compare",
        "--source",
        &s,
        "--target",
        &t,
        "--path",
        &root,
        "--recheck-delay",
        "0s",
    ])
    .await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.starts_with("zkparity compare: INCOMPLETE"),
        "{}",
        r.stdout
    );
    // A connection failure with credentials loaded does not show them either.
    let dead = format!("127.0.0.1:{}", dead_port());
    let r = run(&[
        "compare",
        "--source",
        &s,
        "--target",
        &dead,
        "--path",
        &root,
        "--source-auth-file",
        &file,
        "--target-auth-file",
        &file,
    ])
    .await;
    let expected = format!("cannot connect to the target ensemble {dead}");
    assert_error(&r, &[&expected]);
    no_secret(&r);
    let after = [read_tree(&sc, &root).await, read_tree(&tc, &root).await];
    assert_eq!(before, after, "reading with credentials wrote nothing");
}

// ---------------------------------------------------------------------------
// Help and version

#[test]
fn compare_help_shows_examples_credentials_and_exit_codes() {
    let r = zkparity(&["compare", "--help"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for needle in [
        "Examples:",
        "zkparity compare --source zk-old-1:2181,zk-old-2:2181 --target zk-new-1:2181",
        "--format json",
        "--source-auth-file",
        "ZKPARITY_SOURCE_AUTH",
        "never from the command line",
        "zkparity compare --source /backup/zk-old-1/data --target new:2181",
        "--source-at-zxid",
        "Exit codes: 0 identical, 1 confirmed differences, 2 usage or connection error,\n3 incomplete",
    ] {
        assert!(
            r.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            r.stdout
        );
    }
    let top = zkparity(&["--help"]);
    assert_eq!(top.code, 0);
    assert!(
        top.stdout.contains("compare: 0 identical, 1 differences"),
        "{}",
        top.stdout
    );
    assert!(
        top.stdout.contains("checks: 0 OK, 1 WARNING, 2 CRITICAL"),
        "{}",
        top.stdout
    );
}

#[test]
fn version_prints_the_crate_version_and_exits_zero() {
    let r = zkparity(&["--version"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        format!("zkparity {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(r.stderr.is_empty());
}

// ---------------------------------------------------------------------------
// Edge cases that once crashed instead of answering.

#[test]
fn a_duration_too_large_is_a_usage_error_not_a_panic() {
    for flag in ["--recheck-delay", "--session-timeout", "--connect-timeout"] {
        let r = zkparity(&[
            "compare",
            "--source",
            "127.0.0.1:1",
            "--target",
            "127.0.0.1:2",
            flag,
            "1e30",
        ]);
        assert_error(&r, &[flag, "1e30"]);
    }
}

#[tokio::test]
async fn a_closed_stdout_is_not_a_panic() {
    let fx = Fixture::new("cli-pipe").await;
    let (s, t) = servers();
    let root = fx.root.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zkparity"))
            .args(["compare", "--source", &s, "--target", &t, "--path", &root])
            .args(["--format", "json", "--recheck-delay", "0s"])
            .env_remove("ZKPARITY_SOURCE_AUTH")
            .env_remove("ZKPARITY_TARGET_AUTH")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the report is written (`| head -c0`).
        drop(child.stdout.take());
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(matches!(code, Some(0..=2)), "exit {code:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    fx.assert_untouched().await;
}

// ---------------------------------------------------------------------------
// Ctrl-C

/// Starts `args`, sends SIGINT after `after`, and returns its exit code and
/// stderr.
async fn interrupted(args: Vec<String>, after: Duration) -> (Option<i32>, String) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_zkparity"))
        .args(&args)
        .env("ZKPARITY_BACKUP_DIR", backup_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start zkparity");
    tokio::time::sleep(after).await;
    // SAFETY: a plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("waiter")
        .expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn ctrl_c_says_what_was_interrupted_and_how_repair_resumes() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("cli-ctrl-c");
    wide_tree(&s, &t, &root, 3000, b"v").await;
    for c in (0..3000).step_by(10) {
        t.set_data(&format!("{root}/c{c:05}"), b"w", None)
            .await
            .expect("a difference");
    }
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    // About 5 s at this cap: time enough to interrupt it half-way.
    let compare: Vec<String> = [
        "compare",
        "--source",
        &src,
        "--target",
        &dst,
        "--path",
        &root,
        "--max-reads-per-second",
        "1200",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, stderr) = interrupted(compare, Duration::from_millis(1500)).await;
    assert_eq!(code, Some(130), "128 + SIGINT: {stderr}");
    assert!(
        stderr.contains("interrupted (SIGINT): the comparison did not finish"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let plan = dir.path().join("repair.plan").display().to_string();
    let repair: Vec<String> = [
        "repair",
        "--source",
        &src,
        "--target",
        &dst,
        "--path",
        &root,
        "--apply",
        "--resume",
        &plan,
        "--max-writes-per-second",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (code, stderr) = interrupted(repair, Duration::from_millis(3000)).await;
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "run the same command again (with --resume {plan})"
        )),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------
// Help that fits each command

#[tokio::test]
async fn each_commands_help_offers_only_what_it_takes() {
    for command in ["snapshot", "export"] {
        let r = run(&[command, "--help"]).await;
        assert_eq!(r.code, 0, "{}", ctx(&r));
        assert!(
            !r.stdout.contains("--recheck-delay"),
            "{command}: {}",
            r.stdout
        );
        let path_help = r
            .stdout
            .lines()
            .skip_while(|l| !l.contains("--path <PATH>"))
            .nth(1)
            .unwrap_or_default();
        assert!(
            path_help.contains("Subtree to read"),
            "{command}: {}",
            r.stdout
        );
    }
    let r = run(&["repair", "--help"]).await;
    assert!(r.stdout.contains("--target <CONNECT>"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("--target <CONNECT|FILE>"),
        "{}",
        r.stdout
    );
    let r = run(&["check", "health", "--help"]).await;
    assert!(
        r.stdout
            .contains("WARNING when a member is down while the quorum holds"),
        "{}",
        r.stdout
    );
    let r = run(&["check", "znode", "--help"]).await;
    assert!(r.stdout.contains("--source-tls-ca"), "{}", r.stdout);
}

#[tokio::test]
async fn check_config_refuses_a_nagios_command_file_that_is_not_a_pipe() {
    let (s, t) = servers();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("nagios.cmd");
    std::fs::write(&plain, "").unwrap();
    let config = dir.path().join("agent.toml");
    let write = |command_file: &Path| {
        std::fs::write(
            &config,
            format!(
                "state_dir = {:?}\n[nagios]\ncommand_file = {:?}\nhost_name = \"zk\"\n\
                 [[pair]]\nname = \"p\"\nsource = {s:?}\ntarget = {t:?}\n",
                dir.path(),
                command_file
            ),
        )
        .unwrap();
    };
    write(&plain);
    let c = config.display().to_string();
    let r = run(&["agent", "--check-config", "--config", &c]).await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr.contains("nagios.command_file") && r.stderr.contains("not a FIFO"),
        "{}",
        r.stderr
    );
    // Absent (Nagios stopped): valid, with a note.
    write(&dir.path().join("later.cmd"));
    let r = run(&["agent", "--check-config", "--config", &c]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert!(r.stderr.contains("is Nagios running?"), "{}", r.stderr);
}
