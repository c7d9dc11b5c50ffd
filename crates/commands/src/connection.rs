//! Connection commands: PING, ECHO, QUIT, RESET, SELECT, AUTH, HELLO, CLIENT.

use ferrocache_node::client::{ClientShared, ReplyMode, TrackingInfo};
use ferrocache_node::node::now_ms;
use ferrocache_node::subcommand_required;
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::{CommandError, Ctx};
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
    let srv = ctx.srv;
    let f = match ClientKillFilter::parse(a, |u| ferrocache_node::acl::user_exists(srv, u)) {
        Ok(f) => f,
        Err(e) => return ctx.fail(&e),
    };
    let now = now_ms();
    let mut killed = 0;
    for h in ctx.srv.clients().live().into_iter().filter(|h| f.matches(&h.shared, me, now)) {
        h.kill();
        if h.shared.id == me {
            ctx.after_reply(ferrocache_node::client::Then::Close);
        }
        killed += 1;
    }
    ctx.out.int(killed);
}

/// CLIENT KILL TYPE's classes of clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillType {
    Normal,
    Master,
    /// `replica` or `slave`.
    Replica,
    Pubsub,
}

/// CLIENT KILL's filter form: [ID id] [TYPE type] [ADDR addr] [LADDR addr] [USER name]
/// [SKIPME yes|no] [MAXAGE seconds], over the borrowed arguments. A client is killed when it
/// matches every filter given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientKillFilter<'a> {
    pub id: Option<u64>,
    pub kind: Option<KillType>,
    pub addr: Option<&'a [u8]>,
    pub laddr: Option<&'a [u8]>,
    /// The user name (known to exist when parsing succeeded).
    pub user: Option<&'a [u8]>,
    /// Leave the calling client alone (the default).
    pub skipme: bool,
    /// Only clients connected for at least this many seconds.
    pub maxage: Option<u64>,
}

impl Default for ClientKillFilter<'_> {
    fn default() -> Self {
        ClientKillFilter { id: None, kind: None, addr: None, laddr: None, user: None, skipme: true, maxage: None }
    }
}

impl<'a> ClientKillFilter<'a> {
    /// The filters from `a[2..]`, checked one by one as Redis 7.0's clientKillCommand does
    /// (later ones override earlier ones). `user_exists` is the ACL lookup USER makes in
    /// place, so an unknown user is reported before the options after it are checked.
    pub fn parse(a: Args<'a>, user_exists: impl Fn(&[u8]) -> bool) -> Result<Self, CommandError> {
        let mut f = ClientKillFilter::default();
        let mut i = 2;
        while i < a.len() {
            let (Some(o), Some(v)) = (a.get(i), a.get(i + 1)) else { return Err(CommandError::Syntax) };
            if eq_ic(o, "id") {
                match parse_i64(v) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => return Err("ERR client-id should be greater than 0".into()),
                }
            } else if eq_ic(o, "type") {
                f.kind = Some(match v.to_ascii_lowercase().as_slice() {
                    b"normal" => KillType::Normal,
                    b"master" => KillType::Master,
                    b"replica" | b"slave" => KillType::Replica,
                    b"pubsub" => KillType::Pubsub,
                    _ => return Err(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(v)).into()),
                });
            } else if eq_ic(o, "addr") {
                f.addr = Some(v);
            } else if eq_ic(o, "laddr") {
                f.laddr = Some(v);
            } else if eq_ic(o, "user") {
                if !user_exists(v) {
                    return Err(format!("ERR No such user '{}'", String::from_utf8_lossy(v)).into());
                }
                f.user = Some(v);
            } else if eq_ic(o, "skipme") {
                if eq_ic(v, "yes") {
                    f.skipme = true;
                } else if eq_ic(v, "no") {
                    f.skipme = false;
                } else {
                    return Err(CommandError::Syntax);
                }
            } else if eq_ic(o, "maxage") {
                match parse_i64(v) {
                    Some(n) if n >= 0 => f.maxage = Some(n as u64),
                    _ => return Err(CommandError::Syntax),
                }
            } else {
                return Err(CommandError::Syntax);
            }
            i += 2;
        }
        Ok(f)
    }

    /// Whether client `c` is one to kill, for the client `me` at `now` (ms). A client already
    /// killed never matches: Redis has freed it before the next command runs.
    pub fn matches(&self, c: &ClientShared, me: u64, now: u64) -> bool {
        let text_is = |x: &[u8], s: &str| String::from_utf8_lossy(x) == s;
        if c.kill.load(Relaxed)
            || self.id.is_some_and(|x| x != c.id)
            || self.addr.is_some_and(|x| !text_is(x, &c.addr))
            || self.user.is_some_and(|u| !text_is(u, &c.user.lock()))
            || self.laddr.is_some_and(|x| !text_is(x, &c.laddr))
            || (self.skipme && c.id == me)
            || self.maxage.is_some_and(|m| now.saturating_sub(c.created_ms) / 1000 < m)
        {
            return false;
        }
        let Some(kind) = self.kind else { return true };
        let is_pubsub = c.sub.load(Relaxed) + c.psub.load(Relaxed) + c.ssub.load(Relaxed) > 0;
        let fl = c.flags.lock();
        let (is_master, is_replica) = (fl.contains('M'), fl.contains('S'));
        match kind {
            KillType::Normal => !is_pubsub && !is_master && !is_replica,
            KillType::Pubsub => is_pubsub,
            KillType::Master => is_master,
            KillType::Replica => is_replica,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_protocol::resp::OwnedArgs;

    fn filter(s: &str) -> Result<ClientKillFilter<'static>, String> {
        // Leaked so the parsed filter may outlive the helper: test-only.
        let o: &'static OwnedArgs = Box::leak(Box::new(OwnedArgs::from_slices(&s.split(' ').collect::<Vec<_>>())));
        ClientKillFilter::parse(o.args(), |u| u == b"default" || u == b"alice").map_err(|e| e.to_string())
    }

    #[test]
    fn parse_each_filter() {
        assert_eq!(filter("client kill id 7").unwrap(), ClientKillFilter { id: Some(7), ..Default::default() });
        assert_eq!(filter("CLIENT KILL TYPE Normal").unwrap().kind, Some(KillType::Normal));
        assert_eq!(filter("client kill type master").unwrap().kind, Some(KillType::Master));
        assert_eq!(filter("client kill type replica").unwrap().kind, Some(KillType::Replica));
        assert_eq!(filter("client kill type SLAVE").unwrap().kind, Some(KillType::Replica));
        assert_eq!(filter("client kill type pubsub").unwrap().kind, Some(KillType::Pubsub));
        assert_eq!(filter("client kill addr 1.2.3.4:5").unwrap().addr, Some(&b"1.2.3.4:5"[..]));
        assert_eq!(filter("client kill LADDR 127.0.0.1:6379").unwrap().laddr, Some(&b"127.0.0.1:6379"[..]));
        assert_eq!(filter("client kill user alice").unwrap().user, Some(&b"alice"[..]));
        assert!(filter("client kill id 1").unwrap().skipme);
        assert!(!filter("client kill skipme NO").unwrap().skipme);
        assert!(filter("client kill skipme no skipme yes").unwrap().skipme);
        assert_eq!(filter("client kill maxage 0").unwrap().maxage, Some(0));
        assert_eq!(filter("client kill maxage 30").unwrap().maxage, Some(30));
    }

    #[test]
    fn parse_combined_and_overrides() {
        let f = filter("client kill user default skipme no type normal maxage 5 id 3 addr a:1 laddr b:2").unwrap();
        assert_eq!(
            f,
            ClientKillFilter {
                id: Some(3),
                kind: Some(KillType::Normal),
                addr: Some(b"a:1"),
                laddr: Some(b"b:2"),
                user: Some(b"default"),
                skipme: false,
                maxage: Some(5),
            }
        );
        assert_eq!(filter("client kill id 1 id 2").unwrap().id, Some(2));
        assert_eq!(filter("client kill type pubsub type master").unwrap().kind, Some(KillType::Master));
    }

    #[test]
    fn parse_errors() {
        let syntax = ERR_SYNTAX.to_string();
        for bad in [
            "client kill id",
            "client kill id 1 type",
            "client kill foo bar",
            "client kill skipme maybe",
            "client kill maxage -1",
            "client kill maxage x",
        ] {
            assert_eq!(filter(bad), Err(syntax.clone()), "{bad}");
        }
        for bad in ["client kill id 0", "client kill id -1", "client kill id x"] {
            assert_eq!(filter(bad).unwrap_err(), "ERR client-id should be greater than 0", "{bad}");
        }
        assert_eq!(filter("client kill type Foo").unwrap_err(), "ERR Unknown client type 'Foo'");
        assert_eq!(filter("client kill user bob").unwrap_err(), "ERR No such user 'bob'");
        // Checked in order: the first bad filter wins, the unknown user included.
        assert_eq!(filter("client kill user bob id 0").unwrap_err(), "ERR No such user 'bob'");
        assert_eq!(filter("client kill id 0 user bob").unwrap_err(), "ERR client-id should be greater than 0");
        assert_eq!(filter("client kill user bob foo").unwrap_err(), "ERR No such user 'bob'");
        assert_eq!(filter("client kill type x id").unwrap_err(), "ERR Unknown client type 'x'");
    }

    #[test]
    fn matching() {
        let now = 1_000_000u64;
        let c = ClientShared::new(5, "10.0.0.1:1000".into(), "127.0.0.1:6379".into(), now - 10_000);
        let f = |s: &str| filter(s).unwrap();
        assert!(f("client kill id 5").matches(&c, 1, now));
        assert!(!f("client kill id 6").matches(&c, 1, now));
        assert!(f("client kill addr 10.0.0.1:1000").matches(&c, 1, now));
        assert!(!f("client kill addr 10.0.0.1:1001").matches(&c, 1, now));
        assert!(f("client kill laddr 127.0.0.1:6379").matches(&c, 1, now));
        assert!(!f("client kill laddr 127.0.0.1:6380").matches(&c, 1, now));
        // SKIPME (the default) spares the caller.
        assert!(!f("client kill id 5").matches(&c, 5, now));
        assert!(f("client kill id 5 skipme no").matches(&c, 5, now));
        // MAXAGE in seconds: connected 10 s ago.
        assert!(f("client kill maxage 10").matches(&c, 1, now));
        assert!(!f("client kill maxage 11").matches(&c, 1, now));
        // USER compares the client's user.
        *c.user.lock() = "alice".into();
        assert!(f("client kill user alice").matches(&c, 1, now));
        assert!(!f("client kill user default").matches(&c, 1, now));
        // TYPE: flags N (normal), M (master), S (replica); any subscription makes it pubsub.
        assert!(f("client kill type normal").matches(&c, 1, now));
        assert!(!f("client kill type pubsub").matches(&c, 1, now));
        c.sub.store(1, Relaxed);
        assert!(!f("client kill type normal").matches(&c, 1, now));
        assert!(f("client kill type pubsub").matches(&c, 1, now));
        c.sub.store(0, Relaxed);
        *c.flags.lock() = "S".into();
        assert!(f("client kill type replica").matches(&c, 1, now));
        assert!(!f("client kill type master").matches(&c, 1, now));
        *c.flags.lock() = "M".into();
        assert!(f("client kill type master").matches(&c, 1, now));
        assert!(!f("client kill type normal").matches(&c, 1, now));
        // A client already killed never matches.
        c.kill.store(true, Relaxed);
        assert!(!f("client kill skipme no").matches(&c, 1, now));
    }
}
