//! The Lua 5.1 C API, from the `mlua-sys` crate (which builds Lua 5.1.5 from the `lua-src`
//! crate), with the few names this crate uses under their Lua 5.1 spelling.

pub use mlua_sys::lua51::lauxlib::{
    luaL_checkstack_ as luaL_checkstack, luaL_getmetafield_ as luaL_getmetafield, luaL_loadbuffer, luaL_newstate,
    luaL_ref, luaL_unref, luaL_where,
};
pub use mlua_sys::lua51::lua::*;
pub use mlua_sys::lua51::lualib::{luaopen_base, luaopen_debug, luaopen_math, luaopen_string, luaopen_table};

pub use mlua_sys::lua51::lua::{
    lua_getfield_ as lua_getfield, lua_gettable_ as lua_gettable, lua_pushlstring_ as lua_pushlstring,
    lua_pushstring_ as lua_pushstring, lua_rawget_ as lua_rawget, lua_rawgeti_ as lua_rawgeti,
    lua_rawseti_ as lua_rawseti, lua_tointeger_ as lua_tointeger,
};

/// `lua_getglobal`.
#[inline]
pub unsafe fn lua_getglobal(l: *mut lua_State, k: *const std::os::raw::c_char) {
    lua_getfield(l, LUA_GLOBALSINDEX, k)
}
