//! `zkparity compare` against real ZooKeeper servers: every difference kind,
//! the tree shapes copy tools get wrong, and the read-only guarantee.

mod common;

use common::*;
use zookeeper_client as zk;

#[tokio::test]
async fn identical_trees_exit_zero_with_matching_checksums() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("identical");
    let nodes: &[(&str, &[u8])] = &[("a", b"1"), ("a/b", b"2"), ("c", b""), ("c/d", b"\x00\xff")];
    both(&s, &t, &root, nodes).await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["summary"]["identical"], true);
    assert_eq!(r["summary"]["source"]["nodes"], 5);
    assert_eq!(r["summary"]["target"]["nodes"], 5);
    let rows = r["subtrees"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "root and its two children");
    for row in rows {
        assert_eq!(row["match"], true, "{row:#}");
        assert_eq!(row["source"]["checksum"], row["target"]["checksum"]);
        assert_eq!(row["source"]["checksum"].as_str().unwrap().len(), 64);
    }
}

#[tokio::test]
async fn acl_entry_order_does_not_break_a_match_but_content_does() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("aclorder");
    both(&s, &t, &root, &[]).await;
    let a = zk::Acl::new(zk::Permission::ALL, zk::AuthId::anyone());
    let b = zk::Acl::new(zk::Permission::READ, zk::AuthId::new("ip", "10.1.2.3"));
    let c = zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("ip", "10.1.2.3"));
    fn with(acls: &[zk::Acl]) -> zk::CreateOptions<'_> {
        zk::CreateMode::Persistent.with_acls(zk::Acls::new(acls))
    }
    let ab = [a.clone(), b.clone()];
    let ba = [b.clone(), a.clone()];
    let ac = [a.clone(), c];
    s.create(&format!("{root}/same"), b"x", &with(&ab))
        .await
        .unwrap();
    t.create(&format!("{root}/same"), b"x", &with(&ba))
        .await
        .unwrap();
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 0, "ACL order alone must not differ: {r:#}");

    s.create(&format!("{root}/other"), b"x", &with(&ab))
        .await
        .unwrap();
    t.create(&format!("{root}/other"), b"x", &with(&ac))
        .await
        .unwrap();
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    let acl = of_kind(&r, "acl");
    assert_eq!(acl.len(), 1, "{r:#}");
    assert_eq!(acl[0]["path"], format!("{root}/other"));
    assert_eq!(
        acl[0]["source"]["acl"],
        serde_json::json!(["ip:10.1.2.3:r", "world:anyone:cdrwa"])
    );
    assert_eq!(
        acl[0]["target"]["acl"],
        serde_json::json!(["ip:10.1.2.3:cdrwa", "world:anyone:cdrwa"])
    );
    assert_ne!(
        acl[0]["source"]["acl_fingerprint"],
        acl[0]["target"]["acl_fingerprint"]
    );
}

#[tokio::test]
async fn missing_subtree_is_reported_once_at_its_root_with_its_size() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("missing");
    both(&s, &t, &root, &[("kept", b"k")]).await;
    tree(
        &s,
        &format!("{root}/gone"),
        &[("a", b"1"), ("a/b", b"2"), ("c", b"3")],
    )
    .await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    let missing = of_kind(&r, "missing_in_target");
    assert_eq!(
        missing.len(),
        1,
        "one difference for the whole subtree: {r:#}"
    );
    assert_eq!(missing[0]["path"], format!("{root}/gone"));
    assert_eq!(missing[0]["subtree_nodes"], 4);
    assert_eq!(missing[0]["source"]["exists"], true);
    assert_eq!(missing[0]["target"]["exists"], false);
    assert_eq!(r["summary"]["confirmed"], 1);
    assert_eq!(r["summary"]["source"]["nodes"], 6);
    assert_eq!(r["summary"]["target"]["nodes"], 2);
}

#[tokio::test]
async fn extra_subtree_on_the_target_is_reported_at_its_root() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("extra");
    both(&s, &t, &root, &[]).await;
    tree(&t, &format!("{root}/stale"), &[("x", b"1")]).await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    let extra = of_kind(&r, "extra_in_target");
    assert_eq!(extra.len(), 1, "{r:#}");
    assert_eq!(extra[0]["path"], format!("{root}/stale"));
    assert_eq!(extra[0]["subtree_nodes"], 2);
    assert_eq!(count(&r, "extra_in_target"), 1);
    assert_eq!(count(&r, "missing_in_target"), 0);
}

#[tokio::test]
async fn binary_data_with_every_byte_value_compares_exactly() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("binary");
    let all: Vec<u8> = (0..=255u8).collect();
    let mut changed = all.clone();
    changed[0] = 1;
    both(&s, &t, &root, &[("same", &all)]).await;
    create(&s, &format!("{root}/diff"), &all).await;
    create(&t, &format!("{root}/diff"), &changed).await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    let data = of_kind(&r, "data");
    assert_eq!(data.len(), 1, "{r:#}");
    assert_eq!(data[0]["path"], format!("{root}/diff"));
    assert_eq!(data[0]["source"]["data_length"], 256);
    assert_eq!(data[0]["target"]["data_length"], 256);
    let expected = hex::encode(sha2_digest(&all));
    assert_eq!(data[0]["source"]["data_sha256"], expected);
    assert_ne!(data[0]["target"]["data_sha256"], expected);
}

fn sha2_digest(data: &[u8]) -> [u8; 32] {
    zkparity::digest::data_sha256(data)
}

#[tokio::test]
async fn one_megabyte_value_differing_in_one_byte_is_found() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("bigvalue");
    both(&s, &t, &root, &[]).await;
    // Just under the server's default 1 MB request limit.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut other = big.clone();
    other[777_777] ^= 0x01;
    create(&s, &format!("{root}/blob"), &big).await;
    create(&t, &format!("{root}/blob"), &other).await;
    // And a value cut at 128 KiB, as some copy tools do.
    create(&s, &format!("{root}/cut"), &big[..200_000]).await;
    create(&t, &format!("{root}/cut"), &big[..128 * 1024]).await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    let data = of_kind(&r, "data");
    assert_eq!(data.len(), 2, "{r:#}");
    assert_eq!(data[0]["path"], format!("{root}/blob"));
    assert_eq!(data[0]["source"]["data_length"], 1_000_000);
    assert_eq!(data[0]["target"]["data_length"], 1_000_000);
    assert_eq!(data[1]["path"], format!("{root}/cut"));
    assert_eq!(data[1]["target"]["data_length"], 131_072);
}

#[tokio::test]
async fn inner_node_data_is_compared_too() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("inner");
    tree(
        &s,
        &root,
        &[("topic", b"{\"partitions\":3}"), ("topic/0", b"")],
    )
    .await;
    tree(&t, &root, &[("topic", b""), ("topic/0", b"")]).await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    let data = of_kind(&r, "data");
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["path"], format!("{root}/topic"));
    assert_eq!(data[0]["target"]["data_length"], 0);
}

#[tokio::test]
async fn ephemeral_turned_persistent_is_a_node_kind_difference() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("kind");
    both(&s, &t, &root, &[]).await;
    s.create(&format!("{root}/broker-1"), b"b1", &ephemeral())
        .await
        .unwrap();
    create(&t, &format!("{root}/broker-1"), b"b1").await;
    // An ephemeral on one side only is a live session, not a difference.
    s.create(&format!("{root}/broker-2"), b"b2", &ephemeral())
        .await
        .unwrap();
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1, "{r:#}");
    let kind = of_kind(&r, "node_kind");
    assert_eq!(kind.len(), 1, "{r:#}");
    assert_eq!(kind[0]["path"], format!("{root}/broker-1"));
    assert_eq!(kind[0]["source"]["node_kind"], "ephemeral");
    assert_eq!(kind[0]["target"]["node_kind"], "persistent");
    assert_eq!(r["summary"]["confirmed"], 1);
    assert_eq!(r["summary"]["source"]["ephemerals"], 2);
    assert_eq!(r["summary"]["target"]["ephemerals"], 0);

    // Compared, the lone ephemeral is missing on the target.
    let (_, r) = compare_json(&root, &["--ephemerals", "compare"]).await;
    let missing = of_kind(&r, "missing_in_target");
    assert_eq!(missing.len(), 1, "{r:#}");
    assert_eq!(missing[0]["path"], format!("{root}/broker-2"));

    // Skipped, ephemerals are invisible: the persistent copy is extra.
    let (_, r) = compare_json(&root, &["--ephemerals", "skip"]).await;
    assert_eq!(r["summary"]["source"]["ephemerals"], 0);
    let extra = of_kind(&r, "extra_in_target");
    assert_eq!(extra.len(), 1, "{r:#}");
    assert_eq!(extra[0]["path"], format!("{root}/broker-1"));
    drop(s);
}

#[tokio::test]
async fn sequential_counter_behind_on_the_target_is_found() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("seq");
    both(&s, &t, &root, &[("queue", b"")]).await;
    let items = format!("{root}/queue/item-");
    create_sequential(&s, &items, b"x", 5).await;
    // A copy tool recreates the names it sees, leaving the counter at 5 - 3.
    delete_sequential(&s, &items, 0..3).await;
    copy_sequential(&t, &items, b"x", 3..5).await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    let seqs = of_kind(&r, "sequence_counter");
    assert_eq!(seqs.len(), 1, "{r:#}");
    assert_eq!(seqs[0]["path"], format!("{root}/queue"));
    let (sc, tc) = (
        seqs[0]["source"]["cversion"].as_i64().unwrap(),
        seqs[0]["target"]["cversion"].as_i64().unwrap(),
    );
    assert_eq!((sc, tc), (8, 2), "5 creates + 3 deletes vs 2 creates");
    assert_eq!(
        r["summary"]["confirmed"], 1,
        "data and children match: {r:#}"
    );

    // Once the target's counter is ahead, it is fine.
    let bumps = format!("{root}/queue/bump-");
    create_sequential(&t, &bumps, b"", 7).await;
    delete_sequential(&t, &bumps, 2..9).await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 0, "{r:#}");
}

#[tokio::test]
async fn a_counter_behind_is_found_even_when_deletes_put_cversion_ahead() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("seq-deletes");
    both(&s, &t, &root, &[("queue", b"")]).await;
    let items = format!("{root}/queue/item-");
    // Source: 3 creates, next name item-0000000003 (cversion 3).
    create_sequential(&s, &items, b"x", 3).await;
    // Target: 2 creates and 2 deletes: cversion 4, yet its next name is
    // item-0000000002, one the source has already handed out.
    create_sequential(&t, &items, b"x", 2).await;
    delete_sequential(&t, &items, 0..2).await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    let seqs = of_kind(&r, "sequence_counter");
    assert_eq!(seqs.len(), 1, "{r:#}");
    assert_eq!(seqs[0]["target"]["cversion"], 4);
    assert_eq!(seqs[0]["source"]["cversion"], 3);
    // Said in the unit repair uses: the next sequential number.
    assert_eq!(seqs[0]["target"]["next_sequence"], 2);
    assert_eq!(seqs[0]["source"]["next_sequence"], 3);
    let text = run(&[
        "compare",
        "--source",
        &pair().source.connect_string(),
        "--target",
        &pair().target.connect_string(),
        "--path",
        &root,
        "--recheck-delay",
        "0s",
    ])
    .await;
    assert!(
        text.stdout
            .contains("next sequential number: source 3, target 2"),
        "{}",
        text.stdout
    );
}

#[tokio::test]
async fn unreadable_subtree_makes_the_comparison_incomplete_not_missing_nor_different() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("noauth");
    both(&s, &t, &root, &[]).await;
    // Only alice may read; she is "alice:secret" (id = base64(sha1)).
    let id = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=";
    let acl = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", id),
    )];
    let locked = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl));
    for c in [&s, &t] {
        c.create(&format!("{root}/locked"), b"secret data", &locked)
            .await
            .unwrap();
    }
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(
        code, 3,
        "an unverifiable node is never 'identical', nor a difference: {r:#}"
    );
    assert_eq!(r["summary"]["verdict"], "incomplete", "{r:#}");
    assert_eq!(r["summary"]["unreadable"], 1, "{r:#}");
    assert_eq!(r["summary"]["confirmed"], 0, "{r:#}");
    let unreadable = of_kind(&r, "unreadable");
    assert_eq!(unreadable.len(), 1, "{r:#}");
    assert_eq!(unreadable[0]["path"], format!("{root}/locked"));
    assert!(unreadable[0]["source"]["error"]
        .as_str()
        .unwrap()
        .contains("NoAuth"));
    assert_eq!(count(&r, "missing_in_target"), 0);
    assert_eq!(count(&r, "extra_in_target"), 0);

    // With alice's credentials from the environment it reads and matches.
    let ps = p.source.connect_string();
    let pt = p.target.connect_string();
    let run = run_env(
        &[
            "compare",
            "--source",
            &ps,
            "--target",
            &pt,
            "--path",
            &root,
            "--format",
            "json",
            "--recheck-delay",
            "0s",
        ],
        &[
            ("ZKPARITY_SOURCE_AUTH", "alice:secret"),
            ("ZKPARITY_TARGET_AUTH", "alice:secret"),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("secret\""), "no secret in output");
}

#[tokio::test]
async fn unicode_and_odd_names_are_walked_and_reported() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("names");
    let names = [
        "with space",
        "ünïcödé-名前",
        "quote\"and'apostrophe",
        "a:b=c&d?e#f",
        "back\\slash",
        "percent%20",
        "-dash",
        "*star*",
    ];
    let nodes: Vec<(&str, &[u8])> = names.iter().map(|n| (*n, b"v" as &[u8])).collect();
    both(&s, &t, &root, &nodes).await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["summary"]["source"]["nodes"], 1 + names.len() as u64);
    create(&s, &format!("{root}/ünïcödé-名前/only in source"), b"").await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    assert_eq!(
        of_kind(&r, "missing_in_target")[0]["path"],
        format!("{root}/ünïcödé-名前/only in source")
    );
    // The text report prints the name as is.
    let ps = p.source.connect_string();
    let pt = p.target.connect_string();
    let run = run(&[
        "compare",
        "--source",
        &ps,
        "--target",
        &pt,
        "--path",
        &root,
        "--recheck-delay",
        "0s",
    ])
    .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("ünïcödé-名前/only in source"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_tree_1000_deep_is_walked_without_recursion_limits() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("deep");
    let mut paths = vec![root.clone()];
    for i in 0..1000 {
        let next = format!("{}/{}", paths.last().unwrap(), i % 10);
        paths.push(next);
    }
    for c in [&s, &t] {
        zkparity_sandbox::seed::create_many(c, paths.iter().map(|p| (p.clone(), b"d".to_vec())))
            .await
            .unwrap();
    }
    c_set(&t, paths.last().unwrap(), b"changed").await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    assert_eq!(r["summary"]["source"]["nodes"], 1001);
    let data = of_kind(&r, "data");
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["path"], paths.last().unwrap().as_str());
}

async fn c_set(c: &zk::Client, path: &str, data: &[u8]) {
    c.set_data(path, data, None).await.unwrap();
}

#[tokio::test]
/// Its child list (about 3 MB) is far over the 1 MB a Java client accepts.
async fn a_parent_with_200k_children_compares() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("wide");
    let children: Vec<String> = (0..200_000)
        .map(|i| format!("{root}/child-{i:06}"))
        .collect();
    let load = |c: zk::Client, children: Vec<String>, root: String| async move {
        zkparity_sandbox::seed::ensure_path(&c, &root)
            .await
            .unwrap();
        zkparity_sandbox::seed::create_many(&c, children.into_iter().map(|p| (p, Vec::new())))
            .await
            .unwrap();
    };
    futures::join!(
        load(s.clone(), children.clone(), root.clone()),
        load(t.clone(), children, root.clone())
    );
    t.delete(&format!("{root}/child-154321"), None)
        .await
        .unwrap();
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
    assert_eq!(r["summary"]["source"]["nodes"], 200_001);
    assert_eq!(r["summary"]["target"]["nodes"], 200_000);
    let missing = of_kind(&r, "missing_in_target");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["path"], format!("{root}/child-154321"));
}

/// A compare of `root` (as `compare_in_background`) slowed to
/// `reads_per_second` in batches of 50 and re-checked 2 s later, so that what
/// the test does meanwhile lands in the middle of the walk.
fn slowed_compare(root: &str, reads_per_second: &str) -> tokio::task::JoinHandle<Run> {
    compare_in_background(
        root,
        &[
            "--recheck-delay",
            "2s",
            "--max-reads-per-second",
            reads_per_second,
            "--batch-size",
            "50",
        ],
    )
}

/// Deletes `path` on both sides at once, as a sync tool mirrors a delete.
async fn mirrored_delete(s: &zk::Client, t: &zk::Client, path: &str) {
    let (a, b) = futures::join!(s.delete(path, None), t.delete(path, None));
    a.unwrap_or_else(|e| panic!("delete {path} on the source: {e}"));
    b.unwrap_or_else(|e| panic!("delete {path} on the target: {e}"));
}

#[tokio::test]
async fn nodes_vanishing_mid_walk_are_not_errors() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("vanish");
    let children = wide_tree(&s, &t, &root, 3000, b"").await;
    // Slow the walk down so the deletions land between listing and reading.
    let walk = slowed_compare(&root, "6000");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for path in children.iter().rev().step_by(2) {
        mirrored_delete(&s, &t, path).await;
    }
    let run = walk.await.unwrap();
    assert_eq!(
        run.code, 0,
        "vanished nodes heal, not fail: {}{}",
        run.stdout, run.stderr
    );
    let r = run.json();
    assert_eq!(r["summary"]["identical"], true);
    assert!(r["summary"]["source"]["nodes"].as_u64().unwrap() <= 3001);
}

#[tokio::test]
async fn excluded_paths_are_neither_read_nor_compared() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("exclude");
    both(&s, &t, &root, &[("keep", b"1"), ("locks", b"")]).await;
    create(&s, &format!("{root}/locks/lock-1"), b"").await;
    create(&s, &format!("{root}/keep/tmp"), b"").await;
    let ex1 = format!("{root}/locks");
    let ex2 = format!("{root}/**/tmp");
    let (code, r) = compare_json(&root, &["--exclude", &ex1, "--exclude", &ex2]).await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["summary"]["source"]["nodes"], 2, "root and keep only");
    let (code, _) = compare_json(&root, &[]).await;
    assert_eq!(code, 1);
}

#[tokio::test]
async fn a_difference_that_heals_before_the_recheck_is_transient() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("heal");
    both(&s, &t, &root, &[("k", b"old")]).await;
    c_set(&s, &format!("{root}/k"), b"new").await;
    let walk = compare_in_background(&root, &["--recheck-delay", "3s"]);
    // The sync tool catches up while zkparity waits to re-check.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    c_set(&t, &format!("{root}/k"), b"new").await;
    let run = walk.await.unwrap();
    let r = run.json();
    assert_eq!(run.code, 0, "{r:#}");
    assert_eq!(r["summary"]["transient"], 1);
    assert_eq!(r["summary"]["confirmed"], 0);
    assert_eq!(r["summary"]["rechecked"], true);
}

#[tokio::test]
async fn pipelined_single_reads_give_the_same_answer_as_multi_reads() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("single");
    both(&s, &t, &root, &[("a", b"1"), ("a/b", b"2")]).await;
    create(&s, &format!("{root}/a/c"), b"3").await;
    let (_, multi) = compare_json(&root, &[]).await;
    let (code, single) = compare_json(&root, &["--no-multi-read"]).await;
    assert_eq!(code, 1);
    assert_eq!(multi["subtrees"], single["subtrees"]);
    assert_eq!(multi["differences"], single["differences"]);
}

#[tokio::test]
async fn chroots_select_the_compared_trees() {
    let p = pair();
    let s = client(&p.source).await;
    let root = unique_path("chroot");
    tree(
        &s,
        &root,
        &[("x", b""), ("x/a", b"1"), ("y", b""), ("y/a", b"1")],
    )
    .await;
    let src = format!("{}{root}/x", p.source.connect_string());
    let dst = format!("{}{root}/y", p.source.connect_string());
    let run = compare_connects(&src, &dst, &[]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(r["summary"]["source"]["nodes"], 2);
    assert_eq!(r["source"]["connect"], src);
}

#[tokio::test]
async fn a_difference_that_changes_kind_before_the_recheck_stays_confirmed() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("morph");
    both(&s, &t, &root, &[("k", b"old")]).await;
    c_set(&s, &format!("{root}/k"), b"new").await;
    let walk = compare_in_background(&root, &["--recheck-delay", "3s"]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    t.delete(&format!("{root}/k"), None).await.unwrap();
    let run = walk.await.unwrap();
    let r = run.json();
    assert_eq!(run.code, 1, "still different, now as missing: {r:#}");
    let missing = of_kind(&r, "missing_in_target");
    assert_eq!(missing.len(), 1, "{r:#}");
    assert_eq!(missing[0]["path"], format!("{root}/k"));
    assert_eq!(missing[0]["subtree_nodes"], 1);
    assert_eq!(count(&r, "data"), 0);
}

#[tokio::test]
async fn a_missing_root_copied_only_in_part_before_the_recheck_is_not_healed() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("halfcopy");
    both(&s, &t, &root, &[]).await;
    tree(&s, &format!("{root}/sub"), &[("a", b"1"), ("b", b"2")]).await;
    let walk = compare_in_background(&root, &["--recheck-delay", "3s"]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // The copy tool has created the root and one child so far.
    tree(&t, &format!("{root}/sub"), &[("a", b"1")]).await;
    let run = walk.await.unwrap();
    let r = run.json();
    assert_eq!(run.code, 1, "{r:#}");
    let missing = of_kind(&r, "missing_in_target");
    assert_eq!(missing.len(), 1, "{r:#}");
    assert_eq!(missing[0]["path"], format!("{root}/sub/b"));
    assert_eq!(r["summary"]["transient"], 1, "the root itself did heal");
}

#[tokio::test]
async fn a_subtree_digests_the_same_wherever_it_sits() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("location");
    tree(&s, &root, &[("here", b"x"), ("here/a", b"1")]).await;
    tree(
        &t,
        &root,
        &[("there", b"x"), ("deeper", b""), ("deeper/there", b"x")],
    )
    .await;
    create(&t, &format!("{root}/deeper/there/a"), b"1").await;
    let src = format!("{}{root}/here", p.source.connect_string());
    let dst = format!("{}{root}/deeper/there", p.target.connect_string());
    let by_chroot = compare_connects(&src, &dst, &["--recheck-delay", "off"]).await;
    assert_eq!(
        by_chroot.code, 0,
        "{}{}",
        by_chroot.stdout, by_chroot.stderr
    );
    let by_chroot = by_chroot.json();
    let (_, by_path) = compare_json(&format!("{root}/here"), &[]).await;
    let chroot_sum = &by_chroot["subtrees"][0]["source"]["checksum"];
    assert_eq!(chroot_sum, &by_chroot["subtrees"][0]["target"]["checksum"]);
    assert_eq!(chroot_sum, &by_path["subtrees"][0]["source"]["checksum"]);
}

#[tokio::test]
async fn a_lone_uncompared_ephemeral_does_not_mark_its_row_as_differing() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("lonely");
    both(&s, &t, &root, &[]).await;
    s.create(&format!("{root}/session"), b"", &ephemeral())
        .await
        .unwrap();
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 0, "{r:#}");
    let rows = r["subtrees"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{r:#}");
    assert!(rows.iter().all(|row| row["match"] == true), "{r:#}");
    drop(s);
}

#[tokio::test]
async fn the_reads_per_second_cap_holds() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("capped");
    let names: Vec<String> = (0..300).map(|i| format!("n{i:03}")).collect();
    let nodes: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), b"" as &[u8])).collect();
    both(&s, &t, &root, &nodes).await;
    // 301 nodes cost 903 reads per side; at 600/s with a one-second bucket
    // the last 303 must wait at least half a second.
    let started = std::time::Instant::now();
    let (code, r) = compare_json(&root, &["--max-reads-per-second", "600"]).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["summary"]["reads"]["source"], 903);
    assert_eq!(r["summary"]["reads"]["target"], 903);
    assert!(
        elapsed >= 0.5,
        "finished in {elapsed:.2}s, faster than the cap allows"
    );
}

#[tokio::test]
async fn progress_goes_to_a_terminal_stderr_only() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("progress");
    both(&s, &t, &root, &[("a", b"")]).await;
    let cmd = format!(
        "{} compare --source {} --target {} --path {root} --recheck-delay off",
        env!("CARGO_BIN_EXE_zkparity"),
        p.source.connect_string(),
        p.target.connect_string()
    );
    // `script` gives the command a terminal; its output is what the terminal saw.
    let tty = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script(1) runs");
    let seen = String::from_utf8_lossy(&tty.stdout);
    assert!(
        seen.contains("walked 1"),
        "no progress on a terminal: {seen}"
    );
    assert!(seen.contains("IDENTICAL"), "{seen}");
    let piped = run(&[
        "compare",
        "--source",
        &p.source.connect_string(),
        "--target",
        &p.target.connect_string(),
        "--path",
        &root,
        "--recheck-delay",
        "off",
    ])
    .await;
    assert_eq!(piped.code, 0);
    assert_eq!(piped.stderr, "", "nothing on a piped stderr");
}

#[tokio::test]
async fn a_node_gone_before_it_is_read_is_absent_not_an_error() {
    use zkparity::connect::EnsembleSpec;
    use zkparity::tree::{Reader, ReaderOptions, SideNode};
    let p = pair();
    let s = client(&p.source).await;
    let root = unique_path("gone");
    tree(&s, &root, &[("here", b"1")]).await;
    let spec = EnsembleSpec::plain("source", &p.source.connect_string()).unwrap();
    let here = format!("{root}/here");
    let gone = format!("{root}/listed-then-deleted");
    for multi_read in [true, false] {
        let reader = Reader::open(
            &spec,
            &ReaderOptions {
                multi_read,
                ..ReaderOptions::default()
            },
        )
        .await
        .unwrap();
        let nodes = reader
            .read_nodes(&[&here, &gone], &["here", "listed-then-deleted"])
            .await
            .expect("a vanished node does not fail the batch");
        assert!(matches!(nodes[0], SideNode::Present(_)), "{:?}", nodes[0]);
        assert!(matches!(nodes[1], SideNode::Absent), "{:?}", nodes[1]);
        reader.close().await;
    }
}

#[tokio::test]
async fn repeated_compares_with_acl_caches_skip_unchanged_acls_but_see_changes() {
    use zkparity::aclcache::AclCache;
    use zkparity::compare::CompareOptions;
    use zkparity::connect::EnsembleSpec;
    use zkparity::progress::Progress;
    let (p, s, t) = pair_clients().await;
    let root = unique_path("cached");
    let names: Vec<String> = (0..50).map(|i| format!("n{i:02}")).collect();
    let nodes: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), b"x" as &[u8])).collect();
    both(&s, &t, &root, &nodes).await;

    let source = EnsembleSpec::plain("source", &p.source.connect_string()).unwrap();
    let target = EnsembleSpec::plain("target", &p.target.connect_string()).unwrap();
    let mut options = CompareOptions::defaults(&root).unwrap();
    options.reader.sessions = 2;
    options.recheck_delay = None;
    let caches = [AclCache::new(), AclCache::new()];
    options.acl_caches = [Some(caches[0].clone()), Some(caches[1].clone())];
    let round = |options| {
        let (source, target) = (source.clone(), target.clone());
        async move {
            let mut quiet = Progress::new(false);
            zkparity::compare::compare(&source, &target, &options, &mut quiet)
                .await
                .unwrap()
        }
    };
    let first = round(options.clone()).await;
    assert!(first.summary.identical);
    assert_eq!(
        first.summary.reads["source"],
        3 * 51,
        "first round reads every ACL"
    );
    let second = round(options.clone()).await;
    assert_eq!(second.summary.reads["source"], 2 * 51, "no ACL read again");
    assert_eq!(
        first.subtrees, second.subtrees,
        "same answer from the cache"
    );

    // An ACL change moves aversion: read again, and found.
    let read_only = [zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone())];
    t.set_acl(&format!("{root}/n07"), &read_only, None)
        .await
        .unwrap();
    // Deleted and created again with another ACL: aversion is 0 again, but
    // czxid is new.
    t.delete(&format!("{root}/n08"), None).await.unwrap();
    t.create(
        &format!("{root}/n08"),
        b"x",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&read_only)),
    )
    .await
    .unwrap();
    let third = round(options.clone()).await;
    let acl: Vec<&str> = third
        .differences
        .iter()
        .filter(|d| d.kind == zkparity::report::DiffKind::Acl)
        .map(|d| d.path.as_str())
        .collect();
    assert_eq!(acl, vec![format!("{root}/n07"), format!("{root}/n08")]);
    assert_eq!(
        third.summary.reads["target"],
        2 * 51 + 2,
        "only the two changed ACLs"
    );
}

#[tokio::test]
async fn nodes_created_and_deleted_on_both_sides_during_a_walk_are_no_drift() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("churn");
    let children = wide_tree(&s, &t, &root, 2000, b"").await;
    // Slow the walk so the churn lands in the middle of it.
    let walk = slowed_compare(&root, "3000");
    // A sync tool that mirrors writes: each new node lands on both sides.
    for i in 0..300 {
        let new = format!("{root}/new{i:04}");
        let (a, b) = futures::join!(s.create(&new, b"n", &open()), t.create(&new, b"n", &open()));
        a.unwrap();
        b.unwrap();
        if i % 3 == 0 {
            mirrored_delete(&s, &t, &children[i * 5]).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let run = walk.await.unwrap();
    assert_eq!(
        run.code, 0,
        "mirrored churn is not drift: {}{}",
        run.stdout, run.stderr
    );
    let r = run.json();
    assert_eq!(r["summary"]["identical"], true);
    let nodes = r["summary"]["source"]["nodes"].as_u64().unwrap();
    assert!((1901..=2301).contains(&nodes), "{nodes} nodes walked");
}
