//! What each event of a Bedrock ConverseStream means for failover, and the usage a
//! Converse body or its `metadata` event reports.
//!
//! The commit point: `messageStart` and `contentBlockStop` are held; the first non-empty
//! text, reasoning or tool-input delta, or a tool-use block start, commits. `messageStop`
//! carries the stop reason and `metadata` (usage, always last) ends the stream. An
//! exception frame is an in-band error, a throttle when it is `throttlingException`.
//! Payload members this does not know (the `p` padding above all) are ignored.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::ErrorFormat;
use crate::event_kind::{finish_reason, EventKind, Usage};
use crate::eventstream::FRAME_ERROR;
use crate::sse::Event;
use crate::wire::{chat, Framing, Protocol};

/// Bedrock Converse's facts: the model is in the path, streams come in the AWS event
/// stream. No app calls in it, so it reaches apps translated, errors in OpenAI's shape.
pub(crate) const PROTOCOL: Protocol = Protocol {
    framing: Framing::EventStream,
    classify,
    body_usage,
    system_prefix,
    stream_error: chat::stream_error,
    error_format: ErrorFormat::OpenAi,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Peek {
    delta: Option<DeltaPeek>,
    start: Option<StartPeek>,
    stop_reason: Option<String>,
    usage: Option<ConverseUsage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaPeek {
    text: Option<String>,
    tool_use: Option<ToolInputPeek>,
    reasoning_content: Option<ReasoningPeek>,
}

#[derive(Deserialize)]
struct ToolInputPeek {
    input: Option<String>,
}

#[derive(Deserialize)]
struct ReasoningPeek {
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartPeek {
    tool_use: Option<serde::de::IgnoredAny>,
}

/// Converse's `usage` object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

/// Classifies one decoded event of a ConverseStream, adding any usage it reports.
pub(crate) fn classify(event: &Event, usage: &mut Usage) -> EventKind {
    let name = event.event.as_deref().unwrap_or_default();
    match name {
        "throttlingException" => return EventKind::Throttled,
        FRAME_ERROR => return EventKind::Error,
        _ if name.ends_with("Exception") => return EventKind::Error,
        _ => {}
    }
    let Ok(peek) = serde_json::from_str::<Peek>(&event.data) else {
        return EventKind::Lifecycle;
    };
    match name {
        "contentBlockDelta" => {
            let nonempty = |t: &Option<String>| t.as_deref().is_some_and(|t| !t.is_empty());
            let content = peek.delta.is_some_and(|d| {
                nonempty(&d.text)
                    || d.tool_use.is_some_and(|t| nonempty(&t.input))
                    || d.reasoning_content.is_some_and(|r| nonempty(&r.text))
            });
            if content {
                EventKind::Content
            } else {
                EventKind::Lifecycle
            }
        }
        "contentBlockStart" if peek.start.is_some_and(|s| s.tool_use.is_some()) => {
            EventKind::Content
        }
        "messageStop" => {
            usage.finish = peek.stop_reason.as_deref().map(finish_reason);
            EventKind::Lifecycle
        }
        "metadata" => {
            if let Some(u) = peek.usage {
                usage.input = u.input_tokens;
                usage.output = u.output_tokens;
            }
            EventKind::End
        }
        _ => EventKind::Lifecycle,
    }
}

/// Usage and stop reason of a complete Converse response body.
pub(crate) fn body_usage(body: &[u8]) -> Usage {
    let mut usage = Usage::default();
    if let Ok(peek) = serde_json::from_slice::<Peek>(body) {
        if let Some(u) = peek.usage {
            usage.input = u.input_tokens;
            usage.output = u.output_tokens;
        }
        usage.finish = peek.stop_reason.as_deref().map(finish_reason);
    }
    usage
}

/// A new first Converse `system` block holding `prefix` (the blocks after it kept).
fn system_prefix(object: &mut Map<String, Value>, prefix: &str) {
    let system = object
        .entry("system")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(blocks) = system.as_array_mut() {
        blocks.insert(0, json!({"text": prefix}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, data: &str) -> Event {
        crate::wire::test_event(Some(name), data)
    }

    #[test]
    fn commit_point_end_and_exceptions() {
        let mut u = Usage::default();
        for (name, data) in [
            ("messageStart", r#"{"role":"assistant","p":"abcd"}"#),
            (
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":""}}"#,
            ),
            ("contentBlockStart", r#"{"contentBlockIndex":0,"start":{}}"#),
            ("contentBlockStop", r#"{"contentBlockIndex":0}"#),
        ] {
            assert_eq!(
                classify(&ev(name, data), &mut u),
                EventKind::Lifecycle,
                "{name}"
            );
        }
        for (name, data) in [
            (
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"x"}"#,
            ),
            (
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"hmm"}}}"#,
            ),
            (
                "contentBlockDelta",
                r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\""}}}"#,
            ),
            (
                "contentBlockStart",
                r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t","name":"f"}}}"#,
            ),
        ] {
            assert_eq!(
                classify(&ev(name, data), &mut u),
                EventKind::Content,
                "{data}"
            );
        }
        assert_eq!(
            classify(&ev("messageStop", r#"{"stopReason":"tool_use"}"#), &mut u),
            EventKind::Lifecycle
        );
        let metadata = r#"{"usage":{"inputTokens":9,"outputTokens":4,"totalTokens":13},"metrics":{"latencyMs":5}}"#;
        assert_eq!(classify(&ev("metadata", metadata), &mut u), EventKind::End);
        assert_eq!((u.input, u.output, u.finish), (9, 4, Some("tool_use")));
        assert_eq!(
            classify(&ev("throttlingException", r#"{"message":"x"}"#), &mut u),
            EventKind::Throttled
        );
        for name in [
            "modelStreamErrorException",
            "internalServerException",
            FRAME_ERROR,
        ] {
            assert_eq!(
                classify(&ev(name, "{}"), &mut u),
                EventKind::Error,
                "{name}"
            );
        }
        let body = br#"{"output":{"message":{"role":"assistant","content":[{"text":"x"}]}},"stopReason":"max_tokens","usage":{"inputTokens":3,"outputTokens":8}}"#;
        let u = body_usage(body);
        assert_eq!((u.input, u.output, u.finish), (3, 8, Some("max_tokens")));
    }
}
