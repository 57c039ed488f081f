//! Applies a target's `request` adaptation (DESIGN §3) to a generation call already in
//! the target's own wire, so the placement follows that wire whichever dialect the app
//! spoke: OpenAI puts the prefix in the first `system`/`developer` message, Anthropic in
//! a new first `system` block (the app's blocks, `cache_control` included, kept after it).

use serde_json::{json, Map, Value};

use crate::policy::request::RequestSpec;
use crate::policy::spec::ApiKind;

/// Changes `body` (a request object in `wire`) as `spec` says.
pub fn apply(body: &mut Value, wire: ApiKind, spec: &RequestSpec) {
    let Some(object) = body.as_object_mut() else {
        return;
    };
    if let Some(prefix) = &spec.system_prefix {
        match wire {
            ApiKind::Anthropic => prefix_anthropic(object, prefix),
            ApiKind::Openai | ApiKind::AzureOpenai => prefix_openai(object, prefix),
            ApiKind::Gemini | ApiKind::Vertex => prefix_gemini(object, prefix),
            ApiKind::Bedrock => prefix_converse(object, prefix),
        }
    }
    for (key, value) in &spec.params {
        if value.is_null() {
            object.remove(key);
        } else {
            object.insert(key.clone(), value.clone());
        }
    }
}

/// Joins `prefix` before the first text part of `systemInstruction` with a blank line, or
/// creates the instruction.
fn prefix_gemini(object: &mut Map<String, Value>, prefix: &str) {
    let instruction = object
        .entry("systemInstruction")
        .or_insert_with(|| json!({"parts": []}));
    let Some(parts) = instruction.get_mut("parts").and_then(Value::as_array_mut) else {
        *instruction = json!({"parts": [{"text": prefix}]});
        return;
    };
    match parts.iter_mut().find_map(|p| match p.get_mut("text") {
        Some(Value::String(text)) => Some(text),
        _ => None,
    }) {
        Some(text) => *text = format!("{prefix}\n\n{text}"),
        None => parts.insert(0, json!({"text": prefix})),
    }
}

/// A new first Converse `system` block holding `prefix` (the blocks after it kept).
fn prefix_converse(object: &mut Map<String, Value>, prefix: &str) {
    let system = object
        .entry("system")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(blocks) = system.as_array_mut() {
        blocks.insert(0, json!({"text": prefix}));
    }
}

/// Joins `prefix` before the first system or developer message's text with a blank line,
/// or starts the conversation with a system message holding it.
fn prefix_openai(object: &mut Map<String, Value>, prefix: &str) {
    let Some(messages) = object.get_mut("messages").and_then(Value::as_array_mut) else {
        return;
    };
    let first_system = messages.iter_mut().find(|m| {
        matches!(
            m.get("role").and_then(Value::as_str),
            Some("system" | "developer")
        )
    });
    let Some(message) = first_system else {
        messages.insert(0, json!({"role": "system", "content": prefix}));
        return;
    };
    match message.get_mut("content") {
        Some(Value::String(text)) if !text.is_empty() => *text = format!("{prefix}\n\n{text}"),
        Some(Value::Array(parts)) => {
            let first_text = parts
                .iter_mut()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .find_map(|p| match p.get_mut("text") {
                    Some(Value::String(text)) => Some(text),
                    _ => None,
                });
            match first_text {
                Some(text) => *text = format!("{prefix}\n\n{text}"),
                None => parts.insert(0, json!({"type": "text", "text": prefix})),
            }
        }
        _ => message["content"] = Value::from(prefix),
    }
}

/// Puts `prefix` in a new first `system` text block; a string system prompt becomes a
/// block after it, and the app's own blocks keep their `cache_control` (a cache
/// breakpoint on them still covers the same text, now with the prefix before it).
fn prefix_anthropic(object: &mut Map<String, Value>, prefix: &str) {
    let block = json!({"type": "text", "text": prefix});
    let blocks = match object.remove("system") {
        Some(Value::Array(mut blocks)) => {
            blocks.insert(0, block);
            blocks
        }
        Some(Value::String(text)) if !text.is_empty() => {
            vec![block, json!({"type": "text", "text": text})]
        }
        _ => vec![block],
    };
    object.insert("system".to_owned(), Value::Array(blocks));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(prefix: &str, params: Value) -> RequestSpec {
        RequestSpec {
            system_prefix: Some(prefix.to_owned()),
            params: serde_json::from_value(params).unwrap(),
        }
    }

    fn adapted(mut body: Value, wire: ApiKind, spec: &RequestSpec) -> Value {
        apply(&mut body, wire, spec);
        body
    }

    #[test]
    fn openai_prefix_joins_the_first_system_or_developer_message() {
        let s = spec("P", json!({}));
        let body = json!({"messages": [
            {"role": "user", "content": "u"},
            {"role": "developer", "content": "D"},
            {"role": "system", "content": "S"},
        ]});
        let out = adapted(body, ApiKind::Openai, &s);
        assert_eq!(out["messages"][1]["content"], "P\n\nD");
        assert_eq!(out["messages"][2]["content"], "S");
        let parts = json!({"messages": [{"role": "system", "content": [
            {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "S"}]}]});
        let out = adapted(parts, ApiKind::AzureOpenai, &s);
        assert_eq!(out["messages"][0]["content"][1]["text"], "P\n\nS");
    }

    #[test]
    fn openai_prefix_creates_a_system_message_when_absent() {
        let body = json!({"messages": [{"role": "user", "content": "u"}]});
        let out = adapted(body, ApiKind::Openai, &spec("P", json!({})));
        assert_eq!(
            out["messages"][0],
            json!({"role": "system", "content": "P"})
        );
        assert_eq!(out["messages"][1]["role"], "user");
    }

    #[test]
    fn anthropic_prefix_is_a_new_first_block_keeping_the_apps_cache_control() {
        let s = spec("P", json!({}));
        let cached = json!({"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}});
        let out = adapted(json!({"system": [cached.clone()]}), ApiKind::Anthropic, &s);
        assert_eq!(
            out["system"],
            json!([{"type": "text", "text": "P"}, cached])
        );
        let out = adapted(json!({"system": "S"}), ApiKind::Anthropic, &s);
        assert_eq!(
            out["system"],
            json!([{"type": "text", "text": "P"}, {"type": "text", "text": "S"}])
        );
        let out = adapted(json!({}), ApiKind::Anthropic, &s);
        assert_eq!(out["system"], json!([{"type": "text", "text": "P"}]));
    }

    #[test]
    fn params_set_fields_and_null_removes_them() {
        let s = RequestSpec {
            system_prefix: None,
            params: serde_json::from_value(
                json!({"temperature": 0.2, "top_p": null, "response_format": {"type": "json_object"}}),
            )
            .unwrap(),
        };
        let out = adapted(
            json!({"model": "m", "top_p": 0.9, "temperature": 1}),
            ApiKind::Openai,
            &s,
        );
        assert_eq!(
            out,
            json!({"model": "m", "temperature": 0.2, "response_format": {"type": "json_object"}})
        );
    }
}
