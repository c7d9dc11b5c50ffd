//! Where nodes run, behind [`Provider`]. The embedded default, [`LocalProcesses`], starts each
//! node as a child process of this executable (`ferrocache server ...`) with its own data dir.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a provider needs to run one node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub cluster_id: String,
    pub node_id: String,
    pub engine: String,
    /// RESP port (the admin port of a memcached node).
    pub port: u16,
    /// memcached port (0 for Redis nodes).
    pub mc_port: u16,
    /// A node of a cluster-mode group: started with `cluster-enabled yes`.
    pub cluster_mode: bool,
}

pub trait Provider: Send + Sync {
    /// Address clients use to reach a node.
    fn address(&self, spec: &NodeSpec) -> String;
    /// Ports for a new node: (resp, memcached or 0).
    fn allocate_ports(&self, engine: &str) -> Result<(u16, u16), String>;
    /// A port for a node with cluster mode enabled: its cluster bus listens on port + 10000,
    /// which must be free too.
    fn allocate_cluster_port(&self) -> Result<u16, String> {
        Ok(self.allocate_ports("redis")?.0)
    }
    /// Start the node (keeping its data dir if it exists) and wait until it answers PING.
    /// Returns its pid.
    fn start(&self, spec: &NodeSpec) -> Result<i64, String>;
    /// Stop the node; `save` asks for a final save where the node persists.
    fn stop(&self, spec: &NodeSpec, pid: i64, save: bool);
    /// Stop the node and remove its data.
    fn destroy(&self, spec: &NodeSpec, pid: i64);
    /// The pid of the live node answering on the node's port, if any.
    fn probe(&self, spec: &NodeSpec) -> Option<i64>;
    /// Run a command on the node's RESP port; the reply's first line.
    fn command(&self, spec: &NodeSpec, args: &[&str]) -> Result<String, String>;
    /// Reap exited children (called periodically).
    fn reap(&self) {}
}

pub struct LocalProcesses {
    exe: PathBuf,
    nodes_dir: PathBuf,
    bind: String,
    children: Mutex<HashMap<i64, Child>>,
}

impl LocalProcesses {
    pub fn new(exe: PathBuf, nodes_dir: PathBuf, bind: String) -> LocalProcesses {
        LocalProcesses { exe, nodes_dir, bind, children: Mutex::new(HashMap::new()) }
    }

    pub fn node_dir(&self, spec: &NodeSpec) -> PathBuf {
        self.nodes_dir.join(format!("{}-{}", spec.cluster_id, spec.node_id))
    }

    fn wait_gone(&self, pid: i64, port: u16, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let ours = {
                let mut children = self.children.lock().unwrap();
                match children.get_mut(&pid).map(|c| c.try_wait().ok().flatten().is_some()) {
                    Some(true) => {
                        children.remove(&pid);
                        return true;
                    }
                    Some(false) => true,
                    None => false,
                }
            };
            // A recorded pid that no longer runs this node is gone for us, whatever runs there
            // now (pids are reused: it may be any other process by now).
            if !ours && (pid <= 0 || !process_exists(pid) || !is_node_process(pid, port)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether `pid` is a `ferrocache server` listening on `port` (its command line says so).
pub fn is_node_process(pid: i64, port: u16) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(cmd) = std::fs::read(format!("/proc/{}/cmdline", pid)) else { return false };
    let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
    args.windows(2).any(|w| w[0] == b"--port" && w[1] == port.to_string().as_bytes())
        && args.iter().any(|a| *a == b"server")
}

/// Whether a process runs (a zombie left unreaped by a foreign parent counts as gone).
fn process_exists(pid: i64) -> bool {
    if unsafe { libc::kill(pid as i32, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{}/stat", pid)) {
        // `pid (comm) S ...`: the state follows the last ')'.
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// One RESP request/reply on 127.0.0.1:port; returns the reply's first line, bulk payloads
/// inlined (enough for PING, CONFIG SET, INFO, SHUTDOWN).
pub fn resp_command(port: u16, args: &[&str], timeout: Duration) -> Result<String, String> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{}\r\n", a.len(), a));
    }
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
        return Err("connection closed".into());
    }
    let line = line.trim_end().to_string();
    if let Some(n) = line.strip_prefix('$') {
        let n: i64 = n.parse().map_err(|_| "bad reply".to_string())?;
        if n < 0 {
            return Ok(String::new());
        }
        let mut buf = vec![0u8; n as usize + 2];
        r.read_exact(&mut buf).map_err(|e| e.to_string())?;
        buf.truncate(n as usize);
        return Ok(String::from_utf8_lossy(&buf).into_owned());
    }
    if let Some(err) = line.strip_prefix('-') {
        return Err(err.to_string());
    }
    Ok(line)
}

impl LocalProcesses {
    /// The address the nodes bind (loopback for a wildcard bind).
    fn address_ip(&self) -> &str {
        if self.bind == "0.0.0.0" || self.bind == "*" {
            "0.0.0.0"
        } else {
            &self.bind
        }
    }
}

impl Provider for LocalProcesses {
    fn address(&self, _spec: &NodeSpec) -> String {
        if self.bind == "0.0.0.0" || self.bind == "*" {
            "127.0.0.1".into()
        } else {
            self.bind.clone()
        }
    }

    fn allocate_ports(&self, engine: &str) -> Result<(u16, u16), String> {
        let p = free_port()?;
        if engine == "memcached" {
            let mut m = free_port()?;
            while m == p {
                m = free_port()?;
            }
            Ok((p, m))
        } else {
            Ok((p, 0))
        }
    }

    fn allocate_cluster_port(&self) -> Result<u16, String> {
        for _ in 0..1000 {
            // Below 55536, so that the bus port exists; both free on the nodes' address now.
            let l = TcpListener::bind((self.address_ip(), 0)).map_err(|e| e.to_string())?;
            let p = l.local_addr().map_err(|e| e.to_string())?.port();
            if p <= 55535 && TcpListener::bind((self.address_ip(), p + 10000)).is_ok() {
                return Ok(p);
            }
        }
        Err("no free port pair (port, port + 10000) for a cluster node".into())
    }

    fn start(&self, spec: &NodeSpec) -> Result<i64, String> {
        let dir = self.node_dir(spec);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {}", dir.display(), e))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("server").arg("--port").arg(spec.port.to_string()).arg("--dir").arg(&dir);
        if spec.engine == "memcached" {
            // The RESP port stays on, as the control plane's admin channel, on loopback only
            // when the memcached port is public.
            cmd.arg("--bind").arg(&self.bind).arg("--memcached-port").arg(spec.mc_port.to_string());
        } else {
            cmd.arg("--bind").arg(&self.bind);
        }
        if spec.cluster_mode {
            // ElastiCache's cluster-mode parameter group: full coverage not required (a shard
            // that is down does not stop the others from serving).
            cmd.args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", &crate::sharded::NODE_TIMEOUT_MS.to_string()])
                .args(["--cluster-require-full-coverage", "no"]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().map_err(|e| e.to_string())?))
            .stderr(Stdio::from(log))
            // Own process group: a Ctrl-C to the control plane does not take the nodes down,
            // so a restarted control plane re-adopts them.
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| format!("spawn {}: {}", self.exe.display(), e))?;
        let pid = child.id() as i64;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if resp_command(spec.port, &["PING"], Duration::from_millis(500)).is_ok_and(|r| r == "+PONG") {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "node {} exited during start ({}); see {}",
                    spec.node_id,
                    status,
                    dir.join("node.log").display()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("node {} did not answer PING within 15s", spec.node_id));
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        self.children.lock().unwrap().insert(pid, child);
        Ok(pid)
    }

    fn stop(&self, spec: &NodeSpec, pid: i64, save: bool) {
        let live = self.probe(spec);
        let _ = resp_command(spec.port, &["SHUTDOWN", if save { "SAVE" } else { "NOSAVE" }], Duration::from_secs(5));
        for p in [Some(pid), live].into_iter().flatten() {
            if !self.wait_gone(p, spec.port, Duration::from_secs(5)) {
                unsafe { libc::kill(p as i32, libc::SIGKILL) };
                self.wait_gone(p, spec.port, Duration::from_secs(5));
            }
        }
    }

    fn destroy(&self, spec: &NodeSpec, pid: i64) {
        self.stop(spec, pid, false);
        let _ = std::fs::remove_dir_all(self.node_dir(spec));
    }

    fn probe(&self, spec: &NodeSpec) -> Option<i64> {
        let info = resp_command(spec.port, &["INFO", "server"], Duration::from_millis(500)).ok()?;
        info.lines().find_map(|l| l.strip_prefix("process_id:")).and_then(|p| p.trim().parse().ok())
    }

    fn command(&self, spec: &NodeSpec, args: &[&str]) -> Result<String, String> {
        resp_command(spec.port, args, Duration::from_secs(5))
    }

    fn reap(&self) {
        self.children.lock().unwrap().retain(|_, c| c.try_wait().ok().flatten().is_none());
    }
}

/// The directory nodes live under.
pub fn nodes_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("nodes")
}
