//! The process's signals, in one place: SIGINT (Ctrl-C) and SIGTERM become
//! the stop each command is given, SIGHUP the agent's reload. The library
//! installs no handler of its own; what a stop means is the command's.
//!
//! - [`until_stopped`]: one-shot commands, whose work is dropped on a stop.
//! - [`first_stops`]: sync, asked to stop by the first signal and ended by a
//!   second.
//! - [`agent_signals`]: the agent, stopped by SIGINT or SIGTERM and reloaded
//!   by SIGHUP.

use std::future::Future;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use zkparity::error::{Error, StopSignal};

fn listen(kind: SignalKind, name: &str) -> Result<Signal, Error> {
    signal(kind).map_err(|e| Error::Io {
        context: format!("watching for {name}"),
        source: e,
    })
}

/// The next SIGINT or SIGTERM.
async fn next_stop(term: &mut Signal) -> StopSignal {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => StopSignal::Interrupt,
        _ = term.recv() => StopSignal::Terminate,
    }
}

/// Runs `work` unless SIGINT or SIGTERM comes first; then `work` is dropped,
/// and with it any temporary file it was writing, so nothing is left, and
/// the error says `after` (what the stop left, what to do next).
pub async fn until_stopped<T>(
    work: impl Future<Output = Result<T, Error>>,
    after: &str,
) -> Result<T, Error> {
    let mut term = listen(SignalKind::terminate(), "SIGTERM")?;
    tokio::select! {
        r = work => r,
        signal = next_stop(&mut term) => Err(Error::Stopped {
            signal,
            after: after.to_string(),
        }),
    }
}

/// The first SIGINT or SIGTERM is sent on the returned channel, for the
/// command to stop at its own pace; a second one calls `second`, which is
/// expected to end the process. Without a SIGTERM handler the channel is
/// closed at once and signals keep their default action. The task ends
/// with the command: abort it when the command is done.
pub fn first_stops(
    second: impl FnOnce(StopSignal) + Send + 'static,
) -> (watch::Receiver<Option<StopSignal>>, JoinHandle<()>) {
    let (stop_tx, stop_rx) = watch::channel(None);
    let task = tokio::spawn(async move {
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        let first = next_stop(&mut term).await;
        let _ = stop_tx.send(Some(first));
        second(next_stop(&mut term).await);
    });
    (stop_rx, task)
}

/// The agent's signals, installed before its configuration is read so that
/// a signal while it starts is a stop rather than the end of the process:
/// a future that resolves on the first SIGINT or SIGTERM, and one message
/// per SIGHUP (several arriving before a reload is taken count once).
pub fn agent_signals(
) -> Result<(impl Future<Output = StopSignal>, mpsc::Receiver<()>), std::io::Error> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let (reload_tx, reload) = mpsc::channel(1);
    tokio::spawn(async move {
        let signal = loop {
            tokio::select! {
                _ = term.recv() => break StopSignal::Terminate,
                _ = int.recv() => break StopSignal::Interrupt,
                _ = hup.recv() => {
                    let _ = reload_tx.try_send(());
                }
            }
        };
        let _ = stop_tx.send(signal);
    });
    let stop = async move {
        match stop_rx.await {
            Ok(signal) => signal,
            // The listener is gone with the runtime: nothing is left to
            // stop for.
            Err(_) => std::future::pending().await,
        }
    };
    Ok((stop, reload))
}
