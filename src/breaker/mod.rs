//! Per-target circuit breaker: a pure state machine fed with classified call outcomes.
//!
//! Invariants: no I/O, no locks, no clock of its own (every method takes `now`); a half-open
//! round never has more than `half_open_calls` probes admitted; results of calls admitted
//! before the latest transition never cause a transition.

mod window;

pub use window::Counts;

use tokio::time::{Duration, Instant};
use window::Window;

/// Retry hint while every probe of a half-open round is out: a probe slot frees only when one
/// returns, which the breaker cannot know in advance, so callers look again this much later.
pub const HALF_OPEN_RETRY: Duration = Duration::from_secs(1);

/// Breaker settings for one target (DESIGN §3 `circuitBreaker`), already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Length of the sliding window the rates are computed over.
    pub window: Duration,
    /// No rate verdict below this many calls in the window.
    pub minimum_calls: u32,
    /// Open when the window's failure rate reaches this.
    pub failure_rate: f64,
    /// Open after this many fresh failures in a row (0 disables the rule).
    pub consecutive_failures: u32,
    /// A call whose first byte (a stream's commit point) takes longer is slow.
    pub slow_first_byte: Duration,
    /// Open when the window's slow rate reaches this.
    pub slow_rate: f64,
    /// First open period, before jitter.
    pub open_for: Duration,
    /// Cap of the doubling open period.
    pub max_open_for: Duration,
    /// Probes admitted per half-open round; all must succeed to close (0 is treated as 1).
    pub half_open_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            minimum_calls: 10,
            failure_rate: 0.2,
            consecutive_failures: 5,
            slow_first_byte: Duration::from_secs(20),
            slow_rate: 0.5,
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(300),
            half_open_calls: 3,
        }
    }
}

impl BreakerConfig {
    /// Whether a call whose first byte took `first_byte` counts as slow; the caller classifies
    /// with this so the breaker never needs to know about streams or timers.
    pub fn is_slow(&self, first_byte: Duration) -> bool {
        first_byte > self.slow_first_byte
    }

    fn probes(&self) -> u32 {
        self.half_open_calls.max(1)
    }
}

/// Breaker state, as shown in logs and the `state` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls flow; outcomes are counted.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// A few probe calls decide whether to close again.
    HalfOpen,
}

impl State {
    /// Gauge value: 0 closed, 1 open, 2 half-open.
    pub fn metric_value(self) -> i64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }

    /// Label and log form.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a transition happened, for the log line and span event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `consecutive_failures` fresh failures in a row.
    ConsecutiveFailures,
    /// The window's failure rate reached its threshold.
    FailureRate,
    /// The window's slow rate reached its threshold.
    SlowRate,
    /// The open period ended and a probe was admitted.
    OpenElapsed,
    /// Every probe of the half-open round succeeded.
    ProbesSucceeded,
    /// A probe failed or was slow.
    ProbeFailed,
    /// `force_open` / `force_close` (drills, admin).
    Forced,
}

/// A state change, returned so the caller can log it, metric it and add a span event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// What caused it.
    pub reason: Reason,
}

/// Admission of one call; hand it back to `record` or `release` exactly once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a permit must be given back to record() or release()"]
pub struct Permit {
    epoch: u64,
    probe: bool,
}

impl Permit {
    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

/// The verdict on an admitted call, as classified by the caller (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call did not count as a failure; `slow` per `BreakerConfig::is_slow`.
    Success {
        /// First byte later than `slow_first_byte`.
        slow: bool,
    },
    /// The call counts as a breaker failure; `slow` per `BreakerConfig::is_slow`.
    Failure {
        /// First byte later than `slow_first_byte` (e.g. a first-byte timeout).
        slow: bool,
    },
}

impl CallOutcome {
    fn is_failure(self) -> bool {
        matches!(self, CallOutcome::Failure { .. })
    }

    fn is_slow(self) -> bool {
        match self {
            CallOutcome::Success { slow } | CallOutcome::Failure { slow } => slow,
        }
    }
}

/// A point-in-time view for `/breakers` and metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Current state.
    pub state: State,
    /// Calls in the window.
    pub calls: u64,
    /// Failure rate over the window, in [0, 1].
    pub failure_rate: f64,
    /// Slow rate over the window, in [0, 1].
    pub slow_rate: f64,
    /// Fresh failures in a row while closed.
    pub consecutive_failures: u32,
    /// End of the open period, when open.
    pub open_until: Option<Instant>,
}

/// The breaker of one target. Wrap each in its own `Mutex`; no state is shared across targets.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
    /// Bumped on every transition; permits from an older epoch are stale.
    epoch: u64,
    window: Window,
    consecutive: u32,
    open_until: Instant,
    /// Half-open rounds failed since the breaker last closed; doubles the open period.
    failed_rounds: u32,
    probes_admitted: u32,
    probes_succeeded: u32,
    rng: fastrand::Rng,
}

impl Breaker {
    /// A closed breaker whose jitter is seeded from the global `fastrand` generator, so pods
    /// (and targets) do not probe in step.
    pub fn new(config: BreakerConfig, now: Instant) -> Self {
        Self::with_rng(config, now, fastrand::Rng::new())
    }

    /// A closed breaker with deterministic jitter, for tests.
    pub fn with_seed(config: BreakerConfig, now: Instant, seed: u64) -> Self {
        Self::with_rng(config, now, fastrand::Rng::with_seed(seed))
    }

    fn with_rng(config: BreakerConfig, now: Instant, rng: fastrand::Rng) -> Self {
        Self {
            window: Window::new(config.window, now),
            config,
            state: State::Closed,
            epoch: 0,
            consecutive: 0,
            open_until: now,
            failed_rounds: 0,
            probes_admitted: 0,
            probes_succeeded: 0,
            rng,
        }
    }

    /// Ask to send a call. `Err` carries when to look again (also the basis of `Retry-After`).
    /// Open turns half-open here, lazily, on the first ask after the open period.
    pub fn try_acquire(&mut self, now: Instant) -> (Result<Permit, Instant>, Option<Transition>) {
        let mut transition = None;
        if self.state == State::Open {
            if now < self.open_until {
                return (Err(self.open_until), None);
            }
            transition = Some(self.enter(State::HalfOpen, Reason::OpenElapsed));
            self.probes_admitted = 0;
            self.probes_succeeded = 0;
        }
        let permit = match self.state {
            State::Closed => Ok(self.permit(false)),
            State::HalfOpen if self.probes_admitted < self.config.probes() => {
                self.probes_admitted += 1;
                Ok(self.permit(true))
            }
            State::HalfOpen | State::Open => Err(self.available_at(now)),
        };
        (permit, transition)
    }

    /// Record how a call admitted by `permit` went. Fresh results drive transitions; stale
    /// ones (admitted before the latest transition) are only counted in a closed window.
    pub fn record(
        &mut self,
        permit: Permit,
        outcome: CallOutcome,
        now: Instant,
    ) -> Option<Transition> {
        let fresh = permit.epoch == self.epoch;
        match self.state {
            State::Closed => {
                self.window
                    .record(now, outcome.is_failure(), outcome.is_slow());
                if !fresh {
                    return None;
                }
                self.consecutive = if outcome.is_failure() {
                    self.consecutive.saturating_add(1)
                } else {
                    0
                };
                self.trip_reason(now).map(|reason| self.open(reason, now))
            }
            State::HalfOpen if fresh && permit.probe => {
                if outcome.is_failure() || outcome.is_slow() {
                    self.failed_rounds = self.failed_rounds.saturating_add(1);
                    return Some(self.open(Reason::ProbeFailed, now));
                }
                self.probes_succeeded += 1;
                (self.probes_succeeded >= self.config.probes())
                    .then(|| self.close(Reason::ProbesSucceeded, now))
            }
            State::HalfOpen | State::Open => None,
        }
    }

    /// Give back a permit whose call produced no verdict (client gone, target skipped): frees
    /// its half-open probe slot and records nothing.
    pub fn release(&mut self, permit: Permit) {
        if permit.probe && permit.epoch == self.epoch && self.state == State::HalfOpen {
            self.probes_admitted = self.probes_admitted.saturating_sub(1);
        }
    }

    /// Open until exactly `until` (no jitter), e.g. for a failover drill. Already open: only
    /// the end of the period moves.
    pub fn force_open(&mut self, until: Instant, now: Instant) -> Option<Transition> {
        let transition =
            (self.state != State::Open).then(|| self.enter(State::Open, Reason::Forced));
        self.open_until = until.max(now);
        transition
    }

    /// Close and start afresh: window cleared, failure streak and open period reset.
    pub fn force_close(&mut self, now: Instant) -> Option<Transition> {
        if self.state == State::Closed {
            self.reset_closed(now);
            return None;
        }
        Some(self.close(Reason::Forced, now))
    }

    /// When the breaker would next admit a call (`now` if it would now).
    pub fn available_at(&self, now: Instant) -> Instant {
        match self.state {
            State::Closed => now,
            State::Open => self.open_until.max(now),
            State::HalfOpen if self.probes_admitted < self.config.probes() => now,
            State::HalfOpen => later(now, HALF_OPEN_RETRY),
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Counts and state at `now`, for `/breakers` and gauges.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let counts = self.window.counts(now);
        Snapshot {
            state: self.state,
            calls: counts.calls,
            failure_rate: counts.failure_rate(),
            slow_rate: counts.slow_rate(),
            consecutive_failures: self.consecutive,
            open_until: (self.state == State::Open).then_some(self.open_until),
        }
    }

    /// The settings in force (callers use `is_slow` to classify).
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Apply new settings after a policy reload of the same target, keeping the state. A
    /// changed `window` length starts a new, empty window (old buckets would not line up).
    pub fn reconfigure(&mut self, config: BreakerConfig) {
        if config.window != self.config.window {
            self.window = Window::new(config.window, self.window.origin());
        }
        self.config = config;
    }

    fn permit(&self, probe: bool) -> Permit {
        Permit {
            epoch: self.epoch,
            probe,
        }
    }

    fn trip_reason(&self, now: Instant) -> Option<Reason> {
        let limit = self.config.consecutive_failures;
        if limit > 0 && self.consecutive >= limit {
            return Some(Reason::ConsecutiveFailures);
        }
        let counts = self.window.counts(now);
        if counts.calls == 0 || counts.calls < u64::from(self.config.minimum_calls) {
            return None;
        }
        if counts.failure_rate() >= self.config.failure_rate {
            Some(Reason::FailureRate)
        } else if counts.slow_rate() >= self.config.slow_rate {
            Some(Reason::SlowRate)
        } else {
            None
        }
    }

    fn enter(&mut self, to: State, reason: Reason) -> Transition {
        let from = self.state;
        self.state = to;
        self.epoch += 1;
        Transition { from, to, reason }
    }

    fn open(&mut self, reason: Reason, now: Instant) -> Transition {
        self.consecutive = 0;
        self.open_until = later(now, self.open_period());
        self.enter(State::Open, reason)
    }

    fn close(&mut self, reason: Reason, now: Instant) -> Transition {
        self.reset_closed(now);
        self.enter(State::Closed, reason)
    }

    /// A fresh window starting at `now`, no failure streak, base open period.
    fn reset_closed(&mut self, now: Instant) {
        self.window = Window::new(self.config.window, now);
        self.consecutive = 0;
        self.failed_rounds = 0;
    }

    /// `open_for` doubled per failed round, capped at `max_open_for`, then jittered by a
    /// factor in [0.8, 1.2) and capped again so the cap is a real maximum.
    fn open_period(&mut self) -> Duration {
        let doubling = 1u32.checked_shl(self.failed_rounds).unwrap_or(u32::MAX);
        let base = self
            .config
            .open_for
            .saturating_mul(doubling)
            .min(self.config.max_open_for);
        let jitter = 0.8 + 0.4 * self.rng.f64();
        base.mul_f64(jitter).min(self.config.max_open_for)
    }
}

/// `now + d`, saturating instead of panicking on an absurd duration.
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
