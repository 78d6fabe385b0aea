//! Applying a plan to the target, front to back, on one session.
//!
//! Consecutive creates, set_data and deletes travel together in multi-writes
//! (each under the server's 1 MB request limit; a value too large to share
//! one goes alone), several on the wire at once. One session's requests are
//! handled in the order they were sent, so a child's create never overtakes
//! its parent's. ACL changes are not part of multi-writes and go as
//! pipelined single requests. A counter top-up waits until everything sent
//! before it has landed, since it reads the counter it moves.
//!
//! Every action is idempotent, which is what makes retries and resuming
//! safe: a create that finds the node already there with the intended data,
//! ACL and kind counts as done; set_data and set_acl carry the version seen
//! when planning, and a version mismatch is done if the node already holds
//! the intended value, and a conflict (someone else changed it) otherwise;
//! a delete that finds no node is done; a top-up re-reads the counter each
//! time, so it never adds twice.
//!
//! A multi-write is all or nothing. When one fails, its actions are applied
//! again one by one, each judged as above. Connection loss (which the client
//! reports as ConnectionLoss, a timeout or an io error) is retried with
//! backoff; an expired session is replaced by a new one and the unsettled
//! actions are sent again.

use std::collections::VecDeque;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Serialize;
use zookeeper_client as zk;

use super::plan::{AclSpec, Action, ActionKind};
use super::resume::{ApplyCounts, Checkpoint, Journal};
use crate::connect::EnsembleSpec;
use crate::digest::{acl_fingerprint, normalize_acl, AclEntry};
use crate::error::{Error, Result};
use crate::follow::Backoff;
use crate::ratelimit::RateLimiter;
use crate::tree::path::child_path;
use crate::tree::sequence::next_sequence;

/// An action that was not carried out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub op: ActionKind,
    pub path: String,
    /// `conflict` or `failed`.
    pub outcome: &'static str,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub(crate) struct ApplyOptions {
    /// Actions per multi-write.
    pub batch_ops: usize,
    /// Bytes per multi-write, well under the server's 1 MB request limit.
    pub batch_bytes: usize,
    /// Multi-writes on the wire at once.
    pub in_flight: usize,
    /// 0 for no cap.
    pub max_writes_per_second: u32,
    /// Problems kept for the report (0: all).
    pub limit: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            batch_ops: 200,
            batch_bytes: 512 * 1024,
            in_flight: 8,
            max_writes_per_second: 0,
            limit: 50,
        }
    }
}

/// Attempts per request on connection loss; with the backoff below, about
/// 25 s, longer than a leader election takes.
const ATTEMPTS: u32 = 9;
/// Times a counter top-up starts again because the counter moved under it.
const RACES: u32 = 10;
/// Create+delete pairs per top-up multi-write: 1,000 small ops, far under
/// the request limit.
const PAIRS_PER_MULTI: i64 = 500;
/// The throwaway sequential child a top-up creates and deletes in the same
/// multi-write, so it is never visible to anyone.
pub(crate) const TOP_UP_CHILD: &str = "zkparity-repair-seq-";

/// The wait between attempts: 200 ms, doubled up to 3.2 s.
const RETRY: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_millis(3200));

/// Worth sending again on the same session.
fn retryable(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::ConnectionLoss
            | zk::Error::Timeout
            | zk::Error::Custom(_)
            | zk::Error::Throttled
    )
}

/// The session is over: a new one is needed.
fn session_gone(e: &zk::Error) -> bool {
    matches!(e, zk::Error::SessionExpired | zk::Error::ClientClosed)
}

enum Outcome {
    Applied,
    Already,
    Conflict(String),
    Failed(String),
}

/// Why applying stopped short.
enum Stop {
    /// The session ended; reconnect and send the unsettled actions again.
    Lost,
    Fatal(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Fatal(e)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Creates, set_data, deletes in one multi-write.
    Multi,
    /// set_acl requests, pipelined.
    Acls,
    /// Applied once everything before it has landed: a counter top-up, or
    /// a value too large to share a request.
    Alone,
}

struct Unit {
    /// Index of the first action in the plan.
    first: u64,
    shape: Shape,
    actions: Vec<Action>,
}

impl Unit {
    fn end(&self) -> u64 {
        self.first + self.actions.len() as u64
    }
}

/// Groups the plan's actions into units, lazily.
struct Units<'a> {
    actions: &'a mut dyn Iterator<Item = Result<Action>>,
    peeked: Option<Action>,
    next_index: u64,
    /// Units to send again (after a reconnect), before anything new.
    retry: VecDeque<Unit>,
    batch_ops: usize,
    batch_bytes: usize,
}

impl Units<'_> {
    fn shape(&self, a: &Action) -> Shape {
        match a {
            Action::SequenceCounter { .. } => Shape::Alone,
            Action::SetAcl { .. } => Shape::Acls,
            _ if a.weight() > self.batch_bytes / 2 => Shape::Alone,
            _ => Shape::Multi,
        }
    }

    fn pull(&mut self) -> Result<Option<Action>> {
        match self.peeked.take() {
            Some(a) => Ok(Some(a)),
            None => self.actions.next().transpose(),
        }
    }

    fn next_unit(&mut self) -> Result<Option<Unit>> {
        if let Some(u) = self.retry.pop_front() {
            return Ok(Some(u));
        }
        let Some(first) = self.pull()? else {
            return Ok(None);
        };
        let shape = self.shape(&first);
        let mut bytes = first.weight();
        let mut unit = Unit {
            first: self.next_index,
            shape,
            actions: vec![first],
        };
        if shape != Shape::Alone {
            while unit.actions.len() < self.batch_ops {
                let Some(next) = self.pull()? else { break };
                if self.shape(&next) != shape || bytes + next.weight() > self.batch_bytes {
                    self.peeked = Some(next);
                    break;
                }
                bytes += next.weight();
                unit.actions.push(next);
            }
        }
        self.next_index = unit.end();
        Ok(Some(unit))
    }
}

/// A unit on the wire.
enum Sent<'c> {
    Multi(BoxFuture<'c, std::result::Result<(), zk::Error>>),
    Acls(Vec<BoxFuture<'c, std::result::Result<(), zk::Error>>>),
    /// Could not even be put together (e.g. a path the client refuses):
    /// each action is tried alone, which reports why.
    Unsent,
}

enum Answer {
    Multi(std::result::Result<(), zk::Error>),
    Acls(Vec<std::result::Result<(), zk::Error>>),
    Unsent,
}

impl Sent<'_> {
    async fn wait(self) -> Answer {
        match self {
            Sent::Multi(f) => Answer::Multi(f.await),
            Sent::Acls(fs) => Answer::Acls(futures::future::join_all(fs).await),
            Sent::Unsent => Answer::Unsent,
        }
    }
}

fn zk_acls(acl: &[AclSpec]) -> Vec<zk::Acl> {
    acl.iter().map(AclSpec::to_zk).collect()
}

fn open_acl() -> Vec<zk::Acl> {
    vec![zk::Acl::new(zk::Permission::ALL, zk::AuthId::anyone())]
}

fn create_acls(acl: &Option<Vec<AclSpec>>) -> Vec<zk::Acl> {
    acl.as_deref().map_or_else(open_acl, zk_acls)
}

fn same_acl(planned: &[AclSpec], found: &[zk::Acl]) -> bool {
    let a = normalize_acl(planned.iter().map(AclSpec::to_entry).collect());
    let b = normalize_acl(found.iter().map(AclEntry::from_zk).collect());
    acl_fingerprint(&a) == acl_fingerprint(&b)
}

/// Sends an action's set_acl now, conditional on the ACL version seen when
/// planning.
fn set_acl<'c>(
    client: &'c zk::Client,
    a: &Action,
) -> impl std::future::Future<Output = std::result::Result<(), zk::Error>> + 'c {
    let sent = match a {
        Action::SetAcl {
            path,
            acl,
            aversion,
        } => Ok(client.set_acl(path, &zk_acls(acl), Some(*aversion))),
        _ => Err(zk::Error::BadArguments(&"not an ACL operation")),
    };
    async move { sent?.await.map(drop) }
}

/// Sends a unit now (requests leave when the call is made, not when the
/// future is polled, which keeps them in plan order).
fn send<'c>(client: &'c zk::Client, unit: &Unit) -> Sent<'c> {
    match unit.shape {
        Shape::Multi => {
            let mut w = client.new_multi_writer();
            for a in &unit.actions {
                let added = match a {
                    Action::Create { path, data, acl } => {
                        let acls = create_acls(acl);
                        w.add_create(
                            path,
                            data,
                            &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acls)),
                        )
                    }
                    Action::SetData {
                        path,
                        data,
                        version,
                    } => w.add_set_data(path, data, Some(*version)),
                    Action::Delete { path, version } => w.add_delete(path, Some(*version)),
                    _ => Err(zk::Error::BadArguments(&"not a multi-write operation")),
                };
                if added.is_err() {
                    return Sent::Unsent;
                }
            }
            Sent::Multi(
                w.commit()
                    .map(|r| r.map(drop).map_err(zk::Error::from))
                    .boxed(),
            )
        }
        Shape::Acls => Sent::Acls(
            unit.actions
                .iter()
                .map(|a| set_acl(client, a).boxed())
                .collect(),
        ),
        Shape::Alone => Sent::Unsent,
    }
}

/// Applies a plan to the target.
pub(crate) struct Applier<'j> {
    spec: EnsembleSpec,
    client: zk::Client,
    limiter: Option<RateLimiter>,
    options: ApplyOptions,
    journal: &'j mut Journal,
    pub counts: ApplyCounts,
    pub problems: Vec<Problem>,
    /// Problems beyond the listing limit.
    pub problems_not_listed: u64,
    /// Actions settled by this run.
    pub settled: u64,
    /// Actions per multi-write, after the write cap's say.
    batch_ops: usize,
    /// The target runs 3.4, whose multi-writes refuse sequential creates:
    /// counters are topped up one create and delete at a time.
    legacy_target: bool,
}

enum Flow {
    Done,
    Reconnect,
}

impl<'j> Applier<'j> {
    pub(crate) async fn new(
        spec: &EnsembleSpec,
        options: ApplyOptions,
        journal: &'j mut Journal,
        counts: ApplyCounts,
    ) -> Result<Applier<'j>> {
        let legacy_target = spec.writes_as_3_4().await;
        Ok(Applier {
            legacy_target,
            client: spec.connect_writer(legacy_target).await?,
            spec: spec.clone(),
            limiter: RateLimiter::new(options.max_writes_per_second),
            options,
            journal,
            counts,
            problems: Vec::new(),
            problems_not_listed: 0,
            settled: 0,
            batch_ops: 1,
        })
    }

    /// Applies `actions`, the first being the plan's action `first_index`.
    pub(crate) async fn run(
        &mut self,
        actions: &mut dyn Iterator<Item = Result<Action>>,
        first_index: u64,
    ) -> Result<()> {
        let mut batch_ops = self.options.batch_ops.max(1);
        if self.options.max_writes_per_second > 0 {
            // Under a cap, smaller requests keep the pace even rather than
            // one burst per second.
            batch_ops = batch_ops.min((self.options.max_writes_per_second as usize / 10).max(1));
        }
        self.batch_ops = batch_ops;
        let mut units = Units {
            actions,
            peeked: None,
            next_index: first_index,
            retry: VecDeque::new(),
            batch_ops,
            batch_bytes: self.options.batch_bytes,
        };
        let mut reconnects = 0;
        loop {
            let client = self.client.clone();
            match self.pump(&client, &mut units).await {
                Ok(Flow::Done) => return Ok(()),
                Ok(Flow::Reconnect) | Err(Stop::Lost) => {
                    reconnects += 1;
                    self.reconnect(reconnects).await?;
                }
                Err(Stop::Fatal(e)) => return Err(e),
            }
        }
    }

    async fn reconnect(&mut self, reconnects: u32) -> Result<()> {
        let (mut attempt, mut backoff) = (0, RETRY);
        loop {
            attempt += 1;
            match self.spec.connect_writer(self.legacy_target).await {
                Ok(c) => {
                    self.client = c;
                    return Ok(());
                }
                Err(e) if attempt >= ATTEMPTS || reconnects > ATTEMPTS * 4 => return Err(e),
                Err(_) => tokio::time::sleep(backoff.next_wait()).await,
            }
        }
    }

    async fn spend(&mut self, writes: usize) {
        if let Some(l) = &self.limiter {
            l.acquire(writes as u32).await;
        }
        self.counts.writes += writes as u64;
    }

    async fn pump(&mut self, client: &zk::Client, units: &mut Units<'_>) -> Result<Flow, Stop> {
        let mut in_flight: VecDeque<(Unit, Sent<'_>)> = VecDeque::new();
        loop {
            while in_flight.len() < self.options.in_flight.max(1) {
                let Some(unit) = units.next_unit()? else {
                    break;
                };
                if unit.shape == Shape::Alone {
                    if !in_flight.is_empty() {
                        // Everything before it lands first.
                        units.retry.push_front(unit);
                        break;
                    }
                    match self.one_by_one(client, &unit).await {
                        Ok(outcomes) => self.record(&unit, outcomes)?,
                        Err(stop) => {
                            units.retry.push_front(unit);
                            return Err(stop);
                        }
                    }
                    continue;
                }
                self.spend(unit.actions.len()).await;
                let sent = send(client, &unit);
                in_flight.push_back((unit, sent));
            }
            let Some((unit, sent)) = in_flight.pop_front() else {
                return Ok(Flow::Done);
            };
            let result = sent.wait().await;
            match self.settle(client, &unit, result).await {
                Ok(outcomes) => self.record(&unit, outcomes)?,
                Err(stop) => {
                    // This unit and everything after it is sent again, in
                    // order, on the next session.
                    let mut again: VecDeque<Unit> = VecDeque::new();
                    again.push_back(unit);
                    again.extend(in_flight.into_iter().map(|(u, _)| u));
                    again.append(&mut units.retry);
                    units.retry = again;
                    return match stop {
                        Stop::Lost => Ok(Flow::Reconnect),
                        fatal => Err(fatal),
                    };
                }
            }
        }
    }

    async fn settle(
        &mut self,
        client: &zk::Client,
        unit: &Unit,
        result: Answer,
    ) -> Result<Vec<Outcome>, Stop> {
        let mut outcomes = Vec::with_capacity(unit.actions.len());
        match result {
            Answer::Multi(Ok(())) => {
                outcomes.extend(unit.actions.iter().map(|_| Outcome::Applied));
            }
            Answer::Multi(Err(e)) if session_gone(&e) => return Err(Stop::Lost),
            // All or nothing: whatever failed, nothing of it was applied,
            // or (after connection loss) all of it may have been. One by
            // one, each action finds out which.
            Answer::Multi(Err(_)) | Answer::Unsent => {
                outcomes = self.one_by_one(client, unit).await?;
            }
            Answer::Acls(results) => {
                for (a, r) in unit.actions.iter().zip(results) {
                    outcomes.push(match r {
                        Ok(()) => Outcome::Applied,
                        Err(e) if session_gone(&e) => return Err(Stop::Lost),
                        Err(_) => self.apply_one(client, a).await?,
                    });
                }
            }
        }
        Ok(outcomes)
    }

    async fn one_by_one(&mut self, client: &zk::Client, unit: &Unit) -> Result<Vec<Outcome>, Stop> {
        let mut outcomes = Vec::with_capacity(unit.actions.len());
        for a in &unit.actions {
            outcomes.push(self.apply_one(client, a).await?);
        }
        Ok(outcomes)
    }

    fn record(&mut self, unit: &Unit, outcomes: Vec<Outcome>) -> Result<()> {
        for (a, o) in unit.actions.iter().zip(outcomes) {
            let problem = |outcome: &'static str, reason: String| Problem {
                op: a.kind(),
                path: a.path().to_string(),
                outcome,
                reason,
            };
            let p = match o {
                Outcome::Applied => {
                    self.counts.applied += 1;
                    None
                }
                Outcome::Already => {
                    self.counts.already_done += 1;
                    None
                }
                Outcome::Conflict(r) => {
                    self.counts.conflicts += 1;
                    Some(problem("conflict", r))
                }
                Outcome::Failed(r) => {
                    self.counts.failed += 1;
                    Some(problem("failed", r))
                }
            };
            if let Some(p) = p {
                if self.options.limit == 0 || self.problems.len() < self.options.limit {
                    self.problems.push(p);
                } else {
                    self.problems_not_listed += 1;
                }
            }
        }
        self.settled += unit.actions.len() as u64;
        self.journal.record(&Checkpoint {
            done: unit.end(),
            counts: self.counts,
        })
    }

    fn gave_up(&self, path: &str, e: &zk::Error, attempts: u32) -> Stop {
        let reason = format!("writing {path}: {e} (gave up after {attempts} attempts)");
        let reason = match &self.spec.credentials {
            Some(c) => c.scrub(&reason),
            None => reason,
        };
        Stop::Fatal(Error::Connect {
            side: self.spec.side.clone(),
            ensemble: self.spec.connect.to_string(),
            reason,
        })
    }

    /// A read for judging an action, retried like a write.
    async fn read<T, F, Fut>(
        &self,
        path: &str,
        mut op: F,
    ) -> Result<std::result::Result<T, zk::Error>, Stop>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, zk::Error>>,
    {
        let (mut attempt, mut backoff) = (0, RETRY);
        loop {
            attempt += 1;
            match op().await {
                Err(e) if session_gone(&e) => return Err(Stop::Lost),
                Err(e) if retryable(&e) && attempt >= ATTEMPTS => {
                    return Err(self.gave_up(path, &e, attempt))
                }
                Err(e) if retryable(&e) => tokio::time::sleep(backoff.next_wait()).await,
                other => return Ok(other),
            }
        }
    }

    /// One action alone, judged by what the target answers.
    async fn apply_one(&mut self, client: &zk::Client, a: &Action) -> Result<Outcome, Stop> {
        if let Action::SequenceCounter { path, next, .. } = a {
            return self.top_up(client, path, *next).await;
        }
        let (mut attempt, mut backoff) = (0, RETRY);
        loop {
            attempt += 1;
            self.spend(1).await;
            let r = match a {
                Action::Create { path, data, acl } => {
                    let acls = create_acls(acl);
                    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acls));
                    client.create(path, data, &options).await.map(drop)
                }
                Action::SetData {
                    path,
                    data,
                    version,
                } => client.set_data(path, data, Some(*version)).await.map(drop),
                Action::SetAcl { .. } => set_acl(client, a).await,
                Action::Delete { path, version } => client.delete(path, Some(*version)).await,
                Action::SequenceCounter { .. } => Ok(()),
            };
            match r {
                Ok(()) => return Ok(Outcome::Applied),
                Err(e) if session_gone(&e) => return Err(Stop::Lost),
                Err(e) if retryable(&e) && attempt >= ATTEMPTS => {
                    return Err(self.gave_up(a.path(), &e, attempt))
                }
                Err(e) if retryable(&e) => tokio::time::sleep(backoff.next_wait()).await,
                Err(e) => return self.judge(client, a, e).await,
            }
        }
    }

    /// What a refused action means: done already, a conflict, or a failure.
    async fn judge(&self, client: &zk::Client, a: &Action, e: zk::Error) -> Result<Outcome, Stop> {
        let changed = || Outcome::Conflict("changed on the target since the plan was made".into());
        Ok(match (a, &e) {
            (Action::Create { path, data, acl }, zk::Error::NodeExists) => {
                let found = self.read(path, || client.get_data(path)).await?;
                let acl_found = self.read(path, || client.get_acl(path)).await?;
                match (found, acl_found) {
                    (Ok((d, stat)), Ok((found_acl, _))) => {
                        let acl_ok = acl.as_deref().map_or(true, |p| same_acl(p, &found_acl));
                        if stat.ephemeral_owner == 0 && d == *data && acl_ok {
                            Outcome::Already
                        } else {
                            Outcome::Conflict(
                                "created on the target by someone else since the plan was made, \
                                 with other content"
                                    .into(),
                            )
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        Outcome::Conflict(format!("exists on the target and cannot be read: {e}"))
                    }
                }
            }
            (Action::Create { .. }, zk::Error::NoNode) => {
                Outcome::Failed("its parent is not on the target".into())
            }
            (Action::SetData { path, data, .. }, zk::Error::BadVersion) => {
                match self.read(path, || client.get_data(path)).await? {
                    Ok((d, _)) if d == *data => Outcome::Already,
                    _ => changed(),
                }
            }
            (Action::SetAcl { path, acl, .. }, zk::Error::BadVersion) => {
                match self.read(path, || client.get_acl(path)).await? {
                    Ok((found, _)) if same_acl(acl, &found) => Outcome::Already,
                    _ => changed(),
                }
            }
            (Action::SetData { .. } | Action::SetAcl { .. }, zk::Error::NoNode) => {
                Outcome::Conflict("deleted on the target since the plan was made".into())
            }
            (Action::Delete { .. }, zk::Error::NoNode) => Outcome::Already,
            (Action::Delete { .. }, zk::Error::BadVersion) => changed(),
            (Action::Delete { .. }, zk::Error::NotEmpty) => Outcome::Conflict(
                "children were added on the target since the plan was made".into(),
            ),
            (_, zk::Error::NoAuth) => Outcome::Failed(
                "not authorised: the target's credentials lack the permission this needs".into(),
            ),
            (_, e) => Outcome::Failed(e.to_string()),
        })
    }

    /// Brings `path`'s sequence counter up to `target` by creating and
    /// deleting a sequential child, inside multi-writes. Each multi-write
    /// names the children it deletes after the sequence numbers it expects
    /// the creates to get, so it only commits if the counter is where it
    /// was read: a concurrent create under the node rolls it back, and the
    /// counter is read again. Reading it afresh each time is also what
    /// keeps a resumed or retried top-up from adding twice.
    async fn top_up(
        &mut self,
        client: &zk::Client,
        path: &str,
        target: i64,
    ) -> Result<Outcome, Stop> {
        let prefix = child_path(path, TOP_UP_CHILD);
        let options = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
        // Under a write cap, smaller steps keep the pace even.
        let per_multi = PAIRS_PER_MULTI.min((self.batch_ops / 2).max(1) as i64);
        let mut wrote = false;
        let mut races = 0;
        let (mut attempt, mut backoff) = (0, RETRY);
        loop {
            let stat = match self.read(path, || client.check_stat(path)).await? {
                Ok(Some(stat)) => stat,
                Ok(None) => return Ok(Outcome::Failed("not on the target".into())),
                Err(e) => return Ok(Outcome::Failed(format!("reading its counter: {e}"))),
            };
            let now = next_sequence(&stat);
            if now >= target {
                return Ok(if wrote {
                    Outcome::Applied
                } else {
                    Outcome::Already
                });
            }
            let pairs = (target - now).min(per_multi);
            self.spend(2 * pairs as usize).await;
            let written = if self.legacy_target {
                top_up_one_at_a_time(client, &prefix, &options, now, pairs).await
            } else {
                let mut w = client.new_multi_writer();
                for i in 0..pairs {
                    let added = w
                        .add_create(&prefix, b"", &options)
                        .and_then(|_| w.add_delete(&format!("{prefix}{:010}", now + i), None));
                    if let Err(e) = added {
                        return Ok(Outcome::Failed(e.to_string()));
                    }
                }
                w.commit().await.map(drop).map_err(zk::Error::from)
            };
            match written {
                Ok(_) => {
                    wrote = true;
                    attempt = 0;
                    backoff.reset();
                }
                Err(zk::Error::NoNode | zk::Error::NodeExists) => {
                    races += 1;
                    if races >= RACES {
                        return Ok(Outcome::Conflict(
                            "its counter kept moving: children are being created there on the \
                             target"
                                .into(),
                        ));
                    }
                }
                Err(e) if session_gone(&e) => return Err(Stop::Lost),
                Err(e) if retryable(&e) => {
                    attempt += 1;
                    if attempt >= ATTEMPTS {
                        return Err(self.gave_up(path, &e, attempt));
                    }
                    tokio::time::sleep(backoff.next_wait()).await;
                }
                Err(zk::Error::NoAuth) => {
                    return Ok(Outcome::Failed(
                        "not authorised: topping up a counter needs CREATE and DELETE on the node"
                            .into(),
                    ))
                }
                Err(e) => return Ok(Outcome::Failed(e.to_string())),
            }
        }
    }

    pub(crate) async fn close(self) {
        let mut watcher = self.client.state_watcher();
        drop(self.client);
        let closed = async {
            while !watcher.peek_state().is_terminated() {
                watcher.changed().await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
    }
}

/// A 3.4 target's top-up: each step creates a sequential child and deletes
/// it at once. Not atomic as a multi is: a run killed between the two
/// leaves one `zkparity-repair-seq-` child, which the final compare shows
/// as `extra_in_target` and `--delete-extra` removes. A number other than
/// the one expected means someone else creates children there: reported as
/// the multi's race is (`NodeExists`), and the counter is read again.
async fn top_up_one_at_a_time(
    client: &zk::Client,
    prefix: &str,
    options: &zk::CreateOptions<'_>,
    now: i64,
    pairs: i64,
) -> Result<(), zk::Error> {
    for i in 0..pairs {
        let (_, sequence) = client.create(prefix, b"", options).await?;
        client.delete(&format!("{prefix}{sequence}"), None).await?;
        if sequence.into_i64() != now + i {
            return Err(zk::Error::NodeExists);
        }
    }
    Ok(())
}
