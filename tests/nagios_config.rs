//! The shipped Nagios and Icinga definitions, checked by the real tools, and a
//! real Nagios 4 scheduling `check parity` against the harness servers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::nagios::*;
use common::*;
use zkparity_sandbox::{guarded_command, Guarded};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zkparity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_shipped_nagios4_definitions_pass_nagios4_verify() {
    let dir = temp_dir("nagios-verify");
    let cfg = nagios_cfg(
        &dir,
        Path::new("/etc/nagios4/resource.cfg"),
        &[
            repo("nagios/nagios4/zkparity-commands.cfg"),
            repo("nagios/nagios4/zkparity-services.cfg"),
        ],
        "root",
    );
    let text = verify(&cfg);
    assert!(text.contains("Total Errors:   0"), "{text}");
    assert!(text.contains("Total Warnings: 0"), "{text}");
    assert!(text.contains("Checked 11 services."), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_shipped_icinga2_definitions_pass_icinga2_validation() {
    let dir = temp_dir("icinga-verify");
    let conf = dir.join("icinga2.conf");
    std::fs::write(
        &conf,
        format!(
            "const PluginDir = \"/usr/lib/nagios/plugins\"\ninclude <itl>\ninclude <plugins>\n\
             include \"{}\"\ninclude \"{}\"\n",
            repo("nagios/icinga2/zkparity-commands.conf").display(),
            repo("nagios/icinga2/zkparity-services.conf").display()
        ),
    )
    .unwrap();
    let out = Command::new("icinga2")
        .args(["daemon", "-C", "-c"])
        .arg(&conf)
        .output()
        .expect("icinga2 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "icinga2 daemon -C failed:\n{text}");
    assert!(text.contains("Instantiated 6 Services."), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The NRPE lines name existing plugins and keep their -t under NRPE's
/// default 60 s command timeout.
#[test]
fn the_shipped_nrpe_commands_are_well_formed() {
    let text = std::fs::read_to_string(repo("nagios/nrpe/zkparity.cfg")).unwrap();
    let commands: Vec<&str> = text.lines().filter(|l| l.starts_with("command[")).collect();
    assert_eq!(commands.len(), 5);
    for c in commands {
        let (name, line) = c.split_once("]=").unwrap();
        assert!(
            name["command[".len()..].starts_with("check_zkparity_"),
            "{c}"
        );
        assert!(
            line.starts_with("/usr/lib/nagios/plugins/check_zkparity_"),
            "{c}"
        );
        // NRPE refuses these characters in commands it passes on.
        assert!(!line.contains(['|', '`', '&', '>', '<', '\'']), "{c}");
    }
}

#[tokio::test]
async fn a_real_nagios_records_critical_then_ok_as_the_divergence_is_fixed() {
    let (p, s, t) = pair_clients().await;
    let root = unique_path("nagios-e2e");
    both(&s, &t, &root, &[("config", b"v1")]).await;
    s.set_data(&format!("{root}/config"), b"v2", None)
        .await
        .unwrap();

    let dir = temp_dir("nagios-e2e");
    // The plugin names, as the package installs them: links to the binary.
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for check in ["parity", "znode", "health", "counts", "ephemerals"] {
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_zkparity"),
            plugins.join(format!("check_zkparity_{check}")),
        )
        .unwrap();
    }
    let resource = dir.join("resource.cfg");
    std::fs::write(&resource, format!("$USER1$={}\n", plugins.display())).unwrap();
    let services = dir.join("services.cfg");
    std::fs::write(
        &services,
        format!(
            "define host {{\n host_name zk-test\n address 127.0.0.1\n max_check_attempts 1\n\
             check_period 24x7\n contact_groups admins\n notification_period 24x7\n}}\n\
             define service {{\n host_name zk-test\n service_description parity\n\
             check_command check_zkparity_parity!--recheck-delay 0s -t 20s\n\
             max_check_attempts 1\n check_interval 2\n retry_interval 1\n check_period 24x7\n\
             notification_period 24x7\n contact_groups admins\n\
             _ZK_SOURCE {}\n _ZK_TARGET {}\n _ZK_PATH {root}\n}}\n",
            p.source.connect_string(),
            p.target.connect_string()
        ),
    )
    .unwrap();
    let cfg = nagios_cfg(
        &dir,
        &resource,
        &[repo("nagios/nagios4/zkparity-commands.cfg"), services],
        "root",
    );
    verify(&cfg);
    // Guarded: killed with its checks when dropped, and by the watchdog
    // should the test binary die first.
    let _nagios = Guarded::spawn(
        guarded_command("nagios4", None)
            .arg(&cfg)
            .stdout(std::process::Stdio::null()),
    )
    .expect("nagios4 starts");
    let status = dir.join("status.dat");
    let (st, out) = (status.clone(), status.clone());
    let critical = tokio::task::spawn_blocking(move || wait_for_state(&st, "parity", 2))
        .await
        .unwrap();
    assert!(
        critical.starts_with("ZKPARITY PARITY CRITICAL - 1 confirmed difference (data 1)"),
        "{critical}"
    );

    t.set_data(&format!("{root}/config"), b"v2", None)
        .await
        .unwrap();
    let ok = tokio::task::spawn_blocking(move || wait_for_state(&out, "parity", 0))
        .await
        .unwrap();
    assert!(
        ok.starts_with("ZKPARITY PARITY OK - source and target match"),
        "{ok}"
    );
    drop(_nagios);
    let _ = std::fs::remove_dir_all(&dir);
}
