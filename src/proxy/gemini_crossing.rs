//! The Gemini leg of a crossing: every inbound wire reaches Google's generateContent
//! through Chat Completions (the hub), and its replies, streams and errors come back the
//! same way: Anthropic and Responses apps chain the hub's own converters after Gemini's.

use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;

use crate::policy::spec::Wire;
use crate::translate::{
    self, Chained, ChatToResponsesStream, GeminiToChatStream, OpenaiToAnthropicStream,
    StreamTranslator, Unsupported,
};

/// A call in `inbound` as a generateContent body for `model` at `target`.
pub fn request(
    inbound: Wire,
    request: &Value,
    target: u64,
    model: &str,
) -> Result<Value, Unsupported> {
    let chat = match inbound {
        Wire::Chat => request.clone(),
        Wire::Messages => translate::anthropic_to_openai_request(request, model)?,
        Wire::Responses => translate::responses_to_chat_request(request, model)?,
        Wire::Embeddings | Wire::GenerateContent | Wire::Converse => {
            return Err(Unsupported(format!(
                "{} calls are not translated to gemini",
                inbound.as_str()
            )))
        }
    };
    translate::chat_to_gemini_request(&chat, target, model)
}

/// A whole generateContent reply in the app's wire.
pub fn response(inbound: Wire, reply: &Value, requested_model: &str, target: u64) -> Value {
    let chat = translate::gemini_to_chat_response(reply, requested_model, target);
    match inbound {
        Wire::Messages => translate::openai_to_anthropic_response(&chat, requested_model),
        Wire::Responses => translate::chat_to_responses_response(&chat, requested_model),
        Wire::Chat | Wire::Embeddings | Wire::GenerateContent | Wire::Converse => chat,
    }
}

/// A Google error in the app's error format, its status kept (Anthropic says 529 for 503).
pub fn error(inbound: Wire, status: StatusCode, body: &[u8]) -> (StatusCode, Bytes) {
    let (code, value) = match inbound {
        Wire::Messages => translate::gemini_error_to_anthropic(status.as_u16(), body),
        Wire::Chat
        | Wire::Responses
        | Wire::Embeddings
        | Wire::GenerateContent
        | Wire::Converse => translate::gemini_error_to_openai(status.as_u16(), body),
    };
    (
        StatusCode::from_u16(code).unwrap_or(status),
        Bytes::from(value.to_string()),
    )
}

/// The stream translator from Gemini's events to the app's.
pub fn stream(
    inbound: Wire,
    requested_model: &str,
    include_usage: bool,
    target: u64,
) -> Box<dyn StreamTranslator> {
    // The chained translators need the usage chunk: their terminal events carry usage.
    let hub = |usage| Box::new(GeminiToChatStream::new(requested_model, usage, target));
    match inbound {
        Wire::Messages => Box::new(Chained::new(
            hub(true),
            Box::new(OpenaiToAnthropicStream::new(requested_model)),
        )),
        Wire::Responses => Box::new(Chained::new(
            hub(true),
            Box::new(ChatToResponsesStream::new(requested_model)),
        )),
        Wire::Chat | Wire::Embeddings | Wire::GenerateContent | Wire::Converse => {
            hub(include_usage)
        }
    }
}
