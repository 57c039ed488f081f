"""The hedging lane (issue 12): a slow-tail provider (most calls fast, a few much slower)
behind a two-target route, with and without `hedge`, under the same closed-loop load.
Reports the app's p50 / p99 and the extra upstream calls, and writes them into
bench/RESULTS.md between the hedge-lane markers (bench/report.py keeps that block).

Invariant: everything runs on 127.0.0.1; both runs use fresh mocks with the same
deterministic fault pattern, so they see the same slow calls.
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request

from procs import Child, free_port, splice, wait_ready

START, END = "<!-- hedge-lane:start -->", "<!-- hedge-lane:end -->"

# A provider whose normal is 20 ms and whose slowest 4% take 600 ms more: p99 >= 10x p50.
TAIL = ["--latency", "20ms", "--slow-tail-rate", "0.04", "--slow-tail-latency", "600ms"]

POLICY = """
providers:
  - {{name: primary, api: openai, baseUrl: "http://127.0.0.1:{p}/v1", auth: {{apiKey: {{fromEnv: BENCH_KEY}}}}}}
  - {{name: secondary, api: openai, baseUrl: "http://127.0.0.1:{s}/v1", auth: {{apiKey: {{fromEnv: BENCH_KEY}}}}}}
routes:
  - model: bench
    targets: [{{provider: primary, model: m1}}, {{provider: secondary, model: m2}}]
    {hedge}
"""


BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say hello."}],
                   "max_tokens": 16})


def load(port, seconds, connections):
    """Closed-loop load: `connections` keep-alive clients back to back for `seconds`;
    every call's latency, measured by the client (wrk's histogram coarsens a tail of a few
    hundred slow calls among thousands)."""
    latencies, errors, lock = [], [0], threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            start = time.monotonic()
            conn.request("POST", "/v1/chat/completions", BODY, {"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
            took = time.monotonic() - start
            with lock:
                latencies.append(took)
                errors[0] += response.status != 200
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1e6
    return {"requests": len(latencies), "errors": errors[0], "p50": pct(0.5), "p99": pct(0.99),
            "p999": pct(0.999)}


def stats(port):
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/_mock/stats"))


def run_one(binary, hedge, seconds, connections, log_dir):
    ports = {"p": free_port(), "s": free_port()}
    mocks = [
        Child(f"mock-{name}", [binary, "mock", "--listen", f"127.0.0.1:{port}", "--name", name, *TAIL],
              log_dir, env={"RUST_LOG": "warn"})
        for name, port in (("primary", ports["p"]), ("secondary", ports["s"]))
    ]
    proxy, admin = free_port(), free_port()
    policy = os.path.join(log_dir, "hedge-policy.yaml")
    with open(policy, "w") as f:
        f.write(POLICY.format(hedge=hedge, **ports))
    sidecar = Child("switchyard-hedge", [binary, "run", "--listen", f"127.0.0.1:{proxy}",
                                         "--admin", f"127.0.0.1:{admin}", "--policy-file", policy],
                    log_dir, env={"RUST_LOG": "warn", "BENCH_KEY": "sk-bench"})
    try:
        for mock, port in zip(mocks, ports.values()):
            wait_ready(mock, port, "/_mock/stats")
        wait_ready(sidecar, admin, "/readyz")
        result = load(proxy, seconds, connections)
        upstream = stats(ports["p"])["calls"] + stats(ports["s"])["calls"]
        result["upstream_calls"] = upstream
        result["amplification"] = upstream / max(result["requests"], 1)
        result["baseline"] = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/breakers"))[0]["baseline"]
        return result
    finally:
        sidecar.stop()
        for mock in mocks:
            mock.stop()


def direct_tail(binary, seconds, connections, log_dir):
    """The provider alone, for its own p50 / p99 (the tail the route has to hide)."""
    port = free_port()
    mock = Child("mock-direct", [binary, "mock", "--listen", f"127.0.0.1:{port}", "--name", "d", *TAIL],
                 log_dir, env={"RUST_LOG": "warn"})
    try:
        wait_ready(mock, port, "/_mock/stats")
        return load(port, seconds, connections)
    finally:
        mock.stop()


def render(results, args):
    ms = lambda us: f"{us / 1000:.1f} ms"
    rows = [
        "| run | app calls | p50 | p99 | upstream calls per app call |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        amp = f"{r['amplification']:.3f}" if "amplification" in r else "1 (no route)"
        rows.append(f"| {name} | {r['requests']:,} | {ms(r['p50'])} | {ms(r['p99'])} | {amp} |")
    plain, hedged = results["switchyard, no hedge"], results["switchyard, hedge"]
    cut = 1 - hedged["p99"] / max(plain["p99"], 1)
    extra = hedged["amplification"] - plain["amplification"]
    return "\n".join([
        START,
        "## Hedging lane (slow-tail provider, two-target route)",
        "",
        f"Written by `bench/hedge.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{args.connections} keep-alive clients back to back for {args.seconds} s per run "
        f"(latency measured by the client); both mocks `{' '.join(TAIL)}` "
        "(4% of calls 600 ms slower); hedged run: `hedge: {after: auto, maxRatio: 0.1}`.",
        "",
        *rows,
        "",
        f"Hedging cut the app's p99 by **{cut:.0%}** for **{extra:+.3f}** upstream calls per app "
        f"call (maxRatio 0.1). Target: p99 at least halved, extra load at most maxRatio.",
        "",
        f"Command: `bench/hedge.sh --seconds {args.seconds} --connections {args.connections}`.",
        END,
    ])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    log_dir = tempfile.mkdtemp(prefix="switchyard-hedge-")
    results = {
        "provider alone": direct_tail(args.binary, args.seconds, args.connections, log_dir),
        "switchyard, no hedge": run_one(args.binary, "", args.seconds, args.connections, log_dir),
        "switchyard, hedge": run_one(args.binary, "hedge: {after: auto, maxRatio: 0.1}",
                                     args.seconds, args.connections, log_dir),
    }
    block = render(results, args)
    splice("bench/RESULTS.md", block, START, END)
    print(block)
    json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
