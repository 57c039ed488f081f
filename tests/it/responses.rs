//! `POST /v1/responses` through the sidecar: native passthrough to targets that serve
//! Responses, translation to Chat Completions and Anthropic targets, and the Responses
//! commit point (invisible failover before the first content, `response.failed` after).

use serde_json::{json, Value};
use switchyard::mock::MockServer;

use crate::support::*;

/// Two Responses-speaking mocks (`gpt-4o`), a Chat-only one and an Anthropic one behind
/// them (`crossed`, `to-claude`).
fn policy(primary: &MockServer, secondary: &MockServer) -> String {
    format!(
        r#"
providers:
  - name: primary
    api: openai
    baseUrl: {p}/v1
    wires: [chat, embeddings, responses]
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
    timeouts: {{connect: 1s, firstByte: 2s, idle: 2s}}
  - name: secondary
    api: openai
    baseUrl: {s}/v1
    wires: [chat, embeddings, responses]
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
    timeouts: {{connect: 1s, firstByte: 2s, idle: 2s}}
  - name: chat-only
    api: openai
    baseUrl: {s}/v1
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
    timeouts: {{connect: 1s, firstByte: 2s, idle: 2s}}
  - name: claude
    api: anthropic
    baseUrl: {s}
    auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}
    timeouts: {{connect: 1s, firstByte: 2s, idle: 2s}}
routes:
  - model: gpt-4o
    targets:
      - provider: primary
        model: gpt-4o
      - provider: secondary
        model: gpt-4o-mini
  - model: crossed
    targets:
      - provider: primary
        model: gpt-4o
      - provider: chat-only
        model: llama-3
  - model: no-holder
    targets:
      - provider: chat-only
        model: llama-3
      - provider: claude
        model: claude-sonnet-4-5
  - model: to-claude
    targets:
      - provider: primary
        model: gpt-4o
      - provider: claude
        model: claude-sonnet-4-5
"#,
        p = primary.url(),
        s = secondary.url(),
    )
}

pub async fn setup() -> (MockServer, MockServer, Sidecar) {
    provider_key_env();
    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let sidecar = Sidecar::start(&policy(&primary, &secondary)).await;
    (primary, secondary, sidecar)
}

pub fn body(model: &str, stream: bool) -> String {
    json!({"model": model, "stream": stream, "input": "hello", "x_unknown": {"kept": true}})
        .to_string()
}

/// The events of a streamed Responses call, as JSON data.
pub async fn stream(sidecar: &Sidecar, request: &str) -> (http::HeaderMap, Vec<Value>) {
    let response = post_stream(&sidecar.url("/v1/responses"), request).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let events = stream_events(response)
        .await
        .iter()
        .map(|e| {
            let data = e.split_once(": ").map_or(e.as_str(), |(_, d)| d);
            serde_json::from_str(data).unwrap()
        })
        .collect();
    (headers, events)
}

pub fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

pub fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect()
}

#[tokio::test]
async fn a_native_call_passes_through() {
    let (primary, secondary, sidecar) = setup().await;
    let reply = post(&sidecar.url("/v1/responses"), &body("gpt-4o", false), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "primary");
    let value = reply.json();
    assert_eq!(value["object"], "response");
    assert!(value["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(
        value["output"][0]["content"][0]["text"],
        "Hello from mock primary"
    );
    assert_eq!(primary.stats().recent[0].path, "/v1/responses");
    assert_eq!(secondary.calls(), 0);
}

#[tokio::test]
async fn a_native_stream_passes_through() {
    let (_primary, _secondary, sidecar) = setup().await;
    let (headers, events) = stream(&sidecar, &body("gpt-4o", true)).await;
    assert_eq!(headers["x-switchyard-provider"], "primary");
    let kinds = kinds(&events);
    assert_eq!(kinds[0], "response.created");
    assert_eq!(*kinds.last().unwrap(), "response.completed");
    assert_eq!(text_of(&events), "Hello from mock primary");
    let id = &events[0]["response"]["id"];
    assert_eq!(&events.last().unwrap()["response"]["id"], id);
}

#[tokio::test]
async fn an_error_status_fails_over() {
    let (primary, secondary, sidecar) = setup().await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    let reply = post(&sidecar.url("/v1/responses"), &body("gpt-4o", false), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-provider"), "secondary");
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
}

#[tokio::test]
async fn a_failed_event_before_content_fails_over_invisibly() {
    let (primary, _secondary, sidecar) = setup().await;
    primary.set_faults(faults(json!({"errorEventAfterChunks": 0})));
    let (headers, events) = stream(&sidecar, &body("gpt-4o", true)).await;
    assert_eq!(headers["x-switchyard-provider"], "secondary");
    let kinds = kinds(&events);
    assert_eq!(
        kinds.iter().filter(|k| **k == "response.created").count(),
        1
    );
    assert!(!kinds.contains(&"response.failed"), "{kinds:?}");
    assert_eq!(text_of(&events), "Hello from mock secondary");
}

#[tokio::test]
async fn a_rate_limited_failed_event_is_a_throttle() {
    let (primary, _secondary, sidecar) = setup().await;
    primary.set_faults(faults(
        json!({"errorEventAfterChunks": 0, "errorStatus": 429}),
    ));
    let (headers, _events) = stream(&sidecar, &body("gpt-4o", true)).await;
    assert_eq!(headers["x-switchyard-provider"], "secondary");
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(r#"model="gpt-4o",outcome="rate_limited"} 1"#),
        "{metrics}"
    );
    // Cooling down: the next call goes straight to the secondary.
    let (headers, _) = stream(&sidecar, &body("gpt-4o", true)).await;
    assert_eq!(headers["x-switchyard-provider"], "secondary");
    assert_eq!(primary.calls(), 1);
}

#[tokio::test]
async fn a_cut_before_content_fails_over_invisibly() {
    let (primary, _secondary, sidecar) = setup().await;
    primary.set_faults(faults(json!({"dropAfterChunks": 0})));
    let (headers, events) = stream(&sidecar, &body("gpt-4o", true)).await;
    assert_eq!(headers["x-switchyard-provider"], "secondary");
    assert_eq!(*kinds(&events).last().unwrap(), "response.completed");
}

#[tokio::test]
async fn a_cut_after_content_ends_with_response_failed() {
    let (primary, secondary, sidecar) = setup().await;
    primary.set_faults(faults(json!({"chunks": 6, "dropAfterChunks": 2})));
    let (headers, events) = stream(&sidecar, &body("gpt-4o", true)).await;
    assert_eq!(headers["x-switchyard-provider"], "primary");
    let kinds = kinds(&events);
    assert!(!kinds.contains(&"response.completed"), "{kinds:?}");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(last["response"]["id"], events[0]["response"]["id"]);
    let numbers: Vec<u64> = events
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(secondary.calls(), 0);
}

#[tokio::test]
async fn the_sidecars_own_errors_are_in_the_responses_format() {
    let (_primary, _secondary, sidecar) = setup().await;
    let reply = post(&sidecar.url("/v1/responses"), &body("nope", false), &[]).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "unknown_model");
    let reply = post(&sidecar.url("/v1/responses"), "not json", &[]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn a_previous_response_no_target_can_hold_is_a_clear_400() {
    let (primary, secondary, sidecar) = setup().await;
    let request =
        json!({"model": "no-holder", "input": "and then?", "previous_response_id": "resp_abc"});
    let reply = post(&sidecar.url("/v1/responses"), &request.to_string(), &[]).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["error"]["code"], "previous_response_not_found");
    assert_eq!((primary.calls(), secondary.calls()), (0, 0));
    // A route with a native target sends it there, and only there.
    let request =
        json!({"model": "crossed", "input": "and then?", "previous_response_id": "resp_abc"});
    let reply = post(&sidecar.url("/v1/responses"), &request.to_string(), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-provider"), "primary");
}

/// The id of a response created through the sidecar, and who created it.
async fn create(sidecar: &Sidecar, streamed: bool) -> (String, String) {
    if streamed {
        let (headers, events) = stream(sidecar, &body("gpt-4o", true)).await;
        let id = events[0]["response"]["id"].as_str().unwrap().to_owned();
        let provider = headers["x-switchyard-provider"]
            .to_str()
            .unwrap()
            .to_owned();
        return (id, provider);
    }
    let reply = post(&sidecar.url("/v1/responses"), &body("gpt-4o", false), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    (id, reply.header("x-switchyard-provider").to_owned())
}

fn continuation(previous: &str) -> String {
    json!({"model": "gpt-4o", "input": "and then?", "previous_response_id": previous}).to_string()
}

#[tokio::test]
async fn a_continuation_goes_to_the_target_that_holds_the_response() {
    let (primary, secondary, sidecar) = setup().await;
    for streamed in [false, true] {
        // The primary is down when the conversation starts: the secondary stores it.
        primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
        let (id, provider) = create(&sidecar, streamed).await;
        assert_eq!(provider, "secondary", "streamed: {streamed}");
        primary.set_faults(faults(json!({"errorRate": 0.0})));
        let before = primary.calls();
        let reply = post(&sidecar.url("/v1/responses"), &continuation(&id), &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("x-switchyard-provider"), "secondary");
        assert_eq!(primary.calls(), before, "the healthy primary never saw it");
        let sent: Value =
            serde_json::from_str(&secondary.stats().recent.last().unwrap().body).unwrap();
        assert_eq!(sent["previous_response_id"], id.as_str());
    }
    // An id this sidecar never saw created follows the plan as before.
    let reply = post(
        &sidecar.url("/v1/responses"),
        &continuation("resp_elsewhere"),
        &[],
    )
    .await;
    assert_eq!(reply.header("x-switchyard-provider"), "primary");
}

#[tokio::test]
async fn a_holder_that_fails_is_not_replaced_by_a_target_without_the_context() {
    let (primary, secondary, sidecar) = setup().await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    let (id, _) = create(&sidecar, false).await;
    primary.set_faults(faults(json!({"errorRate": 0.0})));
    secondary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    let before = primary.calls();
    let reply = post(&sidecar.url("/v1/responses"), &continuation(&id), &[]).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert!(reply.text().contains("secondary"), "{}", reply.text());
    assert_eq!(primary.calls(), before);
}
