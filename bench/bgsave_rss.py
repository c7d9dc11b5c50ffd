#!/usr/bin/env python3
"""BGSAVE peak memory: ferrocache (point-in-time snapshot without fork: shard-granularity
copy-before-write) against redis-server (fork + kernel copy-on-write), under the same steady
write load.

For each server: start it in a temp dir with save points off, load a dataset of `--gb` GB
(`SET key:%012d <value>` with `--value-size` byte incompressible values, through
`redis-cli --pipe`), start `redis-benchmark -t set -r N` overwriting random existing keys,
sample memory for a few seconds (steady state), run BGSAVE, keep sampling every 50 ms until it
is done (and a second more), stop the load.

Memory samples (every `--interval-ms`):
  * VmRSS of the server from /proc/PID/status, plus VmRSS of its forked BGSAVE child (Redis):
    the sum double-counts the pages parent and child still share, so also
  * Pss from /proc/PID/smaps_rollup of the server (+ child): proportional set size, whose sum
    over the two processes is the physical memory they really use together.

Write throughput: total_commands_processed is read every 50 ms; reported are the SETs/s of the
steady state before the BGSAVE (`--steady-secs`), the average during the BGSAVE, during its first
quarter and its second half, and in the 2 s after it.

Usage: bench/bgsave_rss.py [--gb 4.0] [--value-size 1000] [--clients 2] [--results bench/RESULTS.md]
(--results replaces the "## BGSAVE peak memory" section of that file with the new table.)
The ferrocache binary is target/release/ferrocache (build it with cargo build --release).
"""
import argparse, os, shutil, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRO = os.path.join(ROOT, "target", "release", "ferrocache")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Resp:
    """A minimal RESP2 client (INFO polling without spawning redis-cli every 50 ms)."""

    def __init__(self, port):
        for _ in range(600):
            try:
                self.s = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("server did not start on port %d" % port)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.read()

    def read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode(errors="replace")
        if t == b"*":
            return [self.read() for _ in range(int(rest))]
        raise RuntimeError("bad reply %r" % line)

    def info(self, section):
        d = {}
        for l in self.cmd("INFO", section).splitlines():
            if ":" in l:
                k, v = l.split(":", 1)
                d[k] = v
        return d


def status_kb(pid, field="VmRSS"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for l in f:
                if l.startswith(field + ":"):
                    return int(l.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for l in f:
                if l.startswith("Pss:"):
                    return int(l.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


class Sampler(threading.Thread):
    def __init__(self, pid, interval):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples = []  # (t, rss_kb_sum, pss_kb_sum, nchildren)
        self.stop = False

    def run(self):
        while not self.stop:
            t = time.time()
            pids = [self.pid] + children(self.pid)
            rss = sum(status_kb(p) for p in pids)
            pss = sum(pss_kb(p) for p in pids)
            self.samples.append((t, rss, pss, len(pids) - 1))
            time.sleep(max(0.0, self.interval - (time.time() - t)))


def load(port, n, vsize):
    """SET key:%012d <incompressible value> for n keys through redis-cli --pipe."""
    pool = os.urandom(1 << 20).hex().encode()  # 2 MiB of hex digits
    p = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    buf = []
    size = 0
    for i in range(n):
        off = (i * 7919) % (len(pool) - vsize)
        key = b"key:%012d" % i
        buf.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, vsize, pool[off:off + vsize]))
        size += vsize
        if len(buf) >= 10000:
            p.stdin.write(b"".join(buf))
            buf = []
    p.stdin.write(b"".join(buf))
    p.stdin.close()
    p.wait()


def run_one(name, argv, port, tmp, args):
    n = int(args.gb * (1 << 30) / args.value_size)
    log = open(os.path.join(tmp, name + ".log"), "w")
    srv = subprocess.Popen(argv, stdout=log, stderr=log, cwd=tmp)
    c = Resp(port)
    t0 = time.time()
    load(port, n, args.value_size)
    load_secs = time.time() - t0
    dbsize = c.cmd("DBSIZE")
    used = int(c.info("memory")["used_memory"])
    sampler = Sampler(srv.pid, args.interval_ms / 1000.0)
    sampler.start()
    bench = subprocess.Popen(
        ["redis-benchmark", "-p", str(port), "-t", "set", "-r", str(n), "-d", str(args.value_size),
         "-n", "2000000000", "-c", str(args.clients), "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    t_s0 = time.time()
    cmds_s0 = int(c.info("stats")["total_commands_processed"])
    time.sleep(max(0.0, args.steady_secs - 1.0))
    t_bg = time.time()
    cmds0 = int(c.info("stats")["total_commands_processed"])
    steady_wps = (cmds0 - cmds_s0) / max(1e-9, t_bg - t_s0)
    assert c.cmd("BGSAVE") == "Background saving started"
    series = [(t_bg, cmds0)]  # (time, total_commands_processed) every 50 ms during the BGSAVE
    time.sleep(0.05)
    while c.info("persistence")["rdb_bgsave_in_progress"] != "0":
        series.append((time.time(), int(c.info("stats")["total_commands_processed"])))
        time.sleep(0.05)
    t_end = time.time()
    cmds1 = int(c.info("stats")["total_commands_processed"])
    series.append((t_end, cmds1))
    time.sleep(2.0)
    t_after = time.time()
    after_wps = (int(c.info("stats")["total_commands_processed"]) - cmds1) / max(1e-9, t_after - t_end)

    def rate(t_from, t_to):
        pts = [p for p in series if t_from <= p[0] <= t_to]
        if len(pts) < 2:
            return 0.0
        return (pts[-1][1] - pts[0][1]) / max(1e-9, pts[-1][0] - pts[0][0])

    dur = t_end - t_bg
    first_q_wps = rate(t_bg, t_bg + dur / 4)
    second_half_wps = rate(t_bg + dur / 2, t_end)
    bench.terminate()
    bench.wait()
    sampler.stop = True
    sampler.join()
    st = c.info("persistence")
    assert st["rdb_last_bgsave_status"] == "ok", st
    rdb_size = os.path.getsize(os.path.join(tmp, "dump.rdb"))
    try:
        c.cmd("SHUTDOWN", "NOSAVE")
    except Exception:
        pass
    srv.wait(timeout=60)
    steady = [s for s in sampler.samples if t_bg - (args.steady_secs - 1) <= s[0] < t_bg]
    during = [s for s in sampler.samples if t_bg <= s[0] <= t_end + 0.1]
    steady_rss = sum(s[1] for s in steady) / max(1, len(steady))
    steady_pss = sum(s[2] for s in steady) / max(1, len(steady))
    peak_rss = max(s[1] for s in during)
    peak_pss = max(s[2] for s in during)
    return {
        "name": name, "keys": dbsize, "used_memory": used, "load_secs": load_secs,
        "steady_rss": steady_rss * 1024, "steady_pss": steady_pss * 1024,
        "peak_rss": peak_rss * 1024, "peak_pss": peak_pss * 1024,
        "bgsave_secs": t_end - t_bg, "writes_per_sec": (cmds1 - cmds0) / max(1e-9, t_end - t_bg), "steady_wps": steady_wps,
        "first_q_wps": first_q_wps, "second_half_wps": second_half_wps, "after_wps": after_wps,
        "samples": len(during), "rdb_size": rdb_size,
    }


def gb(x):
    return "%.2f GB" % (x / (1 << 30))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=4.0, help="dataset size (values only), GB")
    ap.add_argument("--value-size", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=2, help="redis-benchmark connections of the write load")
    ap.add_argument("--interval-ms", type=int, default=50)
    ap.add_argument("--steady-secs", type=float, default=5.0)
    ap.add_argument("--only", choices=["ferrocache", "redis"], default=None)
    ap.add_argument("--results", default=None, help="replace the '## BGSAVE peak memory' section of this markdown file")
    args = ap.parse_args()
    if not os.path.exists(FERRO) and args.only != "redis":
        sys.exit("build first: cargo build --release (%s missing)" % FERRO)
    rows = []
    for name in ["ferrocache", "redis-server"]:
        if args.only and not name.startswith(args.only):
            continue
        if name == "redis-server" and not shutil.which("redis-server"):
            print("redis-server not on PATH: skipped")
            continue
        tmp = tempfile.mkdtemp(prefix="bgsave-rss-")
        port = free_port()
        if name == "ferrocache":
            argv = [FERRO, "server", "--port", str(port), "--dir", tmp, "--save", ""]
        else:
            argv = ["redis-server", "--port", str(port), "--dir", tmp, "--save", "", "--appendonly", "no"]
        try:
            r = run_one(name, argv, port, tmp, args)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append(r)
        print("%s: %s" % (name, r), flush=True)
    uname = os.uname()
    table = [
        "",
        "## BGSAVE peak memory",
        "",
        "`bench/bgsave_rss.py --gb %g --value-size %d --clients %d` (%s, %d cores, %s): %d keys of %d-byte"
        " incompressible values loaded with `redis-cli --pipe`; `redis-benchmark -t set -r N -c %d` overwrites"
        " random existing keys throughout; BGSAVE after %gs of steady state; memory sampled every %d ms."
        " RSS = VmRSS of the server (+ its forked child for Redis: double-counts the pages they still share);"
        " Pss = proportional set size summed over the same processes (the physical memory they use together)."
        % (args.gb, args.value_size, args.clients, time.strftime("%Y-%m-%d"), os.cpu_count(), uname.release,
           rows[0]["keys"] if rows else 0, args.value_size, args.clients, args.steady_secs, args.interval_ms),
        "",
        "| server | used_memory | steady RSS | peak RSS (server+child) | peak/steady RSS | steady Pss | peak Pss (server+child) | peak/steady Pss | BGSAVE time | RDB size |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append("| %s | %s | %s | %s | %.2fx | %s | %s | %.2fx | %.1f s | %s |" % (
            r["name"], gb(r["used_memory"]), gb(r["steady_rss"]), gb(r["peak_rss"]), r["peak_rss"] / r["steady_rss"],
            gb(r["steady_pss"]), gb(r["peak_pss"]), r["peak_pss"] / r["steady_pss"], r["bgsave_secs"],
            gb(r["rdb_size"])))
    table += [
        "",
        "Write throughput (SETs/s, all %d clients together):" % args.clients,
        "",
        "| server | steady, before BGSAVE | during BGSAVE (average) | during/steady | first quarter of the BGSAVE | second half | 2 s after |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append("| %s | %d | %d | %.2fx | %d | %d | %d |" % (
            r["name"], r["steady_wps"], r["writes_per_sec"], r["writes_per_sec"] / max(1e-9, r["steady_wps"]),
            r["first_q_wps"], r["second_half_wps"], r["after_wps"]))
    text = "\n".join(table) + "\n"
    print(text)
    if args.results:
        with open(args.results) as f:
            old = f.read()
        head = "\n## BGSAVE peak memory\n"
        i = old.find(head)
        if i < 0:
            new = old + text
        else:
            j = old.find("\n## ", i + len(head))
            new = old[:i] + text + (old[j:] if j >= 0 else "")
        with open(args.results, "w") as f:
            f.write(new)


if __name__ == "__main__":
    main()
