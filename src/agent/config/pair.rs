//! One `[[pair]]` resolved: its schedule, its sides, what is compared and
//! how, where its servers' AdminServers are, and the registrations its
//! target must hold.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::compare::CompareOptions;
use crate::exclude::{Excludes, DEFAULT_EXCLUDES};
use crate::placement::{ReadFrom, ReadPlacement};
use crate::probe::AdminEndpoint;
use crate::source::SideSpec;
use crate::spec::SpecBuilder;
use crate::tree::{EphemeralPolicy, ReaderOptions, WalkOptions};

use super::defaults::*;
use super::file::RawPair;
use super::resolve::Cx;
use super::sides::{side_spec, Keys};
use super::values::{AdminPorts, SideValue};
use super::{ConfigError, ConfirmPolicy, PairConfig, RegistrationsConfig, WatchSettings};

/// When a pair's rounds run and how long one may take.
struct Schedule {
    interval: Duration,
    jitter: Duration,
    round_timeout: Duration,
}

impl Cx<'_> {
    pub(super) fn pair(&self, i: usize, p: RawPair) -> Result<PairConfig, ConfigError> {
        let name = p.name.get_ref().0.clone();
        let schedule = self.schedule(i, &p)?;
        let source_access = self.access(i, &p, Keys::Source)?;
        let target_access = self.access(i, &p, Keys::Target)?;
        let source = side_spec(source_access.clone(), "source", &p.source);
        let target = side_spec(target_access, "target", &p.target);
        let options = self.compare_options(i, &p)?;
        let servers = |s: &SideSpec| s.live().map_or(1, |e| e.connect.hosts.len());
        let source_admin = self.admin(i, &p, Keys::Source, servers(&source))?;
        let target_admin = self.admin(i, &p, Keys::Target, servers(&target))?;
        // A live `expect` is the old ensemble: read as the source is.
        let registrations = self.registrations(i, &p, &target, source_access)?;
        Ok(PairConfig {
            source_admin,
            target_admin,
            registrations,
            nagios_service: p
                .nagios_service
                .as_ref()
                .map(|s| s.0.clone())
                .unwrap_or_else(|| format!("zkparity {name}")),
            name,
            source,
            target,
            options,
            interval: schedule.interval,
            jitter: schedule.jitter,
            confirm: ConfirmPolicy {
                rounds: p
                    .confirm_rounds
                    .map(|n| n.0 as u32)
                    .unwrap_or(DEFAULT_CONFIRM_ROUNDS),
                min_age: p.confirm_after.unwrap_or_default(),
            },
            round_timeout: schedule.round_timeout,
            watch: WatchSettings {
                // Files change without telling: every round walks them.
                enabled: p.watch.unwrap_or(true)
                    && matches!(
                        (&p.source, &p.target),
                        (SideValue::Live(_), SideValue::Live(_))
                    ),
                full_walk_every: p
                    .full_walk_every
                    .map(|n| n.0 as u64)
                    .unwrap_or(DEFAULT_FULL_WALK_EVERY),
                settle: p.watch_settle.unwrap_or(DEFAULT_WATCH_SETTLE),
            },
            raw: p,
        })
    }

    /// `interval`, `jitter` (at most the interval) and `round_timeout`.
    fn schedule(&self, i: usize, p: &RawPair) -> Result<Schedule, ConfigError> {
        let key = |k: &str| format!("pair[{i}].{k}");
        let interval = p.interval.as_ref().map(|d| *d.get_ref());
        let interval = interval.unwrap_or(DEFAULT_INTERVAL);
        if interval < Duration::from_millis(100) {
            let offset = p.interval.as_ref().map(|d| d.span().start).unwrap_or(0);
            return Err(self.at(offset, key("interval"), "must be at least 100ms"));
        }
        let jitter = match &p.jitter {
            Some(j) if *j.get_ref() > interval => {
                return Err(self.at(
                    j.span().start,
                    key("jitter"),
                    "must not be longer than the interval",
                ))
            }
            Some(j) => *j.get_ref(),
            None => interval.mul_f64(DEFAULT_JITTER_FRACTION),
        };
        let round_timeout = match &p.round_timeout {
            Some(t) if t.get_ref().is_zero() => {
                return Err(self.at(t.span().start, key("round_timeout"), "must be more than 0"))
            }
            Some(t) => *t.get_ref(),
            None => DEFAULT_ROUND_TIMEOUT,
        };
        Ok(Schedule {
            interval,
            jitter,
            round_timeout,
        })
    }

    /// What is compared and how it is read; what the pair does not say is
    /// the library's default, as for the command line.
    fn compare_options(&self, i: usize, p: &RawPair) -> Result<CompareOptions, ConfigError> {
        let mut patterns: Vec<String> = Vec::new();
        if !p.include_zookeeper {
            patterns.extend(DEFAULT_EXCLUDES.iter().map(|s| s.to_string()));
        }
        patterns.extend(p.excludes.iter().map(|g| g.0.clone()));
        // Each pattern was checked alone while parsing; together they cannot fail.
        let excludes = Excludes::new(&patterns).map_err(|e| {
            self.at(
                p.name.span().start,
                format!("pair[{i}].excludes"),
                e.to_string(),
            )
        })?;
        let mut walk = WalkOptions::new(
            p.ephemerals.map(|e| e.0).unwrap_or(EphemeralPolicy::Count),
            excludes,
        );
        if let Some(n) = p.batch_size {
            walk.batch_nodes = n.0;
        }
        if let Some(n) = p.in_flight {
            walk.in_flight = n.0;
        }
        let defaults = ReaderOptions::default();
        let read_from = self.read_placement(i, p)?;
        Ok(CompareOptions {
            path: p
                .path
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_else(|| "/".into()),
            walk,
            reader: ReaderOptions {
                sessions: p.sessions.map(|n| n.0).unwrap_or(defaults.sessions),
                max_reads_per_second: p
                    .max_reads_per_second
                    .unwrap_or(defaults.max_reads_per_second),
                max_latency: p.max_latency.map_or(defaults.max_latency, |l| l.0),
                multi_read: p.multi_read.unwrap_or(defaults.multi_read),
                read_from,
                ..defaults
            },
            subtree_depth: p.subtree_depth.unwrap_or(1),
            recheck_delay: p
                .recheck_delay
                .map(|r| r.0)
                .unwrap_or(Some(DEFAULT_RECHECK_DELAY)),
            // Every difference is tracked across rounds, so all are listed.
            limit: 0,
            show_acl_ids: false,
            // Each pair's task attaches its own caches, kept across rounds.
            acl_caches: [None, None],
        })
    }

    /// `source_read_from` and `target_read_from`: a choice of servers
    /// means nothing for a side that is files, so it is refused there.
    fn read_placement(&self, i: usize, p: &RawPair) -> Result<ReadPlacement, ConfigError> {
        let mut placement = ReadPlacement::default();
        for (keys, setting, value) in [
            (Keys::Source, &p.source_read_from, &p.source),
            (Keys::Target, &p.target_read_from, &p.target),
        ] {
            let Some(setting) = setting else { continue };
            let side = keys.prefix();
            if matches!(value, SideValue::Files(_)) && setting.get_ref().0 != ReadFrom::Any {
                return Err(self.at(
                    setting.span().start,
                    format!("pair[{i}].{side}_read_from"),
                    format!(
                        "{} chooses servers of a live ensemble; this pair's {side} is files",
                        setting.get_ref().0
                    ),
                ));
            }
            let choice = setting.get_ref().0.clone();
            match keys {
                Keys::Source => placement.source = choice,
                Keys::Target => placement.target = choice,
            }
        }
        Ok(placement)
    }

    /// Where the probes find one side's AdminServer: `admin_port` (one,
    /// or one per server) and `admin_tls_ca`.
    fn admin(
        &self,
        i: usize,
        p: &RawPair,
        keys: Keys,
        servers: usize,
    ) -> Result<AdminEndpoint, ConfigError> {
        let (ports, ca): (&Option<Spanned<AdminPorts>>, &Option<Spanned<PathBuf>>) = match keys {
            Keys::Source => (&p.source_admin_port, &p.source_admin_tls_ca),
            Keys::Target => (&p.target_admin_port, &p.target_admin_tls_ca),
        };
        let key = |k: &str| format!("pair[{i}].{}_{k}", keys.prefix());
        let list = match ports.as_ref().map(|p| p.get_ref()) {
            None => vec![crate::probe::DEFAULT_ADMIN_PORT],
            Some(AdminPorts::One(p)) => vec![*p],
            Some(AdminPorts::Each(ps)) => ps.clone(),
        };
        let endpoint = match ca {
            None => AdminEndpoint {
                ports: list,
                tls: None,
            },
            Some(ca) => AdminEndpoint::https(list, ca.get_ref())
                .map_err(|e| self.at(ca.span().start, key("admin_tls_ca"), e.reason))?,
        };
        if let Some(ports) = ports {
            let bad = |reason: String| self.at(ports.span().start, key("admin_port"), reason);
            if endpoint.ports.contains(&0) {
                return Err(bad("0 is not a port".into()));
            }
            endpoint.check(servers).map_err(bad)?;
        }
        Ok(endpoint)
    }

    /// `expect`, `expect_grace` and `expect_since`; a live `expect` is
    /// reached with `access`.
    fn registrations(
        &self,
        i: usize,
        p: &RawPair,
        target: &SideSpec,
        access: SpecBuilder,
    ) -> Result<Option<RegistrationsConfig>, ConfigError> {
        let key = |k: &str| format!("pair[{i}].{k}");
        let Some(expect) = &p.expect else {
            let stray = [
                (
                    "expect_grace",
                    p.expect_grace.as_ref().map(|g| g.span().start),
                ),
                (
                    "expect_since",
                    p.expect_since.as_ref().map(|s| s.span().start),
                ),
            ];
            if let Some((k, Some(at))) = stray.into_iter().find(|(_, at)| at.is_some()) {
                return Err(self.at(at, key(k), "needs expect: the registrations to look for"));
            }
            return Ok(None);
        };
        if target.live().is_none() {
            return Err(self.at(
                expect.span().start,
                key("expect"),
                "registrations are looked for on a live target; this pair's target is files",
            ));
        }
        let since = match &p.expect_since {
            Some(s) => Some(
                crate::nagios::ephemerals::parse_since(s.get_ref())
                    .map_err(|reason| self.at(s.span().start, key("expect_since"), reason))?,
            ),
            None => None,
        };
        Ok(Some(RegistrationsConfig {
            expect: side_spec(access, "expected", expect.get_ref()),
            grace: p
                .expect_grace
                .as_ref()
                .map_or(DEFAULT_EXPECT_GRACE, |g| *g.get_ref()),
            since,
        }))
    }
}
