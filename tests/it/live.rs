//! Live policy from Kubernetes (`docs/live-policy.md`): a ConfigMap and a RoutingPolicy
//! through a fake API server; edits, invalid edits (metric, Warning Event), resyncs after
//! a dropped watch and 410 Gone, an API server down at start, deletion, and swaps under
//! load. The file source and reload semantics are in `live_file.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchyard::app::RunArgs;

use crate::support::fake_kube::{configmaps, FakeKube};
use crate::support::*;

const NS: &str = "apps";
pub(crate) const SECOND: Duration = Duration::from_secs(1);

/// A policy with one provider (the mock) and one route per name.
pub(crate) fn policy(mock: &MockServer, routes: &[&str]) -> String {
    let mut text = format!(
        "providers:\n  - name: primary\n    api: openai\n    baseUrl: {}/v1\n    \
         auth: {{apiKey: {{fromEnv: SWITCHYARD_TEST_KEY}}}}\nroutes:\n",
        mock.url()
    );
    for route in routes {
        text.push_str(&format!(
            "  - model: {route}\n    targets: [{{provider: primary, model: gpt-4o}}]\n"
        ));
    }
    text
}

/// Replaces a file as editors and kubelet do (write aside, rename over), so the watcher
/// never reads a half-written policy.
pub(crate) fn replace_file(path: &std::path::Path, text: impl AsRef<[u8]>) -> std::io::Result<()> {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, text)?;
    std::fs::rename(aside, path)
}

fn spec_json(text: &str) -> serde_json::Value {
    serde_yaml::from_str(text).unwrap()
}

pub(crate) async fn mock() -> MockServer {
    provider_key_env();
    MockServer::start("primary").await.unwrap()
}

fn configmap_args(fake: &FakeKube, name: &str) -> RunArgs {
    let mut args = RunArgs::loopback(None);
    args.policy_configmap = Some(format!("{NS}/{name}"));
    args.kubeconfig = Some(fake.kubeconfig());
    args
}

fn resource_args(fake: &FakeKube, name: &str) -> RunArgs {
    let mut args = RunArgs::loopback(None);
    args.policy_resource = Some(format!("{NS}/{name}"));
    args.kubeconfig = Some(fake.kubeconfig());
    args
}

#[tokio::test]
async fn configmap_edit_goes_live_within_a_second() {
    let upstream = mock().await;
    let fake = FakeKube::start().await;
    fake.put_configmap(NS, "llm-policy", &policy(&upstream, &["gpt-4o"]));
    let sidecar = Sidecar::start_with(configmap_args(&fake, "llm-policy")).await;
    sidecar.wait_generation(1, 5 * SECOND).await;
    assert_eq!(get(&sidecar.admin("/readyz")).await.status, 200);
    assert_eq!(sidecar.chat("gpt-5").await.status, 404);

    fake.put_configmap(NS, "llm-policy", &policy(&upstream, &["gpt-4o", "gpt-5"]));
    let took = sidecar.wait_generation(2, SECOND).await;
    eprintln!("configmap edit live after {took:?}");
    let reply = sidecar.chat("gpt-5").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-switchyard-route"), "gpt-5");
}

#[tokio::test]
async fn invalid_edit_keeps_policy_counts_and_records_a_warning_event() {
    let upstream = mock().await;
    let fake = FakeKube::start().await;
    fake.put_configmap(NS, "llm-policy", &policy(&upstream, &["gpt-4o"]));
    let sidecar = Sidecar::start_with(configmap_args(&fake, "llm-policy")).await;
    sidecar.wait_generation(1, 5 * SECOND).await;

    let broken = policy(&upstream, &["gpt-4o"]).replace("provider: primary", "provider: primry");
    fake.put_configmap(NS, "llm-policy", &broken);
    let events = fake.wait_events(1, SECOND).await;
    let event = &events[0];
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "InvalidPolicy");
    assert_eq!(event["regarding"]["kind"], "ConfigMap");
    assert_eq!(event["regarding"]["name"], "llm-policy");
    assert_eq!(event["regarding"]["namespace"], NS);
    let note = event["note"].as_str().unwrap();
    assert!(
        note.contains(r#"routes[0].targets[0].provider: no provider named "primry""#),
        "{note}"
    );

    assert_eq!(sidecar.generation().await, 1, "the running policy stays");
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    let metrics = sidecar.metrics().await;
    assert!(
        metrics.contains(r#"switchyard_policy_reloads_total{result="invalid"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_policy_generation 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_malformed_routing_policy_is_reported_and_never_served() {
    let upstream = mock().await;
    let fake = FakeKube::start().await;
    let mut spec = spec_json(&policy(&upstream, &["gpt-4o"]));
    spec["routes"][0]["fallback"] = serde_json::json!(true);
    fake.put_routing_policy(NS, "llm", spec);
    let sidecar = Sidecar::start_with(resource_args(&fake, "llm")).await;
    let events = fake.wait_events(1, 5 * SECOND).await;
    assert_eq!(events[0]["regarding"]["kind"], "RoutingPolicy");
    assert_eq!(
        events[0]["regarding"]["apiVersion"],
        "switchyard.dev/v1alpha1"
    );
    let note = events[0]["note"].as_str().unwrap();
    assert!(note.contains("routes[0].fallback: unknown field"), "{note}");
    assert_eq!(get(&sidecar.admin("/readyz")).await.status, 503);

    fake.put_routing_policy(NS, "llm", spec_json(&policy(&upstream, &["gpt-4o"])));
    sidecar.wait_generation(1, SECOND).await;
    assert_eq!(get(&sidecar.admin("/readyz")).await.status, 200);
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
}

#[tokio::test]
async fn dropped_watch_and_410_gone_resync_without_missing_an_update() {
    let upstream = mock().await;
    let fake = FakeKube::start().await;
    fake.put_routing_policy(NS, "llm", spec_json(&policy(&upstream, &["a"])));
    let sidecar = Sidecar::start_with(resource_args(&fake, "llm")).await;
    sidecar.wait_generation(1, 5 * SECOND).await;
    fake.bookmark();
    let lists_at_start = fake.lists();

    // The connection drops and the update happens while nobody is watching: the
    // watcher resumes from its resourceVersion and is sent what it missed.
    fake.put_routing_policy_while_disconnected(
        NS,
        "llm",
        spec_json(&policy(&upstream, &["a", "b"])),
        false,
    );
    sidecar.wait_generation(2, 5 * SECOND).await;
    assert_eq!(sidecar.chat("b").await.status, 200);
    let lists_before = fake.lists();
    assert_eq!(
        lists_before, lists_at_start,
        "a dropped watch resumes without a relist"
    );

    // Same, but history was compacted: resuming gets 410 Gone, so the watcher relists.
    fake.put_routing_policy_while_disconnected(
        NS,
        "llm",
        spec_json(&policy(&upstream, &["a", "b", "c"])),
        true,
    );
    sidecar.wait_generation(3, 5 * SECOND).await;
    assert!(
        fake.lists() > lists_before,
        "a 410 makes the watcher relist"
    );
    assert_eq!(sidecar.chat("c").await.status, 200);
    assert_eq!(
        sidecar.generation().await,
        3,
        "the relist did not reload again"
    );
}

#[tokio::test]
async fn api_server_down_at_start_then_ready_when_it_comes_up() {
    let upstream = mock().await;
    let fake = FakeKube::start_down().await;
    fake.put_routing_policy(NS, "llm", spec_json(&policy(&upstream, &["gpt-4o"])));
    let sidecar = Sidecar::start_with(resource_args(&fake, "llm")).await;
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    while fake.refused() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sidecar retries"
        );
        tokio::time::sleep(ms(10)).await;
    }
    assert_eq!(get(&sidecar.admin("/readyz")).await.status, 503);
    assert_eq!(sidecar.chat("gpt-4o").await.status, 503);

    fake.set_up(true);
    sidecar.wait_generation(1, 40 * SECOND).await;
    assert_eq!(get(&sidecar.admin("/readyz")).await.status, 200);
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
}

#[tokio::test]
async fn deleting_the_object_keeps_the_last_good_policy() {
    let upstream = mock().await;
    let fake = FakeKube::start().await;
    fake.put_configmap(NS, "llm-policy", &policy(&upstream, &["gpt-4o"]));
    let sidecar = Sidecar::start_with(configmap_args(&fake, "llm-policy")).await;
    sidecar.wait_generation(1, 5 * SECOND).await;

    fake.delete(&configmaps(NS), "llm-policy");
    // Re-creating it later is seen after the delete on the same ordered stream, so
    // everything checked before that ran with the delete already applied or pending.
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    fake.put_configmap(NS, "llm-policy", &policy(&upstream, &["gpt-4o", "later"]));
    sidecar.wait_generation(2, SECOND).await;
    assert_eq!(get(&sidecar.admin("/readyz")).await.status, 200);
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    assert!(sidecar
        .metrics()
        .await
        .contains(r#"switchyard_policy_reloads_total{result="ok"} 2"#));
}

#[tokio::test]
async fn twenty_swaps_under_load_lose_no_request() {
    let upstream = mock().await;
    let fake = FakeKube::start().await;
    fake.put_configmap(NS, "llm-policy", &policy(&upstream, &["gpt-4o"]));
    let sidecar = Arc::new(Sidecar::start_with(configmap_args(&fake, "llm-policy")).await);
    sidecar.wait_generation(1, 5 * SECOND).await;

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (sidecar, stop, sent) = (Arc::clone(&sidecar), Arc::clone(&stop), Arc::clone(&sent));
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::SeqCst) && statuses.len() < 2_000 {
                sent.fetch_add(1, Ordering::SeqCst);
                statuses.push(sidecar.chat("gpt-4o").await.status.as_u16());
            }
            statuses
        }));
    }
    for swap in 0..20u64 {
        let extra = format!("swap-{swap}");
        fake.put_configmap(NS, "llm-policy", &policy(&upstream, &["gpt-4o", &extra]));
        sidecar.wait_generation(swap + 2, SECOND).await;
        // Let requests run on the new policy before the next swap, so every swap
        // happens under traffic.
        let before = sent.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + 5 * SECOND;
        while sent.load(Ordering::SeqCst) < before + 8 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the load keeps flowing"
            );
            tokio::time::sleep(ms(1)).await;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut answered = Vec::new();
    for client in clients {
        answered.extend(client.await.unwrap());
    }
    eprintln!(
        "20 swaps under load: {} requests sent, {} answered",
        sent.load(Ordering::SeqCst),
        answered.len()
    );
    assert_eq!(answered.len(), sent.load(Ordering::SeqCst));
    assert!(answered.len() >= 160, "the load ran through the swaps");
    assert!(answered.iter().all(|s| *s == 200), "{answered:?}");
}
