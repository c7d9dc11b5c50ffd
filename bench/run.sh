#!/usr/bin/env bash
# Side-by-side benchmark: ferrocache vs redis-server (and later memcached) on loopback.
# Usage: bench/run.sh [requests]   (writes bench/RESULTS.md and bench/results.png)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing: apt-get install redis-tools redis-server"; exit 1; }
python3 bench/bench.py "${1:-200000}"
