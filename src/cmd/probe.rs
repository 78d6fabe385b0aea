//! `zkparity probe`: every server's health from the four-letter words.

use std::time::Duration;

use clap::Args;
use zkparity::connect::ConnectString;
use zkparity::error::Error;
use zkparity::probe;

use super::args::{AdminArgs, Format};
use super::stdout::emit;
use super::values::DURATION;

pub const PROBE_HELP: &str = "\
Examples:
  zkparity probe --source zk-old-1:2181,zk-old-2:2181,zk-old-3:2181
  zkparity probe --source old-1:2181,old-2:2181 --target new-1:2181 --format json

Sends srvr, mntr, isro, ruok, conf, wchs and envi to each server (never srst or
crst). Only srvr is whitelisted by default: what a server refuses is asked of
its AdminServer (HTTP JSON, port 8080 unless --source-admin-port/
--target-admin-port say otherwise); --probe-via 4lw never does, --probe-via
admin asks the AdminServer only. What neither way told is listed as not
checked. JSON schema: docs/probe-json.md.

Exit codes: 0 every ensemble healthy (and, with --target, the persistent znode
counts equal or unknown), 1 something unhealthy (a server down included) or the
counts differ, 2 usage error such as a malformed connect string.";

#[derive(Args)]
pub struct ProbeArgs {
    /// Source ensemble: host:port[,host:port...] (a chroot is ignored)
    #[arg(long, value_name = "CONNECT")]
    source: String,
    /// Target ensemble, probed at the same time; adds the znode-count delta
    #[arg(long, value_name = "CONNECT")]
    target: Option<String>,
    /// Per word and server: connect, send, and read until the server closes
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = DURATION)]
    timeout: Duration,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    admin: AdminArgs,
}

pub async fn run(a: ProbeArgs) -> Result<i32, Error> {
    let source = ConnectString::parse(&a.source)?;
    let target = a.target.as_deref().map(ConnectString::parse).transpose()?;
    let timeout = a.timeout;
    if timeout.is_zero() {
        return Err(Error::Usage("--timeout must be more than 0".into()));
    }
    let mut options = probe::ProbeOptions {
        timeout,
        ..probe::ProbeOptions::default()
    };
    let servers = [
        source.hosts.len(),
        target.as_ref().map_or(0, |t| t.hosts.len()),
    ];
    a.admin.apply(&mut options, servers).map_err(Error::Usage)?;
    let report = probe::probe(&source, target.as_ref(), &options).await;
    emit(&match a.format {
        Format::Text => probe::render::text(&report),
        Format::Json => probe::render::json(&report) + "\n",
    })?;
    Ok(report.exit_code())
}
