//! Active probes (`providers[].probe` / `targets[].probe`, DESIGN §4): a minimal synthetic
//! call (one output token, no tools) in the target's own API.
//!
//! Two jobs: it is the half-open trial of an open breaker (so no app call is the first to
//! meet a target that may still be sick; the breaker refuses app calls until the probes
//! close it), and it checks an idle target every `interval`, so a quiet pod learns that its
//! backup is broken before it needs it. Probes never teach the baseline (a one-token call
//! says nothing about a real call's normal) and a provider's client error to a probe counts
//! as alive: it answered, and a probe body it dislikes must not hold a breaker open.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Limited};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant, MissedTickBehavior};

use crate::classify::{classify_response, Outcome};
use crate::log_limit;
use crate::operation::Operation;
use crate::policy::spec::{ApiKind, Wire};
use crate::proxy::outbound::{build_request, seal};
use crate::routing::{Policy, Target};
use crate::shared::Shared;
use crate::wire::body_usage;

/// How often the prober looks for due probes: a recovered target's trial starts within
/// this of its open period ending, so it bounds how soon traffic returns (bench/CHAOS.md:
/// at 1 s, traffic came back on average over a second after an outage ended). Looking
/// is a walk over the targets, so four times a second costs nothing.
const TICK: Duration = Duration::from_millis(250);
/// A probe's own time limit when the target has neither a first-byte timeout nor a
/// baseline to bound it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// Every probe says what it is, so a provider's logs (and the mock's `probes` count) can
/// tell synthetic calls from the app's.
const USER_AGENT: &str = concat!("switchyard-probe/", env!("CARGO_PKG_VERSION"));
/// A probe answer larger than this is not what a one-token call returns.
const MAX_PROBE_BODY: usize = 1 << 20;

/// The running prober; dropping it stops it.
pub struct Prober(JoinHandle<()>);

impl Drop for Prober {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the prober: every [`TICK`] it probes each probed target of the running policy
/// whose breaker waits for a trial or that has been idle for its `interval`.
pub fn spawn(shared: Arc<Shared>) -> Prober {
    Prober(tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(policy) = shared.policy() {
                start_due(&policy);
            }
        }
    }))
}

fn start_due(policy: &Arc<Policy>) {
    let now = Instant::now();
    for (r, route) in policy.routes.iter().enumerate() {
        for (t, target) in route.targets.iter().enumerate() {
            let Some(interval) = target.probe else {
                continue;
            };
            let state = &target.state;
            // A target with calls in flight is not idle, however long ago they started
            // (an 8 s reasoning call): a probe would only add load.
            let idle = state.in_flight() == 0 && state.idle_for(now) >= interval;
            let due = state.awaits_trial(now) || idle;
            // One probe per target at a time, even when several routes share it.
            if due && state.start_probe() {
                tokio::spawn(probe(Arc::clone(policy), r, t));
            }
        }
    }
}

/// Probes one target: once when it is idle, and again while its half-open trial needs
/// more successful probes (one after another: a sick target meets one probe at a time).
async fn probe(policy: Arc<Policy>, route: usize, index: usize) {
    let target = &policy.routes[route].targets[index];
    let state = &target.state;
    for _ in 0..=state.trial_calls() {
        let Ok(admission) = state.admit_probe(Instant::now()) else {
            break;
        };
        let outcome = call(&policy, target).await;
        let now = Instant::now();
        let label = match outcome {
            Outcome::Success => {
                admission.finish(false, None, now);
                "success"
            }
            Outcome::ClientError(status) => {
                if let Some(suppressed) = log_limit::admit(&format!("probe {}", target.label())) {
                    tracing::warn!(target = %target.label(), status = status.as_u16(), suppressed, "probe answered with a client error: counted as alive");
                }
                admission.finish(false, None, now);
                "client_error"
            }
            Outcome::Throttled { cooldown, .. } => {
                state.cool_down(now + cooldown);
                admission.release();
                "rate_limited"
            }
            Outcome::Failure(reason) => {
                if let Some(suppressed) = log_limit::admit(&format!("probe {}", target.label())) {
                    tracing::info!(target = %target.label(), reason = reason.as_str(), suppressed, "probe failed");
                }
                admission.finish(true, None, now);
                reason.as_str()
            }
        };
        state.metrics.probe(label);
        if label != "success" && label != "client_error" || !state.awaits_trial(now) {
            break;
        }
    }
    state.end_probe();
}

/// Sends the synthetic call and classifies its answer.
async fn call(policy: &Policy, target: &Target) -> Outcome {
    let provider = &target.provider;
    let model = target.model.as_deref().unwrap_or_default();
    let (operation, wire, body) = synthetic(provider.api, model);
    if provider.auth.ready().await.is_err() {
        return Outcome::Failure(crate::classify::FailReason::Credentials);
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    let (Ok(client), Ok(request)) = (
        &provider.client,
        build_request(provider, (operation, wire), (model, false), &headers, body),
    ) else {
        // No client: unusable TLS files, already logged when the policy compiled.
        return Outcome::Failure(crate::classify::FailReason::InvalidResponse);
    };
    let until = tokio::time::Instant::now() + PROBE_TIMEOUT;
    let Ok(request) = seal(provider, request, SystemTime::now(), until).await else {
        // No AWS credentials: a configuration problem the chain has logged.
        return Outcome::Failure(crate::classify::FailReason::InvalidResponse);
    };
    let limit = provider
        .timeouts
        .first_byte
        .or_else(|| target.state.baseline().black_hole_after(false))
        .unwrap_or(PROBE_TIMEOUT);
    let exchange = async {
        let response = client.request(request).await?;
        let (parts, body) = response.into_parts();
        // A body cut before its end is no answer, whatever the status said: a probe
        // that took it for one closed breakers on targets that cut every reply
        // (bench/CHAOS.md, streams cut mid-answer).
        let bytes = Limited::new(body, MAX_PROBE_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .ok();
        Ok::<_, crate::upstream::UpstreamError>((parts, bytes))
    };
    match timeout(limit, exchange).await {
        Err(_) => Outcome::Failure(crate::classify::FailReason::Stalled),
        Ok(Err(err)) => Outcome::Failure(crate::proxy::unreachable::classify(&err)),
        Ok(Ok((_, None))) => Outcome::Failure(crate::classify::FailReason::Cut),
        Ok(Ok((parts, Some(bytes)))) => answered(policy, target, wire, parts, &bytes),
    }
}

/// Classifies a probe's whole answer.
fn answered(
    policy: &Policy,
    target: &Target,
    wire: Wire,
    parts: http::response::Parts,
    bytes: &[u8],
) -> Outcome {
    if !parts.status.is_success() {
        return classify_response(
            parts.status,
            &parts.headers,
            bytes,
            policy.cooldowns,
            SystemTime::now(),
        );
    }
    let usage = body_usage(wire, bytes);
    target
        .state
        .metrics
        .usage(usage.input, usage.output, target.per_mtok());
    Outcome::Success
}

/// The smallest call each API answers: one user word, one output token.
fn synthetic(api: ApiKind, model: &str) -> (Operation, Wire, Bytes) {
    let (operation, wire, body) = (crate::provider::of(api).probe)(model);
    (operation, wire, Bytes::from(body.to_string()))
}
