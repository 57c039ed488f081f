//! `POST /v1/responses` translated: to a Chat Completions target through the hub, and to
//! an Anthropic target through the hub and the Chat ⇄ Messages converters; streams in
//! the order the SDKs require, tool round trips, and a break after the commit point.

use serde_json::{json, Value};

use crate::responses::{body, kinds, setup, stream, text_of};
use crate::support::*;

/// The order the SDKs rely on: created first, one id throughout, every item and part
/// opened before its deltas and closed before the end, sequence numbers increasing.
fn assert_well_ordered(events: &[Value]) {
    let kinds = kinds(events);
    assert_eq!(kinds[0], "response.created", "{kinds:?}");
    assert_eq!(kinds[1], "response.in_progress", "{kinds:?}");
    let id = &events[0]["response"]["id"];
    assert!(id.as_str().unwrap().starts_with("resp_"));
    let mut open = std::collections::BTreeSet::new();
    let mut closed = std::collections::BTreeSet::new();
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], n as u64, "{event}");
        let kind = event["type"].as_str().unwrap();
        let item = event["item"]["id"].as_str().or(event["item_id"].as_str());
        match kind {
            "response.output_item.added" => assert!(open.insert(item.unwrap().to_owned())),
            "response.output_item.done" => {
                assert!(open.remove(item.unwrap()), "closed before opened: {event}");
                closed.insert(item.unwrap().to_owned());
            }
            k if k.ends_with(".delta") => {
                assert!(
                    open.contains(item.unwrap()),
                    "delta outside its item: {event}"
                )
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                assert_eq!(&event["response"]["id"], id);
                assert_eq!(n, events.len() - 1, "the end is last");
            }
            _ => {}
        }
    }
    if *kinds.last().unwrap() == "response.completed" {
        assert!(open.is_empty(), "items left open: {open:?}");
        let output = events.last().unwrap()["response"]["output"]
            .as_array()
            .unwrap();
        assert_eq!(output.len(), closed.len());
    }
}

#[tokio::test]
async fn a_call_crosses_to_a_chat_target() {
    let (primary, secondary, sidecar) = setup().await;
    primary.set_faults(faults(json!({"errorRate": 1.0})));
    let reply = post(&sidecar.url("/v1/responses"), &body("crossed", false), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "chat-only");
    let value = reply.json();
    assert!(value["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(value["status"], "completed");
    assert_eq!(value["output"][0]["type"], "message");
    assert!(value["output"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("msg_"));
    assert_eq!(
        value["output"][0]["content"][0]["text"],
        "Hello from mock secondary"
    );
    assert!(value["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(secondary.stats().recent[0].path, "/v1/chat/completions");
}

#[tokio::test]
async fn a_stream_crosses_to_a_chat_target_in_order() {
    let (primary, _secondary, sidecar) = setup().await;
    primary.set_faults(faults(json!({"errorRate": 1.0})));
    let (headers, events) = stream(&sidecar, &body("crossed", true)).await;
    assert_eq!(headers["x-switchyard-provider"], "chat-only");
    assert_well_ordered(&events);
    assert_eq!(*kinds(&events).last().unwrap(), "response.completed");
    assert_eq!(text_of(&events), "Hello from mock secondary");
    let done = &events.last().unwrap()["response"];
    assert!(done["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_tool_round_trip_crosses_to_chat_and_to_anthropic() {
    let (primary, _secondary, sidecar) = setup().await;
    primary.set_faults(faults(json!({"errorRate": 1.0})));
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    for model in ["crossed", "to-claude"] {
        let first = json!({"model": model, "input": "weather in Paris?", "tools": tools});
        let reply = post(&sidecar.url("/v1/responses"), &first.to_string(), &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let call = reply.json()["output"][0].clone();
        assert_eq!(call["type"], "function_call", "{call}");
        assert!(call["id"].as_str().unwrap().starts_with("fc_"));
        assert_eq!(call["name"], "get_weather");
        let second = json!({"model": model, "stream": true, "tools": tools, "tool_choice": "auto", "input": [
            {"role": "user", "content": "weather in Paris?"},
            {"type": "function_call", "call_id": call["call_id"], "name": "get_weather", "arguments": call["arguments"]},
            {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
        ]});
        let (_, events) = stream(&sidecar, &second.to_string()).await;
        assert_well_ordered(&events);
        // The tool result reached the target: the mock answers it with text.
        assert_eq!(text_of(&events), "Hello from mock secondary", "{model}");
        assert_eq!(*kinds(&events).last().unwrap(), "response.completed");
    }
}

#[tokio::test]
async fn a_call_crosses_to_an_anthropic_target() {
    let (primary, secondary, sidecar) = setup().await;
    primary.set_faults(faults(json!({"errorRate": 1.0})));
    let reply = post(
        &sidecar.url("/v1/responses"),
        &body("to-claude", false),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "claude");
    assert_eq!(
        reply.json()["output"][0]["content"][0]["text"],
        "Hello from mock secondary"
    );
    let (_, events) = stream(&sidecar, &body("to-claude", true)).await;
    assert_well_ordered(&events);
    assert_eq!(*kinds(&events).last().unwrap(), "response.completed");
    assert_eq!(text_of(&events), "Hello from mock secondary");
    assert!(secondary
        .stats()
        .recent
        .iter()
        .all(|r| r.path == "/v1/messages"));
}

#[tokio::test]
async fn a_crossed_break_after_content_ends_with_response_failed() {
    let (primary, secondary, sidecar) = setup().await;
    primary.set_faults(faults(json!({"errorRate": 1.0})));
    secondary.set_faults(faults(json!({"chunks": 6, "dropAfterChunks": 2})));
    for model in ["crossed", "to-claude"] {
        let (_, events) = stream(&sidecar, &body(model, true)).await;
        assert_well_ordered(&events);
        let last = events.last().unwrap();
        assert_eq!(last["type"], "response.failed", "{model}: {last}");
        assert_eq!(last["response"]["status"], "failed");
        assert!(!kinds(&events).contains(&"response.completed"));
        assert!(!text_of(&events).is_empty());
    }
}
