//! Fuzzes both stream translators with arbitrary upstream SSE bytes: no panic, every
//! output is whole SSE events, and the output always ends in its dialect's terminal
//! event (a clean end or an error), never silently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::sse::{Event, Parser};
use switchyard::translate::{AnthropicToOpenaiStream, OpenaiToAnthropicStream, StreamTranslator};

fn events(bytes: &[u8]) -> Vec<Event> {
    let mut p = Parser::new();
    p.push(bytes);
    p.finish();
    std::iter::from_fn(|| p.next_event()).collect()
}

/// Runs a translator over the upstream events and parses what it wrote.
fn translate(t: &mut dyn StreamTranslator, upstream: &[Event]) -> Vec<Event> {
    let mut out = Vec::new();
    for ev in upstream {
        for b in t.event(ev) {
            out.extend_from_slice(&b);
        }
    }
    for b in t.finish() {
        out.extend_from_slice(&b);
    }
    assert!(t.finish().is_empty(), "finish is idempotent");
    let mut p = Parser::new();
    p.push(&out);
    let parsed: Vec<Event> = std::iter::from_fn(|| p.next_event()).collect();
    assert!(!p.has_partial(), "output is whole events");
    parsed
}

fuzz_target!(|data: &[u8]| {
    let upstream = events(data);

    let out = translate(
        &mut AnthropicToOpenaiStream::new("m", data.len() % 2 == 0),
        &upstream,
    );
    let last = out.last().expect("always a terminal event");
    assert!(
        last.data == "[DONE]" || last.data.starts_with("{\"error\""),
        "{last:?}"
    );
    for e in &out[..out.len() - 1] {
        assert!(serde_json_ok(&e.data), "{e:?}");
    }

    let out = translate(&mut OpenaiToAnthropicStream::new("m"), &upstream);
    let last = out.last().expect("always a terminal event");
    assert!(
        matches!(last.event.as_deref(), Some("message_stop" | "error")),
        "{last:?}"
    );
    assert!(out
        .iter()
        .all(|e| e.event.is_some() && serde_json_ok(&e.data)));
});

fn serde_json_ok(data: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(data).is_ok()
}
