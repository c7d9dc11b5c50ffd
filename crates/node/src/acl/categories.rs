//! The command universe the ACL works on: Redis's categories and Redis 7.0.15's command table
//! (`acl_cmds`, from the vendored json metadata in `command_docs`), with the name → ACL id
//! lookups the rule parser and the permission checks use.

use crate::table::Command;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Redis's ACL categories, in Redis's order (the bit order of `AclCmd::cats`).
pub static CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Redis 7.0.15's command table as the ACL sees it (every command Redis has, implemented here
/// or not), built once from the vendored command metadata (`command_docs`): top-level commands
/// sorted by name, each followed by its sorted subcommands.
pub fn acl_cmds() -> &'static [AclCmd] {
    static T: OnceLock<Vec<AclCmd>> = OnceLock::new();
    T.get_or_init(|| {
        let all = crate::command_docs::all();
        let mut names: Vec<&'static str> =
            all.iter().filter(|(_, d)| !d.has_flag("ONLY_SENTINEL")).map(|(n, _)| n.as_str()).collect();
        // "a" < "a|b" < "aa": each container is followed by its subcommands.
        names.sort_by(|a, b| a.split('|').cmp(b.split('|')));
        let mut rows: Vec<AclCmd> = Vec::with_capacity(names.len());
        let mut parent = 0;
        for name in names {
            let d = &all[name];
            let cats = crate::command_docs::redis_acl_categories(name)
                .unwrap_or_default()
                .iter()
                .filter_map(|c| category_bit(&c.as_bytes()[1..]))
                .fold(0, |m, b| m | b);
            let is_sub = name.contains('|');
            if is_sub {
                rows[parent].subs = (rows[parent].subs.0.max(parent + 1), rows.len() + 1);
            } else {
                parent = rows.len();
            }
            rows.push(AclCmd {
                name,
                parent: if is_sub { parent as i32 } else { -1 },
                cats,
                no_auth: d.has_flag("NO_AUTH"),
                subs: (0, 0),
            });
        }
        rows
    })
}

/// One command or subcommand of Redis's table.
pub struct AclCmd {
    /// "get", "config|get"
    pub name: &'static str,
    /// Index of the container command, -1 for top-level commands.
    pub parent: i32,
    /// Category bits in the order of `CATEGORIES`.
    pub cats: u32,
    pub no_auth: bool,
    /// Index range of the subcommands.
    pub subs: (usize, usize),
}

fn name_index() -> &'static HashMap<&'static str, usize> {
    static M: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    M.get_or_init(|| acl_cmds().iter().enumerate().map(|(i, c)| (c.name, i)).collect())
}

/// Redis's ACLLookupCommand (lookupCommandBySdsLogic, strict): "cmd" or "container|sub".
pub(super) fn lookup_cmd(name: &[u8]) -> Option<usize> {
    let s = String::from_utf8_lossy(name).to_ascii_lowercase();
    let parts: Vec<&str> = s.split('|').collect();
    if parts.len() > 2 {
        return None;
    }
    let base = *name_index().get(parts[0])?;
    let c = &acl_cmds()[base];
    let has_subs = c.subs.1 > c.subs.0;
    if parts.len() == 1 || !has_subs {
        return if parts.len() != 1 { None } else { Some(base) };
    }
    name_index().get(s.as_str()).copied()
}

/// The ACL id of one of our table's commands (None for commands Redis does not have).
pub fn acl_id(cmd: &Command) -> Option<usize> {
    name_index().get(cmd.name).copied()
}

pub fn category_bit(name: &[u8]) -> Option<u32> {
    CATEGORIES.iter().position(|c| c.as_bytes().eq_ignore_ascii_case(name)).map(|i| 1u32 << i)
}

/// Redis's categories of a command ("@read", ...), in Redis's order; None if Redis lacks it.
pub fn categories_of(name: &str) -> Option<Vec<&'static str>> {
    static AT: OnceLock<Vec<String>> = OnceLock::new();
    let at = AT.get_or_init(|| CATEGORIES.iter().map(|c| format!("@{}", c)).collect());
    let i = *name_index().get(name)?;
    let cats = acl_cmds()[i].cats;
    Some((0..CATEGORIES.len()).filter(|j| cats & (1 << j) != 0).map(|j| at[j].as_str()).collect())
}
