//! `check ephemerals` run by a pair's rounds (`expect`): are the
//! applications' registrations back on the target after the cutover?
//!
//! The evaluation is the check's own ([`EphemeralsCheck::evaluate`]), so the
//! state file, the passive result, Ganglia and Prometheus say what the check
//! would. Each round reads only the target's tree under the pair's path (no
//! data, no ACLs, one session); the expectation is read again only when its
//! file or directory changed, or every round when it is a live ensemble
//! (which is its own cutover time: `now`).

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::nagios::ephemerals::{EphemeralsCheck, Expectation, Report};
use crate::nagios::output::CheckResult;
use crate::source::SideSpec;
use crate::tree::EphemeralPolicy;

use super::config::{PairConfig, RegistrationsConfig};
use crate::report::state::{RegistrationsState, RoleRegistrations, Timestamp};

/// The Nagios service the registrations' passive results go to: the pair's
/// own service name with ` registrations` after it.
pub(crate) fn registrations_service(cfg: &PairConfig) -> String {
    format!("{} registrations", cfg.nagios_service)
}

/// What a file or directory looked like when it was read: its newest
/// modification time and total length, down to two levels (a data
/// directory's `version-2/`), so a new snapshot or log is noticed.
type Stamp = (SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    fn add(path: &Path, depth: u32, acc: &mut Stamp) -> Option<()> {
        let m = std::fs::metadata(path).ok()?;
        acc.0 = acc.0.max(m.modified().ok()?);
        acc.1 = acc.1.wrapping_add(m.len());
        if m.is_dir() && depth > 0 {
            for entry in std::fs::read_dir(path).ok()?.flatten() {
                add(&entry.path(), depth - 1, acc);
            }
        }
        Some(())
    }
    let mut acc = (SystemTime::UNIX_EPOCH, 0);
    add(path, 2, &mut acc)?;
    Some(acc)
}

/// A pair's registrations across rounds: the expectation as last read.
#[derive(Default)]
pub(crate) struct Registrations {
    cached: Option<(Stamp, Expectation)>,
}

/// The outcome of one look: the plugin's answer and what the state file
/// gets.
pub(crate) struct Looked {
    pub result: CheckResult,
    pub state: RegistrationsState,
}

fn check(cfg: &PairConfig, rc: &RegistrationsConfig) -> EphemeralsCheck {
    let mut walk = cfg.options.walk.clone();
    // The pair may skip ephemerals in its comparison; registrations are
    // nothing but ephemerals.
    walk.ephemerals = EphemeralPolicy::Count;
    EphemeralsCheck {
        path: cfg.options.path.clone(),
        grace: rc.grace,
        since: rc.since,
        walk,
        reader: cfg.options.reader.clone(),
    }
}

impl Registrations {
    /// Evaluates the target against the expectation; never fails: what
    /// cannot be read is UNKNOWN, with why.
    pub(crate) async fn look(
        &mut self,
        cfg: &PairConfig,
        rc: &RegistrationsConfig,
        list_limit: usize,
    ) -> Looked {
        let check = check(cfg, rc);
        let now = Timestamp::now();
        let file = match &rc.expect {
            SideSpec::File { path, .. } => Some(path.as_path()),
            SideSpec::Live(_) => None,
        };
        let current = file.and_then(stamp);
        let unchanged =
            matches!((&self.cached, current), (Some((was, _)), Some(now)) if *was == now);
        if !unchanged {
            self.cached = None;
            let exp = match check.expectation(&rc.expect).await {
                Ok(exp) => exp,
                Err(e) => return unknown(rc, now, format!("expectation: {e}")),
            };
            match current {
                Some(s) => self.cached = Some((s, exp)),
                // A live expectation is read again every round.
                None => return judge(&check, cfg, rc, &exp, now, list_limit).await,
            }
        }
        match &self.cached {
            Some((_, exp)) => judge(&check, cfg, rc, exp, now, list_limit).await,
            None => unknown(rc, now, "expectation not read".into()),
        }
    }
}

async fn judge(
    check: &EphemeralsCheck,
    cfg: &PairConfig,
    rc: &RegistrationsConfig,
    exp: &Expectation,
    now: Timestamp,
    list_limit: usize,
) -> Looked {
    match check.registered(&cfg.target, exp).await {
        Ok(reg) => {
            let (result, report) = check.evaluate(exp, &reg);
            Looked {
                state: state_of(&report, now, list_limit),
                result,
            }
        }
        Err(e) => unknown(rc, now, format!("target: {e}")),
    }
}

impl Looked {
    /// A look that could not finish.
    pub(crate) fn unknown(rc: &RegistrationsConfig, reason: &str) -> Looked {
        unknown(rc, Timestamp::now(), reason.to_string())
    }
}

fn unknown(rc: &RegistrationsConfig, now: Timestamp, reason: String) -> Looked {
    let result = CheckResult::unknown("EPHEMERALS", &reason);
    Looked {
        state: RegistrationsState {
            state: result.state.as_str().to_string(),
            summary: reason,
            checked: now,
            expected_from: rc.expect.describe(),
            cutover: None,
            cutover_from: None,
            grace_seconds: rc.grace.as_secs(),
            expected: 0,
            present: 0,
            missing: 0,
            persistent: 0,
            new: 0,
            roles: Vec::new(),
        },
        result,
    }
}

/// The state file's view of the check's report.
fn state_of(r: &Report, now: Timestamp, list_limit: usize) -> RegistrationsState {
    let cutover_from = serde_json::to_value(r.cutover_from)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string));
    RegistrationsState {
        state: r.state.to_string(),
        summary: r.summary.clone(),
        checked: now,
        expected_from: r.expected_from.clone(),
        cutover: Some(Timestamp(
            SystemTime::UNIX_EPOCH + Duration::from_secs(r.cutover_unix),
        )),
        cutover_from,
        grace_seconds: r.grace_seconds,
        expected: r.expected,
        present: r.present,
        missing: r.missing,
        persistent: r.persistent,
        new: r.new,
        roles: r
            .roles
            .iter()
            .filter(|role| role.expected > 0)
            .map(|role| RoleRegistrations {
                role: role.role.to_string(),
                expected: role.expected,
                present: role.present,
                missing: role.expected - role.present,
                missing_paths: role.missing.iter().take(list_limit).cloned().collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_changed_in_a_subdirectory_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("version-2");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("snapshot.1"), b"a").unwrap();
        let before = stamp(dir.path()).expect("a stamp");
        std::fs::write(sub.join("log.2"), b"more").unwrap();
        assert_ne!(stamp(dir.path()), Some(before));
        assert_eq!(stamp(&dir.path().join("absent")), None);
    }
}
