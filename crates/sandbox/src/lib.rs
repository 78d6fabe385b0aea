//! Local ZooKeeper servers for `zkparity demo`, zkparity's integration tests
//! and its benchmark, and the trees written into them. Nothing here ships in
//! the product's library: only the `zkparity demo` command and the tests use
//! it.
//!
//! The servers are Debian's ZooKeeper 3.8.0 jars run directly by `java`, one
//! JVM per server, each in its own directory with its own `zoo.cfg`, on free
//! loopback ports. Neither the packaged init scripts nor containers are used:
//! they assume one system-wide server in `/etc/zookeeper/conf`, while tests
//! need many throwaway servers that start in well under a second and can be
//! killed and restarted on the same port and data.
//!
//! A map of the modules:
//!
//! - [`server`]: [`ZkServer`] (standalone) and [`Ensemble`] (a quorum):
//!   start, wait until serving, stop, kill, restart.
//! - [`config`]: [`ServerOptions`], the `zoo.cfg` and JVM flags each server
//!   gets, and where `java` and the jars are found.
//! - [`env`]: the environment variables naming `java` and the jars.
//! - [`release`]: the ZooKeeper releases a server can run (3.4.6, 3.6.3,
//!   Debian's 3.8.0, 3.9.3) and where each one's jars are.
//! - [`readiness`]: four-letter words and the checks that a server serves,
//!   and serves from our own directory; the server log's tail for errors.
//! - [`process`]: the watchdog that keeps any child process (a JVM, gmond,
//!   Nagios, an agent under test) from outliving its owner, and the exit hook.
//! - [`tempdir`]: temporary directories removed at exit, or swept by a later
//!   process when their owner was killed.
//! - [`ports`]: free loopback ports, never handed out twice.
//! - [`kdc`]: a throwaway MIT Kerberos realm on loopback, for the SASL
//!   tests' servers and clients.
//! - [`seed`]: writes trees into servers started here (fixtures, benchmark
//!   trees).
//! - [`sample`]: the demo's sample migration, written into two servers.
//! - [`error`]: [`SandboxError`], why a server could not be set up or started.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub mod config;
pub mod env;
pub mod error;
pub mod kdc;
pub mod ports;
pub mod process;
pub mod readiness;
pub mod release;
pub mod sample;
pub mod seed;
pub mod server;
pub mod tempdir;

pub use config::{find_java, zookeeper_classpath, ServerOptions};
pub use error::SandboxError;
pub use ports::free_ports;
pub use process::{guarded_command, Guarded};
pub use readiness::{four_letter_word, parse_mode};
pub use release::Release;
pub use server::{Ensemble, ZkServer};

/// A poisoned lock still guards valid bookkeeping: the panicking thread only
/// pushed or removed whole entries.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Like `lock`, but gives up after a while: at exit, a thread that holds the
/// lock may never run again.
pub(crate) fn lock_at_exit<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}
