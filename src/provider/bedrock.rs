//! Amazon Bedrock: Converse and ConverseStream at `{base}/model/{id}/converse[-stream]`,
//! SigV4-signed for the provider's region (`proxy::outbound::seal`) or a `Bearer` API
//! key; throttles and overloads named by exception (`classify::bedrock`).

use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::classify::{bedrock, CooldownLimits, Outcome};
use crate::operation::Operation;
use crate::policy::spec::Wire;
use crate::provider::{Endpoint, Kind};

/// Bedrock's facts.
pub const KIND: Kind = Kind {
    genai_name: "aws.bedrock",
    // A Bedrock API key is a bearer token.
    key_header: ("authorization", true),
    endpoint,
    required_header: None,
    foreign_headers: &["anthropic-version", "anthropic-beta"],
    error_outcome,
    probe,
};

/// The model id (often an inference profile or an ARN, with `:` and `/`) is one
/// percent-encoded segment; SigV4 encodes the path once more when it signs.
fn endpoint(call: &Endpoint<'_>) -> String {
    let method = if call.stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!("{}/model/{}/{method}", call.base, call.model)
}

fn error_outcome(
    headers: &HeaderMap,
    body: &[u8],
    status: StatusCode,
    limits: CooldownLimits,
) -> Option<Outcome> {
    bedrock::error_name(headers, body).and_then(|name| bedrock::outcome(&name, status, limits))
}

/// The model is in the path.
fn probe(_model: &str) -> (Operation, Wire, Value) {
    (
        Operation::Chat,
        Wire::Converse,
        json!({"messages": [{"role": "user", "content": [{"text": "ping"}]}],
               "inferenceConfig": {"maxTokens": 1}}),
    )
}
