//! The watches `sync` follows with: a persistent recursive watch on the
//! source (what to copy) and one on the target (someone else writing it).
//! Each side's [`crate::follow`] loop turns its watch's life into
//! [`Change`]s in one bounded inbox ([`super::inbox`]), read without pause:
//! the client's own queue of events has no bound.
//!
//! Events while disconnected are lost, so a reconnect or a new session is
//! reported as a gap (the source then gets a full pass). Servers before 3.6
//! have no persistent watches: that is reported once and the side is left
//! to full passes.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use zookeeper_client as zk;

use crate::connect::EnsembleSpec;
use crate::follow::{self, Backoff, Registered};

/// Back-off between attempts to (re)build a watch session.
const RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));

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
    stop: watch::Receiver<bool>,
) {
    follow::follow(&spec, &root, RETRY, &mut Inbox { side, out }, stop).await
}

/// One side's watch, as changes in the inbox.
struct Inbox {
    side: Side,
    out: super::inbox::Sender,
}

impl follow::Sink for Inbox {
    fn live(&mut self, how: Registered) {
        let side = self.side;
        let gap = match how {
            Registered::First => None,
            Registered::NewSession => Some("a new watch session"),
            Registered::Reconnected => Some("was disconnected"),
        };
        if let Some(reason) = gap {
            self.out.send(Change::Gap {
                side,
                reason: reason.into(),
            });
        }
        self.out.send(Change::Live { side });
    }

    fn event(&mut self, path: &str, event: zk::EventType) {
        self.out.send(Change::Node {
            side: self.side,
            path: path.to_string(),
            event,
            at: Instant::now(),
        });
    }

    fn disconnected(&mut self) {
        self.lost("disconnected".into(), true);
    }

    fn lost(&mut self, reason: String, _was_live: bool) {
        self.out.send(Change::Down {
            side: self.side,
            reason,
        });
    }

    fn unsupported(&mut self) {
        self.out.send(Change::Unsupported { side: self.side });
    }
}
