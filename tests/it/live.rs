//! DESIGN §6 live policy: a watched file (kubelet's symlink swap), a ConfigMap and a
//! RoutingPolicy through a fake Kubernetes API server; invalid edits, resyncs, an API
//! server down at start, deletion, swaps under load, and breaker state across reloads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchyard::app::RunArgs;

use crate::support::fake_kube::{configmaps, FakeKube};
use crate::support::*;

const NS: &str = "apps";
const SECOND: Duration = Duration::from_secs(1);

/// A policy with one provider (the mock) and one route per name.
fn policy(mock: &MockServer, routes: &[&str]) -> String {
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
fn replace_file(path: &std::path::Path, text: impl AsRef<[u8]>) -> std::io::Result<()> {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, text)?;
    std::fs::rename(aside, path)
}

fn spec_json(text: &str) -> serde_json::Value {
    serde_yaml::from_str(text).unwrap()
}

async fn mock() -> MockServer {
    std::env::set_var("SWITCHYARD_TEST_KEY", "sk-test-provider-key");
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

/// Lays out a directory as kubelet's atomic writer does for a ConfigMap volume.
struct ConfigMapVolume {
    dir: tempfile::TempDir,
    version: usize,
}

impl ConfigMapVolume {
    fn new(policy: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut volume = ConfigMapVolume { dir, version: 0 };
        let first = volume.write_version(policy);
        std::os::unix::fs::symlink(&first, volume.dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/policy.yaml", volume.dir.path().join("policy.yaml"))
            .unwrap();
        volume
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("policy.yaml")
    }

    fn write_version(&mut self, policy: &str) -> String {
        self.version += 1;
        let name = format!("..2026_01_01_00_00_00.{:09}", self.version);
        std::fs::create_dir(self.dir.path().join(&name)).unwrap();
        std::fs::write(self.dir.path().join(&name).join("policy.yaml"), policy).unwrap();
        name
    }

    /// New timestamped dir, `..data_tmp` symlink to it, renamed over `..data`, old dir removed.
    fn swap(&mut self, policy: &str) {
        let old = std::fs::read_link(self.dir.path().join("..data")).unwrap();
        let new = self.write_version(policy);
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&new, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.path().join(old)).unwrap();
    }
}

#[tokio::test]
async fn file_source_follows_the_kubelet_symlink_swap() {
    let upstream = mock().await;
    let mut volume = ConfigMapVolume::new(&policy(&upstream, &["gpt-4o"]));
    let sidecar = Sidecar::start_with(RunArgs::loopback(Some(volume.path()))).await;
    assert_eq!(sidecar.generation().await, 1);

    volume.swap(&policy(&upstream, &["gpt-4o", "gpt-5"]));
    let took = sidecar.wait_generation(2, SECOND).await;
    eprintln!("symlink swap live after {took:?}");
    assert_eq!(sidecar.chat("gpt-5").await.status, 200);

    volume.swap("routes: []\n");
    let deadline = tokio::time::Instant::now() + SECOND;
    while !sidecar
        .metrics()
        .await
        .contains(r#"switchyard_policy_reloads_total{result="invalid"} 1"#)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the invalid swap is seen and counted"
        );
        tokio::time::sleep(ms(5)).await;
    }
    assert_eq!(sidecar.generation().await, 2);
    assert_eq!(sidecar.chat("gpt-5").await.status, 200);
}

#[tokio::test]
async fn an_invalid_policy_file_fails_start_up() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "routes: []\n").unwrap();
    let err = switchyard::app::start(&RunArgs::loopback(Some(file.path().to_owned())))
        .await
        .err()
        .expect("start fails");
    assert!(
        matches!(err, switchyard::app::StartError::Config(_)),
        "{err}"
    );
}

#[tokio::test]
async fn an_open_breaker_stays_open_across_a_reload_that_keeps_its_target() {
    let primary = mock().await;
    let secondary = MockServer::start("secondary").await.unwrap();
    let text = two_target_policy(&primary, &secondary, "");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    replace_file(&path, &text).unwrap();
    let sidecar = Sidecar::start_with(RunArgs::loopback(Some(path.clone()))).await;
    let opened = post(
        &sidecar.admin("/breakers/primary/gpt-4o/open?for=60s"),
        "",
        &[],
    )
    .await;
    assert_eq!(opened.status, 200, "{}", opened.text());

    // The gpt-4o route and both its targets stay; only a new route is added.
    let edited = format!("{text}\n").replace(
        "routes:\n",
        "routes:\n  - model: extra\n    targets: [{provider: secondary, model: gpt-4o-mini}]\n",
    );
    replace_file(&path, edited).unwrap();
    sidecar.wait_generation(2, SECOND).await;

    let breakers = sidecar.breakers().await;
    let primary_state = breakers
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["provider"] == "primary" && b["model"] == "gpt-4o")
        .unwrap_or_else(|| panic!("{breakers}"));
    assert_eq!(primary_state["state"], "open", "{breakers}");
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(reply.header("x-switchyard-provider"), "secondary");
    assert_eq!(primary.calls(), 0);

    // A reload that changes the target (another model) drops its state: changing it
    // back starts from a fresh, closed breaker.
    replace_file(
        &path,
        text.replace(
            "model: gpt-4o\n      - provider: secondary",
            "model: gpt-4o-2\n      - provider: secondary",
        ),
    )
    .unwrap();
    sidecar.wait_generation(3, SECOND).await;
    replace_file(&path, &text).unwrap();
    sidecar.wait_generation(4, SECOND).await;
    let reply = sidecar.chat("gpt-4o").await;
    assert_eq!(
        reply.header("x-switchyard-provider"),
        "primary",
        "{}",
        sidecar.breakers().await
    );
}

#[tokio::test]
async fn a_stream_in_flight_finishes_on_its_snapshot_across_a_swap() {
    let upstream = mock().await;
    upstream.set_faults(faults(
        serde_json::json!({"chunks": 6, "chunkInterval": "50ms"}),
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    replace_file(&path, policy(&upstream, &["old"])).unwrap();
    let sidecar = Sidecar::start_with(RunArgs::loopback(Some(path.clone()))).await;
    let response = post_stream(
        &sidecar.url("/v1/chat/completions"),
        &chat_body("old", true),
    )
    .await;
    assert_eq!(response.status(), 200);

    // The route the stream is on disappears while it runs.
    replace_file(&path, policy(&upstream, &["new"])).unwrap();
    sidecar.wait_generation(2, SECOND).await;
    assert_eq!(sidecar.chat("old").await.status, 404);
    let events = stream_events(response).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
}

#[test]
fn committed_crds_equal_the_generated_one() {
    let generated = switchyard::policy::crd_yaml();
    for path in ["deploy/crd.yaml", "helm/switchyard/crds/routingpolicy.yaml"] {
        let committed = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            committed, generated,
            "{path} drifted: regenerate it with `switchyard crd`"
        );
    }
}

#[test]
fn the_crd_schema_rejects_what_validation_rejects_where_it_can() {
    let crd: serde_json::Value = serde_yaml::from_str(&switchyard::policy::crd_yaml()).unwrap();
    let version = &crd["spec"]["versions"][0];
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(spec["providers"]["x-kubernetes-list-type"], "map");
    assert_eq!(spec["providers"]["x-kubernetes-list-map-keys"][0], "name");
    assert_eq!(spec["routes"]["minItems"], 1);
    let rate = &spec["circuitBreaker"]["properties"]["failureRate"];
    assert_eq!(rate["exclusiveMinimum"], true);
    assert_eq!(rate["minimum"], 0.0);
    assert_eq!(rate["maximum"], 1.0);
    let route = &spec["routes"]["items"]["properties"];
    assert_eq!(route["maxAttempts"]["minimum"], 1.0);
    assert_eq!(route["targets"]["minItems"], 1);
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Routes", "Age"]);
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "rp");
}
