//! `zkparity demo`: two local servers, the sample "migration" between them
//! that went wrong in the ways copy tools are known to go wrong (see
//! [`zkparity_sandbox::sample`]), and a comparison.

use std::time::Duration;

use clap::Args;
use zkparity::compare::{compare, CompareOptions};
use zkparity::connect::EnsembleSpec;
use zkparity::error::{Error, Result};
use zkparity::progress::Progress;
use zkparity::report::CompareReport;
use zkparity_sandbox::{sample, ServerOptions, ZkServer};

use super::args::Format;
use super::compare::render;
use super::stdout::emit;

#[derive(Args)]
pub struct DemoArgs {
    /// Output format of the comparison
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub async fn run(a: DemoArgs) -> Result<i32> {
    let mut progress = Progress::auto(false);
    let report = compare_sample(&mut progress).await?;
    emit(&render(&report, a.format))?;
    Ok(report.exit_code())
}

fn local_server_error(e: impl std::fmt::Display) -> Error {
    Error::LocalServer {
        reason: e.to_string(),
    }
}

async fn start_pair() -> Result<(ZkServer, ZkServer)> {
    let start =
        || tokio::task::spawn_blocking(|| ZkServer::start_standalone(&ServerOptions::default()));
    let (a, b) = futures::join!(start(), start());
    let join = |r: std::result::Result<_, tokio::task::JoinError>| {
        r.map_err(|source| Error::TaskFailed {
            task: "demo".into(),
            source,
        })
    };
    let a = join(a)?.map_err(local_server_error)?;
    let b = join(b)?.map_err(local_server_error)?;
    Ok((a, b))
}

/// Starts the servers, loads the sample and compares the two sides.
async fn compare_sample(progress: &mut Progress) -> Result<CompareReport> {
    progress.message("starting two local ZooKeeper servers ...");
    let (source_server, target_server) = start_pair().await?;
    let source = EnsembleSpec::plain("source", &source_server.connect_string())?;
    let target = EnsembleSpec::plain("target", &target_server.connect_string())?;
    // The source's session must outlive the comparison: it owns the brokers'
    // ephemeral nodes.
    let source_writer = source.connect().await?;
    let target_writer = target.connect().await?;
    progress.message("loading the sample migration ...");
    sample::load(&source_writer, &target_writer)
        .await
        .map_err(local_server_error)?;
    drop(target_writer);

    let mut options = CompareOptions::defaults("/")?;
    options.recheck_delay = Some(Duration::from_secs(1));
    let report = compare(&source, &target, &options, progress).await;
    drop(source_writer);
    drop((source_server, target_server));
    report
}
