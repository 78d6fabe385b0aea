//! The two text formats a scraper reads: Prometheus's classic text format
//! (0.0.4) and OpenMetrics 1.0, chosen by the scraper's `Accept` header.
//!
//! They differ in small ways that matter to parsers: an OpenMetrics counter
//! family is named without its `_total` suffix and an info family without
//! `_info`, families with a unit carry a `# UNIT` line, and the exposition
//! ends with `# EOF`.

use std::fmt::Write;

/// Which format to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the scraper lists it as acceptable (Prometheus does,
    /// first, since 2.5); the classic format otherwise, which every reader
    /// of Prometheus metrics (curl, promtool, older scrapers) understands.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let wants_openmetrics = accept.is_some_and(|a| {
            a.split(',').any(|part| {
                let mut params = part.split(';').map(str::trim);
                let media = params.next().unwrap_or("");
                // `q=0` means "not acceptable".
                media.eq_ignore_ascii_case("application/openmetrics-text")
                    && !params.any(|p| {
                        p.replace(' ', "")
                            .strip_prefix("q=")
                            .and_then(|q| q.parse::<f64>().ok())
                            .is_some_and(|q| q <= 0.0)
                    })
            })
        });
        if wants_openmetrics {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Samples are named `<family>_total`.
    Counter,
    /// One sample, value 1, named `<family>_info`, its labels the facts.
    Info,
}

/// One sample: its labels (name, value) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// A metric family. `name` is the family's name: without `_total` for a
/// counter and without `_info` for an info family.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    fn sample_name(&self) -> String {
        match self.kind {
            Kind::Gauge => self.name.to_string(),
            Kind::Counter => format!("{}_total", self.name),
            Kind::Info => format!("{}_info", self.name),
        }
    }

    /// The base unit its name ends with, for OpenMetrics' `# UNIT`.
    fn unit(&self) -> Option<&'static str> {
        ["seconds", "bytes"]
            .into_iter()
            .find(|u| self.name.ends_with(&format!("_{u}")))
    }
}

/// Families in the order they were added; a family is created on first use.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Adds a sample to the family `name`, creating the family with `help`
    /// and `kind` when it is new.
    pub fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Vec<(&'static str, String)>,
        value: f64,
    ) {
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    help,
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        self.families[i].samples.push(Sample { labels, value });
    }

    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The exposition in `format`. Families without samples are left out.
    pub fn render(&self, format: Format) -> String {
        let mut out = String::new();
        for f in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let sample_name = f.sample_name();
            let (type_name, type_word) = match (format, f.kind) {
                (Format::Text, Kind::Info) => (sample_name.as_str(), "gauge"),
                (Format::Text, Kind::Counter) => (sample_name.as_str(), "counter"),
                (Format::Text, Kind::Gauge) => (sample_name.as_str(), "gauge"),
                (Format::OpenMetrics, Kind::Info) => (f.name, "info"),
                (Format::OpenMetrics, Kind::Counter) => (f.name, "counter"),
                (Format::OpenMetrics, Kind::Gauge) => (f.name, "gauge"),
            };
            let _ = writeln!(out, "# HELP {type_name} {}", escape_help(f.help, format));
            let _ = writeln!(out, "# TYPE {type_name} {type_word}");
            if format == Format::OpenMetrics {
                if let Some(unit) = f.unit() {
                    let _ = writeln!(out, "# UNIT {type_name} {unit}");
                }
            }
            for s in &f.samples {
                out.push_str(&sample_name);
                if !s.labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in s.labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", number(s.value));
            }
        }
        if format == Format::OpenMetrics {
            out.push_str("# EOF\n");
        }
        out
    }
}

/// A sample value as both formats write it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: backslashes and line breaks escaped in both formats; double
/// quotes only in OpenMetrics, whose grammar asks for it (the classic
/// parser refuses `\"` there).
fn escape_help(v: &str, format: Format) -> String {
    match format {
        Format::OpenMetrics => escape_label(v),
        Format::Text => v.replace('\\', "\\\\").replace('\n', "\\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Exposition {
        let mut e = Exposition::new();
        e.add(
            "zkparity_agent",
            "Build.",
            Kind::Info,
            vec![("version", "0.1.0".into())],
            1.0,
        );
        e.add(
            "zkparity_rounds",
            "Rounds run.",
            Kind::Counter,
            vec![("pair", "kafka".into())],
            7.0,
        );
        e.add(
            "zkparity_confirmation_lag_seconds",
            "Lag.",
            Kind::Gauge,
            vec![("pair", "a\"b\\c\nd".into())],
            1.5,
        );
        e.add("zkparity_empty", "Never sampled.", Kind::Gauge, vec![], 0.0);
        e.families[3].samples.clear();
        e
    }

    #[test]
    fn the_classic_format_names_counters_with_their_total_suffix_and_escapes_labels() {
        let text = sample().render(Format::Text);
        assert_eq!(
            text,
            "# HELP zkparity_agent_info Build.\n\
             # TYPE zkparity_agent_info gauge\n\
             zkparity_agent_info{version=\"0.1.0\"} 1\n\
             # HELP zkparity_rounds_total Rounds run.\n\
             # TYPE zkparity_rounds_total counter\n\
             zkparity_rounds_total{pair=\"kafka\"} 7\n\
             # HELP zkparity_confirmation_lag_seconds Lag.\n\
             # TYPE zkparity_confirmation_lag_seconds gauge\n\
             zkparity_confirmation_lag_seconds{pair=\"a\\\"b\\\\c\\nd\"} 1.5\n"
        );
    }

    #[test]
    fn openmetrics_names_families_without_suffixes_gives_units_and_ends_with_eof() {
        let text = sample().render(Format::OpenMetrics);
        assert!(text.contains("# TYPE zkparity_agent info\nzkparity_agent_info{"));
        assert!(text.contains("# TYPE zkparity_rounds counter\nzkparity_rounds_total{"));
        assert!(text.contains(
            "# TYPE zkparity_confirmation_lag_seconds gauge\n# UNIT zkparity_confirmation_lag_seconds seconds\n"
        ));
        assert!(!text.contains("zkparity_empty"));
        assert!(text.ends_with("\n# EOF\n"));
    }

    #[test]
    fn openmetrics_is_served_only_to_a_scraper_that_accepts_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
        assert_eq!(Format::negotiate(None), Format::Text);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text; q=0, text/plain")),
            Format::Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0.000,text/plain")),
            Format::Text
        );
    }

    #[test]
    fn values_are_written_as_prometheus_parses_them() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(1_700_000_000.123), "1700000000.123");
    }
}
