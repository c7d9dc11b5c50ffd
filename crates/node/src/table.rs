//! The one command table: name, arity, flags, key positions, handler, subcommands. Dispatch,
//! arity checks, key extraction for shard locking, COMMAND INFO/DOCS all read it. The
//! families fill it (`install`); the core only reads it.

use crate::Ctx;
use ferrocache_protocol::resp::Args;
use std::collections::HashMap;
use std::sync::OnceLock;

pub type Handler = fn(&mut Ctx, Args);
pub type KeysFn = fn(Args) -> Vec<usize>;

pub mod flags {
    pub const WRITE: u64 = 1 << 0;
    pub const READONLY: u64 = 1 << 1;
    pub const DENYOOM: u64 = 1 << 2;
    pub const ADMIN: u64 = 1 << 3;
    pub const PUBSUB: u64 = 1 << 4;
    pub const NOSCRIPT: u64 = 1 << 5;
    pub const BLOCKING: u64 = 1 << 6;
    pub const LOADING: u64 = 1 << 7;
    pub const STALE: u64 = 1 << 8;
    pub const SKIP_MONITOR: u64 = 1 << 9;
    pub const SKIP_SLOWLOG: u64 = 1 << 10;
    pub const FAST: u64 = 1 << 11;
    pub const NO_AUTH: u64 = 1 << 12;
    pub const MAY_REPLICATE: u64 = 1 << 13;
    pub const NO_MULTI: u64 = 1 << 14;
    pub const ALLOW_BUSY: u64 = 1 << 15;
    pub const MOVABLE_KEYS: u64 = 1 << 16;
    /// Needs every shard locked (FLUSHALL, SWAPDB, ...).
    pub const ALL_SHARDS: u64 = 1 << 17;
    /// Walks shards itself one at a time when run alone (KEYS, SCAN, DBSIZE, RANDOMKEY);
    /// under EXEC it runs with every shard held.
    pub const ITERATES: u64 = 1 << 18;
    /// Allowed in RESP2 subscribed context.
    pub const PUBSUB_CONTEXT: u64 = 1 << 19;
    /// Handled by the executor itself (MULTI, EXEC, DISCARD, WATCH, QUIT...).
    pub const TRANSACTION: u64 = 1 << 20;
}

pub struct Command {
    /// Lowercase name; subcommands use "container|sub".
    pub name: &'static str,
    pub arity: i32,
    pub flags: u64,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub keys_fn: Option<KeysFn>,
    pub handler: Handler,
    pub subcommands: &'static [Command],
    pub group: &'static str,
}

impl Command {
    pub const fn new(name: &'static str, arity: i32, flags: u64, keys: (i32, i32, i32), handler: Handler) -> Command {
        Command {
            name,
            arity,
            flags,
            first_key: keys.0,
            last_key: keys.1,
            step: keys.2,
            keys_fn: None,
            handler,
            subcommands: &[],
            group: "generic",
        }
    }
    pub const fn group(mut self, g: &'static str) -> Command {
        self.group = g;
        self
    }
    pub const fn subs(mut self, s: &'static [Command]) -> Command {
        self.subcommands = s;
        self
    }
    pub const fn keys(mut self, f: KeysFn) -> Command {
        self.keys_fn = Some(f);
        self.flags |= flags::MOVABLE_KEYS;
        self
    }
    pub fn has(&self, f: u64) -> bool {
        self.flags & f != 0
    }
    pub fn is_write(&self) -> bool {
        self.has(flags::WRITE)
    }
    /// The name used in error texts ("get", "config|get").
    pub fn full_name(&self) -> &'static str {
        self.name
    }
    /// Positions of key arguments in `args` (args[0] is the command name).
    pub fn key_positions(&self, args: Args) -> Vec<usize> {
        if let Some(f) = self.keys_fn {
            return f(args).into_iter().filter(|&i| i < args.len()).collect();
        }
        if self.first_key <= 0 {
            return Vec::new();
        }
        let n = args.len() as i32;
        let last = if self.last_key < 0 { n + self.last_key } else { self.last_key.min(n - 1) };
        let mut v = Vec::new();
        let mut i = self.first_key;
        while i <= last && i < n {
            v.push(i as usize);
            i += self.step.max(1);
        }
        v
    }
    pub fn arity_ok(&self, n: usize) -> bool {
        let n = n as i32;
        (self.arity > 0 && n == self.arity) || (self.arity < 0 && n >= -self.arity)
    }
    /// ACL categories, Redis's own (from its command metadata, as the ACL uses them).
    pub fn categories(&self) -> Vec<&'static str> {
        crate::acl::categories_of(self.name).unwrap_or_default()
    }
}

pub struct Table {
    pub by_name: HashMap<&'static str, &'static Command>,
}

static TABLE: OnceLock<Table> = OnceLock::new();

/// The families' command lists, as `ferrocache_commands::registry()` gives them. The node
/// never names a family: it is handed them once, at start.
pub struct Registry(pub Vec<&'static [Command]>);

/// Install the registry (the first one wins: every node in a process runs the same commands).
pub fn install(registry: Registry) {
    TABLE.get_or_init(|| {
        let mut by_name = HashMap::new();
        for fam in registry.0 {
            for c in fam.iter() {
                by_name.insert(c.name, c);
            }
        }
        Table { by_name }
    });
}

/// The command table. Panics before `install` (a node is always built with its registry).
pub fn table() -> &'static Table {
    TABLE.get().expect("the command registry is installed by Node::new")
}

impl Table {
    /// Look up a command by its (any-case) name without allocating for short names.
    pub fn lookup(&self, name: &[u8]) -> Option<&'static Command> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        for (i, &c) in name.iter().enumerate() {
            buf[i] = c.to_ascii_lowercase();
        }
        let s = std::str::from_utf8(&buf[..name.len()]).ok()?;
        self.by_name.get(s).copied()
    }
    pub fn iter(&self) -> impl Iterator<Item = &'static Command> + '_ {
        self.by_name.values().copied()
    }
}

/// Find a subcommand of a container command (case-insensitive).
pub fn lookup_sub(c: &'static Command, sub: &[u8]) -> Option<&'static Command> {
    let prefix_len = c.name.len() + 1;
    c.subcommands.iter().find(|s| s.name.as_bytes()[prefix_len..].eq_ignore_ascii_case(sub))
}
