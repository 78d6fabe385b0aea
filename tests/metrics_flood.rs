//! The agent's `/metrics` keeps answering real scrapes while other
//! connections crowd it: hundreds of idle sockets opened and left silent,
//! or keep-alive clients that hold theirs open after one request.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use zkparity_sandbox::{free_ports, Guarded};

/// How soon a real scrape must be answered, whatever else is connected.
const PROMPT: Duration = Duration::from_secs(2);
/// How long a scrape is waited for before it counts as unanswered; longer
/// than [`PROMPT`] so a failure says how late the answer came.
const GIVE_UP: Duration = Duration::from_secs(30);

/// An agent serving `/metrics` over a pair nothing listens for: the
/// endpoint answers from the start, rounds or not.
struct Agent {
    dir: tempfile::TempDir,
    listen: String,
    _child: Guarded,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_ports(1).expect("a free port")[0];
        let listen = format!("127.0.0.1:{port}");
        let config = format!(
            "state_dir = {:?}\n[prometheus]\nlisten = {listen:?}\n\
             [[pair]]\nname = \"flood\"\nsource = \"127.0.0.1:{}\"\ntarget = \"127.0.0.1:{}\"\n",
            dir.path(),
            dead_port(),
            dead_port(),
        );
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, config).expect("write agent config");
        let log = std::fs::File::create(dir.path().join("agent.log")).expect("log");
        let child = Guarded::spawn(agent_command(&file).stderr(log)).expect("start the agent");
        let agent = Agent {
            dir,
            listen,
            _child: child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while scrape(&agent.listen).0 != Some(200) {
            assert!(
                Instant::now() < deadline,
                "the agent never served /metrics:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        agent
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

/// One `GET /metrics` on a connection of its own: the status, if an
/// answer came within [`GIVE_UP`], and how long it took.
fn scrape(addr: &str) -> (Option<u16>, Duration) {
    let started = Instant::now();
    let answer = (|| -> std::io::Result<u16> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(GIVE_UP))?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let raw = String::from_utf8_lossy(&raw);
        raw.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no status line in {raw:?}")))
    })();
    (answer.ok(), started.elapsed())
}

/// Lets this process hold `n` sockets, as far as its hard limit allows.
fn allow_descriptors(n: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls are given a valid rlimit to read or fill.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < n {
            limit.rlim_cur = n.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

/// A keep-alive client: one request answered, then the connection held.
fn kept_alive(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(GIVE_UP)).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    // The answer ends after its headers and Content-Length bytes.
    loop {
        let n = s
            .read(&mut buf)
            .expect("the kept-alive request is answered");
        assert!(n > 0, "closed before answering");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("a Content-Length");
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            if body.len() >= length {
                return s;
            }
        }
    }
}

#[test]
fn a_scrape_is_answered_within_2s_while_500_idle_connections_are_open() {
    allow_descriptors(4096);
    let agent = Agent::start();
    let idle: Vec<TcpStream> = (0..500)
        .map(|i| {
            TcpStream::connect(&agent.listen).unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect();
    let (status, took) = scrape(&agent.listen);
    eprintln!("with 500 idle connections open: {status:?} after {took:.2?}");
    assert_eq!(
        status,
        Some(200),
        "unanswered after {took:.2?}:\n{}",
        agent.log()
    );
    assert!(took < PROMPT, "answered only after {took:.2?}");
    // And again while the flood goes on.
    let more: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&agent.listen).expect("connect"))
        .collect();
    let (status, took) = scrape(&agent.listen);
    eprintln!("after 100 more: {status:?} after {took:.2?}");
    assert_eq!(status, Some(200), "unanswered after {took:.2?}");
    assert!(took < PROMPT, "answered only after {took:.2?}");
    drop((idle, more));
}

#[test]
fn a_scrape_is_answered_within_2s_while_64_keep_alive_clients_hold_their_connections() {
    allow_descriptors(4096);
    let agent = Agent::start();
    let held: Vec<TcpStream> = (0..64).map(|_| kept_alive(&agent.listen)).collect();
    let (status, took) = scrape(&agent.listen);
    eprintln!("with 64 kept-alive clients: {status:?} after {took:.2?}");
    assert_eq!(
        status,
        Some(200),
        "unanswered after {took:.2?}:\n{}",
        agent.log()
    );
    assert!(took < PROMPT, "answered only after {took:.2?}");
    drop(held);
}

#[test]
fn a_kept_alive_connection_left_idle_is_closed_within_a_few_seconds() {
    let agent = Agent::start();
    let mut held = kept_alive(&agent.listen);
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = held.read(&mut buf);
    let took = started.elapsed();
    eprintln!("an idle kept-alive connection closed after {took:.2?}");
    assert!(
        matches!(n, Ok(0)) || n.is_err(),
        "expected the connection closed, read {n:?}"
    );
    assert!(took < Duration::from_secs(7), "held for {took:.2?}");
}
