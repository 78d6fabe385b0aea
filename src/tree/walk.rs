//! The walk engine: drives the traversal over the union of one or two
//! trees, read through [`ReadNodes`]. Pending work is a stack, so the walk
//! goes depth first and only the frontier is held in memory, yet up to
//! `in_flight` batches are being read at any time. Each finished subtree
//! hands its counts and Merkle checksums to its parent; children are folded
//! in name order, however they complete.
//!
//! What is done with the nodes is the [`Visitor`]'s business; how far the
//! walk has come is told to an [`Observer`] after every batch.

use std::collections::BTreeMap;

use futures::stream::{FuturesUnordered, StreamExt};

use super::node::{EphemeralPolicy, SideNode, SubtreeSummary};
use super::path::{child_path, name_of, parent, within};
use super::read::ReadNodes;
use crate::digest::{self, Hash, NodeKind, SubtreeHasher};
use crate::error::Result;
use crate::exclude::Excludes;

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

/// Kept with the walk rather than with the patterns: it is the walk's rule
/// that nothing below an excluded node is read.
impl Excludes {
    /// Whether `path` is left out of a walk from `root`: it, or an ancestor
    /// up to `root`, matches (a walk never descends below an excluded node).
    pub fn leaves_out(&self, path: &str, root: &str) -> bool {
        let mut p = path;
        loop {
            if self.is_excluded(p) {
                return true;
            }
            match parent(p) {
                Some(up) if within(up, root) => p = up,
                _ => return false,
            }
        }
    }
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

/// The name a node is digested under. The root of a walk is always named
/// "", so a subtree digests the same wherever it sits (`--path`, chroot).
fn digest_name(item: &Item) -> &str {
    if item.depth == 0 {
        ""
    } else {
        name_of(&item.path)
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
}

/// Watches a walk go by without taking part in it (progress lines).
pub trait Observer<V> {
    /// After every batch: `nodes` visited so far, and the visitor as it
    /// stands, for what it has counted.
    fn batch_done(&mut self, nodes: u64, visitor: &V);

    /// Once the last batch is in.
    fn walk_done(&mut self) {}
}

/// Nobody watching.
impl<V> Observer<V> for () {
    fn batch_done(&mut self, _: u64, _: &V) {}
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
async fn read_batch<R: ReadNodes>(
    readers: [Option<&R>; 2],
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
/// node and every finished subtree, and `observer` after every batch.
/// Returns the root's summary per side.
pub async fn walk<R: ReadNodes, V: Visitor, O: Observer<V>>(
    readers: [Option<&R>; 2],
    root: &str,
    options: &WalkOptions,
    visitor: &mut V,
    observer: &mut O,
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
        observer.batch_done(engine.nodes_seen, engine.visitor);
    }
    observer.walk_done();
    Ok(engine.root.unwrap_or([None, None]))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::error::Error;
    use crate::tree::NodeRead;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_path_is_left_out_by_an_excluded_ancestor_only_up_to_the_walks_root() {
        let ex = Excludes::new(&["/app/tmp"]).unwrap();
        assert!(ex.leaves_out("/app/tmp", "/"));
        assert!(ex.leaves_out("/app/tmp/x/y", "/app"));
        assert!(!ex.leaves_out("/app/tmp/x/y", "/app/tmp/x"));
        assert!(!ex.leaves_out("/app/other", "/"));
    }

    /// A tree in memory that remembers how it was read.
    #[derive(Default)]
    struct Memory {
        children: HashMap<String, Vec<String>>,
        batches: Mutex<Vec<Vec<String>>>,
        /// Batch numbers (in the order they were sent) as they finish.
        finished: Mutex<Vec<usize>>,
        reading: AtomicUsize,
        most_at_once: AtomicUsize,
        fail_at: Option<String>,
    }

    impl Memory {
        /// `/r` with `width` children of `below` children each.
        fn wide(width: usize, below: usize) -> Memory {
            let mut children = HashMap::new();
            let kids = |n: usize| (0..n).map(|i| format!("n{i:02}")).collect::<Vec<_>>();
            children.insert("/r".to_string(), kids(width));
            for k in kids(width) {
                children.insert(format!("/r/{k}"), kids(below));
                for g in kids(below) {
                    children.insert(format!("/r/{k}/{g}"), Vec::new());
                }
            }
            Memory {
                children,
                ..Memory::default()
            }
        }
    }

    impl ReadNodes for Memory {
        async fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
            let now = self.reading.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            let number = match self.batches.lock() {
                Ok(mut b) => {
                    b.push(paths.iter().map(|p| p.to_string()).collect());
                    b.len()
                }
                Err(_) => 0,
            };
            // Stay on the wire a while, so other batches can join, and for
            // longer or shorter by path, so batches finish out of order.
            let spins = paths
                .first()
                .map_or(0, |p| p.bytes().map(usize::from).sum())
                % 7;
            for _ in 0..=spins {
                tokio::task::yield_now().await;
            }
            self.reading.fetch_sub(1, Ordering::SeqCst);
            if let Ok(mut f) = self.finished.lock() {
                f.push(number);
            }
            if let Some(bad) = paths.iter().find(|p| Some(**p) == self.fail_at.as_deref()) {
                return Err(Error::Read {
                    side: "memory".into(),
                    ensemble: "memory".into(),
                    path: bad.to_string(),
                    reason: "refused".into(),
                });
            }
            Ok(paths
                .iter()
                .zip(names)
                .map(|(p, name)| match self.children.get(*p) {
                    None => SideNode::Absent,
                    Some(kids) => SideNode::Present(Box::new(NodeRead::new(
                        name,
                        NodeKind::Persistent,
                        p.as_bytes().to_vec(),
                        false,
                        None,
                        None,
                        kids.clone(),
                    ))),
                })
                .collect())
        }
    }

    struct Nothing;

    impl Visitor for Nothing {
        fn visit(&mut self, _: &Visit<'_>) -> Tag {
            0
        }

        fn subtree_done(&mut self, _: &str, _: u32, _: Tag, _: &[Option<SubtreeSummary>; 2]) {}
    }

    async fn walk_memory(memory: &Memory, options: &WalkOptions) -> Result<SubtreeSummary> {
        let [root, _] = walk([Some(memory), None], "/r", options, &mut Nothing, &mut ()).await?;
        Ok(root.unwrap_or_default())
    }

    fn options(batch_nodes: usize, batch_bytes: usize, in_flight: usize) -> WalkOptions {
        let mut o = WalkOptions::new(EphemeralPolicy::Count, Excludes::new::<&str>(&[]).unwrap());
        o.batch_nodes = batch_nodes;
        o.batch_bytes = batch_bytes;
        o.in_flight = in_flight;
        o
    }

    #[tokio::test]
    async fn batches_hold_at_most_batch_nodes_and_every_node_is_read_once() {
        let memory = Memory::wide(20, 3);
        let root = walk_memory(&memory, &options(7, 1 << 20, 4)).await.unwrap();
        assert_eq!(root.nodes, 81);
        let batches = memory.batches.lock().unwrap();
        assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 7));
        assert!(batches.iter().any(|b| b.len() == 7));
        let mut read: Vec<&String> = batches.iter().flatten().collect();
        read.sort();
        let before = read.len();
        read.dedup();
        assert_eq!((before, read.len()), (81, 81));
    }

    #[tokio::test]
    async fn a_batch_stops_once_its_paths_reach_batch_bytes() {
        let memory = Memory::wide(20, 0);
        // Every child path is "/r/nXX": 6 bytes, counted with 16 of overhead.
        walk_memory(&memory, &options(200, 40, 4)).await.unwrap();
        let batches = memory.batches.lock().unwrap();
        let children: Vec<&Vec<String>> = batches.iter().skip(1).collect();
        assert!(!children.is_empty());
        assert!(children.iter().all(|b| b.len() <= 2), "{children:?}");
    }

    #[tokio::test]
    async fn no_more_than_in_flight_batches_are_read_at_once() {
        let memory = Memory::wide(30, 2);
        walk_memory(&memory, &options(2, 1 << 20, 3)).await.unwrap();
        assert_eq!(memory.most_at_once.load(Ordering::SeqCst), 3);
        let memory = Memory::wide(30, 2);
        walk_memory(&memory, &options(2, 1 << 20, 1)).await.unwrap();
        assert_eq!(memory.most_at_once.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_read_fails_the_walk() {
        let mut memory = Memory::wide(10, 2);
        memory.fail_at = Some("/r/n04/n01".into());
        let err = walk_memory(&memory, &options(5, 1 << 20, 2))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Read { ref path, .. } if path == "/r/n04/n01"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn children_are_folded_in_name_order_however_batches_complete() {
        let one = walk_memory(&Memory::wide(25, 3), &options(1, 1 << 20, 1))
            .await
            .unwrap();
        let memory = Memory::wide(25, 3);
        let many = walk_memory(&memory, &options(3, 1 << 20, 8)).await.unwrap();
        let finished = memory.finished.lock().unwrap();
        assert!(
            finished.windows(2).any(|w| w[0] > w[1]),
            "batches finished in the order they were sent"
        );
        assert_eq!(one, many);
    }

    #[test]
    fn union_marks_which_side_lists_each_child() {
        let a = names(&["a", "b", "d"]);
        let b = names(&["b", "c", "d", "e"]);
        let u = union_children(Some(&a), Some(&b));
        assert_eq!(u, vec![("a", 1), ("b", 3), ("c", 2), ("d", 3), ("e", 2)]);
        assert_eq!(union_children(None, Some(&b)).len(), 4);
    }
}
