//! Policy validation: every rule a schema cannot express, checked on a decoded
//! [`PolicySpec`]. Invariant: `validate` never stops at the first problem; it returns all
//! of them, each with the camelCase field path a user wrote (`routes[0].targets[1].provider`).

use std::collections::hash_map::{Entry, HashMap};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Uri};

use super::spec::{
    ApiKind, AuthSpec, BreakerSpec, DurationStr, PolicySpec, ProviderSpec, RateLimitSpec,
    RetryBudgetSpec, RouteSpec, TargetSpec,
};

/// Headers that carry credentials: a policy names where a key lives, never the key itself.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "x-api-key", "api-key"];
/// The longest duration a policy may say: far beyond any sensible timeout or cooldown,
/// and far below what would overflow a deadline computed from it.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// One problem in a policy, at the field path a user would look for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// camelCase path such as `providers[1].timeouts.firstByte`; empty for the document.
    pub path: String,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

impl FieldError {
    /// Builds an error; callers pass the path as users write it.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

/// An AWS region name: lower-case words and digits joined by dashes (`us-east-1`,
/// `eu-central-2`, `us-gov-west-1`); it becomes part of a host name.
fn is_region(region: &str) -> bool {
    !region.is_empty()
        && region.split('-').count() >= 3
        && region.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Renders a map key as a path segment: bare when it is an identifier-like word,
/// quoted otherwise (`data."policy.yaml"`), so a path is never ambiguous.
pub(crate) fn path_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// Checks everything about a decoded policy that its types cannot, and returns every
/// problem found (empty when the policy is valid). The one validation path for
/// `switchyard validate`, start-up and every live reload.
pub fn validate(spec: &PolicySpec) -> Vec<FieldError> {
    let mut v = Validator::default();
    v.providers(&spec.providers);
    v.routes(spec);
    v.breaker("circuitBreaker", &spec.circuit_breaker, None);
    v.rate_limit(&spec.rate_limit);
    v.retry_budget(&spec.retry_budget);
    v.errors
}

#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    fn providers(&mut self, providers: &[ProviderSpec]) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, p) in providers.iter().enumerate() {
            let at = format!("providers[{i}]");
            if !is_valid_name(&p.name) {
                self.err(
                    format!("{at}.name"),
                    format!("{:?} must match [a-z0-9-]+", p.name),
                );
            }
            match seen.entry(p.name.as_str()) {
                Entry::Occupied(first) => self.err(
                    format!("{at}.name"),
                    format!(
                        "duplicate provider name {:?} (first at providers[{}])",
                        p.name,
                        first.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
            match (p.api.base_url_optional(), p.base_url.is_empty()) {
                (true, true) => {}
                (false, true) => self.err(
                    format!("{at}.baseUrl"),
                    format!("required for api {}", p.api.as_str()),
                ),
                (_, false) => self.base_url(&at, &p.base_url),
            }
            self.auth(&at, &p.auth);
            self.google(&at, p);
            self.cloud(&at, p);
            self.headers(&at, &p.headers);
            if let Some(probe) = &p.probe {
                self.duration(&format!("{at}.probe.interval"), Some(&probe.interval), true);
            }
            if let Some(limits) = &p.limits {
                for (name, value) in [
                    ("requestsPerMinute", limits.requests_per_minute),
                    ("tokensPerMinute", limits.tokens_per_minute),
                ] {
                    if value == Some(0) {
                        self.err(format!("{at}.limits.{name}"), "must be at least 1");
                    }
                }
            }
            self.duration(
                &format!("{at}.timeouts.connect"),
                p.timeouts.connect.as_ref(),
                true,
            );
            let first_byte = p.timeouts.first_byte.as_ref();
            self.duration(&format!("{at}.timeouts.firstByte"), first_byte, true);
            self.duration(
                &format!("{at}.timeouts.idle"),
                p.timeouts.idle.as_ref(),
                true,
            );
            self.api_version(&at, p);
            if let Some(tls) = &p.tls {
                self.tls(&at, &p.effective_base_url(), tls);
            }
            self.wires(&at, p);
        }
    }

    fn wires(&mut self, at: &str, p: &ProviderSpec) {
        let possible = p.api.possible_wires();
        for (i, wire) in p.wires.iter().flatten().enumerate() {
            if !possible.contains(wire) {
                let names: Vec<&str> = possible.iter().map(|w| w.as_str()).collect();
                self.err(
                    format!("{at}.wires[{i}]"),
                    format!(
                        "api {} cannot serve {}; it serves {}",
                        p.api.as_str(),
                        wire.as_str(),
                        names.join(", ")
                    ),
                );
            }
        }
    }

    fn base_url(&mut self, at: &str, url: &str) {
        let path = format!("{at}.baseUrl");
        if url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|authority| authority.contains('@'))
        {
            // Not echoed: the part before '@' may be a secret.
            return self.err(
                path,
                "must not carry credentials (user:key@); use auth.apiKey",
            );
        }
        let uri = match url.parse::<Uri>() {
            Ok(uri) => uri,
            Err(e) => return self.err(path, format!("{url:?} is not a URL ({e})")),
        };
        let web = matches!(uri.scheme_str(), Some("http" | "https"));
        if !web || uri.host().is_none_or(str::is_empty) {
            self.err(
                path,
                format!("{url:?} must be an absolute http:// or https:// URL"),
            );
        } else if uri.query().is_some() {
            self.err(path, format!("{url:?} must not carry a query string"));
        }
    }

    /// What the cloud kinds need and only they may say: Bedrock's `region` (also its
    /// signing region) and `auth.aws`; no `passthrough` (no app speaks their wire).
    fn cloud(&mut self, at: &str, p: &ProviderSpec) {
        let bedrock = p.api == ApiKind::Bedrock;
        match (&p.region, bedrock) {
            (None, true) => self.err(
                format!("{at}.region"),
                "required for api bedrock (e.g. us-east-1); it is also the SigV4 signing region",
            ),
            (Some(region), true) if !is_region(region) => self.err(
                format!("{at}.region"),
                format!("{region:?} is not an AWS region name like us-east-1"),
            ),
            (Some(_), false) if p.api != ApiKind::Vertex => self.err(
                format!("{at}.region"),
                "only allowed for api bedrock and vertex",
            ),
            _ => {}
        }
        if p.auth.aws.is_some() && !bedrock {
            self.err(format!("{at}.auth.aws"), "only allowed for api bedrock");
        }
        if bedrock && p.auth.passthrough == Some(true) {
            self.err(
                format!("{at}.auth.passthrough"),
                "not allowed for api bedrock: no app sends a Bedrock key; use aws: {} or apiKey",
            );
        }
    }

    fn auth(&mut self, at: &str, auth: &AuthSpec) {
        let passthrough = auth.passthrough == Some(true);
        let set = usize::from(auth.api_key.is_some())
            + usize::from(passthrough)
            + usize::from(auth.aws.is_some())
            + usize::from(auth.google.is_some());
        if set != 1 {
            // Which kinds take cloud credentials is checked with the kind.
            let several = if set > 1 { ", not several" } else { "" };
            return self.err(
                format!("{at}.auth"),
                format!("set exactly one of apiKey, passthrough: true, aws: {{}} or google: {{}}{several}"),
            );
        }
        match (&auth.api_key, passthrough) {
            (Some(_), true) | (None, false) | (None, true) => {}
            (Some(key), false) => match (&key.from_env, &key.from_file) {
                (Some(var), None) if var.trim().is_empty() => {
                    self.err(format!("{at}.auth.apiKey.fromEnv"), "must not be empty")
                }
                (None, Some(file)) if file.trim().is_empty() => {
                    self.err(format!("{at}.auth.apiKey.fromFile"), "must not be empty")
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => self.err(
                    format!("{at}.auth.apiKey"),
                    "set exactly one of fromEnv or fromFile",
                ),
            },
        }
    }

    fn headers(&mut self, at: &str, headers: &BTreeMap<String, String>) {
        for (name, value) in headers {
            let path = format!("{at}.headers.{}", path_key(name));
            match HeaderName::from_bytes(name.as_bytes()) {
                Err(_) => self.err(path.clone(), "not a valid HTTP header name"),
                Ok(header) if CREDENTIAL_HEADERS.contains(&header.as_str()) => self.err(
                    path.clone(),
                    "credentials never go inline in a policy; use auth.apiKey",
                ),
                Ok(_) => {}
            }
            // The value is not echoed: a misplaced secret must not reach logs or events.
            if HeaderValue::from_str(value).is_err() {
                self.err(path, "value is not a valid HTTP header value");
            }
        }
    }

    fn api_version(&mut self, at: &str, p: &ProviderSpec) {
        let path = format!("{at}.apiVersion");
        match (p.api, &p.api_version) {
            (ApiKind::AzureOpenai, None) => {
                self.err(path, "required for api azure-openai (e.g. 2024-10-21)")
            }
            (ApiKind::AzureOpenai, Some(v)) if v.trim().is_empty() => {
                self.err(path, "must not be empty")
            }
            (
                ApiKind::Openai
                | ApiKind::Anthropic
                | ApiKind::Bedrock
                | ApiKind::Gemini
                | ApiKind::Vertex,
                Some(_),
            ) => self.err(path, "only allowed for api azure-openai"),
            _ => {}
        }
    }

    fn routes(&mut self, spec: &PolicySpec) {
        if spec.routes.is_empty() {
            self.err("routes", "at least one route is required");
        }
        let names: Vec<&str> = spec.providers.iter().map(|p| p.name.as_str()).collect();
        let mut seen: HashMap<(&str, ApiKind), usize> = HashMap::new();
        for (i, route) in spec.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            if route.model.trim().is_empty() {
                self.err(format!("{at}.model"), "must not be empty");
            }
            let clashes: Vec<String> = self
                .inbound_kinds(&at, route)
                .iter()
                .filter_map(|&kind| match seen.entry((route.model.as_str(), kind)) {
                    Entry::Occupied(first) => {
                        Some(format!("{} (routes[{}])", kind.as_str(), first.get()))
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(i);
                        None
                    }
                })
                .collect();
            if !clashes.is_empty() {
                self.err(
                    format!("{at}.model"),
                    format!(
                        "another route already serves model {:?} for inbound {}",
                        route.model,
                        clashes.join(", ")
                    ),
                );
            }
            self.route_limits(&at, route);
            for (j, target) in route.targets.iter().enumerate() {
                let path = format!("{at}.targets[{j}]");
                self.target(&path, target, &names, &spec.circuit_breaker);
            }
        }
    }

    /// The inbound formats a route serves; a route without `inbound` serves both.
    fn inbound_kinds(&mut self, at: &str, route: &RouteSpec) -> &'static [ApiKind] {
        match route.inbound {
            None => &[ApiKind::Openai, ApiKind::Anthropic],
            Some(ApiKind::Openai) => &[ApiKind::Openai],
            Some(ApiKind::Anthropic) => &[ApiKind::Anthropic],
            Some(ApiKind::AzureOpenai | ApiKind::Bedrock) => {
                self.err(
                    format!("{at}.inbound"),
                    "must be openai or anthropic (Azure OpenAI clients send the openai format)",
                );
                &[]
            }
            Some(ApiKind::Gemini | ApiKind::Vertex) => {
                self.err(
                    format!("{at}.inbound"),
                    "must be openai or anthropic (apps send those formats; Gemini is a target)",
                );
                &[]
            }
        }
    }

    fn route_limits(&mut self, at: &str, route: &RouteSpec) {
        if route.targets.is_empty() {
            self.err(format!("{at}.targets"), "at least one target is required");
        }
        self.at_least_one(&format!("{at}.maxAttempts"), route.max_attempts);
        self.duration(&format!("{at}.timeout"), route.timeout.as_ref(), true);
        self.at_least_one(&format!("{at}.maxTokens"), route.max_tokens);
        self.duration(&format!("{at}.maxWait"), route.max_wait.as_ref(), false);
        if let Some(hedge) = &route.hedge {
            if hedge.after.trim() != "auto" {
                let after = DurationStr(hedge.after.clone());
                self.duration(&format!("{at}.hedge.after"), Some(&after), true);
            }
            self.rate(&format!("{at}.hedge.maxRatio"), hedge.max_ratio);
        }
    }

    fn target(&mut self, at: &str, target: &TargetSpec, names: &[&str], defaults: &BreakerSpec) {
        if !names.contains(&target.provider.as_str()) {
            let hint = closest(&target.provider, names)
                .map(|name| format!(" (did you mean {name:?}?)"))
                .unwrap_or_default();
            self.err(
                format!("{at}.provider"),
                format!("no provider named {:?}{hint}", target.provider),
            );
        }
        if target.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            self.err(
                format!("{at}.model"),
                "must not be empty (omit it to send the requested model)",
            );
        }
        self.at_least_one(&format!("{at}.weight"), target.weight);
        if let Some(price) = &target.price {
            self.non_negative(
                &format!("{at}.price.inputPerMTok"),
                Some(price.input_per_mtok),
            );
            self.non_negative(
                &format!("{at}.price.outputPerMTok"),
                Some(price.output_per_mtok),
            );
        }
        if let Some(probe) = &target.probe {
            self.duration(&format!("{at}.probe.interval"), Some(&probe.interval), true);
        }
        if let Some(breaker) = &target.circuit_breaker {
            self.breaker(&format!("{at}.circuitBreaker"), breaker, Some(defaults));
        }
        if let Some(request) = &target.request {
            let errors = request.validate(&format!("{at}.request"));
            self.errors.extend(errors);
        }
    }

    /// Checks breaker settings; a target's override is ordered against the policy-wide
    /// values it inherits (`defaults`).
    fn breaker(&mut self, at: &str, b: &BreakerSpec, defaults: Option<&BreakerSpec>) {
        self.duration(&format!("{at}.window"), b.window.as_ref(), true);
        self.at_least_one(&format!("{at}.minimumCalls"), b.minimum_calls);
        self.rate(&format!("{at}.failureRate"), b.failure_rate);
        self.at_least_one(&format!("{at}.consecutiveFailures"), b.consecutive_failures);
        if let Some(slow) = &b.slow_call {
            self.duration(
                &format!("{at}.slowCall.firstByte"),
                slow.first_byte.as_ref(),
                true,
            );
            self.rate(&format!("{at}.slowCall.rate"), slow.rate);
            if slow.factor.is_some_and(|f| !(f >= 1.0 && f.is_finite())) {
                self.err(format!("{at}.slowCall.factor"), "must be at least 1");
            }
        }
        let open_for = self.duration(&format!("{at}.openFor"), b.open_for.as_ref(), true);
        let max_open_for =
            self.duration(&format!("{at}.maxOpenFor"), b.max_open_for.as_ref(), true);
        self.at_least_one(&format!("{at}.halfOpenCalls"), b.half_open_calls);
        if open_for.is_some() || max_open_for.is_some() {
            let inherited = |pick: fn(&BreakerSpec) -> Option<&DurationStr>| {
                defaults.and_then(pick).and_then(|d| d.parse().ok())
            };
            let open_for = open_for.or_else(|| inherited(|d| d.open_for.as_ref()));
            let max_open_for = max_open_for.or_else(|| inherited(|d| d.max_open_for.as_ref()));
            self.ordered(
                &format!("{at}.openFor"),
                open_for,
                "maxOpenFor",
                max_open_for,
            );
        }
    }

    fn rate_limit(&mut self, r: &RateLimitSpec) {
        let default = self.duration(
            "rateLimit.defaultCooldown",
            r.default_cooldown.as_ref(),
            false,
        );
        let max = self.duration("rateLimit.maxCooldown", r.max_cooldown.as_ref(), true);
        self.ordered("rateLimit.defaultCooldown", default, "maxCooldown", max);
    }

    fn retry_budget(&mut self, r: &RetryBudgetSpec) {
        self.rate("retryBudget.ratio", r.ratio);
        self.non_negative("retryBudget.minPerSecond", r.min_per_second);
    }

    /// Parses a duration when given; `positive` rejects zero where zero makes no sense,
    /// and nothing is longer than [`MAX_DURATION`].
    fn duration(
        &mut self,
        path: &str,
        d: Option<&DurationStr>,
        positive: bool,
    ) -> Option<Duration> {
        match d?.parse() {
            Ok(d) if positive && d.is_zero() => {
                self.err(path, "must be greater than zero");
                None
            }
            Ok(d) if d > MAX_DURATION => {
                self.err(path, "must be at most 7d");
                None
            }
            Ok(d) => Some(d),
            Err(message) => {
                self.err(path, message);
                None
            }
        }
    }

    fn ordered(
        &mut self,
        path: &str,
        low: Option<Duration>,
        high_name: &str,
        high: Option<Duration>,
    ) {
        if let (Some(low), Some(high)) = (low, high) {
            if low > high {
                self.err(
                    path,
                    format!(
                        "{} must not exceed {high_name} ({})",
                        humantime::format_duration(low),
                        humantime::format_duration(high)
                    ),
                );
            }
        }
    }

    fn rate(&mut self, path: &str, rate: Option<f64>) {
        if let Some(r) = rate {
            if !(r > 0.0 && r <= 1.0) {
                self.err(path, format!("must be in (0, 1], got {r}"));
            }
        }
    }

    fn non_negative(&mut self, path: &str, n: Option<f64>) {
        if let Some(n) = n {
            if !(n >= 0.0 && n.is_finite()) {
                self.err(path, format!("must be a finite number >= 0, got {n}"));
            }
        }
    }

    fn at_least_one(&mut self, path: &str, n: Option<u32>) {
        if n == Some(0) {
            self.err(path, "must be at least 1");
        }
    }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The candidate nearest to `name` by edit distance, if near enough to be a likely typo.
fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // About one edit per three characters; names under three get no guess.
    let limit = name.chars().count() / 3;
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars, one row at a time.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

mod google;
mod request;
mod tls;

#[cfg(test)]
mod tests;
