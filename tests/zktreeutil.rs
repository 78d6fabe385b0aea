//! zktreeutil's XML both ways, against real servers: files in zktreeutil's
//! own format are read as a side (values only, `ignore` honoured, ACLs
//! skipped and said so), and `export` writes files zktreeutil can load.

mod common;

use std::path::Path;

use common::*;

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A file laid out as zktreeutil's `tests/zk_sample.xml` is, rooted at
/// `root` (a single name).
fn sample(root: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<root>
  <zknode name="zookeeper" ignore="true"/>
  <zknode name="{root}">
    <zknode name="myapp">
      <zknode name="version-1.0">
        <zknode name="configuration" value="v4.0"/>
        <zknode name="tmp" ignore="yes">
          <zknode name="alive" value="no"/>
        </zknode>
      </zknode>
      <zknode name="notes" value="a &amp; b &lt;c&gt; &quot;d&quot;&#10;second line"/>
    </zknode>
  </zknode>
</root>
"#
    )
}

async fn run_owned(args: Vec<String>) -> Run {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs).await
}

async fn export(server: &str, path: &str, out: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<String> = [
        "export",
        "--server",
        server,
        "--path",
        path,
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    run_owned(args).await
}

#[tokio::test]
async fn zktreeutil_file_is_read_as_a_side_with_values_only() {
    let p = pair();
    let t = client(&p.target).await;
    let name = unique_path("xml-side");
    let root = name.clone();
    let name = name.trim_start_matches('/');
    tree(
        &t,
        &root,
        &[
            ("myapp", b""),
            ("myapp/version-1.0", b""),
            ("myapp/version-1.0/configuration", b"v4.0"),
            // Under an ignored subtree: never compared.
            ("myapp/version-1.0/tmp", b"whatever"),
            ("myapp/version-1.0/tmp/other", b""),
            ("myapp/notes", b"a & b <c> \"d\"\nsecond line"),
        ],
    )
    .await;
    // An ACL the file cannot know about: not a difference.
    t.set_acl(
        &format!("{root}/myapp"),
        &[zookeeper_client::Acl::new(
            zookeeper_client::Permission::ALL,
            zookeeper_client::AuthId::new("ip", "127.0.0.1"),
        )],
        None,
    )
    .await
    .unwrap();
    let dir = temp_dir();
    let file = dir.path().join("sample.xml");
    std::fs::write(&file, sample(name)).unwrap();
    let f = file.to_str().unwrap();
    let live = p.target.connect_string();

    let r = compare_connects(f, &live, &["--path", &root]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report = r.json();
    assert_eq!(report["settings"]["acls_compared"], false);
    assert_eq!(report["source"]["file"], "zktreeutil");
    // root, myapp, version-1.0, configuration, notes: tmp is ignored.
    assert_eq!(report["summary"]["source"]["nodes"], 5, "{report}");
    assert_eq!(report["summary"]["target"]["nodes"], 5, "{report}");
    let text = run(&["compare", "--source", f, "--target", &live, "--path", &root]).await;
    assert!(
        text.stdout.contains("ACLs not compared"),
        "the text report does not say ACLs were skipped: {}",
        text.stdout
    );

    t.set_data(
        &format!("{root}/myapp/version-1.0/configuration"),
        b"v4.1",
        None,
    )
    .await
    .unwrap();
    t.delete(&format!("{root}/myapp/notes"), None)
        .await
        .unwrap();
    create(&t, &format!("{root}/myapp/version-1.0/tmp/new"), b"").await;
    let r = compare_connects(f, &live, &["--path", &root, "--limit", "0"]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let report = r.json();
    assert_eq!(count(&report, "data"), 1);
    assert_eq!(count(&report, "missing_in_target"), 1);
    assert_eq!(count(&report, "acl"), 0);
    assert_eq!(report["summary"]["confirmed"], 2, "{report}");
}

#[tokio::test]
async fn export_writes_zktreeutils_layout() {
    let p = pair();
    let s = client(&p.source).await;
    let root = unique_path("xml-export");
    tree(
        &s,
        &root,
        &[
            ("b", b"second"),
            ("a", b"first & <escaped> \"quoted\"\ttab\nline"),
            ("a/empty", b""),
            ("a/\u{e9}t\u{e9}", "unicode \u{2603}".as_bytes()),
        ],
    )
    .await;
    s.create(&format!("{root}/b/session"), b"", &ephemeral())
        .await
        .unwrap();
    let dir = temp_dir();
    let out = dir.path().join("tree.xml");
    let r = export(&p.source.connect_string(), &root, &out, &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("ephemerals left out"), "{}", r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<root>\n"));
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let top = doc.root_element();
    assert_eq!(top.tag_name().name(), "root");
    // The root's own element, by its name, straight under <root>.
    let node = top
        .children()
        .find(|c| c.is_element())
        .expect("root element");
    assert_eq!(node.attribute("name"), Some(root.trim_start_matches('/')));
    assert_eq!(node.attribute("value"), None, "empty values are left out");
    let kids: Vec<_> = node.children().filter(|c| c.is_element()).collect();
    let names: Vec<_> = kids.iter().map(|k| k.attribute("name").unwrap()).collect();
    assert_eq!(names, ["a", "b"], "children in name order");
    assert_eq!(
        kids[0].attribute("value"),
        Some("first & <escaped> \"quoted\"\ttab\nline")
    );
    let grandkids: Vec<_> = kids[0]
        .children()
        .filter(|c| c.is_element())
        .map(|k| (k.attribute("name").unwrap(), k.attribute("value")))
        .collect();
    assert_eq!(
        grandkids,
        [("empty", None), ("\u{e9}t\u{e9}", Some("unicode \u{2603}"))]
    );
    assert_eq!(
        kids[1].children().filter(|c| c.is_element()).count(),
        0,
        "the ephemeral was written"
    );
    // Nothing but zktreeutil's attributes.
    for n in doc.descendants().filter(|n| n.is_element()) {
        for a in n.attributes() {
            assert!(["name", "value"].contains(&a.name()), "{}", a.name());
        }
    }
}

#[tokio::test]
async fn export_below_the_root_writes_ancestors_without_values() {
    let p = pair();
    let s = client(&p.source).await;
    let root = unique_path("xml-deep");
    tree(&s, &root, &[("x", b"parent data"), ("x/y", b"leaf")]).await;
    let dir = temp_dir();
    let out = dir.path().join("deep.xml");
    let deep = format!("{root}/x/y");
    let r = export(&p.source.connect_string(), &deep, &out, &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let chain: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("zknode"))
        .map(|n| (n.attribute("name").unwrap(), n.attribute("value")))
        .collect();
    assert_eq!(
        chain,
        [
            (root.trim_start_matches('/'), None),
            ("x", None),
            ("y", Some("leaf"))
        ]
    );
    // And it reads back equal at that path.
    let r = compare_connects(
        out.to_str().unwrap(),
        &p.source.connect_string(),
        &["--path", &deep],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[tokio::test]
async fn text_tree_round_trips_through_zktreeutil_xml() {
    let p = pair();
    let s = client(&p.source).await;
    let root = unique_path("xml-round");
    let big = "v".repeat(150 * 1024);
    let mut nodes: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| (format!("n{i:02}"), format!("value {i}").into_bytes()))
        .collect();
    nodes.push(("n07/child".into(), b"nested".to_vec()));
    nodes.push(("big".into(), big.into_bytes()));
    let refs: Vec<(&str, &[u8])> = nodes
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    tree(&s, &root, &refs).await;
    let dir = temp_dir();
    let out = dir.path().join("round.xml");
    let r = export(&p.source.connect_string(), &root, &out, &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("131071"),
        "no warning about zktreeutil's 128 KiB limit: {}",
        r.stderr
    );
    let r = compare_connects(
        out.to_str().unwrap(),
        &p.source.connect_string(),
        &["--path", &root],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["summary"]["source"]["nodes"], 53);
    // A snapshot exports to the same file.
    let snap = dir.path().join("round.zkps");
    let r = run(&[
        "snapshot",
        "--server",
        &p.source.connect_string(),
        "--path",
        &root,
        "--out",
        snap.to_str().unwrap(),
        "-q",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let from_snap = dir.path().join("from-snapshot.xml");
    let r = export(snap.to_str().unwrap(), &root, &from_snap, &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        std::fs::read(&from_snap).unwrap(),
        std::fs::read(&out).unwrap()
    );
}

#[tokio::test]
async fn binary_data_stops_the_export_and_leaves_no_file() {
    let p = pair();
    let s = client(&p.source).await;
    let root = unique_path("xml-binary");
    tree(
        &s,
        &root,
        &[("text", b"fine"), ("blob", &[0xff, 0x00, 0x01])],
    )
    .await;
    let dir = temp_dir();
    let out = dir.path().join("never.xml");
    let r = export(&p.source.connect_string(), &root, &out, &[]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!("{root}/blob")) && r.stderr.contains("binary"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Excluded, it is written as ignored and the export goes through.
    let r = export(
        &p.source.connect_string(),
        &root,
        &out,
        &["--exclude", &format!("{root}/blob")],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("<zknode name=\"blob\" ignore=\"true\"/>"),
        "{text}"
    );
}

#[tokio::test]
async fn malformed_xml_is_refused_with_its_line() {
    let p = pair();
    let dir = temp_dir();
    let live = p.target.connect_string();
    let cases = [
        (
            "unclosed.xml",
            "<?xml version=\"1.0\"?>\n<root>\n  <zknode name=\"a\">\n</root>\n",
            "line 4",
        ),
        (
            "nameless.xml",
            "<root>\n  <zknode value=\"x\"/>\n</root>\n",
            "without a name",
        ),
        (
            "slash.xml",
            "<root>\n\n  <zknode name=\"a/b\"/>\n</root>\n",
            "line 3",
        ),
        (
            "twice.xml",
            "<root>\n  <zknode name=\"a\"/>\n  <zknode name=\"a\"/>\n</root>\n",
            "appears twice",
        ),
        (
            "entity.xml",
            "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY e \"x\">]>\n<root/>\n",
            "not well-formed",
        ),
    ];
    for (name, content, expected) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        let r = compare_connects(file.to_str().unwrap(), &live, &["--path", "/"]).await;
        assert_eq!(r.code, 2, "{name}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{name}: {}", r.stdout);
        assert!(
            r.stderr.contains(expected),
            "{name}: stderr does not say {expected:?}: {}",
            r.stderr
        );
    }
}

#[tokio::test]
async fn export_of_the_whole_tree_tells_zktreeutil_to_leave_zookeeper_alone() {
    // The file side needs no server: export reads zktreeutil files too.
    let dir = temp_dir();
    let input = dir.path().join("in.xml");
    std::fs::write(&input, sample("app")).unwrap();
    let out = dir.path().join("out.xml");
    let r = export(input.to_str().unwrap(), "/", &out, &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let top: Vec<_> = doc
        .root_element()
        .children()
        .filter(|c| c.is_element())
        .map(|c| (c.attribute("name").unwrap(), c.attribute("ignore")))
        .collect();
    assert_eq!(top, [("app", None), ("zookeeper", Some("true"))]);
    // Read back, it equals its input.
    let r = compare_connects(
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        &["--path", "/"],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[tokio::test]
async fn export_from_a_snapshot_marks_what_the_snapshot_left_out_as_ignored() {
    let p = pair();
    let s = client(&p.source).await;
    let root = unique_path("xml-snap-ex");
    tree(
        &s,
        &root,
        &[("kept", b"k"), ("secret", b""), ("secret/x", b"")],
    )
    .await;
    let dir = temp_dir();
    let snap = dir.path().join("ex.zkps");
    let r = run(&[
        "snapshot",
        "--server",
        &p.source.connect_string(),
        "--path",
        &root,
        "--exclude",
        &format!("{root}/secret"),
        "--out",
        snap.to_str().unwrap(),
        "-q",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = dir.path().join("ex.xml");
    let r = export(snap.to_str().unwrap(), &root, &out, &[]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("<zknode name=\"secret\" ignore=\"true\"/>"),
        "an excluded node vanished instead of being marked ignored, so zktreeutil --update would delete it: {text}"
    );
    assert!(
        text.contains("<zknode name=\"kept\" value=\"k\"/>"),
        "{text}"
    );
}
