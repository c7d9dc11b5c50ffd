#!/usr/bin/env bash
# Redis 7.0.15's own cluster test suite (tests/cluster, what `./runtest-cluster` runs: 20
# instances started as `src/redis-server CONFIG`) against ferrocache and redis-server, one unit
# at a time. Prints one line per unit:
#
#   unit  ferrocache  redis-server
#
# with the number of tests each passed and, after it, an F when the unit stopped at a failure
# (the suite jumps to the next unit after the first error) or a T when it ran over UNIT_TIMEOUT.
#
# Usage: tests/tcl/run-cluster.sh [-s REDIS_SRC] [-f FERROCACHE_BIN] [-r REDIS_SERVER_BIN]
#                                 [-o LOGDIR] [UNIT ...]
#   -s   a Redis 7.0 source tree (its tests/ is copied, never written). Default: `apt-get source
#        redis` into a temp dir (as tests/tcl/run.sh).
#   -f   the ferrocache binary (default target/release/ferrocache); `-f none`: redis-server only.
#   -r   the redis-server binary (default: redis-server on PATH); `-r none`: ferrocache only.
#   UNIT names as tests/cluster/tests has them without .tcl (e.g. 02-failover); default: all.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
UNIT_TIMEOUT=${UNIT_TIMEOUT:-900}

SRC="" FERRO="" REDIS="redis-server" LOGDIR=""
while getopts "s:f:r:o:" opt; do
    case $opt in
        s) SRC=$OPTARG ;;
        f) FERRO=$OPTARG ;;
        r) REDIS=$OPTARG ;;
        o) LOGDIR=$OPTARG ;;
        *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

command -v tclsh >/dev/null || { echo "tclsh is needed (apt-get install tcl)"; exit 2; }
[ -n "$FERRO" ] || FERRO=$ROOT/target/release/ferrocache
[ "$FERRO" = none ] || [ -x "$FERRO" ] || { echo "no ferrocache binary (cargo build --release, or -f)"; exit 2; }
if [ "$REDIS" != none ]; then
    REDIS=$(command -v "$REDIS") || { echo "no redis-server: comparing with nothing"; REDIS=none; }
fi

WORK=$(mktemp -d /tmp/ferro-tcl-cluster.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
if [ -z "$SRC" ]; then
    # The same fetch as run.sh: Debian's source package of the installed redis.
    (cd "$WORK" && apt-get source -qq redis >/dev/null 2>&1) || { echo "apt-get source redis failed (-s)"; exit 2; }
    SRC=$(find "$WORK" -maxdepth 1 -type d -name 'redis-*' | head -1)
fi
mkdir -p "$WORK/tree/src"
cp -r "$SRC/tests" "$WORK/tree/"
mkdir -p "$WORK/tree/tests/cluster/tmp"
# Some units call ../../../src/redis-cli (--cluster fix/check/rebalance).
ln -sf "$(command -v redis-cli)" "$WORK/tree/src/redis-cli"
[ -n "$LOGDIR" ] || LOGDIR=$(mktemp -d /tmp/ferro-tcl-cluster-logs.XXXXXX)
mkdir -p "$LOGDIR"

UNITS=${*:-$(cd "$WORK/tree/tests/cluster/tests" && ls ./*.tcl | sed 's|./||; s|\.tcl$||')}

# One unit against one server: the suite starts `src/redis-server` (a wrapper here).
run_unit() { # kind bin unit
    local kind=$1 bin=$2 unit=$3 log="$LOGDIR/$1.$3.log"
    if [ "$kind" = ferrocache ]; then
        printf '#!/bin/sh\nexec "%s" server "$@"\n' "$bin" > "$WORK/tree/src/redis-server"
    else
        printf '#!/bin/sh\nexec "%s" "$@"\n' "$bin" > "$WORK/tree/src/redis-server"
    fi
    chmod +x "$WORK/tree/src/redis-server"
    rm -rf "$WORK/tree/tests/cluster/tmp"/*
    (cd "$WORK/tree" && timeout "$UNIT_TIMEOUT" tclsh tests/cluster/run.tcl --single "$unit" --dont-clean > "$log" 2>&1)
    local rc=$? ok
    ok=$(grep -c '\[0;32;49mOK' "$log")
    # The instances' logs of a unit that failed or timed out, beside its log.
    if [ $rc = 124 ] || grep -q 'FAILED' "$log"; then
        mkdir -p "$LOGDIR/$1.$3.instances"
        cp -r "$WORK/tree/tests/cluster/tmp"/. "$LOGDIR/$1.$3.instances/" 2>/dev/null
    fi
    if [ $rc = 124 ]; then echo "$ok T"; elif grep -q 'FAILED' "$log"; then echo "$ok F"; else echo "$ok"; fi
}

printf '%-32s %-16s %-16s\n' unit ferrocache redis-server
for u in $UNITS; do
    f=- r=-
    [ "$FERRO" = none ] || f=$(run_unit ferrocache "$FERRO" "$u")
    [ "$REDIS" = none ] || r=$(run_unit redis "$REDIS" "$u")
    printf '%-32s %-16s %-16s\n' "$u" "$f" "$r"
done
echo "logs: $LOGDIR"
