//! Redis 7.0's readonly tables without its VM patch.
//!
//! Redis marks the globals table, every table reachable from it (the libraries, `redis`, `_G`),
//! their metatables and the string metatable readonly: any write raises "Attempt to modify a
//! readonly table". Stock Lua 5.1 cannot refuse a write to an existing key, so a protected
//! table `t` is only ever seen through its proxy: an empty table whose metatable (out of the
//! scripts' reach) reads through to `t` (`__index`) and refuses writes (`__newindex`). Inside
//! protected tables, table values are replaced by their proxies; the thread's globals are the
//! globals' proxy; the real tables stay reachable from the registry only.
//!
//! The functions that bypass metamethods are guarded so that a proxy behaves as its table
//! would: `rawset`, `setmetatable` and `table.insert` refuse proxies with Redis's error,
//! `rawget`, `next`, `pairs` and `table.foreach` read the real table, and `getmetatable`
//! returns the proxy of a protected metatable. A protected table's own metatable stays the
//! real one (the VM reads metamethods raw), e.g. the string metatable's `__index` is the
//! `string` proxy.

use super::capi::{self, cfn, Ret};
use super::ffi::*;
use std::os::raw::{c_int, c_void};

/// Key (in a proxy's metatable) of the real table.
static MARKER: u8 = 0;
/// Registry key of the table mapping each protected table to its proxy.
static PROXIES: u8 = 0;

fn key(k: &'static u8) -> *mut c_void {
    k as *const u8 as *mut c_void
}

pub const READONLY_ERROR: &[u8] = b"Attempt to modify a readonly table";

/// If the value at `idx` is a proxy, push its real table and return true.
pub unsafe fn push_real(l: *mut lua_State, idx: c_int) -> bool {
    if lua_type(l, idx) != LUA_TTABLE || lua_getmetatable(l, idx) == 0 {
        return false;
    }
    lua_pushlightuserdata(l, key(&MARKER));
    lua_rawget(l, -2);
    if lua_type(l, -1) == LUA_TTABLE {
        lua_remove(l, -2);
        true
    } else {
        lua_settop(l, -3);
        false
    }
}

pub unsafe fn is_proxy(l: *mut lua_State, idx: c_int) -> bool {
    if push_real(l, idx) {
        lua_settop(l, -2);
        true
    } else {
        false
    }
}

/// Replace a proxy at `idx` by its real table (for readers such as cjson.encode).
pub unsafe fn unproxy(l: *mut lua_State, idx: c_int) {
    let idx = if idx < 0 { lua_gettop(l) + 1 + idx } else { idx };
    if push_real(l, idx) {
        lua_replace(l, idx);
    }
}

/// Push the proxy of the protected table at `idx`; false (nothing pushed) if it has none.
unsafe fn push_proxy_of(l: *mut lua_State, idx: c_int) -> bool {
    let idx = if idx < 0 { lua_gettop(l) + 1 + idx } else { idx };
    lua_pushlightuserdata(l, key(&PROXIES));
    lua_rawget(l, LUA_REGISTRYINDEX);
    if lua_type(l, -1) != LUA_TTABLE {
        lua_settop(l, -2);
        return false;
    }
    lua_pushvalue(l, idx);
    lua_rawget(l, -2);
    lua_remove(l, -2);
    if lua_type(l, -1) == LUA_TTABLE {
        true
    } else {
        lua_settop(l, -2);
        false
    }
}

unsafe fn newindex(l: *mut lua_State) -> Ret {
    Err(capi::error(l, READONLY_ERROR))
}
cfn!(c_newindex => newindex);

/// Protect the table on top of the stack (and everything reachable from it) and replace it by
/// its proxy.
pub unsafe fn protect(l: *mut lua_State) {
    if is_proxy(l, -1) {
        return;
    }
    let t = lua_gettop(l);
    if push_proxy_of(l, t) {
        lua_replace(l, t);
        return;
    }
    lua_checkstack(l, 8);
    lua_pushlightuserdata(l, key(&PROXIES));
    lua_rawget(l, LUA_REGISTRYINDEX);
    if lua_type(l, -1) != LUA_TTABLE {
        lua_settop(l, -2);
        lua_createtable(l, 0, 32);
        lua_pushlightuserdata(l, key(&PROXIES));
        lua_pushvalue(l, -2);
        lua_rawset(l, LUA_REGISTRYINDEX);
    }
    let proxies = lua_gettop(l);
    // The proxy and its metatable.
    lua_createtable(l, 0, 0);
    let p = lua_gettop(l);
    lua_createtable(l, 0, 4);
    lua_pushvalue(l, t);
    lua_setfield(l, -2, c"__index".as_ptr());
    lua_pushcfunction(l, c_newindex);
    lua_setfield(l, -2, c"__newindex".as_ptr());
    lua_pushboolean(l, 0);
    lua_setfield(l, -2, c"__metatable".as_ptr());
    lua_pushlightuserdata(l, key(&MARKER));
    lua_pushvalue(l, t);
    lua_rawset(l, -3);
    lua_setmetatable(l, p);
    lua_pushvalue(l, t);
    lua_pushvalue(l, p);
    lua_rawset(l, proxies);
    // Table values become proxies (changing existing fields while traversing is allowed).
    lua_pushnil(l);
    while lua_next(l, t) != 0 {
        if lua_type(l, -1) == LUA_TTABLE {
            protect(l);
            lua_pushvalue(l, -2);
            lua_pushvalue(l, -2);
            lua_rawset(l, t);
        }
        lua_settop(l, -2);
    }
    if lua_getmetatable(l, t) != 0 {
        protect(l);
        lua_settop(l, -2);
    }
    lua_replace(l, t);
    lua_settop(l, t);
}

/// Protect the metatable of `value` (pushed by `push`), if it has one: Redis's
/// luaSetTableProtectionForBasicTypes, for the string metatable.
pub unsafe fn protect_metatable_of(l: *mut lua_State) {
    if lua_getmetatable(l, -1) != 0 {
        protect(l);
        lua_settop(l, -2);
    }
}

// ---------------------------------------------------------------------------------------------
// Guarded built-ins
// ---------------------------------------------------------------------------------------------

/// Call the original built-in (upvalue 1) in this C function's own call frame, so its error
/// messages name the function as the script called it.
#[inline(always)]
pub(crate) unsafe fn original(l: *mut lua_State) -> c_int {
    match lua_tocfunction(l, lua_upvalueindex(1)) {
        Some(f) => f(l),
        None => 0,
    }
}

unsafe fn raise_readonly(l: *mut lua_State) -> ! {
    capi::ensure_stack(l, 1);
    capi::push_str(l, READONLY_ERROR);
    lua_error(l)
}

/// `getmetatable`: a proxy's metatable is the proxy of its table's metatable; a protected
/// metatable is returned as its proxy.
unsafe fn getmetatable(l: *mut lua_State) -> Ret {
    capi::check_any(l, 1)?;
    if push_real(l, 1) {
        if lua_getmetatable(l, -1) == 0 || !push_proxy_of(l, -1) {
            lua_pushnil(l);
        }
        return Ok(1);
    }
    if lua_getmetatable(l, 1) == 0 {
        lua_pushnil(l);
        return Ok(1);
    }
    lua_pushstring(l, c"__metatable".as_ptr());
    lua_rawget(l, -2);
    if lua_type(l, -1) != LUA_TNIL {
        return Ok(1);
    }
    lua_settop(l, -2);
    push_proxy_of(l, -1);
    Ok(1)
}
cfn!(g_getmetatable => getmetatable);

/// `setmetatable`: a proxy cannot get one; a proxy given as metatable is its real table.
unsafe extern "C-unwind" fn g_setmetatable(l: *mut lua_State) -> c_int {
    let t2 = lua_type(l, 2);
    if lua_type(l, 1) == LUA_TTABLE && (t2 == LUA_TNIL || t2 == LUA_TTABLE) {
        if is_proxy(l, 1) {
            raise_readonly(l);
        }
        if t2 == LUA_TTABLE {
            unproxy(l, 2);
        }
    }
    original(l)
}

/// `rawset`: refused on a proxy (once the arguments are complete, as lua_rawset would).
unsafe extern "C-unwind" fn g_rawset(l: *mut lua_State) -> c_int {
    if lua_gettop(l) >= 3 && is_proxy(l, 1) {
        raise_readonly(l);
    }
    original(l)
}

/// `rawget`, `next`, `table.foreach`: a proxy reads as its real table.
unsafe extern "C-unwind" fn g_read_through(l: *mut lua_State) -> c_int {
    unproxy(l, 1);
    original(l)
}

/// `pairs`: iterates with the guarded `next` (upvalue 1).
unsafe fn pairs(l: *mut lua_State) -> Ret {
    capi::check_type(l, 1, LUA_TTABLE, "table")?;
    lua_pushvalue(l, lua_upvalueindex(1));
    lua_pushvalue(l, 1);
    lua_pushnil(l);
    Ok(3)
}
cfn!(g_pairs => pairs);

/// `table.insert`: on a proxy, the original runs against an empty table (for its argument
/// errors) and the write is then refused.
unsafe extern "C-unwind" fn g_insert(l: *mut lua_State) -> c_int {
    let ro = is_proxy(l, 1);
    if ro {
        lua_createtable(l, 0, 0);
        lua_replace(l, 1);
    }
    let n = original(l);
    if ro {
        raise_readonly(l);
    }
    n
}

/// Replace `t[name]` (t on top of the stack) by `guard` with the original as upvalue 1.
pub(crate) unsafe fn wrap(l: *mut lua_State, name: &std::ffi::CStr, guard: lua_CFunction) {
    lua_getfield(l, -1, name.as_ptr());
    lua_pushcclosure(l, guard, 1);
    lua_setfield(l, -2, name.as_ptr());
}

/// Install the guarded built-ins in the globals (`_G` on top of the stack; `table` loaded).
pub unsafe fn install_guards(l: *mut lua_State) {
    lua_pushcfunction(l, g_getmetatable);
    lua_setfield(l, -2, c"getmetatable".as_ptr());
    wrap(l, c"setmetatable", g_setmetatable);
    wrap(l, c"rawset", g_rawset);
    wrap(l, c"rawget", g_read_through);
    wrap(l, c"next", g_read_through);
    lua_getfield(l, -1, c"next".as_ptr());
    lua_pushcclosure(l, g_pairs, 1);
    lua_setfield(l, -2, c"pairs".as_ptr());
    lua_getfield(l, -1, c"table".as_ptr());
    wrap(l, c"insert", g_insert);
    wrap(l, c"foreach", g_read_through);
    lua_settop(l, -2);
}
