//! The Responses streams: Chat → Responses translation, the native pass-through trail
//! (and the `response.failed` it writes when a stream is cut), and the Responses event
//! classifier, over arbitrary upstream SSE bytes.

use switchyard::event_kind::Usage;
use switchyard::policy::spec::Wire;
use switchyard::translate::{ChatToResponsesStream, ResponsesTrail, StreamTranslator};
use switchyard::wire::{self, responses};

use super::stream_translators::{
    check_responses, events as frame, openai_could_end, responses_type, translate,
};

/// The first byte picks where a second run cuts the stream; the rest is upstream SSE.
pub fn run(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let upstream = frame(stream);
    let cut_at = usize::from(cut) % (upstream.len() + 1);

    for cut in [None, Some(cut_at)] {
        let fed = cut.map_or(&upstream[..], |k| &upstream[..k]);
        let out = translate(&mut ChatToResponsesStream::new("m"), &upstream, cut);
        check_responses(&out, openai_could_end(fed), cut.is_some());
    }

    // The trail passes every event through byte for byte.
    let mut trail = ResponsesTrail::new();
    let mut passed = Vec::new();
    let mut top = None;
    for ev in &upstream[..cut_at] {
        for b in trail.event(ev) {
            passed.extend_from_slice(&b);
        }
        let seq = serde_json::from_str::<serde_json::Value>(&ev.data)
            .ok()
            .and_then(|v| v.get("sequence_number").and_then(serde_json::Value::as_u64));
        top = top.max(seq);
    }
    let raw: Vec<u8> = upstream[..cut_at]
        .iter()
        .flat_map(|e| e.raw.to_vec())
        .collect();
    assert_eq!(passed, raw);
    if let Some(failed) = trail.fail("upstream_cut", "cut") {
        let out = frame(&failed.concat());
        assert_eq!(out.len(), 1, "one response.failed");
        assert_eq!(responses_type(&out[0]), "response.failed");
        let v: serde_json::Value = serde_json::from_str(&out[0].data).expect("JSON");
        let seq = v["sequence_number"].as_u64().expect("a sequence number");
        assert!(
            top.is_none_or(|t| seq > t),
            "after every sequence number seen"
        );
    }

    // The classifiers take anything.
    let mut usage = Usage::default();
    for ev in &upstream {
        responses::classify(ev, &mut usage);
        for wire in [
            Wire::Chat,
            Wire::Messages,
            Wire::Responses,
            Wire::Embeddings,
        ] {
            wire::inspect(wire, ev, &mut Usage::default());
        }
    }
    responses::body_usage(stream);
}
