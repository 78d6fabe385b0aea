//! `zkparity agent`: configuration checks, then (against real servers) the
//! rounds, the confirmation window, the state file, passive results and
//! signals, with the agent binary run as a child process.

mod common;
mod gmetric_support;

use std::path::{Path, PathBuf};

use common::zkparity;

/// A config file in its own temporary directory, which is also the state
/// directory.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    /// Writes `body` after a `state_dir` line pointing here.
    fn write_config(&self, body: &str) -> PathBuf {
        let text = format!("state_dir = {:?}\n{body}", self.state_dir());
        std::fs::write(self.config_path(), text).expect("write config");
        self.config_path()
    }
}

#[test]
fn check_config_accepts_a_valid_config_and_exits_0() {
    let s = Setup::new();
    let config = s.write_config(
        "[[pair]]\nname = \"kafka\"\nsource = \"old:2181\"\ntarget = \"new:2181\"\n\
         [[pair]]\nname = \"ch\"\nsource = \"old:2181\"\ntarget = \"new:2181\"\npath = \"/ch\"\n",
    );
    let run = zkparity(&[
        "agent",
        "--config",
        config.to_str().unwrap(),
        "--check-config",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("2 pairs: kafka, ch"), "{}", run.stdout);
}

#[test]
fn check_config_names_the_line_and_key_of_a_mistake_and_exits_2() {
    let s = Setup::new();
    let config = s.write_config(
        "[[pair]]\nname = \"kafka\"\nsource = \"old:2181\"\ntarget = \"new:2181\"\n\
         interval = \"every minute\"\n",
    );
    let run = zkparity(&[
        "agent",
        "--config",
        config.to_str().unwrap(),
        "--check-config",
    ]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("line 6, key pair[0].interval:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("every minute"), "{}", run.stderr);
}

#[test]
fn the_agent_refuses_a_bad_config_before_writing_anything() {
    let s = Setup::new();
    let config = s.write_config(
        "[[pair]]\nname = \"kafka\"\nsource = \"old:2181\"\ntarget = \"new:2181\"\ncolour = 1\n",
    );
    let run = zkparity(&["agent", "--config", config.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("key pair[0].colour"), "{}", run.stderr);
    assert!(!s.state_dir().join("kafka.json").exists());
}

#[test]
fn a_missing_config_file_is_named_and_exits_2() {
    let run = zkparity(&[
        "agent",
        "--config",
        "/nonexistent/agent.toml",
        "--check-config",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("/nonexistent/agent.toml"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_config_takes_each_sides_read_placement_and_names_a_bad_one() {
    let s = Setup::new();
    let pair = "[[pair]]\nname = \"kafka\"\nsource = \"old:2181\"\ntarget = \"new:2181\"\n";
    let check = |body: &str| {
        let config = s.write_config(&format!("{pair}{body}"));
        zkparity(&[
            "agent",
            "--config",
            config.to_str().unwrap(),
            "--check-config",
        ])
    };
    let run = check("source_read_from = \"followers\"\ntarget_read_from = \"leader\"\n");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let run = check("target_read_from = \"zk1:0\"\n");
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("line 6, key pair[0].target_read_from:"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------
// The agent against real servers.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{both, client, create, pair, pair_clients, unique_path};
use zkparity::agent::state::{read_state, state_path, PairState, PairStatus as Status};
use zkparity_sandbox::Guarded;

/// Liveness bound for anything the tests wait on; generous, so a slow
/// machine does not fail them (it is not a speed assertion).
const PATIENCE: Duration = Duration::from_secs(90);

/// A `[[pair]]` table with short test timings; keys in `extra` replace them.
fn pair_table(name: &str, source: &str, target: &str, path: &str, extra: &str) -> String {
    let defaults = [
        ("interval", "\"1s\""),
        ("jitter", "\"100ms\""),
        ("recheck_delay", "\"200ms\""),
        ("connect_timeout", "\"3s\""),
        ("session_timeout", "\"4s\""),
    ];
    let mut table = format!(
        "[[pair]]\nname = {name:?}\nsource = {source:?}\ntarget = {target:?}\npath = {path:?}\n"
    );
    for (key, value) in defaults {
        if !extra
            .lines()
            .any(|l| l.split('=').next().map(str::trim) == Some(key))
        {
            table.push_str(&format!("{key} = {value}\n"));
        }
    }
    table + extra
}

fn shared_pair_table(name: &str, path: &str, extra: &str) -> String {
    let p = pair();
    pair_table(
        name,
        &p.source.connect_string(),
        &p.target.connect_string(),
        path,
        extra,
    )
}

/// The agent as a child process; killed if the test ends without stopping
/// it, or by the watchdog if the test binary dies first.
struct Agent {
    child: Guarded,
    log: PathBuf,
    state_dir: PathBuf,
}

impl Agent {
    fn start(setup: &Setup) -> Agent {
        let log = setup.state_dir().join("agent.log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Guarded::spawn(
            common::agent_command(&setup.config_path())
                .env_remove("ZKPARITY_LOG")
                .stderr(stderr),
        )
        .expect("start the agent");
        Agent {
            child,
            log,
            state_dir: setup.state_dir().to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        let sent = self.child.signal(sig);
        assert!(sent.is_ok(), "kill({sig}): {sent:?}");
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit; its exit code.
    async fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn state(&self, pair: &str) -> Option<PairState> {
        read_state(&state_path(&self.state_dir, pair)).ok()
    }

    /// Polls the pair's state file until `pred` holds.
    async fn wait_for(
        &mut self,
        pair: &str,
        what: &str,
        pred: impl Fn(&PairState) -> bool,
    ) -> PairState {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(s) = self.state(pair) {
                if pred(&s) {
                    return s;
                }
            }
            assert!(
                self.running(),
                "agent exited while waiting for {what}:\n{}",
                self.log()
            );
            if Instant::now() > deadline {
                panic!(
                    "waited too long for {what}; last state: {:#?}\nlog:\n{}",
                    self.state(pair),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn has(list: &[zkparity::agent::state::Tracked], path: &str, kind: &str) -> bool {
    list.iter().any(|t| t.path == path && t.kind == kind)
}

/// A FIFO like Nagios's command file, and what a reader took from it.
struct CommandPipe {
    path: PathBuf,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl CommandPipe {
    fn make(dir: &Path) -> PathBuf {
        let path = dir.join("nagios.cmd");
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        path
    }

    /// A FIFO with a reader thread, as a running Nagios holds it.
    fn with_reader(dir: &Path) -> CommandPipe {
        let path = CommandPipe::make(dir);
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let p = path.clone();
        std::thread::spawn(move || loop {
            // Reopened after each writer closes, as Nagios does.
            let Ok(f) = std::fs::File::open(&p) else {
                return;
            };
            for line in BufReader::new(f).lines() {
                match line {
                    Ok(l) => sink.lock().unwrap().push(l),
                    Err(_) => return,
                }
            }
        });
        CommandPipe { path, lines }
    }

    fn last_for(&self, service: &str) -> Option<String> {
        let needle = format!(";{service};");
        self.lines
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|l| l.contains(&needle))
            .cloned()
    }
}

fn nagios_table(command_file: &Path) -> String {
    format!("[nagios]\ncommand_file = {command_file:?}\nhost_name = \"zk-migration\"\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_divergence_is_confirmed_within_the_window_and_healing_clears_it() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("agent-drift");
    let nodes: &[(&str, &[u8])] = &[("a", b"1"), ("b", b"2"), ("b/c", b"3")];
    both(&s, &t, &root, nodes).await;

    let setup = Setup::new();
    let pipe = CommandPipe::with_reader(setup.state_dir());
    let gmond = gmetric_support::Gmond::start(gmetric_support::Mode::Mute);
    let ganglia = format!(
        "[[ganglia]]\nhost = \"127.0.0.1\"\nport = {}\n",
        gmond.udp_port
    );
    setup.write_config(
        &(nagios_table(&pipe.path) + &ganglia + &shared_pair_table("drift", &root, "")),
    );
    let mut agent = Agent::start(&setup);
    agent
        .wait_for("drift", "a clean round", |s| s.status == Status::Ok)
        .await;

    let node = format!("{root}/b/c");
    t.set_data(&node, b"diverged", None).await.unwrap();
    // First seen: tracked, not yet drift. Confirmation takes a second round
    // a second later, and states are polled every 50 ms: this one is seen.
    let first = agent
        .wait_for("drift", "the divergence seen, not yet confirmed", |s| {
            has(&s.unconfirmed, &node, "data")
        })
        .await;
    assert!(!has(&first.confirmed, &node, "data"), "{first:#?}");
    assert_eq!(first.status, Status::Ok, "unconfirmed is not drift");
    assert!(first.lag_seconds >= 0.0);
    let confirmed = agent
        .wait_for("drift", "the divergence confirmed", |s| {
            s.status == Status::Drift
        })
        .await;
    let entry = confirmed
        .confirmed
        .iter()
        .find(|e| e.path == node && e.kind == "data")
        .unwrap_or_else(|| panic!("{confirmed:#?}"));
    assert!(
        entry.rounds >= 2,
        "confirmed only after two rounds: {entry:?}"
    );
    assert_eq!(confirmed.confirmed_total, 1, "{confirmed:#?}");
    assert_eq!(confirmed.confirmed_by_kind["data"], 1);
    assert_eq!(confirmed.unconfirmed_total, 0);
    // Nagios heard of it, with the check's status line.
    let deadline = Instant::now() + PATIENCE;
    let line = loop {
        match pipe.last_for("zkparity drift") {
            Some(l) if l.contains(";2;ZKPARITY PARITY CRITICAL - 1 confirmed difference") => {
                break l
            }
            _ if Instant::now() > deadline => panic!(
                "no CRITICAL passive result: {:?}\n{}",
                pipe.lines.lock().unwrap(),
                agent.log()
            ),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(
        line.starts_with('[')
            && line.contains("] PROCESS_SERVICE_CHECK_RESULT;zk-migration;zkparity drift;2;"),
        "{line}"
    );
    assert!(line.contains(&format!("\\ndata {node}")), "{line}");
    assert!(agent.log().contains("drift confirmed"), "{}", agent.log());
    // And gmond shows it under the pair's host.
    wait_gmond(&gmond, "drift confirmed in gmond", |x| {
        metric_val(x, "zkparity-drift", "zkparity_drift_confirmed") == Some("1")
            && metric_val(x, "zkparity-drift", "zkparity_pair_status") == Some("1")
            && metric_val(x, "zkparity-drift", "zkparity_diff_data") == Some("1")
    })
    .await;

    t.set_data(&node, b"3", None).await.unwrap();
    let healed = agent
        .wait_for("drift", "the drift healed", |s| s.status == Status::Ok)
        .await;
    assert_eq!(healed.confirmed_total, 0);
    assert!(healed.confirmed.is_empty());
    let deadline = Instant::now() + PATIENCE;
    while !pipe
        .last_for("zkparity drift")
        .is_some_and(|l| l.contains(";0;ZKPARITY PARITY OK - source and target match"))
    {
        assert!(
            Instant::now() < deadline,
            "no OK passive result after healing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(agent.log().contains("drift healed"), "{}", agent.log());
    wait_gmond(&gmond, "drift cleared in gmond", |x| {
        metric_val(x, "zkparity-drift", "zkparity_drift_confirmed") == Some("0")
            && metric_val(x, "zkparity-drift", "zkparity_pair_status") == Some("0")
    })
    .await;
}

fn metric_val<'a>(x: &'a gmetric_support::Ganglia, host: &str, name: &str) -> Option<&'a str> {
    x.metric(host, name).map(|m| m.val.as_str())
}

/// Polls gmond's XML until `pred` holds.
async fn wait_gmond(
    gmond: &gmetric_support::Gmond,
    what: &str,
    pred: impl Fn(&gmetric_support::Ganglia) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let x = gmetric_support::parse(&gmond.xml());
        if pred(&x) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gmond never showed {what}: {x:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sync tool at work: every write done to the source, then the same to
/// the target, until stopped. Write `i` updates `{updated}{i % updates}` and
/// deletes and recreates `{temporary}{i % temporaries}`.
struct MirroredWrites {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl MirroredWrites {
    fn start(
        s: &zookeeper_client::Client,
        t: &zookeeper_client::Client,
        updated: String,
        updates: u64,
        temporary: String,
        temporaries: u64,
        pause: Duration,
    ) -> MirroredWrites {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let (s, t, stopped, count) = (s.clone(), t.clone(), stop.clone(), writes.clone());
        let task = tokio::spawn(async move {
            let mut i = 0u64;
            while !stopped.load(Ordering::Relaxed) {
                let data = i.to_string().into_bytes();
                let node = format!("{updated}{}", i % updates);
                for c in [&s, &t] {
                    c.set_data(&node, &data, None).await.unwrap();
                }
                // Creates and deletes as well as updates.
                let extra = format!("{temporary}{}", i % temporaries);
                for c in [&s, &t] {
                    match c.delete(&extra, None).await {
                        Ok(()) | Err(zookeeper_client::Error::NoNode) => {
                            c.create(&extra, &data, &common::open())
                                .await
                                .map(|_| ())
                                .unwrap();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                i += 1;
                count.fetch_add(1, Ordering::Relaxed);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        });
        MirroredWrites { stop, writes, task }
    }

    /// Stops the writer; how many mirrored writes it made.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the writer");
        self.writes.load(Ordering::Relaxed)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mirrored_writes_on_both_ensembles_produce_no_confirmed_drift() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("agent-mirror");
    both(&s, &t, &root, &[]).await;
    for i in 0..20 {
        let path = format!("{root}/n{i}");
        create(&s, &path, b"0").await;
        create(&t, &path, b"0").await;
    }

    let setup = Setup::new();
    setup.write_config(&shared_pair_table("mirror", &root, ""));
    let mut agent = Agent::start(&setup);
    let start = agent
        .wait_for("mirror", "a clean round", |s| s.status == Status::Ok)
        .await;

    // A sync tool's work: every write done to the source, then to the target.
    let writer = MirroredWrites::start(
        &s,
        &t,
        format!("{root}/n"),
        20,
        format!("{root}/tmp"),
        5,
        Duration::ZERO,
    );
    // Several rounds under load, checking every state the agent writes.
    let target_round = start.round + 8;
    let deadline = Instant::now() + PATIENCE;
    let mut states_seen = 0;
    loop {
        // Written once already (`start`), and always replaced whole.
        let st = agent
            .state("mirror")
            .expect("the state file stays readable once written");
        assert_eq!(
            st.confirmed_total, 0,
            "mirrored writes confirmed as drift: {st:#?}"
        );
        assert_ne!(st.status, Status::Unknown, "{st:#?}");
        states_seen += 1;
        if st.round >= target_round {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rounds did not advance:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let writes = writer.stop().await;
    assert!(writes > 50, "the writer kept writing");
    assert!(states_seen > 0);
    let after = agent
        .wait_for("mirror", "a quiet round", |s| {
            s.round > target_round + 1 && s.unconfirmed_total == 0
        })
        .await;
    assert_eq!(after.status, Status::Ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_killed_mid_round_past_its_session_timeout_is_unknown_then_ok_again() {
    // Its own target server: it is killed and brought back.
    let target = common::own_server().await;
    let p = pair();
    let s = client(&p.source).await;
    let t = common::connect(&target.connect_string()).await;
    let root = unique_path("agent-restart");
    let nodes: Vec<(String, Vec<u8>)> = (0..300).map(|i| (format!("n{i}"), vec![b'x'])).collect();
    let nodes: Vec<(&str, &[u8])> = nodes
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    both(&s, &t, &root, &nodes).await;
    drop(t);

    let setup = Setup::new();
    // A read cap makes a round last about two seconds, so the kill lands
    // in the middle of one.
    setup.write_config(&pair_table(
        "restart",
        &p.source.connect_string(),
        &target.connect_string(),
        &root,
        "max_reads_per_second = 400\n",
    ));
    let mut agent = Agent::start(&setup);
    let ok = agent
        .wait_for("restart", "a clean round", |s| s.status == Status::Ok)
        .await;
    // Into the next round, then kill the target for longer than the
    // session timeout (4s), so its sessions are gone when it is back.
    agent
        .wait_for("restart", "the next round", |s| s.round > ok.round)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut target = tokio::task::spawn_blocking(move || {
        let mut target = target;
        target.kill();
        target
    })
    .await
    .unwrap();
    let unknown = agent
        .wait_for("restart", "the pair UNKNOWN", |s| {
            s.status == Status::Unknown
        })
        .await;
    let reason = unknown.reason.clone().unwrap_or_default();
    assert!(reason.contains("target"), "{reason}");
    assert_eq!(
        unknown.last_success,
        ok.last_success.max(unknown.last_success)
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    target = tokio::task::spawn_blocking(move || {
        target.restart().expect("restart the target");
        target
    })
    .await
    .unwrap();
    let back = agent
        .wait_for("restart", "the pair OK again", |s| {
            s.status == Status::Ok && s.round > unknown.round
        })
        .await;
    assert_eq!(back.confirmed_total, 0);
    assert!(back.last_success > unknown.last_success);
    assert!(
        agent.log().contains("pair readable again"),
        "{}",
        agent.log()
    );
    drop(target);
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_hammering_the_state_file_never_see_a_partial_file() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("agent-hammer");
    both(&s, &t, &root, &[("a", b"1")]).await;
    // A difference, so the file carries lists and changes every round.
    create(&s, &format!("{root}/only-in-source"), b"x").await;

    let setup = Setup::new();
    setup.write_config(&shared_pair_table(
        "hammer",
        &root,
        "interval = \"100ms\"\njitter = \"0s\"\nrecheck_delay = \"off\"\n",
    ));
    let mut agent = Agent::start(&setup);
    let first = agent
        .wait_for("hammer", "a first round", |s| s.round >= 1)
        .await;

    let path = state_path(setup.state_dir(), "hammer");
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let bytes = std::fs::read(&path).expect("the state file is always there");
                    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                        panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&bytes));
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let last = agent
        .wait_for("hammer", "many rounds under readers", |s| {
            s.round >= first.round + 20
        })
        .await;
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    assert!(reads > 100, "readers read: {reads}");
    assert!(last.round >= first.round + 20);
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.exit_code().await, 0);
    // No temporary file is left lying around.
    let stray: Vec<_> = std::fs::read_dir(setup.state_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// Every round of a healthy pair walks (the same-ensemble check would run
/// at each walk if nothing kept its answer); the journal is the agent's
/// stderr, at debug so that each time the check runs is seen.
#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_pair_logs_no_warning_over_100_rounds_and_asks_once_if_it_is_one_ensemble() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("agent-quiet");
    both(&s, &t, &root, &[("a", b"1"), ("a/b", b"2")]).await;

    let setup = Setup::new();
    setup.write_config(
        &("log_level = \"debug\"\n".to_string()
            + &shared_pair_table(
                "quiet",
                &root,
                "interval = \"100ms\"\njitter = \"0s\"\nrecheck_delay = \"off\"\n\
                 full_walk_every = 1\n",
            )),
    );
    let started = Instant::now();
    let mut agent = Agent::start(&setup);
    let last = agent
        .wait_for("quiet", "100 rounds", |s| s.round >= 100)
        .await;
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.exit_code().await, 0);
    eprintln!("100 rounds in {:?}", started.elapsed());

    let log = agent.log();
    assert_eq!(last.status, Status::Ok, "{log}");
    let walks = log
        .lines()
        .filter(|l| l.contains("round finished") && l.contains("full_walk"))
        .count();
    assert!(walks >= 100, "{walks} full walks:\n{log}");
    let faults: Vec<&str> = log
        .lines()
        .filter(|l| {
            // The level is the first word, or the second after a timestamp.
            l.split_whitespace()
                .take(2)
                .any(|w| w == "WARN" || w == "ERROR")
        })
        .collect();
    assert!(faults.is_empty(), "{faults:#?}");
    let asked = log
        .lines()
        .filter(|l| l.contains("asking whether source and target are one ensemble"))
        .count();
    assert_eq!(asked, 1, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_with_a_broken_config_keeps_the_running_one() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("agent-hup");
    both(&s, &t, &root, &[("a", b"1")]).await;

    let setup = Setup::new();
    setup.write_config(&shared_pair_table("first", &root, ""));
    let mut agent = Agent::start(&setup);
    let before = agent
        .wait_for("first", "a round", |s| s.status == Status::Ok)
        .await;

    // A typo'd key: refused, and the running pair carries on.
    setup.write_config(&shared_pair_table("first", &root, "intervall = \"5s\"\n"));
    agent.signal(libc::SIGHUP);
    let deadline = Instant::now() + PATIENCE;
    while !agent.log().contains("new configuration refused") {
        assert!(
            Instant::now() < deadline,
            "no refusal logged:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        agent.log().contains("key pair[0].intervall"),
        "{}",
        agent.log()
    );
    agent
        .wait_for("first", "rounds going on", |s| s.round >= before.round + 3)
        .await;
    assert!(agent.running());

    // A good one takes effect: the old pair goes, the new one comes.
    setup.write_config(&shared_pair_table("second", &root, ""));
    agent.signal(libc::SIGHUP);
    agent
        .wait_for("second", "the new pair's round", |s| s.status == Status::Ok)
        .await;
    let stopped = agent.state("first").expect("first's state stays").round;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        agent.state("first").unwrap().round,
        stopped,
        "removed pair stopped"
    );
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sigint_exit_0_mid_round_leaving_a_whole_state_file() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("agent-term");
    let nodes: Vec<(String, Vec<u8>)> = (0..200).map(|i| (format!("n{i}"), vec![b'x'])).collect();
    let nodes: Vec<(&str, &[u8])> = nodes
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    both(&s, &t, &root, &nodes).await;

    for sig in [libc::SIGTERM, libc::SIGINT] {
        let setup = Setup::new();
        // Slow rounds (a read cap), so the signal arrives during one.
        setup.write_config(&shared_pair_table(
            "term",
            &root,
            "max_reads_per_second = 300\n",
        ));
        let mut agent = Agent::start(&setup);
        let st = agent.wait_for("term", "a round", |s| s.round >= 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        agent.signal(sig);
        assert_eq!(agent.exit_code().await, 0, "{}", agent.log());
        let last = agent.state("term").expect("a whole state file");
        assert!(last.round >= st.round);
        assert!(agent.log().contains("agent stopped"), "{}", agent.log());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_ensemble_is_unknown_and_a_stopped_nagios_never_blocks_the_agent() {
    let p = pair();
    let setup = Setup::new();
    // A FIFO nobody reads: Nagios is stopped.
    let fifo = CommandPipe::make(setup.state_dir());
    setup.write_config(
        &(nagios_table(&fifo)
            + &pair_table("down", &p.source.connect_string(), "127.0.0.1:1", "/", "")),
    );
    let mut agent = Agent::start(&setup);
    let st = agent
        .wait_for("down", "the pair UNKNOWN", |s| s.status == Status::Unknown)
        .await;
    let reason = st.reason.clone().unwrap_or_default();
    assert!(reason.contains("target ensemble 127.0.0.1:1"), "{reason}");
    assert!(st.last_success.is_none());
    // Rounds go on although the command file has no reader.
    agent
        .wait_for("down", "more rounds", |s| s.round >= st.round + 3)
        .await;
    assert!(
        agent.log().contains("passive result skipped"),
        "{}",
        agent.log()
    );
    assert_eq!(
        agent.log().matches("passive result skipped").count(),
        1,
        "warned once per outage:\n{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_run_on_their_own_interval_and_write_the_probe_file() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("agent-probe");
    both(&s, &t, &root, &[("a", b"1")]).await;

    let setup = Setup::new();
    let pipe = CommandPipe::with_reader(setup.state_dir());
    // One round an hour, probes every second.
    setup.write_config(
        &("probe_interval = \"1s\"\n".to_string()
            + &nagios_table(&pipe.path)
            + &shared_pair_table("probed", &root, "interval = \"1h\"\njitter = \"0s\"\n")),
    );
    let mut agent = Agent::start(&setup);
    agent
        .wait_for("probed", "the first round", |s| s.round == 1)
        .await;
    let file = setup.state_dir().join("probed.probe.json");
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < 3 {
        if let Ok(bytes) = std::fs::read(&file) {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("probe file not JSON ({e})"));
            assert_eq!(
                v["source"]["servers"].as_array().map(Vec::len),
                Some(1),
                "{v:#}"
            );
            assert!(v["target"].is_object() && v["parity"].is_object(), "{v:#}");
            seen.insert(v["probed_at"].as_str().unwrap_or_default().to_string());
        }
        assert!(
            Instant::now() < deadline,
            "probes stalled:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        agent.state("probed").map(|s| s.round),
        Some(1),
        "rounds keep their own interval"
    );
    assert!(agent.log().contains("four-letter words"), "{}", agent.log());
    // Each probe's verdict also reaches Nagios, as `check health` judges it.
    let line = pipe
        .last_for("zkparity probed health")
        .unwrap_or_else(|| panic!("no passive health result:\n{}", agent.log()));
    assert!(
        line.contains("] PROCESS_SERVICE_CHECK_RESULT;zk-migration;zkparity probed health;0;ZKPARITY HEALTH OK - "),
        "{line}"
    );
    assert!(line.contains("source_servers_serving=1"), "{line}");
}

/// The unit with ExecStart pointing at the binary under test.
fn unit_under_test(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/zkparity-agent.service"
    ))
    .expect("packaging/zkparity-agent.service");
    let unit = dir.join("zkparity-agent.service");
    std::fs::write(
        &unit,
        text.replace("/usr/bin/zkparity", env!("CARGO_BIN_EXE_zkparity")),
    )
    .expect("write unit");
    unit
}

#[test]
fn the_systemd_unit_verifies_and_is_sandboxed_as_its_own_user() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_under_test(dir.path());
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "User=zkparity",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/zkparity",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}");
    }
    let run = |args: &[&str]| {
        Command::new("systemd-analyze")
            .args(args)
            .arg(&unit)
            .output()
            .expect("systemd-analyze (Debian's systemd package) runs")
    };
    let verify = run(&["verify"]);
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // systemd's own exposure score, 0 (locked down) to 10: keep it "OK".
    let security = run(&["security", "--offline=yes", "--threshold=20"]);
    assert!(
        security.status.success(),
        "{}",
        String::from_utf8_lossy(&security.stdout)
    );
}

/// How long the soak runs: `ZKPARITY_SOAK_SECS` (e.g. 300 for the release
/// soak), 20 s in the normal suite.
fn soak_duration() -> Duration {
    let secs = std::env::var("ZKPARITY_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(20);
    Duration::from_secs(secs.max(10))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soak_with_mirrored_writes_in_flight_reports_exactly_the_injected_drift() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("agent-soak");
    let mut nodes: Vec<(String, Vec<u8>)> =
        vec![("fixed".into(), vec![]), ("churn".into(), vec![])];
    for i in 0..100 {
        nodes.push((format!("fixed/f{i}"), b"v".to_vec()));
    }
    for i in 0..50 {
        nodes.push((format!("churn/c{i}"), b"0".to_vec()));
    }
    let nodes: Vec<(&str, &[u8])> = nodes
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    both(&s, &t, &root, &nodes).await;

    let setup = Setup::new();
    setup.write_config(&shared_pair_table(
        "soak",
        &root,
        "confirm_after = \"2s\"\n",
    ));
    let mut agent = Agent::start(&setup);
    agent
        .wait_for("soak", "a clean round", |s| s.status == Status::Ok)
        .await;

    // The sync tool: each write to the source, then the same to the target.
    let writer = MirroredWrites::start(
        &s,
        &t,
        format!("{root}/churn/c"),
        50,
        format!("{root}/churn/tmp"),
        7,
        Duration::from_millis(10),
    );

    // What is injected, and when (fractions of the soak).
    let changed = format!("{root}/fixed/f10");
    let extra = format!("{root}/fixed/extra");
    let missing = format!("{root}/fixed/f20");
    let injected = [
        (changed.clone(), "data"),
        (extra.clone(), "extra_in_target"),
        (missing.clone(), "missing_in_target"),
    ];
    let soak = soak_duration();
    let started = Instant::now();
    let mut step = 0;
    let mut ever_confirmed = std::collections::BTreeSet::new();
    let mut rounds_checked = std::collections::BTreeSet::new();
    while started.elapsed() < soak {
        let f = started.elapsed().as_secs_f64() / soak.as_secs_f64();
        if step == 0 && f >= 0.2 {
            t.set_data(&changed, b"diverged", None).await.unwrap();
            step = 1;
        } else if step == 1 && f >= 0.3 {
            create(&t, &extra, b"only on the target").await;
            step = 2;
        } else if step == 2 && f >= 0.5 {
            t.delete(&missing, None).await.unwrap();
            step = 3;
        } else if step == 3 && f >= 0.7 {
            // The extra node is cleaned up: that drift heals.
            t.delete(&extra, None).await.unwrap();
            step = 4;
        }
        // Written once already (the clean round), and always replaced whole.
        let st = agent
            .state("soak")
            .expect("the state file stays readable once written");
        assert_ne!(st.status, Status::Unknown, "{st:#?}");
        for e in &st.confirmed {
            assert!(
                injected.iter().any(|(p, k)| *p == e.path && *k == e.kind),
                "confirmed drift that was never injected: {e:?}\n{st:#?}"
            );
            ever_confirmed.insert((e.path.clone(), e.kind.clone()));
        }
        rounds_checked.insert(st.round);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let writes = writer.stop().await;

    let end = agent
        .wait_for("soak", "exactly the lasting injected drift", |s| {
            let got: Vec<(&str, &str)> = s
                .confirmed
                .iter()
                .map(|e| (e.path.as_str(), e.kind.as_str()))
                .collect();
            got.len() == 2
                && got.contains(&(changed.as_str(), "data"))
                && got.contains(&(missing.as_str(), "missing_in_target"))
        })
        .await;
    assert_eq!(end.status, Status::Drift);
    assert_eq!(end.confirmed_total, 2);
    assert!(
        ever_confirmed.contains(&(extra.clone(), "extra_in_target".to_string())),
        "the temporary extra node was confirmed while it lasted: {ever_confirmed:?}"
    );
    assert!(writes > 100, "writes were in flight");
    eprintln!(
        "soak: {:.0}s, {} rounds observed, {} mirrored write pairs, drift ever confirmed: {ever_confirmed:?}",
        soak.as_secs_f64(),
        rounds_checked.len(),
        writes
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn probed_servers_show_in_gmond_each_as_its_own_host() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("agent-servers");
    both(&s, &t, &root, &[("a", b"1")]).await;

    let setup = Setup::new();
    let gmond = gmetric_support::Gmond::start(gmetric_support::Mode::Mute);
    setup.write_config(
        &(format!(
            "probe_interval = \"1s\"\n[[ganglia]]\nhost = \"127.0.0.1\"\nport = {}\n",
            gmond.udp_port
        ) + &shared_pair_table("servers", &root, "interval = \"1h\"\njitter = \"0s\"\n")),
    );
    let _agent = Agent::start(&setup);
    let host = |server: &zkparity_sandbox::ZkServer| format!("127.0.0.1_{}", server.port());
    let (source, target) = (host(&p.source), host(&p.target));
    wait_gmond(&gmond, "both servers' znode counts", |x| {
        [&source, &target].iter().all(|h| {
            x.metric(h, "zk_znode_count")
                .is_some_and(|m| m.val.parse::<u64>().is_ok_and(|n| n >= 5))
        })
    })
    .await;
    let x = gmetric_support::parse(&gmond.xml());
    let mode = x
        .metric(&source, "zk_server_state")
        .expect("zk_server_state");
    assert_eq!(mode.val, "standalone");
    assert!(x.metric(&source, "zk_avg_latency").is_some());
}

// ---------------------------------------------------------------------------
// Persistent watches: early re-checks and rounds that need not walk.

use zkparity::agent::state::RoundKind;

/// Timings for the watch tests: one round a minute, so anything seen before
/// the second round was seen by an early re-check.
const SLOW_ROUNDS: &str = "interval = \"60s\"\njitter = \"0s\"\nwatch_settle = \"300ms\"\n";

fn watch_of(s: &PairState, side: &str) -> String {
    s.checks
        .watch
        .as_ref()
        .map(|w| match side {
            "source" => w.source.clone(),
            _ => w.target.clone(),
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_divergence_is_seen_early_between_slow_rounds_and_so_is_its_heal() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("agent-early");
    both(&s, &t, &root, &[("a", b"1"), ("a/b", b"2"), ("c", b"3")]).await;

    let setup = Setup::new();
    setup.write_config(&shared_pair_table("early", &root, SLOW_ROUNDS));
    let mut agent = Agent::start(&setup);
    let first = agent
        .wait_for("early", "the first round", |s| {
            s.round == 1 && watch_of(s, "target") == "live" && watch_of(s, "source") == "live"
        })
        .await;
    assert_eq!(first.checks.round_kind, Some(RoundKind::FullWalk));
    assert_eq!(
        first.checks.full_walk_reason.as_deref(),
        Some("first round")
    );

    let node = format!("{root}/a/b");
    t.set_data(&node, b"diverged", None).await.unwrap();
    let seen = agent
        .wait_for("early", "the divergence seen early", |s| {
            has(&s.unconfirmed, &node, "data")
        })
        .await;
    assert_eq!(seen.round, 1, "seen before the second round: {seen:#?}");
    assert!(seen.checks.early_rechecks >= 1, "{seen:#?}");
    assert!(seen.checks.last_early_recheck.is_some());
    let entry = seen.unconfirmed.iter().find(|e| e.path == node).unwrap();
    assert_eq!(
        entry.rounds, 0,
        "an early sighting is not a round: {entry:?}"
    );
    assert_eq!(seen.status, Status::Ok, "unconfirmed is not drift");
    // A created node on one side is seen early too, as one extra subtree.
    let extra = format!("{root}/c/only-target");
    create(&t, &extra, b"x").await;
    create(&t, &format!("{extra}/below"), b"y").await;
    let st = agent
        .wait_for("early", "the extra node seen early", |s| {
            has(&s.unconfirmed, &extra, "extra_in_target")
        })
        .await;
    assert_eq!(st.round, 1);
    assert!(
        !st.unconfirmed
            .iter()
            .any(|e| e.path.starts_with(&format!("{extra}/"))),
        "reported once, at its root: {st:#?}"
    );

    // The sync tool catches up: both heal early.
    t.set_data(&node, b"2", None).await.unwrap();
    t.delete(&format!("{extra}/below"), None).await.unwrap();
    t.delete(&extra, None).await.unwrap();
    let healed = agent
        .wait_for("early", "the heal seen early", |s| s.unconfirmed_total == 0)
        .await;
    assert_eq!(
        healed.round, 1,
        "healed before the second round: {healed:#?}"
    );
    assert_eq!(healed.status, Status::Ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_pair_is_not_walked_again_yet_an_acl_change_is_caught_by_the_periodic_walk() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("agent-clean");
    both(&s, &t, &root, &[("a", b"1"), ("b", b"2")]).await;

    let setup = Setup::new();
    setup.write_config(&shared_pair_table(
        "clean",
        &root,
        "jitter = \"0s\"\nfull_walk_every = 4\n",
    ));
    let mut agent = Agent::start(&setup);
    // Rounds 2 to 4 read nothing; round 5 walks again.
    let mut kinds = std::collections::BTreeMap::new();
    let deadline = Instant::now() + PATIENCE;
    while kinds.len() < 6 {
        if let Some(st) = agent.state("clean") {
            if let Some(kind) = st.checks.round_kind {
                let reads = st.summary.as_ref().map(|s| s.reads.values().sum::<u64>());
                kinds.insert(st.round, (kind, reads, st.checks.full_walk_reason.clone()));
            }
        }
        assert!(
            Instant::now() < deadline,
            "rounds stalled:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(kinds[&1].0, RoundKind::FullWalk, "{kinds:?}");
    // Rounds are a second apart and states polled every 20 ms: each is seen.
    for r in [2, 3, 4] {
        let (kind, reads, _) = kinds
            .get(&r)
            .unwrap_or_else(|| panic!("round {r} never seen: {kinds:?}"));
        assert_eq!(*kind, RoundKind::WatchClean, "round {r}: {kinds:?}");
        assert_eq!(*reads, Some(0), "round {r} read nothing: {kinds:?}");
    }
    let (kind, _, reason) = &kinds[&5];
    assert_eq!(*kind, RoundKind::FullWalk, "{kinds:?}");
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("every 4 rounds")),
        "{kinds:?}"
    );
    assert!(
        agent.log().contains("kind=\"watch_clean\"") || agent.log().contains("kind=watch_clean"),
        "{}",
        agent.log()
    );

    // An ACL change fires no watch event: only a full walk can see it.
    let node = format!("{root}/b");
    let before = agent.state("clean").unwrap().round;
    t.set_acl(&node, &zookeeper_client::Acls::anyone_read(), None)
        .await
        .unwrap();
    let found = agent
        .wait_for("clean", "the ACL difference", |s| {
            has(&s.unconfirmed, &node, "acl") || has(&s.confirmed, &node, "acl")
        })
        .await;
    assert_eq!(
        found.checks.round_kind,
        Some(RoundKind::FullWalk),
        "found by a walk: {found:#?}"
    );
    assert_eq!(
        found.checks.early_rechecks, 0,
        "no event, no early re-check"
    );
    assert!(found.round > before);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_server_restart_the_tree_is_walked_again_and_changes_are_still_seen_early() {
    // Its own target server: it is restarted.
    let target = common::own_server().await;
    let p = pair();
    let s = client(&p.source).await;
    let root = unique_path("agent-rewatch");
    let nodes: &[(&str, &[u8])] = &[("a", b"1"), ("b", b"2")];
    {
        let t = common::connect(&target.connect_string()).await;
        both(&s, &t, &root, nodes).await;
    }

    let setup = Setup::new();
    // Sessions that outlive the restart: the watch session reconnects
    // rather than expiring, which is where the watch would be lost.
    setup.write_config(&pair_table(
        "rewatch",
        &p.source.connect_string(),
        &target.connect_string(),
        &root,
        &(SLOW_ROUNDS.to_string() + "session_timeout = \"20s\"\n"),
    ));
    let mut agent = Agent::start(&setup);
    let first = agent
        .wait_for("rewatch", "the first round, watches live", |s| {
            s.round == 1 && watch_of(s, "target") == "live" && watch_of(s, "source") == "live"
        })
        .await;
    let walked = first.checks.last_full_walk.expect("first walk");

    let mut target = tokio::task::spawn_blocking(move || {
        let mut target = target;
        target.restart().expect("restart the target");
        target
    })
    .await
    .unwrap();
    // The gap lost whatever happened in it: the whole tree is walked again.
    let again = agent
        .wait_for("rewatch", "a walk after the gap", |s| {
            s.checks.last_full_walk.is_some_and(|w| w > walked) && watch_of(s, "target") == "live"
        })
        .await;
    assert_eq!(again.round, 1, "walked early, not by the next round");
    assert!(
        !agent.log().contains("watch session lost"),
        "the session survived the restart:\n{}",
        agent.log()
    );

    // And the watch still fires: it was added again after the reconnect.
    let t = common::connect(&target.connect_string()).await;
    let node = format!("{root}/a");
    t.set_data(&node, b"diverged", None).await.unwrap();
    let seen = agent
        .wait_for("rewatch", "the divergence seen early", |s| {
            has(&s.unconfirmed, &node, "data")
        })
        .await;
    assert_eq!(seen.round, 1, "seen before the second round: {seen:#?}");
    drop(t);
    drop(agent);
    tokio::task::spawn_blocking(move || target.stop())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_pair_whose_source_is_a_data_directory_confirms_drift_from_its_files() {
    // The source is a server's files, read afresh each round; the target is
    // live. The source server keeps running and writing its logs.
    let source = common::own_server().await;
    let s = common::client(&source).await;
    let (p, _, t) = pair_clients().await;
    let root = unique_path("agent-files");
    let nodes: &[(&str, &[u8])] = &[("a", b"1"), ("b", b"2")];
    common::tree(&s, &root, nodes).await;
    common::tree(&t, &root, nodes).await;

    let setup = Setup::new();
    let dir = source.data_dir().to_string_lossy().into_owned();
    setup.write_config(
        &("probe_interval = \"1s\"\n".to_string()
            + &pair_table("files", &dir, &p.target.connect_string(), &root, "")),
    );
    let mut agent = Agent::start(&setup);
    let clean = agent
        .wait_for("files", "a clean round", |s| s.status == Status::Ok)
        .await;
    assert_eq!(clean.source, dir);
    assert!(
        !setup.state_dir().join("files.probe.json").exists(),
        "files have no servers to probe"
    );

    let node = format!("{root}/b");
    s.set_data(&node, b"changed at the source", None)
        .await
        .unwrap();
    let drift = agent
        .wait_for("files", "the change in the source's log confirmed", |s| {
            s.status == Status::Drift
        })
        .await;
    assert!(has(&drift.confirmed, &node, "data"), "{drift:#?}");
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.log());
}

/// Polls the agent's `/metrics` until `pred` holds; the body.
async fn wait_metrics(
    agent: &mut Agent,
    port: u16,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let body = tokio::task::spawn_blocking(move || common::scrape_metrics(port))
            .await
            .expect("scrape");
        if pred(&body) {
            return body;
        }
        assert!(agent.running(), "agent exited:\n{}", agent.log());
        assert!(
            Instant::now() < deadline,
            "/metrics never showed {what}:\n{body}\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the command pipe until the service's latest result holds `needle`.
async fn wait_passive(pipe: &CommandPipe, agent: &Agent, service: &str, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match pipe.last_for(service) {
            Some(l) if l.contains(needle) => return l,
            last if Instant::now() > deadline => panic!(
                "no passive result for {service} with {needle:?}; last {last:?}\n{}",
                agent.log()
            ),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registrations_missing_after_a_cutover_are_reported_until_the_brokers_register_on_the_target(
) {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("agent-registrations");
    let ids = format!("{root}/kafka/brokers/ids");
    both(
        &s,
        &t,
        &root,
        &[
            ("kafka", b""),
            ("kafka/brokers", b""),
            ("kafka/brokers/ids", b""),
        ],
    )
    .await;
    // The brokers on the old ensemble, each with its own session, when the
    // expectation is taken.
    let mut old = Vec::new();
    for id in 1..=3 {
        let c = client(&p.source).await;
        c.create(&format!("{ids}/{id}"), b"{}", &common::ephemeral())
            .await
            .expect("a broker on the source");
        old.push(c);
    }
    let setup = Setup::new();
    let expect = setup.state_dir().join("before.zkps");
    let source = p.source.connect_string();
    let snap = zkparity(&[
        "snapshot",
        "--server",
        &source,
        "--path",
        &root,
        "--out",
        expect.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(snap.code, 0, "{}{}", snap.stdout, snap.stderr);

    let pipe = CommandPipe::with_reader(setup.state_dir());
    let gmond = gmetric_support::Gmond::start(gmetric_support::Mode::Mute);
    let port = zkparity_sandbox::free_ports(1).expect("a free port")[0];
    let expect_key = |grace: &str| format!("expect = {expect:?}\nexpect_grace = {grace:?}\n");
    setup.write_config(
        &(nagios_table(&pipe.path)
            + &format!(
                "[[ganglia]]\nhost = \"127.0.0.1\"\nport = {}\n[prometheus]\nlisten = \"127.0.0.1:{port}\"\n",
                gmond.udp_port
            )
            + &shared_pair_table("regs", &root, &expect_key("0s"))
            + &shared_pair_table("regs-grace", &root, &expect_key("1h"))),
    );
    let mut agent = Agent::start(&setup);

    // Nothing registered on the target yet: past a grace of 0 CRITICAL,
    // within an hour's grace WARNING.
    let missing = agent
        .wait_for("regs", "three registrations missing", |s| {
            s.registrations.as_ref().is_some_and(|r| r.missing == 3)
        })
        .await;
    let r = missing.registrations.expect("registrations");
    assert_eq!(
        (r.state.as_str(), r.expected, r.present),
        ("CRITICAL", 3, 0),
        "{r:#?}"
    );
    assert_eq!(r.cutover_from.as_deref(), Some("snapshot_created"));
    let brokers = r
        .roles
        .iter()
        .find(|x| x.role == "kafka brokers")
        .unwrap_or_else(|| panic!("{r:#?}"));
    let paths: Vec<String> = (1..=3).map(|id| format!("{ids}/{id}")).collect();
    assert_eq!((brokers.expected, brokers.missing), (3, 3));
    assert_eq!(brokers.missing_paths, paths);
    let within = agent
        .wait_for("regs-grace", "missing within the grace", |s| {
            s.registrations.as_ref().is_some_and(|r| r.missing == 3)
        })
        .await;
    assert_eq!(
        within.registrations.expect("registrations").state,
        "WARNING"
    );
    wait_passive(
        &pipe,
        &agent,
        "zkparity regs registrations",
        ";2;ZKPARITY EPHEMERALS CRITICAL - 3 of 3 registrations missing",
    )
    .await;
    wait_passive(
        &pipe,
        &agent,
        "zkparity regs-grace registrations",
        ";1;ZKPARITY EPHEMERALS WARNING - 3 of 3 registrations missing",
    )
    .await;
    let role = "pair=\"regs\",role=\"kafka brokers\"";
    wait_metrics(&mut agent, port, "three missing", |m| {
        m.contains(&format!("zkparity_registrations_missing{{{role}}} 3\n"))
            && m.contains(&format!("zkparity_registrations_expected{{{role}}} 3\n"))
            && m.contains("zkparity_registrations_status{pair=\"regs\"} 2\n")
            && m.contains("zkparity_registrations_status{pair=\"regs-grace\"} 1\n")
    })
    .await;
    wait_gmond(&gmond, "three missing in gmond", |x| {
        metric_val(x, "zkparity-regs", "zkparity_registrations_missing") == Some("3")
    })
    .await;

    // The brokers register on the new ensemble one by one.
    let mut new = Vec::new();
    for id in 1..=3u64 {
        let c = client(&p.target).await;
        c.create(&format!("{ids}/{id}"), b"{}", &common::ephemeral())
            .await
            .expect("a broker on the target");
        new.push(c);
        let s = agent
            .wait_for("regs", &format!("{id} back"), |s| {
                s.registrations.as_ref().is_some_and(|r| r.present == id)
            })
            .await;
        let r = s.registrations.expect("registrations");
        assert_eq!(r.missing, 3 - id, "{r:#?}");
        wait_metrics(&mut agent, port, &format!("{id} present"), |m| {
            m.contains(&format!("zkparity_registrations_present{{{role}}} {id}\n"))
        })
        .await;
    }
    let back = agent
        .wait_for("regs", "all back", |s| {
            s.registrations.as_ref().is_some_and(|r| r.state == "OK")
        })
        .await;
    let r = back.registrations.expect("registrations");
    assert_eq!((r.expected, r.present, r.missing), (3, 3, 0), "{r:#?}");
    assert!(r.roles.iter().all(|x| x.missing_paths.is_empty()), "{r:#?}");
    wait_metrics(&mut agent, port, "all back", |m| {
        m.contains(&format!("zkparity_registrations_missing{{{role}}} 0\n"))
            && m.contains(&format!("zkparity_registrations_present{{{role}}} 3\n"))
            && m.contains("zkparity_registrations_status{pair=\"regs\"} 0\n")
    })
    .await;
    wait_passive(
        &pipe,
        &agent,
        "zkparity regs registrations",
        ";0;ZKPARITY EPHEMERALS OK - 3 of 3 registrations back",
    )
    .await;
    wait_gmond(&gmond, "none missing in gmond", |x| {
        metric_val(x, "zkparity-regs", "zkparity_registrations_missing") == Some("0")
            && metric_val(x, "zkparity-regs", "zkparity_registrations_status") == Some("0")
    })
    .await;
    agent.signal(libc::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.log());
    drop((old, new));
}
