"""Fixtures: real `switchyard mock` providers and a real `switchyard run` sidecar, as
processes on 127.0.0.1 ephemeral ports, driven by the official SDKs."""

import json
import os
import re
import subprocess
import tempfile
import urllib.request

import pytest


def _cargo_bin():
    """The debug binary wherever cargo builds it: CARGO_TARGET_DIR, a cargo config's
    build.target-dir, or target/ (as `cargo metadata` reports it)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return os.path.join(json.loads(meta.stdout)["target_directory"], "debug", "switchyard")


BIN = os.environ.get("SWITCHYARD_BIN") or _cargo_bin()
ADDR = re.compile(r"(127\.0\.0\.1:\d+)")


class Proc:
    """A child process whose first log line naming an address tells where it listens."""

    def __init__(self, args, marker, env=None):
        self.proc = subprocess.Popen(
            [BIN, *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "RUST_LOG": "info", **(env or {})},
        )
        self.log = []
        self.addrs = []
        for line in self.proc.stderr:
            self.log.append(line)
            if marker in line:
                self.addrs = ADDR.findall(line)
                break
        else:
            raise RuntimeError(f"{args[0]} exited before listening:\n{''.join(self.log)}")

    def stop(self):
        self.proc.terminate()
        try:
            rest = self.proc.communicate(timeout=10)[1] or ""
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest = ""
        self.log.append(rest)
        return "".join(self.log)


class Mock:
    def __init__(self, name):
        self.proc = Proc(["mock", "--listen", "127.0.0.1:0", "--name", name], "listening")
        self.addr = self.proc.addrs[0]
        self.url = f"http://{self.addr}"

    def faults(self, **faults):
        request = urllib.request.Request(
            f"{self.url}/_mock/faults",
            data=json.dumps(faults).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request).read()

    def stats(self):
        return json.load(urllib.request.urlopen(f"{self.url}/_mock/stats"))


POLICY = """
providers:
  - name: primary
    api: openai
    baseUrl: {p}/v1
    wires: [chat, embeddings, responses]
    auth: {{apiKey: {{fromEnv: SDK_TEST_KEY}}}}
    timeouts: {{connect: 1s, firstByte: 2s, idle: 2s}}
  - name: secondary
    api: openai
    baseUrl: {s}/v1
    wires: [chat, embeddings, responses]
    auth: {{apiKey: {{fromEnv: SDK_TEST_KEY}}}}
  - name: chat-only
    api: openai
    baseUrl: {s}/v1
    auth: {{apiKey: {{fromEnv: SDK_TEST_KEY}}}}
  - name: claude
    api: anthropic
    baseUrl: {p}
    auth: {{apiKey: {{fromEnv: SDK_TEST_KEY}}}}
  - name: claude-backup
    api: anthropic
    baseUrl: {s}
    auth: {{apiKey: {{fromEnv: SDK_TEST_KEY}}}}
routes:
  - model: gpt-4o
    targets:
      - {{provider: primary, model: gpt-4o}}
      - {{provider: secondary, model: gpt-4o-mini}}
  - model: cross-gpt
    targets:
      - {{provider: primary, model: gpt-4o}}
      - {{provider: claude-backup, model: claude-haiku-4-5}}
  - model: cross-claude
    targets:
      - {{provider: claude, model: claude-sonnet-4-5}}
      - {{provider: secondary, model: gpt-4o-mini}}
  - model: resp-chat
    targets:
      - {{provider: primary, model: gpt-4o}}
      - {{provider: chat-only, model: llama-3}}
  - model: resp-claude
    targets:
      - {{provider: primary, model: gpt-4o}}
      - {{provider: claude-backup, model: claude-haiku-4-5}}
  - model: claude-chat
    targets:
      - {{provider: claude}}
      - {{provider: claude-backup, model: claude-haiku-4-5}}
"""


class Sidecar:
    def __init__(self, primary, secondary):
        self.policy = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        self.policy.write(POLICY.format(p=primary.url, s=secondary.url))
        self.policy.close()
        self.proc = Proc(
            ["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--policy-file", self.policy.name],
            "switchyard is serving",
            env={"SDK_TEST_KEY": "sk-sidecar-secret"},
        )
        self.addr, self.admin = self.proc.addrs[:2]
        self.openai_base = f"http://{self.addr}/v1"
        self.anthropic_base = f"http://{self.addr}"

    def metrics(self):
        return urllib.request.urlopen(f"http://{self.admin}/metrics").read().decode()


@pytest.fixture
def mocks():
    primary, secondary = Mock("primary"), Mock("secondary")
    yield primary, secondary
    primary.proc.stop()
    secondary.proc.stop()


@pytest.fixture
def sidecar(mocks):
    sidecar = Sidecar(*mocks)
    yield sidecar
    log = sidecar.proc.stop()
    assert "sk-sidecar-secret" not in log, "API keys never appear in logs"
    assert "sk-app-key" not in log
    os.unlink(sidecar.policy.name)
