//! End-to-end tests of the memcached side: the `memcache` crate (ASCII and binary), raw
//! sockets for error paths and meta flags, binary packets, cross-protocol behaviour with RESP,
//! Auto Discovery, the memcached-only engine, and a differential test against a real
//! `memcached` (skipped when it is not on PATH).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "port {port} never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Node {
    child: Child,
    port: u16,
    mc: u16,
}

impl Node {
    fn start(extra: &[&str]) -> Node {
        let port = free_port();
        let mc = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
            .args(["server", "--port", &port.to_string(), "--memcached-port", &mc.to_string(), "--save", ""])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(mc);
        Node { child, port, mc }
    }
    fn redis(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap().get_connection().unwrap()
    }
    fn raw(&self) -> Raw {
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
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_nodelay(true).unwrap();
        Raw { s, buf: Vec::new() }
    }
    fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }
    /// Read until the buffered input ends with `end`; returns everything read.
    fn until(&mut self, end: &[u8]) -> Vec<u8> {
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
    fn call(&mut self, req: &[u8]) -> Vec<u8> {
        let mut r = req.to_vec();
        r.extend_from_slice(b"mn\r\n");
        self.send(&r);
        let mut out = self.until(b"MN\r\n");
        out.truncate(out.len() - 4);
        out
    }
    fn exact(&mut self, n: usize) -> Vec<u8> {
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
    fn closed(&mut self) -> bool {
        let mut tmp = [0u8; 1024];
        matches!(self.s.read(&mut tmp), Ok(0))
    }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The CAS of the first `VALUE` line of a gets reply.
fn cas_of(reply: &[u8]) -> u64 {
    let line = s(reply);
    line.lines().next().unwrap().split(' ').nth(4).unwrap().parse().unwrap()
}

// ------------------------------------------------------------------ memcache crate

fn crate_suite(url: &str, binary: bool) {
    let c = memcache::Client::connect(url).unwrap();
    c.flush().unwrap();
    c.set("foo", "bar", 0).unwrap();
    assert_eq!(c.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    assert_eq!(c.get::<String>("missing").unwrap(), None);
    // (the crate reports NOT_STORED as an error in binary mode and as Ok in ASCII mode)
    let _ = c.add("foo", "x", 0);
    assert_eq!(c.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    c.add("new", "n", 0).unwrap();
    c.replace("new", "n2", 0).unwrap();
    let _ = c.replace("nope", "x", 0);
    assert_eq!(c.get::<String>("nope").unwrap(), None);
    assert_eq!(c.get::<String>("new").unwrap().as_deref(), Some("n2"));
    c.append("foo", "!").unwrap();
    c.prepend("foo", "<").unwrap();
    assert_eq!(c.get::<String>("foo").unwrap().as_deref(), Some("<bar!"));
    c.set("n", 10u64, 0).unwrap();
    assert_eq!(c.increment("n", 5).unwrap(), 15);
    assert_eq!(c.decrement("n", 20).unwrap(), 0);
    assert!(c.increment("foo", 1).is_err());
    assert!(c.delete("foo").unwrap());
    assert!(!c.delete("foo").unwrap());
    assert!(c.touch("n", 100).unwrap());
    assert!(!c.touch("foo", 100).unwrap());
    // flags round trip
    c.set("fl", &b"v"[..], 0).unwrap();
    let (v, f): (Vec<u8>, u32) = c.get("fl").unwrap().unwrap();
    assert_eq!((v.as_slice(), f), (&b"v"[..], 0));
    // gets + cas
    let m: std::collections::HashMap<String, (Vec<u8>, u32, Option<u64>)> = c.gets(&["fl", "new"]).unwrap();
    assert_eq!(m.len(), 2);
    let cas = m["fl"].2.unwrap();
    assert!(c.cas("fl", "v2", 0, cas).unwrap());
    assert!(!c.cas("fl", "v3", 0, cas).unwrap());
    assert_eq!(c.get::<String>("fl").unwrap().as_deref(), Some("v2"));
    // big value
    let big = "x".repeat(500_000);
    c.set("big", big.as_str(), 0).unwrap();
    assert_eq!(c.get::<String>("big").unwrap().unwrap().len(), 500_000);
    // expiry
    c.set("ttl", "t", 1).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(c.get::<String>("ttl").unwrap(), None);
    assert!(!c.version().unwrap().is_empty());
    let stats = c.stats().unwrap();
    let st = &stats[0].1;
    // memcache 0.17's ASCII stats parser stops at the first line (`response != END` is
    // inverted upstream), so only the binary client sees the stat names.
    let names: &[&str] = if binary {
        &["pid", "uptime", "curr_connections", "cmd_get", "get_hits", "curr_items", "threads", "limit_maxbytes"]
    } else {
        &[]
    };
    for k in names {
        assert!(st.contains_key(*k), "missing stat {k}");
    }
    c.flush().unwrap();
    assert_eq!(c.get::<String>("new").unwrap(), None);
}

#[test]
fn memcache_crate_ascii() {
    let n = Node::start(&[]);
    crate_suite(&format!("memcache://127.0.0.1:{}?protocol=ascii&timeout=5", n.mc), false);
}

#[test]
fn memcache_crate_binary() {
    let n = Node::start(&[]);
    crate_suite(&format!("memcache://127.0.0.1:{}?timeout=5", n.mc), true);
}

// ------------------------------------------------------------------ raw text protocol

#[test]
fn text_error_paths() {
    let n = Node::start(&["--memcached-item-size-max", "2kb"]);
    let mut r = n.raw();
    assert_eq!(s(&r.call(b"bogus\r\n")), "ERROR\r\n");
    assert_eq!(s(&r.call(b"set k 0 0 3\r\nabcd\r\n")), "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    assert_eq!(s(&r.call(b"set k 0 0 -1\r\n")), "CLIENT_ERROR bad command line format\r\n");
    assert_eq!(s(&r.call(b"set k 0 0 1 noreply\r\nx\r\n")), "");
    assert_eq!(s(&r.call(b"get k\r\n")), "VALUE k 0 1\r\nx\r\nEND\r\n");
    // too large: answered before the data, which is swallowed; the old item is unlinked
    let mut big = b"set k 0 0 3000\r\n".to_vec();
    big.extend_from_slice(&[b'z'; 3000]);
    big.extend_from_slice(b"\r\n");
    assert_eq!(s(&r.call(&big)), "SERVER_ERROR object too large for cache\r\n");
    assert_eq!(s(&r.call(b"get k\r\n")), "END\r\n");
    let long = "k".repeat(251);
    assert_eq!(s(&r.call(format!("get {long}\r\n").as_bytes())), "CLIENT_ERROR bad command line format\r\n");
    assert_eq!(
        s(&r.call(b"set n 0 0 2\r\nab\r\nincr n 1\r\n")),
        "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
    );
    assert_eq!(s(&r.call(b"incr n abc\r\n")), "CLIENT_ERROR invalid numeric delta argument\r\n");
    assert_eq!(
        s(&r.call(b"delete n 5\r\n")),
        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
    );
    assert_eq!(s(&r.call(b"touch n abc\r\n")), "CLIENT_ERROR invalid exptime argument\r\n");
    assert_eq!(
        s(&r.call(b"set c 0 0 2\r\n10\r\ndecr c 3\r\nget c\r\n")),
        "STORED\r\n7\r\nVALUE c 0 2\r\n7 \r\nEND\r\n"
    );
    assert_eq!(s(&r.call(b"set w 0 0 20\r\n18446744073709551615\r\nincr w 2\r\n")), "STORED\r\n1\r\n");
    assert_eq!(s(&r.call(b"set e 0 -1 1\r\nx\r\nget e\r\n")), "STORED\r\nEND\r\n");
    assert_eq!(s(&r.call(b"shutdown\r\n")), "ERROR: shutdown not enabled\r\n");
    assert_eq!(s(&r.call(b"verbosity 1\r\nversion\r\n")), "OK\r\nVERSION 1.6.18\r\n");
    assert!(s(&r.call(b"stats\r\n")).contains("STAT curr_items "));
    assert!(s(&r.call(b"stats settings\r\n")).contains("STAT item_size_max 2048\r\n"));
    assert_eq!(s(&r.call(b"stats nope\r\n")), "ERROR\r\n");
    r.send(b"quit\r\n");
    assert!(r.closed());
    // a line longer than 2048 bytes without a newline closes silently
    let mut r = n.raw();
    r.send(&[b'a'; 3000]);
    assert!(r.closed());
}

#[test]
fn pipelined_batch_and_flush_delay() {
    let n = Node::start(&[]);
    let mut r = n.raw();
    let mut req = Vec::new();
    for i in 0..200 {
        req.extend_from_slice(format!("set k{i} {i} 0 {}\r\nv{i}\r\n", format!("v{i}").len()).as_bytes());
    }
    req.extend_from_slice(b"get k0 k199\r\n");
    let out = s(&r.call(&req));
    assert_eq!(out.matches("STORED\r\n").count(), 200);
    assert!(out.ends_with("VALUE k0 0 2\r\nv0\r\nVALUE k199 199 4\r\nv199\r\nEND\r\n"), "{out}");
    assert_eq!(s(&r.call(b"flush_all 2\r\nget k1\r\n")), "OK\r\nVALUE k1 1 2\r\nv1\r\nEND\r\n");
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(s(&r.call(b"get k1\r\n")), "END\r\n");
}

/// `flush_all <exptime>` as memcached 1.6 computes it (`process_flush_all_command`,
/// `realtime()`): negative flushes now, an absolute time at or before the process start (or a
/// value that wraps to one, like 99999999999) is a no-op that replaces a pending delayed flush.
/// The same script runs against a real memcached when it is installed.
#[test]
fn flush_all_exptime_like_memcached() {
    fn script(port: u16) -> Vec<String> {
        let mut r = Raw::connect(port);
        let mut out = Vec::new();
        let mut step = |r: &mut Raw, req: &[u8]| out.push(s(&r.call(req)));
        step(&mut r, b"set a 0 0 1\r\na\r\nflush_all 99999999999\r\nget a\r\n");
        step(&mut r, b"flush_all -1\r\nget a\r\n");
        step(&mut r, b"set a 0 0 1\r\na\r\nflush_all 2592001\r\nget a\r\n");
        step(&mut r, b"flush_all 1\r\nget a\r\n");
        step(&mut r, b"set b 0 0 1\r\nb\r\nflush_all 3\r\nflush_all 99999999999\r\nget b\r\n");
        std::thread::sleep(Duration::from_millis(3500));
        step(&mut r, b"get b\r\n");
        step(&mut r, b"flush_all 4294967297\r\nget b\r\n");
        step(&mut r, b"flush_all 9999999999999999999999\r\nflush_all x\r\n");
        out
    }
    let n = Node::start(&[]);
    let ours = script(n.mc);
    let want = [
        "STORED\r\nOK\r\nVALUE a 0 1\r\na\r\nEND\r\n",
        "OK\r\nEND\r\n",
        "STORED\r\nOK\r\nVALUE a 0 1\r\na\r\nEND\r\n",
        "OK\r\nEND\r\n",
        "STORED\r\nOK\r\nOK\r\nVALUE b 0 1\r\nb\r\nEND\r\n",
        "VALUE b 0 1\r\nb\r\nEND\r\n",
        "OK\r\nEND\r\n",
        "CLIENT_ERROR invalid exptime argument\r\nCLIENT_ERROR invalid exptime argument\r\n",
    ];
    assert_eq!(ours, want);
    match real_memcached() {
        Some(m) => assert_eq!(script(m.port), want),
        None => eprintln!("SKIPPED: memcached not installed"),
    }
}

// ------------------------------------------------------------------ meta

#[test]
fn meta_flags() {
    let n = Node::start(&[]);
    let mut r = n.raw();
    let hd = s(&r.call(b"ms m 3 T100 F7 c\r\nabc\r\n"));
    assert!(hd.starts_with("HD c"), "{hd}");
    let cas: u64 = hd[4..hd.len() - 2].parse().unwrap();
    assert_eq!(s(&r.call(b"mg m v f t s k h O123 q\r\n")), "VA 3 f7 t100 s3 km h0 O123\r\nabc\r\n");
    assert_eq!(s(&r.call(b"mg m h c\r\n")), format!("HD h1 c{cas}\r\n"));
    assert_eq!(s(&r.call(b"mg miss q\r\nmg miss k O5\r\n")), "EN kmiss O5\r\n");
    // vivify on miss: first client wins, the next one sees Z
    let v = s(&r.call(b"mg viv N30 v t\r\n"));
    assert_eq!(v, "VA 0 t30 W\r\n\r\n");
    assert_eq!(s(&r.call(b"mg viv v\r\n")), "VA 0 Z\r\n\r\n");
    // invalidate: stale + win for the next fetch
    assert_eq!(s(&r.call(b"md m I T30\r\n")), "HD\r\n");
    assert_eq!(s(&r.call(b"mg m v t\r\n")), "VA 3 t30 X W\r\nabc\r\n");
    assert_eq!(s(&r.call(b"mg m v\r\n")), "VA 3 Z X\r\nabc\r\n");
    // a lower CAS with I stores a stale value
    assert_eq!(s(&r.call(b"ms m 2 I C1\r\nxy\r\nmg m v\r\n")), "HD\r\nVA 2 Z X\r\nxy\r\n");
    // recache: TTL below R wins once
    assert_eq!(
        s(&r.call(b"ms rc 1 T10\r\nx\r\nmg rc R30 v\r\nmg rc R30 v\r\n")),
        "HD\r\nVA 1 W\r\nx\r\nVA 1 Z\r\nx\r\n"
    );
    // arithmetic
    assert_eq!(s(&r.call(b"ma cnt\r\n")), "NF\r\n");
    assert_eq!(s(&r.call(b"ma cnt N0 J13 v\r\n")), "VA 2\r\n13\r\n");
    assert_eq!(s(&r.call(b"ma cnt v MD D20\r\n")), "VA 1\r\n0\r\n");
    assert_eq!(s(&r.call(b"ma cnt q\r\nma m\r\n")), "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    // ms modes
    assert_eq!(
        s(&r.call(b"ms m 3 MA\r\nzzz\r\nms nope 1 MR\r\nx\r\nms nope 1 ME q\r\nx\r\nms nope 1 ME\r\nx\r\n")),
        "HD\r\nNS\r\nNS\r\n"
    );
    assert_eq!(s(&r.call(b"md nope q\r\nmd nope2\r\nme nope2\r\n")), "NF\r\nEN\r\n");
    assert_eq!(s(&r.call(b"ms cm 1 C999\r\nx\r\n")), "NF\r\n");
    let me = s(&r.call(b"ms mex 1\r\nx\r\nme mex\r\n"));
    assert!(me.starts_with("HD\r\nME mex exp=-1 la=") && me.ends_with(" fetch=no cls=1 size=63\r\n"), "{me}");
    // base64 keys
    assert_eq!(
        s(&r.call(b"ms Zm9v 1 b k\r\nx\r\nmg foo v k\r\nmg Zm9v b k v\r\n")),
        "HD kZm9v b\r\nVA 1 kZm9v b\r\nx\r\nVA 1 kZm9v b\r\nx\r\n"
    );
    assert_eq!(s(&r.call(b"mg k Z\r\nmg k v v\r\n")), "CLIENT_ERROR invalid flag\r\nCLIENT_ERROR duplicate flag\r\n");
}

// ------------------------------------------------------------------ binary

fn bin_req(op: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
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
type BinResp = (u8, u16, u32, u64, Vec<u8>, Vec<u8>, Vec<u8>);

fn bin_read(r: &mut Raw) -> BinResp {
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

#[test]
fn binary_round_trips() {
    let n = Node::start(&[]);
    let mut r = n.raw();
    let fl = [0, 0, 0, 9, 0, 0, 0, 0];
    r.send(&bin_req(0x01, b"a", &fl, b"hello", 1, 0));
    let set = bin_read(&mut r);
    assert_eq!((set.0, set.1, set.2), (0x01, 0, 1));
    assert!(set.3 != 0);
    r.send(&bin_req(0x0c, b"a", &[], &[], 2, 0));
    let g = bin_read(&mut r);
    assert_eq!(
        (g.1, g.3, g.4.as_slice(), g.5.as_slice(), g.6.as_slice()),
        (0, set.3, &[0, 0, 0, 9][..], &b"a"[..], &b"hello"[..])
    );
    // CAS mismatch, then match
    r.send(&bin_req(0x01, b"a", &fl, b"x", 3, set.3 + 1000));
    assert_eq!(bin_read(&mut r).1, 2);
    r.send(&bin_req(0x01, b"a", &fl, b"x", 4, set.3));
    assert_eq!(bin_read(&mut r).1, 0);
    // quiet get miss is silent, noop flushes
    r.send(&bin_req(0x09, b"zz", &[], &[], 5, 0));
    r.send(&bin_req(0x0d, b"a", &[], &[], 6, 0));
    r.send(&bin_req(0x0a, b"", &[], &[], 7, 0));
    let hit = bin_read(&mut r);
    assert_eq!((hit.0, hit.2, hit.6.as_slice()), (0x0d, 6, &b"x"[..]));
    assert_eq!(bin_read(&mut r).0, 0x0a);
    // incr with initial, decr floor
    let ext = |d: u64, i: u64, e: u32| {
        let mut v = d.to_be_bytes().to_vec();
        v.extend_from_slice(&i.to_be_bytes());
        v.extend_from_slice(&e.to_be_bytes());
        v
    };
    r.send(&bin_req(0x05, b"c", &ext(5, 100, 0), &[], 8, 0));
    assert_eq!(bin_read(&mut r).6, 100u64.to_be_bytes());
    r.send(&bin_req(0x05, b"c", &ext(5, 100, 0), &[], 9, 0));
    assert_eq!(bin_read(&mut r).6, 105u64.to_be_bytes());
    r.send(&bin_req(0x06, b"c", &ext(500, 0, 0), &[], 10, 0));
    assert_eq!(bin_read(&mut r).6, 0u64.to_be_bytes());
    r.send(&bin_req(0x05, b"d", &ext(1, 0, 0xffff_ffff), &[], 11, 0));
    let miss = bin_read(&mut r);
    assert_eq!((miss.1, miss.6.as_slice()), (1, &b"Not found"[..]));
    r.send(&bin_req(0x05, b"a", &ext(1, 0, 0), &[], 12, 0));
    assert_eq!(bin_read(&mut r).1, 6);
    // append/prepend, delete, touch/gat, version, unknown opcode, stats
    r.send(&bin_req(0x0e, b"a", &[], b"!", 13, 0));
    r.send(&bin_req(0x0f, b"a", &[], b"<", 14, 0));
    r.send(&bin_req(0x00, b"a", &[], &[], 15, 0));
    bin_read(&mut r);
    bin_read(&mut r);
    assert_eq!(bin_read(&mut r).6, b"<x!");
    r.send(&bin_req(0x1d, b"a", &100u32.to_be_bytes(), &[], 16, 0));
    assert_eq!(bin_read(&mut r).6, b"<x!");
    r.send(&bin_req(0x04, b"a", &[], &[], 17, 0));
    assert_eq!(bin_read(&mut r).1, 0);
    r.send(&bin_req(0x04, b"a", &[], &[], 18, 0));
    assert_eq!(bin_read(&mut r).1, 1);
    r.send(&bin_req(0x0b, b"", &[], &[], 19, 0));
    assert_eq!(bin_read(&mut r).6, b"1.6.18");
    r.send(&bin_req(0x30, b"", &[], &[], 20, 0));
    assert_eq!(bin_read(&mut r).1, 0x81);
    r.send(&bin_req(0x10, b"", &[], &[], 21, 0));
    let mut names = Vec::new();
    loop {
        let p = bin_read(&mut r);
        if p.5.is_empty() {
            break;
        }
        names.push(s(&p.5));
    }
    assert!(names.contains(&"curr_items".to_string()) && names.contains(&"cmd_get".to_string()));
    r.send(&bin_req(0x07, b"", &[], &[], 22, 0));
    assert_eq!(bin_read(&mut r).0, 0x07);
    assert!(r.closed());
}

// ------------------------------------------------------------------ cross protocol

#[test]
fn cross_protocol() {
    use redis::Commands;
    let n = Node::start(&[]);
    let mut rc = n.redis();
    let mut r = n.raw();
    let _: () = rc.set("rk", "from-redis").unwrap();
    let g = r.call(b"gets rk\r\n");
    assert!(s(&g).starts_with("VALUE rk 0 10 "), "{}", s(&g));
    let cas = cas_of(&g);
    // a stable CAS while nothing changes
    assert_eq!(cas_of(&r.call(b"gets rk\r\n")), cas);
    // a Redis write (same value) invalidates the CAS
    let _: () = rc.set("rk", "from-redis").unwrap();
    assert_eq!(s(&r.call(format!("cas rk 0 0 1 {cas}\r\nx\r\n").as_bytes())), "EXISTS\r\n");
    let cas = cas_of(&r.call(b"gets rk\r\n"));
    assert_eq!(s(&r.call(format!("cas rk 3 0 1 {cas}\r\nx\r\n").as_bytes())), "STORED\r\n");
    // Redis APPEND in place also changes it
    let cas = cas_of(&r.call(b"gets rk\r\n"));
    let _: i64 = rc.append("rk", "y").unwrap();
    assert_eq!(s(&r.call(format!("cas rk 0 0 1 {cas}\r\nz\r\n").as_bytes())), "EXISTS\r\n");
    // memcached writes are Redis strings with TTLs
    assert_eq!(
        s(&r.call(b"set mk 5 100 5\r\nhello\r\nset cnt 0 0 1\r\n7\r\nincr cnt 3\r\n")),
        "STORED\r\nSTORED\r\n10\r\n"
    );
    let v: String = rc.get("mk").unwrap();
    assert_eq!(v, "hello");
    let ttl: i64 = rc.ttl("mk").unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    let t: String = redis::cmd("TYPE").arg("mk").query(&mut rc).unwrap();
    assert_eq!(t, "string");
    let c: i64 = rc.incr("cnt", 1).unwrap();
    assert_eq!(c, 11);
    assert_eq!(s(&r.call(b"get cnt\r\n")), "VALUE cnt 0 2\r\n11\r\nEND\r\n");
    // absolute expiry (beyond 30 days) and relative
    let abs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 500;
    r.call(format!("set ab 0 {abs} 1\r\nx\r\n").as_bytes());
    let ttl: i64 = rc.ttl("ab").unwrap();
    assert!((498..=500).contains(&ttl), "{ttl}");
    // memcached delete and Redis DEL
    let _: () = rc.del("mk").unwrap();
    assert_eq!(s(&r.call(b"get mk\r\n")), "END\r\n");
    r.call(b"delete cnt\r\n");
    let e: bool = rc.exists("cnt").unwrap();
    assert!(!e);
    // WATCH sees memcached writes
    let mut w = n.redis();
    let _: () = redis::cmd("WATCH").arg("wk").query(&mut w).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut w).unwrap();
    let _: () = redis::cmd("SET").arg("wk").arg("redis").query(&mut w).unwrap();
    r.call(b"set wk 0 0 2\r\nmc\r\n");
    let res: Option<Vec<String>> = redis::cmd("EXEC").query(&mut w).unwrap();
    assert!(res.is_none(), "EXEC should abort after a memcached write");
    // other Redis types are invisible to memcached reads; add refuses, set replaces
    let _: () = redis::cmd("HSET").arg("lst").arg("f").arg("a").query(&mut rc).unwrap();
    assert_eq!(
        s(&r.call(b"get lst\r\nadd lst 0 0 1\r\nx\r\nset lst 0 0 1\r\ny\r\nget lst\r\n")),
        "END\r\nNOT_STORED\r\nSTORED\r\nVALUE lst 0 1\r\ny\r\nEND\r\n"
    );
    // keyspace is db 0 only
    let _: () = redis::cmd("SELECT").arg(1).query(&mut rc).unwrap();
    let _: () = rc.set("db1", "x").unwrap();
    assert_eq!(s(&r.call(b"get db1\r\n")), "END\r\n");
}

// ------------------------------------------------------------------ auto discovery

#[test]
fn auto_discovery() {
    let n = Node::start(&[
        "--memcached-cluster-nodes",
        "host2|10.0.0.2|11211 host1|10.0.0.1|11211",
        "--memcached-cluster-version",
        "12",
    ]);
    let mut r = n.raw();
    let body = "12\nhost1|10.0.0.1|11211 host2|10.0.0.2|11211\n";
    assert_eq!(s(&r.call(b"config get cluster\r\n")), format!("CONFIG cluster 0 {}\r\n{body}\r\nEND\r\n", body.len()));
    assert_eq!(
        s(&r.call(b"get AmazonElastiCache:cluster\r\n")),
        format!("VALUE AmazonElastiCache:cluster 0 {}\r\n{body}\r\nEND\r\n", body.len())
    );
    let mut rc = n.redis();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("memcached-cluster-nodes")
        .arg("c|10.0.0.3|11211 a|10.0.0.9|11212")
        .query(&mut rc)
        .unwrap();
    let body = "13\na|10.0.0.9|11212 c|10.0.0.3|11211\n";
    assert_eq!(s(&r.call(b"config get cluster\r\n")), format!("CONFIG cluster 0 {}\r\n{body}\r\nEND\r\n", body.len()));
    // golden bytes (ElastiCache's documented shape)
    let _: () = redis::cmd("CONFIG").arg("SET").arg("memcached-cluster-version").arg("1").query(&mut rc).unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("memcached-cluster-nodes")
        .arg("myCluster.0001.cache.amazonaws.com|10.82.235.120|11211")
        .query(&mut rc)
        .unwrap();
    assert_eq!(
        r.call(b"config get cluster\r\n"),
        b"CONFIG cluster 0 57\r\n2\nmyCluster.0001.cache.amazonaws.com|10.82.235.120|11211\n\r\nEND\r\n".to_vec()
    );
}

// ------------------------------------------------------------------ memcached-only engine

#[test]
fn memcached_engine_evicts_instead_of_failing() {
    let n = Node::start(&["--engine", "memcached", "--maxmemory", "4mb"]);
    assert!(TcpStream::connect(("127.0.0.1", n.port)).is_err(), "no RESP listener in memcached mode");
    let mut r = n.raw();
    let val = vec![b'v'; 10_000];
    let mut req = Vec::new();
    for i in 0..2000 {
        req.extend_from_slice(format!("set key{i} 0 0 {}\r\n", val.len()).as_bytes());
        req.extend_from_slice(&val);
        req.extend_from_slice(b"\r\n");
    }
    let out = s(&r.call(&req));
    assert_eq!(out.matches("STORED\r\n").count(), 2000, "{}", &out[..out.len().min(200)]);
    let st = s(&r.call(b"stats\r\n"));
    let get =
        |k: &str| -> u64 { st.lines().find_map(|l| l.strip_prefix(&format!("STAT {k} "))).unwrap().parse().unwrap() };
    assert!(get("evictions") > 0);
    assert!(get("curr_items") < 2000);
    assert_eq!(get("limit_maxbytes"), 4 << 20);
    assert!(s(&r.call(b"stats settings\r\n")).contains("STAT maxmemory_policy allkeys-lru\r\n"));
}

#[test]
fn redis_engine_noeviction_refuses_sets() {
    let n = Node::start(&["--maxmemory", "1mb"]);
    let mut r = n.raw();
    let val = vec![b'v'; 100_000];
    let mut req = Vec::new();
    for i in 0..40 {
        req.extend_from_slice(format!("set key{i} 0 0 {}\r\n", val.len()).as_bytes());
        req.extend_from_slice(&val);
        req.extend_from_slice(b"\r\n");
    }
    let out = s(&r.call(&req));
    assert!(out.contains("SERVER_ERROR out of memory storing object\r\n"), "{out}");
}

#[test]
fn max_connections() {
    let n = Node::start(&["--memcached-max-connections", "2"]);
    // The readiness probe's connection may not be counted out yet: retry until two fit.
    let admitted = |n: &Node| -> Raw {
        for _ in 0..100 {
            let mut r = n.raw();
            r.send(b"version\r\n");
            let mut tmp = [0u8; 256];
            if let Ok(k) = r.s.read(&mut tmp) {
                if tmp[..k].starts_with(b"VERSION") {
                    return r;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no connection admitted");
    };
    let _a = admitted(&n);
    let _b = admitted(&n);
    let mut c = n.raw();
    assert_eq!(s(&c.until(b"\r\n")), "ERROR Too many open connections\r\n");
}

// ------------------------------------------------------------------ differential

struct RealMemcached {
    child: Child,
    port: u16,
}

impl Drop for RealMemcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn real_memcached() -> Option<RealMemcached> {
    let port = free_port();
    let child = Command::new("memcached")
        .args(["-p", &port.to_string(), "-U", "0", "-u", "root", "-l", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_port(port);
    Some(RealMemcached { child, port })
}

/// Replace CAS uniques (and positive TTLs) by placeholders so replies of two servers compare.
/// A counter's in-place padding (`"999 "` vs a fresh `"999"`) depends on memcached's LRU
/// maintainer timing (see `rand_value`), so numeric values compare without it.
fn normalize(reply: &[u8]) -> String {
    let text = s(reply);
    let lines: Vec<&str> = text.split_inclusive("\r\n").collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let body = line.trim_end_matches("\r\n");
        let toks: Vec<&str> = body.split(' ').collect();
        let has_data = toks[0] == "VALUE" || toks[0] == "VA";
        let data = if has_data { lines.get(i + 1).map(|d| d.trim_end_matches("\r\n")) } else { None };
        let numeric = data.is_some_and(|d| {
            let t = d.trim_end_matches(' ');
            !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
        });
        let norm: Vec<String> = toks
            .iter()
            .enumerate()
            .map(|(j, t)| match toks[0] {
                "VALUE" if j == 4 => "#".to_string(),
                "VALUE" if j == 3 && numeric => "n".to_string(),
                "VA" if j == 1 && numeric => "n".to_string(),
                "VA" | "HD" | "EN" | "NF" | "NS" | "EX"
                    if j > 0
                        && (t.starts_with('c') || t.starts_with('t') || t.starts_with('s'))
                        && t.len() > 1
                        && t[1..].chars().all(|c| c.is_ascii_digit()) =>
                {
                    if t.starts_with('s') && !numeric {
                        t.to_string()
                    } else {
                        format!("{}#", &t[..1])
                    }
                }
                _ => t.to_string(),
            })
            .collect();
        out.push_str(&norm.join(" "));
        out.push_str(&line[body.len()..]);
        if let Some(d) = data {
            out.push_str(if numeric { d.trim_end_matches(' ') } else { d });
            out.push_str("\r\n");
            i += 1;
        }
        i += 1;
    }
    out
}

/// Learn CAS uniques from a reply: `VALUE k f n cas` and `... c<cas>` after `k<key>`.
fn learn_cas(reply: &[u8], key_hint: &str, cas: &mut std::collections::HashMap<String, u64>) {
    for line in s(reply).lines() {
        let toks: Vec<&str> = line.split(' ').collect();
        if toks[0] == "VALUE" && toks.len() == 5 {
            if let Ok(c) = toks[4].parse() {
                cas.insert(toks[1].to_string(), c);
            }
        } else if matches!(toks[0], "VA" | "HD") {
            for t in &toks[1..] {
                if let Some(c) = t.strip_prefix('c').and_then(|x| x.parse().ok()) {
                    cas.insert(key_hint.to_string(), c);
                }
            }
        }
    }
}

const KEYS: &[&str] = &["a", "b", "c", "num", "k5"];

/// Values: the counter key `num` only ever holds numbers (and is never appended to), other
/// keys never hold numbers. memcached rewrites an incremented value in place (space padded)
/// unless another reference to the item exists at that moment (e.g. a pending async LRU bump
/// of its maintainer thread), which makes the padding of a counter timing dependent; keeping
/// counters away from append/prepend keeps that nondeterminism out of the comparison.
fn rand_value(rng: &mut SmallRng, key: &str) -> String {
    if key == "num" {
        return ["0", "7", "1000", "18446744073709551610"][rng.gen_range(0..4)].to_string();
    }
    match rng.gen_range(0..3) {
        0 => String::new(),
        _ => (0..rng.gen_range(1..20)).map(|_| (b'a' + rng.gen_range(0..26)) as char).collect(),
    }
}

/// One random request; `cas_for` resolves the CAS to send (per server).
enum Gen {
    Plain(String),
    /// A request with `{CAS}` to substitute with the server's known CAS for the key.
    WithCas(String, String),
}

fn gen_cmd(rng: &mut SmallRng) -> (Gen, String) {
    let key = KEYS[rng.gen_range(0..KEYS.len())].to_string();
    let nr = if rng.gen_bool(0.15) { " noreply" } else { "" };
    let ttl = [0, 0, 0, 1000, -1, 100_000][rng.gen_range(0..6)];
    let flags = [0u32, 1, 42, 4294967295][rng.gen_range(0..4)];
    let v = rand_value(rng, &key);
    let concat_key = if key == "num" { "a" } else { key.as_str() };
    let cmd = match rng.gen_range(0..24) {
        0..=2 => format!("set {key} {flags} {ttl} {}{nr}\r\n{v}\r\n", v.len()),
        3 => format!("add {key} {flags} {ttl} {}{nr}\r\n{v}\r\n", v.len()),
        4 => format!("replace {key} {flags} {ttl} {}{nr}\r\n{v}\r\n", v.len()),
        5 => format!("append {concat_key} {flags} {ttl} {}{nr}\r\n{v}\r\n", v.len()),
        6 => format!("prepend {concat_key} {flags} {ttl} {}{nr}\r\n{v}\r\n", v.len()),
        7 => {
            return (
                Gen::WithCas(format!("cas {key} {flags} {ttl} {} {{CAS}}{nr}\r\n{v}\r\n", v.len()), key.clone()),
                key,
            );
        }
        8 => format!("get {key} {}\r\n", KEYS[rng.gen_range(0..KEYS.len())]),
        9 => format!("gets {key}\r\n"),
        10 => format!("gat {} {key}\r\n", [0, 1000, -1][rng.gen_range(0..3)]),
        11 => format!("gats 1000 {key}\r\n"),
        12 => format!("touch {key} {}{nr}\r\n", [0, 1000, -1][rng.gen_range(0..3)]),
        13 => format!("delete {key}{nr}\r\n"),
        14 => format!("incr {key} {}{nr}\r\n", [1u64, 7, 18446744073709551615][rng.gen_range(0..3)]),
        15 => format!("decr {key} {}{nr}\r\n", [1u64, 7, 1000][rng.gen_range(0..3)]),
        16 => {
            let all: &[&str] = &["v", "f", "s", "k", "c", "q", "h", "O99", "T1000", "N1000", "R30", "u", "t"];
            let fl: Vec<&str> = all.iter().copied().filter(|_| rng.gen_bool(0.3)).collect();
            format!("mg {key} {}\r\n", fl.join(" "))
        }
        17 => {
            let all: &[&str] = if key == "num" {
                &["F5", "T1000", "c", "q", "k", "ME", "MR", "O1"]
            } else {
                &["F5", "T1000", "c", "q", "k", "MA", "MP", "ME", "MR", "O1"]
            };
            let fl: Vec<&str> = all.iter().copied().filter(|_| rng.gen_bool(0.25)).collect();
            let mut f = Vec::new();
            let mut mode = false;
            for x in fl {
                if x.starts_with('M') {
                    if mode {
                        continue;
                    }
                    mode = true;
                }
                f.push(x);
            }
            if rng.gen_bool(0.3) {
                let inv = if rng.gen_bool(0.5) { " I" } else { "" };
                return (
                    Gen::WithCas(format!("ms {key} {} {} C{{CAS}}{inv}\r\n{v}\r\n", v.len(), f.join(" ")), key.clone()),
                    key,
                );
            }
            format!("ms {key} {} {}\r\n{v}\r\n", v.len(), f.join(" "))
        }
        18 => {
            let all = ["q", "k", "O7"];
            let fl: Vec<&str> = all.iter().copied().filter(|_| rng.gen_bool(0.3)).collect();
            if rng.gen_bool(0.3) {
                return (Gen::WithCas(format!("md {key} C{{CAS}} {}\r\n", fl.join(" ")), key.clone()), key);
            }
            let inv = if rng.gen_bool(0.3) { " I T1000" } else { "" };
            format!("md {key} {}{inv}\r\n", fl.join(" "))
        }
        19 => {
            let all: &[&str] = if key == "num" {
                &["N0", "J10", "D3", "MD", "q", "v", "c", "t", "k"]
            } else {
                &["D3", "MD", "q", "v", "c", "t", "k"]
            };
            let fl: Vec<&str> = all.iter().copied().filter(|_| rng.gen_bool(0.3)).collect();
            format!("ma {key} {}\r\n", fl.join(" "))
        }
        20 => ["flush_all\r\n", "flush_all 0\r\n", "flush_all noreply\r\n", "verbosity 1\r\n"][rng.gen_range(0..4)]
            .to_string(),
        21 => ["bogus\r\n", "set x 0 0 2\r\nabc\r\n", "get\r\n", "incr a x\r\n", "mg\r\n", "ms a\r\n", "md a Z\r\n"]
            [rng.gen_range(0..7)]
        .to_string(),
        22 => format!("me {key}\r\n"),
        _ => format!("mg {key} v c f k\r\n"),
    };
    (Gen::Plain(cmd), key)
}

#[test]
fn differential_against_real_memcached() {
    let Some(real) = real_memcached() else {
        println!("SKIPPED: memcached not on PATH");
        return;
    };
    let n = Node::start(&[]);
    let mut ours = n.raw();
    let mut theirs = Raw::connect(real.port);
    let mut cas_ours = std::collections::HashMap::new();
    let mut cas_theirs = std::collections::HashMap::new();
    let mut compared = 0;
    for seed in 0..60u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        ours.call(b"flush_all\r\n");
        theirs.call(b"flush_all\r\n");
        cas_ours.clear();
        cas_theirs.clear();
        let mut history: Vec<String> = Vec::new();
        for step in 0..400 {
            let (g, key) = gen_cmd(&mut rng);
            let (a, b) = match &g {
                Gen::Plain(c) => (c.clone(), c.clone()),
                Gen::WithCas(c, k) => {
                    let wrong = rng.gen_bool(0.2);
                    let pick = |m: &std::collections::HashMap<String, u64>| {
                        if wrong {
                            "1".to_string()
                        } else {
                            m.get(k).copied().unwrap_or(999_999).to_string()
                        }
                    };
                    (c.replace("{CAS}", &pick(&cas_ours)), c.replace("{CAS}", &pick(&cas_theirs)))
                }
            };
            let ro = ours.call(a.as_bytes());
            let rt = theirs.call(b.as_bytes());
            history.push(format!("{b:?} -> {:?}", s(&rt)));
            let rt_s = s(&rt);
            let ro_num = std::str::from_utf8(&ro).ok().and_then(|x| x.trim_end().parse::<u64>().ok());
            // The meta form (`ma`, quiet or not) answers the number only with `v`: read it back.
            let is_ma = b.starts_with("ma ");
            // (Only when the replies differ: `mg` marks the item fetched.)
            let ro_num =
                if is_ma && ro != rt && rt_s == "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n" {
                    let k = b.split_whitespace().nth(1).unwrap_or("");
                    let got = ours.call(format!("mg {k} v\r\n").as_bytes());
                    let text = String::from_utf8_lossy(&got).into_owned();
                    text.lines().nth(1).and_then(|v| v.trim().parse::<u64>().ok())
                } else {
                    ro_num
                };
            let incr = b.starts_with("incr ") || (is_ma && !b.split_whitespace().any(|f| f == "MD"));
            if (b.starts_with("incr ") || b.starts_with("decr ") || is_ma)
                && rt_s == "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
                && ro_num.is_some_and(|n| {
                    // only where the counter was >= 2^63: results near the top, or wrapped by incr
                    let delta: u64 = if is_ma {
                        b.split_whitespace().find_map(|f| f.strip_prefix('D')).and_then(|d| d.parse().ok()).unwrap_or(1)
                    } else {
                        b.split_whitespace().nth(2).and_then(|d| d.parse().ok()).unwrap_or(0)
                    };
                    n >= 1 << 62 || (incr && n < delta)
                })
            {
                // memcached 1.6.18 bug: for stored counters >= 2^63 its numeric check reads past
                // the value and sometimes answers non-numeric (see the binary differential test).
                // Reset the counter on both servers and go on.
                let k = b.split_whitespace().nth(1).unwrap_or("");
                let reset = format!("set {k} 0 0 1\r\n0\r\n");
                ours.call(reset.as_bytes());
                theirs.call(reset.as_bytes());
                continue;
            } else if b.starts_with("me ") {
                // `me` reports timing/size internals: compare the hit/miss shape only
                assert_eq!(ro.starts_with(b"ME "), rt.starts_with(b"ME "), "seed {seed} step {step}: {b:?}");
            } else {
                assert_eq!(
                    normalize(&ro),
                    normalize(&rt),
                    "seed {seed} step {step}: request {:?}\nours:   {:?}\ntheirs: {:?}\nhistory:\n{}",
                    b,
                    s(&ro),
                    s(&rt),
                    history[history.len().saturating_sub(400)..].join("\n")
                );
            }
            learn_cas(&ro, &key, &mut cas_ours);
            learn_cas(&rt, &key, &mut cas_theirs);
            compared += 1;
        }
    }
    println!("differential: {compared} requests compared");
}

// ------------------------------------------------------------------ binary differential

/// Which CAS a generated binary request carries (resolved per server).
#[derive(Clone, Copy)]
enum BinCas {
    Zero,
    /// The last CAS this server returned for the key (or an unused one if none yet).
    Known,
    Wrong,
}

/// One random binary request: (opcode, key, extras, value, cas choice).
fn gen_bin(rng: &mut SmallRng) -> (u8, String, Vec<u8>, Vec<u8>, BinCas) {
    let key = KEYS[rng.gen_range(0..KEYS.len())].to_string();
    let concat_key = if key == "num" { "a".to_string() } else { key.clone() };
    // 2592001 (> 30 days) is an absolute time in the past: stored already expired.
    let exptimes = [0u32, 0, 0, 1000, 2_592_001, 0xffff_ffff];
    let exp = exptimes[rng.gen_range(0..exptimes.len())];
    let flags = [0u32, 1, 42, 4294967295][rng.gen_range(0..4)];
    let cas = match rng.gen_range(0..10) {
        0..=5 => BinCas::Zero,
        6..=8 => BinCas::Known,
        _ => BinCas::Wrong,
    };
    let quiet = rng.gen_bool(0.3);
    let store_extras = |f: u32, e: u32| {
        let mut x = f.to_be_bytes().to_vec();
        x.extend_from_slice(&e.to_be_bytes());
        x
    };
    match rng.gen_range(0..20) {
        0..=3 => {
            let op = [0x00, 0x09, 0x0c, 0x0d][rng.gen_range(0..4)];
            (op, key, vec![], vec![], BinCas::Zero)
        }
        4..=7 => {
            let op = [0x01, 0x02, 0x03][rng.gen_range(0..3)] + if quiet { 0x10 } else { 0 };
            let v = rand_value(rng, &key).into_bytes();
            (op, key, store_extras(flags, exp), v, cas)
        }
        8 | 9 => {
            let op = if quiet { 0x14 } else { 0x04 };
            (op, key, vec![], vec![], cas)
        }
        10..=12 => {
            let op = [0x05, 0x06][rng.gen_range(0..2)] + if quiet { 0x10 } else { 0 };
            let delta = [1u64, 7, 1000, u64::MAX][rng.gen_range(0..4)];
            let initial = [0u64, 5, 18446744073709551610][rng.gen_range(0..3)];
            let mut x = delta.to_be_bytes().to_vec();
            x.extend_from_slice(&initial.to_be_bytes());
            // Only `num` may be created by a miss: other keys never hold numbers (an in-place
            // incr's space padding, timing dependent in memcached, must not get appended to).
            let exp = if key == "num" { exp } else { 0xffff_ffff };
            x.extend_from_slice(&exp.to_be_bytes());
            (op, key, x, vec![], cas)
        }
        13 | 14 => {
            let op = [0x0e, 0x0f][rng.gen_range(0..2)] + if quiet { 0x0b } else { 0 };
            let v = rand_value(rng, &concat_key).into_bytes();
            (op, concat_key, vec![], v, cas)
        }
        15 => (0x1c, key, exp.to_be_bytes().to_vec(), vec![], BinCas::Zero),
        16 | 17 => {
            let op = [0x1d, 0x1e, 0x23, 0x24][rng.gen_range(0..4)];
            (op, key, exp.to_be_bytes().to_vec(), vec![], BinCas::Zero)
        }
        _ => (0x0a, String::new(), vec![], vec![], BinCas::Zero),
    }
}

/// A response packet as comparable text: CAS uniques become `#`, numeric values lose the
/// space padding of an in-place incr (timing dependent in memcached, see `rand_value`).
fn bin_normalize(p: &BinResp) -> String {
    let (op, status, opaque, cas, extras, key, value) = p;
    let numeric = {
        let t: &[u8] = value.as_slice();
        let end = t.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        end > 0 && t[..end].iter().all(|b| b.is_ascii_digit())
    };
    let v = if numeric {
        s(value).trim_end_matches(' ').to_string()
    } else if value.len() == 8 && matches!(op, 0x05 | 0x06 | 0x15 | 0x16) && *status == 0 {
        u64::from_be_bytes(value.as_slice().try_into().unwrap()).to_string()
    } else {
        format!("{:?}", s(value))
    };
    format!(
        "op={op:#04x} status={status} opaque={opaque} cas={} extras={extras:?} key={:?} value={v}",
        if *cas == 0 { "0" } else { "#" },
        s(key)
    )
}

/// Send `reqs` then a noop; return every response up to and including the noop's.
fn bin_batch(r: &mut Raw, reqs: &[Vec<u8>], noop_opaque: u32) -> Vec<BinResp> {
    let mut all = Vec::new();
    for q in reqs {
        all.extend_from_slice(q);
    }
    all.extend_from_slice(&bin_req(0x0a, b"", &[], &[], noop_opaque, 0));
    r.send(&all);
    let mut out = Vec::new();
    loop {
        let p = bin_read(r);
        let done = p.0 == 0x0a && p.2 == noop_opaque;
        out.push(p);
        if done {
            return out;
        }
    }
}

#[test]
fn binary_differential_against_real_memcached() {
    let Some(real) = real_memcached() else {
        println!("SKIPPED: memcached not on PATH");
        return;
    };
    let n = Node::start(&[]);
    let mut ours = n.raw();
    let mut theirs = Raw::connect(real.port);
    let mut compared = 0;
    let mut seen: std::collections::HashMap<(u8, u16), usize> = Default::default();
    let mut overreads = 0;
    for seed in 0..60u64 {
        let mut rng = SmallRng::seed_from_u64(1000 + seed);
        for r in [&mut ours, &mut theirs] {
            r.send(&bin_req(0x08, b"", &[0, 0, 0, 0], &[], 0, 0));
            assert_eq!(bin_read(r).1, 0);
        }
        let mut cas_ours: std::collections::HashMap<String, u64> = Default::default();
        let mut cas_theirs: std::collections::HashMap<String, u64> = Default::default();
        let mut history: Vec<String> = Vec::new();
        let mut opaque = 1u32;
        for batch in 0..120 {
            let k = rng.gen_range(1..5);
            let mut last_counter = None;
            let mut req_o = Vec::new();
            let mut req_t = Vec::new();
            let mut keys = std::collections::HashMap::new();
            for _ in 0..k {
                let (op, key, extras, value, cas) = gen_bin(&mut rng);
                let pick = |m: &std::collections::HashMap<String, u64>| match cas {
                    BinCas::Zero => 0,
                    BinCas::Known => m.get(&key).copied().unwrap_or(0x7777_0000_0000_0002),
                    BinCas::Wrong => 0x7777_0000_0000_0001,
                };
                let (co, ct) = (pick(&cas_ours), pick(&cas_theirs));
                req_o.push(bin_req(op, key.as_bytes(), &extras, &value, opaque, co));
                req_t.push(bin_req(op, key.as_bytes(), &extras, &value, opaque, ct));
                history.push(format!(
                    "#{opaque} op={op:#04x} key={key:?} extras={extras:?} value={:?} cas={}",
                    s(&value),
                    match cas {
                        BinCas::Zero => "0",
                        BinCas::Known => "known",
                        BinCas::Wrong => "wrong",
                    }
                ));
                let counter_op = key == "num" && matches!(op, 0x05 | 0x06 | 0x15 | 0x16);
                keys.insert(opaque, key);
                opaque += 1;
                if counter_op {
                    // Ends the batch (see the over-read tolerance below).
                    last_counter = Some(opaque - 1);
                    break;
                }
            }
            let noop = 0xffff_0000 + batch;
            let ro = bin_batch(&mut ours, &req_o, noop);
            let rt = bin_batch(&mut theirs, &req_t, noop);
            let no: Vec<String> = ro.iter().map(bin_normalize).collect();
            let nt: Vec<String> = rt.iter().map(bin_normalize).collect();
            for x in &nt {
                history.push(format!("   -> {x}"));
            }
            // memcached 1.6.18's safe_strtoull checks a value >= 2^63 for a '-' with strchr(),
            // which reads past the item's "\r\n" into neighbouring slab memory: incr/decr of such
            // a counter fails with NON_NUMERIC whenever a 0x2d byte precedes the next NUL there
            // (uninitialised/pointer bytes). Tolerate exactly that, check it, and resync `num`.
            if no != nt {
                if let Some(lc) = last_counter.filter(|&lc| {
                    let rest = |v: &[BinResp], n: &[String]| -> Vec<String> {
                        v.iter().zip(n).filter(|(p, _)| p.2 != lc).map(|(_, x)| x.clone()).collect()
                    };
                    let theirs_nn = rt.iter().any(|p| p.2 == lc && p.1 == 6);
                    let ours_ok = ro.iter().all(|p| p.2 != lc || p.1 == 0);
                    theirs_nn && ours_ok && rest(&ro, &no) == rest(&rt, &nt)
                }) {
                    theirs.send(&bin_req(0x00, b"num", &[], &[], lc, 0));
                    let g = bin_read(&mut theirs);
                    let v: u64 = s(&g.6).trim_end().parse().unwrap_or(0);
                    assert!(
                        g.1 == 0 && v >= 1 << 63,
                        "seed {seed} batch {batch}: NON_NUMERIC on {:?}\nhistory:\n{}",
                        s(&g.6),
                        history[history.len().saturating_sub(60)..].join("\n")
                    );
                    overreads += 1;
                    let sync = bin_req(0x01, b"num", &[0; 8], b"0", lc, 0);
                    for (r, m) in [(&mut ours, &mut cas_ours), (&mut theirs, &mut cas_theirs)] {
                        r.send(&sync);
                        let p = bin_read(r);
                        assert_eq!(p.1, 0);
                        m.insert("num".to_string(), p.3);
                    }
                    history.push("   (memcached strchr over-read: NON_NUMERIC; num reset to 0)".into());
                    compared += k as usize;
                    continue;
                }
            }
            assert_eq!(
                no,
                nt,
                "seed {seed} batch {batch}\nhistory:\n{}",
                history[history.len().saturating_sub(60)..].join("\n")
            );
            for (resps, m) in [(&ro, &mut cas_ours), (&rt, &mut cas_theirs)] {
                for p in resps.iter() {
                    if p.1 == 0 && p.3 != 0 {
                        if let Some(k) = keys.get(&p.2) {
                            m.insert(k.clone(), p.3);
                        }
                    }
                }
            }
            for p in &rt {
                *seen.entry((p.0, p.1)).or_insert(0usize) += 1;
            }
            compared += k as usize;
        }
    }
    // Every opcode must have been answered both ways (hit and miss/error) at least once.
    let mut ops: Vec<_> = seen.iter().map(|((o, st), n)| format!("{o:#04x}/{st}:{n}")).collect();
    ops.sort();
    println!(
        "binary differential: {compared} requests compared, {overreads} memcached over-read \
         NON_NUMERICs tolerated; (opcode/status:count) {ops:?}"
    );
    for op in [0x00u8, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x0e, 0x0f, 0x1c, 0x1d, 0x23] {
        assert!(seen.contains_key(&(op, 0)), "{op:#04x} never succeeded");
        assert!(seen.keys().any(|&(o, st)| o == op && st != 0), "{op:#04x} never failed");
    }
}

/// memcached client flags survive SAVE and a restart (they ride in an RDB aux field).
#[test]
fn flags_survive_rdb_restart() {
    let dir = std::env::temp_dir().join(format!("ferro-mc-rdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap().to_string();
    {
        let n = Node::start(&["--dir", &d]);
        let mut r = n.raw();
        assert_eq!(s(&r.call(b"set k1 42 0 5\r\nhello\r\nset k2 0 0 2\r\nhi\r\n")), "STORED\r\nSTORED\r\n");
        let _: () = redis::cmd("SAVE").query(&mut n.redis()).unwrap();
    }
    let n = Node::start(&["--dir", &d]);
    let mut r = n.raw();
    assert_eq!(s(&r.call(b"get k1 k2\r\n")), "VALUE k1 42 5\r\nhello\r\nVALUE k2 0 2\r\nhi\r\nEND\r\n");
    drop(n);
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------ back-pressure

fn rss_kb(pid: u32) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = st.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A client that pipelines many `get` of a big value and does not read: the node stops
/// executing (and reading) once a few MB of output wait, so its memory stays flat (memcached
/// does the same); reading everything back afterwards still gets every reply.
#[test]
fn pipelined_gets_of_a_big_value_are_back_pressured() {
    const SIZE: usize = 4 * 1024 * 1024;
    const GETS: usize = 100;
    let n = Node::start(&[]);
    let mut rc = n.redis();
    let _: () = redis::cmd("SET").arg("big").arg(vec![b'x'; SIZE]).query(&mut rc).unwrap();
    let mut r = n.raw();
    r.call(b"get big\r\n"); // warm up the connection's buffers
    let before = rss_kb(n.child.id());
    r.send(&b"get big\r\n".repeat(GETS));
    std::thread::sleep(Duration::from_millis(1500));
    let grown_mb = rss_kb(n.child.id()).saturating_sub(before) / 1024;
    assert!(grown_mb < 64, "RSS grew by {grown_mb} MB for {GETS} unread gets of a 4 MB value");
    // Everything is still delivered, in order.
    r.send(b"mn\r\n");
    r.s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let out = r.until(b"MN\r\n");
    let head = format!("VALUE big 0 {SIZE}\r\n");
    assert_eq!(out.len(), GETS * (head.len() + SIZE + 2 + 5) + 4);
    assert!(out.starts_with(head.as_bytes()));
}

// ------------------------------------------------------------------ authentication

/// Read one text reply line.
fn line(r: &mut Raw) -> String {
    s(&r.until(b"\r\n"))
}

/// The text login of memcached 1.6 with `-Y authfile` (t/ascii-auth.t), against the node's
/// ACL users; the same script against `memcached -Y` (user `default`, password `secret`) when
/// memcached is installed.
fn text_login_script(port: u16) -> Vec<String> {
    let mut r = Raw::connect(port);
    let mut out = Vec::new();
    for req in [
        &b"set foo 0 0 2\r\nhi\r\n"[..],
        b"get foo\r\n",
        b"flush_all\r\n",
        b"mg foo v\r\n",
        b"set foo 0 0 11\r\ndefault badXY",
        b"set foo 0 0 13\r\ndefault wrong\r\n",
        b"set foo 0 0 14\r\ndefault secret\r\n",
        b"set toast 0 0 2\r\nhi\r\n",
    ] {
        r.send(req);
        out.push(line(&mut r));
    }
    r.send(b"get toast\r\n");
    out.push(s(&r.until(b"END\r\n")));
    out
}

const TEXT_LOGIN_WANT: [&str; 9] = [
    "CLIENT_ERROR bad authentication token format\r\n",
    "CLIENT_ERROR unauthenticated\r\n",
    "CLIENT_ERROR unauthenticated\r\n",
    "CLIENT_ERROR unauthenticated\r\n",
    "CLIENT_ERROR bad command line termination\r\n",
    "CLIENT_ERROR authentication failure\r\n",
    "STORED\r\n",
    "STORED\r\n",
    "VALUE toast 0 2\r\nhi\r\nEND\r\n",
];

#[test]
fn memcached_port_requires_login_when_the_node_has_a_password() {
    let n = Node::start(&["--requirepass", "secret"]);
    let mut rc =
        redis::Client::open(format!("redis://:secret@127.0.0.1:{}/", n.port)).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("redis-only").arg("private").query(&mut rc).unwrap();
    let _: () = redis::cmd("ACL").arg(&["SETUSER", "alice", "on", ">apw", "~*", "&*", "+@all"]).query(&mut rc).unwrap();
    let _: () = redis::cmd("ACL").arg(&["SETUSER", "bob", "on", ">bpw", "~app:*", "+get"]).query(&mut rc).unwrap();

    assert_eq!(text_login_script(n.mc), TEXT_LOGIN_WANT);
    // Another ACL user logs in; a restricted one cannot (memcached requests bypass per-key rules).
    let mut r = n.raw();
    r.send(b"set x 0 0 7\r\nbob bpw\r\nset x 0 0 9\r\nalice apw\r\nget redis-only\r\n");
    assert_eq!(
        s(&r.until(b"END\r\n")),
        "CLIENT_ERROR authentication failure\r\nSTORED\r\nVALUE redis-only 0 7\r\nprivate\r\nEND\r\n"
    );
    // The node's data was never reachable before the login, and flush_all did nothing.
    let v: String = redis::cmd("GET").arg("redis-only").query(&mut rc).unwrap();
    assert_eq!(v, "private");

    // Binary protocol: SASL PLAIN (memcached -S).
    let mut b = n.raw();
    b.send(&bin_req(0x20, b"", b"", b"", 1, 0));
    let (op, st, _, _, _, _, mechs) = bin_read(&mut b);
    assert_eq!((op, st, s(&mechs)), (0x20, 0, "PLAIN".to_string()));
    b.send(&bin_req(0x21, b"PLAIN", b"", b"\0default\0nope", 2, 0));
    assert_eq!(bin_read(&mut b).1, 0x20);
    b.send(&bin_req(0x21, b"PLAIN", b"", b"\0default\0secret", 3, 0));
    let (_, st, _, _, _, _, body) = bin_read(&mut b);
    assert_eq!((st, s(&body)), (0, "Authenticated".to_string()));
    b.send(&bin_req(0x00, b"redis-only", b"", b"", 4, 0));
    let got = bin_read(&mut b);
    assert_eq!((got.1, s(&got.6)), (0, "private".to_string()));
    // Unauthenticated binary request: Authentication required (0x20), then closed.
    let mut b = n.raw();
    b.send(&bin_req(0x00, b"redis-only", b"", b"", 5, 0));
    assert_eq!(bin_read(&mut b).1, 0x20);
    assert!(b.closed());
    // Version needs no login (memcached's authenticated() list).
    let mut b = n.raw();
    b.send(&bin_req(0x0b, b"", b"", b"", 6, 0));
    assert_eq!(bin_read(&mut b).1, 0);

    let mut r = n.raw();
    r.send(b"stats\r\n");
    let st = s(&r.until(b"CLIENT_ERROR unauthenticated\r\n"));
    assert_eq!(st, "CLIENT_ERROR unauthenticated\r\n");

    match real_memcached_with(&["-Y"], "default:secret\n") {
        Some(m) => assert_eq!(text_login_script(m.port), TEXT_LOGIN_WANT),
        None => eprintln!("SKIPPED: memcached not installed"),
    }
}

/// `memcached-auth no` opens the memcached port explicitly; without a password nothing changes.
#[test]
fn memcached_auth_no_and_no_password_need_no_login() {
    for args in [&["--requirepass", "secret", "--memcached-auth", "no"][..], &[]] {
        let n = Node::start(args);
        let mut r = n.raw();
        assert_eq!(s(&r.call(b"set k 0 0 1\r\nv\r\nget k\r\n")), "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n");
        let mut b = n.raw();
        b.send(&bin_req(0x20, b"", b"", b"", 1, 0));
        assert_eq!(bin_read(&mut b).1, 0x81, "SASL_LIST_MECHS is an unknown command without auth");
    }
}

/// A real memcached started with `flag FILE` where FILE holds `content`.
fn real_memcached_with(flags: &[&str], content: &str) -> Option<RealMemcached> {
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
    let child = Command::new("memcached").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
    wait_port(port);
    Some(RealMemcached { child, port })
}

// ------------------------------------------------------------------ stats detail, slab classes

fn stat_map(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut t = l.splitn(3, ' ');
            (t.next() == Some("STAT")).then(|| (t.next().unwrap().to_string(), t.next().unwrap_or("").to_string()))
        })
        .collect()
}

/// `stats detail on|off|dump` (text and binary, as t/stats-detail.t and t/binary.t use them) and
/// the per-slab-class `stats items` / `stats slabs` numbers of t/issue_14.t, t/issue_42.t and
/// t/issue_163.t; the same script against a real memcached when it is installed.
fn detail_and_slab_script(port: u16) -> Vec<String> {
    let mut r = Raw::connect(port);
    let mut out = Vec::new();
    // binary STAT "detail on": an empty terminator (memcached), not "Not found"
    let mut b = Raw::connect(port);
    b.send(&bin_req(0x10, b"detail on", b"", b"", 1, 0));
    let (_, st, _, _, _, k, _) = bin_read(&mut b);
    out.push(format!("bin detail on: {st} {}", s(&k)));
    r.send(b"set foo:1 0 0 1\r\na\r\nget foo:1\r\nget foo:2\r\ndelete foo:3\r\nset nocolon 0 0 1\r\nb\r\n");
    r.until(b"STORED\r\n");
    out.push(s(&r.call(b"stats detail dump\r\n")));
    b.send(&bin_req(0x10, b"detail dump", b"", b"", 2, 0));
    let (_, st, _, _, _, k, v) = bin_read(&mut b);
    out.push(format!("bin detail dump: {st} {} {}", s(&k), s(&v)));
    let _ = bin_read(&mut b); // terminator
    out.push(s(&r.call(b"stats detail off\r\nstats reset\r\nstats detail dump\r\n")));
    // issue_42: small items in class 1 (with foo:1 and nocolon: 12)
    for i in 0..10 {
        r.send(format!("set key{i} 0 0 10\r\nBBBBBBBBBB\r\n").as_bytes());
        r.until(b"STORED\r\n");
    }
    let items = stat_map(&s(&r.call(b"stats items\r\n")));
    out.push(format!("items:1 {} {}", items["items:1:number"], items["items:1:mem_requested"]));
    // issue_163: an expired item's class counts it as reclaimed once its memory is reused
    let v1 = "A".repeat(66560);
    r.send(format!("set key 0 1 66560\r\n{v1}\r\n").as_bytes());
    r.until(b"STORED\r\n");
    let slabs1 = stat_map(&s(&r.call(b"stats slabs\r\n")));
    std::thread::sleep(Duration::from_millis(2500));
    r.send(format!("set key 0 0 66570\r\n{}\r\n", "B".repeat(66570)).as_bytes());
    r.until(b"STORED\r\n");
    let items = stat_map(&s(&r.call(b"stats items\r\n")));
    let slabs2 = stat_map(&s(&r.call(b"stats slabs\r\n")));
    out.push(format!(
        "items:31 {} {} {} slabs:31 {} {} malloced {}",
        items["items:31:number"],
        items["items:31:mem_requested"],
        items["items:31:reclaimed"],
        slabs2["31:chunk_size"],
        slabs2["31:chunks_per_page"],
        slabs1["total_malloced"] == slabs2["total_malloced"],
    ));
    out
}

#[test]
fn stats_detail_and_slab_classes_like_memcached() {
    let want = [
        "bin detail on: 0 ",
        "PREFIX foo get 2 hit 1 set 1 del 1\r\nEND\r\n",
        "bin detail dump: 0 detailed PREFIX foo get 2 hit 1 set 1 del 1\r\nEND\r\n",
        "OK\r\nRESET\r\nEND\r\n",
        "items:1 12 862",
        "items:31 1 66632 1 slabs:31 82792 12 malloced true",
    ];
    let n = Node::start(&[]);
    assert_eq!(detail_and_slab_script(n.mc), want);
    match real_memcached() {
        Some(m) => assert_eq!(detail_and_slab_script(m.port), want),
        None => eprintln!("SKIPPED: memcached not installed"),
    }
}

/// `lru_crawler` (t/lru-crawler.t used to hang: `metadump` answered ERROR where the client
/// waits for END): crawl, metadump lines, the pipelining refusal, enable/disable; the same
/// script against a real memcached when it is installed.
#[test]
fn lru_crawler_like_memcached() {
    fn script(port: u16) -> Vec<String> {
        let mut r = Raw::connect(port);
        let mut out = Vec::new();
        for i in 0..5 {
            r.send(format!("set k:{i} 0 0 2\r\nok\r\n").as_bytes());
            r.until(b"STORED\r\n");
        }
        r.send(b"mg foo v\r\nlru_crawler metadump all\r\n");
        out.push(s(&r.until(b"metadump\r\n")));
        r.send(b"lru_crawler metadump 1\r\n");
        let dump = s(&r.until(b"END\r\n"));
        let mut lines: Vec<String> = dump
            .lines()
            .filter(|l| l.starts_with("key="))
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                format!("{} {} {} {} {}", f[0], f[1], f[4], f[5], f[6])
            })
            .collect();
        lines.sort();
        out.extend(lines);
        r.send(b"lru_crawler crawl 1\r\nlru_crawler crawl 99\r\nlru_crawler tocrawl 10\r\nlru_crawler bogus\r\n");
        out.push(s(&r.until(b"ERROR\r\n")));
        // slabs reassign must answer NOSPARE (t/error-extstore.t loops until it sees it)
        out.push(s(&r.call(b"slabs reassign 0 1\r\nslabs reassign 1 1\r\nslabs reassign 99 1\r\nslabs reassign -1 2\r\nslabs reassign x 1\r\nslabs automove 0\r\nslabs automove 5\r\nslabs automove ratio 0.5\r\nslabs bogus\r\n")));
        out
    }
    let mut want = vec!["EN\r\nERROR cannot pipeline other commands before metadump\r\n".to_string()];
    for i in 0..5 {
        want.push(format!("key=k%3A{i} exp=-1 fetch=no cls=1 size=64"));
    }
    want.push("OK\r\nBADCLASS invalid class id\r\nOK\r\nERROR\r\n".into());
    want.push(
        "NOSPARE source class has no spare pages\r\nSAME src and dst class are identical\r\n\
         BADCLASS invalid src or dst class id\r\nBADCLASS invalid src or dst class id\r\n\
         CLIENT_ERROR bad command line format\r\nOK\r\nERROR\r\nOK\r\nERROR\r\n"
            .into(),
    );
    let n = Node::start(&[]);
    assert_eq!(script(n.mc), want);
    // disable / crawl / enable, on ferrocache only: a real memcached answers a disable right
    // after a crawl with "ERROR an unknown error happened" while its crawler thread winds down.
    let mut r = Raw::connect(n.mc);
    r.send(b"lru_crawler disable\r\nlru_crawler crawl all\r\nlru_crawler enable\r\n");
    assert_eq!(
        s(&r.until(b"OK\r\nCLIENT_ERROR lru crawler disabled\r\nOK\r\n")),
        "OK\r\nCLIENT_ERROR lru crawler disabled\r\nOK\r\n"
    );
    match real_memcached() {
        Some(m) => assert_eq!(script(m.port), want),
        None => eprintln!("SKIPPED: memcached not installed"),
    }
}

/// `watch fetchers mutations connevents` log lines in memcached's format (t/watcher.t and
/// t/watcher_connid.t used to hang waiting for them); the same script against a real memcached
/// when it is installed. Timestamps, ids and ports are masked.
#[test]
fn watch_log_lines_like_memcached() {
    fn mask(line: &str) -> String {
        let nl = if line.ends_with('\n') { "\n" } else { "" };
        let masked = line
            .trim_end_matches('\n')
            .split(' ')
            .map(|t| match t.split_once('=') {
                Some((k @ ("ts" | "gid" | "cfd" | "rport"), _)) => format!("{k}=#"),
                _ => t.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ");
        masked + nl
    }
    fn script(port: u16) -> Vec<String> {
        let mut w = Raw::connect(port);
        w.send(b"watch fetchers mutations\n");
        let mut out = vec![line(&mut w)];
        let mut c = Raw::connect(port);
        c.send(b"set foo 0 0 5\r\nhello\r\nget foo\r\nget nope\r\n");
        c.until(b"END\r\nEND\r\n");
        for _ in 0..4 {
            out.push(mask(&one_line(&mut w)));
        }
        let mut e = Raw::connect(port);
        e.send(b"watch connevents\n");
        out.push(line(&mut e));
        let mut c2 = Raw::connect(port);
        c2.send(b"version\r\nquit\r\n");
        assert!(c2.until(b"\r\n").starts_with(b"VERSION"));
        out.push(mask(&one_line(&mut e)).replace("rip=127.0.0.1", "rip=#"));
        out.push(mask(&one_line(&mut e)).replace("rip=127.0.0.1", "rip=#"));
        let mut c3 = Raw::connect(port);
        c3.send(b"GET / HTTP/1.1\r\n");
        assert!(c3.closed());
        out.push(mask(&one_line(&mut e)).replace("rip=127.0.0.1", "rip=#"));
        out.push(mask(&one_line(&mut e)).replace("rip=127.0.0.1", "rip=#"));
        out
    }
    let want = [
        "OK\r\n",
        "ts=# gid=# type=item_get key=foo status=not_found clsid=0 cfd=# size=0\n",
        "ts=# gid=# type=item_store key=foo status=stored cmd=set ttl=0 clsid=1 cfd=# size=5\n",
        "ts=# gid=# type=item_get key=foo status=found clsid=1 cfd=# size=5\n",
        "ts=# gid=# type=item_get key=nope status=not_found clsid=0 cfd=# size=0\n",
        "OK\r\n",
        "ts=# gid=# type=conn_new rip=# rport=# transport=tcp cfd=#\n",
        "ts=# gid=# type=conn_close rip=# rport=# transport=tcp reason=normal cfd=#\n",
        "ts=# gid=# type=conn_new rip=# rport=# transport=tcp cfd=#\n",
        "ts=# gid=# type=conn_close rip=# rport=# transport=tcp reason=error cfd=#\n",
    ];
    let n = Node::start(&[]);
    assert_eq!(script(n.mc), want);
    match real_memcached() {
        Some(m) => assert_eq!(script(m.port), want),
        None => eprintln!("SKIPPED: memcached not installed"),
    }
}

/// One `\n`-terminated line; what follows it stays buffered.
fn one_line(r: &mut Raw) -> String {
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
