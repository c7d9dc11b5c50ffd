//! Replication-group endpoints: per group a stable primary endpoint and a reader endpoint,
//! implemented as TCP proxies in the control plane. The primary endpoint forwards each client
//! connection to the current primary node; the reader endpoint spreads connections round-robin
//! across the healthy replicas (the primary when there is none). When the targets change (a
//! failover, a replica leaving), connections to a node that is no longer a target are closed, and
//! new connections wait (up to 10 s) while the group has no primary (during a failover).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Where a group's endpoints forward to (node ports on `node_addr`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Targets {
    /// None while a failover is in progress: new connections wait.
    pub primary: Option<u16>,
    /// Healthy replicas (in sync with the primary): where new reader connections go.
    pub replicas: Vec<u16>,
    /// Every member node: reader connections stay open while their node is one (a replica
    /// whose link flaps keeps its clients).
    pub members: Vec<u16>,
}

struct GroupProxy {
    targets: watch::Sender<Targets>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub struct Endpoints {
    rt: tokio::runtime::Runtime,
    /// Address the endpoints listen on.
    bind: String,
    /// Address of the nodes (as the provider reports them).
    node_addr: Mutex<String>,
    groups: Mutex<HashMap<String, GroupProxy>>,
}

/// How long a new connection waits for a primary to forward to.
const HOLD: Duration = Duration::from_secs(10);

impl Endpoints {
    pub fn new(bind: &str) -> Endpoints {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("endpoints")
            .enable_all()
            .build()
            .expect("endpoint runtime");
        Endpoints {
            rt,
            bind: bind.to_string(),
            node_addr: Mutex::new("127.0.0.1".into()),
            groups: Mutex::new(HashMap::new()),
        }
    }

    pub fn set_node_addr(&self, addr: &str) {
        *self.node_addr.lock().unwrap() = addr.to_string();
    }

    /// Listen on the group's two ports (if not already). Errors when a port cannot be bound.
    pub fn ensure(&self, group: &str, primary_port: u16, reader_port: u16) -> Result<(), String> {
        let mut groups = self.groups.lock().unwrap();
        if groups.contains_key(group) {
            return Ok(());
        }
        let (tx, rx) = watch::channel(Targets::default());
        let node_addr = self.node_addr.lock().unwrap().clone();
        let mut tasks = Vec::new();
        for (port, reader) in [(primary_port, false), (reader_port, true)] {
            let addr = format!("{}:{}", self.bind, port);
            let std_listener = std::net::TcpListener::bind(&addr).map_err(|e| format!("bind {}: {}", addr, e))?;
            std_listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            let rx = rx.clone();
            let node_addr = node_addr.clone();
            let rr = Arc::new(AtomicUsize::new(0));
            let _guard = self.rt.enter();
            let listener = TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
            tasks.push(self.rt.spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    tokio::spawn(serve(client, rx.clone(), reader, rr.clone(), node_addr.clone()));
                }
            }));
        }
        groups.insert(group.to_string(), GroupProxy { targets: tx, tasks });
        Ok(())
    }

    /// Point a group's endpoints somewhere else (a no-op when nothing changes).
    pub fn set_targets(&self, group: &str, t: Targets) {
        if let Some(g) = self.groups.lock().unwrap().get(group) {
            g.targets.send_if_modified(|cur| {
                if *cur == t {
                    false
                } else {
                    *cur = t;
                    true
                }
            });
        }
    }

    /// Change a group's targets in place.
    pub fn update(&self, group: &str, f: impl FnOnce(&mut Targets)) {
        if let Some(g) = self.groups.lock().unwrap().get(group) {
            g.targets.send_if_modified(|cur| {
                let before = cur.clone();
                f(cur);
                *cur != before
            });
        }
    }

    /// A new primary (None: a failover is in progress, new primary connections wait); it is
    /// no longer a reader target.
    pub fn switch_primary(&self, group: &str, primary: Option<u16>) {
        self.update(group, |t| {
            t.primary = primary;
            t.replicas.retain(|p| Some(*p) != primary);
        });
    }

    pub fn targets(&self, group: &str) -> Option<Targets> {
        self.groups.lock().unwrap().get(group).map(|g| g.targets.borrow().clone())
    }

    /// Stop listening; open connections are closed.
    pub fn remove(&self, group: &str) {
        if let Some(g) = self.groups.lock().unwrap().remove(group) {
            // Closing every connection: an empty target set with the sender dropped.
            g.targets.send_replace(Targets::default());
            for t in g.tasks {
                t.abort();
            }
        }
    }
}

/// The node a new connection goes to, if any.
fn pick(t: &Targets, reader: bool, rr: &AtomicUsize) -> Option<u16> {
    if reader && !t.replicas.is_empty() {
        let i = rr.fetch_add(1, Ordering::Relaxed);
        return Some(t.replicas[i % t.replicas.len()]);
    }
    t.primary
}

/// Whether a connection to `port` may stay open under targets `t`.
fn still_valid(t: &Targets, reader: bool, port: u16) -> bool {
    if reader {
        t.members.contains(&port) || t.replicas.contains(&port) || t.primary == Some(port)
    } else {
        t.primary == Some(port)
    }
}

async fn serve(
    mut client: TcpStream,
    mut rx: watch::Receiver<Targets>,
    reader: bool,
    rr: Arc<AtomicUsize>,
    node_addr: String,
) {
    let deadline = tokio::time::Instant::now() + HOLD;
    let (mut upstream, port) = loop {
        let target = pick(&rx.borrow_and_update(), reader, &rr);
        if let Some(port) = target {
            if let Ok(Ok(s)) =
                tokio::time::timeout(Duration::from_millis(300), TcpStream::connect((node_addr.as_str(), port))).await
            {
                break (s, port);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        // Wait for new targets (or retry shortly: a node may be restarting).
        if let Ok(Err(_)) = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await {
            return; // the group's endpoints were removed
        }
    };
    let _ = upstream.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = async {
            loop {
                if rx.changed().await.is_err() {
                    return;
                }
                if !still_valid(&rx.borrow_and_update(), reader, port) {
                    return;
                }
            }
        } => {}
    }
}
