//! `targets[].request`: a per-target adaptation of generation calls (a system prompt
//! prefix, top-level parameters set or removed), its wire type and its validation. The
//! proxy applies it (`proxy/adapt.rs`); this file only says what may be written.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::validate::{path_key, FieldError};

/// Top-level fields `params` may not touch: routing (`model`), framing (`stream`) and the
/// conversation itself belong to the app and the sidecar; `systemPrefix` is the one way to
/// change the system prompt.
pub const RESERVED_PARAMS: [&str; 5] = ["model", "stream", "messages", "input", "system"];

/// How a generation call is changed for one target only (prompt variants per model).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestSpec {
    /// Joined before the system prompt with a blank line (a system prompt is created when
    /// the call has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prefix: Option<String>,
    /// Top-level fields of the target's request body to set; `null` removes the field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "any_object")]
    pub params: BTreeMap<String, Value>,
}

/// `params` in the CRD: an object of any fields, which the API server keeps as written
/// (a structural schema cannot say "any value" any other way).
fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "Top-level fields of the target's request body to set; `null` removes the field.",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

impl RequestSpec {
    /// Every problem with this adaptation, at `at` (`routes[0].targets[1].request`).
    pub fn validate(&self, at: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self
            .system_prefix
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            errors.push(FieldError::new(
                format!("{at}.systemPrefix"),
                "must not be empty (omit it to keep the system prompt as the app sent it)",
            ));
        }
        for key in self.params.keys() {
            if RESERVED_PARAMS.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    format!("{at}.params.{}", path_key(key)),
                    format!(
                        "{key:?} may not be set per target ({} belong to the app's call; \
                         use systemPrefix for the system prompt)",
                        RESERVED_PARAMS.join(", ")
                    ),
                ));
            }
        }
        if self.system_prefix.is_none() && self.params.is_empty() {
            errors.push(FieldError::new(
                at,
                "names neither systemPrefix nor params (omit it to send the app's call unchanged)",
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> RequestSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn reserved_params_and_empty_prefixes_are_refused_with_their_paths() {
        let errors = spec("{systemPrefix: ' ', params: {model: x, stream: true, temperature: 0.2, messages: [], input: null, system: s}}")
            .validate("routes[0].targets[1].request");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "routes[0].targets[1].request.systemPrefix",
                "routes[0].targets[1].request.params.input",
                "routes[0].targets[1].request.params.messages",
                "routes[0].targets[1].request.params.model",
                "routes[0].targets[1].request.params.stream",
                "routes[0].targets[1].request.params.system",
            ]
        );
        assert!(errors[1].message.contains("systemPrefix"));
    }

    #[test]
    fn a_prefix_params_with_nulls_are_accepted_and_an_empty_request_is_not() {
        let ok = spec("{systemPrefix: Answer in JSON., params: {temperature: 0.2, top_p: null}}");
        assert_eq!(ok.validate("r"), []);
        assert_eq!(ok.params["top_p"], Value::Null);
        assert_eq!(spec("{}").validate("r")[0].path, "r");
    }
}
