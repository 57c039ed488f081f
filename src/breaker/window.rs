//! Time-bucketed call counts for one breaker.
//!
//! Invariant: `counts(now)` only includes calls recorded less than `window` before `now`; a
//! fixed ring of buckets is reused as time moves on, so recording never allocates.

use tokio::time::{Duration, Instant};

/// Number of buckets the window is cut into; expiry is in steps of `window / BUCKETS`.
const BUCKETS: usize = 10;

/// Calls, failures and slow calls seen over a span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls with a verdict.
    pub calls: u64,
    /// Calls that counted as breaker failures.
    pub failures: u64,
    /// Calls whose first byte came later than the slow threshold (failed or not).
    pub slow: u64,
}

impl Counts {
    /// Share of calls that failed, in [0, 1]; 0 when there were no calls.
    pub fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    /// Share of calls that were slow, in [0, 1]; 0 when there were no calls.
    pub fn slow_rate(&self) -> f64 {
        ratio(self.slow, self.calls)
    }

    fn add(&mut self, other: &Counts) {
        self.calls += other.calls;
        self.failures += other.failures;
        self.slow += other.slow;
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Counts are far below 2^53, so the conversion is exact enough for a rate.
        part as f64 / whole as f64
    }
}

/// One slice of the window: the counts of the bucket epoch it currently holds.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    counts: Counts,
}

/// A sliding time window of `BUCKETS` buckets, indexed by bucket epoch modulo `BUCKETS`.
#[derive(Debug, Clone)]
pub struct Window {
    buckets: [Bucket; BUCKETS],
    origin: Instant,
    bucket_nanos: u128,
}

impl Window {
    /// An empty window of length `window`, with bucket epochs counted from `origin`.
    pub fn new(window: Duration, origin: Instant) -> Self {
        // A zero window would divide by zero; one nanosecond per bucket keeps it (almost) empty.
        let bucket_nanos = (window.as_nanos() / BUCKETS as u128).max(1);
        Self {
            buckets: [Bucket::default(); BUCKETS],
            origin,
            bucket_nanos,
        }
    }

    /// Count one call at `now`. A call more than a full window older than the bucket it would
    /// land in (time handed in out of order) is dropped rather than overwrite newer counts.
    pub fn record(&mut self, now: Instant, failure: bool, slow: bool) {
        let epoch = self.epoch(now);
        let bucket = &mut self.buckets[slot(epoch)];
        if bucket.epoch > epoch {
            return;
        }
        if bucket.epoch < epoch {
            *bucket = Bucket {
                epoch,
                counts: Counts::default(),
            };
        }
        bucket.counts.add(&Counts {
            calls: 1,
            failures: u64::from(failure),
            slow: u64::from(slow),
        });
    }

    /// Totals over the buckets still inside the window at `now`.
    pub fn counts(&self, now: Instant) -> Counts {
        let current = self.epoch(now);
        let oldest = current.saturating_sub(BUCKETS as u64 - 1);
        let mut total = Counts::default();
        for bucket in &self.buckets {
            if (oldest..=current).contains(&bucket.epoch) {
                total.add(&bucket.counts);
            }
        }
        total
    }

    /// The instant bucket epochs are counted from (kept when the window is resized).
    pub fn origin(&self) -> Instant {
        self.origin
    }

    fn epoch(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(elapsed / self.bucket_nanos).unwrap_or(u64::MAX)
    }
}

fn slot(epoch: u64) -> usize {
    // The remainder is below BUCKETS, so it always fits a usize.
    (epoch % BUCKETS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    #[test]
    fn counts_calls_failures_and_slow() {
        let t0 = Instant::now();
        let mut w = Window::new(WINDOW, t0);
        w.record(t0, false, false);
        w.record(t0, true, false);
        w.record(t0 + Duration::from_secs(30), true, true);
        let c = w.counts(t0 + Duration::from_secs(30));
        assert_eq!(
            c,
            Counts {
                calls: 3,
                failures: 2,
                slow: 1
            }
        );
        assert!((c.failure_rate() - 2.0 / 3.0).abs() < 1e-9);
        assert!((c.slow_rate() - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn old_buckets_expire_as_time_passes() {
        let t0 = Instant::now();
        let mut w = Window::new(WINDOW, t0);
        w.record(t0, true, false);
        w.record(t0 + Duration::from_secs(30), true, false);
        assert_eq!(w.counts(t0 + Duration::from_secs(59)).calls, 2);
        assert_eq!(w.counts(t0 + Duration::from_secs(60)).calls, 1);
        assert_eq!(w.counts(t0 + Duration::from_secs(90)).calls, 0);
        // A reused slot starts from zero.
        w.record(t0 + Duration::from_secs(120), false, false);
        assert_eq!(w.counts(t0 + Duration::from_secs(120)).failures, 0);
    }

    #[test]
    fn late_record_does_not_overwrite_newer_bucket() {
        let t0 = Instant::now();
        let mut w = Window::new(WINDOW, t0);
        w.record(t0 + Duration::from_secs(60), true, false);
        w.record(t0, false, false);
        assert_eq!(w.counts(t0 + Duration::from_secs(60)).calls, 1);
    }

    #[test]
    fn empty_rates_are_zero_and_zero_window_works() {
        let t0 = Instant::now();
        let mut w = Window::new(Duration::ZERO, t0);
        assert_eq!(w.counts(t0).failure_rate(), 0.0);
        w.record(t0, true, true);
        assert_eq!(w.counts(t0).calls, 1);
        assert_eq!(w.counts(t0 + Duration::from_millis(1)), Counts::default());
    }
}
