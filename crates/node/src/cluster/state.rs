//! The node's view of the cluster (Redis's `clusterState`): the known nodes, the owner of each
//! of the 16384 slots, the slots being migrated or imported, the epochs, and `nodes.conf`
//! (Redis's format, rewritten on every change; see `write_config`).

use super::slot::SLOTS;
use crate::config::Config;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::path::PathBuf;

// Node flags, as cluster.h's CLUSTER_NODE_* (the bus carries them as they are).
pub const MASTER: u16 = 1;
pub const SLAVE: u16 = 2;
pub const PFAIL: u16 = 4;
pub const FAIL: u16 = 8;
pub const MYSELF: u16 = 16;
pub const HANDSHAKE: u16 = 32;
pub const NOADDR: u16 = 64;
/// CLUSTER_NODE_MEET: send MEET, not PING, on the next link.
pub const MEET_FLAG: u16 = 128;
/// CLUSTER_NODE_MIGRATE_TO: a master that replicas may migrate to (migration.rs).
pub const MIGRATE_TO: u16 = 256;
pub const NOFAILOVER: u16 = 512;

/// redisNodeFlagsTable's order and names.
const FLAG_NAMES: &[(u16, &str)] = &[
    (MYSELF, "myself"),
    (MASTER, "master"),
    (SLAVE, "slave"),
    (PFAIL, "fail?"),
    (FAIL, "fail"),
    (HANDSHAKE, "handshake"),
    (NOADDR, "noaddr"),
    (NOFAILOVER, "nofailover"),
];

/// One node as this node knows it (Redis's `clusterNode`).
#[derive(Clone, Debug, Default)]
pub struct ClusterNode {
    pub id: String,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub hostname: String,
    pub flags: u16,
    /// The master's id for a replica.
    pub master: Option<String>,
    pub ping_sent: u64,
    pub pong_recv: u64,
    pub config_epoch: u64,
    /// Whether a bus link to it is up.
    pub link: bool,
    /// Creation time in ms (handshake nodes time out).
    pub ctime: u64,
    /// Failure reports: (reporting master, ms of the report); when FAIL was set.
    pub fail_reports: Vec<(String, u64)>,
    pub fail_time: u64,
    /// When we last voted for a replica of this master (failover elections).
    pub voted_time: u64,
    /// Its replication offset, from its last message (replica ranks).
    pub repl_offset: u64,
}

impl ClusterNode {
    pub fn is_master(&self) -> bool {
        self.flags & MASTER != 0
    }
    pub fn failed(&self) -> bool {
        self.flags & FAIL != 0
    }
}

/// Redis's representClusterNodeFlags.
pub fn flags_text(flags: u16) -> String {
    let names: Vec<&str> = FLAG_NAMES.iter().filter(|(f, _)| flags & f != 0).map(|(_, n)| *n).collect();
    if names.is_empty() {
        "noflags".into()
    } else {
        names.join(",")
    }
}

fn parse_flags(s: &str) -> u16 {
    s.split(',').map(|n| FLAG_NAMES.iter().find(|(_, m)| *m == n).map(|(f, _)| *f).unwrap_or(0)).fold(0, |a, f| a | f)
}

pub fn random_id() -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    (0..40).map(|_| format!("{:x}", r.gen_range(0..16))).collect()
}

/// Redis's clusterState, less what the bus will add.
#[derive(Clone, Debug)]
pub struct ClusterState {
    pub myself: String,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    pub nodes: BTreeMap<String, ClusterNode>,
    /// The owner of each slot.
    pub slots: super::owners::SlotOwners,
    /// slot → target node id (MIGRATING) and slot → source node id (IMPORTING).
    pub migrating: BTreeMap<u16, String>,
    pub importing: BTreeMap<u16, String>,
}

impl ClusterState {
    fn new(myself: ClusterNode) -> ClusterState {
        let id = myself.id.clone();
        let mut nodes = BTreeMap::new();
        nodes.insert(id.clone(), myself);
        ClusterState {
            myself: id,
            current_epoch: 0,
            last_vote_epoch: 0,
            nodes,
            slots: Default::default(),
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
        }
    }

    pub fn me(&self) -> &ClusterNode {
        &self.nodes[&self.myself]
    }
    pub fn me_mut(&mut self) -> &mut ClusterNode {
        self.nodes.get_mut(&self.myself).expect("myself")
    }
    pub fn is_mine(&self, slot: usize) -> bool {
        self.slots.is(slot, &self.myself)
    }
    /// The epoch CLUSTER INFO / NODES show for a node: a replica shows its master's.
    pub fn node_epoch(&self, n: &ClusterNode) -> u64 {
        match n.master.as_ref().and_then(|m| self.nodes.get(m)) {
            Some(m) if n.flags & SLAVE != 0 => m.config_epoch,
            _ => n.config_epoch,
        }
    }
    pub fn num_slots(&self, id: &str) -> usize {
        self.slots.count(id)
    }
    /// The slot ranges a node owns, as (start, end) pairs.
    pub fn ranges(&self, id: &str) -> Vec<(usize, usize)> {
        self.slots.ranges(id)
    }

    /// Redis's clusterGenNodeDescription.
    pub fn node_line(&self, n: &ClusterNode) -> String {
        self.node_line_with(n, &self.ranges(&n.id))
    }

    /// [`Self::node_line`] with the node's slot ranges already known.
    fn node_line_with(&self, n: &ClusterNode, ranges: &[(usize, usize)]) -> String {
        let mut s = format!("{} {}:{}@{}", n.id, n.ip, n.port, n.cport);
        if !n.hostname.is_empty() {
            s.push(',');
            s.push_str(&n.hostname);
        }
        s.push(' ');
        s.push_str(&flags_text(n.flags));
        s.push(' ');
        s.push_str(n.master.as_deref().unwrap_or("-"));
        let link = if n.link || n.flags & MYSELF != 0 { "connected" } else { "disconnected" };
        s.push_str(&format!(" {} {} {} {}", n.ping_sent, n.pong_recv, self.node_epoch(n), link));
        for &(a, b) in ranges {
            if a == b {
                s.push_str(&format!(" {}", a));
            } else {
                s.push_str(&format!(" {}-{}", a, b));
            }
        }
        if n.flags & MYSELF != 0 {
            // In slot order; a slot both migrating and importing shows as migrating.
            let mut open: Vec<(u16, String)> =
                self.migrating.iter().map(|(j, t)| (*j, format!(" [{}->-{}]", j, t))).collect();
            open.extend(
                self.importing
                    .iter()
                    .filter(|(j, _)| !self.migrating.contains_key(j))
                    .map(|(j, f)| (*j, format!(" [{}-<-{}]", j, f))),
            );
            open.sort_by_key(|(j, _)| *j);
            for (_, t) in open {
                s.push_str(&t);
            }
        }
        s
    }

    /// CLUSTER NODES (every line ends with "\n"), myself first... in id order as kept.
    pub fn nodes_text(&self) -> String {
        self.nodes_text_filtered(0)
    }

    /// Node lines without the nodes having any of `filter`'s flags.
    pub fn nodes_text_filtered(&self, filter: u16) -> String {
        // One walk of the slot table for all lines (nodes.conf is written on every change).
        let mut ranges: std::collections::HashMap<&str, Vec<(usize, usize)>> = Default::default();
        for (a, b, owner) in self.slots.runs() {
            ranges.entry(owner).or_default().push((a, b));
        }
        let mut out = String::new();
        for n in self.nodes.values().filter(|n| n.flags & filter == 0) {
            out.push_str(&self.node_line_with(n, ranges.get(n.id.as_str()).map_or(&[][..], |v| v)));
            out.push('\n');
        }
        out
    }

    /// nodes.conf: the node lines and the `vars` line.
    pub fn config_text(&self) -> String {
        format!(
            "{}vars currentEpoch {} lastVoteEpoch {}\n",
            self.nodes_text_filtered(HANDSHAKE),
            self.current_epoch,
            self.last_vote_epoch
        )
    }

    /// Redis's clusterLoadConfig: parse nodes.conf.
    pub fn parse(text: &str) -> Result<ClusterState, String> {
        let mut nodes = BTreeMap::new();
        let mut myself = None;
        let mut slots = super::owners::SlotOwners::default();
        let mut migrating = BTreeMap::new();
        let mut importing = BTreeMap::new();
        let (mut cur, mut vote) = (0, 0);
        let bad = |l: &str| format!("Unrecoverable error: corrupted cluster config file \"{}\".", l);
        for line in text.lines() {
            let argv: Vec<&str> = line.split_whitespace().collect();
            if argv.is_empty() {
                continue;
            }
            if argv[0] == "vars" {
                let mut i = 1;
                while i + 1 < argv.len() {
                    match argv[i] {
                        "currentEpoch" => cur = argv[i + 1].parse().map_err(|_| bad(line))?,
                        "lastVoteEpoch" => vote = argv[i + 1].parse().map_err(|_| bad(line))?,
                        _ => {}
                    }
                    i += 2;
                }
                continue;
            }
            if argv.len() < 8 {
                return Err(bad(line));
            }
            let (addr, hostname) = match argv[1].split_once(',') {
                Some((a, h)) => (a, h.to_string()),
                None => (argv[1], String::new()),
            };
            let (hostport, cport) = match addr.split_once('@') {
                Some((hp, c)) => (hp, Some(c.parse::<u16>().map_err(|_| bad(line))?)),
                None => (addr, None),
            };
            let (ip, port) = hostport.rsplit_once(':').ok_or_else(|| bad(line))?;
            let port: u16 = port.parse().map_err(|_| bad(line))?;
            let flags = parse_flags(argv[2]);
            let n = ClusterNode {
                id: argv[0].to_string(),
                ip: ip.to_string(),
                port,
                cport: cport.unwrap_or(port.wrapping_add(10000)),
                hostname,
                flags,
                master: (argv[3] != "-").then(|| argv[3].to_string()),
                ping_sent: argv[4].parse().map_err(|_| bad(line))?,
                pong_recv: argv[5].parse().map_err(|_| bad(line))?,
                config_epoch: argv[6].parse().map_err(|_| bad(line))?,
                link: false,
                ctime: 0,
                fail_reports: Vec::new(),
                fail_time: 0,
                voted_time: 0,
                repl_offset: 0,
            };
            if flags & MYSELF != 0 {
                myself = Some(n.id.clone());
            }
            for a in &argv[8..] {
                if let Some(inner) = a.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                    if let Some((s, id)) = inner.split_once("->-") {
                        migrating.insert(s.parse::<u16>().map_err(|_| bad(line))?, id.to_string());
                    } else if let Some((s, id)) = inner.split_once("-<-") {
                        importing.insert(s.parse::<u16>().map_err(|_| bad(line))?, id.to_string());
                    } else {
                        return Err(bad(line));
                    }
                    continue;
                }
                let (a0, b0) = a.split_once('-').unwrap_or((a, a));
                let (s, e): (usize, usize) = (a0.parse().map_err(|_| bad(line))?, b0.parse().map_err(|_| bad(line))?);
                if s > e || e >= SLOTS {
                    return Err(bad(line));
                }
                for slot in s..=e {
                    slots.set(slot, Some(&n.id));
                }
            }
            nodes.insert(n.id.clone(), n);
        }
        let Some(me) = myself else {
            return Err("Unrecoverable error: corrupted cluster config file: no myself node.".into());
        };
        let mut st =
            ClusterState { myself: me, current_epoch: cur, last_vote_epoch: vote, nodes, slots, migrating, importing };
        // Redis: currentEpoch is at least the greatest configEpoch known.
        let max = st.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0);
        st.current_epoch = st.current_epoch.max(max);
        // clusterNodeAddSlave while loading: masters with replicas are migration targets.
        let with_replicas: Vec<String> = st.nodes.values().filter_map(|n| n.master.clone()).collect();
        for m in with_replicas {
            if let Some(n) = st.nodes.get_mut(&m) {
                n.flags |= MIGRATE_TO;
            }
        }
        Ok(st)
    }

    /// A hash of what nodes.conf records less the ping/pong times and the slot table (saved
    /// only when it changes; slot changes are tracked by whoever makes them: hashing 16384
    /// slots on every bus message cost more than the rest of the message's handling).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for n in self.nodes.values().filter(|n| n.flags & HANDSHAKE == 0) {
            (&n.id, &n.ip, n.port, n.cport, &n.hostname, n.flags, &n.master, n.config_epoch, n.link).hash(&mut h);
        }
        self.migrating.hash(&mut h);
        self.importing.hash(&mut h);
        (self.current_epoch, self.last_vote_epoch, &self.myself).hash(&mut h);
        h.finish()
    }

    /// Redis's clusterGetMaxEpoch.
    pub fn max_epoch(&self) -> u64 {
        self.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0).max(self.current_epoch)
    }

    /// Redis's clusterBumpConfigEpochWithoutConsensus: true when bumped.
    pub fn bump_epoch(&mut self) -> bool {
        let max = self.max_epoch();
        let mine = self.me().config_epoch;
        if mine == 0 || mine != max {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            true
        } else {
            false
        }
    }

    /// Masters serving at least one slot (cluster_size).
    pub fn size(&self) -> usize {
        self.owners().len()
    }

    /// The distinct slot owners (slots come in long runs of one owner: only a change of owner
    /// is looked up in the short list).
    fn owners(&self) -> Vec<&str> {
        self.slots.owners()
    }

    /// Redis's clusterUpdateState, computed on demand: with full coverage required, every slot
    /// needs a non-failed owner; and a majority of the slot-owning masters must be reachable.
    pub fn state_ok(&self, full_coverage: bool) -> bool {
        let owners = self.owners();
        if full_coverage
            && (self.slots.any_unassigned() || owners.iter().any(|id| self.nodes.get(*id).is_none_or(|n| n.failed())))
        {
            return false;
        }
        let size = owners.len();
        let reachable = owners
            .iter()
            .filter(|id| self.nodes.get(**id).map(|n| n.flags & (FAIL | PFAIL) == 0).unwrap_or(false))
            .count();
        // quorum = size / 2 + 1
        reachable > size / 2
    }
}

/// The cluster state behind its lock, with Redis's cached cluster state (ok/fail): every
/// routed command asks for it, and computing it walks all 16384 slots (clusterUpdateState runs
/// in Redis's cron and before sleeping, never per command). Any write lock drops the cached
/// answer; the next reader computes it again, under its read lock.
pub struct StateLock {
    lock: RwLock<ClusterState>,
    /// Per full-coverage setting (index 0: not required, 1: required): 0 unknown, 1 ok, 2 fail.
    ok: [std::sync::atomic::AtomicU8; 2],
    /// Per full-coverage setting: a bit per slot this node serves without a redirection (owned,
    /// not MIGRATING/IMPORTING, the cluster ok), rebuilt when a write guard is released. The
    /// routing reads it without the lock: a shared read lock per command made cluster mode cost
    /// ~1.4x the CPU of standalone at pipeline 16 (its counter is one cache line all workers
    /// write).
    served: [Box<[std::sync::atomic::AtomicU64]>; 2],
}

/// The write guard: the served-slot bitmaps are rebuilt from the new state before the lock is
/// released.
pub struct StateWrite<'a> {
    g: Option<parking_lot::RwLockWriteGuard<'a, ClusterState>>,
    lock: &'a StateLock,
}

impl std::ops::Deref for StateWrite<'_> {
    type Target = ClusterState;
    fn deref(&self) -> &ClusterState {
        self.g.as_ref().expect("held")
    }
}
impl std::ops::DerefMut for StateWrite<'_> {
    fn deref_mut(&mut self) -> &mut ClusterState {
        self.g.as_mut().expect("held")
    }
}
impl Drop for StateWrite<'_> {
    fn drop(&mut self) {
        if let Some(g) = self.g.take() {
            self.lock.rebuild_served(&g);
        }
    }
}

impl StateLock {
    pub fn new(st: ClusterState) -> StateLock {
        let words = || (0..SLOTS / 64).map(|_| std::sync::atomic::AtomicU64::new(0)).collect();
        let l = StateLock { lock: RwLock::new(st), ok: Default::default(), served: [words(), words()] };
        l.rebuild_served(&l.lock.read());
        l
    }
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, ClusterState> {
        self.lock.read()
    }
    pub fn write(&self) -> StateWrite<'_> {
        let g = self.lock.write();
        for c in &self.ok {
            c.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        StateWrite { g: Some(g), lock: self }
    }
    /// `st.state_ok(full_coverage)`, cached until the next write; `st` is this lock's state,
    /// read-locked by the caller.
    pub fn state_ok(&self, st: &ClusterState, full_coverage: bool) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.ok[full_coverage as usize];
        match c.load(Relaxed) {
            1 => true,
            2 => false,
            _ => {
                let ok = st.state_ok(full_coverage);
                c.store(if ok { 1 } else { 2 }, Relaxed);
                ok
            }
        }
    }
    /// Whether this node serves `slot` without a redirection, read without the lock.
    #[inline]
    pub fn served_here(&self, slot: usize, full_coverage: bool) -> bool {
        self.served[full_coverage as usize][slot / 64].load(std::sync::atomic::Ordering::Acquire) >> (slot % 64) & 1
            == 1
    }
    fn rebuild_served(&self, st: &ClusterState) {
        use std::sync::atomic::Ordering::{Relaxed, Release};
        // The slots myself owns and is not moving, once; each setting's bitmap is that when
        // the cluster is ok under it, else empty.
        let mut mine = vec![0u64; SLOTS / 64];
        for j in st.slots.of(&st.myself) {
            mine[j / 64] |= 1 << (j % 64);
        }
        for j in st.migrating.keys().chain(st.importing.keys()) {
            mine[*j as usize / 64] &= !(1 << (*j as usize % 64));
        }
        for full in [false, true] {
            let ok = st.state_ok(full);
            self.ok[full as usize].store(if ok { 1 } else { 2 }, Relaxed);
            for (a, v) in self.served[full as usize].iter().zip(&mine) {
                a.store(if ok { *v } else { 0 }, Release);
            }
        }
    }
}

/// Cluster mode on this node: whether it is on, the state, where nodes.conf lives.
pub struct Cluster {
    pub enabled: bool,
    pub state: StateLock,
    pub config_file: PathBuf,
    /// Nodes with an outbound bus link task (link.rs).
    pub links: parking_lot::Mutex<std::collections::HashSet<String>>,
    /// The bus links, their send queues and message counters (CLUSTER LINKS, CLUSTER INFO).
    pub link_table: super::links::LinkTable,
    /// The replica's failover election and the manual failover in progress.
    pub election: parking_lot::Mutex<super::failover::Election>,
    /// Replica migration's bookkeeping.
    pub migration: parking_lot::Mutex<super::migration::Tracker>,
    /// One nodes.conf write at a time (in place, or through one temporary file's name).
    write_lock: parking_lot::Mutex<()>,
    /// DEBUG DROP-CLUSTER-PACKET-FILTER: bus messages of this type are dropped (-1: none).
    pub drop_filter: std::sync::atomic::AtomicI64,
    /// CLUSTER FORGET's blacklist: node id -> until when (ms) gossip may not re-add it
    /// (Redis's clusterBlacklist, 60 s).
    pub forgotten: parking_lot::Mutex<std::collections::HashMap<String, u64>>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            enabled: false,
            state: StateLock::new(ClusterState::new(ClusterNode::default())),
            config_file: PathBuf::new(),
            links: Default::default(),
            link_table: Default::default(),
            election: Default::default(),
            migration: Default::default(),
            write_lock: Default::default(),
            drop_filter: std::sync::atomic::AtomicI64::new(-1),
            forgotten: Default::default(),
        }
    }
}

impl Cluster {
    /// Redis's clusterInit: load nodes.conf, or create myself (a new random id) and write it.
    pub fn init(cfg: &Config) -> Result<Cluster, String> {
        if !cfg.get_bool("cluster-enabled") {
            return Ok(Cluster::default());
        }
        let path = PathBuf::from(cfg.get("cluster-config-file").unwrap_or_else(|| "nodes.conf".into()));
        let st = match std::fs::read_to_string(&path) {
            Ok(t) if !t.trim().is_empty() => Some(ClusterState::parse(&t)?),
            _ => None,
        };
        let fresh = st.is_none();
        let mut st = st.unwrap_or_else(|| {
            ClusterState::new(ClusterNode { id: random_id(), flags: MYSELF | MASTER, ..Default::default() })
        });
        Self::announce(cfg, &mut st);
        let c = Cluster { enabled: true, state: StateLock::new(st), config_file: path, ..Default::default() };
        if fresh {
            c.save().map_err(|e| format!("Unable to write the cluster config file: {}", e))?;
        }
        Ok(c)
    }

    /// Set myself's ports (and announced ip/hostname) from the config, as Redis does at
    /// startup: port (or cluster-announce-port), bus port (cluster-announce-bus-port, else
    /// cluster-port, else port + 10000).
    pub(crate) fn announce(cfg: &Config, st: &mut ClusterState) {
        Self::announce_node(cfg, st.me_mut());
    }

    /// `announce` on a node record (myself, or a copy of it to compare).
    pub(crate) fn announce_node(cfg: &Config, me: &mut ClusterNode) {
        let port = cfg.get_i64("port") as u16;
        let aport = cfg.get_i64("cluster-announce-port") as u16;
        let cport = cfg.get_i64("cluster-port") as u16;
        let abus = cfg.get_i64("cluster-announce-bus-port") as u16;
        let ip = cfg.get("cluster-announce-ip").unwrap_or_default();
        let host = cfg.get("cluster-announce-hostname").unwrap_or_default();
        me.port = if aport != 0 { aport } else { port };
        me.cport = if abus != 0 {
            abus
        } else if cport != 0 {
            cport
        } else {
            port.wrapping_add(10000)
        };
        if !ip.is_empty() {
            me.ip = ip;
        }
        me.hostname = host;
    }

    /// The bus port this node listens on (cluster-port, 0: port + 10000).
    pub fn bus_port(cfg: &Config) -> u16 {
        match cfg.get_i64("cluster-port") as u16 {
            0 => (cfg.get_i64("port") as u16).wrapping_add(10000),
            p => p,
        }
    }

    /// Write nodes.conf atomically (a temporary file beside it, fsync, rename): CLUSTER
    /// SAVECONFIG and startup.
    pub fn save(&self) -> std::io::Result<()> {
        let text = self.state.read().config_text();
        self.write_config(&text, true)
    }

    /// The same without fsync, as Redis saves after most changes (CLUSTER_TODO_SAVE_CONFIG
    /// without CLUSTER_TODO_FSYNC_CONFIG): written in place, as Redis 7.0; a power loss may
    /// lose it.
    pub fn save_nosync(&self) -> std::io::Result<()> {
        let text = self.state.read().config_text();
        self.write_config(&text, false)
    }

    /// `save` from the bus's tasks (a vote must be on disk before it is sent): the fsync runs
    /// with the runtime told that this worker blocks, so other connections keep being served.
    pub fn save_from_task(&self) -> std::io::Result<()> {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.save())
            }
            _ => self.save(),
        }
    }

    fn write_config(&self, text: &str, fsync: bool) -> std::io::Result<()> {
        use std::io::Write;
        let _one = self.write_lock.lock();
        if !fsync {
            return self.write_config_in_place(text);
        }
        let dir = self.config_file.parent().filter(|p| !p.as_os_str().is_empty());
        let name = self.config_file.file_name().and_then(|n| n.to_str()).unwrap_or("nodes.conf");
        let tmp = match dir {
            Some(d) => d.join(format!("temp-{}.{}", std::process::id(), name)),
            None => PathBuf::from(format!("temp-{}.{}", std::process::id(), name)),
        };
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        if fsync {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, &self.config_file)
    }

    /// Redis 7.0's clusterSaveConfig without fsync: one write over the old file, padded with
    /// newlines (which the loader skips) to the old length so that no stale tail is left if
    /// the truncation that follows never happens. A temporary file and a rename cost ~0.3 ms
    /// here (ext4 flushes the new file's data on a rename over an old one): resharding sends 4-5
    /// SETSLOTs per slot, each saving the file.
    fn write_config_in_place(&self, text: &str) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&self.config_file)?;
        let old = f.metadata()?.len() as usize;
        let mut bytes = text.as_bytes().to_vec();
        if old > bytes.len() {
            bytes.resize(old, b'\n');
        }
        f.write_all_at(&bytes, 0)?;
        if bytes.len() != text.len() {
            f.set_len(text.len() as u64)?;
        }
        Ok(())
    }

    /// Change the state under the write lock, then save nodes.conf (Redis saves before
    /// replying, CLUSTER_TODO_SAVE_CONFIG in beforeSleep).
    pub fn update<R>(&self, f: impl FnOnce(&mut ClusterState) -> R) -> R {
        let (r, text) = {
            let mut st = self.state.write();
            let r = f(&mut st);
            (r, st.config_text())
        };
        if let Err(e) = self.write_config(&text, false) {
            crate::persistence::log_line('#', &format!("Could not save the cluster config file: {}", e));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_conf_rewritten_in_place_and_durably() {
        let dir = std::env::temp_dir().join(format!("ferrocache-nodesconf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = Cluster { config_file: dir.join("nodes.conf"), ..Default::default() };
        let long = "a".repeat(300) + "\n";
        c.write_config(&long, false).unwrap();
        assert_eq!(std::fs::read_to_string(&c.config_file).unwrap(), long);
        // Shorter: the old tail is gone (padded, then truncated).
        c.write_config("short\n", false).unwrap();
        assert_eq!(std::fs::read_to_string(&c.config_file).unwrap(), "short\n");
        c.write_config(&long, true).unwrap();
        assert_eq!(std::fs::read_to_string(&c.config_file).unwrap(), long);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
        // What an interrupted in-place write leaves (the padding) still loads.
        let st = ClusterState::parse(&format!(
            "{}\n\n\n\n",
            ClusterState::new(ClusterNode { id: random_id(), flags: MYSELF | MASTER, ..Default::default() })
                .config_text()
        ));
        assert!(st.is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn nodes_conf_round_trip() {
        let text = "29bada318de8140245696c0720a087396c57a1f6 :7301@17301 myself,master - 0 0 0 connected 0-2 10-20 [5-<-0123456789012345678901234567890123456789]\n\
0123456789012345678901234567890123456789 127.0.0.1:7302@17302,host master - 0 0 1 disconnected 21-16383\n\
vars currentEpoch 3 lastVoteEpoch 0\n";
        let st = ClusterState::parse(text).unwrap();
        assert_eq!(st.myself, "29bada318de8140245696c0720a087396c57a1f6");
        assert_eq!(st.current_epoch, 3);
        assert_eq!(st.num_slots(&st.myself), 14);
        assert_eq!(st.nodes["0123456789012345678901234567890123456789"].hostname, "host");
        let again = st.config_text();
        assert_eq!(ClusterState::parse(&again).unwrap().config_text(), again);
        assert!(again.contains(" [5-<-0123456789012345678901234567890123456789]"));
        assert!(!st.state_ok(true));
        assert!(st.state_ok(false));
    }
}
