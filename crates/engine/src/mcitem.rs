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

/// A memcached item in one allocation: a header (CAS unique, client flags, last access, bits)
/// followed by the value's bytes. A small item costs one malloc chunk (a 3-byte value: 20 bytes,
/// a 32-byte chunk) instead of a struct plus a separate buffer.
#[derive(Clone)]
pub struct McItem(Box<[u8]>);

const CAS: usize = 0;
const FLAGS: usize = 8;
const ATIME: usize = 12;
const BITS: usize = 16;
const HEADER: usize = 17;

impl McItem {
    /// A new item with a fresh CAS.
    pub fn new(data: &[u8], flags: u32, now_secs: u32) -> McItem {
        Self::with_header(data, next_cas(), flags, now_secs, 0)
    }
    fn with_header(data: &[u8], cas: u64, flags: u32, atime: u32, bits: u8) -> McItem {
        let mut b = Vec::with_capacity(HEADER + data.len());
        b.extend_from_slice(&cas.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&atime.to_le_bytes());
        b.push(bits);
        b.extend_from_slice(data);
        McItem(b.into_boxed_slice())
    }
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.0[HEADER..]
    }
    /// Replace the value's bytes, keeping the header.
    pub fn set_data(&mut self, data: &[u8]) {
        if data.len() == self.0.len() - HEADER {
            self.0[HEADER..].copy_from_slice(data);
        } else {
            *self = Self::with_header(data, self.cas(), self.flags(), self.atime(), self.bits());
        }
    }
    #[inline]
    pub fn cas(&self) -> u64 {
        u64::from_le_bytes(self.0[CAS..CAS + 8].try_into().unwrap())
    }
    #[inline]
    pub fn set_cas(&mut self, cas: u64) {
        self.0[CAS..CAS + 8].copy_from_slice(&cas.to_le_bytes());
    }
    /// memcached client flags.
    #[inline]
    pub fn flags(&self) -> u32 {
        u32::from_le_bytes(self.0[FLAGS..FLAGS + 4].try_into().unwrap())
    }
    /// Unix seconds of the last access (`mg l`).
    #[inline]
    pub fn atime(&self) -> u32 {
        u32::from_le_bytes(self.0[ATIME..ATIME + 4].try_into().unwrap())
    }
    #[inline]
    pub fn set_atime(&mut self, now_secs: u32) {
        self.0[ATIME..ATIME + 4].copy_from_slice(&now_secs.to_le_bytes());
    }
    /// [`FETCHED`] | [`TOKEN_SENT`] | [`STALE`] | [`KEY_BINARY`].
    #[inline]
    pub fn bits(&self) -> u8 {
        self.0[BITS]
    }
    #[inline]
    pub fn set_bits(&mut self, bits: u8) {
        self.0[BITS] = bits;
    }
    #[inline]
    pub fn add_bits(&mut self, bits: u8) {
        self.0[BITS] |= bits;
    }
    #[inline]
    pub fn has(&self, bit: u8) -> bool {
        self.bits() & bit != 0
    }
    /// Bytes allocated for the item.
    pub fn mem_usage(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for McItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McItem")
            .field("data", &String::from_utf8_lossy(self.data()))
            .field("flags", &self.flags())
            .field("cas", &self.cas())
            .field("atime", &self.atime())
            .field("bits", &self.bits())
            .finish()
    }
}

/// memcached's slab classes (`-n 48 -f 1.25`, 8-byte aligned, largest 512 KB): how many there are.
pub const SLAB_CLASSES: usize = 64;
/// memcached's slab page size (1 MB).
pub const SLAB_PAGE: u64 = 1024 * 1024;

/// The chunk size of memcached's slab class `cls` (1-based).
pub fn slab_chunk_size(cls: usize) -> u64 {
    let mut chunk = 96u64;
    for _ in 1..cls {
        chunk = ((chunk as f64 * 1.25) as u64).div_ceil(8) * 8;
    }
    chunk.min(512 * 1024)
}

/// The slab class of an item of `size` bytes (memcached's `slabs_clsid`).
pub fn slab_class(size: u64) -> usize {
    let mut chunk = 96u64;
    let mut cls = 1;
    while chunk < size && chunk < 512 * 1024 {
        chunk = ((chunk as f64 * 1.25) as u64).div_ceil(8) * 8;
        cls += 1;
    }
    cls.min(SLAB_CLASSES - 1)
}

/// memcached's total item size (header 48 + key + 1 + flags suffix + data + CRLF + CAS).
pub fn item_total_size(nkey: usize, flags: u32, nbytes: usize) -> u64 {
    (48 + nkey + 1 + if flags == 0 { 0 } else { 4 } + nbytes + 2 + 8) as u64
}

/// The slab class and memcached size of a memcached item entry (None: not one).
pub fn entry_class(e: &crate::Entry) -> Option<(usize, u64)> {
    match &e.value {
        crate::Value::Mc(m) => {
            let size = item_total_size(e.key.len(), m.flags(), m.data().len());
            Some((slab_class(size), size))
        }
        _ => None,
    }
}

/// Per-slab-class counters of memcached items removed by the engine (`stats items`:
/// `items:N:reclaimed` for expired ones, `items:N:evicted`), node-wide.
pub struct ClassCounters {
    pub reclaimed: [AtomicU64; SLAB_CLASSES],
    pub evicted: [AtomicU64; SLAB_CLASSES],
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
pub static CLASS_COUNTERS: ClassCounters =
    ClassCounters { reclaimed: [ZERO; SLAB_CLASSES], evicted: [ZERO; SLAB_CLASSES] };

/// The engine removed `e` from database `db` because it expired (or was evicted).
#[inline]
pub fn note_removed(db: usize, e: &crate::Entry, evicted: bool) {
    if db != 0 {
        return;
    }
    if let Some((cls, _)) = entry_class(e) {
        let c = if evicted { &CLASS_COUNTERS.evicted } else { &CLASS_COUNTERS.reclaimed };
        c[cls].fetch_add(1, Ordering::Relaxed);
    }
}

/// `stats reset`.
pub fn reset_class_counters() {
    for c in CLASS_COUNTERS.reclaimed.iter().chain(CLASS_COUNTERS.evicted.iter()) {
        c.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_data_round_trip() {
        let mut m = McItem::new(b"abc", 42, 1000);
        let cas = m.cas();
        assert!(cas > 0);
        assert_eq!((m.data(), m.flags(), m.atime(), m.bits()), (&b"abc"[..], 42, 1000, 0));
        m.add_bits(FETCHED | STALE);
        m.set_atime(2000);
        m.set_cas(u64::MAX);
        m.set_data(b"longer value");
        assert_eq!((m.data(), m.flags(), m.atime(), m.bits(), m.cas()), (&b"longer value"[..], 42, 2000, 5, u64::MAX));
        m.set_data(b"x");
        assert_eq!((m.data(), m.flags(), m.cas()), (&b"x"[..], 42, u64::MAX));
        assert_eq!(m.mem_usage(), 18);
        assert_eq!(std::mem::size_of::<crate::Value>(), 24);
    }
}
