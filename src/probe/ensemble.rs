//! The ensemble view built from its servers' probes, its health verdict,
//! and the znode-count parity between two ensembles.
//!
//! The verdict is structural: who leads, who serves, who is in sync, whether
//! members agree with each other. Thresholds on latency or queue length
//! belong to whoever watches the trend (the Nagios checks take `-w/-c`), so
//! [`HealthPolicy`] leaves them off unless asked.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::parse::{Isro, Mode};
use super::server::{ServerProbe, ServerState, Zxid};
use super::Word;
use crate::error::{EXIT_HEALTHY, EXIT_UNHEALTHY};

/// What counts as unhealthy beyond the structural checks.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthPolicy {
    /// Warn when a server's open file descriptors reach this share of its
    /// limit.
    pub max_fd_usage: f64,
    /// Warn when serving members' znode counts differ by more than this
    /// (zk-shell `chkzk`'s default).
    pub max_znode_spread: u64,
    /// Likewise for ephemerals (`chkzk`'s default).
    pub max_ephemeral_spread: u64,
    /// Warn when serving members' last zxids are more than this many
    /// transactions apart (`chkzk`'s default).
    pub max_zxid_spread: u64,
    /// Warn above this many outstanding requests on a server; off by default.
    pub max_outstanding: Option<u64>,
    /// Warn above this average latency (ms) on a server; off by default.
    pub max_avg_latency_ms: Option<f64>,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            max_fd_usage: 0.9,
            max_znode_spread: 100,
            max_ephemeral_spread: 50,
            max_zxid_spread: 200,
            max_outstanding: None,
            max_avg_latency_ms: None,
        }
    }
}

/// How bad a reason is, on the same scale as [`Verdict`]. Ordered: the
/// verdict is the worst reason, UNKNOWN above WARNING (what could not be
/// read may be down). `check health` maps it onto the Nagios states, where
/// UNKNOWN ranks below WARNING ([`crate::nagios::output::State::worst`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Degraded, still serving.
    Warning,
    /// Something could not be read, so its health is not known.
    Unknown,
    /// Not serving, or serving wrongly (several leaders).
    Critical,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Unknown => "unknown",
            Severity::Critical => "critical",
        }
    }
}

/// What a reason is about, for programs that act on some and not others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    ServerDown,
    NotServing,
    ReadOnly,
    Refused,
    Unrecognised,
    UnknownMode,
    NoServerServing,
    NoLeader,
    LeaderNotListed,
    MultipleLeaders,
    MixedModes,
    SeveralStandalone,
    FollowersNotSynced,
    SyncPending,
    DuplicateServerId,
    ZxidSpread,
    ZnodeCountSpread,
    EphemeralCountSpread,
    FileDescriptors,
    DigestMismatches,
    Outstanding,
    Latency,
}

/// One thing wrong with an ensemble.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reason {
    pub severity: Severity,
    pub code: ReasonCode,
    /// The server it concerns, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub message: String,
}

/// The verdict: healthy, or the worst reason's [`Severity`], in the same
/// order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    Warning,
    Unknown,
    Critical,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Warning => "warning",
            Verdict::Unknown => "unknown",
            Verdict::Critical => "critical",
        }
    }
}

/// What the serving servers make the ensemble out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EnsembleKind {
    /// Leader, followers, observers (or read-only members).
    Quorum,
    Standalone,
    /// Standalone servers listed together with quorum members.
    Mixed,
    /// No server serves, so nothing says.
    Unknown,
}

/// Lowest, highest, and how many transactions the lowest lacks (see
/// [`Zxid::transactions_after`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ZxidRange {
    pub min: Zxid,
    pub max: Zxid,
    pub spread: u64,
}

/// Latency over the serving servers, in ms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    pub min: f64,
    pub max: f64,
    /// The highest of the servers' averages, and whose it is.
    pub worst_avg: f64,
    pub worst_avg_server: String,
}

/// One ensemble as its servers describe it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnsembleView {
    /// `source` or `target`.
    pub side: String,
    /// The servers probed, as listed (chroot left out, duplicates dropped).
    pub connect: String,
    pub kind: EnsembleKind,
    pub verdict: Verdict,
    /// No reasons at all.
    pub healthy: bool,
    /// Everything wrong, worst first.
    pub reasons: Vec<Reason>,
    /// What could not be checked, and why (e.g. `mntr` not whitelisted).
    pub unchecked: Vec<String>,
    pub servers_listed: usize,
    /// Servers that serve requests (read-only ones included).
    pub servers_serving: usize,
    /// The one leader among the listed servers, if there is exactly one.
    pub leader: Option<String>,
    pub leaders: usize,
    pub followers: usize,
    pub observers: usize,
    /// From the leader's `mntr` (or a member's): voting members configured.
    pub quorum_size: Option<u64>,
    /// From the leader's `mntr`.
    pub learners: Option<u64>,
    pub synced_followers: Option<u64>,
    pub synced_observers: Option<u64>,
    pub pending_syncs: Option<u64>,
    /// Over the serving members that are not read-only.
    pub zxid: Option<ZxidRange>,
    /// The server whose counts stand for the ensemble: the leader, the
    /// standalone server, or else the serving member with the highest zxid.
    pub reference: Option<String>,
    pub znodes: Option<u64>,
    pub znode_spread: Option<u64>,
    pub ephemerals: Option<u64>,
    pub ephemeral_spread: Option<u64>,
    pub approx_data_size: Option<u64>,
    pub latency: Option<LatencySummary>,
    /// The largest request queue of any serving server.
    pub outstanding_max: Option<u64>,
    /// Summed over the servers that reported it.
    pub connections_total: Option<u64>,
    pub watches_total: Option<u64>,
    /// The highest open/max file descriptor ratio of any server.
    pub fd_usage_max: Option<f64>,
    /// Distinct releases reported (more than one during a rolling upgrade).
    pub versions: Vec<String>,
    pub servers: Vec<ServerProbe>,
}

fn reason(severity: Severity, code: ReasonCode, server: Option<&str>, message: String) -> Reason {
    Reason {
        severity,
        code,
        server: server.map(str::to_string),
        message,
    }
}

fn spread<T: Ord + Copy>(values: impl Iterator<Item = T>) -> Option<(T, T)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn sum(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values
        .flatten()
        .fold(None, |acc, v| Some(acc.unwrap_or(0u64).saturating_add(v)))
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The listed servers by what they serve as, and what that makes of the
/// ensemble.
struct Roles<'a> {
    serving: Vec<&'a ServerProbe>,
    leaders: Vec<&'a ServerProbe>,
    followers: Vec<&'a ServerProbe>,
    observers: Vec<&'a ServerProbe>,
    standalone: Vec<&'a ServerProbe>,
    kind: EnsembleKind,
    /// A lost member of an ensemble that still serves is a degradation; of
    /// one that does not, part of an outage.
    member_severity: Severity,
}

impl<'a> Roles<'a> {
    fn of(servers: &'a [ServerProbe]) -> Roles<'a> {
        let serving: Vec<&ServerProbe> = servers.iter().filter(|s| s.is_serving()).collect();
        let with_mode = |m: Mode| -> Vec<&ServerProbe> {
            serving
                .iter()
                .copied()
                .filter(|s| s.mode.as_ref() == Some(&m))
                .collect()
        };
        let leaders = with_mode(Mode::Leader);
        let followers = with_mode(Mode::Follower);
        let observers = with_mode(Mode::Observer);
        let standalone = with_mode(Mode::Standalone);
        let quorum_members = serving
            .iter()
            .filter(|s| s.mode.as_ref().is_some_and(Mode::is_quorum_member))
            .count();
        let kind = match (standalone.is_empty(), quorum_members == 0) {
            (false, false) => EnsembleKind::Mixed,
            (false, true) => EnsembleKind::Standalone,
            (true, false) => EnsembleKind::Quorum,
            (true, true) => EnsembleKind::Unknown,
        };
        // A follower serves only while some leader leads, listed or not.
        let ensemble_serves = match kind {
            EnsembleKind::Quorum => !leaders.is_empty() || !followers.is_empty(),
            EnsembleKind::Standalone | EnsembleKind::Mixed => true,
            EnsembleKind::Unknown => false,
        };
        let member_severity = if ensemble_serves {
            Severity::Warning
        } else {
            Severity::Critical
        };
        Roles {
            serving,
            leaders,
            followers,
            observers,
            standalone,
            kind,
            member_severity,
        }
    }

    /// The one leader, when exactly one leads.
    fn leader(&self) -> Option<&'a ServerProbe> {
        (self.leaders.len() == 1).then(|| self.leaders[0])
    }

    /// Serving members but the read-only ones: those are stale by design,
    /// and would only blur the comparison between the members in the quorum.
    fn in_quorum(&self) -> Vec<&'a ServerProbe> {
        self.serving
            .iter()
            .copied()
            .filter(|s| s.mode != Some(Mode::ReadOnly))
            .collect()
    }

    /// The leader's count of voters, else any member's, else the most
    /// voters a member's configuration lists.
    fn quorum_size(&self) -> Option<u64> {
        self.leader()
            .and_then(|l| l.quorum_size)
            .or_else(|| self.serving.iter().find_map(|s| s.quorum_size))
            .or_else(|| {
                let voters = self
                    .serving
                    .iter()
                    .map(|s| s.members.iter().filter(|m| m.votes()).count() as u64)
                    .max()?;
                (voters > 0).then_some(voters)
            })
    }
}

/// What the checks found wrong, and what they could not check.
#[derive(Default)]
struct Findings {
    reasons: Vec<Reason>,
    unchecked: Vec<String>,
}

impl Findings {
    fn add(&mut self, severity: Severity, code: ReasonCode, at: Option<&str>, message: String) {
        self.reasons.push(reason(severity, code, at, message));
    }

    /// Whether one server is up and serving.
    fn server_state(&mut self, s: &ServerProbe, member_severity: Severity) {
        let at = Some(s.address.as_str());
        let addr = &s.address;
        match &s.state {
            ServerState::Down { reason: why, .. } => self.add(
                member_severity,
                ReasonCode::ServerDown,
                at,
                format!("{addr} is down: {why}"),
            ),
            ServerState::NotServing => {
                let mut evidence = Vec::new();
                if s.ruok == Some(true) {
                    evidence.push("ruok: imok");
                }
                if s.isro == Some(Isro::NotServing) {
                    evidence.push("isro: null");
                }
                let evidence = if evidence.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", evidence.join(", "))
                };
                self.add(
                    member_severity,
                    ReasonCode::NotServing,
                    at,
                    format!(
                        "{addr} runs{evidence} but serves no requests: it has no quorum, \
                         or is still starting"
                    ),
                );
            }
            ServerState::Refused => self.add(
                Severity::Unknown,
                ReasonCode::Refused,
                at,
                format!(
                    "{addr} refuses srvr and mntr (4lw.commands.whitelist), so nothing \
                     about it can be checked"
                ),
            ),
            ServerState::Unrecognised { reason: why } => self.add(
                Severity::Unknown,
                ReasonCode::Unrecognised,
                at,
                format!("{addr} does not answer like a ZooKeeper server: {why}"),
            ),
            ServerState::Up => {}
        }
    }

    /// A serving server's mode and load, against the policy.
    fn serving_server(
        &mut self,
        s: &ServerProbe,
        member_severity: Severity,
        policy: &HealthPolicy,
    ) {
        let at = Some(s.address.as_str());
        let addr = &s.address;
        match &s.mode {
            Some(Mode::ReadOnly) => self.add(
                member_severity,
                ReasonCode::ReadOnly,
                at,
                format!("{addr} serves read-only clients only: it has lost its quorum"),
            ),
            Some(Mode::Other(m)) => self.add(
                Severity::Unknown,
                ReasonCode::UnknownMode,
                at,
                format!("{addr} reports mode {m:?}, which zkparity does not know"),
            ),
            _ => {}
        }
        if let (Some(ratio), Some(open), Some(max)) = (s.fd_usage(), s.open_fds, s.max_fds) {
            if ratio >= policy.max_fd_usage {
                self.add(
                    Severity::Warning,
                    ReasonCode::FileDescriptors,
                    at,
                    format!(
                        "{addr} uses {open} of {max} file descriptors ({:.0}%)",
                        ratio * 100.0
                    ),
                );
            }
        }
        if let Some(n) = s.digest_mismatches.filter(|n| *n > 0) {
            self.add(
                Severity::Warning,
                ReasonCode::DigestMismatches,
                at,
                format!(
                    "{addr}'s tree digest disagreed with the leader's {} \
                     (zk_digest_mismatches_count): its data may have diverged",
                    plural(n, "time", "times")
                ),
            );
        }
        if let (Some(max), Some(n)) = (policy.max_outstanding, s.outstanding) {
            if n > max {
                self.add(
                    Severity::Warning,
                    ReasonCode::Outstanding,
                    at,
                    format!("{addr} has {n} outstanding requests (more than {max})"),
                );
            }
        }
        if let (Some(max), Some(lat)) = (policy.max_avg_latency_ms, s.latency) {
            if lat.avg > max {
                self.add(
                    Severity::Warning,
                    ReasonCode::Latency,
                    at,
                    format!(
                        "{addr} averages {} ms per request (more than {max} ms)",
                        lat.avg
                    ),
                );
            }
        }
        if s.refused(Word::Mntr) {
            self.unchecked.push(format!(
                "{addr} refuses mntr (not in 4lw.commands.whitelist): its ephemerals, \
                 watches, file descriptors{} are unknown",
                if s.mode == Some(Mode::Leader) {
                    " and its followers' sync state"
                } else {
                    ""
                }
            ));
        }
    }

    /// What the mix of modes says: nobody serving, standalone servers among
    /// quorum members or beside each other.
    fn shape(&mut self, roles: &Roles, listed: usize) {
        let standalone = &roles.standalone;
        match roles.kind {
            EnsembleKind::Unknown => self.add(
                Severity::Critical,
                ReasonCode::NoServerServing,
                None,
                if listed == 1 {
                    "the only listed server serves no requests".to_string()
                } else {
                    format!("none of the {listed} listed servers serves requests")
                },
            ),
            EnsembleKind::Mixed => self.add(
                Severity::Critical,
                ReasonCode::MixedModes,
                None,
                format!(
                    "standalone {} listed with quorum members: the connect string spans \
                     different ensembles",
                    names(standalone)
                ),
            ),
            EnsembleKind::Standalone if standalone.len() > 1 => self.add(
                Severity::Critical,
                ReasonCode::SeveralStandalone,
                None,
                format!(
                    "{} standalone servers ({}): each is an ensemble of its own",
                    standalone.len(),
                    addresses(standalone)
                ),
            ),
            EnsembleKind::Quorum | EnsembleKind::Standalone => {}
        }
    }

    /// A quorum has exactly one leader.
    fn leadership(&mut self, roles: &Roles) {
        if !matches!(roles.kind, EnsembleKind::Quorum | EnsembleKind::Mixed) {
            return;
        }
        match roles.leaders.len() {
            1 => {}
            0 if !roles.followers.is_empty() || !roles.observers.is_empty() => self.add(
                Severity::Warning,
                ReasonCode::LeaderNotListed,
                None,
                "no listed server leads, yet followers serve: the leader is a server the \
                 connect string leaves out"
                    .to_string(),
            ),
            0 => self.add(
                Severity::Critical,
                ReasonCode::NoLeader,
                None,
                "no leader: the ensemble has lost its quorum".to_string(),
            ),
            n => self.add(
                Severity::Critical,
                ReasonCode::MultipleLeaders,
                None,
                format!(
                    "{n} servers say they lead ({}): the connect string spans different \
                     ensembles, or an ensemble has split",
                    addresses(&roles.leaders)
                ),
            ),
        }
    }

    /// The leader's followers in sync, and syncs under way.
    fn leader_sync(&mut self, l: &ServerProbe, quorum_size: Option<u64>) {
        let at = Some(l.address.as_str());
        match (l.synced_followers, quorum_size) {
            (Some(synced), Some(q)) if q >= 1 && synced < q - 1 => {
                // The leader plus its synced followers must stay a majority
                // of the voters.
                let spare = (synced + 1) as i64 - (q / 2 + 1) as i64;
                let risk = if spare <= 0 {
                    "; one more failure loses the quorum"
                } else {
                    ""
                };
                self.add(
                    Severity::Warning,
                    ReasonCode::FollowersNotSynced,
                    at,
                    format!(
                        "the leader {} has {synced} of {} followers in sync{risk}",
                        l.address,
                        q - 1
                    ),
                );
            }
            (None, _) if !l.refused(Word::Mntr) && l.mntr.is_empty() => self.unchecked.push(
                format!("followers in sync: the leader {} gave no mntr", l.address),
            ),
            _ => {}
        }
        if let Some(n) = l.pending_syncs.filter(|n| *n > 0) {
            self.add(
                Severity::Warning,
                ReasonCode::SyncPending,
                at,
                format!(
                    "the leader {} is syncing {}",
                    l.address,
                    plural(n, "learner", "learners")
                ),
            );
        }
    }

    /// Ids must differ between members of one ensemble (a server listed
    /// under two names also shows up here).
    fn duplicate_ids(&mut self, serving: &[&ServerProbe]) {
        let mut by_id: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        for s in serving
            .iter()
            .filter(|s| s.mode.as_ref().is_some_and(Mode::is_quorum_member))
        {
            if let Some(id) = s.server_id {
                by_id.entry(id).or_default().push(&s.address);
            }
        }
        for (id, addrs) in by_id.iter().filter(|(_, a)| a.len() > 1) {
            self.add(
                Severity::Warning,
                ReasonCode::DuplicateServerId,
                None,
                format!(
                    "{} all report serverId {id}: one server listed twice, or members of \
                     different ensembles",
                    addrs.join(", ")
                ),
            );
        }
    }

    /// How far apart the members in the quorum are: zxids, znode and
    /// ephemeral counts.
    fn spreads(&mut self, in_quorum: &[&ServerProbe], policy: &HealthPolicy) -> Spreads {
        let zxid = spread(in_quorum.iter().filter_map(|s| s.zxid)).map(|(min, max)| ZxidRange {
            min,
            max,
            spread: max.transactions_after(min),
        });
        if let Some(z) = zxid.filter(|z| z.spread > policy.max_zxid_spread) {
            let (lo, hi) = (extreme(in_quorum, z.min), extreme(in_quorum, z.max));
            let epochs = if z.min.epoch() != z.max.epoch() {
                format!(" (epochs {} and {})", z.min.epoch(), z.max.epoch())
            } else {
                String::new()
            };
            self.add(
                Severity::Warning,
                ReasonCode::ZxidSpread,
                Some(lo),
                format!(
                    "{lo} is at zxid {} while {hi} is at {}{epochs}: {} transactions behind",
                    z.min, z.max, z.spread
                ),
            );
        }
        let counts = [
            (
                "znode",
                ReasonCode::ZnodeCountSpread,
                policy.max_znode_spread,
                count_spread(in_quorum, |s| s.znodes),
            ),
            (
                "ephemeral",
                ReasonCode::EphemeralCountSpread,
                policy.max_ephemeral_spread,
                count_spread(in_quorum, |s| s.ephemerals),
            ),
        ];
        for (what, code, max, found) in &counts {
            if let Some((d, lo, hi)) = found.filter(|(d, ..)| d > max) {
                self.add(
                    Severity::Warning,
                    *code,
                    None,
                    format!(
                        "members disagree on the {what} count by {d} ({} has {}, {} has {})",
                        lo.0, lo.1, hi.0, hi.1
                    ),
                );
            }
        }
        Spreads {
            zxid,
            znodes: counts[0].3.map(|(d, ..)| d),
            ephemerals: counts[1].3.map(|(d, ..)| d),
        }
    }

    /// The worst reason first, and the verdict it makes.
    fn verdict(&mut self) -> Verdict {
        self.reasons.sort_by_key(|r| std::cmp::Reverse(r.severity));
        match self.reasons.iter().map(|r| r.severity).max() {
            None => Verdict::Healthy,
            Some(Severity::Warning) => Verdict::Warning,
            Some(Severity::Unknown) => Verdict::Unknown,
            Some(Severity::Critical) => Verdict::Critical,
        }
    }
}

struct Spreads {
    zxid: Option<ZxidRange>,
    znodes: Option<u64>,
    ephemerals: Option<u64>,
}

/// The fastest and slowest answers over the serving members, and the worst
/// average with its server.
fn latency_summary(serving: &[&ServerProbe]) -> Option<LatencySummary> {
    serving
        .iter()
        .filter_map(|s| s.latency.map(|l| (s, l)))
        .fold(None::<LatencySummary>, |acc, (s, l)| {
            Some(match acc {
                None => LatencySummary {
                    min: l.min,
                    max: l.max,
                    worst_avg: l.avg,
                    worst_avg_server: s.address.clone(),
                },
                Some(mut a) => {
                    a.min = a.min.min(l.min);
                    a.max = a.max.max(l.max);
                    if l.avg > a.worst_avg {
                        a.worst_avg = l.avg;
                        a.worst_avg_server = s.address.clone();
                    }
                    a
                }
            })
        })
}

impl EnsembleView {
    /// Builds the view and its verdict from the probes of the listed servers.
    pub fn build(
        side: &str,
        connect: &str,
        servers: Vec<ServerProbe>,
        policy: &HealthPolicy,
    ) -> EnsembleView {
        let roles = Roles::of(&servers);
        let mut found = Findings::default();
        for s in &servers {
            found.server_state(s, roles.member_severity);
            if s.is_serving() {
                found.serving_server(s, roles.member_severity, policy);
            }
        }
        found.shape(&roles, servers.len());
        found.leadership(&roles);
        let leader = roles.leader();
        let quorum_size = roles.quorum_size();
        if let Some(l) = leader {
            found.leader_sync(l, quorum_size);
        }
        found.duplicate_ids(&roles.serving);
        let in_quorum = roles.in_quorum();
        let spreads = found.spreads(&in_quorum, policy);

        let reference = leader
            .or_else(|| (roles.standalone.len() == 1).then(|| roles.standalone[0]))
            .or_else(|| {
                in_quorum
                    .iter()
                    .copied()
                    .filter(|s| s.zxid.is_some())
                    .max_by_key(|s| s.zxid)
            });
        let versions: BTreeSet<String> = servers
            .iter()
            .filter_map(|s| s.version.as_ref())
            .map(|v| v.release.clone().unwrap_or_else(|| v.text.clone()))
            .collect();
        let verdict = found.verdict();
        let serving = &roles.serving;

        EnsembleView {
            side: side.to_string(),
            connect: connect.to_string(),
            kind: roles.kind,
            verdict,
            healthy: found.reasons.is_empty(),
            reasons: found.reasons,
            unchecked: found.unchecked,
            servers_listed: servers.len(),
            servers_serving: serving.len(),
            leader: leader.map(|l| l.address.clone()),
            leaders: roles.leaders.len(),
            followers: roles.followers.len(),
            observers: roles.observers.len(),
            quorum_size: if matches!(roles.kind, EnsembleKind::Standalone) {
                None
            } else {
                quorum_size
            },
            learners: leader.and_then(|l| l.learners),
            synced_followers: leader.and_then(|l| l.synced_followers),
            synced_observers: leader.and_then(|l| l.synced_observers),
            pending_syncs: leader.and_then(|l| l.pending_syncs),
            zxid: spreads.zxid,
            reference: reference.map(|r| r.address.clone()),
            znodes: reference.and_then(|r| r.znodes),
            znode_spread: spreads.znodes,
            ephemerals: reference.and_then(|r| r.ephemerals),
            ephemeral_spread: spreads.ephemerals,
            approx_data_size: reference.and_then(|r| r.approx_data_size),
            latency: latency_summary(serving),
            outstanding_max: serving.iter().filter_map(|s| s.outstanding).max(),
            connections_total: sum(serving.iter().map(|s| s.connections)),
            watches_total: sum(serving.iter().map(|s| s.watches)),
            fd_usage_max: servers
                .iter()
                .filter_map(ServerProbe::fd_usage)
                .fold(None, |acc: Option<f64>, r| {
                    Some(acc.map_or(r, |a| a.max(r)))
                }),
            versions: versions.into_iter().collect(),
            servers,
        }
    }

    /// The server whose counts stand for the ensemble.
    pub(crate) fn reference_server(&self) -> Option<&ServerProbe> {
        let addr = self.reference.as_deref()?;
        self.servers.iter().find(|s| s.address == addr)
    }
}

fn addresses(servers: &[&ServerProbe]) -> String {
    servers
        .iter()
        .map(|s| s.address.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn names(servers: &[&ServerProbe]) -> String {
    let list = addresses(servers);
    if servers.len() == 1 {
        format!("server {list}")
    } else {
        format!("servers {list}")
    }
}

fn extreme<'a>(servers: &[&'a ServerProbe], zxid: Zxid) -> &'a str {
    servers
        .iter()
        .find(|s| s.zxid == Some(zxid))
        .map_or("?", |s| s.address.as_str())
}

/// The distance between the lowest and highest count, with who holds each.
#[allow(clippy::type_complexity)]
fn count_spread<'a>(
    servers: &[&'a ServerProbe],
    count: impl Fn(&ServerProbe) -> Option<u64>,
) -> Option<(u64, (&'a str, u64), (&'a str, u64))> {
    let values: Vec<(&str, u64)> = servers
        .iter()
        .filter_map(|s| count(s).map(|c| (s.address.as_str(), c)))
        .collect();
    let lo = values.iter().min_by_key(|(_, c)| *c)?;
    let hi = values.iter().max_by_key(|(_, c)| *c)?;
    Some((hi.1 - lo.1, *lo, *hi))
}

/// One ensemble's counts, with the system nodes taken out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SideCounts {
    /// The server the counts come from (the ensemble's reference).
    pub server: String,
    pub version: Option<String>,
    /// `Node count` / `zk_znode_count` as reported.
    pub znodes: u64,
    /// Entries every tree has: the root (counted twice), `/zookeeper`,
    /// `/zookeeper/quota`, and from 3.5 on `/zookeeper/config`.
    pub system_nodes: u64,
    /// `znodes - system_nodes`.
    pub user_znodes: u64,
    pub ephemerals: Option<u64>,
    /// `user_znodes - ephemerals`: what a migration copies.
    pub persistent: Option<u64>,
    pub approx_data_size: Option<u64>,
}

/// Entries in an empty data tree of this version.
pub fn system_nodes(version: Option<&super::parse::Version>) -> (u64, bool) {
    match version.and_then(|v| v.at_least(3, 5)) {
        Some(true) => (5, true),
        Some(false) => (4, true),
        None => (5, false),
    }
}

impl SideCounts {
    fn of(view: &EnsembleView, notes: &mut Vec<String>) -> Option<SideCounts> {
        let r = view.reference_server()?;
        let znodes = r.znodes?;
        let (system, known) = system_nodes(r.version.as_ref());
        if !known {
            notes.push(format!(
                "{}: version unknown, so 5 system nodes (3.5+) are assumed",
                view.side
            ));
        }
        let user = znodes.saturating_sub(system);
        Some(SideCounts {
            server: r.address.clone(),
            version: r
                .version
                .as_ref()
                .map(|v| v.release.clone().unwrap_or_else(|| v.text.clone())),
            znodes,
            system_nodes: system,
            user_znodes: user,
            ephemerals: r.ephemerals,
            persistent: r.ephemerals.map(|e| user.saturating_sub(e)),
            approx_data_size: r.approx_data_size,
        })
    }
}

/// The cheap parity signal between full compares: how the target's znode
/// counts differ from the source's (target minus source).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CountParity {
    pub source: Option<SideCounts>,
    pub target: Option<SideCounts>,
    /// User znodes (system nodes left out), ephemerals included.
    pub znode_delta: Option<i64>,
    /// Persistent user znodes: the figure that should be 0 after a copy.
    pub persistent_delta: Option<i64>,
    pub ephemeral_delta: Option<i64>,
    /// Approximate data size; `/zookeeper/config` (the membership) is part
    /// of it and legitimately differs.
    pub data_size_delta: Option<i64>,
    /// `persistent_delta == 0`, or `None` when it is not known.
    pub counts_match: Option<bool>,
    /// Why a figure is missing or approximate.
    pub notes: Vec<String>,
}

fn delta(source: Option<u64>, target: Option<u64>) -> Option<i64> {
    let (s, t) = (i128::from(source?), i128::from(target?));
    i64::try_from(t - s).ok()
}

impl CountParity {
    pub(crate) fn between(source: &EnsembleView, target: &EnsembleView) -> CountParity {
        let mut notes = Vec::new();
        let s = SideCounts::of(source, &mut notes);
        let t = SideCounts::of(target, &mut notes);
        for (side, counts) in [(source, &s), (target, &t)] {
            match counts {
                None => notes.push(format!(
                    "{}: no serving server reported a znode count",
                    side.side
                )),
                Some(c) if c.ephemerals.is_none() => notes.push(format!(
                    "{}: {} did not report its ephemerals (mntr refused?), so persistent \
                     znodes are unknown",
                    side.side, c.server
                )),
                Some(_) => {}
            }
        }
        let get =
            |c: &Option<SideCounts>, f: fn(&SideCounts) -> Option<u64>| c.as_ref().and_then(f);
        let persistent_delta = delta(get(&s, |c| c.persistent), get(&t, |c| c.persistent));
        CountParity {
            znode_delta: delta(
                get(&s, |c| Some(c.user_znodes)),
                get(&t, |c| Some(c.user_znodes)),
            ),
            persistent_delta,
            ephemeral_delta: delta(get(&s, |c| c.ephemerals), get(&t, |c| c.ephemerals)),
            data_size_delta: delta(
                get(&s, |c| c.approx_data_size),
                get(&t, |c| c.approx_data_size),
            ),
            counts_match: persistent_delta.map(|d| d == 0),
            source: s,
            target: t,
            notes,
        }
    }
}

/// Everything `zkparity probe` found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeReport {
    pub zkparity_version: &'static str,
    /// When the probe ran (RFC 3339, UTC).
    pub probed_at: String,
    /// Per word and server.
    pub timeout_ms: u64,
    /// Every probed ensemble is healthy.
    pub healthy: bool,
    pub source: EnsembleView,
    pub target: Option<EnsembleView>,
    /// Only with a target.
    pub parity: Option<CountParity>,
}

impl ProbeReport {
    pub fn new(source: EnsembleView, target: Option<EnsembleView>, timeout: Duration) -> Self {
        let parity = target.as_ref().map(|t| CountParity::between(&source, t));
        ProbeReport {
            zkparity_version: env!("CARGO_PKG_VERSION"),
            probed_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            healthy: source.healthy && target.as_ref().map_or(true, |t| t.healthy),
            source,
            target,
            parity,
        }
    }

    /// 0 when every ensemble is healthy and, with a target, the persistent
    /// znode counts match (or cannot be told); 1 otherwise: an operator
    /// scripting `probe` between migrations' steps reads a count that
    /// differs as something to look at. Where the trees differ is
    /// `zkparity compare`'s to say.
    pub fn exit_code(&self) -> i32 {
        let counts_differ = self
            .parity
            .as_ref()
            .is_some_and(|p| p.counts_match == Some(false));
        if self.healthy && !counts_differ {
            EXIT_HEALTHY
        } else {
            EXIT_UNHEALTHY
        }
    }

    pub(crate) fn views(&self) -> impl Iterator<Item = &EnsembleView> {
        std::iter::once(&self.source).chain(self.target.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Word, WordError};

    fn srvr(mode: &str, zxid: u64, nodes: u64) -> String {
        format!(
            "Zookeeper version: 3.8.0-x, built on y\nLatency min/avg/max: 0/1.5/9\n\
             Received: 1\nSent: 1\nConnections: 1\nOutstanding: 0\nZxid: 0x{zxid:x}\n\
             Mode: {mode}\nNode count: {nodes}\n"
        )
    }

    fn up(addr: &str, mode: &str, zxid: u64, nodes: u64, mntr: &str) -> ServerProbe {
        let mut answers = vec![(Word::Srvr, Some(Ok(srvr(mode, zxid, nodes))))];
        if !mntr.is_empty() {
            let m = format!("zk_version\t3.8.0\nzk_server_state\t{mode}\n{mntr}");
            answers.push((Word::Mntr, Some(Ok(m))));
        }
        ServerProbe::from_answers(addr, &answers)
    }

    fn down(addr: &str) -> ServerProbe {
        ServerProbe::from_answers(
            addr,
            &[(Word::Srvr, Some(Err(WordError::ConnectionRefused)))],
        )
    }

    fn build(servers: Vec<ServerProbe>) -> EnsembleView {
        EnsembleView::build("source", "x", servers, &HealthPolicy::default())
    }

    fn codes(v: &EnsembleView) -> Vec<(ReasonCode, Severity)> {
        v.reasons.iter().map(|r| (r.code, r.severity)).collect()
    }

    const LEADER_MNTR: &str = "zk_quorum_size\t3\nzk_synced_followers\t2\nzk_learners\t2\n\
                               zk_pending_syncs\t0\n";

    #[test]
    fn one_leader_two_followers_in_sync_is_healthy() {
        let v = build(vec![
            up("a", "follower", 0x1_0000_0005, 9, ""),
            up("b", "leader", 0x1_0000_0005, 9, LEADER_MNTR),
            up("c", "follower", 0x1_0000_0005, 9, ""),
        ]);
        assert_eq!(v.verdict, Verdict::Healthy, "{:#?}", v.reasons);
        assert_eq!(v.leader.as_deref(), Some("b"));
        assert_eq!(v.reference.as_deref(), Some("b"));
        assert_eq!(v.quorum_size, Some(3));
    }

    #[test]
    fn a_member_down_degrades_a_serving_quorum_and_warns_of_the_next_failure() {
        let mntr = "zk_quorum_size\t3\nzk_synced_followers\t1\n";
        let v = build(vec![
            up("a", "leader", 1, 5, mntr),
            up("b", "follower", 1, 5, ""),
            down("c"),
        ]);
        assert_eq!(
            codes(&v),
            [
                (ReasonCode::ServerDown, Severity::Warning),
                (ReasonCode::FollowersNotSynced, Severity::Warning)
            ]
        );
        assert!(v.reasons[1]
            .message
            .contains("1 of 2 followers in sync; one more failure"));
        assert_eq!(v.verdict, Verdict::Warning);
        assert!(!v.healthy);
    }

    #[test]
    fn every_member_lost_is_critical() {
        let v = build(vec![down("a"), down("b")]);
        assert_eq!(
            codes(&v),
            [
                (ReasonCode::ServerDown, Severity::Critical),
                (ReasonCode::ServerDown, Severity::Critical),
                (ReasonCode::NoServerServing, Severity::Critical)
            ]
        );
        assert_eq!(v.kind, EnsembleKind::Unknown);
    }

    #[test]
    fn two_leaders_are_critical_and_a_missing_leader_only_when_nobody_follows() {
        let v = build(vec![
            up("a", "leader", 1, 5, ""),
            up("b", "leader", 1, 5, ""),
        ]);
        assert_eq!(
            codes(&v),
            [(ReasonCode::MultipleLeaders, Severity::Critical)]
        );
        assert_eq!(v.leader, None);
        let v = build(vec![
            up("a", "follower", 1, 5, ""),
            up("b", "observer", 1, 5, ""),
        ]);
        assert_eq!(
            codes(&v),
            [(ReasonCode::LeaderNotListed, Severity::Warning)]
        );
        assert_eq!(v.observers, 1);
    }

    #[test]
    fn zxid_spread_counts_transactions_and_ignores_a_fresh_epoch() {
        let fresh = build(vec![
            up("a", "leader", 0x2_0000_0000, 5, ""),
            up("b", "follower", 0x1_0000_0fff, 5, ""),
        ]);
        assert_eq!(fresh.zxid.map(|z| z.spread), Some(0));
        assert!(fresh.healthy, "{:#?}", fresh.reasons);
        let lagging = build(vec![
            up("a", "leader", 0x2_0000_0300, 5, ""),
            up("b", "follower", 0x2_0000_0010, 5, ""),
        ]);
        assert_eq!(lagging.zxid.map(|z| z.spread), Some(0x2f0));
        assert_eq!(
            codes(&lagging),
            [(ReasonCode::ZxidSpread, Severity::Warning)]
        );
        assert!(lagging.reasons[0]
            .message
            .starts_with("b is at zxid 0x200000010"));
    }

    #[test]
    fn count_spreads_over_the_limits_warn() {
        let v = build(vec![
            up("a", "leader", 1, 1000, "zk_ephemerals_count\t100\n"),
            up("b", "follower", 1, 899, "zk_ephemerals_count\t49\n"),
        ]);
        assert_eq!(
            codes(&v),
            [
                (ReasonCode::ZnodeCountSpread, Severity::Warning),
                (ReasonCode::EphemeralCountSpread, Severity::Warning)
            ]
        );
        assert_eq!((v.znode_spread, v.ephemeral_spread), (Some(101), Some(51)));
    }

    #[test]
    fn file_descriptors_digest_mismatches_and_duplicate_ids_warn() {
        let mut a = up(
            "a",
            "leader",
            1,
            5,
            "zk_open_file_descriptor_count\t950\nzk_max_file_descriptor_count\t1000\n",
        );
        let mut b = up("b", "follower", 1, 5, "zk_digest_mismatches_count\t3\n");
        a.server_id = Some(1);
        b.server_id = Some(1);
        let v = build(vec![a, b]);
        let c: Vec<ReasonCode> = v.reasons.iter().map(|r| r.code).collect();
        assert_eq!(
            c,
            [
                ReasonCode::FileDescriptors,
                ReasonCode::DigestMismatches,
                ReasonCode::DuplicateServerId
            ]
        );
        assert_eq!(v.fd_usage_max, Some(0.95));
    }

    #[test]
    fn latency_and_queue_thresholds_apply_only_when_set() {
        let s = || {
            let mut busy = up("a", "standalone", 1, 5, "");
            busy.outstanding = Some(40);
            vec![busy]
        };
        assert!(build(s()).healthy);
        let policy = HealthPolicy {
            max_outstanding: Some(10),
            max_avg_latency_ms: Some(1.0),
            ..HealthPolicy::default()
        };
        let v = EnsembleView::build("source", "x", s(), &policy);
        let c: Vec<ReasonCode> = v.reasons.iter().map(|r| r.code).collect();
        assert_eq!(c, [ReasonCode::Outstanding, ReasonCode::Latency]);
    }

    #[test]
    fn verdict_is_the_worst_severity_with_unknown_above_warning() {
        let garbled = ServerProbe::from_answers("g", &[(Word::Srvr, Some(Ok("hello".into())))]);
        let v = build(vec![
            up(
                "a",
                "leader",
                1,
                5,
                "zk_quorum_size\t3\nzk_synced_followers\t1\n",
            ),
            up("b", "follower", 1, 5, ""),
            garbled,
        ]);
        assert_eq!(v.verdict, Verdict::Unknown);
        assert_eq!(v.reasons[0].severity, Severity::Unknown);
    }

    #[test]
    fn parity_takes_out_version_dependent_system_nodes_and_ephemerals() {
        let source = build(vec![up(
            "old",
            "standalone",
            1,
            4 + 100,
            "zk_ephemerals_count\t10\nzk_approximate_data_size\t1000\n",
        )]);
        let mut s = source.clone();
        s.servers[0].version = Some(crate::probe::parse::Version::parse("3.4.14"));
        let target = build(vec![up(
            "new",
            "standalone",
            1,
            5 + 103,
            "zk_ephemerals_count\t12\nzk_approximate_data_size\t900\n",
        )]);
        let p = CountParity::between(&s, &target);
        assert_eq!(p.source.as_ref().map(|c| c.system_nodes), Some(4));
        assert_eq!(p.target.as_ref().map(|c| c.system_nodes), Some(5));
        assert_eq!(p.znode_delta, Some(3));
        assert_eq!(p.persistent_delta, Some(1));
        assert_eq!(p.ephemeral_delta, Some(2));
        assert_eq!(p.data_size_delta, Some(-100));
        assert_eq!(p.counts_match, Some(false));
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn parity_without_ephemerals_says_so_and_does_not_guess() {
        let a = build(vec![up("a", "standalone", 1, 10, "")]);
        let b = build(vec![down("b")]);
        let p = CountParity::between(&a, &b);
        assert_eq!(p.persistent_delta, None);
        assert_eq!(p.counts_match, None);
        assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
    }

    #[test]
    fn the_report_is_healthy_only_when_both_sides_are() {
        let ok = build(vec![up("a", "standalone", 1, 5, "")]);
        let bad = build(vec![down("b")]);
        let t = Duration::from_secs(1);
        assert_eq!(ProbeReport::new(ok.clone(), None, t).exit_code(), 0);
        assert_eq!(
            ProbeReport::new(ok.clone(), Some(bad.clone()), t).exit_code(),
            1
        );
        assert_eq!(ProbeReport::new(bad, Some(ok), t).exit_code(), 1);
    }

    /// Property test: whatever each server answers to each word, building
    /// the model, the view, the parity and both renderings never panics,
    /// and the verdict agrees with the reasons. Runs [`CASES`] cases.
    mod props {
        use super::*;
        use crate::probe::render;
        use proptest::prelude::*;

        pub const CASES: u32 = 2048;

        const FIXTURES: &[&str] = &[
            include_str!("../../tests/fixtures/4lw/leader-srvr.txt"),
            include_str!("../../tests/fixtures/4lw/leader-mntr.txt"),
            include_str!("../../tests/fixtures/4lw/follower-srvr.txt"),
            include_str!("../../tests/fixtures/4lw/follower-mntr.txt"),
            include_str!("../../tests/fixtures/4lw/follower-conf.txt"),
            include_str!("../../tests/fixtures/4lw/follower-envi.txt"),
            include_str!("../../tests/fixtures/4lw/follower-wchs.txt"),
            include_str!("../../tests/fixtures/4lw/read-only-srvr.txt"),
            include_str!("../../tests/fixtures/4lw/standalone-srvr.txt"),
            include_str!("../../tests/fixtures/4lw/constructed-3.4-leader-mntr.txt"),
            include_str!("../../tests/fixtures/4lw/constructed-prometheus-follower-mntr.txt"),
            include_str!("../../tests/fixtures/4lw/not-serving.txt"),
            include_str!("../../tests/fixtures/4lw/default-whitelist-mntr.txt"),
            "imok",
            "rw",
            "ro",
            "null",
            "",
        ];

        fn answer() -> impl Strategy<Value = Option<Result<String, WordError>>> {
            prop_oneof![
                6 => prop::sample::select(FIXTURES).prop_map(|f| Some(Ok(f.to_string()))),
                2 => (prop::sample::select(FIXTURES), any::<usize>(), any::<u8>()).prop_map(
                    |(f, at, byte)| {
                        // A captured answer cut short, or with one byte changed.
                        let mut b = f.as_bytes().to_vec();
                        if !b.is_empty() {
                            let i = at % b.len();
                            if byte % 2 == 0 { b.truncate(i) } else { b[i] = byte }
                        }
                        Some(Ok(String::from_utf8_lossy(&b).into_owned()))
                    }
                ),
                1 => proptest::collection::vec(any::<u8>(), 0..200)
                    .prop_map(|b| Some(Ok(String::from_utf8_lossy(&b).into_owned()))),
                1 => Just(Some(Err(WordError::ConnectionRefused))),
                1 => Just(Some(Err(WordError::Timeout { timeout_ms: 5 }))),
                1 => Just(None),
            ]
        }

        fn server() -> impl Strategy<Value = Vec<(Word, Option<Result<String, WordError>>)>> {
            proptest::collection::vec(answer(), Word::ALL.len())
                .prop_map(|a| Word::ALL.iter().copied().zip(a).collect())
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: CASES,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn any_answers_build_a_consistent_report(
                source in proptest::collection::vec(server(), 1..5),
                target in proptest::collection::vec(server(), 0..3),
            ) {
                let probes = |servers: &[Vec<_>]| -> Vec<ServerProbe> {
                    servers
                        .iter()
                        .enumerate()
                        .map(|(i, a)| ServerProbe::from_answers(&format!("s{i}:2181"), a))
                        .collect()
                };
                let policy = HealthPolicy::default();
                let s = EnsembleView::build("source", "x", probes(&source), &policy);
                let t = (!target.is_empty())
                    .then(|| EnsembleView::build("target", "y", probes(&target), &policy));
                for v in std::iter::once(&s).chain(t.as_ref()) {
                    prop_assert_eq!(v.healthy, v.reasons.is_empty());
                    prop_assert_eq!(v.healthy, v.verdict == Verdict::Healthy);
                    prop_assert!(v.servers_serving <= v.servers_listed);
                    if v.kind == EnsembleKind::Unknown {
                        prop_assert!(!v.healthy);
                    }
                }
                let verdicts: Vec<String> = std::iter::once(&s)
                    .chain(t.as_ref())
                    .map(|v| format!("{} {}\n  {}: ", v.side, v.connect, v.verdict.as_str().to_uppercase()))
                    .collect();
                let report = ProbeReport::new(s, t, Duration::from_secs(1));
                // Every side is shown with its verdict.
                let text = render::text(&report);
                for v in &verdicts {
                    prop_assert!(text.contains(v.as_str()), "{:?} missing from\n{}", v, text);
                }
                let json = render::json(&report);
                prop_assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok(), "{}", json);
            }
        }
    }
}
