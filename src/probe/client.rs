//! The four-letter-word client: one word per connection over plain TCP, as
//! ZooKeeper's `FourLetterWordMain` sends it (write, half-close, read until
//! the server closes), with a bound on the time and on the answer's size.
//! Every probe, check and metric that asks a server anything goes through
//! `send_to_any`.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

    pub(crate) fn as_str(self) -> &'static str {
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
    pub(crate) fn ends_probe(&self) -> bool {
        !matches!(self, WordError::TooLarge { .. })
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

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The addresses of `host`, within `timeout`.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, WordError> {
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
pub(crate) async fn send_to_any(
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
