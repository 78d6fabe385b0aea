//! The tree a data directory holds, kept small: per node its parent, its
//! name (in one arena) and where its record lies (the snapshot's bytes, read
//! again by offset when the walk asks) — about 32 bytes and the name,
//! whatever the values weigh. Nodes the logs create or change keep their
//! state in memory (an overlay bounded by the logs' size). Children are one
//! sorted array per parent, rebuilt once after the logs are replayed.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;

use super::record::{Acl, Stat};

/// `rec` of a node that was deleted.
const DEAD: u64 = u64::MAX;
/// `rec` bit that marks an index into the overlay, not a file offset.
const OVERLAY: u64 = 1 << 63;
const NO_PARENT: u32 = u32::MAX;

/// A node's state held in memory: created or changed by a transaction.
pub(crate) struct Held {
    pub data: Vec<u8>,
    /// Index into [`Tree::acls`].
    pub acl: u32,
    pub stat: Stat,
}

/// One node's record.
pub(crate) struct Node {
    pub data: Vec<u8>,
    pub acl: u32,
    pub stat: Stat,
}

pub(crate) struct Tree {
    parent: Vec<u32>,
    name_off: Vec<u32>,
    name_len: Vec<u32>,
    rec: Vec<u64>,
    /// Data length of a node whose record is in the file.
    data_len: Vec<u32>,
    names: Vec<u8>,
    held: Vec<Held>,
    /// ACL lists, in the normal form; records refer to them by index.
    pub acls: Vec<Acl>,
    /// Their fingerprints.
    pub acl_fingerprints: Vec<crate::digest::Hash>,
    /// The snapshot's ACL references, mapped to [`Tree::acls`].
    acl_refs: HashMap<i64, u32>,
    /// Lists seen in transactions, so a repeated list is kept once.
    acl_index: HashMap<Acl, u32>,
    /// Children, sorted by name, of node `i`: `children[start[i]..start[i+1]]`.
    start: Vec<u32>,
    children: Vec<u32>,
    /// Nodes created since the children were last sorted.
    added: HashMap<(u32, Box<str>), u32>,
    stale: bool,
}

/// Why a record could not be read back.
pub(crate) type ReadBack = std::io::Result<Option<Node>>;

impl Tree {
    pub(crate) fn new() -> Tree {
        Tree {
            parent: Vec::new(),
            name_off: Vec::new(),
            name_len: Vec::new(),
            rec: Vec::new(),
            data_len: Vec::new(),
            names: Vec::new(),
            held: Vec::new(),
            acls: Vec::new(),
            acl_fingerprints: Vec::new(),
            acl_refs: HashMap::new(),
            acl_index: HashMap::new(),
            start: vec![0],
            children: Vec::new(),
            added: HashMap::new(),
            stale: true,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.parent.len()
    }

    /// Registers the snapshot's ACL list `reference`.
    pub(crate) fn add_acl_ref(&mut self, reference: i64, acl: Acl) {
        let i = self.intern_acl(acl);
        self.acl_refs.insert(reference, i);
    }

    pub(crate) fn intern_acl(&mut self, acl: Acl) -> u32 {
        if let Some(&i) = self.acl_index.get(&acl) {
            return i;
        }
        let i = self.acls.len() as u32;
        self.acl_fingerprints
            .push(crate::digest::acl_fingerprint(&acl.0));
        self.acls.push(acl.clone());
        self.acl_index.insert(acl, i);
        i
    }

    /// Registers ZooKeeper's fixed reference -1, the open ACL
    /// (world:anyone, all permissions), unless the snapshot's list has it.
    pub(crate) fn add_open_ref(&mut self) {
        if !self.acl_refs.contains_key(&-1) {
            self.add_acl_ref(-1, Acl::open());
        }
    }

    pub(crate) fn acl_ref_known(&self, reference: i64) -> bool {
        self.acl_refs.contains_key(&reference)
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        // Names only ever come from `&str`s split at '/'.
        std::str::from_utf8(self_name(self, id)).unwrap_or_default()
    }

    fn push(&mut self, parent: u32, name: &str, rec: u64, data_len: u32) -> u32 {
        let id = self.parent.len() as u32;
        self.parent.push(parent);
        self.name_off.push(self.names.len() as u32);
        self.name_len.push(name.len() as u32);
        self.names.extend_from_slice(name.as_bytes());
        self.rec.push(rec);
        self.data_len.push(data_len);
        id
    }

    /// A node whose record starts at `offset` of the file, read in the
    /// snapshot's order (parents first).
    pub(crate) fn push_recorded(
        &mut self,
        parent: Option<u32>,
        name: &str,
        offset: u64,
        data_len: u32,
    ) -> u32 {
        self.stale = true;
        self.push(parent.unwrap_or(NO_PARENT), name, offset, data_len)
    }

    /// Whether the names arena can take `more` bytes (offsets are 32-bit).
    pub(crate) fn has_room(&self, more: usize) -> bool {
        self.names.len() + more < u32::MAX as usize && self.parent.len() < (u32::MAX - 1) as usize
    }

    /// Sorts every node's children by name; after the snapshot is read and
    /// again once the logs are replayed.
    pub(crate) fn sort_children(&mut self) {
        if !self.stale {
            return;
        }
        let n = self.len();
        let mut counts = vec![0u32; n + 1];
        for (id, &p) in self.parent.iter().enumerate() {
            if p != NO_PARENT && self.rec[id] != DEAD {
                counts[p as usize + 1] += 1;
            }
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let mut fill = counts.clone();
        let mut children = vec![0u32; counts[n] as usize];
        for (id, &p) in self.parent.iter().enumerate() {
            if p != NO_PARENT && self.rec[id] != DEAD {
                children[fill[p as usize] as usize] = id as u32;
                fill[p as usize] += 1;
            }
        }
        drop(fill);
        for i in 0..n {
            let range = counts[i] as usize..counts[i + 1] as usize;
            if range.len() > 1 {
                let slice = &mut children[range];
                slice.sort_unstable_by(|a, b| self_name(self, *a).cmp(self_name(self, *b)));
            }
        }
        self.start = counts;
        self.children = children;
        self.added.clear();
        self.stale = false;
    }

    fn base_children(&self, id: u32) -> &[u32] {
        let i = id as usize;
        if i + 1 >= self.start.len() {
            return &[];
        }
        &self.children[self.start[i] as usize..self.start[i + 1] as usize]
    }

    /// The live child `name` of `parent`.
    pub(crate) fn child(&self, parent: u32, name: &str) -> Option<u32> {
        let kids = self.base_children(parent);
        if let Ok(i) = kids.binary_search_by(|c| self_name(self, *c).cmp(name.as_bytes())) {
            let c = kids[i];
            if self.rec[c as usize] != DEAD {
                return Some(c);
            }
        }
        self.added
            .get(&(parent, Box::from(name)))
            .copied()
            .filter(|c| self.rec[*c as usize] != DEAD)
    }

    /// The node at `path` (absolute), if it is there.
    pub(crate) fn lookup(&self, path: &str) -> Option<u32> {
        let mut id = 0u32;
        if self.rec.is_empty() || self.rec[0] == DEAD {
            return None;
        }
        if path == "/" {
            return Some(0);
        }
        for part in path.strip_prefix('/')?.split('/') {
            id = self.child(id, part)?;
        }
        Some(id)
    }

    /// The state of `id` to change: moved into memory if it was in the file.
    pub(crate) fn held_mut(&mut self, id: u32, file: &std::fs::File) -> std::io::Result<&mut Held> {
        let rec = self.rec[id as usize];
        if rec & OVERLAY == 0 {
            let Some(node) = self.read_record(id, file)? else {
                return Err(std::io::Error::other("a deleted node"));
            };
            self.held.push(Held {
                data: node.data,
                acl: node.acl,
                stat: node.stat,
            });
            self.rec[id as usize] = OVERLAY | (self.held.len() as u64 - 1);
        }
        let i = (self.rec[id as usize] & !OVERLAY) as usize;
        Ok(&mut self.held[i])
    }

    /// Adds a node created by a transaction under `parent` (`None`: the
    /// root of an empty tree).
    pub(crate) fn create(&mut self, parent: Option<u32>, name: &str, held: Held) -> u32 {
        self.held.push(held);
        let rec = OVERLAY | (self.held.len() as u64 - 1);
        let parent = parent.unwrap_or(NO_PARENT);
        let id = self.push(parent, name, rec, 0);
        self.added.insert((parent, Box::from(name)), id);
        self.stale = true;
        id
    }

    /// Deletes `id` (its children must be gone already).
    pub(crate) fn delete(&mut self, id: u32) {
        self.rec[id as usize] = DEAD;
        self.stale = true;
    }

    pub(crate) fn parent(&self, id: u32) -> Option<u32> {
        let p = self.parent[id as usize];
        (p != NO_PARENT).then_some(p)
    }

    /// Live children of `id` (only exact after [`Tree::sort_children`]).
    pub(crate) fn children_of(&self, id: u32) -> impl Iterator<Item = u32> + '_ {
        let base = self.base_children(id).iter().copied();
        let added = self
            .added
            .iter()
            .filter(move |((p, _), _)| *p == id)
            .map(|(_, c)| *c);
        base.chain(added)
            .filter(move |c| self.rec[*c as usize] != DEAD)
    }

    /// The stat of `id` as it stands, without its data; `None` if deleted.
    pub(crate) fn stat_of(&self, id: u32, file: &std::fs::File) -> std::io::Result<Option<Stat>> {
        let rec = self.rec[id as usize];
        if rec == DEAD {
            return Ok(None);
        }
        if rec & OVERLAY != 0 {
            return Ok(Some(self.held[(rec & !OVERLAY) as usize].stat));
        }
        let mut buf = [0u8; Stat::BYTES];
        let at = rec + 4 + self.data_len[id as usize] as u64 + 8;
        file.read_exact_at(&mut buf, at)?;
        Ok(Some(Stat::decode(&buf)))
    }

    /// The record of `id` as it stands; `None` if deleted. The file's
    /// record is `data, acl reference, stat` as the snapshot wrote it.
    pub(crate) fn read_record(&self, id: u32, file: &std::fs::File) -> ReadBack {
        let rec = self.rec[id as usize];
        if rec == DEAD {
            return Ok(None);
        }
        if rec & OVERLAY != 0 {
            let h = &self.held[(rec & !OVERLAY) as usize];
            return Ok(Some(Node {
                data: h.data.clone(),
                acl: h.acl,
                stat: h.stat,
            }));
        }
        let len = self.data_len[id as usize] as usize;
        let mut buf = vec![0u8; 4 + len + 8 + Stat::BYTES];
        file.read_exact_at(&mut buf, rec)?;
        Ok(Some(self.decode(&buf)))
    }

    /// Hands `each` the record of every id of `ids` that is alive (its
    /// index in `ids`, data, ACL index, stat). Records near each other in
    /// the file (siblings without children are adjacent) are read with one
    /// call, and their data is not copied.
    pub(crate) fn read_many(
        &self,
        ids: &[u32],
        file: &std::fs::File,
        mut each: impl FnMut(usize, &[u8], u32, Stat),
    ) -> std::io::Result<()> {
        const GAP: u64 = 16 << 10;
        let extent = |id: u32| {
            let off = self.rec[id as usize];
            (
                off,
                off + 4 + self.data_len[id as usize] as u64 + 8 + Stat::BYTES as u64,
            )
        };
        let mut in_file: Vec<usize> = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            let rec = self.rec[id as usize];
            if rec == DEAD {
                continue;
            }
            if rec & OVERLAY != 0 {
                let h = &self.held[(rec & !OVERLAY) as usize];
                each(i, &h.data, h.acl, h.stat);
            } else {
                in_file.push(i);
            }
        }
        in_file.sort_unstable_by_key(|&i| self.rec[ids[i] as usize]);
        let mut buf = Vec::new();
        let mut k = 0;
        while k < in_file.len() {
            let (start, mut end) = extent(ids[in_file[k]]);
            let mut j = k + 1;
            while j < in_file.len() {
                let (s, e) = extent(ids[in_file[j]]);
                if s > end + GAP || e - start > 4 << 20 {
                    break;
                }
                end = end.max(e);
                j += 1;
            }
            buf.resize((end - start) as usize, 0);
            file.read_exact_at(&mut buf, start)?;
            for &i in &in_file[k..j] {
                let (s, e) = extent(ids[i]);
                let (data, acl, stat) =
                    self.parts(&buf[(s - start) as usize..(e - start) as usize]);
                each(i, data, acl, stat);
            }
            k = j;
        }
        Ok(())
    }

    /// The names of `id`'s live children, sorted.
    pub(crate) fn child_names(&self, id: u32) -> Vec<String> {
        let mut names: Vec<String> = self
            .children_of(id)
            .map(|c| self.name(c).to_string())
            .collect();
        if !self.added.is_empty() {
            names.sort_unstable();
        }
        names
    }

    /// A file record's parts: data, ACL index, stat.
    fn parts<'a>(&self, rec: &'a [u8]) -> (&'a [u8], u32, Stat) {
        let len = rec.len() - 12 - Stat::BYTES;
        let acl_ref = i64::from_be_bytes(rec[4 + len..12 + len].try_into().unwrap_or_default());
        (
            &rec[4..4 + len],
            // Unknown references were refused while the snapshot was read.
            self.acl_refs.get(&acl_ref).copied().unwrap_or(0),
            Stat::decode(&rec[12 + len..]),
        )
    }

    /// A file record: data (length-prefixed), ACL reference, stat.
    fn decode(&self, rec: &[u8]) -> Node {
        let (data, acl, stat) = self.parts(rec);
        Node {
            data: data.to_vec(),
            acl,
            stat,
        }
    }
}

fn self_name(tree: &Tree, id: u32) -> &[u8] {
    let (o, l) = (
        tree.name_off[id as usize] as usize,
        tree.name_len[id as usize] as usize,
    );
    &tree.names[o..o + l]
}
