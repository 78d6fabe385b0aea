//! Parsers for four-letter-word answers, ZooKeeper 3.4 to 3.9.
//!
//! Every parser takes whatever text came back (from a server, or from
//! something else listening on its port) and returns what it could read;
//! nothing here panics or fails, because a half-understood answer is still
//! worth reporting. The formats and their variants:
//!
//! - `srvr`/`stat`: `Key: value` lines. The latency average is a double from
//!   3.6 on (`0/2.5/5`), an integer before; 3.3 said `Alive connections`.
//!   Debian's build reports its version as `3.8.0-${mvngit.commit.id}, …`.
//! - `mntr`: `zk_<key>\t<value>` lines in no particular order. Values are
//!   integers, Java doubles (`0.3333`, `309.0`, `1.2E7`, `NaN`) or text. With
//!   the Prometheus metrics provider keys carry labels
//!   (`zk_readlatency{quantile="0.5"}`) and every value is a double. Key sets
//!   grow with top-level znode names (`zk_app_write_per_namespace`) and
//!   learner ids; 3.6 renamed `zk_followers` to `zk_learners`.
//! - A word left out of `4lw.commands.whitelist` answers
//!   `<word> is not executed because it is not in the whitelist.`, and a
//!   server without a quorum answers `This ZooKeeper instance is not
//!   currently serving requests`: see [`classify`].

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

/// The one-line answer of a word that is not whitelisted ends with this.
pub(crate) const REFUSED_SUFFIX: &str = "is not executed because it is not in the whitelist.";
/// The answer of most words while the server has no quorum or is starting.
pub(crate) const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// What an answer is, before its content is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply<'a> {
    /// Not in the server's whitelist.
    Refused,
    /// The server runs but does not serve (no quorum, still starting).
    NotServing,
    /// The server closed the connection without writing anything.
    Empty,
    /// Anything else: the answer proper.
    Data(&'a str),
}

/// Tells a refusal or a not-serving notice from an answer. Both are single
/// lines, so an answer that merely contains those words is still data.
pub(crate) fn classify(answer: &str) -> Reply<'_> {
    let trimmed = answer.trim();
    if trimmed.is_empty() {
        return Reply::Empty;
    }
    if trimmed.contains('\n') {
        return Reply::Data(answer);
    }
    if trimmed.ends_with(REFUSED_SUFFIX) {
        return Reply::Refused;
    }
    if trimmed.starts_with(NOT_SERVING) {
        return Reply::NotServing;
    }
    Reply::Data(answer)
}

/// The first non-empty line of an answer, shortened, for messages about
/// answers that could not be read.
pub(crate) fn first_line(answer: &str) -> String {
    let line = answer.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        None => "(empty answer)".to_string(),
        Some(l) if l.chars().count() > 80 => {
            let short: String = l.chars().take(77).collect();
            format!("{short}...")
        }
        Some(l) => l.to_string(),
    }
}

/// A server's role, as `srvr` (`Mode:`) or `mntr` (`zk_server_state`) says.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
    /// Quorum member that lost its quorum and serves read-only clients.
    ReadOnly,
    /// A mode this parser does not know, as the server spelled it.
    Other(String),
}

impl Mode {
    pub(crate) fn parse(s: &str) -> Mode {
        match s.trim() {
            "leader" => Mode::Leader,
            "follower" => Mode::Follower,
            "observer" => Mode::Observer,
            "standalone" => Mode::Standalone,
            "read-only" | "read_only" | "readonly" => Mode::ReadOnly,
            other => Mode::Other(other.to_string()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::Standalone => "standalone",
            Mode::ReadOnly => "read-only",
            Mode::Other(s) => s,
        }
    }

    /// Leader, follower, observer or read-only: only a quorum member is ever
    /// one of these.
    pub(crate) fn is_quorum_member(&self) -> bool {
        matches!(
            self,
            Mode::Leader | Mode::Follower | Mode::Observer | Mode::ReadOnly
        )
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A ZooKeeper version string and the release number read from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Version {
    /// As the server wrote it, e.g. `3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC`.
    pub text: String,
    /// `3.8.0`, or as many numbers as the text starts with; `None` if it
    /// starts with none.
    pub release: Option<String>,
    #[serde(skip)]
    pub numbers: Vec<u32>,
}

impl Version {
    pub(crate) fn parse(text: &str) -> Version {
        let text = text.trim();
        let numbers: Vec<u32> = text
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap_or("")
            .split('.')
            .take(3)
            .map_while(|n| n.parse::<u32>().ok())
            .collect();
        let release = (!numbers.is_empty()).then(|| {
            numbers
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(".")
        });
        Version {
            text: text.to_string(),
            release,
            numbers,
        }
    }

    /// Whether the release is at least `major.minor`; `None` if unknown.
    pub(crate) fn at_least(&self, major: u32, minor: u32) -> Option<bool> {
        match self.numbers.as_slice() {
            [ma, mi, ..] => Some((*ma, *mi) >= (major, minor)),
            [ma] if *ma != major => Some(*ma > major),
            _ => None,
        }
    }
}

/// Request latency in milliseconds. The average is a double from 3.6 on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Latency {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

/// `Proposal sizes last/min/max`, leader only; -1 before the first proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ProposalSizes {
    pub last: i64,
    pub min: i64,
    pub max: i64,
}

/// What `srvr` (or `stat`) says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Srvr {
    pub version: Option<String>,
    /// The `READ-ONLY mode` banner was there.
    pub read_only: bool,
    pub latency: Option<Latency>,
    pub received: Option<u64>,
    pub sent: Option<u64>,
    pub connections: Option<u64>,
    pub outstanding: Option<u64>,
    pub zxid: Option<u64>,
    pub mode: Option<Mode>,
    pub node_count: Option<u64>,
    pub proposal_sizes: Option<ProposalSizes>,
}

impl Srvr {
    /// Whether anything at all was recognised: a port that answers with no
    /// known line is not a ZooKeeper server.
    pub(crate) fn recognised(&self) -> bool {
        self.version.is_some() || self.mode.is_some() || self.zxid.is_some()
    }
}

pub fn parse_srvr(text: &str) -> Srvr {
    let mut out = Srvr::default();
    for line in text.lines() {
        // `stat` lists one client per indented line; none of them is ours.
        if line.starts_with(' ') || line.starts_with('\t') {
            continue;
        }
        let line = line.trim();
        if line.starts_with("READ-ONLY mode") {
            out.read_only = true;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Zookeeper version" => out.version = Some(value.to_string()),
            "Latency min/avg/max" => out.latency = parse_latency(value),
            "Received" => out.received = parse_u64(value),
            "Sent" => out.sent = parse_u64(value),
            "Connections" | "Alive connections" => out.connections = parse_u64(value),
            "Outstanding" => out.outstanding = parse_u64(value),
            "Zxid" => out.zxid = parse_zxid(value),
            "Mode" if !value.is_empty() => out.mode = Some(Mode::parse(value)),
            "Node count" => out.node_count = parse_u64(value),
            "Proposal sizes last/min/max" => out.proposal_sizes = parse_proposal_sizes(value),
            _ => {}
        }
    }
    out
}

fn parse_latency(value: &str) -> Option<Latency> {
    let mut parts = value.split('/').map(parse_f64);
    let (min, avg, max) = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(Latency { min, avg, max })
}

fn parse_proposal_sizes(value: &str) -> Option<ProposalSizes> {
    let mut parts = value.split('/').map(|p| p.trim().parse::<i64>().ok());
    let (last, min, max) = (parts.next()??, parts.next()??, parts.next()??);
    parts
        .next()
        .is_none()
        .then_some(ProposalSizes { last, min, max })
}

/// `0x20000000c` (or bare hex) to a zxid.
pub(crate) fn parse_zxid(value: &str) -> Option<u64> {
    let v = value.trim();
    let hex = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .unwrap_or(v);
    if hex.is_empty() || hex.starts_with('+') {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A non-negative count, written as an integer or as a Java double that holds
/// one (`309`, `309.0`, `3.09E2`), which is how the Prometheus provider
/// prints every value.
pub(crate) fn parse_u64(value: &str) -> Option<u64> {
    let v = value.trim();
    if v.starts_with('+') {
        return None;
    }
    if let Ok(n) = v.parse::<u64>() {
        return Some(n);
    }
    let f = parse_f64(v)?;
    // 2^64 is exactly representable; anything at or above it does not fit.
    (f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0).then_some(f as u64)
}

/// A Java number: integers, doubles, `NaN`, `Infinity`, `-Infinity`.
pub(crate) fn parse_f64(value: &str) -> Option<f64> {
    let v = value.trim();
    // Rust also takes "inf", "infinity" and a leading '+', none of which Java
    // prints; refusing them keeps text values (a version, a state) text.
    if v.is_empty() || v.starts_with('+') {
        return None;
    }
    match v {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E'))
    {
        return None;
    }
    v.parse::<f64>().ok()
}

/// One `mntr` value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    Int(i64),
    Float(f64),
    Text(String),
}

impl MetricValue {
    pub(crate) fn parse(raw: &str) -> MetricValue {
        let v = raw.trim();
        if let Ok(n) = v.parse::<i64>() {
            if !v.starts_with('+') {
                return MetricValue::Int(n);
            }
        }
        match parse_f64(v) {
            Some(f) => MetricValue::Float(f),
            None => MetricValue::Text(v.to_string()),
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            MetricValue::Int(n) => Some(*n as f64),
            MetricValue::Float(f) => Some(*f),
            MetricValue::Text(_) => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            MetricValue::Int(n) => Some(*n),
            MetricValue::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(*f as i64),
            _ => None,
        }
    }

    pub(crate) fn as_u64(&self) -> Option<u64> {
        self.as_i64().and_then(|n| u64::try_from(n).ok())
    }
}

impl Serialize for MetricValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MetricValue::Int(n) => s.serialize_i64(*n),
            // JSON has no NaN or infinity; null says "no number" honestly.
            MetricValue::Float(f) if !f.is_finite() => s.serialize_none(),
            MetricValue::Float(f) => s.serialize_f64(*f),
            MetricValue::Text(t) => s.serialize_str(t),
        }
    }
}

/// A parsed `mntr` answer: every key as printed (with its `zk_` prefix and
/// any labels), in sorted order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mntr {
    pub metrics: BTreeMap<String, MetricValue>,
    /// Lines that were not `key<TAB>value`.
    pub malformed_lines: usize,
}

pub fn parse_mntr(text: &str) -> Mntr {
    let mut out = Mntr::default();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        // Label values may hold spaces (`jvm_info{runtime="OpenJDK Runtime
        // Environment"}`), so a tab separates; a plain `key value` pair
        // (hand-made tools) is taken when neither side could be more.
        let split = line.split_once('\t').or_else(|| {
            let (key, value) = line.trim().split_once(char::is_whitespace)?;
            let value = value.trim();
            (!key.contains('{') && !value.contains(char::is_whitespace)).then_some((key, value))
        });
        match split {
            Some((key, value)) if !key.trim().is_empty() => {
                out.metrics
                    .insert(key.trim().to_string(), MetricValue::parse(value));
            }
            _ => out.malformed_lines += 1,
        }
    }
    out
}

impl Mntr {
    /// A value by its key, with or without the `zk_` prefix.
    pub(crate) fn get(&self, key: &str) -> Option<&MetricValue> {
        self.metrics.get(key).or_else(|| {
            if key.starts_with("zk_") {
                None
            } else {
                self.metrics.get(&format!("zk_{key}"))
            }
        })
    }

    pub(crate) fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(MetricValue::as_u64)
    }

    pub(crate) fn f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(MetricValue::as_f64)
    }

    /// A text value; numbers are given back as they would print.
    pub(crate) fn text(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| match v {
            MetricValue::Text(t) => t.clone(),
            MetricValue::Int(n) => n.to_string(),
            MetricValue::Float(f) => f.to_string(),
        })
    }

    /// The number of learners the leader serves: `zk_learners` from 3.6 on,
    /// `zk_followers` (which counted observers too) before.
    pub(crate) fn learners(&self) -> Option<u64> {
        self.u64("zk_learners").or_else(|| self.u64("zk_followers"))
    }

    /// Per-namespace (top-level znode) metrics of 3.7+, from both the
    /// default provider's key names and the Prometheus provider's labels.
    pub(crate) fn namespaces(&self) -> BTreeMap<String, NamespaceMetrics> {
        let mut out: BTreeMap<String, NamespaceMetrics> = BTreeMap::new();
        for (key, value) in &self.metrics {
            if let Some((ns, field)) = namespace_field(key) {
                let entry = out.entry(ns).or_default();
                let slot = match field {
                    NsField::QuotaCountLimit => &mut entry.quota_count_limit,
                    NsField::QuotaBytesLimit => &mut entry.quota_bytes_limit,
                    NsField::QuotaCountUsage => &mut entry.quota_count_usage,
                    NsField::QuotaBytesUsage => &mut entry.quota_bytes_usage,
                    NsField::WriteCount => &mut entry.write_count,
                    NsField::WriteSum => &mut entry.write_sum,
                    NsField::ReadCount => &mut entry.read_count,
                    NsField::ReadSum => &mut entry.read_sum,
                };
                *slot = value.as_i64();
            }
        }
        out
    }
}

/// What `mntr` says about one top-level znode ("namespace"). The quota
/// gauges exist only for namespaces with a quota; -1 means no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NamespaceMetrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_count_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_bytes_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_count_usage: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_bytes_usage: Option<i64>,
    /// Count and sum of the `write_per_namespace` summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_sum: Option<i64>,
    /// Count and sum of the `read_per_namespace` summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_sum: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NsField {
    QuotaCountLimit,
    QuotaBytesLimit,
    QuotaCountUsage,
    QuotaBytesUsage,
    WriteCount,
    WriteSum,
    ReadCount,
    ReadSum,
}

const NS_GAUGES: [(&str, NsField); 4] = [
    ("quota_count_limit_per_namespace", NsField::QuotaCountLimit),
    ("quota_bytes_limit_per_namespace", NsField::QuotaBytesLimit),
    ("quota_count_usage_per_namespace", NsField::QuotaCountUsage),
    ("quota_bytes_usage_per_namespace", NsField::QuotaBytesUsage),
];

/// `zk_app_quota_count_usage_per_namespace`, `zk_cnt_app_write_per_namespace`
/// (default provider), or `zk_quota_count_usage_per_namespace{key="app"}`,
/// `zk_write_per_namespace_count{key="app"}` (Prometheus provider).
fn namespace_field(key: &str) -> Option<(String, NsField)> {
    let (name, labels) = split_labels(key)?;
    let name = name.strip_prefix("zk_").unwrap_or(name);
    if let Some(labels) = labels {
        let ns = labels.iter().find(|(k, _)| k == "key").map(|(_, v)| v)?;
        if labels.iter().any(|(k, _)| k == "quantile") {
            return None;
        }
        let field = match name {
            "write_per_namespace_count" => NsField::WriteCount,
            "write_per_namespace_sum" => NsField::WriteSum,
            "read_per_namespace_count" => NsField::ReadCount,
            "read_per_namespace_sum" => NsField::ReadSum,
            other => NS_GAUGES.iter().find(|(n, _)| *n == other)?.1,
        };
        return Some((ns.clone(), field));
    }
    for (suffix, field) in NS_GAUGES {
        if let Some(ns) = name.strip_suffix(suffix).and_then(|p| p.strip_suffix('_')) {
            return (!ns.is_empty()).then(|| (ns.to_string(), field));
        }
    }
    let (stat, rest) = name.split_once('_')?;
    let (ns, field) = if let Some(ns) = rest.strip_suffix("_write_per_namespace") {
        match stat {
            "cnt" => (ns, NsField::WriteCount),
            "sum" => (ns, NsField::WriteSum),
            _ => return None,
        }
    } else if let Some(ns) = rest.strip_suffix("_read_per_namespace") {
        match stat {
            "cnt" => (ns, NsField::ReadCount),
            "sum" => (ns, NsField::ReadSum),
            _ => return None,
        }
    } else {
        return None;
    };
    (!ns.is_empty()).then(|| (ns.to_string(), field))
}

/// Labels of a Prometheus-style key: `name{a="x",b="y"}` gives `name` and
/// the pairs; a key without `{` gives no labels. `None` if the braces are
/// malformed.
#[allow(clippy::type_complexity)]
pub(crate) fn split_labels(key: &str) -> Option<(&str, Option<Vec<(String, String)>>)> {
    let Some(open) = key.find('{') else {
        return Some((key, None));
    };
    let name = &key[..open];
    let mut rest = key[open + 1..].strip_suffix('}')?;
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start_matches(',');
        if rest.is_empty() {
            break;
        }
        let (label, after) = rest.split_once("=\"")?;
        // The provider does not escape label values, so a value ends at the
        // first quote that is followed by a separator or the end.
        let mut end = None;
        for (i, _) in after.match_indices('"') {
            let next = &after[i + 1..];
            if next.is_empty() || next.starts_with(',') {
                end = Some(i);
                break;
            }
        }
        let end = end?;
        labels.push((label.trim().to_string(), after[..end].to_string()));
        rest = &after[end + 1..];
    }
    Some((name, Some(labels)))
}

/// What `isro` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isro {
    /// `rw`: serving read-write.
    ReadWrite,
    /// `ro`: serving read-only clients only.
    ReadOnly,
    /// `null`: the server runs but no ZooKeeperServer is serving.
    NotServing,
}

pub(crate) fn parse_isro(text: &str) -> Option<Isro> {
    match text.trim() {
        "rw" => Some(Isro::ReadWrite),
        "ro" => Some(Isro::ReadOnly),
        "null" => Some(Isro::NotServing),
        _ => None,
    }
}

/// `ruok` answers `imok` when the process runs, quorum or not.
pub(crate) fn parse_ruok(text: &str) -> Option<bool> {
    match text.trim() {
        "imok" => Some(true),
        "" => None,
        _ => Some(false),
    }
}

/// One `server.N=` line of `conf`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: u64,
    pub host: String,
    pub quorum_port: Option<u16>,
    pub election_port: Option<u16>,
    /// `participant` or `observer`.
    pub role: Option<String>,
    /// The client address after `;`, when the configuration gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
}

impl Member {
    /// Observers do not vote.
    pub(crate) fn votes(&self) -> bool {
        self.role.as_deref() != Some("observer")
    }
}

/// What `conf` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Conf {
    /// Every `key=value` line except the `server.N` ones.
    pub entries: BTreeMap<String, String>,
    pub server_id: Option<u64>,
    pub client_port: Option<u16>,
    pub members: Vec<Member>,
}

pub(crate) fn parse_conf(text: &str) -> Conf {
    let mut out = Conf::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if let Some(id) = key.strip_prefix("server.") {
            if let Some(m) = id
                .parse::<u64>()
                .ok()
                .and_then(|id| parse_member(id, value))
            {
                out.members.push(m);
            }
            continue;
        }
        out.entries.insert(key.to_string(), value.to_string());
    }
    out.server_id = out.entries.get("serverId").and_then(|v| v.parse().ok());
    out.client_port = out.entries.get("clientPort").and_then(|v| v.parse().ok());
    out
}

/// `host:quorumPort:electionPort[:role][;clientAddress]`, host possibly `[v6]`.
fn parse_member(id: u64, value: &str) -> Option<Member> {
    let (server, client) = match value.split_once(';') {
        Some((s, c)) => (s.trim(), Some(c.trim().to_string())),
        None => (value.trim(), None),
    };
    let (host, rest) = if let Some(v6) = server.strip_prefix('[') {
        let (h, r) = v6.split_once(']')?;
        (h, r.strip_prefix(':').unwrap_or(r))
    } else {
        server.split_once(':').unwrap_or((server, ""))
    };
    if host.is_empty() {
        return None;
    }
    let mut parts = rest.split(':');
    let quorum_port = parts.next().and_then(|p| p.parse().ok());
    let election_port = parts.next().and_then(|p| p.parse().ok());
    let role = parts
        .next()
        .filter(|r| !r.is_empty())
        .map(|r| r.to_string());
    Some(Member {
        id,
        host: host.to_string(),
        quorum_port,
        election_port,
        role,
        client_address: client.filter(|c| !c.is_empty()),
    })
}

/// `envi`: the `key=value` lines after `Environment:`.
pub(crate) fn parse_envi(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// What `wchs` says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Wchs {
    pub connections: Option<u64>,
    pub paths: Option<u64>,
    pub total_watches: Option<u64>,
}

/// `<C> connections watching <P> paths` / `Total watches:<W>`.
pub(crate) fn parse_wchs(text: &str) -> Wchs {
    let mut out = Wchs::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(total) = line.strip_prefix("Total watches:") {
            out.total_watches = parse_u64(total);
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [c, "connections", "watching", p, "paths"] = words.as_slice() {
            out.connections = parse_u64(c);
            out.paths = parse_u64(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_and_not_serving_are_recognised_only_as_whole_answers() {
        assert_eq!(
            classify("ruok is not executed because it is not in the whitelist.\n"),
            Reply::Refused
        );
        assert_eq!(classify(&format!("{NOT_SERVING}\n")), Reply::NotServing);
        // `hash` says it without the newline.
        assert_eq!(classify(NOT_SERVING), Reply::NotServing);
        assert_eq!(classify(""), Reply::Empty);
        assert_eq!(classify("\n\n"), Reply::Empty);
        let data = format!("zk_version\t3.8.0\nzk_note\t{NOT_SERVING}\n");
        assert_eq!(classify(&data), Reply::Data(&data));
    }

    #[test]
    fn srvr_of_3_4_with_integer_average_and_3_3_alive_connections() {
        let s = parse_srvr(
            "Zookeeper version: 3.4.14-4c25d480e66aadd371de8bd2fd8da255ac140bcf, built on 03/06/2019 16:18 GMT\n\
             Latency min/avg/max: 0/3/41\nReceived: 10\nSent: 9\nAlive connections: 4\n\
             Outstanding: 0\nZxid: 0x10000002a\nMode: follower\nNode count: 4\n",
        );
        assert_eq!(
            s.latency,
            Some(Latency {
                min: 0.0,
                avg: 3.0,
                max: 41.0
            })
        );
        assert_eq!(s.connections, Some(4));
        assert_eq!(s.zxid, Some(0x1_0000_002a));
        assert_eq!(s.mode, Some(Mode::Follower));
        assert_eq!(s.node_count, Some(4));
    }

    #[test]
    fn version_numbers_come_from_any_build_string() {
        for (text, release) in [
            (
                "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC",
                "3.8.0",
            ),
            (
                "3.6.3--6401e4ad2087061bc6b9f80dec2d69f2e3c8660a, built on 04/08/2021",
                "3.6.3",
            ),
            ("3.4.5-cdh5.16.2--1, built on 06/03/2019 10:40 GMT", "3.4.5"),
            ("3.5.0-alpha", "3.5.0"),
            ("3.9", "3.9"),
        ] {
            assert_eq!(Version::parse(text).release.as_deref(), Some(release));
        }
        let v = Version::parse("unknown");
        assert_eq!(v.release, None);
        assert_eq!(v.at_least(3, 5), None);
        assert_eq!(Version::parse("3.4.14").at_least(3, 5), Some(false));
        assert_eq!(Version::parse("3.10.0").at_least(3, 5), Some(true));
        assert_eq!(Version::parse("4").at_least(3, 5), Some(true));
    }

    #[test]
    fn mntr_values_keep_their_kind_and_prometheus_doubles_read_as_counts() {
        let m = parse_mntr(
            "zk_version\t3.8.0-x, built on y\nzk_avg_latency\t2.1782\nzk_znode_count\t309.0\n\
             zk_min_proposal_size\t-1\nzk_big\t1.2E7\nzk_nan\tNaN\n\
             zk_readlatency{quantile=\"0.5\"}\t0.0\njunk line without tab or space\n",
        );
        assert_eq!(m.text("version").as_deref(), Some("3.8.0-x, built on y"));
        assert_eq!(m.f64("zk_avg_latency"), Some(2.1782));
        assert_eq!(m.u64("znode_count"), Some(309));
        assert_eq!(
            m.get("min_proposal_size").and_then(MetricValue::as_i64),
            Some(-1)
        );
        assert_eq!(m.u64("min_proposal_size"), None);
        assert_eq!(m.u64("big"), Some(12_000_000));
        assert!(m.f64("nan").is_some_and(f64::is_nan));
        assert_eq!(m.f64("zk_readlatency{quantile=\"0.5\"}"), Some(0.0));
        assert_eq!(m.malformed_lines, 1);
        assert_eq!(
            serde_json::to_string(m.get("nan").unwrap()).unwrap(),
            "null"
        );
    }

    #[test]
    fn learners_fall_back_to_the_pre_3_6_followers_key() {
        assert_eq!(parse_mntr("zk_followers\t2\n").learners(), Some(2));
        assert_eq!(
            parse_mntr("zk_followers\t9\nzk_learners\t2\n").learners(),
            Some(2)
        );
    }

    #[test]
    fn namespaces_from_both_providers() {
        let m = parse_mntr(
            "zk_cnt_app_write_per_namespace\t301\nzk_sum_app_write_per_namespace\t5790\n\
             zk_avg_app_write_per_namespace\t19.2359\nzk_cnt_my_ns_read_per_namespace\t4\n\
             zk_app_quota_count_usage_per_namespace\t303\n\
             zk_quota_bytes_usage_per_namespace{key=\"kafka\"}\t1999.0\n\
             zk_write_per_namespace_count{key=\"kafka\"}\t7.0\n\
             zk_write_per_namespace{key=\"kafka\",quantile=\"0.5\"}\t3.0\n",
        );
        let ns = m.namespaces();
        assert_eq!(ns["app"].write_count, Some(301));
        assert_eq!(ns["app"].write_sum, Some(5790));
        assert_eq!(ns["app"].quota_count_usage, Some(303));
        assert_eq!(ns["my_ns"].read_count, Some(4));
        assert_eq!(ns["kafka"].quota_bytes_usage, Some(1999));
        assert_eq!(ns["kafka"].write_count, Some(7));
        assert_eq!(ns.len(), 3, "{ns:?}");
    }

    #[test]
    fn labels_with_spaces_commas_and_quotes_do_not_break_the_split() {
        let (name, labels) =
            split_labels("jvm_info{runtime=\"OpenJDK Runtime, 17\",vendor=\"De\"bian\",}").unwrap();
        assert_eq!(name, "jvm_info");
        assert_eq!(
            labels.unwrap(),
            vec![
                ("runtime".to_string(), "OpenJDK Runtime, 17".to_string()),
                ("vendor".to_string(), "De\"bian".to_string())
            ]
        );
        assert_eq!(split_labels("a{b=\"c\""), None);
        assert_eq!(split_labels("plain"), Some(("plain", None)));
    }

    #[test]
    fn conf_members_with_roles_client_addresses_and_ipv6() {
        let c = parse_conf(
            "clientPort=2181\nserverId=2\nmembership: \n\
             server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
             server.2=[::1]:2889:3889:observer\nserver.x=bad\nserver.3=h\nversion=100000000\n",
        );
        assert_eq!(c.server_id, Some(2));
        assert_eq!(c.client_port, Some(2181));
        assert_eq!(c.members.len(), 3);
        assert_eq!(
            c.members[0].client_address.as_deref(),
            Some("127.0.0.1:2181")
        );
        assert_eq!(c.members[1].host, "::1");
        assert!(!c.members[1].votes());
        assert_eq!(c.members[2].quorum_port, None);
        assert_eq!(
            c.entries.get("version").map(String::as_str),
            Some("100000000")
        );
    }

    #[test]
    fn isro_ruok_and_wchs() {
        assert_eq!(parse_isro("rw"), Some(Isro::ReadWrite));
        assert_eq!(parse_isro("ro"), Some(Isro::ReadOnly));
        assert_eq!(parse_isro("null"), Some(Isro::NotServing));
        assert_eq!(parse_isro("what"), None);
        assert_eq!(parse_ruok("imok"), Some(true));
        assert_eq!(parse_ruok("nope"), Some(false));
        let w = parse_wchs("1 connections watching 2 paths\nTotal watches:2\n\n");
        assert_eq!(w.connections, Some(1));
        assert_eq!(w.paths, Some(2));
        assert_eq!(w.total_watches, Some(2));
    }

    #[test]
    fn numbers_refuse_what_java_never_prints() {
        assert_eq!(parse_u64("+5"), None);
        assert_eq!(parse_u64("inf"), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("1e30"), None);
        assert_eq!(parse_zxid("0x"), None);
        assert_eq!(parse_zxid("0x+1"), None);
        assert_eq!(parse_zxid("0xffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_zxid("0x1ffffffffffffffff"), None);
        assert_eq!(
            MetricValue::parse("infinity"),
            MetricValue::Text("infinity".into())
        );
    }

    /// Property tests: no input makes a parser panic, and well-formed input
    /// reads back as written. Each runs [`CASES`] cases.
    mod props {
        use super::super::*;
        use proptest::prelude::*;

        pub const CASES: u32 = 4096;

        fn config() -> ProptestConfig {
            ProptestConfig {
                cases: CASES,
                // Shrunk failures are printed; no regression files in src/.
                failure_persistence: None,
                ..ProptestConfig::default()
            }
        }

        /// Any bytes, as the TCP client turns them into text.
        fn bytes_text() -> impl Strategy<Value = String> {
            proptest::collection::vec(any::<u8>(), 0..600)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
        }

        /// Text made of the pieces answers are made of, so the parsers'
        /// deeper branches are reached, not only their first check.
        /// The pieces answers are made of.
        const VOCABULARY: &[&str] = &[
            "Zookeeper version: ",
            "Latency min/avg/max: ",
            "Proposal sizes last/min/max: ",
            "Zxid: 0x",
            "Mode: ",
            "Node count: ",
            "Connections: ",
            "READ-ONLY mode",
            "zk_",
            "server.",
            " connections watching ",
            " paths",
            "Total watches:",
            "_per_namespace",
            "{key=\"",
            "\",",
            "}",
            "\t",
            "\n",
            "\r\n",
            " ",
            "/",
            ":",
            ";",
            "=",
            "[",
            "]",
            ".",
            "-",
            "e",
            "E",
            "+",
            "NaN",
            "Infinity",
            "null",
            "rw",
            "ro",
            "imok",
            "leader",
            "read-only",
            "participant",
            REFUSED_SUFFIX,
            NOT_SERVING,
        ];

        /// Text assembled from those pieces and random numbers and
        /// characters, so the parsers' deeper branches are reached, not
        /// only their first check.
        fn answer_like() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                4 => prop::sample::select(VOCABULARY).prop_map(str::to_string),
                1 => any::<u64>().prop_map(|n| n.to_string()),
                1 => any::<i64>().prop_map(|n| format!("{n:x}")),
                1 => any::<f64>().prop_map(|f| f.to_string()),
                1 => any::<char>().prop_map(String::from),
            ];
            proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat())
        }

        /// Up to `max` characters from `alphabet` (cheaper than a regex).
        fn word(alphabet: &'static [u8], max: usize) -> impl Strategy<Value = String> {
            proptest::collection::vec(prop::sample::select(alphabet), 0..max)
                .prop_map(|b| b.into_iter().map(char::from).collect())
        }

        fn any_text() -> impl Strategy<Value = String> {
            prop_oneof![bytes_text(), answer_like()]
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn classify_never_panics(t in any_text()) {
                // Only a blank answer is empty; an answer is data whole, and
                // the notices are single lines.
                match classify(&t) {
                    Reply::Empty => prop_assert!(t.trim().is_empty()),
                    Reply::Data(d) => prop_assert_eq!(d, t.as_str()),
                    Reply::Refused | Reply::NotServing => prop_assert!(!t.trim().contains('\n')),
                }
                prop_assert_eq!(classify(&t) == Reply::Empty, t.trim().is_empty());
                // One line of at most 80 characters, from the answer itself.
                let line = first_line(&t);
                prop_assert!(!line.contains('\n') && line.chars().count() <= 80, "{:?}", line);
                match t.lines().map(str::trim).find(|l| !l.is_empty()) {
                    None => prop_assert_eq!(line, "(empty answer)"),
                    Some(first) => prop_assert!(
                        line == first || (line.ends_with("...") && first.starts_with(&line[..line.len() - 3])),
                        "{:?} from {:?}", line, first
                    ),
                }
            }

            #[test]
            fn srvr_never_panics(t in any_text()) {
                let s = parse_srvr(&t);
                if let Some(l) = s.latency {
                    prop_assert!(!(l.min.is_nan() && l.avg.is_nan() && l.max.is_nan()) || t.contains("NaN"));
                }
            }

            #[test]
            fn mntr_never_panics_and_accounts_for_every_line(t in any_text()) {
                let m = parse_mntr(&t);
                let lines = t.lines().filter(|l| !l.trim().is_empty()).count();
                prop_assert!(m.metrics.len() + m.malformed_lines <= lines);
                prop_assert!(m.namespaces().keys().all(|ns| !ns.is_empty()));
                if let Some(n) = m.learners() {
                    let from = m.get("zk_learners").or_else(|| m.get("zk_followers"));
                    prop_assert!(from.and_then(MetricValue::as_u64).is_some(), "{} learners from nothing", n);
                }
                for k in m.metrics.keys() {
                    prop_assert!(!k.is_empty() && k.trim() == k, "{:?}", k);
                    if let Some((name, _)) = split_labels(k) {
                        prop_assert!(k.starts_with(name), "{:?} from {:?}", name, k);
                    }
                }
            }

            #[test]
            fn conf_envi_wchs_isro_ruok_never_panic(t in any_text()) {
                let conf = parse_conf(&t);
                prop_assert!(conf.entries.keys().all(|k| !k.starts_with("server.") && k.trim() == k));
                prop_assert!(conf.members.iter().all(|m| !m.host.is_empty()));
                prop_assert_eq!(conf.server_id, conf.entries.get("serverId").and_then(|v| v.parse().ok()));
                prop_assert_eq!(conf.client_port, conf.entries.get("clientPort").and_then(|v| v.parse().ok()));
                let envi = parse_envi(&t);
                prop_assert!(envi.iter().all(|(k, v)| !k.is_empty() && k.trim() == k && v.trim() == v));
                let wchs = parse_wchs(&t);
                if wchs.total_watches.is_some() {
                    prop_assert!(t.contains("Total watches:"));
                }
                if wchs.connections.is_some() || wchs.paths.is_some() {
                    prop_assert!(t.contains("connections") && t.contains("paths"));
                }
                let expected_isro = match t.trim() {
                    "rw" => Some(Isro::ReadWrite),
                    "ro" => Some(Isro::ReadOnly),
                    "null" => Some(Isro::NotServing),
                    _ => None,
                };
                prop_assert_eq!(parse_isro(&t), expected_isro);
                let ruok = parse_ruok(&t);
                prop_assert_eq!(ruok.is_none(), t.trim().is_empty());
                prop_assert_eq!(ruok == Some(true), t.trim() == "imok");
            }

            #[test]
            fn numbers_versions_and_labels_never_panic(t in any_text()) {
                // A count is a number that holds one.
                if let Some(n) = parse_u64(&t) {
                    prop_assert_eq!(parse_f64(&t), Some(n as f64), "{:?}", t);
                }
                // Java prints no leading '+' and nothing blank is a number.
                if parse_f64(&t).is_some() {
                    prop_assert!(!t.trim().is_empty() && !t.trim().starts_with('+'), "{:?}", t);
                }
                if let Some(z) = parse_zxid(&t) {
                    prop_assert_eq!(parse_zxid(&format!("0x{z:x}")), Some(z));
                }
                // The release is read from the start of the text; a version
                // at least 3.5 is at least every earlier one.
                let v = Version::parse(&t);
                prop_assert!(v.numbers.len() <= 3);
                if let Some(release) = &v.release {
                    prop_assert!(v.text.starts_with(|c: char| c.is_ascii_digit()), "{:?}", v.text);
                    let numbers: Vec<String> = v.numbers.iter().map(u32::to_string).collect();
                    prop_assert_eq!(release, &numbers.join("."));
                }
                if v.at_least(3, 5) == Some(true) {
                    prop_assert_eq!(v.at_least(3, 4), Some(true));
                    prop_assert_eq!(v.at_least(2, 9), Some(true));
                }
                match split_labels(&t) {
                    Some((name, None)) => prop_assert!(name == t && !t.contains('{'), "{:?}", t),
                    Some((name, Some(_))) => {
                        prop_assert!(t.starts_with(&format!("{name}{{")) && t.ends_with('}'), "{:?}", t)
                    }
                    None => prop_assert!(t.contains('{'), "{:?}", t),
                }
                let value = MetricValue::parse(&t);
                match &value {
                    MetricValue::Int(n) => prop_assert_eq!(t.trim().parse::<i64>().ok(), Some(*n)),
                    MetricValue::Float(_) => prop_assert!(parse_f64(&t).is_some()),
                    MetricValue::Text(text) => {
                        prop_assert_eq!(text.as_str(), t.trim());
                        prop_assert!(parse_f64(&t).is_none());
                    }
                }
                if let Some(n) = value.as_u64() {
                    prop_assert_eq!(value.as_i64(), i64::try_from(n).ok());
                }
            }

            #[test]
            fn mntr_reads_back_what_was_written(
                entries in proptest::collection::btree_map(
                    word(b"abcdefghijklmnopqrstuvwxyz0123456789_", 30).prop_map(|w| format!("zk_a{w}")),
                    prop_oneof![
                        any::<i64>().prop_map(MetricValue::Int),
                        (-1.0e9f64..1.0e9).prop_map(MetricValue::Float),
                        word(b"abcdefghijklmnopqrstuvwxyz -,", 20).prop_map(|w| MetricValue::Text(format!("v{w}v"))),
                    ],
                    0..40,
                )
            ) {
                let text: String = entries
                    .iter()
                    .map(|(k, v)| match v {
                        MetricValue::Int(n) => format!("{k}\t{n}\n"),
                        MetricValue::Float(f) => format!("{k}\t{f:?}\n"),
                        MetricValue::Text(s) => format!("{k}\t{s}\n"),
                    })
                    .collect();
                let m = parse_mntr(&text);
                prop_assert_eq!(m.malformed_lines, 0);
                prop_assert_eq!(&m.metrics, &entries);
            }

            #[test]
            fn srvr_reads_back_what_was_written(
                zxid in any::<u64>(),
                nodes in any::<u64>(),
                min in 0u32..100_000,
                avg in 0.0f64..100_000.0,
                max in 0u32..100_000,
                mode in prop::sample::select(vec!["leader", "follower", "observer", "standalone", "read-only"]),
            ) {
                let text = format!(
                    "Zookeeper version: 3.8.0-x, built on y\nLatency min/avg/max: {min}/{avg}/{max}\n\
                     Zxid: 0x{zxid:x}\nMode: {mode}\nNode count: {nodes}\n"
                );
                let s = parse_srvr(&text);
                prop_assert_eq!(s.zxid, Some(zxid));
                prop_assert_eq!(s.node_count, Some(nodes));
                prop_assert_eq!(s.mode.as_ref().map(Mode::as_str), Some(mode));
                prop_assert_eq!(
                    s.latency,
                    Some(Latency { min: f64::from(min), avg, max: f64::from(max) })
                );
            }

            #[test]
            fn refusals_of_any_word_are_refusals(w in word(b"abcdefghijklmnopqrstuvwxyz", 5)) {
                let answer = format!("{w} {REFUSED_SUFFIX}\n");
                prop_assert_eq!(classify(&answer), Reply::Refused);
            }
        }
    }
}
