//! `POST /v1/messages/count_tokens`: passed to the route's Anthropic targets with
//! failover; a route without one answers a clear error in Anthropic's format.

use serde_json::json;

use crate::support::*;

fn count_body(model: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]}).to_string()
}

#[tokio::test]
async fn token_counts_fail_over_between_anthropic_targets() {
    let (primary, secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 529})));
    let url = sidecar.url("/v1/messages/count_tokens");
    let reply = post(&url, &count_body("claude-sonnet"), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "claude-backup");
    assert!(reply.json()["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        secondary.stats().recent[0].path,
        "/v1/messages/count_tokens"
    );
}

#[tokio::test]
async fn a_route_without_an_anthropic_target_says_so_in_anthropics_format() {
    let (primary, secondary, sidecar) = pair("").await;
    let url = sidecar.url("/v1/messages/count_tokens");
    let reply = post(&url, &count_body("gpt-4o"), &[]).await;
    // Resending cannot help: a client error, not a gateway failure.
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-error"), "bad_request");
    let body = reply.json();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("needs an Anthropic target"), "{message}");
    assert_eq!((primary.calls(), secondary.calls()), (0, 0));
}
