//! Anthropic Messages request → Bedrock Converse request. Converse is Messages-shaped
//! (alternating turns of content blocks, a separate system, `toolUse` / `toolResult`),
//! so this is a block-for-block mapping; Chat and Responses calls reach it through the
//! Chat → Messages converter (the hub's neighbour), never through one of their own.
//!
//! Invariants of what Bedrock accepts: roles alternate (same-role turns merged, empty
//! ones dropped); no blank text block is ever sent (an assistant turn of tool calls only
//! has no `{"text": ""}`); `toolConfig` is present whenever the history holds tool use,
//! even when the app sent no tools this turn; the model is in the path, not the body.

use serde_json::{json, Map, Value};

use super::Unsupported;

/// What a tool result with no content says: Converse refuses an empty result.
const EMPTY_RESULT: &str = "(no output)";

/// Translates an Anthropic Messages body into a Converse body.
pub fn anthropic_to_converse_request(req: &Value) -> Result<Value, Unsupported> {
    let obj = req
        .as_object()
        .ok_or_else(|| Unsupported::new("request body is not a JSON object"))?;
    let mut out = Map::new();
    let system = system_blocks(obj.get("system"))?;
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Unsupported::new("messages is missing or not an array"))?;
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    let mut used_tools: Vec<String> = Vec::new();
    for message in messages {
        let role = match message.get("role").and_then(Value::as_str) {
            Some(role @ ("user" | "assistant")) => role,
            other => {
                return Err(Unsupported(format!(
                    "message role {other:?} has no Converse counterpart"
                )))
            }
        };
        let blocks = content_blocks(message.get("content"), &mut used_tools)?;
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if last == role => existing.extend(blocks),
            _ => turns.push((role.to_owned(), blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    out.insert("messages".into(), Value::Array(messages));
    let mut inference = Map::new();
    if let Some(max) = obj.get("max_tokens").and_then(Value::as_u64) {
        inference.insert("maxTokens".into(), json!(max));
    }
    if let Some(t) = obj.get("temperature").filter(|v| v.is_number()) {
        inference.insert("temperature".into(), t.clone());
    }
    if let Some(p) = obj.get("top_p").filter(|v| v.is_number()) {
        inference.insert("topP".into(), p.clone());
    }
    if let Some(stop) = obj.get("stop_sequences").and_then(Value::as_array) {
        if !stop.is_empty() {
            inference.insert("stopSequences".into(), Value::Array(stop.clone()));
        }
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(config) = tool_config(obj, &used_tools)? {
        out.insert("toolConfig".into(), config);
    }
    // Extended thinking is a model field on Bedrock, passed as the model takes it.
    if let Some(thinking) = obj.get("thinking").filter(|v| !v.is_null()) {
        out.insert(
            "additionalModelRequestFields".into(),
            json!({"thinking": thinking}),
        );
    }
    Ok(Value::Object(out))
}

fn system_blocks(system: Option<&Value>) -> Result<Vec<Value>, Unsupported> {
    let text = |t: &str| (!t.trim().is_empty()).then(|| json!({"text": t}));
    Ok(match system {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => text(s).into_iter().collect(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str).and_then(text))
            .collect(),
        Some(_) => return Err(Unsupported::new("system is neither text nor blocks")),
    })
}

/// The Converse blocks of one message's content, noting the tools its history uses.
fn content_blocks(
    content: Option<&Value>,
    used: &mut Vec<String>,
) -> Result<Vec<Value>, Unsupported> {
    let blocks = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(text)) => return Ok(text_block(text).into_iter().collect()),
        Some(Value::Array(blocks)) => blocks,
        Some(_) => {
            return Err(Unsupported::new(
                "message content is neither text nor blocks",
            ))
        }
    };
    let mut out = Vec::with_capacity(blocks.len());
    for block in blocks {
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "text" => out.extend(text_block(
                block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )),
            "image" => out.push(json!({"image": image(block)?})),
            "tool_use" => {
                let name = block
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !used.iter().any(|n| n == name) {
                    used.push(name.to_owned());
                }
                out.push(json!({"toolUse": {
                    "toolUseId": block.get("id").cloned().unwrap_or(Value::Null),
                    "name": name,
                    "input": block.get("input").cloned().unwrap_or_else(|| json!({})),
                }}));
            }
            "tool_result" => out.push(tool_result(block)?),
            "thinking" => out.push(json!({"reasoningContent": {"reasoningText": {
                "text": block.get("thinking").cloned().unwrap_or_else(|| json!("")),
                "signature": block.get("signature").cloned().unwrap_or(Value::Null),
            }}})),
            "redacted_thinking" => out.push(json!({"reasoningContent": {
                "redactedContent": block.get("data").cloned().unwrap_or_else(|| json!("")),
            }})),
            other => {
                return Err(Unsupported(format!(
                    "content block {other:?} cannot be translated to Converse"
                )))
            }
        }
    }
    Ok(out)
}

fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"text": text}))
}

/// An Anthropic base64 image source as a Converse image (Converse takes bytes or S3,
/// never a URL).
fn image(block: &Value) -> Result<Value, Unsupported> {
    let source = block.get("source").unwrap_or(&Value::Null);
    if source.get("type").and_then(Value::as_str) != Some("base64") {
        return Err(Unsupported::new(
            "image URLs cannot be sent to Converse (it takes the image's bytes)",
        ));
    }
    let format = match source.get("media_type").and_then(Value::as_str) {
        Some("image/png") => "png",
        Some("image/jpeg" | "image/jpg") => "jpeg",
        Some("image/gif") => "gif",
        Some("image/webp") => "webp",
        other => {
            return Err(Unsupported(format!(
                "image type {other:?} is not one Converse takes"
            )))
        }
    };
    Ok(
        json!({"format": format, "source": {"bytes": source.get("data").cloned().unwrap_or_else(|| json!(""))}}),
    )
}

fn tool_result(block: &Value) -> Result<Value, Unsupported> {
    let mut content = Vec::new();
    match block.get("content") {
        Some(Value::String(text)) => content.extend(text_block(text)),
        Some(Value::Array(parts)) => {
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => content.extend(text_block(
                        part.get("text").and_then(Value::as_str).unwrap_or_default(),
                    )),
                    Some("image") => content.push(json!({"image": image(part)?})),
                    other => {
                        return Err(Unsupported(format!(
                            "tool result part {other:?} cannot be translated to Converse"
                        )))
                    }
                }
            }
        }
        _ => {}
    }
    if content.is_empty() {
        content.push(json!({"text": EMPTY_RESULT}));
    }
    let mut result = json!({
        "toolUseId": block.get("tool_use_id").cloned().unwrap_or(Value::Null),
        "content": content,
    });
    if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        result["status"] = json!("error");
    }
    Ok(json!({"toolResult": result}))
}

/// `toolConfig`: the app's tools and choice, or — when it sent none but the history uses
/// tools — the used tools with an open schema, which Converse requires.
fn tool_config(obj: &Map<String, Value>, used: &[String]) -> Result<Option<Value>, Unsupported> {
    let mut specs = Vec::new();
    for tool in obj
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if tool
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "custom")
        {
            return Err(Unsupported(format!(
                "server tool {} has no Converse counterpart",
                tool.get("type").unwrap_or(&Value::Null)
            )));
        }
        let mut spec = json!({
            "name": tool.get("name").cloned().unwrap_or(Value::Null),
            "inputSchema": {"json": tool.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"}))},
        });
        if let Some(description) = tool
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            spec["description"] = json!(description);
        }
        specs.push(json!({"toolSpec": spec}));
    }
    let choice = match obj.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(choice) => match choice.get("type").and_then(Value::as_str) {
            Some("auto") => Some(json!({"auto": {}})),
            Some("any") => Some(json!({"any": {}})),
            Some("tool") => {
                Some(json!({"tool": {"name": choice.get("name").cloned().unwrap_or(Value::Null)}}))
            }
            Some("none") if specs.is_empty() && used.is_empty() => None,
            other => {
                return Err(Unsupported(format!(
                    "tool_choice {other:?} has no Converse counterpart"
                )))
            }
        },
    };
    if specs.is_empty() {
        specs = used
            .iter()
            .map(|name| json!({"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}}))
            .collect();
    }
    if specs.is_empty() {
        return Ok(None);
    }
    let mut config = json!({"tools": specs});
    if let Some(choice) = choice {
        config["toolChoice"] = choice;
    }
    Ok(Some(config))
}
