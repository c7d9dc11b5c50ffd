#!/usr/bin/env bash
# A mixed ferrocache / redis-server cluster under live load from redis-py's RedisCluster and
# ioredis' Cluster (tests/cluster-clients/live.py): create, check, reshard, rebalance, two kill -9
# failovers. Usage: tests/cluster-clients/run.sh [FERROCACHE_BIN]
# The venv (redis-py) and ioredis are cached under $CLUSTER_CLIENTS_WORK (default
# target/cluster-clients). Prints PASS/FAIL lines and "N passed, M failed"; exit 1 on a failure.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="${1:-$ROOT/target/debug/ferrocache}"
WORK="${CLUSTER_CLIENTS_WORK:-$ROOT/target/cluster-clients}"
mkdir -p "$WORK"
if [ ! -x "$WORK/venv/bin/python" ]; then
    python3 -m venv "$WORK/venv"
fi
if [ ! -f "$WORK/venv/.redis-5.0.8" ]; then
    "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check "redis==5.0.8"
    touch "$WORK/venv/.redis-5.0.8"
fi
JS=""
if command -v node >/dev/null && command -v npm >/dev/null; then
    if [ ! -d "$WORK/js/node_modules/ioredis" ]; then
        mkdir -p "$WORK/js"
        (cd "$WORK/js" && npm install --silent --no-audit --no-fund ioredis@5 >/dev/null 2>&1) || true
    fi
    [ -d "$WORK/js/node_modules/ioredis" ] && JS="$WORK/js"
fi
exec "$WORK/venv/bin/python" "$HERE/live.py" "$BIN" $JS
