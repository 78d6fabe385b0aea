//! Reads a subtree of one or two ensembles fast, with bounded memory.
//!
//! Two parts:
//!
//! - [`Reader`] reads batches of nodes from one ensemble: one multi-read per
//!   batch (getData + getChildren for every node, so data, stat and child names
//!   come from the same server state) and a getACL per node spread over several
//!   sessions, because ACL reads are not part of multi-read and one session
//!   serialises them. Older servers get pipelined single reads instead.
//!   Connection-level failures are retried; a node that vanished is an answer
//!   (absent), not an error.
//! - [`walk`] drives the traversal over the union of both trees. Pending work
//!   is a stack, so the walk goes depth first and only the frontier is held in
//!   memory, yet up to `in_flight` batches are on the wire at any time. Each
//!   finished subtree hands its counts and Merkle checksums to its parent;
//!   children are folded in name order, however they complete.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use zookeeper_client as zk;

use crate::aclcache::{AclCache, AclValue};
use crate::connect::EnsembleSpec;
use crate::digest::{self, AclEntry, Hash, NodeKind, SubtreeHasher};
use crate::error::{Error, Result};
use crate::exclude::Excludes;
use crate::progress::Progress;
use crate::ratelimit::RateLimiter;
use crate::source::Source;
use crate::throttle::{self, Flight, Throttle};

/// What to do with ephemeral nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EphemeralPolicy {
    /// Leave them out entirely: not counted, not compared.
    Skip,
    /// Count them per side, but neither compare them nor include them in
    /// checksums: live sessions differ between ensembles by nature.
    Count,
    /// Treat them like any other node.
    Compare,
}

impl EphemeralPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            EphemeralPolicy::Skip => "skip",
            EphemeralPolicy::Count => "count",
            EphemeralPolicy::Compare => "compare",
        }
    }
}

/// What one side knows of one node.
#[derive(Debug)]
pub enum SideNode {
    /// Not there (never listed on this side, or gone before it was read).
    Absent,
    Present(Box<NodeRead>),
    /// Listed but not readable: NoAuth or another per-node error.
    Unreadable(String),
}

impl SideNode {
    pub fn present(&self) -> Option<&NodeRead> {
        match self {
            SideNode::Present(n) => Some(n),
            _ => None,
        }
    }
}

/// One node as read, with its data reduced to length and SHA-256.
#[derive(Debug)]
pub struct NodeRead {
    /// `None` where the side has no stat (a zktreeutil file).
    pub stat: Option<zk::Stat>,
    pub kind: NodeKind,
    pub data_len: u64,
    pub data_sha256: Hash,
    /// The bytes themselves, only when asked for ([`ReaderOptions::keep_data`]):
    /// snapshots and repairs need them, comparisons do not.
    pub data: Option<Vec<u8>>,
    /// Sorted bytewise.
    pub children: Vec<String>,
    /// In normal form (sorted); `None` where ACLs are not read (a side that
    /// holds none, such as a zktreeutil file, leaves them out on both sides).
    pub acl: Option<Vec<AclEntry>>,
    /// Of the empty list when `acl` is `None`, so both sides agree.
    pub acl_fingerprint: Hash,
    /// The node digest (name, kind, data, ACL).
    pub digest: Hash,
}

impl NodeRead {
    /// Builds a node from its parts; `name` is what its digest is taken under.
    pub fn new(
        name: &str,
        kind: NodeKind,
        data: Vec<u8>,
        keep_data: bool,
        stat: Option<zk::Stat>,
        acl: Option<Vec<AclEntry>>,
        mut children: Vec<String>,
    ) -> NodeRead {
        children.sort_unstable();
        let acl_fingerprint = digest::acl_fingerprint(acl.as_deref().unwrap_or(&[]));
        NodeRead::from_parts(
            name,
            kind,
            data,
            keep_data,
            stat,
            acl,
            acl_fingerprint,
            children,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        name: &str,
        kind: NodeKind,
        data: Vec<u8>,
        keep_data: bool,
        stat: Option<zk::Stat>,
        acl: Option<Vec<AclEntry>>,
        acl_fingerprint: Hash,
        children: Vec<String>,
    ) -> NodeRead {
        let data_sha256 = digest::data_sha256(&data);
        let data_len = data.len() as u64;
        let node_digest = digest::node_digest(name, kind, data_len, &data_sha256, &acl_fingerprint);
        NodeRead {
            stat,
            kind,
            data_len,
            data_sha256,
            data: keep_data.then_some(data),
            children,
            acl,
            acl_fingerprint,
            digest: node_digest,
        }
    }
}

/// Counts and checksums of one subtree on one side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubtreeSummary {
    pub nodes: u64,
    pub ephemerals: u64,
    pub bytes: u64,
    pub unreadable: u64,
    pub checksum: Hash,
    pub acl_fingerprint: Hash,
    /// False for a node the ephemeral policy keeps out of checksums.
    pub in_checksum: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    nodes: u64,
    ephemerals: u64,
    bytes: u64,
    unreadable: u64,
}

impl Counts {
    fn add(&mut self, s: &SubtreeSummary) {
        self.nodes += s.nodes;
        self.ephemerals += s.ephemerals;
        self.bytes += s.bytes;
        self.unreadable += s.unreadable;
    }
}

/// Knobs for pipelining; the defaults were measured on a 2-core machine
/// against ZooKeeper 3.8 (see `scripts/bench`).
#[derive(Clone, Debug)]
pub struct WalkOptions {
    /// Nodes per batch.
    pub batch_nodes: usize,
    /// Path bytes per batch, to stay well under the server's 1 MB request limit.
    pub batch_bytes: usize,
    /// Batches on the wire at once.
    pub in_flight: usize,
    pub ephemerals: EphemeralPolicy,
    pub excludes: Excludes,
}

impl WalkOptions {
    pub fn new(ephemerals: EphemeralPolicy, excludes: Excludes) -> WalkOptions {
        WalkOptions {
            batch_nodes: 200,
            batch_bytes: 128 * 1024,
            in_flight: 8,
            ephemerals,
            excludes,
        }
    }
}

/// How a [`Reader`] talks to its ensemble.
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
    /// Keep every node's data bytes in [`NodeRead::data`].
    pub keep_data: bool,
    /// Read ACLs; when off, no getACL is sent and ACLs are left out of
    /// digests (for comparing with a side that has none).
    pub read_acls: bool,
    /// Back off when a round trip takes longer (see [`crate::throttle`]).
    pub max_latency: Option<Duration>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            sessions: 4,
            max_reads_per_second: 0,
            multi_read: true,
            attempts: 5,
            keep_data: false,
            read_acls: true,
            max_latency: None,
        }
    }
}

/// Reads batches of nodes from one ensemble.
pub struct Reader {
    spec: EnsembleSpec,
    /// Replaced whole when the sessions expire (see [`Reader::renew`]).
    sessions: std::sync::RwLock<Sessions>,
    /// Held while new sessions are made, so concurrent batches make one set.
    renewing: tokio::sync::Mutex<Renewals>,
    session_count: usize,
    next_client: AtomicUsize,
    limiter: Option<RateLimiter>,
    throttle: Option<Throttle>,
    multi_read: AtomicBool,
    attempts: u32,
    reads: AtomicU64,
    acl_cache: Option<Arc<AclCache>>,
    keep_data: bool,
    read_acls: bool,
}

/// The sessions a reader spreads its requests over, numbered so that a batch
/// that saw them expire can tell whether they have been replaced since.
#[derive(Clone)]
struct Sessions {
    generation: u64,
    clients: Arc<Vec<zk::Client>>,
}

/// What renewing sessions has come to so far.
#[derive(Default)]
struct Renewals {
    made: u32,
    /// The generation whose renewal failed, and why: batches that waited on
    /// it fail at once rather than each trying for a connect timeout more.
    failed: Option<(u64, String)>,
}

/// New sessions made for one reader at most this often: an ensemble that
/// keeps expiring sessions is not one to finish a walk on.
const MAX_RENEWALS: u32 = 3;

/// A failure of a whole request (not of one node in it).
enum Transport {
    /// The session is gone for good; new ones may carry on.
    Expired,
    Retry(zk::Error),
    Fatal(zk::Error),
    Unimplemented,
}

fn classify(err: zk::Error) -> Transport {
    match err {
        zk::Error::ConnectionLoss | zk::Error::Timeout | zk::Error::Custom(_) => {
            Transport::Retry(err)
        }
        zk::Error::Unimplemented | zk::Error::UnexpectedErrorCode(_) => Transport::Unimplemented,
        zk::Error::SessionExpired => Transport::Expired,
        other => Transport::Fatal(other),
    }
}

/// A per-node error: `Ok(None)` if the node is gone, `Ok(Some(reason))` if it
/// cannot be read, `Err` if the request as a whole failed.
fn node_error(err: zk::Error) -> std::result::Result<Option<String>, Transport> {
    match err {
        zk::Error::NoNode => Ok(None),
        zk::Error::NoAuth => Ok(Some("NoAuth: not authorised to read".into())),
        zk::Error::ConnectionLoss
        | zk::Error::Timeout
        | zk::Error::Custom(_)
        | zk::Error::SessionExpired
        | zk::Error::ClientClosed
        | zk::Error::Unimplemented
        | zk::Error::UnexpectedErrorCode(_) => Err(classify(err)),
        other => Ok(Some(other.to_string())),
    }
}

/// The name a node is digested under. The root of a walk is always named
/// "", so a subtree digests the same wherever it sits (`--path`, chroot).
fn digest_name(item: &Item) -> &str {
    if item.depth == 0 {
        ""
    } else {
        name_of(&item.path)
    }
}

pub fn name_of(path: &str) -> &str {
    if path == "/" {
        return "";
    }
    path.rsplit('/').next().unwrap_or("")
}

pub fn child_path(parent: &str, name: &str) -> String {
    let mut p = String::with_capacity(parent.len() + 1 + name.len());
    p.push_str(parent);
    if parent != "/" {
        p.push('/');
    }
    p.push_str(name);
    p
}

impl Reader {
    pub async fn open(spec: &EnsembleSpec, options: &ReaderOptions) -> Result<Reader> {
        let clients = spec.connect_many(options.sessions).await?;
        Ok(Reader {
            spec: spec.clone(),
            sessions: std::sync::RwLock::new(Sessions {
                generation: 0,
                clients: Arc::new(clients),
            }),
            renewing: tokio::sync::Mutex::new(Renewals::default()),
            session_count: options.sessions.max(1),
            next_client: AtomicUsize::new(0),
            limiter: RateLimiter::new(options.max_reads_per_second),
            throttle: options.max_latency.map(Throttle::new),
            multi_read: AtomicBool::new(options.multi_read),
            attempts: options.attempts.max(1),
            reads: AtomicU64::new(0),
            acl_cache: None,
            keep_data: options.keep_data,
            read_acls: options.read_acls,
        })
    }

    /// Reuses ACLs across walks: only nodes that are new or whose ACL version
    /// moved get a getACL (see [`AclCache`]).
    pub fn with_acl_cache(mut self, cache: Option<Arc<AclCache>>) -> Reader {
        self.acl_cache = cache;
        self
    }

    /// Holds the returned flight until the group's answers are in.
    async fn spend(&self, reads: usize) -> Option<Flight<'_>> {
        let flight = throttle::admit(self.throttle.as_ref(), self.limiter.as_ref(), reads).await;
        self.reads.fetch_add(reads as u64, Ordering::Relaxed);
        flight
    }

    /// Closes every session and waits briefly for the server to confirm, so
    /// no session is left to expire on the server after we are gone.
    pub async fn close(self) {
        let clients = self.current().clients;
        let mut watchers: Vec<_> = clients.iter().map(|c| c.state_watcher()).collect();
        drop(clients);
        drop(self.sessions);
        let closed = futures::future::join_all(watchers.iter_mut().map(|w| async move {
            while !w.peek_state().is_terminated() {
                w.changed().await;
            }
        }));
        let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
    }

    pub fn side(&self) -> &str {
        &self.spec.side
    }

    /// The latency limit's window, if there is one.
    pub fn throttle(&self) -> Option<&Throttle> {
        self.throttle.as_ref()
    }

    /// Individual read operations sent so far (getData, getChildren, getACL).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn current(&self) -> Sessions {
        match self.sessions.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn pick<'c>(&self, clients: &'c [zk::Client]) -> &'c zk::Client {
        let i = self.next_client.fetch_add(1, Ordering::Relaxed);
        &clients[i % clients.len()]
    }

    /// Makes new sessions after the ones of `generation` expired (the
    /// ensemble was out of reach for longer than the session timeout), unless
    /// another batch already did. Reads are idempotent, so the walk carries
    /// on; what changed meanwhile is what the re-check is for.
    async fn renew(&self, generation: u64, path: &str) -> Result<()> {
        let mut renewals = self.renewing.lock().await;
        if self.current().generation != generation {
            return Ok(());
        }
        if let Some((failed, why)) = &renewals.failed {
            if *failed == generation {
                return Err(self.read_error(path, why.clone()));
            }
        }
        if renewals.made >= MAX_RENEWALS {
            return Err(self.read_error(
                path,
                format!("the session expired again, {MAX_RENEWALS} times this walk"),
            ));
        }
        // The ensemble is likely still out of reach: keep trying for the
        // connect timeout, not just once.
        let deadline = tokio::time::Instant::now() + self.spec.connect_timeout;
        let mut pause = Duration::from_millis(250);
        let clients = loop {
            match self.spec.connect_many(self.session_count).await {
                Ok(clients) => break clients,
                Err(e) if tokio::time::Instant::now() + pause >= deadline => {
                    let why = format!("the session expired and no new one could be made: {e}");
                    renewals.failed = Some((generation, why.clone()));
                    return Err(self.read_error(path, why));
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        };
        renewals.made += 1;
        tracing::warn!(
            side = %self.spec.side,
            ensemble = %self.spec.connect,
            "the session expired; carrying on with new sessions"
        );
        let mut sessions = match self.sessions.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        *sessions = Sessions {
            generation: generation + 1,
            clients: Arc::new(clients),
        };
        Ok(())
    }

    fn read_error(&self, path: &str, reason: String) -> Error {
        let reason = match &self.spec.credentials {
            Some(c) => c.scrub(&reason),
            None => reason,
        };
        Error::Read {
            side: self.spec.side.clone(),
            ensemble: self.spec.connect.to_string(),
            path: path.to_string(),
            reason,
        }
    }

    /// Reads `paths` (absolute, below the chroot); `names[i]` is the name
    /// the digest of `paths[i]` is taken under.
    pub async fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
        let part = throttle::part_nodes(self.throttle.as_ref(), paths.len());
        if part >= paths.len() {
            return self.read_group(paths, names).await;
        }
        let mut nodes = Vec::with_capacity(paths.len());
        for (paths, names) in paths.chunks(part).zip(names.chunks(part)) {
            nodes.extend(self.read_group(paths, names).await?);
        }
        Ok(nodes)
    }

    async fn read_group(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
        let first = paths.first().copied().unwrap_or("/");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sessions = self.current();
            let clients = sessions.clients.as_slice();
            let outcome = if self.multi_read.load(Ordering::Relaxed) {
                self.read_multi(clients, paths, names).await
            } else {
                self.read_single(clients, paths, names).await
            };
            match outcome {
                Ok(nodes) => return Ok(nodes),
                Err(Transport::Expired) => {
                    self.renew(sessions.generation, first).await?;
                    // Not the batch's fault: it gets its attempts afresh.
                    attempt = 0;
                }
                Err(Transport::Unimplemented) if self.multi_read.load(Ordering::Relaxed) => {
                    // A pre-3.6 server: switch this ensemble to single reads.
                    self.multi_read.store(false, Ordering::Relaxed);
                }
                Err(Transport::Unimplemented) => {
                    return Err(self.read_error(first, "the server refused a read request".into()))
                }
                Err(Transport::Fatal(e)) => return Err(self.read_error(first, e.to_string())),
                Err(Transport::Retry(e)) if attempt >= self.attempts => {
                    return Err(
                        self.read_error(first, format!("{e} (gave up after {attempt} attempts)"))
                    )
                }
                Err(Transport::Retry(_)) => {
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                }
            }
        }
    }

    async fn read_multi(
        &self,
        clients: &[zk::Client],
        paths: &[&str],
        names: &[&str],
    ) -> std::result::Result<Vec<SideNode>, Transport> {
        let mut multi = self.pick(clients).new_multi_reader();
        for path in paths {
            multi
                .add_get_data(path)
                .and_then(|_| multi.add_get_children(path))
                .map_err(Transport::Fatal)?;
        }
        // Without a cache every ACL is read, alongside the multi-read. With
        // one, the multi-read's stats say which ACLs need reading at all.
        let (results, mut acls) = match &self.acl_cache {
            _ if !self.read_acls => {
                let _flight = self.spend(2 * paths.len()).await;
                (multi.commit().await, vec![Some(Ok(no_acl())); paths.len()])
            }
            None => {
                let _flight = self.spend(3 * paths.len()).await;
                let committed = multi.commit();
                let acls =
                    futures::future::join_all(paths.iter().map(|p| self.pick(clients).get_acl(p)));
                let (results, acls) = futures::join!(committed, acls);
                (
                    results,
                    acls.into_iter().map(|a| Some(acl_value(a))).collect(),
                )
            }
            Some(_) => {
                let _flight = self.spend(2 * paths.len()).await;
                (multi.commit().await, vec![None; paths.len()])
            }
        };
        let results = results.map_err(classify)?;
        if results.len() != 2 * paths.len() {
            return Err(Transport::Fatal(zk::Error::UnexpectedError(format!(
                "multi-read answered {} results for {} operations",
                results.len(),
                2 * paths.len()
            ))));
        }
        let mut results = results.into_iter();
        let mut nodes: Vec<RawNode> = Vec::with_capacity(paths.len());
        for _ in paths {
            let data = results.next();
            let children = results.next();
            nodes.push(match (data, children) {
                (
                    Some(zk::MultiReadResult::Data { data, stat }),
                    Some(zk::MultiReadResult::Children { children }),
                ) => Ok((data, stat, children)),
                (Some(zk::MultiReadResult::Error { err }), _)
                | (_, Some(zk::MultiReadResult::Error { err })) => Err(err),
                _ => Err(zk::Error::UnexpectedError(
                    "multi-read answers out of order".into(),
                )),
            });
        }
        if let (Some(cache), true) = (&self.acl_cache, self.read_acls) {
            self.cached_acls(clients, cache, paths, &nodes, &mut acls)
                .await;
        }
        nodes
            .into_iter()
            .zip(acls)
            .zip(names)
            .map(|((node, acl), name)| {
                // A node that failed to read never looks at its ACL.
                self.assemble(name, node, acl.unwrap_or(Err(zk::Error::NoNode)))
            })
            .collect()
    }

    /// Fills in ACLs from the cache, reading (and remembering) only those of
    /// nodes that are new or whose ACL version moved.
    async fn cached_acls(
        &self,
        clients: &[zk::Client],
        cache: &AclCache,
        paths: &[&str],
        nodes: &[RawNode],
        acls: &mut [Option<RawAcl>],
    ) {
        let mut missing = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            if let Ok((_, stat, _)) = node {
                match cache.get(paths[i], stat.czxid, stat.aversion) {
                    Some(v) => acls[i] = Some(Ok(v)),
                    None => missing.push(i),
                }
            }
        }
        if missing.is_empty() {
            return;
        }
        let _flight = self.spend(missing.len()).await;
        let fetched = futures::future::join_all(
            missing
                .iter()
                .map(|i| self.pick(clients).get_acl(paths[*i])),
        )
        .await;
        for (i, raw) in missing.into_iter().zip(fetched) {
            acls[i] = Some(match raw {
                Ok((acl, stat)) => {
                    let value = acl_value_of(&acl);
                    Ok(cache.put(paths[i], stat.czxid, stat.aversion, value))
                }
                Err(e) => Err(e),
            });
        }
    }

    async fn read_single(
        &self,
        clients: &[zk::Client],
        paths: &[&str],
        names: &[&str],
    ) -> std::result::Result<Vec<SideNode>, Transport> {
        let per_node = if self.read_acls { 3 } else { 2 };
        let _flight = self.spend(per_node * paths.len()).await;
        let reads = paths.iter().zip(names).map(|(path, name)| async move {
            let data = self.pick(clients).get_data(path);
            let children = self.pick(clients).list_children(path);
            let acl = async {
                if self.read_acls {
                    acl_value(self.pick(clients).get_acl(path).await)
                } else {
                    Ok(no_acl())
                }
            };
            let (data, children, acl) = futures::join!(data, children, acl);
            let node = match (data, children) {
                (Ok((data, stat)), Ok(children)) => Ok((data, stat, children)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            self.assemble(name, node, acl)
        });
        futures::future::join_all(reads).await.into_iter().collect()
    }
}

type RawNode = std::result::Result<(Vec<u8>, zk::Stat, Vec<String>), zk::Error>;
type RawAcl = std::result::Result<Arc<AclValue>, zk::Error>;

fn acl_value_of(acl: &[zk::Acl]) -> AclValue {
    let entries = digest::normalize_acl(acl.iter().map(AclEntry::from_zk).collect());
    let fingerprint = digest::acl_fingerprint(&entries);
    AclValue {
        entries,
        fingerprint,
    }
}

fn acl_value(raw: std::result::Result<(Vec<zk::Acl>, zk::Stat), zk::Error>) -> RawAcl {
    raw.map(|(acl, _)| Arc::new(acl_value_of(&acl)))
}

/// What a side that reads no ACLs puts in their place.
fn no_acl() -> Arc<AclValue> {
    Arc::new(AclValue {
        entries: Vec::new(),
        fingerprint: digest::acl_fingerprint(&[]),
    })
}

impl Reader {
    fn assemble(
        &self,
        name: &str,
        node: RawNode,
        acl: RawAcl,
    ) -> std::result::Result<SideNode, Transport> {
        let (data, stat, mut children) = match node {
            Ok(n) => n,
            Err(e) => {
                return Ok(match node_error(e)? {
                    None => SideNode::Absent,
                    Some(reason) => SideNode::Unreadable(reason),
                })
            }
        };
        let acl = match acl {
            Ok(acl) => acl,
            Err(e) => {
                return Ok(match node_error(e)? {
                    None => SideNode::Absent,
                    Some(reason) => SideNode::Unreadable(reason),
                })
            }
        };
        children.sort_unstable();
        let kind = NodeKind::from_ephemeral_owner(stat.ephemeral_owner);
        let entries = self.read_acls.then(|| acl.entries.clone());
        Ok(SideNode::Present(Box::new(NodeRead::from_parts(
            name,
            kind,
            data,
            self.keep_data,
            Some(stat),
            entries,
            acl.fingerprint,
            children,
        ))))
    }
}

/// Labels a visitor puts on a node; its children inherit what `visit` returns.
pub type Tag = u8;

/// One node, as both sides have it.
pub struct Visit<'a> {
    pub path: &'a str,
    pub depth: u32,
    pub tag: Tag,
    pub sides: &'a [SideNode; 2],
}

pub trait Visitor {
    /// Called once per node, parents before children, siblings in no
    /// particular order. Returns the tag the node's children get.
    fn visit(&mut self, visit: &Visit<'_>) -> Tag;

    /// Called once a node's whole subtree has been read; `None` where the
    /// side does not have the node.
    fn subtree_done(
        &mut self,
        path: &str,
        depth: u32,
        tag: Tag,
        sides: &[Option<SubtreeSummary>; 2],
    );

    /// Running total of differences, for progress lines.
    fn differences(&self) -> u64 {
        0
    }
}

struct Item {
    path: String,
    depth: u32,
    /// Bit 0: listed on side 0; bit 1: listed on side 1.
    mask: u8,
    tag: Tag,
    parent: Option<(usize, u32)>,
}

/// A node whose children are still being read.
struct Pending {
    path: String,
    depth: u32,
    tag: Tag,
    parent: Option<(usize, u32)>,
    remaining: u32,
    /// Next child index to fold into the hashers.
    cursor: u32,
    /// Children finished ahead of `cursor`.
    early: BTreeMap<u32, [Option<(Hash, Hash)>; 2]>,
    sides: [Option<(SubtreeHasher, Counts)>; 2],
    in_checksum: [bool; 2],
}

/// Start of a side's subtree: the node's own contribution.
fn node_start(
    name: &str,
    node: &SideNode,
    policy: EphemeralPolicy,
) -> Option<(SubtreeHasher, Counts, bool)> {
    match node {
        SideNode::Absent => None,
        SideNode::Unreadable(_) => {
            let d = digest::unreadable_digest(name);
            let a = digest::unknown_acl_fingerprint();
            let counts = Counts {
                nodes: 1,
                unreadable: 1,
                ..Counts::default()
            };
            Some((SubtreeHasher::new(name, Some((&d, &a))), counts, true))
        }
        SideNode::Present(n) => {
            let ephemeral = n.kind == NodeKind::Ephemeral;
            if ephemeral && policy == EphemeralPolicy::Skip {
                return None;
            }
            let counts = Counts {
                nodes: 1,
                ephemerals: u64::from(ephemeral),
                bytes: n.data_len,
                unreadable: 0,
            };
            let in_checksum = !ephemeral || policy == EphemeralPolicy::Compare;
            let own = in_checksum.then_some((&n.digest, &n.acl_fingerprint));
            Some((SubtreeHasher::new(name, own), counts, in_checksum))
        }
    }
}

/// Merges two sorted child lists into (name, mask) pairs.
fn union_children<'a>(a: Option<&'a [String]>, b: Option<&'a [String]>) -> Vec<(&'a str, u8)> {
    let a = a.unwrap_or(&[]);
    let b = b.unwrap_or(&[]);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                out.push((x.as_str(), 0b11));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                out.push((x.as_str(), 0b01));
                i += 1;
            }
            (Some(x), None) => {
                out.push((x.as_str(), 0b01));
                i += 1;
            }
            (_, Some(y)) => {
                out.push((y.as_str(), 0b10));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// Arena of pending nodes with slot reuse, so indices stay small and stable.
#[derive(Default)]
struct Slab {
    slots: Vec<Option<Pending>>,
    free: Vec<usize>,
}

impl Slab {
    fn insert(&mut self, p: Pending) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(p);
                i
            }
            None => {
                self.slots.push(Some(p));
                self.slots.len() - 1
            }
        }
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut Pending> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    fn remove(&mut self, i: usize) -> Option<Pending> {
        let p = self.slots.get_mut(i).and_then(Option::take);
        if p.is_some() {
            self.free.push(i);
        }
        p
    }
}

struct Engine<'v, V: Visitor> {
    visitor: &'v mut V,
    options: WalkOptions,
    stack: Vec<Item>,
    pending: Slab,
    root: Option<[Option<SubtreeSummary>; 2]>,
    nodes_seen: u64,
}

impl<V: Visitor> Engine<'_, V> {
    fn process(&mut self, item: Item, sides: [SideNode; 2]) {
        self.nodes_seen += 1;
        let tag = self.visitor.visit(&Visit {
            path: &item.path,
            depth: item.depth,
            tag: item.tag,
            sides: &sides,
        });
        let name = digest_name(&item);
        let policy = self.options.ephemerals;
        let starts = [
            node_start(name, &sides[0], policy),
            node_start(name, &sides[1], policy),
        ];
        let children = union_children(
            sides[0].present().map(|n| n.children.as_slice()),
            sides[1].present().map(|n| n.children.as_slice()),
        );
        let children: Vec<(String, u8)> = children
            .into_iter()
            .map(|(name, mask)| (child_path(&item.path, name), mask))
            .filter(|(path, _)| !self.options.excludes.is_excluded(path))
            .collect();

        let mut in_checksum = [false; 2];
        let mut aggs: [Option<(SubtreeHasher, Counts)>; 2] = [None, None];
        for (s, start) in starts.into_iter().enumerate() {
            if let Some((hasher, counts, inc)) = start {
                aggs[s] = Some((hasher, counts));
                in_checksum[s] = inc;
            }
        }

        if children.is_empty() {
            let summaries = finish_sides(aggs, in_checksum);
            self.complete(&item.path, item.depth, item.tag, item.parent, summaries);
            return;
        }

        let count = children.len() as u32;
        let slot = self.pending.insert(Pending {
            path: item.path,
            depth: item.depth,
            tag: item.tag,
            parent: item.parent,
            remaining: count,
            cursor: 0,
            early: BTreeMap::new(),
            sides: aggs,
            in_checksum,
        });
        // The stack pops from the end: push in reverse so names come out in order.
        for (index, (path, mask)) in children.into_iter().enumerate().rev() {
            self.stack.push(Item {
                path,
                depth: item.depth + 1,
                mask,
                tag,
                parent: Some((slot, index as u32)),
            });
        }
    }

    /// A subtree is finished: report it, and fold it into its parent, which
    /// may finish in turn.
    fn complete(
        &mut self,
        path: &str,
        depth: u32,
        tag: Tag,
        parent: Option<(usize, u32)>,
        summaries: [Option<SubtreeSummary>; 2],
    ) {
        self.visitor.subtree_done(path, depth, tag, &summaries);
        let (mut parent, mut summaries) = (parent, summaries);
        loop {
            let Some((slot, index)) = parent else {
                self.root = Some(summaries);
                return;
            };
            let Some(p) = self.pending.get_mut(slot) else {
                return;
            };
            let mut sums: [Option<(Hash, Hash)>; 2] = [None, None];
            for s in 0..2 {
                if let (Some(summary), Some((_, counts))) = (&summaries[s], &mut p.sides[s]) {
                    counts.add(summary);
                    if summary.in_checksum {
                        sums[s] = Some((summary.checksum, summary.acl_fingerprint));
                    }
                }
            }
            p.early.insert(index, sums);
            while let Some(ready) = p.early.remove(&p.cursor) {
                for (sum, side) in ready.iter().zip(p.sides.iter_mut()) {
                    if let (Some((c, a)), Some((hasher, _))) = (sum, side) {
                        hasher.add_child(c, a);
                    }
                }
                p.cursor += 1;
            }
            p.remaining -= 1;
            if p.remaining > 0 {
                return;
            }
            let Some(done) = self.pending.remove(slot) else {
                return;
            };
            summaries = finish_sides(done.sides, done.in_checksum);
            self.visitor
                .subtree_done(&done.path, done.depth, done.tag, &summaries);
            parent = done.parent;
        }
    }

    /// Takes the next batch off the stack: up to `batch_nodes` nodes and
    /// `batch_bytes` of path.
    fn next_batch(&mut self) -> Vec<Item> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < self.options.batch_nodes && bytes < self.options.batch_bytes {
            let Some(item) = self.stack.pop() else { break };
            bytes += item.path.len() + 16;
            batch.push(item);
        }
        batch
    }
}

fn finish_sides(
    aggs: [Option<(SubtreeHasher, Counts)>; 2],
    in_checksum: [bool; 2],
) -> [Option<SubtreeSummary>; 2] {
    let [a, b] = aggs;
    let finish = |agg: Option<(SubtreeHasher, Counts)>, inc: bool| {
        agg.map(|(hasher, c)| {
            let (checksum, acl_fingerprint) = hasher.finish();
            SubtreeSummary {
                nodes: c.nodes,
                ephemerals: c.ephemerals,
                bytes: c.bytes,
                unreadable: c.unreadable,
                checksum,
                acl_fingerprint,
                in_checksum: inc,
            }
        })
    };
    [finish(a, in_checksum[0]), finish(b, in_checksum[1])]
}

/// Reads one batch from every side that lists its nodes.
async fn read_batch(
    readers: [Option<&Source>; 2],
    items: Vec<Item>,
) -> (Vec<Item>, Result<Vec<[SideNode; 2]>>) {
    let read_side = |s: usize| {
        let listed = items.iter().filter(|i| i.mask & (1 << s) != 0);
        let paths: Vec<&str> = listed.clone().map(|i| i.path.as_str()).collect();
        let names: Vec<&str> = listed.map(digest_name).collect();
        async move {
            match readers[s] {
                Some(r) if !paths.is_empty() => r.read_nodes(&paths, &names).await,
                _ => Ok(Vec::new()),
            }
        }
    };
    let (a, b) = futures::join!(read_side(0), read_side(1));
    let result = a.and_then(|a| b.map(|b| (a, b))).map(|(a, b)| {
        let (mut a, mut b) = (a.into_iter(), b.into_iter());
        items
            .iter()
            .map(|i| {
                let take = |s: usize, it: &mut std::vec::IntoIter<SideNode>| {
                    if i.mask & (1 << s) != 0 {
                        it.next().unwrap_or(SideNode::Absent)
                    } else {
                        SideNode::Absent
                    }
                };
                [take(0, &mut a), take(1, &mut b)]
            })
            .collect()
    });
    (items, result)
}

/// Walks `root` on the given sides (one or two), calling `visitor` for every
/// node and every finished subtree. Returns the root's summary per side.
pub async fn walk<V: Visitor>(
    readers: [Option<&Source>; 2],
    root: &str,
    options: &WalkOptions,
    visitor: &mut V,
    progress: &mut Progress,
) -> Result<[Option<SubtreeSummary>; 2]> {
    let mask = u8::from(readers[0].is_some()) | (u8::from(readers[1].is_some()) << 1);
    let mut engine = Engine {
        visitor,
        options: options.clone(),
        stack: vec![Item {
            path: root.to_string(),
            depth: 0,
            mask,
            tag: 0,
            parent: None,
        }],
        pending: Slab::default(),
        root: None,
        nodes_seen: 0,
    };
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < engine.options.in_flight.max(1) && !engine.stack.is_empty() {
            let batch = engine.next_batch();
            in_flight.push(read_batch(readers, batch));
        }
        let Some((items, result)) = in_flight.next().await else {
            break;
        };
        for (item, sides) in items.into_iter().zip(result?) {
            engine.process(item, sides);
        }
        progress.update(engine.nodes_seen, engine.visitor.differences());
    }
    progress.clear();
    Ok(engine.root.unwrap_or([None, None]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn union_marks_which_side_lists_each_child() {
        let a = names(&["a", "b", "d"]);
        let b = names(&["b", "c", "d", "e"]);
        let u = union_children(Some(&a), Some(&b));
        assert_eq!(u, vec![("a", 1), ("b", 3), ("c", 2), ("d", 3), ("e", 2)]);
        assert_eq!(union_children(None, Some(&b)).len(), 4);
    }

    #[test]
    fn paths_and_names() {
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
        assert_eq!(name_of("/a/b"), "b");
        assert_eq!(name_of("/"), "");
    }
}
