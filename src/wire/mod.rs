//! The protocols a call can speak (`policy::spec::Wire`), one module each, with each
//! protocol's facts in one [`Protocol`] table: its stream framing, how one streamed event
//! is classified (lifecycle / content / end / error) and the usage it reports, the usage
//! of a whole body, where its system prompt goes, the sidecar's own stream error event
//! and error body format.
//! [`of`] is the one exhaustive match on the wire: a new protocol is a new module and
//! one arm here.

pub mod chat;
pub mod converse;
pub mod embeddings;
pub mod framing;
pub mod generate_content;
pub mod messages;
pub mod responses;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::classify::FailReason;
use crate::error::ErrorFormat;
use crate::event_kind::{EventKind, Usage};
use crate::policy::spec::Wire;
use crate::sse::Event;

pub(crate) use framing::Framer;

/// A protocol's facts, as the proxy reads them.
pub(crate) struct Protocol {
    /// How its streams are framed.
    pub framing: Framing,
    /// The role of one streamed event (comments are lifecycle before this is asked),
    /// adding the usage the event reports.
    pub classify: fn(&Event, &mut Usage) -> EventKind,
    /// The usage and finish reason a complete (non-streamed) body reports.
    pub body_usage: fn(&[u8]) -> Usage,
    /// Puts a target's `request.systemPrefix` where this protocol's body holds the system
    /// prompt.
    pub system_prefix: fn(&mut Map<String, Value>, &str),
    /// The event that tells the app's SDK a committed stream failed (the reason's label
    /// and a message), when no translator knows a better one.
    pub stream_error: fn(FailReason, &str) -> Bytes,
    /// How the sidecar's own error bodies look to this protocol's SDKs.
    pub error_format: ErrorFormat,
}

/// How a protocol's streams are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Server-sent events, `text/event-stream`.
    Sse,
    /// The AWS event stream, `application/vnd.amazon.eventstream`.
    EventStream,
}

impl Framing {
    /// The media type a stream in this framing arrives as.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Framing::Sse => "text/event-stream",
            Framing::EventStream => "application/vnd.amazon.eventstream",
        }
    }
}

/// The facts of `wire`: the one match on the protocol.
pub(crate) fn of(wire: Wire) -> &'static Protocol {
    match wire {
        Wire::Chat => &chat::PROTOCOL,
        Wire::Embeddings => &embeddings::PROTOCOL,
        Wire::Messages => &messages::PROTOCOL,
        Wire::Responses => &responses::PROTOCOL,
        Wire::GenerateContent => &generate_content::PROTOCOL,
        Wire::Converse => &converse::PROTOCOL,
    }
}

/// Classifies one event of a stream in `wire`, adding any usage it reports. A comment
/// (an SSE keep-alive) is life, never content, in every protocol.
pub fn inspect(wire: Wire, event: &Event, usage: &mut Usage) -> EventKind {
    if event.is_comment() {
        return EventKind::Lifecycle;
    }
    (of(wire).classify)(event, usage)
}

/// Usage reported by a complete (non-streamed) response body in `wire`.
pub fn body_usage(wire: Wire, body: &[u8]) -> Usage {
    (of(wire).body_usage)(body)
}

/// A parsed event with `data` (and an SSE `event:` name), for the classifiers' tests.
#[cfg(test)]
pub(crate) fn test_event(name: Option<&str>, data: &str) -> Event {
    Event {
        event: name.map(str::to_owned),
        data: data.to_owned(),
        raw: Bytes::new(),
    }
}

#[cfg(test)]
mod tests;
