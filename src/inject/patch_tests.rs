use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};

use super::*;

fn config(mode: SidecarMode) -> SidecarConfig {
    SidecarConfig {
        image: "example/switchyard:test".into(),
        image_pull_policy: "IfNotPresent".into(),
        mode,
        requests: BTreeMap::from([("cpu".into(), "50m".into())]),
        limits: BTreeMap::from([("memory".into(), "256Mi".into())]),
        env: vec![(
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            "http://otel:4317".into(),
        )],
        keys_secret: Some("llm-keys".into()),
        drain_timeout: "30s".into(),
        run_as_user: 65532,
        shared_state: None,
        shared_state_password: None,
    }
}

fn pod(labels: Value, annotations: Value, spec: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "app-", "labels": labels, "annotations": annotations},
        "spec": spec,
    })
}

fn opted_in(spec: Value) -> Value {
    pod(
        json!({"switchyard.dev/inject": "true"}),
        json!({"switchyard.dev/policy": "configmap/llm-policy"}),
        spec,
    )
}

/// Applies the decision's patch (if any) and returns the resulting pod.
fn mutate(doc: &Value, mode: SidecarMode) -> (Decision, Value) {
    let typed: Pod = serde_json::from_value(doc.clone()).expect("test pods are valid");
    let decision = decide(&typed, &config(mode));
    let mut out = doc.clone();
    if let Decision::Inject(patch) = &decision {
        json_patch::patch(&mut out, patch).expect("the patch applies");
    }
    (decision, out)
}

fn containers(pod: &Pod) -> Vec<&Container> {
    let spec = pod.spec.as_ref().expect("spec");
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect()
}

fn env_of<'a>(container: &'a Container, name: &str) -> Vec<&'a str> {
    container
        .env
        .iter()
        .flatten()
        .filter(|v| v.name == name)
        .map(|v| v.value.as_deref().unwrap_or(""))
        .collect()
}

#[test]
fn single_container_pod_gets_native_sidecar_keys_and_env() {
    let doc = opted_in(json!({"containers": [{"name": "app", "image": "app:1"}]}));
    let (decision, out) = mutate(&doc, SidecarMode::Native);
    assert!(matches!(decision, Decision::Inject(_)));
    let pod: Pod = serde_json::from_value(out).expect("the result is a Pod");
    let spec = pod.spec.as_ref().expect("spec");
    let sidecar = &spec.init_containers.as_ref().expect("init containers")[0];
    assert_eq!(sidecar.name, "switchyard");
    assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
    let args = sidecar.args.clone().unwrap_or_default();
    assert!(args
        .windows(2)
        .any(|w| w == ["--policy-configmap", "llm-policy"]));
    assert_eq!(
        sidecar.volume_mounts.as_ref().expect("mount")[0].mount_path,
        "/etc/switchyard/keys"
    );
    let security = sidecar.security_context.as_ref().expect("security context");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(
        env_of(sidecar, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ["http://otel:4317"]
    );
    let app = &spec.containers[0];
    assert_eq!(env_of(app, "OPENAI_BASE_URL"), ["http://127.0.0.1:4000/v1"]);
    assert_eq!(env_of(app, "ANTHROPIC_BASE_URL"), ["http://127.0.0.1:4000"]);
    assert!(
        app.volume_mounts.is_none(),
        "keys are mounted into the sidecar only"
    );
    assert_eq!(
        spec.volumes.as_ref().expect("volumes")[0].name,
        "switchyard-keys"
    );
    let annotations = pod.metadata.annotations.expect("annotations");
    assert_eq!(annotations[STATUS_ANNOTATION], env!("CARGO_PKG_VERSION"));
}

#[test]
fn existing_env_volumes_and_init_containers_are_kept() {
    let doc = opted_in(json!({
        "initContainers": [{"name": "migrate", "image": "m:1"}],
        "containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "OPENAI_BASE_URL", "value": "http://mine"}]},
            {"name": "worker", "image": "w:1", "env": [{"name": "X", "value": "1"}]}
        ],
        "volumes": [{"name": "data", "emptyDir": {}}]
    }));
    let (_, out) = mutate(&doc, SidecarMode::Native);
    let pod: Pod = serde_json::from_value(out).expect("the result is a Pod");
    let spec = pod.spec.as_ref().expect("spec");
    let init = spec.init_containers.as_ref().expect("init");
    assert_eq!(
        init.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["migrate", "switchyard"]
    );
    assert_eq!(
        env_of(&spec.containers[0], "OPENAI_BASE_URL"),
        ["http://mine"]
    );
    assert_eq!(
        env_of(&spec.containers[0], "ANTHROPIC_BASE_URL"),
        ["http://127.0.0.1:4000"]
    );
    assert_eq!(env_of(&spec.containers[1], "X"), ["1"]);
    assert_eq!(
        env_of(&spec.containers[1], "OPENAI_BASE_URL"),
        ["http://127.0.0.1:4000/v1"]
    );
    let volumes = spec.volumes.as_ref().expect("volumes");
    assert_eq!(
        volumes.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["data", "switchyard-keys"]
    );
}

#[test]
fn injecting_twice_changes_nothing_the_second_time() {
    let doc = opted_in(json!({"containers": [{"name": "app", "image": "app:1"}]}));
    let (_, once) = mutate(&doc, SidecarMode::Native);
    let (decision, twice) = mutate(&once, SidecarMode::Native);
    assert!(matches!(decision, Decision::Leave { warning: None, .. }));
    assert_eq!(once, twice);
    let pod: Pod = serde_json::from_value(twice).expect("pod");
    assert_eq!(
        containers(&pod)
            .iter()
            .filter(|c| c.name == "switchyard")
            .count(),
        1
    );
}

#[test]
fn pods_not_opted_in_and_the_injectors_own_are_left_alone() {
    let spec = json!({"containers": [{"name": "app", "image": "app:1"}]});
    for labels in [
        json!({}),
        json!({"switchyard.dev/inject": "false"}),
        json!({"switchyard.dev/inject": "true", "switchyard.dev/injector": "true"}),
    ] {
        let (decision, out) = mutate(&pod(labels, json!({}), spec.clone()), SidecarMode::Native);
        assert!(matches!(decision, Decision::Leave { warning: None, .. }));
        assert_eq!(out["spec"], spec);
    }
}

#[test]
fn annotations_turn_sdk_variables_off_and_pick_a_routing_policy() {
    let doc = pod(
        json!({"switchyard.dev/inject": "true"}),
        json!({"switchyard.dev/policy": "team/fast", "switchyard.dev/set-anthropic-base-url": "false"}),
        json!({"containers": [{"name": "app", "image": "app:1"}]}),
    );
    let (_, out) = mutate(&doc, SidecarMode::Native);
    let pod: Pod = serde_json::from_value(out).expect("pod");
    let spec = pod.spec.as_ref().expect("spec");
    assert!(env_of(&spec.containers[0], "ANTHROPIC_BASE_URL").is_empty());
    assert_eq!(env_of(&spec.containers[0], "OPENAI_BASE_URL").len(), 1);
    let args = spec.init_containers.as_ref().expect("init")[0]
        .args
        .clone()
        .unwrap_or_default();
    assert!(args
        .windows(2)
        .any(|w| w == ["--policy-resource", "team/fast"]));
}

#[test]
fn container_mode_appends_a_regular_container_and_skips_jobs() {
    let doc = opted_in(json!({"containers": [{"name": "app", "image": "app:1"}]}));
    let (_, out) = mutate(&doc, SidecarMode::Container);
    let pod: Pod = serde_json::from_value(out).expect("pod");
    let spec = pod.spec.as_ref().expect("spec");
    assert_eq!(spec.containers[1].name, "switchyard");
    assert!(spec.containers[1].restart_policy.is_none());
    assert!(spec.init_containers.is_none());

    let job =
        opted_in(json!({"restartPolicy": "Never", "containers": [{"name": "app", "image": "a"}]}));
    let (decision, _) = mutate(&job, SidecarMode::Container);
    assert!(matches!(
        decision,
        Decision::Leave {
            warning: Some(_),
            ..
        }
    ));
    let (decision, _) = mutate(&job, SidecarMode::Native);
    assert!(matches!(decision, Decision::Inject(_)));
}

#[test]
fn bad_annotations_are_refused_with_a_warning() {
    for annotations in [
        json!({"switchyard.dev/policy": "Bad_Name"}),
        json!({"switchyard.dev/policy": "a/b/c"}),
        json!({"switchyard.dev/keys-secret": "no way"}),
    ] {
        let doc = pod(
            json!({"switchyard.dev/inject": "true"}),
            annotations,
            json!({"containers": [{"name": "app", "image": "a"}]}),
        );
        let (decision, _) = mutate(&doc, SidecarMode::Native);
        assert!(
            matches!(
                decision,
                Decision::Leave {
                    warning: Some(_),
                    ..
                }
            ),
            "{decision:?}"
        );
    }
}

#[test]
fn a_pod_without_annotations_uses_the_default_policy() {
    let doc = pod(
        json!({"switchyard.dev/inject": "true"}),
        Value::Null,
        json!({"containers": [{"name": "app", "image": "a"}]}),
    );
    let (_, out) = mutate(&doc, SidecarMode::Native);
    let pod: Pod = serde_json::from_value(out).expect("pod");
    let args = pod.spec.expect("spec").init_containers.expect("init")[0]
        .args
        .clone()
        .unwrap_or_default();
    assert!(!args.iter().any(|a| a.starts_with("--policy")));
    assert!(pod
        .metadata
        .annotations
        .expect("annotations")
        .contains_key(STATUS_ANNOTATION));
}

#[test]
fn quantities_and_names_are_checked() {
    for good in ["50m", "64Mi", "1", "0.5", "2G"] {
        assert!(sidecar::is_quantity(good), "{good}");
    }
    for bad in ["", "m", "1.", "64MB", "-1", "1x"] {
        assert!(!sidecar::is_quantity(bad), "{bad}");
    }
    assert!(sidecar::is_dns_subdomain("llm-keys.v2"));
    assert!(!sidecar::is_dns_subdomain("-x"));
}

#[test]
fn the_fleet_shared_state_reaches_the_sidecar_with_its_password_from_a_secret() {
    let config = SidecarConfig {
        shared_state: Some("redis://redis.llm:6379/0".into()),
        shared_state_password: Some(("redis-auth".into(), "password".into())),
        ..config(SidecarMode::Native)
    };
    let sidecar = config.container(&PolicySource::ConfigMap("llm-policy".into()), None);
    let args = sidecar.args.clone().unwrap_or_default();
    assert!(args
        .windows(2)
        .any(|w| w == ["--shared-state", "redis://redis.llm:6379/0"]));
    let env = sidecar.env.unwrap_or_default();
    let password = env
        .iter()
        .find(|e| e.name == "SWITCHYARD_REDIS_PASSWORD")
        .expect("the password variable");
    assert_eq!(password.value, None, "never inline");
    let selector = password
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("from a Secret");
    assert_eq!(
        (selector.name.as_str(), selector.key.as_str()),
        ("redis-auth", "password")
    );
}
