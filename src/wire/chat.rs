//! OpenAI Chat Completions (`POST /v1/chat/completions`), the hub every translation goes
//! through: SSE `data:` chunks ending with `[DONE]`, the model in the body. A chunk with
//! text, reasoning, a tool call, a refusal or a finish reason is content (the commit
//! point); an `error` member or event is an in-band error.

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::classify::FailReason;
use crate::error::ErrorFormat;
use crate::event_kind::{finish_reason, EventKind, Usage};
use crate::sse::{format_event, Event};
use crate::wire::{Framing, Protocol};

/// Chat Completions' facts.
pub(crate) const PROTOCOL: Protocol = Protocol {
    framing: Framing::Sse,
    classify,
    body_usage,
    system_prefix,
    stream_error,
    error_format: ErrorFormat::OpenAi,
};

#[derive(Deserialize)]
struct OpenaiChunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<OpenaiChoice<'a>>,
    usage: Option<OpenaiUsage>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct OpenaiChoice<'a> {
    #[serde(borrow)]
    delta: Option<OpenaiDelta<'a>>,
    finish_reason: Option<&'a str>,
}

#[derive(Deserialize)]
struct OpenaiDelta<'a> {
    #[serde(borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    tool_calls: Option<IgnoredAny>,
    refusal: Option<IgnoredAny>,
    /// Reasoning deltas (DeepSeek, Qwen, vLLM): content for the commit point.
    #[serde(borrow)]
    reasoning_content: Option<std::borrow::Cow<'a, str>>,
    /// Reasoning deltas (OpenRouter, Grok, Ollama).
    #[serde(borrow)]
    reasoning: Option<std::borrow::Cow<'a, str>>,
}

/// OpenAI's `usage` object (responses, stream chunks and embeddings).
#[derive(Deserialize, Default)]
struct OpenaiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// The role of one Chat Completions chunk, adding the usage it reports.
pub(crate) fn classify(event: &Event, usage: &mut Usage) -> EventKind {
    let data = event.data.trim();
    if data == "[DONE]" {
        return EventKind::End;
    }
    if event.event.as_deref() == Some("error") {
        return EventKind::Error;
    }
    let Ok(chunk) = serde_json::from_str::<OpenaiChunk<'_>>(data) else {
        return EventKind::Lifecycle;
    };
    if chunk.error.is_some() {
        return EventKind::Error;
    }
    if let Some(u) = chunk.usage {
        usage.input = u.prompt_tokens;
        usage.output = u.completion_tokens;
    }
    if let Some(reason) = chunk.choices.iter().find_map(|c| c.finish_reason) {
        usage.finish = Some(finish_reason(reason));
    }
    let has_content = chunk.choices.iter().any(|c| {
        c.finish_reason.is_some()
            || c.delta.as_ref().is_some_and(|d| {
                let text = |t: &Option<std::borrow::Cow<'_, str>>| {
                    t.as_deref().is_some_and(|t| !t.is_empty())
                };
                text(&d.content)
                    || text(&d.reasoning_content)
                    || text(&d.reasoning)
                    || d.tool_calls.is_some()
                    || d.refusal.is_some()
            })
    });
    if has_content {
        EventKind::Content
    } else {
        EventKind::Lifecycle
    }
}

#[derive(Deserialize)]
struct WithOpenaiUsage<'a> {
    usage: Option<OpenaiUsage>,
    #[serde(default, borrow)]
    choices: Vec<OpenaiChoiceFinish<'a>>,
}

#[derive(Deserialize)]
struct OpenaiChoiceFinish<'a> {
    finish_reason: Option<&'a str>,
}

/// Usage and finish reason of a complete Chat Completions (or embeddings) body.
pub(crate) fn body_usage(body: &[u8]) -> Usage {
    let mut usage = Usage::default();
    if let Ok(reply) = serde_json::from_slice::<WithOpenaiUsage<'_>>(body) {
        if let Some(u) = reply.usage {
            usage.input = u.prompt_tokens;
            usage.output = u.completion_tokens;
        }
        usage.finish = reply
            .choices
            .iter()
            .find_map(|c| c.finish_reason)
            .map(finish_reason);
    }
    usage
}

/// The sidecar's failure of a committed stream, as an OpenAI SDK reads an in-band error
/// (also the default for wires no app speaks, whose streams always reach apps translated).
pub(crate) fn stream_error(reason: FailReason, message: &str) -> Bytes {
    let data =
        json!({"error": {"message": message, "type": "server_error", "code": reason.as_str()}});
    format_event(None, &data.to_string())
}
/// Joins `prefix` before the first system or developer message's text with a blank line,
/// or starts the conversation with a system message holding it.
fn system_prefix(object: &mut Map<String, Value>, prefix: &str) {
    let Some(messages) = object.get_mut("messages").and_then(Value::as_array_mut) else {
        return;
    };
    let first_system = messages.iter_mut().find(|m| {
        matches!(
            m.get("role").and_then(Value::as_str),
            Some("system" | "developer")
        )
    });
    let Some(message) = first_system else {
        messages.insert(0, json!({"role": "system", "content": prefix}));
        return;
    };
    match message.get_mut("content") {
        Some(Value::String(text)) if !text.is_empty() => *text = format!("{prefix}\n\n{text}"),
        Some(Value::Array(parts)) => {
            let first_text = parts
                .iter_mut()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .find_map(|p| match p.get_mut("text") {
                    Some(Value::String(text)) => Some(text),
                    _ => None,
                });
            match first_text {
                Some(text) => *text = format!("{prefix}\n\n{text}"),
                None => parts.insert(0, json!({"type": "text", "text": prefix})),
            }
        }
        _ => message["content"] = Value::from(prefix),
    }
}
