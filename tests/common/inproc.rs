//! An in-process node for tests: a ferrocache node runs inside the test process, on a tokio
//! runtime of its own thread, listening on 127.0.0.1 on a port the kernel picks (port 0), as
//! mini-redis's tests/server.rs does. No binary to spawn, no free-port race, no wait for the
//! process to come up: `InProcNode::start(&[])` returns once the listener is bound and the
//! (empty) dataset is loaded, so the first connection is served.
//!
//! Not declared in `common/mod.rs` (every test binary would then link the whole node); a test
//! file that wants it adds
//!
//! ```ignore
//! #[path = "common/inproc.rs"]
//! mod inproc;
//! ```
//!
//! What is started is what `src/main.rs` starts for `ferrocache server --port 0 --save ''`:
//! `Config::new(None)` with the options given, `init_log`, `bind_all` (the port picked is then
//! written back to the configuration, so INFO and CONFIG GET port show it), `Node::new(config,
//! 2, ferrocache_commands::registry())`, `load_data_serving`, then `ferrocache_server::run`.
//! Dropping the handle stops the runtime: the listener and every connection are closed.
//!
//! Several in-process nodes can run in one test binary (one per test, in parallel), with these
//! limits, all from state that is global to a process:
//! - SHUTDOWN (or anything reaching `ferrocache_server::exit_now`) ends the whole test process
//!   with `std::process::exit(0)`: the binary's other tests stop without a word and cargo sees
//!   success. Never send it to an in-process node (spawn `common::ferrocache` for that).
//!   SIGTERM/SIGINT handlers (`spawn_shutdown_tasks`) are not installed.
//! - The log destination is the first node's (`init_log` keeps the first `logfile`, default
//!   standard error, which the test harness captures).
//! - `used_memory` is the process's allocation counter, and it only counts when the test
//!   binary installs `ferrocache_engine::memory::CountingAlloc` as its global allocator (the
//!   binary does): without it INFO memory reads 0 and `maxmemory` never evicts nor refuses.
//!   With it, every node of the process (and the test code) shares the same figure.
//! - The command table (the first registry installed wins; all are the same), the per-thread
//!   command statistics registry, `acl-pubsub-default`, the memcached CAS counter and the
//!   lazy-free counters are process-wide.
//! - Files are relative to the test process's working directory (the binary chdirs to `dir`;
//!   a test process cannot): `dbfilename` and `appenddirname` are set to names unique to the
//!   node so that no `dump.rdb` lying there is loaded, and `save ''` writes nothing; SAVE,
//!   BGSAVE, DEBUG RELOAD or `appendonly yes` would write into that directory.
//! - No memcached listener and no cluster bus (port 0 turns memcached off).
#![allow(dead_code)]

use ferrocache_node::Node;
use ferrocache_server::Config;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Worker threads of an in-process node's runtime.
const THREADS: usize = 2;

/// A node running inside the test process; stopped when dropped.
pub struct InProcNode {
    /// The RESP port it listens on (127.0.0.1).
    pub port: u16,
    /// The node itself, for a test that looks at its state directly.
    pub node: Arc<Node>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl InProcNode {
    /// Start a node with these configuration options (`("notify-keyspace-events", "KEA")`:
    /// what `--notify-keyspace-events KEA` gives the binary; a value splits on whitespace).
    /// Panics when an option is refused or the node cannot start.
    pub fn start(options: &[(&str, &str)]) -> InProcNode {
        let options: Vec<(String, Vec<String>)> = options
            .iter()
            .map(|(k, v)| {
                let vals: Vec<String> = v.split_whitespace().map(str::to_string).collect();
                (k.to_string(), if vals.is_empty() { vec![String::new()] } else { vals })
            })
            .collect();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(u16, Arc<Node>), String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("inproc-node".into())
            .spawn(move || {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(THREADS).enable_all();
                // As src/main.rs: requests read by one poll run in arrival order.
                #[cfg(tokio_unstable)]
                builder.disable_lifo_slot();
                let rt = builder.build().expect("tokio runtime");
                rt.block_on(serve(options, ready_tx, stop_rx));
                // Tasks still running (connections, crons) are dropped with the runtime.
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .expect("spawn the in-process node's thread");
        match ready_rx.recv() {
            Ok(Ok((port, node))) => InProcNode { port, node, stop: Some(stop_tx), thread: Some(thread) },
            Ok(Err(e)) => {
                let _ = thread.join();
                panic!("in-process node did not start: {e}");
            }
            Err(_) => {
                let r = thread.join();
                panic!("in-process node's thread ended during startup: {:?}", r.err());
            }
        }
    }

    /// 127.0.0.1:port.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for InProcNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A name no other node of this (or another) test process uses.
fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("inproc-{}-{}-{}{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), rand::random::<u32>(), tag)
}

fn config(options: &[(String, Vec<String>)]) -> Result<Config, String> {
    let cfg = Config::new(None);
    let set = |name: &str, vals: &[String]| cfg.set_startup(name, vals).map_err(|e| format!("{name} {vals:?}: {e}"));
    set("port", &["0".into()])?;
    set("bind", &["127.0.0.1".into()])?;
    set("save", &[String::new()])?;
    set("appendonly", &["no".into()])?;
    set("dbfilename", &[unique(".rdb")])?;
    set("appenddirname", &[unique(".aofdir")])?;
    for (name, vals) in options {
        set(name, vals)?;
    }
    ferrocache_server::memcached::apply_engine_defaults(&cfg)?;
    Ok(cfg)
}

/// The runtime's main task: bind, build, load, report the port, then serve until told to stop.
async fn serve(
    options: Vec<(String, Vec<String>)>,
    ready: std::sync::mpsc::Sender<Result<(u16, Arc<Node>), String>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let cfg = match config(&options) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let listeners = match ferrocache_server::bind_all(&cfg).await {
        Ok(l) if !l.is_empty() => l,
        Ok(_) => {
            let _ = ready.send(Err("no listener bound".into()));
            return;
        }
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let port = match listeners[0].local_addr() {
        Ok(a) => a.port(),
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    // The node learns its real port (INFO server's tcp_port, CONFIG GET port, REPLCONF).
    if let Err(e) = cfg.set_startup("port", &[port.to_string()]) {
        let _ = ready.send(Err(e));
        return;
    }
    ferrocache_server::init_log(&cfg);
    let node = Node::new(cfg, THREADS, ferrocache_commands::registry());
    let listeners = match ferrocache_server::load_data_serving(&node, listeners).await {
        ferrocache_server::Loaded::Ready(l) => l,
        ferrocache_server::Loaded::Failed => {
            let _ = ready.send(Err("loading the dataset failed".into()));
            return;
        }
        ferrocache_server::Loaded::Shutdown => {
            let _ = ready.send(Err("shut down while loading".into()));
            return;
        }
    };
    if ready.send(Ok((port, node.clone()))).is_err() {
        return;
    }
    tokio::select! {
        _ = ferrocache_server::run(node, listeners) => {}
        _ = stop => {}
    }
}
