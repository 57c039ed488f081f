//! Hedging settings of a route and the `maxRatio` bound (DESIGN §4 "Real model timing"):
//! hedges never exceed `maxRatio` of the route's requests over a sliding minute.
//!
//! Lock-free: six ten-second buckets of (epoch, requests, hedges) in atomics, so the
//! bound costs a few relaxed operations per request and no lock shared across targets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// When a hedge fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeAfter {
    /// The first attempt's target's own p95 time to first token (10 s before a baseline).
    Auto,
    /// A fixed delay.
    Fixed(Duration),
}

/// `auto` before the target has a baseline: long enough that a healthy call of an
/// unknown target rarely pays for a second attempt.
pub const AUTO_WITHOUT_BASELINE: Duration = Duration::from_secs(10);

const BUCKETS: usize = 6;
const BUCKET: Duration = Duration::from_secs(10);

/// A route's hedging policy and its sliding-minute ratio counter.
#[derive(Debug)]
pub struct Hedge {
    /// When to start the next target.
    pub after: HedgeAfter,
    max_ratio: f64,
    origin: Instant,
    epochs: [AtomicU64; BUCKETS],
    requests: [AtomicU64; BUCKETS],
    hedges: [AtomicU64; BUCKETS],
}

impl Hedge {
    /// A hedge policy allowing at most `max_ratio` hedged requests.
    pub fn new(after: HedgeAfter, max_ratio: f64, now: Instant) -> Self {
        Self {
            after,
            max_ratio,
            origin: now,
            epochs: Default::default(),
            requests: Default::default(),
            hedges: Default::default(),
        }
    }

    /// The bucket for `now`, cleared first if it last held an older epoch.
    fn bucket(&self, now: Instant) -> usize {
        let epoch = (now.saturating_duration_since(self.origin).as_millis() / BUCKET.as_millis())
            as u64
            + 1;
        let slot = (epoch as usize) % BUCKETS;
        let seen = self.epochs[slot].load(Ordering::Acquire);
        if seen != epoch
            && self.epochs[slot]
                .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.requests[slot].store(0, Ordering::Relaxed);
            self.hedges[slot].store(0, Ordering::Relaxed);
        }
        slot
    }

    /// Counts one request of the route.
    pub fn record_request(&self, now: Instant) {
        let slot = self.bucket(now);
        self.requests[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one hedge if the last minute's hedges stay within `max_ratio` of its requests.
    pub fn try_take(&self, now: Instant) -> bool {
        let slot = self.bucket(now);
        let current = (now.saturating_duration_since(self.origin).as_millis() / BUCKET.as_millis())
            as u64
            + 1;
        let (mut requests, mut hedges) = (0u64, 0u64);
        for i in 0..BUCKETS {
            let epoch = self.epochs[i].load(Ordering::Acquire);
            if epoch + (BUCKETS as u64) > current {
                requests += self.requests[i].load(Ordering::Relaxed);
                hedges += self.hedges[i].load(Ordering::Relaxed);
            }
        }
        if (hedges + 1) as f64 > self.max_ratio * requests as f64 {
            return false;
        }
        self.hedges[slot].fetch_add(1, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hedges_stay_under_the_ratio_and_the_window_slides() {
        let t0 = Instant::now();
        let hedge = Hedge::new(HedgeAfter::Auto, 0.1, t0);
        for _ in 0..100 {
            hedge.record_request(t0);
        }
        let taken = (0..100).filter(|_| hedge.try_take(t0)).count();
        assert_eq!(taken, 10);
        // A minute later the old requests and hedges no longer count.
        let later = t0 + Duration::from_secs(61);
        assert!(!hedge.try_take(later));
        for _ in 0..10 {
            hedge.record_request(later);
        }
        assert!(hedge.try_take(later));
        assert!(!hedge.try_take(later));
    }
}
