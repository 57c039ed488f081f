//! The OpenAI ⇄ Anthropic stream translators (and the Anthropic → Chat → Responses chain)
//! over arbitrary upstream SSE bytes: no panic; the output is whole SSE events of JSON;
//! it always ends in its dialect's terminal event; it ends cleanly only when the upstream
//! did (never a truncated answer passed off as complete), also when the stream is cut
//! part-way and the proxy asks the translator to fail it.

use switchyard::sse::{Event, Parser};
use switchyard::translate::{
    AnthropicToOpenaiStream, Chained, ChatToResponsesStream, OpenaiToAnthropicStream,
    StreamTranslator,
};

/// Frames bytes into events, as the proxy does with an upstream body.
pub fn events(bytes: &[u8]) -> Vec<Event> {
    let mut p = Parser::new();
    p.push(bytes);
    p.finish();
    std::iter::from_fn(|| p.next_event()).collect()
}

/// Runs a translator over the upstream events (all of them, then `finish`; or, with
/// `cut`, the first `cut` of them, then `fail`) and parses what it wrote.
pub fn translate(
    t: &mut dyn StreamTranslator,
    upstream: &[Event],
    cut: Option<usize>,
) -> Vec<Event> {
    let mut out = Vec::new();
    let fed = cut.map_or(upstream, |k| &upstream[..k.min(upstream.len())]);
    for ev in fed {
        for b in t.event(ev) {
            out.extend_from_slice(&b);
        }
    }
    if cut.is_some() {
        for b in t
            .fail("upstream_cut", "the upstream connection was cut")
            .unwrap_or_default()
        {
            out.extend_from_slice(&b);
        }
    } else {
        for b in t.finish() {
            out.extend_from_slice(&b);
        }
        assert!(t.finish().is_empty(), "finish is idempotent");
    }
    let mut p = Parser::new();
    p.push(&out);
    let parsed: Vec<Event> = std::iter::from_fn(|| p.next_event()).collect();
    p.finish();
    assert!(
        !p.has_partial() && p.next_event().is_none(),
        "output is whole events"
    );
    parsed
}

/// Whether SSE data is a JSON document.
pub fn json_ok(data: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(data).is_ok()
}

/// Whether an upstream OpenAI stream could have ended cleanly (a finish reason or
/// `[DONE]` somewhere in it); deliberately loose, so only a real truncation trips it.
pub fn openai_could_end(upstream: &[Event]) -> bool {
    upstream
        .iter()
        .any(|e| e.data.trim() == "[DONE]" || e.data.contains("finish_reason"))
}

/// Whether an upstream Anthropic stream could have ended cleanly (a `message_stop`).
pub fn anthropic_could_end(upstream: &[Event]) -> bool {
    upstream
        .iter()
        .any(|e| e.event.as_deref() == Some("message_stop") || e.data.contains("message_stop"))
}

/// The name of a Responses event (the `type` in its data).
pub fn responses_type(e: &Event) -> String {
    serde_json::from_str::<serde_json::Value>(&e.data)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// Checks a translated Responses stream: JSON events, sequence numbers strictly rising
/// from 0, one terminal event last; a clean one only when `could_end`.
pub fn check_responses(out: &[Event], could_end: bool, cut: bool) {
    for (next, e) in (0u64..).zip(out) {
        let v: serde_json::Value =
            serde_json::from_str(&e.data).expect("Responses events are JSON");
        let n = v["sequence_number"]
            .as_u64()
            .expect("every event has a sequence number");
        assert_eq!(n, next, "sequence numbers rise by one");
        assert_eq!(
            e.event.as_deref(),
            v["type"].as_str(),
            "the event name is the type"
        );
    }
    let Some(last) = out.last() else {
        assert!(cut, "a finished stream always has a terminal event");
        return;
    };
    let kind = responses_type(last);
    let terminal = [
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
    ];
    assert!(terminal.contains(&kind.as_str()) || cut, "{last:?}");
    if matches!(kind.as_str(), "response.completed" | "response.incomplete") {
        assert!(could_end, "a clean end needs the upstream's: {last:?}");
    }
    let ends = out
        .iter()
        .filter(|e| terminal.contains(&responses_type(e).as_str()))
        .count();
    assert!(ends <= 1, "at most one terminal event");
}

/// The first byte picks where a second run cuts the stream; the rest is upstream SSE.
pub fn run(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let upstream = events(stream);
    let cut_at = usize::from(cut) % (upstream.len() + 1);

    for cut in [None, Some(cut_at)] {
        let out = translate(
            &mut AnthropicToOpenaiStream::new("m", stream.len() % 2 == 0),
            &upstream,
            cut,
        );
        let fed = cut.map_or(&upstream[..], |k| &upstream[..k]);
        match out.last() {
            Some(last) if last.data == "[DONE]" => {
                assert!(anthropic_could_end(fed), "clean end without message_stop");
            }
            Some(last) => assert!(
                last.data.starts_with("{\"error\"") || cut.is_some(),
                "{last:?}"
            ),
            None => assert!(
                cut.is_some(),
                "a finished stream always has a terminal event"
            ),
        }
        for e in out.iter().filter(|e| e.data != "[DONE]") {
            assert!(json_ok(&e.data), "{e:?}");
        }

        let out = translate(&mut OpenaiToAnthropicStream::new("m"), &upstream, cut);
        match out.last() {
            Some(last) if last.event.as_deref() == Some("message_stop") => {
                assert!(openai_could_end(fed), "clean end without a finish reason");
            }
            Some(last) => assert!(
                last.event.as_deref() == Some("error") || cut.is_some(),
                "{last:?}"
            ),
            None => assert!(
                cut.is_some(),
                "a finished stream always has a terminal event"
            ),
        }
        assert!(out.iter().all(|e| e.event.is_some() && json_ok(&e.data)));

        let mut chain = Chained::new(
            Box::new(AnthropicToOpenaiStream::new("m", true)),
            Box::new(ChatToResponsesStream::new("m")),
        );
        let out = translate(&mut chain, &upstream, cut);
        check_responses(&out, anthropic_could_end(fed), cut.is_some());
    }
}
