//! The binary protocol: one request packet in, its response packet(s) out, after SASL
//! (`auth.rs`) and the read-only replica check.

use super::auth::binary_auth;
use super::stats::{reset_stats, stats_group};
use super::store::{
    add_delta, as_item, exp_of, fetch, flush_all, lookup, remove_key, store, vivify_counter, Delta, McExec, Mode,
    StoreReq, StoreResult,
};
use super::text::replica_refuses;
use super::watch::{log_get, log_store};
use super::{McConn, McState, Outcome, PrefixOp, MC_VERSION};
use crate::node::Node;
use ferrocache_engine::mcitem::{item_total_size, slab_class};
use ferrocache_protocol::memcache::binary::{self, BinaryStoreMode};
use ferrocache_protocol::memcache::{BinaryCommand, BinaryRequest, Status};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

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

/// Execute one binary request, appending the response packet(s) to `out`.
pub fn execute_binary(srv: &Arc<Node>, conn: &McConn, req: BinaryRequest<'_>, out: &mut Vec<u8>) -> Outcome {
    if let Some(o) = binary_auth(srv, conn, &req, out) {
        return o;
    }
    if binary_is_write(&req) && replica_refuses(srv) {
        binary::encode_error(out, &req, Status::NotStored);
        return Outcome::Continue;
    }
    let mut ex = McExec::new(srv);
    ex.conn = conn.id;
    let ex = ex;
    conn.last_cmd_ms.store(ex.now, Relaxed);
    let st = ex.st();
    let hcas = req.header.cas;
    match &req.command {
        BinaryCommand::Get { key, .. } => {
            McState::bump(&st.cmd_get);
            let hit = ex.with_key(key, |ex, db| {
                fetch(ex, db, key, None, |it| {
                    binary::encode_get_hit(out, &req, it.flags(), it.cas(), it.data());
                    (slab_class(item_total_size(key.len(), it.flags(), it.data().len())), it.data().len())
                })
            });
            srv.mc.detail.record(key, PrefixOp::Get(hit.is_some()));
            log_get(&ex, key, hit);
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
            let exp = exp_of(*exptime as i64, ex.now);
            // encode_get_hit leaves the value out of a Touch reply.
            let hit = ex.with_key(key, |ex, db| {
                fetch(ex, db, key, Some(exp), |it| binary::encode_get_hit(out, &req, it.flags(), it.cas(), it.data()))
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
            if !ex.memory_ok() {
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
            let res = ex.with_key(key, |ex, db| store(ex, db, &r));
            let status = res.watch_name();
            let cmd = match m {
                Mode::Add => "add",
                Mode::Replace => "replace",
                Mode::Cas => "cas",
                _ => "set",
            };
            log_store(&ex, key, status, cmd, *exptime as i64, *flags, value.len());
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
            if !ex.memory_ok() {
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
            let res = ex.with_key(key, |ex, db| store(ex, db, &r));
            let status = res.watch_name();
            log_store(&ex, key, status, if *append { "append" } else { "prepend" }, 0, 0, value.len());
            match res {
                StoreResult::Stored(c) => binary::encode_success(out, &req, c),
                StoreResult::Exists => binary::encode_error(out, &req, Status::KeyExists),
                StoreResult::NotFound => binary::encode_error(out, &req, Status::KeyNotFound),
                StoreResult::NotStored => binary::encode_error(out, &req, Status::NotStored),
            }
        }
        BinaryCommand::Delete { key } => {
            srv.mc.detail.record(key, PrefixOp::Del);
            let r = ex.with_key(key, |ex, db| {
                let (found, _) = lookup(db, key, false);
                let Some(e) = found else {
                    return Status::KeyNotFound;
                };
                let it = as_item(e, ex.now_secs).unwrap();
                if hcas != 0 && it.cas() != hcas {
                    return Status::KeyExists;
                }
                remove_key(ex, db, key);
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
            let r = ex.with_key(key, |ex, db| match add_delta(ex, db, key, *incr, *delta, hcas) {
                Delta::NotFound if *exptime != 0xffff_ffff && db.peek(key).is_none() => {
                    let c = vivify_counter(ex, db, key, *initial, exp_of(*exptime as i64, ex.now));
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
