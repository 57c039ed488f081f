//! OpenAI embeddings (`POST /v1/embeddings`): one JSON body with OpenAI's `usage`, never
//! streamed, the model in the body.

use serde_json::{Map, Value};

use crate::error::ErrorFormat;
use crate::wire::{chat, Framing, Protocol};

/// The embeddings API's facts: its bodies read as Chat Completions' do.
pub(crate) const PROTOCOL: Protocol = Protocol {
    framing: Framing::Sse,
    classify: chat::classify,
    body_usage: chat::body_usage,
    system_prefix: no_system_prompt,
    stream_error: chat::stream_error,
    error_format: ErrorFormat::OpenAi,
};

/// Embeddings have no system prompt (and a `request` adaptation applies to generation only).
fn no_system_prompt(_: &mut Map<String, Value>, _: &str) {}
