//! ACLs remembered across rounds, so a repeated walk need not read them again.
//!
//! getACL is the one read that multi-read cannot batch, and it bounds a walk
//! (see `scripts/bench`). A node's ACL can only have changed if its `aversion`
//! moved, or if the node was deleted and created again (a new `czxid`); both
//! come for free in the stat of the multi-read. So a walk that keeps this
//! cache reads an ACL only for nodes that are new or whose ACL changed.
//!
//! Memory: about 40 bytes a node plus one copy of each distinct ACL (a tree
//! usually has a handful). Entries of nodes not seen for two rounds are
//! dropped, so a churning tree (queues, locks) does not grow the cache.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash as _, Hasher};
use std::sync::{Arc, Mutex};

use crate::digest::{AclEntry, Hash};

/// A node's ACL in normal form, with its fingerprint.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AclValue {
    pub entries: Vec<AclEntry>,
    pub fingerprint: Hash,
}

#[derive(Clone, Copy)]
struct Entry {
    czxid: i64,
    aversion: i32,
    acl: u32,
    seen: u32,
}

#[derive(Default)]
struct Inner {
    nodes: HashMap<u64, Entry>,
    acls: Vec<Arc<AclValue>>,
    by_fingerprint: HashMap<Hash, u32>,
    generation: u32,
    hits: u64,
    misses: u64,
}

/// One ensemble's cache, shared by all sessions of its reader.
#[derive(Default)]
pub struct AclCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for AclCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (nodes, hits, misses) = self.stats();
        write!(f, "AclCache({nodes} nodes, {hits} hits, {misses} misses)")
    }
}

fn key(path: &str) -> u64 {
    let mut h = DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

impl AclCache {
    pub fn new() -> Arc<AclCache> {
        Arc::new(AclCache::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ACL remembered for `path`, if the node is still the same node with
    /// the same ACL version.
    pub(crate) fn get(&self, path: &str, czxid: i64, aversion: i32) -> Option<Arc<AclValue>> {
        let mut inner = self.lock();
        let generation = inner.generation;
        let found = match inner.nodes.get_mut(&key(path)) {
            Some(e) if e.czxid == czxid && e.aversion == aversion => {
                e.seen = generation;
                Some(e.acl)
            }
            _ => None,
        };
        match found {
            Some(i) => {
                inner.hits += 1;
                inner.acls.get(i as usize).cloned()
            }
            None => {
                inner.misses += 1;
                None
            }
        }
    }

    /// Remembers what getACL returned, with the stat it came with.
    pub(crate) fn put(
        &self,
        path: &str,
        czxid: i64,
        aversion: i32,
        value: AclValue,
    ) -> Arc<AclValue> {
        let mut inner = self.lock();
        let id = match inner.by_fingerprint.get(&value.fingerprint) {
            Some(id) => *id,
            None => {
                let id = inner.acls.len() as u32;
                inner.by_fingerprint.insert(value.fingerprint, id);
                inner.acls.push(Arc::new(value));
                id
            }
        };
        let seen = inner.generation;
        inner.nodes.insert(
            key(path),
            Entry {
                czxid,
                aversion,
                acl: id,
                seen,
            },
        );
        inner.acls[id as usize].clone()
    }

    /// Ends a round: forgets nodes not seen in this round or the one before.
    pub(crate) fn end_round(&self) {
        let mut inner = self.lock();
        let current = inner.generation;
        inner.nodes.retain(|_, e| current.wrapping_sub(e.seen) <= 1);
        inner.generation = current.wrapping_add(1);
    }

    /// `(nodes remembered, hits, misses)` so far.
    pub(crate) fn stats(&self) -> (usize, u64, u64) {
        let inner = self.lock();
        (inner.nodes.len(), inner.hits, inner.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(perms: u32) -> AclValue {
        let entries = vec![AclEntry {
            scheme: "world".into(),
            id: "anyone".into(),
            perms,
        }];
        let fingerprint = crate::digest::acl_fingerprint(&entries);
        AclValue {
            entries,
            fingerprint,
        }
    }

    #[test]
    fn a_hit_needs_the_same_node_and_acl_version() {
        let c = AclCache::new();
        c.put("/a", 10, 0, value(31));
        assert_eq!(c.get("/a", 10, 0).unwrap().entries[0].perms, 31);
        assert!(c.get("/a", 10, 1).is_none(), "ACL changed");
        assert!(c.get("/a", 11, 0).is_none(), "node recreated");
        assert!(c.get("/b", 10, 0).is_none());
        assert_eq!(c.stats(), (1, 1, 3));
    }

    #[test]
    fn identical_acls_are_stored_once() {
        let c = AclCache::new();
        let a = c.put("/a", 1, 0, value(31));
        let b = c.put("/b", 2, 0, value(31));
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn nodes_unseen_for_two_rounds_are_forgotten() {
        let c = AclCache::new();
        c.put("/kept", 1, 0, value(31));
        c.put("/gone", 2, 0, value(31));
        c.end_round();
        assert!(c.get("/kept", 1, 0).is_some());
        c.end_round();
        assert_eq!(c.stats().0, 2, "/gone was seen one round ago");
        assert!(c.get("/kept", 1, 0).is_some());
        c.end_round();
        assert_eq!(c.stats().0, 1);
        assert!(c.get("/gone", 2, 0).is_none());
    }
}
