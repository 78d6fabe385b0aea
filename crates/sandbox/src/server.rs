//! ZooKeeper servers on loopback: a standalone [`ZkServer`] and a quorum
//! [`Ensemble`]. Each JVM runs in its own directory with its own `zoo.cfg`,
//! under the watchdog of [`crate::process`], and counts as started only once
//! [`crate::readiness`] says it serves.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{
    check_extra_config, find_java, jvm_args, release_classpath, render_zoo_cfg, Peer,
    ServerOptions, ZooCfg,
};
use crate::error::SandboxError;
use crate::ports::free_ports;
use crate::process::{guarded_command, Guarded};
use crate::readiness::{
    check_conf, first_line, four_letter_word, is_timeout, log_shows_bind_failure, log_tail,
    parse_mode, LOG_MARKER,
};
use crate::tempdir::{make_temp_dir, remove_temp_dir};

const STANDALONE_MAIN: &str = "org.apache.zookeeper.server.ZooKeeperServerMain";
const QUORUM_MAIN: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// How long a SIGTERMed JVM gets before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Ports are picked before the JVM binds them, so something else may take
/// one in between; that many fresh picks are tried.
const BIND_ATTEMPTS: usize = 3;
/// A probe that connects while the JVM is still starting sometimes gets no
/// answer at all (measured: 1 s of silence, while a new connection made then
/// is answered at once), so probes start short and lengthen only if the
/// server is merely slow.
const FIRST_PROBE_TIMEOUT: Duration = Duration::from_millis(250);
const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(4);

/// One ZooKeeper server JVM (standalone or a quorum member).
#[derive(Debug)]
pub struct ZkServer {
    child: Option<Guarded>,
    port: u16,
    admin_port: Option<u16>,
    /// Readiness asks `conf` too only when the whitelist lets it.
    conf_allowed: bool,
    dir: PathBuf,
    data_dir: PathBuf,
    cfg_path: PathBuf,
    log_path: PathBuf,
    /// Rewritten before every start: in quorum mode ZooKeeper rewrites zoo.cfg
    /// itself (it moves the server lines into a dynamic config file).
    cfg_text: String,
    main_class: &'static str,
    java: PathBuf,
    jvm_args: Vec<String>,
    classpath: String,
    startup_timeout: Duration,
    /// Set when the directory is ours to remove.
    temp_dir: Option<PathBuf>,
}

/// Whether `4lw.commands.whitelist` value `list` lets `word` through.
fn whitelists(list: &str, word: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|w| w == "*" || w == word)
}

fn classpath_for(opts: &ServerOptions) -> Result<String, SandboxError> {
    release_classpath(opts.release, opts.admin_server)
}

impl ZkServer {
    /// Starts a standalone server (`ZooKeeperServerMain`) on a free loopback
    /// port and waits until it serves.
    pub fn start_standalone(opts: &ServerOptions) -> Result<ZkServer, SandboxError> {
        check_extra_config(&opts.extra_config)?;
        let classpath = classpath_for(opts)?;
        let java = find_java()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_ports(1)?[0];
            let (dir, temp_dir) = match &opts.base_dir {
                Some(d) => (absolute(d)?, None),
                None => {
                    let t = make_temp_dir("standalone")?;
                    (t.clone(), Some(t))
                }
            };
            let mut server = ZkServer::prepare(
                dir,
                temp_dir,
                port,
                None,
                opts,
                java.clone(),
                classpath.clone(),
            )?;
            server.spawn()?;
            let deadline = Instant::now() + opts.startup_timeout;
            match server.wait_serving(deadline) {
                Ok(_) => return Ok(server),
                Err(e) if server.retryable(&e) => {
                    if attempt >= BIND_ATTEMPTS {
                        return Err(SandboxError::PortTaken {
                            port,
                            log: server.log_path.clone(),
                            attempts: attempt,
                            tail: log_tail(&server.log_path),
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates the directories and renders zoo.cfg (and myid for a quorum member).
    fn prepare(
        dir: PathBuf,
        temp_dir: Option<PathBuf>,
        port: u16,
        quorum: Option<(u32, &[Peer])>,
        opts: &ServerOptions,
        java: PathBuf,
        classpath: String,
    ) -> Result<ZkServer, SandboxError> {
        let admin_port = if opts.admin_server && opts.release.is_3_5_or_later() {
            Some(free_ports(1)?[0])
        } else {
            None
        };
        // Built first, so that an error below still removes a temp dir.
        let mut server = ZkServer {
            child: None,
            port,
            admin_port,
            conf_allowed: !opts.release.is_3_5_or_later()
                || whitelists(&opts.four_letter_words, "conf"),
            data_dir: dir.join("data"),
            cfg_path: dir.join("zoo.cfg"),
            log_path: dir.join("server.log"),
            dir,
            cfg_text: String::new(),
            main_class: if quorum.is_some() {
                QUORUM_MAIN
            } else {
                STANDALONE_MAIN
            },
            java,
            jvm_args: jvm_args(opts, quorum.is_some()),
            classpath,
            startup_timeout: opts.startup_timeout,
            temp_dir,
        };
        fs::create_dir_all(&server.data_dir).map_err(|e| SandboxError::io(&server.data_dir, e))?;
        if let Some((id, _)) = quorum {
            let myid = server.data_dir.join("myid");
            fs::write(&myid, format!("{id}\n")).map_err(|e| SandboxError::io(&myid, e))?;
        }
        server.cfg_text = render_zoo_cfg(&ZooCfg {
            data_dir: &server.data_dir,
            client_port: port,
            peers: quorum.map(|(_, peers)| peers),
            observer: quorum
                .is_some_and(|(id, peers)| peers.iter().any(|p| p.id == id && p.observer)),
            extra: &opts.extra_config,
            admin_port,
            four_letter_words: &opts.four_letter_words,
            release: opts.release,
        })?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), SandboxError> {
        fs::write(&self.cfg_path, &self.cfg_text)
            .map_err(|e| SandboxError::io(&self.cfg_path, e))?;
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| SandboxError::io(&self.log_path, e))?;
        writeln!(
            log,
            "{LOG_MARKER}{} on 127.0.0.1:{} ---",
            self.main_class, self.port
        )
        .map_err(|e| SandboxError::io(&self.log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| SandboxError::io(&self.log_path, e))?;
        let mut args = self.jvm_args.clone();
        args.push("-cp".to_string());
        args.push(self.classpath.clone());
        args.push(self.main_class.to_string());
        args.push(self.cfg_path.to_string_lossy().into_owned());
        let mut cmd = guarded_command(&self.java, self.temp_dir.as_deref());
        cmd.args(&args)
            .current_dir(&self.dir)
            .stdout(log)
            .stderr(log_err);
        let child = Guarded::spawn(&mut cmd).map_err(|source| SandboxError::Spawn {
            port: self.port,
            source,
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls until `srvr` reports a mode and `conf` shows this server's port
    /// and dataDir (`srvr` alone when the whitelist refuses `conf`). Returns
    /// the `srvr` answer.
    fn wait_serving(&mut self, deadline: Instant) -> Result<String, SandboxError> {
        let started = Instant::now();
        let addr = self.connect_string();
        let mut pause = Duration::from_millis(10);
        let mut probe_timeout = FIRST_PROBE_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(SandboxError::Exited {
                        port: self.port,
                        status: status.to_string(),
                        log: self.log_path.clone(),
                        tail: log_tail(&self.log_path),
                    });
                }
            } else {
                return Err(SandboxError::Exited {
                    port: self.port,
                    status: "not running".to_string(),
                    log: self.log_path.clone(),
                    tail: log_tail(&self.log_path),
                });
            }
            let probe = four_letter_word(&addr, "srvr", probe_timeout).and_then(|srvr| {
                if parse_mode(&srvr).is_some() && self.conf_allowed {
                    let conf = four_letter_word(&addr, "conf", probe_timeout)?;
                    Ok((srvr, Some(conf)))
                } else {
                    Ok((srvr, None))
                }
            });
            let last = match probe {
                // Our process answers on our port with a mode: as much as a
                // whitelist without conf lets anyone tell.
                Ok((srvr, None)) if !self.conf_allowed && parse_mode(&srvr).is_some() => {
                    if self.admin_ready() {
                        return Ok(srvr);
                    }
                    "its AdminServer does not listen yet".to_string()
                }
                Ok((srvr, Some(conf))) => {
                    if check_conf(&conf, self.port, &self.data_dir)? {
                        if self.admin_ready() {
                            return Ok(srvr);
                        }
                        "its AdminServer does not listen yet".to_string()
                    } else {
                        first_line(&conf)
                    }
                }
                Ok((srvr, None)) => first_line(&srvr),
                Err(e) => {
                    if is_timeout(&e) {
                        probe_timeout = (probe_timeout * 2).min(MAX_PROBE_TIMEOUT);
                    }
                    e.to_string()
                }
            };
            if Instant::now() >= deadline {
                return Err(SandboxError::NotServing {
                    port: self.port,
                    waited: started.elapsed(),
                    last,
                    log: self.log_path.clone(),
                    tail: log_tail(&self.log_path),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 3 / 2).min(Duration::from_millis(100));
        }
    }

    /// Its AdminServer, if it runs one, listens on its port: a quorum
    /// member only warns when Jetty cannot bind, and goes on serving.
    fn admin_ready(&self) -> bool {
        let Some(port) = self.admin_port else {
            return true;
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            && !log_shows_bind_failure(&self.log_path)
    }

    /// A startup failure that a fresh port may fix.
    fn retryable(&self, e: &SandboxError) -> bool {
        match e {
            SandboxError::WrongServer { .. } => true,
            SandboxError::Exited { .. } | SandboxError::NotServing { .. } => {
                log_shows_bind_failure(&self.log_path)
            }
            _ => false,
        }
    }

    /// The AdminServer's HTTP port on 127.0.0.1, when it runs
    /// ([`ServerOptions::admin_server`]).
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
    }

    /// The client port, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// ZooKeeper's dataDir (snapshots and transaction logs under `version-2/`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory holding zoo.cfg, server.log and the dataDir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The JVM's stdout and stderr, appended to across restarts.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The JVM's PID while it has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Guarded::id)
    }

    /// The `Mode:` this server reports right now (`None` if it does not answer
    /// or does not serve).
    pub fn mode(&self) -> Option<String> {
        let srvr = four_letter_word(&self.connect_string(), "srvr", Duration::from_secs(2)).ok()?;
        parse_mode(&srvr).map(str::to_string)
    }

    /// SIGTERM, then SIGKILL after 5 s; returns once the JVM is reaped.
    /// Does nothing if it is not running.
    pub fn stop(&mut self) {
        // The whole group, so the watchdog goes too.
        if let Some(mut child) = self.child.take() {
            child.stop(STOP_GRACE);
        }
    }

    /// SIGKILL now (a crash, for fault tests); returns once the JVM is reaped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Stops the server if it runs, starts it again on the same port with
    /// the same dataDir, and waits until it serves.
    pub fn restart(&mut self) -> Result<(), SandboxError> {
        self.stop();
        self.spawn()?;
        let deadline = Instant::now() + self.startup_timeout;
        match self.wait_serving(deadline) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.kill();
                if matches!(
                    e,
                    SandboxError::Exited { .. } | SandboxError::NotServing { .. }
                ) && log_shows_bind_failure(&self.log_path)
                {
                    return Err(SandboxError::PortTaken {
                        port: self.port,
                        log: self.log_path.clone(),
                        attempts: 1,
                        tail: log_tail(&self.log_path),
                    });
                }
                Err(e)
            }
        }
    }

    /// Whether the JVM is still running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        let running = self.child.as_mut().is_some_and(Guarded::is_running);
        if !running {
            self.child = None;
        }
        running
    }

    /// Sends SIGTERM without waiting, so several servers stop in parallel.
    fn begin_stop(&mut self) {
        if let Some(child) = self.child.as_ref() {
            child.terminate();
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.temp_dir.take() {
            remove_temp_dir(&dir);
        }
    }
}

fn absolute(dir: &Path) -> Result<PathBuf, SandboxError> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| SandboxError::io(dir, e))?;
    Ok(cwd.join(dir))
}

/// A quorum of ZooKeeper servers on loopback (`QuorumPeerMain`, ids 1..=n).
#[derive(Debug)]
pub struct Ensemble {
    /// Server `i` has myid `i + 1`.
    pub servers: Vec<ZkServer>,
}

impl Ensemble {
    /// Starts `size` quorum peers on free loopback ports (tickTime 500 ms,
    /// read-only mode and local sessions enabled) and waits until every member
    /// serves and exactly one is the leader.
    pub fn start(size: usize, opts: &ServerOptions) -> Result<Ensemble, SandboxError> {
        Ensemble::start_with_observers(size, 0, opts)
    }

    /// As [`Ensemble::start`], with `observers` non-voting members after
    /// the `voters` (myids `voters + 1..`), which serve clients but never
    /// lead or vote.
    pub fn start_with_observers(
        voters: usize,
        observers: usize,
        opts: &ServerOptions,
    ) -> Result<Ensemble, SandboxError> {
        let size = voters + observers;
        if voters == 0 {
            return Err(SandboxError::BadEnsembleSize { size });
        }
        check_extra_config(&opts.extra_config)?;
        let classpath = classpath_for(opts)?;
        let java = find_java()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = free_ports(3 * size)?;
            let peers: Vec<Peer> = (0..size)
                .map(|i| Peer {
                    id: i as u32 + 1,
                    client_port: ports[3 * i],
                    quorum_port: ports[3 * i + 1],
                    election_port: ports[3 * i + 2],
                    observer: i >= voters,
                })
                .collect();
            let mut ensemble = Ensemble {
                servers: Vec::with_capacity(size),
            };
            for peer in &peers {
                let (dir, temp_dir) = match &opts.base_dir {
                    Some(d) => (absolute(d)?.join(format!("s{}", peer.id)), None),
                    None => {
                        let t = make_temp_dir(&format!("s{}", peer.id))?;
                        (t.clone(), Some(t))
                    }
                };
                ensemble.servers.push(ZkServer::prepare(
                    dir,
                    temp_dir,
                    peer.client_port,
                    Some((peer.id, &peers)),
                    opts,
                    java.clone(),
                    classpath.clone(),
                )?);
            }
            let deadline = Instant::now() + opts.startup_timeout;
            let result = ensemble.spawn_and_wait(deadline);
            match result {
                Ok(()) => return Ok(ensemble),
                Err(e) => {
                    let taken = ensemble.servers.iter().find(|s| s.retryable(&e));
                    if let Some(s) = taken {
                        if attempt < BIND_ATTEMPTS {
                            continue;
                        }
                        return Err(SandboxError::PortTaken {
                            port: s.port,
                            log: s.log_path.clone(),
                            attempts: attempt,
                            tail: log_tail(&s.log_path),
                        });
                    }
                    return Err(e);
                }
            }
        }
    }

    fn spawn_and_wait(&mut self, deadline: Instant) -> Result<(), SandboxError> {
        for server in &mut self.servers {
            server.spawn()?;
        }
        for server in &mut self.servers {
            server.wait_serving(deadline)?;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.wait_for_leader(left).map(|_| ())
    }

    /// `127.0.0.1:a,127.0.0.1:b,…`, in myid order.
    pub fn connect_string(&self) -> String {
        self.servers
            .iter()
            .map(ZkServer::connect_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Index in `servers` of the member that reports itself leader now.
    pub fn leader(&self) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| s.mode().as_deref() == Some("leader"))
    }

    /// Waits until exactly one running member is leader and every other
    /// running member is a follower or an observer; returns the leader's index. Members that
    /// are stopped are left out.
    pub fn wait_for_leader(&mut self, timeout: Duration) -> Result<usize, SandboxError> {
        let started = Instant::now();
        loop {
            let mut modes = Vec::with_capacity(self.servers.len());
            for server in &mut self.servers {
                let mode = if server.is_running() {
                    Some(server.mode())
                } else {
                    None
                };
                modes.push(mode);
            }
            let running: Vec<&Option<String>> = modes.iter().flatten().collect();
            let leaders: Vec<usize> = modes
                .iter()
                .enumerate()
                .filter(|(_, m)| matches!(m, Some(Some(m)) if m == "leader"))
                .map(|(i, _)| i)
                .collect();
            let followers = running
                .iter()
                .filter(|m| matches!(m.as_deref(), Some("follower") | Some("observer")))
                .count();
            if leaders.len() == 1 && followers + 1 == running.len() {
                return Ok(leaders[0]);
            }
            if started.elapsed() >= timeout {
                let modes = self
                    .servers
                    .iter()
                    .zip(&modes)
                    .map(|(s, m)| {
                        let m = match m {
                            None => "stopped".to_string(),
                            Some(None) => "not serving".to_string(),
                            Some(Some(m)) => m.clone(),
                        };
                        format!("{}={m}", s.connect_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(SandboxError::NoLeader {
                    connect: self.connect_string(),
                    waited: started.elapsed(),
                    modes,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        // SIGTERM to all first: stopping one by one would take the sum of
        // their shutdown times.
        for server in &mut self.servers {
            server.begin_stop();
        }
        for server in &mut self.servers {
            server.stop();
        }
    }
}
