//! OpenAI embeddings (`POST /v1/embeddings`): one JSON body with OpenAI's `usage`, never
//! streamed, the model in the body.

use crate::error::ErrorFormat;
use crate::wire::{chat, Framing, Protocol};

/// The embeddings API's facts: its bodies read as Chat Completions' do.
pub(crate) const PROTOCOL: Protocol = Protocol {
    framing: Framing::Sse,
    classify: chat::classify,
    body_usage: chat::body_usage,
    stream_error: chat::stream_error,
    error_format: ErrorFormat::OpenAi,
};
