//! List commands (Redis 7.0 t_list.c): pushes, pops, ranges, LPOS, LMOVE, LMPOP and the
//! blocking variants. Blocking commands that find nothing ask `ctx.after_reply(Then::Block(..))` and write
//! nothing; `blocking::Blocking::serve` re-runs them, in arrival order, when a push makes one
//! of their keys ready. A served blocking pop is propagated as the plain pop (LPOP key,
//! LMOVE ..., LPOP key count), as Redis does.

use ferrocache_engine::{notify, Db, ListValue, SmallBytes, Value};
use ferrocache_node::client::BlockRequest;
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::{or_reply, CommandError, Ctx, ErrorReply};
use ferrocache_protocol::resp::{Args, ReplyBuf};

const G: &str = "list";

pub static COMMANDS: &[Command] = &[
    Command::new("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), lpush).group(G),
    Command::new("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), rpush).group(G),
    Command::new("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), lpushx).group(G),
    Command::new("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), rpushx).group(G),
    Command::new("lpop", -2, WRITE | FAST, (1, 1, 1), lpop).group(G),
    Command::new("rpop", -2, WRITE | FAST, (1, 1, 1), rpop).group(G),
    Command::new("llen", 2, READONLY | FAST, (1, 1, 1), llen).group(G),
    Command::new("lrange", 4, READONLY, (1, 1, 1), lrange).group(G),
    Command::new("lindex", 3, READONLY, (1, 1, 1), lindex).group(G),
    Command::new("lset", 4, WRITE | DENYOOM, (1, 1, 1), lset).group(G),
    Command::new("linsert", 5, WRITE | DENYOOM, (1, 1, 1), linsert).group(G),
    Command::new("lrem", 4, WRITE, (1, 1, 1), lrem).group(G),
    Command::new("ltrim", 4, WRITE, (1, 1, 1), ltrim).group(G),
    Command::new("lpos", -3, READONLY, (1, 1, 1), lpos).group(G),
    Command::new("lmove", 5, WRITE | DENYOOM, (1, 2, 1), lmove).group(G),
    Command::new("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), rpoplpush).group(G),
    Command::new("lmpop", -4, WRITE, (0, 0, 0), lmpop).group(G).keys(lmpop_keys),
    Command::new("blpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), blpop).group(G),
    Command::new("brpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), brpop).group(G),
    Command::new("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), blmove).group(G),
    Command::new("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, (1, 2, 1), brpoplpush).group(G),
    Command::new("blmpop", -5, WRITE | BLOCKING, (0, 0, 0), blmpop).group(G).keys(blmpop_keys),
];

/// Keys of a `numkeys key [key ...]` command whose numkeys is at `idx`.
fn numkeys_positions(a: Args, idx: usize) -> Vec<usize> {
    match a.get(idx).and_then(parse_i64) {
        Some(n) if n > 0 => {
            let end = (idx as u64 + 1).saturating_add(n as u64).min(a.len() as u64) as usize;
            (idx + 1..end).collect()
        }
        _ => Vec::new(),
    }
}

fn lmpop_keys(a: Args) -> Vec<usize> {
    numkeys_positions(a, 1)
}

fn blmpop_keys(a: Args) -> Vec<usize> {
    numkeys_positions(a, 2)
}

// ---------------------------------------------------------------- helpers

/// Read access to a list: Ok(None) when missing, Err(WrongType) for another type.
fn read_list<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Result<Option<&'d mut ListValue>, CommandError> {
    match db.get(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(CommandError::WrongType),
        },
    }
}

/// Write lookup of a list (no hit/miss accounting): Ok(None) when missing.
fn write_list<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Result<Option<&'d mut ListValue>, CommandError> {
    match db.get_mut(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::List(l) => Ok(Some(l)),
            _ => Err(CommandError::WrongType),
        },
    }
}

fn list_mut<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Option<&'d mut ListValue> {
    match db.get_mut(key) {
        Some(e) => match &mut e.value {
            Value::List(l) => Some(l),
            _ => None,
        },
        None => None,
    }
}

fn push_one(l: &mut ListValue, v: &[u8], left: bool) {
    l.bytes += v.len();
    if left {
        l.items.push_front(SmallBytes::new(v));
    } else {
        l.items.push_back(SmallBytes::new(v));
    }
}

fn pop_one(l: &mut ListValue, left: bool) -> Option<SmallBytes> {
    let v = if left { l.items.pop_front() } else { l.items.pop_back() }?;
    l.bytes = l.bytes.saturating_sub(v.len());
    Some(v)
}

fn new_list() -> Value {
    Value::List(Box::new(ListValue { quicklist: true, ..Default::default() }))
}

/// Redis's listElementsRemoved: pop event, delete when empty, dirty.
fn elements_removed(db: &mut Db, key: &[u8], left: bool, count: u64) {
    db.modified(key, notify::LIST, if left { "lpop" } else { "rpop" });
    db.fx.dirty += count.saturating_sub(1);
    if db.remove_if_empty(key) {
        let d = db.db;
        db.fx.event(notify::GENERIC, "del", d, key);
    }
}

fn parse_where(out: &mut ReplyBuf, a: &[u8]) -> Option<bool> {
    if eq_ic(a, "left") {
        Some(true)
    } else if eq_ic(a, "right") {
        Some(false)
    } else {
        out.error(ERR_SYNTAX);
        None
    }
}

/// Redis's getTimeoutFromObjectOrReply (seconds, fractional): absolute deadline in unix ms,
/// 0 for "forever".
fn parse_timeout(ctx: &mut Ctx, a: &[u8]) -> Option<u64> {
    let Some(f) = parse_f64(a) else {
        ctx.out.error("ERR timeout is not a float or out of range");
        return None;
    };
    let ms = (f * 1000.0).ceil();
    // (long long) of a value out of range is LLONG_MIN on the platforms Redis runs on.
    let tval: i64 = if ms.is_finite() && ms < 9.2e18 && ms > -9.2e18 { ms as i64 } else { i64::MIN };
    if tval < 0 {
        ctx.out.error("ERR timeout is negative");
        return None;
    }
    Some(if tval > 0 { ctx.now_ms.saturating_add(tval as u64) } else { 0 })
}

/// Redis's getRangeLongFromObjectOrReply with a message for every failure.
fn range_arg(out: &mut ReplyBuf, a: &[u8], min: i64, max: i64, msg: &str) -> Option<i64> {
    match parse_i64(a) {
        Some(v) if v >= min && v <= max => Some(v),
        _ => {
            out.error(msg);
            None
        }
    }
}

fn positive_arg(out: &mut ReplyBuf, a: &[u8]) -> Option<i64> {
    range_arg(out, a, 0, i64::MAX, "ERR value is out of range, must be positive")
}

fn propagate(ctx: &mut Ctx, argv: Vec<Vec<u8>>) {
    let d = ctx.client.db;
    ctx.fx.propagate(d, argv);
    ctx.propagate_original = false;
}

// ---------------------------------------------------------------- pushes

fn push_generic(ctx: &mut Ctx, a: Args, left: bool, xx: bool) {
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    match write_list(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) if xx => return out.int(0),
        Ok(None) => {
            db.set(key, new_list(), false);
        }
        Ok(Some(_)) => {}
    }
    let l = list_mut(&mut db, key).unwrap();
    for v in a.iter().skip(2) {
        push_one(l, v, left);
    }
    let len = l.len();
    db.modified(key, notify::LIST, if left { "lpush" } else { "rpush" });
    db.fx.dirty += (a.len() - 3) as u64;
    let d = db.db;
    db.fx.ready.push((d, SmallBytes::new(key)));
    out.int(len as i64);
}

fn lpush(ctx: &mut Ctx, a: Args) {
    push_generic(ctx, a, true, false)
}
fn rpush(ctx: &mut Ctx, a: Args) {
    push_generic(ctx, a, false, false)
}
fn lpushx(ctx: &mut Ctx, a: Args) {
    push_generic(ctx, a, true, true)
}
fn rpushx(ctx: &mut Ctx, a: Args) {
    push_generic(ctx, a, false, true)
}

// ---------------------------------------------------------------- pops

fn pop_generic(ctx: &mut Ctx, a: Args, left: bool) {
    if a.len() > 3 {
        return ctx.wrong_arity();
    }
    let count = if a.len() == 3 {
        let Some(c) = positive_arg(ctx.out, &a[2]) else { return };
        Some(c as usize)
    } else {
        None
    };
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let l = match write_list(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => {
            return if count.is_some() { out.null_array() } else { out.null() };
        }
        Ok(Some(l)) => l,
    };
    match count {
        None => {
            let v = pop_one(l, left).unwrap_or_else(|| SmallBytes::new(b""));
            out.bulk(&v);
            elements_removed(&mut db, key, left, 1);
        }
        Some(0) => out.empty_array(),
        Some(c) => {
            let n = c.min(l.len());
            out.array(n);
            for _ in 0..n {
                let v = pop_one(l, left).unwrap_or_else(|| SmallBytes::new(b""));
                out.bulk(&v);
            }
            elements_removed(&mut db, key, left, n as u64);
        }
    }
}

fn lpop(ctx: &mut Ctx, a: Args) {
    pop_generic(ctx, a, true)
}
fn rpop(ctx: &mut Ctx, a: Args) {
    pop_generic(ctx, a, false)
}

// ---------------------------------------------------------------- reads

fn llen(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(l) = or_reply(out, read_list(&mut db, &a[1])) {
        out.int(l.map(|l| l.len()).unwrap_or(0) as i64);
    }
}

fn lrange(ctx: &mut Ctx, a: Args) {
    let Some(start) = int_arg(ctx.out, &a[2]) else { return };
    let Some(end) = int_arg(ctx.out, &a[3]) else { return };
    let (mut db, out) = ctx.parts();
    let l = match read_list(&mut db, &a[1]) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.empty_array(),
        Ok(Some(l)) => l,
    };
    match range_indices(start, end, l.len()) {
        None => out.empty_array(),
        Some((s, e)) => {
            out.array(e - s + 1);
            for v in l.items.range(s..=e) {
                out.bulk(v);
            }
        }
    }
}

/// A Redis list index (negative from the tail) into a position, if in range.
fn list_index(len: usize, index: i64) -> Option<usize> {
    let i = if index < 0 { len as i64 + index } else { index };
    if i < 0 || i >= len as i64 {
        None
    } else {
        Some(i as usize)
    }
}

fn lindex(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    let l = match read_list(&mut db, &a[1]) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.null(),
        Ok(Some(l)) => l,
    };
    let Some(index) = int_arg(out, &a[2]) else { return };
    match list_index(l.len(), index) {
        Some(i) => out.bulk(&l.items[i]),
        None => out.null(),
    }
}

fn lset(ctx: &mut Ctx, a: Args) {
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let l = match write_list(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.error(ERR_NO_KEY),
        Ok(Some(l)) => l,
    };
    let Some(index) = int_arg(out, &a[2]) else { return };
    match list_index(l.len(), index) {
        Some(i) => {
            l.bytes = l.bytes + a[3].len() - l.items[i].len();
            l.items[i] = SmallBytes::new(&a[3]);
            out.ok();
            db.modified(key, notify::LIST, "lset");
        }
        None => out.error("ERR index out of range"),
    }
}

fn linsert(ctx: &mut Ctx, a: Args) {
    let after = if eq_ic(&a[2], "after") {
        true
    } else if eq_ic(&a[2], "before") {
        false
    } else {
        return ctx.out.error(ERR_SYNTAX);
    };
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let l = match write_list(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.int(0),
        Ok(Some(l)) => l,
    };
    let Some(pos) = l.items.iter().position(|x| x.as_slice() == &a[3]) else {
        return out.int(-1);
    };
    l.items.insert(if after { pos + 1 } else { pos }, SmallBytes::new(&a[4]));
    l.bytes += a[4].len();
    let len = l.len();
    db.modified(key, notify::LIST, "linsert");
    out.int(len as i64);
}

fn lrem(ctx: &mut Ctx, a: Args) {
    let Some(toremove) = int_arg(ctx.out, &a[2]) else { return };
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let l = match write_list(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.int(0),
        Ok(Some(l)) => l,
    };
    let elem = &a[3];
    let limit = toremove.unsigned_abs() as usize;
    let mut removed = 0usize;
    if toremove < 0 {
        let mut i = l.items.len();
        while i > 0 {
            i -= 1;
            if l.items[i].as_slice() == elem {
                l.items.remove(i);
                removed += 1;
                if limit != 0 && removed == limit {
                    break;
                }
            }
        }
    } else {
        let mut kept = std::collections::VecDeque::with_capacity(l.items.len());
        for x in l.items.drain(..) {
            if (limit == 0 || removed < limit) && x.as_slice() == elem {
                removed += 1;
            } else {
                kept.push_back(x);
            }
        }
        l.items = kept;
    }
    l.bytes = l.bytes.saturating_sub(removed * elem.len());
    if removed > 0 {
        db.modified(key, notify::LIST, "lrem");
        db.fx.dirty += removed as u64 - 1;
    }
    if db.remove_if_empty(key) {
        let d = db.db;
        db.fx.event(notify::GENERIC, "del", d, key);
    }
    out.int(removed as i64);
}

fn ltrim(ctx: &mut Ctx, a: Args) {
    let Some(start) = int_arg(ctx.out, &a[2]) else { return };
    let Some(end) = int_arg(ctx.out, &a[3]) else { return };
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let l = match write_list(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.ok(),
        Ok(Some(l)) => l,
    };
    let len = l.len();
    let (ltrim, rtrim) = match range_indices(start, end, len) {
        None => (len, 0),
        Some((s, e)) => (s, len - e - 1),
    };
    l.items.drain(..ltrim);
    let keep = l.items.len() - rtrim;
    l.items.truncate(keep);
    l.bytes = l.items.iter().map(|x| x.len()).sum();
    db.modified(key, notify::LIST, "ltrim");
    db.fx.dirty = db.fx.dirty + (ltrim + rtrim) as u64 - 1;
    if db.remove_if_empty(key) {
        let d = db.db;
        db.fx.event(notify::GENERIC, "del", d, key);
    }
    out.ok();
}

fn lpos(ctx: &mut Ctx, a: Args) {
    let mut rank: i64 = 1;
    let mut count: i64 = -1;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if eq_ic(&a[j], "rank") && more > 0 {
            j += 1;
            let Some(r) = int_arg(ctx.out, &a[j]) else { return };
            if r == 0 {
                return ctx.out.error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                );
            }
            rank = r;
        } else if eq_ic(&a[j], "count") && more > 0 {
            j += 1;
            let Some(c) = range_arg(ctx.out, &a[j], 0, i64::MAX, "ERR COUNT can't be negative") else { return };
            count = c;
        } else if eq_ic(&a[j], "maxlen") && more > 0 {
            j += 1;
            let Some(m) = range_arg(ctx.out, &a[j], 0, i64::MAX, "ERR MAXLEN can't be negative") else { return };
            maxlen = m;
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
        j += 1;
    }
    let from_tail = rank < 0;
    // Redis negates the rank in a C long: -LONG_MIN wraps to LONG_MIN, which every match count
    // reaches at once (and `matches-rank+1` wraps negative, so COUNT never stops the scan).
    let rank = if from_tail { rank.wrapping_neg() } else { rank };
    let (mut db, out) = ctx.parts();
    let l = match read_list(&mut db, &a[1]) {
        Err(e) => return out.fail(&e),
        Ok(None) => return if count != -1 { out.empty_array() } else { out.null() },
        Ok(Some(l)) => l,
    };
    let len = l.len();
    let ele = &a[2];
    let mut matches: i64 = 0;
    let mut found: Vec<i64> = Vec::new();
    let mut single: Option<i64> = None;
    for index in 0..len {
        if maxlen != 0 && index as i64 >= maxlen {
            break;
        }
        let pos = if from_tail { len - index - 1 } else { index };
        if l.items[pos].as_slice() == ele {
            matches += 1;
            if matches >= rank {
                if count != -1 {
                    found.push(pos as i64);
                    if count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count {
                        break;
                    }
                } else {
                    single = Some(pos as i64);
                    break;
                }
            }
        }
    }
    if count != -1 {
        out.array(found.len());
        for i in found {
            out.int(i);
        }
    } else {
        match single {
            Some(i) => out.int(i),
            None => out.null(),
        }
    }
}

// ---------------------------------------------------------------- moves

/// LMOVE's body: src known to hold a non-empty list or be absent. Writes the reply.
fn lmove_generic(ctx: &mut Ctx, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> bool {
    let (mut db, out) = ctx.parts();
    match write_list(&mut db, src) {
        Err(e) => {
            out.fail(&e);
            return false;
        }
        Ok(None) => {
            out.null();
            return false;
        }
        Ok(Some(l)) if l.is_empty() => {
            out.null();
            return false;
        }
        Ok(Some(_)) => {}
    }
    let dst_exists = match write_list(&mut db, dst) {
        Err(e) => {
            out.fail(&e);
            return false;
        }
        Ok(d) => d.is_some(),
    };
    let v = pop_one(list_mut(&mut db, src).unwrap(), from_left).unwrap();
    if !dst_exists {
        db.set(dst, new_list(), false);
    }
    push_one(list_mut(&mut db, dst).unwrap(), &v, to_left);
    db.modified(dst, notify::LIST, if to_left { "lpush" } else { "rpush" });
    db.fx.dirty -= 1;
    let d = db.db;
    db.fx.ready.push((d, SmallBytes::new(dst)));
    out.bulk(&v);
    db.modified(src, notify::LIST, if from_left { "lpop" } else { "rpop" });
    if db.remove_if_empty(src) {
        db.fx.event(notify::GENERIC, "del", d, src);
    }
    true
}

fn lmove(ctx: &mut Ctx, a: Args) {
    let Some(from) = parse_where(ctx.out, &a[3]) else { return };
    let Some(to) = parse_where(ctx.out, &a[4]) else { return };
    lmove_generic(ctx, &a[1], &a[2], from, to);
}

fn rpoplpush(ctx: &mut Ctx, a: Args) {
    lmove_generic(ctx, &a[1], &a[2], false, true);
}

/// Pop up to `count` from `key` as `[key, [elements]]` and propagate `[LR]POP key n`.
fn pop_range_with_key(ctx: &mut Ctx, key: &[u8], left: bool, count: usize) {
    let (mut db, out) = ctx.parts();
    let l = list_mut(&mut db, key).unwrap();
    let n = count.min(l.len());
    out.array(2);
    out.bulk(key);
    out.array(n);
    for _ in 0..n {
        let v = pop_one(l, left).unwrap_or_else(|| SmallBytes::new(b""));
        out.bulk(&v);
    }
    elements_removed(&mut db, key, left, n as u64);
    propagate(
        ctx,
        vec![if left { b"LPOP".to_vec() } else { b"RPOP".to_vec() }, key.to_vec(), n.to_string().into_bytes()],
    );
}

/// The first key holding a non-empty list. Err(WrongType) for another type.
fn first_nonempty<'k>(ctx: &mut Ctx, keys: &[&'k [u8]]) -> Result<Option<&'k [u8]>, CommandError> {
    let (mut db, _) = ctx.parts();
    for &k in keys {
        match write_list(&mut db, k)? {
            Some(l) if !l.is_empty() => return Ok(Some(k)),
            _ => {}
        }
    }
    Ok(None)
}

/// Parsed `numkeys key... LEFT|RIGHT [COUNT n]` (LMPOP at 1, BLMPOP at 2).
fn parse_mpop<'a>(ctx: &mut Ctx, a: &Args<'a>, numkeys_idx: usize) -> Option<(Vec<&'a [u8]>, bool, usize)> {
    let numkeys = range_arg(ctx.out, &a[numkeys_idx], 1, i64::MAX, "ERR numkeys should be greater than 0")? as u64;
    let where_idx = (numkeys_idx as u64 + 1).saturating_add(numkeys);
    if where_idx >= a.len() as u64 {
        ctx.out.error(ERR_SYNTAX);
        return None;
    }
    let where_idx = where_idx as usize;
    let left = parse_where(ctx.out, &a[where_idx])?;
    let mut count: i64 = -1;
    let mut j = where_idx + 1;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if count == -1 && eq_ic(&a[j], "count") && more > 0 {
            j += 1;
            count = range_arg(ctx.out, &a[j], 1, i64::MAX, "ERR count should be greater than 0")?;
        } else {
            ctx.out.error(ERR_SYNTAX);
            return None;
        }
        j += 1;
    }
    let keys: Vec<&'a [u8]> = (numkeys_idx + 1..where_idx).map(|i| a.get(i).unwrap()).collect();
    Some((keys, left, if count == -1 { 1 } else { count as usize }))
}

fn lmpop(ctx: &mut Ctx, a: Args) {
    let Some((keys, left, count)) = parse_mpop(ctx, &a, 1) else { return };
    match first_nonempty(ctx, &keys) {
        Err(e) => ctx.fail(&e),
        Ok(None) => ctx.out.null_array(),
        Ok(Some(k)) => pop_range_with_key(ctx, k, left, count),
    }
}

// ---------------------------------------------------------------- blocking

fn block_on(ctx: &mut Ctx, keys: &[&[u8]], deadline_ms: u64, null_array_on_timeout: bool) {
    ctx.after_reply(ferrocache_node::client::Then::Block(BlockRequest {
        keys: keys.iter().map(|k| k.to_vec()).collect(),
        db: ctx.client.db,
        deadline_ms,
        null_array_on_timeout,
    }));
}

/// The keys a blocking pop looks at: all of them, or only the ready key it is being served
/// for (see `Client::serving_key`).
pub(crate) fn serving_keys<'k>(ctx: &Ctx, keys: &[&'k [u8]]) -> Vec<&'k [u8]> {
    match &ctx.client.serving_key {
        Some(sk) => match keys.iter().find(|k| **k == sk.as_slice()) {
            Some(k) => vec![*k],
            None => keys.to_vec(),
        },
        None => keys.to_vec(),
    }
}

/// BLPOP/BRPOP (count None) and BLMPOP (count Some).
fn blocking_pop(ctx: &mut Ctx, keys: &[&[u8]], left: bool, deadline: u64, count: Option<usize>) {
    let key = match first_nonempty(ctx, &serving_keys(ctx, keys)) {
        Err(e) => return ctx.fail(&e),
        Ok(k) => k,
    };
    match (key, count) {
        (Some(k), Some(c)) => pop_range_with_key(ctx, k, left, c),
        (Some(k), None) => {
            let (mut db, out) = ctx.parts();
            let v = pop_one(list_mut(&mut db, k).unwrap(), left).unwrap_or_else(|| SmallBytes::new(b""));
            out.array(2);
            out.bulk(k);
            out.bulk(&v);
            elements_removed(&mut db, k, left, 1);
            propagate(ctx, vec![if left { b"LPOP".to_vec() } else { b"RPOP".to_vec() }, k.to_vec()]);
        }
        (None, _) => {
            if ctx.client.in_exec {
                // Blocking is not allowed here: reply as on timeout.
                ctx.out.null_array();
            } else {
                block_on(ctx, keys, deadline, true);
            }
        }
    }
}

fn bpop(ctx: &mut Ctx, a: Args, left: bool) {
    let Some(deadline) = parse_timeout(ctx, &a[a.len() - 1]) else { return };
    let keys: Vec<&[u8]> = (1..a.len() - 1).map(|i| a.get(i).unwrap()).collect();
    blocking_pop(ctx, &keys, left, deadline, None);
}

fn blpop(ctx: &mut Ctx, a: Args) {
    bpop(ctx, a, true)
}
fn brpop(ctx: &mut Ctx, a: Args) {
    bpop(ctx, a, false)
}

fn blmpop(ctx: &mut Ctx, a: Args) {
    let Some((keys, left, count)) = parse_mpop(ctx, &a, 2) else { return };
    let Some(deadline) = parse_timeout(ctx, &a[1]) else { return };
    blocking_pop(ctx, &keys, left, deadline, Some(count));
}

fn blmove_generic(ctx: &mut Ctx, a: Args, from: bool, to: bool, deadline: u64, as_rpoplpush: bool) {
    let (src, dst) = (&a[1], &a[2]);
    let exists = {
        let (mut db, out) = ctx.parts();
        match write_list(&mut db, src) {
            Err(e) => return out.fail(&e),
            Ok(l) => l.is_some(),
        }
    };
    if !exists {
        if ctx.client.in_exec {
            ctx.out.null();
        } else {
            // Redis answers a timed-out blocked list client with a null array, BLMOVE too.
            block_on(ctx, &[src], deadline, true);
        }
        return;
    }
    if lmove_generic(ctx, src, dst, from, to) {
        let argv = if as_rpoplpush {
            vec![b"RPOPLPUSH".to_vec(), src.to_vec(), dst.to_vec()]
        } else {
            vec![b"LMOVE".to_vec(), src.to_vec(), dst.to_vec(), a[3].to_vec(), a[4].to_vec()]
        };
        propagate(ctx, argv);
    }
}

fn blmove(ctx: &mut Ctx, a: Args) {
    let Some(from) = parse_where(ctx.out, &a[3]) else { return };
    let Some(to) = parse_where(ctx.out, &a[4]) else { return };
    let Some(deadline) = parse_timeout(ctx, &a[5]) else { return };
    blmove_generic(ctx, a, from, to, deadline, false);
}

fn brpoplpush(ctx: &mut Ctx, a: Args) {
    let Some(deadline) = parse_timeout(ctx, &a[3]) else { return };
    blmove_generic(ctx, a, false, true, deadline, true);
}
