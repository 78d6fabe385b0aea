//! `zkparity compare`: compare a subtree of two sides and print the report.

use clap::Args;
use zkparity::compare::compare_sides;
use zkparity::error::Error;
use zkparity::progress::Progress;
use zkparity::report::{self, CompareReport};

use zkparity::nagios::output::State;
use zkparity::nagios::parity::ParityCheck;

use super::args::{EnsembleArgs, Format, TextfileArgs, WalkArgs};
use super::stdout::emit;

pub const COMPARE_HELP: &str = "\
Examples:
  zkparity compare --source zk-old-1:2181,zk-old-2:2181 --target zk-new-1:2181
  zkparity compare --source old:2181/kafka --target new:2181/kafka --format json
  zkparity compare --source old:2181 --target new:2181 --path /clickhouse \\
      --exclude '/clickhouse/task_queue/**' --ephemerals compare --limit 0
  zkparity compare --source zk-old-1:2181,zk-old-2:2181,zk-old-3:2181 \
      --source-read-from followers --target new:2181
  zkparity compare --source before-cutover.zkps --target new:2181
  zkparity compare --source /backup/zk-old-1/data --target new:2181 --path /kafka
  zkparity compare --source /etc/zookeeper/conf/zoo.cfg --source-at-zxid 0x50000a3f2 \
      --target new:2181

A --source or --target that names an existing file is read as a file: a
zkparity snapshot (see 'zkparity snapshot --help') or zktreeutil XML (values
only; ACLs are then compared on neither side). One that names a ZooKeeper
server's data directory (its dataDir or version-2), its zoo.cfg or a
snapshot.<zxid> file is read from those files: the newest valid snapshot and
the logs after it, to the last whole transaction or --source-at-zxid /
--target-at-zxid, with no load on any server (formats: docs/datadir.md).

--source-read-from / --target-read-from keep the reads off the leader
(followers, followers-preferred, observers, leader, or host:port,...);
roles are read from the servers, sessions pinned round-robin, and exit 2
when none of the chosen servers answers (docs/read-placement.md).

Credentials (digest user:password) are read from --source-auth-file /
--target-auth-file (mode 600) or from ZKPARITY_SOURCE_AUTH / ZKPARITY_TARGET_AUTH,
never from the command line. SASL logins (DIGEST-MD5, Kerberos) come from the
JAAS file the ensemble's Java clients use: --source-jaas / --target-jaas, e.g.
  KRB5_CONFIG=/etc/krb5.conf zkparity compare --source old:2181 --target new:2181 \
      --source-jaas /etc/hbase/conf/zk-jaas.conf --target-jaas /etc/zkparity/new-jaas.conf

Exit codes: 0 identical, 1 confirmed differences, 2 usage or connection error,
3 incomplete: no differences, but a side could not read some nodes; 130
interrupted (Ctrl-C), 143 stopped by SIGTERM.";

#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    ensembles: EnsembleArgs,
    #[command(flatten)]
    walk: WalkArgs,
    #[command(flatten)]
    textfile: TextfileArgs,
    /// Depth of the per-subtree table below --path
    #[arg(long, default_value_t = 1, value_name = "N")]
    subtree_depth: u32,
    /// Differences to list (0: all)
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: usize,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Show digest ACL ids in clear (they carry password hashes)
    #[arg(long)]
    show_acl_ids: bool,
    /// No progress on stderr
    #[arg(short, long)]
    quiet: bool,
}

/// The report in the chosen format.
pub fn render(report: &CompareReport, format: Format) -> String {
    match format {
        Format::Text => report::text::render(report),
        Format::Json => report::json::render(report) + "\n",
    }
}

pub async fn run(a: CompareArgs) -> Result<i32, Error> {
    let mut options = a.walk.compare_options(&a.ensembles)?;
    options.subtree_depth = a.subtree_depth;
    options.limit = a.limit;
    options.show_acl_ids = a.show_acl_ids;
    let (source, target) = a.ensembles.sides()?;
    let mut progress = Progress::auto(a.quiet);
    let started = std::time::Instant::now();
    let walk = compare_sides(&source, &target, &options, &mut progress);
    let stopped = "the comparison did not finish (neither ensemble was written to)";
    let report = match super::interrupt::until_stopped(walk, stopped).await {
        Ok(r) => r,
        Err(e) => {
            // The failure is a fact for the textfile too: a stale file would
            // claim the last good comparison is the current one.
            if let Err(w) = a
                .textfile
                .write(&a.ensembles, State::Unknown, None, started)
            {
                eprintln!("zkparity: error: {w}");
            }
            return Err(e);
        }
    };
    emit(&render(&report, a.format))?;
    // `check parity`'s default thresholds give the status in the file.
    let status = ParityCheck::defaults(0).judge(&report).state;
    a.textfile
        .write(&a.ensembles, status, Some(&report), started)
        .map_err(|e| Error::Io {
            context: format!("writing Prometheus textfile {}", e.path.display()),
            source: e.source,
        })?;
    Ok(report.exit_code())
}
