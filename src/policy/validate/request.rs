//! Validation of `targets[].request`: what a per-target adaptation may not touch.

use super::{path_key, FieldError};
use crate::policy::request::{RequestSpec, RESERVED_PARAMS};

impl RequestSpec {
    /// Every problem with this adaptation, at `at` (`routes[0].targets[1].request`).
    pub fn validate(&self, at: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self
            .system_prefix
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            errors.push(FieldError::new(
                format!("{at}.systemPrefix"),
                "must not be empty (omit it to keep the system prompt as the app sent it)",
            ));
        }
        for key in self.params.keys() {
            if RESERVED_PARAMS.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    format!("{at}.params.{}", path_key(key)),
                    format!(
                        "{key:?} may not be set per target ({} belong to the app's call; \
                         use systemPrefix for the system prompt)",
                        RESERVED_PARAMS.join(", ")
                    ),
                ));
            }
        }
        if self.system_prefix.is_none() && self.params.is_empty() {
            errors.push(FieldError::new(
                at,
                "names neither systemPrefix nor params (omit it to send the app's call unchanged)",
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn spec(yaml: &str) -> RequestSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn reserved_params_and_empty_prefixes_are_refused_with_their_paths() {
        let errors = spec("{systemPrefix: ' ', params: {model: x, stream: true, temperature: 0.2, messages: [], input: null, system: s}}")
            .validate("routes[0].targets[1].request");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "routes[0].targets[1].request.systemPrefix",
                "routes[0].targets[1].request.params.input",
                "routes[0].targets[1].request.params.messages",
                "routes[0].targets[1].request.params.model",
                "routes[0].targets[1].request.params.stream",
                "routes[0].targets[1].request.params.system",
            ]
        );
        assert!(errors[1].message.contains("systemPrefix"));
    }

    #[test]
    fn a_prefix_params_with_nulls_are_accepted_and_an_empty_request_is_not() {
        let ok = spec("{systemPrefix: Answer in JSON., params: {temperature: 0.2, top_p: null}}");
        assert_eq!(ok.validate("r"), []);
        assert_eq!(ok.params["top_p"], Value::Null);
        assert_eq!(spec("{}").validate("r")[0].path, "r");
    }
}
