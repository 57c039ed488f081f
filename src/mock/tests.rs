//! End-to-end tests of the mock over real loopback connections.

mod faults;
mod support;

use http::StatusCode;
use serde_json::{json, Value};

use super::{MockServer, Stats};
use support::{body_json, collect_frames, events, post, request};

#[tokio::test]
async fn openai_chat_completion_is_sdk_shaped() {
    let mock = MockServer::start("a").await.expect("mock starts");
    let resp = post(
        mock.addr(),
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-mock-name"], "a");
    let body = body_json(resp).await;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o");
    assert!(body["id"].as_str().expect("id").starts_with("chatcmpl-"));
    assert!(body["created"].is_u64());
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from mock a"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], 4);
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().expect("prompt") + 4)
    );
}

#[tokio::test]
async fn openai_stream_has_role_deltas_finish_usage_and_done() {
    let mock = MockServer::start("a").await.expect("mock starts");
    let resp = post(
        mock.addr(),
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#,
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (bytes, cut) = collect_frames(resp).await;
    assert!(!cut);
    let evs = events(&bytes);
    assert_eq!(evs.len(), 1 + 4 + 1 + 1 + 1);
    assert_eq!(evs.last().expect("done").data, "[DONE]");
    let chunks: Vec<Value> = evs[..evs.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).expect("chunk is JSON"))
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "gpt-4o"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks[1..5]
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .expect("content")
        })
        .collect();
    assert_eq!(text, "Hello from mock a");
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[6]["choices"], json!([]));
    assert_eq!(chunks[6]["usage"]["completion_tokens"], 4);
}

#[tokio::test]
async fn anthropic_stream_has_the_real_event_sequence() {
    let mock = MockServer::start("b").await.expect("mock starts");
    let resp = post(
        mock.addr(),
        "/v1/messages",
        r#"{"model":"claude-x","max_tokens":10,"stream":true,"messages":[]}"#,
    )
    .await;
    let (bytes, _) = collect_frames(resp).await;
    let evs = events(&bytes);
    let names: Vec<&str> = evs
        .iter()
        .map(|e| e.event.as_deref().expect("named"))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let data: Vec<Value> = evs
        .iter()
        .map(|e| serde_json::from_str(&e.data).expect("JSON"))
        .collect();
    assert_eq!(data[0]["message"]["model"], "claude-x");
    let text: String = data[3..7]
        .iter()
        .map(|d| d["delta"]["text"].as_str().expect("text delta"))
        .collect();
    assert_eq!(text, "Hello from mock b");
    assert_eq!(data[8]["delta"]["stop_reason"], "end_turn");
    assert_eq!(data[8]["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn anthropic_message_and_tool_use() {
    let mock = MockServer::start("b").await.expect("mock starts");
    let body = body_json(
        post(
            mock.addr(),
            "/v1/messages",
            r#"{"model":"claude-x","messages":[]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], "Hello from mock b");
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["usage"]["input_tokens"].as_u64().expect("input") >= 1);

    let tools =
        r#"{"model":"claude-x","tools":[{"name":"get_weather","input_schema":{}}],"messages":[]}"#;
    let body = body_json(post(mock.addr(), "/v1/messages", tools).await).await;
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["content"][0]["type"], "tool_use");
    assert_eq!(body["content"][0]["name"], "get_weather");
    assert_eq!(body["content"][0]["input"], json!({"mock": "b"}));

    let stream = tools.replace(r#""messages""#, r#""stream":true,"messages""#);
    let (bytes, _) = collect_frames(post(mock.addr(), "/v1/messages", &stream).await).await;
    let data: Vec<Value> = events(&bytes)
        .iter()
        .map(|e| serde_json::from_str(&e.data).expect("JSON"))
        .collect();
    assert_eq!(data[1]["content_block"]["type"], "tool_use");
    let args: String = data
        .iter()
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| {
            d["delta"]["partial_json"]
                .as_str()
                .expect("input_json_delta")
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).expect("args"),
        json!({"mock": "b"})
    );
    assert!(data.iter().any(|d| d["delta"]["stop_reason"] == "tool_use"));
}

#[tokio::test]
async fn openai_tool_calls_stream_argument_fragments() {
    let mock = MockServer::start("a").await.expect("mock starts");
    let req = r#"{"model":"m","stream":true,"tools":[{"type":"function","function":{"name":"lookup"}}],"messages":[]}"#;
    let (bytes, _) = collect_frames(post(mock.addr(), "/v1/chat/completions", req).await).await;
    let evs = events(&bytes);
    let chunks: Vec<Value> = evs[..evs.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).expect("JSON"))
        .collect();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0][0]["function"]["name"], "lookup");
    let args: String = calls
        .iter()
        .map(|c| c[0]["function"]["arguments"].as_str().expect("fragment"))
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).expect("args"),
        json!({"mock": "a"})
    );
    let last = &chunks[chunks.len() - 1];
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn embeddings_and_azure_paths() {
    let mock = MockServer::start("a").await.expect("mock starts");
    let body = body_json(
        post(
            mock.addr(),
            "/v1/embeddings",
            r#"{"model":"e","input":["x","y"]}"#,
        )
        .await,
    )
    .await;
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().expect("data").len(), 2);
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(
        body["data"][0]["embedding"]
            .as_array()
            .expect("floats")
            .len(),
        8
    );

    let body = body_json(
        post(
            mock.addr(),
            "/v1/embeddings",
            r#"{"model":"e","input":"x","encoding_format":"base64","dimensions":4}"#,
        )
        .await,
    )
    .await;
    // 4 little-endian f32s = 16 bytes = 24 base64 characters.
    assert_eq!(
        body["data"][0]["embedding"].as_str().expect("base64").len(),
        24
    );

    let azure = "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21";
    let body = body_json(post(mock.addr(), azure, r#"{"messages":[]}"#).await).await;
    assert_eq!(body["model"], "my-gpt");
    let body = body_json(
        post(
            mock.addr(),
            "/openai/deployments/emb/embeddings?api-version=1",
            r#"{"input":"x"}"#,
        )
        .await,
    )
    .await;
    assert_eq!(body["model"], "emb");
    let stats = mock.stats();
    assert_eq!(stats.recent[2].model.as_deref(), Some("my-gpt"));
    assert_eq!(
        stats.recent[2].query.as_deref(),
        Some("api-version=2024-10-21")
    );
}

#[tokio::test]
async fn invalid_json_is_a_400_in_the_api_format() {
    let mock = MockServer::start("a").await.expect("mock starts");
    let resp = post(mock.addr(), "/v1/chat/completions", "{not json").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = body_json(resp).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let resp = post(mock.addr(), "/v1/messages", "[1,").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = body_json(resp).await;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let resp = request(mock.addr(), "POST", "/v2/nothing", "{}", &[]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stats_record_calls_paths_and_headers() {
    let mock = MockServer::start("a").await.expect("mock starts");
    let headers = [("authorization", "Bearer sk-test"), ("x-custom", "1")];
    request(
        mock.addr(),
        "POST",
        "/v1/chat/completions",
        r#"{"model":"m"}"#,
        &headers,
    )
    .await;
    request(
        mock.addr(),
        "POST",
        "/v1/messages",
        r#"{"model":"c"}"#,
        &[("x-api-key", "ak")],
    )
    .await;
    mock.wait_for_calls(2).await;
    assert_eq!(mock.calls(), 2);
    let resp = request(mock.addr(), "GET", "/_mock/stats", "", &[]).await;
    let stats: Stats = serde_json::from_value(body_json(resp).await).expect("stats parse");
    assert_eq!(stats, mock.stats());
    assert_eq!(stats.calls, 2);
    assert_eq!(stats.paths["/v1/chat/completions"], 1);
    assert_eq!(stats.recent[0].headers["authorization"], "Bearer sk-test");
    assert_eq!(stats.recent[0].headers["x-custom"], "1");
    assert_eq!(stats.recent[0].model.as_deref(), Some("m"));
    assert_eq!(stats.recent[1].headers["x-api-key"], "ak");
    assert_eq!(stats.recent[1].method, "POST");
}

#[tokio::test]
async fn serves_h2c_with_prior_knowledge() {
    let mock = MockServer::start("h2").await.expect("mock starts");
    let resp = support::post_h2(mock.addr(), "/v1/chat/completions", r#"{"model":"m"}"#).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = body_json(resp).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from mock h2"
    );
}

#[tokio::test]
async fn a_held_mock_counts_calls_and_answers_them_only_when_released() {
    let mock = MockServer::start("a").await.expect("mock starts");
    let hold = mock.hold();
    let addr = mock.addr();
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    let calls: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { post(addr, "/v1/chat/completions", body).await }))
        .collect();
    mock.wait_for_calls(2).await;
    // Both calls are counted and parked; the control API still answers while held.
    let stats = request(addr, "GET", "/_mock/stats", "", &[]).await;
    assert_eq!(stats.status(), StatusCode::OK);
    assert!(calls.iter().all(|call| !call.is_finished()));
    drop(hold);
    for call in calls {
        let resp = call.await.expect("the call task runs to the end");
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // Released for good: a later call is not held.
    let resp = post(addr, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), StatusCode::OK);
}
