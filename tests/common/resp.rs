//! Helpers of the RESP end-to-end tests (tests/resp_*.rs): raw transcripts of a connection,
//! the same input or commands compared between ferrocache and redis-server, INFO fields.
//! Included with `#[path = "common/resp.rs"] mod resp;` (next to `mod common;`).
#![allow(dead_code)]

use crate::common::{self, Raw, ServerProc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// helpers

/// Send raw bytes on a fresh connection and collect everything the server answers until it
/// closes the connection or stays silent for `idle`. Returns (bytes, closed).
/// Send `chunks` and collect everything until the connection stays quiet for `idle` (or closes).
pub fn transcript(port: u16, chunks: &[&[u8]], idle: Duration) -> (Vec<u8>, bool) {
    transcript_with_first(port, chunks, idle, idle)
}

/// `transcript`, waiting up to `first` for the first bytes (a reply that is expected should not
/// be missed because a loaded machine was slow to answer).
pub fn transcript_with_first(port: u16, chunks: &[&[u8]], first: Duration, idle: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).ok();
    for c in chunks {
        if s.write_all(c).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    s.set_read_timeout(Some(first)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                s.set_read_timeout(Some(idle)).unwrap();
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\\r\\n")
}

/// The transcript of `chunks` must be the same on ferrocache and redis-server (when present);
/// returns ferrocache's.
pub fn same_transcript(f: &ServerProc, r: Option<&ServerProc>, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
    let idle = Duration::from_millis(300);
    let a = transcript(f.port, chunks, idle);
    if let Some(r) = r {
        let b = transcript(r.port, chunks, idle);
        assert_eq!(
            (show(&a.0), a.1),
            (show(&b.0), b.1),
            "transcript differs (left ferrocache, right redis) for input {:?}",
            chunks.iter().map(|c| show(c)).collect::<Vec<_>>()
        );
    }
    a
}

/// Run the same command lines on one connection to each server and compare every raw reply.
pub fn same_replies(f: &ServerProc, r: Option<&ServerProc>, hello3: bool, cmds: &[Vec<&[u8]>]) {
    let run = |p: &ServerProc| -> Vec<String> {
        let mut c = p.conn();
        if hello3 {
            c.cmd(&["HELLO", "3"]);
        }
        cmds.iter()
            .map(|cmd| {
                c.send_cmd(cmd);
                show(&c.read_raw())
            })
            .collect()
    };
    let a = run(f);
    if let Some(r) = r {
        let b = run(r);
        for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            assert_eq!(
                x,
                y,
                "reply #{} to {:?} (resp3={}) differs: left ferrocache, right redis",
                i,
                cmds[i].iter().map(|s| show(s)).collect::<Vec<_>>(),
                hello3
            );
        }
    }
}

pub fn redis_opt(extra: &[&str]) -> Option<ServerProc> {
    let r = common::redis_server(extra);
    if r.is_none() {
        eprintln!("SKIPPED (comparison part): redis-server is not on PATH");
    }
    r
}

pub fn info_field(c: &mut Raw, section: &str, field: &str) -> String {
    let r = c.cmd(&["INFO", section]);
    let text = r.as_str();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix(&format!("{}:", field)) {
            return v.trim().to_string();
        }
    }
    panic!("INFO {} has no field {}: {}", section, field, text);
}
