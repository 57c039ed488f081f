//! One attempt at one target: send, classify, and either produce the app's response or a
//! failure the failover loop can move past without the app seeing anything.
//!
//! Before the commit point nothing reaches the app: error statuses, cut bodies, stalls
//! and streams that break before their first content all come back as [`Attempt::Failed`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::{timeout_at, Instant};

use crate::body::{self, Body};
use crate::classify::{classify_response, FailReason, Outcome};
use crate::policy::{Policy, Route, Target};
use crate::proxy::crossing::Crossing;
use crate::proxy::events::{body_usage, inspect, EventKind, Usage};
use crate::proxy::stream::{emit, Committed, StreamBody};
use crate::proxy::unreachable;
use crate::proxy::upstream::{build_request, Client, Operation};
use crate::sse::Parser;
use crate::target::Admission;
use crate::telemetry::spans;

/// Error bodies and non-streamed replies larger than this are treated as broken.
const MAX_BUFFERED_RESPONSE: usize = 64 << 20;

/// How an attempt ended.
pub enum Attempt {
    /// The app gets this response (a success, or a provider's own client error).
    Answered(Response<Body>),
    /// Fail over: the app sees nothing of this attempt.
    Failed {
        /// The classified outcome.
        outcome: Outcome,
        /// Whether the request's total deadline is what cut it short.
        deadline_hit: bool,
    },
}

/// What an attempt needs to know about its request.
pub struct AttemptRequest<'a> {
    /// The policy snapshot the request started with.
    pub policy: &'a Arc<Policy>,
    /// Index of the route in the policy.
    pub route: usize,
    /// Index of the target in the route.
    pub target: usize,
    /// The inbound operation.
    pub operation: Operation,
    /// The app's request headers.
    pub headers: &'a HeaderMap,
    /// The model sent to the target.
    pub model: &'a str,
    /// The model the app asked for.
    pub requested_model: &'a str,
    /// How bytes cross between the app's dialect and the target's.
    pub crossing: Crossing,
    /// The body to send.
    pub body: Bytes,
    /// The provider's pooled client (a target without one is skipped before this).
    pub client: &'a Client,
    /// Whether the app asked for a stream.
    pub stream: bool,
    /// When the request started.
    pub started: Instant,
    /// The request's total deadline.
    pub deadline: Instant,
}

impl AttemptRequest<'_> {
    fn route(&self) -> &Route {
        &self.policy.routes[self.route]
    }

    fn target(&self) -> &Target {
        &self.route().targets[self.target]
    }
}

/// Settles an attempt (breaker verdict, metrics) once its answer is complete, which for
/// a stream is when the stream ends.
pub struct Settle {
    policy: Arc<Policy>,
    route: usize,
    target: usize,
    admission: Admission,
    started: Instant,
    ttfb: Option<Duration>,
    /// The attempt's span: it ends when the answer is complete (for a stream, its end).
    span: tracing::Span,
}

impl Settle {
    fn target(&self) -> &Target {
        &self.policy.routes[self.route].targets[self.target]
    }

    /// Records a complete answer (`Ok` with its usage) or a failure after the commit point.
    pub fn finish(self, result: Result<Usage, FailReason>) {
        let _entered = self.span.enter();
        let now = Instant::now();
        let target = self.target();
        let metrics = &target.state.metrics;
        let route = &self.policy.routes[self.route];
        match result {
            Ok(usage) => {
                spans::usage(&self.span, usage, self.ttfb);
                metrics.attempt("success");
                metrics.input_tokens.inc_by(usage.input);
                metrics.output_tokens.inc_by(usage.output);
                if let Some(price) = &target.price {
                    let usd = (usage.input as f64 * price.input_per_mtok
                        + usage.output as f64 * price.output_per_mtok)
                        / 1e6;
                    metrics.cost.inc_by(usd);
                }
                route.metrics.request("success");
            }
            Err(reason) => {
                spans::failed(&self.span, reason.as_str());
                metrics.attempt(reason.as_str());
                route.metrics.request(reason.as_str());
                tracing::warn!(
                    route = %route.model,
                    target = %target.label(),
                    reason = reason.as_str(),
                    "stream failed after its commit point"
                );
            }
        }
        route
            .metrics
            .duration
            .observe(now.duration_since(self.started).as_secs_f64());
        match result {
            // The request's own deadline ended the stream: no verdict on the target.
            Err(FailReason::Deadline) => self.admission.release(),
            _ => {
                self.admission.finish(result.is_err(), self.ttfb, now);
            }
        }
    }

    /// The app went away before the answer was complete: no verdict on the target.
    pub fn cancel(self) {
        self.target().state.metrics.attempt("cancelled");
        self.policy.routes[self.route].metrics.request("cancelled");
        self.admission.release();
    }
}

/// Runs one attempt with an admission already granted; `span` is the attempt's span.
pub async fn run(req: &AttemptRequest<'_>, admission: Admission, span: &tracing::Span) -> Attempt {
    let target = req.target();
    let provider = &target.provider;
    let started = Instant::now();
    let first_byte_deadline = (started + provider.timeouts.first_byte).min(req.deadline);
    let upstream_request = match build_request(
        provider,
        req.operation,
        req.model,
        req.headers,
        req.body.clone(),
    ) {
        Ok(mut r) => {
            spans::inject(span, r.headers_mut());
            r
        }
        Err(_) => {
            return fail(
                admission,
                Outcome::Failure(FailReason::InvalidResponse),
                false,
                started,
            )
        }
    };
    let response = match timeout_at(first_byte_deadline, req.client.request(upstream_request)).await
    {
        Ok(Ok(response)) => {
            target.state.connected();
            response
        }
        Ok(Err(err)) => {
            let reason = unreachable::classify(&err);
            unreachable::report(target, reason, &err, span);
            return fail(admission, Outcome::Failure(reason), false, started);
        }
        Err(_) => {
            return fail(
                admission,
                Outcome::Failure(FailReason::FirstByteTimeout),
                Instant::now() >= req.deadline,
                started,
            );
        }
    };
    let (parts, body) = response.into_parts();
    spans::status(span, parts.status);
    let idle = provider.timeouts.idle;
    if !parts.status.is_success() {
        let error_body = read_all(body, idle, req.deadline).await.unwrap_or_default();
        let outcome = classify_response(
            parts.status,
            &parts.headers,
            &error_body,
            req.policy.cooldowns,
            SystemTime::now(),
        );
        return match outcome {
            Outcome::ClientError(_) | Outcome::Success => {
                if matches!(
                    parts.status,
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                ) && target.state.first_auth_problem()
                {
                    tracing::error!(
                        provider = %provider.name,
                        status = parts.status.as_u16(),
                        "provider rejected our credentials: check this provider's auth in the policy"
                    );
                }
                target.state.metrics.attempt("client_error");
                req.route().metrics.request("client_error");
                admission.release();
                let (status, body) = req.crossing.error_body(parts.status, error_body);
                Attempt::Answered(passback(status, &parts.headers, body))
            }
            other => fail(admission, other, false, started),
        };
    }
    let ttfb = started.elapsed();
    spans::response_model(span, req.model);
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let settle = Settle {
        policy: Arc::clone(req.policy),
        route: req.route,
        target: req.target,
        admission,
        started: req.started,
        ttfb: Some(ttfb),
        span: span.clone(),
    };
    if req.stream && is_sse {
        return stream_until_commit(req, parts, body, settle, first_byte_deadline, started).await;
    }
    match read_all(body, idle, req.deadline).await {
        Ok(bytes) => {
            spans::completion(span, req.policy.capture_content, &bytes);
            let usage = body_usage(provider.api, &bytes);
            settle.finish(Ok(usage));
            let body = req.crossing.response_body(bytes, req.requested_model);
            Attempt::Answered(passback(parts.status, &parts.headers, body))
        }
        Err(reason) => {
            let deadline_hit = Instant::now() >= req.deadline;
            let Settle { admission, .. } = settle;
            fail(admission, Outcome::Failure(reason), deadline_hit, started)
        }
    }
}

/// Reads a stream until its first content event, holding lifecycle events back.
async fn stream_until_commit(
    req: &AttemptRequest<'_>,
    parts: http::response::Parts,
    mut upstream: Incoming,
    mut settle: Settle,
    first_byte_deadline: Instant,
    started: Instant,
) -> Attempt {
    let provider = &req.target().provider;
    let mut parser = Parser::new();
    let mut held = VecDeque::new();
    let mut translator = req.crossing.stream_translator(req.requested_model);
    let mut usage = Usage::default();
    let failure = loop {
        let wake = (Instant::now() + provider.timeouts.idle).min(first_byte_deadline);
        let frame = match timeout_at(wake, upstream.frame()).await {
            Err(_) => break FailReason::FirstByteTimeout,
            Ok(None) | Ok(Some(Err(_))) => break FailReason::Cut,
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        parser.push(&data);
        let mut commit = None;
        while let Some(event) = parser.next_event() {
            match inspect(provider.api, &event, &mut usage) {
                EventKind::Lifecycle => emit(&mut translator, event, &mut held),
                EventKind::Error => {
                    commit = Some(Err(FailReason::StreamError));
                    break;
                }
                kind @ (EventKind::Content | EventKind::End) => {
                    emit(&mut translator, event, &mut held);
                    if kind == EventKind::End {
                        commit = Some(Ok(true));
                        break;
                    }
                    commit = commit.or(Some(Ok(false)));
                }
            }
        }
        match commit {
            None => continue,
            Some(Err(reason)) => break reason,
            Some(Ok(ended)) => {
                settle.ttfb = Some(started.elapsed());
                let committed = Committed {
                    upstream,
                    parser,
                    ready: held,
                    usage,
                    ended,
                    translator,
                };
                let body = StreamBody::new(
                    committed,
                    (provider.api, req.operation.dialect()),
                    provider.timeouts.idle,
                    req.deadline,
                    settle,
                );
                let mut response = Response::new(http_body_util::BodyExt::boxed_unsync(body));
                *response.status_mut() = parts.status;
                copy_response_headers(&parts.headers, response.headers_mut());
                return Attempt::Answered(response);
            }
        }
    };
    let Settle { admission, .. } = settle;
    fail(
        admission,
        Outcome::Failure(failure),
        Instant::now() >= req.deadline,
        started,
    )
}

/// Records a failed attempt and reports it to the failover loop.
fn fail(admission: Admission, outcome: Outcome, deadline_hit: bool, started: Instant) -> Attempt {
    let now = Instant::now();
    let state = Arc::clone(admission.target());
    match &outcome {
        // The caller's own deadline says nothing about the target's health.
        Outcome::Failure(_) if deadline_hit => {
            state.metrics.attempt("deadline");
            admission.release();
        }
        Outcome::Failure(reason) => {
            state.metrics.attempt(outcome.label());
            // A first-byte timeout is the slowest of calls: it feeds the slow rate.
            let ttfb = (*reason == FailReason::FirstByteTimeout)
                .then(|| now.saturating_duration_since(started));
            admission.finish(true, ttfb, now);
        }
        Outcome::Throttled { cooldown, .. } => {
            state.metrics.attempt(outcome.label());
            state.cool_down(now + *cooldown);
            admission.release();
        }
        Outcome::Success | Outcome::ClientError(_) => {
            state.metrics.attempt(outcome.label());
            admission.release();
        }
    }
    Attempt::Failed {
        outcome,
        deadline_hit,
    }
}

/// Reads a whole body with an idle timeout between frames and a size cap.
async fn read_all(
    mut body: Incoming,
    idle: Duration,
    deadline: Instant,
) -> Result<Bytes, FailReason> {
    let mut out = BytesMut::new();
    loop {
        let wake = (Instant::now() + idle).min(deadline);
        match timeout_at(wake, body.frame()).await {
            Err(_) => return Err(FailReason::IdleTimeout),
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(_))) => return Err(FailReason::Cut),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > MAX_BUFFERED_RESPONSE {
                        return Err(FailReason::InvalidResponse);
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

/// A buffered response to the app with the provider's own status and headers.
fn passback(status: StatusCode, headers: &HeaderMap, bytes: Bytes) -> Response<Body> {
    let mut response = Response::new(body::full(bytes.clone()));
    *response.status_mut() = status;
    copy_response_headers(headers, response.headers_mut());
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    response
}

/// Response headers never passed on: hop-by-hop and framing the server recomputes.
const DROPPED_RESPONSE: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

fn copy_response_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !DROPPED_RESPONSE.contains(&name.as_str()) {
            to.append(name.clone(), value.clone());
        }
    }
}
