//! Anthropic Messages SSE stream → OpenAI `chat.completion.chunk` stream.
//!
//! Invariant: each upstream event is translated as it arrives (content is never held);
//! the output ends with `data: [DONE]` only after Anthropic's `message_stop`, and
//! otherwise with an OpenAI-shaped error, so a cut stream never looks complete.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Value};

use super::response::{model_or, openai_tool_call, openai_usage, str_at};
use super::{finish_reason_from_anthropic, unix_now, StreamTranslator};
use crate::sse::{format_event, Event};

/// Translates an Anthropic stream for an app that speaks OpenAI.
#[derive(Debug)]
pub struct AnthropicToOpenaiStream {
    requested_model: String,
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    /// Anthropic usage so far: input counts from `message_start`, output from `message_delta`.
    usage: Value,
    /// Anthropic content block index → OpenAI tool call index.
    tool_index: HashMap<u64, usize>,
    done: bool,
}

impl AnthropicToOpenaiStream {
    /// A translator for one response; `include_usage` is the app's
    /// `stream_options.include_usage`, which asks for a final usage chunk.
    pub fn new(requested_model: &str, include_usage: bool) -> Self {
        Self {
            requested_model: requested_model.to_owned(),
            include_usage,
            id: String::new(),
            model: requested_model.to_owned(),
            created: unix_now(),
            usage: json!({}),
            tool_index: HashMap::new(),
            done: false,
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        let body = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": null }],
        });
        format_event(None, &body.to_string())
    }

    fn error(&mut self, kind: &str, message: &str) -> Vec<Bytes> {
        self.done = true;
        let body = json!({ "error": { "message": message, "type": "server_error", "param": null, "code": kind } });
        vec![format_event(None, &body.to_string())]
    }

    fn message_start(&mut self, data: &Value) -> Vec<Bytes> {
        let message = data.get("message").unwrap_or(&Value::Null);
        self.id = str_at(message, "id").to_owned();
        self.model = model_or(message, &self.requested_model).to_owned();
        if let Some(usage) = message.get("usage") {
            merge(&mut self.usage, usage);
        }
        vec![self.chunk(json!({ "role": "assistant", "content": "" }), None)]
    }

    fn block_start(&mut self, data: &Value) -> Vec<Bytes> {
        let block = data.get("content_block").unwrap_or(&Value::Null);
        match block.get("type").and_then(Value::as_str) {
            Some("tool_use") => {
                let index = self.tool_index.len();
                self.tool_index.insert(
                    data.get("index").and_then(Value::as_u64).unwrap_or(0),
                    index,
                );
                let mut call = openai_tool_call(str_at(block, "id"), str_at(block, "name"), "");
                call["index"] = json!(index);
                vec![self.chunk(json!({ "tool_calls": [call] }), None)]
            }
            Some("text") => match str_at(block, "text") {
                "" => Vec::new(),
                text => vec![self.chunk(json!({ "content": text }), None)],
            },
            _ => Vec::new(),
        }
    }

    fn block_delta(&mut self, data: &Value) -> Vec<Bytes> {
        let delta = data.get("delta").unwrap_or(&Value::Null);
        match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => {
                vec![self.chunk(json!({ "content": str_at(delta, "text") }), None)]
            }
            Some("input_json_delta") => {
                let fragment = str_at(delta, "partial_json");
                let block = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                match self.tool_index.get(&block) {
                    Some(&index) if !fragment.is_empty() => vec![self.chunk(
                        json!({ "tool_calls": [{ "index": index, "function": { "arguments": fragment } }] }),
                        None,
                    )],
                    Some(_) => Vec::new(),
                    None => self.error("invalid_stream", "tool arguments for a block that is not a tool call"),
                }
            }
            Some("thinking_delta") => match str_at(delta, "thinking") {
                "" => Vec::new(),
                thinking => vec![self.chunk(json!({ "reasoning_content": thinking }), None)],
            },
            // Signatures and citations have no place in a chat completion chunk.
            _ => Vec::new(),
        }
    }

    fn message_delta(&mut self, data: &Value) -> Vec<Bytes> {
        if let Some(usage) = data.get("usage") {
            merge(&mut self.usage, usage);
        }
        match data.pointer("/delta/stop_reason").and_then(Value::as_str) {
            Some(reason) => {
                vec![self.chunk(json!({}), Some(finish_reason_from_anthropic(reason)))]
            }
            None => Vec::new(),
        }
    }

    fn message_stop(&mut self) -> Vec<Bytes> {
        self.done = true;
        let mut out = Vec::new();
        if self.include_usage {
            let body = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": openai_usage(&self.usage),
            });
            out.push(format_event(None, &body.to_string()));
        }
        out.push(format_event(None, "[DONE]"));
        out
    }
}

impl StreamTranslator for AnthropicToOpenaiStream {
    fn event(&mut self, ev: &Event) -> Vec<Bytes> {
        if self.done || ev.data.is_empty() {
            return Vec::new();
        }
        let Ok(data) = serde_json::from_str::<Value>(&ev.data) else {
            return self.error("invalid_stream", "upstream sent an event that is not JSON");
        };
        let kind = ev
            .event
            .as_deref()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| str_at(&data, "type"));
        match kind {
            "message_start" => self.message_start(&data),
            "content_block_start" => self.block_start(&data),
            "content_block_delta" => self.block_delta(&data),
            "message_delta" => self.message_delta(&data),
            "message_stop" => self.message_stop(),
            "error" => {
                let err = data.get("error").unwrap_or(&Value::Null);
                let message = match str_at(err, "message") {
                    "" => "upstream stream error",
                    m => m,
                };
                let kind = match str_at(err, "type") {
                    "" => "api_error",
                    k => k,
                };
                let (kind, message) = (kind.to_owned(), message.to_owned());
                self.error(&kind, &message)
            }
            // `ping`, `content_block_stop` and event types added later carry nothing here.
            _ => Vec::new(),
        }
    }

    fn finish(&mut self) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        self.error(
            "incomplete_stream",
            "upstream stream ended before message_stop",
        )
    }
}

/// Copies the numeric fields of `from` into `into` (later usage reports supersede).
fn merge(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in from {
            if v.is_number() {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}
