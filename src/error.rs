//! Errors the sidecar itself answers with, mapped in one place to a status, a one-word
//! reason (the `x-switchyard-error` header and metric label) and a body in the format the
//! caller speaks, so an unmodified SDK raises its ordinary, readable exception.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::body::{self, Body};

/// Header naming why the sidecar failed a request.
pub const ERROR_HEADER: &str = "x-switchyard-error";

/// Header the OpenAI and Anthropic SDKs read before retrying on their own.
pub const SHOULD_RETRY_HEADER: &str = "x-should-retry";

/// How a caller's SDK expects an error body: the sidecar's own errors follow the API the
/// call came in on. Its own enum, so this module needs nothing from the policy (the
/// conversion from the policy's API kind lives with the proxy, which knows both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"error": {"message", "type", "code"}}`, as the OpenAI SDKs parse it.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`, as the Anthropic SDKs parse it.
    Anthropic,
}

/// A request the sidecar answers itself instead of with a provider's response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The body is not the JSON the endpoint expects.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// No route names the requested model and there is no `*` route.
    #[error("no route for model {0:?}")]
    UnknownModel(String),
    /// The body is over the replay cap.
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// A path the sidecar does not serve: it is never an open proxy.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// Every attempt failed; the message lists why.
    #[error("all targets failed: {0}")]
    AllFailed(String),
    /// Every attempt failed and the last could not make a TLS session (unknown CA, name
    /// mismatch, expired certificate): a configuration problem the header names apart.
    #[error("all targets failed: {0}")]
    TlsFailed(String),
    /// Every target is open, cooling down or shed, and the fallback attempt failed too.
    #[error("all targets are unavailable (open, cooling down or shed): {detail}")]
    Unavailable {
        /// When the first target becomes available again.
        retry_after: Duration,
        /// What the last attempt saw.
        detail: String,
    },
    /// The request's total deadline passed.
    #[error("deadline of {0:?} passed before any target answered")]
    DeadlineExceeded(Duration),
    /// No valid policy has loaded yet.
    #[error("the sidecar has no valid routing policy yet")]
    NotReady,
    /// A Responses call continues a stored response (`previous_response_id`) that no
    /// target of its route can hold: answered rather than sent where the conversation's
    /// context would be silently lost.
    #[error("previous response {0:?} not found: no target of this route serves Responses natively, where stored responses live")]
    PreviousResponseNotFound(String),
    /// The client stopped sending its body before it was complete.
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(Duration),
}

impl ProxyError {
    /// The HTTP status that says what happened.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) | ProxyError::PreviousResponseNotFound(_) => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::UnknownModel(_) | ProxyError::NotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::AllFailed(_) | ProxyError::TlsFailed(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Unavailable { .. } | ProxyError::NotReady => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::DeadlineExceeded(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// One word for `x-switchyard-error` and the `outcome` metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) => "bad_request",
            ProxyError::PreviousResponseNotFound(_) => "previous_response_not_found",
            ProxyError::UnknownModel(_) => "unknown_model",
            ProxyError::BodyTooLarge { .. } => "body_too_large",
            ProxyError::NotFound(_) => "not_found",
            ProxyError::AllFailed(_) => "all_failed",
            ProxyError::TlsFailed(_) => "tls_error",
            ProxyError::Unavailable { .. } => "unavailable",
            ProxyError::DeadlineExceeded(_) => "deadline",
            ProxyError::NotReady => "not_ready",
            ProxyError::BodyTimeout(_) => "body_timeout",
        }
    }

    /// Whether the sidecar answers this only after trying (or ruling out) every target,
    /// so a client-side retry would only repeat the walk.
    pub fn walked_the_plan(&self) -> bool {
        match self {
            ProxyError::AllFailed(_)
            | ProxyError::TlsFailed(_)
            | ProxyError::Unavailable { .. }
            | ProxyError::DeadlineExceeded(_) => true,
            ProxyError::BadRequest(_)
            | ProxyError::PreviousResponseNotFound(_)
            | ProxyError::UnknownModel(_)
            | ProxyError::BodyTooLarge { .. }
            | ProxyError::NotFound(_)
            | ProxyError::NotReady
            | ProxyError::BodyTimeout(_) => false,
        }
    }

    /// The response in the caller's format.
    pub fn into_response(self, format: impl Into<ErrorFormat>) -> Response<Body> {
        let status = self.status();
        let body = error_body(format.into(), status, self.reason(), &self.to_string());
        let mut response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(ERROR_HEADER, self.reason());
        if let ProxyError::Unavailable { retry_after, .. } = &self {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            response = response.header(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.walked_the_plan() {
            // The official SDKs obey this: their default retries would walk the whole
            // chain again (one app call, six upstream calls).
            response = response.header(SHOULD_RETRY_HEADER, "false");
        }
        response
            .body(body::full(body))
            .expect("status and headers are valid by construction")
    }
}

/// An error body as the given API's SDKs expect it.
pub fn error_body(format: ErrorFormat, status: StatusCode, code: &str, message: &str) -> Bytes {
    let value = match format {
        ErrorFormat::Anthropic => json!({
            "type": "error",
            "error": {"type": anthropic_error_type(status), "message": message},
        }),
        ErrorFormat::OpenAi => json!({
            "error": {"message": message, "type": openai_error_type(status), "code": code},
        }),
    };
    Bytes::from(value.to_string())
}

fn openai_error_type(status: StatusCode) -> &'static str {
    if status.is_client_error() {
        "invalid_request_error"
    } else {
        "server_error"
    }
}

fn anthropic_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "not_found_error",
        413 => "request_too_large",
        503 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_each_dialect() {
        let e = ProxyError::UnknownModel("gpt-9".into());
        let openai: serde_json::Value = serde_json::from_slice(&error_body(
            ErrorFormat::OpenAi,
            e.status(),
            e.reason(),
            &e.to_string(),
        ))
        .unwrap();
        assert_eq!(openai["error"]["code"], "unknown_model");
        assert_eq!(openai["error"]["type"], "invalid_request_error");
        let anthropic: serde_json::Value = serde_json::from_slice(&error_body(
            ErrorFormat::Anthropic,
            e.status(),
            e.reason(),
            &e.to_string(),
        ))
        .unwrap();
        assert_eq!(anthropic["type"], "error");
        assert_eq!(anthropic["error"]["type"], "not_found_error");
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let e = ProxyError::Unavailable {
            retry_after: Duration::from_millis(2500),
            detail: String::new(),
        };
        let r = e.into_response(ErrorFormat::OpenAi);
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        assert_eq!(r.headers()[ERROR_HEADER], "unavailable");
    }
}
