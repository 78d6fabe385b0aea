//! `zkparity check ...`: the Nagios/Icinga checks' arguments, help and
//! dispatch. The checks themselves are in the library's `nagios` module.
//!
//! Whatever goes wrong inside a check — a bad argument, an unreachable
//! ensemble, a timeout — answers UNKNOWN (3) with the reason; a check never
//! exits above 3.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, Args, Subcommand};
use zkparity::connect::{ConnectString, EnsembleSpec};
use zkparity::error::Error;
use zkparity::nagios::output::{self, CheckResult, State};
use zkparity::nagios::range::Range;
use zkparity::nagios::{counts, ephemerals, health, parity, znode};

use super::args::{
    build_spec, AccessArgs, AdminArgs, EnsembleArgs, Format, TextfileArgs, WalkArgs,
};
use super::stdout::emit;
use super::values::DURATION;

/// Checks for Nagios, Icinga and NRPE.
#[derive(Subcommand, Debug)]
pub enum CheckCommand {
    /// Compare source and target; alert on confirmed differences
    #[command(after_help = PARITY_HELP)]
    Parity(Box<ParityArgs>),
    /// Check one znode on one or both ensembles
    #[command(after_help = ZNODE_HELP)]
    Znode(Box<ZnodeArgs>),
    /// Check each ensemble's health from the four-letter words
    #[command(after_help = HEALTH_HELP)]
    Health(Box<HealthArgs>),
    /// Compare the two ensembles' znode counts from mntr (cheap, no walk)
    #[command(after_help = COUNTS_HELP)]
    Counts(Box<CountsArgs>),
    /// After a cutover: are the applications' ephemeral registrations back?
    #[command(after_help = EPHEMERALS_HELP)]
    Ephemerals(Box<EphemeralsArgs>),
}

const EPHEMERALS_HELP: &str = "\
EXPECTED holds the registrations that must come back: a zkparity snapshot
taken while the applications were connected (with the default --ephemerals
count, or compare), the old servers' data directory or snapshot.<zxid>
(--at-zxid), or the old ensemble while it still runs. Each must be on the
target as an ephemeral. Applications that register under new names are
matched on what survives a restart: HBase servers on host and port (not the
start code), sequential names (elections, locks, latches) and Curator
service discovery instances as a count per parent (the table is in
docs/ephemerals.md).

OK when all are back; WARNING while some are missing within --grace of the
cutover (--since, else the snapshot's creation time, the data directory's
last transaction, or now for a live EXPECTED); CRITICAL after. An expected
ephemeral that is a persistent node on the target is CRITICAL at once: a
copy made it persistent, and the application cannot register over it.

Examples:
  zkparity snapshot --server zk-old-1:2181 --path /kafka --out before.zkps
  zkparity check ephemerals --expect before.zkps --target zk-new-1:2181 --path /kafka
  zkparity check ephemerals --expect /var/lib/zookeeper --target zk-new-1:2181 \\
      --grace 10m
  zkparity check ephemerals --expect zk-old-1:2181 --target zk-new-1:2181 \\
      --since 2024-05-01T22:00:00Z --format json

Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for -h and -V).";

#[derive(Args, Debug)]
// EXPECTED is read with the source's flags, named for it.
#[command(mut_args(expected_side), mut_arg("timeout", |a| a.default_value("30s")))]
pub struct EphemeralsArgs {
    /// The registrations expected: a zkparity snapshot, a ZooKeeper data
    /// directory or snapshot.<zxid> of the old servers, or the old
    /// ensemble's host:port[,host:port...][/chroot]
    #[arg(long, value_name = "CONNECT|FILE|DIR")]
    expect: String,
    /// The new ensemble: host:port[,host:port...][/chroot]
    #[arg(long, value_name = "CONNECT")]
    target: String,
    /// Read EXPECTED's data directory as it stood at this zxid
    #[arg(long, value_name = "ZXID", value_parser = super::args::parse_zxid)]
    at_zxid: Option<i64>,
    /// Subtree to check, the same on both sides
    #[arg(long, default_value = "/")]
    path: String,
    /// Leave out paths matching this glob and everything under them
    /// (repeatable; '*' stays within a name, '**' crosses names)
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Missing registrations are WARNING this long after the cutover,
    /// CRITICAL after
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = DURATION)]
    grace: Duration,
    /// The cutover time (RFC 3339 or seconds since the epoch) [default:
    /// when EXPECTED was taken]
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    #[command(flatten)]
    access: AccessArgs,
    /// Output: the plugin's lines, or the same facts as JSON
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    timeout: TimeoutArg,
}

const HEALTH_HELP: &str = "\
CRITICAL when no server serves, there is no leader or more than one, or the
quorum is lost; WARNING when a member is down while the quorum holds, when
followers are out of sync, or when counts spread between members;
per-server thresholds on latency, outstanding requests and file descriptor
use (percent of the limit). Servers are read with the
four-letter words, and through their AdminServer for the words a whitelist
refuses (--probe-via auto|4lw|admin, --source-admin-port, default 8080).

Examples:
  zkparity check health --source zk1:2181,zk2:2181,zk3:2181
  zkparity check health --source old1:2181,old2:2181 --target new1:2181,new2:2181 \\
      --latency-warning 100 --latency-critical 500

Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for -h and -V).";

const COUNTS_HELP: &str = "\
Thresholds apply to the target's persistent znodes minus the source's (mntr's
znode count less system nodes and ephemerals). Cheap: no tree is read. Where
mntr is not whitelisted (the 3.5+ default), its numbers come from the
AdminServer (--probe-via, --source-admin-port, --target-admin-port).

Examples:
  zkparity check counts --source old:2181 --target new:2181
  zkparity check counts --source old:2181 --target new:2181 -w -10:10 -c -1000:1000

Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for -h and -V).";

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// Source ensemble: host:port[,host:port...]
    #[arg(long, value_name = "CONNECT")]
    source: String,
    /// Target ensemble, to check both
    #[arg(long, value_name = "CONNECT")]
    target: Option<String>,
    /// Warning range for a server's average latency (ms)
    #[arg(long, default_value = "500", value_name = "RANGE")]
    latency_warning: String,
    /// Critical range for a server's average latency (ms)
    #[arg(long, default_value = "1000", value_name = "RANGE")]
    latency_critical: String,
    /// Warning range for a server's outstanding requests
    #[arg(long, default_value = "20", value_name = "RANGE")]
    outstanding_warning: String,
    /// Critical range for a server's outstanding requests
    #[arg(long, default_value = "50", value_name = "RANGE")]
    outstanding_critical: String,
    /// Warning range for a server's file descriptors in use (% of its limit)
    #[arg(long, default_value = "80", value_name = "RANGE")]
    fd_warning: String,
    /// Critical range for a server's file descriptors in use (% of its limit)
    #[arg(long, default_value = "95", value_name = "RANGE")]
    fd_critical: String,
    #[command(flatten)]
    timeout: TimeoutArg,
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Args, Debug)]
pub struct CountsArgs {
    /// Source ensemble: host:port[,host:port...]
    #[arg(long, value_name = "CONNECT")]
    source: String,
    /// Target ensemble: host:port[,host:port...]
    #[arg(long, value_name = "CONNECT")]
    target: String,
    /// Warning range for target minus source persistent znodes
    #[arg(
        short = 'w',
        long = "warning",
        default_value = "0:0",
        value_name = "RANGE",
        allow_hyphen_values = true
    )]
    warning: String,
    /// Critical range for target minus source persistent znodes
    #[arg(
        short = 'c',
        long = "critical",
        value_name = "RANGE",
        allow_hyphen_values = true
    )]
    critical: Option<String>,
    #[command(flatten)]
    timeout: TimeoutArg,
    #[command(flatten)]
    admin: AdminArgs,
}

const PARITY_HELP: &str = "\
Thresholds apply to the number of confirmed differences. Besides, any
difference of a --critical-kinds kind is CRITICAL. --judge GLOB=STATE judges
the differences under a path at most STATE, e.g. --judge '/app/locks/**=warning'
for a directory known to churn, or =ok to list them without alerting. The
re-check of what
differs waits --recheck-delay, at most a third of -t, so that it never
turns a comparison that had time into a timeout.

Examples:
  zkparity check parity --source old:2181 --target new:2181
  zkparity check parity --source old:2181/kafka --target new:2181/kafka -w 0 -c 10 \\
      --critical-kinds data,missing_in_target -t 50s
  zkparity check parity --state /var/lib/zkparity/kafka.json --max-age 30m

Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for -h and -V).";

const ZNODE_HELP: &str = "\
Examples:
  zkparity check znode --source zk1:2181 --path /kafka/controller --ephemeral
  zkparity check znode --source old:2181 --target new:2181 --path /hbase/master \\
      --age-critical 86400 --data-regex 'ENABLED'
  zkparity check znode --source zk1:2181 --path /kafka/brokers/ids \\
      --children-warning 3: --children-critical 2:

Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for -h and -V).";

#[derive(Args, Debug)]
// clap leaves the group of a struct with groups of its own empty, and an
// empty group is never given: the ensembles are given with their sides.
#[command(
    mut_arg("timeout", |a| a.default_value("30s")),
    mut_group("EnsembleArgs", |g| g.args(["source", "target"]))
)]
pub struct ParityArgs {
    #[command(flatten)]
    ensembles: Option<EnsembleArgs>,
    #[command(flatten)]
    walk: WalkArgs,
    #[command(flatten)]
    textfile: TextfileArgs,
    /// Judge the agent's last state file for the pair instead of comparing
    #[arg(long, value_name = "FILE", conflicts_with = "source")]
    state: Option<std::path::PathBuf>,
    /// With --state: UNKNOWN when the agent's last round finished longer ago
    #[arg(
        long,
        default_value = "1h",
        value_name = "DURATION",
        requires = "state",
        value_parser = DURATION
    )]
    max_age: Duration,
    /// Warning range for the number of confirmed differences
    #[arg(
        short = 'w',
        long = "warning",
        default_value = "0",
        value_name = "RANGE"
    )]
    warning: String,
    /// Critical range for the number of confirmed differences
    #[arg(short = 'c', long = "critical", value_name = "RANGE")]
    critical: Option<String>,
    /// Difference kinds that are CRITICAL at any count (comma list, or none)
    #[arg(
        long,
        default_value = "acl,data,missing_in_target,sequence_counter",
        value_name = "KINDS"
    )]
    critical_kinds: String,
    /// State when a side cannot read some nodes (ok, warning, critical, unknown)
    #[arg(long, default_value = "unknown", value_name = "STATE")]
    unreadable: String,
    /// Judge differences under a path glob at most STATE: ok (listed, not
    /// alerting) or warning (never CRITICAL); repeatable, first match wins
    #[arg(long, value_name = "GLOB=STATE")]
    judge: Vec<String>,
    /// Differences listed in the long output
    #[arg(long, default_value_t = 10, value_name = "N")]
    details: usize,
    #[command(flatten)]
    timeout: TimeoutArg,
}

#[derive(Args, Debug)]
#[command(mut_args(check_side))]
pub struct ZnodeArgs {
    /// Source ensemble: host:port[,host:port...][/chroot]
    #[arg(long, value_name = "CONNECT")]
    source: String,
    /// Target ensemble, to check the same path on both sides
    #[arg(long, value_name = "CONNECT")]
    target: Option<String>,
    #[command(flatten)]
    access: AccessArgs,
    /// The znode to check
    #[arg(long)]
    path: String,
    /// CRITICAL unless the node is ephemeral
    #[arg(long, conflicts_with = "persistent")]
    ephemeral: bool,
    /// CRITICAL unless the node is persistent
    #[arg(long)]
    persistent: bool,
    /// Warning range for the number of children
    #[arg(long, value_name = "RANGE")]
    children_warning: Option<String>,
    /// Critical range for the number of children
    #[arg(long, value_name = "RANGE")]
    children_critical: Option<String>,
    /// CRITICAL unless the node's data (as UTF-8) matches this regex
    #[arg(long, value_name = "REGEX")]
    data_regex: Option<String>,
    /// Warning range for the seconds since the last modification
    #[arg(long, value_name = "RANGE")]
    age_warning: Option<String>,
    /// Critical range for the seconds since the last modification
    #[arg(long, value_name = "RANGE")]
    age_critical: Option<String>,
    #[command(flatten)]
    timeout: TimeoutArg,
}

impl CheckCommand {
    /// The check's name on the status line.
    pub fn name(&self) -> &'static str {
        match self {
            CheckCommand::Parity(_) => "PARITY",
            CheckCommand::Znode(_) => "ZNODE",
            CheckCommand::Health(_) => "HEALTH",
            CheckCommand::Counts(_) => "COUNTS",
            CheckCommand::Ephemerals(_) => "EPHEMERALS",
        }
    }

    /// How long the check may take (`-t`).
    fn timeout(&self) -> Duration {
        let t = match self {
            CheckCommand::Parity(a) => &a.timeout,
            CheckCommand::Znode(a) => &a.timeout,
            CheckCommand::Health(a) => &a.timeout,
            CheckCommand::Counts(a) => &a.timeout,
            CheckCommand::Ephemerals(a) => &a.timeout,
        };
        t.timeout
    }
}

fn range(flag: &str, value: Option<&String>) -> Result<Option<Range>, String> {
    value
        .map(|v| v.parse::<Range>().map_err(|e| format!("{flag}: {e}")))
        .transpose()
}

/// `-t`: how long a check may take before it answers UNKNOWN.
#[derive(Args, Debug)]
pub struct TimeoutArg {
    /// Answer UNKNOWN if the check takes longer than this
    #[arg(
        short = 't',
        long = "timeout",
        default_value = "10s",
        value_name = "DURATION",
        value_parser = DURATION
    )]
    timeout: Duration,
}

/// The checks' words for the flags they share with the other commands.
fn check_side(a: Arg) -> Arg {
    let help = match a.get_id().as_str() {
        "source_auth_file" => "File with the source's digest credentials (user:password, mode 600)",
        "target_auth_file" => "File with the target's digest credentials (user:password, mode 600)",
        "source_jaas" => {
            "JAAS file with the source's SASL login (its Client section): \
             DigestLoginModule (mode 600) or Krb5LoginModule (keytab or ticket cache)"
        }
        "sasl_host" => "Kerberos: host in the servers' principal [default: each server's host]",
        _ => return a,
    };
    a.help(help)
}

/// `check ephemerals` reads EXPECTED with the source's flags, named for it.
fn expected_side(a: Arg) -> Arg {
    let (long, help) = match a.get_id().as_str() {
        "source_auth_file" => (
            "expect-auth-file",
            "File with EXPECTED's digest credentials (user:password, mode 600)",
        ),
        "source_jaas" => (
            "expect-jaas",
            "JAAS file with EXPECTED's SASL login (its Client section)",
        ),
        "source_tls_ca" => (
            "expect-tls-ca",
            "CA certificate(s) (PEM) of EXPECTED's secure client port",
        ),
        "source_tls_cert" => ("expect-tls-cert", "Client certificate (PEM) for EXPECTED"),
        "source_tls_key" => (
            "expect-tls-key",
            "Client key (PEM, mode 600) for --expect-tls-cert",
        ),
        "target_jaas" => return a.help("JAAS file with the target's SASL login"),
        _ => return check_side(a),
    };
    a.long(long).help(help)
}

/// One side's ensemble with a check's flags: the library's session timeout,
/// and connecting may take all of -t.
fn spec(
    side: &str,
    connect: &str,
    access: &AccessArgs,
    source: bool,
    t: Duration,
) -> Result<EnsembleSpec, String> {
    let (files, sasl) = (access.side(source), access.sasl.choice());
    build_spec(side, connect, files, sasl, [None, Some(t)]).map_err(|e| e.to_string())
}

async fn run_parity(a: &ParityArgs, timeout: Duration) -> Result<CheckResult, String> {
    let check = parity::ParityCheck {
        warning: a.warning.parse::<Range>().map_err(|e| format!("-w: {e}"))?,
        critical: range("-c", a.critical.as_ref())?,
        critical_kinds: parity::parse_kinds(&a.critical_kinds)
            .map_err(|e| format!("--critical-kinds: {e}"))?,
        details: a.details,
        unreadable: parity::parse_state(&a.unreadable).map_err(|e| format!("--unreadable: {e}"))?,
        rules: a
            .judge
            .iter()
            .map(|r| parity::PathRule::parse(r).map_err(|e| format!("--judge: {e}")))
            .collect::<Result<_, _>>()?,
    };
    if let Some(state) = &a.state {
        if a.textfile.prometheus_textfile.is_some() {
            return Err(
                "--prometheus-textfile writes a live comparison's metrics; with --state, \
                        scrape the agent's own [prometheus] endpoint instead"
                    .into(),
            );
        }
        return Ok(zkparity::agent::verdict::verdict_of_file(
            state, &check, a.max_age,
        ));
    }
    let Some(ensembles) = &a.ensembles else {
        return Err("give --source and --target, or --state".into());
    };
    let mut options = a
        .walk
        .compare_options(ensembles)
        .map_err(|e| e.to_string())?;
    // Path rules judge listed differences: with rules, list them all.
    options.limit = if check.rules.is_empty() {
        a.details.max(1)
    } else {
        0
    };
    // The re-check waits inside -t: at most a third of it, so a short -t
    // leaves the walks their time instead of ending in a timeout.
    options.recheck_delay = options.recheck_delay.map(|d| d.min(timeout / 3));
    let (source, target) = ensembles.sides().map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let (mut result, report) = check.run(&source, &target, &options).await;
    if let Err(e) = a
        .textfile
        .write(ensembles, result.state, report.as_ref(), started)
    {
        // Not a reason to hide the comparison's answer: the worse of it and
        // UNKNOWN, with the reason.
        result.state = result.state.max(State::Unknown);
        result.summary = format!("{} (and {e})", result.summary);
    }
    Ok(result)
}

async fn run_znode(a: &ZnodeArgs, timeout: Duration) -> Result<CheckResult, String> {
    let mut specs = vec![spec("source", &a.source, &a.access, true, timeout)?];
    if let Some(target) = &a.target {
        specs.push(spec("target", target, &a.access, false, timeout)?);
    }
    zkparity::connect::validate_path(&a.path).map_err(|e| format!("--path {:?}: {e}", a.path))?;
    let data_regex = a
        .data_regex
        .as_ref()
        .map(|re| regex::Regex::new(re).map_err(|e| format!("--data-regex: {e}")))
        .transpose()?;
    let check = znode::ZnodeCheck {
        path: a.path.clone(),
        kind: if a.ephemeral {
            Some(zkparity::digest::NodeKind::Ephemeral)
        } else if a.persistent {
            Some(zkparity::digest::NodeKind::Persistent)
        } else {
            None
        },
        children_warning: range("--children-warning", a.children_warning.as_ref())?,
        children_critical: range("--children-critical", a.children_critical.as_ref())?,
        data_regex,
        age_warning: range("--age-warning", a.age_warning.as_ref())?,
        age_critical: range("--age-critical", a.age_critical.as_ref())?,
    };
    Ok(check.run(&specs).await)
}

fn connect_string(flag: &str, value: &str) -> Result<ConnectString, String> {
    if zkparity::source::SideSpec::is_file(value) {
        return Err(format!(
            "{flag} {value} is a file or directory: this check asks live servers"
        ));
    }
    ConnectString::parse(value).map_err(|e| format!("{flag}: {e}"))
}

/// Each word gets at most a third of the check's time: a silent server then
/// leaves room for the others' answers to be judged.
fn probe_options(
    timeout: Duration,
    admin: &AdminArgs,
    source: &ConnectString,
    target: Option<&ConnectString>,
) -> Result<zkparity::probe::ProbeOptions, String> {
    let mut opts = zkparity::probe::ProbeOptions {
        timeout: (timeout / 3).max(Duration::from_millis(100)),
        ..zkparity::probe::ProbeOptions::default()
    };
    let servers = [source.hosts.len(), target.map_or(0, |t| t.hosts.len())];
    admin.apply(&mut opts, servers)?;
    Ok(opts)
}

async fn run_health(a: &HealthArgs, timeout: Duration) -> Result<CheckResult, String> {
    let source = connect_string("--source", &a.source)?;
    let target = a
        .target
        .as_deref()
        .map(|t| connect_string("--target", t))
        .transpose()?;
    let check = health::HealthCheck {
        latency_warning: range("--latency-warning", Some(&a.latency_warning))?,
        latency_critical: range("--latency-critical", Some(&a.latency_critical))?,
        outstanding_warning: range("--outstanding-warning", Some(&a.outstanding_warning))?,
        outstanding_critical: range("--outstanding-critical", Some(&a.outstanding_critical))?,
        fd_warning: range("--fd-warning", Some(&a.fd_warning))?,
        fd_critical: range("--fd-critical", Some(&a.fd_critical))?,
    };
    Ok(check
        .run(
            &source,
            target.as_ref(),
            &probe_options(timeout, &a.admin, &source, target.as_ref())?,
        )
        .await)
}

async fn run_counts(a: &CountsArgs, timeout: Duration) -> Result<CheckResult, String> {
    let source = connect_string("--source", &a.source)?;
    let target = connect_string("--target", &a.target)?;
    let check = counts::CountsCheck {
        warning: a.warning.parse::<Range>().map_err(|e| format!("-w: {e}"))?,
        critical: range("-c", a.critical.as_ref())?,
    };
    Ok(check
        .run(
            &source,
            &target,
            &probe_options(timeout, &a.admin, &source, Some(&target))?,
        )
        .await)
}

/// Runs a check and prints its answer; the exit code is the check's state.
pub async fn run(command: CheckCommand) -> Result<i32, Error> {
    let (result, report) = answer(&command).await;
    let json = matches!(&command, CheckCommand::Ephemerals(a) if matches!(a.format, Format::Json));
    if json {
        let value = match report {
            Some(r) => serde_json::to_value(&r).unwrap_or_default(),
            None => serde_json::json!({
                "state": "UNKNOWN",
                "summary": result.summary,
            }),
        };
        emit(&(serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"))?;
    } else {
        emit(&result.render())?;
    }
    Ok(result.state.exit_code())
}

fn parse_since(value: &str) -> Result<std::time::SystemTime, String> {
    ephemerals::parse_since(value).map_err(|e| format!("--since {e}"))
}

async fn run_ephemerals(
    a: &EphemeralsArgs,
    timeout: Duration,
) -> Result<(CheckResult, ephemerals::Report), String> {
    super::args::missing_path("--expect", &a.expect).map_err(|e| e.to_string())?;
    let expected = if zkparity::source::SideSpec::is_file(&a.expect) {
        zkparity::source::SideSpec::file("expected", &a.expect, a.at_zxid)
    } else {
        if a.at_zxid.is_some() {
            return Err("--at-zxid applies to a ZooKeeper data directory or snapshot, not to a live ensemble".into());
        }
        let live = spec("expected", &a.expect, &a.access, true, timeout);
        zkparity::source::SideSpec::Live(live.map_err(|e| format!("--expect: {e}"))?)
    };
    connect_string("--target", &a.target)?;
    let target = spec("target", &a.target, &a.access, false, timeout);
    let target = zkparity::source::SideSpec::Live(target.map_err(|e| format!("--target: {e}"))?);
    zkparity::connect::validate_path(&a.path).map_err(|e| format!("--path {:?}: {e}", a.path))?;
    let walk_args = WalkArgs {
        path: a.path.clone(),
        exclude: a.exclude.clone(),
        include_zookeeper: false,
        ephemerals: super::args::Ephemerals::Count,
        recheck_delay: None,
    };
    let options = walk_args
        .options(&super::args::ReadArgs::defaults())
        .map_err(|e| e.to_string())?;
    let check = ephemerals::EphemeralsCheck {
        path: a.path.clone(),
        grace: a.grace,
        since: a.since.as_deref().map(parse_since).transpose()?,
        walk: options.walk,
        reader: options.reader,
    };
    check
        .run(&expected, &target)
        .await
        .map_err(|e| e.to_string())
}

/// Runs a check to its answer: always a [`CheckResult`], UNKNOWN when the
/// check could not decide; `check ephemerals` also gives its report.
async fn answer(command: &CheckCommand) -> (CheckResult, Option<ephemerals::Report>) {
    let name = command.name();
    let timeout = command.timeout();
    if timeout.is_zero() {
        return (CheckResult::unknown(name, "-t must be more than 0"), None);
    }
    let work = async {
        match command {
            CheckCommand::Parity(a) => run_parity(a, timeout).await.map(|r| (r, None)),
            CheckCommand::Znode(a) => run_znode(a, timeout).await.map(|r| (r, None)),
            CheckCommand::Health(a) => run_health(a, timeout).await.map(|r| (r, None)),
            CheckCommand::Counts(a) => run_counts(a, timeout).await.map(|r| (r, None)),
            CheckCommand::Ephemerals(a) => run_ephemerals(a, timeout)
                .await
                .map(|(r, report)| (r, Some(report))),
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(reason)) => (CheckResult::unknown(name, reason), None),
        Err(_) => (
            CheckResult::unknown(
                name,
                format!(
                    "timed out after {}s (-t)",
                    output::number(timeout.as_secs_f64())
                ),
            ),
            None,
        ),
    }
}

/// Plugin conventions for a command line that does not parse: help and
/// version exit 3, anything else is UNKNOWN with the reason.
pub fn usage_error(argv: &[OsString], e: clap::Error) -> ExitCode {
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
    let name = check_name(argv);
    // A value zkparity's own parser refused says so in its own words.
    if let Some(reason) = super::values::refusal(&e) {
        let _ = emit(&CheckResult::unknown(name, reason.to_string()).render());
        return ExitCode::from(State::Unknown.exit_code() as u8);
    }
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

/// The check a command line names, as its status line does.
fn check_name(argv: &[OsString]) -> &'static str {
    match argv.get(2).and_then(|a| a.to_str()) {
        Some("parity") => "PARITY",
        Some("znode") => "ZNODE",
        Some("health") => "HEALTH",
        Some("counts") => "COUNTS",
        Some("ephemerals") => "EPHEMERALS",
        _ => "CHECK",
    }
}
