//! Argument groups shared by the commands, so every command that reads an
//! ensemble takes the same flags with the same meaning.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use clap::{Args, ValueEnum};
use zkparity::compare::CompareOptions;
use zkparity::connect::{ConnectString, EnsembleSpec};
use zkparity::error::Error;
use zkparity::exclude::{Excludes, DEFAULT_EXCLUDES};
use zkparity::placement::{ReadFrom, ReadPlacement};
use zkparity::source::SideSpec;
use zkparity::spec::{SaslChoice, SpecBuilder, TlsFiles};
use zkparity::tree::{EphemeralPolicy, ReaderOptions, WalkOptions};

use super::values::{DURATION, DURATION_OR_OFF, LATENCY_LIMIT};

/// Report formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// What to do with ephemeral nodes (the library's [`EphemeralPolicy`], as
/// a flag value).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Ephemerals {
    /// Leave them out entirely: not counted, not compared.
    Skip,
    /// Count them per side, but neither compare them nor include them in
    /// checksums: live sessions differ between ensembles by nature.
    Count,
    /// Treat them like any other node.
    Compare,
}

impl From<Ephemerals> for EphemeralPolicy {
    fn from(e: Ephemerals) -> EphemeralPolicy {
        match e {
            Ephemerals::Skip => EphemeralPolicy::Skip,
            Ephemerals::Count => EphemeralPolicy::Count,
            Ephemerals::Compare => EphemeralPolicy::Compare,
        }
    }
}

/// How to reach the two ensembles and how hard to read them.
#[derive(Args, Clone, Debug)]
pub struct EnsembleArgs {
    /// Source ensemble: host:port[,host:port...][/chroot]; or a zkparity
    /// snapshot or zktreeutil file; or a ZooKeeper server's data directory
    /// (dataDir or its version-2), its zoo.cfg, or a snapshot.<zxid> file
    #[arg(long, value_name = "CONNECT|FILE|DIR")]
    pub source: String,
    /// Target ensemble, or a file or directory, as --source
    #[arg(long, value_name = "CONNECT|FILE|DIR")]
    pub target: String,
    /// Read the source's ZooKeeper data directory as it stood at this zxid
    /// (0x-prefixed hex or decimal) [default: its last whole transaction]
    #[arg(long, value_name = "ZXID", value_parser = parse_zxid)]
    pub source_at_zxid: Option<i64>,
    /// Read the target's ZooKeeper data directory as it stood at this zxid
    #[arg(long, value_name = "ZXID", value_parser = parse_zxid)]
    pub target_at_zxid: Option<i64>,
    #[command(flatten)]
    pub access: AccessArgs,
    /// Which source servers serve the reads: any, followers (followers and
    /// observers, never the leader), followers-preferred (else the leader,
    /// with a note), observers, leader, or HOST:PORT,... of the connect
    /// string; roles are read from the servers (srvr)
    #[arg(long, default_value = "any", value_name = "WHICH", value_parser = parse_read_from)]
    pub source_read_from: ReadFrom,
    /// Which target servers serve the reads, as --source-read-from
    #[arg(long, default_value = "any", value_name = "WHICH", value_parser = parse_read_from)]
    pub target_read_from: ReadFrom,
    #[command(flatten)]
    pub pace: PaceArgs,
}

/// The credentials, SASL login and TLS files of a source and a target.
#[derive(Args, Clone, Debug)]
pub struct AccessArgs {
    /// File holding the source's digest credentials (user:password, mode 600)
    #[arg(long, value_name = "FILE")]
    pub source_auth_file: Option<PathBuf>,
    /// File holding the target's digest credentials (user:password, mode 600)
    #[arg(long, value_name = "FILE")]
    pub target_auth_file: Option<PathBuf>,
    /// JAAS file with the source's SASL login (its Client section):
    /// DigestLoginModule (username, password; mode 600) or Krb5LoginModule
    /// (keytab and principal, or a ticket cache)
    #[arg(long, value_name = "FILE")]
    pub source_jaas: Option<PathBuf>,
    /// JAAS file with the target's SASL login, as --source-jaas
    #[arg(long, value_name = "FILE")]
    pub target_jaas: Option<PathBuf>,
    #[command(flatten)]
    pub sasl: SaslArgs,
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
}

impl AccessArgs {
    /// The source's files, or the target's.
    pub fn side(&self, source: bool) -> SideFiles<'_> {
        if source {
            SideFiles {
                auth_file: self.source_auth_file.as_deref(),
                jaas: self.source_jaas.as_deref(),
                tls: [
                    &self.source_tls_ca,
                    &self.source_tls_cert,
                    &self.source_tls_key,
                ]
                .map(|f| f.as_deref()),
            }
        } else {
            SideFiles {
                auth_file: self.target_auth_file.as_deref(),
                jaas: self.target_jaas.as_deref(),
                tls: [
                    &self.target_tls_ca,
                    &self.target_tls_cert,
                    &self.target_tls_key,
                ]
                .map(|f| f.as_deref()),
            }
        }
    }
}

/// How a SASL login is read, for every side of a command.
#[derive(Args, Clone, Debug)]
pub struct SaslArgs {
    /// JAAS section to log in with [default: Client]
    #[arg(long, value_name = "NAME")]
    pub jaas_section: Option<String>,
    /// Kerberos: service name in the servers' principal [default: zookeeper]
    #[arg(long, value_name = "NAME")]
    pub sasl_service: Option<String>,
    /// Kerberos: host in the servers' principal, for servers reached by
    /// another address [default: each server's host in the connect string]
    #[arg(long, value_name = "HOST")]
    pub sasl_host: Option<String>,
}

impl SaslArgs {
    pub fn choice(&self) -> SaslChoice<'_> {
        SaslChoice {
            section: self.jaas_section.as_deref(),
            service: self.sasl_service.as_deref(),
            host: self.sasl_host.as_deref(),
        }
    }
}

/// The library's timeout as the flags write their default.
static DEFAULT_TIMEOUT: LazyLock<String> =
    LazyLock::new(|| humantime::format_duration(zkparity::spec::DEFAULT_TIMEOUT).to_string());

/// How to pace the reads of an ensemble and how long to wait for it.
#[derive(Args, Clone, Debug)]
pub struct PaceArgs {
    /// ZooKeeper session timeout
    #[arg(long, default_value = DEFAULT_TIMEOUT.as_str(), value_name = "DURATION", value_parser = DURATION)]
    pub session_timeout: Duration,
    /// Give up connecting after this long
    #[arg(long, default_value = DEFAULT_TIMEOUT.as_str(), value_name = "DURATION", value_parser = DURATION)]
    pub connect_timeout: Duration,
    /// Sessions per ensemble (ACL reads scale with sessions)
    #[arg(long, default_value_t = ReaderOptions::default().sessions, value_name = "N")]
    pub sessions: usize,
    /// Cap on read operations per second per ensemble (0: no cap); a node
    /// costs three (data, children, ACL)
    #[arg(long, default_value_t = ReaderOptions::default().max_reads_per_second, value_name = "N")]
    pub max_reads_per_second: u32,
    /// Latency limit per ensemble ("off" or e.g. 200ms): when a request
    /// group takes longer to answer, fewer reads are kept on the wire, then
    /// pauses, until answers are back under it
    #[arg(long, default_value = "off", value_name = "DURATION", value_parser = LATENCY_LIMIT)]
    pub max_latency: ::std::option::Option<Duration>,
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

/// Which servers of one ensemble serve the reads, and how they are paced,
/// for the commands that read one (`EnsembleArgs` places each side's reads
/// with its own flags).
#[derive(Args, Clone, Debug)]
pub struct ReadArgs {
    /// Which servers serve the reads: any, followers (followers and
    /// observers, never the leader), followers-preferred (else the leader,
    /// with a note), observers, leader, or HOST:PORT,... of the connect
    /// string; roles are read from the servers (srvr)
    #[arg(long, default_value = "any", value_name = "WHICH", value_parser = parse_read_from)]
    pub read_from: ReadFrom,
    #[command(flatten)]
    pub pace: PaceArgs,
}

impl ReadArgs {
    /// The flags' defaults, for a command that offers none of them: read
    /// from the flags themselves, so they are written once.
    pub fn defaults() -> ReadArgs {
        use clap::{CommandFactory, FromArgMatches, Parser};
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            read: ReadArgs,
        }
        Defaults::command()
            .try_get_matches_from(["zkparity"])
            .and_then(|m| Defaults::from_arg_matches(&m))
            .expect("every read flag has a default")
            .read
    }
}

impl EnsembleArgs {
    /// One side's ensemble.
    fn spec(&self, source: bool) -> Result<EnsembleSpec, Error> {
        let (side, connect) = if source {
            ("source", &self.source)
        } else {
            ("target", &self.target)
        };
        build_spec(
            side,
            connect,
            self.access.side(source),
            self.access.sasl.choice(),
            [
                Some(self.pace.session_timeout),
                Some(self.pace.connect_timeout),
            ],
        )
    }

    /// The pacing flags alone.
    pub fn read(&self) -> ReadArgs {
        ReadArgs {
            read_from: ReadFrom::Any,
            pace: self.pace.clone(),
        }
    }

    /// `(source, target)`, each a live ensemble or, where the value names an
    /// existing file, that file.
    pub fn sides(&self) -> Result<(SideSpec, SideSpec), Error> {
        let (s, t) = (
            SideSpec::is_file(&self.source),
            SideSpec::is_file(&self.target),
        );
        missing_path("--source", &self.source)?;
        missing_path("--target", &self.target)?;
        for (given, file, flag) in [
            (self.source_at_zxid, s, "--source-at-zxid"),
            (self.target_at_zxid, t, "--target-at-zxid"),
        ] {
            if given.is_some() && !file {
                return Err(Error::Usage(format!(
                    "{flag} applies to a ZooKeeper data directory or snapshot, not to a live ensemble"
                )));
            }
        }
        for (placed, file, flag) in [
            (&self.source_read_from, s, "--source-read-from"),
            (&self.target_read_from, t, "--target-read-from"),
        ] {
            refuse_read_from_on_file(placed, file, flag)?;
        }
        if !s && !t {
            let (a, b) = self.specs()?;
            return Ok((SideSpec::Live(a), SideSpec::Live(b)));
        }
        let side = |source: bool, file: bool| {
            Ok::<_, Error>(match (source, file) {
                (true, true) => SideSpec::file("source", &self.source, self.source_at_zxid),
                (false, true) => SideSpec::file("target", &self.target, self.target_at_zxid),
                (_, false) => SideSpec::Live(self.spec(source)?),
            })
        };
        Ok((side(true, s)?, side(false, t)?))
    }

    /// `(source, target)`.
    /// Both ensembles, for the commands that read live ensembles only.
    pub fn specs(&self) -> Result<(EnsembleSpec, EnsembleSpec), Error> {
        for (flag, value) in [("--source", &self.source), ("--target", &self.target)] {
            if SideSpec::is_file(value) {
                return Err(Error::Usage(format!(
                    "{flag} {value} is a file or directory: this command reads live ensembles (compare, check parity, show, repair and export also read files)"
                )));
            }
        }
        Ok((self.spec(true)?, self.spec(false)?))
    }
}

/// The files one side is reached with: digest credentials, a JAAS file,
/// and the TLS CA, certificate and key.
#[derive(Clone, Copy, Debug, Default)]
pub struct SideFiles<'a> {
    pub auth_file: Option<&'a Path>,
    pub jaas: Option<&'a Path>,
    pub tls: [Option<&'a Path>; 3],
}

/// An ensemble spec from its flags; credentials from the file or else the
/// environment variable `ZKPARITY_<SIDE>_AUTH`; timeouts not given take
/// the library's defaults.
pub fn build_spec(
    side: &str,
    connect: &str,
    files: SideFiles<'_>,
    sasl: SaslChoice<'_>,
    [session_timeout, connect_timeout]: [Option<Duration>; 2],
) -> Result<EnsembleSpec, Error> {
    let connect = ConnectString::parse(connect)?;
    let mut spec = SpecBuilder::new(side).credentials_or_env(files.auth_file)?;
    if let [Some(ca), cert, key] = files.tls {
        spec = spec.tls(TlsFiles { ca, cert, key })?;
    }
    if let Some(jaas) = files.jaas {
        spec = spec.sasl(jaas, sasl)?;
    }
    Ok(spec
        .timeouts(session_timeout, connect_timeout)
        .build(connect))
}

/// `--target` of a command that writes to it: a live ensemble only.
pub fn written_target(a: clap::Arg) -> clap::Arg {
    a.value_name("CONNECT")
        .help("Target ensemble, written to: host:port[,host:port...][/chroot]")
}

/// What `repair` and `sync` read and write, and whether they write at all.
#[derive(Args, Clone, Debug)]
pub struct CopyArgs {
    #[command(flatten)]
    pub ensembles: EnsembleArgs,
    #[command(flatten)]
    pub walk: WalkArgs,
    /// Apply the plan to the target; without it nothing is written (a dry
    /// run)
    #[arg(long)]
    pub apply: bool,
}

/// How fast, and in what batches, `repair` and `sync` write to the target.
#[derive(Args, Clone, Debug)]
pub struct WriteArgs {
    /// Cap on write operations per second sent to the target (0: no cap)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_writes_per_second: u32,
    /// Actions per multi-write
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub write_batch_size: usize,
    /// Multi-writes in flight
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub writes_in_flight: usize,
}

/// What guards a write command's first write: refusals of what looks like
/// a mistake, and the backup.
#[derive(Args, Clone, Debug)]
pub struct SafetyArgs {
    /// Refuse a plan that deletes more than N nodes [default: 1000 or 10 %
    /// of the target subtree's nodes, whichever is fewer]
    #[arg(long, value_name = "N")]
    pub max_delete: Option<u64>,
    /// Write to a target subtree that holds ephemerals of live sessions
    /// (applications use it: without this it is refused as probably the
    /// ensemble of record)
    #[arg(long)]
    pub target_in_use: bool,
    /// Write without first taking a backup snapshot of the target subtree
    #[arg(long)]
    pub no_backup: bool,
    /// Directory of the backup snapshot taken before the first write
    #[arg(
        long,
        value_name = "DIR",
        env = "ZKPARITY_BACKUP_DIR",
        default_value = "."
    )]
    pub backup_dir: PathBuf,
}

impl SafetyArgs {
    /// The first write's guards for `command` writing to `target`.
    pub fn first_write(
        &self,
        command: &'static str,
        target: &SideSpec,
    ) -> zkparity::repair::FirstWrite {
        zkparity::repair::FirstWrite {
            command,
            limits: zkparity::repair::guard::Limits {
                max_delete: self.max_delete,
                target_in_use: self.target_in_use,
            },
            backup: (!self.no_backup)
                .then(|| zkparity::repair::backup::file_in(&self.backup_dir, target)),
            lock: true,
            announce: true,
        }
    }
}

/// What an interrupted write left: the writes so far, and the backup
/// taken before the first of them.
pub fn after_writes(first: &zkparity::repair::FirstWrite, then: &str) -> String {
    match &first.backup {
        Some(file) => format!(
            "{then}; the target as it was before the first write is in {} (if writing had begun)",
            file.display()
        ),
        None => then.to_string(),
    }
}

/// One ensemble (or, where a command allows it, a snapshot file), for
/// `snapshot`, `export` and `repair`.
#[derive(Args, Clone, Debug)]
pub struct ServerArgs {
    /// The ensemble: host:port[,host:port...][/chroot]; or a zkparity
    /// snapshot or zktreeutil file, or a ZooKeeper server's data directory
    /// (dataDir or its version-2), its zoo.cfg or a snapshot.<zxid> file
    #[arg(long, value_name = "CONNECT|FILE|DIR")]
    pub server: String,
    /// Read a ZooKeeper data directory as it stood at this zxid (0x-prefixed
    /// hex or decimal) [default: its last whole transaction]
    #[arg(long, value_name = "ZXID", value_parser = parse_zxid)]
    pub at_zxid: Option<i64>,
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
    /// JAAS file with the SASL login (its Client section): DigestLoginModule
    /// (username, password; mode 600) or Krb5LoginModule (keytab and
    /// principal, or a ticket cache)
    #[arg(long, value_name = "FILE")]
    pub jaas: Option<PathBuf>,
    #[command(flatten)]
    pub sasl: SaslArgs,
    #[command(flatten)]
    pub read: ReadArgs,
}

impl ServerArgs {
    /// The ensemble, read with the `side`'s credentials variable.
    pub fn spec(&self, side: &str) -> Result<EnsembleSpec, Error> {
        let files = SideFiles {
            auth_file: self.auth_file.as_deref(),
            jaas: self.jaas.as_deref(),
            tls: [&self.tls_ca, &self.tls_cert, &self.tls_key].map(|f| f.as_deref()),
        };
        let pace = &self.read.pace;
        build_spec(
            side,
            &self.server,
            files,
            self.sasl.choice(),
            [Some(pace.session_timeout), Some(pace.connect_timeout)],
        )
    }

    /// The ensemble, or the snapshot file `--server` names.
    pub fn side(&self, side: &str) -> Result<SideSpec, Error> {
        refuse_read_from_on_file(
            &self.read.read_from,
            SideSpec::is_file(&self.server),
            "--read-from",
        )?;
        if SideSpec::is_file(&self.server) {
            return Ok(SideSpec::file(side, &self.server, self.at_zxid));
        }
        missing_path("--server", &self.server)?;
        if self.at_zxid.is_some() {
            return Err(Error::Usage(
                "--at-zxid applies to a ZooKeeper data directory or snapshot, not to a live ensemble"
                    .into(),
            ));
        }
        Ok(SideSpec::Live(self.spec(side)?))
    }

    /// Walk and reader options from these flags and `walk`'s.
    pub fn options(&self, walk: &WalkArgs) -> Result<(WalkOptions, ReaderOptions), Error> {
        let o = walk.options(&self.read)?;
        Ok((o.walk, o.reader))
    }
}

/// What to read, for the commands that read one tree (snapshot, export):
/// as [`WalkArgs`], less what only a comparison needs.
#[derive(Args, Debug)]
pub struct TreeArgs {
    /// Subtree to read
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Leave out paths matching this glob and everything under them
    /// (repeatable; '*' stays within a name, '**' crosses names)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Do not exclude /zookeeper by default
    #[arg(long)]
    pub include_zookeeper: bool,
    /// Ephemeral nodes: skip them, count them, or keep them whole (compare)
    #[arg(long, value_enum, default_value = "count")]
    pub ephemerals: Ephemerals,
}

impl TreeArgs {
    /// The same choices as a walk's, with no re-check (nothing is judged).
    pub fn as_walk(&self) -> WalkArgs {
        WalkArgs {
            path: self.path.clone(),
            exclude: self.exclude.clone(),
            include_zookeeper: self.include_zookeeper,
            ephemerals: self.ephemerals,
            recheck_delay: None,
        }
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
    pub ephemerals: Ephemerals,
    /// Wait before re-reading differences; only those that persist are
    /// confirmed ("0s" re-checks at once, "off" not at all)
    #[arg(long, default_value = "3s", value_name = "DURATION", value_parser = DURATION_OR_OFF)]
    pub recheck_delay: ::std::option::Option<Duration>,
}

impl WalkArgs {
    /// Options for a comparison; the report settings take their defaults
    /// (subtree depth 1, 50 differences listed, digest ids hidden).
    pub fn compare_options(&self, e: &EnsembleArgs) -> Result<CompareOptions, Error> {
        let mut options = self.options(&e.read())?;
        options.reader.read_from = ReadPlacement {
            source: e.source_read_from.clone(),
            target: e.target_read_from.clone(),
        };
        Ok(options)
    }

    pub fn options(&self, read: &ReadArgs) -> Result<CompareOptions, Error> {
        let e = &read.pace;
        let mut patterns: Vec<String> = Vec::new();
        if !self.include_zookeeper {
            patterns.extend(DEFAULT_EXCLUDES.iter().map(|s| s.to_string()));
        }
        patterns.extend(self.exclude.iter().cloned());
        let mut walk = WalkOptions::new(self.ephemerals.into(), Excludes::new(&patterns)?);
        {
            use zkparity::tree::bounds::{check, MAX_BATCH_SIZE, MAX_IN_FLIGHT, MAX_SESSIONS};
            check("--batch-size", e.batch_size, MAX_BATCH_SIZE)
                .and(check("--in-flight", e.in_flight, MAX_IN_FLIGHT))
                .and(check("--sessions", e.sessions, MAX_SESSIONS))
                .map_err(Error::Usage)?;
        }
        walk.batch_nodes = e.batch_size;
        walk.in_flight = e.in_flight;
        Ok(CompareOptions {
            path: self.path.clone(),
            walk,
            reader: ReaderOptions {
                sessions: e.sessions,
                max_reads_per_second: e.max_reads_per_second,
                max_latency: e.max_latency,
                multi_read: !e.no_multi_read,
                read_from: ReadPlacement {
                    source: read.read_from.clone(),
                    target: ReadFrom::Any,
                },
                ..ReaderOptions::default()
            },
            subtree_depth: 1,
            recheck_delay: self.recheck_delay,
            limit: 50,
            show_acl_ids: false,
            acl_caches: [None, None],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        ensembles: EnsembleArgs,
        #[command(flatten)]
        walk: WalkArgs,
    }

    /// The demo, the tests and the benchmark build their options from the
    /// library's defaults; they must be what the command line gives.
    #[test]
    fn the_librarys_default_compare_options_are_the_command_lines() {
        let flags = Flags::try_parse_from(["x", "--source", "a:1", "--target", "b:1"])
            .expect("the flags parse");
        let cli = flags
            .walk
            .compare_options(&flags.ensembles)
            .expect("options");
        let lib = CompareOptions::defaults("/").expect("defaults");
        assert_eq!(cli.path, lib.path);
        assert_eq!(cli.walk.ephemerals, lib.walk.ephemerals);
        assert_eq!(cli.walk.excludes.patterns(), lib.walk.excludes.patterns());
        assert_eq!(
            (
                cli.walk.batch_nodes,
                cli.walk.batch_bytes,
                cli.walk.in_flight
            ),
            (
                lib.walk.batch_nodes,
                lib.walk.batch_bytes,
                lib.walk.in_flight
            )
        );
        assert_eq!(
            format!("{:?}", cli.reader),
            format!("{:?}", lib.reader),
            "reader options"
        );
        assert_eq!(cli.recheck_delay, lib.recheck_delay);
        assert_eq!(
            (cli.subtree_depth, cli.limit, cli.show_acl_ids),
            (lib.subtree_depth, lib.limit, lib.show_acl_ids)
        );
        let (source, _) = flags.ensembles.specs().expect("specs");
        let plain = EnsembleSpec::plain("source", "a:1").expect("plain");
        assert_eq!(
            (source.session_timeout, source.connect_timeout),
            (plain.session_timeout, plain.connect_timeout)
        );
    }
}

/// `--prometheus-textfile`: a comparison's pair metrics for node_exporter's
/// textfile collector, for runs from cron or a timer.
#[derive(Args, Debug)]
pub struct TextfileArgs {
    /// Also write the pair's metrics to FILE for node_exporter's textfile
    /// collector (replaced atomically; see prometheus/README.md)
    #[arg(long, value_name = "FILE")]
    pub prometheus_textfile: Option<PathBuf>,
    /// The `pair` label of those metrics (default: the first server of each
    /// side, e.g. zk-old-1_2181--zk-new-1_2181)
    #[arg(long, value_name = "NAME", requires = "prometheus_textfile")]
    pub pair_name: Option<String>,
}

impl TextfileArgs {
    /// Writes the metrics of one comparison (`report` `None` when it could
    /// not compare) judged `status`, if a file was asked for.
    pub fn write(
        &self,
        ensembles: &EnsembleArgs,
        status: zkparity::nagios::output::State,
        report: Option<&zkparity::report::CompareReport>,
        started: std::time::Instant,
    ) -> Result<(), zkparity::prometheus::textfile::TextfileError> {
        let Some(path) = &self.prometheus_textfile else {
            return Ok(());
        };
        let pair = self.pair_name.clone().unwrap_or_else(|| {
            zkparity::gmetric::parity::default_pair_name(&ensembles.source, &ensembles.target)
        });
        let text = zkparity::prometheus::textfile::render(
            &pair,
            status,
            report.ok_or(()),
            std::time::SystemTime::now(),
            started.elapsed().as_secs_f64(),
        );
        zkparity::prometheus::textfile::write(path, &text)
    }
}

/// How servers are probed: the four-letter words, the AdminServer, or the
/// words and then the AdminServer for what they refuse.
#[derive(Args, Clone, Debug)]
pub struct AdminArgs {
    /// How to read the servers: auto (four-letter words, and the AdminServer
    /// for words they refuse), 4lw, or admin
    #[arg(long, default_value = "auto", value_name = "WAY")]
    pub probe_via: String,
    /// Port of the source servers' AdminServer, or one port per server in
    /// the connect string's order (PORT,PORT,...)
    #[arg(long, default_value = "8080", value_name = "PORT[,PORT...]")]
    pub source_admin_port: String,
    /// Port of the target servers' AdminServer (PORT or PORT,PORT,...)
    #[arg(long, default_value = "8080", value_name = "PORT[,PORT...]")]
    pub target_admin_port: String,
    /// CA certificate(s) (PEM) of the source's AdminServer: read it over
    /// HTTPS, verified against them
    #[arg(long, value_name = "FILE")]
    pub source_admin_tls_ca: Option<PathBuf>,
    /// CA certificate(s) (PEM) of the target's AdminServer
    #[arg(long, value_name = "FILE")]
    pub target_admin_tls_ca: Option<PathBuf>,
}

impl AdminArgs {
    /// Sets `opts`' way of reading and AdminServer endpoints, for a source
    /// and a target of `servers` servers each (port lists must match).
    pub fn apply(
        &self,
        opts: &mut zkparity::probe::ProbeOptions,
        servers: [usize; 2],
    ) -> Result<(), String> {
        use zkparity::probe::admin::parse_ports;
        use zkparity::probe::AdminEndpoint;
        opts.via = self
            .probe_via
            .parse()
            .map_err(|e| format!("--probe-via: {e}"))?;
        let endpoint = |side: &str, ports: &str, ca: &Option<PathBuf>, servers: usize| {
            let flag = format!("--{side}-admin-port");
            let ports = parse_ports(ports).map_err(|e| format!("{flag}: {e}"))?;
            let endpoint = match ca {
                None => AdminEndpoint { ports, tls: None },
                Some(file) => AdminEndpoint::https(ports, file).map_err(|e| e.to_string())?,
            };
            endpoint
                .check(servers)
                .map_err(|e| format!("{flag}: {e}"))?;
            Ok::<_, String>(endpoint)
        };
        opts.source_admin = endpoint(
            "source",
            &self.source_admin_port,
            &self.source_admin_tls_ca,
            servers[0],
        )?;
        opts.target_admin = endpoint(
            "target",
            &self.target_admin_port,
            &self.target_admin_tls_ca,
            servers[1],
        )?;
        Ok(())
    }
}

/// `--source-read-from` and its kin.
pub fn parse_read_from(value: &str) -> Result<ReadFrom, String> {
    value.parse()
}

/// A choice of servers means nothing for a file side: refused rather than
/// ignored.
fn refuse_read_from_on_file(placed: &ReadFrom, file: bool, flag: &str) -> Result<(), Error> {
    if file && *placed != ReadFrom::Any {
        return Err(Error::Usage(format!(
            "{flag} {placed} chooses servers of a live ensemble; that side is a file"
        )));
    }
    Ok(())
}

/// Refuses a choice of servers for a command whose reads do not all go
/// through the pinned sessions (`sync`): honoured or refused,
/// never ignored.
pub fn refuse_read_from(e: &EnsembleArgs, command: &str) -> Result<(), Error> {
    for (placed, flag) in [
        (&e.source_read_from, "--source-read-from"),
        (&e.target_read_from, "--target-read-from"),
    ] {
        if *placed != ReadFrom::Any {
            return Err(Error::Usage(format!(
                "{flag} {placed}: {command} does not choose servers yet (it reads from any server of the connect string); compare, check parity, repair, show, snapshot and export do"
            )));
        }
    }
    Ok(())
}

/// A zxid as written on a command line: `0x` and hex, as ZooKeeper prints
/// them, or decimal.
pub fn parse_zxid(value: &str) -> Result<i64, String> {
    let v = value.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).map(|z| z as i64),
        None => v
            .parse::<i64>()
            .or_else(|_| u64::from_str_radix(v, 16).map(|z| z as i64)),
    };
    match parsed {
        Ok(z) if z >= 0 => Ok(z),
        _ => Err(format!(
            "{value:?} is not a zxid (0x-prefixed hex, as ZooKeeper prints them, or decimal)"
        )),
    }
}

/// A side written as a path (`/…`, `./…`, `../…`, `~…`) that names nothing:
/// said as such, rather than as a connect string it never meant to be.
pub fn missing_path(flag: &str, value: &str) -> Result<(), Error> {
    let looks_like_path = ["/", "./", "../", "~"].iter().any(|p| value.starts_with(p));
    if looks_like_path && !SideSpec::is_file(value) {
        return Err(Error::Usage(format!(
            "{flag} {value}: no such file or directory (a side is a connect string, or an existing file or directory)"
        )));
    }
    Ok(())
}
