//! Stopping a command cleanly on SIGINT (Ctrl-C) or SIGTERM: its work is
//! dropped (a temporary file it was writing goes, its progress line is
//! ended), and the error says so, with what the stop left behind.

use zkparity::error::{Error, StopSignal};

/// Runs `work` unless SIGINT or SIGTERM comes first; then `work` is dropped,
/// and with it any temporary file it was writing, so nothing is left, and
/// the error says `after` (what the stop left, what to do next).
pub async fn until_stopped<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
    after: &str,
) -> Result<T, Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::Io {
        context: "watching for SIGTERM".into(),
        source: e,
    })?;
    let stopped = |signal| Error::Stopped {
        signal,
        after: after.to_string(),
    };
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(stopped(StopSignal::Interrupt)),
        _ = term.recv() => Err(stopped(StopSignal::Terminate)),
    }
}
