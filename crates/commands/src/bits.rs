//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.

use ferrocache_engine::{notify, Value};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::{Ctx, ErrorReply};
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

/// Redis's getBitOffsetFromArgument: `#N` (times `bits`) when `hash`, limited to
/// proto-max-bulk-len bytes.
fn bit_offset(a: &[u8], hash: bool, bits: u32, max_bytes: u64) -> Option<u64> {
    let (a, mul) = if hash && a.first() == Some(&b'#') { (&a[1..], bits as i64) } else { (a, 1) };
    let v = parse_i64(a)?.wrapping_mul(mul);
    if v < 0 || (v as u64 >> 3) >= max_bytes {
        return None;
    }
    Some(v as u64)
}

fn max_bytes(ctx: &Ctx) -> u64 {
    ctx.srv.config().hot.proto_max_bulk_len.load(std::sync::atomic::Ordering::Relaxed) as u64
}

fn setbit(ctx: &mut Ctx, a: Args) {
    let Some(off) = bit_offset(&a[2], false, 1, max_bytes(ctx)) else { return ctx.out.error(ERR_BIT_OFFSET) };
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
    let grown = r.len() <= byte;
    if grown {
        r.resize(byte + 1, 0);
    }
    let bit = 7 - (off & 7) as u8;
    let old = (r[byte] >> bit) & 1;
    if on {
        r[byte] |= 1 << bit;
    } else {
        r[byte] &= !(1 << bit);
    }
    // Only a new key, a grown string or a flipped bit is a change (dirty, notification).
    if !exists || grown || old != on as u8 {
        db.modified(key, notify::STRING, "setbit");
    }
    out.int(old as i64);
}

fn getbit(ctx: &mut Ctx, a: Args) {
    let Some(off) = bit_offset(&a[2], false, 1, max_bytes(ctx)) else { return ctx.out.error(ERR_BIT_OFFSET) };
    let (mut db, out) = ctx.parts();
    match crate::strings::read_str(&mut db, &a[1]) {
        Err(e) => out.fail(&e),
        Ok(None) => out.int(0),
        Ok(Some(v)) => {
            let byte = (off >> 3) as usize;
            out.int(if byte < v.len() { ((v[byte] >> (7 - (off & 7))) & 1) as i64 } else { 0 });
        }
    }
}

/// Redis's redisBitpos: first `bit` in `s`, -1 when looking for 1 and none is set,
/// `s.len() * 8` when looking for 0 and none is clear.
fn redis_bitpos(s: &[u8], bit: bool) -> i64 {
    for (i, &b) in s.iter().enumerate() {
        let x = if bit { b } else { !b };
        if x != 0 {
            return i as i64 * 8 + x.leading_zeros() as i64;
        }
    }
    if bit {
        -1
    } else {
        s.len() as i64 * 8
    }
}

fn bitcount(ctx: &mut Ctx, a: Args) {
    // Redis looks the key up (and checks its type) before parsing the range.
    let (mut db, out) = ctx.parts();
    let v = match crate::strings::read_str(&mut db, &a[1]) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.int(0),
        Ok(Some(v)) => v,
    };
    let (mut start, mut end);
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if a.len() == 4 || a.len() == 5 {
        let mut totlen = v.len() as i64;
        let Some(s) = int_arg(out, &a[2]) else { return };
        let Some(e) = int_arg(out, &a[3]) else { return };
        start = s;
        end = e;
        if start < 0 && end < 0 && start > end {
            return out.int(0);
        }
        let mut isbit = false;
        if a.len() == 5 {
            if eq_ic(&a[4], "bit") {
                isbit = true;
            } else if !eq_ic(&a[4], "byte") {
                return out.error(ERR_SYNTAX);
            }
        }
        if isbit {
            totlen <<= 3;
        }
        if start < 0 {
            start += totlen;
        }
        if end < 0 {
            end += totlen;
        }
        start = start.max(0);
        end = end.max(0);
        if end >= totlen {
            end = totlen - 1;
        }
        if isbit && start <= end {
            first_mask = (!((1u32 << (8 - (start & 7))) - 1) & 0xff) as u8;
            last_mask = ((1u32 << (7 - (end & 7))) - 1) as u8;
            start >>= 3;
            end >>= 3;
        }
    } else if a.len() == 2 {
        start = 0;
        end = v.len() as i64 - 1;
    } else {
        return out.error(ERR_SYNTAX);
    }
    if start > end {
        return out.int(0);
    }
    let (s, e) = (start as usize, end as usize);
    let mut count: i64 = v[s..=e].iter().map(|b| b.count_ones() as i64).sum();
    count -= ((v[s] & first_mask).count_ones() + (v[e] & last_mask).count_ones()) as i64;
    out.int(count)
}

fn bitpos(ctx: &mut Ctx, a: Args) {
    let Some(b) = int_arg(ctx.out, &a[2]) else { return };
    if b != 0 && b != 1 {
        return ctx.out.error("ERR The bit argument must be 1 or 0.");
    }
    let bit = b == 1;
    let (mut db, out) = ctx.parts();
    let p = match crate::strings::read_str(&mut db, &a[1]) {
        Err(e) => return out.fail(&e),
        Ok(None) => return out.int(if bit { -1 } else { 0 }),
        Ok(Some(v)) => v,
    };
    let (mut start, mut end);
    let mut end_given = false;
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if (4..=6).contains(&a.len()) {
        let mut totlen = p.len() as i64;
        let Some(s) = int_arg(out, &a[3]) else { return };
        start = s;
        let mut isbit = false;
        if a.len() == 6 {
            if eq_ic(&a[5], "bit") {
                isbit = true;
            } else if !eq_ic(&a[5], "byte") {
                return out.error(ERR_SYNTAX);
            }
        }
        if a.len() >= 5 {
            let Some(e) = int_arg(out, &a[4]) else { return };
            end = e;
            end_given = true;
        } else if isbit {
            end = (totlen << 3) + 7;
        } else {
            end = totlen - 1;
        }
        if isbit {
            totlen <<= 3;
        }
        if start < 0 {
            start += totlen;
        }
        if end < 0 {
            end += totlen;
        }
        start = start.max(0);
        end = end.max(0);
        if end >= totlen {
            end = totlen - 1;
        }
        if isbit && start <= end {
            first_mask = (!((1u32 << (8 - (start & 7))) - 1) & 0xff) as u8;
            last_mask = ((1u32 << (7 - (end & 7))) - 1) as u8;
            start >>= 3;
            end >>= 3;
        }
    } else if a.len() == 3 {
        start = 0;
        end = p.len() as i64 - 1;
    } else {
        return out.error(ERR_SYNTAX);
    }
    if start > end {
        return out.int(-1);
    }
    // A port of Redis's edge-masked search so every corner answers the same.
    let mut bytes = end - start + 1;
    let mut pos;
    'result: {
        if first_mask != 0 {
            let mut t = if bit { p[start as usize] & !first_mask } else { p[start as usize] | first_mask };
            if last_mask != 0 && bytes == 1 {
                t = if bit { t & !last_mask } else { t | last_mask };
            }
            pos = redis_bitpos(&[t], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'result;
            }
            start += 1;
            bytes -= 1;
        }
        let cur = bytes - if last_mask != 0 { 1 } else { 0 };
        if cur > 0 {
            pos = redis_bitpos(&p[start as usize..(start + cur) as usize], bit);
            if bytes == cur || (pos != -1 && pos != cur << 3) {
                break 'result;
            }
            start += cur;
            bytes -= cur;
        }
        let t = if bit { p[end as usize] & !last_mask } else { p[end as usize] | last_mask };
        pos = redis_bitpos(&[t], bit);
    }
    if end_given && !bit && pos == bytes << 3 {
        return out.int(-1);
    }
    if pos != -1 {
        pos += start << 3;
    }
    out.int(pos)
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
    // Redis accepts only lowercase 'i'/'u' and a string2ll width.
    let signed = match t.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return None,
    };
    let bits = parse_i64(&t[1..])?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return None;
    }
    Some((signed, bits as u32))
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

/// Redis's checkSignedBitfieldOverflow, with its exact (wrapping) int64 arithmetic, so that
/// even its corner cases (SET i8 with INT64_MIN saturates to the maximum) answer the same.
/// Returns (overflowed, limit): limit is the wrapped/saturated value when overflowed.
fn check_signed(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max: i64 = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        (true, if matches!(ow, Overflow::Wrap) { wrap() } else { max })
    } else if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        (true, if matches!(ow, Overflow::Wrap) { wrap() } else { min })
    } else {
        (false, 0)
    }
}

/// Redis's checkUnsignedBitfieldOverflow.
fn check_unsigned(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max: u64 = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || {
        let res = value.wrapping_add(incr as u64);
        if bits < 64 {
            res & !(u64::MAX << bits)
        } else {
            res
        }
    };
    if value > max || (incr > 0 && incr > maxincr) {
        (true, if matches!(ow, Overflow::Wrap) { wrap() } else { max })
    } else if incr < 0 && incr < minincr {
        (true, if matches!(ow, Overflow::Wrap) { wrap() } else { 0 })
    } else {
        (false, 0)
    }
}

fn bitfield_generic(ctx: &mut Ctx, a: Args, ro: bool) {
    const ERR_TYPE: &str =
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
    let maxb = max_bytes(ctx);
    let mut ops: Vec<(FieldOp, bool, u32, u64, Overflow)> = Vec::new();
    let mut ow = Overflow::Wrap;
    let mut j = 2;
    let mut readonly = true;
    let mut highest_write: u64 = 0;
    while j < a.len() {
        let o = &a[j];
        let remaining = a.len() - j - 1;
        let is_get = eq_ic(o, "get") && remaining >= 2;
        let is_set = eq_ic(o, "set") && remaining >= 3;
        let is_incr = eq_ic(o, "incrby") && remaining >= 3;
        if !(is_get || is_set || is_incr) {
            if eq_ic(o, "overflow") && remaining >= 1 {
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
                continue;
            }
            return ctx.out.error(ERR_SYNTAX);
        }
        let Some((s, b)) = parse_type(&a[j + 1]) else { return ctx.out.error(ERR_TYPE) };
        let Some(off) = bit_offset(&a[j + 2], true, b, maxb) else { return ctx.out.error(ERR_BIT_OFFSET) };
        if is_get {
            ops.push((FieldOp::Get, s, b, off, ow));
            j += 3;
            continue;
        }
        readonly = false;
        highest_write = highest_write.max(off + b as u64 - 1);
        let Some(v) = int_arg(ctx.out, &a[j + 3]) else { return };
        let op = if is_set { FieldOp::Set(v) } else { FieldOp::Incr(v) };
        ops.push((op, s, b, off, ow));
        j += 4;
    }
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    if readonly {
        let cur: Vec<u8> = match crate::strings::read_str(&mut db, key) {
            Err(e) => return out.fail(&e),
            Ok(v) => v.map(|v| v.to_vec()).unwrap_or_default(),
        };
        out.array(ops.len());
        for (_, signed, bits, off, _) in ops {
            let raw = get_bits(&cur, off, bits);
            out.int(if signed { to_signed(raw, bits) } else { raw as i64 });
        }
        return;
    }
    if ro {
        return out.error("ERR BITFIELD_RO only supports the GET subcommand");
    }
    // lookupStringForBitCommand: create or zero-pad the string up to the highest written bit,
    // even when every write then fails with OVERFLOW FAIL.
    let need = (highest_write >> 3) as usize + 1;
    let (mut cur, mut dirty): (Vec<u8>, bool) = match db.get_mut(key) {
        None => (Vec::new(), true),
        Some(e) => match e.value.as_bytes() {
            Some(b) => (b.to_vec(), false),
            None => return out.error(ERR_WRONGTYPE),
        },
    };
    if cur.len() < need {
        cur.resize(need, 0);
        dirty = true;
    }
    out.array(ops.len());
    let mut changes = 0;
    for (op, signed, bits, off, ow) in ops {
        let raw = get_bits(&cur, off, bits);
        let old: i64 = if signed { to_signed(raw, bits) } else { raw as i64 };
        if matches!(op, FieldOp::Get) {
            out.int(old);
            continue;
        }
        // (new value, reply value, overflowed)
        let (nv, ret, overflow): (u64, i64, bool) = if signed {
            let (nv, ret, of) = match op {
                FieldOp::Get => unreachable!(),
                FieldOp::Incr(by) => {
                    let (of, lim) = check_signed(old, by, bits, ow);
                    let nv = if of { lim } else { old.wrapping_add(by) };
                    (nv, nv, of)
                }
                FieldOp::Set(v) => {
                    let (of, lim) = check_signed(v, 0, bits, ow);
                    (if of { lim } else { v }, old, of)
                }
            };
            (nv as u64, ret, of)
        } else {
            let oldu = old as u64;
            match op {
                FieldOp::Get => unreachable!(),
                FieldOp::Incr(by) => {
                    let (of, lim) = check_unsigned(oldu, by, bits, ow);
                    let nv = if of { lim } else { oldu.wrapping_add(by as u64) };
                    (nv, nv as i64, of)
                }
                FieldOp::Set(v) => {
                    let (of, lim) = check_unsigned(v as u64, 0, bits, ow);
                    (if of { lim } else { v as u64 }, old, of)
                }
            }
        };
        if overflow && matches!(ow, Overflow::Fail) {
            out.null();
            continue;
        }
        set_bits(&mut cur, off, bits, nv & mask(bits));
        let stored = get_bits(&cur, off, bits);
        if dirty || stored != raw {
            changes += 1;
        }
        out.int(ret);
    }
    db.set(key, Value::Raw(Box::new(cur)), true);
    if changes > 0 {
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
