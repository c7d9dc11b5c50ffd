//! The EVAL family: running EVAL, EVALSHA, EVAL_RO, EVALSHA_RO (shebang flags) and the script
//! cache SCRIPT EXISTS / FLUSH / LOAD work on.

use super::run::{call_function, prepare};
use super::{fkey, sha1_hex, EvalScript, EvalState, FLAG_EVAL_COMPAT_MODE, FLAG_NAMES, FLAG_NO_WRITES};
use crate::lua::{self, basefix, ffi::*, Vm};
use crate::node::Node;
use crate::table::Command;
use crate::util::parse_i64;
use crate::Ctx;
use ferrocache_protocol::resp::Args;

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

/// getCommandFlags for EVAL/EVALSHA/FCALL in cluster routing: a script that declares flags
/// (a `#!lua` shebang, every function) without no-writes is a write command and goes to the
/// slot's master; a script without a shebang keeps EVAL's own flags (not a write), as Redis.
pub fn script_writes(srv: &Node, cmd: &Command, a: Args) -> bool {
    let writes = |flags: u64| flags & FLAG_EVAL_COMPAT_MODE == 0 && flags & FLAG_NO_WRITES == 0;
    match cmd.name {
        "eval" if a.len() > 1 => extract_shebang(&a[1]).is_ok_and(|(f, _)| writes(f)),
        "evalsha" if a.len() > 1 => srv.scripting.eval.try_lock().is_some_and(|st| {
            st.scripts.get(&String::from_utf8_lossy(&a[1]).to_ascii_lowercase()).is_some_and(|s| writes(s.flags))
        }),
        "fcall" if a.len() > 1 => !declares_no_writes(srv, cmd, a),
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

/// luaCreateFunction: compile `body` into the registry as f_<sha>. Returns the sha or the error
/// text (without its "ERR " prefix).
fn create_function(st: &mut EvalState, body: &[u8]) -> Result<String, String> {
    let sha = sha1_hex(body);
    if st.scripts.contains_key(&sha) {
        return Ok(sha);
    }
    let (flags, shebang_len) = extract_shebang(body)?;
    let vm = st.vm.get_or_insert_with(Vm::new_eval);
    let l = vm.0;
    unsafe {
        let code = &body[shebang_len..];
        if basefix::load_chunk(l, code, c"@user_script") != 0 {
            let e = String::from_utf8_lossy(lua::cstr_bytes(l, -1)).into_owned();
            lua::pop(l, 1);
            return Err(format!("Error compiling script (new function): {}", e));
        }
        let f = lua::cstr(&format!("f_{}", sha));
        lua_setfield(l, LUA_REGISTRYINDEX, f.as_ptr());
    }
    st.scripts.insert(sha.clone(), EvalScript { flags });
    Ok(sha)
}

/// EVAL*/FCALL* skip the executor's MONITOR feed and feed it here, so that the script's own
/// commands appear after it (evalCommand, fcallCommandGeneric).
pub(super) fn feed_monitors_first(ctx: &Ctx, a: Args) {
    if ctx.srv.monitors.active() {
        let argv: Vec<&[u8]> = a.iter().collect();
        ctx.srv.feed_monitors(ctx.client.db, &ctx.client.shared.addr, &argv);
    }
}

/// EVAL / EVALSHA (`evalsha`) and their `_RO` forms (`ro`): checks the arguments, loads the
/// script (EVAL) or finds it (EVALSHA), runs it and writes the reply.
pub fn eval(ctx: &mut Ctx, a: Args, evalsha: bool, ro: bool) {
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
        if let Err(e) = create_function(&mut st, &a[1]) {
            return ctx.out.error(&format!("ERR {}", e));
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

// -------------------------------------------------------------------------------------------
// The script cache: SCRIPT FLUSH / EXISTS / LOAD
// -------------------------------------------------------------------------------------------

/// SCRIPT FLUSH: drop every cached script and the eval interpreter.
pub fn script_flush(srv: &Node) {
    let mut st = srv.scripting.eval.lock();
    st.scripts.clear();
    st.vm = None;
}

/// SCRIPT EXISTS: whether each sha is cached (dictFind on the sha as given: the dict is
/// case-insensitive in Redis).
pub fn script_exists(srv: &Node, shas: &[&[u8]]) -> Vec<bool> {
    let st = srv.scripting.eval.lock();
    shas.iter().map(|sha| st.scripts.contains_key(&String::from_utf8_lossy(sha).to_ascii_lowercase())).collect()
}

/// SCRIPT LOAD: compile and cache `body`. Returns its sha or the error text (without its "ERR "
/// prefix).
pub fn script_load(srv: &Node, body: &[u8]) -> Result<String, String> {
    let mut st = srv.scripting.eval.lock();
    create_function(&mut st, body)
}
