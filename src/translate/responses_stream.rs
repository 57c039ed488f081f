//! Chat Completions chunk stream → Responses event stream, event by event, in the order
//! the official SDKs require: `response.created` and `response.in_progress` first; each
//! output item (`response.output_item.added`) and content part opened before its deltas
//! and closed (`.done`) before `response.completed`; one `resp_` id throughout; the end
//! carrying the whole output and usage; `sequence_number`s increasing from 0.
//!
//! Invariant: content is never held (each chunk's deltas go out as they arrive), and the
//! stream ends with `response.completed` (or `response.incomplete`) only after the
//! upstream's `[DONE]`; otherwise with `response.failed`.

use bytes::Bytes;
use serde_json::{json, Value};

use super::response::{model_or, str_at};
use super::responses_reply::{
    call_item, message_item, new_id, part, reasoning_item, status, usage, Head,
};
use super::StreamTranslator;
use crate::sse::{format_event, Event};

/// The output item being streamed.
#[derive(Debug)]
enum Open {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        refusal: bool,
        text: String,
    },
    /// Function calls by Chat tool index: (Chat index, item id, call id, name, arguments).
    Calls(Vec<(u64, String, String, String, String)>),
}

/// Translates a Chat Completions stream for an app that speaks Responses.
#[derive(Debug)]
pub struct ChatToResponsesStream {
    requested_model: String,
    head: Option<Head>,
    sequence: u64,
    /// Finished output items.
    output: Vec<Value>,
    open: Option<Open>,
    finish_reason: Option<String>,
    usage: Value,
    done: bool,
}

impl ChatToResponsesStream {
    /// A translator for one response.
    pub fn new(requested_model: &str) -> Self {
        Self {
            requested_model: requested_model.to_owned(),
            head: None,
            sequence: 0,
            output: Vec::new(),
            open: None,
            finish_reason: None,
            usage: Value::Null,
            done: false,
        }
    }

    fn emit(&mut self, out: &mut Vec<Bytes>, mut data: Value) {
        let kind = str_at(&data, "type").to_owned();
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        out.push(format_event(Some(&kind), &data.to_string()));
    }

    fn head(&mut self, chunk: &Value, out: &mut Vec<Bytes>) -> Head {
        if let Some(head) = &self.head {
            return head.clone();
        }
        let head = Head::new(model_or(chunk, &self.requested_model));
        let empty = head.resource("in_progress", Vec::new(), Value::Null, Value::Null);
        self.head = Some(head.clone());
        self.emit(out, json!({"type": "response.created", "response": empty}));
        self.emit(
            out,
            json!({"type": "response.in_progress", "response": empty}),
        );
        head
    }

    fn index(&self) -> usize {
        self.output.len()
    }

    /// Closes the open item, emitting its `.done` events.
    fn close(&mut self, out: &mut Vec<Bytes>) {
        let index = self.index();
        match self.open.take() {
            None => {}
            Some(Open::Reasoning { id, text }) => {
                self.emit(out, json!({"type": "response.reasoning_text.done", "item_id": id, "output_index": index, "content_index": 0, "text": text}));
                let item = reasoning_item(&id, &text);
                self.emit(out, json!({"type": "response.output_item.done", "output_index": index, "item": item}));
                self.output.push(item);
            }
            Some(Open::Message { id, refusal, text }) => {
                let (kind, field) = if refusal {
                    ("response.refusal.done", "refusal")
                } else {
                    ("response.output_text.done", "text")
                };
                let mut done =
                    json!({"type": kind, "item_id": id, "output_index": index, "content_index": 0});
                done[field] = json!(text);
                if !refusal {
                    done["logprobs"] = json!([]);
                }
                self.emit(out, done);
                let part = part(refusal, &text);
                self.emit(out, json!({"type": "response.content_part.done", "item_id": id, "output_index": index, "content_index": 0, "part": part}));
                let item = message_item(&id, part, "completed");
                self.emit(out, json!({"type": "response.output_item.done", "output_index": index, "item": item}));
                self.output.push(item);
            }
            Some(Open::Calls(calls)) => {
                for (offset, (_, id, call_id, name, arguments)) in calls.into_iter().enumerate() {
                    let index = index + offset;
                    self.emit(out, json!({"type": "response.function_call_arguments.done", "item_id": id, "output_index": index, "arguments": arguments}));
                    let item = call_item(&id, &call_id, &name, &arguments, "completed");
                    self.emit(out, json!({"type": "response.output_item.done", "output_index": index, "item": item}));
                    self.output.push(item);
                }
            }
        }
    }

    fn reasoning(&mut self, delta: &str, out: &mut Vec<Bytes>) {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close(out);
            let id = new_id("rs");
            let item = json!({"type": "reasoning", "id": id, "summary": [], "content": [{"type": "reasoning_text", "text": ""}]});
            self.emit(out, json!({"type": "response.output_item.added", "output_index": self.index(), "item": item}));
            self.open = Some(Open::Reasoning {
                id,
                text: String::new(),
            });
        }
        let index = self.index();
        if let Some(Open::Reasoning { id, text }) = &mut self.open {
            text.push_str(delta);
            let event = json!({"type": "response.reasoning_text.delta", "item_id": id, "output_index": index, "content_index": 0, "delta": delta});
            self.emit(out, event);
        }
    }

    fn text(&mut self, delta: &str, refusal: bool, out: &mut Vec<Bytes>) {
        if !matches!(&self.open, Some(Open::Message { refusal: r, .. }) if *r == refusal) {
            self.close(out);
            let id = new_id("msg");
            let index = self.index();
            let item = json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []});
            self.emit(
                out,
                json!({"type": "response.output_item.added", "output_index": index, "item": item}),
            );
            let empty = part(refusal, "");
            self.emit(out, json!({"type": "response.content_part.added", "item_id": id, "output_index": index, "content_index": 0, "part": empty}));
            self.open = Some(Open::Message {
                id,
                refusal,
                text: String::new(),
            });
        }
        let index = self.index();
        if let Some(Open::Message { id, text, .. }) = &mut self.open {
            text.push_str(delta);
            let mut event =
                json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta});
            if refusal {
                event["type"] = json!("response.refusal.delta");
            } else {
                event["type"] = json!("response.output_text.delta");
                event["logprobs"] = json!([]);
            }
            self.emit(out, event);
        }
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<Bytes>) {
        let chat_index = call["index"].as_u64().unwrap_or(0);
        if !matches!(self.open, Some(Open::Calls(_))) {
            self.close(out);
            self.open = Some(Open::Calls(Vec::new()));
        }
        let base = self.index();
        let Some(Open::Calls(calls)) = &mut self.open else {
            return;
        };
        let position = match calls.iter().position(|c| c.0 == chat_index) {
            Some(position) => position,
            None => {
                let (id, call_id, name) = (
                    new_id("fc"),
                    str_at(call, "id").to_owned(),
                    str_at(&call["function"], "name").to_owned(),
                );
                calls.push((
                    chat_index,
                    id.clone(),
                    call_id.clone(),
                    name.clone(),
                    String::new(),
                ));
                let item = call_item(&id, &call_id, &name, "", "in_progress");
                let index = base + calls.len() - 1;
                self.emit(out, json!({"type": "response.output_item.added", "output_index": index, "item": item}));
                return self.tool_call(call, out);
            }
        };
        let arguments = str_at(&call["function"], "arguments");
        if arguments.is_empty() {
            return;
        }
        let id = calls[position].1.clone();
        calls[position].4.push_str(arguments);
        let event = json!({"type": "response.function_call_arguments.delta", "item_id": id, "output_index": base + position, "delta": arguments});
        self.emit(out, event);
    }

    fn chunk(&mut self, chunk: &Value) -> Vec<Bytes> {
        let mut out = Vec::new();
        self.head(chunk, &mut out);
        if chunk["usage"].is_object() {
            self.usage = usage(&chunk["usage"]);
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            for key in ["reasoning_content", "reasoning"] {
                if let Some(text) = delta[key].as_str().filter(|t| !t.is_empty()) {
                    self.reasoning(text, &mut out);
                }
            }
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.text(text, false, &mut out);
            }
            if let Some(text) = delta["refusal"].as_str().filter(|t| !t.is_empty()) {
                self.text(text, true, &mut out);
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                self.tool_call(call, &mut out);
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.finish_reason = Some(reason.to_owned());
            }
        }
        out
    }

    fn end(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        self.head(&Value::Null, &mut out);
        self.close(&mut out);
        self.done = true;
        let (status, details) = status(self.finish_reason.as_deref());
        let head = self
            .head
            .clone()
            .unwrap_or_else(|| Head::new(&self.requested_model));
        let response = head.resource(
            status,
            std::mem::take(&mut self.output),
            self.usage.take(),
            details,
        );
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(&mut out, json!({"type": kind, "response": response}));
        out
    }

    fn failed(&mut self, code: &str, message: &str) -> Vec<Bytes> {
        let mut out = Vec::new();
        self.head(&Value::Null, &mut out);
        self.done = true;
        let head = self
            .head
            .clone()
            .unwrap_or_else(|| Head::new(&self.requested_model));
        let error = json!({"code": code, "message": message});
        let response = head.resource(
            "failed",
            std::mem::take(&mut self.output),
            self.usage.take(),
            error,
        );
        self.emit(
            &mut out,
            json!({"type": "response.failed", "response": response}),
        );
        out
    }
}

impl StreamTranslator for ChatToResponsesStream {
    fn event(&mut self, ev: &Event) -> Vec<Bytes> {
        if self.done || ev.data.is_empty() {
            return Vec::new();
        }
        if ev.data.trim() == "[DONE]" {
            return self.end();
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&ev.data) else {
            return self.failed("invalid_stream", "upstream sent an event that is not JSON");
        };
        if let Some(error) = chunk.get("error").filter(|e| e.is_object()) {
            let code = match str_at(error, "code") {
                "" => "server_error",
                code => code,
            }
            .to_owned();
            let message = str_at(error, "message").to_owned();
            return self.failed(&code, &message);
        }
        self.chunk(&chunk)
    }

    fn finish(&mut self) -> Vec<Bytes> {
        if self.done {
            return Vec::new();
        }
        self.failed("server_error", "upstream stream ended before [DONE]")
    }

    fn fail(&mut self, code: &str, message: &str) -> Option<Vec<Bytes>> {
        if self.done {
            return Some(Vec::new());
        }
        Some(self.failed("server_error", &format!("{message} ({code})")))
    }
}

/// Two translators in a row (Anthropic → Chat → Responses): the first's output events
/// are parsed and fed to the second, so a Responses app reaches an Anthropic target
/// through the hub without a converter of its own.
pub struct Chained {
    first: Box<dyn StreamTranslator>,
    parser: crate::sse::Parser,
    second: Box<dyn StreamTranslator>,
}

impl Chained {
    /// `first`'s output becomes `second`'s input.
    pub fn new(first: Box<dyn StreamTranslator>, second: Box<dyn StreamTranslator>) -> Self {
        Self {
            first,
            parser: crate::sse::Parser::new(),
            second,
        }
    }

    fn relay(&mut self, bytes: Vec<Bytes>) -> Vec<Bytes> {
        let mut out = Vec::new();
        for chunk in bytes {
            self.parser.push(&chunk);
            while let Some(event) = self.parser.next_event() {
                out.extend(self.second.event(&event));
            }
        }
        out
    }
}

impl StreamTranslator for Chained {
    fn event(&mut self, ev: &Event) -> Vec<Bytes> {
        let bytes = self.first.event(ev);
        self.relay(bytes)
    }

    fn finish(&mut self) -> Vec<Bytes> {
        let bytes = self.first.finish();
        let mut out = self.relay(bytes);
        out.extend(self.second.finish());
        out
    }

    fn fail(&mut self, code: &str, message: &str) -> Option<Vec<Bytes>> {
        self.second.fail(code, message)
    }
}
