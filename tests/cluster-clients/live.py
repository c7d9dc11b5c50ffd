#!/usr/bin/env python3
"""A mixed cluster under live load, as issue 13 asks: 3 ferrocache + 3 redis-server 7.0 nodes made
with `redis-cli --cluster create ... --cluster-replicas 1`; `--cluster check`, `--cluster reshard`
(600 slots) and `--cluster rebalance` while redis-py's RedisCluster (two threads) and ioredis'
Cluster (a node process) keep writing and reading back; then `kill -9` of a ferrocache master and
of a redis-server master, each replica taking over within cluster-node-timeout + 2 s, while a
third writer does SET + WAIT 1 on the owning master: no WAIT-acknowledged write may be lost.

Client-visible errors (exceptions the clients raise after their own retries) are counted per
phase: none are allowed while slots move; during a failover they are reported (clients see the
dead master until the node timeout).

Usage: live.py FERROCACHE_BIN [LOAD_JS_DIR]   (LOAD_JS_DIR holds node_modules/ioredis; without
it the ioredis load is skipped and said so). Prints PASS/FAIL lines and "N passed, M failed"."""
import json, os, random, shutil, signal, socket, subprocess, sys, tempfile, threading, time

import redis
from redis.cluster import RedisCluster, ClusterNode
from redis.crc import key_slot

NODE_TIMEOUT = 2000
# The bound is node timeout + 2 s (met with release builds here: 3.1-3.9 s). CI runs the
# debug build with two clients and six nodes on 2 cores, where redis-server's own replicas took
# 4.1-4.2 s once: .ci/run allows FAILOVER_SLACK_S=4 there.
SLACK = float(os.environ.get("FAILOVER_SLACK_S", "2"))
FERRO = sys.argv[1]
JS_DIR = sys.argv[2] if len(sys.argv) > 2 else None
HERE = os.path.dirname(os.path.abspath(__file__))
results = []


def check(name, ok, detail=""):
    """One result line; a long detail (command output) only when it failed."""
    results.append(ok)
    if ok and len(detail) > 80:
        detail = ""
    print(("PASS " if ok else "FAIL ") + name + (": " + detail if detail else ""), flush=True)


def port_pair():
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p + 10000 > 65535:
            continue
        try:
            b = socket.socket()
            b.bind(("127.0.0.1", p + 10000))
            b.close()
            return p
        except OSError:
            continue


class Node:
    def __init__(self, kind):
        self.kind = kind
        self.port = port_pair()
        self.dir = tempfile.mkdtemp(prefix=f"live-{kind}-")
        argv = [FERRO, "server"] if kind == "ferrocache" else ["redis-server"]
        argv += ["--port", str(self.port), "--cluster-enabled", "yes", "--cluster-node-timeout", str(NODE_TIMEOUT),
                 "--save", "", "--appendonly", "no", "--dir", self.dir]
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                if self.r().ping():
                    break
            except redis.exceptions.ConnectionError:
                time.sleep(0.1)
        self.id = self.r().execute_command("CLUSTER MYID").decode()

    def r(self):
        return redis.Redis(port=self.port, socket_timeout=5)

    def cli(self, *args):
        """redis-cli's raw text (redis-py parses CLUSTER INFO/NODES into dicts)."""
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10)
        return r.stdout

    def alive(self):
        return self.proc.poll() is None

    def info(self, section):
        return self.r().info(section)

    def stop(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def cli(*args, timeout=300):
    r = subprocess.run(["redis-cli", *args], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def not_ok(nodes):
    """The live nodes that do not report cluster_state:ok, with what they say."""
    bad = []
    for n in nodes:
        if not n.alive():
            continue
        info = n.cli("CLUSTER", "INFO")
        if "cluster_state:ok" not in info:
            bad.append(f"{n.kind}:{n.port} {(info.splitlines() or [''])[0]}")
    return bad


def cluster_ok(nodes):
    return not not_ok(nodes)


def wait_for(cond, secs, step=0.1):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False


def check_cluster(seed, label):
    """--cluster check until it agrees (right after a move the replicas may lag a moment)."""
    out = ""
    for _ in range(50):
        rc, out = cli("--cluster", "check", f"127.0.0.1:{seed.port}")
        if rc == 0 and "[OK] All nodes agree" in out and "[OK] All 16384 slots covered" in out:
            check(f"--cluster check ({label})", True)
            return
        time.sleep(0.2)
    check(f"--cluster check ({label})", False, out[-1500:])


class Phases:
    def __init__(self):
        self.marks = [("create", time.time())]

    def mark(self, name):
        self.marks.append((name, time.time()))

    def of(self, t):
        name = self.marks[0][0]
        for n, at in self.marks:
            if t >= at:
                name = n
        return name


def py_load(seeds, stop, errors, acked, tag):
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", s.port) for s in seeds], socket_timeout=5)
    n = 0
    while not stop.is_set():
        n += 1
        k = f"py{tag}:{n}"
        try:
            if rc.set(k, n):
                acked.append(n)
            if len(acked) > 1:
                m = random.choice(acked)
                v = rc.get(f"py{tag}:{m}")
                if v != str(m).encode():
                    errors.append((time.time(), f"read py{tag}:{m} gave {v!r}"))
        except Exception as e:  # a client-visible error, after redis-py's own retries
            errors.append((time.time(), f"{type(e).__name__}: {e}"))
            time.sleep(0.05)


def slot_map(nodes):
    for n in nodes:
        if not n.alive():
            continue
        try:
            m = {}
            for start, end, master, *_ in n.r().execute_command("CLUSTER SLOTS"):
                for s in range(start, end + 1):
                    m[s] = master[1]
            if len(m) == 16384:
                return m
        except redis.exceptions.RedisError:
            continue
    return None


def durable_load(nodes, stop, acked, unacked):
    """SET + WAIT 1 on the owning master's connection: acked only when a replica has it."""
    conns = {}
    slots = slot_map(nodes)
    n = 0
    while not stop.is_set():
        n += 1
        k = f"durable:{n}"
        try:
            port = slots[key_slot(k.encode())]
            c = conns.setdefault(port, redis.Redis(port=port, socket_timeout=3))
            p = c.pipeline(transaction=False)
            p.set(k, n)
            p.execute_command("WAIT", 1, 1000)
            ok, replicas = p.execute()
            if ok and replicas >= 1:
                acked.append(k)
            else:
                unacked.append(k)
        except Exception:
            unacked.append(k)
            time.sleep(0.1)
            slots = slot_map(nodes) or slots
            conns.clear()


def failover(nodes, victim, phases, label):
    replicas = [n for n in nodes if n.alive() and n is not victim
                and n.info("replication").get("role") == "slave"
                and n.info("replication").get("master_port") == victim.port]
    if not replicas:
        check(f"{label}: the master has a replica", False)
        return
    replica = replicas[0]
    phases.mark(f"failover of {label}")
    t0 = time.time()
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    promoted = wait_for(lambda: replica.info("replication").get("role") == "master", 30, 0.05)
    took = time.time() - t0
    check(f"{label}: its {replica.kind} replica took over within node timeout + {SLACK:g} s",
          promoted and took <= NODE_TIMEOUT / 1000 + SLACK, f"{took:.2f} s")
    ok = wait_for(lambda: cluster_ok(nodes), 30)
    detail = f"{time.time() - t0:.2f} s after the kill"
    if not ok:
        detail += "; " + "; ".join(not_ok(nodes))
        for n in nodes:
            if n.alive():
                detail += f"\n{n.kind}:{n.port} sees:\n" + n.cli("CLUSTER", "NODES")
    check(f"{label}: every live node back to cluster_state:ok", ok, detail)
    time.sleep(1)


def main():
    if not shutil.which("redis-server"):
        print("SKIPPED: redis-server is not on PATH")
        print("0 passed, 0 failed")
        return 0
    nodes = []
    js = None
    try:
        ferro = [Node("ferrocache") for _ in range(3)]
        red = [Node("redis-server") for _ in range(3)]
        nodes = [ferro[0], red[0], ferro[1], red[1], ferro[2], red[2]]
        rc, out = cli("--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes], "--cluster-replicas", "1",
                      "--cluster-yes")
        check("--cluster create (3 ferrocache + 3 redis-server, --cluster-replicas 1)", rc == 0, out[-1500:])
        check("cluster_state:ok everywhere", wait_for(lambda: cluster_ok(nodes), 30))
        check("every master has its replica online", wait_for(
            lambda: sum(n.info("replication").get("connected_slaves", 0) for n in nodes) == 3, 30))
        check_cluster(nodes[0], "after create")

        phases = Phases()
        stop = threading.Event()
        py_errors, acked = [], [[], []]
        threads = [threading.Thread(target=py_load, args=(nodes, stop, py_errors, acked[i], i)) for i in range(2)]
        for t in threads:
            t.start()
        js_lines = []
        if JS_DIR and os.path.isdir(os.path.join(JS_DIR, "node_modules", "ioredis")):
            env = dict(os.environ, NODE_PATH=os.path.join(JS_DIR, "node_modules"))
            js = subprocess.Popen(["node", os.path.join(HERE, "load.js"), *[str(n.port) for n in nodes]],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            threading.Thread(target=lambda: js_lines.extend(js.stdout), daemon=True).start()
        else:
            print("NOTE ioredis not installed: its load is skipped")
        time.sleep(2)

        masters = [n for n in nodes if n.info("replication")["role"] == "master"]
        src, dst = masters[0], masters[1]
        phases.mark("reshard")
        rc, out = cli("--cluster", "reshard", f"127.0.0.1:{src.port}", "--cluster-from", src.id, "--cluster-to",
                      dst.id, "--cluster-slots", "600", "--cluster-yes", timeout=600)
        check(f"--cluster reshard 600 slots {src.kind} -> {dst.kind} under load", rc == 0, out[-1500:])
        check_cluster(nodes[0], "after reshard")
        phases.mark("rebalance")
        rc, out = cli("--cluster", "rebalance", f"127.0.0.1:{src.port}", "--cluster-yes", timeout=600)
        moved = [l[l.index("Moving "):] for l in out.splitlines() if "Moving " in l]
        check("--cluster rebalance under load", rc == 0 and bool(moved), "; ".join(moved) if rc == 0 else out[-800:])
        check_cluster(nodes[0], "after rebalance")
        phases.mark("steady")
        time.sleep(2)

        durable_stop = threading.Event()
        d_acked, d_unacked = [], []
        dt = threading.Thread(target=durable_load, args=(nodes, durable_stop, d_acked, d_unacked))
        dt.start()
        time.sleep(1)
        for kind in ("ferrocache", "redis-server"):
            victims = [n for n in nodes if n.kind == kind and n.alive() and n.info("replication")["role"] == "master"
                       and n.info("replication").get("connected_slaves", 0) > 0]
            if not victims:
                check(f"a {kind} master with a replica to kill", False)
                continue
            failover(nodes, victims[0], phases, f"kill -9 of a {kind} master")
            phases.mark("steady")
        time.sleep(1)
        durable_stop.set()
        dt.join()
        stop.set()
        for t in threads:
            t.join()
        js_result = None
        if js:
            js.stdin.close()
            js.wait(60)
            time.sleep(0.5)
            for l in js_lines:
                d = json.loads(l)
                if d.get("done"):
                    js_result = d
                else:
                    py_errors.append((d["t"], "ioredis: " + d["err"]))

        by_phase = {}
        for t, e in py_errors:
            by_phase.setdefault(phases.of(t), []).append(e)
        moving = by_phase.get("reshard", []) + by_phase.get("rebalance", []) + by_phase.get("steady", [])
        check("no client-visible error while slots move or the cluster is steady (redis-py, ioredis)",
              not moving, "; ".join(moving[:5]))
        for name, errs in sorted(by_phase.items()):
            print(f"INFO errors during {name}: {len(errs)}" + (f" (first: {errs[0]})" if errs else ""))
        total = sum(len(a) for a in acked) + (len(js_result["acked"]) if js_result else 0)
        print(f"INFO acknowledged writes: redis-py {sum(len(a) for a in acked)}, ioredis "
              f"{len(js_result['acked']) if js_result else '-'}; WAIT-acknowledged {len(d_acked)}")
        check("the loads made progress", total > 1000 and len(d_acked) > 50, f"{total} writes, {len(d_acked)} durable")

        rc_ = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in nodes if n.alive()])
        lost = [k for k in d_acked if rc_.get(k) is None]
        check("no WAIT-acknowledged write lost across two kill -9 failovers", not lost,
              f"{len(lost)} of {len(d_acked)} lost: {lost[:5]}")
        plain_lost = sum(1 for i, a in enumerate(acked) for n in a if rc_.get(f"py{i}:{n}") is None)
        print(f"INFO plain acknowledged writes (no WAIT) missing after the failovers: {plain_lost} "
              f"(asynchronous replication may lose writes made just before a kill, as in Redis)")
    finally:
        if js and js.poll() is None:
            js.kill()
        for n in nodes:
            n.stop()
    failed = results.count(False)
    print(f"{results.count(True)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
