//! demo placeholder
use crate::error::Result;
use crate::progress::Progress;
use crate::report::CompareReport;
pub async fn run(_p: &mut Progress) -> Result<CompareReport> { Err(crate::error::Error::Usage("not yet".into())) }
