//! Where one side of a comparison comes from: a live ensemble, a zkparity
//! snapshot file, a zktreeutil XML file, or a ZooKeeper server's own files
//! (its data directory, zoo.cfg or a `snapshot.<zxid>`), told apart here
//! from what the command line gave. The walk reads them all the same way,
//! through [`ReadNodes`], a batch of paths at a time.

use std::path::{Path, PathBuf};

use crate::connect::EnsembleSpec;
use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::exclude;
use crate::snapshot::SnapshotFile;
use crate::tree::{EphemeralPolicy, ReadNodes, Reader, ReaderOptions, SideNode, WalkOptions};
use crate::zktreeutil::XmlTree;

/// One side as given on the command line.
#[derive(Clone, Debug)]
pub enum SideSpec {
    Live(EnsembleSpec),
    /// A file or directory, told apart by its content: a zkparity
    /// snapshot, zktreeutil XML, or ZooKeeper's own files.
    File {
        side: String,
        path: PathBuf,
        /// Where a ZooKeeper data directory is to stand (its last whole
        /// transaction if `None`).
        at_zxid: Option<i64>,
    },
}

impl SideSpec {
    /// A side given as `CONNECT` or as the name of an existing file or
    /// directory. A value naming one is read as such; anything else must
    /// be a connect string.
    pub fn is_file(value: &str) -> bool {
        let p = Path::new(value);
        p.is_file() || p.is_dir()
    }

    /// A file side named by `value`.
    pub fn file(side: &str, value: &str, at_zxid: Option<i64>) -> SideSpec {
        SideSpec::File {
            side: side.to_string(),
            path: PathBuf::from(value),
            at_zxid,
        }
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
    /// A ZooKeeper data directory, zoo.cfg or `snapshot.<zxid>`.
    Zookeeper,
}

/// Looks at the first bytes: a directory, ZooKeeper's snapshot magic
/// (plain, gzip or snappy) or a zoo.cfg are ZooKeeper's files; gzip or `{`
/// is a zkparity snapshot, `<` is XML.
pub(crate) fn sniff(path: &Path) -> Result<FileKind> {
    if path.is_dir() {
        return Ok(FileKind::Zookeeper);
    }
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
        // Both ZooKeeper and zkparity snapshots may be gzip: look inside.
        let mut inner = [0u8; 4];
        let got = std::fs::File::open(path)
            .map(|f| flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f)))
            .and_then(|mut d| d.read(&mut inner))
            .unwrap_or(0);
        if inner[..got].starts_with(b"ZKSN") {
            return Ok(FileKind::Zookeeper);
        }
        return Ok(FileKind::Snapshot);
    }
    if crate::datadir::Packing::sniff(head).is_some() {
        return Ok(FileKind::Zookeeper);
    }
    // XML may open with a byte-order mark.
    let head = head.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(head);
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(FileKind::Snapshot),
        Some(b'<') => Ok(FileKind::Zktreeutil),
        None => Err(bad("the file is empty".into())),
        Some(_)
            if crate::datadir::read_config(path).is_ok_and(|(bytes, whole)| {
                whole && crate::datadir::looks_like_zoo_cfg(&String::from_utf8_lossy(&bytes))
            }) =>
        {
            Ok(FileKind::Zookeeper)
        }
        Some(_) => Err(bad(
            "neither a zkparity snapshot (JSON lines, optionally gzip), zktreeutil XML, a ZooKeeper snapshot nor a zoo.cfg".into(),
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
    Zookeeper(DataDir),
}

impl Source {
    /// Opens a side; `options.read_acls` off leaves ACLs out (see
    /// [`Source::has_acls`]).
    pub async fn open(spec: &SideSpec, options: &ReaderOptions) -> Result<Source> {
        match spec {
            SideSpec::Live(e) => Ok(Source::Live(Reader::open(e, options).await?)),
            SideSpec::File {
                side,
                path,
                at_zxid,
            } => {
                let (side, path, options) = (side.clone(), path.clone(), options.clone());
                let at_zxid = *at_zxid;
                // Indexing a large file is blocking work.
                tokio::task::spawn_blocking(move || {
                    let kind = sniff(&path)?;
                    if at_zxid.is_some() && kind != FileKind::Zookeeper {
                        return Err(Error::Usage(format!(
                            "--at-zxid applies to a ZooKeeper data directory or snapshot; {} is not one",
                            path.display()
                        )));
                    }
                    match kind {
                        FileKind::Snapshot => {
                            SnapshotFile::open(&path, &options).map(Source::Snapshot)
                        }
                        FileKind::Zktreeutil => {
                            XmlTree::open(&path, &side, &options).map(Source::Zktreeutil)
                        }
                        FileKind::Zookeeper => {
                            DataDir::open(&path, at_zxid, &options).map(Source::Zookeeper)
                        }
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

    /// What kind of file a side is; `None` for a live ensemble.
    pub(crate) fn kind_of(spec: &SideSpec) -> Result<Option<FileKind>> {
        match spec {
            SideSpec::Live(_) => Ok(None),
            SideSpec::File { path, .. } => sniff(path).map(Some),
        }
    }

    /// False for a side that holds no ACLs (a zktreeutil file): the
    /// comparison then reads none on either side.
    pub(crate) fn has_acls(kind: Option<FileKind>) -> bool {
        kind != Some(FileKind::Zktreeutil)
    }

    /// Exclude patterns the file itself brings: zktreeutil's `ignore` marks,
    /// or what a snapshot left out when it was taken (it can say nothing
    /// about those paths).
    pub(crate) fn exclude_patterns(&self) -> Vec<String> {
        match self {
            Source::Live(_) => Vec::new(),
            Source::Snapshot(s) => s.header().excludes.clone(),
            Source::Zktreeutil(x) => x.ignored().iter().map(|p| exclude::escape(p)).collect(),
            Source::Zookeeper(_) => Vec::new(),
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
            Source::Zookeeper(d) => d.reads(),
        }
    }

    /// Syncs a live side's sessions on `path`, so what it reads next is at
    /// least as new as now; files do not change.
    pub(crate) async fn sync(&self, path: &str) -> Result<()> {
        match self {
            Source::Live(r) => r.sync(path).await,
            _ => Ok(()),
        }
    }

    /// Where a live side's reads went.
    pub(crate) fn read_servers(&self) -> Option<crate::placement::ReadServers> {
        match self {
            Source::Live(r) => Some(r.read_servers()),
            _ => None,
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
            Source::Zookeeper(_) => Some(FileKind::Zookeeper),
        }
    }

    /// Where a ZooKeeper data directory side stands.
    pub fn position(&self) -> Option<&crate::datadir::Position> {
        match self {
            Source::Zookeeper(d) => Some(d.position()),
            _ => None,
        }
    }

    /// What the operator should know of how this side was read: a data
    /// directory's warnings, container and TTL nodes read as persistent, a
    /// choice of servers that fell back to the leader.
    pub(crate) fn notes(&self, side: &str) -> Vec<String> {
        if let Source::Live(r) = self {
            let note = r.read_servers().note;
            return note.map(|n| format!("{side}: {n}")).into_iter().collect();
        }
        let Source::Zookeeper(d) = self else {
            return Vec::new();
        };
        let p = d.position();
        let snapshot = p
            .snapshot
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|_| p.snapshot_zxid > 0 || p.snapshot.is_file())
            .unwrap_or_else(|| "the empty tree".into());
        let mut notes = vec![format!(
            "{side}: read {snapshot} and {} log{} ({} transaction{} replayed), to zxid {:#x}",
            p.logs.len(),
            if p.logs.len() == 1 { "" } else { "s" },
            p.applied,
            if p.applied == 1 { "" } else { "s" },
            p.zxid
        )];
        notes.extend(p.warnings.iter().map(|w| format!("{side}: {w}")));
        let n = d.read_as_persistent();
        if n > 0 {
            notes.push(format!(
                "{side}: {n} container or TTL node{} compared as persistent: the other side cannot tell them apart",
                if n == 1 { "" } else { "s" }
            ));
        }
        notes
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
            Source::Zookeeper(d) => ReadNodes::read_nodes(d, paths, names).await,
        }
    }
}
