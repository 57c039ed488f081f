//! How a stream's bytes become events: SSE for every wire but Converse, whose streams
//! come in the AWS event-stream binary framing. Either way the proxy sees whole
//! [`Event`]s, so the commit point, the pass-through and the translations are the same.

use crate::eventstream;
use crate::policy::spec::Wire;
use crate::sse::{Event, Parser};
use crate::wire::{of, Framing};

/// A stream decoder of a wire's framing.
pub(crate) enum Framer {
    /// `text/event-stream`.
    Sse(Parser),
    /// `application/vnd.amazon.eventstream`.
    EventStream(eventstream::Decoder),
}

impl Framer {
    /// The decoder of streams in `wire`.
    pub(crate) fn new(wire: Wire) -> Framer {
        match of(wire).framing {
            Framing::EventStream => Framer::EventStream(eventstream::Decoder::new()),
            Framing::Sse => Framer::Sse(Parser::new()),
        }
    }

    /// The media type a stream in `wire` arrives as.
    pub(crate) fn content_type(wire: Wire) -> &'static str {
        of(wire).framing.content_type()
    }

    /// Appends received bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        match self {
            Framer::Sse(parser) => parser.push(bytes),
            Framer::EventStream(decoder) => decoder.push(bytes),
        }
    }

    /// The next whole event, if one has arrived.
    pub(crate) fn next_event(&mut self) -> Option<Event> {
        match self {
            Framer::Sse(parser) => parser.next_event(),
            Framer::EventStream(decoder) => decoder.next_event(),
        }
    }
}
