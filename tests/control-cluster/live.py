#!/usr/bin/env python3
"""A cluster-mode replication group driven by the AWS CLI and boto3, written and read by
redis-py's RedisCluster through its configuration endpoint while it is scaled out (3 -> 5
shards) and in (5 -> 2): no client-visible errors beyond the client's own MOVED/ASK handling,
no acknowledged write lost, every key readable at the end.

Usage: live.py CONTROL_URL   (AWS credentials and region in the environment; `aws` on PATH)
Prints PASS/FAIL lines, timings, and "N passed, M failed"; exit 1 on a failure."""
import json
import subprocess
import sys
import threading
import time

import boto3
from redis.cluster import RedisCluster

URL = sys.argv[1]
GROUP = "live"
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)


def aws(*args):
    out = subprocess.run(["aws", "elasticache", "--endpoint-url", URL, "--output", "json", *args],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("aws %s: %s" % (" ".join(args), out.stderr))
    return json.loads(out.stdout) if out.stdout.strip() else {}


ec = boto3.client("elasticache", endpoint_url=URL)


def slot_count(slots):
    n = 0
    for part in slots.split(","):
        a, _, b = part.partition("-")
        n += int(b or a) - int(a) + 1
    return n


def group():
    return ec.describe_replication_groups(ReplicationGroupId=GROUP)["ReplicationGroups"][0]


def wait_available(limit=300, progress=None):
    deadline = time.time() + limit
    while time.time() < deadline:
        g = group()
        pct = g.get("PendingModifiedValues", {}).get("Resharding", {}).get("SlotMigration", {}).get("ProgressPercentage")
        if pct is not None and progress is not None:
            progress.append(pct)
        if g["Status"] == "available":
            return g
        time.sleep(0.2)
    raise RuntimeError("%s not available within %d s" % (GROUP, limit))


class Load:
    """Writers and readers on their own clients; every acknowledged SET and INCR recorded."""

    def __init__(self, port, threads=3):
        self.port = port
        self.stop = threading.Event()
        self.errors = []
        self.ask_bug = []
        self.acked = {}
        self.counters = {}
        self.ops = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(t,)) for t in range(threads)]

    def run(self, t):
        rc = RedisCluster(host="127.0.0.1", port=self.port, decode_responses=True)
        i = 0
        while not self.stop.is_set():
            i += 1
            key = "k:%d:%d" % (t, i % 3000)
            try:
                rc.set(key, str(i))
                with self.lock:
                    self.acked[key] = str(i)
                counter = "c:%d:%d" % (t, i % 50)
                rc.incr(counter)
                with self.lock:
                    self.counters[counter] = self.counters.get(counter, 0) + 1
                # Read-your-writes on a key this thread wrote before.
                old = "k:%d:%d" % (t, (i * 7) % 3000)
                want = self.acked.get(old)
                got = rc.get(old)
                if want is not None and got != want:
                    self.errors.append("GET %s = %r, acknowledged %r" % (old, got, want))
                with self.lock:
                    self.ops += 3
            except AttributeError as e:
                # redis-py 5 follows an ASK only to a node already in its slot map
                # (redis/redis-py#4015, fix in review as #4214): a failure of the client's own
                # ASK handling, counted and shown, not an error the server sent.
                if "redis_connection" not in str(e):
                    raise
                self.ask_bug.append("%s: %r" % (key, e))
            except Exception as e:  # anything else the client raised to the application
                self.errors.append("%s: %r" % (key, e))
                time.sleep(0.05)
        rc.close()

    def __enter__(self):
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for th in self.threads:
            th.join()


t0 = time.time()
created = aws("create-replication-group", "--replication-group-id", GROUP,
              "--replication-group-description", "live load", "--engine", "redis",
              "--cache-node-type", "cache.t3.micro", "--num-node-groups", "3",
              "--replicas-per-node-group", "1", "--cache-parameter-group-name", "default.redis7.cluster.on")
check("create-replication-group answers creating", created["ReplicationGroup"]["Status"] == "creating", created)
g = wait_available()
create_s = time.time() - t0
desc = aws("describe-replication-groups", "--replication-group-id", GROUP)["ReplicationGroups"][0]
check("ClusterEnabled and a ConfigurationEndpoint", desc["ClusterEnabled"] and "ConfigurationEndpoint" in desc, desc)
check("three shards with slot ranges", [ng["Slots"] for ng in desc["NodeGroups"]] == ["0-5461", "5462-10922", "10923-16383"], desc)
port = desc["ConfigurationEndpoint"]["Port"]

with Load(port) as load:
    time.sleep(2)
    # Scale out 3 -> 5 with boto3.
    t1 = time.time()
    r = ec.modify_replication_group_shard_configuration(ReplicationGroupId=GROUP, NodeGroupCount=5, ApplyImmediately=True)
    check("scale-out answers modifying", r["ReplicationGroup"]["Status"] == "modifying", r)
    seen = []
    g = wait_available(progress=seen)
    out_s = time.time() - t1
    check("progress reported while resharding", len(seen) > 0 and max(seen) > 0, seen)
    counts = sorted(slot_count(ng["Slots"]) for ng in g["NodeGroups"])
    check("five shards, evenly spread", counts == [3276, 3277, 3277, 3277, 3277], g["NodeGroups"])
    time.sleep(1)
    # Scale in 5 -> 2 with the AWS CLI, keeping 0002 and 0004.
    t2 = time.time()
    aws("modify-replication-group-shard-configuration", "--replication-group-id", GROUP,
        "--node-group-count", "2", "--apply-immediately", "--node-groups-to-retain", "0002", "0004")
    g = wait_available()
    in_s = time.time() - t2
    check("two shards left, 0002 and 0004", [ng["NodeGroupId"] for ng in g["NodeGroups"]] == ["0002", "0004"], g["NodeGroups"])
    check("the removed shards' clusters are gone", len(g["MemberClusters"]) == 4, g["MemberClusters"])
    time.sleep(1)

check("no client-visible errors under load (beyond the client's own ASK handling)", not load.errors, load.errors[:5])
print("redis-py's ASK to a node missing from its slot map (redis/redis-py#4015): %d times%s"
      % (len(load.ask_bug), "" if not load.ask_bug else ": " + "; ".join(load.ask_bug[:3])))
check("load ran (%d operations)" % load.ops, load.ops > 1000, load.ops)
rc = RedisCluster(host="127.0.0.1", port=port, decode_responses=True)
wrong = [(k, v, rc.get(k)) for k, v in load.acked.items() if rc.get(k) != v]
check("every acknowledged SET readable with its value (%d keys)" % len(load.acked), not wrong, wrong[:5])
bad = [(k, n, rc.get(k)) for k, n in load.counters.items() if rc.get(k) != str(n)]
check("every acknowledged INCR counted (%d counters)" % len(load.counters), not bad, bad[:5])
nodes = rc.cluster_nodes()
check("the cluster has the 4 nodes of 2 shards", len(nodes) == 4, nodes)
rc.close()
aws("delete-replication-group", "--replication-group-id", GROUP)
deadline = time.time() + 60
gone = False
while time.time() < deadline and not gone:
    try:
        group()
        time.sleep(0.2)
    except ec.exceptions.ReplicationGroupNotFoundFault:
        gone = True
check("deleted", gone)
print("timing: create 3x1 to available %.1f s; scale-out 3->5 %.1f s; scale-in 5->2 %.1f s (under load)" % (create_s, out_s, in_s))
failed = results.count(False)
print("%d passed, %d failed" % (results.count(True), failed))
sys.exit(1 if failed else 0)
