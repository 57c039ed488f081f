//! The admin port (`docs/observability.md`): probes, Prometheus metrics, the running
//! policy, breaker state, and the drill endpoints, which only a loopback peer may call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::body::{self, Body};
use crate::shared::Shared;

/// Default length of a drill when `?for=` is absent.
const DEFAULT_DRILL: Duration = Duration::from_secs(60);

/// Handles one admin request.
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (request.method(), segments.as_slice()) {
        (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok\n"),
        (&Method::GET, ["readyz"]) if shared.is_ready() => text(StatusCode::OK, "ready\n"),
        (&Method::GET, ["readyz"]) => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        (&Method::GET, ["metrics"]) => Response::builder()
            .header(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(body::full(shared.metrics.encode()))
            .expect("static response parts are valid"),
        (&Method::GET, ["policy"]) => match shared.policy() {
            Some(policy) => json_response(
                StatusCode::OK,
                &json!({"generation": policy.generation, "spec": policy.spec}),
            ),
            None => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "no policy loaded yet"}),
            ),
        },
        (&Method::GET, ["breakers"]) => breakers(&shared),
        (&Method::POST, ["breakers", provider, model @ .., action @ ("open" | "close")])
            if !model.is_empty() =>
        {
            if !peer.ip().is_loopback() {
                return json_response(
                    StatusCode::FORBIDDEN,
                    &json!({"error": "drills are accepted only from loopback"}),
                );
            }
            let model = model.join("/");
            let duration = match drill_duration(request.uri().query()) {
                Ok(d) => d,
                Err(message) => {
                    return json_response(StatusCode::BAD_REQUEST, &json!({"error": message}))
                }
            };
            drill(&shared, provider, &model, action == &"open", duration)
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no admin endpoint {path}")}),
        ),
    }
}

/// One target's state as `/breakers` shows it.
#[derive(Serialize)]
struct BreakerView {
    /// The routes (by requested model, in policy order) that list this target, so
    /// `switchyard status` can group targets by route.
    routes: Vec<String>,
    provider: String,
    model: String,
    state: &'static str,
    calls: u64,
    failure_rate: f64,
    slow_rate: f64,
    open_for_ms: Option<u128>,
    cooldown_ms: Option<u128>,
    in_flight: u32,
    baseline: BaselineView,
}

/// A target's normal as `/breakers` shows it: `null` fields until enough samples.
#[derive(Serialize)]
struct BaselineView {
    /// Decayed mean time to first token of streams.
    ttft_seconds: Option<f64>,
    /// About the 95th percentile of it (the `auto` hedge delay).
    ttft_p95_seconds: Option<f64>,
    /// Decayed mean seconds per output token of non-streamed calls.
    seconds_per_output_token: Option<f64>,
    /// Decayed mean time to the response headers of non-streamed calls.
    first_byte_seconds: Option<f64>,
    /// Samples behind the three estimates.
    samples: [u32; 3],
}

fn breakers(shared: &Shared) -> Response<Body> {
    let Some(policy) = shared.policy() else {
        return json_response(StatusCode::OK, &json!([]));
    };
    let now = Instant::now();
    let views: Vec<BreakerView> = policy
        .target_states()
        .iter()
        .map(|state| {
            let (snapshot, cooldown, baseline) = state.snapshot(now);
            let routes = policy
                .routes
                .iter()
                .filter(|r| r.targets.iter().any(|t| Arc::ptr_eq(&t.state, state)))
                .map(|r| r.model.clone())
                .collect();
            BreakerView {
                routes,
                provider: state.key.provider.clone(),
                model: state.key.model.clone(),
                state: snapshot.state.as_str(),
                calls: snapshot.calls,
                failure_rate: snapshot.failure_rate,
                slow_rate: snapshot.slow_rate,
                open_for_ms: snapshot
                    .open_until
                    .map(|u| u.saturating_duration_since(now).as_millis()),
                cooldown_ms: cooldown.map(|u| u.saturating_duration_since(now).as_millis()),
                in_flight: state.in_flight(),
                baseline: BaselineView {
                    ttft_seconds: baseline.ttft.mean(),
                    ttft_p95_seconds: baseline.ttft.p95(),
                    seconds_per_output_token: baseline.per_token.mean(),
                    first_byte_seconds: baseline.first_byte.mean(),
                    samples: [
                        baseline.ttft.samples(),
                        baseline.per_token.samples(),
                        baseline.first_byte.samples(),
                    ],
                },
            }
        })
        .collect();
    json_response(StatusCode::OK, &views)
}

fn drill(
    shared: &Shared,
    provider: &str,
    model: &str,
    open: bool,
    duration: Duration,
) -> Response<Body> {
    let Some(policy) = shared.policy() else {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "no policy loaded yet"}),
        );
    };
    let Some(state) = policy
        .target_states()
        .into_iter()
        .find(|s| s.key.provider == provider && s.key.model == model)
    else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no target {provider}/{model}")}),
        );
    };
    let now = Instant::now();
    if open {
        state.force_open(now + duration, now);
        tracing::warn!(
            provider,
            model,
            seconds = duration.as_secs_f64(),
            "drill: breaker forced open"
        );
    } else {
        state.force_close(now);
        tracing::warn!(provider, model, "drill: breaker forced closed");
    }
    json_response(
        StatusCode::OK,
        &json!({"provider": provider, "model": model, "state": state.state().as_str()}),
    )
}

fn drill_duration(query: Option<&str>) -> Result<Duration, String> {
    let value = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("for="));
    match value {
        None => Ok(DEFAULT_DRILL),
        Some(v) => humantime::parse_duration(v).map_err(|e| format!("for={v}: {e}")),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body::full(body))
        .expect("static response parts are valid")
}

fn json_response(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("admin views always serialise");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body::full(body))
        .expect("static response parts are valid")
}
