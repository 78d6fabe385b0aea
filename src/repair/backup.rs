//! The backup taken before a write's first change: a zkparity snapshot of
//! the target subtree about to be changed, so that a wrong repair or sync
//! can be undone with
//! `zkparity repair --source BACKUP --target T --apply --delete-extra`.
//!
//! It is an ordinary snapshot (`docs/snapshot.md`): mode 0600, written
//! under a temporary name and renamed into place only once complete, with
//! data, ACLs, kinds and stats (so counters restore too).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::capture::{take_snapshot, SnapshotOptions, SnapshotSummary};
use crate::compare::CompareOptions;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::source::SideSpec;

/// Where the backup of `target` goes in `dir`: named for the target's
/// first server and the time, so that backups never replace each other.
pub fn file_in(dir: &Path, target: &SideSpec) -> PathBuf {
    named_for(dir, "backup", target, "target")
}

/// A snapshot file in `dir` for `side`: `zkparity-KIND-SERVER-TIME-PID.zkps`,
/// named for the side's first server (`fallback` for a side with none) and
/// the time, so that runs never replace each other's files.
pub(crate) fn named_for(dir: &Path, kind: &str, side: &SideSpec, fallback: &str) -> PathBuf {
    let server = side
        .live()
        .and_then(|spec| spec.connect.hosts.first())
        .map(|(host, port)| format!("{host}_{port}"))
        .unwrap_or_else(|| fallback.into());
    let server: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let at = humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    dir.join(format!(
        "zkparity-{kind}-{server}-{at}-{}.zkps",
        std::process::id()
    ))
}

/// Takes the backup into `file`. `Ok(None)` when the subtree does not exist
/// (yet) on the target: there is nothing to lose.
pub async fn take(
    target: &SideSpec,
    options: &CompareOptions,
    file: &Path,
    progress: &mut Progress,
) -> Result<Option<SnapshotSummary>> {
    let snapshot = SnapshotOptions {
        path: options.path.clone(),
        walk: options.walk.clone(),
        reader: options.reader.clone(),
        out: file.to_path_buf(),
        compress: false,
        force: false,
        allow_incomplete: false,
    };
    match take_snapshot(target, &snapshot, progress).await {
        Ok(summary) => Ok(Some(summary)),
        Err(Error::RootMissing { .. }) => Ok(None),
        Err(Error::Incomplete {
            unreadable,
            acl_redacted,
            first,
            ..
        }) => Err(Error::Refused {
            reason: format!(
                "the backup of the target could not hold everything: {unreadable} node(s) unreadable and {acl_redacted} ACL(s) with digest ids hidden, e.g. {}",
                first.join(", ")
            ),
            fix: "give target credentials that can read them (with ADMIN for digest ACLs), or --no-backup to write without a backup".into(),
        }),
        Err(Error::Io { context, source }) => Err(Error::Refused {
            reason: format!("the backup could not be written ({context}: {source})"),
            fix: "give --backup-dir a directory this user can write, or --no-backup to write without a backup".into(),
        }),
        Err(e) => Err(e),
    }
}
