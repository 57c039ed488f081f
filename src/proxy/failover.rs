//! The failover loop (DESIGN §4): attempts run one at a time along the plan until one
//! answers, the plan or `maxAttempts` runs out, the retry budget is spent, or the
//! deadline passes. When every target is excluded, one last-chance attempt goes to the
//! target available soonest (after waiting for it, within `maxWait`); never a hard fail
//! while any target may be up. With `hedge`, a slow attempt gets company (`race`).

use std::cell::OnceCell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderMap;
use http::Response;
use tokio::time::Instant;

use crate::body::Body;
use crate::classify::{FailReason, Outcome};
use crate::error::{ErrorFormat, ProxyError};
use crate::hedge::{HedgeAfter, AUTO_WITHOUT_BASELINE};
use crate::log_limit;
use crate::operation::Operation;
use crate::policy::spec::Strategy;
use crate::proxy::adapt;
use crate::proxy::attempt::{self, Attempt, AttemptRequest};
use crate::proxy::crossing::Crossing;
use crate::proxy::inbound::InboundBody;
use crate::proxy::observe::{Answer, LoopEvent, Observer, Passed};
use crate::proxy::plan;
use crate::proxy::race::{self, Leg};
use crate::routing::{Policy, Route};
use crate::shared::Shared;
use crate::target::{Admission, Skip};
use crate::telemetry::spans;
use crate::translate::Unsupported;
use crate::upstream::Client;
use crate::wire;
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
    let app_timeout =
        header_str(headers, "x-switchyard-timeout").and_then(|t| humantime::parse_duration(t).ok());
    let timeout = app_timeout.map_or(route.timeout, |t| t.min(route.timeout));
    policy.retry_budget.deposit();
    if let Some(hedge) = &route.hedge {
        hedge.record_request(started);
    }

    let mut run = Run {
        ctx,
        observer: Observer::new(route, policy.capture_content),
        policy: &policy,
        route: route_index,
        operation,
        headers,
        body: &body,
        parsed: OnceCell::new(),
        started,
        deadline: started + timeout,
        app_deadline: app_timeout.map(|t| started + t),
        attempts: 0,
        upstream: Duration::ZERO,
        last: None,
        plan: plan::order(route, strategy, started),
        next: 0,
        candidates: Vec::new(),
        tried: 0,
        config_skipped: false,
    };
    run.stick_to_holder();
    loop {
        let candidate = match run.next_admitted(true) {
            Next::Attempt(candidate) => candidate,
            Next::Deadline => return Ok(run.fail(ProxyError::DeadlineExceeded(timeout))),
            Next::Exhausted => break,
        };
        if let Some(response) = run.race(candidate).await {
            return Ok(response);
        }
        if run.deadline_hit() {
            return Ok(run.fail(ProxyError::DeadlineExceeded(timeout)));
        }
    }
    if run.attempts == 0 || run.grant_last_chance() {
        return run.last_chance().await;
    }
    Ok(run.fail(run.all_failed()))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// State of one request's walk along its plan.
struct Run<'a> {
    ctx: &'a Shared,
    observer: Observer<'a>,
    policy: &'a Arc<Policy>,
    route: usize,
    operation: Operation,
    headers: &'a HeaderMap,
    body: &'a InboundBody,
    /// The app's body as JSON, parsed only if a target needs translation.
    parsed: OnceCell<Option<Value>>,
    started: Instant,
    /// The deadline to find an answer.
    deadline: Instant,
    /// The deadline the app asked for, which alone may cut a committed stream.
    app_deadline: Option<Instant>,
    attempts: usize,
    /// Time spent in attempts, i.e. waiting on upstreams (for the overhead histogram).
    upstream: Duration,
    /// The last failed attempt: target index, outcome, whether the deadline cut it.
    last: Option<(usize, Outcome, bool)>,
    /// Target indices in the order the strategy gave.
    plan: Vec<usize>,
    /// The next position in `plan`.
    next: usize,
    /// Targets this request could be sent to (for the last-chance attempt).
    candidates: Vec<usize>,
    /// Bit `i` set: target `i` had an attempt (targets past the 64th count as tried, so
    /// they are never a last chance after a failure). A mask, not a list: no allocation.
    tried: u64,
    /// Whether a target was passed over for its configuration (no usable client): then
    /// no candidate is the sidecar's problem, not the request's.
    config_skipped: bool,
}

/// An admitted target with the body to send it.
struct Candidate<'a> {
    index: usize,
    admission: Admission,
    prepared: Prepared<'a>,
}

/// What the plan offers next.
enum Next<'a> {
    Attempt(Candidate<'a>),
    /// The deadline passed before another attempt could start.
    Deadline,
    /// The plan, `maxAttempts` or the retry budget ran out.
    Exhausted,
}

/// A target's crossing, the body to send it, and the client to send it with.
struct Prepared<'a> {
    crossing: Crossing,
    body: bytes::Bytes,
    client: &'a Client,
}

impl<'a> Run<'a> {
    fn route(&self) -> &'a Route {
        &self.policy.routes[self.route]
    }

    /// Counts a request the sidecar failed and answers it in the app's format, still
    /// saying which route it took and how many targets were tried.
    fn fail(&self, error: ProxyError) -> Response<Body> {
        let answer = Answer {
            route: self.route(),
            attempts: self.attempts,
            served: None,
        };
        self.observer
            .failed(&answer, error, wire::of(self.operation.wire()).error_format)
    }

    fn parsed(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| serde_json::from_slice(&self.body.bytes).ok())
            .as_ref()
    }

    /// How this request reaches a target's API, or why it cannot.
    fn crossing(&self, index: usize) -> Result<Crossing, Unsupported> {
        let target = &self.route().targets[index];
        let model = target.model_for(&self.body.model);
        Crossing::new(self.operation, &target.provider, model, || self.parsed())
    }

    /// The stored response a Responses call continues, if any.
    fn previous_response_id(&self) -> Option<&'a str> {
        match self.operation {
            Operation::Responses => self.body.previous_response_id.as_deref(),
            Operation::Chat
            | Operation::Embeddings
            | Operation::Messages
            | Operation::CountTokens => None,
        }
    }

    /// A call that continues a stored response goes only to the target that created it,
    /// when this sidecar saw which: another would answer "not found", and failing over
    /// cannot move the conversation's context.
    fn stick_to_holder(&mut self) {
        let Some(previous) = self.previous_response_id() else {
            return;
        };
        let route = self.route();
        if let Some(holder) =
            (0..route.targets.len()).find(|&i| route.targets[i].state.held.holds(previous))
        {
            self.observer.report(LoopEvent::Pinned {
                target: &route.targets[holder],
                previous,
            });
            self.plan = vec![holder];
        }
    }

    fn skip(&self, index: usize, why: Passed<'_>) {
        self.observer.report(LoopEvent::Skipped {
            target: &self.route().targets[index],
            why,
        });
    }

    /// The body for a target, or why this request cannot be sent to it.
    fn prepare(
        &self,
        index: usize,
        crossing: Crossing,
        client: &'a Client,
    ) -> Result<Prepared<'a>, Unsupported> {
        let route = self.route();
        let target = &route.targets[index];
        let model = target.model_for(&self.body.model);
        let adaptation = target
            .request
            .as_deref()
            .filter(|_| self.operation.is_generation());
        let body = match adaptation {
            // No adaptation: the app's bytes, not a re-serialisation of them.
            None => crossing.request_body(
                || self.body.with_model(model),
                || self.parsed(),
                model,
                route.max_tokens,
            )?,
            Some(adaptation) => {
                let mut value = crossing.request_value(self.parsed(), model, route.max_tokens)?;
                adapt::apply(
                    &mut value,
                    crossing.upstream_wire(self.operation),
                    adaptation,
                );
                bytes::Bytes::from(value.to_string())
            }
        };
        Ok(Prepared {
            crossing,
            body,
            client,
        })
    }

    /// The next target of the plan that admits this request. `withdraw` draws a failover
    /// attempt from the retry budget (a hedge has drawn its own already).
    fn next_admitted(&mut self, withdraw: bool) -> Next<'a> {
        let route = self.route();
        while let Some(&index) = self.plan.get(self.next) {
            self.next += 1;
            let target = &route.targets[index];
            // A provider whose TLS files are unusable has no client: skipped (logged once,
            // when the policy compiled), and never the last-chance target either.
            let Ok(client) = &target.provider.client else {
                self.skip(index, Passed::NoClient);
                self.config_skipped = true;
                continue;
            };
            if !credentials_usable(target) {
                self.skip(index, Passed::NoCredentials);
                continue;
            }
            // The cheap checks first: the body (a copy, or a translation) is only built
            // for a target that is admitted, so an outage's open breakers cost no body work.
            let crossing = match self.crossing(index) {
                Ok(crossing) => crossing,
                Err(unsupported) => {
                    self.skip(index, Passed::Unsupported(&unsupported));
                    continue;
                }
            };
            if !self.candidates.contains(&index) {
                self.candidates.push(index);
            }
            if self.attempts >= route.max_attempts {
                return Next::Exhausted;
            }
            if Instant::now() >= self.deadline {
                return Next::Deadline;
            }
            let admitted = target
                .state
                .admit(target.provider.max_concurrency, Instant::now())
                .map_err(|(skip, _)| skip)
                .and_then(|mut admission| {
                    // The prompt's size, about four bytes a token, until usage says.
                    let expected = self.body.bytes.len() as u64 / 4;
                    admission
                        .reserve(expected)
                        .then_some(admission)
                        .ok_or(Skip::Shed)
                });
            let admission = match admitted {
                Ok(admission) => admission,
                Err(skip) => {
                    self.skip(index, Passed::Excluded(skip));
                    continue;
                }
            };
            let prepared = match self.prepare(index, crossing, client) {
                Ok(prepared) => prepared,
                Err(unsupported) => {
                    // Dropping the admission releases it without a verdict.
                    self.skip(index, Passed::Unsupported(&unsupported));
                    continue;
                }
            };
            if withdraw
                && self.attempts > 0
                && !self.policy.retry_budget.try_withdraw(Instant::now())
            {
                self.observer.report(LoopEvent::BudgetSpent);
                return Next::Exhausted;
            }
            return Next::Attempt(Candidate {
                index,
                admission,
                prepared,
            });
        }
        Next::Exhausted
    }

    /// When the route hedges this attempt: `after` past now, within the deadline.
    fn hedge_at(&self, index: usize) -> Option<Instant> {
        let route = self.route();
        let hedge = route.hedge.as_ref()?;
        let after = match hedge.after {
            HedgeAfter::Fixed(after) => after,
            HedgeAfter::Auto => route.targets[index]
                .state
                .baseline()
                .p95_first_content(self.body.stream)
                .unwrap_or(AUTO_WITHOUT_BASELINE),
        };
        let at = Instant::now() + after;
        (at < self.deadline && self.attempts < route.max_attempts).then_some(at)
    }

    /// A hedge for the attempt in flight: the next admitted target, if `maxRatio` and the
    /// retry budget allow one. A refused hedge leaves that target for the failover loop.
    fn hedge(&mut self) -> Option<Candidate<'a>> {
        let route = self.route();
        let hedge = route.hedge.as_ref()?;
        let resume = self.next;
        let Next::Attempt(candidate) = self.next_admitted(false) else {
            return None;
        };
        let now = Instant::now();
        if !hedge.try_take(now) || !self.policy.retry_budget.try_withdraw(now) {
            self.observer.report(LoopEvent::HedgeDenied);
            self.next = resume;
            return None;
        }
        Some(candidate)
    }

    /// Starts one attempt: counts it, reports the failover that led to it, and returns
    /// the future that runs it (borrowing only the request, never the run, so two may be
    /// in flight while the run decides).
    fn launch(
        &mut self,
        candidate: Candidate<'a>,
    ) -> (usize, tracing::Span, impl Future<Output = Attempt> + 'a) {
        let Candidate {
            index,
            admission,
            prepared,
        } = candidate;
        let route = self.route();
        let target = &route.targets[index];
        if let Some((from, outcome, _)) = &self.last {
            self.observer.report(LoopEvent::Failover {
                from: (*from, &route.targets[*from]),
                to: (index, target),
                outcome,
            });
        }
        self.attempts += 1;
        self.tried |= 1u64.checked_shl(index as u32).unwrap_or(0);
        let body: &'a InboundBody = self.body;
        let model = target.model_for(&body.model);
        let request = AttemptRequest {
            policy: self.policy,
            route: self.route,
            target: index,
            operation: self.operation,
            headers: self.headers,
            model,
            requested_model: &body.model,
            crossing: prepared.crossing,
            body: prepared.body,
            client: prepared.client,
            stream: body.stream,
            started: self.started,
            deadline: self.deadline,
            app_deadline: self.app_deadline,
        };
        let span = spans::attempt(target, self.operation, model, &route.model, self.attempts);
        self.observer.report(LoopEvent::Started {
            span: &span,
            body: &request.body,
        });
        let attempt_span = span.clone();
        let future = async move {
            attempt::run(&request, admission, &attempt_span)
                .instrument(attempt_span.clone())
                .await
        };
        (index, span, future)
    }

    /// Runs an attempt, hedged when the route says so; `Some` when the app has its answer.
    async fn race(&mut self, first: Candidate<'a>) -> Option<Response<Body>> {
        let hedge_at = self.hedge_at(first.index);
        let (first_index, first_span, first_future) = self.launch(first);
        let mut hedge_leg = None;
        let upstream_started = Instant::now();
        let raced = race::race(
            first_future,
            hedge_at,
            || {
                let candidate = self.hedge()?;
                let (index, span, future) = self.launch(candidate);
                hedge_leg = Some((index, span));
                Some(future)
            },
            |attempt| matches!(attempt, Attempt::Answered(_)),
        )
        .await;
        self.upstream += upstream_started.elapsed();
        let mut answer = None;
        for (leg, attempt) in raced.finished {
            let (index, span) = match (leg, &hedge_leg) {
                (Leg::Hedge, Some((index, span))) => (*index, span.clone()),
                _ => (first_index, first_span.clone()),
            };
            answer = self.conclude(index, &span, attempt);
            if answer.is_some() && raced.hedged {
                let loser = match leg {
                    Leg::First => hedge_leg.as_ref().map(|(_, span)| span),
                    Leg::Hedge => Some(&first_span),
                };
                self.observer.report(LoopEvent::HedgeWon {
                    leg,
                    winner: &span,
                    loser,
                });
            }
        }
        answer
    }

    /// Turns a finished attempt into the app's answer, or records why it failed.
    fn conclude(
        &mut self,
        index: usize,
        span: &tracing::Span,
        attempt: Attempt,
    ) -> Option<Response<Body>> {
        let route = self.route();
        let target = &route.targets[index];
        match attempt {
            Attempt::Answered(mut response) => {
                let answer = Answer {
                    route,
                    attempts: self.attempts,
                    served: Some((target, target.model_for(&self.body.model))),
                };
                self.observer.answered(&answer, &mut response);
                Some(response)
            }
            Attempt::Failed {
                outcome,
                deadline_hit,
            } => {
                self.observer.report(LoopEvent::Failed {
                    target,
                    span,
                    outcome: &outcome,
                });
                self.last = Some((index, outcome, deadline_hit));
                None
            }
        }
    }

    fn deadline_hit(&self) -> bool {
        self.last.as_ref().is_some_and(|(_, _, hit)| *hit) || Instant::now() >= self.deadline
    }

    fn untried(&self, index: usize) -> bool {
        index < 64 && self.tried & (1 << index) == 0
    }

    /// After failed attempts, the targets left were all excluded (open, cooling down or
    /// shed): one of them may still get a last chance, as a failover attempt (the retry
    /// budget and `maxAttempts` bound it), rather than the app getting a failure while a
    /// target that recovered waits out its open period.
    fn grant_last_chance(&self) -> bool {
        self.candidates.iter().any(|&i| self.untried(i))
            && self.attempts < self.route().max_attempts
            && !self.deadline_hit()
            && self.policy.retry_budget.try_withdraw(Instant::now())
    }

    /// Every target left was excluded: wait up to `maxWait` for the soonest to come back,
    /// or try it once at once ignoring its breaker and cooldown (the call is its breaker's
    /// trial); if that fails too, 503 with when to come back.
    async fn last_chance(mut self) -> Result<Response<Body>, ProxyError> {
        let route = self.route();
        let now = Instant::now();
        let mut by_availability: Vec<_> = self
            .candidates
            .iter()
            .filter(|&&i| self.untried(i))
            .map(|&i| (route.targets[i].state.available_at(now), i))
            .collect();
        by_availability.sort_by_key(|&(at, _)| at);
        // The soonest available target whose body can be built for this request.
        let soonest = by_availability.iter().find_map(|&(at, index)| {
            let crossing = self.crossing(index).ok()?;
            let client = route.targets[index].provider.client.as_ref().ok()?;
            self.prepare(index, crossing, client)
                .ok()
                .map(|prepared| (at, index, prepared))
        });
        let Some((at, index, prepared)) = soonest else {
            if let Some(previous) = self.previous_response_id() {
                return Ok(self.fail(ProxyError::PreviousResponseNotFound(previous.to_owned())));
            }
            let detail = format!(
                "no target of route {:?} can serve a {} call{}",
                route.model,
                self.operation.wire().as_str(),
                match self.operation {
                    Operation::CountTokens => " (token counting needs an Anthropic target)",
                    Operation::Chat
                    | Operation::Embeddings
                    | Operation::Messages
                    | Operation::Responses => "",
                }
            );
            // Every target ruled the request out: resending it cannot help.
            let error = if self.candidates.is_empty() && !self.config_skipped {
                ProxyError::BadRequest(detail)
            } else {
                ProxyError::AllFailed(detail)
            };
            return Ok(self.fail(error));
        };
        let target = &route.targets[index];
        let admission = if at > now && at <= now + route.max_wait && at < self.deadline {
            self.observer.report(LoopEvent::Waiting { target });
            tokio::time::sleep_until(at).await;
            target
                .state
                .admit(target.provider.max_concurrency, Instant::now())
                .unwrap_or_else(|_| target.state.admit_forced())
        } else {
            target.state.admit_forced()
        };
        let candidate = Candidate {
            index,
            admission,
            prepared,
        };
        let (index, span, future) = self.launch(candidate);
        let upstream_started = Instant::now();
        let attempt = future.await;
        self.upstream += upstream_started.elapsed();
        if let Some(response) = self.conclude(index, &span, attempt) {
            return Ok(response);
        }
        let now = Instant::now();
        let retry_at = self
            .candidates
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
            Some((_, Outcome::Failure(FailReason::Tls(_)), _)) => {
                ProxyError::TlsFailed(self.describe_last())
            }
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

/// The format of the sidecar's own errors to a call: its protocol's, or for a path no
/// protocol serves, the one its headers suggest (an Anthropic SDK sends `x-api-key` or
/// `anthropic-version`).
pub fn error_format(operation: Option<Operation>, headers: &HeaderMap) -> ErrorFormat {
    match operation {
        Some(op) => wire::of(op.wire()).error_format,
        None if headers.contains_key("x-api-key") || headers.contains_key("anthropic-version") => {
            ErrorFormat::Anthropic
        }
        None => ErrorFormat::OpenAi,
    }
}

/// Whether a target's credentials can sign a request now; a Bedrock target without any
/// is a configuration problem, logged once per target (never with key material).
fn credentials_usable(target: &crate::routing::Target) -> bool {
    let crate::routing::Auth::Aws(credentials) = &target.provider.auth else {
        return true;
    };
    match credentials.lookup(std::time::SystemTime::now()) {
        crate::aws::Lookup::Ready(_) | crate::aws::Lookup::Pending => true,
        crate::aws::Lookup::Unavailable => {
            if let Some(suppressed) = log_limit::admit(&format!("aws {}", target.label())) {
                tracing::error!(target = %target.label(), source = credentials.source(), suppressed, "no valid AWS credentials: this Bedrock target is skipped (reason config)");
            }
            false
        }
    }
}
