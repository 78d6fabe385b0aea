//! Verdicts an operator can trust, against real servers: no false alarm
//! (counters of elections and locks, names that merely end in digits,
//! redacted ACL ids), no false all-clear (one ensemble compared with
//! itself), unreadable nodes as their own INCOMPLETE verdict, and the
//! commands that write (repair, snapshot) refusing what would lose or
//! misplace data. Load bounds are refused before anything is opened.

mod common;

use std::sync::OnceLock;

use common::*;
use zkparity_sandbox::{Ensemble, ServerOptions};
use zookeeper_client as zk;

/// alice's password, and her digest id: base64(sha1("alice:secret")).
const ALICE: &str = "alice:secret";
const ALICE_ID: &str = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=";

fn connects() -> (String, String) {
    let p = pair();
    (p.source.connect_string(), p.target.connect_string())
}

fn acl_opts(acl: &[zk::Acl]) -> zk::CreateOptions<'_> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::new(acl))
}

/// A 3-node ensemble, started once for this binary (only the same-ensemble
/// test uses it).
fn ensemble() -> &'static Ensemble {
    static ENSEMBLE: OnceLock<Ensemble> = OnceLock::new();
    ENSEMBLE.get_or_init(|| Ensemble::start(3, &ServerOptions::default()).expect("ensemble"))
}

/// Creates and deletes `n` ephemeral sequential children under `dir`, as
/// lock holders and election candidates coming and going do: the parent's
/// counter moves, nothing persistent stays.
async fn churn_ephemerals(c: &zk::Client, dir: &str, prefix: &str, n: usize) {
    let mode = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    for _ in 0..n {
        let (_, seq) = c
            .create(&format!("{dir}/{prefix}"), b"", &mode)
            .await
            .unwrap();
        c.delete(&format!("{dir}/{prefix}{seq}"), None)
            .await
            .unwrap();
    }
}

// ---------------------------------------------------------------------------
// Sequence counters

#[tokio::test]
async fn elections_locks_and_names_ending_in_digits_give_no_counter_alarm_but_queues_do() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("seq-estate");
    let dirs = ["rs", "election", "locks", "blocks", "queue"];
    for c in [&s, &t] {
        create(c, &root, b"").await;
        for d in dirs {
            create(c, &format!("{root}/{d}"), b"").await;
        }
    }
    // HBase: region servers named host,port,startcode (ephemeral), restarting.
    let eph = ephemeral();
    for code in 1_700_000_000_000u64..1_700_000_000_004 {
        let name = format!("{root}/rs/rs1.example.com,16020,{code}");
        s.create(&name, b"", &eph).await.unwrap();
        if code < 1_700_000_000_003 {
            s.delete(&name, None).await.unwrap();
        }
    }
    t.create(
        &format!("{root}/rs/rs1.example.com,16020,1700000000003"),
        b"",
        &eph,
    )
    .await
    .unwrap();
    // Solr's overseer election and a Curator lock: ephemeral sequential,
    // one holder left on each side.
    churn_ephemerals(&s, &format!("{root}/election"), "n_", 6).await;
    churn_ephemerals(&s, &format!("{root}/locks"), "_c_9f1e-lock-", 6).await;
    let seq_eph = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    for c in [&s, &t] {
        c.create(&format!("{root}/election/n_"), b"", &seq_eph)
            .await
            .unwrap();
        c.create(&format!("{root}/locks/_c_9f1e-lock-"), b"", &seq_eph)
            .await
            .unwrap();
    }
    // ClickHouse's deduplication blocks: persistent, names ending in hashes;
    // the source deleted old ones, the target never saw them.
    for (i, c) in [&s, &t].into_iter().enumerate() {
        let old = format!("{root}/blocks/202301_4093947399023469120_11111111111111111111");
        if i == 0 {
            create(c, &old, b"").await;
            c.delete(&old, None).await.unwrap();
        }
        create(
            c,
            &format!("{root}/blocks/202301_5093947399023469120_12345678901234567890"),
            b"",
        )
        .await;
    }
    // A queue whose persistent items survive: a counter behind is at risk.
    create_sequential(&s, &format!("{root}/queue/qn-"), b"job", 5).await;
    delete_sequential(&s, &format!("{root}/queue/qn-"), 0..3).await;
    // What a copy tool leaves: the surviving items, the counter behind.
    copy_sequential(&t, &format!("{root}/queue/qn-"), b"job", 3..5).await;

    let (code, r) = compare_json(&root, &["--limit", "0"]).await;
    assert_eq!(code, 1, "{r:#}");
    let kinds: Vec<(String, String)> = r["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().into(),
                d["path"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![("sequence_counter".to_string(), format!("{root}/queue"))],
        "only the queue's counter is at risk: {r:#}"
    );
    let why = r["differences"][0]["reason"].as_str().unwrap();
    assert!(why.contains("persistent sequential children"), "{why}");
    assert!(why.contains("qn-000000000"), "{why}");
}

// ---------------------------------------------------------------------------
// One ensemble on both sides

#[tokio::test]
async fn one_ensemble_compared_with_itself_at_the_same_path_is_refused() {
    let (src, dst) = connects();
    let root = unique_path("same");
    let s = connect(&src).await;
    tree(&s, &root, &[("a", b"1")]).await;
    let port = src.rsplit(':').next().unwrap();
    let cases = [
        (src.clone(), src.clone()),
        // Another name of the same server.
        (src.clone(), format!("localhost:{port}")),
        // A source string that lists a server of the target.
        (format!("{dst},{src}"), dst.clone()),
        // The same server under both chroots, the same path below.
        (format!("{src}{root}"), format!("{src}{root}")),
    ];
    for (a, b) in cases {
        let r = compare_connects(&a, &b, &["--path", "/"]).await;
        assert_eq!(r.code, 2, "{a} vs {b}: {}", ctx(&r));
        assert!(
            r.stderr.contains("one ensemble at the same path"),
            "{}",
            ctx(&r)
        );
        assert!(r.stdout.is_empty(), "no report: {}", ctx(&r));
    }
    // check parity says UNKNOWN with the same reason, never OK.
    let r = run(&[
        "check", "parity", "--source", &src, "--target", &src, "--path", &root,
    ])
    .await;
    assert_eq!(r.code, 3, "{}", ctx(&r));
    assert!(r.stdout.contains("one ensemble"), "{}", ctx(&r));
}

#[tokio::test]
async fn two_members_of_one_quorum_are_told_one_ensemble_by_its_membership() {
    let e = ensemble();
    let (one, two) = (e.servers[0].connect_string(), e.servers[1].connect_string());
    let c = connect(&e.connect_string()).await;
    let root = unique_path("members");
    tree(&c, &root, &[("a", b"1"), ("b", b"2")]).await;
    settled(e, &c).await;
    let r = compare_connects(&one, &two, &["--path", &root]).await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr.contains("lists the target's server"),
        "{}",
        ctx(&r)
    );
}

#[tokio::test]
async fn two_paths_of_one_ensemble_are_compared_and_said_to_be_one() {
    let (src, _) = connects();
    let s = connect(&src).await;
    let root = unique_path("two-paths");
    create(&s, &root, b"").await;
    for side in ["old", "new"] {
        tree(&s, &format!("{root}/{side}"), &[("a", b"1"), ("b", b"2")]).await;
    }
    let r = compare_connects(
        &format!("{src}{root}/old"),
        &format!("{src}{root}/new"),
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let j = r.json();
    let note = j["one_ensemble"].as_str().expect("one_ensemble is said");
    assert!(note.contains(&format!("source {root}/old")), "{note}");
    let text = compare_connects(
        &format!("{src}{root}/old"),
        &format!("{src}{root}/new"),
        &["--format", "text"],
    )
    .await;
    assert!(
        text.stdout.contains("are on one ensemble"),
        "{}",
        ctx(&text)
    );
}

#[tokio::test]
async fn two_different_ensembles_are_not_taken_for_one() {
    let (src, dst) = connects();
    let (s, t) = (connect(&src).await, connect(&dst).await);
    let root = unique_path("distinct");
    both(&s, &t, &root, &[("a", b"1")]).await;
    let r = compare_connects(&src, &dst, &["--path", &root]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert!(r.json().get("one_ensemble").is_none(), "{}", r.stdout);
}

// ---------------------------------------------------------------------------
// Unreadable nodes

/// `root` on both sides with `locked` readable by alice only.
async fn locked_on_both(s: &zk::Client, t: &zk::Client, root: &str) {
    both(s, t, root, &[("open", b"1")]).await;
    let only_alice = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", ALICE_ID),
    )];
    for c in [s, t] {
        c.create(&format!("{root}/locked"), b"secret", &acl_opts(&only_alice))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn identical_unreadable_nodes_make_the_verdict_incomplete_not_different() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("incomplete");
    locked_on_both(&s, &t, &root).await;
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 3, "{r:#}");
    assert_eq!(r["summary"]["verdict"], "incomplete");
    assert_eq!(r["summary"]["identical"], false);
    assert_eq!(r["summary"]["confirmed"], 0);
    assert_eq!(r["summary"]["unreadable"], 1);

    // A difference elsewhere still says DIFFERENT, exit 1.
    t.set_data(&format!("{root}/open"), b"2", None)
        .await
        .unwrap();
    let (code, r) = compare_json(&root, &[]).await;
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["summary"]["verdict"], "different");
    assert_eq!(r["summary"]["confirmed"], 1);
    assert_eq!(r["summary"]["unreadable"], 1);
    t.set_data(&format!("{root}/open"), b"1", None)
        .await
        .unwrap();

    // check parity: UNKNOWN by default, as configured otherwise.
    let (src, dst) = connects();
    let check = |extra: &'static [&'static str]| {
        let (src, dst, root) = (src.clone(), dst.clone(), root.clone());
        async move {
            let mut args = vec![
                "check",
                "parity",
                "--source",
                &src,
                "--target",
                &dst,
                "--path",
                &root,
                "--recheck-delay",
                "0s",
            ];
            args.extend_from_slice(extra);
            run(&args).await
        }
    };
    let r = check(&[]).await;
    assert_eq!(r.code, 3, "{}", ctx(&r));
    assert!(
        r.stdout.starts_with("ZKPARITY PARITY UNKNOWN - "),
        "{}",
        ctx(&r)
    );
    assert!(
        r.stdout.contains("INCOMPLETE: 1 unreadable path"),
        "{}",
        ctx(&r)
    );
    assert!(r.stdout.contains("unreadable=1"), "perfdata: {}", r.stdout);
    let r = check(&["--unreadable", "ok"]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let r = check(&["--unreadable", "critical"]).await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    let r = check(&["--unreadable", "sometimes"]).await;
    assert_eq!(r.code, 3, "{}", ctx(&r));
    assert!(r.stdout.contains("--unreadable"), "{}", ctx(&r));

    // With alice's credentials on both sides it is complete and identical.
    let r = run_env(
        &[
            "compare",
            "--source",
            &src,
            "--target",
            &dst,
            "--path",
            &root,
            "--recheck-delay",
            "0s",
        ],
        &[
            ("ZKPARITY_SOURCE_AUTH", ALICE),
            ("ZKPARITY_TARGET_AUTH", ALICE),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
}

// ---------------------------------------------------------------------------
// Redacted ACL ids

#[tokio::test]
async fn ids_redacted_for_lack_of_admin_are_not_an_acl_difference() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("redacted");
    both(&s, &t, &root, &[]).await;
    // Anyone may read; alice may do everything. Read without credentials,
    // the server shows her id as alice:x.
    let shared = [
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", ALICE_ID)),
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
    ];
    for c in [&s, &t] {
        c.create(&format!("{root}/cfg"), b"v", &acl_opts(&shared))
            .await
            .unwrap();
    }
    // On this node the target gives alice less: a real difference.
    let less = [
        zk::Acl::new(zk::Permission::READ, zk::AuthId::new("digest", ALICE_ID)),
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
    ];
    s.create(&format!("{root}/narrowed"), b"v", &acl_opts(&shared))
        .await
        .unwrap();
    t.create(&format!("{root}/narrowed"), b"v", &acl_opts(&less))
        .await
        .unwrap();

    let (src, dst) = connects();
    let r = run_env(
        &[
            "compare",
            "--source",
            &src,
            "--target",
            &dst,
            "--path",
            &root,
            "--format",
            "json",
            "--recheck-delay",
            "0s",
            "--limit",
            "0",
        ],
        &[("ZKPARITY_SOURCE_AUTH", ALICE)],
    )
    .await;
    assert_eq!(r.code, 1, "{}", ctx(&r));
    let j = r.json();
    let acl = of_kind(&j, "acl");
    assert_eq!(acl.len(), 1, "only the narrowed node: {j:#}");
    assert_eq!(acl[0]["path"], format!("{root}/narrowed"));
    assert_eq!(j["summary"]["acl_unverified"], 1, "{j:#}");
    assert_eq!(j["acl_unverified"][0]["path"], format!("{root}/cfg"));
    let entries = j["acl_unverified"][0]["entries"].to_string();
    assert!(entries.contains("alice:x"), "{entries}");
    assert!(!r.stdout.contains(ALICE_ID), "ids stay hidden");

    // Without ADMIN there the test cannot set the ACL: made anew instead.
    t.delete(&format!("{root}/narrowed"), None).await.unwrap();
    t.create(&format!("{root}/narrowed"), b"v", &acl_opts(&shared))
        .await
        .unwrap();
    let r = run_env(
        &[
            "compare",
            "--source",
            &src,
            "--target",
            &dst,
            "--path",
            &root,
            "--recheck-delay",
            "0s",
        ],
        &[("ZKPARITY_SOURCE_AUTH", ALICE)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert!(
        r.stdout.contains("ACLS NOT FULLY VERIFIED (2 nodes)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Credentials with ADMIN"), "{}", r.stdout);
}

// ---------------------------------------------------------------------------
// Commands that write

#[tokio::test]
async fn repair_to_a_mistyped_chroot_is_refused_and_writes_nothing() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("chroot");
    tree(&s, &root, &[("brokers", b""), ("brokers/1", b"{}")]).await;
    create(&t, &root, b"").await;
    let (src, dst) = connects();
    let typo = format!("{dst}{root}-typo");
    let r = run(&[
        "repair",
        "--source",
        &format!("{src}{root}"),
        "--target",
        &typo,
        "--apply",
        "--recheck-delay",
        "0s",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr
            .contains(&format!("the chroot {root}-typo does not exist")),
        "{}",
        ctx(&r)
    );
    assert!(r.stderr.contains("--create-path"), "{}", ctx(&r));
    assert!(t
        .check_stat(&format!("{root}-typo"))
        .await
        .unwrap()
        .is_none());
    // The right chroot is repaired as before.
    let r = run(&[
        "repair",
        "--source",
        &format!("{src}{root}"),
        "--target",
        &format!("{dst}{root}"),
        "--apply",
        "--recheck-delay",
        "0s",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert!(t
        .check_stat(&format!("{root}/brokers/1"))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn snapshot_refuses_to_overwrite_or_to_keep_an_incomplete_tree() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("snap-guard");
    locked_on_both(&s, &t, &root).await;
    let (src, _) = connects();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup.zkps");
    let out_s = out.to_str().unwrap();

    // Without alice's credentials: nothing written, exit 3, paths named.
    let r = run(&[
        "snapshot", "--server", &src, "--path", &root, "--out", out_s,
    ])
    .await;
    assert_eq!(r.code, 3, "{}", ctx(&r));
    assert!(r.stderr.contains(&format!("{root}/locked")), "{}", ctx(&r));
    assert!(r.stderr.contains("--allow-incomplete"), "{}", ctx(&r));
    assert!(!out.exists(), "nothing written");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary left"
    );

    // Allowed: written, and the file says what it lacks.
    let r = run(&[
        "snapshot",
        "--server",
        &src,
        "--path",
        &root,
        "--out",
        out_s,
        "--allow-incomplete",
        "--format",
        "json",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert_eq!(r.json()["unreadable"], 1);
    assert!(r.stderr.contains("incomplete"), "{}", ctx(&r));
    let kept = std::fs::read(&out).unwrap();
    assert!(String::from_utf8_lossy(&kept).contains("\"unreadable\":"));

    // An existing file is not replaced unasked.
    let r = run_env(
        &[
            "snapshot", "--server", &src, "--path", &root, "--out", out_s,
        ],
        &[("ZKPARITY_SOURCE_AUTH", ALICE)],
    )
    .await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(r.stderr.contains("--force"), "{}", ctx(&r));
    assert_eq!(std::fs::read(&out).unwrap(), kept, "the file is untouched");
    let r = run_env(
        &[
            "snapshot", "--server", &src, "--path", &root, "--out", out_s, "--force",
        ],
        &[("ZKPARITY_SOURCE_AUTH", ALICE)],
    )
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert_ne!(std::fs::read(&out).unwrap(), kept, "replaced with --force");
}

// ---------------------------------------------------------------------------
// Load bounds

#[tokio::test]
async fn loads_that_would_hurt_production_are_refused_before_connecting() {
    // A dead port: the refusal comes before any connection is tried.
    let dead = format!("127.0.0.1:{}", dead_port());
    for (flag, value, max) in [
        ("--sessions", "1000", "16"),
        ("--in-flight", "10000", "64"),
        ("--batch-size", "50000", "1000"),
    ] {
        let r = run(&["compare", "--source", &dead, "--target", &dead, flag, value]).await;
        assert_eq!(r.code, 2, "{}", ctx(&r));
        assert!(
            r.stderr
                .contains(&format!("{flag} {value}: must be between 1 and {max}")),
            "{}",
            ctx(&r)
        );
        assert!(!r.stderr.contains("cannot connect"), "{}", ctx(&r));
    }
    let r = run(&[
        "repair",
        "--source",
        &dead,
        "--target",
        &dead,
        "--writes-in-flight",
        "500",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(r.stderr.contains("--writes-in-flight 500"), "{}", ctx(&r));

    // The agent's configuration is held to the same bounds.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n\n[[pair]]\nname = \"p\"\nsource = {dead:?}\ntarget = {dead:?}\nsessions = 1000\n",
            dir.path().to_str().unwrap()
        ),
    )
    .unwrap();
    let r = run(&[
        "agent",
        "--config",
        config.to_str().unwrap(),
        "--check-config",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(r.stderr.contains("must be between 1 and 16"), "{}", ctx(&r));
}

#[tokio::test]
async fn repair_never_copies_acl_ids_the_source_hid() {
    let (_, s, _) = pair_clients().await;
    let root = unique_path("hidden-acl");
    create(&s, &root, b"").await;
    let owned = [
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", ALICE_ID)),
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
    ];
    s.create(&format!("{root}/cfg"), b"v", &acl_opts(&owned))
        .await
        .unwrap();
    create(&s, &format!("{root}/plain"), b"p").await;
    let (src, dst) = connects();
    let args = [
        "repair",
        "--source",
        &src,
        "--target",
        &dst,
        "--path",
        &root,
        "--apply",
        "--create-path",
        "--format",
        "json",
        "--recheck-delay",
        "0s",
        "--limit",
        "0",
    ];
    // Without ADMIN on cfg the source shows alice:x: cfg is left alone.
    let r = run(&args).await;
    assert_eq!(r.code, 1, "{}", ctx(&r));
    let j = r.json();
    assert_eq!(j["plan"]["skipped"]["acl_hidden"], 1, "{j:#}");
    let t = connect(&dst).await;
    assert!(t
        .check_stat(&format!("{root}/plain"))
        .await
        .unwrap()
        .is_some());
    assert!(
        t.check_stat(&format!("{root}/cfg"))
            .await
            .unwrap()
            .is_none(),
        "no node with an ACL nobody can use"
    );
    // With alice's credentials the real ids are copied.
    let r = run_env(&args, &[("ZKPARITY_SOURCE_AUTH", ALICE)]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    // Read as alice: only ADMIN shows the ids.
    let alice = zk::Client::connector()
        .with_auth("digest", ALICE.as_bytes())
        .connect(&dst)
        .await
        .unwrap();
    let (acl, _) = alice.get_acl(&format!("{root}/cfg")).await.unwrap();
    assert!(acl.iter().any(|a| a.id() == ALICE_ID), "{acl:?}");
}
