//! Chat Completions replies as Responses objects, and the shapes both the whole reply and
//! the translated stream build on: ids that look like OpenAI's (`resp_`, `msg_`, `fc_`,
//! `rs_`, never a Chat id in a Responses field) and a response object with every field
//! the Open Responses specification requires.
//!
//! Request parameters are not echoed back (the response shows the defaults): the SDKs
//! read the output, status and usage, and the translation stays a function of the reply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::response::{model_or, reasoning_text, str_at};

/// A fresh id with an OpenAI-like prefix: the time and a process-wide counter, so ids
/// never repeat within a process and rarely across a fleet.
pub(super) fn new_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("{prefix}_{nanos:016x}{n:08x}")
}

/// Unix seconds now.
pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What stays the same from `response.created` to the end of one response.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub(super) id: String,
    pub(super) created_at: u64,
    pub(super) model: String,
}

impl Head {
    pub(super) fn new(model: &str) -> Self {
        Self {
            id: new_id("resp"),
            created_at: now_secs(),
            model: model.to_owned(),
        }
    }

    /// The response object in a given state.
    pub(super) fn resource(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Value,
        error: Value,
    ) -> Value {
        let incomplete = match status {
            "incomplete" => error.clone(),
            _ => Value::Null,
        };
        let error = if status == "failed" {
            error
        } else {
            Value::Null
        };
        let finished = matches!(status, "completed" | "incomplete");
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": if finished { json!(now_secs()) } else { Value::Null },
            "status": status,
            "incomplete_details": incomplete,
            "model": self.model,
            "previous_response_id": null,
            "instructions": null,
            "output": output,
            "error": error,
            "tools": [],
            "tool_choice": "auto",
            "truncation": "disabled",
            "parallel_tool_calls": true,
            "text": {"format": {"type": "text"}},
            "top_p": 1.0,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
            "top_logprobs": 0,
            "temperature": 1.0,
            "reasoning": null,
            "usage": usage,
            "max_output_tokens": null,
            "max_tool_calls": null,
            "store": false,
            "background": false,
            "service_tier": "default",
            "metadata": {},
            "safety_identifier": null,
            "prompt_cache_key": null,
        })
    }
}

/// Chat `usage` as Responses `usage` (`null` when the reply had none).
pub(super) fn usage(chat: &Value) -> Value {
    if !chat.is_object() {
        return Value::Null;
    }
    let input = chat["prompt_tokens"].as_u64().unwrap_or(0);
    let output = chat["completion_tokens"].as_u64().unwrap_or(0);
    json!({
        "input_tokens": input,
        "output_tokens": output,
        "total_tokens": chat["total_tokens"].as_u64().unwrap_or(input + output),
        "input_tokens_details": {"cached_tokens": chat.pointer("/prompt_tokens_details/cached_tokens").and_then(Value::as_u64).unwrap_or(0)},
        "output_tokens_details": {"reasoning_tokens": chat.pointer("/completion_tokens_details/reasoning_tokens").and_then(Value::as_u64).unwrap_or(0)},
    })
}

/// The status a Chat `finish_reason` ends a response with, and why when incomplete.
pub(super) fn status(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// A finished message item.
pub(super) fn message_item(id: &str, part: Value, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": [part]})
}

/// A text or refusal content part.
pub(super) fn part(refusal: bool, text: &str) -> Value {
    if refusal {
        json!({"type": "refusal", "refusal": text})
    } else {
        json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    }
}

/// A reasoning item: what a Chat model reasoned, as reasoning text (not a summary).
pub(super) fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [], "content": [{"type": "reasoning_text", "text": text}]})
}

/// A function-call item.
pub(super) fn call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": status})
}

/// A whole Chat completion as a Responses object.
pub fn chat_to_responses_response(chat: &Value, requested_model: &str) -> Value {
    let head = Head::new(model_or(chat, requested_model));
    let choice = &chat["choices"][0];
    let message = &choice["message"];
    let mut output = Vec::new();
    if let Some(text) = reasoning_text(message).filter(|t| !t.is_empty()) {
        output.push(reasoning_item(&new_id("rs"), text));
    }
    for (key, refusal) in [("content", false), ("refusal", true)] {
        if let Some(text) = message[key].as_str().filter(|t| !t.is_empty()) {
            output.push(message_item(
                &new_id("msg"),
                part(refusal, text),
                "completed",
            ));
        }
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let function = &call["function"];
        output.push(call_item(
            &new_id("fc"),
            str_at(call, "id"),
            str_at(function, "name"),
            str_at(function, "arguments"),
            "completed",
        ));
    }
    let (status, details) = status(choice["finish_reason"].as_str());
    head.resource(status, output, usage(&chat["usage"]), details)
}
