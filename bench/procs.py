"""Process plumbing for the benchmark rig: free loopback ports, pinned child processes,
readiness polling, and CPU time / RSS read from /proc for a process and its children.

Invariant: everything listens on and talks to 127.0.0.1 only; every child started here
is stopped by the rig (by its own pid) before it exits.
"""

import http.client
import os
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpus():
    """The CPUs this rig may use, and whether load and proxy can be split."""
    mine = sorted(os.sched_getaffinity(0))
    return mine, len(mine) >= 2


class Pinning:
    """CPU placement: load generator and mocks on one core, the proxy under test on the
    other; or, with `same`, everything on one core, which shows what the proxy itself adds
    on a VM whose cross-CPU wake-ups (an IPI through the hypervisor to a halted vCPU) cost
    more than the proxy's work."""

    def __init__(self, same=False):
        mine, split = cpus()
        self.split = split and not same
        self.load = str(mine[0])
        self.proxy = str(mine[1]) if self.split else str(mine[0])

    def wrap(self, role, argv):
        core = self.load if role == "load" else self.proxy
        return ["taskset", "-c", core] + list(argv)

    def describe(self):
        if not self.split:
            return f"everything (mocks, wrk, the SSE probe and the proxy) on CPU {self.load} (taskset)"
        return f"mocks, wrk and the SSE probe on CPU {self.load}; the proxy under test on CPU {self.proxy} (taskset)"


class Child:
    """A started process, stopped by its own pid."""

    def __init__(self, name, argv, log_dir, env=None):
        self.name = name
        self.argv = argv
        self.log = open(os.path.join(log_dir, f"{name}.log"), "w")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def http_status(port, path, timeout=0.5):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def wait_ready(child, port, path, limit=120.0, poll=0.0005):
    """Polls until `path` answers 200; returns seconds since the child was spawned."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early; see its log")
        if http_status(port, path) == 200:
            return time.monotonic() - child.started
        time.sleep(poll)
    raise RuntimeError(f"{child.name} not ready on :{port}{path} after {limit}s")


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def cpu_seconds(pid):
    """User + system CPU of a process and its descendants (all threads)."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / CLK_TCK


def rss_kib(pid):
    """Resident set of a process and its descendants, in KiB."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def splice(path, block, start, end):
    """Puts a lane's block (between its `start` and `end` markers) into a results file,
    replacing the lane's previous block or appending the first one."""
    text = open(path).read() if os.path.exists(path) else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)
