//! Per-target circuit breaker: a pure state machine fed with classified call outcomes.
//!
//! Invariants: no I/O, no locks, no clock of its own (every method takes `now`); a half-open
//! round never has more than `half_open_calls` probes in flight nor more than its trial
//! length admitted; results of calls admitted before the latest transition never cause a
//! transition.

mod baseline;
mod types;
mod window;

pub use baseline::{Baseline, Estimate, Timing, BLACK_HOLE_FLOOR, MIN_SAMPLES, SLOW_FLOOR};
pub use types::{BreakerConfig, CallOutcome, Reason, Snapshot, State, Transition};

use tokio::time::{Duration, Instant};
use window::Window;

/// Retry hint while every probe of a half-open round is out: a probe slot frees only when one
/// returns, which the breaker cannot know in advance, so callers look again this much later.
pub const HALF_OPEN_RETRY: Duration = Duration::from_secs(1);

/// The most a target that is still as sick as when its failure or slow rate tripped the
/// breaker may pass its trial: a trial after a rate trip asks for as many successes in a
/// row as make that this unlikely. Three probes pass a 30% brown-out one round in three,
/// and with a short open period that closed a browned-out target every few seconds
/// (bench/CHAOS.md); twenty pass it once in a thousand rounds, and a recovered target
/// passes them as fast as three.
const TRIAL_FALSE_PASS: f64 = 0.001;
/// The longest trial, reached at rates near the threshold (31 calls at 20%): a recovered
/// target's return must not wait on more calls than this.
const MAX_TRIAL_CALLS: u32 = 32;

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
    /// The trial's length, set when the breaker opens (see [`TRIAL_FALSE_PASS`]);
    /// `trial_calls` never asks fewer than `half_open_calls`, so 0 means exactly that.
    trial: u32,
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
            trial: 0,
            rng,
        }
    }

    /// Ask to send an app's call. `Err` carries when to look again (also the basis of
    /// `Retry-After`). Open turns half-open here, lazily, on the first ask after the open
    /// period, unless active probes make the trial: then an app's call waits for the
    /// breaker to close.
    pub fn try_acquire(&mut self, now: Instant) -> (Result<Permit, Instant>, Option<Transition>) {
        if self.config.active_probes && self.state != State::Closed {
            let retry = self.available_at(now).max(later(now, HALF_OPEN_RETRY));
            return (Err(retry), None);
        }
        self.try_acquire_probe(now)
    }

    /// Ask to send a probe: the same as an app's call without active probes; with them,
    /// only probes turn an open breaker half-open and take its trial slots.
    pub fn try_acquire_probe(
        &mut self,
        now: Instant,
    ) -> (Result<Permit, Instant>, Option<Transition>) {
        let mut transition = None;
        if self.state == State::Open {
            if now < self.open_until {
                return (Err(self.open_until), None);
            }
            transition = Some(self.enter(State::HalfOpen, Reason::OpenElapsed));
        }
        let permit = match self.state {
            State::Closed => Ok(self.permit(false)),
            State::HalfOpen if self.trial_slot_free() => {
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
                (self.probes_succeeded >= self.trial_calls())
                    .then(|| self.close(Reason::ProbesSucceeded, now))
            }
            State::HalfOpen | State::Open => None,
        }
    }

    /// Record a last-chance call: one sent past the breaker because every target of its
    /// route was excluded. It met the target for real, so it settles the trial as a probe
    /// would: a success closes an open or half-open breaker (traffic returns at once when
    /// the target is back, instead of after the open period and a trial), a failure or a
    /// slow answer counts as a failed round and restarts the doubled open period (so the
    /// next last chance goes to another excluded target first). A closed breaker (the
    /// target was cooling down or shed) learns nothing: its window holds admitted calls.
    pub fn record_last_chance(&mut self, outcome: CallOutcome, now: Instant) -> Option<Transition> {
        if self.state == State::Closed {
            return None;
        }
        if let CallOutcome::Success { slow: false } = outcome {
            return Some(self.close(Reason::LastChanceSucceeded, now));
        }
        self.failed_rounds = self.failed_rounds.saturating_add(1);
        if self.state == State::Open {
            self.open_until = later(now, self.open_period());
            return None;
        }
        Some(self.open(Reason::LastChanceFailed, now))
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
        let transition = (self.state != State::Open).then(|| {
            self.trial = 0;
            self.enter(State::Open, Reason::Forced)
        });
        self.open_until = until.max(now);
        transition
    }

    /// Opens a closed breaker because enough pods of the fleet report the target open: an
    /// ordinary, jittered open period, so this pod's own half-open trial decides recovery.
    pub fn open_by_hint(&mut self, now: Instant) -> Option<Transition> {
        (self.state == State::Closed).then(|| self.open(Reason::FleetHint, now))
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
            State::HalfOpen if self.trial_slot_free() => now,
            State::HalfOpen => later(now, HALF_OPEN_RETRY),
        }
    }

    /// Successes in a row the current (or next) half-open trial asks for: `half_open_calls`
    /// after a failure streak, a forced open or a fleet hint; after a rate trip, enough
    /// that the target as it tripped would pass at most once in a thousand rounds (20 at a
    /// 30% failure rate, up to 32). A failed trial keeps the length of the one it repeats.
    pub fn trial_calls(&self) -> u32 {
        self.trial.max(self.config.probes())
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

    /// The settings in force (callers use `is_slow_absolute` to classify).
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

    /// Whether a half-open round may admit another probe: fewer than `half_open_calls` out
    /// at once, and no more admitted than the trial still needs.
    fn trial_slot_free(&self) -> bool {
        let in_flight = self.probes_admitted.saturating_sub(self.probes_succeeded);
        in_flight < self.config.probes() && self.probes_admitted < self.trial_calls()
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

    /// Every transition starts a new epoch and a new count of trial probes: a trial's
    /// counts mean nothing once the breaker left the round they were counted in (a closed
    /// breaker that kept a 20-probe trial's count would hold more than its next trial).
    fn enter(&mut self, to: State, reason: Reason) -> Transition {
        let from = self.state;
        self.state = to;
        self.epoch += 1;
        self.probes_admitted = 0;
        self.probes_succeeded = 0;
        Transition { from, to, reason }
    }

    fn open(&mut self, reason: Reason, now: Instant) -> Transition {
        self.trial = match reason {
            Reason::FailureRate => trial_for(self.window.counts(now).failure_rate()),
            Reason::SlowRate => trial_for(self.window.counts(now).slow_rate()),
            // The repeat of a failed trial is as long as the trial it repeats.
            Reason::ProbeFailed | Reason::LastChanceFailed => self.trial,
            Reason::ConsecutiveFailures
            | Reason::FleetHint
            | Reason::Forced
            | Reason::OpenElapsed
            | Reason::ProbesSucceeded
            | Reason::LastChanceSucceeded => 0,
        };
        self.consecutive = 0;
        self.open_until = later(now, self.open_period());
        self.enter(State::Open, reason)
    }

    fn close(&mut self, reason: Reason, now: Instant) -> Transition {
        self.reset_closed(now);
        self.enter(State::Closed, reason)
    }

    /// A fresh window starting at `now`, no failure streak, base open period and trial.
    fn reset_closed(&mut self, now: Instant) {
        self.window = Window::new(self.config.window, now);
        self.consecutive = 0;
        self.failed_rounds = 0;
        self.trial = 0;
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

/// Successes in a row that a target failing (or slow) at `rate` passes with probability at
/// most [`TRIAL_FALSE_PASS`], capped at [`MAX_TRIAL_CALLS`]; 0 (the configured trial) for
/// a target that failed everything, which any success tells apart.
fn trial_for(rate: f64) -> u32 {
    if !(rate > 0.0 && rate < 1.0) {
        return 0;
    }
    let calls = (TRIAL_FALSE_PASS.ln() / (1.0 - rate).ln()).ceil();
    if calls >= f64::from(MAX_TRIAL_CALLS) {
        MAX_TRIAL_CALLS
    } else {
        // In (0, MAX_TRIAL_CALLS): the conversion is exact.
        calls as u32
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
