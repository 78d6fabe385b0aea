//! The AdminServer: ZooKeeper's HTTP interface (Jetty, JSON under
//! `/commands/<name>`, port 8080 by default), read where the four-letter
//! words are refused or turned off. Its whitelist is not the words'.
//!
//! Each command's JSON is written back as the answer its word gives, so one
//! set of parsers ([`super::parse`]) and one model ([`super::ServerProbe`])
//! serve both ways, and a fact means the same whichever way it was read:
//!
//! | word | commands |
//! |---|---|
//! | `srvr` | `server_stats` |
//! | `mntr` | `monitor` |
//! | `isro` | `is_read_only` |
//! | `ruok` | `ruok` |
//! | `conf` | `configuration`, and `voting_view` for the members (3.5+) |
//! | `wchs` | `watch_summary` |
//! | `envi` | `environment` |

use std::fmt::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use super::client::{millis, Word, WordError};
use super::parse::NOT_SERVING;

/// The AdminServer's port when a server's configuration does not say.
pub const DEFAULT_ADMIN_PORT: u16 = 8080;

/// Which way a probe reads servers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProbeVia {
    /// The words first; a word the server refuses is asked of the
    /// AdminServer.
    #[default]
    Auto,
    /// The words only, as before the AdminServer existed.
    FourLetterWords,
    /// The AdminServer only.
    Admin,
}

impl FromStr for ProbeVia {
    type Err = String;

    fn from_str(s: &str) -> Result<ProbeVia, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ProbeVia::Auto),
            "4lw" => Ok(ProbeVia::FourLetterWords),
            "admin" => Ok(ProbeVia::Admin),
            other => Err(format!(
                "{other:?} is not a way to probe (auto, 4lw, admin)"
            )),
        }
    }
}

/// Where one ensemble's AdminServers answer: the same host as each
/// server's client port, on one port for all (the usual case) or one port
/// per server in the connect string's order, over HTTPS when `tls` is set.
#[derive(Clone, Debug)]
pub struct AdminEndpoint {
    pub ports: Vec<u16>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for AdminEndpoint {
    fn default() -> Self {
        AdminEndpoint {
            ports: vec![DEFAULT_ADMIN_PORT],
            tls: None,
        }
    }
}

/// Parses `PORT` or `PORT,PORT,...` (one per server, in order).
pub fn parse_ports(text: &str) -> Result<Vec<u16>, String> {
    let ports = text
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("{:?} is not a port number", p.trim()))
        })
        .collect::<Result<Vec<u16>, String>>()?;
    if ports.is_empty() {
        return Err("no port given".into());
    }
    Ok(ports)
}

/// Why HTTPS to the AdminServer cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("AdminServer CA file {}: {reason}", path.display())]
pub struct AdminTlsError {
    pub path: std::path::PathBuf,
    pub reason: String,
}

impl AdminEndpoint {
    /// The AdminServer port of the `index`th server of the connect string.
    pub fn port_for(&self, index: usize) -> u16 {
        match self.ports.as_slice() {
            [one] => *one,
            many => many.get(index).copied().unwrap_or(DEFAULT_ADMIN_PORT),
        }
    }

    /// A list of ports must name one per server.
    pub fn check(&self, servers: usize) -> Result<(), String> {
        match self.ports.len() {
            1 => Ok(()),
            n if n == servers => Ok(()),
            n => Err(format!(
                "{n} AdminServer ports for {servers} server(s): give one port, or one per server"
            )),
        }
    }

    /// HTTPS, verifying the servers against the CA certificates in
    /// `ca_file` (PEM), as the client port's `--*-tls-ca` does.
    pub fn https(ports: Vec<u16>, ca_file: &Path) -> Result<AdminEndpoint, AdminTlsError> {
        use pki_types::pem::PemObject;
        let err = |reason: String| AdminTlsError {
            path: ca_file.to_path_buf(),
            reason,
        };
        let mut roots = rustls::RootCertStore::empty();
        let certs =
            pki_types::CertificateDer::pem_file_iter(ca_file).map_err(|e| err(e.to_string()))?;
        for cert in certs {
            let cert = cert.map_err(|e| err(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| err(format!("not a usable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(err("holds no PEM certificate".into()));
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(AdminEndpoint {
            ports,
            tls: Some(Arc::new(config)),
        })
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// The commands that stand in for `word`; the first is required.
fn commands(word: Word) -> &'static [&'static str] {
    match word {
        Word::Srvr => &["server_stats"],
        Word::Mntr => &["monitor"],
        Word::Isro => &["is_read_only"],
        Word::Ruok => &["ruok"],
        Word::Conf => &["configuration", "voting_view"],
        Word::Wchs => &["watch_summary"],
        Word::Envi => &["environment"],
    }
}

/// `word`'s answer, read from the AdminServer at `addr` (`host` names it
/// for TLS and the Host header).
pub(crate) async fn ask(
    host: &str,
    addr: SocketAddr,
    endpoint: &AdminEndpoint,
    word: Word,
    timeout: Duration,
    max_bytes: usize,
) -> Result<String, WordError> {
    let mut replies = Vec::new();
    for (i, command) in commands(word).iter().enumerate() {
        let path = format!("/commands/{command}");
        let reply = tokio::time::timeout(timeout, get_json(host, addr, endpoint, &path, max_bytes))
            .await
            .unwrap_or(Err(WordError::Timeout {
                timeout_ms: millis(timeout),
            }));
        match reply {
            Ok(v) => replies.push(v),
            // Only the first is needed (voting_view came with 3.5).
            Err(_) if i > 0 => break,
            Err(e) => return Err(e),
        }
    }
    as_word_answer(word, &replies).map_err(|reason| WordError::Io {
        reason: format!(
            "the AdminServer at {}: {reason}",
            super::client::host_port(host, addr.port())
        ),
    })
}

async fn get_json(
    host: &str,
    addr: SocketAddr,
    endpoint: &AdminEndpoint,
    path: &str,
    max_bytes: usize,
) -> Result<Value, WordError> {
    let io = |e: &dyn std::fmt::Display| WordError::Io {
        reason: format!("AdminServer {}: {e}", endpoint.scheme()),
    };
    let tcp = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => WordError::ConnectionRefused,
        _ => io(&e),
    })?;
    let authority = super::client::host_port(host, addr.port());
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, &authority)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| io(&e))?;
    let response = match &endpoint.tls {
        None => send(TokioIo::new(tcp), request).await,
        Some(config) => {
            let name = pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|e| io(&e))?;
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| io(&e))?;
            send(TokioIo::new(tls), request).await
        }
    }
    .map_err(|e| io(&e))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                WordError::TooLarge { limit: max_bytes }
            } else {
                io(&e)
            }
        })?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    // A server without a quorum answers some commands with an error page
    // (HTTP 500); the others say it in JSON.
    if text.contains(NOT_SERVING) {
        return Ok(serde_json::json!({ "error": NOT_SERVING }));
    }
    if !status.is_success() {
        return Err(io(&format!("{path} answered HTTP {}", status.as_u16())));
    }
    serde_json::from_str(&text).map_err(|_| {
        io(&format!(
            "{path} did not answer JSON (is this port an AdminServer?): {:?}",
            super::parse::first_line(&text)
        ))
    })
}

async fn send<T>(
    io: TokioIo<T>,
    request: hyper::Request<Empty<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    // The connection runs on its own, until the body has been read.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(request).await
}

/// A scalar as the words print it: strings bare, numbers as JSON has them.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn field(v: &Value, key: &str) -> String {
    scalar(&v[key]).unwrap_or_default()
}

/// The answer `word` gives, from the AdminServer's `replies` to
/// [`commands`]`(word)`. `Err`: the AdminServer said something else.
pub(crate) fn as_word_answer(word: Word, replies: &[Value]) -> Result<String, String> {
    let Some(first) = replies.first() else {
        return Err("no answer".into());
    };
    if !first.is_object() {
        return Err("the answer is not a JSON object".into());
    }
    match &first["error"] {
        Value::Null => {}
        Value::String(e) if e.contains(NOT_SERVING) => return Ok(NOT_SERVING.to_string()),
        other => return Err(format!("it answered with an error: {other}")),
    }
    let mut out = String::new();
    match word {
        Word::Srvr => srvr_answer(first, &mut out)?,
        Word::Mntr => {
            let Some(map) = first.as_object() else {
                return Err("monitor is not a JSON object".into());
            };
            for (k, v) in map {
                if k == "command" || k == "error" {
                    continue;
                }
                if let Some(v) = scalar(v) {
                    let _ = writeln!(out, "zk_{k}\t{v}");
                }
            }
        }
        Word::Isro => match first["read_only"] {
            Value::Bool(true) => out.push_str("ro"),
            Value::Bool(false) => out.push_str("rw"),
            _ => return Err("is_read_only has no read_only".into()),
        },
        Word::Ruok => out.push_str("imok"),
        Word::Conf => conf_answer(first, replies.get(1), &mut out),
        Word::Wchs => {
            let _ = writeln!(
                out,
                "{} connections watching {} paths\nTotal watches:{}",
                field(first, "num_connections"),
                field(first, "num_paths"),
                field(first, "num_total_watches")
            );
        }
        Word::Envi => {
            out.push_str("Environment:\n");
            let Some(map) = first.as_object() else {
                return Err("environment is not a JSON object".into());
            };
            for (k, v) in map {
                if k == "command" || k == "error" {
                    continue;
                }
                if let Some(v) = scalar(v) {
                    let _ = writeln!(out, "{k}={v}");
                }
            }
        }
    }
    Ok(out)
}

/// `srvr`'s lines, from `server_stats`.
fn srvr_answer(first: &Value, out: &mut String) -> Result<(), String> {
    let st = &first["server_stats"];
    if !st.is_object() {
        return Err("server_stats has no server_stats object".into());
    }
    let _ = writeln!(out, "Zookeeper version: {}", field(first, "version"));
    if first["read_only"] == Value::Bool(true) {
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        field(st, "min_latency"),
        field(st, "avg_latency"),
        field(st, "max_latency")
    );
    let _ = writeln!(out, "Received: {}", field(st, "packets_received"));
    let _ = writeln!(out, "Sent: {}", field(st, "packets_sent"));
    let _ = writeln!(
        out,
        "Connections: {}",
        field(st, "num_alive_client_connections")
    );
    let _ = writeln!(out, "Outstanding: {}", field(st, "outstanding_requests"));
    if let Some(z) = st["last_processed_zxid"].as_u64() {
        let _ = writeln!(out, "Zxid: 0x{z:x}");
    }
    let _ = writeln!(out, "Mode: {}", field(st, "server_state"));
    let _ = writeln!(out, "Node count: {}", field(first, "node_count"));
    Ok(())
}

/// `conf`'s lines, from `configuration` and `voting_view`.
fn conf_answer(first: &Value, voting_view: Option<&Value>, out: &mut String) {
    for (key, word_key) in [
        ("client_port", "clientPort"),
        ("secure_client_port", "secureClientPort"),
        ("data_dir", "dataDir"),
        ("data_log_dir", "dataLogDir"),
        ("tick_time", "tickTime"),
        ("max_client_cnxns", "maxClientCnxns"),
        ("min_session_timeout", "minSessionTimeout"),
        ("max_session_timeout", "maxSessionTimeout"),
        ("server_id", "serverId"),
    ] {
        if let Some(v) = scalar(&first[key]) {
            let _ = writeln!(out, "{word_key}={v}");
        }
    }
    // voting_view's members, as conf's `server.N=` lines.
    let members = voting_view
        .filter(|v| v["error"].is_null())
        .and_then(|v| v["current_config"].as_object());
    for (id, m) in members.into_iter().flatten() {
        let quorum = m["server_addresses"][0].as_str().unwrap_or("");
        let election = m["election_addresses"][0].as_str().unwrap_or("");
        let election_port = election.rsplit(':').next().unwrap_or("");
        let role = m["learner_type"].as_str().unwrap_or("participant");
        let _ = write!(out, "server.{id}={quorum}:{election_port}:{role}");
        if let Some(client) = m["client_address"].as_str() {
            let _ = write!(out, ";{client}");
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::parse;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/admin/3.8.0/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).expect("fixture is JSON")
    }

    fn answer(word: Word, names: &[&str]) -> String {
        let replies: Vec<Value> = names.iter().map(|n| fixture(n)).collect();
        as_word_answer(word, &replies).expect("an answer")
    }

    #[test]
    fn server_stats_reads_as_srvr_does() {
        let s = parse::parse_srvr(&answer(Word::Srvr, &["srvr-follower"]));
        assert_eq!(s.mode, Some(parse::Mode::Follower));
        assert!(s.version.as_deref().is_some_and(|v| v.starts_with("3.8.0")));
        assert!(s.zxid.is_some());
        assert!(s.latency.is_some());
        assert_eq!(s.node_count, Some(5));
        assert!(s.recognised());
    }

    #[test]
    fn monitor_reads_as_mntr_does_with_the_leaders_sync_numbers() {
        let m = parse::parse_mntr(&answer(Word::Mntr, &["monitor-leader"]));
        assert_eq!(m.text("zk_server_state").as_deref(), Some("leader"));
        assert_eq!(m.u64("zk_synced_followers"), Some(2));
        assert_eq!(m.u64("zk_quorum_size"), Some(3));
        assert!(m.u64("zk_znode_count").is_some());
        assert!(m.u64("zk_open_file_descriptor_count").is_some());
        assert_eq!(m.malformed_lines, 0);
        assert!(m.get("zk_command").is_none());
    }

    #[test]
    fn configuration_and_voting_view_read_as_conf_with_its_members() {
        let c = parse::parse_conf(&answer(
            Word::Conf,
            &["configuration-quorum", "voting_view-quorum"],
        ));
        assert_eq!(c.server_id, Some(1));
        assert_eq!(c.client_port, Some(22191));
        assert_eq!(c.members.len(), 3);
        let m = &c.members[1];
        assert_eq!((m.id, m.host.as_str()), (2, "127.0.0.1"));
        assert_eq!((m.quorum_port, m.election_port), (Some(22292), Some(22392)));
        assert_eq!(m.role.as_deref(), Some("participant"));
        assert_eq!(m.client_address.as_deref(), Some("127.0.0.1:22192"));
        // Standalone: no voting_view to ask, the configuration alone.
        let c = parse::parse_conf(&answer(Word::Conf, &["configuration"]));
        assert_eq!(c.client_port, Some(22181));
        assert!(c.members.is_empty());
    }

    #[test]
    fn the_small_commands_read_as_their_words() {
        assert_eq!(
            parse::parse_isro(&answer(Word::Isro, &["is_read_only"])),
            Some(parse::Isro::ReadWrite)
        );
        assert_eq!(
            parse::parse_ruok(&answer(Word::Ruok, &["ruok"])),
            Some(true)
        );
        let w = parse::parse_wchs(&answer(Word::Wchs, &["watch_summary"]));
        assert_eq!(
            (w.connections, w.paths, w.total_watches),
            (Some(0), Some(0), Some(0))
        );
        let e = parse::parse_envi(&answer(Word::Envi, &["environment"]));
        assert_eq!(e.get("java.version").map(String::as_str), Some("17.0.15"));
        assert!(e.contains_key("zookeeper.version"));
    }

    #[test]
    fn a_server_without_quorum_reads_as_not_serving() {
        let text = answer(Word::Srvr, &["srvr-not-serving"]);
        assert!(matches!(parse::classify(&text), parse::Reply::NotServing));
    }

    #[test]
    fn another_error_or_a_foreign_json_is_no_answer() {
        let err = serde_json::json!({"command": "monitor", "error": "boom"});
        assert!(as_word_answer(Word::Mntr, &[err]).is_err());
        let foreign = serde_json::json!({"status": "ok"});
        assert!(as_word_answer(Word::Srvr, &[foreign]).is_err());
        assert!(as_word_answer(Word::Isro, &[serde_json::json!({})]).is_err());
        assert!(as_word_answer(Word::Ruok, &[]).is_err());
    }

    #[test]
    fn ports_are_one_for_all_or_one_per_server() {
        assert_eq!(parse_ports("8080"), Ok(vec![8080]));
        assert_eq!(parse_ports("1, 2,3"), Ok(vec![1, 2, 3]));
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("80,x").is_err());
        let each = AdminEndpoint {
            ports: vec![1, 2, 3],
            tls: None,
        };
        assert_eq!((each.port_for(0), each.port_for(2)), (1, 3));
        assert!(each.check(3).is_ok());
        assert!(each.check(2).is_err());
        let one = AdminEndpoint::default();
        assert_eq!(one.port_for(5), DEFAULT_ADMIN_PORT);
        assert!(one.check(5).is_ok());
        assert_eq!("4lw".parse(), Ok(ProbeVia::FourLetterWords));
        assert!("http".parse::<ProbeVia>().is_err());
    }

    proptest::proptest! {
        #[test]
        fn only_an_object_without_an_error_is_an_answer(text in ".{0,200}", word in 0usize..7) {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
            let answered = as_word_answer(Word::ALL[word], &[v.clone(), v.clone()]);
            if answered.is_ok() {
                proptest::prop_assert!(v.is_object() && v["error"].is_null());
            }
        }
    }
}
