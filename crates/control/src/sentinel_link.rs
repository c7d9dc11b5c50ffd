//! The Sentinel endpoint (crate::sentinel) wired to the control plane's replication groups:
//! `ferrocache control --sentinel-port P` serves every replication group as a monitored master
//! named after its ReplicationGroupId, at the address of its current primary **node** (not the
//! proxy endpoints: Sentinel clients connect to the nodes themselves). Replicas, their link
//! status and offsets come from the health loop's last `INFO replication`; `s_down`/`o_down` from
//! its failure detection; `failover_in_progress` while a switch runs; the config-epoch counts the
//! group's switches. Events are published as Sentinel names them: `+sdown`/`-sdown`, `+odown`/
//! `-odown`, `+try-failover`, `+failover-end`, `+switch-master`.

use crate::failover::{self, busy_key, Member, ReplInfo};
use crate::sentinel::{MasterView, ReplicaView, Sentinel, Topology};
use crate::{log, App};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The Sentinel side of the replication groups' run-time state (lives in `failover::Groups`).
#[derive(Default)]
pub struct SentinelLink {
    sentinel: OnceLock<Arc<Sentinel>>,
    /// Config-epoch per group (loaded from the recorded failover events on first use).
    epochs: Mutex<HashMap<String, u64>>,
    /// The last `INFO replication` of each member cluster (health loop).
    last: Mutex<HashMap<String, ReplInfo>>,
    /// Member clusters whose node is down (failed the health checks).
    down: Mutex<HashSet<String>>,
    /// Groups with a switch of the primary in progress.
    failing_over: Mutex<HashSet<String>>,
}

/// The control plane as a Sentinel [`Topology`].
struct Groups(Weak<App>);

impl SentinelLink {
    /// Create the Sentinel endpoint's state over `app`'s groups (once, at start).
    pub fn init(&self, app: &Arc<App>) -> Arc<Sentinel> {
        self.sentinel.get_or_init(|| Sentinel::new(Arc::new(Groups(Arc::downgrade(app))))).clone()
    }

    fn publish(&self, channel: &str, message: String) {
        if let Some(s) = self.sentinel.get() {
            s.publish(channel, message);
        }
    }

    /// Health loop: a member answered `INFO replication`.
    pub fn checked(&self, app: &App, group: &str, m: &Member, r: &ReplInfo) {
        self.last.lock().unwrap().insert(m.0.id.clone(), r.clone());
        if self.down.lock().unwrap().remove(&m.0.id) {
            let primary = is_primary(app, group, &m.0.id);
            let inst = instance(app, group, m, primary);
            self.publish("-sdown", inst.clone());
            if primary {
                self.publish("-odown", inst);
            }
        }
    }

    /// Health loop: a member failed enough consecutive checks to count as down.
    pub fn failed(&self, app: &App, group: &str, m: &Member) {
        self.last.lock().unwrap().remove(&m.0.id);
        if self.down.lock().unwrap().insert(m.0.id.clone()) {
            let primary = is_primary(app, group, &m.0.id);
            let inst = instance(app, group, m, primary);
            self.publish("+sdown", inst.clone());
            if primary {
                // The control plane is the one authority: its own detection is the quorum.
                self.publish("+odown", format!("{} #quorum 1/1", inst));
            }
        }
    }

    /// A switch of the group's primary starts (failover, TestFailover, PrimaryClusterId,
    /// SENTINEL FAILOVER).
    pub fn begin_failover(&self, app: &App, group: &str) {
        if !self.failing_over.lock().unwrap().insert(group.to_string()) {
            return;
        }
        if let Some((g, members)) = failover::load(app, group) {
            if let Some(p) = members.iter().find(|m| m.0.id == g.primary) {
                self.publish("+try-failover", instance(app, group, p, true));
            }
        }
    }

    /// The switch ended without a new primary.
    pub fn abort_failover(&self, group: &str) {
        self.failing_over.lock().unwrap().remove(group);
    }

    /// The primary of `group` switched from `old` to `new`: bump the config-epoch and announce
    /// `+failover-end` and `+switch-master` (called before the failover events are recorded).
    pub fn switched(&self, app: &App, group: &str, old: &Member, new: &Member) {
        {
            let mut epochs = self.epochs.lock().unwrap();
            let e = epochs.entry(group.to_string()).or_insert_with(|| recorded_epoch(app, group));
            *e += 1;
        }
        self.failing_over.lock().unwrap().remove(group);
        let (oip, nip) = (addr(app, old), addr(app, new));
        self.publish("+failover-end", format!("master {} {} {}", group, oip, old.1.port));
        if let Some(s) = self.sentinel.get() {
            s.switch_master(group, (&oip, old.1.port), (&nip, new.1.port));
        }
    }

    /// The group was deleted.
    pub fn forget(&self, group: &str, members: &[Member]) {
        self.epochs.lock().unwrap().remove(group);
        self.failing_over.lock().unwrap().remove(group);
        for m in members {
            self.last.lock().unwrap().remove(&m.0.id);
            self.down.lock().unwrap().remove(&m.0.id);
        }
    }

    fn epoch(&self, app: &App, group: &str) -> u64 {
        *self.epochs.lock().unwrap().entry(group.to_string()).or_insert_with(|| recorded_epoch(app, group))
    }
}

fn addr(app: &App, m: &Member) -> String {
    app.provider.address(&App::spec(&m.0, &m.1))
}

fn is_primary(app: &App, group: &str, cluster: &str) -> bool {
    app.store.lock().unwrap().group(group).ok().flatten().is_some_and(|g| g.primary == cluster)
}

/// An instance as Sentinel's events name it: `master <name> <ip> <port>`, or
/// `slave <ip>:<port> <ip> <port> @ <master-name> <master-ip> <master-port>`.
fn instance(app: &App, group: &str, m: &Member, primary: bool) -> String {
    let ip = addr(app, m);
    if primary {
        return format!("master {} {} {}", group, ip, m.1.port);
    }
    let master = failover::load(app, group)
        .and_then(|(g, ms)| ms.into_iter().find(|p| p.0.id == g.primary))
        .map(|p| format!("{} {}", addr(app, &p), p.1.port))
        .unwrap_or_else(|| "? 0".into());
    format!("slave {}:{} {} {} @ {} {}", ip, m.1.port, ip, m.1.port, group, master)
}

/// The config-epoch of a group from the switches recorded for it (since it was created): it
/// survives control-plane restarts.
fn recorded_epoch(app: &App, group: &str) -> u64 {
    let st = app.store.lock().unwrap();
    let Ok(Some(g)) = st.group(group) else { return 0 };
    st.events(g.created_ms, i64::MAX)
        .unwrap_or_default()
        .iter()
        .filter(|e| {
            e.source_type == "replication-group"
                && e.source_id == group
                && e.message.starts_with("Failover to replica node ")
        })
        .count() as u64
}

impl Topology for Groups {
    fn masters(&self) -> Vec<MasterView> {
        let Some(app) = self.0.upgrade() else { return Vec::new() };
        let link = &app.groups.sentinel;
        let groups = app.store.lock().unwrap().groups().unwrap_or_default();
        let mut out = Vec::new();
        for g in groups.iter().filter(|g| g.status != "creating" && g.status != "deleting") {
            let Some((g, members)) = failover::load(&app, &g.id) else { continue };
            let Some(p) = members.iter().find(|m| m.0.id == g.primary) else { continue };
            let last = link.last.lock().unwrap();
            let down = link.down.lock().unwrap();
            let replicas = members
                .iter()
                .filter(|m| m.0.id != g.primary && m.0.status != "creating" && m.0.status != "deleting")
                .map(|m| {
                    let r = last.get(&m.0.id);
                    ReplicaView {
                        ip: addr(&app, m),
                        port: m.1.port,
                        runid: String::new(),
                        down: down.contains(&m.0.id),
                        link_up: r.is_some_and(|r| !r.master && r.link_up && r.master_port == Some(p.1.port)),
                        offset: r.map_or(0, |r| r.offset),
                        priority: 100,
                    }
                })
                .collect();
            out.push(MasterView {
                name: g.id.clone(),
                ip: addr(&app, p),
                port: p.1.port,
                runid: String::new(),
                down: down.contains(&p.0.id),
                failover_in_progress: link.failing_over.lock().unwrap().contains(&g.id),
                config_epoch: 0,
                replicas,
            });
        }
        for m in out.iter_mut() {
            m.config_epoch = link.epoch(&app, &m.name);
        }
        out
    }

    /// SENTINEL FAILOVER: the graceful switch TestFailover runs (to the replica with the highest
    /// offset), whether or not automatic failover is enabled.
    fn failover(&self, name: &str) -> Result<(), String> {
        let Some(app) = self.0.upgrade() else { return Err("ERR No such master with that name".into()) };
        let claim = || -> Result<(), String> {
            // The health loop holds a group for a moment on every check: wait for it a little.
            let deadline = Instant::now() + Duration::from_secs(2);
            while !app.try_begin(&busy_key(name)) {
                if Instant::now() > deadline {
                    return Err(format!("ERR Replication group {} is busy with another operation.", name));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let r = {
                let mut st = app.store.lock().unwrap();
                match st.group(name) {
                    Ok(Some(mut g)) if g.status == "available" => {
                        g.status = "modifying".into();
                        st.update_group(&g).map_err(|e| format!("ERR {}", e))
                    }
                    Ok(Some(g)) => {
                        Err(format!("ERR Replication group {} is not in available state ({}).", name, g.status))
                    }
                    _ => Err("ERR No such master with that name".into()),
                }
            };
            if r.is_err() {
                app.end(&busy_key(name));
            }
            r
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(claim)
            }
            _ => claim(),
        }?;
        failover::group_event(&app, name, "Failover requested through the Sentinel endpoint (SENTINEL FAILOVER)");
        // In progress from now on (a second SENTINEL FAILOVER answers -INPROG).
        app.groups.sentinel.begin_failover(&app, name);
        let id = name.to_string();
        app.spawn_op(move |a| failover::op_switch(a, &id, None, false));
        Ok(())
    }
}

/// Serve the Sentinel endpoint on `bind:port` (0: off). When the port is taken, binding is
/// retried every second (logged once).
pub async fn serve(sentinel: Arc<Sentinel>, bind: String, port: u16) {
    if port == 0 {
        return;
    }
    let addr = format!("{}:{}", bind, port);
    let mut logged = false;
    loop {
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => {
                log(&format!("Sentinel endpoint on {}", addr));
                sentinel.serve(l).await;
                return;
            }
            Err(e) => {
                if !logged {
                    log(&format!("Sentinel endpoint: bind {}: {}; retrying every second", addr, e));
                    logged = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
