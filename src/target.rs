//! Live state of one target (provider + model): its breaker, 429 cooldown, in-flight
//! count and observed latency. Each target has its own small lock; nothing on the request
//! path is shared across targets.
//!
//! The [`Registry`] hands the same state to a recompiled policy whenever the target is
//! unchanged (same provider name, baseUrl and model), so reloads keep breakers and
//! cooldowns; state of removed targets goes away with the last policy that used it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::{Breaker, BreakerConfig, CallOutcome, Permit, Snapshot, State, Transition};
use crate::classify::FailReason;
use crate::metrics::{Metrics, TargetMetrics};
use crate::telemetry::spans;

/// What identifies a target across policy reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetKey {
    /// Provider name.
    pub provider: String,
    /// Provider base URL: a target moved elsewhere starts afresh.
    pub base_url: String,
    /// Target model, `*` when the requested model is passed through.
    pub model: String,
}

/// Breaker and cooldown, guarded together because admission reads both.
#[derive(Debug)]
struct Health {
    /// The circuit breaker.
    pub breaker: Breaker,
    /// Resting after a 429 until then.
    pub cooldown_until: Option<Instant>,
}

/// Why a target was passed over for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The breaker is open (or half-open with its probes taken).
    BreakerOpen,
    /// Resting after a 429.
    Cooldown,
    /// At `maxConcurrency`.
    Shed,
}

impl Skip {
    /// Label used in logs, span events and failover metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::BreakerOpen => "breaker_open",
            Skip::Cooldown => "cooldown",
            Skip::Shed => "shed",
        }
    }
}

/// Shared live state of one target.
pub struct TargetState {
    /// Identity across reloads.
    pub key: TargetKey,
    health: Mutex<Health>,
    in_flight: AtomicU32,
    /// Exponentially weighted time to first byte, microseconds (0 = no data yet).
    ttfb_ewma_us: AtomicU64,
    auth_problem_logged: AtomicBool,
    /// The connect failure last logged, cleared when the target answers again.
    connect_problem: Mutex<Option<FailReason>>,
    /// Whether `connect_problem` is set: the answering path checks this, not the lock.
    has_connect_problem: AtomicBool,
    /// Metric handles.
    pub metrics: TargetMetrics,
}

impl std::fmt::Debug for TargetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetState")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// An admitted attempt: holds the breaker permit and the in-flight slot until the
/// attempt's verdict is recorded (or it is dropped unrecorded, which releases both).
#[derive(Debug)]
pub struct Admission {
    state: Arc<TargetState>,
    permit: Option<Permit>,
}

impl TargetState {
    fn new(key: TargetKey, config: BreakerConfig, metrics: &Metrics, now: Instant) -> Self {
        let target_metrics = metrics.target(&key.provider, &key.model);
        Self {
            key,
            health: Mutex::new(Health {
                breaker: Breaker::new(config, now),
                cooldown_until: None,
            }),
            in_flight: AtomicU32::new(0),
            ttfb_ewma_us: AtomicU64::new(0),
            auth_problem_logged: AtomicBool::new(false),
            connect_problem: Mutex::new(None),
            has_connect_problem: AtomicBool::new(false),
            metrics: target_metrics,
        }
    }

    /// The breaker and cooldown; held only for a few field reads or writes.
    fn health(&self) -> MutexGuard<'_, Health> {
        // A panic while holding this lock cannot leave the plain-data state inconsistent.
        self.health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tries to admit one attempt: not cooling down, breaker admits, under `max_concurrency`.
    pub fn admit(
        self: &Arc<Self>,
        max_concurrency: u32,
        now: Instant,
    ) -> Result<Admission, (Skip, Option<Transition>)> {
        if max_concurrency > 0 && self.in_flight.load(Ordering::Acquire) >= max_concurrency {
            return Err((Skip::Shed, None));
        }
        let (permit, transition) = {
            let mut health = self.health();
            if health.cooldown_until.is_some_and(|until| until > now) {
                return Err((Skip::Cooldown, None));
            }
            let (result, transition) = health.breaker.try_acquire(now);
            match result {
                Ok(permit) => (permit, transition),
                Err(_) => return Err((Skip::BreakerOpen, transition)),
            }
        };
        self.observe(transition.as_ref());
        let previous = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if max_concurrency > 0 && previous >= max_concurrency {
            // Lost a race for the last slot: give everything back.
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.health().breaker.release(permit);
            return Err((Skip::Shed, transition));
        }
        Ok(Admission {
            state: Arc::clone(self),
            permit: Some(permit),
        })
    }

    /// Admits one attempt regardless of breaker and cooldown: the last-chance attempt
    /// when every target is excluded (DESIGN §4).
    pub fn admit_forced(self: &Arc<Self>) -> Admission {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Admission {
            state: Arc::clone(self),
            permit: None,
        }
    }

    /// When this target will next accept an attempt.
    pub fn available_at(&self, now: Instant) -> Instant {
        let health = self.health();
        let breaker = health.breaker.available_at(now);
        health.cooldown_until.map_or(breaker, |c| c.max(breaker))
    }

    /// Rests the target after a 429.
    pub fn cool_down(&self, until: Instant) {
        let mut health = self.health();
        health.cooldown_until = Some(health.cooldown_until.map_or(until, |c| c.max(until)));
    }

    /// A snapshot for `/breakers`.
    pub fn snapshot(&self, now: Instant) -> (Snapshot, Option<Instant>) {
        let health = self.health();
        (
            health.breaker.snapshot(now),
            health.cooldown_until.filter(|c| *c > now),
        )
    }

    /// Forces the breaker open until `until` (drills).
    pub fn force_open(&self, until: Instant, now: Instant) {
        let transition = self.health().breaker.force_open(until, now);
        self.observe(transition.as_ref());
    }

    /// Forces the breaker closed and ends any cooldown (drills).
    pub fn force_close(&self, now: Instant) {
        let transition = {
            let mut health = self.health();
            health.cooldown_until = None;
            health.breaker.force_close(now)
        };
        self.observe(transition.as_ref());
    }

    /// Current in-flight attempts.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Smoothed time to first byte, for the `latency` strategy.
    pub fn ttfb_estimate(&self) -> Option<Duration> {
        match self.ttfb_ewma_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Recent failure rate, for the `availability` strategy.
    pub fn failure_rate(&self, now: Instant) -> f64 {
        self.health().breaker.snapshot(now).failure_rate
    }

    /// Whether this is the first 401/403 seen for this target (logged once).
    pub fn first_auth_problem(&self) -> bool {
        !self.auth_problem_logged.swap(true, Ordering::AcqRel)
    }

    /// Whether this connect failure differs from the one last logged for this target
    /// (so a TLS or proxy problem is logged once, not per request).
    pub fn first_connect_problem(&self, reason: FailReason) -> bool {
        let mut last = self
            .connect_problem
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.has_connect_problem.store(true, Ordering::Release);
        last.replace(reason) != Some(reason)
    }

    /// The target answered: a later connect failure is news again.
    pub fn connected(&self) {
        // A load first: answered calls are the hot path and must not write a shared line.
        if self.has_connect_problem.load(Ordering::Acquire)
            && self.has_connect_problem.swap(false, Ordering::AcqRel)
        {
            *self
                .connect_problem
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    fn record_ttfb(&self, ttfb: Duration) {
        let sample = ttfb.as_micros().max(1) as u64;
        let _ = self
            .ttfb_ewma_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    (old * 4 + sample) / 5
                })
            });
        self.metrics.ttfb.observe(ttfb.as_secs_f64());
    }

    /// Logs and exports a breaker transition.
    fn observe(&self, transition: Option<&Transition>) {
        let Some(t) = transition else { return };
        self.metrics.breaker_state.set(t.to.metric_value());
        tracing::warn!(
            provider = %self.key.provider,
            model = %self.key.model,
            from = t.from.as_str(),
            to = t.to.as_str(),
            "circuit breaker transition"
        );
        spans::breaker(
            &format!("{}/{}", self.key.provider, self.key.model),
            t.from.as_str(),
            t.to.as_str(),
        );
    }

    fn reconfigure(&self, config: BreakerConfig) {
        self.health().breaker.reconfigure(config);
    }

    /// The breaker's current state.
    pub fn state(&self) -> State {
        self.health().breaker.state()
    }
}

impl Admission {
    /// The target this admission is for.
    pub fn target(&self) -> &Arc<TargetState> {
        &self.state
    }

    /// Records the attempt's verdict: `failure` for breaker failures, `ttfb` when a first
    /// byte (first content for streams) arrived. Returns the breaker transition, if any.
    pub fn finish(
        mut self,
        failure: bool,
        ttfb: Option<Duration>,
        now: Instant,
    ) -> Option<Transition> {
        if let Some(ttfb) = ttfb {
            self.state.record_ttfb(ttfb);
        }
        let permit = self.permit.take()?;
        let transition = {
            let mut health = self.state.health();
            let slow = ttfb.is_some_and(|t| health.breaker.config().is_slow(t));
            let outcome = if failure {
                CallOutcome::Failure { slow }
            } else {
                CallOutcome::Success { slow }
            };
            health.breaker.record(permit, outcome, now)
        };
        self.state.observe(transition.as_ref());
        transition
    }

    /// Gives the permit back without a verdict (a 429, a client error or a cancelled call
    /// says nothing about the target's health).
    pub fn release(mut self) {
        if let Some(permit) = self.permit.take() {
            self.state.health().breaker.release(permit);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.state.health().breaker.release(permit);
        }
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Finds or creates target state by key; only used when a policy is compiled.
#[derive(Default)]
pub struct Registry {
    targets: Mutex<HashMap<TargetKey, Weak<TargetState>>>,
}

impl Registry {
    /// The state for `key`: the existing one (reconfigured) if a live policy uses it.
    pub fn get_or_create(
        &self,
        key: TargetKey,
        config: BreakerConfig,
        metrics: &Metrics,
        now: Instant,
    ) -> Arc<TargetState> {
        let mut targets = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        targets.retain(|_, weak| weak.strong_count() > 0);
        if let Some(existing) = targets.get(&key).and_then(Weak::upgrade) {
            existing.reconfigure(config);
            return existing;
        }
        let state = Arc::new(TargetState::new(key.clone(), config, metrics, now));
        targets.insert(key, Arc::downgrade(&state));
        state
    }
}
