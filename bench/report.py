"""Turns the rig's results into bench/RESULTS.md (machine, date, exact commands, tables,
targets met or missed) and bench/latency.png (latency against offered load).

Invariant: every figure in the report comes from results.json of the same run; nothing
here measures.
"""

import os
import platform
import subprocess
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import tls_lane  # noqa: E402

ORDER = ["direct", "tcp-forwarder", "switchyard", "envoy", "litellm"]


def machine(pin, mode):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
    return {
        "mode": mode,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "pinning": pin.describe(),
        "loadavg_start": open("/proc/loadavg").read().strip(),
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[0:1],
    }


def us(v):
    return "–" if v is None else f"{v:,.0f} µs"


def fmt(v, unit="", digits=0):
    return "–" if v is None else f"{v:,.{digits}f}{unit}"


def frontier(points, limit_us):
    ok = [p["rps"] for p in points if p["p99"] < limit_us and p["status_errors"] == 0 and p["socket_errors"] == 0]
    return max(ok) if ok else None


def write(out, meta, results, commands):
    names = [n for n in ORDER if n in results]
    direct = results.get("direct")
    lines = [
        "# switchyard benchmark results",
        "",
        "Written by `bench/run.sh` (`bench/rig.py`); raw numbers in `bench/results.json`.",
        "",
        "## Machine and run",
        "",
        f"- mode: **{meta['mode']}**; started {meta['started']}, finished {meta.get('finished', '?')}",
        f"- CPU: {meta['cpu']} × {meta['cores']} cores; memory {meta['memory']}; kernel {meta['kernel']}",
        f"- pinning: {meta['pinning']}",
        *[f"- {n} did not start: {why}" for n, why in meta.get("failed", {}).items()],
        f"- /proc/loadavg at start: `{meta['loadavg_start']}`; at end: `{meta.get('loadavg_end', '?')}`",
        "",
        "## Added latency at concurrency 1 (small JSON reply, wrk closed loop)",
        "",
        "| contender | p50 | p99 | p99.9 | added p50 | added p99 | p50 / direct p50 | req/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n in names:
        c1 = results[n]["c1"]
        add50 = c1["p50"] - direct["c1"]["p50"] if direct else None
        add99 = c1["p99"] - direct["c1"]["p99"] if direct else None
        ratio = c1["p50"] / direct["c1"]["p50"] if direct else None
        lines.append(f"| {n} | {us(c1['p50'])} | {us(c1['p99'])} | {us(c1['p999'])} | {us(add50)} | {us(add99)} | "
                     f"{fmt(ratio, '×', 2)} | {fmt(c1['rps'])} |")
    lines += ["", "## Throughput frontier (max req/s from the concurrency sweep with p99 under the limit)", "",
              "| contender | p99 < 1 ms | p99 < 5 ms | p99 < 10 ms | best req/s (any p99) |", "| --- | --- | --- | --- | --- |"]
    for n in names:
        sw = results[n]["sweep"]
        lines.append(f"| {n} | {fmt(frontier(sw, 1000))} | {fmt(frontier(sw, 5000))} | {fmt(frontier(sw, 10000))} | "
                     f"{fmt(max(p['rps'] for p in sw))} |")
    lines += ["", "Sweep points (connections → req/s, p50, p99, proxy CPU per request):", ""]
    for n in names:
        pts = "; ".join(f"c={p['connections']}: {p['rps']:,.0f}/s, {p['p50']} / {p['p99']} µs"
                        + (f", {p['cpu_us_per_req']:.0f} µs CPU" if "cpu_us_per_req" in p else "")
                        for p in results[n]["sweep"])
        lines.append(f"- **{n}**: {pts}")
    lines += ["", "## CPU per non-streaming request (proxy process user+system time from /proc, divided by requests served)", "",
              "| contender | at c=1 | at the sweep's highest concurrency | ratio to switchyard (c=1) |", "| --- | --- | --- | --- |"]
    sy_cpu = results.get("switchyard", {}).get("c1", {}).get("cpu_us_per_req")
    for n in names:
        if "cpu_us_per_req" not in results[n]["c1"]:
            continue
        c1 = results[n]["c1"].get("cpu_us_per_req")
        top = results[n]["sweep"][-1].get("cpu_us_per_req")
        lines.append(f"| {n} | {us(c1)} | {us(top)} | {fmt(c1 / sy_cpu if sy_cpu and c1 else None, '×', 1)} |")
    lines += ["", "## SSE lane (64 deltas 20 ms apart, one stream at a time after one untimed warm-up stream; `examples/sse_probe.rs`)", "",
              "| contender | streams | errors | TTFT p50 | TTFT p99 | added TTFT p99 | gap p50 | gap p99 | added gap p99 | coalesced (commit flush) | coalesced (after) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n in (n for n in names if "sse" in results[n]):
        s = results[n]["sse"]
        d = direct["sse"] if direct else None
        add_ttft = s["ttft_p99"] - d["ttft_p99"] if d and s["ttft_p99"] is not None else None
        add_gap = s["gap_p99"] - d["gap_p99"] if d and s["gap_p99"] is not None else None
        lines.append(f"| {n} | {s['streams']} | {s['errors']} | {us(s['ttft_p50'])} | {us(s['ttft_p99'])} | {us(add_ttft)} | "
                     f"{us(s['gap_p50'])} | {us(s['gap_p99'])} | {us(add_gap)} | {s['coalesced_first_read']} | {s['coalesced_after_first']} |")
    lines += ["", "## Responses lane (the SSE lane's 64 deltas as `POST /v1/responses` events; native passthrough, and switchyard translating to a Chat-only target as `switchyard (crossed)`)", "",
              "| contender | streams | errors | events | TTFT p50 | TTFT p99 | added TTFT p50 | gap p50 | gap p99 | added gap p99 | coalesced (after) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    d = direct.get("responses") if direct else None
    for label, s in ((f"{n} (crossed)" if lane == "responses-crossed" else n, results[n][lane])
                     for n in names for lane in ("responses", "responses-crossed") if lane in results[n]):
        add_ttft = s["ttft_p50"] - d["ttft_p50"] if d and s["ttft_p50"] is not None else None
        add_gap = s["gap_p99"] - d["gap_p99"] if d and s["gap_p99"] is not None else None
        lines.append(f"| {label} | {s['streams']} | {s['errors']} | {s['events']} | {us(s['ttft_p50'])} | {us(s['ttft_p99'])} | {us(add_ttft)} | "
                     f"{us(s['gap_p50'])} | {us(s['gap_p99'])} | {us(add_gap)} | {s['coalesced_after_first']} |")
    lines += ["", "## Memory and start-up", "",
              "| contender | RSS idle | RSS after load | RSS with open streams | start-up to ready |", "| --- | --- | --- | --- | --- |"]
    for n in (n for n in names if "rss_idle_kib" in results[n]):
        r = results[n]
        hold = r.get("hold")
        held = f"{hold['rss_kib'] / 1024:.1f} MiB ({hold['streams']} streams, {hold['errors']} errors)" if hold and hold["rss_kib"] else "not measured"
        lines.append(f"| {n} | {r['rss_idle_kib'] / 1024:.1f} MiB | {r['rss_after_load_kib'] / 1024:.1f} MiB | {held} | {r['startup_s'] * 1000:.0f} ms |")
    sy = results.get("switchyard")
    if sy:
        st = sy.get("startups_s", [])
        if st:
            lines += ["", f"switchyard start-up to `/readyz` 200 over {len(st)} starts: min {st[0] * 1000:.1f} ms, "
                      f"median {st[len(st) // 2] * 1000:.1f} ms, max {st[-1] * 1000:.1f} ms (spawn → first 200, polled every 0.5 ms)."]
        if "soak" in sy:
            so = sy["soak"]
            lines += ["", f"Soak: {so['seconds']} s at 8 connections, {so['requests']:,} requests; RSS {so['rss_start_kib'] / 1024:.1f} → "
                      f"{so['rss_end_kib'] / 1024:.1f} MiB; growth after warm-up {so['growth_kib_per_min']:+.1f} KiB/min (least squares)."]
    lines += ["", "## Targets (issue 7)", ""] + targets(results)
    if "tls-h2" in results:
        lines += [""] + tls_lane.section(results["tls-h2"])
    analysis = os.path.join(out, "ANALYSIS.md")
    if os.path.exists(analysis):
        # Hand-written findings (profiles, load on the machine) kept across re-runs.
        lines += ["", open(analysis).read().rstrip()]
    lines += ["", "![latency against offered load](latency.png)", "", "## Exact commands", "", "```sh"] + commands + ["```", ""]
    path = os.path.join(out, "RESULTS.md")
    # Lanes run by their own scripts (bench/hedge.sh) keep their block across re-renders.
    old = open(path).read() if os.path.exists(path) else ""
    for start, end in [("<!-- hedge-lane:start -->", "<!-- hedge-lane:end -->"),
                       ("<!-- fleet-lane:start -->", "<!-- fleet-lane:end -->")]:
        if start in old and end in old:
            lines += [start + old.split(start, 1)[1].split(end, 1)[0] + end, ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    plot(out, results, names)


def targets(results):
    d, s = results.get("direct"), results.get("switchyard")
    if not (d and s):
        return ["(needs both direct and switchyard in the run)"]
    rows = []

    def row(what, ok, figure):
        rows.append(f"- {'met' if ok else '**missed**'}: {what} — {figure}")

    ratio = s["c1"]["p50"] / d["c1"]["p50"]
    floor = results.get("tcp-forwarder")
    floor_note = f" (a bare TCP forwarder on the same rig: {floor['c1']['p50'] / d['c1']['p50']:.2f}×)" if floor else ""
    row("added latency p50 ≤ 1.2× direct", ratio <= 1.2, f"{ratio:.2f}×{floor_note}")
    add99 = s["c1"]["p99"] - d["c1"]["p99"]
    row("added latency p99 ≤ 250 µs", add99 <= 250, f"{add99} µs")
    e, l = results.get("envoy"), results.get("litellm")
    cpu = s["c1"].get("cpu_us_per_req")
    if e:
        row("CPU/request ≤ Envoy's", cpu <= e["c1"]["cpu_us_per_req"], f"{cpu:.0f} vs {e['c1']['cpu_us_per_req']:.0f} µs")
    if l:
        row("CPU/request ≥ 50× less than LiteLLM's", l["c1"]["cpu_us_per_req"] >= 50 * cpu,
            f"{l['c1']['cpu_us_per_req'] / cpu:.0f}×")
    ttft = s["sse"]["ttft_p99"] - d["sse"]["ttft_p99"]
    row("added TTFT p99 < 0.5 ms", ttft < 500, f"{ttft} µs")
    gap = s["sse"]["gap_p99"] - d["sse"]["gap_p99"]
    row("added inter-event p99 < 100 µs", gap < 100, f"{gap} µs")
    row("no coalescing after the commit point", s["sse"]["coalesced_after_first"] == 0,
        f"{s['sse']['coalesced_after_first']} after, {s['sse']['coalesced_first_read']} in the commit-point flush")
    row("RSS idle ≤ 8 MiB", s["rss_idle_kib"] <= 8 * 1024, f"{s['rss_idle_kib'] / 1024:.1f} MiB")
    if s.get("hold") and s["hold"]["rss_kib"]:
        row("RSS with 1,000 open streams ≤ 40 MiB", s["hold"]["rss_kib"] <= 40 * 1024, f"{s['hold']['rss_kib'] / 1024:.1f} MiB")
    if "soak" in s:
        g = s["soak"]["growth_kib_per_min"]
        row(f"no RSS growth over the soak ({s['soak']['seconds']} s)", g <= 64, f"{g:+.1f} KiB/min")
    return rows


def plot(out, results, names):
    fig, ax = plt.subplots(figsize=(8, 5))
    for n in names:
        sw = results[n]["sweep"]
        line, = ax.plot([p["rps"] for p in sw], [p["p99"] / 1000 for p in sw], marker="o", label=f"{n} p99")
        ax.plot([p["rps"] for p in sw], [p["p50"] / 1000 for p in sw], marker=".", linestyle="--",
                color=line.get_color(), label=f"{n} p50")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("throughput = offered load of the closed-loop sweep (req/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency against load, small JSON reply (wrk, 1 thread, c = 1…)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "latency.png"), dpi=110)


if __name__ == "__main__":
    # Re-render RESULTS.md and the plot from the last run's results.json.
    import json
    import sys

    out_dir = sys.argv[1] if len(sys.argv) > 1 else "bench"
    with open(os.path.join(out_dir, "results.json")) as f:
        saved = json.load(f)
    write(out_dir, saved["meta"], saved["results"], saved["commands"])
