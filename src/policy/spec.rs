//! The policy as users write it: the wire types shared by a policy file, a ConfigMap's
//! `policy.yaml` and the `spec` of a `RoutingPolicy` resource.
//!
//! These types only describe shape. Everything a schema cannot say (references between
//! providers and routes, duration syntax, rate ranges) is checked in `validate.rs`, so
//! that every problem is reported at once with its field path.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The routing policy: which providers exist and how each requested model is routed.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "RoutingPolicy",
    namespaced,
    shortname = "rp",
    printcolumn = r#"{"name":"Routes","type":"string","jsonPath":".spec.routes[*].model","description":"Route names"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// Upstream LLM APIs the sidecar may call; nothing else is ever contacted.
    /// Keyed by name, so the API server rejects duplicates as validation does.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub providers: Vec<ProviderSpec>,
    /// Routes by requested model; `"*"` catches models no other route names.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub routes: Vec<RouteSpec>,
    /// Breaker defaults for every target.
    #[serde(default, skip_serializing_if = "BreakerSpec::is_empty")]
    pub circuit_breaker: BreakerSpec,
    /// How long a target rests after a 429.
    #[serde(default, skip_serializing_if = "RateLimitSpec::is_empty")]
    pub rate_limit: RateLimitSpec,
    /// Bound on the extra load that failover attempts may add.
    #[serde(default, skip_serializing_if = "RetryBudgetSpec::is_empty")]
    pub retry_budget: RetryBudgetSpec,
    /// What traces may contain.
    #[serde(default, skip_serializing_if = "TelemetrySpec::is_empty")]
    pub telemetry: TelemetrySpec,
}

/// The wire dialect of a provider (and of an inbound call).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ApiKind {
    /// OpenAI or any OpenAI-compatible server.
    Openai,
    /// Anthropic Messages API.
    Anthropic,
    /// Azure OpenAI: deployment paths, `api-version`, `api-key` header.
    AzureOpenai,
    /// Google's Gemini API (generateContent), key in `x-goog-api-key`.
    Gemini,
    /// Gemini on Vertex AI: the same protocol under a project and region, Google
    /// credentials.
    Vertex,
    /// Amazon Bedrock: Converse / ConverseStream, SigV4-signed for the provider's region.
    Bedrock,
}

impl ApiKind {
    /// The inbound format this provider speaks natively: Azure speaks OpenAI's.
    pub fn dialect(self) -> ApiKind {
        match self {
            ApiKind::Openai | ApiKind::AzureOpenai => ApiKind::Openai,
            ApiKind::Anthropic => ApiKind::Anthropic,
            // No app speaks generateContent to the sidecar: its own kind, never an inbound one.
            ApiKind::Gemini | ApiKind::Vertex => self,
            // No SDK calls the sidecar in Converse: passthrough is refused for it.
            ApiKind::Bedrock => ApiKind::Bedrock,
        }
    }

    /// The protocols a provider of this kind can serve at all; `wires` picks among them.
    pub fn possible_wires(self) -> &'static [Wire] {
        match self {
            ApiKind::Openai | ApiKind::AzureOpenai => {
                &[Wire::Chat, Wire::Embeddings, Wire::Responses]
            }
            ApiKind::Anthropic => &[Wire::Messages],
            ApiKind::Gemini | ApiKind::Vertex => &[Wire::GenerateContent],
            ApiKind::Bedrock => &[Wire::Converse],
        }
    }

    /// The protocols a provider of this kind at `base_url` serves when `wires` is left
    /// out: only OpenAI's own API and Azure serve Responses; other OpenAI-compatible
    /// servers (vLLM, Groq, DeepSeek...) mostly do not.
    pub fn default_wires(self, base_url: &str) -> &'static [Wire] {
        match self {
            ApiKind::Openai if is_openai_host(base_url) => self.possible_wires(),
            ApiKind::Openai => &[Wire::Chat, Wire::Embeddings],
            ApiKind::AzureOpenai
            | ApiKind::Anthropic
            | ApiKind::Bedrock
            | ApiKind::Gemini
            | ApiKind::Vertex => self.possible_wires(),
        }
    }

    /// Whether `baseUrl` may be left out: the cloud kinds default to their own hosts.
    pub fn base_url_optional(self) -> bool {
        match self {
            ApiKind::Openai | ApiKind::Anthropic | ApiKind::AzureOpenai => false,
            ApiKind::Bedrock | ApiKind::Gemini | ApiKind::Vertex => true,
        }
    }

    /// The name used in policies, metrics and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKind::Openai => "openai",
            ApiKind::Anthropic => "anthropic",
            ApiKind::AzureOpenai => "azure-openai",
            ApiKind::Gemini => "gemini",
            ApiKind::Vertex => "vertex",
            ApiKind::Bedrock => "bedrock",
        }
    }
}

/// A protocol a call speaks on the wire, independent of who serves it: a provider lists
/// the ones it serves natively (`wires`), and a call in another one is translated.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Wire {
    /// OpenAI Chat Completions.
    Chat,
    /// OpenAI Embeddings.
    Embeddings,
    /// OpenAI Responses (the Open Responses specification).
    Responses,
    /// Anthropic Messages (and its token counting).
    Messages,
    /// Google generateContent / streamGenerateContent (Gemini and Vertex AI).
    GenerateContent,
    /// Amazon Bedrock Converse / ConverseStream (AWS event-stream framing).
    Converse,
}

impl Wire {
    /// The name used in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::Chat => "chat",
            Wire::Embeddings => "embeddings",
            Wire::Responses => "responses",
            Wire::Messages => "messages",
            Wire::GenerateContent => "generate-content",
            Wire::Converse => "converse",
        }
    }
}

/// Whether a base URL is OpenAI's own API host.
fn is_openai_host(base_url: &str) -> bool {
    base_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .is_some_and(|host| host.eq_ignore_ascii_case("api.openai.com"))
}

/// One upstream API endpoint with its credentials and limits.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    /// Unique name, `[a-z0-9-]`.
    #[schemars(regex(pattern = r"^[a-z0-9-]+$"))]
    pub name: String,
    /// Wire dialect.
    pub api: ApiKind,
    /// Base URL; requests go only here. Optional for `bedrock`, `gemini` and `vertex`,
    /// where it is the host root (the API path is appended) and defaults to the region's
    /// `bedrock-runtime` endpoint or Google's own host; required for the others.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_url: String,
    /// `bedrock` and `vertex`: the region (for Bedrock also the SigV4 signing region;
    /// for Vertex `global` is the global endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `vertex`: the Google Cloud project id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Where the provider key comes from.
    #[serde(default)]
    pub auth: AuthSpec,
    /// Extra headers sent with every request (e.g. `OpenAI-Organization`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Per-attempt timeouts.
    #[serde(default, skip_serializing_if = "TimeoutsSpec::is_empty")]
    pub timeouts: TimeoutsSpec,
    /// In-flight cap; over it the target is skipped as shed. 0 = unlimited.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_concurrency: u32,
    /// Azure OpenAI only: the `api-version` query parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The protocols this provider serves natively; left out, the defaults of its kind
    /// (DESIGN §3): a call in another protocol is translated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wires: Option<Vec<Wire>>,
    /// https only: extra trust roots and a client certificate, for internal model servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Active probes of this provider's targets (off unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeSpec>,
    /// Budgets per target of this provider, shared across the fleet with `--shared-state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsSpec>,
}

impl ProviderSpec {
    /// The base URL requests go to: as written, else the default of its kind (DESIGN §3:
    /// Bedrock's regional `bedrock-runtime` host). Empty when neither says one.
    pub fn effective_base_url(&self) -> String {
        match (self.api, self.region.as_deref()) {
            (ApiKind::Bedrock, Some(region)) if self.base_url.is_empty() => {
                format!("https://bedrock-runtime.{region}.amazonaws.com")
            }
            _ => self.base_url.clone(),
        }
    }
}

/// A provider's rate limits as the sidecar keeps them, per target (key and model).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitsSpec {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u64>,
    /// Input and output tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tokens_per_minute: Option<u64>,
}

/// Active probes: a minimal synthetic call makes the half-open trial of an open breaker
/// and checks an idle target every `interval`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSpec {
    /// How often an idle target is checked (and an open one tried once its period ends).
    pub interval: DurationStr,
}

/// Files (mounted Secrets) that extend how the sidecar trusts and identifies itself to
/// one provider; verification itself can never be turned off.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// PEM certificates trusted on top of the built-in web roots (an internal CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// PEM certificate chain presented for mTLS; needs `clientKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// PEM private key of `clientCert` (PKCS#8, PKCS#1 or SEC1, as cert-manager writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Exactly one of `apiKey`, `passthrough` or (for `bedrock`) `aws`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// The sidecar's own key for this provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<KeySource>,
    /// Forward the app's own key (only to a provider of the inbound call's kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<bool>,
    /// Google application-default credentials (`vertex`): a service-account key file
    /// from `GOOGLE_APPLICATION_CREDENTIALS`, else the metadata server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<GoogleAuthSpec>,
    /// `bedrock` only: SigV4 with credentials from the AWS default chain as Kubernetes
    /// workloads get them (static keys, IRSA web identity, Pod Identity), never a policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsAuthSpec>,
}

/// Google credentials from the standard places; no fields yet, so `{}` says "use them".
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GoogleAuthSpec {}

/// The AWS default chain: no fields, the standard environment says everything.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsAuthSpec {}

/// Where a secret lives: never inline, so a policy can be shown and stored freely.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeySource {
    /// An environment variable of the sidecar container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_env: Option<String>,
    /// A file, e.g. a mounted Secret key; re-read on every policy load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_file: Option<String>,
}

/// Per-attempt time limits.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutsSpec {
    /// TCP + TLS connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<DurationStr>,
    /// Until response headers, and for streams until the first content event (no cut
    /// unless set: a reasoning model may think for minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte: Option<DurationStr>,
    /// Longest gap between body chunks (no cut unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<DurationStr>,
}

impl TimeoutsSpec {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// How a requested model is served.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    /// The model name the app sends; `"*"` catches the rest.
    #[schemars(regex(pattern = r"\S"))]
    pub model: String,
    /// Only for inbound calls of this format (`openai` or `anthropic`); both when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<ApiKind>,
    /// How the targets are ordered for each request.
    #[serde(default)]
    pub strategy: Strategy,
    /// Targets in priority order.
    #[schemars(length(min = 1))]
    pub targets: Vec<TargetSpec>,
    /// Targets tried per request (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_attempts: Option<u32>,
    /// Total deadline per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationStr>,
    /// `max_tokens` to send to a target that requires one when the request has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u32>,
    /// Start the next target too when an attempt shows no first content in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeSpec>,
    /// When every target is excluded, wait this long for the soonest to come back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<DurationStr>,
}

/// Hedging: a slow first attempt gets company instead of being cut.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HedgeSpec {
    /// `auto` (the target's own p95 time to first token) or a duration.
    pub after: String,
    /// Hedges never exceed this share of the route's requests over a sliding minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0), extend("exclusiveMinimum" = true))]
    pub max_ratio: Option<f64>,
}

/// Target ordering strategies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// As written.
    #[default]
    Failover,
    /// Random, proportional to `weight`.
    Weighted,
    /// Lowest observed time to first byte first.
    Latency,
    /// Cheapest `price` first.
    Cost,
    /// Latency and cost weighed together.
    Balanced,
    /// Lowest recent failure rate first.
    Availability,
}

impl Strategy {
    /// Parses the name used in policies and in `x-switchyard-strategy`.
    pub fn parse(s: &str) -> Option<Strategy> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// One provider + model a route may send to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetSpec {
    /// A provider's `name`.
    pub provider: String,
    /// Model to send; the requested model unchanged when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"\S"))]
    pub model: Option<String>,
    /// Relative share for `weighted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub weight: Option<u32>,
    /// USD per million tokens, for `cost`, `balanced` and cost metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<PriceSpec>,
    /// Overrides of the policy's breaker defaults for this target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<BreakerSpec>,
    /// Active probes for this target, overriding its provider's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeSpec>,
    /// Changes to generation calls sent to this target only (system prompt prefix, params).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<super::request::RequestSpec>,
}

/// Token prices in USD per million tokens.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceSpec {
    /// Prompt tokens.
    #[serde(default, rename = "inputPerMTok")]
    #[schemars(range(min = 0.0))]
    pub input_per_mtok: f64,
    /// Completion tokens.
    #[serde(default, rename = "outputPerMTok")]
    #[schemars(range(min = 0.0))]
    pub output_per_mtok: f64,
}

/// Circuit-breaker settings; every field optional so a target can override a few.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BreakerSpec {
    /// Sliding time window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DurationStr>,
    /// No rate verdict below this many calls in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub minimum_calls: Option<u32>,
    /// Open at or above this failure rate, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0), extend("exclusiveMinimum" = true))]
    pub failure_rate: Option<f64>,
    /// Open at this many failures in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub consecutive_failures: Option<u32>,
    /// What counts as slow, and the slow rate that opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_call: Option<SlowCallSpec>,
    /// First open period (jittered +-20%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_for: Option<DurationStr>,
    /// Cap of the doubling open period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_for: Option<DurationStr>,
    /// Probes admitted when half-open; all must succeed to close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub half_open_calls: Option<u32>,
}

impl BreakerSpec {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Slow-call detection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlowCallSpec {
    /// A call is slow past this multiple of its target's own baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0))]
    pub factor: Option<f64>,
    /// An absolute threshold: a call whose first byte takes longer is slow (off unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte: Option<DurationStr>,
    /// Open at or above this slow rate, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0), extend("exclusiveMinimum" = true))]
    pub rate: Option<f64>,
}

/// 429 handling.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Cooldown after a 429 that does not say how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_cooldown: Option<DurationStr>,
    /// Longest cooldown, whatever the provider asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cooldown: Option<DurationStr>,
}

impl RateLimitSpec {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Failover attempts may add at most `ratio` of the request rate plus `minPerSecond`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryBudgetSpec {
    /// Extra attempts per request, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0), extend("exclusiveMinimum" = true))]
    pub ratio: Option<f64>,
    /// Extra attempts always allowed per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub min_per_second: Option<f64>,
}

impl RetryBudgetSpec {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What traces may carry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
    /// Put prompt and completion text in spans. Off unless set.
    #[serde(default)]
    pub capture_content: bool,
}

impl TelemetrySpec {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A duration as users write it (`250ms`, `30s`, `5m`). Kept as text so that a bad value
/// is reported by validation with its field path, alongside every other problem.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(transparent)]
pub struct DurationStr(
    #[schemars(regex(
        pattern = r"^\s*[0-9]+(\.[0-9]+)?\s*(ns|us|µs|ms|s|m|h|d)(\s*[0-9]+(\.[0-9]+)?\s*(ns|us|µs|ms|s|m|h|d))*\s*$"
    ))]
    pub String,
);

impl DurationStr {
    /// Parses the text; validation reports the error with its path.
    pub fn parse(&self) -> Result<std::time::Duration, String> {
        humantime::parse_duration(self.0.trim())
            .map_err(|e| format!("{:?} is not a duration like 250ms, 30s or 5m ({e})", self.0))
    }
}

impl From<&str> for DurationStr {
    fn from(s: &str) -> Self {
        DurationStr(s.to_owned())
    }
}
