//! Functions: FUNCTION LOAD / DELETE / FLUSH / LIST / STATS / KILL / HELP / DUMP / RESTORE,
//! FCALL and FCALL_RO, and the library hooks RDB persistence uses.

use super::eval::feed_monitors_first;
use super::run::{call_function, kill, prepare};
use super::{fkey, help_reply, verify_name, FuncState, FunctionInfo, Library, LoadCtx, FLAG_NAMES, LOAD};
use crate::lua::{self, sandbox, Vm};
use crate::node::Node;
use crate::util::{eq_ic, parse_i64};
use crate::Ctx;
use ferrocache_protocol::resp::{Args, ReplyBuf};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::*;

// -------------------------------------------------------------------------------------------
// Functions
// -------------------------------------------------------------------------------------------

pub(super) fn function_kill(ctx: &mut Ctx, _a: Args) {
    kill(ctx, false)
}

pub(super) fn function_help(ctx: &mut Ctx, _a: Args) {
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

pub(super) fn function_load(ctx: &mut Ctx, a: Args) {
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

pub(super) fn function_delete(ctx: &mut Ctx, a: Args) {
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

pub(super) fn function_flush(ctx: &mut Ctx, a: Args) {
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

pub(super) fn function_list(ctx: &mut Ctx, a: Args) {
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

pub(super) fn function_stats(ctx: &mut Ctx, _a: Args) {
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

pub(super) fn fcall(ctx: &mut Ctx, a: Args) {
    fcall_generic(ctx, a, false)
}
pub(super) fn fcall_ro(ctx: &mut Ctx, a: Args) {
    fcall_generic(ctx, a, true)
}

// ---- DUMP / RESTORE -------------------------------------------------------------------------

const RDB_OPCODE_FUNCTION2: u8 = 245;
const RDB_VERSION: u16 = 10;

pub(super) fn function_dump(ctx: &mut Ctx, _a: Args) {
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

pub(super) fn function_restore(ctx: &mut Ctx, a: Args) {
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
