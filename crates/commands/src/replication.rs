//! Replication commands: REPLICAOF/SLAVEOF, ROLE, REPLCONF, PSYNC/SYNC, WAIT, FAILOVER. They
//! parse their arguments and render what the node's replication operations
//! (`ferrocache_node::replication`) return; the state machine, the feed and the link live there.

use ferrocache_node::client::Then;
use ferrocache_node::error::CommandError;
use ferrocache_node::node::now_ms;
use ferrocache_node::replication::{self as repl, FailoverRequest, ReplicaofOutcome, Role};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::{eq_ic, int_arg, parse_i64, ERR_NOT_INT, ERR_SYNTAX};
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::Args;
use std::sync::atomic::Ordering::Relaxed;

const G: &str = "server";

pub static COMMANDS: &[Command] = &[
    Command::new("replicaof", 3, ADMIN | NOSCRIPT | STALE, (0, 0, 0), replicaof).group(G),
    Command::new("slaveof", 3, ADMIN | NOSCRIPT | STALE, (0, 0, 0), replicaof).group(G),
    Command::new("role", 1, NOSCRIPT | LOADING | STALE | FAST, (0, 0, 0), role).group(G),
    Command::new("replconf", -1, ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, (0, 0, 0), replconf).group(G),
    Command::new("psync", -3, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), psync).group(G),
    Command::new("sync", 1, ADMIN | NOSCRIPT | NO_MULTI, (0, 0, 0), sync).group(G),
    Command::new("failover", -1, ADMIN | NOSCRIPT | STALE, (0, 0, 0), failover).group(G),
];

fn replicaof(ctx: &mut Ctx, a: Args) {
    let srv = ctx.srv;
    if srv.cluster().enabled {
        return ctx.out.error("ERR REPLICAOF not allowed in cluster mode.");
    }
    if srv.repl().failing_over() {
        return ctx.out.error("ERR REPLICAOF not allowed while failing over.");
    }
    if eq_ic(&a[1], "no") && eq_ic(&a[2], "one") {
        repl::replicaof_no_one(srv);
        return ctx.out.ok();
    }
    let host = String::from_utf8_lossy(&a[1]).into_owned();
    let port = match parse_i64(&a[2]) {
        Some(p) if (0..=65535).contains(&p) => p as u16,
        Some(_) => return ctx.out.error("ERR Invalid master port"),
        None => return ctx.out.error(ERR_NOT_INT),
    };
    match repl::replicaof(srv, host, port) {
        ReplicaofOutcome::Started => ctx.out.ok(),
        ReplicaofOutcome::AlreadyConnected => ctx.out.simple("OK Already connected to specified master"),
    }
}

fn role(ctx: &mut Ctx, _a: Args) {
    let out = &mut *ctx.out;
    match repl::role(ctx.srv) {
        Role::Replica { host, port, state, offset } => {
            out.array(5);
            out.bulk(b"slave");
            out.bulk(host.as_bytes());
            out.int(port as i64);
            out.bulk(state.as_bytes());
            out.int(offset);
        }
        Role::Master { offset, replicas } => {
            out.array(3);
            out.bulk(b"master");
            out.int(offset as i64);
            out.array(replicas.len());
            for (ip, port, acked) in replicas {
                out.array(3);
                out.bulk(ip.as_bytes());
                out.bulk(port.to_string().as_bytes());
                out.bulk(acked.to_string().as_bytes());
            }
        }
    }
}

/// REPLCONF from a replica being set up (its port, address, capabilities); ACK/GETACK are
/// handled on the replication connections themselves and get no reply here.
fn replconf(ctx: &mut Ctx, a: Args) {
    if a.len().is_multiple_of(2) {
        return ctx.out.error(ERR_SYNTAX);
    }
    let mut i = 1;
    while i < a.len() {
        let opt = &a[i];
        let val = &a[i + 1];
        if eq_ic(opt, "listening-port") {
            match std::str::from_utf8(val).ok().and_then(|s| s.parse::<u16>().ok()) {
                Some(p) => ctx.client.repl.listening_port = p,
                None => return ctx.out.error(ERR_NOT_INT),
            }
        } else if eq_ic(opt, "ip-address") {
            ctx.client.repl.ip = Some(String::from_utf8_lossy(val).into_owned());
        } else if eq_ic(opt, "capa") {
            if eq_ic(val, "eof") {
                ctx.client.repl.capa_eof = true;
            } else if eq_ic(val, "psync2") {
                ctx.client.repl.capa_psync2 = true;
            }
        } else if eq_ic(opt, "ack") || eq_ic(opt, "fack") || eq_ic(opt, "getack") {
            // ACK: only meaningful from an attached replica (handled by its feeder); GETACK:
            // handled by the link to our primary. From anyone else: nothing, no reply.
            return;
        } else if eq_ic(opt, "rdb-only") || eq_ic(opt, "rdb-filter-only") {
        } else {
            return ctx.out.error(&format!("ERR Unrecognized REPLCONF option: {}", String::from_utf8_lossy(opt)));
        }
        i += 2;
    }
    ctx.out.ok();
}

/// The connection becomes a replica's: the server hands it to the feed after this reply.
fn start_sync(ctx: &mut Ctx, replid: String, offset: i64, old: bool) {
    if let Some(e) = repl::psync_refusal(ctx.srv, ctx.client) {
        return ctx.out.error(e);
    }
    ctx.after_reply(Then::Handover(replid, offset, old));
}

fn psync(ctx: &mut Ctx, a: Args) {
    if a.len() > 3 && eq_ic(&a[3], "failover") {
        if let Err(e) = repl::accept_failover_psync(ctx.srv, &a[1], ctx.client) {
            return ctx.fail(&e);
        }
    }
    let replid = String::from_utf8_lossy(&a[1]).into_owned();
    let Some(offset) = parse_i64(&a[2]) else { return ctx.out.error(ERR_NOT_INT) };
    start_sync(ctx, replid, offset, false)
}

fn sync(ctx: &mut Ctx, _a: Args) {
    start_sync(ctx, "?".into(), -1, true)
}

/// WAIT numreplicas timeout (registered with the keyspace commands, as Redis groups it).
pub fn wait(ctx: &mut Ctx, a: Args) {
    let srv = ctx.srv;
    if srv.repl().is_replica.load(Relaxed) {
        return ctx.out.error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let Some(n) = int_arg(ctx.out, &a[1]) else { return };
    let Some(t) = int_arg(ctx.out, &a[2]) else { return };
    if t < 0 {
        return ctx.out.error("ERR timeout is negative");
    }
    let off = ctx.client.repl.woff;
    let acked = srv.repl().acked(off);
    if acked as i64 >= n || ctx.client.in_exec {
        return ctx.out.int(acked as i64);
    }
    srv.repl().request_acks();
    let deadline = if t == 0 { 0 } else { now_ms() + t as u64 };
    ctx.after_reply(Then::ReplWait { offset: off, replicas: n.max(0) as usize, deadline });
}

/// FAILOVER's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FailoverCommand {
    Abort,
    Start(FailoverRequest),
}

impl FailoverCommand {
    /// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms], each option at most once (Redis's
    /// failoverCommand: ABORT only alone).
    fn parse(a: Args) -> Result<Self, CommandError> {
        if a.len() == 2 && eq_ic(&a[1], "abort") {
            return Ok(FailoverCommand::Abort);
        }
        let mut req = FailoverRequest::default();
        let mut j = 1;
        while j < a.len() {
            if eq_ic(&a[j], "timeout") && j + 1 < a.len() && req.timeout == 0 {
                let t = parse_i64(&a[j + 1]).ok_or(CommandError::NotInt)?;
                if t <= 0 {
                    return Err("ERR FAILOVER timeout must be greater than 0".into());
                }
                req.timeout = t;
                j += 1;
            } else if eq_ic(&a[j], "to") && j + 2 < a.len() && req.to.is_none() {
                let port = parse_i64(&a[j + 2]).ok_or(CommandError::NotInt)?;
                req.to = Some((String::from_utf8_lossy(&a[j + 1]).into_owned(), port));
                j += 2;
            } else if eq_ic(&a[j], "force") && !req.force {
                req.force = true;
            } else {
                return Err(CommandError::Syntax);
            }
            j += 1;
        }
        Ok(FailoverCommand::Start(req))
    }
}

fn failover(ctx: &mut Ctx, a: Args) {
    let done = match FailoverCommand::parse(a) {
        Ok(FailoverCommand::Abort) => repl::failover_abort(ctx.srv),
        Ok(FailoverCommand::Start(req)) => repl::failover_start(ctx.srv, req),
        Err(e) => Err(e),
    };
    match done {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_protocol::resp::OwnedArgs;

    fn parse(s: &str) -> Result<FailoverCommand, String> {
        let o = OwnedArgs::from_slices(&s.split(' ').collect::<Vec<_>>());
        FailoverCommand::parse(o.args()).map_err(|e| e.to_string())
    }

    fn start(to: Option<(&str, i64)>, force: bool, timeout: i64) -> Result<FailoverCommand, String> {
        Ok(FailoverCommand::Start(FailoverRequest { to: to.map(|(h, p)| (h.to_string(), p)), force, timeout }))
    }

    #[test]
    fn options_in_any_order() {
        assert_eq!(parse("FAILOVER"), start(None, false, 0));
        assert_eq!(parse("failover abort"), Ok(FailoverCommand::Abort));
        assert_eq!(parse("FAILOVER TO h 7000"), start(Some(("h", 7000)), false, 0));
        assert_eq!(parse("FAILOVER FORCE TIMEOUT 50 TO h 7000"), start(Some(("h", 7000)), true, 50));
        assert_eq!(parse("FAILOVER timeout 10 to h 1 force"), start(Some(("h", 1)), true, 10));
    }

    #[test]
    fn errors_as_redis() {
        assert_eq!(parse("FAILOVER TIMEOUT 0"), Err("ERR FAILOVER timeout must be greater than 0".into()));
        assert_eq!(parse("FAILOVER TIMEOUT x"), Err(ERR_NOT_INT.into()));
        assert_eq!(parse("FAILOVER TO h p"), Err(ERR_NOT_INT.into()));
        // An option given twice, ABORT with anything else, a missing value: syntax errors.
        assert_eq!(parse("FAILOVER FORCE FORCE"), Err(ERR_SYNTAX.into()));
        assert_eq!(parse("FAILOVER TIMEOUT 5 TIMEOUT 6"), Err(ERR_SYNTAX.into()));
        assert_eq!(parse("FAILOVER ABORT FORCE"), Err(ERR_SYNTAX.into()));
        assert_eq!(parse("FAILOVER TO h"), Err(ERR_SYNTAX.into()));
        assert_eq!(parse("FAILOVER TIMEOUT"), Err(ERR_SYNTAX.into()));
    }
}
