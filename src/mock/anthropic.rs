//! Anthropic-format bodies: messages (whole and streamed) and errors.
//!
//! Invariant: a stream is the real event sequence (message_start, content_block_start,
//! ping, content_block_delta × N, content_block_stop, message_delta with stop_reason and
//! usage, message_stop), so the official SDK's stream accumulator parses it.

use bytes::Bytes;
use serde_json::{json, Value};

use super::body::StreamPlan;
use super::faults::{Faults, ThinkAs};
use super::reply::{Content, Reply};
use crate::sse::format_event;

fn message_id(reply: &Reply<'_>) -> String {
    format!("msg_mock_{}", reply.id)
}

fn stop_reason(reply: &Reply<'_>) -> &'static str {
    match reply.content {
        Content::Text(_) => "end_turn",
        Content::Tool { .. } => "tool_use",
    }
}

fn tool_block(reply: &Reply<'_>, name: &str, input: Value) -> Value {
    json!({ "type": "tool_use", "id": format!("toolu_mock_{}", reply.id), "name": name, "input": input })
}

/// A non-streaming message.
pub(crate) fn message(reply: &Reply<'_>) -> Bytes {
    let block = match &reply.content {
        Content::Text(text) => json!({ "type": "text", "text": text }),
        Content::Tool { name, arguments } => {
            let input = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
            tool_block(reply, name, input)
        }
    };
    let body = json!({
        "id": message_id(reply),
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [block],
        "stop_reason": stop_reason(reply),
        "stop_sequence": null,
        "usage": {
            "input_tokens": reply.prompt_tokens,
            "output_tokens": reply.completion_tokens(),
        },
    });
    Bytes::from(body.to_string())
}

fn event(name: &str, data: &Value) -> Bytes {
    format_event(Some(name), &data.to_string())
}

/// A streamed message with the full lifecycle around `chunks` deltas.
pub(crate) fn message_stream(reply: &Reply<'_>, faults: &Faults) -> StreamPlan {
    let pieces = reply.pieces();
    let mut events = Vec::with_capacity(pieces.len() + 10);
    events.push(event(
        "message_start",
        &json!({
            "type": "message_start",
            "message": {
                "id": message_id(reply),
                "type": "message",
                "role": "assistant",
                "model": reply.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": { "input_tokens": reply.prompt_tokens, "output_tokens": 1 },
            },
        }),
    ));
    let thinking = think(faults, &mut events);
    let index = u64::from(faults.think_as == ThinkAs::Reasoning && !thinking.is_empty());
    let (block, delta_type, delta_field) = match &reply.content {
        Content::Text(_) => (json!({ "type": "text", "text": "" }), "text_delta", "text"),
        Content::Tool { name, .. } => (
            tool_block(reply, name, json!({})),
            "input_json_delta",
            "partial_json",
        ),
    };
    events.push(event(
        "content_block_start",
        &json!({ "type": "content_block_start", "index": index, "content_block": block }),
    ));
    events.push(event("ping", &json!({ "type": "ping" })));
    let content = events.len()..events.len() + pieces.len();
    for piece in &pieces {
        events.push(event(
            "content_block_delta",
            &json!({
                "type": "content_block_delta",
                "index": index,
                "delta": { "type": delta_type, delta_field: piece },
            }),
        ));
    }
    events.push(event(
        "content_block_stop",
        &json!({ "type": "content_block_stop", "index": index }),
    ));
    events.push(event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop_reason(reply), "stop_sequence": null },
            "usage": { "output_tokens": reply.completion_tokens() },
        }),
    ));
    events.push(event("message_stop", &json!({ "type": "message_stop" })));
    StreamPlan {
        events,
        content,
        thinking,
        error_event: event(
            "error",
            &json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } }),
        ),
    }
}

/// The thinking of a `think` fault, as Anthropic streams it: a thinking block of one
/// `thinking_delta` a second (closed with its signature), or `ping`s while it thinks.
/// Returns the range of the events the thinking time is spread over.
fn think(faults: &Faults, events: &mut Vec<Bytes>) -> std::ops::Range<usize> {
    let steps = faults.think_events();
    if steps == 0 {
        return events.len()..events.len();
    }
    if faults.think_as == ThinkAs::Pings {
        let start = events.len();
        events.extend((0..steps).map(|_| event("ping", &json!({ "type": "ping" }))));
        return start..events.len();
    }
    events.push(event(
        "content_block_start",
        &json!({ "type": "content_block_start", "index": 0,
                 "content_block": { "type": "thinking", "thinking": "", "signature": "" } }),
    ));
    let start = events.len();
    for step in 0..steps {
        events.push(event(
            "content_block_delta",
            &json!({ "type": "content_block_delta", "index": 0,
                     "delta": { "type": "thinking_delta", "thinking": format!("Thinking, step {}. ", step + 1) } }),
        ));
    }
    let thinking = start..events.len();
    events.push(event(
        "content_block_delta",
        &json!({ "type": "content_block_delta", "index": 0,
                 "delta": { "type": "signature_delta", "signature": "mock-signature" } }),
    ));
    events.push(event(
        "content_block_stop",
        &json!({ "type": "content_block_stop", "index": 0 }),
    ));
    thinking
}

/// An error body as Anthropic sends it for `status`.
pub(crate) fn error(status: u16, message: &str) -> Bytes {
    let kind = match status {
        400 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    };
    let body = json!({ "type": "error", "error": { "type": kind, "message": message } });
    Bytes::from(body.to_string())
}
