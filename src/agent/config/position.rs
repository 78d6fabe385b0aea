//! Positions and key names in the text, for errors toml reports by offset.

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn line_start(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text[..end].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

fn strip_comment(line: &str) -> &str {
    // Good enough for headers and keys, which hold no '#'.
    line.split('#').next().unwrap_or("").trim()
}

/// The table the line at `offset` belongs to: `""`, `nagios`, `pair[1]`.
pub(super) fn table_at(text: &str, offset: usize) -> String {
    let upto = &text[..line_start(text, offset).min(text.len())];
    // Count the [[array]] headers above, so entries get their index.
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let mut current = String::new();
    let this_line = text[line_start(text, offset)..]
        .lines()
        .next()
        .unwrap_or("");
    for line in upto.lines().chain(std::iter::once(this_line)) {
        let l = strip_comment(line);
        if let Some(name) = l.strip_prefix("[[").and_then(|s| s.strip_suffix("]]")) {
            let name = name.trim().to_string();
            let n = counts.entry(name.clone()).or_insert(0);
            current = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            current = name.trim().to_string();
        }
    }
    current
}

pub(super) fn join_key(table: &str, key: &str) -> String {
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => table.to_string(),
        (false, false) => format!("{table}.{key}"),
    }
}

/// The key whose value (or name) sits at `offset`, with its table.
pub(super) fn key_at(text: &str, offset: usize) -> String {
    let table = table_at(text, offset);
    // The line holding `key =`: this one, or for a value spread over lines
    // (an array), the nearest one above that is not a header.
    let mut start = line_start(text, offset);
    loop {
        let line = text[start..].lines().next().unwrap_or("");
        let l = strip_comment(line);
        if l.starts_with('[') && !l.contains('=') {
            return table;
        }
        if let Some((k, _)) = l.split_once('=') {
            let k = k.trim().trim_matches('"').trim_matches('\'');
            return join_key(&table, k);
        }
        if start == 0 {
            return table;
        }
        start = line_start(text, start - 1);
    }
}

pub(super) fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}
