//! What a repair did or would do, as text for people and JSON for programs.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::apply::Problem;
use super::plan::{ActionKind, ActionView, PlanSummary, Skip, SkipReason};
use super::resume::ApplyCounts;
use super::RepairOptions;
use crate::error::{EXIT_DIFFERENT, EXIT_IDENTICAL};
use crate::report::text::printable;
use crate::report::CompareReport;
use crate::source::SideSpec;

#[derive(Clone, Debug, Serialize)]
pub struct ResumeInfo {
    pub file: String,
    /// Actions settled by earlier runs.
    pub from_action: u64,
    pub of: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ApplyReport {
    /// Totals over every run of this plan (a resumed plan included).
    #[serde(flatten)]
    pub counts: ApplyCounts,
    /// Actions settled by this run.
    pub settled_this_run: u64,
    pub elapsed_seconds: f64,
    pub actions_per_second: f64,
    /// Conflicts and failures of this run.
    pub problems: Vec<Problem>,
    pub problems_not_listed: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Remaining {
    pub path: String,
    pub kind: &'static str,
}

/// The compare after applying.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    pub verdict: crate::report::Verdict,
    pub identical: bool,
    pub confirmed: u64,
    /// Paths a side could not read: not differences, but not verified.
    pub unreadable: u64,
    /// Per kind, only kinds that occur.
    pub differences: BTreeMap<&'static str, u64>,
    pub listed: Vec<Remaining>,
}

impl Verification {
    pub(crate) fn from_report(r: &CompareReport, limit: usize) -> Verification {
        Verification {
            verdict: r.summary.verdict,
            identical: r.summary.identical,
            confirmed: r.summary.confirmed,
            unreadable: r.summary.unreadable,
            differences: r
                .summary
                .differences
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| (*k, *n))
                .collect(),
            listed: r
                .differences
                .iter()
                .take(if limit == 0 { usize::MAX } else { limit })
                .map(|d| Remaining {
                    path: d.path.clone(),
                    kind: d.kind.as_str(),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RepairReport {
    pub zkparity_version: &'static str,
    /// `dry_run` or `apply`.
    pub mode: &'static str,
    pub source: String,
    pub target: String,
    pub path: String,
    pub delete_extra: bool,
    /// False where the source holds no ACLs (zktreeutil XML): nodes are
    /// created world:anyone:cdrwa and ACLs are not repaired.
    pub acls_repaired: bool,
    pub plan: PlanSummary,
    pub actions_not_listed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<ResumeInfo>,
    pub notes: Vec<String>,
    /// The snapshot of the target taken before the first write: what
    /// `repair --source BACKUP --apply --delete-extra` restores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
}

impl RepairReport {
    pub(crate) fn new(
        args: &RepairOptions,
        source: &SideSpec,
        target: &SideSpec,
        path: &str,
        acls: bool,
    ) -> RepairReport {
        RepairReport {
            zkparity_version: env!("CARGO_PKG_VERSION"),
            mode: if args.apply { "apply" } else { "dry_run" },
            source: source.describe(),
            target: target.describe(),
            path: path.to_string(),
            delete_extra: args.delete_extra,
            acls_repaired: acls,
            plan: PlanSummary::default(),
            actions_not_listed: 0,
            resumed: None,
            notes: Vec::new(),
            backup: None,
            apply: None,
            verification: None,
        }
    }

    pub(crate) fn set_plan(&mut self, plan: PlanSummary) {
        self.actions_not_listed = plan.total_actions - plan.listed.len() as u64;
        self.plan = plan;
    }

    /// 0: nothing to do (dry run), or applied and the compare found the
    /// sides identical; 1: a dry run found work or differences it cannot
    /// repair, or the target still differs after applying.
    pub fn exit_code(&self) -> i32 {
        let clean = match &self.verification {
            Some(v) => v.identical,
            None => self.plan.total_actions == 0 && self.plan.unrepaired() == 0,
        };
        if clean {
            EXIT_IDENTICAL
        } else {
            EXIT_DIFFERENT
        }
    }

    pub fn json(&self) -> String {
        // Plain data types: serialising them cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn text(&self) -> String {
        self.text_as("repair")
    }

    /// [`RepairReport::text`] headed with another command's name (sync's
    /// dry run is repair's plan), the rest unchanged.
    pub fn text_as(&self, command: &str) -> String {
        let mut o = String::new();
        self.text_into(&mut o, command);
        o
    }

    fn text_into(&self, o: &mut String, command: &str) {
        self.header_into(o, command);
        let skipped = self.plan_into(o);
        if self.apply.is_none() {
            self.listing_into(o, skipped);
        }
        if let Some(a) = &self.apply {
            applied_into(o, a);
            list_skips(o, &self.plan.listed_skips, skipped);
        }
        if let Some(v) = &self.verification {
            verification_into(o, v);
        }
    }

    /// What ran, on what, and what was kept before the first write.
    fn header_into(&self, o: &mut String, command: &str) {
        let _ = match (&self.apply, &self.resumed) {
            (None, _) => writeln!(
                o,
                "zkparity {command}: dry run, nothing written (--apply applies this plan)"
            ),
            (Some(_), None) => writeln!(o, "zkparity {command}: applied"),
            (Some(_), Some(r)) => writeln!(
                o,
                "zkparity {command}: applied, resuming {} at action {} of {}",
                r.file, r.from_action, r.of
            ),
        };
        let _ = writeln!(o, "  source  {}", self.source);
        let _ = writeln!(o, "  target  {}", self.target);
        let _ = writeln!(o, "  path    {}", self.path);
        for note in &self.notes {
            let _ = writeln!(o, "  note: {note}");
        }
        if let Some(file) = &self.backup {
            let _ = writeln!(
                o,
                "  backup  {file} (the target before the first write; restore with: zkparity repair --source {file} --target {} --path {} --apply --delete-extra)",
                self.target, self.path
            );
        }
        if !self.acls_repaired {
            let _ = writeln!(
                o,
                "  note: the source holds no ACLs: nodes are created world:anyone:cdrwa and ACLs are left as they are"
            );
        }
    }

    /// The plan's counts by action and what it leaves alone; returns how
    /// many nodes it leaves alone.
    fn plan_into(&self, o: &mut String) -> u64 {
        let p = &self.plan;
        let _ = writeln!(
            o,
            "\nplan: {} action{}, about {} writes, {} data bytes",
            p.total_actions,
            if p.total_actions == 1 { "" } else { "s" },
            p.planned_writes,
            p.data_bytes
        );
        for kind in ActionKind::ALL {
            let n = p.actions.get(&kind).copied().unwrap_or(0);
            let why = match kind {
                ActionKind::SequenceCounter if n > 0 => {
                    "  (counters topped up by creating and deleting a sequential child)"
                }
                ActionKind::Delete
                    if p.skipped.get(&SkipReason::ExtraKept).copied().unwrap_or(0) > 0 =>
                {
                    "  (--delete-extra to delete extra nodes)"
                }
                _ => "",
            };
            let _ = writeln!(o, "  {:<18}{n:>9}{why}", kind.as_str());
        }
        let skipped: u64 = p.skipped.values().sum();
        if skipped > 0 {
            let _ = writeln!(o, "\nleft alone: {skipped}");
            for (reason, n) in &p.skipped {
                if *n == 0 {
                    continue;
                }
                let why = match reason {
                    SkipReason::SourceEphemeral => "ephemeral on the source: never created",
                    SkipReason::NodeKind => "ephemeral on one side, persistent on the other",
                    SkipReason::Unreadable => "a side cannot read it",
                    SkipReason::AclHidden => {
                        "ACL digest ids hidden by the source (no ADMIN): source credentials with ADMIN copy it"
                    }
                    SkipReason::ExtraKept => "on the target only: --delete-extra deletes it",
                    SkipReason::ExtraNotDeletable => {
                        "on the target only, but holds something that must stay"
                    }
                };
                let extra = if *reason == SkipReason::ExtraKept {
                    format!(" ({} nodes)", p.extra_nodes_kept)
                } else {
                    String::new()
                };
                let _ = writeln!(o, "  {:<20}{n:>7}{extra}  {why}", reason.as_str());
            }
        }
        skipped
    }

    /// A dry run's list of planned actions and of what is left alone.
    fn listing_into(&self, o: &mut String, skipped: u64) {
        let p = &self.plan;

        if !p.listed.is_empty() {
            let _ = writeln!(
                o,
                "\nactions{}:",
                if self.actions_not_listed > 0 {
                    format!(" (first {}; --limit 0 lists all)", p.listed.len())
                } else {
                    String::new()
                }
            );
            for a in &p.listed {
                let _ = writeln!(o, "  {}", action_line(a));
            }
        }
        list_skips(o, &p.listed_skips, skipped);
    }
}

fn applied_into(o: &mut String, a: &ApplyReport) {
    let c = &a.counts;
    let _ = writeln!(
                o,
                "\napplied: {} action{} in {:.1}s ({:.0}/s); in all {} applied, {} already done, {} conflicts, {} failed; {} writes sent",
                a.settled_this_run,
                if a.settled_this_run == 1 { "" } else { "s" },
                a.elapsed_seconds,
                a.actions_per_second,
                c.applied,
                c.already_done,
                c.conflicts,
                c.failed,
                c.writes
            );
    for pr in &a.problems {
        let _ = writeln!(
            o,
            "  {:<9}{:<18}{}: {}",
            pr.outcome,
            pr.op.as_str(),
            printable(&pr.path),
            pr.reason
        );
    }
    if a.problems_not_listed > 0 {
        let _ = writeln!(o, "  ... and {} more", a.problems_not_listed);
    }
}

fn verification_into(o: &mut String, v: &Verification) {
    if v.identical {
        let _ = writeln!(o, "\nverified: the target now matches the source");
    } else {
        let kinds: Vec<String> = v
            .differences
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            o,
            "\nNOT verified: the target still differs from the source: {} difference{} ({})",
            v.confirmed,
            if v.confirmed == 1 { "" } else { "s" },
            kinds.join(", ")
        );
        for d in &v.listed {
            let _ = writeln!(o, "  {:<18}{}", d.kind, printable(&d.path));
        }
    }
}

fn list_skips(o: &mut String, skips: &[Skip], total: u64) {
    if skips.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\nleft alone{}:",
        if (skips.len() as u64) < total {
            format!(" (first {})", skips.len())
        } else {
            String::new()
        }
    );
    for s in skips {
        let _ = writeln!(
            o,
            "  {:<20}{}: {}",
            s.reason.as_str(),
            printable(&s.path),
            printable(&s.detail)
        );
    }
}

fn action_line(a: &ActionView) -> String {
    let path = printable(&a.path);
    let acl = |acl: &Option<Vec<String>>| {
        acl.as_ref()
            .map(|a| format!("[{}]", a.join(", ")))
            .unwrap_or_default()
    };
    let detail = match a.op {
        ActionKind::Create => format!("{} bytes, acl {}", a.data_length.unwrap_or(0), acl(&a.acl)),
        ActionKind::SetData => format!(
            "{} bytes, if the target is still at version {}",
            a.data_length.unwrap_or(0),
            a.version.unwrap_or(-1)
        ),
        ActionKind::SetAcl => format!(
            "{}, if the target is still at ACL version {}",
            acl(&a.acl),
            a.version.unwrap_or(-1)
        ),
        ActionKind::SequenceCounter => format!(
            "next sequential number {} -> {}",
            a.next_sequence_from.unwrap_or(0),
            a.next_sequence.unwrap_or(0)
        ),
        ActionKind::Delete => format!(
            "if the target is still at version {}",
            a.version.unwrap_or(-1)
        ),
    };
    format!("{:<18}{path}  ({detail})", a.op.as_str())
}
