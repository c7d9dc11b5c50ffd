//! Metrics: every second the control plane reads each node it runs (`INFO all` over the RESP
//! port; `stats` over the memcached port for memcached nodes; /proc for host figures) and keeps
//! per-node time series under ElastiCache's CloudWatch metric names and units: 3 hours at 1 s
//! and 24 hours at 1 min, in memory. Counters are stored as per-second deltas (so a period's
//! `Sum` is what CloudWatch reports), gauges as values (a period's `Average`).
//!
//! Exposed as Prometheus text (`GET /metrics`, the nodes' latest values and their own counters)
//! and as CloudWatch GetMetricStatistics-shaped JSON (`GET /metrics/json`), per node or
//! aggregated per cache cluster / replication group.

use crate::App;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 3 hours of 1-second samples.
pub const SECOND_SAMPLES: usize = 3 * 3600;
/// 24 hours of 1-minute aggregates.
pub const MINUTE_SAMPLES: usize = 24 * 60;

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    /// Stored as the delta per sample; Prometheus shows the node's own counter.
    Counter,
    Gauge,
}

/// How node values are combined into a cluster / replication group value.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Agg {
    Sum,
    Avg,
    Max,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Engine {
    Redis,
    Memcached,
    Both,
}

pub struct Def {
    pub name: &'static str,
    pub unit: &'static str,
    pub kind: Kind,
    pub agg: Agg,
    pub engine: Engine,
    pub help: &'static str,
}

macro_rules! def {
    ($n:literal, $u:literal, $k:ident, $a:ident, $e:ident, $h:literal) => {
        Def { name: $n, unit: $u, kind: Kind::$k, agg: Agg::$a, engine: Engine::$e, help: $h }
    };
}

/// Every metric, in ElastiCache's names and units. The index is the column in a sample.
pub static METRICS: &[Def] = &[
    def!("CPUUtilization", "Percent", Gauge, Avg, Both, "CPU utilization of the host (/proc/stat)"),
    def!("FreeableMemory", "Bytes", Gauge, Avg, Both, "memory available on the host (MemAvailable)"),
    def!("SwapUsage", "Bytes", Gauge, Avg, Both, "swap used on the host"),
    def!(
        "NetworkPacketsIn",
        "Count",
        Counter,
        Avg,
        Both,
        "packets received by the host, all interfaces (/proc/net/dev)"
    ),
    def!("NetworkPacketsOut", "Count", Counter, Avg, Both, "packets sent by the host, all interfaces (/proc/net/dev)"),
    def!("NetworkBytesIn", "Bytes", Counter, Sum, Both, "bytes the node read from its clients"),
    def!("NetworkBytesOut", "Bytes", Counter, Sum, Both, "bytes the node wrote to its clients"),
    def!("CurrConnections", "Count", Gauge, Sum, Both, "client connections (the sampler's own not counted)"),
    def!("NewConnections", "Count", Counter, Sum, Both, "connections accepted"),
    def!("CurrItems", "Count", Gauge, Sum, Both, "items (keys) in the cache"),
    def!("Evictions", "Count", Counter, Sum, Both, "keys evicted because of the memory limit"),
    def!("Reclaimed", "Count", Counter, Sum, Both, "expired keys removed"),
    // Redis
    def!("EngineCPUUtilization", "Percent", Gauge, Avg, Redis, "CPU time of the node process (one core = 100)"),
    def!("BytesUsedForCache", "Bytes", Gauge, Sum, Redis, "used_memory"),
    def!(
        "DatabaseMemoryUsagePercentage",
        "Percent",
        Gauge,
        Avg,
        Redis,
        "used_memory / maxmemory (total memory when unlimited)"
    ),
    def!("CacheHits", "Count", Counter, Sum, Redis, "successful key lookups (keyspace_hits)"),
    def!("CacheMisses", "Count", Counter, Sum, Redis, "unsuccessful key lookups (keyspace_misses)"),
    def!("CacheHitRate", "Percent", Gauge, Avg, Redis, "hits / (hits + misses) over the sample"),
    def!("IsMaster", "Count", Gauge, Sum, Redis, "1 on a primary, 0 on a replica"),
    def!("MasterLinkHealthStatus", "Count", Gauge, Avg, Redis, "replicas: 1 while the link to the primary is up"),
    def!(
        "ReplicationLag",
        "Seconds",
        Gauge,
        Max,
        Redis,
        "replicas: seconds since the last interaction with the primary"
    ),
    def!(
        "ReplicationBytes",
        "Bytes",
        Counter,
        Sum,
        Redis,
        "primaries: bytes of replication stream sent to all replicas"
    ),
    def!("GetTypeCmds", "Count", Counter, Sum, Redis, "read-only commands (@read)"),
    def!("SetTypeCmds", "Count", Counter, Sum, Redis, "write commands (@write)"),
    def!("KeyBasedCmds", "Count", Counter, Sum, Redis, "generic key commands (@keyspace)"),
    def!("StringBasedCmds", "Count", Counter, Sum, Redis, "string commands (@string)"),
    def!("HashBasedCmds", "Count", Counter, Sum, Redis, "hash commands (@hash)"),
    def!("ListBasedCmds", "Count", Counter, Sum, Redis, "list commands (@list)"),
    def!("SetBasedCmds", "Count", Counter, Sum, Redis, "set commands (@set)"),
    def!("SortedSetBasedCmds", "Count", Counter, Sum, Redis, "sorted set commands (@sortedset)"),
    def!("HyperLogLogBasedCmds", "Count", Counter, Sum, Redis, "HyperLogLog commands (@hyperloglog)"),
    def!("GeoSpatialBasedCmds", "Count", Counter, Sum, Redis, "geospatial commands (@geo)"),
    def!("PubSubBasedCmds", "Count", Counter, Sum, Redis, "pub/sub commands (@pubsub)"),
    def!("StreamBasedCmds", "Count", Counter, Sum, Redis, "stream commands (@stream)"),
    def!("EvalBasedCmds", "Count", Counter, Sum, Redis, "scripting commands (@scripting)"),
    def!("GetTypeCmdsLatency", "Microseconds", Gauge, Avg, Redis, "mean server time of read-only commands"),
    def!("SetTypeCmdsLatency", "Microseconds", Gauge, Avg, Redis, "mean server time of write commands"),
    // Memcached
    def!("BytesUsedForCacheItems", "Bytes", Gauge, Sum, Memcached, "bytes used by items (stats bytes)"),
    def!("CmdGet", "Count", Counter, Sum, Memcached, "get requests (cmd_get)"),
    def!("CmdSet", "Count", Counter, Sum, Memcached, "set requests (cmd_set)"),
    def!("CmdFlush", "Count", Counter, Sum, Memcached, "flush_all requests (cmd_flush)"),
    def!("CmdTouch", "Count", Counter, Sum, Memcached, "touch requests (cmd_touch)"),
    def!("GetHits", "Count", Counter, Sum, Memcached, "get hits"),
    def!("GetMisses", "Count", Counter, Sum, Memcached, "get misses"),
    def!("CasHits", "Count", Counter, Sum, Memcached, "cas hits"),
    def!("CasMisses", "Count", Counter, Sum, Memcached, "cas misses"),
    def!("CasBadval", "Count", Counter, Sum, Memcached, "cas with a stale cas value"),
    def!("DeleteHits", "Count", Counter, Sum, Memcached, "delete hits"),
    def!("DeleteMisses", "Count", Counter, Sum, Memcached, "delete misses"),
    def!("IncrHits", "Count", Counter, Sum, Memcached, "incr hits"),
    def!("IncrMisses", "Count", Counter, Sum, Memcached, "incr misses"),
    def!("DecrHits", "Count", Counter, Sum, Memcached, "decr hits"),
    def!("DecrMisses", "Count", Counter, Sum, Memcached, "decr misses"),
    def!("TouchHits", "Count", Counter, Sum, Memcached, "touch hits"),
    def!("TouchMisses", "Count", Counter, Sum, Memcached, "touch misses"),
    def!("BytesReadIntoMemcached", "Bytes", Counter, Sum, Memcached, "bytes read from clients"),
    def!("BytesWrittenOutFromMemcached", "Bytes", Counter, Sum, Memcached, "bytes written to clients"),
];

/// (metric, ACL category) for the *Cmds metrics derived from INFO commandstats.
const CMD_CATEGORIES: &[(&str, &str)] = &[
    ("GetTypeCmds", "read"),
    ("SetTypeCmds", "write"),
    ("KeyBasedCmds", "keyspace"),
    ("StringBasedCmds", "string"),
    ("HashBasedCmds", "hash"),
    ("ListBasedCmds", "list"),
    ("SetBasedCmds", "set"),
    ("SortedSetBasedCmds", "sortedset"),
    ("HyperLogLogBasedCmds", "hyperloglog"),
    ("GeoSpatialBasedCmds", "geo"),
    ("PubSubBasedCmds", "pubsub"),
    ("StreamBasedCmds", "stream"),
    ("EvalBasedCmds", "scripting"),
];

/// (metric, memcached `stats` field) for memcached counters and gauges read as they are.
const MC_FIELDS: &[(&str, &str)] = &[
    ("BytesUsedForCacheItems", "bytes"),
    ("CmdGet", "cmd_get"),
    ("CmdSet", "cmd_set"),
    ("CmdFlush", "cmd_flush"),
    ("CmdTouch", "cmd_touch"),
    ("GetHits", "get_hits"),
    ("GetMisses", "get_misses"),
    ("CasHits", "cas_hits"),
    ("CasMisses", "cas_misses"),
    ("CasBadval", "cas_badval"),
    ("DeleteHits", "delete_hits"),
    ("DeleteMisses", "delete_misses"),
    ("IncrHits", "incr_hits"),
    ("IncrMisses", "incr_misses"),
    ("DecrHits", "decr_hits"),
    ("DecrMisses", "decr_misses"),
    ("TouchHits", "touch_hits"),
    ("TouchMisses", "touch_misses"),
    ("BytesReadIntoMemcached", "bytes_read"),
    ("BytesWrittenOutFromMemcached", "bytes_written"),
    ("NetworkBytesIn", "bytes_read"),
    ("NetworkBytesOut", "bytes_written"),
    ("CurrItems", "curr_items"),
    ("Evictions", "evictions"),
    ("Reclaimed", "reclaimed"),
    ("NewConnections", "total_connections"),
];

pub fn index(name: &str) -> Option<usize> {
    METRICS.iter().position(|d| d.name == name)
}

fn ix(name: &str) -> usize {
    index(name).expect("metric defined")
}

/// The Prometheus name of a metric: `elasticache_` + snake_case of the CloudWatch name, a unit
/// suffix where the name does not say it (`_bytes`, `_percent`, `_seconds`, `_microseconds`),
/// and `_total` for counters.
pub fn prom_name(d: &Def) -> String {
    let mut s = String::from("elasticache_");
    let chars: Vec<char> = d.name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
            let acronym_end =
                i > 0 && chars[i - 1].is_ascii_uppercase() && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev_lower || acronym_end {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    let suffix = match d.unit {
        "Bytes" if !s.contains("bytes") => "_bytes",
        "Percent" if !s.contains("percent") => "_percent",
        "Seconds" => "_seconds",
        "Microseconds" => "_microseconds",
        _ => "",
    };
    s.push_str(suffix);
    if d.kind == Kind::Counter {
        s.push_str("_total");
    }
    s
}

/// One sample: a value per metric (NaN where it does not apply or could not be read).
#[derive(Clone)]
struct Sample {
    t_ms: i64,
    v: Vec<f64>,
}

/// Statistics of the 1-second samples of one minute, per metric.
#[derive(Clone)]
struct Minute {
    t_ms: i64,
    stats: Vec<Stats>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    fn add(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        if self.count == 0.0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1.0;
        self.sum += v;
    }
    fn merge(&mut self, o: &Stats) {
        if o.count == 0.0 {
            return;
        }
        if self.count == 0.0 {
            *self = *o;
            return;
        }
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.count += o.count;
        self.sum += o.sum;
    }
    pub fn average(&self) -> f64 {
        if self.count == 0.0 {
            f64::NAN
        } else {
            self.sum / self.count
        }
    }
    /// The value a sample (or minute) stands for: the sum of a counter, the mean of a gauge.
    fn natural(&self, kind: Kind) -> f64 {
        match kind {
            Kind::Counter => self.sum,
            Kind::Gauge => self.average(),
        }
    }
}

/// A connection kept open to one node (re-opened after any error).
struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(port: u16) -> Result<Conn, String> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_millis(800))).ok();
        s.set_write_timeout(Some(Duration::from_millis(800))).ok();
        let _ = s.set_nodelay(true);
        Ok(Conn { r: BufReader::new(s) })
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.r.get_mut().write_all(bytes).map_err(|e| e.to_string())
    }

    fn line(&mut self) -> Result<String, String> {
        let mut l = String::new();
        if self.r.read_line(&mut l).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed".into());
        }
        Ok(l.trim_end_matches(['\r', '\n']).to_string())
    }

    /// One RESP request; the reply flattened to strings (bulk/simple/integer, arrays' items).
    fn resp(&mut self, args: &[&str]) -> Result<Vec<String>, String> {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            let _ = write!(req, "${}\r\n{}\r\n", a.len(), a);
        }
        self.send(req.as_bytes())?;
        let mut out = Vec::new();
        let mut pending = 1i64;
        while pending > 0 {
            pending -= 1;
            let l = self.line()?;
            let (t, rest) = l.split_at(l.len().min(1));
            match t {
                "$" => {
                    let n: i64 = rest.parse().map_err(|_| "bad reply")?;
                    if n >= 0 {
                        let mut buf = vec![0u8; n as usize + 2];
                        self.r.read_exact(&mut buf).map_err(|e| e.to_string())?;
                        buf.truncate(n as usize);
                        out.push(String::from_utf8_lossy(&buf).into_owned());
                    }
                }
                "*" => pending += rest.parse::<i64>().map_err(|_| "bad reply")?.max(0),
                "-" => return Err(rest.to_string()),
                _ => out.push(rest.to_string()),
            }
        }
        Ok(out)
    }

    /// memcached `stats`: STAT lines until END.
    fn mc_stats(&mut self) -> Result<HashMap<String, f64>, String> {
        self.send(b"stats\r\n")?;
        let mut m = HashMap::new();
        loop {
            let l = self.line()?;
            if l == "END" {
                return Ok(m);
            }
            let mut it = l.split(' ');
            match (it.next(), it.next(), it.next()) {
                (Some("STAT"), Some(k), Some(v)) => {
                    if let Ok(v) = v.parse() {
                        m.insert(k.to_string(), v);
                    }
                }
                _ => return Err(format!("unexpected stats line: {}", l)),
            }
        }
    }
}

/// Parse `INFO` text into numeric fields; `dbN:keys=..` adds up into `keys`, and
/// `cmdstat_NAME:calls=..,usec=..` becomes `cmdstat_NAME.calls` / `.usec`; `role` is 1 on a master.
pub fn parse_info(info: &str) -> HashMap<String, f64> {
    let mut m = HashMap::new();
    let mut keys = 0.0;
    for l in info.lines() {
        let Some((k, v)) = l.trim_end().split_once(':') else { continue };
        if let Some(name) = k.strip_prefix("cmdstat_") {
            for kv in v.split(',') {
                if let Some((f, n)) = kv.split_once('=') {
                    if f == "calls" || f == "usec" {
                        m.insert(format!("cmdstat_{}.{}", name, f), n.parse().unwrap_or(0.0));
                    }
                }
            }
        } else if k.starts_with("db") && k[2..].chars().all(|c| c.is_ascii_digit()) {
            for kv in v.split(',') {
                if let Some(("keys", n)) = kv.split_once('=') {
                    keys += n.parse::<f64>().unwrap_or(0.0);
                }
            }
        } else if k == "role" {
            m.insert("role".into(), if v == "master" { 1.0 } else { 0.0 });
        } else if k == "master_link_status" {
            m.insert(k.into(), if v == "up" { 1.0 } else { 0.0 });
        } else if let Ok(n) = v.parse::<f64>() {
            m.insert(k.to_string(), n);
        }
    }
    m.insert("keys".into(), keys);
    m
}

/// Host figures from /proc.
#[derive(Default)]
struct Host {
    /// (busy, total) jiffies of the previous read.
    cpu_prev: Option<(f64, f64)>,
    cpu: f64,
    freeable: f64,
    swap: f64,
    /// Packets received / sent over all interfaces since boot.
    packets: (f64, f64),
}

impl Host {
    fn read(&mut self) {
        self.cpu = f64::NAN;
        if let Ok(s) = std::fs::read_to_string("/proc/stat") {
            if let Some(l) = s.lines().next() {
                let v: Vec<f64> = l.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
                if v.len() >= 4 {
                    let total: f64 = v.iter().take(8).sum();
                    let idle = v[3] + v.get(4).copied().unwrap_or(0.0);
                    let busy = total - idle;
                    if let Some((pb, pt)) = self.cpu_prev {
                        if total > pt {
                            self.cpu = (busy - pb) / (total - pt) * 100.0;
                        }
                    }
                    self.cpu_prev = Some((busy, total));
                }
            }
        }
        let (mut avail, mut st, mut sf) = (f64::NAN, f64::NAN, f64::NAN);
        if let Ok(s) = std::fs::read_to_string("/proc/meminfo") {
            for l in s.lines() {
                let mut it = l.split_whitespace();
                let (Some(k), Some(v)) = (it.next(), it.next().and_then(|v| v.parse::<f64>().ok())) else { continue };
                match k {
                    "MemAvailable:" => avail = v * 1024.0,
                    "SwapTotal:" => st = v * 1024.0,
                    "SwapFree:" => sf = v * 1024.0,
                    _ => {}
                }
            }
        }
        self.freeable = avail;
        self.swap = st - sf;
        self.packets = (f64::NAN, f64::NAN);
        if let Ok(s) = std::fs::read_to_string("/proc/net/dev") {
            // `iface: rx_bytes rx_packets ... (8 rx fields) tx_bytes tx_packets ...`
            let (mut rx, mut tx) = (0.0, 0.0);
            for l in s.lines().skip(2) {
                let Some((_, rest)) = l.split_once(':') else { continue };
                let v: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                if v.len() >= 10 {
                    rx += v[1];
                    tx += v[9];
                }
            }
            self.packets = (rx, tx);
        }
    }
}

/// The sampler's connections to one node (only the sampler thread touches them, so a slow
/// node never holds the series' lock).
#[derive(Default)]
struct Reader {
    resp: Option<Conn>,
    mc: Option<Conn>,
    /// command name → ACL categories, read once per connection with `ACL CAT <category>`.
    cats: Option<HashMap<String, Vec<&'static str>>>,
}

impl Reader {
    /// Read the node; the raw values under metric names (counters as the node's counters).
    fn read(&mut self, engine: &str, port: u16, mc_port: u16) -> Result<(HashMap<&'static str, f64>, String), String> {
        let mut raw: HashMap<&'static str, f64> = HashMap::new();
        if self.resp.is_none() {
            self.resp = Some(Conn::open(port)?);
            self.cats = None;
        }
        let conn = self.resp.as_mut().unwrap();
        let info = conn.resp(&["INFO", "all"])?.concat();
        let i = parse_info(&info);
        let g = |k: &str| i.get(k).copied().unwrap_or(f64::NAN);
        raw.insert("_cpu", g("used_cpu_sys") + g("used_cpu_user"));
        // A restarted node's counters start again from zero.
        raw.insert("_pid", g("process_id"));
        if engine == "memcached" {
            if self.mc.is_none() {
                self.mc = Some(Conn::open(mc_port)?);
            }
            let st = self.mc.as_mut().unwrap().mc_stats()?;
            for (metric, field) in MC_FIELDS {
                raw.insert(metric, st.get(*field).copied().unwrap_or(f64::NAN));
            }
            // Our own stats connection is not a client's.
            raw.insert("CurrConnections", st.get("curr_connections").map(|c| c - 1.0).unwrap_or(f64::NAN));
            return Ok((raw, String::new()));
        }
        if self.cats.is_none() {
            let mut cats: HashMap<String, Vec<&'static str>> = HashMap::new();
            for (_, cat) in CMD_CATEGORIES {
                for name in conn.resp(&["ACL", "CAT", cat])? {
                    cats.entry(name.to_ascii_lowercase()).or_default().push(cat);
                }
            }
            self.cats = Some(cats);
        }
        let cats = self.cats.as_ref().unwrap();
        let mut by_cat: HashMap<&str, (f64, f64)> = HashMap::new();
        for (k, calls) in &i {
            let Some(name) = k.strip_prefix("cmdstat_").and_then(|n| n.strip_suffix(".calls")) else { continue };
            let usec = i.get(&format!("cmdstat_{}.usec", name)).copied().unwrap_or(0.0);
            let c = cats.get(name).or_else(|| name.split_once('|').and_then(|(p, _)| cats.get(p)));
            for cat in c.into_iter().flatten() {
                let e = by_cat.entry(cat).or_default();
                e.0 += calls;
                e.1 += usec;
            }
        }
        for (metric, cat) in CMD_CATEGORIES {
            raw.insert(metric, by_cat.get(cat).map(|x| x.0).unwrap_or(0.0));
        }
        raw.insert("_read_usec", by_cat.get("read").map(|x| x.1).unwrap_or(0.0));
        raw.insert("_write_usec", by_cat.get("write").map(|x| x.1).unwrap_or(0.0));
        for (metric, field) in [
            ("NetworkBytesIn", "total_net_input_bytes"),
            ("NetworkBytesOut", "total_net_output_bytes"),
            ("NewConnections", "total_connections_received"),
            ("CurrItems", "keys"),
            ("Evictions", "evicted_keys"),
            ("Reclaimed", "expired_keys"),
            ("BytesUsedForCache", "used_memory"),
            ("CacheHits", "keyspace_hits"),
            ("CacheMisses", "keyspace_misses"),
            ("IsMaster", "role"),
        ] {
            raw.insert(metric, g(field));
        }
        // The sampler's own connection is not a client's.
        raw.insert("CurrConnections", g("connected_clients") - 1.0);
        let max = g("maxmemory");
        let total = if max > 0.0 { max } else { g("total_system_memory") };
        raw.insert("DatabaseMemoryUsagePercentage", g("used_memory") / total * 100.0);
        let master = g("role") == 1.0;
        let role = if master { "primary" } else { "replica" }.to_string();
        if master {
            raw.insert("ReplicationBytes", g("master_repl_offset") * g("connected_slaves").max(0.0));
            raw.insert("MasterLinkHealthStatus", f64::NAN);
            raw.insert("ReplicationLag", f64::NAN);
        } else {
            raw.insert("ReplicationBytes", f64::NAN);
            raw.insert("MasterLinkHealthStatus", g("master_link_status"));
            raw.insert("ReplicationLag", g("master_last_io_seconds_ago").max(0.0));
        }
        Ok((raw, role))
    }
}

/// Everything kept for one node.
struct Series {
    cluster: String,
    node: String,
    engine: String,
    group: String,
    /// The node group (shard) inside a replication group (`0001` when cluster mode is disabled).
    shard: String,
    role: String,
    /// The previous read: raw counter values and when.
    prev: Option<(Instant, HashMap<&'static str, f64>)>,
    /// The node's own counters (and gauges) at the last read, for Prometheus.
    latest_raw: HashMap<&'static str, f64>,
    latest: Option<Sample>,
    secs: VecDeque<Sample>,
    mins: VecDeque<Minute>,
    cur_min: Option<Minute>,
}

impl Series {
    fn new(cluster: &str, node: &str, engine: &str) -> Series {
        Series {
            cluster: cluster.into(),
            node: node.into(),
            engine: engine.into(),
            group: String::new(),
            shard: String::new(),
            role: String::new(),
            prev: None,
            latest_raw: HashMap::new(),
            latest: None,
            secs: VecDeque::new(),
            mins: VecDeque::new(),
            cur_min: None,
        }
    }

    fn push(&mut self, s: Sample) {
        let minute = s.t_ms - s.t_ms.rem_euclid(60_000);
        if self.cur_min.as_ref().is_some_and(|m| m.t_ms != minute) {
            let done = self.cur_min.take().unwrap();
            self.mins.push_back(done);
            while self.mins.len() > MINUTE_SAMPLES {
                self.mins.pop_front();
            }
        }
        let cur =
            self.cur_min.get_or_insert_with(|| Minute { t_ms: minute, stats: vec![Stats::default(); METRICS.len()] });
        for (st, v) in cur.stats.iter_mut().zip(&s.v) {
            st.add(*v);
        }
        self.latest = Some(s.clone());
        self.secs.push_back(s);
        while self.secs.len() > SECOND_SAMPLES {
            self.secs.pop_front();
        }
    }

    /// Turn a read into a sample: counters become deltas since the previous read (a node
    /// restart, where a counter goes down, counts from zero); the first read is a baseline.
    fn sample(&mut self, t_ms: i64, now: Instant, raw: HashMap<&'static str, f64>, host: &Host) {
        let mut v = vec![f64::NAN; METRICS.len()];
        let mc = self.engine == "memcached";
        let prev = self.prev.take();
        let restarted = prev.as_ref().is_some_and(|(_, p)| p.get("_pid") != raw.get("_pid"));
        let delta = |k: &str| -> f64 {
            let cur = raw.get(k).copied().unwrap_or(f64::NAN);
            match prev.as_ref().and_then(|(_, p)| p.get(k)) {
                Some(p) if cur >= *p && !restarted => cur - p,
                Some(p) if !p.is_nan() => cur,
                _ => f64::NAN,
            }
        };
        for (i, d) in METRICS.iter().enumerate() {
            if d.engine == Engine::Redis && mc || d.engine == Engine::Memcached && !mc {
                continue;
            }
            v[i] = match d.kind {
                Kind::Counter => delta(d.name),
                Kind::Gauge => raw.get(d.name).copied().unwrap_or(f64::NAN),
            };
        }
        v[ix("CPUUtilization")] = host.cpu;
        v[ix("FreeableMemory")] = host.freeable;
        v[ix("SwapUsage")] = host.swap;
        if let Some((then, _)) = &prev {
            let dt = now.duration_since(*then).as_secs_f64();
            if !mc && dt > 0.0 {
                v[ix("EngineCPUUtilization")] = delta("_cpu") / dt * 100.0;
            }
        }
        if !mc {
            let (h, m) = (v[ix("CacheHits")], v[ix("CacheMisses")]);
            if h + m > 0.0 {
                v[ix("CacheHitRate")] = h / (h + m) * 100.0;
            }
            for (lat, calls, usec) in [
                ("GetTypeCmdsLatency", "GetTypeCmds", "_read_usec"),
                ("SetTypeCmdsLatency", "SetTypeCmds", "_write_usec"),
            ] {
                let c = v[ix(calls)];
                if c > 0.0 {
                    v[ix(lat)] = delta(usec) / c;
                }
            }
        }
        self.latest_raw = raw.clone();
        self.prev = Some((now, raw));
        if prev.is_some() {
            self.push(Sample { t_ms, v });
        }
    }
}

/// The sampler's state: every node's series, keyed by (cluster, node).
#[derive(Default)]
pub struct Metrics {
    nodes: Mutex<BTreeMap<(String, String), Series>>,
    readers: Mutex<HashMap<(String, String), Reader>>,
    host: Mutex<Host>,
}

impl Metrics {
    /// One sampling round over every node of every cluster.
    pub fn sample_all(&self, app: &App) {
        let (clusters, groups) = {
            let st = app.store.lock().unwrap();
            let clusters: Vec<_> = st
                .clusters()
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    let nodes = st.nodes(&c.id).unwrap_or_default();
                    (c, nodes)
                })
                .collect();
            (clusters, st.groups().unwrap_or_default())
        };
        let group_of: HashMap<&str, &str> =
            groups.iter().flat_map(|g| g.members.iter().map(move |(c, _)| (c.as_str(), g.id.as_str()))).collect();
        // Members of cluster-mode groups: their node group; the others' group has one, 0001.
        let shard_of: HashMap<&str, &str> = groups
            .iter()
            .filter_map(|g| g.layout.as_ref())
            .flat_map(|l| l.shards.iter().flat_map(|s| s.members.iter().map(move |m| (m.as_str(), s.id.as_str()))))
            .collect();
        let t_ms = crate::now_ms();
        let t_ms = t_ms - t_ms.rem_euclid(1000);
        let mut host = self.host.lock().unwrap();
        host.read();
        let mut seen = HashSet::new();
        let mut round = Vec::new();
        for (c, nodes) in &clusters {
            for n in nodes {
                if n.status == "creating" || n.status == "deleting" || n.port == 0 {
                    continue;
                }
                let key = (c.id.clone(), n.node_id.clone());
                seen.insert(key.clone());
                // Read without holding the series' lock (a read may take up to a timeout).
                let read = {
                    let mut readers = self.readers.lock().unwrap();
                    let r = readers.entry(key.clone()).or_default();
                    let read = r.read(&c.engine, n.port, n.mc_port);
                    if read.is_err() {
                        // Reconnect next time; the gap shows as missing samples, and the next
                        // sample's counters cover it (from zero if the node restarted meanwhile).
                        *r = Reader::default();
                    }
                    read
                };
                let Ok((mut raw, role)) = read else { continue };
                raw.insert("NetworkPacketsIn", host.packets.0);
                raw.insert("NetworkPacketsOut", host.packets.1);
                let group = group_of.get(c.id.as_str()).map(|g| g.to_string()).unwrap_or_default();
                let shard = match shard_of.get(c.id.as_str()) {
                    Some(s) => s.to_string(),
                    None if !group.is_empty() => "0001".into(),
                    None => String::new(),
                };
                round.push((key, c.engine.clone(), group, shard, role, raw, Instant::now()));
            }
        }
        // A round's samples appear together: a query never sees half a round.
        let mut nodes = self.nodes.lock().unwrap();
        for ((cluster, node), engine, group, shard, role, raw, at) in round {
            let s =
                nodes.entry((cluster.clone(), node.clone())).or_insert_with(|| Series::new(&cluster, &node, &engine));
            s.shard = shard;
            s.group = group;
            s.role = role;
            s.sample(t_ms, at, raw, &host);
        }
        drop(nodes);
        self.nodes.lock().unwrap().retain(|k, _| seen.contains(k));
        self.readers.lock().unwrap().retain(|k, _| seen.contains(k));
    }

    /// Prometheus text exposition: per node, the latest gauge values and the node's own counters.
    pub fn prometheus(&self) -> String {
        let nodes = self.nodes.lock().unwrap();
        let mut out = String::new();
        for (i, d) in METRICS.iter().enumerate() {
            let name = prom_name(d);
            let mut lines = String::new();
            for s in nodes.values() {
                let Some(latest) = &s.latest else { continue };
                let v = match d.kind {
                    Kind::Gauge => latest.v[i],
                    Kind::Counter if latest.v[i].is_nan() => f64::NAN,
                    Kind::Counter => s.latest_raw.get(d.name).copied().unwrap_or(f64::NAN),
                };
                if v.is_nan() || v.is_infinite() {
                    continue;
                }
                let _ = writeln!(
                    lines,
                    "{}{{cluster=\"{}\",node=\"{}\",engine=\"{}\",replication_group=\"{}\",shard=\"{}\",role=\"{}\"}} {}",
                    name,
                    esc(&s.cluster),
                    esc(&s.node),
                    esc(&s.engine),
                    esc(&s.group),
                    esc(&s.shard),
                    esc(&s.role),
                    v
                );
            }
            if lines.is_empty() {
                continue;
            }
            let _ = writeln!(out, "# HELP {} CloudWatch {} ({}): {}", name, d.name, d.unit, d.help);
            let _ = writeln!(out, "# TYPE {} {}", name, if d.kind == Kind::Counter { "counter" } else { "gauge" });
            out.push_str(&lines);
        }
        out
    }

    /// CloudWatch statistics per period over [start, end) for the nodes selected: one node,
    /// or the combination (by the metric's [`Agg`]) of several at each sample time.
    pub fn statistics(&self, q: &Query) -> Result<Vec<(i64, Stats)>, String> {
        let i = index(&q.metric).ok_or_else(|| format!("unknown metric {}", q.metric))?;
        let d = &METRICS[i];
        let nodes = self.nodes.lock().unwrap();
        let selected: Vec<&Series> = nodes
            .values()
            .filter(|s| {
                q.cluster.as_ref().is_none_or(|c| &s.cluster == c)
                    && q.node.as_ref().is_none_or(|n| &s.node == n)
                    && q.group.as_ref().is_none_or(|g| &s.group == g)
            })
            .collect();
        if selected.is_empty() {
            // As CloudWatch: dimensions nothing reports under have no datapoints.
            return Ok(Vec::new());
        }
        let fine = q.start_ms >= crate::now_ms() - (SECOND_SAMPLES as i64) * 1000 || q.period_s < 60;
        // Per node: (time, Stats of the point) within the range.
        let mut per_time: BTreeMap<i64, Vec<Stats>> = BTreeMap::new();
        for s in &selected {
            if fine {
                for smp in s.secs.iter().filter(|x| x.t_ms >= q.start_ms && x.t_ms < q.end_ms) {
                    let mut st = Stats::default();
                    st.add(smp.v[i]);
                    per_time.entry(smp.t_ms).or_default().push(st);
                }
            } else {
                for m in s.mins.iter().chain(s.cur_min.iter()).filter(|x| x.t_ms >= q.start_ms && x.t_ms < q.end_ms) {
                    per_time.entry(m.t_ms).or_default().push(m.stats[i]);
                }
            }
        }
        let period_ms = q.period_s * 1000;
        let mut out: BTreeMap<i64, Stats> = BTreeMap::new();
        for (t, points) in per_time {
            // Periods are aligned on multiples of the period since the epoch.
            let bucket = t - t.rem_euclid(period_ms);
            let st = out.entry(bucket).or_default();
            if points.len() == 1 {
                st.merge(&points[0]);
                continue;
            }
            // Several nodes at one time: one combined point.
            let vals: Vec<f64> = points.iter().filter(|p| p.count > 0.0).map(|p| p.natural(d.kind)).collect();
            if vals.is_empty() {
                continue;
            }
            let v = match d.agg {
                Agg::Sum => vals.iter().sum(),
                Agg::Avg => vals.iter().sum::<f64>() / vals.len() as f64,
                Agg::Max => vals.iter().copied().fold(f64::MIN, f64::max),
            };
            st.add(v);
        }
        Ok(out.into_iter().filter(|(_, s)| s.count > 0.0).collect())
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A GetMetricStatistics-like question.
pub struct Query {
    pub metric: String,
    pub cluster: Option<String>,
    pub node: Option<String>,
    pub group: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub period_s: i64,
}

/// Start the sampler thread: a round every second.
pub fn start(app: &std::sync::Arc<App>) {
    let app = app.clone();
    std::thread::spawn(move || {
        let mut next = Instant::now();
        loop {
            app.metrics.sample_all(&app);
            next += Duration::from_secs(1);
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
    });
}

/// JSON for `GET /metrics/json`: CloudWatch's GetMetricStatistics output shape.
pub fn json_response(app: &App, params: &HashMap<String, String>) -> Result<String, String> {
    let p = |k: &str| params.get(k).filter(|v| !v.is_empty()).cloned();
    // As everywhere in the API: no parameter is accepted and ignored.
    let mut unknown: Vec<&str> = params
        .keys()
        .map(|k| k.as_str())
        .filter(|k| {
            ![
                "MetricName",
                "CacheClusterId",
                "CacheNodeId",
                "ReplicationGroupId",
                "Period",
                "StartTime",
                "EndTime",
                "Namespace",
            ]
            .contains(k)
                && k.strip_prefix("Statistics.member.").is_none_or(|n| n.parse::<u32>().is_err())
        })
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(format!("The parameters {} are not supported by this endpoint", unknown.join(", ")));
    }
    if p("Namespace").is_some_and(|n| n != "AWS/ElastiCache") {
        return Err("Namespace must be AWS/ElastiCache".into());
    }
    let metric = p("MetricName").ok_or("MetricName is required")?;
    let d = &METRICS[index(&metric).ok_or_else(|| format!("unknown MetricName {}", metric))?];
    let now = crate::now_ms();
    let end_ms = match p("EndTime") {
        Some(t) => crate::xml::parse_time(&t).ok_or_else(|| format!("invalid EndTime {}", t))?,
        None => now,
    };
    let start_ms = match p("StartTime") {
        Some(t) => crate::xml::parse_time(&t).ok_or_else(|| format!("invalid StartTime {}", t))?,
        None => end_ms - 3600 * 1000,
    };
    let period_s: i64 = match p("Period") {
        Some(v) => v.parse().map_err(|_| format!("invalid Period {}", v))?,
        None => 60,
    };
    if period_s < 1 {
        return Err("Period must be at least 1".into());
    }
    if start_ms < now - (SECOND_SAMPLES as i64) * 1000 && period_s % 60 != 0 {
        return Err("Period must be a multiple of 60 for data older than 3 hours".into());
    }
    if end_ms <= start_ms {
        return Err("EndTime must be after StartTime".into());
    }
    let q = Query {
        metric: metric.clone(),
        cluster: p("CacheClusterId"),
        node: p("CacheNodeId"),
        group: p("ReplicationGroupId"),
        start_ms,
        end_ms,
        period_s,
    };
    if q.cluster.is_none() && q.group.is_none() {
        return Err("CacheClusterId or ReplicationGroupId is required".into());
    }
    let wanted: Vec<String> = {
        let mut l: Vec<(u32, String)> = params
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix("Statistics.")?;
                Some((rest.rsplit('.').next()?.parse().ok()?, v.clone()))
            })
            .collect();
        l.sort();
        let l: Vec<String> = l.into_iter().map(|x| x.1).collect();
        if l.is_empty() {
            ["SampleCount", "Average", "Sum", "Minimum", "Maximum"].iter().map(|s| s.to_string()).collect()
        } else {
            l
        }
    };
    let points = app.metrics.statistics(&q)?;
    let mut out = format!("{{\"Label\":\"{}\",\"Datapoints\":[", d.name);
    for (n, (t, s)) in points.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"Timestamp\":\"{}\"", crate::xml::iso8601(*t));
        for w in &wanted {
            let v = match w.as_str() {
                "SampleCount" => s.count,
                "Average" => s.average(),
                "Sum" => s.sum,
                "Minimum" => s.min,
                "Maximum" => s.max,
                other => return Err(format!("invalid statistic {}", other)),
            };
            let _ = write!(out, ",\"{}\":{}", w, v);
        }
        let _ = write!(out, ",\"Unit\":\"{}\"}}", d.unit);
    }
    out.push_str("]}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_names() {
        let n = |m: &str| prom_name(&METRICS[index(m).unwrap()]);
        assert_eq!(n("CacheHits"), "elasticache_cache_hits_total");
        assert_eq!(n("CPUUtilization"), "elasticache_cpu_utilization_percent");
        assert_eq!(n("EngineCPUUtilization"), "elasticache_engine_cpu_utilization_percent");
        assert_eq!(n("BytesUsedForCache"), "elasticache_bytes_used_for_cache");
        assert_eq!(n("FreeableMemory"), "elasticache_freeable_memory_bytes");
        assert_eq!(n("DatabaseMemoryUsagePercentage"), "elasticache_database_memory_usage_percentage");
        assert_eq!(n("ReplicationLag"), "elasticache_replication_lag_seconds");
        assert_eq!(n("CurrConnections"), "elasticache_curr_connections");
        assert_eq!(n("GetTypeCmds"), "elasticache_get_type_cmds_total");
        assert_eq!(n("NetworkPacketsIn"), "elasticache_network_packets_in_total");
    }

    #[test]
    fn info_parsing() {
        let m = parse_info(
            "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\ndb2:keys=4,expires=1\r\nrole:master\r\nkeyspace_hits:7\r\ncmdstat_get:calls=5,usec=10,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n",
        );
        assert_eq!(m["keys"], 7.0);
        assert_eq!(m["role"], 1.0);
        assert_eq!(m["keyspace_hits"], 7.0);
        assert_eq!(m["cmdstat_get.calls"], 5.0);
        assert_eq!(m["cmdstat_get.usec"], 10.0);
    }

    fn series_with(samples: impl Iterator<Item = (i64, f64)>) -> Series {
        let mut s = Series::new("c", "0001", "redis");
        let i = ix("CacheHits");
        for (t, v) in samples {
            let mut vals = vec![f64::NAN; METRICS.len()];
            vals[i] = v;
            s.push(Sample { t_ms: t, v: vals });
        }
        s
    }

    fn query(start_ms: i64, end_ms: i64, period_s: i64) -> Query {
        Query {
            metric: "CacheHits".into(),
            cluster: Some("c".into()),
            node: None,
            group: None,
            start_ms,
            end_ms,
            period_s,
        }
    }

    #[test]
    fn ring_buffers_keep_3_hours_of_seconds_and_24_hours_of_minutes() {
        // 25 hours of one sample per second (value 1): at most 3 h of seconds, 24 h of minutes.
        let t0 = 1_000_000_000_000 - 1_000_000_000_000 % 60_000;
        let s = series_with((0..25 * 3600).map(|k| (t0 + k * 1000, 1.0)));
        assert_eq!(s.secs.len(), SECOND_SAMPLES);
        assert_eq!(s.mins.len(), MINUTE_SAMPLES);
        assert_eq!(s.secs.front().unwrap().t_ms, t0 + (25 * 3600 - SECOND_SAMPLES as i64) * 1000);
        let m = s.mins.back().unwrap();
        assert_eq!(m.stats[ix("CacheHits")], Stats { count: 60.0, sum: 60.0, min: 1.0, max: 1.0 });
        assert_eq!(s.cur_min.as_ref().unwrap().stats[ix("CacheHits")].count, 60.0);
    }

    #[test]
    fn statistics_per_period_from_seconds_and_from_minutes() {
        let now = crate::now_ms();
        let t0 = now - now.rem_euclid(60_000) - 10 * 60_000;
        // 10 minutes of samples, 1..=600.
        let s = series_with((0..600).map(|k| (t0 + k * 1000, (k + 1) as f64)));
        let metrics = Metrics::default();
        metrics.nodes.lock().unwrap().insert(("c".into(), "0001".into()), s);
        // Recent range, 1-second data, 2-minute periods.
        let p = metrics.statistics(&query(t0, t0 + 600_000, 120)).unwrap();
        // Periods are aligned on the epoch: 5 of them, or 6 when t0 is in the middle of one.
        assert_eq!(p.len(), if t0 % 120_000 == 0 { 5 } else { 6 });
        let first: f64 = (1..=120).map(|x| x as f64).sum();
        assert_eq!(p[0], (t0 - t0.rem_euclid(120_000), p[0].1));
        assert_eq!(p.iter().map(|x| x.1.count).sum::<f64>(), 600.0);
        assert_eq!(p.iter().map(|x| x.1.sum).sum::<f64>(), (1..=600).map(|x| x as f64).sum::<f64>());
        if t0 % 120_000 == 0 {
            assert_eq!(p[0].1, Stats { count: 120.0, sum: first, min: 1.0, max: 120.0 });
        }
        // A range starting more than 3 hours ago: the 1-minute aggregates.
        let p = metrics.statistics(&query(now - 4 * 3600 * 1000, now, 60)).unwrap();
        assert_eq!(p.len(), 10);
        assert_eq!(p[0].1, Stats { count: 60.0, sum: (1..=60).map(|x| x as f64).sum(), min: 1.0, max: 60.0 });
        // Another cluster: nothing.
        let mut q = query(t0, now, 60);
        q.cluster = Some("other".into());
        assert!(metrics.statistics(&q).unwrap().is_empty());
    }

    #[test]
    fn aggregates_combine_nodes_per_sample_time() {
        let now = crate::now_ms();
        let t0 = now - now.rem_euclid(60_000) - 60_000;
        let metrics = Metrics::default();
        for (node, v) in [("0001", 2.0), ("0002", 3.0)] {
            let mut s = series_with((0..60).map(|k| (t0 + k * 1000, v)));
            s.node = node.into();
            metrics.nodes.lock().unwrap().insert(("c".into(), node.into()), s);
        }
        let p = metrics.statistics(&query(t0, t0 + 60_000, 60)).unwrap();
        // CacheHits adds up over nodes: 60 combined points of 5.
        assert_eq!(p, vec![(t0, Stats { count: 60.0, sum: 300.0, min: 5.0, max: 5.0 })]);
        let mut q = query(t0, t0 + 60_000, 60);
        q.node = Some("0002".into());
        assert_eq!(metrics.statistics(&q).unwrap()[0].1.sum, 180.0);
    }

    #[test]
    fn stats_merge() {
        let mut a = Stats::default();
        a.add(1.0);
        a.add(f64::NAN);
        a.add(3.0);
        assert_eq!(a, Stats { count: 2.0, sum: 4.0, min: 1.0, max: 3.0 });
        assert_eq!(a.average(), 2.0);
    }
}
