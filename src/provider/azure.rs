//! Azure OpenAI: deployments in the path, `api-version` in the query, keys in `api-key`.
//! Its Responses API takes the deployment in the body's `model`, not the path.

use crate::policy::spec::Wire;
use crate::provider::{chat_probe, no_error_names, openai_suffix, Endpoint, Kind};

/// Azure OpenAI's facts.
pub const KIND: Kind = Kind {
    genai_name: "azure.ai.openai",
    key_header: ("api-key", false),
    endpoint,
    required_header: None,
    foreign_headers: &["anthropic-version", "anthropic-beta"],
    error_outcome: no_error_names,
    probe: chat_probe,
};

fn endpoint(call: &Endpoint<'_>) -> String {
    let (base, version) = (call.base, call.api_version);
    match call.wire {
        Wire::Responses => format!("{base}/openai/responses?api-version={version}"),
        Wire::Chat | Wire::Embeddings | Wire::Messages | Wire::GenerateContent | Wire::Converse => {
            format!(
                "{base}/openai/deployments/{}/{}?api-version={version}",
                call.model,
                openai_suffix(call.wire),
            )
        }
    }
}
