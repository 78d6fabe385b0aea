//! The Debian package: built by `scripts/package`, installed on this machine
//! with dpkg, and used as an operator would: the installed plugins run by a
//! real Nagios 4 as the nagios user, with the installed command definitions
//! and credentials in files only that user can read; the installed samples
//! accepted by the real tools; the installed unit verified by systemd.
//!
//! Installing needs root; the suite runs as root (scripts/install-deps
//! installs with apt too).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::nagios::*;
use common::*;
use zkparity_sandbox::{guarded_command, Guarded};
use zookeeper_client as zk;

const PLUGINS: [&str; 5] = ["parity", "znode", "health", "counts", "ephemerals"];
const PASSWORD: &str = "package-s3cr3t-value";

/// The package, built from this checkout and installed afresh (purged
/// first, so the first-install steps run), once per test binary.
fn installed() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "installing the package needs root"
        );
        let build = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/package"))
            .output()
            .expect("scripts/package runs");
        assert!(
            build.status.success(),
            "scripts/package failed:\n{}",
            String::from_utf8_lossy(&build.stderr)
        );
        let deb = PathBuf::from(String::from_utf8_lossy(&build.stdout).trim());
        let purge = Command::new("dpkg")
            .args(["--purge", "zkparity"])
            .output()
            .unwrap();
        assert!(purge.status.success(), "{purge:?}");
        let install = Command::new("dpkg").arg("-i").arg(&deb).output().unwrap();
        assert!(
            install.status.success(),
            "dpkg -i {}:\n{}{}",
            deb.display(),
            String::from_utf8_lossy(&install.stdout),
            String::from_utf8_lossy(&install.stderr)
        );
        deb
    })
}

fn output(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("command runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text += &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn uid_of(user: &str) -> u32 {
    let (ok, text) = output(Command::new("id").args(["-u", user]));
    assert!(ok, "no user {user}: {text}");
    text.trim().parse().unwrap()
}

fn chown(path: &Path, user: &str) {
    let (ok, text) = output(
        Command::new("chown")
            .arg(format!("{user}:{user}"))
            .arg(path),
    );
    assert!(ok, "{text}");
}

#[test]
fn the_package_installs_the_command_the_plugins_and_the_agents_user() {
    let deb = installed();
    let (ok, files) = output(Command::new("dpkg").args(["-L", "zkparity"]));
    assert!(ok, "{files}");
    for path in [
        "/usr/bin/zkparity",
        "/etc/nagios-plugins/config/zkparity.cfg",
        "/etc/zkparity/agent.toml",
        "/lib/systemd/system/zkparity-agent.service",
        "/usr/share/zkparity/examples/nagios4/zkparity-services.cfg",
        "/usr/share/zkparity/examples/nrpe/zkparity.cfg",
        "/usr/share/zkparity/examples/icinga2/zkparity-commands.conf",
        "/usr/share/zkparity/examples/ganglia/gmond.d/zkparity.conf",
        "/usr/share/zkparity/examples/prometheus/zkparity.rules.yml",
        "/usr/share/doc/zkparity/README.Debian",
    ] {
        assert!(
            files.lines().any(|l| l == path),
            "{path} not in {}:\n{files}",
            deb.display()
        );
    }

    // The plugin names are the package's own links to its binary: nothing
    // points into a build directory the nagios user may not enter.
    for check in PLUGINS {
        let plugin = format!("/usr/lib/nagios/plugins/check_zkparity_{check}");
        let real = std::fs::canonicalize(&plugin).unwrap();
        assert_eq!(real, Path::new("/usr/bin/zkparity"), "{plugin}");
        let (_, text) = output(Command::new("runuser").args(["-u", "nagios", "--", &plugin, "-V"]));
        assert!(
            text.contains(env!("CARGO_PKG_VERSION")),
            "{plugin} -V as nagios: {text}"
        );
    }

    // The agent's user and files.
    let (ok, passwd) = output(Command::new("getent").args(["passwd", "zkparity"]));
    assert!(
        ok && passwd.trim_end().ends_with(":/usr/sbin/nologin"),
        "{passwd}"
    );
    let uid = uid_of("zkparity");
    let state = std::fs::metadata("/var/lib/zkparity").unwrap();
    assert_eq!(state.uid(), uid);
    let config = std::fs::metadata("/etc/zkparity/agent.toml").unwrap();
    assert_eq!(config.permissions().mode() & 0o777, 0o640);
    assert_eq!((config.uid(), config.gid()), (0, gid_of("zkparity")));
    let monitoring = std::fs::metadata("/etc/zkparity/monitoring").unwrap();
    assert_eq!(monitoring.permissions().mode() & 0o777, 0o700);
    assert_eq!(monitoring.uid(), uid_of("nagios"));

    // The unit names the installed binary and passes systemd's checks.
    let (ok, text) = output(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg("/lib/systemd/system/zkparity-agent.service"),
    );
    assert!(ok && text.trim().is_empty(), "{text}");
}

fn gid_of(group: &str) -> u32 {
    let (ok, text) = output(Command::new("getent").args(["group", group]));
    assert!(ok, "no group {group}");
    text.split(':').nth(2).unwrap().trim().parse().unwrap()
}

/// The installed samples, each with only what it says it needs: the
/// services sample in Debian's stock nagios.cfg (which loads the package's
/// commands), the Icinga 2 files with the ITL, the Prometheus files with
/// promtool.
#[test]
fn the_installed_samples_pass_the_real_tools_with_the_stock_configuration() {
    installed();
    let dir = tempfile::tempdir().unwrap();
    let stock = std::fs::read_to_string("/etc/nagios4/nagios.cfg").unwrap();
    let cfg = dir.path().join("nagios.cfg");
    std::fs::write(
        &cfg,
        format!("{stock}\ncfg_file=/usr/share/zkparity/examples/nagios4/zkparity-services.cfg\n"),
    )
    .unwrap();
    let text = verify(&cfg);
    assert!(text.contains("Total Errors:   0"), "{text}");
    assert!(text.contains("Total Warnings: 0"), "{text}");

    let conf = dir.path().join("icinga2.conf");
    std::fs::write(
        &conf,
        "const PluginDir = \"/usr/lib/nagios/plugins\"\ninclude <itl>\ninclude <plugins>\n\
         include \"/usr/share/zkparity/examples/icinga2/zkparity-commands.conf\"\n\
         include \"/usr/share/zkparity/examples/icinga2/zkparity-services.conf\"\n",
    )
    .unwrap();
    let (ok, text) = output(
        Command::new("icinga2")
            .args(["daemon", "-C", "-c"])
            .arg(&conf),
    );
    assert!(ok, "{text}");

    let (ok, text) = output(Command::new("promtool").args([
        "check",
        "config",
        "/usr/share/zkparity/examples/prometheus/prometheus.yml",
    ]));
    assert!(ok && text.contains("SUCCESS"), "{text}");
}

/// An operator's install: Debian's templates and the package's commands,
/// `$USER3$` naming the credentials directory, files in it owned by nagios.
/// Nagios, started as root, drops to nagios, so every check below ran as
/// the monitoring user from the installed plugins.
#[tokio::test]
async fn a_real_nagios_runs_the_installed_checks_as_the_nagios_user() {
    installed();
    let (p, s, t) = pair_clients().await;
    let (src, dst) = (p.source.connect_string(), p.target.connect_string());

    // A data difference, for the plain parity check.
    let plain = unique_path("package-plain");
    both(&s, &t, &plain, &[("config", b"v1")]).await;
    s.set_data(&format!("{plain}/config"), b"v2", None)
        .await
        .unwrap();

    // Identical nodes only the digest user may read, for the checks with
    // credentials: without them the walk cannot read these nodes.
    let guarded = unique_path("package-guarded");
    both(&s, &t, &guarded, &[]).await;
    let id = format!("ops:{}", digest_hash("ops", PASSWORD));
    let acl = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", &id),
    )];
    let only_ops = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl));
    for c in [&s, &t] {
        c.create(&format!("{guarded}/secret"), b"same", &only_ops)
            .await
            .unwrap();
    }

    // Credentials as README.Debian says: in /etc/zkparity/monitoring,
    // owned by nagios, mode 600.
    let creds = PathBuf::from(format!(
        "/etc/zkparity/monitoring/package-test-{}.auth",
        std::process::id()
    ));
    std::fs::write(&creds, format!("ops:{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown(&creds, "nagios");
    let creds_name = creds.file_name().unwrap().to_str().unwrap().to_string();

    let work = tempfile::Builder::new()
        .prefix("zkparity-package-nagios")
        .tempdir()
        .unwrap();
    let dir = work.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown(dir, "nagios");
    let resource = dir.join("resource.cfg");
    std::fs::write(
        &resource,
        "$USER1$=/usr/lib/nagios/plugins\n$USER3$=/etc/zkparity/monitoring\n",
    )
    .unwrap();
    let service = |name: &str, command: &str, vars: &str| {
        format!(
            "define service {{\n use generic-service\n host_name zk-package\n\
             service_description {name}\n check_command {command}\n max_check_attempts 1\n\
             check_interval 2\n retry_interval 1\n{vars}}}\n"
        )
    };
    let services = dir.join("services.cfg");
    std::fs::write(
        &services,
        format!(
            "define host {{\n use linux-server\n host_name zk-package\n address 127.0.0.1\n}}\n{}{}{}{}",
            service(
                "parity plain",
                "check_zkparity_parity!--recheck-delay 0s -t 20s",
                &format!(" _ZK_SOURCE {src}\n _ZK_TARGET {dst}\n _ZK_PATH {plain}\n"),
            ),
            service(
                "parity guarded",
                "check_zkparity_parity_auth!--recheck-delay 0s -t 20s",
                &format!(
                    " _ZK_SOURCE {src}\n _ZK_TARGET {dst}\n _ZK_PATH {guarded}\n\
                     _ZK_SOURCE_AUTH {creds_name}\n _ZK_TARGET_AUTH {creds_name}\n"
                ),
            ),
            service(
                "parity guarded without credentials",
                "check_zkparity_parity!--recheck-delay 0s -t 20s",
                &format!(" _ZK_SOURCE {src}\n _ZK_TARGET {dst}\n _ZK_PATH {guarded}\n"),
            ),
            service(
                "health",
                "check_zkparity_health",
                &format!(" _ZK_SOURCE {src}\n"),
            ),
        ),
    )
    .unwrap();
    let cfg = nagios_cfg(
        dir,
        &resource,
        &[
            PathBuf::from("/etc/nagios-plugins/config/zkparity.cfg"),
            services,
        ],
        "nagios",
    );
    for f in std::fs::read_dir(dir).unwrap() {
        chown(&f.unwrap().path(), "nagios");
    }
    verify(&cfg);
    let nagios = Guarded::spawn(
        guarded_command("nagios4", None)
            .arg(&cfg)
            .stdout(std::process::Stdio::null()),
    )
    .expect("nagios4 starts");

    let status = dir.join("status.dat");
    let wait_for_nagios_user = (0..100).any(|_| {
        let (found, _) = output(
            Command::new("pgrep")
                .args(["-u", "nagios", "-f"])
                .arg(cfg.to_str().unwrap()),
        );
        found || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    });
    assert!(
        wait_for_nagios_user,
        "Nagios did not run as the nagios user"
    );
    let wait = |service: &'static str, state: i32| {
        let status = status.clone();
        tokio::task::spawn_blocking(move || wait_for_state(&status, service, state))
    };
    let plain_out = wait("parity plain", 2).await.unwrap();
    assert!(
        plain_out.starts_with("ZKPARITY PARITY CRITICAL - 1 confirmed difference (data 1)"),
        "{plain_out}"
    );
    let guarded_out = wait("parity guarded", 0).await.unwrap();
    assert!(
        guarded_out.starts_with("ZKPARITY PARITY OK - source and target match"),
        "{guarded_out}"
    );
    let health_out = wait("health", 0).await.unwrap();
    assert!(health_out.starts_with("ZKPARITY HEALTH OK"), "{health_out}");
    // The same nodes without the credentials cannot be vouched for.
    let blind = (0..300)
        .find_map(|_| {
            let seen = service_status(&status, "parity guarded without credentials");
            if seen.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            seen
        })
        .expect("the check without credentials ran");
    assert_ne!(blind.0, 0, "{blind:?}");
    drop(nagios);

    // Nothing Nagios kept holds the secret.
    for f in ["nagios.log", "status.dat", "objects.cache"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        assert!(!text.contains(PASSWORD), "the password is in Nagios' {f}");
    }
    std::fs::remove_file(&creds).unwrap();
}

/// base64(sha1("user:password")), the id a digest ACL carries.
fn digest_hash(user: &str, password: &str) -> String {
    let (ok, text) = output(Command::new("sh").arg("-c").arg(format!(
        "printf '%s' '{user}:{password}' | openssl dgst -binary -sha1 | openssl base64"
    )));
    assert!(ok, "{text}");
    text.trim().to_string()
}
