//! Gemini `streamGenerateContent?alt=sse` → the hub's `chat.completion.chunk` stream (an
//! Anthropic or Responses app chains the hub's own translator after it).
//!
//! Invariants: each chunk is translated as it arrives (content is never held); Gemini
//! sends no terminal event, so the chunk with the finish reason (or the blocked prompt)
//! closes the output (finish chunk, the usage chunk when asked for, `[DONE]`); an error
//! chunk, or a stream that ends before a finish reason, ends with an OpenAI-shaped error,
//! so a cut stream never looks complete.

use bytes::Bytes;
use serde_json::{json, Value};

use super::gemini_reply::{chat_usage, completion_id, finish_reason, model_of, read_parts};
use super::response::str_at;
use super::{unix_now, StreamTranslator};
use crate::sse::{format_event, Event};

/// Translates a Gemini stream for an app that speaks Chat Completions.
#[derive(Debug)]
pub struct GeminiToChatStream {
    requested_model: String,
    include_usage: bool,
    target: u64,
    id: String,
    model: String,
    created: u64,
    started: bool,
    /// Function calls so far: the next call's Chat index.
    calls: usize,
    usage: Value,
    done: bool,
}

impl GeminiToChatStream {
    /// A translator for one response from `target` (its signature key); `include_usage`
    /// is the app's `stream_options.include_usage`.
    pub fn new(requested_model: &str, include_usage: bool, target: u64) -> Self {
        Self {
            requested_model: requested_model.to_owned(),
            include_usage,
            target,
            id: String::new(),
            model: requested_model.to_owned(),
            created: unix_now(),
            started: false,
            calls: 0,
            usage: Value::Null,
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

    fn error(&mut self, code: &str, message: &str) -> Vec<Bytes> {
        self.done = true;
        let body = json!({ "error": { "message": message, "type": "server_error", "param": null, "code": code } });
        vec![format_event(None, &body.to_string())]
    }

    fn translate(&mut self, data: &Value) -> Vec<Bytes> {
        if let Some(err) = data.get("error").filter(|e| !e.is_null()) {
            let message = match str_at(err, "message") {
                "" => "upstream stream error",
                m => m,
            };
            let code = match str_at(err, "status") {
                "" => "api_error",
                s => s,
            };
            let (code, message) = (code.to_owned(), message.to_owned());
            return self.error(&code, &message);
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            self.id = completion_id(data);
            self.model = model_of(data, &self.requested_model).to_owned();
            out.push(self.chunk(json!({ "role": "assistant", "content": "" }), None));
        }
        if let Some(metadata) = data.get("usageMetadata").filter(|u| u.is_object()) {
            self.usage = chat_usage(metadata);
        }
        let parts = read_parts(data, self.target, self.calls);
        if !parts.reasoning.is_empty() {
            out.push(self.chunk(json!({ "reasoning_content": parts.reasoning }), None));
        }
        if !parts.text.is_empty() {
            out.push(self.chunk(json!({ "content": parts.text }), None));
        }
        for call in &parts.calls {
            let delta = json!({ "tool_calls": [{
                "index": self.calls,
                "id": call.id,
                "type": "function",
                "function": { "name": call.name, "arguments": call.arguments },
            }]});
            self.calls += 1;
            out.push(self.chunk(delta, None));
        }
        if let Some(reason) = finish_reason(data, self.calls > 0) {
            out.push(self.chunk(json!({}), Some(reason)));
            if self.include_usage {
                let body = json!({
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": if self.usage.is_null() { chat_usage(&Value::Null) } else { self.usage.clone() },
                });
                out.push(format_event(None, &body.to_string()));
            }
            out.push(format_event(None, "[DONE]"));
            self.done = true;
        }
        out
    }
}

impl StreamTranslator for GeminiToChatStream {
    fn event(&mut self, ev: &Event) -> Vec<Bytes> {
        if self.done || ev.data.is_empty() {
            return Vec::new();
        }
        match serde_json::from_str::<Value>(&ev.data) {
            Ok(data) => self.translate(&data),
            Err(_) => self.error("invalid_stream", "upstream sent an event that is not JSON"),
        }
    }

    fn finish(&mut self) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        self.error(
            "incomplete_stream",
            "upstream stream ended before a finish reason",
        )
    }
}
