//! Replaying logged transactions onto a snapshot's tree, as a server does
//! when it starts: creates, deletes, data and ACL changes, multis (all or
//! nothing), sessions opening and closing (a close deletes the session's
//! ephemerals). A snapshot is fuzzy (written while transactions went on),
//! so a create of a node that is there, or a change to one that is not, is
//! passed over, as ZooKeeper does.

use std::collections::HashMap;

use super::record::{Owner, Stat, Txn, TxnHeader};
use super::tree::{Held, Tree};

/// The tree and what replay needs beside it.
pub(crate) struct State {
    pub tree: Tree,
    /// The file the tree's offsets point into: the snapshot itself, or
    /// its unpacked copy.
    pub store: std::fs::File,
    /// Open sessions and their timeouts.
    pub sessions: HashMap<i64, i32>,
    /// Nodes owned by each session.
    pub ephemerals: HashMap<i64, Vec<u32>>,
}

impl State {
    /// The tree a server starts from with no snapshot: the root,
    /// `/zookeeper` and `/zookeeper/quota`, empty, open, all stats 0.
    pub(crate) fn empty() -> std::io::Result<State> {
        let mut tree = Tree::new();
        let open = tree.intern_acl(super::record::Acl::open());
        let node = || Held {
            data: Vec::new(),
            acl: open,
            stat: Stat::default(),
        };
        let root = tree.create(None, "", node());
        let zk = tree.create(Some(root), "zookeeper", node());
        tree.create(Some(zk), "quota", node());
        tree.sort_children();
        Ok(State {
            tree,
            // Every node is held in memory: nothing is read from it.
            store: tempfile::tempfile()?,
            sessions: HashMap::new(),
            ephemerals: HashMap::new(),
        })
    }
}

fn split(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    let parent = if i == 0 { "/" } else { &path[..i] };
    let name = &path[i + 1..];
    (!name.is_empty()).then_some((parent, name))
}

impl State {
    /// Applies one transaction.
    pub(crate) fn apply(&mut self, h: &TxnHeader, txn: &Txn) -> std::io::Result<()> {
        match txn {
            Txn::Create {
                path,
                data,
                acl,
                owner,
                parent_cversion,
            } => self.create(h, path, data, acl, *owner, *parent_cversion)?,
            Txn::Delete { path } => {
                if let Some(id) = self.tree.lookup(path) {
                    self.delete(id, h.zxid)?;
                }
            }
            Txn::SetData {
                path,
                data,
                version,
            } => {
                if let Some(id) = self.tree.lookup(path) {
                    let n = self.tree.held_mut(id, &self.store)?;
                    n.data.clone_from(data);
                    n.stat.mzxid = h.zxid;
                    n.stat.mtime = h.time;
                    n.stat.version = *version;
                }
            }
            Txn::SetAcl { path, acl, version } => {
                if let Some(id) = self.tree.lookup(path) {
                    let acl = self.tree.intern_acl(acl.clone());
                    let n = self.tree.held_mut(id, &self.store)?;
                    n.acl = acl;
                    n.stat.aversion = *version;
                }
            }
            Txn::Multi(txns) => {
                // A failed multi is logged with every operation as an error:
                // none of it happened.
                if txns.iter().any(|t| matches!(t, Txn::Error)) {
                    return Ok(());
                }
                for t in txns {
                    self.apply(h, t)?;
                }
            }
            Txn::CreateSession => {
                self.sessions.insert(h.client_id, 0);
            }
            Txn::CloseSession => {
                self.sessions.remove(&h.client_id);
                for id in self.ephemerals.remove(&h.client_id).unwrap_or_default() {
                    self.delete(id, h.zxid)?;
                }
            }
            Txn::Error | Txn::Nothing => {}
        }
        Ok(())
    }

    /// Deletes the ephemerals of sessions not open at `zxid`, as a server
    /// does when it loads these files; answers how many.
    pub(crate) fn drop_orphans(&mut self, zxid: i64) -> std::io::Result<u64> {
        let gone: Vec<i64> = self
            .ephemerals
            .keys()
            .filter(|s| !self.sessions.contains_key(s))
            .copied()
            .collect();
        let mut n = 0;
        for s in gone {
            for id in self.ephemerals.remove(&s).unwrap_or_default() {
                n += u64::from(self.delete(id, zxid)?);
            }
        }
        Ok(n)
    }

    fn create(
        &mut self,
        h: &TxnHeader,
        path: &str,
        data: &[u8],
        acl: &super::record::Acl,
        owner: i64,
        parent_cversion: i32,
    ) -> std::io::Result<()> {
        let Some((parent_path, name)) = split(path) else {
            return Ok(());
        };
        let Some(parent) = self.tree.lookup(parent_path) else {
            return Ok(());
        };
        let exists = self.tree.lookup(path).is_some();
        let p = self.tree.held_mut(parent, &self.store)?;
        let cversion = if parent_cversion == -1 {
            p.stat.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        if cversion > p.stat.cversion {
            p.stat.cversion = cversion;
            p.stat.pzxid = h.zxid;
        }
        if exists {
            return Ok(());
        }
        let acl = self.tree.intern_acl(acl.clone());
        let id = self.tree.create(
            Some(parent),
            name,
            Held {
                data: data.to_vec(),
                acl,
                stat: Stat {
                    czxid: h.zxid,
                    mzxid: h.zxid,
                    ctime: h.time,
                    mtime: h.time,
                    version: 0,
                    cversion: 0,
                    aversion: 0,
                    ephemeral_owner: owner,
                    pzxid: h.zxid,
                },
            },
        );
        if let Owner::Session(s) = Owner::of(owner) {
            self.ephemerals.entry(s).or_default().push(id);
        }
        Ok(())
    }

    /// Deletes `id` if it is there; true if it was.
    fn delete(&mut self, id: u32, zxid: i64) -> std::io::Result<bool> {
        let Some(stat) = self.tree.stat_of(id, &self.store)? else {
            return Ok(false);
        };
        if let Owner::Session(s) = Owner::of(stat.ephemeral_owner) {
            if let Some(list) = self.ephemerals.get_mut(&s) {
                list.retain(|x| *x != id);
            }
        }
        self.tree.delete(id);
        if let Some(parent) = self.tree.parent(id) {
            let p = self.tree.held_mut(parent, &self.store)?;
            if zxid > p.stat.pzxid {
                p.stat.pzxid = zxid;
            }
        }
        Ok(true)
    }
}
