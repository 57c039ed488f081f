"""The fleet lane (issue 16): 8 sidecars in front of one primary and one backup, with and
without `--shared-state` through a local redis-server, through a 429 storm (the primary's
shared quota is spent: every call answered 429 with retry-after) and then a black hole.
Counts what the provider and the app saw and writes it into bench/RESULTS.md between the
fleet-lane markers (bench/report.py keeps that block).

Invariant: everything runs on 127.0.0.1; both runs use fresh mocks, sidecars and Redis.
"""

import argparse
import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.request

import measure
from procs import Child, Pinning, free_port, splice, wait_ready

START, END = "<!-- fleet-lane:start -->", "<!-- fleet-lane:end -->"
PODS = 8
PHASE_SECONDS = 12

POLICY = """
providers:
  - {{name: primary, api: openai, baseUrl: "http://127.0.0.1:{p}/v1", auth: {{apiKey: {{fromEnv: BENCH_KEY}}}}, timeouts: {{firstByte: 500ms}}}}
  - {{name: backup, api: openai, baseUrl: "http://127.0.0.1:{b}/v1", auth: {{apiKey: {{fromEnv: BENCH_KEY}}}}}}
routes:
  - model: bench
    targets: [{{provider: primary, model: m1}}, {{provider: backup, model: m2}}]
circuitBreaker: {{consecutiveFailures: 3, openFor: 30s}}
"""

BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}]})


def post_faults(port, faults):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/_mock/faults", data=json.dumps(faults).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
    urllib.request.urlopen(request).read()


def calls(port):
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/_mock/stats"))["calls"]


PACE = 1.0


def drive(ports, seconds):
    """One paced client per pod (a call a second, the pods' clients spread over that
    second, as a fleet's traffic is); returns app calls, failures and how many were answered
    by the backup after a failed attempt at the primary (a 429 or a first-byte timeout)."""
    tally = {"calls": 0, "failures": 0, "waited": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index, port):
        time.sleep(index * PACE / len(ports))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            conn.request("POST", "/v1/chat/completions", BODY, {"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
            with lock:
                tally["calls"] += 1
                tally["failures"] += response.status != 200
                tally["waited"] += response.getheader("x-switchyard-attempts") == "2" and \
                    response.getheader("x-switchyard-provider") == "backup"
            time.sleep(PACE)

    threads = [threading.Thread(target=client, args=(i, p)) for i, p in enumerate(ports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally


def run(binary, shared, log_dir):
    children = []
    try:
        redis_port = free_port()
        if shared:
            redis = Child("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no"], log_dir)
            children.append(redis)
            time.sleep(0.3)
        p, b = free_port(), free_port()
        for name, port in (("primary", p), ("backup", b)):
            mock = Child(f"mock-{name}", [binary, "mock", "--listen", f"127.0.0.1:{port}", "--name", name],
                         log_dir, env={"RUST_LOG": "warn"})
            children.append(mock)
            wait_ready(mock, port, "/_mock/stats")
        policy = os.path.join(log_dir, "fleet-policy.yaml")
        with open(policy, "w") as f:
            f.write(POLICY.format(p=p, b=b))
        ports = []
        for i in range(PODS):
            proxy, admin = free_port(), free_port()
            argv = [binary, "run", "--listen", f"127.0.0.1:{proxy}", "--admin", f"127.0.0.1:{admin}",
                    "--policy-file", policy]
            if shared:
                argv += ["--shared-state", f"redis://127.0.0.1:{redis_port}"]
            pod = Child(f"pod-{i}", argv, log_dir, env={"RUST_LOG": "warn", "BENCH_KEY": "sk-bench",
                                                        "POD_NAME": f"pod-{i}"})
            children.append(pod)
            wait_ready(pod, admin, "/readyz")
            ports.append(proxy)
        time.sleep(1.5)
        out = {}
        post_faults(p, {"errorRate": 1.0, "errorStatus": 429, "retryAfter": 5})
        before = calls(p)
        out["storm"] = drive(ports, PHASE_SECONDS)
        out["storm"]["upstream_429s"] = calls(p) - before
        post_faults(p, {"blackhole": True})
        out["black_hole"] = drive(ports, PHASE_SECONDS)
        return out
    finally:
        for child in reversed(children):
            child.stop()


HOT_POLICY = """
providers:
  - {{name: fast, api: openai, baseUrl: "http://127.0.0.1:{p}/v1", auth: {{apiKey: {{fromEnv: BENCH_KEY}}}}, limits: {{requestsPerMinute: 100000000, tokensPerMinute: 100000000000}}}}
routes:
  - model: bench
    targets: [{{provider: fast, model: m1}}]
"""

HOT_ROUNDS, HOT_SECONDS = 6, 6


def hot_path(binary, log_dir):
    """The shared view's cost on the request path: one sidecar with and one without
    `--shared-state` (the same policy, a budget on the target so reservations run), wrk
    at c=1 against each in alternating rounds, added p50 over the direct call and the
    sidecar's CPU per request; medians over the rounds."""
    pin = Pinning()
    children = []
    try:
        redis_port, p = free_port(), free_port()
        children.append(Child("hot-redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                            "--save", "", "--appendonly", "no"], log_dir))
        mock = Child("hot-mock", pin.wrap("load", [binary, "mock", "--listen", f"127.0.0.1:{p}", "--name", "fast"]),
                     log_dir, env={"RUST_LOG": "warn"})
        children.append(mock)
        wait_ready(mock, p, "/_mock/stats")
        policy = os.path.join(log_dir, "hot-policy.yaml")
        with open(policy, "w") as f:
            f.write(HOT_POLICY.format(p=p))
        pods = {}
        for name, extra in (("unshared", []), ("--shared-state", ["--shared-state", f"redis://127.0.0.1:{redis_port}"])):
            proxy, admin = free_port(), free_port()
            argv = pin.wrap("proxy", [binary, "run", "--listen", f"127.0.0.1:{proxy}", "--admin", f"127.0.0.1:{admin}",
                                      "--policy-file", policy] + extra)
            pod = Child(f"hot-{name.strip('-')}", argv, log_dir, env={"RUST_LOG": "warn", "BENCH_KEY": "sk-bench"})
            children.append(pod)
            wait_ready(pod, admin, "/readyz")
            pods[name] = (pod, f"http://127.0.0.1:{proxy}/v1/chat/completions")
        time.sleep(1.5)
        direct_url = f"http://127.0.0.1:{p}/v1/chat/completions"
        samples = {name: [] for name in ("direct", *pods)}
        # ABBA order: whichever sidecar is measured first in a round has no edge overall.
        for round_ in range(HOT_ROUNDS):
            samples["direct"].append(measure.wrk(pin, direct_url, "bench", 1, HOT_SECONDS))
            order = list(pods.items()) if round_ % 2 == 0 else list(reversed(pods.items()))
            for name, (pod, url) in order:
                samples[name].append(measure.wrk(pin, url, "bench", 1, HOT_SECONDS, pod.pid))
        median = lambda runs, key: sorted(r[key] for r in runs)[len(runs) // 2]
        direct_p50 = median(samples["direct"], "p50")
        return {name: {"added_p50_us": median(samples[name], "p50") - direct_p50,
                       "cpu_us_per_req": median(samples[name], "cpu_us_per_req")}
                for name in pods} | {"direct_p50_us": direct_p50}
    finally:
        for child in reversed(children):
            child.stop()


def render(results):
    rows = ["| run | phase | app calls | app failures | upstream 429s | app calls that met the sick primary first |",
            "| --- | --- | --- | --- | --- | --- |"]
    hot = results.pop("hot_path")
    for name, r in results.items():
        s, h = r["storm"], r["black_hole"]
        rows.append(f"| {name} | 429 storm | {s['calls']:,} | {s['failures']} | {s['upstream_429s']} | {s['waited']} |")
        rows.append(f"| {name} | black hole | {h['calls']:,} | {h['failures']} | – | {h['waited']} |")
    return "\n".join([
        START,
        "## Fleet lane (8 sidecars, one primary, shared state through Redis)",
        "",
        f"Written by `bench/fleet.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {PODS} sidecar "
        f"processes, one paced client each (a call a second, the {PODS} clients spread over the second), "
        f"{PHASE_SECONDS} s per phase: the primary "
        "answers every call 429 with `retry-after: 5` (its quota is spent), then becomes a black hole "
        "(`timeouts.firstByte: 500ms`, `consecutiveFailures: 3`).",
        "",
        *rows,
        "",
        "A shared 429 cooldown spares the quota every other pod's 429. Breaker hints help a black "
        "hole only when some pods learn it well before the rest: here every pod calls once a second "
        "and needs three failures, so most have met it before a quorum (3 of 8) reports it.",
        "",
        f"Hot-path cost of the shared view: one sidecar with and one without `--shared-state` (same "
        f"policy, a budget on the target so every call reserves and settles), wrk at c=1, {HOT_ROUNDS} "
        f"rounds of {HOT_SECONDS} s in ABBA order, medians; direct p50 {hot['direct_p50_us']:.0f} µs. The "
        "request path is the same code either way (the fleet's usage is two relaxed atomic loads); "
        "the sync task's own CPU (a usage write and read every 100 ms, a full read a second) is "
        "counted in the shared sidecar's figure.",
        "",
        "| sidecar | added p50 over direct | CPU per request |",
        "| --- | --- | --- |",
        *(f"| {name} | {hot[name]['added_p50_us']:.0f} µs | {hot[name]['cpu_us_per_req']:.1f} µs |"
          for name in ("unshared", "--shared-state")),
        f"| ratio | {hot['--shared-state']['added_p50_us'] / max(hot['unshared']['added_p50_us'], 1):.2f}× | "
        f"{hot['--shared-state']['cpu_us_per_req'] / hot['unshared']['cpu_us_per_req']:.3f}× |",
        "",
        "Command: `bench/fleet.sh`.",
        END,
    ])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    args = parser.parse_args()
    log_dir = tempfile.mkdtemp(prefix="switchyard-fleet-")
    results = {"unshared": run(args.binary, False, log_dir), "--shared-state": run(args.binary, True, log_dir),
               "hot_path": hot_path(args.binary, log_dir)}
    block = render(results)
    splice("bench/RESULTS.md", block, START, END)
    print(block)


if __name__ == "__main__":
    main()
