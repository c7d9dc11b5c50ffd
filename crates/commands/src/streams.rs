//! Stream commands (Redis 7.0 `t_stream.c`): XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM,
//! XREAD, XREADGROUP, XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO, XSETID.
//! Write effects follow Redis: XADD propagates with the generated ID (and `~` trims rewritten
//! to `=`), XREADGROUP/XCLAIM/XAUTOCLAIM propagate as XCLAIM / XGROUP SETID / CREATECONSUMER.

use ferrocache_engine::stream::{
    AppendError, ConsumerGroup, NodeLimits, StreamEntry, StreamId, StreamValue, Trim, INVALID_ENTRIES_READ,
};
use ferrocache_engine::{notify, Db, Value};
use ferrocache_node::client::BlockRequest;
use ferrocache_node::subcommand_required;
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::{Args, ReplyBuf};

const G: &str = "stream";

pub static COMMANDS: &[Command] = &[
    Command::new("xadd", -5, WRITE | DENYOOM | FAST, (1, 1, 1), xadd).group(G),
    Command::new("xrange", -4, READONLY, (1, 1, 1), xrange).group(G),
    Command::new("xrevrange", -4, READONLY, (1, 1, 1), xrevrange).group(G),
    Command::new("xlen", 2, READONLY | FAST, (1, 1, 1), xlen).group(G),
    Command::new("xdel", -3, WRITE | FAST, (1, 1, 1), xdel).group(G),
    Command::new("xtrim", -4, WRITE, (1, 1, 1), xtrim).group(G),
    Command::new("xread", -4, READONLY | BLOCKING, (0, 0, 0), xread).keys(xread_keys).group(G),
    Command::new("xreadgroup", -7, WRITE | BLOCKING, (0, 0, 0), xreadgroup).keys(xread_keys).group(G),
    Command::new("xgroup", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(XGROUP_SUBS),
    Command::new("xsetid", -3, WRITE | DENYOOM | FAST, (1, 1, 1), xsetid).group(G),
    Command::new("xack", -4, WRITE | FAST, (1, 1, 1), xack).group(G),
    Command::new("xpending", -3, READONLY, (1, 1, 1), xpending).group(G),
    Command::new("xclaim", -6, WRITE | FAST, (1, 1, 1), xclaim).group(G),
    Command::new("xautoclaim", -6, WRITE | FAST, (1, 1, 1), xautoclaim).group(G),
    Command::new("xinfo", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(XINFO_SUBS),
];

static XGROUP_SUBS: &[Command] = &[
    Command::new("xgroup|create", -5, WRITE | DENYOOM, (2, 2, 1), xgroup).group(G),
    Command::new("xgroup|setid", -5, WRITE, (2, 2, 1), xgroup).group(G),
    Command::new("xgroup|destroy", 4, WRITE, (2, 2, 1), xgroup).group(G),
    Command::new("xgroup|createconsumer", 5, WRITE | DENYOOM, (2, 2, 1), xgroup).group(G),
    Command::new("xgroup|delconsumer", 5, WRITE, (2, 2, 1), xgroup).group(G),
    Command::new("xgroup|help", 2, LOADING | STALE, (0, 0, 0), xgroup_help).group(G),
];

static XINFO_SUBS: &[Command] = &[
    Command::new("xinfo|consumers", 4, READONLY, (2, 2, 1), xinfo).group(G),
    Command::new("xinfo|groups", 3, READONLY, (2, 2, 1), xinfo).group(G),
    Command::new("xinfo|stream", -3, READONLY, (2, 2, 1), xinfo).group(G),
    Command::new("xinfo|help", 2, LOADING | STALE, (0, 0, 0), xinfo_help).group(G),
];

const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

// ------------------------------------------------------------------ helpers

/// `strtoull` as `string2ull` falls back to it: spaces, sign, leading zeros.
fn strtoull(s: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < s.len() && (s[i] == b' ' || (9..=13).contains(&s[i])) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    if i >= s.len() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in &s[i..] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

fn string2ull(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    if let Some(v) = ferrocache_engine::value::parse_i64_exact(s) {
        return if v < 0 { None } else { Some(v as u64) };
    }
    strtoull(s)
}

/// `streamGenericParseIDOrReply` without the reply. `seq_given`: accept `<ms>-*`.
fn parse_id_gen(a: &[u8], missing_seq: u64, strict: bool, seq_given: Option<&mut bool>) -> Option<StreamId> {
    if a.len() > 127 {
        return None;
    }
    // C string semantics: stop at the first NUL.
    let a = match a.iter().position(|&c| c == 0) {
        Some(p) => &a[..p],
        None => a,
    };
    if strict && (a == b"-" || a == b"+") {
        return None;
    }
    let mut sg = true;
    let r = (|| {
        if a == b"-" {
            return Some(StreamId::MIN);
        }
        if a == b"+" {
            return Some(StreamId::MAX);
        }
        match a.iter().position(|&c| c == b'-') {
            Some(p) => {
                let ms = string2ull(&a[..p])?;
                let rest = &a[p + 1..];
                let seq = if seq_given.is_some() && rest == b"*" {
                    sg = false;
                    0
                } else {
                    string2ull(rest)?
                };
                Some(StreamId::new(ms, seq))
            }
            None => Some(StreamId::new(string2ull(a)?, missing_seq)),
        }
    })();
    if let Some(g) = seq_given {
        *g = sg;
    }
    r
}

fn parse_id(out: &mut ReplyBuf, a: &[u8], missing_seq: u64) -> Option<StreamId> {
    let r = parse_id_gen(a, missing_seq, false, None);
    if r.is_none() {
        out.error(ERR_INVALID_ID);
    }
    r
}

fn parse_strict_id(out: &mut ReplyBuf, a: &[u8], missing_seq: u64) -> Option<StreamId> {
    let r = parse_id_gen(a, missing_seq, true, None);
    if r.is_none() {
        out.error(ERR_INVALID_ID);
    }
    r
}

/// `streamParseIntervalIDOrReply`: returns (id, exclusive).
fn parse_interval_id(out: &mut ReplyBuf, a: &[u8], missing_seq: u64) -> Option<(StreamId, bool)> {
    if a.len() > 1 && a[0] == b'(' {
        parse_strict_id(out, &a[1..], missing_seq).map(|id| (id, true))
    } else {
        parse_id(out, a, missing_seq).map(|id| (id, false))
    }
}

fn id_bulk(out: &mut ReplyBuf, id: StreamId) {
    out.bulk(&id.to_bytes());
}

fn reply_entry(out: &mut ReplyBuf, e: &StreamEntry) {
    out.array(2);
    id_bulk(out, e.id);
    out.array(e.fields.len());
    for f in &e.fields {
        out.bulk(f);
    }
}

fn node_limits(ctx: &Ctx) -> NodeLimits {
    let b = ctx.srv.config.get_i64("stream-node-max-bytes");
    let e = ctx.srv.config.get_i64("stream-node-max-entries");
    NodeLimits { max_bytes: b.max(0) as usize, max_entries: e.max(0) as usize }
}

/// Ok(None) missing, Err(()) wrong type (nothing written).
fn lookup<'d>(db: &'d mut Db<'_, '_>, key: &[u8], write: bool) -> Result<Option<&'d mut StreamValue>, ()> {
    let e = if write { db.get_mut(key) } else { db.get(key) };
    match e {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(()),
        },
    }
}

fn nogroup_key_group(key: &[u8], group: &[u8]) -> String {
    format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    )
}

fn int_arg_msg(out: &mut ReplyBuf, a: &[u8], msg: &str) -> Option<i64> {
    match parse_i64(a) {
        Some(v) => Some(v),
        None => {
            out.error(msg);
            None
        }
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn num(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// The XCLAIM Redis propagates for a PEL change (`streamPropagateXCLAIM`).
fn xclaim_argv(
    key: &[u8],
    group: &[u8],
    g: &ConsumerGroup,
    id_arg: &[u8],
    consumer: &[u8],
    time: i64,
    count: u64,
) -> Vec<Vec<u8>> {
    vec![
        b("XCLAIM"),
        key.to_vec(),
        group.to_vec(),
        consumer.to_vec(),
        b("0"),
        id_arg.to_vec(),
        b("TIME"),
        num(time),
        b("RETRYCOUNT"),
        num(count as i64),
        b("FORCE"),
        b("JUSTID"),
        b("LASTID"),
        g.last_id.to_bytes(),
    ]
}

fn setid_argv(key: &[u8], group: &[u8], g: &ConsumerGroup) -> Vec<Vec<u8>> {
    vec![
        b("XGROUP"),
        b("SETID"),
        key.to_vec(),
        group.to_vec(),
        g.last_id.to_bytes(),
        b("ENTRIESREAD"),
        num(g.entries_read),
    ]
}

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

fn xadd(ctx: &mut Ctx, a: Args) {
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

fn xtrim(ctx: &mut Ctx, a: Args) {
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

fn xrange(ctx: &mut Ctx, a: Args) {
    xrange_generic(ctx, a, false)
}
fn xrevrange(ctx: &mut Ctx, a: Args) {
    xrange_generic(ctx, a, true)
}

fn xlen(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match lookup(&mut db, &a[1], false) {
        Err(()) => out.error(ERR_WRONGTYPE),
        Ok(None) => out.int(0),
        Ok(Some(s)) => out.int(s.length as i64),
    }
}

fn xdel(ctx: &mut Ctx, a: Args) {
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

// ------------------------------------------------------------------ XREAD / XREADGROUP

/// Key positions of XREAD/XREADGROUP: the first half of the arguments after STREAMS.
fn xread_keys(a: Args) -> Vec<usize> {
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

fn xread(ctx: &mut Ctx, a: Args) {
    xread_generic(ctx, a, false)
}
fn xreadgroup(ctx: &mut Ctx, a: Args) {
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
                Err(()) if retry_ids.is_some() => None,
                Err(()) => return out.error(ERR_WRONGTYPE),
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
            let Some(id) = parse_strict_id(out, ida, 0) else {
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
        ctx.client.block =
            Some(BlockRequest { keys, db: ctx.client.db, deadline_ms: deadline, null_array_on_timeout: true });
        return;
    }
    ctx.out.null_array();
}

// ------------------------------------------------------------------ XGROUP / XSETID

fn xgroup_help(ctx: &mut Ctx, _a: Args) {
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

fn subcommand_syntax(out: &mut ReplyBuf, a: &Args) {
    out.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(&a[1]).chars().take(128).collect::<String>(),
        String::from_utf8_lossy(&a[0]).to_uppercase()
    ));
}

fn xgroup(ctx: &mut Ctx, a: Args) {
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
        Err(()) => return out.error(ERR_WRONGTYPE),
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
            let Some(id) = parse_strict_id(out, &a[4], 0) else {
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

fn xsetid(ctx: &mut Ctx, a: Args) {
    let out = &mut *ctx.out;
    let Some(id) = parse_strict_id(out, &a[2], 0) else {
        return;
    };
    let mut max_xdel = StreamId::MIN;
    let mut entries_added: i64 = -1;
    let mut i = 3;
    while i < a.len() {
        let more = a.len() - 1 - i;
        if eq_ic(&a[i], "entriesadded") && more > 0 {
            let Some(v) = int_arg(out, &a[i + 1]) else {
                return;
            };
            if v < 0 {
                return out.error("ERR entries_added must be positive");
            }
            entries_added = v;
            i += 2;
        } else if eq_ic(&a[i], "maxdeletedid") && more > 0 {
            let Some(v) = parse_strict_id(out, &a[i + 1], 0) else {
                return;
            };
            if id < v {
                return out.error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
            max_xdel = v;
            i += 2;
        } else {
            return out.error(ERR_SYNTAX);
        }
    }
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, true) {
        Err(()) => return out.error(ERR_WRONGTYPE),
        Ok(None) => return out.error(ERR_NO_KEY),
        Ok(Some(s)) => s,
    };
    if s.length > 0 {
        if id < s.last_live_id() {
            return out.error("ERR The ID specified in XSETID is smaller than the target stream top item");
        }
        if entries_added != -1 && s.length > entries_added as u64 {
            return out.error("ERR The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if !max_xdel.is_zero() {
        s.max_deleted_entry_id = max_xdel;
    }
    out.ok();
    let dbi = db.db;
    db.fx.dirty += 1;
    db.fx.event(notify::STREAM, "xsetid", dbi, key);
}

// ------------------------------------------------------------------ XACK / XPENDING

fn xack(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, &a[1], false) {
        Err(()) => return out.error(ERR_WRONGTYPE),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get_mut(&a[2] as &[u8])) else {
        return out.int(0);
    };
    let mut ids = Vec::new();
    for x in a.iter().skip(3) {
        let Some(id) = parse_strict_id(out, x, 0) else {
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

fn xpending(ctx: &mut Ctx, a: Args) {
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
        Err(()) => return out.error(ERR_WRONGTYPE),
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

fn xclaim(ctx: &mut Ctx, a: Args) {
    ctx.propagate_original = false;
    let now = ctx.now_ms as i64;
    let key = &a[1];
    let gname = &a[2];
    let cname = &a[3];
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, false) {
        Err(()) => return out.error(ERR_WRONGTYPE),
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
            let Some(v) = parse_strict_id(out, &a[j], 0) else {
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

fn xautoclaim(ctx: &mut Ctx, a: Args) {
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
        Err(()) => return out.error(ERR_WRONGTYPE),
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

// ------------------------------------------------------------------ XINFO

fn xinfo_help(ctx: &mut Ctx, _a: Args) {
    let lines = [
        "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CONSUMERS <key> <groupname>",
        "    Show consumers of <groupname>.",
        "GROUPS <key>",
        "    Show the stream consumer groups.",
        "STREAM <key> [FULL [COUNT <count>]",
        "    Show information about the stream.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}

fn lag_reply(out: &mut ReplyBuf, s: &StreamValue, g: &ConsumerGroup) {
    match s.group_lag(g) {
        Some(l) => out.int(l),
        None => out.null(),
    }
}

fn entries_read_reply(out: &mut ReplyBuf, g: &ConsumerGroup) {
    if g.entries_read != INVALID_ENTRIES_READ {
        out.int(g.entries_read);
    } else {
        out.null();
    }
}

fn xinfo(ctx: &mut Ctx, a: Args) {
    let now = ctx.now_ms as i64;
    let opt = a[1].to_ascii_lowercase();
    let key = &a[2];
    // Parse XINFO STREAM options before the lookup? Redis looks the key up first.
    let (mut db, out) = ctx.parts();
    let s = match lookup(&mut db, key, false) {
        Err(()) => return out.error(ERR_WRONGTYPE),
        Ok(None) => return out.error(ERR_NO_KEY),
        Ok(Some(s)) => s,
    };
    if opt == b"consumers" && a.len() == 4 {
        let Some(g) = s.groups.get(&a[3] as &[u8]) else {
            return out.error(&format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(&a[3]),
                String::from_utf8_lossy(key)
            ));
        };
        out.array(g.consumers.len());
        for (name, c) in &g.consumers {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"pending");
            out.int(c.pel.len() as i64);
            out.bulk(b"idle");
            out.int((now - c.seen_time).max(0));
        }
    } else if opt == b"groups" && a.len() == 3 {
        out.array(s.groups.len());
        for (name, g) in &s.groups {
            out.map(6);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"consumers");
            out.int(g.consumers.len() as i64);
            out.bulk(b"pending");
            out.int(g.pel.len() as i64);
            out.bulk(b"last-delivered-id");
            id_bulk(out, g.last_id);
            out.bulk(b"entries-read");
            entries_read_reply(out, g);
            out.bulk(b"lag");
            lag_reply(out, s, g);
        }
    } else if opt == b"stream" {
        let optc = a.len() - 3;
        let mut full = true;
        let mut count: i64 = 10;
        if optc == 0 {
            full = false;
        } else {
            if (optc != 1 && optc != 3) || !eq_ic(&a[3], "full") {
                return subcommand_syntax(out, &a);
            }
            if optc == 3 {
                if !eq_ic(&a[4], "count") {
                    return subcommand_syntax(out, &a);
                }
                let Some(c) = int_arg(out, &a[5]) else { return };
                count = if c < 0 { 10 } else { c };
            }
        }
        out.map(if full { 9 } else { 10 });
        out.bulk(b"length");
        out.int(s.length as i64);
        out.bulk(b"radix-tree-keys");
        out.int(s.rax_keys() as i64);
        out.bulk(b"radix-tree-nodes");
        out.int(s.rax_nodes() as i64);
        out.bulk(b"last-generated-id");
        id_bulk(out, s.last_id);
        out.bulk(b"max-deleted-entry-id");
        id_bulk(out, s.max_deleted_entry_id);
        out.bulk(b"entries-added");
        out.int(s.entries_added as i64);
        out.bulk(b"recorded-first-entry-id");
        id_bulk(out, s.first_id);
        let lim = if count == 0 { usize::MAX } else { count as usize };
        if !full {
            out.bulk(b"groups");
            out.int(s.groups.len() as i64);
            out.bulk(b"first-entry");
            match s.range(StreamId::MIN, StreamId::MAX, false).next() {
                Some(e) => reply_entry(out, e),
                None => out.null(),
            }
            out.bulk(b"last-entry");
            match s.range(StreamId::MIN, StreamId::MAX, true).next() {
                Some(e) => reply_entry(out, e),
                None => out.null(),
            }
        } else {
            out.bulk(b"entries");
            let items: Vec<&StreamEntry> = s.range(StreamId::MIN, StreamId::MAX, false).take(lim).collect();
            out.array(items.len());
            for e in items {
                reply_entry(out, e);
            }
            out.bulk(b"groups");
            out.array(s.groups.len());
            for (name, g) in &s.groups {
                out.map(7);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"last-delivered-id");
                id_bulk(out, g.last_id);
                out.bulk(b"entries-read");
                entries_read_reply(out, g);
                out.bulk(b"lag");
                lag_reply(out, s, g);
                out.bulk(b"pel-count");
                out.int(g.pel.len() as i64);
                out.bulk(b"pending");
                let pel: Vec<_> = g.pel.iter().take(lim).collect();
                out.array(pel.len());
                for (id, n) in pel {
                    out.array(4);
                    id_bulk(out, *id);
                    out.bulk(&n.consumer);
                    out.int(n.delivery_time);
                    out.int(n.delivery_count as i64);
                }
                out.bulk(b"consumers");
                out.array(g.consumers.len());
                for (cn, c) in &g.consumers {
                    out.map(4);
                    out.bulk(b"name");
                    out.bulk(cn);
                    out.bulk(b"seen-time");
                    out.int(c.seen_time);
                    out.bulk(b"pel-count");
                    out.int(c.pel.len() as i64);
                    out.bulk(b"pending");
                    let ids: Vec<_> = c.pel.iter().take(lim).collect();
                    out.array(ids.len());
                    for id in ids {
                        let n = &g.pel[id];
                        out.array(3);
                        id_bulk(out, *id);
                        out.int(n.delivery_time);
                        out.int(n.delivery_count as i64);
                    }
                }
            }
        }
    } else {
        subcommand_syntax(out, &a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_parsing() {
        assert_eq!(parse_id_gen(b"1-2", 0, true, None), Some(StreamId::new(1, 2)));
        assert_eq!(parse_id_gen(b"5", 7, true, None), Some(StreamId::new(5, 7)));
        assert_eq!(parse_id_gen(b"-", 0, true, None), None);
        assert_eq!(parse_id_gen(b"-", 0, false, None), Some(StreamId::MIN));
        assert_eq!(parse_id_gen(b"+", 0, false, None), Some(StreamId::MAX));
        assert_eq!(parse_id_gen(b"007-1", 0, true, None), Some(StreamId::new(7, 1)));
        assert_eq!(parse_id_gen(b"1-x", 0, true, None), None);
        assert_eq!(parse_id_gen(b"-1", 0, true, None), None);
        let mut sg = true;
        assert_eq!(parse_id_gen(b"5-*", 0, true, Some(&mut sg)), Some(StreamId::new(5, 0)));
        assert!(!sg);
        assert_eq!(parse_id_gen(b"5-*", 0, true, None), None);
    }
}
