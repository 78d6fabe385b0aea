//! `zkparity agent`: the long-running comparer.

use std::path::PathBuf;

use clap::Args;
use zkparity::error::Error;

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
        return Ok(zkparity::agent::check_config(&a.config));
    }
    Ok(zkparity::agent::run(&a.config).await)
}
