//! OpenAI Responses bodies: a whole response and its stream, in the shapes of the Open
//! Responses specification.
//!
//! Invariant: every body validates against the specification and parses with the
//! official SDKs: one `resp_` id from `response.created` to `response.completed`, every
//! item and content part opened before its deltas and closed before the end,
//! `sequence_number`s increasing from 0, and `response.completed` carrying the whole
//! output and usage. The in-band error event (`errorEventAfterChunks`) is a
//! `response.failed` whose code follows `errorStatus` (429: `rate_limit_exceeded`).

use bytes::Bytes;
use serde_json::{json, Value};

use super::body::StreamPlan;
use super::faults::{Faults, ThinkAs};
use super::reply::{Content, Reply};
use crate::sse::format_event;

fn usage(reply: &Reply<'_>) -> Value {
    let output = reply.completion_tokens();
    json!({
        "input_tokens": reply.prompt_tokens,
        "output_tokens": output,
        "total_tokens": reply.prompt_tokens.saturating_add(output),
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    })
}

/// The complete output item of a reply.
fn item(reply: &Reply<'_>) -> Value {
    match &reply.content {
        Content::Text(text) => json!({
            "type": "message",
            "id": format!("msg_mock_{}", reply.id),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }),
        Content::Tool { name, arguments } => json!({
            "type": "function_call",
            "id": format!("fc_mock_{}", reply.id),
            "call_id": format!("call_mock_{}", reply.id),
            "name": name,
            "arguments": arguments,
            "status": "completed",
        }),
    }
}

/// The response object with every field the specification requires.
fn resource(reply: &Reply<'_>, status: &str, output: Value, usage: Value, error: Value) -> Value {
    let done = status == "completed";
    json!({
        "id": format!("resp_mock_{}", reply.id),
        "object": "response",
        "created_at": reply.created,
        "completed_at": if done { json!(reply.created) } else { Value::Null },
        "status": status,
        "incomplete_details": null,
        "model": reply.model,
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

/// A non-streamed response.
pub(crate) fn response(reply: &Reply<'_>) -> Bytes {
    let body = resource(
        reply,
        "completed",
        json!([item(reply)]),
        usage(reply),
        Value::Null,
    );
    Bytes::from(body.to_string())
}

/// Numbers events as the stream is laid out.
struct Events {
    out: Vec<Bytes>,
}

impl Events {
    fn push(&mut self, mut data: Value) {
        let kind = data["type"].as_str().unwrap_or_default().to_owned();
        data["sequence_number"] = json!(self.out.len());
        self.out.push(format_event(Some(&kind), &data.to_string()));
    }
}

/// A streamed response: created, in progress, the thinking (reasoning summary deltas or
/// keep-alive comments), the item and its deltas, their `.done` events, completed.
pub(crate) fn response_stream(reply: &Reply<'_>, faults: &Faults) -> StreamPlan {
    let mut ev = Events { out: Vec::new() };
    let empty = resource(reply, "in_progress", json!([]), Value::Null, Value::Null);
    ev.push(json!({"type": "response.created", "response": empty}));
    ev.push(json!({"type": "response.in_progress", "response": empty}));
    let thinking = think(reply, faults, &mut ev);
    let index = usize::from(!thinking.is_empty() && faults.think_as != ThinkAs::Pings);
    let done_item = item(reply);
    let item_id = done_item["id"].clone();
    let pieces = reply.pieces();
    let content_start;
    match &reply.content {
        Content::Text(text) => {
            let mut opened = done_item.clone();
            opened["status"] = json!("in_progress");
            opened["content"] = json!([]);
            ev.push(json!({"type": "response.output_item.added", "output_index": index, "item": opened}));
            let part =
                json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
            ev.push(json!({"type": "response.content_part.added", "item_id": item_id, "output_index": index, "content_index": 0, "part": part}));
            content_start = ev.out.len();
            for piece in &pieces {
                ev.push(json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": index, "content_index": 0, "delta": piece, "logprobs": []}));
            }
            ev.push(json!({"type": "response.output_text.done", "item_id": item_id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}));
            ev.push(json!({"type": "response.content_part.done", "item_id": item_id, "output_index": index, "content_index": 0, "part": done_item["content"][0]}));
        }
        Content::Tool { arguments, .. } => {
            let mut opened = done_item.clone();
            opened["status"] = json!("in_progress");
            opened["arguments"] = json!("");
            ev.push(json!({"type": "response.output_item.added", "output_index": index, "item": opened}));
            content_start = ev.out.len();
            for piece in &pieces {
                ev.push(json!({"type": "response.function_call_arguments.delta", "item_id": item_id, "output_index": index, "delta": piece}));
            }
            ev.push(json!({"type": "response.function_call_arguments.done", "item_id": item_id, "output_index": index, "arguments": arguments}));
        }
    }
    let content = content_start..content_start + pieces.len();
    ev.push(json!({"type": "response.output_item.done", "output_index": index, "item": done_item}));
    let mut output = Vec::new();
    if index == 1 {
        output.push(reasoning_item(reply, faults.think_events()));
    }
    output.push(done_item);
    let completed = resource(reply, "completed", json!(output), usage(reply), Value::Null);
    ev.push(json!({"type": "response.completed", "response": completed}));
    let code = if faults.error_status == 429 {
        "rate_limit_exceeded"
    } else {
        "server_error"
    };
    let error = json!({"code": code, "message": "The server had an error while processing your request (mock fault)"});
    let failed = resource(reply, "failed", json!([]), Value::Null, error);
    // Numbered past every event it could replace, so the numbers still increase.
    let error_event =
        json!({"type": "response.failed", "sequence_number": ev.out.len(), "response": failed});
    StreamPlan {
        events: ev.out,
        content,
        thinking,
        error_event: format_event(Some("response.failed"), &error_event.to_string()),
    }
}

fn reasoning_item(reply: &Reply<'_>, steps: usize) -> Value {
    let text: String = (0..steps)
        .map(|step| format!("Thinking, step {}. ", step + 1))
        .collect();
    json!({"type": "reasoning", "id": format!("rs_mock_{}", reply.id), "summary": [{"type": "summary_text", "text": text}]})
}

/// The thinking of a `think` fault: keep-alive comments, or a reasoning item with one
/// summary delta a second. Returns the range of the events the time is spread over.
fn think(reply: &Reply<'_>, faults: &Faults, ev: &mut Events) -> std::ops::Range<usize> {
    let steps = faults.think_events();
    if steps == 0 {
        return ev.out.len()..ev.out.len();
    }
    if faults.think_as == ThinkAs::Pings {
        let start = ev.out.len();
        ev.out
            .extend((0..steps).map(|_| Bytes::from_static(b": keep-alive\n\n")));
        return start..ev.out.len();
    }
    let id = format!("rs_mock_{}", reply.id);
    ev.push(json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "reasoning", "id": id, "summary": []}}));
    let part = json!({"type": "summary_text", "text": ""});
    ev.push(json!({"type": "response.reasoning_summary_part.added", "item_id": id, "output_index": 0, "summary_index": 0, "part": part}));
    let start = ev.out.len();
    for step in 0..steps {
        let delta = format!("Thinking, step {}. ", step + 1);
        ev.push(json!({"type": "response.reasoning_summary_text.delta", "item_id": id, "output_index": 0, "summary_index": 0, "delta": delta}));
    }
    let end = ev.out.len();
    let done = reasoning_item(reply, steps);
    let text = done["summary"][0]["text"].clone();
    ev.push(json!({"type": "response.reasoning_summary_text.done", "item_id": id, "output_index": 0, "summary_index": 0, "text": text}));
    ev.push(json!({"type": "response.reasoning_summary_part.done", "item_id": id, "output_index": 0, "summary_index": 0, "part": done["summary"][0]}));
    ev.push(json!({"type": "response.output_item.done", "output_index": 0, "item": done}));
    start..end
}
