#!/usr/bin/env bash
# Redis 7.0.15's own TCL suite (tests/unit) in external mode against ferrocache and redis-server,
# a fresh server per unit, DEBUG not relied upon. Prints one line per unit:
#
#   unit  ferrocache  redis-server
#
# with the [ok] count of each server and, after it, its errors (e), exceptions (x) and a T when the
# unit timed out (no progress for TCL_TIMEOUT seconds, or the whole unit over UNIT_TIMEOUT).
#
# Usage: tests/tcl/run.sh [-s REDIS_SRC] [-f FERROCACHE_BIN] [-r REDIS_SERVER_BIN] [-o LOGDIR]
#                         [-c] [UNIT ...]
#   -s   a Redis 7.0 source tree (its tests/ is copied, never written). Default: `apt-get source
#        redis` into a temp dir (enables deb-src in /etc/apt when it is missing and we are root).
#   -f   the ferrocache binary (default target/release/ferrocache, else target/debug/ferrocache);
#        `-f none` runs redis-server only.
#   -r   the redis-server binary (default: redis-server on PATH); `-r none` runs ferrocache only.
#   -o   each unit's runtest and server output go to LOGDIR (default: a new temp dir, printed
#        at the end; kept).
#   -c   cluster mode: each server is a one-node cluster holding all 16384 slots, and runtest
#        runs with --cluster-mode --singledb (Redis's "cluster protocol compatible mode").
#   UNIT names as runtest's --single takes them without `unit/` (e.g. type/list multi); default:
#        every unit of tests/unit that runs in external mode ($ALL_UNITS below).
# Exit status: 0, or 1 when ferrocache passes fewer tests than redis-server in some unit
# (with FLOOR_CHECK=1; the default only reports).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

ALL_UNITS="printver dump protocol keyspace scan info-command type/string type/incr type/list
type/list-2 type/list-3 type/set type/zset type/hash type/stream type/stream-cgroups sort expire
other multi quit latency-monitor pubsub slowlog scripting functions introspection introspection-2
bitops bitfield geo hyperloglog lazyfree pause querybuf tracking networking replybufsize
violations tls"
TAGS="-needs:debug -needs:pfdebug -needs:local-process -needs:latency"
UNIT_TIMEOUT=${UNIT_TIMEOUT:-900}
TCL_TIMEOUT=${TCL_TIMEOUT:-120}

SRC="" FERRO="" REDIS="redis-server" LOGDIR="" CLUSTER=0
while getopts "s:f:r:o:c" opt; do
    case $opt in
        s) SRC=$OPTARG ;;
        f) FERRO=$OPTARG ;;
        r) REDIS=$OPTARG ;;
        o) LOGDIR=$OPTARG ;;
        c) CLUSTER=1 ;;
        *) sed -n '2,24p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
UNITS=${*:-$ALL_UNITS}

command -v tclsh >/dev/null || { echo "tclsh is needed (apt-get install tcl)"; exit 2; }
if [ -z "$FERRO" ]; then
    for b in target/release/ferrocache target/debug/ferrocache; do
        [ -x "$b" ] && { FERRO=$ROOT/$b; break; }
    done
fi
[ "$FERRO" = none ] || [ -x "$FERRO" ] || { echo "no ferrocache binary (cargo build first, or -f)"; exit 2; }
if [ "$REDIS" != none ] && ! command -v "$REDIS" >/dev/null; then
    echo "no $REDIS: comparing with nothing"; REDIS=none
fi

WORK=$(mktemp -d /tmp/ferro-tcl.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
if [ -z "$SRC" ]; then
    # Debian's redis source package is Redis 7.0.x on bookworm.
    if ! grep -rqs 'deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/ && [ "$(id -u)" = 0 ]; then
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
            sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
        else
            sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >/etc/apt/sources.list.d/deb-src.list
        fi
        apt-get update -qq >/dev/null
    fi
    (cd "$WORK" && apt-get source --download-only -qq redis >/dev/null 2>&1 &&
        dpkg-source -x --no-check ./redis_*.dsc src >/dev/null 2>&1) ||
        { echo "apt-get source redis failed: pass -s REDIS_SRC"; exit 2; }
    SRC=$WORK/src
fi
[ -f "$SRC/tests/test_helper.tcl" ] || { echo "$SRC is not a Redis source tree"; exit 2; }
mkdir -p "$WORK/redis"
cp -r "$SRC/tests" "$SRC/runtest" "$WORK/redis/"
mkdir -p "$WORK/redis/tests/tmp" "$WORK/redis/src"
[ -n "$LOGDIR" ] || LOGDIR=$(mktemp -d /tmp/ferro-tcl-logs.XXXXXX)
mkdir -p "$LOGDIR"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_unit SERVER UNIT -> prints "ok err exc timeout"
run_unit() {
    local server=$1 unit=$2 port pid log srvlog dir
    port=$(free_port)
    dir=$(mktemp -d "$WORK/data.XXXXXX")
    log=$LOGDIR/$server.${unit//\//_}.log
    srvlog=$LOGDIR/$server.${unit//\//_}.server.log
    local cargs=() extra=()
    if [ "$CLUSTER" = 1 ]; then
        # The bus port is port + 10000: keep it in range.
        while [ "$port" -gt 55000 ]; do port=$(free_port); done
        cargs=(--cluster-enabled yes)
        extra=(--cluster-mode --singledb)
    fi
    if [ "$server" = ferrocache ]; then
        "$FERRO" server --port "$port" --dir "$dir" --save '' "${cargs[@]}" >"$srvlog" 2>&1 &
    else
        "$REDIS" --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
            --daemonize no --logfile '' "${cargs[@]}" >"$srvlog" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
        sleep 0.1
    done
    if [ "$CLUSTER" = 1 ]; then
        redis-cli -p "$port" cluster addslotsrange 0 16383 >/dev/null
        for _ in $(seq 1 100); do
            redis-cli -p "$port" cluster info | grep -q cluster_state:ok && break
            sleep 0.1
        done
    fi
    # runtest's own test-server port is searched from --baseport-32 (and +10000): below the
    # ephemeral range, and apart for concurrent runs. Retried when that port was taken.
    local rc try
    for try in 1 2 3; do
        local base=$((10032 + RANDOM % 100 * 100))
        (cd "$WORK/redis" && TERM=dumb timeout -k 10 "$UNIT_TIMEOUT" tclsh tests/test_helper.tcl \
            --host 127.0.0.1 --port "$port" --single "unit/$unit" --tags "$TAGS" \
            --timeout "$TCL_TIMEOUT" --baseport "$base" --clients 1 --dont-clean "${extra[@]}") >"$log" 2>&1
        rc=$?
        grep -q "non busy port\|couldn't open socket" "$log" || break
    done
    kill "$pid" 2>/dev/null
    sleep 0.2
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -rf "$dir"
    local ok err exc to=""
    sed -i 's/\x1b\[[0-9;]*m//g' "$log"
    ok=$(grep -c '^\[ok\]' "$log")
    err=$(grep -c '^\[err\]' "$log")
    exc=$(grep -c '^\[exception\]' "$log")
    if grep -q 'TIMEOUT' "$log" || [ $rc = 124 ] || [ $rc = 137 ]; then to=T; fi
    echo "$ok $err $exc $to"
}

fmt() { # ok err exc to
    local s=$1
    [ "$2" != 0 ] && s="$s ${2}e"
    [ "$3" != 0 ] && s="$s ${3}x"
    [ -n "${4:-}" ] && s="$s T"
    echo "$s"
}

printf '%-22s %-16s %-16s\n' unit ferrocache redis-server
tf=0 tr=0 worse=0
for unit in $UNITS; do
    f="-" fo=0
    if [ "$FERRO" != none ]; then
        read -r fo fe fx ft < <(run_unit ferrocache "$unit")
        f=$(fmt "$fo" "$fe" "$fx" "${ft:-}")
    fi
    r="-"
    if [ "$REDIS" != none ]; then
        read -r ro re rx rt < <(run_unit redis "$unit")
        r=$(fmt "$ro" "$re" "$rx" "${rt:-}")
        tr=$((tr + ro))
        [ "$fo" -lt "$ro" ] && worse=1
    fi
    tf=$((tf + fo))
    printf '%-22s %-16s %-16s\n' "$unit" "$f" "$r"
done
printf '%-22s %-16s %-16s\n' TOTAL "$tf" "$([ "$REDIS" != none ] && echo "$tr" || echo -)"
echo "logs: $LOGDIR"
if [ "${FLOOR_CHECK:-0}" = 1 ] && [ $worse = 1 ]; then
    echo "ferrocache passes fewer tests than redis-server in some unit"
    exit 1
fi
exit 0
