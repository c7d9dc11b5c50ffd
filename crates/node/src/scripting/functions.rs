//! Functions: the libraries FUNCTION LOAD / DELETE / FLUSH / LIST / STATS / DUMP / RESTORE work
//! on, running FCALL and FCALL_RO, and the library hooks RDB persistence uses.

use super::eval::feed_monitors_first;
use super::run::{call_function, prepare};
use super::{fkey, verify_name, FuncState, FunctionInfo, Library, LoadCtx, FLAG_NAMES, LOAD};
use crate::lua::{self, sandbox, Vm};
use crate::node::Node;
use crate::util::parse_i64;
use crate::Ctx;
use ferrocache_protocol::resp::Args;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::*;

// -------------------------------------------------------------------------------------------
// Functions
// -------------------------------------------------------------------------------------------

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

/// FUNCTION LOAD: create (or with `replace` replace) the library `code` declares. Returns its
/// name or the error text (without its "ERR " prefix).
pub fn function_load(srv: &Node, code: &[u8], replace: bool) -> Result<Vec<u8>, String> {
    let mut fs = srv.scripting.funcs.lock();
    create_library(&mut fs, code, replace, 500)
}

/// FUNCTION DELETE: false when there is no such library.
pub fn function_delete(srv: &Node, name: &[u8]) -> bool {
    let mut fs = srv.scripting.funcs.lock();
    let Some(lib) = fs.libraries.remove(name) else { return false };
    let l = fs.vm.as_ref().map(|v| v.0);
    for f in lib.functions.values() {
        fs.functions.remove(&fkey(&f.name));
        if let Some(l) = l {
            unsafe { sandbox::unref(l, f.lua_ref) };
        }
    }
    true
}

/// FUNCTION FLUSH: drop every library and the functions interpreter.
pub fn function_flush(srv: &Node) {
    let mut fs = srv.scripting.funcs.lock();
    fs.libraries.clear();
    fs.functions.clear();
    fs.vm = None;
}

/// One library, as FUNCTION LIST shows it.
pub struct LibraryInfo {
    pub name: Vec<u8>,
    pub functions: Vec<FunctionEntry>,
    /// The library's code (WITHCODE).
    pub code: Option<Vec<u8>>,
}

/// One function of a library, as FUNCTION LIST shows it.
pub struct FunctionEntry {
    pub name: Vec<u8>,
    pub description: Option<Vec<u8>>,
    /// The declared flags' names, in Redis's order.
    pub flags: Vec<&'static str>,
}

/// FUNCTION LIST: the libraries whose name matches `pattern` (all without one), in name order,
/// with their code when `with_code`.
pub fn function_list(srv: &Node, pattern: Option<&[u8]>, with_code: bool) -> Vec<LibraryInfo> {
    let fs = srv.scripting.funcs.lock();
    fs.libraries
        .values()
        .filter(|l| pattern.is_none_or(|p| ferrocache_engine::glob::glob_match(p, &l.name, false)))
        .map(|lib| LibraryInfo {
            name: lib.name.clone(),
            functions: lib
                .functions
                .values()
                .map(|f| FunctionEntry {
                    name: f.name.clone(),
                    description: f.desc.clone(),
                    flags: FLAG_NAMES.iter().filter(|(v, _)| f.flags & v != 0).map(|(_, n)| *n).collect(),
                })
                .collect(),
            code: with_code.then(|| lib.code.clone()),
        })
        .collect()
}

/// What FUNCTION STATS shows.
pub struct FunctionStats {
    /// The running function, if one runs.
    pub running: Option<RunningFunction>,
    pub libraries_count: i64,
    pub functions_count: i64,
}

/// The running function: its name, the FCALL command and how long it has run.
pub struct RunningFunction {
    pub name: Vec<u8>,
    pub command: Vec<Vec<u8>>,
    pub duration_ms: i64,
}

/// FUNCTION STATS. None while an EVAL script runs (the caller replies BUSY).
pub fn function_stats(srv: &Node) -> Option<FunctionStats> {
    let st = &srv.scripting;
    if st.running.load(SeqCst) && st.run_is_eval.load(SeqCst) {
        return None;
    }
    let info = st.run_info.lock().clone();
    let (nlib, nfun) = {
        // The functions mutex is held by a running function: read counts without blocking.
        match st.funcs.try_lock() {
            Some(fs) => (fs.libraries.len(), fs.functions.len()),
            None => (usize::MAX, usize::MAX),
        }
    };
    let running = match info {
        Some((name, command)) if st.running.load(SeqCst) => Some(RunningFunction {
            name,
            command,
            duration_ms: crate::node::now_ms().saturating_sub(st.run_start_ms.load(SeqCst)) as i64,
        }),
        _ => None,
    };
    Some(FunctionStats {
        running,
        libraries_count: if nlib == usize::MAX { st.lib_counts.load(Relaxed) as i64 >> 32 } else { nlib as i64 },
        functions_count: if nfun == usize::MAX {
            st.lib_counts.load(Relaxed) as i64 & 0xffff_ffff
        } else {
            nfun as i64
        },
    })
}

/// FCALL / FCALL_RO (`ro`): finds the function, checks the arguments, runs it and writes the
/// reply.
pub fn fcall(ctx: &mut Ctx, a: Args, ro: bool) {
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

// ---- DUMP / RESTORE -------------------------------------------------------------------------

const RDB_OPCODE_FUNCTION2: u8 = 245;
const RDB_VERSION: u16 = 10;

/// FUNCTION DUMP: the libraries as a payload FUNCTION RESTORE takes.
pub fn function_dump(srv: &Node) -> Vec<u8> {
    let fs = srv.scripting.funcs.lock();
    let mut p = Vec::new();
    for lib in fs.libraries.values() {
        p.push(RDB_OPCODE_FUNCTION2);
        // rdbSaveRawString with rdbcompression on (the default): LZF when it saves space.
        ferrocache_persistence::rdb::encode::write_string(&mut p, &lib.code, true);
    }
    p.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = ferrocache_persistence::rdb::crc64::crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// FUNCTION RESTORE's policy for libraries that exist already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    /// Add the payload's libraries; a name collision fails (the default).
    Append,
    /// Add them, replacing libraries of the same name.
    Replace,
    /// Delete all libraries first.
    Flush,
}

/// FUNCTION RESTORE: load a FUNCTION DUMP payload under `policy`. The error text is returned
/// without its "ERR " prefix.
pub fn function_restore(srv: &Node, data: &[u8], policy: RestorePolicy) -> Result<(), String> {
    // verifyDumpPayload: trailing version (2 bytes LE) + CRC64 (8 bytes LE).
    if data.len() < 10 {
        return Err("DUMP payload version or checksum are wrong".into());
    }
    let footer = &data[data.len() - 10..];
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..10].try_into().unwrap());
    if ver > RDB_VERSION || (crc != 0 && ferrocache_persistence::rdb::crc64::crc64(0, &data[..data.len() - 8]) != crc) {
        return Err("DUMP payload version or checksum are wrong".into());
    }
    let body = &data[..data.len() - 10];
    let mut codes: Vec<Vec<u8>> = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let t = body[pos];
        pos += 1;
        if t != RDB_OPCODE_FUNCTION2 {
            return Err("given type is not a function".into());
        }
        let mut cur = std::io::Cursor::new(&body[pos..]);
        let Ok(code) = ferrocache_persistence::rdb::decode::read_string(&mut cur) else {
            return Err("failed loading the given functions payload".into());
        };
        pos += cur.position() as usize;
        codes.push(code);
    }
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
        return Err(e);
    }
    match policy {
        RestorePolicy::Flush => {
            drop_libs(&mut fs);
            fs.libraries = std::mem::take(&mut fresh.libraries);
            fs.functions = std::mem::take(&mut fresh.functions);
        }
        RestorePolicy::Append | RestorePolicy::Replace => {
            // libraryJoin: check collisions first.
            let mut old_to_remove: Vec<Vec<u8>> = Vec::new();
            for (name, lib) in &fresh.libraries {
                if fs.libraries.contains_key(name) {
                    if policy == RestorePolicy::Append {
                        let e = format!("Library {} already exists", String::from_utf8_lossy(name));
                        drop_libs(&mut fresh);
                        finish(&mut fs, &mut fresh);
                        return Err(e);
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
                            let e = format!("Function {} already exists", String::from_utf8_lossy(f));
                            drop_libs(&mut fresh);
                            finish(&mut fs, &mut fresh);
                            return Err(e);
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
    Ok(())
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
