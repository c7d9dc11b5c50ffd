//! Redis 7.0 ACLs (a port of the relevant parts of Redis's acl.c): users with passwords and
//! selectors (command bitmaps over Redis's own command table, key patterns with read/write
//! permissions, channel patterns), the ACL command, AUTH/HELLO authentication, the ACL log and
//! the permission check the executor runs for every command of a restricted client.
//!
//! The command universe the ACL works on is Redis 7.0.15's command table (`acl_cmds`, built
//! from the vendored json command metadata in `command_docs`), so categories, `ACL CAT` and the rule strings
//! of `ACL LIST`/`GETUSER` are Redis's even for commands ferrocache does not implement.
//!
//! Cost when only the default all-permissive user is in use: the executor tests
//! `client.user.is_some()` and one relaxed atomic (`Acl::default_full`).
//!
//! This file holds the node-wide ACL state (`Acl`) and its startup/config hooks; the rest is
//! in the submodules: `categories` (the command universe), `model` (users and selectors),
//! `rules` (the rule parser and ACL LIST form), `checks` (permission checks), `auth`
//! (authentication and redaction), `log` (the ACL log), `registry` (user changes), `file`
//! (config `user` lines and the aclfile). The ACL command itself is a family of
//! `ferrocache-commands` (`crates/commands/src/acl.rs`) over these.

mod auth;
mod categories;
mod checks;
mod file;
mod log;
mod model;
mod registry;
mod rules;

pub use auth::{authenticate, default_nopass, memcached_login, redacted_args, redacted_positions, reset_client};
pub use categories::{acl_cmds, acl_id, categories_of, category_bit, AclCmd, CATEGORIES};
pub use checks::{
    acl_error_message, check_command, check_queued, check_script_argv, check_script_call, keys_with_flags, needs_check,
    script_user_allows, sort_pattern_denied, user_name, Denied, KS_ACCESS, KS_DELETE, KS_INSERT, KS_UPDATE,
};
pub use file::{config_user_lines, load_file, save_file};
pub use log::LogEntry;
pub use model::{
    hash_password, Selector, User, UserRef, SEL_ALLCHANNELS, SEL_ALLCOMMANDS, SEL_ALLKEYS, SEL_ROOT, USER_FLAG_NAMES,
    USER_NOPASS, USER_OFF, USER_ON, USER_SANITIZE, USER_SKIP_SANITIZE,
};
pub use registry::{delete_user, drop_own_user, set_user, user_exists};
pub use rules::has_spaces;

use crate::Node;
use file::load_users;
use model::PUBSUB_DEFAULT_ALL;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

pub struct Acl {
    pub users: RwLock<BTreeMap<Vec<u8>, UserRef>>,
    pub default: UserRef,
    /// The default user may run everything (no check needed for its clients).
    pub default_full: AtomicBool,
    pub log: Mutex<VecDeque<LogEntry>>,
}

impl Default for Acl {
    fn default() -> Self {
        let mut u = User::new(b"default");
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(op.as_bytes());
        }
        let d = Arc::new(RwLock::new(u));
        let mut users = BTreeMap::new();
        users.insert(b"default".to_vec(), d.clone());
        Acl {
            users: RwLock::new(users),
            default: d,
            default_full: AtomicBool::new(true),
            log: Mutex::new(VecDeque::new()),
        }
    }
}

impl Acl {
    pub fn get(&self, name: &[u8]) -> Option<UserRef> {
        self.users.read().get(name).cloned()
    }
}

/// Recompute what the request path reads after a change to the default user: whether it needs
/// no checks, and whether unauthenticated clients must AUTH (Redis's authRequired).
pub fn default_changed(srv: &Node) {
    let d = srv.acl.default.read();
    srv.acl.default_full.store(d.full(), Relaxed);
    let auth_required = d.flags & USER_NOPASS == 0 || d.flags & USER_OFF != 0;
    srv.config.hot.requirepass_set.store(auth_required, Relaxed);
}

/// requirepass maps onto the default user (ACLUpdateDefaultUserPassword).
pub fn requirepass_changed(srv: &Node) {
    let pass = srv.config.get("requirepass").unwrap_or_default();
    {
        let mut d = srv.acl.default.write();
        let _ = d.apply(b"resetpass");
        if pass.is_empty() {
            let _ = d.apply(b"nopass");
        } else {
            let mut op = b">".to_vec();
            op.extend_from_slice(pass.as_bytes());
            let _ = d.apply(&op);
        }
    }
    default_changed(srv);
}

/// CONFIG SET hook: requirepass and acl-pubsub-default.
pub fn config_changed(srv: &Node, names: &[String]) {
    if names.iter().any(|n| n == "requirepass") {
        requirepass_changed(srv);
    }
    if names.iter().any(|n| n == "acl-pubsub-default") {
        PUBSUB_DEFAULT_ALL.store(srv.config.get("acl-pubsub-default").as_deref() == Some("allchannels"), Relaxed);
    }
}

/// Startup: requirepass, `user` directives from the config file, then the aclfile.
pub fn init(srv: &Node) -> Result<(), String> {
    PUBSUB_DEFAULT_ALL.store(srv.config.get("acl-pubsub-default").as_deref() == Some("allchannels"), Relaxed);
    requirepass_changed(srv);
    let conf_users = srv.config.acl_users.lock().clone();
    let aclfile = srv.config.get("aclfile").unwrap_or_default();
    if !conf_users.is_empty() && !aclfile.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    if !conf_users.is_empty() {
        load_users(srv, &conf_users).map_err(|e| e.join(" "))?;
    }
    if !aclfile.is_empty() {
        load_file(srv, &aclfile, None).map_err(|e| format!("Aborting Redis startup because of ACL errors: {}", e))?;
    }
    Ok(())
}
