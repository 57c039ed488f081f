//! The Kubernetes sources: one named ConfigMap (key `policy.yaml`) or RoutingPolicy,
//! watched with `kube::runtime::watcher` (relists after 410 Gone and reconnects, with
//! the default backoff). Invariant: objects are read untyped and handed whole to the
//! one validation path, so a malformed object is reported, never a watcher failure.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource};
use serde_json::{json, Value};

use super::{Outcome, Reloader, SourceTask};
use crate::policy::spec::RoutingPolicy;

/// Where the in-cluster service account's namespace is mounted.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
/// The Events API caps a note at 1 kB.
const NOTE_LIMIT: usize = 1024;

/// Why a Kubernetes source could not be set up (a configuration error: exit 64).
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The `[NS/]NAME` flag is malformed.
    #[error("{flag}: expected [NAMESPACE/]NAME, got {value:?}")]
    Name {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// No namespace in the flag, `POD_NAMESPACE` or the in-cluster file.
    #[error("{flag}: no namespace given, POD_NAMESPACE unset and {NAMESPACE_FILE} unreadable")]
    Namespace {
        /// The flag.
        flag: &'static str,
    },
    /// The kubeconfig could not be read.
    #[error("cannot read kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// Neither a kubeconfig nor an in-cluster configuration was found.
    #[error("no Kubernetes client configuration: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// Which kind of object carries the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A ConfigMap, key `policy.yaml` (`--policy-configmap`).
    ConfigMap,
    /// A `switchyard.dev/v1alpha1` RoutingPolicy (`--policy-resource`).
    RoutingPolicy,
}

impl Kind {
    fn flag(self) -> &'static str {
        match self {
            Kind::ConfigMap => "--policy-configmap",
            Kind::RoutingPolicy => "--policy-resource",
        }
    }

    fn api_resource(self) -> ApiResource {
        match self {
            Kind::ConfigMap => ApiResource::erase::<ConfigMap>(&()),
            Kind::RoutingPolicy => ApiResource::erase::<RoutingPolicy>(&()),
        }
    }
}

/// A namespaced object name, from `[NS/]NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    /// The namespace.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectName {
    /// Parses `[NS/]NAME`; without `NS/`, `POD_NAMESPACE`, then the in-cluster
    /// namespace file, says where the object lives (`docs/live-policy.md`).
    pub fn parse(kind: Kind, value: &str) -> Result<Self, KubeError> {
        let bad = || KubeError::Name {
            flag: kind.flag(),
            value: value.to_owned(),
        };
        let (namespace, name) = match value.split_once('/') {
            Some((ns, name)) if !ns.is_empty() => (ns.to_owned(), name),
            Some(_) => return Err(bad()),
            None => (default_namespace(kind)?, value),
        };
        if name.is_empty() || name.contains('/') {
            return Err(bad());
        }
        Ok(Self {
            namespace,
            name: name.to_owned(),
        })
    }
}

fn default_namespace(kind: Kind) -> Result<String, KubeError> {
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| std::fs::read_to_string(NAMESPACE_FILE).ok())
        .map(|ns| ns.trim().to_owned())
        .filter(|ns| !ns.is_empty())
        .ok_or(KubeError::Namespace { flag: kind.flag() })
}

/// A configured watch on one named object; nothing is contacted until [`spawn`](Self::spawn).
pub struct KubeSource {
    kind: Kind,
    object: ObjectName,
    client: Client,
}

impl KubeSource {
    /// Reads the client configuration (`kubeconfig`, else `KUBECONFIG` / `~/.kube/config`,
    /// else in-cluster). Fails only on bad local configuration, never on an unreachable
    /// API server: that is retried once running.
    pub async fn new(kind: Kind, flag: &str, kubeconfig: Option<&Path>) -> Result<Self, KubeError> {
        let object = ObjectName::parse(kind, flag)?;
        let config = match kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path).map_err(|source| KubeError::Kubeconfig {
                    path: path.to_owned(),
                    source,
                })?;
                kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                    .await
                    .map_err(|source| KubeError::Kubeconfig {
                        path: path.to_owned(),
                        source,
                    })?
            }
            None => kube::Config::infer().await?,
        };
        Ok(Self {
            kind,
            object,
            client: Client::try_from(config)?,
        })
    }

    /// Watches the object until the returned task is dropped.
    pub fn spawn(self, reloader: Reloader) -> SourceTask {
        SourceTask::new(tokio::spawn(self.watch(reloader)))
    }

    async fn watch(self, reloader: Reloader) {
        let resource = self.kind.api_resource();
        let origin = format!(
            "{}/{}/{}",
            resource.plural, self.object.namespace, self.object.name
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.object.namespace, &resource);
        let config =
            watcher::Config::default().fields(&format!("metadata.name={}", self.object.name));
        let mut events = watcher(api, config).default_backoff().boxed();
        let mut seen = false;
        let mut failing = false;
        tracing::info!(%origin, "watching the policy object");
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => seen = false,
                Ok(Event::InitApply(object) | Event::Apply(object)) => {
                    seen = true;
                    failing = false;
                    self.apply(&reloader, &resource, &object, &origin).await;
                }
                Ok(Event::InitDone) => {
                    if failing {
                        tracing::info!(%origin, "reconnected to the Kubernetes API");
                        failing = false;
                    }
                    if !seen {
                        tracing::warn!(%origin, "policy object not found; keeping the running policy (not ready until one loads)");
                    }
                }
                Ok(Event::Delete(_)) => {
                    tracing::warn!(%origin, "policy object deleted; keeping the last good policy");
                }
                Err(error) => {
                    failing = true;
                    tracing::warn!(%origin, %error, "cannot watch the policy object; retrying with backoff");
                }
            }
        }
    }

    async fn apply(
        &self,
        reloader: &Reloader,
        resource: &ApiResource,
        object: &DynamicObject,
        origin: &str,
    ) {
        let text = policy_document(resource, object).to_string();
        if let Outcome::Invalid(errors) = reloader.offer(&text, origin) {
            let reference = object.object_ref(resource);
            if let Err(error) = self.warn(reference, &errors).await {
                tracing::warn!(%origin, %error, "cannot record the InvalidPolicy event");
            }
        }
    }

    /// Records a `Warning` / `InvalidPolicy` event (events.k8s.io/v1) on the object.
    async fn warn(&self, regarding: ObjectReference, errors: &[String]) -> kube::Result<()> {
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), &self.object.namespace);
        let event = invalid_policy_event(regarding, errors, &self.object.name);
        events
            .create(&PostParams::default(), &event)
            .await
            .map(drop)
    }
}

/// The object as a manifest the policy decoder understands: `apiVersion` and `kind`
/// (list items may lack them) and the object's body (`data` or `spec`).
fn policy_document(resource: &ApiResource, object: &DynamicObject) -> Value {
    let mut doc = match &object.data {
        Value::Object(body) => body.clone(),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Array(_) => {
            serde_json::Map::new()
        }
    };
    doc.insert("apiVersion".into(), json!(resource.api_version));
    doc.insert("kind".into(), json!(resource.kind));
    Value::Object(doc)
}

fn invalid_policy_event(regarding: ObjectReference, errors: &[String], name: &str) -> K8sEvent {
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut note = format!(
        "policy rejected, running policy kept: {}",
        errors.join("; ")
    );
    if note.len() > NOTE_LIMIT {
        let mut end = NOTE_LIMIT - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    let instance = std::env::var("POD_NAME").unwrap_or_else(|_| "switchyard".to_owned());
    K8sEvent {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some("Warning".into()),
        reason: Some("InvalidPolicy".into()),
        action: Some("Reload".into()),
        note: Some(note),
        regarding: Some(regarding),
        reporting_controller: Some("switchyard.dev/sidecar".into()),
        reporting_instance: Some(instance),
        ..K8sEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaced_names() {
        let name = ObjectName::parse(Kind::ConfigMap, "apps/llm-policy").unwrap();
        assert_eq!(name.namespace, "apps");
        assert_eq!(name.name, "llm-policy");
        for bad in ["/x", "a/", "a/b/c", "ns/"] {
            assert!(
                ObjectName::parse(Kind::RoutingPolicy, bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn long_notes_are_cut_to_the_api_limit() {
        let errors = vec!["é".repeat(2000)];
        let event = invalid_policy_event(ObjectReference::default(), &errors, "p");
        let note = event.note.unwrap();
        assert!(note.len() <= NOTE_LIMIT && note.ends_with("..."));
    }
}
