//! One attempt at one target: send, classify, and either produce the app's response or a
//! failure the failover loop can move past without the app seeing anything.
//!
//! Before the commit point nothing reaches the app: error statuses, cut bodies, stalls
//! and streams that break before their first content all come back as [`Attempt::Failed`].
//!
//! Time limits before the commit point ([`Watch`]): the request's search deadline, the
//! configured `firstByte` / `idle` timeouts when set, and the target's black-hole bound
//! (no life for far longer than its own worst normal) once it has a baseline. Any event
//! of a stream (pings, comments, role chunks, reasoning) is life.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use tokio::time::{timeout_at, Instant};

use crate::body::{self, Body};
use crate::breaker::Timing;
use crate::classify::{classify_response, FailReason, Outcome};
use crate::log_limit;
use crate::operation::Operation;
use crate::policy::spec::Wire;
use crate::proxy::crossing::Crossing;
use crate::proxy::outbound::{build_request, seal};
use crate::proxy::settle::Settle;
use crate::proxy::stream::StreamBody;
use crate::proxy::stream_machine::{Refusal, Step, StreamMachine};
use crate::proxy::unreachable;
use crate::proxy::watch::Watch;
use crate::routing::{Policy, Route, Target};
use crate::target::Admission;
use crate::telemetry::spans;
use crate::upstream::{Client, UpstreamBody};
use crate::wire::body_usage;
use crate::wire::responses;
use crate::wire::Framer;

/// How long an attempt waits for a first AWS credential fetch still in flight.
const CREDENTIALS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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
    /// The deadline to find an answer: the route's `timeout`, or the app's if sooner.
    pub deadline: Instant,
    /// The deadline the app asked for (`x-switchyard-timeout`): the only one that cuts a
    /// committed stream that is still flowing.
    pub app_deadline: Option<Instant>,
}

impl AttemptRequest<'_> {
    fn route(&self) -> &Route {
        &self.policy.routes[self.route]
    }

    fn target(&self) -> &Target {
        &self.route().targets[self.target]
    }
}

/// Runs one attempt with an admission already granted; `span` is the attempt's span.
pub async fn run(req: &AttemptRequest<'_>, admission: Admission, span: &tracing::Span) -> Attempt {
    let target = req.target();
    let provider = &target.provider;
    let started = Instant::now();
    let no_life = admission.target().baseline().black_hole_after(req.stream);
    let watch = Watch::new(
        started,
        provider.timeouts.first_byte,
        provider.timeouts.idle,
        no_life,
        req.deadline,
    );
    let upstream_wire = req.crossing.upstream_wire(req.operation);
    // A 401 to a fetched credential (a Vertex token) renews it and tries once more.
    let mut retried = false;
    let response = loop {
        if provider.auth.ready().await.is_err() {
            let outcome = Outcome::Failure(FailReason::Credentials);
            return fail(admission, outcome, req.stream, started);
        }
        let Ok(mut unsealed) = build_request(
            provider,
            (req.operation, upstream_wire),
            (req.model, req.stream),
            req.headers,
            req.body.clone(),
        ) else {
            let outcome = Outcome::Failure(FailReason::InvalidResponse);
            return fail(admission, outcome, req.stream, started);
        };
        let sent_auth = unsealed.headers().get(header::AUTHORIZATION).cloned();
        spans::inject(span, unsealed.headers_mut());
        // Signed last, once nothing changes the request; a first credential fetch still in
        // flight is waited for, within the deadline.
        let until = req.deadline.min(started + CREDENTIALS_WAIT);
        let upstream_request = match seal(provider, unsealed, SystemTime::now(), until).await {
            Ok(request) => request,
            Err(error) => {
                if let Some(suppressed) = log_limit::admit(&format!("unsigned {}", target.label()))
                {
                    tracing::error!(target = %target.label(), %error, suppressed, "request not signed: this target is skipped (reason config) until AWS credentials are available");
                }
                spans::skipped(span, &target.label(), "config");
                admission.release();
                return Attempt::Failed {
                    outcome: Outcome::ClientError(StatusCode::UNAUTHORIZED),
                    deadline_hit: false,
                };
            }
        };
        let (wake, limit) = watch.next(started, true);
        let response = match timeout_at(wake, req.client.request(upstream_request)).await {
            Ok(Ok(response)) => {
                target.state.connected();
                response
            }
            Ok(Err(err)) => {
                let reason = unreachable::classify(&err);
                unreachable::report(target, reason, &err, span);
                return fail(admission, Outcome::Failure(reason), req.stream, started);
            }
            Err(_) => return fail(admission, Outcome::Failure(limit), req.stream, started),
        };
        if response.status() == StatusCode::UNAUTHORIZED
            && !retried
            && provider.auth.rejected(sent_auth.as_ref()).await
        {
            retried = true;
            continue;
        }
        break response;
    };
    let first_byte = started.elapsed();
    let (parts, body) = response.into_parts();
    spans::status(span, parts.status);
    if !parts.status.is_success() {
        return answer_error(req, admission, parts, body, watch, started).await;
    }
    spans::response_model(span, req.model);
    let is_sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(Framer::content_type(upstream_wire)));
    let settle = Settle {
        policy: Arc::clone(req.policy),
        route: req.route,
        target: req.target,
        admission,
        started: req.started,
        sent: started,
        first_byte,
        stream: req.stream && is_sse,
        span: span.clone(),
    };
    if req.stream && is_sse {
        return stream_until_commit(req, parts, body, settle, watch, started).await;
    }
    match read_all(body, watch.after_first_byte()).await {
        Ok(bytes) => {
            spans::completion(span, req.policy.capture_content, &bytes);
            let usage = body_usage(upstream_wire, &bytes);
            if upstream_wire == Wire::Responses {
                if let Some(id) = responses::body_id(&bytes) {
                    target.state.held.remember(&id);
                }
            }
            settle.finish(Ok(usage));
            let body = req.crossing.response_body(bytes, req.requested_model);
            Attempt::Answered(passback(parts.status, &parts.headers, body))
        }
        Err(reason) => {
            let Settle { admission, .. } = settle;
            fail(admission, Outcome::Failure(reason), false, started)
        }
    }
}

/// A non-2xx answer: a provider's client error goes back to the app (in its format), a
/// failing-over status or a throttle moves on.
async fn answer_error(
    req: &AttemptRequest<'_>,
    admission: Admission,
    parts: http::response::Parts,
    body: UpstreamBody,
    watch: Watch,
    started: Instant,
) -> Attempt {
    let target = req.target();
    let provider = &target.provider;
    let error_body = read_all(body, watch.after_first_byte())
        .await
        .unwrap_or_default();
    // Google's signals (RetryInfo) are read by `classify_response` itself.
    let by_name = (crate::provider::of(provider.api).error_outcome)(
        &parts.headers,
        &error_body,
        parts.status,
        req.policy.cooldowns,
    );
    let outcome = by_name.unwrap_or_else(|| {
        classify_response(
            parts.status,
            &parts.headers,
            &error_body,
            req.policy.cooldowns,
            SystemTime::now(),
        )
    });
    match outcome {
        Outcome::ClientError(_) | Outcome::Success => {
            let rejected = matches!(
                parts.status,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            );
            if let Some(suppressed) = rejected
                .then(|| log_limit::admit(&format!("auth {}", target.label())))
                .flatten()
            {
                tracing::error!(
                    provider = %provider.name,
                    target = %target.label(),
                    status = parts.status.as_u16(),
                    suppressed,
                    "provider rejected our credentials: check this provider's auth in the policy"
                );
            }
            target.state.metrics.attempt("client_error");
            req.route().metrics.request("client_error");
            admission.release();
            let (status, body) = req
                .crossing
                .error_body(parts.status, &parts.headers, error_body);
            Attempt::Answered(passback(status, &parts.headers, body))
        }
        other @ (Outcome::Failure(_) | Outcome::Throttled { .. }) => {
            fail(admission, other, req.stream, started)
        }
    }
}

/// Reads a stream until its first content event, holding lifecycle events back. Every
/// frame is life: it pushes the idle and black-hole limits back.
async fn stream_until_commit(
    req: &AttemptRequest<'_>,
    parts: http::response::Parts,
    mut upstream: UpstreamBody,
    mut settle: Settle,
    watch: Watch,
    started: Instant,
) -> Attempt {
    let provider = &req.target().provider;
    let upstream_wire = req.crossing.upstream_wire(req.operation);
    let translator = req
        .crossing
        .stream_translator(req.operation.wire(), req.requested_model);
    let mut machine = StreamMachine::new((upstream_wire, req.operation.wire()), translator);
    let mut last_life = Instant::now();
    let failure = loop {
        let (wake, limit) = watch.next(last_life, false);
        let frame = match timeout_at(wake, upstream.frame()).await {
            Err(_) => break Outcome::Failure(limit),
            Ok(None) | Ok(Some(Err(_))) => break Outcome::Failure(FailReason::Cut),
            Ok(Some(Ok(frame))) => frame,
        };
        last_life = Instant::now();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let step = machine.push(&data);
        if let Some(id) = machine.take_created_id() {
            req.target().state.held.remember(&id);
        }
        match step {
            Step::Holding => continue,
            Step::Refused(Refusal::Error) => break Outcome::Failure(FailReason::StreamError),
            // An in-band rate limit says nothing of how long: the default rest.
            Step::Refused(Refusal::Throttled) => {
                break Outcome::Throttled {
                    cooldown: req.policy.cooldowns.default,
                    quota_exhausted: false,
                }
            }
            Step::Flowing | Step::Ended | Step::Broken => {
                settle.first_byte = started.elapsed();
                let body = StreamBody::new(
                    (upstream, machine, step),
                    provider.timeouts.idle,
                    req.app_deadline,
                    settle,
                );
                let mut response = Response::new(http_body_util::BodyExt::boxed_unsync(body));
                *response.status_mut() = parts.status;
                copy_response_headers(&parts.headers, response.headers_mut());
                if Framer::content_type(upstream_wire) != Framer::content_type(req.operation.wire())
                {
                    // Re-framed on the way (AWS event stream → SSE): say what the app gets.
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(Framer::content_type(req.operation.wire())),
                    );
                }
                return Attempt::Answered(response);
            }
        }
    };
    let Settle { admission, .. } = settle;
    fail(admission, failure, true, started)
}

/// Records a failed attempt and reports it to the failover loop. A timeout or a stall
/// is the slowest of calls: its waiting time feeds the slow rate.
fn fail(admission: Admission, outcome: Outcome, stream: bool, started: Instant) -> Attempt {
    let now = Instant::now();
    let state = Arc::clone(admission.target());
    let deadline_hit = outcome == Outcome::Failure(FailReason::Deadline);
    match &outcome {
        // The caller's own deadline says nothing about the target's health.
        Outcome::Failure(FailReason::Deadline) => {
            state.metrics.attempt("deadline");
            admission.release();
        }
        Outcome::Failure(reason) => {
            state.metrics.attempt(outcome.label());
            let waited = now.saturating_duration_since(started);
            let timing = matches!(
                reason,
                FailReason::FirstByteTimeout | FailReason::IdleTimeout | FailReason::Stalled
            )
            .then_some(if stream {
                Timing::Stream { ttft: waited }
            } else {
                Timing::Whole {
                    first_byte: waited,
                    latency: waited,
                    output_tokens: 0,
                }
            });
            admission.finish(true, timing, now);
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

/// Reads a whole body within the attempt's limits and a size cap.
async fn read_all(mut body: UpstreamBody, watch: Watch) -> Result<Bytes, FailReason> {
    let mut out = BytesMut::new();
    let mut last_life = Instant::now();
    loop {
        let (wake, limit) = watch.next(last_life, false);
        match timeout_at(wake, body.frame()).await {
            Err(_) => return Err(limit),
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(_))) => return Err(FailReason::Cut),
            Ok(Some(Ok(frame))) => {
                last_life = Instant::now();
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
