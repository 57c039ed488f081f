//! DESIGN §4 "Real model timing": healthy calls of real models (long, silent, reasoning
//! first) are never cut or counted against their target on the defaults; slow and black
//! holes are judged against each target's own baseline; hedging and `maxWait`.
//!
//! Every test runs on paused time: the mocks and the sidecar share the test's runtime,
//! so a 35 s generation takes no wall-clock time and timings are exact.

use serde_json::json;
use tokio::time::Instant;

use crate::support::*;

/// Two mocks behind one OpenAI route and one Anthropic route, on the defaults: no
/// first-byte or idle timeout. `route` is added to both routes, `extra` at the top.
fn policy(primary: &MockServer, secondary: &MockServer, route: &str, extra: &str) -> String {
    format!(
        r#"
providers:
  - {{name: primary, api: openai, baseUrl: "{p}/v1", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
  - {{name: secondary, api: openai, baseUrl: "{s}/v1", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
  - {{name: claude, api: anthropic, baseUrl: "{p}", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
  - {{name: claude-backup, api: anthropic, baseUrl: "{s}", auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}}}
routes:
  - model: gpt-4o
    targets: [{{provider: primary, model: gpt-4o}}, {{provider: secondary, model: gpt-4o-mini}}]
    {route}
  - model: claude-sonnet
    targets: [{{provider: claude, model: claude-sonnet-4-5}}, {{provider: claude-backup, model: claude-haiku-4-5}}]
    {route}
{extra}
"#,
        p = primary.url(),
        s = secondary.url(),
    )
}

async fn setup(route: &str, extra: &str) -> (MockServer, MockServer, Sidecar) {
    provider_key_env();
    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let sidecar = Sidecar::start(&policy(&primary, &secondary, route, extra)).await;
    (primary, secondary, sidecar)
}

/// A streamed call, each event with the time it reached the app (from the call's start).
async fn timed_stream(
    url: &str,
    body: &str,
) -> (http::HeaderMap, Vec<(std::time::Duration, String)>) {
    use http_body_util::BodyExt;
    let start = Instant::now();
    let mut response = post_stream(url, body).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let mut events = Vec::new();
    let mut buffer = String::new();
    while let Some(frame) = response.body_mut().frame().await {
        let Ok(data) = frame.expect("the stream is not cut").into_data() else {
            continue;
        };
        buffer.push_str(std::str::from_utf8(&data).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            events.push((start.elapsed(), event.trim().to_owned()));
        }
    }
    (headers, events)
}

async fn chat_call(sidecar: &Sidecar) -> Reply {
    post(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("gpt-4o", false),
        &[],
    )
    .await
}

fn secs(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n)
}

#[tokio::test(start_paused = true)]
async fn a_35_s_non_streamed_generation_is_answered_by_its_target_on_the_defaults() {
    let (primary, secondary, sidecar) = setup("", "").await;
    primary.set_faults(faults(
        json!({"think": "20s", "tokens": 300, "tokensPerSecond": 20}),
    ));
    let start = Instant::now();
    let reply = chat_call(&sidecar).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-provider"), "primary");
    assert_eq!(reply.header("x-switchyard-attempts"), "1");
    assert!(start.elapsed() >= secs(35), "{:?}", start.elapsed());
    assert_eq!((primary.calls(), secondary.calls()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn reasoning_streams_of_every_dialect_are_answered_and_passed_through_as_they_come() {
    let (primary, secondary, sidecar) = setup("", "").await;
    for think_as in ["reasoning", "pings", "silence"] {
        primary.set_faults(faults(json!({"think": "35s", "thinkAs": think_as})));
        for (path, body) in [
            ("/v1/chat/completions", chat_body("gpt-4o", true)),
            ("/v1/messages", messages_body("claude-sonnet", true)),
        ] {
            let (headers, events) = timed_stream(&sidecar.url(path), &body).await;
            let what = format!("{think_as} on {path}");
            let provider = headers["x-switchyard-provider"].to_str().unwrap();
            assert!(provider == "primary" || provider == "claude", "{what}");
            let (last_at, last) = events.last().unwrap();
            assert!(*last_at >= secs(35), "{what}: ended at {last_at:?}");
            assert!(
                last.ends_with("[DONE]") || last.contains("message_stop"),
                "{what}: {last}"
            );
            assert!(!events.iter().any(|(_, e)| e.contains("error")), "{what}");
            if think_as == "reasoning" {
                // The reasoning reaches the app while the model thinks, not at the end.
                let (first_at, _) = events
                    .iter()
                    .find(|(_, e)| e.contains("reasoning_content") || e.contains("thinking_delta"))
                    .unwrap_or_else(|| panic!("{what}: no reasoning in {events:?}"));
                assert!(
                    *first_at <= secs(2),
                    "{what}: first reasoning at {first_at:?}"
                );
            }
        }
    }
    assert_eq!(secondary.calls(), 0, "no call failed over");
}

#[tokio::test(start_paused = true)]
async fn twelve_healthy_22_s_generations_leave_the_breaker_closed() {
    let (primary, secondary, sidecar) = setup("", "").await;
    primary.set_faults(faults(json!({"latency": "22s"})));
    for _ in 0..12 {
        let reply = chat_call(&sidecar).await;
        assert_eq!(reply.header("x-switchyard-provider"), "primary");
    }
    let breakers = sidecar.breakers().await;
    let primary_state = breakers
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["provider"] == "primary")
        .unwrap();
    assert_eq!(primary_state["state"], "closed", "{primary_state}");
    assert_eq!(primary_state["slow_rate"], 0.0, "{primary_state}");
    let first_byte = primary_state["baseline"]["first_byte_seconds"]
        .as_f64()
        .unwrap();
    assert!((first_byte - 22.0).abs() < 0.5, "{primary_state}");
    assert_eq!((primary.calls(), secondary.calls()), (12, 0));
}

#[tokio::test(start_paused = true)]
async fn a_30x_brown_out_after_a_baseline_moves_traffic_to_the_backup_without_errors() {
    let (primary, _secondary, sidecar) = setup("", "").await;
    let url = sidecar.url("/v1/chat/completions");
    primary.set_faults(faults(json!({"firstByte": "100ms"})));
    for _ in 0..10 {
        let (headers, _) = timed_stream(&url, &chat_body("gpt-4o", true)).await;
        assert_eq!(headers["x-switchyard-provider"], "primary");
    }
    primary.set_faults(faults(json!({"firstByte": "3s"})));
    let mut slow_calls = 0;
    loop {
        let (headers, events) = timed_stream(&url, &chat_body("gpt-4o", true)).await;
        assert!(events.last().unwrap().1.ends_with("[DONE]"));
        if headers["x-switchyard-provider"] == "secondary" {
            break;
        }
        slow_calls += 1;
        assert!(slow_calls <= 12, "the brown-out was never noticed");
    }
    // The default slow-rate rule (50% of at least 10 calls) opens once the slow calls
    // match the fast ones in the window: no tuning.
    assert!(slow_calls >= 10, "opened after {slow_calls} slow calls");
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(r#"switchyard_breaker_state{provider="primary",model="gpt-4o"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("switchyard_baseline_ttft_seconds{"));
}

#[tokio::test(start_paused = true)]
async fn a_black_hole_after_a_baseline_is_left_within_seconds() {
    let (primary, secondary, sidecar) = setup("", "").await;
    let url = sidecar.url("/v1/chat/completions");
    primary.set_faults(faults(json!({"firstByte": "100ms"})));
    for stream in [true, false] {
        for _ in 0..6 {
            let reply = post(&url, &chat_body("gpt-4o", stream), &[]).await;
            assert_eq!(reply.header("x-switchyard-provider"), "primary");
        }
    }
    primary.set_faults(faults(json!({"blackhole": true})));
    for stream in [true, false] {
        let start = Instant::now();
        let reply = post(&url, &chat_body("gpt-4o", stream), &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-switchyard-provider"), "secondary");
        // The black-hole bound of a 100 ms target is its 5 s floor, not a fixed 30 s.
        assert!(
            start.elapsed() <= secs(6),
            "stream {stream}: {:?}",
            start.elapsed()
        );
    }
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(
            r#"switchyard_attempts_total{provider="primary",model="gpt-4o",outcome="stalled"} 2"#
        ),
        "{metrics}"
    );
    assert_eq!(secondary.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_committed_stream_is_cut_by_the_apps_deadline_only() {
    let (primary, _secondary, sidecar) = setup("timeout: 4s", "").await;
    primary.set_faults(faults(json!({"chunks": 8, "chunkInterval": "1s"})));
    let url = sidecar.url("/v1/chat/completions");
    let (_, events) = timed_stream(&url, &chat_body("gpt-4o", true)).await;
    let (ended, last) = events.last().unwrap();
    assert!(last.ends_with("[DONE]"), "{last}");
    assert!(*ended >= secs(7), "{ended:?}");
    assert!(!events.iter().any(|(_, e)| e.contains("error")));

    let response = send(
        http::Request::post(&url)
            .header("content-type", "application/json")
            .header("x-switchyard-timeout", "3s")
            .body(chat_body("gpt-4o", true).into())
            .unwrap(),
    )
    .await;
    let events = stream_events(response).await;
    let last = events.last().unwrap();
    assert!(last.contains("\"code\":\"deadline\""), "{events:?}");
}

#[tokio::test(start_paused = true)]
async fn with_hedge_a_black_holed_primary_is_answered_by_the_backup_and_its_connection_closed() {
    let (primary, secondary, sidecar) = setup("hedge: {after: 500ms, maxRatio: 1}", "").await;
    primary.set_faults(faults(json!({"blackhole": true})));
    secondary.set_faults(faults(json!({"latency": "200ms"})));
    let start = Instant::now();
    let reply = chat_call(&sidecar).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-provider"), "secondary");
    assert_eq!(reply.header("x-switchyard-attempts"), "2");
    assert_eq!(start.elapsed(), std::time::Duration::from_millis(700));
    // The loser was cancelled: its connection is closed, so the provider stops working.
    tokio::time::timeout(secs(1), primary.wait_for_connections_at_most(0))
        .await
        .expect("the cancelled attempt's connection closes");
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(r#"switchyard_hedges_total{route="gpt-4o",outcome="won"} 1"#),
        "{metrics}"
    );
    // A cancelled loser gets no verdict: the primary's breaker saw no failure.
    let breakers = sidecar.breakers().await;
    let primary_state = &breakers.as_array().unwrap()[0];
    assert_eq!(primary_state["calls"], 0, "{primary_state}");
}

#[tokio::test(start_paused = true)]
async fn the_first_to_commit_wins_even_when_the_later_one_answered_headers_first() {
    let (primary, secondary, sidecar) = setup("hedge: {after: 200ms, maxRatio: 1}", "").await;
    // The primary's headers come late, then its content at once...
    primary.set_faults(faults(json!({"latency": "1s"})));
    // ... the hedge's headers come at once, then it thinks in silence.
    secondary.set_faults(faults(json!({"think": "3s", "thinkAs": "silence"})));
    let url = sidecar.url("/v1/chat/completions");
    let (headers, events) = timed_stream(&url, &chat_body("gpt-4o", true)).await;
    assert_eq!(headers["x-switchyard-provider"], "primary");
    assert!(
        events[0].0 <= std::time::Duration::from_millis(1_010),
        "{events:?}"
    );
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(r#"switchyard_hedges_total{route="gpt-4o",outcome="lost"} 1"#),
        "{metrics}"
    );
    assert_eq!(secondary.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn hedges_stay_under_max_ratio() {
    let (primary, secondary, sidecar) = setup("hedge: {after: 100ms, maxRatio: 0.1}", "").await;
    primary.set_faults(faults(json!({"latency": "300ms"})));
    secondary.set_faults(faults(json!({"latency": "1s"})));
    for _ in 0..50 {
        let reply = chat_call(&sidecar).await;
        assert_eq!(reply.header("x-switchyard-provider"), "primary");
    }
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(r#"switchyard_hedges_total{route="gpt-4o",outcome="lost"} 5"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"switchyard_hedges_total{route="gpt-4o",outcome="denied"} 45"#),
        "{metrics}"
    );
    assert_eq!(secondary.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn auto_hedges_after_the_targets_own_p95() {
    let (primary, secondary, sidecar) = setup("hedge: {after: auto, maxRatio: 1}", "").await;
    primary.set_faults(faults(json!({"latency": "400ms"})));
    for _ in 0..6 {
        chat_call(&sidecar).await;
    }
    assert_eq!(
        secondary.calls(),
        0,
        "a baseline's normal call is not hedged"
    );
    primary.set_faults(faults(json!({"blackhole": true})));
    let start = Instant::now();
    let reply = chat_call(&sidecar).await;
    assert_eq!(reply.header("x-switchyard-provider"), "secondary");
    // Hedged at the primary's p95 (400 ms), not at the 10 s used before a baseline.
    assert!(start.elapsed() < secs(1), "{:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn max_wait_waits_for_an_excluded_target_instead_of_failing() {
    let (primary, _secondary, sidecar) = setup("maxWait: 10s", "").await;
    let drill = |target: &str| sidecar.admin(&format!("/breakers/{target}/open?for=3s"));
    for target in ["primary/gpt-4o", "secondary/gpt-4o-mini"] {
        let reply = post(&drill(target), "", &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let start = Instant::now();
    let reply = chat_call(&sidecar).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-switchyard-provider"), "primary");
    assert!(start.elapsed() >= secs(3), "{:?}", start.elapsed());
    assert_eq!(primary.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_sidecars_own_failures_say_do_not_retry_and_a_providers_4xx_does_not() {
    let (primary, secondary, sidecar) = setup("", "").await;
    for mock in [&primary, &secondary] {
        mock.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    }
    let reply = chat_call(&sidecar).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.header("x-should-retry"), "false");
    for mock in [&primary, &secondary] {
        mock.set_faults(faults(
            json!({"errorRate": 1.0, "errorStatus": 429, "retryAfter": 30}),
        ));
    }
    let reply = chat_call(&sidecar).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("x-should-retry"), "false");
    assert_ne!(reply.header("retry-after"), "");
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 400})));
    let url = sidecar.url("/v1/chat/completions");
    let body = json!({"model": "gpt-4o", "messages": [], "x": 1}).to_string();
    let drill = sidecar.admin("/breakers/primary/gpt-4o/close");
    post(&drill, "", &[]).await;
    let reply = post(&url, &body, &[]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("x-should-retry"), "");
}

fn breaker_of<'a>(breakers: &'a serde_json::Value, provider: &str) -> &'a serde_json::Value {
    breakers
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["provider"] == provider)
        .unwrap()
}

/// The usual two mocks and routes, the primary probed (hourly when idle, so only trials
/// probe it); `extra` at the top.
async fn setup_probed(extra: &str) -> (MockServer, MockServer, Sidecar) {
    let route = "targets: [{provider: primary, model: gpt-4o, probe: {interval: 1h}}, {provider: secondary, model: gpt-4o-mini}]";
    provider_key_env();
    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let policy = policy(&primary, &secondary, "", extra).replace(
        "targets: [{provider: primary, model: gpt-4o}, {provider: secondary, model: gpt-4o-mini}]",
        route,
    );
    let sidecar = Sidecar::start(&policy).await;
    (primary, secondary, sidecar)
}

#[tokio::test(start_paused = true)]
async fn a_probe_not_an_app_call_is_the_half_open_trial() {
    let extra = "circuitBreaker: {consecutiveFailures: 2, openFor: 5s, halfOpenCalls: 3}";
    let (primary, _secondary, sidecar) = setup_probed(extra).await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    for _ in 0..2 {
        assert_eq!(
            chat_call(&sidecar).await.header("x-switchyard-provider"),
            "secondary"
        );
    }
    assert_eq!(
        breaker_of(&sidecar.breakers().await, "primary")["state"],
        "open"
    );
    primary.set_faults(Faults::default());
    let before = primary.calls();
    let start = Instant::now();
    loop {
        let reply = chat_call(&sidecar).await;
        assert_eq!(reply.status, 200);
        if reply.header("x-switchyard-provider") == "primary" {
            break;
        }
        assert!(
            start.elapsed() < secs(30),
            "the probes never closed the breaker"
        );
        tokio::time::sleep(ms(250)).await;
    }
    // Between the open breaker and the first app call, the primary saw only the probes,
    // each saying what it is.
    assert_eq!(primary.calls(), before + 3 + 1);
    assert_eq!(primary.stats().probes, 3);
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(
            r#"switchyard_probes_total{provider="primary",model="gpt-4o",outcome="success"} 3"#
        ),
        "{metrics}"
    );
    let probe = primary.stats().recent.into_iter().rev().nth(1).unwrap();
    assert_eq!(
        probe.headers["authorization"],
        "Bearer sk-test-provider-key"
    );
}

#[tokio::test(start_paused = true)]
async fn a_browned_out_primary_stays_diverted_until_a_trial_it_could_not_pass_passes() {
    // A short open period, so the trial comes round every second or two, as in the chaos
    // bench; a streak rule that never fires, so only the rate rule trips.
    let extra = "circuitBreaker: {consecutiveFailures: 100, openFor: 1s, maxOpenFor: 2s}";
    let (primary, _secondary, sidecar) = setup_probed(extra).await;
    // A brown-out: 3 calls in 10 fail, never more than 3 successes in a row.
    primary.set_faults(faults(json!({"errorRate": 0.3, "errorStatus": 503})));
    for _ in 0..10 {
        assert_eq!(chat_call(&sidecar).await.status, 200);
    }
    assert_eq!(
        breaker_of(&sidecar.breakers().await, "primary")["state"],
        "open",
        "3 failures in 10 calls trip the rate rule"
    );
    // Thirty seconds of trials: three probes in a row pass often, twenty never.
    let app_calls = |mock: &MockServer| {
        let stats = mock.stats();
        stats.calls - stats.probes
    };
    let diverted = app_calls(&primary);
    for _ in 0..120 {
        let reply = chat_call(&sidecar).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-switchyard-provider"), "secondary");
        tokio::time::sleep(ms(250)).await;
    }
    assert_eq!(
        app_calls(&primary),
        diverted,
        "no app call met the brown-out"
    );
    let probes = primary.stats().probes;
    assert!(probes >= 15, "the trials ran: {probes} probes");
    // The brown-out ends: the next trial's twenty probes pass and traffic returns.
    primary.set_faults(Faults::default());
    let start = Instant::now();
    while chat_call(&sidecar).await.header("x-switchyard-provider") != "primary" {
        assert!(start.elapsed() < secs(5), "traffic never came back");
        tokio::time::sleep(ms(250)).await;
    }
    assert!(primary.stats().probes >= probes + 20);
}

#[tokio::test(start_paused = true)]
async fn a_probe_answered_200_with_a_cut_body_keeps_the_breaker_open() {
    let extra = "circuitBreaker: {consecutiveFailures: 2, openFor: 1s, maxOpenFor: 1s}";
    let (primary, _secondary, sidecar) = setup_probed(extra).await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    for _ in 0..2 {
        chat_call(&sidecar).await;
    }
    // Every answer now starts well and is cut halfway: a probe must not take it for one.
    primary.set_faults(faults(json!({"dropAfterChunks": 1})));
    let before = primary.calls();
    tokio::time::sleep(secs(10)).await;
    assert!(primary.calls() > before, "the probes ran");
    // Open, or half-open while the next probe is out: never closed.
    assert_ne!(
        breaker_of(&sidecar.breakers().await, "primary")["state"],
        "closed"
    );
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(
            r#"switchyard_probes_total{provider="primary",model="gpt-4o",outcome="stream_cut"}"#
        ),
        "{metrics}"
    );
    assert!(
        !metrics.contains(r#"model="gpt-4o",outcome="success""#),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_broken_backup_is_found_by_its_probes_before_any_app_call() {
    provider_key_env();
    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let text = policy(&primary, &secondary, "", "").replace(
        "{provider: secondary, model: gpt-4o-mini}",
        "{provider: secondary, model: gpt-4o-mini, probe: {interval: 10s}, price: {inputPerMTok: 1, outputPerMTok: 2}}",
    );
    let sidecar = Sidecar::start(&text).await;
    tokio::time::sleep(secs(15)).await;
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(
            r#"switchyard_probes_total{provider="secondary",model="gpt-4o-mini",outcome="success"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        !metrics.contains(
            r#"switchyard_tokens_total{provider="secondary",model="gpt-4o-mini",kind="input"} 0"#
        ),
        "a probe's tokens count: {metrics}"
    );
    assert!(
        metrics.contains(r#"switchyard_cost_usd_total{provider="secondary",model="gpt-4o-mini"}"#)
    );
    secondary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    // Five failed probes, ten seconds apart, open the idle backup's breaker.
    tokio::time::sleep(secs(55)).await;
    assert_eq!(
        breaker_of(&sidecar.breakers().await, "secondary")["state"],
        "open"
    );
    assert_eq!(primary.calls(), 0, "no app call was needed to find it");
}

#[tokio::test(start_paused = true)]
async fn a_target_busy_with_a_long_call_is_not_probed() {
    provider_key_env();
    let primary = MockServer::start("primary").await.unwrap();
    let secondary = MockServer::start("secondary").await.unwrap();
    let text = policy(&primary, &secondary, "", "").replace(
        "{provider: primary, model: gpt-4o}",
        "{provider: primary, model: gpt-4o, probe: {interval: 2s}}",
    );
    let sidecar = Sidecar::start(&text).await;
    // A reasoning call: 30 s before its answer, healthy all along.
    primary.set_faults(faults(json!({"latency": "30s"})));
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        primary.calls(),
        1,
        "no probe while the call was in flight, though it started 30 s ago"
    );
    // Idle now: the probes resume.
    tokio::time::sleep(secs(3)).await;
    assert!(primary.calls() >= 2);
}
