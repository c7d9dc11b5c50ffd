//! XREAD and XREADGROUP: serving what is there, and blocking (the retry after a wakeup reuses
//! the IDs stashed on the client).

use super::{b, id_bulk, int_arg_msg, lookup, parse_strict_id, reply_entry, setid_argv, xclaim_argv};
use ferrocache_engine::notify;
use ferrocache_engine::stream::{StreamEntry, StreamId};
use ferrocache_node::client::BlockRequest;
use ferrocache_node::util::{eq_ic, int_arg, ERR_SYNTAX};
use ferrocache_node::{or_reply, Ctx, ErrorReply};
use ferrocache_protocol::resp::{Args, ReplyBuf};

// ------------------------------------------------------------------ XREAD / XREADGROUP

/// Key positions of XREAD/XREADGROUP: the first half of the arguments after STREAMS.
pub(super) fn xread_keys(a: Args) -> Vec<usize> {
    let mut i = 1;
    while i < a.len() {
        let more = a.len() - i - 1;
        let o = &a[i];
        if (eq_ic(o, "block") || eq_ic(o, "count")) && more > 0 {
            i += 2;
        } else if eq_ic(o, "group") && more >= 2 {
            i += 3;
        } else if eq_ic(o, "streams") && more > 0 {
            let n = more / 2;
            return (i + 1..i + 1 + n).collect();
        } else {
            i += 1;
        }
    }
    Vec::new()
}

pub(super) fn xread(ctx: &mut Ctx, a: Args) {
    xread_generic(ctx, a, false)
}
pub(super) fn xreadgroup(ctx: &mut Ctx, a: Args) {
    xread_generic(ctx, a, true)
}

fn xread_generic(ctx: &mut Ctx, a: Args, xreadgroup: bool) {
    let argv: Vec<Vec<u8>> = a.iter().map(|x| x.to_vec()).collect();
    // A retry after a wakeup of this very command (same args, deadline not passed).
    let retry_ids = match ctx.client.stream_block.take() {
        Some((args0, deadline, ids)) if args0 == argv && (deadline == 0 || ctx.now_ms < deadline) => {
            Some((deadline, ids))
        }
        _ => None,
    };
    ctx.propagate_original = false;
    let now = ctx.now_ms;
    let mut timeout: i64 = -1;
    let mut count: i64 = 0;
    let mut streams_arg = 0;
    let mut nstreams = 0;
    let mut noack = false;
    let mut group: Option<(&[u8], &[u8])> = None;
    let argc = a.len();
    let mut i = 1;
    while i < argc {
        let more = argc - i - 1;
        let o = &a[i];
        if eq_ic(o, "block") && more > 0 {
            if ctx.client.in_script {
                // No sense in BLOCK within a script (Redis keeps this error for compatibility).
                return ctx.out.error(&format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(&a[0])
                ));
            }
            i += 1;
            let Some(t) = int_arg_msg(ctx.out, &a[i], "ERR timeout is not an integer or out of range") else {
                return;
            };
            if t < 0 {
                return ctx.out.error("ERR timeout is negative");
            }
            timeout = t;
        } else if eq_ic(o, "count") && more > 0 {
            i += 1;
            let Some(c) = int_arg(ctx.out, &a[i]) else {
                return;
            };
            count = c.max(0);
        } else if eq_ic(o, "streams") && more > 0 {
            streams_arg = i + 1;
            nstreams = argc - streams_arg;
            if nstreams % 2 != 0 {
                return ctx.out.error(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                );
            }
            nstreams /= 2;
            break;
        } else if eq_ic(o, "group") && more >= 2 {
            if !xreadgroup {
                return ctx
                    .out
                    .error("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
            }
            group = Some((&a[i + 1], &a[i + 2]));
            i += 2;
        } else if eq_ic(o, "noack") {
            if !xreadgroup {
                return ctx
                    .out
                    .error("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
            }
            noack = true;
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
        i += 1;
    }
    if streams_arg == 0 {
        return ctx.out.error(ERR_SYNTAX);
    }
    if xreadgroup && group.is_none() {
        return ctx.out.error("ERR Missing GROUP option for XREADGROUP");
    }
    // Resolve the IDs (None = ">").
    let mut ids: Vec<Option<StreamId>> = Vec::with_capacity(nstreams);
    {
        let (mut db, out) = ctx.parts();
        for k in 0..nstreams {
            let key = &a[streams_arg + k];
            let ida = &a[streams_arg + nstreams + k];
            let s = match lookup(&mut db, key, false) {
                // A waiter re-run after its stream was replaced by another type sees it as
                // gone (XREADGROUP: UNBLOCKED; XREAD keeps waiting), as Redis does.
                Err(_) if retry_ids.is_some() => None,
                Err(e) => return out.fail(&e),
                Ok(s) => s,
            };
            if let Some((gname, _)) = group {
                if s.as_ref().is_none_or(|s| !s.groups.contains_key(gname)) {
                    if retry_ids.is_some() {
                        return match s {
                            None => out.error("UNBLOCKED the stream key no longer exists"),
                            Some(_) => {
                                out.error("NOGROUP the consumer group this client was blocked on no longer exists")
                            }
                        };
                    }
                    return out.error(&format!(
                        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                        String::from_utf8_lossy(key),
                        String::from_utf8_lossy(gname)
                    ));
                }
            }
            if ida == b"$" {
                if xreadgroup {
                    return out.error("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
                }
                ids.push(Some(s.map(|s| s.last_id).unwrap_or_default()));
                continue;
            } else if ida == b">" {
                if !xreadgroup {
                    return out.error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
                }
                ids.push(None);
                continue;
            }
            let Some(id) = or_reply(out, parse_strict_id(ida, 0)) else {
                return;
            };
            ids.push(Some(id));
        }
    }
    if let Some((_, stashed)) = &retry_ids {
        if !xreadgroup && stashed.len() == ids.len() {
            for (k, (ms, seq)) in stashed.iter().enumerate() {
                ids[k] = Some(StreamId::new(*ms, *seq));
            }
        }
        if count == 0 {
            count = 1000;
        }
    }
    // Serve synchronously what can be served.
    let resp3 = ctx.out.resp3;
    let mut body = ReplyBuf::new(resp3);
    let mut served = 0usize;
    {
        let (mut db, _) = ctx.parts();
        let dbi = db.db;
        for k in 0..nstreams {
            let key = &a[streams_arg + k];
            let mut props: Vec<Vec<Vec<u8>>> = Vec::new();
            let mut events = 0;
            let did = {
                let Ok(Some(s)) = lookup(&mut db, key, xreadgroup) else {
                    continue;
                };
                match group {
                    None => {
                        let gt = ids[k].unwrap();
                        if s.length > 0 && s.last_live_id() > gt {
                            let start = gt.incr().unwrap_or(StreamId::MAX);
                            if resp3 {
                                body.bulk(key);
                            } else {
                                body.array(2);
                                body.bulk(key);
                            }
                            let it = s.range(start, StreamId::MAX, false);
                            let items: Vec<&StreamEntry> =
                                if count > 0 { it.take(count as usize).collect() } else { it.collect() };
                            body.array(items.len());
                            for e in items {
                                reply_entry(&mut body, e);
                            }
                            true
                        } else {
                            false
                        }
                    }
                    Some((gname, cname)) => {
                        let history = ids[k].is_some();
                        let mut gt = ids[k].unwrap_or(StreamId::MAX);
                        let serve = if history {
                            true
                        } else if s.length > 0 {
                            let last = s.groups[gname].last_id;
                            if s.last_live_id() > last {
                                gt = last;
                                true
                            } else {
                                false
                            }
                        } else {
                            false
                        };
                        if serve {
                            if resp3 {
                                body.bulk(key);
                            } else {
                                body.array(2);
                                body.bulk(key);
                            }
                            let start = gt.incr().unwrap_or(StreamId::MAX);
                            let mut g = s.groups.remove(gname).unwrap();
                            if g.ensure_consumer(cname, now as i64) {
                                events += 1;
                                if noack {
                                    props.push(vec![
                                        b("XGROUP"),
                                        b("CREATECONSUMER"),
                                        key.to_vec(),
                                        gname.to_vec(),
                                        cname.to_vec(),
                                    ]);
                                }
                            }
                            if history {
                                let c = &g.consumers[cname];
                                let pel: Vec<StreamId> = c
                                    .pel
                                    .range(start..)
                                    .take(if count > 0 { count as usize } else { usize::MAX })
                                    .copied()
                                    .collect();
                                body.array(pel.len());
                                for id in pel {
                                    match s.get(id) {
                                        Some(e) => {
                                            reply_entry(&mut body, e);
                                            if let Some(n) = g.pel.get_mut(&id) {
                                                n.delivery_time = now as i64;
                                                n.delivery_count += 1;
                                            }
                                        }
                                        None => {
                                            body.array(2);
                                            id_bulk(&mut body, id);
                                            body.null_array();
                                        }
                                    }
                                }
                            } else {
                                let items: Vec<StreamId> = {
                                    let it = s.range(start, StreamId::MAX, false).map(|e| e.id);
                                    if count > 0 {
                                        it.take(count as usize).collect()
                                    } else {
                                        it.collect()
                                    }
                                };
                                let mut last_moved = false;
                                body.array(items.len());
                                for id in items {
                                    if id > g.last_id {
                                        s.group_deliver(&mut g, id);
                                        if noack {
                                            last_moved = true;
                                        }
                                    }
                                    reply_entry(&mut body, s.get(id).unwrap());
                                    if !noack {
                                        g.assign(id, cname, now as i64, 1);
                                        props.push(xclaim_argv(key, gname, &g, &id.to_bytes(), cname, now as i64, 1));
                                    }
                                }
                                if last_moved {
                                    props.push(setid_argv(key, gname, &g));
                                }
                            }
                            s.groups.insert(gname.to_vec(), g);
                            true
                        } else {
                            false
                        }
                    }
                }
            };
            if events > 0 {
                db.fx.event(notify::STREAM, "xgroup-createconsumer", dbi, key);
                db.fx.dirty += 1;
            }
            for p in props {
                db.fx.propagate(dbi, p);
            }
            if did {
                served += 1;
                if group.is_some() {
                    db.fx.dirty += 1;
                }
            }
        }
    }
    if served > 0 {
        if resp3 {
            ctx.out.map(served);
        } else {
            ctx.out.array(served);
        }
        ctx.out.raw(&body.buf);
        return;
    }
    if timeout != -1 {
        if ctx.client.in_exec || ctx.client.multi.is_some() {
            return ctx.out.null_array();
        }
        let deadline = match &retry_ids {
            Some((d, _)) => *d,
            None if timeout == 0 => 0,
            None => now + timeout as u64,
        };
        let keys: Vec<Vec<u8>> = (0..nstreams).map(|k| a[streams_arg + k].to_vec()).collect();
        let stash: Vec<(u64, u64)> =
            ids.iter().map(|x| x.map(|i| (i.ms, i.seq)).unwrap_or((u64::MAX, u64::MAX))).collect();
        ctx.client.stream_block = Some((argv, deadline, stash));
        ctx.after_reply(ferrocache_node::client::Then::Block(BlockRequest {
            keys,
            db: ctx.client.db,
            deadline_ms: deadline,
            null_array_on_timeout: true,
        }));
        return;
    }
    ctx.out.null_array();
}
