//! The ACL log: the entries recorded for denied commands, keys and channels and for failed
//! authentications (ACL LOG shows them).

use super::checks::Denied;
use crate::client::Client;
use crate::Node;
use std::sync::atomic::Ordering::Relaxed;

pub struct LogEntry {
    pub count: u64,
    pub reason: Denied,
    /// "toplevel", "multi", "lua"
    pub context: &'static str,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    pub ctime: u64,
    pub cinfo: String,
}

pub(super) fn add_log(
    srv: &Node,
    client: &Client,
    reason: Denied,
    context: &'static str,
    object: Vec<u8>,
    username: Vec<u8>,
) {
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
