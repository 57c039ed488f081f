//! Anthropic Messages (`POST /v1/messages`, and `/v1/messages/count_tokens`): named SSE
//! events, the model in the body. `message_start` and `ping` are held,
//! `content_block_delta` commits, `message_stop` ends, an `error` event is in-band.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::classify::FailReason;
use crate::error::ErrorFormat;
use crate::event_kind::{finish_reason, EventKind, Usage};
use crate::sse::{format_event, Event};
use crate::wire::{Framing, Protocol};

/// Messages' facts.
pub(crate) const PROTOCOL: Protocol = Protocol {
    framing: Framing::Sse,
    classify,
    body_usage,
    system_prefix,
    stream_error,
    error_format: ErrorFormat::Anthropic,
};

#[derive(Deserialize)]
struct AnthropicEvent<'a> {
    message: Option<AnthropicMessage>,
    usage: Option<AnthropicUsage>,
    #[serde(borrow)]
    delta: Option<AnthropicDelta<'a>>,
}

#[derive(Deserialize)]
struct AnthropicDelta<'a> {
    stop_reason: Option<&'a str>,
}

#[derive(Deserialize)]
struct AnthropicMessage {
    usage: Option<AnthropicUsage>,
}

/// Anthropic's `usage` object.
#[derive(Deserialize, Default)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

/// The role of one Messages event, adding the usage it reports.
pub(crate) fn classify(event: &Event, usage: &mut Usage) -> EventKind {
    match event.event.as_deref() {
        Some("content_block_delta") => EventKind::Content,
        Some("message_stop") => EventKind::End,
        Some("error") => EventKind::Error,
        Some("message_start") | Some("message_delta") => {
            if let Ok(parsed) = serde_json::from_str::<AnthropicEvent<'_>>(&event.data) {
                if let Some(reason) = parsed.delta.and_then(|d| d.stop_reason) {
                    usage.finish = Some(finish_reason(reason));
                }
                let reported = parsed.usage.or(parsed.message.and_then(|m| m.usage));
                if let Some(u) = reported {
                    add_anthropic(&u, usage);
                }
            }
            EventKind::Lifecycle
        }
        _ => EventKind::Lifecycle,
    }
}

fn add_anthropic(reported: &AnthropicUsage, usage: &mut Usage) {
    if let Some(input) = reported.input_tokens {
        usage.input = input;
    }
    if let Some(output) = reported.output_tokens {
        usage.output = output;
    }
}

#[derive(Deserialize)]
struct WithAnthropicUsage<'a> {
    usage: Option<AnthropicUsage>,
    stop_reason: Option<&'a str>,
}

/// Usage and stop reason of a complete Messages body.
pub(crate) fn body_usage(body: &[u8]) -> Usage {
    let mut usage = Usage::default();
    if let Ok(reply) = serde_json::from_slice::<WithAnthropicUsage<'_>>(body) {
        if let Some(u) = reply.usage {
            add_anthropic(&u, &mut usage);
        }
        usage.finish = reply.stop_reason.map(finish_reason);
    }
    usage
}

/// The sidecar's failure of a committed stream, as an Anthropic SDK reads an `error`
/// event: `overloaded_error` when the provider itself reported the error.
pub(crate) fn stream_error(reason: FailReason, message: &str) -> Bytes {
    let kind = if reason == FailReason::StreamError {
        "overloaded_error"
    } else {
        "api_error"
    };
    let data = json!({"type": "error", "error": {"type": kind, "message": message}});
    format_event(Some("error"), &data.to_string())
}
/// Puts `prefix` in a new first `system` text block; a string system prompt becomes a
/// block after it, and the app's own blocks keep their `cache_control` (a cache
/// breakpoint on them still covers the same text, now with the prefix before it).
fn system_prefix(object: &mut Map<String, Value>, prefix: &str) {
    let block = json!({"type": "text", "text": prefix});
    let blocks = match object.remove("system") {
        Some(Value::Array(mut blocks)) => {
            blocks.insert(0, block);
            blocks
        }
        Some(Value::String(text)) if !text.is_empty() => {
            vec![block, json!({"type": "text", "text": text})]
        }
        _ => vec![block],
    };
    object.insert("system".to_owned(), Value::Array(blocks));
}
