//! Ensemble health from ZooKeeper's four-letter words.
//!
//! [`probe`] asks every server of one or two connect strings `srvr`, `mntr`,
//! `isro`, `ruok`, `conf`, `wchs` and `envi` over plain TCP, and builds a
//! typed [`ServerProbe`] per server, an [`EnsembleView`] per ensemble (modes,
//! leader count, sync state, spreads, and a verdict with its reasons), and a
//! [`CountParity`] between the two ensembles. The Nagios checks and the
//! Ganglia emitter read this model; `zkparity probe` renders it
//! ([`render`]).
//!
//! The files, one job each:
//! - this one: the TCP client and the order the words go out in;
//! - [`parse`]: parsers for every answer format from 3.4 to 3.9;
//! - [`server`]: one server's model, assembled from its answers;
//! - [`ensemble`]: the ensemble view, its verdict, and the count parity;
//! - [`render`]: the text table and the JSON (schema: `docs/probe-json.md`).
//!
//! Nothing the network sends can make a probe fail: a refused connection, a
//! timeout, a word left out of the whitelist, a server without a quorum, or
//! an answer in no known format all end up in the model, named by server.
//! `srst` and `crst` are never sent: they reset statistics other monitors
//! rely on.

pub mod ensemble;
pub mod parse;
pub mod render;
pub mod server;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::connect::ConnectString;

pub use ensemble::{
    CountParity, EnsembleKind, EnsembleView, HealthPolicy, ProbeReport, Reason, ReasonCode,
    Severity, SideCounts, Verdict,
};
pub use server::{ServerProbe, ServerState, WordOutcome, Zxid};

/// Exit code of `zkparity probe`: every probed ensemble is healthy.
pub const EXIT_HEALTHY: i32 = 0;
/// Exit code of `zkparity probe`: something is unhealthy (a down server
/// included: that is an answer, not an error).
pub const EXIT_UNHEALTHY: i32 = 1;

/// The timeout of `FourLetterWordMain`, which `zkServer.sh status` uses.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A bound on one answer, so a misbehaving peer cannot exhaust memory. A
/// 3.8 `mntr` is about 18 KB; nothing sent here grows with the tree.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 16 << 20;

/// The four-letter words a probe sends, in the order it sends them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Word {
    Srvr,
    Mntr,
    Isro,
    Ruok,
    Conf,
    Wchs,
    Envi,
}

impl Word {
    /// `srvr` first: it is whitelisted on every server since 3.5.3, and
    /// decides whether the server serves.
    pub const ALL: [Word; 7] = [
        Word::Srvr,
        Word::Mntr,
        Word::Isro,
        Word::Ruok,
        Word::Conf,
        Word::Wchs,
        Word::Envi,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Word::Srvr => "srvr",
            Word::Mntr => "mntr",
            Word::Isro => "isro",
            Word::Ruok => "ruok",
            Word::Conf => "conf",
            Word::Wchs => "wchs",
            Word::Envi => "envi",
        }
    }
}

impl std::fmt::Display for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one word got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WordError {
    #[error("cannot resolve the host name: {reason}")]
    Resolve { reason: String },
    #[error("connection refused")]
    ConnectionRefused,
    #[error("no answer within {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    #[error("the answer exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{reason}")]
    Io { reason: String },
}

impl WordError {
    fn from_io(e: &std::io::Error) -> WordError {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused => WordError::ConnectionRefused,
            _ => WordError::Io {
                reason: e.to_string(),
            },
        }
    }

    /// After a refused connection, a timeout or a cut connection, every
    /// further word to that server would fail the same way (or wait out the
    /// same timeout).
    fn ends_probe(&self) -> bool {
        !matches!(self, WordError::TooLarge { .. })
    }
}

/// A word that got no answer, named by server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{server}: {word}: {error}")]
pub struct WordFailure {
    pub server: String,
    pub word: Word,
    pub error: WordError,
}

/// How to probe.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// For each word: resolve, connect, send, and read until the server
    /// closes.
    pub timeout: Duration,
    /// What to send, in this order (default: [`Word::ALL`]).
    pub words: Vec<Word>,
    pub max_answer_bytes: usize,
    /// What counts as unhealthy.
    pub policy: HealthPolicy,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: DEFAULT_TIMEOUT,
            words: Word::ALL.to_vec(),
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
            policy: HealthPolicy::default(),
        }
    }
}

/// `host:port`, with brackets around an IPv6 host.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, WordError> {
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(WordError::Resolve {
            reason: format!("no answer within {} ms", millis(timeout)),
        }),
        Ok(Err(e)) => Err(WordError::Resolve {
            reason: e.to_string(),
        }),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(WordError::Resolve {
                    reason: "no address".to_string(),
                })
            } else {
                Ok(addrs)
            }
        }
    }
}

async fn exchange(
    stream: &mut TcpStream,
    word: Word,
    max_bytes: usize,
) -> Result<String, WordError> {
    let io = |e: std::io::Error| WordError::from_io(&e);
    stream
        .write_all(word.as_str().as_bytes())
        .await
        .map_err(io)?;
    // As FourLetterWordMain does: the server takes the half-close in its
    // stride, and anything else on the port sees that nothing more is coming.
    stream.shutdown().await.map_err(io)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        if answer.len() + n > max_bytes {
            return Err(WordError::TooLarge { limit: max_bytes });
        }
        answer.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Sends `word` to the first of `addrs` that accepts a connection, within
/// `timeout` in all; returns the address that answered and the answer.
async fn send_to_any(
    addrs: &[SocketAddr],
    word: Word,
    timeout: Duration,
    max_bytes: usize,
) -> Result<(SocketAddr, String), WordError> {
    let attempt = async {
        let mut last = WordError::ConnectionRefused;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(mut stream) => {
                    let answer = exchange(&mut stream, word, max_bytes).await?;
                    return Ok((*addr, answer));
                }
                Err(e) => last = WordError::from_io(&e),
            }
        }
        Err(last)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(WordError::Timeout {
            timeout_ms: millis(timeout),
        }),
    }
}

/// Sends one word to one server and returns its whole answer.
pub async fn send_word(
    host: &str,
    port: u16,
    word: Word,
    timeout: Duration,
) -> Result<String, WordFailure> {
    let fail = |error| WordFailure {
        server: host_port(host, port),
        word,
        error,
    };
    let addrs = resolve(host, port, timeout).await.map_err(fail)?;
    send_to_any(&addrs, word, timeout, DEFAULT_MAX_ANSWER_BYTES)
        .await
        .map(|(_, answer)| answer)
        .map_err(fail)
}

/// Probes one server: the words one after another, over one resolved
/// address, so the server's connection count includes only this probe's
/// own connection, and a server that stopped answering costs one timeout,
/// not one per word.
pub async fn probe_server(host: &str, port: u16, opts: &ProbeOptions) -> ServerProbe {
    let started = Instant::now();
    let address = host_port(host, port);
    let addrs = match resolve(host, port, opts.timeout).await {
        Ok(a) => a,
        Err(e) => {
            let mut p = ServerProbe::unresolved(&address, &opts.words, e);
            p.elapsed_ms = millis(started.elapsed());
            return p;
        }
    };
    let mut pinned: Option<SocketAddr> = None;
    let mut answers = Vec::with_capacity(opts.words.len());
    let mut give_up = false;
    for &word in &opts.words {
        if give_up {
            answers.push((word, None));
            continue;
        }
        let targets = pinned.map_or(addrs.clone(), |a| vec![a]);
        match send_to_any(&targets, word, opts.timeout, opts.max_answer_bytes).await {
            Ok((addr, answer)) => {
                pinned = Some(addr);
                answers.push((word, Some(Ok(answer))));
            }
            Err(e) => {
                give_up = e.ends_probe();
                answers.push((word, Some(Err(e))));
            }
        }
    }
    let mut p = ServerProbe::from_answers(&address, &answers);
    p.resolved = pinned.map(|a| a.to_string());
    p.elapsed_ms = millis(started.elapsed());
    p
}

/// Probes every server of a connect string at once. The chroot plays no
/// part: four-letter words concern the whole server. A server listed twice
/// is probed once, so it cannot count as two leaders.
pub async fn probe_ensemble(
    side: &str,
    connect: &ConnectString,
    opts: &ProbeOptions,
) -> EnsembleView {
    let mut seen = HashSet::new();
    let hosts: Vec<(String, u16)> = connect
        .hosts
        .iter()
        .filter(|h| seen.insert((*h).clone()))
        .cloned()
        .collect();
    let probes =
        futures::future::join_all(hosts.iter().map(|(h, p)| probe_server(h, *p, opts))).await;
    let listed = ConnectString {
        hosts,
        chroot: None,
    };
    EnsembleView::build(side, &listed.to_string(), probes, &opts.policy)
}

/// Probes a source and, optionally, a target ensemble at the same time,
/// and compares their znode counts.
pub async fn probe(
    source: &ConnectString,
    target: Option<&ConnectString>,
    opts: &ProbeOptions,
) -> ProbeReport {
    let target_view = async {
        match target {
            Some(t) => Some(probe_ensemble("target", t, opts).await),
            None => None,
        }
    };
    let (source, target) = tokio::join!(probe_ensemble("source", source, opts), target_view);
    ProbeReport::new(source, target, opts.timeout)
}
