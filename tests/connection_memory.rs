//! Memory per connection (issue 11 §3d): thousands of connections opened and closed again and
//! again must not leave the node's RSS (/proc/PID/status) near the bursts' peak. An idle
//! connection holds no read or reply buffer (per-thread spares), and memory freed by closed
//! connections goes back to the OS (glibc keeps it in its arenas otherwise).

mod common;

use common::rss;

use common::Reply;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const MB: u64 = 1024 * 1024;

/// Raise this process's open-file limit (inherited by the node) and return it.
fn raise_nofile() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 1024;
        }
        if l.rlim_cur < l.rlim_max {
            let want = libc::rlimit { rlim_cur: l.rlim_max.min(65536), rlim_max: l.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        l.rlim_cur
    }
}

fn used_memory(c: &mut common::Raw) -> u64 {
    let Reply::Bulk(b) = c.cmd(&["INFO", "memory"]) else { panic!("INFO") };
    String::from_utf8_lossy(&b)
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// `n` connections that each sent PING and got +PONG (opened from 8 threads).
fn open_pinged(port: u16, n: usize) -> Vec<TcpStream> {
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                for _ in (t..n).step_by(8) {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    s.write_all(b"PING\r\n").unwrap();
                    v.push(s);
                }
                for s in v.iter_mut() {
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let mut b = [0u8; 7];
                    s.read_exact(&mut b).unwrap();
                    assert_eq!(&b, b"+PONG\r\n");
                }
                v
            })
        })
        .collect();
    threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
}

#[test]
fn connect_close_cycles_return_memory() {
    let limit = raise_nofile();
    let n = (limit.saturating_sub(200) as usize).min(3000);
    assert!(n >= 500, "open-file limit too low: {limit}");
    let node = common::ferrocache(&["--maxclients", "100000"]);
    let pid = node.child.id();
    let mut c = node.conn();
    std::thread::sleep(Duration::from_millis(300));
    let base = rss(pid);
    let used_base = used_memory(&mut c);
    let mut peak = 0;
    for round in 0..4 {
        let tr = Instant::now();
        let socks = open_pinged(node.port, n);
        if round == 0 {
            // Live memory per idle connection (allocator-independent): was ~40 KB (a 16 KB read
            // buffer and a 16 KB reply buffer each); Redis uses ~20 KB.
            let per = used_memory(&mut c).saturating_sub(used_base) / n as u64;
            assert!(per < 12 * 1024, "{per} bytes of live memory per idle connection");
        }
        peak = peak.max(rss(pid));
        drop(socks);
        eprintln!("round {round}: {:?}", tr.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    let t = Instant::now();
    let mut now = rss(pid);
    while now > base + 16 * MB && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        now = rss(pid);
    }
    eprintln!("{n} connections x 4: RSS {} MB at start, peak {} MB, {} MB after", base / MB, peak / MB, now / MB);
    assert!(
        peak < base + (n as u64) * 20 * 1024,
        "peak RSS {} MB for {n} connections (start {} MB)",
        peak / MB,
        base / MB
    );
    assert!(
        now <= base + 16 * MB,
        "RSS stays at {} MB after the connections closed (start {} MB, peak {} MB)",
        now / MB,
        base / MB,
        peak / MB
    );
    assert_eq!(c.cmd(&["PING"]), Reply::Simple("PONG".into()));
}
