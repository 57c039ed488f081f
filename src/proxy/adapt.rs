//! Applies a target's `request` adaptation (DESIGN §3) to a generation call already in
//! the target's own wire, so the placement follows that wire whichever dialect the app
//! spoke (each wire's `system_prefix`): Chat Completions in the first `system`/`developer`
//! message, Messages in a new first `system` block (the app's blocks, `cache_control`
//! included, kept after it), Responses before its `instructions`.

use serde_json::Value;

use crate::policy::request::RequestSpec;
use crate::policy::spec::Wire;
use crate::wire;

/// Changes `body` (a request object in `wire`) as `spec` says.
pub fn apply(body: &mut Value, wire: Wire, spec: &RequestSpec) {
    let Some(object) = body.as_object_mut() else {
        return;
    };
    if let Some(prefix) = &spec.system_prefix {
        (wire::of(wire).system_prefix)(object, prefix);
    }
    for (key, value) in &spec.params {
        if value.is_null() {
            object.remove(key);
        } else {
            object.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(prefix: &str, params: Value) -> RequestSpec {
        RequestSpec {
            system_prefix: Some(prefix.to_owned()),
            params: serde_json::from_value(params).unwrap(),
        }
    }

    fn adapted(mut body: Value, wire: Wire, spec: &RequestSpec) -> Value {
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
        let out = adapted(body, Wire::Chat, &s);
        assert_eq!(out["messages"][1]["content"], "P\n\nD");
        assert_eq!(out["messages"][2]["content"], "S");
        let parts = json!({"messages": [{"role": "system", "content": [
            {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "S"}]}]});
        let out = adapted(parts, Wire::Chat, &s);
        assert_eq!(out["messages"][0]["content"][1]["text"], "P\n\nS");
    }

    #[test]
    fn openai_prefix_creates_a_system_message_when_absent() {
        let body = json!({"messages": [{"role": "user", "content": "u"}]});
        let out = adapted(body, Wire::Chat, &spec("P", json!({})));
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
        let out = adapted(json!({"system": [cached.clone()]}), Wire::Messages, &s);
        assert_eq!(
            out["system"],
            json!([{"type": "text", "text": "P"}, cached])
        );
        let out = adapted(json!({"system": "S"}), Wire::Messages, &s);
        assert_eq!(
            out["system"],
            json!([{"type": "text", "text": "P"}, {"type": "text", "text": "S"}])
        );
        let out = adapted(json!({}), Wire::Messages, &s);
        assert_eq!(out["system"], json!([{"type": "text", "text": "P"}]));
    }

    #[test]
    fn responses_prefix_goes_before_the_instructions() {
        let s = spec("P", json!({}));
        let out = adapted(
            json!({"instructions": "I", "input": "u"}),
            Wire::Responses,
            &s,
        );
        assert_eq!(out["instructions"], "P\n\nI");
        let out = adapted(json!({"input": "u"}), Wire::Responses, &s);
        assert_eq!(out["instructions"], "P");
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
            Wire::Chat,
            &s,
        );
        assert_eq!(
            out,
            json!({"model": "m", "temperature": 0.2, "response_format": {"type": "json_object"}})
        );
    }
}
