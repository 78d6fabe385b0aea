//! Re-checking the subtrees where something changed, rather than walking
//! the whole pair: for early re-checks between rounds and for rounds whose
//! watches name what changed; and the report of a round that did not walk,
//! derived from the latest walk.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};

use crate::aclcache::AclCache;
use crate::compare::{compare_sides_known, compare_subtrees};
use crate::error::Error;
use crate::identity::Evidence;
use crate::progress::Progress;
use crate::report::{CompareReport, DiffKind, Verdict};
use crate::tree::path::within;

use super::config::PairConfig;
use super::confirm::{seen_in, Seen, Tracker, COUNTED_PATH};
use super::watch::{coarsen, covering};

/// Subtrees one re-check compares at most (over one session a side): more
/// changed places than this are re-checked as fewer, larger subtrees, so a
/// re-check's cost stays bounded.
const MAX_RECHECK_SUBTREES: usize = 16;

/// Subtrees compared at once during a re-check.
const RECHECK_PARALLEL: usize = 4;

/// The outcome of re-checking some subtrees.
pub(super) struct Rechecked {
    pub(super) scopes: Vec<String>,
    /// Changed paths behind those subtrees.
    pub(super) paths: usize,
    pub(super) seen: Vec<Seen>,
    pub(super) reads: BTreeMap<&'static str, u64>,
    pub(super) transient: u64,
    pub(super) lagging: u64,
    /// A subtree had more differences than a comparison lists: only a full
    /// walk can track them.
    pub(super) counted_only: bool,
}

/// The subtrees to re-check for `paths`: each path, or the tracked missing,
/// extra or unreadable subtree it lies in (a walk reports those once, at
/// their root), the fewest that cover them all, and not too many.
pub(super) fn scopes_for(paths: &[String], tracker: &Tracker, root: &str) -> Vec<String> {
    let roots = tracker.subtree_roots();
    let rebased: Vec<String> = paths
        .iter()
        .map(|p| {
            roots
                .iter()
                .filter(|r| within(p, r) && within(r, root))
                .min_by_key(|r| r.len())
                .unwrap_or(p)
                .clone()
        })
        .collect();
    coarsen(covering(&rebased), root, MAX_RECHECK_SUBTREES)
}

/// Compares one subtree; `None` when it exists on neither side (nothing can
/// differ there), unless it is the pair's own path, which must exist.
async fn compare_scope(
    cfg: &PairConfig,
    caches: &[Arc<AclCache>; 2],
    scope: &str,
    known: Option<&Option<Evidence>>,
) -> Result<Option<CompareReport>, Error> {
    let mut options = cfg.options.clone();
    options.acl_caches = [Some(caches[0].clone()), Some(caches[1].clone())];
    let whole = scope == cfg.options.path;
    if !whole {
        options.path = scope.to_string();
        options.reader.sessions = 1;
    }
    let mut quiet = Progress::new(false);
    match compare_sides_known(&cfg.source, &cfg.target, &options, &mut quiet, known).await {
        Ok(r) => Ok(Some(r)),
        Err(Error::RootMissing { .. }) if !whole => Ok(None),
        Err(e) => Err(e),
    }
}

/// Re-checks `scopes`: the pair's whole path as a compare of its own, any
/// number of smaller subtrees a few at a time over one session a side.
/// (Boxed: the compiler cannot prove the borrowing futures `Send` for every
/// lifetime otherwise.)
pub(super) fn recheck_scopes<'a>(
    cfg: &'a PairConfig,
    caches: &'a [Arc<AclCache>; 2],
    scopes: Vec<String>,
    paths: usize,
    known: Option<&'a Option<Evidence>>,
) -> BoxFuture<'a, Result<(Rechecked, Option<CompareReport>), Error>> {
    async move {
        if scopes.contains(&cfg.options.path) {
            let results: Vec<Result<Option<CompareReport>, Error>> = stream::iter(scopes.clone())
                .map(|scope| async move { compare_scope(cfg, caches, &scope, known).await })
                .buffered(RECHECK_PARALLEL)
                .collect()
                .await;
            return fold_rechecks(cfg, scopes, results, paths, None);
        }
        let mut options = cfg.options.clone();
        options.acl_caches = [Some(caches[0].clone()), Some(caches[1].clone())];
        // Changed subtrees are usually small: one session a side serves them
        // all.
        options.reader.sessions = 1;
        let (reports, reads) = compare_subtrees(
            &cfg.source,
            &cfg.target,
            &options,
            &scopes,
            RECHECK_PARALLEL,
        )
        .await?;
        let results = reports.into_iter().map(Ok).collect();
        fold_rechecks(cfg, scopes, results, paths, Some(reads))
    }
    .boxed()
}

/// `reads`: the reads of all `results` together, where they shared sessions;
/// otherwise each report's own are added up.
fn fold_rechecks(
    cfg: &PairConfig,
    scopes: Vec<String>,
    results: Vec<Result<Option<CompareReport>, Error>>,
    paths: usize,
    reads: Option<BTreeMap<&'static str, u64>>,
) -> Result<(Rechecked, Option<CompareReport>), Error> {
    let mut out = Rechecked {
        scopes: Vec::new(),
        paths,
        seen: Vec::new(),
        reads: BTreeMap::new(),
        transient: 0,
        lagging: 0,
        counted_only: false,
    };
    let mut whole = None;
    for (scope, result) in scopes.into_iter().zip(results) {
        if let Some(report) = result? {
            for s in seen_in(&report) {
                if s.path == COUNTED_PATH {
                    out.counted_only = true;
                } else {
                    out.seen.push(s);
                }
            }
            if reads.is_none() {
                for (side, n) in &report.summary.reads {
                    *out.reads.entry(side).or_default() += n;
                }
            }
            out.transient += report.summary.transient;
            out.lagging += report.summary.lagging;
            if scope == cfg.options.path {
                whole = Some(report);
            }
        }
        out.scopes.push(scope);
    }
    if let Some(reads) = reads {
        out.reads = reads;
    }
    Ok((out, whole))
}

/// A walk's report without its difference list, kept between walks.
pub(super) fn kept(report: &CompareReport) -> CompareReport {
    CompareReport {
        zkparity_version: report.zkparity_version,
        digest_version: report.digest_version,
        source: report.source.clone(),
        target: report.target.clone(),
        settings: report.settings.clone(),
        summary: report.summary.clone(),
        subtrees: report.subtrees.clone(),
        differences: Vec::new(),
        differences_not_listed: report.differences_not_listed,
        acl_unverified: Vec::new(),
        one_ensemble: report.one_ensemble.clone(),
        notes: report.notes.clone(),
    }
}

/// The report of a round that did not walk: node counts and subtrees from
/// the latest walk, differences as now known, this round's reads and time.
pub(super) fn derived_report(
    last: &CompareReport,
    seen: &[Seen],
    elapsed: f64,
    read: Option<&Rechecked>,
) -> CompareReport {
    let mut r = last.clone();
    let (by_kind, total, unreadable) = crate::compare::tally(seen.iter().filter_map(|s| {
        DiffKind::ALL
            .iter()
            .find(|k| k.as_str() == s.kind)
            .map(|k| (*k, s.count.unwrap_or(1)))
    }));
    let verdict = Verdict::of(total, unreadable);
    r.summary.differences = by_kind;
    r.summary.confirmed = total;
    r.summary.unreadable = unreadable;
    r.summary.verdict = verdict;
    r.summary.identical = verdict == Verdict::Identical;
    r.summary.elapsed_seconds = elapsed;
    r.summary.transient = read.map(|x| x.transient).unwrap_or(0);
    r.summary.lagging = read.map(|x| x.lagging).unwrap_or(0);
    r.summary.rechecked = read.is_some_and(|x| !x.seen.is_empty());
    r.summary.reads = read
        .map(|x| x.reads.clone())
        .unwrap_or_else(|| BTreeMap::from([("source", 0), ("target", 0)]));
    r.differences_not_listed = 0;
    r
}
