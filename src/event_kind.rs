//! The verdict on one streamed event and the usage a stream reports: a leaf shared by
//! the classifiers of each wire (`wire/chat.rs`, `wire/responses.rs`...), so
//! they do not import each other, and by the spans that record usage (`telemetry`).

/// The role of one event in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Before any content: role-only chunks, `message_start`, `ping`... Held back.
    Lifecycle,
    /// Text or a tool call: the commit point.
    Content,
    /// The provider's clean end (`[DONE]`, `message_stop`).
    End,
    /// An in-band error: the stream failed.
    Error,
    /// An in-band rate-limit error (a Responses `response.failed` or `error` event with
    /// `rate_limit_exceeded`): a throttle, not an outage.
    Throttled,
}

/// Tokens and the finish reason reported so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
    /// Why the model stopped, as the provider said it (`stop`, `end_turn`, `tool_calls`...).
    pub finish: Option<&'static str>,
}

/// The provider finish reasons traces report; kept `'static` so usage stays `Copy`.
const FINISH_REASONS: [&str; 11] = [
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
];

/// The `'static` name of a finish reason a provider reported, `other` if unknown.
pub fn finish_reason(reported: &str) -> &'static str {
    FINISH_REASONS
        .iter()
        .find(|r| **r == reported)
        .copied()
        .unwrap_or("other")
}
