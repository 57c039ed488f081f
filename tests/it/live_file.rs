//! Live policy from a watched file (`docs/live-policy.md`; kubelet's ConfigMap-volume
//! symlink swap),
//! and what a reload keeps: in-flight requests on their snapshot, breaker state of
//! unchanged targets; plus the CRD drift and schema checks.

use switchyard::app::RunArgs;

use crate::live::{mock, policy, replace_file, SECOND};
use crate::support::*;

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

/// A provider key kept in a file (a mounted Secret) is rotated: the sidecar sends the new
/// key after its next refresh, without a restart or a policy edit.
#[tokio::test]
async fn a_rotated_key_file_is_used_without_a_restart() {
    let upstream = MockServer::start("keyed").await.unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("openai");
    std::fs::write(&key_file, "sk-first\n").unwrap();
    let policy_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        policy_file.path(),
        format!(
            "providers:\n  - name: keyed\n    api: openai\n    baseUrl: {}/v1\n    \
             auth: {{apiKey: {{fromFile: {}}}}}\nroutes:\n  - model: gpt-4o\n    \
             targets: [{{provider: keyed}}]\n",
            upstream.url(),
            key_file.display()
        ),
    )
    .unwrap();
    let mut args = RunArgs::loopback(Some(policy_file.path().to_owned()));
    args.key_refresh_interval = ms(20);
    let sidecar = Sidecar::start_with(args).await;
    let sent_key = || upstream.stats().recent.last().unwrap().headers["authorization"].clone();

    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    assert_eq!(sent_key(), "Bearer sk-first");
    assert_eq!(sidecar.generation().await, 1);

    replace_file(&key_file, "sk-second\n").unwrap();
    sidecar.wait_generation(2, 5 * SECOND).await;
    assert_eq!(sidecar.chat("gpt-4o").await.status, 200);
    assert_eq!(sent_key(), "Bearer sk-second");
    assert_eq!(
        sidecar.generation().await,
        2,
        "an unchanged key file is no reason to recompile"
    );
}
