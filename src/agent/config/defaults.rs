//! Defaults, named so docs/agent.md and the code say the same thing. What
//! a pair shares with the command line (timeouts, pacing) takes the
//! library's defaults, named where they are.

use std::time::Duration;

use crate::nagios::parity::ParityCheck;

pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default jitter, as a fraction of the interval.
pub(crate) const DEFAULT_JITTER_FRACTION: f64 = 0.1;
pub(crate) const DEFAULT_CONFIRM_ROUNDS: u32 = 2;
/// Short: a difference that survives it is then confirmed across rounds.
pub(crate) const DEFAULT_RECHECK_DELAY: Duration = Duration::from_secs(1);
pub(crate) const DEFAULT_ROUND_TIMEOUT: Duration = Duration::from_secs(15 * 60);
pub(crate) const DEFAULT_STATE_LIST_LIMIT: usize = 1000;
/// With watches, every this many rounds walk in full anyway: ACL changes fire
/// no watch event, so this bounds how late one is seen (10 minutes at the
/// default interval).
pub(crate) const DEFAULT_FULL_WALK_EVERY: u64 = 10;
/// How long a changed path must stay quiet before it is re-checked early,
/// so a sync tool has copied it by then.
pub(crate) const DEFAULT_WATCH_SETTLE: Duration = Duration::from_secs(2);
pub(crate) const DEFAULT_DETAILS: usize = 10;
/// As `check ephemerals --grace`.
pub(crate) const DEFAULT_EXPECT_GRACE: Duration = Duration::from_secs(5 * 60);
/// gmond's default `udp_recv_channel` port.
pub(crate) const DEFAULT_GANGLIA_PORT: u16 = 8649;

/// The parity check the agent judges a pair by when `[nagios]` says
/// nothing: `check parity`'s defaults.
pub(crate) fn default_check() -> ParityCheck {
    ParityCheck::defaults(DEFAULT_DETAILS)
}
