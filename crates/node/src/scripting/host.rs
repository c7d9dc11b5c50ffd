//! The `host_*` callbacks: what the Lua side (`crate::lua::sandbox`) asks of the server while a
//! script or FUNCTION LOAD runs on this thread: redis.call / redis.pcall dispatch, ACL checks,
//! RESP version, logging, the kill / load-timeout hooks and function registration.

use super::run::write_denied;
use super::{verify_name, with_run, FunctionInfo, RunCtx, LOAD, RUN};
use crate::lua::{self, ffi::*};
use crate::node::Node;
use crate::table::{flags::*, lookup_sub, table, Command};
use ferrocache_protocol::resp::{OwnedArgs, ReplyBuf};
use std::os::raw::c_int;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

// The `host_*` functions are what the Lua side (crate::lua::sandbox) asks of the server.

/// Whether a script invocation is running on this thread.
pub(crate) fn host_in_run() -> bool {
    RUN.with(|c| !c.get().is_null())
}

/// Whether FUNCTION LOAD is running a library's code on this thread.
pub(crate) fn host_in_load() -> bool {
    LOAD.with(|c| !c.get().is_null())
}

pub(crate) fn host_setresp(resp: c_int) {
    with_run(|r| r.resp3 = resp == 3);
}

pub(crate) fn host_set_repl(_flags: c_int) {
    // Accepted as in Redis 7.0; effects are always replicated whole (no AOF/replica split yet).
}

/// The log level under which redis.log messages are dropped.
pub(crate) fn host_verbosity() -> c_int {
    with_run(|r| unsafe {
        match (&*r.srv).config.get("loglevel").as_deref() {
            Some("debug") => 0,
            Some("verbose") => 1,
            Some("notice") => 2,
            Some("warning") => 3,
            _ => 4,
        }
    })
    .unwrap_or(2)
}

pub(crate) fn host_log(level: c_int, msg: &[u8]) {
    let c = match level {
        0 => '.',
        1 => '-',
        2 => '*',
        _ => '#',
    };
    let logfile = with_run(|r| unsafe { (&*r.srv).config.get("logfile") }).flatten().unwrap_or_default();
    log_line(&logfile, c, &String::from_utf8_lossy(msg));
}

fn log_line(logfile: &str, level: char, msg: &str) {
    use std::io::Write;
    let now = crate::node::now_ms();
    let secs = now / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let line = format!("{}:M {:02}:{:02}:{:02}.{:03} {} {}\n", std::process::id(), h, m, s, now % 1000, level, msg);
    if logfile.is_empty() {
        eprint!("{}", line);
    } else if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(logfile) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// The Lua count hook (every 100000 instructions): the kill flag, and once the script ran a
/// few milliseconds, wake the runtime so another worker takes over the I/O driver (a worker
/// busy in a script polls no sockets; without this, SCRIPT KILL might never be read).
pub(crate) fn host_should_kill() -> bool {
    with_run(|r| unsafe {
        let st = &(&*r.srv).scripting;
        if !st.poked.load(Relaxed) && crate::node::now_ms().saturating_sub(st.run_start_ms.load(Relaxed)) >= 5 {
            st.poked.store(true, Relaxed);
            if let Ok(h) = tokio::runtime::Handle::try_current() {
                // From a non-worker thread the task lands in the injection queue and unparks an
                // idle worker, which then parks on the I/O driver.
                std::thread::spawn(move || {
                    h.spawn(async {});
                });
            }
        }
        st.kill.load(SeqCst)
    })
    .unwrap_or(false)
}

/// Whether the running FUNCTION LOAD exceeded its time budget.
pub(crate) fn host_load_timed_out() -> bool {
    let p = LOAD.with(|c| c.get());
    if p.is_null() {
        return false;
    }
    let l = unsafe { &*p };
    l.timeout_ms > 0 && l.start.elapsed().as_millis() as u64 > l.timeout_ms
}

/// Register a function during FUNCTION LOAD (`r`: the callback's registry reference).
pub(crate) fn host_register_function(
    name: &[u8],
    desc: Option<&[u8]>,
    r: c_int,
    flags: u64,
) -> Result<(), &'static str> {
    let p = LOAD.with(|c| c.get());
    if p.is_null() {
        return Err("redis.register_function can only be called on FUNCTION LOAD command");
    }
    let l = unsafe { &mut *p };
    if !verify_name(name) {
        return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long");
    }
    if l.functions.iter().any(|f| f.name == name) {
        return Err("Function already exists in the library");
    }
    l.functions.push(FunctionInfo { name: name.to_vec(), desc: desc.map(|d| d.to_vec()), flags, lua_ref: r });
    Ok(())
}

/// Resolve a command called from a script (lookupCommand + arity), or the script error text.
fn script_lookup(argv: &[Vec<u8>]) -> Result<&'static Command, &'static str> {
    let base = table().lookup(&argv[0]);
    let cmd = match base {
        Some(c) if !c.subcommands.is_empty() && argv.len() >= 2 => lookup_sub(c, &argv[1]),
        other => other,
    };
    let Some(cmd) = cmd else { return Err("Unknown Redis command called from script") };
    if !cmd.arity_ok(argv.len()) {
        return Err("Wrong number of args calling Redis command from script");
    }
    Ok(cmd)
}

/// redis.call / redis.pcall: the number of results, or -1 with the error (table) to raise on
/// the stack.
pub(crate) unsafe fn host_call(l: *mut lua_State, raise: bool) -> c_int {
    let p = RUN.with(|c| c.get());
    unsafe {
        if p.is_null() {
            lua::push_error(l, b"redis.call/pcall can only be called inside a script invocation");
            return -1;
        }
        let run = &mut *p;
        let argc = lua_gettop(l);
        if argc == 0 {
            lua::push_error(l, b"Please specify at least one argument for this redis lib call");
            return if raise { -1 } else { 1 };
        }
        let mut argv: Vec<Vec<u8>> = Vec::with_capacity(argc as usize);
        for j in 1..=argc {
            if lua_type(l, j) == LUA_TNUMBER {
                argv.push(lua::fmt_g17(lua_tonumber(l, j)).into_bytes());
            } else {
                match lua::to_bytes(l, j) {
                    Some(b) => argv.push(b.to_vec()),
                    None => break,
                }
            }
        }
        lua::pop(l, argc);
        if argv.len() != argc as usize {
            lua::push_error(l, b"Lua redis lib command arguments must be strings or integers");
            return if raise { -1 } else { 1 };
        }
        let srv: &Arc<Node> = &*run.srv;
        // scriptVerifyWriteCommandAllow's server-state checks, for a write before the first one.
        let state_denied = |cmd: &Command, run: &RunCtx| -> Option<String> {
            if !cmd.has(WRITE) || run.dirty {
                return None;
            }
            write_denied(srv, !run.obey, true).map(|e| format!("-{e}"))
        };
        let err: Option<std::borrow::Cow<'static, str>> = match script_lookup(&argv) {
            Err(e) => Some(e.into()),
            Ok(cmd) => {
                if cmd.has(NOSCRIPT) && !srv.scripting.disable_deny.load(Relaxed) {
                    Some("This Redis command is not allowed from script".into())
                } else if let Some(e) = crate::acl::check_script_argv(srv, &run.client, &argv) {
                    Some(e.into())
                } else if run.read_only && (cmd.has(WRITE) || cmd.has(MAY_REPLICATE)) {
                    Some("Write commands are not allowed from read-only scripts.".into())
                } else if let Some(e) = state_denied(cmd, run) {
                    Some(e.into())
                } else if !run.allow_oom
                    && srv.config.hot.maxmemory.load(Relaxed) > 0
                    && !run.dirty
                    && run.oom_at_start
                    && cmd.has(DENYOOM)
                {
                    Some("-OOM command not allowed when used memory > 'maxmemory'.".into())
                } else {
                    if cmd.has(READONLY) {
                        run.read_called = true;
                    }
                    if cmd.is_write() {
                        run.dirty = true;
                        srv.scripting.run_dirty.store(true, SeqCst);
                    }
                    let owned = OwnedArgs::from_slices(&argv);
                    // call(): MONITOR sees a script's commands as from client "lua".
                    if srv.monitors.active() && !cmd.has(ADMIN) && !cmd.has(SKIP_MONITOR) {
                        let a: Vec<&[u8]> = crate::acl::redacted_args(cmd, owned.args());
                        srv.feed_monitors(run.client.db, "lua", &a);
                    }
                    let mut out = ReplyBuf::new(run.resp3);
                    out.buf = Vec::with_capacity(256);
                    run.client.resp3 = run.resp3;
                    // A command that tried to block (it should not, in_exec is set) is not waited for.
                    let _ =
                        crate::run_locked(srv, &mut run.client, cmd, owned.args(), &mut out, &mut *run.guards, run.now);
                    let is_err = out.buf.first() == Some(&b'-');
                    lua::push_resp(l, &out.buf, 0, true);
                    return if raise && is_err { -1 } else { 1 };
                }
            }
        };
        let e = err.unwrap();
        // afterErrorReply: total_error_replies (INFO adds rejected calls to it) and errorstats
        // by the error's code.
        match script_lookup(&argv) {
            Ok(cmd) => crate::stats::rejected(cmd.name),
            Err(_) => {
                srv.counters.total_error_replies.fetch_add(1, Relaxed);
            }
        }
        let code = match e.strip_prefix('-') {
            Some(rest) => rest.split(' ').next().unwrap_or("ERR"),
            None => "ERR",
        };
        crate::stats::error_code(code);
        lua::push_error(l, e.as_bytes());
        lua::push_bytes(l, b"ignore_error_stats_update");
        lua_pushboolean(l, 1);
        lua_rawset(l, -3);
        if raise {
            -1
        } else {
            1
        }
    }
}

/// redis.acl_check_cmd: whether the calling client's ACL user may run the command (-1: the
/// error to raise is on the stack).
pub(crate) unsafe fn host_acl_check(l: *mut lua_State) -> c_int {
    unsafe {
        if RUN.with(|c| c.get().is_null()) {
            lua::push_error(l, b"redis.acl_check_cmd can only be called inside a script invocation");
            return -1;
        }
        let argc = lua_gettop(l);
        if argc == 0 {
            lua::push_error(l, b"Please specify at least one argument for this redis lib call");
            return -1;
        }
        let mut argv: Vec<Vec<u8>> = Vec::new();
        for j in 1..=argc {
            if lua_type(l, j) == LUA_TNUMBER {
                argv.push(lua::fmt_g17(lua_tonumber(l, j)).into_bytes());
            } else {
                match lua::to_bytes(l, j) {
                    Some(b) => argv.push(b.to_vec()),
                    None => break,
                }
            }
        }
        lua::pop(l, argc);
        if argv.len() != argc as usize {
            lua::push_error(l, b"Lua redis lib command arguments must be strings or integers");
            return -1;
        }
        let base = table().lookup(&argv[0]);
        let cmd = match base {
            Some(c) if !c.subcommands.is_empty() && argv.len() >= 2 => lookup_sub(c, &argv[1]),
            other => other,
        };
        let Some(cmd) = cmd else {
            lua::push_error(l, b"Invalid command passed to redis.acl_check_cmd()");
            return -1;
        };
        let run = &*RUN.with(|c| c.get());
        lua_pushboolean(l, crate::acl::script_user_allows(&run.client, &*run.srv, cmd, &argv) as c_int);
        1
    }
}
