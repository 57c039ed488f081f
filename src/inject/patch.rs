//! Decides whether a pod gets the sidecar and builds the JSONPatch that adds it.
//!
//! Invariant: pure and idempotent. A pod that did not opt in, that is the injector's own,
//! or that already has the sidecar yields no patch; a patch only adds (the sidecar, its
//! keys volume, one annotation and SDK variables an app container does not set), so
//! nothing the user wrote is changed or removed.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use serde_json::{json, Value};

use super::sidecar::{
    self, PolicySource, SidecarConfig, SidecarMode, ANTHROPIC_BASE_URL, KEYS_VOLUME,
    OPENAI_BASE_URL, SIDECAR_NAME,
};

/// The label by which a pod opts in (`"true"`).
pub const INJECT_LABEL: &str = "switchyard.dev/inject";
/// The label on the injector's own pods, which are never injected.
pub const INJECTOR_LABEL: &str = "switchyard.dev/injector";
/// Names the pod's policy: `NAME` (a RoutingPolicy) or `configmap/NAME`.
pub const POLICY_ANNOTATION: &str = "switchyard.dev/policy";
/// Set on an injected pod to the injector's version; marks it as done.
pub const STATUS_ANNOTATION: &str = "switchyard.dev/injected";
/// `"false"` leaves `OPENAI_BASE_URL` out of the app containers.
pub const OPENAI_ANNOTATION: &str = "switchyard.dev/set-openai-base-url";
/// `"false"` leaves `ANTHROPIC_BASE_URL` out of the app containers.
pub const ANTHROPIC_ANNOTATION: &str = "switchyard.dev/set-anthropic-base-url";
/// Overrides the keys Secret for one workload.
pub const KEYS_SECRET_ANNOTATION: &str = "switchyard.dev/keys-secret";

/// What to do with one pod.
#[derive(Debug)]
pub enum Decision {
    /// Add the sidecar by applying this patch.
    Inject(Patch),
    /// Leave the pod as it is. `warning` is set when the pod asked for the sidecar but
    /// cannot have it, so the user sees why.
    Leave {
        /// Why, for the log.
        reason: String,
        /// Shown to the client that created the pod.
        warning: Option<String>,
    },
}

impl Decision {
    fn leave(reason: &str) -> Self {
        Self::Leave {
            reason: reason.to_owned(),
            warning: None,
        }
    }

    fn refuse(warning: String) -> Self {
        Self::Leave {
            reason: warning.clone(),
            warning: Some(format!("switchyard: sidecar not injected: {warning}")),
        }
    }
}

/// Decides what to do with `pod` and builds the patch that injects the sidecar.
pub fn decide(pod: &Pod, config: &SidecarConfig) -> Decision {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    if labels.contains_key(INJECTOR_LABEL) {
        return Decision::leave("the injector's own pod");
    }
    if labels.get(INJECT_LABEL).map(String::as_str) != Some("true") {
        return Decision::leave("not opted in");
    }
    let Some(spec) = &pod.spec else {
        return Decision::refuse("the pod has no spec".into());
    };
    let has_sidecar = |containers: Option<&Vec<Container>>| {
        containers.is_some_and(|list| list.iter().any(|c| c.name == SIDECAR_NAME))
    };
    if annotations.contains_key(STATUS_ANNOTATION)
        || has_sidecar(Some(&spec.containers))
        || has_sidecar(spec.init_containers.as_ref())
    {
        return Decision::leave("already injected");
    }
    let policy = match PolicySource::parse(annotations.get(POLICY_ANNOTATION).map(String::as_str)) {
        Ok(policy) => policy,
        Err(err) => return Decision::refuse(err.to_string()),
    };
    let restart = spec.restart_policy.as_deref().unwrap_or("Always");
    if config.mode == SidecarMode::Container && restart != "Always" {
        return Decision::refuse(format!(
            "restartPolicy {restart} would never finish with a regular sidecar container; \
             use native sidecars (Kubernetes >= 1.29)"
        ));
    }
    let keys_secret = annotations
        .get(KEYS_SECRET_ANNOTATION)
        .or(config.keys_secret.as_ref());
    if let Some(secret) = keys_secret {
        if !sidecar::is_dns_subdomain(secret) {
            return Decision::refuse(format!("keys Secret name {secret:?} is not valid"));
        }
        let volumes = spec.volumes.iter().flatten();
        if volumes.into_iter().any(|v| v.name == KEYS_VOLUME) {
            return Decision::refuse(format!("the pod already has a volume named {KEYS_VOLUME}"));
        }
    }

    let mut ops = Vec::new();
    let enabled = |key: &str| annotations.get(key).map(String::as_str) != Some("false");
    let mut sdk_env = Vec::new();
    if enabled(OPENAI_ANNOTATION) {
        sdk_env.push(("OPENAI_BASE_URL", OPENAI_BASE_URL));
    }
    if enabled(ANTHROPIC_ANNOTATION) {
        sdk_env.push(("ANTHROPIC_BASE_URL", ANTHROPIC_BASE_URL));
    }
    for (index, container) in spec.containers.iter().enumerate() {
        let base = [
            "spec".to_owned(),
            "containers".to_owned(),
            index.to_string(),
            "env".to_owned(),
        ];
        let missing: Vec<Value> = sdk_env
            .iter()
            .filter(|(name, _)| !sets_env(container, name))
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        append_all(&mut ops, &base, container.env.is_some(), missing);
    }
    if let Some(secret) = keys_secret {
        let volume = to_value(sidecar::keys_volume(secret));
        append_all(
            &mut ops,
            &["spec".into(), "volumes".into()],
            spec.volumes.is_some(),
            vec![volume],
        );
    }
    let container = to_value(config.container(&policy, keys_secret.map(String::as_str)));
    let (list, exists) = match config.mode {
        SidecarMode::Native => ("initContainers", spec.init_containers.is_some()),
        SidecarMode::Container => ("containers", true),
    };
    append_all(
        &mut ops,
        &["spec".into(), list.into()],
        exists,
        vec![container],
    );
    let version = Value::from(env!("CARGO_PKG_VERSION"));
    if pod.metadata.annotations.is_some() {
        ops.push(add(
            &["metadata", "annotations", STATUS_ANNOTATION],
            version,
        ));
    } else {
        ops.push(add(
            &["metadata", "annotations"],
            json!({ STATUS_ANNOTATION: version }),
        ));
    }
    Decision::Inject(Patch(ops))
}

/// True when the container sets `name` itself (an explicit `env` entry).
fn sets_env(container: &Container, name: &str) -> bool {
    container
        .env
        .iter()
        .flatten()
        .any(|var: &EnvVar| var.name == name)
}

/// Appends `items` to the array at `path`, creating the array when it does not exist.
fn append_all(ops: &mut Vec<PatchOperation>, path: &[String], exists: bool, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    if exists {
        for item in items {
            let mut end: Vec<&str> = path.iter().map(String::as_str).collect();
            end.push("-");
            ops.push(add(&end, item));
        }
    } else {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        ops.push(add(&path, Value::Array(items)));
    }
}

fn add(tokens: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(tokens.iter().copied()),
        value,
    })
}

fn to_value<T: serde::Serialize>(object: T) -> Value {
    serde_json::to_value(object).expect("Kubernetes API types always serialise to JSON")
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
