//! OpenAI Responses requests ⇄ Chat Completions requests (the hub): input items,
//! instructions, function tools, tool choice, structured output and parameters.
//!
//! Refused (the target is skipped): built-in tools, item references and
//! `previous_response_id` / `conversation` (the context lives with the provider that
//! stored it), `background`, prompt templates, file inputs. Dropped: reasoning items of
//! earlier turns (no Chat counterpart; the model reasons again), `store` (a translated
//! target stores nothing: docs/decisions.md), `include`, `truncation`.

use serde_json::{json, Map, Value};

use super::Unsupported;

/// Parameters with the same name and meaning in both APIs.
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

/// Fields that need context a translated target cannot have.
const REFUSED: [&str; 5] = [
    "previous_response_id",
    "conversation",
    "prompt",
    "background",
    "max_tool_calls",
];

/// A Responses request as a Chat Completions request for `target_model`.
pub fn responses_to_chat_request(req: &Value, target_model: &str) -> Result<Value, Unsupported> {
    let obj = req
        .as_object()
        .ok_or_else(|| Unsupported::new("the request is not a JSON object"))?;
    for field in REFUSED {
        if obj
            .get(field)
            .is_some_and(|v| !v.is_null() && v != &json!(false))
        {
            return Err(Unsupported::new(format!(
                "{field} needs a target that serves Responses"
            )));
        }
    }
    let mut messages = Vec::new();
    if let Some(instructions) = obj.get("instructions").and_then(Value::as_str) {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    match obj.get("input") {
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => {
            for item in items {
                input_item(item, &mut messages)?;
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => return Err(Unsupported::new("input is neither a string nor items")),
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(target_model));
    out.insert("messages".into(), Value::Array(messages));
    for key in SAME {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(max) = obj.get("max_output_tokens").and_then(Value::as_u64) {
        out.insert("max_completion_tokens".into(), json!(max));
    }
    if let Some(n) = obj.get("top_logprobs").and_then(Value::as_u64) {
        out.insert("logprobs".into(), json!(true));
        out.insert("top_logprobs".into(), json!(n));
    }
    if let Some(effort) = req.pointer("/reasoning/effort").filter(|v| !v.is_null()) {
        out.insert("reasoning_effort".into(), effort.clone());
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        if !tools.is_empty() {
            let tools: Result<Vec<_>, _> = tools.iter().map(tool).collect();
            out.insert("tools".into(), Value::Array(tools?));
        }
    }
    if let Some(choice) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        out.insert("tool_choice".into(), tool_choice(choice)?);
    }
    if let Some(text) = obj.get("text").filter(|v| v.is_object()) {
        if let Some(format) = response_format(text.get("format"))? {
            out.insert("response_format".into(), format);
        }
        if let Some(verbosity) = text.get("verbosity").filter(|v| !v.is_null()) {
            out.insert("verbosity".into(), verbosity.clone());
        }
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), json!(true));
        // `response.completed` must carry usage.
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(out))
}

fn input_item(item: &Value, messages: &mut Vec<Value>) -> Result<(), Unsupported> {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    match kind {
        "message" => messages.push(message(item)?),
        "function_call" => {
            let call = json!({
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            });
            // Parallel calls are consecutive items; Chat keeps them on one message.
            match messages.last_mut() {
                Some(last)
                    if last["role"] == "assistant"
                        && (last["tool_calls"].is_array() || last.get("tool_calls").is_none()) =>
                {
                    match last["tool_calls"].as_array_mut() {
                        Some(calls) => calls.push(call),
                        None => last["tool_calls"] = json!([call]),
                    }
                }
                _ => messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let output = match &item["output"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => texts(parts)?,
                Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => {
                    return Err(Unsupported::new("function_call_output has no output"))
                }
            };
            messages
                .push(json!({"role": "tool", "tool_call_id": item["call_id"], "content": output}));
        }
        "reasoning" => {}
        other => {
            return Err(Unsupported::new(format!(
                "input item {other:?} needs a target that serves Responses"
            )))
        }
    }
    Ok(())
}

fn message(item: &Value) -> Result<Value, Unsupported> {
    let role = item["role"].as_str().unwrap_or("user");
    let content = match &item["content"] {
        Value::String(s) => json!(s),
        Value::Array(parts) if role == "assistant" => json!(texts(parts)?),
        Value::Array(parts) => Value::Array(parts.iter().map(user_part).collect::<Result<_, _>>()?),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => {
            return Err(Unsupported::new("a message without content"))
        }
    };
    Ok(json!({"role": role, "content": content}))
}

/// The text of content parts that can only be text (assistant turns, tool output).
fn texts(parts: &[Value]) -> Result<String, Unsupported> {
    parts
        .iter()
        .map(|p| match p["type"].as_str() {
            Some("input_text" | "output_text" | "text" | "refusal") => Ok(p
                .get("text")
                .or(p.get("refusal"))
                .and_then(Value::as_str)
                .unwrap_or("")),
            other => Err(Unsupported::new(format!(
                "content part {other:?} where only text fits"
            ))),
        })
        .collect()
}

fn user_part(part: &Value) -> Result<Value, Unsupported> {
    match part["type"].as_str() {
        Some("input_text" | "output_text") => Ok(json!({"type": "text", "text": part["text"]})),
        Some("input_image") if part["image_url"].is_string() => {
            let mut image = json!({"url": part["image_url"]});
            if let Some(detail) = part.get("detail").filter(|d| !d.is_null()) {
                image["detail"] = detail.clone();
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        other => Err(Unsupported::new(format!(
            "content part {other:?} needs a target that serves Responses"
        ))),
    }
}

fn tool(tool: &Value) -> Result<Value, Unsupported> {
    if tool["type"] != "function" {
        return Err(Unsupported::new(format!(
            "tool type {} needs a target that serves Responses",
            tool["type"]
        )));
    }
    let mut function = Map::new();
    for key in ["name", "description", "parameters", "strict"] {
        if let Some(v) = tool.get(key).filter(|v| !v.is_null()) {
            function.insert(key.into(), v.clone());
        }
    }
    Ok(json!({"type": "function", "function": function}))
}

fn tool_choice(choice: &Value) -> Result<Value, Unsupported> {
    match choice {
        Value::String(_) => Ok(choice.clone()),
        Value::Object(_) if choice["type"] == "function" => {
            Ok(json!({"type": "function", "function": {"name": choice["name"]}}))
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_) => {
            Err(Unsupported::new(format!("tool_choice {choice}")))
        }
    }
}

fn response_format(format: Option<&Value>) -> Result<Option<Value>, Unsupported> {
    let Some(format) = format.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format["type"].as_str() {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "description", "schema", "strict"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.into(), v.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        _ => Err(Unsupported::new(format!("text.format {format}"))),
    }
}
