//! The provider kinds (`policy::spec::ApiKind`), one module each, with each kind's facts
//! in one [`Kind`] table: its `gen_ai.provider.name`, where its API key goes, its
//! upstream endpoint for a call, the headers its API needs, the failure signals its
//! error bodies name beyond the status, and the smallest call a probe makes. [`of`] is
//! the one exhaustive match on the kind in the request path: a new provider is a new
//! module and one arm here. (Which wires a kind serves and how its policy fields
//! validate are the policy's own facts, in `policy/`.)
//!
//! Google's hosts, paths and credentials, shared by Gemini and Vertex AI, are in
//! `google/`. This module imports only the leaves below it (`classify`, `operation`,
//! `policy`, `log_limit`), so the policy compiler, telemetry and the proxy all use it.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod gemini;
pub mod google;
pub mod openai;
pub mod vertex;

use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::classify::{CooldownLimits, Outcome};
use crate::operation::Operation;
use crate::policy::spec::{ApiKind, Wire};

/// A provider kind's facts, as the proxy, the probes and telemetry read them.
pub struct Kind {
    /// `gen_ai.provider.name`, as the OpenTelemetry GenAI registry names it.
    pub genai_name: &'static str,
    /// The header an API key goes in, and whether as `Bearer <key>`.
    pub key_header: (&'static str, bool),
    /// The upstream URL of one call.
    pub endpoint: fn(&Endpoint<'_>) -> String,
    /// A header its API requires, with the value sent when the app set none.
    pub required_header: Option<(&'static str, &'static str)>,
    /// Headers of another vendor's SDK it must not get.
    pub foreign_headers: &'static [&'static str],
    /// A verdict its error body or headers name beyond the status (Bedrock's exception
    /// names), when they name one; otherwise the status and standard headers decide.
    pub error_outcome: fn(&HeaderMap, &[u8], StatusCode, CooldownLimits) -> Option<Outcome>,
    /// The smallest call it answers (one word in, one token out), for active probes: the
    /// operation, the wire it is sent in, and the body for `model`.
    pub probe: fn(&str) -> (Operation, Wire, Value),
}

/// What the endpoint of one call depends on.
pub struct Endpoint<'a> {
    /// The provider's base URL, without a trailing `/`.
    pub base: &'a str,
    /// `apiVersion` (Azure), empty when unset.
    pub api_version: &'a str,
    /// Vertex AI's project and region.
    pub vertex: Option<(&'a str, &'a str)>,
    /// The inbound operation.
    pub operation: Operation,
    /// The wire the target is spoken to in.
    pub wire: Wire,
    /// The target model, percent-encoded as one path segment.
    pub model: &'a str,
    /// Whether the call streams.
    pub stream: bool,
}

/// The facts of a provider kind: the one match on the kind.
pub fn of(api: ApiKind) -> &'static Kind {
    match api {
        ApiKind::Openai => &openai::KIND,
        ApiKind::AzureOpenai => &azure::KIND,
        ApiKind::Anthropic => &anthropic::KIND,
        ApiKind::Gemini => &gemini::KIND,
        ApiKind::Vertex => &vertex::KIND,
        ApiKind::Bedrock => &bedrock::KIND,
    }
}

/// For kinds whose errors the status and standard headers say everything about.
fn no_error_names(_: &HeaderMap, _: &[u8], _: StatusCode, _: CooldownLimits) -> Option<Outcome> {
    None
}

/// The OpenAI-shaped probe (OpenAI and Azure).
fn chat_probe(model: &str) -> (Operation, Wire, Value) {
    let messages = serde_json::json!([{"role": "user", "content": "ping"}]);
    (
        Operation::Chat,
        Wire::Chat,
        serde_json::json!({"model": model, "max_completion_tokens": 1, "messages": messages}),
    )
}

/// The generateContent probe (Gemini and Vertex AI); the model is in the path.
fn generate_content_probe(_model: &str) -> (Operation, Wire, Value) {
    (
        Operation::Chat,
        Wire::GenerateContent,
        serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "ping"}]}], "generationConfig": {"maxOutputTokens": 1}}),
    )
}

/// The path of a wire under an OpenAI-shaped base URL; Messages and Converse never reach
/// one (a call is translated to Chat first), so they name the Chat path.
fn openai_suffix(wire: Wire) -> &'static str {
    match wire {
        Wire::Embeddings => "embeddings",
        Wire::Responses => "responses",
        Wire::Chat | Wire::Messages | Wire::GenerateContent | Wire::Converse => "chat/completions",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ApiKind; 6] = [
        ApiKind::Openai,
        ApiKind::AzureOpenai,
        ApiKind::Anthropic,
        ApiKind::Gemini,
        ApiKind::Vertex,
        ApiKind::Bedrock,
    ];

    fn endpoint(api: ApiKind, wire: Wire, stream: bool) -> String {
        (of(api).endpoint)(&Endpoint {
            base: "https://h",
            api_version: "2024-10-21",
            vertex: (api == ApiKind::Vertex).then_some(("p", "us-central1")),
            operation: Operation::Chat,
            wire,
            model: "m",
            stream,
        })
    }

    #[test]
    fn every_kind_has_its_endpoint_and_probe() {
        let expected = [
            "https://h/chat/completions",
            "https://h/openai/deployments/m/chat/completions?api-version=2024-10-21",
            "https://h/v1/messages",
            "https://h/v1beta/models/m:streamGenerateContent?alt=sse",
            "https://h/v1/projects/p/locations/us-central1/publishers/google/models/m:streamGenerateContent?alt=sse",
            "https://h/model/m/converse-stream",
        ];
        for (api, expected) in ALL.into_iter().zip(expected) {
            let (_, wire, _) = (of(api).probe)("m");
            assert_eq!(endpoint(api, wire, true), expected, "{api:?}");
        }
        assert_eq!(
            endpoint(ApiKind::AzureOpenai, Wire::Responses, false),
            "https://h/openai/responses?api-version=2024-10-21"
        );
        assert_eq!(
            endpoint(ApiKind::Openai, Wire::Embeddings, false),
            "https://h/embeddings"
        );
    }

    #[test]
    fn genai_names_are_the_registry_s() {
        let names: Vec<_> = ALL.iter().map(|&api| of(api).genai_name).collect();
        assert_eq!(
            names,
            [
                "openai",
                "azure.ai.openai",
                "anthropic",
                "gcp.gemini",
                "gcp.vertex_ai",
                "aws.bedrock"
            ]
        );
    }
}
