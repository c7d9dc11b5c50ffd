#!/usr/bin/env python3
"""Cluster mode's cost and resharding speed, ferrocache beside redis-server in one run.

1. Cost of cluster mode: each server once standalone and once as a three-master cluster
   (redis-benchmark --cluster refuses a one-node cluster); redis-benchmark runs GET and SET at
   pipeline 1 and 16. Server CPU per million operations comes from /proc/PID/stat (summed over
   the three cluster nodes), as in bench.py; the ratio cluster/standalone is the issue's target
   (<= 1.05).
2. Resharding: two-node clusters of each server; N keys in slots 0-8191 on node A, then
   `redis-cli --cluster reshard` moves those 8192 slots to node B (SETSLOT + MIGRATE, pipeline
   --cluster-pipeline). Keys per second = N / wall time.
3. Raw MIGRATE: N keys moved between two standalone servers with `MIGRATE ... KEYS` in batches
   of 100 (what reshard sends per slot), keys per second.

Usage: bench/cluster.py [--requests N] [--keys N] [--repeat N] [--pin] [--results RESULTS.md]"""
import argparse, os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
_argv, sys.argv = sys.argv, sys.argv[:1]  # bench.py reads its own argv when imported
from bench import FERRO, cpu_seconds, free_port, wait_ready  # noqa: E402
sys.argv = _argv


class Node:
    def __init__(self, kind, cluster):
        self.kind = kind
        self.port = free_port()
        while self.port + 10000 > 65535:
            self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"bench-cluster-{kind}-")
        argv = [FERRO, "server"] if kind == "ferrocache" else ["redis-server"]
        argv = PIN_SERVER + argv
        argv += ["--port", str(self.port), "--save", "", "--appendonly", "no", "--dir", self.dir]
        if cluster:
            argv += ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.port)

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True).stdout.strip()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_ok(nodes):
    for _ in range(300):
        if all("cluster_state:ok" in n.cli("cluster", "info") for n in nodes):
            return
        time.sleep(0.1)
    raise RuntimeError("cluster did not reach ok")


def bench(nodes, test, pipeline, n, cluster):
    argv = PIN_CLIENT + ["redis-benchmark", "-p", str(nodes[0].port), "-t", test, "-c", "50", "-n", str(n), "-P", str(pipeline),
            "-r", "100000", "--csv"]
    if cluster:
        argv.append("--cluster")
    before = sum(cpu_seconds(x.proc.pid) for x in nodes)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
    cpu = sum(cpu_seconds(x.proc.pid) for x in nodes) - before
    rows = [l.split(",") for l in out.strip().splitlines() if l]
    rps = float(rows[-1][1].strip('"')) if len(rows) >= 2 else 0.0
    return {"rps": rps, "cpu_per_m": cpu / (n / 1e6)}


MODES = ("standalone", "one-node cluster", "3-master cluster")
# --pin: servers on CPU 0 and redis-benchmark on CPU 1 (taskset), so that the client does not
# take the servers' core from run to run.
PIN_SERVER, PIN_CLIENT = [], []


def cost(kind, requests, repeat):
    """(mode, test, pipeline) -> result, the median of `repeat` rounds (each round runs every
    mode on fresh processes: from one process to the next the same run varies by up to 20%)."""
    rounds = [cost_once(kind, requests) for _ in range(repeat)]
    out = {}
    for key in rounds[0]:
        rs = sorted(r[key]["cpu_per_m"] for r in rounds)
        ops = sorted(r[key]["rps"] for r in rounds)
        out[key] = {"rps": ops[len(ops) // 2], "cpu_per_m": rs[len(rs) // 2]}
    return out


def cost_once(kind, requests):
    """(mode, test, pipeline) -> result. The one-node cluster holds every slot and is driven by
    plain redis-benchmark (no redirection: the routing's own cost); the 3-master cluster by
    redis-benchmark --cluster."""
    out = {}
    for mode in MODES:
        nodes = [Node(kind, mode != "standalone") for _ in range(3 if mode.startswith("3") else 1)]
        try:
            if mode == "one-node cluster":
                nodes[0].cli("cluster", "addslotsrange", "0", "16383")
                wait_ok(nodes)
            elif mode.startswith("3"):
                for i, (lo, hi) in enumerate([(0, 5460), (5461, 10922), (10923, 16383)]):
                    nodes[i].cli("cluster", "addslotsrange", str(lo), str(hi))
                for x in nodes[1:]:
                    nodes[0].cli("cluster", "meet", "127.0.0.1", str(x.port))
                wait_ok(nodes)
                time.sleep(2)
            for test in ("get", "set"):
                for p in (1, 16):
                    n = requests * 5 if p > 1 else requests
                    out[(mode, test, p)] = bench(nodes, test, p, n, mode.startswith("3"))
        finally:
            for x in nodes:
                x.stop()
    return out


def load(node, n, slots_of_a):
    """n keys whose slots are in A's range, written with redis-cli --pipe."""
    buf = bytearray()
    i = made = 0
    while made < n:
        k = b"key:%d" % i
        i += 1
        if not slots_of_a(k):
            continue
        buf += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$10\r\n0123456789\r\n" % (len(k), k)
        made += 1
    subprocess.run(["redis-cli", "-p", str(node.port), "--pipe"], input=bytes(buf), capture_output=True, timeout=600)


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def reshard(kind, keys):
    a, b = Node(kind, True), Node(kind, True)
    try:
        a.cli("cluster", "addslotsrange", "0", "8191")
        b.cli("cluster", "addslotsrange", "8192", "16383")
        a.cli("cluster", "meet", "127.0.0.1", str(b.port))
        wait_ok([a, b])
        time.sleep(1)
        load(a, keys, lambda k: crc16(k) % 16384 < 8192)
        assert int(a.cli("dbsize")) == keys, a.cli("dbsize")
        bid = b.cli("cluster", "myid")
        aid = a.cli("cluster", "myid")
        t0 = time.time()
        r = subprocess.run(["redis-cli", "--cluster", "reshard", f"127.0.0.1:{a.port}", "--cluster-from", aid,
                            "--cluster-to", bid, "--cluster-slots", "8192", "--cluster-yes",
                            "--cluster-pipeline", "100"], capture_output=True, text=True, timeout=1800)
        wall = time.time() - t0
        moved = int(b.cli("dbsize"))
        # (A, left without slots, then becomes B's replica, as Redis does with
        # cluster-allow-replica-migration yes: its own count is not looked at.)
        if r.returncode != 0 or moved != keys:
            raise RuntimeError(f"{kind} reshard: rc {r.returncode}, {moved} keys on B\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        return {"wall": wall, "kps": keys / wall}
    finally:
        a.stop()
        b.stop()


def migrate(kind, keys):
    a, b = Node(kind, False), Node(kind, False)
    try:
        load(a, keys, lambda k: True)
        names = ["key:%d" % i for i in range(keys)]
        script = []
        for i in range(0, keys, 100):
            batch = names[i:i + 100]
            script.append(" ".join(["MIGRATE", "127.0.0.1", str(b.port), '""', "0", "5000", "KEYS", *batch]))
        t0 = time.time()
        subprocess.run(["redis-cli", "-p", str(a.port)], input="\n".join(script) + "\n", capture_output=True,
                       text=True, timeout=1800)
        wall = time.time() - t0
        moved = int(b.cli("dbsize"))
        if moved != keys:
            raise RuntimeError(f"{kind} MIGRATE moved {moved} of {keys}")
        return {"wall": wall, "kps": keys / wall}
    finally:
        a.stop()
        b.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--keys", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=3, help="rounds per server; the median is reported")
    ap.add_argument("--pin", action="store_true", help="servers on CPU 0, redis-benchmark on CPU 1 (taskset)")
    ap.add_argument("--results", default=None, help="append a '## Cluster mode' section to this markdown file")
    args = ap.parse_args()
    if args.pin:
        PIN_SERVER[:] = ["taskset", "-c", "0"]
        PIN_CLIENT[:] = ["taskset", "-c", "1"]
    if not os.path.exists(FERRO):
        sys.exit("build first: cargo build --release (%s missing)" % FERRO)
    kinds = ["ferrocache"] + (["redis-server"] if shutil.which("redis-server") else [])
    costs = {}
    for k in kinds:
        costs[k] = cost(k, args.requests, args.repeat)
        print(k, {f"{m} {t} P{p}": v for (m, t, p), v in costs[k].items()}, flush=True)
    moves = {k: (reshard(k, args.keys), migrate(k, args.keys)) for k in kinds}
    out = [
        "",
        "## Cluster mode",
        "",
        "`bench/cluster.py --requests %d --keys %d --repeat %d%s` (%s, %d cores, servers and load on the same"
        " machine%s; each cell is the median of the rounds)."
        " Cost: the same server standalone, as a one-node cluster holding every slot (plain redis-benchmark: no"
        " redirection, only the routing's cost) and as a three-master cluster (`redis-benchmark --cluster`, which"
        " refuses a single node), `-c 50 -r 100000`; server CPU seconds per million operations from"
        " /proc/PID/stat, summed over a cluster's nodes; ratio = cluster / standalone (target <= 1.05)."
        % (
            args.requests,
            args.keys,
            args.repeat,
            " --pin" if args.pin else "",
            time.strftime("%Y-%m-%d"),
            os.cpu_count(),
            ", servers pinned to CPU 0 and redis-benchmark to CPU 1" if args.pin else "",
        ),
        "",
        "| server | test | P | standalone ops/s | CPU s/M | 1-node cluster ops/s | CPU s/M | ratio | 3-master --cluster ops/s | CPU s/M | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in kinds:
        c = costs[k]
        for test in ("get", "set"):
            for p in (1, 16):
                row = [k, test.upper(), str(p)]
                base = c[("standalone", test, p)]["cpu_per_m"]
                for m in MODES:
                    r = c[(m, test, p)]
                    row += ["%.0f" % r["rps"], "%.2f" % r["cpu_per_m"]]
                    if m != "standalone":
                        row.append("%.2f" % (r["cpu_per_m"] / base) if base else "-")
                out.append("| " + " | ".join(row) + " |")
    out += [
        "",
        "Resharding: %d keys (10-byte values) in slots 0-8191 of node A of a two-node cluster of the same server;"
        " `redis-cli --cluster reshard --cluster-slots 8192 --cluster-pipeline 100` moves them to node B. Raw"
        " MIGRATE: the same keys between two standalone servers, `MIGRATE ... KEYS` 100 at a time from one"
        " redis-cli session." % args.keys,
        "",
        "| server | reshard wall | reshard keys/s | MIGRATE wall | MIGRATE keys/s |",
        "|---|---|---|---|---|",
    ]
    for k in kinds:
        r, m = moves[k]
        out.append("| %s | %.1f s | %.0f | %.1f s | %.0f |" % (k, r["wall"], r["kps"], m["wall"], m["kps"]))
    text = "\n".join(out) + "\n"
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write(text)


if __name__ == "__main__":
    main()
