//! Test harness: real ZooKeeper 3.8 servers from Debian's jars, started once
//! per test binary; tests isolate themselves under unique paths.
#![allow(dead_code)]

pub mod nagios;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zkparity_sandbox::{guarded_command, Ensemble, ServerOptions, ZkServer};
use zookeeper_client as zk;

pub struct Pair {
    pub source: ZkServer,
    pub target: ZkServer,
}

/// A standalone source and target, shared by every test of the binary.
pub fn pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| {
        let a = std::thread::spawn(|| ZkServer::start_standalone(&ServerOptions::default()));
        let b = ZkServer::start_standalone(&ServerOptions::default()).expect("start target");
        let a = a.join().expect("join").expect("start source");
        Pair {
            source: a,
            target: b,
        }
    })
}

/// A standalone server of the test's own (to stop, restart or count whole),
/// started off the async runtime.
pub async fn own_server() -> ZkServer {
    tokio::task::spawn_blocking(|| ZkServer::start_standalone(&ServerOptions::default()))
        .await
        .expect("server starter")
        .expect("a standalone server of its own starts")
}

/// A loopback TCP port nothing listens on.
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// A path no other test uses.
pub fn unique_path(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("/t-{name}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The shared pair and a session on each side: how most tests begin.
pub async fn pair_clients() -> (&'static Pair, zk::Client, zk::Client) {
    let p = pair();
    let (s, t) = (client(&p.source).await, client(&p.target).await);
    (p, s, t)
}

/// A session that writes as `release` understands (3.4 knows no Create2).
pub async fn release_session(release: zkparity_sandbox::Release, server: &ZkServer) -> zk::Client {
    let mut c = zk::Client::connector().with_session_timeout(Duration::from_secs(10));
    if !release.is_3_5_or_later() {
        c = c.with_server_version(3, 4, 6);
    }
    c.connect(&server.connect_string())
        .await
        .unwrap_or_else(|e| panic!("a {release} session: {e}"))
}

pub async fn client(server: &ZkServer) -> zk::Client {
    connect(&server.connect_string()).await
}

pub async fn connect(connect: &str) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(std::time::Duration::from_secs(10))
        .connect(connect)
        .await
        .expect("test client connects")
}

pub fn open() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

pub async fn create(c: &zk::Client, path: &str, data: &[u8]) {
    c.create(path, data, &open())
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e}"));
}

/// Creates `root` and `(relative path, data)` nodes below it, parents first.
pub async fn tree(c: &zk::Client, root: &str, nodes: &[(&str, &[u8])]) {
    create(c, root, b"").await;
    for (rel, data) in nodes {
        create(c, &format!("{root}/{rel}"), data).await;
    }
}

/// `root` with `n` children `c00000..` holding `value`, on both sides;
/// returns the children's paths.
pub async fn wide_tree(
    s: &zk::Client,
    t: &zk::Client,
    root: &str,
    n: usize,
    value: &[u8],
) -> Vec<String> {
    let children: Vec<String> = (0..n).map(|i| format!("{root}/c{i:05}")).collect();
    for c in [s, t] {
        zkparity_sandbox::seed::ensure_path(c, root).await.unwrap();
        zkparity_sandbox::seed::create_many(
            c,
            children.iter().map(|p| (p.clone(), value.to_vec())),
        )
        .await
        .unwrap();
    }
    children
}

/// The same tree on both sides.
pub async fn both(s: &zk::Client, t: &zk::Client, root: &str, nodes: &[(&str, &[u8])]) {
    tree(s, root, nodes).await;
    tree(t, root, nodes).await;
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

pub fn zkparity(args: &[&str]) -> Run {
    zkparity_env(args, &[])
}

/// The writer locks (of `repair --apply`, `sync --apply`) held at the
/// server's root for `path` or a subtree overlapping it.
pub async fn writer_locks(c: &zk::Client, path: &str) -> usize {
    let mut held = 0;
    for name in c.list_children("/").await.unwrap_or_default() {
        if !(name.starts_with("zkparity-writer-") && name.ends_with(".lock")) {
            continue;
        }
        let Ok((data, _)) = c.get_data(&format!("/{name}")).await else {
            continue;
        };
        let holder: serde_json::Value = serde_json::from_slice(&data).unwrap_or_default();
        let locked = holder["path"].as_str().unwrap_or_default();
        let overlaps = |a: &str, b: &str| {
            b == "/" || a == b || a.strip_prefix(b).is_some_and(|r| r.starts_with('/'))
        };
        if overlaps(locked, path) || overlaps(path, locked) {
            held += 1;
        }
    }
    held
}

/// Where the writes of this test binary keep their backups (not the
/// working directory, which is the source tree).
pub fn backup_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a backup directory"))
        .path()
}

pub fn zkparity_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_zkparity"))
        .args(args)
        .env_remove("ZKPARITY_SOURCE_AUTH")
        .env_remove("ZKPARITY_TARGET_AUTH")
        .env("ZKPARITY_BACKUP_DIR", backup_dir())
        .envs(env.iter().copied())
        .output()
        .expect("run zkparity");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `zkparity agent --config CONFIG` under the sandbox's watchdog (so no
/// agent outlives the test binary), stdin and stdout closed; the caller adds
/// the environment and stderr and starts it with `Guarded::spawn`.
pub fn agent_command(config: &Path) -> Command {
    let mut cmd = guarded_command(env!("CARGO_BIN_EXE_zkparity"), None);
    cmd.args(["agent", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Runs zkparity off the async runtime, so the test's own sessions keep
/// pinging (and their ephemerals stay) while it runs.
pub async fn run(args: &[&str]) -> Run {
    run_env(args, &[]).await
}

pub async fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let args = owned(args);
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        zkparity_env(&args, &env)
    })
    .await
    .expect("zkparity runner")
}

/// `zkparity compare --format json` between any two connect strings, every
/// difference re-checked at once; `extra` flags come last and win.
pub async fn compare_connects(source: &str, target: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "compare",
        "--source",
        source,
        "--target",
        target,
        "--format",
        "json",
        "--recheck-delay",
        "0s",
    ];
    args.extend_from_slice(extra);
    run(&args).await
}

/// The arguments of `zkparity compare --format json` of `path` between the
/// shared pair, listing every difference.
fn compare_args(path: &str, extra: &[&str]) -> Vec<String> {
    let p = pair();
    let mut args: Vec<String> = [
        "compare",
        "--source",
        &p.source.connect_string(),
        "--target",
        &p.target.connect_string(),
        "--path",
        path,
        "--format",
        "json",
        "--recheck-delay",
        "0s",
        "--limit",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Starts a compare (as [`compare_json`]) that runs while the test goes on
/// changing the trees; later flags win, e.g. `--recheck-delay 3s`.
pub fn compare_in_background(path: &str, extra: &[&str]) -> tokio::task::JoinHandle<Run> {
    let args = compare_args(path, extra);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        zkparity(&args)
    })
}

/// `zkparity compare --format json` of `path` between the shared pair:
/// exit code (0, 1 or 3 for incomplete; an error fails the test) and the
/// report.
pub async fn compare_json(path: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let run = compare_in_background(path, extra)
        .await
        .expect("zkparity runner");
    assert!(
        matches!(run.code, 0 | 1 | 3),
        "exit {}: {}{}",
        run.code,
        run.stdout,
        run.stderr
    );
    (run.code, run.json())
}

/// The differences of one kind, as JSON objects.
pub fn of_kind<'a>(report: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    report["differences"]
        .as_array()
        .expect("differences array")
        .iter()
        .filter(|d| d["kind"] == kind)
        .collect()
}

/// How many of `kind` the report counts; `unreadable` is not a difference
/// and has its own count.
pub fn count(report: &serde_json::Value, kind: &str) -> u64 {
    let n = match kind {
        "unreadable" => &report["summary"]["unreadable"],
        kind => &report["summary"]["differences"][kind],
    };
    n.as_u64().unwrap_or_else(|| panic!("no count for {kind}"))
}

/// A four-letter-word answer captured from a real server
/// (`tests/fixtures/4lw/NAME`).
pub fn captured_answer(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/4lw")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Zxid as `srvr` reports it.
pub fn zxid(server: &ZkServer) -> u64 {
    let out = zkparity_sandbox::four_letter_word(
        &server.connect_string(),
        "srvr",
        std::time::Duration::from_secs(5),
    )
    .expect("srvr");
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("Zxid: 0x"))
        .unwrap_or_else(|| panic!("no Zxid in {out}"));
    u64::from_str_radix(line.trim(), 16).expect("hex zxid")
}

/// A run's exit code and output, for assertion messages.
pub fn ctx(r: &Run) -> String {
    format!(
        "exit {}\nstdout: {}\nstderr: {}",
        r.code, r.stdout, r.stderr
    )
}

/// An ephemeral node, open to all; it lives as long as its session.
pub fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

pub fn seq() -> zk::CreateOptions<'static> {
    zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all())
}

/// `n` persistent sequential nodes `{prefix}NNNNNNNNNN` holding `data`
/// (`prefix` is a path, e.g. `/q/item-`).
pub async fn create_sequential(c: &zk::Client, prefix: &str, data: &[u8], n: usize) {
    for _ in 0..n {
        c.create(prefix, data, &seq())
            .await
            .unwrap_or_else(|e| panic!("create {prefix}: {e}"));
    }
}

/// Deletes the sequential nodes `{prefix}{i:010}`, `i` in `numbers`.
pub async fn delete_sequential(c: &zk::Client, prefix: &str, numbers: std::ops::Range<usize>) {
    for i in numbers {
        let path = format!("{prefix}{i:010}");
        c.delete(&path, None)
            .await
            .unwrap_or_else(|e| panic!("delete {path}: {e}"));
    }
}

/// Plain nodes named as sequential ones, `{prefix}{i:010}` for `i` in
/// `numbers`: what a copy tool leaves, with the parent's counter behind.
pub async fn copy_sequential(
    c: &zk::Client,
    prefix: &str,
    data: &[u8],
    numbers: std::ops::Range<usize>,
) {
    for i in numbers {
        create(c, &format!("{prefix}{i:010}"), data).await;
    }
}

/// Every node's Stat and data under a root, as one client sees it.
pub type Tree = BTreeMap<String, (zk::Stat, Vec<u8>)>;

pub async fn read_tree(c: &zk::Client, root: &str) -> Tree {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_string()];
    while let Some(path) = todo.pop() {
        let (data, stat) = match c.get_data(&path).await {
            Ok(read) => read,
            // Unreadable to this client: its Stat still shows any write.
            Err(zk::Error::NoAuth) => {
                let stat = c.check_stat(&path).await.unwrap().expect("exists");
                out.insert(path, (stat, Vec::new()));
                continue;
            }
            // Gone since its parent was listed (an ephemeral of a live
            // application): not part of the tree any more.
            Err(zk::Error::NoNode) => continue,
            Err(e) => panic!("get_data {path}: {e}"),
        };
        let children = match c.list_children(&path).await {
            Ok(children) => children,
            Err(zk::Error::NoNode) => continue,
            Err(e) => panic!("list_children {path}: {e}"),
        };
        todo.extend(children.iter().map(|name| format!("{path}/{name}")));
        out.insert(path, (stat, data));
    }
    out
}

/// Every member's zxid once they all agree and hold still.
pub async fn settled(e: &Ensemble, c: &zk::Client) -> Vec<u64> {
    c.sync("/").await.expect("sync");
    let deadline = Instant::now() + Duration::from_secs(15);
    let zxids = || e.servers.iter().map(zxid).collect::<Vec<u64>>();
    let mut last = zxids();
    loop {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let now = zxids();
        if now == last && now.iter().all(|z| *z == now[0]) {
            return now;
        }
        assert!(Instant::now() < deadline, "members never agreed: {now:x?}");
        last = now;
    }
}

/// An agent's `/metrics` on 127.0.0.1:`port` over plain HTTP/1.0, retried
/// for a few seconds while the endpoint is not answering yet; blocking.
pub fn scrape_metrics(port: u16) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if body.contains("zkparity_") || Instant::now() > deadline {
                return body;
            }
        } else if Instant::now() > deadline {
            return String::new();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
