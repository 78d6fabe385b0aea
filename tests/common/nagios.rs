//! A real Nagios 4 for the tests: a nagios.cfg that keeps everything it
//! writes in one directory, `nagios4 -v`, and the states it records.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A nagios.cfg that keeps every file Nagios writes under `dir`.
/// Nagios drops to `user` when started as root; its checks run as that user.
pub fn nagios_cfg(dir: &Path, resource: &Path, objects: &[PathBuf], user: &str) -> PathBuf {
    let mut cfg = String::new();
    for f in ["commands", "contacts", "timeperiods", "templates"] {
        cfg += &format!("cfg_file=/etc/nagios4/objects/{f}.cfg\n");
    }
    // Debian's check-host-alive, which linux-server uses: the files the
    // sample services name, and no other (the installed package's commands
    // in /etc/nagios-plugins/config would clash with the checkout's).
    cfg += "cfg_file=/etc/nagios-plugins/config/ping.cfg\n";
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
         max_service_check_spread=1\nnagios_user={user}\nnagios_group={user}\n\
         illegal_macro_output_chars=`~$&|'\"<>\n",
        resource.display()
    );
    let path = dir.join("nagios.cfg");
    std::fs::write(&path, cfg).unwrap();
    path
}

pub fn verify(cfg: &Path) -> String {
    let out = Command::new("nagios4")
        .arg("-v")
        .arg(cfg)
        .output()
        .expect("nagios4 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "nagios4 -v failed:\n{text}");
    text
}

/// `(current_state, plugin_output)` of a service in Nagios' status file.
pub fn service_status(status: &Path, service: &str) -> Option<(i32, String)> {
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

pub fn wait_for_state(status: &Path, service: &str, state: i32) -> String {
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
