//! Temporary directories for servers and guarded processes. Each is named
//! `{TEMP_PREFIX}{owner pid}-…`, removed when its user drops it or at exit,
//! and, should the owner be SIGKILLed (no exit hook runs), by the watchdog or
//! by the next process that makes one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::SandboxError;
use crate::{lock, lock_at_exit};

/// Temporary directories made by this process and not yet removed.
static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
static EXIT_HOOK: Once = Once::new();

/// Every temporary directory is named `{TEMP_PREFIX}{owner pid}-…`, so a later
/// process can tell whose it was.
const TEMP_PREFIX: &str = "zkparity-sandbox-";

/// A fresh directory under the system temp dir, removed at exit if still
/// there; `label` ends its name.
pub fn make_temp_dir(label: &str) -> Result<PathBuf, SandboxError> {
    ensure_exit_hook();
    let base = std::env::temp_dir();
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!(
            "{TEMP_PREFIX}{}-{n}-{nanos}-{label}",
            std::process::id()
        ));
        let mut dirs = lock(&TEMP_DIRS);
        match fs::create_dir(&dir) {
            Ok(()) => {
                dirs.push(dir.clone());
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(SandboxError::io(&dir, e)),
        }
    }
}

/// Removes a directory made by [`make_temp_dir`] now.
pub fn remove_temp_dir(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    lock(&TEMP_DIRS).retain(|d| d != dir);
}

/// Registers the exit hook that removes the directories still registered,
/// once per process, and sweeps what killed processes left behind. The
/// guarded children's hook (see [`crate::process`]) is registered after
/// this one, so it runs before it: the processes that may write into the
/// directories are gone when they are removed.
pub(crate) fn ensure_exit_hook() {
    EXIT_HOOK.call_once(|| {
        // SAFETY: registering a plain extern "C" function that never unwinds.
        unsafe {
            libc::atexit(remove_all_at_exit);
        }
        sweep_stale_temp_dirs(&std::env::temp_dir());
    });
}

extern "C" fn remove_all_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(dirs) = lock_at_exit(&TEMP_DIRS) {
            for dir in dirs.iter() {
                let _ = fs::remove_dir_all(dir);
            }
        }
    });
}

/// Removes the temporary directories of earlier processes that died without
/// cleaning up (SIGKILL runs no exit hook). Their JVMs are gone already: the
/// watchdog kills them within half a second of their owner's death.
pub(crate) fn sweep_stale_temp_dirs(base: &Path) {
    // Without /proc a live owner cannot be told from a dead one.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_are_unique_and_removed() {
        let a = make_temp_dir("unit").expect("dir");
        let b = make_temp_dir("unit").expect("dir");
        assert_ne!(a, b);
        assert!(a.is_dir() && b.is_dir());
        remove_temp_dir(&a);
        remove_temp_dir(&b);
        assert!(!a.exists() && !b.exists());
        assert!(!lock(&TEMP_DIRS).contains(&a));
    }

    #[test]
    fn stale_temp_dirs_of_dead_owners_are_swept() {
        let base = tempfile::tempdir().expect("tempdir");
        // pid_max is at most 2^22, so this owner cannot exist.
        let dead = base.path().join(format!("{TEMP_PREFIX}99999999-0-1-s1"));
        let mine = base
            .path()
            .join(format!("{TEMP_PREFIX}{}-0-1-s1", std::process::id()));
        let other = base.path().join("zkparity-something-else");
        for d in [&dead, &mine, &other] {
            fs::create_dir_all(d.join("data")).expect("mkdir");
        }
        sweep_stale_temp_dirs(base.path());
        assert!(!dead.exists());
        assert!(mine.exists() && other.exists());
    }
}
