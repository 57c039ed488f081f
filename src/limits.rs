//! Request and token budgets of a target (`providers[].limits`): a call that would take a
//! target over its requests or tokens per minute skips it as `shed`, before the provider
//! answers it with a 429.
//!
//! Per target (provider key + model), which is how OpenAI and Anthropic count their
//! limits. Lock-free: the current minute's counters in atomics. A call reserves one request
//! and its expected tokens (the prompt's size, about four bytes a token) when admitted, and
//! settles with the usage the provider reported; the reservation ends when the attempt
//! does. With `--shared-state` the fleet sync adds the other pods' usage of the same minute
//! (`fleet_used`), so N pods together stay under the limit within one sync (100 ms) of
//! their traffic; without it, the limits hold per pod.

use std::sync::atomic::{AtomicU64, Ordering};

/// Limits per minute; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens (input and output) per minute.
    pub tokens_per_minute: Option<u64>,
}

/// One target's budget for the current minute; unlimited until configured.
#[derive(Debug)]
pub struct Limits {
    rpm: AtomicU64,
    tpm: AtomicU64,
    /// The unix minute the counters belong to.
    minute: AtomicU64,
    requests: AtomicU64,
    tokens: AtomicU64,
    /// Tokens reserved by calls still in flight.
    reserved: AtomicU64,
    fleet_requests: AtomicU64,
    fleet_tokens: AtomicU64,
}

const UNLIMITED: u64 = u64::MAX;

impl Default for Limits {
    fn default() -> Self {
        Self {
            rpm: AtomicU64::new(UNLIMITED),
            tpm: AtomicU64::new(UNLIMITED),
            minute: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            fleet_requests: AtomicU64::new(0),
            fleet_tokens: AtomicU64::new(0),
        }
    }
}

impl Limits {
    /// Installs (or, on a reload, replaces) the limits.
    pub fn configure(&self, config: LimitsConfig) {
        self.rpm.store(
            config.requests_per_minute.unwrap_or(UNLIMITED),
            Ordering::Relaxed,
        );
        self.tpm.store(
            config.tokens_per_minute.unwrap_or(UNLIMITED),
            Ordering::Relaxed,
        );
    }

    /// Whether any limit is set (only then does the fleet sync share this budget).
    pub fn is_limited(&self) -> bool {
        self.rpm.load(Ordering::Relaxed) != UNLIMITED
            || self.tpm.load(Ordering::Relaxed) != UNLIMITED
    }

    /// Starts a new minute's counters when `minute` moved on.
    fn roll(&self, minute: u64) {
        let seen = self.minute.load(Ordering::Acquire);
        if seen < minute
            && self
                .minute
                .compare_exchange(seen, minute, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.requests.store(0, Ordering::Relaxed);
            self.tokens.store(0, Ordering::Relaxed);
            self.fleet_requests.store(0, Ordering::Relaxed);
            self.fleet_tokens.store(0, Ordering::Relaxed);
        }
    }

    /// Takes one request and `expected` tokens of `minute`'s budget; `false` when either
    /// would go over (nothing is taken then).
    pub fn reserve(&self, expected: u64, minute: u64) -> bool {
        if !self.is_limited() {
            return true;
        }
        self.roll(minute);
        let requests = self.requests.fetch_add(1, Ordering::AcqRel) + 1;
        let fleet = self.fleet_requests.load(Ordering::Relaxed);
        let tokens = self.tokens.load(Ordering::Relaxed)
            + self.reserved.load(Ordering::Relaxed)
            + self.fleet_tokens.load(Ordering::Relaxed);
        let over = requests.saturating_add(fleet) > self.rpm.load(Ordering::Relaxed)
            || tokens.saturating_add(expected) > self.tpm.load(Ordering::Relaxed);
        if over {
            self.requests.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        self.reserved.fetch_add(expected, Ordering::AcqRel);
        true
    }

    /// Ends a reservation of `expected` tokens.
    pub fn unreserve(&self, expected: u64) {
        let _ = self
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                Some(r.saturating_sub(expected))
            });
    }

    /// Counts the tokens an answer used.
    pub fn settle(&self, used: u64, minute: u64) {
        if self.is_limited() {
            self.roll(minute);
            self.tokens.fetch_add(used, Ordering::AcqRel);
        }
    }

    /// This pod's own usage of `minute`: (requests, tokens).
    pub fn used(&self, minute: u64) -> (u64, u64) {
        self.roll(minute);
        (
            self.requests.load(Ordering::Relaxed),
            self.tokens.load(Ordering::Relaxed),
        )
    }

    /// The other pods' usage of `minute`, from the fleet sync.
    pub fn set_fleet_used(&self, minute: u64, requests: u64, tokens: u64) {
        self.roll(minute);
        if self.minute.load(Ordering::Acquire) == minute {
            self.fleet_requests.store(requests, Ordering::Relaxed);
            self.fleet_tokens.store(tokens, Ordering::Relaxed);
        }
    }
}

/// The unix minute of a wall-clock time, the window both pods and Redis count in.
pub fn minute_of(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_tokens_stay_under_the_limits_and_the_minute_resets_them() {
        let limits = Limits::default();
        assert!(limits.reserve(1_000_000, 1), "unlimited by default");
        limits.configure(LimitsConfig {
            requests_per_minute: Some(3),
            tokens_per_minute: Some(100),
        });
        assert!(limits.reserve(40, 7));
        limits.unreserve(40);
        limits.settle(40, 7);
        assert!(limits.reserve(40, 7));
        assert!(!limits.reserve(40, 7), "40 + 40 reserved + 40 > 100 tokens");
        limits.unreserve(40);
        limits.settle(10, 7);
        assert!(limits.reserve(10, 7));
        assert!(!limits.reserve(0, 7), "a fourth request in the minute");
        assert_eq!(limits.used(7), (3, 50));
        assert!(limits.reserve(0, 8), "a new minute");
    }

    #[test]
    fn the_fleets_usage_counts() {
        let limits = Limits::default();
        limits.configure(LimitsConfig {
            requests_per_minute: Some(10),
            tokens_per_minute: None,
        });
        limits.set_fleet_used(3, 9, 0);
        assert!(limits.reserve(0, 3));
        assert!(!limits.reserve(0, 3));
    }
}
