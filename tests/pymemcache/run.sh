#!/usr/bin/env bash
# Run pymemcache's own integration tests (`pytest -m integration`) against a memcached-protocol
# server on 127.0.0.1:PORT (ferrocache's memcached port or a real memcached).
#
#   tests/pymemcache/run.sh PORT
#
# Creates a venv under $PYMC_DIR (default: target/pymemcache), installs pytest and the packages
# pymemcache's test modules import (from its test-requirements.txt, minus pylibmc and
# python-memcached, which only its benchmarks use), downloads the pymemcache sdist, extracts it
# and runs its integration tests. Prints a final "N passed, N failed" line; exits non-zero when
# a test failed. PYMC_VERSION pins the pymemcache version (default: latest).
set -euo pipefail

PORT=${1:?usage: run.sh PORT}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=${PYMC_DIR:-$ROOT/target/pymemcache}
SPEC=pymemcache${PYMC_VERSION:+==$PYMC_VERSION}

mkdir -p "$DIR"
cd "$DIR"
if [ ! -x venv/bin/python ]; then
    python3 -m venv venv
fi
PY=$DIR/venv/bin/python
$PY -m pip -q install --upgrade pip >/dev/null

# The sdist (source, tests included).
rm -rf dl src
mkdir -p dl src
$PY -m pip -q download --no-binary :all: --no-deps "$SPEC" -d dl
tar -xzf dl/pymemcache-*.tar.gz -C src
SRC=$(ls -d src/pymemcache-*)
echo "pymemcache sdist: $(basename "$SRC")"

# Test dependencies: its test-requirements.txt without the benchmark-only clients.
grep -Ev '^(pylibmc|python-memcached)\b' "$SRC/test-requirements.txt" > dl/test-req.txt
$PY -m pip -q install -r dl/test-req.txt

cd "$SRC"
LOG=$DIR/pytest.log
set +e
# `-o addopts=`: its setup.cfg adds `-m unit` and coverage reporting; run only what we ask.
$PY -m pytest -o addopts= -p no:cacheprovider -rfEs --tb=short \
    -m integration --server=127.0.0.1 --port="$PORT" pymemcache/test 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^=+ .*(passed|failed|error).* =+$' "$LOG" | tail -1)
count() { echo "$summary" | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0; }
passed=$(count passed)
failed=$(( $(count failed) + $(count error) ))
skipped=$(count skipped)
echo "pymemcache integration on 127.0.0.1:$PORT: $passed passed, $failed failed, $skipped skipped"
exit $rc
