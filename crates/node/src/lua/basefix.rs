//! Redis's fixes to Lua 5.1's base library, which stock Lua 5.1.5 (lua-src) lacks: no bytecode
//! is ever loaded (scripts, `loadstring`, `load`: a chunk starting with the signature's first
//! byte fails to parse, as in Redis's patched `f_parser`), and `unpack` checks its range
//! without integer overflow.

use super::capi::{self, cfn, Ret};
use super::ffi::*;
use super::readonly::{original, wrap};
use std::os::raw::c_int;

/// A chunk starting with the bytecode signature's first byte gets a leading space: Redis's Lua
/// never loads bytecode (the parser then fails on that byte, at the same place and line).
unsafe fn starts_with_esc(l: *mut lua_State, idx: c_int) -> bool {
    lua_type(l, idx) == LUA_TSTRING && super::to_bytes(l, idx).is_some_and(|b| b.first() == Some(&0x1b))
}

/// `loadstring(s [, chunkname])` without bytecode.
unsafe extern "C-unwind" fn g_loadstring(l: *mut lua_State) -> c_int {
    if starts_with_esc(l, 1) {
        if lua_type(l, 2) <= LUA_TNIL {
            lua_settop(l, 1);
            lua_pushvalue(l, 1);
        }
        lua_pushstring(l, c" ".as_ptr());
        lua_pushvalue(l, 1);
        lua_concat(l, 2);
        lua_replace(l, 1);
    }
    original(l)
}

/// The reader `load` calls: the script's reader (upvalue 1), its first piece guarded as
/// `loadstring`'s chunk (upvalue 2: whether the first piece is still to come).
unsafe extern "C-unwind" fn guarded_reader(l: *mut lua_State) -> c_int {
    lua_pushvalue(l, lua_upvalueindex(1));
    lua_call(l, 0, 1);
    if lua_toboolean(l, lua_upvalueindex(2)) != 0 {
        lua_pushboolean(l, 0);
        lua_replace(l, lua_upvalueindex(2));
        if starts_with_esc(l, -1) {
            lua_pushstring(l, c" ".as_ptr());
            lua_insert(l, -2);
            lua_concat(l, 2);
        }
    }
    1
}

/// `load(reader [, chunkname])` without bytecode.
unsafe extern "C-unwind" fn g_load(l: *mut lua_State) -> c_int {
    if lua_type(l, 1) == LUA_TFUNCTION {
        lua_pushvalue(l, 1);
        lua_pushboolean(l, 1);
        lua_pushcclosure(l, guarded_reader, 2);
        lua_replace(l, 1);
    }
    original(l)
}

/// Load `code` as a chunk named `name` (Redis's luaL_loadbuffer: never bytecode).
pub unsafe fn load_chunk(l: *mut lua_State, code: &[u8], name: &std::ffi::CStr) -> c_int {
    if code.first() == Some(&0x1b) {
        let mut c = Vec::with_capacity(code.len() + 1);
        c.push(b' ');
        c.extend_from_slice(code);
        return luaL_loadbuffer(l, c.as_ptr() as *const _, c.len(), name.as_ptr());
    }
    luaL_loadbuffer(l, code.as_ptr() as *const _, code.len(), name.as_ptr())
}

/// `unpack(t [, i [, j]])` with Redis's overflow-safe range check.
unsafe fn unpack(l: *mut lua_State) -> Ret {
    capi::check_type(l, 1, LUA_TTABLE, "table")?;
    let i = if lua_type(l, 2) <= LUA_TNIL { 1 } else { capi::check_int(l, 2)? };
    let e = if lua_type(l, 3) <= LUA_TNIL { lua_objlen(l, 1) as c_int } else { capi::check_int(l, 3)? };
    if i > e {
        return Ok(0);
    }
    let n = (e as u32).wrapping_sub(i as u32);
    if n >= c_int::MAX as u32 || lua_checkstack(l, n as c_int + 1) == 0 {
        return Err(capi::error(l, b"too many results to unpack"));
    }
    for k in i..=e {
        lua_rawgeti(l, 1, k);
    }
    Ok(n as c_int + 1)
}
cfn!(c_unpack => unpack);

/// Install the fixed built-ins in the globals (on top of the stack).
pub unsafe fn install(l: *mut lua_State) {
    wrap(l, c"loadstring", g_loadstring);
    wrap(l, c"load", g_load);
    lua_pushcfunction(l, c_unpack);
    lua_setfield(l, -2, c"unpack".as_ptr());
}
