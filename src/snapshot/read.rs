//! Reading a snapshot: one pass checks every line (header, records, the
//! trailer's counts and SHA-256) and builds an index of where each path's
//! record starts; reads then fetch single records from disk. The index costs
//! 24 bytes per node whatever the values weigh, and a gzip file is first
//! unpacked into an anonymous temporary file, since gzip cannot seek.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{Header, Line, Trailer, FORMAT, VERSION};
use crate::digest::DIGEST_VERSION;
use crate::error::{Error, Result};
use crate::tree::path::within;
use crate::tree::{NodeRead, ReadNodes, ReaderOptions, SideNode};
use crate::unpack::{unpacked_cap, Capped, GZIP_RATIO};

struct IndexEntry {
    hash: u64,
    offset: u64,
    len: u32,
}

/// A checked, indexed snapshot file.
pub struct SnapshotFile {
    file: std::fs::File,
    name: PathBuf,
    header: Header,
    /// Sorted by `hash`.
    index: Vec<IndexEntry>,
    keys: RandomState,
    keep_data: bool,
    read_acls: bool,
    reads: AtomicU64,
}

/// Keyed per file, so that no crafted file can make its paths collide.
fn path_hash(keys: &RandomState, path: &str) -> u64 {
    keys.hash_one(path)
}

impl SnapshotFile {
    pub fn open(path: &Path, options: &ReaderOptions) -> Result<SnapshotFile> {
        let io = |e: std::io::Error| Error::Io {
            context: format!("reading snapshot {}", path.display()),
            source: e,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let mut magic = [0u8; 2];
        let gzip = matches!(file.read(&mut magic), Ok(2) if magic == [0x1f, 0x8b]);
        file.rewind().map_err(io)?;
        let max_line = super::max_line()?;
        let keys = RandomState::new();
        // The trailer is checked by the scan; nothing after it needs it.
        let (header, _trailer, index) = if gzip {
            // Unpacked as it is checked, so a bomb or a damaged file stops
            // at its first bad line, and never past what its size allows.
            let size = file.metadata().map_err(io)?.len();
            let mut plain = tempfile::tempfile().map_err(io)?;
            let decoder = flate2::read::MultiGzDecoder::new(BufReader::new(&file));
            let stream = BufReader::with_capacity(
                1 << 20,
                Capped::new(decoder, unpacked_cap(size, GZIP_RATIO)),
            );
            let mut copy = std::io::BufWriter::with_capacity(1 << 20, &mut plain);
            let scanned = scan(stream, Some(&mut copy), path, &keys, max_line, true)?;
            copy.flush().map_err(io)?;
            drop(copy);
            file = plain;
            scanned
        } else {
            scan(
                BufReader::with_capacity(1 << 20, &file),
                None,
                path,
                &keys,
                max_line,
                false,
            )?
        };
        let mut snapshot = SnapshotFile {
            file,
            name: path.to_path_buf(),
            header,
            index,
            keys,
            keep_data: options.keep_data,
            read_acls: options.read_acls,
            reads: AtomicU64::new(0),
        };
        snapshot.check_index()?;
        Ok(snapshot)
    }

    /// Whether `path` is the snapshot's root or below it.
    pub(crate) fn holds(&self, path: &str) -> bool {
        within(path, &self.header.path)
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn bad(&self, line: u64, reason: String) -> Error {
        Error::BadFile {
            file: self.name.clone(),
            line,
            reason,
        }
    }

    fn read_line(&self, e: &IndexEntry) -> Result<Line> {
        let mut buf = vec![0u8; e.len as usize];
        self.file
            .read_exact_at(&mut buf, e.offset)
            .map_err(|err| Error::Io {
                context: format!("reading snapshot {}", self.name.display()),
                source: err,
            })?;
        serde_json::from_slice(&buf)
            .map_err(|err| self.bad(0, format!("record at byte {} changed: {err}", e.offset)))
    }

    fn lookup(&self, path: &str) -> Result<Option<Line>> {
        let hash = path_hash(&self.keys, path);
        let start = self.index.partition_point(|e| e.hash < hash);
        for e in self.index[start..].iter().take_while(|e| e.hash == hash) {
            let line = self.read_line(e)?;
            if line.path.as_deref() == Some(path) {
                return Ok(Some(line));
            }
        }
        Ok(None)
    }

    /// Duplicate paths (only possible among equal hashes) and the root.
    fn check_index(&mut self) -> Result<()> {
        self.index.sort_unstable_by_key(|e| (e.hash, e.offset));
        let mut i = 0;
        while i < self.index.len() {
            let j = i + self.index[i..]
                .iter()
                .take_while(|e| e.hash == self.index[i].hash)
                .count();
            if j - i > 1 {
                let mut seen = std::collections::HashSet::new();
                for e in &self.index[i..j] {
                    let path = self.read_line(e)?.path.unwrap_or_default();
                    if !seen.insert(path.clone()) {
                        return Err(self.bad(0, format!("{path} has more than one record")));
                    }
                }
            }
            i = j;
        }
        let root = self.header.path.clone();
        if self.lookup(&root)?.is_none() {
            return Err(self.bad(0, format!("no record for the snapshot's root {root}")));
        }
        Ok(())
    }

    /// Reads `paths` as a live side would answer them.
    pub fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
        self.reads.fetch_add(paths.len() as u64, Ordering::Relaxed);
        paths
            .iter()
            .zip(names)
            .map(|(path, name)| {
                let Some(line) = self.lookup(path)? else {
                    return Ok(SideNode::Absent);
                };
                if let Some(reason) = line.unreadable {
                    return Ok(SideNode::Unreadable(reason));
                }
                let data = decode_data(line.data.as_deref().unwrap_or_default())
                    .map_err(|e| self.bad(0, format!("{path}: data is not base64: {e}")))?;
                let acl = self.read_acls.then(|| {
                    crate::digest::normalize_acl(
                        line.acl.iter().flatten().map(|a| a.to_entry()).collect(),
                    )
                });
                Ok(SideNode::Present(Box::new(NodeRead::new(
                    name,
                    line.kind.unwrap_or(crate::digest::NodeKind::Persistent),
                    data,
                    self.keep_data,
                    line.stat.as_ref().map(|s| s.to_zk()),
                    acl,
                    line.children.unwrap_or_default(),
                ))))
            })
            .collect()
    }
}

fn decode_data(text: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}

/// Checks a record's fields; `None` if it is fine.
fn record_problem(line: &Line, root: &str) -> Option<String> {
    let path = line.path.as_deref()?;
    if let Err(why) = crate::connect::validate_path(path) {
        return Some(format!("bad path {path:?}: {why}"));
    }
    if !within(path, root) {
        return Some(format!("{path} is outside the snapshot's root {root}"));
    }
    if line.unreadable.is_some() {
        let extra = line.kind.is_some()
            || line.data.is_some()
            || line.acl.is_some()
            || line.stat.is_some()
            || line.children.is_some();
        return extra.then(|| format!("{path}: an unreadable record carries node fields"));
    }
    let missing: Vec<&str> = [
        ("kind", line.kind.is_none()),
        ("data", line.data.is_none()),
        ("acl", line.acl.is_none()),
        ("stat", line.stat.is_none()),
        ("children", line.children.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(f, _)| *f)
    .collect();
    if !missing.is_empty() {
        return Some(format!("{path}: missing {}", missing.join(", ")));
    }
    if let Err(e) = decode_data(line.data.as_deref().unwrap_or_default()) {
        return Some(format!("{path}: data is not base64: {e}"));
    }
    // Child names become paths the walk visits: each a real name, once.
    let children = line.children.as_deref().unwrap_or_default();
    if let Some(bad) = children
        .iter()
        .find(|c| c.is_empty() || c.contains('/') || *c == "." || *c == "..")
    {
        return Some(format!("{path}: {bad:?} is not a child name"));
    }
    if children.windows(2).any(|w| w[0] >= w[1]) {
        return Some(format!("{path}: children not sorted, or listed twice"));
    }
    None
}

/// The file's lines as `scan` reads them: each bounded, copied once read.
struct Lines<'a, 'c, R> {
    reader: R,
    copy: Option<&'c mut dyn Write>,
    name: &'a Path,
    max_line: usize,
    unpacked: bool,
}

impl<R: BufRead> Lines<'_, '_, R> {
    fn bad(&self, line: u64, reason: String) -> Error {
        Error::BadFile {
            file: self.name.to_path_buf(),
            line,
            reason,
        }
    }

    fn of_stream(&self) -> &'static str {
        if self.unpacked {
            " of the unpacked stream"
        } else {
            ""
        }
    }

    /// The next line into `buf`, its newline kept; 0 at the end. `line_no`
    /// is the number of lines read before it, `offset` where it starts.
    fn next(&mut self, buf: &mut Vec<u8>, line_no: u64, offset: u64) -> Result<usize> {
        buf.clear();
        let max_line = self.max_line;
        let read = (&mut self.reader)
            .take(max_line as u64 + 1)
            .read_until(b'\n', buf);
        let n = read.map_err(|e| {
            if self.unpacked {
                self.bad(
                    line_no + 1,
                    format!(
                        "at byte {offset}{}: not a valid gzip file: {e}",
                        self.of_stream()
                    ),
                )
            } else {
                Error::Io {
                    context: format!("reading snapshot {}", self.name.display()),
                    source: e,
                }
            }
        })?;
        if n > max_line {
            return Err(self.bad(
                line_no + 1,
                format!(
                    "at byte {offset}{}: a line longer than {max_line} bytes, which no snapshot holds (a record's value and child names are each bounded by jute.maxbuffer; if the ensemble's is raised, set {})",
                    self.of_stream(),
                    crate::datadir::JUTE_MAXBUFFER_ENV
                ),
            ));
        }
        if let Some(c) = self.copy.as_mut() {
            c.write_all(buf).map_err(|e| Error::Io {
                context: format!(
                    "unpacking snapshot {} to a temporary file",
                    self.name.display()
                ),
                source: e,
            })?;
        }
        Ok(n)
    }
}

/// One pass over the file: every line checked, the index built; each
/// line is copied to `copy` once read, if given. `unpacked`: offsets are
/// in the unpacked stream of a gzip file.
fn scan<R: BufRead>(
    reader: R,
    copy: Option<&mut dyn Write>,
    name: &Path,
    keys: &RandomState,
    max_line: usize,
    unpacked: bool,
) -> Result<(Header, Trailer, Vec<IndexEntry>)> {
    let mut lines = Lines {
        reader,
        copy,
        name,
        max_line,
        unpacked,
    };
    let mut buf = Vec::new();
    let mut sha = Sha256::new();
    let mut offset = 0u64;
    let mut line_no = 0u64;
    let mut header: Option<Header> = None;
    let mut trailer: Option<Trailer> = None;
    let mut index = Vec::new();
    loop {
        let n = lines.next(&mut buf, line_no, offset)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let bad = |reason: String| lines.bad(line_no, reason);
        if trailer.is_some() {
            return Err(bad("data after the trailer line".into()));
        }
        if buf.last() != Some(&b'\n') {
            return Err(bad(
                "the last line is cut short: the file is truncated".into()
            ));
        }
        let text = &buf[..buf.len() - 1];
        let Some(h) = &header else {
            header = Some(check_header(text).map_err(bad)?);
            sha.update(&buf);
            offset += n as u64;
            continue;
        };
        let mut line: Line =
            serde_json::from_slice(text).map_err(|e| bad(format!("bad record: {e}")))?;
        if let Some(end) = line.end.take() {
            check_trailer(&end, &line, &sha, index.len()).map_err(bad)?;
            trailer = Some(end);
            continue;
        }
        if line.path.is_none() {
            return Err(bad("a record without a path".into()));
        }
        if let Some(problem) = record_problem(&line, &h.path) {
            return Err(bad(problem));
        }
        let len =
            u32::try_from(text.len()).map_err(|_| bad("a record longer than 4 GiB".into()))?;
        index.push(IndexEntry {
            hash: path_hash(keys, line.path.as_deref().unwrap_or_default()),
            offset,
            len,
        });
        sha.update(&buf);
        offset += n as u64;
    }
    let Some(header) = header else {
        return Err(lines.bad(0, "the file is empty".into()));
    };
    let Some(trailer) = trailer else {
        return Err(lines.bad(
            line_no,
            "no trailer line: the snapshot did not finish, or the file was cut".into(),
        ));
    };
    Ok((header, trailer, index))
}

/// The first line: a header of the format, version and digest this reads.
fn check_header(text: &[u8]) -> std::result::Result<Header, String> {
    let h: Header =
        serde_json::from_slice(text).map_err(|e| format!("not a zkparity snapshot header: {e}"))?;
    if h.format != FORMAT {
        return Err(format!("format {:?} is not {FORMAT:?}", h.format));
    }
    if h.version != VERSION {
        return Err(format!(
            "snapshot version {} is not supported (this zkparity reads version {VERSION})",
            h.version
        ));
    }
    if h.digest_version != DIGEST_VERSION {
        return Err(format!(
            "digest version {:?} is not {DIGEST_VERSION:?}",
            h.digest_version
        ));
    }
    if let Err(why) = crate::connect::validate_path(&h.path) {
        return Err(format!("bad root path {:?}: {why}", h.path));
    }
    Ok(h)
}

/// The trailer `end`, read from `line`, against the records before it:
/// their SHA-256 and their count.
fn check_trailer(
    end: &Trailer,
    line: &Line,
    sha: &Sha256,
    records: usize,
) -> std::result::Result<(), String> {
    let node_fields = line.path.is_some()
        || line.unreadable.is_some()
        || line.kind.is_some()
        || line.data.is_some()
        || line.acl.is_some()
        || line.stat.is_some()
        || line.children.is_some();
    if node_fields {
        return Err("the trailer carries node fields".into());
    }
    let actual = hex::encode(sha.clone().finalize());
    if end.sha256 != actual {
        return Err(
            "SHA-256 of the records does not match the trailer: the file was changed".into(),
        );
    }
    if end.records != records as u64 {
        return Err(format!(
            "the trailer counts {} records, the file holds {}",
            end.records, records
        ));
    }
    Ok(())
}

impl ReadNodes for SnapshotFile {
    async fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
        SnapshotFile::read_nodes(self, paths, names)
    }
}
