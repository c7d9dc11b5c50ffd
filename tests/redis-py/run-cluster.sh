#!/usr/bin/env bash
# redis-py's own tests in cluster mode (its conftest turns every fixture into a RedisCluster when
# the server reports cluster_enabled) against a 6-node cluster (3 masters, 3 replicas, made with
# redis-cli --cluster create) of ferrocache and of redis-server, one after the other.
# Usage: tests/redis-py/run-cluster.sh [FERROCACHE_BIN]   Prints "KIND: N passed, N failed, N skipped".
# REDIS_PY_CLUSTER_FILES picks the test files (default: test_cluster.py and test_commands.py).
# Each run's whole pytest output is kept in $REDIS_PY_WORK/cluster-KIND.log. REDIS_PY_CLUSTER_KINDS
# picks the servers (default "ferrocache redis-server"); CLUSTER_FLOOR=N exits 1 when ferrocache
# passes fewer than N tests.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="${1:-$ROOT/target/debug/ferrocache}"
# Absolute: the nodes are started from the work directory.
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
[ -x "$BIN" ] || { echo "no ferrocache binary at $BIN"; exit 2; }
VERSION="${REDIS_PY_VERSION:-5.0.8}"
WORK="${REDIS_PY_WORK:-$ROOT/target/redis-py}"
mkdir -p "$WORK"
cd "$WORK"
[ -x venv/bin/python ] || python3 -m venv venv
if [ ! -f "venv/.deps-$VERSION" ]; then
    venv/bin/pip install --quiet --disable-pip-version-check "pytest<9" "pytest-timeout" packaging "async-timeout>=4.0.3"
    touch "venv/.deps-$VERSION"
fi
if [ ! -d "redis-$VERSION/tests" ]; then
    rm -rf dl && mkdir dl
    venv/bin/pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps "redis==$VERSION" -d dl
    tar xzf dl/redis-"$VERSION".tar.gz
fi
cd "redis-$VERSION"
FILES="${REDIS_PY_CLUSTER_FILES:-tests/test_cluster.py tests/test_commands.py}"

free_pair() {
    python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p + 10000 > 65535: continue
    try:
        b = socket.socket(); b.bind(("127.0.0.1", p + 10000)); b.close(); print(p); break
    except OSError: pass'
}

run_kind() {
    local kind=$1 pids=() ports=() dirs=() p d
    for _ in 1 2 3 4 5 6; do
        p=$(free_pair)
        d=$(mktemp -d /tmp/rpc-$kind.XXXXXX)
        if [ "$kind" = ferrocache ]; then
            "$BIN" server --port "$p" --cluster-enabled yes --dir "$d" --save '' >"$d/log" 2>&1 &
        else
            redis-server --port "$p" --cluster-enabled yes --dir "$d" --save '' --appendonly no >"$d/log" 2>&1 &
        fi
        pids+=($!) ports+=("$p") dirs+=("$d")
    done
    for p in "${ports[@]}"; do
        for _ in $(seq 1 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    if ! redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 1 --cluster-yes \
        >"$WORK/cluster-create-$kind.log" 2>&1; then
        echo "$kind: redis-cli --cluster create failed (see $WORK/cluster-create-$kind.log)" >&2
    fi
    for _ in $(seq 1 100); do
        ok=1
        for p in "${ports[@]}"; do redis-cli -p "$p" cluster info | grep -q cluster_state:ok || ok=0; done
        [ $ok = 1 ] && break
        sleep 0.2
    done
    local out
    out=$(timeout 1200 ../venv/bin/python -m pytest $FILES -q -p no:cacheprovider --timeout 60 \
        -m 'not redismod and not ssl and not replica' --redis-url "redis://127.0.0.1:${ports[0]}/0" \
        --redis-cluster-nodes 6 2>&1 | tee "$WORK/cluster-$kind.log" | tail -60) || true
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "${dirs[@]}"
    local summary
    summary=$(grep -E '(passed|failed).* in [0-9.]+s' <<<"$out" | tail -1)
    [ -n "${VERBOSE:-}" ] && echo "$out"
    local pa fa sk
    pa=$(grep -o '[0-9]* passed' <<<"$summary" | grep -o '[0-9]*' || echo 0)
    fa=$(grep -o '[0-9]* failed' <<<"$summary" | grep -o '[0-9]*' || echo 0)
    sk=$(grep -o '[0-9]* skipped' <<<"$summary" | grep -o '[0-9]*' || echo 0)
    echo "$kind: ${pa:-0} passed, ${fa:-0} failed, ${sk:-0} skipped"
}

for kind in ${REDIS_PY_CLUSTER_KINDS:-ferrocache redis-server}; do
    [ "$kind" = redis-server ] && ! command -v redis-server >/dev/null && continue
    line=$(run_kind "$kind")
    echo "$line"
    if [ "$kind" = ferrocache ] && [ -n "${CLUSTER_FLOOR:-}" ]; then
        passed=$(grep -o '[0-9]* passed' <<<"$line" | grep -o '[0-9]*')
        if [ "${passed:-0}" -lt "$CLUSTER_FLOOR" ]; then
            echo "redis-py in cluster mode: $passed passed, below the floor $CLUSTER_FLOOR"
            exit 1
        fi
    fi
done
