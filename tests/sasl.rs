//! Secured estates: ZooKeeper servers that authenticate clients with SASL,
//! DIGEST-MD5 (a server JAAS file with DigestLoginModule) and Kerberos (a
//! real MIT KDC on loopback, the server logging in with Krb5LoginModule and
//! its keytab), with nodes only a `sasl:` identity may read. zkparity reads
//! them with the operator's client JAAS file.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use zkparity_sandbox::kdc::Kdc;
use zkparity_sandbox::{Guarded, ServerOptions, ZkServer};
use zookeeper_client as zk;

const BOB_PASSWORD: &str = "bob-s4sl-s3cret";
const SASL_PROVIDER: &str =
    "-Dzookeeper.authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

struct Estate {
    kdc: Kdc,
    /// Two DIGEST-MD5 servers (user bob), to compare with each other.
    digest_a: ZkServer,
    digest_b: ZkServer,
    /// A Kerberos server, `zookeeper/localhost`.
    kerberos: ZkServer,
    dir: PathBuf,
    /// The client principal, with realm, and its keytab.
    principal: String,
    keytab: PathBuf,
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn estate() -> &'static Estate {
    static ESTATE: OnceLock<Estate> = OnceLock::new();
    ESTATE.get_or_init(|| {
        let kdc = Kdc::start().expect("a KDC starts");
        let dir = kdc.dir().join("zk");
        std::fs::create_dir_all(&dir).unwrap();

        let digest_jaas = dir.join("digest-server.jaas");
        write(
            &digest_jaas,
            &format!(
                "Server {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
                 user_bob=\"{BOB_PASSWORD}\";\n}};\n"
            ),
            0o600,
        );
        let digest_opts = ServerOptions {
            jvm_flags: vec![
                format!(
                    "-Djava.security.auth.login.config={}",
                    digest_jaas.display()
                ),
                SASL_PROVIDER.into(),
            ],
            ..ServerOptions::default()
        };

        let server_keytab = dir.join("zookeeper.keytab");
        let server_principal = kdc
            .principal_with_keytab("zookeeper/localhost", &server_keytab)
            .expect("server principal");
        let keytab = dir.join("zkclient.keytab");
        let principal = kdc
            .principal_with_keytab("zkclient", &keytab)
            .expect("client principal");
        let krb_jaas = dir.join("kerberos-server.jaas");
        write(
            &krb_jaas,
            &format!(
                "Server {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
                 useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  \
                 principal=\"{server_principal}\";\n}};\n",
                server_keytab.display()
            ),
            0o600,
        );
        let krb_opts = ServerOptions {
            jvm_flags: vec![
                format!("-Djava.security.auth.login.config={}", krb_jaas.display()),
                format!("-Djava.security.krb5.conf={}", kdc.krb5_conf().display()),
                SASL_PROVIDER.into(),
            ],
            ..ServerOptions::default()
        };
        let a = {
            let o = digest_opts.clone();
            std::thread::spawn(move || ZkServer::start_standalone(&o))
        };
        let k = std::thread::spawn(move || ZkServer::start_standalone(&krb_opts));
        let digest_b = ZkServer::start_standalone(&digest_opts).expect("digest server b");
        Estate {
            digest_a: a.join().unwrap().expect("digest server a"),
            kerberos: k.join().unwrap().expect("kerberos server"),
            digest_b,
            kdc,
            dir,
            principal,
            keytab,
        }
    })
}

impl Estate {
    fn krb5_conf(&self) -> String {
        self.kdc.krb5_conf().display().to_string()
    }

    /// The operator's JAAS file for bob (mode 600: it holds a password).
    fn digest_jaas(&self) -> String {
        let path = self.dir.join("bob.jaas");
        if !path.exists() {
            write(
                &path,
                &format!(
                    "// as given to the Java clients\nClient {{\n  \
                     org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
                     username=\"bob\"\n  password=\"{BOB_PASSWORD}\";\n}};\n"
                ),
                0o600,
            );
        }
        path.display().to_string()
    }

    fn kerberos_jaas_for(&self, name: &str, principal: &str, keytab: &Path) -> String {
        let path = self.dir.join(name);
        write(
            &path,
            &format!(
                "Client {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
                 useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  \
                 principal=\"{}\";\n}};\n",
                keytab.display(),
                principal
            ),
            0o644,
        );
        path.display().to_string()
    }

    fn kerberos_jaas(&self) -> String {
        self.kerberos_jaas_for("zkclient.jaas", &self.principal, &self.keytab)
    }
}

/// ACL entries: everything for each listed `sasl:` id, nothing for anyone
/// else.
fn sasl_only(ids: &[&str]) -> Vec<zk::Acl> {
    ids.iter()
        .map(|id| zk::Acl::new(zk::Permission::ALL, zk::AuthId::new("sasl", id)))
        .collect()
}

/// `root` (open) with children `a`, `b` (data) and `deep/c`, every one but
/// the root readable only by `ids`.
async fn guarded_tree(c: &zk::Client, root: &str, ids: &[&str]) {
    tree(
        c,
        root,
        &[
            ("a", b"alpha"),
            ("b", b"beta"),
            ("deep", b""),
            ("deep/c", b"gamma"),
        ],
    )
    .await;
    let acl = sasl_only(ids);
    for p in ["deep/c", "deep", "a", "b"] {
        c.set_acl(&format!("{root}/{p}"), &acl, None).await.unwrap();
    }
}

/// A session logged in as bob (DIGEST-MD5), to change guarded nodes.
async fn as_bob(server: &ZkServer) -> zk::Client {
    zk::Client::connector()
        .with_sasl(zk::SaslOptions::digest_md5("bob", BOB_PASSWORD))
        .connect(&server.connect_string())
        .await
        .expect("bob logs in")
}

fn kerberos_env(e: &Estate) -> Vec<(&'static str, String)> {
    vec![("KRB5_CONFIG", e.krb5_conf())]
}

async fn run_with(args: &[&str], env: &[(&'static str, String)]) -> Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_env(args, &env).await
}

#[tokio::test]
async fn digest_md5_from_a_jaas_file_reads_what_only_the_sasl_user_may_read() {
    let e = estate();
    let root = unique_path("sasl-digest");
    for server in [&e.digest_a, &e.digest_b] {
        guarded_tree(&client(server).await, &root, &["bob"]).await;
    }
    let (a, b) = (e.digest_a.connect_string(), e.digest_b.connect_string());
    let jaas = e.digest_jaas();

    let blind = compare_connects(&a, &b, &["--path", &root]).await;
    assert_eq!(
        blind.code,
        3,
        "without a login the nodes are unreadable: {}",
        ctx(&blind)
    );
    assert_eq!(
        blind.json()["summary"]["verdict"],
        "incomplete",
        "{}",
        ctx(&blind)
    );

    let seen = compare_connects(
        &a,
        &b,
        &[
            "--path",
            &root,
            "--source-jaas",
            &jaas,
            "--target-jaas",
            &jaas,
        ],
    )
    .await;
    assert_eq!(seen.code, 0, "{}", ctx(&seen));
    let report = seen.json();
    assert_eq!(report["summary"]["source"]["nodes"], 5, "{report}");

    // A difference under the guard is found, its ACL ids compared as any.
    as_bob(&e.digest_b)
        .await
        .set_data(&format!("{root}/deep/c"), b"changed", None)
        .await
        .unwrap();
    let found = compare_connects(
        &a,
        &b,
        &[
            "--path",
            &root,
            "--source-jaas",
            &jaas,
            "--target-jaas",
            &jaas,
        ],
    )
    .await;
    assert_eq!(found.code, 1, "{}", ctx(&found));
    let report = found.json();
    let data = of_kind(&report, "data");
    assert_eq!(data.len(), 1, "{}", found.stdout);
    assert_eq!(data[0]["path"], format!("{root}/deep/c"));
}

#[tokio::test]
async fn kerberos_with_a_keytab_reads_what_only_the_principal_may_read() {
    let e = estate();
    let root = unique_path("sasl-krb");
    guarded_tree(&client(&e.kerberos).await, &root, &[&e.principal]).await;
    let k = e.kerberos.connect_string();
    let jaas = e.kerberos_jaas();
    let env = kerberos_env(e);
    let out = e.dir.join(format!("{}.zkps", root.trim_start_matches('/')));
    let out_s = out.display().to_string();

    let snap = run_with(
        &[
            "snapshot",
            "--server",
            &k,
            "--path",
            &root,
            "--jaas",
            &jaas,
            "--sasl-host",
            "localhost",
            "--out",
            &out_s,
        ],
        &env,
    )
    .await;
    assert_eq!(snap.code, 0, "{}", ctx(&snap));
    // The snapshot holds what the live server holds.
    let same = run_with(
        &[
            "compare",
            "--source",
            &out_s,
            "--target",
            &k,
            "--target-jaas",
            &jaas,
            "--sasl-host",
            "localhost",
            "--path",
            &root,
        ],
        &env,
    )
    .await;
    assert_eq!(same.code, 0, "{}", ctx(&same));
    let a = e.digest_a.connect_string();
    let shown = run_with(
        &[
            "show",
            "--source",
            &k,
            "--source-jaas",
            &jaas,
            "--sasl-host",
            "localhost",
            "--target",
            &a,
            &format!("{root}/deep/c"),
        ],
        &env,
    )
    .await;
    assert_eq!(shown.code, 1, "present on one side only: {}", ctx(&shown));
    assert!(
        shown.stdout.contains(&format!("sasl:{}", e.principal)),
        "the ACL names the principal: {}",
        ctx(&shown)
    );

    let check = run_with(
        &[
            "check",
            "znode",
            "--source",
            &k,
            "--source-jaas",
            &jaas,
            "--sasl-host",
            "localhost",
            "--path",
            &format!("{root}/a"),
            "--data-regex",
            "^alpha$",
        ],
        &env,
    )
    .await;
    assert_eq!(check.code, 0, "{}", ctx(&check));
}

#[tokio::test]
async fn a_stale_keytab_and_an_unreachable_kdc_are_refused_naming_the_cause() {
    let e = estate();
    let k = e.kerberos.connect_string();
    // A principal whose key changed after this keytab was taken.
    let stale = e.dir.join("rotated-stale.keytab");
    let rotated = e.kdc.principal_with_keytab("zkrotated", &stale).unwrap();
    e.kdc
        .principal_with_keytab("zkrotated", &e.dir.join("rotated-fresh.keytab"))
        .unwrap();
    let jaas = e.kerberos_jaas_for("stale.jaas", &rotated, &stale);
    let env = kerberos_env(e);
    let r = run_with(
        &[
            "compare",
            "--source",
            &k,
            "--target",
            &e.digest_a.connect_string(),
            "--source-jaas",
            &jaas,
            "--sasl-host",
            "localhost",
        ],
        &env,
    )
    .await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr.contains(&format!(
            "Kerberos login as {rotated} failed: the KDC refused the key"
        )),
        "{}",
        ctx(&r)
    );

    let dead = e
        .kdc
        .krb5_conf_with_kdc(&format!("127.0.0.1:{}", dead_port()))
        .unwrap();
    let good = e.kerberos_jaas();
    let r = run_with(
        &[
            "check",
            "znode",
            "--source",
            &k,
            "--source-jaas",
            &good,
            "--sasl-host",
            "localhost",
            "--path",
            "/",
        ],
        &[("KRB5_CONFIG", dead.display().to_string())],
    )
    .await;
    assert_eq!(r.code, 3, "a check is UNKNOWN: {}", ctx(&r));
    assert!(
        r.stdout.starts_with("ZKPARITY ZNODE UNKNOWN"),
        "{}",
        ctx(&r)
    );
    assert!(r.stdout.contains("the KDC is unreachable"), "{}", ctx(&r));
}

#[tokio::test]
async fn a_digest_md5_source_and_a_kerberos_target_compare_as_any_pair() {
    let e = estate();
    let root = unique_path("sasl-mixed");
    // Both identities may read both sides, so the ACLs match too.
    let ids = ["bob", e.principal.as_str()];
    guarded_tree(&client(&e.digest_a).await, &root, &ids).await;
    guarded_tree(&client(&e.kerberos).await, &root, &ids).await;
    let (a, k) = (e.digest_a.connect_string(), e.kerberos.connect_string());
    let (djaas, kjaas) = (e.digest_jaas(), e.kerberos_jaas());
    let env = kerberos_env(e);
    let args = |extra: &'static [&'static str]| {
        let mut v: Vec<String> = [
            "compare",
            "--source",
            &a,
            "--target",
            &k,
            "--path",
            &root,
            "--source-jaas",
            &djaas,
            "--target-jaas",
            &kjaas,
            "--sasl-host",
            "localhost",
            "--recheck-delay",
            "0s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let a1 = args(&["--format", "json"]);
    let r = run_with(&a1.iter().map(String::as_str).collect::<Vec<_>>(), &env).await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    assert_eq!(r.json()["summary"]["target"]["nodes"], 5);

    as_bob(&e.digest_a)
        .await
        .set_data(&format!("{root}/a"), b"other", None)
        .await
        .unwrap();
    let r = run_with(&a1.iter().map(String::as_str).collect::<Vec<_>>(), &env).await;
    assert_eq!(r.code, 1, "{}", ctx(&r));
    assert_eq!(of_kind(&r.json(), "data").len(), 1, "{}", r.stdout);
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_the_password_is_shown_nowhere() {
    let e = estate();
    let root = unique_path("sasl-secret");
    for server in [&e.digest_a, &e.digest_b] {
        guarded_tree(&client(server).await, &root, &["bob"]).await;
    }
    let (a, b) = (e.digest_a.connect_string(), e.digest_b.connect_string());
    let good = e.digest_jaas();
    let wrong_password = "not-bobs-password-9z";
    let wrong = e.dir.join("wrong.jaas");
    write(
        &wrong,
        &format!(
            "Client {{ org.apache.zookeeper.server.auth.DigestLoginModule required \
             username=\"bob\" password=\"{wrong_password}\"; }};"
        ),
        0o600,
    );
    let wrong = wrong.display().to_string();
    let mut outputs = Vec::new();
    let r = run(&[
        "compare",
        "--source",
        &a,
        "--target",
        &b,
        "--path",
        &root,
        "--source-jaas",
        &wrong,
        "--target-jaas",
        &good,
    ])
    .await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr.contains("cannot connect to the source ensemble")
            && r.stderr.contains("SASL DIGEST-MD5 as bob"),
        "{}",
        ctx(&r)
    );
    outputs.push(r);
    for format in ["text", "json"] {
        outputs.push(
            run(&[
                "compare",
                "--source",
                &a,
                "--target",
                &b,
                "--path",
                &root,
                "--source-jaas",
                &good,
                "--target-jaas",
                &good,
                "--format",
                format,
            ])
            .await,
        );
    }
    outputs.push(
        run(&[
            "check",
            "parity",
            "--source",
            &a,
            "--target",
            &b,
            "--path",
            &root,
            "--source-jaas",
            &good,
            "--target-jaas",
            &good,
        ])
        .await,
    );
    assert_eq!(
        outputs.last().unwrap().code,
        0,
        "{}",
        ctx(outputs.last().unwrap())
    );
    for r in &outputs {
        for secret in [BOB_PASSWORD, wrong_password] {
            assert!(
                !r.stdout.contains(secret) && !r.stderr.contains(secret),
                "{}",
                ctx(r)
            );
        }
    }

    // The agent: a round over the guarded pair, its log and state file clean.
    let state_dir = tempfile::tempdir().unwrap();
    let config = state_dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[[pair]]\nname = \"sasl\"\nsource = {a:?}\ntarget = {b:?}\n\
             path = {root:?}\nsource_jaas = {good:?}\ntarget_jaas = {good:?}\ninterval = \"1s\"\n\
             recheck_delay = \"0s\"\n",
            state_dir.path().display().to_string()
        ),
    )
    .unwrap();
    let log = state_dir.path().join("agent.log");
    let mut agent =
        Guarded::spawn(agent_command(&config).stderr(std::fs::File::create(&log).unwrap()))
            .expect("agent starts");
    let state = state_dir.path().join("sasl.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        if let Ok(text) = std::fs::read_to_string(&state) {
            if text.contains("\"identical\": true") || text.contains("\"identical\":true") {
                break text;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no identical round: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    agent.stop(std::time::Duration::from_secs(10));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(BOB_PASSWORD), "{text}");
    assert!(!log.contains(BOB_PASSWORD), "{log}");
}

#[tokio::test]
async fn jaas_mistakes_are_named_and_exit_2() {
    let e = estate();
    let a = e.digest_a.connect_string();
    let b = e.digest_b.connect_string();
    let good = e.digest_jaas();

    let r = run(&[
        "compare",
        "--source",
        &a,
        "--target",
        &b,
        "--source-jaas",
        &good,
        "--jaas-section",
        "KafkaClient",
    ])
    .await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(
        r.stderr
            .contains("no section KafkaClient (the file has Client)"),
        "{}",
        ctx(&r)
    );

    let open = e.dir.join("readable.jaas");
    write(
        &open,
        &format!(
            "Client {{ org.apache.zookeeper.server.auth.DigestLoginModule required \
             username=\"bob\" password=\"{BOB_PASSWORD}\"; }};"
        ),
        0o644,
    );
    let r = run(&[
        "compare",
        "--source",
        &a,
        "--target",
        &b,
        "--source-jaas",
        open.to_str().unwrap(),
    ])
    .await;
    assert_eq!(r.code, 2, "{}", ctx(&r));
    assert!(r.stderr.contains("run chmod 600 on it"), "{}", ctx(&r));

    let no_keytab = e.dir.join("missing-keytab.jaas");
    write(
        &no_keytab,
        "Client { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true \
         keyTab=\"/nonexistent/zk.keytab\" principal=\"x\"; };",
        0o644,
    );
    let r = run(&[
        "check",
        "parity",
        "--source",
        &a,
        "--target",
        &b,
        "--source-jaas",
        no_keytab.to_str().unwrap(),
    ])
    .await;
    assert_eq!(r.code, 3, "{}", ctx(&r));
    assert!(
        r.stdout.contains("keytab /nonexistent/zk.keytab"),
        "{}",
        ctx(&r)
    );
}

#[tokio::test]
async fn repair_writes_guarded_nodes_as_the_sasl_user() {
    let e = estate();
    let root = unique_path("sasl-repair");
    guarded_tree(&client(&e.digest_a).await, &root, &["bob"]).await;
    tree(&client(&e.digest_b).await, &root, &[]).await;
    let (a, b) = (e.digest_a.connect_string(), e.digest_b.connect_string());
    let jaas = e.digest_jaas();
    let r = run(&[
        "repair",
        "--source",
        &a,
        "--target",
        &b,
        "--path",
        &root,
        "--source-jaas",
        &jaas,
        "--target-jaas",
        &jaas,
        "--apply",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let after = compare_connects(
        &a,
        &b,
        &[
            "--path",
            &root,
            "--source-jaas",
            &jaas,
            "--target-jaas",
            &jaas,
        ],
    )
    .await;
    assert_eq!(after.code, 0, "{}", ctx(&after));
    // The copies carry the source's ACL: only bob reads them.
    let blind = client(&e.digest_b).await;
    assert!(matches!(
        blind.get_data(&format!("{root}/deep/c")).await,
        Err(zk::Error::NoAuth)
    ));
}

/// `useTicketCache=true`: the ticket an operator got with `kinit` (here
/// from the keytab, into a cache file of the test's) is what zkparity uses.
#[tokio::test]
async fn kerberos_with_a_ticket_cache_from_kinit_reads_the_principals_nodes() {
    let e = estate();
    let root = unique_path("sasl-ccache");
    guarded_tree(&client(&e.kerberos).await, &root, &[&e.principal]).await;
    let cache = e.dir.join(format!("ccache-{}", std::process::id()));
    let kinit = std::process::Command::new("kinit")
        .arg("-k")
        .arg("-t")
        .arg(&e.keytab)
        .arg(&e.principal)
        .env("KRB5_CONFIG", e.krb5_conf())
        .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
        .output()
        .expect("kinit (Debian's krb5-user) runs");
    assert!(kinit.status.success(), "{kinit:?}");
    let jaas = e.dir.join("ccache.jaas");
    write(
        &jaas,
        &format!(
            "Client {{ com.sun.security.auth.module.Krb5LoginModule required \
             useTicketCache=true ticketCache=\"{}\" principal=\"{}\"; }};",
            cache.display(),
            e.principal
        ),
        0o644,
    );
    let r = run_with(
        &[
            "check",
            "znode",
            "--source",
            &e.kerberos.connect_string(),
            "--source-jaas",
            jaas.to_str().unwrap(),
            "--sasl-host",
            "localhost",
            "--path",
            &format!("{root}/deep/c"),
            "--data-regex",
            "^gamma$",
        ],
        &kerberos_env(e),
    )
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
}
