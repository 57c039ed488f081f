//! Micro-benchmark of the request hot path without sockets: body peek, route selection,
//! plan order, body `model` rewrite and upstream header rewrite, on a compiled two-target
//! failover policy. Every proxied call does exactly this work before its first byte goes
//! out, so a regression here is added latency for every pod.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::header::{HeaderMap, HeaderValue};
use switchyard::breaker::Timing;
use switchyard::operation::Operation;
use switchyard::policy::load::decode_and_validate;
use switchyard::policy::spec::{ApiKind, Strategy, Wire};
use switchyard::proxy::inbound::InboundBody;
use switchyard::proxy::outbound::build_request;
use switchyard::proxy::plan;
use switchyard::shared::Shared;
use tokio::time::Instant;

const POLICY: &str = r#"
providers:
  - name: primary
    api: openai
    baseUrl: http://127.0.0.1:9/v1
    auth: {passthrough: true}
  - name: secondary
    api: openai
    baseUrl: http://127.0.0.1:10/v1
    auth: {passthrough: true}
routes:
  - model: gpt-4o
    strategy: failover
    targets:
      - {provider: primary, model: gpt-4o-2024-08-06}
      - {provider: secondary, model: gpt-4o-mini}
  - model: "*"
    targets:
      - {provider: secondary}
"#;

const BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in five words."}],"temperature":0.2,"max_tokens":64,"stream":false}"#;

fn inbound_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "127.0.0.1:4000"),
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("authorization", "Bearer sk-app-key"),
        ("user-agent", "OpenAI/Python 1.54.0"),
        ("x-stainless-lang", "python"),
        ("x-stainless-retry-count", "0"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("content-length", "180"),
        ("connection", "keep-alive"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
}

fn hot_path(c: &mut Criterion) {
    let spec = decode_and_validate(POLICY).expect("the bench policy is valid");
    let shared = Shared::new(32 << 20, std::time::Duration::from_secs(30));
    shared.install(spec);
    let policy = shared.policy().expect("a policy was just installed");
    let headers = inbound_headers();
    let body = Bytes::from_static(BODY.as_bytes());
    let now = Instant::now();

    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_body", |b| {
        b.iter(|| black_box(InboundBody::parse(black_box(body.clone()))))
    });
    group.bench_function("select_route_and_plan", |b| {
        b.iter(|| {
            let index = policy
                .route_index(ApiKind::Openai, black_box("gpt-4o"))
                .expect("the route exists");
            black_box(plan::order(&policy.routes[index], Strategy::Failover, now))
        })
    });
    group.bench_function("full_request_prep", |b| {
        b.iter(|| {
            let inbound = InboundBody::parse(body.clone()).expect("the bench body is valid");
            let route = &policy.routes[policy
                .route_index(ApiKind::Openai, &inbound.model)
                .expect("the route exists")];
            let order = plan::order(route, Strategy::Failover, now);
            let target = &route.targets[order[0]];
            let model = target.model_for(&inbound.model);
            let request = build_request(
                &target.provider,
                (Operation::Chat, Wire::Chat),
                (model, false),
                &headers,
                inbound.with_model(model),
            );
            black_box(request)
        })
    });
    // One attempt's bookkeeping on its target: admission (breaker, cooldown, in-flight),
    // the budget reservation and the verdict that judges the call against the baseline and
    // teaches it; the same per-target lock, no lock shared across targets.
    let state = &policy.routes[0].targets[0].state;
    group.bench_function("admit_reserve_finish", |b| {
        let mut at = now;
        b.iter(|| {
            at += std::time::Duration::from_millis(1);
            let mut admission = state.admit(0, at).expect("a closed breaker admits");
            black_box(admission.reserve(45));
            let timing = Timing::Stream {
                ttft: std::time::Duration::from_millis(120),
            };
            black_box(admission.finish(false, Some(timing), at))
        })
    });
    group.finish();
}

/// What a Bedrock call adds: SigV4 over a 2 KiB body (every attempt, before its first
/// byte), and decoding a ConverseStream's frames (per event, on the stream path).
fn bedrock(c: &mut Criterion) {
    use switchyard::aws::sigv4::{sign, Keys, BEDROCK_SERVICE};
    let keys = Keys {
        access_key_id: "ASIAEXAMPLEKEY".to_owned(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
        session_token: Some("session-token".repeat(40)),
    };
    let body = Bytes::from(vec![b'x'; 2048]);
    let mut group = c.benchmark_group("bedrock");
    group.bench_function("sigv4_sign_2k", |b| {
        b.iter(|| {
            let mut request = http::Request::post(
                "https://bedrock-runtime.us-west-2.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream",
            )
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            .body(body.clone())
            .expect("a valid request");
            sign(&mut request, &keys, ("us-west-2", BEDROCK_SERVICE), std::time::SystemTime::now())
                .expect("signs");
            black_box(request)
        })
    });
    let frame = switchyard::eventstream::encode(
        "contentBlockDelta",
        false,
        br#"{"contentBlockIndex":0,"delta":{"text":"Hello there"},"p":"abcdefghijklmnop"}"#,
    );
    let stream: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 100)
        .collect();
    group.throughput(Throughput::Elements(100));
    group.bench_function("eventstream_decode_100_events", |b| {
        b.iter(|| {
            let mut decoder = switchyard::eventstream::Decoder::new();
            let mut n = 0;
            for chunk in stream.chunks(1400) {
                decoder.push(chunk);
                while decoder.next_event().is_some() {
                    n += 1;
                }
            }
            black_box(n)
        })
    });
    group.finish();
}

criterion_group!(benches, hot_path, bedrock);
criterion_main!(benches);
