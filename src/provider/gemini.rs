//! Google's Gemini API: generateContent at `{base}/v1beta/models/{model}:...`, keys in
//! `x-goog-api-key`; `RetryInfo` and quota details are read by `classify/google.rs`.

use crate::provider::{generate_content_probe, google, no_error_names, Endpoint, Kind};

/// Gemini's facts.
pub const KIND: Kind = Kind {
    genai_name: "gcp.gemini",
    key_header: ("x-goog-api-key", false),
    endpoint,
    required_header: None,
    foreign_headers: &["anthropic-version", "anthropic-beta"],
    error_outcome: no_error_names,
    probe: generate_content_probe,
};

/// `{base}/v1beta/models/{model}:...`, or Vertex AI's project path when it has one.
pub(super) fn endpoint(call: &Endpoint<'_>) -> String {
    format!(
        "{}{}",
        call.base,
        google::model_path(call.vertex, call.model, call.stream)
    )
}
