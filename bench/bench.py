#!/usr/bin/env python3
"""Run redis-benchmark against ferrocache and redis-server in the same run and write
bench/RESULTS.md: ops/s, p50/p99 latency, server CPU seconds per million operations
(from /proc/PID/stat, so the load generator's share of the cores does not blur it), RSS."""
import csv, io, os, shutil, socket, subprocess, sys, tempfile, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRO = os.path.join(ROOT, "target", "release", "ferrocache")
MARKER = "<!-- sections below are written by bench/callgrind.py and bench/bgsave_rss.py -->"
TESTS = ["set", "get", "incr", "lpush", "hset", "mset"]
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_ready(port):
    for _ in range(200):
        try:
            out = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, timeout=2).stdout
            if "PONG" in out:
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK


def rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Server:
    def __init__(self, name, argv_fn):
        self.name = name
        self.argv_fn = argv_fn
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
        self.proc = subprocess.Popen(argv_fn(self.port), cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.port)

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True).stdout

    def stop(self):
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_bench(srv, test, pipeline):
    # Deeper pipelines finish fast: more requests keep the CPU-time reading (10 ms ticks) precise.
    n = N * 5 if pipeline > 1 else N
    srv.cli("flushall")
    before = cpu_seconds(srv.proc.pid)
    t0 = time.time()
    out = subprocess.run(
        ["redis-benchmark", "-p", str(srv.port), "-t", test, "-c", "50", "-n", str(n), "-P", str(pipeline), "-r", "100000", "--csv"],
        capture_output=True, text=True, timeout=600,
    ).stdout
    wall = time.time() - t0
    cpu = cpu_seconds(srv.proc.pid) - before
    rows = list(csv.reader(io.StringIO(out)))
    if len(rows) < 2:
        return None
    hdr, vals = rows[0], rows[1]
    d = dict(zip(hdr, vals))
    rps = float(d["rps"])
    if rps <= 0:
        return None
    return {"rps": rps, "p50": float(d["p50_latency_ms"]), "p99": float(d["p99_latency_ms"]),
            "cpu_per_m": cpu / (n / 1e6), "wall": wall}


def load_keys(srv, n):
    """Load n string keys (key:0000000001 -> 'xxx') through redis-cli --pipe and return RSS growth."""
    srv.cli("flushall")
    time.sleep(0.3)
    base = rss_bytes(srv.proc.pid)
    buf = io.BytesIO()
    for i in range(n):
        k = b"key:%010d" % i
        buf.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nxxx\r\n" % (len(k), k))
    subprocess.run(["redis-cli", "-p", str(srv.port), "--pipe"], input=buf.getvalue(), capture_output=True, timeout=600)
    time.sleep(0.5)
    size = srv.cli("dbsize").strip()
    return rss_bytes(srv.proc.pid) - base, base, size


def mc_ready(port):
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"version\r\n")
                if c.recv(100).startswith(b"VERSION"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def memcslap(port, test, n):
    """Run memcslap (libmemcached-tools); returns ops/s and average latency in ms."""
    conc = 50
    out = subprocess.run(["memcslap", f"--servers=127.0.0.1:{port}", f"--concurrency={conc}", f"--execute-number={n // conc}", f"--test={test}"],
                         capture_output=True, text=True, timeout=900).stdout
    import re
    m = re.search(r"Time to (?:get|set)\s+(\d+) keys by\s+\d+ threads:\s+([\d.]+) seconds", out)
    if not m:
        return None
    ops, secs = int(m.group(1)), float(m.group(2))
    return {"rps": ops / secs, "avg_ms": conc * secs / ops * 1000, "ops": ops}


def mc_load(port, pid, n):
    base = rss_bytes(pid)
    buf = io.BytesIO()
    for i in range(n):
        buf.write(b"set key:%010d 0 0 3 noreply\r\nxxx\r\n" % i)
    buf.write(b"version\r\n")
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(buf.getvalue())
        c.settimeout(60)
        got = b""
        while b"VERSION" not in got:
            d = c.recv(65536)
            if not d:
                break
            got += d
    time.sleep(0.5)
    return rss_bytes(pid) - base


def memcached_section():
    """ferrocache's memcached port vs memcached with the same thread count."""
    if not shutil.which("memcached") or not shutil.which("memcslap"):
        return ["## Memcached", "", "skipped: memcached or memcslap (libmemcached-tools) missing", ""]
    threads = os.cpu_count()
    fport, mport = free_port(), free_port()
    fp = subprocess.Popen([FERRO, "server", "--port", str(free_port()), "--memcached-port", str(fport)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mp = subprocess.Popen(["memcached", "-p", str(mport), "-U", "0", "-t", str(threads), "-m", "1024", "-u", "root"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = ["## Memcached protocol", "",
             f"memcslap --concurrency=50, {N} operations per test; memcached 1.6 with -t {threads} -m 1024, ferrocache with its default {threads} threads.", ""]
    try:
        if not mc_ready(fport):
            return lines + ["ferrocache did not serve the memcached protocol (no --memcached-port support in this build)", ""]
        mc_ready(mport)
        lines += ["| test | ferrocache ops/s | memcached ops/s | ratio | ferro avg ms | memcached avg ms | ferro CPU s/M ops | memcached CPU s/M ops | CPU ratio |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for test in ("set", "get"):
            row = {}
            for name, port, proc in (("f", fport, fp), ("m", mport, mp)):
                b = cpu_seconds(proc.pid)
                r = memcslap(port, test, N)
                if r:
                    r["cpu_per_m"] = (cpu_seconds(proc.pid) - b) / (r["ops"] / 1e6)
                row[name] = r
                print("memcached", name, test, r, flush=True)
            f, m = row["f"], row["m"]
            ratio = f["rps"] / m["rps"] if f and m else None
            cr = f["cpu_per_m"] / m["cpu_per_m"] if f and m and m["cpu_per_m"] > 0 else None
            lines.append(f"| {test} | {fmt(f and f['rps'], ',.0f')} | {fmt(m and m['rps'], ',.0f')} | {fmt(ratio, '.2f')} | {fmt(f and f['avg_ms'], '.3f')} | {fmt(m and m['avg_ms'], '.3f')} | {fmt(f and f['cpu_per_m'], '.2f')} | {fmt(m and m['cpu_per_m'], '.2f')} | {fmt(cr, '.2f')} |")
        fg = mc_load(fport, fp.pid, 1_000_000)
        mg = mc_load(mport, mp.pid, 1_000_000)
        lines += ["", "| 1M items (key:NNNNNNNNNN, 3-byte value) | RSS growth | bytes/item |", "|---|---|---|",
                  f"| ferrocache | {fg/1e6:.1f} MB | {fg/1e6:.1f} |", f"| memcached | {mg/1e6:.1f} MB | {mg/1e6:.1f} |", ""]
    finally:
        for p in (fp, mp):
            p.terminate()
            p.wait()
    return lines


def load_collection(srv, kind, n):
    """One key holding n elements; returns RSS growth and OBJECT ENCODING."""
    srv.cli("flushall")
    time.sleep(0.3)
    base = rss_bytes(srv.proc.pid)
    buf = io.BytesIO()
    batch = 100
    for start in range(0, n, batch):
        parts = []
        for i in range(start, min(n, start + batch)):
            m = b"member:%010d" % i
            if kind == "hash":
                parts += [m, b"value"]
            elif kind == "zset":
                parts += [b"%d" % i, m]
            else:
                parts.append(m)
        cmd = {"list": b"RPUSH", "set": b"SADD", "hash": b"HSET", "zset": b"ZADD"}[kind]
        args = [cmd, b"big"] + parts
        buf.write(b"*%d\r\n" % len(args))
        for a in args:
            buf.write(b"$%d\r\n%s\r\n" % (len(a), a))
    subprocess.run(["redis-cli", "-p", str(srv.port), "--pipe"], input=buf.getvalue(), capture_output=True, timeout=600)
    time.sleep(0.5)
    enc = srv.cli("object", "encoding", "big").strip()
    return rss_bytes(srv.proc.pid) - base, enc


def main():
    servers = [
        Server("ferrocache", lambda p: [FERRO, "server", "--port", str(p)]),
        Server("redis-server", lambda p: ["redis-server", "--port", str(p), "--save", "", "--appendonly", "no"]),
    ]
    results = {}
    coll = {}
    try:
        for pipeline in (1, 16):
            for test in TESTS:
                for s in servers:
                    r = run_bench(s, test, pipeline)
                    results[(s.name, test, pipeline)] = r
                    print(s.name, test, "P", pipeline, r, flush=True)
        for s in servers:
            s.stop()
        # Memory is measured on fresh processes: memory freed by earlier tests and kept by the
        # allocator would otherwise hide part of the growth.
        mem = {}
        for kind in ("strings", "list", "set", "hash", "zset"):
            fresh = [Server(s.name, s.argv_fn) for s in servers]
            try:
                for s in fresh:
                    if kind == "strings":
                        mem[s.name] = load_keys(s, 1_000_000)
                        print(s.name, "1M keys RSS growth", mem[s.name], flush=True)
                    else:
                        coll[(s.name, kind)] = load_collection(s, kind, 1_000_000)
                        print(s.name, kind, coll[(s.name, kind)], flush=True)
            finally:
                for s in fresh:
                    s.stop()
    finally:
        for s in servers:
            s.stop()
    mc = memcached_section()
    write_results(results, mem, mc, coll)


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def write_results(results, mem, mc, coll):
    nproc = os.cpu_count()
    lines = ["# Benchmark results", "",
             f"Machine: {nproc} cores (the load generator shares them). redis-benchmark -c 50 -r 100000, -n {N} at pipeline 1 and {N*5} at pipeline 16; "
             f"ferrocache with its default threads ({nproc}), redis-server 7.0 (Debian) with --save ''. "
             "Ratios are ferrocache / redis-server (ops/s: higher is better; CPU per op, latency and RSS: lower is better). "
             "Server CPU = utime+stime of the server process from /proc/PID/stat during the test.", ""]
    for pipeline in (1, 16):
        lines += [f"## Pipeline depth {pipeline}", "",
                  "| test | ferrocache ops/s | redis ops/s | ratio | ferro p50/p99 ms | redis p50/p99 ms | ferro CPU s/M ops | redis CPU s/M ops | CPU ratio |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for test in TESTS:
            f = results.get(("ferrocache", test, pipeline))
            r = results.get(("redis-server", test, pipeline))
            ratio = f["rps"] / r["rps"] if f and r else None
            cratio = f["cpu_per_m"] / r["cpu_per_m"] if f and r and r["cpu_per_m"] > 0 else None
            lines.append(
                f"| {test} | {fmt(f and f['rps'], ',.0f')} | {fmt(r and r['rps'], ',.0f')} | {fmt(ratio, '.2f')} | "
                f"{fmt(f and f['p50'], '.3f')}/{fmt(f and f['p99'], '.3f')} | {fmt(r and r['p50'], '.3f')}/{fmt(r and r['p99'], '.3f')} | "
                f"{fmt(f and f['cpu_per_m'], '.2f')} | {fmt(r and r['cpu_per_m'], '.2f')} | {fmt(cratio, '.2f')} |")
        lines.append("")
    lines += ["## Memory: 1M string keys (key:NNNNNNNNNN -> 3 bytes)", "",
              "| server | RSS growth | bytes/key | keys |", "|---|---|---|---|"]
    for name, (growth, base, size) in mem.items():
        lines.append(f"| {name} | {growth/1e6:.1f} MB | {growth/1e6:.1f} | {size} |")
    if "ferrocache" in mem and "redis-server" in mem and mem["redis-server"][0] > 0:
        lines += ["", f"RSS per key ratio (ferrocache / redis-server): {mem['ferrocache'][0]/mem['redis-server'][0]:.2f}"]
    lines.append("")
    lines += ["## Memory: one key with 1M elements (member:NNNNNNNNNN)", "",
              "| type | ferrocache RSS growth | redis RSS growth | ratio | ferrocache encoding | redis encoding |", "|---|---|---|---|---|---|"]
    for kind in ("list", "set", "hash", "zset"):
        f = coll.get(("ferrocache", kind))
        r = coll.get(("redis-server", kind))
        if f and r:
            lines.append(f"| {kind} | {f[0]/1e6:.1f} MB | {r[0]/1e6:.1f} MB | {f[0]/max(r[0],1):.2f} | {f[1]} | {r[1]} |")
    lines.append("")
    lines += mc
    path = os.path.join(ROOT, "bench", "RESULTS.md")
    # Sections written by the other benchmark scripts (callgrind.py, bgsave_rss.py) follow a marker
    # and are kept.
    kept = ""
    if os.path.exists(path):
        old = open(path).read()
        i = old.find(MARKER)
        if i >= 0:
            kept = old[i:]
    with open(path, "w") as f:
        f.write("\n".join(lines))
        f.write("\n" + (kept or MARKER + "\n"))
    try:
        chart(results)
    except Exception as e:  # matplotlib may be missing
        print("chart skipped:", e)


def chart(results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, pipeline in zip(axes, (1, 16)):
        xs = range(len(TESTS))
        for off, name in ((-0.2, "ferrocache"), (0.2, "redis-server")):
            ys = [(results.get((name, t, pipeline)) or {}).get("rps", 0) for t in TESTS]
            ax.bar([x + off for x in xs], ys, width=0.4, label=name)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(TESTS)
        ax.set_title(f"ops/s, pipeline {pipeline}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, "bench", "results.png"))


if __name__ == "__main__":
    main()
