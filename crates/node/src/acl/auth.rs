//! Authentication: AUTH/HELLO (ACLAuthenticateUser), the memcached port's login, RESET, and
//! the redaction of credentials in MONITOR and SLOWLOG.

use super::checks::Denied;
use super::log::add_log;
use super::model::{SEL_ALLCOMMANDS, SEL_ALLKEYS, USER_NOPASS};
use crate::client::Client;
use crate::table::Command;
use crate::Node;
use ferrocache_protocol::resp::Args;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Check credentials and, when valid, switch the client to the user (ACLAuthenticateUser).
/// A failure is logged with `cmd_name` as the object.
pub fn authenticate(srv: &Node, client: &mut Client, user: &[u8], pass: &[u8], cmd_name: &[u8]) -> bool {
    let u = srv.acl.get(user);
    let ok = u.as_ref().is_some_and(|u| u.read().check_password(pass));
    if ok {
        let u = u.unwrap();
        client.authenticated = true;
        client.user = if Arc::ptr_eq(&u, &srv.acl.default) { None } else { Some(u) };
        *client.shared.user.lock() = String::from_utf8_lossy(user).into_owned();
    } else {
        let ctx = if client.multi.is_some() { "multi" } else { "toplevel" };
        add_log(srv, client, Denied::Auth, ctx, cmd_name.to_vec(), user.to_vec());
    }
    ok
}

/// The memcached port's login (SASL PLAIN on the binary protocol, `set` with "user password"
/// on the text protocol): the user exists, is on, the password matches, and the user may run
/// every command on every key. memcached requests are not mapped onto per-command or per-key
/// ACL rules, so a restricted user cannot log in there (it would bypass its restrictions).
pub fn memcached_login(srv: &Node, user: &[u8], pass: &[u8]) -> bool {
    let Some(u) = srv.acl.get(user) else { return false };
    let u = u.read();
    let all = SEL_ALLKEYS | SEL_ALLCOMMANDS;
    u.check_password(pass) && u.selectors[0].flags & all == all
}

/// Back to the default user (RESET).
pub fn reset_client(srv: &Node, client: &mut Client) {
    client.user = None;
    *client.shared.user.lock() = "default".into();
    client.authenticated = !srv.config.hot.requirepass_set.load(Relaxed);
}

/// Whether the default user's password is "nopass" (AUTH <password> without a password set).
pub fn default_nopass(srv: &Node) -> bool {
    srv.acl.default.read().flags & USER_NOPASS != 0
}

/// Argument positions Redis replaces with "(redacted)" in MONITOR and SLOWLOG
/// (redactClientCommandArgument callers: AUTH, HELLO AUTH, ACL SETUSER, CONFIG SET of sensitive
/// options, MIGRATE AUTH/AUTH2). Empty for everything else.
pub fn redacted_positions(cmd: &Command, a: Args) -> Vec<usize> {
    let mut v = Vec::new();
    match cmd.name {
        "auth" if a.len() <= 3 => v.extend(1..a.len()),
        "hello" => {
            let mut j = 2;
            while j < a.len() {
                let more = a.len() - 1 - j;
                if a[j].eq_ignore_ascii_case(b"auth") && more >= 2 {
                    v.extend([j + 1, j + 2]);
                    j += 3;
                } else if a[j].eq_ignore_ascii_case(b"setname") && more >= 1 {
                    j += 2;
                } else {
                    break;
                }
            }
        }
        "acl|setuser" => v.extend(2..a.len()),
        "config|set" => {
            let mut i = 2;
            while i + 1 < a.len() {
                if a[i].eq_ignore_ascii_case(b"requirepass") || a[i].eq_ignore_ascii_case(b"masterauth") {
                    v.push(i + 1);
                }
                i += 2;
            }
        }
        "migrate" => {
            let mut j = 6;
            while j < a.len() {
                if a[j].eq_ignore_ascii_case(b"auth") && j + 1 < a.len() {
                    v.push(j + 1);
                    j += 1;
                } else if a[j].eq_ignore_ascii_case(b"auth2") && j + 2 < a.len() {
                    v.extend([j + 1, j + 2]);
                    j += 2;
                } else if a[j].eq_ignore_ascii_case(b"keys") {
                    break;
                }
                j += 1;
            }
        }
        _ => {}
    }
    v
}

/// `args` with the redacted positions replaced (MONITOR / SLOWLOG).
pub fn redacted_args<'a>(cmd: &Command, a: Args<'a>) -> Vec<&'a [u8]> {
    let pos = redacted_positions(cmd, a);
    a.iter().enumerate().map(|(i, x)| if pos.contains(&i) { b"(redacted)".as_slice() } else { x }).collect()
}
