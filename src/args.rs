//! Command-line argument groups shared by `compare` and the checks, so every
//! command that compares takes the same flags with the same meaning.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::compare::CompareOptions;
use crate::connect::{ConnectString, Credentials, EnsembleSpec, TlsConfig};
use crate::error::Error;
use crate::exclude::{Excludes, DEFAULT_EXCLUDES};
use crate::source::SideSpec;
use crate::tree::{EphemeralPolicy, ReaderOptions, WalkOptions};

/// Parses `3`, `2.5`, `500ms`, `3s`, `1m`.
pub fn duration(flag: &str, value: &str) -> Result<Duration, Error> {
    let v = value.trim();
    let bad =
        |why: String| Error::Usage(format!("{flag} {value:?}: {why} (use e.g. 500ms, 3s, 1m)"));
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad("not a duration".into()));
    }
    humantime::parse_duration(v).map_err(|e| bad(e.to_string()))
}

/// How to reach the two ensembles and how hard to read them.
#[derive(Args, Clone, Debug)]
pub struct EnsembleArgs {
    /// Source ensemble: host:port[,host:port...][/chroot], or a snapshot or
    /// zktreeutil file
    #[arg(long, value_name = "CONNECT|FILE")]
    pub source: String,
    /// Target ensemble: host:port[,host:port...][/chroot], or a snapshot or
    /// zktreeutil file
    #[arg(long, value_name = "CONNECT|FILE")]
    pub target: String,
    /// File holding the source's digest credentials (user:password, mode 600)
    #[arg(long, value_name = "FILE")]
    pub source_auth_file: Option<PathBuf>,
    /// File holding the target's digest credentials (user:password, mode 600)
    #[arg(long, value_name = "FILE")]
    pub target_auth_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) of the source's secure client port: connect
    /// with TLS and verify the servers against it
    #[arg(long, value_name = "FILE")]
    pub source_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for the source, if its servers want one
    #[arg(long, value_name = "FILE", requires = "source_tls_ca")]
    pub source_tls_cert: Option<PathBuf>,
    /// Client key (PEM, mode 600) for --source-tls-cert
    #[arg(long, value_name = "FILE", requires = "source_tls_cert")]
    pub source_tls_key: Option<PathBuf>,
    /// CA certificate(s) (PEM) of the target's secure client port
    #[arg(long, value_name = "FILE")]
    pub target_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for the target
    #[arg(long, value_name = "FILE", requires = "target_tls_ca")]
    pub target_tls_cert: Option<PathBuf>,
    /// Client key (PEM, mode 600) for --target-tls-cert
    #[arg(long, value_name = "FILE", requires = "target_tls_cert")]
    pub target_tls_key: Option<PathBuf>,
    /// ZooKeeper session timeout
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub session_timeout: String,
    /// Give up connecting after this long
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub connect_timeout: String,
    /// Sessions per ensemble (ACL reads scale with sessions)
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub sessions: usize,
    /// Cap on read operations per second per ensemble (0: no cap); a node
    /// costs three (data, children, ACL)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_reads_per_second: u32,
    /// Latency limit per ensemble ("off" or e.g. 200ms): when a request
    /// group takes longer to answer, fewer reads are kept on the wire, then
    /// pauses, until answers are back under it
    #[arg(long, default_value = "off", value_name = "DURATION")]
    pub max_latency: String,
    /// Nodes per multi-read batch
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub batch_size: usize,
    /// Batches in flight per ensemble
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub in_flight: usize,
    /// Use pipelined single reads instead of multi-reads (servers before 3.6)
    #[arg(long)]
    pub no_multi_read: bool,
}

/// How to pace the reads of an ensemble and how long to wait for it, for
/// the commands that read one (`EnsembleArgs` carries the same flags, as
/// its own: `check parity` takes it as an optional group, and clap cannot
/// tell such a group was given through a nested one).
#[derive(Args, Clone, Debug)]
pub struct ReadArgs {
    /// ZooKeeper session timeout
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub session_timeout: String,
    /// Give up connecting after this long
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub connect_timeout: String,
    /// Sessions per ensemble (ACL reads scale with sessions)
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub sessions: usize,
    /// Cap on read operations per second per ensemble (0: no cap); a node
    /// costs three (data, children, ACL)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_reads_per_second: u32,
    /// Latency limit per ensemble ("off" or e.g. 200ms): when a request
    /// group takes longer to answer, fewer reads are kept on the wire, then
    /// pauses, until answers are back under it
    #[arg(long, default_value = "off", value_name = "DURATION")]
    pub max_latency: String,
    /// Nodes per multi-read batch
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub batch_size: usize,
    /// Batches in flight per ensemble
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub in_flight: usize,
    /// Use pipelined single reads instead of multi-reads (servers before 3.6)
    #[arg(long)]
    pub no_multi_read: bool,
}

/// Parses a flattened argument group alone, so library callers get exactly
/// the command line's defaults.
fn parse_group<T: Args>(args: &[&str]) -> Result<T, clap::Error> {
    let command = T::augment_args(clap::Command::new("zkparity").no_binary_name(true));
    let matches = command.try_get_matches_from(args)?;
    T::from_arg_matches(&matches)
}

impl EnsembleArgs {
    /// Every flag at its default, as if only `--source` and `--target` were
    /// given.
    pub fn new(source: &str, target: &str) -> Result<EnsembleArgs, clap::Error> {
        parse_group(&["--source", source, "--target", target])
    }

    fn spec(
        &self,
        side: &str,
        connect: &str,
        auth_file: Option<&PathBuf>,
        tls: [Option<&PathBuf>; 3],
    ) -> Result<EnsembleSpec, Error> {
        build_spec(
            side,
            connect,
            auth_file,
            tls,
            [&self.session_timeout, &self.connect_timeout],
        )
    }

    /// The pacing flags alone.
    pub fn read(&self) -> ReadArgs {
        ReadArgs {
            session_timeout: self.session_timeout.clone(),
            connect_timeout: self.connect_timeout.clone(),
            sessions: self.sessions,
            max_reads_per_second: self.max_reads_per_second,
            max_latency: self.max_latency.clone(),
            batch_size: self.batch_size,
            in_flight: self.in_flight,
            no_multi_read: self.no_multi_read,
        }
    }

    /// `(source, target)`, each a live ensemble or, where the value names an
    /// existing file, that file.
    pub fn sides(&self) -> Result<(SideSpec, SideSpec), Error> {
        let file = |side: &str, value: &str| SideSpec::File {
            side: side.to_string(),
            path: PathBuf::from(value),
        };
        let (s, t) = (
            SideSpec::is_file(&self.source),
            SideSpec::is_file(&self.target),
        );
        if !s && !t {
            let (a, b) = self.specs()?;
            return Ok((SideSpec::Live(a), SideSpec::Live(b)));
        }
        let source = if s {
            file("source", &self.source)
        } else {
            SideSpec::Live(self.specs_one(true)?)
        };
        let target = if t {
            file("target", &self.target)
        } else {
            SideSpec::Live(self.specs_one(false)?)
        };
        Ok((source, target))
    }

    fn specs_one(&self, source: bool) -> Result<EnsembleSpec, Error> {
        if source {
            self.spec(
                "source",
                &self.source,
                self.source_auth_file.as_ref(),
                [
                    self.source_tls_ca.as_ref(),
                    self.source_tls_cert.as_ref(),
                    self.source_tls_key.as_ref(),
                ],
            )
        } else {
            self.spec(
                "target",
                &self.target,
                self.target_auth_file.as_ref(),
                [
                    self.target_tls_ca.as_ref(),
                    self.target_tls_cert.as_ref(),
                    self.target_tls_key.as_ref(),
                ],
            )
        }
    }

    /// `(source, target)`.
    pub fn specs(&self) -> Result<(EnsembleSpec, EnsembleSpec), Error> {
        Ok((self.specs_one(true)?, self.specs_one(false)?))
    }
}

/// An ensemble spec from its flags; credentials from the file or else the
/// environment variable `ZKPARITY_<SIDE>_AUTH`.
fn build_spec(
    side: &str,
    connect: &str,
    auth_file: Option<&PathBuf>,
    tls: [Option<&PathBuf>; 3],
    [session_timeout, connect_timeout]: [&str; 2],
) -> Result<EnsembleSpec, Error> {
    let env_var = format!("ZKPARITY_{}_AUTH", side.to_uppercase());
    let [ca, cert, key] = tls;
    Ok(EnsembleSpec {
        side: side.to_string(),
        connect: ConnectString::parse(connect)?,
        credentials: Credentials::load(auth_file, &env_var)?,
        tls: ca
            .map(|ca| TlsConfig::load(ca, cert.map(|p| p.as_path()), key.map(|p| p.as_path())))
            .transpose()?,
        session_timeout: duration("--session-timeout", session_timeout)?,
        connect_timeout: duration("--connect-timeout", connect_timeout)?,
    })
}

/// One ensemble (or, where a command allows it, a snapshot file), for
/// `snapshot`, `export` and `repair`.
#[derive(Args, Clone, Debug)]
pub struct ServerArgs {
    /// The ensemble: host:port[,host:port...][/chroot] (export and repair
    /// also take a snapshot file)
    #[arg(long, value_name = "CONNECT")]
    pub server: String,
    /// File holding digest credentials (user:password, mode 600); else
    /// ZKPARITY_SOURCE_AUTH
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// CA certificate(s) (PEM) of the secure client port: connect with TLS
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_ca")]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM, mode 600) for --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
}

impl ServerArgs {
    /// Every flag at its default but `--server`.
    pub fn new(server: &str) -> Result<ServerArgs, clap::Error> {
        parse_group(&["--server", server])
    }

    /// The ensemble, read with the `side`'s credentials variable.
    pub fn spec(&self, side: &str) -> Result<EnsembleSpec, Error> {
        build_spec(
            side,
            &self.server,
            self.auth_file.as_ref(),
            [
                self.tls_ca.as_ref(),
                self.tls_cert.as_ref(),
                self.tls_key.as_ref(),
            ],
            [&self.read.session_timeout, &self.read.connect_timeout],
        )
    }

    /// The ensemble, or the snapshot file `--server` names.
    pub fn side(&self, side: &str) -> Result<SideSpec, Error> {
        if SideSpec::is_file(&self.server) {
            return Ok(SideSpec::File {
                side: side.to_string(),
                path: PathBuf::from(&self.server),
            });
        }
        Ok(SideSpec::Live(self.spec(side)?))
    }

    /// Walk and reader options from these flags and `walk`'s.
    pub fn options(&self, walk: &WalkArgs) -> Result<(WalkOptions, ReaderOptions), Error> {
        let o = walk.options(&self.read)?;
        Ok((o.walk, o.reader))
    }
}

/// What to walk and how to judge it.
#[derive(Args, Clone, Debug)]
pub struct WalkArgs {
    /// Subtree to compare, the same on both sides
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Leave out paths matching this glob and everything under them
    /// (repeatable; '*' stays within a name, '**' crosses names)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Do not exclude /zookeeper by default
    #[arg(long)]
    pub include_zookeeper: bool,
    /// Ephemeral nodes: skip them, count them (not compared), or compare them
    #[arg(long, value_enum, default_value = "count")]
    pub ephemerals: EphemeralPolicy,
    /// Wait before re-reading differences; only those that persist are
    /// confirmed ("0s" re-checks at once, "off" not at all)
    #[arg(long, default_value = "3s", value_name = "DURATION")]
    pub recheck_delay: String,
}

impl WalkArgs {
    /// Every flag at its default but `--path`.
    pub fn new(path: &str) -> Result<WalkArgs, clap::Error> {
        parse_group(&["--path", path])
    }

    /// Options for a comparison; the report settings take their defaults
    /// (subtree depth 1, 50 differences listed, digest ids hidden).
    pub fn compare_options(&self, e: &EnsembleArgs) -> Result<CompareOptions, Error> {
        self.options(&e.read())
    }

    fn options(&self, e: &ReadArgs) -> Result<CompareOptions, Error> {
        let mut patterns: Vec<String> = Vec::new();
        if !self.include_zookeeper {
            patterns.extend(DEFAULT_EXCLUDES.iter().map(|s| s.to_string()));
        }
        patterns.extend(self.exclude.iter().cloned());
        let mut walk = WalkOptions::new(self.ephemerals, Excludes::new(&patterns)?);
        if e.batch_size == 0 || e.in_flight == 0 || e.sessions == 0 {
            return Err(Error::Usage(
                "--batch-size, --in-flight and --sessions must be at least 1".into(),
            ));
        }
        walk.batch_nodes = e.batch_size;
        walk.in_flight = e.in_flight;
        let max_latency = crate::throttle::parse_limit(&e.max_latency)
            .map_err(|why| Error::Usage(format!("--max-latency {:?}: {why}", e.max_latency)))?;
        let recheck_delay = match self.recheck_delay.trim() {
            "off" | "none" | "no" => None,
            v => Some(duration("--recheck-delay", v)?),
        };
        Ok(CompareOptions {
            path: self.path.clone(),
            walk,
            reader: ReaderOptions {
                sessions: e.sessions,
                max_reads_per_second: e.max_reads_per_second,
                max_latency,
                multi_read: !e.no_multi_read,
                ..ReaderOptions::default()
            },
            subtree_depth: 1,
            recheck_delay,
            limit: 50,
            show_acl_ids: false,
            acl_caches: [None, None],
        })
    }
}
