//! XADD and XTRIM (with their shared MAXLEN / MINID / LIMIT parsing), XRANGE, XREVRANGE,
//! XLEN and XDEL.

use super::{
    b, id_bulk, lookup, node_limits, num, parse_id_gen, parse_interval_id, parse_strict_id, reply_entry, ERR_INVALID_ID,
};
use ferrocache_engine::notify;
use ferrocache_engine::stream::{AppendError, StreamEntry, StreamId, StreamValue, Trim};
use ferrocache_engine::Value;
use ferrocache_node::util::{eq_ic, int_arg, ERR_SYNTAX, ERR_WRONGTYPE};
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::{Args, ReplyBuf};

// ------------------------------------------------------------------ XADD / XTRIM

struct AddTrimArgs {
    id: StreamId,
    id_given: bool,
    seq_given: bool,
    no_mkstream: bool,
    trim: Trim,
    trim_arg_idx: usize,
    approx: bool,
    limit: i64,
}

/// `streamParseAddOrTrimArgsOrReply`: returns the ID position (XADD) or 0 for XTRIM.
fn parse_add_trim(out: &mut ReplyBuf, a: &Args, xadd: bool, node_max_entries: i64) -> Option<(usize, AddTrimArgs)> {
    let mut p = AddTrimArgs {
        id: StreamId::MIN,
        id_given: false,
        seq_given: true,
        no_mkstream: false,
        trim: Trim::None,
        trim_arg_idx: 0,
        approx: false,
        limit: 0,
    };
    let argc = a.len();
    let mut i = 2;
    let mut limit_given = false;
    while i < argc {
        let more = argc - 1 - i;
        let opt = &a[i];
        if xadd && opt == b"*" {
            break;
        } else if (eq_ic(opt, "maxlen") || eq_ic(opt, "minid")) && more > 0 {
            if !matches!(p.trim, Trim::None) {
                out.error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
                return None;
            }
            p.approx = false;
            let next = &a[i + 1];
            if more >= 2 && next == b"~" {
                p.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            p.trim = if eq_ic(opt, "maxlen") {
                let v = int_arg(out, &a[i + 1])?;
                if v < 0 {
                    out.error("ERR The MAXLEN argument must be >= 0.");
                    return None;
                }
                Trim::MaxLen(v as u64)
            } else {
                Trim::MinId(parse_strict_id(out, &a[i + 1], 0)?)
            };
            i += 1;
            p.trim_arg_idx = i;
        } else if eq_ic(opt, "limit") && more > 0 {
            let v = int_arg(out, &a[i + 1])?;
            if v < 0 {
                out.error("ERR The LIMIT argument must be >= 0.");
                return None;
            }
            p.limit = v;
            limit_given = true;
            i += 1;
        } else if xadd && eq_ic(opt, "nomkstream") {
            p.no_mkstream = true;
        } else if xadd {
            let mut sg = true;
            match parse_id_gen(opt, 0, true, Some(&mut sg)) {
                Some(id) => {
                    p.id = id;
                    p.seq_given = sg;
                    p.id_given = true;
                }
                None => {
                    out.error(ERR_INVALID_ID);
                    return None;
                }
            }
            break;
        } else {
            out.error(ERR_SYNTAX);
            return None;
        }
        i += 1;
    }
    if p.limit != 0 && matches!(p.trim, Trim::None) {
        out.error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && matches!(p.trim, Trim::None) {
        out.error("ERR syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    if limit_given {
        if !p.approx {
            out.error("ERR syntax error, LIMIT cannot be used without the special ~ option");
            return None;
        }
    } else if p.approx {
        p.limit = 100i64.saturating_mul(node_max_entries);
        if p.limit <= 0 {
            p.limit = 10000;
        }
        if p.limit > 1_000_000 {
            p.limit = 1_000_000;
        }
    } else {
        p.limit = 0;
    }
    Some((i, p))
}

/// The argv Redis propagates after an approximate trim (`~` → `=`, the count/ID made exact).
fn rewrite_trim(argv: &mut [Vec<u8>], s: &StreamValue, p: &AddTrimArgs) {
    argv[p.trim_arg_idx - 1] = b("=");
    argv[p.trim_arg_idx] = match p.trim {
        Trim::MaxLen(_) => num(s.length as i64),
        _ => s.first_id_with_tombstones().to_bytes(),
    };
}

pub(super) fn xadd(ctx: &mut Ctx, a: Args) {
    let lim = node_limits(ctx);
    let Some((idpos, p)) = parse_add_trim(ctx.out, &a, true, lim.max_entries as i64) else {
        return;
    };
    let field_pos = idpos + 1;
    if a.len() < field_pos + 2 || (a.len() - field_pos) % 2 == 1 {
        return ctx.wrong_arity();
    }
    if p.id_given && p.seq_given && p.id.is_zero() {
        return ctx.out.error("ERR The ID specified in XADD must be greater than 0-0");
    }
    let now = ctx.now_ms;
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let exists = match lookup(&mut db, key, true) {
        Err(()) => return out.error(ERR_WRONGTYPE),
        Ok(s) => s.is_some(),
    };
    if !exists {
        if p.no_mkstream {
            return out.null();
        }
        db.set(key, Value::Stream(Box::default()), false);
    }
    let s = lookup(&mut db, key, true).ok().flatten().unwrap();
    if s.last_id == StreamId::MAX {
        return out.error("ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let fields: Vec<&[u8]> = a.iter().skip(field_pos).collect();
    let id = match s.append(&fields, if p.id_given { Some(p.id) } else { None }, p.seq_given, now, lim) {
        Ok(id) => id,
        Err(AppendError::IdTooSmall) => {
            return out.error("ERR The ID specified in XADD is equal or smaller than the target stream top item")
        }
        Err(AppendError::TooLarge) => return out.error("ERR Elements are too large to be stored"),
    };
    id_bulk(out, id);
    let mut argv: Vec<Vec<u8>> = a.iter().map(|x| x.to_vec()).collect();
    let mut trimmed = 0;
    if !matches!(p.trim, Trim::None) {
        trimmed = s.trim(p.trim, p.approx, p.limit as u64);
        if p.approx {
            rewrite_trim(&mut argv, s, &p);
        }
    }
    if !p.id_given || !p.seq_given {
        argv[idpos] = id.to_bytes();
    }
    db.modified(key, notify::STREAM, "xadd");
    if trimmed > 0 {
        db.fx.event(notify::STREAM, "xtrim", db.db, key);
    }
    let dbi = db.db;
    db.fx.propagate(dbi, argv);
    db.fx.ready.push((dbi, ferrocache_engine::SmallBytes::new(key)));
    ctx.propagate_original = false;
}

pub(super) fn xtrim(ctx: &mut Ctx, a: Args) {
    let lim = node_limits(ctx);
    let Some((_, p)) = parse_add_trim(ctx.out, &a, false, lim.max_entries as i64) else {
        return;
    };
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, true) {
        Err(()) => return out.error(ERR_WRONGTYPE),
        Ok(None) => return out.int(0),
        Ok(Some(s)) => s,
    };
    let deleted = s.trim(p.trim, p.approx, p.limit as u64);
    if deleted > 0 {
        let mut argv: Vec<Vec<u8>> = a.iter().map(|x| x.to_vec()).collect();
        if p.approx {
            rewrite_trim(&mut argv, s, &p);
        }
        db.modified(key, notify::STREAM, "xtrim");
        db.fx.dirty += deleted - 1;
        let dbi = db.db;
        db.fx.propagate(dbi, argv);
    }
    out.int(deleted as i64);
    ctx.propagate_original = false;
}

// ------------------------------------------------------------------ XRANGE / XLEN / XDEL

fn xrange_generic(ctx: &mut Ctx, a: Args, rev: bool) {
    let out = &mut *ctx.out;
    let (sa, ea) = if rev { (&a[3], &a[2]) } else { (&a[2], &a[3]) };
    let Some((mut start, sx)) = parse_interval_id(out, sa, 0) else {
        return;
    };
    if sx {
        match start.incr() {
            Some(s) => start = s,
            None => return out.error("ERR invalid start ID for the interval"),
        }
    }
    let Some((mut end, ex)) = parse_interval_id(out, ea, u64::MAX) else {
        return;
    };
    if ex {
        match end.decr() {
            Some(e) => end = e,
            None => return out.error("ERR invalid end ID for the interval"),
        }
    }
    let mut count: i64 = -1;
    let mut j = 4;
    while j < a.len() {
        if eq_ic(&a[j], "count") && j + 1 < a.len() {
            let Some(c) = int_arg(out, &a[j + 1]) else {
                return;
            };
            count = c.max(0);
            j += 2;
        } else {
            return out.error(ERR_SYNTAX);
        }
    }
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, &a[1], false) {
        Err(()) => return out.error(ERR_WRONGTYPE),
        Ok(None) => return out.empty_array(),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return out.null_array();
    }
    let it = s.range(start, end, rev);
    let items: Vec<&StreamEntry> = if count > 0 { it.take(count as usize).collect() } else { it.collect() };
    out.array(items.len());
    for e in items {
        reply_entry(out, e);
    }
}

pub(super) fn xrange(ctx: &mut Ctx, a: Args) {
    xrange_generic(ctx, a, false)
}
pub(super) fn xrevrange(ctx: &mut Ctx, a: Args) {
    xrange_generic(ctx, a, true)
}

pub(super) fn xlen(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match lookup(&mut db, &a[1], false) {
        Err(()) => out.error(ERR_WRONGTYPE),
        Ok(None) => out.int(0),
        Ok(Some(s)) => out.int(s.length as i64),
    }
}

pub(super) fn xdel(ctx: &mut Ctx, a: Args) {
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, true) {
        Err(()) => return out.error(ERR_WRONGTYPE),
        Ok(None) => return out.int(0),
        Ok(Some(s)) => s,
    };
    let mut ids = Vec::with_capacity(a.len() - 2);
    for x in a.iter().skip(2) {
        let Some(id) = parse_strict_id(out, x, 0) else {
            return;
        };
        ids.push(id);
    }
    let mut deleted = 0u64;
    let mut first_entry = false;
    for id in ids {
        if s.delete(id) {
            if id == s.first_id {
                first_entry = true;
            }
            if id > s.max_deleted_entry_id {
                s.max_deleted_entry_id = id;
            }
            deleted += 1;
        }
    }
    if deleted > 0 {
        if s.length == 0 {
            s.first_id = StreamId::MIN;
        } else if first_entry {
            s.first_id = s.first_live_id();
        }
        db.modified(key, notify::STREAM, "xdel");
        db.fx.dirty += deleted - 1;
    }
    out.int(deleted as i64);
}
