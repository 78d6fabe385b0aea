//! The crate's layering, read from its source: which top-level module
//! refers to which. Arrows point one way: no two top-level modules reach
//! each other, directly or round a loop, in this crate or in the sandbox
//! crate, and nothing but the command line reaches into the agent that
//! drives the outputs (Nagios, Ganglia, Prometheus).
//!
//! A reference is a `crate::x` path (in a `use` or in code) or a `super::`
//! path that climbs to the crate root and names `x`. Comments, doc text,
//! strings and character literals are skipped before looking. The roots
//! (`lib.rs`, `main.rs`, `cmd/`) are where modules are wired together and
//! take part in no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the binary's and the library's roots are; their references are the
/// wiring, not layering.
const ROOTS: &[&str] = &["lib", "main", "cmd"];

#[test]
fn library_modules_form_no_import_cycle() {
    let graph = Graph::of_crate(&manifest_dir().join("src"));
    assert!(
        graph.edges.len() > 20,
        "the scan found too few references to be reading the source: {:?}",
        graph.edges.keys().collect::<Vec<_>>()
    );
    let report = graph.cycles_report();
    assert!(report.is_empty(), "import cycles in src/:\n{report}");
}

#[test]
fn sandbox_modules_form_no_import_cycle() {
    let graph = Graph::of_crate(&manifest_dir().join("crates/sandbox/src"));
    assert!(!graph.edges.is_empty(), "the scan found no references");
    let report = graph.cycles_report();
    assert!(
        report.is_empty(),
        "import cycles in crates/sandbox/src/:\n{report}"
    );
}

#[test]
fn only_the_command_line_reaches_into_the_agent() {
    // The agent drives the outputs (Nagios, Ganglia, Prometheus) and shares
    // its pieces with sync; none of them may need it back.
    let graph = Graph::of_crate(&manifest_dir().join("src"));
    let mut found = String::new();
    for ((from, to), refs) in &graph.edges {
        if to == "agent" {
            for r in refs {
                let _ = writeln!(found, "  {from} -> agent: {r}");
            }
        }
    }
    assert!(found.is_empty(), "modules depending on agent:\n{found}");
}

#[test]
fn the_scan_skips_comments_strings_and_doc_text() {
    let src = r####"
        //! use crate::docs_inner;
        /// crate::docs_outer::X
        // crate::line_comment
        /* crate::block /* crate::nested */ crate::still_block */
        const A: &str = "crate::string \" crate::escaped";
        const B: &str = r#"crate::raw " crate::raw_quote"#;
        const C: char = '"';
        fn f<'a>(x: &'a str) -> &'a str { let _ = crate::real::Y; x }
        const D: &[u8] = b"crate::bytes";
    "####;
    let known = Names {
        modules: names(&["real", "docs_inner"]),
        reexports: BTreeMap::new(),
    };
    let refs = references(src, &["here".to_string()], &known);
    let targets: Vec<_> = refs.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["real"]);
}

#[test]
fn the_scan_follows_super_and_groups_through_inline_modules() {
    let src = r#"
        use super::alpha::A;
        use crate::{beta::B, gamma, self as _};
        mod tests {
            use super::super::delta::D;
            use super::*;
            mod deeper { fn g() { super::super::super::epsilon::e(); } }
        }
        fn h() { super::zeta::z(); }
    "#;
    let known = Names {
        modules: names(&["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]),
        reexports: BTreeMap::new(),
    };
    let refs = references(src, &["here".to_string()], &known);
    let targets: BTreeSet<_> = refs.iter().map(|r| r.target.as_str()).collect();
    let want: BTreeSet<_> = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
        .into_iter()
        .collect();
    assert_eq!(targets, want);
}

#[test]
fn an_item_the_root_re_exports_counts_as_its_module() {
    let modules = names(&["server", "release"]);
    let root = "pub mod server;\npub use server::{Ensemble, ZkServer as Server};\npub use release::Release;\nfn lock() {}";
    let known = Names {
        reexports: reexports(root, &modules),
        modules,
    };
    let src = "use crate::Server;\nfn f(r: crate::Release) { crate::lock(); }";
    let refs = references(src, &["here".to_string()], &known);
    let targets: Vec<_> = refs.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["server", "release"]);
    assert_eq!(
        known.reexports.get("Ensemble").map(String::as_str),
        Some("server")
    );
}

#[test]
fn a_loop_through_three_modules_is_reported_with_its_references() {
    let mut graph = Graph::default();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph.nodes.insert(from.to_string());
        graph.nodes.insert(to.to_string());
        graph
            .edges
            .entry((from.to_string(), to.to_string()))
            .or_default()
            .push(format!("{from}.rs:1 crate::{to}"));
    }
    let report = graph.cycles_report();
    assert!(report.contains("cycle: a, b, c"), "{report}");
    assert!(report.contains("c -> a: c.rs:1 crate::a"), "{report}");
    assert!(!report.contains("-> d"), "{report}");
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Top-level modules and, for each ordered pair that refers, where.
#[derive(Default)]
struct Graph {
    nodes: BTreeSet<String>,
    edges: BTreeMap<(String, String), Vec<String>>,
}

impl Graph {
    fn of_crate(root: &Path) -> Graph {
        let mut files = Vec::new();
        rs_files(root, &mut files);
        files.sort();
        let top_level: BTreeSet<String> = files
            .iter()
            .filter_map(|f| module_path(root, f).into_iter().next())
            .filter(|m| !ROOTS.contains(&m.as_str()))
            .collect();
        let mut names = Names {
            modules: top_level.clone(),
            reexports: BTreeMap::new(),
        };
        for root_file in ["lib.rs", "main.rs"] {
            if let Ok(text) = std::fs::read_to_string(root.join(root_file)) {
                names.reexports.extend(reexports(&text, &top_level));
            }
        }
        let mut graph = Graph {
            nodes: top_level.clone(),
            ..Graph::default()
        };
        for file in &files {
            let path = module_path(root, file);
            let Some(from) = path.first() else { continue };
            if ROOTS.contains(&from.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let shown = file.strip_prefix(manifest_dir()).unwrap_or(file);
            for r in references(&text, &path, &names) {
                if &r.target == from {
                    continue;
                }
                graph
                    .edges
                    .entry((from.clone(), r.target))
                    .or_default()
                    .push(format!("{}:{} {}", shown.display(), r.line, r.text));
            }
        }
        graph
    }

    /// Every strongly connected component of more than one module, with the
    /// references between its members; empty when there is none.
    fn cycles_report(&self) -> String {
        let mut out = String::new();
        for component in self.components() {
            if component.len() < 2 {
                continue;
            }
            let members: Vec<&str> = component.iter().map(String::as_str).collect();
            let _ = writeln!(out, "cycle: {}", members.join(", "));
            for (from, to) in self.edges.keys() {
                let back = (to.clone(), from.clone());
                if from < to && component.contains(from) && self.edges.contains_key(&back) {
                    let _ = writeln!(out, "  each refers to the other: {from} <-> {to}");
                }
            }
            for ((from, to), refs) in &self.edges {
                if component.contains(from) && component.contains(to) {
                    for r in refs {
                        let _ = writeln!(out, "  {from} -> {to}: {r}");
                    }
                }
            }
        }
        out
    }

    /// Tarjan's strongly connected components.
    fn components(&self) -> Vec<BTreeSet<String>> {
        struct Tarjan<'g> {
            graph: &'g Graph,
            index: BTreeMap<&'g str, usize>,
            low: BTreeMap<&'g str, usize>,
            stack: Vec<&'g str>,
            on_stack: BTreeSet<&'g str>,
            out: Vec<BTreeSet<String>>,
        }
        impl<'g> Tarjan<'g> {
            fn visit(&mut self, v: &'g str) {
                let i = self.index.len();
                self.index.insert(v, i);
                self.low.insert(v, i);
                self.stack.push(v);
                self.on_stack.insert(v);
                let graph = self.graph;
                for (from, to) in graph.edges.keys() {
                    if from != v {
                        continue;
                    }
                    let w = to.as_str();
                    if !self.index.contains_key(w) {
                        self.visit(w);
                        let low = self.low[v].min(self.low[w]);
                        self.low.insert(v, low);
                    } else if self.on_stack.contains(w) {
                        let low = self.low[v].min(self.index[w]);
                        self.low.insert(v, low);
                    }
                }
                if self.low[v] == self.index[v] {
                    let mut component = BTreeSet::new();
                    while let Some(w) = self.stack.pop() {
                        self.on_stack.remove(w);
                        component.insert(w.to_string());
                        if w == v {
                            break;
                        }
                    }
                    self.out.push(component);
                }
            }
        }
        let mut t = Tarjan {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            out: Vec::new(),
        };
        for v in &self.nodes {
            if !t.index.contains_key(v.as_str()) {
                t.visit(v);
            }
        }
        t.out.sort();
        t.out
    }
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/agent/passive.rs` is `agent::passive`; `src/agent/mod.rs` is
/// `agent`; `src/lib.rs` is `lib` (a root).
fn module_path(root: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root).expect("a file under the root");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// What a name just below the crate root stands for: a top-level module,
/// or an item the root re-exports from one (`pub use server::ZkServer`).
struct Names {
    modules: BTreeSet<String>,
    reexports: BTreeMap<String, String>,
}

impl Names {
    fn module_of(&self, name: &str) -> Option<&str> {
        match self.modules.get(name) {
            Some(m) => Some(m.as_str()),
            None => self.reexports.get(name).map(String::as_str),
        }
    }
}

/// The root's `use m::{A, B as C}` lines: each name brought in, with the
/// top-level module it comes from.
fn reexports(root: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let toks = tokens(root);
    let mut out = BTreeMap::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => depth = depth.saturating_sub(1),
            Tok::Ident(w) if w == "use" && depth == 0 => {
                let from = match toks.get(i + 1) {
                    Some((Tok::Ident(m), _)) if modules.contains(m) => m.clone(),
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                let mut j = i + 1;
                let mut names: Vec<String> = Vec::new();
                let mut alias_next = false;
                while j < toks.len() && toks[j].0 != Tok::Semi {
                    if let Tok::Ident(w) = &toks[j].0 {
                        let is_segment = toks.get(j + 1).map(|(t, _)| t) == Some(&Tok::PathSep);
                        if w == "as" {
                            alias_next = true;
                        } else if alias_next {
                            names.pop();
                            names.push(w.clone());
                            alias_next = false;
                        } else if !is_segment && w != "self" {
                            names.push(w.clone());
                        }
                    }
                    j += 1;
                }
                for name in names {
                    out.insert(name, from.clone());
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

struct Reference {
    target: String,
    line: usize,
    text: String,
}

#[derive(Clone, PartialEq, Debug)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Other,
}

/// The tokens that matter for paths, each with its line; comments, strings
/// and character literals are dropped.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(&chars, i + 1, &mut line),
            'r' | 'b' | 'c' if raw_string_start(&chars, i).is_some() => {
                let (hashes, open) = raw_string_start(&chars, i).expect("checked");
                i = open + 1;
                loop {
                    if i >= chars.len() {
                        break;
                    }
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    if chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                        i += 1 + hashes;
                        break;
                    }
                    i += 1;
                }
            }
            'b' | 'c' if at(i + 1) == '"' => i = skip_string(&chars, i + 2, &mut line),
            'b' if at(i + 1) == '\'' => i = skip_char(&chars, i + 1),
            '\'' => {
                if at(i + 1) == '\\' || at(i + 2) == '\'' {
                    i = skip_char(&chars, i);
                } else {
                    // A lifetime or a label.
                    i += 1;
                    while at(i).is_alphanumeric() || at(i) == '_' {
                        i += 1;
                    }
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
                let mut word: String = chars[start..i].iter().collect();
                if word == "r" && at(i) == '#' {
                    let s = i + 1;
                    i += 1;
                    while at(i).is_alphanumeric() || at(i) == '_' {
                        i += 1;
                    }
                    word = chars[s..i].iter().collect();
                }
                out.push((Tok::Ident(word), line));
            }
            ':' if at(i + 1) == ':' => {
                out.push((Tok::PathSep, line));
                i += 2;
            }
            '{' => {
                out.push((Tok::Open, line));
                i += 1;
            }
            '}' => {
                out.push((Tok::Close, line));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, line));
                i += 1;
            }
            ';' => {
                out.push((Tok::Semi, line));
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                out.push((Tok::Other, line));
                i += 1;
            }
        }
    }
    out
}

/// From just inside an opening quote to just past the closing one.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            '\n' => {
                *line += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    i
}

/// From the opening `'` of a character literal to just past its close.
fn skip_char(chars: &[char], mut i: usize) -> usize {
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '\'' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// `r"`, `r#"`, `br##"`, `cr"`: the number of hashes and where the quote is.
fn raw_string_start(chars: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if chars[j] == 'b' || chars[j] == 'c' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some((hashes, j))
}

/// The top-level modules that a file at module path `path` names through
/// `crate::` or through `super::` climbing to the root, directly or by an
/// item the root re-exports.
fn references(src: &str, path: &[String], names: &Names) -> Vec<Reference> {
    let toks = tokens(src);
    let ident = |i: usize| match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: Tok| toks.get(i).map(|(k, _)| k) == Some(&t);
    let mut out = Vec::new();
    // Inline `mod name { ... }`: each is one more level for `super`, until
    // the brace that closes it.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            Tok::Ident(w) if w == "mod" && ident(i + 1).is_some() && is(i + 2, Tok::Open) => {
                inline.push(depth);
                depth += 1;
                i += 3;
                continue;
            }
            Tok::Ident(w) if (w == "crate" || w == "super") && is(i + 1, Tok::PathSep) => {
                let preceded_by_path = i > 0 && is(i - 1, Tok::PathSep);
                if !preceded_by_path {
                    let line = toks[i].1;
                    let mut level = path.len() + inline.len();
                    let mut j = i;
                    if w == "crate" {
                        level = 0;
                        j += 1;
                    } else {
                        while ident(j) == Some("super") && is(j + 1, Tok::PathSep) {
                            level = level.saturating_sub(1);
                            j += 2;
                        }
                        j -= 1;
                    }
                    // `j` is at the `::` after the prefix.
                    if level == 0 {
                        for name in first_segments(&toks, j + 1) {
                            if let Some(module) = names.module_of(&name) {
                                out.push(Reference {
                                    target: module.to_string(),
                                    line,
                                    text: path_text(&toks, i),
                                });
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The first name after a root prefix: `x` in `crate::x::Y`, and each
/// group member's first name in `crate::{x::Y, z}`.
fn first_segments(toks: &[(Tok, usize)], i: usize) -> Vec<String> {
    match toks.get(i).map(|(t, _)| t) {
        Some(Tok::Ident(s)) => vec![s.clone()],
        Some(Tok::Open) => {
            let mut names = Vec::new();
            let mut depth = 0;
            let mut expect_name = true;
            for (t, _) in &toks[i..] {
                match t {
                    Tok::Open => {
                        depth += 1;
                        expect_name = depth == 1;
                    }
                    Tok::Close => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::Comma if depth == 1 => expect_name = true,
                    Tok::Ident(s) if expect_name && depth == 1 => {
                        names.push(s.clone());
                        expect_name = false;
                    }
                    _ => expect_name = false,
                }
            }
            names
        }
        _ => Vec::new(),
    }
}

/// The path as written, for the failure message: `crate::report::Foo`.
fn path_text(toks: &[(Tok, usize)], i: usize) -> String {
    let mut text = String::new();
    let mut after_separator = true;
    for (t, _) in toks[i..].iter().take(12) {
        match t {
            Tok::Ident(s) if after_separator => {
                text.push_str(s);
                after_separator = false;
            }
            Tok::PathSep if !after_separator => {
                text.push_str("::");
                after_separator = true;
            }
            Tok::Open if after_separator => {
                text.push_str("{..}");
                break;
            }
            _ => break,
        }
    }
    text
}
