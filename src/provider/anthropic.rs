//! Anthropic: keys in `x-api-key`, an `anthropic-version` on every request,
//! `{base}/v1/messages` and `/v1/messages/count_tokens`.

use serde_json::{json, Value};

use crate::operation::Operation;
use crate::policy::spec::Wire;
use crate::provider::{no_error_names, Endpoint, Kind};

/// Anthropic's facts.
pub const KIND: Kind = Kind {
    genai_name: "anthropic",
    key_header: ("x-api-key", false),
    endpoint,
    required_header: Some(("anthropic-version", "2023-06-01")),
    foreign_headers: &[],
    error_outcome: no_error_names,
    probe,
};

fn endpoint(call: &Endpoint<'_>) -> String {
    match call.operation {
        Operation::CountTokens => format!("{}/v1/messages/count_tokens", call.base),
        Operation::Chat | Operation::Embeddings | Operation::Messages | Operation::Responses => {
            format!("{}/v1/messages", call.base)
        }
    }
}

fn probe(model: &str) -> (Operation, Wire, Value) {
    let messages = json!([{"role": "user", "content": "ping"}]);
    (
        Operation::Messages,
        Wire::Messages,
        json!({"model": model, "max_tokens": 1, "messages": messages}),
    )
}
