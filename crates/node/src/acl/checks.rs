//! Permission checks: a user's selectors against a command, its keys (Redis's key specs, with
//! their ACL-relevant flags) and its channels, and the node-facing checks built on them (the
//! executor's, EXEC's re-check of queued commands, scripts', SORT's BY/GET patterns).

use super::categories::{acl_cmds, acl_id};
use super::log::add_log;
use super::model::{Selector, User, FUTURE_BIT, PERM_READ, PERM_WRITE, SEL_ALLCHANNELS, SEL_ALLCOMMANDS, SEL_ALLKEYS};
use crate::client::Client;
use crate::table::{flags, Command};
use crate::{Ctx, Node};
use ferrocache_engine::glob::glob_match;
use ferrocache_protocol::resp::Args;
use std::sync::atomic::Ordering::Relaxed;

pub const KS_ACCESS: u8 = 1;
pub const KS_INSERT: u8 = 2;
pub const KS_DELETE: u8 = 4;
pub const KS_UPDATE: u8 = 8;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Denied {
    Cmd = 1,
    Key = 2,
    Auth = 3,
    Channel = 4,
}

impl Selector {
    fn check_key(&self, key: &[u8], ksflags: u8) -> bool {
        if self.flags & SEL_ALLKEYS != 0 {
            return true;
        }
        let mut need = 0;
        if ksflags & KS_ACCESS != 0 {
            need |= PERM_READ;
        }
        if ksflags & (KS_INSERT | KS_DELETE | KS_UPDATE) != 0 {
            need |= PERM_WRITE;
        }
        self.patterns.iter().any(|(p, f)| f & need == need && glob_match(p, key, false))
    }

    fn check_channel(&self, ch: &[u8], is_pattern: bool) -> bool {
        check_channel_list(&self.channels, ch, is_pattern)
    }

    /// ACLSelectorCheckCmd. Err((reason, argument index)).
    fn check_cmd(
        &self,
        id: Option<usize>,
        cmd: &Command,
        a: Args,
        keys: &mut Option<Vec<(usize, u8)>>,
    ) -> Result<(), (Denied, usize)> {
        let no_auth = cmd.has(flags::NO_AUTH);
        if self.flags & SEL_ALLCOMMANDS == 0 && !no_auth {
            match id {
                None => {
                    if !self.bit(FUTURE_BIT) {
                        return Err((Denied::Cmd, 0));
                    }
                }
                Some(id) => {
                    if !self.bit(id) {
                        // First args exist only on top-level commands without subcommands.
                        let idx = if acl_cmds()[id].parent >= 0 { 2 } else { 1 };
                        let ok = a.len() > idx
                            && self
                                .firstargs
                                .get(&id)
                                .is_some_and(|v| v.iter().any(|x| x.eq_ignore_ascii_case(&a[idx])));
                        if !ok {
                            return Err((Denied::Cmd, 0));
                        }
                    }
                }
            }
        }
        if self.flags & SEL_ALLKEYS == 0 && has_keys(id, cmd) {
            let ks = keys.get_or_insert_with(|| keys_with_flags(id, cmd, a));
            for &(pos, fl) in ks.iter() {
                if !self.check_key(&a[pos], fl) {
                    return Err((Denied::Key, pos));
                }
            }
        }
        if self.flags & SEL_ALLCHANNELS == 0 {
            if let Some((start, count, pattern)) = channel_spec(cmd.name) {
                let stop = if count < 0 { a.len() } else { (start + count as usize).min(a.len()) };
                for i in start..stop {
                    if !self.check_channel(&a[i], pattern) {
                        return Err((Denied::Channel, i));
                    }
                }
            }
        }
        Ok(())
    }
}

pub(super) fn check_channel_list(list: &[Vec<u8>], ch: &[u8], is_pattern: bool) -> bool {
    list.iter().any(|p| if is_pattern { p == ch } else { glob_match(p, ch, false) })
}

/// Channel-checked commands (Redis's commands_with_channels with PUBLISH|SUBSCRIBE flags):
/// (first position, count or -1 for the rest, pattern).
fn channel_spec(name: &str) -> Option<(usize, i32, bool)> {
    match name {
        "subscribe" | "ssubscribe" => Some((1, -1, false)),
        "psubscribe" => Some((1, -1, true)),
        "publish" | "spublish" => Some((1, 1, false)),
        _ => None,
    }
}

/// Redis's doesCommandHaveKeys (`command_docs` holds Redis's key specs and getkeys procs).
fn has_keys(_id: Option<usize>, cmd: &Command) -> bool {
    crate::command_docs::has_keys(cmd)
}

/// The keys of a command with their ACL-relevant key-spec flags, as Redis's
/// getKeysFromCommandWithSpecs finds them (key specs, or the getkeys procs where the specs are
/// incomplete or have variable flags); our table's key positions for commands Redis lacks.
pub fn keys_with_flags(_id: Option<usize>, cmd: &Command, a: Args) -> Vec<(usize, u8)> {
    use crate::command_docs::kflags;
    match crate::command_docs::doc(cmd) {
        Some(d) => crate::command_docs::keys_with_flags(d, a)
            .into_iter()
            .map(|(p, f)| {
                let mut fl = 0;
                if f & kflags::ACCESS != 0 {
                    fl |= KS_ACCESS;
                }
                if f & kflags::INSERT != 0 {
                    fl |= KS_INSERT;
                }
                if f & kflags::DELETE != 0 {
                    fl |= KS_DELETE;
                }
                if f & kflags::UPDATE != 0 {
                    fl |= KS_UPDATE;
                }
                (p, fl)
            })
            .collect(),
        None => {
            let fl = if cmd.is_write() { KS_ACCESS | KS_UPDATE } else { KS_ACCESS };
            cmd.key_positions(a).into_iter().map(|p| (p, fl)).collect()
        }
    }
}

impl User {
    /// ACLCheckAllUserCommandPerm.
    pub fn check(&self, cmd: &Command, a: Args) -> Result<(), (Denied, usize)> {
        let id = acl_id(cmd);
        let mut relevant = Denied::Cmd;
        let mut last_idx = 0;
        let mut keys = None;
        for s in &self.selectors {
            match s.check_cmd(id, cmd, a, &mut keys) {
                Ok(()) => return Ok(()),
                Err((r, idx)) => {
                    if r > relevant || (r == relevant && idx > last_idx) {
                        relevant = r;
                        last_idx = idx;
                    }
                }
            }
        }
        Err((relevant, last_idx))
    }
}

/// The executor's check (processCommand's ACLCheckAllPerm). Writes the NOPERM error and logs
/// the denial; returns false when denied. Call only when `needs_check`.
pub fn check_command(
    srv: &Node,
    client: &Client,
    cmd: &Command,
    a: Args,
    out: &mut ferrocache_protocol::resp::ReplyBuf,
) -> bool {
    let res = match &client.user {
        Some(u) => u.read().check(cmd, a),
        None => srv.acl.default.read().check(cmd, a),
    };
    let Err((reason, idx)) = res else { return true };
    let ctx = if client.multi.is_some() { "multi" } else { "toplevel" };
    let object = match reason {
        Denied::Cmd => cmd.full_name().as_bytes().to_vec(),
        _ => a[idx].to_vec(),
    };
    let name = user_name(srv, client);
    add_log(srv, client, reason, ctx, object, name);
    out.error(&noperm_text(reason, cmd));
    false
}

fn noperm_text(reason: Denied, cmd: &Command) -> String {
    match reason {
        Denied::Cmd => format!("NOPERM this user has no permissions to run the '{}' command", cmd.full_name()),
        Denied::Key => "NOPERM this user has no permissions to access one of the keys used as arguments".into(),
        Denied::Channel => "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
        Denied::Auth => "no permission".into(),
    }
}

/// Whether a client's commands must be checked: false on the all-permissive default user, and
/// for the master link and the AOF loader's client (Redis gives them no user: unrestricted).
#[inline]
pub fn needs_check(srv: &Node, client: &Client) -> bool {
    (client.user.is_some() || !srv.acl.default_full.load(Relaxed)) && !client.repl.is_master && client.id != u64::MAX
}

pub fn user_name(srv: &Node, client: &Client) -> Vec<u8> {
    match &client.user {
        Some(u) => u.read().name.clone(),
        None => srv.acl.default.read().name.clone(),
    }
}

/// The check for a command run by a script (`redis.call`): Ok, or the error text the script
/// sees (Redis's scriptVerifyACL); the denial is logged with context "lua".
pub fn check_script_call(srv: &Node, caller: &Client, cmd: &Command, a: Args) -> Result<(), String> {
    if !needs_check(srv, caller) {
        return Ok(());
    }
    let Err(reason) = check_and_log(srv, caller, cmd, a, "lua") else { return Ok(()) };
    Err(format!("The user executing the script can't {}", acl_error_message(reason)))
}

/// Check `cmd` for the client's user; a denial is logged with `context` and returned as Err.
fn check_and_log(srv: &Node, client: &Client, cmd: &Command, a: Args, context: &'static str) -> Result<(), Denied> {
    let res = match &client.user {
        Some(u) => u.read().check(cmd, a),
        None => srv.acl.default.read().check(cmd, a),
    };
    let Err((reason, idx)) = res else { return Ok(()) };
    let object = match reason {
        Denied::Cmd => cmd.full_name().as_bytes().to_vec(),
        _ => a[idx].to_vec(),
    };
    let name = user_name(srv, client);
    add_log(srv, client, reason, context, object, name);
    Err(reason)
}

/// `check_script_call` for redis.call's argv (None when allowed or not a valid call: the
/// script's own lookup/arity errors come first, as in Redis's scriptCall; the caller checks
/// NOSCRIPT before calling this).
pub fn check_script_argv(srv: &Node, caller: &Client, argv: &[Vec<u8>]) -> Option<String> {
    if !needs_check(srv, caller) {
        return None;
    }
    let base = crate::table::table().lookup(&argv[0])?;
    let cmd =
        if !base.subcommands.is_empty() && argv.len() >= 2 { crate::table::lookup_sub(base, &argv[1])? } else { base };
    if !cmd.arity_ok(argv.len()) {
        return None;
    }
    let owned = ferrocache_protocol::resp::OwnedArgs::from_slices(argv);
    check_script_call(srv, caller, cmd, owned.args()).err()
}

/// redis.acl_check_cmd: whether the script's user may run the command (nothing is logged).
pub fn script_user_allows(caller: &Client, srv: &Node, cmd: &Command, argv: &[Vec<u8>]) -> bool {
    if !needs_check(srv, caller) {
        return true;
    }
    let owned = ferrocache_protocol::resp::OwnedArgs::from_slices(argv);
    let res = match &caller.user {
        Some(u) => u.read().check(cmd, owned.args()),
        None => srv.acl.default.read().check(cmd, owned.args()),
    };
    res.is_ok()
}

/// getAclErrorMessage.
pub fn acl_error_message(reason: Denied) -> &'static str {
    match reason {
        Denied::Cmd => "run this command or subcommand",
        Denied::Key => "access at least one of the keys mentioned in the command arguments",
        Denied::Channel => "publish to the channel mentioned in the command",
        Denied::Auth => "lacking the permissions for the command",
    }
}

/// EXEC's re-check of a queued command (ACLs may have changed since it was queued): Err is
/// the NOPERM error to reply instead of running it.
pub fn check_queued(srv: &Node, client: &Client, cmd: &Command, a: Args) -> Result<(), String> {
    if !needs_check(srv, client) {
        return Ok(());
    }
    let Err(reason) = check_and_log(srv, client, cmd, a, "multi") else { return Ok(()) };
    let why = match reason {
        Denied::Cmd => "no permission to execute the command or subcommand",
        Denied::Key => "no permission to touch the specified keys",
        Denied::Channel => "no permission to access one of the channels used as arguments",
        Denied::Auth => "no permission",
    };
    Err(format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {}", why))
}

/// SORT's BY (with a pattern) and GET options need read access to every key
/// (ACLUserCheckCmdWithUnrestrictedKeyAccess with CMD_KEY_ACCESS). `first`: the first such
/// option in the arguments (true: BY). The error, if the client's user lacks that access.
pub fn sort_pattern_denied(ctx: &Ctx, a: Args, first: Option<bool>) -> Option<&'static str> {
    let first = first?;
    if !needs_check(ctx.srv, ctx.client) {
        return None;
    }
    let u = match &ctx.client.user {
        Some(u) => u.read().clone(),
        None => ctx.srv.acl.default.read().clone(),
    };
    let id = acl_id(ctx.cmd);
    let mut keys = None;
    let unrestricted = u.selectors.iter().any(|s| {
        s.check_cmd(id, ctx.cmd, a, &mut keys).is_ok()
            && (s.flags & SEL_ALLKEYS != 0 || s.patterns.iter().any(|(p, f)| f & PERM_READ != 0 && p == b"*"))
    });
    if unrestricted {
        None
    } else if first {
        Some("ERR BY option of SORT denied due to insufficient ACL permissions.")
    } else {
        Some("ERR GET option of SORT denied due to insufficient ACL permissions.")
    }
}
