//! What each event of a `streamGenerateContent?alt=sse` stream means for failover, and
//! the usage a generateContent body reports.
//!
//! A Gemini stream has no terminal event: its last chunk carries a candidate's
//! `finishReason` (or a `promptFeedback.blockReason` when the prompt itself was
//! blocked), and the connection closes. That chunk is the clean end; a close before it
//! is a cut. Text (thoughts included) and function calls are content: the commit point.
//! An `error` object in a chunk is an in-band error, a throttle when it says
//! `RESOURCE_EXHAUSTED`.

use serde_json::{json, Map, Value};
use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::error::ErrorFormat;
use crate::event_kind::{EventKind, Usage};
use crate::sse::Event;
use crate::wire::{chat, Framing, Protocol};

/// Google's generateContent facts (Gemini and Vertex AI): the model is in the path. No app
/// calls in it, so its streams reach apps translated and its errors in OpenAI's shape.
pub(crate) const PROTOCOL: Protocol = Protocol {
    framing: Framing::Sse,
    classify,
    body_usage,
    system_prefix,
    stream_error: chat::stream_error,
    error_format: ErrorFormat::OpenAi,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    #[serde(default, borrow)]
    candidates: Vec<Candidate<'a>>,
    usage_metadata: Option<UsageMetadata>,
    #[serde(borrow)]
    prompt_feedback: Option<PromptFeedback<'a>>,
    #[serde(borrow)]
    error: Option<ErrorPeek<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(borrow)]
    content: Option<Content<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(default, borrow)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    function_call: Option<IgnoredAny>,
    inline_data: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback<'a> {
    #[serde(borrow)]
    block_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorPeek<'a> {
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    code: Option<u16>,
}

/// Gemini's `usageMetadata`: thought tokens are output the model was paid for.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
}

/// Classifies one event of a Gemini stream, adding the usage it reports (each chunk
/// repeats the running totals, so the latest wins).
pub(crate) fn classify(event: &Event, usage: &mut Usage) -> EventKind {
    let Ok(chunk) = serde_json::from_str::<Chunk<'_>>(&event.data) else {
        return EventKind::Lifecycle;
    };
    if let Some(error) = &chunk.error {
        let exhausted =
            error.status.as_deref() == Some("RESOURCE_EXHAUSTED") || error.code == Some(429);
        return if exhausted {
            EventKind::Throttled
        } else {
            EventKind::Error
        };
    }
    add(&chunk, usage);
    let blocked = chunk
        .prompt_feedback
        .as_ref()
        .is_some_and(|f| f.block_reason.is_some());
    let finished = chunk.candidates.iter().any(|c| c.finish_reason.is_some());
    if finished || (blocked && chunk.candidates.is_empty()) {
        return EventKind::End;
    }
    let content = chunk
        .candidates
        .iter()
        .filter_map(|c| c.content.as_ref())
        .flat_map(|c| &c.parts)
        .any(|p| {
            p.text.as_deref().is_some_and(|t| !t.is_empty())
                || p.function_call.is_some()
                || p.inline_data.is_some()
        });
    if content {
        EventKind::Content
    } else {
        EventKind::Lifecycle
    }
}

fn add(chunk: &Chunk<'_>, usage: &mut Usage) {
    if let Some(u) = &chunk.usage_metadata {
        usage.input = u.prompt_token_count;
        usage.output = u.candidates_token_count + u.thoughts_token_count;
    }
    let called = chunk
        .candidates
        .iter()
        .filter_map(|c| c.content.as_ref())
        .flat_map(|c| &c.parts)
        .any(|p| p.function_call.is_some());
    if let Some(reason) = chunk
        .candidates
        .iter()
        .find_map(|c| c.finish_reason.as_deref())
    {
        usage.finish = Some(finish_name(reason, called));
    } else if chunk
        .prompt_feedback
        .as_ref()
        .is_some_and(|f| f.block_reason.is_some())
    {
        usage.finish = Some("content_filter");
    }
}

/// A Gemini finish reason as traces report it, in OpenAI's words: Gemini says `STOP` even
/// when it called a function, so the content decides.
pub fn finish_name(reason: &str, called: bool) -> &'static str {
    match reason {
        "STOP" if called => "tool_calls",
        "STOP" => "stop",
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => "content_filter",
        _ => "other",
    }
}

/// Usage and finish reason of a complete (non-streamed) generateContent body.
pub(crate) fn body_usage(body: &[u8]) -> Usage {
    let mut usage = Usage::default();
    if let Ok(text) = std::str::from_utf8(body) {
        if let Ok(chunk) = serde_json::from_str::<Chunk<'_>>(text) {
            add(&chunk, &mut usage);
        }
    }
    usage
}

/// Joins `prefix` before the first text part of `systemInstruction` with a blank line, or
/// creates the instruction.
fn system_prefix(object: &mut Map<String, Value>, prefix: &str) {
    let instruction = object
        .entry("systemInstruction")
        .or_insert_with(|| json!({"parts": []}));
    let Some(parts) = instruction.get_mut("parts").and_then(Value::as_array_mut) else {
        *instruction = json!({"parts": [{"text": prefix}]});
        return;
    };
    match parts.iter_mut().find_map(|p| match p.get_mut("text") {
        Some(Value::String(text)) => Some(text),
        _ => None,
    }) {
        Some(text) => *text = format!("{prefix}\n\n{text}"),
        None => parts.insert(0, json!({"text": prefix})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(data: &str) -> Event {
        crate::wire::test_event(None, data)
    }

    #[test]
    fn commit_point_end_and_usage() {
        let mut u = Usage::default();
        let empty = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":""}]}}]}"#;
        assert_eq!(classify(&ev(empty), &mut u), EventKind::Lifecycle);
        let thought = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"hmm","thought":true}]}}]}"#;
        assert_eq!(classify(&ev(thought), &mut u), EventKind::Content);
        let call = r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]}}]}"#;
        assert_eq!(classify(&ev(call), &mut u), EventKind::Content);
        let last = r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4,"thoughtsTokenCount":3,"cachedContentTokenCount":2}}"#;
        assert_eq!(classify(&ev(last), &mut u), EventKind::End);
        assert_eq!((u.input, u.output, u.finish), (9, 7, Some("tool_calls")));
        let blocked =
            r#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":5}}"#;
        assert_eq!(classify(&ev(blocked), &mut u), EventKind::End);
        assert_eq!(u.finish, Some("content_filter"));
    }

    #[test]
    fn in_band_errors_and_throttles() {
        let mut u = Usage::default();
        let busy = r#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#;
        assert_eq!(classify(&ev(busy), &mut u), EventKind::Error);
        let limited = r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(classify(&ev(limited), &mut u), EventKind::Throttled);
    }

    #[test]
    fn a_whole_body_reports_usage() {
        let body = br#"{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":8}}"#;
        let u = body_usage(body);
        assert_eq!((u.input, u.output, u.finish), (3, 8, Some("length")));
    }
}
