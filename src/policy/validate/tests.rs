use super::*;
use crate::policy::load::decode;
use crate::policy::spec::{HedgeSpec, KeySource, PriceSpec, SlowCallSpec};

const VALID: &str = r#"
providers:
  - name: openai
    api: openai
    baseUrl: https://api.openai.com/v1
    auth: {apiKey: {fromEnv: OPENAI_API_KEY}}
    headers: {OpenAI-Organization: org-1}
    timeouts: {connect: 2s, firstByte: 30s, idle: 60s}
  - name: anthropic
    api: anthropic
    baseUrl: https://api.anthropic.com
    auth: {apiKey: {fromFile: /etc/switchyard/keys/anthropic}}
  - name: azure
    api: azure-openai
    baseUrl: https://example.openai.azure.com
    apiVersion: "2024-10-21"
    auth: {passthrough: true}
routes:
  - model: gpt-4o
    strategy: weighted
    targets:
      - provider: openai
        model: gpt-4o
        weight: 3
        price: {inputPerMTok: 2.5, outputPerMTok: 10}
        circuitBreaker: {openFor: 10s}
      - provider: anthropic
        model: claude-sonnet-4-5
    maxAttempts: 2
    timeout: 10m
  - model: "*"
    inbound: openai
    targets: [{provider: openai}]
  - model: "*"
    inbound: anthropic
    targets: [{provider: anthropic}]
circuitBreaker:
  window: 60s
  minimumCalls: 10
  failureRate: 0.2
  consecutiveFailures: 5
  slowCall: {firstByte: 20s, rate: 0.5}
  openFor: 30s
  maxOpenFor: 5m
  halfOpenCalls: 3
rateLimit: {defaultCooldown: 5s, maxCooldown: 5m}
retryBudget: {ratio: 0.2, minPerSecond: 10}
"#;

fn valid() -> PolicySpec {
    decode(VALID).expect("the test policy decodes")
}

/// Applies `change` to the valid policy and returns the rendered errors.
fn errors_after(change: impl FnOnce(&mut PolicySpec)) -> Vec<String> {
    let mut spec = valid();
    change(&mut spec);
    validate(&spec).iter().map(ToString::to_string).collect()
}

fn assert_one(change: impl FnOnce(&mut PolicySpec), expected: &str) {
    assert_eq!(errors_after(change), vec![expected.to_owned()]);
}

#[test]
fn valid_policy_has_no_errors() {
    assert_eq!(validate(&valid()), vec![]);
}

#[test]
fn field_error_display_is_path_then_message() {
    assert_eq!(FieldError::new("a.b", "bad").to_string(), "a.b: bad");
    assert_eq!(FieldError::new("", "bad").to_string(), "bad");
}

#[test]
fn at_least_one_route() {
    assert_one(
        |s| s.routes.clear(),
        "routes: at least one route is required",
    );
}

#[test]
fn provider_names_match_pattern() {
    assert_one(
        |s| s.providers[2].name = "Azure_1".into(),
        r#"providers[2].name: "Azure_1" must match [a-z0-9-]+"#,
    );
    assert!(errors_after(|s| s.providers[2].name = "azure-2".into()).is_empty());
}

#[test]
fn provider_names_unique() {
    assert_one(
        |s| s.providers[2].name = "openai".into(),
        r#"providers[2].name: duplicate provider name "openai" (first at providers[0])"#,
    );
}

#[test]
fn base_url_is_absolute_http() {
    for bad in ["api.openai.com/v1", "ftp://host/x", "/v1"] {
        let errors = errors_after(|s| s.providers[0].base_url = bad.into());
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(
            errors[0].starts_with("providers[0].baseUrl: "),
            "{errors:?}"
        );
    }
    assert_one(
        |s| s.providers[0].base_url = "https://user:sk-secret@h/v1".into(),
        "providers[0].baseUrl: must not carry credentials (user:key@); use auth.apiKey",
    );
    assert_one(
        |s| s.providers[0].base_url = "not a url".into(),
        r#"providers[0].baseUrl: "not a url" is not a URL (invalid uri character)"#,
    );
    assert_one(
        |s| s.providers[0].base_url = "https://h/v1?x=1".into(),
        r#"providers[0].baseUrl: "https://h/v1?x=1" must not carry a query string"#,
    );
    assert!(errors_after(|s| s.providers[0].base_url = "http://127.0.0.1:8080".into()).is_empty());
}

#[test]
fn auth_exactly_one_of_api_key_or_passthrough() {
    assert_one(
        |s| s.providers[0].auth = AuthSpec::default(),
        "providers[0].auth: set exactly one of apiKey, passthrough: true, aws: {} or google: {}",
    );
    assert!(errors_after(|s| s.providers[0].auth.passthrough = Some(false)).is_empty());
    assert_one(
        |s| s.providers[0].auth.passthrough = Some(true),
        "providers[0].auth: set exactly one of apiKey, passthrough: true, aws: {} or google: {}, not several",
    );
}

#[test]
fn api_key_exactly_one_source() {
    assert_one(
        |s| {
            s.providers[0].auth.api_key = Some(KeySource {
                from_env: Some("K".into()),
                from_file: Some("/k".into()),
            })
        },
        "providers[0].auth.apiKey: set exactly one of fromEnv or fromFile",
    );
    assert_one(
        |s| s.providers[0].auth.api_key = Some(KeySource::default()),
        "providers[0].auth.apiKey: set exactly one of fromEnv or fromFile",
    );
    assert_one(
        |s| {
            s.providers[1].auth.api_key = Some(KeySource {
                from_env: None,
                from_file: Some(" ".into()),
            })
        },
        "providers[1].auth.apiKey.fromFile: must not be empty",
    );
}

#[test]
fn headers_valid_and_never_credentials() {
    let set = |name: &str, value: &str| {
        let (name, value) = (name.to_owned(), value.to_owned());
        move |s: &mut PolicySpec| {
            s.providers[0].headers.insert(name, value);
        }
    };
    assert_one(
        set("Authorization", "Bearer sk-1"),
        "providers[0].headers.Authorization: credentials never go inline in a policy; use auth.apiKey",
    );
    assert_eq!(errors_after(set("X-Api-Key", "k")).len(), 1);
    assert_eq!(errors_after(set("api-key", "k")).len(), 1);
    assert_one(
        set("bad header", "v"),
        r#"providers[0].headers."bad header": not a valid HTTP header name"#,
    );
    let errors = errors_after(set("x-note", "line\nbreak"));
    assert_eq!(
        errors,
        vec!["providers[0].headers.x-note: value is not a valid HTTP header value"]
    );
    assert!(
        !errors[0].contains("break"),
        "a header value is never echoed"
    );
}

#[test]
fn api_version_only_and_always_for_azure() {
    assert_one(
        |s| s.providers[2].api_version = None,
        "providers[2].apiVersion: required for api azure-openai (e.g. 2024-10-21)",
    );
    assert_one(
        |s| s.providers[0].api_version = Some("2024-10-21".into()),
        "providers[0].apiVersion: only allowed for api azure-openai",
    );
}

#[test]
fn durations_parse_and_are_positive() {
    let errors = errors_after(|s| s.providers[1].timeouts.first_byte = Some("30".into()));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("providers[1].timeouts.firstByte: \"30\" is not a duration"));
    assert_one(
        |s| s.routes[0].timeout = Some("0s".into()),
        "routes[0].timeout: must be greater than zero",
    );
    assert!(errors_after(|s| s.rate_limit.default_cooldown = Some("0s".into())).is_empty());
    // Far past any sensible value, and an `Instant` overflow on every request if taken.
    assert_one(
        |s| s.routes[0].timeout = Some("1000000h".into()),
        "routes[0].timeout: must be at most 7d",
    );
    assert!(errors_after(|s| s.routes[0].timeout = Some("7d".into())).is_empty());
}

#[test]
fn rates_in_unit_interval() {
    assert_one(
        |s| s.circuit_breaker.failure_rate = Some(0.0),
        "circuitBreaker.failureRate: must be in (0, 1], got 0",
    );
    assert_one(
        |s| {
            s.circuit_breaker.slow_call = Some(SlowCallSpec {
                factor: None,
                first_byte: None,
                rate: Some(1.5),
            })
        },
        "circuitBreaker.slowCall.rate: must be in (0, 1], got 1.5",
    );
    assert_one(
        |s| {
            s.circuit_breaker.slow_call = Some(SlowCallSpec {
                factor: Some(0.5),
                first_byte: None,
                rate: None,
            })
        },
        "circuitBreaker.slowCall.factor: must be at least 1",
    );
    assert_one(
        |s| {
            s.routes[0].hedge = Some(HedgeSpec {
                after: "soon".into(),
                max_ratio: None,
            })
        },
        "routes[0].hedge.after: \"soon\" is not a duration like 250ms, 30s or 5m (expected number at 0)",
    );
    assert_one(
        |s| {
            s.routes[0].hedge = Some(HedgeSpec {
                after: "auto".into(),
                max_ratio: Some(2.0),
            })
        },
        "routes[0].hedge.maxRatio: must be in (0, 1], got 2",
    );
    assert_one(
        |s| s.routes[0].max_wait = Some("later".into()),
        "routes[0].maxWait: \"later\" is not a duration like 250ms, 30s or 5m (expected number at 0)",
    );
    assert_one(
        |s| s.retry_budget.ratio = Some(f64::NAN),
        "retryBudget.ratio: must be in (0, 1], got NaN",
    );
    assert!(errors_after(|s| s.retry_budget.ratio = Some(1.0)).is_empty());
}

#[test]
fn min_per_second_non_negative() {
    assert_one(
        |s| s.retry_budget.min_per_second = Some(-1.0),
        "retryBudget.minPerSecond: must be a finite number >= 0, got -1",
    );
    assert!(errors_after(|s| s.retry_budget.min_per_second = Some(0.0)).is_empty());
}

#[test]
fn counts_at_least_one() {
    assert_one(
        |s| s.routes[0].max_attempts = Some(0),
        "routes[0].maxAttempts: must be at least 1",
    );
    assert_one(
        |s| s.circuit_breaker.half_open_calls = Some(0),
        "circuitBreaker.halfOpenCalls: must be at least 1",
    );
    assert_one(
        |s| s.routes[0].targets[0].weight = Some(0),
        "routes[0].targets[0].weight: must be at least 1",
    );
}

#[test]
fn open_for_within_max_open_for() {
    assert_one(
        |s| s.circuit_breaker.open_for = Some("10m".into()),
        "circuitBreaker.openFor: 10m must not exceed maxOpenFor (5m)",
    );
    // A target override is ordered against the policy-wide value it inherits.
    assert_one(
        |s| {
            s.routes[0].targets[0].circuit_breaker = Some(BreakerSpec {
                open_for: Some("6m".into()),
                ..Default::default()
            })
        },
        "routes[0].targets[0].circuitBreaker.openFor: 6m must not exceed maxOpenFor (5m)",
    );
    assert!(errors_after(|s| s.circuit_breaker.open_for = Some("5m".into())).is_empty());
}

#[test]
fn default_cooldown_within_max_cooldown() {
    assert_one(
        |s| s.rate_limit.max_cooldown = Some("1s".into()),
        "rateLimit.defaultCooldown: 5s must not exceed maxCooldown (1s)",
    );
}

#[test]
fn prices_non_negative() {
    assert_one(
        |s| {
            s.routes[0].targets[0].price = Some(PriceSpec {
                input_per_mtok: -0.5,
                output_per_mtok: 1.0,
            })
        },
        "routes[0].targets[0].price.inputPerMTok: must be a finite number >= 0, got -0.5",
    );
}

#[test]
fn target_provider_exists_with_hint() {
    assert_one(
        |s| s.routes[0].targets[1].provider = "anthropc".into(),
        r#"routes[0].targets[1].provider: no provider named "anthropc" (did you mean "anthropic"?)"#,
    );
    assert_one(
        |s| s.routes[0].targets[1].provider = "mistral".into(),
        r#"routes[0].targets[1].provider: no provider named "mistral""#,
    );
}

#[test]
fn targets_non_empty() {
    assert_one(
        |s| s.routes[0].targets.clear(),
        "routes[0].targets: at least one target is required",
    );
}

#[test]
fn inbound_is_openai_or_anthropic() {
    assert_one(
        |s| s.routes[0].inbound = Some(ApiKind::AzureOpenai),
        "routes[0].inbound: must be openai or anthropic (Azure OpenAI clients send the openai format)",
    );
}

#[test]
fn route_models_unique_per_inbound_kind() {
    // A second catch-all for openai calls clashes; one without `inbound` clashes with both.
    let mut extra = valid().routes[1].clone();
    assert_one(
        |s| s.routes.push(extra.clone()),
        r#"routes[3].model: another route already serves model "*" for inbound openai (routes[1])"#,
    );
    extra.inbound = None;
    assert_one(
        |s| s.routes.push(extra),
        r#"routes[3].model: another route already serves model "*" for inbound openai (routes[1]), anthropic (routes[2])"#,
    );
    let mut other = valid().routes[0].clone();
    other.model = "gpt-4o-mini".into();
    assert!(errors_after(|s| s.routes.push(other)).is_empty());
}

#[test]
fn all_errors_at_once() {
    let errors = errors_after(|s| {
        s.providers[2].name = "openai".into();
        s.providers[0].timeouts.idle = Some("forever".into());
        s.routes[0].targets[0].circuit_breaker = Some(BreakerSpec {
            failure_rate: Some(2.0),
            ..Default::default()
        });
        s.routes[1].max_attempts = Some(0);
        s.retry_budget.ratio = Some(0.0);
    });
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        vec![
            "providers[0].timeouts.idle",
            "providers[2].name",
            "routes[0].targets[0].circuitBreaker.failureRate",
            "routes[1].maxAttempts",
            "retryBudget.ratio",
        ]
    );
}

#[test]
fn edit_distance_counts_edits() {
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("anthropc", "anthropic"), 1);
    assert_eq!(edit_distance("same", "same"), 0);
    assert_eq!(closest("opena", &["openai", "anthropic"]), Some("openai"));
    assert_eq!(closest("zzz", &["openai"]), None);
    assert_eq!(closest("b", &["a"]), None, "one-letter names get no guess");
}

#[test]
fn tls_only_on_https_and_cert_with_key() {
    use crate::policy::spec::TlsSpec;
    let ca_only = || TlsSpec {
        ca_file: Some("/etc/ssl/internal-ca.pem".into()),
        ..TlsSpec::default()
    };
    assert!(errors_after(|s| s.providers[0].tls = Some(ca_only())).is_empty());
    assert_one(
        |s| {
            s.providers[0].base_url = "http://vllm.internal:8000/v1".into();
            s.providers[0].tls = Some(ca_only());
        },
        "providers[0].tls: only allowed with an https:// baseUrl (there is no TLS to configure on http://)",
    );
    assert_one(
        |s| {
            s.providers[1].tls = Some(TlsSpec {
                client_cert: Some("/tls/tls.crt".into()),
                ..TlsSpec::default()
            })
        },
        "providers[1].tls.clientKey: required with clientCert (the certificate's private key)",
    );
    assert_one(
        |s| s.providers[1].tls = Some(TlsSpec::default()),
        "providers[1].tls: set caFile, or clientCert with clientKey, or both",
    );
    assert_one(
        |s| {
            s.providers[0].tls = Some(TlsSpec {
                ca_file: Some(" ".into()),
                ..TlsSpec::default()
            })
        },
        "providers[0].tls.caFile: must not be empty",
    );
}

#[test]
fn tls_rejects_unknown_fields_such_as_a_verification_switch() {
    let text = VALID.replacen(
        "    headers: {OpenAI-Organization: org-1}",
        "    headers: {OpenAI-Organization: org-1}\n    tls: {caFile: /ca.pem, insecureSkipVerify: true}",
        1,
    );
    assert!(decode(&text).is_err());
}

#[test]
fn wires_are_ones_the_kind_can_serve() {
    use crate::policy::spec::Wire;
    let anthropic = valid()
        .providers
        .iter()
        .position(|p| p.api == ApiKind::Anthropic)
        .unwrap();
    assert_one(
        |s| s.providers[anthropic].wires = Some(vec![Wire::Messages, Wire::Chat]),
        &format!(
            "providers[{anthropic}].wires[1]: api anthropic cannot serve chat; it serves messages"
        ),
    );
    assert!(errors_after(|s| s.providers[0].wires = Some(vec![Wire::Chat])).is_empty());
}

#[test]
fn wires_default_by_kind_and_base_url() {
    use crate::policy::spec::Wire;
    let all = [Wire::Chat, Wire::Embeddings, Wire::Responses];
    assert_eq!(
        ApiKind::Openai.default_wires("https://api.openai.com/v1"),
        all
    );
    assert_eq!(
        ApiKind::AzureOpenai.default_wires("https://x.openai.azure.com"),
        all
    );
    assert_eq!(
        ApiKind::Openai.default_wires("http://vllm:8000/v1"),
        [Wire::Chat, Wire::Embeddings]
    );
    assert_eq!(
        ApiKind::Anthropic.default_wires("https://api.anthropic.com"),
        [Wire::Messages]
    );
}

const GOOGLE: &str = r#"
providers:
  - name: gemini
    api: gemini
    auth: {apiKey: {fromEnv: GEMINI_API_KEY}}
  - name: vertex
    api: vertex
    project: my-project
    region: europe-west4
    auth: {google: {}}
routes:
  - model: "*"
    targets: [{provider: gemini, model: gemini-2.5-flash}, {provider: vertex, model: gemini-2.5-pro}]
"#;

fn google_errors(change: impl FnOnce(&mut PolicySpec)) -> Vec<String> {
    let mut spec = decode(GOOGLE).expect("the Google policy decodes");
    change(&mut spec);
    validate(&spec).iter().map(ToString::to_string).collect()
}

fn bedrock_errors(provider: &str) -> Vec<String> {
    let policy = format!(
        "providers:\n  - {provider}\nroutes:\n  - model: m\n    targets: [{{provider: b, model: anthropic.claude-sonnet-4-5}}]\n"
    );
    let spec = decode(&policy).expect("the Bedrock policy decodes");
    validate(&spec).iter().map(ToString::to_string).collect()
}

#[test]
fn gemini_and_vertex_need_no_base_url() {
    assert_eq!(google_errors(|_| {}), Vec::<String>::new());
    let errors = google_errors(|s| s.providers[1].base_url = "ftp://x".to_owned());
    assert_eq!(
        errors,
        vec![r#"providers[1].baseUrl: "ftp://x" must be an absolute http:// or https:// URL"#]
    );
}

#[test]
fn vertex_needs_a_project_and_region_that_only_it_takes() {
    let errors = google_errors(|s| {
        s.providers[1].project = None;
        s.providers[1].region = Some("Europe West".to_owned());
        s.providers[0].region = Some("us-central1".to_owned());
    });
    assert_eq!(
        errors,
        vec![
            "providers[0].region: only allowed for api bedrock and vertex",
            r#"providers[1].region: "Europe West" is not a Google Cloud region (lower-case letters, digits, -)"#,
            "providers[1].project: required for api vertex",
        ]
    );
}

#[test]
fn google_credentials_and_passthrough_rules() {
    let errors = google_errors(|s| {
        s.providers[0].auth = AuthSpec {
            api_key: None,
            passthrough: Some(true),
            google: None,
            aws: None,
        };
        s.providers[1].auth.api_key = Some(KeySource {
            from_env: Some("K".to_owned()),
            from_file: None,
        });
    });
    assert_eq!(
        errors,
        vec![
            "providers[0].auth.passthrough: not allowed for api gemini: an app's key is never sent to Google",
            "providers[1].auth: set exactly one of apiKey, passthrough: true, aws: {} or google: {}, not several",
        ]
    );
    let errors = google_errors(|s| s.providers[0].auth.google = Some(Default::default()));
    assert!(errors.contains(&"providers[0].auth.google: only allowed for api vertex (Google credentials); gemini takes an apiKey".to_owned()), "{errors:?}");
    let errors = errors_after(|s| s.providers[0].base_url = String::new());
    assert_eq!(
        errors,
        vec!["providers[0].baseUrl: required for api openai"]
    );
}

#[test]
fn bedrock_needs_a_region_and_takes_aws_or_a_key() {
    assert!(
        bedrock_errors("{name: b, api: bedrock, region: us-east-1, auth: {aws: {}}}").is_empty()
    );
    assert!(bedrock_errors(
        "{name: b, api: bedrock, region: eu-west-3, baseUrl: 'http://127.0.0.1:9', auth: {apiKey: {fromEnv: K}}}"
    )
    .is_empty());
    assert_eq!(
        bedrock_errors("{name: b, api: bedrock, auth: {aws: {}}}"),
        ["providers[0].region: required for api bedrock (e.g. us-east-1); it is also the SigV4 signing region"]
    );
    assert_eq!(
        bedrock_errors("{name: b, api: bedrock, region: 'us east', auth: {aws: {}}}"),
        [r#"providers[0].region: "us east" is not an AWS region name like us-east-1"#]
    );
    assert_eq!(
        bedrock_errors("{name: b, api: bedrock, region: us-east-1, auth: {passthrough: true}}"),
        ["providers[0].auth.passthrough: not allowed for api bedrock: no app sends a Bedrock key; use aws: {} or apiKey"]
    );
    assert_eq!(
        bedrock_errors(
            "{name: b, api: bedrock, region: us-east-1, auth: {aws: {}, apiKey: {fromEnv: K}}}"
        ),
        ["providers[0].auth: set exactly one of apiKey, passthrough: true, aws: {} or google: {}, not several"]
    );
    assert_eq!(
        bedrock_errors("{name: b, api: openai, region: us-east-1, auth: {aws: {}}}"),
        [
            "providers[0].baseUrl: required for api openai",
            "providers[0].region: only allowed for api bedrock and vertex",
            "providers[0].auth.aws: only allowed for api bedrock",
        ]
    );
    assert_eq!(
        bedrock_errors(
            "{name: b, api: bedrock, region: us-east-1, auth: {aws: {}}, wires: [chat]}"
        ),
        ["providers[0].wires[0]: api bedrock cannot serve chat; it serves converse"]
    );
    let unknown = decode(
        "providers:\n  - {name: b, api: bedrock, region: us-east-1, auth: {aws: {roleArn: x}}}\nroutes: [{model: m, targets: [{provider: b}]}]\n",
    );
    assert!(unknown.is_err(), "unknown fields under aws are errors");
}

#[test]
fn bedrock_endpoint_defaults_to_the_regional_host() {
    let spec = decode(
        "providers:\n  - {name: b, api: bedrock, region: ap-northeast-1, auth: {aws: {}}}\nroutes: [{model: m, targets: [{provider: b}]}]\n",
    )
    .unwrap();
    assert_eq!(
        spec.providers[0].effective_base_url(),
        "https://bedrock-runtime.ap-northeast-1.amazonaws.com"
    );
}
