//! `check health`: each ensemble's health from the four-letter-word probes.
//!
//! The structural verdict comes from [`crate::probe`]: servers down, no or
//! several leaders, quorum lost, followers out of sync. On top of it, per
//! server thresholds on average latency, outstanding requests and file
//! descriptor use; their defaults are those of ZooKeeper's contrib Nagios
//! services (latency 500/1000 ms, outstanding 20/50), with descriptors as a
//! share of the server's limit rather than an absolute count.

use crate::connect::ConnectString;
use crate::probe::{self, EnsembleView, ProbeOptions, ProbeReport, Severity};

use super::output::{CheckResult, Perf, State};
use super::range::Range;

pub struct HealthCheck {
    pub latency_warning: Option<Range>,
    pub latency_critical: Option<Range>,
    pub outstanding_warning: Option<Range>,
    pub outstanding_critical: Option<Range>,
    /// Percent of the descriptor limit.
    pub fd_warning: Option<Range>,
    pub fd_critical: Option<Range>,
}

impl Default for HealthCheck {
    /// `check health`'s defaults: ZooKeeper's contrib Nagios services'
    /// latency 500/1000 ms and outstanding 20/50, descriptors at 80/95%.
    fn default() -> HealthCheck {
        let r = |v: &str| v.parse::<Range>().ok();
        HealthCheck {
            latency_warning: r("500"),
            latency_critical: r("1000"),
            outstanding_warning: r("20"),
            outstanding_critical: r("50"),
            fd_warning: r("80"),
            fd_critical: r("95"),
        }
    }
}

fn severity_state(s: Severity) -> State {
    match s {
        Severity::Warning => State::Warning,
        Severity::Unknown => State::Unknown,
        Severity::Critical => State::Critical,
    }
}

fn against(value: f64, warn: &Option<Range>, crit: &Option<Range>) -> State {
    if crit.as_ref().is_some_and(|r| r.alerts(value)) {
        State::Critical
    } else if warn.as_ref().is_some_and(|r| r.alerts(value)) {
        State::Warning
    } else {
        State::Ok
    }
}

impl HealthCheck {
    /// Judges one ensemble; returns its state, problems and perfdata.
    fn judge(&self, view: &EnsembleView) -> (State, Vec<String>, Vec<Perf>) {
        let side = &view.side;
        let mut state = State::Ok;
        let mut problems = Vec::new();
        for r in &view.reasons {
            state = state.worst(severity_state(r.severity));
            problems.push(format!("{side}: {}", r.message));
        }
        for s in view.servers.iter().filter(|s| s.is_serving()) {
            let mut flag = |st: State, what: String| {
                if st != State::Ok {
                    state = state.worst(st);
                    problems.push(format!("{side} {}: {what}", s.address));
                }
            };
            if let Some(l) = &s.latency {
                let st = against(l.avg, &self.latency_warning, &self.latency_critical);
                flag(st, format!("average latency {:.1} ms", l.avg));
            }
            if let Some(o) = s.outstanding {
                let st = against(
                    o as f64,
                    &self.outstanding_warning,
                    &self.outstanding_critical,
                );
                flag(st, format!("{o} outstanding requests"));
            }
            if let Some(u) = s.fd_usage() {
                let pct = 100.0 * u;
                let st = against(pct, &self.fd_warning, &self.fd_critical);
                flag(st, format!("{pct:.0}% of file descriptors in use"));
            }
        }
        let t = |r: &Option<Range>| r.as_ref().map(|r| r.as_str().to_string());
        let mut perf = vec![
            Perf::count(
                &format!("{side}_servers_serving"),
                view.servers_serving as u64,
            ),
            Perf::count(&format!("{side}_leaders"), view.leaders as u64),
        ];
        if let Some(n) = view.synced_followers {
            perf.push(Perf::count(&format!("{side}_synced_followers"), n));
        }
        if let Some(l) = &view.latency {
            let mut p = Perf::count(&format!("{side}_avg_latency"), 0)
                .thresholds(t(&self.latency_warning), t(&self.latency_critical));
            p.value = l.worst_avg;
            p.uom = "ms";
            perf.push(p);
        }
        if let Some(o) = view.outstanding_max {
            perf.push(
                Perf::count(&format!("{side}_outstanding"), o)
                    .thresholds(t(&self.outstanding_warning), t(&self.outstanding_critical)),
            );
        }
        if let Some(u) = view.fd_usage_max {
            let mut p = Perf::count(&format!("{side}_fd_usage"), 0)
                .thresholds(t(&self.fd_warning), t(&self.fd_critical));
            p.value = 100.0 * u;
            p.uom = "%";
            p.max = Some(100.0);
            perf.push(p);
        }
        if let Some(z) = view.znodes {
            perf.push(Perf::count(&format!("{side}_znodes"), z));
        }
        if let Some(z) = &view.zxid {
            perf.push(Perf::count(&format!("{side}_zxid_spread"), z.spread));
        }
        (state, problems, perf)
    }

    pub async fn run(
        &self,
        source: &ConnectString,
        target: Option<&ConnectString>,
        options: &ProbeOptions,
    ) -> CheckResult {
        let report = probe::probe(source, target, options).await;
        self.judge_report(&report)
    }

    /// Judges a probe already made (the agent's, for instance).
    pub(crate) fn judge_report(&self, report: &ProbeReport) -> CheckResult {
        let mut state = State::Ok;
        let mut problems = Vec::new();
        let mut perfdata = Vec::new();
        let mut long_output = Vec::new();
        for view in report.views() {
            let (s, p, perf) = self.judge(view);
            state = state.worst(s);
            problems.extend(p);
            perfdata.extend(perf);
            let leader = view.leader.as_deref().unwrap_or("none");
            long_output.push(format!(
                "{}: {} of {} servers serving, leader {leader}",
                view.side, view.servers_serving, view.servers_listed
            ));
            for s in &view.servers {
                long_output.push(format!("  {} {}", s.address, s.role()));
            }
        }
        let summary = if problems.is_empty() {
            report
                .views()
                .map(|v| {
                    format!(
                        "{}: {} servers serving, leader {}",
                        v.side,
                        v.servers_serving,
                        v.leader.as_deref().unwrap_or("none (standalone)")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            problems.join("; ")
        };
        CheckResult {
            check: "HEALTH",
            state,
            summary,
            perfdata,
            long_output,
        }
    }
}
