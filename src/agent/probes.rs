//! The four-letter-word probes of a pair's two ensembles, on their own
//! interval (`probe_interval`), beside the pair's rounds.
//!
//! Each probe asks every server of the source and the target for its health
//! (see [`crate::probe`]) and writes the whole report, as `zkparity probe
//! --format json` prints it (schema: `docs/probe-json.md`), to
//! `<state_dir>/<pair>.probe.json`, atomically like the state file. The log
//! says when the verdict changes, with the reasons. With `[[ganglia]]`
//! channels, every server's metrics go out too, each server as its own host
//! (see [`crate::gmetric::servers`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::durable;
use crate::gmetric::{servers, Channel, Sender, SenderOptions, Timing};
use crate::probe::{self, ProbeOptions, ProbeReport};

use crate::nagios::health::HealthCheck;

use super::config::{NagiosOutput, PairConfig};
use super::round::Globals;
use super::schedule;
use crate::nagios::passive;
use crate::stop::stopped;

/// Reasons named in a log line; the file has them all.
const LOGGED_REASONS: usize = 5;

/// `<state_dir>/<pair>.probe.json`.
pub(crate) fn probe_path(state_dir: &Path, pair: &str) -> PathBuf {
    state_dir.join(format!("{pair}.probe.json"))
}

/// What the log last said, so it speaks of changes.
fn summary(report: &ProbeReport) -> (bool, Vec<String>) {
    let reasons = report
        .views()
        .flat_map(|v| {
            v.reasons
                .iter()
                .map(move |r| format!("{}: {}", v.side, r.message))
        })
        .collect();
    (report.healthy, reasons)
}

/// Sends the servers' metrics; a sender is kept while the channels stay the
/// same (a reload may change them).
struct ServerMetrics {
    sender: Option<(Vec<Channel>, Sender)>,
    started_epoch: u32,
    failing: bool,
}

impl ServerMetrics {
    fn new() -> ServerMetrics {
        let started_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        ServerMetrics {
            sender: None,
            started_epoch,
            failing: false,
        }
    }

    fn send(&mut self, pair: &str, channels: &[Channel], report: &ProbeReport, gap: u32) {
        if channels.is_empty() {
            self.sender = None;
            return;
        }
        if !matches!(&self.sender, Some((c, _)) if c == channels) {
            match Sender::new(channels.to_vec(), SenderOptions::default()) {
                Ok(sender) => self.sender = Some((channels.to_vec(), sender)),
                Err(e) => {
                    error!(pair = %pair, error = %e, "Ganglia output for the servers not set up");
                    return;
                }
            }
        }
        let Some((_, sender)) = self.sender.as_mut() else {
            return;
        };
        let timing = Timing {
            tmax: gap.max(1),
            dmax: 0,
        };
        let metrics = servers::round_metrics(
            report.views().flat_map(|v| v.servers.iter()),
            timing,
            self.started_epoch,
        );
        let sent = sender.send(&metrics);
        if sent.error_count > 0 && !self.failing {
            warn!(pair = %pair, errors = sent.error_count, "server metrics not sent");
        }
        self.failing = sent.error_count > 0;
    }
}

/// The Nagios service the probes' passive results go to: the pair's own
/// service name with ` health` after it.
pub(crate) fn health_service(cfg: &PairConfig) -> String {
    format!("{} health", cfg.nagios_service)
}

/// Sends the probe's verdict as a passive `check health` result (its default
/// thresholds); returns whether Nagios could not be reached, so that an
/// outage is logged at `warn` once.
async fn send_health(
    cfg: &PairConfig,
    n: &NagiosOutput,
    report: &ProbeReport,
    was_failing: bool,
) -> bool {
    let result = HealthCheck::default().judge_report(report);
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let line = passive::command_line(epoch, &n.host_name, &health_service(cfg), &result);
    let file = n.command_file.clone();
    match tokio::task::spawn_blocking(move || passive::submit(&file, &line)).await {
        Ok(Ok(())) => false,
        Ok(Err(e)) => {
            if was_failing {
                debug!(pair = %cfg.name, error = %e, "passive health result skipped");
            } else {
                warn!(pair = %cfg.name, error = %e, "passive health result skipped");
            }
            true
        }
        Err(e) => {
            error!(pair = %cfg.name, error = %e, "passive result writer failed");
            true
        }
    }
}

/// Probes `cfg`'s ensembles until told to stop; idle while probes are off
/// (a reload may turn them on).
pub(crate) async fn run_probes(
    cfg: Arc<PairConfig>,
    mut globals: watch::Receiver<Arc<Globals>>,
    mut stop: watch::Receiver<bool>,
) {
    // A side that is files has no servers to probe.
    let Some([source, target]) = cfg.live() else {
        return;
    };
    let (source, target) = (source.connect.clone(), target.connect.clone());
    let mut said: Option<(bool, Vec<String>)> = None;
    let mut next: Option<Instant> = None;
    let mut ganglia = ServerMetrics::new();
    let mut nagios_failing = false;
    loop {
        let settings = globals.borrow_and_update().probes;
        let Some(settings) = settings else {
            next = None;
            tokio::select! {
                changed = globals.changed() => if changed.is_err() { return },
                _ = stopped(&mut stop) => return,
            }
            continue;
        };
        let spread = settings
            .interval
            .mul_f64(super::config::DEFAULT_JITTER_FRACTION);
        let at = *next.get_or_insert_with(|| Instant::now() + schedule::jitter(spread));
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            // A reload: look at the settings again.
            changed = globals.changed() => { if changed.is_err() { return } continue }
            _ = stopped(&mut stop) => return,
        }
        let started = Instant::now();
        let options = ProbeOptions {
            timeout: settings.timeout,
            via: settings.via,
            source_admin: cfg.source_admin.clone(),
            target_admin: cfg.target_admin.clone(),
            ..ProbeOptions::default()
        };
        let report = tokio::select! {
            r = probe::probe(&source, Some(&target), &options) => r,
            _ = stopped(&mut stop) => return,
        };
        let gap = (settings.interval + spread).as_secs_f64().ceil() as u32;
        let channels = globals.borrow().ganglia.clone();
        ganglia.send(&cfg.name, &channels, &report, gap);
        let current = globals.borrow().clone();
        if let Some(registry) = &current.prometheus {
            registry.probed(&cfg.name, &report);
        }
        if let Some(n) = &current.nagios {
            nagios_failing = send_health(&cfg, n, &report, nagios_failing).await;
        }
        let path = probe_path(&globals.borrow().state_dir, &cfg.name);
        let json = probe::render::json(&report) + "\n";
        let shown = path.clone();
        // Not raced against `stop`: the file is always written whole.
        match tokio::task::spawn_blocking(move || {
            durable::write(&path, json.as_bytes(), durable::WORLD_READABLE)
        })
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                error!(pair = %cfg.name, file = %shown.display(), error = %e, "probe file not written")
            }
            Err(e) => error!(pair = %cfg.name, error = %e, "probe writer failed"),
        }
        let now = summary(&report);
        if said.as_ref() != Some(&now) {
            let (healthy, reasons) = &now;
            if *healthy {
                info!(pair = %cfg.name, "ensembles healthy (four-letter words)");
            } else {
                warn!(
                    pair = %cfg.name,
                    reasons = %reasons.iter().take(LOGGED_REASONS).cloned().collect::<Vec<_>>().join("; "),
                    more = reasons.len().saturating_sub(LOGGED_REASONS),
                    "ensembles unhealthy (four-letter words)"
                );
            }
        } else {
            debug!(pair = %cfg.name, healthy = now.0, "probed");
        }
        said = Some(now);
        next = Some(
            schedule::next_start(started, Instant::now(), settings.interval)
                + schedule::jitter(spread),
        );
    }
}
