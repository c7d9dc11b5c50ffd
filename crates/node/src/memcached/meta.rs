//! The meta protocol (`mn`, `me`, `mg`, `ms`, `md`, `ma`) on top of the storage core: tokens
//! that change the TTL, stale items and recache wins, vivify on miss.

use super::store::{
    add_delta, as_item, exp_ms, exp_of, lookup, put, remove_key, set_exp, store, ttl_left, vivify_counter, Delta, Exp,
    McExec, Mode, StoreReq, StoreResult,
};
use super::McState;
use ferrocache_engine::mcitem::{self, item_total_size, slab_class, McItem, FETCHED, KEY_BINARY, STALE, TOKEN_SENT};
use ferrocache_engine::notify;
use ferrocache_protocol::memcache::meta::{self, MetaArithResult, MetaDeleteStatus, MetaItem, MetaStoreStatus};
use ferrocache_protocol::memcache::text;
use ferrocache_protocol::memcache::{MetaArgs, MetaRequest, MetaSetMode};

/// The TTL shown by a `t` token given the tokens before it that change the expiry.
fn meta_ttls(args: &MetaArgs<'_>, ex: &McExec, start_expire: u64, created: bool) -> (Option<u32>, Option<Exp>) {
    let mut cur = start_expire;
    let mut shown = ttl_left(cur, ex.now);
    let mut newexp = None;
    for t in &args.tokens {
        match t[0] {
            b'T' => {
                let e = exp_of(args.flags.ttl.unwrap_or(0) as i64, ex.now);
                cur = exp_ms(e);
                newexp = Some(e);
            }
            b'N' if created => {
                let e = exp_of(args.flags.vivify_ttl.unwrap_or(0) as i64, ex.now);
                cur = exp_ms(e);
                newexp = Some(e);
            }
            b't' => shown = ttl_left(cur, ex.now),
            _ => {}
        }
    }
    (shown, newexp)
}

pub(super) fn execute_meta(ex: &McExec, req: MetaRequest<'_>, out: &mut Vec<u8>) {
    let st = ex.st();
    match req {
        MetaRequest::Noop => meta::encode_mn(out),
        MetaRequest::Debug { key, base64 } => {
            let info = ex.with_key(&key, |ex, db| {
                let (found, _) = lookup(db, &key, false);
                let e = found?;
                let expire_at = e.expire_at;
                let it = as_item(e, ex.now_secs)?;
                Some((expire_at, it.atime(), it.cas(), it.has(FETCHED), it.flags(), it.data().len()))
            });
            match info {
                Some((expire_at, atime, cas, fetched, flags, n)) => {
                    let size = item_total_size(key.len(), flags, n);
                    meta::encode_me_hit(
                        out,
                        &key,
                        base64,
                        ttl_left(expire_at, ex.now),
                        ex.now_secs.saturating_sub(atime) as u64,
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
            let r = ex.with_key(key, |ex, db| {
                let (found, expired) = lookup(db, key, !f.no_update);
                if found.is_none() && expired {
                    McState::bump(&ex.st().get_expired);
                }
                let mut created = false;
                if found.is_none() {
                    f.vivify_ttl?;
                    if db.peek(key).is_some() {
                        return None; // another Redis type
                    }
                    // memcached links the empty item first and applies N's TTL with the flags.
                    let item = McItem::new(&[], 0, ex.now_secs);
                    McState::bump(&ex.st().total_items);
                    put(ex, db, key, item, Exp::Never, "set");
                    created = true;
                }
                let e = db.peek(key).unwrap();
                let expire_at = e.expire_at;
                let it = as_item(e, ex.now_secs).unwrap();
                let (ttl, newexp) = meta_ttls(&args, ex, expire_at, created);
                let mut win = created && f.vivify_ttl.is_some();
                if let Some(rt) = f.recache_ttl {
                    if !it.has(TOKEN_SENT) && !created && expire_at != 0 {
                        if let Exp::At(ms) = exp_of(rt as i64, ex.now) {
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
                    last_access: ex.now_secs.saturating_sub(it.atime()),
                    fetched: it.has(FETCHED),
                    token_sent,
                    stale,
                    win,
                };
                let value = if f.return_value || f.return_size { it.data().to_vec() } else { Vec::new() };
                if !f.no_update {
                    it.add_bits(FETCHED);
                    it.set_atime(ex.now_secs);
                }
                let ttl_set = f.ttl.is_some();
                if let Some(e) = newexp {
                    set_exp(ex, db, key, e);
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
            if !ex.memory_ok() {
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
            let res = ex.with_key(key, |ex, db| store(ex, db, &r));
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
            let status = ex.with_key(key, |ex, db| {
                let (found, _) = lookup(db, key, false);
                let Some(e) = found else {
                    return MetaDeleteStatus::NotFound;
                };
                let it = as_item(e, ex.now_secs).unwrap();
                if let Some(c) = f.compare_cas {
                    if it.cas() != c {
                        McState::bump(&ex.st().delete_misses);
                        return MetaDeleteStatus::Exists;
                    }
                }
                if f.invalidate {
                    it.add_bits(STALE);
                    it.set_bits(it.bits() & !TOKEN_SENT);
                    it.set_cas(mcitem::next_cas());
                    if let Some(t) = f.ttl {
                        set_exp(ex, db, key, exp_of(t as i64, ex.now));
                    }
                    db.modified(key, notify::GENERIC, "stale");
                    MetaDeleteStatus::Deleted
                } else {
                    McState::bump(&ex.st().delete_hits);
                    remove_key(ex, db, key);
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
            let r = ex.with_key(key, |ex, db| {
                let mut created = false;
                let cas;
                let value;
                match add_delta(ex, db, key, incr, delta, f.compare_cas.unwrap_or(0)) {
                    Delta::Ok { value: v, cas: c } => {
                        value = v;
                        cas = c;
                    }
                    Delta::NonNumeric => return Err(()),
                    Delta::CasMismatch => return Ok(MetaArithResult::Exists),
                    Delta::NotFound => {
                        if f.vivify_ttl.is_none() || db.peek(key).is_some() {
                            McState::bump(if incr { &ex.st().incr_misses } else { &ex.st().decr_misses });
                            return Ok(MetaArithResult::NotFound);
                        }
                        let initial = f.initial.unwrap_or(0);
                        cas = vivify_counter(ex, db, key, initial, Exp::Never);
                        value = initial;
                        created = true;
                    }
                }
                let expire_at = db.peek(key).map(|e| e.expire_at).unwrap_or(0);
                let (ttl, newexp) = meta_ttls(&args, ex, expire_at, created);
                if let Some(e) = newexp {
                    set_exp(ex, db, key, e);
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
