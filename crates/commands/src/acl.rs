//! The ACL command (`COMMANDS`), over the node's ACL (`ferrocache_node::acl`): CAT, DELUSER, DRYRUN, GENPASS, GETUSER, HELP, LIST, LOAD,
//! LOG, SAVE, SETUSER, USERS, WHOAMI.

use ferrocache_node::acl::{
    acl_cmds, category_bit, delete_user, drop_own_user, has_spaces, load_file, save_file, set_user, user_name, Denied,
    Selector, UserRef, CATEGORIES, USER_FLAG_NAMES,
};
use ferrocache_node::table::{flags, Command};
use ferrocache_node::util::{parse_i64, ERR_NOT_INT};
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::Args;

const G: &str = "server";
const AF: u64 = flags::ADMIN | flags::NOSCRIPT | flags::LOADING | flags::STALE;
const NF: u64 = flags::NOSCRIPT | flags::LOADING | flags::STALE;

pub static COMMANDS: &[Command] =
    &[Command::new("acl", -2, 0, (0, 0, 0), ferrocache_node::subcommand_required).group(G).subs(ACL_SUBS)];

static ACL_SUBS: &[Command] = &[
    Command::new("acl|cat", -2, NF, (0, 0, 0), acl_cat).group(G),
    Command::new("acl|deluser", -3, AF, (0, 0, 0), acl_deluser).group(G),
    Command::new("acl|dryrun", -4, AF, (0, 0, 0), acl_dryrun).group(G),
    Command::new("acl|genpass", -2, NF, (0, 0, 0), acl_genpass).group(G),
    Command::new("acl|getuser", 3, AF, (0, 0, 0), acl_getuser).group(G),
    Command::new("acl|help", 2, flags::LOADING | flags::STALE, (0, 0, 0), acl_help).group(G),
    Command::new("acl|list", 2, AF, (0, 0, 0), acl_list).group(G),
    Command::new("acl|load", 2, AF, (0, 0, 0), acl_load).group(G),
    Command::new("acl|log", -2, AF, (0, 0, 0), acl_log).group(G),
    Command::new("acl|save", 2, AF, (0, 0, 0), acl_save).group(G),
    Command::new("acl|setuser", -3, AF, (0, 0, 0), acl_setuser).group(G),
    Command::new("acl|users", 2, AF, (0, 0, 0), acl_users).group(G),
    Command::new("acl|whoami", 2, NF, (0, 0, 0), acl_whoami).group(G),
];

fn subcommand_syntax(ctx: &mut Ctx, sub: &[u8]) {
    let sub: String = String::from_utf8_lossy(sub).chars().take(128).collect();
    ctx.out.error(&format!("ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.", sub));
}

fn acl_setuser(ctx: &mut Ctx, a: Args) {
    let name = &a[2];
    if has_spaces(name) {
        return ctx.out.error("ERR Usernames can't contain spaces or null characters");
    }
    let rules: Vec<Vec<u8>> = a.iter().skip(3).map(|x| x.to_vec()).collect();
    match set_user(ctx.srv, name, &rules) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&format!("ERR {}", e)),
    }
}

fn acl_deluser(ctx: &mut Ctx, a: Args) {
    if a.iter().skip(2).any(|n| n == b"default") {
        return ctx.out.error("ERR The 'default' user cannot be removed");
    }
    let mut n = 0;
    let me = ctx.client.shared.user.lock().clone();
    for name in a.iter().skip(2) {
        if delete_user(ctx.srv, Some(ctx.client.id), name) {
            n += 1;
            if me.as_bytes() == name {
                drop_own_user(ctx);
            }
        }
    }
    ctx.out.int(n);
}

fn selector_reply(out: &mut ferrocache_protocol::resp::ReplyBuf, s: &Selector) {
    out.bulk(b"commands");
    out.bulk(s.describe_commands().as_bytes());
    out.bulk(b"keys");
    out.bulk(s.keys_string().as_bytes());
    out.bulk(b"channels");
    out.bulk(s.channels_string().as_bytes());
}

fn acl_getuser(ctx: &mut Ctx, a: Args) {
    let Some(u) = ctx.srv.acl().get(&a[2]) else { return ctx.out.null() };
    let u = u.read().clone();
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk(b"flags");
    let fl: Vec<&str> = USER_FLAG_NAMES.iter().filter(|(f, _)| u.flags & f != 0).map(|(_, n)| *n).collect();
    out.set(fl.len());
    for f in fl {
        out.bulk(f.as_bytes());
    }
    out.bulk(b"passwords");
    out.array(u.passwords.len());
    for p in &u.passwords {
        out.bulk(p.as_bytes());
    }
    selector_reply(out, &u.selectors[0]);
    out.bulk(b"selectors");
    out.array(u.selectors.len() - 1);
    for s in &u.selectors[1..] {
        out.map(3);
        selector_reply(out, s);
    }
}

fn acl_list(ctx: &mut Ctx, _a: Args) {
    let users: Vec<(Vec<u8>, UserRef)> =
        ctx.srv.acl().users.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    ctx.out.array(users.len());
    for (name, u) in users {
        let mut s = b"user ".to_vec();
        s.extend_from_slice(&name);
        s.push(b' ');
        s.extend_from_slice(u.read().describe().as_bytes());
        ctx.out.bulk(&s);
    }
}

fn acl_users(ctx: &mut Ctx, _a: Args) {
    let names: Vec<Vec<u8>> = ctx.srv.acl().users.read().keys().cloned().collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(&n);
    }
}

fn acl_whoami(ctx: &mut Ctx, _a: Args) {
    let n = user_name(ctx.srv, ctx.client);
    ctx.out.bulk(&n);
}

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn acl_load(ctx: &mut Ctx, _a: Args) {
    let f = ctx.srv.config().get("aclfile").unwrap_or_default();
    if f.is_empty() {
        return ctx.out.error(NO_ACLFILE);
    }
    match load_file(ctx.srv, &f, Some(ctx.client.id)) {
        Ok(()) => {
            // Every old user but default was freed: a caller authenticated as one is closed.
            if ctx.client.user.is_some() {
                drop_own_user(ctx);
            }
            ctx.out.ok()
        }
        Err(e) => ctx.out.error(&format!("ERR {}", e)),
    }
}

fn acl_save(ctx: &mut Ctx, _a: Args) {
    let f = ctx.srv.config().get("aclfile").unwrap_or_default();
    if f.is_empty() {
        return ctx.out.error(NO_ACLFILE);
    }
    match save_file(ctx.srv, &f) {
        Ok(()) => ctx.out.ok(),
        Err(_) => ctx
            .out
            .error("ERR There was an error trying to save the ACLs. Please check the server logs for more information"),
    }
}

fn acl_cat(ctx: &mut Ctx, a: Args) {
    if a.len() > 3 {
        return subcommand_syntax(ctx, &a[1]);
    }
    if a.len() == 2 {
        ctx.out.array(CATEGORIES.len());
        for c in CATEGORIES {
            ctx.out.bulk(c.as_bytes());
        }
        return;
    }
    let Some(cflag) = category_bit(&a[2]) else {
        let n: String = String::from_utf8_lossy(&a[2]).chars().take(128).collect();
        return ctx.out.error(&format!("ERR Unknown category '{}'", n));
    };
    let names: Vec<&str> = acl_cmds().iter().filter(|c| c.cats & cflag != 0).map(|c| c.name).collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
}

fn acl_genpass(ctx: &mut Ctx, a: Args) {
    if a.len() > 3 {
        return subcommand_syntax(ctx, &a[1]);
    }
    let mut bits = 256i64;
    if a.len() == 3 {
        match parse_i64(&a[2]) {
            Some(b) => bits = b,
            None => return ctx.out.error(ERR_NOT_INT),
        }
    }
    if bits <= 0 || bits > 4096 {
        return ctx.out.error(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        );
    }
    let chars = ((bits + 3) / 4) as usize;
    use rand::Rng;
    let mut r = rand::thread_rng();
    let s: String = (0..chars).map(|_| char::from(b"0123456789abcdef"[r.gen_range(0..16)])).collect();
    ctx.out.bulk(s.as_bytes());
}

fn acl_log(ctx: &mut Ctx, a: Args) {
    if a.len() > 3 {
        return subcommand_syntax(ctx, &a[1]);
    }
    let mut count = 10i64;
    if a.len() == 3 {
        if a[2].eq_ignore_ascii_case(b"reset") {
            ctx.srv.acl().log.lock().clear();
            return ctx.out.ok();
        }
        match parse_i64(&a[2]) {
            Some(c) => count = c.max(0),
            None => return ctx.out.error(ERR_NOT_INT),
        }
    }
    let now = ferrocache_node::node::now_ms();
    let log = ctx.srv.acl().log.lock();
    let n = (count as usize).min(log.len());
    let out = &mut *ctx.out;
    out.array(n);
    for e in log.iter().take(n) {
        out.map(7);
        out.bulk(b"count");
        out.int(e.count as i64);
        out.bulk(b"reason");
        out.bulk(match e.reason {
            Denied::Cmd => b"command".as_slice(),
            Denied::Key => b"key",
            Denied::Channel => b"channel",
            Denied::Auth => b"auth",
        });
        out.bulk(b"context");
        out.bulk(e.context.as_bytes());
        out.bulk(b"object");
        out.bulk(&e.object);
        out.bulk(b"username");
        out.bulk(&e.username);
        out.bulk(b"age-seconds");
        out.double(now.saturating_sub(e.ctime) as f64 / 1000.0);
        out.bulk(b"client-info");
        out.bulk(e.cinfo.as_bytes());
    }
}

fn acl_dryrun(ctx: &mut Ctx, a: Args) {
    let Some(u) = ctx.srv.acl().get(&a[2]) else {
        return ctx.out.error(&format!("ERR User '{}' not found", String::from_utf8_lossy(&a[2])));
    };
    let sub = a.from(3);
    let cmd = ferrocache_node::table::table().lookup(&sub[0]).and_then(|c| {
        if sub.len() == 1 || c.subcommands.is_empty() {
            Some(c)
        } else {
            ferrocache_node::table::lookup_sub(c, &sub[1])
        }
    });
    let Some(cmd) = cmd else {
        return ctx.out.error(&format!("ERR Command '{}' not found", String::from_utf8_lossy(&sub[0])));
    };
    let n = sub.len() as i32;
    if (cmd.arity > 0 && cmd.arity != n) || n < -cmd.arity {
        return ctx.out.error(&format!("ERR wrong number of arguments for '{}' command", cmd.full_name()));
    }
    let res = u.read().check(cmd, sub);
    match res {
        Ok(()) => ctx.out.ok(),
        Err((Denied::Cmd, _)) => {
            ctx.out.bulk(format!("This user has no permissions to run the '{}' command", cmd.full_name()).as_bytes())
        }
        Err((Denied::Key, i)) => ctx.out.bulk(
            format!("This user has no permissions to access the '{}' key", String::from_utf8_lossy(&sub[i])).as_bytes(),
        ),
        Err((_, i)) => ctx.out.bulk(
            format!("This user has no permissions to access the '{}' channel", String::from_utf8_lossy(&sub[i]))
                .as_bytes(),
        ),
    }
}

fn acl_help(ctx: &mut Ctx, _a: Args) {
    let lines = [
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}
