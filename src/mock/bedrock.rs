//! Bedrock Converse / ConverseStream as the mock answers them: JSON replies, streams in
//! the AWS event-stream framing (with the `p` padding member real payloads carry), errors
//! named in `x-amzn-ErrorType`, and the SigV4 check against the configured key.
//!
//! Invariant: a stream is the real event sequence (messageStart, contentBlockStart for a
//! tool, contentBlockDelta × N, contentBlockStop, messageStop, metadata), so boto3's
//! event-stream parser reads it; a refused signature never echoes key material.

use bytes::Bytes;
use http::request::Parts;
use http::Request;
use serde_json::{json, Value};

use super::body::StreamPlan;
use super::reply::{Content, Reply};
use crate::aws::sigv4::{self, Keys, VerifyError};
use crate::eventstream::encode;

/// The padding AWS adds to event payloads so their sizes do not reveal the text.
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";

fn stop_reason(reply: &Reply<'_>) -> &'static str {
    match reply.content {
        Content::Text(_) => "end_turn",
        Content::Tool { .. } => "tool_use",
    }
}

fn usage(reply: &Reply<'_>) -> Value {
    let (input, output) = (reply.prompt_tokens, reply.completion_tokens());
    json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output})
}

fn tool_use_id(reply: &Reply<'_>) -> String {
    format!("tooluse_mock{}", reply.id)
}

/// A Converse response.
pub(crate) fn converse(reply: &Reply<'_>) -> Bytes {
    let block = match &reply.content {
        Content::Text(text) => json!({"text": text}),
        Content::Tool { name, arguments } => {
            let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
            json!({"toolUse": {"toolUseId": tool_use_id(reply), "name": name, "input": input}})
        }
    };
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [block]}},
        "stopReason": stop_reason(reply),
        "usage": usage(reply),
        "metrics": {"latencyMs": 1},
    });
    Bytes::from(body.to_string())
}

fn frame(event_type: &str, mut payload: Value, padding: usize) -> Bytes {
    payload["p"] = json!(&PADDING[..padding % PADDING.len()]);
    encode(event_type, false, payload.to_string().as_bytes())
}

/// A ConverseStream: every event framed, content deltas marked for the chunk faults.
pub(crate) fn converse_stream(reply: &Reply<'_>, error_status: u16) -> StreamPlan {
    let pieces = reply.pieces();
    let mut events = Vec::with_capacity(pieces.len() + 5);
    events.push(frame("messageStart", json!({"role": "assistant"}), 3));
    let delta = |piece: &str| match &reply.content {
        Content::Text(_) => json!({"text": piece}),
        Content::Tool { .. } => json!({"toolUse": {"input": piece}}),
    };
    if let Content::Tool { name, .. } = &reply.content {
        events.push(frame(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": tool_use_id(reply), "name": name}}}),
            5,
        ));
    }
    let content = events.len()..events.len() + pieces.len();
    for (i, piece) in pieces.iter().enumerate() {
        events.push(frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": delta(piece)}),
            i + 1,
        ));
    }
    events.push(frame(
        "contentBlockStop",
        json!({"contentBlockIndex": 0}),
        7,
    ));
    events.push(frame(
        "messageStop",
        json!({"stopReason": stop_reason(reply)}),
        11,
    ));
    events.push(frame(
        "metadata",
        json!({"usage": usage(reply), "metrics": {"latencyMs": 1}}),
        13,
    ));
    let exception = stream_exception(error_status);
    StreamPlan {
        events,
        content,
        thinking: 0..0,
        error_event: encode(
            exception,
            true,
            json!({"message": format!("mock: injected {exception}")})
                .to_string()
                .as_bytes(),
        ),
    }
}

/// The in-stream exception an `errorEventAfterChunks` sends, by `errorStatus`.
fn stream_exception(status: u16) -> &'static str {
    match status {
        429 => "throttlingException",
        400 => "validationException",
        500 => "internalServerException",
        503 => "serviceUnavailableException",
        _ => "modelStreamErrorException",
    }
}

/// The error name Bedrock answers `status` with.
pub(crate) fn error_name(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// An error body as Bedrock sends it (the name goes in `x-amzn-ErrorType`).
pub(crate) fn error(message: &str) -> Bytes {
    Bytes::from(json!({ "message": message }).to_string())
}

/// Checks a call's SigV4 signature against `key` (`ID:SECRET`); a Bedrock API key sent
/// as a bearer token is accepted as it is. `Err` is the error name and message to
/// answer 403 with.
pub(crate) fn check_signature(
    parts: &Parts,
    body: &Bytes,
    key: &str,
) -> Result<(), (&'static str, String)> {
    if parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "))
    {
        return Ok(());
    }
    let Some((id, secret)) = key.split_once(':') else {
        return Ok(());
    };
    let keys = Keys {
        access_key_id: id.to_owned(),
        secret_access_key: secret.to_owned(),
        session_token: None,
    };
    let mut request = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone());
    for (name, value) in &parts.headers {
        request = request.header(name, value);
    }
    let Ok(request) = request.body(body.clone()) else {
        return Err((
            "IncompleteSignatureException",
            "unreadable request".to_owned(),
        ));
    };
    match sigv4::verify(&request, &keys) {
        Ok(claimed) if claimed.service == sigv4::BEDROCK_SERVICE => Ok(()),
        Ok(claimed) => Err((
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to correct service: 'bedrock', not {:?}",
                claimed.service
            ),
        )),
        Err(VerifyError::UnknownKey) => Err((
            "UnrecognizedClientException",
            VerifyError::UnknownKey.to_string(),
        )),
        Err(error @ VerifyError::Malformed) => {
            Err(("IncompleteSignatureException", error.to_string()))
        }
        Err(error @ VerifyError::Mismatch) => Err(("InvalidSignatureException", error.to_string())),
    }
}
