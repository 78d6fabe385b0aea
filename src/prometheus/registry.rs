//! What the agent serves: the latest round and probe of every pair, kept
//! as the rounds and probes publish them, rendered at each scrape.
//!
//! A scrape reads only this memory: it never touches an ensemble, so a
//! scraper that calls too often costs production nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::nagios::output::State;
use crate::probe::ProbeReport;
use crate::report::state::PairState;

use super::exposition::{Exposition, Format, Kind};
use super::pair::{epoch, write_agent_pair, AgentPair};
use super::servers::write_probe;

/// The agent's metrics, shared by the pairs' tasks and the HTTP server.
#[derive(Debug)]
pub struct Registry {
    started: SystemTime,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pairs: BTreeMap<String, AgentPair>,
    probes: BTreeMap<String, (ProbeReport, SystemTime)>,
}

/// How a state reached the registry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Update {
    /// A round ended: `subtrees` from its report, when it compared.
    Round {
        success: bool,
        seconds: f64,
        subtrees: Option<(u64, u64)>,
    },
    /// An early re-check between rounds.
    Early,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry {
            started: SystemTime::now(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data behind;
        // serving it beats serving nothing.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `state` (written to the state file at the same moment) with
    /// `status`, the Nagios answer for it.
    pub fn publish(&self, state: &PairState, status: State, how: Update) {
        let mut inner = self.lock();
        let entry = inner
            .pairs
            .entry(state.pair.clone())
            .or_insert_with(|| AgentPair::new(state, status));
        entry.update(state, status);
        match how {
            Update::Round {
                success,
                seconds,
                subtrees,
            } => {
                entry.rounds += 1;
                if !success {
                    entry.rounds_failed += 1;
                }
                entry.view.round_success = success;
                entry.view.round_seconds = seconds;
                if subtrees.is_some() {
                    entry.view.subtrees = subtrees;
                }
            }
            Update::Early => entry.early_rechecks += 1,
        }
    }

    pub fn probed(&self, pair: &str, report: &ProbeReport) {
        self.lock()
            .probes
            .insert(pair.to_string(), (report.clone(), SystemTime::now()));
    }

    /// Forgets every probe: probes were turned off, and their last numbers
    /// would otherwise be served as current.
    pub fn forget_probes(&self) {
        self.lock().probes.clear();
    }

    /// Forgets everything: the endpoint was turned off, and what it held
    /// would be stale by the time it is turned on again.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.pairs.clear();
        inner.probes.clear();
    }

    /// Forgets the pairs not in `names` (gone from the configuration).
    pub fn retain(&self, names: &BTreeSet<String>) {
        let mut inner = self.lock();
        inner.pairs.retain(|k, _| names.contains(k));
        inner.probes.retain(|k, _| names.contains(k));
    }

    pub fn render(&self, format: Format) -> String {
        let mut e = Exposition::new();
        e.add(
            "zkparity_agent",
            "The running zkparity agent.",
            Kind::Info,
            vec![("version", env!("CARGO_PKG_VERSION").to_string())],
            1.0,
        );
        e.add(
            "zkparity_agent_start_time_seconds",
            "When the agent started (Unix time).",
            Kind::Gauge,
            vec![],
            epoch(self.started),
        );
        let inner = self.lock();
        for p in inner.pairs.values() {
            write_agent_pair(&mut e, p);
        }
        for (pair, (report, at)) in &inner.probes {
            write_probe(&mut e, pair, report, *at);
        }
        e.render(format)
    }
}
