//! OpenAI-format bodies: chat completions (whole and streamed), embeddings and errors.
//!
//! Invariant: every body parses with the official SDKs: ids, `object`, `created`, the
//! requested `model`, `finish_reason` and `usage` are always present where they expect
//! them, and a stream ends with `data: [DONE]` unless a fault cuts it.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};

use super::body::StreamPlan;
use super::faults::{Faults, ThinkAs};
use super::reply::{Content, Reply, Request};
use crate::sse::format_event;

/// Default embedding size when the request does not set `dimensions`.
const EMBEDDING_DIMENSIONS: usize = 8;
/// Largest embedding the mock will make, so a request cannot make it allocate freely.
const MAX_DIMENSIONS: usize = 4096;

fn usage(reply: &Reply<'_>) -> Value {
    let completion = reply.completion_tokens();
    json!({
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": reply.prompt_tokens.saturating_add(completion),
    })
}

fn finish_reason(reply: &Reply<'_>) -> &'static str {
    match reply.content {
        Content::Text(_) => "stop",
        Content::Tool { .. } => "tool_calls",
    }
}

/// A non-streaming chat completion.
pub(crate) fn completion(reply: &Reply<'_>) -> Bytes {
    let message = match &reply.content {
        Content::Text(text) => json!({ "role": "assistant", "content": text, "refusal": null }),
        Content::Tool { name, arguments } => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": [{
                "id": format!("call_mock_{}", reply.id),
                "type": "function",
                "function": { "name": name, "arguments": arguments },
            }],
        }),
    };
    let body = json!({
        "id": format!("chatcmpl-mock-{}", reply.id),
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(reply),
        }],
        "usage": usage(reply),
    });
    Bytes::from(body.to_string())
}

/// A streamed chat completion: a role-only chunk, one chunk per delta, a chunk with the
/// `finish_reason`, a usage chunk when asked for, and `[DONE]`.
pub(crate) fn completion_stream(
    reply: &Reply<'_>,
    include_usage: bool,
    faults: &Faults,
) -> StreamPlan {
    // Every chunk shares this envelope; only the choice differs, so it is written once.
    let head = format!(
        r#"{{"id":"chatcmpl-mock-{}","object":"chat.completion.chunk","created":{},"model":{},"system_fingerprint":null,"choices":"#,
        reply.id,
        reply.created,
        Value::from(reply.model),
    );
    let chunk = |choice: &str| {
        let mut data = String::with_capacity(head.len() + choice.len() + 80);
        data.push_str(&head);
        data.push_str(choice);
        data.push('}');
        format_event(None, &data)
    };
    let choice = |delta: &str, finish: Option<&str>| {
        let finish = finish.map_or_else(|| "null".to_owned(), |f| format!("\"{f}\""));
        format!(r#"[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]"#)
    };
    let pieces = reply.pieces();
    let mut events = Vec::with_capacity(pieces.len() + 4);
    let first_delta = match reply.content {
        Content::Text(_) => r#"{"role":"assistant","content":""}"#,
        Content::Tool { .. } => r#"{"role":"assistant","content":null}"#,
    };
    events.push(chunk(&choice(first_delta, None)));
    let thinking_start = events.len();
    for step in 0..faults.think_events() {
        events.push(match faults.think_as {
            ThinkAs::Pings => Bytes::from_static(b": keep-alive\n\n"),
            ThinkAs::Reasoning | ThinkAs::Silence => {
                let thought =
                    json!({ "reasoning_content": format!("Thinking, step {}. ", step + 1) });
                chunk(&choice(&thought.to_string(), None))
            }
        });
    }
    let thinking = thinking_start..events.len();
    for (i, piece) in pieces.iter().enumerate() {
        let delta = match &reply.content {
            Content::Text(_) => json!({ "content": piece }),
            Content::Tool { name, .. } if i == 0 => json!({ "tool_calls": [{
                "index": 0,
                "id": format!("call_mock_{}", reply.id),
                "type": "function",
                "function": { "name": name, "arguments": piece },
            }]}),
            Content::Tool { .. } => {
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] })
            }
        };
        events.push(chunk(&choice(&delta.to_string(), None)));
    }
    let content = thinking.end..thinking.end + pieces.len();
    events.push(chunk(&choice("{}", Some(finish_reason(reply)))));
    if include_usage {
        let mut data = head.clone();
        data.push_str(r#"[],"usage":"#);
        data.push_str(&usage(reply).to_string());
        data.push('}');
        events.push(format_event(None, &data));
    }
    events.push(format_event(None, "[DONE]"));
    StreamPlan {
        events,
        content,
        thinking,
        error_event: format_event(
            None,
            r#"{"error":{"message":"The server had an error while processing your request (mock fault)","type":"server_error","param":null,"code":null}}"#,
        ),
    }
}

/// An embeddings response: one deterministic vector per input, as floats or, when asked
/// (the Python SDK asks by default), base64 of little-endian f32s.
pub(crate) fn embeddings(request: &Request, model: &str, prompt_tokens: u32) -> Bytes {
    let inputs = match &request.input {
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => 1,
        Some(Value::Array(items)) => items.len(),
        _ => 1,
    };
    let dims = request
        .dimensions
        .unwrap_or(EMBEDDING_DIMENSIONS)
        .clamp(1, MAX_DIMENSIONS);
    let vector: Vec<f32> = (0..dims).map(|j| (j % 7) as f32 / 10.0 - 0.3).collect();
    let embedding = if request.encoding_format.as_deref() == Some("base64") {
        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
    } else {
        json!(vector)
    };
    let data: Vec<Value> = (0..inputs)
        .map(|index| json!({ "object": "embedding", "index": index, "embedding": embedding }))
        .collect();
    let body = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens },
    });
    Bytes::from(body.to_string())
}

/// An error body as OpenAI sends it for `status`.
pub(crate) fn error(status: u16, message: &str) -> Bytes {
    let (kind, code) = match status {
        429 => ("requests", Value::from("rate_limit_exceeded")),
        401 => ("invalid_request_error", Value::from("invalid_api_key")),
        500..=599 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    };
    let body =
        json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    Bytes::from(body.to_string())
}
