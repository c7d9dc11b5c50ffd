//! A replica's partial resynchronization after a restart (Redis's rdbPopulateSaveInfo and
//! loadDataFromDisk's "restore the replication ID / offset from the RDB file"): an RDB saved
//! on a replica records the primary's replication id, the offset its data set reflects and the
//! stream's selected db (aux fields repl-id, repl-offset, repl-stream-db); a replica started
//! on that file asks its primary to continue from there (PSYNC id offset+1) instead of a full
//! sync.
//!
//! The offset must be exactly the data's: the replica applies its primary's stream one command
//! at a time under `Repl::stream_point`, and a snapshot is cut under the same lock, between two
//! commands, never inside a MULTI (then no id is recorded and the restart syncs in full).

use super::*;
use std::sync::atomic::Ordering::Relaxed;

/// Where the primary's stream stands between two applied commands.
#[derive(Default)]
pub struct StreamPoint {
    /// The db the stream's last SELECT chose.
    pub db: usize,
    /// A MULTI of the stream is open (its commands are queued, not applied).
    pub in_multi: bool,
}

/// What an RDB records of the replication stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplInfo {
    pub id: String,
    pub offset: u64,
    pub db: usize,
}

impl ReplInfo {
    /// The RDB aux fields, in Redis's order.
    pub fn aux(&self) -> [(&'static str, String); 3] {
        [
            ("repl-stream-db", self.db.to_string()),
            ("repl-id", self.id.clone()),
            ("repl-offset", self.offset.to_string()),
        ]
    }
}

/// Run `f` (which starts a snapshot) at a cut of the primary's stream, with what the snapshot
/// must record: Some on a replica whose link is up, between two commands, outside a MULTI.
/// Waits at most half a second for the stream's current command (a snapshot started from the
/// stream itself, or a slow command, gets None: the file is only saved without the id).
pub fn at_cut<R>(srv: &Node, f: impl FnOnce(Option<ReplInfo>) -> R) -> R {
    if !srv.repl.is_replica.load(Relaxed) {
        return f(None);
    }
    let Some(point) = srv.repl.stream_point.try_lock_for(std::time::Duration::from_millis(500)) else {
        return f(None);
    };
    let info = (srv.repl.link_up.load(Relaxed) && !point.in_multi).then(|| {
        let m = srv.repl.primary.lock();
        ReplInfo { id: m.replid.clone(), offset: m.backlog.offset, db: point.db }
    });
    let r = f(info);
    drop(point);
    r
}

/// Collects the aux fields of an RDB being loaded.
#[derive(Default)]
pub struct AuxSeen {
    id: Option<String>,
    offset: Option<u64>,
    db: Option<usize>,
}

impl AuxSeen {
    /// Note one aux field (others are ignored).
    pub fn see(&mut self, key: &[u8], value: &str) {
        match key {
            b"repl-id" if value.len() == 40 => self.id = Some(value.to_string()),
            b"repl-offset" => self.offset = value.parse().ok(),
            // Older writers may record -1 (no db): not usable.
            b"repl-stream-db" => self.db = value.parse().ok(),
            _ => {}
        }
    }

    pub fn info(&self) -> Option<ReplInfo> {
        Some(ReplInfo { id: self.id.clone()?, offset: self.offset?, db: self.db? })
    }
}

/// After loading the RDB at startup: a node that starts as a replica (replicaof, or a replica
/// in nodes.conf) takes the file's replication id and offset as its own, so that its first
/// PSYNC asks to continue from them.
pub fn restore(srv: &Node, info: ReplInfo) {
    let replica_at_start = !srv.config.get("replicaof").unwrap_or_default().is_empty()
        || (srv.cluster.enabled && srv.cluster.state.read().me().flags & crate::cluster::state::SLAVE != 0);
    if !replica_at_start || info.db >= srv.num_dbs() {
        return;
    }
    let mut m = srv.repl.primary.lock();
    m.replid = info.id;
    m.replid2 = NO_REPLID.into();
    m.second_offset = -1;
    m.backlog.reset_to(info.offset);
    m.last_db = -1;
    srv.repl.offset.store(info.offset, Relaxed);
    srv.repl.resume_db.store(info.db as i64, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aux_fields_round_trip() {
        let info = ReplInfo { id: "a".repeat(40), offset: 1234, db: 3 };
        let mut seen = AuxSeen::default();
        for (k, v) in info.aux() {
            seen.see(k.as_bytes(), &v);
        }
        assert_eq!(seen.info(), Some(info));
        let mut partial = AuxSeen::default();
        partial.see(b"repl-id", &"b".repeat(40));
        partial.see(b"repl-stream-db", "-1");
        partial.see(b"repl-offset", "5");
        assert_eq!(partial.info(), None, "a db of -1 is not usable");
    }
}
