//! `zkparity agent`: configuration checks, then (against real servers) the
//! rounds, the confirmation window, the state file, passive results and
//! signals, with the agent binary run as a child process.

mod common;

use std::path::{Path, PathBuf};

use common::zkparity;

/// A config file in its own temporary directory, which is also the state
/// directory.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn state_dir(&self) -> &Path {
        self.dir.path()
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    /// Writes `body` after a `state_dir` line pointing here.
    fn write_config(&self, body: &str) -> PathBuf {
        let text = format!("state_dir = {:?}\n{body}", self.state_dir());
        std::fs::write(self.config_path(), text).expect("write config");
        self.config_path()
    }
}

#[test]
fn check_config_accepts_a_valid_config_and_exits_0() {
    let s = Setup::new();
    let config = s.write_config(
        "[[pair]]\nname = \"kafka\"\nsource = \"old:2181\"\ntarget = \"new:2181\"\n\
         [[pair]]\nname = \"ch\"\nsource = \"old:2181\"\ntarget = \"new:2181\"\npath = \"/ch\"\n",
    );
    let run = zkparity(&[
        "agent",
        "--config",
        config.to_str().unwrap(),
        "--check-config",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("2 pairs: kafka, ch"), "{}", run.stdout);
}

#[test]
fn check_config_names_the_line_and_key_of_a_mistake_and_exits_2() {
    let s = Setup::new();
    let config = s.write_config(
        "[[pair]]\nname = \"kafka\"\nsource = \"old:2181\"\ntarget = \"new:2181\"\n\
         interval = \"every minute\"\n",
    );
    let run = zkparity(&[
        "agent",
        "--config",
        config.to_str().unwrap(),
        "--check-config",
    ]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("line 6, key pair[0].interval:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("every minute"), "{}", run.stderr);
}

#[test]
fn the_agent_refuses_a_bad_config_before_writing_anything() {
    let s = Setup::new();
    let config = s.write_config(
        "[[pair]]\nname = \"kafka\"\nsource = \"old:2181\"\ntarget = \"new:2181\"\ncolour = 1\n",
    );
    let run = zkparity(&["agent", "--config", config.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("key pair[0].colour"), "{}", run.stderr);
    assert!(!s.state_dir().join("kafka.json").exists());
}

#[test]
fn a_missing_config_file_is_named_and_exits_2() {
    let run = zkparity(&[
        "agent",
        "--config",
        "/nonexistent/agent.toml",
        "--check-config",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("/nonexistent/agent.toml"),
        "{}",
        run.stderr
    );
}
