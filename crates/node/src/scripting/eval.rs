//! The EVAL family: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO (shebang flags, the script cache) and
//! SCRIPT DEBUG / EXISTS / FLUSH / HELP / KILL / LOAD.

use super::run::{call_function, kill, prepare};
use super::{fkey, help_reply, sha1_hex, EvalScript, EvalState, FLAG_EVAL_COMPAT_MODE, FLAG_NAMES, FLAG_NO_WRITES};
use crate::lua::{self, basefix, ffi::*, Vm};
use crate::node::Node;
use crate::table::Command;
use crate::util::{eq_ic, parse_i64};
use crate::Ctx;
use ferrocache_protocol::resp::{Args, ReplyBuf};

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
pub(super) fn feed_monitors_first(ctx: &Ctx, a: Args) {
    if ctx.srv.monitors.active() {
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

pub(super) fn eval(ctx: &mut Ctx, a: Args) {
    eval_generic(ctx, a, false, false)
}
pub(super) fn evalsha(ctx: &mut Ctx, a: Args) {
    eval_generic(ctx, a, true, false)
}
pub(super) fn eval_ro(ctx: &mut Ctx, a: Args) {
    eval_generic(ctx, a, false, true)
}
pub(super) fn evalsha_ro(ctx: &mut Ctx, a: Args) {
    eval_generic(ctx, a, true, true)
}

pub(super) fn script_help(ctx: &mut Ctx, _a: Args) {
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

pub(super) fn script_flush(ctx: &mut Ctx, a: Args) {
    if !(a.len() == 2 || (a.len() == 3 && (eq_ic(&a[2], "sync") || eq_ic(&a[2], "async")))) {
        return ctx.out.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    let mut st = ctx.srv.scripting.eval.lock();
    st.scripts.clear();
    st.vm = None;
    ctx.out.ok();
}

pub(super) fn script_exists(ctx: &mut Ctx, a: Args) {
    let st = ctx.srv.scripting.eval.lock();
    ctx.out.array(a.len() - 2);
    for i in 2..a.len() {
        // dictFind on the sha as given (the dict is case-insensitive in Redis).
        let k = String::from_utf8_lossy(&a[i]).to_ascii_lowercase();
        ctx.out.int(st.scripts.contains_key(&k) as i64);
    }
}

pub(super) fn script_load(ctx: &mut Ctx, a: Args) {
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
pub(super) fn script_debug(ctx: &mut Ctx, a: Args) {
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

pub(super) fn script_kill(ctx: &mut Ctx, _a: Args) {
    kill(ctx, true)
}
