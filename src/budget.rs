//! The retry budget: failover attempts may add at most `ratio` of the request rate plus
//! `minPerSecond`, so a provider outage cannot turn into a retry storm against the next
//! provider in the chain (the Finagle/Linkerd budget).
//!
//! Lock-free: a token balance in milli-tokens, refilled by requests and by time.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How long unused allowance is kept: bursts of failover are absorbed up to this much
/// accumulated budget.
const HORIZON: Duration = Duration::from_secs(10);

/// A shared, lock-free retry budget.
#[derive(Debug)]
pub struct RetryBudget {
    per_request_milli: i64,
    per_ms_milli: i64,
    cap_milli: i64,
    balance_milli: AtomicI64,
    origin: Instant,
    refilled_at_ms: AtomicU64,
}

impl RetryBudget {
    /// A budget allowing `ratio` extra attempts per request plus `min_per_second`.
    pub fn new(ratio: f64, min_per_second: f64, now: Instant) -> Self {
        let per_second_milli = (min_per_second * 1000.0) as i64;
        let cap_milli = (per_second_milli * HORIZON.as_secs() as i64).max(1000)
            + (ratio * 1000.0) as i64 * 1000;
        Self {
            per_request_milli: (ratio * 1000.0) as i64,
            per_ms_milli: per_second_milli / 1000,
            cap_milli,
            balance_milli: AtomicI64::new(cap_milli.min(per_second_milli.max(1000))),
            origin: now,
            refilled_at_ms: AtomicU64::new(0),
        }
    }

    /// Every request adds its share.
    pub fn deposit(&self) {
        self.add(self.per_request_milli);
    }

    /// Takes one failover attempt from the budget; false when it is spent.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        let now_ms = now.saturating_duration_since(self.origin).as_millis() as u64;
        let before = self.refilled_at_ms.fetch_max(now_ms, Ordering::AcqRel);
        if now_ms > before {
            self.add((now_ms - before) as i64 * self.per_ms_milli);
        }
        self.balance_milli
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b >= 1000).then_some(b - 1000)
            })
            .is_ok()
    }

    fn add(&self, milli: i64) {
        let cap = self.cap_milli;
        let _ = self
            .balance_milli
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some((b + milli).min(cap))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ratio_bounds_retries_and_time_refills() {
        let start = Instant::now();
        let budget = RetryBudget::new(0.2, 0.0, start);
        // The initial allowance is one retry.
        assert!(budget.try_withdraw(start));
        assert!(!budget.try_withdraw(start));
        for _ in 0..10 {
            budget.deposit();
        }
        assert!(budget.try_withdraw(start));
        assert!(budget.try_withdraw(start));
        assert!(!budget.try_withdraw(start));

        let timed = RetryBudget::new(0.0, 10.0, start);
        for _ in 0..10 {
            assert!(timed.try_withdraw(start));
        }
        assert!(!timed.try_withdraw(start));
        tokio::time::advance(Duration::from_millis(300)).await;
        let later = Instant::now();
        assert!(timed.try_withdraw(later));
        assert!(timed.try_withdraw(later));
        assert!(timed.try_withdraw(later));
        assert!(!timed.try_withdraw(later));
    }
}
