//! The per-pair state file: what the agent knows about one ensemble pair after
//! its latest round, as JSON (schema: `docs/agent.md`). It is a result model
//! beside the comparison's, so the outputs that render it (Prometheus,
//! Ganglia, Nagios) read it here and never reach into the agent.
//!
//! The agent rewrites it every round; `check parity --state`, dashboards and
//! people read it at any moment. So it is written as a [`durable`] file, and
//! a reader sees either the previous round or this one, never a mix and
//! never a torn file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::durable;
use crate::report::Summary;

/// Bumped when a field changes meaning or goes away; new fields do not bump
/// it (readers ignore what they do not know).
pub(crate) const STATE_SCHEMA: u32 = 1;

/// A wall-clock instant, as RFC 3339 UTC with milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    pub(crate) fn now() -> Timestamp {
        Timestamp(SystemTime::now())
    }

    /// Seconds from `self` to `later`; 0 if the clock went backwards.
    pub(crate) fn seconds_until(self, later: Timestamp) -> f64 {
        later
            .0
            .duration_since(self.0)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
    }

    /// Seconds since the Unix epoch, as Nagios wants them.
    pub(crate) fn epoch_seconds(self) -> u64 {
        self.0
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339(&s)
            .map(Timestamp)
            .map_err(|e| serde::de::Error::custom(format!("timestamp {s:?}: {e}")))
    }
}

/// The pair's standing after a round. Not a Nagios state: drift is WARNING
/// or CRITICAL by the kinds that drifted ([`verdict`](crate::agent::verdict)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairStatus {
    /// The round succeeded and no difference is confirmed drift.
    Ok,
    /// The round succeeded and at least one difference is confirmed drift.
    Drift,
    /// The round succeeded and no difference is confirmed drift, but some
    /// nodes could not be read on a side (confirmed across rounds like
    /// drift): nothing is known of them.
    Incomplete,
    /// The round could not compare (an ensemble down, no quorum, session
    /// expired, timeout...); `reason` says why.
    Unknown,
}

impl PairStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PairStatus::Ok => "ok",
            PairStatus::Drift => "drift",
            PairStatus::Incomplete => "incomplete",
            PairStatus::Unknown => "unknown",
        }
    }
}

/// One difference tracked across rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    pub path: String,
    /// A difference kind as in the JSON report (`data`, `missing_in_target`...).
    pub kind: String,
    /// Start of the first round that saw it, of the current unbroken run.
    pub first_seen: Timestamp,
    /// Seconds from `first_seen` to the end of the latest round.
    pub age_seconds: f64,
    /// Consecutive successful rounds that saw it.
    pub rounds: u32,
    /// For differences the comparison only counted (past its in-memory cap):
    /// how many of this kind; `path` is then `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Tracked {
    /// How many differences the entry stands for.
    pub(crate) fn weight(&self) -> u64 {
        self.count.unwrap_or(1)
    }
}

/// Node counts of one side, as in the JSON report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub nodes: u64,
    pub ephemerals: u64,
    pub bytes: u64,
    pub unreadable: u64,
}

/// The `summary` object of the latest successful round's report (see
/// `docs/json-report.md`), plus which round that was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundSummary {
    pub round: u64,
    pub finished: Timestamp,
    /// Absent in states written before verdicts had three values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<crate::report::Verdict>,
    pub identical: bool,
    pub source: Totals,
    pub target: Totals,
    /// Differences that survived the round's own re-check, by kind.
    pub differences: BTreeMap<String, u64>,
    pub confirmed: u64,
    /// Paths a side could not read (not differences).
    #[serde(default)]
    pub unreadable: u64,
    pub transient: u64,
    pub rechecked: bool,
    pub elapsed_seconds: f64,
    pub reads: BTreeMap<String, u64>,
}

impl RoundSummary {
    pub(crate) fn from_report(round: u64, finished: Timestamp, s: &Summary) -> RoundSummary {
        let totals = |t: &crate::report::SideTotals| Totals {
            nodes: t.nodes,
            ephemerals: t.ephemerals,
            bytes: t.bytes,
            unreadable: t.unreadable,
        };
        RoundSummary {
            round,
            finished,
            verdict: Some(s.verdict),
            identical: s.identical,
            source: totals(&s.source),
            target: totals(&s.target),
            differences: s
                .differences
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            confirmed: s.confirmed,
            unreadable: s.unreadable,
            transient: s.transient,
            rechecked: s.rechecked,
            elapsed_seconds: s.elapsed_seconds,
            reads: s.reads.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }
}

/// The confirmation window in force, so a reader can tell what "confirmed"
/// meant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfirmSettings {
    pub rounds: u32,
    pub after_seconds: f64,
}

/// How a round looked at the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundKind {
    /// Read the whole subtree.
    FullWalk,
    /// Re-checked only the paths the watches said changed.
    Targeted,
    /// The watches said nothing changed: nothing was read.
    WatchClean,
}

impl RoundKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RoundKind::FullWalk => "full_walk",
            RoundKind::Targeted => "targeted",
            RoundKind::WatchClean => "watch_clean",
        }
    }
}

/// Each side's persistent watch, as `live`, `disconnected`, `down`,
/// `starting` or `unsupported`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchStatus {
    pub source: String,
    pub target: String,
}

/// What the latest round read, and what was re-checked early since. All
/// optional or zero by default, so files written before watches existed read
/// the same.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checks {
    /// Absent until a round has run under this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_kind: Option<RoundKind>,
    /// Why the round walked in full (first round, periodic, watch gap, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_walk_reason: Option<String>,
    /// Changed paths the round re-checked (a targeted round).
    #[serde(default)]
    pub rechecked_paths: u64,
    /// The subtrees those were re-checked as.
    #[serde(default)]
    pub rechecked_subtrees: u64,
    /// End of the latest successful full walk (a round's or an early one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_walk: Option<Timestamp>,
    /// Early re-checks since this round.
    #[serde(default)]
    pub early_rechecks: u64,
    /// End of the latest early re-check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_early_recheck: Option<Timestamp>,
    /// Absent when the pair has no watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchStatus>,
}

/// One role's registrations (see `docs/ephemerals.md`) at the latest look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleRegistrations {
    /// As the check names it: `kafka brokers`, `hbase region servers`...
    pub role: String,
    pub expected: u64,
    pub present: u64,
    pub missing: u64,
    /// What is missing, as the check lists it (paths, `parent/host,port,*`,
    /// or `N of M under PARENT` for counted roles), at most the list limit.
    pub missing_paths: Vec<String>,
}

/// `check ephemerals` as the pair's latest round ran it (`expect`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegistrationsState {
    /// `OK`, `WARNING`, `CRITICAL` or `UNKNOWN`, as the check answers.
    pub state: String,
    /// The check's status line text; for `UNKNOWN`, why.
    pub summary: String,
    pub checked: Timestamp,
    pub expected_from: String,
    /// Absent when nothing could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover: Option<Timestamp>,
    /// `since`, `snapshot_created`, `last_transaction`, `last_change` or
    /// `now`, as the check's JSON has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover_from: Option<String>,
    pub grace_seconds: u64,
    pub expected: u64,
    pub present: u64,
    pub missing: u64,
    /// Expected ephemerals that are persistent nodes on the target.
    pub persistent: u64,
    /// On the target, not expected (never alerts).
    pub new: u64,
    /// Roles with expected registrations.
    pub roles: Vec<RoleRegistrations>,
}

/// One server a side read in a full walk, as the JSON report's
/// `read_placement.servers[]` has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacedServer {
    pub server: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zxid: Option<String>,
    pub sessions: u64,
    pub reads: u64,
    pub nodes: u64,
}

/// A side's read placement in a full walk, as the JSON report's
/// `read_placement`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SidePlacement {
    pub read_from: String,
    #[serde(default)]
    pub servers: Vec<PlacedServer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<String>,
}

impl SidePlacement {
    fn of(p: &crate::placement::ReadServers) -> SidePlacement {
        SidePlacement {
            read_from: p.read_from.clone(),
            servers: p
                .servers
                .iter()
                .map(|s| PlacedServer {
                    server: s.server.clone(),
                    role: s.role.clone(),
                    zxid: s.zxid.clone(),
                    sessions: s.sessions as u64,
                    reads: s.reads,
                    nodes: s.nodes,
                })
                .collect(),
            note: p.note.clone(),
            moved: p.moved.clone(),
        }
    }
}

/// Reads sent to a server and nodes it answered, added up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadCount {
    pub reads: u64,
    pub nodes: u64,
}

/// The name a side's reads are counted under when the client library chose
/// the servers (`read_from = "any"`): it does not say which it used.
pub const ANY_SERVER: &str = "any";

/// Each side's value of something.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sides<T> {
    #[serde(default)]
    pub source: T,
    #[serde(default)]
    pub target: T,
}

/// Where the pair's reads went. Only full walks count: the rounds between
/// them re-read a few paths through sessions that keep no per-server tally.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reads {
    /// The latest full walk's placement per side; absent for a file side
    /// and before the first walk.
    #[serde(default)]
    pub read_placement: Sides<Option<SidePlacement>>,
    /// Reads and nodes per server (`host:port`, or [`ANY_SERVER`]) since the
    /// pair's state began, over every full walk.
    #[serde(default)]
    pub reads_by_server: Sides<BTreeMap<String, ReadCount>>,
}

impl Reads {
    /// Adds a full walk's reads: per server when the side placed its
    /// sessions, under [`ANY_SERVER`] (the side's reads and nodes) when the
    /// client library chose.
    pub(crate) fn add_walk(&mut self, report: &crate::report::CompareReport) {
        let s = &report.summary;
        let sides = [
            (
                &report.source,
                &mut self.read_placement.source,
                &mut self.reads_by_server.source,
                "source",
                s.source.nodes,
            ),
            (
                &report.target,
                &mut self.read_placement.target,
                &mut self.reads_by_server.target,
                "target",
                s.target.nodes,
            ),
        ];
        for (endpoint, latest, totals, side, nodes) in sides {
            let Some(placed) = &endpoint.read_placement else {
                *latest = None;
                continue;
            };
            if placed.servers.is_empty() {
                let c = totals.entry(ANY_SERVER.to_string()).or_default();
                c.reads += s.reads.get(side).copied().unwrap_or(0);
                c.nodes += nodes;
            }
            for server in &placed.servers {
                let c = totals.entry(server.server.clone()).or_default();
                c.reads += server.reads;
                c.nodes += server.nodes;
            }
            *latest = Some(SidePlacement::of(placed));
        }
    }
}

/// The state file of one pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairState {
    pub schema: u32,
    pub pair: String,
    pub source: String,
    pub target: String,
    pub path: String,
    /// Rounds run since the pair's history began (carried over restarts).
    pub round: u64,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub interval_seconds: f64,
    pub status: PairStatus,
    /// Why the status is `unknown`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub confirm: ConfirmSettings,
    /// The latest successful round's report summary; absent until one
    /// succeeds.
    #[serde(default)]
    pub summary: Option<RoundSummary>,
    /// Confirmed drift, oldest first, at most the configured list limit.
    pub confirmed: Vec<Tracked>,
    /// Every confirmed difference, listed or not.
    pub confirmed_total: u64,
    /// `confirmed_total` by kind; every kind is present.
    pub confirmed_by_kind: BTreeMap<String, u64>,
    /// Confirmed unreadable paths: not drift, but the pair is then
    /// `incomplete`.
    #[serde(default)]
    pub unreadable_total: u64,
    /// Differences seen but not (yet) confirmed, oldest first, at most the
    /// list limit.
    pub unconfirmed: Vec<Tracked>,
    pub unconfirmed_total: u64,
    /// `unconfirmed_total` by kind; absent in files written before it.
    #[serde(default)]
    pub unconfirmed_by_kind: BTreeMap<String, u64>,
    /// Age of the oldest unconfirmed difference: the replication lag as the
    /// agent sees it; 0 when there is none. As of `finished`: the file is
    /// rewritten each round, so between rounds read `lag_since`.
    pub lag_seconds: f64,
    /// Since when the oldest unconfirmed difference has been seen: the lag
    /// at any moment is that moment minus this. Absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_since: Option<Timestamp>,
    /// When a round last succeeded; absent if none has.
    #[serde(default)]
    pub last_success: Option<Timestamp>,
    #[serde(flatten)]
    pub checks: Checks,
    /// Absent unless the pair has `expect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrations: Option<RegistrationsState>,
    #[serde(flatten)]
    pub reads: Reads,
}

/// Why a state file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("writing state file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading state file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {} is not a zkparity agent state: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "state file {} has schema {found}; this zkparity reads schema {STATE_SCHEMA}",
        path.display()
    )]
    Schema { path: PathBuf, found: u64 },
}

/// `<state_dir>/<pair>.json`.
pub fn state_path(state_dir: &Path, pair: &str) -> PathBuf {
    state_dir.join(format!("{pair}.json"))
}

/// Writes `state` to `path` atomically (see the module doc). Blocking: the
/// agent calls it off the async workers.
pub(crate) fn write_state(path: &Path, state: &PairState) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut json = serde_json::to_vec_pretty(state)
        .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    json.push(b'\n');
    // Readable by the monitoring user (nagios, nrpe) running the check.
    durable::write(path, &json, durable::WORLD_READABLE).map_err(err)
}

/// Longest state file read: the agent writes counts and at most
/// `state_list_limit` differences of each kind (1000 by default, about
/// 200 KiB), far under this.
const MAX_STATE_FILE: u64 = 256 << 20;

/// Reads a state file as the agent wrote it.
pub fn read_state(path: &Path) -> Result<PairState, StateError> {
    let invalid = |reason: String| StateError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            use std::io::Read;
            f.take(MAX_STATE_FILE + 1).read_to_end(&mut bytes)
        })
        .map_err(|source| StateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_STATE_FILE {
        return Err(invalid(format!(
            "longer than {MAX_STATE_FILE} bytes at byte {MAX_STATE_FILE}: not a state file the agent wrote"
        )));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    // Look at the schema before the fields, so a newer file says so rather
    // than failing on whatever changed.
    match value.get("schema").and_then(|s| s.as_u64()) {
        Some(n) if n == u64::from(STATE_SCHEMA) => {}
        Some(found) => {
            return Err(StateError::Schema {
                path: path.to_path_buf(),
                found,
            })
        }
        None => return Err(invalid("no \"schema\" number".into())),
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> PairState {
        let t = Timestamp(SystemTime::UNIX_EPOCH + Duration::from_millis(1_790_000_000_123));
        PairState {
            schema: STATE_SCHEMA,
            pair: "kafka".into(),
            source: "old:2181/kafka".into(),
            target: "new:2181/kafka".into(),
            path: "/".into(),
            round: 7,
            started: t,
            finished: t,
            interval_seconds: 60.0,
            status: PairStatus::Drift,
            reason: None,
            confirm: ConfirmSettings {
                rounds: 2,
                after_seconds: 0.0,
            },
            summary: None,
            confirmed: vec![Tracked {
                path: "/brokers/ids".into(),
                kind: "data".into(),
                first_seen: t,
                age_seconds: 120.5,
                rounds: 3,
                count: None,
            }],
            confirmed_total: 1,
            confirmed_by_kind: BTreeMap::from([("data".to_string(), 1)]),
            unreadable_total: 0,
            unconfirmed: Vec::new(),
            unconfirmed_total: 0,
            unconfirmed_by_kind: BTreeMap::new(),
            lag_seconds: 0.0,
            lag_since: None,
            last_success: Some(t),
            checks: Checks::default(),
            registrations: None,
            reads: Reads::default(),
        }
    }

    #[test]
    fn a_written_state_reads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), "kafka");
        write_state(&path, &sample()).unwrap();
        assert_eq!(read_state(&path).unwrap(), sample());
        // Nothing is left behind but the file itself.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("kafka.json")]);
    }

    #[test]
    fn a_file_from_before_watches_reads_and_round_kinds_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), "kafka");
        write_state(&path, &sample()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("round_kind"), "{text}");
        let mut s = sample();
        s.checks.round_kind = Some(RoundKind::WatchClean);
        s.checks.watch = Some(WatchStatus {
            source: "live".into(),
            target: "live".into(),
        });
        write_state(&path, &s).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["round_kind"], "watch_clean");
        assert_eq!(json["watch"]["target"], "live");
        assert_eq!(read_state(&path).unwrap(), s);
    }

    #[test]
    fn read_placement_and_totals_round_trip_and_older_files_read_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), "kafka");
        let mut s = sample();
        s.reads.read_placement.source = Some(SidePlacement {
            read_from: "followers".into(),
            servers: vec![PlacedServer {
                server: "zk2:2181".into(),
                role: "follower".into(),
                zxid: Some("0x100000002".into()),
                sessions: 2,
                reads: 40,
                nodes: 20,
            }],
            note: None,
            moved: Vec::new(),
        });
        s.reads.reads_by_server.source = BTreeMap::from([(
            "zk2:2181".to_string(),
            ReadCount {
                reads: 80,
                nodes: 40,
            },
        )]);
        write_state(&path, &s).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            json["read_placement"]["source"]["servers"][0]["role"],
            "follower"
        );
        assert_eq!(json["read_placement"]["target"], serde_json::Value::Null);
        assert_eq!(json["reads_by_server"]["source"]["zk2:2181"]["reads"], 80);
        assert_eq!(read_state(&path).unwrap(), s);

        let mut old = json;
        let fields = old.as_object_mut().unwrap();
        fields.remove("read_placement");
        fields.remove("reads_by_server");
        std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(read_state(&path).unwrap().reads, Reads::default());
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["started"], "2026-09-21T14:13:20.123Z");
        assert_eq!(json["status"], "drift");
    }

    #[test]
    fn a_newer_schema_is_named_rather_than_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(&path, r#"{"schema": 2, "pair": 5}"#).unwrap();
        let e = read_state(&path).unwrap_err();
        assert!(matches!(e, StateError::Schema { found: 2, .. }), "{e}");
    }

    #[test]
    fn a_torn_or_foreign_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(&path, r#"{"schema": 1, "pair": "#).unwrap();
        let e = read_state(&path).unwrap_err();
        assert!(e.to_string().contains("x.json"), "{e}");
        let e = read_state(&dir.path().join("absent.json")).unwrap_err();
        assert!(matches!(e, StateError::Read { .. }), "{e}");
    }

    #[test]
    fn a_failed_write_leaves_the_previous_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), "kafka");
        write_state(&path, &sample()).unwrap();
        // A directory where the file should go makes the rename fail.
        let blocked = state_path(dir.path(), "blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("keep"), "x").unwrap();
        assert!(write_state(&blocked, &sample()).is_err());
        assert_eq!(read_state(&path).unwrap(), sample());
        let tmp_left = std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"));
        assert!(!tmp_left);
    }
}
