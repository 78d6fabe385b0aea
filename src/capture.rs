//! Taking a snapshot: the walk reads the live subtree (pipelined, as for
//! `compare`) and every node is written out as soon as it is read, so memory
//! does not grow with the tree. The file appears under its name only once
//! it is complete; until then it is a hidden temporary file beside it, gone
//! if the snapshot fails.
//!
//! The side is opened through [`crate::source`], which reads snapshot files
//! through [`crate::snapshot`]: taking one sits above both, beside
//! `compare`, and writes the records that [`crate::snapshot`] defines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::digest::DIGEST_VERSION;
use crate::durable::{self, PendingFile};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::snapshot::{AclRecord, Header, Line, StatRecord, Trailer, FORMAT, VERSION};
use crate::source::{FileKind, SideSpec, Source};
use crate::tree::{
    self, EphemeralPolicy, ReaderOptions, SideNode, SubtreeSummary, Tag, Visit, Visitor,
    WalkOptions,
};

#[derive(Clone, Debug)]
pub struct SnapshotOptions {
    pub path: String,
    pub walk: WalkOptions,
    pub reader: ReaderOptions,
    pub out: PathBuf,
    /// gzip the file.
    pub compress: bool,
    /// Replace `out` if it exists; otherwise an existing file is refused.
    pub force: bool,
    /// Keep a snapshot that lacks nodes a side could not read (or whose
    /// digest ids the server hid); otherwise nothing is written.
    pub allow_incomplete: bool,
}

/// Unreadable paths named in the error of an incomplete snapshot.
const NAMED_UNREADABLE: usize = 5;

/// What was written.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SnapshotSummary {
    pub file: String,
    pub path: String,
    pub records: u64,
    pub nodes: u64,
    pub ephemerals: u64,
    pub unreadable: u64,
    /// Nodes whose ACL came back with digest ids hidden (`user:x`: the
    /// credentials lack ADMIN there): a restore could not rebuild them.
    pub acl_redacted: u64,
    pub bytes: u64,
    pub checksum: String,
    pub acl_fingerprint: String,
    pub file_bytes: u64,
    pub elapsed_seconds: f64,
}

type FileOut = std::io::BufWriter<std::fs::File>;

enum Out {
    Plain(FileOut),
    Gzip(flate2::write::GzEncoder<FileOut>),
}

impl Out {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Out::Plain(w) => w.write_all(bytes),
            Out::Gzip(w) => w.write_all(bytes),
        }
    }

    /// Writes the gzip footer and flushes, reporting what dropping would
    /// swallow.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Out::Plain(mut w) => w.flush(),
            Out::Gzip(w) => w.finish()?.flush(),
        }
    }
}

/// Counts and hashes what goes through it, before any compression.
struct LineWriter {
    out: Out,
    sha: Sha256,
    written: u64,
}

impl LineWriter {
    fn line<T: serde::Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.sha.update(&bytes);
        self.written += bytes.len() as u64;
        self.out.write_all(&bytes)
    }
}

struct SnapshotVisitor {
    out: LineWriter,
    policy: EphemeralPolicy,
    records: u64,
    /// The first write error; the walk finishes but nothing more is written.
    failed: Option<std::io::Error>,
    /// What the file lacks: unreadable nodes and redacted ACLs, the first
    /// few by path, and how many of each.
    lacking: Vec<String>,
    unreadable: u64,
    acl_redacted: u64,
}

impl SnapshotVisitor {
    fn lack(&mut self, what: String) {
        if self.lacking.len() < NAMED_UNREADABLE {
            self.lacking.push(what);
        }
    }

    fn record(&mut self, path: &str, node: &SideNode) -> std::io::Result<()> {
        let line = match node {
            SideNode::Absent => return Ok(()),
            SideNode::Unreadable(reason) => {
                self.unreadable += 1;
                self.lack(format!("{path} (unreadable: {reason})"));
                Line {
                    path: Some(path.to_string()),
                    unreadable: Some(reason.clone()),
                    ..Line::default()
                }
            }
            SideNode::Present(n) => {
                if n.acl.iter().flatten().any(|e| e.is_redacted()) {
                    self.acl_redacted += 1;
                    self.lack(format!("{path} (ACL digest ids hidden: no ADMIN)"));
                }
                if n.kind == crate::digest::NodeKind::Ephemeral
                    && self.policy == EphemeralPolicy::Skip
                {
                    return Ok(());
                }
                Line {
                    path: Some(path.to_string()),
                    kind: Some(n.kind),
                    data: Some(
                        base64::engine::general_purpose::STANDARD
                            .encode(n.data.as_deref().unwrap_or_default()),
                    ),
                    acl: Some(n.acl.iter().flatten().map(AclRecord::from_entry).collect()),
                    stat: n.stat.as_ref().map(StatRecord::from_zk),
                    children: Some(n.children.clone()),
                    ..Line::default()
                }
            }
        };
        self.records += 1;
        self.out.line(&line)
    }
}

impl Visitor for SnapshotVisitor {
    fn visit(&mut self, v: &Visit<'_>) -> Tag {
        if self.failed.is_none() {
            if let Err(e) = self.record(v.path, &v.sides[0]) {
                self.failed = Some(e);
            }
        }
        0
    }

    fn subtree_done(&mut self, _: &str, _: u32, _: Tag, _: &[Option<SubtreeSummary>; 2]) {}
}

fn io_error(file: &Path, e: std::io::Error) -> Error {
    Error::Io {
        context: format!("writing snapshot {}", file.display()),
        source: e,
    }
}

/// The hidden temporary file beside `options.out`, its header written.
fn start_file(side: &SideSpec, options: &SnapshotOptions) -> Result<(PendingFile, LineWriter)> {
    let out_path = &options.out;
    // Private: a snapshot holds every value and digest ACL id in clear.
    let temp =
        PendingFile::create(out_path, durable::PRIVATE).map_err(|e| io_error(out_path, e))?;
    let file = temp
        .as_file()
        .try_clone()
        .map_err(|e| io_error(out_path, e))?;
    let buffered = std::io::BufWriter::with_capacity(1 << 20, file);
    let out = if options.compress {
        Out::Gzip(flate2::write::GzEncoder::new(
            buffered,
            flate2::Compression::default(),
        ))
    } else {
        Out::Plain(buffered)
    };
    let mut writer = LineWriter {
        out,
        sha: Sha256::new(),
        written: 0,
    };
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        digest_version: DIGEST_VERSION.into(),
        source: side.describe(),
        path: options.path.clone(),
        excludes: options.walk.excludes.patterns().to_vec(),
        ephemerals: options.walk.ephemerals.as_str().into(),
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        zkparity: env!("CARGO_PKG_VERSION").into(),
    };
    writer.line(&header).map_err(|e| io_error(out_path, e))?;
    Ok((temp, writer))
}

/// Walks the side into `writer`, a record per node: the root's counts and
/// checksums, and the visitor with what it wrote and what it could not read.
async fn walk_into(
    side: &SideSpec,
    options: &SnapshotOptions,
    writer: LineWriter,
    progress: &mut Progress,
) -> Result<(SubtreeSummary, SnapshotVisitor)> {
    let out_path = &options.out;
    let reader_options = ReaderOptions {
        keep_data: true,
        read_acls: true,
        ..options.reader.clone()
    };
    let source = Source::open(side, &reader_options).await?;
    if source.file_kind().is_some_and(|k| k != FileKind::Zookeeper) {
        source.close().await;
        return Err(Error::Usage(
            "a snapshot is taken of an ensemble or a ZooKeeper data directory; this file is one already (compare or export it)".into(),
        ));
    }
    let mut visitor = SnapshotVisitor {
        out: writer,
        policy: options.walk.ephemerals,
        records: 0,
        failed: None,
        lacking: Vec::new(),
        unreadable: 0,
        acl_redacted: 0,
    };
    let walked = tree::walk(
        [Some(&source), None],
        &options.path,
        &options.walk,
        &mut visitor,
        &mut progress.lines(|_| 0),
    )
    .await;
    source.close().await;
    let [root, _] = walked?;
    if let Some(e) = visitor.failed.take() {
        return Err(io_error(out_path, e));
    }
    let Some(root) = root else {
        return Err(Error::RootMissing {
            path: options.path.clone(),
        });
    };
    Ok((root, visitor))
}

/// Takes a snapshot of `options.path` on `spec` into `options.out`.
pub async fn take_snapshot(
    side: &SideSpec,
    options: &SnapshotOptions,
    progress: &mut Progress,
) -> Result<SnapshotSummary> {
    crate::connect::validate_path(&options.path).map_err(|reason| Error::BadPath {
        path: options.path.clone(),
        reason,
    })?;
    let started = Instant::now();
    let out_path = &options.out;
    if !options.force && out_path.exists() {
        return Err(Error::Usage(format!(
            "{} exists: give --force to replace it, or another --out",
            out_path.display()
        )));
    }
    let (temp, writer) = start_file(side, options)?;
    let (root, visitor) = walk_into(side, options, writer, progress).await?;
    let lacks = visitor.unreadable + visitor.acl_redacted;
    if lacks > 0 && !options.allow_incomplete {
        // The temporary file goes with `temp`: nothing is written.
        return Err(Error::Incomplete {
            what: format!("snapshot of {} on {}", options.path, side.describe()),
            unreadable: visitor.unreadable,
            acl_redacted: visitor.acl_redacted,
            first: visitor.lacking.clone(),
            advice: "give credentials that can read them (--auth-file or ZKPARITY_SOURCE_AUTH), or --allow-incomplete to keep a snapshot that lacks them".into(),
        });
    }
    let mut writer = visitor.out;
    let trailer = Trailer {
        nodes: root.nodes,
        ephemerals: root.ephemerals,
        unreadable: root.unreadable,
        bytes: root.bytes,
        checksum: hex::encode(root.checksum),
        acl_fingerprint: hex::encode(root.acl_fingerprint),
        records: visitor.records,
        sha256: hex::encode(writer.sha.clone().finalize()),
    };
    writer
        .line(&Line {
            end: Some(trailer.clone()),
            ..Line::default()
        })
        .map_err(|e| io_error(out_path, e))?;
    writer.out.finish().map_err(|e| io_error(out_path, e))?;
    let file_bytes = temp
        .as_file()
        .metadata()
        .map(|m| m.len())
        .map_err(|e| io_error(out_path, e))?;
    if options.force {
        temp.commit()
    } else {
        temp.commit_new()
    }
    .map_err(|e| io_error(out_path, e))?;
    Ok(SnapshotSummary {
        file: out_path.display().to_string(),
        path: options.path.clone(),
        records: trailer.records,
        nodes: trailer.nodes,
        ephemerals: trailer.ephemerals,
        unreadable: trailer.unreadable,
        acl_redacted: visitor.acl_redacted,
        bytes: trailer.bytes,
        checksum: trailer.checksum,
        acl_fingerprint: trailer.acl_fingerprint,
        file_bytes,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}
