//! `zkparity gmetric`: one compare's parity metrics, and every server's
//! ZooKeeper metrics, sent to Ganglia.

use std::time::Duration;

use clap::Args;
use zkparity::compare::compare;
use zkparity::connect::ConnectString;
use zkparity::error::Error;
use zkparity::gmetric::{
    parity, servers, Channel, Emitter, GmetricError, MetadataPolicy, Outcome, Sender,
    SenderOptions, Timing,
};
use zkparity::progress::Progress;

use super::args::{AdminArgs, EnsembleArgs, WalkArgs};
use super::values::DURATION;

pub const GMETRIC_HELP: &str = "\
Examples:
  zkparity gmetric --ganglia gmond1:8649 --source old:2181 --target new:2181
  zkparity gmetric --ganglia 239.2.11.71:8649 --ganglia-ttl 1 \\
      --source old:2181/kafka --target new:2181/kafka --pair-name kafka-migration

The parity metrics appear in Ganglia under a host named for the pair
(--pair-name; by default built from the first server of each side), group
zkparity. Every server of both ensembles is also asked srvr and mntr, before
the compare, and appears as its own host HOST_PORT (keyed IP_PORT), group
zookeeper, with the contrib module's zk_* metrics; a server that does not
answer sends nothing. Sides using TLS are not probed (four-letter words go
over plain TCP); --no-servers skips the probe altogether. Run it at least
every --tmax seconds. A gmond that is down costs only the datagrams: the round
still counts as sent. See ganglia/README.md.

Exit codes: 0 round sent (whatever the parity, and whatever servers are
down), 2 usage error, compare failed (zkparity_compare_ok = 0 and the
servers' metrics are still sent) or no packet could be sent.";

#[derive(Args)]
pub struct GmetricArgs {
    /// gmond udp_recv_channel, or multicast group, to send to: HOST:PORT
    /// (repeatable: every packet goes to every channel)
    #[arg(long, value_name = "HOST:PORT", required = true)]
    ganglia: Vec<String>,
    /// Hops for multicast channels
    #[arg(long, default_value_t = 1, value_name = "N")]
    ganglia_ttl: u32,
    /// Host name the parity metrics appear under in Ganglia
    #[arg(long, value_name = "NAME")]
    pair_name: Option<String>,
    /// Longest expected gap between rounds, in seconds (Ganglia TMAX)
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    tmax: u32,
    /// Seconds without metadata after which gmond drops a metric (Ganglia
    /// DMAX; 0: never)
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    dmax: u32,
    /// Send only the pair's parity metrics: no four-letter words to the
    /// servers, no per-server hosts
    #[arg(long)]
    no_servers: bool,
    /// Per server and word (srvr, mntr): connect, send, and read the answer
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = DURATION)]
    probe_timeout: Duration,
    #[command(flatten)]
    admin: AdminArgs,
    #[command(flatten)]
    ensembles: EnsembleArgs,
    #[command(flatten)]
    walk: WalkArgs,
    /// No progress on stderr
    #[arg(short, long)]
    quiet: bool,
}

pub async fn run(a: GmetricArgs) -> Result<i32, Error> {
    let setup = |e: GmetricError| match e {
        GmetricError::Socket { addr, source } => Error::Io {
            context: format!("opening a UDP socket for Ganglia channel {addr}"),
            source,
        },
        e => Error::Usage(e.to_string()),
    };
    let channels = a
        .ganglia
        .iter()
        .map(|c| Channel::resolve(c, a.ganglia_ttl))
        .collect::<Result<Vec<_>, _>>()
        .map_err(setup)?;
    let probe_timeout = a.probe_timeout;
    if probe_timeout.is_zero() {
        return Err(Error::Usage("--probe-timeout must be more than 0".into()));
    }
    let mut probe_options = servers::probe_options(probe_timeout);
    // A file side has no servers; its admin flags are not checked.
    let servers = |connect: &str| ConnectString::parse(connect).map_or(1, |c| c.hosts.len());
    let counts = [servers(&a.ensembles.source), servers(&a.ensembles.target)];
    a.admin
        .apply(&mut probe_options, counts)
        .map_err(Error::Usage)?;
    // A process per round: everything it knows is new, so metadata always goes.
    let options = SenderOptions {
        metadata: MetadataPolicy::Always,
        ..SenderOptions::default()
    };
    let sender = Sender::new(channels, options).map_err(setup)?;
    let pair = a
        .pair_name
        .clone()
        .unwrap_or_else(|| parity::default_pair_name(&a.ensembles.source, &a.ensembles.target));
    let timing = Timing {
        tmax: a.tmax,
        dmax: a.dmax,
    };
    let mut emitter = Emitter::new(sender, &pair, timing);
    let compare_options = a.walk.compare_options(&a.ensembles)?;
    let (source, target) = a.ensembles.specs()?;
    // Four-letter words go over plain TCP, which a TLS-only client port
    // does not answer: probing it would only report it unrecognised.
    let mut probed = Vec::new();
    if !a.no_servers {
        for (connect, tls, admin) in [
            (
                &a.ensembles.source,
                a.ensembles.access.source_tls_ca.is_some(),
                &probe_options.source_admin,
            ),
            (
                &a.ensembles.target,
                a.ensembles.access.target_tls_ca.is_some(),
                &probe_options.target_admin,
            ),
        ] {
            if !tls {
                probed.push((ConnectString::parse(connect)?, admin));
            }
        }
    }
    // Before the compare, so the servers' numbers are not this round's own
    // reads (latency, packets, one more connection).
    let probes = if probed.is_empty() {
        Vec::new()
    } else {
        let connects: Vec<_> = probed.iter().map(|(c, admin)| (c, *admin)).collect();
        servers::probe_servers(&connects, &probe_options).await
    };
    let mut progress = Progress::auto(a.quiet);
    let result = compare(&source, &target, &compare_options, &mut progress).await;
    let outcome = match &result {
        Ok(report) => Outcome::Compared(report),
        Err(_) => Outcome::Failed,
    };
    let sent = emitter.emit_round(outcome, &probes);
    for e in &sent.errors {
        eprintln!("zkparity: warning: {e}");
    }
    if sent.error_count > sent.errors.len() {
        eprintln!(
            "zkparity: warning: {} more Ganglia errors",
            sent.error_count - sent.errors.len()
        );
    }
    result?;
    if sent.metrics_sent == 0 {
        return Err(Error::Io {
            context: format!("sending metrics to Ganglia ({})", a.ganglia.join(", ")),
            source: std::io::Error::other("no packet could be sent on any channel"),
        });
    }
    Ok(0)
}
