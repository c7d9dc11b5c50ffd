//! The keyspace: many shards (far more than threads), each a mutex around one hash table per
//! database. A key's shard is chosen by its hash alone, so the same shard holds the key in every
//! database, and a multi-key command or a transaction locks the set of shards its keys hash to,
//! in ascending order (no deadlock). Locks are held for the table operations only, never across IO.

use crate::effects::{notify, Effects};
use crate::smallbytes::SmallBytes;
use crate::value::Value;
use hashbrown::raw::RawTable;
use parking_lot::{Mutex, MutexGuard};
use rand::Rng;

/// One key with its value and metadata.
pub struct Entry {
    pub key: SmallBytes,
    pub value: Value,
    /// Absolute expiry in unix milliseconds; 0 = persistent.
    pub expire_at: u64,
    /// LRU clock (seconds, 24 bits) or LFU data (16-bit minutes | 8-bit log counter).
    pub lru: u32,
}

/// One database's slice of a shard: entries stored densely in a Vec, found through an
/// open-addressing index of 4-byte positions. Dense storage keeps memory per key close to the
/// entry size (a table of full entries that doubles would be half empty after each growth), and
/// gives O(1) random sampling for eviction and RANDOMKEY.
#[derive(Default)]
pub struct Table {
    index: RawTable<u32>,
    entries: Vec<Entry>,
    /// Entries with an expiry.
    pub expires: usize,
}

impl Table {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, Entry> {
        self.entries.iter()
    }
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Entry> {
        self.entries.iter_mut()
    }
    /// The entry at a position (0..len), for sampling and cursors.
    pub fn at(&self, i: usize) -> &Entry {
        &self.entries[i]
    }
    pub fn at_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.entries[i]
    }
    /// Position of `key` (hash `h`).
    pub fn find(&self, h: u64, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index.get(h, |&i| entries[i as usize].key.as_slice() == key).map(|&i| i as usize)
    }
    pub fn get(&self, h: u64, key: &[u8]) -> Option<&Entry> {
        self.find(h, key).map(|i| &self.entries[i])
    }
    pub fn get_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut Entry> {
        self.find(h, key).map(|i| &mut self.entries[i])
    }
    /// Append an entry for a key known to be absent. `hash` rehashes keys when the index grows.
    pub fn push(&mut self, h: u64, e: Entry, hash: impl Fn(&[u8]) -> u64) -> usize {
        let i = self.entries.len();
        if e.expire_at != 0 {
            self.expires += 1;
        }
        self.entries.push(e);
        let entries = &self.entries;
        self.index.insert(h, i as u32, |&j| hash(&entries[j as usize].key));
        i
    }
    /// Remove the entry at position `i` (its key hashes to `h`): the last entry moves into its
    /// place and its index slot is updated.
    pub fn remove_at(&mut self, h: u64, i: usize, hash: impl Fn(&[u8]) -> u64) -> Entry {
        self.index.remove_entry(h, |&j| j as usize == i);
        let last = self.entries.len() - 1;
        let e = self.entries.swap_remove(i);
        if i != last {
            let hm = hash(&self.entries[i].key);
            if let Some(slot) = self.index.get_mut(hm, |&j| j as usize == last) {
                *slot = i as u32;
            }
        }
        if e.expire_at != 0 {
            self.expires -= 1;
        }
        e
    }
    pub fn remove(&mut self, h: u64, key: &[u8], hash: impl Fn(&[u8]) -> u64) -> Option<Entry> {
        let i = self.find(h, key)?;
        Some(self.remove_at(h, i, hash))
    }
    pub fn clear(&mut self) {
        *self = Table::default();
    }
    /// Empty the table, handing out its entries.
    pub fn take_entries(&mut self) -> Vec<Entry> {
        std::mem::take(self).entries
    }
    /// Set the expiry of the entry at `i` (0 = none), keeping the `expires` count right.
    pub fn set_expire_at(&mut self, i: usize, ms: u64) {
        let e = &mut self.entries[i];
        match (e.expire_at != 0, ms != 0) {
            (false, true) => self.expires += 1,
            (true, false) => self.expires -= 1,
            _ => {}
        }
        e.expire_at = ms;
    }
    /// Approximate bytes of table structure (not values).
    pub fn overhead_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>() + self.index.buckets() * 5
    }
}

/// Per-shard counters (summed for INFO; no shared atomics on the hot path).
#[derive(Default, Clone, Copy, Debug)]
pub struct ShardStats {
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
    pub evicted: u64,
}

pub struct Shard {
    pub dbs: Box<[Table]>,
    pub stats: ShardStats,
    /// Copy-before-write state of the running snapshot.
    pub cow: ShardCow,
}

/// Per-key copy-before-write of a point-in-time snapshot (BGSAVE without fork). While snapshot
/// `id` runs and has not captured this shard, the first modification of a key saves the key's
/// entry as it was (or "absent") here; the snapshot's walker then takes the live entries with
/// these pre-images substituted (`take_snapshot`), marks the shard `captured` and drops them.
/// Only keys written during a snapshot cost memory, and nothing is encoded on the write path.
#[derive(Default)]
pub struct ShardCow {
    /// Id of the last snapshot that captured this shard (ids only grow; 0: none).
    pub captured: u64,
    /// The snapshot `pre` belongs to (a stale id: left by an aborted snapshot).
    pub id: u64,
    /// Per database: key -> its entry when snapshot `id` started (None: it did not exist).
    pub pre: Vec<hashbrown::HashMap<SmallBytes, Option<Entry>>>,
    /// Approximate bytes held by `pre` (counted in `SnapshotHook::pre_bytes`).
    bytes: usize,
}

/// Approximate bytes of one pre-image (entry, key, value, map slot).
fn pre_image_bytes(key: &[u8], e: Option<&Entry>) -> usize {
    let k = if key.len() > 22 { key.len() } else { 0 };
    48 + k + e.map_or(0, |e| std::mem::size_of::<Entry>() + k + e.value.mem_usage())
}

impl ShardCow {
    /// Drop every pre-image.
    pub fn clear(&mut self, hook: &SnapshotHook) {
        self.id = 0;
        self.pre = Vec::new();
        hook.pre_bytes.fetch_sub(self.bytes, std::sync::atomic::Ordering::Relaxed);
        self.bytes = 0;
    }
    /// Pre-images of database `db` for snapshot `id`, creating the map.
    fn pre_mut(
        &mut self,
        hook: &SnapshotHook,
        id: u64,
        db: usize,
        num_dbs: usize,
    ) -> &mut hashbrown::HashMap<SmallBytes, Option<Entry>> {
        if self.id != id {
            self.clear(hook);
            self.id = id;
        }
        if self.pre.is_empty() {
            self.pre.resize_with(num_dbs, Default::default);
        }
        &mut self.pre[db]
    }
    fn add_bytes(&mut self, hook: &SnapshotHook, n: usize) {
        self.bytes += n;
        let now = hook.pre_bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
        hook.pre_peak.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Shard {
    /// Capture this shard for snapshot `id`: per database, the entries as they were when the
    /// snapshot started (copies of the live entries without a pre-image, then the pre-images
    /// of keys that existed, moved out). Marks the shard captured and drops the pre-images.
    /// Copying is a small fraction of encoding, so the caller can encode after releasing the
    /// shard's lock.
    pub fn take_snapshot(&mut self, hook: &SnapshotHook, id: u64) -> Vec<Vec<Entry>> {
        let mut pre = if self.cow.id == id { std::mem::take(&mut self.cow.pre) } else { Vec::new() };
        let mut out = Vec::with_capacity(self.dbs.len());
        for (db, t) in self.dbs.iter().enumerate() {
            let p = pre.get_mut(db).filter(|m| !m.is_empty());
            let mut v = Vec::with_capacity(t.len());
            for e in t.iter() {
                if p.as_ref().is_some_and(|m| m.contains_key(e.key.as_slice())) {
                    continue;
                }
                v.push(Entry { key: e.key.clone(), value: e.value.deep_clone(), expire_at: e.expire_at, lru: e.lru });
            }
            if let Some(m) = p {
                v.extend(m.drain().filter_map(|(_, e)| e));
            }
            out.push(v);
        }
        self.cow.captured = id;
        self.cow.clear(hook);
        out
    }

    /// Before `key` (hash `h`) of database `db` is modified: if snapshot `id` runs and has not
    /// captured this shard, keep the key's current entry (once per key and snapshot).
    #[inline]
    pub fn preserve(&mut self, hook: &SnapshotHook, id: u64, db: usize, h: u64, key: &[u8]) {
        if id != 0 && self.cow.captured != id {
            self.preserve_slow(hook, id, db, h, key);
        }
    }

    #[inline(never)]
    fn preserve_slow(&mut self, hook: &SnapshotHook, id: u64, db: usize, h: u64, key: &[u8]) {
        // A snapshot that ended (finished: every shard was captured; or aborted) needs nothing.
        if hook.active() != id {
            return;
        }
        let n = self.dbs.len();
        let t = &self.dbs[db];
        let m = self.cow.pre_mut(hook, id, db, n);
        if m.contains_key(key) {
            return;
        }
        let old = t.get(h, key).map(|e| Entry {
            key: e.key.clone(),
            value: e.value.deep_clone(),
            expire_at: e.expire_at,
            lru: e.lru,
        });
        let b = pre_image_bytes(key, old.as_ref());
        m.insert(SmallBytes::new(key), old);
        self.cow.add_bytes(hook, b);
    }

    /// An entry removed from database `db` (active expiry, eviction, FLUSHDB): it becomes its
    /// key's pre-image if snapshot `id` needs one (moved, not copied).
    #[inline]
    pub fn preserve_removed(&mut self, hook: &SnapshotHook, id: u64, db: usize, e: Entry) {
        if id != 0 && self.cow.captured != id && hook.active() == id {
            let n = self.dbs.len();
            let m = self.cow.pre_mut(hook, id, db, n);
            if !m.contains_key(e.key.as_slice()) {
                let b = pre_image_bytes(&e.key, Some(&e));
                m.insert(e.key.clone(), Some(e));
                self.cow.add_bytes(hook, b);
            }
        }
    }
}

#[repr(align(128))]
struct Padded(Mutex<Shard>);

/// Eviction / access-tracking policy (maxmemory-policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl EvictionPolicy {
    pub const ALL: [(&'static str, EvictionPolicy); 8] = [
        ("volatile-lru", EvictionPolicy::VolatileLru),
        ("volatile-lfu", EvictionPolicy::VolatileLfu),
        ("volatile-random", EvictionPolicy::VolatileRandom),
        ("volatile-ttl", EvictionPolicy::VolatileTtl),
        ("allkeys-lru", EvictionPolicy::AllKeysLru),
        ("allkeys-lfu", EvictionPolicy::AllKeysLfu),
        ("allkeys-random", EvictionPolicy::AllKeysRandom),
        ("noeviction", EvictionPolicy::NoEviction),
    ];
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)).map(|(_, p)| *p)
    }
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, p)| *p == self).unwrap().0
    }
    pub fn is_lfu(self) -> bool {
        matches!(self, EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu)
    }
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }
}

pub const LFU_INIT_VAL: u32 = 5;

/// Access-tracking settings read on every lookup.
#[derive(Debug, Clone, Copy)]
pub struct AccessPolicy {
    pub lfu: bool,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u32,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy { lfu: false, lfu_log_factor: 10, lfu_decay_time: 1 }
    }
}

/// Redis's LRU clock: seconds, 24 bits.
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) & 0xFF_FFFF) as u32
}

/// Seconds idle given an entry's LRU clock.
pub fn lru_idle_secs(lru: u32, now_ms: u64) -> u64 {
    let now = lru_clock(now_ms);
    if now >= lru {
        (now - lru) as u64
    } else {
        (now + 0xFF_FFFF - lru) as u64
    }
}

fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 1000 / 60) & 0xFFFF) as u32
}

/// LFU counter after decay (Redis's LFUDecrAndReturn).
pub fn lfu_decr_and_return(lru: u32, now_ms: u64, decay_time: u32) -> u32 {
    let ldt = lru >> 8;
    let counter = lru & 255;
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= ldt { now - ldt } else { 65535 - ldt + now };
    let periods = elapsed.checked_div(decay_time).unwrap_or(0);
    if periods > 0 {
        counter.saturating_sub(periods)
    } else {
        counter
    }
}

fn lfu_log_incr(counter: u32, log_factor: u32) -> u32 {
    if counter == 255 {
        return 255;
    }
    let r: f64 = rand::thread_rng().gen();
    let baseval = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (baseval * log_factor as f64 + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// Initial access data for a new entry.
pub fn initial_lru(policy: &AccessPolicy, now_ms: u64) -> u32 {
    if policy.lfu {
        (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL
    } else {
        lru_clock(now_ms)
    }
}

fn touch_entry(e: &mut Entry, policy: &AccessPolicy, now_ms: u64) {
    if policy.lfu {
        let c = lfu_decr_and_return(e.lru, now_ms, policy.lfu_decay_time);
        let c = lfu_log_incr(c, policy.lfu_log_factor);
        e.lru = (lfu_minutes(now_ms) << 8) | c;
    } else {
        e.lru = lru_clock(now_ms);
    }
}

static NEXT_KEYSPACE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The last key `Keyspace::hash` hashed on this thread, and its hash.
struct LastHash {
    keyspace: u64,
    len: usize,
    key: [u8; LastHash::MAX_KEY],
    hash: u64,
}

impl LastHash {
    /// Longer keys are hashed every time (comparing them would cost about what hashing does).
    const MAX_KEY: usize = 64;
}

thread_local! {
    static LAST_HASH: std::cell::RefCell<LastHash> =
        const { std::cell::RefCell::new(LastHash { keyspace: 0, len: 0, key: [0; LastHash::MAX_KEY], hash: 0 }) };
}

pub struct Keyspace {
    shards: Box<[Padded]>,
    mask: usize,
    hasher: ahash::RandomState,
    /// This keyspace's number in `LAST_HASH` (unique per process).
    id: u64,
    /// Cluster mode: a key's shard is chosen by its hash slot (see `hash`).
    slot_sharding: bool,
    pub num_dbs: usize,
    /// Copy-before-write hook of point-in-time snapshots (BGSAVE without fork).
    pub snapshot: SnapshotHook,
}

/// The running snapshot's id (0: none): one atomic load per write region when no snapshot
/// runs. Set and cleared by the persistence layer; see `ShardCow`.
#[derive(Default)]
pub struct SnapshotHook {
    pub active: std::sync::atomic::AtomicU64,
    /// Approximate bytes of pre-images held in all shards (like the pages a forked child
    /// keeps, not counted for eviction).
    pub pre_bytes: std::sync::atomic::AtomicUsize,
    /// Peak of `pre_bytes` since the running snapshot started.
    pub pre_peak: std::sync::atomic::AtomicUsize,
}

impl SnapshotHook {
    #[inline]
    pub fn active(&self) -> u64 {
        self.active.load(std::sync::atomic::Ordering::Acquire)
    }
    pub fn pre_bytes(&self) -> usize {
        self.pre_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Shard guards held by one command or transaction, sorted by shard index.
pub struct Guards<'a> {
    ks: &'a Keyspace,
    held: smallvec::SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>,
    all: bool,
    /// The snapshot id seen by the first write under these guards (None: no write yet).
    /// Every write of one lock-holding region (a command, or a whole EXEC) is on the same
    /// side of a snapshot's start.
    pub snapshot: Option<u64>,
    /// A write command runs under these guards: entries handed out by lookups may be
    /// modified, so their pre-images are kept first (see `ShardCow`).
    pub writing: bool,
    /// A command of this replica's primary runs under these guards: logically expired keys
    /// are live (Redis's expireIfNeeded returns 0 for the master client), so the primary's
    /// DEL, INCR, ... find the key it still has. Nested commands (EXEC, scripts) share it.
    pub primary_view: bool,
}

impl<'a> Guards<'a> {
    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }
    pub fn holds_all(&self) -> bool {
        self.all
    }
    pub fn shard(&mut self, idx: usize) -> &mut Shard {
        if self.all {
            return &mut self.held[idx].1;
        }
        match self.held.binary_search_by_key(&idx, |(i, _)| *i) {
            Ok(p) => &mut self.held[p].1,
            Err(p) => {
                // A key outside the declared set: lock it now. Only reachable through a
                // command whose key spec is incomplete; correct but may wait.
                let g = self.ks.shards[idx].0.lock();
                self.held.insert(p, (idx, g));
                &mut self.held[p].1
            }
        }
    }
    /// The snapshot this region's modifications are ordered after (0: none), fixed at the
    /// first call.
    #[inline]
    pub fn cow_id(&mut self) -> u64 {
        *self.snapshot.get_or_insert_with(|| self.ks.snapshot.active())
    }
    /// All held shards with their indexes.
    pub fn for_each_held(&mut self, mut f: impl FnMut(usize, &mut Shard)) {
        for (i, g) in self.held.iter_mut() {
            f(*i, g);
        }
    }
    /// All held shards (for commands that lock everything).
    /// Exchange the databases of every shard with `other`'s (both hold every shard of
    /// keyspaces made alike, see `Keyspace::sibling`): a replica's asynchronous load swaps in
    /// the data set it loaded on the side.
    pub fn swap_dbs_with(&mut self, other: &mut Guards) {
        assert!(self.all && other.all && self.held.len() == other.held.len(), "swap needs every shard held");
        for ((i, a), (j, b)) in self.held.iter_mut().zip(other.held.iter_mut()) {
            assert_eq!(i, j);
            std::mem::swap(&mut a.dbs, &mut b.dbs);
        }
    }

    pub fn for_each_shard(&mut self, mut f: impl FnMut(&mut Shard)) {
        for (_, g) in self.held.iter_mut() {
            f(g);
        }
    }
}

impl Keyspace {
    pub fn new(num_shards: usize, num_dbs: usize) -> Keyspace {
        let n = num_shards.next_power_of_two().max(1);
        let shards = (0..n)
            .map(|_| {
                Padded(Mutex::new(Shard {
                    dbs: (0..num_dbs).map(|_| Table::default()).collect(),
                    stats: ShardStats::default(),
                    cow: ShardCow::default(),
                }))
            })
            .collect();
        Keyspace {
            shards,
            mask: n - 1,
            hasher: ahash::RandomState::new(),
            id: NEXT_KEYSPACE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            slot_sharding: false,
            num_dbs,
            snapshot: SnapshotHook::default(),
        }
    }

    /// An empty keyspace whose keys hash and shard exactly as this one's, so that its shards'
    /// databases can be swapped in (`Guards::swap_dbs_with`).
    pub fn sibling(&self) -> Keyspace {
        let mut k = Keyspace::new(self.shards.len(), self.num_dbs);
        k.hasher = self.hasher.clone();
        k.slot_sharding = self.slot_sharding;
        k
    }

    /// Cluster mode: every key of a hash slot lives in shard `slot % shards`, so the keys of
    /// one slot (COUNTKEYSINSLOT, GETKEYSINSLOT, resharding) are found by walking one shard —
    /// 1/1024 of the keyspace — at no memory cost per key (Redis 7.0 keeps a per-slot linked
    /// list through every key; Valkey 8 dropped it for per-slot dictionaries).
    pub fn with_slot_sharding(mut self) -> Keyspace {
        assert!(self.shards.len() <= crate::slot::SLOTS, "more shards than slots");
        self.slot_sharding = true;
        // The hash function changed: what `hash` remembers under the old id is stale.
        self.id = NEXT_KEYSPACE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// The shard holding the keys of hash `slot` (cluster mode).
    pub fn shard_of_slot(&self, slot: u16) -> Option<usize> {
        self.slot_sharding.then_some(slot as usize & self.mask)
    }

    /// A key's hash, remembered for the next call on this thread: one request hashes its key
    /// to route it (cluster mode), to pick and lock its shard, and again in the table lookup;
    /// the second and third calls compare the key with the last one instead (in cluster mode
    /// each hash includes the key's CRC16).
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        if key.len() > LastHash::MAX_KEY {
            return self.hash_uncached(key);
        }
        LAST_HASH.with(|last| {
            let mut last = last.borrow_mut();
            if last.keyspace == self.id && last.len == key.len() && &last.key[..key.len()] == key {
                return last.hash;
            }
            let h = self.hash_uncached(key);
            last.keyspace = self.id;
            last.len = key.len();
            last.key[..key.len()].copy_from_slice(key);
            last.hash = h;
            h
        })
    }

    /// The hash slot of `key` in cluster mode, from (and for) `hash`'s memory.
    pub fn key_slot(&self, key: &[u8]) -> u16 {
        if self.slot_sharding {
            ((self.hash(key) >> 40) & 0x3FFF) as u16
        } else {
            crate::slot::key_slot(key)
        }
    }

    /// `hash` without the memory (table growth rehashes every key once).
    #[inline]
    pub fn hash_uncached(&self, key: &[u8]) -> u64 {
        let h = self.hasher.hash_one(key);
        if self.slot_sharding {
            // Bits 40..54 (the shard bits and above) carry the slot: the shard is slot % 1024.
            // The table inside a shard hashes with the other bits, as all keys of a shard
            // share bits 40..50 in standalone mode too.
            (h & !(0x3FFF << 40)) | ((crate::slot::key_slot(key) as u64) << 40)
        } else {
            h
        }
    }
    #[inline]
    pub fn shard_of_hash(&self, h: u64) -> usize {
        ((h >> 40) as usize) & self.mask
    }
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.shard_of_hash(self.hash(key))
    }
    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }

    /// Lock the shards of `keys` in ascending order.
    pub fn lock_keys<'k, I: IntoIterator<Item = &'k [u8]>>(&self, keys: I) -> Guards<'_> {
        let mut idx: smallvec::SmallVec<[usize; 4]> = keys.into_iter().map(|k| self.shard_of(k)).collect();
        idx.sort_unstable();
        idx.dedup();
        self.lock_shards(&idx)
    }

    /// Lock the given shards (must be sorted and unique).
    pub fn lock_shards(&self, idx: &[usize]) -> Guards<'_> {
        let held = idx.iter().map(|&i| (i, self.shards[i].0.lock())).collect();
        Guards { ks: self, held, all: false, snapshot: None, writing: false, primary_view: false }
    }

    /// Lock every shard (FLUSHALL, SWAPDB, KEYS under MULTI, scripts with undeclared keys).
    pub fn lock_all(&self) -> Guards<'_> {
        let held = (0..self.shards.len()).map(|i| (i, self.shards[i].0.lock())).collect();
        Guards { ks: self, held, all: true, snapshot: None, writing: false, primary_view: false }
    }

    /// Lock shards like `lock_shards` (`idx` sorted and unique; `all`: every shard, as
    /// `lock_all`), but while waiting for a shard someone else holds, poll `give_up` every
    /// millisecond: when it returns true, release what was taken and return None. Uncontended,
    /// this costs what `lock_shards` costs.
    pub fn lock_shards_or(&self, idx: &[usize], all: bool, mut give_up: impl FnMut() -> bool) -> Option<Guards<'_>> {
        let mut held = smallvec::SmallVec::with_capacity(idx.len());
        for &i in idx {
            let m = &self.shards[i].0;
            let g = match m.try_lock() {
                Some(g) => g,
                None => loop {
                    if let Some(g) = m.try_lock_for(std::time::Duration::from_millis(1)) {
                        break g;
                    }
                    if give_up() {
                        return None;
                    }
                },
            };
            held.push((i, g));
        }
        Some(Guards { ks: self, held, all, snapshot: None, writing: false, primary_view: false })
    }

    /// Guards holding the shard of one key.
    pub fn lock_key(&self, key: &[u8]) -> Guards<'_> {
        let i = self.shard_of(key);
        let mut held = smallvec::SmallVec::new();
        held.push((i, self.shards[i].0.lock()));
        Guards { ks: self, held, all: false, snapshot: None, writing: false, primary_view: false }
    }

    /// Lock one shard.
    pub fn lock_one(&self, idx: usize) -> MutexGuard<'_, Shard> {
        self.shards[idx].0.lock()
    }

    /// Keys in a database (DBSIZE).
    pub fn db_size(&self, db: usize) -> usize {
        self.shards.iter().map(|s| s.0.lock().dbs[db].len()).sum()
    }

    /// (keys, keys with expiry) per database.
    pub fn db_counts(&self) -> Vec<(usize, usize)> {
        let mut v = vec![(0, 0); self.num_dbs];
        for s in self.shards.iter() {
            let g = s.0.lock();
            for (i, t) in g.dbs.iter().enumerate() {
                v[i].0 += t.len();
                v[i].1 += t.expires;
            }
        }
        v
    }

    pub fn stats(&self) -> ShardStats {
        let mut t = ShardStats::default();
        for s in self.shards.iter() {
            let g = s.0.lock();
            t.hits += g.stats.hits;
            t.misses += g.stats.misses;
            t.expired += g.stats.expired;
            t.evicted += g.stats.evicted;
        }
        t
    }

    pub fn reset_stats(&self) {
        for s in self.shards.iter() {
            s.0.lock().stats = ShardStats::default();
        }
    }

    /// One step of active expiry: scan up to `max_shards` shards from `cursor`, deleting expired
    /// keys. Returns the next cursor.
    /// `apply` runs with each shard's lock still held, so expiry effects keep their order.
    pub fn active_expire_step(
        &self,
        cursor: usize,
        max_shards: usize,
        now_ms: u64,
        fx: &mut Effects,
        apply: &mut dyn FnMut(&mut Effects),
    ) -> usize {
        let n = self.shards.len();
        let mut c = cursor % n;
        for _ in 0..max_shards.min(n) {
            let mut g = self.shards[c].0.lock();
            let shard = &mut *g;
            let snap = self.snapshot.active();
            for db in 0..shard.dbs.len() {
                if shard.dbs[db].expires == 0 {
                    continue;
                }
                let mut i = 0;
                while i < shard.dbs[db].len() {
                    let t = &mut shard.dbs[db];
                    let e = t.at(i);
                    if e.expire_at != 0 && e.expire_at <= now_ms {
                        let h = self.hash(&e.key);
                        let e = t.remove_at(h, i, |k| self.hash_uncached(k));
                        shard.stats.expired += 1;
                        crate::mcitem::note_removed(db, &e, false);
                        expired_effects(fx, db, &e.key);
                        // A running snapshot keeps the entry as it was (moved, not copied).
                        shard.preserve_removed(&self.snapshot, snap, db, e);
                        // the last entry moved into position i: look at it next
                    } else {
                        i += 1;
                    }
                }
            }
            if !fx.is_empty() {
                apply(fx);
            }
            drop(g);
            c = (c + 1) % n;
        }
        c
    }

    /// Evict one key per `policy`, sampling `samples` candidates. Returns false when nothing
    /// could be evicted.
    pub fn evict_one(
        &self,
        policy: EvictionPolicy,
        access: &AccessPolicy,
        samples: usize,
        now_ms: u64,
        fx: &mut Effects,
    ) -> bool {
        self.evict_one_with(policy, access, samples, now_ms, fx, &mut |_| {})
    }

    /// `evict_one`, with `apply` called on the eviction's effects while the shard lock is still
    /// held (so the DEL is ordered before any later write of the same key).
    pub fn evict_one_with(
        &self,
        policy: EvictionPolicy,
        access: &AccessPolicy,
        samples: usize,
        now_ms: u64,
        fx: &mut Effects,
        apply: &mut dyn FnMut(&mut Effects),
    ) -> bool {
        if policy == EvictionPolicy::NoEviction {
            return false;
        }
        let mut rng = rand::thread_rng();
        let n = self.shards.len();
        // best: (score, shard, db, key); higher score = better to evict
        let mut best: Option<(u64, usize, usize, SmallBytes)> = None;
        let mut tries = 0;
        let mut sampled = 0;
        // Random shards first; when they keep coming up empty (a few keys in many shards), a
        // linear pass over every shard from a random start, so that a non-empty keyspace
        // always yields a victim (as Redis's dictGetSomeKeys does).
        let random_tries = samples.max(1) * 64;
        let linear_from = rng.gen_range(0..n);
        while sampled < samples.max(1) && tries < random_tries + n {
            let si = if tries < random_tries {
                rng.gen_range(0..n)
            } else {
                if best.is_some() {
                    break;
                }
                (linear_from + tries - random_tries) % n
            };
            tries += 1;
            let g = self.shards[si].0.lock();
            let dbs: Vec<usize> = (0..g.dbs.len())
                .filter(|&d| {
                    let t = &g.dbs[d];
                    if policy.volatile_only() {
                        t.expires > 0
                    } else {
                        !t.is_empty()
                    }
                })
                .collect();
            if dbs.is_empty() {
                continue;
            }
            let db = dbs[rng.gen_range(0..dbs.len())];
            let t = &g.dbs[db];
            let len = t.len();
            let start = rng.gen_range(0..len);
            for off in 0..len {
                let i = (start + off) % len;
                {
                    let e = t.at(i);
                    if policy.volatile_only() && e.expire_at == 0 {
                        continue;
                    }
                    let score = match policy {
                        EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom => 1,
                        EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => {
                            255 - lfu_decr_and_return(e.lru, now_ms, access.lfu_decay_time) as u64
                        }
                        EvictionPolicy::VolatileTtl => u64::MAX - e.expire_at,
                        _ => lru_idle_secs(e.lru, now_ms) * 1000 + 1,
                    };
                    if best.as_ref().is_none_or(|b| score > b.0) {
                        best = Some((score, si, db, e.key.clone()));
                    }
                    sampled += 1;
                    break;
                }
            }
            if matches!(policy, EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom) && best.is_some() {
                break;
            }
        }
        let Some((_, si, db, key)) = best else { return false };
        let mut g = self.shards[si].0.lock();
        let h = self.hash(&key);
        let shard = &mut *g;
        let snap = self.snapshot.active();
        let t = &mut shard.dbs[db];
        if let Some(e) = t.remove(h, &key, |k| self.hash_uncached(k)) {
            shard.stats.evicted += 1;
            crate::mcitem::note_removed(db, &e, true);
            fx.propagate(db, vec![b"DEL".to_vec(), key.to_vec()]);
            fx.event(notify::EVICTED, "evicted", db, &key);
            fx.touch(db, &key);
            fx.dirty += 1;
            // A running snapshot keeps the entry as it was (the memory is freed once the
            // snapshot has passed this shard).
            shard.preserve_removed(&self.snapshot, snap, db, e);
            apply(fx);
        }
        true
    }
}

fn expired_effects(fx: &mut Effects, db: usize, key: &[u8]) {
    fx.propagate(db, vec![b"DEL".to_vec(), key.to_vec()]);
    fx.event(notify::EXPIRED, "expired", db, key);
    fx.touch(db, key);
}

/// A command's view of one database over the shards it holds.
pub struct Db<'g, 'a> {
    pub guards: &'g mut Guards<'a>,
    pub db: usize,
    pub now_ms: u64,
    pub fx: &'g mut Effects,
    pub access: AccessPolicy,
    /// Replicas do not expire keys themselves (they wait for the primary's DEL).
    pub expire_enabled: bool,
}

impl<'g, 'a> Db<'g, 'a> {
    /// Database `db` over the held shards at time `now_ms`, with the default access tracking
    /// (LRU) and expiry on; `with_access` / `expiring` change those.
    #[inline]
    pub fn new(guards: &'g mut Guards<'a>, fx: &'g mut Effects, db: usize, now_ms: u64) -> Self {
        Db { guards, db, now_ms, fx, access: AccessPolicy::default(), expire_enabled: true }
    }
    #[inline]
    pub fn with_access(mut self, access: AccessPolicy) -> Self {
        self.access = access;
        self
    }
    /// Whether logically expired keys are removed when met (replicas wait for the primary's DEL).
    #[inline]
    pub fn expiring(mut self, on: bool) -> Self {
        self.expire_enabled = on;
        self
    }

    pub fn keyspace(&self) -> &'a Keyspace {
        self.guards.keyspace()
    }

    /// Another database over the same guards.
    pub fn with_db(&mut self, db: usize) -> Db<'_, 'a> {
        Db::new(&mut *self.guards, &mut *self.fx, db, self.now_ms)
            .with_access(self.access)
            .expiring(self.expire_enabled)
    }

    fn locate(&mut self, key: &[u8]) -> (u64, &mut Shard) {
        let ks = self.guards.keyspace();
        let h = ks.hash(key);
        let si = ks.shard_of_hash(h);
        (h, self.guards.shard(si))
    }

    /// Remove `key` if it is logically expired. Returns true if it was.
    fn expire_if_needed(&mut self, key: &[u8]) -> bool {
        let now = self.now_ms;
        let db = self.db;
        let enabled = self.expire_enabled;
        let id = self.guards.cow_id();
        let primary_view = self.guards.primary_view;
        let ks = self.guards.keyspace();
        let (h, shard) = self.locate(key);
        let t = &mut shard.dbs[db];
        let expired = match t.get(h, key) {
            Some(e) => e.expire_at != 0 && e.expire_at <= now && !primary_view,
            None => return false,
        };
        if !expired {
            return false;
        }
        if !enabled {
            return true;
        }
        if let Some(e) = t.remove(h, key, |k| ks.hash_uncached(k)) {
            crate::mcitem::note_removed(db, &e, false);
            shard.preserve_removed(&ks.snapshot, id, db, e);
        }
        shard.stats.expired += 1;
        expired_effects(self.fx, db, key);
        true
    }

    /// Look up for reading: counts keyspace hits/misses and updates LRU/LFU.
    pub fn get(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.lookup(key, true, true)
    }

    /// Look up for reading without touching LRU/LFU (Redis's LOOKUP_NOTOUCH: EXISTS), counting
    /// the hit or miss.
    pub fn get_no_touch(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.lookup(key, true, false)
    }

    /// Look up for writing (no hit/miss accounting).
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.lookup(key, false, true)
    }

    /// Look up without touching LRU/LFU or stats (OBJECT, TYPE-like introspection).
    pub fn peek(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.lookup(key, false, false)
    }

    /// One probe: find the entry, drop it if logically expired, else account and return it.
    fn lookup(&mut self, key: &[u8], stats: bool, touch: bool) -> Option<&mut Entry> {
        let now = self.now_ms;
        let db = self.db;
        let access = self.access;
        let enabled = self.expire_enabled;
        let id = self.guards.cow_id();
        let writing = self.guards.writing;
        let primary_view = self.guards.primary_view;
        let ks = self.guards.keyspace();
        let h = ks.hash(key);
        let shard = self.guards.shard(ks.shard_of_hash(h));
        let t = &mut shard.dbs[db];
        let Some(i) = t.find(h, key) else {
            if stats {
                shard.stats.misses += 1;
            }
            return None;
        };
        let exp = t.at(i).expire_at;
        if exp != 0 && exp <= now && !primary_view {
            if stats {
                shard.stats.misses += 1;
            }
            if enabled {
                let e = t.remove_at(h, i, |k| ks.hash_uncached(k));
                crate::mcitem::note_removed(db, &e, false);
                shard.preserve_removed(&ks.snapshot, id, db, e);
                shard.stats.expired += 1;
                expired_effects(self.fx, db, key);
            }
            return None;
        }
        if stats {
            shard.stats.hits += 1;
        }
        if writing {
            // The caller may modify the entry: a running snapshot keeps it as it is now.
            shard.preserve(&ks.snapshot, id, db, h, key);
        }
        let e = shard.dbs[db].at_mut(i);
        if touch {
            touch_entry(e, &access, now);
        }
        Some(e)
    }

    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.peek(key).is_some()
    }

    /// Insert or replace the value of `key`. `keep_ttl` keeps an existing expiry (KEEPTTL).
    /// Returns the previous value.
    pub fn set(&mut self, key: &[u8], value: Value, keep_ttl: bool) -> Option<Value> {
        let db = self.db;
        // A list, sorted set or stream put in place whole (RENAME, MOVE, COPY, RESTORE, SORT
        // STORE, SWAPDB-free paths) may serve blocked clients: Redis's dbAdd signals the key.
        if matches!(value, Value::List(_) | Value::ZSet(_) | Value::Stream(_)) {
            self.fx.ready.push((db, SmallBytes::new(key)));
        }
        let now = self.now_ms;
        let enabled = self.expire_enabled;
        let lru = initial_lru(&self.access, now);
        let id = self.guards.cow_id();
        let primary_view = self.guards.primary_view;
        let ks = self.guards.keyspace();
        let h = ks.hash(key);
        let shard = self.guards.shard(ks.shard_of_hash(h));
        shard.preserve(&ks.snapshot, id, db, h, key);
        let t = &mut shard.dbs[db];
        if let Some(i) = t.find(h, key) {
            let exp = t.at(i).expire_at;
            let expired = exp != 0 && exp <= now && !primary_view;
            if !expired || !enabled {
                if (!keep_ttl || expired) && exp != 0 {
                    t.set_expire_at(i, 0);
                }
                let e = t.at_mut(i);
                e.lru = lru;
                if matches!(e.value, Value::Stream(_)) && !matches!(value, Value::Stream(_)) {
                    // A stream overwritten by another type: its XREADGROUP waiters are woken
                    // (and answered that the key no longer exists), as Redis's dbSetValue does.
                    self.fx.ready.push((db, SmallBytes::new(key)));
                }
                return Some(std::mem::replace(&mut e.value, value));
            }
            // A logically expired key is replaced as if absent (its expiry is propagated first).
            let e = t.remove_at(h, i, |k| ks.hash_uncached(k));
            crate::mcitem::note_removed(db, &e, false);
            shard.stats.expired += 1;
            expired_effects(self.fx, db, key);
        }
        t.push(h, Entry { key: SmallBytes::new(key), value, expire_at: 0, lru }, |k| ks.hash_uncached(k));
        if crate::effects::notify::NEW_ENABLED.load(std::sync::atomic::Ordering::Relaxed) {
            self.fx.event(crate::effects::notify::NEW, "new", db, key);
        }
        None
    }

    /// Insert a value for a key known to be absent, with an expiry (RESTORE, COPY, MOVE).
    pub fn insert_new(&mut self, key: &[u8], value: Value, expire_at: u64) {
        self.set(key, value, false);
        if expire_at != 0 {
            self.set_expire(key, expire_at);
        }
    }

    /// Remove `key`; returns its entry if it existed (and was not expired).
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        if self.expire_if_needed(key) {
            return None;
        }
        let db = self.db;
        let id = self.guards.cow_id();
        let ks = self.guards.keyspace();
        let (h, shard) = self.locate(key);
        shard.preserve(&ks.snapshot, id, db, h, key);
        let removed = shard.dbs[db].remove(h, key, |k| ks.hash_uncached(k));
        if matches!(removed.as_ref().map(|e| &e.value), Some(Value::Stream(_))) {
            // Redis's signalDeletedKeyAsReady: clients blocked in XREADGROUP on a deleted
            // stream are woken up (and answered UNBLOCKED).
            self.fx.ready.push((db, SmallBytes::new(key)));
        }
        removed
    }

    /// Set the absolute expiry (ms) of an existing key. Returns false if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], at_ms: u64) -> bool {
        let db = self.db;
        let id = self.guards.cow_id();
        let ks = self.guards.keyspace();
        let (h, shard) = self.locate(key);
        let Some(i) = shard.dbs[db].find(h, key) else { return false };
        shard.preserve(&ks.snapshot, id, db, h, key);
        shard.dbs[db].set_expire_at(i, at_ms.max(1));
        true
    }

    /// Remove the expiry of a key. Returns true if it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        let db = self.db;
        let id = self.guards.cow_id();
        let ks = self.guards.keyspace();
        let (h, shard) = self.locate(key);
        let Some(i) = shard.dbs[db].find(h, key) else { return false };
        if shard.dbs[db].at(i).expire_at == 0 {
            return false;
        }
        shard.preserve(&ks.snapshot, id, db, h, key);
        shard.dbs[db].set_expire_at(i, 0);
        true
    }

    /// Remove a key whose value became empty (collections are deleted when empty).
    pub fn remove_if_empty(&mut self, key: &[u8]) -> bool {
        let empty = match self.peek(key) {
            Some(e) => {
                !matches!(e.value, Value::Str(_) | Value::Raw(_) | Value::Stream(_) | Value::Mc(_))
                    && e.value.is_empty()
            }
            None => false,
        };
        if empty {
            self.remove(key);
        }
        empty
    }

    /// Record a key modification (WATCH, tracking), a notification and a dirty count.
    pub fn modified(&mut self, key: &[u8], class: u32, event: &'static str) {
        self.fx.touch(self.db, key);
        if class != 0 {
            self.fx.event(class, event, self.db, key);
        }
        self.fx.dirty += 1;
    }

    /// Drop every key of this database in the held shards. Returns keys removed.
    /// A running snapshot that has not captured a shard keeps its entries (moved). `lazy`:
    /// the tables are freed by the lazyfree thread (FLUSHALL/FLUSHDB ASYNC).
    pub fn clear(&mut self, lazy: bool) -> usize {
        let db = self.db;
        let id = self.guards.cow_id();
        let hook = &self.guards.keyspace().snapshot;
        let mut n = 0;
        self.guards.for_each_shard(|s| {
            let t = &mut s.dbs[db];
            n += t.len();
            if id != 0 && s.cow.captured != id && hook.active() == id {
                for e in t.take_entries() {
                    s.preserve_removed(hook, id, db, e);
                }
            } else if lazy {
                let keys = t.len();
                crate::lazyfree::free_entries(std::mem::take(t), keys);
            } else {
                t.clear();
            }
        });
        n
    }
}

#[cfg(test)]
#[path = "keyspace_tests.rs"]
mod tests;
