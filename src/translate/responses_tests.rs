//! Responses ⇄ Chat (the hub): a Responses request survives the round trip through Chat
//! with its items, tools and parameters; replies and streams come out in the shapes the
//! SDKs expect; any split of a Responses SSE byte stream parses to the same events.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::sse::{Event, Parser};

/// The inverse of [`responses_to_chat_request`], for the round trip: a Chat request as a
/// Responses request.
fn chat_to_responses_request(req: &Value, target_model: &str) -> Result<Value, Unsupported> {
    let obj = req
        .as_object()
        .ok_or_else(|| Unsupported::new("the request is not a JSON object"))?;
    let mut out = Map::new();
    out.insert("model".into(), json!(target_model));
    let mut input = Vec::new();
    let mut instructions = None;
    for (i, msg) in obj
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        match msg["role"].as_str() {
            Some("system") if i == 0 => instructions = msg["content"].as_str().map(str::to_owned),
            Some("tool") => input.push(json!({"type": "function_call_output", "call_id": msg["tool_call_id"], "output": msg["content"]})),
            Some("assistant") => {
                if let Some(text) = msg["content"].as_str() {
                    input.push(json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}));
                }
                for call in msg["tool_calls"].as_array().into_iter().flatten() {
                    input.push(json!({"type": "function_call", "call_id": call["id"], "name": call["function"]["name"], "arguments": call["function"]["arguments"]}));
                }
            }
            Some(role) => {
                let content = match &msg["content"] {
                    Value::String(s) => json!([{"type": "input_text", "text": s}]),
                    Value::Array(parts) => Value::Array(parts.iter().map(|p| match p["type"].as_str() {
                        Some("image_url") => {
                            let mut part = json!({"type": "input_image", "image_url": p["image_url"]["url"]});
                            if let Some(d) = p["image_url"].get("detail") { part["detail"] = d.clone(); }
                            part
                        }
                        _ => json!({"type": "input_text", "text": p["text"]}),
                    }).collect()),
                    _ => return Err(Unsupported::new("a message without content")),
                };
                input.push(json!({"type": "message", "role": role, "content": content}));
            }
            None => return Err(Unsupported::new("a message without a role")),
        }
    }
    if let Some(text) = instructions {
        out.insert("instructions".into(), json!(text));
    }
    out.insert("input".into(), Value::Array(input));
    for key in SAME {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(max) = obj
        .get("max_completion_tokens")
        .or(obj.get("max_tokens"))
        .filter(|v| !v.is_null())
    {
        out.insert("max_output_tokens".into(), max.clone());
    }
    if let Some(n) = obj.get("top_logprobs").filter(|v| !v.is_null()) {
        out.insert("top_logprobs".into(), n.clone());
    }
    if let Some(effort) = obj.get("reasoning_effort").filter(|v| !v.is_null()) {
        out.insert("reasoning".into(), json!({"effort": effort}));
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        let tools = tools.iter().map(|t| {
            let mut tool = t["function"].clone();
            tool["type"] = json!("function");
            tool
        });
        out.insert("tools".into(), Value::Array(tools.collect()));
    }
    if let Some(choice) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        let choice = match choice {
            Value::String(_) => choice.clone(),
            _ => json!({"type": "function", "name": choice["function"]["name"]}),
        };
        out.insert("tool_choice".into(), choice);
    }
    let mut text = Map::new();
    if let Some(format) = obj.get("response_format").filter(|v| !v.is_null()) {
        let format = match format["type"].as_str() {
            Some("json_schema") => {
                let mut f = format["json_schema"].clone();
                f["type"] = json!("json_schema");
                f
            }
            _ => format.clone(),
        };
        text.insert("format".into(), format);
    }
    if let Some(verbosity) = obj.get("verbosity").filter(|v| !v.is_null()) {
        text.insert("verbosity".into(), verbosity.clone());
    }
    if !text.is_empty() {
        out.insert("text".into(), Value::Object(text));
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), json!(true));
    }
    Ok(Value::Object(out))
}

/// Same names and meaning in both APIs (mirrors the converter's list).
const SAME: [&str; 8] = [
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "metadata",
    "user",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
];

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .,!?{}\"\\\\]{1,24}"
}

fn item() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(|t| json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": t}]})),
        text().prop_map(|t| json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": t}]})),
        ("[a-z0-9]{4,8}", "[a-z_]{1,8}", text()).prop_map(|(id, name, a)| {
            json!({"type": "function_call", "call_id": format!("call_{id}"), "name": name, "arguments": json!({"a": a}).to_string()})
        }),
        ("[a-z0-9]{4,8}", text()).prop_map(|(id, out)| {
            json!({"type": "function_call_output", "call_id": format!("call_{id}"), "output": out})
        }),
    ]
}

fn request() -> impl Strategy<Value = Value> {
    let params = (
        proptest::option::of(text()),
        proptest::option::of(1u64..100_000),
        proptest::option::of(0.0f64..2.0),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![Just("low"), Just("high")]),
        proptest::option::of("[a-z]{1,8}"),
        any::<bool>(),
    );
    let tools = proptest::collection::vec(("[a-z_]{1,8}", text()), 0..3);
    let choice = proptest::option::of(prop_oneof![
        Just(json!("auto")),
        Just(json!("none")),
        Just(json!("required")),
        "[a-z_]{1,8}".prop_map(|n| json!({"type": "function", "name": n})),
    ]);
    (proptest::collection::vec(item(), 1..6), params, tools, choice).prop_map(
        |(input, (instructions, max, temperature, parallel, effort, user, schema), tools, choice)| {
            let mut req = Map::new();
            req.insert("model".into(), json!("gpt-4o"));
            req.insert("input".into(), Value::Array(input));
            let mut set = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    req.insert(k.into(), v);
                }
            };
            set("instructions", instructions.map(Value::from));
            set("max_output_tokens", max.map(Value::from));
            set("temperature", temperature.map(Value::from));
            set("parallel_tool_calls", parallel.map(Value::from));
            set("reasoning", effort.map(|e| json!({"effort": e})));
            set("user", user.clone().map(Value::from));
            set("metadata", user.map(|u| json!({"tag": u})));
            set("tool_choice", choice);
            if schema {
                set("text", Some(json!({"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": true}})));
            }
            if !tools.is_empty() {
                let tools = tools.into_iter().map(|(name, description)| {
                    json!({"type": "function", "name": name, "description": description, "parameters": {"type": "object", "properties": {}}})
                });
                set("tools", Some(Value::Array(tools.collect())));
            }
            Value::Object(req)
        },
    )
}

proptest! {
    #[test]
    fn a_request_survives_the_round_trip_through_chat(req in request()) {
        let chat = responses_to_chat_request(&req, "gpt-4o").unwrap();
        let back = chat_to_responses_request(&chat, "gpt-4o").unwrap();
        prop_assert_eq!(back, req);
    }

    #[test]
    fn any_split_of_a_responses_stream_gives_the_same_events(cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let bytes: Vec<u8> = translated_stream().concat();
        let whole = parse(&[&bytes]);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len())).collect();
        at.sort_unstable();
        at.dedup();
        let mut pieces = Vec::new();
        let mut from = 0;
        for cut in at {
            pieces.push(&bytes[from..cut]);
            from = cut;
        }
        pieces.push(&bytes[from..]);
        let split = parse(&pieces);
        prop_assert_eq!(split.len(), whole.len());
        for (a, b) in split.iter().zip(&whole) {
            prop_assert_eq!((&a.event, &a.data), (&b.event, &b.data));
        }
    }
}

fn parse(pieces: &[&[u8]]) -> Vec<Event> {
    let mut parser = Parser::new();
    let mut out = Vec::new();
    for piece in pieces {
        parser.push(piece);
        while let Some(ev) = parser.next_event() {
            out.push(ev);
        }
    }
    out
}

fn chunk(delta: Value, finish: Option<&str>) -> Event {
    let data = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "llama-3", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string();
    Event {
        event: None,
        raw: crate::sse::format_event(None, &data),
        data,
    }
}

/// A Chat stream with reasoning, text and two tool calls, translated.
fn translated_stream() -> Vec<bytes::Bytes> {
    let mut t = ChatToResponsesStream::new("requested");
    let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "llama-3", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}).to_string();
    let events = [
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"reasoning_content": "Let me think"}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{\"x\""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        Event {
            event: None,
            raw: crate::sse::format_event(None, &usage),
            data: usage,
        },
        Event {
            event: None,
            raw: crate::sse::format_event(None, "[DONE]"),
            data: "[DONE]".into(),
        },
    ];
    let mut out: Vec<bytes::Bytes> = events.iter().flat_map(|e| t.event(e)).collect();
    out.extend(t.finish());
    out
}

#[test]
fn a_translated_stream_is_in_the_order_the_sdks_require() {
    let events: Vec<Value> = parse(&[&translated_stream().concat()])
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..2], ["response.created", "response.in_progress"]);
    assert_eq!(*kinds.last().unwrap(), "response.completed");
    for (n, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], n as u64);
    }
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["id"], events[0]["response"]["id"]);
    assert!(done["id"].as_str().unwrap().starts_with("resp_"));
    let types: Vec<&str> = done["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["reasoning", "message", "function_call", "function_call"]
    );
    assert_eq!(done["output"][1]["content"][0]["text"], "Hello");
    assert_eq!(done["output"][2]["arguments"], "{\"x\":1}");
    assert_eq!(done["output"][2]["call_id"], "call_a");
    assert!(done["output"][2]["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(done["usage"]["total_tokens"], 12);
    assert_eq!(done["model"], "llama-3");
}

#[test]
fn a_stream_cut_before_done_ends_failed() {
    let mut t = ChatToResponsesStream::new("m");
    let mut out = t.event(&chunk(json!({"content": "Hi"}), None));
    out.extend(t.finish());
    let last = parse(&[&out.concat()]).pop().unwrap();
    let last: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["output"], json!([]));
}

#[test]
fn a_chat_reply_becomes_a_response() {
    let chat = json!({"id": "chatcmpl-9", "model": "llama-3", "choices": [{"index": 0, "finish_reason": "length",
        "message": {"role": "assistant", "content": "Hi", "reasoning_content": "hmm",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}});
    let r = chat_to_responses_response(&chat, "requested");
    assert!(r["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    let types: Vec<&str> = r["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["reasoning", "message", "function_call"]);
    assert_eq!(r["output"][2]["call_id"], "call_1");
    assert_eq!(r["usage"]["input_tokens"], 3);
}

#[test]
fn what_needs_a_responses_target_is_refused() {
    for req in [
        json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
        json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}),
        json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
        json!({"model": "m", "input": "x", "background": true}),
    ] {
        assert!(responses_to_chat_request(&req, "m").is_err(), "{req}");
    }
    let chat = responses_to_chat_request(
        &json!({"model": "m", "input": "x", "instructions": "be brief", "stream": true}),
        "t",
    )
    .unwrap();
    assert_eq!(
        chat["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(chat["stream_options"]["include_usage"], true);
}
