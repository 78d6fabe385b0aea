//! The live reader: reads batches of nodes from one ensemble. One
//! multi-read per batch (getData + getChildren for every node, so data, stat
//! and child names come from the same server state) and a getACL per node
//! spread over several sessions, because ACL reads are not part of
//! multi-read and one session serialises them. Older servers get pipelined
//! single reads instead. Connection-level failures are retried; a node that
//! vanished is an answer (absent), not an error. Reads go through the
//! reads-per-second cap ([`crate::ratelimit`]) and the latency limit
//! ([`crate::throttle`]); ACLs may come from a cache kept across walks
//! ([`crate::aclcache`]). Sessions may be pinned to chosen servers
//! ([`crate::placement`]), and every set of sessions is synced (ZooKeeper's
//! `sync`) on the first path it reads, so no read is older than the walk's
//! start even on a follower that lags.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zookeeper_client as zk;

use super::node::{NodeRead, SideNode};
use super::read::{ReadNodes, ReaderOptions};
use crate::aclcache::{AclCache, AclValue};
use crate::connect::{ConnectString, EnsembleSpec};
use crate::digest::{self, AclEntry, NodeKind};
use crate::error::{Error, Result};
use crate::placement::{self, ReadFrom, ReadServers, ServerReads};
use crate::ratelimit::RateLimiter;
use crate::throttle::{self, Flight, Throttle};

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
    read_from: ReadFrom,
    /// Every server sessions were pinned to, over all renewals.
    servers: std::sync::Mutex<Vec<ServerEntry>>,
    /// What the latest choice of servers had to say (a fall-back).
    note: std::sync::Mutex<Option<String>>,
    /// Servers whose sessions moved mid-walk because their role changed.
    moves: std::sync::Mutex<Vec<String>>,
    /// `generation + 1` of the sessions last synced; 0 before any.
    synced: AtomicU64,
    /// Held while syncing, so concurrent first batches sync once.
    syncing: tokio::sync::Mutex<()>,
}

/// One server sessions were pinned to.
struct ServerEntry {
    server: String,
    role: String,
    zxid: Option<u64>,
    sessions: usize,
    tally: Arc<Tally>,
}

/// What was sent to one server and what it answered.
#[derive(Default)]
struct Tally {
    reads: AtomicU64,
    nodes: AtomicU64,
}

/// The servers sessions are pinned to, each once, in order.
fn pinned_servers(slots: &[Slot]) -> Vec<String> {
    let mut servers: Vec<String> = Vec::new();
    for (server, _) in slots.iter().flatten() {
        if !servers.contains(server) {
            servers.push(server.clone());
        }
    }
    servers
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Opens `n` sessions where `read_from` says: anywhere (the client library
/// picks a server per session), or pinned round-robin to the servers
/// chosen from their roles now, each by a connect string naming only it
/// (chroot and credentials kept). Pinned servers are recorded in
/// `registry`. Also answers the choice's note.
async fn connect_placed(
    spec: &EnsembleSpec,
    read_from: &ReadFrom,
    n: usize,
    registry: &std::sync::Mutex<Vec<ServerEntry>>,
) -> Result<(Vec<zk::Client>, Vec<Slot>, Option<String>)> {
    let Some(chosen) = placement::choose(spec, read_from).await? else {
        let clients = spec.connect_many(n).await?;
        let slots = vec![None; clients.len()];
        return Ok((clients, slots, None));
    };
    let targets = placement::spread(n, chosen.servers.len());
    let pinned: Vec<EnsembleSpec> = chosen
        .servers
        .iter()
        .map(|m| EnsembleSpec {
            connect: ConnectString {
                hosts: vec![(m.host.clone(), m.port)],
                chroot: spec.connect.chroot.clone(),
            },
            ..spec.clone()
        })
        .collect();
    let clients =
        futures::future::try_join_all(targets.iter().map(|i| pinned[*i].connect())).await?;
    let mut registry = lock(registry);
    let mut slots = Vec::with_capacity(targets.len());
    for i in targets {
        let member = &chosen.servers[i];
        let server = member.address();
        let at = match registry.iter().position(|e| e.server == server) {
            Some(at) => at,
            None => {
                registry.push(ServerEntry {
                    server: server.clone(),
                    role: String::new(),
                    zxid: None,
                    sessions: 0,
                    tally: Arc::default(),
                });
                registry.len() - 1
            }
        };
        let entry = &mut registry[at];
        entry.role = member.role_name();
        entry.zxid = member.zxid();
        entry.sessions += 1;
        slots.push(Some((server, entry.tally.clone())));
    }
    Ok((clients, slots, chosen.note))
}

/// The server a session is pinned to and its tally; `None` when the
/// client library chose.
type Slot = Option<(String, Arc<Tally>)>;

/// The sessions a reader spreads its requests over, numbered so that a batch
/// that saw them expire can tell whether they have been replaced since.
#[derive(Clone)]
struct Sessions {
    generation: u64,
    clients: Arc<Vec<zk::Client>>,
    /// One per client.
    slots: Arc<Vec<Slot>>,
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

impl Reader {
    pub async fn open(spec: &EnsembleSpec, options: &ReaderOptions) -> Result<Reader> {
        let read_from = options.read_from.for_side(&spec.side).clone();
        let servers = std::sync::Mutex::new(Vec::new());
        let (clients, slots, note) =
            connect_placed(spec, &read_from, options.sessions, &servers).await?;
        Ok(Reader {
            spec: spec.clone(),
            sessions: std::sync::RwLock::new(Sessions {
                generation: 0,
                clients: Arc::new(clients),
                slots: Arc::new(slots),
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
            read_from,
            servers,
            note: std::sync::Mutex::new(note),
            moves: std::sync::Mutex::new(Vec::new()),
            synced: AtomicU64::new(0),
            syncing: tokio::sync::Mutex::new(()),
        })
    }

    /// Where this side's reads went: the choice, and per pinned server its
    /// role and zxid when its sessions were made and what it was sent and
    /// answered.
    pub fn read_servers(&self) -> ReadServers {
        ReadServers {
            read_from: self.read_from.to_string(),
            servers: lock(&self.servers)
                .iter()
                .map(|e| ServerReads {
                    server: e.server.clone(),
                    role: e.role.clone(),
                    zxid: e.zxid.map(|z| format!("{z:#x}")),
                    sessions: e.sessions,
                    reads: e.tally.reads.load(Ordering::Relaxed),
                    nodes: e.tally.nodes.load(Ordering::Relaxed),
                })
                .collect(),
            note: lock(&self.note).clone(),
            moved: lock(&self.moves).clone(),
        }
    }

    /// Syncs every session on `path` once per set of sessions: the server
    /// each reads from first catches up with the leader, so nothing read
    /// after is older than this moment.
    async fn ensure_synced(
        &self,
        sessions: &Sessions,
        path: &str,
    ) -> std::result::Result<(), Transport> {
        let mark = sessions.generation + 1;
        if self.synced.load(Ordering::Acquire) == mark {
            return Ok(());
        }
        let _held = self.syncing.lock().await;
        if self.synced.load(Ordering::Acquire) == mark {
            return Ok(());
        }
        Self::sync_sessions(sessions, path).await?;
        self.synced.store(mark, Ordering::Release);
        Ok(())
    }

    async fn sync_sessions(sessions: &Sessions, path: &str) -> std::result::Result<(), Transport> {
        let done = futures::future::join_all(sessions.clients.iter().map(|c| c.sync(path))).await;
        for outcome in done {
            match outcome {
                // The server syncs whatever the path; it only echoes it.
                // A read-only server has no leader to catch up with.
                Ok(())
                | Err(zk::Error::NoNode)
                | Err(zk::Error::NoAuth)
                | Err(zk::Error::NotReadOnly) => {}
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(())
    }

    /// Syncs every session on `path` now (before a re-check reads again),
    /// riding out what a batch rides out.
    pub async fn sync(&self, path: &str) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sessions = self.current();
            match Self::sync_sessions(&sessions, path).await {
                Ok(()) => {
                    self.synced
                        .store(sessions.generation + 1, Ordering::Release);
                    return Ok(());
                }
                Err(Transport::Expired) => {
                    self.renew(sessions.generation, path).await?;
                    attempt = 0;
                }
                Err(Transport::Retry(e)) if attempt >= self.attempts => {
                    return Err(self.read_error(
                        path,
                        format!("sync: {e} (gave up after {attempt} attempts)"),
                    ))
                }
                Err(Transport::Retry(_)) => {
                    self.moved(sessions.generation, path).await?;
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                }
                Err(Transport::Fatal(e)) => return Err(self.read_error(path, format!("sync: {e}"))),
                Err(Transport::Unimplemented) => {
                    return Err(self.read_error(path, "the server refused sync".into()))
                }
            }
        }
    }

    /// After a lost connection, when sessions are pinned: reads the roles
    /// again, and makes new sessions if a pinned server no longer fits the
    /// choice (an election made a follower the leader).
    async fn moved(&self, generation: u64, path: &str) -> Result<()> {
        if self.read_from == ReadFrom::Any {
            return Ok(());
        }
        let sessions = self.current();
        if sessions.generation != generation {
            return Ok(());
        }
        let fits = match placement::choose(&self.spec, &self.read_from).await {
            Ok(Some(chosen)) => {
                let names: Vec<String> = chosen.servers.iter().map(|m| m.address()).collect();
                pinned_servers(&sessions.slots)
                    .iter()
                    .all(|server| names.contains(server))
            }
            // Down for now, or the roles cannot be told: the retries decide.
            _ => true,
        };
        if fits {
            return Ok(());
        }
        tracing::warn!(
            side = %self.spec.side,
            ensemble = %self.spec.connect,
            read_from = %self.read_from,
            "a server read from no longer fits the choice; making new sessions"
        );
        self.renew(generation, path).await
    }

    /// Reuses ACLs across walks: only nodes that are new or whose ACL version
    /// moved get a getACL (see [`AclCache`]).
    pub(crate) fn with_acl_cache(mut self, cache: Option<Arc<AclCache>>) -> Reader {
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

    /// The latency limit's window, if there is one.
    pub(crate) fn throttle(&self) -> Option<&Throttle> {
        self.throttle.as_ref()
    }

    /// Individual read operations sent so far (getData, getChildren, getACL).
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn current(&self) -> Sessions {
        match self.sessions.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The next session round-robin, with `reads` counted against its
    /// server.
    fn pick<'c>(&self, sessions: &'c Sessions, reads: u64) -> (usize, &'c zk::Client) {
        let i = self.next_client.fetch_add(1, Ordering::Relaxed) % sessions.clients.len();
        if let Some(Some((_, tally))) = sessions.slots.get(i) {
            tally.reads.fetch_add(reads, Ordering::Relaxed);
        }
        (i, &sessions.clients[i])
    }

    fn answered(sessions: &Sessions, i: usize, nodes: u64) {
        if let Some(Some((_, tally))) = sessions.slots.get(i) {
            tally.nodes.fetch_add(nodes, Ordering::Relaxed);
        }
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
        let (clients, slots, note) = loop {
            match connect_placed(
                &self.spec,
                &self.read_from,
                self.session_count,
                &self.servers,
            )
            .await
            {
                Ok(made) => break made,
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
        self.note_moves(&slots);
        let mut sessions = match self.sessions.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        *sessions = Sessions {
            generation: generation + 1,
            clients: Arc::new(clients),
            slots: Arc::new(slots),
        };
        *lock(&self.note) = note;
        Ok(())
    }

    /// Says which pinned servers the new sessions left (an election made
    /// one the leader, or it is down), and where their reads went.
    fn note_moves(&self, new_slots: &[Slot]) {
        let kept = pinned_servers(new_slots);
        if kept.is_empty() {
            return;
        }
        let left: Vec<String> = pinned_servers(&self.current().slots)
            .into_iter()
            .filter(|server| !kept.contains(server))
            .map(|server| {
                format!(
                    "{server} no longer fits {} (its role changed or it went down mid-walk): its reads moved to {}",
                    self.read_from,
                    kept.join(", ")
                )
            })
            .collect();
        lock(&self.moves).extend(left);
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
            let outcome = match self.ensure_synced(&sessions, first).await {
                Err(e) => Err(e),
                Ok(()) if self.multi_read.load(Ordering::Relaxed) => {
                    self.read_multi(&sessions, paths, names).await
                }
                Ok(()) => self.read_single(&sessions, paths, names).await,
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
                    self.moved(sessions.generation, first).await?;
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                }
            }
        }
    }

    async fn read_multi(
        &self,
        sessions: &Sessions,
        paths: &[&str],
        names: &[&str],
    ) -> std::result::Result<Vec<SideNode>, Transport> {
        let (on, client) = self.pick(sessions, 2 * paths.len() as u64);
        let mut multi = client.new_multi_reader();
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
                let acls = futures::future::join_all(
                    paths.iter().map(|p| self.pick(sessions, 1).1.get_acl(p)),
                );
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
        Self::answered(sessions, on, paths.len() as u64);
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
            self.cached_acls(sessions, cache, paths, &nodes, &mut acls)
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
        sessions: &Sessions,
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
                .map(|i| self.pick(sessions, 1).1.get_acl(paths[*i])),
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
        sessions: &Sessions,
        paths: &[&str],
        names: &[&str],
    ) -> std::result::Result<Vec<SideNode>, Transport> {
        let per_node = if self.read_acls { 3 } else { 2 };
        let _flight = self.spend(per_node * paths.len()).await;
        let reads = paths.iter().zip(names).map(|(path, name)| async move {
            let (on, client) = self.pick(sessions, 1);
            let data = async move {
                let data = client.get_data(path).await;
                if data.is_ok() {
                    Self::answered(sessions, on, 1);
                }
                data
            };
            let children = self.pick(sessions, 1).1.list_children(path);
            let acl = async {
                if self.read_acls {
                    acl_value(self.pick(sessions, 1).1.get_acl(path).await)
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
        let node = NodeRead::from_slice(
            name,
            kind,
            &data,
            false,
            Some(stat),
            entries,
            acl.fingerprint,
            children,
        );
        Ok(SideNode::Present(Box::new(
            node.keeping(data, self.keep_data),
        )))
    }
}
impl ReadNodes for Reader {
    async fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
        Reader::read_nodes(self, paths, names).await
    }
}
