//! What every estate test does the same way: applications holding their
//! ephemerals on sessions of their own and living their normal life while a
//! repair copies the tree, the copy itself, and the verdicts of a compare.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use zookeeper_client as zk;

/// A new session on the source, as an application process opens one.
pub async fn session() -> zk::Client {
    client(&pair().source).await
}

/// A persistent node, its missing parents created empty first (as
/// `creatingParentsIfNeeded` does); an existing node is left as it is.
pub async fn put(c: &zk::Client, path: &str, data: &[u8]) {
    put_with(c, path, data, &open()).await;
}

pub async fn put_with(c: &zk::Client, path: &str, data: &[u8], options: &zk::CreateOptions<'_>) {
    parents(c, path).await;
    match c.create(path, data, options).await {
        Ok(_) | Err(zk::Error::NodeExists) => {}
        Err(e) => panic!("create {path}: {e}"),
    }
}

async fn parents(c: &zk::Client, path: &str) {
    let mut at = 0;
    while let Some(i) = path[at + 1..].find('/') {
        at += i + 1;
        match c.create(&path[..at], b"", &open()).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => panic!("create {}: {e}", &path[..at]),
        }
    }
}

/// An ephemeral node of the session `c`.
pub async fn put_ephemeral(c: &zk::Client, path: &str, data: &[u8]) {
    parents(c, path).await;
    c.create(path, data, &ephemeral())
        .await
        .unwrap_or_else(|e| panic!("create ephemeral {path}: {e}"));
}

/// A sequential node `{prefix}NNNNNNNNNN` of `mode`; its path.
pub async fn put_sequential(
    c: &zk::Client,
    prefix: &str,
    data: &[u8],
    mode: zk::CreateMode,
) -> String {
    parents(c, prefix).await;
    let (_, n) = c
        .create(prefix, data, &mode.with_acls(zk::Acls::anyone_all()))
        .await
        .unwrap_or_else(|e| panic!("create {prefix}: {e}"));
    format!("{prefix}{n}")
}

pub async fn remove(c: &zk::Client, path: &str) {
    c.delete(path, None)
        .await
        .unwrap_or_else(|e| panic!("delete {path}: {e}"));
}

/// The digest identity `kafka:secret` (base64 of its SHA-1), as
/// `DigestAuthenticationProvider.generateDigest` writes it.
pub const DIGEST_ID: &str = "kafka:cHI0nVZW0ogIqS6kVPfrpKU0GoU=";
/// The credentials behind [`DIGEST_ID`], as the operator's copy gets them.
pub const IDENTITY: &str = "kafka:secret";

/// The ACL secured applications put on their nodes: anyone may read, only
/// the application's own identity may change them.
pub fn secured_acl() -> Vec<zk::Acl> {
    vec![
        zk::Acl::new(zk::Permission::READ, zk::AuthId::anyone()),
        zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("digest", DIGEST_ID)),
    ]
}

/// One round of an application's normal life on the source: sessions
/// restarting, locks taken and released, elections run again. It touches
/// only ephemerals and what they hang from, never persistent data, so the
/// copy stays a faithful one whatever the round.
pub trait App: Send + Sync + 'static {
    fn churn(&self, round: usize) -> impl Future<Output = ()> + Send;
}

/// An application churning in the background until stopped.
pub struct Churning<A: App> {
    app: Arc<A>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

/// Starts `app` churning: at most `MAX_ROUNDS` rounds, a few milliseconds apart.
pub fn churning<A: App>(app: A) -> Churning<A> {
    const MAX_ROUNDS: usize = 40;
    let app = Arc::new(app);
    let stop = Arc::new(AtomicBool::new(false));
    let (a, s) = (app.clone(), stop.clone());
    let task = tokio::spawn(async move {
        let mut rounds = 0;
        while rounds < MAX_ROUNDS && !s.load(Ordering::Relaxed) {
            a.churn(rounds).await;
            rounds += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rounds
    });
    Churning { app, stop, task }
}

impl<A: App> Churning<A> {
    /// Stops the churn; the application (still holding its sessions) and
    /// the rounds it went through.
    pub async fn stop(self) -> (Arc<A>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let rounds = self.task.await.expect("churn task");
        (self.app, rounds)
    }
}

/// `zkparity repair --apply` of `root` from the source to the target while
/// `app` churns, then `after` more rounds of churn once the copy is done:
/// what a migration looks like, and what gave false alarms.
pub async fn copy_while_churning<A: App>(app: A, root: &str, after: usize) -> Arc<A> {
    let churn = churning(app);
    let p = pair();
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());
    // As the application's own identity on both sides: without ADMIN the
    // source hides its digest ids, and repair refuses to copy those.
    let auth = [
        ("ZKPARITY_SOURCE_AUTH", IDENTITY),
        ("ZKPARITY_TARGET_AUTH", IDENTITY),
    ];
    let r = run_env(
        &[
            "repair",
            "--source",
            &src,
            "--target",
            &dst,
            "--path",
            root,
            "--apply",
            // The target starts empty: the estate's root is created.
            "--create-path",
            "--format",
            "json",
            "--recheck-delay",
            "0s",
            "--limit",
            "0",
        ],
        &auth,
    )
    .await;
    let (app, rounds) = churn.stop().await;
    // Its own verification may already see the churn; only writes matter.
    assert!(r.code == 0 || r.code == 1, "{}", ctx(&r));
    let j = r.json();
    assert_eq!(
        (
            j["apply"]["conflicts"].as_u64(),
            j["apply"]["failed"].as_u64()
        ),
        (Some(0), Some(0)),
        "{j:#}"
    );
    assert!(
        j["apply"]["applied"].as_u64().unwrap_or(0) > 0,
        "the copy wrote nothing: {j:#}"
    );
    assert!(rounds > 0, "the application never churned during the copy");
    for round in 0..after {
        app.churn(rounds + round).await;
    }
    app
}

/// The confirmed differences of a report, as `kind path` lines.
pub fn differences(r: &serde_json::Value) -> BTreeSet<String> {
    r["differences"]
        .as_array()
        .expect("differences array")
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["kind"].as_str().expect("kind"),
                d["path"].as_str().expect("path")
            )
        })
        .collect()
}

/// A compare of `root` finds the two sides identical.
pub async fn assert_identical(estate: &str, root: &str) {
    let (code, r) = compare_json(root, &[]).await;
    let found = differences(&r);
    assert!(
        code == 0 && r["summary"]["confirmed"] == 0 && found.is_empty(),
        "{estate}: exit {code}, {} confirmed, by kind {}; false alarms:\n{}",
        r["summary"]["confirmed"],
        r["summary"]["differences"],
        found.iter().cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(
        r["summary"]["source"]["ephemerals"].as_u64().unwrap_or(0) > 0,
        "{estate}: the source holds its ephemerals: {r:#}"
    );
}

/// A compare of `root` finds exactly `expected` (`kind path` lines), and
/// nothing else.
pub async fn assert_exactly(estate: &str, root: &str, expected: &[String]) {
    let (code, r) = compare_json(root, &[]).await;
    let found = differences(&r);
    let expected: BTreeSet<String> = expected.iter().cloned().collect();
    assert_eq!(
        found, expected,
        "{estate}: exit {code}, by kind {}",
        r["summary"]["differences"]
    );
    assert_eq!(code, 1, "{estate}: {r:#}");
    assert_eq!(
        r["summary"]["confirmed"].as_u64(),
        Some(expected.len() as u64),
        "{estate}: {r:#}"
    );
}

/// The target's persistent-sequential parent deleted and created again with
/// its children, as a copy tool writes it: same names, data and ACLs, but
/// its counter only as high as its surviving children.
pub async fn recreate_with_counter_behind(t: &zk::Client, parent: &str) {
    let (data, _) = t.get_data(parent).await.expect("parent data");
    let (acl, _) = t.get_acl(parent).await.expect("parent acl");
    let mut names = t.list_children(parent).await.expect("children");
    names.sort();
    let mut children = Vec::new();
    for name in &names {
        let path = format!("{parent}/{name}");
        let (d, _) = t.get_data(&path).await.expect("child data");
        let (a, _) = t.get_acl(&path).await.expect("child acl");
        remove(t, &path).await;
        children.push((path, d, a));
    }
    remove(t, parent).await;
    t.create(
        parent,
        &data,
        &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl)),
    )
    .await
    .unwrap_or_else(|e| panic!("create {parent}: {e}"));
    for (path, d, a) in children {
        t.create(
            &path,
            &d,
            &zk::CreateMode::Persistent.with_acls(zk::Acls::new(&a)),
        )
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e}"));
    }
}

/// The target's copy of a value cut at 128 KiB, as tools that read into a
/// fixed buffer leave it.
pub async fn cut_value(t: &zk::Client, path: &str) {
    let (data, _) = t.get_data(path).await.expect("value");
    assert!(
        data.len() > 128 * 1024,
        "{path} holds only {} bytes",
        data.len()
    );
    t.set_data(path, &data[..128 * 1024], None)
        .await
        .expect("cut value");
}

/// The target's leaf written again open to anyone, as a copy tool that
/// drops ACLs writes it. Deleted and created rather than `setACL`: the
/// target's copy may name an identity no one can authenticate as.
pub async fn loosen_acl(t: &zk::Client, path: &str) {
    let (data, _) = t.get_data(path).await.expect("value");
    remove(t, path).await;
    create(t, path, &data).await;
}

/// A persistent node on the target where the source holds an ephemeral:
/// what a copy tool that ignores ephemeralOwner writes.
pub async fn persist_ephemeral(s: &zk::Client, t: &zk::Client, path: &str) {
    let (data, stat) = s.get_data(path).await.expect("source ephemeral");
    assert_ne!(stat.ephemeral_owner, 0, "{path} is ephemeral on the source");
    put(t, path, &data).await;
}

/// A leaf lost on the target.
pub async fn lose(t: &zk::Client, path: &str) {
    remove(t, path).await;
}

pub fn diff(kind: &str, path: impl AsRef<str>) -> String {
    format!("{kind} {}", path.as_ref())
}

// ---------------------------------------------------------------------------
// The agent watching an estate

use std::time::Instant;

use zkparity::agent::state::{read_state, state_path, PairState, PairStatus};
use zkparity_sandbox::Guarded;

/// Liveness bound for the agent's rounds; generous, not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(90);

/// `zkparity agent` watching one estate's pair as an operator runs it
/// during a migration: short rounds, drift confirmed after two of them.
pub struct Watch {
    estate: String,
    dir: tempfile::TempDir,
    child: Guarded,
}

pub fn watch(estate: &str, root: &str) -> Watch {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = pair();
    let config = format!(
        "state_dir = {:?}\n[[pair]]\nname = {estate:?}\nsource = {:?}\ntarget = {:?}\n\
         path = {root:?}\ninterval = \"1s\"\njitter = \"100ms\"\nrecheck_delay = \"200ms\"\n\
         confirm_rounds = 2\nconnect_timeout = \"3s\"\nsession_timeout = \"4s\"\n",
        dir.path(),
        p.source.connect_string(),
        p.target.connect_string(),
    );
    let config_path = dir.path().join("agent.toml");
    std::fs::write(&config_path, config).expect("write agent config");
    let log = std::fs::File::create(dir.path().join("agent.log")).expect("agent log");
    let child = Guarded::spawn(
        agent_command(&config_path)
            .env_remove("ZKPARITY_LOG")
            .stderr(log),
    )
    .expect("start the agent");
    Watch {
        estate: estate.to_string(),
        dir,
        child,
    }
}

/// An application between two rounds of its life.
struct Still;

impl App for Still {
    async fn churn(&self, _round: usize) {}
}

impl Watch {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    fn state(&self) -> Option<PairState> {
        read_state(&state_path(self.dir.path(), &self.estate)).ok()
    }

    /// Polls the state file until `pred` holds, while `app` keeps churning
    /// (its rounds numbered from `*round` on).
    async fn until<A: App>(
        &mut self,
        app: &A,
        round: &mut usize,
        what: &str,
        mut pred: impl FnMut(&PairState) -> bool,
    ) -> PairState {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(s) = self.state() {
                if pred(&s) {
                    return s;
                }
            }
            assert!(
                matches!(self.child.try_wait(), Ok(None)),
                "{}: the agent exited while waiting for {what}:\n{}",
                self.estate,
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "{}: waited too long for {what}; last state: {:#?}\nlog:\n{}",
                self.estate,
                self.state(),
                self.log()
            );
            app.churn(*round).await;
            *round += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Over `rounds` successful agent rounds while `app` churns, nothing is
    /// ever confirmed: the pair stays `ok` and the last round is identical.
    pub async fn stays_identical<A: App>(&mut self, app: &A, round: &mut usize, rounds: u64) {
        let estate = self.estate.clone();
        let mut first = None;
        let last = self
            .until(app, round, "identical rounds", |s| {
                assert_eq!(
                    (s.confirmed_total, s.status),
                    (0, PairStatus::Ok),
                    "{estate}: the agent confirmed false alarms: {s:#?}"
                );
                let done = s.summary.as_ref().map_or(0, |r| r.round);
                let start = *first.get_or_insert(done);
                done >= start + rounds
            })
            .await;
        let summary = last.summary.expect("a successful round");
        assert!(summary.identical, "{estate}: the last round: {summary:#?}");
    }

    /// The agent confirms exactly `expected` (`kind path` lines) as drift,
    /// and nothing else. The application holds still: a churn could undo a
    /// fault injected on an ephemeral.
    pub async fn confirms_exactly(&mut self, expected: &[String]) {
        let expected: BTreeSet<String> = expected.iter().cloned().collect();
        let estate = self.estate.clone();
        let confirmed = |s: &PairState| -> BTreeSet<String> {
            s.confirmed
                .iter()
                .map(|t| format!("{} {}", t.kind, t.path))
                .collect()
        };
        let s = self
            .until(&Still, &mut 0, "the faults confirmed", |s| {
                let now = confirmed(s);
                assert!(
                    now.is_subset(&expected),
                    "{estate}: confirmed beyond the faults: {:?}",
                    now.difference(&expected).collect::<Vec<_>>()
                );
                now == expected
            })
            .await;
        assert_eq!(s.status, PairStatus::Drift, "{estate}: {s:#?}");
        assert_eq!(s.confirmed_total, expected.len() as u64, "{estate}: {s:#?}");
    }
}
