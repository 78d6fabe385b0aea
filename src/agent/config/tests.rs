use super::checks::check_command_file;
use super::*;
use crate::tree::EphemeralPolicy;

fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
    AgentConfig::parse(Path::new("agent.toml"), text)
}

fn tmp_dir_line() -> String {
    format!("state_dir = {:?}\n", std::env::temp_dir())
}

fn minimal() -> String {
    tmp_dir_line()
        + "[[pair]]\nname = \"kafka\"\nsource = \"old:2181\"\ntarget = \"new:2181/kafka\"\n"
}

fn invalid(text: &str) -> (usize, String, String) {
    match parse(text) {
        Err(ConfigError::Invalid {
            line, key, reason, ..
        }) => (line, key, reason),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn a_minimal_pair_takes_the_documented_defaults() {
    let c = parse(&minimal()).unwrap();
    let p = &c.pairs[0];
    assert_eq!(p.name, "kafka");
    assert_eq!(p.interval, DEFAULT_INTERVAL);
    assert_eq!(p.jitter, Duration::from_secs(6));
    assert_eq!(p.confirm.rounds, 2);
    assert_eq!(p.confirm.min_age, Duration::ZERO);
    assert_eq!(p.options.path, "/");
    assert_eq!(p.options.recheck_delay, Some(DEFAULT_RECHECK_DELAY));
    assert_eq!(p.options.walk.ephemerals, EphemeralPolicy::Count);
    assert_eq!(p.options.limit, 0);
    assert_eq!(
        p.target.live().expect("live").connect.chroot.as_deref(),
        Some("/kafka")
    );
    assert_eq!(p.nagios_service, "zkparity kafka");
    assert_eq!(
        p.watch,
        WatchSettings {
            enabled: true,
            full_walk_every: DEFAULT_FULL_WALK_EVERY,
            settle: DEFAULT_WATCH_SETTLE,
        }
    );
    assert!(c.nagios.is_none());
    assert_eq!(c.log_level, LogLevel::Info);
}

#[test]
fn a_bad_duration_names_its_key_and_line() {
    let text = minimal() + "interval = \"30x\"\n";
    let (line, key, reason) = invalid(&text);
    assert_eq!(line, 6);
    assert_eq!(key, "pair[0].interval");
    assert!(reason.contains("30x"), "{reason}");
}

#[test]
fn a_latency_limit_needs_its_unit() {
    let c = parse(&(minimal() + "max_latency = \"250ms\"\n")).unwrap();
    let limit = c.pairs[0].options.reader.max_latency;
    assert_eq!(limit, Some(Duration::from_millis(250)));
    let c = parse(&(minimal() + "max_latency = \"off\"\n")).unwrap();
    assert_eq!(c.pairs[0].options.reader.max_latency, None);
    let (line, key, reason) = invalid(&(minimal() + "max_latency = 250\n"));
    assert_eq!((line, key.as_str()), (6, "pair[0].max_latency"));
    assert!(reason.contains("unit"), "{reason}");
}

#[test]
fn an_unknown_key_is_refused_with_its_line() {
    let text = minimal()
        + "[[pair]]\nname = \"b\"\nsource = \"a:1\"\ntarget = \"b:1\"\nintervall = \"5s\"\n";
    let (line, key, reason) = invalid(&text);
    assert_eq!(line, 10);
    assert_eq!(key, "pair[1].intervall");
    assert!(reason.contains("unknown field"), "{reason}");
}

#[test]
fn a_missing_key_names_the_table_and_the_key() {
    let text = tmp_dir_line() + "[[pair]]\nname = \"a\"\nsource = \"a:1\"\n";
    let (_, key, reason) = invalid(&text);
    assert_eq!(key, "pair[0].target");
    assert!(reason.contains("missing field"), "{reason}");
}

#[test]
fn a_bad_connect_string_is_refused_at_its_line() {
    let text = tmp_dir_line() + "[[pair]]\nname = \"a\"\nsource = \"old:0\"\ntarget = \"b:1\"\n";
    let (line, key, reason) = invalid(&text);
    assert_eq!((line, key.as_str()), (4, "pair[0].source"));
    assert!(reason.contains("port"), "{reason}");
}

#[test]
fn duplicate_pair_names_are_refused() {
    let text = minimal() + "[[pair]]\nname = \"kafka\"\nsource = \"a:1\"\ntarget = \"b:1\"\n";
    let (line, key, _) = invalid(&text);
    assert_eq!((line, key.as_str()), (7, "pair[1].name"));
}

#[test]
fn a_bad_exclude_in_a_multiline_array_names_the_key() {
    let text = minimal() + "excludes = [\n  \"/ok/**\",\n  \"/bad/[\",\n]\n";
    // toml places errors inside an array at the array; the reason names
    // the pattern.
    let (line, key, reason) = invalid(&text);
    assert_eq!((line, key.as_str()), (6, "pair[0].excludes"));
    assert!(reason.contains("/bad/["), "{reason}");
}

#[test]
fn names_that_cannot_be_file_names_are_refused() {
    for bad in ["", "../x", ".hidden", "a b", "a/b"] {
        let text = tmp_dir_line()
            + &format!("[[pair]]\nname = {bad:?}\nsource = \"a:1\"\ntarget = \"b:1\"\n");
        let (_, key, _) = invalid(&text);
        assert_eq!(key, "pair[0].name", "{bad:?}");
    }
}

#[test]
fn watch_keys_are_read_and_checked() {
    let text = minimal() + "watch = false\nfull_walk_every = 3\nwatch_settle = \"500ms\"\n";
    let w = parse(&text).unwrap().pairs[0].watch;
    assert!(!w.enabled);
    assert_eq!(w.full_walk_every, 3);
    assert_eq!(w.settle, Duration::from_millis(500));
    let (line, key, _) = invalid(&(minimal() + "full_walk_every = 0\n"));
    assert_eq!((line, key.as_str()), (6, "pair[0].full_walk_every"));
    let (_, key, _) = invalid(&(minimal() + "watch = \"yes\"\n"));
    assert_eq!(key, "pair[0].watch");
}

#[test]
fn jitter_longer_than_the_interval_is_refused() {
    let text = minimal() + "interval = \"5s\"\njitter = \"10s\"\n";
    let (_, key, _) = invalid(&text);
    assert_eq!(key, "pair[0].jitter");
}

#[test]
fn a_pair_is_required() {
    let (_, key, _) = invalid(&tmp_dir_line());
    assert_eq!(key, "pair");
}

#[test]
fn a_relative_or_missing_state_dir_is_refused() {
    let (_, key, _) = invalid(&minimal().replacen(&tmp_dir_line(), "state_dir = \"state\"\n", 1));
    assert_eq!(key, "state_dir");
    let (_, key, reason) = invalid(&minimal().replacen(
        &tmp_dir_line(),
        "state_dir = \"/nonexistent/zkparity\"\n",
        1,
    ));
    assert_eq!(key, "state_dir");
    assert!(reason.contains("/nonexistent/zkparity"), "{reason}");
}

#[test]
fn ganglia_channels_resolve_with_gmonds_defaults() {
    let text = minimal()
        + "[[ganglia]]\nhost = \"127.0.0.1\"\n[[ganglia]]\nhost = \"239.2.11.71\"\nport = 8650\nttl = 3\n\
           [[ganglia]]\nhost = \"::1\"\n";
    let c = parse(&text).unwrap();
    let specs: Vec<(String, u32)> = c
        .ganglia
        .iter()
        .map(|g| (g.addr.to_string(), g.ttl))
        .collect();
    assert_eq!(
        specs,
        [
            ("127.0.0.1:8649".to_string(), 1),
            ("239.2.11.71:8650".to_string(), 3),
            ("[::1]:8649".to_string(), 1)
        ]
    );
}

#[test]
fn a_bad_ganglia_channel_names_its_key_and_line() {
    let text = minimal() + "[[ganglia]]\nhost = \"\"\nport = 8649\n";
    let (line, key, _) = invalid(&text);
    assert_eq!((line, key.as_str()), (7, "ganglia[0].host"));
    let text = minimal() + "[[ganglia]]\nhost = \"gmond\"\nport = 70000\n";
    let (line, key, _) = invalid(&text);
    assert_eq!((line, key.as_str()), (8, "ganglia[0].port"));
}

#[test]
fn probes_are_off_unless_an_interval_is_given() {
    assert!(parse(&minimal()).unwrap().probes.is_none());
    let text = "probe_interval = \"30s\"\n".to_string() + &minimal();
    let p = parse(&text).unwrap().probes.unwrap();
    assert_eq!(p.interval, Duration::from_secs(30));
    assert_eq!(p.timeout, crate::probe::DEFAULT_TIMEOUT);
    let text = "probe_interval = \"10ms\"\n".to_string() + &minimal();
    let (line, key, _) = invalid(&text);
    assert_eq!((line, key.as_str()), (1, "probe_interval"));
}

#[test]
fn the_nagios_command_file_is_a_fifo_or_not_there_yet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("nagios.cmd");
    let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("c path");
    // SAFETY: mkfifo(3) on a fresh path of our own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(check_command_file(&fifo).is_ok());
    // Absent while Nagios is stopped: fine.
    assert!(check_command_file(&dir.path().join("later.cmd")).is_ok());
    let plain = dir.path().join("plain.cmd");
    std::fs::write(&plain, "").expect("a file");
    let e = check_command_file(&plain).unwrap_err();
    assert!(e.contains("not a FIFO"), "{e}");
    let e = check_command_file(dir.path()).unwrap_err();
    assert!(e.contains("is a directory"), "{e}");
    let e = check_command_file(&dir.path().join("no/such.cmd")).unwrap_err();
    assert!(e.contains("does not"), "{e}");
}

#[test]
fn nagios_path_rules_parse_or_name_their_line() {
    let text = minimal()
        + "[nagios]\ncommand_file = \"/tmp/zkparity-absent.cmd\"\nhost_name = \"h\"\n\
           judge = [\"/app/locks/**=warning\", \"/app/tmp=ok\"]\n";
    let c = parse(&text).unwrap();
    let rules = &c.nagios.expect("nagios").check.rules;
    assert_eq!(rules.len(), 2);
    let text = minimal()
        + "[nagios]\ncommand_file = \"/tmp/zkparity-absent.cmd\"\nhost_name = \"h\"\n\
           judge = [\"/app=loud\"]\n";
    let (line, key, reason) = invalid(&text);
    assert_eq!((line, key.as_str()), (9, "nagios.judge"));
    assert!(reason.contains("loud"), "{reason}");
}

#[test]
fn nagios_fields_cannot_carry_separators() {
    let text = minimal() + "nagios_service = \"a;b\"\n";
    let (_, key, _) = invalid(&text);
    assert_eq!(key, "pair[0].nagios_service");
    let text = minimal() + "[nagios]\ncommand_file = \"/tmp/zkparity-absent.cmd\"\nhost_name = \"h\"\ncritical_kinds = [\"data\", \"dta\"]\n";
    let (line, key, reason) = invalid(&text);
    assert_eq!((line, key.as_str()), (9, "nagios.critical_kinds"));
    assert!(reason.contains("dta"), "{reason}");
}

#[test]
fn a_jaas_file_is_read_for_its_section_and_its_mistakes_name_the_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let jaas = dir.path().join("client.jaas");
    std::fs::write(
        &jaas,
        "ZkClient { org.apache.zookeeper.server.auth.DigestLoginModule required \
         username=\"bob\" password=\"pw\"; };",
    )
    .unwrap();
    std::fs::set_permissions(&jaas, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = minimal() + &format!("target_jaas = {jaas:?}\n");
    let (line, key, reason) = invalid(&text);
    assert_eq!((line, key.as_str()), (6, "pair[0].target_jaas"));
    assert!(reason.contains("no section Client"), "{reason}");
    let c = parse(&(text + "jaas_section = \"ZkClient\"\n")).unwrap();
    let sasl = c.pairs[0]
        .target
        .live()
        .expect("live")
        .sasl
        .as_ref()
        .expect("a SASL login");
    assert_eq!(sasl.login.identity(), "bob");
    assert!(c.pairs[0].source.live().expect("live").sasl.is_none());
}

#[test]
fn an_auth_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("source.auth");
    std::fs::write(&auth, "u:p\n").unwrap();
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = minimal() + &format!("source_auth_file = {auth:?}\n");
    let (line, key, reason) = invalid(&text);
    assert_eq!((line, key.as_str()), (6, "pair[0].source_auth_file"));
    assert!(reason.contains("chmod 600"), "{reason}");
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = parse(&text).unwrap();
    assert_eq!(
        c.pairs[0]
            .source
            .live()
            .expect("live")
            .credentials
            .as_ref()
            .map(|c| c.user()),
        Some("u")
    );
}

#[test]
fn tls_files_are_read_at_load_and_a_client_cert_needs_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let text = minimal() + &format!("target_tls_ca = {ca:?}\n");
    let c = parse(&text).unwrap();
    assert!(c.pairs[0].target.live().expect("live").tls.is_some());
    assert!(c.pairs[0].source.live().expect("live").tls.is_none());
    let text = minimal() + &format!("source_tls_cert = {ca:?}\n");
    let (line, key, reason) = invalid(&text);
    assert_eq!((line, key.as_str()), (6, "pair[0].source_tls_cert"));
    assert!(reason.contains("source_tls_ca"), "{reason}");
    let text = minimal() + "target_tls_ca = \"/nonexistent/ca.pem\"\n";
    let (_, key, reason) = invalid(&text);
    assert_eq!(key, "pair[0].target_tls_ca");
    assert!(reason.contains("/nonexistent/ca.pem"), "{reason}");
}

#[test]
fn an_unchanged_pair_is_the_same_on_reload_and_a_changed_one_is_not() {
    let a = parse(&minimal()).unwrap();
    let b = parse(&minimal()).unwrap();
    assert!(a.pairs[0].same_as(&b.pairs[0]));
    let c = parse(&(minimal() + "interval = \"5s\"\n")).unwrap();
    assert!(!a.pairs[0].same_as(&c.pairs[0]));
}

#[test]
fn the_sample_config_is_valid() {
    use std::os::unix::fs::PermissionsExt;
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/agent.toml"))
        .unwrap();
    // The sample's directory and credentials files, made here.
    let dir = tempfile::tempdir().unwrap();
    for name in ["old.auth", "new.auth"] {
        let f = dir.path().join(name);
        std::fs::write(&f, "zkparity:secret\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let text = text
        .replace("\"/var/lib/zkparity\"", &format!("{:?}", dir.path()))
        .replace("/etc/zkparity/", &format!("{}/", dir.path().display()))
        // No DNS on a build machine.
        .replace("gmond1.example.net", "127.0.0.1");
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.pairs.len(), 2);
    assert_eq!(c.pairs[1].interval, Duration::from_secs(300));
    assert_eq!(c.pairs[1].jitter, Duration::from_secs(30));
    assert!(c.nagios.is_some());
    assert_eq!(c.ganglia.len(), 1);
}

#[test]
fn expect_keys_give_the_pair_a_registrations_check() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("before.zkps");
    std::fs::write(&snapshot, b"x").unwrap();
    let c = parse(&(minimal() + &format!("expect = {snapshot:?}\n"))).unwrap();
    let r = c.pairs[0].registrations.as_ref().expect("registrations");
    assert!(
        matches!(&r.expect, SideSpec::File { path, .. } if path == &snapshot),
        "{r:?}"
    );
    assert_eq!(r.grace, DEFAULT_EXPECT_GRACE);
    assert_eq!(r.since, None);

    let text = minimal()
        + &format!(
            "expect = {snapshot:?}\nexpect_grace = \"10m\"\nexpect_since = \"2024-05-01T22:00:00Z\"\n"
        );
    let c = parse(&text).unwrap();
    let r = c.pairs[0].registrations.as_ref().expect("registrations");
    assert_eq!(r.grace, Duration::from_secs(600));
    assert_eq!(
        r.since,
        Some(std::time::UNIX_EPOCH + Duration::from_secs(1_714_600_800))
    );
    assert!(parse(&minimal()).unwrap().pairs[0].registrations.is_none());
}

#[test]
fn a_live_expect_is_the_old_ensemble_read_with_the_source_credentials() {
    let c = parse(&(minimal() + "expect = \"old:2181/kafka\"\n")).unwrap();
    let r = c.pairs[0].registrations.as_ref().expect("registrations");
    let live = r.expect.live().expect("a live expectation");
    assert_eq!(live.side, "expected");
    assert_eq!(live.connect.chroot.as_deref(), Some("/kafka"));
}

#[test]
fn expect_grace_or_since_without_expect_names_the_key() {
    let (line, key, reason) = invalid(&(minimal() + "expect_grace = \"10m\"\n"));
    assert_eq!((line, key.as_str()), (6, "pair[0].expect_grace"));
    assert!(reason.contains("needs expect"), "{reason}");
    let (_, key, _) = invalid(&(minimal() + "expect_since = \"1714600800\"\n"));
    assert_eq!(key, "pair[0].expect_since");
}

#[test]
fn a_bad_expect_since_or_grace_names_its_key_and_line() {
    let text = minimal() + "expect = \"old:2181\"\nexpect_since = \"yesterday\"\n";
    let (line, key, reason) = invalid(&text);
    assert_eq!((line, key.as_str()), (7, "pair[0].expect_since"));
    assert!(reason.contains("yesterday"), "{reason}");
    let text = minimal() + "expect = \"old:2181\"\nexpect_grace = \"soon\"\n";
    let (line, key, _) = invalid(&text);
    assert_eq!((line, key.as_str()), (7, "pair[0].expect_grace"));
}

#[test]
fn expect_on_a_pair_whose_target_is_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = tmp_dir_line()
        + &format!(
            "[[pair]]\nname = \"k\"\nsource = \"old:2181\"\ntarget = {:?}\nexpect = \"old:2181\"\n",
            dir.path()
        );
    let (line, key, reason) = invalid(&text);
    assert_eq!((line, key.as_str()), (6, "pair[0].expect"));
    assert!(reason.contains("live target"), "{reason}");
}

#[test]
fn read_from_keys_place_each_sides_reads_and_are_refused_for_files() {
    let text = minimal() + "source_read_from = \"followers\"\n";
    let c = parse(&text).unwrap();
    let placed = &c.pairs[0].options.reader.read_from;
    assert_eq!(placed.source, crate::placement::ReadFrom::Followers);
    assert_eq!(placed.target, crate::placement::ReadFrom::Any);
    let (line, key, reason) = invalid(&(minimal() + "target_read_from = \"zk1:0\"\n"));
    assert_eq!((line, key.as_str()), (6, "pair[0].target_read_from"));
    assert!(reason.contains("zk1:0"), "{reason}");
    let dir = tempfile::tempdir().unwrap();
    let text = tmp_dir_line()
        + &format!(
            "[[pair]]\nname = \"k\"\nsource = {:?}\ntarget = \"new:2181\"\nsource_read_from = \"leader\"\n",
            dir.path()
        );
    let (line, key, reason) = invalid(&text);
    assert_eq!((line, key.as_str()), (6, "pair[0].source_read_from"));
    assert!(reason.contains("is files"), "{reason}");
}
