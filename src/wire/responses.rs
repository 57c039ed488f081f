//! What each event of an OpenAI Responses stream means for failover, and the usage a
//! Responses body or its terminal event reports.
//!
//! The commit point: `response.created`, `response.in_progress`, an empty message item
//! and its empty content part are held; the first non-empty text, refusal or reasoning
//! delta, or a function-call item, commits. `response.completed` and
//! `response.incomplete` end cleanly; `response.failed` and `error` are in-band errors,
//! a throttle when their code says rate limit.

use serde_json::{json, Map, Value};
use std::borrow::Cow;

use serde::Deserialize;

use crate::classify::FailReason;
use crate::error::ErrorFormat;
use crate::event_kind::{finish_reason, EventKind, Usage};
use crate::sse::format_event;
use crate::sse::Event;
use crate::wire::{Framing, Protocol};
use bytes::Bytes;

/// The Responses API's facts.
pub(crate) const PROTOCOL: Protocol = Protocol {
    framing: Framing::Sse,
    classify,
    body_usage,
    system_prefix,
    stream_error,
    error_format: ErrorFormat::OpenAi,
};

/// The error code a Responses stream reports a rate limit with.
const RATE_LIMIT: &str = "rate_limit_exceeded";

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    delta: Option<Cow<'a, str>>,
    #[serde(borrow)]
    item: Option<ItemPeek<'a>>,
    #[serde(borrow)]
    response: Option<ResponsePeek<'a>>,
    /// The code of an `error` event.
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ItemPeek<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ResponsePeek<'a> {
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    usage: Option<ResponsesUsage>,
    #[serde(borrow)]
    error: Option<ErrorPeek<'a>>,
    #[serde(borrow)]
    incomplete_details: Option<IncompletePeek<'a>>,
    #[serde(default, borrow)]
    output: Vec<ItemPeek<'a>>,
}

#[derive(Deserialize)]
struct ErrorPeek<'a> {
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct IncompletePeek<'a> {
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
}

/// The Responses `usage` object.
#[derive(Deserialize)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

/// Classifies one event of a Responses stream, adding the usage its terminal event
/// reports.
pub fn classify(event: &Event, usage: &mut Usage) -> EventKind {
    let Ok(peek) = serde_json::from_str::<Peek<'_>>(&event.data) else {
        return EventKind::Lifecycle;
    };
    // The `type` in the data is what the SDKs read; the SSE event name repeats it.
    let kind = peek
        .kind
        .as_deref()
        .or(event.event.as_deref())
        .unwrap_or("");
    let nonempty = peek.delta.as_deref().is_some_and(|d| !d.is_empty());
    match kind {
        "response.output_text.delta"
        | "response.refusal.delta"
        | "response.reasoning_text.delta"
        | "response.reasoning_summary_text.delta"
        | "response.function_call_arguments.delta"
            if nonempty =>
        {
            EventKind::Content
        }
        "response.output_item.added"
            if peek
                .item
                .as_ref()
                .and_then(|i| i.kind.as_deref())
                .is_some_and(|k| k == "function_call") =>
        {
            EventKind::Content
        }
        "response.completed" | "response.incomplete" => {
            if let Some(response) = &peek.response {
                add_response(response, usage);
            }
            EventKind::End
        }
        "response.failed" => {
            let code = peek
                .response
                .as_ref()
                .and_then(|r| r.error.as_ref())
                .and_then(|e| e.code.as_deref());
            failure(code)
        }
        "error" => failure(peek.code.as_deref()),
        _ => EventKind::Lifecycle,
    }
}

fn failure(code: Option<&str>) -> EventKind {
    if code == Some(RATE_LIMIT) {
        EventKind::Throttled
    } else {
        EventKind::Error
    }
}

fn add_response(response: &ResponsePeek<'_>, usage: &mut Usage) {
    if let Some(u) = &response.usage {
        usage.input = u.input_tokens;
        usage.output = u.output_tokens;
    }
    let called = response
        .output
        .iter()
        .any(|i| i.kind.as_deref() == Some("function_call"));
    let incomplete = response
        .incomplete_details
        .as_ref()
        .and_then(|d| d.reason.as_deref());
    usage.finish = match (response.status.as_deref(), incomplete) {
        (Some("incomplete"), Some("content_filter")) => Some("content_filter"),
        (Some("incomplete"), _) => Some("length"),
        (Some("completed"), _) if called => Some("tool_calls"),
        (Some(status), _) => Some(finish_reason(if status == "completed" {
            "stop"
        } else {
            status
        })),
        (None, _) => None,
    };
}

/// Where a Responses stream or body names the response it creates.
#[derive(Deserialize)]
struct IdPeek<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    response: Option<Box<IdPeek<'a>>>,
}

/// The id of the response a stream's `response.created` event announces.
pub fn created_id(event: &Event) -> Option<String> {
    let peek = serde_json::from_str::<IdPeek<'_>>(&event.data).ok()?;
    let kind = peek.kind.as_deref().or(event.event.as_deref())?;
    (kind == "response.created")
        .then(|| peek.response?.id.map(Cow::into_owned))
        .flatten()
}

/// The id of a complete (non-streamed) Responses body.
pub fn body_id(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<IdPeek<'_>>(body)
        .ok()?
        .id
        .map(Cow::into_owned)
}

/// Usage and finish reason of a complete (non-streamed) Responses body.
pub fn body_usage(body: &[u8]) -> Usage {
    let mut usage = Usage::default();
    if let Ok(response) = serde_json::from_slice::<ResponsePeek<'_>>(body) {
        add_response(&response, &mut usage);
    }
    usage
}

/// The sidecar's failure of a committed stream when no translator names the response
/// (a native stream's own trail ends it with `response.failed`): an `error` event.
pub(crate) fn stream_error(reason: FailReason, message: &str) -> Bytes {
    let data = json!({"type": "error", "code": reason.as_str(), "message": message, "param": null, "sequence_number": 0});
    format_event(Some("error"), &data.to_string())
}

/// Joins `prefix` before the call's `instructions` with a blank line, or makes it the
/// instructions (they apply to this call only, so a continued conversation gets it too).
fn system_prefix(object: &mut Map<String, Value>, prefix: &str) {
    match object.get_mut("instructions") {
        Some(Value::String(text)) if !text.is_empty() => *text = format!("{prefix}\n\n{text}"),
        _ => {
            object.insert("instructions".to_owned(), Value::from(prefix));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(data: &str) -> Event {
        crate::wire::test_event(None, data)
    }

    #[test]
    fn commit_point() {
        let mut u = Usage::default();
        for held in [
            r#"{"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}"#,
            r#"{"type":"response.in_progress","response":{"id":"resp_1"}}"#,
            r#"{"type":"response.output_item.added","item":{"type":"message","content":[]}}"#,
            r#"{"type":"response.content_part.added","part":{"type":"output_text","text":""}}"#,
            r#"{"type":"response.output_text.delta","delta":""}"#,
            r#"{"type":"response.output_item.added","item":{"type":"reasoning"}}"#,
        ] {
            assert_eq!(classify(&ev(held), &mut u), EventKind::Lifecycle, "{held}");
        }
        for content in [
            r#"{"type":"response.output_text.delta","delta":"Hi"}"#,
            r#"{"type":"response.reasoning_text.delta","delta":"hmm"}"#,
            r#"{"type":"response.reasoning_summary_text.delta","delta":"hmm"}"#,
            r#"{"type":"response.output_item.added","item":{"type":"function_call"}}"#,
        ] {
            assert_eq!(
                classify(&ev(content), &mut u),
                EventKind::Content,
                "{content}"
            );
        }
    }

    #[test]
    fn ends_errors_and_throttles() {
        let mut u = Usage::default();
        let done = r#"{"type":"response.completed","response":{"status":"completed","output":[{"type":"function_call"}],"usage":{"input_tokens":9,"output_tokens":4}}}"#;
        assert_eq!(classify(&ev(done), &mut u), EventKind::End);
        assert_eq!((u.input, u.output, u.finish), (9, 4, Some("tool_calls")));
        let failed = r#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"x"}}}"#;
        assert_eq!(classify(&ev(failed), &mut u), EventKind::Error);
        let limited = r#"{"type":"response.failed","response":{"status":"failed","error":{"code":"rate_limit_exceeded","message":"x"}}}"#;
        assert_eq!(classify(&ev(limited), &mut u), EventKind::Throttled);
        let error = r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down"}"#;
        assert_eq!(classify(&ev(error), &mut u), EventKind::Throttled);
        let body = br#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":3,"output_tokens":8}}"#;
        let u = body_usage(body);
        assert_eq!((u.input, u.output, u.finish), (3, 8, Some("length")));
    }

    #[test]
    fn finds_the_id_of_the_response_created() {
        let created =
            r#"{"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}"#;
        assert_eq!(created_id(&ev(created)).as_deref(), Some("resp_1"));
        let progress = r#"{"type":"response.in_progress","response":{"id":"resp_1"}}"#;
        assert_eq!(created_id(&ev(progress)), None);
        assert_eq!(created_id(&ev("not json")), None);
        assert_eq!(
            body_id(br#"{"id":"resp_2","object":"response"}"#).as_deref(),
            Some("resp_2")
        );
        assert_eq!(body_id(b"{}"), None);
    }
}
