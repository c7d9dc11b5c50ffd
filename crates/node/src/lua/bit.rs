//! The `bit` library scripts see (LuaBitOp 1.0.2's API and results, as Redis loads it):
//! 32-bit operations on Lua numbers, results as signed 32-bit numbers.

use super::capi::{self, cfn, Raise, Ret};
use super::ffi::*;
use std::os::raw::c_int;

/// A number argument as 32 bits: the low word of `n + 2^52 + 2^51` (rounds to nearest, wraps
/// modulo 2^32). A non-number (that is not a numeric string) is a type error.
unsafe fn arg(l: *mut lua_State, idx: c_int) -> Result<u32, Raise> {
    let n = lua_tonumber(l, idx) + 6_755_399_441_055_744.0;
    let b = n.to_bits() as u32;
    if b == 0 && lua_isnumber(l, idx) == 0 {
        return Err(capi::type_error(l, idx, "number"));
    }
    Ok(b)
}

unsafe fn ret(l: *mut lua_State, b: u32) -> Ret {
    lua_pushnumber(l, b as i32 as f64);
    Ok(1)
}

unsafe fn tobit(l: *mut lua_State) -> Ret {
    ret(l, arg(l, 1)?)
}

unsafe fn bnot(l: *mut lua_State) -> Ret {
    ret(l, !arg(l, 1)?)
}

unsafe fn fold(l: *mut lua_State, op: fn(u32, u32) -> u32) -> Ret {
    let mut b = arg(l, 1)?;
    let mut i = lua_gettop(l);
    while i > 1 {
        b = op(b, arg(l, i)?);
        i -= 1;
    }
    ret(l, b)
}

unsafe fn band(l: *mut lua_State) -> Ret {
    fold(l, |a, b| a & b)
}
unsafe fn bor(l: *mut lua_State) -> Ret {
    fold(l, |a, b| a | b)
}
unsafe fn bxor(l: *mut lua_State) -> Ret {
    fold(l, |a, b| a ^ b)
}

unsafe fn shift(l: *mut lua_State, op: fn(u32, u32) -> u32) -> Ret {
    let b = arg(l, 1)?;
    let n = arg(l, 2)? & 31;
    ret(l, op(b, n))
}

unsafe fn lshift(l: *mut lua_State) -> Ret {
    shift(l, |b, n| b << n)
}
unsafe fn rshift(l: *mut lua_State) -> Ret {
    shift(l, |b, n| b >> n)
}
unsafe fn arshift(l: *mut lua_State) -> Ret {
    shift(l, |b, n| ((b as i32) >> n) as u32)
}
unsafe fn rol(l: *mut lua_State) -> Ret {
    shift(l, |b, n| b.rotate_left(n))
}
unsafe fn ror(l: *mut lua_State) -> Ret {
    shift(l, |b, n| b.rotate_right(n))
}

unsafe fn bswap(l: *mut lua_State) -> Ret {
    ret(l, arg(l, 1)?.swap_bytes())
}

unsafe fn tohex(l: *mut lua_State) -> Ret {
    let mut b = arg(l, 1)?;
    let mut n: i32 = if lua_type(l, 2) == LUA_TNONE { 8 } else { arg(l, 2)? as i32 };
    let mut digits: &[u8; 16] = b"0123456789abcdef";
    if n == i32::MIN {
        n = i32::MIN + 1;
    }
    if n < 0 {
        n = -n;
        digits = b"0123456789ABCDEF";
    }
    let n = n.min(8) as usize;
    let mut buf = [0u8; 8];
    for i in (0..n).rev() {
        buf[i] = digits[(b & 15) as usize];
        b >>= 4;
    }
    capi::push_str(l, &buf[..n]);
    Ok(1)
}

cfn!(c_tobit => tobit);
cfn!(c_bnot => bnot);
cfn!(c_band => band);
cfn!(c_bor => bor);
cfn!(c_bxor => bxor);
cfn!(c_lshift => lshift);
cfn!(c_rshift => rshift);
cfn!(c_arshift => arshift);
cfn!(c_rol => rol);
cfn!(c_ror => ror);
cfn!(c_bswap => bswap);
cfn!(c_tohex => tohex);

/// Push the `bit` table.
pub unsafe fn push_lib(l: *mut lua_State) {
    lua_createtable(l, 0, 12);
    capi::set_funcs(
        l,
        &[
            (c"tobit", c_tobit),
            (c"bnot", c_bnot),
            (c"band", c_band),
            (c"bor", c_bor),
            (c"bxor", c_bxor),
            (c"lshift", c_lshift),
            (c"rshift", c_rshift),
            (c"arshift", c_arshift),
            (c"rol", c_rol),
            (c"ror", c_ror),
            (c"bswap", c_bswap),
            (c"tohex", c_tohex),
        ],
    );
}
