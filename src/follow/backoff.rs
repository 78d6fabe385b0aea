//! The one back-off every retry waits by: a first wait, doubled after each
//! failure up to a cap, and back to the first once something succeeded.
//!
//! No jitter: each caller retries one session or one request of its own,
//! so there is no crowd of clients to spread out.

use std::time::Duration;

/// Waits between attempts that keep failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) const fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            next: first,
        }
    }

    /// How long to wait before the next attempt; the wait after it is
    /// twice as long, up to the cap.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = wait.saturating_mul(2).min(self.cap);
        wait
    }

    /// Something succeeded: the next failure waits the first wait again.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn waits_double_from_the_first_up_to_the_cap() {
        let mut b = Backoff::new(ms(200), ms(1000));
        let waits: Vec<Duration> = (0..6).map(|_| b.next_wait()).collect();
        assert_eq!(waits, [200, 400, 800, 1000, 1000, 1000].map(ms));
    }

    #[test]
    fn a_reset_starts_again_from_the_first_wait() {
        let mut b = Backoff::new(ms(500), ms(10_000));
        b.next_wait();
        b.next_wait();
        b.reset();
        assert_eq!(b.next_wait(), ms(500));
        assert_eq!(b.next_wait(), ms(1000));
    }

    #[test]
    fn doubling_a_huge_wait_does_not_overflow() {
        let mut b = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(b.next_wait(), Duration::MAX);
        assert_eq!(b.next_wait(), Duration::MAX);
    }
}
