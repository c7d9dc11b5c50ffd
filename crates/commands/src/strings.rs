//! String commands: GET, SET and its variants, counters, ranges, LCS.

use ferrocache_engine::{notify, Db, Value};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::{Args, ReplyBuf};

const W: u64 = WRITE | DENYOOM;
const G: &str = "string";

pub static COMMANDS: &[Command] = &[
    Command::new("get", 2, READONLY | FAST, (1, 1, 1), get).group(G),
    Command::new("set", -3, W, (1, 1, 1), set).group(G),
    Command::new("setnx", 3, W | FAST, (1, 1, 1), setnx).group(G),
    Command::new("setex", 4, W, (1, 1, 1), setex).group(G),
    Command::new("psetex", 4, W, (1, 1, 1), psetex).group(G),
    Command::new("getset", 3, W | FAST, (1, 1, 1), getset).group(G),
    Command::new("getdel", 2, WRITE | FAST, (1, 1, 1), getdel).group(G),
    Command::new("getex", -2, WRITE | FAST, (1, 1, 1), getex).group(G),
    Command::new("mget", -2, READONLY | FAST, (1, -1, 1), mget).group(G),
    Command::new("mset", -3, W, (1, -1, 2), mset).group(G),
    Command::new("msetnx", -3, W, (1, -1, 2), msetnx).group(G),
    Command::new("append", 3, W | FAST, (1, 1, 1), append).group(G),
    Command::new("strlen", 2, READONLY | FAST, (1, 1, 1), strlen).group(G),
    Command::new("incr", 2, W | FAST, (1, 1, 1), incr).group(G),
    Command::new("decr", 2, W | FAST, (1, 1, 1), decr).group(G),
    Command::new("incrby", 3, W | FAST, (1, 1, 1), incrby).group(G),
    Command::new("decrby", 3, W | FAST, (1, 1, 1), decrby).group(G),
    Command::new("incrbyfloat", 3, W | FAST, (1, 1, 1), incrbyfloat).group(G),
    Command::new("setrange", 4, W, (1, 1, 1), setrange).group(G),
    Command::new("getrange", 4, READONLY, (1, 1, 1), getrange).group(G),
    Command::new("substr", 4, READONLY, (1, 1, 1), getrange).group(G),
    Command::new("lcs", -3, READONLY, (1, 2, 1), lcs).group(G),
];

/// A string value lookup: Ok(None) for a missing key, Err after writing WRONGTYPE.
pub fn read_str<'d>(db: &'d mut Db<'_, '_>, out: &mut ReplyBuf, key: &[u8]) -> Result<Option<&'d [u8]>, ()> {
    match db.get(key) {
        None => Ok(None),
        Some(e) => match e.value.as_bytes() {
            Some(b) => Ok(Some(b)),
            None => {
                out.error(ERR_WRONGTYPE);
                Err(())
            }
        },
    }
}

fn get(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Ok(v) = read_str(&mut db, out, &a[1]) {
        match v {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
}

const SET_NX: u32 = 1;
const SET_XX: u32 = 2;
const SET_GET: u32 = 4;
const SET_KEEPTTL: u32 = 8;
const SET_PERSIST: u32 = 16;
const SET_EX: u32 = 32;
const SET_PX: u32 = 64;
const SET_EXAT: u32 = 128;
const SET_PXAT: u32 = 256;
const ANY_EXPIRE: u32 = SET_EX | SET_PX | SET_EXAT | SET_PXAT;

/// Redis's parseExtendedStringArgumentsOrReply for SET (is_set) and GETEX.
fn parse_set_options<'a>(a: Args<'a>, start: usize, is_set: bool) -> Result<(u32, Option<&'a [u8]>), &'static str> {
    let mut f = 0u32;
    let mut expire = None;
    let mut j = start;
    while j < a.len() {
        let o = &a[j];
        let has_next = j + 1 < a.len();
        if eq_ic(o, "nx") && f & SET_XX == 0 && is_set {
            f |= SET_NX;
        } else if eq_ic(o, "xx") && f & SET_NX == 0 && is_set {
            f |= SET_XX;
        } else if eq_ic(o, "get") && is_set {
            f |= SET_GET;
        } else if eq_ic(o, "keepttl") && f & (SET_PERSIST | ANY_EXPIRE) == 0 && is_set {
            f |= SET_KEEPTTL;
        } else if eq_ic(o, "persist") && !is_set && f & (ANY_EXPIRE | SET_KEEPTTL) == 0 {
            f |= SET_PERSIST;
        } else if has_next && f & (SET_KEEPTTL | SET_PERSIST) == 0 && ANY_EXPIRE & f == 0 {
            let flag = if eq_ic(o, "ex") {
                SET_EX
            } else if eq_ic(o, "px") {
                SET_PX
            } else if eq_ic(o, "exat") {
                SET_EXAT
            } else if eq_ic(o, "pxat") {
                SET_PXAT
            } else {
                return Err(ERR_SYNTAX);
            };
            f |= flag;
            expire = a.get(j + 1);
            j += 1;
        } else {
            return Err(ERR_SYNTAX);
        }
        j += 1;
    }
    Ok((f, expire))
}

/// Absolute expiry in ms from an EX/PX/EXAT/PXAT argument, or Redis's error.
fn expire_ms(f: u32, v: &[u8], now: u64, cmd: &str) -> Result<u64, String> {
    let n = parse_i64(v).ok_or_else(|| ERR_NOT_INT.to_string())?;
    let seconds = f & (SET_EX | SET_EXAT) != 0;
    let bad = || format!("ERR invalid expire time in '{}' command", cmd);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(bad());
    }
    let mut ms = if seconds { n * 1000 } else { n };
    if f & (SET_EX | SET_PX) != 0 {
        ms = ms.checked_add(now as i64).ok_or_else(bad)?;
    }
    if ms <= 0 {
        return Err(bad());
    }
    Ok(ms as u64)
}

/// The core of SET / SETNX / SETEX / PSETEX.
#[allow(clippy::too_many_arguments)]
fn set_generic(ctx: &mut Ctx, key: &[u8], val: &[u8], f: u32, expire: Option<&[u8]>, ok_int: bool) {
    let cmdname = ctx.cmd.full_name();
    let exp = match expire {
        Some(e) => match expire_ms(f, e, ctx.now_ms, cmdname) {
            Ok(ms) => Some(ms),
            Err(e) => return ctx.out.error(&e),
        },
        None => None,
    };
    let (mut db, out) = ctx.parts();
    if f & SET_GET != 0 {
        match read_str(&mut db, out, key) {
            Err(()) => return,
            Ok(Some(v)) => out.bulk(v),
            Ok(None) => out.null(),
        }
    }
    let found = db.get_mut(key).is_some();
    if (f & SET_NX != 0 && found) || (f & SET_XX != 0 && !found) {
        if f & SET_GET == 0 {
            if ok_int {
                out.int(0);
            } else {
                out.null();
            }
        }
        return;
    }
    db.set(key, Value::str(val), f & SET_KEEPTTL != 0);
    db.modified(key, notify::STRING, "set");
    if let Some(ms) = exp {
        db.set_expire(key, ms);
        db.fx.event(notify::GENERIC, "expire", db.db, key);
        let d = db.db;
        db.fx.propagate(
            d,
            vec![b"SET".to_vec(), key.to_vec(), val.to_vec(), b"PXAT".to_vec(), ms.to_string().into_bytes()],
        );
        ctx.propagate_original = false;
    } else if f & SET_GET != 0 {
        let d = db.db;
        let mut argv = vec![b"SET".to_vec(), key.to_vec(), val.to_vec()];
        if f & SET_KEEPTTL != 0 {
            argv.push(b"KEEPTTL".to_vec());
        }
        db.fx.propagate(d, argv);
        ctx.propagate_original = false;
    }
    if f & SET_GET == 0 {
        if ok_int {
            ctx.out.int(1);
        } else {
            ctx.out.ok();
        }
    }
}

fn set(ctx: &mut Ctx, a: Args) {
    match parse_set_options(a, 3, true) {
        Ok((f, e)) => set_generic(ctx, &a[1], &a[2], f, e, false),
        Err(e) => ctx.out.error(e),
    }
}
fn setnx(ctx: &mut Ctx, a: Args) {
    set_generic(ctx, &a[1], &a[3 - 1], SET_NX, None, true)
}
fn setex(ctx: &mut Ctx, a: Args) {
    set_generic(ctx, &a[1], &a[3], SET_EX, Some(&a[2]), false)
}
fn psetex(ctx: &mut Ctx, a: Args) {
    set_generic(ctx, &a[1], &a[3], SET_PX, Some(&a[2]), false)
}

fn getset(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match read_str(&mut db, out, &a[1]) {
        Err(()) => return,
        Ok(Some(v)) => out.bulk(v),
        Ok(None) => out.null(),
    }
    db.set(&a[1], Value::str(&a[2]), false);
    db.modified(&a[1], notify::STRING, "set");
    let d = db.db;
    db.fx.propagate(d, vec![b"SET".to_vec(), a[1].to_vec(), a[2].to_vec()]);
    ctx.propagate_original = false;
}

fn getdel(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    match read_str(&mut db, out, &a[1]) {
        Err(()) => {}
        Ok(None) => out.null(),
        Ok(Some(v)) => {
            out.bulk(v);
            db.remove(&a[1]);
            db.modified(&a[1], notify::GENERIC, "del");
            let d = db.db;
            db.fx.propagate(d, vec![b"DEL".to_vec(), a[1].to_vec()]);
            ctx.propagate_original = false;
        }
    }
}

fn getex(ctx: &mut Ctx, a: Args) {
    let (f, expire) = match parse_set_options(a, 2, false) {
        Ok(x) => x,
        Err(e) => return ctx.out.error(e),
    };
    let now = ctx.now_ms;
    let key = &a[1];
    // GETEX is never propagated as is: as PEXPIREAT, DEL or PERSIST.
    ctx.propagate_original = false;
    let (mut db, out) = ctx.parts();
    match read_str(&mut db, out, key) {
        Err(()) => return,
        Ok(None) => return out.null(),
        Ok(Some(_)) => {}
    }
    let ms = match expire {
        Some(e) => match expire_ms(f, e, now, "getex") {
            Ok(ms) => Some(ms),
            Err(e) => return out.error(&e),
        },
        None => None,
    };
    let v = db.get_mut(key).unwrap().value.as_bytes().unwrap().to_vec();
    out.bulk(&v);
    let d = db.db;
    if f & (SET_EXAT | SET_PXAT) != 0 && ms.is_some_and(|m| m <= now) {
        db.remove(key);
        db.modified(key, notify::GENERIC, "del");
        db.fx.propagate(d, vec![b"DEL".to_vec(), key.to_vec()]);
    } else if let Some(ms) = ms {
        db.set_expire(key, ms);
        db.modified(key, notify::GENERIC, "expire");
        db.fx.propagate(d, vec![b"PEXPIREAT".to_vec(), key.to_vec(), ms.to_string().into_bytes()]);
    } else if f & SET_PERSIST != 0 && db.persist(key) {
        db.modified(key, notify::GENERIC, "persist");
        db.fx.propagate(d, vec![b"PERSIST".to_vec(), key.to_vec()]);
    }
}

fn mget(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    out.array(a.len() - 1);
    for k in a.iter().skip(1) {
        match db.get(k).and_then(|e| e.value.as_bytes()) {
            Some(v) => out.bulk(v),
            None => out.null(),
        }
    }
}

fn mset_generic(ctx: &mut Ctx, a: Args, nx: bool) {
    if a.len().is_multiple_of(2) {
        let name = ctx.cmd.full_name();
        return ctx.out.error(&format!("ERR wrong number of arguments for '{}' command", name));
    }
    let (mut db, out) = ctx.parts();
    if nx {
        for i in (1..a.len()).step_by(2) {
            if db.get_mut(&a[i]).is_some() {
                return out.int(0);
            }
        }
    }
    for i in (1..a.len()).step_by(2) {
        db.set(&a[i], Value::str(&a[i + 1]), false);
        db.modified(&a[i], notify::STRING, "set");
    }
    if nx {
        out.int(1)
    } else {
        out.ok()
    }
}
fn mset(ctx: &mut Ctx, a: Args) {
    mset_generic(ctx, a, false)
}
fn msetnx(ctx: &mut Ctx, a: Args) {
    mset_generic(ctx, a, true)
}

/// Redis's checkStringLength against proto-max-bulk-len.
fn check_len(ctx: &Ctx, total: u64) -> bool {
    total <= ctx.srv.config.hot.proto_max_bulk_len.load(std::sync::atomic::Ordering::Relaxed) as u64
}

fn append(ctx: &mut Ctx, a: Args) {
    let (k, v) = (&a[1], &a[2]);
    let cur_len = {
        let (mut db, out) = ctx.parts();
        match db.get_mut(k) {
            None => None,
            Some(e) => match e.value.as_bytes() {
                Some(b) => Some(b.len()),
                None => return out.error(ERR_WRONGTYPE),
            },
        }
    };
    if let Some(l) = cur_len {
        if !check_len(ctx, (l + v.len()) as u64) {
            return ctx.out.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        }
    }
    let (mut db, out) = ctx.parts();
    let newlen = match db.get_mut(k) {
        None => {
            db.set(k, Value::str(v), false);
            v.len()
        }
        Some(e) => {
            let r = e.value.as_raw_mut().unwrap();
            r.extend_from_slice(v);
            r.len()
        }
    };
    db.modified(k, notify::STRING, "append");
    out.int(newlen as i64);
}

fn strlen(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    if let Ok(v) = read_str(&mut db, out, &a[1]) {
        out.int(v.map(|v| v.len()).unwrap_or(0) as i64);
    }
}

fn incr_generic(ctx: &mut Ctx, key: &[u8], by: i64) {
    let (mut db, out) = ctx.parts();
    let cur = match db.get_mut(key) {
        None => 0,
        Some(e) => match e.value.as_bytes() {
            None => return out.error(ERR_WRONGTYPE),
            Some(b) => match parse_i64(b) {
                Some(v) => v,
                None => return out.error(ERR_NOT_INT),
            },
        },
    };
    let Some(n) = cur.checked_add(by) else { return out.error(ERR_OVERFLOW) };
    let mut b = itoa::Buffer::new();
    let s = b.format(n);
    db.set(key, Value::str(s.as_bytes()), true);
    db.modified(key, notify::STRING, "incrby");
    out.int(n);
}
fn incr(ctx: &mut Ctx, a: Args) {
    incr_generic(ctx, &a[1], 1)
}
fn decr(ctx: &mut Ctx, a: Args) {
    incr_generic(ctx, &a[1], -1)
}
fn incrby(ctx: &mut Ctx, a: Args) {
    if let Some(n) = int_arg(ctx.out, &a[2]) {
        incr_generic(ctx, &a[1], n)
    }
}
fn decrby(ctx: &mut Ctx, a: Args) {
    if let Some(n) = int_arg(ctx.out, &a[2]) {
        if n == i64::MIN {
            return ctx.out.error("ERR decrement would overflow");
        }
        incr_generic(ctx, &a[1], -n)
    }
}

fn incrbyfloat(ctx: &mut Ctx, a: Args) {
    use crate::ldouble::LDouble;
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let cur = match db.get_mut(key) {
        None => LDouble::zero(false),
        Some(e) => match e.value.as_bytes() {
            None => return out.error(ERR_WRONGTYPE),
            Some(b) => match LDouble::parse(b) {
                Some(v) => v,
                None => return out.error(ERR_NOT_FLOAT),
            },
        },
    };
    let Some(by) = LDouble::parse(&a[2]) else { return out.error(ERR_NOT_FLOAT) };
    let n = cur.plus(by);
    if n.is_nan() || n.is_inf() {
        return out.error("ERR increment would produce NaN or Infinity");
    }
    let s = n.to_human();
    db.set(key, Value::str(s.as_bytes()), true);
    db.modified(key, notify::STRING, "incrbyfloat");
    out.bulk(s.as_bytes());
    let d = db.db;
    db.fx.propagate(d, vec![b"SET".to_vec(), key.to_vec(), s.into_bytes(), b"KEEPTTL".to_vec()]);
    ctx.propagate_original = false;
}

fn setrange(ctx: &mut Ctx, a: Args) {
    let key = &a[1];
    let Some(off) = int_arg(ctx.out, &a[2]) else { return };
    if off < 0 {
        return ctx.out.error("ERR offset is out of range");
    }
    let v = &a[3];
    let exists = {
        let (mut db, out) = ctx.parts();
        match db.get_mut(key) {
            None => false,
            Some(e) if e.value.as_bytes().is_none() => return out.error(ERR_WRONGTYPE),
            Some(_) => true,
        }
    };
    if v.is_empty() {
        let (mut db, out) = ctx.parts();
        let l = if exists { db.get_mut(key).unwrap().value.as_bytes().unwrap().len() } else { 0 };
        return out.int(l as i64);
    }
    if !check_len(ctx, off as u64 + v.len() as u64) {
        return ctx.out.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let (mut db, out) = ctx.parts();
    if !exists {
        db.set(key, Value::Raw(Box::default()), false);
    }
    let e = db.get_mut(key).unwrap();
    let r = e.value.as_raw_mut().unwrap();
    let off = off as usize;
    if r.len() < off + v.len() {
        r.resize(off + v.len(), 0);
    }
    r[off..off + v.len()].copy_from_slice(v);
    let l = r.len();
    db.modified(key, notify::STRING, "setrange");
    out.int(l as i64);
}

fn getrange(ctx: &mut Ctx, a: Args) {
    let Some(start) = int_arg(ctx.out, &a[2]) else { return };
    let Some(end) = int_arg(ctx.out, &a[3]) else { return };
    let (mut db, out) = ctx.parts();
    let v = match read_str(&mut db, out, &a[1]) {
        Err(()) => return,
        Ok(None) => return out.bulk(b""),
        Ok(Some(v)) => v,
    };
    if start < 0 && end < 0 && start > end {
        return out.bulk(b"");
    }
    let len = v.len() as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if e < 0 {
        e = 0;
    }
    if e >= len {
        e = len - 1;
    }
    if s > e || len == 0 {
        return out.bulk(b"");
    }
    out.bulk(&v[s as usize..=e as usize]);
}

fn lcs(ctx: &mut Ctx, a: Args) {
    // Redis checks both keys' types before it parses the options.
    let (mut db, out) = ctx.parts();
    let mut fetch = |k: &[u8]| -> Result<Vec<u8>, ()> {
        match db.get(k) {
            None => Ok(Vec::new()),
            Some(e) => e.value.as_bytes().map(|b| b.to_vec()).ok_or(()),
        }
    };
    let (Ok(sa), Ok(sb)) = (fetch(&a[1]), fetch(&a[2])) else {
        return out.error("ERR The specified keys must contain string values");
    };
    let mut get_len = false;
    let mut get_idx = false;
    let mut with_match_len = false;
    let mut min_match_len: i64 = 0;
    let mut j = 3;
    while j < a.len() {
        let o = &a[j];
        if eq_ic(o, "idx") {
            get_idx = true;
        } else if eq_ic(o, "len") {
            get_len = true;
        } else if eq_ic(o, "withmatchlen") {
            with_match_len = true;
        } else if eq_ic(o, "minmatchlen") && j + 1 < a.len() {
            let Some(n) = int_arg(out, &a[j + 1]) else { return };
            min_match_len = n.max(0);
            j += 1;
        } else {
            return out.error(ERR_SYNTAX);
        }
        j += 1;
    }
    if get_idx && get_len {
        return out.error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (n, m) = (sa.len(), sb.len());
    if (n + 1).saturating_mul(m + 1) > 512 * 1024 * 1024 {
        return out.error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    // dp[i][j] = LCS length of sa[..i], sb[..j]
    let w = m + 1;
    let mut dp = vec![0u32; (n + 1) * w];
    for i in 1..=n {
        for jj in 1..=m {
            dp[i * w + jj] = if sa[i - 1] == sb[jj - 1] {
                dp[(i - 1) * w + jj - 1] + 1
            } else {
                dp[(i - 1) * w + jj].max(dp[i * w + jj - 1])
            };
        }
    }
    let total = dp[n * w + m] as usize;
    let mut result = vec![0u8; total];
    let mut idx = total;
    let (mut i, mut jj) = (n, m);
    // matches: (a_start, a_end, b_start, b_end, len)
    let mut matches: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut cur: Option<(usize, usize, usize, usize)> = None;
    while i > 0 && jj > 0 {
        if sa[i - 1] == sb[jj - 1] {
            idx -= 1;
            result[idx] = sa[i - 1];
            match cur {
                Some((as_, ae, bs, be)) if as_ == i && bs == jj => cur = Some((i - 1, ae, jj - 1, be)),
                Some(r) => {
                    matches.push(r);
                    cur = Some((i - 1, i - 1, jj - 1, jj - 1));
                }
                None => cur = Some((i - 1, i - 1, jj - 1, jj - 1)),
            }
            i -= 1;
            jj -= 1;
        } else if dp[(i - 1) * w + jj] > dp[i * w + jj - 1] {
            i -= 1;
        } else {
            jj -= 1;
        }
    }
    if let Some(r) = cur {
        matches.push(r);
    }
    if get_idx {
        let sel: Vec<_> = matches.iter().filter(|m| (m.1 - m.0 + 1) as i64 >= min_match_len).collect();
        out.map(2);
        out.bulk(b"matches");
        out.array(sel.len());
        for m in sel {
            out.array(if with_match_len { 3 } else { 2 });
            out.array(2);
            out.int(m.0 as i64);
            out.int(m.1 as i64);
            out.array(2);
            out.int(m.2 as i64);
            out.int(m.3 as i64);
            if with_match_len {
                out.int((m.1 - m.0 + 1) as i64);
            }
        }
        out.bulk(b"len");
        out.int(total as i64);
    } else if get_len {
        out.int(total as i64);
    } else {
        out.bulk(&result);
    }
}
