//! Which servers of an ensemble serve a side's reads (`--source-read-from`,
//! `--target-read-from`, `--read-from`). A full compare reads every node
//! three times; operators keep that off the leader, which serializes every
//! write. Each server's role comes from the server itself (`srvr`'s
//! `Mode:`), read when the sessions are made and again when they are made
//! anew; each session is then pinned to one chosen server by a connect
//! string that names only it, round-robin over the chosen servers.
//!
//! A standalone server is the only member of its ensemble and serializes
//! every write as a leader does: it counts as the leader. `followers` and
//! `observers` refuse it (there is no follower to spare it for), `leader`
//! and `followers-preferred` read it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::connect::{ConnectString, EnsembleSpec};
use crate::error::{Error, Result};
use crate::probe::host_port;
use crate::probe::parse::Mode;

/// Which servers to read from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReadFrom {
    /// Wherever the client library puts each session (a random server of
    /// the connect string): no roles are read, nothing is pinned.
    #[default]
    Any,
    /// Followers and observers, never the leader.
    Followers,
    /// Followers and observers if any answers, else the leader, with a note.
    FollowersPreferred,
    Observers,
    Leader,
    /// These servers of the connect string, whatever their roles.
    Members(Vec<(String, u16)>),
}

impl FromStr for ReadFrom {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<ReadFrom, String> {
        Ok(match s.trim() {
            "any" => ReadFrom::Any,
            "followers" => ReadFrom::Followers,
            "followers-preferred" => ReadFrom::FollowersPreferred,
            "observers" => ReadFrom::Observers,
            "leader" => ReadFrom::Leader,
            list => {
                let parsed = ConnectString::parse(list).map_err(|e| {
                    format!(
                        "{list:?} is neither any, followers, followers-preferred, observers, \
                         leader nor a list of host:port: {e}"
                    )
                })?;
                if parsed.chroot.is_some() {
                    return Err(format!(
                        "{list:?}: a list of servers (host:port,...) has no chroot"
                    ));
                }
                ReadFrom::Members(parsed.hosts)
            }
        })
    }
}

impl fmt::Display for ReadFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFrom::Any => f.write_str("any"),
            ReadFrom::Followers => f.write_str("followers"),
            ReadFrom::FollowersPreferred => f.write_str("followers-preferred"),
            ReadFrom::Observers => f.write_str("observers"),
            ReadFrom::Leader => f.write_str("leader"),
            ReadFrom::Members(hosts) => {
                let names: Vec<String> = hosts.iter().map(|(h, p)| host_port(h, *p)).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

/// The choice of each side of a comparison; a command that reads one
/// ensemble uses `source`'s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadPlacement {
    pub source: ReadFrom,
    pub target: ReadFrom,
}

impl ReadPlacement {
    /// The choice for the side named `side` (`source` or `target`).
    pub fn for_side(&self, side: &str) -> &ReadFrom {
        if side == "target" {
            &self.target
        } else {
            &self.source
        }
    }
}

/// One server and what `srvr` said of it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Member {
    pub host: String,
    pub port: u16,
    /// `Err`: why it cannot be told (down, not serving); `Ok((None, _))`
    /// when it was not asked (over TLS).
    pub role: std::result::Result<(Option<Mode>, Option<u64>), String>,
}

impl Member {
    pub fn address(&self) -> String {
        host_port(&self.host, self.port)
    }

    fn mode(&self) -> Option<&Mode> {
        self.role.as_ref().ok().and_then(|(m, _)| m.as_ref())
    }

    pub fn role_name(&self) -> String {
        match &self.role {
            Ok((Some(mode), _)) => mode.as_str().to_string(),
            Ok((None, _)) => "unknown".into(),
            Err(_) => "down".into(),
        }
    }

    pub fn zxid(&self) -> Option<u64> {
        self.role.as_ref().ok().and_then(|(_, z)| *z)
    }

    fn describe(&self) -> String {
        match &self.role {
            Ok((Some(mode), _)) => format!("{} {}", self.address(), mode.as_str()),
            Ok((None, _)) => format!("{} (role not read)", self.address()),
            Err(why) => format!("{} {why}", self.address()),
        }
    }
}

/// The servers chosen for a side, in the order sessions go to them, and
/// what the operator should know of the choice.
#[derive(Clone, Debug)]
pub(crate) struct Chosen {
    pub servers: Vec<Member>,
    pub note: Option<String>,
}

/// How long one server gets to answer `srvr`.
const ROLE_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads every server's role (all at once) and chooses as `read_from` says;
/// `None` for [`ReadFrom::Any`]. `Err` names each server and its role when
/// none fits: never a silent fall-back to servers the operator did not ask
/// for.
pub(crate) async fn choose(spec: &EnsembleSpec, read_from: &ReadFrom) -> Result<Option<Chosen>> {
    if *read_from == ReadFrom::Any {
        return Ok(None);
    }
    let refuse = |reason: String| Error::ReadPlacement {
        side: spec.side.clone(),
        ensemble: spec.connect.to_string(),
        read_from: read_from.to_string(),
        reason,
    };
    let mut hosts: Vec<(String, u16)> = Vec::new();
    for h in &spec.connect.hosts {
        if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    if let ReadFrom::Members(listed) = read_from {
        let strangers: Vec<String> = listed
            .iter()
            .filter(|m| !hosts.contains(m))
            .map(|(h, p)| host_port(h, *p))
            .collect();
        if !strangers.is_empty() {
            return Err(refuse(format!(
                "{} not in the connect string: name servers as the connect string does",
                strangers.join(", ")
            )));
        }
        hosts.retain(|h| listed.contains(h));
    }
    let timeout = ROLE_TIMEOUT.min(spec.connect_timeout);
    let members: Vec<Member> = if spec.tls.is_some() {
        // A secure client port does not answer four-letter words: only
        // servers named one by one can be read over TLS.
        if !matches!(read_from, ReadFrom::Members(_)) {
            return Err(refuse(
                "roles are read with the four-letter word srvr, which a TLS client port does not \
                 answer: name the servers to read (host:port,...)"
                    .into(),
            ));
        }
        hosts
            .into_iter()
            .map(|(host, port)| Member {
                host,
                port,
                role: Ok((None, None)),
            })
            .collect()
    } else {
        futures::future::join_all(hosts.into_iter().map(|(host, port)| async move {
            let role = crate::probe::server_role(&host, port, timeout)
                .await
                .map(|(m, z)| (Some(m), z));
            Member { host, port, role }
        }))
        .await
    };
    pick(read_from, members).map(Some).map_err(refuse)
}

/// The choice itself, from roles already read.
pub(crate) fn pick(
    read_from: &ReadFrom,
    members: Vec<Member>,
) -> std::result::Result<Chosen, String> {
    let all = || {
        members
            .iter()
            .map(Member::describe)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let with = |keep: &dyn Fn(&Mode) -> bool| -> Vec<Member> {
        members
            .iter()
            .filter(|m| m.mode().is_some_and(keep))
            .cloned()
            .collect()
    };
    let learner = |m: &Mode| matches!(m, Mode::Follower | Mode::Observer);
    let leads = |m: &Mode| matches!(m, Mode::Leader | Mode::Standalone);
    let standalone = members.iter().any(|m| m.mode() == Some(&Mode::Standalone));
    let none = |what: &str| {
        if standalone {
            format!(
                "no {what} answers ({}): a standalone server is its ensemble's only member and \
                 takes every write, as a leader does (read it with leader, followers-preferred \
                 or any)",
                all()
            )
        } else {
            format!("no {what} answers ({})", all())
        }
    };
    let chosen = match read_from {
        ReadFrom::Any => Vec::new(),
        ReadFrom::Followers => {
            let f = with(&learner);
            if f.is_empty() {
                return Err(none("follower or observer"));
            }
            f
        }
        ReadFrom::Observers => {
            let o = with(&|m| *m == Mode::Observer);
            if o.is_empty() {
                return Err(none("observer"));
            }
            o
        }
        ReadFrom::Leader => {
            let l = with(&leads);
            if l.is_empty() {
                return Err(format!("no leader answers ({})", all()));
            }
            l
        }
        ReadFrom::FollowersPreferred => {
            let f = with(&learner);
            if !f.is_empty() {
                f
            } else {
                let l = with(&leads);
                if l.is_empty() {
                    return Err(format!(
                        "neither a follower nor the leader answers ({})",
                        all()
                    ));
                }
                let names: Vec<String> = l.iter().map(Member::address).collect();
                return Ok(Chosen {
                    note: Some(format!(
                        "no follower or observer answered ({}): read from the leader {} \
                         (followers-preferred)",
                        all(),
                        names.join(", ")
                    )),
                    servers: l,
                });
            }
        }
        ReadFrom::Members(_) => {
            let serving: Vec<Member> = members.iter().filter(|m| m.role.is_ok()).cloned().collect();
            if serving.is_empty() {
                return Err(format!("none of the servers named answers ({})", all()));
            }
            serving
        }
    };
    Ok(Chosen {
        servers: chosen,
        note: None,
    })
}

/// How many of `sessions` go to each of `servers` chosen servers,
/// round-robin: 8 over 3 is 3, 3, 2.
pub(crate) fn spread(sessions: usize, servers: usize) -> Vec<usize> {
    (0..sessions.max(1)).map(|i| i % servers.max(1)).collect()
}

/// What a report says of where one side's reads went.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReadServers {
    /// The choice: `any`, `followers`, ... or the list of servers.
    pub read_from: String,
    /// Each server read, in the order sessions were given to them; empty
    /// for `any` (the client library chose, and does not say).
    pub servers: Vec<ServerReads>,
    /// Set when the choice fell back (followers-preferred on the leader).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Servers whose sessions moved mid-walk, because an election changed
    /// their role, and where to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<String>,
}

/// One server a side read, and how much.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerReads {
    /// `host:port`.
    pub server: String,
    /// Its mode in `srvr` when its sessions were made (`unknown` over TLS).
    pub role: String,
    /// Its zxid then (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zxid: Option<String>,
    /// Sessions pinned to it (over all renewals).
    pub sessions: usize,
    /// Read operations sent to it (getData, getChildren, getACL).
    pub reads: u64,
    /// Nodes it answered (the multi-read or getData of each).
    pub nodes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(port: u16, mode: Option<Mode>) -> Member {
        Member {
            host: "h".into(),
            port,
            role: match mode {
                Some(m) => Ok((Some(m), Some(7))),
                None => Err("down (connection refused)".into()),
            },
        }
    }

    fn ports(c: &Chosen) -> Vec<u16> {
        c.servers.iter().map(|m| m.port).collect()
    }

    #[test]
    fn eight_sessions_over_three_servers_go_three_three_two() {
        let s = spread(8, 3);
        let per: Vec<usize> = (0..3)
            .map(|i| s.iter().filter(|x| **x == i).count())
            .collect();
        assert_eq!(per, [3, 3, 2]);
        assert_eq!(spread(8, 3)[..4], [0, 1, 2, 0]);
    }

    #[test]
    fn followers_never_include_the_leader_and_refuse_when_none_answers() {
        let quorum = vec![
            member(1, Some(Mode::Leader)),
            member(2, Some(Mode::Follower)),
            member(3, Some(Mode::Observer)),
        ];
        assert_eq!(
            ports(&pick(&ReadFrom::Followers, quorum.clone()).unwrap()),
            [2, 3]
        );
        assert_eq!(
            ports(&pick(&ReadFrom::Observers, quorum.clone()).unwrap()),
            [3]
        );
        assert_eq!(ports(&pick(&ReadFrom::Leader, quorum).unwrap()), [1]);
        let alone = vec![
            member(1, Some(Mode::Leader)),
            member(2, None),
            member(3, None),
        ];
        let e = pick(&ReadFrom::Followers, alone.clone()).unwrap_err();
        assert!(
            e.contains("h:1 leader") && e.contains("h:2 down (connection refused)"),
            "{e}"
        );
        let c = pick(&ReadFrom::FollowersPreferred, alone).unwrap();
        assert_eq!(ports(&c), [1]);
        assert!(c.note.unwrap().contains("read from the leader h:1"));
    }

    #[test]
    fn a_standalone_server_counts_as_the_leader() {
        let one = vec![member(1, Some(Mode::Standalone))];
        let e = pick(&ReadFrom::Followers, one.clone()).unwrap_err();
        assert!(e.contains("standalone server"), "{e}");
        assert!(pick(&ReadFrom::Observers, one.clone()).is_err());
        assert_eq!(ports(&pick(&ReadFrom::Leader, one.clone()).unwrap()), [1]);
        assert_eq!(
            ports(&pick(&ReadFrom::FollowersPreferred, one).unwrap()),
            [1]
        );
    }

    #[test]
    fn a_list_of_servers_reads_those_that_answer_whatever_their_role() {
        let listed = vec![member(1, Some(Mode::Leader)), member(2, None)];
        let any = ReadFrom::Members(vec![]);
        assert_eq!(ports(&pick(&any, listed).unwrap()), [1]);
        assert!(pick(&any, vec![member(2, None)]).is_err());
    }

    #[test]
    fn choices_parse_and_print_as_written() {
        for s in [
            "any",
            "followers",
            "followers-preferred",
            "observers",
            "leader",
            "a:1,b:2",
        ] {
            assert_eq!(s.parse::<ReadFrom>().unwrap().to_string(), s);
        }
        assert!("a:1/chroot".parse::<ReadFrom>().is_err());
        let e = "folowers:x".parse::<ReadFrom>().unwrap_err();
        assert!(e.contains("neither any, followers"), "{e}");
    }
}
