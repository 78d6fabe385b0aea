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
//! - this one: the order the words go out in, and to which servers;
//! - [`client`]: the TCP client that sends one word and reads its answer;
//! - [`admin`]: the same answers from the AdminServer (HTTP JSON), where
//!   words are refused or off (`--probe-via`);
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

pub mod admin;
mod client;
pub mod ensemble;
pub mod parse;
pub mod render;
mod server;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::connect::{ConnectString, EnsembleSpec};

pub use admin::{AdminEndpoint, ProbeVia, DEFAULT_ADMIN_PORT};
pub use client::{host_port, Word, WordError};
use client::{millis, resolve, send_to_any};

pub use ensemble::{
    CountParity, EnsembleKind, EnsembleView, HealthPolicy, ProbeReport, Reason, ReasonCode,
    Severity, SideCounts, Verdict,
};
pub use server::{ServerProbe, ServerState, WordOutcome, Zxid};

/// The timeout of `FourLetterWordMain`, which `zkServer.sh status` uses.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A bound on one answer, so a misbehaving peer cannot exhaust memory. A
/// 3.8 `mntr` is about 18 KB; nothing sent here grows with the tree.
pub(crate) const DEFAULT_MAX_ANSWER_BYTES: usize = 16 << 20;

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
    /// Words, AdminServer, or words then AdminServer for what they refuse.
    pub via: ProbeVia,
    /// Where the source's and the target's AdminServers answer.
    pub source_admin: AdminEndpoint,
    pub target_admin: AdminEndpoint,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: DEFAULT_TIMEOUT,
            words: Word::ALL.to_vec(),
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
            policy: HealthPolicy::default(),
            via: ProbeVia::default(),
            source_admin: AdminEndpoint::default(),
            target_admin: AdminEndpoint::default(),
        }
    }
}

/// Probes one server: the words one after another, over one resolved
/// address, so the server's connection count includes only this probe's
/// own connection, and a server that stopped answering costs one timeout,
/// not one per word. What the words cannot tell (refused by the whitelist,
/// or not asked with `ProbeVia::Admin`) is asked of the AdminServer.
pub(crate) async fn probe_server(
    host: &str,
    port: u16,
    opts: &ProbeOptions,
    admin: &AdminEndpoint,
    admin_port: u16,
) -> ServerProbe {
    let started = Instant::now();
    let address = host_port(host, port);
    let mut answers: Vec<(Word, Option<Result<String, WordError>>)> =
        opts.words.iter().map(|&w| (w, None)).collect();
    let mut pinned: Option<SocketAddr> = None;
    if opts.via != ProbeVia::Admin {
        let addrs = match resolve(host, port, opts.timeout).await {
            Ok(a) => a,
            Err(e) => {
                let mut p = ServerProbe::unresolved(&address, &opts.words, e);
                p.elapsed_ms = millis(started.elapsed());
                return p;
            }
        };
        pinned = ask_words(&addrs, &mut answers, opts).await;
    }
    let wanted = admin_wanted(opts.via, &answers);
    let mut admin_words = Vec::new();
    let mut admin_error = None;
    if !wanted.is_empty() {
        // The address the words reached, at the admin port; else every
        // address the name has, as the words try them.
        let addrs = match pinned {
            Some(a) => Ok(vec![SocketAddr::new(a.ip(), admin_port)]),
            None => resolve(host, admin_port, opts.timeout).await,
        };
        match addrs {
            Err(e) if opts.via == ProbeVia::Admin => {
                let mut p = ServerProbe::unresolved(&address, &opts.words, e);
                p.elapsed_ms = millis(started.elapsed());
                return p;
            }
            Err(e) => admin_error = Some(e.to_string()),
            Ok(addrs) => {
                let server = AdminServer {
                    host,
                    addrs,
                    endpoint: admin,
                    port: admin_port,
                };
                let asked = ask_admin(&server, wanted, &mut answers, opts).await;
                admin_words = asked.words;
                admin_error = asked.error;
                if opts.via == ProbeVia::Admin {
                    pinned = asked.reached;
                }
            }
        }
    }
    let mut p = ServerProbe::from_answers(&address, &answers);
    p.resolved = pinned.map(|a| a.to_string());
    p.admin_words = admin_words;
    p.admin_error = admin_error;
    p.elapsed_ms = millis(started.elapsed());
    p
}

type Answers = [(Word, Option<Result<String, WordError>>)];

/// Each word asked in turn over the four-letter-word port, at the first of
/// `addrs` that answers and then only there; the address that answered.
async fn ask_words(
    addrs: &[SocketAddr],
    answers: &mut Answers,
    opts: &ProbeOptions,
) -> Option<SocketAddr> {
    let mut pinned: Option<SocketAddr> = None;
    for (word, answer) in answers.iter_mut() {
        let targets = pinned.map_or(addrs.to_vec(), |a| vec![a]);
        match send_to_any(&targets, *word, opts.timeout, opts.max_answer_bytes).await {
            Ok((addr, text)) => {
                pinned = Some(addr);
                *answer = Some(Ok(text));
            }
            Err(e) => {
                let give_up = e.ends_probe();
                *answer = Some(Err(e));
                if give_up {
                    break;
                }
            }
        }
    }
    pinned
}

/// The words (by their place in `answers`) to ask of the AdminServer.
fn admin_wanted(via: ProbeVia, answers: &Answers) -> Vec<usize> {
    answers
        .iter()
        .enumerate()
        .filter(|(_, (_, a))| match (via, a) {
            (ProbeVia::FourLetterWords, _) => false,
            (ProbeVia::Admin, _) => true,
            (ProbeVia::Auto, Some(Ok(text))) => {
                matches!(parse::classify(text), parse::Reply::Refused)
            }
            (ProbeVia::Auto, _) => false,
        })
        .map(|(i, _)| i)
        .collect()
}

/// A server's AdminServer, at the addresses to try.
struct AdminServer<'a> {
    host: &'a str,
    addrs: Vec<SocketAddr>,
    endpoint: &'a AdminEndpoint,
    port: u16,
}

/// What the AdminServer told.
struct AdminAsked {
    /// The words it answered.
    words: Vec<Word>,
    /// The first failure, said for the report.
    error: Option<String>,
    /// The address that last answered.
    reached: Option<SocketAddr>,
}

/// The `wanted` words asked of the AdminServer, their answers put into
/// `answers`.
async fn ask_admin(
    server: &AdminServer<'_>,
    wanted: Vec<usize>,
    answers: &mut Answers,
    opts: &ProbeOptions,
) -> AdminAsked {
    let mut asked = AdminAsked {
        words: Vec::new(),
        error: None,
        reached: None,
    };
    let mut reached: Option<SocketAddr> = None;
    for i in wanted {
        let word = answers[i].0;
        let targets = reached.map_or(server.addrs.clone(), |a| vec![a]);
        let mut got = Err(WordError::ConnectionRefused);
        for addr in targets {
            got = admin::ask(
                server.host,
                addr,
                server.endpoint,
                word,
                opts.timeout,
                opts.max_answer_bytes,
            )
            .await;
            if got.is_ok() {
                reached = Some(addr);
                break;
            }
        }
        match got {
            Ok(text) => {
                answers[i].1 = Some(Ok(text));
                asked.words.push(word);
                asked.reached = reached;
            }
            Err(e) => {
                let give_up = e.ends_probe();
                let port = server.port;
                asked
                    .error
                    .get_or_insert_with(|| format!("AdminServer on port {port}: {e}"));
                // Reading only the AdminServer, its silence is
                // the server's; otherwise the refusal stands.
                if opts.via == ProbeVia::Admin {
                    answers[i].1 = Some(Err(e));
                }
                if give_up {
                    break;
                }
            }
        }
    }
    asked
}

/// The releases the servers of `connect` report in `srvr` (whitelisted on
/// every release), as `[major, minor, patch]`, asked all at once; servers
/// that do not answer the word (down, a TLS-only port) are left out.
pub async fn server_releases(connect: &ConnectString, timeout: Duration) -> Vec<[u32; 3]> {
    let asks = connect.hosts.iter().map(|(host, port)| async move {
        let addrs = resolve(host, *port, timeout).await.ok()?;
        let (_, text) = send_to_any(&addrs, Word::Srvr, timeout, 1 << 16)
            .await
            .ok()?;
        let version = parse::Version::parse(&parse::parse_srvr(&text).version?);
        match version.numbers[..] {
            [a, b, c] => Some([a, b, c]),
            _ => None,
        }
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

// Kept with the four-letter words rather than with sessions: it asks
// `srvr`, and connecting needs nothing from here.
impl EnsembleSpec {
    /// Whether writes must be as a 3.4 server takes them: some server of
    /// the ensemble says (in `srvr`) that it runs a release before 3.5, as
    /// during a rolling upgrade from 3.4. Over TLS nobody can be asked, and
    /// 3.4 spoke no TLS: `false`.
    pub async fn writes_as_3_4(&self) -> bool {
        if self.tls.is_some() {
            return false;
        }
        server_releases(&self.connect, self.connect_timeout)
            .await
            .iter()
            .any(|[major, minor, _]| (*major, *minor) < (3, 5))
    }
}

/// What one server's `srvr` says of its role: `Ok((mode, zxid))`, or why
/// it said nothing usable (down, not serving, the word refused).
pub(crate) async fn server_role(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(parse::Mode, Option<u64>), String> {
    let addrs = resolve(host, port, timeout)
        .await
        .map_err(|e| format!("down ({e})"))?;
    let (_, text) = send_to_any(&addrs, Word::Srvr, timeout, 1 << 16)
        .await
        .map_err(|e| format!("down ({e})"))?;
    match parse::classify(&text) {
        parse::Reply::Refused => Err("refuses srvr (not in 4lw.commands.whitelist)".into()),
        parse::Reply::NotServing => Err("not serving requests (no quorum?)".into()),
        parse::Reply::Empty => Err("closed the connection without answering srvr".into()),
        parse::Reply::Data(text) => {
            let srvr = parse::parse_srvr(text);
            match srvr.mode {
                Some(_) if srvr.read_only => Ok((parse::Mode::ReadOnly, srvr.zxid)),
                Some(mode) => Ok((mode, srvr.zxid)),
                None => Err(format!(
                    "answered srvr without a Mode line: {}",
                    parse::first_line(text)
                )),
            }
        }
    }
}

/// Probes every server of a connect string at once. The chroot plays no
/// part: four-letter words concern the whole server. A server listed twice
/// is probed once, so it cannot count as two leaders.
pub async fn probe_ensemble(
    side: &str,
    connect: &ConnectString,
    opts: &ProbeOptions,
) -> EnsembleView {
    let admin = if side == "target" {
        &opts.target_admin
    } else {
        &opts.source_admin
    };
    let mut seen = HashSet::new();
    // With the index in the connect string, which picks the admin port.
    let listed: Vec<(usize, (String, u16))> = connect
        .hosts
        .iter()
        .cloned()
        .enumerate()
        .filter(|(_, h)| seen.insert(h.clone()))
        .collect();
    let probes = futures::future::join_all(
        listed
            .iter()
            .map(|(i, (h, p))| probe_server(h, *p, opts, admin, admin.port_for(*i))),
    )
    .await;
    let hosts: Vec<(String, u16)> = listed.into_iter().map(|(_, h)| h).collect();
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
