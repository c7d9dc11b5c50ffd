//! Running a script or function: the BUSY handling while one runs (wait, reject, shard
//! locking), the checks before a run (scriptPrepareForRun), `call_function` around lua_pcall,
//! and SCRIPT KILL / FUNCTION KILL.

use super::{RunCtx, FLAG_ALLOW_OOM, FLAG_EVAL_COMPAT_MODE, FLAG_NO_CLUSTER, FLAG_NO_WRITES, RUN};
use crate::client::Client;
use crate::lua::{self, ffi::*, sandbox};
use crate::node::Node;
use crate::table::{flags::*, Command};
use crate::Ctx;
use ferrocache_engine::Guards;
use ferrocache_protocol::resp::ReplyBuf;
use std::cell::Cell;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

/// The BUSY check Redis's processCommand does while a script runs past busy-reply-threshold.
/// Returns the error to reply, if the command must be rejected.
pub fn busy_error(srv: &Node, cmd: &Command) -> Option<&'static str> {
    if cmd.has(ALLOW_BUSY) {
        return None;
    }
    busy_reply(srv)
}

/// The BUSY error while a script runs past busy-reply-threshold (None: not busy).
pub fn busy_reply(srv: &Node) -> Option<&'static str> {
    let s = &srv.scripting;
    if !s.running.load(SeqCst) {
        return None;
    }
    let threshold = srv.config.get_i64("busy-reply-threshold");
    let elapsed = crate::node::now_ms().saturating_sub(s.run_start_ms.load(SeqCst));
    if threshold > 0 && elapsed as i64 >= threshold {
        if s.run_is_eval.load(SeqCst) {
            return Some("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.");
        }
        return Some("BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.");
    }
    None
}

/// Called by the executor before it locks shards: while a script runs, wait (without blocking on
/// a shard lock) until it ends, or reject with BUSY once it passed busy-reply-threshold.
/// Returns false when the command was rejected (the error is written).
pub fn wait_not_busy(srv: &Node, cmd: &Command, out: &mut ReplyBuf) -> bool {
    if cmd.has(ALLOW_BUSY) {
        return true;
    }
    while srv.scripting.running.load(SeqCst) {
        if let Some(e) = busy_error(srv, cmd) {
            out.error(e);
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}

/// Lock shards for `cmd` (see `Keyspace::lock_shards_or`). While a script holds them, wait
/// until it ends or passes busy-reply-threshold; then write BUSY and return None. This closes
/// the race of a command that passed `wait_not_busy` just before a script took the locks: it no
/// longer blocks a runtime worker on a shard mutex for as long as the script runs (with few
/// workers that made the node deaf to SCRIPT KILL).
pub fn lock_shards<'s>(
    srv: &'s Node,
    cmd: &Command,
    idx: &[usize],
    all: bool,
    out: &mut ReplyBuf,
) -> Option<Guards<'s>> {
    let mut err = None;
    let g = srv.ks.lock_shards_or(idx, all, || {
        err = busy_error(srv, cmd);
        err.is_some()
    });
    if let Some(e) = err {
        out.error(e);
    }
    g
}

// -------------------------------------------------------------------------------------------
// Running a script / function
// -------------------------------------------------------------------------------------------

/// Memory state at the start of the script (Redis's pre_command_oom_state).
fn oom_now(srv: &Node, now: u64) -> bool {
    srv.config.hot.maxmemory.load(Relaxed) > 0 && !crate::ensure_memory(srv, now)
}

pub(super) struct Prepared {
    read_only: bool,
    allow_oom: bool,
}

/// scriptPrepareForRun's checks. Returns None after writing the rejection.
pub(super) fn prepare(ctx: &mut Ctx, script_flags: u64, ro: bool) -> Option<Prepared> {
    let compat = script_flags & FLAG_EVAL_COMPAT_MODE != 0;
    if !compat {
        // A script with flags is a write command to processCommand unless it says no-writes
        // (evalGetCommandFlags), so its checks come first, in its order.
        let may_write = script_flags & FLAG_NO_WRITES == 0;
        if script_flags & (FLAG_ALLOW_OOM | FLAG_NO_WRITES) == 0 && oom_now(ctx.srv, ctx.now_ms) {
            ctx.out.error("OOM command not allowed when used memory > 'maxmemory'.");
            return None;
        }
        // scriptPrepareForRun's own checks, in its order.
        if script_flags & FLAG_NO_CLUSTER != 0 && ctx.srv.cluster.enabled {
            ctx.out.error("ERR Can not run script on cluster, 'no-cluster' flag is set.");
            return None;
        }
        if may_write && !ctx.client.repl.is_master {
            if let Some(e) = write_denied(ctx.srv, true, false) {
                ctx.out.error(&e);
                return None;
            }
        }
        if may_write && ro {
            ctx.out.error("ERR Can not execute a script with write flag using *_ro command.");
            return None;
        }
    }
    Some(Prepared {
        read_only: ro || (!compat && script_flags & FLAG_NO_WRITES != 0),
        allow_oom: !compat && script_flags & FLAG_ALLOW_OOM != 0,
    })
}

/// checkGoodReplicasStatus: a primary with min-replicas-to-write and min-replicas-max-lag set
/// has enough online replicas that acknowledged within the lag.
fn good_replicas_ok(srv: &Node) -> bool {
    crate::replication::good_replicas_ok(srv)
}

/// The server-state checks on a write: processCommand's for a script with write flags (a disk
/// error — MISCONF —, too few good replicas — NOREPLICAS —, a read-only replica — READONLY),
/// or with `script_call` scriptVerifyWriteCommandAllow's for redis.call of a write command
/// (READONLY first). `check_ro_replica` is false for the primary's link (mustObeyClient).
pub(super) fn write_denied(srv: &Node, check_ro_replica: bool, script_call: bool) -> Option<String> {
    let ro_replica = || {
        (check_ro_replica && srv.repl.is_replica.load(Relaxed) && srv.config.get_bool("replica-read-only"))
            .then(|| "READONLY You can't write against a read only replica.".to_string())
    };
    if script_call {
        if let Some(e) = ro_replica() {
            return Some(e);
        }
    }
    if crate::persistence::writes_denied(srv) {
        return Some(crate::persistence::MISCONF.to_string());
    }
    if let Some(e) = crate::aof::writes_denied(srv) {
        return Some(e);
    }
    if !good_replicas_ok(srv) {
        return Some("NOREPLICAS Not enough good replicas to write.".into());
    }
    if !script_call {
        return ro_replica();
    }
    None
}

/// Everything luaCallFunction does around lua_pcall. The function (and its error handler below
/// it) is on the stack. `eval_mode`: KEYS/ARGV as globals; otherwise passed as two arguments.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn call_function(
    ctx: &mut Ctx,
    l: *mut lua_State,
    prep: Prepared,
    funcname: &str,
    keys: &[&[u8]],
    args: &[&[u8]],
    eval_mode: bool,
) {
    let srv = ctx.srv.clone();
    let st = &srv.scripting;
    let mut client = Client::new(ctx.client.shared.clone(), ctx.client.tx.clone());
    client.db = ctx.client.db;
    client.authenticated = true;
    client.user = ctx.client.user.clone();
    client.in_exec = true;
    client.in_script = true;
    let mut run = RunCtx {
        srv: &srv as *const Arc<Node>,
        // The guards outlive the run; the lifetime is erased for the thread-local.
        guards: (ctx.guards as *mut Guards<'_>).cast::<Guards<'static>>(),
        client,
        now: ctx.now_ms,
        read_only: prep.read_only,
        allow_oom: prep.allow_oom,
        oom_at_start: oom_now(&srv, ctx.now_ms),
        obey: ctx.client.repl.is_master,
        dirty: false,
        read_called: false,
        resp3: false,
    };
    st.run_start_ms.store(crate::node::now_ms(), SeqCst);
    st.run_is_eval.store(eval_mode, SeqCst);
    st.run_dirty.store(false, SeqCst);
    st.kill.store(false, SeqCst);
    st.poked.store(false, SeqCst);
    st.running.store(true, SeqCst);
    RUN.with(|c| c.set(&mut run as *mut RunCtx));
    let threshold = srv.config.get_i64("busy-reply-threshold");
    if threshold > 0 {
        sandbox::set_run_hook(l, true);
    }
    lua::push_array(l, keys);
    if eval_mode {
        sandbox::set_global_raw(l, c"KEYS");
    }
    lua::push_array(l, args);
    if eval_mode {
        sandbox::set_global_raw(l, c"ARGV");
    }
    // The script's writes reach AOF/replicas as one unit: MULTI ... EXEC when there is more
    // than one (Redis 7's propagatePendingCommands after scriptCall's also_propagate).
    srv.begin_exec_unit();
    let err = if eval_mode { lua_pcall(l, 0, 1, -2) } else { lua_pcall(l, 2, 1, -4) };
    if run.read_called {
        ctx.client.script_read = true;
    }
    if srv.end_exec_unit() || run.client.repl.woff > ctx.client.repl.woff {
        // WAIT after the script waits for its writes (they ran on the script's own client).
        ctx.client.repl.woff = srv.repl.master_offset();
    }
    thread_local! { static GC_COUNT: Cell<u32> = const { Cell::new(0) }; }
    GC_COUNT.with(|g| {
        let n = g.get() + 1;
        if n == 50 {
            lua_gc(l, LUA_GCSTEP, 50);
            g.set(0);
        } else {
            g.set(n);
        }
    });
    if err != 0 {
        if lua_type(l, -1) != LUA_TTABLE {
            let msg = if lua_isstring(l, -1) != 0 {
                String::from_utf8_lossy(lua::cstr_bytes(l, -1)).into_owned()
            } else {
                "execution failure".to_string()
            };
            let msg: String = msg.chars().take(100).collect();
            ctx.out.error(&format!("ERR Error running script {}, {}\n", funcname, msg));
        } else {
            let e = lua::extract_error_info(l);
            let mut m = e.msg.unwrap_or_else(|| b"(null)".to_vec());
            if let (Some(line), Some(source)) = (&e.line, &e.source) {
                m.extend_from_slice(format!(" script: {}, on ", funcname).as_bytes());
                m.extend_from_slice(source);
                m.push(b':');
                m.extend_from_slice(line);
                m.push(b'.');
            }
            lua::error_raw(ctx.out, &m, !e.ignore_stats);
            if e.ignore_stats {
                // Counted in errorstats by redis.call already; the script still failed.
                crate::stats::failed(ctx.cmd.name, 1);
            }
        }
        lua::pop(l, 1);
    } else {
        let uncounted = lua::reply_from_lua(l, ctx.out, run.resp3);
        if uncounted > 0 {
            crate::stats::failed(ctx.cmd.name, uncounted);
        }
    }
    if threshold > 0 {
        sandbox::set_run_hook(l, false);
    }
    RUN.with(|c| c.set(std::ptr::null_mut()));
    st.running.store(false, SeqCst);
    st.kill.store(false, SeqCst);
    *st.run_info.lock() = None;
    drop(run);
}

// -------------------------------------------------------------------------------------------
// SCRIPT KILL / FUNCTION KILL
// -------------------------------------------------------------------------------------------

/// What SCRIPT KILL / FUNCTION KILL found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillOutcome {
    /// The running script will stop at its next kill check.
    Killed,
    /// Nothing runs.
    NotBusy,
    /// The running script already wrote: it cannot be killed.
    Unkillable,
    /// The other kind runs (a function for SCRIPT KILL, an EVAL script for FUNCTION KILL).
    OtherKind,
}

/// scriptKill: SCRIPT KILL (`is_eval`) / FUNCTION KILL ask the running script to stop.
pub fn kill(srv: &Node, is_eval: bool) -> KillOutcome {
    let st = &srv.scripting;
    if !st.running.load(SeqCst) {
        return KillOutcome::NotBusy;
    }
    if st.run_dirty.load(SeqCst) {
        return KillOutcome::Unkillable;
    }
    if is_eval != st.run_is_eval.load(SeqCst) {
        return KillOutcome::OtherKind;
    }
    st.kill.store(true, SeqCst);
    KillOutcome::Killed
}
