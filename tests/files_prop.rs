//! No file makes the snapshot or zktreeutil readers panic, and what the
//! writers write reads back byte for byte. A file that is refused is refused
//! with an error naming the file and a line of it; a mutated file that is
//! accepted reads back exactly what was written. Mutations (flipped bytes,
//! cuts, inserted bytes, repeated lines) of valid files and arbitrary input,
//! 4,096 cases per property.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use zkparity::snapshot::SnapshotFile;
use zkparity::source::Source;
use zkparity::tree::{ReaderOptions, SideNode, WalkOptions};
use zkparity::zktreeutil::{self, XmlTree};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 4096,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn keep() -> ReaderOptions {
    ReaderOptions {
        keep_data: true,
        ..ReaderOptions::default()
    }
}

/// A valid snapshot of `/r` with the given children (name, data).
fn snapshot_text(children: &[(String, Vec<u8>)]) -> Vec<u8> {
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let stat = r#"{"czxid":5,"mzxid":5,"pzxid":9,"ctime":1,"mtime":1,"version":0,"cversion":2,"aversion":0,"ephemeral_owner":0,"data_length":0,"num_children":0}"#;
    let acl = r#"[{"scheme":"world","id":"anyone","perms":31}]"#;
    let mut names: Vec<&str> = children.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let mut lines = vec![
        r#"{"format":"zkparity-snapshot","version":1,"digest_version":"zkparity-digest-v1","source":"h:1","path":"/r","excludes":["/zookeeper"],"ephemerals":"count","created_unix":0,"zkparity":"0"}"#.to_string(),
        format!(
            r#"{{"path":"/r","kind":"persistent","data":"","acl":{acl},"stat":{stat},"children":{}}}"#,
            serde_json::to_string(&names).unwrap()
        ),
    ];
    for (name, data) in children {
        lines.push(format!(
            r#"{{"path":{},"kind":"persistent","data":"{}","acl":{acl},"stat":{stat},"children":[]}}"#,
            serde_json::to_string(&format!("/r/{name}")).unwrap(),
            b64(data)
        ));
    }
    let mut body = lines.join("\n") + "\n";
    let sha = hex::encode(Sha256::digest(body.as_bytes()));
    body.push_str(&format!(
        r#"{{"end":{{"nodes":{},"ephemerals":0,"unreadable":0,"bytes":0,"checksum":"00","acl_fingerprint":"00","records":{},"sha256":"{sha}"}}}}"#,
        children.len() + 1,
        children.len() + 1
    ));
    body.push('\n');
    body.into_bytes()
}

fn open_snapshot(bytes: &[u8]) -> zkparity::error::Result<SnapshotFile> {
    open_snapshot_at(bytes).0
}

/// Opens `bytes` as a snapshot file; also returns the file's name.
fn open_snapshot_at(bytes: &[u8]) -> (zkparity::error::Result<SnapshotFile>, String) {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(bytes).expect("write");
    let name = file.path().display().to_string();
    (SnapshotFile::open(file.path(), &keep()), name)
}

/// An error about a file must read `FILE line N: reason`, N a line of the
/// file (lines count from 1; 0 is the file as a whole).
fn names_file_and_line(error: &str, file: &str, text: &[u8]) -> Result<(), TestCaseError> {
    let rest = error.strip_prefix(&format!("{file} line "));
    prop_assert!(rest.is_some(), "{error:?} does not name {file} and a line");
    let number = rest.unwrap().split(':').next().unwrap_or_default();
    let line: usize = number
        .parse()
        .map_err(|_| TestCaseError::fail(format!("{error:?}: {number:?} is not a line")))?;
    // A gzip file's lines are those of what it unpacks to.
    if !text.starts_with(&[0x1f, 0x8b]) {
        let lines = text.split(|&b| b == b'\n').count();
        prop_assert!(line <= lines, "{error:?}: the file has {lines} line(s)");
    }
    Ok(())
}

/// Every child of `/r` reads back with the data it was written with, and the
/// root lists them all.
fn reads_back(snap: &SnapshotFile, kids: &[(String, Vec<u8>)]) -> Result<(), TestCaseError> {
    for (name, data) in kids {
        let path = format!("/r/{name}");
        let nodes = snap.read_nodes(&[&path], &[name]);
        prop_assert!(nodes.is_ok(), "{path}: {nodes:?}");
        let nodes = nodes.unwrap();
        let SideNode::Present(n) = &nodes[0] else {
            return Err(TestCaseError::fail(format!(
                "{path} not read: {:?}",
                nodes[0]
            )));
        };
        prop_assert_eq!(n.data.as_deref(), Some(data.as_slice()));
    }
    let root = snap.read_nodes(&["/r"], &[""]);
    prop_assert!(root.is_ok(), "/r: {root:?}");
    prop_assert_eq!(
        root.unwrap()[0].present().map(|n| n.children.len()),
        Some(kids.len())
    );
    Ok(())
}

/// A parsed zktreeutil tree holds together: the root is there, and every
/// node that is there is listed by its parent, which is there too.
fn tree_holds_together(tree: &XmlTree) -> Result<(), TestCaseError> {
    let paths = xml_paths();
    let names: Vec<&str> = paths
        .iter()
        .map(|p| p.rsplit('/').next().unwrap())
        .collect();
    let nodes = tree.read_nodes(&paths, &names);
    prop_assert!(nodes[0].present().is_some(), "no root");
    for (path, node) in paths.iter().zip(&nodes).skip(1) {
        if node.present().is_none() {
            continue;
        }
        let (parent, name) = path.rsplit_once('/').unwrap();
        let parent = if parent.is_empty() { "/" } else { parent };
        let up = tree.read_nodes(&[parent], &[""]);
        let listed = up[0]
            .present()
            .is_some_and(|p| p.children.iter().any(|c| c == name));
        prop_assert!(listed, "{path} is there but its parent does not list it");
    }
    Ok(())
}

/// Parses `text` as a zktreeutil file: a tree that holds together, or an
/// error naming the file and a line of it.
fn parse_xml(text: &str) -> Result<(), TestCaseError> {
    match XmlTree::parse(text, Path::new("fuzz.xml")) {
        Ok(tree) => tree_holds_together(&tree),
        Err(e) => {
            let error = e.to_string();
            names_file_and_line(&error, "fuzz.xml", text.as_bytes())?;
            prop_assert!(!error.contains("fuzz.xml line 0:"), "{error}");
            Ok(())
        }
    }
}

fn node_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._\u{e9}\u{2603}-]{1,12}".prop_filter("not . or ..", |n| n != "." && n != "..")
}

fn children() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::btree_map(node_name(), prop::collection::vec(any::<u8>(), 0..64), 0..6)
        .prop_map(|m| m.into_iter().collect())
}

#[derive(Debug)]
enum Mutation {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
    RepeatLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<usize>().prop_map(Mutation::Cut),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::RepeatLine),
    ]
}

fn mutate(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let len = bytes.len().max(1);
    match m {
        Mutation::Flip(i, b) => {
            let i = i % len;
            if let Some(x) = bytes.get_mut(i) {
                *x ^= b | 1;
            }
        }
        Mutation::Cut(i) => bytes.truncate(i % len),
        Mutation::Insert(i, b) => {
            let i = i % len;
            bytes.splice(i..i, b.iter().copied());
        }
        Mutation::RepeatLine(i) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut lines: Vec<&str> = text.lines().collect();
            if !lines.is_empty() {
                let i = i % lines.len();
                lines.insert(i, lines[i]);
            }
            bytes = (lines.join("\n") + "\n").into_bytes();
        }
    }
    bytes
}

fn sample_xml() -> &'static str {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root>\n  <zknode name=\"zookeeper\" ignore=\"true\"/>\n  <zknode name=\"myapp\">\n    <zknode name=\"version-1.0\">\n      <zknode name=\"configuration\" value=\"v4.0\"/>\n      <zknode name=\"tmp\" ignore=\"yes\"/>\n    </zknode>\n  </zknode>\n</root>\n"
}

fn xml_paths() -> [&'static str; 5] {
    [
        "/",
        "/myapp",
        "/myapp/version-1.0",
        "/myapp/version-1.0/configuration",
        "/zookeeper",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn snapshots_read_back_every_byte(kids in children()) {
        let snap = open_snapshot(&snapshot_text(&kids)).expect("a valid file opens");
        reads_back(&snap, &kids)?;
    }

    #[test]
    fn mutated_snapshots_never_panic(kids in children(), m in mutation()) {
        let bytes = mutate(snapshot_text(&kids), &m);
        match open_snapshot_at(&bytes) {
            // The checksum held: what was written reads back.
            (Ok(snap), _) => reads_back(&snap, &kids)?,
            (Err(e), file) => names_file_and_line(&e.to_string(), &file, &bytes)?,
        }
    }

    #[test]
    fn arbitrary_bytes_are_never_a_snapshot_and_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (opened, file) = open_snapshot_at(&bytes);
        prop_assert!(opened.is_err());
        names_file_and_line(&opened.err().unwrap().to_string(), &file, &bytes)?;
    }

    #[test]
    fn arbitrary_xml_never_panics(text in "\\PC{0,200}|<root>(<zknode( name=\"[a-z/.]{0,3}\")?( value=\"[^\"]{0,4}\")?( ignore=\"(yes|no|1)\")?/?>){0,6}(</zknode>){0,3}</root>") {
        parse_xml(&text)?;
    }

    #[test]
    fn mutated_xml_never_panics(m in mutation()) {
        let bytes = mutate(sample_xml().as_bytes().to_vec(), &m);
        parse_xml(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn exported_values_read_back_exactly(
        kids in prop::collection::btree_map(node_name(), "[\t\n\r -~\u{a0}-\u{2fff}]{0,40}", 1..6)
    ) {
        // Build a tree, export it, parse the export: every value survives
        // zktreeutil's escaping.
        let mut xml = String::from("<root><zknode name=\"r\">");
        for (name, value) in &kids {
            xml.push_str(&format!("<zknode name=\"{}\" value=\"{}\"/>", escape(name), escape(value)));
        }
        xml.push_str("</zknode></root>");
        let tree = XmlTree::parse(&xml, std::path::Path::new("in.xml")).expect("valid input").keeping_data(true);
        let source = Source::Zktreeutil(tree);
        let walk = WalkOptions::new(zkparity::tree::EphemeralPolicy::Count, zkparity::exclude::Excludes::new::<&str>(&[]).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut out = Vec::new();
        rt.block_on(zktreeutil::export(&source, "/r", &walk, &mut out)).expect("export");
        let text = String::from_utf8(out).expect("UTF-8");
        let back = XmlTree::parse(&text, std::path::Path::new("out.xml")).expect("export parses").keeping_data(true);
        for (name, value) in &kids {
            let path = format!("/r/{name}");
            let nodes = back.read_nodes(&[&path], &[name]);
            let SideNode::Present(n) = &nodes[0] else { panic!("{path} lost") };
            prop_assert_eq!(n.data.as_deref(), Some(value.as_bytes()));
        }
    }
}

/// Escaping for building test input (every character XML needs, and line
/// ends, which attribute normalisation would otherwise turn into spaces).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;")
}

/// `snapshot_text`'s layout with the root's `children` list replaced.
fn with_root_children(children_json: &str) -> Vec<u8> {
    let text = String::from_utf8(snapshot_text(&[])).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.pop();
    lines[1] = lines[1].replace("\"children\":[]", &format!("\"children\":{children_json}"));
    let mut body = lines.join("\n") + "\n";
    let sha = hex::encode(Sha256::digest(body.as_bytes()));
    body.push_str(&format!(
        r#"{{"end":{{"nodes":1,"ephemerals":0,"unreadable":0,"bytes":0,"checksum":"00","acl_fingerprint":"00","records":1,"sha256":"{sha}"}}}}"#
    ));
    body.push('\n');
    body.into_bytes()
}

#[test]
fn child_names_a_walk_could_not_visit_are_refused_even_with_a_good_hash() {
    assert!(open_snapshot(&with_root_children(r#"["a","b"]"#)).is_ok());
    for bad in [
        r#"["a/b"]"#,
        r#"[""]"#,
        r#"[".."]"#,
        r#"["b","a"]"#,
        r#"["a","a"]"#,
    ] {
        let err = open_snapshot(&with_root_children(bad))
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(err.to_string().contains("line 2"), "{bad}: {err}");
    }
}
