//! The failover loop (DESIGN §4): attempts run one at a time along the plan until one
//! answers, the plan or `maxAttempts` runs out, the retry budget is spent, or the
//! deadline passes. When every target is excluded, one last-chance attempt goes to the
//! target available soonest; never a hard fail while any target may be up.

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue};
use http::Response;
use tokio::time::Instant;

use crate::body::Body;
use crate::classify::Outcome;
use crate::error::ProxyError;
use crate::policy::spec::{ApiKind, Strategy};
use crate::policy::Policy;
use crate::proxy::attempt::{self, Attempt, AttemptRequest};
use crate::proxy::crossing::Crossing;
use crate::proxy::inbound::InboundBody;
use crate::proxy::plan;
use crate::proxy::upstream::{Client, Operation};
use crate::shared::Shared;
use crate::target::Admission;
use crate::telemetry::spans;
use crate::translate::Unsupported;
use serde_json::Value;
use tracing::Instrument as _;

/// Serves one inbound call on the policy snapshot it started with.
pub async fn serve(
    ctx: &Shared,
    policy: Arc<Policy>,
    operation: Operation,
    headers: &HeaderMap,
    body: InboundBody,
) -> Result<Response<Body>, ProxyError> {
    let started = Instant::now();
    let dialect = operation.dialect();
    let route_index = policy
        .route_index(dialect, &body.model)
        .ok_or_else(|| ProxyError::UnknownModel(body.model.clone()))?;
    let route = &policy.routes[route_index];
    spans::requested(&tracing::Span::current(), operation, &body.model);
    let strategy = header_str(headers, "x-switchyard-strategy")
        .and_then(Strategy::parse)
        .unwrap_or(route.strategy);
    let timeout = header_str(headers, "x-switchyard-timeout")
        .and_then(|t| humantime::parse_duration(t).ok())
        .map_or(route.timeout, |t| t.min(route.timeout));
    let deadline = started + timeout;
    policy.retry_budget.deposit();

    let mut run = Run {
        ctx,
        policy: &policy,
        route: route_index,
        operation,
        headers,
        body: &body,
        parsed: OnceCell::new(),
        started,
        deadline,
        attempts: 0,
        upstream: Duration::ZERO,
        last: None,
    };
    let order = plan::order(route, strategy, started);
    let mut candidates = Vec::with_capacity(order.len());
    for index in order {
        let target = &route.targets[index];
        // A provider whose TLS files are unusable has no client: skipped (logged once,
        // when the policy compiled), and never the last-chance target either.
        let Ok(client) = &target.provider.client else {
            let label = target.label();
            tracing::debug!(route = %route.model, target = %label, reason = "config", "skipping target");
            spans::skipped(&label, "config");
            continue;
        };
        // The cheap check first: the body (a copy, or a translation) is only built for a
        // target that is admitted, so an outage's open breakers cost no body work.
        let crossing = match run.crossing(index) {
            Ok(crossing) => crossing,
            Err(unsupported) => {
                run.skip_unsupported(index, &unsupported);
                continue;
            }
        };
        candidates.push(index);
        if run.attempts >= route.max_attempts {
            break;
        }
        if Instant::now() >= deadline {
            return Ok(run.fail(ProxyError::DeadlineExceeded(timeout)));
        }
        let admission = match target
            .state
            .admit(target.provider.max_concurrency, Instant::now())
        {
            Ok(admission) => admission,
            Err((skip, _)) => {
                let label = target.label();
                tracing::debug!(route = %route.model, target = %label, reason = skip.as_str(), "skipping target");
                spans::skipped(&label, skip.as_str());
                continue;
            }
        };
        let prepared = match run.prepare(index, crossing, client) {
            Ok(prepared) => prepared,
            Err(unsupported) => {
                // Dropping the admission releases it without a verdict.
                run.skip_unsupported(index, &unsupported);
                continue;
            }
        };
        if run.attempts > 0 && !policy.retry_budget.try_withdraw(Instant::now()) {
            tracing::warn!(route = %route.model, "retry budget spent: no further failover for this request");
            break;
        }
        if let Some(response) = run.attempt(index, admission, prepared).await {
            return Ok(response);
        }
        if run.deadline_hit() {
            return Ok(run.fail(ProxyError::DeadlineExceeded(timeout)));
        }
    }
    if run.attempts == 0 {
        return run.last_chance(&candidates).await;
    }
    Ok(run.fail(run.all_failed()))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// State of one request's walk along its plan.
struct Run<'a> {
    ctx: &'a Shared,
    policy: &'a Arc<Policy>,
    route: usize,
    operation: Operation,
    headers: &'a HeaderMap,
    body: &'a InboundBody,
    /// The app's body as JSON, parsed only if a target needs translation.
    parsed: OnceCell<Option<Value>>,
    started: Instant,
    deadline: Instant,
    attempts: usize,
    /// Time spent in attempts, i.e. waiting on upstreams (for the overhead histogram).
    upstream: Duration,
    /// The last failed attempt: target index, outcome, whether the deadline cut it.
    last: Option<(usize, Outcome, bool)>,
}

/// A target's crossing, the body to send it, and the client to send it with.
struct Prepared<'p> {
    crossing: Crossing,
    body: bytes::Bytes,
    client: &'p Client,
}

impl Run<'_> {
    /// Counts a request the sidecar failed and answers it in the app's format, still
    /// saying which route it took and how many targets were tried.
    fn fail(&self, error: ProxyError) -> Response<Body> {
        let route = &self.policy.routes[self.route];
        route.metrics.request(error.reason());
        tracing::warn!(route = %route.model, reason = error.reason(), error = %error, "request failed");
        let mut response = error.into_response(self.operation.dialect());
        let headers = response.headers_mut();
        set(headers, "x-switchyard-route", &route.model);
        headers.insert("x-switchyard-attempts", HeaderValue::from(self.attempts));
        response
    }

    fn parsed(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| serde_json::from_slice(&self.body.bytes).ok())
            .as_ref()
    }

    /// How this request reaches a target's API, or why it cannot.
    fn crossing(&self, index: usize) -> Result<Crossing, Unsupported> {
        let target = &self.policy.routes[self.route].targets[index];
        Crossing::new(self.operation, target.provider.api, || self.parsed())
    }

    fn skip_unsupported(&self, index: usize, unsupported: &Unsupported) {
        let route = &self.policy.routes[self.route];
        let label = route.targets[index].label();
        tracing::debug!(route = %route.model, target = %label, reason = %unsupported, "skipping target: unsupported");
        spans::skipped(&label, "unsupported");
    }

    /// The body for a target, or why this request cannot be sent to it.
    fn prepare<'p>(
        &self,
        index: usize,
        crossing: Crossing,
        client: &'p Client,
    ) -> Result<Prepared<'p>, Unsupported> {
        let route = &self.policy.routes[self.route];
        let target = &route.targets[index];
        let model = target.model_for(&self.body.model);
        let body = crossing.request_body(
            || self.body.with_model(model),
            self.parsed(),
            model,
            route.max_tokens,
        )?;
        Ok(Prepared {
            crossing,
            body,
            client,
        })
    }

    /// Runs one attempt; `Some` when the app has its answer.
    async fn attempt(
        &mut self,
        index: usize,
        admission: Admission,
        prepared: Prepared<'_>,
    ) -> Option<Response<Body>> {
        let route = &self.policy.routes[self.route];
        let target = &route.targets[index];
        if let Some((from_index, outcome, _)) = &self.last {
            route.metrics.failover(*from_index, index, outcome.label());
            let from = &route.targets[*from_index];
            tracing::info!(
                route = %route.model,
                from = %from.label(),
                to = %target.label(),
                reason = outcome.label(),
                "failing over"
            );
            spans::failover(&from.label(), &target.label(), outcome.label());
        }
        self.attempts += 1;
        let model = target.model_for(&self.body.model);
        let request = AttemptRequest {
            policy: self.policy,
            route: self.route,
            target: index,
            operation: self.operation,
            headers: self.headers,
            model,
            requested_model: &self.body.model,
            crossing: prepared.crossing,
            body: prepared.body,
            client: prepared.client,
            stream: self.body.stream,
            started: self.started,
            deadline: self.deadline,
        };
        let span = spans::attempt(target, self.operation, model, &route.model, self.attempts);
        spans::prompt(&span, self.policy.capture_content, &request.body);
        let upstream_started = Instant::now();
        let attempt = attempt::run(&request, admission, &span)
            .instrument(span.clone())
            .await;
        self.upstream += upstream_started.elapsed();
        match attempt {
            Attempt::Answered(mut response) => {
                let headers = response.headers_mut();
                set(headers, "x-switchyard-route", &route.model);
                set(headers, "x-switchyard-provider", &target.provider.name);
                set(headers, "x-switchyard-model", model);
                headers.insert("x-switchyard-attempts", HeaderValue::from(self.attempts));
                Some(response)
            }
            Attempt::Failed {
                outcome,
                deadline_hit,
            } => {
                spans::failed(&span, outcome.label());
                tracing::debug!(route = %route.model, target = %target.label(), outcome = outcome.label(), "attempt failed");
                self.last = Some((index, outcome, deadline_hit));
                None
            }
        }
    }

    fn deadline_hit(&self) -> bool {
        self.last.as_ref().is_some_and(|(_, _, hit)| *hit) || Instant::now() >= self.deadline
    }

    /// Every target was excluded: try the one available soonest once, ignoring its
    /// breaker and cooldown; if that fails too, 503 with when to come back.
    async fn last_chance(mut self, candidates: &[usize]) -> Result<Response<Body>, ProxyError> {
        let route = &self.policy.routes[self.route];
        let now = Instant::now();
        let mut by_availability: Vec<_> = candidates
            .iter()
            .map(|&i| (route.targets[i].state.available_at(now), i))
            .collect();
        by_availability.sort_by_key(|&(at, _)| at);
        // The soonest available target whose body can be built for this request.
        let soonest = by_availability.iter().find_map(|&(_, index)| {
            let crossing = self.crossing(index).ok()?;
            let client = route.targets[index].provider.client.as_ref().ok()?;
            self.prepare(index, crossing, client)
                .ok()
                .map(|prepared| (index, prepared))
        });
        let Some((index, prepared)) = soonest else {
            let error = ProxyError::AllFailed(format!(
                "no target of route {:?} can serve a {} call",
                route.model,
                self.operation.dialect().as_str()
            ));
            return Ok(self.fail(error));
        };
        let admission = route.targets[index].state.admit_forced();
        if let Some(response) = self.attempt(index, admission, prepared).await {
            return Ok(response);
        }
        let now = Instant::now();
        let retry_at = candidates
            .iter()
            .map(|&i| route.targets[i].state.available_at(now))
            .min()
            .unwrap_or(now);
        let detail = self.describe_last();
        let error = ProxyError::Unavailable {
            retry_after: retry_at
                .saturating_duration_since(now)
                .max(Duration::from_secs(1)),
            detail,
        };
        Ok(self.fail(error))
    }

    fn all_failed(&self) -> ProxyError {
        match &self.last {
            Some((_, Outcome::Throttled { cooldown, .. }, _)) => ProxyError::Unavailable {
                retry_after: *cooldown,
                detail: self.describe_last(),
            },
            _ => ProxyError::AllFailed(self.describe_last()),
        }
    }

    fn describe_last(&self) -> String {
        let route = &self.policy.routes[self.route];
        match &self.last {
            Some((index, outcome, _)) => format!(
                "{} attempt(s); the last, {}, failed with {}",
                self.attempts,
                route.targets[*index].label(),
                outcome.describe()
            ),
            None => "no attempt could be made".to_owned(),
        }
    }
}

impl Drop for Run<'_> {
    /// The request is answered: what it cost beyond waiting on upstreams is overhead.
    fn drop(&mut self) {
        let overhead = self.started.elapsed().saturating_sub(self.upstream);
        self.ctx.metrics.overhead.observe(overhead.as_secs_f64());
    }
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The dialect of a call, for the sidecar's own errors.
pub fn dialect_of(operation: Option<Operation>, headers: &HeaderMap) -> ApiKind {
    match operation {
        Some(op) => op.dialect(),
        None if headers.contains_key("x-api-key") || headers.contains_key("anthropic-version") => {
            ApiKind::Anthropic
        }
        None => ApiKind::Openai,
    }
}
