#!/usr/bin/env python3
"""Two ferrocache builds side by side (a refactor's before/after), in one run on one machine.

Usage: bench/compare_builds.py BEFORE_BINARY AFTER_BINARY [requests]

Two measures:
- user-space instructions per request under callgrind (repeatable on a busy machine: the
  measure that decides "no regression beyond noise"), --threads 1, start-up/shutdown
  subtracted, for SET/GET/INCR/LPUSH/HSET/MSET at pipeline 1 and 16;
- redis-benchmark ops/s and server CPU seconds per million operations (default threads),
  the two builds alternated over two rounds so drift on a shared machine hits both alike.
Prints a markdown section (bench/RESULTS.md keeps it under "Refactor before/after")."""
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
_argv, sys.argv = sys.argv, sys.argv[:1]  # bench.py and callgrind.py read their own argv on import
import bench  # noqa: E402  (redis-benchmark runner, /proc CPU readings)
import callgrind  # noqa: E402
sys.argv = _argv

TESTS = ["set", "get", "incr", "lpush", "hset", "mset"]


def instr_per_request(binary, n):
    callgrind.FERRO = binary
    callgrind.N = n
    base = callgrind.run("ferrocache", None)
    out = {}
    for test in TESTS:
        for pipeline in (1, 16):
            out[(test, pipeline)] = (callgrind.run("ferrocache", (test, pipeline)) - base) / n
            print(os.path.basename(os.path.dirname(os.path.dirname(binary))), test, pipeline, out[(test, pipeline)], file=sys.stderr, flush=True)
    return out


def throughput(before, after, n):
    bench.N = n
    acc = {}
    for rnd in range(2):
        order = [("before", before), ("after", after)]
        if rnd % 2:
            order.reverse()
        for name, binary in order:
            s = bench.Server(f"ferrocache-{name}", lambda p, b=binary: [b, "server", "--port", str(p)])
            try:
                for pipeline in (1, 16):
                    for test in TESTS:
                        r = bench.run_bench(s, test, pipeline)
                        if r:
                            acc.setdefault((name, test, pipeline), []).append(r)
                        print(name, test, pipeline, r, file=sys.stderr, flush=True)
            finally:
                s.stop()
    mean = {}
    for k, rs in acc.items():
        mean[k] = {m: sum(r[m] for r in rs) / len(rs) for m in ("rps", "cpu_per_m")}
    return mean


def main():
    before, after = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 30000
    ib, ia = instr_per_request(before, n), instr_per_request(after, n)
    tp = throughput(before, after, n * 4)
    print("| test | pipeline | instr/req before | instr/req after | ratio | ops/s before | ops/s after | ratio | CPU s/M ops before | after | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for pipeline in (1, 16):
        for test in TESTS:
            b, a = ib[(test, pipeline)], ia[(test, pipeline)]
            tb, ta = tp.get(("before", test, pipeline)), tp.get(("after", test, pipeline))
            rps = f"{tb['rps']:,.0f} | {ta['rps']:,.0f} | {ta['rps'] / tb['rps']:.2f}" if tb and ta else "n/a | n/a | n/a"
            cpu = f"{tb['cpu_per_m']:.2f} | {ta['cpu_per_m']:.2f} | {ta['cpu_per_m'] / tb['cpu_per_m']:.2f}" if tb and ta and tb["cpu_per_m"] > 0 else "n/a | n/a | n/a"
            print(f"| {test} | {pipeline} | {b:,.0f} | {a:,.0f} | {a / b:.3f} | {rps} | {cpu} |")


if __name__ == "__main__":
    main()
