//! Policy decode + validate in all three document shapes: the first byte picks the shape
//! (a bare policy, the same text as a ConfigMap's `policy.yaml`, or as a `RoutingPolicy`'s
//! `spec`). Never a panic; a policy that validates also decodes, decodes to the same
//! spec in every shape, and compiles.

use switchyard::metrics::Metrics;
use switchyard::policy::spec::PolicySpec;
use switchyard::policy::{decode, decode_and_validate};
use switchyard::provider::google::{GoogleCredentials, GoogleEnv};
use switchyard::routing::{CompileContext, Policy};
use switchyard::target::Registry;
use switchyard::upstream::Upstreams;

/// Indents `text` under a YAML key as a block.
fn nest(text: &str, indent: &str) -> String {
    text.lines().map(|l| format!("{indent}{l}\n")).collect()
}

fn configmap(text: &str) -> String {
    let quoted = serde_json::to_string(text).expect("a string serialises");
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: p}}\ndata:\n  policy.yaml: {quoted}\n"
    )
}

fn routing_policy(text: &str) -> String {
    format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: RoutingPolicy\nmetadata: {{name: p}}\nspec:\n{}",
        nest(text, "  ")
    )
}

/// Checks one input.
pub fn run(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let doc = match shape % 3 {
        0 => text.to_owned(),
        1 => configmap(text),
        _ => routing_policy(text),
    };
    let decoded = decode(&doc);
    let Ok(valid) = decode_and_validate(&doc) else {
        return;
    };
    let decoded = decoded.expect("a policy that validates also decodes");
    assert_eq!(decoded, valid);
    if shape % 3 == 0 && !text.contains("kind") {
        // The same bare policy in a ConfigMap decodes to the same spec (a RoutingPolicy
        // needs the text to be block YAML, which a bare document need not be; a text that
        // may be a manifest itself is not a bare policy).
        assert_eq!(
            decode_and_validate(&configmap(text)).ok().as_ref(),
            Some(&valid)
        );
    }
    compile(valid);
}

/// What start-up and every reload do with a valid spec: compiling must not panic.
fn compile(spec: PolicySpec) {
    let (registry, upstreams, metrics) =
        (Registry::default(), Upstreams::default(), Metrics::new());
    let google = GoogleCredentials::new(GoogleEnv::default());
    let aws = switchyard::aws::Chain::default();
    let ctx = CompileContext {
        registry: &registry,
        upstreams: &upstreams,
        metrics: &metrics,
        google: &google,
        aws: &aws,
    };
    Policy::compile(spec, 1, &ctx);
}
