//! OpenAI Chat Completions request → Anthropic Messages request.
//!
//! Invariant: the result alternates user/assistant turns (consecutive same-role turns are
//! merged), always carries `max_tokens`, and every OpenAI feature either maps or makes
//! the translation [`Unsupported`].

use serde_json::{json, Map, Value};

use super::Unsupported;

/// Request fields whose meaning Anthropic cannot reproduce.
const UNSUPPORTED_FIELDS: &[&str] = &[
    "audio",
    "functions",
    "function_call",
    "web_search_options",
    "prediction",
];

/// Translates an OpenAI Chat Completions body into an Anthropic Messages body for
/// `target_model`; `default_max_tokens` (the route's `maxTokens`, else 4096) fills the
/// `max_tokens` Anthropic requires when the app gave none.
pub fn openai_to_anthropic_request(
    req: &Value,
    target_model: &str,
    default_max_tokens: u32,
) -> Result<Value, Unsupported> {
    let obj = req
        .as_object()
        .ok_or_else(|| Unsupported::new("request body is not a JSON object"))?;
    check_unsupported_params(obj)?;

    let mut out = Map::new();
    out.insert("model".into(), json!(target_model));
    let (mut system, messages) = convert_messages(obj.get("messages"))?;
    out.insert("messages".into(), Value::Array(messages));

    if let Some(instruction) = response_format_instruction(obj.get("response_format"))? {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str(&instruction);
    }
    if !system.is_empty() {
        out.insert("system".into(), json!(system));
    }

    let max_tokens = obj
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| obj.get("max_tokens").filter(|v| !v.is_null()))
        .and_then(Value::as_u64)
        .unwrap_or(u64::from(default_max_tokens));
    out.insert("max_tokens".into(), json!(max_tokens));

    if let Some(t) = obj.get("temperature").and_then(Value::as_f64) {
        // OpenAI accepts 0..=2, Anthropic 0..=1: above 1 is "as random as it gets".
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = obj.get("top_p").filter(|v| v.is_number()) {
        out.insert("top_p".into(), p.clone());
    }
    match obj.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        if !tools.is_empty() {
            out.insert("tools".into(), convert_tools(tools)?);
        }
    }
    let parallel = obj.get("parallel_tool_calls").and_then(Value::as_bool);
    if let Some(choice) = convert_tool_choice(obj.get("tool_choice"), parallel)? {
        out.insert("tool_choice".into(), choice);
    }
    if let Some(user) = obj.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({ "user_id": user }));
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), json!(true));
    }
    Ok(Value::Object(out))
}

fn check_unsupported_params(obj: &Map<String, Value>) -> Result<(), Unsupported> {
    if obj.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(Unsupported::new("n > 1 cannot be translated to anthropic"));
    }
    if obj.get("logprobs").and_then(Value::as_bool) == Some(true)
        || obj.get("top_logprobs").is_some_and(|v| !v.is_null())
    {
        return Err(Unsupported::new(
            "logprobs cannot be translated to anthropic",
        ));
    }
    if obj
        .get("modalities")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|x| x != "text"))
    {
        return Err(Unsupported::new(
            "non-text modalities cannot be translated to anthropic",
        ));
    }
    if obj
        .get("logit_bias")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return Err(Unsupported::new(
            "logit_bias cannot be translated to anthropic",
        ));
    }
    for field in UNSUPPORTED_FIELDS {
        if obj.get(*field).is_some_and(|v| !v.is_null()) {
            return Err(Unsupported(format!(
                "{field} cannot be translated to anthropic"
            )));
        }
    }
    Ok(())
}

/// Splits OpenAI messages into the Anthropic `system` text and alternating turns.
fn convert_messages(messages: Option<&Value>) -> Result<(String, Vec<Value>), Unsupported> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| Unsupported::new("messages is missing or not an array"))?;
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for msg in messages {
        let role = msg.get("role").and_then(Value::as_str).unwrap_or_default();
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.push(text_of(msg.get("content"))?);
                continue;
            }
            "user" => ("user", content_blocks(msg.get("content"))?),
            "assistant" => ("assistant", assistant_blocks(msg)?),
            "tool" => ("user", vec![tool_result_block(msg)?]),
            other => {
                return Err(Unsupported(format!(
                    "{other:?} messages cannot be translated to anthropic"
                )))
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, prev)) if *last == role => prev.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect();
    Ok((system.join("\n\n"), turns))
}

/// The text of a string or text-part-array content (system, developer, tool messages).
fn text_of(content: Option<&Value>) -> Result<String, Unsupported> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => Ok(p.get("text").and_then(Value::as_str).unwrap_or_default()),
                other => Err(Unsupported(format!(
                    "{other:?} parts cannot be translated to anthropic here"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|t| t.concat()),
        Some(_) => Err(Unsupported::new(
            "message content is neither text nor parts",
        )),
    }
}

/// User content (a string or parts) as Anthropic content blocks; empty text is dropped
/// because Anthropic rejects empty text blocks.
fn content_blocks(content: Option<&Value>) -> Result<Vec<Value>, Unsupported> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => return Ok(text_block(s).into_iter().collect()),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(Unsupported::new(
                "message content is neither text nor parts",
            ))
        }
    };
    let mut blocks = Vec::new();
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => blocks.extend(text_block(
                part.get("text").and_then(Value::as_str).unwrap_or_default(),
            )),
            Some("image_url") => blocks.push(image_block(part)?),
            other => {
                return Err(Unsupported(format!(
                    "{other:?} content parts cannot be translated to anthropic"
                )))
            }
        }
    }
    Ok(blocks)
}

fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({ "type": "text", "text": text }))
}

/// An `image_url` part (a base64 data URL or an http(s) URL) as an Anthropic image block.
fn image_block(part: &Value) -> Result<Value, Unsupported> {
    let url = part
        .pointer("/image_url/url")
        .and_then(Value::as_str)
        .ok_or_else(|| Unsupported::new("image_url part without a url"))?;
    if let Some(rest) = url.strip_prefix("data:") {
        let (media_type, data) = rest
            .split_once(";base64,")
            .ok_or_else(|| Unsupported::new("image data URL is not base64"))?;
        return Ok(json!({
            "type": "image",
            "source": { "type": "base64", "media_type": media_type, "data": data },
        }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({ "type": "image", "source": { "type": "url", "url": url } }));
    }
    Err(Unsupported::new(
        "image URL scheme cannot be translated to anthropic",
    ))
}

/// An assistant turn: its text (and refusal) then one `tool_use` block per tool call.
fn assistant_blocks(msg: &Value) -> Result<Vec<Value>, Unsupported> {
    let mut blocks = match msg.get("content") {
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::new();
            for part in parts {
                let text = match part.get("type").and_then(Value::as_str) {
                    Some("text") => part.get("text"),
                    Some("refusal") => part.get("refusal"),
                    other => {
                        return Err(Unsupported(format!(
                            "assistant {other:?} parts cannot be translated to anthropic"
                        )))
                    }
                };
                blocks.extend(text_block(text.and_then(Value::as_str).unwrap_or_default()));
            }
            blocks
        }
        other => content_blocks(other)?,
    };
    if msg.get("audio").is_some_and(|a| !a.is_null()) {
        return Err(Unsupported::new(
            "assistant audio cannot be translated to anthropic",
        ));
    }
    for call in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| Unsupported::new("tool call without a function name"))?;
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let input = if args.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str::<Value>(args)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| Unsupported::new("tool call arguments that are not a JSON object cannot be translated to anthropic"))?
        };
        blocks.push(json!({ "type": "tool_use", "id": id, "name": name, "input": input }));
    }
    Ok(blocks)
}

fn tool_result_block(msg: &Value) -> Result<Value, Unsupported> {
    let id = msg
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| Unsupported::new("tool message without tool_call_id"))?;
    Ok(json!({
        "type": "tool_result",
        "tool_use_id": id,
        "content": text_of(msg.get("content"))?,
    }))
}

/// `response_format` has no Anthropic parameter: JSON modes become a system instruction.
fn response_format_instruction(format: Option<&Value>) -> Result<Option<String>, Unsupported> {
    let Some(format) = format.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(
            "Respond only with a single valid JSON object, with no text before or after it."
                .to_owned(),
        )),
        Some("json_schema") => {
            let schema = format
                .pointer("/json_schema/schema")
                .cloned()
                .unwrap_or_else(|| json!({}));
            Ok(Some(format!(
                "Respond only with a single valid JSON value, with no text before or after \
                 it, that conforms to this JSON Schema: {schema}"
            )))
        }
        other => Err(Unsupported(format!(
            "response_format {other:?} cannot be translated to anthropic"
        ))),
    }
}

fn convert_tools(tools: &[Value]) -> Result<Value, Unsupported> {
    tools
        .iter()
        .map(|tool| {
            if tool.get("type").and_then(Value::as_str) != Some("function") {
                return Err(Unsupported::new(
                    "non-function tools cannot be translated to anthropic",
                ));
            }
            let f = tool.get("function").unwrap_or(&Value::Null);
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Unsupported::new("function tool without a name"))?;
            let mut out = Map::new();
            out.insert("name".into(), json!(name));
            if let Some(d) = f.get("description").and_then(Value::as_str) {
                out.insert("description".into(), json!(d));
            }
            let schema = f
                .get("parameters")
                .filter(|p| p.is_object())
                .cloned()
                .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
            out.insert("input_schema".into(), schema);
            Ok(Value::Object(out))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn convert_tool_choice(
    choice: Option<&Value>,
    parallel: Option<bool>,
) -> Result<Option<Value>, Unsupported> {
    let mut out = match choice {
        None | Some(Value::Null) => match parallel {
            Some(false) => json!({ "type": "auto" }),
            _ => return Ok(None),
        },
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({ "type": "auto" }),
            "none" => json!({ "type": "none" }),
            "required" => json!({ "type": "any" }),
            other => {
                return Err(Unsupported(format!(
                    "tool_choice {other:?} cannot be translated to anthropic"
                )))
            }
        },
        Some(obj) => {
            let name = obj
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| Unsupported::new("tool_choice object without a function name"))?;
            json!({ "type": "tool", "name": name })
        }
    };
    if parallel == Some(false) && out["type"] != "none" {
        out["disable_parallel_tool_use"] = json!(true);
    }
    Ok(Some(out))
}
