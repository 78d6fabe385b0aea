//! Why a sandbox server could not be set up or started: each error names the
//! port, file or directory it concerns, and the end of the server's log where
//! there is one.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::env::CLASSPATH_ENV;

/// Why a sandbox server could not be set up or started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "ZooKeeper jar {jar} not found in {}: run scripts/install-deps (installs Debian's \
         `zookeeper` package), or set {CLASSPATH_ENV}",
        dir.display()
    )]
    MissingJar { jar: String, dir: PathBuf },

    #[error(
        "ZooKeeper {release} is not installed ({} is missing): run scripts/install-zk-versions \
         (scripts/install-deps runs it)",
        jar.display()
    )]
    MissingRelease { release: &'static str, jar: PathBuf },

    #[error("{}, listed in {CLASSPATH_ENV}, does not exist", path.display())]
    ClasspathEntryMissing { path: PathBuf },

    #[error("no java runtime found (looked at {searched}): run scripts/install-deps")]
    JavaNotFound { searched: String },

    #[error("zoo.cfg key {key:?} is set by the sandbox itself and cannot be overridden")]
    ManagedConfigKey { key: String },

    #[error("invalid zoo.cfg entry {key:?}={value:?}: {reason}")]
    BadConfigEntry {
        key: String,
        value: String,
        reason: String,
    },

    #[error("an ensemble needs at least one server, got {size}")]
    BadEnsembleSize { size: usize },

    #[error("no free loopback port found after {tries} tries: {source}")]
    NoFreePort { tries: usize, source: io::Error },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error("cannot start java for the ZooKeeper server on port {port}: {source}")]
    Spawn { port: u16, source: io::Error },

    #[error(
        "port {port} was taken by another process before ZooKeeper could bind it \
         ({attempts} attempt(s) with fresh ports); end of {}:\n{tail}",
        log.display()
    )]
    PortTaken {
        port: u16,
        log: PathBuf,
        attempts: usize,
        tail: String,
    },

    #[error(
        "ZooKeeper on port {port} exited during startup ({status}); end of {}:\n{tail}",
        log.display()
    )]
    Exited {
        port: u16,
        status: String,
        log: PathBuf,
        tail: String,
    },

    #[error(
        "ZooKeeper on port {port} was not serving after {waited:?} (last answer: {last}); \
         end of {}:\n{tail}",
        log.display()
    )]
    NotServing {
        port: u16,
        waited: Duration,
        last: String,
        log: PathBuf,
        tail: String,
    },

    #[error(
        "port {port} is answered by another ZooKeeper ({detail}), not by the one using {}",
        data_dir.display()
    )]
    WrongServer {
        port: u16,
        data_dir: PathBuf,
        detail: String,
    },

    #[error("ensemble {connect} has no single leader after {waited:?}: {modes}")]
    NoLeader {
        connect: String,
        waited: Duration,
        modes: String,
    },
}

impl SandboxError {
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        SandboxError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
