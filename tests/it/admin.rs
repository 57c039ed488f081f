//! The admin port (`docs/observability.md`) and shutdown.

use crate::support::*;

#[tokio::test]
async fn probes_policy_and_drills() {
    let (primary, secondary, sidecar) = pair("").await;
    assert_eq!(get(&sidecar.admin("/healthz")).await.status, 200);
    assert_eq!(get(&sidecar.admin("/readyz")).await.status, 200);
    let policy = get(&sidecar.admin("/policy")).await.json();
    assert_eq!(policy["generation"], 1);
    assert_eq!(policy["spec"]["routes"][0]["model"], "gpt-4o");

    let opened = post(
        &sidecar.admin("/breakers/primary/gpt-4o/open?for=30s"),
        "",
        &[],
    )
    .await;
    assert_eq!(opened.status, 200, "{}", opened.text());
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.header("x-switchyard-provider"), "secondary");
    assert_eq!(primary.calls(), 0);
    let closed = post(&sidecar.admin("/breakers/primary/gpt-4o/close"), "", &[]).await;
    assert_eq!(closed.status, 200);
    assert_eq!(
        sidecar.chat("gpt-4o").await.header("x-switchyard-provider"),
        "primary"
    );
    assert_eq!(secondary.calls(), 1);
    assert_eq!(
        post(&sidecar.admin("/breakers/nope/x/open"), "", &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn metrics_count_requests_attempts_failovers_and_tokens() {
    let (primary, _secondary, sidecar) = pair("").await;
    primary.set_faults(faults(
        serde_json::json!({"errorRate": 1.0, "errorStatus": 503}),
    ));
    sidecar.chat("gpt-4o").await;
    let m = sidecar.metrics().await;
    for line in [
        r#"switchyard_requests_total{route="gpt-4o",outcome="success"} 1"#,
        r#"switchyard_attempts_total{provider="primary",model="gpt-4o",outcome="http_503"} 1"#,
        r#"switchyard_attempts_total{provider="secondary",model="gpt-4o-mini",outcome="success"} 1"#,
        r#"switchyard_failovers_total{route="gpt-4o",from="primary/gpt-4o",to="secondary/gpt-4o-mini",reason="http_503"} 1"#,
        r#"switchyard_policy_generation 1"#,
    ] {
        assert!(m.contains(line), "missing {line} in\n{m}");
    }
    assert!(m.contains(
        r#"switchyard_tokens_total{provider="secondary",model="gpt-4o-mini",kind="output"}"#
    ));
}

#[tokio::test]
async fn sigterm_drains_an_open_stream() {
    let (primary, _secondary, sidecar) = pair("").await;
    primary.set_faults(faults(
        serde_json::json!({"chunks": 6, "chunkInterval": "100ms"}),
    ));
    let response = post_stream(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("gpt-4o", true),
    )
    .await;
    assert_eq!(response.status(), 200);
    sidecar.running.shutdown();
    assert_eq!(
        get(&sidecar.admin("/readyz")).await.status,
        503,
        "readiness turns false at the drain"
    );
    let events = stream_events(response).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let Sidecar { running, .. } = sidecar;
    assert!(running.wait().await, "drained cleanly");
}
