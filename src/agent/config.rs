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

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use toml::Spanned;

use crate::compare::CompareOptions;
use crate::connect::{ConnectString, Credentials, EnsembleSpec, TlsConfig};
use crate::exclude::{Excludes, DEFAULT_EXCLUDES};
use crate::gmetric::Channel;
use crate::gmetric::DEFAULT_TTL;
use crate::nagios::parity::ParityCheck;
use crate::nagios::range::Range;
use crate::probe::{AdminEndpoint, ProbeVia};
use crate::report::DiffKind;
use crate::sasl::SaslConfig;
use crate::source::SideSpec;
use crate::tree::{EphemeralPolicy, ReaderOptions, WalkOptions};

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

// ---------------------------------------------------------------------------
// Values that validate themselves while being parsed, so toml attaches the
// value's position to the error.

/// `"30s"`, `"500ms"`, `"2m"`, or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(u64),
            Float(f64),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::Text(s) => parse_duration(&s),
            Raw::Int(n) => Ok(Duration::from_secs(n)),
            Raw::Float(f) => {
                Duration::try_from_secs_f64(f).map_err(|_| format!("{f} is not a duration"))
            }
        };
        parsed.map(Dur).map_err(de::Error::custom)
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let v = s.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration"));
    }
    humantime::parse_duration(v)
        .map_err(|e| format!("{s:?} is not a duration ({e}); use e.g. 500ms, 30s, 5m"))
}

/// `"off"` or a duration with its unit, as `compare --max-latency`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LatencyLimit(pub Option<Duration>);

impl<'de> Deserialize<'de> for LatencyLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
            Float(f64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Int(n) => n.to_string(),
            Raw::Float(f) => f.to_string(),
        };
        crate::throttle::parse_limit(&text)
            .map(LatencyLimit)
            .map_err(|why| de::Error::custom(format!("{text:?}: {why}")))
    }
}

/// A pair's side: a connect string, or an existing file or directory (a
/// ZooKeeper data directory, zoo.cfg or `snapshot.<zxid>`, or a zkparity
/// snapshot or zktreeutil file), as `compare --source` takes them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SideValue {
    Live(ConnectString),
    Files(PathBuf),
}

impl<'de> Deserialize<'de> for SideValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if SideSpec::is_file(&s) {
            return Ok(SideValue::Files(PathBuf::from(s)));
        }
        ConnectString::parse(&s).map(SideValue::Live).map_err(|e| {
            de::Error::custom(format!("{e} (nor is it an existing file or directory)"))
        })
    }
}

/// An absolute ZooKeeper path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ZkPath(pub String);

impl<'de> Deserialize<'de> for ZkPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::connect::validate_path(&s)
            .map(|_| ZkPath(s.clone()))
            .map_err(|reason| de::Error::custom(format!("{s:?}: {reason}")))
    }
}

/// One `--exclude` glob.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Glob(pub String);

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Excludes::new(&[&s])
            .map(|_| Glob(s))
            .map_err(|e| de::Error::custom(e.to_string()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Policy(pub EphemeralPolicy);

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        [
            EphemeralPolicy::Skip,
            EphemeralPolicy::Count,
            EphemeralPolicy::Compare,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .map(Policy)
        .ok_or_else(|| de::Error::custom(format!("{s:?}: expected skip, count or compare")))
    }
}

/// A difference kind as the configuration names it (`data`, `acl`...).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct DiffKindSetting(pub DiffKind);

impl<'de> Deserialize<'de> for DiffKindSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::nagios::parity::parse_kinds(&s)
            .ok()
            .and_then(|k| (k.len() == 1).then(|| DiffKindSetting(k[0])))
            .ok_or_else(|| {
                let all: Vec<&str> = DiffKind::ALL.iter().map(|k| k.as_str()).collect();
                de::Error::custom(format!(
                    "unknown difference kind {s:?} (known: {})",
                    all.join(", ")
                ))
            })
    }
}

/// A Nagios threshold range (`10`, `5:`, `@1:3`, ...).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RangeText(pub Range);

impl<'de> Deserialize<'de> for RangeText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
        }
        let s = match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Int(n) => n.to_string(),
        };
        s.parse::<Range>()
            .map(RangeText)
            .map_err(|e| de::Error::custom(format!("{s:?}: {e}")))
    }
}

/// A count that must be at least 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AtLeastOne(pub usize);

impl<'de> Deserialize<'de> for AtLeastOne {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .map(AtLeastOne)
            .ok_or_else(|| de::Error::custom(format!("{n}: must be at least 1")))
    }
}

/// A count from 1 to `MAX`: what the agent leans on an ensemble with
/// (see [`crate::tree::bounds`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bounded<const MAX: usize>(pub usize);

impl<'de, const MAX: usize> Deserialize<'de> for Bounded<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        let n = usize::try_from(n).unwrap_or(0);
        crate::tree::bounds::check("", n, MAX)
            .map(|()| Bounded(n))
            .map_err(|e| de::Error::custom(e.trim_start()))
    }
}

/// A name that can go into a file name, a Ganglia host and a Nagios service.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PairName(pub String);

impl<'de> Deserialize<'de> for PairName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(PairName(s))
        } else {
            Err(de::Error::custom(format!(
                "{s:?}: a pair name is 1-64 of A-Z a-z 0-9 - _ . and does not start with '.' \
                 (it names the state file)"
            )))
        }
    }
}

/// Text for a field of a Nagios external command: `;` separates fields and a
/// newline ends the command, so neither may appear.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CommandField(pub String);

impl<'de> Deserialize<'de> for CommandField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() || s.contains(';') || s.chars().any(char::is_control) {
            return Err(de::Error::custom(format!(
                "{s:?}: must be non-empty, without ';' or control characters"
            )));
        }
        Ok(CommandField(s))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

// ---------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Spanned<PathBuf>,
    #[serde(default)]
    state_list_limit: Option<usize>,
    #[serde(default)]
    log_level: Option<LogLevel>,
    #[serde(default)]
    log_timestamps: Option<bool>,
    #[serde(default)]
    nagios: Option<RawNagios>,
    #[serde(default)]
    ganglia: Vec<RawGanglia>,
    #[serde(default)]
    prometheus: Option<RawPrometheus>,
    #[serde(default)]
    probe_interval: Option<Spanned<Dur>>,
    #[serde(default)]
    probe_timeout: Option<Spanned<Dur>>,
    #[serde(default)]
    probe_via: Option<Spanned<String>>,
    #[serde(default, rename = "pair")]
    pairs: Vec<Spanned<RawPair>>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNagios {
    command_file: Spanned<PathBuf>,
    host_name: CommandField,
    #[serde(default)]
    warning: Option<RangeText>,
    #[serde(default)]
    critical: Option<RangeText>,
    #[serde(default)]
    critical_kinds: Option<Vec<DiffKindSetting>>,
    #[serde(default)]
    details: Option<usize>,
    /// The state of a round that could not read some nodes.
    #[serde(default)]
    unreadable: Option<StateSetting>,
    /// Per-path judgement, `GLOB=STATE` each (as `check parity --judge`).
    #[serde(default)]
    judge: Vec<Spanned<String>>,
}

/// A Nagios state by name (`ok`, `warning`, `critical`, `unknown`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StateSetting(pub crate::nagios::output::State);

impl<'de> Deserialize<'de> for StateSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::nagios::parity::parse_state(&text)
            .map(StateSetting)
            .map_err(serde::de::Error::custom)
    }
}

/// One `[[ganglia]]` channel: a gmond `udp_recv_channel` or a multicast
/// group.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGanglia {
    host: Spanned<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    ttl: Option<u32>,
}

/// `[prometheus]`: where the agent serves `/metrics`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrometheus {
    listen: Spanned<String>,
}

/// One `[[pair]]` as written; kept so a reload can tell which pairs changed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPair {
    name: Spanned<PairName>,
    source: SideValue,
    target: SideValue,
    #[serde(default)]
    source_auth_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    target_auth_file: Option<Spanned<PathBuf>>,
    /// SASL logins from JAAS files (their `jaas_section`, default Client).
    #[serde(default)]
    source_jaas: Option<Spanned<PathBuf>>,
    #[serde(default)]
    target_jaas: Option<Spanned<PathBuf>>,
    #[serde(default)]
    jaas_section: Option<String>,
    #[serde(default)]
    sasl_service: Option<String>,
    #[serde(default)]
    sasl_host: Option<String>,
    #[serde(default)]
    source_tls_ca: Option<Spanned<PathBuf>>,
    #[serde(default)]
    source_tls_cert: Option<Spanned<PathBuf>>,
    #[serde(default)]
    source_tls_key: Option<Spanned<PathBuf>>,
    #[serde(default)]
    target_tls_ca: Option<Spanned<PathBuf>>,
    #[serde(default)]
    target_tls_cert: Option<Spanned<PathBuf>>,
    #[serde(default)]
    target_tls_key: Option<Spanned<PathBuf>>,
    #[serde(default)]
    source_admin_port: Option<Spanned<AdminPorts>>,
    #[serde(default)]
    target_admin_port: Option<Spanned<AdminPorts>>,
    #[serde(default)]
    source_admin_tls_ca: Option<Spanned<PathBuf>>,
    #[serde(default)]
    target_admin_tls_ca: Option<Spanned<PathBuf>>,
    #[serde(default)]
    path: Option<ZkPath>,
    #[serde(default)]
    excludes: Vec<Glob>,
    #[serde(default)]
    include_zookeeper: bool,
    #[serde(default)]
    ephemerals: Option<Policy>,
    #[serde(default)]
    subtree_depth: Option<u32>,
    #[serde(default)]
    interval: Option<Spanned<Dur>>,
    #[serde(default)]
    jitter: Option<Spanned<Dur>>,
    #[serde(default)]
    confirm_rounds: Option<AtLeastOne>,
    #[serde(default)]
    confirm_after: Option<Dur>,
    #[serde(default)]
    recheck_delay: Option<RecheckDelay>,
    #[serde(default)]
    round_timeout: Option<Spanned<Dur>>,
    #[serde(default)]
    max_reads_per_second: Option<u32>,
    #[serde(default)]
    max_latency: Option<LatencyLimit>,
    #[serde(default)]
    sessions: Option<Bounded<{ crate::tree::bounds::MAX_SESSIONS }>>,
    #[serde(default)]
    batch_size: Option<Bounded<{ crate::tree::bounds::MAX_BATCH_SIZE }>>,
    #[serde(default)]
    in_flight: Option<Bounded<{ crate::tree::bounds::MAX_IN_FLIGHT }>>,
    #[serde(default)]
    multi_read: Option<bool>,
    #[serde(default)]
    session_timeout: Option<Dur>,
    #[serde(default)]
    connect_timeout: Option<Dur>,
    #[serde(default)]
    nagios_service: Option<CommandField>,
    #[serde(default)]
    watch: Option<bool>,
    #[serde(default)]
    full_walk_every: Option<AtLeastOne>,
    #[serde(default)]
    watch_settle: Option<Dur>,
    /// Registrations that must be on the target (`check ephemerals
    /// --expect`): a snapshot, a data directory, or a connect string.
    #[serde(default)]
    expect: Option<Spanned<SideValue>>,
    #[serde(default)]
    expect_grace: Option<Spanned<Dur>>,
    #[serde(default)]
    expect_since: Option<Spanned<String>>,
}

/// `admin_port = 8080`, or one port per server: `[8081, 8082, 8083]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum AdminPorts {
    One(u16),
    Each(Vec<u16>),
}

/// `"off"` or a duration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RecheckDelay(pub Option<Duration>);

impl<'de> Deserialize<'de> for RecheckDelay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(u64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) if s.trim() == "off" => Ok(RecheckDelay(None)),
            Raw::Text(s) => parse_duration(&s)
                .map(|d| RecheckDelay(Some(d)))
                .map_err(de::Error::custom),
            Raw::Int(n) => Ok(RecheckDelay(Some(Duration::from_secs(n)))),
        }
    }
}

// ---------------------------------------------------------------------------
// Defaults, named so docs/agent.md and the code say the same thing.

pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default jitter, as a fraction of the interval.
pub(crate) const DEFAULT_JITTER_FRACTION: f64 = 0.1;
pub(crate) const DEFAULT_CONFIRM_ROUNDS: u32 = 2;
/// Short: a difference that survives it is then confirmed across rounds.
pub(crate) const DEFAULT_RECHECK_DELAY: Duration = Duration::from_secs(1);
pub(crate) const DEFAULT_ROUND_TIMEOUT: Duration = Duration::from_secs(15 * 60);
pub(crate) const DEFAULT_STATE_LIST_LIMIT: usize = 1000;
/// With watches, every this many rounds walk in full anyway: ACL changes fire
/// no watch event, so this bounds how late one is seen (10 minutes at the
/// default interval).
pub(crate) const DEFAULT_FULL_WALK_EVERY: u64 = 10;
/// How long a changed path must stay quiet before it is re-checked early,
/// so a sync tool has copied it by then.
pub(crate) const DEFAULT_WATCH_SETTLE: Duration = Duration::from_secs(2);
pub(crate) const DEFAULT_DETAILS: usize = 10;
/// As `check ephemerals --grace`.
pub(crate) const DEFAULT_EXPECT_GRACE: Duration = Duration::from_secs(5 * 60);
/// gmond's default `udp_recv_channel` port.
pub(crate) const DEFAULT_GANGLIA_PORT: u16 = 8649;

// ---------------------------------------------------------------------------
// The resolved configuration.

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
        let cx = Cx { file, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;
        cx.resolve(raw)
    }
}

/// What error positions are computed against.
struct Cx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Cx<'_> {
    fn at(&self, offset: usize, key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            line: line_of(self.text, offset),
            key: key.into(),
            reason: reason.into(),
        }
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let reason = e.message().trim().to_string();
        // A missing key is reported at its table; name the table and the key.
        let key = match missing_field(&reason) {
            Some(field) => join_key(&table_at(self.text, offset), field),
            None => key_at(self.text, offset),
        };
        self.at(offset, key, reason)
    }

    fn resolve(&self, raw: RawConfig) -> Result<AgentConfig, ConfigError> {
        let probe_timeout = match &raw.probe_timeout {
            Some(t) if t.get_ref().0.is_zero() => {
                return Err(self.at(t.span().start, "probe_timeout", "must be more than 0"))
            }
            Some(t) => t.get_ref().0,
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
        let probes = match &raw.probe_interval {
            Some(i) if i.get_ref().0 < Duration::from_secs(1) => {
                return Err(self.at(i.span().start, "probe_interval", "must be at least 1s"))
            }
            Some(i) => Some(ProbeSettings {
                interval: i.get_ref().0,
                timeout: probe_timeout,
                via,
            }),
            None => None,
        };

        let state_dir = raw.state_dir.get_ref().clone();
        if !state_dir.is_absolute() {
            return Err(self.at(
                raw.state_dir.span().start,
                "state_dir",
                format!(
                    "{:?} must be an absolute path (the agent may run from any directory)",
                    state_dir
                ),
            ));
        }
        if let Err(reason) = check_writable_dir(&state_dir) {
            return Err(self.at(raw.state_dir.span().start, "state_dir", reason));
        }

        if let Some(n) = &raw.nagios {
            check_command_file(n.command_file.get_ref()).map_err(|reason| {
                self.at(n.command_file.span().start, "nagios.command_file", reason)
            })?;
        }
        let mut rules = Vec::new();
        for r in raw.nagios.iter().flat_map(|n| &n.judge) {
            rules.push(
                crate::nagios::parity::PathRule::parse(r.get_ref())
                    .map_err(|reason| self.at(r.span().start, "nagios.judge", reason))?,
            );
        }
        let nagios = raw.nagios.map(|n| {
            let defaults = default_check();
            NagiosOutput {
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
            }
        });

        let mut ganglia = Vec::with_capacity(raw.ganglia.len());
        for (i, g) in raw.ganglia.iter().enumerate() {
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
            ganglia.push(channel);
        }

        let prometheus =
            match &raw.prometheus {
                None => None,
                Some(p) => Some(listen_address(p.listen.get_ref()).map_err(|reason| {
                    self.at(p.listen.span().start, "prometheus.listen", reason)
                })?),
            };

        if raw.pairs.is_empty() {
            return Err(self.at(
                self.text.len(),
                "pair",
                "no [[pair]] is configured; the agent needs at least one ensemble pair",
            ));
        }
        let mut seen = HashSet::new();
        let mut pairs = Vec::with_capacity(raw.pairs.len());
        for (i, p) in raw.pairs.into_iter().enumerate() {
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

    fn pair(&self, i: usize, p: RawPair) -> Result<PairConfig, ConfigError> {
        let key = |k: &str| format!("pair[{i}].{k}");
        let name = p.name.get_ref().0.clone();

        let interval = p.interval.as_ref().map(|d| d.get_ref().0);
        let interval = interval.unwrap_or(DEFAULT_INTERVAL);
        if interval < Duration::from_millis(100) {
            let offset = p.interval.as_ref().map(|d| d.span().start).unwrap_or(0);
            return Err(self.at(offset, key("interval"), "must be at least 100ms"));
        }
        let jitter = match &p.jitter {
            Some(j) if j.get_ref().0 > interval => {
                return Err(self.at(
                    j.span().start,
                    key("jitter"),
                    "must not be longer than the interval",
                ))
            }
            Some(j) => j.get_ref().0,
            None => interval.mul_f64(DEFAULT_JITTER_FRACTION),
        };
        let round_timeout = match &p.round_timeout {
            Some(t) if t.get_ref().0.is_zero() => {
                return Err(self.at(t.span().start, key("round_timeout"), "must be more than 0"))
            }
            Some(t) => t.get_ref().0,
            None => DEFAULT_ROUND_TIMEOUT,
        };

        let credentials = |side: &str, f: &Option<Spanned<PathBuf>>| match f {
            Some(f) => Credentials::from_file(f.get_ref()).map(Some).map_err(|e| {
                self.at(
                    f.span().start,
                    key(&format!("{side}_auth_file")),
                    e.to_string(),
                )
            }),
            // The environment is not consulted: one agent serves several
            // pairs, and a service's environment is easy to lose track of.
            None => Ok(None),
        };
        let session_timeout = p
            .session_timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(10));
        let connect_timeout = p
            .connect_timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(10));
        let tls = |side: &str,
                   ca: &Option<Spanned<PathBuf>>,
                   cert: &Option<Spanned<PathBuf>>,
                   key_file: &Option<Spanned<PathBuf>>| {
            let at = |f: &Spanned<PathBuf>, k: &str, reason: String| {
                self.at(f.span().start, key(&format!("{side}_tls_{k}")), reason)
            };
            match (ca, cert, key_file) {
                (None, None, None) => Ok(None),
                (None, Some(f), _) | (None, None, Some(f)) => Err(at(
                    f,
                    if cert.is_some() { "cert" } else { "key" },
                    format!("needs {side}_tls_ca: a client certificate only goes with TLS"),
                )),
                (Some(ca), _, _) => TlsConfig::load(
                    ca.get_ref(),
                    cert.as_ref().map(|c| c.get_ref().as_path()),
                    key_file.as_ref().map(|k| k.get_ref().as_path()),
                )
                .map(Some)
                .map_err(|e| at(ca, "ca", e.to_string())),
            }
        };
        let sasl = |side: &str, f: &Option<Spanned<PathBuf>>| match f {
            Some(f) => SaslConfig::load(
                f.get_ref(),
                p.jaas_section.as_deref(),
                p.sasl_service.as_deref(),
                p.sasl_host.as_deref(),
            )
            .map(|s| Some(Box::new(s)))
            .map_err(|e| self.at(f.span().start, key(&format!("{side}_jaas")), e.to_string())),
            None => Ok(None),
        };
        let spec = |side: &str, v: &SideValue, creds, sasl, tls| match v {
            SideValue::Live(c) => SideSpec::Live(EnsembleSpec {
                side: side.to_string(),
                connect: c.clone(),
                credentials: creds,
                sasl,
                tls,
                session_timeout,
                connect_timeout,
            }),
            SideValue::Files(path) => SideSpec::file(side, &path.to_string_lossy(), None),
        };
        let servers = |s: &SideSpec| s.live().map_or(1, |e| e.connect.hosts.len());
        let source = spec(
            "source",
            &p.source,
            credentials("source", &p.source_auth_file)?,
            sasl("source", &p.source_jaas)?,
            tls(
                "source",
                &p.source_tls_ca,
                &p.source_tls_cert,
                &p.source_tls_key,
            )?,
        );
        let target = spec(
            "target",
            &p.target,
            credentials("target", &p.target_auth_file)?,
            sasl("target", &p.target_jaas)?,
            tls(
                "target",
                &p.target_tls_ca,
                &p.target_tls_cert,
                &p.target_tls_key,
            )?,
        );

        let mut patterns: Vec<String> = Vec::new();
        if !p.include_zookeeper {
            patterns.extend(DEFAULT_EXCLUDES.iter().map(|s| s.to_string()));
        }
        patterns.extend(p.excludes.iter().map(|g| g.0.clone()));
        // Each pattern was checked alone while parsing; together they cannot fail.
        let excludes = Excludes::new(&patterns)
            .map_err(|e| self.at(p.name.span().start, key("excludes"), e.to_string()))?;
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
        let options = CompareOptions {
            path: p
                .path
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_else(|| "/".into()),
            walk,
            reader: ReaderOptions {
                sessions: p.sessions.map(|n| n.0).unwrap_or(defaults.sessions),
                max_reads_per_second: p.max_reads_per_second.unwrap_or(0),
                max_latency: p.max_latency.map_or(defaults.max_latency, |l| l.0),
                multi_read: p.multi_read.unwrap_or(true),
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
        };
        let admin = |side: &str,
                     ports: &Option<Spanned<AdminPorts>>,
                     ca: &Option<Spanned<PathBuf>>,
                     servers: usize| {
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
                Some(ca) => AdminEndpoint::https(list, ca.get_ref()).map_err(|e| {
                    self.at(
                        ca.span().start,
                        key(&format!("{side}_admin_tls_ca")),
                        e.reason,
                    )
                })?,
            };
            if let Some(ports) = ports {
                let bad = |reason: String| {
                    self.at(
                        ports.span().start,
                        key(&format!("{side}_admin_port")),
                        reason,
                    )
                };
                if endpoint.ports.contains(&0) {
                    return Err(bad("0 is not a port".into()));
                }
                endpoint.check(servers).map_err(bad)?;
            }
            Ok(endpoint)
        };
        let source_admin = admin(
            "source",
            &p.source_admin_port,
            &p.source_admin_tls_ca,
            servers(&source),
        )?;
        let target_admin = admin(
            "target",
            &p.target_admin_port,
            &p.target_admin_tls_ca,
            servers(&target),
        )?;
        let registrations = self.registrations(i, &p, &target, |side, v| {
            Ok(spec(
                side,
                v,
                credentials("source", &p.source_auth_file)?,
                sasl("source", &p.source_jaas)?,
                tls(
                    "source",
                    &p.source_tls_ca,
                    &p.source_tls_cert,
                    &p.source_tls_key,
                )?,
            ))
        })?;
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
            interval,
            jitter,
            confirm: ConfirmPolicy {
                rounds: p
                    .confirm_rounds
                    .map(|n| n.0 as u32)
                    .unwrap_or(DEFAULT_CONFIRM_ROUNDS),
                min_age: p.confirm_after.map(|d| d.0).unwrap_or_default(),
            },
            round_timeout,
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
                settle: p.watch_settle.map(|d| d.0).unwrap_or(DEFAULT_WATCH_SETTLE),
            },
            raw: p,
        })
    }
}

impl Cx<'_> {
    /// `expect`, `expect_grace` and `expect_since`; a live `expect` is the
    /// old ensemble, read with the source's credentials (`side_spec`).
    fn registrations(
        &self,
        i: usize,
        p: &RawPair,
        target: &SideSpec,
        side_spec: impl Fn(&str, &SideValue) -> Result<SideSpec, ConfigError>,
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
            expect: side_spec("expected", expect.get_ref())?,
            grace: p
                .expect_grace
                .as_ref()
                .map_or(DEFAULT_EXPECT_GRACE, |g| g.get_ref().0),
            since,
        }))
    }
}

/// Nagios's external command file is a FIFO that exists while Nagios runs:
/// absent is fine (results are skipped until it is back), but anything else
/// in its place, or no directory for it, is a mistake that would lose every
/// result.
fn check_command_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_fifo() => Ok(()),
        Ok(m) if m.is_dir() => Err(format!(
            "{} is a directory, not Nagios's command pipe (command_file in nagios.cfg)",
            path.display()
        )),
        Ok(_) => Err(format!(
            "{} is not a FIFO: results written there would never reach Nagios (its \
             command_file in nagios.cfg is a named pipe Nagios creates)",
            path.display()
        )),
        Err(_) => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(format!(
                "{} cannot exist: its directory {} does not",
                path.display(),
                dir.display()
            )),
            _ => Ok(()),
        },
    }
}

/// The parity check the agent judges a pair by when `[nagios]` says
/// nothing: `check parity`'s defaults.
pub(crate) fn default_check() -> ParityCheck {
    ParityCheck::defaults(DEFAULT_DETAILS)
}

/// `HOST:PORT` for `[prometheus] listen`: an address, or a name resolved
/// now (its first address), so a typo is a configuration error.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(a) = text.parse::<SocketAddr>() {
        if a.port() == 0 {
            return Err(format!(
                "{text:?} has port 0: give the port Prometheus scrapes"
            ));
        }
        return Ok(a);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "{text:?} is not HOST:PORT (e.g. \"127.0.0.1:9149\")"
        ));
    };
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("{port:?} in {text:?} is not a port number"));
    }
    use std::net::ToSocketAddrs;
    match text.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(format!("{host:?} has no address")),
        Err(e) => Err(format!("{host:?} does not resolve: {e}")),
    }
}

fn check_writable_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| format!("{} contains NUL", dir.display()))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Err(format!(
            "{} is not writable by this user: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Positions and key names in the text, for errors toml reports by offset.

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn line_start(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text[..end].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

fn strip_comment(line: &str) -> &str {
    // Good enough for headers and keys, which hold no '#'.
    line.split('#').next().unwrap_or("").trim()
}

/// The table the line at `offset` belongs to: `""`, `nagios`, `pair[1]`.
fn table_at(text: &str, offset: usize) -> String {
    let upto = &text[..line_start(text, offset).min(text.len())];
    // Count the [[array]] headers above, so entries get their index.
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let mut current = String::new();
    let this_line = text[line_start(text, offset)..]
        .lines()
        .next()
        .unwrap_or("");
    for line in upto.lines().chain(std::iter::once(this_line)) {
        let l = strip_comment(line);
        if let Some(name) = l.strip_prefix("[[").and_then(|s| s.strip_suffix("]]")) {
            let name = name.trim().to_string();
            let n = counts.entry(name.clone()).or_insert(0);
            current = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            current = name.trim().to_string();
        }
    }
    current
}

fn join_key(table: &str, key: &str) -> String {
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => table.to_string(),
        (false, false) => format!("{table}.{key}"),
    }
}

/// The key whose value (or name) sits at `offset`, with its table.
fn key_at(text: &str, offset: usize) -> String {
    let table = table_at(text, offset);
    // The line holding `key =`: this one, or for a value spread over lines
    // (an array), the nearest one above that is not a header.
    let mut start = line_start(text, offset);
    loop {
        let line = text[start..].lines().next().unwrap_or("");
        let l = strip_comment(line);
        if l.starts_with('[') && !l.contains('=') {
            return table;
        }
        if let Some((k, _)) = l.split_once('=') {
            let k = k.trim().trim_matches('"').trim_matches('\'');
            return join_key(&table, k);
        }
        if start == 0 {
            return table;
        }
        start = line_start(text, start - 1);
    }
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(Path::new("agent.toml"), text)
    }

    fn tmp_dir_line() -> String {
        format!("state_dir = {:?}\n", std::env::temp_dir())
    }

    fn minimal() -> String {
        tmp_dir_line()
            + "[[pair]]\nname = \"kafka\"\nsource = \"old:2181\"\ntarget = \"new:2181/kafka\"\n"
    }

    fn invalid(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                line, key, reason, ..
            }) => (line, key, reason),
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_pair_takes_the_documented_defaults() {
        let c = parse(&minimal()).unwrap();
        let p = &c.pairs[0];
        assert_eq!(p.name, "kafka");
        assert_eq!(p.interval, DEFAULT_INTERVAL);
        assert_eq!(p.jitter, Duration::from_secs(6));
        assert_eq!(p.confirm.rounds, 2);
        assert_eq!(p.confirm.min_age, Duration::ZERO);
        assert_eq!(p.options.path, "/");
        assert_eq!(p.options.recheck_delay, Some(DEFAULT_RECHECK_DELAY));
        assert_eq!(p.options.walk.ephemerals, EphemeralPolicy::Count);
        assert_eq!(p.options.limit, 0);
        assert_eq!(
            p.target.live().expect("live").connect.chroot.as_deref(),
            Some("/kafka")
        );
        assert_eq!(p.nagios_service, "zkparity kafka");
        assert_eq!(
            p.watch,
            WatchSettings {
                enabled: true,
                full_walk_every: DEFAULT_FULL_WALK_EVERY,
                settle: DEFAULT_WATCH_SETTLE,
            }
        );
        assert!(c.nagios.is_none());
        assert_eq!(c.log_level, LogLevel::Info);
    }

    #[test]
    fn a_bad_duration_names_its_key_and_line() {
        let text = minimal() + "interval = \"30x\"\n";
        let (line, key, reason) = invalid(&text);
        assert_eq!(line, 6);
        assert_eq!(key, "pair[0].interval");
        assert!(reason.contains("30x"), "{reason}");
    }

    #[test]
    fn a_latency_limit_needs_its_unit() {
        let c = parse(&(minimal() + "max_latency = \"250ms\"\n")).unwrap();
        let limit = c.pairs[0].options.reader.max_latency;
        assert_eq!(limit, Some(Duration::from_millis(250)));
        let c = parse(&(minimal() + "max_latency = \"off\"\n")).unwrap();
        assert_eq!(c.pairs[0].options.reader.max_latency, None);
        let (line, key, reason) = invalid(&(minimal() + "max_latency = 250\n"));
        assert_eq!((line, key.as_str()), (6, "pair[0].max_latency"));
        assert!(reason.contains("unit"), "{reason}");
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let text = minimal()
            + "[[pair]]\nname = \"b\"\nsource = \"a:1\"\ntarget = \"b:1\"\nintervall = \"5s\"\n";
        let (line, key, reason) = invalid(&text);
        assert_eq!(line, 10);
        assert_eq!(key, "pair[1].intervall");
        assert!(reason.contains("unknown field"), "{reason}");
    }

    #[test]
    fn a_missing_key_names_the_table_and_the_key() {
        let text = tmp_dir_line() + "[[pair]]\nname = \"a\"\nsource = \"a:1\"\n";
        let (_, key, reason) = invalid(&text);
        assert_eq!(key, "pair[0].target");
        assert!(reason.contains("missing field"), "{reason}");
    }

    #[test]
    fn a_bad_connect_string_is_refused_at_its_line() {
        let text =
            tmp_dir_line() + "[[pair]]\nname = \"a\"\nsource = \"old:0\"\ntarget = \"b:1\"\n";
        let (line, key, reason) = invalid(&text);
        assert_eq!((line, key.as_str()), (4, "pair[0].source"));
        assert!(reason.contains("port"), "{reason}");
    }

    #[test]
    fn duplicate_pair_names_are_refused() {
        let text = minimal() + "[[pair]]\nname = \"kafka\"\nsource = \"a:1\"\ntarget = \"b:1\"\n";
        let (line, key, _) = invalid(&text);
        assert_eq!((line, key.as_str()), (7, "pair[1].name"));
    }

    #[test]
    fn a_bad_exclude_in_a_multiline_array_names_the_key() {
        let text = minimal() + "excludes = [\n  \"/ok/**\",\n  \"/bad/[\",\n]\n";
        // toml places errors inside an array at the array; the reason names
        // the pattern.
        let (line, key, reason) = invalid(&text);
        assert_eq!((line, key.as_str()), (6, "pair[0].excludes"));
        assert!(reason.contains("/bad/["), "{reason}");
    }

    #[test]
    fn names_that_cannot_be_file_names_are_refused() {
        for bad in ["", "../x", ".hidden", "a b", "a/b"] {
            let text = tmp_dir_line()
                + &format!("[[pair]]\nname = {bad:?}\nsource = \"a:1\"\ntarget = \"b:1\"\n");
            let (_, key, _) = invalid(&text);
            assert_eq!(key, "pair[0].name", "{bad:?}");
        }
    }

    #[test]
    fn watch_keys_are_read_and_checked() {
        let text = minimal() + "watch = false\nfull_walk_every = 3\nwatch_settle = \"500ms\"\n";
        let w = parse(&text).unwrap().pairs[0].watch;
        assert!(!w.enabled);
        assert_eq!(w.full_walk_every, 3);
        assert_eq!(w.settle, Duration::from_millis(500));
        let (line, key, _) = invalid(&(minimal() + "full_walk_every = 0\n"));
        assert_eq!((line, key.as_str()), (6, "pair[0].full_walk_every"));
        let (_, key, _) = invalid(&(minimal() + "watch = \"yes\"\n"));
        assert_eq!(key, "pair[0].watch");
    }

    #[test]
    fn jitter_longer_than_the_interval_is_refused() {
        let text = minimal() + "interval = \"5s\"\njitter = \"10s\"\n";
        let (_, key, _) = invalid(&text);
        assert_eq!(key, "pair[0].jitter");
    }

    #[test]
    fn a_pair_is_required() {
        let (_, key, _) = invalid(&tmp_dir_line());
        assert_eq!(key, "pair");
    }

    #[test]
    fn a_relative_or_missing_state_dir_is_refused() {
        let (_, key, _) =
            invalid(&minimal().replacen(&tmp_dir_line(), "state_dir = \"state\"\n", 1));
        assert_eq!(key, "state_dir");
        let (_, key, reason) = invalid(&minimal().replacen(
            &tmp_dir_line(),
            "state_dir = \"/nonexistent/zkparity\"\n",
            1,
        ));
        assert_eq!(key, "state_dir");
        assert!(reason.contains("/nonexistent/zkparity"), "{reason}");
    }

    #[test]
    fn ganglia_channels_resolve_with_gmonds_defaults() {
        let text = minimal()
            + "[[ganglia]]\nhost = \"127.0.0.1\"\n[[ganglia]]\nhost = \"239.2.11.71\"\nport = 8650\nttl = 3\n\
               [[ganglia]]\nhost = \"::1\"\n";
        let c = parse(&text).unwrap();
        let specs: Vec<(String, u32)> = c
            .ganglia
            .iter()
            .map(|g| (g.addr.to_string(), g.ttl))
            .collect();
        assert_eq!(
            specs,
            [
                ("127.0.0.1:8649".to_string(), 1),
                ("239.2.11.71:8650".to_string(), 3),
                ("[::1]:8649".to_string(), 1)
            ]
        );
    }

    #[test]
    fn a_bad_ganglia_channel_names_its_key_and_line() {
        let text = minimal() + "[[ganglia]]\nhost = \"\"\nport = 8649\n";
        let (line, key, _) = invalid(&text);
        assert_eq!((line, key.as_str()), (7, "ganglia[0].host"));
        let text = minimal() + "[[ganglia]]\nhost = \"gmond\"\nport = 70000\n";
        let (line, key, _) = invalid(&text);
        assert_eq!((line, key.as_str()), (8, "ganglia[0].port"));
    }

    #[test]
    fn probes_are_off_unless_an_interval_is_given() {
        assert!(parse(&minimal()).unwrap().probes.is_none());
        let text = "probe_interval = \"30s\"\n".to_string() + &minimal();
        let p = parse(&text).unwrap().probes.unwrap();
        assert_eq!(p.interval, Duration::from_secs(30));
        assert_eq!(p.timeout, crate::probe::DEFAULT_TIMEOUT);
        let text = "probe_interval = \"10ms\"\n".to_string() + &minimal();
        let (line, key, _) = invalid(&text);
        assert_eq!((line, key.as_str()), (1, "probe_interval"));
    }

    #[test]
    fn the_nagios_command_file_is_a_fifo_or_not_there_yet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("nagios.cmd");
        let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("c path");
        // SAFETY: mkfifo(3) on a fresh path of our own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(check_command_file(&fifo).is_ok());
        // Absent while Nagios is stopped: fine.
        assert!(check_command_file(&dir.path().join("later.cmd")).is_ok());
        let plain = dir.path().join("plain.cmd");
        std::fs::write(&plain, "").expect("a file");
        let e = check_command_file(&plain).unwrap_err();
        assert!(e.contains("not a FIFO"), "{e}");
        let e = check_command_file(dir.path()).unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
        let e = check_command_file(&dir.path().join("no/such.cmd")).unwrap_err();
        assert!(e.contains("does not"), "{e}");
    }

    #[test]
    fn nagios_path_rules_parse_or_name_their_line() {
        let text = minimal()
            + "[nagios]\ncommand_file = \"/tmp/zkparity-absent.cmd\"\nhost_name = \"h\"\n\
               judge = [\"/app/locks/**=warning\", \"/app/tmp=ok\"]\n";
        let c = parse(&text).unwrap();
        let rules = &c.nagios.expect("nagios").check.rules;
        assert_eq!(rules.len(), 2);
        let text = minimal()
            + "[nagios]\ncommand_file = \"/tmp/zkparity-absent.cmd\"\nhost_name = \"h\"\n\
               judge = [\"/app=loud\"]\n";
        let (line, key, reason) = invalid(&text);
        assert_eq!((line, key.as_str()), (9, "nagios.judge"));
        assert!(reason.contains("loud"), "{reason}");
    }

    #[test]
    fn nagios_fields_cannot_carry_separators() {
        let text = minimal() + "nagios_service = \"a;b\"\n";
        let (_, key, _) = invalid(&text);
        assert_eq!(key, "pair[0].nagios_service");
        let text = minimal() + "[nagios]\ncommand_file = \"/tmp/zkparity-absent.cmd\"\nhost_name = \"h\"\ncritical_kinds = [\"data\", \"dta\"]\n";
        let (line, key, reason) = invalid(&text);
        assert_eq!((line, key.as_str()), (9, "nagios.critical_kinds"));
        assert!(reason.contains("dta"), "{reason}");
    }

    #[test]
    fn a_jaas_file_is_read_for_its_section_and_its_mistakes_name_the_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("client.jaas");
        std::fs::write(
            &jaas,
            "ZkClient { org.apache.zookeeper.server.auth.DigestLoginModule required \
             username=\"bob\" password=\"pw\"; };",
        )
        .unwrap();
        std::fs::set_permissions(&jaas, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = minimal() + &format!("target_jaas = {jaas:?}\n");
        let (line, key, reason) = invalid(&text);
        assert_eq!((line, key.as_str()), (6, "pair[0].target_jaas"));
        assert!(reason.contains("no section Client"), "{reason}");
        let c = parse(&(text + "jaas_section = \"ZkClient\"\n")).unwrap();
        let sasl = c.pairs[0]
            .target
            .live()
            .expect("live")
            .sasl
            .as_ref()
            .expect("a SASL login");
        assert_eq!(sasl.login.identity(), "bob");
        assert!(c.pairs[0].source.live().expect("live").sasl.is_none());
    }

    #[test]
    fn an_auth_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("source.auth");
        std::fs::write(&auth, "u:p\n").unwrap();
        std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = minimal() + &format!("source_auth_file = {auth:?}\n");
        let (line, key, reason) = invalid(&text);
        assert_eq!((line, key.as_str()), (6, "pair[0].source_auth_file"));
        assert!(reason.contains("chmod 600"), "{reason}");
        std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = parse(&text).unwrap();
        assert_eq!(
            c.pairs[0]
                .source
                .live()
                .expect("live")
                .credentials
                .as_ref()
                .map(|c| c.user()),
            Some("u")
        );
    }

    #[test]
    fn tls_files_are_read_at_load_and_a_client_cert_needs_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let text = minimal() + &format!("target_tls_ca = {ca:?}\n");
        let c = parse(&text).unwrap();
        assert!(c.pairs[0].target.live().expect("live").tls.is_some());
        assert!(c.pairs[0].source.live().expect("live").tls.is_none());
        let text = minimal() + &format!("source_tls_cert = {ca:?}\n");
        let (line, key, reason) = invalid(&text);
        assert_eq!((line, key.as_str()), (6, "pair[0].source_tls_cert"));
        assert!(reason.contains("source_tls_ca"), "{reason}");
        let text = minimal() + "target_tls_ca = \"/nonexistent/ca.pem\"\n";
        let (_, key, reason) = invalid(&text);
        assert_eq!(key, "pair[0].target_tls_ca");
        assert!(reason.contains("/nonexistent/ca.pem"), "{reason}");
    }

    #[test]
    fn an_unchanged_pair_is_the_same_on_reload_and_a_changed_one_is_not() {
        let a = parse(&minimal()).unwrap();
        let b = parse(&minimal()).unwrap();
        assert!(a.pairs[0].same_as(&b.pairs[0]));
        let c = parse(&(minimal() + "interval = \"5s\"\n")).unwrap();
        assert!(!a.pairs[0].same_as(&c.pairs[0]));
    }

    #[test]
    fn the_sample_config_is_valid() {
        use std::os::unix::fs::PermissionsExt;
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/agent.toml"))
                .unwrap();
        // The sample's directory and credentials files, made here.
        let dir = tempfile::tempdir().unwrap();
        for name in ["old.auth", "new.auth"] {
            let f = dir.path().join(name);
            std::fs::write(&f, "zkparity:secret\n").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let text = text
            .replace("\"/var/lib/zkparity\"", &format!("{:?}", dir.path()))
            .replace("/etc/zkparity/", &format!("{}/", dir.path().display()))
            // No DNS on a build machine.
            .replace("gmond1.example.net", "127.0.0.1");
        let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.pairs.len(), 2);
        assert_eq!(c.pairs[1].interval, Duration::from_secs(300));
        assert_eq!(c.pairs[1].jitter, Duration::from_secs(30));
        assert!(c.nagios.is_some());
        assert_eq!(c.ganglia.len(), 1);
    }

    #[test]
    fn expect_keys_give_the_pair_a_registrations_check() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot = dir.path().join("before.zkps");
        std::fs::write(&snapshot, b"x").unwrap();
        let c = parse(&(minimal() + &format!("expect = {snapshot:?}\n"))).unwrap();
        let r = c.pairs[0].registrations.as_ref().expect("registrations");
        assert!(
            matches!(&r.expect, SideSpec::File { path, .. } if path == &snapshot),
            "{r:?}"
        );
        assert_eq!(r.grace, DEFAULT_EXPECT_GRACE);
        assert_eq!(r.since, None);

        let text = minimal()
            + &format!(
                "expect = {snapshot:?}\nexpect_grace = \"10m\"\nexpect_since = \"2024-05-01T22:00:00Z\"\n"
            );
        let c = parse(&text).unwrap();
        let r = c.pairs[0].registrations.as_ref().expect("registrations");
        assert_eq!(r.grace, Duration::from_secs(600));
        assert_eq!(
            r.since,
            Some(std::time::UNIX_EPOCH + Duration::from_secs(1_714_600_800))
        );
        assert!(parse(&minimal()).unwrap().pairs[0].registrations.is_none());
    }

    #[test]
    fn a_live_expect_is_the_old_ensemble_read_with_the_source_credentials() {
        let c = parse(&(minimal() + "expect = \"old:2181/kafka\"\n")).unwrap();
        let r = c.pairs[0].registrations.as_ref().expect("registrations");
        let live = r.expect.live().expect("a live expectation");
        assert_eq!(live.side, "expected");
        assert_eq!(live.connect.chroot.as_deref(), Some("/kafka"));
    }

    #[test]
    fn expect_grace_or_since_without_expect_names_the_key() {
        let (line, key, reason) = invalid(&(minimal() + "expect_grace = \"10m\"\n"));
        assert_eq!((line, key.as_str()), (6, "pair[0].expect_grace"));
        assert!(reason.contains("needs expect"), "{reason}");
        let (_, key, _) = invalid(&(minimal() + "expect_since = \"1714600800\"\n"));
        assert_eq!(key, "pair[0].expect_since");
    }

    #[test]
    fn a_bad_expect_since_or_grace_names_its_key_and_line() {
        let text = minimal() + "expect = \"old:2181\"\nexpect_since = \"yesterday\"\n";
        let (line, key, reason) = invalid(&text);
        assert_eq!((line, key.as_str()), (7, "pair[0].expect_since"));
        assert!(reason.contains("yesterday"), "{reason}");
        let text = minimal() + "expect = \"old:2181\"\nexpect_grace = \"soon\"\n";
        let (line, key, _) = invalid(&text);
        assert_eq!((line, key.as_str()), (7, "pair[0].expect_grace"));
    }

    #[test]
    fn expect_on_a_pair_whose_target_is_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text = tmp_dir_line()
            + &format!(
                "[[pair]]\nname = \"k\"\nsource = \"old:2181\"\ntarget = {:?}\nexpect = \"old:2181\"\n",
                dir.path()
            );
        let (line, key, reason) = invalid(&text);
        assert_eq!((line, key.as_str()), (6, "pair[0].expect"));
        assert!(reason.contains("live target"), "{reason}");
    }
}
