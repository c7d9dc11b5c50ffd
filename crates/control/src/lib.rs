//! `ferrocache control`: a control plane serving ElastiCache's API (AWS Query protocol) that
//! creates, modifies, reboots and deletes cache clusters made of local `ferrocache server`
//! processes. State lives in one SQLite file under the data dir; on start, recorded nodes are
//! re-adopted (or restarted from their data dirs) and unfinished operations are completed.

pub mod api;
pub mod cli;
pub mod cli_shards;
pub mod endpoints;
pub mod failover;
pub mod mc_config;
pub mod metrics;
pub mod params;
pub mod provider;
pub mod replication_group;
pub mod sentinel;
pub mod sentinel_link;
pub mod sharded;
pub mod sigv4;
pub mod state;
pub mod tags;
pub mod xml;

use provider::{LocalProcesses, NodeSpec, Provider};
use state::{Cluster, Event, Node, SqliteStore, StateStore};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Options {
    pub data_dir: PathBuf,
    pub port: u16,
    pub bind: String,
    /// When set, requests must carry a SigV4 Authorization header with this access key id.
    pub access_key_id: Option<String>,
    /// With `access_key_id`: the secret the SigV4 signatures are verified with.
    pub secret_access_key: Option<String>,
    /// Port of the Sentinel-compatible endpoint over the replication groups (0: off).
    pub sentinel_port: u16,
    /// How long a client may take to send a request's headers, and again its body, before
    /// the connection is answered `RequestTimeout` (body) or closed (headers).
    pub read_timeout: Duration,
}

pub struct App {
    pub store: Mutex<Box<dyn StateStore>>,
    pub provider: Arc<dyn Provider>,
    /// Clusters with an operation in flight (the health loop leaves them alone).
    busy: Mutex<HashSet<String>>,
    pub keys: Option<sigv4::Keys>,
    pub region: String,
    /// Replication groups at run time (endpoints, health counters).
    pub groups: failover::Groups,
    /// Memcached clusters' configuration endpoints (Auto Discovery).
    pub config_endpoints: mc_config::ConfigEndpoints,
    pub read_timeout: Duration,
    /// The per-node time series the sampler keeps (metrics.rs).
    pub metrics: metrics::Metrics,
    /// Cluster-mode groups at run time (sharded/).
    pub sharded: sharded::Runtime,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn log(msg: &str) {
    eprintln!("{} control: {}", xml::iso8601(now_ms()), msg);
}

impl App {
    pub fn spec(c: &Cluster, n: &Node) -> NodeSpec {
        NodeSpec {
            cluster_id: c.id.clone(),
            node_id: n.node_id.clone(),
            engine: c.engine.clone(),
            port: n.port,
            mc_port: n.mc_port,
            cluster_mode: c.cluster_mode,
        }
    }

    pub fn event(&self, source: &str, message: &str) {
        log(&format!("{}: {}", source, message));
        let ev = Event {
            source_id: source.into(),
            source_type: "cache-cluster".into(),
            message: message.into(),
            date_ms: now_ms(),
        };
        if let Err(e) = self.store.lock().unwrap().add_event(&ev) {
            log(&e);
        }
    }

    fn set_status(&self, id: &str, status: &str) {
        let mut st = self.store.lock().unwrap();
        if let Ok(Some(mut c)) = st.cluster(id) {
            c.status = status.into();
            let _ = st.update_cluster(&c);
        }
    }

    fn set_node(&self, n: &Node) {
        let _ = self.store.lock().unwrap().upsert_node(n);
    }

    /// Mark a cluster busy; false if another operation holds it.
    pub fn try_begin(&self, id: &str) -> bool {
        self.busy.lock().unwrap().insert(id.to_string())
    }

    pub fn end(&self, id: &str) {
        self.busy.lock().unwrap().remove(id);
    }

    /// Run an operation on its own thread; the operation releases the cluster's busy mark
    /// itself, just before its final state is written (so that a client that sees the final
    /// state can start the next operation at once).
    pub fn spawn_op(self: &Arc<Self>, f: impl FnOnce(&App) + Send + 'static) {
        let app = self.clone();
        std::thread::spawn(move || f(&app));
    }

    fn load(&self, id: &str) -> Option<(Cluster, Vec<Node>)> {
        let st = self.store.lock().unwrap();
        let c = st.cluster(id).ok()??;
        let nodes = st.nodes(id).ok()?;
        Some((c, nodes))
    }

    /// Start (or restart) one node and record it available.
    fn start_node(&self, c: &Cluster, n: &mut Node) -> bool {
        match self.provider.start(&Self::spec(c, n)) {
            Ok(pid) => {
                n.pid = pid;
                n.status = "available".into();
                self.set_node(n);
                true
            }
            Err(e) => {
                // A process started just before a control-plane crash may have come up since.
                if let Some(pid) = self.provider.probe(&Self::spec(c, n)) {
                    n.pid = pid;
                    n.status = "available".into();
                    self.set_node(n);
                    return true;
                }
                log(&format!("{}: {}", c.id, e));
                n.status = "failed".into();
                n.pid = 0;
                self.set_node(n);
                false
            }
        }
    }

    /// Push the Auto Discovery node list (and its version, bumped when the list changed) to
    /// every node of a memcached cluster and point its configuration endpoint at the available
    /// nodes (see mc_config.rs).
    pub fn push_discovery(&self, id: &str) {
        let Some((c, nodes)) = self.load(id) else { return };
        if c.engine != "memcached" {
            return;
        }
        let live: Vec<&Node> = nodes.iter().filter(|n| n.status != "deleting").collect();
        let list: Vec<String> = live
            .iter()
            .map(|n| {
                let s = Self::spec(&c, n);
                format!("localhost|{}|{}", self.provider.address(&s), n.mc_port)
            })
            .collect();
        let list = list.join(" ");
        let d = {
            let mut st = self.store.lock().unwrap();
            let mut d = match st.discovery(id) {
                Ok(Some(d)) => d,
                Ok(None) => match self.config_endpoints.allocate_port() {
                    Ok(port) => mc_config::Discovery { port, ..Default::default() },
                    Err(e) => {
                        log(&format!("{}: {}", id, e));
                        return;
                    }
                },
                Err(e) => {
                    log(&e);
                    return;
                }
            };
            if d.nodes != list || d.version == 0 {
                d.version += 1;
                d.nodes = list.clone();
                if let Err(e) = st.set_discovery(id, &d) {
                    log(&e);
                }
            }
            d
        };
        let version = d.version.to_string();
        for n in &live {
            if let Err(e) = self.provider.command(
                &Self::spec(&c, n),
                &["CONFIG", "SET", "memcached-cluster-nodes", &list, "memcached-cluster-version", &version],
            ) {
                log(&format!("{}-{}: pushing the node list failed: {}", c.id, n.node_id, e));
            }
        }
        let targets = live
            .iter()
            .filter(|n| n.status == "available")
            .filter_map(|n| format!("{}:{}", self.provider.address(&Self::spec(&c, n)), n.mc_port).parse().ok())
            .collect();
        self.config_endpoints.serve(id, d.port, targets);
    }

    /// Bring every node of a created/modified cluster up, then mark it available.
    pub fn op_converge(&self, id: &str, created_msg: Option<&str>) {
        let Some((c, nodes)) = self.load(id) else {
            self.end(id);
            return;
        };
        let mut ok = true;
        let mut added = Vec::new();
        for mut n in nodes {
            if n.status == "deleting" {
                self.provider.destroy(&Self::spec(&c, &n), n.pid);
                let _ = self.store.lock().unwrap().delete_node(&c.id, &n.node_id);
                self.event(&c.id, &format!("Removed cache nodes {}", n.node_id));
                continue;
            }
            if let Some(pid) = self.provider.probe(&Self::spec(&c, &n)) {
                if n.pid != pid || n.status != "available" {
                    n.pid = pid;
                    n.status = "available".into();
                    self.set_node(&n);
                }
                continue;
            }
            let was_new = n.status == "creating";
            ok &= self.start_node(&c, &mut n);
            if was_new && created_msg.is_none() {
                added.push(n.node_id.clone());
            }
        }
        self.push_discovery(id);
        for a in added {
            self.event(id, &format!("Added cache node {} in availability zone {}", a, c.az));
        }
        self.end(id);
        self.set_status(id, if ok { "available" } else { "incompatible-parameters" });
        if let Some(m) = created_msg {
            self.event(id, m);
        }
    }

    pub fn op_delete(&self, id: &str) {
        let Some((c, nodes)) = self.load(id) else {
            self.end(id);
            return;
        };
        for n in &nodes {
            self.provider.destroy(&Self::spec(&c, n), n.pid);
        }
        self.config_endpoints.stop(id);
        self.end(id);
        let _ = self.store.lock().unwrap().delete_cluster(id);
        self.event(id, "Cache cluster deleted");
    }

    pub fn op_reboot(&self, id: &str, node_ids: &[String]) {
        let Some((c, nodes)) = self.load(id) else {
            self.end(id);
            return;
        };
        for mut n in nodes.into_iter().filter(|n| node_ids.contains(&n.node_id)) {
            n.status = "rebooting".into();
            self.set_node(&n);
            self.provider.stop(&Self::spec(&c, &n), n.pid, true);
            if self.start_node(&c, &mut n) {
                self.event(id, &format!("Cache node {} restarted", n.node_id));
            }
        }
        self.push_discovery(id);
        self.end(id);
        self.set_status(id, "available");
    }

    /// The health loop: restart crashed nodes of idle clusters.
    fn heal(&self) {
        self.provider.reap();
        let clusters = self.store.lock().unwrap().clusters().unwrap_or_default();
        for c in clusters.into_iter().filter(|c| c.status == "available") {
            if !self.try_begin(&c.id) {
                continue;
            }
            let nodes = self.store.lock().unwrap().nodes(&c.id).unwrap_or_default();
            let mut restarted = Vec::new();
            for mut n in nodes {
                if self.provider.probe(&Self::spec(&c, &n)).is_none() {
                    log(&format!("{}-{} does not answer; restarting it", c.id, n.node_id));
                    if self.start_node(&c, &mut n) {
                        restarted.push(n.node_id.clone());
                    }
                }
            }
            if !restarted.is_empty() {
                self.push_discovery(&c.id);
                self.event(&c.id, &format!("Recovered cache nodes {}", restarted.join(", ")));
            }
            self.end(&c.id);
        }
    }
}

/// Start the control plane and serve until the process is stopped.
pub fn run(opts: Options) -> Result<(), String> {
    std::fs::create_dir_all(&opts.data_dir).map_err(|e| format!("{}: {}", opts.data_dir.display(), e))?;
    let data_dir = std::fs::canonicalize(&opts.data_dir).map_err(|e| e.to_string())?;
    let store = SqliteStore::open(&data_dir.join("control.sqlite3"))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let provider = LocalProcesses::new(exe, provider::nodes_dir(&data_dir), opts.bind.clone());
    let app = Arc::new(App {
        store: Mutex::new(Box::new(store)),
        provider: Arc::new(provider),
        busy: Mutex::new(HashSet::new()),
        keys: opts
            .access_key_id
            .clone()
            .map(|id| sigv4::Keys { access_key_id: id, secret_access_key: opts.secret_access_key.clone() }),
        region: "us-east-1".into(),
        groups: failover::Groups::new(&opts.bind),
        config_endpoints: mc_config::ConfigEndpoints::new(&opts.bind)?,
        read_timeout: opts.read_timeout,
        metrics: metrics::Metrics::default(),
        sharded: sharded::Runtime::default(),
    });

    let sentinel = app.groups.sentinel.init(&app);

    // Re-adopt recorded nodes and finish whatever was in flight, before serving.
    let clusters = app.store.lock().unwrap().clusters()?;
    // Members of replication groups are reconciled with their group (failover::start).
    failover::claim_members(&app);
    for c in &clusters {
        if !app.try_begin(&c.id) {
            continue;
        }
        if c.status == "deleting" {
            log(&format!("{}: finishing deletion", c.id));
            app.op_delete(&c.id);
        } else {
            let msg = (c.status == "creating").then_some("Cache cluster created");
            app.op_converge(&c.id, msg);
            log(&format!("{}: re-adopted", c.id));
        }
    }

    failover::start(&app);
    metrics::start(&app);

    let healer = app.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        healer.heal();
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.spawn(sentinel_link::serve(sentinel, opts.bind.clone(), opts.sentinel_port));
    rt.block_on(async move {
        let addr = format!("{}:{}", opts.bind, opts.port);
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| format!("bind {}: {}", addr, e))?;
        log(&format!(
            "ElastiCache API (2015-02-02, AWS Query protocol) on http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        ));
        serve(listener, app).await;
        Ok(())
    })
}

/// The API's accept loop: HTTP/1.1 connections with a header read timeout (hyper closes a
/// connection whose request headers do not arrive within `read_timeout`, also between
/// keep-alive requests); the body has its own timeout in api.rs.
async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) {
    let timeout = app.read_timeout;
    let router = api::router(app);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log(&format!("accept: {}", e));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}
