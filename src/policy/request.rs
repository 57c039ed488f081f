//! `targets[].request`: a per-target adaptation of generation calls (a system prompt
//! prefix, top-level parameters set or removed) and its wire type. Validation is in
//! `validate/request.rs`; the proxy applies it (`proxy/adapt.rs`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
