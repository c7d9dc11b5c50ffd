//! SAVE, BGSAVE, BGREWRITEAOF and SHUTDOWN: argument parsing and replies over the node's
//! persistence (`ferrocache_node::persistence`, `aof`) and shutdown sequence (`shutdown`),
//! which do the work and say what happened.

use ferrocache_node::aof::{self, RewriteOutcome};
use ferrocache_node::client::Then;
use ferrocache_node::persistence::{self, BgsaveOutcome, SaveOutcome};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::{eq_ic, ERR_SYNTAX};
use ferrocache_node::{scripting, shutdown, Ctx};
use ferrocache_protocol::resp::Args;
use std::sync::atomic::Ordering::Relaxed;

const G: &str = "server";

pub static COMMANDS: &[Command] = &[
    Command::new("save", 1, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), save).group(G),
    Command::new("bgsave", -1, ADMIN | NOSCRIPT, (0, 0, 0), bgsave).group(G),
    Command::new("bgrewriteaof", 1, ADMIN | NOSCRIPT, (0, 0, 0), bgrewriteaof).group(G),
    Command::new("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY, (0, 0, 0), shutdown)
        .group(G),
];

const BGSAVE_BUSY: &str = "ERR Background save already in progress";

fn save(ctx: &mut Ctx, _a: Args) {
    match persistence::save_now(ctx.srv) {
        SaveOutcome::Saved => ctx.out.ok(),
        SaveOutcome::Busy => ctx.out.error(BGSAVE_BUSY),
        SaveOutcome::Failed => ctx.out.error("ERR"),
    }
}

fn bgsave(ctx: &mut Ctx, a: Args) {
    let schedule = match a.len() {
        1 => false,
        2 if eq_ic(&a[1], "schedule") => true,
        _ => return ctx.out.error(ERR_SYNTAX),
    };
    match persistence::bgsave_request(ctx.srv, schedule, ctx.client.in_exec) {
        BgsaveOutcome::Started => ctx.out.simple("Background saving started"),
        BgsaveOutcome::Scheduled => ctx.out.simple("Background saving scheduled"),
        BgsaveOutcome::Busy => ctx.out.error(BGSAVE_BUSY),
        BgsaveOutcome::OtherChild => ctx.out.error("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible."),
    }
}

fn bgrewriteaof(ctx: &mut Ctx, _a: Args) {
    match aof::rewrite_request(ctx.srv, ctx.client.in_exec) {
        RewriteOutcome::Started => ctx.out.simple("Background append only file rewriting started"),
        RewriteOutcome::Scheduled => ctx.out.simple("Background append only file rewriting scheduled"),
        RewriteOutcome::Busy => ctx.out.error("ERR Background append only file rewriting already in progress"),
        RewriteOutcome::Failed => ctx
            .out
            .error("ERR Can't execute an AOF background rewriting. Please check the server logs for more information."),
    }
}

fn shutdown(ctx: &mut Ctx, a: Args) {
    let mut flags = 0u8;
    let mut abort_it = false;
    for o in a.iter().skip(1) {
        if eq_ic(o, "nosave") {
            flags |= shutdown::NOSAVE;
        } else if eq_ic(o, "save") {
            flags |= shutdown::SAVE;
        } else if eq_ic(o, "now") {
            flags |= shutdown::NOW;
        } else if eq_ic(o, "force") {
            flags |= shutdown::FORCE;
        } else if eq_ic(o, "abort") {
            abort_it = true;
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
    }
    if (abort_it && flags != 0) || (flags & shutdown::NOSAVE != 0 && flags & shutdown::SAVE != 0) {
        return ctx.out.error(ERR_SYNTAX);
    }
    if abort_it {
        return if shutdown::abort(ctx.srv) { ctx.out.ok() } else { ctx.out.error("ERR No shutdown in progress.") };
    }
    if flags & shutdown::NOW == 0 && (ctx.client.in_script || ctx.client.in_exec) {
        return ctx.out.error("ERR SHUTDOWN without NOW or ABORT isn't allowed for DENY BLOCKING client");
    }
    // A script that ran past busy-reply-threshold: only SHUTDOWN NOSAVE gets through (the
    // dataset may be half-modified by it).
    if flags & shutdown::NOSAVE == 0 {
        if let Some(e) = scripting::busy_reply(ctx.srv) {
            return ctx.out.error(e);
        }
    }
    match shutdown::prepare(ctx.srv, flags) {
        shutdown::Outcome::Exit => ctx.after_reply(Then::Close),
        shutdown::Outcome::Waiting => {
            ctx.after_reply(Then::ShutdownWait(ctx.srv.shutdown_control().cancels.load(Relaxed)))
        }
        shutdown::Outcome::Failed => ctx.out.error(shutdown::SHUTDOWN_FAILED),
    }
}
