//! Benchmark: `zkparity compare` on an identical pair of large trees, beside
//! the ceilings measured against the same servers in the same run: pipelined
//! getACL alone (several sessions) and batched multi-reads alone.
//!
//! Prints figures; asserts nothing about speed (a timed test would flake).
//! Run through `scripts/bench`; arguments: `--shape FANOUTxDEPTH` (repeatable,
//! default 20x4 and 10x6; `none` for the releases alone), `--value-size N` (default 64), `--sessions N`
//! (default 4), `--hold` (start the servers on the built trees, print their
//! connect strings and wait, for profiling by hand), `--releases LIST`
//! (default `3.4.6,3.8.0`; `none` to skip): the same compare of a 20x4 tree
//! on a pair of servers of each release, so a 3.4 server (no multi-read:
//! pipelined single reads) is measured beside 3.8; `--sync` (default on
//! for trees under 500k nodes; `--no-sync` to skip): `zkparity sync` on a
//! copy of the tree while a writer changes the source at a steady rate,
//! then as fast as it can: the lag sync reports, the changes it copies per
//! second, and how long its final compare at cutover takes (`--sync-only`:
//! that alone); `--only files`: the file sides alone (two `snapshot.<zxid>`
//! files and two data directories, beside ZooKeeper's `SnapshotComparer`
//! and the SHA-256 bound), `--runs N` times each (default 5, medians).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use zkparity_sandbox::seed;
use zkparity_sandbox::{Release, ServerOptions, ZkServer};
use zookeeper_client as zk;

mod files;

struct Shape {
    fanout: usize,
    depth: usize,
}

impl Shape {
    fn nodes(&self) -> u64 {
        (1..=self.depth)
            .map(|d| (self.fanout as u64).pow(d as u32))
            .sum::<u64>()
            + 1
    }
    fn label(&self) -> String {
        format!("{}x{}", self.fanout, self.depth)
    }
}

type Failure = Box<dyn std::error::Error>;

/// The binary measured: this build's, or `ZKPARITY_BENCH_BIN` (another
/// build, for a before-and-after on the same trees).
fn zkparity_bin() -> PathBuf {
    std::env::var_os("ZKPARITY_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_zkparity")))
}

/// Sessions per side of the getACL ceiling (at least).
const CEILING_SESSIONS: usize = 8;
/// What `zkparity compare` uses when not told (`--sessions`).
fn default_sessions() -> usize {
    zkparity::tree::ReaderOptions::default().sessions
}

fn server_options(dir: &Path) -> ServerOptions {
    ServerOptions {
        heap_mb: 3072,
        base_dir: Some(dir.to_path_buf()),
        ..ServerOptions::default()
    }
}

async fn connect(s: &ZkServer) -> Result<zk::Client, Failure> {
    connect_to(s, Release::default()).await
}

/// A session that writes as `release` understands (3.4 knows no Create2).
async fn connect_to(s: &ZkServer, release: Release) -> Result<zk::Client, Failure> {
    let mut c = zk::Client::connector().with_session_timeout(Duration::from_secs(30));
    if !release.is_3_5_or_later() {
        c = c.with_server_version(3, 4, 6);
    }
    Ok(c.connect(&s.connect_string()).await?)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), Failure> {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    if !status.success() {
        return Err(format!("cp -a {} {} failed", from.display(), to.display()).into());
    }
    Ok(())
}

/// Builds the tree once into `work/source`, copies it to `work/target`, and
/// keeps both for later runs.
async fn prepare(work: &Path, shape: &Shape, value_size: usize) -> Result<(), Failure> {
    let marker = work.join("complete");
    if marker.exists() {
        eprintln!("reusing the {} tree in {}", shape.label(), work.display());
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    let source_dir = work.join("source");
    eprintln!("building {} nodes ({}) ...", shape.nodes(), shape.label());
    let started = Instant::now();
    {
        let mut server = ZkServer::start_standalone(&server_options(&source_dir))?;
        let c = connect(&server).await?;
        let n =
            seed::create_uniform_tree(&c, "/tree", shape.fanout, shape.depth, value_size).await?;
        drop(c);
        server.stop();
        eprintln!(
            "  created {n} nodes in {:.1}s ({:.0}/s)",
            started.elapsed().as_secs_f64(),
            n as f64 / started.elapsed().as_secs_f64()
        );
    }
    copy_dir(&source_dir, &work.join("target"))?;
    std::fs::write(marker, shape.label())?;
    Ok(())
}

/// Exit code, wall time, peak RSS (KiB) and stdout of a child process.
fn run_measured(cmd: &mut Command) -> Result<(i32, Duration, i64, String), Failure> {
    let r = files::run(cmd)?;
    Ok((r.code, r.wall, r.rss_kib, r.stdout))
}

/// `zkparity compare` of `/tree` from `source` (a connect string or a
/// file) to `target`, measured; `extra` flags after the shared ones.
fn compare_tree(source: &str, target: &str, extra: &[&str]) -> Result<files::Run, Failure> {
    files::run(
        Command::new(zkparity_bin())
            .args([
                "compare",
                "--source",
                source,
                "--target",
                target,
                "--path",
                "/tree",
                "--format",
                "json",
                "--recheck-delay",
                "off",
                "--quiet",
            ])
            .args(extra),
    )
}

/// Pipelined getACL of every path on both servers at once, `sessions`
/// sessions per server, `window` requests in flight per server.
async fn acl_ceiling(
    servers: [&ZkServer; 2],
    paths: &[String],
    sessions: usize,
) -> Result<Duration, Failure> {
    let mut clients = Vec::new();
    for s in servers {
        let mut v = Vec::new();
        for _ in 0..sessions {
            v.push(connect(s).await?);
        }
        clients.push(v);
    }
    let started = Instant::now();
    let one = |side: &Vec<zk::Client>| {
        let side = side.clone();
        async move {
            let results: Vec<_> = stream::iter(paths.iter().enumerate())
                .map(|(i, p)| {
                    let c = side[i % side.len()].clone();
                    async move { c.get_acl(p).await.map(|_| ()) }
                })
                .buffer_unordered(1600)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<_>, _>>()
        }
    };
    let (a, b) = futures::join!(one(&clients[0]), one(&clients[1]));
    a?;
    b?;
    Ok(started.elapsed())
}

/// Batched multi-reads (data + children) of every path on both servers at
/// once, 200 nodes a batch, 8 batches in flight per server, one session.
async fn multiread_ceiling(servers: [&ZkServer; 2], paths: &[String]) -> Result<Duration, Failure> {
    let a = connect(servers[0]).await?;
    let b = connect(servers[1]).await?;
    let started = Instant::now();
    let one = |c: &zk::Client| {
        let c = c.clone();
        async move {
            let results: Vec<_> = stream::iter(paths.chunks(200))
                .map(|chunk| {
                    let c = c.clone();
                    async move {
                        let mut m = c.new_multi_reader();
                        for p in chunk {
                            m.add_get_data(p)?;
                            m.add_get_children(p)?;
                        }
                        m.commit().await.map(|_| ())
                    }
                })
                .buffer_unordered(8)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<_>, zk::Error>>()
        }
    };
    let (x, y) = futures::join!(one(&a), one(&b));
    x?;
    y?;
    Ok(started.elapsed())
}

/// Two in-process compares sharing ACL caches, as the agent's rounds do:
/// the first reads every ACL, the second only those that could have changed.
async fn cached_rounds(
    servers: [&ZkServer; 2],
    sessions: usize,
) -> Result<(Duration, Duration), Failure> {
    use zkparity::aclcache::AclCache;
    use zkparity::compare::CompareOptions;
    use zkparity::connect::EnsembleSpec;
    let spec = |side, server: &ZkServer| -> Result<EnsembleSpec, Failure> {
        let mut spec = EnsembleSpec::plain(side, &server.connect_string())?;
        spec.session_timeout = Duration::from_secs(30);
        Ok(spec)
    };
    let (source, target) = (spec("source", servers[0])?, spec("target", servers[1])?);
    let mut options = CompareOptions::defaults("/tree")?;
    options.reader.sessions = sessions;
    options.recheck_delay = None;
    options.acl_caches = [Some(AclCache::new()), Some(AclCache::new())];
    let mut times = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        let mut quiet = zkparity::progress::Progress::new(false);
        let report = zkparity::compare::compare(&source, &target, &options, &mut quiet).await?;
        if !report.summary.identical {
            return Err("cached round found differences in an identical pair".into());
        }
        times.push(started.elapsed());
    }
    Ok((times[0], times[1]))
}

async fn bench_shape(
    root: &Path,
    shape: &Shape,
    value_size: usize,
    sessions: Option<usize>,
    hold: bool,
    (sync, sync_only): (bool, bool),
    only: Only,
) -> Result<(), Failure> {
    let work = root.join(format!("tree-{}-{value_size}b", shape.label()));
    prepare(&work, shape, value_size).await?;
    if let Only::Files(runs) = only {
        println!();
        println!(
            "shape {} ({} nodes per side, {value_size}-byte values)",
            shape.label(),
            shape.nodes()
        );
        return files::bench(&work, shape.nodes(), runs);
    }
    if sync_only {
        let mut paths = vec!["/tree".to_string()];
        paths.extend(seed::uniform_tree_paths("/tree", shape.fanout, shape.depth));
        println!();
        println!(
            "shape {} ({} nodes per side, {value_size}-byte values)",
            shape.label(),
            paths.len()
        );
        return bench_sync(&work, &paths).await;
    }
    let (s, t) = {
        let sd = work.join("source");
        let source = std::thread::spawn(move || ZkServer::start_standalone(&server_options(&sd)));
        let target = ZkServer::start_standalone(&server_options(&work.join("target")))?;
        let source = source.join().map_err(|_| "server start panicked")??;
        (source, target)
    };
    let mut paths = vec!["/tree".to_string()];
    paths.extend(seed::uniform_tree_paths("/tree", shape.fanout, shape.depth));
    let per_side = paths.len() as f64;
    if hold {
        println!(
            "source {}  target {}  (holding; interrupt to stop)",
            s.connect_string(),
            t.connect_string()
        );
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    // Warm both servers' JIT and caches the same way for every measurement.
    multiread_ceiling([&s, &t], &paths).await?;

    // The ceiling is getACL with as many sessions as pays (8 reach it on
    // this machine; more only queue); compare runs with its defaults, and
    // with `--sessions N` when the benchmark was given one.
    let ceiling_sessions = sessions.unwrap_or(CEILING_SESSIONS).max(CEILING_SESSIONS);
    let (src, dst) = (s.connect_string(), t.connect_string());
    let sessions_arg = sessions.map(|n| n.to_string());
    let flags: Vec<&str> = match &sessions_arg {
        Some(n) => vec!["--sessions", n],
        None => Vec::new(),
    };
    let compare_once =
        || compare_tree(&src, &dst, &flags).map(|r| (r.code, r.wall, r.rss_kib, r.stdout));
    let acl = acl_ceiling([&s, &t], &paths, ceiling_sessions).await?;
    let multi = multiread_ceiling([&s, &t], &paths).await?;
    let (code, wall, rss_kib, out) = compare_once()?;
    let acl2 = acl_ceiling([&s, &t], &paths, ceiling_sessions).await?;
    let (code2, wall2, rss2, _) = compare_once()?;
    if code != 0 || code2 != 0 {
        return Err(format!("compare of an identical pair exited {code}/{code2}: {out}").into());
    }
    let report: serde_json::Value = serde_json::from_str(&out)?;
    let walked = report["summary"]["source"]["nodes"].as_u64().unwrap_or(0);
    if walked != paths.len() as u64 {
        return Err(format!(
            "walked {walked} nodes per side, the tree has {}",
            paths.len()
        )
        .into());
    }
    let rate = |d: Duration| per_side / d.as_secs_f64();
    let acl_best = acl.min(acl2);
    let cmp_best = wall.min(wall2);
    let settings = match &sessions_arg {
        Some(n) => format!("--sessions {n}"),
        None => "default settings".to_string(),
    };
    println!();
    println!(
        "shape {} ({} nodes per side, {value_size}-byte values)",
        shape.label(),
        paths.len()
    );
    println!(
        "  getACL ceiling, both sides {:>8.2}s  {:>9.0} nodes/s per side   ({ceiling_sessions} sessions per side; runs: {:.2}s, {:.2}s)",
        acl_best.as_secs_f64(),
        rate(acl_best),
        acl.as_secs_f64(),
        acl2.as_secs_f64()
    );
    println!(
        "  multi-read alone, both     {:>8.2}s  {:>9.0} nodes/s per side",
        multi.as_secs_f64(),
        rate(multi)
    );
    println!(
        "  zkparity compare           {:>8.2}s  {:>9.0} nodes/s per side   ({settings}; runs: {:.2}s, {:.2}s; whole process)",
        cmp_best.as_secs_f64(),
        rate(cmp_best),
        wall.as_secs_f64(),
        wall2.as_secs_f64()
    );
    println!(
        "  compare / getACL ceiling   {:>8.2}",
        rate(cmp_best) / rate(acl_best)
    );
    // A compare makes both reads of every node on the same servers: when
    // their CPUs are the bound, that bound is the harmonic sum of the two.
    let both = 1.0 / (1.0 / rate(acl_best) + 1.0 / rate(multi));
    println!(
        "  compare / both reads' bound {:>7.2}   (getACL and multi-read of every node: {:.0} nodes/s per side)",
        rate(cmp_best) / both,
        both
    );
    println!(
        "  peak RSS of compare        {:>8.1} MiB  (runs: {:.1}, {:.1})",
        rss_kib.max(rss2) as f64 / 1024.0,
        rss_kib as f64 / 1024.0,
        rss2 as f64 / 1024.0
    );
    bench_data_dirs(&work, per_side, rate(acl_best))?;
    if let Only::All(runs) = only {
        files::bench(&work, shape.nodes(), runs)?;
    }
    let sessions = sessions.unwrap_or_else(default_sessions);
    let (cold, warm) = cached_rounds([&s, &t], sessions).await?;
    println!(
        "  repeated rounds (ACL cache) {:>7.2}s first, {:.2}s next: {:.0}% of the first",
        cold.as_secs_f64(),
        warm.as_secs_f64(),
        100.0 * warm.as_secs_f64() / cold.as_secs_f64()
    );
    bench_snapshots(&work, &s, &t, per_side)?;
    if sync && paths.len() < 500_000 {
        drop((s, t));
        bench_sync(&work, &paths).await?;
    }
    Ok(())
}

/// Percentile `p` (0..=100) of `v`, sorted in place.
fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p / 100.0).round() as usize]
}

/// `zkparity sync` between copies of the built pair: the initial pass over
/// an identical tree, then a writer setting data on the source's nodes at
/// 200/s for 15 s and as fast as one session can for 10 s; the lag sync
/// reports per pass, the changes it copied per second, and its final
/// compare's time at cutover.
async fn bench_sync(work: &Path, paths: &[String]) -> Result<(), Failure> {
    use std::io::{BufRead, BufReader};
    let dir = work.join("sync-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    copy_dir(&work.join("source"), &dir.join("source"))?;
    copy_dir(&work.join("target"), &dir.join("target"))?;
    let (s, t) = {
        let sd = dir.join("source");
        let source = std::thread::spawn(move || ZkServer::start_standalone(&server_options(&sd)));
        let target = ZkServer::start_standalone(&server_options(&dir.join("target")))?;
        (source.join().map_err(|_| "server start panicked")??, target)
    };
    let started = Instant::now();
    let mut child = Command::new(zkparity_bin())
        .args([
            "sync",
            "--source",
            &s.connect_string(),
            "--target",
            &t.connect_string(),
            "--path",
            "/tree",
            "--apply",
            // The target is the benchmark's own, made for it.
            "--no-backup",
            "--format",
            "json",
            "--quiet",
            "--settle",
            "200ms",
            "--max-wait",
            "1s",
            "--until-quiet",
            "3s",
            "--recheck-delay",
            "off",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let out = child.stdout.take().ok_or("sync's stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, serde_json::Value)>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send((Instant::now(), v));
            }
        }
    });
    let wait_for = |event: &str| -> Result<(Instant, serde_json::Value), Failure> {
        loop {
            let (at, v) = rx
                .recv_timeout(Duration::from_secs(600))
                .map_err(|_| format!("sync said no {event}"))?;
            if v["event"] == event {
                return Ok((at, v));
            }
        }
    };
    let (copied_at, _) = wait_for("copied")?;
    let initial = copied_at.duration_since(started);
    // Other work on the machine moves these figures: said beside them.
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into())
    };
    let load_before = load();

    let c = connect(&s).await?;
    let leaves: Vec<&String> = paths.iter().filter(|p| p.len() > 6).collect();
    let mut phases = Vec::new();
    let mut n = 0usize;
    for (label, rate, secs) in [
        ("steady 200 writes/s", Some(200u32), 15u64),
        ("as fast as it can", None, 10),
    ] {
        let phase_start = Instant::now();
        let mut written = 0u64;
        while phase_start.elapsed() < Duration::from_secs(secs) {
            // Steady: r/100 writes every 10 ms tick; else 64 in flight, back
            // to back.
            let tick = Instant::now();
            let burst = rate.map_or(64, |r| (r / 100).max(1) as usize);
            let writes = (0..burst).map(|_| {
                n += 1;
                let p = leaves[n * 7919 % leaves.len()].clone();
                let c = c.clone();
                async move { c.set_data(&p, format!("w{n}").as_bytes(), None).await }
            });
            for w in futures::future::join_all(writes).await {
                w?;
                written += 1;
            }
            if rate.is_some() {
                tokio::time::sleep_until((tick + Duration::from_millis(10)).into()).await;
            }
        }
        phases.push((label, written, phase_start, Instant::now()));
    }
    let writes_done = Instant::now();
    // Until cutover: every followed pass, with when it was reported.
    let mut passes = Vec::new();
    let verified = loop {
        let (at, v) = rx
            .recv_timeout(Duration::from_secs(600))
            .map_err(|_| "sync never cut over")?;
        match v["event"].as_str() {
            Some("followed") => passes.push((at, v)),
            Some("verified") => break v,
            _ => {}
        }
    };
    let (_, report) = rx
        .recv_timeout(Duration::from_secs(600))
        .map_err(|_| "no final report")?;
    let status = child.wait()?;
    let _ = reader.join();
    let drained = passes.last().map_or(writes_done, |(at, _)| *at);
    println!(
        "  sync: initial pass over the identical pair {:.2}s ({:.0} nodes/s per side)",
        initial.as_secs_f64(),
        paths.len() as f64 / initial.as_secs_f64()
    );
    for (label, written, from, to) in &phases {
        let mut lags: Vec<f64> = passes
            .iter()
            .filter(|(at, _)| at >= from && at <= to)
            .filter_map(|(_, v)| v["lag_seconds"].as_f64())
            .collect();
        let secs = to.duration_since(*from).as_secs_f64();
        println!(
            "  sync, {label:<20} {:>7.0} writes/s on the source; lag p50 {:.2}s, p95 {:.2}s, max {:.2}s ({} passes)",
            *written as f64 / secs,
            percentile(&mut lags.clone(), 50.0),
            percentile(&mut lags.clone(), 95.0),
            percentile(&mut lags, 100.0),
            passes.iter().filter(|(at, _)| at >= from && at <= to).count()
        );
    }
    if let Some((_, written, from, to)) = phases.last() {
        let busy = to.duration_since(*from) + drained.saturating_duration_since(writes_done);
        println!(
            "  sync under the fastest writes: {:.0} changes/s copied (until caught up)",
            *written as f64 / busy.as_secs_f64()
        );
    }
    let total_written: u64 = phases.iter().map(|p| p.1).sum();
    let follow_secs = drained.duration_since(phases[0].2).as_secs_f64();
    println!(
        "  sync followed {} changed paths ({} writes) in {:.1}s: {:.0} writes/s copied; caught up {:.2}s after the last write",
        verified["changes_followed"],
        total_written,
        follow_secs,
        total_written as f64 / follow_secs,
        drained.saturating_duration_since(writes_done).as_secs_f64()
    );
    println!(
        "  load average while following: {load_before} before, {} after",
        load()
    );
    println!(
        "  sync's final compare at cutover {:.2}s over {} nodes per side; identical: {} (exit {})",
        report["summary"]["elapsed_seconds"].as_f64().unwrap_or(0.0),
        report["summary"]["source"]["nodes"],
        report["summary"]["identical"],
        status.code().unwrap_or(-1)
    );
    drop((s, t));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The servers' own data directories compared (no server involved),
/// twice, beside the live getACL ceiling measured in the same run.
fn bench_data_dirs(work: &Path, per_side: f64, ceiling: f64) -> Result<(), Failure> {
    let dir = |side: &str| work.join(side).join("data");
    let (a, b) = (dir("source"), dir("target"));
    let (a, b) = (
        a.to_str().ok_or("non-UTF-8 work path")?,
        b.to_str().ok_or("non-UTF-8 work path")?,
    );
    let mut runs = Vec::new();
    for _ in 0..2 {
        let r = compare_tree(a, b, &[])?;
        if r.code != 0 {
            return Err(format!(
                "compare of the data directories exited {}: {}",
                r.code, r.stdout
            )
            .into());
        }
        runs.push((r.wall, r.rss_kib));
    }
    let best = runs.iter().map(|r| r.0).min().unwrap_or_default();
    let rss = runs.iter().map(|r| r.1).max().unwrap_or(0);
    let rate = per_side / best.as_secs_f64();
    println!(
        "  data directories compared  {:>8.2}s  {:>9.0} nodes/s per side   {:.1}x the getACL ceiling; peak RSS {:.1} MiB (runs: {:.2}s, {:.2}s; whole process)",
        best.as_secs_f64(),
        rate,
        rate / ceiling,
        rss as f64 / 1024.0,
        runs[0].0.as_secs_f64(),
        runs[1].0.as_secs_f64()
    );
    Ok(())
}

/// A snapshot of the source (plain and gzip), then a compare of each file
/// against the live target: time, peak RSS and size on disk.
fn bench_snapshots(work: &Path, s: &ZkServer, t: &ZkServer, per_side: f64) -> Result<(), Failure> {
    let bin = zkparity_bin();
    for (label, file, extra) in [
        ("plain", work.join("bench.zkps"), None),
        ("gzip", work.join("bench.zkps.gz"), Some("--compress")),
    ] {
        let file_arg = file.to_str().ok_or("non-UTF-8 work path")?;
        let mut cmd = Command::new(&bin);
        cmd.args([
            "snapshot",
            "--server",
            &s.connect_string(),
            "--path",
            "/tree",
            "--out",
            file_arg,
            "--quiet",
        ]);
        cmd.args(extra);
        let (code, wall, rss, out) = run_measured(&mut cmd)?;
        if code != 0 {
            return Err(format!("snapshot exited {code}: {out}").into());
        }
        let size = std::fs::metadata(&file)?.len();
        let files::Run {
            code,
            wall: cwall,
            rss_kib: crss,
            stdout: out,
            ..
        } = compare_tree(file_arg, &t.connect_string(), &[])?;
        if code != 0 {
            return Err(format!("compare with the {label} snapshot exited {code}: {out}").into());
        }
        println!(
            "  snapshot ({label:5})           {:>8.2}s  {:>9.0} nodes/s   peak RSS {:.1} MiB, file {:.1} MiB",
            wall.as_secs_f64(),
            per_side / wall.as_secs_f64(),
            rss as f64 / 1024.0,
            size as f64 / (1024.0 * 1024.0)
        );
        println!(
            "  compare {label:5} file vs live  {:>8.2}s  {:>9.0} nodes/s   peak RSS {:.1} MiB",
            cwall.as_secs_f64(),
            per_side / cwall.as_secs_f64(),
            crss as f64 / 1024.0
        );
        std::fs::remove_file(&file)?;
    }
    Ok(())
}

/// `zkparity compare` of a `shape` tree on a pair of `release` servers
/// (built once per release under `root`), beside the getACL ceiling of the
/// same servers.
async fn bench_release(
    root: &Path,
    shape: &Shape,
    release: Release,
    sessions: usize,
) -> Result<(), Failure> {
    let work = root.join(format!("release-{release}-{}", shape.label()));
    let options = |dir: &Path| ServerOptions {
        release,
        ..server_options(dir)
    };
    if !work.join("complete").exists() {
        let _ = std::fs::remove_dir_all(&work);
        for side in ["source", "target"] {
            let mut server = ZkServer::start_standalone(&options(&work.join(side)))?;
            let c = connect_to(&server, release).await?;
            eprintln!("building {} nodes on a {release} {side} ...", shape.nodes());
            if release.is_3_5_or_later() {
                seed::create_uniform_tree(&c, "/tree", shape.fanout, shape.depth, 64).await?;
            } else {
                seed::create_uniform_tree_singly(&c, "/tree", shape.fanout, shape.depth, 64)
                    .await?;
            }
            drop(c);
            server.stop();
        }
        std::fs::write(work.join("complete"), shape.label())?;
    }
    let sd = work.join("source");
    let so = options(&sd);
    let source = std::thread::spawn(move || ZkServer::start_standalone(&so));
    let t = ZkServer::start_standalone(&options(&work.join("target")))?;
    let s = source.join().map_err(|_| "server start panicked")??;
    let mut paths = vec!["/tree".to_string()];
    paths.extend(seed::uniform_tree_paths("/tree", shape.fanout, shape.depth));
    let per_side = paths.len() as f64;
    // Warm both servers the same way as the compare will read them.
    acl_ceiling([&s, &t], &paths, sessions).await?;
    let acl = acl_ceiling([&s, &t], &paths, sessions).await?;
    let mut best = Duration::MAX;
    for _ in 0..2 {
        let r = compare_tree(
            &s.connect_string(),
            &t.connect_string(),
            &["--sessions", &sessions.to_string()],
        )?;
        if r.code != 0 {
            return Err(format!("compare on {release} exited {}: {}", r.code, r.stdout).into());
        }
        best = best.min(r.wall);
    }
    println!(
        "  {release:<7} {} nodes per side: compare {:>7.2}s {:>9.0} nodes/s per side, getACL ceiling {:>9.0} nodes/s ({})",
        paths.len(),
        best.as_secs_f64(),
        per_side / best.as_secs_f64(),
        per_side / acl.as_secs_f64(),
        if release.is_3_5_or_later() {
            "multi-read"
        } else {
            "no multi-read: pipelined single reads"
        }
    );
    Ok(())
}

/// What a run measures, and how many runs of each file-side compare.
#[derive(Clone, Copy)]
enum Only {
    All(usize),
    /// `--only files`: two snapshot files and two data directories, beside
    /// `SnapshotComparer` and the SHA-256 bound, and nothing live.
    Files(usize),
}

fn main() -> Result<(), Failure> {
    let mut shapes = Vec::new();
    let mut value_size = 64;
    let mut sessions = None;
    let mut hold = false;
    let mut releases = vec![Release::V3_4_6, Release::V3_8_0];
    let mut no_shapes = false;
    let mut sync = true;
    let mut sync_only = false;
    let mut only_files = false;
    let mut runs = 5;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--shape" => {
                let v = args.next().ok_or("--shape needs FANOUTxDEPTH")?;
                if v == "none" {
                    no_shapes = true;
                    continue;
                }
                let (f, d) = v.split_once('x').ok_or("--shape needs FANOUTxDEPTH")?;
                shapes.push(Shape {
                    fanout: f.parse()?,
                    depth: d.parse()?,
                });
            }
            "--value-size" => value_size = args.next().ok_or("--value-size needs N")?.parse()?,
            "--sessions" => sessions = Some(args.next().ok_or("--sessions needs N")?.parse()?),
            "--hold" => hold = true,
            "--no-sync" => sync = false,
            "--sync-only" => sync_only = true,
            "--only" => match args.next().as_deref() {
                Some("files") => only_files = true,
                _ => return Err("--only needs files".into()),
            },
            "--runs" => runs = args.next().ok_or("--runs needs N")?.parse()?,
            "--releases" => {
                let v = args.next().ok_or("--releases needs a list, or none")?;
                releases = if v == "none" {
                    Vec::new()
                } else {
                    v.split(',')
                        .map(|r| {
                            Release::ALL
                                .into_iter()
                                .find(|x| x.name() == r.trim())
                                .ok_or_else(|| {
                                    format!("unknown release {r} (3.4.6, 3.6.3, 3.8.0, 3.9.3)")
                                })
                        })
                        .collect::<Result<_, _>>()?
                };
            }
            "--bench" => {}
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if shapes.is_empty() && !no_shapes {
        shapes = vec![
            Shape {
                fanout: 20,
                depth: 4,
            },
            Shape {
                fanout: 10,
                depth: 6,
            },
        ];
    }
    let root: PathBuf = std::env::var_os("ZKPARITY_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data"));
    let only = if only_files {
        releases.clear();
        Only::Files(runs)
    } else {
        Only::All(runs)
    };
    let rt = tokio::runtime::Runtime::new()?;
    for shape in &shapes {
        rt.block_on(bench_shape(
            &root,
            shape,
            value_size,
            sessions,
            hold,
            (sync, sync_only),
            only,
        ))?;
    }
    if !releases.is_empty() {
        let shape = Shape {
            fanout: 20,
            depth: 4,
        };
        println!();
        let sessions = sessions.unwrap_or_else(default_sessions);
        println!("releases ({} sessions per side)", sessions);
        for release in releases {
            rt.block_on(bench_release(&root, &shape, release, sessions))?;
        }
    }
    Ok(())
}
