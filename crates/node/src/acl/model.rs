//! The ACL's data model: users (flags, password hashes, selectors) and selectors (command
//! bitmaps with first-arg exceptions, key patterns with read/write permissions, channel
//! patterns), with the bitmap primitives the rule parser and the checks build on.

use super::categories::acl_cmds;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

pub(super) const CMD_BITS: usize = 1024;
pub(super) const WORDS: usize = CMD_BITS / 64;
/// The reserved bit set only by +@all: "may run future commands".
pub(super) const FUTURE_BIT: usize = CMD_BITS - 1;

pub const SEL_ROOT: u8 = 1;
pub const SEL_ALLKEYS: u8 = 2;
pub const SEL_ALLCHANNELS: u8 = 4;
pub const SEL_ALLCOMMANDS: u8 = 8;

pub(super) const PERM_READ: u8 = 1;
pub(super) const PERM_WRITE: u8 = 2;
pub(super) const PERM_ALL: u8 = 3;

#[derive(Clone)]
pub struct Selector {
    pub flags: u8,
    pub(super) allowed: [u64; WORDS],
    /// Allowed first arguments of otherwise blocked commands (+select|0).
    pub(super) firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    /// Key patterns with their PERM_* flags.
    pub(super) patterns: Vec<(Vec<u8>, u8)>,
    pub(super) channels: Vec<Vec<u8>>,
}

/// `acl-pubsub-default allchannels`: new selectors (and `reset`) start with all channels.
pub(super) static PUBSUB_DEFAULT_ALL: AtomicBool = AtomicBool::new(false);

pub(super) fn pubsub_default() -> u8 {
    if PUBSUB_DEFAULT_ALL.load(Relaxed) {
        SEL_ALLCHANNELS
    } else {
        0
    }
}

impl Selector {
    pub(super) fn new(flags: u8) -> Selector {
        Selector {
            flags: flags | pubsub_default(),
            allowed: [0; WORDS],
            firstargs: BTreeMap::new(),
            patterns: Vec::new(),
            channels: Vec::new(),
        }
    }
    pub(super) fn bit(&self, id: usize) -> bool {
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
    pub(super) fn change_perm(&mut self, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.remove(&id);
        let (a, b) = acl_cmds()[id].subs;
        for s in a..b {
            self.set_bit(s, allow);
        }
    }
    pub(super) fn set_category(&mut self, cflag: u32, v: bool) {
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
    pub(super) fn count_category(&self, cflag: u32) -> (usize, usize) {
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
    pub(super) fn all_commands(&mut self, v: bool) {
        self.allowed = if v { [u64::MAX; WORDS] } else { [0; WORDS] };
        if v {
            self.flags |= SEL_ALLCOMMANDS;
        } else {
            self.flags &= !SEL_ALLCOMMANDS;
        }
        self.firstargs.clear();
    }
}

pub const USER_ON: u8 = 1;
pub const USER_OFF: u8 = 2;
pub const USER_NOPASS: u8 = 4;
pub const USER_SKIP_SANITIZE: u8 = 8;
pub const USER_SANITIZE: u8 = 16;
pub const USER_FLAG_NAMES: &[(u8, &str)] = &[
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

impl User {
    pub(super) fn new(name: &[u8]) -> User {
        User { name: name.to_vec(), flags: USER_OFF, passwords: vec![], selectors: vec![Selector::new(SEL_ROOT)] }
    }
    pub(super) fn root(&mut self) -> &mut Selector {
        &mut self.selectors[0]
    }
    pub fn enabled(&self) -> bool {
        self.flags & USER_OFF == 0
    }

    pub(super) fn check_password(&self, pass: &[u8]) -> bool {
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

    /// Whether every command, key and channel is allowed (the executor's fast path).
    pub(super) fn full(&self) -> bool {
        let r = &self.selectors[0];
        r.flags & (SEL_ALLKEYS | SEL_ALLCHANNELS | SEL_ALLCOMMANDS) == (SEL_ALLKEYS | SEL_ALLCHANNELS | SEL_ALLCOMMANDS)
    }

    pub(super) fn all_channels_any(&self) -> bool {
        self.selectors.iter().any(|s| s.flags & SEL_ALLCHANNELS != 0)
    }
}
