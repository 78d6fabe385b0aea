//! Working out what makes the target match the source: one walk over both
//! sides, emitting actions as it goes, in an order that is safe to apply
//! front to back.
//!
//! - Creates come in walk order, so a parent is always created before its
//!   children.
//! - Data is set when the node is visited.
//! - A node's ACL, its sequence counter top-up and (with `--delete-extra`)
//!   its deletion are emitted once its whole subtree has been walked: ACLs
//!   are tightened only after everything below has been written, a counter
//!   is topped up after the children's own creates (which move it too), and
//!   extra nodes go children first.
//!
//! Actions go straight to a sink (the plan file) instead of piling up in
//! memory; only nodes whose subtree is still being walked are remembered.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::compare::node_differences;
use crate::digest::NodeKind;
use crate::error::{Error, Result};
use crate::exclude::Excludes;
use crate::tree::path::{child_path, parent};
use crate::tree::sequence::{looks_sequential, next_sequence};
use crate::tree::{EphemeralPolicy, NodeRead, SideNode, SubtreeSummary, Tag, Visit, Visitor};

/// One ACL entry as written: the snapshot format's.
pub(crate) use crate::snapshot::AclRecord as AclSpec;

/// Node data in the plan file: base64, so any bytes survive JSON.
mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// One write the repair will make on the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// A persistent node, with the source's data and ACL; `acl: None` where
    /// the source holds no ACLs (a zktreeutil file): world:anyone:cdrwa.
    Create {
        path: String,
        #[serde(with = "b64")]
        data: Vec<u8>,
        acl: Option<Vec<AclSpec>>,
    },
    /// `version`: the target's data version seen when planning; a node
    /// changed since is reported as a conflict, not overwritten.
    SetData {
        path: String,
        #[serde(with = "b64")]
        data: Vec<u8>,
        version: i32,
    },
    /// `aversion`: the target's ACL version seen when planning.
    SetAcl {
        path: String,
        acl: Vec<AclSpec>,
        aversion: i32,
    },
    /// Bring the node's sequence counter (the number its next sequential
    /// child gets, see [`next_sequence`]) up to `next`, the source's;
    /// `expected_from` is what the target should hold by then, for the dry
    /// run's estimate.
    SequenceCounter {
        path: String,
        next: i64,
        expected_from: i64,
    },
    /// `version`: the target's data version seen when planning.
    Delete { path: String, version: i32 },
}

/// The kinds of action, in the order a report lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Create,
    SetData,
    SetAcl,
    SequenceCounter,
    Delete,
}

impl ActionKind {
    pub(crate) const ALL: [ActionKind; 5] = [
        ActionKind::Create,
        ActionKind::SetData,
        ActionKind::SetAcl,
        ActionKind::SequenceCounter,
        ActionKind::Delete,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::SetData => "set_data",
            ActionKind::SetAcl => "set_acl",
            ActionKind::SequenceCounter => "sequence_counter",
            ActionKind::Delete => "delete",
        }
    }
}

impl Action {
    pub(crate) fn kind(&self) -> ActionKind {
        match self {
            Action::Create { .. } => ActionKind::Create,
            Action::SetData { .. } => ActionKind::SetData,
            Action::SetAcl { .. } => ActionKind::SetAcl,
            Action::SequenceCounter { .. } => ActionKind::SequenceCounter,
            Action::Delete { .. } => ActionKind::Delete,
        }
    }

    pub(crate) fn path(&self) -> &str {
        match self {
            Action::Create { path, .. }
            | Action::SetData { path, .. }
            | Action::SetAcl { path, .. }
            | Action::SequenceCounter { path, .. }
            | Action::Delete { path, .. } => path,
        }
    }

    /// Bytes the action puts on the wire, roughly: what decides whether it
    /// fits a multi-write next to others.
    pub(crate) fn weight(&self) -> usize {
        const OVERHEAD: usize = 64;
        let acl = |a: &[AclSpec]| {
            a.iter()
                .map(|e| e.scheme.len() + e.id.len() + 16)
                .sum::<usize>()
        };
        OVERHEAD
            + self.path().len()
            + match self {
                Action::Create { data, acl: a, .. } => data.len() + a.as_deref().map_or(32, acl),
                Action::SetData { data, .. } => data.len(),
                Action::SetAcl { acl: a, .. } => acl(a),
                Action::SequenceCounter { .. } | Action::Delete { .. } => 0,
            }
    }

    /// Writes the action takes when planned; a counter top-up is an
    /// estimate (see [`top_up_writes`]).
    pub(crate) fn planned_writes(&self) -> u64 {
        match self {
            Action::SequenceCounter {
                next,
                expected_from,
                ..
            } => top_up_writes(*expected_from, *next),
            _ => 1,
        }
    }

    /// What a listing shows: no data bytes, digest ids hidden unless asked.
    pub(crate) fn view(&self, show_acl_ids: bool) -> ActionView {
        let acl = |a: &[AclSpec]| {
            a.iter()
                .map(|e| e.to_entry().display(show_acl_ids))
                .collect()
        };
        let mut v = ActionView {
            op: self.kind(),
            path: self.path().to_string(),
            data_length: None,
            acl: None,
            version: None,
            next_sequence: None,
            next_sequence_from: None,
        };
        match self {
            Action::Create { data, acl: a, .. } => {
                v.data_length = Some(data.len());
                v.acl = Some(
                    a.as_deref()
                        .map_or_else(|| vec!["world:anyone:cdrwa".to_string()], acl),
                );
            }
            Action::SetData { data, version, .. } => {
                v.data_length = Some(data.len());
                v.version = Some(*version);
            }
            Action::SetAcl {
                acl: a, aversion, ..
            } => {
                v.acl = Some(acl(a));
                v.version = Some(*aversion);
            }
            Action::SequenceCounter {
                next,
                expected_from,
                ..
            } => {
                v.next_sequence = Some(*next);
                v.next_sequence_from = Some(*expected_from);
            }
            Action::Delete { version, .. } => v.version = Some(*version),
        }
        v
    }
}

/// Writes to move a counter from `from` to `to`: a create and a delete of a
/// throwaway sequential child per step (each create moves it by one).
pub(crate) fn top_up_writes(from: i64, to: i64) -> u64 {
    (to - from).max(0) as u64 * 2
}

/// An action as listed in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionView {
    pub op: ActionKind,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
    /// The target's data version (set_data, delete) or ACL version
    /// (set_acl) the action expects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_sequence: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_sequence_from: Option<i64>,
}

/// Why a difference is left alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// An ephemeral on the source belongs to a live session there; creating
    /// it on the target would make a persistent node or one tied to our own
    /// session. Not a difference a compare reports.
    SourceEphemeral,
    /// Ephemeral on one side, persistent on the other.
    NodeKind,
    /// A side could not read the node; nothing below it is known.
    Unreadable,
    /// On the target only, and `--delete-extra` was not given.
    ExtraKept,
    /// On the target only, but something below it must stay (an ephemeral,
    /// an excluded or an unreadable node), so it cannot be deleted.
    ExtraNotDeletable,
    /// The source's ACL came back with digest ids hidden (`user:x`: the
    /// source credentials lack ADMIN there). Written to the target, such an
    /// entry would match no password: the owner would be locked out.
    AclHidden,
}

impl SkipReason {
    pub(crate) const ALL: [SkipReason; 6] = [
        SkipReason::SourceEphemeral,
        SkipReason::NodeKind,
        SkipReason::Unreadable,
        SkipReason::ExtraKept,
        SkipReason::ExtraNotDeletable,
        SkipReason::AclHidden,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SkipReason::SourceEphemeral => "source_ephemeral",
            SkipReason::NodeKind => "node_kind",
            SkipReason::Unreadable => "unreadable",
            SkipReason::ExtraKept => "extra_kept",
            SkipReason::ExtraNotDeletable => "extra_not_deletable",
            SkipReason::AclHidden => "acl_hidden",
        }
    }

    /// Whether the target still differs from the source (as a compare sees
    /// it) once everything else is repaired.
    pub(crate) fn leaves_difference(self) -> bool {
        self != SkipReason::SourceEphemeral
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    pub path: String,
    pub reason: SkipReason,
    pub detail: String,
}

/// What a plan holds, counted; plus the first actions and skips, to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// Per action kind (every kind present, zeros included).
    pub actions: BTreeMap<ActionKind, u64>,
    pub total_actions: u64,
    /// Writes the actions take: one each, counter top-ups as estimated.
    pub planned_writes: u64,
    /// Data bytes written by creates and set_data.
    pub data_bytes: u64,
    pub skipped: BTreeMap<SkipReason, u64>,
    /// Nodes in extra subtrees left in place (without `--delete-extra`).
    pub extra_nodes_kept: u64,
    /// Nodes of the target subtree seen while planning: what the share of
    /// deletes is of.
    #[serde(default)]
    pub target_nodes: u64,
    /// Ephemerals of live sessions in the target subtree: applications
    /// use it.
    #[serde(default)]
    pub target_ephemerals: u64,
    /// The first few of those, to name.
    #[serde(default)]
    pub target_ephemeral_examples: Vec<String>,
    pub listed: Vec<ActionView>,
    pub listed_skips: Vec<Skip>,
}

impl PlanSummary {
    fn new() -> PlanSummary {
        PlanSummary {
            actions: ActionKind::ALL.iter().map(|k| (*k, 0)).collect(),
            skipped: SkipReason::ALL.iter().map(|k| (*k, 0)).collect(),
            ..PlanSummary::default()
        }
    }

    /// Differences that remain whatever is applied.
    pub(crate) fn unrepaired(&self) -> u64 {
        self.skipped
            .iter()
            .filter(|(r, _)| r.leaves_difference())
            .map(|(_, n)| n)
            .sum()
    }
}

/// Where planned actions go as they are found.
pub trait PlanSink {
    fn action(&mut self, action: &Action) -> Result<()>;
}

/// Keeps nothing: a dry run only counts and lists.
pub(crate) struct CountOnly;

impl PlanSink for CountOnly {
    fn action(&mut self, _: &Action) -> Result<()> {
        Ok(())
    }
}

// Tags: what the walk is inside of.
const NORMAL: Tag = 0;
/// Below a node being created: everything readable here is created.
const MISSING: Tag = 1;
/// Below an extra node being deleted.
const EXTRA: Tag = 2;
/// Nothing to do below here (unreadable, ephemeral, kept extra subtree).
const SHADOWED: Tag = 3;

/// What a node still needs once its subtree has been walked.
#[derive(Default)]
struct Pending {
    acl: Option<(Vec<AclSpec>, i32)>,
    sequence: Option<SequencePending>,
    delete: Option<DeletePending>,
    /// The root of an extra subtree left in place.
    kept_extra: bool,
}

struct SequencePending {
    source: i64,
    /// The target's counter once the planned creates of this node's
    /// children have been applied.
    predicted: i64,
}

struct DeletePending {
    version: i32,
    /// Why it cannot go, if something below it must stay.
    blocked: Option<String>,
}

pub(crate) struct PlanOptions {
    pub delete_extra: bool,
    /// Target-only paths deleted even without `delete_extra`.
    pub delete_also: std::sync::Arc<std::collections::BTreeSet<String>>,
    /// False where the source holds no ACLs: creates get world:anyone:cdrwa
    /// and ACLs are neither compared nor set.
    pub acls: bool,
    /// The walk's excludes, to keep an extra node whose subtree holds an
    /// excluded one.
    pub excludes: Excludes,
    /// Actions and skips listed in the summary (0: all).
    pub limit: usize,
    pub show_acl_ids: bool,
}

/// The visitor behind a plan.
pub(crate) struct Planner<'s> {
    options: PlanOptions,
    sink: &'s mut dyn PlanSink,
    pending: HashMap<String, Pending>,
    summary: PlanSummary,
    error: Option<Error>,
}

fn acl_specs(n: &NodeRead) -> Option<Vec<AclSpec>> {
    n.acl
        .as_ref()
        .map(|a| a.iter().map(AclSpec::from_entry).collect())
}

impl<'s> Planner<'s> {
    pub(crate) fn new(options: PlanOptions, sink: &'s mut dyn PlanSink) -> Planner<'s> {
        Planner {
            options,
            sink,
            pending: HashMap::new(),
            summary: PlanSummary::new(),
            error: None,
        }
    }

    /// Actions planned and nodes left unrepaired so far: what progress
    /// lines count as differences while planning.
    pub(crate) fn found(&self) -> u64 {
        self.summary.total_actions + self.summary.unrepaired()
    }

    /// The summary, or the first error the sink returned.
    pub(crate) fn finish(self) -> Result<PlanSummary> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.summary),
        }
    }

    fn listing_full(&self, len: usize) -> bool {
        self.options.limit != 0 && len >= self.options.limit
    }

    fn emit(&mut self, action: Action) {
        if self.error.is_some() {
            return;
        }
        let s = &mut self.summary;
        *s.actions.entry(action.kind()).or_default() += 1;
        s.total_actions += 1;
        s.planned_writes += action.planned_writes();
        if let Action::Create { data, .. } | Action::SetData { data, .. } = &action {
            s.data_bytes += data.len() as u64;
        }
        if !self.listing_full(self.summary.listed.len()) {
            let view = action.view(self.options.show_acl_ids);
            self.summary.listed.push(view);
        }
        if let Err(e) = self.sink.action(&action) {
            self.error = Some(e);
        }
    }

    fn skip(&mut self, path: &str, reason: SkipReason, detail: String) {
        *self.summary.skipped.entry(reason).or_default() += 1;
        if !self.listing_full(self.summary.listed_skips.len()) {
            self.summary.listed_skips.push(Skip {
                path: path.to_string(),
                reason,
                detail,
            });
        }
    }

    /// A child of `path`'s parent is created: its counter moves by one.
    fn child_created(&mut self, path: &str) {
        // The root of the walk has no parent to tell.
        if let Some(seq) = parent(path)
            .and_then(|up| self.pending.get_mut(up))
            .and_then(|p| p.sequence.as_mut())
        {
            seq.predicted += 1;
        }
    }

    /// Something at `path` must stay, so its parent, if planned for
    /// deletion, cannot be deleted.
    fn block_parent(&mut self, path: &str, why: String) {
        // The root of the walk has no parent to tell.
        if let Some(d) = parent(path)
            .and_then(|up| self.pending.get_mut(up))
            .and_then(|p| p.delete.as_mut())
        {
            d.blocked.get_or_insert(why);
        }
    }

    /// Remembers a counter to top up if the source's is ahead of what the
    /// target will hold.
    fn watch_sequence(&mut self, path: &str, source: &NodeRead, target: Option<&NodeRead>) {
        let Some(s) = source.stat else { return };
        let base = match target {
            Some(t) => match t.stat {
                Some(t) => next_sequence(&t),
                None => return,
            },
            None => 0,
        };
        let source_next = next_sequence(&s);
        let sequential = source
            .children
            .iter()
            .chain(target.map(|t| t.children.as_slice()).unwrap_or(&[]))
            .any(|c| looks_sequential(c));
        if sequential && source_next > base {
            self.pending.entry(path.to_string()).or_default().sequence = Some(SequencePending {
                source: source_next,
                predicted: base,
            });
        }
    }

    fn create(&mut self, path: &str, n: &NodeRead) -> Tag {
        if self.options.acls && has_hidden_ids(n) {
            self.skip(path, SkipReason::AclHidden, hidden_note(n));
            return SHADOWED;
        }
        let acl = if self.options.acls {
            acl_specs(n)
        } else {
            None
        };
        self.emit(Action::Create {
            path: path.to_string(),
            data: n.data.clone().unwrap_or_default(),
            acl,
        });
        self.child_created(path);
        self.watch_sequence(path, n, None);
        MISSING
    }

    fn extra(&mut self, path: &str, n: &NodeRead) -> Tag {
        if !self.options.delete_extra && !self.options.delete_also.contains(path) {
            self.pending.entry(path.to_string()).or_default().kept_extra = true;
            return SHADOWED;
        }
        let excluded = n
            .children
            .iter()
            .map(|c| child_path(path, c))
            .find(|c| self.options.excludes.is_excluded(c));
        self.pending.entry(path.to_string()).or_default().delete = Some(DeletePending {
            version: n.stat.map_or(-1, |s| s.version),
            blocked: excluded.map(|c| format!("{c} is excluded from the repair")),
        });
        EXTRA
    }

    fn visit_missing(&mut self, v: &Visit<'_>) -> Tag {
        match &v.sides[0] {
            SideNode::Present(n) if n.kind == NodeKind::Ephemeral => {
                self.skip(v.path, SkipReason::SourceEphemeral, ephemeral_note());
                SHADOWED
            }
            SideNode::Present(n) => self.create(v.path, n),
            SideNode::Unreadable(reason) => {
                self.skip(v.path, SkipReason::Unreadable, format!("source: {reason}"));
                SHADOWED
            }
            SideNode::Absent => SHADOWED,
        }
    }

    fn visit_extra(&mut self, v: &Visit<'_>) -> Tag {
        match &v.sides[1] {
            SideNode::Present(n) if n.kind == NodeKind::Ephemeral => {
                self.block_parent(v.path, format!("{} is an ephemeral node", v.path));
                SHADOWED
            }
            SideNode::Present(n) => self.extra(v.path, n),
            SideNode::Unreadable(reason) => {
                self.skip(v.path, SkipReason::Unreadable, format!("target: {reason}"));
                self.block_parent(v.path, format!("{} cannot be read", v.path));
                SHADOWED
            }
            SideNode::Absent => SHADOWED,
        }
    }

    fn visit_normal(&mut self, v: &Visit<'_>) -> Tag {
        match (&v.sides[0], &v.sides[1]) {
            (SideNode::Unreadable(reason), _) => {
                self.skip(v.path, SkipReason::Unreadable, format!("source: {reason}"));
                SHADOWED
            }
            (_, SideNode::Unreadable(reason)) => {
                self.skip(v.path, SkipReason::Unreadable, format!("target: {reason}"));
                SHADOWED
            }
            (SideNode::Absent, SideNode::Absent) => SHADOWED,
            (SideNode::Present(s), SideNode::Absent) => {
                if s.kind == NodeKind::Ephemeral {
                    self.skip(v.path, SkipReason::SourceEphemeral, ephemeral_note());
                    SHADOWED
                } else {
                    self.create(v.path, s)
                }
            }
            // Another session's ephemeral: never touched.
            (SideNode::Absent, SideNode::Present(t)) if t.kind == NodeKind::Ephemeral => SHADOWED,
            (SideNode::Absent, SideNode::Present(t)) => self.extra(v.path, t),
            (SideNode::Present(s), SideNode::Present(t)) => self.visit_both(v.path, s, t),
        }
    }

    fn visit_both(&mut self, path: &str, s: &NodeRead, t: &NodeRead) -> Tag {
        if s.kind != t.kind {
            self.skip(
                path,
                SkipReason::NodeKind,
                format!(
                    "{} on the source, {} on the target: fixing it means deleting and \
                     recreating the node, and an ephemeral belongs to a live session, \
                     so this is left to the application that owns it",
                    s.kind.as_str(),
                    t.kind.as_str()
                ),
            );
            // Nothing can be created below an ephemeral; below a persistent
            // target node, its children are compared as usual.
            return if t.kind == NodeKind::Ephemeral {
                SHADOWED
            } else {
                NORMAL
            };
        }
        if s.kind == NodeKind::Ephemeral {
            return SHADOWED;
        }
        // A live target always has a stat; -1 (any version) only stands in
        // for a side that has none.
        let (version, aversion) = t.stat.map_or((-1, -1), |s| (s.version, s.aversion));
        for kind in node_differences(s, t, EphemeralPolicy::Count) {
            match kind {
                crate::report::DiffKind::Data => self.emit(Action::SetData {
                    path: path.to_string(),
                    data: s.data.clone().unwrap_or_default(),
                    version,
                }),
                crate::report::DiffKind::Acl if self.options.acls && has_hidden_ids(s) => {
                    self.skip(path, SkipReason::AclHidden, hidden_note(s));
                }
                crate::report::DiffKind::Acl if self.options.acls => {
                    if let Some(acl) = acl_specs(s) {
                        self.pending.entry(path.to_string()).or_default().acl =
                            Some((acl, aversion));
                    }
                }
                _ => {}
            }
        }
        self.watch_sequence(path, s, Some(t));
        NORMAL
    }
}

fn has_hidden_ids(n: &NodeRead) -> bool {
    n.acl.iter().flatten().any(|e| e.is_redacted())
}

fn hidden_note(n: &NodeRead) -> String {
    let hidden: Vec<String> = n
        .acl
        .iter()
        .flatten()
        .filter(|e| e.is_redacted())
        .map(|e| e.display(false))
        .collect();
    format!(
        "the source hid the digest ids of its ACL ({}: its credentials lack ADMIN here); copied, they would lock the owner out. Give source credentials with ADMIN",
        hidden.join(", ")
    )
}

fn ephemeral_note() -> String {
    "ephemeral on the source: it belongs to a session there, so it is not created".into()
}

/// Ephemerals named in a refusal.
const NAMED_EPHEMERALS: usize = 3;

impl Visitor for Planner<'_> {
    fn visit(&mut self, v: &Visit<'_>) -> Tag {
        if let SideNode::Present(t) = &v.sides[1] {
            let s = &mut self.summary;
            s.target_nodes += 1;
            if t.kind == NodeKind::Ephemeral {
                s.target_ephemerals += 1;
                if s.target_ephemeral_examples.len() < NAMED_EPHEMERALS {
                    s.target_ephemeral_examples.push(v.path.to_string());
                }
            }
        }
        match v.tag {
            SHADOWED => SHADOWED,
            MISSING => self.visit_missing(v),
            EXTRA => self.visit_extra(v),
            _ => self.visit_normal(v),
        }
    }

    fn subtree_done(
        &mut self,
        path: &str,
        _depth: u32,
        _tag: Tag,
        sides: &[Option<SubtreeSummary>; 2],
    ) {
        let Some(p) = self.pending.remove(path) else {
            return;
        };
        // A counter needs CREATE and DELETE on the node, so it goes before
        // an ACL change that might take them away.
        if let Some(seq) = p.sequence {
            if seq.predicted < seq.source {
                self.emit(Action::SequenceCounter {
                    path: path.to_string(),
                    next: seq.source,
                    expected_from: seq.predicted,
                });
            }
        }
        if let Some((acl, aversion)) = p.acl {
            self.emit(Action::SetAcl {
                path: path.to_string(),
                acl,
                aversion,
            });
        }
        if p.kept_extra {
            let nodes = sides[1].as_ref().map_or(1, |s| s.nodes);
            self.summary.extra_nodes_kept += nodes;
            self.skip(
                path,
                SkipReason::ExtraKept,
                format!(
                    "on the target only ({nodes} node{} in the subtree); --delete-extra deletes it",
                    if nodes == 1 { "" } else { "s" }
                ),
            );
        }
        if let Some(d) = p.delete {
            match d.blocked {
                Some(why) => {
                    self.skip(
                        path,
                        SkipReason::ExtraNotDeletable,
                        format!("on the target only, but {why}"),
                    );
                    self.block_parent(path, why);
                }
                None => {
                    self.emit(Action::Delete {
                        path: path.to_string(),
                        version: d.version,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::AclEntry;
    use zookeeper_client as zk;

    #[test]
    fn a_counter_counts_creates_only() {
        // 5 creates, 3 deletes: cversion 8 with 2 children left.
        let stat = zk::Stat {
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion: 8,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 0,
            num_children: 2,
        };
        assert_eq!(next_sequence(&stat), 5);
        assert_eq!(top_up_writes(2, 5), 6);
        assert_eq!(top_up_writes(5, 5), 0);
        assert_eq!(top_up_writes(6, 5), 0);
    }

    #[test]
    fn acl_bits_round_trip_through_the_client_type() {
        let spec = AclSpec {
            scheme: "digest".into(),
            id: "alice:hash=".into(),
            perms: 1 | 16,
        };
        let back = AclEntry::from_zk(&spec.to_zk());
        assert_eq!(AclSpec::from_entry(&back), spec);
    }

    #[test]
    fn actions_survive_the_plan_file_with_any_bytes() {
        let a = Action::Create {
            path: "/a".into(),
            data: (0..=255u8).collect(),
            acl: None,
        };
        let line = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Action>(&line).unwrap(), a);
    }
}
