//! Settling an answered attempt: its breaker verdict, baseline sample and metrics, once
//! the answer is complete, which for a stream is when the stream ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::Timing;
use crate::classify::FailReason;
use crate::event_kind::Usage;
use crate::log_limit;
use crate::routing::{Policy, Target};
use crate::target::Admission;
use crate::telemetry::spans;

/// An answered attempt that has yet to be recorded.
pub struct Settle {
    pub(super) policy: Arc<Policy>,
    pub(super) route: usize,
    pub(super) target: usize,
    pub(super) admission: Admission,
    /// When the request started (the route's duration histogram).
    pub(super) started: Instant,
    /// When this attempt was sent.
    pub(super) sent: Instant,
    /// Time to first token (streams) or to the response headers.
    pub(super) first_byte: Duration,
    /// Whether the app asked for a stream, which decides what the baseline learns.
    pub(super) stream: bool,
    /// The attempt's span: it ends when the answer is complete (for a stream, its end).
    pub(super) span: tracing::Span,
}

impl Settle {
    fn target(&self) -> &Target {
        &self.policy.routes[self.route].targets[self.target]
    }

    /// What the baseline learns from this answer.
    fn timing(&self, usage: Usage, now: Instant) -> Timing {
        if self.stream {
            Timing::Stream {
                ttft: self.first_byte,
            }
        } else {
            Timing::Whole {
                first_byte: self.first_byte,
                latency: now.saturating_duration_since(self.sent),
                output_tokens: usage.output,
            }
        }
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
                spans::usage(&self.span, usage, Some(self.first_byte));
                metrics.attempt("success");
                metrics.usage(usage.input, usage.output, target.per_mtok());
                let minute = crate::limits::minute_of(std::time::SystemTime::now());
                target
                    .state
                    .limits
                    .settle(usage.input + usage.output, minute);
                route.metrics.request("success");
            }
            Err(reason) => {
                spans::failed(&self.span, reason.as_str());
                metrics.attempt(reason.as_str());
                route.metrics.request(reason.as_str());
                let kind = format!("cut {} {} {}", route.model, target.label(), reason.as_str());
                if let Some(suppressed) = log_limit::admit(&kind) {
                    tracing::warn!(
                        route = %route.model,
                        target = %target.label(),
                        reason = reason.as_str(),
                        suppressed,
                        "stream failed after its commit point"
                    );
                }
            }
        }
        route
            .metrics
            .duration
            .observe(now.duration_since(self.started).as_secs_f64());
        match result {
            // The app's own deadline ended the stream: no verdict on the target.
            Err(FailReason::Deadline) => self.admission.release(),
            Ok(usage) => {
                let timing = self.timing(usage, now);
                self.admission.finish(false, Some(timing), now);
            }
            Err(_) => {
                let timing = self.timing(Usage::default(), now);
                self.admission.finish(true, Some(timing), now);
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
