//! Node commands: INFO, COMMAND, CONFIG, TIME, LASTSAVE, SLOWLOG, LATENCY, MEMORY, MONITOR,
//! SHUTDOWN, DEBUG.

use ferrocache_engine::memory::used_memory;
use ferrocache_engine::Value;
use ferrocache_node::node::{now_ms, now_us};
use ferrocache_node::subcommand_required;
use ferrocache_node::table::{flags::*, table, Command};
use ferrocache_node::util::*;
use ferrocache_node::{stats, Ctx};
use ferrocache_protocol::resp::{Args, ReplyBuf};
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

/// The Redis version we are compatible with (reported where clients look for it).
pub use ferrocache_node::node::REDIS_VERSION;

mod info;
mod introspection;
pub use info::*;
use introspection::*;
const G: &str = "server";
const ADM: u64 = ADMIN | NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[Command] = &[
    Command::new("info", -1, LOADING | STALE, (0, 0, 0), info).group(G),
    Command::new("command", -1, LOADING | STALE, (0, 0, 0), command_all).group(G).subs(COMMAND_SUBS),
    Command::new("config", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(CONFIG_SUBS),
    Command::new("time", 1, LOADING | STALE | FAST, (0, 0, 0), time).group(G),
    Command::new("lastsave", 1, LOADING | STALE | FAST, (0, 0, 0), lastsave).group(G),
    Command::new("role", 1, NOSCRIPT | LOADING | STALE | FAST, (0, 0, 0), role).group(G),
    Command::new("slowlog", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(SLOWLOG_SUBS),
    Command::new("latency", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(LATENCY_SUBS),
    Command::new("memory", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(MEMORY_SUBS),
    Command::new("monitor", 1, ADM, (0, 0, 0), monitor).group(G),
    Command::new("debug", -2, ADM, (0, 0, 0), debug).group(G),
    Command::new("module", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(MODULE_SUBS),
    Command::new("lolwut", -1, READONLY | FAST, (0, 0, 0), lolwut).group(G),
];

static MODULE_SUBS: &[Command] = &[
    Command::new("module|help", 2, LOADING | STALE, (0, 0, 0), module_help).group(G),
    Command::new("module|list", 2, ADMIN | NOSCRIPT, (0, 0, 0), module_list).group(G),
    Command::new("module|load", -3, ADMIN | NOSCRIPT, (0, 0, 0), module_load).group(G),
    Command::new("module|loadex", -3, ADMIN | NOSCRIPT, (0, 0, 0), module_load).group(G),
    Command::new("module|unload", 3, ADMIN | NOSCRIPT, (0, 0, 0), module_unload).group(G),
];

static COMMAND_SUBS: &[Command] = &[
    Command::new("command|count", 2, LOADING | STALE, (0, 0, 0), command_count).group(G),
    Command::new("command|info", -2, LOADING | STALE, (0, 0, 0), command_info).group(G),
    Command::new("command|docs", -2, LOADING | STALE, (0, 0, 0), command_docs).group(G),
    Command::new("command|list", -2, LOADING | STALE, (0, 0, 0), command_list).group(G),
    Command::new("command|getkeys", -4, LOADING | STALE, (0, 0, 0), command_getkeys).group(G),
    Command::new("command|getkeysandflags", -4, LOADING | STALE, (0, 0, 0), command_getkeysandflags).group(G),
    Command::new("command|help", 2, LOADING | STALE, (0, 0, 0), command_help).group(G),
];

static CONFIG_SUBS: &[Command] = &[
    Command::new("config|get", -3, ADM, (0, 0, 0), config_get).group(G),
    Command::new("config|set", -4, ADM, (0, 0, 0), config_set).group(G),
    Command::new("config|resetstat", 2, ADM, (0, 0, 0), config_resetstat).group(G),
    Command::new("config|rewrite", 2, ADM, (0, 0, 0), config_rewrite).group(G),
    Command::new("config|help", 2, LOADING | STALE, (0, 0, 0), config_help).group(G),
];

static SLOWLOG_SUBS: &[Command] = &[
    Command::new("slowlog|get", -2, ADMIN | LOADING | STALE, (0, 0, 0), slowlog_get).group(G),
    Command::new("slowlog|len", 2, ADMIN | LOADING | STALE, (0, 0, 0), slowlog_len).group(G),
    Command::new("slowlog|reset", 2, ADMIN | LOADING | STALE, (0, 0, 0), slowlog_reset).group(G),
    Command::new("slowlog|help", 2, LOADING | STALE, (0, 0, 0), slowlog_help).group(G),
];

static LATENCY_SUBS: &[Command] = &[
    Command::new("latency|latest", 2, ADM, (0, 0, 0), latency_latest).group(G),
    Command::new("latency|reset", -2, ADM, (0, 0, 0), latency_reset).group(G),
    Command::new("latency|history", 3, ADM, (0, 0, 0), latency_history).group(G),
    Command::new("latency|doctor", 2, ADM, (0, 0, 0), latency_doctor).group(G),
    Command::new("latency|help", 2, LOADING | STALE, (0, 0, 0), latency_help).group(G),
];

static MEMORY_SUBS: &[Command] = &[
    Command::new("memory|usage", -3, READONLY, (2, 2, 1), memory_usage).group(G),
    Command::new("memory|stats", 2, 0, (0, 0, 0), memory_stats).group(G),
    Command::new("memory|doctor", 2, 0, (0, 0, 0), memory_doctor).group(G),
    Command::new("memory|malloc-stats", 2, 0, (0, 0, 0), memory_malloc_stats).group(G),
    Command::new("memory|purge", 2, 0, (0, 0, 0), memory_purge).group(G),
    Command::new("memory|help", 2, LOADING | STALE, (0, 0, 0), memory_help).group(G),
];

fn help(out: &mut ReplyBuf, lines: &[&str]) {
    out.array(lines.len());
    for l in lines {
        out.simple(l);
    }
}

// ------------------------------------------------------------------ misc

fn time(ctx: &mut Ctx, _a: Args) {
    let us = now_us();
    ctx.out.array(2);
    ctx.out.bulk((us / 1_000_000).to_string().as_bytes());
    ctx.out.bulk((us % 1_000_000).to_string().as_bytes());
}

/// ROLE of a master without replicas: ["master", replication offset, []].
fn role(ctx: &mut Ctx, _a: Args) {
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(0);
    ctx.out.array(0);
}

fn lastsave(ctx: &mut Ctx, _a: Args) {
    ctx.out.int(ctx.srv.last_save() as i64);
}

fn slowlog_get(ctx: &mut Ctx, a: Args) {
    let mut count = 10i64;
    if a.len() == 3 {
        match parse_i64(&a[2]) {
            Some(n) if n >= -1 => count = n,
            _ => return ctx.out.error("ERR count should be greater than or equal to -1"),
        }
    } else if a.len() > 3 {
        return ctx.wrong_arity();
    }
    let entries = ctx.srv.slowlog().newest(if count == -1 { None } else { Some(count as usize) });
    ctx.out.array(entries.len());
    for e in entries {
        ctx.out.array(6);
        ctx.out.int(e.id as i64);
        ctx.out.int(e.time as i64);
        ctx.out.int(e.micros as i64);
        ctx.out.array(e.args.len());
        for x in &e.args {
            ctx.out.bulk(x);
        }
        ctx.out.bulk(e.addr.as_bytes());
        ctx.out.bulk(e.name.as_bytes());
    }
}

fn slowlog_len(ctx: &mut Ctx, _a: Args) {
    let n = ctx.srv.slowlog().len();
    ctx.out.int(n as i64);
}

fn slowlog_reset(ctx: &mut Ctx, _a: Args) {
    ctx.srv.slowlog().reset();
    ctx.out.ok();
}

fn slowlog_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ],
    );
}

fn latency_latest(ctx: &mut Ctx, _a: Args) {
    let events = ctx.srv.latency().events();
    ctx.out.array(events.len());
    for (name, e) in events {
        ctx.out.array(4);
        ctx.out.bulk(name.as_bytes());
        ctx.out.int(e.last_s as i64);
        ctx.out.int(e.history.back().map(|x| x.1).unwrap_or(0) as i64);
        ctx.out.int(e.max_ms as i64);
    }
}

fn latency_reset(ctx: &mut Ctx, a: Args) {
    let names: Vec<String> = a.iter().skip(2).map(|e| String::from_utf8_lossy(e).into_owned()).collect();
    let n = ctx.srv.latency().reset(&names);
    ctx.out.int(n as i64);
}

fn latency_history(ctx: &mut Ctx, a: Args) {
    match ctx.srv.latency().event(&String::from_utf8_lossy(&a[2])) {
        None => ctx.out.empty_array(),
        Some(e) => {
            ctx.out.array(e.history.len());
            for (t, v) in e.history {
                ctx.out.array(2);
                ctx.out.int(t as i64);
                ctx.out.int(v as i64);
            }
        }
    }
}

fn latency_doctor(ctx: &mut Ctx, _a: Args) {
    ctx.out.verbatim(b"Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n");
}

fn latency_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HELP",
            "    Prints this help.",
        ],
    );
}

fn memory_usage(ctx: &mut Ctx, a: Args) {
    if a.len() == 5 {
        if !eq_ic(&a[3], "samples") {
            return ctx.out.error(ERR_SYNTAX);
        }
        if int_arg(ctx.out, &a[4]).is_none() {
            return;
        }
    } else if a.len() != 3 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let key = a[2].to_vec();
    let (mut db, out) = ctx.parts();
    match db.peek(&key) {
        None => out.null(),
        Some(e) => {
            let base = 72 + if e.key.is_inline() { 0 } else { e.key.len() };
            out.int((base + e.value.mem_usage()) as i64)
        }
    }
}

fn memory_stats(ctx: &mut Ctx, _a: Args) {
    let used = used_memory() as i64;
    let counts = ctx.srv.keyspace().db_counts();
    let keys: usize = counts.iter().map(|c| c.0).sum();
    let out = &mut *ctx.out;
    let dbs: Vec<_> = counts.iter().enumerate().filter(|(_, c)| c.0 > 0).collect();
    out.map(23 + dbs.len());
    for (k, v) in [
        ("peak.allocated", used),
        ("total.allocated", used),
        ("startup.allocated", 0),
        ("replication.backlog", 0),
        ("clients.slaves", 0),
        ("clients.normal", 0),
        ("cluster.links", 0),
        ("aof.buffer", 0),
        ("lua.caches", 0),
        ("functions.caches", 0),
        ("overhead.total", 0),
    ] {
        out.bulk(k.as_bytes());
        out.int(v);
    }
    for (i, c) in dbs {
        out.bulk(format!("db.{}", i).as_bytes());
        out.map(2);
        out.bulk(b"overhead.hashtable.main");
        out.int(c.0 as i64 * 16);
        out.bulk(b"overhead.hashtable.expires");
        out.int(c.1 as i64 * 16);
    }
    out.bulk(b"keys.count");
    out.int(keys as i64);
    out.bulk(b"keys.bytes-per-key");
    out.int(if keys > 0 { used / keys as i64 } else { 0 });
    out.bulk(b"dataset.bytes");
    out.int(used);
    out.bulk(b"dataset.percentage");
    out.double(100.0);
    out.bulk(b"peak.percentage");
    out.double(100.0);
    for k in ["allocator.allocated", "allocator.active", "allocator.resident"] {
        out.bulk(k.as_bytes());
        out.int(used);
    }
    out.bulk(b"allocator-fragmentation.ratio");
    out.double(1.0);
    out.bulk(b"allocator-fragmentation.bytes");
    out.int(0);
    out.bulk(b"allocator.rss-ratio");
    out.double(1.0);
    out.bulk(b"allocator.rss-bytes");
    out.int(0);
    out.bulk(b"rss-overhead.ratio");
    out.double(1.0);
    out.bulk(b"fragmentation");
    out.double(1.0);
}

fn memory_doctor(ctx: &mut Ctx, _a: Args) {
    ctx.out.verbatim(
        b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n",
    );
}

fn memory_malloc_stats(ctx: &mut Ctx, _a: Args) {
    ctx.out.verbatim(
        format!("Stats not supported for the current allocator (mimalloc); used={}\n", used_memory()).as_bytes(),
    );
}

fn memory_purge(ctx: &mut Ctx, _a: Args) {
    ctx.out.ok();
}

fn memory_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Prints this help.",
        ],
    );
}

fn monitor(ctx: &mut Ctx, _a: Args) {
    if ctx.client.monitor {
        return;
    }
    ctx.client.monitor = true;
    ctx.srv.monitors().add(ctx.client.id, ctx.client.tx.clone());
    ctx.client.set_flags();
    ctx.out.ok();
}

/// allowProtectedAction: `option` is "yes", or "local" and the client is local (islocalClient:
/// 127.0.0.1 or ::1 exactly, as Redis).
pub fn allow_protected(ctx: &Ctx, option: &str) -> bool {
    let setting = ctx.srv.config().get(option).unwrap_or_default();
    setting == "yes" || (setting == "local" && ferrocache_node::client::is_local_addr(&ctx.client.shared.addr))
}

fn protected_allowed(ctx: &mut Ctx, option: &str, command: &str) -> bool {
    if allow_protected(ctx, option) {
        return true;
    }
    ctx.out.error(&format!(
        "ERR {command} command not allowed. If the {option} option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server."
    ));
    false
}

fn debug(ctx: &mut Ctx, a: Args) {
    if !protected_allowed(ctx, "enable-debug-command", "DEBUG") {
        return;
    }
    let sub = a[1].to_ascii_lowercase();
    match sub.as_slice() {
        // The message is the whole error line, code included (`DEBUG ERROR LOADING x`).
        b"error" if a.len() == 3 => ctx.out.error(&String::from_utf8_lossy(&a[2])),
        b"sleep" if a.len() == 3 => {
            let Some(secs) = parse_f64(&a[2]) else { return ctx.out.error(ERR_NOT_FLOAT) };
            // The whole node stops, as single-threaded Redis does: no command runs (every shard
            // held) and the cluster bus answers nothing (its state held), so other nodes see it
            // unreachable without it being killed. (Inside EXEC, which already holds the
            // transaction's shards, the others are left alone.)
            let _commands = (!ctx.client.in_exec).then(|| ctx.srv.keyspace().lock_all());
            let _bus = ctx.srv.cluster().enabled.then(|| ctx.srv.cluster().state.write());
            std::thread::sleep(std::time::Duration::from_micros((secs.max(0.0) * 1e6) as u64));
            ctx.out.ok();
        }
        b"set-active-expire" if a.len() == 3 => {
            ctx.out.ok();
        }
        b"drop-cluster-packet-filter" if a.len() == 3 => {
            let Some(t) = parse_i64(&a[2]) else { return ctx.out.error(ERR_NOT_INT) };
            ctx.srv.cluster().drop_filter.store(t, std::sync::atomic::Ordering::Relaxed);
            ctx.out.ok();
        }
        b"object" if a.len() == 3 => {
            let key = a[2].to_vec();
            let now = ctx.now_ms;
            let (mut db, out) = ctx.parts();
            match db.peek(&key) {
                None => out.error(ERR_NO_KEY),
                Some(e) => out.simple(&format!(
                    "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                    e.value.encoding(),
                    e.value.len(),
                    e.lru & 0xFFFFFF,
                    ferrocache_engine::keyspace::lru_idle_secs(e.lru, now)
                )),
            }
        }
        b"reload" => ferrocache_node::persistence::debug_reload(ctx, a),
        // Both lock every shard: not inside EXEC, whose shards are already held.
        b"populate" | b"digest" if ctx.client.in_exec => {
            ctx.out.error("ERR DEBUG POPULATE and DEBUG DIGEST are not supported inside MULTI/EXEC")
        }
        b"populate" if (3..=5).contains(&a.len()) => debug_populate(ctx, a),
        b"digest" if a.len() == 2 => {
            let d = ferrocache_node::digest::dataset(ctx.srv, ctx.now_ms);
            ctx.out.simple(&ferrocache_node::digest::hex(&d));
        }
        b"digest-value" => {
            let now = ctx.now_ms;
            let keys: Vec<Vec<u8>> = a.iter().skip(2).map(|k| k.to_vec()).collect();
            let (mut db, out) = ctx.parts();
            out.array(keys.len());
            for k in keys {
                let d = match db.peek(&k).filter(|e| e.expire_at == 0 || e.expire_at > now) {
                    Some(e) => ferrocache_node::digest::value_digest(&e.value, e.expire_at != 0),
                    None => [0u8; 20],
                };
                out.simple(&ferrocache_node::digest::hex(&d));
            }
        }
        b"set-disable-deny-scripts" if a.len() == 3 => {
            let on = ferrocache_node::util::parse_i64(&a[2]).unwrap_or(0) != 0;
            ctx.srv.scripting().disable_deny.store(on, Relaxed);
            ctx.out.ok();
        }
        b"protocol" if a.len() == 3 => debug_protocol(ctx, &a[2]),
        b"help" => help(
            ctx.out,
            &[
                "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "ERROR <string>",
                "    Return a Redis protocol error with <string> as message.",
                "SLEEP <seconds>",
                "OBJECT <key>",
                "RELOAD [MERGE] [NOFLUSH] [NOSAVE]",
                "DIGEST",
                "    Output a hex signature representing the current DB content.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> string keys named key:<num>. If <prefix> is specified then",
                "    it is used instead of the 'key' prefix. These are not propagated to",
                "    replicas. Cluster slots are not respected so keys not belonging to the",
                "    current node can be created in cluster mode.",
                "DIGEST-VALUE <key> [<key> ...]",
                "    Output a hex signature of the values of all the specified keys.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "HELP",
            ],
        ),
        _ => ctx.out.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&a[1])
        )),
    }
}

/// DEBUG POPULATE <count> [prefix] [size]: keys `prefix:N` (default `key`) holding `value:N`
/// (zero-padded or cut to `size`), existing keys left alone; written straight into the
/// keyspace and not propagated, as Redis's dbAdd.
fn debug_populate(ctx: &mut Ctx, a: Args) {
    let positive = |b: &[u8]| parse_i64(b).filter(|&n| n >= 0);
    let Some(count) = positive(&a[2]) else {
        return ctx.out.error("ERR value is out of range, must be positive");
    };
    let size = match a.get(4) {
        None => 0,
        Some(b) => match positive(b) {
            Some(n) => n as usize,
            None => return ctx.out.error("ERR value is out of range, must be positive"),
        },
    };
    let prefix = a.get(3).map(|p| p.to_vec()).unwrap_or_else(|| b"key".to_vec());
    let (srv, dbi, now) = (ctx.srv, ctx.client.db, ctx.now_ms);
    let mut guards = srv.keyspace().lock_all();
    let mut fx = ferrocache_engine::Effects::default();
    let mut db = srv.db(&mut guards, &mut fx, dbi, now);
    for j in 0..count {
        let mut key = prefix.clone();
        key.extend_from_slice(format!(":{}", j).as_bytes());
        if db.get_mut(&key).is_some() {
            continue;
        }
        let mut val = format!("value:{}", j).into_bytes();
        if size > 0 {
            val.resize(size, 0);
        }
        db.set(&key, Value::str(&val), false);
    }
    ctx.out.ok();
}

/// DEBUG PROTOCOL <type>: one reply of each RESP type.
fn debug_protocol(ctx: &mut Ctx, name: &[u8]) {
    let out = &mut *ctx.out;
    match name.to_ascii_lowercase().as_slice() {
        b"string" => out.bulk(b"Hello World"),
        b"integer" => out.int(12345),
        #[allow(clippy::approx_constant)] // Redis's literal, not π
        b"double" => out.double(3.141),
        b"bignum" => {
            if out.resp3 {
                out.raw(b"(1234567999999999999999999999999999999\r\n");
            } else {
                out.bulk(b"1234567999999999999999999999999999999");
            }
        }
        b"null" => out.null(),
        b"array" | b"set" => {
            if name.eq_ignore_ascii_case(b"set") {
                out.set(3);
            } else {
                out.array(3);
            }
            for j in 0..3 {
                out.int(j);
            }
        }
        b"map" => {
            out.map(3);
            for j in 0..3 {
                out.int(j);
                out.bool(j == 1);
            }
        }
        b"attrib" => {
            if out.resp3 {
                out.raw(b"|1\r\n");
                out.bulk(b"key-popularity");
                out.array(2);
                out.bulk(b"key:123");
                out.int(90);
            }
            out.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !out.resp3 {
                return out.error("ERR RESP2 is not supported by this command");
            }
            out.push(2);
            out.bulk(b"server-cpu-usage");
            out.int(42);
            out.bulk(b"Some real reply following the push reply");
        }
        b"true" => out.bool(true),
        b"false" => out.bool(false),
        b"verbatim" => out.verbatim(b"This is a verbatim\nstring"),
        _ => out.error("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"),
    }
}

/// DUMP payload of a value (Redis's format: RDB value + RDB version + CRC64).
pub fn dump_value(v: &Value) -> Vec<u8> {
    ferrocache_node::rdb_bridge::dump(v)
}

/// Decode a DUMP payload, or Redis's error text.
pub fn restore_value(p: &[u8]) -> Result<Value, String> {
    ferrocache_node::rdb_bridge::restore(p)
}

// ------------------------------------------------------------------ MODULE, LOLWUT

fn module_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
            "HELP",
            "    Print this help.",
        ],
    );
}

/// No modules are ever loaded (LIST is not a protected subcommand).
fn module_list(ctx: &mut Ctx, _a: Args) {
    ctx.out.array(0);
}

/// Redis modules are C shared objects written against redis-server's internals: ferrocache
/// cannot load them, and answers as redis-server does when a load fails.
fn module_load(ctx: &mut Ctx, a: Args) {
    if protected_allowed(ctx, "enable-module-command", "MODULE") {
        ferrocache_node::persistence::log_line(
            '#',
            &format!(
                "Module {} failed to load: ferrocache does not load Redis modules",
                String::from_utf8_lossy(&a[2])
            ),
        );
        ctx.out.error("ERR Error loading the extension. Please check the server logs.");
    }
}

fn module_unload(ctx: &mut Ctx, _a: Args) {
    if protected_allowed(ctx, "enable-module-command", "MODULE") {
        ctx.out.error("ERR Error unloading module: no such module with that name");
    }
}

/// LOLWUT [VERSION v]: what Redis 7.0 prints for its own version (versions 5 and 6 draw
/// random computer art in Redis; here every version prints the version line).
fn lolwut(ctx: &mut Ctx, a: Args) {
    if a.len() >= 3 && eq_ic(&a[1], "version") && parse_i64(&a[2]).is_none() {
        return ctx.out.error(ERR_NOT_INT);
    }
    ctx.out.verbatim(format!("Redis ver. {REDIS_VERSION}\n").as_bytes());
}
