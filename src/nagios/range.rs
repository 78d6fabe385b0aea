//! Threshold ranges in the monitoring-plugins syntax, `[@][start:][end]`.
//!
//! `10` alerts outside 0..=10, `10:` below 10, `~:10` above 10, `10:20`
//! outside 10..=20 and `@10:20` inside it; the ends are inclusive (they are
//! OK without `@`). This follows the plugin guidelines and monitoring-plugins
//! 2.3.3, which Debian ships, rather than the stricter `~:N` of later code.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    start: f64,
    end: f64,
    inside: bool,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "threshold {text:?}: {reason} (expected [@][start:][end], e.g. 10, 10:, ~:10, 10:20, @10:20)"
)]
pub struct RangeError {
    pub text: String,
    pub reason: String,
}

fn number(text: &str, part: &str) -> Result<f64, RangeError> {
    let bad = |reason: String| RangeError {
        text: text.to_string(),
        reason,
    };
    // Only plain decimals, as the plugins accept: no exponents, no inf/nan.
    let plain = !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-' || c == '+');
    if !plain {
        return Err(bad(format!("{part:?} is not a number")));
    }
    part.parse::<f64>()
        .map_err(|_| bad(format!("{part:?} is not a number")))
}

impl FromStr for Range {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Range, RangeError> {
        let text = s.trim();
        let bad = |reason: &str| RangeError {
            text: s.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let (inside, body) = match text.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if body.is_empty() {
            return Err(bad("nothing follows '@'"));
        }
        let (start, end) = match body.split_once(':') {
            Some((start, end)) => {
                let start = match start {
                    "~" => f64::NEG_INFINITY,
                    "" => 0.0,
                    n => number(s, n)?,
                };
                let end = if end.is_empty() {
                    f64::INFINITY
                } else {
                    number(s, end)?
                };
                (start, end)
            }
            None => (0.0, number(s, body)?),
        };
        if start > end {
            return Err(bad("the start is above the end"));
        }
        Ok(Range {
            start,
            end,
            inside,
            text: text.to_string(),
        })
    }
}

impl Range {
    /// Whether `value` raises this threshold's alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = value >= self.start && value <= self.end;
        if self.inside {
            within
        } else {
            !within
        }
    }

    /// The range as given, for perfdata.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Range {
        s.parse().unwrap()
    }

    #[test]
    fn plain_number_alerts_outside_zero_to_n() {
        let t = r("10");
        assert!(!t.alerts(0.0) && !t.alerts(10.0) && !t.alerts(5.5));
        assert!(t.alerts(10.01) && t.alerts(-1.0));
    }

    #[test]
    fn open_end_alerts_below_start() {
        let t = r("10:");
        assert!(t.alerts(9.99));
        assert!(!t.alerts(10.0) && !t.alerts(1e12));
    }

    #[test]
    fn tilde_start_alerts_above_end_only() {
        let t = r("~:10");
        assert!(!t.alerts(-1e12) && !t.alerts(10.0));
        assert!(t.alerts(10.5));
    }

    #[test]
    fn bounded_range_alerts_outside_with_inclusive_ends() {
        let t = r("10:20");
        assert!(t.alerts(9.0) && t.alerts(21.0));
        assert!(!t.alerts(10.0) && !t.alerts(20.0) && !t.alerts(15.0));
    }

    #[test]
    fn at_sign_alerts_inside_with_inclusive_ends() {
        let t = r("@10:20");
        assert!(t.alerts(10.0) && t.alerts(20.0) && t.alerts(15.0));
        assert!(!t.alerts(9.0) && !t.alerts(21.0));
    }

    #[test]
    fn tilde_to_infinity_never_alerts_and_its_inverse_always_does() {
        assert!(!r("~:").alerts(-1e300) && !r("~:").alerts(1e300));
        assert!(r("@~:").alerts(0.0));
    }

    #[test]
    fn empty_start_is_zero_and_decimals_work() {
        assert!(r(":5").alerts(-0.1));
        assert!(!r("0.5:1.5").alerts(1.5));
        assert!(r("-5:-1").alerts(0.0));
    }

    #[test]
    fn malformed_ranges_are_refused_with_the_text() {
        for bad in [
            "", "@", "abc", "20:10", "1e3", "inf", "10:x", "~", "1:2:3", "nan",
        ] {
            let e = bad.parse::<Range>().unwrap_err();
            assert_eq!(e.text, bad, "{bad}");
        }
    }

    #[test]
    fn no_input_panics() {
        // A cheap exhaustive sweep over short strings of the range alphabet.
        let alphabet = ['0', '1', '9', '.', '-', '+', ':', '~', '@', 'e', ' '];
        let mut count = 0;
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for d in alphabet {
                        let s: String = [a, b, c, d].iter().collect();
                        let _ = s.parse::<Range>().map(|r| r.alerts(1.0));
                        count += 1;
                    }
                }
            }
        }
        assert_eq!(count, 11usize.pow(4));
    }
}
