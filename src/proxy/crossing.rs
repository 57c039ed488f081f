//! Crossing vendors: when a target speaks the other dialect than the app, the request is
//! translated on the way out, and the reply, its stream and its errors on the way back, so
//! an OpenAI SDK call can be answered by Claude (and the reverse) without the app noticing.
//! Same-dialect targets pass bytes through untouched.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::classify::bedrock;
use crate::operation::Operation;
use crate::policy::spec::{ApiKind, Wire};
use crate::proxy::gemini_crossing;
use crate::routing::Provider;
use crate::translate::{
    self, AnthropicToOpenaiStream, Chained, ChatToResponsesStream, ConverseToAnthropicStream,
    OpenaiToAnthropicStream, ResponsesTrail, StreamTranslator, Unsupported,
};

/// `max_tokens` for an Anthropic target when neither the request nor the route sets one.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// How an attempt's bytes cross between the app's dialect and the target's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// Same dialect: bytes pass through.
    Native,
    /// The app speaks OpenAI, the target Anthropic.
    OpenaiToAnthropic {
        /// Whether the app asked for the usage chunk of a stream.
        include_usage: bool,
    },
    /// The app speaks Anthropic, the target OpenAI.
    AnthropicToOpenai,
    /// The app speaks Responses, the target only Chat Completions.
    ResponsesToChat,
    /// The app speaks Responses, the target Anthropic: through Chat (the hub).
    ResponsesToAnthropic,
    /// The target speaks Google's generateContent (Gemini, Vertex AI): through Chat (the
    /// hub) from whichever wire the app speaks.
    Gemini {
        /// The app's wire.
        inbound: Wire,
        /// Whether the app asked for the usage chunk of a Chat stream.
        include_usage: bool,
        /// The target's key for thought signatures (provider and model).
        target: u64,
    },
    /// The target speaks Bedrock Converse; the app speaks this wire (`Chat`, `Messages`
    /// or `Responses`), reaching Converse through Messages.
    ToConverse {
        /// The app's wire.
        from: Wire,
        /// Whether the app asked for the usage chunk of a Chat stream.
        include_usage: bool,
    },
}

impl Crossing {
    /// The crossing for sending `operation` to `provider`: native when the provider
    /// serves the call's wire (`wires`), else a translation into one it serves; `request`
    /// is the app's parsed body, needed only when translating.
    pub fn new<'v>(
        operation: Operation,
        provider: &Provider,
        model: &str,
        request: impl FnOnce() -> Option<&'v Value>,
    ) -> Result<Crossing, Unsupported> {
        let wire = operation.wire();
        if provider.wires.contains(&wire) {
            return Ok(Crossing::Native);
        }
        if operation == Operation::CountTokens {
            // Counts are the target's own tokenizer's: no other vendor's count stands in.
            return Err(Unsupported(format!(
                "token counting needs an Anthropic target; {} is not one",
                provider.name
            )));
        }
        let serves_chat = provider.wires.contains(&Wire::Chat);
        let not_served = || {
            Unsupported(format!(
                "provider {} does not serve {} (its wires)",
                provider.name,
                wire.as_str()
            ))
        };
        let include_usage = |request: Option<&Value>| {
            request
                .and_then(|r| {
                    r.pointer("/stream_options/include_usage")
                        .and_then(Value::as_bool)
                })
                .unwrap_or(false)
        };
        match (wire, provider.api) {
            (Wire::Embeddings, ApiKind::Gemini | ApiKind::Vertex) => Err(Unsupported(
                "embeddings are not translated to gemini's API".to_owned(),
            )),
            (Wire::Chat | Wire::Messages | Wire::Responses, ApiKind::Gemini | ApiKind::Vertex) => {
                Ok(Crossing::Gemini {
                    inbound: wire,
                    include_usage: wire == Wire::Chat && include_usage(request()),
                    target: translate::gemini_target_key(&provider.name, model),
                })
            }
            (Wire::Embeddings, ApiKind::Bedrock) => Err(Unsupported(
                "Bedrock Converse has no embeddings API".to_owned(),
            )),
            (Wire::Chat | Wire::Messages | Wire::Responses, ApiKind::Bedrock) => {
                Ok(Crossing::ToConverse {
                    from: wire,
                    include_usage: include_usage(request()),
                })
            }
            (Wire::Embeddings, ApiKind::Anthropic) => {
                Err(Unsupported("Anthropic has no embeddings API".to_owned()))
            }
            (Wire::Chat, ApiKind::Anthropic) => Ok(Crossing::OpenaiToAnthropic {
                include_usage: include_usage(request()),
            }),
            (Wire::Messages, ApiKind::Openai | ApiKind::AzureOpenai) if serves_chat => {
                Ok(Crossing::AnthropicToOpenai)
            }
            (Wire::Responses, ApiKind::Openai | ApiKind::AzureOpenai) if serves_chat => {
                Ok(Crossing::ResponsesToChat)
            }
            (Wire::Responses, ApiKind::Anthropic) => Ok(Crossing::ResponsesToAnthropic),
            (Wire::Responses, _)
            | (Wire::Messages, _)
            | (Wire::GenerateContent, _)
            | (Wire::Converse, _)
            | (Wire::Chat | Wire::Embeddings, ApiKind::Openai | ApiKind::AzureOpenai) => {
                Err(not_served())
            }
        }
    }

    /// The wire the target is spoken to in: the call's own, or its translation's.
    pub fn upstream_wire(&self, operation: Operation) -> Wire {
        match self {
            Crossing::Native => operation.wire(),
            Crossing::OpenaiToAnthropic { .. } | Crossing::ResponsesToAnthropic => Wire::Messages,
            Crossing::AnthropicToOpenai | Crossing::ResponsesToChat => Wire::Chat,
            Crossing::Gemini { .. } => Wire::GenerateContent,
            Crossing::ToConverse { .. } => Wire::Converse,
        }
    }

    /// The body to send to the target: `native` (the app's bytes with the model spliced)
    /// when dialects match, else the translation of the tree `request` parses (only then:
    /// a native call never builds the tree).
    pub fn request_body<'v>(
        &self,
        native: impl FnOnce() -> Bytes,
        request: impl FnOnce() -> Option<&'v Value>,
        target_model: &str,
        max_tokens: Option<u32>,
    ) -> Result<Bytes, Unsupported> {
        match self {
            Crossing::Native => Ok(native()),
            Crossing::OpenaiToAnthropic { .. }
            | Crossing::AnthropicToOpenai
            | Crossing::ResponsesToChat
            | Crossing::ResponsesToAnthropic
            | Crossing::Gemini { .. }
            | Crossing::ToConverse { .. } => self
                .request_value(request(), target_model, max_tokens)
                .map(|value| Bytes::from(value.to_string())),
        }
    }

    /// The request as a JSON tree in the target's wire, for a target that changes it
    /// further (`targets[].request`); a native call is the app's tree with the model set.
    pub fn request_value(
        &self,
        request: Option<&Value>,
        target_model: &str,
        max_tokens: Option<u32>,
    ) -> Result<Value, Unsupported> {
        let translated = match (self, request) {
            (_, None) => {
                return Err(Unsupported(
                    "the request body is not a JSON object".to_owned(),
                ))
            }
            (Crossing::Native, Some(req)) => {
                let mut value = req.clone();
                if let Some(object) = value.as_object_mut() {
                    object.insert("model".to_owned(), Value::from(target_model));
                }
                value
            }
            (Crossing::OpenaiToAnthropic { .. }, Some(req)) => {
                translate::openai_to_anthropic_request(
                    req,
                    target_model,
                    max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
                )?
            }
            (Crossing::AnthropicToOpenai, Some(req)) => {
                translate::anthropic_to_openai_request(req, target_model)?
            }
            (Crossing::ResponsesToChat, Some(req)) => {
                translate::responses_to_chat_request(req, target_model)?
            }
            (Crossing::ResponsesToAnthropic, Some(req)) => {
                let chat = translate::responses_to_chat_request(req, target_model)?;
                translate::openai_to_anthropic_request(
                    &chat,
                    target_model,
                    max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
                )?
            }
            (
                Crossing::Gemini {
                    inbound, target, ..
                },
                Some(req),
            ) => gemini_crossing::request(*inbound, req, *target, target_model)?,
            (Crossing::ToConverse { from, .. }, Some(req)) => {
                let max_tokens = max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
                let messages = match from {
                    Wire::Messages => req.clone(),
                    Wire::Responses => {
                        let chat = translate::responses_to_chat_request(req, target_model)?;
                        translate::openai_to_anthropic_request(&chat, target_model, max_tokens)?
                    }
                    Wire::Chat | Wire::Embeddings | Wire::Converse | Wire::GenerateContent => {
                        translate::openai_to_anthropic_request(req, target_model, max_tokens)?
                    }
                };
                translate::anthropic_to_converse_request(&messages)?
            }
        };
        Ok(translated)
    }

    /// A complete (non-streamed) success body in the app's dialect.
    pub fn response_body(&self, body: Bytes, requested_model: &str) -> Bytes {
        let convert: fn(&Value, &str) -> Value = match self {
            Crossing::Native => return body,
            Crossing::OpenaiToAnthropic { .. } => translate::anthropic_to_openai_response,
            Crossing::AnthropicToOpenai => translate::openai_to_anthropic_response,
            Crossing::ResponsesToChat => translate::chat_to_responses_response,
            Crossing::ResponsesToAnthropic => |reply, model| {
                let chat = translate::anthropic_to_openai_response(reply, model);
                translate::chat_to_responses_response(&chat, model)
            },
            Crossing::Gemini {
                inbound, target, ..
            } => {
                return match serde_json::from_slice::<Value>(&body) {
                    Ok(reply) => Bytes::from(
                        gemini_crossing::response(*inbound, &reply, requested_model, *target)
                            .to_string(),
                    ),
                    Err(_) => body,
                }
            }
            Crossing::ToConverse { from, .. } => match from {
                Wire::Messages => translate::converse_to_anthropic_response,
                Wire::Responses => |reply, model| {
                    let message = translate::converse_to_anthropic_response(reply, model);
                    let chat = translate::anthropic_to_openai_response(&message, model);
                    translate::chat_to_responses_response(&chat, model)
                },
                Wire::Chat | Wire::Embeddings | Wire::Converse | Wire::GenerateContent => {
                    |reply, model| {
                        let message = translate::converse_to_anthropic_response(reply, model);
                        translate::anthropic_to_openai_response(&message, model)
                    }
                }
            },
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => Bytes::from(convert(&value, requested_model).to_string()),
            Err(_) => body,
        }
    }

    /// A provider's error, passed back in the app's dialect (Bedrock's named by its
    /// `x-amzn-ErrorType` header).
    pub fn error_body(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
    ) -> (StatusCode, Bytes) {
        let (code, value) = match self {
            Crossing::ToConverse { from, .. } => {
                let name = bedrock::error_name(headers, &body);
                let (code, message) =
                    translate::converse_error_to_anthropic(status.as_u16(), name.as_deref(), &body);
                match from {
                    Wire::Messages => (code, message),
                    Wire::Chat
                    | Wire::Responses
                    | Wire::Embeddings
                    | Wire::Converse
                    | Wire::GenerateContent => {
                        translate::error_to_openai(code, message.to_string().as_bytes())
                    }
                }
            }
            // Chat errors are already in the shape Responses SDKs parse.
            Crossing::Native | Crossing::ResponsesToChat => return (status, body),
            Crossing::OpenaiToAnthropic { .. } | Crossing::ResponsesToAnthropic => {
                translate::error_to_openai(status.as_u16(), &body)
            }
            Crossing::AnthropicToOpenai => translate::error_to_anthropic(status.as_u16(), &body),
            Crossing::Gemini { inbound, .. } => {
                return gemini_crossing::error(*inbound, status, &body)
            }
        };
        (
            StatusCode::from_u16(code).unwrap_or(status),
            Bytes::from(value.to_string()),
        )
    }

    /// The incremental stream translator, when wires differ; a native Responses stream
    /// gets a trail, so a break after the commit point can end it with `response.failed`.
    pub fn stream_translator(
        &self,
        inbound: Wire,
        requested_model: &str,
    ) -> Option<Box<dyn StreamTranslator>> {
        match self {
            Crossing::Native => match inbound {
                Wire::Responses => Some(Box::new(ResponsesTrail::new())),
                Wire::Chat
                | Wire::Embeddings
                | Wire::Messages
                | Wire::GenerateContent
                | Wire::Converse => None,
            },
            Crossing::ToConverse {
                from,
                include_usage,
            } => {
                let converse = Box::new(ConverseToAnthropicStream::new(requested_model));
                Some(match from {
                    Wire::Messages => converse,
                    Wire::Responses => Box::new(Chained::new(
                        converse,
                        Box::new(Chained::new(
                            Box::new(AnthropicToOpenaiStream::new(requested_model, true)),
                            Box::new(ChatToResponsesStream::new(requested_model)),
                        )),
                    )),
                    Wire::Chat | Wire::Embeddings | Wire::Converse | Wire::GenerateContent => {
                        Box::new(Chained::new(
                            converse,
                            Box::new(AnthropicToOpenaiStream::new(
                                requested_model,
                                *include_usage,
                            )),
                        ))
                    }
                })
            }
            Crossing::OpenaiToAnthropic { include_usage } => Some(Box::new(
                AnthropicToOpenaiStream::new(requested_model, *include_usage),
            )),
            Crossing::AnthropicToOpenai => {
                Some(Box::new(OpenaiToAnthropicStream::new(requested_model)))
            }
            Crossing::ResponsesToChat => {
                Some(Box::new(ChatToResponsesStream::new(requested_model)))
            }
            // Usage is asked for: `response.completed` carries it.
            Crossing::ResponsesToAnthropic => Some(Box::new(Chained::new(
                Box::new(AnthropicToOpenaiStream::new(requested_model, true)),
                Box::new(ChatToResponsesStream::new(requested_model)),
            ))),
            Crossing::Gemini {
                inbound,
                include_usage,
                target,
            } => Some(gemini_crossing::stream(
                *inbound,
                requested_model,
                *include_usage,
                *target,
            )),
        }
    }
}
