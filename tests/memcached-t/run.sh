#!/usr/bin/env bash
# Run memcached's own t/*.t files in daemon mode (T_MEMD_USE_DAEMON) against a fresh ferrocache
# node and a fresh real memcached per file, and print one line per file:
#   FILE  ferrocache=PASS|FAIL(n/m)|HANG  memcached=...
#
# usage: tests/memcached-t/run.sh MEMCACHED_SRC_DIR [FILE.t ...]
#   MEMCACHED_SRC_DIR: an unpacked memcached source tree (e.g. memcached-1.6.18); it is copied to
#   a temp dir (never modified). Env: FERRO (default target/debug/ferrocache), MEMCACHED (default
#   memcached on PATH), T_TIMEOUT (seconds per file, default 120), ONLY=ferrocache|memcached,
#   KEEP_LOGS=DIR (copy the prove and server logs there).
# The node runs with memcached's default memory settings (64 MB, LRU eviction); memcached runs
# with its defaults. Files that start memcached with options (-m 3, -I, extstore, TLS, -S...)
# get the default server in daemon mode, for both.
set -u
SRC=${1:?usage: run.sh MEMCACHED_SRC_DIR [FILE.t ...]}
shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FERRO=${FERRO:-$ROOT/target/debug/ferrocache}
MEMCACHED=${MEMCACHED:-$(command -v memcached)}
TMO=${T_TIMEOUT:-120}
WORK=$(mktemp -d /tmp/memcached-t.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cp -r "$SRC/." "$WORK/src"
# The t/ helpers call ./memcached-debug for `-h` (feature probes) and get_memcached_exe.
ln -sf "$MEMCACHED" "$WORK/src/memcached-debug"
ln -sf "$MEMCACHED" "$WORK/src/memcached"
cd "$WORK/src" || exit 2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# run_one KIND FILE -> prints the verdict
run_one() {
    local kind=$1 file=$2 port pid log res
    port=$(free_port)
    log="$WORK/$kind-$(basename "$file" .t).log"
    if [ "$kind" = ferrocache ]; then
        local rport dir
        rport=$(free_port)
        dir=$(mktemp -d "$WORK/node.XXXX")
        # memcached's defaults: -m 64 with LRU evictions (a Redis node's default is noeviction).
        "$FERRO" server --port "$rport" --memcached-port "$port" --dir "$dir" --save "" \
            --appendonly no --maxmemory 64mb --maxmemory-policy allkeys-lru >"$log.server" 2>&1 &
        pid=$!
    else
        local asroot=()
        [ "$(id -u)" = 0 ] && asroot=(-u root)
        "$MEMCACHED" -p "$port" -U 0 -l 127.0.0.1 "${asroot[@]}" >"$log.server" 2>&1 &
        pid=$!
    fi
    if ! wait_port "$port"; then
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        echo "NOSTART"; return
    fi
    T_MEMD_USE_DAEMON=127.0.0.1:$port timeout -k 5 "$TMO" prove "$file" >"$log" 2>&1
    res=$?
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    if [ $res = 124 ] || [ $res = 137 ]; then
        echo "HANG"
    elif grep -aq '^Result: NOTESTS' "$log"; then
        echo "SKIP"   # the file skipped itself (skip_all: no SSL, no git tree, known flaky...)
    elif grep -aq '^Result: PASS' "$log"; then
        if grep -aqE 'skipped:|\.\. skipped' "$log"; then echo "SKIP"; else echo "PASS"; fi
    else
        # "FAIL(failed/run)" from prove's summary; "+exit" when the file died early.
        local sum
        sum=$(grep -aoE 'Tests: [0-9]+ Failed: [0-9]+' "$log" | head -1)
        local run=${sum#Tests: } failed=${sum##*Failed: }
        run=${run%% *}
        local died=""
        grep -aq 'Non-zero exit status\|No plan found\|Bad plan' "$log" && died="+exit"
        echo "FAIL(${failed:-?}/${run:-?}$died)"
    fi
}

files=("$@")
[ ${#files[@]} -eq 0 ] && files=(t/*.t)
pass_f=0 pass_m=0
printf '%-32s %-22s %s\n' FILE ferrocache memcached
for f in "${files[@]}"; do
    case $f in t/*) ;; *) f=t/$f ;; esac
    fr=- mr=-
    [ "${ONLY:-}" != memcached ] && fr=$(run_one ferrocache "$f")
    [ "${ONLY:-}" != ferrocache ] && mr=$(run_one memcached "$f")
    [ "$fr" = PASS ] && pass_f=$((pass_f + 1))
    [ "$mr" = PASS ] && pass_m=$((pass_m + 1))
    printf '%-32s %-22s %s\n' "$(basename "$f")" "$fr" "$mr"
done
echo "passed: ferrocache $pass_f, memcached $pass_m (of ${#files[@]})"
if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$WORK"/*.log* "$KEEP_LOGS"/; fi
