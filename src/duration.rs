//! Durations as operators write them: on a command line (`--flag 500ms`)
//! and in the agent's configuration (`interval = "30s"`). One reading of
//! the text; each front end words its refusal as its users know it.

use std::time::Duration;

use crate::error::Error;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// A number of seconds that no `Duration` holds (negative, too large,
    /// not finite).
    OutOfRange,
    /// Neither a number nor a duration with its unit.
    Unreadable(String),
}

/// Reads `3`, `2.5` (seconds), `500ms`, `3s`, `1m`; blanks around it are
/// ignored.
pub fn read(value: &str) -> Result<Duration, DurationError> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| DurationError::OutOfRange);
    }
    humantime::parse_duration(v).map_err(|e| DurationError::Unreadable(e.to_string()))
}

/// Parses `3`, `2.5`, `500ms`, `3s`, `1m`; `flag` names the option in the
/// error.
pub fn parse(flag: &str, value: &str) -> Result<Duration, Error> {
    read(value).map_err(|e| {
        let why = match e {
            DurationError::OutOfRange => "not a duration".to_string(),
            DurationError::Unreadable(why) => why,
        };
        Error::Usage(format!("{flag} {value:?}: {why} (use e.g. 500ms, 3s, 1m)"))
    })
}

/// A duration that may be turned off: `off`, `none` or `no` are `None`.
pub fn parse_or_off(flag: &str, value: &str) -> Result<Option<Duration>, Error> {
    match value.trim() {
        "off" | "none" | "no" => Ok(None),
        v => parse(flag, v).map(Some),
    }
}
