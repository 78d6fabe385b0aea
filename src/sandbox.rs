//! Local ZooKeeper servers for `zkparity demo`, the integration tests and the
//! benchmark.
//!
//! The servers are Debian's ZooKeeper 3.8.0 jars run directly by `java`, one
//! JVM per server, each in its own directory with its own `zoo.cfg`, on free
//! loopback ports. Neither the packaged init scripts nor containers are used:
//! they assume one system-wide server in `/etc/zookeeper/conf`, while tests
//! need many throwaway servers that start in well under a second and can be
//! killed and restarted on the same port and data.
//!
//! A server counts as started only once it *serves*: `srvr` must report a
//! `Mode:` (`ruok` answers `imok` before that), and `conf` must report our own
//! client port and data directory, so that a test never talks to some other
//! ZooKeeper that happens to listen on the same machine.
//!
//! No JVM and no temporary directory may outlive the process that started
//! them, even when that process is SIGKILLed or is a test binary (which
//! never drops its statics). Three layers take care of that:
//! - each JVM is `exec`ed by a tiny `sh` wrapper that first forks a watchdog;
//!   within about half a second of the owner's death (or its becoming a
//!   zombie) the watchdog SIGKILLs the JVM and removes its temporary
//!   directory. The JVM keeps the wrapper's PID, so `stop()`/`kill()` signal
//!   the JVM itself;
//! - an `atexit` hook SIGKILLs every JVM still registered and removes the
//!   temporary directories, so a normal exit cleans up at once;
//! - `Drop` stops the server and removes its temporary directory.
//!
//! As a last resort, the first sandbox use in a process removes temporary
//! directories whose owner PID no longer exists.
//!
//! Each JVM leads its own process group (JVM + watchdog), so a terminal's
//! Ctrl-C reaches only the owner, and the group can be signalled as a whole.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default maximum heap of each server JVM, in MiB.
pub const DEFAULT_HEAP_MB: u32 = 512;
/// tickTime of every sandbox server: small, for fast elections and short
/// minimum session timeouts (2 × tickTime = 1 s).
pub const TICK_TIME_MS: u32 = 500;
/// How long a server (or an ensemble, as a whole) may take to start serving.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Environment variable overriding the classpath (e.g. jars extracted with
/// `dpkg -x` on a machine without the Debian package).
pub const CLASSPATH_ENV: &str = "ZKPARITY_ZK_CLASSPATH";
/// Environment variable naming the `java` binary to use.
pub const JAVA_ENV: &str = "ZKPARITY_JAVA";
/// Where Debian's `libzookeeper-java` and its dependencies put their jars.
pub const DEBIAN_JAR_DIR: &str = "/usr/share/java";

/// The jars ZooKeeperServerMain and QuorumPeerMain cannot start without:
/// metrics-core and snappy-java are referenced while loading, and a missing
/// snappy-java kills the main thread while the JVM keeps running.
const REQUIRED_JARS: [&str; 5] = [
    "zookeeper.jar",
    "zookeeper-jute.jar",
    "slf4j-api.jar",
    "metrics-core.jar",
    "snappy-java.jar",
];
/// Optional: without an slf4j binding, startup failures (such as a port
/// already in use) would leave nothing in the server log; without Netty a
/// server cannot serve TLS on a `secureClientPort` (Debian's netty-all.jar is
/// an empty shell; the classes are in the per-module jars).
const OPTIONAL_JARS: [&str; 9] = [
    "slf4j-simple.jar",
    "netty-buffer.jar",
    "netty-codec.jar",
    "netty-common.jar",
    "netty-handler.jar",
    "netty-resolver.jar",
    "netty-transport.jar",
    "netty-transport-native-unix-common.jar",
    "netty-transport-native-epoll.jar",
];

const STANDALONE_MAIN: &str = "org.apache.zookeeper.server.ZooKeeperServerMain";
const QUORUM_MAIN: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// How long a SIGTERMed JVM gets before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Ports are picked before the JVM binds them, so something else may take
/// one in between; that many fresh picks are tried.
const BIND_ATTEMPTS: usize = 3;
/// A probe that connects while the JVM is still starting sometimes gets no
/// answer at all (measured: 1 s of silence, while a new connection made then
/// is answered at once), so probes start short and lengthen only if the
/// server is merely slow.
const FIRST_PROBE_TIMEOUT: Duration = Duration::from_millis(250);
const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(4);
/// Written to the server log before each start: tails and bind-failure checks
/// look only at the current run.
const LOG_MARKER: &str = "--- zkparity sandbox: starting ";

/// The wrapper every JVM is started through:
/// `sh -c WATCHDOG_SH name OWNER_PID CLEANUP_DIR java ARGS…`.
///
/// The subshell is forked before `exec`, so inside it `$$` is the JVM's PID.
/// Processes are identified by PID *and* start time (field 22 of
/// `/proc/PID/stat`), so a reused PID is never taken for the owner nor
/// killed as the JVM. A zombie owner counts as dead: its parent may not have
/// reaped it yet. After killing the JVM it removes CLEANUP_DIR (if not
/// empty) once the JVM is gone: an owner killed by SIGKILL runs no exit hook
/// and would leave it behind. Without /proc it falls back to `kill -0`.
const WATCHDOG_SH: &str = r#"owner=$1; dir=$2; shift 2
(
  probe() {
    read -r s < "/proc/$1/stat" || return 1
    set -- ${s##*") "}
    case $1 in Z|X|x) return 1;; esac
    start=${20}
  }
  if [ -r /proc/self/stat ]; then
    owner_start=; probe "$owner" && owner_start=$start
    self_start=; probe $$ && self_start=$start
    alive() { probe "$1" && [ "$start" = "$2" ]; }
  else
    alive() { kill -0 "$1"; }
  fi
  while alive $$ "$self_start"; do
    if ! alive "$owner" "$owner_start"; then
      kill -9 $$
      n=0
      while alive $$ "$self_start" && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
      [ -n "$dir" ] && rm -rf -- "$dir"
      exit 0
    fi
    sleep 0.5
  done
) </dev/null >/dev/null 2>&1 &
exec "$@"
"#;

/// How a sandbox server is configured and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Maximum JVM heap (`-Xmx`), in MiB.
    pub heap_mb: u32,
    /// `-Djute.maxbuffer=`: the largest request/response the server accepts.
    pub jute_maxbuffer: Option<u32>,
    /// Extra `zoo.cfg` lines; a key that is already present replaces its
    /// value. Keys the sandbox relies on (dataDir, clientPort, server.N …)
    /// are refused.
    pub extra_config: Vec<(String, String)>,
    /// Where the server keeps `zoo.cfg`, `server.log` and `data/` (an ensemble
    /// uses `s1/`, `s2/` … below it). Kept after the server stops, so a loaded
    /// tree can be reused. `None`: a fresh temporary directory, removed when
    /// the server is dropped.
    pub base_dir: Option<PathBuf>,
    /// Extra JVM flags, placed after the sandbox's own.
    pub jvm_flags: Vec<String>,
    /// How long startup may take before it counts as failed.
    pub startup_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            heap_mb: DEFAULT_HEAP_MB,
            jute_maxbuffer: None,
            extra_config: Vec::new(),
            base_dir: None,
            jvm_flags: Vec::new(),
            startup_timeout: STARTUP_TIMEOUT,
        }
    }
}

/// Why a sandbox server could not be set up or started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "ZooKeeper jar {jar} not found in {}: run scripts/install-deps (installs Debian's \
         `zookeeper` package), or set {CLASSPATH_ENV}",
        dir.display()
    )]
    MissingJar { jar: String, dir: PathBuf },

    #[error("{}, listed in {CLASSPATH_ENV}, does not exist", path.display())]
    ClasspathEntryMissing { path: PathBuf },

    #[error("no java runtime found (looked at {searched}): run scripts/install-deps")]
    JavaNotFound { searched: String },

    #[error("zoo.cfg key {key:?} is set by the sandbox itself and cannot be overridden")]
    ManagedConfigKey { key: String },

    #[error("invalid zoo.cfg entry {key:?}={value:?}: {reason}")]
    BadConfigEntry {
        key: String,
        value: String,
        reason: String,
    },

    #[error("an ensemble needs at least one server, got {size}")]
    BadEnsembleSize { size: usize },

    #[error("no free loopback port found after {tries} tries: {source}")]
    NoFreePort { tries: usize, source: io::Error },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error("cannot start java for the ZooKeeper server on port {port}: {source}")]
    Spawn { port: u16, source: io::Error },

    #[error(
        "port {port} was taken by another process before ZooKeeper could bind it \
         ({attempts} attempt(s) with fresh ports); end of {}:\n{tail}",
        log.display()
    )]
    PortTaken {
        port: u16,
        log: PathBuf,
        attempts: usize,
        tail: String,
    },

    #[error(
        "ZooKeeper on port {port} exited during startup ({status}); end of {}:\n{tail}",
        log.display()
    )]
    Exited {
        port: u16,
        status: String,
        log: PathBuf,
        tail: String,
    },

    #[error(
        "ZooKeeper on port {port} was not serving after {waited:?} (last answer: {last}); \
         end of {}:\n{tail}",
        log.display()
    )]
    NotServing {
        port: u16,
        waited: Duration,
        last: String,
        log: PathBuf,
        tail: String,
    },

    #[error(
        "port {port} is answered by another ZooKeeper ({detail}), not by the one using {}",
        data_dir.display()
    )]
    WrongServer {
        port: u16,
        data_dir: PathBuf,
        detail: String,
    },

    #[error("ensemble {connect} has no single leader after {waited:?}: {modes}")]
    NoLeader {
        connect: String,
        waited: Duration,
        modes: String,
    },
}

impl SandboxError {
    fn io(path: &Path, source: io::Error) -> Self {
        SandboxError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// One quorum member's ports, as written into every member's `server.N` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Peer {
    id: u32,
    quorum_port: u16,
    election_port: u16,
    client_port: u16,
}

/// Everything that goes into one server's `zoo.cfg`.
struct ZooCfg<'a> {
    data_dir: &'a Path,
    client_port: u16,
    /// `None`: standalone.
    peers: Option<&'a [Peer]>,
    extra: &'a [(String, String)],
}

/// Keys whose values the readiness checks or the port bookkeeping depend on.
fn is_managed_key(key: &str) -> bool {
    matches!(
        key,
        "dataDir"
            | "clientPort"
            | "clientPortAddress"
            | "dynamicConfigFile"
            | "4lw.commands.whitelist"
            | "standaloneEnabled"
    ) || key.starts_with("server.")
}

fn check_extra_config(extra: &[(String, String)]) -> Result<(), SandboxError> {
    for (key, value) in extra {
        let bad = |reason: &str| SandboxError::BadConfigEntry {
            key: key.clone(),
            value: value.clone(),
            reason: reason.to_string(),
        };
        if key.trim().is_empty() {
            return Err(bad("empty key"));
        }
        if key.contains(['=', ':', ' ', '\t', '#', '!']) {
            return Err(bad("the key contains a separator or comment character"));
        }
        if key.contains(['\n', '\r']) || value.contains(['\n', '\r']) {
            return Err(bad("line breaks would start a new entry"));
        }
        if is_managed_key(key) {
            return Err(SandboxError::ManagedConfigKey { key: key.clone() });
        }
    }
    Ok(())
}

/// zoo.cfg is read with java.util.Properties, where a backslash escapes.
fn cfg_value(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "\\\\")
}

fn render_zoo_cfg(cfg: &ZooCfg<'_>) -> Result<String, SandboxError> {
    check_extra_config(cfg.extra)?;
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| entries.push((k.to_string(), v));
    put("tickTime", TICK_TIME_MS.to_string());
    put("dataDir", cfg_value(cfg.data_dir));
    match cfg.peers {
        None => {
            put("clientPort", cfg.client_port.to_string());
            put("clientPortAddress", "127.0.0.1".to_string());
        }
        Some(_) => {
            put("initLimit", "10".to_string());
            put("syncLimit", "5".to_string());
        }
    }
    // srvr and conf are the readiness checks; jetty is not on the classpath;
    // tests open many sessions from one address; nobody needs fsync here.
    put("4lw.commands.whitelist", "*".to_string());
    put("admin.enableServer", "false".to_string());
    put("maxClientCnxns", "0".to_string());
    put("forceSync", "no".to_string());
    if let Some(peers) = cfg.peers {
        put("reconfigEnabled", "true".to_string());
        put("standaloneEnabled", "false".to_string());
        // Read-only sessions against a 3.8.0 server fail without these.
        put("localSessionsEnabled", "true".to_string());
        put("localSessionsUpgradingEnabled", "true".to_string());
        for p in peers {
            put(
                &format!("server.{}", p.id),
                format!(
                    "127.0.0.1:{}:{}:participant;127.0.0.1:{}",
                    p.quorum_port, p.election_port, p.client_port
                ),
            );
        }
    }
    for (key, value) in cfg.extra {
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.clone(),
            None => entries.push((key.clone(), value.clone())),
        }
    }
    let mut out = String::from("# Written by zkparity's sandbox; rewritten at every start.\n");
    for (k, v) in entries {
        out.push_str(&k);
        out.push('=');
        out.push_str(&v);
        out.push('\n');
    }
    Ok(out)
}

/// JVM flags, measured on 2 cores: `-XX:TieredStopAtLevel=1` starts ~30 ms
/// faster (of ~220 ms) but cuts multi-read throughput by about a third, and
/// `-XX:+UseSerialGC` changes neither measurably, so neither is used.
/// `-XX:-UsePerfData` keeps a SIGKILLed JVM from leaving its
/// `/tmp/hsperfdata_*/PID` file behind.
fn jvm_args(opts: &ServerOptions, quorum: bool) -> Vec<String> {
    let mut args = vec![
        format!("-Xmx{}m", opts.heap_mb),
        "-XX:-UsePerfData".to_string(),
        "-Dzookeeper.jmx.log4j.disable=true".to_string(),
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn".to_string(),
        "-Dorg.slf4j.simpleLogger.showDateTime=true".to_string(),
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS".to_string(),
    ];
    if let Some(n) = opts.jute_maxbuffer {
        args.push(format!("-Djute.maxbuffer={n}"));
    }
    if quorum {
        args.push("-Dreadonlymode.enabled=true".to_string());
    }
    args.extend(opts.jvm_flags.iter().cloned());
    args
}

/// The minimal classpath for a ZooKeeper 3.8 server: `$ZKPARITY_ZK_CLASSPATH`
/// if set (every entry must exist), otherwise the Debian jars in
/// `/usr/share/java`.
pub fn zookeeper_classpath() -> Result<String, SandboxError> {
    match std::env::var_os(CLASSPATH_ENV) {
        Some(v) if !v.is_empty() => classpath_from_env(&v.to_string_lossy()),
        _ => classpath_from_dir(Path::new(DEBIAN_JAR_DIR)),
    }
}

/// The minimal classpath from the jars in `dir` (named as Debian names them).
pub fn classpath_from_dir(dir: &Path) -> Result<String, SandboxError> {
    let mut parts = Vec::new();
    for jar in REQUIRED_JARS {
        let path = dir.join(jar);
        if !path.is_file() {
            return Err(SandboxError::MissingJar {
                jar: jar.to_string(),
                dir: dir.to_path_buf(),
            });
        }
        parts.push(path.to_string_lossy().into_owned());
    }
    for jar in OPTIONAL_JARS {
        let path = dir.join(jar);
        if path.is_file() {
            parts.push(path.to_string_lossy().into_owned());
        }
    }
    Ok(parts.join(":"))
}

fn classpath_from_env(value: &str) -> Result<String, SandboxError> {
    for entry in value.split(':').filter(|e| !e.is_empty()) {
        // `dir/*` is a Java classpath wildcard: the directory must exist.
        let path = Path::new(entry.strip_suffix("/*").unwrap_or(entry));
        if !path.exists() {
            return Err(SandboxError::ClasspathEntryMissing {
                path: PathBuf::from(entry),
            });
        }
    }
    Ok(value.to_string())
}

/// The `java` to run: `$ZKPARITY_JAVA`, `$JAVA_HOME/bin/java`, or `java` on PATH.
pub fn find_java() -> Result<PathBuf, SandboxError> {
    if let Some(j) = std::env::var_os(JAVA_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(j);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(SandboxError::JavaNotFound {
                searched: format!("{JAVA_ENV}={}", p.display()),
            })
        };
    }
    if let Some(home) = std::env::var_os("JAVA_HOME").filter(|v| !v.is_empty()) {
        let p = Path::new(&home).join("bin/java");
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("java");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(SandboxError::JavaNotFound {
        searched: format!("${JAVA_ENV}, $JAVA_HOME/bin/java and PATH"),
    })
}

/// Sends a ZooKeeper four-letter word (`ruok`, `srvr`, `conf`, `mntr` …) and
/// returns everything the server writes before closing the connection.
/// `timeout` bounds the whole exchange.
pub fn four_letter_word(addr: &str, word: &str, timeout: Duration) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    let sock_addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr}: no address to connect to"),
        )
    })?;
    let mut stream = TcpStream::connect_timeout(&sock_addr, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(word.as_bytes())?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{addr} did not finish answering {word:?} within {timeout:?}"),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The value of `Mode:` in a `srvr` answer (standalone, leader, follower,
/// observer, read-only).
pub fn parse_mode(srvr: &str) -> Option<&str> {
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(str::trim)
}

fn conf_value<'a>(conf: &'a str, key: &str) -> Option<&'a str> {
    conf.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// Checks that a `conf` answer comes from the server on `port` using
/// `data_dir`. `Ok(false)`: not serving yet (no configuration in the answer).
fn check_conf(conf: &str, port: u16, data_dir: &Path) -> Result<bool, SandboxError> {
    let Some(client_port) = conf_value(conf, "clientPort") else {
        return Ok(false);
    };
    let wrong = |detail: String| SandboxError::WrongServer {
        port,
        data_dir: data_dir.to_path_buf(),
        detail,
    };
    if client_port != port.to_string() {
        return Err(wrong(format!("conf says clientPort={client_port}")));
    }
    match conf_value(conf, "dataDir") {
        Some(dir) if Path::new(dir).starts_with(data_dir) => Ok(true),
        Some(dir) => Err(wrong(format!("conf says dataDir={dir}"))),
        None => Ok(false),
    }
}

// ---------------------------------------------------------------------------
// Process and temporary-directory bookkeeping for the exit hook.

/// PIDs (= process groups) of the JVMs started by this process and not yet reaped.
static LIVE_JVMS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Temporary directories made by this process and not yet removed.
static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static EXIT_HOOK: Once = Once::new();
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
/// Ports recently handed out but perhaps not bound yet by their JVM, so that
/// two servers started at the same moment never get the same one.
static RECENT_PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Like `lock`, but gives up after a while: at exit, a thread that holds the
/// lock may never run again.
fn lock_at_exit<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}

fn ensure_exit_hook() {
    EXIT_HOOK.call_once(|| {
        // SAFETY: registering a plain extern "C" function that never unwinds.
        unsafe {
            libc::atexit(cleanup_at_exit);
        }
        sweep_stale_temp_dirs(&std::env::temp_dir());
    });
}

/// Removes the temporary directories of earlier processes that died without
/// cleaning up (SIGKILL runs no exit hook). Their JVMs are gone already: the
/// watchdog kills them within half a second of their owner's death.
fn sweep_stale_temp_dirs(base: &Path) {
    // Without /proc a live owner cannot be told from a dead one.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

extern "C" fn cleanup_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let pids: Vec<i32> = lock_at_exit(&LIVE_JVMS)
            .map(|g| g.clone())
            .unwrap_or_default();
        for &pid in &pids {
            signal_group(pid, libc::SIGKILL);
        }
        // Reap them, so no file is still being written while the
        // directories are removed.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut left = pids;
        while !left.is_empty() && Instant::now() < deadline {
            left.retain(|&pid| {
                // SAFETY: waitpid on our own child with WNOHANG.
                let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
                r == 0
            });
            if !left.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if let Some(dirs) = lock_at_exit(&TEMP_DIRS) {
            for dir in dirs.iter() {
                let _ = fs::remove_dir_all(dir);
            }
        }
    });
}

/// Signals the JVM's process group (JVM + watchdog); only valid while the JVM
/// is not yet reaped, since until then its PID cannot be reused.
fn signal_group(pid: i32, sig: libc::c_int) {
    // SAFETY: plain kill(2) calls.
    unsafe {
        if libc::kill(-pid, sig) != 0 {
            libc::kill(pid, sig);
        }
    }
}

fn unregister_jvm(pid: i32) {
    lock(&LIVE_JVMS).retain(|&p| p != pid);
}

/// Every temporary directory is named `{TEMP_PREFIX}{owner pid}-…`, so a later
/// process can tell whose it was.
const TEMP_PREFIX: &str = "zkparity-sandbox-";

/// A fresh directory under the system temp dir, removed at exit if still there.
fn make_temp_dir(label: &str) -> Result<PathBuf, SandboxError> {
    ensure_exit_hook();
    let base = std::env::temp_dir();
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!(
            "{TEMP_PREFIX}{}-{n}-{nanos}-{label}",
            std::process::id()
        ));
        let mut dirs = lock(&TEMP_DIRS);
        match fs::create_dir(&dir) {
            Ok(()) => {
                dirs.push(dir.clone());
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(SandboxError::io(&dir, e)),
        }
    }
}

fn remove_temp_dir(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    lock(&TEMP_DIRS).retain(|d| d != dir);
}

/// `n` distinct loopback ports that were free a moment ago and that nothing
/// answers on.
pub fn free_ports(n: usize) -> Result<Vec<u16>, SandboxError> {
    let mut recent = lock(&RECENT_PORTS);
    let max_tries = 20 * n + 20;
    let mut tries = 0;
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        // Holding the listeners until the batch is picked keeps the kernel
        // from handing out one port twice.
        let mut held = Vec::new();
        let mut batch = Vec::new();
        while ports.len() + batch.len() < n {
            tries += 1;
            if tries > max_tries {
                return Err(SandboxError::NoFreePort {
                    tries,
                    source: io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "every port offered was recently used or answered",
                    ),
                });
            }
            let no_port = |source| SandboxError::NoFreePort { tries, source };
            let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(no_port)?;
            let port = listener.local_addr().map_err(no_port)?.port();
            if !recent.contains(&port) && !ports.contains(&port) && !batch.contains(&port) {
                held.push(listener);
                batch.push(port);
            }
        }
        drop(held);
        // Something listening on the wildcard address would still answer.
        ports.extend(batch.into_iter().filter(|&p| !answers(p)));
    }
    recent.extend_from_slice(&ports);
    let excess = recent.len().saturating_sub(4096);
    recent.drain(..excess);
    Ok(ports)
}

fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// The `sh` command that starts `program args…` under the watchdog of `owner`.
fn watched_command(
    owner: u32,
    cleanup_dir: Option<&Path>,
    program: &Path,
    args: &[String],
) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(WATCHDOG_SH)
        .arg("zkparity-watchdog")
        .arg(owner.to_string())
        .arg(cleanup_dir.map_or(std::ffi::OsStr::new(""), Path::as_os_str))
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .process_group(0);
    cmd
}

/// The last lines of the current run's log.
fn log_tail(log: &Path) -> String {
    let text = current_run_log(log);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(40);
    let mut tail = lines[start..].join("\n");
    if tail.len() > 8000 {
        let mut cut = tail.len() - 8000;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = tail[cut..].to_string();
    }
    if tail.trim().is_empty() {
        "(empty)".to_string()
    } else {
        tail
    }
}

fn current_run_log(log: &Path) -> String {
    let bytes = fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    match text.rfind(LOG_MARKER) {
        Some(i) => text[i..].to_string(),
        None => text.into_owned(),
    }
}

fn log_shows_bind_failure(log: &Path) -> bool {
    let text = current_run_log(log);
    text.contains("Address already in use") || text.contains("BindException")
}

// ---------------------------------------------------------------------------

/// One ZooKeeper server JVM (standalone or a quorum member).
#[derive(Debug)]
pub struct ZkServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    data_dir: PathBuf,
    cfg_path: PathBuf,
    log_path: PathBuf,
    /// Rewritten before every start: in quorum mode ZooKeeper rewrites zoo.cfg
    /// itself (it moves the server lines into a dynamic config file).
    cfg_text: String,
    main_class: &'static str,
    java: PathBuf,
    jvm_args: Vec<String>,
    classpath: String,
    startup_timeout: Duration,
    /// Set when the directory is ours to remove.
    temp_dir: Option<PathBuf>,
}

impl ZkServer {
    /// Starts a standalone server (`ZooKeeperServerMain`) on a free loopback
    /// port and waits until it serves.
    pub fn start_standalone(opts: &ServerOptions) -> Result<ZkServer, SandboxError> {
        check_extra_config(&opts.extra_config)?;
        let classpath = zookeeper_classpath()?;
        let java = find_java()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_ports(1)?[0];
            let (dir, temp_dir) = match &opts.base_dir {
                Some(d) => (absolute(d)?, None),
                None => {
                    let t = make_temp_dir("standalone")?;
                    (t.clone(), Some(t))
                }
            };
            let mut server = ZkServer::prepare(
                dir,
                temp_dir,
                port,
                None,
                opts,
                java.clone(),
                classpath.clone(),
            )?;
            server.spawn()?;
            let deadline = Instant::now() + opts.startup_timeout;
            match server.wait_serving(deadline) {
                Ok(_) => return Ok(server),
                Err(e) if server.retryable(&e) => {
                    if attempt >= BIND_ATTEMPTS {
                        return Err(SandboxError::PortTaken {
                            port,
                            log: server.log_path.clone(),
                            attempts: attempt,
                            tail: log_tail(&server.log_path),
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates the directories and renders zoo.cfg (and myid for a quorum member).
    fn prepare(
        dir: PathBuf,
        temp_dir: Option<PathBuf>,
        port: u16,
        quorum: Option<(u32, &[Peer])>,
        opts: &ServerOptions,
        java: PathBuf,
        classpath: String,
    ) -> Result<ZkServer, SandboxError> {
        // Built first, so that an error below still removes a temp dir.
        let mut server = ZkServer {
            child: None,
            port,
            data_dir: dir.join("data"),
            cfg_path: dir.join("zoo.cfg"),
            log_path: dir.join("server.log"),
            dir,
            cfg_text: String::new(),
            main_class: if quorum.is_some() {
                QUORUM_MAIN
            } else {
                STANDALONE_MAIN
            },
            java,
            jvm_args: jvm_args(opts, quorum.is_some()),
            classpath,
            startup_timeout: opts.startup_timeout,
            temp_dir,
        };
        fs::create_dir_all(&server.data_dir).map_err(|e| SandboxError::io(&server.data_dir, e))?;
        if let Some((id, _)) = quorum {
            let myid = server.data_dir.join("myid");
            fs::write(&myid, format!("{id}\n")).map_err(|e| SandboxError::io(&myid, e))?;
        }
        server.cfg_text = render_zoo_cfg(&ZooCfg {
            data_dir: &server.data_dir,
            client_port: port,
            peers: quorum.map(|(_, peers)| peers),
            extra: &opts.extra_config,
        })?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), SandboxError> {
        ensure_exit_hook();
        fs::write(&self.cfg_path, &self.cfg_text)
            .map_err(|e| SandboxError::io(&self.cfg_path, e))?;
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| SandboxError::io(&self.log_path, e))?;
        writeln!(
            log,
            "{LOG_MARKER}{} on 127.0.0.1:{} ---",
            self.main_class, self.port
        )
        .map_err(|e| SandboxError::io(&self.log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| SandboxError::io(&self.log_path, e))?;
        let mut args = self.jvm_args.clone();
        args.push("-cp".to_string());
        args.push(self.classpath.clone());
        args.push(self.main_class.to_string());
        args.push(self.cfg_path.to_string_lossy().into_owned());
        let mut cmd = watched_command(
            std::process::id(),
            self.temp_dir.as_deref(),
            &self.java,
            &args,
        );
        cmd.current_dir(&self.dir).stdout(log).stderr(log_err);
        // Registered under the lock, so the exit hook cannot miss a JVM that
        // is being started.
        let mut live = lock(&LIVE_JVMS);
        let child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            port: self.port,
            source,
        })?;
        live.push(child.id() as i32);
        drop(live);
        self.child = Some(child);
        Ok(())
    }

    /// Polls until `srvr` reports a mode and `conf` shows this server's port
    /// and dataDir. Returns the `srvr` answer.
    fn wait_serving(&mut self, deadline: Instant) -> Result<String, SandboxError> {
        let started = Instant::now();
        let addr = self.connect_string();
        let mut pause = Duration::from_millis(10);
        let mut probe_timeout = FIRST_PROBE_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let pid = child.id() as i32;
                    self.child = None;
                    unregister_jvm(pid);
                    return Err(SandboxError::Exited {
                        port: self.port,
                        status: status.to_string(),
                        log: self.log_path.clone(),
                        tail: log_tail(&self.log_path),
                    });
                }
            } else {
                return Err(SandboxError::Exited {
                    port: self.port,
                    status: "not running".to_string(),
                    log: self.log_path.clone(),
                    tail: log_tail(&self.log_path),
                });
            }
            let probe = four_letter_word(&addr, "srvr", probe_timeout).and_then(|srvr| {
                if parse_mode(&srvr).is_some() {
                    let conf = four_letter_word(&addr, "conf", probe_timeout)?;
                    Ok((srvr, Some(conf)))
                } else {
                    Ok((srvr, None))
                }
            });
            let last = match probe {
                Ok((srvr, Some(conf))) => {
                    if check_conf(&conf, self.port, &self.data_dir)? {
                        return Ok(srvr);
                    }
                    first_line(&conf)
                }
                Ok((srvr, None)) => first_line(&srvr),
                Err(e) => {
                    if is_timeout(&e) {
                        probe_timeout = (probe_timeout * 2).min(MAX_PROBE_TIMEOUT);
                    }
                    e.to_string()
                }
            };
            if Instant::now() >= deadline {
                return Err(SandboxError::NotServing {
                    port: self.port,
                    waited: started.elapsed(),
                    last,
                    log: self.log_path.clone(),
                    tail: log_tail(&self.log_path),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 3 / 2).min(Duration::from_millis(100));
        }
    }

    /// A startup failure that a fresh port may fix.
    fn retryable(&self, e: &SandboxError) -> bool {
        match e {
            SandboxError::WrongServer { .. } => true,
            SandboxError::Exited { .. } | SandboxError::NotServing { .. } => {
                log_shows_bind_failure(&self.log_path)
            }
            _ => false,
        }
    }

    /// The client port, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// ZooKeeper's dataDir (snapshots and transaction logs under `version-2/`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory holding zoo.cfg, server.log and the dataDir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The JVM's stdout and stderr, appended to across restarts.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The JVM's PID while it has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The `Mode:` this server reports right now (`None` if it does not answer
    /// or does not serve).
    pub fn mode(&self) -> Option<String> {
        let srvr = four_letter_word(&self.connect_string(), "srvr", Duration::from_secs(2)).ok()?;
        parse_mode(&srvr).map(str::to_string)
    }

    /// SIGTERM, then SIGKILL after 5 s; returns once the JVM is reaped.
    /// Does nothing if it is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as i32;
        // The whole group, so the watchdog goes too.
        signal_group(pid, libc::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    signal_group(pid, libc::SIGKILL);
                    let _ = child.wait();
                    break;
                }
            }
        }
        unregister_jvm(pid);
    }

    /// SIGKILL now (a crash, for fault tests); returns once the JVM is reaped.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as i32;
        signal_group(pid, libc::SIGKILL);
        let _ = child.wait();
        unregister_jvm(pid);
    }

    /// Stops the server if it runs, starts it again on the same port with
    /// the same dataDir, and waits until it serves.
    pub fn restart(&mut self) -> Result<(), SandboxError> {
        self.stop();
        self.spawn()?;
        let deadline = Instant::now() + self.startup_timeout;
        match self.wait_serving(deadline) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.kill();
                if matches!(
                    e,
                    SandboxError::Exited { .. } | SandboxError::NotServing { .. }
                ) && log_shows_bind_failure(&self.log_path)
                {
                    return Err(SandboxError::PortTaken {
                        port: self.port,
                        log: self.log_path.clone(),
                        attempts: 1,
                        tail: log_tail(&self.log_path),
                    });
                }
                Err(e)
            }
        }
    }

    /// Whether the JVM is still running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(_)) | Err(_) => {
                let pid = child.id() as i32;
                self.child = None;
                unregister_jvm(pid);
                false
            }
        }
    }

    /// Sends SIGTERM without waiting, so several servers stop in parallel.
    fn begin_stop(&mut self) {
        if let Some(child) = self.child.as_ref() {
            signal_group(child.id() as i32, libc::SIGTERM);
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.temp_dir.take() {
            remove_temp_dir(&dir);
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "(empty answer)".to_string()
    } else {
        line.to_string()
    }
}

fn absolute(dir: &Path) -> Result<PathBuf, SandboxError> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| SandboxError::io(dir, e))?;
    Ok(cwd.join(dir))
}

/// A quorum of ZooKeeper servers on loopback (`QuorumPeerMain`, ids 1..=n).
#[derive(Debug)]
pub struct Ensemble {
    /// Server `i` has myid `i + 1`.
    pub servers: Vec<ZkServer>,
}

impl Ensemble {
    /// Starts `size` quorum peers on free loopback ports (tickTime 500 ms,
    /// read-only mode and local sessions enabled) and waits until every member
    /// serves and exactly one is the leader.
    pub fn start(size: usize, opts: &ServerOptions) -> Result<Ensemble, SandboxError> {
        if size == 0 {
            return Err(SandboxError::BadEnsembleSize { size });
        }
        check_extra_config(&opts.extra_config)?;
        let classpath = zookeeper_classpath()?;
        let java = find_java()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = free_ports(3 * size)?;
            let peers: Vec<Peer> = (0..size)
                .map(|i| Peer {
                    id: i as u32 + 1,
                    client_port: ports[3 * i],
                    quorum_port: ports[3 * i + 1],
                    election_port: ports[3 * i + 2],
                })
                .collect();
            let mut ensemble = Ensemble {
                servers: Vec::with_capacity(size),
            };
            for peer in &peers {
                let (dir, temp_dir) = match &opts.base_dir {
                    Some(d) => (absolute(d)?.join(format!("s{}", peer.id)), None),
                    None => {
                        let t = make_temp_dir(&format!("s{}", peer.id))?;
                        (t.clone(), Some(t))
                    }
                };
                ensemble.servers.push(ZkServer::prepare(
                    dir,
                    temp_dir,
                    peer.client_port,
                    Some((peer.id, &peers)),
                    opts,
                    java.clone(),
                    classpath.clone(),
                )?);
            }
            let deadline = Instant::now() + opts.startup_timeout;
            let result = ensemble.spawn_and_wait(deadline);
            match result {
                Ok(()) => return Ok(ensemble),
                Err(e) => {
                    let taken = ensemble.servers.iter().find(|s| s.retryable(&e));
                    if let Some(s) = taken {
                        if attempt < BIND_ATTEMPTS {
                            continue;
                        }
                        return Err(SandboxError::PortTaken {
                            port: s.port,
                            log: s.log_path.clone(),
                            attempts: attempt,
                            tail: log_tail(&s.log_path),
                        });
                    }
                    return Err(e);
                }
            }
        }
    }

    fn spawn_and_wait(&mut self, deadline: Instant) -> Result<(), SandboxError> {
        for server in &mut self.servers {
            server.spawn()?;
        }
        for server in &mut self.servers {
            server.wait_serving(deadline)?;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.wait_for_leader(left).map(|_| ())
    }

    /// `127.0.0.1:a,127.0.0.1:b,…`, in myid order.
    pub fn connect_string(&self) -> String {
        self.servers
            .iter()
            .map(ZkServer::connect_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Index in `servers` of the member that reports itself leader now.
    pub fn leader(&self) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| s.mode().as_deref() == Some("leader"))
    }

    /// Waits until exactly one running member is leader and every other
    /// running member is a follower; returns the leader's index. Members that
    /// are stopped are left out.
    pub fn wait_for_leader(&mut self, timeout: Duration) -> Result<usize, SandboxError> {
        let started = Instant::now();
        loop {
            let mut modes = Vec::with_capacity(self.servers.len());
            for server in &mut self.servers {
                let mode = if server.is_running() {
                    Some(server.mode())
                } else {
                    None
                };
                modes.push(mode);
            }
            let running: Vec<&Option<String>> = modes.iter().flatten().collect();
            let leaders: Vec<usize> = modes
                .iter()
                .enumerate()
                .filter(|(_, m)| matches!(m, Some(Some(m)) if m == "leader"))
                .map(|(i, _)| i)
                .collect();
            let followers = running
                .iter()
                .filter(|m| m.as_deref() == Some("follower"))
                .count();
            if leaders.len() == 1 && followers + 1 == running.len() {
                return Ok(leaders[0]);
            }
            if started.elapsed() >= timeout {
                let modes = self
                    .servers
                    .iter()
                    .zip(&modes)
                    .map(|(s, m)| {
                        let m = match m {
                            None => "stopped".to_string(),
                            Some(None) => "not serving".to_string(),
                            Some(Some(m)) => m.clone(),
                        };
                        format!("{}={m}", s.connect_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(SandboxError::NoLeader {
                    connect: self.connect_string(),
                    waited: started.elapsed(),
                    modes,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        // SIGTERM to all first: stopping one by one would take the sum of
        // their shutdown times.
        for server in &mut self.servers {
            server.begin_stop();
        }
        for server in &mut self.servers {
            server.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standalone_cfg(extra: &[(String, String)]) -> Result<String, SandboxError> {
        render_zoo_cfg(&ZooCfg {
            data_dir: Path::new("/tmp/x/data"),
            client_port: 23456,
            peers: None,
            extra,
        })
    }

    fn lines(cfg: &str) -> Vec<&str> {
        cfg.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn standalone_config_has_the_reference_settings() {
        let cfg = standalone_cfg(&[]).expect("renders");
        assert_eq!(
            lines(&cfg),
            [
                "tickTime=500",
                "dataDir=/tmp/x/data",
                "clientPort=23456",
                "clientPortAddress=127.0.0.1",
                "4lw.commands.whitelist=*",
                "admin.enableServer=false",
                "maxClientCnxns=0",
                "forceSync=no",
            ]
        );
    }

    #[test]
    fn extra_config_replaces_in_place_or_appends() {
        let extra = vec![
            ("tickTime".to_string(), "200".to_string()),
            ("snapCount".to_string(), "1000".to_string()),
        ];
        let cfg = standalone_cfg(&extra).expect("renders");
        let l = lines(&cfg);
        assert_eq!(l[0], "tickTime=200");
        assert_eq!(l.last().copied(), Some("snapCount=1000"));
        assert_eq!(l.iter().filter(|x| x.starts_with("tickTime")).count(), 1);
    }

    #[test]
    fn extra_config_cannot_move_the_server() {
        for key in [
            "clientPort",
            "dataDir",
            "server.1",
            "4lw.commands.whitelist",
        ] {
            let extra = vec![(key.to_string(), "1".to_string())];
            match standalone_cfg(&extra) {
                Err(SandboxError::ManagedConfigKey { key: k }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
        let extra = vec![("a".to_string(), "1\nclientPort=2".to_string())];
        assert!(matches!(
            standalone_cfg(&extra),
            Err(SandboxError::BadConfigEntry { .. })
        ));
        let extra = vec![("a=b".to_string(), "1".to_string())];
        assert!(matches!(
            standalone_cfg(&extra),
            Err(SandboxError::BadConfigEntry { .. })
        ));
    }

    #[test]
    fn quorum_config_lists_every_peer() {
        let peers = [
            Peer {
                id: 1,
                quorum_port: 101,
                election_port: 102,
                client_port: 100,
            },
            Peer {
                id: 2,
                quorum_port: 201,
                election_port: 202,
                client_port: 200,
            },
        ];
        let cfg = render_zoo_cfg(&ZooCfg {
            data_dir: Path::new("/d"),
            client_port: 200,
            peers: Some(&peers),
            extra: &[],
        })
        .expect("renders");
        let l = lines(&cfg);
        for want in [
            "tickTime=500",
            "initLimit=10",
            "syncLimit=5",
            "standaloneEnabled=false",
            "reconfigEnabled=true",
            "localSessionsEnabled=true",
            "localSessionsUpgradingEnabled=true",
            "server.1=127.0.0.1:101:102:participant;127.0.0.1:100",
            "server.2=127.0.0.1:201:202:participant;127.0.0.1:200",
        ] {
            assert!(l.contains(&want), "{want} missing from\n{cfg}");
        }
        // The client port comes from the server line; a second copy must not
        // disagree with it.
        assert!(!l.iter().any(|x| x.starts_with("clientPort")));
    }

    #[test]
    fn jvm_args_carry_heap_jute_and_readonly() {
        let opts = ServerOptions {
            heap_mb: 256,
            jute_maxbuffer: Some(4 << 20),
            jvm_flags: vec!["-XX:+UseSerialGC".to_string()],
            ..ServerOptions::default()
        };
        let a = jvm_args(&opts, true);
        assert_eq!(a[0], "-Xmx256m");
        assert!(a.contains(&"-Djute.maxbuffer=4194304".to_string()));
        assert!(a.contains(&"-Dreadonlymode.enabled=true".to_string()));
        assert!(a.contains(&"-Dzookeeper.jmx.log4j.disable=true".to_string()));
        assert_eq!(a.last().map(String::as_str), Some("-XX:+UseSerialGC"));
        let b = jvm_args(&ServerOptions::default(), false);
        assert_eq!(b[0], "-Xmx512m");
        assert!(!b
            .iter()
            .any(|x| x.contains("jute") || x.contains("readonly")));
    }

    #[test]
    fn classpath_error_names_the_jar_and_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        for jar in ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar"] {
            fs::write(dir.path().join(jar), b"").expect("write");
        }
        let err = classpath_from_dir(dir.path()).expect_err("metrics-core is missing");
        assert!(
            matches!(&err, SandboxError::MissingJar { jar, .. } if jar == "metrics-core.jar"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("metrics-core.jar"), "{msg}");
        assert!(msg.contains("scripts/install-deps"), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    }

    #[test]
    fn classpath_from_dir_lists_required_jars_then_optional_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        for jar in REQUIRED_JARS {
            fs::write(dir.path().join(jar), b"").expect("write");
        }
        let cp = classpath_from_dir(dir.path()).expect("complete");
        assert_eq!(cp.split(':').count(), REQUIRED_JARS.len());
        for jar in OPTIONAL_JARS {
            fs::write(dir.path().join(jar), b"").expect("write");
        }
        let cp = classpath_from_dir(dir.path()).expect("complete");
        assert!(cp.ends_with("/netty-transport-native-epoll.jar"), "{cp}");
        assert_eq!(
            cp.split(':').count(),
            REQUIRED_JARS.len() + OPTIONAL_JARS.len()
        );
        assert!(cp.starts_with(&dir.path().join("zookeeper.jar").display().to_string()));
    }

    #[test]
    fn classpath_override_entries_must_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = format!("{}/*:{}", dir.path().display(), dir.path().display());
        assert_eq!(classpath_from_env(&ok).expect("exists"), ok);
        let missing = format!("{}/nope.jar", dir.path().display());
        let err = classpath_from_env(&missing).expect_err("missing");
        assert!(err.to_string().contains("nope.jar"), "{err}");
        assert!(err.to_string().contains(CLASSPATH_ENV), "{err}");
    }

    #[test]
    fn srvr_and_conf_parsing() {
        let srvr = "Zookeeper version: 3.8.0-x, built on 2024\nLatency min/avg/max: 0/0.0/0\n\
                    Mode: follower\nNode count: 5\n";
        assert_eq!(parse_mode(srvr), Some("follower"));
        assert_eq!(
            parse_mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
        let conf = "clientPort=24010\nsecureClientPort=-1\ndataDir=/tmp/s/data/version-2\n";
        let dir = Path::new("/tmp/s/data");
        assert!(check_conf(conf, 24010, dir).expect("ours"));
        assert!(matches!(
            check_conf(conf, 24011, dir),
            Err(SandboxError::WrongServer { port: 24011, .. })
        ));
        assert!(matches!(
            check_conf(conf, 24010, Path::new("/tmp/other/data")),
            Err(SandboxError::WrongServer { .. })
        ));
        assert!(!check_conf("not currently serving requests", 24010, dir).expect("wait"));
    }

    #[test]
    fn free_ports_are_distinct_and_unanswered() {
        let ports = free_ports(9).expect("ports");
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 9);
        assert!(ports.iter().all(|&p| !answers(p)));
        let again = free_ports(9).expect("ports");
        assert!(again.iter().all(|p| !ports.contains(p)));
    }

    #[test]
    fn temp_dirs_are_unique_and_removed() {
        let a = make_temp_dir("unit").expect("dir");
        let b = make_temp_dir("unit").expect("dir");
        assert_ne!(a, b);
        assert!(a.is_dir() && b.is_dir());
        remove_temp_dir(&a);
        remove_temp_dir(&b);
        assert!(!a.exists() && !b.exists());
        assert!(!lock(&TEMP_DIRS).contains(&a));
    }

    #[test]
    fn stale_temp_dirs_of_dead_owners_are_swept() {
        let base = tempfile::tempdir().expect("tempdir");
        // pid_max is at most 2^22, so this owner cannot exist.
        let dead = base.path().join(format!("{TEMP_PREFIX}99999999-0-1-s1"));
        let mine = base
            .path()
            .join(format!("{TEMP_PREFIX}{}-0-1-s1", std::process::id()));
        let other = base.path().join("zkparity-something-else");
        for d in [&dead, &mine, &other] {
            fs::create_dir_all(d.join("data")).expect("mkdir");
        }
        sweep_stale_temp_dirs(base.path());
        assert!(!dead.exists());
        assert!(mine.exists() && other.exists());
    }

    fn process_gone(pid: u32) -> bool {
        // A zombie counts as gone: it only waits for its parent to reap it.
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }

    fn group_has_no_live_member(pgid: i32) -> bool {
        let Ok(entries) = fs::read_dir("/proc") else {
            return true;
        };
        !entries.flatten().any(|e| {
            let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            stat.rsplit_once(") ").is_some_and(|(_, rest)| {
                let f: Vec<&str> = rest.split_whitespace().collect();
                f.len() > 2 && f[0] != "Z" && f[2] == pgid.to_string()
            })
        })
    }

    #[test]
    fn watchdog_kills_its_process_when_the_owner_dies() {
        // A stand-in owner that we can kill; the real owner is this test binary.
        let base = tempfile::tempdir().expect("tempdir");
        let cleanup = base.path().join("server");
        fs::create_dir_all(cleanup.join("data")).expect("mkdir");
        let mut owner = Command::new("sleep").arg("30").spawn().expect("owner");
        let mut watched = watched_command(
            owner.id(),
            Some(&cleanup),
            Path::new("sleep"),
            &["30".to_string()],
        )
        .spawn()
        .expect("watched");
        std::thread::sleep(Duration::from_millis(300));
        assert!(watched.try_wait().expect("try_wait").is_none());
        // Killed but not reaped: a zombie owner must count as dead.
        owner.kill().expect("kill owner");
        let t = Instant::now();
        let status = loop {
            if let Some(s) = watched.try_wait().expect("try_wait") {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(3), "watchdog did not act");
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let t = Instant::now();
        while cleanup.exists() {
            assert!(t.elapsed() < Duration::from_secs(3), "dir not removed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = owner.wait();
    }

    #[test]
    fn watchdog_exits_with_its_process() {
        let owner = std::process::id();
        let mut watched = watched_command(owner, None, Path::new("true"), &[])
            .spawn()
            .expect("watched");
        let pgid = watched.id() as i32;
        assert!(watched.wait().expect("wait").success());
        // The watchdog shares the group; it notices within one poll. (Its
        // zombie may linger until init reaps the orphan.)
        let t = Instant::now();
        while !group_has_no_live_member(pgid) {
            assert!(t.elapsed() < Duration::from_secs(3), "watchdog lingers");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(process_gone(pgid as u32));
    }
}
