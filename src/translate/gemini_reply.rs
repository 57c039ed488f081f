//! Gemini generateContent answers → the hub (Chat Completions): whole replies here,
//! streams in `gemini_stream.rs`, errors in the app's error format.
//!
//! Invariants: Gemini answers `STOP` even when it calls a function, so `tool_calls` is
//! decided by the content; function calls get the sidecar's stable ids (and their thought
//! signatures are remembered for the target that issued them); thoughts are reasoning
//! (`reasoning_content`), never answer text; a blocked prompt or a safety stop is the
//! `content_filter` finish; usage keeps thought and cached tokens
//! (`completion_tokens_details.reasoning_tokens`, `prompt_tokens_details.cached_tokens`).

use serde_json::{json, Value};

use super::error::{anthropic_error_body, anthropic_error_type};
use super::gemini_signatures;
use super::response::{openai_tool_call, str_at};
use super::unix_now;

/// One function call of a Gemini reply, in the hub's terms.
pub(super) struct Call {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) arguments: String,
}

/// The pieces of one Gemini candidate's parts, in order of kind.
#[derive(Default)]
pub(super) struct Parts {
    pub(super) text: String,
    pub(super) reasoning: String,
    pub(super) calls: Vec<Call>,
}

/// Reads a chunk's (or a reply's) first candidate's parts; `first_call` is how many
/// calls this response had before (streams number calls across chunks).
pub(super) fn read_parts(reply: &Value, target: u64, first_call: usize) -> Parts {
    let response_id = str_at(reply, "responseId");
    let mut out = Parts::default();
    for part in reply
        .pointer("/candidates/0/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(call) = part.get("functionCall") {
            let name = str_at(call, "name").to_owned();
            let id = gemini_signatures::call_id(response_id, first_call + out.calls.len(), &name);
            if let Some(signature) = part.get("thoughtSignature").and_then(Value::as_str) {
                gemini_signatures::remember(&id, target, signature);
            }
            let arguments = call.get("args").unwrap_or(&json!({})).to_string();
            out.calls.push(Call {
                id,
                name,
                arguments,
            });
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                out.reasoning.push_str(text);
            } else {
                out.text.push_str(text);
            }
        }
    }
    out
}

/// The Chat `finish_reason` of a Gemini reply or final chunk, if it has finished.
pub(super) fn finish_reason(reply: &Value, called: bool) -> Option<&'static str> {
    if let Some(reason) = reply
        .pointer("/candidates/0/finishReason")
        .and_then(Value::as_str)
    {
        return Some(match reason {
            "STOP" if called => "tool_calls",
            "STOP" => "stop",
            "MAX_TOKENS" => "length",
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
            | "IMAGE_SAFETY" | "LANGUAGE" => "content_filter",
            // MALFORMED_FUNCTION_CALL, OTHER...: the model stopped without a usable turn.
            _ => "stop",
        });
    }
    let blocked = reply.pointer("/promptFeedback/blockReason").is_some();
    let no_candidates = reply
        .get("candidates")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    (blocked && no_candidates).then_some("content_filter")
}

/// Gemini `usageMetadata` as OpenAI `usage`.
pub(super) fn chat_usage(metadata: &Value) -> Value {
    let n = |k: &str| metadata.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("promptTokenCount");
    let thoughts = n("thoughtsTokenCount");
    let completion = n("candidatesTokenCount") + thoughts;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": { "cached_tokens": n("cachedContentTokenCount") },
        "completion_tokens_details": { "reasoning_tokens": thoughts },
    })
}

/// The model a Gemini reply names (`modelVersion`), else the requested one.
pub(super) fn model_of<'a>(reply: &'a Value, requested_model: &'a str) -> &'a str {
    reply
        .get("modelVersion")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or(requested_model)
}

/// A Chat completion id for a Gemini response.
pub(super) fn completion_id(reply: &Value) -> String {
    format!("chatcmpl-{}", str_at(reply, "responseId"))
}

/// Translates a generateContent body from `target` into a Chat completion.
pub fn gemini_to_chat_response(reply: &Value, requested_model: &str, target: u64) -> Value {
    let parts = read_parts(reply, target, 0);
    let called = !parts.calls.is_empty();
    let mut message = json!({
        "role": "assistant",
        "content": if parts.text.is_empty() && called { Value::Null } else { json!(parts.text) },
        "refusal": null,
    });
    if called {
        let calls: Vec<Value> = parts
            .calls
            .iter()
            .map(|c| openai_tool_call(&c.id, &c.name, &c.arguments))
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    if !parts.reasoning.is_empty() {
        message["reasoning_content"] = json!(parts.reasoning);
    }
    let finish = finish_reason(reply, called).unwrap_or("stop");
    json!({
        "id": completion_id(reply),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model_of(reply, requested_model),
        "choices": [{ "index": 0, "message": message, "finish_reason": finish, "logprobs": null }],
        "usage": chat_usage(reply.get("usageMetadata").unwrap_or(&Value::Null)),
    })
}

/// The status and message of a Google error body (`{"error":{"code","message","status"}}`).
fn google_error(status: u16, body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let err = v.get("error").unwrap_or(&Value::Null);
            (
                str_at(err, "status").to_owned(),
                str_at(err, "message").to_owned(),
            )
        }
        Err(_) => (String::new(), format!("upstream returned status {status}")),
    }
}

/// A Gemini or Vertex error as an OpenAI error (the status kept, Google's status name as
/// the `code`).
pub fn gemini_error_to_openai(status: u16, body: &[u8]) -> (u16, Value) {
    let (name, message) = google_error(status, body);
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_exceeded",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    let code = if name.is_empty() {
        Value::Null
    } else {
        json!(name)
    };
    let message = if message.is_empty() {
        format!("upstream returned status {status}")
    } else {
        message
    };
    (
        status,
        json!({ "error": { "message": message, "type": kind, "param": null, "code": code } }),
    )
}

/// A Gemini or Vertex error as an Anthropic error (503 is Anthropic's 529 "overloaded").
pub fn gemini_error_to_anthropic(status: u16, body: &[u8]) -> (u16, Value) {
    let (_, message) = google_error(status, body);
    let status = if status == 503 { 529 } else { status };
    let message = if message.is_empty() {
        format!("upstream returned status {status}")
    } else {
        message
    };
    (
        status,
        anthropic_error_body(anthropic_error_type(status), &message),
    )
}
