//! Connection commands: PING, ECHO, QUIT, RESET, SELECT, AUTH, HELLO, CLIENT.

use ferrocache_node::client::{ReplyMode, TrackingInfo};
use ferrocache_node::node::now_ms;
use ferrocache_node::subcommand_required;
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::Args;
use std::sync::atomic::Ordering::Relaxed;

const G: &str = "connection";
const CTXF: u64 = PUBSUB_CONTEXT | STALE | LOADING;

pub static COMMANDS: &[Command] = &[
    // Redis 7.0's PING has neither LOADING nor STALE (ping.json).
    Command::new("ping", -1, FAST | PUBSUB_CONTEXT, (0, 0, 0), ping).group(G),
    Command::new("echo", 2, FAST | STALE | LOADING, (0, 0, 0), echo).group(G),
    Command::new("quit", -1, FAST | NO_AUTH | NOSCRIPT | CTXF | ALLOW_BUSY, (0, 0, 0), quit).group(G),
    Command::new("reset", 1, FAST | NO_AUTH | NOSCRIPT | CTXF | ALLOW_BUSY, (0, 0, 0), reset).group(G),
    Command::new("select", 2, FAST | LOADING | STALE, (0, 0, 0), select).group(G),
    Command::new("auth", -2, FAST | NO_AUTH | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, (0, 0, 0), auth).group(G),
    Command::new("hello", -1, FAST | NO_AUTH | NOSCRIPT | LOADING | STALE | ALLOW_BUSY, (0, 0, 0), hello).group(G),
    Command::new("client", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(CLIENT_SUBS),
];

static CLIENT_SUBS: &[Command] = &[
    Command::new("client|id", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), client_id).group(G),
    Command::new("client|info", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), client_info).group(G),
    Command::new("client|list", -2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), client_list).group(G),
    Command::new("client|kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), client_kill).group(G),
    Command::new("client|setname", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), client_setname).group(G),
    Command::new("client|getname", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), client_getname).group(G),
    Command::new("client|pause", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), client_pause).group(G),
    Command::new("client|unpause", 2, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), client_unpause).group(G),
    Command::new("client|no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), client_no_evict).group(G),
    Command::new("client|reply", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), client_reply).group(G),
    Command::new("client|tracking", -3, NOSCRIPT | LOADING | STALE, (0, 0, 0), client_tracking).group(G),
    Command::new("client|trackinginfo", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), client_trackinginfo).group(G),
    Command::new("client|getredir", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), client_getredir).group(G),
    Command::new("client|caching", 3, NOSCRIPT | LOADING | STALE, (0, 0, 0), client_caching).group(G),
    Command::new("client|unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE, (0, 0, 0), client_unblock).group(G),
    Command::new("client|help", 2, LOADING | STALE, (0, 0, 0), client_help).group(G),
];

fn ping(ctx: &mut Ctx, a: Args) {
    if a.len() > 2 {
        return ctx.wrong_arity();
    }
    // memcached metadata riding in our primary's stream or the AOF (memcached::MC_META).
    if a.len() == 2
        && (ctx.client.repl.is_master || ctx.client.id == u64::MAX)
        && ferrocache_node::memcached::apply_meta(ctx, &a[1])
    {
        return ctx.out.bulk(&a[1]);
    }
    if ctx.client.in_pubsub_context() {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(if a.len() == 2 { &a[1] } else { b"" });
    } else if a.len() == 2 {
        ctx.out.bulk(&a[1]);
    } else {
        ctx.out.simple("PONG");
    }
}

fn echo(ctx: &mut Ctx, a: Args) {
    ctx.out.bulk(&a[1]);
}

fn quit(ctx: &mut Ctx, _a: Args) {
    ctx.out.ok();
    ctx.after_reply(ferrocache_node::client::Then::Close);
}

/// Remove every subscription of the client (RESET, disconnect).
pub fn drop_subscriptions(ctx: &mut Ctx) {
    ctx.srv.pubsub().forget_client(ctx.client);
    ctx.client.update_sub_counts();
}

pub fn tracking_off(ctx: &mut Ctx) {
    if ctx.client.tracking.take().is_some() {
        *ctx.client.shared.tracking.lock() = None;
        ctx.srv.tracking().forget_client(ctx.client.id);
        ctx.srv.tracking().enabled.fetch_sub(1, Relaxed);
    }
}

fn reset(ctx: &mut Ctx, _a: Args) {
    ferrocache_node::transactions::discard_state(ctx.srv, ctx.client);
    drop_subscriptions(ctx);
    tracking_off(ctx);
    ctx.client.db = 0;
    ctx.client.shared.db.store(0, Relaxed);
    ctx.client.resp3 = false;
    ctx.out.resp3 = false;
    ctx.client.shared.resp3.store(false, Relaxed);
    ctx.client.reply_mode = ReplyMode::On;
    ctx.client.shared.no_evict.store(false, Relaxed);
    ferrocache_node::acl::reset_client(ctx.srv, ctx.client);
    *ctx.client.shared.name.lock() = None;
    if ctx.client.monitor {
        ctx.client.monitor = false;
        let id = ctx.client.id;
        ctx.srv.monitors().remove(id);
    }
    ctx.client.set_flags();
    ctx.out.simple("RESET");
}

fn select(ctx: &mut Ctx, a: Args) {
    let Some(n) = int_arg(ctx.out, &a[1]) else { return };
    if ctx.srv.cluster().enabled && n != 0 {
        return ctx.out.error("ERR SELECT is not allowed in cluster mode");
    }
    if n < 0 || n as usize >= ctx.srv.num_dbs() {
        return ctx.out.error("ERR DB index is out of range");
    }
    ctx.client.db = n as usize;
    ctx.client.shared.db.store(n as usize, Relaxed);
    ctx.out.ok();
}

/// Check credentials against the ACL users (no user: the default user).
fn check_auth(ctx: &mut Ctx, user: Option<&[u8]>, pass: &[u8], cmd_name: &[u8]) -> bool {
    ferrocache_node::acl::authenticate(ctx.srv, ctx.client, user.unwrap_or(b"default"), pass, cmd_name)
}

fn auth(ctx: &mut Ctx, a: Args) {
    if a.len() > 3 {
        return ctx.out.error(ERR_SYNTAX);
    }
    if a.len() == 2 && ferrocache_node::acl::default_nopass(ctx.srv) {
        return ctx.out.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
    }
    let (user, pass) = if a.len() == 3 { (Some(&a[1]), &a[2]) } else { (None, &a[1]) };
    if check_auth(ctx, user, pass, &a[0]) {
        ctx.out.ok()
    } else {
        ctx.out.error("WRONGPASS invalid username-password pair or user is disabled.")
    }
}

fn valid_name(n: &[u8]) -> bool {
    n.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn hello(ctx: &mut Ctx, a: Args) {
    let mut ver = if ctx.client.resp3 { 3 } else { 2 };
    let mut j = 1;
    if a.len() >= 2 {
        match parse_i64(&a[1]) {
            None => return ctx.out.error("ERR Protocol version is not an integer or out of range"),
            Some(v) if !(2..=3).contains(&v) => return ctx.out.error("NOPROTO unsupported protocol version"),
            Some(v) => ver = v,
        }
        j = 2;
    }
    let mut setname: Option<Vec<u8>> = None;
    while j < a.len() {
        let left = a.len() - j - 1;
        if eq_ic(&a[j], "auth") && left >= 2 {
            let (u, p) = (a[j + 1].to_vec(), a[j + 2].to_vec());
            if !check_auth(ctx, Some(&u), &p, &a[0]) {
                return ctx.out.error("WRONGPASS invalid username-password pair or user is disabled.");
            }
            j += 3;
        } else if eq_ic(&a[j], "setname") && left >= 1 {
            if !valid_name(&a[j + 1]) {
                return ctx.out.error("ERR Client names cannot contain spaces, newlines or special characters.");
            }
            setname = Some(a[j + 1].to_vec());
            j += 2;
        } else {
            return ctx.out.error(&format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(&a[j])));
        }
    }
    if ctx.srv.config().hot.requirepass_set.load(Relaxed) && !ctx.client.authenticated {
        return ctx.out.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(n) = setname {
        *ctx.client.shared.name.lock() = if n.is_empty() { None } else { Some(n) };
    }
    ctx.client.resp3 = ver == 3;
    ctx.out.resp3 = ver == 3;
    ctx.client.shared.resp3.store(ver == 3, Relaxed);
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(ferrocache_node::node::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(ver);
    out.bulk(b"id");
    out.int(ctx.client.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(if ctx.srv.repl().is_replica.load(Relaxed) { b"replica" } else { b"master" });
    out.bulk(b"modules");
    out.empty_array();
}

fn client_id(ctx: &mut Ctx, _a: Args) {
    ctx.out.int(ctx.client.id as i64);
}

fn client_info(ctx: &mut Ctx, _a: Args) {
    ctx.client.set_flags();
    let mut l = ctx.client.shared.info_line(now_ms());
    l.push('\n');
    ctx.out.verbatim(l.as_bytes());
}

fn client_list(ctx: &mut Ctx, a: Args) {
    let mut ids: Option<Vec<u64>> = None;
    if a.len() == 4 && eq_ic(&a[2], "type") {
        let t = a[3].to_ascii_lowercase();
        if !matches!(t.as_slice(), b"normal" | b"master" | b"replica" | b"slave" | b"pubsub") {
            return ctx.out.error(&format!("ERR Unknown client type '{}'", String::from_utf8_lossy(&a[3])));
        }
        if t != b"normal" && t != b"pubsub" {
            ids = Some(vec![]);
        }
    } else if a.len() > 3 && eq_ic(&a[2], "id") {
        let mut v = vec![];
        for x in a.iter().skip(3) {
            match parse_i64(x) {
                Some(n) if n > 0 => v.push(n as u64),
                _ => return ctx.out.error("ERR Invalid client ID"),
            }
        }
        ids = Some(v);
    } else if a.len() != 2 {
        return ctx.out.error(ERR_SYNTAX);
    }
    ctx.client.set_flags();
    let now = now_ms();
    // A killed client is gone for Redis (CLIENT KILL frees it at once) even while its task winds up.
    let mut s = String::new();
    for c in ctx.srv.clients().live().into_iter().map(|h| h.shared) {
        if ids.as_ref().is_some_and(|v| !v.contains(&c.id)) {
            continue;
        }
        s.push_str(&c.info_line(now));
        s.push('\n');
    }
    ctx.out.verbatim(s.as_bytes());
}

fn client_kill(ctx: &mut Ctx, a: Args) {
    let me = ctx.client.id;
    if a.len() == 3 {
        let addr = String::from_utf8_lossy(&a[2]).into_owned();
        // A client already killed is gone for Redis (freed before the next command runs).
        let target = ctx.srv.clients().live().into_iter().find(|h| h.shared.addr == addr);
        return match target {
            Some(h) => {
                h.kill();
                if h.shared.id == me {
                    ctx.after_reply(ferrocache_node::client::Then::Close);
                }
                ctx.out.ok()
            }
            None => ctx.out.error("ERR No such client"),
        };
    }
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut skipme = true;
    let mut ctype: Option<Vec<u8>> = None;
    let mut user = None;
    let mut maxage = None;
    let mut i = 2;
    while i < a.len() {
        if i + 1 >= a.len() {
            return ctx.out.error(ERR_SYNTAX);
        }
        let (o, v) = (&a[i], &a[i + 1]);
        if eq_ic(o, "id") {
            match parse_i64(v) {
                Some(n) if n > 0 => id = Some(n as u64),
                _ => return ctx.out.error("ERR client-id should be greater than 0"),
            }
        } else if eq_ic(o, "type") {
            let t = v.to_ascii_lowercase();
            if !matches!(t.as_slice(), b"normal" | b"master" | b"replica" | b"slave" | b"pubsub") {
                return ctx.out.error(&format!("ERR Unknown client type '{}'", String::from_utf8_lossy(v)));
            }
            ctype = Some(t);
        } else if eq_ic(o, "addr") {
            addr = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(o, "laddr") {
            laddr = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(o, "user") {
            if !ferrocache_node::acl::user_exists(ctx.srv, v) {
                return ctx.out.error(&format!("ERR No such user '{}'", String::from_utf8_lossy(v)));
            }
            user = Some(String::from_utf8_lossy(v).into_owned());
        } else if eq_ic(o, "skipme") {
            if eq_ic(v, "yes") {
                skipme = true;
            } else if eq_ic(v, "no") {
                skipme = false;
            } else {
                return ctx.out.error(ERR_SYNTAX);
            }
        } else if eq_ic(o, "maxage") {
            match parse_i64(v) {
                Some(n) if n >= 0 => maxage = Some(n as u64),
                _ => return ctx.out.error(ERR_SYNTAX),
            }
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
        i += 2;
    }
    let now = now_ms();
    let mut killed = 0;
    for h in ctx.srv.clients().live() {
        let s = &h.shared;
        if id.is_some_and(|x| x != s.id)
            || addr.as_ref().is_some_and(|x| *x != s.addr)
            || user.as_ref().is_some_and(|u| *u != *s.user.lock())
            || laddr.as_ref().is_some_and(|x| *x != s.laddr)
            || (skipme && s.id == me)
            || maxage.is_some_and(|m| now.saturating_sub(s.created_ms) / 1000 < m)
        {
            continue;
        }
        if let Some(t) = &ctype {
            let is_pubsub = s.sub.load(Relaxed) + s.psub.load(Relaxed) + s.ssub.load(Relaxed) > 0;
            let fl = s.flags.lock().clone();
            let (is_master, is_replica) = (fl.contains('M'), fl.contains('S'));
            let ok = match t.as_slice() {
                b"normal" => !is_pubsub && !is_master && !is_replica,
                b"pubsub" => is_pubsub,
                b"master" => is_master,
                b"replica" | b"slave" => is_replica,
                _ => false,
            };
            if !ok {
                continue;
            }
        }
        h.kill();
        if s.id == me {
            ctx.after_reply(ferrocache_node::client::Then::Close);
        }
        killed += 1;
    }
    ctx.out.int(killed);
}

fn client_setname(ctx: &mut Ctx, a: Args) {
    if !valid_name(&a[2]) {
        return ctx.out.error("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    *ctx.client.shared.name.lock() = if a[2].is_empty() { None } else { Some(a[2].to_vec()) };
    ctx.out.ok();
}

fn client_getname(ctx: &mut Ctx, _a: Args) {
    let n = ctx.client.shared.name.lock().clone();
    match n {
        Some(n) => ctx.out.bulk(&n),
        None => ctx.out.null(),
    }
}

fn client_pause(ctx: &mut Ctx, a: Args) {
    let Some(ms) = parse_i64(&a[2]).filter(|v| *v >= 0) else {
        return ctx.out.error("ERR timeout is not an integer or out of range");
    };
    let mut write_only = false;
    if a.len() == 4 {
        if eq_ic(&a[3], "write") {
            write_only = true;
        } else if !eq_ic(&a[3], "all") {
            return ctx.out.error("ERR CLIENT PAUSE mode must be WRITE or ALL");
        }
    } else if a.len() > 4 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let until = now_ms().saturating_add(ms as u64);
    ctx.srv.client_pause().pause(until, write_only);
    ctx.out.ok();
}

fn client_unpause(ctx: &mut Ctx, _a: Args) {
    ctx.srv.client_pause().unpause();
    ctx.out.ok();
}

fn client_no_evict(ctx: &mut Ctx, a: Args) {
    if eq_ic(&a[2], "on") {
        ctx.client.shared.no_evict.store(true, Relaxed);
    } else if eq_ic(&a[2], "off") {
        ctx.client.shared.no_evict.store(false, Relaxed);
    } else {
        return ctx.out.error(ERR_SYNTAX);
    }
    ctx.out.ok();
}

fn client_reply(ctx: &mut Ctx, a: Args) {
    if eq_ic(&a[2], "on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.out.ok();
    } else if eq_ic(&a[2], "off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if eq_ic(&a[2], "skip") {
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::Skip;
        }
    } else {
        ctx.out.error(ERR_SYNTAX);
    }
}

fn client_tracking(ctx: &mut Ctx, a: Args) {
    let mut tr = TrackingInfo::default();
    let mut j = 3;
    let mut redirect_given = false;
    while j < a.len() {
        let more = j + 1 < a.len();
        let o = &a[j];
        if eq_ic(o, "redirect") && more {
            if redirect_given {
                return ctx.out.error("ERR A client can only redirect to a single other client");
            }
            redirect_given = true;
            let Some(id) = parse_i64(&a[j + 1]) else { return ctx.out.error(ERR_NOT_INT) };
            if id != ctx.client.id as i64 && !ctx.srv.clients().contains(id as u64) {
                return ctx.out.error("ERR The client ID you want redirect to does not exist");
            }
            tr.redirect = id as u64;
            j += 1;
        } else if eq_ic(o, "bcast") {
            tr.bcast = true;
        } else if eq_ic(o, "optin") {
            tr.optin = true;
        } else if eq_ic(o, "optout") {
            tr.optout = true;
        } else if eq_ic(o, "noloop") {
            tr.noloop = true;
        } else if eq_ic(o, "prefix") && more {
            tr.prefixes.push(a[j + 1].to_vec());
            j += 1;
        } else {
            return ctx.out.error(ERR_SYNTAX);
        }
        j += 1;
    }
    if eq_ic(&a[2], "on") {
        if !tr.prefixes.is_empty() && !tr.bcast {
            return ctx.out.error("ERR PREFIX option requires BCAST mode to be enabled");
        }
        if let Some(cur) = &ctx.client.tracking {
            if cur.bcast != tr.bcast {
                return ctx.out.error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
            }
        }
        if tr.bcast && (tr.optin || tr.optout) {
            return ctx.out.error("ERR OPTIN and OPTOUT are not compatible with BCAST");
        }
        if tr.optin && tr.optout {
            return ctx.out.error("ERR You can't specify both OPTIN mode and OPTOUT mode");
        }
        if let Some(cur) = &ctx.client.tracking {
            if (cur.optin && tr.optout) || (cur.optout && tr.optin) {
                return ctx.out.error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
            }
        }
        if tr.bcast {
            // Prefixes may not overlap, with the client's existing ones or with each other
            // (Redis's checkPrefixCollisionsOrReply, same order and texts).
            let existing: Vec<Vec<u8>> = ctx.client.tracking.as_ref().map(|t| t.prefixes.clone()).unwrap_or_default();
            let overlap = |p: &[u8], q: &[u8]| p.starts_with(q) || q.starts_with(p);
            for (i, p) in tr.prefixes.iter().enumerate() {
                if let Some(q) = existing.iter().find(|q| overlap(p, q)) {
                    return ctx.out.error(&format!(
                        "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                        String::from_utf8_lossy(p),
                        String::from_utf8_lossy(q)
                    ));
                }
                if let Some(q) = tr.prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
                    return ctx.out.error(&format!(
                        "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                        String::from_utf8_lossy(p),
                        String::from_utf8_lossy(q)
                    ));
                }
            }
            let new = if tr.prefixes.is_empty() { vec![Vec::new()] } else { std::mem::take(&mut tr.prefixes) };
            for p in &new {
                ctx.srv.tracking().add_prefix(ctx.client.id, p);
            }
            tr.prefixes = existing;
            for p in new {
                if !tr.prefixes.contains(&p) {
                    tr.prefixes.push(p);
                }
            }
        }
        if ctx.client.tracking.is_none() {
            ctx.srv.tracking().enabled.fetch_add(1, Relaxed);
        }
        *ctx.client.shared.tracking.lock() = Some(tr.clone());
        ctx.client.tracking = Some(tr);
    } else if eq_ic(&a[2], "off") {
        tracking_off(ctx);
    } else {
        return ctx.out.error(ERR_SYNTAX);
    }
    ctx.out.ok();
}

fn client_trackinginfo(ctx: &mut Ctx, _a: Args) {
    let tr = ctx.client.tracking.clone();
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    let mut f: Vec<&str> = vec![];
    match &tr {
        None => f.push("off"),
        Some(t) => {
            f.push("on");
            if t.bcast {
                f.push("bcast");
            }
            if t.optin {
                f.push("optin");
                if ctx.client.caching_flag == Some(true) {
                    f.push("caching-yes");
                }
            }
            if t.optout {
                f.push("optout");
                if ctx.client.caching_flag == Some(false) {
                    f.push("caching-no");
                }
            }
            if t.noloop {
                f.push("noloop");
            }
            if t.redirect != 0 && !ctx.srv.clients().contains(t.redirect) {
                f.push("broken_redirect");
            }
        }
    }
    out.set(f.len());
    for x in f {
        out.bulk(x.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(match &tr {
        None => -1,
        Some(t) => t.redirect as i64,
    });
    out.bulk(b"prefixes");
    let p = tr.map(|t| if t.bcast { t.prefixes } else { vec![] }).unwrap_or_default();
    out.array(p.len());
    for x in p {
        out.bulk(&x);
    }
}

fn client_getredir(ctx: &mut Ctx, _a: Args) {
    let v = match &ctx.client.tracking {
        Some(t) => t.redirect as i64,
        None => -1,
    };
    ctx.out.int(v);
}

fn client_caching(ctx: &mut Ctx, a: Args) {
    let Some(t) = ctx.client.tracking.clone() else {
        return ctx.out.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    };
    if !t.optin && !t.optout {
        return ctx.out.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    }
    if eq_ic(&a[2], "yes") {
        if !t.optin {
            return ctx.out.error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
        }
        ctx.client.caching_flag = Some(true);
    } else if eq_ic(&a[2], "no") {
        if !t.optout {
            return ctx.out.error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
        }
        ctx.client.caching_flag = Some(false);
    } else {
        return ctx.out.error(ERR_SYNTAX);
    }
    ctx.out.ok();
}

fn client_unblock(ctx: &mut Ctx, a: Args) {
    if a.len() > 4 {
        return ctx.out.error(ERR_SYNTAX);
    }
    if a.len() == 4 && !eq_ic(&a[3], "timeout") && !eq_ic(&a[3], "error") {
        return ctx.out.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    }
    let Some(id) = parse_i64(&a[2]) else {
        return ctx.out.error(ERR_NOT_INT);
    };
    let error = a.len() == 4 && eq_ic(&a[3], "error");
    let done = id > 0 && ctx.srv.blocking().unblock(ctx.srv, id as u64, error);
    ctx.out.int(done as i64);
}

fn client_help(ctx: &mut Ctx, _a: Args) {
    let lines = [
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CACHING (YES|NO)",
        "GETNAME",
        "GETREDIR",
        "ID",
        "INFO",
        "KILL <ip:port>",
        "KILL <option> <value> [<option> <value> [...]]",
        "LIST [options ...]",
        "UNPAUSE",
        "PAUSE <timeout> [WRITE|ALL]",
        "REPLY (ON|OFF|SKIP)",
        "SETNAME <name>",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]] [OPTIN] [OPTOUT] [NOLOOP]",
        "TRACKINGINFO",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "NO-EVICT (ON|OFF)",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}
