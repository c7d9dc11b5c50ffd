//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO, SCRIPT * and
//! FUNCTION *: the command table, argument parsing and replies over the node's scripting engine
//! (`ferrocache_node::scripting`), which keeps the script cache, the function libraries and
//! the run / kill machinery. Running a script (`scripting::eval`, `scripting::fcall`) stays
//! whole in the node: its checks are tied to the run.

use ferrocache_node::scripting::{self, FunctionStats, KillOutcome, LibraryInfo, RestorePolicy};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::{eq_ic, parse_i64};
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::{Args, ReplyBuf};

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

const BUSY_SCRIPT_KILL: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION_KILL: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

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

/// addReplySubcommandSyntaxError.
fn subcommand_syntax_error(ctx: &mut Ctx, a: Args) {
    ctx.out.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(&a[1][..a[1].len().min(128)]),
        String::from_utf8_lossy(&a[0]).to_ascii_uppercase()
    ))
}

/// The SCRIPT FLUSH / FUNCTION FLUSH mode argument: none, SYNC or ASYNC (both flush now).
fn flush_mode_ok(a: Args) -> bool {
    a.len() == 2 || (a.len() == 3 && (eq_ic(&a[2], "sync") || eq_ic(&a[2], "async")))
}

/// SCRIPT KILL / FUNCTION KILL (`is_eval`: SCRIPT KILL).
fn kill_reply(ctx: &mut Ctx, is_eval: bool) {
    match scripting::kill(ctx.srv, is_eval) {
        KillOutcome::Killed => ctx.out.ok(),
        KillOutcome::NotBusy => ctx.out.error("NOTBUSY No scripts in execution right now."),
        KillOutcome::Unkillable => ctx.out.error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        ),
        KillOutcome::OtherKind if is_eval => ctx.out.error(BUSY_FUNCTION_KILL),
        KillOutcome::OtherKind => ctx.out.error(BUSY_SCRIPT_KILL),
    }
}

// -------------------------------------------------------------------------------------------
// EVAL family and SCRIPT *
// -------------------------------------------------------------------------------------------

fn eval(ctx: &mut Ctx, a: Args) {
    scripting::eval(ctx, a, false, false)
}
fn evalsha(ctx: &mut Ctx, a: Args) {
    scripting::eval(ctx, a, true, false)
}
fn eval_ro(ctx: &mut Ctx, a: Args) {
    scripting::eval(ctx, a, false, true)
}
fn evalsha_ro(ctx: &mut Ctx, a: Args) {
    scripting::eval(ctx, a, true, true)
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

fn script_flush(ctx: &mut Ctx, a: Args) {
    if !flush_mode_ok(a) {
        return ctx.out.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    scripting::script_flush(ctx.srv);
    ctx.out.ok();
}

fn script_exists(ctx: &mut Ctx, a: Args) {
    let shas: Vec<&[u8]> = a.iter().skip(2).collect();
    let found = scripting::script_exists(ctx.srv, &shas);
    ctx.out.array(found.len());
    for f in found {
        ctx.out.int(f as i64);
    }
}

fn script_load(ctx: &mut Ctx, a: Args) {
    match scripting::script_load(ctx.srv, &a[2]) {
        Ok(sha) => ctx.out.bulk(sha.as_bytes()),
        Err(e) => ctx.out.error(&format!("ERR {}", e)),
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

fn script_kill(ctx: &mut Ctx, _a: Args) {
    kill_reply(ctx, true)
}

// -------------------------------------------------------------------------------------------
// FCALL, FCALL_RO and FUNCTION *
// -------------------------------------------------------------------------------------------

fn fcall(ctx: &mut Ctx, a: Args) {
    scripting::fcall(ctx, a, false)
}
fn fcall_ro(ctx: &mut Ctx, a: Args) {
    scripting::fcall(ctx, a, true)
}

fn function_kill(ctx: &mut Ctx, _a: Args) {
    kill_reply(ctx, false)
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
    match scripting::function_load(ctx.srv, &a[i], replace) {
        Ok(name) => {
            ctx.out.bulk(&name);
            ctx.db().fx.dirty += 1;
        }
        Err(e) => ctx.out.error(&format!("ERR {}", e)),
    }
}

fn function_delete(ctx: &mut Ctx, a: Args) {
    if !scripting::function_delete(ctx.srv, &a[2]) {
        return ctx.out.error("ERR Library not found");
    }
    ctx.db().fx.dirty += 1;
    ctx.out.ok();
}

fn function_flush(ctx: &mut Ctx, a: Args) {
    if a.len() > 3 {
        return subcommand_syntax_error(ctx, a);
    }
    if !flush_mode_ok(a) {
        return ctx.out.error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    }
    scripting::function_flush(ctx.srv);
    ctx.db().fx.dirty += 1;
    ctx.out.ok();
}

fn function_list(ctx: &mut Ctx, a: Args) {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
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
            pattern = Some(&a[i + 1]);
            i += 2;
            continue;
        }
        return ctx.out.error(&format!("ERR Unknown argument {}", String::from_utf8_lossy(&a[i])));
    }
    let libs = scripting::function_list(ctx.srv, pattern, with_code);
    write_libraries(ctx.out, &libs);
}

fn write_libraries(out: &mut ReplyBuf, libs: &[LibraryInfo]) {
    out.array(libs.len());
    for lib in libs {
        out.map(if lib.code.is_some() { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(&lib.name);
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in &lib.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(&f.name);
            out.bulk(b"description");
            match &f.description {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            out.set(f.flags.len());
            for name in &f.flags {
                out.simple(name);
            }
        }
        if let Some(code) = &lib.code {
            out.bulk(b"library_code");
            out.bulk(code);
        }
    }
}

fn function_stats(ctx: &mut Ctx, _a: Args) {
    let Some(stats) = scripting::function_stats(ctx.srv) else { return ctx.out.error(BUSY_SCRIPT_KILL) };
    write_function_stats(ctx.out, &stats);
}

fn write_function_stats(out: &mut ReplyBuf, st: &FunctionStats) {
    out.map(2);
    out.bulk(b"running_script");
    match &st.running {
        Some(r) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(&r.name);
            out.bulk(b"command");
            out.array(r.command.len());
            for x in &r.command {
                out.bulk(x);
            }
            out.bulk(b"duration_ms");
            out.int(r.duration_ms);
        }
        None => out.null(),
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(st.libraries_count);
    out.bulk(b"functions_count");
    out.int(st.functions_count);
}

fn function_dump(ctx: &mut Ctx, _a: Args) {
    let payload = scripting::function_dump(ctx.srv);
    ctx.out.bulk(&payload);
}

fn function_restore(ctx: &mut Ctx, a: Args) {
    if a.len() > 4 {
        return subcommand_syntax_error(ctx, a);
    }
    let mut policy = RestorePolicy::Append;
    if a.len() == 4 {
        policy = if eq_ic(&a[3], "append") {
            RestorePolicy::Append
        } else if eq_ic(&a[3], "replace") {
            RestorePolicy::Replace
        } else if eq_ic(&a[3], "flush") {
            RestorePolicy::Flush
        } else {
            return ctx.out.error("ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.");
        };
    }
    match scripting::function_restore(ctx.srv, &a[2], policy) {
        Ok(()) => {
            ctx.db().fx.dirty += 1;
            ctx.out.ok();
        }
        Err(e) => ctx.out.error(&format!("ERR {}", e)),
    }
}
