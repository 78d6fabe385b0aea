//! Finding a data directory's files: `snapshot.<zxid>` (with `.gz` or
//! `.snappy` when compressed) and `log.<zxid>`, named by a zxid in hex,
//! under `version-2` of the `dataDir` and `dataLogDir` a server's zoo.cfg
//! names, or of a directory given directly. Other files (epochs, locks, a
//! `myid`) are not read.

use std::path::{Path, PathBuf};

use super::jute::Limits;
use crate::error::{Error, Result};

/// Longest zoo.cfg read: a server's configuration is a few lines, so a
/// longer file is not one, and is not read whole.
pub(crate) const MAX_CONFIG: u64 = 1 << 20;

/// The first [`MAX_CONFIG`] bytes of `path`, and whether that was all.
pub(crate) fn read_config(path: &Path) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG + 1)
        .read_to_end(&mut bytes)?;
    let whole = bytes.len() as u64 <= MAX_CONFIG;
    bytes.truncate(MAX_CONFIG as usize);
    Ok((bytes, whole))
}

#[derive(Clone, Debug)]
pub(crate) struct Snap {
    pub path: PathBuf,
    pub zxid: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct Log {
    pub path: PathBuf,
    /// The first zxid the log holds.
    pub zxid: i64,
}

pub(crate) struct Files {
    /// What the operator named.
    pub root: PathBuf,
    /// Newest first.
    pub snapshots: Vec<Snap>,
    /// Oldest first.
    pub logs: Vec<Log>,
    /// A snapshot file given alone: no logs, no fallback.
    pub single: bool,
    /// What the files are held to.
    pub limits: Limits,
}

impl Files {
    /// The logs to replay after a snapshot at `zxid`: the last one that
    /// starts at or before it, and every later one.
    pub(crate) fn logs_after(&self, zxid: i64) -> Vec<Log> {
        let first = self.logs.iter().rposition(|l| l.zxid <= zxid).unwrap_or(0);
        self.logs[first..].to_vec()
    }
}

fn zxid_of(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    let hex = hex
        .strip_suffix(".gz")
        .or_else(|| hex.strip_suffix(".snappy"))
        .unwrap_or(hex);
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

/// Whether the text looks like a ZooKeeper server configuration.
pub(crate) fn looks_like_zoo_cfg(text: &str) -> bool {
    text.lines().any(|l| config_value(l, "dataDir").is_some())
}

fn config_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (k, v) = line.split_once('=')?;
    (k.trim() == key).then(|| v.trim())
}

fn version2(dir: &Path) -> PathBuf {
    let v = dir.join("version-2");
    if v.is_dir() {
        v
    } else {
        dir.to_path_buf()
    }
}

fn not_found(path: &Path, reason: String) -> Error {
    Error::DataDir {
        path: path.to_path_buf(),
        offset: None,
        reason,
    }
}

/// The snapshots and logs that `path` stands for.
pub(crate) fn find(path: &Path) -> Result<Files> {
    let io = |e: std::io::Error| not_found(path, format!("cannot be read: {e}"));
    let meta = std::fs::metadata(path).map_err(io)?;
    let mut cfg_limits = None;
    let (snap_dir, log_dir) = if meta.is_dir() {
        let d = version2(path);
        (d.clone(), d)
    } else {
        let mut head = vec![0u8; 8];
        let n = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .map_err(io)?;
        if super::Packing::sniff(&head[..n]).is_some() {
            let zxid = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| zxid_of(n, "snapshot."))
                .unwrap_or(0);
            return Ok(Files {
                root: path.to_path_buf(),
                snapshots: vec![Snap {
                    path: path.to_path_buf(),
                    zxid,
                }],
                logs: Vec::new(),
                single: true,
                limits: limits(path, None)?,
            });
        }
        let (bytes, whole) = read_config(path).map_err(io)?;
        if !whole {
            return Err(not_found(
                path,
                format!("longer than {MAX_CONFIG} bytes: not a zoo.cfg"),
            ));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let dir_of = |key: &str| {
            text.lines().find_map(|l| config_value(l, key)).map(|v| {
                let p = PathBuf::from(v);
                if p.is_absolute() {
                    p
                } else {
                    path.parent().unwrap_or(Path::new(".")).join(p)
                }
            })
        };
        let data = dir_of("dataDir")
            .ok_or_else(|| not_found(path, "no dataDir in this configuration".into()))?;
        let logs = dir_of("dataLogDir").unwrap_or_else(|| data.clone());
        cfg_limits = Some(limits(path, Some(&text))?);
        (version2(&data), version2(&logs))
    };
    let list = |dir: &Path| -> Result<Vec<(String, PathBuf)>> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| not_found(dir, format!("cannot be listed: {e}")))?;
        Ok(entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
            .collect())
    };
    let mut snapshots: Vec<Snap> = list(&snap_dir)?
        .into_iter()
        .filter_map(|(name, path)| zxid_of(&name, "snapshot.").map(|zxid| Snap { path, zxid }))
        .collect();
    snapshots.sort_by_key(|s| std::cmp::Reverse(s.zxid));
    let mut logs: Vec<Log> = list(&log_dir)?
        .into_iter()
        .filter_map(|(name, path)| zxid_of(&name, "log.").map(|zxid| Log { path, zxid }))
        .collect();
    logs.sort_by_key(|l| l.zxid);
    if snapshots.is_empty() && logs.is_empty() {
        return Err(not_found(
            path,
            format!(
                "no ZooKeeper snapshots or logs in {} (give the server's dataDir, its version-2, its zoo.cfg, or a snapshot file)",
                snap_dir.display()
            ),
        ));
    }
    Ok(Files {
        root: path.to_path_buf(),
        snapshots,
        logs,
        single: false,
        limits: match cfg_limits {
            Some(l) => l,
            None => limits(path, None)?,
        },
    })
}

/// The `jute.maxbuffer` the files were written under: a zoo.cfg's
/// `jute.maxbuffer` line, else the environment's
/// [`JUTE_MAXBUFFER_ENV`](super::JUTE_MAXBUFFER_ENV), else ZooKeeper's
/// default.
fn limits(path: &Path, cfg: Option<&str>) -> Result<Limits> {
    let from_cfg = cfg.and_then(|t| t.lines().find_map(|l| config_value(l, "jute.maxbuffer")));
    let (value, said_by) = match from_cfg {
        Some(v) => (
            Some(v.to_string()),
            format!("jute.maxbuffer in {}", path.display()),
        ),
        None => (
            std::env::var(super::JUTE_MAXBUFFER_ENV).ok(),
            super::JUTE_MAXBUFFER_ENV.to_string(),
        ),
    };
    let maxbuffer = match value {
        None => super::jute::DEFAULT_MAXBUFFER,
        Some(v) => parse_size(&v).ok_or_else(|| {
            Error::Usage(format!(
                "{said_by}: {v:?} is not a size in bytes (a positive integer, decimal or 0x hex, as Java reads it)"
            ))
        })?,
    };
    Ok(Limits { maxbuffer })
}

/// The limits the environment sets (or ZooKeeper's defaults).
pub(crate) fn env_limits() -> Result<Limits> {
    limits(Path::new(""), None)
}

/// An integer as Java's `Integer.decode` reads one, positive.
fn parse_size(v: &str) -> Option<usize> {
    let v = v.trim();
    let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        i32::from_str_radix(h, 16).ok()?
    } else if let Some(h) = v.strip_prefix('#') {
        i32::from_str_radix(h, 16).ok()?
    } else {
        v.parse::<i32>().ok()?
    };
    (n > 0).then_some(n as usize)
}
