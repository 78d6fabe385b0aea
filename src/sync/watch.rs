//! The sessions `sync` follows with: a persistent recursive watch on the
//! source (what to copy) and one on the target (someone else writing it).
//! Each turns its session's life into [`Change`]s in one bounded inbox
//! ([`super::inbox`]), read without pause: the client's own queue of
//! events has no bound.
//!
//! As in the agent's watches: events while disconnected are lost, so a
//! reconnect is reported as a gap (the source then gets a full pass);
//! zookeeper-client does not add persistent watches again after a
//! reconnect, so they are added again here; a session that ends is built
//! anew with a back-off. Servers before 3.6 have no persistent watches:
//! that is reported once and the side is left to full passes.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::connect::EnsembleSpec;

const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Which ensemble a change was seen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

/// What a watch session saw.
#[derive(Debug)]
pub enum Change {
    /// A node event under the followed path.
    Node {
        side: Side,
        path: String,
        event: zk::EventType,
        at: Instant,
    },
    /// The watch is registered (again): events flow from here on.
    Live { side: Side },
    /// The watch's session lost its server: nothing is seen until it is
    /// back (then a `Gap`).
    Down { side: Side, reason: String },
    /// Events may have been lost (a disconnection or a new session).
    Gap { side: Side, reason: String },
    /// The servers cannot watch recursively (before 3.6).
    Unsupported { side: Side },
}

/// Runs one side's watch until `stop` turns true.
pub async fn run(
    side: Side,
    spec: EnsembleSpec,
    root: String,
    out: super::inbox::Sender,
    mut stop: watch::Receiver<bool>,
) {
    let mut retry = RETRY_MIN;
    let mut first = true;
    loop {
        let ended = tokio::select! {
            e = session(side, &spec, &root, &out, first) => e,
            _ = crate::agent::stopped(&mut stop) => return,
        };
        first = false;
        match ended {
            Ended::Unsupported => {
                out.send(Change::Unsupported { side });
                return;
            }
            Ended::Lost { reason, was_live } => {
                if was_live {
                    retry = RETRY_MIN;
                }
                out.send(Change::Down { side, reason });
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = crate::agent::stopped(&mut stop) => return,
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
}

enum Ended {
    Unsupported,
    Lost { reason: String, was_live: bool },
}

async fn session(
    side: Side,
    spec: &EnsembleSpec,
    root: &str,
    out: &super::inbox::Sender,
    first: bool,
) -> Ended {
    let lost = |reason: String, was_live| Ended::Lost { reason, was_live };
    let client = match spec.connect().await {
        Ok(c) => c,
        Err(e) => return lost(e.to_string(), false),
    };
    let mode = zk::AddWatchMode::PersistentRecursive;
    let mut watcher = match client.watch(root, mode).await {
        Ok(w) => w,
        Err(zk::Error::Unimplemented) => return Ended::Unsupported,
        Err(e) => return lost(format!("adding the watch on {root}: {e}"), false),
    };
    if !first {
        // A new session: whatever happened since the last one is unseen.
        out.send(Change::Gap {
            side,
            reason: "a new watch session".into(),
        });
    }
    out.send(Change::Live { side });
    let mut disconnected = false;
    loop {
        let event = watcher.changed().await;
        if event.event_type != zk::EventType::Session {
            out.send(Change::Node {
                side,
                path: event.path.to_string(),
                event: event.event_type,
                at: Instant::now(),
            });
            continue;
        }
        match event.session_state {
            zk::SessionState::Disconnected => {
                disconnected = true;
                out.send(Change::Down {
                    side,
                    reason: "disconnected".into(),
                });
            }
            zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly
                if disconnected =>
            {
                disconnected = false;
                watcher = match client.watch(root, mode).await {
                    Ok(w) => w,
                    Err(e) => return lost(format!("adding the watch again: {e}"), true),
                };
                out.send(Change::Gap {
                    side,
                    reason: "was disconnected".into(),
                });
                out.send(Change::Live { side });
            }
            // Terminal: the watcher must not be polled again (it panics).
            state if state.is_terminated() => return lost(format!("session {state}"), true),
            _ => {}
        }
    }
}
