//! What each streamed event means for failover: lifecycle (held before the commit point),
//! content (the commit point), the clean end, or an in-band error; plus the token usage
//! events carry. One small typed peek per event, borrowing from the event's text.

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::event_kind::{finish_reason, EventKind, Usage};
use crate::policy::spec::Wire;
use crate::proxy::{converse_events, gemini_events, responses_events};
use crate::sse::Event;

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
pub struct OpenaiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

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
pub struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

/// Classifies one event of a stream in `wire`, adding any usage it reports.
pub fn inspect(wire: Wire, event: &Event, usage: &mut Usage) -> EventKind {
    if event.is_comment() {
        return EventKind::Lifecycle;
    }
    match wire {
        Wire::Messages => inspect_anthropic(event, usage),
        Wire::Chat | Wire::Embeddings => inspect_openai(event, usage),
        Wire::Responses => responses_events::inspect(event, usage),
        Wire::GenerateContent => gemini_events::inspect(event, usage),
        Wire::Converse => converse_events::inspect(event, usage),
    }
}

fn inspect_openai(event: &Event, usage: &mut Usage) -> EventKind {
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

fn inspect_anthropic(event: &Event, usage: &mut Usage) -> EventKind {
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
struct WithOpenaiUsage<'a> {
    usage: Option<OpenaiUsage>,
    #[serde(default, borrow)]
    choices: Vec<OpenaiChoiceFinish<'a>>,
}

#[derive(Deserialize)]
struct OpenaiChoiceFinish<'a> {
    finish_reason: Option<&'a str>,
}

#[derive(Deserialize)]
struct WithAnthropicUsage<'a> {
    usage: Option<AnthropicUsage>,
    stop_reason: Option<&'a str>,
}

/// Usage reported by a complete (non-streamed) response body in `wire`.
pub fn body_usage(wire: Wire, body: &[u8]) -> Usage {
    let mut usage = Usage::default();
    match wire {
        Wire::Responses => return responses_events::body_usage(body),
        Wire::GenerateContent => return gemini_events::body_usage(body),
        Wire::Converse => return converse_events::body_usage(body),
        Wire::Messages => {
            if let Ok(reply) = serde_json::from_slice::<WithAnthropicUsage<'_>>(body) {
                if let Some(u) = reply.usage {
                    add_anthropic(&u, &mut usage);
                }
                usage.finish = reply.stop_reason.map(finish_reason);
            }
        }
        Wire::Chat | Wire::Embeddings => {
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
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ev(event: Option<&str>, data: &str) -> Event {
        Event {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            raw: Bytes::new(),
        }
    }

    #[test]
    fn openai_commit_point() {
        let mut u = Usage::default();
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(
            inspect(Wire::Chat, &ev(None, role), &mut u),
            EventKind::Lifecycle
        );
        let text = r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        assert_eq!(
            inspect(Wire::Chat, &ev(None, text), &mut u),
            EventKind::Content
        );
        for reasoning in [
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"Let me think"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning":"Let me think"}}]}"#,
        ] {
            assert_eq!(
                inspect(Wire::Chat, &ev(None, reasoning), &mut u),
                EventKind::Content,
                "{reasoning}"
            );
        }
        let empty_reasoning = r#"{"choices":[{"index":0,"delta":{"reasoning_content":""}}]}"#;
        assert_eq!(
            inspect(Wire::Chat, &ev(None, empty_reasoning), &mut u),
            EventKind::Lifecycle
        );
        let tool = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]}"#;
        assert_eq!(
            inspect(Wire::Chat, &ev(None, tool), &mut u),
            EventKind::Content
        );
        let usage =
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#;
        assert_eq!(
            inspect(Wire::Chat, &ev(None, usage), &mut u),
            EventKind::Lifecycle
        );
        assert_eq!((u.input, u.output), (7, 3));
        let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#;
        inspect(Wire::Chat, &ev(None, finish), &mut u);
        assert_eq!(u.finish, Some("tool_calls"));
        assert_eq!(
            inspect(
                Wire::Chat,
                &ev(None, r#"{"error":{"message":"x"}}"#),
                &mut u
            ),
            EventKind::Error
        );
        assert_eq!(
            inspect(Wire::Chat, &ev(None, "[DONE]"), &mut u),
            EventKind::End
        );
    }

    #[test]
    fn anthropic_commit_point_and_usage() {
        let mut u = Usage::default();
        let start =
            r#"{"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1}}}"#;
        assert_eq!(
            inspect(Wire::Messages, &ev(Some("message_start"), start), &mut u),
            EventKind::Lifecycle
        );
        assert_eq!(
            inspect(Wire::Messages, &ev(Some("ping"), "{}"), &mut u),
            EventKind::Lifecycle
        );
        assert_eq!(
            inspect(
                Wire::Messages,
                &ev(Some("content_block_delta"), "{}"),
                &mut u
            ),
            EventKind::Content
        );
        let delta = r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":30}}"#;
        inspect(Wire::Messages, &ev(Some("message_delta"), delta), &mut u);
        assert_eq!((u.input, u.output, u.finish), (12, 30, Some("end_turn")));
        assert_eq!(
            inspect(Wire::Messages, &ev(Some("error"), "{}"), &mut u),
            EventKind::Error
        );
        assert_eq!(
            inspect(Wire::Messages, &ev(Some("message_stop"), "{}"), &mut u),
            EventKind::End
        );
    }
}
