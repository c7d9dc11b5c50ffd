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
//!
//! The command table and the handlers (argument parsing, replies) are the commands crate's
//! (`ferrocache_commands::scripting`); they call the functions re-exported here.
//!
//! Layout: this file holds the node-wide state (`Scripting`, the EVAL
//! script cache, the function libraries) and the thread-local run / load contexts; `host` has
//! the `host_*` callbacks the Lua side calls (redis.call dispatch, logging, the kill hook,
//! function registration); `run` runs a script (the checks before, `call_function`, the BUSY
//! wait, SCRIPT / FUNCTION KILL); `eval` has running EVAL / EVALSHA (and `_RO`) and the script
//! cache (SCRIPT EXISTS / FLUSH / LOAD); `functions` has the libraries (FUNCTION LOAD / DELETE /
//! FLUSH / LIST / STATS / DUMP / RESTORE), running FCALL / FCALL_RO and the RDB hooks.

mod eval;
mod functions;
mod host;
mod run;

pub use eval::{declares_no_writes, eval, script_exists, script_flush, script_load, script_writes};
pub use functions::{
    fcall, function_delete, function_dump, function_flush, function_list, function_load, function_restore,
    function_stats, library_codes, load_library, FunctionEntry, FunctionStats, LibraryInfo, RestorePolicy,
    RunningFunction,
};
pub(crate) use host::{
    host_acl_check, host_call, host_in_load, host_in_run, host_load_timed_out, host_log, host_register_function,
    host_set_repl, host_setresp, host_should_kill, host_verbosity,
};
pub use run::{busy_error, busy_reply, kill, lock_shards, wait_not_busy, KillOutcome};

use crate::client::Client;
use crate::lua::Vm;
use crate::node::Node;
use ferrocache_engine::Guards;
use parking_lot::Mutex;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;

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

// -------------------------------------------------------------------------------------------
// Helpers shared by the parts
// -------------------------------------------------------------------------------------------

pub fn sha1_hex(b: &[u8]) -> String {
    sha1_smol::Sha1::from(b).digest().to_string()
}

/// The node-wide functions map's key for a function name.
fn fkey(name: &[u8]) -> Vec<u8> {
    name.to_ascii_lowercase()
}

fn verify_name(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}
