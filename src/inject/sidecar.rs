//! What the injector adds to a pod: the sidecar container, its keys volume and the
//! SDK variables of the app containers, all fixed by the injector's flags.
//!
//! Invariant: the container rendered here (ports, probes, non-root read-only filesystem,
//! keys mounted only into the sidecar) is the sidecar's contract with the pod; the Helm
//! chart's `switchyard.sidecar` template renders the same container and must be kept in
//! step.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The sidecar container's name; also how an injected pod is recognised.
pub const SIDECAR_NAME: &str = "switchyard";
/// The pod volume holding provider keys; mounted into the sidecar only.
pub const KEYS_VOLUME: &str = "switchyard-keys";
/// Where provider keys appear inside the sidecar (`apiKey: {fromFile: ...}` reads here).
pub const KEYS_PATH: &str = "/etc/switchyard/keys";
/// The sidecar's proxy port on loopback, where the app's SDKs send their calls.
pub const PROXY_PORT: u16 = 4000;
/// The sidecar's admin port: probes, metrics and state.
pub const ADMIN_PORT: u16 = 4001;
/// `OPENAI_BASE_URL` for app containers (README, "Point your SDK at it").
pub const OPENAI_BASE_URL: &str = "http://127.0.0.1:4000/v1";
/// `ANTHROPIC_BASE_URL` for app containers (README, "Point your SDK at it").
pub const ANTHROPIC_BASE_URL: &str = "http://127.0.0.1:4000";

/// How the sidecar is added to a pod.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SidecarMode {
    /// An init container with `restartPolicy: Always` (Kubernetes >= 1.29): starts before
    /// and stops after the app, and lets Jobs complete.
    Native,
    /// A regular container, for older clusters; run-to-completion pods are not injected.
    Container,
}

/// Where the sidecar reads its policy, named by the pod's `switchyard.dev/policy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// No annotation: the sidecar's embedded default policy.
    Default,
    /// `configmap/[NS/]NAME`: a ConfigMap's `policy.yaml` key.
    ConfigMap(String),
    /// `[NS/]NAME`: a RoutingPolicy resource.
    Resource(String),
}

/// Why a `switchyard.dev/policy` annotation cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("switchyard.dev/policy {0:?} is not `NAME`, `NS/NAME` or `configmap/[NS/]NAME`")]
pub struct BadPolicyRef(pub String);

impl PolicySource {
    /// Reads the annotation's value; `None` means the embedded default policy.
    pub fn parse(annotation: Option<&str>) -> Result<Self, BadPolicyRef> {
        let Some(value) = annotation else {
            return Ok(Self::Default);
        };
        let bad = || BadPolicyRef(value.to_owned());
        let (configmap, reference) = match value.strip_prefix("configmap/") {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let parts: Vec<&str> = reference.split('/').collect();
        if parts.len() > 2 || !parts.iter().all(|part| is_dns_subdomain(part)) {
            return Err(bad());
        }
        Ok(if configmap {
            Self::ConfigMap(reference.to_owned())
        } else {
            Self::Resource(reference.to_owned())
        })
    }

    fn args(&self) -> Vec<String> {
        match self {
            Self::Default => Vec::new(),
            Self::ConfigMap(name) => vec!["--policy-configmap".into(), name.clone()],
            Self::Resource(name) => vec!["--policy-resource".into(), name.clone()],
        }
    }
}

/// True for a valid Kubernetes object name (RFC 1123 subdomain).
pub fn is_dns_subdomain(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 253
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// True for a Kubernetes resource quantity such as `100m`, `64Mi` or `0.5`; checked at
/// start-up because a bad one would make the API server reject every injected pod.
pub fn is_quantity(value: &str) -> bool {
    const SUFFIXES: [&str; 13] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E",
    ];
    let number = SUFFIXES
        .iter()
        .find_map(|suffix| value.strip_suffix(suffix))
        .unwrap_or(value);
    let mut halves = number.splitn(2, '.');
    let whole = halves.next().unwrap_or_default();
    let fraction = halves.next();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
}

/// Everything the injector puts into a pod, fixed at start-up from its flags.
#[derive(Clone, Debug)]
pub struct SidecarConfig {
    /// The sidecar image, e.g. `ghcr.io/example/switchyard:0.1.0`.
    pub image: String,
    /// `imagePullPolicy` of the sidecar.
    pub image_pull_policy: String,
    /// Native sidecar or regular container.
    pub mode: SidecarMode,
    /// Resource requests (`cpu`, `memory`) of the sidecar.
    pub requests: BTreeMap<String, String>,
    /// Resource limits (`cpu`, `memory`) of the sidecar.
    pub limits: BTreeMap<String, String>,
    /// Extra environment of the sidecar, e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub env: Vec<(String, String)>,
    /// The Secret of provider keys mounted at [`KEYS_PATH`]; `None` mounts nothing.
    pub keys_secret: Option<String>,
    /// `--drain-timeout` of the sidecar, e.g. `30s`.
    pub drain_timeout: String,
    /// The numeric user the sidecar runs as (the image's non-root user).
    pub run_as_user: i64,
    /// The fleet's Redis (`--shared-state`), when the fleet shares state.
    pub shared_state: Option<String>,
    /// The Secret and key of that Redis's password.
    pub shared_state_password: Option<(String, String)>,
}

impl SidecarConfig {
    /// The sidecar container for a pod whose policy is `policy`, mounting `keys_secret`'s
    /// volume when there is one.
    pub fn container(&self, policy: &PolicySource, keys_secret: Option<&str>) -> Container {
        let mut args: Vec<String> = [
            "run",
            "--listen",
            "127.0.0.1:4000",
            "--admin",
            "0.0.0.0:4001",
            "--drain-timeout",
            &self.drain_timeout,
            "--log-format",
            "json",
        ]
        .map(String::from)
        .into();
        args.extend(policy.args());
        if let Some(url) = &self.shared_state {
            args.extend(["--shared-state".to_owned(), url.clone()]);
        }
        let mut env = vec![
            field_env("POD_NAMESPACE", "metadata.namespace"),
            field_env("POD_NAME", "metadata.name"),
        ];
        if let Some((secret, key)) = &self.shared_state_password {
            env.push(secret_env("SWITCHYARD_REDIS_PASSWORD", secret, key));
        }
        env.extend(self.env.iter().map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            ..EnvVar::default()
        }));
        Container {
            name: SIDECAR_NAME.into(),
            image: Some(self.image.clone()),
            image_pull_policy: Some(self.image_pull_policy.clone()),
            args: Some(args),
            env: Some(env),
            ports: Some(vec![ContainerPort {
                name: Some("switchyard".into()),
                container_port: ADMIN_PORT.into(),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            liveness_probe: Some(probe("/healthz", 10, 3)),
            readiness_probe: Some(probe("/readyz", 5, 3)),
            startup_probe: Some(probe("/readyz", 2, 60)),
            resources: Some(ResourceRequirements {
                requests: quantities(&self.requests),
                limits: quantities(&self.limits),
                ..ResourceRequirements::default()
            }),
            security_context: Some(self.security_context()),
            volume_mounts: keys_secret.map(|_| {
                vec![VolumeMount {
                    name: KEYS_VOLUME.into(),
                    mount_path: KEYS_PATH.into(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                }]
            }),
            restart_policy: (self.mode == SidecarMode::Native).then(|| "Always".into()),
            ..Container::default()
        }
    }

    fn security_context(&self) -> SecurityContext {
        SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(self.run_as_user),
            run_as_group: Some(self.run_as_user),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..SecurityContext::default()
        }
    }
}

/// The pod volume of provider keys. Optional, so a pod still starts before its Secret
/// exists; the sidecar then reports the missing key file itself.
pub fn keys_volume(secret: &str) -> Volume {
    Volume {
        name: KEYS_VOLUME.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            optional: Some(true),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(ADMIN_PORT.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

fn quantities(values: &BTreeMap<String, String>) -> Option<BTreeMap<String, Quantity>> {
    (!values.is_empty()).then(|| {
        values
            .iter()
            .map(|(name, value)| (name.clone(), Quantity(value.clone())))
            .collect()
    })
}
