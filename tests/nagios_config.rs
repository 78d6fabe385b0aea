//! The shipped Nagios and Icinga definitions, checked by the real tools, and a
//! real Nagios 4 scheduling `check parity` against the harness servers.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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

/// A nagios.cfg that keeps every file Nagios writes under `dir`.
fn nagios_cfg(dir: &Path, resource: &Path, objects: &[PathBuf]) -> PathBuf {
    let mut cfg = String::new();
    for f in ["commands", "contacts", "timeperiods", "templates"] {
        cfg += &format!("cfg_file=/etc/nagios4/objects/{f}.cfg\n");
    }
    // Debian's check-host-alive and friends, which the templates use.
    cfg += "cfg_dir=/etc/nagios-plugins/config\n";
    for o in objects {
        cfg += &format!("cfg_file={}\n", o.display());
    }
    let d = dir.display();
    cfg += &format!(
        "resource_file={}\nlog_file={d}/nagios.log\nobject_cache_file={d}/objects.cache\n\
         precached_object_file={d}/objects.precache\nstatus_file={d}/status.dat\n\
         status_update_interval=1\ntemp_file={d}/nagios.tmp\ntemp_path={d}\n\
         lock_file={d}/nagios.lock\ncheck_result_path={d}\ncommand_file={d}/nagios.cmd\n\
         query_socket={d}/nagios.qh\nstate_retention_file={d}/retention.dat\n\
         retain_state_information=0\nuse_syslog=0\nenable_notifications=0\n\
         check_external_commands=1\nexecute_host_checks=0\ninterval_length=1\n\
         check_result_reaper_frequency=1\nservice_inter_check_delay_method=n\n\
         max_service_check_spread=1\nnagios_user=root\nnagios_group=root\n\
         illegal_macro_output_chars=`~$&|'\"<>\n",
        resource.display()
    );
    let path = dir.join("nagios.cfg");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn verify(cfg: &Path) -> String {
    let out = Command::new("nagios4")
        .arg("-v")
        .arg(cfg)
        .output()
        .expect("nagios4 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "nagios4 -v failed:\n{text}");
    text
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
    );
    let text = verify(&cfg);
    assert!(text.contains("Total Errors:   0"), "{text}");
    assert!(text.contains("Total Warnings: 0"), "{text}");
    assert!(text.contains("Checked 7 services."), "{text}");
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
    assert!(text.contains("Instantiated 4 Services."), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The NRPE lines name existing plugins and keep their -t under NRPE's
/// default 60 s command timeout.
#[test]
fn the_shipped_nrpe_commands_are_well_formed() {
    let text = std::fs::read_to_string(repo("nagios/nrpe/zkparity.cfg")).unwrap();
    let commands: Vec<&str> = text.lines().filter(|l| l.starts_with("command[")).collect();
    assert_eq!(commands.len(), 4);
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

/// `(current_state, plugin_output)` of a service in Nagios' status file.
fn service_status(status: &Path, service: &str) -> Option<(i32, String)> {
    let text = std::fs::read_to_string(status).ok()?;
    let block = text
        .split("servicestatus {")
        .skip(1)
        .find(|b| b.contains(&format!("service_description={service}\n")))?;
    let field = |name: &str| {
        block.lines().find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{name}="))
                .map(str::to_string)
        })
    };
    let checked = field("has_been_checked")? == "1";
    checked.then_some((
        (field("current_state")?.parse().ok()?),
        field("plugin_output")?,
    ))
}

fn wait_for_state(status: &Path, service: &str, state: i32) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        if let Some((s, output)) = service_status(status, service) {
            if s == state {
                return output;
            }
            last = Some((s, output));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("service {service} never reached state {state}; last seen {last:?}");
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
    let plugins = dir.join("plugins");
    let install = Command::new(repo("plugins/install"))
        .args(["--zkparity", env!("CARGO_BIN_EXE_zkparity"), "--dir"])
        .arg(&plugins)
        .output()
        .unwrap();
    assert!(install.status.success(), "{install:?}");
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
