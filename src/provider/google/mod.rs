//! Google's Gemini API and Vertex AI: where a model's generateContent lives, and the
//! credentials Vertex calls carry (`auth.rs`, `account.rs`).
//!
//! Invariant: a model id only ever fills one path segment (the caller percent-encodes
//! it), and the key or token never goes into a URL.

mod account;
mod auth;
mod error;

pub use auth::{Fetch, FetchFuture, GoogleAuth, GoogleCredentials, GoogleEnv};
pub use error::CredentialError;

/// The Gemini API's host root when `baseUrl` is left out.
pub const GEMINI_HOST: &str = "https://generativelanguage.googleapis.com";

/// The OAuth scope Vertex AI calls need.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Vertex AI's host root for `region` when `baseUrl` is left out (`global` has no
/// region prefix).
pub fn vertex_host(region: &str) -> String {
    if region == "global" {
        "https://aiplatform.googleapis.com".to_owned()
    } else {
        format!("https://{region}-aiplatform.googleapis.com")
    }
}

/// Where one call goes under a Google host root: Gemini's `/v1beta/models/{model}` or
/// Vertex's `/v1/projects/{project}/locations/{region}/publishers/google/models/{model}`,
/// then `:generateContent` or `:streamGenerateContent?alt=sse` (without `alt=sse` the
/// stream is one JSON array, not events). `model` is already one encoded path segment.
pub fn model_path(vertex: Option<(&str, &str)>, model: &str, stream: bool) -> String {
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    match vertex {
        None => format!("/v1beta/models/{model}:{method}"),
        Some((project, region)) => format!(
            "/v1/projects/{project}/locations/{region}/publishers/google/models/{model}:{method}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_each_api() {
        assert_eq!(
            model_path(None, "gemini-2.5-flash", false),
            "/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            model_path(Some(("p-1", "europe-west4")), "gemini-2.5-pro", true),
            "/v1/projects/p-1/locations/europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            vertex_host("europe-west4"),
            "https://europe-west4-aiplatform.googleapis.com"
        );
        assert_eq!(vertex_host("global"), "https://aiplatform.googleapis.com");
    }
}
