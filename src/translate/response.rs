//! Non-streaming response bodies: Anthropic message ⇄ OpenAI chat completion.
//!
//! Invariant: content, tool calls, the stop reason, usage and the upstream's id and model
//! all survive; token counts keep their meaning (OpenAI's prompt tokens include cached
//! tokens, Anthropic's input tokens do not).

use serde_json::{json, Map, Value};

use super::{finish_reason_from_anthropic, stop_reason_from_openai, unix_now};

/// Translates an Anthropic message body into an OpenAI chat completion. The model shown is
/// the one the target reports, `requested_model` only when it reports none.
pub fn anthropic_to_openai_response(resp: &Value, requested_model: &str) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in resp
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(str_at(block, "text")),
            Some("thinking") => reasoning.push_str(str_at(block, "thinking")),
            Some("tool_use") => calls.push(openai_tool_call(
                str_at(block, "id"),
                str_at(block, "name"),
                &block.get("input").unwrap_or(&json!({})).to_string(),
            )),
            _ => {}
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) },
        "refusal": null,
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        // The field OpenAI-compatible reasoning servers (DeepSeek, Qwen, vLLM) use.
        message["reasoning_content"] = json!(reasoning);
    }
    let finish = resp
        .get("stop_reason")
        .and_then(Value::as_str)
        .map_or("stop", finish_reason_from_anthropic);
    json!({
        "id": str_at(resp, "id"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model_or(resp, requested_model),
        "choices": [{ "index": 0, "message": message, "finish_reason": finish, "logprobs": null }],
        "usage": openai_usage(resp.get("usage").unwrap_or(&Value::Null)),
    })
}

/// Translates an OpenAI chat completion body into an Anthropic message. The model shown is
/// the one the target reports, `requested_model` only when it reports none.
pub fn openai_to_anthropic_response(resp: &Value, requested_model: &str) -> Value {
    let choice = resp.pointer("/choices/0").unwrap_or(&Value::Null);
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    if let Some(reasoning) = reasoning_text(message) {
        // No signature: the reasoning did not come from Anthropic (docs/decisions.md, "Reasoning across vendors").
        content.push(json!({ "type": "thinking", "thinking": reasoning, "signature": "" }));
    }
    for key in ["content", "refusal"] {
        if let Some(text) = message.get(key).and_then(Value::as_str) {
            if !text.is_empty() {
                content.push(json!({ "type": "text", "text": text }));
            }
        }
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or_default();
        content.push(json!({
            "type": "tool_use",
            "id": str_at(call, "id"),
            "name": call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default(),
            "input": tool_input(args),
        }));
    }
    let stop = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map_or("end_turn", stop_reason_from_openai);
    json!({
        "id": str_at(resp, "id"),
        "type": "message",
        "role": "assistant",
        "model": model_or(resp, requested_model),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": anthropic_usage(resp.get("usage").unwrap_or(&Value::Null)),
    })
}

/// The reasoning an OpenAI-compatible message or delta carries, under either of the
/// names servers use (`reasoning_content`: DeepSeek, Qwen, vLLM; `reasoning`: OpenRouter,
/// Grok, Ollama).
pub(super) fn reasoning_text(message: &Value) -> Option<&str> {
    ["reasoning_content", "reasoning"]
        .iter()
        .find_map(|key| message.get(*key).and_then(Value::as_str))
        .filter(|text| !text.is_empty())
}

/// An OpenAI tool call object.
pub(super) fn openai_tool_call(id: &str, name: &str, arguments: &str) -> Value {
    json!({ "id": id, "type": "function", "function": { "name": name, "arguments": arguments } })
}

/// A tool call's argument string as Anthropic `input`, which must be an object. A model
/// that produced malformed arguments still gets its call through, with the raw text kept
/// under `arguments` so the app can see what came back.
pub(super) fn tool_input(args: &str) -> Value {
    if args.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v) if v.is_object() => v,
        _ => {
            tracing::warn!("tool call arguments are not a JSON object; kept as raw text");
            json!({ "arguments": args })
        }
    }
}

/// Anthropic usage → OpenAI usage; prompt tokens include cache reads and writes.
pub(super) fn openai_usage(usage: &Value) -> Value {
    let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cache_read = n("cache_read_input_tokens");
    let prompt = n("input_tokens") + cache_read + n("cache_creation_input_tokens");
    let completion = n("output_tokens");
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": { "cached_tokens": cache_read },
    })
}

/// OpenAI usage → Anthropic usage; cached prompt tokens move to `cache_read_input_tokens`.
pub(super) fn anthropic_usage(usage: &Value) -> Value {
    let prompt = usage
        .get("prompt_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let cached = usage
        .pointer("/prompt_tokens_details/cached_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut out = Map::new();
    out.insert("input_tokens".into(), json!(prompt.saturating_sub(cached)));
    out.insert(
        "output_tokens".into(),
        json!(usage
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0)),
    );
    if cached > 0 {
        out.insert("cache_read_input_tokens".into(), json!(cached));
    }
    Value::Object(out)
}

pub(super) fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn model_or<'a>(v: &'a Value, requested_model: &'a str) -> &'a str {
    v.get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or(requested_model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_message_becomes_a_chat_completion() {
        let resp = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Oslo"}},
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2},
        });
        let out = anthropic_to_openai_response(&resp, "gpt-4o");
        assert_eq!(out["object"], "chat.completion");
        assert_eq!(
            (&out["id"], &out["model"]),
            (&json!("msg_1"), &json!("claude-x"))
        );
        let choice = &out["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], "Let me check.");
        assert_eq!(choice["message"]["reasoning_content"], "hmm");
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "w");
        assert_eq!(call["id"], "toolu_1");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city": "Oslo"}));
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20, "prompt_tokens_details": {"cached_tokens": 3}})
        );
    }

    #[test]
    fn openai_compatible_reasoning_becomes_a_thinking_block_first() {
        for field in ["reasoning_content", "reasoning"] {
            let resp = json!({
                "id": "c", "model": "deepseek-r1",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": "42", field: "Let me think."}}],
            });
            let out = openai_to_anthropic_response(&resp, "claude-x");
            assert_eq!(
                out["content"],
                json!([
                    {"type": "thinking", "thinking": "Let me think.", "signature": ""},
                    {"type": "text", "text": "42"},
                ]),
                "{field}"
            );
        }
    }

    #[test]
    fn chat_completion_becomes_an_anthropic_message() {
        let resp = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Sure.",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "v", "arguments": "oops"}},
                ]}}],
            "usage": {"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20, "prompt_tokens_details": {"cached_tokens": 3}},
        });
        let out = openai_to_anthropic_response(&resp, "claude-x");
        assert_eq!(
            (&out["type"], &out["role"]),
            (&json!("message"), &json!("assistant"))
        );
        assert_eq!(
            (&out["id"], &out["model"]),
            (&json!("chatcmpl-1"), &json!("gpt-4o-2024"))
        );
        assert_eq!(
            out["content"],
            json!([
                {"type": "text", "text": "Sure."},
                {"type": "tool_use", "id": "call_1", "name": "w", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "call_2", "name": "v", "input": {"arguments": "oops"}},
            ])
        );
        assert_eq!(out["stop_reason"], "tool_use");
        assert_eq!(
            out["usage"],
            json!({"input_tokens": 12, "output_tokens": 5, "cache_read_input_tokens": 3})
        );
    }

    #[test]
    fn stop_reasons_map_both_ways() {
        let pairs = [
            ("end_turn", "stop", "end_turn"),
            ("stop_sequence", "stop", "end_turn"),
            ("max_tokens", "length", "max_tokens"),
            ("tool_use", "tool_calls", "tool_use"),
            ("refusal", "content_filter", "refusal"),
        ];
        for (anthropic, openai, back) in pairs {
            let out = anthropic_to_openai_response(
                &json!({"stop_reason": anthropic, "content": []}),
                "m",
            );
            assert_eq!(out["choices"][0]["finish_reason"], openai, "{anthropic}");
            let out = openai_to_anthropic_response(
                &json!({"choices": [{"message": {"content": "x"}, "finish_reason": openai}]}),
                "m",
            );
            assert_eq!(out["stop_reason"], back, "{openai}");
            assert_eq!(out["model"], "m", "no upstream model: the requested one");
        }
    }
}
