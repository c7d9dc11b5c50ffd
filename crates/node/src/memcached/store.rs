//! The storage core every protocol shares: memcached expiry (`realtime()`), the per-request
//! execution context [`McExec`] (shard locking, effects, propagation, memory check), and the
//! item operations (store, incr/decr, fetch, delete, touch, flush_all) with the metadata that
//! rides in the replication stream and the AOF (`MC_META`).

use super::{memcached_engine, McState, McStats};
use crate::node::{now_ms, Node};
use ferrocache_engine::mcitem::{self, McItem, FETCHED, KEY_BINARY, STALE, TOKEN_SENT};
use ferrocache_engine::{notify, Db, Effects, Entry, Value};
use ferrocache_protocol::memcache::num::safe_strtoull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// memcached's REALTIME_MAXDELTA: 30 days.
const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

// ------------------------------------------------------------------ time and expiry

/// A memcached expiry resolved to the engine's absolute milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exp {
    Never,
    At(u64),
    /// Already expired (negative, or an absolute time not in the future).
    Past,
}

/// memcached's `realtime()`.
pub(super) fn exp_of(exptime: i64, now_ms: u64) -> Exp {
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
pub(super) fn ttl_left(expire_at: u64, now_ms: u64) -> Option<u32> {
    if expire_at == 0 {
        None
    } else {
        Some((expire_at.saturating_sub(now_ms).div_ceil(1000)).min(u32::MAX as u64) as u32)
    }
}

pub(super) fn exp_ms(e: Exp) -> u64 {
    match e {
        Exp::Never => 0,
        Exp::At(ms) => ms,
        Exp::Past => 1,
    }
}

// ------------------------------------------------------------------ execution context

/// One memcached request's execution context: the node, the connection, the clock read once.
pub(super) struct McExec<'s> {
    pub(super) srv: &'s Arc<Node>,
    /// The connection's id (`cfd=` of watch lines; 0 when none).
    pub(super) conn: u64,
    pub(super) now: u64,
    pub(super) now_secs: u32,
    /// Effect sinks exist: build propagation argv.
    prop: bool,
}

impl<'s> McExec<'s> {
    pub(super) fn new(srv: &'s Arc<Node>) -> Self {
        let now = now_ms();
        McExec { srv, conn: 0, now, now_secs: (now / 1000) as u32, prop: srv.has_sinks.load(Relaxed) }
    }
    pub(super) fn st(&self) -> &McStats {
        &self.srv.mc.stats
    }
    /// Run `f` on database 0 with `key`'s shard locked; effects are applied before unlocking.
    pub(super) fn with_key<R>(&self, key: &[u8], f: impl FnOnce(&McExec, &mut Db) -> R) -> R {
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
    pub(super) fn memory_ok(&self) -> bool {
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
pub(super) fn as_item(e: &mut Entry, now_secs: u32) -> Option<&mut McItem> {
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
pub(super) fn lookup<'d>(db: &'d mut Db, key: &[u8], touch: bool) -> (Option<&'d mut Entry>, bool) {
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
pub(super) fn put(ex: &McExec, db: &mut Db, key: &[u8], item: McItem, exp: Exp, event: &'static str) {
    if exp == Exp::Past {
        remove_key(ex, db, key);
        return;
    }
    let data = if ex.prop { Some(item.data().to_vec()) } else { None };
    let (flags, cas) = (item.flags(), item.cas());
    db.set(key, Value::Mc(item), false);
    if let Exp::At(ms) = exp {
        db.set_expire(key, ms);
    }
    db.modified(key, notify::STRING, event);
    ex.propagate(db, || {
        let mut v = vec![b"SET".to_vec(), key.to_vec(), data.unwrap_or_default()];
        if let Exp::At(ms) = exp {
            v.push(b"PXAT".to_vec());
            v.push(ms.to_string().into_bytes());
        }
        v
    });
    ex.propagate(db, || meta_argv(key, flags, cas));
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
pub(super) fn remove_key(ex: &McExec, db: &mut Db, key: &[u8]) -> bool {
    if db.remove(key).is_some() {
        db.modified(key, notify::GENERIC, "del");
        ex.propagate(db, || vec![b"DEL".to_vec(), key.to_vec()]);
        true
    } else {
        false
    }
}

/// Change an existing key's expiry, recording the write.
pub(super) fn set_exp(ex: &McExec, db: &mut Db, key: &[u8], exp: Exp) {
    match exp {
        Exp::Past => {
            remove_key(ex, db, key);
        }
        Exp::Never => {
            if db.persist(key) {
                db.modified(key, notify::GENERIC, "persist");
                ex.propagate(db, || vec![b"PERSIST".to_vec(), key.to_vec()]);
            }
        }
        Exp::At(ms) => {
            db.set_expire(key, ms);
            db.modified(key, notify::GENERIC, "expire");
            ex.propagate(db, || vec![b"PEXPIREAT".to_vec(), key.to_vec(), ms.to_string().into_bytes()]);
        }
    }
}

// ------------------------------------------------------------------ storage core

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StoreResult {
    Stored(u64),
    NotStored,
    Exists,
    NotFound,
}

impl StoreResult {
    /// The status word `watch mutations` logs for it.
    pub(super) fn watch_name(&self) -> &'static str {
        match self {
            StoreResult::Stored(_) => "stored",
            StoreResult::NotStored => "not_stored",
            StoreResult::Exists => "exists",
            StoreResult::NotFound => "not_found",
        }
    }
}

pub(super) struct StoreReq<'a> {
    pub(super) key: &'a [u8],
    pub(super) mode: Mode,
    pub(super) flags: u32,
    pub(super) exptime: i64,
    pub(super) data: &'a [u8],
    /// CAS to compare (0 = none).
    pub(super) cas: u64,
    /// `ms I` in CAS mode: a lower CAS stores the value as stale.
    pub(super) set_stale: bool,
    pub(super) key_binary: bool,
}

/// memcached's `do_store_item`.
pub(super) fn store(ex: &McExec, db: &mut Db, r: &StoreReq) -> StoreResult {
    McState::bump(&ex.st().cmd_set);
    let now_secs = ex.now_secs;
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
                McState::bump(&ex.st().total_items);
                put(ex, db, r.key, item, exp_of(r.exptime, ex.now), "set");
                StoreResult::Stored(cas)
            }
            Mode::Cas => {
                McState::bump(&ex.st().cas_misses);
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
    let mut exp = exp_of(r.exptime, ex.now);
    let event;
    match r.mode {
        Mode::Add => {
            // memcached bumps the existing item in the LRU and refuses.
            old.set_atime(now_secs);
            return StoreResult::NotStored;
        }
        Mode::Cas => match cas_res {
            CasRes::Match => {
                McState::bump(&ex.st().cas_hits);
                item = McItem::new(r.data, r.flags, now_secs);
                event = "set";
            }
            CasRes::Stale => {
                McState::bump(&ex.st().cas_hits);
                item = McItem::new(r.data, r.flags, now_secs);
                item.add_bits(STALE | (old.bits() & TOKEN_SENT));
                exp = old_exp;
                event = "set";
            }
            _ => {
                McState::bump(&ex.st().cas_badval);
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
    McState::bump(&ex.st().total_items);
    put(ex, db, r.key, item, exp, event);
    StoreResult::Stored(cas)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delta {
    Ok { value: u64, cas: u64 },
    NonNumeric,
    NotFound,
    CasMismatch,
}

/// memcached's `do_add_delta` (64-bit wrap on incr, floor 0 on decr; the new value is written
/// in place, space padded, when it is not longer than the old one).
pub(super) fn add_delta(ex: &McExec, db: &mut Db, key: &[u8], incr: bool, delta: u64, cas: u64) -> Delta {
    let (found, _) = lookup(db, key, false);
    let Some(e) = found else {
        return Delta::NotFound;
    };
    let it = as_item(e, ex.now_secs).expect("string");
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
        McState::bump(&ex.st().incr_hits);
    } else {
        McState::bump(&ex.st().decr_hits);
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
    it.set_atime(ex.now_secs);
    let new_cas = it.cas();
    let flags = it.flags();
    let data = if ex.prop { Some(it.data().to_vec()) } else { None };
    db.modified(key, notify::STRING, if incr { "incrby" } else { "decrby" });
    ex.propagate(db, || vec![b"SET".to_vec(), key.to_vec(), data.unwrap_or_default(), b"KEEPTTL".to_vec()]);
    ex.propagate(db, || meta_argv(key, flags, new_cas));
    Delta::Ok { value, cas: new_cas }
}

/// Create a counter item holding `initial` (binary incr miss, `ma N`). Returns its CAS.
pub(super) fn vivify_counter(ex: &McExec, db: &mut Db, key: &[u8], initial: u64, exp: Exp) -> u64 {
    let item = McItem::new(itoa::Buffer::new().format(initial).as_bytes(), 0, ex.now_secs);
    let cas = item.cas();
    McState::bump(&ex.st().cmd_set);
    McState::bump(&ex.st().total_items);
    put(ex, db, key, item, exp, "set");
    cas
}

/// get/gets/gat/gats (and binary get/touch/gat) of one key: fetch semantics (LRU, fetched
/// bit), `touch`: new expiry. `f` sees the item under the shard lock (replies are encoded
/// there, so a hit's value is copied once, into the output buffer).
pub(super) fn fetch<R>(
    ex: &McExec,
    db: &mut Db,
    key: &[u8],
    touch: Option<Exp>,
    f: impl FnOnce(&McItem) -> R,
) -> Option<R> {
    let (found, expired) = lookup(db, key, true);
    let Some(e) = found else {
        if expired {
            McState::bump(&ex.st().get_expired);
        }
        return None;
    };
    let it = as_item(e, ex.now_secs)?;
    it.add_bits(FETCHED);
    it.set_atime(ex.now_secs);
    let r = f(it);
    if let Some(x) = touch {
        set_exp(ex, db, key, x);
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
pub(super) fn flush_all(srv: &Arc<Node>, delay: i64) {
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

/// A too-large set: memcached unlinks the old item so stale data does not survive.
pub fn unlink(srv: &Arc<Node>, key: &[u8]) {
    let ex = McExec::new(srv);
    McState::bump(&ex.st().store_too_large);
    ex.with_key(key, |ex, db| {
        let (found, _) = lookup(db, key, false);
        if found.is_some() {
            remove_key(ex, db, key);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
