//! zkparity walks a source and a target ZooKeeper ensemble, digests every
//! znode, and says exactly where the two differ.
//!
//! A map of the modules, in the order data flows through them:
//!
//! - [`connect`]: connect strings (`h1:2181,h2:2181/chroot`), digest credentials
//!   from a file or the environment, and building sessions.
//! - [`spec`]: an ensemble's spec built step by step, for the command line and the agent.
//! - `bounded`: input files read whole (JAAS, credentials, the agent's
//!   config), refused past a size bound before they are read.
//! - [`jaas`]: the operator's JAAS login configuration, read for its
//!   client section; [`sasl`]: the SASL login it describes (DIGEST-MD5 or
//!   Kerberos), made once per process for Kerberos.
//! - `identity`: whether a source and a target are one ensemble, told by
//!   the servers (shared addresses, a session known to both).
//! - [`tree`]: the tree core: node types, the one reading trait every side
//!   is read through, the live reader (pipelined, bounded batches:
//!   multi-reads of data and children, getACL spread over sessions, an
//!   optional reads-per-second cap), the walk engine with its visitor and
//!   observer, and znode path helpers.
//! - [`source`]: what a side is: a live ensemble, a snapshot file or a
//!   zktreeutil file, opened from the command line's spec and read the same
//!   way by the walk.
//! - [`placement`]: which servers serve a side's reads (`--source-read-from`):
//!   roles from `srvr`, sessions pinned to chosen servers round-robin.
//! - `ratelimit`: the token bucket behind that cap.
//! - [`throttle`]: the latency limit: an AIMD window of reads on the wire
//!   that shrinks when the ensemble answers slowly.
//! - [`aclcache`]: ACLs remembered across walks, so repeated rounds skip
//!   getACL for nodes whose ACL cannot have changed.
//! - [`digest`]: the versioned per-node digest, ACL fingerprint and per-subtree
//!   Merkle checksum (spec: `docs/digest.md`).
//! - [`compare`]: drives the walk over both sides at once, classifies
//!   differences, and re-checks them so only what persists is confirmed.
//! - [`show`]: one znode on both sides, and how its values differ (JSON
//!   paths, a line diff, a hex view).
//! - [`exclude`]: `--exclude` glob patterns.
//! - [`duration`]: durations as written on a command line (`500ms`, `3s`).
//! - [`snapshot`]: lossless, checksummed snapshot files: their records, and
//!   reading one as a side (format: `docs/snapshot.md`).
//! - [`capture`]: taking a snapshot of a side, written as the walk reads it.
//! - [`zktreeutil`]: zktreeutil's XML, read as a side and written by export.
//! - [`datadir`]: a ZooKeeper server's own files (its data directory or a
//!   `snapshot.<zxid>`) read as a side: the newest valid snapshot and the
//!   logs replayed after it, to a chosen zxid (formats: `docs/datadir.md`).
//! - `unpack`: how far a gzip or snappy file may unpack, by its size.
//! - [`durable`]: files that appear under their name only once complete
//!   (snapshots, exports, plans, state files).
//! - [`report`]: the comparison result model and its text and JSON renderings.
//! - [`repair`]: `zkparity repair`: plans the writes that make the target
//!   match the source (a live ensemble or a snapshot), applies them with
//!   `--apply` (batched, retried, resumable) and verifies with a compare.
//!   Before the first write of repair and sync: what is refused as a likely
//!   mistake, the backup snapshot of the target, the one-writer lock.
//! - `follow`: one watch followed across reconnects; the one back-off.
//! - [`sync`]: `zkparity sync`: the full copy, then following the source's
//!   changes (persistent recursive watches) into the target until cutover,
//!   then the final compare; writes by others on the target are conflicts.
//!   Its outputs publish the lag every second and the verdict at exit; the
//!   source's ephemerals, as last seen, are kept for `check ephemerals`.
//! - [`registrations`]: applications' ephemeral registrations (Kafka
//!   brokers, HBase servers, Solr live nodes, elections and locks, ...) and
//!   when one on another ensemble is the same registration: one table.
//! - [`nagios`]: the Nagios/Icinga checks: threshold ranges, plugin output
//!   and perfdata, `parity`, `znode`, `health`, `counts`, `ephemerals`.
//! - [`gmetric`]: Ganglia metrics over gmetric UDP (XDR) straight to gmond.
//! - [`prometheus`]: the agent's `/metrics` endpoint and comparisons'
//!   node_exporter textfiles.
//! - [`probe`]: ensemble health from the four-letter words (modes, leader,
//!   sync, zxids, counts) and the znode-count parity between two ensembles.
//! - [`progress`]: progress lines on stderr while walking, an observer of the
//!   walk.
//! - `stop`: how long-running tasks are told to stop (the agent's, sync's).
//! - [`agent`]: `zkparity agent`, the long-running comparer: config, rounds,
//!   confirmation across rounds, state files and passive Nagios results.
//! - [`error`]: typed errors and the exit codes they map to.
//!
//! The command line is the binary's: `src/main.rs` parses and maps errors
//! to exit codes, and `src/cmd/` holds one file per command (its arguments,
//! help and `run`). The local ZooKeeper servers that the demo, the tests and
//! the benchmark start are the `zkparity-sandbox` crate (`crates/sandbox/`),
//! which no code of this library uses.

pub mod aclcache;
pub mod agent;
mod bounded;
pub mod capture;
pub mod compare;
pub mod connect;
pub mod datadir;
pub mod digest;
pub mod durable;
pub mod duration;
pub mod error;
pub mod exclude;
mod follow;
pub mod gmetric;
mod identity;
pub mod jaas;
pub mod nagios;
pub mod placement;
pub mod probe;
pub mod progress;
pub mod prometheus;
mod ratelimit;
pub mod registrations;
pub mod repair;
pub mod report;
pub mod sasl;
pub mod show;
pub mod snapshot;
pub mod source;
pub mod spec;
mod stop;
pub mod sync;
pub mod throttle;
pub mod tree;
mod unpack;
pub mod zktreeutil;
