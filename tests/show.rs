//! `zkparity show` against real servers: one node on both sides, and how
//! its value differs, read-only.

mod common;

use common::*;

async fn show(path: &str, extra: &[&str]) -> Run {
    let p = pair();
    let (s, t) = (p.source.connect_string(), p.target.connect_string());
    let mut args = vec!["show", "--source", &s, "--target", &t, path];
    args.extend_from_slice(extra);
    run(&args).await
}

#[tokio::test]
async fn a_json_value_is_shown_by_the_paths_that_differ_and_nothing_is_written() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("show-json");
    both(&s, &t, &root, &[]).await;
    let node = format!("{root}/state.json");
    create(&s, &node, br#"{"leader":1,"isr":[1,2,3],"epoch":7}"#).await;
    create(&t, &node, br#"{"epoch":7,"leader":2,"isr":[1,2]}"#).await;
    let stats = || async {
        let a = s.check_stat(&node).await.expect("stat").expect("there");
        let b = t.check_stat(&node).await.expect("stat").expect("there");
        (
            a.mzxid, a.version, a.aversion, b.mzxid, b.version, b.aversion,
        )
    };
    let before = stats().await;
    let r = show(&node, &[]).await;
    assert_eq!(r.code, 1, "{}", ctx(&r));
    for line in [
        "the values differ (JSON, 2 change(s)):",
        "$.leader: 1 → 2",
        "$.isr[2]: 3 on the source, absent on the target",
    ] {
        assert!(r.stdout.contains(line), "{line}: {}", r.stdout);
    }
    assert!(r.stdout.contains("≠ data bytes"), "{}", r.stdout);
    assert_eq!(stats().await, before, "read-only");

    let r = show(&node, &["--format", "json"]).await;
    let j = r.json();
    assert_eq!(j["same"], false);
    assert_eq!(j["data_diff"]["as"], "json");
    assert_eq!(j["source"]["next_sequence"], 0);
}

#[tokio::test]
async fn the_same_node_text_and_absent_sides_are_each_said_plainly() {
    let (_, s, t) = pair_clients().await;
    let root = unique_path("show-text");
    both(
        &s,
        &t,
        &root,
        &[("same", b"v1"), ("conf", b"a=1\nb=2\nc=3\n")],
    )
    .await;
    let r = show(&format!("{root}/same"), &[]).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert!(r.stdout.contains("the values are the same"), "{}", r.stdout);

    t.set_data(&format!("{root}/conf"), b"a=1\nb=20\nc=3\n", None)
        .await
        .expect("change");
    let r = show(&format!("{root}/conf"), &[]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("-b=2") && r.stdout.contains("+b=20"),
        "{}",
        r.stdout
    );

    create(&s, &format!("{root}/only-here"), b"x").await;
    let r = show(&format!("{root}/only-here"), &[]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("exists") && r.stdout.contains("absent"),
        "{}",
        r.stdout
    );
}
