#!/usr/bin/env python3
"""Instructions per request (user space), counted with valgrind --tool=callgrind: repeatable on a
busy machine. Each server runs under callgrind twice, once idle (start-up + shutdown baseline) and
once with the workload; the difference divided by the request count is reported.
Usage: bench/callgrind.py [requests]  (appends a table to stdout; bench/run.sh copies it)"""
import os, re, socket, subprocess, sys, tempfile, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRO = os.path.join(ROOT, "target", "release", "ferrocache")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def total(out):
    txt = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    m = re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", txt)
    return int(m.group(1).replace(",", ""))


def run(kind, workload):
    port = free_port()
    out = tempfile.mktemp(prefix=f"cg-{kind}-")
    if kind == "ferrocache":
        argv = [FERRO, "server", "--port", str(port), "--threads", "1"]
    else:
        argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + argv,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        if "PONG" in subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout:
            break
        time.sleep(0.1)
    if workload:
        test, pipeline = workload
        subprocess.run(["redis-benchmark", "-p", str(port), "-t", test, "-c", "50", "-n", str(N), "-P", str(pipeline),
                        "-r", "100000", "-q"], capture_output=True)
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)
    p.wait(120)
    t = total(out)
    os.unlink(out)
    return t


def main():
    rows = []
    base = {k: run(k, None) for k in ("ferrocache", "redis-server")}
    for test in ("get", "set"):
        for pipeline in (1, 16):
            per = {}
            for k in ("ferrocache", "redis-server"):
                per[k] = (run(k, (test, pipeline)) - base[k]) / N
            rows.append((test, pipeline, per["ferrocache"], per["redis-server"]))
            print(test, pipeline, per, file=sys.stderr, flush=True)
    print("## Instructions per request (callgrind, user space)\n")
    print(f"{N} requests per test, 50 clients; ferrocache with --threads 1. Start-up/shutdown subtracted.\n")
    print("| test | pipeline | ferrocache instr/req | redis-server instr/req | ratio |")
    print("|---|---|---|---|---|")
    for test, pipeline, f, r in rows:
        print(f"| {test} | {pipeline} | {f:,.0f} | {r:,.0f} | {f/r:.2f} |")


if __name__ == "__main__":
    main()
