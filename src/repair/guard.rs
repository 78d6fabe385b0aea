//! What a plan is refused for before its first write: the shapes that an
//! operator's typo gives (a plan that deletes most of the target, a target
//! that applications are using). Each refusal names its override.
//!
//! A dry run is never refused for these: it shows the plan, with a note of
//! what `--apply` would refuse, so that the operator can judge it.

use super::plan::{ActionKind, PlanSummary};

/// Deletes at most, by default: whichever is fewer of this many nodes...
pub const DEFAULT_MAX_DELETE: u64 = 1_000;
/// ...and this share (in percent) of the target subtree's nodes.
pub const DEFAULT_MAX_DELETE_PERCENT: u64 = 10;

/// The limits a plan is held to.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// `--max-delete N`: at most N deletes, whatever the share; `None`,
    /// the default rule.
    pub max_delete: Option<u64>,
    /// `--target-in-use`: the operator knows applications use the target.
    pub target_in_use: bool,
}

/// Why a plan must not be applied, and the flag that says it is meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub fix: String,
}

/// The default cap for a target subtree of `nodes` nodes.
pub fn default_max_delete(nodes: u64) -> u64 {
    DEFAULT_MAX_DELETE.min(nodes * DEFAULT_MAX_DELETE_PERCENT / 100)
}

/// What `plan` is refused for under `limits`; empty when it may be applied.
pub fn check(plan: &PlanSummary, limits: &Limits) -> Vec<Refusal> {
    let mut refused = Vec::new();
    let deletes = plan.actions.get(&ActionKind::Delete).copied().unwrap_or(0);
    let nodes = plan.target_nodes;
    let share = |n: u64| {
        if nodes == 0 {
            0.0
        } else {
            n as f64 * 100.0 / nodes as f64
        }
    };
    match limits.max_delete {
        Some(cap) if deletes > cap => refused.push(Refusal {
            reason: format!(
                "the plan deletes {deletes} node(s) ({:.1} % of the target subtree's {nodes}), more than --max-delete {cap}",
                share(deletes)
            ),
            fix: format!("check the source and --path; if these deletes are meant, give --max-delete {deletes}"),
        }),
        None if deletes > default_max_delete(nodes) => refused.push(Refusal {
            reason: format!(
                "the plan deletes {deletes} node(s), {:.1} % of the target subtree's {nodes}: more than the default limit of {DEFAULT_MAX_DELETE} nodes or {DEFAULT_MAX_DELETE_PERCENT} %, whichever is fewer ({})",
                share(deletes),
                default_max_delete(nodes)
            ),
            fix: format!(
                "a source chroot or --path that is mistyped, or empty, looks like this; if these deletes are meant, give --max-delete {deletes}"
            ),
        }),
        _ => {}
    }
    if plan.target_ephemerals > 0 && !limits.target_in_use {
        refused.push(Refusal {
            reason: format!(
                "the target subtree holds {} ephemeral node(s) of live sessions (e.g. {}): applications are using it, so it may be the ensemble of record (are --source and --target swapped?)",
                plan.target_ephemerals,
                plan.target_ephemeral_examples.join(", ")
            ),
            fix: "if writing to it is meant, give --target-in-use".into(),
        });
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(deletes: u64, nodes: u64, ephemerals: u64) -> PlanSummary {
        let mut p = PlanSummary::default();
        p.actions.insert(ActionKind::Delete, deletes);
        p.target_nodes = nodes;
        p.target_ephemerals = ephemerals;
        p.target_ephemeral_examples = vec!["/app/brokers/1".into()];
        p
    }

    #[test]
    fn the_default_cap_is_the_fewer_of_a_thousand_and_a_tenth() {
        assert_eq!(default_max_delete(100), 10);
        assert_eq!(default_max_delete(50_000), 1_000);
        assert_eq!(default_max_delete(5), 0);
    }

    #[test]
    fn a_plan_that_empties_the_target_is_refused_with_the_count_and_share() {
        let r = check(&plan(120, 121, 0), &Limits::default());
        assert_eq!(r.len(), 1);
        assert!(
            r[0].reason.contains("deletes 120 node(s), 99.2 %"),
            "{:?}",
            r
        );
        assert!(r[0].fix.contains("--max-delete 120"), "{:?}", r);
    }

    #[test]
    fn an_explicit_cap_replaces_the_share_rule() {
        let limits = Limits {
            max_delete: Some(120),
            ..Limits::default()
        };
        assert!(check(&plan(120, 121, 0), &limits).is_empty());
        assert_eq!(check(&plan(121, 121, 0), &limits).len(), 1);
    }

    #[test]
    fn a_target_with_live_ephemerals_is_refused_unless_said() {
        let r = check(&plan(0, 10, 2), &Limits::default());
        assert!(r[0].reason.contains("/app/brokers/1"), "{:?}", r);
        let said = Limits {
            target_in_use: true,
            ..Limits::default()
        };
        assert!(check(&plan(0, 10, 2), &said).is_empty());
    }
}
