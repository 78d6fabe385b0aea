//! `zkparity agent`: a long-running process that compares ensemble pairs
//! round after round and reports each pair's standing to files, Nagios and
//! logs.
//!
//! - [`config`]: the TOML configuration and its validation.
//! - [`state`]: the per-pair state file (schema in `docs/agent.md`), written
//!   atomically, and [`state::read_state`] for its readers.
//! - [`verdict`]: the Nagios answer for a state, shared by the passive
//!   results and `check parity --state`.

pub mod config;
pub mod state;
pub mod verdict;

use std::path::Path;

use config::AgentConfig;

/// Exit code for a configuration that does not validate.
pub const EXIT_BAD_CONFIG: i32 = crate::error::EXIT_ERROR;

/// `zkparity agent --check-config`: validates and says what it found.
pub fn check_config(file: &Path) -> i32 {
    match AgentConfig::load(file) {
        Ok(c) => {
            let names: Vec<&str> = c.pairs.iter().map(|p| p.name.as_str()).collect();
            println!(
                "config {}: valid; {} pair{}: {}",
                file.display(),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            );
            0
        }
        Err(e) => {
            eprintln!("zkparity: error: {e}");
            EXIT_BAD_CONFIG
        }
    }
}

/// `zkparity agent --config FILE`.
pub async fn run(file: &Path) -> i32 {
    match AgentConfig::load(file) {
        Ok(_) => {
            eprintln!("zkparity: error: the agent's round loop is not part of this build yet");
            crate::error::EXIT_ERROR
        }
        Err(e) => {
            eprintln!("zkparity: error: {e}");
            EXIT_BAD_CONFIG
        }
    }
}
