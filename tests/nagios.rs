//! The Nagios/Icinga checks against real ZooKeeper servers: states, the
//! plugin output grammar, thresholds, and UNKNOWN for everything that goes
//! wrong.

mod common;

use common::*;

/// Checks one answer against the plugin guidelines' grammar and returns its
/// status line.
fn assert_plugin_output(r: &Run) -> String {
    assert!((0..=3).contains(&r.code), "exit {} out of 0..=3", r.code);
    let mut lines = r.stdout.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let state = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][r.code as usize];
    let head = status.split(" | ").next().unwrap_or_default();
    assert!(
        head.starts_with("ZKPARITY ") && head.contains(&format!(" {state} - ")),
        "status line {status:?} does not say {state}"
    );
    if let Some((_, perf)) = status.split_once(" | ") {
        let entry = regex::Regex::new(
            r"^('[^'=]+'|[^'= ]+)=-?[0-9.]+(s|ms|us|%|B|KB|MB|TB|c)?(;[^; ]*){0,4}$",
        )
        .unwrap();
        for e in perf.split(' ') {
            assert!(entry.is_match(e), "perfdata entry {e:?} in {status:?}");
        }
    }
    for line in lines {
        assert!(!line.contains('|'), "long output line with '|': {line:?}");
    }
    assert!(!r.stdout.contains("panicked") && !r.stderr.contains("panicked"));
    status
}

async fn parity(root: &str, extra: &[&str]) -> Run {
    let p = pair();
    let (s, t) = (p.source.connect_string(), p.target.connect_string());
    let mut args = vec![
        "check",
        "parity",
        "--source",
        &s,
        "--target",
        &t,
        "--path",
        root,
        "--recheck-delay",
        "0s",
    ];
    args.extend_from_slice(extra);
    run(&args).await
}

#[tokio::test]
async fn parity_of_identical_trees_is_ok_with_perfdata() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("nag-ok");
    both(&s, &t, &root, &[("a", b"1"), ("b", b"2")]).await;
    let r = parity(&root, &[]).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        status.contains("source and target match: 3 nodes"),
        "{status}"
    );
    for label in [
        "source_nodes=3;;;0",
        "target_nodes=3;;;0",
        "differences=0;0;;0",
        "transient=0;;;0",
    ] {
        assert!(status.contains(label), "{label} missing in {status}");
    }
    assert!(status.contains("elapsed="), "{status}");
}

#[tokio::test]
async fn a_critical_kind_is_critical_and_listed_in_long_output() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("nag-crit");
    both(&s, &t, &root, &[]).await;
    create(&s, &format!("{root}/config"), b"v2").await;
    create(&t, &format!("{root}/config"), b"v1").await;
    let r = parity(&root, &[]).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        status.contains("1 confirmed difference (data 1)"),
        "{status}"
    );
    assert!(status.contains("data=1;;;0"), "{status}");
    assert_eq!(
        r.stdout.lines().nth(1),
        Some(format!("data {root}/config").as_str())
    );
}

#[tokio::test]
async fn a_non_critical_kind_only_warns_and_thresholds_decide() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("nag-warn");
    both(&s, &t, &root, &[]).await;
    create(&t, &format!("{root}/leftover"), b"").await;
    let r = parity(&root, &[]).await;
    assert_plugin_output(&r);
    assert_eq!(r.code, 1, "extra_in_target only warns: {}", r.stdout);

    let r = parity(&root, &["-w", "5"]).await;
    assert_eq!(r.code, 0, "within -w 5: {}", r.stdout);
    let r = parity(&root, &["-w", "5", "-c", "0"]).await;
    assert_eq!(r.code, 2, "-c 0 is critical at 1: {}", r.stdout);
    let r = parity(&root, &["-w", "@1:1"]).await;
    assert_eq!(r.code, 1, "@1:1 alerts at exactly 1: {}", r.stdout);
    let r = parity(&root, &["--critical-kinds", "extra_in_target"]).await;
    assert_eq!(r.code, 2, "{}", r.stdout);
}

#[tokio::test]
async fn parity_against_a_snapshot_watches_the_target_after_cutover() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("nag-snap");
    both(&s, &t, &root, &[("config", b"v1")]).await;
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("before.zkps");
    let snap = snap.to_str().unwrap();
    let r = run(&[
        "snapshot",
        "--server",
        &p.source.connect_string(),
        "--path",
        &root,
        "--out",
        snap,
        "-q",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let args = [
        "check",
        "parity",
        "--source",
        snap,
        "--target",
        &p.target.connect_string(),
        "--path",
        &root,
        "--recheck-delay",
        "0s",
    ]
    .map(str::to_string);
    let check = || {
        let args = args.clone();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&refs).await
        }
    };
    let r = check().await;
    assert_plugin_output(&r);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    t.set_data(&format!("{root}/config"), b"v2", None)
        .await
        .unwrap();
    let r = check().await;
    assert_plugin_output(&r);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    // A snapshot that was cut is UNKNOWN, never OK.
    let cut = dir.path().join("cut.zkps");
    let text = std::fs::read_to_string(snap).unwrap();
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let r = run(&[
        "check",
        "parity",
        "--source",
        cut.to_str().unwrap(),
        "--target",
        &p.target.connect_string(),
        "--path",
        &root,
    ])
    .await;
    assert_plugin_output(&r);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
}

#[tokio::test]
async fn everything_that_goes_wrong_is_unknown_with_a_reason() {
    let p = pair();
    let s = p.source.connect_string();
    let dead = format!("127.0.0.1:{}", dead_port());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-w", "20:10"], "start is above the end"),
        (vec!["-c", "ten"], "not a number"),
        (vec!["--critical-kinds", "dta"], "unknown difference kind"),
        (vec!["--target", &dead], "no server answered"),
        (vec!["--target", "nohost"], "\"nohost\" does not resolve"),
        (vec!["-t", "1ms"], "timed out after"),
        (
            vec!["--path", "/does-not-exist-anywhere"],
            "does not exist on either",
        ),
        (vec!["--no-such-flag"], "unexpected argument"),
    ];
    let t = p.target.connect_string();
    for (extra, needle) in cases {
        let mut args = vec!["check", "parity", "--source", &s, "--target", &t];
        args.extend_from_slice(&extra);
        let r = run(&args).await;
        let status = assert_plugin_output(&r);
        assert_eq!(r.code, 3, "{extra:?}: {}", r.stdout);
        assert!(status.starts_with("ZKPARITY PARITY UNKNOWN - "), "{status}");
        assert!(status.contains(needle), "{extra:?}: {status}");
    }
}

#[tokio::test]
async fn help_and_version_exit_unknown_as_plugins_do() {
    for args in [
        vec!["check", "parity", "--help"],
        vec!["check", "znode", "-h"],
        vec!["check", "parity", "-V"],
    ] {
        let r = run(&args).await;
        assert_eq!(r.code, 3, "{args:?}");
        assert!(!r.stdout.is_empty());
    }
    let r = run(&["check", "parity", "--help"]).await;
    assert!(r.stdout.contains("-w, --warning <RANGE>"), "{}", r.stdout);
    assert!(r.stdout.contains("Exit codes: 0 OK"), "{}", r.stdout);
}

#[tokio::test]
async fn installed_under_a_check_name_it_runs_that_check() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("nag-link");
    both(&s, &t, &root, &[]).await;
    let dir = std::env::temp_dir().join(format!("zkparity-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("check_zkparity_parity");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_zkparity"), &link).unwrap();
    let (ps, pt) = (p.source.connect_string(), p.target.connect_string());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&link)
            .args([
                "--source",
                &ps,
                "--target",
                &pt,
                "--path",
                &root,
                "--recheck-delay",
                "0s",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("ZKPARITY PARITY OK - "), "{stdout}");
}

async fn znode(extra: &[&str]) -> Run {
    let mut args = vec!["check", "znode"];
    args.extend_from_slice(extra);
    run(&args).await
}

#[tokio::test]
async fn znode_checks_existence_kind_children_data_and_age() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("nag-znode");
    both(
        &s,
        &t,
        &root,
        &[
            ("ids", b""),
            ("ids/1", b""),
            ("ids/2", b""),
            ("state", b"ENABLED"),
        ],
    )
    .await;
    s.create(
        &format!("{root}/controller"),
        b"{\"brokerid\":1}",
        &ephemeral(),
    )
    .await
    .unwrap();
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    let ids = format!("{root}/ids");
    let state = format!("{root}/state");
    let controller = format!("{root}/controller");

    let r = znode(&[
        "--source",
        &src,
        "--target",
        &dst,
        "--path",
        &ids,
        "--children-warning",
        "2:",
        "--children-critical",
        "1:",
    ])
    .await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(status.contains("source_children=2;2:;1:;0"), "{status}");

    let r = znode(&["--source", &src, "--path", &ids, "--children-warning", "3:"]).await;
    assert_plugin_output(&r);
    assert_eq!(r.code, 1, "{}", r.stdout);

    let r = znode(&[
        "--source",
        &src,
        "--target",
        &dst,
        "--path",
        &controller,
        "--ephemeral",
    ])
    .await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 2, "missing on the target: {}", r.stdout);
    assert!(
        status.contains(&format!("target {controller} does not exist")),
        "{status}"
    );

    let r = znode(&["--source", &src, "--path", &controller, "--ephemeral"]).await;
    assert_eq!(r.code, 0, "{}", r.stdout);
    let r = znode(&["--source", &src, "--path", &state, "--ephemeral"]).await;
    assert_eq!(r.code, 2, "{}", r.stdout);

    let enabled_on_both = [
        "--source",
        &src,
        "--target",
        &dst,
        "--path",
        &state,
        "--data-regex",
        "^ENABLED$",
    ];
    let r = znode(&enabled_on_both).await;
    assert_eq!(r.code, 0, "{}", r.stdout);
    t.set_data(&state, b"DISABLED", None).await.unwrap();
    let r = znode(&enabled_on_both).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(status.contains("target"), "{status}");

    // Just modified: older than an hour alerts, younger does not.
    let r = znode(&[
        "--source",
        &src,
        "--path",
        &state,
        "--age-critical",
        "3600:",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    let r = znode(&["--source", &src, "--path", &state, "--age-critical", "3600"]).await;
    assert_eq!(r.code, 0, "{}", r.stdout);

    let r = znode(&["--source", &src, "--path", &state, "--data-regex", "("]).await;
    assert_plugin_output(&r);
    assert_eq!(r.code, 3, "{}", r.stdout);
    drop(s);
}

#[tokio::test]
async fn health_of_serving_standalone_servers_is_ok() {
    let p = pair();
    let (s, t) = (p.source.connect_string(), p.target.connect_string());
    let r = run(&["check", "health", "--source", &s, "--target", &t]).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(status.contains("source_servers_serving=1;;;0"), "{status}");
    assert!(status.contains("target_avg_latency="), "{status}");
    assert!(
        r.stdout.contains(&format!("  {s} standalone")),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn health_is_critical_for_a_server_that_is_down() {
    let p = pair();
    let dead = format!("127.0.0.1:{}", dead_port());
    let s = p.source.connect_string();
    let r = run(&[
        "check", "health", "--source", &s, "--target", &dead, "-t", "3s",
    ])
    .await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(status.contains("target"), "{status}");
}

#[tokio::test]
async fn health_thresholds_apply_per_server() {
    let p = pair();
    let s = p.source.connect_string();
    // Inside 0..=1000 outstanding requests alerts: the server has 0.
    let r = run(&[
        "check",
        "health",
        "--source",
        &s,
        "--outstanding-warning",
        "@0:1000",
    ])
    .await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(status.contains("0 outstanding requests"), "{status}");
    let r = run(&["check", "health", "--source", &s, "--fd-critical", "@0:100"]).await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    let r = run(&["check", "health", "--source", &s, "--latency-warning", "x"]).await;
    assert_plugin_output(&r);
    assert_eq!(r.code, 3, "{}", r.stdout);
}

#[tokio::test]
async fn counts_compare_persistent_znodes_leaving_ephemerals_out() {
    // Whole-server counts: fresh servers no other test writes to.
    let (a, b) = tokio::join!(own_server(), own_server());
    let (sa, sb) = (a.connect_string(), b.connect_string());
    let (s, t) = (connect(&sa).await, connect(&sb).await);
    both(&s, &t, "/app", &[("x", b"1"), ("y", b"2")]).await;
    s.create("/app/session", b"", &ephemeral()).await.unwrap();
    let r = run(&["check", "counts", "--source", &sa, "--target", &sb]).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 0, "ephemerals do not count: {}", r.stdout);
    assert!(
        status.contains("persistent znodes: source 3, target 3 (target +0)"),
        "{status}"
    );
    assert!(status.contains("ephemeral_delta=-1"), "{status}");

    create(&t, "/app/extra", b"").await;
    let r = run(&["check", "counts", "--source", &sa, "--target", &sb]).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(status.contains("persistent_delta=1;0:0 "), "{status}");
    let r = run(&[
        "check", "counts", "--source", &sa, "--target", &sb, "-w", "-5:5", "-c", "-1:0",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    let r = run(&[
        "check", "counts", "--source", &sa, "--target", &sb, "-w", "-5:5",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stdout);
    drop(s);
}

/// A state file as the agent writes it (docs/agent.md), finished `age` ago.
fn agent_state(status: &str, drift: &[(&str, &str)], unconfirmed: u64, age_secs: u64) -> String {
    let now = std::time::SystemTime::now();
    let at = |secs: u64| {
        humantime::format_rfc3339_seconds(now - std::time::Duration::from_secs(secs)).to_string()
    };
    let mut by_kind: serde_json::Map<String, serde_json::Value> = [
        "missing_in_target",
        "extra_in_target",
        "data",
        "acl",
        "node_kind",
        "sequence_counter",
        "unreadable",
    ]
    .iter()
    .map(|k| (k.to_string(), 0.into()))
    .collect();
    for (kind, _) in drift {
        let n = by_kind[*kind].as_u64().unwrap() + 1;
        by_kind.insert(kind.to_string(), n.into());
    }
    let tracked: Vec<serde_json::Value> = drift
        .iter()
        .map(|(kind, path)| {
            serde_json::json!({"path": path, "kind": kind, "first_seen": at(age_secs + 60),
                               "age_seconds": 60.0, "rounds": 3})
        })
        .collect();
    let totals = serde_json::json!({"nodes": 120, "ephemerals": 0, "bytes": 900, "unreadable": 0});
    serde_json::json!({
        "schema": 1, "pair": "kafka", "source": "old:2181", "target": "new:2181", "path": "/",
        "round": 7, "started": at(age_secs + 2), "finished": at(age_secs),
        "interval_seconds": 30.0, "status": status,
        "reason": if status == "unknown" { Some("target: no server answered") } else { None },
        "confirm": {"rounds": 2, "after_seconds": 0.0},
        "summary": {"round": 7, "finished": at(age_secs), "identical": drift.is_empty(),
                    "source": totals, "target": totals, "differences": by_kind,
                    "confirmed": drift.len(), "transient": 0, "rechecked": true,
                    "elapsed_seconds": 1.5, "reads": {"source": 360, "target": 360}},
        "confirmed": tracked, "confirmed_total": drift.len(), "confirmed_by_kind": by_kind,
        "unconfirmed": [], "unconfirmed_total": unconfirmed, "lag_seconds": 0.0,
        "last_success": at(age_secs),
    })
    .to_string()
}

#[tokio::test]
async fn parity_from_the_agents_state_file_judges_its_confirmed_drift() {
    let dir = std::env::temp_dir().join(format!("zkparity-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kafka.json");
    let path = file.to_str().unwrap().to_string();
    let check = |extra: &[&str]| {
        let mut args = vec!["check", "parity", "--state", path.as_str()];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let go = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args).await
    };

    std::fs::write(&file, agent_state("ok", &[], 2, 5)).unwrap();
    let r = go(check(&[])).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        status.contains("source and target match: 120 nodes, 2 not yet confirmed"),
        "{status}"
    );
    assert!(status.contains("agent round 7 of pair kafka"), "{status}");
    assert!(status.contains("unconfirmed=2;;;0"), "{status}");

    std::fs::write(
        &file,
        agent_state("drift", &[("data", "/kafka/config")], 0, 5),
    )
    .unwrap();
    let r = go(check(&[])).await;
    assert_plugin_output(&r);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(r.stdout.lines().nth(1), Some("data /kafka/config"));

    std::fs::write(
        &file,
        agent_state("drift", &[("extra_in_target", "/stale")], 0, 5),
    )
    .unwrap();
    let r = go(check(&[])).await;
    assert_eq!(r.code, 1, "a non-critical kind warns: {}", r.stdout);

    std::fs::write(&file, agent_state("ok", &[], 0, 7200)).unwrap();
    let r = go(check(&["--max-age", "30m"])).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(status.contains("is the agent running?"), "{status}");

    std::fs::write(&file, agent_state("unknown", &[], 0, 5)).unwrap();
    let r = go(check(&[])).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(status.contains("no server answered"), "{status}");

    std::fs::write(&file, "{\"schema\": 1, \"pair\": \"kaf").unwrap();
    let r = go(check(&[])).await;
    assert_plugin_output(&r);
    assert_eq!(r.code, 3, "a torn or foreign file is UNKNOWN: {}", r.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn counts_are_unknown_when_a_side_cannot_say() {
    let p = pair();
    let dead = format!("127.0.0.1:{}", dead_port());
    let s = p.source.connect_string();
    let r = run(&[
        "check", "counts", "--source", &s, "--target", &dead, "-t", "3s",
    ])
    .await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        status.contains("target: no serving server reported a znode count"),
        "{status}"
    );
}

#[tokio::test]
async fn a_path_with_a_pipe_cannot_break_the_plugin_output() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("nag-pipe");
    both(&s, &t, &root, &[]).await;
    create(&s, &format!("{root}/a|b c"), b"1").await;
    create(&t, &format!("{root}/a|b c"), b"2").await;
    let r = parity(&root, &[]).await;
    // Checks every line: no '|' outside the one before the perfdata.
    assert_plugin_output(&r);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_eq!(
        r.stdout.lines().nth(1),
        Some(format!("data {root}/a/b c").as_str())
    );
}

#[tokio::test]
async fn a_long_recheck_delay_does_not_turn_a_short_timeout_into_unknown() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("nag-recheck");
    both(&s, &t, &root, &[]).await;
    create(&s, &format!("{root}/config"), b"v2").await;
    create(&t, &format!("{root}/config"), b"v1").await;
    // The later --recheck-delay wins over the helper's 0s. Uncapped, the
    // 30s wait would outlast -t and the answer would be UNKNOWN.
    let r = parity(&root, &["-t", "6s", "--recheck-delay", "30s"]).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 2, "re-checked within -t, still CRITICAL: {status}");
}

#[tokio::test]
async fn path_rules_judge_a_churning_directory_apart() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("nag-judge");
    both(&s, &t, &root, &[("locks", b""), ("config", b"v1")]).await;
    create(&s, &format!("{root}/locks/l1"), b"owner-a").await;
    create(&t, &format!("{root}/locks/l1"), b"owner-b").await;
    let r = parity(&root, &[]).await;
    assert_eq!(r.code, 2, "data differs: CRITICAL by default: {}", r.stdout);
    let rule = format!("{root}/locks/**=warning");
    let r = parity(&root, &["--judge", &rule]).await;
    let status = assert_plugin_output(&r);
    assert_eq!(r.code, 1, "{status}");
    assert!(status.contains("judged by path rules"), "{status}");
    let rule = format!("{root}/locks/**=ok");
    let r = parity(&root, &["--judge", &rule]).await;
    assert_eq!(r.code, 0, "{}", r.stdout);
    // A difference elsewhere still alerts in full.
    t.set_data(&format!("{root}/config"), b"v2", None)
        .await
        .expect("drift");
    let r = parity(&root, &["--judge", &rule]).await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    let r = parity(&root, &["--judge", "locks=ok"]).await;
    assert_eq!(r.code, 3, "a bad rule is UNKNOWN: {}", r.stdout);
}
