//! Helpers of the memcached end-to-end tests (tests/memcached_*.rs): a node with a memcached
//! port, a raw socket client, binary packets, a real `memcached` to compare with, and the key and
//! value vocabulary of the differential tests. Included with
//! `#[path = "common/memcached.rs"] mod mc;` (next to `mod common;`).
#![allow(dead_code)]

use crate::common::{free_port, wait_listening};
use rand::rngs::SmallRng;
use rand::Rng;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Node {
    pub child: Child,
    pub port: u16,
    pub mc: u16,
}

impl Node {
    pub fn start(extra: &[&str]) -> Node {
        let port = free_port();
        let mc = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
            .args(["server", "--port", &port.to_string(), "--memcached-port", &mc.to_string(), "--save", ""])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The memcached port binds before the RESP port: wait for both (a memcached-engine
        // node has no RESP port).
        wait_listening(mc, &mut child);
        if !extra.windows(2).any(|w| w == ["--engine", "memcached"]) {
            wait_listening(port, &mut child);
        }
        Node { child, port, mc }
    }
    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap().get_connection().unwrap()
    }
    pub fn raw(&self) -> Raw {
        Raw::connect(self.mc)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw socket with a read-until helper.
pub struct Raw {
    pub s: TcpStream,
    pub buf: Vec<u8>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_nodelay(true).unwrap();
        Raw { s, buf: Vec::new() }
    }
    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }
    /// Read until the buffered input ends with `end`; returns everything read.
    pub fn until(&mut self, end: &[u8]) -> Vec<u8> {
        let mut tmp = [0u8; 65536];
        while !self.buf.ends_with(end) {
            let n = self.s.read(&mut tmp).unwrap_or_else(|e| {
                panic!(
                    "read: {e}; waiting for {:?} after {:?}",
                    String::from_utf8_lossy(end),
                    String::from_utf8_lossy(&self.buf)
                )
            });
            assert!(n > 0, "connection closed; got {:?}", String::from_utf8_lossy(&self.buf));
            self.buf.extend_from_slice(&tmp[..n]);
        }
        std::mem::take(&mut self.buf)
    }
    /// Send `req` followed by `mn` and return the reply without the trailing `MN`.
    pub fn call(&mut self, req: &[u8]) -> Vec<u8> {
        let mut r = req.to_vec();
        r.extend_from_slice(b"mn\r\n");
        self.send(&r);
        let mut out = self.until(b"MN\r\n");
        out.truncate(out.len() - 4);
        out
    }
    pub fn exact(&mut self, n: usize) -> Vec<u8> {
        let mut tmp = [0u8; 65536];
        while self.buf.len() < n {
            let k = self.s.read(&mut tmp).expect("read");
            assert!(k > 0, "closed");
            self.buf.extend_from_slice(&tmp[..k]);
        }
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }
    /// True when the server closed the connection (EOF) within the timeout.
    pub fn closed(&mut self) -> bool {
        let mut tmp = [0u8; 1024];
        matches!(self.s.read(&mut tmp), Ok(0))
    }
}

pub fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The CAS of the first `VALUE` line of a gets reply.
pub fn cas_of(reply: &[u8]) -> u64 {
    let line = s(reply);
    line.lines().next().unwrap().split(' ').nth(4).unwrap().parse().unwrap()
}

pub fn bin_req(op: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
    let mut v = vec![0x80, op];
    v.extend_from_slice(&(key.len() as u16).to_be_bytes());
    v.push(extras.len() as u8);
    v.push(0);
    v.extend_from_slice(&0u16.to_be_bytes());
    v.extend_from_slice(&((key.len() + extras.len() + value.len()) as u32).to_be_bytes());
    v.extend_from_slice(&opaque.to_be_bytes());
    v.extend_from_slice(&cas.to_be_bytes());
    v.extend_from_slice(extras);
    v.extend_from_slice(key);
    v.extend_from_slice(value);
    v
}

/// (opcode, status, opaque, cas, extras, key, value)
pub type BinResp = (u8, u16, u32, u64, Vec<u8>, Vec<u8>, Vec<u8>);

pub fn bin_read(r: &mut Raw) -> BinResp {
    let h = r.exact(24);
    assert_eq!(h[0], 0x81);
    let klen = u16::from_be_bytes([h[2], h[3]]) as usize;
    let elen = h[4] as usize;
    let status = u16::from_be_bytes([h[6], h[7]]);
    let blen = u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize;
    let opaque = u32::from_be_bytes(h[12..16].try_into().unwrap());
    let cas = u64::from_be_bytes(h[16..24].try_into().unwrap());
    let body = r.exact(blen);
    (h[1], status, opaque, cas, body[..elen].to_vec(), body[elen..elen + klen].to_vec(), body[elen + klen..].to_vec())
}

pub struct RealMemcached {
    pub child: Child,
    pub port: u16,
}

impl Drop for RealMemcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn real_memcached() -> Option<RealMemcached> {
    let port = free_port();
    let mut child = Command::new("memcached")
        .args(["-p", &port.to_string(), "-U", "0", "-u", "root", "-l", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_listening(port, &mut child);
    Some(RealMemcached { child, port })
}

/// A real memcached started with `flag FILE` where FILE holds `content`.
pub fn real_memcached_with(flags: &[&str], content: &str) -> Option<RealMemcached> {
    let dir = std::env::temp_dir().join(format!("ferro-mc-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let file = dir.join("authfile");
    std::fs::write(&file, content).ok()?;
    let port = free_port();
    let mut args = vec!["-p".to_string(), port.to_string(), "-U".into(), "0".into(), "-u".into(), "root".into()];
    args.extend(["-l".into(), "127.0.0.1".into()]);
    for f in flags {
        args.push(f.to_string());
        args.push(file.display().to_string());
    }
    let mut child = Command::new("memcached").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
    wait_listening(port, &mut child);
    Some(RealMemcached { child, port })
}

/// Read one text reply line.
pub fn line(r: &mut Raw) -> String {
    s(&r.until(b"\r\n"))
}

/// One `\n`-terminated line; what follows it stays buffered.
pub fn one_line(r: &mut Raw) -> String {
    let mut tmp = [0u8; 65536];
    loop {
        if let Some(i) = r.buf.iter().position(|&c| c == b'\n') {
            let rest = r.buf.split_off(i + 1);
            return s(&std::mem::replace(&mut r.buf, rest));
        }
        let n = r.s.read(&mut tmp).expect("read");
        assert!(n > 0, "closed");
        r.buf.extend_from_slice(&tmp[..n]);
    }
}

pub const KEYS: &[&str] = &["a", "b", "c", "num", "k5"];

/// Values: the counter key `num` only ever holds numbers (and is never appended to), other
/// keys never hold numbers. memcached rewrites an incremented value in place (space padded)
/// unless another reference to the item exists at that moment (e.g. a pending async LRU bump
/// of its maintainer thread), which makes the padding of a counter timing dependent; keeping
/// counters away from append/prepend keeps that nondeterminism out of the comparison.
pub fn rand_value(rng: &mut SmallRng, key: &str) -> String {
    if key == "num" {
        return ["0", "7", "1000", "18446744073709551610"][rng.gen_range(0..4)].to_string();
    }
    match rng.gen_range(0..3) {
        0 => String::new(),
        _ => (0..rng.gen_range(1..20)).map(|_| (b'a' + rng.gen_range(0..26)) as char).collect(),
    }
}
