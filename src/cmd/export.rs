//! `zkparity export`: a subtree (live or from a snapshot) as zktreeutil XML.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use zkparity::error::Error;
use zkparity::source::Source;

use super::args::{ServerArgs, TreeArgs};
use super::interrupt::until_stopped;

pub const EXPORT_HELP: &str = "\
Examples:
  zkparity export --server zk-old:2181 --path /myapp > myapp.xml
  zkparity export --server before-cutover.zkps --out tree.xml

Writes zktreeutil's XML (<root> with nested <zknode name value>), children
in name order, so that zktreeutil --import/--diff/--update can use it.
Excluded paths (by default /zookeeper) are written with ignore=\"true\" so
that zktreeutil leaves them alone. Ephemerals are left out unless
--ephemerals compare. zktreeutil holds only text: a node with binary data
or control characters stops the export (exit 2) rather than being mangled;
--exclude it, or use a snapshot, which holds anything. With --out, the file
appears only once complete.

Exit codes: 0 written, 2 usage, connection, read or write error, 130
interrupted (Ctrl-C), 143 stopped by SIGTERM (nothing written).";

#[derive(Args)]
pub struct ExportArgs {
    /// --server: the ensemble, or a snapshot file
    #[command(flatten)]
    server: ServerArgs,
    /// Only zktreeutil's XML for now
    #[arg(long, value_enum, default_value = "zktreeutil")]
    format: ExportFormat,
    /// Write here instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    walk: TreeArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Zktreeutil,
}

pub async fn run(a: ExportArgs) -> Result<i32, Error> {
    let ExportFormat::Zktreeutil = a.format;
    let server = &a.server;
    let path = &a.walk.path;
    zkparity::connect::validate_path(path).map_err(|reason| Error::BadPath {
        path: path.clone(),
        reason,
    })?;
    let (walk, mut reader) = server.options(&a.walk.as_walk())?;
    reader.keep_data = true;
    reader.read_acls = false;
    let side = server.side("source")?;
    let source = Source::open(&side, &reader).await?;
    // What a file side left out is written as ignored, like any exclude.
    let walk = match Source::walk_options(&walk, path, &[&source], "export") {
        Ok(w) => w,
        Err(e) => {
            source.close().await;
            return Err(e);
        }
    };
    let written = match &a.out {
        Some(out) => {
            let mut temp = zkparity::durable::PendingFile::create(out, zkparity::durable::PRIVATE)
                .map_err(|e| Error::Io {
                    context: format!("writing {}", out.display()),
                    source: e,
                })?;
            let mut w = std::io::BufWriter::new(temp.as_file_mut());
            let r = until_stopped(
                zkparity::zktreeutil::export(&source, path, &walk, &mut w),
                "nothing written",
            )
            .await;
            let flushed = w.flush();
            drop(w);
            let io = |e: std::io::Error| Error::Io {
                context: format!("writing {}", out.display()),
                source: e,
            };
            // On any failure the temporary file is dropped, and with it
            // every byte written.
            match (r, flushed) {
                (Ok(s), Ok(())) => temp.commit().map_err(io).map(|_| s),
                (Err(e), _) => Err(e),
                (_, Err(e)) => Err(io(e)),
            }
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::new(stdout.lock());
            let r = until_stopped(
                zkparity::zktreeutil::export(&source, path, &walk, &mut w),
                "nothing written",
            )
            .await;
            let _ = w.flush();
            r
        }
    };
    source.close().await;
    let s = written?;
    eprintln!(
        "zkparity export: {} nodes written, {} ignored (excluded), {} ephemerals left out",
        s.nodes, s.ignored, s.skipped_ephemerals
    );
    if s.skipped_ephemerals > 0 {
        eprintln!(
            "zkparity export: note: zktreeutil --update deletes live nodes missing from the file; \
             mark the ephemerals' paths ignore=\"true\" (or --exclude them) before updating a target \
             whose sessions own nodes there"
        );
    }
    if s.largest_value >= 128 * 1024 {
        eprintln!(
            "zkparity export: note: values of up to {} bytes; zktreeutil itself reads at most 131071",
            s.largest_value
        );
    }
    Ok(0)
}
