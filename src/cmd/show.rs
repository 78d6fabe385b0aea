//! `zkparity show`: one znode on both sides, and how it differs.

use clap::Args;
use zkparity::error::Error;
use zkparity::show;

use super::args::{EnsembleArgs, Format};
use super::stdout::emit;

pub const SHOW_HELP: &str = "\
Shows one znode on both sides: whether it exists, its kind, data length and
version, last change, children, next sequential number (the unit repair
uses for counters) and ACL, with a mark where they differ; then how the
values differ: the changed paths for JSON values, a line diff for text, a
hex view around the first differing byte otherwise.

Examples:
  zkparity show --source old:2181 --target new:2181 /kafka/config/topics/orders
  zkparity show --source old:2181/solr --target new:2181/solr /collections/logs/state.json --format json

Exit codes: 0 the node is the same on both sides, 1 it differs (or a side
cannot read it), 2 usage or connection error.";

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    ensembles: EnsembleArgs,
    /// The znode to show
    #[arg(value_name = "PATH")]
    path: String,
    /// Show digest ACL ids in clear (they carry password hashes)
    #[arg(long)]
    show_acl_ids: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub async fn run(a: ShowArgs) -> Result<i32, Error> {
    zkparity::connect::validate_path(&a.path).map_err(|reason| Error::BadPath {
        path: a.path.clone(),
        reason,
    })?;
    let (source, target) = a.ensembles.sides()?;
    let (s, t) = futures::try_join!(
        show::read_side(
            &source,
            &a.path,
            a.show_acl_ids,
            &a.ensembles.source_read_from
        ),
        show::read_side(
            &target,
            &a.path,
            a.show_acl_ids,
            &a.ensembles.target_read_from
        )
    )?;
    emit(&match a.format {
        Format::Text => show::render_text(&a.path, &s, &t),
        Format::Json => show::render_json(&a.path, &s, &t),
    })?;
    Ok(if show::same(&s, &t) { 0 } else { 1 })
}
