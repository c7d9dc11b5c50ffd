//! Helpers of the scripting end-to-end tests (tests/scripting*.rs): a raw RESP connection whose
//! replies are their exact bytes, reply text builders, SHA1 of a script. Included with
//! `#[path = "common/scripting.rs"] mod scripting;` (next to `mod common;`).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A raw RESP connection: replies are returned as their exact bytes (lossy UTF-8).
pub struct Raw {
    pub s: TcpStream,
    pub buf: Vec<u8>,
}

pub fn line_end(b: &[u8], p: usize) -> Option<usize> {
    b[p..].windows(2).position(|w| w == b"\r\n").map(|i| p + i)
}

/// Length of the complete reply starting at `p`, if the buffer holds all of it.
pub fn reply_len(b: &[u8], p: usize) -> Option<usize> {
    if p >= b.len() {
        return None;
    }
    let e = line_end(b, p)?;
    let hdr = std::str::from_utf8(&b[p + 1..e]).unwrap_or("");
    let after = e + 2;
    match b[p] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after - p),
        b'$' | b'=' | b'!' => {
            let n: i64 = hdr.parse().ok()?;
            if n < 0 {
                return Some(after - p);
            }
            let end = after + n as usize + 2;
            (end <= b.len()).then_some(end - p)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let mut n: i64 = hdr.parse().ok()?;
            if n < 0 {
                return Some(after - p);
            }
            if b[p] == b'%' || b[p] == b'|' {
                n *= 2;
            }
            let mut q = after;
            for _ in 0..n {
                q += reply_len(b, q)?;
            }
            Some(q - p)
        }
        _ => panic!("bad reply byte {:?}", b[p] as char),
    }
}

impl Raw {
    pub fn new(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { s, buf: Vec::new() }
    }
    pub fn send(&mut self, args: &[&[u8]]) {
        let mut m = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            m.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            m.extend_from_slice(a);
            m.extend_from_slice(b"\r\n");
        }
        self.s.write_all(&m).unwrap();
    }
    pub fn read(&mut self) -> String {
        loop {
            if let Some(n) = reply_len(&self.buf, 0) {
                let r: Vec<u8> = self.buf.drain(..n).collect();
                return String::from_utf8_lossy(&r).into_owned();
            }
            let mut tmp = [0u8; 65536];
            let n = self.s.read(&mut tmp).expect("read reply");
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }
    pub fn cmdb(&mut self, args: &[&[u8]]) -> String {
        self.send(args);
        self.read()
    }
    /// Send a whitespace-separated command line.
    pub fn c(&mut self, line: &str) -> String {
        let a: Vec<&[u8]> = line.split_whitespace().map(|s| s.as_bytes()).collect();
        self.cmdb(&a)
    }
}

pub fn err(s: &str) -> String {
    format!("-{s}\r\n")
}

pub fn int(n: i64) -> String {
    format!(":{n}\r\n")
}

pub fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}

pub fn arr(items: &[String]) -> String {
    format!("*{}\r\n{}", items.len(), items.concat())
}

pub fn bulks(items: &[&str]) -> String {
    arr(&items.iter().map(|s| bulk(s)).collect::<Vec<_>>())
}

pub const NIL: &str = "$-1\r\n";

pub const NIL3: &str = "_\r\n";

pub const EMPTY: &str = "*0\r\n";

pub fn sha1_hex(b: &[u8]) -> String {
    ferrocache_node::scripting::sha1_hex(b)
}
