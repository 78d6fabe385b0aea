//! The one way a side is read: [`ReadNodes`], a batch of paths at a time.
//! The live reader ([`super::live::Reader`]) and the file sources (snapshot,
//! zktreeutil) implement it; the walk engine, the re-check and export read
//! through it and do not know which side they have.

use std::future::Future;
use std::time::Duration;

use super::node::SideNode;
use crate::error::Result;

/// Reads nodes of one side.
pub trait ReadNodes {
    /// Reads `paths` (absolute, below any chroot); `names[i]` is the name
    /// the digest of `paths[i]` is taken under. Answers one [`SideNode`] per
    /// path, in order: a node that is not there is [`SideNode::Absent`], one
    /// that cannot be read [`SideNode::Unreadable`]; `Err` is for a failure
    /// of the side itself.
    fn read_nodes(
        &self,
        paths: &[&str],
        names: &[&str],
    ) -> impl Future<Output = Result<Vec<SideNode>>> + Send;
}

/// Upper bounds on how hard one zkparity leans on an ensemble, whatever
/// the flags or the agent's configuration say: past them an operator's
/// typo (`--sessions 1000`: two thousand session transactions) would cost
/// production more than any walk gains.
pub mod bounds {
    /// Sessions per ensemble (each is a create and a close transaction).
    pub const MAX_SESSIONS: usize = 16;
    /// Nodes per multi-read (two reads each), well inside the server's
    /// 1 MiB request limit.
    pub const MAX_BATCH_SIZE: usize = 1000;
    /// Batches (or multi-writes) on the wire per ensemble.
    pub const MAX_IN_FLIGHT: usize = 64;
    /// Actions per multi-write of `repair`.
    pub const MAX_WRITE_BATCH_SIZE: usize = 1000;

    /// `Err` with the reason unless `1 <= n <= max`.
    pub fn check(name: &str, n: usize, max: usize) -> Result<(), String> {
        if (1..=max).contains(&n) {
            Ok(())
        } else {
            Err(format!(
                "{name} {n}: must be between 1 and {max} (more would load the ensemble for little gain)"
            ))
        }
    }
}

/// How a side is read. A file side heeds `keep_data` and `read_acls`
/// only; the rest is how a [`super::live::Reader`] talks to its ensemble.
#[derive(Clone, Debug)]
pub struct ReaderOptions {
    /// Sessions to spread reads over.
    pub sessions: usize,
    /// 0 for no cap.
    pub max_reads_per_second: u32,
    /// Use multi-reads (ZooKeeper 3.6+); falls back by itself when the server
    /// does not know them.
    pub multi_read: bool,
    /// Attempts per batch on connection loss before giving up.
    pub attempts: u32,
    /// Keep every node's data bytes in [`super::NodeRead::data`].
    pub keep_data: bool,
    /// Read ACLs; when off, no getACL is sent and ACLs are left out of
    /// digests (for comparing with a side that has none).
    pub read_acls: bool,
    /// Back off when a round trip takes longer (see [`crate::throttle`]).
    pub max_latency: Option<Duration>,
    /// Tell container and TTL nodes from persistent ones where the side
    /// can (a data directory); set only when every side of a comparison
    /// can, since a live server reports them as persistent.
    pub extended_kinds: bool,
    /// Which servers each side's sessions are pinned to (see
    /// [`crate::placement`]); a file side has none.
    pub read_from: crate::placement::ReadPlacement,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            sessions: 8,
            max_reads_per_second: 0,
            multi_read: true,
            attempts: 5,
            keep_data: false,
            read_acls: true,
            max_latency: None,
            extended_kinds: false,
            read_from: crate::placement::ReadPlacement::default(),
        }
    }
}
