"""Turns the chaos bench's results into tables, bench/CHAOS.md and bench/chaos.png (app
success rate over time per contender, one panel per incident).

Invariant: every figure comes from the results of the same run; nothing here measures,
and matplotlib is only needed for the full report (--quick prints the tables alone).
"""

import os
import platform
import subprocess


def fmt(v, spec, unit=""):
    return "–" if v is None else f"{v:{spec}}{unit}"


def seconds(v):
    return "never" if v is None else f"{v:.2f} s"


def table(results, scs, names):
    lines = []
    for sc in scs:
        t = f"fault {sc.t1}–{sc.t2} s of {sc.end} s" if not sc.soak else f"faults from {sc.t1} s to {sc.t2} s"
        lines += ["", f"### {sc.title}", "", f"{t}; sick target: `{sc.sick}`."
                  + (" One target stays healthy throughout." if sc.healthy_one else ""), "",
                  "| contender | app calls | failures | success | truncated as complete | p50 | p99 | "
                  "upstream calls per app call (probes apart) | sick target dropped after | traffic back after |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name in names:
            r = results.get(sc.name, {}).get(name)
            if not r:
                continue
            if "error" in r:
                lines.append(f"| {name} | did not run: {r['error'][:80]} | | | | | | | | |")
                continue
            dropped = "–" if sc.soak else seconds(r.get("diverted_s"))
            back = "–" if sc.soak else seconds(r.get("returned_s"))
            lines.append(
                f"| {name} | {r['calls']:,} | {r['failures']:,} | {fmt(r['success_rate'], '.2%')} | "
                f"{r['truncated']} | {fmt(r['p50'] and r['p50'] * 1000, ',.0f', ' ms')} | "
                f"{fmt(r['p99'] and r['p99'] * 1000, ',.0f', ' ms')} | {fmt(r['amplification'], '.3f')} | "
                f"{dropped} | {back} |")
        if sc.soak:
            lines += ["", "| contender | RSS before / peak / after | descriptors before / peak / after |",
                      "| --- | --- | --- |"]
            for name in names:
                r = results.get(sc.name, {}).get(name)
                if r and "rss_kib" in r:
                    rss, fd = r["rss_kib"], r["fds"]
                    lines.append(f"| {name} | {rss['baseline'] / 1024:.1f} / {rss['peak'] / 1024:.1f} / "
                                 f"{rss['settled'] / 1024:.1f} MiB | {fd['baseline']} / {fd['peak']} / {fd['settled']} |")
        crossed = {name: results[sc.name][name].get("threshold_s") for name in names
                    if results.get(sc.name, {}).get(name, {}).get("threshold_s") is not None}
        if crossed:
            lines += ["", "Rate rule (60 s window, 20%, 10 calls) crossed, counted from the calls the primary got: "
                      + "; ".join(f"{n} at {v:.2f} s" for n, v in crossed.items()) + "."]
        judged = {name: results[sc.name][name] for name in names
                  if "judged_calls" in results.get(sc.name, {}).get(name, {})}
        if judged:
            lines += ["", "Failures among calls made while a target was up (before the fault, or from "
                      "300 ms after the backup recovered; a call in the outage cannot succeed, and one "
                      "that fails fast is soon followed by another, so the counts above favour the slow): "
                      + "; ".join(f"{n} {r['judged_failures']} of {r['judged_calls']:,}" for n, r in judged.items()) + "."]
        errors = {name: results[sc.name][name].get("errors") for name in names
                  if results.get(sc.name, {}).get(name, {}).get("errors")}
        if errors:
            lines += ["", "App-visible errors (first kinds):", ""]
            for name, errs in errors.items():
                lines.append(f"- {name}: " + "; ".join(f"`{e[:100]}`" for e in errs[:3]))
    return "\n".join(lines)


def plot(path, results, scs, names):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    rows = (len(scs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3 * rows), squeeze=False)
    for ax, sc in zip(axes.flat, scs):
        ax.axvspan(sc.t1, sc.t2, color="0.9")
        for name in names:
            r = results.get(sc.name, {}).get(name)
            if not r or "timeline" not in r:
                continue
            width = 5.0 if sc.soak else 1.0
            bins = {}
            for t, ok in r["timeline"]:
                b = int(t // width)
                tot, good = bins.get(b, (0, 0))
                bins[b] = (tot + 1, good + ok)
            xs = sorted(bins)
            ax.plot([(x + 0.5) * width for x in xs], [100 * bins[x][1] / bins[x][0] for x in xs],
                    label=name, linewidth=1.2)
        ax.set_title(sc.title, fontsize=9)
        ax.set_ylim(-5, 105)
        ax.set_xlabel("s", fontsize=8)
        ax.set_ylabel("app calls ok %", fontsize=8)
    for ax in list(axes.flat)[len(scs):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("App success rate over time (grey: fault window)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def user_args(argv):
    """chaos.py's argv without what chaos.sh adds (the tool paths)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--binary", "--envoy", "--litellm"):
            skip = True
        else:
            out.append(a)
    return " ".join(out)


def write(out, meta, results, scs, names, missed):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    plot(os.path.join(out, "chaos.png"), results, scs, names)
    head = [
        "# Chaos bench: switchyard side by side with the alternatives",
        "",
        "Written by `bench/chaos.sh` (`bench/chaos.py`, `bench/chaos_report.py`); the analysis below the",
        "tables is kept by hand between the `analysis` markers.",
        "",
        f"- Run: {meta['started']} to {meta['finished']}, mode `{meta['mode']}`, commit `{commit}`.",
        f"- Machine: {cpu}, {os.cpu_count()} cores, {mem}, Linux {platform.release()}; load average at start "
        f"`{meta['loadavg_start']}`, at end `{meta['loadavg_end']}` (shared with other builds: latencies are indicative).",
        "- Commands: " + "; ".join(f"`bench/chaos.sh {user_args(p['argv'])}`" for p in meta.get("parts", [meta]))
        + " (`SWITCHYARD_BIN` as below; exact argv in `bench/chaos.json`).",
        f"- Load: {meta['profile']['workers']} app workers per contender (8 for reasoning), the official `openai` SDK,"
        " `max_retries=0`, 30 s timeout, calls 50 ms apart, every other call streamed. A call counts as a success only"
        " if it ended without an SDK error **and** carried the mock's full answer text and a finish reason;"
        " one that ended without an error but incomplete is a *truncated answer passed off as complete*.",
        "- Mocks: `switchyard mock` (primary `p`, backup `b`), normal 30 ms to headers, 8 deltas 15 ms apart;"
        " fault sets posted to `/_mock/faults` at the times given; amplification from their `/_mock/stats` counters"
        " (less switchyard's active probes, which the mocks count apart by their user-agent). Each contender meets each incident freshly started, in front of fresh mocks; contenders"
        " run one after another, except the soak, which runs them all at once (each with its own mocks).",
        "- *Sick target dropped after*: from the fault's start until, in every following second of the fault, the sick"
        " target gets at most 10% of the app calls (+1). *Traffic back after*: from the fault's end until, over a second,"
        " it gets at least half of them.",
        "",
        "Contenders: `direct` (the app calls the primary: the downtime baseline); `switchyard` (policy below: two"
        " targets, defaults except active probes and a 1 s open period); `switchyard-defaults` (the same without"
        " probes, the default 30 s doubling open period: the *before* of the recovery comparison); `litellm` (router,"
        " fallback to the backup, `num_retries: 0`, `allowed_fails: 3`, `cooldown_time: 5`, `timeout: 10`); `envoy`"
        " (priority 0/1, one retry on 5xx/reset/connect-failure/429/529, `per_try_timeout: 10s`, outlier detection:"
        " 3 consecutive 5xx or gateway failures or 20% of 10 calls, ejection 5 s growing to 30 s, 1 s interval).",
        "",
    ]
    targets = ["## Targets (switchyard)", ""]
    targets += ["All met." if not missed else "Missed:"] + [f"- {m}" for m in missed]
    body = head + targets + ["", "## Results", table(results, scs, names), "", "![success over time](chaos.png)", ""]
    path = os.path.join(out, "CHAOS.md")
    kept = ""
    if os.path.exists(path):
        text = open(path).read()
        start, end = "<!-- analysis:start -->", "<!-- analysis:end -->"
        if start in text and end in text:
            kept = start + text.split(start, 1)[1].split(end, 1)[0] + end + "\n"
    with open(path, "w") as f:
        f.write("\n".join(body) + "\n" + kept)


def merge(paths, out):
    """Joins runs made apart (the incidents and the soak, each its own chaos.py process;
    an incident rerun after a fix) into one chaos.json and report; the first run's meta
    leads, the others' are kept."""
    import json
    from types import SimpleNamespace

    runs = [json.load(open(p)) for p in paths]
    meta = dict(runs[0]["meta"], parts=[r["meta"] for r in runs])
    meta["finished"] = max(r["meta"]["finished"] for r in runs)
    meta["loadavg_end"] = runs[-1]["meta"]["loadavg_end"]
    results, by_name, missed, names = {}, {}, [], []
    for r in runs:
        # A later run's incident replaces an earlier run's of the same name (a rerun of
        # one incident after a fix), results, misses and all.
        fresh = {s["name"] for s in r["scenarios"]}
        missed = [m for m in missed if m.split(":", 1)[0] not in fresh] + r["misses"]
        results.update(r["results"])
        by_name.update((s["name"], SimpleNamespace(**s)) for s in r["scenarios"])
        names += [n for n in r["meta"]["contenders"] if n not in names]
    scs = list(by_name.values())
    with open(os.path.join(out, "chaos.json"), "w") as f:
        json.dump({"meta": meta, "results": results, "misses": missed,
                   "scenarios": [vars(s) for s in scs]}, f, indent=1)
    write(out, meta, results, scs, names, missed)


if __name__ == "__main__":
    import sys

    merge(sys.argv[2:], sys.argv[1])
