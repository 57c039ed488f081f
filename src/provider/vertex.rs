//! Gemini on Vertex AI: generateContent under a project and region, Google credentials
//! (or an express-mode key in `x-goog-api-key`).

use crate::provider::{gemini, generate_content_probe, no_error_names, Kind};

/// Vertex AI's facts.
pub const KIND: Kind = Kind {
    genai_name: "gcp.vertex_ai",
    key_header: ("x-goog-api-key", false),
    // Gemini's paths, under the project and region `Endpoint::vertex` carries.
    endpoint: gemini::endpoint,
    required_header: None,
    foreign_headers: &["anthropic-version", "anthropic-beta"],
    error_outcome: no_error_names,
    probe: generate_content_probe,
};
