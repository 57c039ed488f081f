//! The breaker's value types: settings, states, transitions, outcomes and snapshots.
//!
//! Invariant: plain data with no behaviour beyond labels and classification helpers; the
//! state machine lives in `super`.

use tokio::time::{Duration, Instant};

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
    /// An absolute threshold: a call whose first byte (a stream's commit point) takes
    /// longer is slow. Off unless the policy sets it.
    pub slow_first_byte: Option<Duration>,
    /// A call is slow past this multiple of its target's own baseline.
    pub slow_factor: f64,
    /// Open when the window's slow rate reaches this.
    pub slow_rate: f64,
    /// First open period, before jitter.
    pub open_for: Duration,
    /// Cap of the doubling open period.
    pub max_open_for: Duration,
    /// Probes admitted per half-open round; all must succeed to close (0 is treated as 1).
    pub half_open_calls: u32,
    /// Active probes make the half-open trial (`try_acquire_probe`), so no app call is the
    /// first to meet a target that may still be sick.
    pub active_probes: bool,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            minimum_calls: 10,
            failure_rate: 0.2,
            consecutive_failures: 5,
            slow_first_byte: None,
            slow_factor: 3.0,
            slow_rate: 0.5,
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(300),
            half_open_calls: 3,
            active_probes: false,
        }
    }
}

impl BreakerConfig {
    /// Whether a call whose first byte took `first_byte` counts as slow by the absolute
    /// threshold; the caller classifies with this and the baseline, so the breaker never
    /// needs to know about streams or timers.
    pub fn is_slow_absolute(&self, first_byte: Duration) -> bool {
        self.slow_first_byte.is_some_and(|t| first_byte > t)
    }

    pub(super) fn probes(&self) -> u32 {
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
    /// Enough pods of the fleet report the target open (fleet-shared state).
    FleetHint,
    /// A last-chance call (every target of its route was excluded) succeeded: the
    /// target answered a real call, which settles the trial as a probe's success would.
    LastChanceSucceeded,
    /// A last-chance call failed or was slow.
    LastChanceFailed,
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

/// The verdict on an admitted call, as classified by the caller (DESIGN §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call did not count as a failure; `slow` per the absolute threshold or the target's baseline.
    Success {
        /// Slower than the target's normal, or than `slow_first_byte`.
        slow: bool,
    },
    /// The call counts as a breaker failure; `slow` per the absolute threshold or the target's baseline.
    Failure {
        /// Slower than the target's normal, or than `slow_first_byte` (e.g. a timeout).
        slow: bool,
    },
}

impl CallOutcome {
    pub(super) fn is_failure(self) -> bool {
        matches!(self, CallOutcome::Failure { .. })
    }

    pub(super) fn is_slow(self) -> bool {
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
