//! Bedrock's failure signals by error name (`x-amzn-ErrorType`, DESIGN §4) rather than by
//! status alone: a `ModelNotReadyException` shares 429 with throttling but is no
//! throttle of ours, a `ServiceQuotaExceededException` is a 400 that is no client error.

use http::{HeaderMap, StatusCode};

use super::{CooldownLimits, FailReason, Outcome};

/// The error name a Bedrock error response carries: `x-amzn-ErrorType` up to its first
/// `:` (AWS appends a namespace URL), else the body's `__type` after its `#`.
pub fn error_name<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Option<String> {
    if let Some(name) = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(':').next())
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        return Some(name.to_owned());
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let kind = value.get("__type")?.as_str()?;
    Some(kind.rsplit('#').next().unwrap_or(kind).to_owned())
}

/// The outcome a Bedrock error name means, or `None` for a name this table does not
/// know (then the status decides, as for any provider).
pub fn outcome(name: &str, status: StatusCode, limits: CooldownLimits) -> Option<Outcome> {
    let throttled = |cooldown, quota_exhausted| Outcome::Throttled {
        cooldown,
        quota_exhausted,
    };
    Some(match name {
        // Bedrock sends no Retry-After: the default rest.
        "ThrottlingException" => throttled(limits.default, false),
        "ServiceQuotaExceededException" => throttled(limits.max, true),
        // The model is loading: go elsewhere for a while, but it is not sick.
        "ModelNotReadyException" => throttled(limits.default, false),
        "ServiceUnavailableException" => Outcome::Failure(FailReason::Status(503)),
        "InternalServerException" => Outcome::Failure(FailReason::Status(500)),
        "ModelTimeoutException" => Outcome::Failure(FailReason::Status(408)),
        "ModelErrorException" => Outcome::Failure(FailReason::Status(424)),
        "ModelStreamErrorException" => Outcome::Failure(FailReason::StreamError),
        "ValidationException" | "AccessDeniedException" | "ResourceNotFoundException" => {
            Outcome::ClientError(status)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-amzn-ErrorType", value.parse().unwrap());
        h
    }

    #[test]
    fn names_decide_not_statuses() {
        let limits = CooldownLimits::default();
        let name = error_name(
            &headers("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            b"",
        )
        .unwrap();
        assert_eq!(name, "ThrottlingException");
        assert_eq!(
            outcome(&name, StatusCode::TOO_MANY_REQUESTS, limits),
            Some(Outcome::Throttled {
                cooldown: limits.default,
                quota_exhausted: false
            })
        );
        let quota = outcome(
            "ServiceQuotaExceededException",
            StatusCode::BAD_REQUEST,
            limits,
        );
        assert_eq!(
            quota,
            Some(Outcome::Throttled {
                cooldown: limits.max,
                quota_exhausted: true
            })
        );
        assert_eq!(
            outcome("ModelTimeoutException", StatusCode::REQUEST_TIMEOUT, limits),
            Some(Outcome::Failure(FailReason::Status(408)))
        );
        assert_eq!(
            outcome("AccessDeniedException", StatusCode::FORBIDDEN, limits),
            Some(Outcome::ClientError(StatusCode::FORBIDDEN))
        );
        assert_eq!(
            outcome("SomethingNewException", StatusCode::BAD_REQUEST, limits),
            None
        );
        let from_body = error_name(
            &HeaderMap::new(),
            br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}"#,
        );
        assert_eq!(from_body.as_deref(), Some("ValidationException"));
    }
}
