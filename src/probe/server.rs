//! One server's probe result: the typed model assembled from the answers to
//! each four-letter word.
//!
//! Assembly is a pure function of the answers ([`ServerProbe::from_answers`]),
//! so every state (down, refused, not serving, read-only, garbled) can be
//! built from captured outputs in tests without a network.

use std::collections::BTreeMap;

use serde::Serialize;

use super::parse::{self, Isro, Latency, MetricValue, Mode, NamespaceMetrics, Reply, Version};
use super::{Word, WordError};

/// How one word went.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WordOutcome {
    /// The server answered and the answer was read.
    Answered,
    /// Not in the server's `4lw.commands.whitelist`.
    Refused,
    /// The server runs but does not serve requests.
    NotServing,
    /// The connection closed without an answer.
    Empty,
    /// An answer that is not what this word returns.
    Unrecognised { first_line: String },
    /// No answer: the connection failed, timed out or was cut.
    Failed { error: WordError },
    /// Not sent: an earlier word already found the server unreachable or
    /// unresponsive, and each further try would only wait out the timeout.
    Skipped,
}

/// Whether a server could be read, and if not, why.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerState {
    /// Serving: `srvr` (or `mntr`) reported its mode.
    Up,
    /// The process answers (`ruok` may say `imok`) but it serves no
    /// requests: it has no quorum, or it is still starting.
    NotServing,
    /// It answers, but refuses both `srvr` and `mntr`: nothing to read.
    Refused,
    /// Something answers on the port, but not as a ZooKeeper server does
    /// (a TLS-only port, another service).
    Unrecognised { reason: String },
    /// No answer at all.
    Down { reason: String, error: WordError },
}

impl ServerState {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ServerState::Up => "up",
            ServerState::NotServing => "not serving",
            ServerState::Refused => "refused",
            ServerState::Unrecognised { .. } => "unrecognised",
            ServerState::Down { .. } => "down",
        }
    }
}

/// A zxid: epoch in the high 32 bits, counter in the low 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Zxid(pub u64);

impl Zxid {
    pub(crate) fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub(crate) fn counter(self) -> u32 {
        self.0 as u32
    }

    /// Transactions `self` has that `older` lacks. Within an epoch, the
    /// counter difference. Across epochs only the newer epoch's transactions
    /// count: a member syncs with its leader when an epoch begins, so a
    /// member still at the old epoch's last zxid (as followers are right
    /// after an election) misses nothing from before.
    pub(crate) fn transactions_after(self, older: Zxid) -> u64 {
        if self <= older {
            0
        } else if self.epoch() == older.epoch() {
            u64::from(self.counter() - older.counter())
        } else {
            u64::from(self.counter())
        }
    }
}

impl std::fmt::Display for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

// A hex string: JSON numbers above 2^53 lose digits in many readers, and
// zxids are always shown in hex by ZooKeeper.
impl Serialize for Zxid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Everything one server said. Every field is `None` when the server did
/// not say it (down, not serving, the word not whitelisted, a version
/// without the metric, or a key that is leader-only or Unix-only).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerProbe {
    /// `host:port` as given in the connect string.
    pub address: String,
    /// The socket address the answers came from.
    pub resolved: Option<String>,
    pub state: ServerState,
    pub mode: Option<Mode>,
    pub version: Option<Version>,
    /// `ruok`: `Some(true)` for `imok`; `None` if not answered.
    pub ruok: Option<bool>,
    /// `isro`.
    pub isro: Option<Isro>,
    /// `zk_peer_state` of a quorum member, e.g. `following - broadcast`.
    pub peer_state: Option<String>,
    /// Last processed zxid (`srvr`; `mntr` does not carry it).
    pub zxid: Option<Zxid>,
    pub latency: Option<Latency>,
    pub packets_received: Option<u64>,
    pub packets_sent: Option<u64>,
    /// Requests queued in the server.
    pub outstanding: Option<u64>,
    /// Client connections, this probe's own included.
    pub connections: Option<u64>,
    pub watches: Option<u64>,
    /// `wchs`: distinct watched paths.
    pub watched_paths: Option<u64>,
    /// Every entry of the server's data tree, system nodes and ephemerals
    /// included (an empty 3.5+ tree counts 5).
    pub znodes: Option<u64>,
    pub ephemerals: Option<u64>,
    /// Bytes of data and paths, as the server estimates them.
    pub approx_data_size: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub global_sessions: Option<u64>,
    pub local_sessions: Option<u64>,
    pub uptime_ms: Option<u64>,
    /// Voting members in the configuration (`zk_quorum_size`).
    pub quorum_size: Option<u64>,
    /// Leader only: learner handlers (`zk_learners`, `zk_followers` before 3.6).
    pub learners: Option<u64>,
    /// Leader only.
    pub synced_followers: Option<u64>,
    pub synced_non_voting_followers: Option<u64>,
    pub synced_observers: Option<u64>,
    pub pending_syncs: Option<u64>,
    /// Times this server's tree digest disagreed with the leader's (3.6+).
    pub digest_mismatches: Option<u64>,
    /// `conf`: this server's id (0 for a standalone server).
    pub server_id: Option<u64>,
    /// `conf`: the ensemble's members as this server knows them.
    pub members: Vec<parse::Member>,
    /// `envi`.
    pub java_version: Option<String>,
    /// `envi`.
    pub host_name: Option<String>,
    /// `mntr`'s per-namespace metrics (3.7+), by top-level znode name.
    pub namespaces: BTreeMap<String, NamespaceMetrics>,
    /// How each word went.
    pub words: BTreeMap<Word, WordOutcome>,
    /// Every `mntr` key as the server printed it.
    pub mntr: BTreeMap<String, MetricValue>,
    /// Wall time of this server's probe.
    pub elapsed_ms: u64,
    /// Words whose answers came from the AdminServer (`/commands/...`)
    /// instead of the client port; empty when every answer was a word's.
    pub admin_words: Vec<Word>,
    /// Why the AdminServer could not stand in for refused words.
    pub admin_error: Option<String>,
}

impl ServerProbe {
    fn empty(address: &str) -> ServerProbe {
        ServerProbe {
            address: address.to_string(),
            resolved: None,
            state: ServerState::Up,
            mode: None,
            version: None,
            ruok: None,
            isro: None,
            peer_state: None,
            zxid: None,
            latency: None,
            packets_received: None,
            packets_sent: None,
            outstanding: None,
            connections: None,
            watches: None,
            watched_paths: None,
            znodes: None,
            ephemerals: None,
            approx_data_size: None,
            open_fds: None,
            max_fds: None,
            global_sessions: None,
            local_sessions: None,
            uptime_ms: None,
            quorum_size: None,
            learners: None,
            synced_followers: None,
            synced_non_voting_followers: None,
            synced_observers: None,
            pending_syncs: None,
            digest_mismatches: None,
            server_id: None,
            members: Vec::new(),
            java_version: None,
            host_name: None,
            namespaces: BTreeMap::new(),
            words: BTreeMap::new(),
            mntr: BTreeMap::new(),
            elapsed_ms: 0,
            admin_words: Vec::new(),
            admin_error: None,
        }
    }

    /// A server whose name could not be resolved: nothing was sent.
    pub(crate) fn unresolved(address: &str, words: &[Word], error: WordError) -> ServerProbe {
        let mut p = ServerProbe::empty(address);
        p.words = words.iter().map(|w| (*w, WordOutcome::Skipped)).collect();
        p.state = ServerState::Down {
            reason: error.to_string(),
            error,
        };
        p
    }

    /// Builds the model from each word's raw answer (or failure). A word
    /// absent from `answers` was not sent; `None` means it was skipped.
    pub fn from_answers(
        address: &str,
        answers: &[(Word, Option<Result<String, WordError>>)],
    ) -> ServerProbe {
        let mut p = ServerProbe::empty(address);
        let mut srvr: Option<parse::Srvr> = None;
        let mut mntr: Option<parse::Mntr> = None;
        let mut not_serving = false;
        let mut first_failure: Option<WordError> = None;
        let mut unrecognised: Option<(Word, String)> = None;
        let mut any_answer = false;

        for (word, answer) in answers {
            let outcome = match answer {
                None => WordOutcome::Skipped,
                Some(Err(e)) => {
                    first_failure.get_or_insert_with(|| e.clone());
                    WordOutcome::Failed { error: e.clone() }
                }
                Some(Ok(text)) => {
                    let outcome = p.read_answer(*word, text, &mut srvr, &mut mntr);
                    match &outcome {
                        WordOutcome::NotServing => not_serving = true,
                        WordOutcome::Unrecognised { first_line } => {
                            unrecognised.get_or_insert((*word, first_line.clone()));
                        }
                        _ => {}
                    }
                    // An empty answer, or a refusal, is still a live process.
                    any_answer = true;
                    outcome
                }
            };
            p.words.insert(*word, outcome);
        }

        if let Some(m) = &mntr {
            p.take_mntr(m);
        }
        // srvr's values were taken in one snapshot, with the zxid, so they
        // win over mntr's for the fields both carry.
        if let Some(s) = &srvr {
            p.take_srvr(s);
        }

        let refused = |w: Word| matches!(p.words.get(&w), Some(WordOutcome::Refused));
        p.state = if p.mode.is_some() {
            ServerState::Up
        } else if not_serving || p.isro == Some(Isro::NotServing) {
            ServerState::NotServing
        } else if let Some((word, line)) = unrecognised {
            ServerState::Unrecognised {
                reason: format!("{word} was answered with {line:?}"),
            }
        } else if refused(Word::Srvr) && (refused(Word::Mntr) || !p.words.contains_key(&Word::Mntr))
        {
            ServerState::Refused
        } else if p.ruok == Some(true) {
            // The process is alive (imok) but no word shows it serving, as
            // while a member shuts its server down on losing its quorum.
            ServerState::NotServing
        } else if let (false, Some(error)) = (any_answer, first_failure.clone()) {
            ServerState::Down {
                reason: error.to_string(),
                error,
            }
        } else if let Some(error) = first_failure {
            // It answered something, then stopped answering.
            ServerState::Unrecognised {
                reason: format!("answered, then failed: {error}"),
            }
        } else if p.words.get(&Word::Srvr) == Some(&WordOutcome::Empty) {
            ServerState::Unrecognised {
                reason: "it closed the connection without answering srvr".to_string(),
            }
        } else {
            ServerState::Unrecognised {
                reason: "no word reported the server's mode".to_string(),
            }
        };
        p
    }

    /// Reads one answer into the model and says how it went.
    fn read_answer(
        &mut self,
        word: Word,
        text: &str,
        srvr: &mut Option<parse::Srvr>,
        mntr: &mut Option<parse::Mntr>,
    ) -> WordOutcome {
        let data = match parse::classify(text) {
            Reply::Refused => return WordOutcome::Refused,
            Reply::NotServing => return WordOutcome::NotServing,
            Reply::Empty => return WordOutcome::Empty,
            Reply::Data(d) => d,
        };
        let unrecognised = || WordOutcome::Unrecognised {
            first_line: parse::first_line(data),
        };
        match word {
            Word::Srvr => {
                let s = parse::parse_srvr(data);
                if !s.recognised() {
                    return unrecognised();
                }
                *srvr = Some(s);
            }
            Word::Mntr => {
                let m = parse::parse_mntr(data);
                if m.get("zk_version").is_none() && m.get("zk_server_state").is_none() {
                    return unrecognised();
                }
                *mntr = Some(m);
            }
            Word::Ruok => match parse::parse_ruok(data) {
                Some(true) => self.ruok = Some(true),
                _ => return unrecognised(),
            },
            Word::Isro => match parse::parse_isro(data) {
                Some(v) => self.isro = Some(v),
                None => return unrecognised(),
            },
            Word::Conf => {
                let c = parse::parse_conf(data);
                if c.client_port.is_none() && c.server_id.is_none() {
                    return unrecognised();
                }
                self.server_id = c.server_id;
                self.members = c.members;
            }
            Word::Envi => {
                let e = parse::parse_envi(data);
                if !e.contains_key("zookeeper.version") {
                    return unrecognised();
                }
                if self.version.is_none() {
                    self.version = e.get("zookeeper.version").map(|v| Version::parse(v));
                }
                self.java_version = e.get("java.version").cloned();
                self.host_name = e.get("host.name").cloned();
            }
            Word::Wchs => {
                let w = parse::parse_wchs(data);
                if w.total_watches.is_none() && w.paths.is_none() {
                    return unrecognised();
                }
                self.watched_paths = w.paths;
                self.watches = self.watches.or(w.total_watches);
            }
        }
        WordOutcome::Answered
    }

    fn take_mntr(&mut self, m: &parse::Mntr) {
        if let Some(v) = m.text("zk_version") {
            self.version = Some(Version::parse(&v));
        }
        if let Some(state) = m.text("zk_server_state") {
            self.mode = Some(Mode::parse(&state));
        }
        self.peer_state = m.text("zk_peer_state");
        let lat = (
            m.f64("zk_min_latency"),
            m.f64("zk_avg_latency"),
            m.f64("zk_max_latency"),
        );
        if let (Some(min), Some(avg), Some(max)) = lat {
            self.latency = Some(Latency { min, avg, max });
        }
        self.packets_received = m.u64("zk_packets_received");
        self.packets_sent = m.u64("zk_packets_sent");
        self.outstanding = m.u64("zk_outstanding_requests");
        self.connections = m.u64("zk_num_alive_connections");
        self.watches = m.u64("zk_watch_count").or(self.watches);
        self.znodes = m.u64("zk_znode_count");
        self.ephemerals = m.u64("zk_ephemerals_count");
        self.approx_data_size = m.u64("zk_approximate_data_size");
        self.open_fds = m.u64("zk_open_file_descriptor_count");
        self.max_fds = m.u64("zk_max_file_descriptor_count");
        self.global_sessions = m.u64("zk_global_sessions");
        self.local_sessions = m.u64("zk_local_sessions");
        self.uptime_ms = m.u64("zk_uptime");
        self.quorum_size = m.u64("zk_quorum_size");
        self.learners = m.learners();
        self.synced_followers = m.u64("zk_synced_followers");
        self.synced_non_voting_followers = m.u64("zk_synced_non_voting_followers");
        self.synced_observers = m.u64("zk_synced_observers");
        self.pending_syncs = m.u64("zk_pending_syncs");
        self.digest_mismatches = m.u64("zk_digest_mismatches_count");
        self.namespaces = m.namespaces();
        self.mntr = m.metrics.clone();
    }

    fn take_srvr(&mut self, s: &parse::Srvr) {
        if let Some(v) = &s.version {
            self.version = Some(Version::parse(v));
        }
        if let Some(mode) = &s.mode {
            self.mode = Some(mode.clone());
        } else if s.read_only {
            self.mode = Some(Mode::ReadOnly);
        }
        self.zxid = s.zxid.map(Zxid);
        self.latency = s.latency.or(self.latency);
        self.packets_received = s.received.or(self.packets_received);
        self.packets_sent = s.sent.or(self.packets_sent);
        self.outstanding = s.outstanding.or(self.outstanding);
        self.connections = s.connections.or(self.connections);
        self.znodes = s.node_count.or(self.znodes);
    }

    /// Serving requests, read-only included.
    pub(crate) fn is_serving(&self) -> bool {
        self.state == ServerState::Up
    }

    /// `leader`, `follower`, …, or the state when the server has no mode:
    /// `down`, `not serving`, `refused`, `unrecognised`.
    pub fn role(&self) -> &str {
        match (&self.state, &self.mode) {
            (ServerState::Up, Some(mode)) => mode.as_str(),
            (state, _) => state.name(),
        }
    }

    /// Open file descriptors as a share of the limit.
    pub(crate) fn fd_usage(&self) -> Option<f64> {
        match (self.open_fds, self.max_fds) {
            (Some(open), Some(max)) if max > 0 => Some(open as f64 / max as f64),
            _ => None,
        }
    }

    /// Whether a word was refused by the whitelist.
    pub fn refused(&self, word: Word) -> bool {
        matches!(self.words.get(&word), Some(WordOutcome::Refused))
    }
}
