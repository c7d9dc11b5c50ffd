//! The memcached side: executes parsed memcached requests (text, meta and binary protocols,
//! `ferrocache_protocol::memcache`) against the same keyspace as RESP, with memcached 1.6
//! semantics. Not part of the RESP command table: the memcached listener
//! (`crates/server/src/memcached.rs`) calls [`execute_text`] / [`execute_binary`].
//!
//! * Items live in database 0 as strings (`Value::Mc`: bytes + client flags + CAS; see
//!   `ferrocache_engine::mcitem`). A plain Redis string reads as flags 0; the first memcached
//!   hit upgrades it in place to an item with a fresh CAS. Keys holding other Redis types are
//!   invisible to memcached reads (misses), `add` on them answers NOT_STORED and `set` replaces.
//! * Every write records Redis write effects (propagated as SET/DEL/PEXPIREAT/PERSIST/FLUSHDB,
//!   keyspace events, WATCH and client-tracking invalidation) before the shard lock is released.
//! * Expiry follows memcached: 0 = never, up to 30 days relative seconds, beyond that absolute
//!   unix time, negative (or an absolute time in the past) = already expired.

use crate::node::{now_ms, Node};
use ferrocache_engine::mcitem::{self, McItem, FETCHED, KEY_BINARY, STALE, TOKEN_SENT};
use ferrocache_engine::{notify, Db, Effects, Entry, Value};
use ferrocache_protocol::memcache::binary::{self, BinaryStoreMode};
use ferrocache_protocol::memcache::meta::{self, MetaArithResult, MetaDeleteStatus, MetaItem, MetaStoreStatus};
use ferrocache_protocol::memcache::num::safe_strtoull;
use ferrocache_protocol::memcache::text::{self, TextReply};
use ferrocache_protocol::memcache::{
    BinaryCommand, BinaryRequest, Limits, MetaArgs, MetaRequest, MetaSetMode, Status, StoreCommand, TextRequest,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The version memcached clients see (`version`, `stats`).
pub const MC_VERSION: &str = "1.6.18";
/// memcached's REALTIME_MAXDELTA: 30 days.
const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;
/// The ElastiCache Auto Discovery key of engines older than 1.4.14.
pub const CLUSTER_KEY: &[u8] = b"AmazonElastiCache:cluster";

/// memcached's global counters (`stats`).
#[derive(Default)]
pub struct McStats {
    pub cmd_get: AtomicU64,
    pub cmd_set: AtomicU64,
    pub cmd_flush: AtomicU64,
    pub cmd_touch: AtomicU64,
    pub cmd_meta: AtomicU64,
    pub get_hits: AtomicU64,
    pub get_misses: AtomicU64,
    pub get_expired: AtomicU64,
    pub get_flushed: AtomicU64,
    pub delete_misses: AtomicU64,
    pub delete_hits: AtomicU64,
    pub incr_misses: AtomicU64,
    pub incr_hits: AtomicU64,
    pub decr_misses: AtomicU64,
    pub decr_hits: AtomicU64,
    pub cas_misses: AtomicU64,
    pub cas_hits: AtomicU64,
    pub cas_badval: AtomicU64,
    pub touch_hits: AtomicU64,
    pub touch_misses: AtomicU64,
    pub store_too_large: AtomicU64,
    pub store_no_memory: AtomicU64,
    pub total_items: AtomicU64,
    pub curr_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub bytes_read: AtomicU64,
    pub bytes_written: AtomicU64,
    pub auth_cmds: AtomicU64,
    pub auth_errors: AtomicU64,
}

/// One memcached connection as `stats conns` shows it.
pub struct McConnInfo {
    pub addr: String,
    pub listen_addr: String,
    pub last_cmd_ms: Arc<AtomicU64>,
}

/// Node-wide memcached state (a field of [`Node`]).
#[derive(Default)]
pub struct McState {
    pub stats: McStats,
    /// Bumped by every flush_all; a delayed flush only fires if no later flush_all came.
    pub flush_gen: AtomicU64,
    /// Absolute unix seconds of the pending/last flush_all (`stats settings` oldest).
    pub oldest_live: AtomicU64,
    pub verbosity: AtomicU64,
    pub conns: Mutex<HashMap<u64, McConnInfo>>,
    pub detail: PrefixStats,
    pub watchers: Watchers,
}

/// `watch fetchers|mutations|...` log streams (memcached's logger.c): item_get / item_store
/// lines in memcached's format. A watcher that does not keep up loses lines (bounded queue).
#[derive(Default)]
pub struct Watchers {
    any: AtomicBool,
    /// (flags, queue, lines lost since the last delivered one).
    list: Mutex<Vec<(u16, tokio::sync::mpsc::Sender<Vec<u8>>, u64)>>,
    gid: AtomicU64,
}

pub const LOG_FETCHERS: u16 = 1;
pub const LOG_MUTATIONS: u16 = 2;
pub const LOG_EVICTIONS: u16 = 4;
pub const LOG_CONNEVENTS: u16 = 8;

/// A `connevents` line: `conn_new` (reason None) or `conn_close` with memcached's reason.
pub fn log_conn(srv: &Node, id: u64, peer: &std::net::SocketAddr, reason: Option<&str>) {
    let w = &srv.mc.watchers;
    if !w.wants(LOG_CONNEVENTS) {
        return;
    }
    let (ip, port) = (peer.ip(), peer.port());
    match reason {
        None => w.log(LOG_CONNEVENTS, format_args!("type=conn_new rip={ip} rport={port} transport=tcp cfd={id}")),
        Some(r) => w.log(
            LOG_CONNEVENTS,
            format_args!("type=conn_close rip={ip} rport={port} transport=tcp reason={r} cfd={id}"),
        ),
    }
}

/// An `evictions` line for a key of database 0 the engine evicted (its item is gone: the
/// fields memcached takes from it are reported empty).
pub fn log_eviction(srv: &Node, key: &[u8]) {
    let w = &srv.mc.watchers;
    if !w.wants(LOG_EVICTIONS) {
        return;
    }
    let k = uri_key(key);
    w.log(LOG_EVICTIONS, format_args!("type=eviction key={k} fetch=no ttl=-1 la=0 clsid=0 size=0"));
}

impl Watchers {
    fn add(&self, flags: u16) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
        // About memcached's default 256 KB watcher buffer of ~200-byte lines.
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let mut l = self.list.lock();
        l.push((flags, tx, 0));
        self.any.store(true, Relaxed);
        rx
    }

    /// Watchers now connected (`stats`: log_watchers).
    pub fn count(&self) -> usize {
        let mut l = self.list.lock();
        l.retain(|(_, tx, _)| !tx.is_closed());
        l.len()
    }

    #[inline]
    fn wants(&self, flag: u16) -> bool {
        self.any.load(Relaxed) && self.list.lock().iter().any(|(f, _, _)| f & flag != 0)
    }

    fn log(&self, flag: u16, body: std::fmt::Arguments) {
        let gid = self.gid.fetch_add(1, Relaxed) + 1;
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let line = format!("ts={}.{} gid={gid} {body}\n", t.as_secs(), t.subsec_micros()).into_bytes();
        let mut l = self.list.lock();
        use tokio::sync::mpsc::error::TrySendError;
        l.retain_mut(|(f, tx, skipped)| {
            if *f & flag == 0 {
                return !tx.is_closed();
            }
            // memcached's logger: a watcher that fell behind first gets "skipped=N".
            if *skipped > 0 {
                match tx.try_send(format!("skipped={skipped}\n").into_bytes()) {
                    Ok(()) => *skipped = 0,
                    Err(TrySendError::Full(_)) => {
                        *skipped += 1;
                        return true;
                    }
                    Err(TrySendError::Closed(_)) => return false,
                }
            }
            match tx.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    *skipped += 1;
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
        self.any.store(!l.is_empty(), Relaxed);
    }
}

fn uri_key(key: &[u8]) -> String {
    let mut v = Vec::new();
    uriencode(key, &mut v);
    String::from_utf8(v).unwrap_or_default()
}

/// A fetchers line (`type=item_get`): `hit` = (slab class, value bytes).
fn log_get(cx: &Cx, key: &[u8], hit: Option<(usize, usize)>) {
    let w = &cx.srv.mc.watchers;
    if !w.wants(LOG_FETCHERS) {
        return;
    }
    let (status, cls, n) = match hit {
        Some((c, n)) => ("found", c, n),
        None => ("not_found", 0, 0),
    };
    let k = uri_key(key);
    w.log(LOG_FETCHERS, format_args!("type=item_get key={k} status={status} clsid={cls} cfd={} size={n}", cx.conn));
}

/// A mutations line (`type=item_store`).
fn log_store(cx: &Cx, key: &[u8], status: &str, cmd: &str, exptime: i64, flags: u32, n: usize) {
    let w = &cx.srv.mc.watchers;
    if !w.wants(LOG_MUTATIONS) {
        return;
    }
    let ttl = match exp_of(exptime, cx.now) {
        Exp::At(ms) => ms.saturating_sub(cx.now).div_ceil(1000),
        _ => 0,
    };
    let cls = slab_class(item_total_size(key.len(), flags, n));
    let k = uri_key(key);
    w.log(
        LOG_MUTATIONS,
        format_args!(
            "type=item_store key={k} status={status} cmd={cmd} ttl={ttl} clsid={cls} cfd={} size={n}",
            cx.conn
        ),
    );
}

/// `watch [fetchers|mutations|...]` (process_watch_command).
fn watch(srv: &Node, conn: &McConn, args: &[&[u8]], out: &mut Vec<u8>) -> Outcome {
    let line = |out: &mut Vec<u8>, l: &str| text::encode_line(out, l.as_bytes(), false);
    if !out.is_empty() {
        line(out, "ERROR cannot pipeline other commands before watch");
        return Outcome::Continue;
    }
    let mut flags = 0u16;
    for a in args.iter().filter(|a| **a != b"noreply") {
        match *a {
            b"fetchers" => flags |= LOG_FETCHERS,
            b"mutations" => flags |= LOG_MUTATIONS,
            b"evictions" => flags |= LOG_EVICTIONS,
            b"connevents" => flags |= LOG_CONNEVENTS,
            b"rawcmds" | b"sysevents" | b"proxyreqs" | b"proxyevents" | b"proxyuser" => flags |= 0x100,
            _ => {
                TextReply::Error.encode(out, false);
                return Outcome::Continue;
            }
        }
    }
    if flags == 0 {
        flags = LOG_FETCHERS;
    }
    *conn.watch.lock() = Some(srv.mc.watchers.add(flags));
    line(out, "OK");
    Outcome::Watch
}

/// `stats detail on|off|dump`: per-prefix get/hit/set/del counters (memcached's
/// stats_prefix.c); the prefix is the key up to its first `:`, keys without one are not counted.
/// Classic text and binary get/store/delete requests record, meta requests do not (as memcached).
#[derive(Default)]
pub struct PrefixStats {
    pub enabled: AtomicBool,
    /// (prefix, [get, hit, set, del]) in first-seen order.
    counters: Mutex<Vec<(Vec<u8>, [u64; 4])>>,
}

#[derive(Clone, Copy)]
enum PrefixOp {
    Get(bool),
    Set,
    Del,
}

impl PrefixStats {
    fn record(&self, key: &[u8], op: PrefixOp) {
        if !self.enabled.load(Relaxed) {
            return;
        }
        let Some(i) = key.iter().position(|&c| c == b':') else { return };
        let prefix = &key[..i];
        let mut m = self.counters.lock();
        let idx = match m.iter().position(|(p, _)| p == prefix) {
            Some(x) => x,
            None => {
                m.push((prefix.to_vec(), [0; 4]));
                m.len() - 1
            }
        };
        let c = &mut m[idx].1;
        match op {
            PrefixOp::Get(hit) => {
                c[0] += 1;
                c[1] += hit as u64;
            }
            PrefixOp::Set => c[2] += 1,
            PrefixOp::Del => c[3] += 1,
        }
    }

    /// The `stats detail dump` text, `END\r\n` included.
    pub fn dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (p, c) in self.counters.lock().iter() {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(p);
            out.extend_from_slice(format!(" get {} hit {} set {} del {}\r\n", c[0], c[1], c[2], c[3]).as_bytes());
        }
        out.extend_from_slice(b"END\r\n");
        out
    }

    fn clear(&self) {
        self.counters.lock().clear();
    }
}

impl McState {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }
}

/// Per-connection state.
pub struct McConn {
    pub id: u64,
    pub last_cmd_ms: Arc<AtomicU64>,
    /// False until the client logs in, on a node that requires it ([`auth_required`]).
    pub authenticated: AtomicBool,
    /// Set by `watch`: the log lines this connection now streams (see [`Watchers`]).
    pub watch: Mutex<Option<tokio::sync::mpsc::Receiver<Vec<u8>>>>,
}

/// What the connection loop does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    /// Flush what was written, then close.
    Close,
    /// The connection became a log watcher (`watch`): write what is pending, then only stream
    /// the lines of `McConn::watch` (further input is ignored, as memcached's conn_watch).
    Watch,
}

/// Parser limits from the config (`memcached-item-size-max`).
pub fn limits(srv: &Node) -> Limits {
    let max = srv.config.hot.mc_item_size_max.load(Relaxed);
    Limits { item_size_max: max, ..Limits::default() }
}

/// Whether this node runs as a memcached-only engine (`engine memcached`).
pub fn memcached_engine(srv: &Node) -> bool {
    srv.config.hot.mc_engine.load(Relaxed)
}

// ------------------------------------------------------------------ time and expiry

/// A memcached expiry resolved to the engine's absolute milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exp {
    Never,
    At(u64),
    /// Already expired (negative, or an absolute time not in the future).
    Past,
}

/// memcached's `realtime()`.
fn exp_of(exptime: i64, now_ms: u64) -> Exp {
    if exptime == 0 {
        Exp::Never
    } else if exptime < 0 {
        Exp::Past
    } else if exptime > REALTIME_MAXDELTA {
        let at = exptime as u64 * 1000;
        if at <= now_ms {
            Exp::Past
        } else {
            Exp::At(at)
        }
    } else {
        Exp::At(now_ms + exptime as u64 * 1000)
    }
}

/// Seconds of TTL left for `mg t` / `ma t` (None = never expires).
fn ttl_left(expire_at: u64, now_ms: u64) -> Option<u32> {
    if expire_at == 0 {
        None
    } else {
        Some((expire_at.saturating_sub(now_ms).div_ceil(1000)).min(u32::MAX as u64) as u32)
    }
}

fn exp_ms(e: Exp) -> u64 {
    match e {
        Exp::Never => 0,
        Exp::At(ms) => ms,
        Exp::Past => 1,
    }
}

// ------------------------------------------------------------------ execution context

struct Cx<'s> {
    srv: &'s Arc<Node>,
    /// The connection's id (`cfd=` of watch lines; 0 when none).
    conn: u64,
    now: u64,
    now_secs: u32,
    /// Effect sinks exist: build propagation argv.
    prop: bool,
}

impl<'s> Cx<'s> {
    fn new(srv: &'s Arc<Node>) -> Self {
        let now = now_ms();
        Cx { srv, conn: 0, now, now_secs: (now / 1000) as u32, prop: srv.has_sinks.load(Relaxed) }
    }
    fn st(&self) -> &McStats {
        &self.srv.mc.stats
    }
    /// Run `f` on database 0 with `key`'s shard locked; effects are applied before unlocking.
    fn with_key<R>(&self, key: &[u8], f: impl FnOnce(&Cx, &mut Db) -> R) -> R {
        let mut guards = self.srv.ks.lock_keys([key]);
        crate::persistence::before_write_any(self.srv, &mut guards);
        let mut fx = Effects::default();
        let r = {
            let mut db = self.srv.db(&mut guards, &mut fx, 0, self.now);
            f(self, &mut db)
        };
        if !fx.is_empty() {
            self.srv.apply_effects(&mut fx, 0, None);
        }
        r
    }
    fn propagate(&self, db: &mut Db, argv: impl FnOnce() -> Vec<Vec<u8>>) {
        if self.prop {
            db.fx.propagate(0, argv());
        } else {
            self.srv.counters.propagated.fetch_add(1, Relaxed);
        }
    }
    /// Room for a write: evict if needed. False = refuse (Redis engine with noeviction).
    fn memory_ok(&self) -> bool {
        if crate::ensure_memory(self.srv, self.now) {
            return true;
        }
        if memcached_engine(self.srv) {
            return true; // memcached mode: sets never fail for lack of memory
        }
        McState::bump(&self.st().store_no_memory);
        false
    }
}

/// The item behind an entry, upgrading a plain Redis string (fresh CAS, flags 0). None for
/// other Redis types.
fn as_item(e: &mut Entry, now_secs: u32) -> Option<&mut McItem> {
    match &mut e.value {
        Value::Mc(_) => {}
        Value::Str(_) | Value::Raw(_) => {
            let data = e.value.as_bytes().unwrap().to_vec();
            e.value = Value::Mc(McItem::new(&data, 0, now_secs));
        }
        _ => return None,
    }
    match &mut e.value {
        Value::Mc(m) => Some(m),
        _ => None,
    }
}

/// Lookup of a string key. `touch`: LRU bump (and keyspace hit/miss counting). Returns the
/// entry and whether a miss was an expiry.
fn lookup<'d>(db: &'d mut Db, key: &[u8], touch: bool) -> (Option<&'d mut Entry>, bool) {
    let ks = db.keyspace();
    let si = ks.shard_of(key);
    let before = db.guards.shard(si).stats.expired;
    let found = if touch { db.get(key).is_some() } else { db.get_mut(key).is_some() };
    if !found {
        let expired = db.guards.shard(si).stats.expired != before;
        return (None, expired);
    }
    let e = db.peek(key).unwrap();
    if e.value.as_bytes().is_none() {
        return (None, false);
    }
    (Some(e), false)
}

/// Store an item (replacing whatever is there) with its expiry and record the write.
fn put(cx: &Cx, db: &mut Db, key: &[u8], item: McItem, exp: Exp, event: &'static str) {
    if exp == Exp::Past {
        remove_key(cx, db, key);
        return;
    }
    let data = if cx.prop { Some(item.data().to_vec()) } else { None };
    let (flags, cas) = (item.flags(), item.cas());
    db.set(key, Value::Mc(item), false);
    if let Exp::At(ms) = exp {
        db.set_expire(key, ms);
    }
    db.modified(key, notify::STRING, event);
    cx.propagate(db, || {
        let mut v = vec![b"SET".to_vec(), key.to_vec(), data.unwrap_or_default()];
        if let Exp::At(ms) = exp {
            v.push(b"PXAT".to_vec());
            v.push(ms.to_string().into_bytes());
        }
        v
    });
    cx.propagate(db, || meta_argv(key, flags, cas));
}

/// How an item's memcached metadata travels in the replication stream and the AOF: a
/// `PING "ferrocache-mcmeta <flags> <cas> <key>"` right after the SET of its bytes. One
/// stream serves every replica (offsets must agree), so it has to be valid Redis: a
/// redis-server replica (or redis-check-aof) sees a harmless PING and keeps the plain string;
/// a ferrocache replica or AOF load applies it with `apply_meta`.
pub const MC_META: &[u8] = b"ferrocache-mcmeta ";

pub fn meta_argv(key: &[u8], flags: u32, cas: u64) -> Vec<Vec<u8>> {
    let mut p = MC_META.to_vec();
    p.extend_from_slice(format!("{} {} ", flags, cas).as_bytes());
    p.extend_from_slice(key);
    vec![b"PING".to_vec(), p]
}

/// PING with a `MC_META` payload from our primary or the AOF: give the key (a string just
/// written by the SET before it) the primary's flags and CAS, and pass the PING on (AOF,
/// sub-replicas). Returns false when the payload is not one.
pub fn apply_meta(ctx: &mut crate::Ctx, payload: &[u8]) -> bool {
    let Some(rest) = payload.strip_prefix(MC_META) else { return false };
    let mut it = rest.splitn(3, |&c| c == b' ');
    let num = |b: Option<&[u8]>| std::str::from_utf8(b?).ok()?.parse::<u64>().ok();
    let (Some(flags), Some(cas), Some(key)) = (num(it.next()), num(it.next()), it.next()) else { return false };
    let srv = ctx.srv;
    let access = ctx.access();
    let mut guards = srv.ks.lock_keys([key]);
    // The entry is modified in place: a running snapshot keeps its pre-image first.
    crate::persistence::before_write_any(srv, &mut guards);
    let mut db = Db::new(&mut guards, &mut *ctx.fx, ctx.client.db, ctx.now_ms).with_access(access).expiring(false);
    if let Some(e) = db.peek(key) {
        if let Some(data) = e.value.as_bytes() {
            let atime = (ctx.now_ms / 1000) as u32;
            let mut item = McItem::new(data, flags as u32, atime);
            item.set_cas(cas);
            e.value = Value::Mc(item);
        }
    }
    mcitem::observe_cas(cas);
    let d = db.db;
    db.fx.propagate(d, vec![b"PING".to_vec(), payload.to_vec()]);
    true
}

/// Delete a key, recording the write. Returns whether it existed.
fn remove_key(cx: &Cx, db: &mut Db, key: &[u8]) -> bool {
    if db.remove(key).is_some() {
        db.modified(key, notify::GENERIC, "del");
        cx.propagate(db, || vec![b"DEL".to_vec(), key.to_vec()]);
        true
    } else {
        false
    }
}

/// Change an existing key's expiry, recording the write.
fn set_exp(cx: &Cx, db: &mut Db, key: &[u8], exp: Exp) {
    match exp {
        Exp::Past => {
            remove_key(cx, db, key);
        }
        Exp::Never => {
            if db.persist(key) {
                db.modified(key, notify::GENERIC, "persist");
                cx.propagate(db, || vec![b"PERSIST".to_vec(), key.to_vec()]);
            }
        }
        Exp::At(ms) => {
            db.set_expire(key, ms);
            db.modified(key, notify::GENERIC, "expire");
            cx.propagate(db, || vec![b"PEXPIREAT".to_vec(), key.to_vec(), ms.to_string().into_bytes()]);
        }
    }
}

// ------------------------------------------------------------------ storage core

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreResult {
    Stored(u64),
    NotStored,
    Exists,
    NotFound,
}

impl StoreResult {
    /// The status word `watch mutations` logs for it.
    fn watch_name(&self) -> &'static str {
        match self {
            StoreResult::Stored(_) => "stored",
            StoreResult::NotStored => "not_stored",
            StoreResult::Exists => "exists",
            StoreResult::NotFound => "not_found",
        }
    }
}

struct StoreReq<'a> {
    key: &'a [u8],
    mode: Mode,
    flags: u32,
    exptime: i64,
    data: &'a [u8],
    /// CAS to compare (0 = none).
    cas: u64,
    /// `ms I` in CAS mode: a lower CAS stores the value as stale.
    set_stale: bool,
    key_binary: bool,
}

/// memcached's `do_store_item`.
fn store(cx: &Cx, db: &mut Db, r: &StoreReq) -> StoreResult {
    McState::bump(&cx.st().cmd_set);
    let now_secs = cx.now_secs;
    let (found, _) = lookup(db, r.key, false);
    let Some(e) = found else {
        // A key of another Redis type: `add` cannot add, `set` replaces it.
        let other_type = db.peek(r.key).is_some();
        return match r.mode {
            Mode::Add if other_type => StoreResult::NotStored,
            Mode::Add | Mode::Set => {
                let mut item = McItem::new(r.data, r.flags, now_secs);
                if r.key_binary {
                    item.add_bits(KEY_BINARY);
                }
                let cas = item.cas();
                McState::bump(&cx.st().total_items);
                put(cx, db, r.key, item, exp_of(r.exptime, cx.now), "set");
                StoreResult::Stored(cas)
            }
            Mode::Cas => {
                McState::bump(&cx.st().cas_misses);
                StoreResult::NotFound
            }
            _ => StoreResult::NotStored,
        };
    };
    let old_expire = e.expire_at;
    let old = as_item(e, now_secs).expect("string");
    #[derive(PartialEq)]
    enum CasRes {
        None,
        Match,
        BadVal,
        Stale,
    }
    let cas_res = if r.cas == 0 {
        CasRes::None
    } else if r.cas == old.cas() {
        CasRes::Match
    } else if r.set_stale && r.cas < old.cas() {
        CasRes::Stale
    } else {
        CasRes::BadVal
    };
    let old_exp = if old_expire == 0 { Exp::Never } else { Exp::At(old_expire) };
    let mut item;
    let mut exp = exp_of(r.exptime, cx.now);
    let event;
    match r.mode {
        Mode::Add => {
            // memcached bumps the existing item in the LRU and refuses.
            old.set_atime(now_secs);
            return StoreResult::NotStored;
        }
        Mode::Cas => match cas_res {
            CasRes::Match => {
                McState::bump(&cx.st().cas_hits);
                item = McItem::new(r.data, r.flags, now_secs);
                event = "set";
            }
            CasRes::Stale => {
                McState::bump(&cx.st().cas_hits);
                item = McItem::new(r.data, r.flags, now_secs);
                item.add_bits(STALE | (old.bits() & TOKEN_SENT));
                exp = old_exp;
                event = "set";
            }
            _ => {
                McState::bump(&cx.st().cas_badval);
                return StoreResult::Exists;
            }
        },
        Mode::Append | Mode::Prepend => {
            if cas_res != CasRes::None && cas_res != CasRes::Match {
                return StoreResult::Exists;
            }
            let mut data = Vec::with_capacity(old.data().len() + r.data.len());
            if r.mode == Mode::Append {
                data.extend_from_slice(old.data());
                data.extend_from_slice(r.data);
            } else {
                data.extend_from_slice(r.data);
                data.extend_from_slice(old.data());
            }
            item = McItem::new(&data, old.flags(), now_secs);
            item.add_bits(old.bits() & KEY_BINARY);
            exp = old_exp;
            event = if r.mode == Mode::Append { "append" } else { "set" };
        }
        Mode::Set | Mode::Replace => {
            item = McItem::new(r.data, r.flags, now_secs);
            event = "set";
        }
    }
    if r.key_binary {
        item.add_bits(KEY_BINARY);
    }
    let cas = item.cas();
    McState::bump(&cx.st().total_items);
    put(cx, db, r.key, item, exp, event);
    StoreResult::Stored(cas)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delta {
    Ok { value: u64, cas: u64 },
    NonNumeric,
    NotFound,
    CasMismatch,
}

/// memcached's `do_add_delta` (64-bit wrap on incr, floor 0 on decr; the new value is written
/// in place, space padded, when it is not longer than the old one).
fn add_delta(cx: &Cx, db: &mut Db, key: &[u8], incr: bool, delta: u64, cas: u64) -> Delta {
    let (found, _) = lookup(db, key, false);
    let Some(e) = found else {
        return Delta::NotFound;
    };
    let it = as_item(e, cx.now_secs).expect("string");
    if it.data().is_empty() {
        return Delta::NonNumeric;
    }
    if cas != 0 && it.cas() != cas {
        return Delta::CasMismatch;
    }
    let Some(v) = safe_strtoull(it.data()) else {
        return Delta::NonNumeric;
    };
    let value = if incr { v.wrapping_add(delta) } else { v.saturating_sub(delta) };
    if incr {
        McState::bump(&cx.st().incr_hits);
    } else {
        McState::bump(&cx.st().decr_hits);
    }
    let mut b = itoa::Buffer::new();
    let s = b.format(value).as_bytes();
    if s.len() <= it.data().len() {
        let mut padded = s.to_vec();
        padded.resize(it.data().len(), b' ');
        it.set_data(&padded);
    } else {
        // memcached allocates a new item: the stale/token/fetched bits do not survive.
        it.set_data(s);
        it.set_bits(0);
    }
    it.set_cas(mcitem::next_cas());
    it.set_atime(cx.now_secs);
    let new_cas = it.cas();
    let flags = it.flags();
    let data = if cx.prop { Some(it.data().to_vec()) } else { None };
    db.modified(key, notify::STRING, if incr { "incrby" } else { "decrby" });
    cx.propagate(db, || vec![b"SET".to_vec(), key.to_vec(), data.unwrap_or_default(), b"KEEPTTL".to_vec()]);
    cx.propagate(db, || meta_argv(key, flags, new_cas));
    Delta::Ok { value, cas: new_cas }
}

/// Create a counter item holding `initial` (binary incr miss, `ma N`). Returns its CAS.
fn vivify_counter(cx: &Cx, db: &mut Db, key: &[u8], initial: u64, exp: Exp) -> u64 {
    let item = McItem::new(itoa::Buffer::new().format(initial).as_bytes(), 0, cx.now_secs);
    let cas = item.cas();
    McState::bump(&cx.st().cmd_set);
    McState::bump(&cx.st().total_items);
    put(cx, db, key, item, exp, "set");
    cas
}

/// get/gets/gat/gats (and binary get/touch/gat) of one key: fetch semantics (LRU, fetched
/// bit), `touch`: new expiry. `f` sees the item under the shard lock (replies are encoded
/// there, so a hit's value is copied once, into the output buffer).
fn fetch<R>(cx: &Cx, db: &mut Db, key: &[u8], touch: Option<Exp>, f: impl FnOnce(&McItem) -> R) -> Option<R> {
    let (found, expired) = lookup(db, key, true);
    let Some(e) = found else {
        if expired {
            McState::bump(&cx.st().get_expired);
        }
        return None;
    };
    let it = as_item(e, cx.now_secs)?;
    it.add_bits(FETCHED);
    it.set_atime(cx.now_secs);
    let r = f(it);
    if let Some(x) = touch {
        set_exp(cx, db, key, x);
    }
    Some(r)
}

fn flush_db0(srv: &Arc<Node>) {
    let mut guards = srv.ks.lock_all();
    crate::persistence::before_write_any(srv, &mut guards);
    let mut fx = Effects::default();
    let n = {
        let mut db = Db::new(&mut guards, &mut fx, 0, now_ms()).expiring(srv.expire_allowed());
        db.clear(false)
    };
    fx.flushed.push(Some(0));
    fx.dirty += n as u64 + 1;
    fx.propagate(0, vec![b"FLUSHDB".to_vec()]);
    srv.apply_effects(&mut fx, 0, None);
}

/// When a `flush_all <exptime>` takes effect, as memcached 1.6's `process_flush_all_command`
/// computes it: `oldest_live = realtime(exptime) - 1` (seconds), where `realtime` treats values
/// above 30 days as absolute unix times and maps one at or before the process start to 1, so
/// `oldest_live` becomes 0 and disables flushing (a no-op that still replaces a pending delayed
/// flush). Zero or negative means now; `exptime` is the int32 memcached's `safe_strtol` keeps
/// (`99999999999` wraps to 1215752191, a time in 2008: a no-op).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlushAt {
    Now,
    At(u64),
    Disabled,
}

fn flush_at(exptime: i64, now_ms: u64, start_ms: u64) -> FlushAt {
    if exptime <= 0 {
        return FlushAt::Now;
    }
    // memcached's process_started is 2 s before the real start (ITEM_UPDATE_INTERVAL aside).
    let started = (start_ms / 1000).saturating_sub(2) as i64;
    let at_ms = if exptime > REALTIME_MAXDELTA {
        if exptime <= started {
            return FlushAt::Disabled;
        }
        (exptime as u64 - 1) * 1000
    } else {
        now_ms + (exptime as u64 - 1) * 1000
    };
    if at_ms <= now_ms {
        FlushAt::Now
    } else {
        FlushAt::At(at_ms)
    }
}

/// flush_all: items stored before the flush time become invalid (see [`flush_at`]). Every
/// flush_all replaces a pending delayed one.
fn flush_all(srv: &Arc<Node>, delay: i64) {
    McState::bump(&srv.mc.stats.cmd_flush);
    let gen = srv.mc.flush_gen.fetch_add(1, Relaxed) + 1;
    let now = now_ms();
    match flush_at(delay, now, srv.start_ms) {
        FlushAt::Disabled => srv.mc.oldest_live.store(0, Relaxed),
        FlushAt::Now => {
            srv.mc.oldest_live.store(now / 1000, Relaxed);
            flush_db0(srv);
        }
        FlushAt::At(ms) => {
            srv.mc.oldest_live.store(ms / 1000, Relaxed);
            let s = srv.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(ms.saturating_sub(now_ms()))).await;
                        if s.mc.flush_gen.load(Relaxed) == gen {
                            flush_db0(&s);
                        }
                    });
                }
                Err(_) => {
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(ms.saturating_sub(now_ms())));
                        if s.mc.flush_gen.load(Relaxed) == gen {
                            flush_db0(&s);
                        }
                    });
                }
            }
        }
    }
}

// ------------------------------------------------------------------ auto discovery

/// The Auto Discovery payload: `<version>\n<host>|<ip>|<port> ...\n` (nodes sorted by host).
pub fn cluster_payload(srv: &Node) -> Vec<u8> {
    let version = srv.config.get("memcached-cluster-version").unwrap_or_else(|| "1".into());
    let nodes = srv.config.get("memcached-cluster-nodes").unwrap_or_default();
    cluster_body(&version, &nodes)
}

/// `cluster_payload` from raw config values.
pub fn cluster_body(version: &str, nodes: &str) -> Vec<u8> {
    let mut list: Vec<&str> = nodes.split([' ', ',']).filter(|s| !s.is_empty()).collect();
    list.sort_by(|a, b| a.split('|').next().cmp(&b.split('|').next()).then(a.cmp(b)));
    let mut body = Vec::new();
    body.extend_from_slice(version.trim().as_bytes());
    body.push(b'\n');
    body.extend_from_slice(list.join(" ").as_bytes());
    body.push(b'\n');
    body
}

/// `config get cluster` reply: `CONFIG cluster 0 <bytes>\r\n<body>\r\nEND\r\n`.
pub fn encode_config_cluster(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(b"CONFIG cluster 0 ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\nEND\r\n");
}

/// ElastiCache's `config get cluster` is not a memcached command: handle it before parsing.
/// Returns the bytes consumed when `buf` starts with a complete `config ...` line.
pub fn try_config_line(srv: &Node, buf: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    if !buf.starts_with(b"config ") {
        return None;
    }
    let nl = memchr::memchr(b'\n', buf)?;
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let toks: Vec<&[u8]> = line.split(|&b| b == b' ').filter(|t| !t.is_empty()).collect();
    if toks.len() == 3 && toks[1] == b"get" && toks[2] == b"cluster" {
        encode_config_cluster(out, &cluster_payload(srv));
        return Some(nl + 1);
    }
    None
}

fn cluster_configured(srv: &Node) -> bool {
    srv.config.get("memcached-cluster-nodes").is_some_and(|n| !n.trim().is_empty())
}

// ------------------------------------------------------------------ text protocol

/// Execute one text or meta request, appending the reply to `out`.
/// A request that changes the keyspace (paused by FAILOVER, refused on a read-only replica).
pub fn text_is_write(req: &TextRequest<'_>) -> bool {
    match req {
        TextRequest::Get { exptime, .. } => exptime.is_some(),
        TextRequest::Store { .. }
        | TextRequest::Delete { .. }
        | TextRequest::Arithmetic { .. }
        | TextRequest::Touch { .. }
        | TextRequest::FlushAll { .. } => true,
        TextRequest::Meta(m) => match m {
            MetaRequest::Get(a) => a.flags.vivify_ttl.is_some() || a.flags.ttl.is_some(),
            MetaRequest::Set { .. } | MetaRequest::Delete(_) | MetaRequest::Arithmetic { .. } => true,
            _ => false,
        },
        _ => false,
    }
}

pub fn binary_is_write(req: &BinaryRequest<'_>) -> bool {
    matches!(
        req.command,
        BinaryCommand::Touch { .. }
            | BinaryCommand::GetAndTouch { .. }
            | BinaryCommand::Store { .. }
            | BinaryCommand::Concat { .. }
            | BinaryCommand::Delete { .. }
            | BinaryCommand::Arithmetic { .. }
            | BinaryCommand::Flush { .. }
    )
}

/// A read-only replica refuses memcached writes (its data is its primary's).
fn replica_refuses(srv: &Node) -> bool {
    srv.repl.is_replica.load(Relaxed) && srv.config.get_bool("replica-read-only")
}

pub const MC_READONLY: &str = "SERVER_ERROR READONLY You can't write against a read only replica.\r\n";

pub fn execute_text(srv: &Arc<Node>, conn: &McConn, req: TextRequest<'_>, out: &mut Vec<u8>) -> Outcome {
    if text_is_write(&req) && replica_refuses(srv) {
        out.extend_from_slice(MC_READONLY.as_bytes());
        return Outcome::Continue;
    }
    let mut cx = Cx::new(srv);
    cx.conn = conn.id;
    let cx = cx;
    conn.last_cmd_ms.store(cx.now, Relaxed);
    let st = cx.st();
    match req {
        TextRequest::Get { kind, exptime, keys } => {
            let touch = exptime.map(|t| exp_of(t as i64, cx.now));
            for key in keys {
                if key == CLUSTER_KEY && cluster_configured(srv) {
                    text::encode_value(out, key, 0, &cluster_payload(srv), kind.returns_cas().then_some(0));
                    continue;
                }
                McState::bump(&st.cmd_get);
                if touch.is_some() {
                    McState::bump(&st.cmd_touch);
                }
                let with_cas = kind.returns_cas();
                let hit = cx.with_key(key, |cx, db| {
                    fetch(cx, db, key, touch, |it| {
                        let cas = with_cas.then_some(it.cas());
                        text::encode_value(out, key, it.flags(), it.data(), cas);
                        (slab_class(item_total_size(key.len(), it.flags(), it.data().len())), it.data().len())
                    })
                });
                srv.mc.detail.record(key, PrefixOp::Get(hit.is_some()));
                log_get(&cx, key, hit);
                match hit {
                    Some(_) => {
                        if touch.is_some() {
                            McState::bump(&st.touch_hits);
                        }
                        McState::bump(&st.get_hits);
                    }
                    None => {
                        if touch.is_some() {
                            McState::bump(&st.touch_misses);
                        }
                        McState::bump(&st.get_misses);
                    }
                }
            }
            text::encode_end(out);
        }
        TextRequest::Store { command, key, flags, exptime, cas, data, noreply } => {
            srv.mc.detail.record(key, PrefixOp::Set);
            if !cx.memory_ok() {
                text::encode_line(out, text::OUT_OF_MEMORY_STORING.as_bytes(), noreply);
                return Outcome::Continue;
            }
            let mode = match command {
                StoreCommand::Set => Mode::Set,
                StoreCommand::Add => Mode::Add,
                StoreCommand::Replace => Mode::Replace,
                StoreCommand::Append => Mode::Append,
                StoreCommand::Prepend => Mode::Prepend,
                StoreCommand::Cas => Mode::Cas,
            };
            let r = StoreReq {
                key,
                mode,
                flags,
                exptime: exptime as i64,
                data,
                cas: if mode == Mode::Cas { cas } else { 0 },
                set_stale: false,
                key_binary: false,
            };
            if cx.srv.mc.watchers.wants(LOG_FETCHERS) {
                // memcached's do_store_item looks the key up first (and logs that fetch).
                let hit = cx.with_key(key, |cx, db| {
                    fetch(cx, db, key, None, |it| {
                        (slab_class(item_total_size(key.len(), it.flags(), it.data().len())), it.data().len())
                    })
                });
                log_get(&cx, key, hit);
            }
            let res = cx.with_key(key, |cx, db| store(cx, db, &r));
            let (status, cmd) = (
                match res {
                    StoreResult::Stored(_) => "stored",
                    StoreResult::NotStored => "not_stored",
                    StoreResult::Exists => "exists",
                    StoreResult::NotFound => "not_found",
                },
                match command {
                    StoreCommand::Set => "set",
                    StoreCommand::Add => "add",
                    StoreCommand::Replace => "replace",
                    StoreCommand::Append => "append",
                    StoreCommand::Prepend => "prepend",
                    StoreCommand::Cas => "cas",
                },
            );
            log_store(&cx, key, status, cmd, exptime as i64, flags, data.len());
            let reply = match res {
                StoreResult::Stored(_) => TextReply::Stored,
                StoreResult::NotStored => TextReply::NotStored,
                StoreResult::Exists => TextReply::Exists,
                StoreResult::NotFound => TextReply::NotFound,
            };
            reply.encode(out, noreply);
        }
        TextRequest::Delete { key, noreply } => {
            srv.mc.detail.record(key, PrefixOp::Del);
            let hit = cx.with_key(key, |cx, db| {
                let (found, _) = lookup(db, key, false);
                found.is_some() && remove_key(cx, db, key)
            });
            if hit {
                McState::bump(&st.delete_hits);
                TextReply::Deleted.encode(out, noreply);
            } else {
                McState::bump(&st.delete_misses);
                TextReply::NotFound.encode(out, noreply);
            }
        }
        TextRequest::Arithmetic { incr, key, delta, noreply } => {
            match cx.with_key(key, |cx, db| add_delta(cx, db, key, incr, delta, 0)) {
                Delta::Ok { value, .. } => text::encode_number(out, value, noreply),
                Delta::NonNumeric => text::encode_line(out, text::NON_NUMERIC.as_bytes(), noreply),
                Delta::NotFound | Delta::CasMismatch => {
                    McState::bump(if incr { &st.incr_misses } else { &st.decr_misses });
                    TextReply::NotFound.encode(out, noreply);
                }
            }
        }
        TextRequest::Touch { key, exptime, noreply } => {
            McState::bump(&st.cmd_touch);
            let exp = exp_of(exptime as i64, cx.now);
            let hit = cx.with_key(key, |cx, db| fetch(cx, db, key, Some(exp), |_| ()).is_some());
            if hit {
                McState::bump(&st.touch_hits);
                TextReply::Touched.encode(out, noreply);
            } else {
                McState::bump(&st.touch_misses);
                TextReply::NotFound.encode(out, noreply);
            }
        }
        TextRequest::FlushAll { delay, noreply } => {
            flush_all(srv, delay as i64);
            TextReply::Ok.encode(out, noreply);
        }
        TextRequest::Version => text::encode_version(out, MC_VERSION.as_bytes()),
        TextRequest::Verbosity { level, noreply } => {
            srv.mc.verbosity.store(level as u64, Relaxed);
            TextReply::Ok.encode(out, noreply);
        }
        TextRequest::Quit => return Outcome::Close,
        TextRequest::Stats { args } => text_stats(srv, &args, out),
        TextRequest::Shutdown { .. } => text::encode_line(out, text::SHUTDOWN_NOT_ENABLED.as_bytes(), false),
        TextRequest::CacheMemlimit { megabytes, noreply } => {
            let _ = srv.config.set_runtime("maxmemory", &format!("{}mb", megabytes));
            TextReply::Ok.encode(out, noreply);
        }
        TextRequest::Admin { command: b"lru_crawler", args } => lru_crawler(srv, &args, out),
        TextRequest::Admin { command: b"slabs", args } => slabs(&args, out),
        TextRequest::Admin { command: b"watch", args } => return watch(srv, conn, &args, out),
        TextRequest::Admin { .. } => TextReply::Error.encode(out, false),
        TextRequest::Meta(m) => {
            McState::bump(&st.cmd_meta);
            execute_meta(&cx, m, out);
        }
    }
    Outcome::Continue
}

fn text_stats(srv: &Arc<Node>, args: &[&[u8]], out: &mut Vec<u8>) {
    let group = args.first().copied().unwrap_or(b"");
    match group {
        b"reset" if args.len() == 1 => {
            reset_stats(srv);
            TextReply::Reset.encode(out, false);
        }
        b"detail" => {
            match args.get(1).copied() {
                Some(b"on") | Some(b"off") => {
                    srv.mc.detail.enabled.store(args[1] == b"on", Relaxed);
                    TextReply::Ok.encode(out, false)
                }
                Some(b"dump") => out.extend_from_slice(&srv.mc.detail.dump()),
                _ => text::encode_line(out, text::STATS_DETAIL_USAGE.as_bytes(), false),
            };
        }
        b"cachedump" => text::encode_end(out),
        _ => match stats_group(srv, group) {
            Some(list) => {
                for (k, v) in list {
                    text::encode_stat(out, k.as_bytes(), v.as_bytes());
                }
                text::encode_end(out);
            }
            None => TextReply::Error.encode(out, false),
        },
    }
}

fn reset_stats(srv: &Node) {
    srv.mc.detail.clear();
    mcitem::reset_class_counters();
    for c in &CRAWLER_RECLAIMED {
        c.store(0, Relaxed);
    }
    let s = &srv.mc.stats;
    for c in [
        &s.cmd_get,
        &s.cmd_set,
        &s.cmd_flush,
        &s.cmd_touch,
        &s.cmd_meta,
        &s.get_hits,
        &s.get_misses,
        &s.get_expired,
        &s.get_flushed,
        &s.delete_misses,
        &s.delete_hits,
        &s.incr_misses,
        &s.incr_hits,
        &s.decr_misses,
        &s.decr_hits,
        &s.cas_misses,
        &s.cas_hits,
        &s.cas_badval,
        &s.touch_hits,
        &s.touch_misses,
        &s.store_too_large,
        &s.store_no_memory,
        &s.total_items,
        &s.total_connections,
        &s.rejected_connections,
        &s.bytes_read,
        &s.bytes_written,
        &s.auth_cmds,
        &s.auth_errors,
    ] {
        c.store(0, Relaxed);
    }
}

use mcitem::{item_total_size, slab_chunk_size, slab_class, SLAB_CLASSES, SLAB_PAGE};

/// Per slab class: (live items, their memcached bytes), from a walk over database 0 one shard
/// at a time (no global lock; `stats items|slabs` are rare). Logically expired items are left
/// out, as memcached reuses their memory.
fn class_usage(srv: &Node) -> Vec<(u64, u64)> {
    let mut v = vec![(0u64, 0u64); SLAB_CLASSES];
    let now = now_ms();
    for i in 0..srv.ks.num_shards() {
        let g = srv.ks.lock_one(i);
        for e in g.dbs[0].iter() {
            if e.expire_at != 0 && e.expire_at <= now {
                continue;
            }
            if let Some((cls, size)) = mcitem::entry_class(e) {
                v[cls].0 += 1;
                v[cls].1 += size;
            }
        }
    }
    v
}

/// memcached never returns slab pages: the most pages a class ever needed (`total_pages`,
/// `total_malloced`), updated whenever the slab stats are read.
static CLASS_PAGES: [AtomicU64; SLAB_CLASSES] = [const { AtomicU64::new(0) }; SLAB_CLASSES];

fn chunks_per_page(cls: usize) -> u64 {
    (SLAB_PAGE / slab_chunk_size(cls)).max(1)
}

fn class_pages(cls: usize, used: u64) -> u64 {
    let need = used.div_ceil(chunks_per_page(cls));
    CLASS_PAGES[cls].fetch_max(need, Relaxed).max(need)
}

/// The `stats [group]` lines (None: unknown group).
pub fn stats_group(srv: &Arc<Node>, group: &[u8]) -> Option<Vec<(String, String)>> {
    let s = &srv.mc.stats;
    let g = |c: &AtomicU64| c.load(Relaxed).to_string();
    let now = now_ms();
    let mut v: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, val: String| v.push((k.to_string(), val));
    let maxbytes = srv.config.hot.maxmemory.load(Relaxed);
    let maxconns = srv.config.get_i64("memcached-max-connections");
    let curr_items = srv.ks.db_size(0);
    match group {
        b"" => {
            push("pid", std::process::id().to_string());
            push("uptime", ((now - srv.start_ms) / 1000).to_string());
            push("time", (now / 1000).to_string());
            push("version", MC_VERSION.to_string());
            push("libevent", "tokio".to_string());
            push("pointer_size", "64".to_string());
            let (u, sy) = rusage();
            push("rusage_user", u);
            push("rusage_system", sy);
            push("max_connections", maxconns.to_string());
            push("curr_connections", g(&s.curr_connections));
            push("total_connections", g(&s.total_connections));
            push("rejected_connections", g(&s.rejected_connections));
            push("connection_structures", g(&s.curr_connections));
            push("cmd_get", g(&s.cmd_get));
            push("cmd_set", g(&s.cmd_set));
            push("cmd_flush", g(&s.cmd_flush));
            push("cmd_touch", g(&s.cmd_touch));
            push("cmd_meta", g(&s.cmd_meta));
            push("get_hits", g(&s.get_hits));
            push("get_misses", g(&s.get_misses));
            push("get_expired", g(&s.get_expired));
            push("get_flushed", g(&s.get_flushed));
            push("delete_misses", g(&s.delete_misses));
            push("delete_hits", g(&s.delete_hits));
            push("incr_misses", g(&s.incr_misses));
            push("incr_hits", g(&s.incr_hits));
            push("decr_misses", g(&s.decr_misses));
            push("decr_hits", g(&s.decr_hits));
            push("cas_misses", g(&s.cas_misses));
            push("cas_hits", g(&s.cas_hits));
            push("cas_badval", g(&s.cas_badval));
            push("touch_hits", g(&s.touch_hits));
            push("touch_misses", g(&s.touch_misses));
            push("store_too_large", g(&s.store_too_large));
            push("store_no_memory", g(&s.store_no_memory));
            push("auth_cmds", g(&s.auth_cmds));
            push("auth_errors", g(&s.auth_errors));
            push("bytes_read", g(&s.bytes_read));
            push("bytes_written", g(&s.bytes_written));
            push("limit_maxbytes", maxbytes.to_string());
            push("accepting_conns", "1".into());
            push("listen_disabled_num", "0".into());
            push("time_in_listen_disabled_us", "0".into());
            push("threads", srv.threads.to_string());
            push("conn_yields", "0".into());
            push("bytes", ferrocache_engine::memory::used_memory().to_string());
            push("curr_items", curr_items.to_string());
            push("total_items", g(&s.total_items));
            push("evictions", srv.ks.stats().evicted.to_string());
            push("reclaimed", srv.ks.stats().expired.to_string());
            push("lrutail_reflocked", "0".into());
            push("lru_crawler_running", "0".into());
            push("log_watchers", srv.mc.watchers.count().to_string());
        }
        b"settings" => {
            push("maxbytes", maxbytes.to_string());
            push("maxconns", maxconns.to_string());
            push("tcpport", srv.config.get_i64("memcached-port").to_string());
            push("udpport", "0".into());
            push("verbosity", g(&srv.mc.verbosity));
            push("oldest", {
                let o = srv.mc.oldest_live.load(Relaxed);
                if o == 0 {
                    "0".into()
                } else {
                    ((now / 1000).saturating_sub(o)).to_string()
                }
            });
            push(
                "evictions",
                if memcached_engine(srv) || srv.config.policy() != ferrocache_engine::EvictionPolicy::NoEviction {
                    "on"
                } else {
                    "off"
                }
                .into(),
            );
            push("shutdown_command", "no".into());
            push("growth_factor", "1.25".into());
            push("chunk_size", "48".into());
            push("num_threads", srv.threads.to_string());
            push("cas_enabled", "yes".into());
            push("binding_protocol", "auto-negotiate".into());
            let auth = if auth_required(srv) { "yes" } else { "no" };
            push("auth_enabled_sasl", auth.into());
            push("auth_enabled_ascii", auth.into());
            push("item_size_max", limits(srv).item_size_max.to_string());
            push("lru_crawler", if CRAWLER_DISABLED.load(Relaxed) { "no" } else { "yes" }.into());
            push("flush_enabled", "yes".into());
            push("dump_enabled", "yes".into());
            push("engine", srv.config.get("engine").unwrap_or_default());
            push("maxmemory_policy", srv.config.policy().name().into());
        }
        b"items" => {
            let c = &mcitem::CLASS_COUNTERS;
            for (cls, (n, bytes)) in class_usage(srv).into_iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let mut p = |k: &str, val: String| push(&format!("items:{cls}:{k}"), val);
                p("number", n.to_string());
                p("age", "0".into());
                p("mem_requested", bytes.to_string());
                p("evicted", c.evicted[cls].load(Relaxed).to_string());
                p("evicted_nonzero", "0".into());
                p("evicted_time", "0".into());
                p("outofmemory", "0".into());
                p("tailrepairs", "0".into());
                p("reclaimed", c.reclaimed[cls].load(Relaxed).to_string());
                p("crawler_reclaimed", CRAWLER_RECLAIMED[cls].load(Relaxed).to_string());
                p("expired_unfetched", "0".into());
                p("evicted_unfetched", "0".into());
            }
        }
        b"slabs" => {
            let mut active = 0;
            let mut malloced = 0;
            for (cls, (n, _)) in class_usage(srv).into_iter().enumerate() {
                let pages = class_pages(cls, n);
                if pages == 0 {
                    continue;
                }
                active += 1;
                malloced += pages * SLAB_PAGE;
                let per = chunks_per_page(cls);
                let mut p = |k: &str, val: String| push(&format!("{cls}:{k}"), val);
                p("chunk_size", slab_chunk_size(cls).to_string());
                p("chunks_per_page", per.to_string());
                p("total_pages", pages.to_string());
                p("total_chunks", (pages * per).to_string());
                p("used_chunks", n.to_string());
                p("free_chunks", (pages * per - n).to_string());
                p("free_chunks_end", "0".into());
            }
            push("active_slabs", active.to_string());
            push("total_malloced", malloced.to_string());
        }
        b"sizes" => push("sizes_status", "disabled".into()),
        b"conns" => {
            let conns = srv.mc.conns.lock();
            let mut ids: Vec<&u64> = conns.keys().collect();
            ids.sort();
            for id in ids {
                let c = &conns[id];
                push(&format!("{}:addr", id), format!("tcp:{}", c.addr));
                push(&format!("{}:listen_addr", id), format!("tcp:{}", c.listen_addr));
                push(&format!("{}:state", id), "conn_parse_cmd".into());
                push(
                    &format!("{}:secs_since_last_cmd", id),
                    ((now.saturating_sub(c.last_cmd_ms.load(Relaxed))) / 1000).to_string(),
                );
            }
        }
        _ => return None,
    }
    Some(v)
}

fn rusage() -> (String, String) {
    // /proc/self/stat fields 14 and 15: utime, stime in clock ticks (100 Hz on Linux).
    let txt = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = txt.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let fmt = |t: u64| format!("{}.{:06}", t / 100, (t % 100) * 10_000);
    (fmt(tick(11)), fmt(tick(12)))
}

// ------------------------------------------------------------------ meta protocol

/// The TTL shown by a `t` token given the tokens before it that change the expiry.
fn meta_ttls(args: &MetaArgs<'_>, cx: &Cx, start_expire: u64, created: bool) -> (Option<u32>, Option<Exp>) {
    let mut cur = start_expire;
    let mut shown = ttl_left(cur, cx.now);
    let mut newexp = None;
    for t in &args.tokens {
        match t[0] {
            b'T' => {
                let e = exp_of(args.flags.ttl.unwrap_or(0) as i64, cx.now);
                cur = exp_ms(e);
                newexp = Some(e);
            }
            b'N' if created => {
                let e = exp_of(args.flags.vivify_ttl.unwrap_or(0) as i64, cx.now);
                cur = exp_ms(e);
                newexp = Some(e);
            }
            b't' => shown = ttl_left(cur, cx.now),
            _ => {}
        }
    }
    (shown, newexp)
}

fn execute_meta(cx: &Cx, req: MetaRequest<'_>, out: &mut Vec<u8>) {
    let st = cx.st();
    match req {
        MetaRequest::Noop => meta::encode_mn(out),
        MetaRequest::Debug { key, base64 } => {
            let info = cx.with_key(&key, |cx, db| {
                let (found, _) = lookup(db, &key, false);
                let e = found?;
                let expire_at = e.expire_at;
                let it = as_item(e, cx.now_secs)?;
                Some((expire_at, it.atime(), it.cas(), it.has(FETCHED), it.flags(), it.data().len()))
            });
            match info {
                Some((expire_at, atime, cas, fetched, flags, n)) => {
                    let size = item_total_size(key.len(), flags, n);
                    meta::encode_me_hit(
                        out,
                        &key,
                        base64,
                        ttl_left(expire_at, cx.now),
                        cx.now_secs.saturating_sub(atime) as u64,
                        cas,
                        fetched,
                        slab_class(size) as u32,
                        size,
                    );
                }
                None => meta::encode_en(out),
            }
        }
        MetaRequest::Get(args) => {
            let f = &args.flags;
            let key: &[u8] = &args.key;
            let r = cx.with_key(key, |cx, db| {
                let (found, expired) = lookup(db, key, !f.no_update);
                if found.is_none() && expired {
                    McState::bump(&cx.st().get_expired);
                }
                let mut created = false;
                if found.is_none() {
                    f.vivify_ttl?;
                    if db.peek(key).is_some() {
                        return None; // another Redis type
                    }
                    // memcached links the empty item first and applies N's TTL with the flags.
                    let item = McItem::new(&[], 0, cx.now_secs);
                    McState::bump(&cx.st().total_items);
                    put(cx, db, key, item, Exp::Never, "set");
                    created = true;
                }
                let e = db.peek(key).unwrap();
                let expire_at = e.expire_at;
                let it = as_item(e, cx.now_secs).unwrap();
                let (ttl, newexp) = meta_ttls(&args, cx, expire_at, created);
                let mut win = created && f.vivify_ttl.is_some();
                if let Some(rt) = f.recache_ttl {
                    if !it.has(TOKEN_SENT) && !created && expire_at != 0 {
                        if let Exp::At(ms) = exp_of(rt as i64, cx.now) {
                            if expire_at < ms {
                                win = true;
                            }
                        }
                    }
                }
                let token_sent = it.has(TOKEN_SENT);
                let stale = it.has(STALE);
                if stale && !token_sent {
                    win = true;
                }
                if win {
                    it.add_bits(TOKEN_SENT);
                }
                let m = MetaItemOwned {
                    key_binary: it.has(KEY_BINARY),
                    client_flags: it.flags(),
                    cas: it.cas(),
                    ttl_remaining: ttl,
                    last_access: cx.now_secs.saturating_sub(it.atime()),
                    fetched: it.has(FETCHED),
                    token_sent,
                    stale,
                    win,
                };
                let value = if f.return_value || f.return_size { it.data().to_vec() } else { Vec::new() };
                if !f.no_update {
                    it.add_bits(FETCHED);
                    it.set_atime(cx.now_secs);
                }
                let ttl_set = f.ttl.is_some();
                if let Some(e) = newexp {
                    set_exp(cx, db, key, e);
                }
                Some((m, value, ttl_set))
            });
            match r {
                Some((m, value, ttl_set)) => {
                    if ttl_set {
                        McState::bump(&st.cmd_touch);
                        McState::bump(&st.touch_hits);
                    } else {
                        McState::bump(&st.cmd_get);
                        McState::bump(&st.get_hits);
                    }
                    let item = MetaItem {
                        key,
                        key_binary: m.key_binary,
                        client_flags: m.client_flags,
                        cas: m.cas,
                        ttl_remaining: m.ttl_remaining,
                        last_access: m.last_access,
                        fetched: m.fetched,
                        token_sent: m.token_sent,
                        stale: m.stale,
                        win: m.win,
                    };
                    meta::encode_mg_hit(out, &args, &item, &value);
                }
                None => {
                    if f.ttl.is_some() {
                        McState::bump(&st.cmd_touch);
                        McState::bump(&st.touch_misses);
                    } else {
                        McState::bump(&st.cmd_get);
                        McState::bump(&st.get_misses);
                    }
                    meta::encode_mg_miss(out, &args);
                }
            }
        }
        MetaRequest::Set { args, mode, data } => {
            if !cx.memory_ok() {
                text::encode_line(out, text::OUT_OF_MEMORY_STORING.as_bytes(), false);
                return;
            }
            let f = &args.flags;
            let m = match mode {
                MetaSetMode::Set => Mode::Set,
                MetaSetMode::Add => Mode::Add,
                MetaSetMode::Append => Mode::Append,
                MetaSetMode::Prepend => Mode::Prepend,
                MetaSetMode::Replace => Mode::Replace,
                MetaSetMode::Cas => Mode::Cas,
            };
            let key: &[u8] = &args.key;
            let r = StoreReq {
                key,
                mode: m,
                flags: f.client_flags.unwrap_or(0),
                exptime: f.ttl.unwrap_or(0) as i64,
                data,
                cas: if m == Mode::Add { 0 } else { f.compare_cas.unwrap_or(0) },
                set_stale: f.invalidate && m == Mode::Cas,
                key_binary: f.base64_key,
            };
            let res = cx.with_key(key, |cx, db| store(cx, db, &r));
            let (status, cas) = match res {
                StoreResult::Stored(c) => (MetaStoreStatus::Stored, c),
                StoreResult::NotStored => (MetaStoreStatus::NotStored, 0),
                StoreResult::Exists => (MetaStoreStatus::Exists, 0),
                StoreResult::NotFound => (MetaStoreStatus::NotFound, 0),
            };
            meta::encode_ms(out, &args, status, cas);
        }
        MetaRequest::Delete(args) => {
            let f = &args.flags;
            let key: &[u8] = &args.key;
            let status = cx.with_key(key, |cx, db| {
                let (found, _) = lookup(db, key, false);
                let Some(e) = found else {
                    return MetaDeleteStatus::NotFound;
                };
                let it = as_item(e, cx.now_secs).unwrap();
                if let Some(c) = f.compare_cas {
                    if it.cas() != c {
                        McState::bump(&cx.st().delete_misses);
                        return MetaDeleteStatus::Exists;
                    }
                }
                if f.invalidate {
                    it.add_bits(STALE);
                    it.set_bits(it.bits() & !TOKEN_SENT);
                    it.set_cas(mcitem::next_cas());
                    if let Some(t) = f.ttl {
                        set_exp(cx, db, key, exp_of(t as i64, cx.now));
                    }
                    db.modified(key, notify::GENERIC, "stale");
                    MetaDeleteStatus::Deleted
                } else {
                    McState::bump(&cx.st().delete_hits);
                    remove_key(cx, db, key);
                    MetaDeleteStatus::Deleted
                }
            });
            if status == MetaDeleteStatus::NotFound {
                McState::bump(&st.delete_misses);
            }
            meta::encode_md(out, &args, status);
        }
        MetaRequest::Arithmetic { args, incr } => {
            let f = &args.flags;
            let key: &[u8] = &args.key;
            let delta = f.delta.unwrap_or(1);
            let r = cx.with_key(key, |cx, db| {
                let mut created = false;
                let cas;
                let value;
                match add_delta(cx, db, key, incr, delta, f.compare_cas.unwrap_or(0)) {
                    Delta::Ok { value: v, cas: c } => {
                        value = v;
                        cas = c;
                    }
                    Delta::NonNumeric => return Err(()),
                    Delta::CasMismatch => return Ok(MetaArithResult::Exists),
                    Delta::NotFound => {
                        if f.vivify_ttl.is_none() || db.peek(key).is_some() {
                            McState::bump(if incr { &cx.st().incr_misses } else { &cx.st().decr_misses });
                            return Ok(MetaArithResult::NotFound);
                        }
                        let initial = f.initial.unwrap_or(0);
                        cas = vivify_counter(cx, db, key, initial, Exp::Never);
                        value = initial;
                        created = true;
                    }
                }
                let expire_at = db.peek(key).map(|e| e.expire_at).unwrap_or(0);
                let (ttl, newexp) = meta_ttls(&args, cx, expire_at, created);
                if let Some(e) = newexp {
                    set_exp(cx, db, key, e);
                }
                Ok(MetaArithResult::Done { value, cas, ttl_remaining: ttl, created })
            });
            match r {
                Ok(res) => meta::encode_ma(out, &args, res),
                Err(()) => text::encode_line(out, text::NON_NUMERIC.as_bytes(), false),
            }
        }
    }
}

struct MetaItemOwned {
    key_binary: bool,
    client_flags: u32,
    cas: u64,
    ttl_remaining: Option<u32>,
    last_access: u32,
    fetched: bool,
    token_sent: bool,
    stale: bool,
    win: bool,
}

// ------------------------------------------------------------------ lru_crawler

/// `lru_crawler` state: enabled (memcached 1.6's default) and per-class crawler reclaims.
static CRAWLER_DISABLED: AtomicBool = AtomicBool::new(false);
static CRAWLER_RECLAIMED: [AtomicU64; SLAB_CLASSES] = [const { AtomicU64::new(0) }; SLAB_CLASSES];

/// The classes named by `lru_crawler crawl|metadump <all|hash|1,2,...>` (None: BADCLASS).
fn crawler_classes(arg: &[u8]) -> Option<[bool; SLAB_CLASSES]> {
    let mut sel = [false; SLAB_CLASSES];
    if arg == b"all" || arg == b"hash" {
        return Some([true; SLAB_CLASSES]);
    }
    for part in arg.split(|&c| c == b',') {
        let id = ferrocache_protocol::memcache::num::safe_strtoul(part)? as usize;
        if id == 0 || id >= SLAB_CLASSES {
            return None;
        }
        sel[id] = true;
    }
    Some(sel)
}

/// The memcached items of database 0 in the selected classes, live or expired, one shard at a
/// time: (key, expire_at ms, atime secs, cas, fetched, class, size).
type CrawledItem = (Vec<u8>, u64, u32, u64, bool, usize, u64);

fn crawl(srv: &Node, sel: &[bool; SLAB_CLASSES], mut f: impl FnMut(CrawledItem)) {
    for i in 0..srv.ks.num_shards() {
        let g = srv.ks.lock_one(i);
        for e in g.dbs[0].iter() {
            let Some((cls, size)) = mcitem::entry_class(e) else { continue };
            let Value::Mc(m) = &e.value else { continue };
            if sel[cls] {
                f((e.key.to_vec(), e.expire_at, m.atime(), m.cas(), m.has(FETCHED), cls, size));
            }
        }
    }
}

/// memcached's `uriencode` (metadump keys).
fn uriencode(key: &[u8], out: &mut Vec<u8>) {
    for &c in key {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c);
        } else {
            out.extend_from_slice(format!("%{c:02X}").as_bytes());
        }
    }
}

fn lru_crawler(srv: &Arc<Node>, args: &[&[u8]], out: &mut Vec<u8>) {
    let line = |out: &mut Vec<u8>, l: &str| text::encode_line(out, l.as_bytes(), false);
    let enabled = !CRAWLER_DISABLED.load(Relaxed);
    match args {
        [b"crawl", classes] => {
            if !enabled {
                return line(out, "CLIENT_ERROR lru crawler disabled");
            }
            let Some(sel) = crawler_classes(classes) else { return line(out, "BADCLASS invalid class id") };
            // Reclaim the expired items now (the crawl finishes before OK: lru_crawler_running
            // is never seen set). The lookup expires them through the engine's usual path.
            let now = now_ms();
            let mut expired = Vec::new();
            crawl(srv, &sel, |(key, exp, _, _, _, cls, _)| {
                if exp != 0 && exp <= now {
                    expired.push((key, cls));
                }
            });
            let cx = Cx::new(srv);
            for (key, cls) in expired {
                let (gone, _) = cx.with_key(&key, |_, db| {
                    let (found, expired) = lookup(db, &key, false);
                    (found.is_none(), expired)
                });
                if gone {
                    CRAWLER_RECLAIMED[cls].fetch_add(1, Relaxed);
                }
            }
            line(out, "OK");
        }
        [b"metadump", classes] => {
            if !enabled {
                return line(out, "CLIENT_ERROR lru crawler disabled");
            }
            if !out.is_empty() {
                return line(out, "ERROR cannot pipeline other commands before metadump");
            }
            let Some(sel) = crawler_classes(classes) else { return line(out, "BADCLASS invalid class id") };
            let now = now_ms();
            crawl(srv, &sel, |(key, exp, atime, cas, fetched, cls, size)| {
                if exp != 0 && exp <= now {
                    return;
                }
                out.extend_from_slice(b"key=");
                uriencode(&key, out);
                let exp = if exp == 0 { -1 } else { (exp / 1000) as i64 };
                let fetch = if fetched { "yes" } else { "no" };
                out.extend_from_slice(
                    format!(" exp={exp} la={atime} cas={cas} fetch={fetch} cls={cls} size={size}\n").as_bytes(),
                );
            });
            text::encode_end(out);
        }
        [b"tocrawl", n] | [b"sleep", n] => match ferrocache_protocol::memcache::num::safe_strtoul(n) {
            Some(v) if args[0] == b"sleep" && v > 1_000_000 => {
                line(out, "CLIENT_ERROR sleep must be one second or less")
            }
            Some(_) => line(out, "OK"),
            None => line(out, "CLIENT_ERROR bad command line format"),
        },
        [b"enable"] | [b"disable"] => {
            CRAWLER_DISABLED.store(args[0] == b"disable", Relaxed);
            line(out, "OK");
        }
        _ => TextReply::Error.encode(out, false),
    }
}

/// `slabs reassign|automove` (process_slabs_command). Ferrocache has no slab pages to move:
/// a reassignment always finds no spare page, as memcached does when a class has under two.
fn slabs(args: &[&[u8]], out: &mut Vec<u8>) {
    use ferrocache_protocol::memcache::num::{safe_strtol, safe_strtoul};
    let line = |out: &mut Vec<u8>, l: &str| text::encode_line(out, l.as_bytes(), false);
    let noreply = args.last() == Some(&&b"noreply"[..]);
    match args {
        [b"reassign", src, dst] => {
            let (Some(src), Some(dst)) = (safe_strtol(src), safe_strtol(dst)) else {
                return line(out, "CLIENT_ERROR bad command line format");
            };
            let last = SLAB_CLASSES as i32 - 1;
            if !(0..=last).contains(&src) || !(0..=last).contains(&dst) {
                line(out, "BADCLASS invalid src or dst class id")
            } else if src == dst {
                line(out, "SAME src and dst class are identical")
            } else {
                line(out, "NOSPARE source class has no spare pages")
            }
        }
        [b"automove", rest @ ..] if !rest.is_empty() => {
            let reply = if rest[0] == b"ratio" {
                match rest.get(1).and_then(|r| std::str::from_utf8(r).ok()?.parse::<f64>().ok()) {
                    Some(_) => "OK",
                    None => "ERROR",
                }
            } else {
                match safe_strtoul(rest[0]) {
                    Some(0..=2) => "OK",
                    Some(_) => "ERROR",
                    None => "CLIENT_ERROR bad command line format",
                }
            };
            text::encode_line(out, reply.as_bytes(), noreply);
        }
        _ => TextReply::Error.encode(out, false),
    }
}

// ------------------------------------------------------------------ authentication

/// Whether a new memcached connection must log in before anything else: the node's default
/// user needs a password (requirepass, or ACL `default` without nopass, or off) or is
/// restricted, so RESP clients must AUTH too; `memcached-auth no` opens the port anyway.
/// Connections keep what they had when they were accepted (as RESP clients after CONFIG SET
/// requirepass).
pub fn auth_required(srv: &Node) -> bool {
    (srv.config.hot.requirepass_set.load(Relaxed) || !srv.acl.default_full.load(Relaxed))
        && srv.config.get_bool("memcached-auth")
}

fn login(srv: &Node, conn: &McConn, user: &[u8], pass: &[u8]) -> bool {
    let st = &srv.mc.stats;
    McState::bump(&st.auth_cmds);
    let ok = crate::acl::memcached_login(srv, user, pass);
    if ok {
        conn.authenticated.store(true, Relaxed);
    } else {
        McState::bump(&st.auth_errors);
    }
    ok
}

/// One step of an unauthenticated text connection (memcached's `try_read_command_asciiauth`):
/// `None` = wait for more input, else (bytes consumed, close the connection).
pub fn text_auth(srv: &Node, conn: &McConn, buf: &[u8], out: &mut Vec<u8>) -> Option<(usize, bool)> {
    use ferrocache_protocol::memcache::auth::{parse_text_auth, TextAuth, AUTH_FAILURE};
    let line = |out: &mut Vec<u8>, l: &str| {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    match parse_text_auth(buf) {
        TextAuth::NeedMore => None,
        TextAuth::Close => Some((buf.len(), true)),
        TextAuth::Reply { consumed, line: l } => {
            line(out, l);
            Some((consumed, false))
        }
        TextAuth::Credentials { user, password, consumed } => {
            let ok = login(srv, conn, user, password);
            line(out, if ok { "STORED" } else { AUTH_FAILURE });
            Some((consumed, false))
        }
    }
}

/// SASL on the binary protocol (memcached -S): PLAIN only. Returns None for any other request.
fn binary_auth(srv: &Node, conn: &McConn, req: &BinaryRequest<'_>, out: &mut Vec<u8>) -> Option<Outcome> {
    use ferrocache_protocol::memcache::auth::sasl_plain;
    match &req.command {
        BinaryCommand::SaslListMechs if auth_required(srv) || !conn.authenticated.load(Relaxed) => {
            binary::encode_version(out, req, b"PLAIN");
        }
        BinaryCommand::SaslAuth { mech, data, step } if auth_required(srv) || !conn.authenticated.load(Relaxed) => {
            let ok = !*step && *mech == b"PLAIN" && sasl_plain(data).is_some_and(|(u, p)| login(srv, conn, u, p));
            if ok {
                binary::encode_version(out, req, b"Authenticated");
            } else {
                if *step || *mech != b"PLAIN" || sasl_plain(data).is_none() {
                    McState::bump(&srv.mc.stats.auth_cmds);
                    McState::bump(&srv.mc.stats.auth_errors);
                }
                binary::encode_error(out, req, Status::AuthError);
            }
        }
        // memcached without -S.
        BinaryCommand::SaslListMechs | BinaryCommand::SaslAuth { .. } => {
            binary::encode_error(out, req, Status::UnknownCommand);
        }
        BinaryCommand::Version => return None,
        _ if !conn.authenticated.load(Relaxed) => {
            binary::encode_error(out, req, Status::AuthError);
            return Some(Outcome::Close);
        }
        _ => return None,
    }
    Some(Outcome::Continue)
}

// ------------------------------------------------------------------ binary protocol

/// Execute one binary request, appending the response packet(s) to `out`.
pub fn execute_binary(srv: &Arc<Node>, conn: &McConn, req: BinaryRequest<'_>, out: &mut Vec<u8>) -> Outcome {
    if let Some(o) = binary_auth(srv, conn, &req, out) {
        return o;
    }
    if binary_is_write(&req) && replica_refuses(srv) {
        binary::encode_error(out, &req, Status::NotStored);
        return Outcome::Continue;
    }
    let mut cx = Cx::new(srv);
    cx.conn = conn.id;
    let cx = cx;
    conn.last_cmd_ms.store(cx.now, Relaxed);
    let st = cx.st();
    let hcas = req.header.cas;
    match &req.command {
        BinaryCommand::Get { key, .. } => {
            McState::bump(&st.cmd_get);
            let hit = cx.with_key(key, |cx, db| {
                fetch(cx, db, key, None, |it| {
                    binary::encode_get_hit(out, &req, it.flags(), it.cas(), it.data());
                    (slab_class(item_total_size(key.len(), it.flags(), it.data().len())), it.data().len())
                })
            });
            srv.mc.detail.record(key, PrefixOp::Get(hit.is_some()));
            log_get(&cx, key, hit);
            match hit {
                Some(_) => McState::bump(&st.get_hits),
                None => {
                    McState::bump(&st.get_misses);
                    binary::encode_get_miss(out, &req);
                }
            }
        }
        BinaryCommand::Touch { key, exptime } | BinaryCommand::GetAndTouch { key, exptime, .. } => {
            McState::bump(&st.cmd_touch);
            let exp = exp_of(*exptime as i64, cx.now);
            // encode_get_hit leaves the value out of a Touch reply.
            let hit = cx.with_key(key, |cx, db| {
                fetch(cx, db, key, Some(exp), |it| binary::encode_get_hit(out, &req, it.flags(), it.cas(), it.data()))
            });
            match hit {
                Some(()) => McState::bump(&st.touch_hits),
                None => {
                    McState::bump(&st.touch_misses);
                    binary::encode_get_miss(out, &req);
                }
            }
        }
        BinaryCommand::Store { mode, key, flags, exptime, value } => {
            srv.mc.detail.record(key, PrefixOp::Set);
            if !cx.memory_ok() {
                binary::encode_error(out, &req, Status::OutOfMemory);
                return Outcome::Continue;
            }
            let mut m = match mode {
                BinaryStoreMode::Set => Mode::Set,
                BinaryStoreMode::Add => Mode::Add,
                BinaryStoreMode::Replace => Mode::Replace,
            };
            if hcas != 0 {
                m = Mode::Cas;
            }
            let r = StoreReq {
                key,
                mode: m,
                flags: *flags,
                exptime: *exptime as i64,
                data: value,
                cas: hcas,
                set_stale: false,
                key_binary: false,
            };
            let res = cx.with_key(key, |cx, db| store(cx, db, &r));
            let status = res.watch_name();
            let cmd = match m {
                Mode::Add => "add",
                Mode::Replace => "replace",
                Mode::Cas => "cas",
                _ => "set",
            };
            log_store(&cx, key, status, cmd, *exptime as i64, *flags, value.len());
            match res {
                StoreResult::Stored(c) => binary::encode_success(out, &req, c),
                StoreResult::Exists => binary::encode_error(out, &req, Status::KeyExists),
                StoreResult::NotFound => binary::encode_error(out, &req, Status::KeyNotFound),
                StoreResult::NotStored => binary::encode_error(
                    out,
                    &req,
                    match m {
                        Mode::Add => Status::KeyExists,
                        Mode::Replace => Status::KeyNotFound,
                        _ => Status::NotStored,
                    },
                ),
            }
        }
        BinaryCommand::Concat { append, key, value } => {
            srv.mc.detail.record(key, PrefixOp::Set);
            if !cx.memory_ok() {
                binary::encode_error(out, &req, Status::OutOfMemory);
                return Outcome::Continue;
            }
            let r = StoreReq {
                key,
                mode: if *append { Mode::Append } else { Mode::Prepend },
                flags: 0,
                exptime: 0,
                data: value,
                cas: hcas,
                set_stale: false,
                key_binary: false,
            };
            let res = cx.with_key(key, |cx, db| store(cx, db, &r));
            let status = res.watch_name();
            log_store(&cx, key, status, if *append { "append" } else { "prepend" }, 0, 0, value.len());
            match res {
                StoreResult::Stored(c) => binary::encode_success(out, &req, c),
                StoreResult::Exists => binary::encode_error(out, &req, Status::KeyExists),
                StoreResult::NotFound => binary::encode_error(out, &req, Status::KeyNotFound),
                StoreResult::NotStored => binary::encode_error(out, &req, Status::NotStored),
            }
        }
        BinaryCommand::Delete { key } => {
            srv.mc.detail.record(key, PrefixOp::Del);
            let r = cx.with_key(key, |cx, db| {
                let (found, _) = lookup(db, key, false);
                let Some(e) = found else {
                    return Status::KeyNotFound;
                };
                let it = as_item(e, cx.now_secs).unwrap();
                if hcas != 0 && it.cas() != hcas {
                    return Status::KeyExists;
                }
                remove_key(cx, db, key);
                Status::Success
            });
            match r {
                Status::Success => {
                    McState::bump(&st.delete_hits);
                    binary::encode_success(out, &req, 0);
                }
                s => {
                    McState::bump(&st.delete_misses);
                    binary::encode_error(out, &req, s);
                }
            }
        }
        BinaryCommand::Arithmetic { incr, key, delta, initial, exptime } => {
            let r = cx.with_key(key, |cx, db| match add_delta(cx, db, key, *incr, *delta, hcas) {
                Delta::NotFound if *exptime != 0xffff_ffff && db.peek(key).is_none() => {
                    let c = vivify_counter(cx, db, key, *initial, exp_of(*exptime as i64, cx.now));
                    Delta::Ok { value: *initial, cas: c }
                }
                d => d,
            });
            match r {
                Delta::Ok { value, cas } => binary::encode_arithmetic(out, &req, value, cas),
                Delta::NonNumeric => binary::encode_error(out, &req, Status::NonNumeric),
                Delta::CasMismatch => binary::encode_error(out, &req, Status::KeyExists),
                Delta::NotFound => {
                    McState::bump(if *incr { &st.incr_misses } else { &st.decr_misses });
                    binary::encode_error(out, &req, Status::KeyNotFound);
                }
            }
        }
        BinaryCommand::Quit => {
            binary::encode_success(out, &req, 0);
            return Outcome::Close;
        }
        BinaryCommand::Flush { delay } => {
            flush_all(srv, *delay as i64);
            binary::encode_success(out, &req, 0);
        }
        BinaryCommand::Noop => binary::encode_success(out, &req, 0),
        BinaryCommand::Version => binary::encode_version(out, &req, MC_VERSION.as_bytes()),
        BinaryCommand::Stat { key } => {
            let opaque = req.header.opaque;
            // process_bin_stat compares prefixes (strncmp): "reset...", "detail on", ...
            if key.starts_with(b"reset") {
                reset_stats(srv);
                binary::encode_stat(out, opaque, b"", b"");
            } else if let Some(sub) = key.strip_prefix(b"detail") {
                let d = &srv.mc.detail;
                if sub.starts_with(b" dump") {
                    binary::encode_stat(out, opaque, b"detailed", &d.dump());
                } else if sub.starts_with(b" on") {
                    d.enabled.store(true, Relaxed);
                } else if sub.starts_with(b" off") {
                    d.enabled.store(false, Relaxed);
                } else {
                    binary::encode_error(out, &req, Status::KeyNotFound);
                    return Outcome::Continue;
                }
                binary::encode_stat(out, opaque, b"", b"");
            } else {
                match stats_group(srv, key) {
                    Some(list) => {
                        for (k, v) in list {
                            binary::encode_stat(out, opaque, k.as_bytes(), v.as_bytes());
                        }
                        binary::encode_stat(out, opaque, b"", b"");
                    }
                    None => binary::encode_error(out, &req, Status::KeyNotFound),
                }
            }
        }
        BinaryCommand::SaslListMechs | BinaryCommand::SaslAuth { .. } => {} // binary_auth
    }
    Outcome::Continue
}

/// A too-large set: memcached unlinks the old item so stale data does not survive.
pub fn unlink(srv: &Arc<Node>, key: &[u8]) {
    let cx = Cx::new(srv);
    McState::bump(&cx.st().store_too_large);
    cx.with_key(key, |cx, db| {
        let (found, _) = lookup(db, key, false);
        if found.is_some() {
            remove_key(cx, db, key);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_payload_golden() {
        let body = cluster_body("12", "b.example|10.0.0.2|11211 a.example|10.0.0.1|11211");
        let mut out = Vec::new();
        encode_config_cluster(&mut out, &body);
        assert_eq!(
            out,
            b"CONFIG cluster 0 53\r\n12\na.example|10.0.0.1|11211 b.example|10.0.0.2|11211\n\r\nEND\r\n".to_vec()
        );
    }

    #[test]
    fn realtime_rules() {
        let now = 1_700_000_000_000;
        assert_eq!(exp_of(0, now), Exp::Never);
        assert_eq!(exp_of(-1, now), Exp::Past);
        assert_eq!(exp_of(10, now), Exp::At(now + 10_000));
        assert_eq!(exp_of(REALTIME_MAXDELTA, now), Exp::At(now + REALTIME_MAXDELTA as u64 * 1000));
        assert_eq!(exp_of(REALTIME_MAXDELTA + 1, now), Exp::Past);
        assert_eq!(exp_of(1_700_000_100, now), Exp::At(1_700_000_100_000));
    }

    #[test]
    fn slab_classes() {
        assert_eq!(slab_class(67), 1);
        assert_eq!(slab_class(96), 1);
        assert_eq!(slab_class(97), 2);
    }
}
