//! TLS to a real ZooKeeper 3.8 `secureClientPort`, with a test CA and keys
//! made here: verification of the server's certificate and host name is on,
//! client certificates work for servers that demand them, and private keys
//! readable by others are refused.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use zkparity_sandbox::{free_ports, ServerOptions, ZkServer};

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA `name`.pem/.key.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

/// A key and certificate `name` signed by `ca`, with the given SAN and use.
fn make_cert(dir: &Path, ca: &str, name: &str, san: &str, usage: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.raw.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!(
            "subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n\
             extendedKeyUsage={usage}\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    // PKCS#8, which both ZooKeeper's PEM key store and rustls read.
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &format!("{name}.raw.key"),
            "-out",
            &format!("{name}.key"),
        ],
    );
    std::fs::set_permissions(
        dir.join(format!("{name}.key")),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let keystore = [
        std::fs::read_to_string(dir.join(format!("{name}.key"))).unwrap(),
        std::fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap(),
    ]
    .concat();
    std::fs::write(dir.join(format!("{name}-keystore.pem")), keystore).unwrap();
}

fn pki_dir() -> PathBuf {
    std::env::temp_dir().join(format!("zkparity-pki-{}", std::process::id()))
}

/// The test binary never drops its statics; the keys go when it exits.
extern "C" fn remove_pki() {
    let _ = std::fs::remove_dir_all(pki_dir());
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = pki_dir();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // SAFETY: registers a plain function with no captured state.
        unsafe { libc::atexit(remove_pki) };
        make_ca(&dir, "ca");
        make_ca(&dir, "rogue-ca");
        // The server's certificate names 127.0.0.1 only, not localhost.
        make_cert(&dir, "ca", "server", "IP:127.0.0.1", "serverAuth");
        make_cert(&dir, "ca", "client", "DNS:zkparity-client", "clientAuth");
        Pki { dir }
    })
}

/// A server with a TLS port; `(server, secure port)`.
fn tls_server(client_auth: &str) -> (ZkServer, u16) {
    let pki = pki();
    let port = free_ports(1).unwrap()[0];
    let options = ServerOptions {
        extra_config: vec![
            ("secureClientPort".into(), port.to_string()),
            ("secureClientPortAddress".into(), "127.0.0.1".into()),
        ],
        jvm_flags: vec![
            "-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory"
                .into(),
            format!(
                "-Dzookeeper.ssl.keyStore.location={}",
                pki.path("server-keystore.pem")
            ),
            "-Dzookeeper.ssl.keyStore.type=PEM".into(),
            format!("-Dzookeeper.ssl.trustStore.location={}", pki.path("ca.pem")),
            "-Dzookeeper.ssl.trustStore.type=PEM".into(),
            format!("-Dzookeeper.ssl.clientAuth={client_auth}"),
        ],
        ..ServerOptions::default()
    };
    (
        ZkServer::start_standalone(&options).expect("TLS server starts"),
        port,
    )
}

fn servers() -> &'static [(ZkServer, u16); 2] {
    static SERVERS: OnceLock<[(ZkServer, u16); 2]> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let need = std::thread::spawn(|| tls_server("need"));
        let none = tls_server("none");
        [none, need.join().unwrap()]
    })
}

/// The same small tree on the plain source and under `root` on the TLS server.
async fn seed(root: &str) {
    let p = pair();
    let s = client(&p.source).await;
    let t = connect(&servers()[0].0.connect_string()).await;
    let u = connect(&servers()[1].0.connect_string()).await;
    for c in [&s, &t, &u] {
        tree(c, root, &[("a", b"1"), ("a/b", b"secret")]).await;
    }
}

async fn compare_over_tls(root: &str, target: &str, tls: &[&str]) -> Run {
    let source = pair().source.connect_string();
    let mut args = vec![
        "compare",
        "--source",
        &source,
        "--target",
        target,
        "--path",
        root,
        "--format",
        "json",
        "--recheck-delay",
        "0s",
        "--connect-timeout",
        "5s",
    ];
    args.extend_from_slice(tls);
    run(&args).await
}

#[tokio::test]
async fn a_tls_target_verified_against_its_ca_compares() {
    let root = unique_path("tls-ok");
    seed(&root).await;
    let target = format!("127.0.0.1:{}", servers()[0].1);
    let ca = pki().path("ca.pem");
    let r = compare_over_tls(&root, &target, &["--target-tls-ca", &ca]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["summary"]["target"]["nodes"], 3);
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() {
    let root = unique_path("tls-rogue");
    seed(&root).await;
    let target = format!("127.0.0.1:{}", servers()[0].1);
    let rogue = pki().path("rogue-ca.pem");
    let r = compare_over_tls(&root, &target, &["--target-tls-ca", &rogue]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("cannot connect to the target ensemble"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
}

#[tokio::test]
async fn a_certificate_not_naming_the_host_is_refused() {
    let root = unique_path("tls-host");
    seed(&root).await;
    // The certificate names 127.0.0.1; "localhost" reaches the same server.
    let target = format!("localhost:{}", servers()[0].1);
    let ca = pki().path("ca.pem");
    let r = compare_over_tls(&root, &target, &["--target-tls-ca", &ca]).await;
    assert_eq!(
        r.code, 2,
        "host name verification is on: {}{}",
        r.stdout, r.stderr
    );
}

#[tokio::test]
async fn plain_connections_to_a_tls_port_fail_cleanly() {
    let root = unique_path("tls-plain");
    seed(&root).await;
    let target = format!("127.0.0.1:{}", servers()[0].1);
    let r = compare_over_tls(&root, &target, &[]).await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("panicked"));
}

#[tokio::test]
async fn a_server_demanding_client_certificates_gets_one() {
    let root = unique_path("tls-mutual");
    seed(&root).await;
    let target = format!("127.0.0.1:{}", servers()[1].1);
    let (ca, cert, key) = (
        pki().path("ca.pem"),
        pki().path("client.pem"),
        pki().path("client.key"),
    );
    let without = compare_over_tls(&root, &target, &["--target-tls-ca", &ca]).await;
    assert_eq!(
        without.code, 2,
        "no client certificate: {}{}",
        without.stdout, without.stderr
    );
    let with = compare_over_tls(
        &root,
        &target,
        &[
            "--target-tls-ca",
            &ca,
            "--target-tls-cert",
            &cert,
            "--target-tls-key",
            &key,
        ],
    )
    .await;
    assert_eq!(with.code, 0, "{}{}", with.stdout, with.stderr);
}

#[tokio::test]
async fn a_private_key_readable_by_others_is_refused_without_connecting() {
    let dir = pki().dir.join("loose");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("client.key");
    std::fs::copy(pki().dir.join("client.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key = key.display().to_string();
    let (ca, cert) = (pki().path("ca.pem"), pki().path("client.pem"));
    let r = compare_over_tls(
        "/",
        "127.0.0.1:1",
        &[
            "--target-tls-ca",
            &ca,
            "--target-tls-cert",
            &cert,
            "--target-tls-key",
            &key,
        ],
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
    assert!(!r.stderr.contains("PRIVATE KEY"), "{}", r.stderr);
}

/// A server whose AdminServer answers HTTPS only, with the test CA's
/// certificate for 127.0.0.1, and the default whitelist (`srvr`).
fn https_admin_server() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let pki = pki();
        let options = ServerOptions {
            admin_server: true,
            four_letter_words: "srvr".into(),
            jvm_flags: vec![
                "-Dzookeeper.admin.forceHttps=true".into(),
                format!(
                    "-Dzookeeper.ssl.quorum.keyStore.location={}",
                    pki.path("server-keystore.pem")
                ),
                "-Dzookeeper.ssl.quorum.keyStore.type=PEM".into(),
                format!(
                    "-Dzookeeper.ssl.quorum.trustStore.location={}",
                    pki.path("ca.pem")
                ),
                "-Dzookeeper.ssl.quorum.trustStore.type=PEM".into(),
            ],
            ..ServerOptions::default()
        };
        ZkServer::start_standalone(&options).expect("a server with an HTTPS AdminServer")
    })
}

#[tokio::test]
async fn an_https_admin_server_is_read_when_verified_against_its_ca() {
    let pki = pki();
    let server = https_admin_server();
    let port = server.admin_port().expect("admin port").to_string();
    let probe = |ca: String| {
        let (connect, port) = (server.connect_string(), port.clone());
        async move {
            let r = run(&[
                "probe",
                "--source",
                &connect,
                "--source-admin-port",
                &port,
                "--source-admin-tls-ca",
                &ca,
                "--format",
                "json",
            ])
            .await;
            let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
            v["source"]["servers"][0].clone()
        }
    };
    let s = probe(pki.path("ca.pem")).await;
    assert!(
        s["admin_words"].to_string().contains("mntr"),
        "read over HTTPS: {s:#}"
    );
    assert!(s["ephemerals"].is_u64(), "{s:#}");

    // Another CA: nothing is read over an unverified connection, and the
    // refusal stands with the reason.
    let s = probe(pki.path("rogue-ca.pem")).await;
    assert_eq!(s["admin_words"], serde_json::json!([]), "{s:#}");
    assert_eq!(s["words"]["mntr"]["status"], "refused", "{s:#}");
    assert!(
        s["admin_error"]
            .as_str()
            .is_some_and(|e| e.contains("certificate")),
        "{s:#}"
    );
}

#[tokio::test]
async fn check_znode_reads_a_tls_port_verified_against_its_ca() {
    let root = unique_path("tls-znode");
    seed(&root).await;
    let target = format!("127.0.0.1:{}", servers()[0].1);
    let path = format!("{root}/a/b");
    let r = run(&[
        "check",
        "znode",
        "--source",
        &target,
        "--source-tls-ca",
        &pki().path("ca.pem"),
        "--path",
        &path,
        "--data-regex",
        "secret",
    ])
    .await;
    assert_eq!(r.code, 0, "{}", ctx(&r));
    let r = run(&[
        "check",
        "znode",
        "--source",
        &target,
        "--source-tls-ca",
        &pki().path("rogue-ca.pem"),
        "--path",
        &path,
        "-t",
        "5s",
    ])
    .await;
    assert_eq!(r.code, 3, "another CA: UNKNOWN, {}", ctx(&r));
}
