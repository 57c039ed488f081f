"""Benchmark rig entry point (run by bench/run.sh): starts the mocks and each contender
on 127.0.0.1, runs every measure, and writes bench/RESULTS.md and bench/latency.png.

Invariant: contenders run one at a time in front of the same mocks, so they never
compete for the CPU with each other; every process started here is stopped here.
"""

import argparse
import json
import os
import sys
import time

import contenders
import measure
import report
import tls_lane
from procs import Child, Pinning, free_port, rss_kib, wait_ready

PROFILES = {
    "quick": {"c1": 5, "step": 3, "levels": [1, 2, 4, 8, 16, 32, 64], "sse_streams": 10,
              "hold": 1000, "soak": 30, "soak_sample": 5, "startups": 3},
    "full": {"c1": 20, "step": 10, "levels": [1, 2, 4, 8, 16, 32, 64, 128], "sse_streams": 50,
             "hold": 1000, "soak": 600, "soak_sample": 15, "startups": 10},
}


def startup_times(binary, mocks, pin, log_dir, count):
    times = []
    for i in range(count):
        port, admin = free_port(), free_port()
        policy = os.path.join(log_dir, "switchyard-policy.yaml")
        argv = pin.wrap("proxy", [binary, "run", "--listen", f"127.0.0.1:{port}",
                                  "--admin", f"127.0.0.1:{admin}", "--policy-file", policy])
        if i == 0:
            measure.record(argv)
        child = Child(f"switchyard-startup-{i}", argv, log_dir, env={"RUST_LOG": "warn", "BENCH_KEY": "x"})
        try:
            times.append(wait_ready(child, admin, "/readyz"))
        finally:
            child.stop()
    return sorted(times)


def sse_lane(pin, probe_bin, url, streams):
    """One untimed stream first: the first stream through a contender opens its upstream
    connection and touches cold code, and with 10–50 streams it alone would be the p99."""
    measure.probe(pin, probe_bin, url, "bench-sse", 1, 1)
    return measure.sse_summary(measure.probe(pin, probe_bin, url, "bench-sse", streams, 1))


def responses_lane(pin, probe_bin, chat_url, streams, model="bench-sse"):
    """The SSE lane's stream as a Responses stream (issue 13): the commit point and the
    passthrough (or translation) of Responses events, timed the same way."""
    url = contenders.responses_url(chat_url)
    measure.probe(pin, probe_bin, url, model, 1, 1)
    return measure.sse_summary(measure.probe(pin, probe_bin, url, model, streams, 1))


def proxy_lanes(contender, pin, prof, probe_bin, results, hold=True, soak=False):
    pid = contender.child.pid
    out = {"startup_s": contender.startup, "rss_idle_kib": rss_kib(pid)}
    out["c1"] = measure.wrk(pin, contender.url("fast"), "bench", 1, prof["c1"], pid)
    out["sweep"] = measure.sweep(pin, contender.url("fast"), "bench", prof["levels"], prof["step"], pid)
    out["sse"] = sse_lane(pin, probe_bin, contender.url("sse"), prof["sse_streams"])
    out["responses"] = responses_lane(pin, probe_bin, contender.url("sse"), prof["sse_streams"])
    if contender.name == "switchyard":
        out["responses-crossed"] = responses_lane(pin, probe_bin, contender.url("sse"), prof["sse_streams"],
                                                  contenders.RESPONSES_MODELS["responses-crossed"])
    out["rss_after_load_kib"] = rss_kib(pid)
    if hold:
        raw = measure.probe(pin, probe_bin, contender.url("hold"), "bench-hold", prof["hold"], prof["hold"], rss_pid=pid)
        out["hold"] = {"streams": prof["hold"], "errors": len(raw["errors"]), "rss_kib": raw["rss_kib_all_open"]}
    if soak:
        out["soak"] = measure.soak(pin, contender.url("fast"), "bench", prof["soak"], pid, prof["soak_sample"])
    results[contender.name] = out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--binary", required=True)
    parser.add_argument("--probe", required=True)
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--litellm", required=True)
    parser.add_argument("--out", default="bench")
    parser.add_argument("--only", default="direct,tcp-forwarder,switchyard,envoy,litellm,tls-h2")
    parser.add_argument("--same-core", action="store_true",
                        help="pin the proxy to the load generator's core instead of the other one")
    args = parser.parse_args()
    prof = PROFILES["quick" if args.quick else "full"]
    only = args.only.split(",")
    log_dir = os.path.join(args.out, "logs")
    os.makedirs(log_dir, exist_ok=True)
    pin = Pinning(same=args.same_core)
    meta = report.machine(pin, "quick" if args.quick else "full")
    results = {}
    mocks = contenders.Mocks(args.binary, pin, log_dir)
    try:
        if "direct" in only:
            direct = contenders.Direct(mocks)
            results["direct"] = {
                "c1": measure.wrk(pin, direct.url("fast"), "bench", 1, prof["c1"]),
                "sweep": measure.sweep(pin, direct.url("fast"), "bench", prof["levels"], prof["step"]),
                "sse": sse_lane(pin, args.probe, direct.url("sse"), prof["sse_streams"]),
                "responses": responses_lane(pin, args.probe, direct.url("sse"), prof["sse_streams"]),
            }
        if "tcp-forwarder" in only:
            # socat forks a child per connection that exits with it, so its CPU is not
            # measurable from /proc after the run: latency only.
            forwarder = contenders.TcpForwarder(mocks, pin, log_dir)
            measure.record(forwarder.child.argv)
            try:
                results["tcp-forwarder"] = {
                    "c1": measure.wrk(pin, forwarder.url("fast"), "bench", 1, prof["c1"]),
                    "sweep": measure.sweep(pin, forwarder.url("fast"), "bench", prof["levels"], prof["step"]),
                }
            finally:
                forwarder.child.stop()
        for name, make, hold, soak in (
            ("switchyard", lambda: contenders.Switchyard(args.binary, mocks, pin, log_dir), True, True),
            ("envoy", lambda: contenders.Envoy(args.envoy, mocks, pin, log_dir), True, False),
            ("litellm", lambda: contenders.LiteLLM(args.litellm, mocks, pin, log_dir), False, False),
        ):
            if name not in only:
                continue
            print(f"== {name}", file=sys.stderr, flush=True)
            try:
                contender = make()
            except RuntimeError as err:
                # A contender that cannot start is reported, not fatal: the others still run.
                print(f"{name} did not start: {err}", file=sys.stderr)
                meta.setdefault("failed", {})[name] = str(err)
                continue
            measure.record(contender.child.argv)
            try:
                proxy_lanes(contender, pin, prof, args.probe, results, hold=hold, soak=soak)
            finally:
                contender.child.stop()
        if "switchyard" in only:
            results["switchyard"]["startups_s"] = startup_times(args.binary, mocks, pin, log_dir, prof["startups"])
    finally:
        mocks.stop()
    if "tls-h2" in only:
        results["tls-h2"] = tls_lane.run(args, pin, prof, log_dir, meta)
    meta["loadavg_end"] = open("/proc/loadavg").read().strip()
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results, "commands": measure.COMMANDS}, f, indent=1)
    report.write(args.out, meta, results, measure.COMMANDS)


if __name__ == "__main__":
    main()
