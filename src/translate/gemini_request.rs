//! OpenAI Chat Completions request (the hub) → Gemini generateContent request, so every
//! inbound dialect reaches Gemini and Vertex AI through one converter.
//!
//! Invariants: `contents` alternate `user` and `model` turns (consecutive turns of one
//! role merge, so parallel function results travel together as Gemini requires); a tool
//! result is answered by the name of the call it answers (Gemini calls carry no ids: the
//! hub's ids are the sidecar's, see `gemini_signatures.rs`); only fields Gemini knows are
//! sent (it refuses unknown ones); whatever has no Gemini form is [`Unsupported`].

use serde_json::{json, Map, Value};

use super::gemini_schema::gemini_schema;
use super::gemini_signatures;
use super::Unsupported;

/// Request fields whose meaning Gemini's generateContent cannot reproduce here.
const UNSUPPORTED_FIELDS: &[&str] = &[
    "audio",
    "functions",
    "function_call",
    "web_search_options",
    "prediction",
];

/// Translates a Chat Completions body into a generateContent body for a Gemini target;
/// `target` names the target (provider and model) so that thought signatures it issued
/// go back to it and to no other.
pub fn chat_to_gemini_request(req: &Value, target: u64, model: &str) -> Result<Value, Unsupported> {
    let obj = req
        .as_object()
        .ok_or_else(|| Unsupported::new("request body is not a JSON object"))?;
    check_unsupported(obj)?;
    let (system, contents) = convert_messages(obj.get("messages"), target, model)?;
    let mut out = Map::new();
    if contents.is_empty() {
        return Err(Unsupported::new(
            "a Gemini request needs at least one message",
        ));
    }
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        let parts: Vec<Value> = system.into_iter().map(|t| json!({ "text": t })).collect();
        out.insert("systemInstruction".into(), json!({ "parts": parts }));
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        if !tools.is_empty() {
            out.insert("tools".into(), convert_tools(tools)?);
        }
    }
    if let Some(choice) = obj.get("tool_choice").filter(|v| !v.is_null()) {
        out.insert("toolConfig".into(), convert_tool_choice(choice)?);
    }
    let config = generation_config(obj)?;
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(out))
}

fn check_unsupported(obj: &Map<String, Value>) -> Result<(), Unsupported> {
    if obj.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(Unsupported::new("n > 1 cannot be translated to gemini"));
    }
    if obj.get("logprobs").and_then(Value::as_bool) == Some(true)
        || obj.get("top_logprobs").is_some_and(|v| !v.is_null())
    {
        return Err(Unsupported::new("logprobs cannot be translated to gemini"));
    }
    if obj
        .get("modalities")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|x| x != "text"))
    {
        return Err(Unsupported::new(
            "non-text modalities cannot be translated to gemini",
        ));
    }
    if obj
        .get("logit_bias")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return Err(Unsupported::new(
            "logit_bias cannot be translated to gemini",
        ));
    }
    for field in UNSUPPORTED_FIELDS {
        if obj.get(*field).is_some_and(|v| !v.is_null()) {
            return Err(Unsupported(format!(
                "{field} cannot be translated to gemini"
            )));
        }
    }
    Ok(())
}

/// Sampling and output settings; hints without a Gemini counterpart (`user`, `store`,
/// `service_tier`, `reasoning_effort`, `parallel_tool_calls`...) are dropped.
fn generation_config(obj: &Map<String, Value>) -> Result<Map<String, Value>, Unsupported> {
    let mut config = Map::new();
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = obj.get(from).filter(|v| v.is_number()) {
            config.insert(to.into(), v.clone());
        }
    }
    if let Some(max) = obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
        .filter(|v| v.is_number())
    {
        config.insert("maxOutputTokens".into(), max.clone());
    }
    match obj.get("stop") {
        Some(Value::String(stop)) => {
            config.insert("stopSequences".into(), json!([stop]));
        }
        Some(Value::Array(stops)) if !stops.is_empty() => {
            config.insert("stopSequences".into(), Value::Array(stops.clone()));
        }
        _ => {}
    }
    let format = obj.get("response_format").filter(|v| !v.is_null());
    match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        None | Some("text") => {}
        Some("json_object") => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            config.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = format.and_then(|f| f.pointer("/json_schema/schema")) {
                config.insert("responseSchema".into(), gemini_schema(schema)?);
            }
        }
        Some(other) => {
            return Err(Unsupported(format!(
                "response_format {other} cannot be translated to gemini"
            )))
        }
    }
    Ok(config)
}

/// Splits Chat messages into system texts and Gemini contents.
fn convert_messages(
    messages: Option<&Value>,
    target: u64,
    model: &str,
) -> Result<(Vec<String>, Vec<Value>), Unsupported> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or_else(|| Unsupported::new("messages must be an array"))?;
    // Gemini answers a call by its function's name: find each call id's name.
    let mut names: Vec<(&str, &str)> = Vec::new();
    for msg in messages {
        for call in msg
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(id), Some(name)) = (
                call.get("id").and_then(Value::as_str),
                call.pointer("/function/name").and_then(Value::as_str),
            ) {
                names.push((id, name));
            }
        }
    }
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    for msg in messages {
        let role = msg.get("role").and_then(Value::as_str).unwrap_or("");
        let (role, parts) = match role {
            "system" | "developer" => {
                let text = text_of(msg.get("content"))?;
                if !text.is_empty() {
                    system.push(text);
                }
                continue;
            }
            "user" => ("user", user_parts(msg.get("content"))?),
            "assistant" => ("model", model_parts(msg, target, model)?),
            "tool" => ("user", vec![function_response(msg, &names)?]),
            other => {
                return Err(Unsupported(format!(
                    "message role {other:?} cannot be translated to gemini"
                )))
            }
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(existing) = last["parts"].as_array_mut() {
                    existing.extend(parts);
                }
            }
            _ => contents.push(json!({ "role": role, "parts": parts })),
        }
    }
    Ok((system, contents))
}

/// The text of a system or tool message (a string or text parts).
fn text_of(content: Option<&Value>) -> Result<String, Unsupported> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::new();
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        out.push(part.get("text").and_then(Value::as_str).unwrap_or(""))
                    }
                    _ => {
                        return Err(Unsupported::new(
                            "only text can go in this message for gemini",
                        ))
                    }
                }
            }
            Ok(out.join("\n"))
        }
        Some(_) => Err(Unsupported::new(
            "message content must be a string or parts",
        )),
    }
}

fn user_parts(content: Option<&Value>) -> Result<Vec<Value>, Unsupported> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![json!({ "text": text })]),
        Some(Value::Array(parts)) => parts.iter().map(user_part).collect(),
        Some(_) => Err(Unsupported::new(
            "message content must be a string or parts",
        )),
    }
}

fn user_part(part: &Value) -> Result<Value, Unsupported> {
    match part.get("type").and_then(Value::as_str) {
        Some("text") => {
            Ok(json!({ "text": part.get("text").and_then(Value::as_str).unwrap_or("") }))
        }
        Some("image_url") => {
            let url = part
                .pointer("/image_url/url")
                .and_then(Value::as_str)
                .unwrap_or("");
            inline_data(url).ok_or_else(|| {
                Unsupported::new("gemini takes images inline (data: URLs), not by http URL")
            })
        }
        Some("input_audio") => {
            let data = part.pointer("/input_audio/data").and_then(Value::as_str);
            let format = part.pointer("/input_audio/format").and_then(Value::as_str);
            match (data, format) {
                (Some(data), Some(format)) => Ok(json!({
                    "inlineData": { "mimeType": format!("audio/{format}"), "data": data }
                })),
                _ => Err(Unsupported::new("input_audio needs data and format")),
            }
        }
        Some("file") => part
            .pointer("/file/file_data")
            .and_then(Value::as_str)
            .and_then(inline_data)
            .ok_or_else(|| Unsupported::new("gemini takes files inline (file_data), not by id")),
        other => Err(Unsupported(format!(
            "content part {} cannot be translated to gemini",
            other.unwrap_or("without a type")
        ))),
    }
}

/// `data:MIME;base64,DATA` → an `inlineData` part.
fn inline_data(url: &str) -> Option<Value> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some(json!({ "inlineData": { "mimeType": mime, "data": data } }))
}

/// An assistant message as Gemini `model` parts: text, then function calls carrying the
/// thought signature this same target issued (a call from elsewhere gets none).
fn model_parts(msg: &Value, target: u64, model: &str) -> Result<Vec<Value>, Unsupported> {
    let mut parts = Vec::new();
    let text = match msg.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => p.get("text").and_then(Value::as_str),
                Some("refusal") => p.get("refusal").and_then(Value::as_str),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(""),
        Some(_) => {
            return Err(Unsupported::new(
                "message content must be a string or parts",
            ))
        }
    };
    if !text.is_empty() {
        parts.push(json!({ "text": text }));
    }
    for call in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if call
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function")
            != "function"
        {
            return Err(Unsupported::new(
                "only function tool calls can go to gemini",
            ));
        }
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .ok_or_else(|| Unsupported::new("a tool call without a name"))?;
        let arguments = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        let args: Value = if arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments)
                .map_err(|_| Unsupported::new("tool call arguments are not JSON"))?
        };
        let mut part = json!({ "functionCall": { "name": name, "args": args } });
        let id = call.get("id").and_then(Value::as_str).unwrap_or("");
        if let Some(signature) = gemini_signatures::signature_for(id, target, model) {
            part["thoughtSignature"] = json!(signature);
        }
        parts.push(part);
    }
    Ok(parts)
}

/// A tool message as a `functionResponse`: the result object as the tool sent it, or its
/// text under `result`.
fn function_response(msg: &Value, names: &[(&str, &str)]) -> Result<Value, Unsupported> {
    let id = msg
        .get("tool_call_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = names
        .iter()
        .find(|(call, _)| *call == id)
        .map(|(_, name)| *name)
        .ok_or_else(|| {
            Unsupported::new("a tool result answers no tool call of the conversation")
        })?;
    let text = text_of(msg.get("content"))?;
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ => json!({ "result": text }),
    };
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}

fn convert_tools(tools: &[Value]) -> Result<Value, Unsupported> {
    let mut declarations = Vec::new();
    for tool in tools {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(Unsupported::new("only function tools can go to gemini"));
        }
        let function = tool.get("function").unwrap_or(&Value::Null);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Unsupported::new("a function tool without a name"))?;
        let mut declaration = json!({ "name": name });
        if let Some(description) = function.get("description").and_then(Value::as_str) {
            declaration["description"] = json!(description);
        }
        if let Some(parameters) = function.get("parameters").filter(|p| !p.is_null()) {
            let schema = gemini_schema(parameters)?;
            // A function without parameters leaves them out: Gemini refuses an object
            // schema with no properties.
            if schema
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty())
            {
                declaration["parameters"] = schema;
            }
        }
        declarations.push(declaration);
    }
    Ok(json!([{ "functionDeclarations": declarations }]))
}

fn convert_tool_choice(choice: &Value) -> Result<Value, Unsupported> {
    let config = match choice {
        Value::String(mode) => match mode.as_str() {
            "none" => json!({ "mode": "NONE" }),
            "auto" => json!({ "mode": "AUTO" }),
            "required" => json!({ "mode": "ANY" }),
            other => return Err(Unsupported(format!("tool_choice {other:?} is unknown"))),
        },
        Value::Object(_) => match choice.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
            None => return Err(Unsupported::new("tool_choice names no function")),
        },
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Array(_) => {
            return Err(Unsupported::new(
                "tool_choice must be a string or an object",
            ))
        }
    };
    Ok(json!({ "functionCallingConfig": config }))
}
