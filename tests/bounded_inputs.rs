//! Input files are bounded: a JAAS file, an auth file or an agent config
//! over 1 MiB is refused with exit 2 naming it, before it is read whole,
//! and deep nesting is refused rather than recursed into.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

const NOWHERE: [&str; 4] = ["--source", "127.0.0.1:1", "--target", "127.0.0.1:2"];

fn private_file(path: &Path, content: &[u8]) -> String {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// More than 1 MiB of comment after a valid client section.
fn padded_jaas() -> String {
    "Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
     username=\"bob\"\n  password=\"pw\";\n};\n"
        .to_string()
        + &"// padding padding padding padding\n".repeat(40_000)
}

fn assert_refused(r: &Run, code: i32, wants: &[&str]) {
    assert_eq!(r.code, code, "{}{}", r.stdout, r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    for want in wants {
        assert!(all.contains(want), "no {want:?} in:\n{all}");
    }
    assert!(!all.contains("overflow"), "{all}");
}

#[test]
fn a_jaas_file_over_a_mebibyte_is_refused_with_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let jaas = private_file(&dir.path().join("big.jaas"), padded_jaas().as_bytes());
    let mut args = vec!["compare"];
    args.extend_from_slice(&NOWHERE);
    args.extend_from_slice(&["--source-jaas", &jaas]);
    assert_refused(&zkparity(&args), 2, &[&jaas, "1 MiB"]);
}

#[test]
fn an_auth_file_over_a_mebibyte_is_refused_with_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let auth = private_file(
        &dir.path().join("big.auth"),
        format!("bob:{}\n", "x".repeat(1 << 21)).as_bytes(),
    );
    let mut args = vec!["compare"];
    args.extend_from_slice(&NOWHERE);
    args.extend_from_slice(&["--target-auth-file", &auth]);
    let r = zkparity(&args);
    assert_refused(&r, 2, &[&auth, "1 MiB"]);
    assert!(!r.stderr.contains("xxxx"), "{}", r.stderr);
}

#[test]
fn a_jaas_file_of_endless_braces_is_refused_without_recursing() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("Client {}", "{".repeat(500_000));
    let jaas = private_file(&dir.path().join("braces.jaas"), text.as_bytes());
    let mut args = vec!["compare"];
    args.extend_from_slice(&NOWHERE);
    args.extend_from_slice(&["--source-jaas", &jaas]);
    assert_refused(
        &zkparity(&args),
        2,
        &[
            &jaas,
            "line 1: expected a login module class or '}', found '{'",
        ],
    );
}

/// `agent --check-config` and a start of the agent on `config`.
fn agent_refuses(config: &str, wants: &[&str]) {
    for args in [
        vec!["agent", "--config", config, "--check-config"],
        vec!["agent", "--config", config],
    ] {
        assert_refused(&zkparity(&args), 2, wants);
    }
}

#[test]
fn an_agent_config_over_a_mebibyte_is_refused_with_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "state_dir = {:?}\n[[pair]]\nname = \"p\"\nsource = \"127.0.0.1:1\"\ntarget = \"127.0.0.1:2\"\n",
        dir.path()
    ) + &"# padding padding padding padding\n".repeat(40_000);
    let config = private_file(&dir.path().join("agent.toml"), text.as_bytes());
    agent_refuses(&config, &[&config, "1 MiB"]);
}

#[test]
fn a_deeply_nested_agent_config_is_refused_without_overflowing_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    for nested in [
        format!("x = {}", "[".repeat(200_000)),
        format!("x = {}1{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("x = {}", "{ a = ".repeat(100_000)),
    ] {
        let text = format!("state_dir = {:?}\n{nested}\n", dir.path());
        let config = private_file(&dir.path().join("agent.toml"), text.as_bytes());
        agent_refuses(&config, &[&config, "line 2"]);
    }
}
