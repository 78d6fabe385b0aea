//! Whether a source and a target are one ensemble, told by the servers
//! rather than by the connect strings: `--source A --target A`, two names
//! of one host, or a source string that lists a server of the target all
//! compare an ensemble with itself, which can only ever say "identical".
//!
//! Three tests, cheapest first:
//! - the resolved addresses: a server reached by both strings;
//! - the source's membership (`/zookeeper/config`, 3.5+): a target address
//!   that is one of the source's members' client addresses;
//! - a session: one is opened on the source and resumed on the target.
//!   Sessions are ensemble-wide, so a target that accepts it is the same
//!   ensemble; a different one answers that the session expired. A resume
//!   is no transaction, so neither ensemble is written to; the probe
//!   session itself costs the source a create and a close, like any
//!   session a walk opens. (Local sessions, `localSessionsEnabled`, live on
//!   one member only; the membership test covers those ensembles.)
//!
//! The client library logs a refused resume as a warning, like any failed
//! session; here it is the expected answer, so the resume runs marked
//! ([`resuming_elsewhere`]) for the agent's log to leave it out.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::connect::EnsembleSpec;
use crate::error::{Error, Result};

/// Why two sides were taken for one ensemble.
pub type Evidence = String;

/// `Some(evidence)` when `source` and `target` reach one ensemble. An
/// ensemble that cannot be reached is an error, as for the walk itself.
pub(crate) async fn one_ensemble(
    source: &EnsembleSpec,
    target: &EnsembleSpec,
) -> Result<Option<Evidence>> {
    let (a, b) = futures::join!(addresses(source), addresses(target));
    if let Some(shared) = a.intersection(&b).next() {
        return Ok(Some(format!(
            "both connect strings reach the server at {shared}"
        )));
    }
    shared_session(source, target).await
}

/// Every address the connect string's hosts resolve to; a host that does
/// not resolve adds nothing (connecting will say so).
async fn addresses(spec: &EnsembleSpec) -> BTreeSet<SocketAddr> {
    let mut all = BTreeSet::new();
    for (host, port) in &spec.connect.hosts {
        if let Ok(found) = tokio::net::lookup_host((host.as_str(), *port)).await {
            all.extend(found.map(normalize));
        }
    }
    all
}

/// `::ffff:127.0.0.1` and `127.0.0.1` are one server.
fn normalize(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

async fn shared_session(source: &EnsembleSpec, target: &EnsembleSpec) -> Result<Option<Evidence>> {
    let probe = source
        .resume(None, true)
        .await?
        .ok_or_else(|| Error::Connect {
            side: source.side.clone(),
            ensemble: source.connect.to_string(),
            reason: "a new session was refused".into(),
        })?;
    let session = probe.session().clone();
    let id = probe.session_id();
    // World-readable on 3.5+; older servers have no such node.
    let config = probe.get_data("/zookeeper/config").await.ok();
    drop(probe);
    if let Some((config, _)) = config {
        let members = member_addresses(&String::from_utf8_lossy(&config)).await;
        let reached = addresses(target).await;
        if let Some(shared) = members.intersection(&reached).next() {
            close(source, session).await;
            return Ok(Some(format!(
                "the source's /zookeeper/config lists the target's server {shared} as a member"
            )));
        }
    }
    let resumed = PROBE_RESUME.scope((), target.resume(Some(session.clone()), false));
    match resumed.await? {
        Some(resumed) => {
            // Dropping the last handle closes the session, there.
            drop(resumed);
            Ok(Some(format!(
                "the target's servers know session {:#x}, opened on the source",
                id.0
            )))
        }
        None => {
            close(source, session).await;
            Ok(None)
        }
    }
}

tokio::task_local! {
    /// Set while the probe session is resumed on the target.
    static PROBE_RESUME: ();
}

/// Whether the code running now is the probe's resume on the target, whose
/// refusal ("session expired") means two ensembles, not a fault.
pub(crate) fn resuming_elsewhere() -> bool {
    PROBE_RESUME.try_with(|_| ()).is_ok()
}

/// Closes the probe where it lives rather than leave it to expire; if
/// that fails the server expires it after its timeout.
async fn close(source: &EnsembleSpec, session: zookeeper_client::SessionInfo) {
    if let Ok(Some(home)) = source.resume(Some(session), false).await {
        drop(home);
    }
}

/// The client addresses of the members a dynamic configuration lists:
/// `server.N=host:quorum:election[:role][;[client_host:]client_port]`.
async fn member_addresses(config: &str) -> BTreeSet<SocketAddr> {
    let mut all = BTreeSet::new();
    for line in config.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !key.trim().starts_with("server.") {
            continue;
        }
        let Some((server, client)) = value.split_once(';') else {
            continue;
        };
        let server_host = server.split(':').next().unwrap_or("");
        let (host, port) = match client.trim().rsplit_once(':') {
            Some((h, p)) => (h.trim_matches(['[', ']']), p),
            None => (server_host, client.trim()),
        };
        let (Ok(port), false) = (port.parse::<u16>(), host.is_empty()) else {
            continue;
        };
        if let Ok(found) = tokio::net::lookup_host((host, port)).await {
            // A member listening on every address is reached by any of them;
            // saying which is guesswork, so it is left out.
            all.extend(found.map(normalize).filter(|a| !a.ip().is_unspecified()));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v4_mapped_address_is_the_v4_address() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:2181".parse().unwrap();
        let plain: SocketAddr = "127.0.0.1:2181".parse().unwrap();
        assert_eq!(normalize(mapped), plain);
        let v6: SocketAddr = "[::1]:2181".parse().unwrap();
        assert_eq!(normalize(v6), v6);
    }

    #[tokio::test]
    async fn members_are_read_from_a_dynamic_configuration() {
        let config = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
                      server.2=127.0.0.1:2889:3889:participant;2182\n\
                      server.3=127.0.0.1:2890:3890:observer;0.0.0.0:2183\n\
                      version=100000000\n";
        let members = member_addresses(config).await;
        let want: BTreeSet<SocketAddr> = ["127.0.0.1:2181", "127.0.0.1:2182"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(members, want);
    }

    #[tokio::test]
    async fn two_names_of_one_address_share_it() {
        let a = EnsembleSpec::plain("source", "127.0.0.1:2181").unwrap();
        let b = EnsembleSpec::plain("target", "localhost:2181,127.0.0.2:2181").unwrap();
        let (a, b) = (addresses(&a).await, addresses(&b).await);
        assert!(a.intersection(&b).next().is_some(), "{a:?} {b:?}");
        let c = EnsembleSpec::plain("target", "127.0.0.1:2182").unwrap();
        assert!(a.intersection(&addresses(&c).await).next().is_none());
    }
}
