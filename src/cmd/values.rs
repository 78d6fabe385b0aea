//! Flag values parsed into typed values while clap reads the command line,
//! so nothing runs on a flag it could not read; and a value refused that
//! way is said as zkparity says any usage error (one line, exit 2), not in
//! clap's words.

use std::ffi::OsStr;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Arg, Command};
use zkparity::error::Error;

/// `--flag 500ms`: a [`Duration`], as [`zkparity::duration::parse`] reads
/// it, the flag named in the error as the operator wrote it.
#[derive(Clone, Copy, Debug)]
pub struct DurationValue;

impl TypedValueParser for DurationValue {
    type Value = Duration;

    fn parse_ref(
        &self,
        cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Duration, clap::Error> {
        let flag = flag_of(arg);
        (move |v: &str| zkparity::duration::parse(&flag, v)).parse_ref(cmd, arg, value)
    }
}

/// `--flag off` or a duration: `None` for off.
#[derive(Clone, Copy, Debug)]
pub struct DurationOrOff;

impl TypedValueParser for DurationOrOff {
    type Value = Option<Duration>;

    fn parse_ref(
        &self,
        cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Option<Duration>, clap::Error> {
        let flag = flag_of(arg);
        (move |v: &str| zkparity::duration::parse_or_off(&flag, v)).parse_ref(cmd, arg, value)
    }
}

/// `--max-latency off` or a duration with its unit (a bare number is
/// refused: milliseconds and seconds are too easily confused there).
#[derive(Clone, Copy, Debug)]
pub struct LatencyLimit;

impl TypedValueParser for LatencyLimit {
    type Value = Option<Duration>;

    fn parse_ref(
        &self,
        cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Option<Duration>, clap::Error> {
        let flag = flag_of(arg);
        let limit = move |v: &str| {
            zkparity::throttle::parse_limit(v)
                .map_err(|why| Error::Usage(format!("{flag} {v:?}: {why}")))
        };
        limit.parse_ref(cmd, arg, value)
    }
}

/// The flag as its refusals name it: the short form where there is one
/// (`-t`), else the long one.
fn flag_of(arg: Option<&Arg>) -> String {
    match arg {
        Some(a) => match (a.get_short(), a.get_long()) {
            (Some(c), _) => format!("-{c}"),
            (None, Some(l)) => format!("--{l}"),
            (None, None) => a.get_id().to_string(),
        },
        None => String::new(),
    }
}

/// The value zkparity's own parser refused, if that is why clap refused
/// the command line.
pub fn refusal(e: &clap::Error) -> Option<&Error> {
    use std::error::Error as _;
    e.source()?.downcast_ref::<Error>()
}

/// Ends a command line clap refused: a refused flag value as zkparity's
/// usage error, anything else as clap says it.
pub fn refused(e: clap::Error) -> ExitCode {
    match refusal(&e) {
        Some(reason) => {
            eprintln!("zkparity: error: {reason}");
            ExitCode::from(reason.exit_code() as u8)
        }
        None => e.exit(),
    }
}
