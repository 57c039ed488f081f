//! `docs/observability.md`: one OTLP trace per call, decoded from what a real receiver got; the
//! exporter's transports; a dead collector; and every metric family on `/metrics`.

use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::support::otlp::{
    assert_only_convention_attributes, attr, double, int, new_trace, receiver,
};
use crate::support::*;

const BREAK_AT_ONE: &str = "circuitBreaker: {consecutiveFailures: 1, openFor: 60s}";

async fn chat_traced(sidecar: &Sidecar, traceparent: &str) -> Reply {
    post(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("gpt-4o", false),
        &[
            ("traceparent", traceparent),
            ("authorization", "Bearer sk-app-secret"),
        ],
    )
    .await
}

#[tokio::test]
async fn a_failed_over_call_is_one_trace_with_a_span_per_attempt() {
    let receiver = receiver();
    let (primary, _secondary, sidecar) = pair(BREAK_AT_ONE).await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    let (trace, parent, traceparent) = new_trace();
    let reply = chat_traced(&sidecar, &traceparent).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let spans = receiver.received.wait_for(&trace, 3).await;
    assert_eq!(spans.len(), 3, "one server span and two attempts");
    for (_, span) in &spans {
        assert_only_convention_attributes(span);
    }
    let (resource, server) = spans
        .iter()
        .find(|(_, s)| s.kind == SpanKind::Server as i32)
        .expect("a SERVER span");
    assert_eq!(
        attr(resource, "service.name").as_deref(),
        Some("switchyard")
    );
    assert_eq!(attr(resource, "k8s.pod.name").as_deref(), Some("app-7d9f"));
    assert_eq!(
        attr(resource, "k8s.namespace.name").as_deref(),
        Some("shop")
    );
    assert_eq!(server.name, "chat gpt-4o");
    assert_eq!(
        server.parent_span_id, parent,
        "the app's traceparent is the parent"
    );
    let a = &server.attributes;
    assert_eq!(attr(a, "gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(attr(a, "gen_ai.request.model").as_deref(), Some("gpt-4o"));
    assert_eq!(
        attr(a, "gen_ai.response.model").as_deref(),
        Some("gpt-4o-mini")
    );
    assert_eq!(attr(a, "switchyard.route").as_deref(), Some("gpt-4o"));
    assert_eq!(int(a, "switchyard.attempts"), Some(2));
    assert_eq!(int(a, "http.response.status_code"), Some(200));
    let failover = server
        .events
        .iter()
        .find(|e| e.name == "switchyard.failover")
        .expect("a failover event");
    assert_eq!(
        attr(&failover.attributes, "from").as_deref(),
        Some("primary/gpt-4o")
    );
    assert_eq!(
        attr(&failover.attributes, "to").as_deref(),
        Some("secondary/gpt-4o-mini")
    );
    assert_eq!(
        attr(&failover.attributes, "reason").as_deref(),
        Some("http_503")
    );

    let mut attempts: Vec<_> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    attempts.sort_by_key(|s| int(&s.attributes, "switchyard.attempt"));
    assert_eq!(attempts.len(), 2);
    for span in &attempts {
        assert_eq!(
            span.parent_span_id, server.span_id,
            "attempts are children of the call"
        );
        assert_eq!(
            attr(&span.attributes, "gen_ai.provider.name").as_deref(),
            Some("openai")
        );
        assert_eq!(
            attr(&span.attributes, "switchyard.route").as_deref(),
            Some("gpt-4o")
        );
    }
    let (first, second) = (&attempts[0].attributes, &attempts[1].attributes);
    assert_eq!(attempts[0].name, "chat gpt-4o");
    assert_eq!(int(first, "switchyard.attempt"), Some(1));
    assert_eq!(int(first, "http.response.status_code"), Some(503));
    assert_eq!(attr(first, "error.type").as_deref(), Some("http_503"));
    assert_eq!(
        attr(first, "server.address"),
        Some(primary.addr().ip().to_string()),
        "the host alone"
    );
    assert_eq!(
        int(first, "server.port"),
        Some(i64::from(primary.addr().port()))
    );
    let breaker = attempts[0]
        .events
        .iter()
        .find(|e| e.name == "switchyard.breaker")
        .expect("the primary's breaker opened during its attempt");
    assert_eq!(
        attr(&breaker.attributes, "target").as_deref(),
        Some("primary/gpt-4o")
    );
    assert_eq!(attr(&breaker.attributes, "from").as_deref(), Some("closed"));
    assert_eq!(attr(&breaker.attributes, "to").as_deref(), Some("open"));
    assert_eq!(attempts[1].name, "chat gpt-4o-mini");
    assert_eq!(int(second, "switchyard.attempt"), Some(2));
    assert_eq!(int(second, "http.response.status_code"), Some(200));
    assert_eq!(attr(second, "error.type"), None);
    assert_eq!(
        attr(second, "gen_ai.response.model").as_deref(),
        Some("gpt-4o-mini")
    );
    let input = int(second, "gen_ai.usage.input_tokens").expect("an integer");
    let output = int(second, "gen_ai.usage.output_tokens").expect("an integer");
    assert!(input > 0 && output > 0);
    assert_eq!(
        attr(second, "gen_ai.response.finish_reasons").as_deref(),
        Some("stop")
    );
    assert!(double(second, "switchyard.time_to_first_token_s").is_some_and(|s| s > 0.0));
    assert_eq!(
        attr(second, "gen_ai.input.messages"),
        None,
        "no prompt by default"
    );

    let raw = String::from_utf8_lossy(&receiver.received.raw()).into_owned();
    assert!(
        !raw.contains("sk-test-provider-key"),
        "no provider key exported"
    );
    assert!(!raw.contains("sk-app-secret"), "no app key exported");
    assert!(!raw.contains("\"hello\""), "no prompt text exported");

    // The next call skips the open breaker, and says so.
    let (trace, _, traceparent) = new_trace();
    assert_eq!(chat_traced(&sidecar, &traceparent).await.status, 200);
    let spans = receiver.received.wait_for(&trace, 2).await;
    let server = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap();
    let skipped = server
        .events
        .iter()
        .find(|e| e.name == "switchyard.skipped")
        .expect("a skip event");
    assert_eq!(
        attr(&skipped.attributes, "target").as_deref(),
        Some("primary/gpt-4o")
    );
    assert_eq!(
        attr(&skipped.attributes, "reason").as_deref(),
        Some("breaker_open")
    );
}

#[tokio::test]
async fn upstreams_receive_the_attempt_context_and_streams_end_their_span() {
    let receiver = receiver();
    let (primary, _secondary, sidecar) = pair("").await;
    let (trace, _, traceparent) = new_trace();
    let response = post_stream_with(
        &sidecar.url("/v1/chat/completions"),
        &json!({
            "model": "gpt-4o",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hello"}],
        })
        .to_string(),
        &traceparent,
    )
    .await;
    assert_eq!(response.status(), 200);
    let events = stream_events(response).await;
    assert!(events.last().is_some_and(|e| e == "[DONE]"), "{events:?}");
    let spans = receiver.received.wait_for(&trace, 2).await;
    let attempt = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.kind == SpanKind::Client as i32)
        .expect("an attempt span, ended with the stream");
    assert_only_convention_attributes(attempt);
    let output = int(&attempt.attributes, "gen_ai.usage.output_tokens").expect("an integer");
    assert!(output > 0, "usage recorded when the stream ended");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let sent = primary.stats().recent[0].headers["traceparent"].clone();
    assert_eq!(
        sent,
        format!("00-{}-{}-01", hex(&trace), hex(&attempt.span_id)),
        "the upstream call carries the attempt's context, not the app's"
    );
}

#[tokio::test]
async fn captured_content_appears_only_when_asked() {
    let receiver = receiver();
    let (_primary, _secondary, sidecar) = pair("telemetry: {captureContent: true}").await;
    let (trace, _, traceparent) = new_trace();
    assert_eq!(chat_traced(&sidecar, &traceparent).await.status, 200);
    let spans = receiver.received.wait_for(&trace, 2).await;
    let attempt = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.kind == SpanKind::Client as i32)
        .unwrap();
    let prompt = attr(&attempt.attributes, "gen_ai.input.messages").expect("prompt captured");
    assert!(prompt.contains("hello"), "{prompt}");
    assert!(attr(&attempt.attributes, "gen_ai.output.messages").is_some());
}

#[tokio::test]
async fn the_http_protobuf_transport_delivers_spans() {
    let receiver = receiver();
    let endpoint = format!("http://{}", receiver.http);
    let config = switchyard::telemetry::OtlpConfig::from_lookup(|name| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
        "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/protobuf".into()),
        _ => None,
    })
    .unwrap()
    .unwrap();
    assert!(config.endpoint.ends_with("/v1/traces"));
    let provider = {
        let _entered = receiver.runtime.enter();
        switchyard::telemetry::provider(&config).unwrap()
    };
    let mut span = provider.tracer("test").start("over http");
    let trace = span.span_context().trace_id().to_bytes();
    span.end();
    let flushed = tokio::task::spawn_blocking(move || provider.force_flush())
        .await
        .unwrap();
    assert!(flushed.is_ok(), "{flushed:?}");
    let spans = receiver.received.wait_for(&trace, 1).await;
    assert_eq!(spans[0].1.name, "over http");
}

/// How long the black-holed collector holds an export: far longer than any call may take.
const HELD_EXPORT_MS: u64 = 60_000;

/// Calls through a sidecar whose spans go to a collector that accepts connections and
/// never answers: with the export queue full and the one export in flight held for a
/// minute, every call still answers in a fraction of that, and its spans are dropped
/// and counted instead of waiting.
#[tokio::test]
async fn a_black_hole_collector_never_blocks_and_drops_are_counted() {
    let healthy = receiver();
    // Accepts connections, keeps them, never reads or answers; says when the exporter
    // has connected, that is, when its first batch has left the queue and hangs.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", hole.local_addr().unwrap());
    let (connected, exporting) = tokio::sync::oneshot::channel();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut connected = Some(connected);
        while let Ok((stream, _)) = hole.accept().await {
            held.push(stream);
            if let Some(connected) = connected.take() {
                let _ = connected.send(());
            }
        }
    });
    let config = switchyard::telemetry::OtlpConfig::from_lookup(|name| match name {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => Some(endpoint.clone()),
        "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("grpc".into()),
        "OTEL_EXPORTER_OTLP_TIMEOUT" => Some(HELD_EXPORT_MS.to_string()),
        "OTEL_BSP_SCHEDULE_DELAY" => Some("1".into()),
        _ => None,
    })
    .unwrap()
    .unwrap();
    let provider = {
        let _entered = healthy.runtime.enter();
        switchyard::telemetry::provider(&config).unwrap()
    };
    let tracer = provider.tracer("test");
    let before = switchyard::metrics::spans_dropped().get();
    // More than the queue holds while the first batch hangs on the collector.
    for _ in 0..5_000 {
        tracer.start("lost").end();
    }
    let dropped = switchyard::metrics::spans_dropped().get() - before;
    assert!(dropped > 0, "overflow is counted");
    assert!(dropped <= 5_000);
    tokio::time::timeout(ms(10_000), exporting)
        .await
        .expect("the exporter reaches the collector")
        .unwrap();
    // The first batch has left the queue: fill it again, so it stays full while the
    // held export lasts.
    let topped = switchyard::metrics::spans_dropped().get();
    for _ in 0..5_000 {
        if switchyard::metrics::spans_dropped().get() > topped {
            break;
        }
        tracer.start("lost").end();
    }
    assert!(
        switchyard::metrics::spans_dropped().get() > topped,
        "the queue is full"
    );

    let (primary, _secondary, sidecar) = pair("").await;
    // The sidecar serves on this test's (current-thread) runtime, so under this guard
    // its call and attempt spans go to the black-holed pipeline, not the healthy one.
    let scoped = tracing_subscriber::registry()
        .with(switchyard::telemetry::layer(&provider))
        .set_default();
    let before_calls = switchyard::metrics::spans_dropped().get();
    let mut traces = Vec::new();
    for _ in 0..20 {
        let (trace, _, traceparent) = new_trace();
        let reply = tokio::time::timeout(ms(2_000), chat_traced(&sidecar, &traceparent))
            .await
            .expect("a call is not held up by the collector, whose export hangs for a minute");
        assert_eq!(reply.status, 200, "{}", reply.text());
        traces.push(trace);
    }
    drop(scoped);
    assert_eq!(primary.calls(), 20);
    assert!(
        switchyard::metrics::spans_dropped().get() - before_calls >= 2 * 20,
        "each call's server and attempt spans met the full queue and were counted"
    );
    crate::support::otlp::flush();
    for trace in &traces {
        assert!(
            healthy.received.trace(trace).is_empty(),
            "the calls' spans went to the black hole, not the healthy collector"
        );
    }
    holder.abort();
    tokio::task::spawn_blocking(move || drop(provider))
        .await
        .unwrap();
}

async fn post_stream_with(
    url: &str,
    body: &str,
    traceparent: &str,
) -> http::Response<hyper::body::Incoming> {
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .header("traceparent", traceparent)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .unwrap();
    send(request).await
}

#[tokio::test]
async fn metrics_carry_every_family_after_a_failover() {
    let (primary, _secondary, sidecar) = pair(
        r#"
  - model: priced
    targets:
      - {provider: primary, model: gpt-4o, price: {inputPerMTok: 2.5, outputPerMTok: 10}}
"#,
    )
    .await;
    primary.set_faults(faults(json!({"errorRate": 1.0, "errorStatus": 503})));
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    let text = sidecar.metrics().await;
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(ref h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            })
    };
    let primary_503 = [
        ("provider", "primary"),
        ("model", "gpt-4o"),
        ("outcome", "http_503"),
    ];
    assert_eq!(
        value(
            "switchyard_requests_total",
            &[("route", "gpt-4o"), ("outcome", "success")]
        ),
        Some(1.0)
    );
    assert_eq!(value("switchyard_attempts_total", &primary_503), Some(1.0));
    assert_eq!(
        value(
            "switchyard_attempts_total",
            &[("provider", "secondary"), ("outcome", "success")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "switchyard_failovers_total",
            &[
                ("route", "gpt-4o"),
                ("from", "primary/gpt-4o"),
                ("to", "secondary/gpt-4o-mini"),
                ("reason", "http_503")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value("switchyard_breaker_state", &[("provider", "primary")]),
        Some(0.0)
    );
    assert_eq!(
        value(
            "switchyard_request_duration_seconds",
            &[("route", "gpt-4o")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            "switchyard_time_to_first_byte_seconds",
            &[("provider", "secondary")]
        ),
        Some(1.0)
    );
    assert!(
        value(
            "switchyard_tokens_total",
            &[("provider", "secondary"), ("kind", "output")]
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        value("switchyard_cost_usd_total", &[("provider", "primary")]),
        Some(0.0)
    );
    assert_eq!(
        value("switchyard_policy_reloads_total", &[("result", "ok")]),
        Some(1.0)
    );
    assert_eq!(value("switchyard_policy_generation", &[]), Some(1.0));
    assert_eq!(value("switchyard_overhead_seconds", &[]), Some(1.0));
    assert!(value("switchyard_otlp_spans_dropped_total", &[]).is_some());
}
