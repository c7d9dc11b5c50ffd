//! Consumer groups: XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP), XACK,
//! XPENDING, XCLAIM and XAUTOCLAIM.

use super::{
    id_bulk, int_arg_msg, lookup, nogroup_key_group, parse_id, parse_id_gen, parse_interval_id, parse_strict_id,
    reply_entry, setid_argv, subcommand_syntax, xclaim_argv,
};
use ferrocache_engine::stream::{ConsumerGroup, StreamId, INVALID_ENTRIES_READ};
use ferrocache_engine::{notify, Db, Value};
use ferrocache_node::util::{eq_ic, int_arg, parse_i64, ERR_SYNTAX};
use ferrocache_node::{or_reply, Ctx, ErrorReply};
use ferrocache_protocol::resp::{Args, ReplyBuf};

// ------------------------------------------------------------------ XGROUP

pub(super) fn xgroup_help(ctx: &mut Ctx, _a: Args) {
    let lines = [
        "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE <key> <groupname> <id|$> [option]",
        "    Create a new consumer group. Options are:",
        "    * MKSTREAM",
        "      Create the empty stream if it does not exist.",
        "    * ENTRIESREAD entries_read",
        "      Set the group's entries_read counter (internal use).",
        "CREATECONSUMER <key> <groupname> <consumer>",
        "    Create a new consumer in the specified group.",
        "DELCONSUMER <key> <groupname> <consumer>",
        "    Remove the specified consumer.",
        "DESTROY <key> <groupname>",
        "    Remove the specified group.",
        "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
        "    Set the current group ID and entries_read counter.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}

pub(super) fn xgroup(ctx: &mut Ctx, a: Args) {
    let opt = a[1].to_ascii_lowercase();
    let opt = opt.as_slice();
    let argc = a.len();
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    let create = opt == b"create";
    let setid = opt == b"setid";
    let mut i = 5;
    while i < argc {
        if create && eq_ic(&a[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && eq_ic(&a[i], "entriesread") && i + 1 < argc {
            let Some(v) = int_arg(ctx.out, &a[i + 1]) else {
                return;
            };
            if v < 0 && v != INVALID_ENTRIES_READ {
                return ctx.out.error("ERR value for ENTRIESREAD must be positive or -1");
            }
            entries_read = v;
            i += 2;
        } else {
            return subcommand_syntax(ctx.out, &a);
        }
    }
    let key = &a[2];
    let gname = &a[3];
    let now = ctx.now_ms as i64;
    let (mut db, out) = ctx.parts();
    let dbi = db.db;
    let exists = match lookup(&mut db, key, true) {
        Err(e) => return out.fail(&e),
        Ok(s) => s.is_some(),
    };
    if !mkstream {
        if !exists {
            return out.error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
        }
        let s = lookup(&mut db, key, true).ok().flatten().unwrap();
        if !s.groups.contains_key(gname) && (setid || opt == b"createconsumer" || opt == b"delconsumer") {
            return out.error(&format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(gname),
                String::from_utf8_lossy(key)
            ));
        }
    }
    if create && (5..=8).contains(&argc) {
        let id = if &a[4] == b"$" {
            match lookup(&mut db, key, true) {
                Ok(Some(s)) => s.last_id,
                _ => StreamId::MIN,
            }
        } else {
            let Some(id) = or_reply(out, parse_strict_id(&a[4], 0)) else {
                return;
            };
            id
        };
        if !exists {
            db.set(key, Value::Stream(Box::default()), false);
            db.fx.touch(dbi, key);
        }
        let s = lookup(&mut db, key, true).ok().flatten().unwrap();
        if s.groups.contains_key(gname) {
            return out.error("BUSYGROUP Consumer Group name already exists");
        }
        s.groups.insert(gname.to_vec(), ConsumerGroup::new(id, entries_read));
        out.ok();
        db.fx.dirty += 1;
        db.fx.event(notify::STREAM, "xgroup-create", dbi, key);
    } else if setid && (argc == 5 || argc == 7) {
        let s = lookup(&mut db, key, true).ok().flatten().unwrap();
        let id = if &a[4] == b"$" {
            s.last_id
        } else {
            let Some(id) = parse_id(out, &a[4], 0) else {
                return;
            };
            id
        };
        let g = s.groups.get_mut(gname).unwrap();
        g.last_id = id;
        g.entries_read = entries_read;
        out.ok();
        db.fx.dirty += 1;
        db.fx.event(notify::STREAM, "xgroup-setid", dbi, key);
    } else if opt == b"destroy" && argc == 4 {
        let s = lookup(&mut db, key, true).ok().flatten().unwrap();
        if s.groups.remove(gname as &[u8]).is_some() {
            out.int(1);
            db.fx.dirty += 1;
            db.fx.event(notify::STREAM, "xgroup-destroy", dbi, key);
            db.fx.ready.push((dbi, ferrocache_engine::SmallBytes::new(key)));
        } else {
            out.int(0);
        }
    } else if opt == b"createconsumer" && argc == 5 {
        let s = lookup(&mut db, key, true).ok().flatten().unwrap();
        let g = s.groups.get_mut(gname).unwrap();
        if g.consumers.contains_key(&a[4] as &[u8]) {
            out.int(0);
        } else {
            g.ensure_consumer(&a[4], now);
            out.int(1);
            db.fx.dirty += 1;
            db.fx.event(notify::STREAM, "xgroup-createconsumer", dbi, key);
        }
    } else if opt == b"delconsumer" && argc == 5 {
        let s = lookup(&mut db, key, true).ok().flatten().unwrap();
        let g = s.groups.get_mut(gname).unwrap();
        let mut pending = 0;
        if let Some(c) = g.consumers.remove(&a[4] as &[u8]) {
            pending = c.pel.len();
            for id in c.pel {
                g.pel.remove(&id);
            }
            db.fx.dirty += 1;
            db.fx.event(notify::STREAM, "xgroup-delconsumer", dbi, key);
        }
        out.int(pending as i64);
    } else {
        subcommand_syntax(out, &a);
    }
}

// ------------------------------------------------------------------ XACK / XPENDING

pub(super) fn xack(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, &a[1], false) {
        Err(e) => return out.fail(&e),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get_mut(&a[2] as &[u8])) else {
        return out.int(0);
    };
    let mut ids = Vec::new();
    for x in a.iter().skip(3) {
        let Some(id) = or_reply(out, parse_strict_id(x, 0)) else {
            return;
        };
        ids.push(id);
    }
    let mut n = 0;
    for id in ids {
        if g.remove_nack(id).is_some() {
            n += 1;
        }
    }
    db.fx.dirty += n;
    out.int(n as i64);
}

pub(super) fn xpending(ctx: &mut Ctx, a: Args) {
    let argc = a.len();
    let justinfo = argc == 3;
    let out = &mut *ctx.out;
    if argc != 3 && !(6..=9).contains(&argc) {
        return out.error(ERR_SYNTAX);
    }
    let mut start = StreamId::MIN;
    let mut end = StreamId::MAX;
    let mut count: i64 = 0;
    let mut minidle: i64 = 0;
    let mut consumer: Option<&[u8]> = None;
    if argc >= 6 {
        let mut si = 3;
        if eq_ic(&a[3], "idle") {
            let Some(v) = int_arg(out, &a[4]) else { return };
            minidle = v;
            if argc < 8 {
                return out.error(ERR_SYNTAX);
            }
            si += 2;
        }
        let Some(c) = int_arg(out, &a[si + 2]) else {
            return;
        };
        count = c.max(0);
        let Some((s, sx)) = parse_interval_id(out, &a[si], 0) else {
            return;
        };
        start = s;
        if sx {
            match start.incr() {
                Some(s) => start = s,
                None => return out.error("ERR invalid start ID for the interval"),
            }
        }
        let Some((e, ex)) = parse_interval_id(out, &a[si + 1], u64::MAX) else {
            return;
        };
        end = e;
        if ex {
            match end.decr() {
                Some(e) => end = e,
                None => return out.error("ERR invalid end ID for the interval"),
            }
        }
        if si + 3 < argc {
            consumer = Some(&a[si + 3]);
        }
    }
    let now = ctx.now_ms as i64;
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, &a[1], false) {
        Err(e) => return out.fail(&e),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get(&a[2] as &[u8])) else {
        return out.error(&nogroup_key_group(&a[1], &a[2]));
    };
    if justinfo {
        out.array(4);
        out.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            out.null();
            out.null();
            out.null_array();
        } else {
            id_bulk(out, *g.pel.keys().next().unwrap());
            id_bulk(out, *g.pel.keys().next_back().unwrap());
            let cs: Vec<_> = g.consumers.iter().filter(|(_, c)| !c.pel.is_empty()).collect();
            out.array(cs.len());
            for (name, c) in cs {
                out.array(2);
                out.bulk(name);
                out.bulk_int(c.pel.len() as i64);
            }
        }
        return;
    }
    let ids: Vec<StreamId> = match consumer {
        Some(cn) => match g.consumers.get(cn) {
            None => return out.empty_array(),
            Some(c) => c.pel.range(start..=end.max(start)).copied().filter(|id| *id <= end).collect(),
        },
        None => {
            if start > end {
                Vec::new()
            } else {
                g.pel.range(start..=end).map(|(k, _)| *k).collect()
            }
        }
    };
    let mut rows = Vec::new();
    for id in ids {
        if count == 0 {
            break;
        }
        let n = &g.pel[&id];
        if minidle != 0 && now - n.delivery_time < minidle {
            continue;
        }
        count -= 1;
        rows.push((id, n));
    }
    out.array(rows.len());
    for (id, n) in rows {
        out.array(4);
        id_bulk(out, id);
        out.bulk(&n.consumer);
        out.int((now - n.delivery_time).max(0));
        out.int(n.delivery_count as i64);
    }
}

// ------------------------------------------------------------------ XCLAIM / XAUTOCLAIM

pub(super) fn xclaim(ctx: &mut Ctx, a: Args) {
    ctx.propagate_original = false;
    let now = ctx.now_ms as i64;
    let key = &a[1];
    let gname = &a[2];
    let cname = &a[3];
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, false) {
        Err(e) => return out.fail(&e),
        Ok(s) => s,
    };
    let Some(s) = s.filter(|s| s.groups.contains_key(gname as &[u8])) else {
        return out.error(&nogroup_key_group(key, gname));
    };
    let Some(minidle) = int_arg_msg(out, &a[4], "ERR Invalid min-idle-time argument for XCLAIM") else {
        return;
    };
    let minidle = minidle.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < a.len() {
        match parse_id_gen(&a[j], 0, true, None) {
            Some(id) => ids.push((id, j)),
            None => break,
        }
        j += 1;
    }
    let mut force = false;
    let mut justid = false;
    let mut retrycount: i64 = -1;
    let mut deliverytime: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < a.len() {
        let more = a.len() - 1 - j;
        let o = &a[j];
        if eq_ic(o, "force") {
            force = true;
        } else if eq_ic(o, "justid") {
            justid = true;
        } else if eq_ic(o, "idle") && more > 0 {
            j += 1;
            let Some(v) = int_arg_msg(out, &a[j], "ERR Invalid IDLE option argument for XCLAIM") else {
                return;
            };
            deliverytime = now - v;
        } else if eq_ic(o, "time") && more > 0 {
            j += 1;
            let Some(v) = int_arg_msg(out, &a[j], "ERR Invalid TIME option argument for XCLAIM") else {
                return;
            };
            deliverytime = v;
        } else if eq_ic(o, "retrycount") && more > 0 {
            j += 1;
            let Some(v) = int_arg_msg(out, &a[j], "ERR Invalid RETRYCOUNT option argument for XCLAIM") else {
                return;
            };
            retrycount = v;
        } else if eq_ic(o, "lastid") && more > 0 {
            j += 1;
            let Some(v) = or_reply(out, parse_strict_id(&a[j], 0)) else {
                return;
            };
            last_id = v;
        } else {
            return out.error(&format!("ERR Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(o)));
        }
        j += 1;
    }
    let mut g = s.groups.remove(gname as &[u8]).unwrap();
    let mut propagate_last_id = false;
    if last_id > g.last_id {
        g.last_id = last_id;
        propagate_last_id = true;
    }
    if deliverytime != -1 {
        if deliverytime < 0 || deliverytime > now {
            deliverytime = now;
        }
    } else {
        deliverytime = now;
    }
    let mut props = Vec::new();
    let mut dirty = 0u64;
    let mut created_consumer = false;
    let mut have_consumer = false;
    let mut body = ReplyBuf::new(out.resp3);
    let mut n = 0;
    for (id, argi) in ids {
        let exists = s.exists(id);
        if !exists {
            if let Some(nack) = g.pel.get(&id) {
                props.push(xclaim_argv(
                    key,
                    gname,
                    &g,
                    &a[argi],
                    &nack.consumer.clone(),
                    nack.delivery_time,
                    nack.delivery_count,
                ));
                propagate_last_id = false;
                dirty += 1;
                g.remove_nack(id);
            }
            continue;
        }
        let mut had_owner = true;
        if !g.pel.contains_key(&id) {
            if !force {
                continue;
            }
            had_owner = false;
        }
        if had_owner && minidle != 0 {
            let nack = &g.pel[&id];
            if now - nack.delivery_time < minidle {
                continue;
            }
        }
        if !have_consumer {
            have_consumer = true;
            if g.ensure_consumer(cname, now) {
                created_consumer = true;
            }
        }
        let prev_count = g.pel.get(&id).map(|n| n.delivery_count).unwrap_or(1);
        let count = if retrycount >= 0 {
            retrycount as u64
        } else if !justid {
            prev_count + 1
        } else {
            prev_count
        };
        g.assign(id, cname, deliverytime, count);
        if justid {
            id_bulk(&mut body, id);
        } else {
            reply_entry(&mut body, s.get(id).unwrap());
        }
        n += 1;
        props.push(xclaim_argv(key, gname, &g, &a[argi], cname, deliverytime, count));
        propagate_last_id = false;
        dirty += 1;
    }
    if propagate_last_id {
        props.push(setid_argv(key, gname, &g));
        dirty += 1;
    }
    s.groups.insert(gname.to_vec(), g);
    out.array(n);
    out.raw(&body.buf);
    claim_effects(&mut db, key, created_consumer, dirty, props);
}

pub(super) fn xautoclaim(ctx: &mut Ctx, a: Args) {
    ctx.propagate_original = false;
    let now = ctx.now_ms as i64;
    let key = &a[1];
    let gname = &a[2];
    let cname = &a[3];
    let out = &mut *ctx.out;
    let Some(minidle) = int_arg_msg(out, &a[4], "ERR Invalid min-idle-time argument for XAUTOCLAIM") else {
        return;
    };
    let minidle = minidle.max(0);
    let Some((mut start, sx)) = parse_interval_id(out, &a[5], 0) else {
        return;
    };
    if sx {
        match start.incr() {
            Some(s) => start = s,
            None => return out.error("ERR invalid start ID for the interval"),
        }
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let max_count = i64::MAX / 16;
    let mut j = 6;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if eq_ic(&a[j], "count") && more > 0 {
            match parse_i64(&a[j + 1]) {
                Some(v) if (1..=max_count).contains(&v) => count = v,
                _ => return out.error("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if eq_ic(&a[j], "justid") {
            justid = true;
        } else {
            return out.error(ERR_SYNTAX);
        }
        j += 1;
    }
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, false) {
        Err(e) => return out.fail(&e),
        Ok(s) => s,
    };
    let Some(s) = s.filter(|s| s.groups.contains_key(gname as &[u8])) else {
        return out.error(&nogroup_key_group(key, gname));
    };
    let mut g = s.groups.remove(gname as &[u8]).unwrap();
    let mut attempts = count.saturating_mul(10);
    let keys: Vec<StreamId> =
        g.pel.range(start..).map(|(k, _)| *k).take((attempts as usize).saturating_add(1)).collect();
    let mut idx = 0;
    let mut deleted = Vec::new();
    let mut props = Vec::new();
    let mut body = ReplyBuf::new(out.resp3);
    let mut n = 0;
    let mut have_consumer = false;
    let mut created = false;
    let mut dirty = 0;
    while attempts > 0 && count > 0 && idx < keys.len() {
        attempts -= 1;
        let id = keys[idx];
        idx += 1;
        if !s.exists(id) {
            let nack = g.pel[&id].clone();
            props.push(xclaim_argv(
                key,
                gname,
                &g,
                &id.to_bytes(),
                &nack.consumer,
                nack.delivery_time,
                nack.delivery_count,
            ));
            dirty += 1;
            g.remove_nack(id);
            deleted.push(id);
            count -= 1;
            continue;
        }
        let nack = &g.pel[&id];
        if minidle != 0 && now - nack.delivery_time < minidle {
            continue;
        }
        let dc = nack.delivery_count + if justid { 0 } else { 1 };
        if !have_consumer {
            have_consumer = true;
            created = g.ensure_consumer(cname, now);
        }
        g.assign(id, cname, now, dc);
        if justid {
            id_bulk(&mut body, id);
        } else {
            reply_entry(&mut body, s.get(id).unwrap());
        }
        n += 1;
        count -= 1;
        props.push(xclaim_argv(key, gname, &g, &id.to_bytes(), cname, now, dc));
        dirty += 1;
    }
    let endid = keys.get(idx).copied().unwrap_or(StreamId::MIN);
    s.groups.insert(gname.to_vec(), g);
    out.array(3);
    id_bulk(out, endid);
    out.array(n);
    out.raw(&body.buf);
    out.array(deleted.len());
    for id in deleted {
        id_bulk(out, id);
    }
    claim_effects(&mut db, key, created, dirty, props);
}

/// The effects XCLAIM and XAUTOCLAIM share: the consumer-creation event, dirty count, and the
/// per-entry XCLAIM / XGROUP SETID commands propagated instead of the original.
fn claim_effects(db: &mut Db, key: &[u8], created_consumer: bool, dirty: u64, props: Vec<Vec<Vec<u8>>>) {
    let dbi = db.db;
    if created_consumer {
        db.fx.dirty += 1;
        db.fx.event(notify::STREAM, "xgroup-createconsumer", dbi, key);
    }
    db.fx.dirty += dirty;
    for p in props {
        db.fx.propagate(dbi, p);
    }
}
