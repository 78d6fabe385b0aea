//! Ganglia metrics over gmetric UDP (Ganglia 3.1+ XDR), sent straight to
//! gmond's `udp_recv_channel`s without the `gmetric` binary.
//!
//! - [`Metric`], [`Value`], [`Slope`], [`Spoof`]: one metric as gmond shows it.
//! - [`xdr`]: the wire format (metadata packet 128, value packets 129–135).
//! - [`sanitize`]: what keeps gmond's XML well-formed.
//! - [`sender`]: UDP channels (unicast, multicast with TTL) and the metadata
//!   re-send policy.
//! - [`parity`]: the zkparity metric set of one ensemble pair, from a
//!   [`CompareReport`](crate::report::CompareReport).
//! - [`servers`]: the per-server ZooKeeper metrics (the contrib module's
//!   `zk_*` names), each server as its own host, from a four-letter-word
//!   [`ServerProbe`](crate::probe::ServerProbe).
//! - [`emitter`]: one reporting round after another: what `zkparity
//!   gmetric` sends once and a long-running agent sends every interval.

mod emitter;
pub mod parity;
mod sanitize;
pub(crate) mod sender;
pub mod servers;
pub mod xdr;

pub use emitter::{Emitter, Outcome};
pub use parity::Timing;
pub(crate) use sender::DEFAULT_TTL;
pub use sender::{Channel, MetadataPolicy, SendReport, Sender, SenderOptions};

use std::net::SocketAddr;

/// More decimals than gmond's `%f` would print are never useful.
pub(crate) const MAX_DECIMALS: u8 = 9;

/// gmond's `slope` enum; gmetad turns `positive` into an RRD COUNTER,
/// `derivative` into DERIVE and everything else into GAUGE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Slope {
    Zero = 0,
    Positive = 1,
    Negative = 2,
    #[default]
    Both = 3,
    Unspecified = 4,
    Derivative = 5,
}

impl Slope {
    /// As gmond prints it in XML.
    pub fn as_str(self) -> &'static str {
        match self {
            Slope::Zero => "zero",
            Slope::Positive => "positive",
            Slope::Negative => "negative",
            Slope::Both => "both",
            Slope::Unspecified => "unspecified",
            Slope::Derivative => "derivative",
        }
    }
}

/// A value and, by its variant, its Ganglia type. Floats carry the decimals
/// gmond should print (`%.Nf`).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    Float(f32, u8),
    Double(f64, u8),
}

impl Value {
    /// The metadata `type`, echoed by gmond as XML `TYPE`.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::U16(_) => "uint16",
            Value::I16(_) => "int16",
            Value::U32(_) => "uint32",
            Value::I32(_) => "int32",
            Value::Float(..) => "float",
            Value::Double(..) => "double",
        }
    }

    /// The id of the typed value message.
    pub(crate) fn message_id(&self) -> u32 {
        match self {
            Value::Str(_) => xdr::MSG_STRING,
            Value::U16(_) => xdr::MSG_USHORT,
            Value::I16(_) => xdr::MSG_SHORT,
            Value::U32(_) => xdr::MSG_UINT,
            Value::I32(_) => xdr::MSG_INT,
            Value::Float(..) => xdr::MSG_FLOAT,
            Value::Double(..) => xdr::MSG_DOUBLE,
        }
    }

    /// The printf format gmond applies to the typed value; it must match the
    /// C type exactly, since gmond passes it to `snprintf` unchecked.
    pub(crate) fn format(&self) -> String {
        match self {
            Value::Str(_) => "%s".into(),
            Value::U16(_) => "%hu".into(),
            Value::I16(_) => "%hd".into(),
            Value::U32(_) => "%u".into(),
            Value::I32(_) => "%d".into(),
            Value::Float(_, d) | Value::Double(_, d) => format!("%.{}f", d.min(&MAX_DECIMALS)),
        }
    }

    /// The value as gmond shows it in `VAL`, which is also what string
    /// packets carry.
    pub(crate) fn to_text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::U16(v) => v.to_string(),
            Value::I16(v) => v.to_string(),
            Value::U32(v) => v.to_string(),
            Value::I32(v) => v.to_string(),
            Value::Float(v, d) => format!("{:.*}", usize::from(*d.min(&MAX_DECIMALS)), v),
            Value::Double(v, d) => format!("{:.*}", usize::from(*d.min(&MAX_DECIMALS)), v),
        }
    }
}

/// The host a metric is shown under, instead of the sender's own address.
/// gmond keys hosts by `ip` (any string without a colon works, it need not be
/// an address) and shows `name`: a second name under a key already known is
/// ignored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Spoof {
    pub ip: String,
    pub name: String,
}

impl Spoof {
    pub fn new(ip: impl Into<String>, name: impl Into<String>) -> Spoof {
        Spoof {
            ip: ip.into(),
            name: name.into(),
        }
    }

    /// `IP:hostname`, as in `metric_id.host` and `SPOOF_HOST`.
    pub(crate) fn wire(&self) -> String {
        format!("{}:{}", self.ip, self.name)
    }
}

/// One metric: what gmond stores as metadata (everything but the value)
/// plus the value.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: Value,
    pub units: String,
    pub slope: Slope,
    /// Longest expected gap between values, in seconds.
    pub tmax: u32,
    /// Seconds after the last *metadata* packet until gmond deletes the
    /// metric; 0 keeps it forever.
    pub dmax: u32,
    /// Shown as the metric group(s) in the web UI.
    pub groups: Vec<String>,
    pub title: String,
    pub desc: String,
    /// `None`: shown under the sending machine.
    pub spoof: Option<Spoof>,
}

impl Metric {
    /// gmetric's defaults: no units, slope both, tmax 60, dmax 0.
    pub fn new(name: impl Into<String>, value: Value) -> Metric {
        Metric {
            name: name.into(),
            value,
            units: String::new(),
            slope: Slope::Both,
            tmax: 60,
            dmax: 0,
            groups: Vec::new(),
            title: String::new(),
            desc: String::new(),
            spoof: None,
        }
    }

    /// What sets a spoofed host's `GMOND_STARTED` (epoch seconds) and keeps
    /// it "up" in the web UI; gmond never lists it as a metric. The metadata
    /// mirrors gmond's own heartbeat.
    pub fn heartbeat(spoof: Spoof, started_epoch: u32) -> Metric {
        Metric {
            slope: Slope::Unspecified,
            tmax: 20,
            dmax: 0,
            groups: vec!["core".into()],
            title: "heartbeat".into(),
            desc: "Last heartbeat".into(),
            spoof: Some(spoof),
            ..Metric::new("heartbeat", Value::U32(started_epoch))
        }
    }

    /// The host as errors name it.
    pub(crate) fn host_label(&self) -> String {
        self.spoof
            .as_ref()
            .map_or_else(|| "(this host)".to_string(), Spoof::wire)
    }
}

/// What can go wrong on the way to gmond. Only setting up a channel is
/// fatal; the others are counted per round and never stop a sender.
#[derive(Debug, thiserror::Error)]
pub enum GmetricError {
    #[error("invalid Ganglia channel {spec:?}: {reason} (use HOST:PORT, e.g. gmond1:8649)")]
    BadChannel { spec: String, reason: String },

    #[error("cannot resolve Ganglia channel {spec:?}: {source}")]
    Resolve {
        spec: String,
        source: std::io::Error,
    },

    #[error("cannot open a UDP socket for Ganglia channel {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        source: std::io::Error,
    },

    #[error("metric {name} of host {host}: {reason}")]
    BadMetric {
        name: String,
        host: String,
        reason: String,
    },

    #[error("metric {name} of host {host}: its {packet} packet would exceed {limit} bytes")]
    TooLarge {
        name: String,
        host: String,
        packet: &'static str,
        limit: usize,
    },

    #[error("sending {name} of host {host} to Ganglia channel {addr}: {source}")]
    Send {
        addr: SocketAddr,
        name: String,
        host: String,
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_format_agree_on_decimals() {
        assert_eq!(Value::Double(2.17825, 3).to_text(), "2.178");
        assert_eq!(Value::Double(2.17825, 3).format(), "%.3f");
        assert_eq!(Value::Float(1.5, 0).to_text(), "2");
        assert_eq!(Value::Double(1.0, 99).format(), "%.9f");
        assert_eq!(Value::I16(-5).to_text(), "-5");
    }

    #[test]
    fn slopes_carry_gmonds_numbers_and_names() {
        assert_eq!(Slope::Derivative as u32, 5);
        assert_eq!(Slope::Positive.as_str(), "positive");
        assert_eq!(Slope::default(), Slope::Both);
    }
}
