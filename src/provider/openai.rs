//! OpenAI and OpenAI-compatible servers (vLLM, TGI, Groq, DeepSeek...): `Bearer` keys,
//! `{base}/chat/completions`, `/embeddings`, `/responses`.

use crate::provider::{chat_probe, no_error_names, openai_suffix, Endpoint, Kind};

/// OpenAI's facts.
pub const KIND: Kind = Kind {
    genai_name: "openai",
    key_header: ("authorization", true),
    endpoint,
    required_header: None,
    foreign_headers: &["anthropic-version", "anthropic-beta"],
    error_outcome: no_error_names,
    probe: chat_probe,
};

fn endpoint(call: &Endpoint<'_>) -> String {
    format!("{}/{}", call.base, openai_suffix(call.wire))
}
