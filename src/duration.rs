//! Durations as operators write them on a command line.

use std::time::Duration;

use crate::error::Error;

/// Parses `3`, `2.5`, `500ms`, `3s`, `1m`; `flag` names the option in the
/// error.
pub fn parse(flag: &str, value: &str) -> Result<Duration, Error> {
    let v = value.trim();
    let bad =
        |why: String| Error::Usage(format!("{flag} {value:?}: {why} (use e.g. 500ms, 3s, 1m)"));
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad("not a duration".into()));
    }
    humantime::parse_duration(v).map_err(|e| bad(e.to_string()))
}
