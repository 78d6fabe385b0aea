//! Whether a source and a target are one ensemble, told by the servers
//! rather than by the connect strings: `--source A --target A`, two names
//! of one host, or a source string that lists a server of the target all
//! compare an ensemble with itself, which can only ever say "identical".
//!
//! Two tests, cheapest first:
//! - the resolved addresses: a server reached by both strings;
//! - a session: one is opened on the source and resumed on the target.
//!   Sessions are ensemble-wide, so a target that accepts it is the same
//!   ensemble; a different one answers that the session expired. A resume
//!   is no transaction, so neither ensemble is written to; the probe
//!   session itself costs the source a create and a close, like any
//!   session a walk opens.

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
            all.extend(found.map(|a| normalize(a)));
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
    drop(probe);
    match target.resume(Some(session.clone()), false).await? {
        Some(resumed) => {
            // Dropping the last handle closes the session, there.
            drop(resumed);
            Ok(Some(format!(
                "the target's servers know session {:#x}, opened on the source",
                id.0
            )))
        }
        None => {
            // Close it where it lives rather than leave it to expire; if
            // that fails the server expires it after its timeout.
            if let Ok(Some(home)) = source.resume(Some(session), false).await {
                drop(home);
            }
            Ok(None)
        }
    }
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
    async fn two_names_of_one_address_share_it() {
        let a = EnsembleSpec::plain("source", "127.0.0.1:2181").unwrap();
        let b = EnsembleSpec::plain("target", "localhost:2181,127.0.0.2:2181").unwrap();
        let (a, b) = (addresses(&a).await, addresses(&b).await);
        assert!(a.intersection(&b).next().is_some(), "{a:?} {b:?}");
        let c = EnsembleSpec::plain("target", "127.0.0.1:2182").unwrap();
        assert!(a.intersection(&addresses(&c).await).next().is_none());
    }
}
