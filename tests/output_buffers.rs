//! client-output-buffer-limit (issue 11 §3d), side by side with redis-server 7.0 when it is on
//! PATH: a client that pipelines big GETs and never reads is closed at the normal class's hard
//! limit, a subscriber that never reads at the pubsub class's (the default 32mb), each with
//! Redis's log line, and the node's RSS (/proc/PID/status) stays near the limit; with the
//! default `normal 0 0 0` a non-reading client is kept (as Redis does) and its output buffer
//! is reported truthfully in CLIENT LIST `omem` and INFO `mem_clients_normal`. CONFIG SET/GET
//! of the option: its errors, merging of classes and canonical form.

mod common;

use common::rss;

use common::{Raw, Reply, ServerProc};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MB: u64 = 1024 * 1024;

/// Samples a process's RSS every 20 ms until dropped; `peak()` is the highest seen.
struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    fn new(pid: u32) -> RssWatch {
        let peak = Arc::new(AtomicU64::new(rss(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Relaxed) {
                p.fetch_max(rss(pid), Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssWatch { peak, stop }
    }
    fn peak(&self) -> u64 {
        self.peak.load(Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

fn log_path(tag: &str) -> std::path::PathBuf {
    let d = common::temp_dir(tag);
    d.join("node.log")
}

/// ferrocache and (when installed) redis-server, both with `extra` and a log file each.
fn both(extra: &[&str]) -> Vec<(ServerProc, std::path::PathBuf)> {
    let mut v = Vec::new();
    let lf = log_path("obuf-ferro");
    let mut args: Vec<&str> = extra.to_vec();
    let lfs = lf.display().to_string();
    args.extend(["--logfile", &lfs]);
    v.push((common::ferrocache(&args), lf));
    let lr = log_path("obuf-redis");
    let lrs = lr.display().to_string();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--logfile", &lrs]);
    match common::redis_server(&args) {
        Some(r) => v.push((r, lr)),
        None => eprintln!("SKIPPED (the redis-server half): redis-server is not on PATH"),
    }
    v
}

fn client_list(c: &mut Raw) -> String {
    match c.cmd(&["CLIENT", "LIST"]) {
        Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        r => panic!("CLIENT LIST: {r:?}"),
    }
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(' ').find_map(|f| f.strip_prefix(&format!("{name}="))).unwrap_or("")
}

fn info_field(c: &mut Raw, section: &str, name: &str) -> String {
    let Reply::Bulk(b) = c.cmd(&["INFO", section]) else { panic!("INFO") };
    let s = String::from_utf8_lossy(&b).into_owned();
    s.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_default().trim().to_string()
}

/// A connection that sends `req` in one write and never reads.
fn silent_client(port: u16, req: &[u8]) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    (&s).write_all(req).unwrap();
    s
}

/// Wait until the node has `n` clients (CLIENT LIST lines); false on timeout.
fn wait_clients(c: &mut Raw, n: usize, secs: u64) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if client_list(c).lines().count() == n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn set_big(c: &mut Raw, mb: usize) {
    let big = vec![b'x'; mb * MB as usize];
    c.send_cmd(&[&b"SET"[..], b"big", &big]);
    assert_eq!(c.read(), Reply::Simple("OK".into()));
}

fn gets(n: usize) -> Vec<u8> {
    let mut req = Vec::new();
    for _ in 0..n {
        req.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    }
    req
}

const CLOSED_LINE: &str = "scheduled to be closed ASAP for overcoming of output buffer limits.";

/// issue 11's case with a normal-class limit: 60 pipelined GETs of a 4 MB value from a client
/// that never reads. The client is closed once its output buffer reaches 32 MB; the node's RSS
/// never grows by the 240 MB of replies.
#[test]
fn normal_limit_closes_a_client_that_never_reads() {
    for (node, log) in both(&["--client-output-buffer-limit", "normal 32mb 16mb 60"]) {
        let mut c = node.conn();
        set_big(&mut c, 4);
        let pid = node.child.id();
        let base = rss(pid);
        let watch = RssWatch::new(pid);
        let s = silent_client(node.port, &gets(60));
        assert!(
            wait_clients(&mut c, 1, 20),
            "{}: the non-reading client is still connected: {}",
            node.name,
            client_list(&mut c)
        );
        std::thread::sleep(Duration::from_millis(200));
        let grew = watch.peak().saturating_sub(base);
        assert!(grew < 120 * MB, "{}: RSS grew by {} MB", node.name, grew / MB);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.contains(CLOSED_LINE))
            .unwrap_or_else(|| panic!("{}: no log line: {text}", node.name));
        assert!(line.contains("flags=N") && line.contains("cmd=get"), "{line}");
        let omem: u64 = field(line, "omem").parse().unwrap();
        assert!((32 * MB..40 * MB).contains(&omem), "{}: {line}", node.name);
        drop(s);
        // The node still serves.
        assert_eq!(c.cmd(&["PING"]), Reply::Simple("PONG".into()));
    }
}

/// The default `normal 0 0 0` sets no limit: redis-server keeps a client that never reads, and
/// so does ferrocache; both report its output buffer in CLIENT LIST and INFO.
#[test]
fn default_normal_class_keeps_the_client_and_reports_omem() {
    for (node, _log) in both(&[]) {
        let mut c = node.conn();
        set_big(&mut c, 4);
        let s = silent_client(node.port, &gets(15));
        let t = Instant::now();
        let line = loop {
            let l = client_list(&mut c);
            if let Some(line) =
                l.lines().find(|l| field(l, "cmd") == "get" && field(l, "omem").parse::<u64>().unwrap_or(0) > 40 * MB)
            {
                break line.to_string();
            }
            assert!(t.elapsed() < Duration::from_secs(20), "{}: {l}", node.name);
            std::thread::sleep(Duration::from_millis(50));
        };
        let omem: u64 = field(&line, "omem").parse().unwrap();
        assert!(omem <= 61 * MB, "{}: {line}", node.name);
        let tot: u64 = field(&line, "tot-mem").parse().unwrap();
        assert!(tot >= omem, "{line}");
        // (redis-server updates it from its cron; the socket may take a few more MB meanwhile)
        let t = Instant::now();
        loop {
            let normal: u64 = info_field(&mut c, "memory", "mem_clients_normal").parse().unwrap();
            if normal + 16 * MB >= omem {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(5), "{}: mem_clients_normal {normal}, omem {omem}", node.name);
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(client_list(&mut c).lines().count(), 2, "{}", node.name);
        drop(s);
        assert!(wait_clients(&mut c, 1, 10));
        let normal: u64 = info_field(&mut c, "memory", "mem_clients_normal").parse().unwrap();
        // (redis-server still counts the 4 MB query buffer of the SET's connection)
        assert!(normal < 10 * MB, "{}: mem_clients_normal {normal} after the client left", node.name);
    }
}

/// A subscriber that never reads while 100 messages of 1 MB are published: the default pubsub
/// limit (32mb hard) closes it, as in redis-server, and the node does not buffer 100 MB.
#[test]
fn pubsub_limit_drops_a_subscriber_that_never_reads() {
    for (node, log) in both(&[]) {
        let mut c = node.conn();
        let pid = node.child.id();
        let base = rss(pid);
        let watch = RssWatch::new(pid);
        let s = silent_client(node.port, b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n");
        let t = Instant::now();
        while !client_list(&mut c).contains("sub=1") {
            assert!(t.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
        let payload = vec![b'y'; MB as usize];
        let mut receivers = Vec::new();
        for _ in 0..100 {
            c.send_cmd(&[&b"PUBLISH"[..], b"ch", &payload]);
            receivers.push(c.read());
        }
        assert_eq!(receivers[0], Reply::Int(1));
        assert!(
            wait_clients(&mut c, 1, 20),
            "{}: the subscriber is still connected: {}",
            node.name,
            client_list(&mut c)
        );
        std::thread::sleep(Duration::from_millis(200));
        let grew = watch.peak().saturating_sub(base);
        assert!(grew < 90 * MB, "{}: RSS grew by {} MB", node.name, grew / MB);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.contains(CLOSED_LINE))
            .unwrap_or_else(|| panic!("{}: no log line: {text}", node.name));
        assert!(line.contains("flags=P") && line.contains("sub=1"), "{line}");
        // Later messages have no receiver.
        assert_eq!(c.cmd(&[&b"PUBLISH"[..], b"ch", b"x"]), Reply::Int(0), "{}", node.name);
        drop(s);
        let _ = info_field(&mut c, "memory", "mem_clients_normal");
    }
}

/// CONFIG SET client-output-buffer-limit: Redis's errors, classes merged, CONFIG GET in bytes.
#[test]
fn config_client_output_buffer_limit() {
    let mut results = Vec::new();
    for (node, _log) in both(&[]) {
        let mut c = node.conn();
        let mut out = Vec::new();
        for v in [
            "normal 1",
            "master 1 1 1",
            "normal 1x 1 1",
            "normal 1 1 -1",
            "normal 10mb 5mb 7 replica 300mb 100mb 90",
            "",
        ] {
            out.push(format!("{:?}", c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", v])));
        }
        out.push(format!("{:?}", c.cmd(&["CONFIG", "GET", "client-output-buffer-limit"])));
        results.push((node.name, out));
    }
    let ferro = &results[0].1;
    assert_eq!(
        ferro.last().unwrap(),
        &format!(
            "{:?}",
            Reply::Array(vec![
                Reply::Bulk(b"client-output-buffer-limit".to_vec()),
                Reply::Bulk(
                    b"normal 10485760 5242880 7 slave 314572800 104857600 90 pubsub 33554432 8388608 60".to_vec()
                )
            ])
        )
    );
    if let Some((_, redis)) = results.get(1) {
        assert_eq!(ferro, redis);
    }
}
