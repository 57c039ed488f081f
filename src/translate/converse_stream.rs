//! Bedrock ConverseStream events (decoded from the AWS event-stream framing) → Anthropic
//! Messages SSE events; Chat and Responses apps get them through the existing
//! Anthropic → Chat (→ Responses) translators chained after this one.
//!
//! Invariant: each event is translated as it arrives. Converse opens text and reasoning
//! blocks implicitly (no `contentBlockStart`), so the first delta of such a block opens
//! it; `messageStop`'s stop reason waits for `metadata` (always last, with the usage)
//! to become one `message_delta` and the `message_stop`. An exception frame becomes an
//! Anthropic `error` event; a stream that ends before `metadata` ends with one too.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::{json, Value};

use super::converse_reply::{message_id, stop_reason};
use super::StreamTranslator;
use crate::eventstream::FRAME_ERROR;
use crate::sse::{format_event, Event};

/// Translates one ConverseStream for an app (or a next translator) that reads Messages.
#[derive(Debug)]
pub struct ConverseToAnthropicStream {
    model: String,
    /// Open blocks by Converse `contentBlockIndex`, with their Anthropic type.
    open: HashMap<u64, &'static str>,
    stop_reason: Option<String>,
    done: bool,
}

impl ConverseToAnthropicStream {
    /// A translator for one response, naming `requested_model` (Converse names none).
    pub fn new(requested_model: &str) -> Self {
        Self {
            model: requested_model.to_owned(),
            open: HashMap::new(),
            stop_reason: None,
            done: false,
        }
    }

    fn open_block(&mut self, index: u64, block: Value, out: &mut Vec<Bytes>) {
        let kind = match block.get("type").and_then(Value::as_str) {
            Some("tool_use") => "tool_use",
            Some("thinking") => "thinking",
            _ => "text",
        };
        self.open.insert(index, kind);
        out.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
    }

    fn delta(&mut self, data: &Value) -> Vec<Bytes> {
        let index = data
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let delta = data.get("delta").unwrap_or(&Value::Null);
        let mut out = Vec::new();
        let (opening, anthropic_delta) = if let Some(text) = delta.get("text") {
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": text}),
            )
        } else if let Some(input) = delta.pointer("/toolUse/input") {
            (
                json!({"type": "tool_use", "id": "", "name": "", "input": {}}),
                json!({"type": "input_json_delta", "partial_json": input}),
            )
        } else if let Some(reasoning) = delta.get("reasoningContent") {
            let opening = json!({"type": "thinking", "thinking": "", "signature": ""});
            if let Some(text) = reasoning.get("text") {
                (opening, json!({"type": "thinking_delta", "thinking": text}))
            } else if let Some(signature) = reasoning.get("signature") {
                (
                    opening,
                    json!({"type": "signature_delta", "signature": signature}),
                )
            } else {
                return out;
            }
        } else {
            return out;
        };
        if !self.open.contains_key(&index) {
            self.open_block(index, opening, &mut out);
        }
        out.push(event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": anthropic_delta}),
        ));
        out
    }

    fn end(&mut self, data: &Value) -> Vec<Bytes> {
        self.done = true;
        let usage = data.get("usage").unwrap_or(&Value::Null);
        let tokens = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
        let reason = stop_reason(self.stop_reason.as_deref().unwrap_or("end_turn")).to_owned();
        vec![
            event(
                "message_delta",
                &json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": null},
                    "usage": {"input_tokens": tokens("inputTokens"), "output_tokens": tokens("outputTokens")},
                }),
            ),
            event("message_stop", &json!({"type": "message_stop"})),
        ]
    }

    fn error(&mut self, kind: &str, message: &str) -> Vec<Bytes> {
        self.done = true;
        vec![event(
            "error",
            &json!({"type": "error", "error": {"type": kind, "message": message}}),
        )]
    }
}

fn event(name: &str, data: &Value) -> Bytes {
    format_event(Some(name), &data.to_string())
}

impl StreamTranslator for ConverseToAnthropicStream {
    fn event(&mut self, ev: &Event) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        let name = ev.event.as_deref().unwrap_or_default();
        let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
        match name {
            "messageStart" => vec![event(
                "message_start",
                &json!({"type": "message_start", "message": {
                    "id": message_id(), "type": "message", "role": "assistant",
                    "model": self.model, "content": [], "stop_reason": null,
                    "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0},
                }}),
            )],
            "contentBlockStart" => {
                let index = data
                    .get("contentBlockIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let mut out = Vec::new();
                if let Some(tool) = data.pointer("/start/toolUse") {
                    let block = json!({
                        "type": "tool_use",
                        "id": tool.get("toolUseId").cloned().unwrap_or(Value::Null),
                        "name": tool.get("name").cloned().unwrap_or(Value::Null),
                        "input": {},
                    });
                    self.open_block(index, block, &mut out);
                }
                out
            }
            "contentBlockDelta" => self.delta(&data),
            "contentBlockStop" => {
                let index = data
                    .get("contentBlockIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                match self.open.remove(&index) {
                    Some(_) => vec![event(
                        "content_block_stop",
                        &json!({"type": "content_block_stop", "index": index}),
                    )],
                    None => Vec::new(),
                }
            }
            "messageStop" => {
                self.stop_reason = data
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Vec::new()
            }
            "metadata" => self.end(&data),
            exception if exception.ends_with("Exception") || exception == FRAME_ERROR => {
                let message = data
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("Bedrock stream failed");
                let kind = match exception {
                    "throttlingException" => "rate_limit_error",
                    "validationException" => "invalid_request_error",
                    _ => "overloaded_error",
                };
                self.error(kind, &format!("{exception}: {message}"))
            }
            // Event types this does not know carry nothing the app could read.
            _ => Vec::new(),
        }
    }

    fn finish(&mut self) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        self.error(
            "api_error",
            "the Bedrock stream ended before its metadata event",
        )
    }
}
