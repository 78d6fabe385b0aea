//! Compares a source and a target ensemble: walks both at once, classifies
//! every difference, then re-reads what differed so that only differences
//! that persist are reported as confirmed. Never writes to either side.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aclcache::AclCache;
use crate::connect::EnsembleSpec;
use crate::digest::{AclEntry, NodeKind, DIGEST_VERSION};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::report::{
    CompareReport, DiffKind, Difference, Endpoint, NodeDetail, Settings, SideTotals, SubtreeRow,
    SubtreeSide, Summary, UnverifiedAcl, Verdict,
};
use crate::source::{FileKind, SideSpec, Source};
use crate::tree::path::{name_of, parent};
use crate::tree::sequence::{looks_sequential, next_sequence};
use crate::tree::{
    self, EphemeralPolicy, NodeRead, Observer, ReadNodes, ReaderOptions, SideNode, SubtreeSummary,
    Tag, Visit, Visitor, WalkOptions,
};

/// Differences kept in memory for re-checking and listing; past this they are
/// only counted (and count as confirmed: never a false "identical").
const MAX_KEPT_DIFFERENCES: usize = 100_000;

#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub path: String,
    pub walk: WalkOptions,
    pub reader: ReaderOptions,
    pub subtree_depth: u32,
    /// `None`: report what the walk saw, without re-checking.
    pub recheck_delay: Option<Duration>,
    /// Differences listed in the report; 0 for all.
    pub limit: usize,
    pub show_acl_ids: bool,
    /// Source and target ACL caches kept across repeated compares (the
    /// agent's rounds); `None` reads every ACL.
    pub acl_caches: [Option<Arc<AclCache>>; 2],
}

impl CompareOptions {
    /// The command line's defaults for comparing `path`: `/zookeeper`
    /// excluded, ephemerals counted, differences re-checked after 3s, 50
    /// listed, ACLs read every time.
    pub fn defaults(path: &str) -> Result<CompareOptions> {
        Ok(CompareOptions {
            path: path.to_string(),
            walk: WalkOptions::new(
                EphemeralPolicy::Count,
                crate::exclude::Excludes::new(crate::exclude::DEFAULT_EXCLUDES)?,
            ),
            reader: ReaderOptions::default(),
            subtree_depth: 1,
            recheck_delay: Some(Duration::from_secs(3)),
            limit: 50,
            show_acl_ids: false,
            acl_caches: [None, None],
        })
    }
}

// Tags the visitor puts on subtrees.
const NORMAL: Tag = 0;
/// Below a missing or extra root: counted, not reported node by node.
const ONE_SIDED: Tag = 1;
/// Below a node one side cannot read: nothing there can be compared.
const SHADOWED: Tag = 2;

/// The node as the ephemeral policy lets the comparison see it.
fn effective(node: &SideNode, policy: EphemeralPolicy) -> &SideNode {
    match node {
        SideNode::Present(n)
            if n.kind == NodeKind::Ephemeral && policy == EphemeralPolicy::Skip =>
        {
            &SideNode::Absent
        }
        other => other,
    }
}

fn is_uncompared_ephemeral(n: &NodeRead, policy: EphemeralPolicy) -> bool {
    n.kind == NodeKind::Ephemeral && policy != EphemeralPolicy::Compare
}

/// The differences between two readable nodes, the node itself only.
pub(crate) fn node_differences(
    source: &NodeRead,
    target: &NodeRead,
    policy: EphemeralPolicy,
) -> Vec<DiffKind> {
    if source.kind != target.kind {
        // A different kind of node: its data and ACL belong to another story.
        return vec![DiffKind::NodeKind];
    }
    if is_uncompared_ephemeral(source, policy) {
        return Vec::new();
    }
    let mut kinds = Vec::new();
    if source.data_len != target.data_len || source.data_sha256 != target.data_sha256 {
        kinds.push(DiffKind::Data);
    }
    if source.acl_fingerprint != target.acl_fingerprint
        && redacted_agreement(source, target).is_none()
    {
        kinds.push(DiffKind::Acl);
    }
    kinds
}

/// ACLs that differ only where a side saw digest ids redacted (it lacks
/// ADMIN on the node): the entries that could not be verified.
fn redacted_agreement(source: &NodeRead, target: &NodeRead) -> Option<Vec<AclEntry>> {
    match (&source.acl, &target.acl) {
        (Some(a), Some(b)) if source.acl_fingerprint != target.acl_fingerprint => {
            crate::digest::agree_but_redacted(a, b)
        }
        _ => None,
    }
}

/// Whether the target would hand out a lower next sequence number than
/// the source at this node. Whether that matters depends on the children
/// (see [`CounterWatch`]); a side without stat (a zktreeutil file) says
/// nothing of counters.
pub(crate) fn counter_behind(source: &NodeRead, target: &NodeRead) -> Option<(i64, i64)> {
    let (s, t) = (source.stat.as_ref()?, target.stat.as_ref()?);
    let (s, t) = (next_sequence(s), next_sequence(t));
    (t < s).then_some((s, t))
}

/// A node whose target counter is behind the source's, waiting for its
/// children to tell whether that puts anything at risk: only persistent
/// children with sequential names on the source survive a migration and
/// could be reused or reordered. Ephemeral ones (elections, locks) start
/// over with live sessions.
struct CounterWatch {
    source_next: i64,
    target_next: i64,
    sides: [NodeDetail; 2],
    /// The first persistent sequential child seen on the source.
    at_risk: Option<String>,
}

/// Why a counter was judged at risk, for the report.
fn counter_reason(example: &str, source_next: i64, target_next: i64) -> String {
    format!(
        "persistent sequential children on the source (e.g. {example}): the target would number the next one {target_next}, the source {source_next}"
    )
}

/// What one path looks like across both sides, for the walk and the re-check.
enum PathComparison {
    Same,
    Gone,
    Missing,
    Extra,
    Unreadable,
    Differs(Vec<DiffKind>),
}

fn compare_path(sides: &[SideNode; 2], policy: EphemeralPolicy) -> PathComparison {
    let s = effective(&sides[0], policy);
    let t = effective(&sides[1], policy);
    match (s, t) {
        (SideNode::Unreadable(_), _) | (_, SideNode::Unreadable(_)) => PathComparison::Unreadable,
        (SideNode::Absent, SideNode::Absent) => PathComparison::Gone,
        (SideNode::Present(n), SideNode::Absent) if is_uncompared_ephemeral(n, policy) => {
            PathComparison::Same
        }
        (SideNode::Absent, SideNode::Present(n)) if is_uncompared_ephemeral(n, policy) => {
            PathComparison::Same
        }
        (SideNode::Present(_), SideNode::Absent) => PathComparison::Missing,
        (SideNode::Absent, SideNode::Present(_)) => PathComparison::Extra,
        (SideNode::Present(a), SideNode::Present(b)) => {
            let kinds = node_differences(a, b, policy);
            if kinds.is_empty() {
                PathComparison::Same
            } else {
                PathComparison::Differs(kinds)
            }
        }
    }
}

struct CompareVisitor {
    policy: EphemeralPolicy,
    subtree_depth: u32,
    show_acl_ids: bool,
    differences: Vec<Difference>,
    /// Counted but not kept, past MAX_KEPT_DIFFERENCES.
    overflow: BTreeMap<DiffKind, u64>,
    /// Missing or extra roots whose node count is not known yet.
    open_roots: HashMap<String, usize>,
    /// Counters behind on the target, until their children are seen.
    counters: HashMap<String, CounterWatch>,
    /// ACLs equal as far as redacted ids let them be compared.
    unverified: Vec<UnverifiedAcl>,
    unverified_total: u64,
    rows: Vec<SubtreeRow>,
}

impl CompareVisitor {
    /// A visitor that has seen nothing yet.
    fn new(policy: EphemeralPolicy, subtree_depth: u32, show_acl_ids: bool) -> CompareVisitor {
        CompareVisitor {
            policy,
            subtree_depth,
            show_acl_ids,
            differences: Vec::new(),
            overflow: BTreeMap::new(),
            open_roots: HashMap::new(),
            counters: HashMap::new(),
            unverified: Vec::new(),
            unverified_total: 0,
            rows: Vec::new(),
        }
    }

    /// Differences found so far, kept or only counted.
    fn found(&self) -> u64 {
        self.differences.len() as u64 + self.overflow.values().sum::<u64>()
    }

    fn record(&mut self, path: &str, kind: DiffKind, sides: &[SideNode; 2]) -> Option<usize> {
        let [source, target] = [
            NodeDetail::from_side(&sides[0], self.show_acl_ids),
            NodeDetail::from_side(&sides[1], self.show_acl_ids),
        ];
        self.push(Difference {
            path: path.to_string(),
            kind,
            subtree_nodes: None,
            reason: None,
            source,
            target,
        })
    }

    fn push(&mut self, d: Difference) -> Option<usize> {
        if self.differences.len() >= MAX_KEPT_DIFFERENCES {
            *self.overflow.entry(d.kind).or_default() += 1;
            return None;
        }
        self.differences.push(d);
        Some(self.differences.len() - 1)
    }

    /// Notes ACLs that agree only as far as redaction lets them be seen.
    fn note_unverified(&mut self, path: &str, sides: &[SideNode; 2]) {
        let (SideNode::Present(s), SideNode::Present(t)) = (&sides[0], &sides[1]) else {
            return;
        };
        if let Some(entries) = redacted_agreement(s, t) {
            self.unverified_total += 1;
            if self.unverified.len() < MAX_KEPT_DIFFERENCES {
                self.unverified.push(UnverifiedAcl {
                    path: path.to_string(),
                    entries: entries
                        .iter()
                        .map(|e| e.display(self.show_acl_ids))
                        .collect(),
                });
            }
        }
    }

    /// Starts watching a node whose target counter is behind, if any of its
    /// source children has a sequential name.
    fn watch_counter(&mut self, path: &str, sides: &[SideNode; 2]) {
        let (SideNode::Present(s), SideNode::Present(t)) = (&sides[0], &sides[1]) else {
            return;
        };
        if !s.children.iter().any(|c| looks_sequential(c)) {
            return;
        }
        if let Some((source_next, target_next)) = counter_behind(s, t) {
            self.counters.insert(
                path.to_string(),
                CounterWatch {
                    source_next,
                    target_next,
                    sides: [
                        NodeDetail::from_side(&sides[0], self.show_acl_ids),
                        NodeDetail::from_side(&sides[1], self.show_acl_ids),
                    ],
                    at_risk: None,
                },
            );
        }
    }

    /// A child of a watched counter: a persistent sequential one on the
    /// source puts the counter at risk.
    fn note_counter_child(&mut self, path: &str, sides: &[SideNode; 2]) {
        let Some(watch) = parent(path).and_then(|up| self.counters.get_mut(up)) else {
            return;
        };
        let name = name_of(path);
        if watch.at_risk.is_none()
            && looks_sequential(name)
            && matches!(&sides[0], SideNode::Present(n) if n.kind == NodeKind::Persistent)
        {
            watch.at_risk = Some(name.to_string());
        }
    }
}

impl Visitor for CompareVisitor {
    fn visit(&mut self, v: &Visit<'_>) -> Tag {
        self.note_counter_child(v.path, v.sides);
        if v.tag != NORMAL {
            return v.tag;
        }
        match compare_path(v.sides, self.policy) {
            PathComparison::Gone => NORMAL,
            PathComparison::Same => {
                self.note_unverified(v.path, v.sides);
                self.watch_counter(v.path, v.sides);
                NORMAL
            }
            PathComparison::Unreadable => {
                self.record(v.path, DiffKind::Unreadable, v.sides);
                SHADOWED
            }
            state @ (PathComparison::Missing | PathComparison::Extra) => {
                let kind = if matches!(state, PathComparison::Missing) {
                    DiffKind::MissingInTarget
                } else {
                    DiffKind::ExtraInTarget
                };
                if let Some(i) = self.record(v.path, kind, v.sides) {
                    self.open_roots.insert(v.path.to_string(), i);
                }
                ONE_SIDED
            }
            PathComparison::Differs(kinds) => {
                let kind_differs = kinds.contains(&DiffKind::NodeKind);
                for kind in kinds {
                    self.record(v.path, kind, v.sides);
                }
                if !kind_differs {
                    self.note_unverified(v.path, v.sides);
                    self.watch_counter(v.path, v.sides);
                }
                NORMAL
            }
        }
    }

    fn subtree_done(
        &mut self,
        path: &str,
        depth: u32,
        _tag: Tag,
        sides: &[Option<SubtreeSummary>; 2],
    ) {
        if let Some(i) = self.open_roots.remove(path) {
            let nodes = sides.iter().flatten().map(|s| s.nodes).max().unwrap_or(1);
            self.differences[i].subtree_nodes = Some(nodes);
        }
        if let Some(w) = self.counters.remove(path) {
            if let Some(example) = &w.at_risk {
                let [source, target] = w.sides;
                self.push(Difference {
                    path: path.to_string(),
                    kind: DiffKind::SequenceCounter,
                    subtree_nodes: None,
                    reason: Some(counter_reason(example, w.source_next, w.target_next)),
                    source,
                    target,
                });
            }
        }
        if depth <= self.subtree_depth {
            self.rows.push(subtree_row(path, sides));
        }
    }
}

fn subtree_row(path: &str, sides: &[Option<SubtreeSummary>; 2]) -> SubtreeRow {
    // A node left out of checksums (an uncompared ephemeral) is as good as
    // absent for the comparison.
    let compared = |s: &Option<SubtreeSummary>| s.as_ref().filter(|s| s.in_checksum).cloned();
    let matches = match (&compared(&sides[0]), &compared(&sides[1])) {
        (Some(a), Some(b)) => {
            a.checksum == b.checksum
                && a.acl_fingerprint == b.acl_fingerprint
                && a.unreadable == 0
                && b.unreadable == 0
        }
        (None, None) => true,
        _ => false,
    };
    SubtreeRow {
        path: path.to_string(),
        matches,
        source: sides[0].as_ref().map(SubtreeSide::from_summary),
        target: sides[1].as_ref().map(SubtreeSide::from_summary),
    }
}

/// Whether a node as a side showed it is there for the comparison: read,
/// and not an ephemeral the policy leaves out.
fn compared_present(d: &NodeDetail, policy: EphemeralPolicy) -> bool {
    let uncompared = d.node_kind == Some(NodeKind::Ephemeral) && policy != EphemeralPolicy::Compare;
    d.exists && d.error.is_none() && !uncompared
}

/// Whether a difference still there at the re-check (`now`, the target as
/// re-read) is only the target lagging: it has reached what the source held
/// at the walk (`earlier`). A busy source is a little ahead at both reads (a
/// parent gaining a sequential child every second, a value rewritten every
/// second), so "still different" alone would alarm on every follower; a
/// target that holds neither the source's earlier nor its later state has
/// drifted. `earlier_nodes`: the walk's count of a subtree missing on the
/// target, which an extra root must hold to stand for it.
pub(crate) fn lags(
    now: &Difference,
    earlier: &NodeDetail,
    earlier_nodes: Option<u64>,
    policy: EphemeralPolicy,
) -> bool {
    let t = &now.target;
    let readable = |d: &NodeDetail| d.exists && d.error.is_none();
    let same_data = || {
        t.data_length.is_some()
            && t.data_length == earlier.data_length
            && t.data_sha256 == earlier.data_sha256
    };
    // Without ACLs read the fingerprints are stand-ins: nothing to compare.
    let same_acl =
        || earlier.acl_fingerprint.is_none() || t.acl_fingerprint == earlier.acl_fingerprint;
    if !readable(earlier) && now.kind != DiffKind::MissingInTarget {
        return false;
    }
    match now.kind {
        DiffKind::Data => readable(t) && same_data(),
        DiffKind::Acl => {
            readable(t)
                && earlier.acl_fingerprint.is_some()
                && t.acl_fingerprint == earlier.acl_fingerprint
        }
        DiffKind::NodeKind => {
            readable(t) && t.node_kind.is_some() && t.node_kind == earlier.node_kind
        }
        DiffKind::SequenceCounter => match (t.next_sequence, earlier.next_sequence) {
            (Some(t), Some(s)) => t >= s,
            _ => false,
        },
        // The source has (re)created a node that it did not have at the
        // walk, and the target has not yet.
        DiffKind::MissingInTarget => {
            !earlier.exists || readable(earlier) && !compared_present(earlier, policy)
        }
        // The source has deleted a node the target still holds as it was.
        DiffKind::ExtraInTarget => {
            compared_present(earlier, policy)
                && readable(t)
                && t.node_kind == earlier.node_kind
                && same_data()
                && same_acl()
                && match earlier_nodes {
                    Some(n) => now.subtree_nodes == Some(n),
                    None => true,
                }
        }
        DiffKind::Unreadable => false,
    }
}

/// Re-reads every differing path on both sides and keeps what persists.
///
/// A path that still differs is confirmed as it is now, even if the kind
/// changed meanwhile (a `data` difference whose node was then deleted is now
/// `missing_in_target`): "still different" is what matters, unless the
/// target has reached what the source held at the walk ([`lags`]): those
/// are transient, and counted as lagging too. A missing or extra root that
/// now exists on both sides is compared again as a subtree, so a
/// half-finished copy is never taken for healed.
///
/// Returns the confirmed differences, the transient count and, of those,
/// the lagging count.
async fn recheck(
    readers: [&Source; 2],
    options: &CompareOptions,
    mut found: Vec<Difference>,
) -> Result<(Vec<Difference>, u64, u64)> {
    found.sort_by(|a, b| a.path.cmp(&b.path));
    let mut paths: Vec<&str> = found.iter().map(|d| d.path.as_str()).collect();
    paths.dedup();
    let now = read_now(readers, options, &paths).await?;
    let policy = options.walk.ephemerals;
    let mut confirmed = Vec::new();
    let mut transient = 0u64;
    let mut lagging = 0u64;
    let mut i = 0;
    while i < found.len() {
        let j = i + found[i..]
            .iter()
            .take_while(|d| d.path == found[i].path)
            .count();
        let before = &found[i..j];
        i = j;
        let path = before[0].path.clone();
        let Some(sides) = now.get(&path) else {
            continue;
        };
        let current = differences_now(readers, options, before, sides).await?;
        // Every difference recorded at a path carries the same walk-time
        // read of the source; what a fresh walk found below the path has no
        // earlier state to lag behind.
        let earlier = &before[0].source;
        let earlier_nodes = before
            .iter()
            .find(|d| d.kind == DiffKind::MissingInTarget)
            .and_then(|d| d.subtree_nodes);
        let (lag, current): (Vec<Difference>, Vec<Difference>) = current
            .into_iter()
            .partition(|c| c.path == path && lags(c, earlier, earlier_nodes, policy));
        let (gone, lagged) = count_gone(before, &current, &lag);
        transient += gone;
        lagging += lagged;
        confirmed.extend(current);
    }
    Ok((confirmed, transient, lagging))
}

/// Both sides' nodes at `paths` as they are now, read in batches.
async fn read_now(
    readers: [&Source; 2],
    options: &CompareOptions,
    paths: &[&str],
) -> Result<HashMap<String, [SideNode; 2]>> {
    let mut now: HashMap<String, [SideNode; 2]> = HashMap::with_capacity(paths.len());
    for chunk in paths.chunks(options.walk.batch_nodes.max(1)) {
        let names: Vec<&str> = chunk
            .iter()
            .map(|p| if *p == options.path { "" } else { name_of(p) })
            .collect();
        let (a, b) = futures::join!(
            readers[0].read_nodes(chunk, &names),
            readers[1].read_nodes(chunk, &names)
        );
        for ((path, a), b) in chunk.iter().zip(a?).zip(b?) {
            now.insert(path.to_string(), [a, b]);
        }
    }
    Ok(now)
}

/// What differs now at the path of `before` (the walk's differences
/// there), judged on `sides` as read again.
async fn differences_now(
    readers: [&Source; 2],
    options: &CompareOptions,
    before: &[Difference],
    sides: &[SideNode; 2],
) -> Result<Vec<Difference>> {
    let path = &before[0].path;
    let was_one_sided = before
        .iter()
        .any(|d| matches!(d.kind, DiffKind::MissingInTarget | DiffKind::ExtraInTarget));
    let detail = |k: DiffKind| Difference {
        path: path.clone(),
        kind: k,
        subtree_nodes: None,
        reason: None,
        source: NodeDetail::from_side(&sides[0], options.show_acl_ids),
        target: NodeDetail::from_side(&sides[1], options.show_acl_ids),
    };
    // A counter judged at risk by the walk stays at risk while it is
    // still behind: its children are not read again.
    let counter = before
        .iter()
        .find(|d| d.kind == DiffKind::SequenceCounter)
        .and_then(|d| match sides {
            [SideNode::Present(s), SideNode::Present(t)] => {
                counter_behind(s, t).map(|_| Difference {
                    reason: d.reason.clone(),
                    ..detail(DiffKind::SequenceCounter)
                })
            }
            _ => None,
        });
    Ok(match compare_path(sides, options.walk.ephemerals) {
        PathComparison::Gone => Vec::new(),
        PathComparison::Same if !was_one_sided => counter.into_iter().collect(),
        PathComparison::Unreadable => vec![detail(DiffKind::Unreadable)],
        PathComparison::Differs(kinds) if !was_one_sided => {
            let node_kind = kinds.contains(&DiffKind::NodeKind);
            let mut all: Vec<Difference> = kinds.into_iter().map(detail).collect();
            all.extend(counter.filter(|_| !node_kind));
            all
        }
        state => {
            let kind = match state {
                PathComparison::Missing => Some(DiffKind::MissingInTarget),
                PathComparison::Extra => Some(DiffKind::ExtraInTarget),
                _ => None,
            };
            match before.iter().find(|d| Some(d.kind) == kind) {
                // Still missing (or extra) as before: keep the count.
                Some(same) => vec![same.clone()],
                // Newly one-sided, or a one-sided root that now exists on
                // both sides: compare it again as a subtree.
                None => {
                    Box::pin(walk_pair(readers, options, path, &mut ()))
                        .await?
                        .differences
                }
            }
        }
    })
}

/// Of `before`, how many are gone from `current` (transient) and, of
/// those, how many the target's `lag` explains (lagging).
fn count_gone(before: &[Difference], current: &[Difference], lag: &[Difference]) -> (u64, u64) {
    let one_sided = |k: DiffKind| matches!(k, DiffKind::MissingInTarget | DiffKind::ExtraInTarget);
    let mut transient = 0u64;
    let mut lagging = 0u64;
    for d in before {
        if current.iter().any(|c| c.path == d.path && c.kind == d.kind) {
            continue;
        }
        transient += 1;
        if lag
            .iter()
            .any(|c| c.kind == d.kind || one_sided(c.kind) && one_sided(d.kind))
        {
            lagging += 1;
        }
    }
    (transient, lagging)
}

struct PairWalk {
    differences: Vec<Difference>,
    unverified: Vec<UnverifiedAcl>,
    unverified_total: u64,
    overflow: BTreeMap<DiffKind, u64>,
    rows: Vec<SubtreeRow>,
    root: [Option<SubtreeSummary>; 2],
}

async fn walk_pair(
    readers: [&Source; 2],
    options: &CompareOptions,
    path: &str,
    observer: &mut impl Observer<CompareVisitor>,
) -> Result<PairWalk> {
    let mut visitor = CompareVisitor::new(
        options.walk.ephemerals,
        options.subtree_depth,
        options.show_acl_ids,
    );
    let root = tree::walk(
        [Some(readers[0]), Some(readers[1])],
        path,
        &options.walk,
        &mut visitor,
        observer,
    )
    .await?;
    Ok(PairWalk {
        differences: visitor.differences,
        unverified: visitor.unverified,
        unverified_total: visitor.unverified_total,
        overflow: visitor.overflow,
        rows: visitor.rows,
        root,
    })
}

/// Compares `options.path` on both ensembles.
pub async fn compare(
    source: &EnsembleSpec,
    target: &EnsembleSpec,
    options: &CompareOptions,
    progress: &mut Progress,
) -> Result<CompareReport> {
    compare_sides(
        &SideSpec::Live(source.clone()),
        &SideSpec::Live(target.clone()),
        options,
        progress,
    )
    .await
}

/// Compares `options.path` on two sides, each a live ensemble or a file.
pub async fn compare_sides(
    source: &SideSpec,
    target: &SideSpec,
    options: &CompareOptions,
    progress: &mut Progress,
) -> Result<CompareReport> {
    compare_sides_known(source, target, options, progress, None).await
}

/// [`compare_sides`] with the answer of [`crate::identity::one_ensemble`]
/// for these sides when the caller has it (`known`): the agent asks once
/// per pair, not at every round.
pub(crate) async fn compare_sides_known(
    source: &SideSpec,
    target: &SideSpec,
    options: &CompareOptions,
    progress: &mut Progress,
    known: Option<&Option<crate::identity::Evidence>>,
) -> Result<CompareReport> {
    crate::connect::validate_path(&options.path).map_err(|reason| Error::BadPath {
        path: options.path.clone(),
        reason,
    })?;
    let started = Instant::now();
    let one_ensemble = one_ensemble_known(source, target, &options.path, false, known).await?;
    let (s, t, acls_compared) = open_pair(source, target, options).await?;
    let options = match file_options(options, [&s, &t]) {
        Ok(o) => o,
        Err(e) => {
            futures::join!(s.close(), t.close());
            return Err(e);
        }
    };
    let readers = [&s, &t];

    let outcome = compare_with(readers, &options, progress, started).await;
    let (source_reads, target_reads) = (s.reads(), t.reads());
    let latency = crate::report::LatencyTotals::of;
    let latency = s
        .throttle()
        .zip(t.throttle())
        .map(|(a, b)| BTreeMap::from([("source", latency(a)), ("target", latency(b))]));
    let labels = EndpointLabels::of([&s, &t]);
    let mut notes = s.notes("source");
    notes.extend(t.notes("target"));
    futures::join!(s.close(), t.close());
    let mut report = outcome.map_err(|e| match e {
        // The path is under each side's chroot: name them, or the path
        // looks absent from servers that hold it at their root.
        Error::RootMissing { path } => {
            let chroot = |side: &SideSpec| match side {
                SideSpec::Live(e) => e.connect.chroot.clone(),
                SideSpec::File { .. } => None,
            };
            let under: Vec<String> = [("source", chroot(source)), ("target", chroot(target))]
                .into_iter()
                .filter_map(|(side, c)| c.map(|c| format!("the {side}'s chroot {c}")))
                .collect();
            if under.is_empty() {
                Error::RootMissing { path }
            } else {
                Error::RootMissing {
                    path: format!("{path} (under {})", under.join(" and ")),
                }
            }
        }
        e => e,
    })?;
    report.summary.reads = BTreeMap::from([("source", source_reads), ("target", target_reads)]);
    report.summary.latency = latency;
    labels.stamp(&mut report, [source, target]);
    report.notes = notes;
    report.settings.acls_compared = acls_compared;
    report.one_ensemble = one_ensemble;
    Ok(report)
}

/// Opens both sides for a comparison: ACLs read only if both hold them
/// (the third value), container and TTL kinds told only if both are a
/// ZooKeeper server's files, the options' ACL caches on live sides. Fails
/// as soon as either side fails, not after the other's timeout.
async fn open_pair(
    source: &SideSpec,
    target: &SideSpec,
    options: &CompareOptions,
) -> Result<(Source, Source, bool)> {
    let kinds = [Source::kind_of(source)?, Source::kind_of(target)?];
    let acls = kinds.iter().all(|k| Source::has_acls(*k));
    let reader = ReaderOptions {
        read_acls: acls,
        extended_kinds: kinds.iter().all(|k| *k == Some(FileKind::Zookeeper)),
        ..options.reader.clone()
    };
    let (s, t) = futures::try_join!(Source::open(source, &reader), Source::open(target, &reader))?;
    let with_cache = |src: Source, cache: &Option<Arc<AclCache>>| match src {
        Source::Live(r) => Source::Live(r.with_acl_cache(cache.clone())),
        other => other,
    };
    Ok((
        with_cache(s, &options.acl_caches[0]),
        with_cache(t, &options.acl_caches[1]),
        acls,
    ))
}

/// What a report says of each side beyond its name: the kind of file, and
/// the zxid a ZooKeeper data directory stands at. Taken before the sides
/// close.
struct EndpointLabels([(Option<FileKind>, Option<String>, ReadPlaced); 2]);

type ReadPlaced = Option<crate::placement::ReadServers>;

impl EndpointLabels {
    fn of(sides: [&Source; 2]) -> EndpointLabels {
        EndpointLabels(sides.map(|s| {
            let zxid = s.position().map(|p| format!("{:#x}", p.zxid));
            (s.file_kind(), zxid, s.read_servers())
        }))
    }

    fn stamp(&self, report: &mut CompareReport, specs: [&SideSpec; 2]) {
        for ((endpoint, spec), (kind, zxid, placed)) in [&mut report.source, &mut report.target]
            .into_iter()
            .zip(specs)
            .zip(&self.0)
        {
            endpoint.connect = spec.describe();
            endpoint.file = *kind;
            endpoint.zxid.clone_from(zxid);
            endpoint.read_placement.clone_from(placed);
        }
    }
}

/// The path as the server sees it: below the connect string's chroot.
fn server_path(spec: &EnsembleSpec, path: &str) -> String {
    match (&spec.connect.chroot, path) {
        (None, p) => p.to_string(),
        (Some(c), "/") => c.clone(),
        (Some(c), p) => format!("{c}{p}"),
    }
}

/// Refuses one live ensemble compared with itself at the same path; for
/// two paths of one ensemble, the evidence that it is one, for the report.
/// A command that `writes` also refuses paths that overlap (one inside the
/// other): deleting the target's extras would delete the source, or
/// copying would copy its own writes back without end.
pub(crate) async fn one_ensemble_at(
    source: &SideSpec,
    target: &SideSpec,
    path: &str,
    writes: bool,
) -> Result<Option<String>> {
    one_ensemble_known(source, target, path, writes, None).await
}

async fn one_ensemble_known(
    source: &SideSpec,
    target: &SideSpec,
    path: &str,
    writes: bool,
    known: Option<&Option<crate::identity::Evidence>>,
) -> Result<Option<String>> {
    let (SideSpec::Live(s), SideSpec::Live(t)) = (source, target) else {
        return Ok(None);
    };
    let evidence = match known {
        Some(answer) => answer.clone(),
        None => crate::identity::one_ensemble(s, t).await?,
    };
    let Some(evidence) = evidence else {
        return Ok(None);
    };
    let (a, b) = (server_path(s, path), server_path(t, path));
    if a == b {
        return Err(Error::SameEnsemble { path: a, evidence });
    }
    let nested = crate::tree::path::within(&a, &b) || crate::tree::path::within(&b, &a);
    if nested && writes {
        let (inner, outer) = if crate::tree::path::within(&a, &b) {
            (format!("the source {a}"), format!("the target {b}"))
        } else {
            (format!("the target {b}"), format!("the source {a}"))
        };
        return Err(Error::Refused {
            reason: format!(
                "source and target are one ensemble ({evidence}) and {inner} lies inside {outer}: writing one would change the other"
            ),
            fix: "give the other ensemble's connect string, or paths of this ensemble that do not overlap".into(),
        });
    }
    let shape = if nested {
        ", one inside the other: each walk also reads the other's nodes"
    } else {
        ""
    };
    Ok(Some(format!(
        "source {a} and target {b} are on one ensemble{shape}: {evidence}"
    )))
}

/// Compares each of `roots` on two live ensembles over one set of sessions
/// per side, `parallel` at a time: cheaper than a compare each when many
/// small subtrees changed. A root that exists on neither side gives `None`.
/// Reads are counted for all the roots together.
pub(crate) async fn compare_subtrees(
    source: &SideSpec,
    target: &SideSpec,
    options: &CompareOptions,
    roots: &[String],
    parallel: usize,
) -> Result<(Vec<Option<CompareReport>>, BTreeMap<&'static str, u64>)> {
    for root in roots {
        crate::connect::validate_path(root).map_err(|reason| Error::BadPath {
            path: root.clone(),
            reason,
        })?;
    }
    let (s, t, _) = open_pair(source, target, options).await?;
    let readers = [&s, &t];
    let mut outcomes = Vec::with_capacity(roots.len());
    for chunk in roots.chunks(parallel.max(1)) {
        let runs = chunk.iter().map(|root| {
            let mut options = options.clone();
            options.path = root.clone();
            async move {
                let mut quiet = Progress::new(false);
                match compare_with(readers, &options, &mut quiet, Instant::now()).await {
                    Ok(report) => Ok(Some(report)),
                    Err(Error::RootMissing { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        });
        outcomes.extend(futures::future::join_all(runs).await);
    }
    let reads = BTreeMap::from([("source", s.reads()), ("target", t.reads())]);
    let labels = EndpointLabels::of([&s, &t]);
    futures::join!(s.close(), t.close());
    let mut reports = outcomes.into_iter().collect::<Result<Vec<_>>>()?;
    for report in reports.iter_mut().flatten() {
        labels.stamp(report, [source, target]);
    }
    Ok((reports, reads))
}

/// What file sides add to the options: their own excludes, and a check that
/// the compared path lies within what a snapshot holds.
fn file_options(options: &CompareOptions, sides: [&Source; 2]) -> Result<CompareOptions> {
    let mut options = options.clone();
    if sides.iter().all(|s| s.file_kind().is_some()) && options.recheck_delay.is_some() {
        // Files do not change: there is nothing to wait for.
        options.recheck_delay = Some(Duration::ZERO);
    }
    options.walk = Source::walk_options(&options.walk, &options.path, &sides, "compare")?;
    Ok(options)
}

/// Counts by kind (every kind that is a difference present), the total of
/// differences, and the unreadable paths, which are not differences.
pub(crate) fn tally(
    counts: impl Iterator<Item = (DiffKind, u64)>,
) -> (BTreeMap<&'static str, u64>, u64, u64) {
    let mut by_kind: BTreeMap<&'static str, u64> = DiffKind::DIFFERENCES
        .iter()
        .map(|k| (k.as_str(), 0))
        .collect();
    let mut unreadable = 0;
    for (kind, n) in counts {
        if kind == DiffKind::Unreadable {
            unreadable += n;
        } else {
            *by_kind.entry(kind.as_str()).or_default() += n;
        }
    }
    let total = by_kind.values().sum();
    (by_kind, total, unreadable)
}

async fn compare_with(
    readers: [&Source; 2],
    options: &CompareOptions,
    progress: &mut Progress,
    started: Instant,
) -> Result<CompareReport> {
    let walked = walk_pair(
        readers,
        options,
        &options.path,
        &mut progress.lines(CompareVisitor::found),
    )
    .await?;
    if walked.root[0].is_none() && walked.root[1].is_none() {
        return Err(Error::RootMissing {
            path: options.path.clone(),
        });
    }

    let found = walked.differences.len();
    let (mut confirmed, transient, lagging) =
        confirm(readers, options, progress, walked.differences).await?;
    confirmed.sort_by(|a, b| a.path.cmp(&b.path).then(a.kind.cmp(&b.kind)));
    confirmed.dedup();

    let (by_kind, total, unreadable) = tally(
        confirmed
            .iter()
            .map(|d| (d.kind, 1))
            .chain(walked.overflow.iter().map(|(k, n)| (*k, *n))),
    );

    let listed = if options.limit == 0 {
        confirmed.len()
    } else {
        options.limit.min(confirmed.len())
    };
    let not_listed = (total + unreadable).saturating_sub(listed as u64);
    confirmed.truncate(listed);

    let mut rows = walked.rows;
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    let none_uncounted = walked.overflow.is_empty();
    match_redacted(&mut rows, &walked.unverified, &confirmed, none_uncounted);
    let mut unverified = walked.unverified;
    if options.limit > 0 {
        unverified.truncate(options.limit);
    }

    Ok(CompareReport {
        zkparity_version: env!("CARGO_PKG_VERSION"),
        digest_version: DIGEST_VERSION,
        source: endpoint(&options.path),
        target: endpoint(&options.path),
        settings: settings(options),
        summary: Summary {
            verdict: Verdict::of(total, unreadable),
            identical: Verdict::of(total, unreadable) == Verdict::Identical,
            source: SideTotals::from_summary(walked.root[0].as_ref()),
            target: SideTotals::from_summary(walked.root[1].as_ref()),
            differences: by_kind,
            confirmed: total,
            unreadable,
            acl_unverified: walked.unverified_total,
            transient,
            lagging,
            rechecked: options.recheck_delay.is_some() && found > 0,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            reads: BTreeMap::new(),
            latency: None,
        },
        subtrees: rows,
        differences: confirmed,
        differences_not_listed: not_listed,
        acl_unverified: unverified,
        one_ensemble: None,
        notes: Vec::new(),
    })
}

/// The walk's differences, re-checked after `recheck_delay` when one is
/// set and there are any: the confirmed, the transient and the lagging.
async fn confirm(
    readers: [&Source; 2],
    options: &CompareOptions,
    progress: &mut Progress,
    differences: Vec<Difference>,
) -> Result<(Vec<Difference>, u64, u64)> {
    let found = differences.len();
    match options.recheck_delay {
        Some(delay) if found > 0 => {
            progress.message(&format!(
                "{found} differences found; re-checking them in {:.1}s",
                delay.as_secs_f64()
            ));
            tokio::time::sleep(delay).await;
            // Followers may lag the leader: the re-read must see at least
            // what was committed by now, as the walk's reads did at its start.
            futures::try_join!(
                readers[0].sync(&options.path),
                readers[1].sync(&options.path)
            )?;
            recheck(readers, options, differences).await
        }
        _ => Ok((differences, 0, 0)),
    }
}

/// Redacted ids change a subtree's checksums without being a
/// difference: such a subtree matches when no difference lies in it.
/// `none_uncounted`: no difference went unrecorded past the walk's bound.
fn match_redacted(
    rows: &mut [SubtreeRow],
    unverified: &[UnverifiedAcl],
    confirmed: &[Difference],
    none_uncounted: bool,
) {
    for row in rows.iter_mut().filter(|r| !r.matches) {
        let hides = |p: &str| crate::tree::path::within(p, &row.path);
        if unverified.iter().any(|u| hides(&u.path))
            && !confirmed.iter().any(|d| hides(&d.path))
            && none_uncounted
            && row.source.is_some() == row.target.is_some()
        {
            row.matches = true;
        }
    }
}

/// A side as the compare itself knows it: its path; the caller fills in
/// the rest.
fn endpoint(path: &str) -> Endpoint {
    Endpoint {
        connect: String::new(),
        path: path.to_string(),
        file: None,
        zxid: None,
        read_placement: None,
    }
}

fn settings(options: &CompareOptions) -> Settings {
    Settings {
        ephemerals: options.walk.ephemerals,
        excludes: options.walk.excludes.patterns().to_vec(),
        subtree_depth: options.subtree_depth,
        recheck_delay_seconds: options.recheck_delay.map(|d| d.as_secs_f64()),
        limit: options.limit,
        acls_compared: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: NodeKind, data: &[u8], cversion: Option<i32>, children: &[&str]) -> NodeRead {
        let stat = cversion.map(|cversion| zookeeper_client::Stat {
            czxid: 1,
            mzxid: 1,
            pzxid: 1,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: data.len() as i32,
            num_children: children.len() as i32,
        });
        let children = children.iter().map(|c| c.to_string()).collect();
        NodeRead::new("n", kind, data.to_vec(), false, stat, None, children)
    }

    #[test]
    fn a_different_kind_hides_data_differences() {
        let a = node(NodeKind::Persistent, b"a", None, &[]);
        let b = node(NodeKind::Ephemeral, b"b", None, &[]);
        for policy in [EphemeralPolicy::Count, EphemeralPolicy::Compare] {
            assert_eq!(node_differences(&a, &b, policy), vec![DiffKind::NodeKind]);
        }
    }

    #[test]
    fn uncompared_ephemerals_have_no_differences_of_their_own() {
        let a = node(NodeKind::Ephemeral, b"a", None, &[]);
        let b = node(NodeKind::Ephemeral, b"b", None, &[]);
        assert!(node_differences(&a, &b, EphemeralPolicy::Count).is_empty());
        assert_eq!(
            node_differences(&a, &b, EphemeralPolicy::Compare),
            vec![DiffKind::Data]
        );
    }

    #[test]
    fn a_counter_is_behind_only_when_both_sides_have_a_stat_and_the_target_numbers_lower() {
        let seq = ["q-0000000004"];
        let ahead = node(NodeKind::Persistent, b"", Some(9), &seq);
        let behind = node(NodeKind::Persistent, b"", Some(1), &seq);
        assert_eq!(counter_behind(&ahead, &behind), Some((5, 1)));
        assert_eq!(counter_behind(&behind, &ahead), None);
        let no_stat = node(NodeKind::Persistent, b"", None, &seq);
        assert_eq!(counter_behind(&ahead, &no_stat), None);
        // The counter is judged by the children, in the walk: never here.
        assert!(node_differences(&ahead, &behind, EphemeralPolicy::Count).is_empty());
    }

    /// Walks a source parent with the given children over a target copy
    /// whose counter is behind, and returns the kinds found.
    async fn counter_kinds(children: &[(&str, NodeKind)]) -> Vec<DiffKind> {
        use crate::tree::ReadNodes;
        /// A parent at `/q` and its children: (path, kind, cversion, children).
        struct Two(Vec<(String, NodeKind, i32, Vec<String>)>);
        impl ReadNodes for Two {
            async fn read_nodes(&self, paths: &[&str], _: &[&str]) -> Result<Vec<SideNode>> {
                Ok(paths
                    .iter()
                    .map(|p| match self.0.iter().find(|(q, ..)| q == p) {
                        Some((_, kind, cversion, children)) => {
                            let children: Vec<&str> = children.iter().map(String::as_str).collect();
                            SideNode::Present(Box::new(node(
                                *kind,
                                b"",
                                Some(*cversion),
                                &children,
                            )))
                        }
                        None => SideNode::Absent,
                    })
                    .collect())
            }
        }
        let names: Vec<String> = children.iter().map(|(n, _)| n.to_string()).collect();
        let side = |cversion: i32| {
            let mut nodes = vec![(
                "/q".to_string(),
                NodeKind::Persistent,
                cversion,
                names.clone(),
            )];
            for (name, kind) in children {
                nodes.push((format!("/q/{name}"), *kind, 0, Vec::new()));
            }
            Two(nodes)
        };
        let (source, target) = (side(40), side(2));
        let mut visitor = CompareVisitor::new(EphemeralPolicy::Count, 0, false);
        let options = WalkOptions::new(
            EphemeralPolicy::Count,
            crate::exclude::Excludes::new(&[] as &[&str]).unwrap(),
        );
        tree::walk(
            [Some(&source), Some(&target)],
            "/q",
            &options,
            &mut visitor,
            &mut (),
        )
        .await
        .unwrap();
        let reasons: Vec<&String> = visitor.differences.iter().flat_map(|d| &d.reason).collect();
        if let Some(r) = reasons.first() {
            assert!(r.contains("persistent sequential children"), "{r}");
        }
        visitor.differences.iter().map(|d| d.kind).collect()
    }

    #[tokio::test]
    async fn a_counter_behind_is_at_risk_only_with_persistent_sequential_children_on_the_source() {
        use NodeKind::{Ephemeral, Persistent};
        // A queue: its items survive the migration.
        assert_eq!(
            counter_kinds(&[("qn-0000000007", Persistent)]).await,
            vec![DiffKind::SequenceCounter]
        );
        // Elections and locks start over with live sessions.
        assert!(counter_kinds(&[("_c_1f-lock-0000000003", Ephemeral)])
            .await
            .is_empty());
        assert!(
            counter_kinds(&[("n_0000000012", Ephemeral), ("leader", Persistent)])
                .await
                .is_empty()
        );
        // HBase start codes and ClickHouse block hashes merely end in digits.
        assert!(counter_kinds(&[("rs1,16020,1700000000000", Persistent)])
            .await
            .is_empty());
        assert!(counter_kinds(&[(
            "202301_4093947399023469120_12345678901234567890",
            Persistent
        )])
        .await
        .is_empty());
    }

    /// What a side shows of a node with `data`, `acl` (one entry,
    /// world:anyone with these permission bits) and a counter of `next`.
    fn shown(kind: NodeKind, data: &[u8], perms: u32, next: i32) -> NodeDetail {
        let acl = vec![AclEntry {
            scheme: "world".into(),
            id: "anyone".into(),
            perms,
        }];
        let stat = node(kind, data, Some(2 * next), &[]).stat;
        let n = NodeRead::new("n", kind, data.to_vec(), false, stat, Some(acl), Vec::new());
        NodeDetail::from_side(&SideNode::Present(Box::new(n)), false)
    }

    fn persistent(data: &[u8], perms: u32, next: i32) -> NodeDetail {
        shown(NodeKind::Persistent, data, perms, next)
    }

    /// A difference of `kind` as the re-check sees it, the target now `target`.
    fn still(kind: DiffKind, target: NodeDetail) -> Difference {
        Difference {
            path: "/n".into(),
            kind,
            subtree_nodes: None,
            reason: None,
            source: NodeDetail::default(),
            target,
        }
    }

    const POLICY: EphemeralPolicy = EphemeralPolicy::Count;

    /// Whether a difference of `kind`, the target now `target`, lags behind
    /// the source as it was at the walk.
    fn lags_now(kind: DiffKind, target: NodeDetail, earlier: &NodeDetail) -> bool {
        lags(&still(kind, target), earlier, None, POLICY)
    }

    #[test]
    fn a_counter_at_or_past_the_sources_earlier_value_lags_and_one_below_it_is_confirmed() {
        let earlier = persistent(b"", 31, 10);
        let at = still(DiffKind::SequenceCounter, persistent(b"", 31, 10));
        let past = still(DiffKind::SequenceCounter, persistent(b"", 31, 11));
        let below = still(DiffKind::SequenceCounter, persistent(b"", 31, 9));
        assert!(lags(&at, &earlier, None, POLICY));
        assert!(lags(&past, &earlier, None, POLICY));
        assert!(!lags(&below, &earlier, None, POLICY));
        // A side without stat says nothing of counters: no lag to be sure of.
        let mut no_stat = persistent(b"", 31, 12);
        no_stat.next_sequence = None;
        assert!(!lags_now(DiffKind::SequenceCounter, no_stat, &earlier));
    }

    #[test]
    fn data_equal_to_the_sources_earlier_value_lags_and_any_other_value_is_confirmed() {
        let earlier = persistent(b"v5", 31, 0);
        assert!(lags_now(DiffKind::Data, persistent(b"v5", 31, 0), &earlier));
        // A value the source never showed: drift, even if of the same length.
        assert!(!lags_now(
            DiffKind::Data,
            persistent(b"v9", 31, 0),
            &earlier
        ));
        // Nothing is known of a source that could not be read at the walk.
        let unreadable = NodeDetail::from_side(&SideNode::Unreadable("NoAuth".into()), false);
        assert!(!lags_now(
            DiffKind::Data,
            persistent(b"v5", 31, 0),
            &unreadable
        ));
    }

    #[test]
    fn an_acl_equal_to_the_sources_earlier_one_lags_and_any_other_is_confirmed() {
        let earlier = persistent(b"", 1, 0);
        assert!(lags_now(DiffKind::Acl, persistent(b"", 1, 0), &earlier));
        assert!(!lags_now(DiffKind::Acl, persistent(b"", 3, 0), &earlier));
    }

    #[test]
    fn a_node_kind_equal_to_the_sources_earlier_one_lags() {
        let earlier = persistent(b"", 31, 0);
        let ephemeral = shown(NodeKind::Ephemeral, b"", 31, 0);
        assert!(lags_now(
            DiffKind::NodeKind,
            persistent(b"", 31, 0),
            &earlier
        ));
        assert!(!lags_now(DiffKind::NodeKind, ephemeral, &earlier));
    }

    #[test]
    fn missing_on_the_target_lags_only_where_the_source_had_nothing_at_the_walk() {
        let missing = still(DiffKind::MissingInTarget, NodeDetail::default());
        assert!(lags(&missing, &NodeDetail::default(), None, POLICY));
        // An ephemeral left out of the comparison is as good as nothing.
        let ephemeral = shown(NodeKind::Ephemeral, b"", 31, 0);
        assert!(lags(&missing, &ephemeral, None, POLICY));
        assert!(!lags(&missing, &ephemeral, None, EphemeralPolicy::Compare));
        // The source had it then and has it now: the target never caught up.
        assert!(!lags(&missing, &persistent(b"x", 31, 0), None, POLICY));
    }

    #[test]
    fn extra_on_the_target_lags_only_as_the_node_the_source_has_since_deleted() {
        let earlier = persistent(b"x", 31, 0);
        let extra = |target| still(DiffKind::ExtraInTarget, target);
        assert!(lags_now(
            DiffKind::ExtraInTarget,
            persistent(b"x", 31, 0),
            &earlier
        ));
        // Not what the source held: drift, whatever the source did since.
        assert!(!lags_now(
            DiffKind::ExtraInTarget,
            persistent(b"y", 31, 0),
            &earlier
        ));
        assert!(!lags_now(
            DiffKind::ExtraInTarget,
            persistent(b"x", 1, 0),
            &earlier
        ));
        assert!(!lags_now(
            DiffKind::ExtraInTarget,
            shown(NodeKind::Ephemeral, b"x", 31, 0),
            &earlier
        ));
        // The source had nothing there: the target's node was never copied.
        assert!(!lags_now(
            DiffKind::ExtraInTarget,
            persistent(b"x", 31, 0),
            &NodeDetail::default()
        ));
        // A root missing at the walk that the target now holds while the
        // source deleted it: it stands for the source's subtree only whole.
        let copied = |nodes| Difference {
            subtree_nodes: Some(nodes),
            ..extra(persistent(b"x", 31, 0))
        };
        assert!(lags(&copied(3), &earlier, Some(3), POLICY));
        assert!(!lags(&copied(2), &earlier, Some(3), POLICY));
    }

    #[test]
    fn an_unreadable_node_never_lags() {
        let earlier = persistent(b"x", 31, 0);
        let unreadable = NodeDetail::from_side(&SideNode::Unreadable("NoAuth".into()), false);
        assert!(!lags_now(DiffKind::Unreadable, unreadable, &earlier));
    }

    #[test]
    fn one_sided_uncompared_ephemerals_are_the_same() {
        let eph = || SideNode::Present(Box::new(node(NodeKind::Ephemeral, b"", None, &[])));
        let sides = [eph(), SideNode::Absent];
        assert!(matches!(
            compare_path(&sides, EphemeralPolicy::Count),
            PathComparison::Same
        ));
        assert!(matches!(
            compare_path(&sides, EphemeralPolicy::Skip),
            PathComparison::Gone
        ));
        assert!(matches!(
            compare_path(&sides, EphemeralPolicy::Compare),
            PathComparison::Missing
        ));
    }
}
