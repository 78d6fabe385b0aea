//! `check counts`: the cheap parity signal between full compares — how the
//! target's persistent znode count differs from the source's, from `mntr`
//! alone, with system nodes and ephemerals taken out. It reads no tree, so
//! it can run every minute on any ensemble size.

use crate::connect::ConnectString;
use crate::probe::{self, CountParity, ProbeOptions};

use super::output::{CheckResult, Perf, State};
use super::range::Range;

pub struct CountsCheck {
    /// Held against target minus source persistent znodes.
    pub warning: Range,
    pub critical: Option<Range>,
}

fn signed(label: &str, v: i64) -> Perf {
    let mut p = Perf::count(label, 0);
    p.value = v as f64;
    p.min = None;
    p
}

impl CountsCheck {
    pub(crate) fn judge(&self, parity: &CountParity) -> CheckResult {
        let Some(delta) = parity.persistent_delta else {
            let why = if parity.notes.is_empty() {
                "persistent znode counts unknown".to_string()
            } else {
                parity.notes.join("; ")
            };
            return CheckResult::unknown("COUNTS", why);
        };
        let state = if self
            .critical
            .as_ref()
            .is_some_and(|c| c.alerts(delta as f64))
        {
            State::Critical
        } else if self.warning.alerts(delta as f64) {
            State::Warning
        } else {
            State::Ok
        };
        let persistent = |c: &Option<probe::SideCounts>| {
            c.as_ref()
                .and_then(|c| c.persistent)
                .map_or("?".to_string(), |n| n.to_string())
        };
        let summary = format!(
            "persistent znodes: source {}, target {} (target {}{delta})",
            persistent(&parity.source),
            persistent(&parity.target),
            if delta >= 0 { "+" } else { "" }
        );
        let t = |r: Option<&Range>| r.map(|r| r.as_str().to_string());
        let mut perfdata = vec![signed("persistent_delta", delta)
            .thresholds(t(Some(&self.warning)), t(self.critical.as_ref()))];
        for (side, counts) in [("source", &parity.source), ("target", &parity.target)] {
            if let Some(c) = counts {
                perfdata.push(Perf::count(&format!("{side}_znodes"), c.user_znodes));
                if let Some(e) = c.ephemerals {
                    perfdata.push(Perf::count(&format!("{side}_ephemerals"), e));
                }
            }
        }
        if let Some(d) = parity.ephemeral_delta {
            perfdata.push(signed("ephemeral_delta", d));
        }
        if let Some(d) = parity.data_size_delta {
            let mut p = signed("data_size_delta", d);
            p.uom = "B";
            perfdata.push(p);
        }
        CheckResult {
            check: "COUNTS",
            state,
            summary,
            perfdata,
            long_output: parity.notes.clone(),
        }
    }

    pub async fn run(
        &self,
        source: &ConnectString,
        target: &ConnectString,
        options: &ProbeOptions,
    ) -> CheckResult {
        let report = probe::probe(source, Some(target), options).await;
        match &report.parity {
            Some(parity) => self.judge(parity),
            None => CheckResult::unknown("COUNTS", "no count parity without a target"),
        }
    }
}
