//! How a sandbox server is configured: its [`ServerOptions`], the `zoo.cfg`
//! and JVM flags rendered from them, and where `java` and ZooKeeper's jars are
//! found.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::env::{CLASSPATH_ENV, JAVA_ENV};
use crate::error::SandboxError;

/// Default maximum heap of each server JVM, in MiB.
pub const DEFAULT_HEAP_MB: u32 = 512;
/// tickTime of every sandbox server: small, for fast elections and short
/// minimum session timeouts (2 × tickTime = 1 s).
pub const TICK_TIME_MS: u32 = 500;
/// How long a server (or an ensemble, as a whole) may take to start serving.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
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

/// What the AdminServer (Jetty) needs beside ZooKeeper's jars, as Debian's
/// `libjetty9-java`, `libservlet-api-java` and `libjackson2-databind-java`
/// name them.
const ADMIN_JARS: [&str; 10] = [
    "jetty9-server.jar",
    "jetty9-servlet.jar",
    "jetty9-http.jar",
    "jetty9-io.jar",
    "jetty9-util.jar",
    "jetty9-security.jar",
    "servlet-api.jar",
    "jackson-databind.jar",
    "jackson-core.jar",
    "jackson-annotations.jar",
];

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
    /// Run the AdminServer (HTTP on 127.0.0.1, a free port of its own, see
    /// [`crate::ZkServer::admin_port`]), with Jetty on the classpath.
    pub admin_server: bool,
    /// `4lw.commands.whitelist`: `*` by default; `srvr` is what 3.5+ servers
    /// allow when nothing is configured. Without `conf`, readiness rests on
    /// `srvr` alone. 3.4 has no whitelist: every word answers.
    pub four_letter_words: String,
    /// Which ZooKeeper runs.
    pub release: crate::Release,
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
            admin_server: false,
            four_letter_words: "*".to_string(),
            release: crate::Release::default(),
        }
    }
}

/// One quorum member's ports, as written into every member's `server.N` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) id: u32,
    pub(crate) quorum_port: u16,
    pub(crate) election_port: u16,
    pub(crate) client_port: u16,
    /// A non-voting member (`:observer` in every `server.N` line).
    pub(crate) observer: bool,
}

/// Everything that goes into one server's `zoo.cfg`.
pub(crate) struct ZooCfg<'a> {
    pub(crate) data_dir: &'a Path,
    pub(crate) client_port: u16,
    /// `None`: standalone.
    pub(crate) peers: Option<&'a [Peer]>,
    /// This server is one of the peers' observers.
    pub(crate) observer: bool,
    pub(crate) extra: &'a [(String, String)],
    /// `None`: the AdminServer stays off.
    pub(crate) admin_port: Option<u16>,
    pub(crate) four_letter_words: &'a str,
    pub(crate) release: crate::Release,
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

pub(crate) fn check_extra_config(extra: &[(String, String)]) -> Result<(), SandboxError> {
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

pub(crate) fn render_zoo_cfg(cfg: &ZooCfg<'_>) -> Result<String, SandboxError> {
    check_extra_config(cfg.extra)?;
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| entries.push((k.to_string(), v));
    put("tickTime", TICK_TIME_MS.to_string());
    put("dataDir", cfg_value(cfg.data_dir));
    let modern = cfg.release.is_3_5_or_later();
    // 3.4 reads its client port from here even in a quorum: its server.N
    // lines carry no client address.
    if cfg.peers.is_none() || !modern {
        put("clientPort", cfg.client_port.to_string());
        put("clientPortAddress", "127.0.0.1".to_string());
    }
    if cfg.peers.is_some() {
        put("initLimit", "10".to_string());
        put("syncLimit", "5".to_string());
    }
    // srvr and conf are the readiness checks; jetty is on the classpath
    // only for an AdminServer; tests open many sessions from one address;
    // nobody needs fsync here.
    put("4lw.commands.whitelist", cfg.four_letter_words.to_string());
    match cfg.admin_port {
        None => put("admin.enableServer", "false".to_string()),
        Some(port) => {
            put("admin.enableServer", "true".to_string());
            put("admin.serverAddress", "127.0.0.1".to_string());
            put("admin.serverPort", port.to_string());
        }
    }
    put("maxClientCnxns", "0".to_string());
    put("forceSync", "no".to_string());
    if let Some(peers) = cfg.peers {
        if modern {
            put("reconfigEnabled", "true".to_string());
            put("standaloneEnabled", "false".to_string());
            // Read-only sessions against a 3.8.0 server fail without these.
            put("localSessionsEnabled", "true".to_string());
            put("localSessionsUpgradingEnabled", "true".to_string());
        }
        if cfg.observer {
            put("peerType", "observer".to_string());
        }
        for p in peers {
            let role = if p.observer {
                "observer"
            } else {
                "participant"
            };
            let line = if modern {
                format!(
                    "127.0.0.1:{}:{}:{role};127.0.0.1:{}",
                    p.quorum_port, p.election_port, p.client_port
                )
            } else if p.observer {
                format!("127.0.0.1:{}:{}:observer", p.quorum_port, p.election_port)
            } else {
                format!("127.0.0.1:{}:{}", p.quorum_port, p.election_port)
            };
            put(&format!("server.{}", p.id), line);
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
pub(crate) fn jvm_args(opts: &ServerOptions, quorum: bool) -> Vec<String> {
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

/// The classpath of `release`: [`zookeeper_classpath`] for Debian's 3.8,
/// the release's own jars otherwise; with Jetty, the servlet API and
/// Jackson for an AdminServer (3.5+).
pub fn release_classpath(release: crate::Release, admin: bool) -> Result<String, SandboxError> {
    let mut cp = match release {
        crate::Release::V3_8_0 => zookeeper_classpath()?,
        other => other.classpath(Path::new(DEBIAN_JAR_DIR))?,
    };
    if !admin || !release.is_3_5_or_later() {
        return Ok(cp);
    }
    for jar in ADMIN_JARS {
        let path = Path::new(DEBIAN_JAR_DIR).join(jar);
        if !path.is_file() {
            return Err(SandboxError::MissingJar {
                jar: jar.to_string(),
                dir: PathBuf::from(DEBIAN_JAR_DIR),
            });
        }
        cp.push(':');
        cp.push_str(&path.to_string_lossy());
    }
    Ok(cp)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn standalone_cfg(extra: &[(String, String)]) -> Result<String, SandboxError> {
        render_zoo_cfg(&ZooCfg {
            data_dir: Path::new("/tmp/x/data"),
            client_port: 23456,
            peers: None,
            observer: false,
            admin_port: None,
            four_letter_words: "*",
            release: crate::Release::default(),
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
                observer: false,
            },
            Peer {
                id: 2,
                quorum_port: 201,
                election_port: 202,
                client_port: 200,
                observer: false,
            },
        ];
        let cfg = render_zoo_cfg(&ZooCfg {
            data_dir: Path::new("/d"),
            client_port: 200,
            peers: Some(&peers),
            observer: false,
            admin_port: None,
            four_letter_words: "*",
            release: crate::Release::default(),
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
}
