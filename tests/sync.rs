//! `zkparity sync` against real servers: the initial copy, following live
//! writes (creates, sets, deletes, sequential creates, ACL changes, multi)
//! until the source is quiet, and the final compare; the source's own
//! transaction log shows no write but the test's; a write by someone else
//! on the target is reported, not overwritten.

mod common;
mod gmetric_support;
mod real_apps_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use real_apps_support::ClickHouse;
use zkparity_sandbox::{guarded_command, Guarded, ZkServer};
use zookeeper_client as zk;

/// A running `zkparity sync --format json`, its stdout lines collected.
struct Sync {
    process: Guarded,
    lines: mpsc::Receiver<String>,
    seen: Vec<serde_json::Value>,
    stderr: std::path::PathBuf,
    peak: Option<std::thread::JoinHandle<u64>>,
    _dir: tempfile::TempDir,
}

/// `VmHWM:   12345 kB` in a /proc/PID/status.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Sync {
    fn start(source: &str, target: &str, path: &str, extra: &[&str]) -> Sync {
        Sync::start_as("json", source, target, path, extra)
    }

    /// [`Sync::start`] with another `--format` (text: progress on stderr).
    fn start_as(format: &str, source: &str, target: &str, path: &str, extra: &[&str]) -> Sync {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr");
        let mut cmd = guarded_command(env!("CARGO_BIN_EXE_zkparity"), None);
        cmd.args([
            "sync",
            "--source",
            source,
            "--target",
            target,
            "--path",
            path,
            "--apply",
            "--format",
            format,
            "--settle",
            "200ms",
            "--recheck-delay",
            "0s",
        ])
        .args(extra)
        .env("ZKPARITY_BACKUP_DIR", backup_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap());
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
        Sync {
            process,
            lines,
            seen: Vec::new(),
            stderr,
            peak: None,
            _dir: dir,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for the first event line of kind `event` (JSON lines only).
    fn wait_for(&mut self, event: &str, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        if let Some(v) = self.seen.iter().find(|v| v["event"] == event) {
            return v.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        self.seen.push(v.clone());
                        if v["event"] == event {
                            return v;
                        }
                    }
                }
                Err(_) => panic!(
                    "no {event} event within {within:?}; seen {:?}\nstderr:\n{}",
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// Samples the process's peak resident set (VmHWM) until it exits, for
    /// [`Sync::finish_measured`].
    fn measure_peak_rss(&mut self) {
        let pid = self.process.id();
        self.peak = Some(std::thread::spawn(move || {
            let status = format!("/proc/{pid}/status");
            let mut peak = 0;
            // A zombie has no VmHWM any more: its memory is gone, and it is
            // not reaped (so the PID is still its own) until `finish` joins.
            while let Some(kib) = std::fs::read_to_string(&status)
                .ok()
                .and_then(|s| vm_hwm_kib(&s))
            {
                peak = peak.max(kib);
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        }));
    }

    /// Waits for the exit; the last stdout line is the final report.
    fn finish(self, within: Duration) -> (i32, serde_json::Value, Vec<serde_json::Value>) {
        let (code, report, seen, _) = self.finish_measured(within);
        (code, report, seen)
    }

    /// [`Sync::finish`], and the peak RSS in KiB if it was measured.
    fn finish_measured(
        mut self,
        within: Duration,
    ) -> (i32, serde_json::Value, Vec<serde_json::Value>, Option<u64>) {
        let deadline = Instant::now() + within;
        let mut last = None;
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                        self.seen.push(v.clone());
                        last = Some(v);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    assert!(
                        Instant::now() < deadline,
                        "sync did not end within {within:?}; seen {:?}\nstderr:\n{}",
                        self.seen,
                        self.stderr()
                    );
                }
            }
        }
        let peak_rss_kib = self.peak.take().map(|p| p.join().unwrap());
        let code = self.process.wait().unwrap().code().unwrap_or(-1);
        if code != 0 {
            eprintln!("sync's stderr:\n{}", self.stderr());
        }
        (code, last.expect("a final report"), self.seen, peak_rss_kib)
    }
}

impl Sync {
    /// [`Sync::finish`] for `--format text`: the exit code, stdout and
    /// stderr.
    fn finish_text(self, within: Duration) -> (i32, String, String) {
        let deadline = Instant::now() + within;
        let mut out = String::new();
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => out += &(line + "\n"),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => assert!(
                    Instant::now() < deadline,
                    "sync did not end within {within:?}; stdout {out}\nstderr:\n{}",
                    self.stderr()
                ),
            }
        }
        let stderr = self.stderr();
        let mut process = self.process;
        let code = process.wait().unwrap().code().unwrap_or(-1);
        (code, out, stderr)
    }
}

/// A value of a node_exporter textfile's series, by its line's start.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

/// Sends SIGCONT when dropped, so a failing test leaves no server stopped.
struct Stopped(i32);

impl Stopped {
    fn stop(pid: u32) -> Stopped {
        let pid = pid as i32;
        // SAFETY: a plain signal to a child process of this test.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// Every transaction in a server's logs: (session, type, the rest).
fn transactions(server: &ZkServer) -> Vec<(String, String, String)> {
    let java = zkparity_sandbox::find_java().unwrap();
    let cp = zkparity_sandbox::zookeeper_classpath().unwrap();
    let dir = server.data_dir().join("version-2");
    let mut logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("log."))
        })
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        let dump = Command::new(&java)
            .args([
                "-cp",
                &cp,
                "org.apache.zookeeper.server.persistence.TxnLogToolkit",
                "-d",
            ])
            .arg(&log)
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&dump.stdout).lines() {
            // "<date> session 0x... cxid 0x.. zxid 0x.. <type> <args>"
            let Some((_, rest)) = line.split_once(" session ") else {
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            if words.len() < 6 {
                continue;
            }
            out.push((
                words[0].to_string(),
                words[5].to_string(),
                words[6..].join(" "),
            ));
        }
    }
    out
}

fn session_hex(c: &zk::Client) -> String {
    c.session_id().to_string()
}

#[tokio::test]
async fn sync_follows_live_writes_and_proves_the_target_identical_at_cutover() {
    let (source, target) = (own_server().await, own_server().await);
    let s = client(&source).await;
    let root = "/app";
    tree(
        &s,
        root,
        &[
            ("config", b"v1"),
            ("queue", b""),
            ("old", b"gone soon"),
            ("keep", b""),
            ("keep/a", b"1"),
        ],
    )
    .await;
    create_sequential(&s, &format!("{root}/queue/item-"), b"q", 3).await;
    let (src, dst) = (source.connect_string(), target.connect_string());

    let mut sync = Sync::start(
        &src,
        &dst,
        root,
        &[
            "--until-quiet",
            "3s",
            "--verify-every",
            "2s",
            "--create-path",
        ],
    );
    let copied = sync.wait_for("copied", Duration::from_secs(30));
    assert!(copied["applied"].as_u64().unwrap() >= 8, "{copied}");

    // Live writes while sync follows.
    s.set_data(&format!("{root}/config"), b"v2", None)
        .await
        .unwrap();
    create(&s, &format!("{root}/new"), b"fresh").await;
    create(&s, &format!("{root}/new/child"), b"deep").await;
    s.delete(&format!("{root}/old"), None).await.unwrap();
    create_sequential(&s, &format!("{root}/queue/item-"), b"q", 4).await;
    s.delete(&format!("{root}/queue/item-0000000000"), None)
        .await
        .unwrap();
    let mut multi = s.new_multi_writer();
    multi
        .add_create(&format!("{root}/multi"), b"m", &open())
        .unwrap();
    multi
        .add_set_data(&format!("{root}/keep/a"), b"2", None)
        .unwrap();
    multi.commit().await.unwrap();
    // An ACL change fires no watch: the periodic full pass copies it.
    let read_only = [zk::Acl::new(
        zk::Permission::READ | zk::Permission::ADMIN,
        zk::AuthId::new("world", "anyone"),
    )];
    s.set_acl(&format!("{root}/keep"), &read_only, None)
        .await
        .unwrap();
    let followed = sync.wait_for("followed", Duration::from_secs(20));
    assert!(
        followed["lag_seconds"].as_f64().unwrap() < 10.0,
        "{followed}"
    );

    let (code, report, events) =
        tokio::task::spawn_blocking(move || sync.finish(Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(code, 0, "{report}\n{events:?}");
    assert_eq!(report["summary"]["identical"], true, "{report}");
    assert!(events.iter().any(|e| e["event"] == "cutover"), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "followed" && e["full"] == true),
        "a full pass ran: {events:?}"
    );

    // Proved again by an independent compare.
    let again = compare_connects(&src, &dst, &["--path", root]).await;
    assert_eq!(again.code, 0, "{}", ctx(&again));
    // The sequence counter carried on: the next sequential node gets the
    // same number on both sides.
    let t = client(&target).await;
    let next = |c: zk::Client| async move {
        let (_, seq) = c
            .create(&format!("{root}/queue/item-"), b"", &seq())
            .await
            .unwrap();
        seq
    };
    assert_eq!(next(s.clone()).await.into_i64(), next(t).await.into_i64());

    // Nothing but the test's session wrote to the source.
    let writer = session_hex(&s);
    let writes: Vec<_> = transactions(&source)
        .into_iter()
        .filter(|(_, kind, _)| !matches!(kind.as_str(), "createSession" | "closeSession"))
        .collect();
    assert!(!writes.is_empty(), "the source's log was read");
    let foreign: Vec<_> = writes
        .iter()
        .filter(|(session, _, _)| *session != writer)
        .collect();
    assert!(
        foreign.is_empty(),
        "writes by other sessions than the test's ({writer}): {foreign:?}"
    );
}

#[tokio::test]
async fn a_write_by_someone_else_on_the_target_is_reported_not_overwritten() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("sync-conflict");
    tree(&s, &root, &[("mine", b"1"), ("theirs", b"1")]).await;
    let dir = tempfile::tempdir().unwrap();
    let commands = dir.path().join("nagios.cmd");
    std::fs::write(&commands, "").unwrap();
    let mut sync = Sync::start(
        &p.source.connect_string(),
        &p.target.connect_string(),
        &root,
        &[
            "--until-quiet",
            "3s",
            "--create-path",
            "--nagios-command-file",
            commands.to_str().unwrap(),
        ],
    );
    sync.wait_for("copied", Duration::from_secs(30));
    // Past the moment sync's own writes' events may still arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    t.set_data(&format!("{root}/theirs"), b"written on the target", None)
        .await
        .unwrap();
    let conflict = sync.wait_for("conflict", Duration::from_secs(10));
    assert_eq!(conflict["path"], format!("{root}/theirs"), "{conflict}");
    assert_eq!(conflict["action"], "stopped_following");
    // The source moves on; the subtree in conflict is left alone.
    s.set_data(&format!("{root}/theirs"), b"2", None)
        .await
        .unwrap();
    s.set_data(&format!("{root}/mine"), b"2", None)
        .await
        .unwrap();
    let (code, report, _) =
        tokio::task::spawn_blocking(move || sync.finish(Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(code, 1, "not identical: {report}");
    let (data, _) = t.get_data(&format!("{root}/theirs")).await.unwrap();
    assert_eq!(data, b"written on the target");
    let (mine, _) = t.get_data(&format!("{root}/mine")).await.unwrap();
    assert_eq!(mine, b"2", "the rest is still followed");
    let differing = of_kind(&report, "data");
    assert_eq!(differing.len(), 1, "{report}");
    assert_eq!(differing[0]["path"], format!("{root}/theirs"));
    let lines = std::fs::read_to_string(&commands).unwrap();
    let last = lines.lines().last().unwrap_or_default();
    assert!(
        last.contains(";2;ZKPARITY SYNC CRITICAL - different at cutover: 1 difference(s)"),
        "{lines}"
    );
}

#[tokio::test]
async fn without_apply_sync_prints_the_plan_headed_sync_and_writes_nothing() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("sync-dry");
    tree(&s, &root, &[("a", b"1")]).await;
    create(&t, &root, b"").await;
    let r = run(&[
        "sync",
        "--source",
        &p.source.connect_string(),
        "--target",
        &p.target.connect_string(),
        "--path",
        &root,
    ])
    .await;
    assert_eq!(r.code, 1, "work found: {}", ctx(&r));
    assert!(
        r.stdout
            .starts_with("zkparity sync: dry run, nothing written"),
        "{}",
        ctx(&r)
    );
    assert!(r.stdout.contains("create"), "{}", ctx(&r));
    assert!(t.check_stat(&format!("{root}/a")).await.unwrap().is_none());
}

#[tokio::test]
async fn sync_rides_out_a_target_restart_and_a_source_leader_change() {
    let mut source = tokio::task::spawn_blocking(|| {
        zkparity_sandbox::Ensemble::start(3, &zkparity_sandbox::ServerOptions::default())
            .expect("a 3-node source")
    })
    .await
    .unwrap();
    let mut target = own_server().await;
    let s = connect(&source.connect_string()).await;
    let root = "/ha";
    tree(&s, root, &[("a", b"1"), ("jobs", b"")]).await;
    let mut sync = Sync::start(
        &source.connect_string(),
        &target.connect_string(),
        root,
        &["--until-quiet", "4s", "--create-path"],
    );
    sync.wait_for("copied", Duration::from_secs(30));
    s.set_data(&format!("{root}/a"), b"2", None).await.unwrap();
    sync.wait_for("followed", Duration::from_secs(20));

    // The target goes away for a while; the source keeps changing.
    target = tokio::task::spawn_blocking(move || {
        target.kill();
        target
    })
    .await
    .unwrap();
    create_sequential(&s, &format!("{root}/jobs/job-"), b"j", 5).await;
    s.set_data(&format!("{root}/a"), b"3", None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    target = tokio::task::spawn_blocking(move || {
        target.restart().expect("the target restarts");
        target
    })
    .await
    .unwrap();

    // The source's leader dies; a new one is elected; writes go on.
    let leader = source.wait_for_leader(Duration::from_secs(30)).unwrap();
    source = tokio::task::spawn_blocking(move || {
        source.servers[leader].kill();
        source
            .wait_for_leader(Duration::from_secs(30))
            .expect("a new leader");
        source
    })
    .await
    .unwrap();
    // A session of the dead server's may be gone with it: a new one.
    let mut written = false;
    for _ in 0..50 {
        let c = connect(&source.connect_string()).await;
        if c.create(&format!("{root}/after-election"), b"x", &open())
            .await
            .is_ok()
        {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(written, "the source takes writes after the election");

    let (code, report, events) =
        tokio::task::spawn_blocking(move || sync.finish(Duration::from_secs(90)))
            .await
            .unwrap();
    assert_eq!(code, 0, "{report}\n{events:?}");
    assert!(
        events.iter().any(|e| e["event"] == "retry"),
        "a pass waited for the target: {events:?}"
    );
    let again = compare_connects(
        &source.connect_string(),
        &target.connect_string(),
        &["--path", root],
    )
    .await;
    assert_eq!(again.code, 0, "{}", ctx(&again));
}

/// Rows `batch*1000 ..` of one day per batch (one partition each).
fn rows(batch: usize, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "('2024-02-{:02}', {}, 'event {i}')",
                batch + 1,
                batch * 1000 + i
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// ClickHouse's ReplicatedMergeTree inserting into the source while sync
/// follows; at cutover ClickHouse is stopped, sync proves the copy, and
/// ClickHouse restarted on the target reads every row and goes on
/// inserting: its log and block numbers carry on from the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_inserting_during_sync_carries_on_against_the_target() {
    let (source, target) = (own_server().await, own_server().await);
    let s = client(&source).await;
    let root = "/ch";
    create(&s, root, b"").await;
    let (src_port, dst_port) = (source.port(), target.port());
    let mut ch = tokio::task::spawn_blocking(move || {
        let ch = ClickHouse::start(src_port, "/ch");
        ch.query(
            "CREATE TABLE events (day Date, id UInt64, what String) \
             ENGINE = ReplicatedMergeTree('/clickhouse/tables/01/events', 'r1') \
             PARTITION BY day ORDER BY id",
        );
        ch.query(&format!("INSERT INTO events VALUES {}", rows(0, 100)));
        ch
    })
    .await
    .unwrap();

    let mut sync = Sync::start(
        &source.connect_string(),
        &target.connect_string(),
        root,
        &["--create-path", "--settle", "300ms"],
    );
    sync.wait_for("copied", Duration::from_secs(60));
    // Inserts while sync follows.
    ch = tokio::task::spawn_blocking(move || {
        for batch in 1..4 {
            ch.query(&format!("INSERT INTO events VALUES {}", rows(batch, 100)));
            std::thread::sleep(Duration::from_millis(300));
        }
        ch
    })
    .await
    .unwrap();
    sync.wait_for("followed", Duration::from_secs(20));

    // Cutover: the writer stops, sync is told to finish.
    ch = tokio::task::spawn_blocking(move || {
        ch.stop();
        ch
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    sync.process.terminate();
    let (code, report, events) =
        tokio::task::spawn_blocking(move || sync.finish(Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(code, 0, "{report}\n{events:?}");
    assert!(events
        .iter()
        .any(|e| e["event"] == "cutover" && e["reason"] == "stopped by signal"));
    // The registrations ClickHouse held on the source while sync followed
    // (its replica's is_active): what must come back on the target.
    let verified = events.iter().find(|e| e["event"] == "verified").unwrap();
    let expect = verified["expect_file"]
        .as_str()
        .expect("an expectation")
        .to_string();
    assert!(
        verified["expect_ephemerals"].as_u64() >= Some(1),
        "{verified}"
    );
    let registrations = |grace: &'static str| {
        let (expect, dst) = (expect.clone(), target.connect_string());
        async move {
            run(&[
                "check",
                "ephemerals",
                "--expect",
                &expect,
                "--target",
                &dst,
                "--path",
                root,
                "--grace",
                grace,
            ])
            .await
        }
    };
    let away = registrations("1h").await;
    assert_eq!(away.code, 1, "WARNING within the grace: {}", away.stdout);
    assert!(
        away.stdout.contains("clickhouse replicas 0 of 1"),
        "{}",
        away.stdout
    );
    assert_eq!(registrations("0s").await.code, 2, "CRITICAL past the grace");

    // ClickHouse against the target: every row, and inserts go on.
    let counted = tokio::task::spawn_blocking(move || {
        ch.restart_on(dst_port);
        let before = ch.query("SELECT count() FROM events").trim().to_string();
        ch.query(&format!("INSERT INTO events VALUES {}", rows(4, 100)));
        ch.query(&format!("INSERT INTO events VALUES {}", rows(5, 100)));
        let after = ch.query("SELECT count() FROM events").trim().to_string();
        let errors = ch.log();
        // Kept running: its registrations live as long as it does.
        (before, after, errors, ch)
    })
    .await
    .unwrap();
    assert_eq!(counted.0, "400", "every row read back");
    assert_eq!(counted.1, "600", "inserts carry on: {}", counted.2);
    // Back: its replica registered again on the target.
    let back = registrations("0s").await;
    assert_eq!(back.code, 0, "{}", back.stdout);
    // The new blocks were numbered after the copied ones, on the target.
    let t = client(&target).await;
    let blocks = t
        .list_children(&format!("{root}/clickhouse/tables/01/events/blocks"))
        .await
        .unwrap();
    assert!(blocks.len() >= 6, "{blocks:?}");
}

/// The lag where operators look: a textfile node_exporter serves (checked
/// by promtool), passive results in a Nagios command file, gmetrics in a
/// real gmond.
#[tokio::test]
async fn sync_reports_its_lag_to_prometheus_nagios_and_ganglia() {
    use gmetric_support::{Gmond, Mode};
    let (p, s, _) = pair_clients().await;
    let root = unique_path("sync-outputs");
    tree(&s, &root, &[("a", b"1")]).await;
    let gmond = tokio::task::spawn_blocking(|| Gmond::start(Mode::Mute))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let textfile = dir.path().join("sync.prom");
    let commands = dir.path().join("nagios.cmd");
    std::fs::write(&commands, "").unwrap();
    let mut sync = Sync::start(
        &p.source.connect_string(),
        &p.target.connect_string(),
        &root,
        &[
            "--create-path",
            "--until-quiet",
            "2s",
            "--pair-name",
            "kafka-move",
            "--prometheus-textfile",
            textfile.to_str().unwrap(),
            "--nagios-command-file",
            commands.to_str().unwrap(),
            "--ganglia",
            &gmond.channel(),
        ],
    );
    sync.wait_for("copied", Duration::from_secs(30));
    s.set_data(&format!("{root}/a"), b"2", None).await.unwrap();
    sync.wait_for("followed", Duration::from_secs(20));

    let text = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        text.contains("zkparity_sync_lag_seconds{pair=\"kafka-move\"}"),
        "{text}"
    );
    assert!(
        text.contains("zkparity_sync_changes_total{pair=\"kafka-move\"} 1"),
        "{text}"
    );
    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&textfile).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let lines = std::fs::read_to_string(&commands).unwrap();
    let last = lines.lines().last().unwrap_or_default().to_string();
    assert!(
        last.contains("] PROCESS_SERVICE_CHECK_RESULT;zk-migration;zkparity sync kafka-move;0;ZKPARITY SYNC OK - following, lag "),
        "{lines}"
    );
    assert!(last.contains("pending=0"), "{last}");

    let seen = tokio::task::spawn_blocking(move || {
        gmond.wait_for("the sync's lag", |g| {
            g.metric("kafka-move", "zkparity_sync_lag").is_some()
        })
    })
    .await
    .unwrap();
    assert_eq!(
        seen.metric("kafka-move", "zkparity_sync_changes")
            .map(|m| m.val.as_str()),
        Some("1")
    );
    let (code, report, _) =
        tokio::task::spawn_blocking(move || sync.finish(Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(code, 0, "{report}");
    let text = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        text.contains("zkparity_sync_phase{pair=\"kafka-move\",phase=\"done\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("zkparity_sync_identical{pair=\"kafka-move\"} 1"),
        "{text}"
    );
    // Nothing is left saying "following" once sync has exited.
    let lines = std::fs::read_to_string(&commands).unwrap();
    let last = lines.lines().last().unwrap_or_default();
    assert!(
        last.contains(";zkparity sync kafka-move;0;ZKPARITY SYNC OK - identical at cutover"),
        "{lines}"
    );
}

/// A 3.4 source has no persistent watches: sync says so and follows it
/// with full passes instead, and still cuts over to an identical copy.
#[tokio::test]
async fn a_3_4_source_without_persistent_watches_is_followed_by_full_passes() {
    use zkparity_sandbox::{Release, ServerOptions};
    let source = tokio::task::spawn_blocking(|| {
        ZkServer::start_standalone(&ServerOptions {
            release: Release::V3_4_6,
            heap_mb: 256,
            ..ServerOptions::default()
        })
        .expect("a 3.4.6 source")
    })
    .await
    .unwrap();
    let target = own_server().await;
    let s = zk::Client::connector()
        .with_server_version(3, 4, 6)
        .connect(&source.connect_string())
        .await
        .unwrap();
    let root = "/legacy";
    tree(&s, root, &[("a", b"1"), ("q", b"")]).await;
    let mut sync = Sync::start(
        &source.connect_string(),
        &target.connect_string(),
        root,
        &["--create-path", "--poll-every", "1s", "--until-quiet", "3s"],
    );
    let unsupported = sync.wait_for("watch", Duration::from_secs(30));
    assert_eq!(unsupported["side"], "source", "{unsupported}");
    assert!(unsupported["state"]
        .as_str()
        .unwrap()
        .starts_with("unsupported"));
    sync.wait_for("copied", Duration::from_secs(30));
    s.set_data(&format!("{root}/a"), b"2", None).await.unwrap();
    create(&s, &format!("{root}/q/new"), b"n").await;
    let (code, report, events) =
        tokio::task::spawn_blocking(move || sync.finish(Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(code, 0, "{report}\n{events:?}");
    assert!(
        events.iter().any(|e| e["event"] == "followed"
            && e["full"] == true
            && e["applied"].as_u64() > Some(0)),
        "a full pass copied the changes: {events:?}"
    );
}

/// A source written hard while the initial copy is slowed down: the
/// watches' events pile up behind the copy. Sync's memory stays within its
/// bounds (a gap and a full pass past them), and the copy is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_source_during_a_slow_initial_copy_keeps_sync_within_its_memory_bound() {
    let (source, target) = (own_server().await, own_server().await);
    let s = client(&source).await;
    let root = "/busy";
    // Long names: each event the watches hold costs its path.
    let hot: Vec<String> = (0..100)
        .map(|i| format!("{root}/hot/{i:03}-{}", "n".repeat(400)))
        .collect();
    zkparity_sandbox::seed::ensure_path(&s, &format!("{root}/hot"))
        .await
        .unwrap();
    zkparity_sandbox::seed::ensure_path(&s, &format!("{root}/cold"))
        .await
        .unwrap();
    let cold = (0..200).map(|i| (format!("{root}/cold/c{i:03}"), b"c".to_vec()));
    let hot_nodes = hot.iter().map(|p| (p.clone(), b"0".to_vec()));
    zkparity_sandbox::seed::create_many(&s, cold.chain(hot_nodes))
        .await
        .unwrap();

    let mut sync = Sync::start(
        &source.connect_string(),
        &target.connect_string(),
        root,
        &[
            "--create-path",
            "--max-writes-per-second",
            "30",
            "--until-quiet",
            "2s",
        ],
    );
    sync.measure_peak_rss();
    // Multi-writes of every hot node, as fast as the source takes them,
    // until the copy is done.
    let copying = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (s, hot, copying) = (s.clone(), hot.clone(), copying.clone());
        tokio::spawn(async move {
            let mut events = 0u64;
            let mut round = 0u64;
            while copying.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                let value = round.to_string();
                let mut multi = s.new_multi_writer();
                for p in &hot {
                    multi.add_set_data(p, value.as_bytes(), None).unwrap();
                }
                multi.commit().await.unwrap();
                events += hot.len() as u64;
            }
            events
        })
    };
    let sync = tokio::task::spawn_blocking(move || {
        sync.wait_for("copied", Duration::from_secs(60));
        sync
    })
    .await
    .unwrap();
    copying.store(false, std::sync::atomic::Ordering::Relaxed);
    let events = writer.await.unwrap();
    // Twice sync's bound on waiting changes (10,000): past it for sure.
    assert!(events >= 20_000, "only {events} changes during the copy");
    let (code, report, seen, peak) =
        tokio::task::spawn_blocking(move || sync.finish_measured(Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(code, 0, "{report}\n{seen:?}");
    assert!(
        seen.iter().any(|e| e["event"] == "watch"
            && e["side"] == "source"
            && e["state"]
                .as_str()
                .is_some_and(|s| s.contains("waiting to be read"))),
        "the changes past the bound made a gap: {seen:?}"
    );
    let peak = peak.expect("the peak was measured");
    eprintln!("{events} changes during the copy; sync's peak RSS {peak} KiB");
    assert!(
        peak < 40 * 1024,
        "peak RSS {peak} KiB after {events} changes"
    );
}

/// New data on more nodes than one multi-write holds (by count and by
/// bytes) while sync follows: copied node by node, batch by batch, exactly.
#[tokio::test]
async fn new_data_on_many_nodes_is_copied_in_several_batches_and_exactly() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("sync-batches");
    zkparity_sandbox::seed::ensure_path(&s, &root)
        .await
        .unwrap();
    let nodes: Vec<String> = (0..250).map(|i| format!("{root}/n{i:03}")).collect();
    zkparity_sandbox::seed::create_many(&s, nodes.iter().map(|p| (p.clone(), b"0".to_vec())))
        .await
        .unwrap();
    let mut sync = Sync::start(
        &p.source.connect_string(),
        &p.target.connect_string(),
        &root,
        &["--create-path", "--until-quiet", "2s"],
    );
    sync.wait_for("copied", Duration::from_secs(30));
    // Past the moment the copy's own events may still arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let writes = nodes.iter().enumerate().map(|(i, p)| {
        let s = s.clone();
        // Some small, some large: batches fill by count and by bytes.
        let value = vec![b'a' + (i % 26) as u8; if i % 2 == 0 { 10 } else { 40 * 1024 }];
        async move { s.set_data(p, &value, None).await.unwrap() }
    });
    futures::future::join_all(writes).await;
    let (code, report, events) =
        tokio::task::spawn_blocking(move || sync.finish(Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(code, 0, "{report}\n{events:?}");
    let copied: u64 = events
        .iter()
        .filter(|e| e["event"] == "followed" && e["full"] == false)
        .map(|e| e["applied"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(copied, 250, "{events:?}");
    for (i, p) in nodes.iter().enumerate().step_by(37) {
        let (data, _) = t.get_data(p).await.unwrap();
        assert_eq!(data.len(), if i % 2 == 0 { 10 } else { 40 * 1024 }, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_keeps_growing_while_the_target_is_stopped_and_the_source_changes() {
    let (source, target) = (own_server().await, own_server().await);
    let s = client(&source).await;
    let root = "/busy";
    tree(&s, root, &[("a", b"0")]).await;
    let dir = tempfile::tempdir().unwrap();
    let textfile = dir.path().join("sync.prom");
    let mut sync = Sync::start(
        &source.connect_string(),
        &target.connect_string(),
        root,
        &[
            "--create-path",
            "--until-quiet",
            "2s",
            "--pair-name",
            "stopped",
            "--prometheus-textfile",
            textfile.to_str().unwrap(),
        ],
    );
    sync.wait_for("copied", Duration::from_secs(30));
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let (s, writing) = (s.clone(), writing.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let _ = s
                    .set_data(&format!("{root}/a"), n.to_string().as_bytes(), None)
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lag = || {
        let text = std::fs::read_to_string(&textfile).unwrap_or_default();
        series(&text, "zkparity_sync_lag_seconds{pair=\"stopped\"}")
            .unwrap_or_else(|| panic!("no lag in {text}"))
    };
    let stop_for = Duration::from_secs(7);
    let stopped = Stopped::stop(target.pid().expect("the target's pid"));
    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let early = lag();
    tokio::time::sleep(stop_for - began.elapsed()).await;
    let late = lag();
    drop(stopped);
    eprintln!("lag while the target was stopped: {early:.2} s after 3 s, {late:.2} s after 7 s");
    assert!(late > early, "the lag grew: {early} then {late}");
    assert!(
        late >= stop_for.as_secs_f64() - 1.5,
        "the lag ({late} s) counts the whole stop ({stop_for:?})"
    );
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    let (code, report, _) =
        tokio::task::spawn_blocking(move || sync.finish(Duration::from_secs(90)))
            .await
            .unwrap();
    assert_eq!(code, 0, "{report}");
    let text = std::fs::read_to_string(&textfile).unwrap();
    assert_eq!(
        series(&text, "zkparity_sync_lag_seconds{pair=\"stopped\"}"),
        Some(0.0),
        "{text}"
    );
}

#[tokio::test]
async fn without_verbose_many_changes_make_few_stderr_lines() {
    let (p, s, _) = pair_clients().await;
    let root = unique_path("sync-quiet-stderr");
    tree(&s, &root, &[("a", b"0"), ("b", b"0")]).await;
    let sync = Sync::start_as(
        "text",
        &p.source.connect_string(),
        &p.target.connect_string(),
        &root,
        &["--create-path", "--until-quiet", "2s"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sync.stderr().contains("initial copy done") {
        assert!(Instant::now() < deadline, "{}", sync.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = sync.stderr().lines().count();
    // About 8 s of a light writer: a pass every half second or so.
    let started = Instant::now();
    let mut changes = 0;
    while started.elapsed() < Duration::from_secs(8) {
        changes += 1;
        let node = if changes % 2 == 0 { "a" } else { "b" };
        s.set_data(
            &format!("{root}/{node}"),
            changes.to_string().as_bytes(),
            None,
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (code, out, stderr) =
        tokio::task::spawn_blocking(move || sync.finish_text(Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(code, 0, "{out}\n{stderr}");
    assert!(out.contains("Followed the source"), "{out}");
    let following: Vec<&str> = stderr.lines().skip(before).collect();
    eprintln!(
        "{changes} changes, {} stderr lines while following:\n{}",
        following.len(),
        following.join("\n")
    );
    assert!(
        following.len() <= 6,
        "{changes} changes made {} lines:\n{stderr}",
        following.len()
    );
    assert!(
        following.iter().any(|l| l.contains("cutover")),
        "the cutover is said: {stderr}"
    );
}

#[tokio::test]
async fn a_refused_port_on_either_side_fails_at_once_as_compare_does() {
    let p = pair();
    let root = unique_path("sync-refused");
    let refused = format!("127.0.0.1:{}", dead_port());
    let (live_source, live_target) = (p.source.connect_string(), p.target.connect_string());
    let by_name = format!("localhost:{},localhost:{}", dead_port(), dead_port());
    for (source, target) in [
        (&live_source, &refused),
        (&refused, &live_target),
        (&live_source, &by_name),
        (&by_name, &live_target),
    ] {
        let began = Instant::now();
        let r = run(&[
            "sync",
            "--source",
            source,
            "--target",
            target,
            "--path",
            &root,
            "--apply",
            "--create-path",
        ])
        .await;
        let took = began.elapsed();
        eprintln!(
            "refused {source} -> {target}: exit {} after {took:?}",
            r.code
        );
        assert_eq!(r.code, 2, "{}", ctx(&r));
        assert!(took < Duration::from_secs(2), "took {took:?}: {}", ctx(&r));
        let compare = compare_connects(source, target, &["--path", &root]).await;
        assert_eq!(compare.code, 2, "{}", ctx(&compare));
        let last = |s: &str| s.trim_end().lines().last().unwrap_or_default().to_string();
        assert_eq!(last(&r.stderr), last(&compare.stderr), "{}", ctx(&r));
    }
}

#[tokio::test]
async fn at_cutover_sync_leaves_the_sources_ephemerals_for_check_ephemerals() {
    let (source, target) = (own_server().await, own_server().await);
    let s = client(&source).await;
    let root = "/kafka";
    tree(
        &s,
        root,
        &[("brokers", b""), ("brokers/ids", b""), ("config", b"1")],
    )
    .await;
    // The applications: a session of their own holding their registrations.
    let app = client(&source).await;
    for id in ["1", "2"] {
        app.create(&format!("{root}/brokers/ids/{id}"), b"broker", &ephemeral())
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let expect = dir.path().join("expect.zkps");
    let (src, dst) = (source.connect_string(), target.connect_string());
    let mut sync = Sync::start(
        &src,
        &dst,
        root,
        &[
            "--create-path",
            "--until-quiet",
            "3s",
            "--verify-every",
            "1s",
            "--expect-out",
            expect.to_str().unwrap(),
        ],
    );
    sync.wait_for("copied", Duration::from_secs(30));
    s.set_data(&format!("{root}/config"), b"2", None)
        .await
        .unwrap();
    sync.wait_for("followed", Duration::from_secs(20));
    // The writers stop: their registrations go with their session, and
    // the full passes after it see none.
    drop(app);
    let deadline = Instant::now() + Duration::from_secs(20);
    while s
        .check_stat(&format!("{root}/brokers/ids/1"))
        .await
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the ephemerals went");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _, events) =
        tokio::task::spawn_blocking(move || sync.finish(Duration::from_secs(60)))
            .await
            .unwrap();
    assert_eq!(code, 0, "{events:?}");
    let verified = events.iter().find(|e| e["event"] == "verified").unwrap();
    assert_eq!(
        verified["expect_file"],
        expect.to_str().unwrap(),
        "{verified}"
    );
    assert_eq!(verified["expect_ephemerals"], 2, "{verified}");

    let check = |extra: &'static [&'static str]| {
        let (expect, dst) = (expect.to_str().unwrap().to_string(), dst.clone());
        async move {
            let mut args = vec![
                "check",
                "ephemerals",
                "--expect",
                &expect,
                "--target",
                &dst,
                "--path",
                root,
            ];
            args.extend_from_slice(extra);
            run(&args).await
        }
    };
    // None registered on the target yet: both are named as missing.
    let missing = check(&[]).await;
    assert_eq!(
        missing.code,
        1,
        "WARNING within the grace: {}",
        ctx(&missing)
    );
    assert!(
        missing.stdout.contains("/brokers/ids/1"),
        "{}",
        ctx(&missing)
    );
    assert!(
        missing.stdout.contains("/brokers/ids/2"),
        "{}",
        ctx(&missing)
    );
    // The applications come back on the target.
    let t = client(&target).await;
    for id in ["1", "2"] {
        t.create(&format!("{root}/brokers/ids/{id}"), b"broker", &ephemeral())
            .await
            .unwrap();
    }
    let back = check(&[]).await;
    assert_eq!(back.code, 0, "{}", ctx(&back));
}
