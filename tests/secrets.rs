//! No credential appears in anything zkparity emits: report text and JSON,
//! check output, the agent's logs, state file, Nagios passive results,
//! Ganglia datagrams, Prometheus metrics and textfiles. Nor does the
//! password hash a digest ACL carries.

mod common;

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use zkparity_sandbox::Guarded;
use zookeeper_client as zk;

const PASSWORD: &str = "hunter2-s3cr3t-value";
/// base64(sha1("bob:" + PASSWORD)): what a digest ACL entry carries.
const HASH: &str = "fAuf3tiFLruP8L36i6yYwmMj08w=";

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "the password appears in {what}:\n{text}"
    );
    assert!(
        !text.contains(HASH),
        "the password hash appears in {what}:\n{text}"
    );
}

struct Fixture {
    dir: PathBuf,
    auth: String,
    root: String,
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!("zkparity-secrets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let auth = dir.join("bob.auth");
    std::fs::write(&auth, format!("bob:{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();

    let root = unique_path("secrets");
    let bob_id = format!("bob:{HASH}");
    let (_, s, t) = pair_clients().await;
    both(&s, &t, &root, &[("plain", b"1")]).await;
    let bob_read = [
        zk::Acl::new(zk::Permission::READ, zk::AuthId::new("digest", &bob_id)),
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("world", "anyone")),
    ];
    let bob_all = [
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", &bob_id)),
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("world", "anyone")),
    ];
    let with = |acls| zk::CreateMode::Persistent.with_acls(zk::Acls::new(acls));
    s.create(&format!("{root}/guarded"), b"x", &with(&bob_read))
        .await
        .unwrap();
    t.create(&format!("{root}/guarded"), b"x", &with(&bob_all))
        .await
        .unwrap();
    Fixture {
        auth: auth.display().to_string(),
        dir,
        root,
    }
}

#[tokio::test]
async fn no_credential_appears_in_any_output() {
    let p = pair();
    let fx = fixture().await;
    let (s, t) = (p.source.connect_string(), p.target.connect_string());
    let auth = [
        "--source-auth-file",
        fx.auth.as_str(),
        "--target-auth-file",
        fx.auth.as_str(),
    ];

    // Reports, in both formats, with the ACL difference listed.
    for format in ["text", "json"] {
        let mut args = vec![
            "compare", "--source", &s, "--target", &t, "--path", &fx.root,
        ];
        args.extend_from_slice(&auth);
        args.extend_from_slice(&["--format", format, "--recheck-delay", "0s"]);
        let r = run(&args).await;
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("digest:bob:#"), "{}", r.stdout);
        assert_clean(
            &format!("compare --format {format}"),
            &(r.stdout + &r.stderr),
        );
    }
    // A check, and a connection failure that quotes the ensemble.
    let mut args = vec![
        "check", "parity", "--source", &s, "--target", &t, "--path", &fx.root,
    ];
    args.extend_from_slice(&auth);
    let textfile = fx.dir.join("parity.prom").display().to_string();
    args.extend_from_slice(&["--prometheus-textfile", &textfile]);
    let r = run(&args).await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert_clean("check parity", &(r.stdout + &r.stderr));
    let text = std::fs::read_to_string(&textfile).expect("the textfile");
    assert!(text.contains("zkparity_differences_confirmed"), "{text}");
    assert_clean("the Prometheus textfile", &text);
    let mut args = vec!["compare", "--source", &s, "--target", "127.0.0.1:1"];
    args.extend_from_slice(&auth);
    let r = run(&args).await;
    assert_eq!(r.code, 2);
    assert_clean("a connection error", &(r.stdout + &r.stderr));

    // The agent: logs, state file, passive results, Ganglia datagrams.
    let fifo = fx.dir.join("nagios.cmd");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Read and write, so the agent always finds a reader and we never block.
    let mut passive = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let gmond_port = udp.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let datagrams = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = udp.recv(&mut buf) {
                    all.extend_from_slice(&buf[..n]);
                }
            }
            all
        })
    };
    let state_dir = fx.dir.join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let config = fx.dir.join("agent.toml");
    let metrics_port = zkparity_sandbox::free_ports(1).expect("a free port")[0];
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nprobe_interval = \"1s\"\n[nagios]\ncommand_file = {:?}\nhost_name = \"zk\"\n\
             [[ganglia]]\nhost = \"127.0.0.1\"\nport = {gmond_port}\n\
             [prometheus]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
             [[pair]]\nname = \"secret\"\nsource = {s:?}\ntarget = {t:?}\npath = {:?}\n\
             source_auth_file = {:?}\ntarget_auth_file = {:?}\ninterval = \"1s\"\n\
             jitter = \"100ms\"\nrecheck_delay = \"0s\"\n",
            state_dir.display().to_string(),
            fifo.display().to_string(),
            fx.root,
            fx.auth,
            fx.auth
        ),
    )
    .unwrap();
    let log = fx.dir.join("agent.log");
    let mut agent = Guarded::spawn(
        agent_command(&config)
            .env("ZKPARITY_LOG", "debug")
            .stderr(std::fs::File::create(&log).unwrap()),
    )
    .unwrap();
    let state_file = state_dir.join("secret.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut state = String::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        state = std::fs::read_to_string(&state_file).unwrap_or_default();
        let round = serde_json::from_str::<serde_json::Value>(&state)
            .ok()
            .and_then(|v| v["round"].as_u64())
            .unwrap_or(0);
        if round >= 3 {
            break;
        }
    }
    let metrics = scrape_metrics(metrics_port);
    let _ = agent.signal(libc::SIGTERM);
    let _ = agent.wait();
    stop.store(true, Ordering::Relaxed);
    let datagrams = datagrams.join().unwrap();
    let mut results = Vec::new();
    let _ = passive.read_to_end(&mut results);

    assert!(state.contains("\"round\""), "the agent ran rounds: {state}");
    assert_clean("the agent's state file", &state);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.is_empty(), "debug logs were written");
    assert_clean("the agent's logs", &log);
    let results = String::from_utf8_lossy(&results);
    assert!(
        results.contains("PROCESS_SERVICE_CHECK_RESULT"),
        "{results}"
    );
    assert_clean("the passive results", &results);
    assert!(
        metrics.contains("zkparity_pair_status{pair=\"secret\"}"),
        "{metrics}"
    );
    assert_clean("the Prometheus metrics", &metrics);
    assert!(!datagrams.is_empty(), "Ganglia datagrams were sent");
    assert_clean(
        "the Ganglia datagrams",
        &String::from_utf8_lossy(&datagrams),
    );
    let _ = std::fs::remove_dir_all(&fx.dir);
}

// ---------------------------------------------------------------------------
// Refusals before any server is asked: a malformed JAAS file, auth file,
// environment variable or connect string names its file, line and key, and
// never the value. Every front end is tried: compare, check parity (its
// Nagios status line), and the agent (--check-config and a start, whose
// stderr is its journal).

/// Where nothing listens: every case here fails before connecting.
const NOWHERE: [&str; 2] = ["127.0.0.1:1", "127.0.0.1:2"];

fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("zkparity-secrets-{name}-"))
        .tempdir()
        .expect("a scratch directory")
}

fn private_file(path: &std::path::Path, content: &str) -> String {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// A DIGEST-MD5 client section whose line 4 is `line4`.
fn jaas_with(dir: &std::path::Path, line4: &str) -> String {
    private_file(
        &dir.join("client.jaas"),
        &format!(
            "Client {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
             username=\"bob\"\n  {line4}\n}};\n"
        ),
    )
}

fn assert_names(what: &str, text: &str, wants: &[&str]) {
    for want in wants {
        assert!(text.contains(want), "{what} does not say {want:?}:\n{text}");
    }
}

/// `compare` and `check parity` with `flags` (sources and targets
/// included), then the agent with a pair of `pair_keys`, and `env` for the
/// two commands: each refuses, shows no secret, and says all of `wants`.
fn refused_everywhere(
    dir: &std::path::Path,
    sides: [&str; 2],
    flags: &[&str],
    env: &[(&str, &str)],
    pair_keys: Option<&str>,
    wants: &[&str],
) {
    let mut args = vec!["compare", "--source", sides[0], "--target", sides[1]];
    args.extend_from_slice(flags);
    let r = zkparity_env(&args, env);
    assert_eq!(r.code, 2, "compare: {}{}", r.stdout, r.stderr);
    let all = r.stdout + &r.stderr;
    assert_clean("compare's error", &all);
    assert_names("compare's error", &all, wants);

    let mut args = vec![
        "check", "parity", "--source", sides[0], "--target", sides[1],
    ];
    args.extend_from_slice(flags);
    let r = zkparity_env(&args, env);
    assert_eq!(r.code, 3, "check parity: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("PARITY UNKNOWN - "), "{}", r.stdout);
    assert_clean("check parity's status line", &r.stdout);
    assert_clean("check parity's stderr", &r.stderr);
    let status = r.stdout.lines().next().unwrap_or_default();
    assert_names("check parity's status line", status, wants);

    let Some(pair_keys) = pair_keys else { return };
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[[pair]]\nname = \"p\"\n{pair_keys}\n",
            dir.display().to_string()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    for args in [
        vec!["agent", "--config", &config, "--check-config"],
        vec!["agent", "--config", &config],
    ] {
        let r = zkparity(&args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        let all = r.stdout + &r.stderr;
        assert_clean("the agent's journal", &all);
        assert_names("the agent's journal", &all, wants);
        assert_names("the agent's journal", &all, &[&config]);
    }
}

#[test]
fn a_jaas_password_without_its_equals_sign_is_never_echoed() {
    for (line4, found) in [
        (format!("password \"{PASSWORD}\";"), "found a quoted string"),
        (format!("password '{PASSWORD}';"), "found a quoted string"),
        (format!("password {PASSWORD};"), "found a word"),
    ] {
        let dir = scratch("jaas-equals");
        let jaas = jaas_with(dir.path(), &line4);
        refused_everywhere(
            dir.path(),
            NOWHERE,
            &["--source-jaas", &jaas],
            &[],
            Some(&format!(
                "source = \"{}\"\ntarget = \"{}\"\nsource_jaas = {jaas:?}",
                NOWHERE[0], NOWHERE[1]
            )),
            &[&jaas, "line 4", "expected '=' after password", found],
        );
    }
}

#[test]
fn jaas_values_out_of_place_are_never_echoed() {
    for (line4, wants) in [
        // A space in an unquoted password: its tail stands where a key
        // should.
        (
            format!("password=x {PASSWORD};"),
            ["line 4", "expected '=' after an option name"],
        ),
        // A second quoted string after a value.
        (
            format!("password=\"x\" \"{PASSWORD}\";"),
            ["line 4", "expected an option key=value or ';'"],
        ),
        // A ';' inside an unquoted password.
        (
            format!("password=x;{PASSWORD};"),
            ["line 4", "expected a control flag"],
        ),
        // A quote never closed.
        (
            format!("password=\"{PASSWORD};"),
            ["line 4", "quoted value never closed"],
        ),
        (
            format!("password=;{PASSWORD}"),
            ["line 4", "expected a value for password"],
        ),
    ] {
        let dir = scratch("jaas-tokens");
        let jaas = jaas_with(dir.path(), &line4);
        let mut all = wants.to_vec();
        all.push(&jaas);
        refused_everywhere(
            dir.path(),
            NOWHERE,
            &["--target-jaas", &jaas],
            &[],
            Some(&format!(
                "source = \"{}\"\ntarget = \"{}\"\ntarget_jaas = {jaas:?}",
                NOWHERE[0], NOWHERE[1]
            )),
            &all,
        );
    }
}

#[test]
fn a_malformed_auth_file_names_the_file_and_never_its_content() {
    for (content, mode, says) in [
        (format!("{PASSWORD}\n"), 0o600, "user:password"),
        (
            format!("bob:{PASSWORD}\nbob:{PASSWORD}\n"),
            0o600,
            "several",
        ),
        (format!("bob:{PASSWORD}\n"), 0o644, "chmod 600"),
    ] {
        let dir = scratch("auth-file");
        let auth = private_file(&dir.path().join("bob.auth"), &content);
        std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(mode)).unwrap();
        refused_everywhere(
            dir.path(),
            NOWHERE,
            &["--source-auth-file", &auth],
            &[],
            Some(&format!(
                "source = \"{}\"\ntarget = \"{}\"\nsource_auth_file = {auth:?}",
                NOWHERE[0], NOWHERE[1]
            )),
            &[&auth, says],
        );
    }
}

#[test]
fn credentials_given_in_place_of_their_file_are_never_echoed() {
    let dir = scratch("auth-name");
    let given = format!("bob:{PASSWORD}");
    refused_everywhere(
        dir.path(),
        NOWHERE,
        &["--target-auth-file", &given],
        &[],
        Some(&format!(
            "source = \"{}\"\ntarget = \"{}\"\ntarget_auth_file = {given:?}",
            NOWHERE[0], NOWHERE[1]
        )),
        &["credentials file", "looks like user:password"],
    );
}

#[test]
fn malformed_auth_in_the_environment_names_the_variable_only() {
    let dir = scratch("auth-env");
    for value in [PASSWORD.to_string(), format!("bob:{PASSWORD}\nbob:x")] {
        refused_everywhere(
            dir.path(),
            NOWHERE,
            &[],
            &[("ZKPARITY_SOURCE_AUTH", &value)],
            None,
            &["ZKPARITY_SOURCE_AUTH", "user:password"],
        );
    }
}

#[test]
fn a_connect_string_with_credentials_is_refused_without_them() {
    let dir = scratch("connect-at");
    for bad in [
        format!("bob:{PASSWORD}@127.0.0.1:1"),
        format!("bob:{PASSWORD}@127.0.0.1:1,127.0.0.1:3/kafka"),
        format!("zk://bob:{PASSWORD}@127.0.0.1:1"),
        format!("bob:{PASSWORD}/x@127.0.0.1:1"),
    ] {
        let wants = ["'@' found", "--source-auth-file", "<not shown>@127.0.0.1:"];
        refused_everywhere(
            dir.path(),
            [bad.as_str(), NOWHERE[1]],
            &[],
            &[],
            Some(&format!("source = {bad:?}\ntarget = \"{}\"", NOWHERE[1])),
            &wants,
        );
        refused_everywhere(
            dir.path(),
            [NOWHERE[0], bad.as_str()],
            &[],
            &[],
            Some(&format!("source = \"{}\"\ntarget = {bad:?}", NOWHERE[0])),
            &wants,
        );
        // Nor does the probe, which asks servers itself.
        let r = zkparity(&["probe", "--source", &bad]);
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        assert_clean("probe's error", &(r.stdout + &r.stderr));
    }
}
