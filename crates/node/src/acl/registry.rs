//! The user registry's changes: creating or modifying a user (ACL SETUSER), deleting one, and
//! the clients they affect (disconnected subscribers, the caller of DELUSER/LOAD).

use super::checks::check_channel_list;
use super::default_changed;
use super::model::{User, SEL_ALLCHANNELS};
use super::rules::{merge_selector_args, set_err_text};
use crate::client::ClientMsg;
use crate::{Ctx, Node};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// Create or modify a user with rules (ACLStringSetUser). Err is the error text without "ERR ".
pub fn set_user(srv: &Node, name: &[u8], rules: &[Vec<u8>]) -> Result<(), String> {
    let merged = merge_selector_args(rules).map_err(|j| {
        format!("Unmatched parenthesis in acl selector starting at '{}'.", String::from_utf8_lossy(&rules[j]))
    })?;
    let existing = srv.acl.get(name);
    let mut temp = match &existing {
        Some(u) => u.read().clone(),
        None => User::new(name),
    };
    for op in &merged {
        if let Err(e) = temp.apply(op) {
            return Err(format!(
                "Error in ACL SETUSER modifier '{}': {}",
                String::from_utf8_lossy(op),
                set_err_text(&e)
            ));
        }
    }
    match existing {
        Some(u) => {
            let original = u.read().clone();
            kill_pubsub_clients_if_needed(srv, &temp, &original);
            *u.write() = temp;
        }
        None => {
            srv.acl.users.write().insert(name.to_vec(), Arc::new(RwLock::new(temp)));
        }
    }
    if name == b"default" {
        default_changed(srv);
    }
    Ok(())
}

/// Clients authenticated as `name` (by CLIENT LIST's user= field).
fn clients_of(srv: &Node, name: &[u8]) -> Vec<(Arc<crate::client::ClientShared>, crate::client_registry::Tx)> {
    let n = String::from_utf8_lossy(name);
    srv.clients.live().into_iter().filter(|h| *h.shared.user.lock() == n).map(|h| (h.shared, h.tx)).collect()
}

/// ACLKillPubsubClientsIfNeeded: disconnect the user's subscribers whose subscriptions the new
/// channel rules no longer allow.
fn kill_pubsub_clients_if_needed(srv: &Node, new: &User, original: &User) {
    if new.all_channels_any() {
        return;
    }
    let upcoming: Vec<Vec<u8>> = new.selectors.iter().flat_map(|s| s.channels.iter().cloned()).collect();
    let superset = original
        .selectors
        .iter()
        .all(|s| s.flags & SEL_ALLCHANNELS == 0 && s.channels.iter().all(|c| upcoming.contains(c)));
    if superset {
        return;
    }
    for (sh, tx) in clients_of(srv, &original.name) {
        if sh.sub.load(Relaxed) + sh.psub.load(Relaxed) + sh.ssub.load(Relaxed) == 0 {
            continue;
        }
        let id = sh.id;
        let violates = |reg: &RwLock<HashMap<bytes::Bytes, HashMap<u64, crate::client_registry::ClientHandle>>>,
                        pattern: bool| {
            reg.read().iter().any(|(ch, subs)| subs.contains_key(&id) && !check_channel_list(&upcoming, ch, pattern))
        };
        if violates(&srv.pubsub.patterns, true)
            || violates(&srv.pubsub.channels, false)
            || violates(&srv.pubsub.shard_channels, false)
        {
            sh.kill.store(true, Relaxed);
            let _ = tx.send(ClientMsg::Kill);
        }
    }
}

/// Delete a user and disconnect its clients (ACLFreeUserAndKillClients). The calling client
/// (`me`) is not sent a kill: it is closed after its reply.
pub fn delete_user(srv: &Node, me: Option<u64>, name: &[u8]) -> bool {
    if srv.acl.users.write().remove(name).is_none() {
        return false;
    }
    for (sh, tx) in clients_of(srv, name) {
        if Some(sh.id) != me {
            sh.kill.store(true, Relaxed);
            let _ = tx.send(ClientMsg::Kill);
        }
    }
    true
}

/// The calling client of DELUSER/LOAD when its own user was freed: back to the default user,
/// unauthenticated, closed after the reply.
pub fn drop_own_user(ctx: &mut Ctx) {
    ctx.client.user = None;
    ctx.client.authenticated = false;
    ctx.after_reply(crate::client::Then::Close);
}

/// CLIENT KILL USER: whether the user exists.
pub fn user_exists(srv: &Node, name: &[u8]) -> bool {
    srv.acl.get(name).is_some()
}
