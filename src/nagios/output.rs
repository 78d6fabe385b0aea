//! What a check prints and returns, following the monitoring-plugins
//! guidelines: one status line `ZKPARITY <CHECK> <STATE> - text | perfdata`,
//! long output on further lines, exit code 0..=3 and nothing else.

use std::fmt::Write;

use crate::error::{EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING};

/// Plugin states. Their exit codes are [`State::exit_code`]; their order is
/// Nagios's precedence (see [`State::worst`]), not the exit codes'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum State {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
            State::Unknown => "UNKNOWN",
        }
    }

    /// A state by the name [`State::as_str`] gives it (as state files
    /// store it); a name no version wrote is UNKNOWN.
    pub(crate) fn named(name: &str) -> State {
        [State::Ok, State::Warning, State::Critical]
            .into_iter()
            .find(|s| s.as_str() == name)
            .unwrap_or(State::Unknown)
    }

    pub fn exit_code(self) -> i32 {
        match self {
            State::Ok => EXIT_OK,
            State::Warning => EXIT_WARNING,
            State::Critical => EXIT_CRITICAL,
            State::Unknown => EXIT_UNKNOWN,
        }
    }

    /// The worse of two states, UNKNOWN ranking below WARNING and CRITICAL
    /// as in Nagios: a check that cannot judge one thing still raises what
    /// it found wrong elsewhere.
    pub(crate) fn worst(self, other: State) -> State {
        self.max(other)
    }

    fn rank(self) -> u8 {
        match self {
            State::Ok => 0,
            State::Unknown => 1,
            State::Warning => 2,
            State::Critical => 3,
        }
    }
}

impl Ord for State {
    fn cmp(&self, other: &State) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for State {
    fn partial_cmp(&self, other: &State) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One `'label'=value[uom];warn;crit;min;max` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Perf {
    pub label: String,
    pub value: f64,
    pub uom: &'static str,
    pub warn: Option<String>,
    pub crit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Perf {
    pub(crate) fn count(label: &str, value: u64) -> Perf {
        Perf {
            label: label.to_string(),
            value: value as f64,
            uom: "",
            warn: None,
            crit: None,
            min: Some(0.0),
            max: None,
        }
    }

    pub(crate) fn seconds(label: &str, value: f64) -> Perf {
        Perf {
            uom: "s",
            ..Perf::count(label, 0)
        }
        .with_value(value)
    }

    fn with_value(mut self, value: f64) -> Perf {
        self.value = value;
        self
    }

    pub(crate) fn thresholds(mut self, warn: Option<String>, crit: Option<String>) -> Perf {
        self.warn = warn;
        self.crit = crit;
        self
    }
}

/// Decimal without exponent, trailing zeros trimmed: perfdata parsers want
/// `[-0-9.]` and the C locale.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Labels lose `=` and `'`, which perfdata cannot carry, and are quoted when
/// they hold a space.
fn label(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .map(|c| {
            if c == '=' || c == '\'' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if clean.contains(' ') {
        format!("'{clean}'")
    } else {
        clean
    }
}

fn perf_entry(p: &Perf) -> String {
    let mut s = format!("{}={}{}", label(&p.label), number(p.value), p.uom);
    let fields = [
        p.warn.clone(),
        p.crit.clone(),
        p.min.map(number),
        p.max.map(number),
    ];
    let last = fields.iter().rposition(Option::is_some);
    if let Some(last) = last {
        for f in &fields[..=last] {
            s.push(';');
            s.push_str(f.as_deref().unwrap_or(""));
        }
    }
    s
}

/// Text from elsewhere (paths, server messages) must not break the format: a
/// `|` would start perfdata and a newline would start long output.
pub(crate) fn clean_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '|' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// A check's complete answer.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    /// `PARITY`, `ZNODE`, ...
    pub check: &'static str,
    pub state: State,
    pub summary: String,
    pub perfdata: Vec<Perf>,
    pub long_output: Vec<String>,
}

impl CheckResult {
    pub fn unknown(check: &'static str, reason: impl AsRef<str>) -> CheckResult {
        CheckResult {
            check,
            state: State::Unknown,
            summary: reason.as_ref().to_string(),
            perfdata: Vec::new(),
            long_output: Vec::new(),
        }
    }

    /// The text to print on stdout: status line, then long output lines, the
    /// perfdata on the status line only.
    pub fn render(&self) -> String {
        let mut out = format!(
            "ZKPARITY {} {} - {}",
            self.check,
            self.state.as_str(),
            clean_text(&self.summary)
        );
        if !self.perfdata.is_empty() {
            let perf: Vec<String> = self.perfdata.iter().map(perf_entry).collect();
            let _ = write!(out, " | {}", perf.join(" "));
        }
        out.push('\n');
        for line in &self.long_output {
            out.push_str(&clean_text(line));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_has_the_guidelines_shape() {
        let r = CheckResult {
            check: "PARITY",
            state: State::Critical,
            summary: "2 differences".into(),
            perfdata: vec![
                Perf::count("differences", 2).thresholds(Some("0".into()), None),
                Perf::seconds("elapsed", 1.25),
            ],
            long_output: vec!["data /a".into()],
        };
        assert_eq!(
            r.render(),
            "ZKPARITY PARITY CRITICAL - 2 differences | differences=2;0;;0 elapsed=1.25s;;;0\ndata /a\n"
        );
    }

    #[test]
    fn trailing_empty_fields_are_dropped() {
        let p = Perf {
            min: None,
            ..Perf::count("x", 3)
        };
        assert_eq!(perf_entry(&p), "x=3");
    }

    #[test]
    fn labels_with_spaces_are_quoted_and_forbidden_characters_replaced() {
        assert_eq!(label("source nodes"), "'source nodes'");
        assert_eq!(label("a=b'c"), "a_b_c");
    }

    #[test]
    fn numbers_have_no_exponent() {
        assert_eq!(number(1e20), "100000000000000000000");
        assert_eq!(number(0.000001), "0.000001");
        assert_eq!(number(42.0), "42");
    }

    #[test]
    fn pipes_and_newlines_in_text_cannot_break_the_format() {
        let r = CheckResult::unknown("ZNODE", "bad | path\nsecond");
        assert_eq!(r.render(), "ZKPARITY ZNODE UNKNOWN - bad / path second\n");
    }

    #[test]
    fn critical_outranks_unknown_which_outranks_ok() {
        assert_eq!(State::Unknown.worst(State::Critical), State::Critical);
        assert_eq!(State::Ok.worst(State::Unknown), State::Unknown);
        assert_eq!(State::Warning.worst(State::Unknown), State::Warning);
    }
}
