//! The vendors' own stream framings and their translators: the AWS event-stream decoder
//! (Bedrock's ConverseStream) and Gemini's SSE through their converters. Invariants: a
//! split read decodes the same events as a whole one, nothing follows a `frameError`;
//! what a translator writes is whole SSE events of JSON ending in its dialect's terminal
//! event, and ends cleanly only when the upstream could have (never a truncated answer
//! passed off as complete), also when the proxy fails it part-way.

use switchyard::eventstream::{Decoder, FRAME_ERROR};
use switchyard::sse::Event;
use switchyard::translate::{
    AnthropicToOpenaiStream, Chained, ConverseToAnthropicStream, GeminiToChatStream,
};

use super::stream_translators::{events, json_ok, translate};

fn decode(chunks: &[&[u8]]) -> Vec<Event> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(e) = decoder.next_event() {
            out.push(e);
        }
    }
    out
}

/// The AWS event-stream decoder, whole against split, and its events through
/// Converse → Messages → Chat.
fn eventstream(step: usize, cut: usize, stream: &[u8]) {
    let whole = decode(&[stream]);
    let chunks: Vec<&[u8]> = stream.chunks(step).collect();
    assert_eq!(whole, decode(&chunks), "any split decodes the same events");
    if let Some(at) = whole
        .iter()
        .position(|e| e.event.as_deref() == Some(FRAME_ERROR))
    {
        assert_eq!(at + 1, whole.len(), "nothing follows a frame error");
    }

    let cut_at = cut % (whole.len() + 1);
    for cut in [None, Some(cut_at)] {
        let fed = cut.map_or(&whole[..], |k| &whole[..k]);
        let could_end = fed.iter().any(|e| e.event.as_deref() == Some("metadata"));
        let out = translate(&mut ConverseToAnthropicStream::new("m"), &whole, cut);
        match out.last() {
            Some(last) if last.event.as_deref() == Some("message_stop") => {
                assert!(could_end, "clean end without a metadata event");
            }
            Some(last) => assert!(
                last.event.as_deref() == Some("error") || cut.is_some(),
                "{last:?}"
            ),
            None => assert!(cut.is_some(), "a finished stream has a terminal event"),
        }
        assert!(out.iter().all(|e| e.event.is_some() && json_ok(&e.data)));

        let mut chain = Chained::new(
            Box::new(ConverseToAnthropicStream::new("m")),
            Box::new(AnthropicToOpenaiStream::new("m", true)),
        );
        let out = translate(&mut chain, &whole, cut);
        if out.last().is_some_and(|e| e.data == "[DONE]") {
            assert!(could_end, "clean Chat end without a metadata event");
        }
        assert!(out
            .iter()
            .filter(|e| e.data != "[DONE]")
            .all(|e| json_ok(&e.data)));
    }
}

/// Gemini's `streamGenerateContent?alt=sse` through Gemini → Chat.
fn gemini(cut: usize, stream: &[u8]) {
    let upstream = events(stream);
    let cut_at = cut % (upstream.len() + 1);
    for cut in [None, Some(cut_at)] {
        let fed = cut.map_or(&upstream[..], |k| &upstream[..k]);
        let could_end = fed.iter().any(|e| e.data.contains("finishReason"));
        let out = translate(&mut GeminiToChatStream::new("m", true, 0), &upstream, cut);
        match out.last() {
            Some(last) if last.data == "[DONE]" => {
                assert!(could_end, "clean end without a finish reason");
            }
            Some(last) => assert!(
                last.data.starts_with("{\"error\"") || cut.is_some(),
                "{last:?}"
            ),
            None => assert!(cut.is_some(), "a finished stream has a terminal event"),
        }
        assert!(out
            .iter()
            .filter(|e| e.data != "[DONE]")
            .all(|e| json_ok(&e.data)));
    }
}

/// The first byte picks the framing (even: AWS event-stream, odd: Gemini SSE) and the
/// read size; the second where a second run cuts the stream; the rest is the upstream's.
pub fn run(data: &[u8]) {
    let [mode, cut, stream @ ..] = data else {
        return;
    };
    let step = usize::from(mode / 2 % 16) + 1;
    if mode % 2 == 0 {
        eventstream(step, usize::from(*cut), stream);
    } else {
        gemini(usize::from(*cut), stream);
    }
}
