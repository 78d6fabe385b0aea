//! Prometheus with real parts: Debian's `promtool` judges what the agent
//! serves, the textfiles compare writes and the shipped rules; a real
//! Prometheus server scrapes a running agent over two real ZooKeeper
//! servers, and a drift makes the shipped alert fire.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use zkparity_sandbox::{free_ports, Guarded};

/// Liveness bound for the agent and Prometheus; generous, not a speed check.
const PATIENCE: Duration = Duration::from_secs(90);

fn shipped(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("prometheus")
        .join(file)
}

/// A plain HTTP/1.1 GET: the status line's code, the headers and the body.
fn get(addr: &str, target: &str, accept: Option<&str>) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, head.to_string(), body.to_string()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `promtool ARGS` with `stdin`: exit code and everything it said.
fn promtool(args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(shipped(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (scripts/install-deps installs prometheus)");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("feed promtool");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("promtool output");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// An agent over the shared pair at `root`, serving `/metrics`.
struct Agent {
    dir: tempfile::TempDir,
    listen: String,
    child: Guarded,
}

impl Agent {
    fn start(name: &str, root: &str, extra: &str) -> Agent {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = pair();
        let port = free_ports(1).expect("a free port")[0];
        let listen = format!("127.0.0.1:{port}");
        let config = format!(
            "state_dir = {:?}\nprobe_interval = \"1s\"\n[prometheus]\nlisten = {listen:?}\n\
             [[pair]]\nname = {name:?}\nsource = {:?}\ntarget = {:?}\npath = {root:?}\n\
             interval = \"1s\"\njitter = \"100ms\"\nrecheck_delay = \"200ms\"\nconfirm_rounds = 2\n{extra}",
            dir.path(),
            p.source.connect_string(),
            p.target.connect_string(),
        );
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, config).expect("write agent config");
        let log = std::fs::File::create(dir.path().join("agent.log")).expect("log");
        let child = Guarded::spawn(agent_command(&file).stderr(log)).expect("start the agent");
        Agent { dir, listen, child }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// `/metrics` once it shows a round and a probe of the pair.
    async fn metrics_after_a_round(&mut self) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok((200, _, body)) = get(&self.listen, "/metrics", None) {
                if body.contains("zkparity_rounds_total") && body.contains("zkparity_server_up") {
                    return body;
                }
            }
            assert!(
                matches!(self.child.try_wait(), Ok(None)),
                "the agent exited:\n{}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "no round served:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn sample_line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(prefix))
}

#[tokio::test]
async fn the_agent_serves_both_formats_and_promtool_accepts_what_it_serves() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("prom-formats");
    both(&s, &t, &root, &[("a", b"1"), ("b", b"2")]).await;
    let mut agent = Agent::start("formats", &root, "");
    let text = agent.metrics_after_a_round().await;

    let (code, said) = promtool(&["check", "metrics"], Some(&text));
    assert_eq!(code, 0, "promtool check metrics:\n{said}\n{text}");
    assert!(
        text.contains("zkparity_pair_status{pair=\"formats\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("zkparity_nodes{pair=\"formats\",side=\"source\"} 3\n"));
    assert!(text.contains("zkparity_differences_confirmed{pair=\"formats\",kind=\"data\"} 0\n"));
    let source = p.source.connect_string();
    let server_up = format!(
        "zkparity_server_up{{pair=\"formats\",side=\"source\",ensemble=\"{source}\",server=\"{source}\"}} 1"
    );
    assert!(text.contains(&server_up), "{server_up} in\n{text}");
    assert!(sample_line(&text, "zkparity_server_znodes{").is_some());
    assert!(text.contains("# TYPE zkparity_rounds_total counter\n"));

    let (code, head, om) = get(
        &agent.listen,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .expect("scrape as OpenMetrics");
    assert_eq!(code, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(om.contains("# TYPE zkparity_rounds counter\n"), "{om}");
    assert!(om.ends_with("# EOF\n"));

    let (code, _, _) = get(&agent.listen, "/nothing", None).expect("a request");
    assert_eq!(code, 404);
}

#[tokio::test]
async fn prometheus_scraping_the_agent_fires_the_drift_alert_and_only_then() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("prom-alert");
    both(&s, &t, &root, &[("config", b"v1"), ("state", b"up")]).await;
    let name = "alerting";
    let mut agent = Agent::start(name, &root, "");
    agent.metrics_after_a_round().await;

    // A real Prometheus, scraping every second and evaluating the shipped
    // rules as shipped.
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_ports(1).expect("a free port")[0];
    let web = format!("127.0.0.1:{port}");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {:?}\n\
         scrape_configs:\n  - job_name: zkparity\n    static_configs:\n      - targets: [{:?}]\n",
        shipped("zkparity.rules.yml").display().to_string(),
        agent.listen
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("config");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
    let _prometheus = Guarded::spawn(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log),
    )
    .expect("start prometheus");
    let prom_log =
        || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();

    let query = |q: &str| -> serde_json::Value {
        match get(&web, &format!("/api/v1/query?query={}", urlencode(q)), None) {
            Ok((_, _, body)) => serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            Err(_) => serde_json::Value::Null,
        }
    };
    let alerts = || -> Vec<serde_json::Value> {
        get(&web, "/api/v1/alerts", None)
            .ok()
            .and_then(|(_, _, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v["data"]["alerts"].as_array().cloned())
            .unwrap_or_default()
    };
    let drift_alert = |alerts: &[serde_json::Value]| {
        alerts
            .iter()
            .find(|a| {
                a["labels"]["alertname"] == "ZkParityDriftConfirmed" && a["labels"]["pair"] == name
            })
            .cloned()
    };

    // Scraped, judged identical, and no drift alert.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = query(&format!("zkparity_pair_status{{pair=\"{name}\"}}"));
        if r["data"]["result"][0]["value"][1] == "0" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never scraped: {r}\n{}",
            prom_log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Let the rules evaluate on what was scraped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(drift_alert(&alerts()), None, "a false alarm");
    let up = query("up{job=\"zkparity\"}");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");

    // Every query of the shipped dashboard runs on the real server.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shipped("grafana/zkparity-dashboard.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "the dashboard has queries: {exprs:?}");
    for e in &exprs {
        let q = e
            .replace("$pair", ".*")
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "1m")
            .replace("$__range", "1m");
        let r = query(&q);
        assert_eq!(r["status"], "success", "dashboard query {e:?}: {r}");
    }

    // A drift on the target: confirmed by the agent, then the alert fires.
    t.set_data(&format!("{root}/config"), b"v2", None)
        .await
        .expect("drift the target");
    let deadline = Instant::now() + PATIENCE;
    let fired = loop {
        if let Some(a) = drift_alert(&alerts()) {
            if a["state"] == "firing" {
                break a;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the drift alert never fired; agent log:\n{}\nprometheus log:\n{}",
            agent.log(),
            prom_log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(fired["labels"]["severity"], "critical", "{fired}");
    let by_kind = query(&format!(
        "zkparity_differences_confirmed{{pair=\"{name}\",kind=\"data\"}}"
    ));
    assert_eq!(by_kind["data"]["result"][0]["value"][1], "1", "{by_kind}");
    let others = query(&format!(
        "sum(zkparity_differences_confirmed{{pair=\"{name}\",kind!=\"data\"}})"
    ));
    assert_eq!(others["data"]["result"][0]["value"][1], "0", "{others}");
    drop(t);
    drop(s);
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) if !e.is_empty() => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn promtool_accepts_the_shipped_rules_and_their_unit_tests_pass() {
    let (code, said) = promtool(&["check", "rules", "zkparity.rules.yml"], None);
    assert_eq!(code, 0, "{said}");
    let (code, said) = promtool(&["test", "rules", "zkparity.rules.test.yml"], None);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("SUCCESS"), "{said}");
    let (code, said) = promtool(&["check", "config", "prometheus.yml"], None);
    assert_eq!(code, 0, "the sample scrape config: {said}");
}

#[tokio::test]
async fn compare_writes_a_textfile_node_exporter_reads_and_replaces_it_whole() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("prom-textfile");
    both(&s, &t, &root, &[("a", b"1")]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("zkparity.prom");
    let file_arg = file.display().to_string();
    let (src, tgt) = (p.source.connect_string(), p.target.connect_string());
    let base = [
        "compare",
        "--source",
        src.as_str(),
        "--target",
        tgt.as_str(),
        "--path",
        root.as_str(),
        "--recheck-delay",
        "0s",
        "--quiet",
        "--prometheus-textfile",
        file_arg.as_str(),
        "--pair-name",
        "cron",
    ];
    let r = run(&base).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let text = std::fs::read_to_string(&file).expect("the textfile");
    let (code, said) = promtool(&["check", "metrics"], Some(&text));
    assert_eq!(code, 0, "{said}\n{text}");
    assert!(
        text.contains("zkparity_pair_status{pair=\"cron\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("zkparity_last_round_success{pair=\"cron\"} 1\n"));
    let mode = std::fs::metadata(&file).expect("stat").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o644,
        "the collector's user reads it"
    );

    // A data difference: CRITICAL by check parity's default kinds.
    t.set_data(&format!("{root}/a"), b"2", None)
        .await
        .expect("drift");
    let r = run(&base).await;
    assert_eq!(r.code, 1, "{}", ctx(&r));
    let text = std::fs::read_to_string(&file).expect("the textfile");
    assert!(
        text.contains("zkparity_pair_status{pair=\"cron\"} 2\n"),
        "{text}"
    );
    assert!(text.contains("zkparity_differences_confirmed{pair=\"cron\",kind=\"data\"} 1\n"));

    // A side that cannot be reached: the file says the comparison failed
    // instead of keeping the last good one.
    let dead = format!("127.0.0.1:{}", dead_port());
    let mut args = base.to_vec();
    args[4] = dead.as_str();
    args.extend_from_slice(&["--connect-timeout", "2s"]);
    let r = run(&args).await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    let text = std::fs::read_to_string(&file).expect("the textfile");
    assert!(
        text.contains("zkparity_last_round_success{pair=\"cron\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("zkparity_pair_status{pair=\"cron\"} 3\n"));
    assert!(!text.contains("zkparity_nodes"), "no stale counts: {text}");
    assert!(
        !text.contains("zkparity_differences_confirmed"),
        "no zeros that would resolve a drift alert: {text}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("zkparity.prom")]);
}

#[tokio::test]
async fn check_parity_writes_its_own_answer_to_the_textfile() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("prom-check");
    both(&s, &t, &root, &[("a", b"1")]).await;
    create(&t, &format!("{root}/extra"), b"x").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("parity.prom");
    let file_arg = file.display().to_string();
    let (src, tgt) = (p.source.connect_string(), p.target.connect_string());
    let r = run(&[
        "check",
        "parity",
        "--source",
        &src,
        "--target",
        &tgt,
        "--path",
        &root,
        "--recheck-delay",
        "0s",
        "--prometheus-textfile",
        &file_arg,
    ])
    .await;
    assert_eq!(r.code, 1, "extra_in_target is WARNING: {}", ctx(&r));
    let text = std::fs::read_to_string(&file).expect("the textfile");
    let pair = zkparity::gmetric::parity::default_pair_name(&src, &tgt);
    assert!(
        text.contains(&format!("zkparity_pair_status{{pair=\"{pair}\"}} 1\n")),
        "{text}"
    );
    assert!(text.contains(&format!(
        "zkparity_differences_confirmed{{pair=\"{pair}\",kind=\"extra_in_target\"}} 1\n"
    )));

    let state = dir.path().join("state.json");
    let state_arg = state.display().to_string();
    let r = run(&[
        "check",
        "parity",
        "--state",
        &state_arg,
        "--prometheus-textfile",
        &file_arg,
    ])
    .await;
    assert_eq!(r.code, 3, "{}", ctx(&r));
    assert!(r.stdout.contains("--prometheus-textfile"), "{}", r.stdout);
}

#[tokio::test]
async fn a_bad_listen_address_or_a_taken_port_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = pair();
    let write = |listen: &str| -> PathBuf {
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            format!(
                "state_dir = {:?}\n[prometheus]\nlisten = {listen:?}\n\
                 [[pair]]\nname = \"x\"\nsource = {:?}\ntarget = {:?}\n",
                dir.path(),
                p.source.connect_string(),
                p.target.connect_string()
            ),
        )
        .expect("config");
        file
    };
    for (listen, says) in [
        ("127.0.0.1", "not HOST:PORT"),
        ("127.0.0.1:99999", "not a port number"),
    ] {
        let file = write(listen);
        let r = run(&[
            "agent",
            "--check-config",
            "--config",
            &file.display().to_string(),
        ])
        .await;
        assert_eq!(r.code, 2, "{listen}: {}", ctx(&r));
        assert!(
            r.stderr.contains("prometheus.listen") && r.stderr.contains(says),
            "{listen}: {}",
            r.stderr
        );
    }

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let file = write(&taken.local_addr().expect("addr").to_string());
    let out = tokio::task::spawn_blocking(move || {
        agent_command(&file)
            .stderr(Stdio::piped())
            .output()
            .expect("run the agent")
    })
    .await
    .expect("runner");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("prometheus listen address"), "{stderr}");
}
