//! How a sandbox server is known to serve, and to be ours.
//!
//! A server counts as started only once it *serves*: `srvr` must report a
//! `Mode:` (`ruok` answers `imok` before that), and `conf` must report our own
//! client port and data directory, so that a test never talks to some other
//! ZooKeeper that happens to listen on the same machine. When it does not
//! start, the end of its log says why.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::SandboxError;

/// Written to the server log before each start: tails and bind-failure checks
/// look only at the current run.
pub(crate) const LOG_MARKER: &str = "--- zkparity sandbox: starting ";

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
pub(crate) fn check_conf(conf: &str, port: u16, data_dir: &Path) -> Result<bool, SandboxError> {
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

/// The last lines of the current run's log.
pub(crate) fn log_tail(log: &Path) -> String {
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

pub(crate) fn log_shows_bind_failure(log: &Path) -> bool {
    let text = current_run_log(log);
    text.contains("Address already in use") || text.contains("BindException")
}

pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

pub(crate) fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "(empty answer)".to_string()
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
