"""The TLS + HTTP/2 lane (issue 18): the mock behind HTTPS with h2 by ALPN and a private
CA made for the run, switchyard (`tls.caFile`) and Envoy (upstream TLS, ALPN auto) in
front of it. Measures added p50 at c=1 over the direct HTTPS call and over a TCP forwarder's floor,
proxy CPU per request,
and RSS with 1,000 open streams (which over h2 share one upstream connection).

Invariant: the same mocks and the same private CA for every contender; everything on
127.0.0.1; every process started here is stopped here.
"""

import http.client
import os
import ssl
import subprocess
import sys
import time

import measure
from procs import Child, free_port, rss_kib, wait_ready

LANES = {"fast": [], "hold": ["--chunks", "64", "--chunk-interval", "250ms"]}
MODEL = {"fast": "bench", "hold": "bench-hold"}


def make_pki(directory):
    """A CA and a server certificate for IP 127.0.0.1, made with openssl."""
    os.makedirs(directory, exist_ok=True)
    path = {n: os.path.join(directory, n) for n in ("ca.pem", "ca.key", "tls.crt", "tls.key", "tls.csr", "ext.cnf")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda argv: subprocess.run(argv, check=True, capture_output=True)
    run(["openssl", "req", "-x509", *ec, "-keyout", path["ca.key"], "-out", path["ca.pem"], "-days", "2", "-subj", "/CN=switchyard bench CA"])
    run(["openssl", "req", *ec, "-keyout", path["tls.key"], "-out", path["tls.csr"], "-subj", "/CN=127.0.0.1"])
    with open(path["ext.cnf"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", path["tls.csr"], "-CA", path["ca.pem"], "-CAkey", path["ca.key"],
         "-CAcreateserial", "-out", path["tls.crt"], "-days", "2", "-extfile", path["ext.cnf"]])
    return path


def wait_https(child, port, ca, limit=30.0):
    """Polls the mock's stats over HTTPS, trusting only the run's CA."""
    context = ssl.create_default_context(cafile=ca)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early; see its log")
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=0.5, context=context)
            conn.request("GET", "/_mock/stats")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{child.name} not ready over HTTPS on :{port}")


class TlsMocks:
    def __init__(self, binary, pin, log_dir):
        self.pki = make_pki(os.path.join(log_dir, "tls"))
        self.children, self.ports = [], {}
        for lane, flags in LANES.items():
            port = free_port()
            argv = pin.wrap("load", [binary, "mock", "--listen", f"127.0.0.1:{port}", "--name", f"tls-{lane}",
                                     "--tls-cert", self.pki["tls.crt"], "--tls-key", self.pki["tls.key"]] + flags)
            self.children.append(Child(f"mock-tls-{lane}", argv, log_dir, env={"RUST_LOG": "warn"}))
            self.ports[lane] = port
        for child, port in zip(self.children, self.ports.values()):
            wait_https(child, port, self.pki["ca.pem"])

    def base(self, lane):
        return f"https://127.0.0.1:{self.ports[lane]}"

    def stop(self):
        for child in self.children:
            child.stop()


class Switchyard:
    name = "switchyard"

    def __init__(self, binary, mocks, pin, log_dir):
        self.port, self.admin = free_port(), free_port()
        policy = os.path.join(log_dir, "switchyard-tls-policy.yaml")
        providers, routes = [], []
        for lane in LANES:
            providers.append(
                f"  - name: tls-{lane}\n    api: openai\n    baseUrl: {mocks.base(lane)}/v1\n"
                f"    auth: {{apiKey: {{fromEnv: BENCH_KEY}}}}\n    tls: {{caFile: {mocks.pki['ca.pem']}}}\n"
                f"    timeouts: {{connect: 1s, firstByte: 10s, idle: 10s}}\n")
            routes.append(f"  - model: {MODEL[lane]}\n    targets: [{{provider: tls-{lane}, model: gpt-4o}}]\n")
        with open(policy, "w") as f:
            f.write("providers:\n" + "".join(providers) + "routes:\n" + "".join(routes))
        argv = pin.wrap("proxy", [binary, "run", "--listen", f"127.0.0.1:{self.port}",
                                  "--admin", f"127.0.0.1:{self.admin}", "--policy-file", policy])
        self.child = Child("switchyard-tls", argv, log_dir, env={"RUST_LOG": "warn", "BENCH_KEY": "sk-bench"})
        self.startup = wait_ready(self.child, self.admin, "/readyz")

    def url(self, lane):
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"


class Envoy:
    name = "envoy"

    def __init__(self, binary, mocks, pin, log_dir):
        self.ports = {lane: free_port() for lane in LANES}
        self.admin = free_port()
        config = os.path.join(log_dir, "envoy-tls.yaml")
        with open(config, "w") as f:
            f.write(envoy_config(mocks, self.ports, self.admin))
        argv = pin.wrap("proxy", [binary, "-c", config, "--concurrency", "1", "--log-level", "error",
                                  "--disable-hot-restart", "--base-id", str((os.getpid() + 1) % 60000)])
        self.child = Child("envoy-tls", argv, log_dir)
        self.startup = wait_ready(self.child, self.admin, "/ready")

    def url(self, lane):
        return f"http://127.0.0.1:{self.ports[lane]}/v1/chat/completions"


def envoy_config(mocks, ports, admin):
    """Plain HTTP in, TLS out with the run's CA, HTTP/2 or 1.1 by ALPN (auto_config)."""
    listeners, clusters = [], []
    for lane, port in ports.items():
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
                route: {{cluster: {lane}, timeout: 0s}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}""")
        clusters.append(f"""
  - name: {lane}
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        auto_config: {{http2_protocol_options: {{}}}}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        common_tls_context:
          alpn_protocols: [h2, http/1.1]
          validation_context: {{trusted_ca: {{filename: {mocks.pki['ca.pem']}}}}}
    load_assignment:
      cluster_name: {lane}
      endpoints:
      - lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {mocks.ports[lane]}}}}}}}}}]""")
    return (f"admin:\n  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}\n"
            "static_resources:\n  listeners:" + "".join(listeners) + "\n  clusters:" + "".join(clusters) + "\n")


def forwarded(mocks, pin, prof, log_dir):
    """wrk over HTTPS through socat on the proxy core: the latency floor of any proxy
    on this rig (two more loopback hops, two cross-core wake-ups), TLS end to end."""
    port = free_port()
    argv = pin.wrap("proxy", ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay",
                              f"TCP:127.0.0.1:{mocks.ports['fast']},nodelay"])
    measure.record(argv)
    child = Child("tcp-forwarder-tls", argv, log_dir)
    try:
        wait_https(child, port, mocks.pki["ca.pem"])
        return measure.wrk(pin, f"https://127.0.0.1:{port}/v1/chat/completions", "bench", 1, prof["c1"])
    finally:
        child.stop()


def run(args, pin, prof, log_dir, meta):
    """Every contender of the lane, one at a time; returns results by contender."""
    mocks = TlsMocks(args.binary, pin, log_dir)
    results = {}
    try:
        results["direct"] = {"c1": measure.wrk(pin, f"{mocks.base('fast')}/v1/chat/completions", "bench", 1, prof["c1"])}
        results["tcp-forwarder"] = {"c1": forwarded(mocks, pin, prof, log_dir)}
        makers = (("switchyard", lambda: Switchyard(args.binary, mocks, pin, log_dir)),
                  ("envoy", lambda: Envoy(args.envoy, mocks, pin, log_dir)))
        for name, make in makers:
            print(f"== tls-h2 {name}", file=sys.stderr, flush=True)
            try:
                contender = make()
            except RuntimeError as err:
                meta.setdefault("failed", {})[f"tls-h2 {name}"] = str(err)
                continue
            measure.record(contender.child.argv)
            try:
                pid = contender.child.pid
                out = {"rss_idle_kib": rss_kib(pid)}
                # One untimed call opens the upstream connection (handshake, h2 settings).
                measure.wrk(pin, contender.url("fast"), "bench", 1, 1, pid)
                out["c1"] = measure.wrk(pin, contender.url("fast"), "bench", 1, prof["c1"], pid)
                out["c16"] = measure.wrk(pin, contender.url("fast"), "bench", 16, prof["c1"], pid)
                # One untimed stream first, so every contender is measured in its steady
                # state (a pool that learns h2 from ALPN may dial one connection per call
                # of a cold burst; switchyard's multiplexer dials once).
                measure.probe(pin, args.probe, contender.url("hold"), "bench-hold", 1, 1)
                raw = measure.probe(pin, args.probe, contender.url("hold"), "bench-hold", prof["hold"], prof["hold"], rss_pid=pid)
                out["hold"] = {"streams": prof["hold"], "errors": len(raw["errors"]), "rss_kib": raw["rss_kib_all_open"]}
                results[name] = out
            finally:
                contender.child.stop()
    finally:
        mocks.stop()
    return results


def section(lane):
    """The lane's part of RESULTS.md, with issue 18's targets."""
    d, s, e = lane.get("direct"), lane.get("switchyard"), lane.get("envoy")
    lines = ["## TLS + HTTP/2 upstream (issue 18)", "",
             "The mock behind HTTPS (h2 by ALPN, private CA); the app's side stays plain HTTP/1.1.", "",
             "| contender | p50 c=1 | p99 c=1 | added p50 | over the floor | CPU/request c=1 | CPU/request c=16 | RSS idle | RSS with open streams |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    floor = lane.get("tcp-forwarder")
    for name in ("direct", "tcp-forwarder", "switchyard", "envoy"):
        r = lane.get(name)
        if not r:
            continue
        c1 = r["c1"]
        added = f"{c1['p50'] - d['c1']['p50']} µs" if d and name != "direct" else "—"
        cpu = f"{c1['cpu_us_per_req']:.0f} µs" if "cpu_us_per_req" in c1 else "—"
        cpu16 = f"{r['c16']['cpu_us_per_req']:.0f} µs" if "c16" in r else "—"
        idle = f"{r['rss_idle_kib'] / 1024:.1f} MiB" if "rss_idle_kib" in r else "—"
        hold = r.get("hold")
        held = f"{hold['rss_kib'] / 1024:.1f} MiB ({hold['streams']} streams, {hold['errors']} errors)" if hold and hold["rss_kib"] else "—"
        over = f"{c1['p50'] - floor['c1']['p50']} µs" if floor and name in ("switchyard", "envoy") else "—"
        lines.append(f"| {name} | {c1['p50']} µs | {c1['p99']} µs | {added} | {over} | {cpu} | {cpu16} | {idle} | {held} |")
    if d and s and e:
        rows = []
        cpu, ecpu = s["c1"]["cpu_us_per_req"], e["c1"]["cpu_us_per_req"]
        rows.append(("CPU per request ≤ 0.5× Envoy's", cpu <= 0.5 * ecpu, f"{cpu / ecpu:.2f}×"))
        base = (floor or d)["c1"]["p50"]
        sa, ea = s["c1"]["p50"] - base, e["c1"]["p50"] - base
        what = "over-the-floor" if floor else "added (no floor measured)"
        rows.append((f"{what} p50 ≤ 0.25× Envoy's", ea > 0 and sa <= 0.25 * ea, f"{sa} vs {ea} µs"))
        if s.get("hold") and s["hold"]["rss_kib"]:
            mib = s["hold"]["rss_kib"] / 1024
            rows.append(("RSS with 1,000 open streams ≤ 32 MiB", mib <= 32, f"{mib:.1f} MiB"))
        lines += [""] + [f"- {'met' if ok else '**missed**'}: {what} — {fig}" for what, ok, fig in rows]
    return lines
