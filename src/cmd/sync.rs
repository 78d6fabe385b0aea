//! `zkparity sync`: copy, follow the source until cutover, prove identical.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use zkparity::error::Error;
use zkparity::gmetric::{Channel, Sender, SenderOptions};
use zkparity::progress::Progress;
use zkparity::repair::RepairOptions;
use zkparity::sync::outputs::{End, NagiosOut, Outputs};
use zkparity::sync::{Live, SyncEvent, SyncObserver, SyncOptions, SyncOutcome};

use super::args::{written_target, CopyArgs, Format, SafetyArgs, WriteArgs};
use super::stdout::emit;
use super::values::DURATION;

pub const SYNC_HELP: &str = "\
Examples:
  zkparity sync --source old:2181 --target new:2181 --path /kafka
  zkparity sync --source old:2181 --target new:2181 --path /kafka --apply
  zkparity sync --source old:2181 --target new:2181 --apply --until-quiet 30s --format json

Without --apply nothing is written: the initial copy's plan is printed, as
'zkparity repair' prints it. With --apply: the initial copy (as repair --apply,
with its refusals and backup: data, ACLs, node kinds, sequence counters; never
an ephemeral, never a write to the source; nodes on the target only are kept
unless --delete-extra), then following: a persistent recursive watch on
the source names what changes, and once a change has been quiet for --settle
(or waited --max-wait) its subtree is copied the same way. ACL changes fire no
watch: a full pass every --verify-every copies them. Servers before 3.6 cannot
watch: a full pass every --poll-every instead.

A write on the target that sync did not make is a conflict: that subtree is
reported and no longer followed (left as the other writer left it), unless
--force, which copies the source over it again.

A signal during the initial copy stops it at once (exit 130 or 143). Once
following, on SIGINT or SIGTERM, or once the source has been quiet for
--until-quiet, sync cuts over: it copies what is pending, compares the two
sides and exits; a second signal during the cutover stops at once. A source
root that disappears while followed stops sync, and the target keeps its tree.
Progress (lag, pending changes) goes to stderr, one line every 5 s at most
summing up the passes since the last one (every pass with --verbose);
conflicts, retries, watch changes and the cutover are said at once.
--format json prints one JSON line per event on stdout, then the final
compare's report.

While following, sync keeps a snapshot of the source holding its
ephemerals as last seen (taken after the initial copy and after each
periodic full pass; one with no ephemerals, the writers gone, does not
replace it): at cutover it is the --expect of 'zkparity check ephemerals'
on the target (--expect-out, by default in --backup-dir).

The monitoring outputs (--prometheus-textfile, --nagios-command-file,
--ganglia) are published every second, the lag measured then. At the end
they get the verdict: OK 'identical at cutover', CRITICAL 'different at
cutover', or CRITICAL 'sync stopped: REASON' when sync ends without one.

Exit codes: 0 the target was proved identical at cutover (a dry run: nothing
to do), 1 it differs (or a dry run found work), 2 usage or connection error,
or a write refused before it began.";

#[derive(Args, Clone, Debug)]
// Both sides are live: sync watches the one and writes the other.
#[command(mut_arg("source", |a| a
    .value_name("CONNECT")
    .help("Source ensemble, followed (only read): host:port[,host:port...][/chroot]")),
    mut_arg("target", written_target),
    mut_arg("apply", |a| a.help("Write to the target; without it only the initial plan is printed")))]
pub struct SyncArgs {
    #[command(flatten)]
    copy: CopyArgs,
    /// Copy a changed path once it has been quiet this long
    #[arg(long, default_value = "500ms", value_name = "DURATION", value_parser = DURATION)]
    settle: Duration,
    /// ...or once it has waited this long, however busy
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = DURATION)]
    max_wait: Duration,
    /// A full pass this often (ACL changes fire no watch)
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = DURATION)]
    verify_every: Duration,
    /// Servers before 3.6 (no persistent watches): a full pass this often
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = DURATION)]
    poll_every: Duration,
    /// Cut over once the source has been quiet this long
    #[arg(long, value_name = "DURATION", value_parser = DURATION)]
    until_quiet: Option<Duration>,
    /// Copy over subtrees someone else changed on the target
    #[arg(long)]
    force: bool,
    /// Also delete what is on the target only when the copy starts (never
    /// ephemerals); without it such nodes are kept and reported. What the
    /// source deletes while followed is deleted on the target either way
    #[arg(long)]
    delete_extra: bool,
    /// Create the target's chroot or --path when it does not exist (without
    /// it, a sync to a path that is not there is refused: a mistyped chroot
    /// would otherwise receive the whole tree)
    #[arg(long)]
    create_path: bool,
    #[command(flatten)]
    writes: WriteArgs,
    #[command(flatten)]
    safety: SafetyArgs,
    /// Also keep the sync's figures (lag, pending, conflicts, ...) in FILE
    /// for node_exporter's textfile collector (replaced atomically)
    #[arg(long, value_name = "FILE")]
    prometheus_textfile: Option<PathBuf>,
    /// Send passive check results (service state from the lag) to this
    /// Nagios command file (or Icinga's command pipe)
    #[arg(long, value_name = "FILE")]
    nagios_command_file: Option<PathBuf>,
    /// The Nagios host of those results
    #[arg(long, value_name = "NAME", default_value = "zk-migration")]
    nagios_host: String,
    /// The Nagios service of those results [default: zkparity sync PAIR]
    #[arg(long, value_name = "NAME")]
    nagios_service: Option<String>,
    /// WARNING once the lag reaches this
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = DURATION)]
    lag_warning: Duration,
    /// CRITICAL once the lag reaches this (and for conflicts, or when no
    /// pass can reach an ensemble)
    #[arg(long, default_value = "2m", value_name = "DURATION", value_parser = DURATION)]
    lag_critical: Duration,
    /// Send the figures to gmond's gmetric channel HOST[:PORT] (repeatable;
    /// port 8649 by default)
    #[arg(long, value_name = "HOST[:PORT]")]
    ganglia: Vec<String>,
    /// The name of this source/target pair in those outputs (default: the
    /// first server of each side, e.g. zk-old-1_2181--zk-new-1_2181)
    #[arg(long, value_name = "NAME")]
    pair_name: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// No progress on stderr
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// A progress line for every pass (without it: one every 5 s at most)
    #[arg(short, long)]
    verbose: bool,
    /// Keep the source's ephemerals, as last seen while the applications
    /// were connected, in FILE (a snapshot, for `zkparity check ephemerals
    /// --expect`) [default: zkparity-expect-SERVER-TIME-PID.zkps in
    /// --backup-dir]
    #[arg(long, value_name = "FILE")]
    expect_out: Option<PathBuf>,
}

/// Progress lines while following, at most one this often without
/// --verbose.
const SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// The passes not yet said on stderr.
#[derive(Default)]
struct Unsaid {
    passes: u64,
    changes: u64,
    applied: u64,
    lag_seconds: f64,
    pending: u64,
}

/// Events as progress lines on stderr, or JSON lines on stdout; and to
/// the monitoring outputs asked for.
struct Output {
    json: bool,
    quiet: bool,
    verbose: bool,
    outputs: Option<Arc<Mutex<Outputs>>>,
    unsaid: Unsaid,
    last_line: Option<Instant>,
}

fn locked(o: &Mutex<Outputs>) -> std::sync::MutexGuard<'_, Outputs> {
    // Outputs hold figures only: a panic elsewhere leaves them usable.
    o.lock().unwrap_or_else(|e| e.into_inner())
}

impl Output {
    /// The passes since the last line, if any, as one line.
    fn flush(&mut self) {
        let u = std::mem::take(&mut self.unsaid);
        if u.passes == 0 {
            return;
        }
        self.last_line = Some(Instant::now());
        eprintln!(
            "zkparity sync: followed {} change(s) in {} pass(es) ({} writes); lag {:.1} s, {} pending",
            u.changes, u.passes, u.applied, u.lag_seconds, u.pending
        );
    }

    /// Whether a pass's line waits to be summed up with the next ones.
    fn held(&mut self, event: &SyncEvent) -> bool {
        let SyncEvent::Followed {
            changes,
            applied,
            pending,
            lag_seconds,
            full: false,
            ..
        } = event
        else {
            return false;
        };
        if self.verbose {
            return false;
        }
        let u = &mut self.unsaid;
        u.passes += 1;
        u.changes += changes;
        u.applied += applied;
        u.lag_seconds = u.lag_seconds.max(*lag_seconds);
        u.pending = *pending;
        if self
            .last_line
            .map_or(true, |at| at.elapsed() >= SUMMARY_EVERY)
        {
            self.flush();
        }
        true
    }
}

impl Output {
    fn flush_if_text(&mut self) {
        if !self.json && !self.quiet {
            self.flush();
        }
    }
}

impl SyncObserver for Output {
    fn event(&mut self, event: &SyncEvent) {
        if let Some(o) = &self.outputs {
            locked(o).event(event);
        }
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                let _ = emit(&format!("{line}\n"));
            }
            return;
        }
        if self.quiet || self.held(event) {
            return;
        }
        self.flush();
        self.last_line = Some(Instant::now());
        let line = match event {
            SyncEvent::Copied {
                actions,
                applied,
                elapsed_seconds,
            } => format!(
                "initial copy done: {actions} actions planned, {applied} applied in {elapsed_seconds:.1} s; following the source"
            ),
            SyncEvent::Followed {
                subtrees,
                changes,
                applied,
                pending,
                lag_seconds,
                elapsed_seconds,
                full,
            } => format!(
                "{} {changes} change(s) in {} ({applied} writes, {elapsed_seconds:.2} s); lag {lag_seconds:.1} s, {pending} pending",
                if *full { "full pass:" } else { "followed" },
                subtrees.join(", ")
            ),
            SyncEvent::Conflict { path, action } => format!(
                "CONFLICT: {path} was changed on the target by another writer; {}",
                if *action == "copying_over" {
                    "copying the source over it (--force)"
                } else {
                    "no longer following it (--force copies over)"
                }
            ),
            SyncEvent::Watch { side, state } => format!("{side} watch: {state}"),
            SyncEvent::Retry {
                reason,
                retry_in_seconds,
                pending,
            } => format!(
                "pass failed ({reason}); {pending} change(s) kept, retrying in {retry_in_seconds:.1} s"
            ),
            SyncEvent::Cutover { reason } => {
                format!("cutover ({reason}): pending changes copied; comparing")
            }
        };
        eprintln!("zkparity sync: {line}");
    }
}

pub async fn run(a: SyncArgs) -> Result<i32, Error> {
    // Its watch sessions follow the source from any server.
    let ensembles = &a.copy.ensembles;
    // Its watch sessions follow the source from any server.
    super::args::refuse_read_from(ensembles, "sync")?;
    let options = a.copy.walk.compare_options(ensembles)?;
    let sides = ensembles.sides()?;
    let sync = sync_options(&a, &sides, &options.path)?;
    let json = matches!(a.format, Format::Json);
    let outputs = outputs(&a, sync.live.clone())?.map(|o| Arc::new(Mutex::new(o)));
    let mut output = Output {
        json,
        quiet: a.quiet,
        verbose: a.verbose,
        outputs: outputs.clone(),
        unsaid: Unsaid::default(),
        last_line: None,
    };
    // The figures on a timer too: a pass that hangs or keeps failing must
    // not freeze the lag where the last one left it. A dry run has none.
    let ticker = outputs.clone().filter(|_| a.copy.apply).map(|o| {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                locked(&o).tick();
            }
        })
    });
    let mut progress = Progress::auto(a.quiet || json);
    // SIGINT or SIGTERM abandons the initial copy, and once following
    // starts the cutover; a second one during the cutover stops at once.
    let at_exit = outputs.clone();
    let (stop_rx, signals) = super::interrupt::first_stops(move |signal| {
        let stopped = Error::Stopped {
            signal,
            after: "a second signal during the cutover: pending writes abandoned; what was written stays".into(),
        };
        eprintln!("zkparity sync: {stopped}");
        if let Some(o) = &at_exit {
            locked(o).finish(End::Stopped {
                reason: stopped.to_string(),
            });
        }
        std::process::exit(stopped.exit_code());
    });
    let outcome =
        zkparity::sync::run(sides, options, &sync, &mut progress, &mut output, stop_rx).await;
    signals.abort();
    if let Some(t) = ticker {
        t.abort();
    }
    output.flush_if_text();
    if let (Some(o), true) = (&outputs, a.copy.apply) {
        locked(o).finish(match &outcome {
            Ok(SyncOutcome {
                verification: Some(report),
                ..
            }) if report.summary.identical => End::Identical,
            Ok(SyncOutcome {
                verification: Some(report),
                ..
            }) => End::Different {
                differences: report.summary.confirmed + report.summary.unreadable,
            },
            Ok(_) => End::Stopped {
                reason: "no final compare".into(),
            },
            Err(e) => End::Stopped {
                reason: e.to_string(),
            },
        });
    }
    let outcome = outcome?;
    emit(&render(&outcome, json)?)?;
    Ok(outcome.exit_code())
}

/// The initial copy's and the following's options from the flags.
fn sync_options(
    a: &SyncArgs,
    sides: &(zkparity::source::SideSpec, zkparity::source::SideSpec),
    path: &str,
) -> Result<SyncOptions, Error> {
    let repair = RepairOptions {
        apply: a.copy.apply,
        delete_extra: a.delete_extra,
        delete_also: Default::default(),
        create_path: a.create_path,
        resume: None,
        max_writes_per_second: a.writes.max_writes_per_second,
        write_batch_size: a.writes.write_batch_size,
        writes_in_flight: a.writes.writes_in_flight,
        limit: 50,
        show_acl_ids: false,
        verify: false,
        first_write: Some(zkparity::repair::FirstWrite {
            announce: !a.quiet,
            ..a.safety.first_write("sync", &sides.1)
        }),
    };
    repair.validate(path)?;
    Ok(SyncOptions {
        repair,
        settle: a.settle,
        max_wait: a.max_wait,
        verify_every: a.verify_every,
        poll_every: a.poll_every,
        until_quiet: a.until_quiet,
        force: a.force,
        live: Arc::new(Live::default()),
        expect_out: a.copy.apply.then(|| {
            a.expect_out
                .clone()
                .unwrap_or_else(|| zkparity::sync::expect_file_in(&a.safety.backup_dir, &sides.0))
        }),
    })
}

/// The monitoring outputs the flags ask for, if any.
fn outputs(a: &SyncArgs, live: Arc<Live>) -> Result<Option<Outputs>, Error> {
    if a.prometheus_textfile.is_none() && a.nagios_command_file.is_none() && a.ganglia.is_empty() {
        return Ok(None);
    }
    let pair = a.pair_name.clone().unwrap_or_else(|| {
        zkparity::gmetric::parity::default_pair_name(
            &a.copy.ensembles.source,
            &a.copy.ensembles.target,
        )
    });
    let nagios = a.nagios_command_file.as_ref().map(|file| NagiosOut {
        command_file: file.clone(),
        host: a.nagios_host.clone(),
        service: a
            .nagios_service
            .clone()
            .unwrap_or_else(|| format!("zkparity sync {pair}")),
        lag_warning: a.lag_warning,
        lag_critical: a.lag_critical,
    });
    let ganglia = if a.ganglia.is_empty() {
        None
    } else {
        let channels = a
            .ganglia
            .iter()
            .map(|c| Channel::resolve(c, 1))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Usage(e.to_string()))?;
        Some(
            Sender::new(channels, SenderOptions::default())
                .map_err(|e| Error::Usage(e.to_string()))?,
        )
    };
    Ok(Some(Outputs::new(
        pair,
        a.prometheus_textfile.clone(),
        nagios,
        ganglia,
        live,
    )))
}

fn render(o: &SyncOutcome, json: bool) -> Result<String, Error> {
    Ok(match (&o.verification, json) {
        (None, false) => o.initial.text_as("sync"),
        (None, true) => o.initial.json(),
        (Some(report), true) => {
            let summary = serde_json::json!({
                "event": "verified",
                "passes": o.passes,
                "changes_followed": o.changes_followed,
                "followed_seconds": (o.followed_seconds * 10.0).round() / 10.0,
                "conflicts": o.conflicts,
                "expect_file": o.expected.as_ref().map(|e| e.file.display().to_string()),
                "expect_ephemerals": o.expected.as_ref().map(|e| e.ephemerals),
                "expect_created_unix": o.expected.as_ref().map(|e| e.created_unix),
            });
            // One line, as every event before it.
            let report: serde_json::Value =
                serde_json::from_str(&zkparity::report::json::render(report))
                    .map_err(|e| Error::Usage(format!("the report is not JSON ({e})")))?;
            format!("{summary}\n{report}\n")
        }
        (Some(report), false) => {
            let mut text = format!(
                "Followed the source for {:.1} s: {} change(s) in {} pass(es).\n",
                o.followed_seconds, o.changes_followed, o.passes
            );
            if !o.conflicts.is_empty() {
                text += &format!(
                    "Conflicts (changed on the target by another writer, not followed): {}\n",
                    o.conflicts.join(", ")
                );
            }
            text += &match &o.expected {
                Some(e) => format!(
                    "Expected registrations: {} ephemeral(s) as of {} in {} (zkparity check ephemerals --expect {} --target ...)\n",
                    e.ephemerals,
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + Duration::from_secs(e.created_unix)
                    ),
                    e.file.display(),
                    e.file.display()
                ),
                None => "Expected registrations: none (the source held no ephemerals while followed)\n".into(),
            };
            text += "\n";
            text + &zkparity::report::text::render(report)
        }
    })
}
