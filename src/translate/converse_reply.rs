//! Bedrock Converse response → Anthropic message (whence the Chat and Responses shapes
//! follow through the existing converters), and Bedrock errors → Anthropic errors.
//!
//! Converse names no model and no id: the message carries the model the app asked for
//! and an id of its own (`msg_bdrk_…`), as the SDKs require one.

use serde_json::{json, Value};

/// Converse `stopReason` → Anthropic `stop_reason`: the names are shared but for the
/// guardrail and content-filter stops, which are refusals.
pub(crate) fn stop_reason(converse: &str) -> &str {
    match converse {
        "guardrail_intervened" | "content_filtered" => "refusal",
        other => other,
    }
}

/// A message id for a provider that gives none.
pub(crate) fn message_id() -> String {
    format!("msg_bdrk_{:016x}", fastrand::u64(..))
}

/// Translates a Converse response body into an Anthropic message.
pub fn converse_to_anthropic_response(reply: &Value, requested_model: &str) -> Value {
    let blocks = reply
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let content: Vec<Value> = blocks.iter().filter_map(anthropic_block).collect();
    let usage = reply.get("usage").unwrap_or(&Value::Null);
    let tokens = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    json!({
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": stop_reason(reply.get("stopReason").and_then(Value::as_str).unwrap_or("end_turn")),
        "stop_sequence": null,
        "usage": {
            "input_tokens": tokens("inputTokens"),
            "output_tokens": tokens("outputTokens"),
            "cache_read_input_tokens": tokens("cacheReadInputTokens"),
            "cache_creation_input_tokens": tokens("cacheWriteInputTokens"),
        },
    })
}

fn anthropic_block(block: &Value) -> Option<Value> {
    if let Some(text) = block.get("text").and_then(Value::as_str) {
        return Some(json!({"type": "text", "text": text}));
    }
    if let Some(tool) = block.get("toolUse") {
        return Some(json!({
            "type": "tool_use",
            "id": tool.get("toolUseId").cloned().unwrap_or(Value::Null),
            "name": tool.get("name").cloned().unwrap_or(Value::Null),
            "input": tool.get("input").cloned().unwrap_or_else(|| json!({})),
        }));
    }
    let reasoning = block.get("reasoningContent")?;
    if let Some(text) = reasoning.get("reasoningText") {
        return Some(json!({
            "type": "thinking",
            "thinking": text.get("text").cloned().unwrap_or_else(|| json!("")),
            "signature": text.get("signature").cloned().unwrap_or_else(|| json!("")),
        }));
    }
    reasoning
        .get("redactedContent")
        .map(|data| json!({"type": "redacted_thinking", "data": data}))
}

/// A Bedrock error (status, `x-amzn-ErrorType` name, `{"message"}` body) as an
/// Anthropic error body, the provider's status and message kept.
pub fn converse_error_to_anthropic(status: u16, name: Option<&str>, body: &[u8]) -> (u16, Value) {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("Bedrock returned status {status}"));
    let kind = match (name.unwrap_or_default(), status) {
        ("AccessDeniedException", _) | (_, 403) => "permission_error",
        ("ResourceNotFoundException", _) | (_, 404) => "not_found_error",
        ("ThrottlingException" | "ServiceQuotaExceededException", _) | (_, 429) => {
            "rate_limit_error"
        }
        ("ServiceUnavailableException", _) | (_, 503) => "overloaded_error",
        (_, 401) => "authentication_error",
        (_, 400..=499) => "invalid_request_error",
        _ => "api_error",
    };
    let message = match name {
        Some(name) => format!("{name}: {message}"),
        None => message,
    };
    (
        status,
        json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}
