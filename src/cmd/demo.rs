//! `zkparity demo`: two local servers, the sample "migration" between them
//! that went wrong in the ways copy tools are known to go wrong (see
//! [`zkparity_sandbox::sample`]), and a comparison.

use std::time::Duration;

use zkparity::compare::{compare, CompareOptions};
use zkparity::connect::{ConnectString, EnsembleSpec};
use zkparity::error::{Error, Result};
use zkparity::exclude::{Excludes, DEFAULT_EXCLUDES};
use zkparity::progress::Progress;
use zkparity::report::CompareReport;
use zkparity::walker::{EphemeralPolicy, ReaderOptions, WalkOptions};
use zkparity_sandbox::seed::SeedError;
use zkparity_sandbox::{sample, ServerOptions, ZkServer};

fn seed_error(e: SeedError) -> Error {
    Error::Usage(format!("demo: {e}"))
}

async fn start_pair() -> Result<(ZkServer, ZkServer)> {
    let start =
        || tokio::task::spawn_blocking(|| ZkServer::start_standalone(&ServerOptions::default()));
    let (a, b) = futures::join!(start(), start());
    let join = |r: std::result::Result<_, tokio::task::JoinError>| {
        r.map_err(|e| Error::Usage(format!("demo: {e}")))
    };
    let a = join(a)?.map_err(|e| Error::Usage(format!("demo: {e}")))?;
    let b = join(b)?.map_err(|e| Error::Usage(format!("demo: {e}")))?;
    Ok((a, b))
}

fn spec(side: &str, server: &ZkServer) -> Result<EnsembleSpec> {
    Ok(EnsembleSpec {
        side: side.to_string(),
        connect: ConnectString::parse(&server.connect_string())?,
        credentials: None,
        tls: None,
        session_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(10),
    })
}

/// Runs the whole demo and returns the comparison's report.
pub async fn run(progress: &mut Progress) -> Result<CompareReport> {
    progress.message("starting two local ZooKeeper servers ...");
    let (source_server, target_server) = start_pair().await?;
    let source = spec("source", &source_server)?;
    let target = spec("target", &target_server)?;
    // The source's session must outlive the comparison: it owns the brokers'
    // ephemeral nodes.
    let source_writer = source.connect().await?;
    let target_writer = target.connect().await?;
    progress.message("loading the sample migration ...");
    sample::load(&source_writer, &target_writer)
        .await
        .map_err(seed_error)?;
    drop(target_writer);

    let options = CompareOptions {
        path: "/".into(),
        walk: WalkOptions::new(EphemeralPolicy::Count, Excludes::new(DEFAULT_EXCLUDES)?),
        reader: ReaderOptions::default(),
        subtree_depth: 1,
        recheck_delay: Some(Duration::from_secs(1)),
        limit: 50,
        show_acl_ids: false,
        acl_caches: [None, None],
    };
    let report = compare(&source, &target, &options, progress).await;
    drop(source_writer);
    drop((source_server, target_server));
    report
}
