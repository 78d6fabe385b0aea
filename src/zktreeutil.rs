//! zktreeutil's XML files, both ways: read one as a side of a comparison, and
//! export a live tree or a snapshot in its format.
//!
//! The format (ZooKeeper's `zookeeper-contrib-zktreeutil`): a `<root>`
//! element standing for `/`, then nested `<zknode name="LEAF" [value="TEXT"]
//! [ignore="true|yes|1"]>` elements. Values are plain attribute text, so
//! only text data fits; there are no ACLs, no stat and no node kinds, and an
//! empty value is left out. `ignore` marks a subtree zktreeutil leaves alone.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::NodeKind;
use crate::error::{Error, Result};
use crate::tree::path::{child_path, name_of};
use crate::tree::{EphemeralPolicy, NodeRead, ReadNodes, ReaderOptions, SideNode, WalkOptions};

/// Deepest `<zknode>` nesting read. ZooKeeper puts no limit on depth, but
/// its paths are bounded (a create is one request under `jute.maxbuffer`)
/// and no real tree comes near this; a file nested deeper is refused.
pub const MAX_DEPTH: usize = 4096;
/// Longest path read: far past any real znode path.
pub const MAX_PATH: usize = 64 << 10;

struct XmlNode {
    name: String,
    parent: u32,
    value: String,
    /// In document order.
    kids: Vec<u32>,
    /// `kids` sorted by name, for lookups.
    by_name: Vec<u32>,
    /// Marked `ignore`: listed by its parent, never read.
    ignored: bool,
}

/// A zktreeutil file, held in memory as zktreeutil itself does: each node
/// once, by its name under its parent, so memory grows with the file
/// whatever its depth.
pub struct XmlTree {
    /// The root first.
    nodes: Vec<XmlNode>,
    ignored: Vec<String>,
    keep_data: bool,
    reads: AtomicU64,
}

fn is_ignored(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "yes" | "1"))
}

impl XmlTree {
    pub(crate) fn open(path: &Path, _side: &str, options: &ReaderOptions) -> Result<XmlTree> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            context: format!("reading zktreeutil file {}", path.display()),
            source: e,
        })?;
        Ok(XmlTree::parse(&text, path)?.keeping_data(options.keep_data))
    }

    pub fn parse(text: &str, file: &Path) -> Result<XmlTree> {
        let doc = roxmltree::Document::parse(text).map_err(|e| Error::BadFile {
            file: file.to_path_buf(),
            line: u64::from(e.pos().row),
            reason: format!("not well-formed XML: {e}"),
        })?;
        let bad = |node: roxmltree::Node, reason: String| {
            let at = node.range().start;
            Error::BadFile {
                file: file.to_path_buf(),
                line: u64::from(doc.text_pos_at(at).row),
                reason: format!("{reason} (at byte {at})"),
            }
        };
        let mut tree = XmlTree {
            nodes: vec![XmlNode {
                name: String::new(),
                parent: 0,
                // zktreeutil neither writes nor reads a value on <root>.
                value: String::new(),
                kids: Vec::new(),
                by_name: Vec::new(),
                ignored: false,
            }],
            ignored: Vec::new(),
            keep_data: false,
            reads: AtomicU64::new(0),
        };
        // Ignored paths are kept whole (they become exclude patterns), so
        // they are held to a multiple of the file, not to their depth.
        let most_ignored = text.len().saturating_mul(4).saturating_add(1 << 20);
        let mut ignored_bytes = 0usize;
        // zktreeutil does not check the root element's name; neither do we.
        // Depth first with a stack of its own: no recursion the file drives.
        let mut stack = vec![(0u32, doc.root_element(), 0usize, 1usize)];
        while let Some((id, element, depth, path_len)) = stack.pop() {
            for child in element.children().filter(|c| c.is_element()) {
                if child.tag_name().name() != "zknode" {
                    return Err(bad(
                        child,
                        format!("<{}> where <zknode> was expected", child.tag_name().name()),
                    ));
                }
                let Some(name) = child.attribute("name") else {
                    return Err(bad(child, "a <zknode> without a name".into()));
                };
                if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                    return Err(bad(child, format!("{name:?} is not a znode name")));
                }
                if depth + 1 > MAX_DEPTH {
                    return Err(bad(
                        child,
                        format!("<zknode> nested more than {MAX_DEPTH} deep"),
                    ));
                }
                let child_len = path_len + usize::from(id != 0) + name.len();
                if child_len > MAX_PATH {
                    return Err(bad(child, format!("a path longer than {MAX_PATH} bytes")));
                }
                let child_id = u32::try_from(tree.nodes.len())
                    .map_err(|_| bad(child, "more nodes than this reader can hold".into()))?;
                let ignored = is_ignored(child.attribute("ignore"));
                tree.nodes.push(XmlNode {
                    name: name.to_string(),
                    parent: id,
                    value: if ignored {
                        String::new()
                    } else {
                        child.attribute("value").unwrap_or_default().to_string()
                    },
                    kids: Vec::new(),
                    by_name: Vec::new(),
                    ignored,
                });
                tree.nodes[id as usize].kids.push(child_id);
                if ignored {
                    let path = tree.path_of(child_id);
                    ignored_bytes += path.len();
                    if ignored_bytes > most_ignored {
                        return Err(bad(
                            child,
                            format!(
                                "ignored paths longer, all together, than {most_ignored} bytes"
                            ),
                        ));
                    }
                    tree.ignored.push(path);
                    continue;
                }
                stack.push((child_id, child, depth + 1, child_len));
            }
            let mut by_name = tree.nodes[id as usize].kids.clone();
            by_name.sort_by(|a, b| {
                tree.nodes[*a as usize]
                    .name
                    .cmp(&tree.nodes[*b as usize].name)
                    .then(a.cmp(b))
            });
            if let Some(w) = by_name
                .windows(2)
                .find(|w| tree.nodes[w[0] as usize].name == tree.nodes[w[1] as usize].name)
            {
                let twice = w[1];
                let position = tree.nodes[id as usize]
                    .kids
                    .iter()
                    .position(|k| *k == twice)
                    .unwrap_or(0);
                let node = element
                    .children()
                    .filter(|c| c.is_element())
                    .nth(position)
                    .unwrap_or(element);
                return Err(bad(node, format!("{} appears twice", tree.path_of(twice))));
            }
            tree.nodes[id as usize].by_name = by_name;
        }
        Ok(tree)
    }

    /// The path of node `id`.
    fn path_of(&self, mut id: u32) -> String {
        let mut names = Vec::new();
        while id != 0 {
            let n = &self.nodes[id as usize];
            names.push(n.name.as_str());
            id = n.parent;
        }
        if names.is_empty() {
            return "/".into();
        }
        names.iter().rev().fold(String::new(), |mut p, n| {
            p.push('/');
            p.push_str(n);
            p
        })
    }

    fn lookup(&self, path: &str) -> Option<&XmlNode> {
        let mut node = self.nodes.first()?;
        if path == "/" {
            return Some(node);
        }
        for name in path.strip_prefix('/')?.split('/') {
            let i = node
                .by_name
                .binary_search_by(|k| self.nodes[*k as usize].name.as_str().cmp(name))
                .ok()?;
            node = &self.nodes[node.by_name[i] as usize];
        }
        (!node.ignored).then_some(node)
    }

    /// Keep values in [`NodeRead::data`] (for exporting from this tree).
    pub fn keeping_data(mut self, keep: bool) -> XmlTree {
        self.keep_data = keep;
        self
    }

    /// Paths marked `ignore`.
    pub(crate) fn ignored(&self) -> &[String] {
        &self.ignored
    }

    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Nodes as a live side would answer: persistent, no stat, no ACL.
    pub fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Vec<SideNode> {
        self.reads.fetch_add(paths.len() as u64, Ordering::Relaxed);
        paths
            .iter()
            .zip(names)
            .map(|(path, name)| match self.lookup(path) {
                None => SideNode::Absent,
                Some(n) => SideNode::Present(Box::new(NodeRead::new(
                    name,
                    NodeKind::Persistent,
                    n.value.as_bytes().to_vec(),
                    self.keep_data,
                    None,
                    None,
                    n.kids
                        .iter()
                        .map(|k| self.nodes[*k as usize].name.clone())
                        .collect(),
                ))),
            })
            .collect()
    }
}

impl ReadNodes for XmlTree {
    async fn read_nodes(&self, paths: &[&str], names: &[&str]) -> Result<Vec<SideNode>> {
        Ok(XmlTree::read_nodes(self, paths, names))
    }
}

/// Escapes attribute text as libxml2 writes it.
fn escape_attr(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

/// Why a value cannot be written as zktreeutil XML, if it cannot.
fn unwritable(data: &[u8]) -> Option<&'static str> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Some("its data is binary (not UTF-8)");
    };
    // XML 1.0 has no way at all to carry other control characters.
    text.chars()
        .any(|c| {
            (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffe}' || c == '\u{ffff}'
        })
        .then_some("its data holds control characters XML cannot carry")
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ExportSummary {
    pub nodes: u64,
    pub ignored: u64,
    pub skipped_ephemerals: u64,
    pub largest_value: u64,
}

struct Frame {
    path: String,
    children: Vec<(String, SideNode)>,
    next: usize,
    /// Indentation of the children's elements.
    child_level: usize,
    /// Where to write the closing tag; `None` for `<root>` itself.
    close_level: Option<usize>,
}

/// Writes `root` of `source` as zktreeutil XML, children in name order.
/// Excluded paths are written as `ignore="true"`, so that zktreeutil's
/// `--update` leaves them alone; ephemerals are left out unless the policy
/// compares them (zktreeutil would import them as persistent nodes).
pub async fn export<R: ReadNodes, W: Write>(
    source: &R,
    root: &str,
    walk: &WalkOptions,
    out: &mut W,
) -> Result<ExportSummary> {
    let mut summary = ExportSummary::default();
    let io = |e: std::io::Error| Error::Io {
        context: "writing the zktreeutil file".into(),
        source: e,
    };
    let mut text = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root>\n");
    // Ancestors of the root come first, without values, as zktreeutil does.
    let mut level = 1;
    let mut ancestors = Vec::new();
    if root != "/" {
        let parts: Vec<&str> = root.trim_start_matches('/').split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if unwritable(part.as_bytes()).is_some() {
                return Err(cannot_export(
                    root,
                    "its path holds control characters XML cannot carry",
                ));
            }
            open_element(&mut text, level, part, None, false, false);
            ancestors.push(level);
            level += 1;
        }
    }
    let first = read_one(source, root, "").await?;
    let mut stack: Vec<Frame> = Vec::new();
    match (&first, root) {
        (SideNode::Present(n), "/") => {
            stack.push(read_frame(source, walk, "/", &n.children, 1, None).await?);
        }
        (SideNode::Present(_), _) => {
            if let Some(f) =
                element(source, root, &first, walk, &mut text, level, &mut summary).await?
            {
                stack.push(f);
            }
        }
        (SideNode::Unreadable(reason), _) => return Err(cannot_export(root, reason)),
        (SideNode::Absent, _) => {
            return Err(Error::RootMissing {
                path: root.to_string(),
            })
        }
    }
    out.write_all(text.as_bytes()).map_err(io)?;
    while let Some(top) = stack.last_mut() {
        let mut text = String::new();
        if top.next == top.children.len() {
            if let Some(level) = top.close_level {
                close_element(&mut text, level);
            }
            stack.pop();
        } else {
            let (name, node) = &mut top.children[top.next];
            top.next += 1;
            let (name, node) = (name.clone(), std::mem::replace(node, SideNode::Absent));
            let path = child_path(&top.path, &name);
            let level = top.child_level;
            if walk.excludes.is_excluded(&path) {
                if unwritable(name.as_bytes()).is_some() {
                    return Err(cannot_export(
                        &path,
                        "its name holds control characters XML cannot carry",
                    ));
                }
                open_element(&mut text, level, &name, None, true, true);
                summary.ignored += 1;
            } else if let Some(f) =
                element(source, &path, &node, walk, &mut text, level, &mut summary).await?
            {
                stack.push(f);
            }
        }
        out.write_all(text.as_bytes()).map_err(io)?;
    }
    let mut text = String::new();
    for level in ancestors.into_iter().rev() {
        close_element(&mut text, level);
    }
    text.push_str("</root>\n");
    out.write_all(text.as_bytes()).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(summary)
}

fn cannot_export(path: &str, why: &str) -> Error {
    Error::Usage(format!(
        "cannot export {path} as zktreeutil XML: {why} (--exclude it, or take a zkparity snapshot, which holds any data)"
    ))
}

async fn read_one<R: ReadNodes>(source: &R, path: &str, name: &str) -> Result<SideNode> {
    let mut nodes = source.read_nodes(&[path], &[name]).await?;
    Ok(nodes.pop().unwrap_or(SideNode::Absent))
}

/// Writes one node's element; returns a frame if it has children to write.
async fn element<R: ReadNodes>(
    source: &R,
    path: &str,
    node: &SideNode,
    walk: &WalkOptions,
    text: &mut String,
    level: usize,
    summary: &mut ExportSummary,
) -> Result<Option<Frame>> {
    let n = match node {
        SideNode::Absent => return Ok(None),
        SideNode::Unreadable(reason) => return Err(cannot_export(path, reason)),
        SideNode::Present(n) => n,
    };
    if n.kind == NodeKind::Ephemeral && walk.ephemerals != EphemeralPolicy::Compare {
        summary.skipped_ephemerals += 1;
        return Ok(None);
    }
    let data = n.data.as_deref().unwrap_or_default();
    if let Some(why) = unwritable(data) {
        return Err(cannot_export(path, why));
    }
    if unwritable(name_of(path).as_bytes()).is_some() {
        return Err(cannot_export(
            path,
            "its name holds control characters XML cannot carry",
        ));
    }
    summary.nodes += 1;
    summary.largest_value = summary.largest_value.max(data.len() as u64);
    let value = std::str::from_utf8(data).unwrap_or_default();
    let name = name_of(path);
    if n.children.is_empty() {
        open_element(text, level, name, Some(value), false, true);
        return Ok(None);
    }
    open_element(text, level, name, Some(value), false, false);
    Ok(Some(
        read_frame(source, walk, path, &n.children, level + 1, Some(level)).await?,
    ))
}

/// Reads a node's children, a batch at a time, to write them in name order.
async fn read_frame<R: ReadNodes>(
    source: &R,
    walk: &WalkOptions,
    path: &str,
    children: &[String],
    child_level: usize,
    close_level: Option<usize>,
) -> Result<Frame> {
    let mut read: Vec<(String, SideNode)> = children
        .iter()
        .map(|c| (c.clone(), SideNode::Absent))
        .collect();
    // Excluded children are written as ignored, never read.
    let wanted: Vec<(usize, String)> = children
        .iter()
        .enumerate()
        .map(|(i, c)| (i, child_path(path, c)))
        .filter(|(_, p)| !walk.excludes.is_excluded(p))
        .collect();
    for chunk in wanted.chunks(200) {
        let paths: Vec<&str> = chunk.iter().map(|(_, p)| p.as_str()).collect();
        let names: Vec<&str> = chunk.iter().map(|(i, _)| children[*i].as_str()).collect();
        let nodes = source.read_nodes(&paths, &names).await?;
        for ((i, _), node) in chunk.iter().zip(nodes) {
            read[*i].1 = node;
        }
    }
    Ok(Frame {
        path: path.to_string(),
        children: read,
        next: 0,
        child_level,
        close_level,
    })
}

fn indent(text: &mut String, level: usize) {
    for _ in 0..level {
        text.push_str("  ");
    }
}

fn open_element(
    text: &mut String,
    level: usize,
    name: &str,
    value: Option<&str>,
    ignore: bool,
    empty: bool,
) {
    indent(text, level);
    text.push_str("<zknode name=\"");
    escape_attr(name, text);
    text.push('"');
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        text.push_str(" value=\"");
        escape_attr(v, text);
        text.push('"');
    }
    if ignore {
        text.push_str(" ignore=\"true\"");
    }
    text.push_str(if empty { "/>\n" } else { ">\n" });
}

fn close_element(text: &mut String, level: usize) {
    indent(text, level);
    text.push_str("</zknode>\n");
}
