"""The measures of the benchmark (the Busbar/onthebench method): wrk runs at fixed
concurrency with the proxy's CPU read around them, the concurrency sweep, the SSE lane
through the timing probe, RSS at rest, with 1,000 open streams and over a soak.

Invariant: every run's exact command line is recorded for RESULTS.md; load only ever
targets 127.0.0.1.
"""

import json
import secrets
import os
import statistics
import subprocess
import threading
import time

from procs import cpu_seconds, rss_kib

COMMANDS = []

# The key every client sends: LiteLLM refuses to start without a master key, the others
# ignore it (switchyard drops it). Made per run; it guards nothing beyond loopback.
AUTH = "sk-" + secrets.token_hex(32)


def record(argv, env=None):
    prefix = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    COMMANDS.append((prefix + " " if prefix else "") + " ".join(argv))


def wrk(pin, url, model, connections, seconds, pid=None, lua="bench/post.lua"):
    """One closed-loop wrk run; adds `cpu_us_per_req` of `pid` when given."""
    argv = pin.wrap("load", [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", lua, url,
    ])
    env = {"BENCH_MODEL": model}
    record(argv, env)
    env["BENCH_AUTH"] = AUTH
    before = cpu_seconds(pid) if pid else None
    out = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("BENCH_JSON "))
    result = json.loads(line[len("BENCH_JSON "):])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["connections"] = connections
    if pid:
        served = max(result["requests"], 1)
        result["cpu_us_per_req"] = (cpu_seconds(pid) - before) * 1e6 / served
    return result


def sweep(pin, url, model, levels, seconds, pid=None):
    return [wrk(pin, url, model, c, seconds, pid) for c in levels]


def probe(pin, probe_bin, url, model, streams, concurrency, rss_pid=None):
    argv = pin.wrap("load", [
        probe_bin, "--url", url, "--model", model, "--streams", str(streams), "--concurrency", str(concurrency),
    ])
    if rss_pid:
        argv += ["--rss-pid", str(rss_pid)]
    record(argv)
    argv += ["--auth", AUTH]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def sse_summary(raw):
    return {
        "streams": raw["streams"],
        "errors": len(raw["errors"]),
        "events": raw["events"],
        "ttft_p50": percentile(raw["first_event_us"], 50),
        "ttft_p99": percentile(raw["first_event_us"], 99),
        "gap_p50": percentile(raw["gaps_us"], 50),
        "gap_p99": percentile(raw["gaps_us"], 99),
        "coalesced_first_read": raw["coalesced_first_read"],
        "coalesced_after_first": raw["coalesced_after_first"],
    }


def soak(pin, url, model, seconds, pid, sample_every):
    """Steady load for `seconds` while RSS is sampled; growth is a least-squares slope."""
    samples = []
    stop = threading.Event()

    def sampler():
        start = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - start, rss_kib(pid)))
            stop.wait(sample_every)

    thread = threading.Thread(target=sampler)
    thread.start()
    try:
        result = wrk(pin, url, model, 8, seconds, pid)
    finally:
        stop.set()
        thread.join()
    # The first fifth is warm-up (pools, allocator arenas); growth is measured after it.
    steady = [s for s in samples if s[0] >= seconds / 5] or samples
    slope = 0.0
    if len(steady) >= 2:
        xs, ys = [s[0] for s in steady], [s[1] for s in steady]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0
    return {
        "seconds": seconds,
        "requests": result["requests"],
        "rss_start_kib": samples[0][1] if samples else None,
        "rss_end_kib": samples[-1][1] if samples else None,
        "growth_kib_per_min": slope * 60,
        "samples": samples,
    }
