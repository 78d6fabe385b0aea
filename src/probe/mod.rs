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

mod client;
pub mod ensemble;
pub mod parse;
pub mod render;
mod server;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::connect::ConnectString;

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

/// Probes one server: the words one after another, over one resolved
/// address, so the server's connection count includes only this probe's
/// own connection, and a server that stopped answering costs one timeout,
/// not one per word.
pub(crate) async fn probe_server(host: &str, port: u16, opts: &ProbeOptions) -> ServerProbe {
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
