//! The `zkparity` command line.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use zkparity::args::{EnsembleArgs, WalkArgs};
use zkparity::compare::{compare, compare_sides};
use zkparity::error::{Error, EXIT_ERROR};
use zkparity::nagios::output::{CheckResult, State};
use zkparity::nagios::{self, CheckCommand};
use zkparity::progress::Progress;
use zkparity::report;

mod cmd;

#[derive(Parser)]
#[command(
    name = "zkparity",
    version,
    // As with most Unix tools, a flag given twice takes its last value.
    args_override_self = true,
    propagate_version = true,
    about = "Walks two live ZooKeeper ensembles and says exactly where they differ",
    after_help = "Each command's --help gives its exit codes (compare: 0 identical, 1 differences\n\
                  found, 2 usage or connection error; checks: 0 OK, 1 WARNING, 2 CRITICAL,\n\
                  3 UNKNOWN).\n\
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
    /// Run one compare and send its parity metrics, and every server's
    /// ZooKeeper metrics, to Ganglia (gmond's gmetric UDP channel), e.g.
    /// from cron
    #[command(after_help = GMETRIC_HELP)]
    Gmetric(Box<GmetricArgs>),
    /// Nagios/Icinga checks: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
    Check {
        #[command(subcommand)]
        check: CheckCommand,
    },
    /// Run continuously: compare the configured ensemble pairs every interval
    /// and report to state files, Nagios and logs
    #[command(after_help = AGENT_HELP)]
    Agent(AgentArgs),
    /// Write a lossless, checksummed snapshot file of a subtree, to compare
    /// against later or repair from
    #[command(after_help = SNAPSHOT_HELP)]
    Snapshot(Box<SnapshotArgs>),
    /// Write a subtree (live or from a snapshot) as zktreeutil XML
    #[command(after_help = EXPORT_HELP)]
    Export(Box<ExportArgs>),
    /// Ask every server of one or two ensembles for its health (four-letter
    /// words): modes, leader, sync, zxids, counts, and a verdict
    #[command(after_help = PROBE_HELP)]
    Probe(ProbeArgs),
    /// Make the target match the source (a live ensemble or a snapshot):
    /// prints the plan, and applies it with --apply
    #[command(after_help = REPAIR_HELP)]
    Repair(Box<zkparity::repair::RepairArgs>),
}

const REPAIR_HELP: &str = "\
Examples:
  zkparity repair --source old:2181 --target new:2181 --path /kafka
  zkparity repair --source old:2181 --target new:2181 --apply --resume kafka.plan
  zkparity repair --source before.zkps --target new:2181 --apply --delete-extra

Without --apply nothing is written: the plan is printed, with counts per
action. With --apply: creates (with the source's data and ACL), set_data and
set_acl (only if the target node is still at the version seen when planning;
otherwise a conflict is reported), sequence counter top-ups (creating and
deleting a sequential child), and deletes of nodes on the target only with
--delete-extra. Ephemeral nodes are never created, changed or deleted. Then a
compare proves the target matches. --resume FILE keeps the plan and progress,
so an interrupted --apply continues where it stopped when run again. The
source is only read. Target credentials come from --target-auth-file or
ZKPARITY_TARGET_AUTH.

Exit codes: 0 nothing to do (dry run) or applied and verified identical,
1 a dry run found work (or differences it cannot repair) or the target still
differs after applying, 2 usage, connection or file error.";

async fn run_repair(a: zkparity::repair::RepairArgs) -> Result<i32, Error> {
    let mut progress = Progress::auto(a.quiet);
    let report = zkparity::repair::run(&a, &mut progress).await?;
    emit(&match a.format {
        zkparity::repair::ReportFormat::Text => report.text(),
        zkparity::repair::ReportFormat::Json => report.json(),
    })?;
    Ok(report.exit_code())
}

const PROBE_HELP: &str = "\
Examples:
  zkparity probe --source zk-old-1:2181,zk-old-2:2181,zk-old-3:2181
  zkparity probe --source old-1:2181,old-2:2181 --target new-1:2181 --format json

Sends srvr, mntr, isro, ruok, conf, wchs and envi to each server (never srst or
crst). Only srvr is whitelisted by default; what the others would have told is
listed as not checked. JSON schema: docs/probe-json.md.

Exit codes: 0 every ensemble healthy, 1 something unhealthy (a server down
included), 2 usage error such as a malformed connect string.";

#[derive(Args)]
struct ProbeArgs {
    /// Source ensemble: host:port[,host:port...] (a chroot is ignored)
    #[arg(long, value_name = "CONNECT")]
    source: String,
    /// Target ensemble, probed at the same time; adds the znode-count delta
    #[arg(long, value_name = "CONNECT")]
    target: Option<String>,
    /// Per word and server: connect, send, and read until the server closes
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    timeout: String,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

async fn run_probe(a: ProbeArgs) -> Result<i32, Error> {
    use zkparity::connect::ConnectString;
    use zkparity::probe;
    let source = ConnectString::parse(&a.source)?;
    let target = a.target.as_deref().map(ConnectString::parse).transpose()?;
    let timeout = zkparity::args::duration("--timeout", &a.timeout)?;
    if timeout.is_zero() {
        return Err(Error::Usage("--timeout must be more than 0".into()));
    }
    let options = probe::ProbeOptions {
        timeout,
        ..probe::ProbeOptions::default()
    };
    let report = probe::probe(&source, target.as_ref(), &options).await;
    emit(&match a.format {
        Format::Text => probe::render::text(&report),
        Format::Json => probe::render::json(&report) + "\n",
    })?;
    Ok(report.exit_code())
}

const AGENT_HELP: &str = "\
Configuration reference: docs/agent.md; a commented sample: examples/agent.toml.

Signals: SIGTERM and SIGINT finish the state file being written and exit 0;
SIGHUP re-reads the configuration (a new one that does not validate is
refused and the running one kept).

Exit codes: 0 clean shutdown (or a valid config with --check-config), 2 the
configuration does not validate or the agent could not start.";

#[derive(Args)]
struct AgentArgs {
    /// The agent's TOML configuration
    #[arg(long, value_name = "FILE")]
    config: std::path::PathBuf,
    /// Validate the configuration (credentials files and state directory
    /// included) and exit: 0 valid, 2 not
    #[arg(long)]
    check_config: bool,
}

async fn run_agent(a: AgentArgs) -> Result<i32, Error> {
    if a.check_config {
        return Ok(zkparity::agent::check_config(&a.config));
    }
    Ok(zkparity::agent::run(&a.config).await)
}

const COMPARE_HELP: &str = "\
Examples:
  zkparity compare --source zk-old-1:2181,zk-old-2:2181 --target zk-new-1:2181
  zkparity compare --source old:2181/kafka --target new:2181/kafka --format json
  zkparity compare --source old:2181 --target new:2181 --path /clickhouse \\
      --exclude '/clickhouse/task_queue/**' --ephemerals compare --limit 0
  zkparity compare --source before-cutover.zkps --target new:2181

A --source or --target that names an existing file is read as a file: a
zkparity snapshot (see 'zkparity snapshot --help') or zktreeutil XML (values
only; ACLs are then compared on neither side).

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
    #[command(flatten)]
    ensembles: EnsembleArgs,
    #[command(flatten)]
    walk: WalkArgs,
    /// Depth of the per-subtree table below --path
    #[arg(long, default_value_t = 1, value_name = "N")]
    subtree_depth: u32,
    /// Differences to list (0: all)
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: usize,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Show digest ACL ids in clear (they carry password hashes)
    #[arg(long)]
    show_acl_ids: bool,
    /// No progress on stderr
    #[arg(short, long)]
    quiet: bool,
}

const GMETRIC_HELP: &str = "\
Examples:
  zkparity gmetric --ganglia gmond1:8649 --source old:2181 --target new:2181
  zkparity gmetric --ganglia 239.2.11.71:8649 --ganglia-ttl 1 \\
      --source old:2181/kafka --target new:2181/kafka --pair-name kafka-migration

The parity metrics appear in Ganglia under a host named for the pair
(--pair-name; by default built from the first server of each side), group
zkparity. Every server of both ensembles is also asked srvr and mntr, before
the compare, and appears as its own host HOST_PORT (keyed IP_PORT), group
zookeeper, with the contrib module's zk_* metrics; a server that does not
answer sends nothing. Sides using TLS are not probed (four-letter words go
over plain TCP); --no-servers skips the probe altogether. Run it at least
every --tmax seconds. A gmond that is down costs only the datagrams: the round
still counts as sent. See ganglia/README.md.

Exit codes: 0 round sent (whatever the parity, and whatever servers are
down), 2 usage error, compare failed (zkparity_compare_ok = 0 and the
servers' metrics are still sent) or no packet could be sent.";

#[derive(Args)]
struct GmetricArgs {
    /// gmond udp_recv_channel, or multicast group, to send to: HOST:PORT
    /// (repeatable: every packet goes to every channel)
    #[arg(long, value_name = "HOST:PORT", required = true)]
    ganglia: Vec<String>,
    /// Hops for multicast channels
    #[arg(long, default_value_t = 1, value_name = "N")]
    ganglia_ttl: u32,
    /// Host name the parity metrics appear under in Ganglia
    #[arg(long, value_name = "NAME")]
    pair_name: Option<String>,
    /// Longest expected gap between rounds, in seconds (Ganglia TMAX)
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    tmax: u32,
    /// Seconds without metadata after which gmond drops a metric (Ganglia
    /// DMAX; 0: never)
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    dmax: u32,
    /// Send only the pair's parity metrics: no four-letter words to the
    /// servers, no per-server hosts
    #[arg(long)]
    no_servers: bool,
    /// Per server and word (srvr, mntr): connect, send, and read the answer
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    probe_timeout: String,
    #[command(flatten)]
    ensembles: EnsembleArgs,
    #[command(flatten)]
    walk: WalkArgs,
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
    let mut options = a.walk.compare_options(&a.ensembles)?;
    options.subtree_depth = a.subtree_depth;
    options.limit = a.limit;
    options.show_acl_ids = a.show_acl_ids;
    let (source, target) = a.ensembles.sides()?;
    let mut progress = Progress::auto(a.quiet);
    let report = compare_sides(&source, &target, &options, &mut progress).await?;
    emit(&render(&report, a.format))?;
    Ok(report.exit_code())
}

const SNAPSHOT_HELP: &str = "\
Examples:
  zkparity snapshot --server zk-old-1:2181,zk-old-2:2181 --out before-cutover.zkps
  zkparity snapshot --server old:2181 --path /kafka --out kafka.zkps.gz --compress
  zkparity compare --source before-cutover.zkps --target zk-new-1:2181

The file holds every node's data, ACL (digest ids in clear), kind and stat;
it is created mode 600 and appears under its name only once complete. The
format is documented in docs/snapshot.md. Credentials come from --auth-file
or ZKPARITY_SOURCE_AUTH.

Exit codes: 0 written, 2 usage, connection or write error (nothing written).";

#[derive(Args)]
struct SnapshotArgs {
    #[command(flatten)]
    server: zkparity::args::ServerArgs,
    #[command(flatten)]
    walk: WalkArgs,
    /// The snapshot file to write
    #[arg(long, value_name = "FILE")]
    out: std::path::PathBuf,
    /// gzip the file
    #[arg(long)]
    compress: bool,
    /// Output format of the summary
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// No progress on stderr
    #[arg(short, long)]
    quiet: bool,
}

async fn run_snapshot(a: SnapshotArgs) -> Result<i32, Error> {
    use zkparity::snapshot::{take_snapshot, SnapshotOptions};
    let (walk, reader) = a.server.options(&a.walk)?;
    let spec = a.server.spec("source")?;
    let options = SnapshotOptions {
        path: a.walk.path.clone(),
        walk,
        reader,
        out: a.out.clone(),
        compress: a.compress,
    };
    let mut progress = Progress::auto(a.quiet);
    let s = until_stopped(take_snapshot(&spec, &options, &mut progress)).await?;
    emit(&match a.format {
        Format::Json => serde_json::to_string_pretty(&s).unwrap_or_default() + "\n",
        Format::Text => format!(
            "zkparity snapshot: {} written\n  {} records ({} nodes, {} ephemerals, {} unreadable), {} data bytes, {} bytes on disk, {:.2}s\n  checksum {}  acl {}\n",
            s.file,
            s.records,
            s.nodes,
            s.ephemerals,
            s.unreadable,
            s.bytes,
            s.file_bytes,
            s.elapsed_seconds,
            s.checksum,
            s.acl_fingerprint
        ),
    })?;
    Ok(0)
}

const EXPORT_HELP: &str = "\
Examples:
  zkparity export --server zk-old:2181 --path /myapp > myapp.xml
  zkparity export --server before-cutover.zkps --out tree.xml

Writes zktreeutil's XML (<root> with nested <zknode name value>), children
in name order, so that zktreeutil --import/--diff/--update can use it.
Excluded paths (by default /zookeeper) are written with ignore=\"true\" so
that zktreeutil leaves them alone. Ephemerals are left out unless
--ephemerals compare. zktreeutil holds only text: a node with binary data
or control characters stops the export (exit 2) rather than being mangled;
--exclude it, or use a snapshot, which holds anything. With --out, the file
appears only once complete.

Exit codes: 0 written, 2 usage, connection, read or write error.";

#[derive(Args)]
struct ExportArgs {
    /// --server: the ensemble, or a snapshot file
    #[command(flatten)]
    server: zkparity::args::ServerArgs,
    /// Only zktreeutil's XML for now
    #[arg(long, value_enum, default_value = "zktreeutil")]
    format: ExportFormat,
    /// Write here instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
    #[command(flatten)]
    walk: WalkArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Zktreeutil,
}

async fn run_export(a: ExportArgs) -> Result<i32, Error> {
    use std::io::Write;
    use zkparity::source::Source;
    let ExportFormat::Zktreeutil = a.format;
    let server = &a.server;
    let path = &a.walk.path;
    zkparity::connect::validate_path(path).map_err(|reason| Error::BadPath {
        path: path.clone(),
        reason,
    })?;
    let (walk, mut reader) = server.options(&a.walk)?;
    reader.keep_data = true;
    reader.read_acls = false;
    let side = server.side("source")?;
    let source = Source::open(&side, &reader).await?;
    // What a file side left out is written as ignored, like any exclude.
    let walk = match Source::walk_options(&walk, path, &[&source], "export") {
        Ok(w) => w,
        Err(e) => {
            source.close().await;
            return Err(e);
        }
    };
    let written = match &a.out {
        Some(out) => {
            let mut temp = zkparity::zktreeutil::temp_beside(out)?;
            let mut w = std::io::BufWriter::new(temp.as_file_mut());
            let r = until_stopped(zkparity::zktreeutil::export(&source, path, &walk, &mut w)).await;
            let flushed = w.flush();
            drop(w);
            let io = |e: std::io::Error| Error::Io {
                context: format!("writing {}", out.display()),
                source: e,
            };
            // On any failure the temporary file is dropped, and with it
            // every byte written.
            match (r, flushed) {
                (Ok(s), Ok(())) => temp
                    .as_file()
                    .sync_all()
                    .map_err(io)
                    .and_then(|_| temp.persist(out).map_err(|e| io(e.error)))
                    .map(|_| s),
                (Err(e), _) => Err(e),
                (_, Err(e)) => Err(io(e)),
            }
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            let r = until_stopped(zkparity::zktreeutil::export(&source, path, &walk, &mut w)).await;
            let _ = w.flush();
            r
        }
    };
    source.close().await;
    let s = written?;
    eprintln!(
        "zkparity export: {} nodes written, {} ignored (excluded), {} ephemerals left out",
        s.nodes, s.ignored, s.skipped_ephemerals
    );
    if s.skipped_ephemerals > 0 {
        eprintln!(
            "zkparity export: note: zktreeutil --update deletes live nodes missing from the file; \
             mark the ephemerals' paths ignore=\"true\" (or --exclude them) before updating a target \
             whose sessions own nodes there"
        );
    }
    if s.largest_value >= 128 * 1024 {
        eprintln!(
            "zkparity export: note: values of up to {} bytes; zktreeutil itself reads at most 131071",
            s.largest_value
        );
    }
    Ok(0)
}

/// Runs `work` unless SIGINT or SIGTERM comes first; then `work` is dropped,
/// and with it any temporary file it was writing, so nothing is left.
async fn until_stopped<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::Io {
        context: "watching for SIGTERM".into(),
        source: e,
    })?;
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(Error::Usage("interrupted (SIGINT): nothing written".into())),
        _ = term.recv() => Err(Error::Usage("stopped (SIGTERM): nothing written".into())),
    }
}

async fn run_demo(a: DemoArgs) -> Result<i32, Error> {
    let mut progress = Progress::auto(false);
    let report = cmd::demo::run(&mut progress).await?;
    emit(&render(&report, a.format))?;
    Ok(report.exit_code())
}

async fn run_gmetric(a: GmetricArgs) -> Result<i32, Error> {
    use zkparity::connect::ConnectString;
    use zkparity::gmetric::{
        parity, servers, Channel, Emitter, GmetricError, MetadataPolicy, Outcome, Sender,
        SenderOptions, Timing,
    };
    let setup = |e: GmetricError| match e {
        GmetricError::Socket { addr, source } => Error::Io {
            context: format!("opening a UDP socket for Ganglia channel {addr}"),
            source,
        },
        e => Error::Usage(e.to_string()),
    };
    let channels = a
        .ganglia
        .iter()
        .map(|c| Channel::resolve(c, a.ganglia_ttl))
        .collect::<Result<Vec<_>, _>>()
        .map_err(setup)?;
    let probe_timeout = zkparity::args::duration("--probe-timeout", &a.probe_timeout)?;
    if probe_timeout.is_zero() {
        return Err(Error::Usage("--probe-timeout must be more than 0".into()));
    }
    // A process per round: everything it knows is new, so metadata always goes.
    let options = SenderOptions {
        metadata: MetadataPolicy::Always,
        ..SenderOptions::default()
    };
    let sender = Sender::new(channels, options).map_err(setup)?;
    let pair = a
        .pair_name
        .clone()
        .unwrap_or_else(|| parity::default_pair_name(&a.ensembles.source, &a.ensembles.target));
    let timing = Timing {
        tmax: a.tmax,
        dmax: a.dmax,
    };
    let mut emitter = Emitter::new(sender, &pair, timing);
    let compare_options = a.walk.compare_options(&a.ensembles)?;
    let (source, target) = a.ensembles.specs()?;
    // Four-letter words go over plain TCP, which a TLS-only client port
    // does not answer: probing it would only report it unrecognised.
    let mut probed = Vec::new();
    if !a.no_servers {
        for (connect, tls) in [
            (&a.ensembles.source, a.ensembles.source_tls_ca.is_some()),
            (&a.ensembles.target, a.ensembles.target_tls_ca.is_some()),
        ] {
            if !tls {
                probed.push(ConnectString::parse(connect)?);
            }
        }
    }
    // Before the compare, so the servers' numbers are not this round's own
    // reads (latency, packets, one more connection).
    let probes = if probed.is_empty() {
        Vec::new()
    } else {
        let connects: Vec<&ConnectString> = probed.iter().collect();
        servers::probe_servers(&connects, &servers::probe_options(probe_timeout)).await
    };
    let mut progress = Progress::auto(a.quiet);
    let result = compare(&source, &target, &compare_options, &mut progress).await;
    let outcome = match &result {
        Ok(report) => Outcome::Compared(report),
        Err(_) => Outcome::Failed,
    };
    let sent = emitter.emit_round(outcome, &probes);
    for e in &sent.errors {
        eprintln!("zkparity: warning: {e}");
    }
    if sent.error_count > sent.errors.len() {
        eprintln!(
            "zkparity: warning: {} more Ganglia errors",
            sent.error_count - sent.errors.len()
        );
    }
    result?;
    if sent.metrics_sent == 0 {
        return Err(Error::Io {
            context: format!("sending metrics to Ganglia ({})", a.ganglia.join(", ")),
            source: std::io::Error::other("no packet could be sent on any channel"),
        });
    }
    Ok(0)
}

/// `check_zkparity_parity` (a link to zkparity, see plugins/) runs
/// `zkparity check parity`: the names Nagios users expect.
fn plugin_check_name(argv0: &OsString) -> Option<String> {
    let name = std::path::Path::new(argv0).file_name()?.to_str()?;
    name.strip_prefix("check_zkparity_").map(str::to_string)
}

/// Plugin conventions for a command line that does not parse: help and
/// version exit 3, anything else is UNKNOWN with the reason.
fn check_usage(argv: &[OsString], e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = emit(&e.to_string());
        return ExitCode::from(State::Unknown.exit_code() as u8);
    }
    let name = match argv.get(2).and_then(|a| a.to_str()) {
        Some("parity") => "PARITY",
        Some("znode") => "ZNODE",
        Some("health") => "HEALTH",
        Some("counts") => "COUNTS",
        _ => "CHECK",
    };
    let text = e.to_string();
    // clap's first line, plus any list under it ("required arguments were
    // not provided:" names them on the next lines), up to the usage.
    let reason = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect::<Vec<_>>()
        .join(" ");
    let reason = reason.trim_start_matches("error: ");
    let _ = emit(&CheckResult::unknown(name, format!("{reason} (see --help)")).render());
    ExitCode::from(State::Unknown.exit_code() as u8)
}

async fn run_check(check: CheckCommand) -> Result<i32, Error> {
    let result = nagios::run(&check).await;
    emit(&result.render())?;
    Ok(result.state.exit_code())
}

/// `check parity --state FILE` needs no ensembles: `--source` and
/// `--target`, required everywhere else, are relaxed for it alone.
fn parse(argv: &[OsString]) -> Result<Cli, clap::Error> {
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

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    if let Some(check) = argv.first().and_then(plugin_check_name) {
        argv.splice(1..1, [OsString::from("check"), OsString::from(check)]);
    }
    let check_mode = argv.get(1).is_some_and(|a| a == "check");
    let cli = match parse(&argv) {
        Ok(cli) => cli,
        Err(e) if check_mode => return check_usage(&argv, e),
        Err(e) => e.exit(),
    };
    // A check answers UNKNOWN (3) for its own failures; other commands use 2.
    let failure = if check_mode {
        State::Unknown.exit_code()
    } else {
        EXIT_ERROR
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zkparity: error: cannot start the async runtime: {e}");
            return ExitCode::from(failure as u8);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Compare(a) => run_compare(*a).await,
            Command::Demo(a) => run_demo(a).await,
            Command::Gmetric(a) => run_gmetric(*a).await,
            Command::Check { check } => run_check(check).await,
            Command::Agent(a) => run_agent(a).await,
            Command::Probe(a) => run_probe(a).await,
            Command::Snapshot(a) => run_snapshot(*a).await,
            Command::Export(a) => run_export(*a).await,
            Command::Repair(a) => run_repair(*a).await,
        }
    });
    match outcome {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("zkparity: error: {e}");
            ExitCode::from(if check_mode { failure } else { e.exit_code() } as u8)
        }
    }
}
