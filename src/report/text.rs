//! The readable report: verdict first, then totals, the per-subtree table,
//! then the differences.

use std::fmt::Write;

use super::{CompareReport, DiffKind, Difference, NodeDetail, SubtreeSide, Verdict};

/// Makes a znode name safe to print on a terminal: control characters and
/// other invisible bytes are escaped, everything else is kept as is.
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || c == '\u{feff}' || c == '\u{200b}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}

fn side_cells(s: Option<&SubtreeSide>) -> String {
    match s {
        Some(s) => format!(
            "{:>9} {:>12}  {:<12}  {:<12}",
            s.nodes,
            s.bytes,
            short(&s.checksum),
            short(&s.acl_fingerprint)
        ),
        None => format!("{:>9} {:>12}  {:<12}  {:<12}", "-", "-", "(absent)", ""),
    }
}

fn describe(kind: DiffKind, d: &Difference) -> String {
    let data = |n: &NodeDetail| match (&n.data_length, &n.data_sha256) {
        (Some(len), Some(sha)) => format!("{len} bytes sha256 {}", short(sha)),
        _ => "-".into(),
    };
    let acl = |n: &NodeDetail| match &n.acl {
        Some(entries) => format!("[{}]", entries.join(", ")),
        None => "-".into(),
    };
    let kind_of = |n: &NodeDetail| n.node_kind.map(|k| k.as_str()).unwrap_or("-");
    match kind {
        DiffKind::MissingInTarget | DiffKind::ExtraInTarget => {
            let n = d.subtree_nodes.unwrap_or(1);
            format!("{n} node{} in the subtree", if n == 1 { "" } else { "s" })
        }
        DiffKind::Data => format!("source {}, target {}", data(&d.source), data(&d.target)),
        DiffKind::Acl => format!("source {}, target {}", acl(&d.source), acl(&d.target)),
        DiffKind::NodeKind => format!(
            "source {}, target {}",
            kind_of(&d.source),
            kind_of(&d.target)
        ),
        DiffKind::SequenceCounter => format!(
            "next sequential number: source {}, target {}: new sequential names on the target would reuse or reorder source names",
            d.source.next_sequence.unwrap_or_default(),
            d.target.next_sequence.unwrap_or_default()
        ),
        DiffKind::Unreadable => {
            let e = |side: &str, n: &NodeDetail| {
                n.error.as_ref().map(|e| format!("{side}: {}", printable(e)))
            };
            [e("source", &d.source), e("target", &d.target)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ")
        }
    }
}

/// `followers: h2:2181 follower (3 sessions, 5400 reads, 1800 nodes), ...`
fn read_from_line(p: &crate::placement::ReadServers) -> String {
    if p.servers.is_empty() {
        return format!("{}: any server of the connect string", p.read_from);
    }
    let servers: Vec<String> = p
        .servers
        .iter()
        .map(|s| {
            format!(
                "{} {} ({} session{}, {} reads, {} nodes)",
                printable(&s.server),
                s.role,
                s.sessions,
                if s.sessions == 1 { "" } else { "s" },
                s.reads,
                s.nodes
            )
        })
        .collect();
    format!("{}: {}", printable(&p.read_from), servers.join(", "))
}

pub fn render(r: &CompareReport) -> String {
    let mut o = String::new();
    heading(&mut o, r);
    totals(&mut o, r);
    subtrees(&mut o, r);
    differences(&mut o, r);
    acls_unverified(&mut o, r);
    o
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The verdict, what was compared with what, and the notes.
fn heading(o: &mut String, r: &CompareReport) {
    let s = &r.summary;
    let unreadable = format!(
        "{} path{} a side could not read (not compared; credentials that can read them would complete it)",
        s.unreadable,
        plural(s.unreadable)
    );
    let verdict = match s.verdict {
        Verdict::Identical => "IDENTICAL".to_string(),
        Verdict::Different if s.unreadable > 0 => format!(
            "DIFFERENT: {} confirmed difference{}, and {unreadable}",
            s.confirmed,
            plural(s.confirmed)
        ),
        Verdict::Different => format!(
            "DIFFERENT: {} confirmed difference{}",
            s.confirmed,
            plural(s.confirmed)
        ),
        Verdict::Incomplete => format!("INCOMPLETE: no differences, but {unreadable}"),
    };
    let _ = writeln!(o, "zkparity compare: {verdict}");
    let side = |e: &crate::report::Endpoint| match e.file {
        Some(crate::source::FileKind::Snapshot) => format!("snapshot {}", printable(&e.connect)),
        Some(crate::source::FileKind::Zktreeutil) => {
            format!("zktreeutil file {}", printable(&e.connect))
        }
        Some(crate::source::FileKind::Zookeeper) => format!(
            "ZooKeeper data {} at zxid {}",
            printable(&e.connect),
            e.zxid.as_deref().unwrap_or("?")
        ),
        None => printable(&e.connect),
    };
    let _ = writeln!(
        o,
        "  source {}  target {}  path {}",
        side(&r.source),
        side(&r.target),
        printable(&r.source.path)
    );
    for (name, e) in [("source", &r.source), ("target", &r.target)] {
        // `any` has no servers to name: the client library chose them.
        if let Some(placed) = e.read_placement.as_ref().filter(|p| p.read_from != "any") {
            let _ = writeln!(o, "  {name} read from {}", read_from_line(placed));
            for moved in &placed.moved {
                let _ = writeln!(o, "  {name} reads moved: {}", printable(moved));
            }
        }
    }
    if let Some(one) = &r.one_ensemble {
        let _ = writeln!(o, "  note: {}", printable(one));
    }
    for note in &r.notes {
        let _ = writeln!(o, "  note: {}", printable(note));
    }
    let _ = writeln!(o);
}

/// Both sides' counts, the differences by kind, and how they were re-checked.
fn totals(o: &mut String, r: &CompareReport) {
    let s = &r.summary;
    let _ = writeln!(
        o,
        "{:<8} {:>10} {:>11} {:>13} {:>11}",
        "", "nodes", "ephemerals", "data bytes", "unreadable"
    );
    for (name, t) in [("source", &s.source), ("target", &s.target)] {
        let _ = writeln!(
            o,
            "{:<8} {:>10} {:>11} {:>13} {:>11}",
            name, t.nodes, t.ephemerals, t.bytes, t.unreadable
        );
    }
    let _ = writeln!(o);
    let kinds: Vec<String> = DiffKind::DIFFERENCES
        .iter()
        .map(|k| {
            format!(
                "{} {}",
                k.as_str(),
                s.differences.get(k.as_str()).unwrap_or(&0)
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "differences: {}; unreadable paths {}",
        kinds.join(", "),
        s.unreadable
    );
    let recheck = match (s.rechecked, r.settings.recheck_delay_seconds) {
        (true, Some(delay)) => match s.lagging {
            0 => format!(
                "re-checked after {delay:.1}s, {} healed (transient)",
                s.transient
            ),
            n => format!(
                "re-checked after {delay:.1}s, {} healed (transient, {n} of them lagging behind the source)",
                s.transient
            ),
        },
        (false, Some(_)) => "nothing to re-check".to_string(),
        (_, None) => "not re-checked (--recheck-delay off)".to_string(),
    };
    let _ = writeln!(
        o,
        "{recheck}; ephemerals: {}; elapsed {:.2}s",
        r.settings.ephemerals.as_str(),
        s.elapsed_seconds
    );
    if !r.settings.acls_compared {
        let _ = writeln!(
            o,
            "ACLs not compared: a zktreeutil file holds none, so neither side's were read"
        );
    }
}

/// One row per subtree down to the depth asked for.
fn subtrees(o: &mut String, r: &CompareReport) {
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "SUBTREES (depth <= {}): nodes, data bytes, checksum, ACL fingerprint per side",
        r.settings.subtree_depth
    );
    let width = r
        .subtrees
        .iter()
        .map(|row| printable(&row.path).chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 48);
    let _ = writeln!(
        o,
        "  {:<width$}  {:<5}  {:>9} {:>12}  {:<12}  {:<12}  | {:>9} {:>12}  {:<12}  {:<12}",
        "path", "match", "source", "bytes", "checksum", "acl", "target", "bytes", "checksum", "acl"
    );
    for row in &r.subtrees {
        let _ = writeln!(
            o,
            "  {:<width$}  {:<5}  {}  | {}",
            printable(&row.path),
            if row.matches { "yes" } else { "NO" },
            side_cells(row.source.as_ref()),
            side_cells(row.target.as_ref()),
        );
    }
}

/// The differences listed, with why where a side could not be read.
fn differences(o: &mut String, r: &CompareReport) {
    if r.differences.is_empty() {
        return;
    }
    let s = &r.summary;
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "DIFFERENCES ({} of {} listed)",
        r.differences.len(),
        s.confirmed + s.unreadable
    );
    for d in &r.differences {
        let _ = writeln!(
            o,
            "  {:<17} {}  {}",
            d.kind.as_str(),
            printable(&d.path),
            describe(d.kind, d)
        );
        if let Some(reason) = &d.reason {
            let _ = writeln!(o, "  {:<17} why: {}", "", printable(reason));
        }
    }
    if r.differences_not_listed > 0 {
        let _ = writeln!(
            o,
            "  ... {} more (raise --limit, or 0 for all)",
            r.differences_not_listed
        );
    }
}

/// ACLs that agree as far as hidden digest ids let them be compared.
fn acls_unverified(o: &mut String, r: &CompareReport) {
    let s = &r.summary;
    if s.acl_unverified > 0 {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "ACLS NOT FULLY VERIFIED ({} node{}): a side lacks ADMIN there, so ZooKeeper hid the digest hashes (user:x);\n  scheme, user and permissions agree. Credentials with ADMIN on both sides would verify them.",
            s.acl_unverified,
            plural(s.acl_unverified)
        );
        for u in &r.acl_unverified {
            let _ = writeln!(
                o,
                "  {}  {}",
                printable(&u.path),
                printable(&u.entries.join(", "))
            );
        }
        let more = s
            .acl_unverified
            .saturating_sub(r.acl_unverified.len() as u64);
        if more > 0 {
            let _ = writeln!(o, "  ... {more} more");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(printable("naïve ünï"), "naïve ünï");
        assert_eq!(printable("\u{1b}[31m"), "\\u{1b}[31m");
    }
}
