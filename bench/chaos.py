"""The chaos bench (issue 17): the same fault-scripted mocks and the same app load (the
official `openai` SDK, `max_retries=0`, a few concurrent workers, streamed and
non-streamed calls) through each contender — direct, switchyard, LiteLLM, Envoy — one
incident script at a time. Reports app-visible failures, truncated answers passed off as
complete, latency, amplification (upstream calls per app call, active probes apart, from the mocks' own
counters) and how fast the sick target stops and starts getting traffic again; writes
bench/CHAOS.md, bench/chaos.json and bench/chaos.png. `--quick` runs direct and
switchyard only with short incidents and exits non-zero when switchyard misses a target.

Invariant: everything runs on 127.0.0.1; each contender meets each incident freshly
started in front of freshly reset mocks, so no breaker state or pool carries over; every
process started here is stopped here (by its own pid).
"""

import argparse
import bisect
import json
import math
import os
import sys
import threading
import time
import urllib.request

import openai

from procs import Child, free_port, rss_kib, tree, wait_ready

MODEL = "chaos"
MESSAGES = [{"role": "user", "content": "Say hello."}]
# A provider's normal on this rig: 30 ms to headers, an 8-delta answer 15 ms apart.
BASE = {"latency": "30ms", "chunks": 8, "chunkInterval": "15ms"}
# A reasoning model: 6 s of thinking (reasoning deltas once a second when streamed,
# silence when not), then 40 tokens at 20 tokens/s: ~8 s a call, healthy throughout.
REASONING = {"latency": "30ms", "think": "6s", "tokens": 40, "tokensPerSecond": 20.0}
SLOW = dict(BASE, latency="300ms", chunkInterval="150ms")
RETRY_BUDGET_RATIO = 0.2

PROFILES = {
    # warm-up, fault, after (seconds); soak length and fault period; workers.
    "quick": {"warm": 3, "fault": 8, "after": 5, "soak": 60, "soak_period": 5, "workers": 4},
    "full": {"warm": 8, "fault": 30, "after": 12, "soak": 600, "soak_period": 20, "workers": 4},
}


def post(port, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST",
                                 headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def mock_calls(port):
    """Calls the mock got that an app call caused: its count less the sidecar's active
    probes (which say so in their user-agent), so diversion, return and amplification
    measure the app's traffic and not a half-open trial's."""
    try:
        stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/_mock/stats", timeout=5))
    except OSError:
        return None
    return stats["calls"] - stats.get("probes", 0)


class Scenario:
    """An incident script: `events` are (second, mock, fault set) from the scenario's
    start; `sick` is the target whose diversion and return are timed, over the window
    (`t1`, `t2`); `healthy_one` says whether one target stays healthy throughout (the
    99.9% target applies)."""

    def __init__(self, name, title, events, t1, t2, end, sick="p", healthy_one=True, base=None,
                 workers=None, soak=False):
        self.name, self.title, self.events = name, title, events
        self.t1, self.t2, self.end, self.sick = t1, t2, end, sick
        self.healthy_one, self.base, self.workers, self.soak = healthy_one, base or BASE, workers, soak


def scenarios(prof):
    w, f, a = prof["warm"], prof["fault"], prof["after"]
    t1, t2, end = w, w + f, w + f + a

    def window(mock, faults, base=BASE):
        return [(t1, mock, dict(base, **faults)), (t2, mock, dict(base))]

    brown = []
    for i, t in enumerate(range(t1, t2, 2)):
        brown.append((t, "p", dict(BASE, errorRate=0.3, errorStatus=529 if i % 2 else 503)))
    brown.append((t2, "p", dict(BASE)))
    out = [
        Scenario("hard-outage", "hard outage (503 for everything)", window("p", {"errorRate": 1.0, "errorStatus": 503}), t1, t2, end),
        Scenario("brown-out", "brown-out (30% 529/503)", brown, t1, t2, end),
        Scenario("black-hole", "black hole (requests read, never answered)", window("p", {"blackhole": True}), t1, t2, end),
        Scenario("429-storm", "429 storm with retry-after: 5", window("p", {"errorRate": 1.0, "errorStatus": 429, "retryAfter": 5}), t1, t2, end),
        Scenario("slow-primary", "slow primary (latency x10)", [(t1, "p", SLOW), (t2, "p", dict(BASE))], t1, t2, end),
        Scenario("reasoning", "reasoning-model traffic (8 s calls, healthy)", [], t1, t2, end + 8,
                 base=REASONING, workers=8),
        Scenario("all-down", "everything down, then the backup recovers",
                 [(t1, "p", dict(BASE, errorRate=1.0)), (t1, "b", dict(BASE, errorRate=1.0)), (t2, "b", dict(BASE))],
                 t1, t2, end, sick="b", healthy_one=False),
        Scenario("stream-cut", "streams cut mid-answer (after 3 of 8 deltas)", window("p", {"dropAfterChunks": 3}),
                 t1, t2, end, healthy_one=False),
    ]
    soak, period = [], prof["soak_period"]
    cycle = [("p", {"errorRate": 1.0}), None, ("p", {"errorRate": 0.3, "errorStatus": 529}), None,
             ("p", {"errorRate": 1.0, "errorStatus": 429, "retryAfter": 3}), None, ("p", {"blackhole": True}), None,
             ("b", {"errorRate": 1.0}), None]
    t, i = w, 0
    while t + period <= w + prof["soak"]:
        step = cycle[i % len(cycle)]
        if step:
            soak.append((t, step[0], dict(BASE, **step[1])))
            soak.append((t + period, step[0], dict(BASE)))
        t, i = t + period, i + 1
    out.append(Scenario("soak", f"soak: faults coming and going ({prof['soak'] // 60} min)", soak,
                        w, w + prof["soak"], w + prof["soak"] + a, soak=True))
    return out


# Everything down, then the backup recovers: calls started this long after the recovery
# are judged. Two call times of this load (p50 about 150 ms with its failovers): with
# every target excluded, a call's last chance goes to the target available soonest, which
# may be the other dead one, and the workers' calls in flight at the recovery may all
# have been sent there; the next calls find the backup (CI runs saw such a batch fail
# 130-150 ms after the recovery, with a 100 ms grace).
RECOVERY_GRACE = 0.3

EXPECTED, EXPECTED_LOCK = {}, threading.Lock()


class Mocks:
    """The primary (`p`) and backup (`b`) provider, both `switchyard mock`."""

    def __init__(self, binary, log_dir, tag=""):
        self.ports = {"p": free_port(), "b": free_port()}
        self.children = {}
        for name, port in self.ports.items():
            argv = [binary, "mock", "--listen", f"127.0.0.1:{port}", "--name", name]
            self.children[name] = Child(f"chaos-mock-{name}{tag}", argv, log_dir, env={"RUST_LOG": "warn"})
        for name, port in self.ports.items():
            wait_ready(self.children[name], port, "/_mock/stats")

    def base(self, name):
        return f"http://127.0.0.1:{self.ports[name]}"

    def reset(self, faults):
        for port in self.ports.values():
            post(port, "/_mock/reset")
            post(port, "/_mock/faults", faults)

    def expected(self, base):
        """Every complete answer either mock gives with `base` (streamed and not): what an
        app call must end with to count as complete. The text depends only on the mock's
        name and the answer's length, so it is asked once per fault set."""
        key = json.dumps(base, sort_keys=True)
        with EXPECTED_LOCK:
            if key in EXPECTED:
                return EXPECTED[key]
        texts = set()
        for name in self.ports:
            client = openai.OpenAI(base_url=f"{self.base(name)}/v1", api_key="x", max_retries=0, timeout=60)
            r = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            texts.add(r.choices[0].message.content)
            text = ""
            for chunk in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
                for c in chunk.choices:
                    text += c.delta.content or ""
            texts.add(text)
        with EXPECTED_LOCK:
            EXPECTED[key] = texts
        return texts

    def stop(self):
        for child in self.children.values():
            child.stop()


# ---- contenders -------------------------------------------------------------------

def switchyard_policy(mocks, probes=True):
    """Two targets, the failover strategy, switchyard's defaults except: active probes
    (which do the half-open trial, so the open period can be short without an app call
    meeting a target that may still be sick) and a 1 s open period that stays 1 s."""
    probe = "    probe: {interval: 5s}\n" if probes else ""
    breaker = "circuitBreaker: {openFor: 1s, maxOpenFor: 2s}\n" if probes else ""
    providers = "".join(
        f"  - name: {name}\n    api: openai\n    baseUrl: {mocks.base(name)}/v1\n"
        f"    auth: {{apiKey: {{fromEnv: BENCH_KEY}}}}\n{probe}"
        for name in ("p", "b")
    )
    return (
        "providers:\n" + providers
        + f"routes:\n  - model: {MODEL}\n    strategy: failover\n    targets:\n"
        "      - {provider: p, model: gpt-4o}\n      - {provider: b, model: gpt-4o-mini}\n"
        + breaker
        + f"retryBudget: {{ratio: {RETRY_BUDGET_RATIO}, minPerSecond: 10}}\n"
    )


class Direct:
    name = "direct"

    def __init__(self, mocks, log_dir, args):
        self.child = None
        self.base_url = f"{mocks.base('p')}/v1"


class Switchyard:
    name = "switchyard"

    def __init__(self, mocks, log_dir, args, probes=True, tag=""):
        port, self.admin = free_port(), free_port()
        policy = os.path.join(log_dir, f"chaos-switchyard{tag}.yaml")
        with open(policy, "w") as f:
            f.write(switchyard_policy(mocks, probes))
        argv = [args.binary, "run", "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{self.admin}",
                "--policy-file", policy]
        self.child = Child(f"chaos-switchyard{tag}", argv, log_dir, env={"RUST_LOG": "warn", "BENCH_KEY": "sk-bench"})
        wait_ready(self.child, self.admin, "/readyz")
        self.base_url = f"http://127.0.0.1:{port}/v1"


class SwitchyardNoProbes(Switchyard):
    """switchyard with its default breaker (30 s open, doubling) and no probes: the
    "before" of the recovery comparison."""

    name = "switchyard-defaults"

    def __init__(self, mocks, log_dir, args, tag=""):
        super().__init__(mocks, log_dir, args, probes=False, tag=tag + "-defaults")


def litellm_config(mocks):
    """The router: one deployment per mock, a fallback from the primary to the backup,
    no retries (as switchyard: one attempt per target), cooldown after 3 failures a
    minute for 5 s (LiteLLM's defaults, its counterpart of the breaker), a 10 s call
    timeout (its way to leave a black hole)."""
    return (
        "model_list:\n"
        f"  - model_name: {MODEL}\n    litellm_params:\n      model: openai/gpt-4o\n"
        f"      api_base: {mocks.base('p')}/v1\n      api_key: sk-bench\n      timeout: 10\n      stream_timeout: 10\n"
        f"  - model_name: {MODEL}-backup\n    litellm_params:\n      model: openai/gpt-4o-mini\n"
        f"      api_base: {mocks.base('b')}/v1\n      api_key: sk-bench\n      timeout: 10\n      stream_timeout: 10\n"
        "router_settings:\n  num_retries: 0\n  allowed_fails: 3\n  cooldown_time: 5\n"
        f'  fallbacks:\n    - {{"{MODEL}": ["{MODEL}-backup"]}}\n'
        "litellm_settings:\n  telemetry: false\n  set_verbose: false\n  request_timeout: 60\n"
    )


class LiteLLM:
    name = "litellm"

    def __init__(self, mocks, log_dir, args, tag=""):
        port = free_port()
        config = os.path.join(log_dir, f"chaos-litellm{tag}.yaml")
        with open(config, "w") as f:
            f.write(litellm_config(mocks))
        argv = [args.litellm, "--config", config, "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
        env = {"LITELLM_MASTER_KEY": "sk-bench", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
               "DISABLE_SCHEMA_UPDATE": "true"}
        self.child = Child(f"chaos-litellm{tag}", argv, log_dir, env=env)
        wait_ready(self.child, port, "/health/liveliness", limit=300)
        self.base_url = f"http://127.0.0.1:{port}/v1"


def envoy_config(mocks, port, admin):
    """The primary at priority 0, the backup at priority 1; one retry on 5xx, reset,
    connect failure and 429 to another host; a 10 s per-try timeout (a black hole's way
    out; reasoning calls take ~8 s); outlier detection ejecting after 3 consecutive 5xx
    or gateway errors, or 20% failures over 10 calls, for 5 s (growing with each
    ejection, up to 30 s), checked every second."""
    return f"""admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: chaos
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: chaos
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route:
                  cluster: chaos
                  timeout: 0s
                  retry_policy:
                    retry_on: 5xx,reset,connect-failure,retriable-status-codes
                    retriable_status_codes: [429, 529]
                    num_retries: 1
                    per_try_timeout: 10s
                    retry_host_predicate: [{{name: envoy.retry_host_predicates.previous_hosts, typed_config: {{"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: chaos
    type: STATIC
    connect_timeout: 1s
    outlier_detection:
      consecutive_5xx: 3
      consecutive_gateway_failure: 3
      interval: 1s
      base_ejection_time: 5s
      max_ejection_time: 30s
      max_ejection_percent: 100
      failure_percentage_threshold: 20
      failure_percentage_minimum_hosts: 1
      failure_percentage_request_volume: 10
      enforcing_failure_percentage: 100
    load_assignment:
      cluster_name: chaos
      endpoints:
      - priority: 0
        lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {mocks.ports['p']}}}}}}}}}]
      - priority: 1
        lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {mocks.ports['b']}}}}}}}}}]
"""


class Envoy:
    name = "envoy"

    def __init__(self, mocks, log_dir, args, tag=""):
        port, admin = free_port(), free_port()
        config = os.path.join(log_dir, f"chaos-envoy{tag}.yaml")
        with open(config, "w") as f:
            f.write(envoy_config(mocks, port, admin))
        argv = [args.envoy, "-c", config, "--concurrency", "1", "--log-level", "error", "--disable-hot-restart",
                "--base-id", str((os.getpid() + port) % 60000)]
        self.child = Child(f"chaos-envoy{tag}", argv, log_dir)
        wait_ready(self.child, admin, "/ready")
        self.base_url = f"http://127.0.0.1:{port}/v1"


CONTENDERS = {"direct": Direct, "switchyard": Switchyard, "switchyard-defaults": SwitchyardNoProbes,
              "litellm": LiteLLM, "envoy": Envoy}


# ---- load -------------------------------------------------------------------------

class Load:
    """`workers` app threads, each with its own SDK client, calling back to back (50 ms
    apart), every other call streamed; each call is recorded with its outcome."""

    def __init__(self, base_url, expected, workers, start):
        self.base_url, self.expected, self.start = base_url, expected, start
        self.calls, self.lock, self.stop = [], threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(workers)]

    def run(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)

    def one(self, client, stream):
        text, finish = "", None
        if stream:
            for chunk in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True):
                for c in chunk.choices:
                    text += c.delta.content or ""
                    finish = c.finish_reason or finish
        else:
            r = client.chat.completions.create(model=MODEL, messages=MESSAGES)
            text, finish = r.choices[0].message.content or "", r.choices[0].finish_reason
        return text, finish

    def worker(self, index):
        client = openai.OpenAI(base_url=self.base_url, api_key="sk-bench", max_retries=0, timeout=30)
        n = index
        while not self.stop.is_set():
            stream = n % 2 == 0
            n += 1
            t0 = time.monotonic()
            ok, truncated, error = False, False, None
            try:
                text, finish = self.one(client, stream)
                # The SDK ended the call without an error: the app takes it as complete.
                ok = finish is not None and text in self.expected
                truncated = not ok
                if truncated:
                    error = f"incomplete answer passed off as complete: finish={finish!r} text={text[:40]!r}"
            except Exception as err:  # noqa: BLE001 - any SDK error is an app-visible failure
                error = f"{type(err).__name__}: {str(err)[:120]}"
            t1 = time.monotonic()
            with self.lock:
                self.calls.append({"t": t0 - self.start, "end": t1 - self.start, "latency": t1 - t0,
                                   "stream": stream, "ok": ok, "truncated": truncated, "error": error})
            time.sleep(0.05)


class Sampler:
    """Reads both mocks' call counters every 50 ms, and the sidecar's RSS and open
    descriptors every second."""

    def __init__(self, mocks, start, pid=None):
        self.mocks, self.start, self.pid = mocks, start, pid
        self.samples, self.proc, self.stop = [], [], threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        last_proc = 0.0
        while not self.stop.is_set():
            now = time.monotonic() - self.start
            counts = {name: mock_calls(port) for name, port in self.mocks.ports.items()}
            if None not in counts.values():
                self.samples.append((now, counts["p"], counts["b"]))
            if self.pid and now - last_proc >= 1.0:
                self.proc.append((now, rss_kib(self.pid), fds(self.pid)))
                last_proc = now
            time.sleep(0.05)


def fds(pid):
    total = 0
    for p in tree(pid):
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return total


# ---- one run ----------------------------------------------------------------------

def probe_calls(contender):
    """Active probes the sidecar sent so far (its `switchyard_probes_total`): upstream
    calls no app call caused (the mocks count them apart, so they are not in the
    amplification), reported on their own. 0 for contenders without probes."""
    admin = getattr(contender, "admin", None)
    if not admin or not isinstance(contender, Switchyard):
        return 0
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    except OSError:
        return 0
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("switchyard_probes_total{")))


def run_scenario(make, sc, args, log_dir, workers, mocks=None, tag=""):
    own = mocks is None
    mocks = mocks or Mocks(args.binary, log_dir, tag)
    try:
        mocks.reset(sc.base)
        expected = mocks.expected(sc.base)
        mocks.reset(sc.base)
        contender = make(mocks, log_dir, args, tag=tag) if make is not Direct else Direct(mocks, log_dir, args)
        try:
            probes_before = probe_calls(contender)
            start = time.monotonic()
            load = Load(contender.base_url, expected, sc.workers or workers, start)
            sampler = Sampler(mocks, start, contender.child.pid if contender.child else None)
            sampler.thread.start()
            load.run()
            applied = []
            for at, mock, faults in sorted(sc.events, key=lambda e: e[0]):
                delay = at - (time.monotonic() - start)
                if delay > 0:
                    time.sleep(delay)
                post(mocks.ports[mock], "/_mock/faults", faults)
                # When the mock had it: on a loaded machine this process may post late.
                applied.append((at, mock, time.monotonic() - start))
            delay = sc.end - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
            load.join()
            # Idle a moment so the sidecar can drop what the incidents left, then read it.
            time.sleep(5 if sc.soak else 0.2)
            sampler.stop.set()
            sampler.thread.join()
            probes = probe_calls(contender) - probes_before
            settled = (rss_kib(contender.child.pid), fds(contender.child.pid)) if contender.child else None
        finally:
            if contender.child:
                contender.child.stop()
    finally:
        if own:
            mocks.stop()
    return summarize(sc, load.calls, sampler, settled, probes, applied)


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def diverted_after(sc, samples, calls):
    """Seconds from the fault's start until the sick target stops getting traffic: the
    first sample from which, in every following 1 s window until the fault ends, it gets
    at most 10% of the app calls started (+1 of slack; probes are not counted). None: it
    never stopped."""
    idx = 1 if sc.sick == "p" else 2
    pts = [s for s in samples if sc.t1 <= s[0] <= sc.t2]
    starts = sorted(c["t"] for c in calls)

    def app(a, b):
        return sum(1 for t in starts if a <= t < b)

    for i, s in enumerate(pts):
        ok = True
        for j in range(i, len(pts)):
            k = next((m for m in range(j, len(pts)) if pts[m][0] >= pts[j][0] + 1.0), None)
            if k is None:
                # At least one whole second of the fault must show it.
                ok = j > i
                break
            if pts[k][idx] - pts[j][idx] > 0.1 * app(pts[j][0], pts[k][0]) + 1:
                ok = False
                break
        if ok:
            return max(0.0, s[0] - sc.t1)
    return None


def returned_after(sc, samples, calls):
    """Seconds from the fault's end until traffic returns to the sick target: the first
    sample from which, over the next second, it gets at least half the app calls."""
    idx = 1 if sc.sick == "p" else 2
    pts = [s for s in samples if s[0] >= sc.t2 - 0.05]
    starts = sorted(c["t"] for c in calls)
    for i, s in enumerate(pts):
        k = next((m for m in range(i, len(pts)) if pts[m][0] >= s[0] + 1.0), None)
        if k is None:
            return None
        apps = sum(1 for t in starts if s[0] <= t < pts[k][0])
        if apps and pts[k][idx] - s[idx] >= 0.5 * apps:
            return max(0.0, s[0] - sc.t2)
    return None


def threshold_crossed(sc, samples, threshold=0.2, window=60.0, minimum=10):
    """For a brown-out: seconds from the fault's start until the failure rate over the
    breaker's sliding window (switchyard's defaults: 60 s, 20%, 10 calls) of the calls the
    sick target received reaches the threshold, had every call gone there; `diverted_s`
    minus this is how long the rate rule took once it could.

    Counted as the mock fails calls: call n of a fault setting (n from 0 when the setting
    was posted) fails when floor((n+1) * rate) > floor(n * rate), so after k calls a
    setting has failed floor(k * rate) of them. The brown-out posts a new setting every
    2 s, each starting with three successes; `rate` times the calls would run ahead of the
    mock by up to one failure per setting (about a second of the rule's crossing)."""
    idx = 1 if sc.sick == "p" else 2
    settings = sorted((at, f.get("errorRate", 0.0)) for at, mock, f in sc.events if mock == sc.sick)
    if not samples or not settings:
        return None

    times = [s[0] for s in samples]

    def calls_by(t):
        i = bisect.bisect_right(times, t)
        return samples[i - 1][idx] if i else samples[0][idx]

    def failed(a, b):
        """Failures the sick target answered between times a and b."""
        total = 0
        for i, (at, rate) in enumerate(settings):
            end = settings[i + 1][0] if i + 1 < len(settings) else float("inf")
            lo, hi = max(at, a), min(end, b)
            if lo >= hi:
                continue
            start = calls_by(at)
            total += math.floor((calls_by(hi) - start) * rate) - math.floor((calls_by(lo) - start) * rate)
        return total

    for s in samples:
        if not sc.t1 <= s[0] <= sc.t2:
            continue
        since = s[0] - window
        calls = s[idx] - calls_by(since)
        if calls >= minimum and failed(since, s[0]) / calls >= threshold:
            return s[0] - sc.t1
    return None


def summarize(sc, calls, sampler, settled, probes=0, applied=()):
    samples = sampler.samples
    n = len(calls)
    failures = sum(1 for c in calls if not c["ok"])
    upstream = (samples[-1][1] + samples[-1][2]) - (samples[0][1] + samples[0][2]) if samples else 0
    out = {
        "calls": n, "failures": failures, "failure_rate": failures / n if n else None,
        "success_rate": 1 - failures / n if n else None,
        "truncated": sum(1 for c in calls if c["truncated"]),
        "p50": pct([c["latency"] for c in calls if c["ok"]], 0.5),
        "p99": pct([c["latency"] for c in calls if c["ok"]], 0.99),
        "upstream_calls": upstream, "probe_calls": probes,
        "amplification": upstream / n if n else None,
        "errors": sorted({c["error"] for c in calls if c["error"]})[:5],
        "timeline": [[round(c["t"], 2), c["ok"]] for c in calls],
    }
    if not sc.soak:
        out["diverted_s"] = diverted_after(sc, samples, calls)
        out["returned_s"] = returned_after(sc, samples, calls)
    if sc.name == "brown-out":
        out["threshold_s"] = threshold_crossed(sc, samples)
    if not sc.healthy_one and sc.sick == "b":
        # Everything down: only calls made while a target was up can be judged: those
        # that ended before the first fault reached a mock, and those started
        # RECOVERY_GRACE after the recovery reached the backup (times as posted, not as
        # scripted).
        down = min((t for at, _, t in applied if at == sc.t1), default=sc.t1)
        up = max((t for at, mock, t in applied if at == sc.t2 and mock == sc.sick), default=sc.t2)
        judged = [c for c in calls if c["end"] < down or c["t"] >= up + RECOVERY_GRACE]
        out["judged_calls"] = len(judged)
        out["judged_failures"] = sum(1 for c in judged if not c["ok"])
    if sampler.proc:
        base = next((p for p in sampler.proc if p[0] >= sc.t1 - 1), sampler.proc[0])
        out["rss_kib"] = {"baseline": base[1], "peak": max(p[1] for p in sampler.proc),
                          "settled": settled[0] if settled else None}
        out["fds"] = {"baseline": base[2], "peak": max(p[2] for p in sampler.proc),
                      "settled": settled[1] if settled else None}
        out["proc"] = sampler.proc
    return out


def run_together(names, sc, args, log_dir, workers):
    """Every contender at once, each with its own pair of mocks and the same fault script:
    the soak (so a 10-minute soak costs 10 minutes) and every scenario of --quick (at 4
    workers each the machine is far from busy; latencies are then not comparable)."""
    results, threads = {}, []

    def one(name):
        try:
            results[name] = run_scenario(CONTENDERS[name], sc, args, log_dir, workers, tag=f"-{sc.name}-{name}")
        except Exception as err:  # noqa: BLE001 - a contender that fails is reported
            results[name] = {"error": str(err)}

    for name in names:
        threads.append(threading.Thread(target=one, args=(name,)))
        threads[-1].start()
    for t in threads:
        t.join()
    return results


# ---- targets ----------------------------------------------------------------------

def misses(results, scs, name="switchyard"):
    """The targets switchyard must meet (checked in --quick, reported in full)."""
    out = []
    for sc in scs:
        r = results.get(sc.name, {}).get(name)
        if not r or "error" in r:
            out.append(f"{sc.name}: no result")
            continue
        if r["truncated"]:
            out.append(f"{sc.name}: {r['truncated']} truncated answers passed off as complete")
        if sc.healthy_one and r["success_rate"] < 0.999:
            out.append(f"{sc.name}: success {r['success_rate']:.4%} < 99.9% ({r['errors']})")
        if r["amplification"] is not None and r["amplification"] > 1 + RETRY_BUDGET_RATIO:
            out.append(f"{sc.name}: amplification {r['amplification']:.3f} > {1 + RETRY_BUDGET_RATIO}")
        if r.get("judged_failures", 0) > r.get("judged_calls", 0) * 0.001:
            out.append(f"{sc.name}: {r['judged_failures']} of {r['judged_calls']} calls failed while a target was up")
        if sc.name == "reasoning":
            direct = results[sc.name].get("direct")
            if r["failures"]:
                out.append(f"reasoning: {r['failures']} healthy reasoning calls harmed")
            if direct and direct.get("p50") and r["p50"] > direct["p50"] * 1.1 + 0.1:
                out.append(f"reasoning: p50 {r['p50']:.2f}s vs direct {direct['p50']:.2f}s")
        if sc.soak and "rss_kib" in r:
            rss, fd = r["rss_kib"], r["fds"]
            if rss["settled"] > rss["baseline"] * 1.5 + 4096:
                out.append(f"soak: RSS {rss['settled']} KiB after vs {rss['baseline']} KiB before")
            # The upstream pool may keep one idle connection per worker to each of the
            # two targets (failover opens the backup's); a leak grows with the calls.
            pooled = 2 * (sc.workers or PROFILES["full"]["workers"])
            if fd["settled"] > fd["baseline"] + pooled:
                out.append(f"soak: {fd['settled']} descriptors after vs {fd['baseline']} before "
                           f"(pool allows {pooled} more)")
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--binary", required=True)
    parser.add_argument("--envoy")
    parser.add_argument("--litellm")
    parser.add_argument("--only", help="comma-separated contenders")
    parser.add_argument("--scenarios", help="comma-separated scenario names")
    parser.add_argument("--out", default="bench")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    prof = PROFILES[mode]
    names = (args.only or ("direct,switchyard" if args.quick else "direct,switchyard,switchyard-defaults,litellm,envoy")).split(",")
    scs = [s for s in scenarios(prof) if not args.scenarios or s.name in args.scenarios.split(",")]
    log_dir = os.path.join(args.out, "logs")
    os.makedirs(log_dir, exist_ok=True)
    meta = {"mode": mode, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "argv": sys.argv[1:],
            "loadavg_start": open("/proc/loadavg").read().strip(), "profile": prof, "contenders": names}
    results = {}
    for sc in scs:
        results[sc.name] = {}
        if sc.soak or args.quick:
            print(f"== {sc.name}: {', '.join(names)} at once", file=sys.stderr, flush=True)
            results[sc.name] = run_together(names, sc, args, log_dir, prof["workers"])
            continue
        for name in names:
            print(f"== {sc.name}: {name}", file=sys.stderr, flush=True)
            try:
                results[sc.name][name] = run_scenario(CONTENDERS[name], sc, args, log_dir, prof["workers"])
            except Exception as err:  # noqa: BLE001 - a contender that fails is reported
                print(f"{name} failed: {err}", file=sys.stderr)
                results[sc.name][name] = {"error": str(err)}
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    meta["loadavg_end"] = open("/proc/loadavg").read().strip()
    missed = misses(results, scs)
    out_json = os.path.join(args.out, "chaos-quick.json" if args.quick else "chaos.json")
    with open(out_json, "w") as f:
        json.dump({"meta": meta, "results": results, "misses": missed,
                   "scenarios": [vars(s) for s in scs]}, f, indent=1)
    import chaos_report
    print(chaos_report.table(results, scs, names))
    if not args.quick:
        chaos_report.write(args.out, meta, results, scs, names, missed)
    if missed:
        print("switchyard missed its targets:\n  " + "\n  ".join(missed), file=sys.stderr)
        sys.exit(1)
    print("switchyard met its targets", file=sys.stderr)


if __name__ == "__main__":
    main()
