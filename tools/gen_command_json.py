#!/usr/bin/env python3
"""Merge Redis 7.0.15's per-command JSON metadata into one minified file.

Usage: tools/gen_command_json.py [REDIS_SRC_DIR] [OUT]
  REDIS_SRC_DIR defaults to /work/ref/redis-7.0.15 (reads src/commands/*.json)
  OUT defaults to crates/node/data/redis-commands.json

The output is one JSON object keyed by the lowercase full command name ("get",
"config|get" for subcommands), each value being the command's JSON body exactly as
Redis ships it (the "container" field tells a subcommand's parent). Keys are sorted so
the output is deterministic. The metadata is Redis's, under the BSD 3-Clause license
(see crates/node/data/README.md).
"""
import glob
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
src = sys.argv[1] if len(sys.argv) > 1 else "/work/ref/redis-7.0.15"
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "crates", "commands", "data", "redis-commands.json")

merged = {}
for path in sorted(glob.glob(os.path.join(src, "src", "commands", "*.json"))):
    with open(path) as f:
        doc = json.load(f)
    for name, body in doc.items():
        full = name.lower()
        if "container" in body:
            full = body["container"].lower() + "|" + full
        if full in merged:
            sys.exit("duplicate command %s in %s" % (full, path))
        merged[full] = body

with open(out, "w") as f:
    json.dump(merged, f, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    f.write("\n")
print("%d commands -> %s" % (len(merged), out))
