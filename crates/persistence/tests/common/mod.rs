//! Helpers for tests against a real redis-server: process management and a
//! minimal binary-safe RESP2 client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn bulk(&self) -> Vec<u8> {
        match self {
            Reply::Bulk(Some(b)) => b.clone(),
            other => panic!("expected bulk, got {other:?}"),
        }
    }
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected int, got {other:?}"),
        }
    }
    pub fn array(&self) -> Vec<Reply> {
        match self {
            Reply::Array(Some(a)) => a.clone(),
            other => panic!("expected array, got {other:?}"),
        }
    }
    pub fn text(&self) -> String {
        match self {
            Reply::Simple(s) | Reply::Error(s) => s.clone(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        }
    }
}

pub fn redis_available() -> bool {
    let ok = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: redis-server is not on PATH");
    }
    ok
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary directory (removed by the caller's [`TempDir`] drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("ferrocache-rdb-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Start redis-server with `dir`/`dbfilename` (loading that file when it
    /// exists) plus extra config args.
    pub fn start(dir: &Path, dbfilename: &str, extra: &[&str]) -> RedisServer {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(dir)
            .arg("--dbfilename")
            .arg(dbfilename)
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--daemonize")
            .arg("no")
            .arg("--logfile")
            .arg(dir.join("redis.log"));
        for a in extra {
            cmd.arg(a);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn redis-server");
        let mut s = RedisServer { child, port };
        let start = Instant::now();
        loop {
            if let Ok(mut c) = s.try_client() {
                if let Ok(Reply::Simple(p)) = c.try_cmd(&[b"PING"]) {
                    if p == "PONG" {
                        break;
                    }
                }
            }
            if let Ok(Some(st)) = s.child.try_wait() {
                let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
                panic!("redis-server exited early ({st}):\n{log}");
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("redis-server did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn try_client(&self) -> std::io::Result<Client> {
        let s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client { r: BufReader::new(s.try_clone()?), w: s })
    }

    pub fn client(&self) -> Client {
        self.try_client().expect("connect")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    pub fn try_cmd(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&buf)?;
        self.read_reply()
    }

    /// Run a command; panics on I/O or error replies.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        let r = self.try_cmd(args).expect("redis I/O");
        if let Reply::Error(e) = &r {
            panic!(
                "redis error for {:?}: {e}",
                args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>()
            );
        }
        r
    }

    /// Run a command given as strings.
    pub fn cmds(&mut self, args: &[&str]) -> Reply {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.cmd(&a)
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line)?;
        if line.len() < 2 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short line"));
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let line = self.read_line()?;
        let (t, rest) = line.split_at(1);
        Ok(match t {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut b = vec![0u8; n as usize + 2];
                    self.r.read_exact(&mut b)?;
                    b.truncate(n as usize);
                    Reply::Bulk(Some(b))
                }
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    Reply::Array(None)
                } else {
                    let mut v = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        v.push(self.read_reply()?);
                    }
                    Reply::Array(Some(v))
                }
            }
            other => panic!("bad RESP type {other}"),
        })
    }
}
