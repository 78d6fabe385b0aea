//! `zkparity demo`: two local servers, a sample migration, its report.

use clap::Args;
use zkparity::error::Error;
use zkparity::progress::Progress;

use super::args::Format;
use super::compare::render;
use super::stdout::emit;

#[derive(Args)]
pub struct DemoArgs {
    /// Output format of the comparison
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub async fn run(a: DemoArgs) -> Result<i32, Error> {
    let mut progress = Progress::auto(false);
    let report = zkparity::demo::run(&mut progress).await?;
    emit(&render(&report, a.format))?;
    Ok(report.exit_code())
}
