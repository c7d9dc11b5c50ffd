//! Write effects: what a command (or expiry/eviction) changed, in the order it changed it.
//! One stream feeds propagation (AOF, replicas), keyspace notifications, WATCH and client-side
//! caching invalidation — nothing re-derives writes on its own.

use crate::smallbytes::SmallBytes;

/// Keyspace-notification classes (Redis's NOTIFY_* flags).
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const LOADED: u32 = 1 << 12;
    pub const MODULE: u32 = 1 << 13; // d
    pub const NEW: u32 = 1 << 14; // n
    /// Whether "new" key events are wanted (notify-keyspace-events has `n` and `K` or `E`):
    /// checked before recording one, so that inserting keys costs nothing otherwise. Process-wide
    /// (one node per process).
    pub static NEW_ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// Parse a notify-keyspace-events string; None on an invalid character.
    pub fn parse(s: &str) -> Option<u32> {
        let mut f = 0;
        for c in s.chars() {
            f |= match c {
                'A' => ALL,
                'g' => GENERIC,
                '$' => STRING,
                'l' => LIST,
                's' => SET,
                'h' => HASH,
                'z' => ZSET,
                'x' => EXPIRED,
                'e' => EVICTED,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                't' => STREAM,
                'm' => KEY_MISS,
                'd' => MODULE,
                'n' => NEW,
                _ => return None,
            };
        }
        Some(f)
    }

    /// Inverse of `parse`, in Redis's keyspaceEventsFlagsToString order.
    pub fn to_string(f: u32) -> String {
        let mut s = String::new();
        if f & ALL == ALL {
            s.push('A');
        } else {
            for (bit, c) in [
                (GENERIC, 'g'),
                (STRING, '$'),
                (LIST, 'l'),
                (SET, 's'),
                (HASH, 'h'),
                (ZSET, 'z'),
                (EXPIRED, 'x'),
                (EVICTED, 'e'),
                (STREAM, 't'),
                (MODULE, 'd'),
            ] {
                if f & bit != 0 {
                    s.push(c);
                }
            }
        }
        if f & KEYSPACE != 0 {
            s.push('K');
        }
        if f & KEYEVENT != 0 {
            s.push('E');
        }
        if f & KEY_MISS != 0 {
            s.push('m');
        }
        if f & NEW != 0 {
            s.push('n');
        }
        s
    }
}

/// One keyspace event to notify.
#[derive(Debug, Clone)]
pub struct KeyEvent {
    pub class: u32,
    pub event: &'static str,
    pub db: usize,
    pub key: SmallBytes,
}

/// Effects collected while a command runs with its shards locked; applied before unlock so
/// that effects on one key keep that key's order.
#[derive(Default)]
pub struct Effects {
    /// Explicit propagation (db, argv). When `propagate_original` is set, the command's own
    /// argv is propagated first instead.
    pub propagate: Vec<(usize, Vec<Vec<u8>>)>,
    pub events: Vec<KeyEvent>,
    /// Keys modified (WATCH, client tracking).
    pub touched: Vec<(usize, SmallBytes)>,
    /// Keys that got elements a blocked client may want (lists, zsets, streams).
    pub ready: Vec<(usize, SmallBytes)>,
    /// Number of changes (Redis's server.dirty).
    pub dirty: u64,
    /// Flushed databases (None: all) since last apply: for WATCH and tracking.
    pub flushed: Vec<Option<usize>>,
    /// The command that flushed already touched the WATCHed keys the flush affected (only
    /// those that existed, as Redis's touchAllWatchedKeysInDb): WATCH skips `flushed`.
    pub flushed_watches_done: bool,
}

impl Effects {
    pub fn is_empty(&self) -> bool {
        self.propagate.is_empty()
            && self.events.is_empty()
            && self.touched.is_empty()
            && self.ready.is_empty()
            && self.flushed.is_empty()
            && self.dirty == 0
    }
    pub fn event(&mut self, class: u32, event: &'static str, db: usize, key: &[u8]) {
        self.events.push(KeyEvent { class, event, db, key: SmallBytes::new(key) });
    }
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        self.touched.push((db, SmallBytes::new(key)));
    }
    pub fn propagate(&mut self, db: usize, argv: Vec<Vec<u8>>) {
        self.propagate.push((db, argv));
    }
}
