//! When rounds start.
//!
//! Rounds of a pair are `interval` apart, start to start, so a pair is
//! compared as often as configured however long a round takes. A round that
//! overruns its interval is followed at once (there is no catching up on
//! missed rounds). Every wait, the first one included, gets a random
//! 0..jitter on top, so several pairs, or several agents, started together
//! do not keep hitting the same servers at the same moment.

use std::time::Duration;

use tokio::time::Instant;

/// A uniformly random duration in `0..=max`.
pub(crate) fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    max.mul_f64(fastrand::f64())
}

/// When the round after one that started at `started` and ended at
/// `finished` should start, before jitter.
pub(crate) fn next_start(started: Instant, finished: Instant, interval: Duration) -> Instant {
    (started + interval).max(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_an_interval_apart_start_to_start() {
        let t0 = Instant::now();
        let next = next_start(t0, t0 + Duration::from_secs(5), Duration::from_secs(60));
        assert_eq!(next, t0 + Duration::from_secs(60));
    }

    #[test]
    fn an_overrunning_round_is_followed_at_once() {
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(90);
        assert_eq!(next_start(t0, end, Duration::from_secs(60)), end);
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let max = Duration::from_millis(250);
        for _ in 0..1000 {
            assert!(jitter(max) <= max);
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
