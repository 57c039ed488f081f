//! OpenAI `chat.completion.chunk` stream → Anthropic Messages SSE stream.
//!
//! Invariant: the output is the full Anthropic event sequence (`message_start`, blocks
//! opened, delta'd and stopped one at a time, `message_delta`, `message_stop`), content is
//! emitted as it arrives, and a stream that ends without a finish reason or carries an
//! error ends with an Anthropic `error` event instead of `message_stop`.

use bytes::Bytes;
use serde_json::{json, Value};

use super::error::anthropic_error_body;
use super::response::{anthropic_usage, model_or, reasoning_text, str_at};
use super::{stop_reason_from_openai, StreamTranslator};
use crate::sse::{format_event, Event};

/// The content block currently open in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    /// Reasoning, as an Anthropic `thinking` block.
    Thinking,
    /// A tool call, by its OpenAI `tool_calls[].index`.
    Tool(u64),
}

/// Translates an OpenAI stream for an app that speaks Anthropic.
#[derive(Debug)]
pub struct OpenaiToAnthropicStream {
    requested_model: String,
    started: bool,
    open: Option<Open>,
    /// Index the next output content block gets.
    next_block: u64,
    /// OpenAI tool call indexes already closed: Anthropic blocks cannot be reopened.
    closed_tools: Vec<u64>,
    stop_reason: Option<&'static str>,
    usage: Option<Value>,
    done: bool,
}

impl OpenaiToAnthropicStream {
    /// A translator for one response.
    pub fn new(requested_model: &str) -> Self {
        Self {
            requested_model: requested_model.to_owned(),
            started: false,
            open: None,
            next_block: 0,
            closed_tools: Vec::new(),
            stop_reason: None,
            usage: None,
            done: false,
        }
    }

    fn error(&mut self, kind: &str, message: &str) -> Vec<Bytes> {
        self.done = true;
        vec![emit("error", &anthropic_error_body(kind, message))]
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "id": str_at(chunk, "id"),
            "type": "message",
            "role": "assistant",
            "model": model_or(chunk, &self.requested_model),
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": { "input_tokens": 0, "output_tokens": 0 },
        });
        out.push(emit(
            "message_start",
            &json!({ "type": "message_start", "message": message }),
        ));
    }

    fn close_block(&mut self, out: &mut Vec<Bytes>) {
        if let Some(open) = self.open.take() {
            if let Open::Tool(i) = open {
                self.closed_tools.push(i);
            }
            let index = self.next_block;
            self.next_block += 1;
            out.push(emit(
                "content_block_stop",
                &json!({ "type": "content_block_stop", "index": index }),
            ));
        }
    }

    fn open_block(&mut self, open: Open, block: Value, out: &mut Vec<Bytes>) {
        self.close_block(out);
        self.open = Some(open);
        out.push(emit(
            "content_block_start",
            &json!({ "type": "content_block_start", "index": self.next_block, "content_block": block }),
        ));
    }

    fn delta(&self, delta: Value) -> Bytes {
        emit(
            "content_block_delta",
            &json!({ "type": "content_block_delta", "index": self.next_block, "delta": delta }),
        )
    }

    fn thinking(&mut self, thinking: &str, out: &mut Vec<Bytes>) {
        if self.open != Some(Open::Thinking) {
            let block = json!({ "type": "thinking", "thinking": "", "signature": "" });
            self.open_block(Open::Thinking, block, out);
        }
        out.push(self.delta(json!({ "type": "thinking_delta", "thinking": thinking })));
    }

    fn text(&mut self, text: &str, out: &mut Vec<Bytes>) {
        if text.is_empty() {
            return;
        }
        if self.open != Some(Open::Text) {
            self.open_block(Open::Text, json!({ "type": "text", "text": "" }), out);
        }
        out.push(self.delta(json!({ "type": "text_delta", "text": text })));
    }

    /// One `tool_calls[]` fragment; `false` when it cannot be expressed (a fragment for a
    /// call whose block was already closed).
    fn tool_fragment(&mut self, call: &Value, out: &mut Vec<Bytes>) -> bool {
        let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        if self.open != Some(Open::Tool(index)) {
            if self.closed_tools.contains(&index) {
                return false;
            }
            let block = json!({
                "type": "tool_use",
                "id": str_at(call, "id"),
                "name": call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default(),
                "input": {},
            });
            self.open_block(Open::Tool(index), block, out);
        }
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !args.is_empty() {
            out.push(self.delta(json!({ "type": "input_json_delta", "partial_json": args })));
        }
        true
    }

    fn chunk(&mut self, chunk: &Value) -> Vec<Bytes> {
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = match str_at(err, "message") {
                "" => "upstream stream error",
                m => m,
            };
            let message = message.to_owned();
            return self.error("api_error", &message);
        }
        let mut out = Vec::new();
        self.start(chunk, &mut out);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(anthropic_usage(usage));
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return out;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(thinking) = reasoning_text(delta) {
            self.thinking(thinking, &mut out);
        }
        for key in ["content", "refusal"] {
            if let Some(text) = delta.get(key).and_then(Value::as_str) {
                self.text(text, &mut out);
            }
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !self.tool_fragment(call, &mut out) {
                out.extend(self.error(
                    "api_error",
                    "interleaved tool call fragments cannot be translated",
                ));
                return out;
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.stop_reason = Some(stop_reason_from_openai(reason));
            self.close_block(&mut out);
        }
        out
    }

    /// Closes the message after a finish reason: `message_delta` with usage, `message_stop`.
    fn end(&mut self) -> Vec<Bytes> {
        let Some(stop_reason) = self.stop_reason else {
            return self.error("api_error", "upstream stream ended without a finish reason");
        };
        self.done = true;
        let mut out = Vec::new();
        self.close_block(&mut out);
        let usage = self
            .usage
            .take()
            .unwrap_or_else(|| json!({ "output_tokens": 0 }));
        out.push(emit(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": { "stop_reason": stop_reason, "stop_sequence": null },
                "usage": usage,
            }),
        ));
        out.push(emit("message_stop", &json!({ "type": "message_stop" })));
        out
    }
}

impl StreamTranslator for OpenaiToAnthropicStream {
    fn event(&mut self, ev: &Event) -> Vec<Bytes> {
        if self.done || ev.data.is_empty() {
            return Vec::new();
        }
        if ev.data.trim() == "[DONE]" {
            return self.end();
        }
        match serde_json::from_str::<Value>(&ev.data) {
            Ok(chunk) => self.chunk(&chunk),
            Err(_) => self.error("api_error", "upstream sent an event that is not JSON"),
        }
    }

    fn finish(&mut self) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        // Some OpenAI-compatible servers end after the finish reason without `[DONE]`.
        self.end()
    }
}

fn emit(event: &str, data: &Value) -> Bytes {
    format_event(Some(event), &data.to_string())
}
