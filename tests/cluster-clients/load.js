// ioredis Cluster load for tests/cluster-clients/live.py: writes key js:<n> = <n> and reads back a
// random earlier key, until stdin closes. Prints one JSON line per error ({"t": unix seconds,
// "err": text}) as it happens and a final {"done": true, "ops": N, "acked": [...]} line.
const Redis = require("ioredis");
const seeds = process.argv.slice(2).map((a) => ({ host: "127.0.0.1", port: Number(a) }));
const cluster = new Redis.Cluster(seeds, {
  scaleReads: "master",
  enableOfflineQueue: true,
  retryDelayOnFailover: 100,
  retryDelayOnClusterDown: 100,
  maxRedirections: 32,
  clusterRetryStrategy: () => 100,
  redisOptions: { maxRetriesPerRequest: 20, connectTimeout: 2000 },
});
let running = true;
let ops = 0;
const acked = [];
process.stdin.on("end", () => (running = false));
process.stdin.resume();
const now = () => Date.now() / 1000;
function err(e) {
  process.stdout.write(JSON.stringify({ t: now(), err: String(e && e.message ? e.message : e) }) + "\n");
}
async function main() {
  let n = 0;
  while (running) {
    n += 1;
    const k = `js:${n}`;
    try {
      const r = await cluster.set(k, String(n));
      if (r === "OK") acked.push(n);
      ops += 1;
      if (acked.length > 1) {
        const m = acked[Math.floor(Math.random() * acked.length)];
        const v = await cluster.get(`js:${m}`);
        ops += 1;
        if (v !== String(m)) err(`read js:${m} gave ${v}`);
      }
    } catch (e) {
      err(e);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  process.stdout.write(JSON.stringify({ done: true, ops, acked }) + "\n");
  cluster.disconnect();
}
main();
