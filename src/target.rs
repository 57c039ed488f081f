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

use opentelemetry::KeyValue;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::breaker::{
    Baseline, Breaker, BreakerConfig, CallOutcome, Permit, Snapshot, State, Timing, Transition,
};
use crate::classify::FailReason;
use crate::limits::Limits;
use crate::metrics::{Metrics, TargetMetrics};

mod held;

pub use held::HeldResponses;

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

/// Breaker, cooldown and baseline, guarded together because a verdict reads and writes
/// all three.
#[derive(Debug)]
struct Health {
    /// The circuit breaker.
    pub breaker: Breaker,
    /// Resting after a 429 until then.
    pub cooldown_until: Option<Instant>,
    /// The target's own normal timing.
    pub baseline: Baseline,
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
    /// When the state was made: the origin of `last_admitted_ms`.
    created: Instant,
    /// When an attempt (app or probe) was last admitted, in ms since `created`.
    last_admitted_ms: AtomicU64,
    /// A probe of this target is in flight (at most one at a time).
    probing: AtomicBool,
    /// Exponentially weighted time to first byte, microseconds (0 = no data yet).
    ttfb_ewma_us: AtomicU64,
    /// The connect failure last logged, cleared when the target answers again.
    connect_problem: Mutex<Option<FailReason>>,
    /// Whether `connect_problem` is set: the answering path checks this, not the lock.
    has_connect_problem: AtomicBool,
    /// Metric handles.
    pub metrics: TargetMetrics,
    /// Requests and tokens per minute (`providers[].limits`).
    pub limits: Limits,
    /// Stored Responses this target created, for calls that continue them.
    pub held: HeldResponses,
    /// Woken when a cooldown starts or the breaker opens: the fleet sync publishes news
    /// at once rather than at its next tick (shared by the registry's targets; touched
    /// only on those rare events, never on an ordinary call).
    news: Arc<Notify>,
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
    /// Tokens reserved in the target's budget until the attempt ends.
    reserved: u64,
}

impl TargetState {
    fn new(
        key: TargetKey,
        config: BreakerConfig,
        metrics: &Metrics,
        now: Instant,
        news: Arc<Notify>,
    ) -> Self {
        let target_metrics = metrics.target(&key.provider, &key.model);
        Self {
            key,
            health: Mutex::new(Health {
                breaker: Breaker::new(config, now),
                cooldown_until: None,
                baseline: Baseline::default(),
            }),
            in_flight: AtomicU32::new(0),
            created: now,
            last_admitted_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            ttfb_ewma_us: AtomicU64::new(0),
            connect_problem: Mutex::new(None),
            has_connect_problem: AtomicBool::new(false),
            metrics: target_metrics,
            limits: Limits::default(),
            held: HeldResponses::default(),
            news,
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
        self.touch(now);
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
            reserved: 0,
        })
    }

    fn touch(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.created).as_millis() as u64;
        self.last_admitted_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// How long since an attempt was last admitted (since creation if never).
    pub fn idle_for(&self, now: Instant) -> Duration {
        let since_created = now.saturating_duration_since(self.created);
        since_created.saturating_sub(Duration::from_millis(
            self.last_admitted_ms.load(Ordering::Relaxed),
        ))
    }

    /// Claims the target's one probe slot; `false` when a probe is already in flight.
    pub fn start_probe(&self) -> bool {
        !self.probing.swap(true, Ordering::AcqRel)
    }

    /// Frees the probe slot.
    pub fn end_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }

    /// Successful probes the breaker's half-open trial asks for.
    pub fn trial_calls(&self) -> u32 {
        self.health().breaker.trial_calls()
    }

    /// Whether the breaker waits for a probe to make its half-open trial.
    pub fn awaits_trial(&self, now: Instant) -> bool {
        let health = self.health();
        match health.breaker.state() {
            State::Closed => false,
            State::Open => health.breaker.available_at(now) <= now,
            State::HalfOpen => true,
        }
    }

    /// Admits a probe: as an app's call (not during a 429 cooldown: the provider asked for
    /// rest), but it is the one caller that may make the half-open trial.
    pub fn admit_probe(self: &Arc<Self>, now: Instant) -> Result<Admission, Skip> {
        let (permit, transition) = {
            let mut health = self.health();
            if health.cooldown_until.is_some_and(|until| until > now) {
                return Err(Skip::Cooldown);
            }
            let (result, transition) = health.breaker.try_acquire_probe(now);
            match result {
                Ok(permit) => (permit, transition),
                Err(_) => return Err(Skip::BreakerOpen),
            }
        };
        self.observe(transition.as_ref());
        self.touch(now);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok(Admission {
            state: Arc::clone(self),
            permit: Some(permit),
            reserved: 0,
        })
    }

    /// Admits one attempt regardless of breaker and cooldown: the last-chance attempt
    /// when every target is excluded (DESIGN §4).
    pub fn admit_forced(self: &Arc<Self>) -> Admission {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Admission {
            state: Arc::clone(self),
            permit: None,
            reserved: 0,
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
        let later = health.cooldown_until.is_none_or(|c| until > c);
        health.cooldown_until = Some(health.cooldown_until.map_or(until, |c| c.max(until)));
        drop(health);
        if later {
            self.news.notify_one();
        }
    }

    /// A snapshot for `/breakers`.
    pub fn snapshot(&self, now: Instant) -> (Snapshot, Option<Instant>, Baseline) {
        let health = self.health();
        (
            health.breaker.snapshot(now),
            health.cooldown_until.filter(|c| *c > now),
            health.baseline,
        )
    }

    /// The target's normal timing, for an attempt's black-hole bound and hedge delay.
    pub fn baseline(&self) -> Baseline {
        self.health().baseline
    }

    /// The end of the current 429 cooldown, if any.
    pub fn cooldown_until(&self, now: Instant) -> Option<Instant> {
        self.health().cooldown_until.filter(|c| *c > now)
    }

    /// Opens a closed breaker on the fleet's word (enough pods report it open).
    pub fn open_by_hint(&self, now: Instant) {
        let transition = self.health().breaker.open_by_hint(now);
        self.observe(transition.as_ref());
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
        if t.to == State::Open {
            self.news.notify_one();
        }
        tracing::warn!(
            provider = %self.key.provider,
            model = %self.key.model,
            from = t.from.as_str(),
            to = t.to.as_str(),
            "circuit breaker transition"
        );
        breaker_event(
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

/// Span event on the current span (the call's or the probe's): a breaker changed state
/// (`switchyard.breaker`, docs/observability.md). Emitted here, where the transition
/// happens, so live target state stays below telemetry.
fn breaker_event(target: &str, from: &str, to: &str) {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.add_event(
            "switchyard.breaker",
            vec![
                KeyValue::new("target", target.to_owned()),
                KeyValue::new("from", from.to_owned()),
                KeyValue::new("to", to.to_owned()),
            ],
        );
    }
}

impl Admission {
    /// Takes a request and `expected` tokens from the target's budget for as long as the
    /// attempt lasts; `false` when the target is at its limits (skip it as shed).
    pub fn reserve(&mut self, expected: u64) -> bool {
        if !self.state.limits.is_limited() {
            // The common case reads no clock.
            return true;
        }
        let minute = crate::limits::minute_of(std::time::SystemTime::now());
        let taken = self.state.limits.reserve(expected, minute);
        if taken {
            self.reserved = expected;
        }
        taken
    }

    /// The target this admission is for.
    pub fn target(&self) -> &Arc<TargetState> {
        &self.state
    }

    /// Records the attempt's verdict: `failure` for breaker failures, `timing` when the
    /// call got as far as a first byte (first content for streams) or waited for one.
    /// A success teaches the baseline; slowness is judged before it learns. Returns the
    /// breaker transition, if any.
    pub fn finish(
        mut self,
        failure: bool,
        timing: Option<Timing>,
        now: Instant,
    ) -> Option<Transition> {
        let first_byte = timing.map(|t| match t {
            Timing::Stream { ttft } => ttft,
            Timing::Whole { first_byte, .. } => first_byte,
        });
        if let Some(first_byte) = first_byte {
            self.state.record_ttfb(first_byte);
        }
        let transition = {
            let mut health = self.state.health();
            let config = health.breaker.config();
            let slow = timing.is_some_and(|t| {
                first_byte.is_some_and(|f| config.is_slow_absolute(f))
                    || health.baseline.is_slow(t, config.slow_factor)
            });
            if let (Some(timing), false) = (timing, failure) {
                health.baseline.record(timing, now);
                let baseline = &health.baseline;
                self.state
                    .metrics
                    .baseline(baseline.ttft.mean(), baseline.per_token.mean());
            }
            let outcome = if failure {
                CallOutcome::Failure { slow }
            } else {
                CallOutcome::Success { slow }
            };
            match self.permit.take() {
                Some(permit) => health.breaker.record(permit, outcome, now),
                // Admitted past the breaker as a route's last chance: its verdict is the trial.
                None => health.breaker.record_last_chance(outcome, now),
            }
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
        self.state.limits.unreserve(self.reserved);
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
    news: Arc<Notify>,
}

impl Registry {
    /// Woken whenever one of the registry's targets starts a cooldown or opens its
    /// breaker: what the fleet sync publishes without waiting for its tick.
    pub fn news(&self) -> Arc<Notify> {
        Arc::clone(&self.news)
    }

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
        let news = Arc::clone(&self.news);
        let state = Arc::new(TargetState::new(key.clone(), config, metrics, now, news));
        targets.insert(key, Arc::downgrade(&state));
        state
    }
}
