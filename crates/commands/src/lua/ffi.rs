//! The Lua 5.1 C API we use (Redis 7.0.15's patched Lua, built by build.rs) and the glue in
//! lua/ferro_lua.c.
#![allow(non_camel_case_types, dead_code)]

use std::os::raw::{c_char, c_int, c_void};

#[repr(C)]
pub struct lua_State {
    _p: [u8; 0],
}

pub const LUA_REGISTRYINDEX: c_int = -10000;
pub const LUA_GLOBALSINDEX: c_int = -10002;
pub const LUA_MULTRET: c_int = -1;

pub const LUA_TNONE: c_int = -1;
pub const LUA_TNIL: c_int = 0;
pub const LUA_TBOOLEAN: c_int = 1;
pub const LUA_TLIGHTUSERDATA: c_int = 2;
pub const LUA_TNUMBER: c_int = 3;
pub const LUA_TSTRING: c_int = 4;
pub const LUA_TTABLE: c_int = 5;
pub const LUA_TFUNCTION: c_int = 6;

pub const LUA_GCCOLLECT: c_int = 2;
pub const LUA_GCCOUNT: c_int = 3;
pub const LUA_GCCOUNTB: c_int = 4;
pub const LUA_GCSTEP: c_int = 5;

extern "C" {
    pub fn lua_close(l: *mut lua_State);
    pub fn lua_gettop(l: *mut lua_State) -> c_int;
    pub fn lua_settop(l: *mut lua_State, idx: c_int);
    pub fn lua_pushvalue(l: *mut lua_State, idx: c_int);
    pub fn lua_checkstack(l: *mut lua_State, sz: c_int) -> c_int;
    pub fn lua_type(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_isstring(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_tonumber(l: *mut lua_State, idx: c_int) -> f64;
    pub fn lua_toboolean(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_tolstring(l: *mut lua_State, idx: c_int, len: *mut usize) -> *const c_char;
    pub fn lua_pushnil(l: *mut lua_State);
    pub fn lua_pushnumber(l: *mut lua_State, n: f64);
    pub fn lua_pushlstring(l: *mut lua_State, s: *const c_char, len: usize);
    pub fn lua_pushboolean(l: *mut lua_State, b: c_int);
    pub fn lua_createtable(l: *mut lua_State, narr: c_int, nrec: c_int);
    pub fn lua_getfield(l: *mut lua_State, idx: c_int, k: *const c_char);
    pub fn lua_setfield(l: *mut lua_State, idx: c_int, k: *const c_char);
    pub fn lua_rawget(l: *mut lua_State, idx: c_int);
    pub fn lua_rawgeti(l: *mut lua_State, idx: c_int, n: c_int);
    pub fn lua_rawset(l: *mut lua_State, idx: c_int);
    pub fn lua_rawseti(l: *mut lua_State, idx: c_int, n: c_int);
    pub fn lua_next(l: *mut lua_State, idx: c_int) -> c_int;
    pub fn lua_pcall(l: *mut lua_State, nargs: c_int, nresults: c_int, errfunc: c_int) -> c_int;
    pub fn lua_gc(l: *mut lua_State, what: c_int, data: c_int) -> c_int;
    pub fn luaL_loadbuffer(l: *mut lua_State, buf: *const c_char, sz: usize, name: *const c_char) -> c_int;

    pub fn ferro_eval_vm_new() -> *mut lua_State;
    pub fn ferro_func_vm_new() -> *mut lua_State;
    pub fn ferro_set_global_unprotected(l: *mut lua_State, name: *const c_char);
    pub fn ferro_set_run_hook(l: *mut lua_State, on: c_int);
    pub fn ferro_push_error_len(l: *mut lua_State, s: *const c_char, len: usize);
    pub fn ferro_func_load(l: *mut lua_State, code: *const c_char, len: usize) -> c_int;
    pub fn ferro_func_push(l: *mut lua_State, r: c_int);
    pub fn ferro_unref(l: *mut lua_State, r: c_int);
    pub fn ferro_flag_by_name(s: *const c_char, case_insensitive: c_int) -> u64;
}

pub type Opaque = c_void;
