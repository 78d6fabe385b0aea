//! Makes a metric safe to hand to gmond.
//!
//! gmond 3.7.2 writes metric names, units and extra data into its XML
//! without escaping them (only string values are escaped), so a `"` or `&`
//! there makes the whole document unparseable for gmetad and every other
//! reader, not just this metric. It also reads `IP:hostname` out of a
//! spoofed host by splitting at the first colon, and turns `:` into `_` in
//! unspoofed names. Hence the small alphabets below.
//!
//! gmond also writes each XML element through a 1024-byte buffer and cuts
//! whatever does not fit, closing quote and all (observed: a 1000-byte DESC
//! came out as 991 bytes and no `"/>`), so every field is kept short enough
//! for its line: the `METRIC` line holds name, escaped value and units, an
//! `EXTRA_ELEMENT` line one key and value.

use super::{GmetricError, Metric, Spoof, Value};

/// Longest metric name; longer ones are refused, since a cut name could
/// collide with another.
pub(crate) const MAX_NAME_LEN: usize = 128;
/// Longest spoofed address (key) and host name; longer ones are refused.
pub(crate) const MAX_SPOOF_IP_LEN: usize = 64;
pub(crate) const MAX_SPOOF_NAME_LEN: usize = 255;
/// Units are cut to this.
pub(crate) const MAX_UNITS_LEN: usize = 64;
/// Titles, descriptions and groups are cut to this.
pub(crate) const MAX_EXTRA_LEN: usize = 512;
/// String values are cut so that, escaped by gmond, they take at most this.
pub(crate) const MAX_ESCAPED_VALUE_LEN: usize = 512;

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Names and spoofed host parts: letters, digits, `_`, `.`, `-`. Anything
/// else becomes `_`, so distinct inputs mostly stay distinct.
pub(crate) fn token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Units, titles, descriptions and groups: printable ASCII without the
/// characters that would need escaping in an XML attribute.
pub(crate) fn text(s: &str) -> String {
    s.chars()
        .filter(|c| (' '..='~').contains(c) && !matches!(c, '"' | '\'' | '<' | '>' | '&'))
        .collect::<String>()
        .trim()
        .to_string()
}

/// String values are escaped by gmond, but control characters are not
/// allowed in XML even escaped; the cut counts each character as escaped.
fn value_text(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = 0;
    for c in s.chars().filter(|c| !c.is_control()) {
        escaped += match c {
            '"' | '\'' => 6,
            '&' => 5,
            '<' | '>' => 4,
            c => c.len_utf8(),
        };
        if escaped > MAX_ESCAPED_VALUE_LEN {
            break;
        }
        out.push(c);
    }
    out
}

/// The sanitised copy that goes on the wire.
pub(crate) fn metric(m: &Metric) -> Result<Metric, GmetricError> {
    let name = token(&m.name);
    let bad = |reason: &str| GmetricError::BadMetric {
        name: m.name.clone(),
        host: m.host_label(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("empty metric name"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad(&format!(
            "the name is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    if name == "heartbeat" && !matches!(m.value, Value::U32(_)) {
        // gmond reads any `heartbeat` value as a uint (its start time).
        return Err(bad("a heartbeat must be a uint32 epoch"));
    }
    let value = match &m.value {
        Value::Str(s) => Value::Str(value_text(s)),
        Value::Float(v, _) if !v.is_finite() => {
            return Err(bad("the value is not a finite number"))
        }
        Value::Double(v, _) if !v.is_finite() => {
            return Err(bad("the value is not a finite number"))
        }
        Value::Float(v, d) => Value::Float(*v, (*d).min(super::MAX_DECIMALS)),
        Value::Double(v, d) => Value::Double(*v, (*d).min(super::MAX_DECIMALS)),
        v => v.clone(),
    };
    let spoof = match &m.spoof {
        None => None,
        Some(s) => {
            let ip = token(&s.ip);
            if ip.is_empty() {
                return Err(bad(
                    "a spoofed host needs an address (or key) before the colon",
                ));
            }
            let host = token(&s.name);
            let host = if host.is_empty() { ip.clone() } else { host };
            if ip.len() > MAX_SPOOF_IP_LEN || host.len() > MAX_SPOOF_NAME_LEN {
                return Err(bad(&format!(
                    "a spoofed host takes at most {MAX_SPOOF_IP_LEN} bytes of address \
                     and {MAX_SPOOF_NAME_LEN} of name"
                )));
            }
            Some(Spoof { ip, name: host })
        }
    };
    Ok(Metric {
        name,
        value,
        units: cut(text(&m.units), MAX_UNITS_LEN),
        slope: m.slope,
        tmax: m.tmax,
        dmax: m.dmax,
        groups: m
            .groups
            .iter()
            .map(|g| cut(text(g), MAX_EXTRA_LEN))
            .filter(|g| !g.is_empty())
            .collect(),
        title: cut(text(&m.title), MAX_EXTRA_LEN),
        desc: cut(text(&m.desc), MAX_EXTRA_LEN),
        spoof,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_safe_characters() {
        assert_eq!(token("zk_avg_latency"), "zk_avg_latency");
        assert_eq!(token("a:b c\"<&>'/é"), "a_b_c_______");
        assert_eq!(token("host-1.example.com"), "host-1.example.com");
    }

    #[test]
    fn text_drops_xml_specials_and_control_characters() {
        assert_eq!(text(" say \"hi\" & <bye>\n"), "say hi  bye");
        assert_eq!(text("bytes/s"), "bytes/s");
        assert_eq!(text("°C"), "C");
    }

    #[test]
    fn a_metric_is_sanitised_everywhere_it_reaches_xml() {
        let m = Metric {
            units: "a&b".into(),
            groups: vec!["zoo\"keeper".into(), "<>".into()],
            title: "T'itle".into(),
            desc: "line\nbreak".into(),
            spoof: Some(Spoof::new("::1", "zk:1")),
            ..Metric::new("my metric:x", Value::Str("v\u{7}al<&>".into()))
        };
        let s = metric(&m).expect("sane");
        assert_eq!(s.name, "my_metric_x");
        assert_eq!(s.units, "ab");
        assert_eq!(s.groups, vec!["zookeeper".to_string()]);
        assert_eq!(s.title, "Title");
        assert_eq!(s.desc, "linebreak");
        assert_eq!(s.value, Value::Str("val<&>".into()));
        let spoof = s.spoof.expect("spoofed");
        assert_eq!(spoof.wire(), "__1:zk_1");
    }

    #[test]
    fn unusable_metrics_are_refused_with_their_name_and_host() {
        for m in [
            Metric::new("", Value::U32(1)),
            Metric::new("x", Value::Double(f64::NAN, 2)),
            Metric::new("x", Value::Float(f32::INFINITY, 2)),
            Metric::new("heartbeat", Value::Str("0".into())),
            Metric {
                spoof: Some(Spoof::new("", "h")),
                ..Metric::new("x", Value::U32(1))
            },
        ] {
            let e = metric(&m).expect_err("refused");
            assert!(matches!(e, GmetricError::BadMetric { .. }), "{e}");
        }
    }

    #[test]
    fn long_fields_are_cut_to_what_a_gmond_xml_line_holds() {
        let m = Metric {
            units: "u".repeat(100),
            title: "t".repeat(600),
            desc: "é".repeat(600),
            groups: vec!["g".repeat(600)],
            ..Metric::new("x", Value::Str("\"".repeat(200)))
        };
        let s = metric(&m).unwrap();
        assert_eq!(s.units.len(), MAX_UNITS_LEN);
        assert_eq!(s.title.len(), MAX_EXTRA_LEN);
        assert_eq!(s.groups[0].len(), MAX_EXTRA_LEN);
        // Non-ASCII is dropped from extra data altogether.
        assert_eq!(s.desc, "");
        // 85 quotes escape to 510 bytes; an 86th would pass 512.
        assert_eq!(s.value, Value::Str("\"".repeat(85)));
        let v = metric(&Metric::new("x", Value::Str("é".repeat(300)))).unwrap();
        assert_eq!(v.value, Value::Str("é".repeat(256)));
    }

    #[test]
    fn overlong_names_and_spoofs_are_refused() {
        assert!(metric(&Metric::new("n".repeat(MAX_NAME_LEN), Value::U32(1))).is_ok());
        assert!(metric(&Metric::new("n".repeat(MAX_NAME_LEN + 1), Value::U32(1))).is_err());
        let spoof = |ip: usize, name: usize| Metric {
            spoof: Some(Spoof::new("i".repeat(ip), "h".repeat(name))),
            ..Metric::new("x", Value::U32(1))
        };
        assert!(metric(&spoof(MAX_SPOOF_IP_LEN, MAX_SPOOF_NAME_LEN)).is_ok());
        assert!(metric(&spoof(MAX_SPOOF_IP_LEN + 1, 1)).is_err());
        assert!(metric(&spoof(1, MAX_SPOOF_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn a_spoof_without_a_name_uses_its_key_as_name() {
        let m = Metric {
            spoof: Some(Spoof::new("10.0.0.1", "")),
            ..Metric::new("x", Value::U32(1))
        };
        assert_eq!(
            metric(&m).unwrap().spoof.unwrap().wire(),
            "10.0.0.1:10.0.0.1"
        );
    }
}
