#!/usr/bin/env bash
# The fleet lane (issue 16): 8 sidecars with and without --shared-state through a 429
# storm and a black hole, and the shared view's hot-path cost (wrk at c=1 with and without
# it); writes its block of bench/RESULTS.md. About two minutes; needs Debian's redis-server
# and wrk, and Python's standard library.
#
#   bench/fleet.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null || ! command -v wrk >/dev/null || ! command -v taskset >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server wrk util-linux >/dev/null
fi
cargo build --release --bin switchyard
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
exec python3 bench/fleet.py --binary "$target_dir/release/switchyard" "$@"
