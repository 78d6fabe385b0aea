//! Following one ensemble's subtree with a persistent recursive watch, for
//! as long as it is wanted: the one session loop the agent's watches and
//! sync's both run. What is done with what the watch sees is a [`Sink`]'s:
//! the agent's changed paths, sync's inbox.
//!
//! What a watch cannot see, and how the loop keeps it honest:
//!
//! - Events while disconnected are lost (ZOOKEEPER-4698): the sink hears of
//!   the disconnection, and of the watch coming back
//!   ([`Registered::Reconnected`]), and judges the gap.
//! - zookeeper-client 0.11 does not add persistent watches again after a
//!   reconnect: the watch would go silent. So after every reconnect the
//!   watch is added again on the same session.
//! - An expired or closed session is dead for good: a new one is built after
//!   a [`Backoff`] ([`Registered::NewSession`]), which starts again from its
//!   first wait once a session had its watch in place.
//! - Servers before 3.6 have no persistent watches: the sink is told once,
//!   and the loop ends.
//!
//! Nothing here writes: adding a watch is a read-side request.

pub(crate) mod backoff;

pub(crate) use backoff::Backoff;

use tokio::sync::watch;
use zookeeper_client as zk;

use crate::connect::EnsembleSpec;
use crate::stop::stopped;

/// How a watch came to be in place, which says what may have gone unseen
/// before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Registered {
    /// The first session's: nothing was watched before.
    First,
    /// A later session's: whatever happened since the last one is unseen.
    NewSession,
    /// Added again on the same session after a reconnect: what happened
    /// while disconnected is unseen.
    Reconnected,
}

/// What a follower does with a watch's life, told as it happens.
pub(crate) trait Sink {
    /// The watch is in place: events flow from here on.
    fn live(&mut self, how: Registered);
    /// A node event under the followed path.
    fn event(&mut self, path: &str, event: zk::EventType);
    /// The session lost its server: events are lost until it is back.
    fn disconnected(&mut self);
    /// The session is gone or could not be built; another is tried after
    /// the back-off. `was_live` says whether this one had its watch in place.
    fn lost(&mut self, reason: String, was_live: bool);
    /// The servers cannot watch recursively (before 3.6): following ends.
    fn unsupported(&mut self);
}

/// Why a watch session ended.
enum Ended {
    /// The servers cannot do persistent watches.
    Unsupported,
    /// The session is gone or could not be built; another will be tried.
    Lost { reason: String, was_live: bool },
}

/// Follows `root` on `spec` until `stop` turns true (or its sender goes),
/// one session after another, waiting `backoff` between them.
pub(crate) async fn follow<S: Sink>(
    spec: &EnsembleSpec,
    root: &str,
    mut backoff: Backoff,
    sink: &mut S,
    mut stop: watch::Receiver<bool>,
) {
    let mut how = Registered::First;
    loop {
        let ended = tokio::select! {
            e = session(spec, root, how, sink) => e,
            _ = stopped(&mut stop) => return,
        };
        how = Registered::NewSession;
        match ended {
            Ended::Unsupported => {
                sink.unsupported();
                return;
            }
            Ended::Lost { reason, was_live } => {
                if was_live {
                    backoff.reset();
                }
                sink.lost(reason, was_live);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_wait()) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

/// One session's life: connect, watch, hand on events until it ends.
async fn session<S: Sink>(spec: &EnsembleSpec, root: &str, how: Registered, sink: &mut S) -> Ended {
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
    sink.live(how);
    let mut disconnected = false;
    loop {
        let event = watcher.changed().await;
        if event.event_type != zk::EventType::Session {
            sink.event(&event.path, event.event_type);
            continue;
        }
        match event.session_state {
            zk::SessionState::Disconnected => {
                disconnected = true;
                sink.disconnected();
            }
            zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly
                if disconnected =>
            {
                disconnected = false;
                // zookeeper-client does not send persistent watches again
                // after a reconnect: without this the watch is silently gone.
                // The new handle shares the client-side watch; the old one is
                // dropped without removing it on the server.
                watcher = match client.watch(root, mode).await {
                    Ok(w) => w,
                    Err(e) => return lost(format!("adding the watch again: {e}"), true),
                };
                sink.live(Registered::Reconnected);
            }
            // Terminal: the watcher must not be polled again (it panics).
            state if state.is_terminated() => return lost(format!("session {state}"), true),
            _ => {}
        }
    }
}
