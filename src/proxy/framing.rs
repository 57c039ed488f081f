//! How a stream's bytes become events: SSE for every wire but Converse, whose streams
//! come in the AWS event-stream binary framing. Either way the proxy sees whole
//! [`Event`]s, so the commit point, the pass-through and the translations are the same.

use crate::eventstream;
use crate::policy::spec::Wire;
use crate::sse::{Event, Parser};

/// A stream decoder of a wire's framing.
pub enum Framer {
    /// `text/event-stream`.
    Sse(Parser),
    /// `application/vnd.amazon.eventstream`.
    EventStream(eventstream::Decoder),
}

impl Framer {
    /// The decoder of streams in `wire`.
    pub fn new(wire: Wire) -> Framer {
        match wire {
            Wire::Converse => Framer::EventStream(eventstream::Decoder::new()),
            Wire::Chat
            | Wire::Embeddings
            | Wire::Responses
            | Wire::Messages
            | Wire::GenerateContent => Framer::Sse(Parser::new()),
        }
    }

    /// The media type a stream in `wire` arrives as.
    pub fn content_type(wire: Wire) -> &'static str {
        match wire {
            Wire::Converse => "application/vnd.amazon.eventstream",
            Wire::Chat
            | Wire::Embeddings
            | Wire::Responses
            | Wire::Messages
            | Wire::GenerateContent => "text/event-stream",
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        match self {
            Framer::Sse(parser) => parser.push(bytes),
            Framer::EventStream(decoder) => decoder.push(bytes),
        }
    }

    /// The next whole event, if one has arrived.
    pub fn next_event(&mut self) -> Option<Event> {
        match self {
            Framer::Sse(parser) => parser.next_event(),
            Framer::EventStream(decoder) => decoder.next_event(),
        }
    }
}
