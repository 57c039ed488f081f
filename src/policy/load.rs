//! Policy decoding: text in any of the three accepted shapes (a bare policy, a ConfigMap
//! manifest, a `RoutingPolicy` manifest) to a [`PolicySpec`]. Invariant: a policy comes
//! out only if the text had no unknown fields, and (for `decode_and_validate` and
//! `load_file`) only if it also passed [`validate`]; otherwise every problem found is
//! returned with its field path.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::spec::PolicySpec;
use super::validate::{path_key, validate, FieldError};

/// The ConfigMap key that holds the policy text.
const CONFIGMAP_KEY: &str = "policy.yaml";
/// The only `RoutingPolicy` version this build understands.
const API_VERSION: &str = "switchyard.dev/v1alpha1";
/// The policy used when no source is given (DESIGN §3 "Embedded default").
const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

/// Why a policy file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The text decoded badly or failed validation; every problem is listed.
    #[error("invalid policy: {}", join(.0))]
    Invalid(Vec<FieldError>),
}

fn join(errors: &[FieldError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// Decodes a policy from a bare policy document (YAML or JSON), a ConfigMap manifest
/// (key `policy.yaml`) or a `RoutingPolicy` manifest (its `spec`). Unknown fields are
/// errors, all reported at once; field paths are relative to the policy itself, so they
/// read the same whichever shape carried it. Does not validate: see [`decode_and_validate`].
pub fn decode(text: &str) -> Result<PolicySpec, Vec<FieldError>> {
    match decode_lenient(text)? {
        (spec, unknown) if unknown.is_empty() => Ok(spec),
        (_, unknown) => Err(unknown),
    }
}

/// Decodes as [`decode`] does, then validates; the single path used by `validate`,
/// start-up and every live reload, so they can never disagree about a policy. Unknown
/// fields and validation problems are reported together.
pub fn decode_and_validate(text: &str) -> Result<PolicySpec, Vec<FieldError>> {
    let (spec, mut errors) = decode_lenient(text)?;
    errors.extend(validate(&spec));
    if errors.is_empty() {
        Ok(spec)
    } else {
        Err(errors)
    }
}

/// A policy that decoded, and the unknown fields that were skipped to get it.
type Lenient = Result<(PolicySpec, Vec<FieldError>), Vec<FieldError>>;

/// Finds the policy in whichever shape carries it. `Err` means no policy could be read
/// at all; `Ok` may still list unknown fields, so that validation can report alongside.
fn decode_lenient(text: &str) -> Lenient {
    let doc = parse_yaml(text, "")?;
    let Some(kind) = doc.get("kind") else {
        return decode_policy(doc, "");
    };
    match kind.as_str() {
        Some("ConfigMap") => {
            let key_path = format!("data.{}", path_key(CONFIGMAP_KEY));
            match doc.get("data").and_then(|data| data.get(CONFIGMAP_KEY)) {
                Some(Value::String(policy)) => {
                    decode_policy(parse_yaml(policy, &key_path)?, &key_path)
                }
                Some(_) => Err(vec![FieldError::new(
                    key_path,
                    "must be a string holding the policy YAML",
                )]),
                None => Err(vec![FieldError::new(
                    key_path,
                    "missing: a ConfigMap carries the policy under this key",
                )]),
            }
        }
        Some("RoutingPolicy") => {
            let version = doc.get("apiVersion").and_then(Value::as_str);
            if version != Some(API_VERSION) {
                return Err(vec![FieldError::new(
                    "apiVersion",
                    format!(
                        "expected {API_VERSION:?} for kind RoutingPolicy, found {}",
                        version.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"))
                    ),
                )]);
            }
            match doc.get("spec") {
                Some(spec) => decode_policy(spec.clone(), "spec"),
                None => Err(vec![FieldError::new(
                    "spec",
                    "missing: a RoutingPolicy carries the policy here",
                )]),
            }
        }
        other => {
            let shown = other.map_or_else(|| "(not a string)".to_owned(), |k| format!("{k:?}"));
            Err(vec![FieldError::new(
                "kind",
                format!(
                    "unsupported kind {shown}; \
                     expected a policy document, a ConfigMap or a RoutingPolicy"
                ),
            )])
        }
    }
}

/// Reads, decodes and validates a policy file (a mounted ConfigMap, or local use).
pub fn load_file(path: &Path) -> Result<PolicySpec, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode_and_validate(&text).map_err(PolicyError::Invalid)
}

/// The built-in policy for `switchyard run` without a policy source: OpenAI-format calls
/// go to OpenAI and Anthropic-format calls to Anthropic, keys from the usual variables.
pub fn embedded_default() -> PolicySpec {
    decode_and_validate(EMBEDDED_DEFAULT).expect("the embedded default policy is valid (tested)")
}

/// The `switchyard validate FILE...` command: prints `PATH: ok` or one line per problem
/// (`PATH: field.path: message`) on stdout, and returns whether every file was valid.
pub fn run_validate(paths: &[PathBuf]) -> bool {
    report(paths, &mut io::stdout().lock()).unwrap_or(false)
}

/// [`run_validate`] with the output stream given, so it can be tested.
pub fn report(paths: &[PathBuf], out: &mut dyn Write) -> io::Result<bool> {
    let mut all_valid = true;
    for path in paths {
        let shown = path.display();
        match load_file(path) {
            Ok(_) => writeln!(out, "{shown}: ok")?,
            Err(PolicyError::Io { source, .. }) => {
                all_valid = false;
                writeln!(out, "{shown}: cannot read: {source}")?;
            }
            Err(PolicyError::Invalid(errors)) => {
                all_valid = false;
                for error in errors {
                    writeln!(out, "{shown}: {error}")?;
                }
            }
        }
    }
    Ok(all_valid)
}

/// Parses YAML (JSON included); a syntax error carries its line and column, under `at`
/// (the field that held the text, or empty for the document itself).
fn parse_yaml(text: &str, at: &str) -> Result<Value, Vec<FieldError>> {
    serde_yaml::from_str(text).map_err(|e| vec![FieldError::new(at, format!("invalid YAML: {e}"))])
}

/// Deserialises the policy itself, collecting every unknown field (with its path) and
/// the first type error (with its path). `at` names where the policy sat, for an empty one.
fn decode_policy(doc: Value, at: &str) -> Lenient {
    if doc.is_null() {
        return Err(vec![FieldError::new(at, "the policy is empty")]);
    }
    let mut errors = Vec::new();
    let result = {
        let mut unknown = |path: serde_ignored::Path<'_>| {
            errors.push(FieldError::new(ignored_path(&path), "unknown field"));
        };
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(doc, &mut unknown))
    };
    match result {
        Ok(spec) => Ok((spec, errors)),
        Err(e) => {
            errors.push(FieldError::new(
                tracked_path(e.path()),
                e.inner().to_string(),
            ));
            Err(errors)
        }
    }
}

/// Renders a path from `serde_ignored` as users write it: `routes[0].targets[1].foo`.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => join_key(ignored_path(parent), key),
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

/// Renders a path from `serde_path_to_error` the same way as [`ignored_path`].
fn tracked_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment as S;
    path.iter()
        .fold(String::new(), |acc, segment| match segment {
            S::Seq { index } => format!("{acc}[{index}]"),
            S::Map { key } | S::Enum { variant: key } => join_key(acc, key),
            S::Unknown if acc.is_empty() => "?".to_owned(),
            S::Unknown => format!("{acc}.?"),
        })
}

fn join_key(parent: String, key: &str) -> String {
    if parent.is_empty() {
        path_key(key)
    } else {
        format!("{parent}.{}", path_key(key))
    }
}

#[cfg(test)]
mod tests;
