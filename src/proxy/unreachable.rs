//! Why a target could not be reached (DESIGN §3, §4): a client error classified once into
//! a failure reason (TLS with its cause, connect refused, connect timeout, cut), and said
//! once per target in the log. Invariant: a TLS or proxy problem is logged when it starts
//! or changes, not on every request; the attempt span always carries the detail.

use crate::classify::FailReason;
use crate::classify::{next, TlsCause};
use crate::routing::Target;
use crate::telemetry::spans;
use crate::upstream::UpstreamError as ClientError;

/// Classifies an upstream client error.
pub fn classify(err: &ClientError) -> FailReason {
    if let Some(cause) = TlsCause::find(err) {
        return FailReason::Tls(cause);
    }
    let mut source = next(err);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return FailReason::ConnectTimeout;
        }
        source = next(cause);
    }
    if err.is_connect() {
        FailReason::Connect
    } else {
        FailReason::Cut
    }
}

/// Records the error on the attempt span and, for a TLS or connect failure new to this
/// target (until it answers again), logs it with its cause.
pub fn report(target: &Target, reason: FailReason, err: &ClientError, span: &tracing::Span) {
    let detail = chain(err);
    spans::failure_detail(span, &detail);
    let unreachable = matches!(
        reason,
        FailReason::Tls(_) | FailReason::Connect | FailReason::ConnectTimeout
    );
    if !unreachable || !target.state.first_connect_problem(reason) {
        return;
    }
    if let FailReason::Tls(cause) = reason {
        tracing::error!(
            target = %target.label(),
            reason = reason.as_str(),
            %cause,
            error = %detail,
            "TLS handshake with the provider failed (check providers[].tls and the base URL); fails over"
        );
    } else {
        tracing::warn!(
            target = %target.label(),
            reason = reason.as_str(),
            error = %detail,
            "cannot connect to the provider (or its egress proxy); fails over"
        );
    }
}

/// An error and its sources on one line, for a log that must say why.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut cause = next(error);
    while let Some(current) = cause {
        let text = current.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = next(current);
    }
    out
}
