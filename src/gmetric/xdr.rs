//! The Ganglia 3.1+ wire format: XDR (RFC 4506) encodings of the metadata
//! message (id 128) and the value messages (ids 129–135), one message per UDP
//! datagram, as gmond 3.7.2 decodes them (`lib/gm_protocol.x`).
//!
//! Everything here works on already sanitised input (see
//! [`super::sanitize`]); this file only lays out bytes.

use super::{Metric, Value};

/// The largest datagram gmetric itself builds (`GANGLIA_MAX_MESSAGE_LEN`,
/// 1500 − 28 − 8). gmond's receive buffer is 1472 bytes and it silently
/// drops anything longer, so staying at gmetric's limit leaves a margin.
pub const MAX_PACKET_LEN: usize = 1464;

/// `Ganglia_msg_formats`: the first word of every packet.
pub(crate) const MSG_METADATA: u32 = 128;
pub(crate) const MSG_USHORT: u32 = 129;
pub(crate) const MSG_SHORT: u32 = 130;
pub(crate) const MSG_INT: u32 = 131;
pub(crate) const MSG_UINT: u32 = 132;
pub(crate) const MSG_STRING: u32 = 133;
pub(crate) const MSG_FLOAT: u32 = 134;
pub(crate) const MSG_DOUBLE: u32 = 135;

/// How value packets carry the value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValueWire {
    /// The typed message for the value's type (129–135) with a matching
    /// printf format, as gmond sends its own metrics: gmond then formats
    /// `VAL` itself, e.g. `%.3f`.
    #[default]
    Typed,
    /// Always message 133 with format `%s` and the value as text, as
    /// `gmetric`, Hadoop, gmetric4j and jmxtrans do.
    String,
}

/// Appends XDR items to a buffer.
#[derive(Debug, Default)]
pub(crate) struct XdrWriter {
    buf: Vec<u8>,
}

impl XdrWriter {
    pub(crate) fn new() -> XdrWriter {
        XdrWriter {
            buf: Vec::with_capacity(256),
        }
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn bool(&mut self, v: bool) -> &mut Self {
        self.u32(u32::from(v))
    }

    pub(crate) fn f32(&mut self, v: f32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_bits().to_be_bytes());
        self
    }

    pub(crate) fn f64(&mut self, v: f64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_bits().to_be_bytes());
        self
    }

    /// Length, bytes, then zero padding to a multiple of four.
    pub(crate) fn string(&mut self, s: &str) -> &mut Self {
        let b = s.as_bytes();
        // Callers keep strings far below 4 GiB: a packet is at most 1464 bytes.
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
        let pad = (4 - b.len() % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
        self
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// `Ganglia_metric_id`: host, name, spoof. Unspoofed, gmond ignores `host`
/// and keys the host by the datagram's source address.
fn metric_id(w: &mut XdrWriter, host: &str, m: &Metric) {
    match &m.spoof {
        Some(s) => w.string(&s.wire()).string(&m.name).bool(true),
        None => w.string(host).string(&m.name).bool(false),
    };
}

/// The extra-data pairs in the order gmetric adds them (gmond prints them
/// reversed): SPOOF_HOST, GROUP…, DESC, TITLE.
fn extra_data(m: &Metric, with_desc: bool, with_title: bool) -> Vec<(&'static str, String)> {
    let mut extra = Vec::new();
    if let Some(s) = &m.spoof {
        extra.push(("SPOOF_HOST", s.wire()));
    }
    for g in &m.groups {
        extra.push(("GROUP", g.clone()));
    }
    if with_desc && !m.desc.is_empty() {
        extra.push(("DESC", m.desc.clone()));
    }
    if with_title && !m.title.is_empty() {
        extra.push(("TITLE", m.title.clone()));
    }
    extra
}

fn metadata_with(host: &str, m: &Metric, with_desc: bool, with_title: bool) -> Vec<u8> {
    let mut w = XdrWriter::new();
    w.u32(MSG_METADATA);
    metric_id(&mut w, host, m);
    w.string(m.value.type_name())
        .string(&m.name)
        .string(&m.units)
        .u32(m.slope as u32)
        .u32(m.tmax)
        .u32(m.dmax);
    let extra = extra_data(m, with_desc, with_title);
    w.u32(extra.len() as u32);
    for (k, v) in &extra {
        w.string(k).string(v);
    }
    w.into_bytes()
}

/// The metadata packet (id 128). DESC, then TITLE, are left out if the packet
/// would otherwise exceed [`MAX_PACKET_LEN`]: they only decorate the graph,
/// while a packet over the limit is dropped by gmond without a word.
/// `None` if even the bare packet is too long.
pub fn metadata_packet(host: &str, m: &Metric) -> Option<Vec<u8>> {
    [(true, true), (false, true), (false, false)]
        .into_iter()
        .map(|(desc, title)| metadata_with(host, m, desc, title))
        .find(|p| p.len() <= MAX_PACKET_LEN)
}

/// The value packet, typed or as a string. `None` if it would exceed
/// [`MAX_PACKET_LEN`] (only a very long string value can).
pub fn value_packet(host: &str, m: &Metric, wire: ValueWire) -> Option<Vec<u8>> {
    let mut w = XdrWriter::new();
    match wire {
        ValueWire::String => {
            w.u32(MSG_STRING);
            metric_id(&mut w, host, m);
            w.string("%s").string(&m.value.to_text());
        }
        ValueWire::Typed => {
            w.u32(m.value.message_id());
            metric_id(&mut w, host, m);
            w.string(&m.value.format());
            match &m.value {
                Value::Str(s) => w.string(s),
                Value::U16(v) => w.u32(u32::from(*v)),
                Value::I16(v) => w.i32(i32::from(*v)),
                Value::U32(v) => w.u32(*v),
                Value::I32(v) => w.i32(*v),
                Value::Float(v, _) => w.f32(*v),
                Value::Double(v, _) => w.f64(*v),
            };
        }
    }
    Some(w.into_bytes()).filter(|p| p.len() <= MAX_PACKET_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gmetric::{Slope, Spoof};

    fn hex(bytes: &[u8]) -> String {
        bytes
            .chunks(4)
            .map(hex::encode)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).expect("hex")
    }

    /// The worked example of the reference (§1.8), accepted by gmond 3.7.2.
    fn disk_free() -> Metric {
        Metric {
            units: "GB".into(),
            tmax: 60,
            dmax: 300,
            groups: vec!["disk".into()],
            title: "Disk Free".into(),
            ..Metric::new("disk_free", Value::Double(42.5, 2))
        }
    }

    #[test]
    fn metadata_matches_the_reference_dump() {
        let want = unhex(
            "00000080 00000007 6167656e 74303100 00000009 6469736b 5f667265 65000000
             00000000 00000006 646f7562 6c650000 00000009 6469736b 5f667265 65000000
             00000002 47420000 00000003 0000003c 0000012c 00000002
             00000005 47524f55 50000000 00000004 6469736b
             00000005 5449544c 45000000 00000009 4469736b 20467265 65000000",
        );
        let got = metadata_packet("agent01", &disk_free()).expect("fits");
        assert_eq!(hex(&got), hex(&want));
        assert_eq!(got.len(), 136);
    }

    #[test]
    fn typed_double_value_matches_the_reference_dump() {
        let want = unhex(
            "00000087 00000007 6167656e 74303100 00000009 6469736b 5f667265 65000000
             00000000 00000004 252e3266 40454000 00000000",
        );
        let got = value_packet("agent01", &disk_free(), ValueWire::Typed).expect("fits");
        assert_eq!(hex(&got), hex(&want));
        assert_eq!(got.len(), 52);
    }

    /// gmetric -n temp_c -v 42 -t uint32 -u Celsius -x 60 -d 0 -g sensors
    /// -D Temperature -T Temp, on host `vm` (reference §1.8).
    #[test]
    fn string_value_and_metadata_match_captured_gmetric_packets() {
        let m = Metric {
            units: "Celsius".into(),
            tmax: 60,
            dmax: 0,
            groups: vec!["sensors".into()],
            desc: "Temperature".into(),
            title: "Temp".into(),
            ..Metric::new("temp_c", Value::U32(42))
        };
        let meta = unhex(
            "00000080 00000002 766d0000 00000006 74656d70 5f630000 00000000 00000006
             75696e74 33320000 00000006 74656d70 5f630000 00000007 43656c73 69757300
             00000003 0000003c 00000000 00000003 00000005 47524f55 50000000 00000007
             73656e73 6f727300 00000004 44455343 0000000b 54656d70 65726174 75726500
             00000005 5449544c 45000000 00000004 54656d70",
        );
        let value = unhex(
            "00000085 00000002 766d0000 00000006 74656d70 5f630000 00000000 00000002
             25730000 00000002 34320000",
        );
        assert_eq!(hex(&metadata_packet("vm", &m).unwrap()), hex(&meta));
        assert_eq!(
            hex(&value_packet("vm", &m, ValueWire::String).unwrap()),
            hex(&value)
        );
    }

    #[test]
    fn spoofed_metric_id_carries_ip_colon_host_and_spoof_host_extra() {
        let m = Metric {
            spoof: Some(Spoof::new("10.0.0.5", "web01")),
            ..Metric::new("temp_c", Value::U32(42))
        };
        let meta = metadata_packet("vm", &m).unwrap();
        // id, then host "10.0.0.5:web01" (14 bytes + 2 pad), name, spoof TRUE.
        let host = unhex("0000000e 31302e30 2e302e35 3a776562 30310000");
        assert_eq!(&meta[4..24], &host[..]);
        assert_eq!(&meta[36..40], &[0, 0, 0, 1]);
        let tail = unhex(
            "00000001 0000000a 53504f4f 465f484f 53540000 0000000e 31302e30 2e302e35
             3a776562 30310000",
        );
        assert!(meta.ends_with(&tail), "{}", hex(&meta));
    }

    #[test]
    fn typed_values_use_their_message_id_format_and_width() {
        let cases: Vec<(Value, u32, &str, &str)> = vec![
            (Value::U16(2), MSG_USHORT, "%hu", "00000002"),
            (Value::I16(-5), MSG_SHORT, "%hd", "fffffffb"),
            (Value::I32(-2), MSG_INT, "%d", "fffffffe"),
            (Value::U32(4_000_000_000), MSG_UINT, "%u", "ee6b2800"),
            (Value::Float(0.67, 2), MSG_FLOAT, "%.2f", "3f2b851f"),
            (
                Value::Double(42.5, 0),
                MSG_DOUBLE,
                "%.0f",
                "40454000 00000000",
            ),
            (
                Value::Str("leader".into()),
                MSG_STRING,
                "%s",
                "00000006 6c656164 65720000",
            ),
        ];
        for (v, id, fmt, payload) in cases {
            let m = Metric::new("x", v.clone());
            let p = value_packet("h", &m, ValueWire::Typed).unwrap();
            let mut w = XdrWriter::new();
            w.u32(id).string("h").string("x").bool(false).string(fmt);
            let mut want = w.into_bytes();
            want.extend(unhex(payload));
            assert_eq!(hex(&p), hex(&want), "{v:?}");
        }
    }

    #[test]
    fn strings_are_padded_to_four_bytes() {
        for (s, len) in [("", 4), ("a", 8), ("abcd", 8), ("abcde", 12)] {
            let mut w = XdrWriter::new();
            w.string(s);
            let b = w.into_bytes();
            assert_eq!(b.len(), len, "{s:?}");
            assert_eq!(&b[..4], &(s.len() as u32).to_be_bytes());
            assert!(b[4 + s.len()..].iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn an_oversized_metadata_packet_drops_desc_then_title_then_gives_up() {
        let mut m = Metric {
            desc: "d".repeat(1300),
            title: "t".repeat(100),
            slope: Slope::Both,
            ..Metric::new("n", Value::U32(1))
        };
        let p = metadata_packet("h", &m).expect("fits without DESC");
        assert!(p.len() <= MAX_PACKET_LEN);
        assert!(!p.windows(4).any(|w| w == b"DESC"));
        assert!(p.windows(5).any(|w| w == b"TITLE"));

        m.title = "t".repeat(1400);
        let p = metadata_packet("h", &m).expect("fits without DESC and TITLE");
        assert!(!p.windows(5).any(|w| w == b"TITLE"));

        m.groups = vec!["g".repeat(1460)];
        assert!(metadata_packet("h", &m).is_none());
    }

    #[test]
    fn a_string_value_over_the_limit_is_refused_and_one_at_it_is_kept() {
        // id 4 + host "h" 8 + name "x" 8 + spoof 4 + fmt 8 + length 4 = 36.
        let fits = Metric::new("x", Value::Str("v".repeat(MAX_PACKET_LEN - 36)));
        let p = value_packet("h", &fits, ValueWire::Typed).expect("exactly at the limit");
        assert_eq!(p.len(), MAX_PACKET_LEN);
        let over = Metric::new("x", Value::Str("v".repeat(MAX_PACKET_LEN - 35)));
        assert!(value_packet("h", &over, ValueWire::Typed).is_none());
    }
}
