//! The one-line summary logged on every reload: routes and providers added, removed
//! and changed, by name. Invariant: names come from the specs only (never keys).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::policy::spec::PolicySpec;

/// Summarises what changed from `old` (none at the first load) to `new`, e.g.
/// `routes +[gpt-5] -[] ~[gpt-4o]; providers +[] -[azure] ~[]`.
pub fn summary(old: Option<&PolicySpec>, new: &PolicySpec) -> String {
    let empty = PolicySpec::default();
    let old = old.unwrap_or(&empty);
    let routes = changes(
        old.routes.iter().map(|r| (r.model.as_str(), r)),
        new.routes.iter().map(|r| (r.model.as_str(), r)),
    );
    let providers = changes(
        old.providers.iter().map(|p| (p.name.as_str(), p)),
        new.providers.iter().map(|p| (p.name.as_str(), p)),
    );
    let mut out = format!("routes {routes}; providers {providers}");
    let others_changed = old.circuit_breaker != new.circuit_breaker
        || old.rate_limit != new.rate_limit
        || old.retry_budget != new.retry_budget
        || old.telemetry != new.telemetry;
    if others_changed {
        let _ = write!(out, "; defaults changed");
    }
    out
}

/// `+[added] -[removed] ~[changed]` between two keyed lists.
fn changes<'a, T: PartialEq + 'a>(
    old: impl Iterator<Item = (&'a str, &'a T)>,
    new: impl Iterator<Item = (&'a str, &'a T)>,
) -> String {
    let old: BTreeMap<_, _> = old.collect();
    let new: BTreeMap<_, _> = new.collect();
    let added: Vec<_> = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .copied()
        .collect();
    let removed: Vec<_> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .copied()
        .collect();
    let changed: Vec<_> = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| *k)
        .collect();
    format!(
        "+[{}] -[{}] ~[{}]",
        added.join(","),
        removed.join(","),
        changed.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decode;

    fn spec(text: &str) -> PolicySpec {
        decode(text).expect("test policy decodes")
    }

    const BASE: &str = r#"
providers:
  - {name: a, api: openai, baseUrl: "http://127.0.0.1:1/v1", auth: {apiKey: {fromEnv: K}}}
  - {name: b, api: openai, baseUrl: "http://127.0.0.1:2/v1", auth: {apiKey: {fromEnv: K}}}
routes:
  - {model: m1, targets: [{provider: a}]}
  - {model: m2, targets: [{provider: b}]}
"#;

    #[test]
    fn names_added_removed_and_changed() {
        let new = spec(
            r#"
providers:
  - {name: a, api: openai, baseUrl: "http://127.0.0.1:9/v1", auth: {apiKey: {fromEnv: K}}}
  - {name: c, api: openai, baseUrl: "http://127.0.0.1:3/v1", auth: {apiKey: {fromEnv: K}}}
routes:
  - {model: m1, targets: [{provider: c}]}
  - {model: m3, targets: [{provider: a}]}
"#,
        );
        assert_eq!(
            summary(Some(&spec(BASE)), &new),
            "routes +[m3] -[m2] ~[m1]; providers +[c] -[b] ~[a]"
        );
    }

    #[test]
    fn first_load_adds_everything() {
        assert_eq!(
            summary(None, &spec(BASE)),
            "routes +[m1,m2] -[] ~[]; providers +[a,b] -[] ~[]"
        );
    }
}
