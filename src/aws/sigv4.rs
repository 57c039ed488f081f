//! SigV4 for a whole request (method, URI, headers and body bytes) at a given time, and
//! the check of a received signature the mock makes. The signing itself is the
//! `aws-sigv4` crate's; this module only decides what goes into it.
//!
//! Invariant: the clock and the keys are passed in, and nothing is signed after it is
//! changed: the caller signs last, just before sending (after `traceparent` is set).

use std::fmt;
use std::time::SystemTime;

use aws_sigv4::http_request::{sign as sigv4_sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::Request;

/// The service name Bedrock Runtime is signed for (the SDKs' signing name).
pub const BEDROCK_SERVICE: &str = "bedrock";

/// One set of AWS credentials. `Debug` never shows the secret or the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    /// `AKIA…` (long-term) or `ASIA…` (temporary).
    pub access_key_id: String,
    /// The signing secret.
    pub secret_access_key: String,
    /// Sent as `x-amz-security-token` with temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why a request could not be signed (a header value that is not text, a URI the
/// signer refuses); never carries key material.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the request: {0}")]
pub struct SignError(String);

/// Signs `request` in place for `service` in `region` at `now`: adds `x-amz-date`,
/// `x-amz-security-token` (temporary credentials) and `authorization`. Every header
/// present is signed, so nothing may change them afterwards.
pub fn sign(
    request: &mut Request<Bytes>,
    keys: &Keys,
    (region, service): (&str, &str),
    now: SystemTime,
) -> Result<(), SignError> {
    sign_with(
        request,
        keys,
        (region, service),
        now,
        SigningSettings::default(),
    )
}

fn sign_with(
    request: &mut Request<Bytes>,
    keys: &Keys,
    (region, service): (&str, &str),
    now: SystemTime,
    settings: SigningSettings,
) -> Result<(), SignError> {
    let identity = aws_credential_types::Credentials::new(
        &keys.access_key_id,
        &keys.secret_access_key,
        keys.session_token.clone(),
        None,
        "switchyard",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| {
            value
                .to_str()
                .map(|value| (name.as_str(), value))
                .map_err(|_| SignError(format!("header {name} is not text")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| SignError(e.to_string()))?;
    let (instructions, _signature) = sigv4_sign(signable, &params)
        .map_err(|e| SignError(e.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// What a received `Authorization` header claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The access key id of the credential scope.
    pub access_key_id: String,
    /// The scope's region (the signing region).
    pub region: String,
    /// The scope's service.
    pub service: String,
}

/// Why a received request's signature is refused, in words safe to send back (AWS's own
/// `InvalidSignatureException` / `UnrecognizedClientException` messages say as much).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No SigV4 `authorization` or `x-amz-date`.
    #[error("missing or malformed SigV4 authorization")]
    Malformed,
    /// Signed with an access key other than the expected one.
    #[error("the security token included in the request is invalid")]
    UnknownKey,
    /// The signature does not match the request.
    #[error("the request signature we calculated does not match the signature you provided")]
    Mismatch,
}

/// Checks a received request's SigV4 signature against `keys` by signing the same
/// method, URI, signed headers and body again at the request's own `x-amz-date`.
/// Returns what it claimed (for the mock's stats: the signing region above all).
pub fn verify(request: &Request<Bytes>, keys: &Keys) -> Result<Claimed, VerifyError> {
    let text = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = text("authorization").ok_or(VerifyError::Malformed)?;
    let parsed = parse_authorization(&authorization).ok_or(VerifyError::Malformed)?;
    let date = text("x-amz-date").ok_or(VerifyError::Malformed)?;
    let now = parse_amz_date(&date).ok_or(VerifyError::Malformed)?;
    let claimed = Claimed {
        access_key_id: parsed.access_key_id,
        region: parsed.region,
        service: parsed.service,
    };
    if claimed.access_key_id != keys.access_key_id {
        return Err(VerifyError::UnknownKey);
    }
    let mut again = Request::builder()
        .method(request.method().clone())
        .uri(request.uri().clone());
    for name in &parsed.signed_headers {
        // The signer adds these itself, from the time and the credentials.
        if matches!(name.as_str(), "x-amz-date" | "x-amz-security-token") {
            continue;
        }
        if name == "host" && request.uri().authority().is_some() {
            continue;
        }
        for value in request.headers().get_all(name.as_str()) {
            again = again.header(name.as_str(), value.clone());
        }
    }
    let mut again = again
        .body(request.body().clone())
        .map_err(|_| VerifyError::Malformed)?;
    let session = Keys {
        session_token: text("x-amz-security-token"),
        ..keys.clone()
    };
    sign(
        &mut again,
        &session,
        (&claimed.region, &claimed.service),
        now,
    )
    .map_err(|_| VerifyError::Malformed)?;
    let expected = again
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_authorization)
        .ok_or(VerifyError::Malformed)?;
    if expected.signature == parsed.signature {
        Ok(claimed)
    } else {
        Err(VerifyError::Mismatch)
    }
}

struct Authorization {
    access_key_id: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=…`
fn parse_authorization(value: &str) -> Option<Authorization> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let access_key_id = scope.next()?.to_owned();
    let _date = scope.next()?;
    let region = scope.next()?.to_owned();
    let service = scope.next()?.to_owned();
    Some(Authorization {
        access_key_id,
        region,
        service,
        signed_headers: signed?.split(';').map(str::to_owned).collect(),
        signature: signature?.to_owned(),
    })
}

/// `20150830T123600Z` as a time.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    if date.len() != 8 || time.len() != 6 {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &date[..4],
        &date[4..6],
        &date[6..],
        &time[..2],
        &time[2..4],
        &time[4..]
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

#[cfg(test)]
mod tests {
    //! Vectors of AWS's SigV4 test suite (as the CRT and `aws-sigv4` ship it): the same
    //! inputs must give the published signatures.

    use super::*;
    use aws_sigv4::http_request::PayloadChecksumKind;

    fn example_keys(token: Option<&str>) -> Keys {
        Keys {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: token.map(str::to_owned),
        }
    }

    fn at(rfc3339: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc3339).unwrap()
    }

    fn authorization(request: &Request<Bytes>) -> &str {
        request.headers()["authorization"].to_str().unwrap()
    }

    /// `get-vanilla-with-session-token`: temporary credentials sign their token.
    #[test]
    fn vector_get_vanilla_with_session_token() {
        let mut request = Request::get("https://example.amazonaws.com/")
            .body(Bytes::new())
            .unwrap();
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        sign(
            &mut request,
            &example_keys(Some(token)),
            ("us-east-1", "service"),
            at("2015-08-30T12:36:00Z"),
        )
        .unwrap();
        assert_eq!(
            authorization(&request),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-security-token, \
             Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        );
        assert_eq!(request.headers()["x-amz-security-token"], token);
        assert_eq!(request.headers()["x-amz-date"], "20150830T123600Z");
    }

    /// `post-x-www-form-urlencoded`: the body is part of what is signed.
    #[test]
    fn vector_post_x_www_form_urlencoded_signs_the_body() {
        let build = |body: &'static str| {
            Request::post("https://example.amazonaws.com/")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("content-length", body.len())
                .body(Bytes::from_static(body.as_bytes()))
                .unwrap()
        };
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let mut request = build("Param1=value1");
        let when = at("2015-08-30T12:36:00Z");
        let scope = ("us-east-1", "service");
        sign_with(
            &mut request,
            &example_keys(None),
            scope,
            when,
            settings.clone(),
        )
        .unwrap();
        assert!(authorization(&request).ends_with(
            "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, \
             Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
        ));
        let mut other = build("Param1=value2");
        sign_with(&mut other, &example_keys(None), scope, when, settings).unwrap();
        assert_ne!(authorization(&other), authorization(&request));
    }

    /// `double-url-encode`: an ARN in the path is percent-encoded once by the caller and
    /// once more by SigV4, as Bedrock model ids are.
    #[test]
    fn vector_double_url_encode() {
        let mut request = Request::post(
            "https://lambda.us-east-2.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations",
        )
        .body(Bytes::new())
        .unwrap();
        sign(
            &mut request,
            &example_keys(None),
            ("us-east-2", "lambda"),
            at("2021-05-11T15:40:45Z"),
        )
        .unwrap();
        assert!(authorization(&request).ends_with(
            "SignedHeaders=host;x-amz-date, \
             Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804"
        ));
    }

    #[test]
    fn verify_accepts_its_own_signature_and_refuses_changes() {
        let keys = example_keys(Some("token"));
        let build = || {
            Request::post("http://127.0.0.1:9/model/anthropic.claude%3A0/converse")
                .header("content-type", "application/json")
                .header(
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                )
                .body(Bytes::from_static(b"{\"messages\":[]}"))
                .unwrap()
        };
        let mut request = build();
        sign(
            &mut request,
            &keys,
            ("eu-west-1", BEDROCK_SERVICE),
            SystemTime::now(),
        )
        .unwrap();
        let claimed = verify(&request, &keys).unwrap();
        assert_eq!(claimed.region, "eu-west-1");
        assert_eq!(claimed.service, "bedrock");
        let mut tampered = request.clone();
        *tampered.body_mut() = Bytes::from_static(b"{\"messages\":[1]}");
        assert_eq!(verify(&tampered, &keys), Err(VerifyError::Mismatch));
        let wrong = Keys {
            secret_access_key: "not-the-secret".to_owned(),
            ..keys.clone()
        };
        assert_eq!(verify(&request, &wrong), Err(VerifyError::Mismatch));
        let other = Keys {
            access_key_id: "AKIDOTHER".to_owned(),
            ..keys.clone()
        };
        assert_eq!(verify(&request, &other), Err(VerifyError::UnknownKey));
        assert_eq!(verify(&build(), &keys), Err(VerifyError::Malformed));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let shown = format!("{:?}", example_keys(Some("tok-secret")));
        assert!(
            !shown.contains("wJalr") && !shown.contains("tok-secret"),
            "{shown}"
        );
    }
}
