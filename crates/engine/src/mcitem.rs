//! Memcached metadata for strings stored through the memcached protocols.
//!
//! A memcached item is a Redis string (GET/APPEND/STRLEN... see it through `Value::as_bytes`)
//! that also carries memcached's client flags, a CAS unique and the per-item bits the meta
//! protocol reports (fetched, win-token sent, stale). Plain Redis strings (`Value::Str` /
//! `Value::Raw`) carry none of it: they read as flags 0 with no CAS, and the memcached executor
//! upgrades them to `Value::Mc` (with a fresh CAS) the first time it needs their CAS. Every
//! Redis write replaces or converts the value (SET, INCR, APPEND via `as_raw_mut`), dropping
//! the metadata, so a CAS handed out before a Redis write can never match again.

use std::sync::atomic::{AtomicU64, Ordering};

/// The item was read since it was stored (`mg h`).
pub const FETCHED: u8 = 1;
/// A recache win token (`W`) was handed out (`Z`).
pub const TOKEN_SENT: u8 = 2;
/// Marked stale by `md I` / `ms I` (`X`).
pub const STALE: u8 = 4;
/// Stored with a base64 key (`ms ... b`): `k` echoes it base64 encoded.
pub const KEY_BINARY: u8 = 8;

static NEXT_CAS: AtomicU64 = AtomicU64::new(1);

/// A fresh CAS unique (node-wide, strictly increasing, never 0).
#[inline]
pub fn next_cas() -> u64 {
    NEXT_CAS.fetch_add(1, Ordering::Relaxed)
}

/// A CAS unique issued elsewhere (our primary, the AOF) is now in use here: never hand it
/// out again.
pub fn observe_cas(cas: u64) {
    NEXT_CAS.fetch_max(cas.saturating_add(1), Ordering::Relaxed);
}

/// The last CAS unique handed out (0 if none yet).
pub fn last_cas() -> u64 {
    NEXT_CAS.load(Ordering::Relaxed) - 1
}

#[derive(Clone, Debug, Default)]
pub struct McItem {
    pub data: Vec<u8>,
    /// memcached client flags.
    pub flags: u32,
    /// CAS unique (from [`next_cas`]).
    pub cas: u64,
    /// Unix seconds of the last access (`mg l`).
    pub atime: u32,
    /// [`FETCHED`] | [`TOKEN_SENT`] | [`STALE`] | [`KEY_BINARY`].
    pub bits: u8,
}

impl McItem {
    pub fn new(data: Vec<u8>, flags: u32, now_secs: u32) -> McItem {
        McItem { data, flags, cas: next_cas(), atime: now_secs, bits: 0 }
    }
    #[inline]
    pub fn has(&self, bit: u8) -> bool {
        self.bits & bit != 0
    }
}
