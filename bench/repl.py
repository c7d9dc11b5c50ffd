#!/usr/bin/env python3
"""Replication: full-sync time of a 1 GB dataset and replication lag under a steady write load,
ferrocache -> ferrocache against redis-server -> redis-server (same roles, same machine).

For each server kind:
  1. Start a primary (save points off), load `--gb` GB (`SET key:%012d <value>`, `--value-size`
     byte incompressible values, through `redis-cli --pipe`).
  2. Full sync, for repl-diskless-sync yes and no: start a fresh replica, REPLICAOF, time until
     master_link_status is up and the replica holds every key (the replica is stopped after).
  3. Lag: with a replica attached, run `redis-benchmark -t set -r N -d 100` against the primary
     for `--lag-secs` at two intensities (4 clients no pipeline; 50 clients pipeline 16). Meanwhile
     a probe writes `SET probe:<i> x` on the primary every 10 ms and polls the replica until it sees
     it (write-to-visible-on-replica latency), and the offsets (primary master_repl_offset minus
     replica slave_repl_offset) are sampled every 20 ms.
  4. Apply rate: the replica is stopped (SIGSTOP), 1M `SET` (-d 100, -P 16) go to the primary,
     the replica is continued; time until its offset reaches the primary's.

Usage: bench/repl.py [--gb 1.0] [--value-size 1000] [--lag-secs 8] [--results bench/RESULTS.md]
The ferrocache binary is target/release/ferrocache (cargo build --release).
"""
import argparse, os, shutil, signal, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bgsave_rss import Resp, free_port, load  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRO = os.environ.get("FERRO_BIN", os.path.join(ROOT, "target", "release", "ferrocache"))


def start(kind, tmp, name, extra=()):
    port = free_port()
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    if kind == "ferrocache":
        argv = [FERRO, "server", "--port", str(port), "--dir", d, "--save", ""]
    else:
        argv = ["redis-server", "--port", str(port), "--dir", d, "--save", "", "--appendonly", "no",
                "--repl-diskless-sync-delay", "0"]
    argv += list(extra)
    log = open(os.path.join(tmp, name + ".log"), "w")
    p = subprocess.Popen(argv, stdout=log, stderr=log, cwd=d)
    return p, port, Resp(port)


def stop(p, c):
    try:
        c.cmd("SHUTDOWN", "NOSAVE")
    except Exception:
        pass
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def full_sync(kind, tmp, pport, pc, n, diskless):
    pc.cmd("CONFIG", "SET", "repl-diskless-sync", "yes" if diskless else "no")
    rp, rport, rc = start(kind, tmp, "replica-%s" % ("diskless" if diskless else "disk"))
    t0 = time.time()
    rc.cmd("REPLICAOF", "127.0.0.1", pport)
    while True:
        try:
            if rc.info("replication").get("master_link_status") == "up" and rc.cmd("DBSIZE") >= n:
                break
        except RuntimeError:  # -LOADING
            pass
        time.sleep(0.01)
    secs = time.time() - t0
    used = int(rc.info("memory")["used_memory"])
    return rp, rport, rc, secs, used


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def lag_run(pport, pc, rport, rc, n, clients, pipeline, secs):
    bench = subprocess.Popen(
        ["redis-benchmark", "-p", str(pport), "-t", "set", "-r", str(n), "-d", "100", "-n", "2000000000",
         "-c", str(clients), "-P", str(pipeline), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    stop_flag = []
    lags = []

    def offsets():
        oc, rcc = Resp(pport), Resp(rport)
        while not stop_flag:
            m = int(oc.info("replication")["master_repl_offset"])
            s = int(rcc.info("replication")["slave_repl_offset"])
            lags.append(max(0, m - s))
            time.sleep(0.02)

    th = threading.Thread(target=offsets, daemon=True)
    th.start()
    probe_p, probe_r = Resp(pport), Resp(rport)
    lat = []
    cmds0 = int(pc.info("stats")["total_commands_processed"])
    t0 = time.time()
    i = 0
    while time.time() - t0 < secs:
        key = "probe:%d" % i
        ts = time.time()
        probe_p.cmd("SET", key, "x")
        while probe_r.cmd("EXISTS", key) != 1:
            if time.time() - ts > 30:
                raise RuntimeError("probe not replicated in 30 s")
        lat.append((time.time() - ts) * 1000)
        i += 1
        time.sleep(0.01)
    t1 = time.time()
    cmds1 = int(pc.info("stats")["total_commands_processed"])
    stop_flag.append(1)
    th.join()
    bench.terminate()
    bench.wait()
    # drain: the replica catches up after the load
    m = int(pc.info("replication")["master_repl_offset"])
    while int(rc.info("replication")["slave_repl_offset"]) < m:
        time.sleep(0.01)
    return {
        "wps": (cmds1 - cmds0) / (t1 - t0), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat),
        "probes": len(lat), "lag_mean": sum(lags) / max(1, len(lags)), "lag_max": max(lags) if lags else 0,
    }


def apply_rate(pport, pc, rp, rc, n):
    pc.cmd("CONFIG", "SET", "client-output-buffer-limit", "replica 0 0 0")
    os.kill(rp.pid, signal.SIGSTOP)
    try:
        subprocess.run(["redis-benchmark", "-p", str(pport), "-t", "set", "-n", "1000000", "-r", str(n), "-d", "100",
                        "-P", "16", "-c", "50", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        m = int(pc.info("replication")["master_repl_offset"])
        t0 = time.time()
    finally:
        os.kill(rp.pid, signal.SIGCONT)
    while int(rc.info("replication")["slave_repl_offset"]) < m:
        time.sleep(0.005)
    return 1e6 / (time.time() - t0)


def run_kind(kind, args):
    tmp = tempfile.mkdtemp(prefix="repl-bench-")
    n = int(args.gb * (1 << 30) / args.value_size)
    res = {"kind": kind}
    try:
        pp, pport, pc = start(kind, tmp, "primary", ["--repl-backlog-size", "64mb"])
        t0 = time.time()
        load(pport, n, args.value_size)
        res["load_secs"] = time.time() - t0
        res["keys"] = pc.cmd("DBSIZE")
        res["used"] = int(pc.info("memory")["used_memory"])
        for diskless in (True, False):
            rp, rport, rc, secs, used = full_sync(kind, tmp, pport, pc, n, diskless)
            res["sync_diskless" if diskless else "sync_disk"] = secs
            res["replica_used"] = used
            print("%s: full sync (%s) %.1f s" % (kind, "diskless" if diskless else "disk", secs), flush=True)
            if diskless:
                stop(rp, rc)
                shutil.rmtree(os.path.join(tmp, "replica-diskless"), ignore_errors=True)
        # rp/rc: the disk-synced replica stays attached for the lag runs
        res["lag"] = []
        for clients, pipeline in ((4, 1), (50, 16)):
            r = lag_run(pport, pc, rport, rc, n, clients, pipeline, args.lag_secs)
            r["clients"], r["pipeline"] = clients, pipeline
            res["lag"].append(r)
            print("%s: lag c=%d P=%d %s" % (kind, clients, pipeline, r), flush=True)
        res["apply"] = apply_rate(pport, pc, rp, rc, n)
        print("%s: replica apply rate %.0f SET/s" % (kind, res["apply"]), flush=True)
        stop(rp, rc)
        stop(pp, pc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--value-size", type=int, default=1000)
    ap.add_argument("--lag-secs", type=float, default=8.0)
    ap.add_argument("--results", default=None, help="append a '## Replication' section to this markdown file")
    args = ap.parse_args()
    if not os.path.exists(FERRO):
        sys.exit("build first: cargo build --release (%s missing)" % FERRO)
    rows = [run_kind("ferrocache", args)]
    if shutil.which("redis-server"):
        rows.append(run_kind("redis-server", args))
    else:
        print("redis-server not on PATH: skipped")
    out = [
        "",
        "## Replication",
        "",
        "`bench/repl.py --gb %g --value-size %d --lag-secs %g` (%s, %d cores, both processes and the load on the"
        " same machine). Each server replicates to its own kind. Full sync: %d keys of %d-byte incompressible values,"
        " time from REPLICAOF to link up with every key loaded on the replica. Lag: `redis-benchmark -t set -r N -d 100`"
        " on the primary while a probe writes a key every 10 ms and polls the replica until it sees it; offset lag ="
        " primary master_repl_offset - replica slave_repl_offset sampled every 20 ms. Apply rate: 1M SETs"
        " (-d 100, -P 16) queued while the replica is stopped, then the time for it to reach the primary's offset."
        % (args.gb, args.value_size, args.lag_secs, time.strftime("%Y-%m-%d"), os.cpu_count(),
           rows[0]["keys"], args.value_size),
        "",
        "| server | dataset used_memory | replica used_memory | full sync diskless | full sync disk | replica apply rate |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append("| %s | %.2f GB | %.2f GB | %.1f s | %.1f s | %.0f SET/s |" % (
            r["kind"], r["used"] / (1 << 30), r["replica_used"] / (1 << 30), r["sync_diskless"], r["sync_disk"],
            r["apply"]))
    out += [
        "",
        "| server | load | primary SETs/s | probe p50 ms | probe p99 ms | probe max ms | offset lag mean | offset lag max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for l in r["lag"]:
            out.append("| %s | -c %d -P %d | %d | %.2f | %.2f | %.2f | %d B | %d B |" % (
                r["kind"], l["clients"], l["pipeline"], l["wps"], l["p50"], l["p99"], l["max"],
                l["lag_mean"], l["lag_max"]))
    text = "\n".join(out) + "\n"
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
