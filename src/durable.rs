//! Files that appear under their name only once complete, and stay there
//! after a crash once they have.
//!
//! A [`PendingFile`] is a temporary file in the target's directory (so the
//! rename never crosses a file system), named `.<name>.XXXXXX.tmp`. Its
//! [`commit`](PendingFile::commit) fsyncs it, renames it over the target,
//! then fsyncs the directory: the rename lives in the directory, and without
//! that a crash can bring the old file back. Readers see the old content or
//! the new, never a mix.
//!
//! Until committed, dropping it removes the temporary file: an error, a task
//! dropped by a stopping signal, or a panic leaves nothing behind. Only a
//! process killed outright leaves a `.tmp` file.
//!
//! A journal, which must show how far it got even when cut short, is
//! written in place instead ([`create_in_place`]) and made durable the same
//! way, file then directory ([`sync_in_place`]).

use std::ffi::OsString;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of files that hold node data or credentials in clear.
pub const PRIVATE: u32 = 0o600;
/// Mode of files the monitoring user (nagios, nrpe) reads.
pub(crate) const WORLD_READABLE: u32 = 0o644;

/// A file being written to replace `target`.
pub struct PendingFile {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
}

/// The directory a file goes in; `.` for a bare name.
fn dir_of(target: &Path) -> &Path {
    match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

impl PendingFile {
    /// Starts a file that will replace `target`, created with `mode` (less
    /// the umask).
    pub fn create(target: &Path, mode: u32) -> io::Result<PendingFile> {
        let Some(name) = target.file_name() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a file name",
            ));
        };
        let mut prefix = OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .permissions(Permissions::from_mode(mode))
            .tempfile_in(dir_of(target))?;
        Ok(PendingFile {
            temp,
            target: target.to_path_buf(),
        })
    }

    pub(crate) fn as_file(&self) -> &File {
        self.temp.as_file()
    }

    pub fn as_file_mut(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Puts the file in place of the target and makes that durable. Returns
    /// the open file, now under the target's name. On failure the temporary
    /// file is removed and the target left as it was.
    pub fn commit(self) -> io::Result<File> {
        self.temp.as_file().sync_all()?;
        let file = self.temp.persist(&self.target).map_err(|e| e.error)?;
        // Best effort: once renamed, the complete file is there under its
        // name; an error now (a directory that cannot be opened, say) would
        // make callers report "nothing written" about a file that was.
        let _ = sync_dir(&self.target);
        Ok(file)
    }
}

impl PendingFile {
    /// As [`commit`](PendingFile::commit), but refuses to replace a file
    /// that appeared under the target's name meanwhile.
    pub(crate) fn commit_new(self) -> io::Result<File> {
        self.temp.as_file().sync_all()?;
        let file = self
            .temp
            .persist_noclobber(&self.target)
            .map_err(|e| e.error)?;
        // Best effort, as in `commit`.
        let _ = sync_dir(&self.target);
        Ok(file)
    }
}

/// Makes the name `path` durable: a new file or a rename lives in its
/// directory.
fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(dir_of(path))?.sync_all()
}

/// Creates (or truncates) `path` with `mode`, to be written where it lies:
/// for a journal whose reader copes with an unfinished end, such as
/// repair's resume file. [`sync_in_place`] makes it durable.
pub(crate) fn create_in_place(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
}

/// Makes what was written to `file`, and its name `path`, durable: fsync
/// of the file, then of its directory.
pub(crate) fn sync_in_place(file: &File, path: &Path) -> io::Result<()> {
    file.sync_all()?;
    sync_dir(path)
}

/// Replaces `target` with `bytes` (see [`PendingFile`]). Blocking.
pub(crate) fn write(target: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut pending = PendingFile::create(target, mode)?;
    pending.as_file_mut().write_all(bytes)?;
    pending.commit().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_file_appears_under_its_name_only_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.json");
        std::fs::write(&target, "old").unwrap();
        let mut pending = PendingFile::create(&target, PRIVATE).unwrap();
        pending.as_file_mut().write_all(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        let temp = names(dir.path());
        assert_eq!(temp.len(), 2, "{temp:?}");
        assert!(
            temp[0].starts_with(".out.json.") && temp[0].ends_with(".tmp"),
            "{temp:?}"
        );
        pending.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(names(dir.path()), ["out.json"]);
    }

    #[test]
    fn the_file_has_the_mode_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [PRIVATE, WORLD_READABLE] {
            let target = dir.path().join(format!("f{mode:o}"));
            write(&target, b"x", mode).unwrap();
            let got = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
            // The umask can only take permissions away.
            assert_eq!(got & !mode, 0, "{got:o} for {mode:o}");
            assert_eq!(got & 0o600, 0o600, "{got:o}");
        }
        let private = dir.path().join(format!("f{PRIVATE:o}"));
        let got = std::fs::metadata(private).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, 0o600);
    }

    #[test]
    fn a_file_dropped_before_commit_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("never");
        let mut pending = PendingFile::create(&target, PRIVATE).unwrap();
        pending.as_file_mut().write_all(b"half").unwrap();
        drop(pending);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_failed_commit_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // A directory with something in it cannot be renamed over.
        let target = dir.path().join("blocked");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        assert!(write(&target, b"new", PRIVATE).is_err());
        assert_eq!(names(dir.path()), ["blocked"]);
        assert_eq!(std::fs::read_to_string(target.join("keep")).unwrap(), "x");
    }

    #[test]
    fn a_file_written_in_place_is_there_at_once_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        std::fs::write(&path, "old and longer").unwrap();
        let mut f = create_in_place(&path, PRIVATE).unwrap();
        f.write_all(b"new").unwrap();
        sync_in_place(&f, &path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names(dir.path()), ["journal"]);
        let fresh = dir.path().join("fresh");
        create_in_place(&fresh, PRIVATE).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_bare_name_goes_in_the_current_directory_and_a_path_without_one_is_refused() {
        assert_eq!(dir_of(Path::new("plan")), Path::new("."));
        assert_eq!(dir_of(Path::new("a/plan")), Path::new("a"));
        let e = PendingFile::create(Path::new("/"), PRIVATE).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
