//! Turns what an upstream did into an [`Outcome`], once, so that failover, breakers,
//! cooldowns, metrics and traces all agree on what happened (`docs/decisions.md`,
//! Failover).
//!
//! Nothing here does I/O or looks at the clock: the wall-clock time needed to read
//! RFC 3339 and HTTP-date reset headers is passed in.

pub mod bedrock;
mod google;
mod tls_cause;

pub use tls_cause::{next, TlsCause};

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered; the response goes to the app.
    Success,
    /// Fails over and counts as a breaker failure.
    Failure(FailReason),
    /// A 429: fails over and rests the target for `cooldown`; not a breaker failure.
    Throttled {
        /// How long the target rests.
        cooldown: Duration,
        /// Whether the provider said the quota or spend limit is exhausted.
        quota_exhausted: bool,
    },
    /// The app's own mistake (400, 401, 403, 404, 422...): passed back untouched.
    ClientError(StatusCode),
}

impl Outcome {
    /// The label used in metrics and span attributes.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure(reason) => reason.as_str(),
            Outcome::Throttled {
                quota_exhausted: true,
                ..
            } => "quota_exhausted",
            Outcome::Throttled { .. } => "rate_limited",
            Outcome::ClientError(_) => "client_error",
        }
    }

    /// The label with its cause where there is one (`tls_error (unknown CA)`), for
    /// messages and span status descriptions.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Failure(FailReason::Tls(cause)) => format!("{} ({cause})", self.label()),
            Outcome::Success
            | Outcome::Failure(_)
            | Outcome::Throttled { .. }
            | Outcome::ClientError(_) => self.label().to_owned(),
        }
    }
}

/// Why an attempt failed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// TCP connect refused or reset.
    Connect,
    /// TLS handshake failed, and why.
    Tls(TlsCause),
    /// Connect took longer than `timeouts.connect`.
    ConnectTimeout,
    /// No response headers (or, for a stream, no content) within `timeouts.firstByte`.
    FirstByteTimeout,
    /// A gap between body chunks longer than `timeouts.idle`.
    IdleTimeout,
    /// No sign of life for far longer than the target's own worst normal: a black hole.
    Stalled,
    /// A failing-over HTTP status (408, 5xx, 529; Bedrock's model error, 424).
    Status(u16),
    /// The body or stream ended before it was complete.
    Cut,
    /// The stream carried an error event.
    StreamError,
    /// A 200 whose body is not what the API promises.
    InvalidResponse,
    /// The request's total deadline ended a committed stream (not the target's fault).
    Deadline,
    /// No credential could be had for the target (a Google token fetch failed).
    Credentials,
}

impl FailReason {
    /// The label used in metrics, `x-switchyard-error` detail and `error.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Connect => "connect_error",
            FailReason::Tls(_) => "tls_error",
            FailReason::ConnectTimeout => "connect_timeout",
            FailReason::FirstByteTimeout => "first_byte_timeout",
            FailReason::IdleTimeout => "idle_timeout",
            FailReason::Stalled => "stalled",
            FailReason::Status(408) => "http_408",
            FailReason::Status(424) => "http_424",
            FailReason::Status(500) => "http_500",
            FailReason::Status(502) => "http_502",
            FailReason::Status(503) => "http_503",
            FailReason::Status(504) => "http_504",
            FailReason::Status(529) => "http_529",
            FailReason::Status(_) => "http_5xx",
            FailReason::Cut => "stream_cut",
            FailReason::StreamError => "stream_error",
            FailReason::InvalidResponse => "invalid_response",
            FailReason::Deadline => "deadline",
            FailReason::Credentials => "credentials_error",
        }
    }
}

/// How 429 cooldowns are bounded (`rateLimit` in the policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownLimits {
    /// When the provider does not say how long.
    pub default: Duration,
    /// Never longer than this; also the cooldown for an exhausted quota.
    pub max: Duration,
}

impl Default for CooldownLimits {
    fn default() -> Self {
        Self {
            default: Duration::from_secs(5),
            max: Duration::from_secs(300),
        }
    }
}

/// Classifies a response by its status, headers and (for error statuses) its body.
pub fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    error_body: &[u8],
    limits: CooldownLimits,
    wall_now: SystemTime,
) -> Outcome {
    match status.as_u16() {
        200..=399 => Outcome::Success,
        429 => {
            let google = google::throttle(error_body);
            let quota_exhausted =
                is_quota_exhausted(error_body) || google == Some(google::Throttle::PerDay);
            let retry_info = match google {
                Some(google::Throttle::RetryAfter(delay)) => Some(delay),
                Some(google::Throttle::PerDay) | None => None,
            };
            let cooldown = if quota_exhausted {
                limits.max
            } else {
                requested_cooldown(headers, wall_now)
                    .or(retry_info)
                    .unwrap_or(limits.default)
                    .min(limits.max)
            };
            Outcome::Throttled {
                cooldown,
                quota_exhausted,
            }
        }
        408 | 500..=599 => Outcome::Failure(FailReason::Status(status.as_u16())),
        _ => Outcome::ClientError(status),
    }
}

/// OpenAI says `insufficient_quota` when money, not rate, is the limit.
fn is_quota_exhausted(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let error = &value["error"];
    ["code", "type"]
        .iter()
        .any(|k| error[k] == "insufficient_quota")
}

/// How long the provider asked us to wait, in any of the dialects providers use
/// (`retry-after`, reset headers).
pub fn requested_cooldown(headers: &HeaderMap, wall_now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return finite_duration(ms / 1000.0);
    }
    if let Some(v) = text("retry-after") {
        if let Ok(secs) = v.parse::<f64>() {
            return finite_duration(secs);
        }
        if let Ok(at) = httpdate::parse_http_date(v) {
            return Some(at.duration_since(wall_now).unwrap_or_default());
        }
    }
    // Without a `remaining` header we cannot tell which limit was hit: honour its reset.
    let exhausted = |remaining: String| text(&remaining).is_none_or(|r| r == "0");
    let openai = ["requests", "tokens"]
        .into_iter()
        .filter(|k| exhausted(format!("x-ratelimit-remaining-{k}")))
        .filter_map(|k| text(&format!("x-ratelimit-reset-{k}")).and_then(parse_go_duration))
        .max();
    if openai.is_some() {
        return openai;
    }
    ["requests", "tokens", "input-tokens", "output-tokens"]
        .into_iter()
        .filter(|k| exhausted(format!("anthropic-ratelimit-{k}-remaining")))
        .filter_map(|k| text(&format!("anthropic-ratelimit-{k}-reset")))
        .filter_map(|v| humantime::parse_rfc3339_weak(v).ok())
        .map(|at| at.duration_since(wall_now).unwrap_or_default())
        .max()
}

fn finite_duration(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

/// Parses Go-style durations as OpenAI sends them: `6m0s`, `1.5s`, `20ms`, `1h2m3s`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    let mut total = 0.0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    finite_duration(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const LIMITS: CooldownLimits = CooldownLimits {
        default: Duration::from_secs(5),
        max: Duration::from_secs(300),
    };

    fn cooldown_of(pairs: &[(&'static str, &str)], body: &str) -> Duration {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        match classify_response(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(pairs),
            body.as_bytes(),
            LIMITS,
            now,
        ) {
            Outcome::Throttled { cooldown, .. } => cooldown,
            other => panic!("expected throttled, got {other:?}"),
        }
    }

    #[test]
    fn statuses_follow_the_design_table() {
        let now = SystemTime::now();
        let c = |s: u16| {
            classify_response(
                StatusCode::from_u16(s).unwrap(),
                &HeaderMap::new(),
                b"",
                LIMITS,
                now,
            )
        };
        for s in [408, 500, 502, 503, 504, 529] {
            assert_eq!(c(s), Outcome::Failure(FailReason::Status(s)), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert_eq!(
                c(s),
                Outcome::ClientError(StatusCode::from_u16(s).unwrap()),
                "{s}"
            );
        }
        assert_eq!(c(200), Outcome::Success);
    }

    #[test]
    fn every_cooldown_dialect() {
        assert_eq!(cooldown_of(&[], ""), Duration::from_secs(5));
        assert_eq!(
            cooldown_of(&[("retry-after", "7")], ""),
            Duration::from_secs(7)
        );
        assert_eq!(
            cooldown_of(&[("retry-after-ms", "1500")], ""),
            Duration::from_millis(1500)
        );
        assert_eq!(
            cooldown_of(&[("retry-after", "Tue, 14 Nov 2023 22:13:40 GMT")], ""),
            Duration::from_secs(20)
        );
        assert_eq!(
            cooldown_of(&[("x-ratelimit-reset-requests", "6m0s")], ""),
            Duration::from_secs(300)
        );
        assert_eq!(
            cooldown_of(
                &[
                    ("x-ratelimit-reset-requests", "1s"),
                    ("x-ratelimit-reset-tokens", "12.5s")
                ],
                ""
            ),
            Duration::from_millis(12_500)
        );
        assert_eq!(
            cooldown_of(
                &[
                    ("x-ratelimit-remaining-requests", "0"),
                    ("x-ratelimit-reset-requests", "2s"),
                    ("x-ratelimit-remaining-tokens", "5000"),
                    ("x-ratelimit-reset-tokens", "40s"),
                ],
                ""
            ),
            Duration::from_secs(2)
        );
        assert_eq!(
            cooldown_of(
                &[("anthropic-ratelimit-requests-reset", "2023-11-14T22:13:50Z")],
                ""
            ),
            Duration::from_secs(30)
        );
        assert_eq!(
            cooldown_of(&[("retry-after", "99999")], ""),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn insufficient_quota_rests_for_the_maximum() {
        let body = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert_eq!(
            cooldown_of(&[("retry-after", "1")], body),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_go_duration("abc"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
