//! The documentation's relative links lead somewhere: every `[text](path)`
//! in the README, `docs/` and the integration folders' markdown names a file
//! of the repository, and every `#anchor` names a heading of its page. A
//! guide moved or renamed without its links fails here, not in a reader's
//! browser. Needs no server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The markdown an operator reads: the README, the guides and specs, and
/// each integration folder's pages.
fn pages() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut pages = vec![root.join("README.md")];
    for dir in [
        "docs",
        "plugins",
        "nagios",
        "ganglia",
        "prometheus",
        "packaging",
    ] {
        let entries = std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("{dir}/: {e}"));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|x| x == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

/// Lines outside fenced code blocks, with their numbers. Inline code spans
/// are dropped (an example is not a link) or, for headings, kept without
/// their backticks, as GitHub keeps them in anchors.
fn prose(text: &str, keep_code: bool) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut kept = String::with_capacity(line.len());
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if keep_code || !in_code {
                kept.push(c);
            }
        }
        out.push((i + 1, kept));
    }
    out
}

/// Every `](target)` of a line.
fn targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        match rest.find(')') {
            Some(end) => {
                out.push(rest[..end].trim().to_string());
                rest = &rest[end..];
            }
            None => break,
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// turned into hyphens; a repeated heading gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in prose(text, true) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

/// Every relative link of every page that does not resolve, as
/// `page:line: target (why)`.
fn broken_links() -> Vec<String> {
    let mut broken = Vec::new();
    for page in pages() {
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        let shown = page
            .strip_prefix(ROOT)
            .unwrap_or(&page)
            .display()
            .to_string();
        for (number, line) in prose(&text, false) {
            for target in targets(&line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = match target.split_once('#') {
                    Some((file, anchor)) => (file, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let resolved = if file.is_empty() {
                    page.clone()
                } else {
                    page.parent().expect("a page's folder").join(file)
                };
                if !resolved.exists() {
                    broken.push(format!("{shown}:{number}: {target} (no such file)"));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                if resolved.extension().is_some_and(|x| x == "md") {
                    let linked = std::fs::read_to_string(&resolved).unwrap_or_default();
                    if !anchors(&linked).contains(anchor) {
                        broken.push(format!("{shown}:{number}: {target} (no such heading)"));
                    }
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_docs_names_an_existing_file_and_heading() {
    let broken = broken_links();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn headings_become_githubs_anchors() {
    let got = anchors(
        "# Migrate and cut over\n## Before the first write: refusals, backup, one writer\n\
         ### `[[pair]]` (one or more)\n```\n# not a heading\n```\n## Notes\n## Notes\n",
    );
    let want: BTreeSet<String> = [
        "migrate-and-cut-over",
        "before-the-first-write-refusals-backup-one-writer",
        "pair-one-or-more",
        "notes",
        "notes-1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want);
}
