//! Stream translator tests: whole conversations through each direction, parsed back with
//! the SSE framer the way an SDK would read them.

use serde_json::{json, Value};

use super::*;
use crate::sse::{format_event, Event, Parser};

fn ev(name: Option<&str>, data: &Value) -> Event {
    let raw = format_event(name, &data.to_string());
    let mut p = Parser::new();
    p.push(&raw);
    p.next_event().expect("one whole event")
}

fn run(t: &mut dyn StreamTranslator, events: &[Event]) -> Vec<Event> {
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
    std::iter::from_fn(|| p.next_event()).collect()
}

fn anthropic(kind: &str, mut data: Value) -> Event {
    data["type"] = json!(kind);
    ev(Some(kind), &data)
}

/// An Anthropic stream: text, then a tool call whose arguments come in three fragments.
fn anthropic_tool_stream() -> Vec<Event> {
    vec![
        anthropic(
            "message_start",
            json!({"message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"usage":{"input_tokens":10,"cache_read_input_tokens":4,"output_tokens":1}}}),
        ),
        anthropic("ping", json!({})),
        anthropic(
            "content_block_start",
            json!({"index":0,"content_block":{"type":"text","text":""}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"index":0,"delta":{"type":"text_delta","text":"Checking"}}),
        ),
        anthropic("content_block_stop", json!({"index":0})),
        anthropic(
            "content_block_start",
            json!({"index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"weather","input":{}}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"index":1,"delta":{"type":"input_json_delta","partial_json":""}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"index":1,"delta":{"type":"input_json_delta","partial_json":"{\"ci"}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"index":1,"delta":{"type":"input_json_delta","partial_json":"ty\": \"Os"}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"index":1,"delta":{"type":"input_json_delta","partial_json":"lo\"}"}}),
        ),
        anthropic("content_block_stop", json!({"index":1})),
        anthropic(
            "message_delta",
            json!({"delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":20}}),
        ),
        anthropic("message_stop", json!({})),
    ]
}

#[test]
fn anthropic_stream_becomes_openai_chunks_with_reassembled_tool_arguments() {
    let out = run(
        &mut AnthropicToOpenaiStream::new("gpt-4o", true),
        &anthropic_tool_stream(),
    );
    assert_eq!(out.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let chunks: Vec<Value> = out[..out.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).expect("JSON chunk"))
        .collect();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(
            (&c["id"], &c["model"]),
            (&json!("msg_1"), &json!("claude-x"))
        );
        assert!(c["created"].is_u64());
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role":"assistant","content":""})
    );
    let mut text = String::new();
    let mut args = String::new();
    let mut header = None;
    for d in chunks.iter().filter_map(|c| c.pointer("/choices/0/delta")) {
        text.push_str(d["content"].as_str().unwrap_or_default());
        if let Some(call) = d.pointer("/tool_calls/0") {
            assert_eq!(call["index"], 0);
            if call.get("id").is_some() {
                header = Some((call["id"].clone(), call["function"]["name"].clone()));
            }
            args.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    assert_eq!(text, "Checking");
    assert_eq!(header, Some((json!("toolu_1"), json!("weather"))));
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city":"Oslo"})
    );
    let finish: Vec<_> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/finish_reason"))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("tool_calls")]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    assert_eq!(usage["prompt_tokens"], 14);
    assert_eq!(usage["completion_tokens"], 20);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 4);
}

#[test]
fn anthropic_stream_without_usage_request_has_no_usage_chunk() {
    let out = run(
        &mut AnthropicToOpenaiStream::new("gpt-4o", false),
        &anthropic_tool_stream(),
    );
    assert!(out.iter().all(|e| !e.data.contains("\"usage\"")));
    assert_eq!(out.last().unwrap().data, "[DONE]");
}

#[test]
fn anthropic_error_event_and_cut_stream_end_with_an_openai_error() {
    let mut events = anthropic_tool_stream()[..4].to_vec();
    events.push(anthropic(
        "error",
        json!({"error":{"type":"overloaded_error","message":"Overloaded"}}),
    ));
    let out = run(&mut AnthropicToOpenaiStream::new("m", true), &events);
    let last: Value = serde_json::from_str(&out.last().unwrap().data).unwrap();
    assert_eq!(last["error"]["code"], "overloaded_error");
    assert!(out.iter().all(|e| e.data != "[DONE]"));

    let out = run(
        &mut AnthropicToOpenaiStream::new("m", true),
        &anthropic_tool_stream()[..6],
    );
    let last: Value = serde_json::from_str(&out.last().unwrap().data).unwrap();
    assert_eq!(last["error"]["code"], "incomplete_stream");
}

fn openai(data: Value) -> Event {
    ev(None, &data)
}

fn chunk(delta: Value, finish: Option<&str>) -> Event {
    openai(
        json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024","choices":[{"index":0,"delta":delta,"finish_reason":finish}]}),
    )
}

fn done() -> Event {
    let mut p = Parser::new();
    p.push(b"data: [DONE]\n\n");
    p.next_event().expect("one whole event")
}

fn openai_tool_stream() -> Vec<Event> {
    vec![
        chunk(json!({"role":"assistant","content":""}), None),
        chunk(json!({"content":"Hi"}), None),
        chunk(json!({"content":" there"}), None),
        chunk(
            json!({"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls":[{"index":0,"function":{"arguments":":\"Oslo\"}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"time","arguments":"{}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        openai(
            json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":2}}}),
        ),
        done(),
    ]
}

#[test]
fn openai_stream_becomes_the_full_anthropic_event_sequence() {
    let out = run(
        &mut OpenaiToAnthropicStream::new("claude-x"),
        &openai_tool_stream(),
    );
    let names: Vec<&str> = out.iter().map(|e| e.event.as_deref().unwrap()).collect();
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
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let data: Vec<Value> = out
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    for (name, d) in names.iter().zip(&data) {
        assert_eq!(d["type"], *name);
    }
    assert_eq!(data[0]["message"]["model"], "gpt-4o-2024");
    assert_eq!(data[0]["message"]["id"], "chatcmpl-1");
    assert_eq!(data[2]["delta"], json!({"type":"text_delta","text":"Hi"}));
    assert_eq!(
        data[5]["content_block"],
        json!({"type":"tool_use","id":"call_a","name":"weather","input":{}})
    );
    let args: String = data[6..8]
        .iter()
        .map(|d| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city":"Oslo"})
    );
    let indexes: Vec<u64> = data[1..12]
        .iter()
        .map(|d| d["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]);
    assert_eq!(data[12]["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        data[12]["usage"],
        json!({"input_tokens":10,"output_tokens":30,"cache_read_input_tokens":2})
    );
}

#[test]
fn openai_stream_cut_before_finish_or_with_error_ends_with_an_anthropic_error() {
    let out = run(
        &mut OpenaiToAnthropicStream::new("c"),
        &openai_tool_stream()[..3],
    );
    assert_eq!(out.last().unwrap().event.as_deref(), Some("error"));
    assert!(out
        .iter()
        .all(|e| e.event.as_deref() != Some("message_stop")));

    let mut events = openai_tool_stream()[..2].to_vec();
    events.push(openai(
        json!({"error":{"message":"boom","type":"server_error"}}),
    ));
    let out = run(&mut OpenaiToAnthropicStream::new("c"), &events);
    let last: Value = serde_json::from_str(&out.last().unwrap().data).unwrap();
    assert_eq!(
        last,
        json!({"type":"error","error":{"type":"api_error","message":"boom"}})
    );
}

#[test]
fn openai_stream_without_done_still_closes_after_a_finish_reason() {
    let events = vec![
        chunk(json!({"content":"ok"}), None),
        chunk(json!({}), Some("length")),
    ];
    let out = run(&mut OpenaiToAnthropicStream::new("c"), &events);
    let last_two: Vec<_> = out[out.len() - 2..]
        .iter()
        .map(|e| e.event.clone().unwrap())
        .collect();
    assert_eq!(last_two, ["message_delta", "message_stop"]);
    assert!(out[out.len() - 2].data.contains("\"max_tokens\""));
}

#[test]
fn reasoning_crosses_both_ways() {
    // Anthropic thinking → OpenAI `reasoning_content` deltas, before the text.
    let thinking = vec![
        anthropic(
            "message_start",
            json!({"message":{"id":"msg_r","model":"claude-x","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}),
        ),
        anthropic(
            "content_block_start",
            json!({"index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"index":0,"delta":{"type":"thinking_delta","thinking":"Let me think."}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"index":0,"delta":{"type":"signature_delta","signature":"sig"}}),
        ),
        anthropic("content_block_stop", json!({"index":0})),
        anthropic(
            "content_block_start",
            json!({"index":1,"content_block":{"type":"text","text":""}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"index":1,"delta":{"type":"text_delta","text":"Hi"}}),
        ),
        anthropic("content_block_stop", json!({"index":1})),
        anthropic(
            "message_delta",
            json!({"delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}),
        ),
        anthropic("message_stop", json!({})),
    ];
    let out = run(&mut AnthropicToOpenaiStream::new("gpt-x", false), &thinking);
    let deltas: Vec<Value> = out
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap()["choices"][0]["delta"].clone())
        .collect();
    assert_eq!(deltas[1], json!({"reasoning_content": "Let me think."}));
    assert_eq!(deltas[2], json!({"content": "Hi"}));

    // OpenAI `reasoning_content` (and `reasoning`) deltas → an Anthropic thinking block,
    // closed before the text block opens.
    let chunk = |delta: Value, finish: Value| {
        ev(
            None,
            &json!({"id":"c1","model":"deepseek-r1","choices":[{"index":0,"delta":delta,"finish_reason":finish}]}),
        )
    };
    let openai = vec![
        chunk(json!({"role":"assistant","content":""}), Value::Null),
        chunk(json!({"reasoning_content":"Let me"}), Value::Null),
        chunk(json!({"reasoning":" think."}), Value::Null),
        chunk(json!({"content":"Hi"}), Value::Null),
        chunk(json!({}), json!("stop")),
        ev(None, &json!("[DONE]")),
    ];
    let mut raw = openai;
    raw.pop();
    let mut p = Parser::new();
    p.push(b"data: [DONE]\n\n");
    raw.push(p.next_event().unwrap());
    let out = run(&mut OpenaiToAnthropicStream::new("claude-x"), &raw);
    let kinds: Vec<String> = out
        .iter()
        .map(|e| {
            let data: Value = serde_json::from_str(&e.data).unwrap();
            match data["delta"]["type"].as_str() {
                Some(delta) => format!("{}:{delta}", e.event.as_deref().unwrap()),
                None => match data["content_block"]["type"].as_str() {
                    Some(block) => format!("{}:{block}", e.event.as_deref().unwrap()),
                    None => e.event.clone().unwrap(),
                },
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "content_block_start:thinking",
            "content_block_delta:thinking_delta",
            "content_block_delta:thinking_delta",
            "content_block_stop",
            "content_block_start:text",
            "content_block_delta:text_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
}
