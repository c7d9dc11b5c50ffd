#!/usr/bin/env python3
"""The managed layer's cluster mode, timed: `ferrocache control` (release build) creating a
3x1 cluster-mode replication group, resharding it 3 -> 5 -> 3 shards with data in it, and
failing each shard over after a kill -9 of its primary.

1. Create: CreateReplicationGroup (NumNodeGroups 3, ReplicasPerNodeGroup 1) until
   DescribeReplicationGroups says available.
2. Reshard: N keys of S bytes written through the primaries, then
   ModifyReplicationGroupShardConfiguration to 5 shards and back to 3 (NodeGroupsToRemove
   0004 0005); keys moved = the keys on the shards that received slots, per second and MB/s.
3. Failover: kill -9 of each shard's primary in turn; the time until its replica serves the
   shard as a master (CLUSTER NODES), and until the group is available again with the dead
   node replaced by a fresh replica.

Usage: bench/control_cluster.py [--keys N] [--value-size S] [--results RESULTS.md]"""
import argparse, os, shutil, signal, subprocess, sys, tempfile, time
import urllib.parse, urllib.request
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
_argv, sys.argv = sys.argv, sys.argv[:1]  # bench.py reads its own argv when imported
from bench import FERRO, free_port  # noqa: E402
sys.argv = _argv

NS = "{http://elasticache.amazonaws.com/doc/2015-02-02/}"


def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


class Control:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="bench-control-")
        self.port = free_port()
        self.proc = subprocess.Popen([FERRO, "control", "--data-dir", self.dir, "--port", str(self.port),
                                      "--sentinel-port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                self.call("DescribeEvents")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("control plane did not start")

    def call(self, action, **params):
        body = urllib.parse.urlencode({"Action": action, "Version": "2015-02-02", **params}).encode()
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/" % self.port, body) as r:
                return ET.fromstring(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(e.read().decode())

    def group(self, gid):
        return self.call("DescribeReplicationGroups", ReplicationGroupId=gid).find(".//" + NS + "ReplicationGroup")

    def wait_available(self, gid, limit=600):
        deadline = time.time() + limit
        while time.time() < deadline:
            if self.group(gid).find(NS + "Status").text == "available":
                return
            time.sleep(0.05)
        raise RuntimeError("not available")

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        # The nodes run in their own process groups: kill them by their data dir.
        subprocess.run(["pkill", "-9", "-f", self.dir])
        shutil.rmtree(self.dir, ignore_errors=True)


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout


def nodes(port):
    out = []
    for line in cli(port, "CLUSTER", "NODES").splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        slots = []
        for s in f[8:]:
            if s.startswith("["):
                continue
            a, _, b = s.partition("-")
            slots.append((int(a), int(b or a)))
        out.append({"id": f[0], "port": int(f[1].split("@")[0].rsplit(":", 1)[1]), "flags": f[2], "master": f[3],
                    "slots": slots})
    return out


def fill(cfg, n, size):
    masters = [x for x in nodes(cfg) if "master" in x["flags"]]
    owner = {}
    for m in masters:
        for a, b in m["slots"]:
            for s in range(a, b + 1):
                owner[s] = m["port"]
    value = "x" * size
    per_port = {}
    for i in range(n):
        k = "key:%d" % i
        per_port.setdefault(owner[crc16(k.encode()) % 16384], []).append(
            "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, size, value))
    for port, cmds in per_port.items():
        subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input="".join(cmds).encode(), capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=200000)
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--results")
    a = ap.parse_args()
    cp = Control()
    lines = []
    try:
        t = time.time()
        cp.call("CreateReplicationGroup", ReplicationGroupId="bench", ReplicationGroupDescription="bench",
                NumNodeGroups="3", ReplicasPerNodeGroup="1", CacheNodeType="cache.t3.micro")
        cp.wait_available("bench")
        create_s = time.time() - t
        g = cp.group("bench")
        cfg = int(g.find(NS + "ConfigurationEndpoint/" + NS + "Port").text)
        lines.append("create 3x1 (6 nodes) to available: %.2f s" % create_s)
        fill(cfg, a.keys, a.value_size)
        total = sum(int(cli(x["port"], "DBSIZE")) for x in nodes(cfg) if "master" in x["flags"])
        assert total == a.keys, total
        for target, extra in [(5, {}), (3, {"NodeGroupsToRemove.NodeGroupToRemove.1": "0004",
                                             "NodeGroupsToRemove.NodeGroupToRemove.2": "0005"})]:
            before = {x["id"]: int(cli(x["port"], "DBSIZE")) for x in nodes(cfg) if "master" in x["flags"]}
            t = time.time()
            cp.call("ModifyReplicationGroupShardConfiguration", ReplicationGroupId="bench",
                    NodeGroupCount=str(target), ApplyImmediately="true", **extra)
            cp.wait_available("bench")
            secs = time.time() - t
            after = {x["id"]: int(cli(x["port"], "DBSIZE")) for x in nodes(cfg) if "master" in x["flags"]}
            moved = sum(max(0, after.get(i, 0) - before.get(i, 0)) for i in after)
            assert sum(after.values()) == a.keys, after
            mb = moved * (a.value_size + 10) / 1e6
            lines.append("reshard %d -> %d shards: %d keys (%.1f MB) moved in %.2f s: %.0f keys/s, %.2f MB/s"
                         % (len(before), target, moved, mb, secs, moved / secs, mb / secs))
        g = cp.group("bench")
        for ng in g.find(NS + "NodeGroups"):
            sid = ng.find(NS + "NodeGroupId").text
            view = nodes(cfg)
            # The shard's primary holds its first slot; its replica follows it.
            first = int(ng.find(NS + "Slots").text.split(",")[0].split("-")[0])
            primary = next(x for x in view if "master" in x["flags"] and any(lo <= first <= hi for lo, hi in x["slots"]))
            replica = next(x for x in view if x["master"] == primary["id"])
            pid = int([l for l in cli(primary["port"], "INFO", "server").splitlines() if l.startswith("process_id:")][0].split(":")[1])
            t = time.time()
            os.kill(pid, signal.SIGKILL)
            promoted = None
            while time.time() - t < 60:
                me = next((x for x in nodes(replica["port"]) if "myself" in x["flags"]), None)
                if me and "master" in me["flags"] and me["slots"]:
                    promoted = time.time() - t
                    break
                time.sleep(0.02)
            time.sleep(0.5)
            cp.wait_available("bench")
            healed = time.time() - t
            lines.append("shard %s: kill -9 of its primary -> replica serving as master %.2f s, group available with the node replaced %.2f s"
                         % (sid, promoted or -1, healed))
            counts = {x["port"]: cli(x["port"], "DBSIZE").strip() for x in nodes(cfg) if "master" in x["flags"] and x["slots"]}
            assert sum(int(c or 0) for c in counts.values()) == a.keys, (counts, nodes(cfg))
    finally:
        cp.stop()
    for l in lines:
        print(l)
    if a.results:
        with open(a.results, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
