//! State shared by the proxy, the admin port and the policy sources: the running policy
//! (swapped atomically), target state that survives reloads, pools and metrics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use crate::metrics::{Metrics, ReloadLabels};
use crate::policy::spec::PolicySpec;
use crate::provider::google::{GoogleCredentials, GoogleEnv};
use crate::routing::{CompileContext, Policy};
use crate::target::Registry;
use crate::upstream::egress::Egress;
use crate::upstream::Upstreams;

/// Everything the listeners and policy sources share.
pub struct Shared {
    policy: ArcSwapOption<Policy>,
    registry: Registry,
    upstreams: Upstreams,
    google: GoogleCredentials,
    aws: crate::aws::Chain,
    /// Metric families.
    pub metrics: Metrics,
    draining: AtomicBool,
    generation: AtomicU64,
    /// Largest request body accepted (and replayed on failover).
    pub body_limit: usize,
    /// Longest a client may take to send a request body.
    pub body_read_timeout: Duration,
    installing: Mutex<()>,
}

impl Shared {
    /// Fresh state with no policy loaded yet (not ready).
    pub fn new(body_limit: usize, body_read_timeout: Duration) -> Self {
        Self {
            policy: ArcSwapOption::empty(),
            registry: Registry::default(),
            upstreams: Upstreams::default(),
            google: GoogleCredentials::new(GoogleEnv::default()),
            aws: crate::aws::Chain::default(),
            metrics: Metrics::new(),
            draining: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            body_limit,
            body_read_timeout,
            installing: Mutex::new(()),
        }
    }

    /// The same state with upstream pools that follow these egress proxy rules.
    /// Exports the fleet-shared state's metrics (`--shared-state`).
    pub fn with_shared_state(mut self) -> Self {
        self.metrics.enable_shared_state();
        self
    }

    /// Sends upstream traffic through the egress proxies the environment names.
    pub fn with_egress(mut self, egress: Arc<Egress>) -> Self {
        self.upstreams = Upstreams::new(egress);
        self
    }

    /// Woken when a target starts a cooldown or opens its breaker (fleet sync).
    pub fn target_news(&self) -> Arc<tokio::sync::Notify> {
        self.registry.news()
    }

    /// Finds Google credentials where `env` says (`GOOGLE_APPLICATION_CREDENTIALS`,
    /// `GCE_METADATA_HOST`), for Vertex AI providers.
    pub fn with_google(mut self, env: GoogleEnv) -> Self {
        self.google = GoogleCredentials::new(env);
        self
    }

    /// Reads AWS credentials (Bedrock `auth.aws`) from this environment.
    pub fn with_aws_env(mut self, env: crate::aws::Env) -> Self {
        self.aws = crate::aws::Chain::new(env);
        self
    }

    /// The running policy, if one has loaded. Each request takes one snapshot.
    pub fn policy(&self) -> Option<Arc<Policy>> {
        self.policy.load_full()
    }

    /// Compiles a validated spec and swaps it in; requests in flight keep their snapshot.
    /// Returns the new generation.
    pub fn install(&self, spec: PolicySpec) -> u64 {
        let _installing = self
            .installing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.install_locked(spec)
    }

    /// Compiles `current`'s own spec again (re-reading key files) and swaps it in, unless
    /// another policy replaced `current` meanwhile. Breakers, cooldowns and pools carry
    /// over as on any reload.
    pub fn recompile(&self, current: &Arc<Policy>) -> Option<u64> {
        let _installing = self
            .installing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let running = self.policy.load_full()?;
        Arc::ptr_eq(&running, current).then(|| self.install_locked(current.spec.clone()))
    }

    /// Installs hold `installing`, so a compile (which reconfigures shared target state)
    /// never interleaves with another.
    fn install_locked(&self, spec: PolicySpec) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let ctx = CompileContext {
            registry: &self.registry,
            upstreams: &self.upstreams,
            metrics: &self.metrics,
            google: &self.google,
            aws: &self.aws,
        };
        let policy = Policy::compile(spec, generation, &ctx);
        for state in policy.target_states() {
            state
                .metrics
                .breaker_state
                .set(state.state().metric_value());
        }
        let labels = |p: &Policy| -> Vec<(String, String)> {
            p.target_states()
                .iter()
                .map(|s| (s.key.provider.clone(), s.key.model.clone()))
                .collect()
        };
        let current = labels(&policy);
        if let Some(previous) = self.policy.swap(Some(Arc::new(policy))) {
            // Targets that left the policy stop exporting a breaker state.
            for (provider, model) in labels(&previous)
                .into_iter()
                .filter(|l| !current.contains(l))
            {
                self.metrics.remove_target(&provider, &model);
            }
        }
        self.metrics.generation.set(generation as i64);
        self.record_reload("ok");
        generation
    }

    /// Counts a policy load attempt by result (`ok` or `invalid`).
    pub fn record_reload(&self, result: &str) {
        self.metrics
            .reloads
            .get_or_create(&ReloadLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Ready: a policy is loaded and the process is not draining.
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire) && self.policy.load().is_some()
    }

    /// Marks the start of the drain: readiness turns false.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}
