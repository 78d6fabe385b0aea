//! The file resolved: what spans keys is checked (a probe timeout with its
//! interval, unique pair names, ...), what the keys name is looked at, and
//! every default is filled in. Each error names its key and line.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::gmetric::{Channel, DEFAULT_TTL};
use crate::nagios::parity::{ParityCheck, PathRule};
use crate::probe::ProbeVia;

use super::checks::{check_command_file, check_writable_dir, listen_address};
use super::defaults::{default_check, DEFAULT_GANGLIA_PORT, DEFAULT_STATE_LIST_LIMIT};
use super::file::{RawConfig, RawGanglia, RawNagios, RawPrometheus};
use super::position::{join_key, key_at, line_of, missing_field, table_at};
use super::values::LogLevel;
use super::{AgentConfig, ConfigError, NagiosOutput, PairConfig, ProbeSettings};

/// What error positions are computed against.
pub(super) struct Cx<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Cx<'_> {
    pub(super) fn at(
        &self,
        offset: usize,
        key: impl Into<String>,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            line: line_of(self.text, offset),
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub(super) fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let reason = e.message().trim().to_string();
        // A missing key is reported at its table; name the table and the key.
        let key = match missing_field(&reason) {
            Some(field) => join_key(&table_at(self.text, offset), field),
            None => key_at(self.text, offset),
        };
        self.at(offset, key, reason)
    }

    pub(super) fn resolve(&self, raw: RawConfig) -> Result<AgentConfig, ConfigError> {
        let probes = self.probes(&raw)?;
        let state_dir = self.state_dir(&raw.state_dir)?;
        let nagios = raw.nagios.map(|n| self.nagios(n)).transpose()?;
        let ganglia = self.ganglia(&raw.ganglia)?;
        let prometheus = raw
            .prometheus
            .as_ref()
            .map(|p| self.prometheus(p))
            .transpose()?;
        let pairs = self.pairs(raw.pairs)?;
        Ok(AgentConfig {
            state_dir,
            state_list_limit: raw.state_list_limit.unwrap_or(DEFAULT_STATE_LIST_LIMIT),
            log_level: raw.log_level.unwrap_or(LogLevel::Info),
            log_timestamps: raw.log_timestamps.unwrap_or(true),
            nagios,
            ganglia,
            prometheus,
            probes,
            pairs,
        })
    }

    /// `probe_interval`, `probe_timeout` and `probe_via`: probes are off
    /// without an interval.
    fn probes(&self, raw: &RawConfig) -> Result<Option<ProbeSettings>, ConfigError> {
        let timeout = match &raw.probe_timeout {
            Some(t) if t.get_ref().is_zero() => {
                return Err(self.at(t.span().start, "probe_timeout", "must be more than 0"))
            }
            Some(t) => *t.get_ref(),
            None => crate::probe::DEFAULT_TIMEOUT,
        };
        // Checked even while probes are off, so a typo shows at once.
        let via = match &raw.probe_via {
            None => ProbeVia::default(),
            Some(v) => v
                .get_ref()
                .parse()
                .map_err(|reason| self.at(v.span().start, "probe_via", reason))?,
        };
        match &raw.probe_interval {
            Some(i) if *i.get_ref() < Duration::from_secs(1) => {
                Err(self.at(i.span().start, "probe_interval", "must be at least 1s"))
            }
            Some(i) => Ok(Some(ProbeSettings {
                interval: *i.get_ref(),
                timeout,
                via,
            })),
            None => Ok(None),
        }
    }

    fn state_dir(&self, dir: &Spanned<PathBuf>) -> Result<PathBuf, ConfigError> {
        let path = dir.get_ref().clone();
        if !path.is_absolute() {
            return Err(self.at(
                dir.span().start,
                "state_dir",
                format!(
                    "{:?} must be an absolute path (the agent may run from any directory)",
                    path
                ),
            ));
        }
        check_writable_dir(&path)
            .map_err(|reason| self.at(dir.span().start, "state_dir", reason))?;
        Ok(path)
    }

    /// `[nagios]`: where passive results go and how a pair is judged;
    /// what is not said is `check parity`'s default.
    fn nagios(&self, n: RawNagios) -> Result<NagiosOutput, ConfigError> {
        check_command_file(n.command_file.get_ref()).map_err(|reason| {
            self.at(n.command_file.span().start, "nagios.command_file", reason)
        })?;
        let rules = n
            .judge
            .iter()
            .map(|r| {
                PathRule::parse(r.get_ref())
                    .map_err(|reason| self.at(r.span().start, "nagios.judge", reason))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let defaults = default_check();
        Ok(NagiosOutput {
            command_file: n.command_file.into_inner(),
            host_name: n.host_name.0,
            check: ParityCheck {
                warning: n.warning.map_or(defaults.warning, |r| r.0),
                critical: n.critical.map(|r| r.0),
                critical_kinds: n.critical_kinds.map_or(defaults.critical_kinds, |ks| {
                    ks.into_iter().map(|k| k.0).collect()
                }),
                details: n.details.unwrap_or(defaults.details),
                unreadable: n.unreadable.map_or(defaults.unreadable, |s| s.0),
                rules,
            },
        })
    }

    /// Every `[[ganglia]]` channel, resolved now, with gmond's defaults.
    fn ganglia(&self, channels: &[RawGanglia]) -> Result<Vec<Channel>, ConfigError> {
        let mut resolved = Vec::with_capacity(channels.len());
        for (i, g) in channels.iter().enumerate() {
            let host = g.host.get_ref().trim();
            // An IPv6 literal needs brackets before its port.
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.to_string()
            };
            let spec = format!("{host}:{}", g.port.unwrap_or(DEFAULT_GANGLIA_PORT));
            let channel = Channel::resolve(&spec, g.ttl.unwrap_or(DEFAULT_TTL)).map_err(|e| {
                self.at(
                    g.host.span().start,
                    format!("ganglia[{i}].host"),
                    e.to_string(),
                )
            })?;
            resolved.push(channel);
        }
        Ok(resolved)
    }

    fn prometheus(&self, p: &RawPrometheus) -> Result<SocketAddr, ConfigError> {
        listen_address(p.listen.get_ref())
            .map_err(|reason| self.at(p.listen.span().start, "prometheus.listen", reason))
    }

    /// At least one pair, each named once.
    fn pairs(&self, raw: Vec<Spanned<super::RawPair>>) -> Result<Vec<PairConfig>, ConfigError> {
        if raw.is_empty() {
            return Err(self.at(
                self.text.len(),
                "pair",
                "no [[pair]] is configured; the agent needs at least one ensemble pair",
            ));
        }
        let mut seen = HashSet::new();
        let mut pairs = Vec::with_capacity(raw.len());
        for (i, p) in raw.into_iter().enumerate() {
            let p = p.into_inner();
            let name = &p.name.get_ref().0;
            if !seen.insert(name.clone()) {
                return Err(self.at(
                    p.name.span().start,
                    format!("pair[{i}].name"),
                    format!("{name:?} is used by an earlier pair; names must be unique"),
                ));
            }
            pairs.push(self.pair(i, p)?);
        }
        Ok(pairs)
    }
}
