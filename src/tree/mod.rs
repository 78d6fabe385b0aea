//! The tree core: reading a subtree of one or two sides and walking it.
//!
//! - [`node`]: what a side knows of one node ([`SideNode`], [`NodeRead`]),
//!   a finished subtree's counts and checksums ([`SubtreeSummary`]), and
//!   the [`EphemeralPolicy`].
//! - [`read`]: [`ReadNodes`], the one trait every side is read through (a
//!   batch of paths at a time), and the [`ReaderOptions`].
//! - [`live`]: the live [`Reader`] over zookeeper-client: pipelined
//!   multi-reads, getACL spread over sessions, retries, the rate and latency
//!   limits, the ACL cache. The file sides implement [`ReadNodes`] where
//!   their formats live ([`crate::snapshot`], [`crate::zktreeutil`]);
//!   [`crate::source`] opens whichever a side is.
//! - [`walk`](mod@walk): the walk engine, the [`Visitor`] that does
//!   something with each node and finished subtree, and the [`Observer`]
//!   that watches it go by.
//! - [`path`]: znode path helpers (`within`, `parent`, `name_of`,
//!   `child_path`).
//! - `sequence`: sequential znodes: which names carry the counter, and the
//!   number a parent gives its next sequential child.

mod live;
mod node;
pub mod path;
mod read;
pub(crate) mod sequence;
mod walk;

pub use live::Reader;
pub use node::{EphemeralPolicy, NodeRead, SideNode, SubtreeSummary};
pub use read::{bounds, ReadNodes, ReaderOptions};
pub use walk::{walk, Observer, Tag, Visit, Visitor, WalkOptions};
