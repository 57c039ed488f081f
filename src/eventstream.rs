//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`, what
//! Bedrock's ConverseStream answers in): each message is a prelude (total and header
//! lengths, CRC), typed headers, a payload and a message CRC. Frames are decoded
//! incrementally with `aws-smithy-eventstream` and handed on as [`Event`]s, so the proxy
//! classifies and translates them like SSE events.
//!
//! Invariant: the events do not depend on how the bytes were split; a frame that fails
//! its checks ends the stream with one `frameError` event (the rest cannot be trusted).

use aws_smithy_eventstream::frame::{write_message_to, DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Bytes, BytesMut};

use crate::sse::Event;

/// The event name given to bytes that are not a valid frame.
pub const FRAME_ERROR: &str = "frameError";

/// An incremental decoder: push bytes as they arrive, take whole events out.
#[derive(Default)]
pub struct Decoder {
    buffer: BytesMut,
    frames: MessageFrameDecoder,
    broken: bool,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.broken {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// The next whole event, if one has arrived. An `event` message is named by its
    /// `:event-type`, an `exception` by its `:exception-type` (`throttlingException`…),
    /// an `error` by its `:error-code`; `data` is the payload as text.
    pub fn next_event(&mut self) -> Option<Event> {
        if self.broken {
            return None;
        }
        match self.frames.decode_frame(&mut self.buffer) {
            // No raw bytes: a Converse stream is always translated, never passed through.
            Ok(DecodedFrame::Complete(message)) => Some(to_event(&message, Bytes::new())),
            Ok(DecodedFrame::Incomplete) => None,
            Err(error) => {
                self.broken = true;
                self.buffer.clear();
                Some(Event {
                    event: Some(FRAME_ERROR.to_owned()),
                    data: format!("{{\"message\":{:?}}}", error.to_string()),
                    raw: Bytes::new(),
                })
            }
        }
    }
}

fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map(|s| s.as_str())
}

fn to_event(message: &Message, raw: Bytes) -> Event {
    let name = match header(message, ":message-type") {
        Some("exception") => header(message, ":exception-type"),
        Some("error") => header(message, ":error-code"),
        _ => header(message, ":event-type"),
    };
    let mut data = String::from_utf8_lossy(message.payload()).into_owned();
    if header(message, ":message-type") == Some("error") && data.is_empty() {
        let text = header(message, ":error-message").unwrap_or_default();
        data = format!("{{\"message\":{text:?}}}");
    }
    Event {
        event: Some(name.unwrap_or("unknown").to_owned()),
        data,
        raw,
    }
}

/// One encoded frame: an `event` named `event_type`, or with `exception` set an
/// `exception` of that type, carrying a JSON payload (the mock's, and tests').
pub fn encode(event_type: &str, exception: bool, payload: &[u8]) -> Bytes {
    let string = |name: &'static str, value: &str| {
        Header::new(name, HeaderValue::String(value.to_owned().into()))
    };
    let (kind, type_header) = if exception {
        ("exception", ":exception-type")
    } else {
        ("event", ":event-type")
    };
    let message = Message::new_from_parts(
        vec![
            string(":message-type", kind),
            string(type_header, event_type),
            string(":content-type", "application/json"),
        ],
        Bytes::copy_from_slice(payload),
    );
    let mut out = Vec::new();
    // A message of three short headers and a payload under the frame limit always fits.
    let _ = write_message_to(&message, &mut out);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&encode(
            "messageStart",
            false,
            br#"{"role":"assistant","p":"abc"}"#,
        ));
        bytes.extend_from_slice(&encode(
            "contentBlockDelta",
            false,
            br#"{"contentBlockIndex":0,"delta":{"text":"Hello"},"p":"abcdefgh"}"#,
        ));
        bytes.extend_from_slice(&encode(
            "throttlingException",
            true,
            br#"{"message":"slow down"}"#,
        ));
        bytes
    }

    fn decode_all(chunks: &[&[u8]]) -> Vec<(Option<String>, String)> {
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Some(event) = decoder.next_event() {
                out.push((event.event, event.data));
            }
        }
        out
    }

    #[test]
    fn names_events_and_exceptions() {
        let events = decode_all(&[&sample()]);
        let names: Vec<_> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
        assert_eq!(
            names,
            ["messageStart", "contentBlockDelta", "throttlingException"]
        );
        assert_eq!(events[2].1, r#"{"message":"slow down"}"#);
    }

    #[test]
    fn a_corrupt_frame_ends_the_stream_with_one_error() {
        let mut bytes = sample();
        bytes[20] ^= 0xff;
        let events = decode_all(&[&bytes]);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0.as_deref(), Some(FRAME_ERROR));
    }

    proptest! {
        /// The same events whatever the split: one byte at a time, or any two cuts.
        #[test]
        fn any_split_gives_the_same_events(a in 0usize..400, b in 0usize..400) {
            let bytes = sample();
            let whole = decode_all(&[&bytes]);
            let (a, b) = (a.min(bytes.len()), b.min(bytes.len()));
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert_eq!(&decode_all(&[&bytes[..lo], &bytes[lo..hi], &bytes[hi..]]), &whole);
            let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
            prop_assert_eq!(&decode_all(&bytewise), &whole);
        }
    }
}
