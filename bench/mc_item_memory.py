#!/usr/bin/env python3
"""RSS growth per memcached item, ferrocache vs memcached, on fresh processes (the same load as
bench.py's memcached section: 1M `set key:NNNNNNNNNN 0 0 3 noreply` items).
usage: bench/mc_item_memory.py [N]   (target/release/ferrocache, or FERRO_BIN)"""
import os, subprocess, sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
sys.argv = sys.argv[:1]  # bench.py reads its own argv at import
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def measure(argv, port):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bench.mc_ready(port)
        return bench.mc_load(port, p.pid, N) / N
    finally:
        p.terminate()
        p.wait()


fport, mport = bench.free_port(), bench.free_port()
ferro = os.environ.get("FERRO_BIN", bench.FERRO)
f = measure([ferro, "server", "--port", str(bench.free_port()), "--memcached-port", str(fport)], fport)
m = measure(["memcached", "-p", str(mport), "-U", "0", "-m", "1024", "-u", "root"], mport)
print(f"| {N} items (3-byte values) | ferrocache {f:.1f} B/item | memcached {m:.1f} B/item | ratio {f / m:.2f} |")
