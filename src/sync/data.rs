//! Copying new data node by node while `sync` follows: the source's value,
//! set on the target only if the target node is still at the version just
//! read (else someone else wrote it: a suspect). Never a write to the
//! source.
//!
//! Under a fast writer this is the follow path's whole cost, so it is
//! batched both ways: nodes are read a batch at a time with one multi-read
//! per side (pre-3.6 servers have none: single reads, pipelined), and
//! written with conditional multi-writes, several in flight while the next
//! reads run.
//!
//! What is held at once is bounded by constants: READS_IN_FLIGHT read
//! batches of READ_BATCH values (from both sides), and WRITES_IN_FLIGHT + 1
//! write batches of at most WRITE_BATCH_BYTES (or one value larger than
//! that), however many paths there are.

use std::sync::atomic::{AtomicBool, Ordering};

use futures::stream::{self, StreamExt};
use zookeeper_client as zk;

use super::watch::Side;
use crate::tree::path::{parent, within};

/// Nodes read per multi-read, and read batches in flight at once.
const READ_BATCH: usize = 32;
const READS_IN_FLIGHT: usize = 8;
/// Nodes' new data per multi-write (and at most this many bytes), and
/// write batches in flight at once.
const WRITE_BATCH: usize = 100;
const WRITE_BATCH_BYTES: usize = 512 * 1024;
const WRITES_IN_FLIGHT: usize = 8;

/// Whether each side still answers multi-reads: a pre-3.6 server says
/// once that it does not, and is read node by node from then on.
#[derive(Debug)]
pub struct MultiRead([AtomicBool; 2]);

impl Default for MultiRead {
    fn default() -> MultiRead {
        MultiRead([AtomicBool::new(true), AtomicBool::new(true)])
    }
}

/// What copying a set of paths' data did.
#[derive(Debug, Default)]
pub struct Copies {
    /// Writes made.
    pub applied: u64,
    /// Parents to walk instead (a node gone on a side).
    pub walk: Vec<String>,
    /// Target nodes that moved between the read and the write.
    pub moved: Vec<String>,
}

/// The path whose read or write failed, the side, and how.
pub type Failed = (String, Side, zk::Error);

/// Copies the data of `paths` (under `root`) from `s` to `t`, at most
/// `max_writes_per_second` writes a second (0: no cap).
pub async fn copy(
    s: &zk::Client,
    t: &zk::Client,
    paths: &[String],
    root: &str,
    max_writes_per_second: u32,
    multi: &MultiRead,
) -> Result<Copies, Failed> {
    let reads = stream::iter(paths.chunks(READ_BATCH))
        .map(|chunk| read_batch(s, t, chunk, multi))
        .buffered(READS_IN_FLIGHT)
        .flat_map(stream::iter);
    // Reads are pulled only as fast as batches are written: a batch is
    // handed on once full, and outcomes that need no write at once.
    let steps = stream::unfold(
        (Box::pin(reads), Vec::new(), 0usize, false),
        |(mut reads, mut batch, mut bytes, done)| async move {
            if done {
                return None;
            }
            loop {
                match reads.next().await {
                    Some((path, Ok(Copied::Write { data, version }))) => {
                        let full = !batch.is_empty()
                            && (batch.len() >= WRITE_BATCH
                                || bytes + data.len() > WRITE_BATCH_BYTES);
                        let ready = full.then(|| std::mem::take(&mut batch));
                        if full {
                            bytes = 0;
                        }
                        bytes += data.len();
                        batch.push((path, data, version));
                        if let Some(ready) = ready {
                            return Some((Step::Write(ready), (reads, batch, bytes, false)));
                        }
                    }
                    Some((path, r)) => {
                        return Some((Step::Done(path, r), (reads, batch, bytes, false)))
                    }
                    None if batch.is_empty() => return None,
                    None => return Some((Step::Write(batch), (reads, Vec::new(), 0, true))),
                }
            }
        },
    );
    // The same cap on writes per second as repair's.
    let limiter = crate::ratelimit::RateLimiter::new(max_writes_per_second);
    let limiter = &limiter;
    let mut outcomes = std::pin::pin!(steps
        .map(|step| async move {
            match step {
                Step::Done(path, r) => vec![(path, r)],
                Step::Write(b) => {
                    if let Some(l) = limiter {
                        l.acquire(b.len() as u32).await;
                    }
                    write_batch(t, b).await
                }
            }
        })
        .buffer_unordered(WRITES_IN_FLIGHT));
    let mut copies = Copies::default();
    while let Some(results) = outcomes.next().await {
        for (path, r) in results {
            match r {
                Ok(Copied::Written) => copies.applied += 1,
                Ok(Copied::Same) | Ok(Copied::LeftAlone) | Ok(Copied::Write { .. }) => {}
                Ok(Copied::NeedsWalk) => copies.walk.push(
                    parent(&path)
                        .filter(|up| within(up, root))
                        .unwrap_or(root)
                        .to_string(),
                ),
                Ok(Copied::ChangedOnTarget) => copies.moved.push(path),
                Err((side, e)) => return Err((path, side, e)),
            }
        }
    }
    Ok(copies)
}

/// What copying one node's data did, or is to do.
enum Copied {
    /// To write: the source's data, if the target is still at `version`.
    Write {
        data: Vec<u8>,
        version: i32,
    },
    Written,
    Same,
    /// Ephemeral on a side, or unreadable: not sync's to copy.
    LeftAlone,
    /// Gone on a side: its parent is walked instead.
    NeedsWalk,
    /// The target moved between the read and the write.
    ChangedOnTarget,
}

/// A node's copy, or the side that failed and how.
type CopyResult = std::result::Result<Copied, (Side, zk::Error)>;

/// What the reads hand on: a batch to write, or a node's outcome that
/// needs no write.
enum Step {
    Write(Vec<(String, Vec<u8>, i32)>),
    Done(String, CopyResult),
}

/// One node's getData on one side.
type Read = Result<(Vec<u8>, zk::Stat), zk::Error>;

/// Reads `paths` on both sides at once: what to do with each.
async fn read_batch(
    s: &zk::Client,
    t: &zk::Client,
    paths: &[String],
    multi: &MultiRead,
) -> Vec<(String, CopyResult)> {
    let (source, target) = futures::join!(
        read_side(s, paths, &multi.0[Side::Source as usize]),
        read_side(t, paths, &multi.0[Side::Target as usize]),
    );
    let (source, target) = match (source, target) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) => return failed(paths, Side::Source, e),
        (_, Err(e)) => return failed(paths, Side::Target, e),
    };
    paths
        .iter()
        .zip(source.into_iter().zip(target))
        .map(|(p, (s, t))| (p.clone(), judge(s, t)))
        .collect()
}

/// Every path of a batch whose request failed as a whole.
fn failed(paths: &[String], side: Side, e: zk::Error) -> Vec<(String, CopyResult)> {
    paths
        .iter()
        .map(|p| (p.clone(), Err((side, e.clone()))))
        .collect()
}

/// `paths`' data on one side, in order: one multi-read, or single reads
/// pipelined on a server that has none. An error is the request's as a
/// whole (a node's own comes in its place).
async fn read_side(
    c: &zk::Client,
    paths: &[String],
    multi: &AtomicBool,
) -> Result<Vec<Read>, zk::Error> {
    if multi.load(Ordering::Relaxed) {
        match read_multi(c, paths).await {
            Err(zk::Error::Unimplemented) | Err(zk::Error::UnexpectedErrorCode(_)) => {
                multi.store(false, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    let reads = futures::future::join_all(paths.iter().map(|p| c.get_data(p))).await;
    match reads
        .iter()
        .find_map(|r| r.as_ref().err().filter(|e| !is_node_error(e)))
    {
        Some(e) => Err(e.clone()),
        None => Ok(reads),
    }
}

async fn read_multi(c: &zk::Client, paths: &[String]) -> Result<Vec<Read>, zk::Error> {
    let mut reader = c.new_multi_reader();
    for p in paths {
        reader.add_get_data(p)?;
    }
    let results = reader.commit().await?;
    if results.len() != paths.len() {
        return Err(zk::Error::UnexpectedError(format!(
            "multi-read answered {} results for {} reads",
            results.len(),
            paths.len()
        )));
    }
    results
        .into_iter()
        .map(|r| match r {
            zk::MultiReadResult::Data { data, stat } => Ok(Ok((data, stat))),
            zk::MultiReadResult::Error { err } if is_node_error(&err) => Ok(Err(err)),
            zk::MultiReadResult::Error { err } => Err(err),
            _ => Err(zk::Error::UnexpectedError(
                "multi-read answers out of order".into(),
            )),
        })
        .collect()
}

/// What to do with a node, from its reads on both sides.
fn judge(source: Read, target: Read) -> CopyResult {
    let (data, stat) = match source {
        Ok(v) => v,
        Err(zk::Error::NoNode) => return Ok(Copied::NeedsWalk),
        Err(zk::Error::NoAuth) => return Ok(Copied::LeftAlone),
        Err(e) => return Err((Side::Source, e)),
    };
    if stat.ephemeral_owner != 0 {
        return Ok(Copied::LeftAlone);
    }
    let (theirs, tstat) = match target {
        Ok(v) => v,
        Err(zk::Error::NoNode) | Err(zk::Error::NoAuth) => return Ok(Copied::NeedsWalk),
        Err(e) => return Err((Side::Target, e)),
    };
    if tstat.ephemeral_owner != 0 {
        return Ok(Copied::LeftAlone);
    }
    if theirs == data {
        return Ok(Copied::Same);
    }
    Ok(Copied::Write {
        data,
        version: tstat.version,
    })
}

/// Writes one node's data on its own, for a multi-write that failed.
async fn write_one(t: &zk::Client, path: &str, data: &[u8], version: i32) -> CopyResult {
    match t.set_data(path, data, Some(version)).await {
        Ok(_) => Ok(Copied::Written),
        Err(zk::Error::BadVersion) => Ok(Copied::ChangedOnTarget),
        Err(zk::Error::NoNode) | Err(zk::Error::NoAuth) => Ok(Copied::NeedsWalk),
        Err(e) => Err((Side::Target, e)),
    }
}

/// Writes a batch of nodes' data in one multi-write, each conditional on
/// the version read; if the multi fails (one node moved, one refused),
/// node by node, so each gets its own outcome.
async fn write_batch(
    t: &zk::Client,
    batch: Vec<(String, Vec<u8>, i32)>,
) -> Vec<(String, CopyResult)> {
    let mut multi = t.new_multi_writer();
    let added = batch
        .iter()
        .all(|(path, data, version)| multi.add_set_data(path, data, Some(*version)).is_ok());
    if added {
        match multi.commit().await {
            Ok(_) => {
                return batch
                    .into_iter()
                    .map(|(path, _, _)| (path, Ok(Copied::Written)))
                    .collect()
            }
            Err(zk::MultiWriteError::RequestFailed { source }) if !is_node_error(&source) => {
                return batch
                    .into_iter()
                    .map(|(path, _, _)| (path, Err((Side::Target, source.clone()))))
                    .collect()
            }
            Err(_) => {}
        }
    }
    // Pipelined: one node that moved must not make the rest of its batch
    // wait a round trip each.
    let writes = batch
        .iter()
        .map(|(path, data, version)| write_one(t, path, data, *version));
    let outcomes = futures::future::join_all(writes).await;
    batch
        .into_iter()
        .zip(outcomes)
        .map(|((path, _, _), r)| (path, r))
        .collect()
}

/// An error about one node, rather than the session or the server.
fn is_node_error(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::BadVersion | zk::Error::NoNode | zk::Error::NoAuth | zk::Error::BadArguments(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(version: i32, ephemeral_owner: i64) -> zk::Stat {
        zk::Stat {
            czxid: 1,
            mzxid: 1,
            pzxid: 1,
            ctime: 0,
            mtime: 0,
            version,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            data_length: 0,
            num_children: 0,
        }
    }

    #[test]
    fn a_node_is_written_only_where_the_target_differs_at_the_version_read() {
        let new = || Ok((b"new".to_vec(), stat(7, 0)));
        assert!(matches!(
            judge(new(), Ok((b"old".to_vec(), stat(3, 0)))),
            Ok(Copied::Write { version: 3, .. })
        ));
        assert!(matches!(
            judge(new(), Ok((b"new".to_vec(), stat(3, 0)))),
            Ok(Copied::Same)
        ));
        assert!(matches!(
            judge(new(), Err(zk::Error::NoNode)),
            Ok(Copied::NeedsWalk)
        ));
        assert!(matches!(
            judge(Ok((b"e".to_vec(), stat(0, 42))), Err(zk::Error::NoNode)),
            Ok(Copied::LeftAlone)
        ));
        assert!(matches!(
            judge(new(), Err(zk::Error::ConnectionLoss)),
            Err((Side::Target, zk::Error::ConnectionLoss))
        ));
    }
}
