//! A token bucket for the reads-per-second cap, so a check never hurts
//! production. One bucket per ensemble; each getData, getChildren and getACL
//! takes one token, whether it travels alone or inside a multi-read.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

pub(crate) struct RateLimiter {
    per_second: f64,
    state: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// `None` when `per_second` is 0, meaning no cap.
    pub(crate) fn new(per_second: u32) -> Option<RateLimiter> {
        (per_second > 0).then(|| RateLimiter {
            per_second: per_second as f64,
            state: Mutex::new(Bucket {
                // A bucket of one second's worth lets a batch start at once
                // without allowing more than the cap over any whole second.
                tokens: per_second as f64,
                last: Instant::now(),
            }),
        })
    }

    /// Waits until `n` reads may be sent. A request larger than the bucket
    /// is let through once the bucket is full, then the debt is paid off.
    pub(crate) async fn acquire(&self, n: u32) {
        let n = n as f64;
        let mut bucket = self.state.lock().await;
        loop {
            let now = Instant::now();
            let elapsed = now.duration_since(bucket.last).as_secs_f64();
            bucket.last = now;
            bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.per_second);
            if bucket.tokens >= n.min(self.per_second) {
                bucket.tokens -= n;
                return;
            }
            let missing = n.min(self.per_second) - bucket.tokens;
            tokio::time::sleep(Duration::from_secs_f64(missing / self.per_second)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_cap() {
        assert!(RateLimiter::new(0).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_over_time() {
        let limiter = RateLimiter::new(100).unwrap();
        let start = Instant::now();
        for _ in 0..30 {
            limiter.acquire(10).await;
        }
        // 300 reads at 100/s with a 100-token burst: at least 2 s of waiting.
        let waited = start.elapsed().as_secs_f64();
        assert!((1.99..2.2).contains(&waited), "{waited}");
    }
}
