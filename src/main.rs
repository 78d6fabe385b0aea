//! The `zkparity` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use zkparity::compare::{compare, CompareOptions};
use zkparity::connect::{ConnectString, Credentials, EnsembleSpec};
use zkparity::error::{Error, EXIT_ERROR};
use zkparity::exclude::{Excludes, DEFAULT_EXCLUDES};
use zkparity::progress::Progress;
use zkparity::report;
use zkparity::walker::{EphemeralPolicy, ReaderOptions, WalkOptions};

#[derive(Parser)]
#[command(
    name = "zkparity",
    version,
    // As with most Unix tools, a flag given twice takes its last value.
    args_override_self = true,
    about = "Walks two live ZooKeeper ensembles and says exactly where they differ",
    after_help = "Exit codes: 0 identical, 1 differences found, 2 usage or connection error.\n\
                  Run 'zkparity demo' to see a comparison of two local sample ensembles."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compare a subtree of a source and a target ensemble (never writes to either)
    #[command(after_help = COMPARE_HELP)]
    Compare(Box<CompareArgs>),
    /// Start two local ZooKeeper servers, load a sample migration with a few
    /// deliberate divergences, and compare them
    Demo(DemoArgs),
}

const COMPARE_HELP: &str = "\
Examples:
  zkparity compare --source zk-old-1:2181,zk-old-2:2181 --target zk-new-1:2181
  zkparity compare --source old:2181/kafka --target new:2181/kafka --format json
  zkparity compare --source old:2181 --target new:2181 --path /clickhouse \\
      --exclude '/clickhouse/task_queue/**' --ephemerals compare --limit 0

Credentials (digest user:password) are read from --source-auth-file /
--target-auth-file (mode 600) or from ZKPARITY_SOURCE_AUTH / ZKPARITY_TARGET_AUTH,
never from the command line.

Exit codes: 0 identical, 1 confirmed differences, 2 usage or connection error.";

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Args)]
struct CompareArgs {
    /// Source ensemble: host:port[,host:port...][/chroot]
    #[arg(long, value_name = "CONNECT")]
    source: String,
    /// Target ensemble: host:port[,host:port...][/chroot]
    #[arg(long, value_name = "CONNECT")]
    target: String,
    /// Subtree to compare, the same on both sides
    #[arg(long, default_value = "/")]
    path: String,
    /// Leave out paths matching this glob and everything under them
    /// (repeatable; '*' stays within a name, '**' crosses names)
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Do not exclude /zookeeper by default
    #[arg(long)]
    include_zookeeper: bool,
    /// Ephemeral nodes: skip them, count them (not compared), or compare them
    #[arg(long, value_enum, default_value = "count")]
    ephemerals: EphemeralPolicy,
    /// Depth of the per-subtree table below --path
    #[arg(long, default_value_t = 1, value_name = "N")]
    subtree_depth: u32,
    /// Wait before re-reading differences; only those that persist are
    /// confirmed ("0s" re-checks at once, "off" not at all)
    #[arg(long, default_value = "3s", value_name = "DURATION")]
    recheck_delay: String,
    /// Differences to list (0: all)
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: usize,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Show digest ACL ids in clear (they carry password hashes)
    #[arg(long)]
    show_acl_ids: bool,
    /// File holding the source's digest credentials (user:password, mode 600)
    #[arg(long, value_name = "FILE")]
    source_auth_file: Option<PathBuf>,
    /// File holding the target's digest credentials (user:password, mode 600)
    #[arg(long, value_name = "FILE")]
    target_auth_file: Option<PathBuf>,
    /// ZooKeeper session timeout
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    session_timeout: String,
    /// Give up connecting after this long
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    connect_timeout: String,
    /// Sessions per ensemble (ACL reads scale with sessions)
    #[arg(long, default_value_t = 4, value_name = "N")]
    sessions: usize,
    /// Cap on read operations per second per ensemble (0: no cap); a node
    /// costs three (data, children, ACL)
    #[arg(long, default_value_t = 0, value_name = "N")]
    max_reads_per_second: u32,
    /// Nodes per multi-read batch
    #[arg(long, default_value_t = 200, value_name = "N")]
    batch_size: usize,
    /// Batches in flight per ensemble
    #[arg(long, default_value_t = 8, value_name = "N")]
    in_flight: usize,
    /// Use pipelined single reads instead of multi-reads (servers before 3.6)
    #[arg(long)]
    no_multi_read: bool,
    /// No progress on stderr
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct DemoArgs {
    /// Output format of the comparison
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

fn duration(flag: &str, value: &str) -> Result<Duration, Error> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| {
            Error::Usage(format!(
                "{flag} {value:?}: not a duration (use e.g. 500ms, 3s, 1m)"
            ))
        });
    }
    humantime::parse_duration(v)
        .map_err(|e| Error::Usage(format!("{flag} {value:?}: {e} (use e.g. 500ms, 3s, 1m)")))
}

fn ensemble(
    side: &str,
    connect: &str,
    auth_file: Option<&PathBuf>,
    a: &CompareArgs,
) -> Result<EnsembleSpec, Error> {
    let env_var = format!("ZKPARITY_{}_AUTH", side.to_uppercase());
    Ok(EnsembleSpec {
        side: side.to_string(),
        connect: ConnectString::parse(connect)?,
        credentials: Credentials::load(auth_file, &env_var)?,
        session_timeout: duration("--session-timeout", &a.session_timeout)?,
        connect_timeout: duration("--connect-timeout", &a.connect_timeout)?,
    })
}

fn compare_options(a: &CompareArgs) -> Result<CompareOptions, Error> {
    let mut patterns: Vec<String> = Vec::new();
    if !a.include_zookeeper {
        patterns.extend(DEFAULT_EXCLUDES.iter().map(|s| s.to_string()));
    }
    patterns.extend(a.exclude.iter().cloned());
    let mut walk = WalkOptions::new(a.ephemerals, Excludes::new(&patterns)?);
    if a.batch_size == 0 || a.in_flight == 0 || a.sessions == 0 {
        return Err(Error::Usage(
            "--batch-size, --in-flight and --sessions must be at least 1".into(),
        ));
    }
    walk.batch_nodes = a.batch_size;
    walk.in_flight = a.in_flight;
    let recheck_delay = match a.recheck_delay.trim() {
        "off" | "none" | "no" => None,
        v => Some(duration("--recheck-delay", v)?),
    };
    Ok(CompareOptions {
        path: a.path.clone(),
        walk,
        reader: ReaderOptions {
            sessions: a.sessions,
            max_reads_per_second: a.max_reads_per_second,
            multi_read: !a.no_multi_read,
            ..ReaderOptions::default()
        },
        subtree_depth: a.subtree_depth,
        recheck_delay,
        limit: a.limit,
        show_acl_ids: a.show_acl_ids,
    })
}

fn render(report: &report::CompareReport, format: Format) -> String {
    match format {
        Format::Text => report::text::render(report),
        Format::Json => report::json::render(report) + "\n",
    }
}

/// Writes the report. A reader that went away (`| head`) is not an error: the
/// verdict is still the exit code.
fn emit(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            context: "writing the report to stdout".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

async fn run_compare(a: CompareArgs) -> Result<i32, Error> {
    let options = compare_options(&a)?;
    let source = ensemble("source", &a.source, a.source_auth_file.as_ref(), &a)?;
    let target = ensemble("target", &a.target, a.target_auth_file.as_ref(), &a)?;
    let mut progress = Progress::auto(a.quiet);
    let report = compare(&source, &target, &options, &mut progress).await?;
    emit(&render(&report, a.format))?;
    Ok(report.exit_code())
}

async fn run_demo(a: DemoArgs) -> Result<i32, Error> {
    let mut progress = Progress::auto(false);
    let report = zkparity::demo::run(&mut progress).await?;
    emit(&render(&report, a.format))?;
    Ok(report.exit_code())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zkparity: error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR as u8);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Compare(a) => run_compare(*a).await,
            Command::Demo(a) => run_demo(a).await,
        }
    });
    match outcome {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("zkparity: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
