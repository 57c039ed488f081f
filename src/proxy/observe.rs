//! The one observer of a call's failover loop. The loop reports what it decided as typed
//! [`LoopEvent`]s and its end as an [`Answer`]; this file alone turns them into log lines,
//! metrics and span events. A decision is then logged, counted and traced together or
//! not at all, and the response headers and the call span are made from the same answer
//! (the tracing code never reads the `x-switchyard-*` headers back).

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Response;
use tracing::Span;

use crate::body::Body;
use crate::classify::Outcome;
use crate::error::{ErrorFormat, ProxyError};
use crate::log_limit;
use crate::metrics::HedgeOutcome;
use crate::proxy::race::Leg;
use crate::routing::{Route, Target};
use crate::target::Skip;
use crate::telemetry::spans;
use crate::translate::Unsupported;

/// Why a target was passed over without an attempt.
#[derive(Clone, Copy)]
pub(crate) enum Passed<'a> {
    /// Excluded by its live state: breaker, cooldown, concurrency or rate limit.
    Excluded(Skip),
    /// Its provider has no usable client (TLS files unusable; logged when compiled).
    NoClient,
    /// A Bedrock target with no AWS credentials to sign with.
    NoCredentials,
    /// The request cannot be expressed in the target's API.
    Unsupported(&'a Unsupported),
}

impl Passed<'_> {
    /// The `reason` of the `switchyard.skipped` span event.
    fn reason(self) -> &'static str {
        match self {
            Passed::Excluded(skip) => skip.as_str(),
            Passed::NoClient | Passed::NoCredentials => "config",
            Passed::Unsupported(_) => "unsupported",
        }
    }
}

/// A decision of the failover loop, reported as it is made.
pub(crate) enum LoopEvent<'a> {
    /// A `previous_response_id` pinned the call to the target that stored it.
    Pinned {
        /// The holder of the stored response.
        target: &'a Target,
        /// The stored response's id.
        previous: &'a str,
    },
    /// A target of the plan was passed over.
    Skipped {
        /// The target passed over.
        target: &'a Target,
        /// Why.
        why: Passed<'a>,
    },
    /// The retry budget refused a failover attempt: the call ends with what it has.
    BudgetSpent,
    /// The loop moves on from a failed target to the next one.
    Failover {
        /// The target whose attempt failed.
        from: (usize, &'a Target),
        /// The target the next attempt goes to.
        to: (usize, &'a Target),
        /// How the failed attempt ended.
        outcome: &'a Outcome,
    },
    /// An attempt started on its own span with this body.
    Started {
        /// The attempt's span.
        span: &'a Span,
        /// The body sent (recorded only with `captureContent`).
        body: &'a [u8],
    },
    /// An attempt failed without the app seeing anything of it.
    Failed {
        /// The target.
        target: &'a Target,
        /// The attempt's span.
        span: &'a Span,
        /// How it ended.
        outcome: &'a Outcome,
    },
    /// `maxRatio` or the retry budget refused a hedge.
    HedgeDenied,
    /// A hedged race has its winner.
    HedgeWon {
        /// Which attempt won.
        leg: Leg,
        /// The winner's span.
        winner: &'a Span,
        /// The cancelled attempt's span.
        loser: Option<&'a Span>,
    },
    /// Every target was excluded; the loop waits (within `maxWait`) for the soonest.
    Waiting {
        /// The target waited for.
        target: &'a Target,
    },
}

/// How the loop ended: who answered, or why nobody could. Both the `x-switchyard-*`
/// response headers and the call span's attributes are made from it.
pub(crate) struct Answer<'a> {
    /// The route the call took.
    pub route: &'a Route,
    /// Attempts made.
    pub attempts: usize,
    /// The target that answered and the model it was sent, if one did.
    pub served: Option<(&'a Target, &'a str)>,
}

/// Renders one call's loop events onto its logs, metrics and call span.
pub(crate) struct Observer<'a> {
    route: &'a Route,
    /// The policy's `telemetry.captureContent`.
    capture_content: bool,
    /// The call's SERVER span, which carries the loop's span events.
    call: Span,
}

impl<'a> Observer<'a> {
    /// An observer of a call on `route`, recording onto the current (the call's) span.
    pub(crate) fn new(route: &'a Route, capture_content: bool) -> Self {
        Self {
            route,
            capture_content,
            call: Span::current(),
        }
    }

    /// Renders one decision of the loop.
    pub(crate) fn report(&self, event: LoopEvent<'_>) {
        let route = &self.route.model;
        match event {
            LoopEvent::Pinned { target, previous } => {
                tracing::debug!(route = %route, target = %target.label(), previous_response_id = previous, "continuing a stored response on the target that holds it");
            }
            LoopEvent::Skipped { target, why } => {
                let label = target.label();
                let reason = why.reason();
                match why {
                    Passed::Unsupported(unsupported) => {
                        tracing::debug!(route = %route, target = %label, reason = %unsupported, "skipping target: unsupported");
                    }
                    Passed::NoCredentials => {
                        tracing::debug!(route = %route, target = %label, reason, "skipping target: no AWS credentials");
                    }
                    Passed::Excluded(_) | Passed::NoClient => {
                        tracing::debug!(route = %route, target = %label, reason, "skipping target");
                    }
                }
                spans::skipped(&self.call, &label, reason);
            }
            LoopEvent::BudgetSpent => {
                if let Some(suppressed) = log_limit::admit(&format!("budget {route}")) {
                    tracing::warn!(route = %route, suppressed, "retry budget spent: no further failover for this request");
                }
            }
            LoopEvent::Failover { from, to, outcome } => {
                self.route.metrics.failover(from.0, to.0, outcome.label());
                let (from, to) = (from.1.label(), to.1.label());
                tracing::info!(route = %route, from = %from, to = %to, reason = outcome.label(), "failing over");
                spans::failover(&self.call, &from, &to, outcome.label());
            }
            LoopEvent::Started { span, body } => {
                spans::prompt(span, self.capture_content, body);
            }
            LoopEvent::Failed {
                target,
                span,
                outcome,
            } => {
                spans::failed(span, outcome.label());
                tracing::debug!(route = %route, target = %target.label(), outcome = outcome.label(), "attempt failed");
            }
            LoopEvent::HedgeDenied => {
                self.route.metrics.hedge(HedgeOutcome::Denied);
                tracing::debug!(route = %route, "hedge denied by maxRatio or the retry budget");
            }
            LoopEvent::HedgeWon { leg, winner, loser } => {
                let outcome = match leg {
                    Leg::First => HedgeOutcome::Lost,
                    Leg::Hedge => HedgeOutcome::Won,
                };
                self.route.metrics.hedge(outcome);
                spans::hedge_winner(winner, true);
                if let Some(loser) = loser {
                    spans::hedge_winner(loser, false);
                }
            }
            LoopEvent::Waiting { target } => {
                tracing::debug!(route = %route, target = %target.label(), "every target excluded: waiting for the soonest (maxWait)");
            }
        }
    }

    /// The app's answer from a target: headers say who served it, and so does the span.
    pub(crate) fn answered(&self, answer: &Answer<'_>, response: &mut Response<Body>) {
        let headers = response.headers_mut();
        stamp(headers, answer);
        let served = answer
            .served
            .map(|(target, model)| (&*target.provider.name, model));
        spans::routed(&self.call, &answer.route.model, served, answer.attempts);
        if response.status().is_server_error() {
            spans::failed(&self.call, response.status().as_str());
        }
    }

    /// The sidecar's own failure of the call: counted, logged (once a minute per route and
    /// reason) and answered in the app's format, still saying the route and attempts.
    pub(crate) fn failed(
        &self,
        answer: &Answer<'_>,
        error: ProxyError,
        format: ErrorFormat,
    ) -> Response<Body> {
        let route = &answer.route.model;
        let reason = error.reason();
        answer.route.metrics.request(reason);
        if let Some(suppressed) = log_limit::admit(&format!("failed {route} {reason}")) {
            tracing::warn!(route = %route, reason, error = %error, suppressed, "request failed");
        }
        let mut response = error.into_response(format);
        stamp(response.headers_mut(), answer);
        spans::routed(&self.call, route, None, answer.attempts);
        spans::failed(&self.call, reason);
        response
    }
}

// Names made at compile time: `HeaderName::from_static` at run time checks every byte
// of the name on every answer.
const ROUTE: HeaderName = HeaderName::from_static("x-switchyard-route");
const PROVIDER: HeaderName = HeaderName::from_static("x-switchyard-provider");
const MODEL: HeaderName = HeaderName::from_static("x-switchyard-model");
const ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");

/// The `x-switchyard-*` headers of an answer.
fn stamp(headers: &mut HeaderMap, answer: &Answer<'_>) {
    set(headers, ROUTE, &answer.route.model);
    if let Some((target, model)) = answer.served {
        set(headers, PROVIDER, &target.provider.name);
        set(headers, MODEL, model);
    }
    headers.insert(ATTEMPTS, HeaderValue::from(answer.attempts));
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}
