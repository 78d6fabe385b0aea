//! The file sides measured: two `snapshot.<zxid>` files and two data
//! directories compared, each beside ZooKeeper's own `SnapshotComparer` on
//! the same files and beside the SHA-256 bound of the hashes the compare
//! needs; wall and CPU time, cores used and peak RSS of the whole process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::Failure;

/// One finished child process, measured.
pub struct Run {
    pub code: i32,
    pub wall: Duration,
    /// User and system time of the child alone (its rusage from `wait4`).
    pub cpu: Duration,
    /// Peak RSS (KiB), from `/proc/PID/status` while it ran.
    pub rss_kib: i64,
    pub stdout: String,
}

/// Peak RSS (KiB) of a process, from its own address space's high-water mark.
fn vm_hwm_kib(pid: u32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Runs `cmd` to its end with its stdout captured.
///
/// Peak RSS is read from `/proc/PID/status` (VmHWM) while the child runs, not
/// from `wait4`'s `ru_maxrss`: the latter also counts the parent's memory,
/// which the child shares between fork and exec, and this benchmark holds a
/// million paths. CPU time is `wait4`'s: the child's own, whatever else this
/// process has running.
pub fn run(cmd: &mut Command) -> Result<Run, Failure> {
    let started = Instant::now();
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn()?;
    let pid = child.id();
    let mut pipe = child.stdout.take().ok_or("no stdout pipe")?;
    let output = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut s).map(|_| s)
    });
    let mut peak = 0;
    let (status, usage) = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: the pid is our own child, not yet reaped; wait4 writes
        // only into the two locals.
        let got = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut usage) };
        if got == pid as i32 {
            break (status, usage);
        }
        if got < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    // Reaped above: the handle has nothing left to wait for.
    drop(child);
    let stdout = output.join().map_err(|_| "reader thread panicked")??;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok(Run {
        code,
        wall,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        rss_kib: peak,
        stdout,
    })
}

/// Medians of several runs of one command, and the highest peak RSS.
struct Figures {
    wall: f64,
    cpu: f64,
    rss_mib: f64,
    runs: Vec<f64>,
}

impl Figures {
    fn of(runs: &[Run]) -> Figures {
        let median = |f: &dyn Fn(&Run) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        Figures {
            wall: median(&|r| r.wall.as_secs_f64()),
            cpu: median(&|r| r.cpu.as_secs_f64()),
            rss_mib: runs.iter().map(|r| r.rss_kib).max().unwrap_or(0) as f64 / 1024.0,
            runs: runs.iter().map(|r| r.wall.as_secs_f64()).collect(),
        }
    }

    fn cores(&self) -> f64 {
        self.cpu / self.wall.max(1e-9)
    }

    fn runs(&self) -> String {
        let v: Vec<String> = self.runs.iter().map(|r| format!("{r:.2}")).collect();
        v.join(", ")
    }
}

/// The newest `snapshot.<zxid>` of a server's dataDir.
fn newest_snapshot(data: &Path) -> Result<PathBuf, Failure> {
    let dir = data.join("version-2");
    let mut best: Option<(i64, PathBuf)> = None;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let zxid = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("snapshot."))
            .and_then(|z| i64::from_str_radix(z, 16).ok());
        if let Some(z) = zxid {
            if best.as_ref().map_or(true, |(b, _)| z > *b) {
                best = Some((z, path));
            }
        }
    }
    best.map(|(_, p)| p)
        .ok_or_else(|| format!("no snapshot in {}", dir.display()).into())
}

/// The classpath of Debian's ZooKeeper 3.8 and what its tools need.
fn zookeeper_classpath() -> Option<String> {
    let java = Path::new("/usr/share/java");
    let jars = [
        "zookeeper.jar",
        "zookeeper-jute.jar",
        "commons-cli.jar",
        "slf4j-api.jar",
        "slf4j-nop.jar",
        "snappy-java.jar",
    ];
    let paths: Vec<String> = jars
        .iter()
        .map(|j| java.join(j))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    (paths.len() >= 4).then(|| paths.join(":"))
}

/// `SnapshotComparer` of ZooKeeper 3.8 on the two files; `None` if it is
/// not installed.
fn snapshot_comparer(a: &Path, b: &Path) -> Result<Option<Run>, Failure> {
    let Some(cp) = zookeeper_classpath() else {
        return Ok(None);
    };
    let run = run(Command::new("java")
        .args(["-cp", &cp, "org.apache.zookeeper.server.SnapshotComparer"])
        .arg("-l")
        .arg(a)
        .arg("-r")
        .arg(b)
        .args(["-b", "2", "-n", "1"])
        .stderr(std::process::Stdio::null()))?;
    if run.code != 0 {
        return Err(format!("SnapshotComparer exited {}: {}", run.code, run.stdout).into());
    }
    Ok(Some(run))
}

/// SHA-256 of 64-byte inputs per second, on one thread and on `threads`
/// at once (the sha2 crate the digests use).
fn sha256_rates(threads: usize) -> (f64, f64) {
    fn hash_for(time: Duration) -> u64 {
        let mut input = [7u8; 64];
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < time {
            for _ in 0..1000 {
                let h = Sha256::digest(input);
                input[..32].copy_from_slice(&h);
                n += 1;
            }
        }
        std::hint::black_box(input);
        n
    }
    let time = Duration::from_millis(500);
    let one = hash_for(time) as f64 / time.as_secs_f64();
    let started = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| hash_for(time))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let all = total as f64 / started.elapsed().as_secs_f64();
    (one, all)
}

/// SHA-256 computations of a compare, per node and side: the data, the node
/// digest, the subtree checksum and the subtree's ACL fingerprint
/// (docs/digest.md).
const HASHES_PER_NODE: u64 = 4;

/// Compares `a` with `b` `runs` times, checking every run walked `nodes`
/// per side and found them identical.
fn compare_files(a: &Path, b: &Path, nodes: u64, runs: usize) -> Result<Vec<Run>, Failure> {
    let (a, b) = (
        a.to_str().ok_or("non-UTF-8 work path")?,
        b.to_str().ok_or("non-UTF-8 work path")?,
    );
    let mut out = Vec::new();
    for _ in 0..runs {
        let run = crate::compare_tree(a, b, &[])?;
        if run.code != 0 {
            return Err(
                format!("compare of {a} and {b} exited {}: {}", run.code, run.stdout).into(),
            );
        }
        let report: serde_json::Value = serde_json::from_str(&run.stdout)?;
        let walked = report["summary"]["source"]["nodes"].as_u64().unwrap_or(0);
        if walked != nodes {
            return Err(format!("{a}: walked {walked} nodes, the tree has {nodes}").into());
        }
        out.push(run);
    }
    Ok(out)
}

/// Whether the newest snapshot of `work`'s source holds the whole tree
/// (`nodes` below /tree): a server snapshots when it starts, so a tree
/// built and stopped may hold its last nodes only in the logs.
fn snapshot_is_whole(work: &Path, nodes: u64) -> Result<bool, Failure> {
    let snap = newest_snapshot(&work.join("source").join("data"))?;
    let snap = snap.to_str().ok_or("non-UTF-8 work path")?;
    let run = crate::compare_tree(snap, snap, &[])?;
    // A snapshot taken before /tree was made fails the compare.
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
    Ok(report["summary"]["source"]["nodes"].as_u64() == Some(nodes))
}

/// Starts and stops each side's server once, so it writes a snapshot of
/// the whole tree.
pub fn snapshot_whole(work: &Path, nodes: u64) -> Result<(), Failure> {
    if snapshot_is_whole(work, nodes)? {
        return Ok(());
    }
    eprintln!("starting the servers once, for snapshots of the whole tree ...");
    for side in ["source", "target"] {
        let mut s =
            zkparity_sandbox::ZkServer::start_standalone(&crate::server_options(&work.join(side)))?;
        s.stop();
    }
    if !snapshot_is_whole(work, nodes)? {
        return Err(format!("{}: no snapshot holds the whole tree", work.display()).into());
    }
    Ok(())
}

/// The file sides of one tree: two snapshot files and two data directories
/// compared, `runs` times each, medians printed beside `SnapshotComparer`
/// and the SHA-256 bound.
pub fn bench(work: &Path, nodes: u64, runs: usize) -> Result<(), Failure> {
    snapshot_whole(work, nodes)?;
    let data = |side: &str| work.join(side).join("data");
    let (sa, sb) = (
        newest_snapshot(&data("source"))?,
        newest_snapshot(&data("target"))?,
    );
    let files = Figures::of(&compare_files(&sa, &sb, nodes, runs)?);
    let dirs = Figures::of(&compare_files(
        &data("source"),
        &data("target"),
        nodes,
        runs,
    )?);
    let mut theirs = Vec::new();
    for _ in 0..runs {
        match snapshot_comparer(&sa, &sb)? {
            Some(r) => theirs.push(r),
            None => break,
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (one, all) = sha256_rates(cores);
    let hashes = HASHES_PER_NODE * nodes * 2;
    let bound_one = hashes as f64 / one;
    let bound_all = hashes as f64 / all;
    println!(
        "  file sides, {nodes} nodes per side, medians of {runs} runs (whole process; {cores} cores here)"
    );
    println!(
        "    SHA-256 of 64-byte inputs: {:.2} M/s on one core, {:.2} M/s on {cores}; the compare's {:.2} M hashes ({HASHES_PER_NODE} per node and side): {:.3}s on one core, {:.3}s on {cores}",
        one / 1e6,
        all / 1e6,
        hashes as f64 / 1e6,
        bound_one,
        bound_all
    );
    let line = |what: &str, f: &Figures| {
        println!(
            "    {what:<28} {:>6.2}s wall  {:>6.2}s CPU  {:>4.2} cores  peak RSS {:>7.1} MiB  {:>5.2}x the {cores}-core SHA bound  (runs: {})",
            f.wall,
            f.cpu,
            f.cores(),
            f.rss_mib,
            f.wall / bound_all,
            f.runs()
        );
    };
    line("two snapshot files compared", &files);
    line("two data directories compared", &dirs);
    if theirs.is_empty() {
        println!("    SnapshotComparer: not installed (Debian's zookeeper package has it)");
        return Ok(());
    }
    let zk = Figures::of(&theirs);
    println!(
        "    {:<28} {:>6.2}s wall  {:>6.2}s CPU  {:>4.2} cores  peak RSS {:>7.1} MiB  (ZooKeeper 3.8, -b 2 -n 1; runs: {})",
        "SnapshotComparer, same files",
        zk.wall,
        zk.cpu,
        zk.cores(),
        zk.rss_mib,
        zk.runs()
    );
    println!(
        "    two files: {:.1}x faster than SnapshotComparer, {:.1}% of its peak RSS; two directories: {:.1}x faster",
        zk.wall / files.wall,
        100.0 * files.rss_mib / zk.rss_mib,
        zk.wall / dirs.wall
    );
    Ok(())
}
