//! `zkparity repair`: makes the target match the source.
//!
//! - [`plan`]: one walk over both sides works out the actions (create, set
//!   data, set ACL, top up a sequence counter, delete) and what must be left
//!   alone, and why.
//! - [`resume`]: the plan file, and with `--resume` the durable record of
//!   how far applying got.
//! - [`apply`]: applies a plan to the target in batched multi-writes, with
//!   retries, version checks and idempotent actions.
//! - [`report`]: the result, as text or JSON.
//! - [`guard`]: what a plan is refused for before its first write (too many
//!   deletes, a target in use); [`backup`]: the snapshot of the target kept
//!   before it; [`lock`]: one writer per target subtree.
//!
//! By default nothing is written: the plan is printed as a dry run. With
//! `--apply` it is applied, then a compare of the two sides proves (or not)
//! that the target now matches. The source is only ever read: it may be a
//! live ensemble or a snapshot file.

mod apply;
pub mod backup;
pub mod guard;
pub mod lock;
pub mod plan;
pub mod report;
pub mod resume;

use std::path::PathBuf;
use std::time::Instant;

use crate::compare::{compare_sides, CompareOptions};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::source::{SideSpec, Source};
use crate::tree::{self, EphemeralPolicy, ReaderOptions, WalkOptions};

use apply::{Applier, ApplyOptions};
use plan::{CountOnly, PlanOptions, PlanSink, PlanSummary, Planner};
use report::{ApplyReport, RepairReport, ResumeInfo, Verification};
use resume::{Identity, Opened, PlanFile, PlanWriter};

/// What a repair does, besides which sides and subtree.
#[derive(Clone, Debug)]
pub struct RepairOptions {
    /// Apply the plan to the target; without it nothing is written.
    pub apply: bool,
    /// Also delete nodes that are on the target only (never ephemerals).
    pub delete_extra: bool,
    /// Target-only nodes deleted even without `delete_extra`: what the
    /// source deleted while sync followed it.
    pub delete_also: std::sync::Arc<std::collections::BTreeSet<String>>,
    /// Create the target's chroot or path when it does not exist; without
    /// it such a repair is refused.
    pub create_path: bool,
    /// Keep the plan and the progress of applying it here, to resume.
    pub resume: Option<PathBuf>,
    /// Cap on write operations per second sent to the target (0: no cap).
    pub max_writes_per_second: u32,
    /// Actions per multi-write.
    pub write_batch_size: usize,
    /// Multi-writes in flight.
    pub writes_in_flight: usize,
    /// Actions, skipped nodes, problems and remaining differences to list
    /// (0: all).
    pub limit: usize,
    pub show_acl_ids: bool,
    /// Compare the sides after applying. `sync` skips it while following
    /// (a change every second would double its reads) and verifies on its
    /// own schedule instead.
    pub verify: bool,
    /// The refusals, writer lock and backup of a command's first write;
    /// `None` for sync's passes while following, which its initial copy
    /// covered.
    pub first_write: Option<FirstWrite>,
}

/// What comes before a command's first write to the target.
#[derive(Clone, Debug)]
pub struct FirstWrite {
    /// `repair` or `sync`, in the lock and messages.
    pub command: &'static str,
    pub limits: guard::Limits,
    /// The backup file to write before the first write; `None` for
    /// `--no-backup`.
    pub backup: Option<PathBuf>,
    /// Take the writer lock for the apply (sync holds its own for its
    /// whole run).
    pub lock: bool,
    /// Say on stderr what is about to change, before the first write.
    pub announce: bool,
}

impl RepairOptions {
    /// Refuses a bad `path` or write settings, before any side is opened.
    pub fn validate(&self, path: &str) -> Result<()> {
        crate::connect::validate_path(path).map_err(|reason| Error::BadPath {
            path: path.to_string(),
            reason,
        })?;
        use crate::tree::bounds::{check, MAX_IN_FLIGHT, MAX_WRITE_BATCH_SIZE};
        check(
            "--write-batch-size",
            self.write_batch_size,
            MAX_WRITE_BATCH_SIZE,
        )
        .and(check(
            "--writes-in-flight",
            self.writes_in_flight,
            MAX_IN_FLIGHT,
        ))
        .map_err(Error::Usage)?;
        Ok(())
    }
}

/// Walk options for planning: the source file's own excludes added, and
/// every ephemeral seen (so that none is ever touched) but none compared.
fn plan_walk(options: &CompareOptions, source: &Source) -> Result<WalkOptions> {
    let mut walk = Source::walk_options(&options.walk, &options.path, &[source], "repair")?;
    walk.ephemerals = EphemeralPolicy::Count;
    Ok(walk)
}

struct Sides<'a> {
    source: &'a SideSpec,
    target: &'a SideSpec,
}

async fn make_plan(
    sides: &Sides<'_>,
    options: &CompareOptions,
    args: &RepairOptions,
    acls: bool,
    sink: &mut dyn PlanSink,
    progress: &mut Progress,
) -> Result<PlanSummary> {
    let reader = |keep_data| ReaderOptions {
        keep_data,
        read_acls: acls,
        ..options.reader.clone()
    };
    let (with_data, without) = (reader(true), reader(false));
    let (s, t) = futures::try_join!(
        Source::open(sides.source, &with_data),
        Source::open(sides.target, &without)
    )?;
    let planned = async {
        let walk = plan_walk(options, &s)?;
        let mut planner = Planner::new(
            PlanOptions {
                delete_extra: args.delete_extra,
                delete_also: args.delete_also.clone(),
                acls,
                excludes: walk.excludes.clone(),
                limit: args.limit,
                show_acl_ids: args.show_acl_ids,
            },
            sink,
        );
        let root = tree::walk(
            [Some(&s), Some(&t)],
            &options.path,
            &walk,
            &mut planner,
            &mut progress.lines(Planner::found),
        )
        .await?;
        if root[0].is_none() && root[1].is_none() {
            return Err(Error::RootMissing {
                path: options.path.clone(),
            });
        }
        if root[0].is_none() && args.first_write.is_some() {
            return Err(source_root_missing(sides.source, &options.path));
        }
        planner.finish()
    }
    .await;
    futures::join!(s.close(), t.close());
    planned
}

/// The source has no subtree at `path`: everything on the target would be
/// "extra", so this is a typo far more often than a wish.
fn source_root_missing(source: &SideSpec, path: &str) -> Error {
    Error::Refused {
        reason: format!(
            "{path} does not exist on the source {} (so every node of the target's {path} would look extra)",
            source.describe()
        ),
        fix: "is the source's chroot or --path mistyped?".into(),
    }
}

/// Runs a repair: plans (or picks up a resumed plan), applies with
/// `--apply`, and verifies by comparing.
pub async fn run(
    (source, target): (SideSpec, SideSpec),
    mut options: CompareOptions,
    args: &RepairOptions,
    progress: &mut Progress,
) -> Result<RepairReport> {
    options.limit = args.limit;
    options.show_acl_ids = args.show_acl_ids;
    args.validate(&options.path)?;
    let Some(target_spec) = target.live().cloned() else {
        return Err(Error::Usage(
            "repair writes to the target: --target must be a live ensemble, not a file".into(),
        ));
    };
    let sides = Sides {
        source: &source,
        target: &target,
    };
    // A side without ACLs (zktreeutil XML) can neither be compared on ACLs
    // nor copy them.
    let acls = Source::has_acls(Source::kind_of(&source)?);
    let mut report = RepairReport::new(args, &source, &target, &options.path, acls);
    if let Some(one) =
        crate::compare::one_ensemble_at(&source, &target, &options.path, true).await?
    {
        report.notes.push(one);
    }
    if let Some(missing) = missing_target_path(&target_spec, &options.path).await? {
        if !args.create_path {
            return Err(Error::Usage(format!(
                "{missing} does not exist on the target {}: is the connect string or --path mistyped? Give --create-path to create it",
                target_spec.connect
            )));
        }
        report.notes.push(format!(
            "{missing} does not exist on the target: created (--create-path)"
        ));
    }

    if !args.apply {
        let summary = make_plan(&sides, &options, args, acls, &mut CountOnly, progress).await?;
        if let Some(first) = &args.first_write {
            for r in guard::check(&summary, &first.limits) {
                report.notes.push(format!(
                    "--apply would refuse this: {}; {}",
                    r.reason, r.fix
                ));
            }
        }
        report.set_plan(summary);
        return Ok(report);
    }
    let lock = match &args.first_write {
        Some(first) if first.lock => {
            Some(lock::take(&target_spec, &options.path, first.command).await?)
        }
        _ => None,
    };
    let result = apply_run(&sides, &target_spec, &options, args, acls, report, progress).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    result
}

/// The `--apply` part of [`run`], under the writer lock.
async fn apply_run(
    sides: &Sides<'_>,
    target_spec: &crate::connect::EnsembleSpec,
    options: &CompareOptions,
    args: &RepairOptions,
    acls: bool,
    mut report: RepairReport,
    progress: &mut Progress,
) -> Result<RepairReport> {
    let identity = Identity {
        source: sides.source.describe(),
        target: sides.target.describe(),
        path: options.path.clone(),
        excludes: options.walk.excludes.patterns().to_vec(),
        delete_extra: args.delete_extra,
    };

    let resumed = match &args.resume {
        Some(path) => match resume::open(path, &identity)? {
            Opened::Resume(plan) => Some(*plan),
            Opened::Fresh(note) => {
                report.notes.extend(note);
                None
            }
        },
        None => None,
    };
    let plan = match resumed {
        Some(plan) => {
            report.resumed = Some(ResumeInfo {
                file: plan.shown().display().to_string(),
                from_action: plan.progress.done,
                of: plan.total,
            });
            plan
        }
        None => {
            let mut writer = match &args.resume {
                Some(path) => PlanWriter::create(path, &identity)?,
                None => PlanWriter::temporary(&identity)?,
            };
            let summary = make_plan(sides, options, args, acls, &mut writer, progress).await?;
            writer.finish(&summary)?
        }
    };
    report.set_plan(plan.summary.clone());
    if let Some(first) = &args.first_write {
        if let Some(r) = guard::check(&plan.summary, &first.limits)
            .into_iter()
            .next()
        {
            return Err(Error::Refused {
                reason: r.reason,
                fix: r.fix,
            });
        }
        if let Some(file) = &first.backup {
            if plan.summary.total_actions > 0 {
                match backup::take(sides.target, options, file, progress).await? {
                    Some(taken) => report.backup = Some(taken.file),
                    None => report.notes.push(format!(
                        "no backup: {} does not exist on the target yet",
                        options.path
                    )),
                }
            }
        }
        if first.announce && plan.summary.total_actions > plan.progress.done {
            eprintln!("{}", announcement(first.command, &report, &plan.summary));
        }
    }

    let started = Instant::now();
    let (mut applied, outcome) = apply_plan(&plan, target_spec, args).await;
    applied.elapsed_seconds = started.elapsed().as_secs_f64();
    if applied.elapsed_seconds > 0.0 {
        applied.actions_per_second = applied.settled_this_run as f64 / applied.elapsed_seconds;
    }
    report.apply = Some(applied);
    if let Err(e) = outcome {
        if let Some(path) = &args.resume {
            eprintln!(
                "zkparity repair: progress is kept in {}: run the same command again to continue",
                path.display()
            );
        }
        return Err(e);
    }

    if args.verify {
        let compared = compare_sides(sides.source, sides.target, options, progress).await?;
        report.verification = Some(Verification::from_report(&compared, args.limit));
    }
    Ok(report)
}

/// What is about to change, said once before the first write.
fn announcement(command: &str, report: &RepairReport, plan: &PlanSummary) -> String {
    let counts: Vec<String> = plan
        .actions
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(kind, n)| format!("{n} {}", kind.as_str()))
        .collect();
    let backup = match &report.backup {
        Some(file) => format!("; the target as it is now is kept in {file}"),
        None => String::new(),
    };
    format!(
        "zkparity {command}: writing to {} under {}: {}{backup}",
        report.target,
        report.path,
        counts.join(", ")
    )
}

/// What of the target's chroot and `path` is missing, said for a person:
/// `None` when the path exists.
async fn missing_target_path(
    target: &crate::connect::EnsembleSpec,
    path: &str,
) -> Result<Option<String>> {
    let client = target.connect().await?;
    let read = |p: String| {
        let client = client.clone();
        async move {
            client.check_stat(&p).await.map_err(|e| Error::Read {
                side: target.side.clone(),
                ensemble: target.connect.to_string(),
                path: p.clone(),
                reason: e.to_string(),
            })
        }
    };
    if read(path.to_string()).await?.is_some() {
        return Ok(None);
    }
    let said = match &target.connect.chroot {
        Some(chroot) if read("/".to_string()).await?.is_none() => {
            format!("the chroot {chroot}")
        }
        Some(chroot) => format!("--path {path} (below the chroot {chroot})"),
        None => format!("--path {path}"),
    };
    Ok(Some(said))
}

/// Applies what is left of `plan`; what was done comes back even when
/// applying stopped on an error.
async fn apply_plan(
    plan: &PlanFile,
    target: &crate::connect::EnsembleSpec,
    args: &RepairOptions,
) -> (ApplyReport, Result<()>) {
    let mut report = ApplyReport::default();
    let mut journal = match plan.journal() {
        Ok(j) => j,
        Err(e) => return (report, Err(e)),
    };
    let mut actions = match plan.actions(plan.progress.done) {
        Ok(a) => a,
        Err(e) => return (report, Err(e)),
    };
    let options = ApplyOptions {
        batch_ops: args.write_batch_size,
        in_flight: args.writes_in_flight,
        max_writes_per_second: args.max_writes_per_second,
        limit: args.limit,
        ..ApplyOptions::default()
    };
    let mut applier = match Applier::new(target, options, &mut journal, plan.progress.counts).await
    {
        Ok(a) => a,
        Err(e) => return (report, Err(e)),
    };
    let result = applier.run(&mut actions, plan.progress.done).await;
    report.counts = applier.counts;
    report.problems = std::mem::take(&mut applier.problems);
    report.problems_not_listed = applier.problems_not_listed;
    report.settled_this_run = applier.settled;
    applier.close().await;
    (report, result)
}
