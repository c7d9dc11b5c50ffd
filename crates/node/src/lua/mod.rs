//! The Lua side of scripting: Lua 5.1 from crates.io (`mlua-sys`, which builds Lua 5.1.5 from
//! `lua-src`), Redis 7.0's script environment written here (`sandbox`: the interpreters, the
//! `redis` API, globals protection; `readonly`: readonly tables; the libraries `cjson`,
//! `cmsgpack`, `bit` and `structlib`), and the two conversions Redis does: a command's RESP
//! reply → Lua values (`redisProtocolToLuaType`) and a script's Lua result → the caller's reply
//! (`luaReplyToRedisReply`).
//!
//! Lua raises errors with `longjmp`: C functions written in Rust follow `capi`'s scheme (the
//! body returns, a wrapper that owns nothing raises).

// Every `unsafe fn` here takes a `lua_State` owned by the caller, who holds that interpreter's
// mutex (or is running inside it); stack indices refer to that state's stack.
#![allow(clippy::missing_safety_doc)]

pub mod basefix;
pub mod bit;
pub mod capi;
pub mod cjson;
pub mod cmsgpack;
pub mod ffi;
pub mod numfmt;
pub mod readonly;
pub mod sandbox;
pub mod structlib;
#[cfg(test)]
mod tests;

use ferrocache_protocol::resp::ReplyBuf;
use ffi::*;
use std::os::raw::c_int;

/// One Lua interpreter. Only used under the scripting mutexes.
pub struct Vm(pub *mut lua_State);

// The interpreter is only touched by the thread holding its mutex.
unsafe impl Send for Vm {}

impl Drop for Vm {
    fn drop(&mut self) {
        unsafe { lua_close(self.0) }
    }
}

impl Vm {
    pub fn new_eval() -> Vm {
        Vm(unsafe { sandbox::new_eval_state() })
    }
    pub fn new_func() -> Vm {
        Vm(unsafe { sandbox::new_func_state() })
    }
    /// Memory used by the interpreter (Redis's luaMemory).
    pub fn memory(&self) -> u64 {
        unsafe { lua_gc(self.0, LUA_GCCOUNT, 0) as u64 * 1024 + lua_gc(self.0, LUA_GCCOUNTB, 0) as u64 }
    }
}

pub fn cstr(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap()
}

pub unsafe fn pop(l: *mut lua_State, n: c_int) {
    lua_settop(l, -n - 1);
}

pub unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    lua_pushlstring(l, b.as_ptr() as *const _, b.len());
}

pub unsafe fn to_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    let p = lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(p as *const u8, len))
    }
}

/// `lua_pushstring` of a C string: stops at the first NUL.
pub unsafe fn push_cstr_like(l: *mut lua_State, b: &[u8]) {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    push_bytes(l, &b[..n]);
}

/// Push Redis's error table for `msg` ("-CODE text" or "text").
pub unsafe fn push_error(l: *mut lua_State, msg: &[u8]) {
    sandbox::push_error(l, msg);
}

/// t[k] = v for the table at -3 after pushing k and v (raw, fresh tables only).
unsafe fn set_field_bool(l: *mut lua_State, k: &str, v: bool) {
    push_bytes(l, k.as_bytes());
    lua_pushboolean(l, v as c_int);
    lua_rawset(l, -3);
}

/// Make a Lua array (table) of byte strings.
pub unsafe fn push_array(l: *mut lua_State, items: &[&[u8]]) {
    lua_createtable(l, items.len() as c_int, 0);
    for (j, it) in items.iter().enumerate() {
        push_bytes(l, it);
        lua_rawseti(l, -2, j as c_int + 1);
    }
}

/// `(long long)` of a C double as x86-64 computes it (cvttsd2si): NaN and out-of-range give
/// i64::MIN.
pub fn c_double_to_ll(d: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() || !(-TWO_63..TWO_63).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// snprintf("%.17g") of a Lua number (redis.call arguments).
pub fn fmt_g17(d: f64) -> String {
    ferrocache_protocol::resp::format_double(d)
}

// ---------------------------------------------------------------------------------------------
// RESP → Lua (redisProtocolToLuaType)
// ---------------------------------------------------------------------------------------------

fn line(buf: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = &buf[pos..];
    match memchr::memmem::find(rest, b"\r\n") {
        Some(i) => (&rest[..i], pos + i + 2),
        None => (rest, buf.len()),
    }
}

/// `n` bytes at `pos`, cut short at the end of a truncated buffer.
fn bytes_at(buf: &[u8], pos: usize, n: usize) -> &[u8] {
    let a = pos.min(buf.len());
    &buf[a..a.saturating_add(n).min(buf.len())]
}

fn num(s: &[u8]) -> i64 {
    std::str::from_utf8(s).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Table preallocation for `n` announced elements (each takes at least 3 bytes of `buf`).
fn prealloc(n: i64, buf: &[u8], pos: usize) -> c_int {
    n.clamp(0, (buf.len().saturating_sub(pos) / 3) as i64).min(c_int::MAX as i64) as c_int
}

/// t[k] = v for the table at -3 with k at -2 and v at -1; a nil key (a null map key or set
/// member, which no command replies) is dropped instead of raising "table index is nil".
unsafe fn rawset_key(l: *mut lua_State) {
    if lua_type(l, -2) == LUA_TNIL {
        pop(l, 2);
    } else {
        lua_rawset(l, -3);
    }
}

/// The position after the reply at `pos` (iterative: any nesting depth).
pub fn skip_resp(buf: &[u8], mut pos: usize) -> usize {
    let mut pending: u64 = 1;
    while pending > 0 && pos < buf.len() {
        pending -= 1;
        let t = buf[pos];
        let (body, next) = line(buf, pos + 1);
        pos = next;
        match t {
            b'$' | b'=' | b'!' => {
                let n = num(body);
                if n >= 0 {
                    pos = pos.saturating_add(n as usize).saturating_add(2).min(buf.len());
                }
            }
            b'*' | b'~' | b'>' => pending = pending.saturating_add(num(body).max(0) as u64),
            b'%' => pending = pending.saturating_add((num(body).max(0) as u64).saturating_mul(2)),
            b'|' => pending = pending.saturating_add((num(body).max(0) as u64).saturating_mul(2)).saturating_add(1),
            _ => {}
        }
    }
    pos
}

/// Parse one reply at `pos` and push it (when `push`), returning the position after it.
/// Malformed or truncated input never panics (missing parts read as nil).
pub unsafe fn push_resp(l: *mut lua_State, buf: &[u8], pos: usize, push: bool) -> usize {
    if !push {
        return skip_resp(buf, pos);
    }
    if pos >= buf.len() {
        if push {
            lua_pushnil(l);
        }
        return pos;
    }
    let t = buf[pos];
    let (body, mut next) = line(buf, pos + 1);
    if push && lua_checkstack(l, 5) == 0 {
        // Redis panics here ("lua stack limit reach when parsing redis.call reply"); no command
        // replies this deep. Skip the reply and push nil into the slot the caller reserved.
        let end = skip_resp(buf, pos);
        lua_pushnil(l);
        return end;
    }
    match t {
        b':' => {
            if push {
                lua_pushnumber(l, num(body) as f64);
            }
        }
        b'$' => {
            let n = num(body);
            if n < 0 {
                if push {
                    lua_pushboolean(l, 0);
                }
            } else {
                let data = bytes_at(buf, next, n as usize);
                if push {
                    push_bytes(l, data);
                }
                next = next.saturating_add(n as usize).saturating_add(2).min(buf.len());
            }
        }
        b'+' => {
            if push {
                lua_createtable(l, 0, 1);
                push_bytes(l, b"ok");
                push_bytes(l, body);
                lua_rawset(l, -3);
            }
        }
        b'-' => {
            if push {
                let mut m = Vec::with_capacity(body.len() + 1);
                m.push(b'-');
                m.extend_from_slice(body);
                push_error(l, &m);
                set_field_bool(l, "ignore_error_stats_update", true);
            }
        }
        b'*' | b'~' | b'>' => {
            let n = num(body);
            if n < 0 {
                if push {
                    lua_pushboolean(l, 0);
                }
                return next;
            }
            let is_set = t == b'~';
            if push {
                if is_set {
                    lua_createtable(l, 0, 1);
                    push_bytes(l, b"set");
                    lua_createtable(l, 0, prealloc(n, buf, next));
                } else {
                    lua_createtable(l, prealloc(n, buf, next), 0);
                }
            }
            for j in 0..n {
                if next >= buf.len() {
                    break; // truncated
                }
                if is_set {
                    next = push_resp(l, buf, next, push);
                    if push {
                        lua_pushboolean(l, 1);
                        rawset_key(l);
                    }
                } else {
                    if push {
                        lua_pushnumber(l, (j + 1) as f64);
                    }
                    next = push_resp(l, buf, next, push);
                    if push {
                        lua_rawset(l, -3);
                    }
                }
            }
            if push && is_set {
                lua_rawset(l, -3);
            }
        }
        b'%' => {
            let n = num(body);
            if push {
                lua_createtable(l, 0, 1);
                push_bytes(l, b"map");
                lua_createtable(l, 0, prealloc(n, buf, next));
            }
            for _ in 0..n {
                if next >= buf.len() {
                    break;
                }
                next = push_resp(l, buf, next, push);
                next = push_resp(l, buf, next, push);
                if push {
                    rawset_key(l);
                }
            }
            if push {
                lua_rawset(l, -3);
            }
        }
        b'|' => {
            // The attribute is skipped; the reply it annotates follows.
            let n = num(body).max(0);
            for _ in 0..n.saturating_mul(2) {
                if next >= buf.len() {
                    break;
                }
                next = skip_resp(buf, next);
            }
            next = push_resp(l, buf, next, push);
        }
        b'_' => {
            if push {
                lua_pushnil(l);
            }
        }
        b'#' => {
            if push {
                lua_pushboolean(l, (body == b"t") as c_int);
            }
        }
        b',' => {
            if push {
                let s = std::str::from_utf8(body).unwrap_or("0");
                let d: f64 = s.parse().unwrap_or(0.0);
                lua_createtable(l, 0, 1);
                push_bytes(l, b"double");
                lua_pushnumber(l, d);
                lua_rawset(l, -3);
            }
        }
        b'(' => {
            if push {
                lua_createtable(l, 0, 1);
                push_bytes(l, b"big_number");
                push_bytes(l, body);
                lua_rawset(l, -3);
            }
        }
        b'=' => {
            let n = num(body).max(0) as usize;
            let data = bytes_at(buf, next, n);
            next = next.saturating_add(n).saturating_add(2).min(buf.len());
            if push {
                let (fmt, s) = if data.len() >= 4 { (&data[..3], &data[4..]) } else { (&b"txt"[..], data) };
                lua_createtable(l, 0, 1);
                push_bytes(l, b"verbatim_string");
                lua_createtable(l, 0, 2);
                push_bytes(l, b"string");
                push_bytes(l, s);
                lua_rawset(l, -3);
                push_bytes(l, b"format");
                push_bytes(l, fmt);
                lua_rawset(l, -3);
                lua_rawset(l, -3);
            }
        }
        _ => {
            if push {
                lua_pushnil(l);
            }
        }
    }
    next
}

// ---------------------------------------------------------------------------------------------
// Lua → RESP (luaReplyToRedisReply)
// ---------------------------------------------------------------------------------------------

/// The error fields of an error table (luaExtractErrorInformation) on top of the stack.
pub struct ErrInfo {
    pub msg: Option<Vec<u8>>,
    pub source: Option<Vec<u8>>,
    pub line: Option<Vec<u8>>,
    pub ignore_stats: bool,
}

pub unsafe fn extract_error_info(l: *mut lua_State) -> ErrInfo {
    let mut e = ErrInfo { msg: None, source: None, line: None, ignore_stats: false };
    if lua_isstring(l, -1) != 0 {
        let mut m = b"ERR ".to_vec();
        m.extend_from_slice(cstr_bytes(l, -1));
        e.msg = Some(m);
        // A string has no fields: lua_getfield on a string indexes the string metatable.
    }
    let is_table = lua_type(l, -1) == LUA_TTABLE;
    if is_table || lua_type(l, -1) == LUA_TSTRING {
        // Tables are read raw: an __index metamethod that raises would longjmp out of this
        // unprotected call (redis-server 7.0.15 dies with "PANIC: unprotected error in call to
        // Lua API" on `return setmetatable({err='x'}, {__index=function() error('boom') end})`).
        let get = |l: *mut lua_State, name: &str| {
            if is_table {
                push_bytes(l, name.as_bytes());
                lua_rawget(l, -2);
            } else {
                let k = cstr(name);
                lua_getfield(l, -1, k.as_ptr());
            }
        };
        for (name, slot) in [("err", 0), ("source", 1), ("line", 2)] {
            get(l, name);
            if lua_isstring(l, -1) != 0 {
                let v = cstr_bytes(l, -1).to_vec();
                match slot {
                    0 => e.msg = Some(v),
                    1 => e.source = Some(v),
                    _ => e.line = Some(v),
                }
            }
            pop(l, 1);
        }
        get(l, "ignore_error_stats_update");
        if lua_type(l, -1) == LUA_TBOOLEAN {
            e.ignore_stats = lua_toboolean(l, -1) != 0;
        }
        pop(l, 1);
    }
    e
}

/// lua_tostring as a C string (up to the first NUL), as Redis's sds functions see it.
pub unsafe fn cstr_bytes<'a>(l: *mut lua_State, idx: c_int) -> &'a [u8] {
    let b = to_bytes(l, idx).unwrap_or(b"");
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..n]
}

unsafe fn rawget_str(l: *mut lua_State, k: &str) -> c_int {
    push_bytes(l, k.as_bytes());
    lua_rawget(l, -2);
    lua_type(l, -1)
}

fn sanitize(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace(['\r', '\n'], " ")
}

/// A table being written out by `reply_from_lua` (its iteration state; the table, and for maps
/// and sets the wrapper table and the current key, are on the Lua stack).
enum Open {
    /// Next index to push, and the length.
    Array(c_int, c_int),
    /// `true` once a key was written and its value (on top of the stack) is next.
    Map(bool),
    Set,
}

/// Convert and pop the value on top of the stack into `out`. `script_resp3`: the protocol the
/// script selected with redis.setresp (decides how booleans map).
///
/// luaReplyToRedisReply with the same Lua stack use per nesting level (so the "reached lua
/// stack limit" error comes at Redis's depth), but iterative: a deeply nested result cannot
/// overflow the thread's stack.
///
/// Returns the number of error replies written that do not count in error stats (errors
/// redis.call already counted); each still makes the script command a failed call.
pub unsafe fn reply_from_lua(l: *mut lua_State, out: &mut ReplyBuf, script_resp3: bool) -> u64 {
    let mut open: Vec<Open> = Vec::new();
    let mut uncounted = 0u64;
    'visit: loop {
        if let Some(o) = reply_one(l, out, script_resp3, &mut uncounted) {
            open.push(o);
        }
        // Find the next value to convert (pushed on top), closing finished tables.
        loop {
            let Some(top) = open.last_mut() else { return uncounted };
            match top {
                Open::Array(j, n) => {
                    if *j <= *n {
                        lua_rawgeti(l, -1, *j);
                        *j += 1;
                        continue 'visit;
                    }
                    pop(l, 1);
                }
                Open::Map(value_next) => {
                    if *value_next {
                        // Stack: wrapper, map, key, value.
                        *value_next = false;
                        continue 'visit;
                    }
                    if lua_next(l, -2) != 0 {
                        // Stack: wrapper, map, key, value: dup the key before consuming it.
                        lua_pushvalue(l, -2);
                        *value_next = true;
                        continue 'visit;
                    }
                    pop(l, 2);
                }
                Open::Set => {
                    if lua_next(l, -2) != 0 {
                        // Stack: wrapper, set, key, true.
                        pop(l, 1);
                        lua_pushvalue(l, -1);
                        continue 'visit;
                    }
                    pop(l, 2);
                }
            }
            open.pop();
        }
    }
}

/// One step of `reply_from_lua`: a scalar (or error/status/double/... table) is written and
/// popped; for an array, map or set the header is written, the table(s) stay on the stack and
/// the iteration state is returned.
unsafe fn reply_one(l: *mut lua_State, out: &mut ReplyBuf, script_resp3: bool, uncounted: &mut u64) -> Option<Open> {
    let t = lua_type(l, -1);
    if lua_checkstack(l, 4) == 0 {
        out.error("ERR reached lua stack limit");
        pop(l, 1);
        return None;
    }
    match t {
        LUA_TSTRING => out.bulk(to_bytes(l, -1).unwrap_or(b"")),
        LUA_TBOOLEAN => {
            let b = lua_toboolean(l, -1) != 0;
            if !script_resp3 {
                if b {
                    out.int(1);
                } else {
                    out.null();
                }
            } else {
                out.bool(b);
            }
        }
        LUA_TNUMBER => out.int(c_double_to_ll(lua_tonumber(l, -1))),
        LUA_TTABLE => {
            if rawget_str(l, "err") == LUA_TSTRING {
                pop(l, 1);
                let e = extract_error_info(l);
                let msg = e.msg.unwrap_or_default();
                error_raw(out, &msg, !e.ignore_stats);
                if e.ignore_stats {
                    *uncounted += 1;
                }
                pop(l, 1);
                return None;
            }
            pop(l, 1);
            if rawget_str(l, "ok") == LUA_TSTRING {
                let s = sanitize(cstr_bytes(l, -1));
                out.simple(&s);
                pop(l, 2);
                return None;
            }
            pop(l, 1);
            if rawget_str(l, "double") == LUA_TNUMBER {
                out.double(lua_tonumber(l, -1));
                pop(l, 2);
                return None;
            }
            pop(l, 1);
            if rawget_str(l, "big_number") == LUA_TSTRING {
                let s: Vec<u8> = to_bytes(l, -1)
                    .unwrap_or(b"")
                    .iter()
                    .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
                    .collect();
                if out.resp3 {
                    out.raw(b"(");
                    out.raw(&s);
                    out.raw(b"\r\n");
                } else {
                    out.bulk(&s);
                }
                pop(l, 2);
                return None;
            }
            pop(l, 1);
            if rawget_str(l, "verbatim_string") == LUA_TTABLE {
                if rawget_str(l, "format") == LUA_TSTRING {
                    let fmt = cstr_bytes(l, -1).to_vec();
                    push_bytes(l, b"string");
                    lua_rawget(l, -3);
                    if lua_type(l, -1) == LUA_TSTRING {
                        let s = to_bytes(l, -1).unwrap_or(b"").to_vec();
                        if out.resp3 {
                            let mut f = [b' '; 3];
                            for (i, c) in fmt.iter().take(3).enumerate() {
                                f[i] = *c;
                            }
                            out.raw(b"=");
                            let mut ib = itoa::Buffer::new();
                            out.raw(ib.format(s.len() + 4).as_bytes());
                            out.raw(b"\r\n");
                            out.raw(&f);
                            out.raw(b":");
                            out.raw(&s);
                            out.raw(b"\r\n");
                        } else {
                            out.bulk(&s);
                        }
                        pop(l, 4);
                        return None;
                    }
                    pop(l, 1);
                }
                pop(l, 1);
            }
            pop(l, 1);
            if rawget_str(l, "map") == LUA_TTABLE {
                let mut n = 0usize;
                lua_pushnil(l);
                while lua_next(l, -2) != 0 {
                    n += 1;
                    pop(l, 1);
                }
                out.map(n);
                lua_pushnil(l);
                return Some(Open::Map(false));
            }
            pop(l, 1);
            if rawget_str(l, "set") == LUA_TTABLE {
                let mut n = 0usize;
                lua_pushnil(l);
                while lua_next(l, -2) != 0 {
                    n += 1;
                    pop(l, 1);
                }
                out.set(n);
                lua_pushnil(l);
                return Some(Open::Set);
            }
            pop(l, 1);
            // Array: 1..n until the first nil.
            let mut n = 0;
            loop {
                lua_rawgeti(l, -1, n + 1);
                let nil = lua_type(l, -1) == LUA_TNIL;
                pop(l, 1);
                if nil {
                    break;
                }
                n += 1;
            }
            out.array(n as usize);
            return Some(Open::Array(1, n));
        }
        _ => out.null(),
    }
    pop(l, 1);
    None
}

/// An error reply from a message that already carries its code ("ERR x", "My"): `-` + msg.
/// `count`: whether it counts in error stats (redis.call errors were already counted).
pub fn error_raw(out: &mut ReplyBuf, msg: &[u8], count: bool) {
    let s = String::from_utf8_lossy(msg).into_owned();
    let (errors, code) = (out.errors, out.last_error_code.clone());
    out.error(&s);
    if !count {
        out.errors = errors;
        out.last_error_code = code;
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points for tests and fuzzing (fuzz/fuzz_targets/fuzz_lua_conv.rs)
// ---------------------------------------------------------------------------------------------

/// A Lua value tree, built into an interpreter with `convert_lua_value`.
#[derive(Debug, Clone)]
pub enum LuaValue {
    Nil,
    Bool(bool),
    Num(f64),
    Str(Vec<u8>),
    /// A table from (key, value) pairs, set raw in order. Pairs whose key Lua cannot index
    /// (nil, NaN) or whose value is nil are skipped, as a script could not create them either.
    Table(Vec<(LuaValue, LuaValue)>),
    /// The enclosing table `n` levels up (0 = the innermost one being built): a cycle. Nil
    /// outside a table.
    Ancestor(usize),
}

unsafe fn push_value(l: *mut lua_State, v: &LuaValue, ancestors: &mut Vec<c_int>) {
    assert!(lua_checkstack(l, 4) != 0, "test value nested too deep for the Lua stack");
    match v {
        LuaValue::Nil => lua_pushnil(l),
        LuaValue::Bool(b) => lua_pushboolean(l, *b as c_int),
        LuaValue::Num(n) => lua_pushnumber(l, *n),
        LuaValue::Str(s) => push_bytes(l, s),
        LuaValue::Ancestor(n) => match ancestors.len().checked_sub(n + 1) {
            Some(i) => lua_pushvalue(l, ancestors[i]),
            None => lua_pushnil(l),
        },
        LuaValue::Table(pairs) => {
            lua_createtable(l, 0, 0);
            let t = lua_gettop(l);
            ancestors.push(t);
            for (k, v) in pairs {
                let bad_key = match k {
                    LuaValue::Nil => true,
                    LuaValue::Num(n) => n.is_nan(),
                    LuaValue::Ancestor(n) => *n >= ancestors.len(),
                    _ => false,
                };
                if bad_key || matches!(v, LuaValue::Nil) {
                    continue;
                }
                push_value(l, k, ancestors);
                push_value(l, v, ancestors);
                lua_rawset(l, t);
            }
            ancestors.pop();
        }
    }
}

/// Push `v` into `vm` and convert it as a script's return value (luaReplyToRedisReply) for a
/// client speaking RESP3 (`client_resp3`) or RESP2, the script having selected RESP3
/// (`script_resp3`) or RESP2. Panics if the conversion leaves the Lua stack unbalanced.
pub fn convert_lua_value(vm: &Vm, v: &LuaValue, client_resp3: bool, script_resp3: bool) -> Vec<u8> {
    let l = vm.0;
    let mut out = ReplyBuf::new(client_resp3);
    unsafe {
        let top = lua_gettop(l);
        push_value(l, v, &mut Vec::new());
        reply_from_lua(l, &mut out, script_resp3);
        assert_eq!(lua_gettop(l), top, "Lua stack unbalanced after reply_from_lua");
    }
    out.buf
}

/// Convert `reply` (any bytes: a command's reply as redis.call sees it, possibly malformed)
/// into a Lua value (redisProtocolToLuaType), then that value back into a reply as a script
/// returning it would. Panics if the Lua stack is left unbalanced.
pub fn convert_resp_via_lua(vm: &Vm, reply: &[u8], client_resp3: bool, script_resp3: bool) -> Vec<u8> {
    let l = vm.0;
    let mut out = ReplyBuf::new(client_resp3);
    unsafe {
        let top = lua_gettop(l);
        // redis.call runs as a C function, which always has LUA_MINSTACK slots.
        assert!(lua_checkstack(l, 20) != 0);
        push_resp(l, reply, 0, true);
        assert_eq!(lua_gettop(l), top + 1, "push_resp must push exactly one value");
        reply_from_lua(l, &mut out, script_resp3);
        assert_eq!(lua_gettop(l), top, "Lua stack unbalanced after reply_from_lua");
    }
    out.buf
}
