//! Redis 7.0's protected defaults: protected mode refuses non-local clients when the default
//! user has no password, CONFIG SET of protected configs (dir, dbfilename) and DEBUG are refused
//! unless `enable-protected-configs` / `enable-debug-command` allow them. Every check is
//! compared byte for byte with a real redis-server started the same way (skipped, with a
//! message, when redis-server is not installed).

mod common;

use common::Raw;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A connection to 127.0.0.1:port from 127.0.0.2: loopback traffic that Redis does not count
/// as local (islocalClient wants 127.0.0.1 or ::1 exactly).
fn connect_from_127_0_0_2(port: u16) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// What a client from 127.0.0.2 gets for PING: the whole reply until the server closes, or
/// the first line when it stays open.
fn remote_ping(port: u16) -> String {
    let mut s = connect_from_127_0_0_2(port);
    s.write_all(b"PING\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    if line.starts_with("+PONG") {
        return line;
    }
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    line + &rest
}

#[test]
fn protected_mode_refuses_remote_clients_without_a_password() {
    let f = common::ferrocache(&["--bind", "0.0.0.0"]);
    let denied = remote_ping(f.port);
    assert!(denied.starts_with("-DENIED Redis is running in protected mode"), "{}", denied);
    // Local clients are served.
    assert_eq!(f.conn().q("PING").as_str(), "PONG");
    if let Some(r) = common::redis_server(&["--bind", "0.0.0.0", "--protected-mode", "yes"]) {
        assert_eq!(denied, remote_ping(r.port), "differs from redis-server");
    } else {
        eprintln!("SKIPPED comparison: redis-server is not on PATH");
    }
    // A password, or protected-mode no, lets them in.
    let f = common::ferrocache(&["--bind", "0.0.0.0"]);
    assert_eq!(f.conn().q("CONFIG SET requirepass pw").as_str(), "OK");
    assert!(remote_ping(f.port).starts_with("-NOAUTH"), "{}", remote_ping(f.port));
    let f = common::ferrocache(&["--bind", "0.0.0.0", "--protected-mode", "no"]);
    assert_eq!(remote_ping(f.port), "+PONG\r\n");
    // CONFIG SET protected-mode no from a local client opens it at runtime, as in Redis.
    let f = common::ferrocache(&["--bind", "0.0.0.0"]);
    assert_eq!(f.conn().q("CONFIG SET protected-mode no").as_str(), "OK");
    assert_eq!(remote_ping(f.port), "+PONG\r\n");
}

/// The classic file-write route: CONFIG SET dir + dbfilename + SAVE.
#[test]
fn protected_configs_and_debug_are_refused_by_default() {
    let f = common::ferrocache(&[]);
    let r = common::redis_server(&[]);
    let cmds: &[&[&str]] = &[
        &["CONFIG", "SET", "dir", "/tmp"],
        &["CONFIG", "SET", "dbfilename", "passwd"],
        &["CONFIG", "SET", "maxmemory", "0", "dir", "/tmp"],
        &["DEBUG", "SLEEP", "0"],
        &["DEBUG", "OBJECT", "k"],
    ];
    let mut fc = f.conn();
    for c in cmds {
        let ours = fc.cmd(c).as_str();
        assert!(ours.starts_with("ERR "), "{:?} was allowed: {}", c, ours);
        if let Some(r) = &r {
            assert_eq!(ours, r.conn().cmd(c).as_str(), "{:?}", c);
        }
    }
    assert_eq!(fc.q("CONFIG GET dbfilename").items()[1].as_str(), "dump.rdb");
    // Allowed where the operator said so; "local" means 127.0.0.1 / ::1 only.
    let f = common::ferrocache(&[
        "--enable-protected-configs",
        "local",
        "--enable-debug-command",
        "local",
        "--protected-mode",
        "no",
    ]);
    let mut fc = f.conn();
    assert_eq!(fc.q("CONFIG SET dbfilename other.rdb").as_str(), "OK");
    assert_eq!(fc.q("DEBUG SLEEP 0").as_str(), "OK");
    let s = connect_from_127_0_0_2(f.port);
    let mut remote = Raw { r: BufReader::new(s.try_clone().unwrap()), w: s };
    assert_eq!(
        remote.q("CONFIG SET dbfilename x.rdb").as_str(),
        "ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected config"
    );
    assert!(remote.q("DEBUG SLEEP 0").as_str().starts_with("ERR DEBUG command not allowed."));
    assert_eq!(fc.q("CONFIG GET dbfilename").items()[1].as_str(), "other.rdb");
}
