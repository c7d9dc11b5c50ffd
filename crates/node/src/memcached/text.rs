//! The classic text protocol: get/gets/gat/gats, the storage commands, delete, incr/decr,
//! touch, flush_all and the admin commands, dispatching meta requests to `meta.rs`.

use super::crawler::{lru_crawler, slabs};
use super::discovery::{cluster_configured, cluster_payload, CLUSTER_KEY};
use super::meta::execute_meta;
use super::stats::{reset_stats, stats_group};
use super::store::{
    add_delta, exp_of, fetch, flush_all, lookup, remove_key, store, Delta, McExec, Mode, StoreReq, StoreResult,
};
use super::watch::{log_get, log_store, watch, LOG_FETCHERS};
use super::{McConn, McState, Outcome, PrefixOp, MC_VERSION};
use crate::node::Node;
use ferrocache_engine::mcitem::{item_total_size, slab_class};
use ferrocache_protocol::memcache::text::{self, TextReply};
use ferrocache_protocol::memcache::{MetaRequest, StoreCommand, TextRequest};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

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

/// A read-only replica refuses memcached writes (its data is its primary's).
pub(super) fn replica_refuses(srv: &Node) -> bool {
    srv.repl.is_replica.load(Relaxed) && srv.config.get_bool("replica-read-only")
}

pub const MC_READONLY: &str = "SERVER_ERROR READONLY You can't write against a read only replica.\r\n";

/// Execute one text or meta request, appending the reply to `out`.
pub fn execute_text(srv: &Arc<Node>, conn: &McConn, req: TextRequest<'_>, out: &mut Vec<u8>) -> Outcome {
    if text_is_write(&req) && replica_refuses(srv) {
        out.extend_from_slice(MC_READONLY.as_bytes());
        return Outcome::Continue;
    }
    let mut ex = McExec::new(srv);
    ex.conn = conn.id;
    let ex = ex;
    conn.last_cmd_ms.store(ex.now, Relaxed);
    let st = ex.st();
    match req {
        TextRequest::Get { kind, exptime, keys } => {
            let touch = exptime.map(|t| exp_of(t as i64, ex.now));
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
                let hit = ex.with_key(key, |ex, db| {
                    fetch(ex, db, key, touch, |it| {
                        let cas = with_cas.then_some(it.cas());
                        text::encode_value(out, key, it.flags(), it.data(), cas);
                        (slab_class(item_total_size(key.len(), it.flags(), it.data().len())), it.data().len())
                    })
                });
                srv.mc.detail.record(key, PrefixOp::Get(hit.is_some()));
                log_get(&ex, key, hit);
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
            if !ex.memory_ok() {
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
            if ex.srv.mc.watchers.wants(LOG_FETCHERS) {
                // memcached's do_store_item looks the key up first (and logs that fetch).
                let hit = ex.with_key(key, |ex, db| {
                    fetch(ex, db, key, None, |it| {
                        (slab_class(item_total_size(key.len(), it.flags(), it.data().len())), it.data().len())
                    })
                });
                log_get(&ex, key, hit);
            }
            let res = ex.with_key(key, |ex, db| store(ex, db, &r));
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
            log_store(&ex, key, status, cmd, exptime as i64, flags, data.len());
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
            let hit = ex.with_key(key, |ex, db| {
                let (found, _) = lookup(db, key, false);
                found.is_some() && remove_key(ex, db, key)
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
            match ex.with_key(key, |ex, db| add_delta(ex, db, key, incr, delta, 0)) {
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
            let exp = exp_of(exptime as i64, ex.now);
            let hit = ex.with_key(key, |ex, db| fetch(ex, db, key, Some(exp), |_| ()).is_some());
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
            execute_meta(&ex, m, out);
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
