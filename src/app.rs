//! Wires the sidecar together: loads the policy (bad config fails before any port is
//! bound), binds the proxy and admin listeners, and drains on shutdown. [`start`] returns
//! the bound addresses and a handle, so tests and the demo run the real thing in-process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::exit::BadConfig;
use crate::fleet::{self, Fleet};
use crate::probe::{self, Prober};
use crate::provider::google::GoogleEnv;
use crate::shared::Shared;
use crate::source::{self, SourceTask};
use crate::upstream::egress::Egress;
use crate::{admin, proxy, server};

/// Flags of `switchyard run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Proxy listener: the app's LLM calls.
    #[arg(long, default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// Admin listener: probes, metrics, state, drills.
    #[arg(long, default_value = "0.0.0.0:4001")]
    pub admin: SocketAddr,
    /// Policy from a file (a mounted ConfigMap, or local use).
    #[arg(long, group = "source")]
    pub policy_file: Option<PathBuf>,
    /// Policy from a ConfigMap via the Kubernetes API: `[NS/]NAME`, key `policy.yaml`.
    #[arg(long, group = "source")]
    pub policy_configmap: Option<String>,
    /// Policy from a RoutingPolicy resource: `[NS/]NAME`.
    #[arg(long, group = "source")]
    pub policy_resource: Option<String>,
    /// Kubernetes client configuration for the two sources above; in-cluster if unset.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// How long in-flight requests (streams included) may finish after SIGTERM.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
    /// Largest request body accepted and replayed on failover.
    #[arg(long, default_value_t = 32 << 20)]
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's head, and then its body, on both
    /// listeners: a stalled client is answered 408 (body) or closed (head) instead of
    /// holding a connection for ever.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_read_timeout: Duration,
    /// How often provider keys and TLS files kept in files (`apiKey.fromFile`,
    /// `tls.caFile` / `clientCert` / `clientKey`, mounted Secrets) are read again, so a
    /// rotated key or certificate is used without a restart.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub key_refresh_interval: Duration,
    /// Egress proxy rules for upstream calls, from `https_proxy` / `http_proxy` /
    /// `no_proxy` (and upper-case forms) at start-up; tests inject their own.
    #[arg(skip = Arc::new(Egress::from_env()))]
    pub egress: Arc<Egress>,
    /// Where Google credentials are found (`GOOGLE_APPLICATION_CREDENTIALS`,
    /// `GCE_METADATA_HOST`), read at start-up; tests inject their own.
    #[arg(skip = GoogleEnv::from_env())]
    pub google: GoogleEnv,
    /// The `AWS_*` variables Bedrock credentials come from (DESIGN §3), taken at
    /// start-up; tests inject their own.
    #[arg(skip = crate::aws::Env::from_process())]
    pub aws_env: crate::aws::Env,
    /// Share 429 cooldowns and breaker-open hints with the other pods through Redis or
    /// Valkey: `redis://HOST:PORT[/DB]` or `rediss://...`. Off unless set.
    #[arg(long, value_name = "URL")]
    pub shared_state: Option<String>,
    /// Password of the shared-state Redis.
    #[arg(
        long,
        env = "SWITCHYARD_REDIS_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub redis_password: Option<String>,
}

impl RunArgs {
    /// Defaults with both listeners on free loopback ports (tests and the demo).
    pub fn loopback(policy_file: Option<PathBuf>) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        RunArgs {
            listen: any,
            admin: any,
            policy_file,
            policy_configmap: None,
            policy_resource: None,
            kubeconfig: None,
            drain_timeout: Duration::from_secs(30),
            max_body_bytes: 32 << 20,
            request_read_timeout: Duration::from_secs(30),
            key_refresh_interval: Duration::from_secs(10),
            egress: Arc::new(Egress::default()),
            google: GoogleEnv::default(),
            aws_env: crate::aws::Env::default(),
            shared_state: None,
            redis_password: None,
        }
    }

    /// The policy source the flags name (clap lets at most one through).
    pub fn source(&self) -> source::Settings {
        let kube = |kind, name: &String| source::Settings::Kube {
            kind,
            name: name.clone(),
            kubeconfig: self.kubeconfig.clone(),
        };
        if let Some(path) = &self.policy_file {
            source::Settings::File(path.clone())
        } else if let Some(name) = &self.policy_configmap {
            kube(source::Kind::ConfigMap, name)
        } else if let Some(name) = &self.policy_resource {
            kube(source::Kind::RoutingPolicy, name)
        } else {
            source::Settings::Embedded
        }
    }
}

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The policy or flags are wrong: exit 64, nothing bound.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running sidecar.
pub struct Running {
    /// Where the proxy listens.
    pub proxy_addr: SocketAddr,
    /// Where the admin port listens.
    pub admin_addr: SocketAddr,
    /// Shared state (policy, metrics).
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<bool>>,
    _source: Option<SourceTask>,
    _keys: SourceTask,
    _prober: Prober,
    _fleet: Option<Fleet>,
}

impl Running {
    /// Starts the drain: readiness turns false, listeners stop accepting, in-flight
    /// requests get up to the drain timeout.
    pub fn shutdown(&self) {
        self.shared.start_draining();
        let _ = self.stop.send(true);
    }

    /// Waits for both listeners to finish draining; true when nothing was cut short.
    pub async fn wait(self) -> bool {
        let mut clean = true;
        for task in self.tasks {
            clean &= task.await.unwrap_or(false);
        }
        clean
    }
}

/// Opens the policy source (a bad file policy fails here, before any port is bound),
/// binds both listeners and starts serving. A Kubernetes source loads in the background:
/// `/readyz` is 503 until its first good policy.
pub async fn start(args: &RunArgs) -> Result<Running, StartError> {
    if !args.egress.problems().is_empty() {
        return Err(StartError::Config(args.egress.problems().to_vec()));
    }
    let mut shared = Shared::new(args.max_body_bytes, args.request_read_timeout)
        .with_egress(Arc::clone(&args.egress))
        .with_google(args.google.clone())
        .with_aws_env(args.aws_env.clone());
    if args.shared_state.is_some() {
        shared = shared.with_shared_state();
    }
    let shared = Arc::new(shared);
    let fleet = match &args.shared_state {
        Some(url) => Some(
            fleet::spawn(Arc::clone(&shared), url, args.redis_password.clone())
                .map_err(|e| StartError::Config(vec![e.to_string()]))?,
        ),
        None => None,
    };
    let source = source::open(&args.source(), Arc::clone(&shared))
        .await
        .map_err(|e| StartError::Config(vec![e.to_string()]))?;
    let proxy_listener = bind(args.listen).await?;
    let admin_listener = bind(args.admin).await?;
    let proxy_addr = proxy_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: args.listen,
            source,
        })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: args.admin,
            source,
        })?;
    let source = source.spawn();
    let keys = source::keys::spawn(Arc::clone(&shared), args.key_refresh_interval);
    let prober = probe::spawn(Arc::clone(&shared));
    match shared.policy() {
        Some(policy) => {
            tracing::info!(%proxy_addr, %admin_addr, generation = policy.generation, "switchyard is serving");
        }
        None => {
            tracing::info!(%proxy_addr, %admin_addr, "switchyard is serving; not ready until the first policy loads");
        }
    }

    let (stop, stopped) = watch::channel(false);
    let (admin_stop, admin_stopped) = watch::channel(false);
    let wait_for_stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let proxy_shared = Arc::clone(&shared);
    let drain = args.drain_timeout;
    let proxy = server::serve(
        proxy_listener,
        move |req, _peer| proxy::handle(Arc::clone(&proxy_shared), req),
        wait_for_stop(stopped),
        drain,
        args.request_read_timeout,
    );
    // The admin port outlives the proxy's drain so probes see readiness turn false.
    let proxy_task = tokio::spawn(async move {
        let drained = proxy.await;
        let _ = admin_stop.send(true);
        drained
    });
    let admin_shared = Arc::clone(&shared);
    let admin_task = tokio::spawn(server::serve(
        admin_listener,
        move |req, peer| admin::handle(Arc::clone(&admin_shared), req, peer),
        wait_for_stop(admin_stopped),
        Duration::from_secs(1),
        args.request_read_timeout,
    ));
    Ok(Running {
        proxy_addr,
        admin_addr,
        shared,
        stop,
        tasks: vec![proxy_task, admin_task],
        _source: source,
        _keys: keys,
        _prober: prober,
        _fleet: fleet,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// `switchyard run`: serves until SIGTERM or Ctrl-C, then drains.
pub async fn run(args: RunArgs) -> anyhow::Result<std::process::ExitCode> {
    let running = match start(&args).await {
        Ok(running) => running,
        Err(err @ StartError::Config(_)) => return Err(BadConfig::new(err).into()),
        Err(err) => return Err(err.into()),
    };
    shutdown_signal().await;
    tracing::info!(drain_timeout = ?args.drain_timeout, "shutting down: draining in-flight requests");
    running.shutdown();
    if running.wait().await {
        tracing::info!("drained; exiting");
    } else {
        tracing::warn!("drain timeout reached; exiting with requests still open");
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler succeeds on unix");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
