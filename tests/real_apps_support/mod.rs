//! The real applications of tests/real_apps.rs (and tests/sync.rs), each a
//! guarded child of the test binary: a Curator program compiled from
//! tests/apps/curator at test time, and an unprivileged ClickHouse server
//! on free loopback ports.
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zkparity_sandbox::tempdir::make_temp_dir;
use zkparity_sandbox::{find_java, free_ports, guarded_command, Guarded};

const INSTALL: &str = "run scripts/install-deps as root to install it";

/// The jars CuratorEstate runs on (their manifests name some of the others,
/// but a classpath that lists them all does not depend on that).
const CURATOR_JARS: &[&str] = &[
    "curator-x-discovery.jar",
    "curator-recipes.jar",
    "curator-framework.jar",
    "curator-client.jar",
    "zookeeper.jar",
    "zookeeper-jute.jar",
    "guava.jar",
    "jackson-databind.jar",
    "jackson-core.jar",
    "jackson-annotations.jar",
    "slf4j-api.jar",
    // Curator and ZooKeeper log a lot at INFO; the test reads only stdout.
    "slf4j-nop.jar",
];
const JAR_DIR: &str = "/usr/share/java";

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(4000);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    text[start..].to_string()
}

/// A pipe whose write end the test keeps: the child sees end of input once
/// it is dropped, however the test ends.
fn stdin_pipe() -> (Stdio, File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both descriptors, which nothing else owns.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: fresh descriptors from pipe2 above, each owned once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    (Stdio::from(read), write)
}

/// The classpath and the directory CuratorEstate.class was compiled into,
/// once per test binary.
fn curator_build() -> &'static (String, PathBuf) {
    static BUILD: OnceLock<(String, PathBuf)> = OnceLock::new();
    BUILD.get_or_init(|| {
        let absent: Vec<String> = CURATOR_JARS
            .iter()
            .map(|j| format!("{JAR_DIR}/{j}"))
            .filter(|p| !Path::new(p).is_file())
            .collect();
        assert!(
            absent.is_empty(),
            "Curator's jars are not installed ({}): {INSTALL}",
            absent.join(", ")
        );
        let classpath = CURATOR_JARS
            .iter()
            .map(|j| format!("{JAR_DIR}/{j}"))
            .collect::<Vec<_>>()
            .join(":");
        let java = find_java().unwrap_or_else(|e| panic!("no java ({e}): {INSTALL}"));
        // The JDK's javac sits next to its java; /usr/bin/java is a link.
        let javac = std::fs::canonicalize(&java)
            .ok()
            .map(|j| j.with_file_name("javac"))
            .filter(|j| j.is_file())
            .unwrap_or_else(|| PathBuf::from("javac"));
        let classes = make_temp_dir("curator-classes").expect("temp dir");
        let source =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/curator/CuratorEstate.java");
        let out = Command::new(&javac)
            .arg("-d")
            .arg(&classes)
            .arg("-cp")
            .arg(&classpath)
            .arg(&source)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (a JDK with javac is needed)", javac.display()));
        assert!(
            out.status.success(),
            "javac {}: {}{}",
            source.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (format!("{}:{classpath}", classes.display()), classes)
    })
}

/// CuratorEstate connected to one server, its tree built under `base`.
pub struct CuratorApp {
    child: Guarded,
    stdin: Option<File>,
    dir: PathBuf,
}

impl CuratorApp {
    /// Starts the program and waits (up to 40 s) for its READY.
    pub fn start(connect: &str, base: &str) -> CuratorApp {
        let (classpath, _) = curator_build();
        let java = find_java().unwrap_or_else(|e| panic!("no java ({e}): {INSTALL}"));
        let dir = make_temp_dir("curator-app").expect("temp dir");
        let (stdin, writer) = stdin_pipe();
        let child = Guarded::spawn(
            guarded_command(&java, Some(&dir))
                .args(["-Xmx128m", "-XX:+UseSerialGC", "-cp", classpath])
                .args(["CuratorEstate", connect, base])
                .stdin(stdin)
                .stdout(File::create(dir.join("stdout")).expect("stdout file"))
                .stderr(File::create(dir.join("stderr")).expect("stderr file")),
        )
        .expect("start CuratorEstate");
        let mut app = CuratorApp {
            child,
            stdin: Some(writer),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let out = std::fs::read_to_string(app.dir.join("stdout")).unwrap_or_default();
            if out.lines().any(|l| l == "READY") {
                return app;
            }
            if let Ok(Some(status)) = app.child.try_wait() {
                panic!("CuratorEstate exited ({status}): {}", app.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "CuratorEstate never READY: {}",
                app.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stderr(&self) -> String {
        tail(&self.dir.join("stderr"))
    }

    /// Closes stdin and waits (briefly) for the program to go.
    pub fn stop(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.stop(Duration::from_secs(2));
    }
}

impl Drop for CuratorApp {
    fn drop(&mut self) {
        self.stop();
        zkparity_sandbox::tempdir::remove_temp_dir(&self.dir);
    }
}

fn clickhouse_binaries() -> (PathBuf, PathBuf) {
    let find = |name: &str| {
        ["/usr/bin", "/usr/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{name} is not installed: {INSTALL}"))
    };
    (find("clickhouse-server"), find("clickhouse-client"))
}

/// An unprivileged ClickHouse server whose ZooKeeper is one test server,
/// chrooted at `root` (which must exist: ClickHouse refuses a missing one).
pub struct ClickHouse {
    child: Guarded,
    dir: PathBuf,
    client: PathBuf,
    tcp_port: u16,
    ports: Vec<u16>,
    root: String,
}

impl ClickHouse {
    /// Starts the server and waits (up to 40 s) until it answers queries.
    pub fn start(zk_port: u16, root: &str) -> ClickHouse {
        let (_, client) = clickhouse_binaries();
        let dir = make_temp_dir("clickhouse").expect("temp dir");
        let ports = free_ports(3).expect("free ports");
        let child = Self::spawn(&dir, &ports, zk_port, root);
        let mut ch = ClickHouse {
            child,
            dir,
            client,
            tcp_port: ports[0],
            ports,
            root: root.to_string(),
        };
        ch.wait_ready();
        ch
    }

    /// Stops the server and starts it again on the same data, with the
    /// ZooKeeper on `zk_port` (the same root): a cutover.
    pub fn restart_on(&mut self, zk_port: u16) {
        self.child.stop(Duration::from_secs(10));
        self.child = Self::spawn(&self.dir, &self.ports, zk_port, &self.root);
        self.wait_ready();
    }

    /// Stops the server (its ZooKeeper session closes), keeping its data.
    pub fn stop(&mut self) {
        self.child.stop(Duration::from_secs(10));
    }

    fn spawn(dir: &Path, ports: &[u16], zk_port: u16, root: &str) -> Guarded {
        let (server, _) = clickhouse_binaries();
        let d = dir.display();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>{d}/server.log</log>
    <errorlog>{d}/error.log</errorlog>
    <console>0</console>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp}</tcp_port>
  <http_port>{http}</http_port>
  <interserver_http_port>{inter}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
  <zookeeper>
    <node><host>127.0.0.1</host><port>{zk_port}</port></node>
    <root>{root}</root>
    <session_timeout_ms>15000</session_timeout_ms>
  </zookeeper>
  <macros><shard>01</shard></macros>
</yandex>
"#,
            tcp = ports[0],
            http = ports[1],
            inter = ports[2],
        );
        let users = r#"<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
"#;
        std::fs::write(dir.join("config.xml"), config).expect("config.xml");
        std::fs::write(dir.join("users.xml"), users).expect("users.xml");
        Guarded::spawn(
            guarded_command(&server, Some(dir))
                .arg(format!("--config-file={d}/config.xml"))
                .current_dir(dir)
                .stdout(File::create(dir.join("stdout")).expect("stdout file"))
                .stderr(File::create(dir.join("stderr")).expect("stderr file")),
        )
        .expect("start clickhouse-server")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if self.try_query("SELECT 1").is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("clickhouse-server exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "clickhouse-server not answering: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        format!(
            "{}{}",
            tail(&self.dir.join("stderr")),
            tail(&self.dir.join("error.log"))
        )
    }

    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(&self.client)
            .args(["--host", "127.0.0.1", "--port"])
            .arg(self.tcp_port.to_string())
            .args(["--query", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}\nserver: {}", self.log()))
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        self.child.stop(Duration::from_secs(5));
        zkparity_sandbox::tempdir::remove_temp_dir(&self.dir);
    }
}
