//! What each streamed event means for failover: lifecycle (held before the commit point),
//! content (the commit point), the clean end, or an in-band error; plus the token usage
//! events carry. One small typed peek per event, borrowing from the event's text.

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::policy::spec::ApiKind;
use crate::sse::Event;

/// The role of one event in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Before any content: role-only chunks, `message_start`, `ping`... Held back.
    Lifecycle,
    /// Text or a tool call: the commit point.
    Content,
    /// The provider's clean end (`[DONE]`, `message_stop`).
    End,
    /// An in-band error: the stream failed.
    Error,
}

/// Tokens reported so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
}

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
struct AnthropicEvent {
    message: Option<AnthropicMessage>,
    usage: Option<AnthropicUsage>,
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

/// Classifies one event of a stream in `dialect`, adding any usage it reports.
pub fn inspect(dialect: ApiKind, event: &Event, usage: &mut Usage) -> EventKind {
    if event.is_comment() {
        return EventKind::Lifecycle;
    }
    match dialect.dialect() {
        ApiKind::Anthropic => inspect_anthropic(event, usage),
        _ => inspect_openai(event, usage),
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
    let has_content = chunk.choices.iter().any(|c| {
        c.finish_reason.is_some()
            || c.delta.as_ref().is_some_and(|d| {
                d.content.as_deref().is_some_and(|t| !t.is_empty())
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
            if let Ok(parsed) = serde_json::from_str::<AnthropicEvent>(&event.data) {
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
struct WithOpenaiUsage {
    usage: Option<OpenaiUsage>,
}

#[derive(Deserialize)]
struct WithAnthropicUsage {
    usage: Option<AnthropicUsage>,
}

/// Usage reported by a complete (non-streamed) response body.
pub fn body_usage(dialect: ApiKind, body: &[u8]) -> Usage {
    let mut usage = Usage::default();
    match dialect.dialect() {
        ApiKind::Anthropic => {
            if let Ok(WithAnthropicUsage { usage: Some(u) }) = serde_json::from_slice(body) {
                add_anthropic(&u, &mut usage);
            }
        }
        _ => {
            if let Ok(WithOpenaiUsage { usage: Some(u) }) = serde_json::from_slice(body) {
                usage = Usage {
                    input: u.prompt_tokens,
                    output: u.completion_tokens,
                };
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
            inspect(ApiKind::Openai, &ev(None, role), &mut u),
            EventKind::Lifecycle
        );
        let text = r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        assert_eq!(
            inspect(ApiKind::Openai, &ev(None, text), &mut u),
            EventKind::Content
        );
        let tool = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0}]}}]}"#;
        assert_eq!(
            inspect(ApiKind::Openai, &ev(None, tool), &mut u),
            EventKind::Content
        );
        let usage =
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#;
        assert_eq!(
            inspect(ApiKind::Openai, &ev(None, usage), &mut u),
            EventKind::Lifecycle
        );
        assert_eq!(
            u,
            Usage {
                input: 7,
                output: 3
            }
        );
        assert_eq!(
            inspect(
                ApiKind::Openai,
                &ev(None, r#"{"error":{"message":"x"}}"#),
                &mut u
            ),
            EventKind::Error
        );
        assert_eq!(
            inspect(ApiKind::Openai, &ev(None, "[DONE]"), &mut u),
            EventKind::End
        );
    }

    #[test]
    fn anthropic_commit_point_and_usage() {
        let mut u = Usage::default();
        let start =
            r#"{"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1}}}"#;
        assert_eq!(
            inspect(
                ApiKind::Anthropic,
                &ev(Some("message_start"), start),
                &mut u
            ),
            EventKind::Lifecycle
        );
        assert_eq!(
            inspect(ApiKind::Anthropic, &ev(Some("ping"), "{}"), &mut u),
            EventKind::Lifecycle
        );
        assert_eq!(
            inspect(
                ApiKind::Anthropic,
                &ev(Some("content_block_delta"), "{}"),
                &mut u
            ),
            EventKind::Content
        );
        let delta = r#"{"type":"message_delta","usage":{"output_tokens":30}}"#;
        inspect(
            ApiKind::Anthropic,
            &ev(Some("message_delta"), delta),
            &mut u,
        );
        assert_eq!(
            u,
            Usage {
                input: 12,
                output: 30
            }
        );
        assert_eq!(
            inspect(ApiKind::Anthropic, &ev(Some("error"), "{}"), &mut u),
            EventKind::Error
        );
        assert_eq!(
            inspect(ApiKind::Anthropic, &ev(Some("message_stop"), "{}"), &mut u),
            EventKind::End
        );
    }
}
