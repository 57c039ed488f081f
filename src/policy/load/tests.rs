use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::policy::request::{RequestSpec, RESERVED_PARAMS};
use crate::policy::spec::{
    ApiKind, AuthSpec, BreakerSpec, DurationStr, KeySource, PriceSpec, ProbeSpec, ProviderSpec,
    RateLimitSpec, RetryBudgetSpec, RouteSpec, Strategy as RouteStrategy, TargetSpec, TimeoutsSpec,
};

const POLICY: &str = r#"
providers:
  - name: openai
    api: openai
    baseUrl: https://api.openai.com/v1
    auth: {apiKey: {fromEnv: OPENAI_API_KEY}}
routes:
  - model: gpt-4o
    targets: [{provider: openai}]
"#;

fn rendered(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

fn decode_err(text: &str) -> Vec<String> {
    rendered(&decode(text).expect_err("the document must not decode"))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn decodes_bare_yaml_and_json() {
    let spec = decode(POLICY).expect("bare YAML decodes");
    assert_eq!(spec.providers[0].name, "openai");
    assert_eq!(spec.routes[0].targets[0].provider, "openai");
    let json = serde_json::to_string(&spec).expect("a spec serialises to JSON");
    assert_eq!(decode(&json).expect("JSON decodes"), spec);
}

#[test]
fn decodes_configmap_manifest() {
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: policy, namespace: ai}}\ndata:\n  policy.yaml: |\n{}",
        indent(POLICY)
    );
    assert_eq!(decode(&manifest), decode(POLICY));
}

#[test]
fn configmap_without_policy_key_is_an_error() {
    let manifest = "apiVersion: v1\nkind: ConfigMap\ndata: {other.yaml: x}\n";
    assert_eq!(
        decode_err(manifest),
        vec![r#"data."policy.yaml": missing: a ConfigMap carries the policy under this key"#]
    );
}

#[test]
fn configmap_policy_syntax_error_names_the_key() {
    let manifest = "kind: ConfigMap\ndata:\n  policy.yaml: \"routes: [\"\n";
    let errors = decode_err(manifest);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(r#"data."policy.yaml": invalid YAML: "#),
        "{errors:?}"
    );
}

#[test]
fn decodes_routing_policy_manifest() {
    let manifest = format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: RoutingPolicy\nmetadata: {{name: p}}\nspec:\n{}",
        indent(POLICY)
    );
    assert_eq!(decode(&manifest), decode(POLICY));
}

#[test]
fn routing_policy_of_another_version_is_an_error() {
    let manifest = "apiVersion: switchyard.dev/v2\nkind: RoutingPolicy\nspec: {}\n";
    assert_eq!(
        decode_err(manifest),
        vec![
            r#"apiVersion: expected "switchyard.dev/v1alpha1" for kind RoutingPolicy, found "switchyard.dev/v2""#
        ]
    );
}

#[test]
fn other_kinds_are_rejected() {
    assert_eq!(
        decode_err("apiVersion: v1\nkind: Secret\n"),
        vec![
            r#"kind: unsupported kind "Secret"; expected a policy document, a ConfigMap or a RoutingPolicy"#
        ]
    );
}

#[test]
fn empty_document_is_an_error() {
    assert_eq!(decode_err(""), vec!["the policy is empty"]);
    assert_eq!(
        decode_err("apiVersion: switchyard.dev/v1alpha1\nkind: RoutingPolicy\nspec:\n"),
        vec!["spec: the policy is empty"]
    );
}

#[test]
fn unknown_fields_reported_at_every_depth() {
    let text = r#"
extra: 1
providers:
  - name: openai
    api: openai
    baseURL: https://x
    baseUrl: https://api.openai.com/v1
    auth: {apiKey: {fromEnv: K, fromSecret: s}}
routes:
  - model: gpt-4o
    targets:
      - provider: openai
        circuitBreaker: {slowCall: {ratio: 0.5}}
circuitBreaker: {windw: 60s}
"#;
    assert_eq!(
        decode_err(text),
        vec![
            "extra: unknown field",
            "providers[0].baseURL: unknown field",
            "providers[0].auth.apiKey.fromSecret: unknown field",
            "routes[0].targets[0].circuitBreaker.slowCall.ratio: unknown field",
            "circuitBreaker.windw: unknown field",
        ]
    );
}

#[test]
fn type_error_has_its_path() {
    let text = POLICY.replace("targets:", "maxAttempts: x\n    targets:");
    assert_eq!(
        decode_err(&text),
        vec![r#"routes[0].maxAttempts: invalid type: string "x", expected u32"#]
    );
    let text = POLICY.replace("api: openai", "api: cohere");
    let errors = decode_err(&text);
    assert!(
        errors[0].starts_with("providers[0].api: unknown variant `cohere`"),
        "{errors:?}"
    );
}

#[test]
fn yaml_syntax_error_reports_line_and_column() {
    let errors = decode_err("providers:\n  - name: a\n   bad: [\n");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("invalid YAML: "), "{errors:?}");
    assert!(errors[0].contains("line 3 column"), "{errors:?}");
}

#[test]
fn decode_and_validate_reports_five_problems_at_once() {
    let text = r#"
providers:
  - name: openai
    api: openai
    baseUrl: api.openai.com
    auth: {apiKey: {fromEnv: K}}
    timeouts: {firstByte: 0s}
routes:
  - model: gpt-4o
    targets: [{provider: opena}]
    maxAttempts: 0
circuitBreaker: {slowCall: {rate: 1.5}}
"#;
    let errors = decode_and_validate(text).expect_err("five problems");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "providers[0].baseUrl",
            "providers[0].timeouts.firstByte",
            "routes[0].maxAttempts",
            "routes[0].targets[0].provider",
            "circuitBreaker.slowCall.rate",
        ]
    );
    assert_eq!(
        errors[3].to_string(),
        r#"routes[0].targets[0].provider: no provider named "opena" (did you mean "openai"?)"#
    );
}

#[test]
fn decode_and_validate_reports_unknown_fields_with_rule_violations() {
    let text = POLICY.replace("provider: openai", "provider: x, wieght: 2");
    assert_eq!(
        rendered(&decode_and_validate(&text).expect_err("two problems")),
        vec![
            "routes[0].targets[0].wieght: unknown field",
            r#"routes[0].targets[0].provider: no provider named "x""#,
        ]
    );
}

#[test]
fn embedded_default_is_valid_and_routes_each_inbound_kind() {
    let spec = decode(EMBEDDED_DEFAULT).expect("the default decodes");
    assert_eq!(validate(&spec), vec![]);
    assert_eq!(embedded_default(), spec);
    let routes: Vec<_> = spec
        .routes
        .iter()
        .map(|r| {
            (
                r.model.as_str(),
                r.inbound,
                r.targets[0].provider.as_str(),
                r.targets[0].model.clone(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            ("*", Some(ApiKind::Openai), "openai", None),
            ("*", Some(ApiKind::Anthropic), "anthropic", None),
        ]
    );
    let key = |i: usize| {
        spec.providers[i]
            .auth
            .api_key
            .clone()
            .and_then(|k| k.from_env)
    };
    assert_eq!(key(0).as_deref(), Some("OPENAI_API_KEY"));
    assert_eq!(key(1).as_deref(), Some("ANTHROPIC_API_KEY"));
}

/// A file in the system temp dir, unique to this process and test, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("switchyard-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("the temp dir is writable");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn report_prints_ok_or_each_problem_per_file() {
    let good = TempFile::new("good.yaml", POLICY);
    let bad = TempFile::new(
        "bad.yaml",
        &POLICY.replace("provider: openai", "provider: x"),
    );
    let missing = good.0.with_extension("absent");
    let mut out = Vec::new();
    let paths = [good.0.clone(), bad.0.clone(), missing.clone()];
    let all_valid = report(&paths, &mut out).expect("writing to a Vec succeeds");
    assert!(!all_valid);
    let out = String::from_utf8(out).expect("the report is UTF-8");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("{}: ok", good.0.display()));
    assert_eq!(
        lines[1],
        format!(
            r#"{}: routes[0].targets[0].provider: no provider named "x""#,
            bad.0.display()
        )
    );
    assert!(lines[2].starts_with(&format!("{}: cannot read: ", missing.display())));
    assert_eq!(lines.len(), 3);

    let mut out = Vec::new();
    assert!(report(std::slice::from_ref(&good.0), &mut out).expect("writing to a Vec succeeds"));
}

#[test]
fn load_file_distinguishes_io_from_invalid() {
    let bad = TempFile::new("invalid.yaml", "routes: []\n");
    match load_file(&bad.0) {
        Err(PolicyError::Invalid(errors)) => {
            assert_eq!(
                rendered(&errors),
                vec!["routes: at least one route is required"]
            )
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    let missing = bad.0.with_extension("absent");
    assert!(matches!(load_file(&missing), Err(PolicyError::Io { .. })));
}

fn duration(units: &'static [&'static str], max: u32) -> impl Strategy<Value = DurationStr> {
    (1..max, prop::sample::select(units)).prop_map(|(n, unit)| DurationStr(format!("{n}{unit}")))
}

fn rate() -> impl Strategy<Value = f64> {
    (1u32..=1000).prop_map(|n| f64::from(n) / 1000.0)
}

fn provider(name: String) -> impl Strategy<Value = ProviderSpec> {
    let api = prop::sample::select(vec![
        ApiKind::Openai,
        ApiKind::Anthropic,
        ApiKind::AzureOpenai,
    ]);
    let auth = prop_oneof![
        "[A-Z_]{1,12}".prop_map(|v| AuthSpec {
            api_key: Some(KeySource {
                from_env: Some(v),
                from_file: None
            }),
            passthrough: None,
            google: None,
            aws: None,
        }),
        "/[a-z/]{1,12}".prop_map(|f| AuthSpec {
            api_key: Some(KeySource {
                from_env: None,
                from_file: Some(f)
            }),
            passthrough: None,
            google: None,
            aws: None,
        }),
        Just(AuthSpec {
            api_key: None,
            passthrough: Some(true),
            google: None,
            aws: None,
        }),
    ];
    let headers = prop::collection::btree_map("x-[a-z0-9-]{1,10}", "[a-zA-Z0-9 ._/-]{0,16}", 0..3);
    let timeouts = (
        prop::option::of(duration(&["ms", "s"], 10_000)),
        prop::option::of(duration(&["s", "m"], 100)),
    )
        .prop_map(|(connect, idle)| TimeoutsSpec {
            connect,
            first_byte: None,
            idle,
        });
    (
        api,
        "(http|https)://[a-z]{1,10}(:[1-9][0-9]{0,3})?(/[a-z0-9]{1,5})?",
        auth,
        headers,
        timeouts,
        0u32..100,
    )
        .prop_map(
            move |(api, base_url, auth, headers, timeouts, max_concurrency)| ProviderSpec {
                name: name.clone(),
                api,
                base_url,
                auth,
                headers,
                timeouts,
                max_concurrency,
                api_version: (api == ApiKind::AzureOpenai).then(|| "2024-10-21".to_owned()),
                region: None,
                probe: None,
                limits: None,
                tls: None,
                wires: None,
                project: None,
            },
        )
}

fn target(names: Vec<String>) -> impl Strategy<Value = TargetSpec> {
    let price = (0u32..100_000, 0u32..100_000).prop_map(|(i, o)| PriceSpec {
        input_per_mtok: f64::from(i) / 100.0,
        output_per_mtok: f64::from(o) / 100.0,
    });
    let breaker = (prop::option::of(rate()), prop::option::of(1u32..10)).prop_map(
        |(failure_rate, half_open_calls)| BreakerSpec {
            failure_rate,
            half_open_calls,
            ..Default::default()
        },
    );
    (
        prop::sample::select(names),
        prop::option::of("[a-z0-9.-]{1,12}"),
        prop::option::of(1u32..100),
        prop::option::of(price),
        prop::option::of(breaker),
        prop::option::of(duration(&["s", "m"], 60)),
        prop::option::of(request()),
    )
        .prop_map(
            |(provider, model, weight, price, circuit_breaker, probe, request)| TargetSpec {
                provider,
                model,
                weight,
                price,
                circuit_breaker,
                probe: probe.map(|interval| ProbeSpec { interval }),
                request,
            },
        )
}

/// A valid adaptation: a prefix (which may need YAML quoting) and params, `null` among them.
fn request() -> impl Strategy<Value = RequestSpec> {
    let value = prop_oneof![
        Just(serde_json::Value::Null),
        (0u32..200).prop_map(|n| serde_json::json!(f64::from(n) / 100.0)),
        "[a-z ]{1,8}".prop_map(serde_json::Value::from),
    ];
    (
        prop::option::of("[A-Za-z:#' ]{0,10}[A-Za-z]"),
        prop::collection::btree_map("[a-z_]{1,12}", value, 1..4),
    )
        .prop_map(|(system_prefix, mut params)| {
            params.retain(|k, _| !RESERVED_PARAMS.contains(&k.as_str()));
            params.insert("temperature".to_owned(), serde_json::json!(0.5));
            RequestSpec {
                system_prefix,
                params,
            }
        })
}

fn valid_spec() -> impl Strategy<Value = PolicySpec> {
    prop::collection::btree_set("[a-z0-9-]{1,10}", 1..4)
        .prop_flat_map(|names| {
            let providers: Vec<_> = names.iter().cloned().map(provider).collect();
            let names: Vec<String> = names.into_iter().collect();
            let strategy = prop::sample::select(vec![
                RouteStrategy::Failover,
                RouteStrategy::Weighted,
                RouteStrategy::Cost,
            ]);
            let route = (
                strategy,
                prop::collection::vec(target(names), 1..4),
                prop::option::of(1u32..5),
                prop::option::of(duration(&["s", "m"], 100)),
            );
            let routes = prop::collection::btree_map("[a-z0-9.*-]{1,10}", route, 1..4);
            (providers, routes)
        })
        .prop_flat_map(|(providers, routes)| {
            let routes: Vec<RouteSpec> = routes
                .into_iter()
                .map(
                    |(model, (strategy, targets, max_attempts, timeout))| RouteSpec {
                        model,
                        inbound: None,
                        strategy,
                        targets,
                        max_attempts,
                        timeout,
                        max_tokens: None,
                        hedge: None,
                        max_wait: None,
                    },
                )
                .collect();
            let breaker = (
                prop::option::of(duration(&["s"], 600)),
                prop::option::of(rate()),
                prop::option::of(duration(&["ms", "s"], 1000)),
                prop::option::of(duration(&["h"], 10)),
            )
                .prop_map(|(window, failure_rate, open_for, max_open_for)| {
                    BreakerSpec {
                        window,
                        failure_rate,
                        open_for,
                        max_open_for,
                        ..Default::default()
                    }
                });
            let budget = (
                prop::option::of(rate()),
                prop::option::of((0u32..100).prop_map(f64::from)),
            )
                .prop_map(|(ratio, min_per_second)| RetryBudgetSpec {
                    ratio,
                    min_per_second,
                });
            let cooldown =
                prop::option::of(duration(&["ms", "s"], 1000)).prop_map(|default_cooldown| {
                    RateLimitSpec {
                        default_cooldown,
                        max_cooldown: Some("2h".into()),
                    }
                });
            (
                Just(providers),
                Just(routes),
                breaker,
                cooldown,
                budget,
                any::<bool>(),
            )
        })
        .prop_map(
            |(providers, routes, circuit_breaker, rate_limit, retry_budget, capture)| {
                let mut spec = PolicySpec {
                    providers,
                    routes,
                    circuit_breaker,
                    rate_limit,
                    retry_budget,
                    ..Default::default()
                };
                spec.telemetry.capture_content = capture;
                spec
            },
        )
}

proptest! {
    #[test]
    fn decode_never_panics(text in any::<String>()) {
        let _ = decode(&text);
    }

    #[test]
    fn decode_never_panics_on_yaml_like_text(text in "[a-zA-Z0-9:{}\\[\\],.*&!|>#'\" \n-]{0,200}") {
        let _ = decode(&text);
        let _ = decode_and_validate(&format!("kind: ConfigMap\ndata: {{policy.yaml: {text:?}}}"));
    }

    #[test]
    fn valid_spec_round_trips_through_yaml(spec in valid_spec()) {
        prop_assert_eq!(validate(&spec), vec![]);
        let text = serde_yaml::to_string(&spec).expect("a spec serialises to YAML");
        prop_assert_eq!(decode(&text), Ok(spec));
    }
}

#[test]
fn headers_map_keys_keep_their_case() {
    let text = POLICY.replace("auth:", "headers: {OpenAI-Organization: org-1}\n    auth:");
    let spec = decode(&text).expect("headers decode");
    let expected: BTreeMap<String, String> =
        [("OpenAI-Organization".to_owned(), "org-1".to_owned())].into();
    assert_eq!(spec.providers[0].headers, expected);
}
