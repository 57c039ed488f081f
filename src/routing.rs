//! The compiled policy: what the proxy reads on every request. A layer above the policy
//! as written (`crate::policy`), live target state (`crate::target`) and the outbound
//! client (`crate::upstream`), whose pools each provider gets its client from. Built from
//! a validated [`PolicySpec`] once per load; each request takes one `Arc<Policy>` snapshot and uses it
//! to the end, so a reload never changes a request mid-flight.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use tokio::time::Instant;

use crate::breaker::BreakerConfig;
use crate::budget::RetryBudget;
use crate::classify::CooldownLimits;
use crate::hedge::{Hedge, HedgeAfter};
use crate::limits::LimitsConfig;
use crate::log_limit;
use crate::metrics::{Metrics, RouteMetrics};
use crate::policy::request::RequestSpec;
use crate::policy::spec::{
    ApiKind, BreakerSpec, DurationStr, KeySource, PolicySpec, PriceSpec, Strategy, Wire,
};
use crate::provider;
use crate::provider::google::{
    self, CredentialError, Fetch, FetchFuture, GoogleAuth, GoogleCredentials,
};
use crate::target::{Registry, TargetKey, TargetState};
use crate::upstream::tls::{TlsFileError, TlsMaterial};
use crate::upstream::{Client, Upstreams};

const DEFAULT_CONNECT: Duration = Duration::from_secs(2);
/// The longest a credential exchange (metadata server, token endpoint) may take.
const CREDENTIAL_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(600);
/// `hedge.maxRatio` when left out: hedging costs at most 5% more upstream calls.
const DEFAULT_HEDGE_RATIO: f64 = 0.05;

/// A validated policy ready to serve.
pub struct Policy {
    /// The document it was compiled from (shown by `GET /policy`; holds key sources only).
    pub spec: PolicySpec,
    /// Increases by one on every successful load.
    pub generation: u64,
    /// Routes in policy order.
    pub routes: Vec<Route>,
    /// 429 cooldown bounds.
    pub cooldowns: CooldownLimits,
    /// Bound on failover load.
    pub retry_budget: RetryBudget,
    /// Whether spans may carry prompt and completion text.
    pub capture_content: bool,
}

/// One upstream API endpoint.
pub struct Provider {
    /// Unique name.
    pub name: String,
    /// Wire dialect.
    pub api: ApiKind,
    /// Base URL as written.
    pub base_url: String,
    /// `host[:port]` of the base URL, for `server.address`.
    pub server_address: String,
    /// Credentials.
    pub auth: Auth,
    /// Extra headers.
    pub headers: HeaderMap,
    /// Per-attempt timeouts.
    pub timeouts: Timeouts,
    /// In-flight cap per target (0 = none).
    pub max_concurrency: u32,
    /// Azure `api-version`.
    pub api_version: Option<String>,
    /// Vertex AI's project and region (both set for `vertex`, neither otherwise).
    pub vertex: Option<(String, String)>,
    /// Bedrock's region: where it is and what it is signed for.
    pub region: Option<String>,
    /// The protocols it serves natively (`wires`, or its kind's defaults).
    pub wires: Vec<Wire>,
    /// The pooled client for this provider's connect timeout and TLS identity, or why
    /// its TLS files give none (the target is then skipped as `config`).
    pub client: Result<Client, TlsFileError>,
    /// What the `tls` files held at compile time, to notice a rotation.
    pub tls: Option<TlsMaterial>,
}

/// Per-attempt time limits. Only `connect` has a default: a healthy model may think for
/// minutes before its first byte or pause between events, so the other two cut only when
/// the policy asks (DESIGN §4 "Real model timing").
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Connect.
    pub connect: Duration,
    /// Response headers; for streams, first content.
    pub first_byte: Option<Duration>,
    /// Longest gap between chunks.
    pub idle: Option<Duration>,
}

/// How requests to a provider are authenticated.
pub enum Auth {
    /// The sidecar's key (marked sensitive so it never prints).
    Key(HeaderValue),
    /// Forward the app's own key, only when the call came in in this provider's dialect.
    Passthrough,
    /// The key source was empty; requests go without a key and the provider's 401 is
    /// passed back (and logged once).
    Missing,
    /// Google access tokens (Vertex AI), fetched and renewed off the request path.
    Google(Arc<GoogleAuth>),
    /// SigV4 with the process's AWS credential chain (Bedrock `auth.aws`).
    Aws(Arc<crate::aws::Credentials>),
}

impl Auth {
    /// Sets the provider's auth header.
    pub fn apply(
        &self,
        api: ApiKind,
        inbound_dialect: ApiKind,
        inbound: &HeaderMap,
        out: &mut HeaderMap,
    ) {
        let header_name = HeaderName::from_static(provider::of(api).key_header.0);
        match self {
            Auth::Key(value) => {
                out.insert(header_name, value.clone());
            }
            Auth::Passthrough if api.dialect() == inbound_dialect => {
                if let Some(value) = inbound.get(&header_name) {
                    out.insert(header_name, value.clone());
                }
            }
            Auth::Google(google) => {
                if let Some(token) = google.header() {
                    out.insert(AUTHORIZATION, token);
                }
            }
            // Signed last, over the whole request (`proxy::attempt`).
            Auth::Passthrough | Auth::Missing | Auth::Aws(_) => {}
        }
    }

    /// Makes sure a credential that is fetched (a Google token) is at hand before a
    /// request is built; keys and passthrough need nothing.
    pub async fn ready(&self) -> Result<(), CredentialError> {
        match self {
            Auth::Google(google) => google.ready().await,
            // AWS credentials are waited for when the request is signed (`seal`).
            Auth::Key(_) | Auth::Passthrough | Auth::Missing | Auth::Aws(_) => Ok(()),
        }
    }

    /// A 401 answered `sent`: renew a fetched credential and say whether the call is worth
    /// one more try (DESIGN §3: a Vertex 401 triggers one refresh and one retry).
    pub async fn rejected(&self, sent: Option<&HeaderValue>) -> bool {
        match self {
            Auth::Google(google) => google.rejected(sent).await.is_ok(),
            Auth::Key(_) | Auth::Passthrough | Auth::Missing | Auth::Aws(_) => false,
        }
    }
}

/// The routing of one requested model.
pub struct Route {
    /// The model name apps send (`*` for the catch-all).
    pub model: String,
    /// Only for calls in this dialect, when set.
    pub inbound: Option<ApiKind>,
    /// Target ordering.
    pub strategy: Strategy,
    /// Targets in priority order.
    pub targets: Vec<Target>,
    /// Targets tried per request.
    pub max_attempts: usize,
    /// Total deadline.
    pub timeout: Duration,
    /// `max_tokens` default for targets that require one.
    pub max_tokens: Option<u32>,
    /// Hedging, when the route asks for it.
    pub hedge: Option<Hedge>,
    /// How long a call whose targets are all excluded may wait for the soonest.
    pub max_wait: Duration,
    /// Metric handles.
    pub metrics: RouteMetrics,
}

/// One provider + model of a route.
pub struct Target {
    /// The provider.
    pub provider: Arc<Provider>,
    /// Model to send; the requested one when `None`.
    pub model: Option<String>,
    /// Share for `weighted`.
    pub weight: u32,
    /// Prices for `cost`, `balanced` and cost metrics.
    pub price: Option<PriceSpec>,
    /// Active probe interval, when probed (never for a target without its own model:
    /// there is no model to probe).
    pub probe: Option<Duration>,
    /// Live state shared across reloads.
    pub state: Arc<TargetState>,
    /// This target's adaptation of generation calls; `None` sends the app's bytes.
    pub request: Option<Arc<RequestSpec>>,
}

impl Target {
    /// The model this target sends for a request of `requested`.
    pub fn model_for<'a>(&'a self, requested: &'a str) -> &'a str {
        self.model.as_deref().unwrap_or(requested)
    }

    /// Input and output prices in USD per million tokens, for the cost metric.
    pub fn per_mtok(&self) -> Option<(f64, f64)> {
        self.price
            .as_ref()
            .map(|p| (p.input_per_mtok, p.output_per_mtok))
    }

    /// `provider/model`, for failover labels and logs.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider.name, self.state.key.model)
    }
}

/// Everything compilation needs from the running process.
pub struct CompileContext<'a> {
    /// Target states that survive reloads.
    pub registry: &'a Registry,
    /// Shared connection pools.
    pub upstreams: &'a Upstreams,
    /// Metric families.
    pub metrics: &'a Metrics,
    /// The process's Google credentials (Vertex AI).
    pub google: &'a GoogleCredentials,
    /// The AWS credential chain Bedrock providers with `auth.aws` share.
    pub aws: &'a crate::aws::Chain,
}

impl Policy {
    /// Compiles a spec that `validate` accepted. Durations and references are assumed
    /// valid; anything unparsable falls back to its default rather than failing.
    pub fn compile(spec: PolicySpec, generation: u64, ctx: &CompileContext<'_>) -> Policy {
        let now = Instant::now();
        let providers: Vec<Arc<Provider>> = spec
            .providers
            .iter()
            .map(|p| Arc::new(compile_provider(p, ctx)))
            .collect();
        let routes = spec
            .routes
            .iter()
            .map(|route| {
                let targets: Vec<Target> = route
                    .targets
                    .iter()
                    .filter_map(|t| {
                        let provider = providers.iter().find(|p| p.name == t.provider)?.clone();
                        let key = TargetKey {
                            provider: provider.name.clone(),
                            base_url: provider.base_url.clone(),
                            model: t.model.clone().unwrap_or_else(|| "*".to_owned()),
                        };
                        let probe = t
                            .probe
                            .as_ref()
                            .or(provider_spec_probe(&spec.providers, &t.provider))
                            .and_then(|p| p.interval.parse().ok())
                            .filter(|_| t.model.is_some());
                        let mut config =
                            breaker_config(&spec.circuit_breaker, t.circuit_breaker.as_ref());
                        config.active_probes = probe.is_some();
                        let limits = spec
                            .providers
                            .iter()
                            .find(|p| p.name == t.provider)
                            .and_then(|p| p.limits.as_ref())
                            .map_or_else(LimitsConfig::default, |l| LimitsConfig {
                                requests_per_minute: l.requests_per_minute,
                                tokens_per_minute: l.tokens_per_minute,
                            });
                        let state = ctx.registry.get_or_create(key, config, ctx.metrics, now);
                        state.limits.configure(limits);
                        Some(Target {
                            provider,
                            model: t.model.clone(),
                            weight: t.weight.unwrap_or(1),
                            price: t.price.clone(),
                            probe,
                            state,
                            request: t.request.clone().map(Arc::new),
                        })
                    })
                    .collect();
                let labels = targets.iter().map(Target::label).collect();
                Route {
                    metrics: ctx.metrics.route(&route.model, labels),
                    model: route.model.clone(),
                    inbound: route.inbound.map(ApiKind::dialect),
                    strategy: route.strategy,
                    max_attempts: route
                        .max_attempts
                        .map_or(targets.len(), |n| n as usize)
                        .max(1),
                    targets,
                    timeout: duration_or(route.timeout.as_ref(), DEFAULT_ROUTE_TIMEOUT),
                    max_tokens: route.max_tokens,
                    hedge: route.hedge.as_ref().map(|h| {
                        let after = match h.after.trim() {
                            "auto" => HedgeAfter::Auto,
                            fixed => humantime::parse_duration(fixed)
                                .map_or(HedgeAfter::Auto, HedgeAfter::Fixed),
                        };
                        Hedge::new(after, h.max_ratio.unwrap_or(DEFAULT_HEDGE_RATIO), now)
                    }),
                    max_wait: duration_or(route.max_wait.as_ref(), Duration::ZERO),
                }
            })
            .collect();
        let cooldowns = CooldownLimits {
            default: duration_or(
                spec.rate_limit.default_cooldown.as_ref(),
                CooldownLimits::default().default,
            ),
            max: duration_or(
                spec.rate_limit.max_cooldown.as_ref(),
                CooldownLimits::default().max,
            ),
        };
        let retry_budget = RetryBudget::new(
            spec.retry_budget.ratio.unwrap_or(0.2),
            spec.retry_budget.min_per_second.unwrap_or(10.0),
            now,
        );
        Policy {
            capture_content: spec.telemetry.capture_content,
            spec,
            generation,
            routes,
            cooldowns,
            retry_budget,
        }
    }

    /// The route for a requested model: an exact match for this dialect, else `*`.
    pub fn route_index(&self, dialect: ApiKind, model: &str) -> Option<usize> {
        let serves = |r: &Route| r.inbound.is_none_or(|k| k == dialect);
        let find = |name: &str| {
            self.routes
                .iter()
                .position(|r| serves(r) && r.model == name)
        };
        find(model).or_else(|| find("*"))
    }

    /// Every distinct target state in the policy, for `/breakers` and drills.
    pub fn target_states(&self) -> Vec<Arc<TargetState>> {
        let mut out: Vec<Arc<TargetState>> = Vec::new();
        for target in self.routes.iter().flat_map(|r| &r.targets) {
            if !out.iter().any(|s| Arc::ptr_eq(s, &target.state)) {
                out.push(Arc::clone(&target.state));
            }
        }
        out
    }

    /// Providers whose `apiKey.fromFile` or `tls` files now read differently from what
    /// was compiled in: a rotated Secret. Reads a few small files; call it off the
    /// request path.
    pub fn stale_key_files(&self) -> Vec<String> {
        let mut stale = self.stale_api_keys();
        for spec in &self.spec.providers {
            let (Some(tls), Some(provider)) = (&spec.tls, self.provider(&spec.name)) else {
                continue;
            };
            if provider.tls.as_ref() != Some(&TlsMaterial::read(tls)) && !stale.contains(&spec.name)
            {
                stale.push(spec.name.clone());
            }
        }
        stale
    }

    fn stale_api_keys(&self) -> Vec<String> {
        self.spec
            .providers
            .iter()
            .filter(|spec| spec.auth.passthrough != Some(true))
            .filter_map(|spec| {
                let source = spec.auth.api_key.as_ref()?;
                let path = source
                    .from_file
                    .as_ref()
                    .filter(|_| source.from_env.is_none())?;
                let provider = self.provider(&spec.name)?;
                let now = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|key| key_header(spec.api, &key));
                let same = match (&provider.auth, &now) {
                    (Auth::Key(compiled), Some(now)) => compiled.as_bytes() == now.as_bytes(),
                    (Auth::Missing, None) => true,
                    _ => false,
                };
                (!same).then(|| spec.name.clone())
            })
            .collect()
    }

    fn provider(&self, name: &str) -> Option<&Provider> {
        self.routes
            .iter()
            .flat_map(|route| &route.targets)
            .map(|target| &*target.provider)
            .find(|provider| provider.name == name)
    }

    /// The route names `GET /v1/models` lists.
    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        self.routes
            .iter()
            .map(|r| r.model.as_str())
            .filter(|m| *m != "*")
    }
}

fn compile_provider(
    spec: &crate::policy::spec::ProviderSpec,
    ctx: &CompileContext<'_>,
) -> Provider {
    let upstreams: &Upstreams = ctx.upstreams;
    let base_url = spec.effective_base_url();
    let timeouts = Timeouts {
        connect: duration_or(spec.timeouts.connect.as_ref(), DEFAULT_CONNECT),
        first_byte: optional_duration(spec.timeouts.first_byte.as_ref()),
        idle: optional_duration(spec.timeouts.idle.as_ref()),
    };
    let auth = match (
        &spec.auth.api_key,
        spec.auth.passthrough,
        &spec.auth.google,
        &spec.auth.aws,
    ) {
        (_, Some(true), _, _) => Auth::Passthrough,
        (Some(source), _, _, _) => resolve_key(&spec.name, spec.api, source),
        (None, _, Some(_), _) => Auth::Google(ctx.google.auth(|| credential_fetch(upstreams))),
        (None, _, None, Some(_)) => {
            let connect = timeouts.connect;
            Auth::Aws(ctx.aws.credentials(|| {
                let client = upstreams
                    .client(connect, None)
                    .expect("a client without TLS files always builds");
                client.http_send()
            }))
        }
        (None, _, None, None) => Auth::Missing,
    };
    let vertex = spec.project.clone().zip(spec.region.clone());
    let base_url = match (spec.api, base_url.trim()) {
        (ApiKind::Gemini, "") => google::GEMINI_HOST.to_owned(),
        (ApiKind::Vertex, "") => google::vertex_host(spec.region.as_deref().unwrap_or("global")),
        (_, url) => url.to_owned(),
    };
    let headers = spec
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect();
    let tls = spec.tls.as_ref().map(TlsMaterial::read);
    let identity = spec.tls.as_ref().zip(tls.as_ref());
    let client = upstreams.client(timeouts.connect, identity);
    if let Err(error) = &client {
        tracing::error!(provider = %spec.name, %error, "TLS files unusable: this provider's targets are skipped (reason config) until they are fixed");
    }
    let server_address = base_url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    Provider {
        name: spec.name.clone(),
        api: spec.api,
        server_address,
        auth,
        headers,
        timeouts,
        max_concurrency: spec.max_concurrency,
        api_version: spec.api_version.clone(),
        vertex,
        region: spec.region.clone(),
        wires: spec
            .wires
            .clone()
            .unwrap_or_else(|| spec.api.default_wires(&base_url).to_vec()),
        base_url,
        client,
        tls,
    }
}

/// How Google credentials are fetched: through the same pooled client (and egress rules)
/// as upstream calls, each exchange bounded in time.
fn credential_fetch(upstreams: &Upstreams) -> Fetch {
    let client = upstreams.client(DEFAULT_CONNECT, None);
    Arc::new(move |request| {
        let client = client.clone();
        Box::pin(async move {
            use http_body_util::BodyExt;
            let client = client.map_err(|e| e.to_string())?;
            let exchange = async {
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                Ok((status, body))
            };
            tokio::time::timeout(CREDENTIAL_TIMEOUT, exchange)
                .await
                .map_err(|_| format!("no answer within {CREDENTIAL_TIMEOUT:?}"))?
        }) as FetchFuture
    })
}

/// Reads a key from its source. Never logs the key; an empty source is a warning, not a
/// failure, so a sidecar with one provider's key still serves that provider.
fn resolve_key(provider: &str, api: ApiKind, source: &KeySource) -> Auth {
    let (key, origin) = match (&source.from_env, &source.from_file) {
        (Some(var), _) => (
            std::env::var(var).ok(),
            format!("environment variable {var}"),
        ),
        (None, Some(path)) => (std::fs::read_to_string(path).ok(), format!("file {path}")),
        (None, None) => (None, "an empty key source".to_owned()),
    };
    let Some(key) = key.filter(|k| !k.trim().is_empty()) else {
        if let Some(suppressed) = log_limit::admit(&format!("no key {provider} {origin}")) {
            tracing::warn!(provider, source = %origin, suppressed, "no API key found; requests to this provider go without one");
        }
        return Auth::Missing;
    };
    match key_header(api, &key) {
        Some(value) => Auth::Key(value),
        None => {
            if let Some(suppressed) = log_limit::admit(&format!("bad key {provider} {origin}")) {
                tracing::warn!(provider, source = %origin, suppressed, "API key is not a valid header value; ignoring it");
            }
            Auth::Missing
        }
    }
}

/// The auth header value for a key as read (surrounding whitespace and newlines of a
/// mounted file dropped), marked sensitive so it never prints.
fn key_header(api: ApiKind, key: &str) -> Option<HeaderValue> {
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    let bearer = provider::of(api).key_header.1;
    let mut value = if bearer {
        HeaderValue::from_str(&format!("Bearer {key}"))
    } else {
        HeaderValue::from_str(key)
    }
    .ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn provider_spec_probe<'a>(
    providers: &'a [crate::policy::spec::ProviderSpec],
    name: &str,
) -> Option<&'a crate::policy::spec::ProbeSpec> {
    providers.iter().find(|p| p.name == name)?.probe.as_ref()
}

fn duration_or(value: Option<&DurationStr>, default: Duration) -> Duration {
    optional_duration(value).unwrap_or(default)
}

fn optional_duration(value: Option<&DurationStr>) -> Option<Duration> {
    value.and_then(|d| d.parse().ok())
}

/// The breaker config of a target: its overrides on top of the policy defaults on top of
/// DESIGN's defaults.
fn breaker_config(defaults: &BreakerSpec, overrides: Option<&BreakerSpec>) -> BreakerConfig {
    let base = BreakerConfig::default();
    let pick_d = |f: fn(&BreakerSpec) -> Option<&DurationStr>, fallback: Duration| {
        overrides
            .and_then(f)
            .or_else(|| f(defaults))
            .and_then(|d| d.parse().ok())
            .unwrap_or(fallback)
    };
    let pick_u = |f: fn(&BreakerSpec) -> Option<u32>, fallback: u32| {
        overrides
            .and_then(f)
            .or_else(|| f(defaults))
            .unwrap_or(fallback)
    };
    let pick_f = |f: fn(&BreakerSpec) -> Option<f64>, fallback: f64| {
        overrides
            .and_then(f)
            .or_else(|| f(defaults))
            .unwrap_or(fallback)
    };
    BreakerConfig {
        window: pick_d(|b| b.window.as_ref(), base.window),
        minimum_calls: pick_u(|b| b.minimum_calls, base.minimum_calls),
        failure_rate: pick_f(|b| b.failure_rate, base.failure_rate),
        consecutive_failures: pick_u(|b| b.consecutive_failures, base.consecutive_failures),
        slow_first_byte: overrides
            .and_then(|b| b.slow_call.as_ref()?.first_byte.as_ref())
            .or_else(|| defaults.slow_call.as_ref()?.first_byte.as_ref())
            .and_then(|d| d.parse().ok()),
        slow_factor: pick_f(
            |b| b.slow_call.as_ref().and_then(|s| s.factor),
            base.slow_factor,
        ),
        slow_rate: pick_f(
            |b| b.slow_call.as_ref().and_then(|s| s.rate),
            base.slow_rate,
        ),
        open_for: pick_d(|b| b.open_for.as_ref(), base.open_for),
        max_open_for: pick_d(|b| b.max_open_for.as_ref(), base.max_open_for),
        half_open_calls: pick_u(|b| b.half_open_calls, base.half_open_calls),
        active_probes: false,
    }
}
