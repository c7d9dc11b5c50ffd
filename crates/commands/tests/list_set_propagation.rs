//! What list and set writes propagate (the argv AOF/replication will see), including blocked
//! pops served later, which Redis propagates as the plain pop.

use ferrocache_node::blocking::{WaitState, Waiter};
use ferrocache_node::client::{Client, ClientShared, Then};
use ferrocache_node::config::Config;
use ferrocache_node::node::{now_ms, EffectSink};
use ferrocache_node::table::table;
use ferrocache_node::{execute, Node};
use ferrocache_protocol::resp::{OwnedArgs, ReplyBuf};
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Default)]
struct Sink(Mutex<Vec<String>>);

impl EffectSink for Sink {
    fn propagate(&self, _db: usize, argv: &[&[u8]]) {
        let v: Vec<String> = argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        self.0.lock().push(v.join(" "));
    }
}

fn setup() -> (Arc<Node>, Arc<Sink>) {
    let srv = Node::new(Config::new(None), 1, ferrocache_commands::registry());
    let sink = Arc::new(Sink::default());
    srv.add_sink(sink.clone());
    (srv, sink)
}

fn client(id: u64) -> Client {
    let shared = ClientShared::new(id, format!("127.0.0.1:{}", 1000 + id), "127.0.0.1:6379".into(), now_ms());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::mem::forget(rx);
    let mut c = Client::new(shared, tx);
    c.authenticated = true;
    c
}

fn run(srv: &Arc<Node>, c: &mut Client, line: &str) -> String {
    run_then(srv, c, line).0
}

fn run_then(srv: &Arc<Node>, c: &mut Client, line: &str) -> (String, Option<Box<Then>>) {
    let parts: Vec<&str> = line.split(' ').collect();
    let args = OwnedArgs::from_slices(&parts);
    let mut out = ReplyBuf::new(false);
    let then = execute(srv, c, args.args(), &mut out);
    (String::from_utf8_lossy(&out.buf).into_owned(), then)
}

/// Block `c` on `line` the way the server's connection task does.
fn block(srv: &Arc<Node>, c: &mut Client, line: &str) -> Arc<Waiter> {
    let (reply, then) = run_then(srv, c, line);
    assert_eq!(reply, "");
    let Some(Then::Block(req)) = then.map(|t| *t) else { panic!("not blocked") };
    let parts: Vec<&str> = line.split(' ').collect();
    let args = OwnedArgs::from_slices(&parts);
    let cmd = table().lookup(parts[0].as_bytes()).unwrap();
    let real = std::mem::replace(c, client(999));
    let w = Arc::new(Waiter {
        id: real.id,
        db: req.db,
        keys: req.keys.clone(),
        cmd,
        args,
        resp3: real.resp3,
        client: Mutex::new(Some(real)),
        null_array_on_timeout: req.null_array_on_timeout,
        state: Mutex::new(WaitState::Waiting),
        notify: tokio::sync::Notify::new(),
    });
    srv.blocking().register(&w);
    srv.blocking().serve(srv);
    w
}

fn served(w: &Waiter) -> Option<String> {
    w.take_served().map(|r| String::from_utf8_lossy(&r).into_owned())
}

#[test]
fn blocked_pops_propagate_as_plain_pops() {
    let (srv, sink) = setup();
    let mut a = client(1);
    let mut b = client(2);
    let mut p = client(3);
    let wa = block(&srv, &mut a, "blpop q 0");
    let wb = block(&srv, &mut b, "blmove q dst right left 0");
    assert!(served(&wa).is_none());
    assert_eq!(srv.blocking().blocked_clients(), 2);
    assert_eq!(run(&srv, &mut p, "rpush q x y"), ":2\r\n");
    assert_eq!(served(&wa).unwrap(), "*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
    assert_eq!(served(&wb).unwrap(), "$1\r\ny\r\n");
    assert_eq!(srv.blocking().blocked_clients(), 0);
    assert_eq!(*sink.0.lock(), vec!["rpush q x y", "LPOP q", "LMOVE q dst right left"]);
    sink.0.lock().clear();

    let wc = block(&srv, &mut a, "blmpop 0 2 n1 n2 left count 5");
    let wd = block(&srv, &mut b, "brpoplpush n2 dst 0");
    run(&srv, &mut p, "lpush n2 1 2 3");
    assert_eq!(served(&wc).unwrap(), "*2\r\n$2\r\nn2\r\n*3\r\n$1\r\n3\r\n$1\r\n2\r\n$1\r\n1\r\n");
    assert!(served(&wd).is_none());
    assert_eq!(*sink.0.lock(), vec!["lpush n2 1 2 3", "LPOP n2 3"]);
    run(&srv, &mut p, "rpush n2 z");
    assert_eq!(served(&wd).unwrap(), "$1\r\nz\r\n");
    assert_eq!(sink.0.lock().last().unwrap(), "RPOPLPUSH n2 dst");
    sink.0.lock().clear();

    // Served at once: the same rewriting.
    run(&srv, &mut p, "rpush q a b c d");
    run(&srv, &mut p, "blpop q 0");
    run(&srv, &mut p, "brpop q 0");
    run(&srv, &mut p, "blmpop 0 1 q left count 9");
    run(&srv, &mut p, "rpush q a");
    run(&srv, &mut p, "lmpop 1 q right");
    assert_eq!(*sink.0.lock(), vec!["rpush q a b c d", "LPOP q", "RPOP q", "LPOP q 2", "rpush q a", "RPOP q 1"]);
    // Nothing to serve and timeout replies propagate nothing.
    sink.0.lock().clear();
    run(&srv, &mut p, "multi");
    run(&srv, &mut p, "blpop q 0");
    assert_eq!(run(&srv, &mut p, "exec"), "*1\r\n*-1\r\n");
    assert!(sink.0.lock().is_empty());
}

#[test]
fn set_writes_propagate_as_redis_does() {
    let (srv, sink) = setup();
    let mut p = client(1);
    run(&srv, &mut p, "sadd s a");
    run(&srv, &mut p, "spop s");
    run(&srv, &mut p, "sadd s 1 2 3 4 5 6 7 8 9 10");
    run(&srv, &mut p, "spop s 2");
    run(&srv, &mut p, "spop s 100");
    run(&srv, &mut p, "sadd s 1");
    run(&srv, &mut p, "srem s 9");
    run(&srv, &mut p, "spop s 0");
    let got = sink.0.lock().clone();
    assert_eq!(got[0], "sadd s a");
    assert_eq!(got[1], "SREM s a");
    assert_eq!(got[2], "sadd s 1 2 3 4 5 6 7 8 9 10");
    assert!(got[3].starts_with("SREM s ") && got[4].starts_with("SREM s "));
    assert_eq!(got[5], "DEL s");
    assert_eq!(got[6], "sadd s 1");
    // SREM of a missing member and SPOP 0 change nothing: not propagated.
    assert_eq!(got.len(), 7);
}
