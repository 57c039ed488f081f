"""The contenders of the benchmark, each started in front of the same mocks: the direct
call (the floor), switchyard, Envoy and LiteLLM, with the configuration each gets.

Invariant: every contender exposes two OpenAI-compatible chat endpoints on 127.0.0.1
(`fast` for small JSON replies, `sse` for 64-delta streams) and one for held-open
streams, and each proxy has a two-target failover route for each.
"""

import os

import measure

from procs import Child, free_port, wait_ready

REQUEST_MODEL = {"fast": "bench", "sse": "bench-sse", "hold": "bench-hold"}

# The Responses lane streams from the `sse` mocks: `bench-sse` natively (the sse
# providers serve Responses), `bench-sse-crossed` translated to Chat Completions.
RESPONSES_MODELS = {"responses": "bench-sse", "responses-crossed": "bench-sse-crossed"}


def responses_url(chat_url):
    """The Responses endpoint beside a contender's chat completions endpoint."""
    return chat_url.replace("/v1/chat/completions", "/v1/responses")


class Mocks:
    """Primary and secondary mocks per lane; secondaries only matter on failover."""

    def __init__(self, binary, pin, log_dir):
        self.children = []
        self.ports = {}
        lanes = {
            "fast": [],
            "fast-b": [],
            "sse": ["--chunks", "64", "--chunk-interval", "20ms"],
            "sse-b": ["--chunks", "64", "--chunk-interval", "20ms"],
            "hold": ["--chunks", "64", "--chunk-interval", "250ms"],
        }
        for lane, flags in lanes.items():
            port = free_port()
            argv = pin.wrap("load", [binary, "mock", "--listen", f"127.0.0.1:{port}", "--name", lane] + flags)
            child = Child(f"mock-{lane}", argv, log_dir, env={"RUST_LOG": "warn"})
            self.children.append(child)
            self.ports[lane] = port
        for child, port in zip(self.children, self.ports.values()):
            wait_ready(child, port, "/_mock/stats")

    def base(self, lane):
        return f"http://127.0.0.1:{self.ports[lane]}"

    def stop(self):
        for child in self.children:
            child.stop()


class Direct:
    name = "direct"

    def __init__(self, mocks):
        self.mocks = mocks
        self.child = None

    def url(self, lane):
        return f"{self.mocks.base(lane)}/v1/chat/completions"


class TcpForwarder:
    """socat copying bytes between two sockets on the proxy core: no HTTP, no logic. Its
    latency is the floor for any proxy on this rig (two more loopback hops and two
    cross-core wake-ups than the direct call), which "added p50" should be read against."""

    name = "tcp-forwarder"

    def __init__(self, mocks, pin, log_dir):
        self.port = free_port()
        argv = pin.wrap("proxy", [
            "socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork,nodelay",
            f"TCP:127.0.0.1:{mocks.ports['fast']},nodelay",
        ])
        self.child = Child("tcp-forwarder", argv, log_dir)
        self.startup = wait_ready(self.child, self.port, "/_mock/stats")

    def url(self, lane):
        assert lane == "fast", "the forwarder only fronts the fast lane"
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"


class Switchyard:
    name = "switchyard"

    def __init__(self, binary, mocks, pin, log_dir):
        self.port, self.admin = free_port(), free_port()
        policy = os.path.join(log_dir, "switchyard-policy.yaml")
        with open(policy, "w") as f:
            f.write(switchyard_policy(mocks))
        self.argv = pin.wrap("proxy", [
            binary, "run", "--listen", f"127.0.0.1:{self.port}",
            "--admin", f"127.0.0.1:{self.admin}", "--policy-file", policy,
        ])
        self.env = {"RUST_LOG": "warn", "BENCH_KEY": "sk-bench"}
        self.log_dir = log_dir
        self.child = Child("switchyard", self.argv, log_dir, env=self.env)
        self.startup = wait_ready(self.child, self.admin, "/readyz")

    def url(self, lane):
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"


def switchyard_policy(mocks):
    providers, routes = [], []
    for lane in ("fast", "sse", "hold"):
        backup = "fast-b" if lane == "fast" else "sse-b"
        for name, target in ((lane, lane), (f"{lane}-backup", backup)):
            wires = "    wires: [chat, embeddings, responses]\n" if lane == "sse" else ""
            providers.append(
                f"  - name: {name}\n    api: openai\n    baseUrl: {mocks.base(target)}/v1\n{wires}"
                f"    auth: {{apiKey: {{fromEnv: BENCH_KEY}}}}\n"
                f"    timeouts: {{connect: 1s, firstByte: 10s, idle: 10s}}\n"
            )
        routes.append(
            f"  - model: {REQUEST_MODEL[lane]}\n    strategy: failover\n    targets:\n"
            f"      - {{provider: {lane}, model: gpt-4o}}\n"
            f"      - {{provider: {lane}-backup, model: gpt-4o-mini}}\n"
        )
    # The same mocks as Chat-only providers: a Responses call to them is translated.
    for name, target in (("sse-chat", "sse"), ("sse-chat-backup", "sse-b")):
        providers.append(
            f"  - name: {name}\n    api: openai\n    baseUrl: {mocks.base(target)}/v1\n"
            f"    auth: {{apiKey: {{fromEnv: BENCH_KEY}}}}\n"
            f"    timeouts: {{connect: 1s, firstByte: 10s, idle: 10s}}\n"
        )
    routes.append(
        f"  - model: {RESPONSES_MODELS['responses-crossed']}\n    strategy: failover\n    targets:\n"
        "      - {provider: sse-chat, model: gpt-4o}\n"
        "      - {provider: sse-chat-backup, model: gpt-4o-mini}\n"
    )
    return "providers:\n" + "".join(providers) + "routes:\n" + "".join(routes)


class Envoy:
    name = "envoy"

    def __init__(self, binary, mocks, pin, log_dir):
        self.ports = {lane: free_port() for lane in REQUEST_MODEL}
        self.admin = free_port()
        config = os.path.join(log_dir, "envoy.yaml")
        with open(config, "w") as f:
            f.write(envoy_config(mocks, self.ports, self.admin))
        argv = pin.wrap("proxy", [
            binary, "-c", config, "--concurrency", "1", "--log-level", "error",
            "--disable-hot-restart", "--base-id", str(os.getpid() % 60000),
        ])
        self.child = Child("envoy", argv, log_dir)
        self.startup = wait_ready(self.child, self.admin, "/ready")

    def url(self, lane):
        return f"http://127.0.0.1:{self.ports[lane]}/v1/chat/completions"


def envoy_config(mocks, ports, admin):
    """Plain HTTP proxy: a primary and a secondary priority per lane, retries on 5xx,
    reset and connect failure, outlier detection: Envoy's closest match to failover."""
    listeners, clusters = [], []
    for lane, port in ports.items():
        backup = "fast-b" if lane == "fast" else "sse-b"
        listeners.append(f"""
  - name: {lane}
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {lane}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route:
                  cluster: {lane}
                  timeout: 0s
                  retry_policy:
                    retry_on: 5xx,reset,connect-failure,retriable-status-codes
                    retriable_status_codes: [429]
                    num_retries: 1
                    retry_host_predicate: [{{name: envoy.retry_host_predicates.previous_hosts, typed_config: {{"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}""")
        clusters.append(f"""
  - name: {lane}
    type: STATIC
    connect_timeout: 1s
    outlier_detection: {{consecutive_5xx: 5, interval: 10s, base_ejection_time: 30s, max_ejection_percent: 100}}
    load_assignment:
      cluster_name: {lane}
      endpoints:
      - priority: 0
        lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {mocks.ports[lane]}}}}}}}}}]
      - priority: 1
        lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {mocks.ports[backup]}}}}}}}}}]""")
    return (
        f"admin:\n  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}\n"
        "static_resources:\n  listeners:" + "".join(listeners) + "\n  clusters:" + "".join(clusters) + "\n"
    )


class LiteLLM:
    name = "litellm"

    def __init__(self, binary, mocks, pin, log_dir):
        self.port = free_port()
        config = os.path.join(log_dir, "litellm.yaml")
        with open(config, "w") as f:
            f.write(litellm_config(mocks))
        argv = pin.wrap("proxy", [
            binary, "--config", config, "--host", "127.0.0.1", "--port", str(self.port), "--num_workers", "1",
        ])
        env = {"LITELLM_MASTER_KEY": measure.AUTH, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False", "DISABLE_SCHEMA_UPDATE": "true"}
        self.child = Child("litellm", argv, log_dir, env=env)
        self.startup = wait_ready(self.child, self.port, "/health/liveliness", limit=300)

    def url(self, lane):
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"


def litellm_config(mocks):
    """The router with one fallback per lane: LiteLLM's own failover."""
    models, fallbacks = [], []
    for lane in ("fast", "sse", "hold"):
        backup = "fast-b" if lane == "fast" else "sse-b"
        name = REQUEST_MODEL[lane]
        for model_name, target in ((name, lane), (f"{name}-backup", backup)):
            models.append(
                f"  - model_name: {model_name}\n    litellm_params:\n      model: openai/gpt-4o\n"
                f"      api_base: {mocks.base(target)}/v1\n      api_key: sk-bench\n"
            )
        fallbacks.append(f'    - {{"{name}": ["{name}-backup"]}}\n')
    return (
        "model_list:\n" + "".join(models)
        + "router_settings:\n  num_retries: 0\n  fallbacks:\n" + "".join(fallbacks)
        + "litellm_settings:\n  telemetry: false\n  set_verbose: false\n"
    )
