//! OpenAI Chat Completions ⇄ Anthropic Messages translation: requests, responses, SSE
//! streams and provider errors, so a chain can fail over across vendors unnoticed; and
//! OpenAI Responses → Chat Completions (the hub), which Responses → Anthropic composes
//! with rather than having a converter of its own; and the hub ⇄ Google generateContent
//! (`gemini_*`), which every inbound dialect reaches Gemini and Vertex AI through.
//! with rather than having a converter of its own. Bedrock Converse is Messages-shaped,
//! so it has one converter pair, to and from Messages, which Chat and Responses calls
//! reach through the ones above.
//!
//! Invariant: a translation is either faithful or refused. Whatever the target dialect
//! cannot express (`n > 1`, logprobs, audio, server tools, …) yields [`Unsupported`] with
//! the reason, and the proxy skips that target; nothing is silently dropped that would
//! change the answer. Pure sampling or caching hints with no counterpart (`seed`,
//! penalties, `top_k`, `cache_control`, image `detail`) are dropped.
//!
//! Model names: responses and stream chunks carry the model the target actually reports
//! (as providers do, and as the `x-switchyard-model` header says); the app's requested
//! model is used only when the upstream body names none.

mod converse_reply;
mod converse_request;
mod converse_stream;
mod error;
mod gemini_reply;
mod gemini_request;
mod gemini_schema;
mod gemini_signatures;
mod gemini_stream;
mod request_to_anthropic;
mod request_to_openai;
mod response;
mod responses_reply;
mod responses_request;
mod responses_stream;
mod responses_trail;
mod stream_to_anthropic;
mod stream_to_openai;

#[cfg(test)]
mod converse_tests;
#[cfg(test)]
mod gemini_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod request_tests;
#[cfg(test)]
mod responses_tests;
#[cfg(test)]
mod stream_tests;

pub use converse_reply::{converse_error_to_anthropic, converse_to_anthropic_response};
pub use converse_request::anthropic_to_converse_request;
pub use converse_stream::ConverseToAnthropicStream;
pub use error::{error_to_anthropic, error_to_openai};
pub use gemini_reply::{
    gemini_error_to_anthropic, gemini_error_to_openai, gemini_to_chat_response,
};
pub use gemini_request::chat_to_gemini_request;
pub use gemini_signatures::target_key as gemini_target_key;
pub use gemini_stream::GeminiToChatStream;
pub use request_to_anthropic::openai_to_anthropic_request;
pub use request_to_openai::{anthropic_to_openai_request, embeddings_to_anthropic};
pub use response::{anthropic_to_openai_response, openai_to_anthropic_response};
pub use responses_reply::chat_to_responses_response;
pub use responses_request::responses_to_chat_request;
pub use responses_stream::{Chained, ChatToResponsesStream};
pub use responses_trail::ResponsesTrail;
pub use stream_to_anthropic::OpenaiToAnthropicStream;
pub use stream_to_openai::AnthropicToOpenaiStream;

use bytes::Bytes;

/// Why a request cannot be sent to a target of the other dialect; the proxy records the
/// reason and moves on to the next target rather than send a request that would be
/// answered wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

impl Unsupported {
    fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// An incremental stream translator: the proxy feeds each upstream SSE event as it
/// arrives and forwards whatever comes out at once, so translation never holds content
/// back past the commit point.
pub trait StreamTranslator: Send {
    /// Translates one upstream event into zero or more formatted output events.
    fn event(&mut self, ev: &crate::sse::Event) -> Vec<Bytes>;
    /// The upstream ended cleanly: the events that close the output stream. A stream
    /// that ended before its terminal event closes with an error event, never with a
    /// clean end that would pass a truncated answer off as complete.
    fn finish(&mut self) -> Vec<Bytes>;
    /// The stream broke after its commit point (`code` says how): the events that end
    /// the output stream as failed, or `None` when the proxy's generic error event of
    /// the app's wire says it well enough.
    fn fail(&mut self, code: &str, message: &str) -> Option<Vec<Bytes>> {
        let _ = (code, message);
        None
    }
}

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
fn finish_reason_from_anthropic(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason`.
fn stop_reason_from_openai(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Unix seconds for OpenAI's `created` field.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
