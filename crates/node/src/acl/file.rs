//! Users from outside the node: the config file's `user` directives, the aclfile (ACL
//! LOAD/SAVE) and CONFIG REWRITE's `user` lines.

use super::default_changed;
use super::model::User;
use super::registry::delete_user;
use super::rules::{has_spaces, merge_selector_args, set_err_text, SetErr};
use crate::Node;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Load `user <name> rules...` definitions (config file users); all or nothing.
pub(super) fn load_users(srv: &Node, defs: &[Vec<String>]) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let mut staged: BTreeMap<Vec<u8>, User> = BTreeMap::new();
    for d in defs {
        let name = d[0].as_bytes().to_vec();
        let rules: Vec<Vec<u8>> = d[1..].iter().map(|s| s.as_bytes().to_vec()).collect();
        let mut u = if name == b"default" { srv.acl.default.read().clone() } else { User::new(&name) };
        if name == b"default" {
            let _ = u.apply(b"reset");
        }
        match merge_selector_args(&rules) {
            Err(j) => errors.push(format!("Unmatched parenthesis in acl selector starting at '{}'.", d[1 + j])),
            Ok(m) => {
                for op in m {
                    if let Err(e) = u.apply(&op) {
                        errors.push(format!(
                            "Error in user declaration '{}': {}",
                            String::from_utf8_lossy(&op),
                            set_err_text(&e)
                        ));
                        break;
                    }
                }
            }
        }
        staged.insert(name, u);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for (name, u) in staged {
        if name == b"default" {
            *srv.acl.default.write() = u;
        } else {
            srv.acl.users.write().insert(name, Arc::new(RwLock::new(u)));
        }
    }
    default_changed(srv);
    Ok(())
}

/// ACLLoadFromFile: replaces every user (the default user object is kept and gets the file's
/// rules, or the initial ones if the file does not define it). Clients of every other old user
/// are disconnected (`me`: the calling client, which is not sent a kill; the caller closes it).
/// Err is Redis's error text.
pub fn load_file(srv: &Node, path: &str, me: Option<u64>) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.split(" (os error").next().unwrap_or(&msg).to_string();
        format!("Error loading ACLs, opening file '{}': {}", path, msg)
    })?;
    let mut errors = String::new();
    let mut staged: BTreeMap<Vec<u8>, User> = BTreeMap::new();
    for (i, line) in text.split(|&c| c == b'\n').enumerate() {
        let linenum = i + 1;
        let t = trim_bytes(line, b" \t\r\n");
        if t.is_empty() {
            continue;
        }
        let argv: Vec<&[u8]> = t.split(|&c| c == b' ').collect();
        if argv[0] != b"user" || argv.len() < 2 {
            errors.push_str(&format!("{}:{} should start with user keyword followed by the username. ", path, linenum));
            continue;
        }
        if has_spaces(argv[1]) {
            errors.push_str(&format!(
                "'{}:{}: username '{}' contains invalid characters. ",
                path,
                linenum,
                String::from_utf8_lossy(argv[1])
            ));
            continue;
        }
        if staged.contains_key(argv[1]) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {}. ",
                String::from_utf8_lossy(argv[1]),
                linenum
            ));
            continue;
        }
        let rules: Vec<Vec<u8>> = argv[2..].iter().map(|x| x.to_vec()).collect();
        let mut u = User::new(argv[1]);
        match merge_selector_args(&rules) {
            Err(_) => errors.push_str(&format!("{}:{}: Unmatched parenthesis in selector definition.", path, linenum)),
            Ok(merged) => {
                let mut syntax_error = false;
                for op in &merged {
                    let op = trim_bytes(op, b"\t\r\n");
                    if let Err(e) = u.apply(op) {
                        if matches!(e, SetErr::NoEnt) {
                            errors.push_str(&format!(
                                "{}:{}: Error in applying operation '{}': {}. ",
                                path,
                                linenum,
                                String::from_utf8_lossy(op),
                                set_err_text(&e)
                            ));
                        } else if !syntax_error {
                            errors.push_str(&format!("{}:{}: {}. ", path, linenum, set_err_text(&e)));
                            syntax_error = true;
                        }
                    }
                }
            }
        }
        staged.insert(argv[1].to_vec(), u);
    }
    if !errors.is_empty() {
        errors.push_str("WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
        return Err(errors);
    }
    let new_default = staged.remove(b"default".as_slice()).unwrap_or_else(|| {
        let mut d = User::new(b"default");
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = d.apply(op.as_bytes());
        }
        d
    });
    let old: Vec<Vec<u8>> = srv.acl.users.read().keys().filter(|n| n.as_slice() != b"default").cloned().collect();
    for name in old {
        delete_user(srv, me, &name);
    }
    {
        let mut users = srv.acl.users.write();
        for (name, u) in staged {
            users.insert(name, Arc::new(RwLock::new(u)));
        }
    }
    *srv.acl.default.write() = new_default;
    default_changed(srv);
    Ok(())
}

fn trim_bytes<'a>(s: &'a [u8], set: &[u8]) -> &'a [u8] {
    let a = s.iter().position(|c| !set.contains(c)).unwrap_or(s.len());
    let b = s.iter().rposition(|c| !set.contains(c)).map(|i| i + 1).unwrap_or(a);
    &s[a..b.max(a)]
}

pub fn save_file(srv: &Node, path: &str) -> std::io::Result<()> {
    let mut s = String::new();
    for (name, u) in srv.acl.users.read().iter() {
        s.push_str("user ");
        s.push_str(&String::from_utf8_lossy(name));
        s.push(' ');
        s.push_str(&u.read().describe());
        s.push('\n');
    }
    let tmp = format!("{}.tmp-{}", path, std::process::id());
    std::fs::write(&tmp, s)?;
    std::fs::rename(&tmp, path)
}

/// CONFIG REWRITE's `user` lines (rewriteConfigUserOption): every user in ACL LIST form, or
/// None when users live in an aclfile.
pub fn config_user_lines(srv: &Node) -> Option<Vec<String>> {
    if !srv.config.get("aclfile").unwrap_or_default().is_empty() {
        return None;
    }
    let users = srv.acl.users.read();
    Some(users.iter().map(|(n, u)| format!("user {} {}", String::from_utf8_lossy(n), u.read().describe())).collect())
}
