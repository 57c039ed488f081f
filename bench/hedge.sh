#!/usr/bin/env bash
# The hedging lane (issue 12): a slow-tail provider behind a two-target route, with and
# without `hedge`, through the release binary under closed-loop load; writes its block of
# bench/RESULTS.md. Takes about a minute; needs only Python's standard library.
#
#   bench/hedge.sh [--seconds 20] [--connections 4]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin switchyard
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
exec python3 bench/hedge.py --binary "$target_dir/release/switchyard" "$@"
