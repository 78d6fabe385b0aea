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

/// A flag's value read by one of zkparity's parsers, which names the flag
/// in its refusal: `flag value` in, the typed value or a usage error out.
#[derive(Clone, Copy)]
pub struct FlagValue<T>(fn(&str, &str) -> Result<T, Error>);

/// `--flag 500ms`: a [`Duration`], as [`zkparity::duration::parse`] reads it.
pub const DURATION: FlagValue<Duration> = FlagValue(zkparity::duration::parse);

/// `--flag off` or a duration: `None` for off.
pub const DURATION_OR_OFF: FlagValue<Option<Duration>> =
    FlagValue(zkparity::duration::parse_or_off);

/// `--max-latency off` or a duration with its unit (a bare number is
/// refused: milliseconds and seconds are too easily confused there).
pub const LATENCY_LIMIT: FlagValue<Option<Duration>> = FlagValue(|flag, value| {
    zkparity::throttle::parse_limit(value)
        .map_err(|why| Error::Usage(format!("{flag} {value:?}: {why}")))
});

impl<T: Clone + Send + Sync + 'static> TypedValueParser for FlagValue<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &Command, arg: Option<&Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let (parse, flag) = (self.0, flag_of(arg));
        // A parser of clap's own kind keeps the refusal as the error's
        // source, for `refusal` to find.
        (move |v: &str| parse(&flag, v)).parse_ref(cmd, arg, value)
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
