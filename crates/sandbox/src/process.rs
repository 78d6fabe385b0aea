//! Child processes that cannot outlive their owner.
//!
//! No JVM, no other server a test starts (gmond, Nagios, an agent under
//! test) and no temporary directory may outlive the process that started
//! them, even when that process is SIGKILLed or is a test binary (which never
//! drops its statics). Three layers take care of that:
//! - each child is `exec`ed by a tiny `sh` wrapper that first forks a
//!   watchdog; within about half a second of the owner's death (or its
//!   becoming a zombie) the watchdog SIGKILLs the child and removes its
//!   clean-up directory. The child keeps the wrapper's PID, so signals sent to
//!   [`Guarded::id`] reach the child itself;
//! - an `atexit` hook SIGKILLs every child still registered, and the
//!   temporary directories' own hook, which runs after it, removes them (see
//!   [`crate::tempdir`]), so a normal exit cleans up at once;
//! - `Drop` of a [`Guarded`] kills and reaps its child.
//!
//! Each child leads its own process group (child + watchdog), so a
//! terminal's Ctrl-C reaches only the owner, and the group can be signalled
//! as a whole.

use std::ffi::OsStr;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::tempdir;
use crate::{lock, lock_at_exit};

/// The wrapper every guarded child is started through:
/// `sh -c WATCHDOG_SH name OWNER_PID CLEANUP_DIR PROGRAM ARGS…`.
///
/// The subshell is forked before `exec`, so inside it `$$` is the child's PID.
/// Processes are identified by PID *and* start time (field 22 of
/// `/proc/PID/stat`), so a reused PID is never taken for the owner nor
/// killed as the child. A zombie owner counts as dead: its parent may not have
/// reaped it yet. After killing the child it removes CLEANUP_DIR (if not
/// empty) once the child is gone: an owner killed by SIGKILL runs no exit hook
/// and would leave it behind. Without /proc it falls back to `kill -0`.
const WATCHDOG_SH: &str = r#"owner=$1; dir=$2; shift 2
(
  probe() {
    read -r s < "/proc/$1/stat" || return 1
    set -- ${s##*") "}
    case $1 in Z|X|x) return 1;; esac
    start=${20}
  }
  if [ -r /proc/self/stat ]; then
    owner_start=; probe "$owner" && owner_start=$start
    self_start=; probe $$ && self_start=$start
    alive() { probe "$1" && [ "$start" = "$2" ]; }
  else
    alive() { kill -0 "$1"; }
  fi
  while alive $$ "$self_start"; do
    if ! alive "$owner" "$owner_start"; then
      kill -9 $$
      n=0
      while alive $$ "$self_start" && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
      [ -n "$dir" ] && rm -rf -- "$dir"
      exit 0
    fi
    sleep 0.5
  done
) </dev/null >/dev/null 2>&1 &
exec "$@"
"#;

/// PIDs (= process groups) of the guarded children started by this process
/// and not yet reaped.
static LIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static EXIT_HOOK: Once = Once::new();

/// A command that runs `program` under the watchdog of this process; add its
/// arguments, environment and stdio, then start it with [`Guarded::spawn`].
/// `cleanup_dir` (e.g. from [`crate::tempdir::make_temp_dir`]) is removed by
/// the watchdog once it has killed the child.
pub fn guarded_command(program: impl AsRef<OsStr>, cleanup_dir: Option<&Path>) -> Command {
    watched_command(std::process::id(), cleanup_dir, program.as_ref())
}

/// The `sh` command that starts `program` (arguments appended by the caller)
/// under the watchdog of `owner`.
pub(crate) fn watched_command(owner: u32, cleanup_dir: Option<&Path>, program: &OsStr) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(WATCHDOG_SH)
        .arg("zkparity-watchdog")
        .arg(owner.to_string())
        .arg(cleanup_dir.map_or(OsStr::new(""), Path::as_os_str))
        .arg(program)
        .stdin(Stdio::null())
        .process_group(0);
    cmd
}

/// A child process started by [`guarded_command`]: killed by the watchdog if
/// this process dies, by the exit hook at exit, and by `Drop`.
#[derive(Debug)]
pub struct Guarded {
    child: Child,
    /// Once reaped, the PID may belong to another process: nothing is
    /// signalled any more.
    reaped: bool,
}

impl Guarded {
    /// Starts `cmd` (made by [`guarded_command`]) and registers the child
    /// with the exit hook.
    pub fn spawn(cmd: &mut Command) -> io::Result<Guarded> {
        ensure_exit_hook();
        // Registered under the lock, so the exit hook cannot miss a child
        // that is being started.
        let mut live = lock(&LIVE);
        let child = cmd.spawn()?;
        live.push(child.id() as i32);
        Ok(Guarded {
            child,
            reaped: false,
        })
    }

    /// The child's stdout, when it was piped; once.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// The child's PID (also its process group's ID).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the child alone, not to its watchdog.
    pub fn signal(&self, sig: libc::c_int) -> io::Result<()> {
        if self.reaped {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("process {} has exited already", self.id()),
            ));
        }
        // SAFETY: kill(2) on our own child, not yet reaped, so its PID is
        // still its own.
        if unsafe { libc::kill(self.id() as i32, sig) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The exit status if the child has exited (reaping it), `None` while it
    /// runs.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let status = self.child.try_wait();
        match &status {
            Ok(None) => {}
            // An error means there is nothing left to wait for.
            Ok(Some(_)) | Err(_) => self.forget(),
        }
        status
    }

    /// Whether the child still runs (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_wait(), Ok(None))
    }

    /// Waits for the child to exit.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait();
        self.forget();
        status
    }

    /// SIGTERM to the group without waiting, so several children stop in
    /// parallel.
    pub fn terminate(&self) {
        if !self.reaped {
            signal_group(self.id() as i32, libc::SIGTERM);
        }
    }

    /// SIGTERM to the group, then SIGKILL after `grace`; returns once the
    /// child is reaped.
    pub fn stop(&mut self, grace: Duration) {
        if self.reaped {
            return;
        }
        self.terminate();
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    signal_group(self.id() as i32, libc::SIGKILL);
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        self.forget();
    }

    /// SIGKILL to the group now; returns once the child is reaped.
    pub fn kill(&mut self) {
        if self.reaped {
            return;
        }
        signal_group(self.id() as i32, libc::SIGKILL);
        let _ = self.child.wait();
        self.forget();
    }

    fn forget(&mut self) {
        if !self.reaped {
            self.reaped = true;
            let pid = self.id() as i32;
            lock(&LIVE).retain(|&p| p != pid);
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Registers the exit hook once per process. The temporary directories'
/// hook goes first: `atexit` runs hooks last registered first, so the
/// children are killed and reaped before the directories they may be
/// writing into are removed.
fn ensure_exit_hook() {
    EXIT_HOOK.call_once(|| {
        tempdir::ensure_exit_hook();
        // SAFETY: registering a plain extern "C" function that never unwinds.
        unsafe {
            libc::atexit(cleanup_at_exit);
        }
    });
}

extern "C" fn cleanup_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let pids: Vec<i32> = lock_at_exit(&LIVE).map(|g| g.clone()).unwrap_or_default();
        for &pid in &pids {
            signal_group(pid, libc::SIGKILL);
        }
        // Reap them, so no file is still being written when the
        // temporary directories' hook runs next.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut left = pids;
        while !left.is_empty() && Instant::now() < deadline {
            left.retain(|&pid| {
                // SAFETY: waitpid on our own child with WNOHANG.
                let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
                r == 0
            });
            if !left.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
}

/// Signals a child's process group (child + watchdog); only valid while the
/// child is not yet reaped, since until then its PID cannot be reused.
fn signal_group(pid: i32, sig: libc::c_int) {
    // SAFETY: plain kill(2) calls.
    unsafe {
        if libc::kill(-pid, sig) != 0 {
            libc::kill(pid, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn process_gone(pid: u32) -> bool {
        // A zombie counts as gone: it only waits for its parent to reap it.
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }

    fn group_has_no_live_member(pgid: i32) -> bool {
        let Ok(entries) = fs::read_dir("/proc") else {
            return true;
        };
        !entries.flatten().any(|e| {
            let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            stat.rsplit_once(") ").is_some_and(|(_, rest)| {
                let f: Vec<&str> = rest.split_whitespace().collect();
                f.len() > 2 && f[0] != "Z" && f[2] == pgid.to_string()
            })
        })
    }

    #[test]
    fn watchdog_kills_its_process_when_the_owner_dies() {
        // A stand-in owner that we can kill; the real owner is this test binary.
        let base = tempfile::tempdir().expect("tempdir");
        let cleanup = base.path().join("server");
        fs::create_dir_all(cleanup.join("data")).expect("mkdir");
        let mut owner = Command::new("sleep").arg("30").spawn().expect("owner");
        let mut watched = watched_command(owner.id(), Some(&cleanup), OsStr::new("sleep"))
            .arg("30")
            .spawn()
            .expect("watched");
        std::thread::sleep(Duration::from_millis(300));
        assert!(watched.try_wait().expect("try_wait").is_none());
        // Killed but not reaped: a zombie owner must count as dead.
        owner.kill().expect("kill owner");
        let t = Instant::now();
        let status = loop {
            if let Some(s) = watched.try_wait().expect("try_wait") {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(3), "watchdog did not act");
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let t = Instant::now();
        while cleanup.exists() {
            assert!(t.elapsed() < Duration::from_secs(3), "dir not removed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = owner.wait();
    }

    #[test]
    fn watchdog_exits_with_its_process() {
        let owner = std::process::id();
        let mut watched = watched_command(owner, None, OsStr::new("true"))
            .spawn()
            .expect("watched");
        let pgid = watched.id() as i32;
        assert!(watched.wait().expect("wait").success());
        // The watchdog shares the group; it notices within one poll. (Its
        // zombie may linger until init reaps the orphan.)
        let t = Instant::now();
        while !group_has_no_live_member(pgid) {
            assert!(t.elapsed() < Duration::from_secs(3), "watchdog lingers");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(process_gone(pgid as u32));
    }

    #[test]
    fn a_guarded_child_is_killed_when_dropped_and_then_forgotten() {
        let mut cmd = guarded_command("sleep", None);
        cmd.arg("30");
        let child = Guarded::spawn(&mut cmd).expect("spawn");
        let pid = child.id();
        assert!(lock(&LIVE).contains(&(pid as i32)));
        assert!(child.signal(0).is_ok(), "a running child can be signalled");
        drop(child);
        assert!(process_gone(pid));
        assert!(!lock(&LIVE).contains(&(pid as i32)));
    }

    #[test]
    fn a_reaped_child_is_never_signalled() {
        let mut child = Guarded::spawn(&mut guarded_command("true", None)).expect("spawn");
        assert!(child.wait().expect("wait").success());
        assert!(!child.is_running());
        assert!(!lock(&LIVE).contains(&(child.id() as i32)));
        let err = child.signal(libc::SIGTERM).expect_err("reaped");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
