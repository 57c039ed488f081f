//! The inbound API (README, "Point your SDK at it"): the provider paths an unmodified SDK calls, dispatched to
//! the failover loop; anything else is a 404 without any upstream call, so the sidecar
//! is never an open proxy.

pub mod adapt;
pub mod attempt;
pub mod crossing;
pub mod failover;
pub mod gemini_crossing;
pub mod inbound;
pub mod observe;
pub mod outbound;
pub mod plan;
pub mod race;
pub mod settle;
pub mod stream;
pub mod stream_machine;
pub mod unreachable;
pub mod watch;

use std::sync::Arc;

use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::operation::Operation;
use crate::shared::Shared;
use crate::telemetry::spans;
use inbound::InboundBody;
use tracing::Instrument as _;

/// Handles one inbound request.
pub async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let operation = match (request.method(), request.uri().path()) {
        (&Method::POST, "/v1/chat/completions") => Some(Operation::Chat),
        (&Method::POST, "/v1/embeddings") => Some(Operation::Embeddings),
        (&Method::POST, "/v1/messages") => Some(Operation::Messages),
        (&Method::POST, "/v1/responses") => Some(Operation::Responses),
        (&Method::POST, "/v1/messages/count_tokens") => Some(Operation::CountTokens),
        _ => None,
    };
    let format = failover::error_format(operation, request.headers());
    let result = match operation {
        Some(operation) => {
            let span = spans::call(operation, request.headers());
            let result = call(&shared, operation, request)
                .instrument(span.clone())
                .await;
            // The failover loop records its own answer on the span; an error before it
            // (an unknown model, a body too large) is recorded here.
            let response = result.unwrap_or_else(|error| {
                spans::failed(&span, error.reason());
                error.into_response(format)
            });
            spans::status(&span, response.status());
            return response;
        }
        None if request.method() == Method::GET && request.uri().path() == "/v1/models" => {
            models(&shared)
        }
        None => Err(ProxyError::NotFound(format!(
            "{} {}",
            request.method(),
            request.uri().path()
        ))),
    };
    result.unwrap_or_else(|error| error.into_response(format))
}

async fn call(
    shared: &Shared,
    operation: Operation,
    request: Request<Incoming>,
) -> Result<Response<Body>, ProxyError> {
    let policy = shared.policy().ok_or(ProxyError::NotReady)?;
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > shared.body_limit) {
        return Err(ProxyError::BodyTooLarge {
            limit: shared.body_limit,
        });
    }
    let bytes = tokio::time::timeout(
        shared.body_read_timeout,
        inbound::read_body(body, shared.body_limit),
    )
    .await
    .map_err(|_| ProxyError::BodyTimeout(shared.body_read_timeout))??;
    let body = InboundBody::parse(bytes)?;
    failover::serve(shared, policy, operation, &parts.headers, body).await
}

/// `GET /v1/models`: the policy's route names as an OpenAI model list.
fn models(shared: &Shared) -> Result<Response<Body>, ProxyError> {
    let policy = shared.policy().ok_or(ProxyError::NotReady)?;
    let data: Vec<_> = policy
        .model_names()
        .map(|name| json!({"id": name, "object": "model", "created": 0, "owned_by": "switchyard"}))
        .collect();
    let body = json!({"object": "list", "data": data}).to_string();
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body::full(body))
        .expect("static response parts are valid"))
}
