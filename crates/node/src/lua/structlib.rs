//! The `struct` library scripts see (Roberto Ierusalimschy's lua_struct API as Redis loads it):
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, pos])`, `struct.size(fmt)`, with the
//! sizes and alignment of x86-64 Linux (`long` and `size_t` are 8 bytes, `int` 4, maximum
//! alignment 8) and integers of up to 64 significant bits.
//!
//! Format: `>` big endian, `<` little endian, `!n` max alignment, ` ` ignored; `b/B` char,
//! `h/H` short, `l/L` long, `T` size_t, `i/In` int of n bytes (default 4), `f` float,
//! `d` double, `s` zero-terminated string, `cn` n chars (`c0`: the whole string when packing,
//! the previous unpacked number as length when unpacking), `x` a zero byte.

use super::capi::{self, cfn, Raise, Ret};
use super::ffi::*;
use std::os::raw::c_int;

const MAXINTSIZE: usize = 32;
const MAXALIGN: usize = 8;

struct Header {
    big: bool,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header { big: cfg!(target_endian = "big"), align: 1 }
    }
}

/// The format string as C reads it, and a cursor into it.
struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
}

impl Fmt<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.s.get(self.i)?;
        self.i += 1;
        Some(c)
    }
    /// A decimal number at the cursor, or `df`.
    unsafe fn num(&mut self, l: *mut lua_State, df: usize) -> Result<usize, Raise> {
        if !self.s.get(self.i).is_some_and(|c| c.is_ascii_digit()) {
            return Ok(df);
        }
        let mut a: i32 = 0;
        while let Some(&c) = self.s.get(self.i).filter(|c| c.is_ascii_digit()) {
            let d = (c - b'0') as i32;
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return Err(capi::error(l, b"integral size overflow"));
            }
            a = a * 10 + d;
            self.i += 1;
        }
        Ok(a as usize)
    }
}

unsafe fn optsize(l: *mut lua_State, opt: u8, f: &mut Fmt) -> Result<usize, Raise> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'x' => 1,
        b'c' => f.num(l, 1)?,
        b'i' | b'I' => {
            let sz = f.num(l, 4)?;
            if sz > MAXINTSIZE {
                let m = format!("integral size {} is larger than limit of {}", sz as i32, MAXINTSIZE);
                return Err(capi::error(l, m.as_bytes()));
            }
            sz
        }
        _ => 0,
    })
}

/// Padding needed before an item of `size` at offset `len`.
fn toalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

unsafe fn control(l: *mut lua_State, opt: u8, f: &mut Fmt, h: &mut Header) -> Result<(), Raise> {
    match opt {
        b' ' => {}
        b'>' => h.big = true,
        b'<' => h.big = false,
        b'!' => {
            let a = f.num(l, MAXALIGN)?;
            if !(a > 0 && a & (a - 1) == 0) {
                return Err(capi::error(l, format!("alignment {} is not a power of 2", a as i32).as_bytes()));
            }
            h.align = a;
        }
        _ => {
            let mut m = b"invalid format option '".to_vec();
            m.push(opt);
            m.push(b'\'');
            return Err(capi::arg_error(l, 1, &m));
        }
    }
    Ok(())
}

/// `(unsigned long)d` as x86-64 code computes it.
fn c_double_to_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() || d < TWO_63 {
        super::c_double_to_ll(d) as u64
    } else {
        (super::c_double_to_ll(d - TWO_63) as u64) ^ (1 << 63)
    }
}

unsafe fn pack(l: *mut lua_State) -> Ret {
    let fmt = capi::check_cstr(l, 1)?;
    let mut f = Fmt { s: fmt, i: 0 };
    let mut h = Header::new();
    let mut arg: c_int = 2;
    let mut out: Vec<u8> = Vec::new();
    while let Some(opt) = f.next() {
        let mut size = optsize(l, opt, &mut f)?;
        let pad = toalign(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = capi::check_number(l, arg)?;
                arg += 1;
                let v = if n < 0.0 { super::c_double_to_ll(n) as u64 } else { c_double_to_u64(n) };
                let byte = |i: usize| if i < 8 { (v >> (8 * i)) as u8 } else { 0 };
                if h.big {
                    out.extend((0..size).rev().map(byte));
                } else {
                    out.extend((0..size).map(byte));
                }
            }
            b'x' => out.push(0),
            b'f' => {
                let v = capi::check_number(l, arg)? as f32;
                arg += 1;
                out.extend_from_slice(&if h.big { v.to_be_bytes() } else { v.to_le_bytes() });
            }
            b'd' => {
                let v = capi::check_number(l, arg)?;
                arg += 1;
                out.extend_from_slice(&if h.big { v.to_be_bytes() } else { v.to_le_bytes() });
            }
            b'c' | b's' => {
                let s = capi::check_bytes(l, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(capi::arg_error(l, arg, b"string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => control(l, opt, &mut f, &mut h)?,
        }
    }
    capi::push_str(l, &out);
    Ok(1)
}

/// An integer of `size` bytes at the start of `b`.
fn get_int(b: &[u8], big: bool, signed: bool, size: usize) -> f64 {
    let mut v: u64 = 0;
    let mut add = |c: u8| v = (v << 8) | c as u64;
    if big {
        b[..size].iter().for_each(|&c| add(c));
    } else {
        b[..size].iter().rev().for_each(|&c| add(c));
    }
    if !signed {
        return v as f64;
    }
    let mask = u64::MAX.wrapping_shl((size as u32).wrapping_mul(8).wrapping_sub(1));
    if v & mask != 0 {
        v |= mask;
    }
    v as i64 as f64
}

unsafe fn unpack(l: *mut lua_State) -> Ret {
    let fmt = capi::check_cstr(l, 1)?;
    let data = capi::check_bytes(l, 2)?;
    let ld = data.len();
    let mut pos = capi::opt_integer(l, 3, 1)? as usize;
    if pos == 0 {
        return Err(capi::arg_error(l, 3, b"offset must be 1 or greater"));
    }
    pos -= 1;
    let mut f = Fmt { s: fmt, i: 0 };
    let mut h = Header::new();
    let mut n: c_int = 0;
    while let Some(opt) = f.next() {
        let mut size = optsize(l, opt, &mut f)?;
        pos = pos.wrapping_add(toalign(pos, &h, opt, size));
        if !(size <= ld && pos <= ld - size) {
            return Err(capi::arg_error(l, 2, b"data string too short"));
        }
        capi::check_stack(l, 2, "too many results")?;
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                lua_pushnumber(l, get_int(&data[pos..], h.big, opt.is_ascii_lowercase(), size));
                n += 1;
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = data[pos..pos + 4].try_into().unwrap();
                lua_pushnumber(l, if h.big { f32::from_be_bytes(b) } else { f32::from_le_bytes(b) } as f64);
                n += 1;
            }
            b'd' => {
                let b: [u8; 8] = data[pos..pos + 8].try_into().unwrap();
                lua_pushnumber(l, if h.big { f64::from_be_bytes(b) } else { f64::from_le_bytes(b) });
                n += 1;
            }
            b'c' => {
                if size == 0 {
                    if n == 0 || lua_isnumber(l, -1) == 0 {
                        return Err(capi::error(l, b"format 'c0' needs a previous size"));
                    }
                    size = c_double_to_u64(lua_tonumber(l, -1)) as usize;
                    lua_settop(l, -2);
                    n -= 1;
                    if !(size <= ld && pos <= ld - size) {
                        return Err(capi::arg_error(l, 2, b"data string too short"));
                    }
                }
                capi::push_str(l, &data[pos..pos + size]);
                n += 1;
            }
            b's' => {
                let Some(e) = memchr::memchr(0, &data[pos..]) else {
                    return Err(capi::error(l, b"unfinished string in data"));
                };
                capi::push_str(l, &data[pos..pos + e]);
                size = e + 1;
                n += 1;
            }
            _ => control(l, opt, &mut f, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    lua_pushinteger(l, pos.wrapping_add(1) as i64);
    Ok(n + 1)
}

unsafe fn size(l: *mut lua_State) -> Ret {
    let fmt = capi::check_cstr(l, 1)?;
    let mut f = Fmt { s: fmt, i: 0 };
    let mut h = Header::new();
    let mut pos: usize = 0;
    while let Some(opt) = f.next() {
        let size = optsize(l, opt, &mut f)?;
        pos = pos.wrapping_add(toalign(pos, &h, opt, size));
        if opt == b's' {
            return Err(capi::arg_error(l, 1, b"option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(capi::arg_error(l, 1, b"option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            control(l, opt, &mut f, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    lua_pushinteger(l, pos as i64);
    Ok(1)
}

cfn!(c_pack => pack);
cfn!(c_unpack => unpack);
cfn!(c_size => size);

/// Push the `struct` table.
pub unsafe fn push_lib(l: *mut lua_State) {
    lua_createtable(l, 0, 3);
    capi::set_funcs(l, &[(c"pack", c_pack), (c"unpack", c_unpack), (c"size", c_size)]);
}
