//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.

use crate::table::{flags::*, Command};
use crate::util::*;
use crate::Ctx;
use ferrocache_engine::{notify, Value};
use ferrocache_protocol::resp::Args;

const G: &str = "bitmap";

pub static COMMANDS: &[Command] = &[
    Command::new("setbit", 4, WRITE | DENYOOM, (1, 1, 1), setbit).group(G),
    Command::new("getbit", 3, READONLY | FAST, (1, 1, 1), getbit).group(G),
    Command::new("bitcount", -2, READONLY, (1, 1, 1), bitcount).group(G),
    Command::new("bitpos", -3, READONLY, (1, 1, 1), bitpos).group(G),
    Command::new("bitop", -4, WRITE | DENYOOM, (2, -1, 1), bitop).group(G),
    Command::new("bitfield", -2, WRITE | DENYOOM, (1, 1, 1), bitfield).group(G),
    Command::new("bitfield_ro", -2, READONLY | FAST, (1, 1, 1), bitfield_ro).group(G),
];

const ERR_BIT_OFFSET: &str = "ERR bit offset is not an integer or out of range";

fn bit_offset(a: &[u8], hash: bool, bits: u32) -> Option<u64> {
    let (a, mul) = if hash && a.first() == Some(&b'#') { (&a[1..], bits as u64) } else { (a, 1) };
    let v = parse_i64(a)?;
    if v < 0 {
        return None;
    }
    let v = (v as u64).checked_mul(mul)?;
    if v >= 512 * 1024 * 1024 * 8 {
        return None;
    }
    Some(v)
}

fn setbit(ctx: &mut Ctx, a: Args) {
    let Some(off) = bit_offset(&a[2], false, 1) else { return ctx.out.error(ERR_BIT_OFFSET) };
    let on = match &a[3][..] {
        b"1" => true,
        b"0" => false,
        _ => return ctx.out.error("ERR bit is not an integer or out of range"),
    };
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let exists = match db.get_mut(key) {
        Some(e) if e.value.as_bytes().is_none() => return out.error(ERR_WRONGTYPE),
        Some(_) => true,
        None => false,
    };
    if !exists {
        db.set(key, Value::Raw(Box::default()), false);
    }
    let r = db.get_mut(key).unwrap().value.as_raw_mut().unwrap();
    let byte = (off >> 3) as usize;
    if r.len() <= byte {
        r.resize(byte + 1, 0);
    }
    let bit = 7 - (off & 7) as u8;
    let old = (r[byte] >> bit) & 1;
    if on {
        r[byte] |= 1 << bit;
    } else {
        r[byte] &= !(1 << bit);
    }
    db.modified(key, notify::STRING, "setbit");
    out.int(old as i64);
}

fn getbit(ctx: &mut Ctx, a: Args) {
    let Some(off) = bit_offset(&a[2], false, 1) else { return ctx.out.error(ERR_BIT_OFFSET) };
    let (mut db, out) = ctx.parts();
    match crate::strings::read_str(&mut db, out, &a[1]) {
        Err(()) => {}
        Ok(None) => out.int(0),
        Ok(Some(v)) => {
            let byte = (off >> 3) as usize;
            out.int(if byte < v.len() { ((v[byte] >> (7 - (off & 7))) & 1) as i64 } else { 0 });
        }
    }
}

/// Normalise [start, end] over `len` units as Redis does for BITCOUNT/BITPOS.
fn norm(start: i64, end: i64, len: i64) -> Option<(i64, i64)> {
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
        None
    } else {
        Some((s, e))
    }
}

fn bit_at(v: &[u8], i: u64) -> bool {
    (v[(i >> 3) as usize] >> (7 - (i & 7))) & 1 == 1
}

fn bitcount(ctx: &mut Ctx, a: Args) {
    let mut range = None;
    let mut isbit = false;
    if a.len() == 4 || a.len() == 5 {
        let Some(s) = int_arg(ctx.out, &a[2]) else { return };
        let Some(e) = int_arg(ctx.out, &a[3]) else { return };
        if a.len() == 5 {
            if eq_ic(&a[4], "bit") {
                isbit = true;
            } else if !eq_ic(&a[4], "byte") {
                return ctx.out.error(ERR_SYNTAX);
            }
        }
        range = Some((s, e));
    } else if a.len() != 2 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let (mut db, out) = ctx.parts();
    let v = match crate::strings::read_str(&mut db, out, &a[1]) {
        Err(()) => return,
        Ok(None) => return out.int(0),
        Ok(Some(v)) => v,
    };
    let Some((s, e)) = range else {
        return out.int(v.iter().map(|b| b.count_ones() as i64).sum());
    };
    let len = if isbit { v.len() as i64 * 8 } else { v.len() as i64 };
    let Some((s, e)) = norm(s, e, len) else { return out.int(0) };
    if isbit {
        out.int((s..=e).filter(|&i| bit_at(v, i as u64)).count() as i64);
    } else {
        out.int(v[s as usize..=e as usize].iter().map(|b| b.count_ones() as i64).sum());
    }
}

fn bitpos(ctx: &mut Ctx, a: Args) {
    let bit = match &a[2][..] {
        b"1" => true,
        b"0" => false,
        _ => return ctx.out.error("ERR The bit argument must be 1 or 0."),
    };
    let mut start = 0i64;
    let mut end = -1i64;
    let mut end_given = false;
    let mut isbit = false;
    if a.len() >= 4 {
        let Some(s) = int_arg(ctx.out, &a[3]) else { return };
        start = s;
    }
    if a.len() >= 5 {
        let Some(e) = int_arg(ctx.out, &a[4]) else { return };
        end = e;
        end_given = true;
    }
    if a.len() == 6 {
        if eq_ic(&a[5], "bit") {
            isbit = true;
        } else if !eq_ic(&a[5], "byte") {
            return ctx.out.error(ERR_SYNTAX);
        }
    }
    if a.len() > 6 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let (mut db, out) = ctx.parts();
    let v = match crate::strings::read_str(&mut db, out, &a[1]) {
        Err(()) => return,
        Ok(None) => return out.int(if bit { -1 } else { 0 }),
        Ok(Some(v)) => v,
    };
    let len = if isbit { v.len() as i64 * 8 } else { v.len() as i64 };
    let Some((s, e)) = norm(start, end, len) else { return out.int(-1) };
    let (bs, be) = if isbit { (s as u64, e as u64) } else { (s as u64 * 8, e as u64 * 8 + 7) };
    for i in bs..=be {
        if bit_at(v, i) == bit {
            return out.int(i as i64);
        }
    }
    // Looking for a clear bit past the end of the string without an explicit end: the
    // string is considered padded with zeros on the right.
    if !bit && !end_given && !isbit {
        return out.int(be as i64 + 1);
    }
    out.int(-1)
}

fn bitop(ctx: &mut Ctx, a: Args) {
    let op = a[1].to_ascii_lowercase();
    if !matches!(op.as_slice(), b"and" | b"or" | b"xor" | b"not") {
        return ctx.out.error(ERR_SYNTAX);
    }
    if op == b"not" && a.len() != 4 {
        return ctx.out.error("ERR BITOP NOT must be called with a single source key.");
    }
    let dest = &a[2];
    let (mut db, out) = ctx.parts();
    let mut srcs: Vec<Option<Vec<u8>>> = Vec::new();
    for k in a.iter().skip(3) {
        match db.get(k) {
            None => srcs.push(None),
            Some(e) => match e.value.as_bytes() {
                Some(b) => srcs.push(Some(b.to_vec())),
                None => return out.error(ERR_WRONGTYPE),
            },
        }
    }
    let maxlen = srcs.iter().map(|s| s.as_ref().map(|v| v.len()).unwrap_or(0)).max().unwrap_or(0);
    let mut res = vec![0u8; maxlen];
    for (i, r) in res.iter_mut().enumerate() {
        let get = |s: &Option<Vec<u8>>| s.as_ref().and_then(|v| v.get(i).copied()).unwrap_or(0);
        *r = match op.as_slice() {
            b"not" => !get(&srcs[0]),
            b"and" => srcs.iter().fold(0xff, |acc, s| acc & get(s)),
            b"or" => srcs.iter().fold(0, |acc, s| acc | get(s)),
            _ => srcs.iter().fold(0, |acc, s| acc ^ get(s)),
        };
    }
    if maxlen == 0 {
        if db.remove(dest).is_some() {
            db.modified(dest, notify::GENERIC, "del");
        }
    } else {
        db.set(dest, Value::from_vec(res), false);
        db.modified(dest, notify::STRING, "set");
    }
    out.int(maxlen as i64);
}

#[derive(Clone, Copy)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

enum FieldOp {
    Get,
    Set(i64),
    Incr(i64),
}

fn parse_type(t: &[u8]) -> Option<(bool, u32)> {
    let signed = match t.first() {
        Some(b'i') | Some(b'I') => true,
        Some(b'u') | Some(b'U') => false,
        _ => return None,
    };
    let bits: u32 = std::str::from_utf8(&t[1..]).ok()?.parse().ok()?;
    if bits == 0 || (signed && bits > 64) || (!signed && bits > 63) {
        return None;
    }
    Some((signed, bits))
}

fn get_bits(v: &[u8], off: u64, bits: u32) -> u64 {
    let mut r = 0u64;
    for i in 0..bits as u64 {
        let p = off + i;
        let byte = (p >> 3) as usize;
        let b = if byte < v.len() { (v[byte] >> (7 - (p & 7))) & 1 } else { 0 };
        r = (r << 1) | b as u64;
    }
    r
}

fn set_bits(v: &mut Vec<u8>, off: u64, bits: u32, val: u64) {
    let need = ((off + bits as u64 + 7) >> 3) as usize;
    if v.len() < need {
        v.resize(need, 0);
    }
    for i in 0..bits as u64 {
        let b = (val >> (bits as u64 - 1 - i)) & 1;
        let p = off + i;
        let byte = (p >> 3) as usize;
        let sh = 7 - (p & 7);
        if b == 1 {
            v[byte] |= 1 << sh;
        } else {
            v[byte] &= !(1 << sh);
        }
    }
}

fn to_signed(v: u64, bits: u32) -> i64 {
    if bits == 64 {
        return v as i64;
    }
    let sign = 1u64 << (bits - 1);
    if v & sign != 0 {
        (v | !((1u64 << bits) - 1)) as i64
    } else {
        v as i64
    }
}

/// Apply overflow rules; None on FAIL overflow.
fn handle_overflow(signed: bool, bits: u32, value: i128, ow: Overflow) -> Option<i64> {
    let (min, max): (i128, i128) = if signed {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    } else {
        (0, (1i128 << bits) - 1)
    };
    if value >= min && value <= max {
        return Some(value as i64);
    }
    match ow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if value > max { max as i64 } else { min as i64 }),
        Overflow::Wrap => {
            let m = 1i128 << bits;
            let w = value.rem_euclid(m);
            Some(if signed { to_signed(w as u64, bits) } else { w as i64 })
        }
    }
}

fn bitfield_generic(ctx: &mut Ctx, a: Args, ro: bool) {
    let mut ops: Vec<(FieldOp, bool, u32, u64, Overflow)> = Vec::new();
    let mut ow = Overflow::Wrap;
    let mut j = 2;
    let mut writes = false;
    while j < a.len() {
        let o = &a[j];
        let remaining = a.len() - j - 1;
        if eq_ic(o, "get") && remaining >= 2 {
            let Some((s, b)) = parse_type(&a[j + 1]) else {
                return ctx.out.error("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.");
            };
            let Some(off) = bit_offset(&a[j + 2], true, b) else { return ctx.out.error(ERR_BIT_OFFSET) };
            ops.push((FieldOp::Get, s, b, off, ow));
            j += 3;
        } else if (eq_ic(o, "set") || eq_ic(o, "incrby")) && remaining >= 3 {
            if ro {
                return ctx.out.error("ERR BITFIELD_RO only supports the GET subcommand");
            }
            let Some((s, b)) = parse_type(&a[j + 1]) else {
                return ctx.out.error("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.");
            };
            let Some(off) = bit_offset(&a[j + 2], true, b) else { return ctx.out.error(ERR_BIT_OFFSET) };
            let Some(v) = int_arg(ctx.out, &a[j + 3]) else { return };
            let op = if eq_ic(o, "set") { FieldOp::Set(v) } else { FieldOp::Incr(v) };
            ops.push((op, s, b, off, ow));
            writes = true;
            j += 4;
        } else if eq_ic(o, "overflow") && remaining >= 1 {
            if ro {
                return ctx.out.error("ERR BITFIELD_RO only supports the GET subcommand");
            }
            ow = if eq_ic(&a[j + 1], "wrap") {
                Overflow::Wrap
            } else if eq_ic(&a[j + 1], "sat") {
                Overflow::Sat
            } else if eq_ic(&a[j + 1], "fail") {
                Overflow::Fail
            } else {
                return ctx.out.error("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
    }
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let mut cur: Vec<u8> = match db.get_mut(key) {
        None => Vec::new(),
        Some(e) => match e.value.as_bytes() {
            Some(b) => b.to_vec(),
            None => return out.error(ERR_WRONGTYPE),
        },
    };
    let existed = db.get_mut(key).is_some();
    let max_write_end = ops
        .iter()
        .filter(|(op, ..)| !matches!(op, FieldOp::Get))
        .map(|(_, _, bits, off, _)| off + *bits as u64)
        .max()
        .unwrap_or(0);
    out.array(ops.len());
    let mut changed = false;
    for (op, signed, bits, off, ow) in ops {
        let raw = get_bits(&cur, off, bits);
        let old: i64 = if signed { to_signed(raw, bits) } else { raw as i64 };
        match op {
            FieldOp::Get => out.int(old),
            FieldOp::Set(v) => {
                let nv = if signed { handle_overflow(true, bits, v as i128, ow) } else { handle_overflow(false, bits, v as i128, ow) };
                match nv {
                    Some(nv) => {
                        set_bits(&mut cur, off, bits, nv as u64 & mask(bits));
                        changed = true;
                        out.int(old);
                    }
                    None => out.null(),
                }
            }
            FieldOp::Incr(by) => match handle_overflow(signed, bits, old as i128 + by as i128, ow) {
                Some(nv) => {
                    set_bits(&mut cur, off, bits, nv as u64 & mask(bits));
                    changed = true;
                    out.int(nv);
                }
                None => out.null(),
            },
        }
    }
    // Redis creates the (zero-padded) string for write operations even when an overflow
    // FAIL prevented every change.
    if writes && (changed || !existed) {
        let need = max_write_end.div_ceil(8) as usize;
        if cur.len() < need {
            cur.resize(need, 0);
        }
        db.set(key, Value::Raw(Box::new(cur)), true);
        db.modified(key, notify::STRING, "setbit");
    }
}

fn mask(bits: u32) -> u64 {
    if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

fn bitfield(ctx: &mut Ctx, a: Args) {
    bitfield_generic(ctx, a, false)
}
fn bitfield_ro(ctx: &mut Ctx, a: Args) {
    bitfield_generic(ctx, a, true)
}
