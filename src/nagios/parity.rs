//! `check parity`: compares source and target and alerts on confirmed
//! differences.
//!
//! The count of confirmed differences is held against `-w`/`-c`; on top of
//! that, any difference of a critical kind (by default `acl`, `data`,
//! `missing_in_target`, `sequence_counter`: the ones that break clients after
//! a cut-over) is CRITICAL whatever the count. `node_kind`, `extra_in_target`
//! and `unreadable` then only warn, unless listed with `--critical-kinds`.

use crate::compare::{compare, CompareOptions};
use crate::connect::EnsembleSpec;
use crate::progress::Progress;
use crate::report::{CompareReport, DiffKind};

use super::output::{CheckResult, Perf, State};
use super::range::Range;

pub const DEFAULT_CRITICAL_KINDS: [DiffKind; 4] = [
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
}

impl ParityCheck {
    /// Judges a finished comparison.
    pub fn judge(&self, r: &CompareReport) -> CheckResult {
        let s = &r.summary;
        let total = s.confirmed;
        let count = |k: DiffKind| s.differences.get(k.as_str()).copied().unwrap_or(0);
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
        let healed = match s.transient {
            0 => String::new(),
            n => format!(", {n} transient healed"),
        };
        let summary = if total == 0 {
            format!("source and target match: {} nodes{healed}", s.source.nodes)
        } else {
            let kinds: Vec<String> = DiffKind::ALL
                .iter()
                .filter(|k| count(**k) > 0)
                .map(|k| format!("{} {}", k.as_str(), count(*k)))
                .collect();
            format!(
                "{total} confirmed difference{} ({}); source {} nodes, target {}{healed}",
                if total == 1 { "" } else { "s" },
                kinds.join(", "),
                s.source.nodes,
                s.target.nodes
            )
        };
        let threshold = |r: Option<&Range>| r.map(|r| r.as_str().to_string());
        let mut perfdata = vec![
            Perf::count("source_nodes", s.source.nodes),
            Perf::count("target_nodes", s.target.nodes),
            Perf::count("differences", total).thresholds(
                threshold(Some(&self.warning)),
                threshold(self.critical.as_ref()),
            ),
        ];
        perfdata.extend(
            DiffKind::ALL
                .iter()
                .map(|k| Perf::count(k.as_str(), count(*k))),
        );
        perfdata.push(Perf::count("transient", s.transient));
        perfdata.push(Perf::seconds("elapsed", s.elapsed_seconds));
        let mut long_output: Vec<String> = r
            .differences
            .iter()
            .take(self.details)
            .map(|d| format!("{} {}", d.kind.as_str(), d.path))
            .collect();
        let more = total.saturating_sub(long_output.len() as u64);
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

    pub async fn run(
        &self,
        source: &EnsembleSpec,
        target: &EnsembleSpec,
        options: &CompareOptions,
    ) -> CheckResult {
        let mut quiet = Progress::new(false);
        match compare(source, target, options, &mut quiet).await {
            Ok(report) => self.judge(&report),
            Err(e) => CheckResult::unknown("PARITY", e.to_string()),
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
            DiffKind::ALL
                .iter()
                .find(|k| k.as_str() == name)
                .copied()
                .ok_or_else(|| {
                    let all: Vec<&str> = DiffKind::ALL.iter().map(|k| k.as_str()).collect();
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
