//! Table-driven tests of the request mappings in both directions.

use serde_json::{json, Value};

use super::*;

fn to_anthropic(req: Value) -> Value {
    openai_to_anthropic_request(&req, "claude-x", 4096).expect("translatable")
}

fn to_openai(req: Value) -> Value {
    anthropic_to_openai_request(&req, "gpt-x").expect("translatable")
}

#[test]
fn openai_requests_map_field_by_field() {
    let m = |msgs: Value| json!({ "model": "gpt-4o", "messages": msgs });
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "system and developer join into system",
            m(
                json!([{"role":"system","content":"a"},{"role":"developer","content":[{"type":"text","text":"b"}]},{"role":"user","content":"hi"}]),
            ),
            "/system",
            json!("a\n\nb"),
        ),
        (
            "consecutive user turns merge",
            m(json!([{"role":"user","content":"a"},{"role":"user","content":"b"}])),
            "/messages",
            json!([{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]),
        ),
        (
            "images: data URL and http URL",
            m(json!([{"role":"user","content":[
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}},
                {"type":"image_url","image_url":{"url":"https://x.test/a.jpg"}}]}])),
            "/messages/0/content",
            json!([
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},
                {"type":"image","source":{"type":"url","url":"https://x.test/a.jpg"}}]),
        ),
        (
            "assistant tool calls become tool_use, tool messages tool_result",
            m(json!([
                {"role":"user","content":"weather?"},
                {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"w","arguments":"{\"city\":\"Oslo\"}"}}]},
                {"role":"tool","tool_call_id":"call_1","content":"cold"}])),
            "/messages",
            json!([
                {"role":"user","content":[{"type":"text","text":"weather?"}]},
                {"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"w","input":{"city":"Oslo"}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"cold"}]}]),
        ),
        (
            "max_tokens defaults",
            m(json!([])),
            "/max_tokens",
            json!(4096),
        ),
        (
            "max_completion_tokens wins",
            json!({"messages":[],"max_tokens":5,"max_completion_tokens":7}),
            "/max_tokens",
            json!(7),
        ),
        (
            "temperature clamps",
            json!({"messages":[],"temperature":1.7}),
            "/temperature",
            json!(1.0),
        ),
        (
            "stop string",
            json!({"messages":[],"stop":"END"}),
            "/stop_sequences",
            json!(["END"]),
        ),
        (
            "user",
            json!({"messages":[],"user":"u1"}),
            "/metadata",
            json!({"user_id":"u1"}),
        ),
        (
            "stream",
            json!({"messages":[],"stream":true,"stream_options":{"include_usage":true}}),
            "/stream",
            json!(true),
        ),
        (
            "tools",
            json!({"messages":[],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}]}),
            "/tools",
            json!([{"name":"f","description":"d","input_schema":{"type":"object"}}]),
        ),
        (
            "tool_choice auto",
            json!({"messages":[],"tool_choice":"auto"}),
            "/tool_choice",
            json!({"type":"auto"}),
        ),
        (
            "tool_choice none",
            json!({"messages":[],"tool_choice":"none"}),
            "/tool_choice",
            json!({"type":"none"}),
        ),
        (
            "tool_choice required",
            json!({"messages":[],"tool_choice":"required"}),
            "/tool_choice",
            json!({"type":"any"}),
        ),
        (
            "tool_choice named, no parallel calls",
            json!({"messages":[],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}),
            "/tool_choice",
            json!({"type":"tool","name":"f","disable_parallel_tool_use":true}),
        ),
        (
            "model is the target's",
            json!({"model":"gpt-4o","messages":[]}),
            "/model",
            json!("claude-x"),
        ),
    ];
    for (name, input, pointer, want) in cases {
        let out = to_anthropic(input);
        assert_eq!(out.pointer(pointer), Some(&want), "{name}: {out}");
    }
}

#[test]
fn response_format_becomes_a_system_instruction() {
    let out = to_anthropic(json!({
        "messages": [{"role":"system","content":"be brief"}],
        "response_format": {"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},
    }));
    let system = out["system"].as_str().expect("system text");
    assert!(system.starts_with("be brief\n\n"));
    assert!(system.contains(r#"{"type":"object"}"#));
    let out = to_anthropic(json!({"messages":[],"response_format":{"type":"json_object"}}));
    assert!(out["system"]
        .as_str()
        .expect("system")
        .contains("JSON object"));
}

#[test]
fn untranslatable_openai_requests_are_unsupported() {
    let cases = [
        json!({"messages":[],"n":2}),
        json!({"messages":[],"logprobs":true}),
        json!({"messages":[],"modalities":["text","audio"],"audio":{"voice":"x"}}),
        json!({"messages":[],"logit_bias":{"50256":-100}}),
        json!({"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}),
        json!({"messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"not json"}}]}]}),
        json!({"messages":[],"tools":[{"type":"web_search"}]}),
        json!({"messages":[{"role":"function","name":"f","content":"x"}]}),
    ];
    for req in cases {
        let err = openai_to_anthropic_request(&req, "c", 10).expect_err(&req.to_string());
        assert!(err.0.contains("anthropic"), "{err}");
    }
    assert!(embeddings_to_anthropic(&json!({"input":"x"})).is_err());
}

#[test]
fn anthropic_requests_map_field_by_field() {
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "system blocks become a system message",
            json!({"system":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"messages":[]}),
            "/messages",
            json!([{"role":"system","content":"a\n\nb"}]),
        ),
        (
            "tool_use becomes tool_calls, tool_result a tool message before the user text",
            json!({"messages":[
                {"role":"assistant","content":[{"type":"text","text":"let me see"},{"type":"tool_use","id":"t1","name":"w","input":{"city":"Oslo"}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"cold"}]},{"type":"text","text":"thanks"}]}]}),
            "/messages",
            json!([
                {"role":"assistant","content":"let me see","tool_calls":[{"id":"t1","type":"function","function":{"name":"w","arguments":"{\"city\":\"Oslo\"}"}}]},
                {"role":"tool","tool_call_id":"t1","content":"cold"},
                {"role":"user","content":"thanks"}]),
        ),
        (
            "error results say so",
            json!({"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"boom","is_error":true}]}]}),
            "/messages/0/content",
            json!("Error: boom"),
        ),
        (
            "images become image_url parts",
            json!({"messages":[{"role":"user","content":[
                {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"QQ=="}},
                {"type":"image","source":{"type":"url","url":"https://x.test/i.png"}}]}]}),
            "/messages/0/content",
            json!([
                {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,QQ=="}},
                {"type":"image_url","image_url":{"url":"https://x.test/i.png"}}]),
        ),
        (
            "max_tokens",
            json!({"messages":[],"max_tokens":9}),
            "/max_completion_tokens",
            json!(9),
        ),
        (
            "stop_sequences",
            json!({"messages":[],"stop_sequences":["a","b"]}),
            "/stop",
            json!(["a", "b"]),
        ),
        (
            "user",
            json!({"messages":[],"metadata":{"user_id":"u"}}),
            "/user",
            json!("u"),
        ),
        (
            "stream asks for usage",
            json!({"messages":[],"stream":true}),
            "/stream_options",
            json!({"include_usage":true}),
        ),
        (
            "tools",
            json!({"messages":[],"tools":[{"name":"f","description":"d","input_schema":{"type":"object"}}]}),
            "/tools",
            json!([{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}]),
        ),
        (
            "tool_choice any",
            json!({"messages":[],"tool_choice":{"type":"any"}}),
            "/tool_choice",
            json!("required"),
        ),
        (
            "tool_choice none",
            json!({"messages":[],"tool_choice":{"type":"none"}}),
            "/tool_choice",
            json!("none"),
        ),
        (
            "tool_choice tool",
            json!({"messages":[],"tool_choice":{"type":"tool","name":"f"}}),
            "/tool_choice",
            json!({"type":"function","function":{"name":"f"}}),
        ),
        (
            "disable_parallel_tool_use",
            json!({"messages":[],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}),
            "/parallel_tool_calls",
            json!(false),
        ),
    ];
    for (name, input, pointer, want) in cases {
        let out = to_openai(input);
        assert_eq!(out.pointer(pointer), Some(&want), "{name}: {out}");
    }
}

#[test]
fn untranslatable_anthropic_requests_are_unsupported() {
    let cases = [
        json!({"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}),
        json!({"messages":[],"stop_sequences":["a","b","c","d","e"]}),
        json!({"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}),
        json!({"messages":[],"mcp_servers":[{"url":"https://x.test"}]}),
    ];
    for req in cases {
        let err = anthropic_to_openai_request(&req, "g").expect_err(&req.to_string());
        assert!(err.0.contains("openai"), "{err}");
    }
}
