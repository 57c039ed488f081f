//! Each fault, as a client sees it.

use std::time::Duration;

use http::StatusCode;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::support::{body_json, collect_frames, events, post, request};
use crate::mock::{Faults, MockServer};

const CHAT: &str = r#"{"model":"gpt-4o","messages":[]}"#;
const CHAT_STREAM: &str = r#"{"model":"gpt-4o","stream":true,"messages":[]}"#;
const MESSAGES_STREAM: &str = r#"{"model":"c","stream":true,"messages":[]}"#;

async fn with_faults(faults: Faults) -> MockServer {
    MockServer::start_on(([127, 0, 0, 1], 0).into(), "f", faults)
        .await
        .expect("mock starts")
}

#[tokio::test]
async fn error_rate_follows_the_counter_pattern() {
    let mock = MockServer::start("f").await.expect("mock starts");
    let resp = request(
        mock.addr(),
        "POST",
        "/_mock/faults",
        r#"{"errorRate":0.5}"#,
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            post(mock.addr(), "/v1/chat/completions", CHAT)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 503, 200, 503]);
    let resp = {
        mock.set_faults(Faults {
            error_rate: 1.0,
            ..Faults::default()
        });
        post(mock.addr(), "/v1/messages", CHAT).await
    };
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = body_json(resp).await;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn a_429_carries_retry_after_extra_headers_and_a_raw_body() {
    let raw =
        r#"{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
    let mock = with_faults(Faults {
        error_rate: 1.0,
        error_status: 429,
        retry_after: Some(7),
        error_headers: vec![("x-ratelimit-reset-requests".into(), "6m0s".into())],
        ..Faults::default()
    })
    .await;
    let resp = post(mock.addr(), "/v1/chat/completions", CHAT).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(resp.headers()["x-ratelimit-reset-requests"], "6m0s");
    assert_eq!(
        body_json(resp).await["error"]["code"],
        "rate_limit_exceeded"
    );

    let resp = request(
        mock.addr(),
        "POST",
        "/_mock/faults",
        &serde_json::json!({"errorRate": 1, "errorStatus": 429, "errorBody": raw}).to_string(),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = post(mock.addr(), "/v1/chat/completions", CHAT).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(body_json(resp).await["error"]["code"], "insufficient_quota");
}

#[tokio::test]
async fn drop_after_chunks_cuts_the_stream() {
    let mock = with_faults(Faults {
        drop_after_chunks: Some(2),
        ..Faults::default()
    })
    .await;
    let (bytes, cut) =
        collect_frames(post(mock.addr(), "/v1/chat/completions", CHAT_STREAM).await).await;
    assert!(cut, "the body must end in an error, not cleanly");
    let evs = events(&bytes);
    assert_eq!(evs.len(), 3, "role chunk and two deltas");
    assert!(evs.iter().all(|e| e.data != "[DONE]"));

    let (bytes, cut) =
        collect_frames(post(mock.addr(), "/v1/messages", MESSAGES_STREAM).await).await;
    assert!(cut);
    let names: Vec<String> = events(&bytes).into_iter().filter_map(|e| e.event).collect();
    assert_eq!(
        names.iter().filter(|n| *n == "content_block_delta").count(),
        2
    );
    assert!(!names.iter().any(|n| n == "message_stop"));

    let (bytes, cut) = collect_frames(post(mock.addr(), "/v1/chat/completions", CHAT).await).await;
    assert!(cut, "a non-streaming body is cut too");
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
}

#[tokio::test]
async fn error_event_after_chunks_is_sent_in_band() {
    let mock = with_faults(Faults {
        error_event_after_chunks: Some(1),
        ..Faults::default()
    })
    .await;
    let (bytes, cut) =
        collect_frames(post(mock.addr(), "/v1/messages", MESSAGES_STREAM).await).await;
    assert!(!cut);
    let evs = events(&bytes);
    let names: Vec<&str> = evs.iter().filter_map(|e| e.event.as_deref()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "error"
        ]
    );
    let error: Value = serde_json::from_str(&evs[4].data).expect("JSON");
    assert_eq!(error["error"]["type"], "overloaded_error");

    let (bytes, _) =
        collect_frames(post(mock.addr(), "/v1/chat/completions", CHAT_STREAM).await).await;
    let evs = events(&bytes);
    assert_eq!(evs.len(), 3);
    let error: Value = serde_json::from_str(&evs[2].data).expect("JSON");
    assert_eq!(error["error"]["type"], "server_error");
}

#[tokio::test(start_paused = true)]
async fn blackhole_reads_and_never_answers() {
    let mock = with_faults(Faults {
        blackhole: true,
        ..Faults::default()
    })
    .await;
    let call = post(mock.addr(), "/v1/chat/completions", CHAT);
    let answered = tokio::time::timeout(Duration::from_secs(3600), call).await;
    assert!(
        answered.is_err(),
        "a blackholed call must never be answered"
    );
    assert_eq!(mock.calls(), 1);
    assert_eq!(mock.stats().recent[0].model.as_deref(), Some("gpt-4o"));
}

#[tokio::test]
async fn down_refuses_connections_then_comes_back_on_the_same_port() {
    let mock = MockServer::start("f").await.expect("mock starts");
    let addr = mock.addr();
    let stream = TcpStream::connect(addr).await.expect("connects");
    let (mut open, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    let conn = tokio::spawn(conn);
    mock.set_down(true).await;
    let err = TcpStream::connect(addr)
        .await
        .expect_err("refused while down");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    // The open keep-alive connection was cut too.
    let _ = conn.await;
    let req = http::Request::post("/v1/chat/completions")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            CHAT.as_bytes(),
        )))
        .expect("valid request");
    assert!(open.send_request(req).await.is_err());

    mock.set_down(false).await;
    assert_eq!(mock.addr(), addr);
    assert_eq!(
        post(addr, "/v1/chat/completions", CHAT).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn down_for_through_the_control_api_comes_back_by_itself() {
    let mock = MockServer::start("f").await.expect("mock starts");
    let resp = request(
        mock.addr(),
        "POST",
        "/_mock/faults",
        r#"{"downFor":"2s"}"#,
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["connection"], "close");
    let stored = body_json(resp).await;
    assert!(
        stored.get("downFor").is_none(),
        "downFor is an action, not kept"
    );
    let err = TcpStream::connect(mock.addr())
        .await
        .expect_err("refused while down");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    // Paused time: the mock's own timer fires at 2s, before this one.
    tokio::time::sleep(Duration::from_millis(2001)).await;
    assert_eq!(
        post(mock.addr(), "/v1/chat/completions", CHAT)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn latency_delays_headers_and_first_byte_delays_the_body() {
    let mock = with_faults(Faults {
        latency: Some(Duration::from_millis(250)),
        ..Faults::default()
    })
    .await;
    let start = Instant::now();
    let resp = post(mock.addr(), "/v1/chat/completions", CHAT).await;
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert_eq!(resp.status(), StatusCode::OK);

    mock.set_faults(Faults {
        first_byte: Some(Duration::from_secs(1)),
        chunk_interval: Some(Duration::from_millis(100)),
        ..Faults::default()
    });
    let start = Instant::now();
    let resp = post(mock.addr(), "/v1/messages", MESSAGES_STREAM).await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "headers come at once"
    );
    let (bytes, _) = collect_frames(resp).await;
    // One second to the first byte, then three gaps between the four deltas.
    assert!(start.elapsed() >= Duration::from_millis(1300));
    assert_eq!(events(&bytes).len(), 10);
}

#[tokio::test]
async fn faults_api_rejects_unknown_fields_and_reset_clears() {
    let mock = MockServer::start("f").await.expect("mock starts");
    let resp = request(
        mock.addr(),
        "POST",
        "/_mock/faults",
        r#"{"errorRatio":1}"#,
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = request(
        mock.addr(),
        "POST",
        "/_mock/faults",
        r#"{"errorRate":2}"#,
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = request(
        mock.addr(),
        "POST",
        "/_mock/faults",
        r#"{"chunks":6,"firstByte":"10ms"}"#,
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = request(mock.addr(), "GET", "/_mock/faults", "", &[]).await;
    let faults: Faults = serde_json::from_value(body_json(resp).await).expect("faults parse");
    assert_eq!(faults, mock.faults());
    assert_eq!(faults.chunks, 6);
    assert_eq!(faults.first_byte, Some(Duration::from_millis(10)));
    post(mock.addr(), "/v1/chat/completions", CHAT).await;
    assert_eq!(mock.calls(), 1, "control calls are not counted");

    let resp = request(mock.addr(), "POST", "/_mock/reset", "", &[]).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(mock.calls(), 0);
    assert_eq!(mock.faults(), Faults::default());
}

#[tokio::test]
async fn chunks_sets_the_number_of_deltas() {
    let mock = with_faults(Faults {
        chunks: 40,
        ..Faults::default()
    })
    .await;
    let (bytes, _) = collect_frames(post(mock.addr(), "/v1/messages", MESSAGES_STREAM).await).await;
    let deltas: Vec<Value> = events(&bytes)
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| serde_json::from_str(&e.data).expect("JSON"))
        .collect();
    assert_eq!(deltas.len(), 40);
    assert!(deltas
        .iter()
        .all(|d| !d["delta"]["text"].as_str().expect("text").is_empty()));
}
