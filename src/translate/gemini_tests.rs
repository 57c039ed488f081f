//! The hub ⇄ Gemini converters: requests field by field, replies, thought signatures,
//! streams (any split of the bytes gives the same events), and the property that a Chat
//! conversation keeps its messages, tools and parameters on its way to Gemini.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::gemini_signatures::{call_id, SKIP_VALIDATOR};
use super::*;
use crate::sse::{Event, Parser};

const TARGET: u64 = 7;

fn to_gemini(req: &Value) -> Value {
    chat_to_gemini_request(req, TARGET, "gemini-2.5-flash").expect("translates")
}

#[test]
fn chat_requests_map_field_by_field() {
    let req = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "see", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"found\":true}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "nothing"},
        ],
        "tools": [{"type": "function", "function": {"name": "look", "description": "d", "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
            "properties": {"q": {"type": "integer"}}, "required": ["q"]}}},
            {"type": "function", "function": {"name": "see", "parameters": {"type": "object", "properties": {}}}}],
        "tool_choice": "required",
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "stop": "END", "seed": 3,
        "user": "u-1", "parallel_tool_calls": true,
        "response_format": {"type": "json_object"},
    });
    assert_eq!(
        to_gemini(&req),
        json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
                {"role": "model", "parts": [
                    {"text": "Checking."},
                    {"functionCall": {"name": "look", "args": {"q": 1}}},
                    {"functionCall": {"name": "see", "args": {}}},
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "look", "response": {"found": true}}},
                    {"functionResponse": {"name": "see", "response": {"result": "nothing"}}},
                ]},
            ],
            "tools": [{"functionDeclarations": [
                {"name": "look", "description": "d", "parameters": {"type": "OBJECT", "properties": {"q": {"type": "INTEGER"}}, "required": ["q"]}},
                {"name": "see"},
            ]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            "generationConfig": {
                "temperature": 0.2, "topP": 0.9, "maxOutputTokens": 50, "stopSequences": ["END"],
                "seed": 3, "responseMimeType": "application/json",
            },
        })
    );
}

#[test]
fn untranslatable_requests_are_unsupported() {
    for req in [
        json!({"messages": [{"role": "user", "content": "x"}], "n": 2}),
        json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]}),
        json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]}),
        json!({"messages": [{"role": "tool", "tool_call_id": "nobody", "content": "x"}]}),
        json!({"messages": [{"role": "user", "content": "x"}], "logprobs": true}),
    ] {
        assert!(
            chat_to_gemini_request(&req, TARGET, "gemini-2.5-flash").is_err(),
            "{req}"
        );
    }
}

#[test]
fn a_reply_with_a_call_is_tool_calls_whatever_gemini_says() {
    let reply = json!({
        "responseId": "resp-reply-test",
        "modelVersion": "gemini-2.5-flash-001",
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Let me see.", "thought": true},
            {"text": "Sure."},
            {"functionCall": {"name": "look", "args": {"q": 1}}, "thoughtSignature": "c2ln"},
        ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 4, "cachedContentTokenCount": 6, "totalTokenCount": 19},
    });
    let chat = gemini_to_chat_response(&reply, "asked", TARGET);
    let id = call_id("resp-reply-test", 0, "look");
    assert_eq!(chat["model"], "gemini-2.5-flash-001");
    assert_eq!(chat["choices"][0]["finish_reason"], "tool_calls");
    let message = &chat["choices"][0]["message"];
    assert_eq!(message["content"], "Sure.");
    assert_eq!(message["reasoning_content"], "Let me see.");
    assert_eq!(
        message["tool_calls"],
        json!([{"id": id, "type": "function", "function": {"name": "look", "arguments": "{\"q\":1}"}}])
    );
    assert_eq!(
        chat["usage"],
        json!({"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19,
               "prompt_tokens_details": {"cached_tokens": 6},
               "completion_tokens_details": {"reasoning_tokens": 4}})
    );
    // The next turn sends the call back: its signature goes to this target only.
    let next = json!({"messages": [
        {"role": "user", "content": "hi"},
        message,
        {"role": "tool", "tool_call_id": id, "content": "ok"},
    ]});
    let same = chat_to_gemini_request(&next, TARGET, "gemini-3-pro").unwrap();
    assert_eq!(same["contents"][1]["parts"][1]["thoughtSignature"], "c2ln");
    let other = chat_to_gemini_request(&next, TARGET + 1, "gemini-3-pro").unwrap();
    assert_eq!(
        other["contents"][1]["parts"][1]["thoughtSignature"],
        SKIP_VALIDATOR
    );
    let older = chat_to_gemini_request(&next, TARGET + 1, "gemini-2.5-pro").unwrap();
    assert!(older["contents"][1]["parts"][1]
        .get("thoughtSignature")
        .is_none());
    // And an Anthropic app sees a tool_use with the same id.
    let anthropic = openai_to_anthropic_response(&chat, "asked");
    assert_eq!(anthropic["stop_reason"], "tool_use");
    assert_eq!(anthropic["content"][2]["id"], json!(id));
}

#[test]
fn safety_stops_and_blocked_prompts_are_content_filter() {
    let stopped = json!({"candidates": [{"content": {"parts": []}, "finishReason": "SAFETY"}]});
    let chat = gemini_to_chat_response(&stopped, "m", TARGET);
    assert_eq!(chat["choices"][0]["finish_reason"], "content_filter");
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}});
    let chat = gemini_to_chat_response(&blocked, "m", TARGET);
    assert_eq!(chat["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(chat["usage"]["prompt_tokens"], 4);
    let (status, body) = gemini_error_to_openai(
        404,
        br#"{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}"#,
    );
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": {"message": "models/x is not found", "type": "invalid_request_error", "param": null, "code": "NOT_FOUND"}})
    );
    let (status, body) = gemini_error_to_anthropic(403, b"<html>");
    assert_eq!(
        (status, &body["error"]["type"]),
        (403, &json!("permission_error"))
    );
}

fn gemini_sse() -> Vec<u8> {
    // Gemini frames its events with CRLF.
    let chunks = [
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hmm", "thought": true}]}}], "responseId": "r-stream", "modelVersion": "gemini-2.5-pro"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}], "responseId": "r-stream"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}}], "responseId": "r-stream"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": "b"}}}]}, "finishReason": "STOP"}],
               "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "thoughtsTokenCount": 1}, "responseId": "r-stream"}),
    ];
    chunks
        .iter()
        .flat_map(|c| format!("data: {c}\r\n\r\n").into_bytes())
        .collect()
}

fn run(t: &mut dyn StreamTranslator, pieces: &[&[u8]]) -> Vec<Event> {
    let mut parser = Parser::new();
    let mut out = Vec::new();
    for piece in pieces {
        parser.push(piece);
        while let Some(ev) = parser.next_event() {
            out.extend(t.event(&ev));
        }
    }
    out.extend(t.finish());
    let mut translated = Parser::new();
    translated.push(&out.concat());
    std::iter::from_fn(|| translated.next_event()).collect()
}

#[test]
fn a_gemini_stream_becomes_chat_chunks() {
    let events = run(
        &mut GeminiToChatStream::new("asked", true, TARGET),
        &[&gemini_sse()],
    );
    let data: Vec<Value> = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let deltas: Vec<&Value> = data.iter().map(|d| &d["choices"][0]["delta"]).collect();
    assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
    assert_eq!(deltas[1], &json!({"reasoning_content": "Hmm"}));
    assert_eq!(deltas[2], &json!({"content": "Hel"}));
    assert_eq!(deltas[3], &json!({"content": "lo"}));
    assert_eq!(deltas[4]["tool_calls"][0]["function"]["name"], "f");
    assert_eq!(
        deltas[4]["tool_calls"][0]["id"],
        json!(call_id("r-stream", 0, "f"))
    );
    assert_eq!(data[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(data[6]["usage"]["completion_tokens"], 3);
    assert_eq!(data[0]["model"], "gemini-2.5-pro");
    assert_eq!(events.last().unwrap().data, "[DONE]");
}

#[test]
fn a_cut_or_failed_gemini_stream_ends_with_an_error() {
    let whole = gemini_sse();
    let cut = &whole[..whole.len() / 2];
    let events = run(&mut GeminiToChatStream::new("m", false, TARGET), &[cut]);
    assert!(events.last().unwrap().data.contains("incomplete_stream"));
    let failed =
        b"data: {\"error\":{\"code\":503,\"message\":\"busy\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n";
    let events = run(&mut GeminiToChatStream::new("m", false, TARGET), &[failed]);
    assert!(events.last().unwrap().data.contains("UNAVAILABLE"));
}

#[test]
fn an_anthropic_app_gets_the_whole_message_sequence() {
    let mut chained = Chained::new(
        Box::new(GeminiToChatStream::new("claude", true, TARGET)),
        Box::new(OpenaiToAnthropicStream::new("claude")),
    );
    let names: Vec<String> = run(&mut chained, &[&gemini_sse()])
        .into_iter()
        .filter_map(|e| e.event)
        .collect();
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert!(names.iter().any(|n| n == "content_block_delta"));
    assert_eq!(names[names.len() - 2], "message_delta");
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
}

proptest! {
    /// Wherever the network splits the bytes, the translated events are the same.
    #[test]
    fn any_split_gives_the_same_events(cuts in proptest::collection::vec(0usize..2000, 0..8)) {
        let whole = gemini_sse();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (whole.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut at = 0;
        for cut in cuts {
            pieces.push(&whole[at..cut]);
            at = cut;
        }
        pieces.push(&whole[at..]);
        let strip = |events: Vec<Event>| -> Vec<Value> {
            events.iter().map(|e| {
                let mut v: Value = serde_json::from_str(&e.data).unwrap_or(Value::String(e.data.clone()));
                if let Some(o) = v.as_object_mut() { o.remove("created"); }
                v
            }).collect()
        };
        let split = strip(run(&mut GeminiToChatStream::new("m", true, TARGET), &pieces));
        let once = strip(run(&mut GeminiToChatStream::new("m", true, TARGET), &[&whole]));
        prop_assert_eq!(split, once);
    }

    /// A Chat conversation on its way to Gemini keeps every message's text, every call
    /// (name and arguments) answered by name, every tool and its parameters.
    #[test]
    fn conversations_keep_messages_tools_and_parameters(
        turns in proptest::collection::vec(("[a-zA-Z0-9 .,!?]{1,20}", proptest::collection::vec(("[a-z_]{1,8}", 0i64..1000), 0..3)), 1..4),
        props in proptest::collection::btree_map("[a-z]{1,6}", prop_oneof![Just("string"), Just("integer"), Just("boolean")], 1..4),
        temperature in proptest::option::of(0u32..20),
    ) {
        let mut messages = vec![json!({"role": "system", "content": "sys"})];
        let mut expected_calls = Vec::new();
        for (n, (text, calls)) in turns.iter().enumerate() {
            messages.push(json!({"role": "user", "content": text}));
            let tool_calls: Vec<Value> = calls.iter().enumerate().map(|(i, (name, arg))| json!({
                "id": format!("call_{n}_{i}"), "type": "function",
                "function": {"name": name, "arguments": json!({"v": arg}).to_string()},
            })).collect();
            messages.push(json!({"role": "assistant", "content": text, "tool_calls": tool_calls}));
            for (i, (name, arg)) in calls.iter().enumerate() {
                messages.push(json!({"role": "tool", "tool_call_id": format!("call_{n}_{i}"), "content": arg.to_string()}));
                expected_calls.push((name.clone(), *arg));
            }
        }
        let properties: serde_json::Map<String, Value> = props.iter().map(|(k, t)| (k.clone(), json!({"type": t}))).collect();
        let mut req = json!({"messages": messages, "tools": [{"type": "function", "function": {"name": "tool", "parameters": {"type": "object", "properties": properties}}}]});
        if let Some(t) = temperature { req["temperature"] = json!(f64::from(t) / 10.0); }
        let out = to_gemini(&req);
        prop_assert_eq!(&out["systemInstruction"]["parts"][0]["text"], "sys");
        let parts: Vec<&Value> = out["contents"].as_array().unwrap().iter().flat_map(|c| c["parts"].as_array().unwrap()).collect();
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        let want: Vec<&str> = turns.iter().flat_map(|(t, _)| [t.as_str(), t.as_str()]).collect();
        prop_assert_eq!(texts, want);
        let calls: Vec<(String, i64)> = parts.iter().filter_map(|p| p.get("functionCall")).map(|c| (c["name"].as_str().unwrap().to_owned(), c["args"]["v"].as_i64().unwrap())).collect();
        prop_assert_eq!(&calls, &expected_calls);
        let answered: Vec<(String, i64)> = parts.iter().filter_map(|p| p.get("functionResponse")).map(|r| (r["name"].as_str().unwrap().to_owned(), r["response"]["result"].as_str().map_or_else(|| r["response"].as_i64().unwrap_or(-1), |s| s.parse().unwrap()))).collect();
        prop_assert_eq!(&answered, &expected_calls);
        let roles: Vec<&str> = out["contents"].as_array().unwrap().iter().map(|c| c["role"].as_str().unwrap()).collect();
        prop_assert!(roles.windows(2).all(|w| w[0] != w[1]), "{:?}", roles);
        let declared = &out["tools"][0]["functionDeclarations"][0]["parameters"]["properties"];
        prop_assert_eq!(declared.as_object().unwrap().len(), props.len());
        for (k, t) in &props {
            prop_assert_eq!(declared[k]["type"].as_str().unwrap(), t.to_ascii_uppercase());
        }
        prop_assert_eq!(out.pointer("/generationConfig/temperature").and_then(Value::as_f64), temperature.map(|t| f64::from(t) / 10.0));
    }
}
