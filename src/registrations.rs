//! Applications' ephemeral registrations, and when a node on a new ensemble
//! is "the same registration" as one on the old: one table of rules, each
//! naming the application it comes from (sources in
//! `docs/ephemerals.md`). Rules look at a node's name and the names of its
//! parent and grandparent only, never at a whole path, so they hold under
//! any chroot or prefix an application was given.
//!
//! Several applications change a registration's name when they register
//! again: HBase puts a new start code in its server names, sequential
//! ephemerals (elections, locks, latches) get the parent's next sequence
//! number, and Curator's service discovery gives every start a random
//! instance id. Those are matched on what survives a restart (host and
//! port, or how many there are), not on the name.

use crate::tree::path::{name_of, parent};

/// What a registration is recognised by on the other ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// The path itself: the application registers under the same name.
    Path,
    /// An HBase server name `host,port,startcode`: host and port under the
    /// same parent; the start code is new on every start.
    HostPort,
    /// Sequential names: how many under the parent, since a new session
    /// gets the parent's next sequence number.
    CountPerParent,
    /// Random instance ids: how many under the service node.
    CountPerService,
}

impl Identity {
    pub fn describe(self) -> &'static str {
        match self {
            Identity::Path => "exact path",
            Identity::HostPort => "host and port (not the start code)",
            Identity::CountPerParent => "count per parent",
            Identity::CountPerService => "count per service",
        }
    }

    pub fn counted(self) -> bool {
        matches!(self, Identity::CountPerParent | Identity::CountPerService)
    }
}

/// A node's name and its parent's and grandparent's ("" above the root).
struct Names<'a> {
    name: &'a str,
    parent: &'a str,
    grandparent: &'a str,
}

impl<'a> Names<'a> {
    fn of(path: &'a str) -> Names<'a> {
        let up = parent(path);
        let upup = up.and_then(parent);
        Names {
            name: name_of(path),
            parent: up.map_or("", name_of),
            grandparent: upup.map_or("", name_of),
        }
    }
}

/// One line of the table.
pub struct Rule {
    pub application: &'static str,
    /// What the long output groups by: "kafka brokers", ...
    pub role: &'static str,
    /// The shape, as the documentation shows it.
    pub shape: &'static str,
    pub identity: Identity,
    matches: fn(&Names<'_>) -> bool,
}

/// ZooKeeper's sequence suffix: the parent's counter as `%010d`.
pub fn is_sequential(name: &str) -> bool {
    name.len() > 10
        && name.as_bytes()[name.len() - 10..]
            .iter()
            .all(u8::is_ascii_digit)
}

/// HBase's ServerName: `host,port,startcode`.
fn server_name(name: &str) -> Option<(&str, &str)> {
    let mut parts = name.split(',');
    let (host, port, code) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (parts.next().is_none() && !host.is_empty() && digits(port) && port.len() <= 5 && digits(code))
        .then_some((host, port))
}

/// A random UUID as Curator's service discovery names instances.
fn is_uuid(name: &str) -> bool {
    let groups: Vec<&str> = name.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Curator's protected names: `_c_<uuid>-<what>-<sequence>`.
fn is_curator_protected(name: &str) -> bool {
    name.strip_prefix("_c_")
        .and_then(|rest| rest.get(..36))
        .is_some_and(is_uuid)
        && is_sequential(name)
}

/// First match wins: the specific shapes come before the catch-alls (a
/// Kafka broker id or an HBase start code may end in ten digits).
pub static RULES: &[Rule] = &[
    Rule {
        application: "Kafka",
        role: "kafka brokers",
        shape: "`brokers/ids/<broker.id>`",
        identity: Identity::Path,
        matches: |n| {
            n.parent == "ids"
                && n.grandparent == "brokers"
                && n.name.bytes().all(|b| b.is_ascii_digit())
        },
    },
    Rule {
        application: "Kafka",
        role: "kafka controller",
        shape: "`controller`",
        identity: Identity::Path,
        matches: |n| n.name == "controller",
    },
    Rule {
        application: "HBase",
        role: "hbase region servers",
        shape: "`rs/<host>,<port>,<startcode>`",
        identity: Identity::HostPort,
        matches: |n| n.parent == "rs" && server_name(n.name).is_some(),
    },
    Rule {
        application: "HBase",
        role: "hbase backup masters",
        shape: "`backup-masters/<host>,<port>,<startcode>`",
        identity: Identity::HostPort,
        matches: |n| n.parent == "backup-masters" && server_name(n.name).is_some(),
    },
    Rule {
        application: "HBase",
        role: "hbase servers",
        shape: "`<parent>/<host>,<port>,<startcode>`",
        identity: Identity::HostPort,
        matches: |n| server_name(n.name).is_some(),
    },
    Rule {
        application: "HBase",
        role: "hbase master",
        shape: "`master`",
        identity: Identity::Path,
        matches: |n| n.name == "master",
    },
    Rule {
        application: "Solr",
        role: "solr live nodes",
        shape: "`live_nodes/<host>:<port>_<context>`",
        identity: Identity::Path,
        matches: |n| n.parent == "live_nodes",
    },
    Rule {
        application: "Solr",
        role: "solr overseer",
        shape: "`overseer_elect/leader`",
        identity: Identity::Path,
        matches: |n| n.name == "leader" && n.parent == "overseer_elect",
    },
    Rule {
        application: "Solr",
        role: "solr shard leaders",
        shape: "`leaders/<shard>/leader`",
        identity: Identity::Path,
        matches: |n| n.name == "leader" && n.grandparent == "leaders",
    },
    Rule {
        application: "Solr",
        role: "solr elections",
        shape: "`election/<session>-<node>-n_<seq>`",
        identity: Identity::CountPerParent,
        matches: |n| n.parent == "election" && n.name.contains("-n_") && is_sequential(n.name),
    },
    Rule {
        application: "ClickHouse",
        role: "clickhouse replicas",
        shape: "`replicas/<replica>/is_active`",
        identity: Identity::Path,
        matches: |n| n.name == "is_active" && n.grandparent == "replicas",
    },
    Rule {
        application: "ClickHouse",
        role: "clickhouse leader elections",
        shape: "`leader_election/leader_election-<seq>`",
        identity: Identity::CountPerParent,
        matches: |n| n.name.starts_with("leader_election-") && is_sequential(n.name),
    },
    Rule {
        application: "NiFi",
        role: "nifi leader elections",
        shape: "`leaders/<role>/_c_<uuid>-lock-<seq>`",
        identity: Identity::CountPerParent,
        matches: |n| n.grandparent == "leaders" && is_curator_protected(n.name),
    },
    Rule {
        application: "Curator",
        role: "curator latches and locks",
        shape: "`_c_<uuid>-latch-<seq>`, `_c_<uuid>-lock-<seq>`",
        identity: Identity::CountPerParent,
        matches: |n| is_curator_protected(n.name),
    },
    Rule {
        application: "Hadoop HA",
        role: "hadoop ha active namenodes",
        shape: "`<nameservice>/ActiveStandbyElectorLock`",
        identity: Identity::Path,
        matches: |n| n.name == "ActiveStandbyElectorLock",
    },
    Rule {
        application: "Curator",
        role: "service discovery instances",
        shape: "`<service>/<uuid>`",
        identity: Identity::CountPerService,
        matches: |n| is_uuid(n.name),
    },
    Rule {
        application: "ZooKeeper recipes",
        role: "elections and locks",
        shape: "`<parent>/<name><10-digit seq>`",
        identity: Identity::CountPerParent,
        matches: |n| is_sequential(n.name),
    },
    Rule {
        application: "any",
        role: "other ephemerals",
        shape: "anything else",
        identity: Identity::Path,
        matches: |_| true,
    },
];

/// The rule an ephemeral at `path` falls under.
pub fn rule_for(path: &str) -> &'static Rule {
    let names = Names::of(path);
    RULES
        .iter()
        .find(|r| (r.matches)(&names))
        .unwrap_or(&RULES[RULES.len() - 1])
}

/// What two registrations under one rule must share to be the same.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Path(String),
    /// The parent and `host,port`.
    Server(String, String),
    /// The parent of counted registrations.
    Count(String),
}

impl Key {
    /// How the key is shown: the path, `parent/host,port,*`, or the parent.
    pub fn display(&self) -> String {
        match self {
            Key::Path(p) | Key::Count(p) => p.clone(),
            Key::Server(parent, hp) => crate::tree::path::child_path(parent, &format!("{hp},*")),
        }
    }
}

fn parent_of(path: &str) -> String {
    parent(path).unwrap_or("/").to_string()
}

/// The rule for `path` and the key it is matched by.
pub fn key_of(path: &str) -> (&'static Rule, Key) {
    let rule = rule_for(path);
    let key = match rule.identity {
        Identity::Path => Key::Path(path.to_string()),
        Identity::HostPort => match server_name(name_of(path)) {
            Some((host, port)) => Key::Server(parent_of(path), format!("{host},{port}")),
            None => Key::Path(path.to_string()),
        },
        Identity::CountPerParent | Identity::CountPerService => Key::Count(parent_of(path)),
    };
    (rule, key)
}

/// The table as `docs/ephemerals.md` shows it.
pub fn table_markdown() -> String {
    let mut out =
        String::from("| application | role | name shape | matched by |\n|---|---|---|---|\n");
    for r in RULES {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.application,
            r.role,
            r.shape,
            r.identity.describe()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(path: &str) -> &'static str {
        rule_for(path).role
    }

    #[test]
    fn each_application_shape_gets_its_role_under_any_prefix() {
        for prefix in ["", "/kafka", "/a/b"] {
            let p = |s: &str| format!("{prefix}{s}");
            assert_eq!(role(&p("/brokers/ids/3")), "kafka brokers");
            assert_eq!(role(&p("/controller")), "kafka controller");
            assert_eq!(
                role(&p("/hbase/rs/h1.example,16020,1700000000000")),
                "hbase region servers"
            );
            assert_eq!(
                role(&p("/hbase/backup-masters/h2,16000,1700000000001")),
                "hbase backup masters"
            );
            assert_eq!(role(&p("/hbase/master")), "hbase master");
            assert_eq!(role(&p("/live_nodes/h1:8983_solr")), "solr live nodes");
            assert_eq!(role(&p("/overseer_elect/leader")), "solr overseer");
            assert_eq!(
                role(&p(
                    "/overseer_elect/election/72057594037927936-h1:8983_solr-n_0000000003"
                )),
                "solr elections"
            );
            assert_eq!(
                role(&p("/collections/c1/leaders/shard1/leader")),
                "solr shard leaders"
            );
            assert_eq!(
                role(&p("/clickhouse/tables/t/replicas/r1/is_active")),
                "clickhouse replicas"
            );
            assert_eq!(
                role(&p(
                    "/clickhouse/tables/t/leader_election/leader_election-0000000007"
                )),
                "clickhouse leader elections"
            );
            assert_eq!(
                role(&p(
                    "/nifi/leaders/Cluster Coordinator/_c_0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-lock-0000000001"
                )),
                "nifi leader elections"
            );
            assert_eq!(
                role(&p(
                    "/app/latch/_c_0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0-latch-0000000000"
                )),
                "curator latches and locks"
            );
            assert_eq!(
                role(&p("/services/api/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")),
                "service discovery instances"
            );
            assert_eq!(
                role(&p("/hadoop-ha/ns1/ActiveStandbyElectorLock")),
                "hadoop ha active namenodes"
            );
            assert_eq!(role(&p("/locks/lock-0000000012")), "elections and locks");
            assert_eq!(role(&p("/app/worker-7")), "other ephemerals");
        }
    }

    #[test]
    fn a_broker_id_of_ten_digits_is_still_a_broker_not_a_sequence() {
        assert_eq!(role("/brokers/ids/1000000000"), "kafka brokers");
    }

    #[test]
    fn hbase_servers_match_on_host_and_port_whatever_the_start_code() {
        let (_, a) = key_of("/hbase/rs/h1,16020,1700000000000");
        let (_, b) = key_of("/hbase/rs/h1,16020,1700000099999");
        let (_, c) = key_of("/hbase/rs/h1,16021,1700000000000");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.display(), "/hbase/rs/h1,16020,*");
    }

    #[test]
    fn sequential_names_are_counted_per_parent() {
        let (rule, a) = key_of("/app/election/n_0000000001");
        let (_, b) = key_of("/app/election/n_0000000042");
        assert!(rule.identity.counted());
        assert_eq!(a, b);
        assert_eq!(a, Key::Count("/app/election".into()));
    }

    #[test]
    fn plain_ephemerals_keep_their_path() {
        assert_eq!(
            key_of("/kafka/brokers/ids/3").1,
            Key::Path("/kafka/brokers/ids/3".into())
        );
    }

    #[test]
    fn the_documentation_shows_the_codes_table() {
        let doc = include_str!("../docs/ephemerals.md");
        assert!(
            doc.contains(&table_markdown()),
            "docs/ephemerals.md must hold this table:\n{}",
            table_markdown()
        );
    }
}
