//! The latency limit (`--max-latency`): a walk backs off when the ensemble
//! answers slowly, so a check never makes production wait.
//!
//! The signal is the round trip of each request group the reader sends (a
//! multi-read and its getACLs, or a group of single reads), from the moment
//! it goes out until its last answer is in. Every request of the group was
//! timed by the server from its arrival to its answer, so the server's own
//! latency for any of them is at most that round trip: keeping round trips
//! under the limit keeps the server's latency for our requests under it too,
//! and bounds how long anyone else's request waits behind ours.
//!
//! The lever is a window of reads on the wire per ensemble, grown and shrunk
//! AIMD-style, as TCP does with its congestion window:
//!
//! - it starts at one request group and doubles per round trip (slow start);
//! - a round trip over the limit halves it, once per round trip: answers to
//!   requests sent before the cut say nothing about the new window;
//! - while round trips stay under, it grows by [`STEP`] reads per round trip,
//!   and only when the walk is actually held back by it, and only if the
//!   round trip scaled to the larger window would still be under the limit
//!   (a saturated server answers in time proportional to its queue);
//! - a batch larger than the window is read in parts ([`Throttle::group_nodes`]);
//! - at the floor of [`MIN_WINDOW`] reads, a round trip over the limit is
//!   followed by a pause before the next request (from one limit's length,
//!   doubling up to [`MAX_PAUSE`]), which shrinks again while answers are
//!   quick.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::ratelimit::RateLimiter;

/// The smallest window, in reads: a few nodes' worth, so a walk always moves.
pub(crate) const MIN_WINDOW: usize = 30;
/// Additive increase, in reads per round trip.
pub(crate) const STEP: usize = 60;
/// The longest pause between requests at the floor.
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(1);

/// One ensemble's window. Shared by all of a reader's sessions.
pub(crate) struct Throttle {
    limit: Duration,
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Debug)]
struct State {
    /// Reads allowed on the wire; 0 until the first group sets it.
    window: usize,
    in_flight: usize,
    /// Groups waiting for room in the window.
    waiting: usize,
    /// Since the last landing, a batch was split to fit the window or a
    /// group had to wait: the window, not the walk, set the pace.
    starved: bool,
    slow_start: bool,
    /// Reads answered in time since the last additive step.
    credit: usize,
    /// Bumped on every cut; a group sent before it does not count.
    epoch: u64,
    pause: Duration,
    resume_at: Option<Instant>,
    stats: ThrottleStats,
}

/// What the throttle did over a walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ThrottleStats {
    /// Request groups timed.
    pub groups: u64,
    /// Groups whose round trip was over the limit.
    pub over_limit: u64,
    /// Times the window was cut or a pause lengthened.
    pub backoffs: u64,
    /// The slowest round trip seen.
    pub max_round_trip: Duration,
    /// Time spent pausing at the floor.
    pub paused: Duration,
}

/// A request group on the wire; its round trip is recorded when dropped.
pub(crate) struct Flight<'a> {
    throttle: &'a Throttle,
    reads: usize,
    epoch: u64,
    start: Instant,
}

impl Flight<'_> {
    /// Starts the clock again: time spent before the requests actually go
    /// out (waiting for the reads-per-second cap) is not the server's.
    pub(crate) fn restart_clock(&mut self) {
        self.start = Instant::now();
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.throttle
            .land(self.reads, self.epoch, self.start.elapsed());
    }
}

/// A group counted as waiting; uncounted however `enter` ends, even when
/// the walk drops it half-way.
struct Queued<'a> {
    throttle: &'a Throttle,
    counted: bool,
}

impl Queued<'_> {
    /// The caller already uncounted it under the lock.
    fn leave_counted(mut self) {
        self.counted = false;
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.counted {
            let mut s = self.throttle.lock();
            s.waiting = s.waiting.saturating_sub(1);
        }
    }
}

impl Throttle {
    pub(crate) fn new(limit: Duration) -> Throttle {
        Throttle {
            limit,
            state: Mutex::new(State {
                window: 0,
                in_flight: 0,
                waiting: 0,
                starved: false,
                slow_start: true,
                credit: 0,
                epoch: 0,
                pause: Duration::ZERO,
                resume_at: None,
                stats: ThrottleStats::default(),
            }),
            wake: Notify::new(),
        }
    }

    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a handful of counters updated in one step: whatever
        // a panicking holder left is still consistent enough to go on with.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn stats(&self) -> ThrottleStats {
        self.lock().stats
    }

    /// Reads allowed on the wire right now (0 before the first group).
    #[cfg(test)]
    fn window(&self) -> usize {
        self.lock().window
    }

    /// How many of `nodes` nodes, at `reads_per_node` reads each, to send
    /// as one group so that a group fits the window.
    pub(crate) fn group_nodes(&self, nodes: usize, reads_per_node: usize) -> usize {
        let mut s = self.lock();
        let nodes = nodes.max(1);
        if s.window == 0 {
            return nodes;
        }
        let fits = (s.window / reads_per_node.max(1)).max(1);
        if fits < nodes {
            // The parts go one after the other: the window holds the walk back.
            s.starved = true;
        }
        fits.min(nodes)
    }

    /// Waits until `reads` more reads may go out. A group alone on the wire
    /// always may, so a group larger than the window cannot stall the walk.
    pub(crate) async fn enter(&self, reads: usize) -> Flight<'_> {
        let mut queued: Option<Queued<'_>> = None;
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            // Registered before looking, so a landing in between still wakes us.
            notified.as_mut().enable();
            let resume_at = {
                let mut s = self.lock();
                if s.window == 0 {
                    s.window = reads.max(MIN_WINDOW);
                }
                match s.resume_at {
                    Some(at) if at > Instant::now() => Some(at),
                    _ if s.in_flight == 0 || s.in_flight + reads <= s.window => {
                        s.in_flight += reads;
                        if let Some(q) = queued.take() {
                            s.waiting -= 1;
                            q.leave_counted();
                        }
                        return Flight {
                            throttle: self,
                            reads,
                            epoch: s.epoch,
                            start: Instant::now(),
                        };
                    }
                    _ => {
                        if queued.is_none() {
                            s.waiting += 1;
                            s.starved = true;
                            queued = Some(Queued {
                                throttle: self,
                                counted: true,
                            });
                        }
                        None
                    }
                }
            };
            match resume_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => notified.await,
            }
        }
    }

    fn land(&self, reads: usize, epoch: u64, round_trip: Duration) {
        {
            let mut s = self.lock();
            let held_back = s.waiting > 0 || s.starved;
            s.starved = false;
            s.in_flight = s.in_flight.saturating_sub(reads);
            s.stats.groups += 1;
            s.stats.max_round_trip = s.stats.max_round_trip.max(round_trip);
            let over = round_trip > self.limit;
            if over {
                s.stats.over_limit += 1;
            }
            if epoch == s.epoch {
                if over {
                    self.back_off(&mut s);
                } else {
                    self.recover(&mut s, reads, round_trip, held_back);
                }
            }
        }
        self.wake.notify_waiters();
    }

    fn back_off(&self, s: &mut State) {
        s.stats.backoffs += 1;
        s.slow_start = false;
        s.credit = 0;
        s.epoch += 1;
        if s.window > MIN_WINDOW {
            s.window = (s.window / 2).max(MIN_WINDOW);
            return;
        }
        s.pause = (s.pause * 2).clamp(self.limit.min(MAX_PAUSE), MAX_PAUSE);
        s.resume_at = Some(Instant::now() + s.pause);
        s.stats.paused += s.pause;
    }

    fn recover(&self, s: &mut State, reads: usize, round_trip: Duration, held_back: bool) {
        if !s.pause.is_zero() {
            s.pause /= 2;
            if s.pause < Duration::from_millis(1) {
                s.pause = Duration::ZERO;
                s.resume_at = None;
            } else {
                s.resume_at = Some(Instant::now() + s.pause);
                s.stats.paused += s.pause;
            }
            return;
        }
        if !held_back {
            return;
        }
        let grow = if s.slow_start {
            reads
        } else {
            s.credit += reads;
            if s.credit < s.window {
                return;
            }
            s.credit = 0;
            STEP
        };
        let larger = s.window + grow;
        // Time to answer grows with the queue once the server is the
        // bottleneck: grow only if the scaled round trip stays in bounds.
        let predicted = round_trip.mul_f64(larger as f64 / s.window as f64);
        if predicted <= self.limit {
            s.window = larger;
        } else {
            s.slow_start = false;
        }
    }
}

/// Parses a latency limit: `off` (or `0`) for none, else a duration with
/// its unit, e.g. `200ms`. A bare number is refused: elsewhere it means
/// seconds, and a limit is almost always meant in milliseconds.
pub fn parse_limit(value: &str) -> Result<Option<Duration>, String> {
    let v = value.trim();
    if matches!(v, "off" | "none" | "0") {
        return Ok(None);
    }
    if v.parse::<f64>().is_ok() {
        return Err("give a unit, e.g. 200ms or 1s (or \"off\")".into());
    }
    let d = humantime::parse_duration(v).map_err(|e| format!("{e} (use e.g. 200ms, 1s or off)"))?;
    // The server counts latency in whole milliseconds.
    if d < Duration::from_millis(1) {
        return Err("at least 1ms".into());
    }
    Ok(Some(d))
}

/// Reads per node when every read is made: data, children and ACL.
pub(crate) const READS_PER_NODE: usize = 3;

/// Admits a group of `reads` reads: first room in the window, then the
/// reads-per-second cap; the round trip is timed from then on until the
/// returned flight is dropped.
pub(crate) async fn admit<'a>(
    throttle: Option<&'a Throttle>,
    limiter: Option<&RateLimiter>,
    reads: usize,
) -> Option<Flight<'a>> {
    let mut flight = match throttle {
        Some(t) => Some(t.enter(reads).await),
        None => None,
    };
    if let Some(limiter) = limiter {
        limiter.acquire(reads as u32).await;
        if let Some(f) = &mut flight {
            f.restart_clock();
        }
    }
    flight
}

/// How many of a batch's `nodes` to read as one group: all of them, unless
/// a latency limit's window holds fewer.
pub(crate) fn part_nodes(throttle: Option<&Throttle>, nodes: usize) -> usize {
    match throttle {
        Some(t) => t.group_nodes(nodes, READS_PER_NODE),
        None => nodes.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A server that answers a group after a fixed cost plus a cost per read
    /// on the wire (its queue), as a saturated server does.
    async fn serve(throttle: &Throttle, on_wire: &Mutex<usize>, reads: usize) -> Duration {
        let flight = throttle.enter(reads).await;
        let queued = {
            let mut q = on_wire.lock().unwrap();
            *q += reads;
            *q
        };
        let took = Duration::from_micros(500) + Duration::from_micros(10) * queued as u32;
        tokio::time::sleep(took).await;
        *on_wire.lock().unwrap() -= reads;
        drop(flight);
        took
    }

    #[tokio::test(start_paused = true)]
    async fn converges_under_the_limit_and_stays_there() {
        let throttle = Arc::new(Throttle::new(Duration::from_millis(5)));
        let on_wire = Arc::new(Mutex::new(0usize));
        // Eight walkers of 600-read groups: 4,800 reads on the wire would
        // take 48 ms to answer.
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (t, q) = (throttle.clone(), on_wire.clone());
            tasks.push(tokio::spawn(async move {
                let mut worst_late = Duration::ZERO;
                for i in 0..200 {
                    let nodes = t.group_nodes(200, 3);
                    let took = serve(&t, &q, nodes * 3).await;
                    if i >= 20 {
                        worst_late = worst_late.max(took);
                    }
                }
                worst_late
            }));
        }
        for task in tasks {
            let worst = task.await.unwrap();
            assert!(worst <= Duration::from_millis(6), "{worst:?}");
        }
        let stats = throttle.stats();
        assert!(stats.backoffs >= 1, "{stats:?}");
        // 500 reads on the wire answer in 5.5 ms: the window settles below.
        assert!((MIN_WINDOW..=500).contains(&throttle.window()));
        assert!(stats.over_limit * 20 < stats.groups, "{stats:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_server_is_not_held_back() {
        let throttle = Throttle::new(Duration::from_millis(50));
        let on_wire = Mutex::new(0usize);
        let walkers = (0..8).map(|_| async {
            for _ in 0..50 {
                serve(&throttle, &on_wire, 600).await;
            }
        });
        futures::future::join_all(walkers).await;
        let stats = throttle.stats();
        assert_eq!(stats.backoffs, 0, "{stats:?}");
        assert!(throttle.window() >= 8 * 600, "{}", throttle.window());
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_at_the_floor_and_recovers() {
        let throttle = Throttle::new(Duration::from_millis(5));
        // Every answer is slow, whatever the load.
        for _ in 0..20 {
            let f = throttle.enter(MIN_WINDOW).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(f);
        }
        assert_eq!(throttle.window(), MIN_WINDOW);
        let paused = throttle.stats().paused;
        assert!(paused >= MAX_PAUSE, "{paused:?}");
        // Quick answers again: the pause shrinks away.
        for _ in 0..12 {
            let f = throttle.enter(MIN_WINDOW).await;
            drop(f);
        }
        let started = Instant::now();
        drop(throttle.enter(MIN_WINDOW).await);
        assert!(started.elapsed() < Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_given_up_is_not_counted() {
        let throttle = Throttle::new(Duration::from_millis(5));
        let first = throttle.enter(MIN_WINDOW).await;
        let gave_up =
            tokio::time::timeout(Duration::from_millis(10), throttle.enter(MIN_WINDOW)).await;
        assert!(gave_up.is_err());
        assert_eq!(throttle.lock().waiting, 0);
        drop(first);
        drop(throttle.enter(MIN_WINDOW).await);
        assert_eq!(throttle.lock().in_flight, 0);
    }

    #[test]
    fn limits_parse_with_units_only() {
        assert_eq!(parse_limit("off"), Ok(None));
        assert_eq!(parse_limit(" 0 "), Ok(None));
        assert_eq!(parse_limit("200ms"), Ok(Some(Duration::from_millis(200))));
        assert_eq!(parse_limit("1s"), Ok(Some(Duration::from_secs(1))));
        assert!(parse_limit("200").is_err());
        assert!(parse_limit("0.5").is_err());
        assert!(parse_limit("500us").is_err());
        assert!(parse_limit("fast").is_err());
    }

    #[test]
    fn groups_fit_the_window() {
        let throttle = Throttle::new(Duration::from_millis(5));
        assert_eq!(throttle.group_nodes(200, 3), 200);
        throttle.lock().window = 90;
        assert_eq!(throttle.group_nodes(200, 3), 30);
        assert_eq!(throttle.group_nodes(10, 3), 10);
        throttle.lock().window = 2;
        assert_eq!(throttle.group_nodes(200, 3), 1);
    }
}
