//! `zkparity agent`: a long-running process that compares ensemble pairs
//! round after round and reports each pair's standing to state files, Nagios
//! and logs.
//!
//! - [`config`]: the TOML configuration and its validation.
//! - [`round`]: one task per pair: rounds on their schedule, UNKNOWN on
//!   failure, early re-checks between them.
//! - [`recheck`]: re-checking only the subtrees that changed.
//! - [`report`]: the outputs of each round: state file, passive result,
//!   Ganglia, Prometheus, log.
//! - [`probes`]: the four-letter-word probes of each pair, on their own
//!   interval.
//! - [`registrations`]: `check ephemerals` for a pair with `expect`, run
//!   by its rounds.
//! - [`schedule`]: round start times and jitter.
//! - [`confirm`]: the confirmation window across rounds, and the lag.
//! - [`state`]: the per-pair state file (schema in `docs/agent.md`), written
//!   atomically, and [`state::read_state`] for its readers.
//! - [`verdict`]: the Nagios answer for a state, shared by the passive
//!   results and `check parity --state`.
//! - Passive results go through Nagios's external command file, with
//!   [`crate::nagios`].
//! - [`ganglia`]: each round's metrics to gmond, through [`crate::gmetric`].
//! - Prometheus: each round and probe is published to a
//!   [`crate::prometheus::Registry`] that `[prometheus] listen` serves.
//! - [`watch`]: persistent recursive watches on both sides, so rounds read
//!   only what changed and changes are re-checked early.
//! - [`logging`]: structured logs on stderr, with a level that a reload can
//!   change.
//!
//! This module is the supervisor: it starts a task per pair and answers the
//! stop and reload its caller gives it (the command line turns SIGTERM and
//! SIGINT into the stop, SIGHUP into a reload): a stop ends every pair (a
//! state file being written is finished first); a reload re-reads the
//! configuration, keeping the running one if the new one does not validate.

mod config;
mod confirm;
mod ganglia;
mod logging;
mod probes;
mod recheck;
mod registrations;
mod report;
mod round;
mod schedule;
pub mod verdict;
mod watch;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::error::StopSignal;
use crate::prometheus::Registry;
// The state files are what the agent leaves for its readers: they keep
// the name they have always had.
pub use crate::report::state;
use config::{AgentConfig, ConfigError, PairConfig};
use round::{run_pair, Globals, STOP_GRACE};

/// Why the agent did not start (or a configuration was refused).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StartError(Refusal);

#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error(transparent)]
    Config(ConfigError),
    /// The `/metrics` endpoint could not be served.
    #[error("{0}")]
    Metrics(String),
}

/// What `--check-config` found in a configuration that validates.
#[derive(Debug)]
pub struct ConfigSummary {
    pub pairs: Vec<String>,
    /// `nagios.command_file`, when one is configured and does not exist now.
    pub missing_command_file: Option<PathBuf>,
}

/// How a run of the agent ended: every pair stopped, no state file left
/// half written.
#[derive(Debug)]
pub struct Stopped {
    /// What asked for the stop.
    pub by: StopSignal,
    /// The pairs that were running then.
    pub pairs: Vec<String>,
}

/// `zkparity agent --check-config`: validates the configuration.
pub fn check_config(file: &Path) -> Result<ConfigSummary, StartError> {
    let c = AgentConfig::load(file).map_err(|e| StartError(Refusal::Config(e)))?;
    Ok(ConfigSummary {
        pairs: c.pairs.iter().map(|p| p.name.clone()).collect(),
        missing_command_file: c
            .nagios
            .as_ref()
            .filter(|n| !n.command_file.exists())
            .map(|n| n.command_file.clone()),
    })
}

fn globals(c: &mut AgentConfig, registry: &Arc<Registry>) -> Arc<Globals> {
    Arc::new(Globals {
        state_dir: c.state_dir.clone(),
        state_list_limit: c.state_list_limit,
        nagios: c.nagios.take(),
        ganglia: c.ganglia.clone(),
        prometheus: c.prometheus.map(|_| registry.clone()),
        probes: c.probes,
    })
}

/// The `/metrics` endpoint while one is configured.
struct Endpoint {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Endpoint {
    async fn start(addr: SocketAddr, registry: &Arc<Registry>) -> Result<Endpoint, String> {
        if !addr.ip().is_loopback() {
            warn!(listen = %addr, "Prometheus metrics are served beyond this host (not a loopback address)");
        }
        match crate::prometheus::http::serve(addr, registry.clone()).await {
            Ok((_, task)) => Ok(Endpoint { addr, task }),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Moves the endpoint to what a reloaded configuration says; a new
    /// address that cannot be bound keeps the old endpoint.
    async fn reload(
        slot: &mut Option<Endpoint>,
        wanted: Option<SocketAddr>,
        registry: &Arc<Registry>,
    ) {
        if slot.as_ref().map(|e| e.addr) == wanted {
            return;
        }
        let Some(addr) = wanted else {
            if let Some(old) = slot.take() {
                old.task.abort();
                info!(listen = %old.addr, "Prometheus metrics no longer served");
            }
            return;
        };
        // The old socket goes first: the new address may be the same port
        // on another interface.
        let old = match slot.take() {
            Some(old) => {
                old.task.abort();
                let _ = old.task.await;
                Some(old.addr)
            }
            None => None,
        };
        match Endpoint::start(addr, registry).await {
            Ok(e) => *slot = Some(e),
            Err(reason) => {
                error!(error = %reason, "Prometheus endpoint not moved");
                if let Some(old) = old {
                    match Endpoint::start(old, registry).await {
                        Ok(e) => *slot = Some(e),
                        Err(reason) => error!(error = %reason, "Prometheus endpoint lost"),
                    }
                }
            }
        }
    }
}

/// A pair's running tasks: its rounds and its probes.
struct Running {
    cfg: Arc<PairConfig>,
    stop: tokio::sync::watch::Sender<bool>,
    handles: [JoinHandle<()>; 2],
}

impl Running {
    fn start(cfg: PairConfig, globals: &tokio::sync::watch::Receiver<Arc<Globals>>) -> Running {
        let cfg = Arc::new(cfg);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let rounds = tokio::spawn(run_pair(cfg.clone(), globals.clone(), stop_rx.clone()));
        let probes = tokio::spawn(probes::run_probes(cfg.clone(), globals.clone(), stop_rx));
        Running {
            cfg,
            stop,
            handles: [rounds, probes],
        }
    }

    /// Asks the tasks to stop and waits for them (they finish a file write
    /// in progress, nothing more).
    async fn stop(self) {
        let _ = self.stop.send(true);
        let name = self.cfg.name.clone();
        for handle in self.handles {
            match tokio::time::timeout(STOP_GRACE, handle).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => error!(pair = %name, error = %e, "pair task failed"),
                Err(_) => error!(pair = %name, "pair task did not stop in time"),
            }
        }
    }
}

/// Runs the agent of the configuration in `file` until `stop` resolves,
/// re-reading the file at each message on `reload` (a closed channel only
/// means no more reloads). Fails only at the start: a configuration that
/// does not validate, or a `/metrics` address that cannot be bound.
pub async fn run(
    file: &Path,
    stop: impl Future<Output = StopSignal>,
    mut reload: mpsc::Receiver<()>,
) -> Result<Stopped, StartError> {
    let mut config = AgentConfig::load(file).map_err(|e| StartError(Refusal::Config(e)))?;
    let log = logging::init(config.log_level, config.log_timestamps);
    let registry = Arc::new(Registry::new());
    let mut endpoint = match config.prometheus {
        None => None,
        Some(addr) => Some(
            Endpoint::start(addr, &registry)
                .await
                .map_err(|e| StartError(Refusal::Metrics(e)))?,
        ),
    };
    let (globals_tx, globals_rx) = tokio::sync::watch::channel(globals(&mut config, &registry));
    let mut pairs: BTreeMap<String, Running> = BTreeMap::new();
    let names: Vec<String> = config.pairs.iter().map(|p| p.name.clone()).collect();
    for p in config.pairs {
        pairs.insert(p.name.clone(), Running::start(p, &globals_rx));
    }
    info!(
        config = %file.display(),
        pairs = %names.join(","),
        state_dir = %config.state_dir.display(),
        "agent started"
    );

    tokio::pin!(stop);
    let by = loop {
        tokio::select! {
            by = &mut stop => break by,
            Some(()) = reload.recv() => {
                reconfigure(file, &log, &globals_tx, &globals_rx, &mut pairs, &registry, &mut endpoint).await;
            }
        }
    };
    info!(signal = signal_name(by), "stopping");
    for p in pairs.values() {
        let _ = p.stop.send(true);
    }
    let names: Vec<String> = pairs.keys().cloned().collect();
    for (_, p) in pairs {
        p.stop().await;
    }
    if let Some(e) = endpoint {
        e.task.abort();
    }
    info!("agent stopped");
    Ok(Stopped { by, pairs: names })
}

/// The stop as the log has always named it.
fn signal_name(by: StopSignal) -> &'static str {
    match by {
        StopSignal::Terminate => "SIGTERM",
        StopSignal::Interrupt => "SIGINT",
    }
}

/// A reload (SIGHUP) re-reads the configuration. Pairs whose settings did not change
/// keep running untouched; changed pairs restart (their history carries over
/// through the state file when source, target and path are the same); gone
/// pairs stop. A configuration that does not validate changes nothing.
async fn reconfigure(
    file: &Path,
    log: &logging::LogHandle,
    globals_tx: &tokio::sync::watch::Sender<Arc<Globals>>,
    globals_rx: &tokio::sync::watch::Receiver<Arc<Globals>>,
    pairs: &mut BTreeMap<String, Running>,
    registry: &Arc<Registry>,
    endpoint: &mut Option<Endpoint>,
) {
    info!(config = %file.display(), "SIGHUP: reloading the configuration");
    let mut new = match AgentConfig::load(file) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "new configuration refused; the running one is kept");
            return;
        }
    };
    log.set_level(new.log_level);
    Endpoint::reload(endpoint, new.prometheus, registry).await;
    if new.prometheus.is_none() {
        registry.forget_all();
    } else if new.probes.is_none() {
        registry.forget_probes();
    }
    let _ = globals_tx.send(globals(&mut new, registry));
    let wanted: BTreeMap<String, PairConfig> =
        new.pairs.into_iter().map(|p| (p.name.clone(), p)).collect();
    let (mut added, mut changed, mut removed, mut kept) = (0, 0, 0, 0);
    let gone: Vec<String> = pairs
        .keys()
        .filter(|n| !wanted.contains_key(*n))
        .cloned()
        .collect();
    for name in gone {
        if let Some(p) = pairs.remove(&name) {
            p.stop().await;
            removed += 1;
        }
    }
    for (name, cfg) in wanted {
        match pairs.remove(&name) {
            Some(running) if running.cfg.same_as(&cfg) => {
                pairs.insert(name, running);
                kept += 1;
            }
            Some(running) => {
                running.stop().await;
                pairs.insert(name, Running::start(cfg, globals_rx));
                changed += 1;
            }
            None => {
                pairs.insert(name, Running::start(cfg, globals_rx));
                added += 1;
            }
        }
    }
    registry.retain(&pairs.keys().cloned().collect());
    if pairs.is_empty() {
        warn!("no pairs configured");
    }
    info!(
        added,
        changed,
        removed,
        unchanged = kept,
        "configuration reloaded"
    );
}
