//! The confirmation window: a difference becomes drift only once it has
//! persisted across rounds, so the normal lag of a sync tool is not an alarm.
//!
//! Nothing here reads a node: what a round (or an early re-check) sees has
//! already passed its comparison's own re-check, which tells a target still
//! catching up with a busy source (lag) from one that holds neither of the
//! source's states (see `compare::lags`). The window only asks how long a
//! difference has lasted.
//!
//! A difference is keyed by (path, kind). Each successful round either sees
//! it (its run grows by one round) or not (the run ends: healed). A run is
//! confirmed once it has `rounds` rounds and is `min_age` old, measured from
//! the start of the round that first saw it to the start of the current one
//! — the time the difference is known to have lasted. A failed round is not
//! evidence either way: it is simply not observed.
//!
//! Between rounds, an early re-check of some subtrees ([`Tracker::recheck`])
//! replaces what is tracked inside them without being a round: what it finds
//! starts with 0 rounds (so confirmation takes as many rounds as without it)
//! and what it no longer finds is healed at once.

use std::collections::HashMap;

use crate::report::{CompareReport, DiffKind};
use crate::tree::path::within;

use super::config::ConfirmPolicy;
use crate::report::state::{PairState, Timestamp, Tracked};

/// Path of the entries standing for differences a comparison only counted.
pub(crate) const COUNTED_PATH: &str = "*";

/// One difference as a round saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Seen {
    pub path: String,
    pub kind: String,
    /// For counted-only differences: how many.
    pub count: Option<u64>,
}

/// Every difference a finished comparison reports: the listed ones (the
/// agent lists all) and, per kind, the ones past the comparison's in-memory
/// cap, which it only counted.
pub(crate) fn seen_in(report: &CompareReport) -> Vec<Seen> {
    let mut seen: Vec<Seen> = report
        .differences
        .iter()
        .map(|d| Seen {
            path: d.path.clone(),
            kind: d.kind.as_str().to_string(),
            count: None,
        })
        .collect();
    for kind in DiffKind::ALL {
        let listed = report.differences.iter().filter(|d| d.kind == kind).count() as u64;
        let total = report
            .summary
            .differences
            .get(kind.as_str())
            .copied()
            .unwrap_or(0);
        if total > listed {
            seen.push(Seen {
                path: COUNTED_PATH.to_string(),
                kind: kind.as_str().to_string(),
                count: Some(total - listed),
            });
        }
    }
    seen
}

#[derive(Clone, Debug)]
struct Run {
    first_seen: Timestamp,
    rounds: u32,
    confirmed: bool,
    count: Option<u64>,
}

/// What changed in one round, for the logs.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Changes {
    /// Differences that became drift this round.
    pub confirmed: Vec<(String, String)>,
    /// Drift that is gone this round.
    pub healed: Vec<(String, String)>,
}

impl Changes {
    /// `self` then `later`, as one.
    pub(crate) fn then(mut self, later: Changes) -> Changes {
        self.confirmed.extend(later.confirmed);
        self.healed.extend(later.healed);
        self
    }
}

/// The tracked differences of one pair, and what they amount to.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct View {
    /// Oldest first.
    pub confirmed: Vec<Tracked>,
    pub unconfirmed: Vec<Tracked>,
    /// Age of the oldest unconfirmed difference, in seconds.
    pub lag_seconds: f64,
}

impl View {
    #[cfg(test)]
    pub(crate) fn confirmed_total(&self) -> u64 {
        self.confirmed.iter().map(Tracked::weight).sum()
    }

    pub(crate) fn unconfirmed_total(&self) -> u64 {
        self.unconfirmed.iter().map(Tracked::weight).sum()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Tracker {
    policy: ConfirmPolicy,
    runs: HashMap<(String, String), Run>,
}

impl Tracker {
    pub(crate) fn new(policy: ConfirmPolicy) -> Tracker {
        Tracker {
            policy,
            runs: HashMap::new(),
        }
    }

    /// Continues the runs a state file recorded (an agent restart or a
    /// reload must not restart every confirmation window). Confirmation is
    /// decided again at the next round, under `policy`.
    pub(crate) fn restore(policy: ConfirmPolicy, state: &PairState) -> Tracker {
        let mut t = Tracker::new(policy);
        for (e, confirmed) in state
            .confirmed
            .iter()
            .map(|e| (e, true))
            .chain(state.unconfirmed.iter().map(|e| (e, false)))
        {
            t.runs.insert(
                (e.path.clone(), e.kind.clone()),
                Run {
                    first_seen: e.first_seen,
                    rounds: e.rounds,
                    confirmed,
                    count: e.count,
                },
            );
        }
        t
    }

    pub(crate) fn set_policy(&mut self, policy: ConfirmPolicy) {
        self.policy = policy;
    }

    /// Takes in what a successful round that started at `started` saw.
    pub(crate) fn observe(&mut self, started: Timestamp, seen: Vec<Seen>) -> Changes {
        let mut next: HashMap<(String, String), Run> = HashMap::with_capacity(seen.len());
        let mut changes = Changes::default();
        for s in seen {
            let key = (s.path, s.kind);
            let mut run = match self.runs.remove(&key) {
                Some(mut run) => {
                    run.rounds = run.rounds.saturating_add(1);
                    run
                }
                None => Run {
                    first_seen: started,
                    rounds: 1,
                    confirmed: false,
                    count: None,
                },
            };
            run.count = s.count;
            if !run.confirmed
                && run.rounds >= self.policy.rounds
                && run.first_seen.seconds_until(started) >= self.policy.min_age.as_secs_f64()
            {
                run.confirmed = true;
                changes.confirmed.push(key.clone());
            }
            next.insert(key, run);
        }
        // What is left was not seen this round: healed.
        changes.healed = self
            .runs
            .drain()
            .filter(|(_, run)| run.confirmed)
            .map(|(key, _)| key)
            .collect();
        changes.confirmed.sort();
        changes.healed.sort();
        self.runs = next;
        changes
    }

    /// Every tracked difference, as a round would see it again: what a round
    /// observes when the watches say nothing changed.
    pub(crate) fn current(&self) -> Vec<Seen> {
        let mut seen: Vec<Seen> = self
            .runs
            .iter()
            .map(|((path, kind), run)| Seen {
                path: path.clone(),
                kind: kind.clone(),
                count: run.count,
            })
            .collect();
        seen.sort_by(|a, b| (&a.path, &a.kind).cmp(&(&b.path, &b.kind)));
        seen
    }

    /// Paths tracked as the root of a one-sided or unreadable subtree: a
    /// re-check of anything below one of them must start there, or it would
    /// report pieces of a subtree a walk reports once, at its root.
    pub(crate) fn subtree_roots(&self) -> Vec<String> {
        self.runs
            .keys()
            .filter(|(path, kind)| {
                path != COUNTED_PATH
                    && [
                        DiffKind::MissingInTarget,
                        DiffKind::ExtraInTarget,
                        DiffKind::Unreadable,
                    ]
                    .iter()
                    .any(|k| k.as_str() == kind)
            })
            .map(|(path, _)| path.clone())
            .collect()
    }

    /// Takes in a re-check, started at `at`, of the subtrees `scopes`: what
    /// is tracked inside them is replaced by `seen`, what is outside stays.
    /// This is not a round: a difference it finds starts a run of 0 rounds
    /// (the rounds that follow confirm it as they would have without the
    /// early look), and one it no longer finds is healed at once.
    pub(crate) fn recheck(&mut self, at: Timestamp, scopes: &[String], seen: Vec<Seen>) -> Changes {
        let keys: std::collections::HashSet<(String, String)> = seen
            .iter()
            .map(|s| (s.path.clone(), s.kind.clone()))
            .collect();
        let mut changes = Changes::default();
        self.runs.retain(|key, run| {
            let (path, _) = key;
            let inside = path != COUNTED_PATH && scopes.iter().any(|s| within(path, s));
            if !inside || keys.contains(key) {
                return true;
            }
            if run.confirmed {
                changes.healed.push(key.clone());
            }
            false
        });
        for s in seen {
            let run = self.runs.entry((s.path, s.kind)).or_insert(Run {
                first_seen: at,
                rounds: 0,
                confirmed: false,
                count: None,
            });
            run.count = s.count;
        }
        changes.healed.sort();
        changes
    }

    /// The tracked differences with their ages at `now`.
    pub(crate) fn view(&self, now: Timestamp) -> View {
        let mut view = View::default();
        for ((path, kind), run) in &self.runs {
            let entry = Tracked {
                path: path.clone(),
                kind: kind.clone(),
                first_seen: run.first_seen,
                age_seconds: round_ms(run.first_seen.seconds_until(now)),
                rounds: run.rounds,
                count: run.count,
            };
            if run.confirmed {
                view.confirmed.push(entry);
            } else {
                view.unconfirmed.push(entry);
            }
        }
        let order = |a: &Tracked, b: &Tracked| {
            (a.first_seen, &a.path, &a.kind).cmp(&(b.first_seen, &b.path, &b.kind))
        };
        view.confirmed.sort_by(order);
        view.unconfirmed.sort_by(order);
        view.lag_seconds = view
            .unconfirmed
            .first()
            .map(|e| e.age_seconds)
            .unwrap_or(0.0);
        view
    }
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn at(secs: u64) -> Timestamp {
        Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs))
    }

    fn seen(items: &[(&str, &str)]) -> Vec<Seen> {
        items
            .iter()
            .map(|(p, k)| Seen {
                path: p.to_string(),
                kind: k.to_string(),
                count: None,
            })
            .collect()
    }

    fn policy(rounds: u32, min_age_secs: u64) -> ConfirmPolicy {
        ConfirmPolicy {
            rounds,
            min_age: Duration::from_secs(min_age_secs),
        }
    }

    #[test]
    fn a_difference_is_drift_from_its_second_round_by_default() {
        let mut t = Tracker::new(policy(2, 0));
        let c = t.observe(at(0), seen(&[("/a", "data")]));
        assert!(c.confirmed.is_empty());
        let v = t.view(at(1));
        assert_eq!((v.confirmed.len(), v.unconfirmed.len()), (0, 1));
        assert_eq!(v.lag_seconds, 1.0);
        let c = t.observe(at(60), seen(&[("/a", "data")]));
        assert_eq!(c.confirmed, vec![("/a".into(), "data".into())]);
        let v = t.view(at(61));
        assert_eq!(v.confirmed.len(), 1);
        assert_eq!(v.confirmed[0].rounds, 2);
        assert_eq!(v.confirmed[0].first_seen, at(0));
        assert_eq!(v.confirmed[0].age_seconds, 61.0);
        assert_eq!(v.lag_seconds, 0.0);
    }

    #[test]
    fn a_difference_that_heals_before_the_window_is_never_drift() {
        let mut t = Tracker::new(policy(2, 0));
        t.observe(at(0), seen(&[("/a", "data")]));
        let c = t.observe(at(60), seen(&[]));
        assert_eq!(c, Changes::default());
        assert_eq!(t.view(at(61)), View::default());
    }

    #[test]
    fn a_reappearing_difference_starts_a_new_run() {
        let mut t = Tracker::new(policy(2, 0));
        t.observe(at(0), seen(&[("/a", "data")]));
        t.observe(at(60), seen(&[]));
        t.observe(at(120), seen(&[("/a", "data")]));
        let v = t.view(at(121));
        assert_eq!(v.unconfirmed[0].first_seen, at(120));
        assert_eq!(v.unconfirmed[0].rounds, 1);
    }

    #[test]
    fn the_age_condition_holds_back_confirmation_until_it_is_met() {
        let mut t = Tracker::new(policy(2, 90));
        t.observe(at(0), seen(&[("/a", "data")]));
        assert!(t
            .observe(at(60), seen(&[("/a", "data")]))
            .confirmed
            .is_empty());
        assert_eq!(
            t.observe(at(120), seen(&[("/a", "data")])).confirmed.len(),
            1
        );
    }

    #[test]
    fn healed_drift_is_reported_and_dropped() {
        let mut t = Tracker::new(policy(1, 0));
        t.observe(at(0), seen(&[("/a", "data"), ("/b", "acl")]));
        let c = t.observe(at(60), seen(&[("/b", "acl")]));
        assert_eq!(c.healed, vec![("/a".into(), "data".into())]);
        assert_eq!(t.view(at(60)).confirmed.len(), 1);
    }

    #[test]
    fn the_same_path_with_another_kind_is_another_difference() {
        let mut t = Tracker::new(policy(2, 0));
        t.observe(at(0), seen(&[("/a", "data")]));
        t.observe(at(60), seen(&[("/a", "acl")]));
        let v = t.view(at(60));
        assert_eq!(v.confirmed.len(), 0);
        assert_eq!(v.unconfirmed[0].kind, "acl");
    }

    #[test]
    fn a_restored_run_keeps_its_first_seen_and_rounds() {
        let mut t = Tracker::new(policy(3, 0));
        t.observe(at(0), seen(&[("/a", "data")]));
        t.observe(at(60), seen(&[("/a", "data")]));
        let view = t.view(at(61));
        let mut state = crate::report::state::tests::sample();
        state.confirmed = view.confirmed;
        state.unconfirmed = view.unconfirmed;
        let mut t = Tracker::restore(policy(3, 0), &state);
        let c = t.observe(at(120), seen(&[("/a", "data")]));
        assert_eq!(c.confirmed.len(), 1);
        assert_eq!(t.view(at(120)).confirmed[0].first_seen, at(0));
    }

    #[test]
    fn counted_only_differences_are_tracked_by_kind_with_their_count() {
        let mut t = Tracker::new(policy(2, 0));
        let counted = |n| Seen {
            path: COUNTED_PATH.into(),
            kind: "extra_in_target".into(),
            count: Some(n),
        };
        t.observe(at(0), vec![counted(7)]);
        t.observe(at(60), vec![counted(9)]);
        let v = t.view(at(60));
        assert_eq!(v.confirmed_total(), 9);
    }

    #[test]
    fn a_recheck_replaces_only_what_is_inside_its_scopes_and_counts_no_round() {
        let mut t = Tracker::new(policy(2, 0));
        t.observe(at(0), seen(&[("/a/x", "data"), ("/b", "data")]));
        t.observe(at(60), seen(&[("/a/x", "data"), ("/b", "data")]));
        // /a/x healed, /a/y appeared; /b is outside the scope and stays.
        let c = t.recheck(at(70), &["/a".to_string()], seen(&[("/a/y", "acl")]));
        assert_eq!(c.healed, vec![("/a/x".into(), "data".into())]);
        let v = t.view(at(70));
        assert_eq!(v.confirmed.len(), 1);
        assert_eq!(v.confirmed[0].path, "/b");
        assert_eq!(v.unconfirmed[0].path, "/a/y");
        assert_eq!(v.unconfirmed[0].rounds, 0);
        assert_eq!(v.unconfirmed[0].first_seen, at(70));
        // Two rounds are still needed after the early sighting.
        assert!(t.observe(at(120), t.current()).confirmed.is_empty());
        let c = t.observe(at(180), t.current());
        assert_eq!(c.confirmed, vec![("/a/y".into(), "acl".into())]);
        let v = t.view(at(180));
        let y = v.confirmed.iter().find(|e| e.path == "/a/y").unwrap();
        assert_eq!((y.first_seen, y.rounds), (at(70), 2));
    }

    #[test]
    fn a_recheck_leaves_a_difference_it_sees_again_as_it_was() {
        let mut t = Tracker::new(policy(3, 0));
        t.observe(at(0), seen(&[("/a", "data")]));
        t.observe(at(60), seen(&[("/a", "data")]));
        t.recheck(at(70), &["/a".to_string()], seen(&[("/a", "data")]));
        let v = t.view(at(70));
        assert_eq!(
            (v.unconfirmed[0].rounds, v.unconfirmed[0].first_seen),
            (2, at(0))
        );
    }

    #[test]
    fn subtree_roots_are_the_one_sided_and_unreadable_entries() {
        let mut t = Tracker::new(policy(2, 0));
        t.observe(
            at(0),
            seen(&[
                ("/m", "missing_in_target"),
                ("/d", "data"),
                ("/u", "unreadable"),
            ]),
        );
        let mut roots = t.subtree_roots();
        roots.sort();
        assert_eq!(roots, vec!["/m".to_string(), "/u".to_string()]);
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_unconfirmed_difference() {
        let mut t = Tracker::new(policy(5, 0));
        t.observe(at(0), seen(&[("/old", "data")]));
        t.observe(at(30), seen(&[("/old", "data"), ("/new", "data")]));
        let v = t.view(at(40));
        assert_eq!(v.lag_seconds, 40.0);
        assert_eq!(v.unconfirmed[0].path, "/old");
    }
}
