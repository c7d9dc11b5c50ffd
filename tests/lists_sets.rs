//! End-to-end tests of the list and set command families against a node running inside the test
//! process (tests/common/inproc.rs: the real listener, connections and executor, no binary to
//! spawn): replies are compared byte for byte (RESP2 and RESP3) with what Redis 7.0.15 sends.

#[path = "common/inproc.rs"]
mod inproc;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The server under test: a node running inside the test process (tests/common/inproc.rs).
struct Server {
    _node: Option<inproc::InProcNode>,
    port: u16,
}

impl Server {
    /// Starts an in-process node. With `LISTS_SETS_REFERENCE_PORT=P` set, runs against the
    /// server already listening on P instead (used to check these expectations against a real
    /// redis-server 7.0: run with `--test-threads=1`; it is flushed first).
    fn start() -> Server {
        if let Ok(p) = std::env::var("LISTS_SETS_REFERENCE_PORT") {
            let s = Server { _node: None, port: p.parse().unwrap() };
            let mut k = s.conn();
            assert_eq!(k.cmd(&["flushall"]), "+OK\r\n");
            k.cmd(&["config", "set", "notify-keyspace-events", ""]);
            return s;
        }
        let node = inproc::InProcNode::start(&[]);
        Server { port: node.port, _node: Some(node) }
    }
    fn conn(&self) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn { r: BufReader::new(s.try_clone().unwrap()), w: s }
    }
}

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn send(&mut self, args: &[&str]) {
        let mut b = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            b.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
        }
        self.w.write_all(&b).unwrap();
    }
    /// One complete reply, raw.
    fn read(&mut self) -> String {
        let mut s = String::new();
        self.read_into(&mut s);
        s
    }
    fn read_into(&mut self, s: &mut String) {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        assert!(line.ends_with("\r\n"), "short read: {:?}", line);
        s.push_str(&line);
        let n: i64 = line[1..line.len() - 2].parse().unwrap_or(0);
        match line.as_bytes()[0] {
            b'$' | b'=' if n >= 0 => {
                let mut buf = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut buf).unwrap();
                s.push_str(&String::from_utf8_lossy(&buf));
            }
            b'*' | b'~' | b'>' if n > 0 => {
                for _ in 0..n {
                    self.read_into(s);
                }
            }
            b'%' if n > 0 => {
                for _ in 0..2 * n {
                    self.read_into(s);
                }
            }
            _ => {}
        }
    }
    fn cmd(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.read()
    }
    /// True if no reply arrives within `ms`.
    fn silent_for(&mut self, ms: u64) -> bool {
        if !self.r.buffer().is_empty() {
            return false;
        }
        self.r.get_ref().set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
        let silent = self.r.fill_buf().is_err();
        self.r.get_ref().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        silent
    }
}

/// Shorthand: split a command line on spaces.
fn c(conn: &mut Conn, line: &str) -> String {
    let args: Vec<&str> = line.split(' ').collect();
    conn.cmd(&args)
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}

fn arr(items: &[&str]) -> String {
    let mut s = format!("*{}\r\n", items.len());
    for i in items {
        s.push_str(&bulk(i));
    }
    s
}

fn int(n: i64) -> String {
    format!(":{}\r\n", n)
}

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
const NULL: &str = "$-1\r\n";
const NULL_ARR: &str = "*-1\r\n";

#[test]
fn list_push_pop_range() {
    let s = Server::start();
    let mut k = s.conn();
    assert_eq!(c(&mut k, "rpush l a b c d e a"), int(6));
    assert_eq!(c(&mut k, "lpush l x y"), int(8));
    assert_eq!(c(&mut k, "lpushx nol a"), int(0));
    assert_eq!(c(&mut k, "exists nol"), int(0));
    assert_eq!(c(&mut k, "rpushx l z"), int(9));
    assert_eq!(c(&mut k, "llen l"), int(9));
    assert_eq!(c(&mut k, "llen nol"), int(0));
    assert_eq!(c(&mut k, "lrange l 0 -1"), arr(&["y", "x", "a", "b", "c", "d", "e", "a", "z"]));
    assert_eq!(c(&mut k, "lrange l -3 100"), arr(&["e", "a", "z"]));
    assert_eq!(c(&mut k, "lrange l 5 2"), "*0\r\n");
    assert_eq!(c(&mut k, "lrange nol 0 -1"), "*0\r\n");
    assert_eq!(c(&mut k, "lindex l 0"), bulk("y"));
    assert_eq!(c(&mut k, "lindex l -1"), bulk("z"));
    assert_eq!(c(&mut k, "lindex l 100"), NULL);
    assert_eq!(c(&mut k, "lset l 0 q"), "+OK\r\n");
    assert_eq!(c(&mut k, "lset l 100 q"), "-ERR index out of range\r\n");
    assert_eq!(c(&mut k, "lset nol 0 q"), "-ERR no such key\r\n");
    assert_eq!(c(&mut k, "linsert l before a NEW"), int(10));
    assert_eq!(c(&mut k, "linsert l after zz NEW"), int(-1));
    assert_eq!(c(&mut k, "linsert nol after zz NEW"), int(0));
    assert_eq!(c(&mut k, "linsert l middle a NEW"), "-ERR syntax error\r\n");
    assert_eq!(c(&mut k, "lrem l -1 a"), int(1));
    assert_eq!(c(&mut k, "lrem l 0 NEW"), int(1));
    assert_eq!(c(&mut k, "lrange l 0 -1"), arr(&["q", "x", "a", "b", "c", "d", "e", "z"]));
    assert_eq!(c(&mut k, "ltrim l 1 -2"), "+OK\r\n");
    assert_eq!(c(&mut k, "lrange l 0 -1"), arr(&["x", "a", "b", "c", "d", "e"]));
    assert_eq!(c(&mut k, "lpop l"), bulk("x"));
    assert_eq!(c(&mut k, "rpop l"), bulk("e"));
    assert_eq!(c(&mut k, "lpop l 2"), arr(&["a", "b"]));
    assert_eq!(c(&mut k, "rpop l 5"), arr(&["d", "c"]));
    assert_eq!(c(&mut k, "exists l"), int(0));
    assert_eq!(c(&mut k, "lpop l"), NULL);
    assert_eq!(c(&mut k, "lpop l 2"), NULL_ARR);
    assert_eq!(c(&mut k, "lpop l 0"), NULL_ARR);
    c(&mut k, "rpush l a");
    assert_eq!(c(&mut k, "lpop l 0"), "*0\r\n");
    assert_eq!(c(&mut k, "ltrim l 5 10"), "+OK\r\n");
    assert_eq!(c(&mut k, "exists l"), int(0));
    assert_eq!(c(&mut k, "ltrim nol 0 1"), "+OK\r\n");
    // Redis 7.0 lists are always quicklists.
    c(&mut k, "rpush l 1");
    assert_eq!(c(&mut k, "object encoding l"), bulk("quicklist"));
}

#[test]
fn list_lpos_lmove_lmpop() {
    let s = Server::start();
    let mut k = s.conn();
    c(&mut k, "rpush p 1 2 3 1 2 3 1 2 3");
    assert_eq!(c(&mut k, "lpos p 2"), int(1));
    assert_eq!(c(&mut k, "lpos p 3 rank -1"), int(8));
    assert_eq!(c(&mut k, "lpos p 1 count 0"), "*3\r\n:0\r\n:3\r\n:6\r\n");
    assert_eq!(c(&mut k, "lpos p 1 count 2 rank 2"), "*2\r\n:3\r\n:6\r\n");
    assert_eq!(c(&mut k, "lpos p 1 rank -2 count 0"), "*2\r\n:3\r\n:0\r\n");
    assert_eq!(c(&mut k, "lpos p 3 maxlen 3"), int(2));
    assert_eq!(c(&mut k, "lpos p 3 maxlen 2"), NULL);
    assert_eq!(c(&mut k, "lpos p 9"), NULL);
    assert_eq!(c(&mut k, "lpos p 9 count 1"), "*0\r\n");
    assert_eq!(c(&mut k, "lpos nol 9 count 1"), "*0\r\n");
    assert_eq!(
        c(&mut k, "lpos p 1 rank 0"),
        "-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list\r\n"
    );
    assert_eq!(c(&mut k, "lpos p 1 count -1"), "-ERR COUNT can't be negative\r\n");
    assert_eq!(c(&mut k, "lpos p 1 maxlen -1"), "-ERR MAXLEN can't be negative\r\n");
    assert_eq!(c(&mut k, "lpos p 1 foo"), "-ERR syntax error\r\n");

    c(&mut k, "rpush src a b c");
    assert_eq!(c(&mut k, "lmove src dst left right"), bulk("a"));
    assert_eq!(c(&mut k, "lmove src dst RIGHT LEFT"), bulk("c"));
    assert_eq!(c(&mut k, "lmove src dst up left"), "-ERR syntax error\r\n");
    assert_eq!(c(&mut k, "lrange dst 0 -1"), arr(&["c", "a"]));
    assert_eq!(c(&mut k, "rpoplpush src dst"), bulk("b"));
    assert_eq!(c(&mut k, "rpoplpush src dst"), NULL);
    assert_eq!(c(&mut k, "exists src"), int(0));
    assert_eq!(c(&mut k, "lrange dst 0 -1"), arr(&["b", "c", "a"]));
    // Rotation on the same key.
    assert_eq!(c(&mut k, "lmove dst dst left right"), bulk("b"));
    assert_eq!(c(&mut k, "lrange dst 0 -1"), arr(&["c", "a", "b"]));
    c(&mut k, "set str v");
    assert_eq!(c(&mut k, "lmove dst str left right"), WRONGTYPE);
    assert_eq!(c(&mut k, "llen dst"), int(3));

    assert_eq!(c(&mut k, "lmpop 2 nol dst left count 2"), "*2\r\n$3\r\ndst\r\n*2\r\n$1\r\nc\r\n$1\r\na\r\n");
    assert_eq!(c(&mut k, "lmpop 1 dst right"), "*2\r\n$3\r\ndst\r\n*1\r\n$1\r\nb\r\n");
    assert_eq!(c(&mut k, "lmpop 1 dst right"), NULL_ARR);
    assert_eq!(c(&mut k, "lmpop 0 dst left"), "-ERR numkeys should be greater than 0\r\n");
    assert_eq!(c(&mut k, "lmpop a dst left"), "-ERR numkeys should be greater than 0\r\n");
    assert_eq!(c(&mut k, "lmpop 2 dst left"), "-ERR syntax error\r\n");
    assert_eq!(c(&mut k, "lmpop 1 dst middle"), "-ERR syntax error\r\n");
    assert_eq!(c(&mut k, "lmpop 1 dst left count 0"), "-ERR count should be greater than 0\r\n");
    assert_eq!(c(&mut k, "lmpop 1 dst left count 1 count 2"), "-ERR syntax error\r\n");
    assert_eq!(c(&mut k, "lmpop 1 str left"), WRONGTYPE);
    assert_eq!(c(&mut k, "command getkeys lmpop 2 a b left"), arr(&["a", "b"]));
    assert_eq!(c(&mut k, "command getkeys blmpop 0 2 a b left"), arr(&["a", "b"]));
    assert_eq!(c(&mut k, "command getkeys blpop a b 0"), arr(&["a", "b"]));
    assert_eq!(c(&mut k, "command getkeys blmove a b left left 0"), arr(&["a", "b"]));
}

#[test]
fn list_errors() {
    let s = Server::start();
    let mut k = s.conn();
    c(&mut k, "set str v");
    c(&mut k, "rpush l a");
    for cmd in [
        "lpush str a",
        "rpushx str a",
        "lpop str",
        "rpop str 2",
        "llen str",
        "lrange str 0 1",
        "lindex str 0",
        "lset str 0 a",
        "linsert str before a b",
        "lrem str 0 a",
        "ltrim str 0 1",
        "lpos str a",
        "rpoplpush str l",
        "rpoplpush l str",
        "blpop str 0",
        "brpoplpush str l 0",
        "blmpop 0 1 str left",
    ] {
        assert_eq!(c(&mut k, cmd), WRONGTYPE, "{}", cmd);
    }
    assert_eq!(c(&mut k, "lrange l a 1"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(c(&mut k, "lindex l x"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(c(&mut k, "lset l x a"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(c(&mut k, "lrem l x a"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(c(&mut k, "lpop l -1"), "-ERR value is out of range, must be positive\r\n");
    assert_eq!(c(&mut k, "lpop l x"), "-ERR value is out of range, must be positive\r\n");
    assert_eq!(c(&mut k, "lpop l 1 2"), "-ERR wrong number of arguments for 'lpop' command\r\n");
    assert_eq!(c(&mut k, "lpush l"), "-ERR wrong number of arguments for 'lpush' command\r\n");
    assert_eq!(c(&mut k, "blpop l"), "-ERR wrong number of arguments for 'blpop' command\r\n");
    assert_eq!(c(&mut k, "blmpop 1 1"), "-ERR wrong number of arguments for 'blmpop' command\r\n");
    assert_eq!(c(&mut k, "lmove a b c"), "-ERR wrong number of arguments for 'lmove' command\r\n");
    assert_eq!(c(&mut k, "blpop nol -1"), "-ERR timeout is negative\r\n");
    assert_eq!(c(&mut k, "blpop nol abc"), "-ERR timeout is not a float or out of range\r\n");
    assert_eq!(c(&mut k, "blpop nol inf"), "-ERR timeout is negative\r\n");
    assert_eq!(c(&mut k, "blmove nol l left right -1"), "-ERR timeout is negative\r\n");
    assert_eq!(c(&mut k, "blmove nol l foo right 1"), "-ERR syntax error\r\n");
    assert_eq!(c(&mut k, "brpoplpush nol l x"), "-ERR timeout is not a float or out of range\r\n");
    assert_eq!(c(&mut k, "blmpop x 1 nol left"), "-ERR timeout is not a float or out of range\r\n");
    assert_eq!(c(&mut k, "blmpop 0 0 nol left"), "-ERR numkeys should be greater than 0\r\n");
    assert_eq!(c(&mut k, "blmpop 0 1 nol left count -1"), "-ERR count should be greater than 0\r\n");
}

#[test]
fn list_immediate_blocking_and_resp3() {
    let s = Server::start();
    let mut k = s.conn();
    c(&mut k, "rpush l a b c");
    assert_eq!(c(&mut k, "blpop nol l 0"), arr(&["l", "a"]));
    assert_eq!(c(&mut k, "brpop l 0"), arr(&["l", "c"]));
    assert_eq!(c(&mut k, "blmove l d left right 0"), bulk("b"));
    assert_eq!(c(&mut k, "brpoplpush d l 0"), bulk("b"));
    c(&mut k, "rpush l x y");
    assert_eq!(c(&mut k, "blmpop 0 2 nol l right count 5"), "*2\r\n$1\r\nl\r\n*3\r\n$1\r\ny\r\n$1\r\nx\r\n$1\r\nb\r\n");

    assert_eq!(c(&mut k, "hello 3").chars().next(), Some('%'));
    assert_eq!(c(&mut k, "lpop nol"), "_\r\n");
    assert_eq!(c(&mut k, "lpop nol 3"), "_\r\n");
    assert_eq!(c(&mut k, "lindex nol 0"), "_\r\n");
    assert_eq!(c(&mut k, "lpos nol a"), "_\r\n");
    assert_eq!(c(&mut k, "lmpop 1 nol left"), "_\r\n");
    assert_eq!(c(&mut k, "rpoplpush nol x"), "_\r\n");
    assert_eq!(c(&mut k, "blpop nol 0.01"), "_\r\n");
    assert_eq!(c(&mut k, "blmove nol x left left 0.01"), "_\r\n");
    assert_eq!(c(&mut k, "blmpop 0.01 1 nol left"), "_\r\n");
    c(&mut k, "rpush l a");
    assert_eq!(c(&mut k, "blpop l 0"), arr(&["l", "a"]));
}

#[test]
fn blocking_timeouts_and_multi() {
    let s = Server::start();
    let mut k = s.conn();
    // Fractional timeout.
    let t = Instant::now();
    assert_eq!(c(&mut k, "blpop nol 0.2"), NULL_ARR);
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(190) && e < Duration::from_millis(1500), "{:?}", e);
    let t = Instant::now();
    // A timed-out blocked list client gets a null array, BRPOPLPUSH/BLMOVE too...
    assert_eq!(c(&mut k, "brpoplpush nol x 0.1"), NULL_ARR);
    assert_eq!(c(&mut k, "blmove nol x left left 0.01"), NULL_ARR);
    assert!(t.elapsed() >= Duration::from_millis(90));
    assert_eq!(c(&mut k, "blmpop 0.05 1 nol left"), NULL_ARR);

    // Inside MULTI a blocking command never blocks: it replies at once (BLMOVE and
    // BRPOPLPUSH with a null bulk there).
    assert_eq!(c(&mut k, "multi"), "+OK\r\n");
    assert_eq!(c(&mut k, "blpop nol 0"), "+QUEUED\r\n");
    assert_eq!(c(&mut k, "blmove nol x left left 0"), "+QUEUED\r\n");
    assert_eq!(c(&mut k, "brpoplpush nol x 0"), "+QUEUED\r\n");
    assert_eq!(c(&mut k, "blmpop 0 1 nol left"), "+QUEUED\r\n");
    let t = Instant::now();
    assert_eq!(c(&mut k, "exec"), "*4\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n");
    assert!(t.elapsed() < Duration::from_millis(500));
    assert!(c(&mut k, "info clients").contains("blocked_clients:0"));
}

#[test]
fn blocking_fifo_order() {
    let s = Server::start();
    let mut pusher = s.conn();
    let mut waiters: Vec<Conn> = (0..4).map(|_| s.conn()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        w.send(&["blpop", "q", "other", "5"]);
        // Arrival order is the order in which the server saw the commands.
        let want = format!("blocked_clients:{}", i + 1);
        let t = Instant::now();
        while !c(&mut pusher, "info clients").contains(&want) {
            assert!(t.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // One element: only the first waiter is served, and at once (LLEN right after is 0).
    assert_eq!(c(&mut pusher, "rpush q a"), int(1));
    assert_eq!(c(&mut pusher, "llen q"), int(0));
    assert_eq!(waiters[0].read(), arr(&["q", "a"]));
    // Three elements in one push: the next three, in arrival order.
    assert_eq!(c(&mut pusher, "rpush q b c d"), int(3));
    assert_eq!(c(&mut pusher, "llen q"), int(0));
    assert_eq!(waiters[1].read(), arr(&["q", "b"]));
    assert_eq!(waiters[2].read(), arr(&["q", "c"]));
    assert_eq!(waiters[3].read(), arr(&["q", "d"]));
    assert!(c(&mut pusher, "info clients").contains("blocked_clients:0"));
    // A waiter on another key of the same list: served by that key too.
    waiters[0].send(&["brpop", "q1", "q2", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    c(&mut pusher, "lpush q2 z");
    assert_eq!(waiters[0].read(), arr(&["q2", "z"]));
}

#[test]
fn blocking_disconnect_loses_nothing() {
    let s = Server::start();
    let mut pusher = s.conn();
    let mut a = s.conn();
    let mut b = s.conn();
    a.send(&["blpop", "q", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    b.send(&["blpop", "q", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(c(&mut pusher, "info clients").contains("blocked_clients:2"));
    a.w.shutdown(std::net::Shutdown::Both).unwrap();
    drop(a);
    let t = Instant::now();
    while !c(&mut pusher, "info clients").contains("blocked_clients:1") {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(c(&mut pusher, "rpush q x y"), int(2));
    assert_eq!(b.read(), arr(&["q", "x"]));
    assert_eq!(c(&mut pusher, "lrange q 0 -1"), arr(&["y"]));

    // CLIENT KILL of a blocked client also leaves the element for the next one.
    c(&mut pusher, "del q");
    let mut k1 = s.conn();
    let id1 = c(&mut k1, "client id");
    k1.send(&["blpop", "q", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    let id1 = id1.trim_start_matches(':').trim_end().to_string();
    assert_eq!(c(&mut pusher, &format!("client kill id {}", id1)), int(1));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c(&mut pusher, "rpush q z"), int(1));
    assert_eq!(c(&mut pusher, "lrange q 0 -1"), arr(&["z"]));
}

#[test]
fn blocking_wakeup_after_exec_only() {
    let s = Server::start();
    let mut w = s.conn();
    let mut m = s.conn();
    w.send(&["blpop", "q", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c(&mut m, "multi"), "+OK\r\n");
    assert_eq!(c(&mut m, "rpush q a"), "+QUEUED\r\n");
    // Queued, not run: the waiter is still blocked.
    assert!(w.silent_for(200));
    assert_eq!(c(&mut m, "exec"), "*1\r\n:1\r\n");
    assert_eq!(w.read(), arr(&["q", "a"]));

    // A push and a pop in the same transaction: nothing is left, the waiter keeps waiting.
    w.send(&["blpop", "q", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    c(&mut m, "multi");
    c(&mut m, "rpush q b");
    c(&mut m, "lpop q");
    assert_eq!(c(&mut m, "exec"), format!("*2\r\n:1\r\n{}", bulk("b")));
    assert!(w.silent_for(200));
    c(&mut m, "rpush q c");
    assert_eq!(w.read(), arr(&["q", "c"]));

    // A push to the same key name in another database does not serve it.
    w.send(&["blpop", "q", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    c(&mut m, "select 1");
    c(&mut m, "rpush q other");
    assert!(w.silent_for(200));
    c(&mut m, "select 0");
    c(&mut m, "rpush q mine");
    assert_eq!(w.read(), arr(&["q", "mine"]));
}

#[test]
fn blocking_move_chain_and_unblock() {
    let s = Server::start();
    let mut a = s.conn();
    let mut b = s.conn();
    let mut p = s.conn();
    let id = c(&mut b, "client id").trim_start_matches(':').trim_end().to_string();
    a.send(&["blmove", "src", "dst", "left", "right", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    b.send(&["blpop", "dst", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    c(&mut p, "rpush src v");
    // A's move makes dst ready in the same pass, which serves B.
    assert_eq!(a.read(), bulk("v"));
    assert_eq!(b.read(), arr(&["dst", "v"]));
    assert_eq!(c(&mut p, "exists src dst"), int(0));

    // BLMPOP served later pops up to COUNT.
    b.send(&["blmpop", "0", "2", "x", "y", "right", "count", "2"]);
    std::thread::sleep(Duration::from_millis(100));
    c(&mut p, "rpush y 1 2 3");
    assert_eq!(b.read(), "*2\r\n$1\r\ny\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n");
    assert_eq!(c(&mut p, "lrange y 0 -1"), arr(&["1"]));

    // A waiter whose list key gets a set value stays blocked.
    b.send(&["blpop", "k", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    c(&mut p, "sadd k m");
    assert!(b.silent_for(200));
    c(&mut p, "del k");

    // CLIENT UNBLOCK: TIMEOUT gives the timeout reply, ERROR the UNBLOCKED error.
    // b is still blocked on k: a request sent now waits behind it.
    b.send(&["client", "id"]);
    assert!(b.silent_for(100));
    assert_eq!(c(&mut p, &format!("client unblock {} timeout", id)), int(1));
    assert_eq!(b.read(), NULL_ARR);
    assert_eq!(b.read(), format!(":{}\r\n", id));
    b.send(&["brpoplpush", "k", "z", "0"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c(&mut p, &format!("client unblock {} error", id)), int(1));
    assert_eq!(b.read(), "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    assert_eq!(c(&mut p, &format!("client unblock {}", id)), int(0));
}

#[test]
fn set_commands() {
    let s = Server::start();
    let mut k = s.conn();
    assert_eq!(c(&mut k, "sadd i 3 1 2 2"), int(3));
    assert_eq!(c(&mut k, "object encoding i"), bulk("intset"));
    assert_eq!(c(&mut k, "smembers i"), arr(&["1", "2", "3"]));
    assert_eq!(c(&mut k, "sadd i a"), int(1));
    assert_eq!(c(&mut k, "object encoding i"), bulk("hashtable"));
    assert_eq!(c(&mut k, "srem i 1 7 a"), int(2));
    assert_eq!(c(&mut k, "object encoding i"), bulk("hashtable"));
    assert_eq!(c(&mut k, "sismember i 2"), int(1));
    assert_eq!(c(&mut k, "sismember i 9"), int(0));
    assert_eq!(c(&mut k, "sismember nos 9"), int(0));
    assert_eq!(c(&mut k, "smismember i 2 9 3"), "*3\r\n:1\r\n:0\r\n:1\r\n");
    assert_eq!(c(&mut k, "smismember nos 2"), "*1\r\n:0\r\n");
    assert_eq!(c(&mut k, "scard i"), int(2));
    assert_eq!(c(&mut k, "scard nos"), int(0));
    assert_eq!(c(&mut k, "smembers nos"), "*0\r\n");
    assert_eq!(c(&mut k, "srem i 2 3"), int(2));
    assert_eq!(c(&mut k, "exists i"), int(0));

    // Intset conversion threshold (set-max-intset-entries, default 512).
    let mut args = vec!["sadd".to_string(), "big".to_string()];
    args.extend((0..512).map(|i| i.to_string()));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    assert_eq!(k.cmd(&a), int(512));
    assert_eq!(c(&mut k, "object encoding big"), bulk("intset"));
    assert_eq!(c(&mut k, "sadd big 512"), int(1));
    assert_eq!(c(&mut k, "object encoding big"), bulk("hashtable"));
    assert_eq!(c(&mut k, "sadd h abc"), int(1));
    assert_eq!(c(&mut k, "object encoding h"), bulk("hashtable"));

    // SMOVE.
    c(&mut k, "sadd a 1 2");
    c(&mut k, "set str v");
    assert_eq!(c(&mut k, "smove a b 1"), int(1));
    assert_eq!(c(&mut k, "smove a b 9"), int(0));
    assert_eq!(c(&mut k, "smove nos b 1"), int(0));
    assert_eq!(c(&mut k, "smove str b 1"), WRONGTYPE);
    assert_eq!(c(&mut k, "smove a str 2"), WRONGTYPE);
    assert_eq!(c(&mut k, "smove a a 2"), int(1));
    assert_eq!(c(&mut k, "smove a a 9"), int(0));
    assert_eq!(c(&mut k, "smove a b 2"), int(1));
    assert_eq!(c(&mut k, "exists a"), int(0));
    assert_eq!(c(&mut k, "smembers b"), arr(&["1", "2"]));

    // SPOP / SRANDMEMBER.
    assert_eq!(c(&mut k, "spop nos"), NULL);
    assert_eq!(c(&mut k, "spop nos 3"), "*0\r\n");
    assert_eq!(c(&mut k, "spop b 0"), "*0\r\n");
    assert_eq!(c(&mut k, "spop b -1"), "-ERR value is out of range, must be positive\r\n");
    assert_eq!(c(&mut k, "spop b 1 2"), "-ERR syntax error\r\n");
    assert_eq!(c(&mut k, "spop str"), WRONGTYPE);
    assert_eq!(c(&mut k, "srandmember nos"), NULL);
    assert_eq!(c(&mut k, "srandmember nos 5"), "*0\r\n");
    assert_eq!(c(&mut k, "srandmember b 0"), "*0\r\n");
    assert_eq!(c(&mut k, "srandmember b 10"), arr(&["1", "2"]));
    assert_eq!(c(&mut k, "srandmember b x"), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(c(&mut k, "srandmember b 1 2"), "-ERR syntax error\r\n");
    let r = c(&mut k, "srandmember b -5");
    assert!(r.starts_with("*5\r\n"));
    assert_eq!(r.matches("$1\r\n").count(), 5);
    let one = c(&mut k, "srandmember b");
    assert!(one == bulk("1") || one == bulk("2"));
    assert_eq!(c(&mut k, "scard b"), int(2));
    let p = c(&mut k, "spop b");
    assert!(p == bulk("1") || p == bulk("2"));
    assert_eq!(c(&mut k, "scard b"), int(1));
    c(&mut k, "sadd b 5 6 7");
    assert_eq!(c(&mut k, "spop b 2").matches("\r\n$").count(), 2);
    assert_eq!(c(&mut k, "scard b"), int(2));
    assert!(c(&mut k, "spop b 10").starts_with("*2\r\n"));
    assert_eq!(c(&mut k, "exists b"), int(0));
    assert_eq!(c(&mut k, "spop b"), NULL);
}

#[test]
fn set_algebra() {
    let s = Server::start();
    let mut k = s.conn();
    c(&mut k, "sadd a 1 2 3 4 5");
    c(&mut k, "sadd b 3 4 5 6 7");
    c(&mut k, "sadd c 5 6 7 8");
    c(&mut k, "set str v");
    assert_eq!(c(&mut k, "sinter a b"), arr(&["3", "4", "5"]));
    assert_eq!(c(&mut k, "sinter a b c"), arr(&["5"]));
    assert_eq!(c(&mut k, "sinter a nos"), "*0\r\n");
    assert_eq!(c(&mut k, "sinter a str"), WRONGTYPE);
    assert_eq!(c(&mut k, "sinter nos str"), WRONGTYPE);
    assert_eq!(c(&mut k, "sintercard 2 a b"), int(3));
    assert_eq!(c(&mut k, "sintercard 2 a b limit 2"), int(2));
    assert_eq!(c(&mut k, "sintercard 2 a b limit 0"), int(3));
    assert_eq!(c(&mut k, "sintercard 2 a nos"), int(0));
    assert_eq!(c(&mut k, "sintercard 2 a b limit -1"), "-ERR LIMIT can't be negative\r\n");
    assert_eq!(c(&mut k, "sintercard 0 a"), "-ERR numkeys should be greater than 0\r\n");
    assert_eq!(c(&mut k, "sintercard 3 a b"), "-ERR Number of keys can't be greater than number of args\r\n");
    assert_eq!(c(&mut k, "sintercard 2 a b foo"), "-ERR syntax error\r\n");
    assert_eq!(c(&mut k, "sintercard 1 str"), WRONGTYPE);
    assert_eq!(c(&mut k, "command getkeys sintercard 2 a b limit 1"), arr(&["a", "b"]));

    assert_eq!(c(&mut k, "sinterstore d a b"), int(3));
    assert_eq!(c(&mut k, "smembers d"), arr(&["3", "4", "5"]));
    assert_eq!(c(&mut k, "object encoding d"), bulk("intset"));
    assert_eq!(c(&mut k, "sinterstore d a nos"), int(0));
    assert_eq!(c(&mut k, "exists d"), int(0));
    c(&mut k, "set d x");
    c(&mut k, "expire d 100");
    assert_eq!(c(&mut k, "sinterstore d a b"), int(3));
    assert_eq!(c(&mut k, "type d"), "+set\r\n");
    assert_eq!(c(&mut k, "ttl d"), int(-1));
    assert_eq!(c(&mut k, "sinterstore d a str"), WRONGTYPE);

    let u = c(&mut k, "sunion a b c");
    assert!(u.starts_with("*8\r\n"));
    assert_eq!(c(&mut k, "sunion nos nos2"), "*0\r\n");
    assert_eq!(c(&mut k, "sunion a str"), WRONGTYPE);
    assert_eq!(c(&mut k, "sunionstore u a b"), int(7));
    assert_eq!(c(&mut k, "sunionstore u nos"), int(0));
    assert_eq!(c(&mut k, "exists u"), int(0));
    assert_eq!(c(&mut k, "sdiff a b"), arr(&["1", "2"]));
    assert_eq!(c(&mut k, "sdiff a b c"), arr(&["1", "2"]));
    assert_eq!(c(&mut k, "sdiff nos a"), "*0\r\n");
    assert_eq!(c(&mut k, "sdiff a nos"), arr(&["1", "2", "3", "4", "5"]));
    assert_eq!(c(&mut k, "sdiffstore df b a c"), int(0));
    assert_eq!(c(&mut k, "sdiffstore df a b"), int(2));
    assert_eq!(c(&mut k, "smembers df"), arr(&["1", "2"]));

    // SSCAN.
    assert_eq!(c(&mut k, "sscan a 0"), format!("*2\r\n$1\r\n0\r\n{}", arr(&["1", "2", "3", "4", "5"])));
    assert_eq!(c(&mut k, "sscan a 0 match [12]"), format!("*2\r\n$1\r\n0\r\n{}", arr(&["1", "2"])));
    assert_eq!(c(&mut k, "sscan nos 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
    assert_eq!(c(&mut k, "sscan a x"), "-ERR invalid cursor\r\n");
    assert_eq!(c(&mut k, "sscan a 0 count 0"), "-ERR syntax error\r\n");
    assert_eq!(c(&mut k, "sscan a 0 type string"), "-ERR syntax error\r\n");
    assert_eq!(c(&mut k, "sscan str 0"), WRONGTYPE);
    let mut args = vec!["sadd".to_string(), "h".to_string()];
    args.extend((0..100).map(|i| format!("m{}", i)));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    k.cmd(&a);
    let mut cursor = "0".to_string();
    let mut seen = std::collections::HashSet::new();
    loop {
        k.send(&["sscan", "h", &cursor, "count", "7"]);
        let r = k.read();
        let lines: Vec<&str> = r.split("\r\n").collect();
        cursor = lines[2].to_string();
        for l in lines.iter().skip(4) {
            if l.starts_with('m') {
                seen.insert(l.to_string());
            }
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 100);

    // RESP3: set-valued replies are sets.
    c(&mut k, "hello 3");
    assert_eq!(c(&mut k, "smembers df"), "~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert_eq!(c(&mut k, "smembers nos"), "~0\r\n");
    assert_eq!(c(&mut k, "sinter a nos"), "~0\r\n");
    assert_eq!(c(&mut k, "sdiff a b"), "~2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    assert!(c(&mut k, "sunion a b").starts_with("~7\r\n"));
    assert_eq!(c(&mut k, "spop nos"), "_\r\n");
    assert_eq!(c(&mut k, "spop nos 2"), "~0\r\n");
    assert!(c(&mut k, "spop df 1").starts_with("~1\r\n"));
    assert_eq!(c(&mut k, "srandmember nos"), "_\r\n");
    assert_eq!(c(&mut k, "srandmember nos 2"), "*0\r\n");
    assert!(c(&mut k, "srandmember a 2").starts_with("*2\r\n"));
    assert_eq!(c(&mut k, "smismember a 1 9"), "*2\r\n:1\r\n:0\r\n");
}

#[test]
fn keyspace_events() {
    let s = Server::start();
    let mut k = s.conn();
    let mut sub = s.conn();
    c(&mut k, "config set notify-keyspace-events El$sg");
    assert!(c(&mut sub, "psubscribe __keyevent@0__:*").starts_with("*3\r\n"));
    for cmd in [
        "rpush l a b c",
        "lpush l x",
        "lpop l",
        "rpop l 2",
        "linsert l before a q",
        "lset l 0 w",
        "lrem l 0 w",
        "ltrim l 0 0",
        "lmove l l2 left right",
        "sadd s 1 2 3",
        "srem s 1",
        "smove s t 2",
        "spop s",
        "sadd a 1",
        "sinterstore d a a",
        "sunionstore d a a",
        "sdiffstore d a a",
    ] {
        c(&mut k, cmd);
    }
    let mut events = Vec::new();
    loop {
        if sub.silent_for(300) {
            break;
        }
        let m = sub.read();
        let parts: Vec<&str> = m.split("\r\n").collect();
        let event = parts[6].trim_start_matches("__keyevent@0__:").to_string();
        events.push(format!("{} {}", event, parts[8]));
    }
    let want = [
        "rpush l",
        "lpush l",
        "lpop l",
        "rpop l",
        "linsert l",
        "lset l",
        "lrem l",
        "ltrim l",
        "rpush l2",
        "lpop l",
        "del l",
        "sadd s",
        "srem s",
        "srem s",
        "sadd t",
        "spop s",
        "del s",
        "sadd a",
        "sinterstore d",
        "sunionstore d",
        "del d",
    ];
    assert_eq!(events, want);
}
