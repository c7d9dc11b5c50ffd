//! A node process with its own `--dir` and log file, for the tests that restart nodes on the
//! same directory, read their logs, signal or wait for them (persistence, aof, replication):
//! ferrocache or a real redis-server, killed on drop unless it already exited.

use super::{free_port, ready_or_exited};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A ferrocache or redis-server process and its log file.
pub struct Node {
    /// None once `wait_exit` saw it exit.
    pub child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Node {
    /// A new `redis` crate connection.
    pub fn con(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap().get_connection().unwrap()
    }
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Wait for the process to exit (after SHUTDOWN).
    pub fn wait_exit(&mut self) {
        let mut c = self.child.take().unwrap();
        let t = Instant::now();
        loop {
            if c.try_wait().unwrap().is_some() {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(20), "node did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    /// The process id (panics after `wait_exit`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
}

/// A fresh, empty directory `$TMPDIR/ferrocache-KIND-NAME-PID-N` (left in place afterwards).
pub fn tempdir(kind: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrocache-{}-{}-{}-{}", kind, name, std::process::id(), free_port()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `ferrocache server --port P --dir DIR EXTRA...`, answering PING with PONG (listening and
/// done loading), logging to DIR/ferrocache-P.log.
pub fn start(dir: &Path, extra: &[&str]) -> Node {
    start_logging_to(dir, dir, extra)
}

/// `start`, logging to LOGDIR/ferrocache-P.log.
pub fn start_logging_to(dir: &Path, logdir: &Path, extra: &[&str]) -> Node {
    for _attempt in 0..5 {
        let mut n = spawn(dir, logdir, extra);
        let log = n.log.clone();
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        if !ready_or_exited(n.port, n.child.as_mut().unwrap(), Duration::from_secs(60), &text) {
            assert!(n.log_text().contains("ddress already in use"), "server exited during startup: {}", n.log_text());
            n.child = None;
        } else {
            return n;
        }
    }
    panic!("no free port after 5 attempts");
}

/// Start a node without waiting for it (the caller watches it start and load).
pub fn spawn(dir: &Path, logdir: &Path, extra: &[&str]) -> Node {
    let port = free_port();
    let log = logdir.join(format!("ferrocache-{port}.log"));
    let mut args: Vec<String> =
        vec!["server".into(), "--port".into(), port.to_string(), "--dir".into(), dir.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start ferrocache");
    Node { child: Some(child), port, log }
}

/// Whether `bin --version` runs (the tool is installed).
pub fn have(bin: &str) -> bool {
    Command::new(bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// `redis-server --port P --dir DIR ARGS...` logging to DIR/redis-P.log, once it answers PING
/// and INFO persistence says it is done loading; None when redis-server is not installed.
pub fn start_redis(dir: &Path, args: &[&str]) -> Option<Node> {
    if !have("redis-server") {
        return None;
    }
    let (port, log, child) = (0..5)
        .find_map(|_| {
            let port = free_port();
            let log = dir.join(format!("redis-{port}.log"));
            let mut all: Vec<String> =
                vec!["--port".into(), port.to_string(), "--dir".into(), dir.display().to_string()];
            all.extend(args.iter().map(|s| s.to_string()));
            let mut child = Command::new("redis-server")
                .args(&all)
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let text = || std::fs::read_to_string(&log).unwrap_or_default();
            if ready_or_exited(port, &mut child, Duration::from_secs(60), &text) {
                return Some((port, log, child));
            }
            assert!(text().contains("ddress already in use"), "redis-server exited during startup: {}", text());
            None
        })
        .expect("redis-server: no free port after 5 attempts");
    // Wait for loading to finish.
    let n = Node { child: Some(child), port, log };
    let mut c = n.con();
    let t = Instant::now();
    while info_field(&mut c, "persistence", "loading") != "0" {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(n)
}

/// One field of INFO SECTION (panics when it is missing).
pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> String {
    let s: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    for l in s.lines() {
        if let Some(v) = l.strip_prefix(&format!("{field}:")) {
            return v.trim().to_string();
        }
    }
    panic!("no field {field} in INFO {section}: {s}")
}

/// Run a command (panics with the command on an error reply).
pub fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Run a command that must fail: its error as "CODE detail".
pub fn q_err(c: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(c) {
        Ok(v) => panic!("{args:?}: expected an error, got {v:?}"),
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")).trim().to_string(),
    }
}

/// Poll `f` every 50 ms until it holds (panics after `secs`).
pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
