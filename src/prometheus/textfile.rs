//! Pair metrics as a file for node_exporter's textfile collector, for
//! comparisons that cron or a systemd timer runs.
//!
//! The collector reads every `*.prom` file in its directory at each scrape,
//! so the file is replaced atomically ([`crate::durable`]): a scrape sees
//! the previous run's metrics or this one's, never half a file.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::durable;
use crate::nagios::output::State;
use crate::report::CompareReport;

use super::exposition::{Exposition, Format};
use super::pair::{write_view, PairView};

/// Why the textfile could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing Prometheus textfile {}: {source}", path.display())]
pub struct TextfileError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The file's content for one comparison (`outcome` `Err` when it could not
/// compare), judged `status`.
pub fn render(
    pair: &str,
    status: State,
    outcome: Result<&CompareReport, ()>,
    ended: SystemTime,
    seconds: f64,
) -> String {
    let mut e = Exposition::new();
    write_view(
        &mut e,
        &PairView::of_comparison(pair, status, outcome, ended, seconds),
    );
    e.render(Format::Text)
}

/// Writes `text` to `path` atomically, readable by the collector (0644).
pub fn write(path: &Path, text: &str) -> Result<(), TextfileError> {
    durable::write(path, text.as_bytes(), 0o644).map_err(|source| TextfileError {
        path: path.to_path_buf(),
        source,
    })
}
