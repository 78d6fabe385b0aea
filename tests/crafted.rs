//! Crafted files read as sides by the real binary: each is refused with
//! exit 2 (UNKNOWN, 3, for a check) and an error naming the file and a byte
//! of it, in bounded memory and time. The child's peak RSS and wall time
//! are taken from `wait4`, so what is measured is the command alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Peak resident memory allowed to a command refusing a crafted file.
const MAX_RSS_KIB: i64 = 512 << 10;
/// Wall time allowed to it.
const MAX_TIME: Duration = Duration::from_secs(10);
/// A command still running by then is killed (the test then fails).
const KILL_AFTER: Duration = Duration::from_secs(60);

struct Run {
    code: i32,
    /// What it wrote: a check's answer on stdout, then stderr.
    stderr: String,
    rss_kib: i64,
    time: Duration,
}

fn fixture() -> String {
    format!(
        "{}/tests/fixtures/zookeeper/3.8.0",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs zkparity with `args` and `env`; its exit code (128 + signal if a
/// signal ended it), stderr, peak RSS and wall time.
fn zkparity(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Run {
    let out_path = dir.join("stdout");
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err_path = dir.join("stderr");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zkparity"));
    cmd.args(args)
        .env("TMPDIR", dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let child = cmd.spawn().expect("zkparity starts");
    let pid = child.id() as libc::pid_t;
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(KILL_AFTER).is_err() {
            // Still our unreaped child: its pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let time = start.elapsed();
    let _ = done_tx.send(());
    watchdog.join().expect("watchdog");
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    // The child was reaped by wait4; dropping the handle only closes pipes.
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let run = Run {
        code,
        stderr: std::fs::read_to_string(&out_path).unwrap_or_default()
            + &std::fs::read_to_string(&err_path).unwrap_or_default(),
        rss_kib: usage.ru_maxrss,
        time,
    };
    eprintln!(
        "zkparity {}: exit {}, peak RSS {} KiB, {:.2} s",
        args.join(" "),
        run.code,
        run.rss_kib,
        run.time.as_secs_f64()
    );
    run
}

/// Exit `code`, the file and a byte of it named, memory and time bounded.
fn refused(run: &Run, code: i32, file: &Path) {
    let name = file.display().to_string();
    assert_eq!(run.code, code, "{}", run.stderr);
    assert!(run.stderr.contains(&name), "names {name}: {}", run.stderr);
    assert!(run.stderr.contains("byte "), "names a byte: {}", run.stderr);
    assert!(
        run.rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB: {}",
        run.rss_kib,
        run.stderr
    );
    assert!(run.time < MAX_TIME, "took {:?}: {}", run.time, run.stderr);
}

fn compare_with_fixture(source: &Path, env: &[(&str, &str)], dir: &Path) -> Run {
    let source = source.to_string_lossy();
    zkparity(
        &[
            "compare",
            "--source",
            &source,
            "--target",
            &fixture(),
            "--quiet",
        ],
        env,
        dir,
    )
}

fn be32(v: &mut Vec<u8>, n: i32) {
    v.extend_from_slice(&n.to_be_bytes());
}

fn be64(v: &mut Vec<u8>, n: i64) {
    v.extend_from_slice(&n.to_be_bytes());
}

/// A data directory whose only log holds one MULTI nested `depth` deep.
fn nested_multi_dir(root: &Path, depth: usize) -> PathBuf {
    let dir = root.join("multi/version-2");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // Innermost: a multi of no operations.
    let mut body = vec![0, 0, 0, 0];
    for _ in 0..depth {
        let mut outer = Vec::with_capacity(body.len() + 12);
        be32(&mut outer, 1);
        be32(&mut outer, 14);
        be32(&mut outer, body.len() as i32);
        outer.extend_from_slice(&body);
        body = outer;
    }
    let mut txn = Vec::new();
    be64(&mut txn, 0x100); // client id
    be32(&mut txn, 1); // cxid
    be64(&mut txn, 1); // zxid
    be64(&mut txn, 0); // time
    be32(&mut txn, 14); // MULTI
    txn.extend_from_slice(&body);
    let mut log = b"ZKLG".to_vec();
    be32(&mut log, 2);
    be64(&mut log, 0);
    let mut sum = adler2::Adler32::new();
    sum.write_slice(&txn);
    be64(&mut log, i64::from(sum.checksum()));
    be32(&mut log, txn.len() as i32);
    log.extend_from_slice(&txn);
    log.push(b'B');
    let path = dir.join("log.1");
    std::fs::write(&path, log).expect("write log");
    path
}

/// A plain ZooKeeper snapshot of a root whose value is `value` bytes.
fn snapshot_with_value(value: usize) -> Vec<u8> {
    let mut s = b"ZKSN".to_vec();
    be32(&mut s, 2);
    be64(&mut s, 0);
    be32(&mut s, 0); // sessions
    be32(&mut s, 0); // ACL lists
    be32(&mut s, 0); // the root's path, ""
    be32(&mut s, value as i32);
    s.resize(s.len() + value, b'x');
    be64(&mut s, -1); // the open ACL
    s.resize(s.len() + 60, 0); // its stat
    be32(&mut s, 1);
    s.push(b'/');
    let mut sum = adler2::Adler32::new();
    sum.write_slice(&s);
    be64(&mut s, i64::from(sum.checksum()));
    be32(&mut s, 1);
    s.push(b'/');
    s
}

#[test]
fn a_log_with_a_multi_nested_in_a_multi_is_refused_at_its_byte() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let log = nested_multi_dir(tmp.path(), 20_000);
    let dir = log.parent().and_then(Path::parent).expect("data dir");
    let run = compare_with_fixture(dir, &[], tmp.path());
    refused(&run, 2, &log);
    assert!(
        run.stderr.contains("multi inside a multi"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_snappy_block_claiming_4_gib_is_refused_without_allocating_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut file = vec![0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
    be32(&mut file, 1);
    be32(&mut file, 1);
    // A block of five bytes: the varint 0xffff_ffff, the length unpacked.
    be32(&mut file, 5);
    file.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let path = tmp.path().join("snapshot.100.snappy");
    std::fs::write(&path, file).expect("write");
    let run = compare_with_fixture(&path, &[], tmp.path());
    refused(&run, 2, &path);
}

#[test]
fn a_check_of_a_crafted_snapshot_answers_unknown() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut file = vec![0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
    be32(&mut file, 1);
    be32(&mut file, 1);
    be32(&mut file, 5);
    file.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let path = tmp.path().join("snapshot.100.snappy");
    std::fs::write(&path, file).expect("write");
    let source = path.to_string_lossy();
    let run = zkparity(
        &[
            "check",
            "parity",
            "--source",
            &source,
            "--target",
            &fixture(),
        ],
        &[],
        tmp.path(),
    );
    refused(&run, 3, &path);
}

#[test]
fn zktreeutil_xml_nested_past_the_depth_limit_is_refused_in_linear_memory() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let depth = 60_000;
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<root>");
    for _ in 0..depth {
        xml.push_str("<zknode name=\"a\">");
    }
    for _ in 0..depth {
        xml.push_str("</zknode>");
    }
    xml.push_str("</root>\n");
    let path = tmp.path().join("deep.xml");
    std::fs::write(&path, xml).expect("write");
    let run = compare_with_fixture(&path, &[], tmp.path());
    refused(&run, 2, &path);
    assert!(run.stderr.contains("4096 deep"), "{}", run.stderr);
}

#[test]
fn a_gzip_snapshot_of_concatenated_zero_members_is_refused_early() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    member.write_all(&vec![0u8; 1 << 20]).expect("compress");
    let member = member.finish().expect("compress");
    // 1 GiB of zeros unpacked, a megabyte or so packed.
    let path = tmp.path().join("bomb.gz");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    for _ in 0..1024 {
        f.write_all(&member).expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    let run = compare_with_fixture(&path, &[], tmp.path());
    refused(&run, 2, &path);
}

#[test]
fn a_value_past_jute_maxbuffer_is_refused_unless_the_server_allowed_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("snapshot.0");
    std::fs::write(&path, snapshot_with_value(3 << 20)).expect("write");
    let run = compare_with_fixture(&path, &[], tmp.path());
    refused(&run, 2, &path);
    assert!(run.stderr.contains("jute.maxbuffer"), "{}", run.stderr);
    // Read as a server with jute.maxbuffer 4 MiB wrote it: a tree, which
    // differs from the fixture's.
    let run = compare_with_fixture(&path, &[("ZKPARITY_JUTE_MAXBUFFER", "4194304")], tmp.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
}

#[test]
fn a_zoo_cfg_sets_the_jute_maxbuffer_its_files_are_read_under() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data/version-2");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("snapshot.0"), snapshot_with_value(3 << 20)).expect("write");
    let cfg = tmp.path().join("zoo.cfg");
    let write_cfg = |extra: &str| {
        std::fs::write(
            &cfg,
            format!("dataDir={}\n{extra}", tmp.path().join("data").display()),
        )
        .expect("write cfg")
    };
    write_cfg("");
    let run = compare_with_fixture(&cfg, &[], tmp.path());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("jute.maxbuffer"), "{}", run.stderr);
    write_cfg("jute.maxbuffer=0x400000\n");
    let run = compare_with_fixture(&cfg, &[], tmp.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
}
