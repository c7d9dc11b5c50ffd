//! Shared helpers for the end-to-end tests: start a ferrocache node or a real redis-server on a
//! free port, wait for a process to listen or answer PING, a minimal raw RESP client, and a RESP
//! reply reader that keeps the exact bytes.
//!
//! Submodules: `control` (the control plane), `node` (a node with its own --dir and log file,
//! restarted by the persistence, AOF and replication tests). The helpers of one topic's test
//! files (`memcached.rs`, `scripting.rs`, `repl.rs`, `differential/`, `resp.rs`) and the
//! in-process node (`inproc.rs`) are not declared here, so that a test binary compiles only
//! what it uses: the files of that topic include them next to `mod common;`, e.g.
//! `#[path = "common/memcached.rs"] mod mc;`.
#![allow(dead_code)]

pub mod control;
pub mod node;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    // Spread the ports so that parallel test binaries rarely collide on the same ephemeral one.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().unwrap().port()
}

/// A port P below 55535 with P and P + 10000 both free (redis-cli --cluster create MEETs nodes
/// at port + 10000).
pub fn port_pair() -> u16 {
    loop {
        let p = 20000 + rand::random::<u16>() % 20000;
        let a = TcpListener::bind(("127.0.0.1", p));
        let b = TcpListener::bind(("127.0.0.1", p + 10000));
        if a.is_ok() && b.is_ok() {
            return p;
        }
    }
}

/// A server process killed (and reaped) on drop.
pub struct ServerProc {
    pub child: Child,
    pub port: u16,
    pub dir: Option<PathBuf>,
    pub name: &'static str,
}

impl ServerProc {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
    pub fn url3(&self) -> String {
        format!("redis://127.0.0.1:{}/?protocol=resp3", self.port)
    }
    pub fn conn(&self) -> Raw {
        Raw::connect(self.port)
    }
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).unwrap()
    }
    pub fn sync(&self) -> redis::Connection {
        self.client().get_connection().unwrap()
    }
    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A fresh temporary directory (removed by the ServerProc that owns it, or by the caller).
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferro-{}-{}-{}", tag, std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Whether the server on `s` is process `pid` (INFO's process_id).
fn answered_by(s: &mut TcpStream, pid: u32) -> bool {
    if s.write_all(b"INFO server\r\n").is_err() {
        return true;
    }
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
        let t = String::from_utf8_lossy(&text);
        if t.starts_with('-') {
            return true;
        }
        if let Some(line) = t.lines().find(|l| l.starts_with("process_id:")) {
            if t.contains("process_id:") && t[t.find("process_id:").unwrap()..].contains('\n') {
                return line["process_id:".len()..].trim() == pid.to_string();
            }
        }
    }
    true
}

/// Wait until the child answers PING on `port`. Returns false when the port is answered by
/// another process (two tests drew the same free port and the other server bound it first:
/// this child will exit with "Address already in use"); the caller retries on a new port.
fn ready_as(child: &mut Child, port: u16, name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            if let Some(e) = child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("{} exited during startup ({}): {}", name, st, err);
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            if s.write_all(b"PING\r\n").is_ok() {
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf) {
                    if buf[..n].starts_with(b"+PONG") {
                        return answered_by(&mut s, child.id());
                    }
                }
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{} did not answer PING on port {} within 20s", name, port);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a new connection to `port` gets +PONG for PING (within `timeout`).
/// The process id of the server on `port` when it answers PING with PONG (listening and done
/// loading), from INFO server; None otherwise.
fn pong_pid(port: u16, timeout: Duration) -> Option<u32> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(timeout)).ok();
    s.write_all(b"PING\r\nINFO server\r\n").ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).ok().filter(|&n| n > 0)?;
        got.extend_from_slice(&buf[..n]);
        if !got.starts_with(b"+PONG") {
            return None;
        }
        let text = String::from_utf8_lossy(&got);
        if let Some(rest) = text.split("\r\nprocess_id:").nth(1) {
            if let Some((pid, _)) = rest.split_once("\r\n") {
                return pid.trim().parse().ok();
            }
        }
    }
}

/// Wait until the server on `port` answers PING with PONG: listening, and done loading (while
/// loading, PING gets -LOADING, as in Redis). Panics when `child` exits first or after 60 s.
pub fn wait_ready(port: u16, child: &mut Child) {
    wait_ready_within(port, child, Duration::from_secs(60), &String::new);
}

/// `wait_ready` with a time limit, and `context()` (e.g. the node's log) in the panic message.
/// The PONG must come from `child` itself (INFO's process_id): another test's server that
/// briefly held the same port, while `child` fails to bind it, does not count.
pub fn wait_ready_within(port: u16, child: &mut Child, limit: Duration, context: &dyn Fn() -> String) {
    assert!(ready_or_exited(port, child, limit, context), "server exited during startup: {}", context());
}

/// `wait_ready_within`, but false (instead of a panic) when `child` exits first.
pub fn ready_or_exited(port: u16, child: &mut Child, limit: Duration, context: &dyn Fn() -> String) -> bool {
    let t = Instant::now();
    loop {
        if pong_pid(port, Duration::from_secs(5)) == Some(child.id()) {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(t.elapsed() < limit, "server on port {port} did not answer PING with PONG: {}", context());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `port` accepts a connection within `limit`; false as soon as `child` has exited (e.g.
/// another process took the port: the caller retries on a new one).
pub fn listening_within(port: u16, child: &mut Child, limit: Duration) -> bool {
    let t = Instant::now();
    loop {
        if !matches!(child.try_wait(), Ok(None)) || t.elapsed() >= limit {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Wait until `port` accepts connections (the server may still be loading). Panics when `child`
/// exits first or after 30 s.
pub fn wait_listening(port: u16, child: &mut Child) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("server exited: {st}");
        }
        assert!(t.elapsed() < Duration::from_secs(30), "server on port {port} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start target/debug/ferrocache on a free port with extra arguments (e.g. ["--maxmemory", "1mb"]).
pub fn ferrocache(extra: &[&str]) -> ServerProc {
    ferrocache_with(None, extra)
}

/// Start ferrocache with an optional config file first (`ferrocache server FILE --port P ...`).
pub fn ferrocache_with(config_file: Option<&std::path::Path>, extra: &[&str]) -> ServerProc {
    // A node without its own --dir works in a fresh temp dir: never the test's cwd, where a
    // dump.rdb left by another test would be loaded (or one written by this node left behind).
    let own_dir = (config_file.is_none() && !extra.contains(&"--dir")).then(|| temp_dir("node"));
    for _attempt in 0..5 {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrocache"));
        cmd.arg("server");
        if let Some(f) = config_file {
            cmd.arg(f);
        }
        if let Some(d) = &own_dir {
            cmd.arg("--dir").arg(d);
        }
        cmd.arg("--port")
            .arg(port.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ferrocache");
        // Port collision: the process exits at once; retry with another port.
        std::thread::sleep(Duration::from_millis(30));
        if let Ok(Some(_)) = child.try_wait() {
            let mut err = String::new();
            child.stderr.as_mut().unwrap().read_to_string(&mut err).ok();
            if err.contains("ddress already in use") {
                continue;
            }
            panic!("ferrocache exited at startup: {}", err);
        }
        // Do not keep a pipe that nobody drains: the server could block on a full stderr.
        let stderr = child.stderr.take();
        if let Some(mut e) = stderr {
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = e.read_to_end(&mut sink);
            });
        }
        if !ready_as(&mut child, port, "ferrocache") {
            let _ = child.kill();
            let _ = child.wait();
            continue;
        }
        return ServerProc { child, port, dir: own_dir, name: "ferrocache" };
    }
    panic!("could not start ferrocache on a free port");
}

/// Path of redis-server if it is on PATH.
pub fn redis_server_path() -> Option<PathBuf> {
    which("redis-server")
}

pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Start a real redis-server (`--port P --save '' --appendonly no`) in a temp dir, or None (the
/// caller prints SKIPPED and passes) when redis-server is not installed.
pub fn redis_server(extra: &[&str]) -> Option<ServerProc> {
    let bin = redis_server_path()?;
    for _attempt in 0..5 {
        let port = free_port();
        let dir = temp_dir("redis");
        let mut child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .args(["--bind", "127.0.0.1", "--daemonize", "no", "--logfile", ""])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(Some(_)) = child.try_wait() {
            let mut out = String::new();
            child.stdout.as_mut().unwrap().read_to_string(&mut out).ok();
            let _ = std::fs::remove_dir_all(&dir);
            if out.contains("ddress already in use") {
                continue;
            }
            panic!("redis-server exited at startup: {}", out);
        }
        if let Some(mut o) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = o.read_to_end(&mut sink);
            });
        }
        if !ready_as(&mut child, port, "redis-server") {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&dir);
            continue;
        }
        return Some(ServerProc { child, port, dir: Some(dir), name: "redis-server" });
    }
    panic!("could not start redis-server on a free port");
}

/// Start redis-server or print SKIPPED and return from the calling test.
#[macro_export]
macro_rules! redis_or_skip {
    ($extra:expr) => {
        match common::redis_server($extra) {
            Some(r) => r,
            None => {
                eprintln!("SKIPPED: redis-server is not on PATH");
                return;
            }
        }
    };
}

/// A RESP reply, parsed, with RESP3 types kept apart.
#[derive(Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    NilArray,
    Array(Vec<Reply>),
    // RESP3
    Null,
    Double(String),
    Bool(bool),
    Big(String),
    Verbatim(String, Vec<u8>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Push(Vec<Reply>),
    Attr(Vec<(Reply, Reply)>),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn list(f: &mut std::fmt::Formatter<'_>, open: &str, v: &[Reply]) -> std::fmt::Result {
            write!(f, "{}", open)?;
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{:?}", x)?;
            }
            write!(f, "]")
        }
        match self {
            Reply::Simple(s) => write!(f, "+{}", s),
            Reply::Error(s) => write!(f, "-{}", s),
            Reply::Int(i) => write!(f, ":{}", i),
            Reply::Bulk(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Reply::Nil => write!(f, "(nil)"),
            Reply::NilArray => write!(f, "(nil-array)"),
            Reply::Array(v) => list(f, "[", v),
            Reply::Null => write!(f, "_null"),
            Reply::Double(d) => write!(f, ",{}", d),
            Reply::Bool(b) => write!(f, "#{}", b),
            Reply::Big(s) => write!(f, "({}", s),
            Reply::Verbatim(t, b) => write!(f, "={}:{:?}", t, String::from_utf8_lossy(b)),
            Reply::Map(v) | Reply::Attr(v) => {
                write!(f, "{}{{", if matches!(self, Reply::Map(_)) { "%" } else { "|" })?;
                for (i, (k, x)) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{:?}: {:?}", k, x)?;
                }
                write!(f, "}}")
            }
            Reply::Set(v) => list(f, "~[", v),
            Reply::Push(v) => list(f, ">[", v),
        }
    }
}

impl Reply {
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) => Some(b),
            Reply::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
    pub fn as_str(&self) -> String {
        match self {
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Reply::Simple(s) | Reply::Error(s) | Reply::Double(s) | Reply::Big(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            other => format!("{:?}", other),
        }
    }
    pub fn as_int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("not an integer: {:?}", other),
        }
    }
    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => v,
            other => panic!("not an aggregate: {:?}", other),
        }
    }
}

/// Read one complete reply from `r`, appending its exact bytes to `raw`.
pub fn read_reply<R: BufRead>(r: &mut R, raw: &mut Vec<u8>) -> std::io::Result<Reply> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    raw.extend_from_slice(&line);
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad reply line {:?}", String::from_utf8_lossy(&line)),
        ));
    }
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let num = || {
        body.parse::<i64>()
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad length {:?}", body)))
    };
    let read_blob = |r: &mut R, raw: &mut Vec<u8>, len: usize| -> std::io::Result<Vec<u8>> {
        let mut b = vec![0u8; len + 2];
        r.read_exact(&mut b)?;
        raw.extend_from_slice(&b);
        b.truncate(len);
        Ok(b)
    };
    Ok(match line[0] {
        b'+' => Reply::Simple(body),
        b'-' => Reply::Error(body),
        b':' => Reply::Int(num()?),
        b'$' => {
            let n = num()?;
            if n < 0 {
                Reply::Nil
            } else {
                Reply::Bulk(read_blob(r, raw, n as usize)?)
            }
        }
        b'*' | b'~' | b'>' => {
            let n = num()?;
            if n < 0 {
                Reply::NilArray
            } else {
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(read_reply(r, raw)?);
                }
                match line[0] {
                    b'*' => Reply::Array(v),
                    b'~' => Reply::Set(v),
                    _ => Reply::Push(v),
                }
            }
        }
        b'%' | b'|' => {
            let n = num()?;
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let k = read_reply(r, raw)?;
                let val = read_reply(r, raw)?;
                v.push((k, val));
            }
            if line[0] == b'%' {
                Reply::Map(v)
            } else {
                Reply::Attr(v)
            }
        }
        b'_' => Reply::Null,
        b',' => Reply::Double(body),
        b'#' => Reply::Bool(body == "t"),
        b'(' => Reply::Big(body),
        b'=' => {
            let n = num()?;
            let b = read_blob(r, raw, n as usize)?;
            Reply::Verbatim(String::from_utf8_lossy(&b[..3.min(b.len())]).into_owned(), b[4.min(b.len())..].to_vec())
        }
        b'!' => {
            let n = num()?;
            Reply::Error(String::from_utf8_lossy(&read_blob(r, raw, n as usize)?).into_owned())
        }
        c => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unknown reply type {:?}", c as char),
            ))
        }
    })
}

/// Encode a command as a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// A raw TCP client: send bytes, read exact replies.
pub struct Raw {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).ok();
        Raw { r: BufReader::new(s.try_clone().unwrap()), w: s }
    }
    pub fn set_timeout(&self, d: Duration) {
        self.w.set_read_timeout(Some(d)).unwrap();
    }
    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("write");
    }
    pub fn send_cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.send(&encode(args));
    }
    pub fn read(&mut self) -> Reply {
        let mut raw = Vec::new();
        read_reply(&mut self.r, &mut raw).expect("read reply")
    }
    pub fn try_read(&mut self) -> std::io::Result<Reply> {
        let mut raw = Vec::new();
        read_reply(&mut self.r, &mut raw)
    }
    /// Read one reply and return its exact bytes.
    pub fn read_raw(&mut self) -> Vec<u8> {
        let mut raw = Vec::new();
        read_reply(&mut self.r, &mut raw).expect("read reply");
        raw
    }
    /// Send a command and read its reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.send_cmd(args);
        self.read()
    }
    /// Whitespace-split convenience: `c.q("SET k v")`.
    pub fn q(&mut self, line: &str) -> Reply {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.cmd(&args)
    }
    /// Read one reply and return its exact bytes as a (lossy) string.
    pub fn read_str(&mut self) -> String {
        String::from_utf8_lossy(&self.read_raw()).into_owned()
    }
    /// Send a command and return the exact reply bytes as a (lossy) string.
    pub fn qraw(&mut self, line: &str) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.send_cmd(&args);
        self.read_str()
    }
    /// `qraw` for binary arguments.
    pub fn cmd_raw(&mut self, args: &[&[u8]]) -> String {
        self.send_cmd(args);
        self.read_str()
    }
    /// True when the server closed the connection (EOF) within the read timeout.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        loop {
            match self.r.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// VmRSS of a process, in bytes.
pub fn rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}
