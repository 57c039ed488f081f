//! Which operation an inbound call asks for: the endpoint an app's SDK called, named
//! for the spans, the route's dialect and the wire it speaks.

use crate::policy::spec::{ApiKind, Wire};

/// Which operation an inbound call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// OpenAI chat completions.
    Chat,
    /// OpenAI embeddings.
    Embeddings,
    /// Anthropic messages.
    Messages,
    /// OpenAI Responses.
    Responses,
    /// Anthropic token counting (`/v1/messages/count_tokens`): Messages, not generation.
    CountTokens,
}

impl Operation {
    /// The GenAI semantic-convention operation name.
    pub fn genai_name(self) -> &'static str {
        match self {
            // The GenAI conventions have no Responses name: a Responses call is a chat.
            Operation::Chat | Operation::Messages | Operation::Responses => "chat",
            Operation::Embeddings => "embeddings",
            // Not a GenAI operation: named for what it does.
            Operation::CountTokens => "count_tokens",
        }
    }

    /// Whether it generates text, so a target's `request` adaptation applies to it.
    pub fn is_generation(self) -> bool {
        match self {
            Operation::Chat | Operation::Messages | Operation::Responses => true,
            Operation::Embeddings | Operation::CountTokens => false,
        }
    }

    /// The API family of the inbound call: it picks the route (`routes[].inbound`) and
    /// the format of the sidecar's own errors (Responses errors are OpenAI's shape).
    pub fn dialect(self) -> ApiKind {
        match self {
            Operation::Chat | Operation::Embeddings | Operation::Responses => ApiKind::Openai,
            Operation::Messages | Operation::CountTokens => ApiKind::Anthropic,
        }
    }

    /// The protocol the inbound call speaks.
    pub fn wire(self) -> Wire {
        match self {
            Operation::Chat => Wire::Chat,
            Operation::Embeddings => Wire::Embeddings,
            Operation::Messages | Operation::CountTokens => Wire::Messages,
            Operation::Responses => Wire::Responses,
        }
    }
}
