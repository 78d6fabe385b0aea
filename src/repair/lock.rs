//! One writer per target subtree, across hosts: `repair --apply` and
//! `sync --apply` hold an ephemeral node at the target ensemble's root
//! while they write, and refuse to start while another writer holds a
//! subtree that overlaps theirs.
//!
//! The node is `/zkparity-writer-<pid>-<random>.lock`, at the server's
//! root whatever the chroot (so writers behind different chroots still see
//! each other), holding who wrote it as JSON. It is ephemeral: a writer
//! killed with SIGKILL holds it only until its session times out. Walks
//! never read it ([`is_lock_path`], kept in `exclude` with the name's
//! parts, is excluded everywhere), so a compare of the subtree, or of the
//! whole ensemble, does not report it. The name ends in letters so that it
//! never looks like a sequential node to the sequence-counter rules.
//!
//! Two writers that start at once both create their node and then both
//! see the other's: the one whose node is older (the lower `czxid`) goes
//! on, the other withdraws.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use zookeeper_client as zk;

use crate::connect::{ConnectString, EnsembleSpec};
use crate::error::{Error, Result};
use crate::exclude::{is_lock_path, LOCK_PREFIX, LOCK_SUFFIX};
use crate::tree::path::within;

/// Who holds a lock, as its node says.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Holder {
    /// The subtree written, as a path on the servers (chroot included).
    pub path: String,
    pub command: String,
    pub host: String,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub started: String,
}

impl Holder {
    fn describe(&self) -> String {
        format!(
            "zkparity {} of {} on host {} (pid {}, started {})",
            self.command, self.path, self.host, self.pid, self.started
        )
    }
}

/// A held lock; dropping it closes its session, which removes the node.
pub struct WriterLock {
    client: zk::Client,
    node: String,
}

impl WriterLock {
    /// Removes the node at once rather than at the session's close.
    pub async fn release(self) {
        let _ = self.client.delete(&self.node, None).await;
    }
}

/// Takes the lock on `path` (below the target's chroot) for `command`.
pub async fn take(target: &EnsembleSpec, path: &str, command: &str) -> Result<WriterLock> {
    let server_path = match (&target.connect.chroot, path) {
        (None, p) => p.to_string(),
        (Some(c), "/") => c.clone(),
        (Some(c), p) => format!("{c}{p}"),
    };
    let at_root = EnsembleSpec {
        connect: ConnectString {
            chroot: None,
            ..target.connect.clone()
        },
        ..target.clone()
    };
    let client = at_root
        .connect_writer(at_root.writes_as_3_4().await)
        .await?;
    let me = Holder {
        path: server_path.clone(),
        command: command.to_string(),
        host: crate::gmetric::sender::local_hostname(),
        pid: std::process::id(),
        started: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    };
    let node = format!(
        "/{LOCK_PREFIX}{}-{:016x}{LOCK_SUFFIX}",
        me.pid,
        fastrand::u64(..)
    );
    let data = serde_json::to_vec(&me).unwrap_or_default();
    let shown = node.clone();
    let failed = |reason: String| {
        Error::Refused {
        reason: format!(
            "the writer lock {shown} could not be taken on the target {}: {reason}",
            target.connect
        ),
        fix: "give target credentials that may create nodes at the ensemble's root (the lock keeps a second writer off this subtree)".into(),
    }
    };
    let options = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let (mine, _) = client
        .create(&node, &data, &options)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let lock = WriterLock { client, node };
    match holder_before(&lock, &server_path, mine.czxid).await {
        Ok(None) => Ok(lock),
        Ok(Some(other)) => {
            lock.release().await;
            Err(Error::Refused {
                reason: format!(
                    "another writer holds {} on the target {}: {}",
                    other.path,
                    target.connect,
                    other.describe()
                ),
                fix: format!(
                    "wait for it to finish, or stop it (a writer killed with SIGKILL holds its lock until its session times out, at most {})",
                    humantime::format_duration(session_bound(target))
                ),
            })
        }
        Err(e) => {
            let reason = e.to_string();
            lock.release().await;
            Err(failed(reason))
        }
    }
}

/// How long a lost writer's node may outlive it: the server expires a
/// session within its negotiated timeout, which the client asks for.
fn session_bound(target: &EnsembleSpec) -> Duration {
    target.session_timeout
}

/// The holder of a lock older than ours on an overlapping subtree.
async fn holder_before(
    lock: &WriterLock,
    path: &str,
    mine: i64,
) -> std::result::Result<Option<Holder>, zk::Error> {
    let names = lock.client.list_children("/").await?;
    let mut older: Option<(i64, Holder)> = None;
    for name in names {
        let node = format!("/{name}");
        if node == lock.node || !is_lock_path(&node) {
            continue;
        }
        let (data, stat) = match lock.client.get_data(&node).await {
            Ok(found) => found,
            // Released meanwhile.
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(e),
        };
        // A node we cannot read as a lock holds nothing we know of.
        let Ok(holder) = serde_json::from_slice::<Holder>(&data) else {
            continue;
        };
        let overlaps = within(&holder.path, path) || within(path, &holder.path);
        if overlaps && stat.czxid < mine && !older.as_ref().is_some_and(|(z, _)| *z <= stat.czxid) {
            older = Some((stat.czxid, holder));
        }
    }
    Ok(older.map(|(_, h)| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_name_never_looks_sequential() {
        let name = format!("{LOCK_PREFIX}123-{:016x}{LOCK_SUFFIX}", 1234567890u64);
        assert!(!crate::tree::sequence::looks_sequential(&name), "{name}");
    }
}
