//! A sync's lag where operators already look: a node_exporter textfile
//! (Prometheus), passive check results (Nagios, Icinga's command pipe) and
//! gmetric packets (Ganglia), each optional, each fed by the same
//! [`SyncEvent`]s as the progress lines.
//!
//! None of them can stop a sync: a file that cannot be written or a pipe
//! without reader is said once on stderr and tried again next time.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::gmetric::parity::pair_host;
use crate::gmetric::{Metric, Sender, Spoof, Value};
use crate::nagios::output::{CheckResult, Perf, State};
use crate::prometheus::exposition::{Exposition, Format, Kind};

use super::{SyncEvent, SyncObserver};

/// Passive results go at most this often (and on every state change).
const NAGIOS_EVERY: Duration = Duration::from_secs(10);

/// Where a sync's figures go.
pub struct Outputs {
    pub pair: String,
    pub textfile: Option<PathBuf>,
    pub nagios: Option<NagiosOut>,
    pub ganglia: Option<Sender>,
    figures: Figures,
    last_nagios: Option<(Instant, State)>,
    failing: bool,
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
    /// copying, following, cutover
    phase: &'static str,
    lag_seconds: f64,
    pending: u64,
    changes: u64,
    passes: u64,
    retries: u64,
    conflicts: u64,
    /// Why the last pass failed, while it keeps failing.
    failing: Option<String>,
}

impl Outputs {
    pub fn new(
        pair: String,
        textfile: Option<PathBuf>,
        nagios: Option<NagiosOut>,
        ganglia: Option<Sender>,
    ) -> Outputs {
        Outputs {
            pair,
            textfile,
            nagios,
            ganglia,
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
            SyncEvent::Followed {
                changes,
                pending,
                lag_seconds,
                ..
            } => {
                f.changes += changes;
                f.passes += 1;
                f.pending = *pending;
                f.lag_seconds = *lag_seconds;
                f.failing = None;
            }
            SyncEvent::Conflict { action, .. } => {
                if *action == "stopped_following" {
                    f.conflicts += 1;
                }
            }
            SyncEvent::Retry {
                reason, pending, ..
            } => {
                f.retries += 1;
                f.pending = *pending;
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
        for phase in ["copying", "following", "cutover"] {
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
            "Age of the oldest source change not yet copied when the last pass began.",
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
        let (state, summary) = if f.conflicts > 0 {
            (
                State::Critical,
                format!(
                    "{} subtree(s) changed on the target by another writer, no longer followed",
                    f.conflicts
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

    fn publish(&mut self) {
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
                Some((at, state)) => state != result.state || at.elapsed() >= NAGIOS_EVERY,
            };
            if due {
                let epoch = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let line = crate::agent::passive::command_line(epoch, &n.host, &n.service, &result);
                let path = n.command_file.clone();
                match crate::agent::passive::submit(&path, &line) {
                    Ok(()) => self.last_nagios = Some((Instant::now(), result.state)),
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
        self.take(event);
        self.publish();
    }
}
