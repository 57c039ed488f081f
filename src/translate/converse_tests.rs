//! Bedrock Converse translation tests: the request rules Bedrock enforces, replies and
//! streams back into each app dialect, errors.

use serde_json::{json, Value};

use super::*;
use crate::sse::{Event, Parser};

/// An OpenAI Chat call as an OpenAI app sends it to a Bedrock target: through Messages.
fn from_chat(chat: &Value) -> Value {
    let messages = openai_to_anthropic_request(chat, "m", 512).unwrap();
    anthropic_to_converse_request(&messages).unwrap()
}

#[test]
fn chat_request_becomes_converse() {
    let chat = json!({
        "model": "claude",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "user", "content": [
                {"type": "text", "text": "And this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "auto",
        "max_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "stream": true,
    });
    let converse = from_chat(&chat);
    assert_eq!(converse["system"], json!([{"text": "Be brief."}]));
    assert_eq!(
        converse["inferenceConfig"],
        json!({"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]})
    );
    let messages = converse["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"], "roles alternate");
    // The assistant turn of a tool call only has no blank text block.
    assert_eq!(
        messages[1]["content"],
        json!([{"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Paris"}}}])
    );
    let last = messages[2]["content"].as_array().unwrap();
    assert_eq!(
        last[0],
        json!({"toolResult": {"toolUseId": "call_1", "content": [{"text": "18C"}]}})
    );
    assert_eq!(last[1], json!({"text": "And this?"}));
    assert_eq!(
        last[2],
        json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
    );
    assert_eq!(
        converse["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["city"],
        json!({"type": "string"})
    );
    assert_eq!(converse["toolConfig"]["toolChoice"], json!({"auto": {}}));
    for absent in ["model", "stream", "max_tokens"] {
        assert!(converse.get(absent).is_none(), "{absent}");
    }
    let blank = |v: &Value| {
        v.get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| t.trim().is_empty())
    };
    assert!(!messages
        .iter()
        .flat_map(|m| m["content"].as_array().unwrap())
        .any(blank));
}

#[test]
fn tool_history_without_tools_still_gets_a_tool_config() {
    let messages = json!({
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": ""}, {"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [], "is_error": true}]},
            {"role": "user", "content": "thanks"},
        ],
    });
    let converse = anthropic_to_converse_request(&messages).unwrap();
    assert_eq!(
        converse["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]})
    );
    let turns = converse["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3, "the two user turns merged");
    assert_eq!(
        turns[1]["content"],
        json!([{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {}}}])
    );
    assert_eq!(
        turns[2]["content"][0],
        json!({"toolResult": {"toolUseId": "t1", "content": [{"text": "(no output)"}], "status": "error"}})
    );
}

#[test]
fn what_converse_cannot_say_is_refused() {
    let url_image = json!({"max_tokens": 1, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    ]}]});
    assert!(anthropic_to_converse_request(&url_image).is_err());
    let server_tool = json!({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
    assert!(anthropic_to_converse_request(&server_tool).is_err());
}

fn converse_reply() -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Paris"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19},
        "metrics": {"latencyMs": 100}
    })
}

#[test]
fn replies_reach_both_dialects() {
    let message = converse_to_anthropic_response(&converse_reply(), "claude-app");
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(message["model"], "claude-app");
    assert_eq!(message["content"][1]["type"], "tool_use");
    assert_eq!(message["usage"]["input_tokens"], 12);
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    let chat = anthropic_to_openai_response(&message, "claude-app");
    assert_eq!(chat["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chat["choices"][0]["message"]["content"], "Let me check.");
    assert_eq!(
        chat["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(chat["usage"]["completion_tokens"], 7);
    let filtered = json!({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "guardrail_intervened", "usage": {}});
    let chat = anthropic_to_openai_response(&converse_to_anthropic_response(&filtered, "m"), "m");
    assert_eq!(chat["choices"][0]["finish_reason"], "content_filter");
}

#[test]
fn errors_keep_status_and_message() {
    let (status, anthropic) = converse_error_to_anthropic(
        400,
        Some("ValidationException"),
        br#"{"message":"The model returned the following errors: bad"}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(anthropic["error"]["type"], "invalid_request_error");
    assert_eq!(
        anthropic["error"]["message"],
        "ValidationException: The model returned the following errors: bad"
    );
    let (status, openai) = error_to_openai(status, anthropic.to_string().as_bytes());
    assert_eq!(status, 400);
    assert_eq!(openai["error"]["type"], "invalid_request_error");
    let (_, denied) = converse_error_to_anthropic(403, Some("AccessDeniedException"), b"{}");
    assert_eq!(denied["error"]["type"], "permission_error");
}

fn converse_event(name: &str, data: Value) -> Event {
    Event {
        event: Some(name.to_owned()),
        data: data.to_string(),
        raw: bytes::Bytes::new(),
    }
}

fn converse_stream() -> Vec<Event> {
    vec![
        converse_event(
            "messageStart",
            json!({"role": "assistant", "p": "abcdefgh"}),
        ),
        converse_event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}, "p": "ab"}),
        ),
        converse_event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        ),
        converse_event("contentBlockStop", json!({"contentBlockIndex": 0})),
        converse_event(
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_9", "name": "weather"}}}),
        ),
        converse_event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        converse_event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ),
        converse_event("contentBlockStop", json!({"contentBlockIndex": 1})),
        converse_event("messageStop", json!({"stopReason": "tool_use"})),
        converse_event(
            "metadata",
            json!({"usage": {"inputTokens": 5, "outputTokens": 9, "totalTokens": 14}, "metrics": {"latencyMs": 3}}),
        ),
    ]
}

fn run(t: &mut dyn StreamTranslator, events: &[Event]) -> Vec<(Option<String>, Value)> {
    let mut bytes = Vec::new();
    for e in events {
        for b in t.event(e) {
            bytes.extend_from_slice(&b);
        }
    }
    for b in t.finish() {
        bytes.extend_from_slice(&b);
    }
    let mut p = Parser::new();
    p.push(&bytes);
    std::iter::from_fn(|| p.next_event())
        .map(|e| {
            (
                e.event,
                serde_json::from_str(&e.data).unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[test]
fn stream_becomes_anthropic_events() {
    let out = run(
        &mut ConverseToAnthropicStream::new("claude-app"),
        &converse_stream(),
    );
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(out[5].1["content_block"]["id"], "tooluse_9");
    assert_eq!(out[9].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(out[9].1["usage"]["output_tokens"], 9);
}

#[test]
fn stream_reaches_chat_with_usage_and_done() {
    let mut chained = Chained::new(
        Box::new(ConverseToAnthropicStream::new("claude-app")),
        Box::new(AnthropicToOpenaiStream::new("claude-app", true)),
    );
    let out = run(&mut chained, &converse_stream());
    let text: String = out
        .iter()
        .filter_map(|(_, v)| {
            v.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(text, "Hello");
    let arguments: String = out
        .iter()
        .filter_map(|(_, v)| {
            v.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(arguments, "{\"city\":\"Paris\"}");
    assert!(out
        .iter()
        .any(|(_, v)| v.pointer("/choices/0/finish_reason") == Some(&json!("tool_calls"))));
    assert!(out
        .iter()
        .any(|(_, v)| v.pointer("/usage/completion_tokens") == Some(&json!(9))));
    assert_eq!(out.last().unwrap().1, Value::Null, "ends with [DONE]");
}

#[test]
fn exceptions_and_cuts_end_failed() {
    let mut events = converse_stream()[..2].to_vec();
    events.push(converse_event(
        "modelStreamErrorException",
        json!({"message": "boom", "originalStatusCode": 500}),
    ));
    let out = run(&mut ConverseToAnthropicStream::new("m"), &events);
    assert_eq!(out.last().unwrap().0.as_deref(), Some("error"));
    assert_eq!(out.last().unwrap().1["error"]["type"], "overloaded_error");
    let cut = run(
        &mut ConverseToAnthropicStream::new("m"),
        &converse_stream()[..3],
    );
    assert_eq!(cut.last().unwrap().0.as_deref(), Some("error"));
}
