//! The commands: one file each, holding its arguments, its help and its
//! `run`. Every `run` prints its own answer and returns the exit code that
//! answer maps to, or the error that kept it from answering.
//!
//! - [`args`]: argument groups shared by the commands that read ensembles;
//!   [`values`]: flag values clap parses into typed ones (durations).
//! - [`compare`], [`show`], [`check`], [`probe`], [`gmetric`], [`agent`],
//!   [`snapshot`], [`export`], [`repair`], [`sync`], [`demo`]: the commands.
//! - [`stdout`]: writing an answer; [`interrupt`]: SIGINT and SIGTERM while
//!   a file is being written.

pub mod agent;
pub mod args;
pub mod check;
pub mod compare;
pub mod demo;
pub mod export;
pub mod gmetric;
pub mod interrupt;
pub mod probe;
pub mod repair;
pub mod show;
pub mod snapshot;
pub mod stdout;
pub mod sync;
pub mod values;

use std::ffi::OsString;

use clap::{Parser, Subcommand};
use zkparity::error::Error;

#[derive(Parser)]
#[command(
    name = "zkparity",
    version,
    // As with most Unix tools, a flag given twice takes its last value.
    args_override_self = true,
    propagate_version = true,
    about = "Walks two live ZooKeeper ensembles and says exactly where they differ",
    after_help = "Each command's --help gives its exit codes (compare: 0 identical, 1 differences\n\
                  found, 2 usage or connection error, 3 incomplete: unreadable nodes;\n\
                  checks: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).\n\
                  Run 'zkparity demo' to see a comparison of two local sample ensembles."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Compare a subtree of a source and a target ensemble (never writes to either)
    #[command(after_help = compare::COMPARE_HELP)]
    Compare(Box<compare::CompareArgs>),
    /// Show one znode on both sides, side by side, and how its values differ
    #[command(after_help = show::SHOW_HELP)]
    Show(Box<show::ShowArgs>),
    /// Start two local ZooKeeper servers, load a sample migration with a few
    /// deliberate divergences, and compare them
    Demo(demo::DemoArgs),
    /// Run one compare and send its parity metrics, and every server's
    /// ZooKeeper metrics, to Ganglia (gmond's gmetric UDP channel), e.g.
    /// from cron
    #[command(after_help = gmetric::GMETRIC_HELP)]
    Gmetric(Box<gmetric::GmetricArgs>),
    /// Nagios/Icinga checks: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
    Check {
        #[command(subcommand)]
        check: check::CheckCommand,
    },
    /// Run continuously: compare the configured ensemble pairs every interval
    /// and report to state files, Nagios and logs
    #[command(after_help = agent::AGENT_HELP)]
    Agent(agent::AgentArgs),
    /// Write a lossless, checksummed snapshot file of a subtree, to compare
    /// against later or repair from
    #[command(after_help = snapshot::SNAPSHOT_HELP)]
    Snapshot(Box<snapshot::SnapshotArgs>),
    /// Write a subtree (live or from a snapshot) as zktreeutil XML
    #[command(after_help = export::EXPORT_HELP)]
    Export(Box<export::ExportArgs>),
    /// Ask every server of one or two ensembles for its health (four-letter
    /// words): modes, leader, sync, zxids, counts, and a verdict
    #[command(after_help = probe::PROBE_HELP)]
    Probe(probe::ProbeArgs),
    /// Make the target match the source (a live ensemble or a snapshot):
    /// prints the plan, and applies it with --apply
    #[command(after_help = repair::REPAIR_HELP)]
    Repair(Box<repair::RepairArgs>),
    /// Copy the source into the target, follow its changes until cutover
    /// (SIGTERM or --until-quiet), then prove the two identical
    #[command(after_help = sync::SYNC_HELP)]
    Sync(Box<sync::SyncArgs>),
}

impl Command {
    /// Runs the command to its answer.
    pub async fn run(self) -> Result<i32, Error> {
        match self {
            Command::Compare(a) => compare::run(*a).await,
            Command::Show(a) => show::run(*a).await,
            Command::Demo(a) => demo::run(a).await,
            Command::Gmetric(a) => gmetric::run(*a).await,
            Command::Check { check } => check::run(check).await,
            Command::Agent(a) => agent::run(a).await,
            Command::Probe(a) => probe::run(a).await,
            Command::Snapshot(a) => snapshot::run(*a).await,
            Command::Export(a) => export::run(*a).await,
            Command::Repair(a) => repair::run(*a).await,
            Command::Sync(a) => sync::run(*a).await,
        }
    }
}

/// Parses a command line. `check parity --state FILE` needs no ensembles:
/// `--source` and `--target`, required everywhere else, are relaxed for it
/// alone.
pub fn parse(argv: &[OsString]) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let command = Cli::command().mut_subcommand("check", |check| {
        check.mut_subcommand("parity", |parity| {
            parity
                .mut_arg("source", |a| {
                    a.required(false).required_unless_present("state")
                })
                .mut_arg("target", |a| {
                    a.required(false).required_unless_present("state")
                })
        })
    });
    let matches = command.try_get_matches_from(argv)?;
    Cli::from_arg_matches(&matches)
}
