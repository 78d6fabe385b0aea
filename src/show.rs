//! `zkparity show`: one znode on both sides, side by side — stat, ACL,
//! children and the next sequential number — and how the two values
//! differ: a line diff for text, the differing paths for JSON (Kafka, Solr
//! and Curator store JSON), a hex view around the first differing byte for
//! anything else. What an operator reached for zkCli for after a `data`
//! difference.

use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;
use zookeeper_client as zk;

use crate::connect::{ConnectString, EnsembleSpec};
use crate::digest::{normalize_acl, AclEntry};
use crate::error::{Error, Result};
use crate::placement::{self, ReadFrom};
use crate::source::{SideSpec, Source};
use crate::tree::{ReadNodes, ReaderOptions, SideNode};

/// Bytes shown either side of the first differing one.
const HEX_CONTEXT: usize = 16;
/// Diff lines or JSON changes listed at most.
const LISTED: usize = 40;

/// One side's node.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Side {
    pub exists: bool,
    /// Why it could not be read (NoAuth), when it exists but cannot be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<i32>,
    /// The number the next sequential child gets, as `repair` counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_sequence: Option<i64>,
    /// The server read and its role, when `--source-read-from` (or the
    /// target's) chose one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_from: Option<String>,
    #[serde(skip)]
    pub data: Option<Vec<u8>>,
}

/// Reads `path` on `spec`'s ensemble: data and stat, ACL. Absent and
/// unreadable are answers; a session that cannot be had is an error.
/// Unless `read_from` is `any`, the session goes to the first server that
/// fits it, which first syncs with the leader, so what it answers is at
/// least as new as this moment.
pub async fn read(
    spec: &EnsembleSpec,
    path: &str,
    show_acl_ids: bool,
    read_from: &ReadFrom,
) -> Result<Side> {
    let (client, server) = match placement::choose(spec, read_from).await? {
        None => (spec.connect().await?, None),
        Some(chosen) => {
            let Some(member) = chosen.servers.first() else {
                return Err(Error::Usage(format!(
                    "no server of {} fits {read_from}",
                    spec.connect
                )));
            };
            let pinned = EnsembleSpec {
                connect: ConnectString {
                    hosts: vec![(member.host.clone(), member.port)],
                    chroot: spec.connect.chroot.clone(),
                },
                ..spec.clone()
            };
            let client = pinned.connect().await?;
            client.sync(path).await.map_err(|e| Error::Read {
                side: spec.side.clone(),
                ensemble: spec.connect.to_string(),
                path: path.to_string(),
                reason: format!("sync: {e}"),
            })?;
            (
                client,
                Some(format!("{} ({})", member.address(), member.role_name())),
            )
        }
    };
    let side = read_on(&client, spec, path, show_acl_ids).await?;
    Ok(Side {
        read_from: server,
        ..side
    })
}

async fn read_on(
    client: &zk::Client,
    spec: &EnsembleSpec,
    path: &str,
    show_acl_ids: bool,
) -> Result<Side> {
    let read_err = |e: zk::Error| Error::Read {
        side: spec.side.clone(),
        ensemble: spec.connect.to_string(),
        path: path.to_string(),
        reason: e.to_string(),
    };
    let (data, stat) = match client.get_data(path).await {
        Ok(r) => r,
        Err(zk::Error::NoNode) => return Ok(Side::default()),
        Err(zk::Error::NoAuth) => {
            return Ok(Side {
                exists: true,
                error: Some("not authorised to read it (NoAuth)".into()),
                ..Side::default()
            })
        }
        Err(e) => return Err(read_err(e)),
    };
    let acl = match client.get_acl(path).await {
        Ok((acl, _)) => Some(
            normalize_acl(acl.iter().map(AclEntry::from_zk).collect())
                .iter()
                .map(|e| e.display(show_acl_ids))
                .collect(),
        ),
        Err(zk::Error::NoNode) => return Ok(Side::default()),
        Err(e) => return Err(read_err(e)),
    };
    Ok(Side {
        exists: true,
        error: None,
        ephemeral: Some(stat.ephemeral_owner != 0),
        version: Some(stat.version),
        mtime_ms: Some(stat.mtime),
        data_length: Some(data.len()),
        acl,
        children: Some(stat.num_children),
        next_sequence: Some(crate::tree::sequence::next_sequence(&stat)),
        read_from: None,
        data: Some(data),
    })
}

/// Reads `path` on a side: a live ensemble as [`read`] does, or a file side
/// (a ZooKeeper data directory, a snapshot) from its records.
pub async fn read_side(
    side: &SideSpec,
    path: &str,
    show_acl_ids: bool,
    read_from: &ReadFrom,
) -> Result<Side> {
    if let SideSpec::Live(spec) = side {
        return read(spec, path, show_acl_ids, read_from).await;
    }
    let options = ReaderOptions {
        keep_data: true,
        ..ReaderOptions::default()
    };
    let source = Source::open(side, &options).await?;
    let name = crate::tree::path::name_of(path).to_string();
    let read = source.read_nodes(&[path], &[name.as_str()]).await;
    source.close().await;
    let node = read?.into_iter().next();
    Ok(match node {
        Some(SideNode::Present(n)) => Side {
            exists: true,
            error: None,
            ephemeral: Some(n.kind == crate::digest::NodeKind::Ephemeral),
            version: n.stat.map(|s| s.version),
            mtime_ms: n.stat.map(|s| s.mtime),
            data_length: Some(n.data_len as usize),
            acl: n
                .acl
                .as_ref()
                .map(|a| a.iter().map(|e| e.display(show_acl_ids)).collect()),
            children: Some(n.children.len() as i32),
            next_sequence: n.stat.map(|s| crate::tree::sequence::next_sequence(&s)),
            read_from: None,
            data: n.data.clone(),
        },
        Some(SideNode::Unreadable(reason)) => Side {
            exists: true,
            error: Some(reason),
            ..Side::default()
        },
        _ => Side::default(),
    })
}

/// How the two values differ.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "as", rename_all = "snake_case")]
pub enum DataDiff {
    Same,
    /// Both JSON: `$.a.b[2]: left → right` changes.
    Json {
        changes: Vec<String>,
    },
    /// Both UTF-8 text: a unified line diff.
    Text {
        lines: Vec<String>,
    },
    /// Bytes: where they first differ, and the bytes around it.
    Binary {
        offset: usize,
        source: String,
        target: String,
    },
}

/// The diff of two values.
pub fn data_diff(a: &[u8], b: &[u8]) -> DataDiff {
    if a == b {
        return DataDiff::Same;
    }
    let json = |d: &[u8]| serde_json::from_slice::<Value>(d).ok();
    if let (Some(x), Some(y)) = (json(a), json(b)) {
        if x.is_object() || x.is_array() || y.is_object() || y.is_array() {
            let mut changes = Vec::new();
            json_changes("$", &x, &y, &mut changes);
            return DataDiff::Json { changes };
        }
    }
    if let (Ok(x), Ok(y)) = (std::str::from_utf8(a), std::str::from_utf8(b)) {
        if !x.contains('\0') && !y.contains('\0') {
            let diff = similar::TextDiff::from_lines(x, y);
            let lines = diff
                .unified_diff()
                .context_radius(2)
                .header("source", "target")
                .to_string()
                .lines()
                .map(String::from)
                .collect();
            return DataDiff::Text { lines };
        }
    }
    let offset = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let start = offset.saturating_sub(HEX_CONTEXT);
    DataDiff::Binary {
        offset,
        source: hex_line(a, start),
        target: hex_line(b, start),
    }
}

fn hex_line(d: &[u8], start: usize) -> String {
    let end = (start + 2 * HEX_CONTEXT).min(d.len());
    let bytes = d.get(start..end).unwrap_or_default();
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{start:08x}  {}", hex.join(" "))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s
    }
}

fn json_changes(at: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let here = format!("{at}.{k}");
                match y.get(k) {
                    Some(w) => json_changes(&here, v, w, out),
                    None => out.push(format!(
                        "{here}: {} on the source, absent on the target",
                        short(v)
                    )),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) {
                    out.push(format!(
                        "{at}.{k}: absent on the source, {} on the target",
                        short(w)
                    ));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let here = format!("{at}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(v), Some(w)) => json_changes(&here, v, w, out),
                    (Some(v), None) => out.push(format!(
                        "{here}: {} on the source, absent on the target",
                        short(v)
                    )),
                    (None, Some(w)) => out.push(format!(
                        "{here}: absent on the source, {} on the target",
                        short(w)
                    )),
                    (None, None) => {}
                }
            }
        }
        _ => out.push(format!("{at}: {} → {}", short(a), short(b))),
    }
}

/// Whether the node is the same on both sides, as far as `show` looks.
pub fn same(s: &Side, t: &Side) -> bool {
    s.exists == t.exists
        && s.error.is_none()
        && t.error.is_none()
        && s.data == t.data
        && s.acl == t.acl
        && s.ephemeral == t.ephemeral
}

/// The side-by-side text.
pub fn render_text(path: &str, s: &Side, t: &Side) -> String {
    let mut out = format!("{path}\n");
    let cell = |v: &Side, f: &dyn Fn(&Side) -> Option<String>| -> String {
        if !v.exists {
            "absent".into()
        } else if let Some(e) = &v.error {
            e.clone()
        } else {
            f(v).unwrap_or_else(|| "-".into())
        }
    };
    // Name, whether a difference there is one a copy must not have (a
    // copy's version and modification time are its own), and the value.
    type Field<'a> = (&'a str, bool, Box<dyn Fn(&Side) -> Option<String>>);
    let fields: Vec<Field> = vec![
        (
            "kind",
            true,
            Box::new(|v| {
                v.ephemeral
                    .map(|e| if e { "ephemeral" } else { "persistent" }.into())
            }),
        ),
        (
            "data bytes",
            true,
            Box::new(|v| v.data_length.map(|n| n.to_string())),
        ),
        (
            "data version",
            false,
            Box::new(|v| v.version.map(|n| n.to_string())),
        ),
        (
            "modified",
            false,
            Box::new(|v| {
                v.mtime_ms.map(|ms| {
                    let t = std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
                    humantime::format_rfc3339_seconds(t).to_string()
                })
            }),
        ),
        (
            "children",
            true,
            Box::new(|v| v.children.map(|n| n.to_string())),
        ),
        (
            "next sequential number",
            true,
            Box::new(|v| v.next_sequence.map(|n| n.to_string())),
        ),
        (
            "acl",
            true,
            Box::new(|v| v.acl.as_ref().map(|a| a.join(", "))),
        ),
    ];
    let _ = writeln!(out, "  {:<24} {:<36} target", "", "source");
    let _ = writeln!(
        out,
        "  {:<24} {:<36} {}",
        "exists",
        yes(s.exists),
        yes(t.exists)
    );
    for (name, judged, f) in &fields {
        let (a, b) = (cell(s, f.as_ref()), cell(t, f.as_ref()));
        let mark = if *judged && a != b { "≠" } else { " " };
        let _ = writeln!(out, "{mark} {name:<24} {a:<36} {b}");
    }
    if s.read_from.is_some() || t.read_from.is_some() {
        let server = |v: &Side| v.read_from.clone().unwrap_or_else(|| "any".into());
        let _ = writeln!(out, "  {:<24} {:<36} {}", "read from", server(s), server(t));
    }
    if let (Some(a), Some(b)) = (&s.data, &t.data) {
        match data_diff(a, b) {
            DataDiff::Same => out.push_str("\nthe values are the same\n"),
            DataDiff::Json { changes } => {
                let _ = writeln!(
                    out,
                    "\nthe values differ (JSON, {} change(s)):",
                    changes.len()
                );
                for c in changes.iter().take(LISTED) {
                    let _ = writeln!(out, "  {c}");
                }
                more(&mut out, changes.len());
            }
            DataDiff::Text { lines } => {
                out.push_str("\nthe values differ (text):\n");
                for l in lines.iter().take(LISTED) {
                    let _ = writeln!(out, "  {}", printable(l));
                }
                more(&mut out, lines.len());
            }
            DataDiff::Binary {
                offset,
                source,
                target,
            } => {
                let _ = writeln!(
                    out,
                    "\nthe values differ (bytes), first at offset {offset} (0x{offset:x}):\n  source {source}\n  target {target}"
                );
            }
        }
    }
    out
}

fn more(out: &mut String, n: usize) {
    if n > LISTED {
        let _ = writeln!(out, "  … {} more", n - LISTED);
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Control characters shown escaped: a value must not drive the terminal.
fn printable(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// The JSON answer.
pub fn render_json(path: &str, s: &Side, t: &Side) -> String {
    let diff = match (&s.data, &t.data) {
        (Some(a), Some(b)) => Some(data_diff(a, b)),
        _ => None,
    };
    let v = serde_json::json!({
        "path": path,
        "same": same(s, t),
        "source": s,
        "target": t,
        "data_diff": diff,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_are_compared_by_structure_not_by_text() {
        let a = br#"{"retention": 7, "topics": ["a", "b"], "owner": "x"}"#;
        let b = br#"{"topics":["a","c"],"retention":14,"new":true}"#;
        let DataDiff::Json { changes } = data_diff(a, b) else {
            panic!("JSON expected");
        };
        assert_eq!(
            changes,
            [
                "$.owner: \"x\" on the source, absent on the target",
                "$.retention: 7 → 14",
                "$.topics[1]: \"b\" → \"c\"",
                "$.new: absent on the source, true on the target",
            ]
        );
        // Reordered keys and spacing alone: the same JSON.
        let DataDiff::Json { changes } = data_diff(br#"{"a":1,"b":2} "#, br#"{"b":2,"a":1}"#)
        else {
            panic!("JSON expected");
        };
        assert!(changes.is_empty());
    }

    #[test]
    fn text_gets_a_line_diff_and_bytes_a_hex_view_at_the_first_difference() {
        let DataDiff::Text { lines } = data_diff(b"a\nb\nc\n", b"a\nB\nc\n") else {
            panic!("text expected");
        };
        assert!(
            lines.contains(&"-b".to_string()) && lines.contains(&"+B".to_string()),
            "{lines:?}"
        );
        let a: Vec<u8> = (0u8..64).collect();
        let mut b = a.clone();
        b[40] = 0xff;
        let DataDiff::Binary {
            offset,
            source,
            target,
        } = data_diff(&a, &b)
        else {
            panic!("bytes expected");
        };
        assert_eq!(offset, 40);
        assert!(source.starts_with("00000018  18 19"), "{source}");
        assert!(target.contains(" ff "), "{target}");
        assert_eq!(data_diff(b"x", b"x"), DataDiff::Same);
    }
}
