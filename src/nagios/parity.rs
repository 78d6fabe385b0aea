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
    /// Per-path judgement: differences under a glob are judged at most
    /// this state (the first rule that matches applies).
    pub rules: Vec<PathRule>,
}

/// `GLOB=STATE`: differences at paths matching GLOB are at most STATE:
/// `ok` leaves them out of the verdict (still listed), `warning` keeps them
/// from `-c` and `--critical-kinds`. For a directory known to churn.
#[derive(Clone, Debug)]
pub struct PathRule {
    pub pattern: String,
    matcher: globset::GlobMatcher,
    pub at_most: State,
}

impl PathRule {
    /// Parses `GLOB=STATE` (`/app/locks/**=warning`).
    pub fn parse(text: &str) -> Result<PathRule, String> {
        let (pattern, state) = text
            .rsplit_once('=')
            .ok_or_else(|| format!("{text:?} is not GLOB=STATE (e.g. /app/locks/**=warning)"))?;
        let at_most = parse_state(state)?;
        PathRule::new(pattern, at_most)
    }

    pub fn new(pattern: &str, at_most: State) -> Result<PathRule, String> {
        if !pattern.starts_with('/') {
            return Err(format!("{pattern:?} must start with '/'"));
        }
        let matcher = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("{pattern:?}: {}", e.kind()))?
            .compile_matcher();
        Ok(PathRule {
            pattern: pattern.to_string(),
            matcher,
            at_most,
        })
    }

    fn cap(rules: &[PathRule], path: &str) -> Option<State> {
        rules
            .iter()
            .find(|r| r.matcher.is_match(path))
            .map(|r| r.at_most)
    }
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
            rules: Vec::new(),
        }
    }

    pub fn judge(&self, r: &CompareReport) -> CheckResult {
        self.judge_facts(&ParityFacts::from_report(r))
    }

    pub(crate) fn judge_facts(&self, f: &ParityFacts) -> CheckResult {
        let total = f.total;
        // What the per-path rules take out: of everything (`ok`), and of
        // what can be CRITICAL (`ok` and `warning`). Only listed
        // differences have a path to match.
        let mut out_of_warning = 0;
        let mut out_of_critical: BTreeMap<&str, u64> = BTreeMap::new();
        for (kind, path) in &f.listed {
            match PathRule::cap(&self.rules, path) {
                Some(State::Ok) => {
                    out_of_warning += 1;
                    *out_of_critical.entry(kind.as_str()).or_default() += 1;
                }
                Some(State::Warning) => {
                    *out_of_critical.entry(kind.as_str()).or_default() += 1;
                }
                _ => {}
            }
        }
        let total_w = total.saturating_sub(out_of_warning);
        let total_c = total.saturating_sub(out_of_critical.values().sum());
        let count = |k: DiffKind| f.by_kind.get(k.as_str()).copied().unwrap_or(0);
        let critical_kind = self.critical_kinds.iter().any(|k| {
            count(*k).saturating_sub(out_of_critical.get(k.as_str()).copied().unwrap_or(0)) > 0
        });
        let state = if self
            .critical
            .as_ref()
            .is_some_and(|c| c.alerts(total_c as f64))
            || critical_kind
        {
            State::Critical
        } else if self.warning.alerts(total_w as f64) {
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
            let ruled: u64 = out_of_critical.values().sum();
            let ruled = match ruled {
                0 => String::new(),
                n => format!(", {n} judged by path rules (--judge)"),
            };
            format!(
                "{total} confirmed difference{} ({}{ruled}); source {} nodes, target {}{unreadable}{healed}{note}",
                if total == 1 { "" } else { "s" },
                kinds.join(", "),
                f.source_nodes,
                f.target_nodes
            )
        };
        CheckResult {
            check: "PARITY",
            state,
            summary,
            perfdata: self.perfdata(f),
            long_output: self.long_output(f),
        }
    }

    /// The node counts, the differences against the thresholds, each kind,
    /// and what was unreadable or not yet confirmed.
    fn perfdata(&self, f: &ParityFacts) -> Vec<Perf> {
        let count = |k: DiffKind| f.by_kind.get(k.as_str()).copied().unwrap_or(0);
        let threshold = |r: Option<&Range>| r.map(|r| r.as_str().to_string());
        let mut perfdata = vec![
            Perf::count("source_nodes", f.source_nodes),
            Perf::count("target_nodes", f.target_nodes),
            Perf::count("differences", f.total).thresholds(
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
        perfdata
    }

    /// The listed differences, as many as `details` asks for.
    fn long_output(&self, f: &ParityFacts) -> Vec<String> {
        let mut long_output: Vec<String> = f
            .listed
            .iter()
            .take(self.details)
            .map(|(kind, path)| format!("{kind} {path}"))
            .collect();
        let more = (f.total + f.unreadable).saturating_sub(long_output.len() as u64);
        if more > 0 && !long_output.is_empty() {
            long_output.push(format!("... and {more} more"));
        }
        long_output
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

    fn facts(listed: &[(&str, &str)]) -> ParityFacts {
        let mut by_kind = BTreeMap::new();
        for (k, _) in listed {
            *by_kind.entry(k.to_string()).or_default() += 1;
        }
        ParityFacts {
            source_nodes: 10,
            target_nodes: 10,
            by_kind,
            total: listed.len() as u64,
            unreadable: 0,
            transient: 0,
            transient_label: "transient",
            elapsed_seconds: 0.1,
            listed: listed
                .iter()
                .map(|(k, p)| (k.to_string(), p.to_string()))
                .collect(),
            note: None,
        }
    }

    #[test]
    fn path_rules_cap_what_a_difference_under_them_can_raise() {
        let mut check = ParityCheck::defaults(10);
        let locks = [("data", "/app/locks/l1")];
        assert_eq!(check.judge_facts(&facts(&locks)).state, State::Critical);
        check.rules = vec![PathRule::parse("/app/locks/**=warning").unwrap()];
        let r = check.judge_facts(&facts(&locks));
        assert_eq!(r.state, State::Warning);
        assert!(
            r.summary.contains("1 judged by path rules"),
            "{}",
            r.summary
        );
        check.rules = vec![PathRule::parse("/app/locks/**=ok").unwrap()];
        assert_eq!(check.judge_facts(&facts(&locks)).state, State::Ok);
        // Elsewhere, the rules change nothing; the first match wins.
        let both = [("data", "/app/locks/l1"), ("acl", "/app/config")];
        assert_eq!(check.judge_facts(&facts(&both)).state, State::Critical);
        check.rules = vec![
            PathRule::parse("/app/locks/*=ok").unwrap(),
            PathRule::parse("/app/**=warning").unwrap(),
        ];
        assert_eq!(check.judge_facts(&facts(&both)).state, State::Warning);
        // '*' stays within a name.
        let deep = [("data", "/app/locks/a/b")];
        check.rules = vec![PathRule::parse("/app/locks/*=ok").unwrap()];
        assert_eq!(check.judge_facts(&facts(&deep)).state, State::Critical);
    }

    #[test]
    fn a_path_rule_is_glob_equals_state() {
        for bad in ["/x", "x=ok", "/x=loud", "/[=ok"] {
            assert!(PathRule::parse(bad).is_err(), "{bad}");
        }
        let r = PathRule::parse("/a/**=warning").unwrap();
        assert_eq!((r.pattern.as_str(), r.at_most), ("/a/**", State::Warning));
    }
}
