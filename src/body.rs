//! The one response body type every handler returns, so the listener serves proxied
//! streams, buffered replies and the sidecar's own errors alike.

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};

/// Errors a response body can end with (a cut upstream, mostly).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: boxed once per response, never per chunk.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
