//! `check ephemerals`: after clients were switched to a new ensemble, have
//! the applications registered again? The expected registrations are the
//! ephemerals of EXPECTED (a snapshot taken while the applications were
//! connected, the old servers' data directory, or the old ensemble while
//! it runs); each must be on the target as an ephemeral, matched as
//! [`crate::registrations`] says. Missing ones warn within the grace after
//! the cutover and are critical past it; an expected ephemeral that is
//! persistent on the target is critical at once, since it was copied and
//! the application cannot register there until it is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::digest::NodeKind;
use crate::error::{Error, Result};
use crate::registrations::{self, Identity, Key, RULES};
use crate::source::{FileKind, SideSpec, Source};
use crate::tree::{
    self, ReaderOptions, SideNode, SubtreeSummary, Tag, Visit, Visitor, WalkOptions,
};

use super::output::{number, CheckResult, Perf, State};

/// Paths listed per role and kind in the long output.
const LISTED: usize = 10;

pub struct EphemeralsCheck {
    pub path: String,
    pub grace: Duration,
    /// The cutover time, overriding what EXPECTED says.
    pub since: Option<SystemTime>,
    pub walk: WalkOptions,
    pub reader: ReaderOptions,
}

/// Where the cutover time came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CutoverFrom {
    /// `--since`.
    Since,
    /// The zkparity snapshot's creation time.
    SnapshotCreated,
    /// The data directory's last logged transaction.
    LastTransaction,
    /// A data directory with no log after its snapshot: its newest node
    /// change.
    LastChange,
    /// A live expectation: the check's own time.
    Now,
}

impl CutoverFrom {
    fn describe(self) -> &'static str {
        match self {
            CutoverFrom::Since => "--since",
            CutoverFrom::SnapshotCreated => "the snapshot's creation time",
            CutoverFrom::LastTransaction => "the data directory's last transaction",
            CutoverFrom::LastChange => "the data directory's newest change",
            CutoverFrom::Now => "now: the expectation is a live ensemble",
        }
    }
}

/// One role's tally.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RoleReport {
    pub role: &'static str,
    pub application: &'static str,
    pub matched_by: Identity,
    pub expected: u64,
    pub present: u64,
    pub missing: Vec<String>,
    /// Expected ephemerals that are persistent nodes on the target.
    pub persistent: Vec<String>,
    /// On the target, not expected.
    pub new: Vec<String>,
}

/// Everything the check found, as `--format json` prints it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub state: &'static str,
    pub summary: String,
    pub expected_from: String,
    pub target: String,
    pub path: String,
    pub cutover_unix: u64,
    pub cutover_from: CutoverFrom,
    pub since_cutover_seconds: u64,
    pub grace_seconds: u64,
    pub expected: u64,
    pub present: u64,
    pub missing: u64,
    pub persistent: u64,
    pub new: u64,
    pub roles: Vec<RoleReport>,
    /// Nodes a side could not read (`side path: reason`).
    pub unreadable: Vec<String>,
}

/// What EXPECTED says must come back: its ephemerals under the path, and
/// the cutover time. Read once, it serves any number of evaluations of the
/// target (the agent's rounds).
#[derive(Clone, Debug)]
pub struct Expectation {
    /// Where it was read from, as the report names it.
    pub from: String,
    pub ephemerals: Vec<String>,
    pub cutover_ms: i64,
    pub cutover_from: CutoverFrom,
    /// Nodes EXPECTED could not read (`expected path: reason`).
    pub unreadable: Vec<String>,
}

/// What the target holds now, as far as registrations go.
#[derive(Clone, Debug, Default)]
pub struct Registered {
    /// Where it was read from, as the report names it.
    pub from: String,
    pub ephemerals: Vec<String>,
    /// Expected ephemerals that the target holds as persistent nodes.
    pub persistent: BTreeSet<String>,
    /// Nodes the target could not read (`target path: reason`).
    pub unreadable: Vec<String>,
}

/// What one walk gathers: EXPECTED's ephemerals (side 0), or the
/// target's (side 1), each walked alone so that either can be read again
/// without the other.
#[derive(Default)]
struct Collect<'a> {
    ephemerals: Vec<String>,
    /// On the target walk: the expected paths, to spot persistent copies.
    expected: Option<&'a BTreeSet<String>>,
    persistent: BTreeSet<String>,
    unreadable: Vec<String>,
    /// The newest ctime or mtime on the expected side (ms).
    newest_ms: i64,
}

impl Visitor for Collect<'_> {
    fn visit(&mut self, v: &Visit<'_>) -> Tag {
        let ephemeral = |s: &SideNode| s.present().is_some_and(|n| n.kind == NodeKind::Ephemeral);
        for (i, (side, node)) in ["expected", "target"]
            .iter()
            .zip(v.sides.iter())
            .enumerate()
        {
            if let Some(n) = node.present() {
                if i == 0 {
                    if let Some(stat) = &n.stat {
                        self.newest_ms = self.newest_ms.max(stat.mtime).max(stat.ctime);
                    }
                }
                if ephemeral(node) {
                    self.ephemerals.push(v.path.to_string());
                } else if i == 1 && self.expected.is_some_and(|e| e.contains(v.path)) {
                    self.persistent.insert(v.path.to_string());
                }
            }
            if let SideNode::Unreadable(why) = node {
                self.unreadable.push(format!("{side} {}: {why}", v.path));
            }
        }
        0
    }

    fn subtree_done(&mut self, _: &str, _: u32, _: Tag, _: &[Option<SubtreeSummary>; 2]) {}
}

/// Since when the registrations are awaited, as `--since` and the agent's
/// `expect_since` take it: RFC 3339, or seconds since the epoch.
pub fn parse_since(value: &str) -> std::result::Result<SystemTime, String> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && (0.0..1e11).contains(&secs) {
            return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs));
        }
        return Err(format!("{value:?}: not a time"));
    }
    humantime::parse_rfc3339_weak(v).map_err(|e| {
        format!(
            "{value:?}: {e} (give RFC 3339, e.g. 2024-05-01T22:00:00Z, or seconds since the epoch)"
        )
    })
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn listed(paths: &[String]) -> String {
    let mut s = paths
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > LISTED {
        s.push_str(&format!(" and {} more", paths.len() - LISTED));
    }
    s
}

fn seconds(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

/// The tally of every role from the two sides' ephemerals.
fn tally(exp: &Expectation, reg: &Registered) -> Vec<RoleReport> {
    let group = |paths: &[String]| {
        let mut m: BTreeMap<(usize, Key), Vec<String>> = BTreeMap::new();
        for p in paths {
            let (rule, key) = registrations::key_of(p);
            let i = RULES
                .iter()
                .position(|r| std::ptr::eq(r, rule))
                .unwrap_or(0);
            m.entry((i, key)).or_default().push(p.clone());
        }
        m
    };
    let (expected, target) = (group(&exp.ephemerals), group(&reg.ephemerals));
    let mut roles: BTreeMap<usize, RoleReport> = BTreeMap::new();
    for ((i, key), paths) in &expected {
        let r = roles.entry(*i).or_insert_with(|| new_role(*i));
        let on_target = target.get(&(*i, key.clone())).map_or(0, Vec::len);
        let back = on_target.min(paths.len());
        r.expected += paths.len() as u64;
        r.present += back as u64;
        r.persistent.extend(
            paths
                .iter()
                .filter(|p| reg.persistent.contains(*p))
                .cloned(),
        );
        if back < paths.len() {
            if RULES[*i].identity.counted() {
                r.missing.push(format!(
                    "{} of {} under {} (counted: names change)",
                    paths.len() - back,
                    paths.len(),
                    key.display()
                ));
            } else if let Key::Server(..) = key {
                r.missing.push(key.display());
            } else {
                r.missing.extend(paths.iter().cloned());
            }
        }
    }
    for ((i, key), paths) in &target {
        let had = expected.get(&(*i, key.clone())).map_or(0, Vec::len);
        if paths.len() <= had {
            continue;
        }
        let r = roles.entry(*i).or_insert_with(|| new_role(*i));
        if RULES[*i].identity.counted() && had > 0 {
            r.new.push(format!(
                "{} more under {} than expected",
                paths.len() - had,
                key.display()
            ));
        } else if RULES[*i].identity.counted() {
            r.new
                .push(format!("{} under {}", paths.len(), key.display()));
        } else {
            r.new.extend(paths.iter().cloned());
        }
    }
    roles.into_values().collect()
}

fn new_role(i: usize) -> RoleReport {
    RoleReport {
        role: RULES[i].role,
        application: RULES[i].application,
        matched_by: RULES[i].identity,
        expected: 0,
        present: 0,
        missing: Vec::new(),
        persistent: Vec::new(),
        new: Vec::new(),
    }
}

impl EphemeralsCheck {
    fn reader(&self) -> ReaderOptions {
        ReaderOptions {
            keep_data: false,
            // Registrations are told by name and kind: no getACL, and so
            // no call for more than one session per ensemble.
            read_acls: false,
            sessions: 1,
            ..self.reader.clone()
        }
    }

    /// Reads both sides and judges; `Err` is for what makes the check
    /// UNKNOWN (a side that cannot be read, an expectation that says
    /// nothing).
    pub async fn run(
        &self,
        expected: &SideSpec,
        target: &SideSpec,
    ) -> Result<(CheckResult, Report)> {
        let exp = self.expectation(expected).await?;
        let reg = self.registered(target, &exp).await?;
        Ok(self.evaluate(&exp, &reg))
    }

    /// Reads EXPECTED: its ephemerals under the path and the cutover time.
    pub async fn expectation(&self, expected: &SideSpec) -> Result<Expectation> {
        let exp = Source::open(expected, &self.reader()).await?;
        let mut cutover = match (&exp, self.since) {
            (_, Some(t)) => Some((unix_ms(t), CutoverFrom::Since)),
            (Source::Snapshot(s), None) => Some((
                (s.header().created_unix as i64).saturating_mul(1000),
                CutoverFrom::SnapshotCreated,
            )),
            (Source::Zookeeper(d), None) => d
                .position()
                .last_txn_time_ms
                .map(|t| (t, CutoverFrom::LastTransaction)),
            (Source::Live(_), None) => Some((unix_ms(SystemTime::now()), CutoverFrom::Now)),
            (Source::Zktreeutil(_), None) => None,
        };
        if exp.file_kind() == Some(FileKind::Zktreeutil) {
            exp.close().await;
            return Err(Error::Usage(
                "a zktreeutil file does not record which nodes were ephemeral: give a zkparity snapshot, the old servers' data directory or the old ensemble".into(),
            ));
        }
        if let Source::Snapshot(s) = &exp {
            if s.header().ephemerals == "skip" {
                exp.close().await;
                return Err(Error::Usage(
                    "the snapshot was taken with --ephemerals skip and holds no registrations: take one with --ephemerals count or compare while the applications are connected".into(),
                ));
            }
        }
        let walk = match Source::walk_options(&self.walk, &self.path, &[&exp], "check ephemerals") {
            Ok(w) => w,
            Err(e) => {
                exp.close().await;
                return Err(e);
            }
        };
        let mut collect = Collect::default();
        let walked = tree::walk([Some(&exp), None], &self.path, &walk, &mut collect, &mut ()).await;
        exp.close().await;
        let [root, _] = walked?;
        if root.is_none() {
            return Err(Error::RootMissing {
                path: self.path.clone(),
            });
        }
        if cutover.is_none() && collect.newest_ms > 0 {
            cutover = Some((collect.newest_ms, CutoverFrom::LastChange));
        }
        let Some((cutover_ms, cutover_from)) = cutover else {
            return Err(Error::Usage(
                "EXPECTED does not say when it was taken: give --since".into(),
            ));
        };
        if collect.ephemerals.is_empty() {
            return Err(Error::Usage(format!(
                "{} holds no ephemerals under {}: nothing to expect (taken after the applications had left?)",
                expected.describe(),
                self.path
            )));
        }
        Ok(Expectation {
            from: expected.describe(),
            ephemerals: collect.ephemerals,
            cutover_ms,
            cutover_from,
            unreadable: collect.unreadable,
        })
    }

    /// Reads the target's ephemerals under the path (and which expected
    /// ones it holds as persistent nodes).
    pub async fn registered(&self, target: &SideSpec, exp: &Expectation) -> Result<Registered> {
        let tgt = Source::open(target, &self.reader()).await?;
        let walk = match Source::walk_options(&self.walk, &self.path, &[&tgt], "check ephemerals") {
            Ok(w) => w,
            Err(e) => {
                tgt.close().await;
                return Err(e);
            }
        };
        let expected: BTreeSet<String> = exp.ephemerals.iter().cloned().collect();
        let mut collect = Collect {
            expected: Some(&expected),
            ..Collect::default()
        };
        let walked = tree::walk([None, Some(&tgt)], &self.path, &walk, &mut collect, &mut ()).await;
        tgt.close().await;
        let [_, root] = walked?;
        if root.is_none() {
            return Err(Error::Usage(format!(
                "{} is not on the target at all: nothing registered there",
                self.path
            )));
        }
        Ok(Registered {
            from: target.describe(),
            ephemerals: collect.ephemerals,
            persistent: collect.persistent,
            unreadable: collect.unreadable,
        })
    }

    /// Judges what the target holds against the expectation, as of now:
    /// the plugin's answer and the report, which the check prints and the
    /// agent reports through its outputs.
    pub fn evaluate(&self, exp: &Expectation, reg: &Registered) -> (CheckResult, Report) {
        let roles = tally(exp, reg);
        let (cutover_ms, cutover_from) = (exp.cutover_ms, exp.cutover_from);
        let unreadable: Vec<String> = exp
            .unreadable
            .iter()
            .chain(&reg.unreadable)
            .cloned()
            .collect();
        let n = Counts::of(&roles);
        let now_ms = unix_ms(SystemTime::now());
        let elapsed = Duration::from_millis((now_ms - cutover_ms).max(0) as u64);
        let (state, summary) = self.status(&roles, &n, elapsed, &unreadable);
        let long = self.long_output(&roles, cutover_ms, cutover_from, elapsed, &unreadable);
        let perfdata = self.perfdata(&roles, &n, elapsed);
        let result = CheckResult {
            check: "EPHEMERALS",
            state,
            summary: summary.join("; "),
            perfdata,
            long_output: long,
        };
        let report = Report {
            state: state.as_str(),
            summary: result.summary.clone(),
            expected_from: exp.from.clone(),
            target: reg.from.clone(),
            path: self.path.clone(),
            cutover_unix: (cutover_ms.max(0) / 1000) as u64,
            cutover_from,
            since_cutover_seconds: elapsed.as_secs(),
            grace_seconds: self.grace.as_secs(),
            expected: n.expected,
            present: n.present,
            missing: n.missing,
            persistent: n.persistent,
            new: n.new,
            roles,
            unreadable,
        };
        (result, report)
    }

    /// The plugin state and the status line's parts: copies made
    /// persistent, registrations missing (within the grace or past it),
    /// nodes that could not be read.
    fn status(
        &self,
        roles: &[RoleReport],
        n: &Counts,
        elapsed: Duration,
        unreadable: &[String],
    ) -> (State, Vec<String>) {
        let within_grace = elapsed < self.grace;
        let &Counts {
            expected: n_expected,
            present: n_present,
            missing: n_missing,
            persistent: n_persistent,
            ..
        } = n;
        let mut state = State::Ok;
        let mut summary = Vec::new();
        if n_persistent > 0 {
            state = State::Critical;
            let paths: Vec<String> = roles.iter().flat_map(|r| r.persistent.clone()).collect();
            summary.push(format!(
                "{n_persistent} expected ephemeral{} persistent on the target ({}): a copy made {}",
                if n_persistent == 1 { " is" } else { "s are" },
                listed(&paths),
                if n_persistent == 1 {
                    "it so"
                } else {
                    "them so"
                }
            ));
        }
        let short: Vec<String> = roles
            .iter()
            .filter(|r| r.present < r.expected)
            .map(|r| format!("{} {} of {}", r.role, r.present, r.expected))
            .collect();
        if n_missing > 0 {
            state = state.worst(if within_grace {
                State::Warning
            } else {
                State::Critical
            });
            summary.push(format!(
                "{n_missing} of {n_expected} registrations missing {} after the cutover, {} the {} grace: {}",
                seconds(elapsed),
                if within_grace { "within" } else { "past" },
                seconds(self.grace),
                short.join(", ")
            ));
        } else {
            summary.push(format!(
                "{n_present} of {n_expected} registrations back in {} role{}",
                roles.iter().filter(|r| r.expected > 0).count(),
                if roles.iter().filter(|r| r.expected > 0).count() == 1 {
                    ""
                } else {
                    "s"
                }
            ));
        }
        if !unreadable.is_empty() {
            state = state.worst(State::Unknown);
            summary.push(format!(
                "{} node{} could not be read",
                unreadable.len(),
                if unreadable.len() == 1 { "" } else { "s" }
            ));
        }
        (state, summary)
    }

    /// The long output: the cutover, then each role's registrations.
    fn long_output(
        &self,
        roles: &[RoleReport],
        cutover_ms: i64,
        cutover_from: CutoverFrom,
        elapsed: Duration,
        unreadable: &[String],
    ) -> Vec<String> {
        let cutover_at = UNIX_EPOCH + Duration::from_millis(cutover_ms.max(0) as u64);
        let mut long = vec![format!(
            "cutover {} ({}), {} ago; grace {}",
            humantime::format_rfc3339_seconds(cutover_at),
            cutover_from.describe(),
            seconds(elapsed),
            seconds(self.grace)
        )];
        for r in roles.iter().filter(|r| !r.persistent.is_empty()) {
            long.push(format!(
                "{}: persistent on the target (copied; the application cannot register until it is deleted): {}",
                r.role,
                listed(&r.persistent)
            ));
        }
        for r in roles.iter().filter(|r| r.expected > 0) {
            if r.missing.is_empty() {
                long.push(format!(
                    "{} {} of {}: all back",
                    r.role, r.present, r.expected
                ));
            } else {
                long.push(format!(
                    "{} {} of {}: missing {}",
                    r.role,
                    r.present,
                    r.expected,
                    listed(&r.missing)
                ));
            }
        }
        for r in roles.iter().filter(|r| !r.new.is_empty()) {
            long.push(format!(
                "new on the target, not expected: {} {}",
                r.role,
                listed(&r.new)
            ));
        }
        long.extend(
            unreadable
                .iter()
                .take(LISTED)
                .map(|u| format!("unreadable: {u}")),
        );
        long
    }

    /// The totals, the time since the cutover against the grace, and each
    /// role's registrations present out of those expected.
    fn perfdata(&self, roles: &[RoleReport], n: &Counts, elapsed: Duration) -> Vec<Perf> {
        let mut perfdata = vec![
            Perf::count("expected", n.expected),
            Perf::count("present", n.present),
            Perf::count("missing", n.missing),
            Perf::count("persistent", n.persistent),
            Perf::count("new", n.new),
            Perf::seconds("since_cutover", elapsed.as_secs() as f64)
                .thresholds(None, Some(number(self.grace.as_secs_f64()))),
        ];
        for r in roles.iter().filter(|r| r.expected > 0) {
            let mut p = Perf::count(&r.role.replace(' ', "_"), r.present);
            p.max = Some(r.expected as f64);
            perfdata.push(p);
        }
        perfdata
    }
}

/// The registrations over all roles.
struct Counts {
    expected: u64,
    present: u64,
    missing: u64,
    persistent: u64,
    new: u64,
}

impl Counts {
    fn of(roles: &[RoleReport]) -> Counts {
        let sum = |f: fn(&RoleReport) -> u64| roles.iter().map(f).sum::<u64>();
        let (expected, present) = (sum(|r| r.expected), sum(|r| r.present));
        Counts {
            expected,
            present,
            missing: expected - present,
            persistent: sum(|r| r.persistent.len() as u64),
            new: sum(|r| r.new.len() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(grace: u64) -> EphemeralsCheck {
        EphemeralsCheck {
            path: "/".into(),
            grace: Duration::from_secs(grace),
            since: None,
            walk: WalkOptions::new(
                tree::EphemeralPolicy::Count,
                crate::exclude::Excludes::new::<&str>(&[]).expect("no patterns"),
            ),
            reader: ReaderOptions::default(),
        }
    }

    fn collect(expected: &[&str], target: &[&str]) -> (Expectation, Registered) {
        let paths = |ps: &[&str]| ps.iter().map(|s| s.to_string()).collect();
        (
            Expectation {
                from: "x.zkps".into(),
                ephemerals: paths(expected),
                cutover_ms: 0,
                cutover_from: CutoverFrom::Since,
                unreadable: Vec::new(),
            },
            Registered {
                from: "new:2181".into(),
                ephemerals: paths(target),
                ..Registered::default()
            },
        )
    }

    fn judge(c: &(Expectation, Registered), grace: u64, ago_s: i64) -> (CheckResult, Report) {
        let exp = Expectation {
            cutover_ms: unix_ms(SystemTime::now()) - ago_s * 1000,
            ..c.0.clone()
        };
        check(grace).evaluate(&exp, &c.1)
    }

    #[test]
    fn a_missing_broker_warns_within_the_grace_and_is_critical_after() {
        let c = collect(
            &["/k/brokers/ids/1", "/k/brokers/ids/2"],
            &["/k/brokers/ids/1"],
        );
        assert_eq!(judge(&c, 300, 10).0.state, State::Warning);
        let (r, _) = judge(&c, 300, 600);
        assert_eq!(r.state, State::Critical);
        assert!(r
            .long_output
            .iter()
            .any(|l| l == "kafka brokers 1 of 2: missing /k/brokers/ids/2"));
    }

    #[test]
    fn new_start_codes_and_sequence_numbers_are_the_same_registrations() {
        let c = collect(
            &[
                "/hbase/rs/h1,16020,100",
                "/app/election/n_0000000001",
                "/app/election/n_0000000002",
            ],
            &[
                "/hbase/rs/h1,16020,200",
                "/app/election/n_0000000007",
                "/app/election/n_0000000008",
            ],
        );
        let (r, rep) = judge(&c, 0, 10);
        assert_eq!(r.state, State::Ok, "{}", r.render());
        assert_eq!((rep.expected, rep.present, rep.new), (3, 3, 0));
    }

    #[test]
    fn a_persistent_copy_is_critical_even_within_the_grace() {
        let mut c = collect(&["/k/brokers/ids/1"], &[]);
        c.1.persistent.insert("/k/brokers/ids/1".into());
        let (r, rep) = judge(&c, 3600, 1);
        assert_eq!(r.state, State::Critical);
        assert_eq!(rep.persistent, 1);
    }

    #[test]
    fn registrations_not_expected_are_listed_but_do_not_alert() {
        let c = collect(
            &["/k/brokers/ids/1"],
            &["/k/brokers/ids/1", "/k/brokers/ids/9"],
        );
        let (r, rep) = judge(&c, 0, 10);
        assert_eq!(r.state, State::Ok);
        assert_eq!(rep.new, 1);
        assert!(r
            .long_output
            .iter()
            .any(|l| l.contains("new on the target") && l.contains("/k/brokers/ids/9")));
    }
}
