//! Free loopback ports. A port is picked before its server binds it, so
//! something else may take it in between (the servers retry on a fresh one);
//! this process at least never hands out the same port twice.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::SandboxError;
use crate::lock;

/// Ports recently handed out but perhaps not bound yet by their JVM, so that
/// two servers started at the same moment never get the same one.
static RECENT_PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// `n` distinct loopback ports that were free a moment ago and that nothing
/// answers on.
pub fn free_ports(n: usize) -> Result<Vec<u16>, SandboxError> {
    let mut recent = lock(&RECENT_PORTS);
    let max_tries = 20 * n + 20;
    let mut tries = 0;
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        // Holding the listeners until the batch is picked keeps the kernel
        // from handing out one port twice.
        let mut held = Vec::new();
        let mut batch = Vec::new();
        while ports.len() + batch.len() < n {
            tries += 1;
            if tries > max_tries {
                return Err(SandboxError::NoFreePort {
                    tries,
                    source: io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "every port offered was recently used or answered",
                    ),
                });
            }
            let no_port = |source| SandboxError::NoFreePort { tries, source };
            let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(no_port)?;
            let port = listener.local_addr().map_err(no_port)?.port();
            if !recent.contains(&port) && !ports.contains(&port) && !batch.contains(&port) {
                held.push(listener);
                batch.push(port);
            }
        }
        drop(held);
        // Something listening on the wildcard address would still answer.
        ports.extend(batch.into_iter().filter(|&p| !answers(p)));
    }
    recent.extend_from_slice(&ports);
    let excess = recent.len().saturating_sub(4096);
    recent.drain(..excess);
    Ok(ports)
}

fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_unanswered() {
        let ports = free_ports(9).expect("ports");
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 9);
        assert!(ports.iter().all(|&p| !answers(p)));
        let again = free_ports(9).expect("ports");
        assert!(again.iter().all(|p| !ports.contains(p)));
    }
}
