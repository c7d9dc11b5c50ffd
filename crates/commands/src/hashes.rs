//! Hash commands.

use ferrocache_engine::{notify, Db, HashValue, Value};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::{or_reply, CommandError, Ctx, ErrorReply};
use ferrocache_protocol::resp::Args;
use rand::Rng;

const G: &str = "hash";
const W: u64 = WRITE | DENYOOM | FAST;

pub static COMMANDS: &[Command] = &[
    Command::new("hset", -4, W, (1, 1, 1), hset).group(G),
    Command::new("hmset", -4, W, (1, 1, 1), hmset).group(G),
    Command::new("hsetnx", 4, W, (1, 1, 1), hsetnx).group(G),
    Command::new("hget", 3, READONLY | FAST, (1, 1, 1), hget).group(G),
    Command::new("hmget", -3, READONLY | FAST, (1, 1, 1), hmget).group(G),
    Command::new("hdel", -3, WRITE | FAST, (1, 1, 1), hdel).group(G),
    Command::new("hlen", 2, READONLY | FAST, (1, 1, 1), hlen).group(G),
    Command::new("hstrlen", 3, READONLY | FAST, (1, 1, 1), hstrlen).group(G),
    Command::new("hexists", 3, READONLY | FAST, (1, 1, 1), hexists).group(G),
    Command::new("hkeys", 2, READONLY, (1, 1, 1), hkeys).group(G),
    Command::new("hvals", 2, READONLY, (1, 1, 1), hvals).group(G),
    Command::new("hgetall", 2, READONLY, (1, 1, 1), hgetall).group(G),
    Command::new("hincrby", 4, W, (1, 1, 1), hincrby).group(G),
    Command::new("hincrbyfloat", 4, W, (1, 1, 1), hincrbyfloat).group(G),
    Command::new("hrandfield", -2, READONLY, (1, 1, 1), hrandfield).group(G),
    Command::new("hscan", -3, READONLY, (1, 1, 1), hscan).group(G),
];

/// Read access to a hash: Ok(None) when missing, Err(WrongType) for another type.
pub fn read_hash<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Result<Option<&'d HashValue>, CommandError> {
    match db.get(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Hash(h) => Ok(Some(h)),
            _ => Err(CommandError::WrongType),
        },
    }
}

/// Write access to a hash, creating it when missing; WRONGTYPE (not replied) for another type.
fn write_hash<'d>(db: &'d mut Db<'_, '_>, key: &[u8]) -> Result<&'d mut HashValue, CommandError> {
    let exists = match db.get_mut(key) {
        None => false,
        Some(e) if matches!(e.value, Value::Hash(_)) => true,
        Some(_) => return Err(CommandError::WrongType),
    };
    if !exists {
        db.set(key, Value::Hash(Box::default()), false);
    }
    match &mut db.get_mut(key).unwrap().value {
        Value::Hash(h) => Ok(h),
        _ => unreachable!(),
    }
}

fn hset_generic(ctx: &mut Ctx, a: Args, count_reply: bool) {
    if !a.len().is_multiple_of(2) {
        let n = ctx.cmd.full_name();
        return ctx.out.error(&format!("ERR wrong number of arguments for '{}' command", n));
    }
    let lim = ctx.limits();
    let (mut db, out) = ctx.parts();
    let h = match write_hash(&mut db, &a[1]) {
        Ok(h) => h,
        Err(e) => return out.fail(&e),
    };
    let mut created = 0;
    for i in (2..a.len()).step_by(2) {
        if h.set(&a[i], &a[i + 1], &lim) {
            created += 1;
        }
    }
    db.modified(&a[1], notify::HASH, "hset");
    if count_reply {
        out.int(created)
    } else {
        out.ok()
    }
}
fn hset(ctx: &mut Ctx, a: Args) {
    hset_generic(ctx, a, true)
}
fn hmset(ctx: &mut Ctx, a: Args) {
    hset_generic(ctx, a, false)
}

fn hsetnx(ctx: &mut Ctx, a: Args) {
    let lim = ctx.limits();
    let (mut db, out) = ctx.parts();
    let h = match write_hash(&mut db, &a[1]) {
        Ok(h) => h,
        Err(e) => return out.fail(&e),
    };
    if h.get(&a[2]).is_some() {
        return out.int(0);
    }
    h.set(&a[2], &a[3], &lim);
    db.modified(&a[1], notify::HASH, "hset");
    out.int(1);
}

fn hget(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(h) = or_reply(out, read_hash(&mut db, &a[1])) {
        match h.and_then(|h| h.get(&a[2])) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
}

fn hmget(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(h) = or_reply(out, read_hash(&mut db, &a[1])) {
        out.array(a.len() - 2);
        for f in a.iter().skip(2) {
            match h.and_then(|h| h.get(f)) {
                Some(v) => out.bulk(v),
                None => out.null(),
            }
        }
    }
}

fn hdel(ctx: &mut Ctx, a: Args) {
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let n = match db.get_mut(key) {
        None => return out.int(0),
        Some(e) => match &mut e.value {
            Value::Hash(h) => a.iter().skip(2).filter(|f| h.remove(f)).count(),
            _ => return out.error(ERR_WRONGTYPE),
        },
    };
    if n > 0 {
        db.modified(key, notify::HASH, "hdel");
        if db.remove_if_empty(key) {
            db.fx.event(notify::GENERIC, "del", db.db, key);
        }
    }
    out.int(n as i64);
}

fn hlen(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(h) = or_reply(out, read_hash(&mut db, &a[1])) {
        out.int(h.map(|h| h.len()).unwrap_or(0) as i64);
    }
}

fn hstrlen(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(h) = or_reply(out, read_hash(&mut db, &a[1])) {
        out.int(h.and_then(|h| h.get(&a[2])).map(|v| v.len()).unwrap_or(0) as i64);
    }
}

fn hexists(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(h) = or_reply(out, read_hash(&mut db, &a[1])) {
        out.int(h.is_some_and(|h| h.get(&a[2]).is_some()) as i64);
    }
}

fn hkeys(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(h) = or_reply(out, read_hash(&mut db, &a[1])) {
        match h {
            None => out.empty_array(),
            Some(h) => {
                out.array(h.len());
                for (f, _) in h.iter() {
                    out.bulk(f);
                }
            }
        }
    }
}

fn hvals(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(h) = or_reply(out, read_hash(&mut db, &a[1])) {
        match h {
            None => out.empty_array(),
            Some(h) => {
                out.array(h.len());
                for (_, v) in h.iter() {
                    out.bulk(v);
                }
            }
        }
    }
}

fn hgetall(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Some(h) = or_reply(out, read_hash(&mut db, &a[1])) {
        match h {
            None => out.map(0),
            Some(h) => {
                out.map(h.len());
                for (f, v) in h.iter() {
                    out.bulk(f);
                    out.bulk(v);
                }
            }
        }
    }
}

fn hincrby(ctx: &mut Ctx, a: Args) {
    let Some(by) = int_arg(ctx.out, &a[3]) else { return };
    let lim = ctx.limits();
    let (mut db, out) = ctx.parts();
    let h = match write_hash(&mut db, &a[1]) {
        Ok(h) => h,
        Err(e) => return out.fail(&e),
    };
    let cur = match h.get(&a[2]) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => {
                out.error("ERR hash value is not an integer");
                db.remove_if_empty(&a[1]);
                return;
            }
        },
    };
    let Some(n) = cur.checked_add(by) else {
        out.error(ERR_OVERFLOW);
        db.remove_if_empty(&a[1]);
        return;
    };
    h.set(&a[2], n.to_string().as_bytes(), &lim);
    db.modified(&a[1], notify::HASH, "hincrby");
    out.int(n);
}

fn hincrbyfloat(ctx: &mut Ctx, a: Args) {
    use crate::ldouble::LDouble;
    let Some(by) = LDouble::parse(&a[3]) else { return ctx.out.error(ERR_NOT_FLOAT) };
    if by.is_inf() {
        return ctx.out.error("ERR value is NaN or Infinity");
    }
    let lim = ctx.limits();
    let (mut db, out) = ctx.parts();
    let h = match write_hash(&mut db, &a[1]) {
        Ok(h) => h,
        Err(e) => return out.fail(&e),
    };
    let cur = match h.get(&a[2]) {
        None => LDouble::zero(false),
        Some(v) => match LDouble::parse(v) {
            Some(n) => n,
            None => {
                out.error("ERR hash value is not a float");
                db.remove_if_empty(&a[1]);
                return;
            }
        },
    };
    let n = cur.plus(by);
    if n.is_nan() || n.is_inf() {
        out.error("ERR increment would produce NaN or Infinity");
        db.remove_if_empty(&a[1]);
        return;
    }
    let s = n.to_human();
    h.set(&a[2], s.as_bytes(), &lim);
    db.modified(&a[1], notify::HASH, "hincrbyfloat");
    out.bulk(s.as_bytes());
    let d = db.db;
    db.fx.propagate(d, vec![b"HSET".to_vec(), a[1].to_vec(), a[2].to_vec(), s.into_bytes()]);
    ctx.propagate_original = false;
}

fn hrandfield(ctx: &mut Ctx, a: Args) {
    let mut count: Option<i64> = None;
    let mut withvalues = false;
    if a.len() >= 3 {
        let Some(c) = int_arg(ctx.out, &a[2]) else { return };
        count = Some(c);
        if a.len() == 4 {
            if !eq_ic(&a[3], "withvalues") {
                return ctx.out.error(ERR_SYNTAX);
            }
            withvalues = true;
        } else if a.len() > 4 {
            return ctx.out.error(ERR_SYNTAX);
        }
    }
    let (mut db, out) = ctx.parts();
    let Some(h) = or_reply(out, read_hash(&mut db, &a[1])) else { return };
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        return match h {
            None => out.null(),
            Some(h) => {
                let i = rng.gen_range(0..h.len());
                let (f, _) = h.iter().nth(i).unwrap();
                out.bulk(f)
            }
        };
    };
    if count < -(i64::MAX / 2) || (withvalues && count.unsigned_abs() > (i64::MAX / 2) as u64) {
        return out.error("ERR value is out of range");
    }
    let Some(h) = h else { return out.empty_array() };
    let items: Vec<(&[u8], &[u8])> = h.iter().collect();
    let picked: Vec<usize> = if count < 0 {
        (0..count.unsigned_abs()).map(|_| rng.gen_range(0..items.len())).collect()
    } else {
        let c = (count as usize).min(items.len());
        rand::seq::index::sample(&mut rng, items.len(), c).into_vec()
    };
    if withvalues && out.resp3 {
        out.array(picked.len());
        for i in picked {
            out.array(2);
            out.bulk(items[i].0);
            out.bulk(items[i].1);
        }
    } else {
        out.array(picked.len() * if withvalues { 2 } else { 1 });
        for i in picked {
            out.bulk(items[i].0);
            if withvalues {
                out.bulk(items[i].1);
            }
        }
    }
}

fn hscan(ctx: &mut Ctx, a: Args) {
    let Some(cursor) = ferrocache_node::util::cursor_arg(ctx.out, &a[2]) else { return };
    // Redis looks the key up (empty scan if missing, WRONGTYPE) before parsing the options.
    {
        let (mut db, out) = ctx.parts();
        match read_hash(&mut db, &a[1]) {
            Err(e) => return out.fail(&e),
            Ok(None) => {
                out.array(2);
                out.bulk(b"0");
                return out.empty_array();
            }
            Ok(Some(_)) => {}
        }
    }
    let Some((pat, count, _)) = crate::keys::scan_options(ctx, a, 3, false) else { return };
    let (mut db, out) = ctx.parts();
    let Some(Some(h)) = or_reply(out, read_hash(&mut db, &a[1])) else { return };
    // The compact encoding is returned whole, as Redis does for listpacks.
    let (next, all) = if matches!(h, HashValue::Listpack(_)) {
        (0, h.iter().collect())
    } else {
        ferrocache_engine::cursor_scan::step(h.iter(), |(f, _)| f, cursor, count)
    };
    let sel: Vec<_> = all
        .into_iter()
        .filter(|(f, _)| pat.as_ref().is_none_or(|p| ferrocache_engine::glob::glob_match(p, f, false)))
        .collect();
    out.array(2);
    out.bulk(next.to_string().as_bytes());
    out.array(sel.len() * 2);
    for (f, v) in sel {
        out.bulk(f);
        out.bulk(v);
    }
}
