//! An incremental server-sent-events framer.
//!
//! The proxy forwards streams event by event: it must know where each event ends (to hold
//! lifecycle events before the commit point, to never forward half an event before a cut,
//! and to translate) while passing the upstream's own bytes through untouched. So each
//! [`Event`] carries both its parsed fields and the exact bytes it occupied.
//!
//! Follows the WHATWG framing rules: lines end in LF, CRLF or CR; a blank line ends an
//! event; `data:` lines join with `\n`; a line starting with `:` is a comment; one space
//! after the colon is dropped.

use bytes::{Bytes, BytesMut};

/// One event block as it appeared on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n` (empty when the block had none).
    pub data: String,
    /// The block's bytes, including its terminating blank line.
    pub raw: Bytes,
}

impl Event {
    /// Whether the block carries nothing to dispatch (only comments or unknown fields).
    pub fn is_comment(&self) -> bool {
        self.event.is_none() && self.data.is_empty()
    }
}

/// Splits a byte stream into events, however the stream was cut into reads.
#[derive(Debug, Default)]
pub struct Parser {
    buf: BytesMut,
    /// Where the next line starts within `buf`: bytes before it belong to lines already
    /// seen of the event being assembled.
    line_start: usize,
    /// How far past `line_start` is known to hold no line end, so a line arriving in many
    /// small reads is not rescanned from its start each time.
    scanned: usize,
    /// Whether a line has been read yet: a byte-order mark is dropped only there.
    seen_line: bool,
    event: Option<String>,
    data: Option<String>,
    eof: bool,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Marks the end of the stream: a trailing lone CR now ends its line.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// Whether bytes of an unfinished event are waiting for the rest of it.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The next complete event, or `None` until more bytes arrive.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let from = self.scanned.max(self.line_start);
            let (line_end, eol) = match find_line_end(&self.buf[from..], self.eof) {
                LineEnd::Found(offset, eol) => (from + offset, eol),
                LineEnd::Pending(clean) => {
                    self.scanned = from + clean;
                    return None;
                }
            };
            let len = line_end - self.line_start;
            if len == 0 {
                let raw = self.buf.split_to(line_end + eol).freeze();
                self.line_start = 0;
                self.scanned = 0;
                return Some(Event {
                    event: self.event.take(),
                    data: self.data.take().unwrap_or_default(),
                    raw,
                });
            }
            // Borrowed, not copied: only an event name or data value is allocated.
            let line = String::from_utf8_lossy(&self.buf[self.line_start..line_end]);
            let line = if self.seen_line {
                &line[..]
            } else {
                line.trim_start_matches('\u{feff}')
            };
            field(line, &mut self.event, &mut self.data);
            self.seen_line = true;
            self.line_start = line_end + eol;
        }
    }
}

/// Applies one field line to the event being assembled.
fn field(line: &str, event: &mut Option<String>, data: &mut Option<String>) {
    if line.starts_with(':') {
        return;
    }
    let (name, value) = match line.split_once(':') {
        Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
        None => (line, ""),
    };
    match name {
        "event" => *event = Some(value.to_owned()),
        "data" => match data {
            Some(data) => {
                data.push('\n');
                data.push_str(value);
            }
            None => *data = Some(value.to_owned()),
        },
        _ => {}
    }
}

/// Where the first line of `bytes` ends.
enum LineEnd {
    /// Offset of the terminator and its length.
    Found(usize, usize),
    /// No complete line yet; the first this many bytes hold no line end.
    Pending(usize),
}

/// A CR at the very end may be the first half of a CRLF, so it waits for the next byte
/// unless the stream has ended.
fn find_line_end(bytes: &[u8], eof: bool) -> LineEnd {
    let Some(i) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') else {
        return LineEnd::Pending(bytes.len());
    };
    match (bytes[i], bytes.get(i + 1)) {
        (b'\n', _) => LineEnd::Found(i, 1),
        (_, Some(b'\n')) => LineEnd::Found(i, 2),
        (_, Some(_)) => LineEnd::Found(i, 1),
        (_, None) if eof => LineEnd::Found(i, 1),
        (_, None) => LineEnd::Pending(i),
    }
}

/// Formats one event with `event:` and a single `data:` line (data must not contain a
/// newline; JSON serialised by serde_json never does).
pub fn format_event(event: Option<&str>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(input: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for chunk in input {
            p.push(chunk);
            while let Some(e) = p.next_event() {
                out.push(e);
            }
        }
        p.finish();
        out.extend(p.next_event());
        out
    }

    #[test]
    fn parses_fields_comments_and_multiline_data() {
        let evs =
            all(&[b": ping\n\nevent: message_start\ndata: {\"a\":1}\n\ndata: x\ndata:y\r\n\r\n"]);
        assert_eq!(evs.len(), 3);
        assert!(evs[0].is_comment());
        assert_eq!(evs[1].event.as_deref(), Some("message_start"));
        assert_eq!(evs[1].data, "{\"a\":1}");
        assert_eq!(evs[2].data, "x\ny");
        assert_eq!(&evs[2].raw[..], b"data: x\ndata:y\r\n\r\n");
    }

    #[test]
    fn cr_only_line_endings_and_split_crlf() {
        let evs = all(&[b"data: a\r", b"\n\r", b"\ndata: b\r\r"]);
        assert_eq!(
            evs.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn a_byte_order_mark_is_dropped_only_at_the_start() {
        let evs = all(&["\u{feff}data: a\n\n\u{feff}data: b\n\n".as_bytes()]);
        assert_eq!(evs[0].data, "a");
        assert_eq!(evs[1].data, "", "a BOM mid-stream makes an unknown field");
    }

    #[test]
    fn partial_event_is_held() {
        let mut p = Parser::new();
        p.push(b"data: {\"x\"");
        assert!(p.next_event().is_none());
        assert!(p.has_partial());
        p.push(b":1}\n\n");
        assert_eq!(p.next_event().unwrap().data, "{\"x\":1}");
        assert!(!p.has_partial());
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_events(
            events in proptest::collection::vec(("[a-z_]{0,8}", "[ -~]{0,40}", 0usize..3), 0..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let eols = ["\n", "\r\n", "\r"];
            let mut stream = String::new();
            for (name, data, eol) in &events {
                let eol = eols[*eol];
                if !name.is_empty() { stream.push_str(&format!("event: {name}{eol}")); }
                stream.push_str(&format!("data: {data}{eol}{eol}"));
            }
            let bytes = stream.as_bytes();
            let whole = all(&[bytes]);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points { chunks.push(&bytes[last..p]); last = p; }
            chunks.push(&bytes[last..]);
            let split = all(&chunks);
            prop_assert_eq!(&whole, &split);
            prop_assert_eq!(whole.len(), events.len());
            let raw: Vec<u8> = whole.iter().flat_map(|e| e.raw.to_vec()).collect();
            prop_assert_eq!(raw, bytes.to_vec());
        }
    }
}
