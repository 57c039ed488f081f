//! The Prometheus metric families of `docs/observability.md`.
//!
//! Families live in one registry; per-target and per-route handles are taken once when a
//! policy is compiled, so the request path only touches atomics, never a family's map.

mod histogram;

pub use histogram::AtomicHistogram;

use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Buckets fit LLM calls: from a few milliseconds to ten minutes.
const LATENCY_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 600.0,
];

/// Buckets for the sidecar's own share of a call: tens of microseconds to a second.
const OVERHEAD_BUCKETS: [f64; 12] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0,
];

/// Labels of per-route series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's model name.
    pub route: String,
}

/// Labels of `switchyard_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's model name.
    pub route: String,
    /// `success`, `client_error` or the sidecar's error reason.
    pub outcome: String,
}

/// Labels of per-target series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Provider name.
    pub provider: String,
    /// Target model (`*` when the requested model is sent unchanged).
    pub model: String,
}

/// Labels of `switchyard_attempts_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// Provider name.
    pub provider: String,
    /// Target model.
    pub model: String,
    /// The classified outcome.
    pub outcome: String,
}

/// Labels of `switchyard_failovers_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailoverLabels {
    /// The route's model name.
    pub route: String,
    /// `provider/model` that failed.
    pub from: String,
    /// `provider/model` tried next.
    pub to: String,
    /// Why.
    pub reason: String,
}

/// Labels of `switchyard_tokens_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// Provider name.
    pub provider: String,
    /// Target model.
    pub model: String,
    /// `input` or `output`.
    pub kind: String,
}

/// Labels of `switchyard_policy_reloads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `invalid`.
    pub result: String,
}

type CostCounter = Counter<f64, AtomicU64>;
type SecondsGauge = Gauge<f64, AtomicU64>;

/// Every metric family the sidecar exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    failovers: Family<FailoverLabels, Counter>,
    breaker_state: Family<TargetLabels, Gauge>,
    duration: Family<RouteLabels, AtomicHistogram>,
    ttfb: Family<TargetLabels, AtomicHistogram>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<TargetLabels, CostCounter>,
    hedges: Family<RequestLabels, Counter>,
    probes: Family<AttemptLabels, Counter>,
    baseline_ttft: Family<TargetLabels, SecondsGauge>,
    baseline_per_token: Family<TargetLabels, SecondsGauge>,
    /// Policy loads by result.
    pub reloads: Family<ReloadLabels, Counter>,
    /// The generation of the running policy.
    pub generation: Gauge,
    /// Time a call spent in the sidecar itself, excluding time waiting on upstreams.
    pub overhead: AtomicHistogram,
    /// 1 while the fleet-shared state answers (registered only with `--shared-state`).
    pub shared_state_up: Gauge,
    /// Seconds since the last complete read of the fleet-shared state.
    pub shared_state_sync_age: SecondsGauge,
}

fn latency_histogram() -> AtomicHistogram {
    AtomicHistogram::new(&LATENCY_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding every family.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        let attempts = Family::default();
        let failovers = Family::default();
        let breaker_state = Family::default();
        let duration = Family::new_with_constructor(latency_histogram as fn() -> AtomicHistogram);
        let ttfb = Family::new_with_constructor(latency_histogram as fn() -> AtomicHistogram);
        let tokens = Family::default();
        let cost = Family::default();
        let reloads = Family::default();
        let generation = Gauge::default();
        let overhead = AtomicHistogram::new(&OVERHEAD_BUCKETS);
        let r = &mut registry;
        r.register(
            "switchyard_requests",
            "Inbound calls by route and outcome",
            requests.clone(),
        );
        r.register(
            "switchyard_attempts",
            "Upstream attempts by target and outcome",
            attempts.clone(),
        );
        r.register(
            "switchyard_failovers",
            "Moves from one target to the next",
            failovers.clone(),
        );
        r.register(
            "switchyard_breaker_state",
            "0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        r.register(
            "switchyard_request_duration_seconds",
            "Inbound call duration",
            duration.clone(),
        );
        r.register(
            "switchyard_time_to_first_byte_seconds",
            "Time to response headers, or to first content for streams",
            ttfb.clone(),
        );
        r.register(
            "switchyard_tokens",
            "Tokens reported by providers",
            tokens.clone(),
        );
        r.register(
            "switchyard_cost_usd",
            "Cost from usage and target prices",
            cost.clone(),
        );
        r.register(
            "switchyard_policy_reloads",
            "Policy loads by result",
            reloads.clone(),
        );
        r.register(
            "switchyard_policy_generation",
            "Generation of the running policy",
            generation.clone(),
        );
        r.register(
            "switchyard_overhead_seconds",
            "Time a call spent in the sidecar, excluding time waiting on upstreams",
            overhead.clone(),
        );
        r.register(
            "switchyard_otlp_spans_dropped",
            "Spans dropped before reaching the OTLP collector (queue full or export failed)",
            spans_dropped().clone(),
        );
        let hedges = Family::default();
        r.register(
            "switchyard_hedges",
            "Hedged requests by outcome: won (the hedge answered), lost (the first attempt did), denied (budget or maxRatio)",
            hedges.clone(),
        );
        let probes = Family::default();
        r.register(
            "switchyard_probes",
            "Active probes by outcome (their tokens and cost count in the token and cost metrics)",
            probes.clone(),
        );
        let baseline_ttft = Family::default();
        r.register(
            "switchyard_baseline_ttft_seconds",
            "A target's own normal time to first token of streams (decayed mean)",
            baseline_ttft.clone(),
        );
        let baseline_per_token = Family::default();
        r.register(
            "switchyard_baseline_seconds_per_output_token",
            "A target's own normal latency per output token of non-streamed calls (decayed mean)",
            baseline_per_token.clone(),
        );
        Self {
            registry,
            requests,
            attempts,
            failovers,
            breaker_state,
            duration,
            ttfb,
            tokens,
            cost,
            hedges,
            probes,
            baseline_ttft,
            baseline_per_token,
            reloads,
            generation,
            overhead,
            shared_state_up: Gauge::default(),
            shared_state_sync_age: SecondsGauge::default(),
        }
    }

    /// Exports the fleet-shared state's gauges: they exist only when it is configured.
    pub fn enable_shared_state(&mut self) {
        self.registry.register(
            "switchyard_shared_state_up",
            "1 while the fleet-shared state (Redis) answers, 0 while this pod runs on its own state",
            self.shared_state_up.clone(),
        );
        self.registry.register(
            "switchyard_shared_state_sync_age_seconds",
            "Seconds since the last complete read of the fleet-shared state",
            self.shared_state_sync_age.clone(),
        );
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Handles for one route.
    /// Handles for one route; `targets` are its targets' `provider/model` labels, in
    /// order, for the failover counters.
    pub fn route(&self, route: &str, targets: Vec<String>) -> RouteMetrics {
        let pairs = targets.len() * targets.len();
        RouteMetrics {
            route: route.to_owned(),
            requests: self.requests.clone(),
            failovers: self.failovers.clone(),
            failover_slots: (0..pairs).map(|_| OutcomeCounters::default()).collect(),
            targets,
            by_outcome: Default::default(),
            hedges: self.hedges.clone(),
            by_hedge: Default::default(),
            duration: self
                .duration
                .get_or_create(&RouteLabels {
                    route: route.to_owned(),
                })
                .clone(),
        }
    }

    /// Handles for one target.
    pub fn target(&self, provider: &str, model: &str) -> TargetMetrics {
        let labels = TargetLabels {
            provider: provider.to_owned(),
            model: model.to_owned(),
        };
        let token = |kind: &str| {
            self.tokens
                .get_or_create(&TokenLabels {
                    provider: provider.to_owned(),
                    model: model.to_owned(),
                    kind: kind.to_owned(),
                })
                .clone()
        };
        TargetMetrics {
            labels: labels.clone(),
            attempts: self.attempts.clone(),
            by_outcome: Default::default(),
            breaker_state: self.breaker_state.get_or_create(&labels).clone(),
            ttfb: self.ttfb.get_or_create(&labels).clone(),
            input_tokens: token("input"),
            output_tokens: token("output"),
            cost: self.cost.get_or_create(&labels).clone(),
            probes: self.probes.clone(),
            baseline_ttft: (self.baseline_ttft.clone(), OnceLock::new()),
            baseline_per_token: (self.baseline_per_token.clone(), OnceLock::new()),
        }
    }

    /// Forgets the series of a target that left the policy.
    pub fn remove_target(&self, provider: &str, model: &str) {
        let labels = TargetLabels {
            provider: provider.to_owned(),
            model: model.to_owned(),
        };
        self.breaker_state.remove(&labels);
        self.baseline_ttft.remove(&labels);
        self.baseline_per_token.remove(&labels);
    }
}

/// Spans dropped before reaching the collector, for `switchyard_otlp_spans_dropped_total`.
/// Process-wide because the tracer provider is; kept here, with the other families, so
/// the telemetry pipeline depends on metrics and not the other way round.
pub fn spans_dropped() -> &'static Counter {
    static DROPPED: OnceLock<Counter> = OnceLock::new();
    DROPPED.get_or_init(Counter::default)
}

/// Outcome labels are a small closed set; each gets a lazily created counter handle.
const OUTCOME_SLOTS: usize = 33;

/// Counter handles per outcome label, created on first use and then lock-free.
struct OutcomeCounters([OnceLock<Counter>; OUTCOME_SLOTS]);

impl Default for OutcomeCounters {
    fn default() -> Self {
        OutcomeCounters(std::array::from_fn(|_| OnceLock::new()))
    }
}

impl OutcomeCounters {
    fn get(&self, slot: usize, make: impl FnOnce() -> Counter) -> &Counter {
        self.0[slot % OUTCOME_SLOTS].get_or_init(make)
    }
}

/// Per-route metric handles.
pub struct RouteMetrics {
    route: String,
    requests: Family<RequestLabels, Counter>,
    failovers: Family<FailoverLabels, Counter>,
    /// Per (from, to) target pair, a counter per reason.
    failover_slots: Box<[OutcomeCounters]>,
    targets: Vec<String>,
    by_outcome: OutcomeCounters,
    hedges: Family<RequestLabels, Counter>,
    by_hedge: [OnceLock<Counter>; 3],
    /// Inbound call duration.
    pub duration: AtomicHistogram,
}

impl RouteMetrics {
    /// Counts a move from target `from` to target `to` (indices into the route).
    pub fn failover(&self, from: usize, to: usize, reason: &'static str) {
        let n = self.targets.len();
        let Some(slot) = self.failover_slots.get(from * n + to) else {
            return;
        };
        slot.get(outcome_slot(reason), || {
            self.failovers
                .get_or_create(&FailoverLabels {
                    route: self.route.clone(),
                    from: self.targets[from].clone(),
                    to: self.targets[to].clone(),
                    reason: reason.to_owned(),
                })
                .clone()
        })
        .inc();
    }

    /// Counts a hedged request's outcome.
    pub fn hedge(&self, outcome: HedgeOutcome) {
        let (slot, label) = match outcome {
            HedgeOutcome::Won => (0, "won"),
            HedgeOutcome::Lost => (1, "lost"),
            HedgeOutcome::Denied => (2, "denied"),
        };
        self.by_hedge[slot]
            .get_or_init(|| {
                self.hedges
                    .get_or_create(&RequestLabels {
                        route: self.route.clone(),
                        outcome: label.to_owned(),
                    })
                    .clone()
            })
            .inc();
    }

    /// Counts one inbound call with its outcome label.
    pub fn request(&self, outcome: &'static str) {
        self.by_outcome
            .get(outcome_slot(outcome), || {
                self.requests
                    .get_or_create(&RequestLabels {
                        route: self.route.clone(),
                        outcome: outcome.to_owned(),
                    })
                    .clone()
            })
            .inc();
    }
}

/// Per-target metric handles.
pub struct TargetMetrics {
    /// The target's labels.
    pub labels: TargetLabels,
    attempts: Family<AttemptLabels, Counter>,
    by_outcome: OutcomeCounters,
    /// Breaker state gauge.
    pub breaker_state: Gauge,
    /// Time to first byte (first content for streams).
    pub ttfb: AtomicHistogram,
    /// Prompt tokens.
    pub input_tokens: Counter,
    /// Completion tokens.
    pub output_tokens: Counter,
    /// USD spent.
    pub cost: CostCounter,
    probes: Family<AttemptLabels, Counter>,
    /// The baseline gauges, each created when its estimate first exists.
    baseline_ttft: (Family<TargetLabels, SecondsGauge>, OnceLock<SecondsGauge>),
    baseline_per_token: (Family<TargetLabels, SecondsGauge>, OnceLock<SecondsGauge>),
}

/// How a hedged request ended (`switchyard_hedges_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HedgeOutcome {
    /// The hedge answered first.
    Won,
    /// The first attempt answered first.
    Lost,
    /// A hedge was due but the retry budget or `maxRatio` refused it.
    Denied,
}

impl TargetMetrics {
    /// Counts a completed call's tokens and, with the target's prices (USD per million
    /// input and output tokens), its cost.
    pub fn usage(&self, input: u64, output: u64, per_mtok: Option<(f64, f64)>) {
        self.input_tokens.inc_by(input);
        self.output_tokens.inc_by(output);
        if let Some((input_price, output_price)) = per_mtok {
            self.cost
                .inc_by((input as f64 * input_price + output as f64 * output_price) / 1e6);
        }
    }

    /// Counts one active probe with its outcome label (probes are rare: no cached handle).
    pub fn probe(&self, outcome: &str) {
        self.probes
            .get_or_create(&AttemptLabels {
                provider: self.labels.provider.clone(),
                model: self.labels.model.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Shows the target's baseline (seconds; `None` while it has too few samples).
    pub fn baseline(&self, ttft: Option<f64>, per_token: Option<f64>) {
        for ((family, gauge), value) in [
            (&self.baseline_ttft, ttft),
            (&self.baseline_per_token, per_token),
        ] {
            if let Some(value) = value {
                gauge
                    .get_or_init(|| family.get_or_create(&self.labels).clone())
                    .set(value);
            }
        }
    }

    /// Counts one attempt with its outcome label.
    pub fn attempt(&self, outcome: &'static str) {
        self.by_outcome
            .get(outcome_slot(outcome), || {
                self.attempts
                    .get_or_create(&AttemptLabels {
                        provider: self.labels.provider.clone(),
                        model: self.labels.model.clone(),
                        outcome: outcome.to_owned(),
                    })
                    .clone()
            })
            .inc();
    }
}

/// Every outcome label, each with its own counter slot: what `classify` and `error`
/// produce, plus `cancelled` (the app went away). The set is closed; a label missing here
/// would share the last slot with any other missing one, and whichever came first would
/// count for both, so a test checks every variant has its own slot.
const KNOWN_OUTCOMES: [&str; 32] = [
    "success",
    "client_error",
    "rate_limited",
    "quota_exhausted",
    "connect_error",
    "tls_error",
    "connect_timeout",
    "first_byte_timeout",
    "idle_timeout",
    "http_408",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_529",
    "http_5xx",
    "stream_cut",
    "stream_error",
    "invalid_response",
    "all_failed",
    "unavailable",
    "deadline",
    "cancelled",
    "bad_request",
    "unknown_model",
    "body_too_large",
    "not_found",
    "not_ready",
    "body_timeout",
    "stalled",
    "previous_response_not_found",
    "credentials_error",
];

/// The slot of an outcome label (see [`KNOWN_OUTCOMES`]).
fn outcome_slot(outcome: &str) -> usize {
    KNOWN_OUTCOMES
        .iter()
        .position(|k| *k == outcome)
        .unwrap_or(OUTCOME_SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::classify::{FailReason, Outcome};
    use crate::error::ProxyError;

    /// One of each `ProxyError`; the exhaustive match fails to compile when a variant is
    /// added, pointing here.
    fn every_proxy_error() -> Vec<ProxyError> {
        let errors = vec![
            ProxyError::BadRequest(String::new()),
            ProxyError::UnknownModel(String::new()),
            ProxyError::BodyTooLarge { limit: 1 },
            ProxyError::NotFound(String::new()),
            ProxyError::AllFailed(String::new()),
            ProxyError::Unavailable {
                retry_after: Duration::ZERO,
                detail: String::new(),
            },
            ProxyError::DeadlineExceeded(Duration::ZERO),
            ProxyError::NotReady,
            ProxyError::BodyTimeout(Duration::ZERO),
            ProxyError::PreviousResponseNotFound(String::new()),
            ProxyError::TlsFailed(String::new()),
        ];
        let kinds: HashSet<u8> = errors
            .iter()
            .map(|e| match e {
                ProxyError::BadRequest(_) => 0,
                ProxyError::UnknownModel(_) => 1,
                ProxyError::BodyTooLarge { .. } => 2,
                ProxyError::NotFound(_) => 3,
                ProxyError::AllFailed(_) => 4,
                ProxyError::Unavailable { .. } => 5,
                ProxyError::DeadlineExceeded(_) => 6,
                ProxyError::NotReady => 7,
                ProxyError::BodyTimeout(_) => 8,
                ProxyError::PreviousResponseNotFound(_) => 9,
                ProxyError::TlsFailed(_) => 10,
            })
            .collect();
        assert_eq!(kinds.len(), errors.len(), "one of each variant");
        errors
    }

    /// One of each attempt outcome and failure reason (every labelled status included),
    /// with the same exhaustive-match guard.
    fn every_outcome() -> Vec<Outcome> {
        let mut reasons = vec![
            FailReason::Connect,
            FailReason::Tls(crate::classify::TlsCause::UnknownCa),
            FailReason::ConnectTimeout,
            FailReason::FirstByteTimeout,
            FailReason::IdleTimeout,
            FailReason::Stalled,
            FailReason::Cut,
            FailReason::StreamError,
            FailReason::InvalidResponse,
            FailReason::Deadline,
            FailReason::Credentials,
        ];
        reasons.extend([408, 500, 502, 503, 504, 529, 599].map(FailReason::Status));
        for reason in &reasons {
            match reason {
                FailReason::Connect
                | FailReason::Tls(_)
                | FailReason::ConnectTimeout
                | FailReason::FirstByteTimeout
                | FailReason::IdleTimeout
                | FailReason::Stalled
                | FailReason::Status(_)
                | FailReason::Cut
                | FailReason::StreamError
                | FailReason::InvalidResponse
                | FailReason::Deadline
                | FailReason::Credentials => {}
            }
        }
        let mut outcomes: Vec<Outcome> = reasons.into_iter().map(Outcome::Failure).collect();
        outcomes.extend([
            Outcome::Success,
            Outcome::Throttled {
                cooldown: Duration::ZERO,
                quota_exhausted: false,
            },
            Outcome::Throttled {
                cooldown: Duration::ZERO,
                quota_exhausted: true,
            },
            Outcome::ClientError(http::StatusCode::BAD_REQUEST),
        ]);
        for outcome in &outcomes {
            match outcome {
                Outcome::Success
                | Outcome::Failure(_)
                | Outcome::Throttled { .. }
                | Outcome::ClientError(_) => {}
            }
        }
        outcomes
    }

    #[test]
    fn every_outcome_label_has_a_slot_of_its_own() {
        let mut labels: Vec<&'static str> =
            every_proxy_error().iter().map(|e| e.reason()).collect();
        labels.extend(every_outcome().iter().map(Outcome::label));
        labels.push("cancelled");
        let mut slots = std::collections::HashMap::new();
        for label in labels {
            let slot = outcome_slot(label);
            assert!(
                KNOWN_OUTCOMES.get(slot) == Some(&label),
                "{label:?} has no slot in KNOWN_OUTCOMES"
            );
            assert!(
                slot < OUTCOME_SLOTS - 1,
                "{label:?} lands in the overflow slot"
            );
            if let Some(other) = slots.insert(slot, label) {
                assert_eq!(other, label, "two labels share slot {slot}");
            }
        }
        assert!(KNOWN_OUTCOMES.len() < OUTCOME_SLOTS);
    }

    #[test]
    fn handles_feed_the_families() {
        let m = Metrics::new();
        let t = m.target("openai", "gpt-4o");
        t.attempt("success");
        t.attempt("http_503");
        t.attempt("http_503");
        let r = m.route("gpt-4o", vec!["openai/gpt-4o".into(), "b/x".into()]);
        r.failover(0, 1, "http_503");
        r.failover(0, 1, "http_503");
        r.request("success");
        let text = m.encode();
        assert!(text.contains(r#"switchyard_attempts_total{provider="openai",model="gpt-4o",outcome="http_503"} 2"#), "{text}");
        assert!(text.contains(r#"switchyard_requests_total{route="gpt-4o",outcome="success"} 1"#));
        assert!(text.contains(
            r#"switchyard_failovers_total{route="gpt-4o",from="openai/gpt-4o",to="b/x",reason="http_503"} 2"#
        ));
    }
}
