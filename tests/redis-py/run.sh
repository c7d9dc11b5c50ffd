#!/usr/bin/env bash
# Run redis-py's own test suite against a server: tests/redis-py/run.sh PORT [REDIS_PORT]
#
# Creates a venv (cached in $REDIS_PY_WORK, default target/redis-py), downloads the redis-py
# source distribution (the tests are not in the wheel), and runs the test files that cover the
# command families ferrocache implements, against 127.0.0.1:PORT (and, when REDIS_PORT is given,
# against a real redis-server on that port too, for comparison). Prints one summary line per
# server: "redis-py on PORT: N passed, N failed, N skipped".
# The server is flushed by the tests (FLUSHDB on db 0 and 9): never point it at data you need.
set -euo pipefail
PORT="${1:?usage: run.sh PORT [REDIS_PORT]}"
REDIS_PORT="${2:-}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VERSION="${REDIS_PY_VERSION:-5.0.8}"   # 5.0.x: the last line that targets Redis 7.0 servers
WORK="${REDIS_PY_WORK:-$ROOT/target/redis-py}"
mkdir -p "$WORK"
cd "$WORK"
if [ ! -x venv/bin/python ]; then
    python3 -m venv venv
fi
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

# The files for the implemented families (strings, bits, keys, hashes, connection, pub/sub,
# transactions, server commands). Others (lists, sets, zsets, geo, streams...) are in
# test_commands.py too and count as failures until those families land.
FILES="${REDIS_PY_FILES:-tests/test_commands.py tests/test_pubsub.py tests/test_connection.py tests/test_pipeline.py tests/test_encoding.py tests/test_connection_pool.py tests/test_monitor.py}"
# Markers redis-py 5.0 defines: onlycluster (cluster mode), redismod (Redis Stack modules), ssl
# (TLS listener), replica (a replica on 6380) — none of which a single node serves.
MARKERS='not onlycluster and not redismod and not ssl and not replica'

run_one() { # $1 = port
    local port="$1" log="$WORK/pytest-$1.log" rc=0
    ../venv/bin/python -m pytest $FILES --redis-url="redis://127.0.0.1:$port/0" -m "$MARKERS" \
        -p no:cacheprovider -q -rfE --tb=short --timeout=60 -o addopts="" >"$log" 2>&1 || rc=$?
    # pytest: 0 all passed, 1 some failed; anything else is a broken run.
    if [ "$rc" -gt 1 ]; then
        tail -30 "$log"
        echo "redis-py: pytest could not run against port $port (exit $rc)" >&2
        return 2
    fi
    local summary passed failed skipped errors
    summary=$(tail -1 "$log")
    passed=$(grep -o '[0-9]* passed' <<<"$summary" | grep -o '[0-9]*' || echo 0)
    failed=$(grep -o '[0-9]* failed' <<<"$summary" | grep -o '[0-9]*' || echo 0)
    errors=$(grep -o '[0-9]* error' <<<"$summary" | grep -o '[0-9]*' || echo 0)
    skipped=$(grep -o '[0-9]* skipped' <<<"$summary" | grep -o '[0-9]*' || echo 0)
    echo "redis-py $VERSION on port $port: $passed passed, $((failed + errors)) failed, $skipped skipped (log: $log)"
}

run_one "$PORT"
if [ -n "$REDIS_PORT" ]; then
    run_one "$REDIS_PORT"
fi
