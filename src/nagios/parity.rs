//! `check parity`: compares source and target and alerts on confirmed
//! differences.
//!
//! The count of confirmed differences is held against `-w`/`-c`; on top of
//! that, any difference of a critical kind (by default `acl`, `data`,
//! `missing_in_target`, `sequence_counter`: the ones that break clients after
//! a cut-over) is CRITICAL whatever the count. `node_kind`, `extra_in_target`
//! then only warn, unless listed with `--critical-kinds`.
//!
//! Nodes a side cannot read are not differences: the comparison is
//! incomplete, which is UNKNOWN by default (`--unreadable`), since nothing
//! can be said of them either way.
//!
//! With `--state`, the check reads what the agent last wrote instead of
//! walking: instant on any tree size. It is judged by the agent's own
//! verdict ([`crate::agent::verdict`]), so it says what the agent's passive
//! results say.

use std::collections::BTreeMap;

use crate::compare::{compare_sides, CompareOptions};
use crate::progress::Progress;
use crate::report::{CompareReport, DiffKind};
use crate::source::SideSpec;

use super::output::{CheckResult, Perf, State};
use super::range::Range;

pub(crate) const DEFAULT_CRITICAL_KINDS: [DiffKind; 4] = [
    DiffKind::Acl,
    DiffKind::Data,
    DiffKind::MissingInTarget,
    DiffKind::SequenceCounter,
];

pub struct ParityCheck {
    pub warning: Range,
    pub critical: Option<Range>,
    pub critical_kinds: Vec<DiffKind>,
    /// Differences shown in the long output.
    pub details: usize,
    /// The state when a side could not read some nodes; the worse of it
    /// and the differences' state is the answer.
    pub unreadable: State,
}

/// Parses `--unreadable` / `unreadable =`: the state an incomplete
/// comparison gives.
pub fn parse_state(name: &str) -> Result<State, String> {
    match name.trim().to_ascii_lowercase().as_str() {
        "ok" => Ok(State::Ok),
        "warning" => Ok(State::Warning),
        "critical" => Ok(State::Critical),
        "unknown" => Ok(State::Unknown),
        other => Err(format!(
            "unknown state {other:?} (known: ok, warning, critical, unknown)"
        )),
    }
}

/// What a parity verdict rests on, from a live comparison or from the
/// agent's last state.
pub(crate) struct ParityFacts {
    pub source_nodes: u64,
    pub target_nodes: u64,
    /// Confirmed differences by kind name.
    pub by_kind: BTreeMap<String, u64>,
    pub total: u64,
    /// Paths a side could not read: not differences.
    pub unreadable: u64,
    /// Live: differences that healed at the re-check. From the agent:
    /// differences seen but not yet confirmed as drift.
    pub transient: u64,
    pub transient_label: &'static str,
    pub elapsed_seconds: f64,
    /// `(kind, path)` of the first differences, for the long output.
    pub listed: Vec<(String, String)>,
    /// Said after the summary, e.g. the agent's round and its age.
    pub note: Option<String>,
}

impl ParityFacts {
    pub(crate) fn from_report(r: &CompareReport) -> ParityFacts {
        let s = &r.summary;
        ParityFacts {
            source_nodes: s.source.nodes,
            target_nodes: s.target.nodes,
            by_kind: s
                .differences
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            total: s.confirmed,
            unreadable: s.unreadable,
            transient: s.transient,
            transient_label: "transient",
            elapsed_seconds: s.elapsed_seconds,
            listed: r
                .differences
                .iter()
                .map(|d| (d.kind.as_str().to_string(), d.path.clone()))
                .collect(),
            note: None,
        }
    }
}

impl ParityCheck {
    /// Judges a finished comparison.
    /// `check parity`'s defaults: WARNING on any confirmed difference,
    /// CRITICAL on one of [`DEFAULT_CRITICAL_KINDS`], UNKNOWN when a side
    /// could not read some nodes.
    pub fn defaults(details: usize) -> ParityCheck {
        ParityCheck {
            // "0": alert on any confirmed difference, as `-w` defaults.
            warning: "0"
                .parse()
                .unwrap_or_else(|_| unreachable!("0 is a valid range")),
            critical: None,
            critical_kinds: DEFAULT_CRITICAL_KINDS.to_vec(),
            details,
            unreadable: State::Unknown,
        }
    }

    pub fn judge(&self, r: &CompareReport) -> CheckResult {
        self.judge_facts(&ParityFacts::from_report(r))
    }

    pub(crate) fn judge_facts(&self, f: &ParityFacts) -> CheckResult {
        let total = f.total;
        let count = |k: DiffKind| f.by_kind.get(k.as_str()).copied().unwrap_or(0);
        let critical_kind = self.critical_kinds.iter().any(|k| count(*k) > 0);
        let state = if self
            .critical
            .as_ref()
            .is_some_and(|c| c.alerts(total as f64))
            || critical_kind
        {
            State::Critical
        } else if self.warning.alerts(total as f64) {
            State::Warning
        } else {
            State::Ok
        };
        let state = if f.unreadable > 0 {
            state.worst(self.unreadable)
        } else {
            state
        };
        let healed = match f.transient {
            0 => String::new(),
            n => format!(
                ", {n} {}",
                if f.transient_label == "transient" {
                    "transient healed"
                } else {
                    "not yet confirmed"
                }
            ),
        };
        let note = f
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let unreadable = match f.unreadable {
            0 => String::new(),
            n => format!(
                "; INCOMPLETE: {n} unreadable path{} (NoAuth or another read error), not compared",
                if n == 1 { "" } else { "s" }
            ),
        };
        let summary = if total == 0 && f.unreadable > 0 {
            format!(
                "no differences in what both sides could read: {} nodes{unreadable}{healed}{note}",
                f.source_nodes
            )
        } else if total == 0 {
            format!(
                "source and target match: {} nodes{healed}{note}",
                f.source_nodes
            )
        } else {
            let kinds: Vec<String> = DiffKind::DIFFERENCES
                .iter()
                .filter(|k| count(**k) > 0)
                .map(|k| format!("{} {}", k.as_str(), count(*k)))
                .collect();
            format!(
                "{total} confirmed difference{} ({}); source {} nodes, target {}{unreadable}{healed}{note}",
                if total == 1 { "" } else { "s" },
                kinds.join(", "),
                f.source_nodes,
                f.target_nodes
            )
        };
        let threshold = |r: Option<&Range>| r.map(|r| r.as_str().to_string());
        let mut perfdata = vec![
            Perf::count("source_nodes", f.source_nodes),
            Perf::count("target_nodes", f.target_nodes),
            Perf::count("differences", total).thresholds(
                threshold(Some(&self.warning)),
                threshold(self.critical.as_ref()),
            ),
        ];
        perfdata.extend(
            DiffKind::DIFFERENCES
                .iter()
                .map(|k| Perf::count(k.as_str(), count(*k))),
        );
        perfdata.push(Perf::count("unreadable", f.unreadable));
        perfdata.push(Perf::count(f.transient_label, f.transient));
        perfdata.push(Perf::seconds("elapsed", f.elapsed_seconds));
        let mut long_output: Vec<String> = f
            .listed
            .iter()
            .take(self.details)
            .map(|(kind, path)| format!("{kind} {path}"))
            .collect();
        let more = (total + f.unreadable).saturating_sub(long_output.len() as u64);
        if more > 0 && !long_output.is_empty() {
            long_output.push(format!("... and {more} more"));
        }
        CheckResult {
            check: "PARITY",
            state,
            summary,
            perfdata,
            long_output,
        }
    }

    /// Either side may be a snapshot or zktreeutil file.
    pub async fn run(
        &self,
        source: &SideSpec,
        target: &SideSpec,
        options: &CompareOptions,
    ) -> (CheckResult, Option<CompareReport>) {
        let mut quiet = Progress::new(false);
        match compare_sides(source, target, options, &mut quiet).await {
            Ok(report) => (self.judge(&report), Some(report)),
            Err(e) => (CheckResult::unknown("PARITY", e.to_string()), None),
        }
    }
}

/// Parses `--critical-kinds`: a comma list of difference kinds, or `none`.
pub fn parse_kinds(list: &str) -> Result<Vec<DiffKind>, String> {
    if list.trim() == "none" {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            DiffKind::DIFFERENCES
                .iter()
                .find(|k| k.as_str() == name)
                .copied()
                .ok_or_else(|| {
                    let all: Vec<&str> = DiffKind::DIFFERENCES.iter().map(|k| k.as_str()).collect();
                    format!(
                        "unknown difference kind {name:?} (known: {}, or none)",
                        all.join(", ")
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_a_comma_list_or_none() {
        assert_eq!(
            parse_kinds("data, acl").unwrap(),
            vec![DiffKind::Data, DiffKind::Acl]
        );
        assert!(parse_kinds("none").unwrap().is_empty());
        assert!(parse_kinds("data,typo").unwrap_err().contains("typo"));
    }
}
