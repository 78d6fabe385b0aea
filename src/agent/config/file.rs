//! The file as written: every key, each value checked alone as it is
//! read (see [`super::values`]); what depends on other keys is checked when
//! it is resolved.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::values::{
    duration, spanned_duration, AdminPorts, AtLeastOne, Bounded, CommandField, DiffKindSetting,
    Glob, LatencyLimit, LogLevel, PairName, Policy, RangeText, ReadFromSetting, RecheckDelay,
    SideValue, StateSetting, ZkPath,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) state_dir: Spanned<PathBuf>,
    #[serde(default)]
    pub(super) state_list_limit: Option<usize>,
    #[serde(default)]
    pub(super) log_level: Option<LogLevel>,
    #[serde(default)]
    pub(super) log_timestamps: Option<bool>,
    #[serde(default)]
    pub(super) nagios: Option<RawNagios>,
    #[serde(default)]
    pub(super) ganglia: Vec<RawGanglia>,
    #[serde(default)]
    pub(super) prometheus: Option<RawPrometheus>,
    #[serde(default, deserialize_with = "spanned_duration")]
    pub(super) probe_interval: Option<Spanned<Duration>>,
    #[serde(default, deserialize_with = "spanned_duration")]
    pub(super) probe_timeout: Option<Spanned<Duration>>,
    #[serde(default)]
    pub(super) probe_via: Option<Spanned<String>>,
    #[serde(default, rename = "pair")]
    pub(super) pairs: Vec<Spanned<RawPair>>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNagios {
    pub(super) command_file: Spanned<PathBuf>,
    pub(super) host_name: CommandField,
    #[serde(default)]
    pub(super) warning: Option<RangeText>,
    #[serde(default)]
    pub(super) critical: Option<RangeText>,
    #[serde(default)]
    pub(super) critical_kinds: Option<Vec<DiffKindSetting>>,
    #[serde(default)]
    pub(super) details: Option<usize>,
    /// The state of a round that could not read some nodes.
    #[serde(default)]
    pub(super) unreadable: Option<StateSetting>,
    /// Per-path judgement, `GLOB=STATE` each (as `check parity --judge`).
    #[serde(default)]
    pub(super) judge: Vec<Spanned<String>>,
}

/// One `[[ganglia]]` channel: a gmond `udp_recv_channel` or a multicast
/// group.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGanglia {
    pub(super) host: Spanned<String>,
    #[serde(default)]
    pub(super) port: Option<u16>,
    #[serde(default)]
    pub(super) ttl: Option<u32>,
}

/// `[prometheus]`: where the agent serves `/metrics`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrometheus {
    pub(super) listen: Spanned<String>,
}

/// One `[[pair]]` as written; kept so a reload can tell which pairs changed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPair {
    pub(super) name: Spanned<PairName>,
    pub(super) source: SideValue,
    pub(super) target: SideValue,
    #[serde(default)]
    pub(super) source_auth_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) target_auth_file: Option<Spanned<PathBuf>>,
    /// SASL logins from JAAS files (their `jaas_section`, default Client).
    #[serde(default)]
    pub(super) source_jaas: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) target_jaas: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) jaas_section: Option<String>,
    #[serde(default)]
    pub(super) sasl_service: Option<String>,
    #[serde(default)]
    pub(super) sasl_host: Option<String>,
    #[serde(default)]
    pub(super) source_tls_ca: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) source_tls_cert: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) source_tls_key: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) target_tls_ca: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) target_tls_cert: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) target_tls_key: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) source_admin_port: Option<Spanned<AdminPorts>>,
    #[serde(default)]
    pub(super) target_admin_port: Option<Spanned<AdminPorts>>,
    #[serde(default)]
    pub(super) source_admin_tls_ca: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub(super) target_admin_tls_ca: Option<Spanned<PathBuf>>,
    /// Which servers serve each side's reads (`--source-read-from`).
    #[serde(default)]
    pub(super) source_read_from: Option<Spanned<ReadFromSetting>>,
    #[serde(default)]
    pub(super) target_read_from: Option<Spanned<ReadFromSetting>>,
    #[serde(default)]
    pub(super) path: Option<ZkPath>,
    #[serde(default)]
    pub(super) excludes: Vec<Glob>,
    #[serde(default)]
    pub(super) include_zookeeper: bool,
    #[serde(default)]
    pub(super) ephemerals: Option<Policy>,
    #[serde(default)]
    pub(super) subtree_depth: Option<u32>,
    #[serde(default, deserialize_with = "spanned_duration")]
    pub(super) interval: Option<Spanned<Duration>>,
    #[serde(default, deserialize_with = "spanned_duration")]
    pub(super) jitter: Option<Spanned<Duration>>,
    #[serde(default)]
    pub(super) confirm_rounds: Option<AtLeastOne>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) confirm_after: Option<Duration>,
    #[serde(default)]
    pub(super) recheck_delay: Option<RecheckDelay>,
    #[serde(default, deserialize_with = "spanned_duration")]
    pub(super) round_timeout: Option<Spanned<Duration>>,
    #[serde(default)]
    pub(super) max_reads_per_second: Option<u32>,
    #[serde(default)]
    pub(super) max_latency: Option<LatencyLimit>,
    #[serde(default)]
    pub(super) sessions: Option<Bounded<{ crate::tree::bounds::MAX_SESSIONS }>>,
    #[serde(default)]
    pub(super) batch_size: Option<Bounded<{ crate::tree::bounds::MAX_BATCH_SIZE }>>,
    #[serde(default)]
    pub(super) in_flight: Option<Bounded<{ crate::tree::bounds::MAX_IN_FLIGHT }>>,
    #[serde(default)]
    pub(super) multi_read: Option<bool>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) session_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) connect_timeout: Option<Duration>,
    #[serde(default)]
    pub(super) nagios_service: Option<CommandField>,
    #[serde(default)]
    pub(super) watch: Option<bool>,
    #[serde(default)]
    pub(super) full_walk_every: Option<AtLeastOne>,
    #[serde(default, deserialize_with = "duration")]
    pub(super) watch_settle: Option<Duration>,
    /// Registrations that must be on the target (`check ephemerals
    /// --expect`): a snapshot, a data directory, or a connect string.
    #[serde(default)]
    pub(super) expect: Option<Spanned<SideValue>>,
    #[serde(default, deserialize_with = "spanned_duration")]
    pub(super) expect_grace: Option<Spanned<Duration>>,
    #[serde(default)]
    pub(super) expect_since: Option<Spanned<String>>,
}
