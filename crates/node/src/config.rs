//! Node configuration with Redis's option names: the table of known options, parsing of
//! redis.conf syntax and `--name value` arguments, CONFIG GET/SET/REWRITE support, and the
//! hot values mirrored into atomics for the request path.

use ferrocache_engine::glob::glob_match;
use ferrocache_engine::{notify, EvictionPolicy};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Int(i64, i64),
    Memory,
    Bool,
    Enum(&'static [&'static str]),
    Str,
    /// Not settable at runtime (CONFIG SET answers "can't set immutable config").
    Immutable,
    /// Special forms handled by name (save, notify-keyspace-events, client-output-buffer-limit...).
    Special,
}

pub struct Spec {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub default: &'static str,
    pub kind: Kind,
}

macro_rules! spec {
    ($n:expr, $d:expr, $k:expr) => {
        Spec { name: $n, alias: None, default: $d, kind: $k }
    };
    ($n:expr, $a:expr, $d:expr, $k:expr) => {
        Spec { name: $n, alias: Some($a), default: $d, kind: $k }
    };
}

const YESNO: Kind = Kind::Bool;
/// Configs CONFIG GET matches only by exact name.
const HIDDEN: &[&str] = &["rdb-key-save-delay", "key-load-delay", "loading-process-events-interval-bytes"];
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Every option ferrocache knows. Options that belong to features still to come (persistence,
/// replication, cluster) are accepted and reported so that existing redis.conf files load.
pub static SPECS: &[Spec] = &[
    spec!("port", "6379", Kind::Immutable),
    spec!("bind", "127.0.0.1", Kind::Immutable),
    spec!("requirepass", "", Kind::Str),
    spec!("maxmemory", "0", Kind::Memory),
    spec!("maxmemory-policy", "noeviction", Kind::Enum(POLICIES)),
    spec!("maxmemory-samples", "5", Kind::Int(1, 64)),
    spec!("maxmemory-eviction-tenacity", "10", Kind::Int(0, 100)),
    // A memory value or a percentage of maxmemory ("N%"), as Redis's PERCENT_CONFIG.
    spec!("maxmemory-clients", "0", Kind::Special),
    spec!("databases", "16", Kind::Immutable),
    spec!("timeout", "0", Kind::Int(0, i32::MAX as i64)),
    spec!("tcp-keepalive", "300", Kind::Int(0, i32::MAX as i64)),
    spec!("maxclients", "10000", Kind::Int(1, i32::MAX as i64)),
    spec!("client-query-buffer-limit", "1gb", Kind::Memory),
    spec!("proto-max-bulk-len", "512mb", Kind::Memory),
    spec!("dir", "./", Kind::Special),
    spec!("logfile", "", Kind::Immutable),
    spec!("loglevel", "notice", Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"])),
    spec!("notify-keyspace-events", "", Kind::Special),
    spec!("slowlog-log-slower-than", "10000", Kind::Int(i64::MIN, i64::MAX)),
    spec!("slowlog-max-len", "128", Kind::Int(0, i64::MAX)),
    spec!("latency-monitor-threshold", "0", Kind::Int(0, i64::MAX)),
    spec!("threads", "io-threads", "0", Kind::Immutable),
    spec!("hz", "10", Kind::Int(1, 500)),
    spec!("dynamic-hz", "yes", YESNO),
    spec!("lfu-log-factor", "10", Kind::Int(0, i32::MAX as i64)),
    spec!("lfu-decay-time", "1", Kind::Int(0, i32::MAX as i64)),
    spec!("hash-max-listpack-entries", "hash-max-ziplist-entries", "512", Kind::Int(0, i64::MAX)),
    spec!("hash-max-listpack-value", "hash-max-ziplist-value", "64", Kind::Memory),
    spec!("list-max-listpack-size", "list-max-ziplist-size", "-2", Kind::Int(i32::MIN as i64, i32::MAX as i64)),
    spec!("list-compress-depth", "0", Kind::Int(0, i32::MAX as i64)),
    spec!("set-max-intset-entries", "512", Kind::Int(0, i64::MAX)),
    spec!("zset-max-listpack-entries", "zset-max-ziplist-entries", "128", Kind::Int(0, i64::MAX)),
    spec!("zset-max-listpack-value", "zset-max-ziplist-value", "64", Kind::Memory),
    spec!("hll-sparse-max-bytes", "3000", Kind::Memory),
    spec!("stream-node-max-bytes", "4096", Kind::Memory),
    spec!("stream-node-max-entries", "100", Kind::Int(0, i64::MAX)),
    spec!("lazyfree-lazy-eviction", "no", YESNO),
    spec!("lazyfree-lazy-expire", "no", YESNO),
    spec!("lazyfree-lazy-server-del", "no", YESNO),
    spec!("lazyfree-lazy-user-del", "no", YESNO),
    spec!("lazyfree-lazy-user-flush", "no", YESNO),
    spec!("protected-mode", "yes", YESNO),
    spec!("tcp-backlog", "511", Kind::Immutable),
    spec!("unixsocket", "", Kind::Immutable),
    spec!("unixsocketperm", "0", Kind::Immutable),
    spec!("daemonize", "no", Kind::Immutable),
    spec!("supervised", "no", Kind::Immutable),
    spec!("pidfile", "", Kind::Immutable),
    spec!("syslog-enabled", "no", Kind::Immutable),
    spec!("always-show-logo", "no", Kind::Immutable),
    spec!("set-proc-title", "yes", Kind::Immutable),
    spec!("save", "3600 1 300 100 60 10000", Kind::Special),
    spec!("dbfilename", "dump.rdb", Kind::Str),
    spec!("rdbcompression", "yes", YESNO),
    spec!("rdbchecksum", "yes", YESNO),
    spec!("stop-writes-on-bgsave-error", "yes", YESNO),
    spec!("rdb-del-sync-files", "no", YESNO),
    // Hidden (as in Redis): microseconds slept per key saved (tests make saves slow with it).
    spec!("rdb-key-save-delay", "0", Kind::Int(i32::MIN as i64, i32::MAX as i64)),
    spec!("key-load-delay", "0", Kind::Int(i32::MIN as i64, i32::MAX as i64)),
    spec!("loading-process-events-interval-bytes", "2097152", Kind::Int(1024, i32::MAX as i64)),
    spec!("appendonly", "no", YESNO),
    spec!("appendfilename", "appendonly.aof", Kind::Immutable),
    spec!("appenddirname", "appendonlydir", Kind::Immutable),
    spec!("appendfsync", "everysec", Kind::Enum(&["always", "everysec", "no"])),
    spec!("no-appendfsync-on-rewrite", "no", YESNO),
    spec!("auto-aof-rewrite-percentage", "100", Kind::Int(0, i32::MAX as i64)),
    spec!("auto-aof-rewrite-min-size", "64mb", Kind::Memory),
    spec!("aof-load-truncated", "yes", YESNO),
    spec!("aof-use-rdb-preamble", "yes", YESNO),
    spec!("aof-timestamp-enabled", "no", YESNO),
    spec!("replica-read-only", "slave-read-only", "yes", YESNO),
    spec!("replica-serve-stale-data", "slave-serve-stale-data", "yes", YESNO),
    spec!("replica-priority", "slave-priority", "100", Kind::Int(0, i32::MAX as i64)),
    spec!("repl-backlog-size", "1mb", Kind::Memory),
    spec!("repl-backlog-ttl", "3600", Kind::Int(0, i32::MAX as i64)),
    spec!("repl-timeout", "60", Kind::Int(1, i32::MAX as i64)),
    spec!("repl-diskless-sync", "yes", YESNO),
    spec!("repl-diskless-sync-delay", "5", Kind::Int(0, i32::MAX as i64)),
    spec!("repl-diskless-sync-max-replicas", "0", Kind::Int(0, i32::MAX as i64)),
    spec!("repl-diskless-load", "disabled", Kind::Enum(&["disabled", "on-empty-db", "swapdb"])),
    spec!("repl-ping-replica-period", "repl-ping-slave-period", "10", Kind::Int(1, i32::MAX as i64)),
    spec!("repl-disable-tcp-nodelay", "no", YESNO),
    spec!("replica-announce-ip", "slave-announce-ip", "", Kind::Str),
    spec!("replica-announce-port", "slave-announce-port", "0", Kind::Int(0, 65535)),
    spec!("replica-announced", "yes", YESNO),
    spec!("replica-lazy-flush", "slave-lazy-flush", "no", YESNO),
    spec!("replica-ignore-maxmemory", "slave-ignore-maxmemory", "yes", YESNO),
    spec!("min-replicas-to-write", "min-slaves-to-write", "0", Kind::Int(0, i32::MAX as i64)),
    spec!("min-replicas-max-lag", "min-slaves-max-lag", "10", Kind::Int(0, i32::MAX as i64)),
    spec!("masterauth", "", Kind::Str),
    spec!("masteruser", "", Kind::Str),
    spec!("lua-time-limit", "busy-reply-threshold", "5000", Kind::Int(0, i64::MAX)),
    // Redis Cluster (crates/node/src/cluster): startup-only ones are Immutable.
    spec!("cluster-enabled", "no", Kind::Immutable),
    spec!("cluster-config-file", "nodes.conf", Kind::Immutable),
    spec!("cluster-port", "0", Kind::Immutable),
    spec!("cluster-node-timeout", "15000", Kind::Int(0, i64::MAX)),
    spec!("cluster-announce-ip", "", Kind::Str),
    spec!("cluster-announce-port", "0", Kind::Int(0, 65535)),
    spec!("cluster-announce-tls-port", "0", Kind::Int(0, 65535)),
    spec!("cluster-announce-bus-port", "0", Kind::Int(0, 65535)),
    spec!("cluster-announce-hostname", "", Kind::Str),
    spec!("cluster-preferred-endpoint-type", "ip", Kind::Enum(&["ip", "hostname", "unknown-endpoint"])),
    spec!("cluster-require-full-coverage", "yes", YESNO),
    spec!("cluster-allow-reads-when-down", "no", YESNO),
    spec!("cluster-allow-pubsubshard-when-down", "yes", YESNO),
    spec!("cluster-replica-validity-factor", "cluster-slave-validity-factor", "10", Kind::Int(0, i32::MAX as i64)),
    spec!("cluster-migration-barrier", "1", Kind::Int(0, i32::MAX as i64)),
    spec!("cluster-allow-replica-migration", "yes", YESNO),
    spec!("cluster-replica-no-failover", "cluster-slave-no-failover", "no", YESNO),
    spec!("cluster-link-sendbuf-limit", "0", Kind::Memory),
    spec!("shutdown-timeout", "10", Kind::Int(0, i32::MAX as i64)),
    spec!("shutdown-on-sigterm", "default", Kind::Special),
    spec!("shutdown-on-sigint", "default", Kind::Special),
    spec!("activerehashing", "yes", YESNO),
    spec!("activedefrag", "no", YESNO),
    spec!("jemalloc-bg-thread", "yes", YESNO),
    spec!(
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        Kind::Special
    ),
    spec!("tracking-table-max-keys", "1000000", Kind::Int(0, i64::MAX)),
    spec!("acllog-max-len", "128", Kind::Int(0, i64::MAX)),
    spec!("aclfile", "", Kind::Immutable),
    spec!("acl-pubsub-default", "resetchannels", Kind::Enum(&["allchannels", "resetchannels"])),
    spec!("enable-debug-command", "no", Kind::Immutable),
    spec!("enable-protected-configs", "no", Kind::Immutable),
    spec!("enable-module-command", "no", Kind::Immutable),
    // `replicaof <host> <port>` (startup only; REPLICAOF changes it at runtime).
    spec!("replicaof", "slaveof", "", Kind::Immutable),
    spec!("crash-log-enabled", "yes", YESNO),
    spec!("io-threads-do-reads", "no", Kind::Immutable),
    spec!("memcached-port", "0", Kind::Immutable),
    spec!("engine", "redis", Kind::Immutable),
    // memcached protocols (crates/node/src/memcached.rs): -I, -c, ElastiCache Auto Discovery.
    spec!("memcached-item-size-max", "1048576", Kind::Memory),
    spec!("memcached-max-connections", "1024", Kind::Int(1, i32::MAX as i64)),
    spec!("memcached-cluster-nodes", "", Kind::Str),
    spec!("memcached-cluster-version", "1", Kind::Int(0, i64::MAX)),
    // "yes": when the node needs a password (requirepass / ACL), memcached clients must log in
    // too (SASL PLAIN or the text protocol's `set` login). "no" opens the memcached port
    // without authentication even then (logged as a warning at startup).
    spec!("memcached-auth", "yes", YESNO),
];

/// Configs CONFIG SET changes only where `enable-protected-configs` allows it (Redis 7.0's
/// PROTECTED_CONFIG: together they let a client write any file the server can).
pub const PROTECTED: &[&str] = &["dir", "dbfilename"];

pub fn find_spec(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name.eq_ignore_ascii_case(name) || s.alias.is_some_and(|a| a.eq_ignore_ascii_case(name)))
}

/// Parse a Redis memory value ("1gb", "100mb", "512k", "42").
pub fn parse_memory(s: &str) -> Option<i64> {
    let l = s.to_ascii_lowercase();
    let (num, mul) = if let Some(n) = l.strip_suffix("gb") {
        (n, 1024 * 1024 * 1024)
    } else if let Some(n) = l.strip_suffix("mb") {
        (n, 1024 * 1024)
    } else if let Some(n) = l.strip_suffix("kb") {
        (n, 1024)
    } else if let Some(n) = l.strip_suffix('g') {
        (n, 1000 * 1000 * 1000)
    } else if let Some(n) = l.strip_suffix('m') {
        (n, 1000 * 1000)
    } else if let Some(n) = l.strip_suffix('k') {
        (n, 1000)
    } else if let Some(n) = l.strip_suffix('b') {
        (n, 1)
    } else {
        (l.as_str(), 1)
    };
    let v: i64 = num.parse().ok()?;
    v.checked_mul(mul)
}

/// Values read on the request path.
#[derive(Default)]
pub struct Hot {
    pub maxmemory: AtomicU64,
    pub policy: AtomicU32,
    pub samples: AtomicUsize,
    pub proto_max_bulk_len: AtomicI64,
    pub query_buffer_limit: AtomicUsize,
    pub maxclients: AtomicUsize,
    pub timeout: AtomicU64,
    pub notify_flags: AtomicU32,
    pub slowlog_slower_than: AtomicI64,
    pub slowlog_max_len: AtomicUsize,
    pub requirepass_set: AtomicBool,
    pub lfu_log_factor: AtomicU32,
    pub lfu_decay_time: AtomicU32,
    pub hash_max_listpack_entries: AtomicUsize,
    pub hash_max_listpack_value: AtomicUsize,
    pub set_max_intset_entries: AtomicUsize,
    pub zset_max_listpack_entries: AtomicUsize,
    pub zset_max_listpack_value: AtomicUsize,
    pub list_max_listpack_size: AtomicI64,
    pub hll_sparse_max_bytes: AtomicUsize,
    pub latency_threshold: AtomicU64,
    /// memcached listener: `memcached-item-size-max` and `engine memcached`.
    pub mc_item_size_max: AtomicUsize,
    pub mc_engine: AtomicBool,
    /// min-replicas-to-write / min-replicas-max-lag (checked before every write).
    pub min_replicas_to_write: AtomicI64,
    pub min_replicas_max_lag: AtomicI64,
    /// cluster-require-full-coverage / cluster-allow-reads-when-down (read by every routed
    /// command in cluster mode).
    pub cluster_full_coverage: AtomicBool,
    pub cluster_reads_when_down: AtomicBool,
    /// lazyfree-lazy-user-del / lazyfree-lazy-user-flush (DEL as UNLINK, FLUSH* as ASYNC).
    pub lazy_user_del: AtomicBool,
    pub lazy_user_flush: AtomicBool,
    /// client-output-buffer-limit per class (OBUF_NORMAL, OBUF_REPLICA, OBUF_PUBSUB):
    /// hard bytes, soft bytes, soft seconds.
    pub obuf: [[AtomicU64; 3]; 3],
}

/// Output buffer limit classes, in Redis's order (CLIENT_TYPE_NORMAL, _SLAVE, _PUBSUB).
pub const OBUF_NORMAL: usize = 0;
pub const OBUF_REPLICA: usize = 1;
pub const OBUF_PUBSUB: usize = 2;
const OBUF_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// One class's client-output-buffer-limit (0 = no limit).
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObufLimit {
    pub hard: u64,
    pub soft: u64,
    pub secs: u64,
}

/// Parse `<class> <hard> <soft> <soft seconds>` groups over `current` (the classes not named
/// keep their limits), as Redis's updateClientOutputBufferLimit; returns the canonical form
/// (`normal H S T slave H S T pubsub H S T`, bytes).
pub fn merge_obuf_limits(current: &str, value: &str) -> Result<String, String> {
    let mut lims = parse_obuf_limits(current);
    let t: Vec<&str> = value.split_whitespace().collect();
    if !t.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    for g in t.chunks(4) {
        let class = match g[0].to_ascii_lowercase().as_str() {
            "normal" => OBUF_NORMAL,
            "slave" | "replica" => OBUF_REPLICA,
            "pubsub" => OBUF_PUBSUB,
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let hard = parse_memory(g[1]).filter(|n| *n >= 0);
        let soft = parse_memory(g[2]).filter(|n| *n >= 0);
        let secs = g[3].parse::<i64>().ok().filter(|n| *n >= 0);
        let (Some(hard), Some(soft), Some(secs)) = (hard, soft, secs) else {
            return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into());
        };
        lims[class] = ObufLimit { hard: hard as u64, soft: soft as u64, secs: secs as u64 };
    }
    Ok(format_obuf_limits(&lims))
}

/// The limits of a canonical client-output-buffer-limit value.
pub fn parse_obuf_limits(v: &str) -> [ObufLimit; 3] {
    let mut lims = [ObufLimit::default(); 3];
    let t: Vec<&str> = v.split_whitespace().collect();
    for g in t.chunks_exact(4) {
        let class = match g[0] {
            "normal" => OBUF_NORMAL,
            "slave" | "replica" => OBUF_REPLICA,
            "pubsub" => OBUF_PUBSUB,
            _ => continue,
        };
        let m = |s: &str| parse_memory(s).unwrap_or(0).max(0) as u64;
        lims[class] = ObufLimit { hard: m(g[1]), soft: m(g[2]), secs: g[3].parse().unwrap_or(0) };
    }
    lims
}

fn format_obuf_limits(l: &[ObufLimit; 3]) -> String {
    (0..3)
        .map(|c| format!("{} {} {} {}", OBUF_CLASSES[c], l[c].hard, l[c].soft, l[c].secs))
        .collect::<Vec<_>>()
        .join(" ")
}

pub struct Config {
    values: RwLock<BTreeMap<&'static str, String>>,
    pub hot: Hot,
    /// The config file this node was started with (CONFIG REWRITE target).
    pub file: Option<std::path::PathBuf>,
    /// `user <name> rules...` directives from the config file (loaded by acl::init).
    pub acl_users: parking_lot::Mutex<Vec<Vec<String>>>,
}

#[derive(Debug)]
pub struct ConfigError(pub String);

fn bool_val(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

impl Config {
    pub fn new(file: Option<std::path::PathBuf>) -> Config {
        let mut m = BTreeMap::new();
        for s in SPECS {
            // Memory values are kept as byte counts (CONFIG GET shows 1073741824, not "1gb").
            let v = match s.kind {
                Kind::Memory => parse_memory(s.default).map(|n| n.to_string()).unwrap_or_else(|| s.default.to_string()),
                _ => s.default.to_string(),
            };
            m.insert(s.name, v);
        }
        let c = Config { values: RwLock::new(m), hot: Hot::default(), file, acl_users: Default::default() };
        c.refresh_hot();
        c
    }

    pub fn get(&self, name: &str) -> Option<String> {
        let spec = find_spec(name)?;
        self.values.read().get(spec.name).cloned()
    }
    pub fn get_i64(&self, name: &str) -> i64 {
        let v = self.get(name).unwrap_or_default();
        parse_memory(&v).unwrap_or(0)
    }
    pub fn get_bool(&self, name: &str) -> bool {
        self.get(name).as_deref() == Some("yes")
    }

    /// Validate and normalise a value for `spec`; returns the canonical string or the reason.
    fn check(spec: &Spec, args: &[String]) -> Result<String, String> {
        let v = args.join(" ");
        if spec.name == "cluster-announce-hostname" {
            // isValidAnnouncedHostname (NET_HOST_STR_LEN is 256).
            if v.len() >= 256 {
                return Err("Hostnames must be less than 256 characters".into());
            }
            if !v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') {
                return Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into());
            }
        }
        match spec.kind {
            Kind::Bool => bool_val(&v)
                .map(|b| if b { "yes" } else { "no" }.to_string())
                .ok_or_else(|| "argument must be 'yes' or 'no'".to_string()),
            Kind::Int(min, max) => {
                let n: i64 = v.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
                if n < min || n > max {
                    return Err(format!("argument must be between {} and {} inclusive", min, max));
                }
                Ok(n.to_string())
            }
            Kind::Memory => {
                let n = parse_memory(&v).ok_or_else(|| "argument must be a memory value".to_string())?;
                if n < 0 {
                    return Err("argument must be a memory value".into());
                }
                Ok(n.to_string())
            }
            Kind::Enum(opts) => {
                let l = v.to_ascii_lowercase();
                if opts.contains(&l.as_str()) {
                    Ok(l)
                } else {
                    Err(format!("argument(s) must be one of the following: {}", opts.join(", ")))
                }
            }
            Kind::Str | Kind::Immutable => Ok(v),
            Kind::Special => match spec.name {
                "notify-keyspace-events" => {
                    let f = notify::parse(&v)
                        .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmd'.".to_string())?;
                    Ok(notify::to_string(f))
                }
                "maxmemory-clients" => match v.strip_suffix('%') {
                    Some(p) => {
                        let n: i64 = p.parse().map_err(|_| "argument must be a memory or percent value".to_string())?;
                        if n > 100 {
                            return Err("percentage argument must be less or equal to 100".into());
                        }
                        if n < 0 {
                            return Err("argument must be a memory or percent value".into());
                        }
                        Ok(format!("{}%", n))
                    }
                    None => match parse_memory(&v) {
                        Some(n) if n >= 0 => Ok(n.to_string()),
                        _ => Err("argument must be a memory or percent value".into()),
                    },
                },
                "shutdown-on-sigterm" | "shutdown-on-sigint" => {
                    let f = crate::shutdown::parse_sig_flags(&v)?;
                    Ok(crate::shutdown::sig_flags_name(f))
                }
                "save" => {
                    let parts: Vec<&str> = v.split_whitespace().collect();
                    if !parts.len().is_multiple_of(2) || parts.iter().any(|p| p.parse::<i64>().is_err()) {
                        return Err("Invalid save parameters".into());
                    }
                    Ok(parts.join(" "))
                }
                _ => Ok(v),
            },
        }
    }

    /// Set at startup (file or command line): anything known, including immutable options.
    pub fn set_startup(&self, name: &str, args: &[String]) -> Result<(), String> {
        let spec = find_spec(name).ok_or_else(|| "Bad directive or wrong number of arguments".to_string())?;
        let v = match spec.name {
            // Immutable values need shape checks too.
            "port" | "databases" | "threads" | "memcached-port" | "tcp-backlog" => {
                let n: i64 = args.join(" ").parse().map_err(|_| "Invalid argument".to_string())?;
                if n < 0 || (spec.name == "port" && n > 65535) || (spec.name == "databases" && n < 1) {
                    return Err(format!("Invalid {}", spec.name));
                }
                n.to_string()
            }
            "bind" => args.join(" "),
            "client-output-buffer-limit" => {
                merge_obuf_limits(&self.get(spec.name).unwrap_or_default(), &args.join(" "))?
            }
            "replicaof" => {
                let port = args.get(1).and_then(|p| p.parse::<u16>().ok());
                match (args.len(), port) {
                    (2, Some(port)) => format!("{} {}", args[0], port),
                    (2, None) => return Err("Invalid master port".into()),
                    _ => return Err("wrong number of arguments".into()),
                }
            }
            "engine" => {
                let v = args.join(" ").to_ascii_lowercase();
                if v != "redis" && v != "memcached" {
                    return Err("argument must be 'redis' or 'memcached'".into());
                }
                v
            }
            "memcached-item-size-max" => {
                let n = parse_memory(&args.join(" ")).ok_or_else(|| "argument must be a memory value".to_string())?;
                if !(1024..=1024 * 1024 * 1024).contains(&n) {
                    return Err("item size must be between 1k and 1gb".into());
                }
                n.to_string()
            }
            // save lines accumulate in a config file, as in Redis
            "save" if args.len() == 2 => {
                let cur = self.get("save").unwrap_or_default();
                let fresh = self.values.read().get("save").map(|s| s == spec.default).unwrap_or(true);
                Self::check(spec, args)?;
                if fresh {
                    args.join(" ")
                } else {
                    format!("{} {}", cur, args.join(" ")).trim().to_string()
                }
            }
            _ => Self::check(spec, args)?,
        };
        self.values.write().insert(spec.name, v);
        self.refresh_hot();
        Ok(())
    }

    /// CONFIG SET of one option (Redis's error text on failure).
    pub fn set_runtime(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        let spec = find_spec(name).ok_or_else(|| {
            ConfigError(format!("ERR Unknown option or number of arguments for CONFIG SET - '{}'", name))
        })?;
        if matches!(spec.kind, Kind::Immutable) && spec.name == "port" {
            // Rebound by CONFIG SET's apply step (listeners::change_port), as Redis does.
            let v = value.parse::<i64>().ok().filter(|n| (0..=65535).contains(n)).ok_or_else(|| {
                ConfigError(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{}') - argument must be between 0 and 65535 inclusive",
                    name
                ))
            })?;
            self.values.write().insert(spec.name, v.to_string());
            return Ok(());
        }
        if matches!(spec.kind, Kind::Immutable) {
            // port and bind are mutable in Redis (and threads, memcached-port and engine are
            // ours): this node cannot change them at runtime yet, but setting the value they
            // already have changes nothing and succeeds, as in Redis. Redis's own immutable
            // configs (io-threads, databases, daemonize, ...) stay refused.
            if matches!(spec.name, "port" | "bind" | "threads" | "memcached-port" | "engine")
                && self.get(spec.name).as_deref() == Some(value)
            {
                return Ok(());
            }
            return Err(ConfigError(format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - can't set immutable config",
                name
            )));
        }
        let v = if spec.name == "client-output-buffer-limit" {
            merge_obuf_limits(&self.get(spec.name).unwrap_or_default(), value)
        } else {
            Self::check(spec, &[value.to_string()])
        }
        .map_err(|e| ConfigError(format!("ERR CONFIG SET failed (possibly related to argument '{}') - {}", name, e)))?;
        if spec.name == "memcached-item-size-max" && !(1024..=1 << 30).contains(&v.parse::<i64>().unwrap_or(0)) {
            return Err(ConfigError(format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - item size must be between 1k and 1gb",
                name
            )));
        }
        if spec.name == "memcached-cluster-nodes" {
            // Auto Discovery: a new node list is a new configuration version.
            let mut vals = self.values.write();
            if vals.get(spec.name) != Some(&v) {
                let ver: i64 = vals.get("memcached-cluster-version").and_then(|x| x.parse().ok()).unwrap_or(0);
                vals.insert("memcached-cluster-version", (ver + 1).to_string());
            }
        }
        if spec.name == "dir" {
            std::env::set_current_dir(value).map_err(|e| {
                ConfigError(format!("ERR CONFIG SET failed (possibly related to argument 'dir') - {}", e))
            })?;
        }
        self.values.write().insert(spec.name, v);
        self.refresh_hot();
        Ok(())
    }

    /// (name, value) pairs matching a glob, as CONFIG GET returns them.
    pub fn matching(&self, pattern: &str) -> Vec<(String, String)> {
        let vals = self.values.read();
        let mut out = Vec::new();
        for s in SPECS {
            let v = if s.name == "dir" {
                std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default()
            } else {
                vals.get(s.name).cloned().unwrap_or_default()
            };
            let has_glob = pattern.contains(['*', '?', '[']);
            // Hidden configs need an exact name (Redis's HIDDEN_CONFIG).
            if has_glob && HIDDEN.contains(&s.name) {
                continue;
            }
            if glob_match(pattern.as_bytes(), s.name.as_bytes(), true) {
                out.push((s.name.to_string(), v.clone()));
            }
            if let Some(a) = s.alias {
                if (has_glob && glob_match(pattern.as_bytes(), a.as_bytes(), true))
                    || (!has_glob && a.eq_ignore_ascii_case(pattern))
                {
                    out.push((a.to_string(), v));
                }
            }
        }
        out
    }

    /// All current values (CONFIG REWRITE).
    pub fn all(&self) -> Vec<(&'static str, String, bool)> {
        let vals = self.values.read();
        SPECS
            .iter()
            .map(|s| {
                let v = vals.get(s.name).cloned().unwrap_or_default();
                // Memory values are stored as byte counts: "1gb" is the default 1073741824.
                let is_default = match (&s.kind, vals.get(s.name)) {
                    (_, None) => true,
                    (Kind::Memory, Some(v)) => parse_memory(v).is_some() && parse_memory(v) == parse_memory(s.default),
                    (_, Some(v)) => v == s.default,
                };
                (s.name, v, is_default)
            })
            .collect()
    }

    pub fn refresh_hot(&self) {
        let h = &self.hot;
        let vals = self.values.read();
        let g = |n: &str| vals.get(n).cloned().unwrap_or_default();
        let gi = |n: &str| parse_memory(&g(n)).unwrap_or(0);
        h.maxmemory.store(gi("maxmemory") as u64, Relaxed);
        let pol = EvictionPolicy::parse(&g("maxmemory-policy")).unwrap_or(EvictionPolicy::NoEviction);
        h.policy.store(EvictionPolicy::ALL.iter().position(|(_, p)| *p == pol).unwrap() as u32, Relaxed);
        h.samples.store(gi("maxmemory-samples") as usize, Relaxed);
        h.proto_max_bulk_len.store(gi("proto-max-bulk-len"), Relaxed);
        h.query_buffer_limit.store(gi("client-query-buffer-limit") as usize, Relaxed);
        h.maxclients.store(gi("maxclients") as usize, Relaxed);
        h.timeout.store(gi("timeout") as u64, Relaxed);
        let nf = notify::parse(&g("notify-keyspace-events")).unwrap_or(0);
        h.notify_flags.store(nf, Relaxed);
        notify::NEW_ENABLED.store(nf & notify::NEW != 0 && nf & (notify::KEYSPACE | notify::KEYEVENT) != 0, Relaxed);
        h.slowlog_slower_than.store(gi("slowlog-log-slower-than"), Relaxed);
        h.slowlog_max_len.store(gi("slowlog-max-len") as usize, Relaxed);
        h.lfu_log_factor.store(gi("lfu-log-factor") as u32, Relaxed);
        h.lfu_decay_time.store(gi("lfu-decay-time") as u32, Relaxed);
        h.hash_max_listpack_entries.store(gi("hash-max-listpack-entries") as usize, Relaxed);
        h.hash_max_listpack_value.store(gi("hash-max-listpack-value") as usize, Relaxed);
        h.set_max_intset_entries.store(gi("set-max-intset-entries") as usize, Relaxed);
        h.zset_max_listpack_entries.store(gi("zset-max-listpack-entries") as usize, Relaxed);
        h.zset_max_listpack_value.store(gi("zset-max-listpack-value") as usize, Relaxed);
        h.list_max_listpack_size.store(gi("list-max-listpack-size"), Relaxed);
        h.hll_sparse_max_bytes.store(gi("hll-sparse-max-bytes") as usize, Relaxed);
        h.latency_threshold.store(gi("latency-monitor-threshold") as u64, Relaxed);
        h.mc_item_size_max.store(gi("memcached-item-size-max").clamp(1024, 1 << 30) as usize, Relaxed);
        h.mc_engine.store(g("engine") == "memcached", Relaxed);
        h.min_replicas_to_write.store(gi("min-replicas-to-write"), Relaxed);
        h.min_replicas_max_lag.store(gi("min-replicas-max-lag"), Relaxed);
        h.cluster_full_coverage.store(g("cluster-require-full-coverage") == "yes", Relaxed);
        h.cluster_reads_when_down.store(g("cluster-allow-reads-when-down") == "yes", Relaxed);
        h.lazy_user_del.store(g("lazyfree-lazy-user-del") == "yes", Relaxed);
        h.lazy_user_flush.store(g("lazyfree-lazy-user-flush") == "yes", Relaxed);
        for (c, l) in parse_obuf_limits(&g("client-output-buffer-limit")).iter().enumerate() {
            h.obuf[c][0].store(l.hard, Relaxed);
            h.obuf[c][1].store(l.soft, Relaxed);
            h.obuf[c][2].store(l.secs, Relaxed);
        }
    }

    pub fn policy(&self) -> EvictionPolicy {
        EvictionPolicy::ALL[self.hot.policy.load(Relaxed) as usize].1
    }

    /// Load a redis.conf-syntax file. Errors are formatted as Redis's fatal config error.
    pub fn load_file(&self, path: &std::path::Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("Fatal error, can't open config file '{}': {}", path.display(), e))?;
        self.load_text(&text)
    }

    pub fn load_text(&self, text: &str) -> Result<(), String> {
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut buf = Vec::new();
            let mut spans = Vec::new();
            if !ferrocache_protocol::resp::split_args(t.as_bytes(), &mut buf, &mut spans) {
                return Err(fatal(i + 1, t, "Unbalanced quotes in configuration line"));
            }
            let parts: Vec<String> =
                spans.iter().map(|r| String::from_utf8_lossy(&buf[r.clone()]).into_owned()).collect();
            if parts.is_empty() {
                continue;
            }
            let name = parts[0].to_ascii_lowercase();
            if name == "user" && parts.len() >= 2 {
                self.acl_users.lock().push(parts[1..].to_vec());
                continue;
            }
            if name == "include" {
                for p in &parts[1..] {
                    self.load_file(std::path::Path::new(p))?;
                }
                continue;
            }
            if parts.len() < 2 && name != "save" {
                return Err(fatal(i + 1, t, "wrong number of arguments"));
            }
            if find_spec(&name).is_none() {
                return Err(fatal(
                    i + 1,
                    t,
                    &format!("Bad directive or wrong number of arguments (unknown option '{}')", name),
                ));
            }
            self.set_startup(&name, &parts[1..]).map_err(|e| fatal(i + 1, t, &e))?;
        }
        Ok(())
    }
}

fn fatal(line: usize, text: &str, msg: &str) -> String {
    format!(
        "\n*** FATAL CONFIG FILE ERROR (ferrocache {}) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
        env!("CARGO_PKG_VERSION"),
        line,
        text,
        msg
    )
}

/// Redis's rewriteConfigFormatMemory: "10mb" rather than 10485760 in a rewritten file.
pub fn format_memory_for_rewrite(bytes: i64) -> String {
    const GB: i64 = 1024 * 1024 * 1024;
    const MB: i64 = 1024 * 1024;
    const KB: i64 = 1024;
    if bytes != 0 && bytes % GB == 0 {
        format!("{}gb", bytes / GB)
    } else if bytes != 0 && bytes % MB == 0 {
        format!("{}mb", bytes / MB)
    } else if bytes != 0 && bytes % KB == 0 {
        format!("{}kb", bytes / KB)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn memory_values() {
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("100mb"), Some(100 << 20));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("x"), None);
    }
    #[test]
    fn file_errors_name_line() {
        let c = Config::new(None);
        let e = c.load_text("port 7000\nfoo bar\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("foo"), "{e}");
        c.load_text("maxmemory 10mb\nmaxmemory-policy allkeys-lru\n").unwrap();
        assert_eq!(c.hot.maxmemory.load(Relaxed), 10 << 20);
        assert_eq!(c.policy(), EvictionPolicy::AllKeysLru);
    }
}
