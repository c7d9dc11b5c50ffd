#!/usr/bin/env bash
# memcached-protocol throughput: memcslap (libmemcached-tools) against ferrocache's memcached
# port and against `memcached -t 2`, with each server's CPU time (utime+stime from
# /proc/PID/stat) sampled around every run.
#   bench/memcslap.sh [BINARY] [execute-number] [concurrency]
# BINARY defaults to target/release/ferrocache (build it first: cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/ferrocache}
N=${2:-20000}
C=${3:-50}
command -v memcslap >/dev/null || { echo "memcslap missing: apt-get install libmemcached-tools"; exit 1; }
command -v memcached >/dev/null || { echo "memcached missing: apt-get install memcached"; exit 1; }
TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened"; exit 1; }

P1=$((20000 + RANDOM % 5000)); R1=$((P1 + 1)); P2=$((P1 + 2))
"$BIN" server --port "$R1" --memcached-port "$P1" --save "" >/dev/null 2>&1 &
pids+=($!); OURS=$!
memcached -p "$P2" -U 0 -u root -l 127.0.0.1 -t 2 &
pids+=($!); REAL=$!
wait_port "$P1"; wait_port "$P2"

printf '%-10s %-4s %10s %10s %12s %14s\n' server test seconds ops/s cpu_s cpu_us/op
for test in set get; do
    for who in ferrocache memcached; do
        if [ "$who" = ferrocache ]; then port=$P1; pid=$OURS; else port=$P2; pid=$REAL; fi
        c0=$(cpu_ticks "$pid")
        t0=$(date +%s.%N)
        memcslap --servers=127.0.0.1:$port --concurrency="$C" --execute-number="$N" --test=$test >/tmp/memcslap.$$ 2>&1
        t1=$(date +%s.%N)
        c1=$(cpu_ticks "$pid")
        ops=$((N * C))
        awk -v who=$who -v t=$test -v s="$(echo "$t1 - $t0" | bc)" -v ops=$ops -v c=$((c1 - c0)) -v tck=$TCK \
            'BEGIN { printf "%-10s %-4s %10.2f %10.0f %12.2f %14.2f\n", who, t, s, ops / s, c / tck, c / tck * 1e6 / ops }'
    done
done
rm -f /tmp/memcslap.$$
