//! The two interpreters of Redis 7.0 (eval.c's scriptingInit, function_lua.c's
//! luaEngineInitEngine) and what scripts see in them: the libraries, the globals allow list,
//! the error metatable, readonly tables (see `readonly`), the `redis` API, Redis's
//! `math.random`, the error handlers, the run hook (SCRIPT KILL / FUNCTION KILL) and FUNCTION
//! LOAD's run of a library.
//!
//! Everything that touches the server goes through `crate::scripting`'s `host_*` functions.

use super::capi::{self, cfn, Raise, Ret};
use super::ffi::*;
use super::{basefix, readonly};
use crate::scripting as host;
use std::ffi::CStr;
use std::os::raw::{c_int, c_void};

const REDIS_VERSION_NUM: f64 = 0x0007000f as f64;
const REDIS_VERSION: &[u8] = b"7.0.15";

/// Registry key of the real globals table (the thread's globals are its readonly proxy).
static GLOBALS: u8 = 0;
/// Registry keys of the functions interpreter's load-time switch (see `func_load`).
static FN_GLOBALS_META: u8 = 0;
static FN_GLOBALS_META_PROXIED: u8 = 0;
static FN_LIBRARY_API: u8 = 0;
static FN_LIBRARY_API_PROXY: u8 = 0;
static FN_GLOBALS_PROXY: u8 = 0;

fn key(k: &'static u8) -> *mut c_void {
    k as *const u8 as *mut c_void
}

unsafe fn reg_get(l: *mut lua_State, k: &'static u8) {
    lua_pushlightuserdata(l, key(k));
    lua_rawget(l, LUA_REGISTRYINDEX);
}

/// registry[k] = the value on top (popped).
unsafe fn reg_set(l: *mut lua_State, k: &'static u8) {
    lua_pushlightuserdata(l, key(k));
    lua_insert(l, -2);
    lua_rawset(l, LUA_REGISTRYINDEX);
}

// ---------------------------------------------------------------------------------------------
// Error tables
// ---------------------------------------------------------------------------------------------

/// Push Redis's error table for `s` ("-CODE text" or "text", which gets "ERR "): luaPushError.
pub unsafe fn push_error(l: *mut lua_State, s: &[u8]) {
    let (code, msg): (&[u8], &[u8]) = match s.strip_prefix(b"-") {
        Some(rest) => match memchr::memchr(b' ', rest) {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", s),
    };
    let start = msg.iter().position(|&c| c != b'\r' && c != b'\n').unwrap_or(msg.len());
    let end = msg.iter().rposition(|&c| c != b'\r' && c != b'\n').map_or(start, |i| i + 1);
    let mut e = Vec::with_capacity(code.len() + 1 + end - start);
    e.extend_from_slice(code);
    e.push(b' ');
    e.extend_from_slice(&msg[start..end]);
    // lua_pushstring semantics: the message stops at the first NUL, as in Redis.
    let n = e.iter().position(|&c| c == 0).unwrap_or(e.len());
    capi::ensure_stack(l, 3);
    lua_createtable(l, 0, 1);
    capi::push_str(l, b"err");
    capi::push_str(l, &e[..n]);
    lua_rawset(l, -3);
}

/// Push the error table for `msg` and return the error to raise.
unsafe fn raise_error(l: *mut lua_State, msg: &[u8]) -> Raise {
    push_error(l, msg);
    Raise
}

// ---------------------------------------------------------------------------------------------
// Globals protection: allow list (during setup) and the error metatable
// ---------------------------------------------------------------------------------------------

const ALLOW_LISTS: &[&[&str]] = &[
    // libraries
    &["string", "cjson", "bit", "cmsgpack", "math", "table", "struct"],
    // redis API
    &["redis", "__redis__err__handler"],
    // Lua built-ins
    &[
        "xpcall",
        "tostring",
        "setmetatable",
        "next",
        "assert",
        "tonumber",
        "rawequal",
        "collectgarbage",
        "getmetatable",
        "rawset",
        "pcall",
        "coroutine",
        "type",
        "_G",
        "select",
        "unpack",
        "gcinfo",
        "pairs",
        "rawget",
        "loadstring",
        "ipairs",
        "_VERSION",
        "load",
        "error",
    ],
    // removed after initialization
    &["debug"],
];

/// `__newindex` of the globals while the libraries load: only allowed names are set
/// (luaNewIndexAllowList; the deprecated names and the deny list are dropped silently).
unsafe fn newindex_allow_list(l: *mut lua_State) -> Ret {
    if lua_gettop(l) != 3 {
        return Err(capi::error(l, b"Wrong number of arguments to luaNewIndexAllowList"));
    }
    if lua_type(l, -3) != LUA_TTABLE {
        return Err(capi::error(l, b"first argument to luaNewIndexAllowList must be a table"));
    }
    if lua_isstring(l, -2) == 0 && lua_isnumber(l, -2) == 0 {
        return Err(capi::error(l, b"Second argument to luaNewIndexAllowList must be a string or number"));
    }
    let name = super::cstr_bytes(l, -2);
    if ALLOW_LISTS.iter().any(|list| list.iter().any(|n| n.as_bytes() == name)) {
        lua_rawset(l, -3);
    }
    Ok(0)
}
cfn!(c_newindex_allow_list => newindex_allow_list);

/// `__index` of protected tables: luaProtectedTableError.
unsafe fn protected_table_error(l: *mut lua_State) -> Ret {
    if lua_gettop(l) != 2 {
        return Err(capi::error(l, b"Wrong number of arguments to luaProtectedTableError"));
    }
    if lua_isstring(l, -1) == 0 && lua_isnumber(l, -1) == 0 {
        return Err(capi::error(l, b"Second argument to luaProtectedTableError must be a string or number"));
    }
    let mut m = b"Script attempted to access nonexistent global variable '".to_vec();
    m.extend_from_slice(super::cstr_bytes(l, -1));
    m.push(b'\'');
    Err(capi::error(l, &m))
}
cfn!(c_protected_table_error => protected_table_error);

/// Give the table on top of the stack the error metatable (luaSetErrorMetatable).
unsafe fn set_error_metatable(l: *mut lua_State) {
    lua_createtable(l, 0, 1);
    lua_pushcfunction(l, c_protected_table_error);
    lua_setfield(l, -2, c"__index".as_ptr());
    lua_setmetatable(l, -2);
}

// ---------------------------------------------------------------------------------------------
// redis.*
// ---------------------------------------------------------------------------------------------

unsafe fn redis_call(l: *mut lua_State) -> Ret {
    let n = host::host_call(l, true);
    if n < 0 {
        Err(Raise)
    } else {
        Ok(n)
    }
}
cfn!(c_redis_call => redis_call);

unsafe fn redis_pcall(l: *mut lua_State) -> Ret {
    let n = host::host_call(l, false);
    if n < 0 {
        Err(Raise)
    } else {
        Ok(n)
    }
}
cfn!(c_redis_pcall => redis_pcall);

unsafe fn acl_check_cmd(l: *mut lua_State) -> Ret {
    let n = host::host_acl_check(l);
    if n < 0 {
        Err(Raise)
    } else {
        Ok(n)
    }
}
cfn!(c_acl_check_cmd => acl_check_cmd);

/// The global `pcall` (luaRedisPcall): an error table is reduced to its `err` string. Only
/// Lua API calls here: an error raised by `lua_getfield` unwinds nothing of Rust's.
unsafe extern "C-unwind" fn c_pcall(l: *mut lua_State) -> c_int {
    let argc = lua_gettop(l);
    if argc == 0 {
        // Redis calls the slot of its own placeholder, `true`.
        lua_pushboolean(l, 0);
        capi::push_str(l, b"attempt to call a boolean value");
        return 2;
    }
    lua_pushboolean(l, 1);
    lua_insert(l, 1);
    if lua_pcall(l, argc - 1, LUA_MULTRET, 0) != 0 {
        lua_remove(l, 1);
        if lua_type(l, -1) == LUA_TTABLE {
            lua_getfield(l, -1, c"err".as_ptr());
            if lua_isstring(l, -1) != 0 {
                lua_replace(l, -2);
            }
        }
        lua_pushboolean(l, 0);
        lua_insert(l, 1);
    }
    lua_gettop(l)
}

unsafe fn sha1hex(l: *mut lua_State) -> Ret {
    if lua_gettop(l) != 1 {
        return Err(raise_error(l, b"wrong number of arguments"));
    }
    let hex = host::sha1_hex(super::to_bytes(l, 1).unwrap_or(b""));
    capi::push_str(l, hex.as_bytes());
    Ok(1)
}
cfn!(c_sha1hex => sha1hex);

unsafe fn error_reply(l: *mut lua_State) -> Ret {
    if lua_gettop(l) != 1 || lua_type(l, -1) != LUA_TSTRING {
        push_error(l, b"wrong number or type of arguments");
        return Ok(1);
    }
    let e = super::cstr_bytes(l, -1);
    if e.first() == Some(&b'-') {
        push_error(l, e);
    } else {
        let mut m = Vec::with_capacity(e.len() + 1);
        m.push(b'-');
        m.extend_from_slice(e);
        push_error(l, &m);
    }
    Ok(1)
}
cfn!(c_error_reply => error_reply);

unsafe fn status_reply(l: *mut lua_State) -> Ret {
    if lua_gettop(l) != 1 || lua_type(l, -1) != LUA_TSTRING {
        push_error(l, b"wrong number or type of arguments");
        return Ok(1);
    }
    lua_createtable(l, 0, 1);
    capi::push_str(l, b"ok");
    lua_pushvalue(l, -3);
    lua_rawset(l, -3);
    Ok(1)
}
cfn!(c_status_reply => status_reply);

/// `(int)d` as x86-64 computes it.
fn c_int_of(d: f64) -> c_int {
    if d.is_nan() || !(-2147483649.0..2147483648.0).contains(&d) {
        c_int::MIN
    } else {
        d as c_int
    }
}

unsafe fn set_repl(l: *mut lua_State) -> Ret {
    if !host::host_in_run() {
        return Err(raise_error(l, b"redis.set_repl can only be called inside a script invocation"));
    }
    if lua_gettop(l) != 1 {
        return Err(raise_error(l, b"redis.set_repl() requires two arguments."));
    }
    let flags = c_int_of(lua_tonumber(l, -1));
    if flags & !3 != 0 {
        return Err(raise_error(l, b"Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE."));
    }
    host::host_set_repl(flags);
    Ok(0)
}
cfn!(c_set_repl => set_repl);

unsafe fn set_resp(l: *mut lua_State) -> Ret {
    if !host::host_in_run() {
        return Err(raise_error(l, b"redis.setresp can only be called inside a script invocation"));
    }
    let argc = lua_gettop(l);
    if argc != 1 {
        return Err(raise_error(l, b"redis.setresp() requires one argument."));
    }
    let resp = c_int_of(lua_tonumber(l, -argc));
    if resp != 2 && resp != 3 {
        return Err(raise_error(l, b"RESP version must be 2 or 3."));
    }
    host::host_setresp(resp);
    Ok(0)
}
cfn!(c_set_resp => set_resp);

unsafe fn log(l: *mut lua_State) -> Ret {
    let argc = lua_gettop(l);
    if argc < 2 {
        return Err(raise_error(l, b"redis.log() requires two arguments or more."));
    }
    if lua_isnumber(l, -argc) == 0 {
        return Err(raise_error(l, b"First argument must be a number (log level)."));
    }
    let level = c_int_of(lua_tonumber(l, -argc));
    if !(0..=3).contains(&level) {
        return Err(raise_error(l, b"Invalid debug level."));
    }
    if level < host::host_verbosity() {
        return Ok(0);
    }
    let mut msg = Vec::new();
    for j in 1..argc {
        if let Some(s) = super::to_bytes(l, -argc + j) {
            if j != 1 {
                msg.push(b' ');
            }
            msg.extend_from_slice(s);
        }
    }
    host::host_log(level, &msg);
    Ok(0)
}
cfn!(c_log => log);

unsafe fn breakpoint(l: *mut lua_State) -> Ret {
    lua_pushboolean(l, 0);
    Ok(1)
}
cfn!(c_breakpoint => breakpoint);

unsafe fn debug(_l: *mut lua_State) -> Ret {
    Ok(0)
}
cfn!(c_debug => debug);

unsafe fn replicate_commands(l: *mut lua_State) -> Ret {
    lua_pushboolean(l, 1);
    Ok(1)
}
cfn!(c_replicate_commands => replicate_commands);

// ---------------------------------------------------------------------------------------------
// math.random: Redis's rand48 (one generator for the whole process, as in Redis)
// ---------------------------------------------------------------------------------------------

static RAND48: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x1234_ABCD_330E);

fn lrand48() -> i32 {
    use std::sync::atomic::Ordering::Relaxed;
    let next = |x: u64| x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & 0xFFFF_FFFF_FFFF;
    let x = match RAND48.fetch_update(Relaxed, Relaxed, |x| Some(next(x))) {
        Ok(prev) | Err(prev) => next(prev),
    };
    (x >> 17) as i32
}

fn srand48(seed: i32) {
    RAND48.store(((seed as u32 as u64) << 16) | 0x330E, std::sync::atomic::Ordering::Relaxed);
}

unsafe fn math_random(l: *mut lua_State) -> Ret {
    if !host::host_in_run() {
        return Err(capi::error(l, b"math.random can only be called inside a script invocation"));
    }
    let r = (lrand48() % i32::MAX) as f64 / i32::MAX as f64;
    match lua_gettop(l) {
        0 => lua_pushnumber(l, r),
        1 => {
            let u = capi::check_int(l, 1)?;
            if u < 1 {
                return Err(capi::arg_error(l, 1, b"interval is empty"));
            }
            lua_pushnumber(l, (r * u as f64).floor() + 1.0);
        }
        2 => {
            let lo = capi::check_int(l, 1)?;
            let up = capi::check_int(l, 2)?;
            if lo > up {
                return Err(capi::arg_error(l, 2, b"interval is empty"));
            }
            lua_pushnumber(l, (r * (up.wrapping_sub(lo).wrapping_add(1)) as f64).floor() + lo as f64);
        }
        _ => return Err(capi::error(l, b"wrong number of arguments")),
    }
    Ok(1)
}
cfn!(c_math_random => math_random);

unsafe fn math_randomseed(l: *mut lua_State) -> Ret {
    if !host::host_in_run() {
        return Err(capi::error(l, b"math.randomseed can only be called inside a script invocation"));
    }
    srand48(capi::check_int(l, 1)?);
    Ok(0)
}
cfn!(c_math_randomseed => math_randomseed);

// ---------------------------------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------------------------------

/// Every 100000 instructions of a script: SCRIPT KILL / FUNCTION KILL.
unsafe extern "C-unwind" fn run_hook(l: *mut lua_State, _ar: *mut lua_Debug) {
    if !std::panic::catch_unwind(host::host_should_kill).unwrap_or(false) {
        return;
    }
    // Keep firing (on every line) so that pcall cannot swallow the kill.
    lua_sethook(l, Some(run_hook), LUA_MASKLINE, 0);
    push_error(l, b"Script killed by user with SCRIPT KILL...");
    lua_error(l);
}

pub unsafe fn set_run_hook(l: *mut lua_State, on: bool) {
    if on {
        lua_sethook(l, Some(run_hook), LUA_MASKCOUNT, 100000);
    } else {
        lua_sethook(l, None, 0, 0);
    }
}

/// Every 100000 instructions of FUNCTION LOAD's run of a library: its time budget.
unsafe extern "C-unwind" fn load_hook(l: *mut lua_State, _ar: *mut lua_Debug) {
    if !std::panic::catch_unwind(host::host_load_timed_out).unwrap_or(false) {
        return;
    }
    lua_sethook(l, Some(load_hook), LUA_MASKLINE, 0);
    push_error(l, b"FUNCTION LOAD timeout");
    lua_error(l);
}

// ---------------------------------------------------------------------------------------------
// Interpreter setup
// ---------------------------------------------------------------------------------------------

unsafe fn set_fn(l: *mut lua_State, name: &CStr, f: lua_CFunction) {
    lua_pushcfunction(l, f);
    lua_setfield(l, -2, name.as_ptr());
}

unsafe fn set_num(l: *mut lua_State, name: &CStr, v: f64) {
    lua_pushnumber(l, v);
    lua_setfield(l, -2, name.as_ptr());
}

/// redis.log and the LOG_* levels into the table on top.
unsafe fn register_log(l: *mut lua_State) {
    set_fn(l, c"log", c_log);
    set_num(l, c"LOG_DEBUG", 0.0);
    set_num(l, c"LOG_VERBOSE", 1.0);
    set_num(l, c"LOG_NOTICE", 2.0);
    set_num(l, c"LOG_WARNING", 3.0);
}

unsafe fn register_version(l: *mut lua_State) {
    set_num(l, c"REDIS_VERSION_NUM", REDIS_VERSION_NUM);
    capi::push_str(l, REDIS_VERSION);
    lua_setfield(l, -2, c"REDIS_VERSION".as_ptr());
}

/// luaLoadLib: call a Lua library opener with its name.
unsafe fn open_lib(l: *mut lua_State, name: &CStr, f: lua_CFunction) {
    lua_pushcfunction(l, f);
    lua_pushstring(l, name.as_ptr());
    lua_call(l, 1, 0);
}

/// Set a global built here (through the allow list).
unsafe fn set_global(l: *mut lua_State, name: &CStr, push: unsafe fn(*mut lua_State)) {
    push(l);
    lua_setfield(l, LUA_GLOBALSINDEX, name.as_ptr());
}

/// luaRegisterRedisAPI: the libraries, `pcall`, `redis`, `math.random`.
unsafe fn register_redis_api(l: *mut lua_State) {
    lua_createtable(l, 0, 1);
    lua_pushcfunction(l, c_newindex_allow_list);
    lua_setfield(l, -2, c"__newindex".as_ptr());
    lua_setmetatable(l, LUA_GLOBALSINDEX);

    open_lib(l, c"", luaopen_base);
    open_lib(l, c"table", luaopen_table);
    open_lib(l, c"string", luaopen_string);
    open_lib(l, c"math", luaopen_math);
    open_lib(l, c"debug", luaopen_debug);
    set_global(l, c"cjson", super::cjson::push_lib);
    set_global(l, c"struct", super::structlib::push_lib);
    set_global(l, c"cmsgpack", super::cmsgpack::push_lib);
    set_global(l, c"bit", super::bit::push_lib);

    lua_pushvalue(l, LUA_GLOBALSINDEX);
    readonly::install_guards(l);
    super::basefix::install(l);
    lua_settop(l, -2);

    lua_pushcfunction(l, c_pcall);
    lua_setfield(l, LUA_GLOBALSINDEX, c"pcall".as_ptr());

    lua_createtable(l, 0, 0);
    set_fn(l, c"call", c_redis_call);
    set_fn(l, c"pcall", c_redis_pcall);
    register_log(l);
    register_version(l);
    set_fn(l, c"setresp", c_set_resp);
    set_fn(l, c"sha1hex", c_sha1hex);
    set_fn(l, c"error_reply", c_error_reply);
    set_fn(l, c"status_reply", c_status_reply);
    set_fn(l, c"set_repl", c_set_repl);
    set_num(l, c"REPL_NONE", 0.0);
    set_num(l, c"REPL_AOF", 1.0);
    set_num(l, c"REPL_SLAVE", 2.0);
    set_num(l, c"REPL_REPLICA", 2.0);
    set_num(l, c"REPL_ALL", 3.0);
    set_fn(l, c"acl_check_cmd", c_acl_check_cmd);
    lua_setfield(l, LUA_GLOBALSINDEX, c"redis".as_ptr());

    lua_getglobal(l, c"math".as_ptr());
    set_fn(l, c"random", c_math_random);
    set_fn(l, c"randomseed", c_math_randomseed);
    lua_settop(l, -2);
}

/// The error handler's body (luaCallFunction's): adds the position of the error to an error
/// table (a string error becomes {err='ERR <string>'}).
const ERR_HANDLER_BODY: &str = "  local i = dbg.getinfo(2,'nSl')\n  if i and i.what == 'C' then\n    i = dbg.getinfo(3,'nSl')\n  end\n  if type(err) ~= 'table' then\n    err = {err='ERR ' .. tostring(err)}  end  if i then\n    err['source'] = i.source\n    err['line'] = i.currentline\n  end  return err\nend\n";

/// Run setup code (Lua) in the interpreter.
unsafe fn run_setup_code(l: *mut lua_State, code: &str, nresults: c_int) {
    let r = luaL_loadbuffer(l, code.as_ptr() as *const _, code.len(), c"@err_handler_def".as_ptr());
    assert_eq!(r, 0, "Lua setup code does not compile");
    let r = lua_pcall(l, 0, nresults, 0);
    assert_eq!(r, 0, "Lua setup code failed");
}

/// Protect the globals and make their proxy the thread's globals; the real table goes to the
/// registry (GLOBALS).
unsafe fn protect_globals(l: *mut lua_State) {
    lua_pushvalue(l, LUA_GLOBALSINDEX);
    lua_pushvalue(l, -1);
    reg_set(l, &GLOBALS);
    set_error_metatable(l);
    readonly::protect(l);
    lua_replace(l, LUA_GLOBALSINDEX);
}

/// luaSetTableProtectionForBasicTypes: of the basic types only strings have a metatable.
unsafe fn protect_basic_types(l: *mut lua_State) {
    capi::push_str(l, b"");
    readonly::protect_metatable_of(l);
    lua_settop(l, -2);
}

/// A new interpreter for EVAL scripts (scriptingInit).
pub unsafe fn new_eval_state() -> *mut lua_State {
    let l = luaL_newstate();
    assert!(!l.is_null(), "cannot create a Lua interpreter");
    register_redis_api(l);
    lua_getglobal(l, c"redis".as_ptr());
    set_fn(l, c"breakpoint", c_breakpoint);
    set_fn(l, c"debug", c_debug);
    set_fn(l, c"replicate_commands", c_replicate_commands);
    lua_settop(l, -2);
    let code = format!("local dbg = debug\ndebug = nil\nfunction __redis__err__handler(err)\n{}", ERR_HANDLER_BODY);
    run_setup_code(l, &code, 0);
    protect_globals(l);
    protect_basic_types(l);
    l
}

/// redis.register_function's flags table (luaRegisterFunctionReadFlags), on top.
unsafe fn read_flags(l: *mut lua_State) -> Option<u64> {
    let mut flags = 0u64;
    let mut j = 1;
    loop {
        lua_rawgeti(l, -1, j);
        j += 1;
        if lua_type(l, -1) == LUA_TNIL {
            lua_settop(l, -2);
            return Some(flags);
        }
        if lua_isstring(l, -1) == 0 {
            lua_settop(l, -2);
            return None;
        }
        let name = super::cstr_bytes(l, -1);
        let f = host::FLAG_NAMES.iter().find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(name)).map(|(f, _)| *f);
        lua_settop(l, -2);
        flags |= f?;
    }
}

/// redis.register_function's arguments: name, description, callback (a registry reference),
/// flags; or the error text (nothing left referenced).
struct RegArgs {
    name: Vec<u8>,
    desc: Option<Vec<u8>>,
    callback: c_int,
    flags: u64,
}

unsafe fn read_named_args(l: *mut lua_State) -> Result<RegArgs, &'static str> {
    if lua_type(l, 1) != LUA_TTABLE {
        return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
    }
    let (mut name, mut desc, mut callback, mut flags) = (None, None, None, 0u64);
    let fail = |l: *mut lua_State, callback: Option<c_int>, e: &'static str| {
        if let Some(r) = callback {
            luaL_unref(l, LUA_REGISTRYINDEX, r);
        }
        Err(e)
    };
    lua_pushnil(l);
    while lua_next(l, -2) != 0 {
        if lua_isstring(l, -2) == 0 {
            return fail(l, callback, "named argument key given to redis.register_function is not a string");
        }
        // A copy of the key: lua_tolstring on a number key would change it under lua_next.
        lua_pushvalue(l, -2);
        let k = super::cstr_bytes(l, -1).to_ascii_lowercase();
        lua_settop(l, -2);
        match &k[..] {
            b"function_name" => {
                if lua_isstring(l, -1) == 0 {
                    return fail(
                        l,
                        callback,
                        "function_name argument given to redis.register_function must be a string",
                    );
                }
                name = Some(super::to_bytes(l, -1).unwrap_or(b"").to_vec());
            }
            b"description" => {
                if lua_isstring(l, -1) == 0 {
                    return fail(l, callback, "description argument given to redis.register_function must be a string");
                }
                desc = Some(super::to_bytes(l, -1).unwrap_or(b"").to_vec());
            }
            b"callback" => {
                if lua_type(l, -1) != LUA_TFUNCTION {
                    return fail(l, callback, "callback argument given to redis.register_function must be a function");
                }
                if let Some(r) = callback {
                    luaL_unref(l, LUA_REGISTRYINDEX, r);
                }
                callback = Some(luaL_ref(l, LUA_REGISTRYINDEX));
                continue;
            }
            b"flags" => {
                if lua_type(l, -1) != LUA_TTABLE {
                    return fail(
                        l,
                        callback,
                        "flags argument to redis.register_function must be a table representing function flags",
                    );
                }
                match read_flags(l) {
                    Some(f) => flags = f,
                    None => return fail(l, callback, "unknown flag given"),
                }
            }
            _ => return fail(l, callback, "unknown argument given to redis.register_function"),
        }
        lua_settop(l, -2);
    }
    let Some(name) = name else {
        return fail(l, callback, "redis.register_function must get a function name argument");
    };
    let Some(callback) = callback else { return Err("redis.register_function must get a callback argument") };
    Ok(RegArgs { name, desc, callback, flags })
}

unsafe fn read_positional_args(l: *mut lua_State) -> Result<RegArgs, &'static str> {
    if lua_isstring(l, 1) == 0 {
        return Err("first argument to redis.register_function must be a string");
    }
    if lua_type(l, 2) != LUA_TFUNCTION {
        return Err("second argument to redis.register_function must be a function");
    }
    let name = super::to_bytes(l, 1).unwrap_or(b"").to_vec();
    let callback = luaL_ref(l, LUA_REGISTRYINDEX);
    Ok(RegArgs { name, desc: None, callback, flags: 0 })
}

/// redis.register_function (luaRegisterFunction).
unsafe fn register_function(l: *mut lua_State) -> Ret {
    if !host::host_in_load() {
        return Err(raise_error(l, b"redis.register_function can only be called on FUNCTION LOAD command"));
    }
    let argc = lua_gettop(l);
    if !(1..=2).contains(&argc) {
        return Err(raise_error(l, b"wrong number of arguments to redis.register_function"));
    }
    let args = if argc == 1 { read_named_args(l) } else { read_positional_args(l) };
    let a = match args {
        Ok(a) => a,
        Err(e) => return Err(raise_error(l, e.as_bytes())),
    };
    if let Err(e) = host::host_register_function(&a.name, a.desc.as_deref(), a.callback, a.flags) {
        luaL_unref(l, LUA_REGISTRYINDEX, a.callback);
        return Err(raise_error(l, e.as_bytes()));
    }
    Ok(0)
}
cfn!(c_register_function => register_function);

/// A new interpreter for functions (luaEngineInitEngine).
pub unsafe fn new_func_state() -> *mut lua_State {
    let l = luaL_newstate();
    assert!(!l.is_null(), "cannot create a Lua interpreter");
    register_redis_api(l);

    // The API of a library's load run: `redis` with register_function, log and the version.
    lua_createtable(l, 0, 0);
    lua_createtable(l, 0, 0);
    set_fn(l, c"register_function", c_register_function);
    register_log(l);
    register_version(l);
    set_error_metatable(l);
    lua_setfield(l, -2, c"redis".as_ptr());
    set_error_metatable(l);
    lua_pushvalue(l, -1);
    reg_set(l, &FN_LIBRARY_API);
    readonly::protect(l);
    reg_set(l, &FN_LIBRARY_API_PROXY);

    lua_pushstring(l, c"__ERROR_HANDLER__".as_ptr());
    let code = format!(
        "local dbg = debug\ndebug = nil\nlocal error_handler = function (err)\n{}return error_handler",
        ERR_HANDLER_BODY
    );
    run_setup_code(l, &code, 1);
    lua_rawset(l, LUA_REGISTRYINDEX);

    protect_globals(l);

    // New globals: an empty readonly table reading through to the real globals, or to the
    // library API while a library loads. Its metatable (what getmetatable(_G) shows) is
    // {__index = <the globals' proxy>}.
    lua_createtable(l, 0, 0);
    lua_createtable(l, 0, 1);
    lua_pushvalue(l, LUA_GLOBALSINDEX);
    lua_setfield(l, -2, c"__index".as_ptr());
    lua_pushvalue(l, -1);
    reg_set(l, &FN_GLOBALS_META);
    lua_setmetatable(l, -2);
    readonly::protect(l);
    // The proxy reads the real globals directly (one hop less than through the metatable).
    lua_getmetatable(l, -1);
    reg_get(l, &GLOBALS);
    lua_setfield(l, -2, c"__index".as_ptr());
    reg_set(l, &FN_GLOBALS_META_PROXIED);
    lua_pushvalue(l, LUA_GLOBALSINDEX);
    reg_set(l, &FN_GLOBALS_PROXY);
    lua_replace(l, LUA_GLOBALSINDEX);

    protect_basic_types(l);
    l
}

/// Point the functions interpreter's globals at the library API (`load`) or the real globals.
unsafe fn func_globals(l: *mut lua_State, load: bool) {
    reg_get(l, &FN_GLOBALS_META_PROXIED);
    reg_get(l, if load { &FN_LIBRARY_API } else { &GLOBALS });
    lua_setfield(l, -2, c"__index".as_ptr());
    lua_settop(l, -2);
    reg_get(l, &FN_GLOBALS_META);
    reg_get(l, if load { &FN_LIBRARY_API_PROXY } else { &FN_GLOBALS_PROXY });
    lua_setfield(l, -2, c"__index".as_ptr());
    lua_settop(l, -2);
}

/// The message of an error value on top (luaExtractErrorInformation's err), C-string style.
unsafe fn error_message(l: *mut lua_State) -> Option<Vec<u8>> {
    let mut msg = None;
    if lua_isstring(l, -1) != 0 {
        let mut m = b"ERR ".to_vec();
        m.extend_from_slice(super::cstr_bytes(l, -1));
        msg = Some(m);
    }
    if lua_type(l, -1) == LUA_TTABLE {
        capi::push_str(l, b"err");
        lua_rawget(l, -2);
        if lua_isstring(l, -1) != 0 {
            msg = Some(super::cstr_bytes(l, -1).to_vec());
        }
        lua_settop(l, -2);
    }
    msg
}

/// FUNCTION LOAD's run of a library's code (luaEngineCreate): compile it and run it with the
/// library API as globals, within the time budget (see `host_load_timed_out`). Returns the
/// error text.
pub unsafe fn func_load(l: *mut lua_State, code: &[u8]) -> Result<(), Vec<u8>> {
    func_globals(l, true);
    let mut res = Ok(());
    if basefix::load_chunk(l, code, c"@user_function") != 0 {
        let mut m = b"Error compiling function: ".to_vec();
        m.extend_from_slice(super::cstr_bytes(l, -1));
        lua_settop(l, -2);
        res = Err(m);
    } else {
        lua_sethook(l, Some(load_hook), LUA_MASKCOUNT, 100000);
        if lua_pcall(l, 0, 0, 0) != 0 {
            let mut m = b"Error registering functions: ".to_vec();
            m.extend_from_slice(&error_message(l).unwrap_or_else(|| b"(null)".to_vec()));
            lua_settop(l, -2);
            res = Err(m);
        }
    }
    func_globals(l, false);
    lua_sethook(l, None, 0, 0);
    res
}

/// Push a function's error handler and the function (registry reference `r`).
pub unsafe fn push_function(l: *mut lua_State, r: c_int) {
    lua_pushstring(l, c"__ERROR_HANDLER__".as_ptr());
    lua_rawget(l, LUA_REGISTRYINDEX);
    lua_rawgeti(l, LUA_REGISTRYINDEX, r);
}

pub unsafe fn unref(l: *mut lua_State, r: c_int) {
    luaL_unref(l, LUA_REGISTRYINDEX, r);
}

/// Set a global of the EVAL interpreter (KEYS, ARGV) to the value on top (popped).
pub unsafe fn set_global_raw(l: *mut lua_State, name: &CStr) {
    reg_get(l, &GLOBALS);
    lua_insert(l, -2);
    lua_pushstring(l, name.as_ptr());
    lua_insert(l, -2);
    lua_rawset(l, -3);
    lua_settop(l, -2);
}
