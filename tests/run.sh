#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs them all.
#   tests/run.sh
# Rust unit, property and integration tests; Python tests that drive the sidecar with the
# official OpenAI and Anthropic SDKs; and the packaging checks (Helm, manifests, image).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

step "System tools (redis-server for the fleet-shared state tests)"
if ! command -v redis-server >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
# Debian's package starts a system instance on 6379; the tests start their own on free
# loopback ports and never use it.

step "Python tools (venv in .venv)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export VENV="$root/.venv"
# Where cargo puts what it builds: CARGO_TARGET_DIR, a cargo config's build.target-dir,
# or target/. The SDK and packaging tests find the binary (and keep tools) there.
SWITCHYARD_TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
export SWITCHYARD_TARGET_DIR

step "cargo fmt and clippy"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings

step "Rust tests"
cargo test --all-targets --quiet

step "SDK tests (official openai and anthropic clients)"
cargo build --quiet
export SWITCHYARD_BIN="${SWITCHYARD_BIN:-$SWITCHYARD_TARGET_DIR/debug/switchyard}"
.venv/bin/python -m pytest -q tests/sdk

step "Chaos bench, quick (direct and switchyard through scripted incidents; asserts the targets)"
mkdir -p "$SWITCHYARD_TARGET_DIR/chaos"
bench/chaos.sh --quick --out "$SWITCHYARD_TARGET_DIR/chaos"

step "Node SDK tests (the openai package, from npm)"
npm install --prefix tests/node --no-audit --no-fund --silent
(cd tests/node && node --test)

if [ -x tests/packaging.sh ]; then
    step "Packaging checks (Helm chart, manifests, Dockerfile, webhook)"
    tests/packaging.sh
fi

step "all tests passed"
