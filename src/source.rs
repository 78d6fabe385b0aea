//! Where one side of a comparison comes from: a live ensemble, a zkparity
//! snapshot file, or a zktreeutil XML file, told apart here from what the
//! command line gave. The walk reads all three the same way, through
//! [`ReadNodes`], a batch of paths at a time.

use std::path::{Path, PathBuf};

use crate::connect::EnsembleSpec;
use crate::error::{Error, Result};
use crate::exclude;
use crate::snapshot::SnapshotFile;
use crate::tree::{EphemeralPolicy, ReadNodes, Reader, ReaderOptions, SideNode, WalkOptions};
use crate::zktreeutil::XmlTree;

/// One side as given on the command line.
#[derive(Clone, Debug)]
pub enum SideSpec {
    Live(EnsembleSpec),
    /// A snapshot or zktreeutil file, told apart by its content.
    File {
        side: String,
        path: PathBuf,
    },
}

impl SideSpec {
    /// A side given as `CONNECT` or as the name of an existing file. A
    /// value naming a file is read as a file; anything else must be a
    /// connect string.
    pub fn is_file(value: &str) -> bool {
        Path::new(value).is_file()
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            SideSpec::Live(spec) => spec.connect.to_string(),
            SideSpec::File { path, .. } => path.display().to_string(),
        }
    }

    pub(crate) fn live(&self) -> Option<&EnsembleSpec> {
        match self {
            SideSpec::Live(spec) => Some(spec),
            SideSpec::File { .. } => None,
        }
    }
}

/// What kind of file a side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Snapshot,
    Zktreeutil,
}

/// Looks at the first bytes: gzip or `{` is a snapshot, `<` is XML.
pub(crate) fn sniff(path: &Path) -> Result<FileKind> {
    use std::io::Read;
    let bad = |reason: String| Error::BadFile {
        file: path.to_path_buf(),
        line: 1,
        reason,
    };
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| Error::Io {
            context: format!("reading {}", path.display()),
            source: e,
        })?;
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(FileKind::Snapshot);
    }
    // XML may open with a byte-order mark.
    let head = head.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(head);
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(FileKind::Snapshot),
        Some(b'<') => Ok(FileKind::Zktreeutil),
        None => Err(bad("the file is empty".into())),
        Some(_) => Err(bad(
            "neither a zkparity snapshot (JSON lines, optionally gzip) nor zktreeutil XML".into(),
        )),
    }
}

/// An opened side.
// A run opens two of these at most: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Source {
    Live(Reader),
    Snapshot(SnapshotFile),
    Zktreeutil(XmlTree),
}

impl Source {
    /// Opens a side; `options.read_acls` off leaves ACLs out (see
    /// [`Source::has_acls`]).
    pub async fn open(spec: &SideSpec, options: &ReaderOptions) -> Result<Source> {
        match spec {
            SideSpec::Live(e) => Ok(Source::Live(Reader::open(e, options).await?)),
            SideSpec::File { side, path } => {
                let (side, path, options) = (side.clone(), path.clone(), options.clone());
                // Indexing a large file is blocking work.
                tokio::task::spawn_blocking(move || match sniff(&path)? {
                    FileKind::Snapshot => SnapshotFile::open(&path, &options).map(Source::Snapshot),
                    FileKind::Zktreeutil => {
                        XmlTree::open(&path, &side, &options).map(Source::Zktreeutil)
                    }
                })
                .await
                .map_err(|source| Error::TaskFailed {
                    task: format!("opening {}", spec.describe()),
                    source,
                })?
            }
        }
    }

    /// False for a side that holds no ACLs: the comparison then reads none
    /// on either side.
    pub(crate) fn has_acls(spec: &SideSpec) -> Result<bool> {
        Ok(match spec {
            SideSpec::Live(_) => true,
            SideSpec::File { path, .. } => sniff(path)? == FileKind::Snapshot,
        })
    }

    /// Exclude patterns the file itself brings: zktreeutil's `ignore` marks,
    /// or what a snapshot left out when it was taken (it can say nothing
    /// about those paths).
    pub(crate) fn exclude_patterns(&self) -> Vec<String> {
        match self {
            Source::Live(_) => Vec::new(),
            Source::Snapshot(s) => s.header().excludes.clone(),
            Source::Zktreeutil(x) => x.ignored().iter().map(|p| exclude::escape(p)).collect(),
        }
    }

    /// `walk` with the exclude patterns of `sides` added, once `path` is
    /// known to lie within what each snapshot side holds (`command` names
    /// the command in the message if not).
    pub fn walk_options(
        walk: &WalkOptions,
        path: &str,
        sides: &[&Source],
        command: &str,
    ) -> Result<WalkOptions> {
        let mut walk = walk.clone();
        let mut patterns = walk.excludes.patterns().to_vec();
        let before = patterns.len();
        for side in sides {
            if let Source::Snapshot(snap) = side {
                if snap.header().ephemerals == "skip" && walk.ephemerals == EphemeralPolicy::Compare
                {
                    return Err(Error::Usage(format!(
                        "the snapshot was taken with --ephemerals skip and holds none: {command} it with --ephemerals skip or count"
                    )));
                }
                if !snap.holds(path) {
                    let root = &snap.header().path;
                    return Err(Error::Usage(format!(
                        "the snapshot holds {root} only: {command} --path {root} or a path below it"
                    )));
                }
            }
            for p in side.exclude_patterns() {
                if !patterns.contains(&p) {
                    patterns.push(p);
                }
            }
        }
        if patterns.len() > before {
            walk.excludes = exclude::Excludes::new(&patterns)?;
        }
        Ok(walk)
    }

    /// Read operations (live) or records read (files) so far.
    pub(crate) fn reads(&self) -> u64 {
        match self {
            Source::Live(r) => r.reads(),
            Source::Snapshot(s) => s.reads(),
            Source::Zktreeutil(x) => x.reads(),
        }
    }

    /// The latency limit's window of a live side, if it has one.
    pub(crate) fn throttle(&self) -> Option<&crate::throttle::Throttle> {
        match self {
            Source::Live(r) => r.throttle(),
            _ => None,
        }
    }

    pub(crate) fn file_kind(&self) -> Option<FileKind> {
        match self {
            Source::Live(_) => None,
            Source::Snapshot(_) => Some(FileKind::Snapshot),
            Source::Zktreeutil(_) => Some(FileKind::Zktreeutil),
        }
    }

    pub async fn close(self) {
        if let Source::Live(r) = self {
            r.close().await;
        }
    }
}

impl ReadNodes for Source {
    async fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
        match self {
            Source::Live(r) => r.read_nodes(paths, names).await,
            Source::Snapshot(s) => s.read_nodes(paths, names),
            Source::Zktreeutil(x) => Ok(x.read_nodes(paths, names)),
        }
    }
}
