//! `check znode`: one path on one or both ensembles — exists, is ephemeral
//! (or persistent), child count within range, data matches a regex, age of
//! its last modification — the znode checks operators already run, for both
//! sides of a migration at once.

use std::time::{SystemTime, UNIX_EPOCH};

use zookeeper_client as zk;

use crate::connect::EnsembleSpec;
use crate::digest::NodeKind;

use super::output::{CheckResult, Perf, State};
use super::range::Range;

pub struct ZnodeCheck {
    pub path: String,
    /// The kind the node must be, if any.
    pub kind: Option<NodeKind>,
    pub children_warning: Option<Range>,
    pub children_critical: Option<Range>,
    pub data_regex: Option<regex::Regex>,
    pub age_warning: Option<Range>,
    pub age_critical: Option<Range>,
}

/// What one side says about the node.
struct Seen {
    state: State,
    problems: Vec<String>,
    facts: String,
    perf: Vec<Perf>,
}

impl ZnodeCheck {
    fn judge(&self, side: &str, data: &[u8], stat: &zk::Stat, now_ms: i64) -> Seen {
        let mut state = State::Ok;
        let mut problems = Vec::new();
        let mut flag = |s: State, what: String| {
            state = state.worst(s);
            problems.push(what);
        };
        let ephemeral = stat.ephemeral_owner != 0;
        match self.kind {
            Some(NodeKind::Ephemeral) if !ephemeral => flag(
                State::Critical,
                format!("{side} {} is persistent, expected ephemeral", self.path),
            ),
            Some(NodeKind::Persistent) if ephemeral => flag(
                State::Critical,
                format!("{side} {} is ephemeral, expected persistent", self.path),
            ),
            _ => {}
        }
        let children = f64::from(stat.num_children);
        let judge_range = |crit: &Option<Range>, warn: &Option<Range>, v: f64| {
            if crit.as_ref().is_some_and(|r| r.alerts(v)) {
                Some(State::Critical)
            } else if warn.as_ref().is_some_and(|r| r.alerts(v)) {
                Some(State::Warning)
            } else {
                None
            }
        };
        if let Some(s) = judge_range(&self.children_critical, &self.children_warning, children) {
            flag(
                s,
                format!("{side} {} has {} children", self.path, stat.num_children),
            );
        }
        let age = ((now_ms - stat.mtime).max(0) as f64) / 1000.0;
        if let Some(s) = judge_range(&self.age_critical, &self.age_warning, age) {
            flag(
                s,
                format!("{side} {} last modified {age:.0}s ago", self.path),
            );
        }
        if let Some(re) = &self.data_regex {
            if !re.is_match(&String::from_utf8_lossy(data)) {
                flag(
                    State::Critical,
                    format!("{side} {} data does not match /{re}/", self.path),
                );
            }
        }
        let threshold = |r: &Option<Range>| r.as_ref().map(|r| r.as_str().to_string());
        Seen {
            state,
            problems,
            facts: format!(
                "{side} {}: {}, {} children, {} bytes, modified {age:.0}s ago",
                self.path,
                if ephemeral { "ephemeral" } else { "persistent" },
                stat.num_children,
                data.len()
            ),
            perf: vec![
                Perf::count(&format!("{side}_children"), stat.num_children.max(0) as u64)
                    .thresholds(
                        threshold(&self.children_warning),
                        threshold(&self.children_critical),
                    ),
                Perf::seconds(&format!("{side}_age"), age)
                    .thresholds(threshold(&self.age_warning), threshold(&self.age_critical)),
                Perf::count(&format!("{side}_data_bytes"), data.len() as u64),
            ],
        }
    }

    async fn look(&self, spec: &EnsembleSpec) -> Seen {
        let unknown = |reason: String| Seen {
            state: State::Unknown,
            problems: vec![reason],
            facts: String::new(),
            perf: Vec::new(),
        };
        let client = match spec.connect().await {
            Ok(c) => c,
            Err(e) => return unknown(e.to_string()),
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        match client.get_data(&self.path).await {
            Ok((data, stat)) => self.judge(&spec.side, &data, &stat, now_ms),
            Err(zk::Error::NoNode) => Seen {
                state: State::Critical,
                problems: vec![format!("{} {} does not exist", spec.side, self.path)],
                facts: String::new(),
                perf: Vec::new(),
            },
            Err(zk::Error::NoAuth) => unknown(format!(
                "{} {}: not authorised to read (give credentials)",
                spec.side, self.path
            )),
            Err(e) => unknown(format!("{} {}: {e}", spec.side, self.path)),
        }
    }

    /// Checks the node on every given ensemble; the worst state wins.
    pub async fn run(&self, specs: &[EnsembleSpec]) -> CheckResult {
        let seen = futures::future::join_all(specs.iter().map(|s| self.look(s))).await;
        let state = seen.iter().fold(State::Ok, |acc, s| acc.worst(s.state));
        let problems: Vec<&str> = seen
            .iter()
            .flat_map(|s| s.problems.iter().map(String::as_str))
            .collect();
        let summary = if problems.is_empty() {
            seen.iter()
                .map(|s| s.facts.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            problems.join("; ")
        };
        CheckResult {
            check: "ZNODE",
            state,
            summary,
            perfdata: seen.iter().flat_map(|s| s.perf.clone()).collect(),
            long_output: seen
                .iter()
                .filter(|s| !s.facts.is_empty())
                .map(|s| s.facts.clone())
                .collect(),
        }
    }
}
