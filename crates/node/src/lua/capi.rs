//! C functions written in Rust: how they raise Lua errors, and the `luaL_check*` family.
//!
//! `lua_error` is a `longjmp`: no Rust frame that owns something to drop may be jumped over.
//! So a C function's body (`unsafe fn(*mut lua_State) -> Ret`) never raises: on error it pushes
//! the error value and returns `Err(Raise)`, and the `extern "C-unwind"` wrapper made by
//! [`cfn!`] — a frame that owns nothing — raises it after the body has returned. A panic in a
//! body is caught there too and becomes a Lua error instead of unwinding through the VM.
//!
//! The helpers below build the exact messages of lauxlib's `luaL_argerror`, `luaL_typerror` and
//! `luaL_error` (which prefixes the position of the Lua code calling the C function).

use super::ffi::*;
use std::os::raw::c_int;

/// The error value is on top of the Lua stack and must be raised.
pub struct Raise;

/// A C function body's result: the number of results, or an error to raise.
pub type Ret = Result<c_int, Raise>;

/// Define `unsafe extern "C-unwind" fn $name(l) -> c_int`, a Lua C function running `$body`.
macro_rules! cfn {
    ($vis:vis $name:ident => $body:expr) => {
        $vis unsafe extern "C-unwind" fn $name(l: *mut $crate::lua::ffi::lua_State) -> std::os::raw::c_int {
            let n = $crate::lua::capi::run(l, $body);
            if n < 0 {
                $crate::lua::ffi::lua_error(l);
            }
            n
        }
    };
}
pub(crate) use cfn;

/// Run a C function body: its result count, or -1 with the error value pushed.
#[inline(always)]
pub unsafe fn run(l: *mut lua_State, body: unsafe fn(*mut lua_State) -> Ret) -> c_int {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(l))) {
        Ok(Ok(n)) => n,
        Ok(Err(Raise)) => -1,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            ensure_stack(l, 1);
            push_str(l, format!("internal error: {what}").as_bytes());
            -1
        }
    }
}

#[inline]
pub unsafe fn push_str(l: *mut lua_State, b: &[u8]) {
    lua_pushlstring(l, b.as_ptr() as *const _, b.len());
}

/// Room for `n` more values, for an error about to be raised: if the stack cannot grow (this
/// frame holds the most values Lua allows), values of this frame are dropped.
pub unsafe fn ensure_stack(l: *mut lua_State, n: c_int) {
    if lua_checkstack(l, n) == 0 {
        lua_settop(l, (lua_gettop(l) - n).max(0));
    }
}

/// `luaL_error`: the message prefixed with the calling Lua code's position.
pub unsafe fn error(l: *mut lua_State, msg: &[u8]) -> Raise {
    ensure_stack(l, 3);
    luaL_where(l, 1);
    push_str(l, msg);
    lua_concat(l, 2);
    Raise
}

/// An error raised by the VM inside a C function (`luaG_runerror` there adds no position).
pub unsafe fn error_plain(l: *mut lua_State, msg: &[u8]) -> Raise {
    ensure_stack(l, 1);
    push_str(l, msg);
    Raise
}

/// Name and kind of the running C function as its caller named it (`lua_getinfo "n"`).
unsafe fn called_name(l: *mut lua_State) -> Option<(Vec<u8>, bool)> {
    let mut ar: lua_Debug = std::mem::zeroed();
    if lua_getstack(l, 0, &mut ar) == 0 {
        return None;
    }
    lua_getinfo(l, c"n".as_ptr(), &mut ar);
    let method = !ar.namewhat.is_null() && std::ffi::CStr::from_ptr(ar.namewhat).to_bytes() == b"method";
    let name = if ar.name.is_null() { b"?".to_vec() } else { std::ffi::CStr::from_ptr(ar.name).to_bytes().to_vec() };
    Some((name, method))
}

/// `luaL_argerror`.
pub unsafe fn arg_error(l: *mut lua_State, mut narg: c_int, extramsg: &[u8]) -> Raise {
    let Some((name, method)) = called_name(l) else {
        let mut m = format!("bad argument #{narg} (").into_bytes();
        m.extend_from_slice(extramsg);
        m.push(b')');
        return error(l, &m);
    };
    if method {
        narg -= 1;
        if narg == 0 {
            let mut m = b"calling '".to_vec();
            m.extend_from_slice(&name);
            m.extend_from_slice(b"' on bad self (");
            m.extend_from_slice(extramsg);
            m.push(b')');
            return error(l, &m);
        }
    }
    let mut m = format!("bad argument #{narg} to '").into_bytes();
    m.extend_from_slice(&name);
    m.extend_from_slice(b"' (");
    m.extend_from_slice(extramsg);
    m.push(b')');
    error(l, &m)
}

/// `luaL_typename`.
pub unsafe fn type_name(l: *mut lua_State, idx: c_int) -> &'static str {
    match lua_type(l, idx) {
        LUA_TNONE => "no value",
        LUA_TNIL => "nil",
        LUA_TBOOLEAN => "boolean",
        LUA_TLIGHTUSERDATA | LUA_TUSERDATA => "userdata",
        LUA_TNUMBER => "number",
        LUA_TSTRING => "string",
        LUA_TTABLE => "table",
        LUA_TFUNCTION => "function",
        LUA_TTHREAD => "thread",
        _ => "?",
    }
}

/// `luaL_typerror`.
pub unsafe fn type_error(l: *mut lua_State, narg: c_int, tname: &str) -> Raise {
    let m = format!("{} expected, got {}", tname, type_name(l, narg));
    arg_error(l, narg, m.as_bytes())
}

/// `luaL_checknumber`.
pub unsafe fn check_number(l: *mut lua_State, narg: c_int) -> Result<f64, Raise> {
    let d = lua_tonumber(l, narg);
    if d == 0.0 && lua_isnumber(l, narg) == 0 {
        return Err(type_error(l, narg, "number"));
    }
    Ok(d)
}

/// `luaL_checkinteger` (`lua_Integer` is 64 bits; the conversion truncates as C's cast does).
pub unsafe fn check_integer(l: *mut lua_State, narg: c_int) -> Result<i64, Raise> {
    let d = lua_tointeger(l, narg);
    if d == 0 && lua_isnumber(l, narg) == 0 {
        return Err(type_error(l, narg, "number"));
    }
    Ok(d)
}

/// `luaL_checkint`: `(int)luaL_checkinteger`.
pub unsafe fn check_int(l: *mut lua_State, narg: c_int) -> Result<c_int, Raise> {
    check_integer(l, narg).map(|v| v as c_int)
}

/// `luaL_optinteger`.
pub unsafe fn opt_integer(l: *mut lua_State, narg: c_int, def: i64) -> Result<i64, Raise> {
    if lua_type(l, narg) <= LUA_TNIL {
        Ok(def)
    } else {
        check_integer(l, narg)
    }
}

/// `luaL_checklstring` (a number argument is converted to a string in place).
pub unsafe fn check_bytes<'a>(l: *mut lua_State, narg: c_int) -> Result<&'a [u8], Raise> {
    let mut len = 0usize;
    let p = lua_tolstring(l, narg, &mut len);
    if p.is_null() {
        return Err(type_error(l, narg, "string"));
    }
    Ok(std::slice::from_raw_parts(p as *const u8, len))
}

/// `luaL_checkstring` as C code reads it: up to the first NUL.
pub unsafe fn check_cstr<'a>(l: *mut lua_State, narg: c_int) -> Result<&'a [u8], Raise> {
    let b = check_bytes(l, narg)?;
    Ok(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())])
}

/// `luaL_checkany`.
pub unsafe fn check_any(l: *mut lua_State, narg: c_int) -> Result<(), Raise> {
    if lua_type(l, narg) == LUA_TNONE {
        return Err(arg_error(l, narg, b"value expected"));
    }
    Ok(())
}

/// `luaL_checktype`.
pub unsafe fn check_type(l: *mut lua_State, narg: c_int, t: c_int, tname: &str) -> Result<(), Raise> {
    if lua_type(l, narg) != t {
        return Err(type_error(l, narg, tname));
    }
    Ok(())
}

/// `luaL_checkstack` with its message.
pub unsafe fn check_stack(l: *mut lua_State, n: c_int, msg: &str) -> Result<(), Raise> {
    if lua_checkstack(l, n) == 0 {
        return Err(error(l, format!("stack overflow ({msg})").as_bytes()));
    }
    Ok(())
}

/// Register `funcs` into the table on top of the stack.
pub unsafe fn set_funcs(l: *mut lua_State, funcs: &[(&std::ffi::CStr, lua_CFunction)]) {
    for (name, f) in funcs {
        lua_pushcfunction(l, *f);
        lua_setfield(l, -2, name.as_ptr());
    }
}
