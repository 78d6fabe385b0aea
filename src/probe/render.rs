//! `zkparity probe` output: a table for people, and JSON for programs (the
//! model as it is; schema in `docs/probe-json.md`).

use std::fmt::Write;

use super::ensemble::{CountParity, EnsembleKind, EnsembleView, ProbeReport};
use super::server::ServerProbe;

pub fn json(report: &ProbeReport) -> String {
    // Strings, integers, finite floats (non-finite ones serialise as null)
    // and maps with string keys: serde_json always serialises these.
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
}

pub fn text(report: &ProbeReport) -> String {
    let mut out = String::new();
    for (i, view) in report.views().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        ensemble(&mut out, view);
    }
    if let Some(parity) = &report.parity {
        out.push('\n');
        counts(&mut out, parity);
    }
    out
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn summary(view: &EnsembleView) -> String {
    let listed = view.servers_listed;
    let serving = view.servers_serving;
    match view.kind {
        EnsembleKind::Standalone if view.servers_listed == 1 => "standalone".to_string(),
        EnsembleKind::Standalone => format!("standalone servers, {serving} of {listed} serving"),
        EnsembleKind::Mixed => {
            format!("standalone and quorum servers mixed, {serving} of {listed} serving")
        }
        EnsembleKind::Unknown => format!("no server serving, {listed} listed"),
        EnsembleKind::Quorum => {
            let mut parts = Vec::new();
            match view.quorum_size {
                Some(q) => parts.push(format!("quorum of {q} voters")),
                None => parts.push("quorum".to_string()),
            }
            parts.push(format!("{serving} of {listed} listed serving"));
            match (&view.leader, view.leaders) {
                (Some(l), _) => parts.push(format!("leader {l}")),
                (None, 0) => parts.push("no leader listed".to_string()),
                (None, n) => parts.push(format!("{n} leaders")),
            }
            if let (Some(synced), Some(q)) = (view.synced_followers, view.quorum_size) {
                parts.push(format!(
                    "{synced} of {} followers in sync",
                    q.saturating_sub(1)
                ));
            }
            if view.observers > 0 {
                parts.push(format!("{} observers", view.observers));
            }
            parts.join(", ")
        }
    }
}

fn latency(s: &ServerProbe) -> String {
    s.latency.map_or_else(
        || "-".to_string(),
        |l| format!("{}/{}/{}", l.min, l.avg, l.max),
    )
}

fn fds(s: &ServerProbe) -> String {
    match (s.open_fds, s.max_fds) {
        (None, None) => "-".to_string(),
        (open, max) => format!("{}/{}", opt(open), opt(max)),
    }
}

fn ensemble(out: &mut String, view: &EnsembleView) {
    let _ = writeln!(out, "{} {}", view.side, view.connect);
    let verdict = view.verdict.as_str().to_uppercase();
    let _ = writeln!(out, "  {verdict}: {}", summary(view));
    for r in &view.reasons {
        let _ = writeln!(out, "    {:<8}  {}", r.severity.as_str(), r.message);
    }
    out.push('\n');

    let header = [
        "server",
        "mode",
        "version",
        "zxid",
        "latency ms",
        "queued",
        "conns",
        "watches",
        "znodes",
        "ephemeral",
        "data bytes",
        "fds",
    ];
    let rows: Vec<Vec<String>> = view
        .servers
        .iter()
        .map(|s| {
            vec![
                s.address.clone(),
                s.role().to_string(),
                opt(s
                    .version
                    .as_ref()
                    .map(|v| v.release.clone().unwrap_or_else(|| v.text.clone()))),
                opt(s.zxid),
                latency(s),
                opt(s.outstanding),
                opt(s.connections),
                opt(s.watches),
                opt(s.znodes),
                opt(s.ephemerals),
                opt(s.approx_data_size),
                fds(s),
            ]
        })
        .collect();
    // The first four columns are words; the rest are figures.
    table(out, &header, &rows, 4);

    let mut facts = Vec::new();
    if let Some(z) = view.zxid {
        facts.push(format!("zxid spread {}", z.spread));
    }
    if let Some(n) = view.znodes {
        let spread = view
            .znode_spread
            .map_or(String::new(), |d| format!(" (spread {d})"));
        facts.push(format!("znodes {n}{spread}"));
    }
    if let Some(n) = view.ephemerals {
        let spread = view
            .ephemeral_spread
            .map_or(String::new(), |d| format!(" (spread {d})"));
        facts.push(format!("ephemerals {n}{spread}"));
    }
    if let Some(n) = view.approx_data_size {
        facts.push(format!("data {n} bytes"));
    }
    if let Some(l) = &view.latency {
        facts.push(format!(
            "worst avg latency {} ms ({})",
            l.worst_avg, l.worst_avg_server
        ));
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "  {}", facts.join(", "));
    }
    for s in &view.servers {
        if !s.admin_words.is_empty() {
            let words: Vec<&str> = s.admin_words.iter().map(|w| w.as_str()).collect();
            let _ = writeln!(
                out,
                "  {} read through its AdminServer: {}",
                s.address,
                words.join(", ")
            );
        }
    }
    for u in &view.unchecked {
        let _ = writeln!(out, "  not checked: {u}");
    }
    for s in &view.servers {
        if let Some(e) = &s.admin_error {
            let _ = writeln!(out, "  {}: {e}", s.address);
        }
    }
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>], text_columns: usize) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::from(" ");
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i < text_columns {
                let _ = write!(l, " {cell:<w$}");
            } else {
                let _ = write!(l, " {cell:>w$}");
            }
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

fn signed(d: Option<i64>) -> String {
    d.map_or_else(|| "?".to_string(), |d| format!("{d:+}"))
}

fn counts(out: &mut String, p: &CountParity) {
    let _ = writeln!(
        out,
        "znode counts, target minus source (system nodes left out; a cheap signal, \
         not a compare)"
    );
    let side = |f: &dyn Fn(&super::ensemble::SideCounts) -> Option<u64>| {
        format!(
            "(source {}, target {})",
            opt(p.source.as_ref().and_then(f)),
            opt(p.target.as_ref().and_then(f))
        )
    };
    let rows = [
        (
            "persistent znodes",
            signed(p.persistent_delta),
            side(&|c| c.persistent),
        ),
        (
            "ephemerals",
            signed(p.ephemeral_delta),
            side(&|c| c.ephemerals),
        ),
        (
            "all user znodes",
            signed(p.znode_delta),
            side(&|c| Some(c.user_znodes)),
        ),
        (
            "approx. data bytes",
            signed(p.data_size_delta),
            side(&|c| c.approx_data_size),
        ),
    ];
    for (name, d, detail) in rows {
        let _ = writeln!(out, "  {name:<18} {d:>8}  {detail}");
    }
    let verdict = match p.counts_match {
        Some(true) => "persistent znode counts match",
        Some(false) => "persistent znode counts differ: run zkparity compare to see where",
        None => "persistent znode counts unknown",
    };
    let _ = writeln!(out, "  {verdict}");
    for n in &p.notes {
        let _ = writeln!(out, "  note: {n}");
    }
}
