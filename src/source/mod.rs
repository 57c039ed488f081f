//! Live policy sources (`docs/live-policy.md`): a watched file, a ConfigMap or a
//! RoutingPolicy. Every new text goes through decode → validate → swap in
//! [`Reloader::offer`]; invariant: the running policy is only ever replaced by one that
//! passed [`decode_and_validate`], so a broken edit can never displace a good policy.

mod diff;
pub mod file;
pub mod keys;
pub mod kube;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::policy::{decode_and_validate, embedded_default, FieldError};
use crate::shared::Shared;

use self::file::{FileError, FileSource};
pub use self::kube::Kind;
use self::kube::{KubeError, KubeSource};

/// Why the policy source could not start: bad local configuration (exit 64).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The policy file is unreadable, unwatchable or invalid.
    #[error(transparent)]
    File(#[from] FileError),
    /// The Kubernetes source is misconfigured.
    #[error(transparent)]
    Kube(#[from] KubeError),
}

/// The policy source the flags chose, opened but not yet following changes.
pub struct Opened {
    reloader: Reloader,
    source: Option<Watched>,
}

enum Watched {
    File(FileSource),
    Kube(KubeSource),
}

/// Where the policy comes from (at most one source). The CLI builds it from
/// its flags; this module knows nothing of the CLI.
#[derive(Debug, Clone)]
pub enum Settings {
    /// No source named: the embedded default policy.
    Embedded,
    /// A local file (a mounted ConfigMap, or local use), watched for changes.
    File(PathBuf),
    /// A ConfigMap or RoutingPolicy `[NS/]NAME`, watched through the Kubernetes API.
    Kube {
        /// Which kind of object.
        kind: Kind,
        /// `[NS/]NAME` as given.
        name: String,
        /// Client configuration; in-cluster when `None`.
        kubeconfig: Option<PathBuf>,
    },
}

/// Opens the source `settings` name. A file is loaded now, so an invalid one fails
/// start-up; with no source the embedded default is installed; a Kubernetes source
/// loads once running, and until then the sidecar is not ready.
pub async fn open(settings: &Settings, shared: Arc<Shared>) -> Result<Opened, SourceError> {
    let reloader = Reloader::new(shared);
    let source = match settings {
        Settings::File(path) => Some(Watched::File(FileSource::open(path, &reloader)?)),
        Settings::Kube {
            kind,
            name,
            kubeconfig,
        } => Some(Watched::Kube(
            KubeSource::new(*kind, name, kubeconfig.as_deref()).await?,
        )),
        Settings::Embedded => {
            reloader.shared.install(embedded_default());
            None
        }
    };
    Ok(Opened { reloader, source })
}

impl Opened {
    /// Starts following changes; the task stops when the returned guard is dropped.
    pub fn spawn(self) -> Option<SourceTask> {
        match self.source? {
            Watched::File(file) => Some(file.spawn(self.reloader)),
            Watched::Kube(kube) => Some(kube.spawn(self.reloader)),
        }
    }
}

/// What a new policy text did to the running policy.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Valid and different: swapped in as this generation.
    Installed(u64),
    /// Valid but the same as the running policy, or the same text seen last time.
    Unchanged,
    /// Rejected: the running policy stays.
    Invalid(Vec<String>),
}

/// Applies policy texts from one source to the shared state.
pub struct Reloader {
    shared: Arc<Shared>,
    /// The last text offered, so a resync or a no-op file event changes nothing and
    /// counts nothing.
    last_text: Mutex<Option<String>>,
}

impl Reloader {
    /// A reloader that installs into `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            last_text: Mutex::new(None),
        }
    }

    /// Decodes, validates and (when valid and new) swaps in `text`. `origin` names the
    /// source in logs. Invalid text is logged with every field path and counted as
    /// `switchyard_policy_reloads_total{result="invalid"}`.
    pub fn offer(&self, text: &str, origin: &str) -> Outcome {
        {
            let mut last = self
                .last_text
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.as_deref() == Some(text) {
                return Outcome::Unchanged;
            }
            *last = Some(text.to_owned());
        }
        match decode_and_validate(text) {
            Ok(spec) => {
                let old = self.shared.policy();
                if old.as_ref().is_some_and(|policy| policy.spec == spec) {
                    tracing::debug!(origin, "policy unchanged");
                    return Outcome::Unchanged;
                }
                let summary = diff::summary(old.as_ref().map(|policy| &policy.spec), &spec);
                let generation = self.shared.install(spec);
                tracing::info!(origin, generation, changes = %summary, "policy loaded");
                Outcome::Installed(generation)
            }
            Err(errors) => {
                self.shared.record_reload("invalid");
                let errors = render(&errors);
                for error in &errors {
                    tracing::error!(origin, %error, "invalid policy rejected; keeping the running policy");
                }
                Outcome::Invalid(errors)
            }
        }
    }
}

fn render(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// Aborts a source task when the sidecar that owns it goes away.
pub struct SourceTask(tokio::task::JoinHandle<()>);

impl SourceTask {
    /// Owns `handle`.
    pub fn new(handle: tokio::task::JoinHandle<()>) -> Self {
        Self(handle)
    }
}

impl Drop for SourceTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
providers:
  - {name: a, api: openai, baseUrl: "http://127.0.0.1:1/v1", auth: {apiKey: {fromEnv: K}}}
routes:
  - {model: m, targets: [{provider: a}]}
"#;

    fn reloader() -> Reloader {
        Reloader::new(Arc::new(Shared::new(
            1024,
            std::time::Duration::from_secs(30),
        )))
    }

    #[test]
    fn a_valid_policy_is_installed_once() {
        let reloader = reloader();
        assert_eq!(reloader.offer(GOOD, "test"), Outcome::Installed(1));
        assert_eq!(reloader.offer(GOOD, "test"), Outcome::Unchanged);
        let reformatted = format!("# the same policy\n{GOOD}");
        assert_eq!(reloader.offer(&reformatted, "test"), Outcome::Unchanged);
        assert!(reloader.shared.is_ready());
    }

    #[test]
    fn an_invalid_policy_never_replaces_a_good_one() {
        let reloader = reloader();
        reloader.offer(GOOD, "test");
        let broken = GOOD.replace("provider: a", "provider: b");
        let Outcome::Invalid(errors) = reloader.offer(&broken, "test") else {
            panic!("accepted a route to a missing provider");
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("routes[0].targets[0].provider:"),
            "{errors:?}"
        );
        let running = reloader.shared.policy().expect("still loaded");
        assert_eq!(running.generation, 1);
        assert_eq!(
            reloader.offer(GOOD, "test"),
            Outcome::Unchanged,
            "reverting is a no-op"
        );
    }

    #[test]
    fn nothing_is_ready_before_a_good_policy() {
        let reloader = reloader();
        assert!(matches!(
            reloader.offer("routes: []", "test"),
            Outcome::Invalid(_)
        ));
        assert!(!reloader.shared.is_ready());
    }
}
