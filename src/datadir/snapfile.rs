//! ZooKeeper snapshot files (`snapshot.<zxid>`, plain or compressed): the
//! header, the sessions, the ACL lists, every node (parents first), the
//! optional digest records of 3.6 and later, and the Adler-32 of it all.
//! Nodes go into a [`Tree`] by the offset of their record; a compressed
//! snapshot is unpacked into an anonymous temporary file on the way (not
//! beside the data), whose offsets the tree then uses.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::jute::{Jute, JuteError, Limits};
use super::record::{Acl, Owner, Stat};
use super::replay::State;
use super::tree::Tree;
use crate::unpack::{unpacked_cap, Capped, GZIP_RATIO};

/// "ZKSN".
pub(crate) const SNAP_MAGIC: [u8; 4] = *b"ZKSN";
/// The framing snappy-java's `SnappyOutputStream` opens with.
pub(crate) const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// How a snapshot's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Packing {
    Plain,
    Gzip,
    Snappy,
}

impl Packing {
    /// From the first bytes of the file.
    pub(crate) fn sniff(head: &[u8]) -> Option<Packing> {
        if head.starts_with(&SNAP_MAGIC) {
            Some(Packing::Plain)
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Some(Packing::Gzip)
        } else if head.starts_with(&SNAPPY_MAGIC) {
            Some(Packing::Snappy)
        } else {
            None
        }
    }
}

/// What went wrong reading one snapshot.
#[derive(Debug)]
pub(crate) struct SnapError {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
}

impl std::fmt::Display for SnapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.file.display(),
            self.offset,
            self.reason
        )
    }
}

/// Most bytes one snappy-java block is believed to hold, packed or not:
/// ZooKeeper's `SnappyOutputStream` writes blocks of 32 KiB.
const MAX_SNAPPY_BLOCK: usize = 64 << 20;
/// Snappy's densest element is a 3-byte copy of 64 bytes, so no block
/// unpacks to more than this many times its packed size (plus its
/// length header).
const SNAPPY_RATIO: usize = 22;
/// snappy-java's stream: the 8-byte magic, two version ints, then blocks
/// of a 4-byte big-endian length and that many bytes of raw snappy.
struct SnappyJava<R> {
    inner: R,
    block: Vec<u8>,
    at: usize,
    raw: Vec<u8>,
}

impl<R: Read> SnappyJava<R> {
    fn new(mut inner: R) -> std::io::Result<SnappyJava<R>> {
        let mut head = [0u8; 16];
        inner.read_exact(&mut head)?;
        if head[..8] != SNAPPY_MAGIC {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a snappy-java stream",
            ));
        }
        Ok(SnappyJava {
            inner,
            block: Vec::new(),
            at: 0,
            raw: Vec::new(),
        })
    }
}

impl<R: Read> Read for SnappyJava<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.block.len() {
            let mut len = [0u8; 4];
            let mut got = 0;
            while got < 4 {
                let n = self.inner.read(&mut len[got..])?;
                if n == 0 {
                    if got == 0 {
                        return Ok(0);
                    }
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                got += n;
            }
            let len = u32::from_be_bytes(len) as usize;
            if len > MAX_SNAPPY_BLOCK {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("a snappy block of {len} bytes"),
                ));
            }
            // Read what is there rather than allocate what the length
            // claims: a cut file holds less.
            self.raw.clear();
            (&mut self.inner)
                .take(len as u64)
                .read_to_end(&mut self.raw)?;
            if self.raw.len() < len {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let size = snap::raw::decompress_len(&self.raw)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let most = len.saturating_mul(SNAPPY_RATIO).min(MAX_SNAPPY_BLOCK);
            if size > most {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "a snappy block of {len} bytes claims {size} unpacked, more than the {most} it can hold"
                    ),
                ));
            }
            self.block.resize(size, 0);
            snap::raw::Decoder::new()
                .decompress(&self.raw, &mut self.block)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            self.at = 0;
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Reads the snapshot `file` whole, checking its checksum; fields are held
/// to `limits`.
pub(crate) fn load(file: &Path, limits: Limits) -> Result<State, SnapError> {
    let err = |offset: u64, reason: String| SnapError {
        file: file.to_path_buf(),
        offset,
        reason,
    };
    let from_jute = |e: JuteError| err(e.offset, e.reason);
    let mut f = std::fs::File::open(file).map_err(|e| err(0, format!("cannot be opened: {e}")))?;
    let mut head = [0u8; 8];
    let n = f.read(&mut head).map_err(|e| err(0, e.to_string()))?;
    let packing = Packing::sniff(&head[..n])
        .ok_or_else(|| err(0, "not a ZooKeeper snapshot (no ZKSN header)".into()))?;
    let f = std::fs::File::open(file).map_err(|e| err(0, format!("cannot be opened: {e}")))?;
    let size = f.metadata().map_err(|e| err(0, e.to_string()))?.len();
    match packing {
        Packing::Plain => {
            let store = f.try_clone().map_err(|e| err(0, e.to_string()))?;
            let j = Jute::new(BufReader::with_capacity(1 << 20, f), 0)
                .with_limits(limits)
                .with_end(size);
            parse(j, store).map_err(from_jute)
        }
        Packing::Gzip | Packing::Snappy => {
            let copy = tempfile::tempfile()
                .map_err(|e| err(0, format!("no temporary file to unpack into: {e}")))?;
            let store = copy.try_clone().map_err(|e| err(0, e.to_string()))?;
            let writer = Box::new(std::io::BufWriter::with_capacity(1 << 20, copy));
            let (plain, cap): (Box<dyn Read>, u64) = if packing == Packing::Gzip {
                let cap = unpacked_cap(size, GZIP_RATIO);
                let gz = flate2::read::MultiGzDecoder::new(BufReader::new(f));
                (Box::new(Capped::new(gz, cap)), cap)
            } else {
                let snappy = SnappyJava::new(BufReader::new(f))
                    .map_err(|e| err(0, format!("bad snappy stream: {e}")))?;
                (Box::new(snappy), unpacked_cap(size, SNAPPY_RATIO as u64))
            };
            // Records are checked as they unpack, so a damaged or crafted
            // file stops at its first bad record, not after its last byte.
            let j = Jute::new(BufReader::with_capacity(1 << 20, plain), 0)
                .with_limits(limits)
                .with_end(cap)
                .with_copy(writer);
            parse(j, store).map_err(|e| {
                err(
                    e.offset,
                    format!("{} (offset in the unpacked stream)", e.reason),
                )
            })
        }
    }
}

fn parse<R: BufRead>(j: Jute<R>, store: std::fs::File) -> Result<State, JuteError> {
    let mut j = j.with_checksum();
    read_header(&mut j)?;
    let sessions = read_sessions(&mut j)?;
    let mut tree = read_acl_lists(&mut j)?;
    let ephemerals = read_nodes(&mut j, &mut tree)?;
    check_tail(&mut j)?;
    j.finish_copy()
        .map_err(|e| JuteError::at(j.offset(), format!("unpacking: {e}")))?;
    tree.sort_children();
    Ok(State {
        tree,
        store,
        sessions,
        ephemerals,
    })
}

/// The magic, the format version and the database id (unused).
fn read_header<R: BufRead>(j: &mut Jute<R>) -> Result<(), JuteError> {
    let at = j.offset();
    let magic = j.i32()?;
    if magic.to_be_bytes() != SNAP_MAGIC {
        return Err(JuteError::at(
            at,
            "not a ZooKeeper snapshot (no ZKSN header)",
        ));
    }
    let at = j.offset();
    let version = j.i32()?;
    if version != 2 {
        return Err(JuteError::at(
            at,
            format!("snapshot format version {version} (only 2 is known)"),
        ));
    }
    let _dbid = j.i64()?;
    Ok(())
}

fn read_sessions<R: BufRead>(j: &mut Jute<R>) -> Result<HashMap<i64, i32>, JuteError> {
    let mut sessions = HashMap::new();
    // A session: its id and timeout.
    for _ in 0..j.count("sessions", 12)? {
        let id = j.i64()?;
        let timeout = j.i32()?;
        sessions.insert(id, timeout);
    }
    Ok(sessions)
}

/// A tree holding the snapshot's ACL lists, before any node.
fn read_acl_lists<R: BufRead>(j: &mut Jute<R>) -> Result<Tree, JuteError> {
    let mut tree = Tree::new();
    let at = j.offset();
    let lists = j.i32()?;
    if lists < 0 {
        return Err(JuteError::at(at, format!("{lists} ACL lists")));
    }
    // A list: its reference and its count.
    j.check_room(at, "ACL lists", lists as usize, 12)?;
    for _ in 0..lists {
        let reference = j.i64()?;
        let acl = Acl::read(j)?;
        tree.add_acl_ref(reference, acl);
    }
    tree.add_open_ref();
    Ok(tree)
}

/// Every node up to the closing "/", into `tree`; what comes back is the
/// ephemeral nodes by their owning session.
fn read_nodes<R: BufRead>(
    j: &mut Jute<R>,
    tree: &mut Tree,
) -> Result<HashMap<i64, Vec<u32>>, JuteError> {
    let mut ephemerals: HashMap<i64, Vec<u32>> = HashMap::new();
    // The chain of nodes from the root to the last one read: the
    // snapshot writes a node, then its subtree. Each is held as the length
    // of its path, a prefix of the last path read (`last`), so no path is
    // allocated per node.
    let mut chain: Vec<(usize, u32)> = Vec::new();
    let mut last = String::new();
    let mut path = String::new();
    loop {
        let at = j.offset();
        if !j.ustring_into(&mut path)? {
            return Err(JuteError::at(at, "a null path"));
        }
        if path == "/" {
            break;
        }
        let parent = parent_in_chain(at, &path, &mut chain, &last, tree)?;
        let name = match path.rfind('/') {
            Some(i) => &path[i + 1..],
            None => "",
        };
        if !tree.has_room(name.len()) {
            return Err(JuteError::at(at, "more nodes than this reader can hold"));
        }
        let record = j.offset();
        let len = j.skip_buffer()?;
        let at = j.offset();
        let acl = j.i64()?;
        if !tree.acl_ref_known(acl) {
            return Err(JuteError::at(
                at,
                format!("{path} refers to ACL list {acl}, which the snapshot does not hold"),
            ));
        }
        let stat = Stat::read(j)?;
        let id = tree.push_recorded(parent, name, record, len as u32);
        if let Owner::Session(session) = Owner::of(stat.ephemeral_owner) {
            ephemerals.entry(session).or_default().push(id);
        }
        chain.push((path.len(), id));
        std::mem::swap(&mut last, &mut path);
    }
    if tree.len() == 0 {
        return Err(JuteError::at(j.offset(), "a snapshot without a root node"));
    }
    Ok(ephemerals)
}

/// The parent of the node at `path` (read at `at`): the chain is cut back
/// to it. `None` for the root, which may come only first.
fn parent_in_chain(
    at: u64,
    path: &str,
    chain: &mut Vec<(usize, u32)>,
    last: &str,
    tree: &Tree,
) -> Result<Option<u32>, JuteError> {
    if path.is_empty() {
        if !chain.is_empty() || tree.len() > 0 {
            return Err(JuteError::at(at, "the root appears twice"));
        }
        return Ok(None);
    }
    let cut = path
        .rfind('/')
        .filter(|_| path.starts_with('/') && !path.ends_with('/'))
        .ok_or_else(|| JuteError::at(at, format!("{path:?} is not a znode path")))?;
    let parent_path = &path.as_bytes()[..cut];
    while chain
        .last()
        .is_some_and(|(len, _)| &last.as_bytes()[..*len] != parent_path)
    {
        chain.pop();
    }
    let Some((_, parent)) = chain.last() else {
        return Err(JuteError::at(
            at,
            format!("{path} comes before its parent, or without one"),
        ));
    };
    Ok(Some(*parent))
}

/// What follows the nodes: seals (an Adler-32 of every byte before it,
/// and "/"), with 3.6+'s digest record and 3.9's last processed zxid
/// each followed by a seal of its own.
fn check_tail<R: BufRead>(j: &mut Jute<R>) -> Result<(), JuteError> {
    let tail_at = j.offset();
    let summed = j.sum_state();
    let mut tail = Vec::new();
    while !j.at_end()? {
        tail.push(j.u8()?);
        if tail.len() > 4096 {
            return Err(JuteError::at(tail_at, "unexpected data after the nodes"));
        }
    }
    let digest_len = match tail.len() {
        13 | 34 => 0,
        46 | 67 => 20,
        n if n < 13 => {
            return Err(JuteError::at(
                tail_at,
                "the file ends before its checksum: it is cut short",
            ))
        }
        n => {
            return Err(JuteError::at(
                tail_at,
                format!("{n} bytes after the nodes, which no ZooKeeper version writes"),
            ))
        }
    };
    let mut sum = summed;
    let mut at = 0usize;
    let seal = |at: &mut usize, sum: &mut adler2::Adler32| -> Result<(), JuteError> {
        let stored = i64::from_be_bytes(tail[*at..*at + 8].try_into().unwrap_or_default());
        let computed = sum.checksum();
        if stored as u64 != computed as u64 {
            return Err(JuteError::at(
                tail_at + *at as u64,
                format!(
                    "checksum {stored:#x} does not match the content's {computed:#x}: the file is damaged"
                ),
            ));
        }
        if tail[*at + 8..*at + 13] != [0, 0, 0, 1, b'/'] {
            return Err(JuteError::at(
                tail_at + *at as u64 + 8,
                "no closing \"/\" after the checksum",
            ));
        }
        sum.write_slice(&tail[*at..*at + 13]);
        *at += 13;
        Ok(())
    };
    seal(&mut at, &mut sum)?;
    // The digest (zxid, version, value) and the last processed zxid are
    // checked by their seals; replay starts from the file name's zxid, as
    // ZooKeeper's own does.
    if digest_len > 0 {
        sum.write_slice(&tail[at..at + 20]);
        at += 20;
        seal(&mut at, &mut sum)?;
    }
    if at < tail.len() {
        sum.write_slice(&tail[at..at + 8]);
        at += 8;
        seal(&mut at, &mut sum)?;
    }
    Ok(())
}
