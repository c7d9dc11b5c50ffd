//! Generic keyspace commands: DEL, EXISTS, TYPE, expiry, RENAME, COPY, MOVE, SWAPDB, KEYS,
//! SCAN, RANDOMKEY, DBSIZE, FLUSHDB/FLUSHALL, TOUCH, OBJECT, DUMP/RESTORE, WAIT.

use ferrocache_engine::glob::glob_match;
use ferrocache_engine::keyspace::{lfu_decr_and_return, lru_idle_secs, Shard};
use ferrocache_engine::lazyfree;
use ferrocache_engine::{notify, Value, ValueType};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::Args;
use rand::Rng;
use std::sync::atomic::Ordering::Relaxed;

const G: &str = "generic";

pub static COMMANDS: &[Command] = &[
    Command::new("del", -2, WRITE, (1, -1, 1), del).group(G),
    Command::new("unlink", -2, WRITE | FAST, (1, -1, 1), unlink).group(G),
    Command::new("exists", -2, READONLY | FAST, (1, -1, 1), exists).group(G),
    Command::new("type", 2, READONLY | FAST, (1, 1, 1), type_cmd).group(G),
    Command::new("expire", -3, WRITE | FAST, (1, 1, 1), expire).group(G),
    Command::new("pexpire", -3, WRITE | FAST, (1, 1, 1), pexpire).group(G),
    Command::new("expireat", -3, WRITE | FAST, (1, 1, 1), expireat).group(G),
    Command::new("pexpireat", -3, WRITE | FAST, (1, 1, 1), pexpireat).group(G),
    Command::new("expiretime", 2, READONLY | FAST, (1, 1, 1), expiretime).group(G),
    Command::new("pexpiretime", 2, READONLY | FAST, (1, 1, 1), pexpiretime).group(G),
    Command::new("ttl", 2, READONLY | FAST, (1, 1, 1), ttl).group(G),
    Command::new("pttl", 2, READONLY | FAST, (1, 1, 1), pttl).group(G),
    Command::new("persist", 2, WRITE | FAST, (1, 1, 1), persist).group(G),
    Command::new("rename", 3, WRITE, (1, 2, 1), rename).group(G),
    Command::new("renamenx", 3, WRITE | FAST, (1, 2, 1), renamenx).group(G),
    Command::new("copy", -3, WRITE | DENYOOM, (1, 2, 1), copy).group(G),
    Command::new("move", 3, WRITE | FAST, (1, 1, 1), move_cmd).group(G),
    Command::new("swapdb", 3, WRITE | FAST | ALL_SHARDS, (0, 0, 0), swapdb).group(G),
    Command::new("keys", 2, READONLY | ITERATES, (0, 0, 0), keys).group(G),
    Command::new("scan", -2, READONLY | ITERATES, (0, 0, 0), scan).group(G),
    Command::new("randomkey", 1, READONLY | ITERATES, (0, 0, 0), randomkey).group(G),
    Command::new("dbsize", 1, READONLY | FAST | ITERATES, (0, 0, 0), dbsize).group("server"),
    Command::new("flushdb", -1, WRITE | ALL_SHARDS, (0, 0, 0), flushdb).group("server"),
    Command::new("flushall", -1, WRITE | ALL_SHARDS, (0, 0, 0), flushall).group("server"),
    Command::new("touch", -2, READONLY | FAST, (1, -1, 1), touch).group(G),
    Command::new("object", -2, 0, (0, 0, 0), ferrocache_node::subcommand_required).group(G).subs(OBJECT_SUBS),
    Command::new("dump", 2, READONLY, (1, 1, 1), dump).group(G),
    Command::new("restore", -4, WRITE | DENYOOM, (1, 1, 1), restore).group(G),
    // RESTORE with the ASKING flag: what MIGRATE sends in cluster mode (Redis 7.0).
    Command::new("restore-asking", -4, WRITE | DENYOOM, (1, 1, 1), restore).group(G),
    Command::new("wait", 3, NOSCRIPT, (0, 0, 0), crate::replication::wait).group(G),
];

static OBJECT_SUBS: &[Command] = &[
    Command::new("object|encoding", 3, READONLY, (2, 2, 1), object_encoding).group(G),
    Command::new("object|freq", 3, READONLY, (2, 2, 1), object_freq).group(G),
    Command::new("object|idletime", 3, READONLY, (2, 2, 1), object_idletime).group(G),
    Command::new("object|refcount", 3, READONLY, (2, 2, 1), object_refcount).group(G),
    Command::new("object|help", 2, LOADING | STALE, (0, 0, 0), object_help).group(G),
];

fn del_generic(ctx: &mut Ctx, a: Args, lazy: bool) {
    let (mut db, out) = ctx.parts();
    let mut n = 0;
    for k in a.iter().skip(1) {
        if let Some(e) = db.remove(k) {
            if lazy {
                lazyfree::free_entry(e);
            }
            db.modified(k, notify::GENERIC, "del");
            n += 1;
        }
    }
    out.int(n);
}
fn del(ctx: &mut Ctx, a: Args) {
    let lazy = ctx.srv.config().hot.lazy_user_del.load(Relaxed);
    del_generic(ctx, a, lazy)
}
fn unlink(ctx: &mut Ctx, a: Args) {
    del_generic(ctx, a, true)
}

fn exists(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    let n = a.iter().skip(1).filter(|k| db.get_no_touch(k).is_some()).count();
    out.int(n as i64);
}

fn type_cmd(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match db.peek(&a[1]) {
        Some(e) => out.simple(e.value.value_type().name()),
        None => out.simple("none"),
    }
}

const EX_NX: u8 = 1;
const EX_XX: u8 = 2;
const EX_GT: u8 = 4;
const EX_LT: u8 = 8;

fn expire_generic(ctx: &mut Ctx, a: Args, basetime: i64, seconds: bool) {
    let mut f = 0u8;
    for o in a.iter().skip(3) {
        f |= if eq_ic(o, "nx") {
            EX_NX
        } else if eq_ic(o, "xx") {
            EX_XX
        } else if eq_ic(o, "gt") {
            EX_GT
        } else if eq_ic(o, "lt") {
            EX_LT
        } else {
            return ctx.out.error(&format!("ERR Unsupported option {}", String::from_utf8_lossy(o)));
        };
    }
    if f & EX_NX != 0 && f & (EX_XX | EX_GT | EX_LT) != 0 {
        return ctx.out.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if f & EX_GT != 0 && f & EX_LT != 0 {
        return ctx.out.error("ERR GT and LT options at the same time are not compatible");
    }
    let Some(mut when) = int_arg(ctx.out, &a[2]) else { return };
    let cmdname = ctx.cmd.full_name();
    let bad = format!("ERR invalid expire time in '{}' command", cmdname);
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return ctx.out.error(&bad);
        }
        when *= 1000;
    }
    if when > i64::MAX - basetime {
        return ctx.out.error(&bad);
    }
    when += basetime;
    let key = &a[1];
    let now = ctx.now_ms as i64;
    let (mut db, out) = ctx.parts();
    let cur = match db.get_mut(key) {
        None => return out.int(0),
        Some(e) => {
            if e.expire_at == 0 {
                -1
            } else {
                e.expire_at as i64
            }
        }
    };
    if (f & EX_NX != 0 && cur != -1)
        || (f & EX_XX != 0 && cur == -1)
        || (f & EX_GT != 0 && (when <= cur || cur == -1))
        || (f & EX_LT != 0 && cur != -1 && when >= cur)
    {
        return out.int(0);
    }
    let d = db.db;
    if when <= now {
        db.remove(key);
        db.modified(key, notify::GENERIC, "del");
        db.fx.propagate(d, vec![b"DEL".to_vec(), key.to_vec()]);
    } else {
        db.set_expire(key, when as u64);
        db.modified(key, notify::GENERIC, "expire");
        db.fx.propagate(d, vec![b"PEXPIREAT".to_vec(), key.to_vec(), when.to_string().into_bytes()]);
    }
    out.int(1);
    ctx.propagate_original = false;
}

fn expire(ctx: &mut Ctx, a: Args) {
    let now = ctx.now_ms as i64;
    expire_generic(ctx, a, now, true)
}
fn pexpire(ctx: &mut Ctx, a: Args) {
    let now = ctx.now_ms as i64;
    expire_generic(ctx, a, now, false)
}
fn expireat(ctx: &mut Ctx, a: Args) {
    expire_generic(ctx, a, 0, true)
}
fn pexpireat(ctx: &mut Ctx, a: Args) {
    expire_generic(ctx, a, 0, false)
}

fn ttl_generic(ctx: &mut Ctx, a: Args, ms: bool, absolute: bool) {
    let now = ctx.now_ms;
    let (mut db, out) = ctx.parts();
    match db.peek(&a[1]) {
        None => out.int(-2),
        Some(e) if e.expire_at == 0 => out.int(-1),
        Some(e) => {
            let v = if absolute {
                if ms {
                    e.expire_at as i64
                } else {
                    (e.expire_at / 1000) as i64
                }
            } else {
                let left = e.expire_at.saturating_sub(now) as i64;
                if ms {
                    left
                } else {
                    (left + 500) / 1000
                }
            };
            out.int(v)
        }
    }
}
fn ttl(ctx: &mut Ctx, a: Args) {
    ttl_generic(ctx, a, false, false)
}
fn pttl(ctx: &mut Ctx, a: Args) {
    ttl_generic(ctx, a, true, false)
}
fn expiretime(ctx: &mut Ctx, a: Args) {
    ttl_generic(ctx, a, false, true)
}
fn pexpiretime(ctx: &mut Ctx, a: Args) {
    ttl_generic(ctx, a, true, true)
}

fn persist(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if db.get_mut(&a[1]).is_some() && db.persist(&a[1]) {
        db.modified(&a[1], notify::GENERIC, "persist");
        out.int(1)
    } else {
        out.int(0)
    }
}

fn rename_generic(ctx: &mut Ctx, a: Args, nx: bool) {
    let (src, dst) = (&a[1], &a[2]);
    let (mut db, out) = ctx.parts();
    if db.get_mut(src).is_none() {
        return out.error(ERR_NO_KEY);
    }
    if src == dst {
        return if nx { out.int(0) } else { out.ok() };
    }
    if nx && db.get_mut(dst).is_some() {
        return out.int(0);
    }
    let e = db.remove(src).unwrap();
    let existed = db.remove(dst).is_some();
    db.insert_new(dst, e.value, e.expire_at);
    let d = db.db;
    db.fx.event(notify::GENERIC, "rename_from", d, src);
    db.fx.event(notify::GENERIC, "rename_to", d, dst);
    db.fx.touch(d, src);
    db.fx.touch(d, dst);
    let _ = existed;
    db.fx.dirty += 1;
    if nx {
        out.int(1)
    } else {
        out.ok()
    }
}
fn rename(ctx: &mut Ctx, a: Args) {
    rename_generic(ctx, a, false)
}
fn renamenx(ctx: &mut Ctx, a: Args) {
    rename_generic(ctx, a, true)
}

fn db_index_arg(ctx: &mut Ctx, a: &[u8]) -> Option<usize> {
    match parse_i64(a) {
        None => {
            ctx.out.error(ERR_NOT_INT);
            None
        }
        Some(n) if n < 0 || n as usize >= ctx.srv.num_dbs() => {
            ctx.out.error("ERR DB index is out of range");
            None
        }
        Some(n) => Some(n as usize),
    }
}

fn copy(ctx: &mut Ctx, a: Args) {
    let mut dbi = ctx.client.db;
    let mut replace = false;
    let mut j = 3;
    while j < a.len() {
        if eq_ic(&a[j], "replace") {
            replace = true;
        } else if eq_ic(&a[j], "db") && j + 1 < a.len() {
            let Some(d) = db_index_arg(ctx, &a[j + 1]) else { return };
            dbi = d;
            j += 1;
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
        j += 1;
    }
    if ctx.srv.cluster().enabled && (ctx.client.db != 0 || dbi != 0) {
        return ctx.out.error("ERR Copying to another database is not allowed in cluster mode");
    }
    let (src, dst) = (&a[1], &a[2]);
    let (mut db, out) = ctx.parts();
    if db.db == dbi && src == dst {
        return out.error("ERR source and destination objects are the same");
    }
    let Some(e) = db.get_mut(src) else { return out.int(0) };
    let (v, exp) = (e.value.deep_clone(), e.expire_at);
    let mut target = db.with_db(dbi);
    if target.get_mut(dst).is_some() {
        if !replace {
            return out.int(0);
        }
        target.remove(dst);
    }
    target.insert_new(dst, v, exp);
    target.modified(dst, notify::GENERIC, "copy_to");
    out.int(1);
}

fn move_cmd(ctx: &mut Ctx, a: Args) {
    if ctx.srv.cluster().enabled {
        return ctx.out.error("ERR MOVE is not allowed in cluster mode");
    }
    let Some(dbi) = db_index_arg(ctx, &a[2]) else { return };
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    if dbi == db.db {
        return out.error("ERR source and destination objects are the same");
    }
    if db.get_mut(key).is_none() {
        return out.int(0);
    }
    if db.with_db(dbi).get_mut(key).is_some() {
        return out.int(0);
    }
    let e = db.remove(key).unwrap();
    db.modified(key, notify::GENERIC, "move_from");
    let mut t = db.with_db(dbi);
    t.insert_new(key, e.value, e.expire_at);
    t.modified(key, notify::GENERIC, "move_to");
    out.int(1);
}

fn swapdb(ctx: &mut Ctx, a: Args) {
    if ctx.srv.cluster().enabled {
        return ctx.out.error("ERR SWAPDB is not allowed in cluster mode");
    }
    let (Some(x), Some(y)) = (parse_i64(&a[1]), parse_i64(&a[2])) else {
        return ctx.out.error("ERR invalid first DB index");
    };
    let n = ctx.srv.num_dbs() as i64;
    if x < 0 || x >= n || y < 0 || y >= n {
        return ctx.out.error("ERR DB index is out of range");
    }
    let (x, y) = (x as usize, y as usize);
    if x != y {
        // A watched key is touched when it exists in either database (it changes or appears).
        for (d, k) in ctx.srv.watches().keys_in(&[x, y]) {
            let other = if d == x { y } else { x };
            if ctx.db().with_db(d).exists(&k) || ctx.db().with_db(other).exists(&k) {
                ctx.srv.watches().touch(d, &k);
            }
        }
        ctx.fx.flushed_watches_done = true;
        ctx.guards.for_each_shard(|s| s.dbs.swap(x, y));
        ctx.fx.flushed.push(Some(x));
        ctx.fx.flushed.push(Some(y));
        ctx.fx.dirty += 1;
        ctx.srv.blocking().signal_dbs(&[x, y]);
    }
    ctx.out.ok();
}

/// Run `f` on each shard in turn: under the held guards when the command holds every shard
/// (inside EXEC), else locking one shard at a time.
pub fn each_shard(ctx: &mut Ctx, from: usize, mut f: impl FnMut(usize, &mut Shard) -> bool) {
    let n = ctx.srv.keyspace().num_shards();
    for i in from..n {
        let cont = if ctx.guards.holds_all() {
            f(i, ctx.guards.shard(i))
        } else {
            let mut g = ctx.srv.keyspace().lock_one(i);
            f(i, &mut g)
        };
        if !cont {
            break;
        }
    }
}

fn keys(ctx: &mut Ctx, a: Args) {
    let pat = a[1].to_vec();
    let db = ctx.client.db;
    let now = ctx.now_ms;
    let all = pat == b"*";
    let mut res: Vec<Vec<u8>> = Vec::new();
    each_shard(ctx, 0, |_, s| {
        for e in s.dbs[db].iter() {
            if e.expire_at != 0 && e.expire_at <= now {
                continue;
            }
            if all || glob_match(&pat, &e.key, false) {
                res.push(e.key.to_vec());
            }
        }
        true
    });
    ctx.out.array(res.len());
    for k in res {
        ctx.out.bulk(&k);
    }
}

/// Parse SCAN-family options from `start`: MATCH, COUNT, TYPE (when allowed).
pub fn scan_options(
    ctx: &mut Ctx,
    a: Args,
    start: usize,
    allow_type: bool,
) -> Option<(Option<Vec<u8>>, usize, Option<Vec<u8>>)> {
    let mut pat = None;
    let mut count = 10usize;
    let mut typ = None;
    let mut j = start;
    while j < a.len() {
        let left = a.len() - j - 1;
        if eq_ic(&a[j], "count") && left >= 1 {
            match parse_i64(&a[j + 1]) {
                None => {
                    ctx.out.error(ERR_NOT_INT);
                    return None;
                }
                Some(n) if n < 1 => {
                    ctx.out.error(ERR_SYNTAX);
                    return None;
                }
                Some(n) => count = n as usize,
            }
            j += 2;
        } else if eq_ic(&a[j], "match") && left >= 1 {
            let p = a[j + 1].to_vec();
            pat = if p == b"*" { None } else { Some(p) };
            j += 2;
        } else if eq_ic(&a[j], "type") && left >= 1 && allow_type {
            typ = Some(a[j + 1].to_vec());
            j += 2;
        } else {
            ctx.out.error(ERR_SYNTAX);
            return None;
        }
    }
    Some((pat, count, typ))
}

/// Parse a SCAN cursor (unsigned 64-bit) or write "ERR invalid cursor".
fn scan(ctx: &mut Ctx, a: Args) {
    let Some(cursor) = ferrocache_node::util::cursor_arg(ctx.out, &a[1]) else { return };
    let Some((pat, count, typ)) = scan_options(ctx, a, 2, true) else { return };
    // Redis 7.0 accepts unknown type names and then matches nothing.
    let unknown_type = typ.as_ref().is_some_and(|t| ValueType::from_name(t).is_none());
    let typ = typ.and_then(|t| ValueType::from_name(&t));
    let db = ctx.client.db;
    let now = ctx.now_ms;
    let n = ctx.srv.keyspace().num_shards() as u64;
    let mut res: Vec<Vec<u8>> = Vec::new();
    let mut next = 0u64;
    let mut visited = 0usize;
    if cursor < n {
        each_shard(ctx, cursor as usize, |i, s| {
            visited += 1;
            for e in s.dbs[db].iter() {
                if e.expire_at != 0 && e.expire_at <= now {
                    continue;
                }
                if let Some(p) = &pat {
                    if !glob_match(p, &e.key, false) {
                        continue;
                    }
                }
                if unknown_type {
                    continue;
                }
                if let Some(t) = typ {
                    if e.value.value_type() != t {
                        continue;
                    }
                }
                res.push(e.key.to_vec());
            }
            next = i as u64 + 1;
            if next >= n {
                next = 0;
                return false;
            }
            res.len() < count && visited < count.saturating_mul(100).max(4096)
        });
    }
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(res.len());
    for k in res {
        ctx.out.bulk(&k);
    }
}

/// A random live key of one shard's table: a random position, or a scan when that one is
/// logically expired.
fn random_live_key(t: &ferrocache_engine::keyspace::Table, now: u64, rng: &mut impl Rng) -> Option<Vec<u8>> {
    if t.is_empty() {
        return None;
    }
    let e = t.at(rng.gen_range(0..t.len()));
    if e.expire_at == 0 || e.expire_at > now {
        return Some(e.key.to_vec());
    }
    let live: Vec<_> = t.iter().filter(|e| e.expire_at == 0 || e.expire_at > now).collect();
    (!live.is_empty()).then(|| live[rng.gen_range(0..live.len())].key.to_vec())
}

/// RANDOMKEY: every key about equally likely. A dense keyspace is found by a few random
/// shards (O(1)); a sparse one (16 empty shards in a row) by one pass that keeps each shard
/// with probability len/total-so-far (weighted reservoir sampling: uniform over keys). Taking
/// the first non-empty shard after a random one made a key whose shard follows a long empty
/// run far more likely than its neighbour's (keyspace.tcl "RANDOMKEY" saw only one of 2 keys).
fn randomkey(ctx: &mut Ctx, _a: Args) {
    let db = ctx.client.db;
    let now = ctx.now_ms;
    let n = ctx.srv.keyspace().num_shards();
    let mut rng = rand::thread_rng();
    let mut found: Option<Vec<u8>> = None;
    for _ in 0..16 {
        let i = rng.gen_range(0..n);
        each_shard(ctx, i, |_, s| {
            found = random_live_key(&s.dbs[db], now, &mut rng);
            false
        });
        if found.is_some() {
            break;
        }
    }
    if found.is_none() {
        let mut total = 0usize;
        each_shard(ctx, 0, |_, s| {
            let len = s.dbs[db].len();
            if len > 0 {
                total += len;
                if rng.gen_range(0..total) < len {
                    if let Some(k) = random_live_key(&s.dbs[db], now, &mut rng) {
                        found = Some(k);
                    }
                }
            }
            true
        });
    }
    match found {
        Some(k) => ctx.out.bulk(&k),
        None => ctx.out.null(),
    }
}

fn dbsize(ctx: &mut Ctx, _a: Args) {
    // Like Redis, the size of the table: keys that are logically expired but not yet reclaimed
    // (lazily or by the active cycle) still count.
    let db = ctx.client.db;
    let mut total = 0;
    each_shard(ctx, 0, |_, s| {
        total += s.dbs[db].len();
        true
    });
    ctx.out.int(total as i64);
}

/// FLUSHALL/FLUSHDB's [ASYNC|SYNC]: Some(lazy) or None after a syntax error reply. Without an
/// option, lazyfree-lazy-user-flush decides.
fn flush_option(ctx: &mut Ctx, a: Args) -> Option<bool> {
    if a.len() > 2 {
        ctx.out.error(ERR_SYNTAX);
        return None;
    }
    if a.len() == 1 {
        return Some(ctx.srv.config().hot.lazy_user_flush.load(Relaxed));
    }
    if eq_ic(&a[1], "async") {
        Some(true)
    } else if eq_ic(&a[1], "sync") {
        Some(false)
    } else {
        ctx.out.error(ERR_SYNTAX);
        None
    }
}

/// FLUSHDB/FLUSHALL make EXEC fail only for watched keys that existed (Redis's
/// touchAllWatchedKeysInDb): a watched missing key is still missing afterwards.
fn touch_watched_existing(ctx: &mut Ctx, dbs: &[usize]) {
    for (d, k) in ctx.srv.watches().keys_in(dbs) {
        if ctx.db().with_db(d).exists(&k) {
            ctx.srv.watches().touch(d, &k);
        }
    }
    ctx.fx.flushed_watches_done = true;
    // Waiters on keys the flush deletes are re-checked (XREADGROUP answers that the stream no
    // longer exists: Redis's scanDatabaseForDeletedKeys).
    ctx.srv.blocking().signal_dbs(dbs);
}

fn flushdb(ctx: &mut Ctx, a: Args) {
    let Some(lazy) = flush_option(ctx, a) else { return };
    touch_watched_existing(ctx, &[ctx.client.db]);
    let n = ctx.db().clear(lazy);
    let d = ctx.client.db;
    ctx.fx.flushed.push(Some(d));
    ctx.fx.dirty += n as u64 + 1;
    ctx.out.ok();
}

fn flushall(ctx: &mut Ctx, a: Args) {
    let Some(lazy) = flush_option(ctx, a) else { return };
    let all: Vec<usize> = (0..ctx.srv.num_dbs()).collect();
    touch_watched_existing(ctx, &all);
    let mut n = 0;
    for d in 0..ctx.srv.num_dbs() {
        n += ctx.db().with_db(d).clear(lazy);
    }
    ctx.fx.flushed.push(None);
    ctx.fx.dirty += n as u64 + 1;
    ferrocache_node::persistence::after_flushall(ctx);
    ctx.out.ok();
}

fn touch(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    let n = a.iter().skip(1).filter(|k| db.get_mut(k).is_some()).count();
    out.int(n as i64);
}

fn object_encoding(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match db.peek(&a[2]) {
        Some(e) => out.bulk(e.value.encoding().as_bytes()),
        None => out.null(),
    }
}

fn object_freq(ctx: &mut Ctx, a: Args) {
    let lfu = ctx.srv.config().policy().is_lfu();
    let decay = ctx.access().lfu_decay_time;
    let now = ctx.now_ms;
    let (mut db, out) = ctx.parts();
    let Some(e) = db.peek(&a[2]) else { return out.null() };
    if !lfu {
        return out.error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    out.int(lfu_decr_and_return(e.lru, now, decay) as i64);
}

fn object_idletime(ctx: &mut Ctx, a: Args) {
    let lfu = ctx.srv.config().policy().is_lfu();
    let now = ctx.now_ms;
    let (mut db, out) = ctx.parts();
    let Some(e) = db.peek(&a[2]) else { return out.null() };
    if lfu {
        return out.error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    out.int(lru_idle_secs(e.lru, now) as i64);
}

fn object_refcount(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match db.peek(&a[2]) {
        // Redis shares small integers (refcount INT_MAX); we report 1 for all values.
        Some(e) => {
            let shared = matches!(&e.value, Value::Str(s) if ferrocache_engine::value::parse_i64_exact(s).is_some_and(|v| (0..10000).contains(&v)));
            out.int(if shared { i32::MAX as i64 } else { 1 })
        }
        None => out.null(),
    }
}

fn object_help(ctx: &mut Ctx, _a: Args) {
    let lines = [
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}

fn dump(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match db.get(&a[1]) {
        None => out.null(),
        Some(e) => out.bulk(&crate::server_cmds::dump_value(&e.value)),
    }
}

fn restore(ctx: &mut Ctx, a: Args) {
    let mut replace = false;
    let mut absttl = false;
    let mut idle: Option<i64> = None;
    let mut freq: Option<i64> = None;
    let mut j = 4;
    while j < a.len() {
        let left = a.len() - j - 1;
        if eq_ic(&a[j], "replace") {
            replace = true;
        } else if eq_ic(&a[j], "absttl") {
            absttl = true;
        } else if eq_ic(&a[j], "idletime") && left >= 1 && freq.is_none() {
            let Some(v) = int_arg(ctx.out, &a[j + 1]) else { return };
            if v < 0 {
                return ctx.out.error("ERR Invalid IDLETIME value, must be >= 0");
            }
            idle = Some(v);
            j += 1;
        } else if eq_ic(&a[j], "freq") && left >= 1 && idle.is_none() {
            let Some(v) = int_arg(ctx.out, &a[j + 1]) else { return };
            if !(0..=255).contains(&v) {
                return ctx.out.error("ERR Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = Some(v);
            j += 1;
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
        j += 1;
    }
    let Some(ttl) = int_arg(ctx.out, &a[2]) else { return };
    if ttl < 0 {
        return ctx.out.error("ERR Invalid TTL value, must be >= 0");
    }
    let now = ctx.now_ms as i64;
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    if !replace && db.get_mut(key).is_some() {
        return out.error("BUSYKEY Target key name already exists.");
    }
    let value = match crate::server_cmds::restore_value(&a[3]) {
        Ok(v) => v,
        Err(e) => return out.error(&e),
    };
    let expire_at = if ttl == 0 {
        0
    } else if absttl {
        ttl
    } else {
        ttl + now
    };
    let existed = db.remove(key).is_some();
    if ttl != 0 && expire_at <= now {
        if existed {
            db.modified(key, notify::GENERIC, "del");
        }
        return out.ok();
    }
    db.insert_new(key, value, expire_at.max(0) as u64);
    if let Some(f) = freq {
        if let Some(e) = db.get_mut(key) {
            e.lru = (e.lru & !255) | f as u32;
        }
    }
    if let Some(i) = idle {
        let lru = ferrocache_engine::keyspace::lru_clock((now - i * 1000).max(0) as u64);
        if let Some(e) = db.get_mut(key) {
            e.lru = lru;
        }
    }
    db.modified(key, notify::GENERIC, "restore");
    out.ok();
    if ttl != 0 && !absttl {
        // The TTL reaches AOF and replicas as an absolute time (restoreCommand's rewrite).
        let mut argv: Vec<Vec<u8>> = a.iter().map(|x| x.to_vec()).collect();
        argv[2] = expire_at.to_string().into_bytes();
        argv.push(b"ABSTTL".to_vec());
        let d = db.db;
        db.fx.propagate(d, argv);
        ctx.propagate_original = false;
    }
}
