//! Rate limits for warnings that repeat with the traffic (a target's 401, a failing key
//! file, a failing probe, a failed request during an outage): the first of a kind is
//! logged at once, then at most one per [`PERIOD`] carrying how many were held back, so an
//! outage is a few lines a minute rather than one per request. A leaf: the request path,
//! the policy compiler and the probes all use it without importing each other.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// At most one line per kind of warning in this period.
pub const PERIOD: Duration = Duration::from_secs(60);

/// Kinds remembered at most; past it the memory starts again (a policy names few
/// targets and routes, so only churn through many reloads reaches it).
const MAX_KINDS: usize = 1024;

/// When each kind of warning was last logged, and how many were held back since.
#[derive(Default)]
pub struct Limiter {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Limiter {
    /// Whether the warning of kind `key` is logged at `now`: `Some(held back since the
    /// last line)` when it is, `None` when it is held back (and counted).
    pub fn admit(&self, key: &str, period: Duration, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((last, held)) = seen.get_mut(key) {
            if now.saturating_duration_since(*last) < period {
                *held += 1;
                return None;
            }
            let suppressed = std::mem::take(held);
            *last = now;
            return Some(suppressed);
        }
        if seen.len() >= MAX_KINDS {
            seen.clear();
        }
        seen.insert(key.to_owned(), (now, 0));
        Some(0)
    }
}

/// The process-wide limiter: a log line is process-wide too.
static LIMITER: LazyLock<Limiter> = LazyLock::new(Limiter::default);

/// [`Limiter::admit`] on the process-wide limiter with [`PERIOD`], now.
pub fn admit(key: &str) -> Option<u64> {
    LIMITER.admit(key, PERIOD, Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_at_once_then_one_per_period_with_the_count_held_back() {
        let limiter = Limiter::default();
        let start = Instant::now();
        let period = Duration::from_secs(60);
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(limiter.admit("401 a", period, at(0)), Some(0));
        assert_eq!(
            limiter.admit("401 b", period, at(0)),
            Some(0),
            "kinds apart"
        );
        for s in 1..=5 {
            assert_eq!(limiter.admit("401 a", period, at(s)), None);
        }
        assert_eq!(limiter.admit("401 a", period, at(60)), Some(5));
        assert_eq!(limiter.admit("401 a", period, at(61)), None);
        assert_eq!(limiter.admit("401 a", period, at(200)), Some(1));
    }
}
