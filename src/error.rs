//! Typed errors and the exit codes they map to.
//!
//! Every error names the ensemble, server, path or file it concerns, so an
//! operator reading one line on a pager knows where to look.

use std::path::PathBuf;

/// Exit code: both sides hold the same tree (transient differences allowed).
pub const EXIT_IDENTICAL: i32 = 0;
/// Exit code: confirmed differences were found.
pub const EXIT_DIFFERENT: i32 = 1;
/// Exit code: bad usage, bad input, or an ensemble that could not be read.
pub const EXIT_ERROR: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid connect string {input:?}: {reason}")]
    BadConnectString { input: String, reason: String },

    #[error("invalid path {path:?}: {reason}")]
    BadPath { path: String, reason: String },

    #[error("invalid --exclude pattern {pattern:?}: {reason}")]
    BadExclude { pattern: String, reason: String },

    #[error("credentials file {}: {reason}", path.display())]
    CredentialsFile { path: PathBuf, reason: String },

    #[error("credentials in environment variable {var}: {reason}")]
    CredentialsEnv { var: String, reason: String },

    #[error("cannot connect to the {side} ensemble {ensemble}: {reason}")]
    Connect {
        side: String,
        ensemble: String,
        reason: String,
    },

    #[error("reading {path} from the {side} ensemble {ensemble} failed: {reason}")]
    Read {
        side: String,
        ensemble: String,
        path: String,
        reason: String,
    },

    #[error("{path} does not exist on either ensemble")]
    RootMissing { path: String },

    #[error("{} line {line}: {reason}", file.display())]
    BadFile {
        file: PathBuf,
        line: u64,
        reason: String,
    },

    #[error("{0}")]
    Usage(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    /// Every error is a "could not answer" outcome; differences are not errors.
    pub fn exit_code(&self) -> i32 {
        EXIT_ERROR
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
