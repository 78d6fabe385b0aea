//! The result of a comparison, and its renderings: [`text`] for people,
//! [`json`] for programs (schema: `docs/json-report.md`). [`state`] is the
//! agent's per-pair state file built from them: what the outputs report.

pub mod json;
pub mod state;
pub mod text;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::digest::NodeKind;
use crate::tree::{EphemeralPolicy, NodeRead, SideNode, SubtreeSummary};

/// The kinds of difference, with the names used in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    MissingInTarget,
    ExtraInTarget,
    Data,
    Acl,
    NodeKind,
    SequenceCounter,
    Unreadable,
}

impl DiffKind {
    /// The kinds that count as differences: all but `unreadable`, which
    /// says the comparison could not look, not that the sides differ.
    pub(crate) const DIFFERENCES: [DiffKind; 6] = [
        DiffKind::MissingInTarget,
        DiffKind::ExtraInTarget,
        DiffKind::Data,
        DiffKind::Acl,
        DiffKind::NodeKind,
        DiffKind::SequenceCounter,
    ];

    /// The differences, then `unreadable`.
    pub(crate) const ALL: [DiffKind; 7] = {
        let mut all = [DiffKind::Unreadable; 7];
        let mut i = 0;
        while i < Self::DIFFERENCES.len() {
            all[i] = Self::DIFFERENCES[i];
            i += 1;
        }
        all
    };

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DiffKind::MissingInTarget => "missing_in_target",
            DiffKind::ExtraInTarget => "extra_in_target",
            DiffKind::Data => "data",
            DiffKind::Acl => "acl",
            DiffKind::NodeKind => "node_kind",
            DiffKind::SequenceCounter => "sequence_counter",
            DiffKind::Unreadable => "unreadable",
        }
    }
}

/// What one side holds at a differing path.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeDetail {
    pub exists: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_kind: Option<NodeKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cversion: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_children: Option<i32>,
    /// The number ZooKeeper gives the next sequential child, in the unit
    /// `repair` speaks of counters: `(cversion + num_children) / 2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_sequence: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl NodeDetail {
    pub(crate) fn from_side(node: &SideNode, show_acl_ids: bool) -> NodeDetail {
        match node {
            SideNode::Absent => NodeDetail::default(),
            SideNode::Unreadable(reason) => NodeDetail {
                exists: true,
                error: Some(reason.clone()),
                ..NodeDetail::default()
            },
            SideNode::Present(n) => NodeDetail::from_read(n, show_acl_ids),
        }
    }

    fn from_read(n: &NodeRead, show_acl_ids: bool) -> NodeDetail {
        NodeDetail {
            exists: true,
            node_kind: Some(n.kind),
            data_length: Some(n.data_len),
            data_sha256: Some(hex::encode(n.data_sha256)),
            acl: n
                .acl
                .as_ref()
                .map(|acl| acl.iter().map(|e| e.display(show_acl_ids)).collect()),
            // Without ACLs read, the fingerprint is a stand-in, not the node's.
            acl_fingerprint: n.acl.as_ref().map(|_| hex::encode(n.acl_fingerprint)),
            cversion: n.stat.map(|s| s.cversion),
            num_children: n.stat.map(|s| s.num_children),
            next_sequence: n.stat.as_ref().map(crate::tree::sequence::next_sequence),
            error: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub path: String,
    pub kind: DiffKind,
    /// For a missing or extra subtree: its nodes, the root included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtree_nodes: Option<u64>,
    /// Why the difference matters, where that is a judgement (a counter
    /// judged at risk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub source: NodeDetail,
    pub target: NodeDetail,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SideTotals {
    pub nodes: u64,
    pub ephemerals: u64,
    pub bytes: u64,
    pub unreadable: u64,
}

impl SideTotals {
    pub(crate) fn from_summary(s: Option<&SubtreeSummary>) -> SideTotals {
        s.map(|s| SideTotals {
            nodes: s.nodes,
            ephemerals: s.ephemerals,
            bytes: s.bytes,
            unreadable: s.unreadable,
        })
        .unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubtreeSide {
    pub nodes: u64,
    pub ephemerals: u64,
    pub bytes: u64,
    pub unreadable: u64,
    pub checksum: String,
    pub acl_fingerprint: String,
}

impl SubtreeSide {
    pub(crate) fn from_summary(s: &SubtreeSummary) -> SubtreeSide {
        SubtreeSide {
            nodes: s.nodes,
            ephemerals: s.ephemerals,
            bytes: s.bytes,
            unreadable: s.unreadable,
            checksum: hex::encode(s.checksum),
            acl_fingerprint: hex::encode(s.acl_fingerprint),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubtreeRow {
    pub path: String,
    #[serde(rename = "match")]
    pub matches: bool,
    pub source: Option<SubtreeSide>,
    pub target: Option<SubtreeSide>,
}

/// What a comparison concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every node compared, and none differs (transient ones allowed).
    Identical,
    /// Confirmed differences, whatever else.
    Different,
    /// Nothing compared differs, but a side could not read some nodes:
    /// nothing can be said of those.
    Incomplete,
}

impl Verdict {
    pub(crate) fn of(confirmed: u64, unreadable: u64) -> Verdict {
        if confirmed > 0 {
            Verdict::Different
        } else if unreadable > 0 {
            Verdict::Incomplete
        } else {
            Verdict::Identical
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::Different => "different",
            Verdict::Incomplete => "incomplete",
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Identical => crate::error::EXIT_IDENTICAL,
            Verdict::Different => crate::error::EXIT_DIFFERENT,
            Verdict::Incomplete => crate::error::EXIT_INCOMPLETE,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub verdict: Verdict,
    /// `verdict == identical`, kept for readers of earlier reports.
    pub identical: bool,
    pub source: SideTotals,
    pub target: SideTotals,
    /// Confirmed differences by kind; every kind is present.
    pub differences: BTreeMap<&'static str, u64>,
    pub confirmed: u64,
    /// Paths a side could not read (each the root of what it hides): not
    /// differences, and never identical.
    pub unreadable: u64,
    /// Nodes whose ACLs agree in scheme, user and permissions, but whose
    /// digest hashes a side could not see (it lacks ADMIN there).
    pub acl_unverified: u64,
    /// Differences seen during the walk that had healed at the re-check.
    pub transient: u64,
    /// Of `transient`, the differences still there at the re-check but
    /// only as the target lagging: it had reached what the source held at
    /// the walk.
    pub lagging: u64,
    /// Whether differences were re-checked at all.
    pub rechecked: bool,
    pub elapsed_seconds: f64,
    /// Read operations sent (getData, getChildren, getACL) per side.
    pub reads: BTreeMap<&'static str, u64>,
    /// What the latency limit did per side; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<BTreeMap<&'static str, LatencyTotals>>,
}

/// Round trips of one side's request groups under `--max-latency`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencyTotals {
    pub limit_ms: f64,
    /// Request groups sent and timed.
    pub groups: u64,
    /// Groups answered later than the limit.
    pub over_limit: u64,
    /// Times the window was cut, or the pause at its floor lengthened.
    pub backoffs: u64,
    pub max_round_trip_ms: f64,
    /// Pauses imposed at the window's floor, in total.
    pub paused_seconds: f64,
}

impl LatencyTotals {
    pub(crate) fn of(throttle: &crate::throttle::Throttle) -> LatencyTotals {
        let s = throttle.stats();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        LatencyTotals {
            limit_ms: ms(throttle.limit()),
            groups: s.groups,
            over_limit: s.over_limit,
            backoffs: s.backoffs,
            max_round_trip_ms: ms(s.max_round_trip),
            paused_seconds: s.paused.as_secs_f64(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Endpoint {
    /// The connect string, or the file's name for a file side.
    pub connect: String,
    pub path: String,
    /// Set when the side is a file rather than a live ensemble.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<crate::source::FileKind>,
    /// For a ZooKeeper data directory: the zxid it was read up to (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zxid: Option<String>,
    /// For a live ensemble: which servers were read, their roles, and
    /// what each was sent and answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_placement: Option<crate::placement::ReadServers>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    pub ephemerals: EphemeralPolicy,
    pub excludes: Vec<String>,
    pub subtree_depth: u32,
    pub recheck_delay_seconds: Option<f64>,
    pub limit: usize,
    /// False when a side holds no ACLs (a zktreeutil file): ACLs were then
    /// read on neither side, and `acl` differences cannot appear.
    pub acls_compared: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompareReport {
    pub zkparity_version: &'static str,
    pub digest_version: &'static str,
    pub source: Endpoint,
    pub target: Endpoint,
    pub settings: Settings,
    pub summary: Summary,
    pub subtrees: Vec<SubtreeRow>,
    /// Sorted by path, at most `settings.limit` of them (0: all).
    pub differences: Vec<Difference>,
    /// Confirmed differences not listed because of the limit.
    pub differences_not_listed: u64,
    /// The nodes counted in `summary.acl_unverified`, at most
    /// `settings.limit` of them.
    pub acl_unverified: Vec<UnverifiedAcl>,
    /// Set when both sides are one ensemble (two of its paths compared):
    /// what showed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_ensemble: Option<String>,
    /// How the sides were read, where the operator should know: a data
    /// directory's snapshot passed over or log still being written,
    /// container and TTL nodes compared as persistent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A node whose ACLs agree as far as both sides can see them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnverifiedAcl {
    pub path: String,
    /// The entries with a redacted id (`digest:user:x`), as shown.
    pub entries: Vec<String>,
}

impl CompareReport {
    pub fn exit_code(&self) -> i32 {
        self.summary.verdict.exit_code()
    }
}
