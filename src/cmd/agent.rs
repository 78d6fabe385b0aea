//! `zkparity agent`: the long-running comparer.

use std::path::{Path, PathBuf};

use clap::Args;
use zkparity::error::{Error, EXIT_BAD_CONFIG, EXIT_SUCCESS};

pub const AGENT_HELP: &str = "\
Configuration reference: docs/agent.md; a commented sample: examples/agent.toml.

Signals: SIGTERM and SIGINT finish the state file being written and exit 0;
SIGHUP re-reads the configuration (a new one that does not validate is
refused and the running one kept).

Exit codes: 0 clean shutdown (or a valid config with --check-config), 2 the
configuration does not validate or the agent could not start.";

#[derive(Args)]
pub struct AgentArgs {
    /// The agent's TOML configuration
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration (credentials files and state directory
    /// included) and exit: 0 valid, 2 not
    #[arg(long)]
    check_config: bool,
}

pub async fn run(a: AgentArgs) -> Result<i32, Error> {
    if a.check_config {
        return Ok(check_config(&a.config));
    }
    let (stop, reload) = match super::interrupt::agent_signals() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("zkparity: error: cannot install signal handlers: {e}");
            return Ok(EXIT_BAD_CONFIG);
        }
    };
    match zkparity::agent::run(&a.config, stop, reload).await {
        Ok(_) => Ok(EXIT_SUCCESS),
        Err(e) => {
            eprintln!("zkparity: error: {e}");
            Ok(EXIT_BAD_CONFIG)
        }
    }
}

/// Says what `--check-config` found: on stdout for a valid configuration,
/// on stderr what is wrong or missing.
fn check_config(file: &Path) -> i32 {
    match zkparity::agent::check_config(file) {
        Ok(c) => {
            println!(
                "config {}: valid; {} pair{}: {}",
                file.display(),
                c.pairs.len(),
                if c.pairs.len() == 1 { "" } else { "s" },
                c.pairs.join(", ")
            );
            if let Some(command_file) = c.missing_command_file {
                eprintln!(
                    "zkparity: note: nagios.command_file {} does not exist now: is Nagios \
                     running? Results are skipped until it does.",
                    command_file.display()
                );
            }
            EXIT_SUCCESS
        }
        Err(e) => {
            eprintln!("zkparity: error: {e}");
            EXIT_BAD_CONFIG
        }
    }
}
