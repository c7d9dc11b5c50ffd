//! The `cmsgpack` library scripts see (lua-cmsgpack 0.4.0's API and encoding, as Redis loads
//! it): `pack(...)`, `unpack(s)`, `unpack_one(s [, offset])`, `unpack_limit(s, limit [, offset])`.
//!
//! Encoding: a table whose keys are exactly 1..n is an array, anything else a map; tables
//! nested 16 deep encode as nil (so cycles terminate); a number that is an exact 64-bit integer
//! uses the smallest integer form, others a float when the value survives the round trip
//! through single precision, else a double; strings use fixraw/raw8/raw16/raw32; functions and
//! other values are nil.

use super::capi::{self, cfn, Raise, Ret};
use super::ffi::*;
use std::os::raw::c_int;

const MAX_NESTING: c_int = 16;

fn enc_int(buf: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            buf.push(n as u8);
        } else if n <= 0xff {
            buf.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            buf.push(0xcd);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            buf.push(0xce);
            buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            buf.push(0xcf);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        buf.push(n as i8 as u8);
    } else if n >= -128 {
        buf.extend_from_slice(&[0xd0, n as u8]);
    } else if n >= -32768 {
        buf.push(0xd1);
        buf.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        buf.push(0xd2);
        buf.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        buf.push(0xd3);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

fn enc_header(buf: &mut Vec<u8>, n: usize, fix: u8, fix_max: usize, op16: u8) {
    if n <= fix_max {
        buf.push(fix | n as u8);
    } else if n <= 0xffff {
        buf.push(op16);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(op16 + 1);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn enc_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n < 32 {
        buf.push(0xa0 | n as u8);
    } else if n <= 0xff {
        buf.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        buf.push(0xda);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(0xdb);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    }
    buf.extend_from_slice(s);
}

fn enc_number(buf: &mut Vec<u8>, d: f64) {
    let i = super::c_double_to_ll(d);
    if !d.is_infinite() && i as f64 == d {
        enc_int(buf, i);
    } else if (d as f32) as f64 == d {
        buf.push(0xca);
        buf.extend_from_slice(&(d as f32).to_be_bytes());
    } else {
        buf.push(0xcb);
        buf.extend_from_slice(&d.to_be_bytes());
    }
}

/// Whether the table on top of the stack has exactly the keys 1..n (C `int` keys).
unsafe fn is_array(l: *mut lua_State) -> Result<bool, Raise> {
    let (mut count, mut max): (i64, i32) = (0, 0);
    capi::check_stack(l, 2, "in function table_is_an_array")?;
    lua_pushnil(l);
    while lua_next(l, -2) != 0 {
        lua_settop(l, -2);
        if lua_type(l, -1) != LUA_TNUMBER {
            lua_settop(l, -2);
            return Ok(false);
        }
        let n = lua_tonumber(l, -1);
        // (int)n == n, with x86's out-of-range conversion (INT_MIN).
        let as_int = if n.is_nan() || !(-2147483649.0..2147483648.0).contains(&n) { i32::MIN } else { n as i32 };
        if n <= 0.0 || n.is_infinite() || as_int as f64 != n {
            lua_settop(l, -2);
            return Ok(false);
        }
        if n > max as f64 {
            max = as_int;
        }
        count += 1;
    }
    Ok(max as i64 == count)
}

/// Encode the value on top of the stack and pop it.
unsafe fn encode(l: *mut lua_State, buf: &mut Vec<u8>, level: c_int) -> Result<(), Raise> {
    let mut t = lua_type(l, -1);
    if t == LUA_TTABLE && level == MAX_NESTING {
        t = LUA_TNIL;
    }
    match t {
        LUA_TSTRING => enc_bytes(buf, super::to_bytes(l, -1).unwrap_or(b"")),
        LUA_TBOOLEAN => buf.push(if lua_toboolean(l, -1) != 0 { 0xc3 } else { 0xc2 }),
        LUA_TNUMBER => enc_number(buf, lua_tonumber(l, -1)),
        LUA_TTABLE => {
            super::readonly::unproxy(l, -1);
            if is_array(l)? {
                let len = lua_objlen(l, -1);
                enc_header(buf, len, 0x90, 15, 0xdc);
                capi::check_stack(l, 1, "in function mp_encode_lua_table_as_array")?;
                for j in 1..=len {
                    lua_pushnumber(l, j as f64);
                    lua_gettable(l, -2);
                    encode(l, buf, level + 1)?;
                }
            } else {
                let mut len = 0usize;
                capi::check_stack(l, 3, "in function mp_encode_lua_table_as_map")?;
                lua_pushnil(l);
                while lua_next(l, -2) != 0 {
                    lua_settop(l, -2);
                    len += 1;
                }
                enc_header(buf, len, 0x80, 15, 0xde);
                lua_pushnil(l);
                while lua_next(l, -2) != 0 {
                    lua_pushvalue(l, -2);
                    encode(l, buf, level + 1)?;
                    encode(l, buf, level + 1)?;
                }
            }
        }
        _ => buf.push(0xc0),
    }
    lua_settop(l, -2);
    Ok(())
}

unsafe fn pack(l: *mut lua_State) -> Ret {
    let nargs = lua_gettop(l);
    if nargs == 0 {
        return Err(capi::arg_error(l, 0, b"MessagePack pack needs input."));
    }
    if lua_checkstack(l, nargs) == 0 {
        return Err(capi::arg_error(l, 0, b"Too many arguments for MessagePack pack."));
    }
    let mut buf = Vec::new();
    for i in 1..=nargs {
        capi::check_stack(l, 1, "in function mp_check")?;
        lua_pushvalue(l, i);
        encode(l, &mut buf, 0)?;
    }
    capi::push_str(l, &buf);
    Ok(1)
}

enum DecodeErr {
    Eof,
    BadFmt,
    Raise(Raise),
}

impl From<Raise> for DecodeErr {
    fn from(r: Raise) -> Self {
        DecodeErr::Raise(r)
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    p: usize,
}

impl Cursor<'_> {
    fn need(&self, n: usize) -> Result<&[u8], DecodeErr> {
        if self.s.len() - self.p < n {
            return Err(DecodeErr::Eof);
        }
        Ok(&self.s[self.p..self.p + n])
    }
    fn be(&self, off: usize, n: usize) -> Result<u64, DecodeErr> {
        Ok(self.need(off + n)?[off..].iter().fold(0u64, |v, &c| (v << 8) | c as u64))
    }
}

/// A container being filled by `decode` (the table is on top of the stack).
enum Open {
    /// Elements left, next index.
    Array(usize, u64),
    /// Pairs left; whether a key is on the stack waiting for its value.
    Map(usize, bool),
}

/// Decode one value at the cursor and push it. Iterative: nesting depth is bounded by the Lua
/// stack (as lua-cmsgpack's `luaL_checkstack`), not the thread's stack.
unsafe fn decode(l: *mut lua_State, c: &mut Cursor) -> Result<(), DecodeErr> {
    let mut open: Vec<Open> = Vec::new();
    loop {
        // Push one value or open a container.
        c.need(1)?;
        capi::check_stack(l, 1, "too many return values at once; use unpack_one or unpack_limit instead.")?;
        let b = c.s[c.p];
        let mut container: Option<Open> = None;
        match b {
            0xcc => {
                lua_pushinteger(l, c.be(1, 1)? as i64);
                c.p += 2;
            }
            0xd0 => {
                lua_pushinteger(l, c.be(1, 1)? as u8 as i8 as i64);
                c.p += 2;
            }
            0xcd => {
                lua_pushinteger(l, c.be(1, 2)? as i64);
                c.p += 3;
            }
            0xd1 => {
                lua_pushinteger(l, c.be(1, 2)? as u16 as i16 as i64);
                c.p += 3;
            }
            0xce => {
                lua_pushinteger(l, c.be(1, 4)? as i64);
                c.p += 5;
            }
            0xd2 => {
                lua_pushinteger(l, c.be(1, 4)? as u32 as i32 as i64);
                c.p += 5;
            }
            0xcf => {
                // lua_pushunsigned is lua_pushinteger: above 2^63 the value wraps negative.
                lua_pushinteger(l, c.be(1, 8)? as i64);
                c.p += 9;
            }
            0xd3 => {
                lua_pushnumber(l, c.be(1, 8)? as i64 as f64);
                c.p += 9;
            }
            0xc0 => {
                lua_pushnil(l);
                c.p += 1;
            }
            0xc3 | 0xc2 => {
                lua_pushboolean(l, (b == 0xc3) as c_int);
                c.p += 1;
            }
            0xca => {
                lua_pushnumber(l, f32::from_bits(c.be(1, 4)? as u32) as f64);
                c.p += 5;
            }
            0xcb => {
                lua_pushnumber(l, f64::from_bits(c.be(1, 8)?));
                c.p += 9;
            }
            0xd9..=0xdb => {
                let h = match b {
                    0xd9 => 1,
                    0xda => 2,
                    _ => 4,
                };
                let n = c.be(1, h)? as usize;
                let s = &c.need(1 + h + n)?[1 + h..];
                capi::push_str(l, s);
                c.p += 1 + h + n;
            }
            0xdc..=0xdf => {
                let h = if b == 0xdc || b == 0xde { 2 } else { 4 };
                let n = c.be(1, h)? as usize;
                c.p += 1 + h;
                container = Some(if b <= 0xdd { Open::Array(n, 1) } else { Open::Map(n, false) });
            }
            _ if b & 0x80 == 0 => {
                lua_pushinteger(l, b as i64);
                c.p += 1;
            }
            _ if b & 0xe0 == 0xe0 => {
                lua_pushinteger(l, b as i8 as i64);
                c.p += 1;
            }
            _ if b & 0xe0 == 0xa0 => {
                let n = (b & 0x1f) as usize;
                let s = &c.need(1 + n)?[1..];
                capi::push_str(l, s);
                c.p += 1 + n;
            }
            _ if b & 0xf0 == 0x90 => {
                c.p += 1;
                container = Some(Open::Array((b & 0xf) as usize, 1));
            }
            _ if b & 0xf0 == 0x80 => {
                c.p += 1;
                container = Some(Open::Map((b & 0xf) as usize, false));
            }
            _ => return Err(DecodeErr::BadFmt),
        }
        let mut just_opened = false;
        if let Some(o) = container {
            lua_createtable(l, 0, 0);
            if matches!(o, Open::Array(..)) {
                capi::check_stack(l, 1, "in function mp_decode_to_lua_array")?;
            }
            open.push(o);
            just_opened = true;
        }
        // Store the finished value into its container; find what to decode next.
        loop {
            match open.last_mut() {
                None => return Ok(()),
                Some(Open::Array(left, idx)) => {
                    if !just_opened {
                        // Stack: table, index, value.
                        lua_settable(l, -3);
                    }
                    if *left > 0 {
                        *left -= 1;
                        lua_pushnumber(l, *idx as f64);
                        *idx += 1;
                        break;
                    }
                }
                Some(Open::Map(left, key_pending)) => {
                    if !just_opened {
                        if !*key_pending {
                            *key_pending = true;
                            break;
                        }
                        // Stack: table, key, value.
                        let kt = lua_type(l, -2);
                        if kt == LUA_TNIL {
                            return Err(capi::error_plain(l, b"table index is nil").into());
                        }
                        if kt == LUA_TNUMBER && lua_tonumber(l, -2).is_nan() {
                            return Err(capi::error_plain(l, b"table index is NaN").into());
                        }
                        lua_settable(l, -3);
                        *key_pending = false;
                    }
                    if *left > 0 {
                        *left -= 1;
                        break;
                    }
                }
            }
            // The container is complete: it is a value for its parent.
            open.pop();
            just_opened = false;
        }
    }
}

/// `mp_unpack_full`: decode up to `limit` values from `offset` (both 0: everything, no offset
/// returned).
unsafe fn unpack_full(l: *mut lua_State, limit: i64, offset: i64) -> Ret {
    let s = capi::check_bytes(l, 1)?;
    let len = s.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        let m = format!("Invalid request to unpack with offset of {} and limit of {}.", offset as i32, len as i32);
        return Err(capi::error(l, m.as_bytes()));
    } else if offset as u64 > len as u64 {
        let m = format!("Start offset {} greater than input length {}.", offset as i32, len as i32);
        return Err(capi::error(l, m.as_bytes()));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut c = Cursor { s, p: offset as usize };
    let mut cnt: c_int = 0;
    while c.p < len && (cnt as i64) < limit {
        match decode(l, &mut c) {
            Ok(()) => {}
            Err(DecodeErr::Eof) => return Err(capi::error(l, b"Missing bytes in input.")),
            Err(DecodeErr::BadFmt) => return Err(capi::error(l, b"Bad data format in input.")),
            Err(DecodeErr::Raise(r)) => return Err(r),
        }
        cnt += 1;
    }
    if !decode_all {
        capi::check_stack(l, 1, "in function mp_unpack_full")?;
        lua_pushinteger(l, if c.p == len { -1 } else { c.p as i64 });
        lua_insert(l, 2);
        cnt += 1;
    }
    Ok(cnt)
}

unsafe fn unpack(l: *mut lua_State) -> Ret {
    unpack_full(l, 0, 0)
}

unsafe fn unpack_one(l: *mut lua_State) -> Ret {
    let offset = capi::opt_integer(l, 2, 0)?;
    lua_settop(l, 1.min(lua_gettop(l)));
    unpack_full(l, 1, offset)
}

unsafe fn unpack_limit(l: *mut lua_State) -> Ret {
    let limit = capi::check_integer(l, 2)?;
    let offset = capi::opt_integer(l, 3, 0)?;
    lua_settop(l, 1);
    unpack_full(l, limit, offset)
}

cfn!(c_pack => pack);
cfn!(c_unpack => unpack);
cfn!(c_unpack_one => unpack_one);
cfn!(c_unpack_limit => unpack_limit);

/// Push the `cmsgpack` table.
pub unsafe fn push_lib(l: *mut lua_State) {
    lua_createtable(l, 0, 0);
    capi::set_funcs(
        l,
        &[(c"pack", c_pack), (c"unpack", c_unpack), (c"unpack_one", c_unpack_one), (c"unpack_limit", c_unpack_limit)],
    );
    for (k, v) in [
        (c"_NAME", &b"cmsgpack"[..]),
        (c"_VERSION", b"lua-cmsgpack 0.4.0"),
        (c"_COPYRIGHT", b"Copyright (C) 2012, Salvatore Sanfilippo"),
        (c"_DESCRIPTION", b"MessagePack C implementation for Lua"),
    ] {
        capi::push_str(l, v);
        lua_setfield(l, -2, k.as_ptr());
    }
}
