#!/usr/bin/env python3
"""p50/p99 of proxied calls with OTLP off, pointed at a closed port, and at a black hole.

    python3 bench/otel_overhead.py target/debug/switchyard [calls]

Loopback only: a mock provider, a sidecar per scenario, sequential calls.
"""
import json, os, socket, subprocess, sys, tempfile, time, urllib.request

BIN = sys.argv[1]
CALLS = int(sys.argv[2]) if len(sys.argv) > 2 else 500


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


mock_port = free_port()
mock = subprocess.Popen([BIN, "mock", "--listen", f"127.0.0.1:{mock_port}"], stderr=subprocess.DEVNULL)
wait_up(mock_port)
policy = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
policy.write(f"""
providers:
  - name: mock
    api: openai
    baseUrl: http://127.0.0.1:{mock_port}/v1
    auth: {{apiKey: {{fromEnv: BENCH_KEY}}}}
routes:
  - model: "*"
    targets: [{{provider: mock}}]
""")
policy.close()
hole = socket.socket()
hole.bind(("127.0.0.1", 0))
hole.listen(1024)  # accepts, never answers
closed = free_port()
scenarios = {
    "no telemetry": {},
    "collector closed port": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed}", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    "collector black hole": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hole.getsockname()[1]}", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    "black hole (http)": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{hole.getsockname()[1]}"},
}
body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
try:
    for name, extra in scenarios.items():
        port, admin = free_port(), free_port()
        env = dict(os.environ, BENCH_KEY="sk-bench", RUST_LOG="warn", OTEL_BSP_SCHEDULE_DELAY="100", **extra)
        side = subprocess.Popen([BIN, "run", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
                                 "--policy-file", policy.name], env=env, stderr=subprocess.DEVNULL)
        wait_up(port)
        times, failures = [], 0
        for i in range(CALLS + 50):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", body,
                                         {"content-type": "application/json"})
            t = time.perf_counter()
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except Exception:
                failures += 1
            if i >= 50:
                times.append(time.perf_counter() - t)
        side.terminate()
        side.wait(timeout=40)
        times.sort()
        p = lambda q: times[int(q * (len(times) - 1))] * 1000
        print(f"{name:24} calls={CALLS} failed={failures} p50={p(0.5):.2f}ms p99={p(0.99):.2f}ms")
finally:
    mock.terminate()
    os.unlink(policy.name)
