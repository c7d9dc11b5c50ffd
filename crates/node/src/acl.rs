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

use crate::client::{Client, ClientMsg};
use crate::table::{flags, Command};
use crate::util::*;
use crate::Ctx;
use crate::Node;
use ferrocache_engine::glob::glob_match;
use ferrocache_protocol::resp::Args;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

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

// ---------------------------------------------------------------------------------------------
// The command universe (generated from Redis's json files)
// ---------------------------------------------------------------------------------------------

pub const KS_ACCESS: u8 = 1;
pub const KS_INSERT: u8 = 2;
pub const KS_DELETE: u8 = 4;
pub const KS_UPDATE: u8 = 8;

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

const CMD_BITS: usize = 1024;
const WORDS: usize = CMD_BITS / 64;
/// The reserved bit set only by +@all: "may run future commands".
const FUTURE_BIT: usize = CMD_BITS - 1;

fn name_index() -> &'static HashMap<&'static str, usize> {
    static M: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    M.get_or_init(|| acl_cmds().iter().enumerate().map(|(i, c)| (c.name, i)).collect())
}

/// Redis's ACLLookupCommand (lookupCommandBySdsLogic, strict): "cmd" or "container|sub".
fn lookup_cmd(name: &[u8]) -> Option<usize> {
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

fn category_bit(name: &[u8]) -> Option<u32> {
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

// ---------------------------------------------------------------------------------------------
// Users and selectors
// ---------------------------------------------------------------------------------------------

pub const SEL_ROOT: u8 = 1;
pub const SEL_ALLKEYS: u8 = 2;
pub const SEL_ALLCHANNELS: u8 = 4;
pub const SEL_ALLCOMMANDS: u8 = 8;

const PERM_READ: u8 = 1;
const PERM_WRITE: u8 = 2;
const PERM_ALL: u8 = 3;

#[derive(Clone)]
pub struct Selector {
    pub flags: u8,
    allowed: [u64; WORDS],
    /// Allowed first arguments of otherwise blocked commands (+select|0).
    firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    /// Key patterns with their PERM_* flags.
    patterns: Vec<(Vec<u8>, u8)>,
    channels: Vec<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Denied {
    Cmd = 1,
    Key = 2,
    Auth = 3,
    Channel = 4,
}

#[derive(Debug)]
enum SetErr {
    NoEnt,
    Inval,
    Exist,
    IsDir,
    NoDev,
    BadMsg,
    Child,
}

fn set_err_text(e: &SetErr) -> &'static str {
    match e {
        SetErr::NoEnt => "Unknown command or category name in ACL",
        SetErr::Inval => "Syntax error",
        SetErr::Exist => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
        SetErr::IsDir => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
        SetErr::NoDev => "The password you are trying to remove from the user does not exist",
        SetErr::BadMsg => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
        SetErr::Child => "Allowing first-arg of a subcommand is not supported",
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0)
}

/// `acl-pubsub-default allchannels`: new selectors (and `reset`) start with all channels.
static PUBSUB_DEFAULT_ALL: AtomicBool = AtomicBool::new(false);

fn pubsub_default() -> u8 {
    if PUBSUB_DEFAULT_ALL.load(Relaxed) {
        SEL_ALLCHANNELS
    } else {
        0
    }
}

impl Selector {
    fn new(flags: u8) -> Selector {
        Selector {
            flags: flags | pubsub_default(),
            allowed: [0; WORDS],
            firstargs: BTreeMap::new(),
            patterns: Vec::new(),
            channels: Vec::new(),
        }
    }
    fn bit(&self, id: usize) -> bool {
        id < CMD_BITS && self.allowed[id / 64] & (1 << (id % 64)) != 0
    }
    fn set_bit(&mut self, id: usize, v: bool) {
        if id >= CMD_BITS {
            return;
        }
        if v {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
            self.flags &= !SEL_ALLCOMMANDS;
        }
    }
    /// ACLChangeSelectorPerm: a container's change applies to its subcommands too.
    fn change_perm(&mut self, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.remove(&id);
        let (a, b) = acl_cmds()[id].subs;
        for s in a..b {
            self.set_bit(s, allow);
        }
    }
    fn set_category(&mut self, cflag: u32, v: bool) {
        for (i, c) in acl_cmds().iter().enumerate() {
            if c.parent < 0 {
                if c.cats & cflag != 0 {
                    self.change_perm(i, v);
                }
                for (s, sc) in acl_cmds().iter().enumerate().take(c.subs.1).skip(c.subs.0) {
                    if sc.cats & cflag != 0 {
                        self.change_perm(s, v);
                    }
                }
            }
        }
    }
    fn count_category(&self, cflag: u32) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for (i, c) in acl_cmds().iter().enumerate() {
            if c.cats & cflag != 0 {
                if self.bit(i) {
                    on += 1
                } else {
                    off += 1
                }
            }
        }
        (on, off)
    }
    fn all_commands(&mut self, v: bool) {
        self.allowed = if v { [u64::MAX; WORDS] } else { [0; WORDS] };
        if v {
            self.flags |= SEL_ALLCOMMANDS;
        } else {
            self.flags &= !SEL_ALLCOMMANDS;
        }
        self.firstargs.clear();
    }

    /// Redis's ACLSetSelector.
    fn apply(&mut self, op: &[u8]) -> Result<(), SetErr> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("allkeys") || op == b"~*" {
            self.flags |= SEL_ALLKEYS;
            self.patterns.clear();
        } else if is("resetkeys") {
            self.flags &= !SEL_ALLKEYS;
            self.patterns.clear();
        } else if is("allchannels") || op == b"&*" {
            self.flags |= SEL_ALLCHANNELS;
            self.channels.clear();
        } else if is("resetchannels") {
            self.flags &= !SEL_ALLCHANNELS;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.all_commands(true);
        } else if is("nocommands") || is("-@all") {
            self.all_commands(false);
        } else if op.first() == Some(&b'~') || op.first() == Some(&b'%') {
            if self.flags & SEL_ALLKEYS != 0 {
                return Err(SetErr::Exist);
            }
            let mut fl = 0u8;
            let mut offset = 1;
            if op[0] == b'%' {
                let mut ok = true;
                while offset < op.len() {
                    let c = op[offset].to_ascii_uppercase();
                    if c == b'R' && fl & PERM_READ == 0 {
                        fl |= PERM_READ;
                    } else if c == b'W' && fl & PERM_WRITE == 0 {
                        fl |= PERM_WRITE;
                    } else if op[offset] == b'~' {
                        offset += 1;
                        break;
                    } else {
                        ok = false;
                        break;
                    }
                    offset += 1;
                }
                if fl == 0 || !ok {
                    return Err(SetErr::Inval);
                }
            } else {
                fl = PERM_ALL;
            }
            let pat = &op[offset.min(op.len())..];
            if has_spaces(pat) {
                return Err(SetErr::Inval);
            }
            match self.patterns.iter_mut().find(|(p, _)| p == pat) {
                Some(p) => p.1 |= fl,
                None => self.patterns.push((pat.to_vec(), fl)),
            }
            self.flags &= !SEL_ALLKEYS;
        } else if op.first() == Some(&b'&') {
            if self.flags & SEL_ALLCHANNELS != 0 {
                return Err(SetErr::IsDir);
            }
            let pat = &op[1..];
            if has_spaces(pat) {
                return Err(SetErr::Inval);
            }
            if !self.channels.iter().any(|c| c == pat) {
                self.channels.push(pat.to_vec());
            }
            self.flags &= !SEL_ALLCHANNELS;
        } else if op.first() == Some(&b'+') && op.get(1) != Some(&b'@') {
            let rest = &op[1..];
            match rest.iter().rposition(|&c| c == b'|') {
                None => {
                    let id = lookup_cmd(rest).ok_or(SetErr::NoEnt)?;
                    self.change_perm(id, true);
                }
                Some(bar) => {
                    let (copy, sub) = (&rest[..bar], &rest[bar + 1..]);
                    let id = lookup_cmd(copy).ok_or(SetErr::NoEnt)?;
                    let c = &acl_cmds()[id];
                    if c.parent >= 0 {
                        return Err(SetErr::Child);
                    }
                    if sub.is_empty() {
                        return Err(SetErr::Inval);
                    }
                    if c.subs.1 > c.subs.0 {
                        let sid = lookup_cmd(rest).ok_or(SetErr::NoEnt)?;
                        self.change_perm(sid, true);
                    } else {
                        let v = self.firstargs.entry(id).or_default();
                        if !v.iter().any(|x| x.eq_ignore_ascii_case(sub)) {
                            v.push(sub.to_vec());
                        }
                    }
                }
            }
        } else if op.first() == Some(&b'-') && op.get(1) != Some(&b'@') {
            let id = lookup_cmd(&op[1..]).ok_or(SetErr::NoEnt)?;
            self.change_perm(id, false);
        } else if (op.first() == Some(&b'+') || op.first() == Some(&b'-')) && op.get(1) == Some(&b'@') {
            let cflag = category_bit(&op[2..]).ok_or(SetErr::NoEnt)?;
            self.set_category(cflag, op[0] == b'+');
        } else {
            return Err(SetErr::Inval);
        }
        Ok(())
    }

    /// ACLDescribeSelectorCommandRules.
    fn describe_commands(&self) -> String {
        let mut rules = String::new();
        let mut fake = Selector::new(0);
        let additive = if self.bit(FUTURE_BIT) {
            rules.push_str("+@all ");
            fake.all_commands(true);
            false
        } else {
            rules.push_str("-@all ");
            fake.all_commands(false);
            true
        };
        let mut temp = Selector::new(0);
        temp.allowed = self.allowed;
        let mut applied = [false; 21];
        loop {
            let mut best: Option<usize> = None;
            let (mut mindiff, mut maxsame) = (i32::MAX as usize, 0usize);
            for (j, _) in CATEGORIES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (on, off) = temp.count_category(1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(b) = best else { break };
            fake.set_category(1 << b, additive);
            temp.set_category(1 << b, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[b]);
            rules.push(' ');
            applied[b] = true;
        }
        // Single commands, then first-args.
        for (i, c) in acl_cmds().iter().enumerate() {
            if c.parent >= 0 {
                continue;
            }
            self.describe_single(i, &mut fake, &mut rules);
            for s in c.subs.0..c.subs.1 {
                self.describe_single(s, &mut fake, &mut rules);
            }
            if !self.bit(i) {
                if let Some(v) = self.firstargs.get(&i) {
                    for fa in v {
                        rules.push('+');
                        rules.push_str(c.name);
                        rules.push('|');
                        rules.push_str(&String::from_utf8_lossy(fa));
                        rules.push(' ');
                    }
                }
            }
        }
        rules.pop();
        rules
    }
    fn describe_single(&self, i: usize, fake: &mut Selector, rules: &mut String) {
        let (u, f) = (self.bit(i), fake.bit(i));
        if u != f {
            rules.push(if u { '+' } else { '-' });
            rules.push_str(acl_cmds()[i].name);
            rules.push(' ');
            fake.change_perm(i, u);
        }
    }
    fn pattern_string(p: &(Vec<u8>, u8)) -> String {
        let pre = match p.1 {
            PERM_READ => "%R~",
            PERM_WRITE => "%W~",
            _ => "~",
        };
        format!("{}{}", pre, String::from_utf8_lossy(&p.0))
    }
    /// ACLDescribeSelector (ACL LIST form).
    fn describe(&self) -> String {
        let mut s = String::new();
        if self.flags & SEL_ALLKEYS != 0 {
            s.push_str("~* ");
        } else {
            for p in &self.patterns {
                s.push_str(&Self::pattern_string(p));
                s.push(' ');
            }
        }
        if self.flags & SEL_ALLCHANNELS != 0 {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for c in &self.channels {
                s.push('&');
                s.push_str(&String::from_utf8_lossy(c));
                s.push(' ');
            }
        }
        s.push_str(&self.describe_commands());
        s
    }
    fn keys_string(&self) -> String {
        if self.flags & SEL_ALLKEYS != 0 {
            return "~*".into();
        }
        self.patterns.iter().map(Self::pattern_string).collect::<Vec<_>>().join(" ")
    }
    fn channels_string(&self) -> String {
        if self.flags & SEL_ALLCHANNELS != 0 {
            return "&*".into();
        }
        self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
    }

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

fn check_channel_list(list: &[Vec<u8>], ch: &[u8], is_pattern: bool) -> bool {
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

pub const USER_ON: u8 = 1;
pub const USER_OFF: u8 = 2;
pub const USER_NOPASS: u8 = 4;
pub const USER_SKIP_SANITIZE: u8 = 8;
pub const USER_SANITIZE: u8 = 16;
const USER_FLAG_NAMES: &[(u8, &str)] = &[
    (USER_ON, "on"),
    (USER_OFF, "off"),
    (USER_NOPASS, "nopass"),
    (USER_SKIP_SANITIZE, "skip-sanitize-payload"),
    (USER_SANITIZE, "sanitize-payload"),
];

#[derive(Clone)]
pub struct User {
    pub name: Vec<u8>,
    pub flags: u8,
    /// SHA-256 hex digests.
    pub passwords: Vec<String>,
    /// The root selector first.
    pub selectors: Vec<Selector>,
}

pub type UserRef = Arc<RwLock<User>>;

pub fn hash_password(p: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(p);
    d.iter().map(|b| format!("{:02x}", b)).collect()
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

impl User {
    fn new(name: &[u8]) -> User {
        User { name: name.to_vec(), flags: USER_OFF, passwords: vec![], selectors: vec![Selector::new(SEL_ROOT)] }
    }
    fn root(&mut self) -> &mut Selector {
        &mut self.selectors[0]
    }
    pub fn enabled(&self) -> bool {
        self.flags & USER_OFF == 0
    }
    /// Redis's ACLSetUser.
    fn apply(&mut self, op: &[u8]) -> Result<(), SetErr> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("on") {
            self.flags = (self.flags | USER_ON) & !USER_OFF;
        } else if is("off") {
            self.flags = (self.flags | USER_OFF) & !USER_ON;
        } else if is("skip-sanitize-payload") {
            self.flags = (self.flags | USER_SKIP_SANITIZE) & !USER_SANITIZE;
        } else if is("sanitize-payload") {
            self.flags = (self.flags | USER_SANITIZE) & !USER_SKIP_SANITIZE;
        } else if is("nopass") {
            self.flags |= USER_NOPASS;
            self.passwords.clear();
        } else if is("resetpass") {
            self.flags &= !USER_NOPASS;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let h = if op[0] == b'>' {
                hash_password(&op[1..])
            } else {
                if !valid_hash(&op[1..]) {
                    return Err(SetErr::BadMsg);
                }
                String::from_utf8_lossy(&op[1..]).into_owned()
            };
            if !self.passwords.contains(&h) {
                self.passwords.push(h);
            }
            self.flags &= !USER_NOPASS;
        } else if op[0] == b'<' || op[0] == b'!' {
            let h = if op[0] == b'<' {
                hash_password(&op[1..])
            } else {
                if !valid_hash(&op[1..]) {
                    return Err(SetErr::BadMsg);
                }
                String::from_utf8_lossy(&op[1..]).into_owned()
            };
            match self.passwords.iter().position(|p| *p == h) {
                Some(i) => {
                    self.passwords.remove(i);
                }
                None => return Err(SetErr::NoDev),
            }
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut s = Selector::new(0);
            let inner = &op[1..op.len() - 1];
            let mut buf = Vec::new();
            let mut spans = Vec::new();
            if !ferrocache_protocol::resp::split_args(inner, &mut buf, &mut spans) {
                return Err(SetErr::Inval);
            }
            for r in spans {
                s.apply(&buf[r])?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            self.flags &= !USER_NOPASS;
            self.passwords.clear();
            let r = self.root();
            r.flags &= !(SEL_ALLKEYS | SEL_ALLCHANNELS);
            r.patterns.clear();
            r.channels.clear();
            r.flags |= pubsub_default();
            self.flags = (self.flags | USER_OFF) & !USER_ON;
            self.flags = (self.flags | USER_SANITIZE) & !USER_SKIP_SANITIZE;
            self.selectors.truncate(1);
            self.root().all_commands(false);
        } else {
            self.root().apply(op)?;
        }
        Ok(())
    }

    /// ACLDescribeUser (the ACL LIST / aclfile form, without "user <name> ").
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (f, n) in USER_FLAG_NAMES {
            if self.flags & f != 0 {
                s.push_str(n);
                s.push(' ');
            }
        }
        for p in &self.passwords {
            s.push('#');
            s.push_str(p);
            s.push(' ');
        }
        for (i, sel) in self.selectors.iter().enumerate() {
            if i == 0 {
                s.push_str(&sel.describe());
            } else {
                s.push_str(&format!(" ({})", sel.describe()));
            }
        }
        s
    }

    fn check_password(&self, pass: &[u8]) -> bool {
        if !self.enabled() {
            return false;
        }
        if self.flags & USER_NOPASS != 0 {
            return true;
        }
        let h = hash_password(pass);
        // Time-independent comparison over every stored hash.
        let mut ok = false;
        for p in &self.passwords {
            let eq = p.bytes().zip(h.bytes()).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0 && p.len() == h.len();
            ok |= eq;
        }
        ok
    }

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

    /// Whether every command, key and channel is allowed (the executor's fast path).
    fn full(&self) -> bool {
        let r = &self.selectors[0];
        r.flags & (SEL_ALLKEYS | SEL_ALLCHANNELS | SEL_ALLCOMMANDS) == (SEL_ALLKEYS | SEL_ALLCHANNELS | SEL_ALLCOMMANDS)
    }

    fn all_channels_any(&self) -> bool {
        self.selectors.iter().any(|s| s.flags & SEL_ALLCHANNELS != 0)
    }
}

/// Merge selector arguments spread over several arguments (ACLMergeSelectorArguments).
fn merge_selector_args(args: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    let mut sel: Vec<u8> = Vec::new();
    for (j, op) in args.iter().enumerate() {
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            sel = op.clone();
            open = Some(j);
            continue;
        }
        if open.is_some() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                open = None;
                out.push(std::mem::take(&mut sel));
            }
            continue;
        }
        out.push(op.clone());
    }
    match open {
        Some(j) => Err(j),
        None => Ok(out),
    }
}

// ---------------------------------------------------------------------------------------------
// Node-wide state
// ---------------------------------------------------------------------------------------------

pub struct LogEntry {
    count: u64,
    reason: Denied,
    /// "toplevel", "multi", "lua"
    context: &'static str,
    object: Vec<u8>,
    username: Vec<u8>,
    ctime: u64,
    cinfo: String,
}

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

/// Create or modify a user with rules (ACLStringSetUser). Err is the error text without "ERR ".
fn set_user(srv: &Node, name: &[u8], rules: &[Vec<u8>]) -> Result<(), String> {
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
fn clients_of(srv: &Node, name: &[u8]) -> Vec<(Arc<crate::client::ClientShared>, crate::node::Tx)> {
    let n = String::from_utf8_lossy(name);
    srv.clients
        .lock()
        .values()
        .filter(|h| *h.shared.user.lock() == n && !h.shared.kill.load(Relaxed))
        .map(|h| (h.shared.clone(), h.tx.clone()))
        .collect()
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
        let violates = |reg: &RwLock<HashMap<bytes::Bytes, HashMap<u64, crate::node::ClientHandle>>>, pattern: bool| {
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
fn delete_user(srv: &Node, me: Option<u64>, name: &[u8]) -> bool {
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
fn drop_own_user(c: &mut Client) {
    c.user = None;
    c.authenticated = false;
    c.close_after_reply = true;
}

// ---------------------------------------------------------------------------------------------
// Authentication and checks used by the rest of the node
// ---------------------------------------------------------------------------------------------

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

fn user_name(srv: &Node, client: &Client) -> Vec<u8> {
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

fn add_log(srv: &Node, client: &Client, reason: Denied, context: &'static str, object: Vec<u8>, username: Vec<u8>) {
    let now = crate::node::now_ms();
    client.set_flags();
    if let Some(q) = &client.multi {
        client.shared.multi.store(q.len() as u64, Relaxed);
    }
    let cinfo = client.shared.info_line(now);
    let max = srv.config.get_i64("acllog-max-len").max(0) as usize;
    let mut log = srv.acl.log.lock();
    let hit = log.iter().take(10).position(|e| {
        e.reason == reason
            && e.context == context
            && e.ctime.abs_diff(now) <= 60_000
            && e.object == object
            && e.username == username
    });
    if let Some(i) = hit {
        let mut e = log.remove(i).unwrap();
        e.count += 1;
        e.ctime = now;
        e.cinfo = cinfo;
        log.push_front(e);
    } else {
        log.push_front(LogEntry { count: 1, reason, context, object, username, ctime: now, cinfo });
        while log.len() > max {
            log.pop_back();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// aclfile / config `user` directives
// ---------------------------------------------------------------------------------------------

/// Load `user <name> rules...` definitions (config file users); all or nothing.
fn load_users(srv: &Node, defs: &[Vec<String>]) -> Result<(), Vec<String>> {
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
fn load_file(srv: &Node, path: &str, me: Option<u64>) -> Result<(), String> {
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

fn save_file(srv: &Node, path: &str) -> std::io::Result<()> {
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

// ---------------------------------------------------------------------------------------------
// The ACL command
// ---------------------------------------------------------------------------------------------

const G: &str = "server";
const AF: u64 = flags::ADMIN | flags::NOSCRIPT | flags::LOADING | flags::STALE;
const NF: u64 = flags::NOSCRIPT | flags::LOADING | flags::STALE;

pub static COMMANDS: &[Command] =
    &[Command::new("acl", -2, 0, (0, 0, 0), crate::subcommand_required).group(G).subs(ACL_SUBS)];

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
                drop_own_user(ctx.client);
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
    let Some(u) = ctx.srv.acl.get(&a[2]) else { return ctx.out.null() };
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
    let users: Vec<(Vec<u8>, UserRef)> = ctx.srv.acl.users.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
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
    let names: Vec<Vec<u8>> = ctx.srv.acl.users.read().keys().cloned().collect();
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
    let f = ctx.srv.config.get("aclfile").unwrap_or_default();
    if f.is_empty() {
        return ctx.out.error(NO_ACLFILE);
    }
    match load_file(ctx.srv, &f, Some(ctx.client.id)) {
        Ok(()) => {
            // Every old user but default was freed: a caller authenticated as one is closed.
            if ctx.client.user.is_some() {
                drop_own_user(ctx.client);
            }
            ctx.out.ok()
        }
        Err(e) => ctx.out.error(&format!("ERR {}", e)),
    }
}

fn acl_save(ctx: &mut Ctx, _a: Args) {
    let f = ctx.srv.config.get("aclfile").unwrap_or_default();
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
            ctx.srv.acl.log.lock().clear();
            return ctx.out.ok();
        }
        match parse_i64(&a[2]) {
            Some(c) => count = c.max(0),
            None => return ctx.out.error(ERR_NOT_INT),
        }
    }
    let now = crate::node::now_ms();
    let log = ctx.srv.acl.log.lock();
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
    let Some(u) = ctx.srv.acl.get(&a[2]) else {
        return ctx.out.error(&format!("ERR User '{}' not found", String::from_utf8_lossy(&a[2])));
    };
    let sub = a.from(3);
    let cmd = crate::table::table().lookup(&sub[0]).and_then(|c| {
        if sub.len() == 1 || c.subcommands.is_empty() {
            Some(c)
        } else {
            crate::table::lookup_sub(c, &sub[1])
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

/// CLIENT KILL USER: whether the user exists.
pub fn user_exists(srv: &Node, name: &[u8]) -> bool {
    srv.acl.get(name).is_some()
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

/// CONFIG REWRITE's `user` lines (rewriteConfigUserOption): every user in ACL LIST form, or
/// None when users live in an aclfile.
pub fn config_user_lines(srv: &Node) -> Option<Vec<String>> {
    if !srv.config.get("aclfile").unwrap_or_default().is_empty() {
        return None;
    }
    let users = srv.acl.users.read();
    Some(users.iter().map(|(n, u)| format!("user {} {}", String::from_utf8_lossy(n), u.read().describe())).collect())
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
