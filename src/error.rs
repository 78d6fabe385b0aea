//! Typed errors and the exit codes they map to.
//!
//! Every error names the ensemble, server, path or file it concerns, so an
//! operator reading one line on a pager knows where to look.

use std::path::PathBuf;

// Every exit code zkparity chooses is named here.

/// Exit code: the command did what it was asked (a snapshot or export
/// written, a round sent to Ganglia, an agent stopped cleanly, a valid
/// agent configuration).
pub const EXIT_SUCCESS: i32 = 0;
/// Exit code: both sides hold the same tree (transient differences allowed).
pub(crate) const EXIT_IDENTICAL: i32 = 0;
/// Exit code: confirmed differences were found.
pub(crate) const EXIT_DIFFERENT: i32 = 1;
/// Exit code: nothing compared differs, but a side could not read some
/// nodes (NoAuth): the comparison is incomplete.
pub(crate) const EXIT_INCOMPLETE: i32 = 3;
/// Exit code: bad usage, bad input, or an ensemble that could not be read;
/// see [`Error::exit_code`].
pub const EXIT_ERROR: i32 = 2;
/// Exit codes of a command stopped by SIGINT (Ctrl-C) or SIGTERM: 128 plus
/// the signal's number, as a shell reports a command the signal killed.
pub(crate) const EXIT_INTERRUPTED: i32 = 130;
pub(crate) const EXIT_TERMINATED: i32 = 143;
/// Exit code of `zkparity probe`: every probed ensemble is healthy.
pub(crate) const EXIT_HEALTHY: i32 = 0;
/// Exit code of `zkparity probe`: something is unhealthy (a down server
/// included: that is an answer, not an error).
pub(crate) const EXIT_UNHEALTHY: i32 = 1;
/// Exit code of the agent for a configuration that does not validate, or
/// an agent that cannot start.
pub const EXIT_BAD_CONFIG: i32 = EXIT_ERROR;
/// Exit codes of the checks, as the monitoring-plugins guidelines want.
pub(crate) const EXIT_OK: i32 = 0;
pub(crate) const EXIT_WARNING: i32 = 1;
pub(crate) const EXIT_CRITICAL: i32 = 2;
/// A check that could not judge, whatever the reason; see
/// [`Error::check_exit_code`].
pub(crate) const EXIT_UNKNOWN: i32 = 3;

/// The signal that stopped a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    /// What the user sees: what happened, and the signal's name.
    fn says(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "interrupted (SIGINT)",
            StopSignal::Terminate => "stopped (SIGTERM)",
        }
    }
}

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

    /// A JAAS configuration that cannot be used: unreadable, malformed, no
    /// such section, a keytab others may read.
    #[error("JAAS configuration {}: {reason}", path.display())]
    Jaas { path: PathBuf, reason: String },

    /// A Kerberos login that failed before any server was asked: no
    /// ticket, the KDC unreachable, a wrong key.
    #[error("Kerberos login as {identity} failed: {reason}")]
    Kerberos { identity: String, reason: String },

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

    /// The servers a side was to be read from are not there (every
    /// follower down, a list naming none that answers): never read
    /// elsewhere unasked.
    #[error("cannot read the {side} ensemble {ensemble} from {read_from}: {reason}")]
    ReadPlacement {
        side: String,
        ensemble: String,
        read_from: String,
        reason: String,
    },

    #[error("{path} does not exist on either ensemble")]
    RootMissing { path: String },

    /// Both sides reach one ensemble at the same path: comparing it with
    /// itself could only ever say "identical".
    #[error("source and target are one ensemble at the same path {path} ({evidence}); a comparison would only compare it with itself: give the other ensemble's connect string")]
    SameEnsemble { path: String, evidence: String },

    /// A write that looks like a mistake, refused before anything was
    /// written: `fix` says how to mean it, or what to correct.
    #[error("refused, nothing written: {reason}; {fix}")]
    Refused { reason: String, fix: String },

    #[error("{} line {line}: {reason}", file.display())]
    BadFile {
        file: PathBuf,
        line: u64,
        reason: String,
    },

    /// A ZooKeeper data directory, snapshot or log that cannot be read:
    /// damaged, cut, or missing what is asked of it.
    #[error("{}{}: {reason}", path.display(), offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
    DataDir {
        path: PathBuf,
        offset: Option<u64>,
        reason: String,
    },

    #[error("{0}")]
    Usage(String),

    /// A command that must hold everything could not read some nodes;
    /// nothing was written.
    #[error("{what}: {unreadable} node(s) could not be read and {acl_redacted} ACL(s) came back with digest ids hidden, e.g. {}; nothing written: {advice}", first.join(", "))]
    Incomplete {
        what: String,
        unreadable: u64,
        acl_redacted: u64,
        first: Vec<String>,
        advice: String,
    },

    /// SIGINT or SIGTERM came before the work was done; whatever it was
    /// writing was dropped.
    #[error("{}: {after}", .signal.says())]
    Stopped {
        signal: StopSignal,
        /// What the stop left behind, and what to do next.
        after: String,
    },

    /// A task that did part of the work panicked or was cancelled.
    #[error("{task}: {source}")]
    TaskFailed {
        task: String,
        source: tokio::task::JoinError,
    },

    /// A local server of `zkparity demo` did not start, or could not be
    /// loaded with the sample.
    #[error("demo: {reason}")]
    LocalServer { reason: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    /// The exit code of a command that failed with this error. Every error
    /// is a "could not answer" outcome: differences are not errors, and a
    /// command stopped by a signal wrote nothing.
    pub fn exit_code(&self) -> i32 {
        // Listed one by one, so that a new variant has to choose.
        match self {
            // Bad usage or input.
            Error::BadConnectString { .. }
            | Error::BadPath { .. }
            | Error::BadExclude { .. }
            | Error::CredentialsFile { .. }
            | Error::CredentialsEnv { .. }
            | Error::Jaas { .. }
            | Error::Kerberos { .. }
            | Error::BadFile { .. }
            | Error::DataDir { .. }
            | Error::Usage(_)
            // An ensemble that could not be read.
            | Error::Connect { .. }
            | Error::Read { .. }
            | Error::ReadPlacement { .. }
            | Error::RootMissing { .. }
            | Error::SameEnsemble { .. }
            | Error::Refused { .. }
            // This machine: files, tasks, the demo's servers.
            | Error::Io { .. }
            | Error::TaskFailed { .. }
            | Error::LocalServer { .. } => EXIT_ERROR,
            // Stopped before done.
            Error::Stopped {
                signal: StopSignal::Interrupt,
                ..
            } => EXIT_INTERRUPTED,
            Error::Stopped {
                signal: StopSignal::Terminate,
                ..
            } => EXIT_TERMINATED,
            // Nodes unread: as a comparison that could not see them.
            Error::Incomplete { .. } => EXIT_INCOMPLETE,
        }
    }

    /// The exit code of a check that failed with this error: UNKNOWN, since
    /// a check says nothing else about what it could not judge.
    pub fn check_exit_code(&self) -> i32 {
        EXIT_UNKNOWN
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_says_which_and_that_nothing_was_written() {
        let e = Error::Stopped {
            signal: StopSignal::Interrupt,
            after: "nothing written".into(),
        };
        assert_eq!(e.to_string(), "interrupted (SIGINT): nothing written");
        assert_eq!(e.exit_code(), 130);
        let e = Error::Stopped {
            signal: StopSignal::Terminate,
            after: "nothing written".into(),
        };
        assert_eq!(e.to_string(), "stopped (SIGTERM): nothing written");
        assert_eq!(e.exit_code(), 143);
        assert_eq!(e.check_exit_code(), EXIT_UNKNOWN);
    }

    #[tokio::test]
    async fn a_panicked_task_says_so() {
        let join = tokio::spawn(async { panic!("boom") }).await.unwrap_err();
        let e = Error::TaskFailed {
            task: "opening source file x".into(),
            source: join,
        };
        let text = e.to_string();
        assert!(text.starts_with("opening source file x: task "), "{text}");
        assert!(text.contains("panicked"), "{text}");
        assert_eq!(e.exit_code(), EXIT_ERROR);
    }
}
