//! The streaming commit point (`docs/architecture.md`): invisible failover before the
//! first content event, a well-formed error event after it, never a clean end on a
//! truncated answer.

use serde_json::json;

use crate::support::*;

async fn openai_stream(sidecar: &Sidecar) -> (http::HeaderMap, Vec<String>) {
    let response = post_stream(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("gpt-4o", true),
    )
    .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, stream_events(response).await)
}

async fn anthropic_stream(sidecar: &Sidecar) -> (http::HeaderMap, Vec<String>) {
    let response = post_stream(
        &sidecar.url("/v1/messages"),
        &messages_body("claude-sonnet", true),
    )
    .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, stream_events(response).await)
}

fn text_of(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|e| {
            serde_json::from_str::<serde_json::Value>(e.split_once(": ").map_or(e, |(_, d)| d)).ok()
        })
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .or(v["delta"]["text"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test]
async fn a_cut_before_the_first_content_fails_over_invisibly() {
    let (primary, secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"dropAfterChunks": 0})));
    let (headers, events) = openai_stream(&sidecar).await;
    assert_eq!(headers["x-switchyard-provider"], "secondary");
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert!(text_of(&events).contains("secondary"), "{events:?}");
    assert!(!events.iter().any(|e| e.contains("error")));
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
}

#[tokio::test]
async fn an_error_event_before_content_fails_over_invisibly() {
    let (primary, _secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"errorEventAfterChunks": 0})));
    let (headers, events) = anthropic_stream(&sidecar).await;
    assert_eq!(headers["x-switchyard-provider"], "claude-backup");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.starts_with("message_start"))
            .count(),
        1,
        "{events:?}"
    );
    assert!(events.last().unwrap().starts_with("message_stop"));
    assert!(!events.iter().any(|e| e.starts_with("error")));
}

#[tokio::test]
async fn a_cut_after_content_ends_with_an_error_event_openai() {
    let (primary, secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"chunks": 6, "dropAfterChunks": 2})));
    let (headers, events) = openai_stream(&sidecar).await;
    assert_eq!(headers["x-switchyard-provider"], "primary");
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "stream_cut", "{events:?}");
    assert!(
        !events.iter().any(|e| e == "[DONE]"),
        "never a clean end on a truncated answer"
    );
    assert!(!text_of(&events).is_empty());
    assert_eq!(
        secondary.calls(),
        0,
        "after the commit point there is no failover"
    );
    assert!(sidecar
        .metrics()
        .await
        .contains(r#"outcome="stream_cut"} 1"#));
}

#[tokio::test]
async fn a_cut_after_content_ends_with_an_error_event_anthropic() {
    let (primary, _secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"chunks": 6, "dropAfterChunks": 3})));
    let (_, events) = anthropic_stream(&sidecar).await;
    let last = events.last().unwrap();
    assert!(last.starts_with("error: "), "{events:?}");
    assert!(!events.iter().any(|e| e.starts_with("message_stop")));
}

#[tokio::test]
async fn an_in_band_error_after_content_is_passed_on_and_counted() {
    let (primary, _secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"chunks": 6, "errorEventAfterChunks": 2})));
    let (_, events) = anthropic_stream(&sidecar).await;
    assert!(
        events.last().unwrap().contains("overloaded_error"),
        "{events:?}"
    );
    assert!(sidecar
        .metrics()
        .await
        .contains(r#"outcome="stream_error"} 1"#));
}

#[tokio::test]
async fn a_stall_after_content_ends_with_an_idle_timeout_event() {
    let (primary, _secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"chunks": 3, "chunkInterval": "2500ms"})));
    let (_, events) = openai_stream(&sidecar).await;
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "idle_timeout", "{events:?}");
}

#[tokio::test]
async fn a_stall_before_content_fails_over() {
    let (primary, secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"firstByte": "3s"})));
    let (headers, events) = openai_stream(&sidecar).await;
    assert_eq!(headers["x-switchyard-provider"], "secondary");
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(secondary.calls(), 1);
}

#[tokio::test]
async fn events_pass_through_one_by_one() {
    let (primary, _secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"chunks": 5, "chunkInterval": "30ms"})));
    let response = post_stream(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("gpt-4o", true),
    )
    .await;
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames.push(data);
        }
    }
    let content_frames = frames
        .iter()
        .filter(|f| String::from_utf8_lossy(f).contains("\"content\":\""))
        .count();
    assert!(
        content_frames >= 4,
        "content events arrive as they are produced, not coalesced: {frames:?}"
    );
}
