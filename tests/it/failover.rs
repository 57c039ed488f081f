//! Failover (`docs/decisions.md`, `docs/policy.md`): what fails over, what does not,
//! cooldowns, breakers, the last-chance attempt and the retry budget.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn each_failing_status_fails_over_invisibly() {
    for status in [408, 500, 502, 503, 504, 529] {
        let (primary, secondary, sidecar) = pair("").await;
        primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": status})));
        let reply = sidecar.chat("gpt-4o").await;
        assert_eq!(reply.status, 200, "status {status}: {}", reply.text());
        assert_eq!(reply.header("x-switchyard-provider"), "secondary");
        assert_eq!(reply.header("x-switchyard-model"), "gpt-4o-mini");
        assert_eq!(reply.header("x-switchyard-attempts"), "2");
        assert_eq!(reply.json()["model"], "gpt-4o-mini");
        assert_eq!(
            (primary.calls(), secondary.calls()),
            (1, 1),
            "status {status}"
        );
    }
}

#[tokio::test]
async fn client_errors_go_back_untouched_and_do_not_fail_over() {
    for status in [400, 401, 403, 404, 422] {
        let (primary, secondary, sidecar) = pair("").await;
        let body = format!(
            r#"{{"error":{{"message":"provider says {status}","type":"invalid_request_error"}}}}"#
        );
        primary.set_faults(faults(
            json!({"errorRate": 1.0, "errorStatus": status, "errorBody": body}),
        ));
        let reply = sidecar.chat("gpt-4o").await;
        assert_eq!(reply.status.as_u16(), status);
        assert_eq!(
            reply.text(),
            body,
            "the provider's body is passed back as sent"
        );
        assert_eq!(secondary.calls(), 0);
        let breakers = sidecar.breakers().await;
        assert_eq!(
            breakers[0]["calls"], 0,
            "client errors do not count: {breakers}"
        );
    }
}

#[tokio::test]
async fn rate_limits_cool_down_for_as_long_as_the_provider_asks() {
    let cases = [
        (json!({"retry-after": "7"}), 7_000),
        (json!({"retry-after-ms": "4500"}), 4_500),
        (json!({"x-ratelimit-reset-requests": "6m0s"}), 60_000),
        (
            json!({"anthropic-ratelimit-requests-reset": "2099-01-01T00:00:00Z"}),
            60_000,
        ),
        (json!({}), 5_000),
    ];
    for (headers, expected_ms) in cases {
        let (primary, _secondary, sidecar) =
            pair("rateLimit: {defaultCooldown: 5s, maxCooldown: 1m}").await;
        primary.set_faults(faults(
            json!({"errorRate": 1.0, "errorStatus": 429, "errorHeaders": headers}),
        ));
        let reply = sidecar.chat("gpt-4o").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-switchyard-provider"), "secondary");
        let breakers = sidecar.breakers().await;
        let cooldown = breakers[0]["cooldown_ms"]
            .as_u64()
            .expect("primary cooling down");
        assert!(
            cooldown <= expected_ms && cooldown + 1_000 >= expected_ms,
            "{headers}: cooldown {cooldown} ms, expected about {expected_ms}"
        );
        assert_eq!(breakers[0]["calls"], 0, "a 429 is not a breaker failure");
        // While cooling down the primary is skipped without a call.
        let reply = sidecar.chat("gpt-4o").await;
        assert_eq!(reply.header("x-switchyard-attempts"), "1");
        assert_eq!(primary.calls(), 1, "{headers}");
    }
}

#[tokio::test]
async fn exhausted_quota_rests_for_max_cooldown() {
    let (primary, _secondary, sidecar) = pair("rateLimit: {maxCooldown: 2m}").await;
    let body = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
    primary.set_faults(faults(
        json!({"errorRate": 1.0, "errorStatus": 429, "retryAfter": 1, "errorBody": body}),
    ));
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    let cooldown = sidecar.breakers().await[0]["cooldown_ms"].as_u64().unwrap();
    assert!(cooldown > 110_000, "{cooldown}");
}

#[tokio::test]
async fn refused_connections_fail_over() {
    let (primary, secondary, sidecar) = pair("").await;
    primary.set_down(true).await;
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-provider"), "secondary");
    assert_eq!(secondary.calls(), 1);
    assert!(sidecar
        .metrics()
        .await
        .contains(r#"outcome="connect_error"} 1"#));
}

#[tokio::test]
async fn a_black_hole_is_bounded_by_the_first_byte_timeout() {
    let (primary, secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"blackhole": true})));
    let started = tokio::time::Instant::now();
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 200);
    assert_eq!(secondary.calls(), 1);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= ms(1900) && elapsed < ms(4000),
        "firstByte is 2s; took {elapsed:?}"
    );
    assert!(sidecar
        .metrics()
        .await
        .contains(r#"outcome="first_byte_timeout"} 1"#));
}

#[tokio::test]
async fn consecutive_failures_open_the_breaker() {
    let (primary, secondary, sidecar) =
        pair("circuitBreaker: {consecutiveFailures: 3, minimumCalls: 100, openFor: 1m}").await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    for _ in 0..3 {
        assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    }
    assert_eq!(primary.calls(), 3);
    let breakers = sidecar.breakers().await;
    assert_eq!(breakers[0]["state"], "open", "{breakers}");
    for _ in 0..5 {
        let reply = sidecar.chat("gpt-4o").await;
        assert_eq!(reply.header("x-switchyard-attempts"), "1");
    }
    assert_eq!(primary.calls(), 3, "an open breaker sends nothing");
    assert_eq!(secondary.calls(), 8);
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(r#"switchyard_breaker_state{provider="primary",model="gpt-4o"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn failure_rate_opens_the_breaker_once_minimum_calls_is_reached() {
    let (primary, _secondary, sidecar) =
        pair("circuitBreaker: {consecutiveFailures: 100, minimumCalls: 10, failureRate: 0.5, openFor: 1m}").await;
    primary.set_faults(faults(json!({"errorRate": 0.5, "errorStatus": 500})));
    for _ in 0..9 {
        sidecar.chat("gpt-4o").await;
    }
    assert_eq!(
        sidecar.breakers().await[0]["state"],
        "closed",
        "below minimumCalls"
    );
    sidecar.chat("gpt-4o").await;
    assert_eq!(sidecar.breakers().await[0]["state"], "open");
}

#[tokio::test]
async fn slow_calls_open_the_breaker() {
    let (primary, _secondary, sidecar) = pair(
        "circuitBreaker: {minimumCalls: 4, slowCall: {firstByte: 50ms, rate: 0.5}, openFor: 1m}",
    )
    .await;
    primary.set_faults(faults(json!({"latency": "120ms"})));
    for _ in 0..4 {
        assert_eq!(
            sidecar.chat("gpt-4o").await.header("x-switchyard-provider"),
            "primary"
        );
    }
    let breakers = sidecar.breakers().await;
    assert_eq!(breakers[0]["state"], "open", "{breakers}");
    assert_eq!(
        sidecar.chat("gpt-4o").await.header("x-switchyard-provider"),
        "secondary"
    );
}

#[tokio::test]
async fn half_open_probes_then_closes_after_recovery() {
    let (primary, _secondary, sidecar) = pair(
        "circuitBreaker: {consecutiveFailures: 1, openFor: 200ms, maxOpenFor: 1s, halfOpenCalls: 2}",
    )
    .await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    sidecar.chat("gpt-4o").await;
    assert_eq!(sidecar.breakers().await[0]["state"], "open");
    primary.set_faults(faults(json!({})));
    // Wait on the condition the breaker reports, its open period over, not a fixed sleep.
    let deadline = tokio::time::Instant::now() + ms(5_000);
    while sidecar.breakers().await[0]["open_for_ms"].as_u64() != Some(0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the breaker's 200 ms open period never ended"
        );
        tokio::time::sleep(ms(5)).await;
    }
    // The view rounds down to whole milliseconds: up to one may still remain.
    tokio::time::sleep(ms(1)).await;
    for _ in 0..2 {
        assert_eq!(
            sidecar.chat("gpt-4o").await.header("x-switchyard-provider"),
            "primary"
        );
    }
    assert_eq!(sidecar.breakers().await[0]["state"], "closed");
}

#[tokio::test]
async fn all_targets_open_gives_503_with_retry_after() {
    let (primary, secondary, sidecar) =
        pair("circuitBreaker: {consecutiveFailures: 1, openFor: 30s}").await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    secondary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.header("x-switchyard-error"), "all_failed");
    assert_eq!(reply.header("x-switchyard-route"), "gpt-4o");
    assert_eq!(reply.header("x-switchyard-attempts"), "2");
    assert_eq!(reply.json()["error"]["code"], "all_failed");
    // Both open now: one last-chance attempt, then 503 with Retry-After.
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-error"), "unavailable");
    let retry_after: u64 = reply.header("retry-after").parse().unwrap();
    assert!((20..=37).contains(&retry_after), "{retry_after}");
    assert_eq!(
        primary.calls() + secondary.calls(),
        3,
        "exactly one last-chance attempt"
    );
}

#[tokio::test]
async fn a_target_back_from_an_outage_is_found_by_the_last_chance() {
    // Everything down and open for 30 s; then the secondary recovers. Without the last
    // chance settling the trial, every call would fail until an open period ended.
    let (primary, secondary, sidecar) =
        pair("circuitBreaker: {consecutiveFailures: 1, openFor: 30s}").await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    secondary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    assert_eq!(sidecar.chat("gpt-4o").await.status, 502);
    secondary.set_faults(faults(json!({})));
    // The first last chance may meet the primary, still down: its open period restarts
    // doubled, so the next goes to the secondary.
    let mut replies = Vec::new();
    for _ in 0..2 {
        let reply = sidecar.chat("gpt-4o").await;
        let ok = reply.status == 200;
        replies.push((
            reply.status.as_u16(),
            reply.header("x-switchyard-provider").to_owned(),
        ));
        if ok {
            break;
        }
    }
    assert_eq!(
        replies.last().map(|(s, p)| (*s, p.as_str())),
        Some((200, "secondary")),
        "{replies:?}"
    );
    let breakers = sidecar.breakers().await;
    assert_eq!(breakers[1]["state"], "closed", "{breakers}");
    // The walk admits it again: no forced call, one attempt.
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-attempts"), "1");
    // The primary: the first walk, and the first last chance when it went there.
    assert_eq!(primary.calls(), replies.len() as u64);
}

#[tokio::test]
async fn after_a_failed_attempt_an_excluded_target_gets_the_last_chance() {
    // Both open; both recover; the last chance closes one of them. That one fails next:
    // the other, still open but healthy, is tried rather than the app getting a 502.
    let (primary, secondary, sidecar) =
        pair("circuitBreaker: {consecutiveFailures: 1, openFor: 30s}").await;
    let down = || faults(json!({"errorRate": 1.0, "errorStatus": 503}));
    primary.set_faults(down());
    secondary.set_faults(down());
    assert_eq!(sidecar.chat("gpt-4o").await.status, 502);
    primary.set_faults(faults(json!({})));
    secondary.set_faults(faults(json!({})));
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 200);
    let (closed, open) = match reply.header("x-switchyard-provider") {
        "primary" => (&primary, &secondary),
        _ => (&secondary, &primary),
    };
    closed.set_faults(down());
    let (closed_before, open_before) = (closed.calls(), open.calls());
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-attempts"), "2");
    assert_eq!(
        (closed.calls() - closed_before, open.calls() - open_before),
        (1, 1)
    );
}

#[tokio::test]
async fn max_attempts_limits_the_walk() {
    let (primary, secondary, sidecar) = pair("").await;
    let policy = two_target_policy(&primary, &secondary, "").replace(
        "  - model: gpt-4o\n    targets:",
        "  - model: gpt-4o\n    maxAttempts: 1\n    targets:",
    );
    drop(sidecar);
    let sidecar = Sidecar::start(&policy).await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 500})));
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 502);
    assert_eq!(secondary.calls(), 0);
}

#[tokio::test]
async fn the_total_deadline_gives_504() {
    let (primary, _secondary, sidecar) = pair("circuitBreaker: {consecutiveFailures: 1}").await;
    primary.set_faults(faults(json!({"latency": "1500ms"})));
    let reply = post(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("gpt-4o", false),
        &[("x-switchyard-timeout", "300ms")],
    )
    .await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-error"), "deadline");
    let breakers = sidecar.breakers().await;
    assert_eq!(
        breakers[0]["state"], "closed",
        "the app's own deadline is no verdict on the target"
    );
    assert_eq!(breakers[0]["calls"], 0);
}

#[tokio::test]
async fn anthropic_calls_fail_over_within_their_dialect() {
    let (primary, secondary, sidecar) = pair("").await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 529})));
    let reply = sidecar.messages("claude-sonnet").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "claude-backup");
    assert_eq!(reply.json()["type"], "message");
    assert_eq!((primary.calls(), secondary.calls()), (1, 1));
}

#[tokio::test]
async fn a_target_at_max_concurrency_is_shed() {
    provider_key_env();
    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let policy = two_target_policy(&primary, &secondary, "").replacen(
        "    api: openai\n",
        "    api: openai\n    maxConcurrency: 1\n",
        1,
    );
    let sidecar = Sidecar::start(&policy).await;
    // The primary keeps the first call until released: it is in flight for exactly as
    // long as the second call takes, however slow the machine.
    let hold = primary.hold();
    let url = sidecar.url("/v1/chat/completions");
    let first = tokio::spawn(async move { post(&url, &chat_body("gpt-4o", false), &[]).await });
    primary.wait_for_calls(1).await;
    let second = sidecar.chat("gpt-4o").await;
    assert_eq!(
        second.header("x-switchyard-provider"),
        "secondary",
        "the busy primary is skipped as shed"
    );
    assert_eq!(second.header("x-switchyard-attempts"), "1");
    assert!(
        !first.is_finished(),
        "the first call was in flight all along"
    );
    drop(hold);
    assert_eq!(
        first.await.unwrap().header("x-switchyard-provider"),
        "primary"
    );
    assert_eq!(primary.calls(), 1);
}

#[tokio::test]
async fn the_retry_budget_bounds_failover_load() {
    let (primary, secondary, sidecar) = pair(
        "retryBudget: {ratio: 0.01, minPerSecond: 0}\ncircuitBreaker: {consecutiveFailures: 1000, minimumCalls: 1000}",
    )
    .await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    assert_eq!(
        sidecar.chat("gpt-4o").await.status,
        200,
        "the budget starts with one failover"
    );
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 502, "budget spent: no second failover");
    assert_eq!(secondary.calls(), 1);
    assert_eq!(primary.calls(), 2);
}

#[tokio::test]
async fn an_open_breakers_target_is_skipped_by_every_strategy() {
    for strategy in [
        "failover",
        "weighted",
        "latency",
        "cost",
        "balanced",
        "availability",
    ] {
        let (primary, secondary, sidecar) = pair("").await;
        post(
            &sidecar.admin("/breakers/primary/gpt-4o/open?for=30s"),
            "",
            &[],
        )
        .await;
        let reply = post(
            &sidecar.url("/v1/chat/completions"),
            &chat_body("gpt-4o", false),
            &[("x-switchyard-strategy", strategy)],
        )
        .await;
        assert_eq!(
            reply.header("x-switchyard-provider"),
            "secondary",
            "{strategy}"
        );
        assert_eq!((primary.calls(), secondary.calls()), (0, 1), "{strategy}");
    }
}
