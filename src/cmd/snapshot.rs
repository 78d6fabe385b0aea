//! `zkparity snapshot`: a lossless, checksummed snapshot file of a subtree.

use std::path::PathBuf;

use clap::Args;
use zkparity::capture::{take_snapshot, SnapshotOptions};
use zkparity::error::Error;
use zkparity::progress::Progress;

use super::args::{Format, ServerArgs, TreeArgs};
use super::interrupt::until_stopped;
use super::stdout::emit;

pub const SNAPSHOT_HELP: &str = "\
Examples:
  zkparity snapshot --server zk-old-1:2181,zk-old-2:2181 --out before-cutover.zkps
  zkparity snapshot --server old:2181 --path /kafka --out kafka.zkps.gz --compress
  zkparity compare --source before-cutover.zkps --target zk-new-1:2181

The file holds every node's data, ACL (digest ids in clear), kind and stat;
it is created mode 600 and appears under its name only once complete. The
format is documented in docs/snapshot.md. Credentials come from --auth-file
or ZKPARITY_SOURCE_AUTH.

An existing FILE is refused unless --force. A snapshot that could not read
every node (NoAuth), or got ACLs with digest ids hidden (no ADMIN), is not
written unless --allow-incomplete; the file then records what it lacks.

Exit codes: 0 written, 2 usage, connection or write error (nothing written),
3 incomplete: some nodes unreadable (nothing written without --allow-incomplete),
130 interrupted (Ctrl-C), 143 stopped by SIGTERM (nothing written).";

#[derive(Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    walk: TreeArgs,
    /// The snapshot file to write
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// gzip the file
    #[arg(long)]
    compress: bool,
    /// Replace FILE if it exists
    #[arg(long)]
    force: bool,
    /// Keep the snapshot even if some nodes could not be read (they are
    /// recorded as unreadable) or their ACLs' digest ids were hidden
    #[arg(long)]
    allow_incomplete: bool,
    /// Output format of the summary
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// No progress on stderr
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(a: SnapshotArgs) -> Result<i32, Error> {
    let (walk, reader) = a.server.options(&a.walk.as_walk())?;
    let side = a.server.side("source")?;
    let options = SnapshotOptions {
        path: a.walk.path.clone(),
        walk,
        reader,
        out: a.out.clone(),
        compress: a.compress,
        force: a.force,
        allow_incomplete: a.allow_incomplete,
    };
    let mut progress = Progress::auto(a.quiet);
    let s = until_stopped(
        take_snapshot(&side, &options, &mut progress),
        "nothing written",
    )
    .await?;
    if s.unreadable + s.acl_redacted > 0 {
        eprintln!(
            "zkparity snapshot: warning: {} is incomplete (--allow-incomplete): {} node(s) unreadable, {} ACL(s) with digest ids hidden",
            s.file, s.unreadable, s.acl_redacted
        );
    }
    emit(&match a.format {
        Format::Json => serde_json::to_string_pretty(&s).unwrap_or_default() + "\n",
        Format::Text => format!(
            "zkparity snapshot: {} written\n  {} records ({} nodes, {} ephemerals, {} unreadable, {} ACLs with hidden ids), {} data bytes, {} bytes on disk, {:.2}s\n  checksum {}  acl {}\n",
            s.file,
            s.records,
            s.nodes,
            s.ephemerals,
            s.unreadable,
            s.acl_redacted,
            s.bytes,
            s.file_bytes,
            s.elapsed_seconds,
            s.checksum,
            s.acl_fingerprint
        ),
    })?;
    Ok(0)
}
