//! Memcached configuration endpoints (ElastiCache Auto Discovery).
//!
//! Every Memcached cluster gets one stable port, owned by the control plane and recorded in the
//! state store, that outlives any single node: connections to it are forwarded to an available
//! node of the cluster (as ElastiCache's configuration endpoint is a DNS name pointing at one of
//! the nodes; successive connections go round the available nodes), so `config get cluster` —
//! and any other memcached command — sent there is answered by a node. The node list and its version are owned by the control plane: the
//! version goes up whenever the list changes and both are pushed to every node together
//! (`CONFIG SET memcached-cluster-nodes L memcached-cluster-version V`), so every node and the
//! configuration endpoint answer the same version, also after a node restarts.

use crate::log;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

/// What the state store keeps per Memcached cluster.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Discovery {
    /// The configuration endpoint's port.
    pub port: u16,
    /// Auto Discovery version of `nodes` (0 before the first list).
    pub version: i64,
    /// `host|ip|port ...` as last pushed.
    pub nodes: String,
}

struct Endpoint {
    port: u16,
    targets: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::AbortHandle,
}

/// The running configuration endpoints (one listener per Memcached cluster).
pub struct ConfigEndpoints {
    bind: String,
    rt: tokio::runtime::Runtime,
    running: Mutex<HashMap<String, Endpoint>>,
}

impl ConfigEndpoints {
    pub fn new(bind: &str) -> Result<ConfigEndpoints, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("config-endpoints")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ConfigEndpoints { bind: bind.to_string(), rt, running: Mutex::new(HashMap::new()) })
    }

    /// A free port for a new configuration endpoint.
    pub fn allocate_port(&self) -> Result<u16, String> {
        let l = std::net::TcpListener::bind((self.bind.as_str(), 0)).map_err(|e| format!("allocate a port: {}", e))?;
        Ok(l.local_addr().map_err(|e| e.to_string())?.port())
    }

    /// Serve `cluster`'s endpoint on `port` (if not already), forwarding to `targets`.
    pub fn serve(&self, cluster: &str, port: u16, targets: Vec<SocketAddr>) {
        let mut running = self.running.lock().unwrap();
        if let Some(ep) = running.get(cluster) {
            if ep.port == port && !ep.task.is_finished() {
                *ep.targets.lock().unwrap() = targets;
                return;
            }
            ep.task.abort();
        }
        let addr = format!("{}:{}", self.bind, port);
        let shared = Arc::new(Mutex::new(targets));
        let t = shared.clone();
        let task = match bind(&self.rt, &addr) {
            Ok(listener) => self.rt.spawn(accept_loop(listener, t)),
            Err(e) => {
                // Someone else holds the port (e.g. after a restart): keep trying.
                log(&format!("{}: configuration endpoint {}: {}; retrying every second", cluster, addr, e));
                let name = cluster.to_string();
                self.rt.spawn(async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        if let Ok(listener) = TcpListener::bind(&addr).await {
                            log(&format!("{}: configuration endpoint {} is up", name, addr));
                            return accept_loop(listener, t).await;
                        }
                    }
                })
            }
        };
        running.insert(cluster.to_string(), Endpoint { port, targets: shared, task: task.abort_handle() });
    }

    /// Stop `cluster`'s endpoint (when the cluster is deleted).
    pub fn stop(&self, cluster: &str) {
        if let Some(ep) = self.running.lock().unwrap().remove(cluster) {
            ep.task.abort();
        }
    }
}

fn bind(rt: &tokio::runtime::Runtime, addr: &str) -> std::io::Result<TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    let _guard = rt.enter();
    TcpListener::from_std(l)
}

async fn accept_loop(listener: TcpListener, targets: Arc<Mutex<Vec<SocketAddr>>>) {
    let mut next = 0usize;
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let mut list = targets.lock().unwrap().clone();
        if !list.is_empty() {
            // Connections go round the nodes (ElastiCache's endpoint name resolves to one node
            // or another); a node that does not accept is skipped.
            let n = list.len();
            list.rotate_left(next % n);
            next = next.wrapping_add(1);
        }
        tokio::spawn(async move {
            for t in list {
                if let Ok(mut node) = TcpStream::connect(t).await {
                    let _ = node.set_nodelay(true);
                    let _ = client.set_nodelay(true);
                    let mut client = client;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut node).await;
                    return;
                }
            }
            // No node reachable: the connection is closed.
        });
    }
}
