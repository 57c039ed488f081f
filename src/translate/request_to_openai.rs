//! Anthropic Messages request → OpenAI Chat Completions request.
//!
//! Invariant: `tool_result` blocks become `tool` messages placed before the rest of their
//! user turn (OpenAI wants them right after the assistant's tool calls), and every
//! Anthropic feature either maps or makes the translation [`Unsupported`].

use serde_json::{json, Map, Value};

use super::Unsupported;

/// OpenAI accepts at most this many stop sequences.
const OPENAI_MAX_STOP: usize = 4;

/// Request fields whose meaning OpenAI cannot reproduce.
const UNSUPPORTED_FIELDS: &[&str] = &["container", "mcp_servers"];

/// Translates an Anthropic Messages body into an OpenAI Chat Completions body for
/// `target_model`. A streaming request asks for the usage chunk, so the translated stream
/// can report usage the way Anthropic always does.
pub fn anthropic_to_openai_request(req: &Value, target_model: &str) -> Result<Value, Unsupported> {
    let obj = req
        .as_object()
        .ok_or_else(|| Unsupported::new("request body is not a JSON object"))?;
    for field in UNSUPPORTED_FIELDS {
        if obj.get(*field).is_some_and(|v| !v.is_null()) {
            return Err(Unsupported(format!(
                "{field} cannot be translated to openai"
            )));
        }
    }

    let mut out = Map::new();
    out.insert("model".into(), json!(target_model));
    let mut messages = Vec::new();
    let system = system_text(obj.get("system"))?;
    if !system.is_empty() {
        messages.push(json!({ "role": "system", "content": system }));
    }
    for msg in obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Unsupported::new("messages is missing or not an array"))?
    {
        convert_message(msg, &mut messages)?;
    }
    out.insert("messages".into(), Value::Array(messages));

    if let Some(max) = obj.get("max_tokens").and_then(Value::as_u64) {
        out.insert("max_completion_tokens".into(), json!(max));
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = obj.get(key).filter(|v| v.is_number()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stop) = obj.get("stop_sequences").and_then(Value::as_array) {
        if stop.len() > OPENAI_MAX_STOP {
            return Err(Unsupported(format!(
                "more than {OPENAI_MAX_STOP} stop sequences cannot be translated to openai"
            )));
        }
        if !stop.is_empty() {
            out.insert("stop".into(), Value::Array(stop.clone()));
        }
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        if !tools.is_empty() {
            out.insert("tools".into(), convert_tools(tools)?);
        }
    }
    if let Some(choice) = obj.get("tool_choice").filter(|c| !c.is_null()) {
        let (choice, parallel) = convert_tool_choice(choice)?;
        out.insert("tool_choice".into(), choice);
        if !parallel {
            out.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    if let Some(user) = req.pointer("/metadata/user_id").and_then(Value::as_str) {
        out.insert("user".into(), json!(user));
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), json!(true));
        out.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    Ok(Value::Object(out))
}

/// Anthropic has no embeddings API: an embeddings call never goes to an Anthropic target.
pub fn embeddings_to_anthropic(_req: &Value) -> Result<Value, Unsupported> {
    Err(Unsupported::new("anthropic has no embeddings API"))
}

/// `system` as a string or text blocks.
fn system_text(system: Option<&Value>) -> Result<String, Unsupported> {
    match system {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => texts(blocks, "system").map(|t| t.join("\n\n")),
        Some(_) => Err(Unsupported::new("system is neither text nor blocks")),
    }
}

/// The texts of text-only blocks; `what` names the place for the refusal reason.
fn texts<'a>(blocks: &'a [Value], what: &str) -> Result<Vec<&'a str>, Unsupported> {
    blocks
        .iter()
        .map(|b| match b.get("type").and_then(Value::as_str) {
            Some("text") => Ok(b.get("text").and_then(Value::as_str).unwrap_or_default()),
            other => Err(Unsupported(format!(
                "{other:?} blocks in {what} cannot be translated to openai"
            ))),
        })
        .collect()
}

fn convert_message(msg: &Value, out: &mut Vec<Value>) -> Result<(), Unsupported> {
    let role = msg.get("role").and_then(Value::as_str).unwrap_or_default();
    let blocks = match msg.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({ "role": role, "content": s }));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(Unsupported::new(
                "message content is neither text nor blocks",
            ))
        }
    };
    match role {
        "user" => convert_user(blocks, out),
        "assistant" => convert_assistant(blocks, out),
        other => Err(Unsupported(format!(
            "{other:?} messages cannot be translated to openai"
        ))),
    }
}

fn convert_user(blocks: &[Value], out: &mut Vec<Value>) -> Result<(), Unsupported> {
    let mut parts = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(json!({
                "type": "text",
                "text": block.get("text").and_then(Value::as_str).unwrap_or_default(),
            })),
            Some("image") => parts.push(image_part(block)?),
            Some("tool_result") => out.push(tool_message(block)?),
            other => {
                return Err(Unsupported(format!(
                    "{other:?} blocks cannot be translated to openai"
                )))
            }
        }
    }
    let content = match parts.as_slice() {
        [] => return Ok(()),
        [only] if only["type"] == "text" => only["text"].clone(),
        _ => Value::Array(parts),
    };
    out.push(json!({ "role": "user", "content": content }));
    Ok(())
}

fn image_part(block: &Value) -> Result<Value, Unsupported> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            source
                .get("data")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ),
        Some("url") => source
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        other => {
            return Err(Unsupported(format!(
                "{other:?} image sources cannot be translated to openai"
            )))
        }
    };
    Ok(json!({ "type": "image_url", "image_url": { "url": url } }))
}

/// A `tool_result` as a `tool` message; OpenAI has no error flag, so an error result says
/// so in its text.
fn tool_message(block: &Value) -> Result<Value, Unsupported> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| Unsupported::new("tool_result without tool_use_id"))?;
    let mut text = match block.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => texts(blocks, "tool results")?.concat(),
        Some(_) => {
            return Err(Unsupported::new(
                "tool_result content is neither text nor blocks",
            ))
        }
    };
    if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        text.insert_str(0, "Error: ");
    }
    Ok(json!({ "role": "tool", "tool_call_id": id, "content": text }))
}

fn convert_assistant(blocks: &[Value], out: &mut Vec<Value>) -> Result<(), Unsupported> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(
                block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ),
            Some("tool_use") => calls.push(json!({
                "id": block.get("id").and_then(Value::as_str).unwrap_or_default(),
                "type": "function",
                "function": {
                    "name": block.get("name").and_then(Value::as_str).unwrap_or_default(),
                    "arguments": block.get("input").unwrap_or(&json!({})).to_string(),
                },
            })),
            // Earlier reasoning is the model's own scratchpad: OpenAI cannot take it back
            // and the answer does not depend on replaying it.
            Some("thinking" | "redacted_thinking") => {}
            other => {
                return Err(Unsupported(format!(
                    "assistant {other:?} blocks cannot be translated to openai"
                )))
            }
        }
    }
    let mut msg = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) },
    });
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    out.push(msg);
    Ok(())
}

fn convert_tools(tools: &[Value]) -> Result<Value, Unsupported> {
    tools
        .iter()
        .map(|tool| {
            // Client tools have no `type` (or `custom`); anything else is a server tool
            // (web search, code execution, computer use) that only Anthropic runs.
            if let Some(kind) = tool.get("type").and_then(Value::as_str) {
                if kind != "custom" {
                    return Err(Unsupported(format!(
                        "server tool {kind:?} cannot be translated to openai"
                    )));
                }
            }
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Unsupported::new("tool without a name"))?;
            let mut function = Map::new();
            function.insert("name".into(), json!(name));
            if let Some(d) = tool.get("description").and_then(Value::as_str) {
                function.insert("description".into(), json!(d));
            }
            function.insert(
                "parameters".into(),
                tool.get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({})),
            );
            Ok(json!({ "type": "function", "function": function }))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// Anthropic `tool_choice` → OpenAI `tool_choice` and whether parallel calls are allowed.
fn convert_tool_choice(choice: &Value) -> Result<(Value, bool), Unsupported> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        != Some(true);
    let out = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("none") => json!("none"),
        Some("any") => json!("required"),
        Some("tool") => {
            let name = choice
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Unsupported::new("tool_choice tool without a name"))?;
            json!({ "type": "function", "function": { "name": name } })
        }
        other => {
            return Err(Unsupported(format!(
                "tool_choice {other:?} cannot be translated to openai"
            )))
        }
    };
    Ok((out, parallel))
}
