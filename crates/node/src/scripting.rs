//! Lua scripting and functions: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT *, FUNCTION *, FCALL,
//! FCALL_RO, with Redis 7.0's script environment (see `crate::lua`).
//!
//! Atomicity: the script commands carry `ALL_SHARDS`, so the executor (or EXEC) holds every
//! shard lock for the whole run and `redis.call` runs commands through `run_locked` with those
//! guards: a script is atomic over any keys it touches, declared or not. Lock order is always
//! shards → Lua interpreter mutex (nothing takes the interpreter first and then shards).
//!
//! Effects replication: each `redis.call` goes through `run_locked`, which applies and
//! propagates that command's own effects; the script command itself is never propagated. The
//! whole run is one execution unit (`Node::begin_exec_unit`): two or more propagated writes
//! reach AOF and replicas wrapped in MULTI/EXEC, one goes alone, a read-only run sends nothing.

use crate::client::Client;
use crate::lua::{self, basefix, ffi::*, sandbox, Vm};
use crate::node::Node;
use crate::table::{flags::*, lookup_sub, table, Command};
use crate::util::{eq_ic, parse_i64};
use crate::Ctx;
use ferrocache_engine::Guards;
use ferrocache_protocol::resp::{Args, OwnedArgs, ReplyBuf};
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;

const G: &str = "scripting";
const EVALF: u64 = NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | STALE | ALL_SHARDS;
const EVALRO: u64 = NOSCRIPT | SKIP_MONITOR | STALE | READONLY | ALL_SHARDS;

pub static COMMANDS: &[Command] = &[
    Command::new("eval", -3, EVALF, (0, 0, 0), eval).keys(script_keys).group(G),
    Command::new("evalsha", -3, EVALF, (0, 0, 0), evalsha).keys(script_keys).group(G),
    Command::new("eval_ro", -3, EVALRO, (0, 0, 0), eval_ro).keys(script_keys).group(G),
    Command::new("evalsha_ro", -3, EVALRO, (0, 0, 0), evalsha_ro).keys(script_keys).group(G),
    Command::new("fcall", -3, EVALF, (0, 0, 0), fcall).keys(script_keys).group(G),
    Command::new("fcall_ro", -3, EVALRO, (0, 0, 0), fcall_ro).keys(script_keys).group(G),
    Command::new("script", -2, 0, (0, 0, 0), container).group(G).subs(SCRIPT_SUBS),
    Command::new("function", -2, 0, (0, 0, 0), container).group(G).subs(FUNCTION_SUBS),
];

static SCRIPT_SUBS: &[Command] = &[
    Command::new("script|debug", 3, NOSCRIPT, (0, 0, 0), script_debug).group(G),
    Command::new("script|exists", -3, NOSCRIPT, (0, 0, 0), script_exists).group(G),
    Command::new("script|flush", -2, NOSCRIPT, (0, 0, 0), script_flush).group(G),
    Command::new("script|help", 2, LOADING | STALE, (0, 0, 0), script_help).group(G),
    Command::new("script|kill", 2, NOSCRIPT | ALLOW_BUSY, (0, 0, 0), script_kill).group(G),
    Command::new("script|load", 3, NOSCRIPT | STALE, (0, 0, 0), script_load).group(G),
];

static FUNCTION_SUBS: &[Command] = &[
    Command::new("function|delete", 3, NOSCRIPT | WRITE, (0, 0, 0), function_delete).group(G),
    Command::new("function|dump", 2, NOSCRIPT, (0, 0, 0), function_dump).group(G),
    Command::new("function|flush", -2, NOSCRIPT | WRITE, (0, 0, 0), function_flush).group(G),
    Command::new("function|help", 2, LOADING | STALE, (0, 0, 0), function_help).group(G),
    Command::new("function|kill", 2, NOSCRIPT | ALLOW_BUSY, (0, 0, 0), function_kill).group(G),
    Command::new("function|list", -2, NOSCRIPT, (0, 0, 0), function_list).group(G),
    Command::new("function|load", -3, NOSCRIPT | WRITE | DENYOOM, (0, 0, 0), function_load).group(G),
    Command::new("function|restore", -3, NOSCRIPT | WRITE | DENYOOM, (0, 0, 0), function_restore).group(G),
    Command::new("function|stats", 2, NOSCRIPT | ALLOW_BUSY, (0, 0, 0), function_stats).group(G),
];

fn container(ctx: &mut Ctx, _a: Args) {
    ctx.wrong_arity();
}

/// EVAL/FCALL key positions: `numkeys` keys after argv[2].
fn script_keys(a: Args) -> Vec<usize> {
    let Some(n) = a.get(2).and_then(parse_i64) else { return vec![] };
    if n <= 0 || (n as usize) > a.len().saturating_sub(3) {
        return vec![];
    }
    (3..3 + n as usize).collect()
}

pub const FLAG_NO_WRITES: u64 = 1 << 0;
pub const FLAG_ALLOW_OOM: u64 = 1 << 1;
pub const FLAG_ALLOW_STALE: u64 = 1 << 2;
pub const FLAG_NO_CLUSTER: u64 = 1 << 3;
pub const FLAG_EVAL_COMPAT_MODE: u64 = 1 << 4;
pub const FLAG_ALLOW_CROSS_SLOT: u64 = 1 << 5;
pub(crate) const FLAG_NAMES: &[(u64, &str)] = &[
    (FLAG_NO_WRITES, "no-writes"),
    (FLAG_ALLOW_OOM, "allow-oom"),
    (FLAG_ALLOW_STALE, "allow-stale"),
    (FLAG_NO_CLUSTER, "no-cluster"),
    (FLAG_ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
];

struct EvalScript {
    flags: u64,
}

#[derive(Default)]
struct EvalState {
    vm: Option<Vm>,
    scripts: HashMap<String, EvalScript>,
}

pub struct FunctionInfo {
    pub name: Vec<u8>,
    pub desc: Option<Vec<u8>>,
    pub flags: u64,
    pub lua_ref: c_int,
}

pub struct Library {
    pub name: Vec<u8>,
    pub code: Vec<u8>,
    pub functions: BTreeMap<Vec<u8>, FunctionInfo>,
}

#[derive(Default)]
struct FuncState {
    vm: Option<Vm>,
    libraries: BTreeMap<Vec<u8>, Library>,
    /// function name (lowercased: FCALL names are case-insensitive, as Redis's functions dict)
    /// → library name
    functions: HashMap<Vec<u8>, Vec<u8>>,
}

/// The running function's name and the FCALL arguments.
type RunInfo = (Vec<u8>, Vec<Vec<u8>>);

/// Node-wide scripting state (one per `Node`).
#[derive(Default)]
pub struct Scripting {
    eval: Mutex<EvalState>,
    funcs: Mutex<FuncState>,
    /// A script or function is running (set before its locks are taken).
    running: AtomicBool,
    run_start_ms: AtomicU64,
    run_is_eval: AtomicBool,
    run_dirty: AtomicBool,
    kill: AtomicBool,
    /// FUNCTION STATS: the running function's name and command.
    run_info: Mutex<Option<RunInfo>>,
    /// Library and function counts (high/low 32 bits) for FUNCTION STATS during a run.
    lib_counts: AtomicU64,
    /// The runtime was woken for this run (see host_should_kill).
    poked: AtomicBool,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: scripts may call `NOSCRIPT` commands.
    pub disable_deny: AtomicBool,
}

impl Scripting {
    /// Whether a script or function is running right now.
    pub fn is_running(&self) -> bool {
        self.running.load(SeqCst)
    }
    /// Number of cached EVAL scripts and the eval interpreter's memory (INFO).
    pub fn eval_stats(&self) -> (usize, u64) {
        match self.eval.try_lock() {
            Some(st) => (st.scripts.len(), st.vm.as_ref().map(|v| v.memory()).unwrap_or(EMPTY_VM_MEMORY)),
            None => (0, EMPTY_VM_MEMORY),
        }
    }
    /// Libraries, functions and the functions interpreter's memory (INFO).
    pub fn function_stats(&self) -> (usize, usize, u64) {
        match self.funcs.try_lock() {
            Some(fs) => {
                (fs.libraries.len(), fs.functions.len(), fs.vm.as_ref().map(|v| v.memory()).unwrap_or(EMPTY_VM_MEMORY))
            }
            None => {
                let c = self.lib_counts.load(Relaxed);
                ((c >> 32) as usize, (c & 0xffff_ffff) as usize, EMPTY_VM_MEMORY)
            }
        }
    }
}

/// What INFO shows for an interpreter not created yet (Redis 7.0's fresh interpreter).
const EMPTY_VM_MEMORY: u64 = 31744;

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
// The running script (thread-local: a script runs start to end on one thread).
// -------------------------------------------------------------------------------------------

struct RunCtx {
    srv: *const Arc<Node>,
    guards: *mut Guards<'static>,
    client: Client,
    now: u64,
    read_only: bool,
    allow_oom: bool,
    oom_at_start: bool,
    /// The caller is the primary's link (mustObeyClient): writes on a read-only replica pass.
    obey: bool,
    dirty: bool,
    /// A read-only command was called (client-side caching tracks the declared keys).
    read_called: bool,
    resp3: bool,
}

thread_local! {
    static RUN: Cell<*mut RunCtx> = const { Cell::new(std::ptr::null_mut()) };
    /// Set while FUNCTION LOAD runs a library's top-level code.
    static LOAD: Cell<*mut LoadCtx> = const { Cell::new(std::ptr::null_mut()) };
}

struct LoadCtx {
    start: std::time::Instant,
    timeout_ms: u64,
    functions: Vec<FunctionInfo>,
}

fn with_run<R>(f: impl FnOnce(&mut RunCtx) -> R) -> Option<R> {
    let p = RUN.with(|c| c.get());
    if p.is_null() {
        None
    } else {
        Some(f(unsafe { &mut *p }))
    }
}

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

pub fn sha1_hex(b: &[u8]) -> String {
    sha1_smol::Sha1::from(b).digest().to_string()
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

/// The node-wide functions map's key for a function name.
fn fkey(name: &[u8]) -> Vec<u8> {
    name.to_ascii_lowercase()
}

fn verify_name(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
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
                    if srv.monitor_count.load(Relaxed) > 0 && !cmd.has(ADMIN) && !cmd.has(SKIP_MONITOR) {
                        let a: Vec<&[u8]> = crate::acl::redacted_args(cmd, owned.args());
                        srv.feed_monitors(run.client.db, "lua", &a);
                    }
                    let mut out = ReplyBuf::new(run.resp3);
                    out.buf = Vec::with_capacity(256);
                    run.client.resp3 = run.resp3;
                    crate::run_locked(srv, &mut run.client, cmd, owned.args(), &mut out, &mut *run.guards, run.now);
                    // A command that tried to block (it should not, in_exec is set) is not waited for.
                    run.client.block = None;
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

// -------------------------------------------------------------------------------------------
// Running a script / function
// -------------------------------------------------------------------------------------------

/// Memory state at the start of the script (Redis's pre_command_oom_state).
fn oom_now(srv: &Node, now: u64) -> bool {
    srv.config.hot.maxmemory.load(Relaxed) > 0 && !crate::ensure_memory(srv, now)
}

struct Prepared {
    read_only: bool,
    allow_oom: bool,
}

/// scriptPrepareForRun's checks. Returns None after writing the rejection.
fn prepare(ctx: &mut Ctx, script_flags: u64, ro: bool) -> Option<Prepared> {
    let compat = script_flags & FLAG_EVAL_COMPAT_MODE != 0;
    if !compat {
        // A script with flags is a write command to processCommand unless it says no-writes
        // (evalGetCommandFlags), so its checks come first, in its order.
        let may_write = script_flags & FLAG_NO_WRITES == 0;
        if script_flags & (FLAG_ALLOW_OOM | FLAG_NO_WRITES) == 0 && oom_now(ctx.srv, ctx.now_ms) {
            ctx.out.error("OOM command not allowed when used memory > 'maxmemory'.");
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
fn write_denied(srv: &Node, check_ro_replica: bool, script_call: bool) -> Option<String> {
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
unsafe fn call_function(
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
// EVAL family
// -------------------------------------------------------------------------------------------

/// evalGetCommandFlags / fcallGetCommandFlags, for the pause checks: the script or function
/// declares flags and among them no-writes. Never waits for the script locks (a running script
/// holds them): an EVALSHA or FCALL whose script cannot be looked up right now counts as a write.
pub fn declares_no_writes(srv: &Node, cmd: &Command, a: Args) -> bool {
    let no_writes = |flags: u64| flags & FLAG_EVAL_COMPAT_MODE == 0 && flags & FLAG_NO_WRITES != 0;
    match cmd.name {
        "eval" | "eval_ro" if a.len() > 1 => extract_shebang(&a[1]).is_ok_and(|(f, _)| no_writes(f)),
        "evalsha" | "evalsha_ro" if a.len() > 1 => srv.scripting.eval.try_lock().is_some_and(|st| {
            st.scripts.get(&String::from_utf8_lossy(&a[1]).to_ascii_lowercase()).is_some_and(|s| no_writes(s.flags))
        }),
        "fcall" | "fcall_ro" if a.len() > 1 => srv.scripting.funcs.try_lock().is_some_and(|fs| {
            fs.functions.get(&fkey(&a[1])).and_then(|lib| fs.libraries.get(lib)).is_some_and(|lib| {
                lib.functions
                    .get(&a[1][..])
                    .or_else(|| lib.functions.values().find(|f| f.name.eq_ignore_ascii_case(&a[1])))
                    .is_some_and(|f| f.flags & FLAG_NO_WRITES != 0)
            })
        }),
        _ => false,
    }
}

/// evalExtractShebangFlags: (flags, shebang length) or the error text.
fn extract_shebang(body: &[u8]) -> Result<(u64, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((FLAG_EVAL_COMPAT_MODE, 0));
    }
    let Some(end) = memchr::memchr(b'\n', body) else { return Err("Invalid script shebang".into()) };
    let mut sp = Vec::new();
    let mut spans = Vec::new();
    // sdssplitargs (same quoting rules as inline commands); stops at NUL like C strings.
    let line = &body[..end];
    let line = &line[..line.iter().position(|&c| c == 0).unwrap_or(line.len())];
    if !ferrocache_protocol::resp::split_args(line, &mut sp, &mut spans) || spans.is_empty() {
        return Err("Invalid engine in script shebang".into());
    }
    let parts: Vec<&[u8]> = spans.iter().map(|r| &sp[r.clone()]).collect();
    if parts[0] != b"#!lua" {
        return Err(format!("Unexpected engine in script shebang: {}", String::from_utf8_lossy(parts[0])));
    }
    let mut flags = 0u64;
    for p in &parts[1..] {
        if let Some(f) = p.strip_prefix(b"flags=") {
            // sdssplitlen of an empty string yields no parts.
            for name in f.split(|&c| c == b',').filter(|_| !f.is_empty()) {
                match FLAG_NAMES.iter().find(|(_, n)| n.as_bytes() == name) {
                    Some((v, _)) => flags |= v,
                    None => {
                        return Err(format!("Unexpected flag in script shebang: {}", String::from_utf8_lossy(name)))
                    }
                }
            }
        } else {
            return Err(format!("Unknown lua shebang option: {}", String::from_utf8_lossy(p)));
        }
    }
    Ok((flags, end))
}

/// luaCreateFunction: compile `body` into the registry as f_<sha>. Returns the sha or writes the
/// error.
fn create_function(st: &mut EvalState, out: &mut ReplyBuf, body: &[u8]) -> Option<String> {
    let sha = sha1_hex(body);
    if st.scripts.contains_key(&sha) {
        return Some(sha);
    }
    let (flags, shebang_len) = match extract_shebang(body) {
        Ok(x) => x,
        Err(e) => {
            out.error(&format!("ERR {}", e));
            return None;
        }
    };
    let vm = st.vm.get_or_insert_with(Vm::new_eval);
    let l = vm.0;
    unsafe {
        let code = &body[shebang_len..];
        if basefix::load_chunk(l, code, c"@user_script") != 0 {
            let e = String::from_utf8_lossy(lua::cstr_bytes(l, -1)).into_owned();
            out.error(&format!("ERR Error compiling script (new function): {}", e));
            lua::pop(l, 1);
            return None;
        }
        let f = lua::cstr(&format!("f_{}", sha));
        lua_setfield(l, LUA_REGISTRYINDEX, f.as_ptr());
    }
    st.scripts.insert(sha.clone(), EvalScript { flags });
    Some(sha)
}

/// EVAL*/FCALL* skip the executor's MONITOR feed and feed it here, so that the script's own
/// commands appear after it (evalCommand, fcallCommandGeneric).
fn feed_monitors_first(ctx: &Ctx, a: Args) {
    if ctx.srv.monitor_count.load(Relaxed) > 0 {
        let argv: Vec<&[u8]> = a.iter().collect();
        ctx.srv.feed_monitors(ctx.client.db, &ctx.client.shared.addr, &argv);
    }
}

fn eval_generic(ctx: &mut Ctx, a: Args, evalsha: bool, ro: bool) {
    ctx.propagate_original = false;
    feed_monitors_first(ctx, a);
    if evalsha && a[1].len() != 40 {
        return ctx.out.error("NOSCRIPT No matching script. Please use EVAL.");
    }
    let Some(numkeys) = parse_i64(&a[2]) else { return ctx.out.error(crate::util::ERR_NOT_INT) };
    if numkeys > a.len() as i64 - 3 {
        return ctx.out.error("ERR Number of keys can't be greater than number of args");
    } else if numkeys < 0 {
        return ctx.out.error("ERR Number of keys can't be negative");
    }
    let srv = ctx.srv.clone();
    let mut st = srv.scripting.eval.lock();
    let sha = if evalsha { String::from_utf8_lossy(&a[1]).to_ascii_lowercase() } else { sha1_hex(&a[1]) };
    if !st.scripts.contains_key(&sha) {
        if evalsha {
            return ctx.out.error("NOSCRIPT No matching script. Please use EVAL.");
        }
        if create_function(&mut st, ctx.out, &a[1]).is_none() {
            return;
        }
    }
    let flags = st.scripts[&sha].flags;
    let Some(prep) = prepare(ctx, flags, ro) else { return };
    let l = st.vm.as_ref().unwrap().0;
    let n = numkeys as usize;
    let keys: Vec<&[u8]> = (3..3 + n).map(|i| &a[i]).collect();
    let args: Vec<&[u8]> = (3 + n..a.len()).map(|i| &a[i]).collect();
    unsafe {
        let h = lua::cstr("__redis__err__handler");
        lua_getfield(l, LUA_GLOBALSINDEX, h.as_ptr());
        let f = lua::cstr(&format!("f_{}", sha));
        lua_getfield(l, LUA_REGISTRYINDEX, f.as_ptr());
        call_function(ctx, l, prep, &sha, &keys, &args, true);
        lua::pop(l, 1);
    }
}

fn eval(ctx: &mut Ctx, a: Args) {
    eval_generic(ctx, a, false, false)
}
fn evalsha(ctx: &mut Ctx, a: Args) {
    eval_generic(ctx, a, true, false)
}
fn eval_ro(ctx: &mut Ctx, a: Args) {
    eval_generic(ctx, a, false, true)
}
fn evalsha_ro(ctx: &mut Ctx, a: Args) {
    eval_generic(ctx, a, true, true)
}

fn script_help(ctx: &mut Ctx, _a: Args) {
    help_reply(
        ctx.out,
        "SCRIPT",
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    );
}

/// addReplyHelp: "<CMD> <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", lines, HELP.
fn help_reply(out: &mut ReplyBuf, cmd: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!("{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", cmd));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

fn script_flush(ctx: &mut Ctx, a: Args) {
    if !(a.len() == 2 || (a.len() == 3 && (eq_ic(&a[2], "sync") || eq_ic(&a[2], "async")))) {
        return ctx.out.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    let mut st = ctx.srv.scripting.eval.lock();
    st.scripts.clear();
    st.vm = None;
    ctx.out.ok();
}

fn script_exists(ctx: &mut Ctx, a: Args) {
    let st = ctx.srv.scripting.eval.lock();
    ctx.out.array(a.len() - 2);
    for i in 2..a.len() {
        // dictFind on the sha as given (the dict is case-insensitive in Redis).
        let k = String::from_utf8_lossy(&a[i]).to_ascii_lowercase();
        ctx.out.int(st.scripts.contains_key(&k) as i64);
    }
}

fn script_load(ctx: &mut Ctx, a: Args) {
    let srv = ctx.srv.clone();
    let mut st = srv.scripting.eval.lock();
    if let Some(sha) = create_function(&mut st, ctx.out, &a[2]) {
        ctx.out.bulk(sha.as_bytes());
    }
}

/// SCRIPT DEBUG. The Lua debugger (LDB) is not implemented: YES (a forked session) and SYNC
/// (a session that blocks the server) reply an error instead of Redis's +OK. The other replies
/// are Redis's, in its order: first the pipeline check (clientHasPendingReplies: replies of this
/// batch not written yet, which includes being inside EXEC), then NO / the syntax error.
fn script_debug(ctx: &mut Ctx, a: Args) {
    if !ctx.out.buf.is_empty() {
        return ctx.out.error("ERR SCRIPT DEBUG must be called outside a pipeline");
    }
    if eq_ic(&a[2], "no") {
        ctx.out.ok()
    } else if eq_ic(&a[2], "yes") || eq_ic(&a[2], "sync") {
        ctx.out.error("ERR SCRIPT DEBUG is not supported by this server")
    } else {
        ctx.out.error("ERR Use SCRIPT DEBUG YES/SYNC/NO")
    }
}

/// scriptKill.
fn kill(ctx: &mut Ctx, is_eval: bool) {
    let st = &ctx.srv.scripting;
    if !st.running.load(SeqCst) {
        return ctx.out.error("NOTBUSY No scripts in execution right now.");
    }
    if st.run_dirty.load(SeqCst) {
        return ctx.out.error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        );
    }
    let running_eval = st.run_is_eval.load(SeqCst);
    if is_eval && !running_eval {
        return ctx
            .out
            .error("BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.");
    }
    if !is_eval && running_eval {
        return ctx.out.error("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.");
    }
    st.kill.store(true, SeqCst);
    ctx.out.ok();
}

fn script_kill(ctx: &mut Ctx, _a: Args) {
    kill(ctx, true)
}

// -------------------------------------------------------------------------------------------
// Functions
// -------------------------------------------------------------------------------------------

fn function_kill(ctx: &mut Ctx, _a: Args) {
    kill(ctx, false)
}

fn function_help(ctx: &mut Ctx, _a: Args) {
    help_reply(
        ctx.out,
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    );
}

/// functionExtractLibMetaData: "#!<engine> name=<name>" → (engine, name, shebang length).
fn extract_lib_metadata(code: &[u8]) -> Result<(Vec<u8>, Vec<u8>, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = memchr::memchr(b'\n', code) else { return Err("Invalid library metadata".into()) };
    let line = &code[..end];
    let line = &line[..line.iter().position(|&c| c == 0).unwrap_or(line.len())];
    let mut sp = Vec::new();
    let mut spans = Vec::new();
    if !ferrocache_protocol::resp::split_args(line, &mut sp, &mut spans) || spans.is_empty() {
        return Err("Invalid library metadata".into());
    }
    let parts: Vec<&[u8]> = spans.iter().map(|r| &sp[r.clone()]).collect();
    let engine = parts[0][2..].to_vec();
    let mut name: Option<Vec<u8>> = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err("Invalid metadata value, name argument was given multiple times".into());
            }
            name = Some(p[5..].to_vec());
            continue;
        }
        return Err(format!("Invalid metadata value given: {}", String::from_utf8_lossy(p)));
    }
    let Some(name) = name else { return Err("Library name was not given".into()) };
    Ok((engine, name, end))
}

/// functionsCreateWithLibraryCtx. Returns the library name or the error text.
fn create_library(fs: &mut FuncState, code: &[u8], replace: bool, timeout_ms: u64) -> Result<Vec<u8>, String> {
    let (engine, name, shebang_len) = extract_lib_metadata(code)?;
    if !verify_name(&name) {
        return Err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!("Engine '{}' not found", String::from_utf8_lossy(&engine)));
    }
    if fs.libraries.contains_key(&name) && !replace {
        return Err(format!("Library '{}' already exists", String::from_utf8_lossy(&name)));
    }
    let vm = fs.vm.get_or_insert_with(Vm::new_func);
    let l = vm.0;
    let mut load = LoadCtx { start: std::time::Instant::now(), timeout_ms, functions: Vec::new() };
    LOAD.with(|c| c.set(&mut load as *mut LoadCtx));
    // The shebang line is cut but its newline kept, so line numbers match the user's code.
    let body = &code[shebang_len..];
    let r = unsafe { sandbox::func_load(l, body) };
    LOAD.with(|c| c.set(std::ptr::null_mut()));
    let unref_all = |fns: &[FunctionInfo]| {
        for f in fns {
            unsafe { sandbox::unref(l, f.lua_ref) };
        }
    };
    if let Err(e) = r {
        unref_all(&load.functions);
        return Err(String::from_utf8_lossy(&e).into_owned());
    }
    if load.functions.is_empty() {
        return Err("No functions registered".into());
    }
    // Function name collisions with other libraries.
    for f in &load.functions {
        if let Some(owner) = fs.functions.get(&fkey(&f.name)) {
            if *owner != name {
                let e = format!("Function {} already exists", String::from_utf8_lossy(&f.name));
                unref_all(&load.functions);
                return Err(e);
            }
        }
    }
    if let Some(old) = fs.libraries.remove(&name) {
        for f in old.functions.values() {
            fs.functions.remove(&fkey(&f.name));
            unsafe { sandbox::unref(l, f.lua_ref) };
        }
    }
    let mut lib = Library { name: name.clone(), code: code.to_vec(), functions: BTreeMap::new() };
    for f in load.functions {
        fs.functions.insert(fkey(&f.name), name.clone());
        lib.functions.insert(f.name.clone(), f);
    }
    fs.libraries.insert(name.clone(), lib);
    Ok(name)
}

fn function_load(ctx: &mut Ctx, a: Args) {
    let mut i = 2;
    let mut replace = false;
    while i < a.len() - 1 {
        if eq_ic(&a[i], "replace") {
            replace = true;
            i += 1;
            continue;
        }
        return ctx.out.error(&format!("ERR Unknown option given: {}", String::from_utf8_lossy(&a[i])));
    }
    if i >= a.len() {
        return ctx.out.error("ERR Function code is missing");
    }
    let srv = ctx.srv.clone();
    let mut fs = srv.scripting.funcs.lock();
    match create_library(&mut fs, &a[i], replace, 500) {
        Ok(name) => {
            ctx.out.bulk(&name);
            ctx.db().fx.dirty += 1;
        }
        Err(e) => ctx.out.error(&format!("ERR {}", e)),
    }
}

fn function_delete(ctx: &mut Ctx, a: Args) {
    let srv = ctx.srv.clone();
    let mut fs = srv.scripting.funcs.lock();
    let Some(lib) = fs.libraries.remove(&a[2]) else { return ctx.out.error("ERR Library not found") };
    let l = fs.vm.as_ref().map(|v| v.0);
    for f in lib.functions.values() {
        fs.functions.remove(&fkey(&f.name));
        if let Some(l) = l {
            unsafe { sandbox::unref(l, f.lua_ref) };
        }
    }
    ctx.db().fx.dirty += 1;
    ctx.out.ok();
}

fn function_flush(ctx: &mut Ctx, a: Args) {
    if a.len() > 3 {
        return subcommand_syntax_error(ctx, a);
    }
    if !(a.len() == 2 || (a.len() == 3 && (eq_ic(&a[2], "sync") || eq_ic(&a[2], "async")))) {
        return ctx.out.error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    }
    let srv = ctx.srv.clone();
    let mut fs = srv.scripting.funcs.lock();
    fs.libraries.clear();
    fs.functions.clear();
    fs.vm = None;
    ctx.db().fx.dirty += 1;
    ctx.out.ok();
}

fn write_flags(out: &mut ReplyBuf, flags: u64) {
    let n = FLAG_NAMES.iter().filter(|(f, _)| flags & f != 0).count();
    out.set(n);
    for (f, name) in FLAG_NAMES {
        if flags & f != 0 {
            out.simple(name);
        }
    }
}

fn function_list(ctx: &mut Ctx, a: Args) {
    let mut with_code = false;
    let mut pattern: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < a.len() {
        if !with_code && eq_ic(&a[i], "withcode") {
            with_code = true;
            i += 1;
            continue;
        }
        if pattern.is_none() && eq_ic(&a[i], "libraryname") {
            if i + 1 >= a.len() {
                return ctx.out.error("ERR library name argument was not given");
            }
            pattern = Some(a[i + 1].to_vec());
            i += 2;
            continue;
        }
        return ctx.out.error(&format!("ERR Unknown argument {}", String::from_utf8_lossy(&a[i])));
    }
    let fs = ctx.srv.scripting.funcs.lock();
    let libs: Vec<&Library> = fs
        .libraries
        .values()
        .filter(|l| pattern.as_ref().is_none_or(|p| ferrocache_engine::glob::glob_match(p, &l.name, false)))
        .collect();
    let out = &mut *ctx.out;
    out.array(libs.len());
    for lib in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(&lib.name);
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in lib.functions.values() {
            out.map(3);
            out.bulk(b"name");
            out.bulk(&f.name);
            out.bulk(b"description");
            match &f.desc {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            write_flags(out, f.flags);
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
}

fn function_stats(ctx: &mut Ctx, _a: Args) {
    let st = &ctx.srv.scripting;
    if st.running.load(SeqCst) && st.run_is_eval.load(SeqCst) {
        return ctx.out.error("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.");
    }
    let info = st.run_info.lock().clone();
    let (nlib, nfun) = {
        // The functions mutex is held by a running function: read counts without blocking.
        match st.funcs.try_lock() {
            Some(fs) => (fs.libraries.len(), fs.functions.len()),
            None => (usize::MAX, usize::MAX),
        }
    };
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    match info {
        Some((name, argv)) if st.running.load(SeqCst) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(&name);
            out.bulk(b"command");
            out.array(argv.len());
            for x in &argv {
                out.bulk(x);
            }
            out.bulk(b"duration_ms");
            out.int(crate::node::now_ms().saturating_sub(st.run_start_ms.load(SeqCst)) as i64);
        }
        _ => out.null(),
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(if nlib == usize::MAX { st.lib_counts.load(Relaxed) as i64 >> 32 } else { nlib as i64 });
    out.bulk(b"functions_count");
    out.int(if nfun == usize::MAX { st.lib_counts.load(Relaxed) as i64 & 0xffff_ffff } else { nfun as i64 });
}

fn fcall_generic(ctx: &mut Ctx, a: Args, ro: bool) {
    ctx.propagate_original = false;
    feed_monitors_first(ctx, a);
    let srv = ctx.srv.clone();
    let fs = srv.scripting.funcs.lock();
    let Some(libname) = fs.functions.get(&fkey(&a[1])) else { return ctx.out.error("ERR Function not found") };
    let lib = &fs.libraries[libname];
    let Some(f) =
        lib.functions.get(&a[1][..]).or_else(|| lib.functions.values().find(|f| f.name.eq_ignore_ascii_case(&a[1])))
    else {
        return ctx.out.error("ERR Function not found");
    };
    let Some(numkeys) = parse_i64(&a[2]) else { return ctx.out.error("ERR Bad number of keys provided") };
    if numkeys > a.len() as i64 - 3 {
        return ctx.out.error("ERR Number of keys can't be greater than number of args");
    } else if numkeys < 0 {
        return ctx.out.error("ERR Number of keys can't be negative");
    }
    let Some(prep) = prepare(ctx, f.flags, ro) else { return };
    let l = fs.vm.as_ref().unwrap().0;
    let n = numkeys as usize;
    let keys: Vec<&[u8]> = (3..3 + n).map(|i| &a[i]).collect();
    let args: Vec<&[u8]> = (3 + n..a.len()).map(|i| &a[i]).collect();
    let name = String::from_utf8_lossy(&f.name).into_owned();
    srv.scripting.lib_counts.store(((fs.libraries.len() as u64) << 32) | fs.functions.len() as u64, Relaxed);
    *srv.scripting.run_info.lock() = Some((f.name.clone(), a.iter().map(|x| x.to_vec()).collect()));
    unsafe {
        sandbox::push_function(l, f.lua_ref);
        call_function(ctx, l, prep, &name, &keys, &args, false);
        lua::pop(l, 1);
    }
}

fn fcall(ctx: &mut Ctx, a: Args) {
    fcall_generic(ctx, a, false)
}
fn fcall_ro(ctx: &mut Ctx, a: Args) {
    fcall_generic(ctx, a, true)
}

// ---- DUMP / RESTORE -------------------------------------------------------------------------

const RDB_OPCODE_FUNCTION2: u8 = 245;
const RDB_VERSION: u16 = 10;

fn function_dump(ctx: &mut Ctx, _a: Args) {
    let fs = ctx.srv.scripting.funcs.lock();
    let mut p = Vec::new();
    for lib in fs.libraries.values() {
        p.push(RDB_OPCODE_FUNCTION2);
        // rdbSaveRawString with rdbcompression on (the default): LZF when it saves space.
        ferrocache_persistence::rdb::encode::write_string(&mut p, &lib.code, true);
    }
    p.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = ferrocache_persistence::rdb::crc64::crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    ctx.out.bulk(&p);
}

/// addReplySubcommandSyntaxError.
fn subcommand_syntax_error(ctx: &mut Ctx, a: Args) {
    ctx.out.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(&a[1][..a[1].len().min(128)]),
        String::from_utf8_lossy(&a[0]).to_ascii_uppercase()
    ))
}

fn function_restore(ctx: &mut Ctx, a: Args) {
    if a.len() > 4 {
        return subcommand_syntax_error(ctx, a);
    }
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let mut policy = Policy::Append;
    if a.len() == 4 {
        policy = if eq_ic(&a[3], "append") {
            Policy::Append
        } else if eq_ic(&a[3], "replace") {
            Policy::Replace
        } else if eq_ic(&a[3], "flush") {
            Policy::Flush
        } else {
            return ctx.out.error("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.");
        };
    }
    let data = &a[2];
    // verifyDumpPayload: trailing version (2 bytes LE) + CRC64 (8 bytes LE).
    if data.len() < 10 {
        return ctx.out.error("ERR DUMP payload version or checksum are wrong");
    }
    let footer = &data[data.len() - 10..];
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..10].try_into().unwrap());
    if ver > RDB_VERSION || (crc != 0 && ferrocache_persistence::rdb::crc64::crc64(0, &data[..data.len() - 8]) != crc) {
        return ctx.out.error("ERR DUMP payload version or checksum are wrong");
    }
    let body = &data[..data.len() - 10];
    let mut codes: Vec<Vec<u8>> = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let t = body[pos];
        pos += 1;
        if t != RDB_OPCODE_FUNCTION2 {
            return ctx.out.error("ERR given type is not a function");
        }
        let mut cur = std::io::Cursor::new(&body[pos..]);
        let Ok(code) = ferrocache_persistence::rdb::decode::read_string(&mut cur) else {
            return ctx.out.error("ERR failed loading the given functions payload");
        };
        pos += cur.position() as usize;
        codes.push(code);
    }
    let srv = ctx.srv.clone();
    let mut fs = srv.scripting.funcs.lock();
    // Load into a fresh context, then merge per policy (functionsLibCtxSwapWithCurrent / join).
    let mut fresh = FuncState { vm: fs.vm.take(), ..Default::default() };
    let mut err: Option<String> = None;
    for code in &codes {
        if let Err(e) = create_library(&mut fresh, code, false, 0) {
            err = Some(e);
            break;
        }
    }
    let finish = |fs: &mut FuncState, fresh: &mut FuncState| {
        fs.vm = fresh.vm.take();
    };
    if let Some(e) = err {
        drop_libs(&mut fresh);
        finish(&mut fs, &mut fresh);
        return ctx.out.error(&format!("ERR {}", e));
    }
    match policy {
        Policy::Flush => {
            drop_libs(&mut fs);
            fs.libraries = std::mem::take(&mut fresh.libraries);
            fs.functions = std::mem::take(&mut fresh.functions);
        }
        Policy::Append | Policy::Replace => {
            // libraryJoin: check collisions first.
            let mut old_to_remove: Vec<Vec<u8>> = Vec::new();
            for (name, lib) in &fresh.libraries {
                if fs.libraries.contains_key(name) {
                    if policy == Policy::Append {
                        let e = format!("ERR Library {} already exists", String::from_utf8_lossy(name));
                        drop_libs(&mut fresh);
                        finish(&mut fs, &mut fresh);
                        return ctx.out.error(&e);
                    }
                    old_to_remove.push(name.clone());
                }
                let _ = lib;
            }
            // Function collisions against libraries that stay.
            for lib in fresh.libraries.values() {
                for f in lib.functions.keys() {
                    if let Some(owner) = fs.functions.get(&fkey(f)) {
                        if !old_to_remove.contains(owner) {
                            let e = format!("ERR Function {} already exists", String::from_utf8_lossy(f));
                            drop_libs(&mut fresh);
                            finish(&mut fs, &mut fresh);
                            return ctx.out.error(&e);
                        }
                    }
                }
            }
            let l = fresh.vm.as_ref().map(|v| v.0);
            for name in old_to_remove {
                if let Some(old) = fs.libraries.remove(&name) {
                    for f in old.functions.values() {
                        fs.functions.remove(&fkey(&f.name));
                        if let Some(l) = l {
                            unsafe { sandbox::unref(l, f.lua_ref) };
                        }
                    }
                }
            }
            for (name, lib) in std::mem::take(&mut fresh.libraries) {
                for f in lib.functions.keys() {
                    fs.functions.insert(fkey(f), name.clone());
                }
                fs.libraries.insert(name, lib);
            }
        }
    }
    finish(&mut fs, &mut fresh);
    ctx.db().fx.dirty += 1;
    ctx.out.ok();
}

fn drop_libs(fs: &mut FuncState) {
    let l = fs.vm.as_ref().map(|v| v.0);
    for lib in fs.libraries.values() {
        for f in lib.functions.values() {
            if let Some(l) = l {
                unsafe { sandbox::unref(l, f.lua_ref) };
            }
        }
    }
    fs.libraries.clear();
    fs.functions.clear();
}

/// All libraries' code, for RDB persistence (aux "functions" / FUNCTION2 opcodes).
pub fn library_codes(srv: &Node) -> Vec<Vec<u8>> {
    srv.scripting.funcs.lock().libraries.values().map(|l| l.code.clone()).collect()
}

/// Load a library (RDB loading). Replaces an existing one with the same name.
pub fn load_library(srv: &Node, code: &[u8]) -> Result<(), String> {
    let mut fs = srv.scripting.funcs.lock();
    create_library(&mut fs, code, true, 0).map(|_| ())
}
