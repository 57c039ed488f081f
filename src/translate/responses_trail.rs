//! A native Responses stream passed through byte for byte, remembering just enough (the
//! last response snapshot and sequence number) to end it with a well-formed
//! `response.failed` if the upstream breaks after the commit point.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::StreamTranslator;
use crate::sse::{format_event, Event};

/// Passes a Responses stream through and knows how to fail it.
#[derive(Default)]
pub struct ResponsesTrail {
    /// The last `response` object an event carried (`response.created`, `in_progress`).
    snapshot: Option<Value>,
    /// The highest `sequence_number` seen.
    sequence: Option<u64>,
}

#[derive(Deserialize)]
struct Peek {
    sequence_number: Option<u64>,
    response: Option<Value>,
}

impl Peek {
    /// Reads what the trail keeps from an event. The typed peek refuses an object with a
    /// repeated key, which JSON clients read last-wins; such an event is then read as a
    /// tree the same way, so its sequence number is not missed (found by fuzzing: the
    /// `response.failed` written after it reused a number the app had already seen).
    fn of(data: &str) -> Option<Peek> {
        serde_json::from_str::<Peek>(data).ok().or_else(|| {
            let v: Value = serde_json::from_str(data).ok()?;
            Some(Peek {
                sequence_number: v.get("sequence_number").and_then(Value::as_u64),
                response: v.get("response").cloned(),
            })
        })
    }
}

impl ResponsesTrail {
    /// A trail that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl StreamTranslator for ResponsesTrail {
    fn event(&mut self, ev: &Event) -> Vec<Bytes> {
        // Only lifecycle events carry the whole response; deltas are peeked for their
        // sequence number without keeping anything.
        if let Some(peek) = Peek::of(&ev.data) {
            if let Some(n) = peek.sequence_number {
                self.sequence = Some(self.sequence.map_or(n, |s| s.max(n)));
            }
            if let Some(response) = peek.response.filter(Value::is_object) {
                self.snapshot = Some(response);
            }
        }
        vec![ev.raw.clone()]
    }

    fn finish(&mut self) -> Vec<Bytes> {
        Vec::new()
    }

    fn fail(&mut self, code: &str, message: &str) -> Option<Vec<Bytes>> {
        let mut response = self.snapshot.take()?;
        response["status"] = json!("failed");
        response["completed_at"] = Value::Null;
        response["error"] =
            json!({"code": "server_error", "message": format!("{message} ({code})")});
        let sequence = self.sequence.map_or(0, |s| s + 1);
        let data =
            json!({"type": "response.failed", "sequence_number": sequence, "response": response});
        Some(vec![format_event(
            Some("response.failed"),
            &data.to_string(),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_through_and_fails_with_the_same_response() {
        let mut trail = ResponsesTrail::new();
        let created = r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_7","status":"in_progress","output":[]}}"#;
        let delta = r#"{"type":"response.output_text.delta","sequence_number":4,"delta":"Hi"}"#;
        for data in [created, delta] {
            let raw = format_event(None, data);
            let ev = Event {
                event: None,
                data: data.to_owned(),
                raw: raw.clone(),
            };
            assert_eq!(trail.event(&ev), vec![raw]);
        }
        let failed = trail.fail("stream_cut", "cut").unwrap();
        let text = std::str::from_utf8(&failed[0]).unwrap();
        let data: Value =
            serde_json::from_str(text.split("data: ").nth(1).unwrap().trim()).unwrap();
        assert_eq!(data["type"], "response.failed");
        assert_eq!(data["sequence_number"], 5);
        assert_eq!(data["response"]["id"], "resp_7");
        assert_eq!(data["response"]["status"], "failed");
    }

    #[test]
    fn a_repeated_key_counts_as_clients_read_it() {
        let mut trail = ResponsesTrail::new();
        let created = r#"{"type":"response.created","sequence_number":0,"response":{"id":"r","status":"in_progress"}}"#;
        let delta = r#"{"type":"response.output_text.delta","sequence_number":4,"delta":"Hi","sequence_number":5}"#;
        for data in [created, delta] {
            trail.event(&Event {
                event: None,
                data: data.to_owned(),
                raw: format_event(None, data),
            });
        }
        let failed = trail.fail("stream_cut", "cut").unwrap();
        let text = std::str::from_utf8(&failed[0]).unwrap();
        let data: Value =
            serde_json::from_str(text.split("data: ").nth(1).unwrap().trim()).unwrap();
        assert_eq!(data["sequence_number"], 6);
    }
}
