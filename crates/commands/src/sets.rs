//! Set commands (Redis 7.0 t_set.c). Sets are intsets (sorted integers, up to
//! set-max-intset-entries) or hash tables, as OBJECT ENCODING reports in 7.0.

use ferrocache_engine::{notify, Db, SetValue, Value};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::{or_reply, CommandError, Ctx, ErrorReply};
use ferrocache_protocol::resp::Args;
use rand::Rng;

const G: &str = "set";

pub static COMMANDS: &[Command] = &[
    Command::new("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), sadd).group(G),
    Command::new("srem", -3, WRITE | FAST, (1, 1, 1), srem).group(G),
    Command::new("smove", 4, WRITE | FAST, (1, 2, 1), smove).group(G),
    Command::new("sismember", 3, READONLY | FAST, (1, 1, 1), sismember).group(G),
    Command::new("smismember", -3, READONLY | FAST, (1, 1, 1), smismember).group(G),
    Command::new("scard", 2, READONLY | FAST, (1, 1, 1), scard).group(G),
    Command::new("spop", -2, WRITE | FAST, (1, 1, 1), spop).group(G),
    Command::new("srandmember", -2, READONLY, (1, 1, 1), srandmember).group(G),
    Command::new("smembers", 2, READONLY, (1, 1, 1), smembers).group(G),
    Command::new("sinter", -2, READONLY, (1, -1, 1), sinter).group(G),
    Command::new("sintercard", -3, READONLY, (0, 0, 0), sintercard).group(G).keys(sintercard_keys),
    Command::new("sinterstore", -3, WRITE | DENYOOM, (1, -1, 1), sinterstore).group(G),
    Command::new("sunion", -2, READONLY, (1, -1, 1), sunion).group(G),
    Command::new("sunionstore", -3, WRITE | DENYOOM, (1, -1, 1), sunionstore).group(G),
    Command::new("sdiff", -2, READONLY, (1, -1, 1), sdiff).group(G),
    Command::new("sdiffstore", -3, WRITE | DENYOOM, (1, -1, 1), sdiffstore).group(G),
    Command::new("sscan", -3, READONLY, (1, 1, 1), sscan).group(G),
];

fn sintercard_keys(a: Args) -> Vec<usize> {
    match a.get(1).and_then(parse_i64) {
        Some(n) if n > 0 => {
            let end = 2u64.saturating_add(n as u64).min(a.len() as u64) as usize;
            (2..end).collect()
        }
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------- helpers

fn read_set<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Result<Option<&'d mut SetValue>, CommandError> {
    match db.get(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Set(s) => Ok(Some(s)),
            _ => Err(CommandError::WrongType),
        },
    }
}

fn write_set<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Result<Option<&'d mut SetValue>, CommandError> {
    match db.get_mut(key) {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Set(s) => Ok(Some(s)),
            _ => Err(CommandError::WrongType),
        },
    }
}

fn set_mut<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Option<&'d mut SetValue> {
    match db.get_mut(key) {
        Some(e) => match &mut e.value {
            Value::Set(s) => Some(s),
            _ => None,
        },
        None => None,
    }
}

fn deleted_if_empty(db: &mut Db, key: &[u8]) {
    if db.remove_if_empty(key) {
        let d = db.db;
        db.fx.event(notify::GENERIC, "del", d, key);
    }
}

/// A uniformly random member.
fn random_member(s: &SetValue, rng: &mut impl Rng) -> Vec<u8> {
    match s {
        SetValue::Intset(v) => v[rng.gen_range(0..v.len())].to_string().into_bytes(),
        SetValue::Table(t) => t.iter().nth(rng.gen_range(0..t.len())).unwrap().to_vec(),
    }
}

// ---------------------------------------------------------------- basic commands

fn sadd(ctx: &mut Ctx, a: Args) {
    let lim = ctx.limits();
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    match write_set(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => {
            db.set(key, Value::Set(Box::default()), false);
        }
        Ok(Some(_)) => {}
    }
    let s = set_mut(&mut db, key).unwrap();
    let added = a.iter().skip(2).filter(|m| s.insert(m, &lim)).count();
    if added > 0 {
        db.modified(key, notify::SET, "sadd");
        db.fx.dirty += added as u64 - 1;
    }
    out.int(added as i64);
}

fn srem(ctx: &mut Ctx, a: Args) {
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let s = match write_set(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.int(0),
        Ok(Some(s)) => s,
    };
    let mut deleted = 0u64;
    for m in a.iter().skip(2) {
        if s.remove(m) {
            deleted += 1;
            if s.is_empty() {
                break;
            }
        }
    }
    if deleted > 0 {
        db.modified(key, notify::SET, "srem");
        db.fx.dirty += deleted - 1;
        deleted_if_empty(&mut db, key);
    }
    out.int(deleted as i64);
}

fn smove(ctx: &mut Ctx, a: Args) {
    let lim = ctx.limits();
    let (src, dst, ele) = (&a[1], &a[2], &a[3]);
    let (mut db, out) = ctx.parts();
    let src_exists = match write_set(&mut db, src) {
        Err(e) => return out.fail(&e),
        Ok(s) => s.is_some(),
    };
    if !src_exists {
        // Redis replies 0 before looking at the destination's type.
        return out.int(0);
    }
    let dst_exists = match write_set(&mut db, dst) {
        Err(e) => return out.fail(&e),
        Ok(s) => s.is_some(),
    };
    if src == dst {
        let m = set_mut(&mut db, src).unwrap().contains(ele);
        return out.int(m as i64);
    }
    if !set_mut(&mut db, src).unwrap().remove(ele) {
        return out.int(0);
    }
    db.fx.event(notify::SET, "srem", db.db, src);
    deleted_if_empty(&mut db, src);
    if !dst_exists {
        db.set(dst, Value::Set(Box::default()), false);
    }
    db.fx.touch(db.db, src);
    db.fx.dirty += 1;
    if set_mut(&mut db, dst).unwrap().insert(ele, &lim) {
        db.modified(dst, notify::SET, "sadd");
    }
    out.int(1);
}

fn sismember(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(s) = or_reply(out, read_set(&mut db, &a[1])) {
        out.int(s.is_some_and(|s| s.contains(&a[2])) as i64);
    }
}

fn smismember(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(s) = or_reply(out, read_set(&mut db, &a[1])) {
        out.array(a.len() - 2);
        for m in a.iter().skip(2) {
            out.int(s.as_ref().is_some_and(|s| s.contains(m)) as i64);
        }
    }
}

fn scard(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(s) = or_reply(out, read_set(&mut db, &a[1])) {
        out.int(s.map(|s| s.len()).unwrap_or(0) as i64);
    }
}

fn smembers(ctx: &mut Ctx, a: Args) {
    sinter_generic(ctx, a, 1, None, false, 0);
}

// ---------------------------------------------------------------- random members

fn spop(ctx: &mut Ctx, a: Args) {
    if a.len() == 3 {
        return spop_count(ctx, a);
    } else if a.len() > 3 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let s = match write_set(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.null(),
        Ok(Some(s)) => s,
    };
    let m = random_member(s, &mut rand::thread_rng());
    s.remove(&m);
    db.modified(key, notify::SET, "spop");
    out.bulk(&m);
    deleted_if_empty(&mut db, key);
    let d = db.db;
    db.fx.propagate(d, vec![b"SREM".to_vec(), key.to_vec(), m]);
    ctx.propagate_original = false;
}

fn spop_count(ctx: &mut Ctx, a: Args) {
    let count = match parse_i64(&a[2]) {
        Some(c) if c >= 0 => c as u64,
        _ => return ctx.out.error("ERR value is out of range, must be positive"),
    };
    let key = &a[1];
    let lim = ctx.limits();
    let (mut db, out) = ctx.parts();
    let s = match write_set(&mut db, key) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.set(0),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return out.set(0);
    }
    let size = s.len() as u64;
    let all = s.members();
    let whole = count >= size;
    let mut popped: Vec<Vec<u8>> = Vec::new();
    if whole {
        out.set(all.len());
        for m in &all {
            out.bulk(m);
        }
    } else {
        let picked = rand::seq::index::sample(&mut rand::thread_rng(), all.len(), count as usize);
        out.set(count as usize);
        for i in picked.iter() {
            s.remove(&all[i]);
            out.bulk(&all[i]);
            popped.push(all[i].clone());
        }
        // Redis's "case 3" (few elements remain: remaining * SPOP_MOVE_STRATEGY_MUL <= count)
        // builds a new set from the remaining elements with setTypeCreate/setTypeAdd, so a
        // hashtable whose remaining members are all integers becomes an intset again.
        let remaining = size - count;
        if remaining * 5 <= count && matches!(s, SetValue::Table(_)) {
            let mut fresh = SetValue::default();
            let mut ints = true;
            for m in s.members() {
                if ints && ferrocache_engine::value::parse_i64_exact(&m).is_none() {
                    ints = false;
                }
                fresh.insert(&m, &lim);
            }
            if ints {
                *s = fresh;
            }
        }
    }
    let d = db.db;
    db.fx.event(notify::SET, "spop", d, key);
    db.fx.touch(d, key);
    db.fx.dirty += count.min(size);
    if whole {
        db.remove(key);
        db.fx.event(notify::GENERIC, "del", d, key);
        db.fx.propagate(d, vec![b"DEL".to_vec(), key.to_vec()]);
    } else {
        for m in popped {
            db.fx.propagate(d, vec![b"SREM".to_vec(), key.to_vec(), m]);
        }
    }
    ctx.propagate_original = false;
}

fn srandmember(ctx: &mut Ctx, a: Args) {
    if a.len() > 3 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let count = if a.len() == 3 {
        let Some(l) = int_arg(ctx.out, &a[2]) else { return };
        if l == i64::MIN {
            return ctx
                .out
                .error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
        }
        Some(l)
    } else {
        None
    };
    let (mut db, out) = ctx.parts();
    let s = match read_set(&mut db, &a[1]) {
        Err(e) => return out.fail(&e),
        Ok(None) => return if count.is_some() { out.empty_array() } else { out.null() },
        Ok(Some(s)) => s,
    };
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        return out.bulk(&random_member(s, &mut rng));
    };
    if count == 0 {
        return out.empty_array();
    }
    let n = count.unsigned_abs();
    if count < 0 || n == 1 {
        let all = s.members();
        out.array(n as usize);
        for _ in 0..n {
            out.bulk(&all[rng.gen_range(0..all.len())]);
        }
        return;
    }
    let all = s.members();
    if n as usize >= all.len() {
        out.array(all.len());
        for m in &all {
            out.bulk(m);
        }
        return;
    }
    let picked = rand::seq::index::sample(&mut rng, all.len(), n as usize);
    out.array(n as usize);
    for i in picked.iter() {
        out.bulk(&all[i]);
    }
}

// ---------------------------------------------------------------- algebra

/// Look up `keys` as sets for reading (None for missing). Err(WrongType) for another type.
fn collect_sets(db: &mut Db, keys: &[&[u8]]) -> Result<Vec<Option<SetValue>>, CommandError> {
    let mut v = Vec::with_capacity(keys.len());
    for k in keys {
        // Cloning keeps the borrow checker simple: the sets may live in different shards.
        v.push(read_set(db, k)?.map(|s| s.clone()));
    }
    Ok(v)
}

/// Store `result` at `dst` as Redis's *STORE commands do, replying with its size.
fn store_result(ctx: &mut Ctx, dst: &[u8], members: Vec<Vec<u8>>, event: &'static str) {
    let lim = ctx.limits();
    let (mut db, out) = ctx.parts();
    if members.is_empty() {
        out.int(0);
        if db.remove(dst).is_some() {
            db.modified(dst, notify::GENERIC, "del");
        }
        return;
    }
    let mut s = SetValue::default();
    for m in &members {
        s.insert(m, &lim);
    }
    let n = s.len();
    db.set(dst, Value::Set(Box::new(s)), false);
    out.int(n as i64);
    db.modified(dst, notify::SET, event);
}

/// SINTER / SMEMBERS / SINTERSTORE / SINTERCARD.
fn sinter_generic(ctx: &mut Ctx, a: Args, first: usize, dst: Option<&[u8]>, card_only: bool, limit: u64) {
    let keys: Vec<&[u8]> = (first..a.len()).map(|i| a.get(i).unwrap()).collect();
    sinter_keys(ctx, &keys, dst, card_only, limit)
}

fn sinter_keys(ctx: &mut Ctx, keys: &[&[u8]], dst: Option<&[u8]>, card_only: bool, limit: u64) {
    let sets = {
        let (mut db, out) = ctx.parts();
        let Some(sets) = or_reply(out, collect_sets(&mut db, keys)) else { return };
        sets
    };
    if sets.iter().any(|s| s.is_none()) {
        if let Some(dst) = dst {
            return store_result(ctx, dst, Vec::new(), "sinterstore");
        } else if card_only {
            return ctx.out.int(0);
        } else {
            return ctx.out.set(0);
        }
    }
    let mut sets: Vec<SetValue> = sets.into_iter().map(|s| s.unwrap()).collect();
    sets.sort_by_key(|s| s.len());
    let mut result: Vec<Vec<u8>> = Vec::new();
    let mut card = 0u64;
    for m in sets[0].members() {
        if sets[1..].iter().all(|s| s.contains(&m)) {
            card += 1;
            if card_only {
                if limit != 0 && card >= limit {
                    break;
                }
            } else {
                result.push(m);
            }
        }
    }
    if card_only {
        ctx.out.int(card as i64);
    } else if let Some(dst) = dst {
        store_result(ctx, dst, result, "sinterstore");
    } else {
        ctx.out.set(result.len());
        for m in &result {
            ctx.out.bulk(m);
        }
    }
}

fn sinter(ctx: &mut Ctx, a: Args) {
    sinter_generic(ctx, a, 1, None, false, 0);
}

fn sinterstore(ctx: &mut Ctx, a: Args) {
    let dst = a[1].to_vec();
    sinter_generic(ctx, a, 2, Some(&dst), false, 0);
}

fn sintercard(ctx: &mut Ctx, a: Args) {
    let numkeys = match parse_i64(&a[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return ctx.out.error("ERR numkeys should be greater than 0"),
    };
    if numkeys > (a.len() - 2) as u64 {
        return ctx.out.error("ERR Number of keys can't be greater than number of args");
    }
    let numkeys = numkeys as usize;
    let mut limit = 0u64;
    let mut j = 2 + numkeys;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if eq_ic(&a[j], "limit") && more > 0 {
            j += 1;
            match parse_i64(&a[j]) {
                Some(l) if l >= 0 => limit = l as u64,
                _ => return ctx.out.error("ERR LIMIT can't be negative"),
            }
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
        j += 1;
    }
    let keys: Vec<&[u8]> = (2..2 + numkeys).map(|i| a.get(i).unwrap()).collect();
    sinter_keys(ctx, &keys, None, true, limit);
}

/// SUNION / SDIFF and their STORE forms.
fn sunion_diff(ctx: &mut Ctx, a: Args, first: usize, dst: Option<&[u8]>, diff: bool) {
    let keys: Vec<&[u8]> = (first..a.len()).map(|i| a.get(i).unwrap()).collect();
    let sets = {
        let (mut db, out) = ctx.parts();
        let Some(sets) = or_reply(out, collect_sets(&mut db, &keys)) else { return };
        sets
    };
    let result: Vec<Vec<u8>> = if diff {
        match &sets[0] {
            None => Vec::new(),
            Some(s0) => {
                s0.members().into_iter().filter(|m| !sets[1..].iter().flatten().any(|s| s.contains(m))).collect()
            }
        }
    } else {
        let mut seen = ferrocache_engine::value::FastSet::<Vec<u8>>::default();
        let mut v = Vec::new();
        for s in sets.iter().flatten() {
            for m in s.members() {
                if seen.insert(m.clone()) {
                    v.push(m);
                }
            }
        }
        v
    };
    match dst {
        Some(dst) => store_result(ctx, dst, result, if diff { "sdiffstore" } else { "sunionstore" }),
        None => {
            ctx.out.set(result.len());
            for m in &result {
                ctx.out.bulk(m);
            }
        }
    }
}

fn sunion(ctx: &mut Ctx, a: Args) {
    sunion_diff(ctx, a, 1, None, false);
}
fn sunionstore(ctx: &mut Ctx, a: Args) {
    let dst = a[1].to_vec();
    sunion_diff(ctx, a, 2, Some(&dst), false);
}
fn sdiff(ctx: &mut Ctx, a: Args) {
    sunion_diff(ctx, a, 1, None, true);
}
fn sdiffstore(ctx: &mut Ctx, a: Args) {
    let dst = a[1].to_vec();
    sunion_diff(ctx, a, 2, Some(&dst), true);
}

// ---------------------------------------------------------------- scan

fn sscan(ctx: &mut Ctx, a: Args) {
    let Some(cursor) = ferrocache_node::util::cursor_arg(ctx.out, &a[2]) else { return };
    let Some((pat, count, _)) = crate::keys::scan_options(ctx, a, 3, false) else { return };
    let (mut db, out) = ctx.parts();
    let Some(s) = or_reply(out, read_set(&mut db, &a[1])) else { return };
    let Some(s) = s else {
        out.array(2);
        out.bulk(b"0");
        return out.empty_array();
    };
    let matches = |m: &[u8]| pat.as_ref().is_none_or(|p| ferrocache_engine::glob::glob_match(p, m, false));
    // An intset is returned whole, as Redis does for compact encodings.
    let (next, sel): (u64, Vec<Vec<u8>>) = match s {
        SetValue::Intset(_) => (0, s.members().into_iter().filter(|m| matches(m)).collect()),
        SetValue::Table(t) => {
            let (next, got) = ferrocache_engine::cursor_scan::step(t.iter(), |m| &m[..], cursor, count);
            (next, got.into_iter().filter(|m| matches(m)).map(|m| m.to_vec()).collect())
        }
    };
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(sel.len());
    for m in sel {
        out.bulk(&m);
    }
}
