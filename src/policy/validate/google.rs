//! Validation of what only Google's kinds (`gemini`, `vertex`) take: a Vertex project and
//! region, Google credentials, and no passthrough (an app's OpenAI or Anthropic key is
//! never a Google credential).

use super::Validator;
use crate::policy::spec::{ApiKind, ProviderSpec};

impl Validator {
    /// `region` and `project` belong to `vertex` (and are required there); `auth.google`
    /// belongs to `vertex`; `passthrough` is refused for both Google kinds.
    pub(super) fn google(&mut self, at: &str, p: &ProviderSpec) {
        let vertex = p.api == ApiKind::Vertex;
        let google_kind = matches!(p.api, ApiKind::Gemini | ApiKind::Vertex);
        for (name, value, pattern_ok) in [
            ("region", &p.region, is_region as fn(&str) -> bool),
            ("project", &p.project, is_project),
        ] {
            let path = format!("{at}.{name}");
            match value {
                None if vertex => self.err(path, "required for api vertex"),
                None => {}
                // Where else a region may be (Bedrock) is checked with the cloud fields.
                Some(_) if !vertex && name == "region" => {}
                Some(_) if !vertex => self.err(path, "only allowed for api vertex"),
                Some(v) if !pattern_ok(v) => self.err(
                    path,
                    format!("{v:?} is not a Google Cloud {name} (lower-case letters, digits, -)"),
                ),
                Some(_) => {}
            }
        }
        if p.auth.google.is_some() && !vertex {
            self.err(
                format!("{at}.auth.google"),
                "only allowed for api vertex (Google credentials); gemini takes an apiKey",
            );
        }
        if google_kind && p.auth.passthrough == Some(true) {
            self.err(
                format!("{at}.auth.passthrough"),
                format!(
                    "not allowed for api {}: an app's key is never sent to Google",
                    p.api.as_str()
                ),
            );
        }
    }
}

/// `europe-west4`, `us-central1`, `global`: the region is also part of the host name.
fn is_region(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Project ids are lower-case letters, digits and hyphens (older ones `domain:id`).
fn is_project(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | ':'))
}
