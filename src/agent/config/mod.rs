//! The agent's TOML configuration: parsing, validation, and the resolved form
//! the rounds run on.
//!
//! Everything that can be checked before the agent starts is checked here:
//! syntax, unknown keys, durations, connect strings, paths, exclude globs,
//! threshold ranges, credentials files (read and permission-checked), the
//! state directory. Every error names the file, the line and the key, so
//! `zkparity agent --check-config` (and a SIGHUP that brings a bad file)
//! points straight at the mistake.
//!
//! The reference for every key is `docs/agent.md`; `examples/agent.toml` is a
//! commented sample.
//!
//! - `file`: the file as written, each value checked as it is read
//!   (`values`); `resolve`: the checks that span keys, and the resolved
//!   form below; `pair` and `sides`: one `[[pair]]`, its ensembles built
//!   as the command line builds them ([`crate::spec`]); `checks`: what the
//!   keys name outside the file; `position`: lines and key names for
//!   errors; `defaults`: every default, named.

mod checks;
mod defaults;
mod file;
mod pair;
mod position;
mod resolve;
mod sides;
mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::compare::CompareOptions;
use crate::connect::EnsembleSpec;
use crate::gmetric::Channel;
use crate::nagios::parity::ParityCheck;
use crate::probe::{AdminEndpoint, ProbeVia};
use crate::source::SideSpec;

pub(crate) use defaults::*;
pub(crate) use file::RawPair;
pub(crate) use values::LogLevel;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("config {}: cannot read it: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// A mistake at a known place in the file.
    #[error("config {}, line {line}, key {key}: {reason}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        key: String,
        reason: String,
    },
}

/// How long a difference must persist before it counts as drift.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ConfirmPolicy {
    /// Consecutive successful rounds that must have seen it.
    pub rounds: u32,
    /// And at least this long since it was first seen.
    pub min_age: Duration,
}

/// Persistent watches and what they let rounds skip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct WatchSettings {
    /// `false`: every round walks, nothing is re-checked early.
    pub enabled: bool,
    /// Every this many rounds walk in full even if nothing fired.
    pub full_walk_every: u64,
    /// Quiet time before a changed path is re-checked early.
    pub settle: Duration,
}

/// The registrations a pair's rounds look for on its target (`expect`).
#[derive(Clone, Debug)]
pub(crate) struct RegistrationsConfig {
    /// EXPECTED, as `check ephemerals --expect` reads it.
    pub expect: SideSpec,
    pub grace: Duration,
    /// The cutover time, overriding what EXPECTED says.
    pub since: Option<std::time::SystemTime>,
}

/// One ensemble pair, ready to compare.
#[derive(Clone, Debug)]
pub(crate) struct PairConfig {
    pub name: String,
    /// A live ensemble, or files (a ZooKeeper data directory read afresh
    /// each round): a pair with a file side is neither watched nor probed.
    pub source: SideSpec,
    pub target: SideSpec,
    pub options: CompareOptions,
    pub interval: Duration,
    pub jitter: Duration,
    pub confirm: ConfirmPolicy,
    pub round_timeout: Duration,
    pub watch: WatchSettings,
    pub nagios_service: String,
    /// Where the probes find each side's AdminServer.
    pub source_admin: AdminEndpoint,
    pub target_admin: AdminEndpoint,
    /// `None`: the pair has no `expect`.
    pub registrations: Option<RegistrationsConfig>,
    /// As written, for telling on reload whether the pair changed.
    raw: RawPair,
}

impl PairConfig {
    /// Whether a reload leaves this pair as it is (its task keeps running,
    /// with its confirmation history). Credentials and certificates count: a
    /// changed auth or certificate file takes effect on reload.
    pub(crate) fn same_as(&self, other: &PairConfig) -> bool {
        let secrets = |s: &SideSpec| s.live().map(|e| (e.credentials.clone(), e.tls.clone()));
        self.raw == other.raw
            && secrets(&self.source) == secrets(&other.source)
            && secrets(&self.target) == secrets(&other.target)
    }

    /// Both sides' ensembles, when both are live.
    pub(crate) fn live(&self) -> Option<[&EnsembleSpec; 2]> {
        Some([self.source.live()?, self.target.live()?])
    }
}

/// How often, and how patiently, the ensembles' servers are probed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ProbeSettings {
    pub interval: Duration,
    /// Per word and server.
    pub timeout: Duration,
    /// Words, AdminServer, or both (`probe_via`).
    pub via: ProbeVia,
}

/// Where passive check results go.
pub(crate) struct NagiosOutput {
    pub command_file: PathBuf,
    pub host_name: String,
    pub check: ParityCheck,
}

impl std::fmt::Debug for NagiosOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NagiosOutput")
            .field("command_file", &self.command_file)
            .field("host_name", &self.host_name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub(crate) struct AgentConfig {
    pub state_dir: PathBuf,
    /// Entries per list (confirmed, unconfirmed) in a state file.
    pub state_list_limit: usize,
    pub log_level: LogLevel,
    pub log_timestamps: bool,
    pub nagios: Option<NagiosOutput>,
    /// Where every pair's metrics go; empty for none.
    pub ganglia: Vec<Channel>,
    /// Where `/metrics` is served; `None`: not served.
    pub prometheus: Option<SocketAddr>,
    /// Four-letter-word probes of every pair's ensembles; `None`: off.
    pub probes: Option<ProbeSettings>,
    pub pairs: Vec<PairConfig>,
}

impl AgentConfig {
    /// Reads and validates `file`. Nothing is started and nothing is written.
    pub(crate) fn load(file: &Path) -> Result<AgentConfig, ConfigError> {
        let text = crate::bounded::read_text(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        AgentConfig::parse(file, &text)
    }

    /// Validates `text` as the contents of `file` (which only names it in
    /// errors and resolves nothing).
    pub(crate) fn parse(file: &Path, text: &str) -> Result<AgentConfig, ConfigError> {
        let cx = resolve::Cx { file, text };
        let raw: file::RawConfig = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;
        cx.resolve(raw)
    }
}

#[cfg(test)]
mod tests;
