//! `zkparity repair`: plan, and with --apply make, the writes that make the
//! target match the source.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use zkparity::error::Error;
use zkparity::progress::Progress;
use zkparity::repair::RepairOptions;

use super::args::{after_writes, written_target, CopyArgs, SafetyArgs, WriteArgs};
use super::stdout::emit;

pub const REPAIR_HELP: &str = "\
Examples:
  zkparity repair --source old:2181 --target new:2181 --path /kafka
  zkparity repair --source old:2181 --target new:2181 --apply --resume kafka.plan
  zkparity repair --source before.zkps --target new:2181 --apply --delete-extra
  zkparity repair --source old:2181 --target new:2181 --apply --delete-extra --max-delete 5000

Without --apply nothing is written: the plan is printed, with counts per
action. With --apply: creates (with the source's data and ACL), set_data and
set_acl (only if the target node is still at the version seen when planning;
otherwise a conflict is reported), sequence counter top-ups (creating and
deleting a sequential child), and deletes of nodes on the target only with
--delete-extra. Ephemeral nodes are never created, changed or deleted. Then a
compare proves the target matches.

Refused before any write (exit 2, both sides unchanged): a source root that
does not exist; a target root that does not exist (unless --create-path);
paths of one ensemble that overlap; a plan deleting more than --max-delete
nodes (default: 1000 or 10 % of the target subtree, whichever is fewer); a
target subtree holding ephemerals of live sessions (unless --target-in-use);
another writer on an overlapping subtree of the target. Before the first
write, a snapshot of the target subtree is kept in --backup-dir (unless
--no-backup): 'zkparity repair --source BACKUP --target T --path P --apply
--delete-extra' restores it. --resume FILE keeps the plan and progress,
so an interrupted --apply continues where it stopped when run again. The
source is only read. Target credentials come from --target-auth-file or
ZKPARITY_TARGET_AUTH.

Exit codes: 0 nothing to do (dry run) or applied and verified identical,
1 a dry run found work (or differences it cannot repair) or the target still
differs after applying, 2 usage, connection or file error, 130 interrupted
(Ctrl-C) and 143 stopped by SIGTERM: what was applied stays; run the same
command again to continue.";

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Args, Clone, Debug)]
// Only the source may be a file: repair writes to a live target.
#[command(mut_arg("target", written_target))]
pub struct RepairArgs {
    #[command(flatten)]
    copy: CopyArgs,
    /// Also delete nodes that are on the target only (never ephemerals)
    #[arg(long)]
    delete_extra: bool,
    /// Create the target's chroot or --path when it does not exist (without
    /// it, a repair to a path that is not there is refused: a mistyped
    /// chroot would otherwise receive the whole tree)
    #[arg(long)]
    create_path: bool,
    /// Keep the plan and the progress of --apply in FILE, so that an
    /// interrupted repair continues where it stopped when run again (the
    /// file holds node data: it is created mode 600)
    #[arg(long, value_name = "FILE", requires = "apply")]
    resume: Option<PathBuf>,
    #[command(flatten)]
    writes: WriteArgs,
    #[command(flatten)]
    safety: SafetyArgs,
    /// Actions, skipped nodes, problems and remaining differences to list
    /// (0: all)
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: usize,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
    /// Show digest ACL ids in clear (they carry password hashes)
    #[arg(long)]
    show_acl_ids: bool,
    /// No progress on stderr
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(a: RepairArgs) -> Result<i32, Error> {
    let CopyArgs {
        ensembles, walk, ..
    } = &a.copy;
    let options = walk.compare_options(ensembles)?;
    let sides = ensembles.sides()?;
    let mut first_write = a.safety.first_write("repair", &sides.1);
    first_write.announce = !a.quiet;
    let repair = RepairOptions {
        apply: a.copy.apply,
        delete_extra: a.delete_extra,
        delete_also: Default::default(),
        create_path: a.create_path,
        resume: a.resume.clone(),
        max_writes_per_second: a.writes.max_writes_per_second,
        write_batch_size: a.writes.write_batch_size,
        writes_in_flight: a.writes.writes_in_flight,
        limit: a.limit,
        show_acl_ids: a.show_acl_ids,
        verify: true,
        first_write: Some(first_write.clone()),
    };
    // Checked before the sides are opened, as the flags' own mistakes.
    repair.validate(&options.path)?;
    let mut progress = Progress::auto(a.quiet);
    let after = match (&a.resume, a.copy.apply) {
        (_, false) => "nothing written (a dry run)".to_string(),
        (Some(file), true) => after_writes(
            &first_write,
            &format!(
                "the writes applied so far stay; run the same command again (with --resume {}) \
                 to continue where it stopped",
                file.display()
            ),
        ),
        (None, true) => after_writes(
            &first_write,
            "the writes applied so far stay, and each is safe to repeat; run the same command \
             again to plan and apply the rest",
        ),
    };
    let work = zkparity::repair::run(sides, options, &repair, &mut progress);
    let report = super::interrupt::until_stopped(work, &after).await?;
    emit(&match a.format {
        ReportFormat::Text => report.text(),
        ReportFormat::Json => report.json(),
    })?;
    Ok(report.exit_code())
}
