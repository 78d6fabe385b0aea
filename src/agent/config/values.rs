//! Values that validate themselves while the file is parsed, so toml
//! attaches the value's position to the error.

use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use toml::Spanned;

use crate::connect::ConnectString;
use crate::duration::DurationError;
use crate::exclude::Excludes;
use crate::nagios::range::Range;
use crate::placement::ReadFrom;
use crate::report::DiffKind;
use crate::source::SideSpec;
use crate::tree::EphemeralPolicy;

/// A value toml gives as text or as a number, as several keys take both.
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Text(String),
    Int(i64),
    Float(f64),
}

impl Raw {
    /// Text with its unit, or a number of seconds.
    fn duration(self) -> Result<Duration, String> {
        match self {
            Raw::Text(s) => parse_duration(&s),
            Raw::Int(n) => u64::try_from(n)
                .map(Duration::from_secs)
                .map_err(|_| format!("{} is not a duration", n as f64)),
            Raw::Float(f) => {
                Duration::try_from_secs_f64(f).map_err(|_| format!("{f} is not a duration"))
            }
        }
    }

    /// The value as written, for the parsers that read text.
    fn text(self) -> String {
        match self {
            Raw::Text(s) => s,
            Raw::Int(n) => n.to_string(),
            Raw::Float(f) => f.to_string(),
        }
    }
}

/// `"30s"`, `"500ms"`, `"2m"`, or a number of seconds: read as the file
/// is, so toml places a bad one at its key.
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Raw::deserialize(d)?
            .duration()
            .map(Dur)
            .map_err(de::Error::custom)
    }
}

/// `deserialize_with` for an optional duration key.
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Dur::deserialize(d).map(|v| Some(v.0))
}

/// `deserialize_with` for an optional duration key whose place errors
/// found later name.
pub(super) fn spanned_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Spanned<Duration>>, D::Error> {
    let v = Spanned::<Dur>::deserialize(d)?;
    Ok(Some(Spanned::new(v.span(), v.into_inner().0)))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::duration::read(s).map_err(|e| match e {
        DurationError::OutOfRange => format!("{s:?} is not a duration"),
        DurationError::Unreadable(e) => {
            format!("{s:?} is not a duration ({e}); use e.g. 500ms, 30s, 5m")
        }
    })
}

/// `"off"` or a duration with its unit, as `compare --max-latency`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LatencyLimit(pub Option<Duration>);

impl<'de> Deserialize<'de> for LatencyLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Raw::deserialize(d)?.text();
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

/// Which servers serve a side's reads, as `--source-read-from` takes it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ReadFromSetting(pub ReadFrom);

impl<'de> Deserialize<'de> for ReadFromSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(ReadFromSetting).map_err(de::Error::custom)
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
        let s = Raw::deserialize(d)?.text();
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
        match Raw::deserialize(d)? {
            Raw::Text(s) if s.trim() == "off" => Ok(RecheckDelay(None)),
            raw => raw
                .duration()
                .map(|d| RecheckDelay(Some(d)))
                .map_err(de::Error::custom),
        }
    }
}
