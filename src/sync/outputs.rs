//! A sync's lag where operators already look: a node_exporter textfile
//! (Prometheus), passive check results (Nagios, Icinga's command pipe) and
//! gmetric packets (Ganglia), each optional, each fed by the same
//! [`SyncEvent`]s as the progress lines.
//!
//! The figures are published every second as well ([`Outputs::tick`]),
//! with the lag measured then: it keeps growing while no pass completes.
//! At the end, [`Outputs::finish`] sends the verdict (or why sync stopped
//! without one), so that nothing is left saying "following".
//!
//! None of them can stop a sync: a file that cannot be written or a pipe
//! without reader is said once on stderr and tried again next time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::gmetric::parity::pair_host;
use crate::gmetric::{Metric, Sender, Spoof, Value};
use crate::nagios::output::{CheckResult, Perf, State};
use crate::prometheus::exposition::{Exposition, Format, Kind};

use super::{Live, SyncEvent, SyncObserver};

/// Passive results go at most this often (and on every change of state or
/// phase).
const NAGIOS_EVERY: Duration = Duration::from_secs(10);

/// Where a sync's figures go.
pub struct Outputs {
    pub pair: String,
    pub textfile: Option<PathBuf>,
    pub nagios: Option<NagiosOut>,
    pub ganglia: Option<Sender>,
    live: Arc<Live>,
    figures: Figures,
    /// When the last passive result went, its state and phase.
    last_nagios: Option<(Instant, State, &'static str)>,
    failing: bool,
    /// The final result was sent: nothing may replace it.
    finished: bool,
}

/// How a sync ended, for its last figures and passive result.
#[derive(Clone, Debug)]
pub enum End {
    /// The final compare found the target identical.
    Identical,
    /// It found this many differences (conflicts included).
    Different { differences: u64 },
    /// Sync ended without a verdict: an error, a signal during the copy.
    Stopped { reason: String },
}

/// Passive results for one service; the lag thresholds make its state.
pub struct NagiosOut {
    pub command_file: PathBuf,
    pub host: String,
    pub service: String,
    pub lag_warning: Duration,
    pub lag_critical: Duration,
}

#[derive(Default)]
struct Figures {
    /// One of PHASES.
    phase: &'static str,
    lag_seconds: f64,
    pending: u64,
    changes: u64,
    passes: u64,
    retries: u64,
    conflicts: u64,
    /// Why the last pass failed, while it keeps failing.
    failing: Option<String>,
    /// Why the source, then the target, cannot be reached.
    unreachable: [Option<String>; 2],
    end: Option<End>,
}

/// `done`: the final compare ran (its verdict in
/// `zkparity_sync_identical`); `stopped`: sync ended without one.
const PHASES: [&str; 5] = ["copying", "following", "cutover", "done", "stopped"];

impl Outputs {
    pub fn new(
        pair: String,
        textfile: Option<PathBuf>,
        nagios: Option<NagiosOut>,
        ganglia: Option<Sender>,
        live: Arc<Live>,
    ) -> Outputs {
        Outputs {
            pair,
            textfile,
            nagios,
            ganglia,
            live,
            finished: false,
            figures: Figures {
                phase: "copying",
                ..Figures::default()
            },
            last_nagios: None,
            failing: false,
        }
    }

    fn take(&mut self, event: &SyncEvent) {
        let f = &mut self.figures;
        match event {
            SyncEvent::Copied { .. } => f.phase = "following",
            SyncEvent::Followed { changes, .. } => {
                f.changes += changes;
                f.passes += 1;
                f.failing = None;
            }
            SyncEvent::Conflict { action, .. } => {
                if *action == "stopped_following" {
                    f.conflicts += 1;
                }
            }
            SyncEvent::Retry { reason, .. } => {
                f.retries += 1;
                f.failing = Some(reason.clone());
            }
            SyncEvent::Watch { .. } => {}
            SyncEvent::Cutover { .. } => f.phase = "cutover",
        }
    }

    fn say(&mut self, what: String) {
        if !self.failing {
            eprintln!("zkparity sync: {what}");
        }
        self.failing = true;
    }

    fn textfile(&self) -> String {
        let f = &self.figures;
        let mut e = Exposition::new();
        let pair = || vec![("pair", self.pair.clone())];
        for phase in PHASES {
            e.add(
                "zkparity_sync_phase",
                "The phase a sync is in (1 for the current one).",
                Kind::Gauge,
                vec![("pair", self.pair.clone()), ("phase", phase.to_string())],
                if f.phase == phase { 1.0 } else { 0.0 },
            );
        }
        e.add(
            "zkparity_sync_lag_seconds",
            "Age of the oldest source change not yet copied, now.",
            Kind::Gauge,
            pair(),
            f.lag_seconds,
        );
        e.add(
            "zkparity_sync_pending_changes",
            "Changed source paths waiting to be copied.",
            Kind::Gauge,
            pair(),
            f.pending as f64,
        );
        e.add(
            "zkparity_sync_conflicts",
            "Target subtrees another writer changed, no longer followed.",
            Kind::Gauge,
            pair(),
            f.conflicts as f64,
        );
        e.add(
            "zkparity_sync_changes",
            "Changed source paths copied while following.",
            Kind::Counter,
            pair(),
            f.changes as f64,
        );
        e.add(
            "zkparity_sync_passes",
            "Copy passes made while following.",
            Kind::Counter,
            pair(),
            f.passes as f64,
        );
        e.add(
            "zkparity_sync_retries",
            "Passes that could not reach an ensemble and were retried.",
            Kind::Counter,
            pair(),
            f.retries as f64,
        );
        for (side, why) in ["source", "target"].iter().zip(&f.unreachable) {
            e.add(
                "zkparity_sync_unreachable",
                "1 while sync cannot reach this ensemble (its watch is down or a pass failed on it).",
                Kind::Gauge,
                vec![("pair", self.pair.clone()), ("side", side.to_string())],
                if why.is_some() { 1.0 } else { 0.0 },
            );
        }
        if let Some(end) = &f.end {
            let verdict = match end {
                End::Identical => Some((1.0, 0)),
                End::Different { differences } => Some((0.0, *differences)),
                End::Stopped { .. } => None,
            };
            if let Some((identical, differences)) = verdict {
                e.add(
                    "zkparity_sync_identical",
                    "1 if the final compare at cutover found the target identical, 0 if not (absent before it).",
                    Kind::Gauge,
                    pair(),
                    identical,
                );
                e.add(
                    "zkparity_sync_differences",
                    "Differences the final compare at cutover confirmed.",
                    Kind::Gauge,
                    pair(),
                    differences as f64,
                );
            }
        }
        e.add(
            "zkparity_sync_last_update_timestamp_seconds",
            "When these figures were written.",
            Kind::Gauge,
            pair(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        e.render(Format::Text)
    }

    fn check(&self, n: &NagiosOut) -> CheckResult {
        let f = &self.figures;
        let lag = f.lag_seconds;
        let (state, summary) = if let Some(end) = &f.end {
            match end {
                End::Identical => (State::Ok, "identical at cutover".to_string()),
                End::Different { differences } => (
                    State::Critical,
                    format!("different at cutover: {differences} difference(s)"),
                ),
                End::Stopped { reason } => (State::Critical, format!("sync stopped: {reason}")),
            }
        } else if f.conflicts > 0 {
            (
                State::Critical,
                format!(
                    "{} subtree(s) changed on the target by another writer, no longer followed",
                    f.conflicts
                ),
            )
        } else if let Some((side, why)) = ["source", "target"]
            .iter()
            .zip(&f.unreachable)
            .find_map(|(side, why)| Some((side, why.as_ref()?)))
        {
            (
                State::Critical,
                format!(
                    "the {side} cannot be reached ({why}); lag {lag:.1} s, {} change(s) waiting",
                    f.pending
                ),
            )
        } else if let Some(reason) = &f.failing {
            (
                State::Critical,
                format!("cannot copy: {reason}; {} change(s) waiting", f.pending),
            )
        } else {
            let state = if lag >= n.lag_critical.as_secs_f64() {
                State::Critical
            } else if lag >= n.lag_warning.as_secs_f64() {
                State::Warning
            } else {
                State::Ok
            };
            (
                state,
                format!("{}, lag {lag:.1} s, {} pending", f.phase, f.pending),
            )
        };
        let seconds = |d: Duration| Some(format!("{}", d.as_secs_f64()));
        CheckResult {
            check: "SYNC",
            state,
            summary,
            perfdata: vec![
                Perf {
                    label: "lag".into(),
                    value: lag,
                    uom: "s",
                    warn: seconds(n.lag_warning),
                    crit: seconds(n.lag_critical),
                    min: Some(0.0),
                    max: None,
                },
                Perf::count("pending", f.pending),
                Perf::count("conflicts", f.conflicts),
                Perf::count("changes", f.changes),
            ],
            long_output: Vec::new(),
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        let f = &self.figures;
        let host: Spoof = pair_host(&self.pair);
        let metric = |name: &str, value: Value, units: &str, title: &str| {
            let mut m = Metric::new(name, value);
            m.units = units.into();
            m.groups = vec!["zkparity".into()];
            m.title = title.into();
            m.spoof = Some(host.clone());
            m
        };
        vec![
            metric(
                "zkparity_sync_lag",
                Value::Double(f.lag_seconds, 1),
                "seconds",
                "sync lag",
            ),
            metric(
                "zkparity_sync_pending",
                Value::U32(f.pending.min(u32::MAX as u64) as u32),
                "changes",
                "sync pending changes",
            ),
            metric(
                "zkparity_sync_conflicts",
                Value::U32(f.conflicts.min(u32::MAX as u64) as u32),
                "subtrees",
                "sync conflicts",
            ),
            metric(
                "zkparity_sync_changes",
                Value::Double(f.changes as f64, 0),
                "changes",
                "sync changes copied",
            ),
        ]
    }

    /// Publishes the figures as they stand now (every second while sync
    /// runs), unless the final result was sent.
    pub fn tick(&mut self) {
        if !self.finished {
            self.publish(false);
        }
    }

    /// The last figures and passive result, sent at once.
    pub fn finish(&mut self, end: End) {
        if self.finished {
            return;
        }
        let f = &mut self.figures;
        f.phase = match end {
            End::Stopped { .. } => "stopped",
            _ => "done",
        };
        f.end = Some(end);
        self.publish(true);
        self.finished = true;
    }

    fn refresh(&mut self) {
        let live = self.live.now();
        let f = &mut self.figures;
        f.lag_seconds = (live.lag_seconds() * 1000.0).round() / 1000.0;
        f.pending = live.pending;
        f.unreachable = live.unreachable;
        // A verdict means nothing waits; a stopped sync keeps what waited.
        if matches!(f.end, Some(End::Identical | End::Different { .. })) {
            f.lag_seconds = 0.0;
            f.unreachable = [None, None];
        }
    }

    fn publish(&mut self, now: bool) {
        self.refresh();
        if let Some(path) = self.textfile.clone() {
            let text = self.textfile();
            if let Err(e) = crate::prometheus::textfile::write(&path, &text) {
                self.say(e.to_string());
            }
        }
        if let Some(n) = &self.nagios {
            let result = self.check(n);
            let due = match self.last_nagios {
                None => true,
                Some((at, state, phase)) => {
                    now || state != result.state
                        || phase != self.figures.phase
                        || at.elapsed() >= NAGIOS_EVERY
                }
            };
            if due {
                let epoch = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let line =
                    crate::nagios::passive::command_line(epoch, &n.host, &n.service, &result);
                let path = n.command_file.clone();
                match crate::nagios::passive::submit(&path, &line) {
                    Ok(()) => {
                        self.last_nagios = Some((Instant::now(), result.state, self.figures.phase))
                    }
                    Err(e) => self.say(e.to_string()),
                }
            }
        }
        let metrics = self.metrics();
        if let Some(sender) = &mut self.ganglia {
            let sent = sender.send(&metrics);
            if let Some(e) = sent.errors.first() {
                let e = e.to_string();
                self.say(e);
            }
        }
    }
}

impl SyncObserver for Outputs {
    fn event(&mut self, event: &SyncEvent) {
        if self.finished {
            return;
        }
        self.take(event);
        self.publish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::LiveState;

    fn outputs(dir: &std::path::Path, live: Arc<Live>) -> Outputs {
        std::fs::write(dir.join("nagios.cmd"), "").unwrap();
        Outputs::new(
            "p".into(),
            Some(dir.join("sync.prom")),
            Some(NagiosOut {
                command_file: dir.join("nagios.cmd"),
                host: "h".into(),
                service: "s".into(),
                lag_warning: Duration::from_secs(30),
                lag_critical: Duration::from_secs(120),
            }),
            None,
            live,
        )
    }

    fn read(dir: &std::path::Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn the_lag_is_the_oldest_changes_age_when_published_not_at_the_last_pass() {
        let dir = tempfile::tempdir().unwrap();
        let live = Arc::new(Live::default());
        let mut o = outputs(dir.path(), live.clone());
        o.event(&SyncEvent::Copied {
            actions: 0,
            applied: 0,
            elapsed_seconds: 0.0,
        });
        live.set(LiveState {
            oldest: Some(Instant::now() - Duration::from_secs(200)),
            pending: 7,
            unreachable: [None, Some("connection refused".into())],
        });
        o.tick();
        let text = read(dir.path(), "sync.prom");
        let lag: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("zkparity_sync_lag_seconds{pair=\"p\"} "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(lag >= 200.0, "{text}");
        assert!(
            text.contains("zkparity_sync_pending_changes{pair=\"p\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("zkparity_sync_unreachable{pair=\"p\",side=\"target\"} 1"),
            "{text}"
        );
        let last = read(dir.path(), "nagios.cmd");
        assert!(
            last.lines()
                .last()
                .unwrap()
                .contains(";2;ZKPARITY SYNC CRITICAL - the target cannot be reached"),
            "{last}"
        );
    }

    #[test]
    fn the_final_result_says_the_verdict_and_nothing_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = outputs(dir.path(), Arc::new(Live::default()));
        o.tick();
        o.finish(End::Different { differences: 3 });
        o.tick();
        o.event(&SyncEvent::Cutover {
            reason: "late".into(),
        });
        let lines = read(dir.path(), "nagios.cmd");
        let last = lines.lines().last().unwrap();
        assert!(
            last.contains(";h;s;2;ZKPARITY SYNC CRITICAL - different at cutover: 3 difference(s)"),
            "{lines}"
        );
        assert_eq!(lines.lines().count(), 2, "{lines}");
        let text = read(dir.path(), "sync.prom");
        assert!(
            text.contains("zkparity_sync_phase{pair=\"p\",phase=\"done\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("zkparity_sync_identical{pair=\"p\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("zkparity_sync_differences{pair=\"p\"} 3"),
            "{text}"
        );
    }

    #[test]
    fn a_sync_ending_without_a_verdict_is_critical_and_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = outputs(dir.path(), Arc::new(Live::default()));
        o.finish(End::Stopped {
            reason: "interrupted".into(),
        });
        let lines = read(dir.path(), "nagios.cmd");
        assert!(
            lines.contains(";2;ZKPARITY SYNC CRITICAL - sync stopped: interrupted"),
            "{lines}"
        );
        let text = read(dir.path(), "sync.prom");
        assert!(
            text.contains("zkparity_sync_phase{pair=\"p\",phase=\"stopped\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("zkparity_sync_identical"),
            "no verdict: {text}"
        );
    }
}
