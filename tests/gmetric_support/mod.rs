//! Test support for the Ganglia tests: a real gmond (Debian's
//! `ganglia-monitor`) on free loopback ports, and a strict reading of the XML
//! it serves.
//!
//! gmond runs in the foreground as the current user (`setuid = no`) from a
//! config in its own temporary directory. Like a ZooKeeper server, it runs
//! under the sandbox's process watchdog ([`zkparity_sandbox::process`]), so
//! that no gmond outlives the test binary, which never drops its statics.
#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use zkparity_sandbox::tempdir::{make_temp_dir, remove_temp_dir};
use zkparity_sandbox::{guarded_command, Guarded};

pub const GMOND: &str = "/usr/sbin/gmond";
pub const GMETRIC: &str = "/usr/bin/gmetric";

/// How the main loop of a gmond ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `mute = yes`, no send channel: it only listens and serves XML. Its
    /// main loop then runs once a minute, so it expires nothing sooner.
    Mute,
    /// Not mute, with a one-second collection group whose own heartbeat goes
    /// to a sink socket this harness holds: the main loop, and so the
    /// `dmax` clean-up (`cleanup_threshold = 1`), runs every second.
    Ticking,
}

pub struct Gmond {
    child: Option<Guarded>,
    pub udp_port: u16,
    pub tcp_port: u16,
    mode: Mode,
    /// Removed when the gmond is dropped, at exit, or by the watchdog.
    dir: PathBuf,
    conf: PathBuf,
    /// Where a ticking gmond sends its own heartbeat; held so that the port
    /// stays ours.
    _sink: Option<UdpSocket>,
}

impl Gmond {
    pub fn installed() -> bool {
        std::path::Path::new(GMOND).exists() && std::path::Path::new(GMETRIC).exists()
    }

    pub fn start(mode: Mode) -> Gmond {
        Gmond::start_with(mode, "")
    }

    /// With `extra` appended to the generated configuration.
    pub fn start_with(mode: Mode, extra: &str) -> Gmond {
        assert!(
            Gmond::installed(),
            "{GMOND} or {GMETRIC} missing: run scripts/install-deps (Debian ganglia-monitor)"
        );
        let dir = make_temp_dir("gmond").expect("temp dir");
        let ports = zkparity_sandbox::free_ports(2).expect("free ports");
        let (udp_port, tcp_port) = (ports[0], ports[1]);
        let sink =
            (mode == Mode::Ticking).then(|| UdpSocket::bind("127.0.0.1:0").expect("sink socket"));
        let mut conf = format!(
            "globals {{ daemonize = no  setuid = no  mute = {}  deaf = no  host_dmax = 0  \
             cleanup_threshold = 1  send_metadata_interval = 0 }}\n\
             cluster {{ name = \"zkparity-test\" }}\n\
             udp_recv_channel   {{ bind = 127.0.0.1  port = {udp_port} }}\n\
             tcp_accept_channel {{ bind = 127.0.0.1  port = {tcp_port} }}\n",
            if mode == Mode::Mute { "yes" } else { "no" }
        );
        if let Some(sink) = &sink {
            let port = sink.local_addr().expect("sink addr").port();
            conf.push_str(&format!(
                "udp_send_channel {{ host = 127.0.0.1  port = {port} }}\n\
                 modules {{ module {{ name = \"core_metrics\" }} }}\n\
                 collection_group {{ collect_every = 1  time_threshold = 1  \
                 metric {{ name = \"heartbeat\" }} }}\n"
            ));
        }
        conf.push_str(extra);
        let path = dir.join("gmond.conf");
        std::fs::write(&path, conf).expect("write gmond.conf");
        let mut g = Gmond {
            child: None,
            udp_port,
            tcp_port,
            mode,
            dir,
            conf: path,
            _sink: sink,
        };
        g.spawn();
        g
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("gmond.log")
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.log_path()).expect("log file");
        let child = Guarded::spawn(
            guarded_command(GMOND, Some(&self.dir))
                .arg("-f")
                .arg("-c")
                .arg(&self.conf)
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
        )
        .expect("spawn gmond");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.try_xml().is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Guarded::try_wait) {
                panic!("gmond exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "gmond not serving: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn udp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.udp_port))
    }

    /// `HOST:PORT` of the UDP receive channel, as `--ganglia` takes it.
    pub fn channel(&self) -> String {
        self.udp_addr().to_string()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop(Duration::from_secs(5));
        }
    }

    /// Stops gmond and starts it again on the same ports: it comes back
    /// knowing no metadata at all.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn try_xml(&self) -> std::io::Result<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.tcp_port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut bytes = Vec::new();
        s.read_to_end(&mut bytes)?;
        // The document says ISO-8859-1: every byte is one character.
        Ok(bytes.iter().map(|&b| char::from(b)).collect())
    }

    /// The XML as served, checked to be well-formed.
    pub fn xml(&self) -> String {
        let xml = self.try_xml().expect("read gmond XML");
        parse(&xml);
        xml
    }

    /// Polls the XML until `pred` holds; gmond handles UDP and serves TCP
    /// from different threads, so what was sent shows up shortly after.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Ganglia) -> bool) -> Ganglia {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let g = parse(&self.xml());
            if pred(&g) {
                return g;
            }
            assert!(
                Instant::now() < deadline,
                "gmond never showed {what}; it shows:\n{g:#?}\nlog: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gmond {
    fn drop(&mut self) {
        self.stop();
        remove_temp_dir(&self.dir);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlHost {
    pub name: String,
    pub ip: String,
    pub gmond_started: String,
    pub metrics: Vec<XmlMetric>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlMetric {
    pub name: String,
    pub val: String,
    pub r#type: String,
    pub units: String,
    pub tmax: String,
    pub dmax: String,
    pub slope: String,
    /// EXTRA_ELEMENTs in document order (gmond prints them in reverse of the
    /// packet's order).
    pub extra: Vec<(String, String)>,
}

impl XmlMetric {
    pub fn extra(&self, key: &str) -> Vec<&str> {
        self.extra
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Ganglia {
    pub hosts: Vec<XmlHost>,
}

impl Ganglia {
    pub fn host(&self, name: &str) -> Option<&XmlHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn metric(&self, host: &str, metric: &str) -> Option<&XmlMetric> {
        self.host(host)?.metrics.iter().find(|m| m.name == metric)
    }

    /// Any host's metric of that name (unspoofed hosts are named by reverse
    /// DNS, which the test does not control).
    pub fn metric_anywhere(&self, metric: &str) -> Option<(&XmlHost, &XmlMetric)> {
        self.hosts
            .iter()
            .find_map(|h| h.metrics.iter().find(|m| m.name == metric).map(|m| (h, m)))
    }
}

/// Parses gmond's XML with a strict parser: a malformed document fails the
/// test here, whatever it was looking for.
pub fn parse(xml: &str) -> Ganglia {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, opts)
        .unwrap_or_else(|e| panic!("gmond served malformed XML ({e}):\n{xml}"));
    let attr = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap_or_default().to_string();
    let hosts = doc
        .descendants()
        .filter(|n| n.has_tag_name("HOST"))
        .map(|h| XmlHost {
            name: attr(h, "NAME"),
            ip: attr(h, "IP"),
            gmond_started: attr(h, "GMOND_STARTED"),
            metrics: h
                .children()
                .filter(|n| n.has_tag_name("METRIC"))
                .map(|m| XmlMetric {
                    name: attr(m, "NAME"),
                    val: attr(m, "VAL"),
                    r#type: attr(m, "TYPE"),
                    units: attr(m, "UNITS"),
                    tmax: attr(m, "TMAX"),
                    dmax: attr(m, "DMAX"),
                    slope: attr(m, "SLOPE"),
                    extra: m
                        .descendants()
                        .filter(|n| n.has_tag_name("EXTRA_ELEMENT"))
                        .map(|e| (attr(e, "NAME"), attr(e, "VAL")))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Ganglia { hosts }
}

/// Runs Debian's `gmetric` with a config whose only send channel is a UDP
/// socket of ours, and returns the datagrams it sent.
pub fn gmetric_datagrams(args: &[&str]) -> Vec<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("gmetric.conf");
    std::fs::write(
        &conf,
        format!("udp_send_channel {{ host = 127.0.0.1  port = {port} }}\n"),
    )
    .expect("write conf");
    let out = Command::new(GMETRIC)
        .arg("-c")
        .arg(&conf)
        .args(args)
        .output()
        .expect("run gmetric");
    assert!(
        out.status.success(),
        "gmetric {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    recv_all(&sock)
}

/// Every datagram already queued on `sock`.
pub fn recv_all(sock: &UdpSocket) -> Vec<Vec<u8>> {
    // gmetric has exited, so its datagrams are queued; a short grace covers
    // loopback delivery.
    std::thread::sleep(Duration::from_millis(50));
    sock.set_nonblocking(true).expect("nonblocking");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Something on a loopback port that answers four-letter words the way a
/// ZooKeeper server would, from canned answers: for the states a sandbox
/// server cannot be put in (its whitelist is always `*`). The listener
/// thread lives as long as the test binary.
pub struct FakeZk {
    pub port: u16,
}

impl FakeZk {
    /// `answers`: word → answer; any other word gets the connection closed
    /// without a word, as a server does for a word it does not know.
    pub fn start(answers: &[(&str, &str)]) -> FakeZk {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake ZooKeeper");
        let port = listener.local_addr().expect("addr").port();
        let answers: Vec<(String, String)> = answers
            .iter()
            .map(|(w, a)| (w.to_string(), a.to_string()))
            .collect();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut word = [0u8; 4];
                if stream.read_exact(&mut word).is_err() {
                    continue;
                }
                let word = String::from_utf8_lossy(&word).into_owned();
                if let Some((_, answer)) = answers.iter().find(|(w, _)| *w == word) {
                    use std::io::Write;
                    let _ = stream.write_all(answer.as_bytes());
                }
            }
        });
        FakeZk { port }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
