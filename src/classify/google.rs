//! What Google's 429 (`RESOURCE_EXHAUSTED`, Gemini and Vertex AI) says in its body: how
//! long to wait (`google.rpc.RetryInfo.retryDelay`, a protobuf duration such as `"37s"`)
//! and whether a per-day quota ran out (`google.rpc.QuotaFailure`, whose violations name
//! the quota: waiting seconds will not help then).

use std::time::Duration;

use serde::Deserialize;

/// What a Google rate-limit body asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Throttle {
    /// Wait this long (`RetryInfo`).
    RetryAfter(Duration),
    /// A daily quota is spent: rest for the longest cooldown.
    PerDay,
}

#[derive(Deserialize)]
struct Body {
    error: Option<Error>,
}

#[derive(Deserialize)]
struct Error {
    #[serde(default)]
    details: Vec<Detail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    #[serde(rename = "@type", default)]
    kind: String,
    retry_delay: Option<String>,
    #[serde(default)]
    violations: Vec<Violation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Violation {
    #[serde(default)]
    quota_id: String,
    #[serde(default)]
    quota_metric: String,
}

impl Violation {
    fn per_day(&self) -> bool {
        let per_day = |s: &str| {
            let s = s.to_ascii_lowercase();
            s.contains("perday") || s.contains("per_day")
        };
        per_day(&self.quota_id) || per_day(&self.quota_metric)
    }
}

/// The throttle a Google error body describes, if it is one.
pub(super) fn throttle(body: &[u8]) -> Option<Throttle> {
    let details = serde_json::from_slice::<Body>(body).ok()?.error?.details;
    let per_day = details
        .iter()
        .filter(|d| d.kind.ends_with("google.rpc.QuotaFailure"))
        .flat_map(|d| &d.violations)
        .any(Violation::per_day);
    if per_day {
        return Some(Throttle::PerDay);
    }
    details
        .iter()
        .filter(|d| d.kind.ends_with("google.rpc.RetryInfo"))
        .find_map(|d| d.retry_delay.as_deref().and_then(proto_duration))
        .map(Throttle::RetryAfter)
}

/// A protobuf JSON duration: decimal seconds with an `s` (`"37s"`, `"0.5s"`).
fn proto_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_and_daily_quotas() {
        let retry = br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}"#;
        assert_eq!(
            throttle(retry),
            Some(Throttle::RetryAfter(Duration::from_secs(37)))
        );
        let daily = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3.5s"}]}}"#;
        assert_eq!(throttle(daily), Some(Throttle::PerDay));
        assert_eq!(proto_duration("0.25s"), Some(Duration::from_millis(250)));
        assert_eq!(throttle(br#"{"error":{"message":"x"}}"#), None);
        assert_eq!(throttle(b"not json"), None);
    }
}
