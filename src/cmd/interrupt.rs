//! Stopping a command that writes a file cleanly on SIGINT or SIGTERM.

use zkparity::error::{Error, StopSignal};

/// Runs `work` unless SIGINT or SIGTERM comes first; then `work` is dropped,
/// and with it any temporary file it was writing, so nothing is left.
pub async fn until_stopped<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::Io {
        context: "watching for SIGTERM".into(),
        source: e,
    })?;
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(Error::Stopped { signal: StopSignal::Interrupt }),
        _ = term.recv() => Err(Error::Stopped { signal: StopSignal::Terminate }),
    }
}
