//! Progress lines on stderr while a long walk runs, only when stderr is a
//! terminal: scripts and monitoring capture stderr and want no noise there.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::tree::Observer;

pub struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    drawn: bool,
}

const EVERY: Duration = Duration::from_millis(250);

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            started: now,
            // Draw on the first update: a short walk still shows a line.
            last: now.checked_sub(EVERY).unwrap_or(now),
            drawn: false,
        }
    }

    /// Watches a walk: its nodes, and the differences `differences` reads
    /// off its visitor (what the visitor counts as one is its own affair).
    pub(crate) fn lines<V>(&mut self, differences: fn(&V) -> u64) -> WalkLines<'_, V> {
        WalkLines {
            progress: self,
            differences,
        }
    }

    /// Enabled when stderr is a terminal and not silenced.
    pub fn auto(quiet: bool) -> Progress {
        Progress::new(!quiet && std::io::stderr().is_terminal())
    }

    pub(crate) fn update(&mut self, nodes: u64, differences: u64) {
        if !self.enabled || self.last.elapsed() < EVERY {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\rwalked {nodes} nodes ({:.0}/s), {differences} differences so far ",
            nodes as f64 / secs
        );
        let _ = err.flush();
        self.drawn = true;
    }

    pub fn message(&mut self, text: &str) {
        if self.enabled {
            self.clear();
            eprintln!("{text}");
        }
    }

    pub(crate) fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Progress lines for one walk (see [`Progress::lines`]); the line is
/// cleared when the walk is done.
pub(crate) struct WalkLines<'p, V> {
    progress: &'p mut Progress,
    differences: fn(&V) -> u64,
}

impl<V> Observer<V> for WalkLines<'_, V> {
    fn batch_done(&mut self, nodes: u64, visitor: &V) {
        self.progress.update(nodes, (self.differences)(visitor));
    }

    fn walk_done(&mut self) {
        self.progress.clear();
    }
}
