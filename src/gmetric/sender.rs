//! UDP channels to gmond and the metadata re-send policy.
//!
//! Every packet goes to every channel, as gmond's own `udp_send_channel`s
//! do. Sockets are non-blocking and never connected: a gmond that is down,
//! restarting or unreachable costs a lost datagram, never a stalled or
//! failed round, and an ICMP "port unreachable" from a previous packet
//! cannot turn into an error for the next one.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::xdr::{self, ValueWire, MAX_PACKET_LEN};
use super::{sanitize, GmetricError, Metric};

/// Default multicast TTL: gmond's own default for `udp_send_channel`.
pub(crate) const DEFAULT_TTL: u32 = 1;

/// Errors kept per round for the caller to log; the rest are only counted.
const MAX_ERRORS_KEPT: usize = 16;

/// One destination: a gmond `udp_recv_channel` (unicast) or a multicast
/// group that gmonds have joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    /// As given, for messages.
    pub spec: String,
    pub addr: SocketAddr,
    /// Multicast hops; ignored for unicast.
    pub ttl: u32,
}

impl Channel {
    /// Parses and resolves `HOST:PORT` (`[v6]:PORT` for IPv6 literals), taking
    /// the first address, as gmetric does.
    pub fn resolve(spec: &str, ttl: u32) -> Result<Channel, GmetricError> {
        const DEFAULT_GMOND_PORT: u16 = 8649;
        let bad = |reason: &str| GmetricError::BadChannel {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        // A host alone means gmond's default port, as the agent's
        // `[[ganglia]]` has it; an IPv6 literal needs its brackets then.
        let spec_owned;
        let spec = if spec.rsplit_once(':').is_none() || spec.ends_with(']') {
            spec_owned = format!("{spec}:{DEFAULT_GMOND_PORT}");
            spec_owned.as_str()
        } else {
            spec
        };
        let (host, port) = spec.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        if host.is_empty() || host == "[]" {
            return Err(bad("no host"));
        }
        match port.parse::<u16>() {
            Ok(0) => return Err(bad("port 0")),
            Ok(_) => {}
            Err(_) => return Err(bad("the port is not a number from 1 to 65535")),
        }
        let addr = spec
            .to_socket_addrs()
            .map_err(|source| GmetricError::Resolve {
                spec: spec.to_string(),
                source,
            })?
            .next()
            .ok_or_else(|| bad("the name has no address"))?;
        Ok(Channel {
            spec: spec.to_string(),
            addr,
            ttl,
        })
    }

    pub(crate) fn is_multicast(&self) -> bool {
        self.addr.ip().is_multicast()
    }

    fn open(&self) -> Result<Socket, GmetricError> {
        let err = |source| GmetricError::Socket {
            addr: self.addr,
            source,
        };
        let socket = Socket::new(
            Domain::for_address(self.addr),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(err)?;
        socket.set_nonblocking(true).map_err(err)?;
        if self.is_multicast() {
            match self.addr {
                SocketAddr::V4(_) => {
                    socket.set_multicast_ttl_v4(self.ttl).map_err(err)?;
                    // gmonds on the sending machine listen to the group too.
                    socket.set_multicast_loop_v4(true).map_err(err)?;
                }
                SocketAddr::V6(_) => {
                    socket.set_multicast_hops_v6(self.ttl).map_err(err)?;
                    socket.set_multicast_loop_v6(true).map_err(err)?;
                }
            }
        }
        Ok(socket)
    }
}

/// When a metric's metadata packet goes out again. gmond deletes a metric
/// `dmax` seconds after its last *metadata* (values do not count), and a
/// restarted gmond knows no metadata at all: values alone stay invisible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataPolicy {
    /// Before every value, as gmetric does.
    Always,
    /// When new or changed, and at least this often; more often still for a
    /// metric with `dmax`, at most `dmax / 2` apart so one lost datagram does
    /// not delete it.
    Every(Duration),
}

impl Default for MetadataPolicy {
    /// gmond's documented "reasonable" `send_metadata_interval` for unicast.
    fn default() -> Self {
        MetadataPolicy::Every(Duration::from_secs(60))
    }
}

#[derive(Clone, Debug)]
pub struct SenderOptions {
    pub metadata: MetadataPolicy,
    pub wire: ValueWire,
    /// `metric_id.host` of unspoofed metrics. gmond ignores it (it keys the
    /// host by the datagram's source address); gmetric puts the hostname.
    pub local_host: String,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            metadata: MetadataPolicy::default(),
            wire: ValueWire::default(),
            local_host: local_hostname(),
        }
    }
}

/// This machine's hostname, as gmetric reads it (`gethostname`).
pub(crate) fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// What one [`Sender::send`] did.
#[derive(Debug, Default)]
pub struct SendReport {
    /// Metrics whose value reached at least one channel's socket.
    pub metrics_sent: usize,
    /// Metrics refused before sending (bad input, too large).
    pub metrics_refused: usize,
    pub packets_sent: usize,
    pub metadata_packets_sent: usize,
    pub bytes_sent: usize,
    /// Refusals and send failures.
    pub error_count: usize,
    /// The first few of them.
    pub errors: Vec<GmetricError>,
}

impl SendReport {
    fn error(&mut self, e: GmetricError) {
        self.error_count += 1;
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(e);
        }
    }
}

struct Sent {
    at: Instant,
    packet: Vec<u8>,
}

/// Sends metrics to a fixed set of channels.
pub struct Sender {
    channels: Vec<(Channel, Socket)>,
    options: SenderOptions,
    /// Last metadata sent everywhere, by (wire host, name).
    metadata: HashMap<(String, String), Sent>,
}

impl Sender {
    /// Opens one socket per channel. This is the only step that can fail.
    pub fn new(channels: Vec<Channel>, options: SenderOptions) -> Result<Sender, GmetricError> {
        let channels = channels
            .into_iter()
            .map(|c| c.open().map(|s| (c, s)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sender {
            channels,
            options,
            metadata: HashMap::new(),
        })
    }

    /// Sends each metric's metadata (when the policy says so) and value to
    /// every channel. Never blocks on the network and never fails as a
    /// whole: problems are counted in the report.
    pub fn send(&mut self, metrics: &[Metric]) -> SendReport {
        self.send_at(metrics, Instant::now())
    }

    fn metadata_due(&self, key: &(String, String), packet: &[u8], dmax: u32, now: Instant) -> bool {
        let interval = match self.options.metadata {
            MetadataPolicy::Always => return true,
            MetadataPolicy::Every(d) if dmax > 0 => d.min(Duration::from_secs(u64::from(dmax)) / 2),
            MetadataPolicy::Every(d) => d,
        };
        match self.metadata.get(key) {
            None => true,
            Some(sent) => sent.packet != packet || now.duration_since(sent.at) >= interval,
        }
    }

    pub(crate) fn send_at(&mut self, metrics: &[Metric], now: Instant) -> SendReport {
        let mut report = SendReport::default();
        for m in metrics {
            let m = match sanitize::metric(m) {
                Ok(m) => m,
                Err(e) => {
                    report.metrics_refused += 1;
                    report.error(e);
                    continue;
                }
            };
            let too_large = |packet| GmetricError::TooLarge {
                name: m.name.clone(),
                host: m.host_label(),
                packet,
                limit: MAX_PACKET_LEN,
            };
            let host = &self.options.local_host;
            let Some(meta) = xdr::metadata_packet(host, &m) else {
                report.metrics_refused += 1;
                report.error(too_large("metadata"));
                continue;
            };
            let Some(value) = xdr::value_packet(host, &m, self.options.wire) else {
                report.metrics_refused += 1;
                report.error(too_large("value"));
                continue;
            };
            let key = (
                m.spoof.as_ref().map_or_else(String::new, |s| s.wire()),
                m.name.clone(),
            );
            if self.metadata_due(&key, &meta, m.dmax, now) {
                // Metadata first: a value gmond cannot place makes it ask the
                // whole cluster for metadata.
                if self.send_everywhere(&meta, &m, &mut report) {
                    report.metadata_packets_sent += 1;
                    self.metadata.insert(
                        key,
                        Sent {
                            at: now,
                            packet: meta,
                        },
                    );
                } else {
                    // Try again next round, whatever the interval.
                    self.metadata.remove(&key);
                }
            }
            let before = report.packets_sent;
            self.send_everywhere(&value, &m, &mut report);
            if report.packets_sent > before {
                report.metrics_sent += 1;
            }
        }
        report
    }

    /// True if every channel took the packet.
    fn send_everywhere(&self, packet: &[u8], m: &Metric, report: &mut SendReport) -> bool {
        let mut all = true;
        for (channel, socket) in &self.channels {
            match socket.send_to(packet, &channel.addr.into()) {
                Ok(n) if n == packet.len() => {
                    report.packets_sent += 1;
                    report.bytes_sent += n;
                }
                Ok(n) => {
                    all = false;
                    report.error(GmetricError::Send {
                        addr: channel.addr,
                        name: m.name.clone(),
                        host: m.host_label(),
                        source: std::io::Error::other(format!(
                            "only {n} of {} bytes sent",
                            packet.len()
                        )),
                    });
                }
                Err(source) => {
                    all = false;
                    report.error(GmetricError::Send {
                        addr: channel.addr,
                        name: m.name.clone(),
                        host: m.host_label(),
                        source,
                    });
                }
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gmetric::{Spoof, Value};
    use std::net::UdpSocket;

    fn listener() -> (UdpSocket, Channel) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let spec = sock.local_addr().expect("addr").to_string();
        let ch = Channel::resolve(&spec, DEFAULT_TTL).expect("channel");
        (sock, ch)
    }

    /// Everything the socket received by now, as message ids.
    fn ids(sock: &UdpSocket) -> Vec<u32> {
        sock.set_nonblocking(true).expect("nonblocking");
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        // Loopback delivery is immediate; a short grace covers scheduling.
        std::thread::sleep(Duration::from_millis(50));
        while let Ok(n) = sock.recv(&mut buf) {
            out.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
            assert!(n <= MAX_PACKET_LEN);
        }
        out
    }

    fn sender(channels: Vec<Channel>, metadata: MetadataPolicy) -> Sender {
        let options = SenderOptions {
            metadata,
            ..SenderOptions::default()
        };
        Sender::new(channels, options).expect("sender")
    }

    #[test]
    fn channels_parse_host_port_and_refuse_the_rest() {
        let c = Channel::resolve("127.0.0.1:8649", 1).unwrap();
        assert_eq!(c.addr, "127.0.0.1:8649".parse().unwrap());
        assert!(!c.is_multicast());
        let c = Channel::resolve("239.2.11.71:8649", 3).unwrap();
        assert!(c.is_multicast());
        let c = Channel::resolve("[::1]:8649", 1).unwrap();
        assert!(c.addr.is_ipv6());
        // A host alone gets gmond's port, as the agent's [[ganglia]] does.
        let c = Channel::resolve("127.0.0.1", 1).unwrap();
        assert_eq!(c.addr.port(), 8649);
        let c = Channel::resolve("[::1]", 1).unwrap();
        assert_eq!(c.addr.port(), 8649);
        for bad in ["127.0.0.1:", ":8649", "127.0.0.1:0", "h:99999", "h:x"] {
            let e = Channel::resolve(bad, 1).expect_err(bad);
            assert!(matches!(e, GmetricError::BadChannel { .. }), "{bad}: {e}");
            assert!(e.to_string().contains(bad), "{e}");
        }
        let e = Channel::resolve("no-such-host.invalid:8649", 1).expect_err("unresolvable");
        assert!(matches!(e, GmetricError::Resolve { .. }), "{e}");
    }

    #[test]
    fn multicast_channels_get_the_ttl() {
        let c = Channel::resolve("239.2.11.71:8649", 4).unwrap();
        let s = c.open().expect("socket");
        assert_eq!(s.multicast_ttl_v4().unwrap(), 4);
        assert!(s.multicast_loop_v4().unwrap());
        assert!(s.nonblocking().unwrap_or(true));
    }

    #[test]
    fn every_packet_goes_to_every_channel_metadata_first() {
        let (a, ca) = listener();
        let (b, cb) = listener();
        let mut s = sender(vec![ca, cb], MetadataPolicy::Always);
        let r = s.send(&[
            Metric::new("one", Value::U32(1)),
            Metric::new("two", Value::Double(2.5, 1)),
        ]);
        assert_eq!(r.error_count, 0, "{:?}", r.errors);
        assert_eq!((r.metrics_sent, r.packets_sent), (2, 8));
        assert_eq!(ids(&a), vec![128, 132, 128, 135]);
        assert_eq!(ids(&b), vec![128, 132, 128, 135]);
    }

    #[test]
    fn metadata_is_resent_after_the_interval_or_when_it_changes() {
        let (sock, ch) = listener();
        let mut s = sender(vec![ch], MetadataPolicy::Every(Duration::from_secs(60)));
        let m = Metric::new("m", Value::U32(1));
        let t0 = Instant::now();
        s.send_at(std::slice::from_ref(&m), t0);
        s.send_at(std::slice::from_ref(&m), t0 + Duration::from_secs(30));
        assert_eq!(ids(&sock), vec![128, 132, 132], "not yet due");
        s.send_at(std::slice::from_ref(&m), t0 + Duration::from_secs(60));
        assert_eq!(ids(&sock), vec![128, 132], "due after the interval");
        let changed = Metric {
            units: "ms".into(),
            ..m.clone()
        };
        s.send_at(&[changed], t0 + Duration::from_secs(61));
        assert_eq!(
            ids(&sock),
            vec![128, 132],
            "changed metadata goes out at once"
        );
        // A new value alone is not a change.
        let new_value = Metric {
            units: "ms".into(),
            value: Value::U32(7),
            ..m
        };
        s.send_at(&[new_value], t0 + Duration::from_secs(62));
        assert_eq!(ids(&sock), vec![132]);
    }

    #[test]
    fn metadata_of_a_metric_with_dmax_is_resent_within_half_of_it() {
        let (sock, ch) = listener();
        let mut s = sender(vec![ch], MetadataPolicy::Every(Duration::from_secs(60)));
        let m = Metric {
            dmax: 10,
            ..Metric::new("m", Value::U32(1))
        };
        let t0 = Instant::now();
        s.send_at(std::slice::from_ref(&m), t0);
        s.send_at(std::slice::from_ref(&m), t0 + Duration::from_secs(4));
        s.send_at(std::slice::from_ref(&m), t0 + Duration::from_secs(5));
        assert_eq!(ids(&sock), vec![128, 132, 132, 128, 132]);
    }

    #[test]
    fn spoofed_hosts_keep_separate_metadata() {
        let (sock, ch) = listener();
        let mut s = sender(vec![ch], MetadataPolicy::default());
        let on = |ip: &str| Metric {
            spoof: Some(Spoof::new(ip, "zk")),
            ..Metric::new("m", Value::U32(1))
        };
        s.send(&[on("10.0.0.1"), on("10.0.0.2")]);
        s.send(&[on("10.0.0.1"), on("10.0.0.2")]);
        assert_eq!(ids(&sock), vec![128, 132, 128, 132, 132, 132]);
    }

    #[test]
    fn refused_metrics_are_counted_and_the_rest_still_go_out() {
        let (sock, ch) = listener();
        let mut s = sender(vec![ch], MetadataPolicy::Always);
        let r = s.send(&[
            Metric::new("", Value::U32(1)),
            Metric {
                groups: vec!["g".repeat(500); 3],
                ..Metric::new("big", Value::U32(1))
            },
            Metric::new("fine", Value::U32(1)),
        ]);
        assert_eq!(
            (r.metrics_refused, r.metrics_sent, r.error_count),
            (2, 1, 2)
        );
        assert!(matches!(
            r.errors[1],
            GmetricError::TooLarge {
                packet: "metadata",
                ..
            }
        ));
        assert!(r.errors[1].to_string().contains("big"));
        assert_eq!(ids(&sock), vec![128, 132]);
    }

    #[test]
    fn a_gmond_that_is_not_there_costs_nothing_but_the_datagrams() {
        // Bound then dropped: nothing listens there any more, so the kernel
        // answers with ICMP port unreachable.
        let (gone, ch) = listener();
        drop(gone);
        let (alive, ch2) = listener();
        let mut s = sender(vec![ch, ch2], MetadataPolicy::Always);
        for _ in 0..3 {
            let r = s.send(&[Metric::new("m", Value::U32(1))]);
            assert_eq!(r.metrics_sent, 1);
            assert_eq!(r.error_count, 0, "{:?}", r.errors);
        }
        assert_eq!(ids(&alive).len(), 6);
    }

    #[test]
    fn a_failing_channel_is_reported_with_its_address_and_metadata_retried() {
        // Sending to a multicast group from an IPv4 socket bound to no
        // route is not portable; a broadcast address without SO_BROADCAST
        // fails with EACCES on every Linux, locally, before any packet leaves.
        let bad = Channel {
            spec: "255.255.255.255:8649".into(),
            addr: "255.255.255.255:8649".parse().unwrap(),
            ttl: 1,
        };
        let (sock, ch) = listener();
        let mut s = sender(vec![bad, ch], MetadataPolicy::default());
        let m = [Metric::new("m", Value::U32(1))];
        let r = s.send(&m);
        assert_eq!(r.metrics_sent, 1);
        assert_eq!(r.error_count, 2, "metadata and value on the bad channel");
        let msg = r.errors[0].to_string();
        assert!(
            msg.contains("255.255.255.255:8649") && msg.contains("m"),
            "{msg}"
        );
        s.send(&m);
        // Metadata went out again because one channel missed it.
        assert_eq!(ids(&sock), vec![128, 132, 128, 132]);
    }
}
