//! Tests. Transcripts marked "verified" were replayed against a real
//! memcached 1.6.18 (`memcached -p 11311 -U 0`, default settings) with python
//! sockets; the expected bytes are what that server sent.

use std::collections::HashMap;

use proptest::prelude::*;

use super::binary::{self, opcode, BinaryCommand, BinaryStoreMode, Status};
use super::meta::{self, MetaArithResult, MetaDeleteStatus, MetaItem, MetaStoreStatus};
use super::text::{self, ShutdownMode};
use super::*;

// ---------------------------------------------------------------------------
// A tiny executor so transcripts can be compared byte for byte.
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Mini {
    map: HashMap<Vec<u8>, (u32, Vec<u8>)>,
}

impl Mini {
    fn exec(&mut self, req: TextRequest<'_>, out: &mut Vec<u8>) -> bool {
        match req {
            TextRequest::Store { key, flags, data, noreply, .. } => {
                self.map.insert(key.to_vec(), (flags, data.to_vec()));
                TextReply::Stored.encode(out, noreply);
            }
            TextRequest::Get { kind, keys, .. } => {
                for k in keys {
                    if let Some((f, v)) = self.map.get(k) {
                        let cas = kind.returns_cas().then_some(1);
                        text::encode_value(out, k, *f, v, cas);
                    }
                }
                text::encode_end(out);
            }
            TextRequest::Delete { key, noreply } => {
                let r = if self.map.remove(key).is_some() { TextReply::Deleted } else { TextReply::NotFound };
                r.encode(out, noreply);
            }
            TextRequest::Arithmetic { noreply, .. } | TextRequest::Touch { noreply, .. } => {
                TextReply::NotFound.encode(out, noreply)
            }
            TextRequest::FlushAll { noreply, .. }
            | TextRequest::Verbosity { noreply, .. }
            | TextRequest::CacheMemlimit { noreply, .. } => TextReply::Ok.encode(out, noreply),
            TextRequest::Version => text::encode_version(out, b"1.6.18"),
            TextRequest::Quit => return true,
            TextRequest::Shutdown { .. } => text::encode_line(out, text::SHUTDOWN_NOT_ENABLED.as_bytes(), false),
            TextRequest::Stats { args } => {
                if args.first() == Some(&&b"reset"[..]) {
                    TextReply::Reset.encode(out, false)
                } else {
                    text::encode_end(out)
                }
            }
            TextRequest::Admin { .. } => TextReply::Error.encode(out, false),
            TextRequest::Meta(m) => match m {
                MetaRequest::Noop => meta::encode_mn(out),
                MetaRequest::Get(a) => match self.map.get(&a.key[..]) {
                    None => meta::encode_mg_miss(out, &a),
                    Some((f, v)) => {
                        let item = MetaItem {
                            key: &a.key,
                            key_binary: a.flags.base64_key,
                            client_flags: *f,
                            cas: 1,
                            ttl_remaining: None,
                            last_access: 0,
                            fetched: false,
                            token_sent: false,
                            stale: false,
                            win: false,
                        };
                        meta::encode_mg_hit(out, &a, &item, v)
                    }
                },
                MetaRequest::Set { args, data, .. } => {
                    self.map.insert(args.key.to_vec(), (args.flags.client_flags.unwrap_or(0), data.to_vec()));
                    meta::encode_ms(out, &args, MetaStoreStatus::Stored, 24)
                }
                MetaRequest::Delete(a) => {
                    let st = if self.map.remove(&a.key[..]).is_some() {
                        MetaDeleteStatus::Deleted
                    } else {
                        MetaDeleteStatus::NotFound
                    };
                    meta::encode_md(out, &a, st)
                }
                MetaRequest::Arithmetic { args, .. } => meta::encode_ma(out, &args, MetaArithResult::NotFound),
                MetaRequest::Debug { .. } => meta::encode_en(out),
            },
        }
        false
    }
}

/// Feed `input` through parse_text like a connection loop would (whole
/// input available at once). Returns (output, closed).
fn run_text(input: &[u8]) -> (Vec<u8>, bool) {
    let limits = Limits::default();
    let mut mini = Mini::default();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut swallow: u64 = 0;
    loop {
        let n = (swallow as usize).min(input.len() - pos);
        pos += n;
        swallow -= n as u64;
        if swallow > 0 || pos >= input.len() {
            return (out, false);
        }
        match parse_text(&input[pos..], &limits) {
            Ok(None) => return (out, false),
            Ok(Some((req, used))) => {
                pos += used;
                if mini.exec(req, &mut out) {
                    return (out, true);
                }
            }
            Err(e) => {
                e.encode(&mut out);
                pos += e.consumed;
                swallow = e.swallow;
                if e.close {
                    return (out, true);
                }
            }
        }
    }
}

fn t(input: &[u8], expected: &[u8]) {
    let (out, _) = run_text(input);
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(expected),
        "input {:?}",
        String::from_utf8_lossy(input)
    );
}

fn one(input: &[u8]) -> TextRequest<'_> {
    match parse_text(input, &Limits::default()) {
        Ok(Some((r, used))) => {
            assert_eq!(used, input.len());
            r
        }
        other => panic!("{:?} -> {:?}", String::from_utf8_lossy(input), other),
    }
}

fn perr(input: &[u8]) -> TextError<'_> {
    match parse_text(input, &Limits::default()) {
        Err(e) => e,
        other => panic!("{:?} -> {:?}", String::from_utf8_lossy(input), other),
    }
}

// ---------------------------------------------------------------------------
// Text protocol transcripts (verified against memcached 1.6.18)
// ---------------------------------------------------------------------------

#[test]
fn verified_storage_errors() {
    t(b"version\r\n", b"VERSION 1.6.18\r\n");
    // data block too long: bytes+2 consumed, rest parsed as a command
    t(b"set k 0 0 3\r\nabcde\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    t(b"set k 1 0 1\r\nhab\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    t(b"set k 1 0 1\r\nh\nget k\r\n", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    // noreply hides the bad data chunk, but not the following ERROR
    t(b"set k 0 0 1 noreply\r\nhab\r\nget k\r\n", b"ERROR\r\nEND\r\n");
    // negative length: no swallow, data line becomes a command
    t(b"set k 0 0 -1\r\nab\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n");
    // noreply set before the number parse: error suppressed
    t(b"set k abc 0 1 noreply\r\nx\r\n", b"ERROR\r\n");
    t(b"set k -1 0 1\r\nh\r\n", b"CLIENT_ERROR bad command line format\r\nERROR\r\n");
    // C number quirks
    t(b"set k 0 0 4294967301\r\nhello\r\n", b"STORED\r\n");
    t(b"set k 4294967296 0 1\r\nh\r\nget k\r\n", b"STORED\r\nVALUE k 0 1\r\nh\r\nEND\r\n");
    t(b"set k -0 0 1\r\nh\r\nget k\r\n", b"STORED\r\nVALUE k 0 1\r\nh\r\nEND\r\n");
    t(b"set k +5 0 1\r\nh\r\nget k\r\n", b"STORED\r\nVALUE k 5 1\r\nh\r\nEND\r\n");
    t(b"set k 1\t 0 1\r\nh\r\nget k\r\n", b"STORED\r\nVALUE k 1 1\r\nh\r\nEND\r\n");
    t(b"set k 1\tx 0 1\r\nh\r\nget k\r\n", b"STORED\r\nVALUE k 1 1\r\nh\r\nEND\r\n");
    // extra 6th token is ignored unless it is noreply
    t(b"set k 1 0 1 junk\r\nh\r\nget k\r\n", b"STORED\r\nVALUE k 1 1\r\nh\r\nEND\r\n");
    // bare \n line endings, repeated spaces
    t(b"set k 1 0 1\nh\r\nget k\n", b"STORED\r\nVALUE k 1 1\r\nh\r\nEND\r\n");
    t(b"set  k  1  0  1 \r\nh\r\nget k\r\n", b"STORED\r\nVALUE k 1 1\r\nh\r\nEND\r\n");
    // NUL truncates the command line
    t(b"get a\0b\r\n", b"END\r\n");
    let long = vec![b'k'; 251];
    let ok = vec![b'k'; 250];
    t(&[b"set ", &long[..], b" 0 0 1\r\nh\r\n"].concat(), b"CLIENT_ERROR bad command line format\r\nERROR\r\n");
    t(&[b"set ", &ok[..], b" 0 0 1\r\nh\r\n"].concat(), b"STORED\r\n");
    t(&[b"get ", &long[..], b"\r\n"].concat(), b"CLIENT_ERROR bad command line format\r\n");
    t(&[b"get k ", &long[..], b"\r\n"].concat(), b"CLIENT_ERROR bad command line format\r\n");
    t(b"cas k 0 0 1\r\n", b"ERROR\r\n");
    t(b"cas k 0 0 1 x\r\n", b"CLIENT_ERROR bad command line format\r\n");
    t(b"cas k 0 0 1 noreply\r\nmn\r\n", b"MN\r\n");
    t(b"cas k 0 0 1 1 noreply\r\nmn\r\nmn\r\n", b"ERROR\r\nMN\r\n");
    t(b"set k 0 0\r\n", b"ERROR\r\n");
}

#[test]
fn verified_too_large_swallows() {
    // boundaries verified: key "k" flags 0 -> 1048516 ok, 1048517 too large
    let l = Limits::default();
    assert!(!text::item_too_large(&l, 1, 0, 1048516 + 2));
    assert!(text::item_too_large(&l, 1, 0, 1048517 + 2));
    assert!(!text::item_too_large(&l, 1, 5, 1048512 + 2));
    assert!(text::item_too_large(&l, 1, 5, 1048513 + 2));
    let mut input = b"set k 0 0 2000000\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 2_000_002));
    input.extend_from_slice(b"get nothing\r\n");
    t(&input, b"SERVER_ERROR object too large for cache\r\nEND\r\n");
    let mut input = b"set k 0 0 2000000 noreply\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 2_000_002));
    input.extend_from_slice(b"get nothing\r\n");
    t(&input, b"END\r\n");
    // reported before the data arrives, with the swallow count
    let e = perr(b"set k 0 0 2000000\r\n");
    assert_eq!(e.kind, TextErrorKind::TooLarge);
    assert_eq!(e.swallow, 2_000_002);
    assert_eq!(e.consumed, 19);
    assert_eq!(e.unlink_key.as_deref(), Some(&b"k"[..]));
    assert!(perr(b"add k 0 0 2000000\r\n").unlink_key.is_none());
}

#[test]
fn verified_long_lines() {
    // >2048 bytes without newline: close (no reply), unless get/gets
    let (out, closed) = run_text(&[b'x'; 2049]);
    assert!(closed && out.is_empty());
    assert_eq!(parse_text(&[b'x'; 2048], &Limits::default()), Ok(None));
    let mut g = b"get ".to_vec();
    g.extend(std::iter::repeat_n(b'x', 3000));
    assert_eq!(parse_text(&g, &Limits::default()), Ok(None));
    let mut g2 = b"  gets ".to_vec();
    g2.extend(std::iter::repeat_n(b'x', 3000));
    assert_eq!(parse_text(&g2, &Limits::default()), Ok(None));
    let mut gat = b"gat ".to_vec();
    gat.extend(std::iter::repeat_n(b'x', 3000));
    let e = perr(&gat);
    assert!(e.close && e.message().is_none());
    // a complete long line is processed normally
    let mut l = vec![b'x'; 3000];
    l.extend_from_slice(b"\r\n");
    t(&l, b"ERROR\r\n");
    // HTTP requests close the connection
    let (out, closed) = run_text(b"GET / HTTP/1.1\r\n");
    assert!(closed && out.is_empty());
    t(b"\r\n", b"ERROR\r\n");
    t(b"\n", b"ERROR\r\n");
    t(b"get\r\n", b"ERROR\r\n");
}

#[test]
fn verified_multiget_beyond_token_limit() {
    let mut line = b"get".to_vec();
    for i in 0..60 {
        line.extend_from_slice(format!(" k{i}").as_bytes());
    }
    line.extend_from_slice(b" k\r\n");
    match one(&line) {
        TextRequest::Get { keys, kind, .. } => {
            assert_eq!(kind, GetKind::Get);
            assert_eq!(keys.len(), 61);
            assert_eq!(keys[60], b"k");
            assert_eq!(keys[59], b"k59");
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn verified_delete_forms() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"delete k 0", b"NOT_FOUND\r\n"),
        (b"delete k 1", b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"),
        (b"delete k noreply", b""),
        (b"delete k 0 noreply", b""),
        (b"delete k 1 noreply", b""),
        (b"delete k 0 0", b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"),
        (b"delete k x y z", b"ERROR\r\n"),
        (b"delete", b"ERROR\r\n"),
    ];
    for (l, exp) in cases {
        t(&[*l, b"\r\nversion\r\n"].concat(), &[*exp, b"VERSION 1.6.18\r\n"].concat());
    }
    let long = vec![b'k'; 251];
    t(&[b"delete ", &long[..], b" 0\r\n"].concat(), b"CLIENT_ERROR bad command line format\r\n");
}

#[test]
fn verified_misc_commands() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"incr k", b"ERROR\r\n"),
        (b"incr k 1", b"NOT_FOUND\r\n"),
        (b"incr k x", b"CLIENT_ERROR invalid numeric delta argument\r\n"),
        (b"incr k -1", b"CLIENT_ERROR invalid numeric delta argument\r\n"),
        (b"incr k 1 noreply", b""),
        (b"incr k x noreply", b""),
        (b"incr k 1 2 3", b"ERROR\r\n"),
        (b"decr k 1", b"NOT_FOUND\r\n"),
        (b"touch k", b"ERROR\r\n"),
        (b"touch k 10", b"NOT_FOUND\r\n"),
        (b"touch k x", b"CLIENT_ERROR invalid exptime argument\r\n"),
        (b"touch k x noreply", b""),
        (b"flush_all", b"OK\r\n"),
        (b"flush_all 0", b"OK\r\n"),
        (b"flush_all x", b"CLIENT_ERROR invalid exptime argument\r\n"),
        (b"flush_all noreply", b""),
        (b"flush_all 10 noreply", b""),
        (b"flush_all noreply 10", b"CLIENT_ERROR invalid exptime argument\r\n"),
        (b"flush_all 1 2 3", b"ERROR\r\n"),
        (b"flush_all -5", b"OK\r\n"),
        (b"flush_all 0 junk", b"OK\r\n"),
        (b"verbosity", b"ERROR\r\n"),
        (b"verbosity 1", b"OK\r\n"),
        (b"verbosity x", b"CLIENT_ERROR bad command line format\r\n"),
        (b"verbosity noreply", b""),
        (b"verbosity 1 noreply", b""),
        (b"verbosity 1 2", b"OK\r\n"),
        (b"cache_memlimit", b"ERROR\r\n"),
        (b"cache_memlimit 7", b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"),
        (b"cache_memlimit x", b"ERROR\r\n"),
        (b"cache_memlimit 64", b"OK\r\n"),
        (b"cache_memlimit 2000000000", b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"),
        (b"cache_memlimit 7 noreply", b""),
        (b"shutdown", b"ERROR: shutdown not enabled\r\n"),
        (b"shutdown graceful", b"ERROR: shutdown not enabled\r\n"),
        (b"stats reset", b"RESET\r\n"),
        (b"version x y", b"VERSION 1.6.18\r\n"),
        (b"slabs", b"ERROR\r\n"),
        (b"lru", b"ERROR\r\n"),
        (b"misbehave", b"ERROR\r\n"),
        (b"extstore", b"ERROR\r\n"),
        (b"debugtime 1", b"ERROR\r\n"),
        (b"bget k", b"END\r\n"),
        (b"gat 0", b"END\r\n"),
        (b"gat x k", b"CLIENT_ERROR invalid exptime argument\r\n"),
        (b"gats 0 k", b"END\r\n"),
        (b"gets k", b"END\r\n"),
        (b"get k noreply", b"END\r\n"),
        (b"s", b"ERROR\r\n"),
        (b"st", b"ERROR\r\n"),
        (b"xx", b"ERROR\r\n"),
        (b"mz", b"ERROR\r\n"),
        (b"mn foo", b"MN\r\n"),
    ];
    for (l, exp) in cases {
        t(&[*l, b"\r\nmn\r\n"].concat(), &[*exp, b"MN\r\n"].concat());
    }
    let (out, closed) = run_text(b"quit x\r\nmn\r\n");
    assert!(closed && out.is_empty());
}

#[test]
fn parsed_text_structures() {
    assert_eq!(
        one(b"cas key 5 -1 3 99 noreply\r\nabc\r\n"),
        TextRequest::Store {
            command: StoreCommand::Cas,
            key: b"key",
            flags: 5,
            exptime: -1,
            cas: 99,
            data: b"abc",
            noreply: true
        }
    );
    assert_eq!(
        one(b"gats 100 a b\r\n"),
        TextRequest::Get { kind: GetKind::Gats, exptime: Some(100), keys: vec![b"a", b"b"] }
    );
    assert_eq!(
        one(b"decr k 18446744073709551615 noreply\r\n"),
        TextRequest::Arithmetic { incr: false, key: b"k", delta: u64::MAX, noreply: true }
    );
    assert_eq!(one(b"flush_all 10\r\n"), TextRequest::FlushAll { delay: 10, noreply: false });
    assert_eq!(one(b"shutdown now\r\n"), TextRequest::Shutdown { mode: ShutdownMode::Invalid });
    assert_eq!(one(b"stats slabs\r\n"), TextRequest::Stats { args: vec![b"slabs"] });
    assert_eq!(
        one(b"lru_crawler metadump all\r\n"),
        TextRequest::Admin { command: b"lru_crawler", args: vec![b"metadump", b"all"] }
    );
    for (cmd, c) in [
        (&b"set"[..], StoreCommand::Set),
        (b"add", StoreCommand::Add),
        (b"replace", StoreCommand::Replace),
        (b"append", StoreCommand::Append),
        (b"prepend", StoreCommand::Prepend),
    ] {
        let line = [cmd, b" k 1 2 0\r\n\r\n"].concat();
        match one(&line) {
            TextRequest::Store { command, data, .. } => {
                assert_eq!(command, c);
                assert!(data.is_empty());
            }
            r => panic!("{r:?}"),
        }
    }
    // missing data
    assert_eq!(parse_text(b"set k 0 0 5\r\nabc", &Limits::default()), Ok(None));
    assert_eq!(parse_text(b"set k 0 0 5\r\nabcde\r", &Limits::default()), Ok(None));
    assert_eq!(parse_text(b"get k", &Limits::default()), Ok(None));
    assert_eq!(parse_text(b"", &Limits::default()), Ok(None));
}

#[test]
fn text_encoders() {
    let mut o = Vec::new();
    text::encode_value(&mut o, b"k", 5, b"hello", None);
    text::encode_value(&mut o, b"k", 0, b"", Some(42));
    text::encode_end(&mut o);
    text::encode_number(&mut o, 18446744073709551615, false);
    text::encode_number(&mut o, 1, true);
    text::encode_stat(&mut o, b"pid", b"123");
    text::encode_stat(&mut o, b"x", b"");
    TextReply::Touched.encode(&mut o, false);
    text::encode_line(&mut o, &[b'a'; 1023], false);
    assert_eq!(
        String::from_utf8(o).unwrap(),
        "VALUE k 5 5\r\nhello\r\nVALUE k 0 0 42\r\n\r\nEND\r\n18446744073709551615\r\nSTAT pid 123\r\nSTAT x\r\nTOUCHED\r\nSERVER_ERROR output line too long\r\n"
    );
    for (r, s) in [
        (TextReply::Stored, "STORED\r\n"),
        (TextReply::NotStored, "NOT_STORED\r\n"),
        (TextReply::Exists, "EXISTS\r\n"),
        (TextReply::NotFound, "NOT_FOUND\r\n"),
        (TextReply::Deleted, "DELETED\r\n"),
        (TextReply::Ok, "OK\r\n"),
    ] {
        assert_eq!(r.as_bytes(), s.as_bytes());
    }
}

// ---------------------------------------------------------------------------
// Meta protocol (verified transcripts)
// ---------------------------------------------------------------------------

#[test]
fn verified_meta_get() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"mg", b"ERROR\r\n"),
        (b"mg k", b"EN\r\n"),
        (b"mg k v", b"EN\r\n"),
        (b"mg k q", b""),
        (b"mg k q k O123", b""),
        (b"mg k k O123 s v f t c h l", b"EN kk O123\r\n"),
        (b"mg k x", b"CLIENT_ERROR invalid flag\r\n"),
        (b"mg k v v", b"CLIENT_ERROR duplicate flag\r\n"),
        (b"mg k Nx", b"CLIENT_ERROR bad token in command line format\r\n"),
        (b"mg k N", b"CLIENT_ERROR bad token in command line format\r\n"),
        (b"mg k Tabc", b"CLIENT_ERROR bad token in command line format\r\n"),
        (b"mg k Rz", b"CLIENT_ERROR bad token in command line format\r\n"),
        (b"mg k Mab", b"CLIENT_ERROR incorrect length for M token\r\n"),
        (b"mg k Nx Mab", b"CLIENT_ERROR incorrect length for M token\r\n"),
        (b"mg k Nx z", b"CLIENT_ERROR invalid flag\r\n"),
        (b"mg k Nx v v", b"CLIENT_ERROR duplicate flag\r\n"),
        (b"mg k Fabc", b"CLIENT_ERROR bad command line format\r\n"),
        (b"mg k Dabc", b"CLIENT_ERROR invalid numeric delta value\r\n"),
        (b"mg k Jabc", b"CLIENT_ERROR invalid numeric initial value\r\n"),
        (b"mg k Cabc", b"CLIENT_ERROR bad token in command line format\r\n"),
        (b"mg k O111111111111111111111111111111111", b"CLIENT_ERROR opaque token too long\r\n"),
        (b"mg k O11111111111111111111111111111111", b"CLIENT_ERROR opaque token too long\r\n"),
        (b"mg k O1111111111111111111111111111111", b"EN O1111111111111111111111111111111\r\n"),
        (b"mg k \x7f", b"CLIENT_ERROR duplicate flag\r\n"),
        (b"mg k a b c d e f g h i j k l m n o p q r", b"CLIENT_ERROR options flags are too long\r\n"),
        (b"mg k s t v c f h l k O1 q u I P L b C1 D1 J1", b"CLIENT_ERROR options flags are too long\r\n"),
        (b"mg k b", b"CLIENT_ERROR error decoding key\r\n"),
        (b"mg a=== b", b"CLIENT_ERROR error decoding key\r\n"),
        (b"mg Zm9v b k", b"EN kZm9v b\r\n"),
        (b"me", b"CLIENT_ERROR bad command line format\r\n"),
        (b"me k", b"EN\r\n"),
        (b"me k b", b"CLIENT_ERROR bad command line format\r\n"),
        (b"me a=== b", b"CLIENT_ERROR bad command line format\r\n"),
    ];
    for (l, exp) in cases {
        t(&[*l, b"\r\nmn\r\n"].concat(), &[*exp, b"MN\r\n"].concat());
    }
    let long = vec![b'k'; 251];
    t(&[b"mg ", &long[..], b"\r\n"].concat(), b"CLIENT_ERROR bad command line format\r\n");
}

#[test]
fn verified_meta_set_delete_arith() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"ms", b"ERROR\r\n"),
        (b"ms k", b"CLIENT_ERROR bad command line format\r\n"),
        (b"ms k 2\r\nhi", b"HD\r\n"),
        (b"ms k x\r\nhi", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
        (b"ms k -1\r\nhi", b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
        (b"ms k 2 c k O1 T0 F5\r\nhi", b"HD c24 kk O1\r\n"),
        (b"ms k 2 q\r\nhi", b""),
        (b"ms k 2 q\r\nhiX", b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
        (b"ms k 2 x\r\nhi", b"CLIENT_ERROR invalid flag\r\n"),
        (b"ms k 2 MX\r\nhi", b"CLIENT_ERROR invalid mode for ms M token\r\n"),
        (b"ms k 2 MEE\r\nhi", b"CLIENT_ERROR incorrect length for M token\r\n"),
        (b"ms k 2 Mr\r\nhi", b"CLIENT_ERROR invalid mode for ms M token\r\n"),
        (b"ms k 2 O1111111111111111111111111111111111111111\r\nhi", b"CLIENT_ERROR opaque token too long\r\n"),
        (b"ms k 2 Fx\r\nhi", b"CLIENT_ERROR bad command line format\r\n"),
        (b"ms k 2 a b c d e f g h i j k l m n o p q\r\nhi", b"CLIENT_ERROR options flags too long\r\nERROR\r\n"),
        (b"ms Zm9v 2 b k\r\nhi", b"HD kZm9v b\r\n"),
        (b"md", b"ERROR\r\n"),
        (b"md k", b"NF\r\n"),
        (b"md k q", b"NF\r\n"),
        (b"md k x", b"CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"md k v v", b"CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"md k Nx", b"CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"md k O1 k", b"NF O1 kk\r\n"),
        (b"md k O1111111111111111111111111111111111111111", b"CLIENT_ERROR opaque token too long\r\n"),
        (b"md k a b c d e f g h i j k l m n o p q r s", b"CLIENT_ERROR options flags too long\r\n"),
        (b"ma", b"ERROR\r\n"),
        (b"ma k", b"NF\r\n"),
        (b"ma k q", b"NF\r\n"),
        (b"ma k MX", b"CLIENT_ERROR invalid mode for ma M token\r\n"),
        (b"ma k x", b"CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"ma k O1111111111111111111111111111111111111111", b"CLIENT_ERROR opaque token too long\r\n"),
        (b"ma k Dx", b"CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"ma k D-1", b"CLIENT_ERROR invalid or duplicate flag\r\n"),
        (b"ma k q D1", b"NF\r\n"),
    ];
    for (l, exp) in cases {
        t(&[*l, b"\r\nmn\r\n"].concat(), &[*exp, b"MN\r\n"].concat());
    }
    // too large ms swallows datalen+2 (verified)
    let mut input = b"ms k 2000000\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 2_000_000));
    input.extend_from_slice(b"\r\nmn\r\n");
    t(&input, b"SERVER_ERROR object too large for cache\r\nMN\r\n");
}

#[test]
fn meta_parsed_flags_and_modes() {
    match one(b"ms Zm9v 3 b MA C7 F9 T-1 I q O99 k c\r\nabc\r\n") {
        TextRequest::Meta(MetaRequest::Set { args, mode, data }) => {
            assert_eq!(&args.key[..], b"foo");
            assert_eq!(mode, MetaSetMode::Append);
            assert_eq!(data, b"abc");
            assert_eq!(args.flags.compare_cas, Some(7));
            assert_eq!(args.flags.client_flags, Some(9));
            assert_eq!(args.flags.ttl, Some(-1));
            assert!(args.flags.invalidate && args.flags.quiet && args.flags.base64_key);
            assert_eq!(args.flags.opaque, Some(&b"99"[..]));
        }
        r => panic!("{r:?}"),
    }
    match one(b"ms k 1 C7\r\na\r\n") {
        TextRequest::Meta(MetaRequest::Set { mode, .. }) => assert_eq!(mode, MetaSetMode::Cas),
        r => panic!("{r:?}"),
    }
    match one(b"ms k 1 MR C7\r\na\r\n") {
        TextRequest::Meta(MetaRequest::Set { mode, .. }) => assert_eq!(mode, MetaSetMode::Cas),
        r => panic!("{r:?}"),
    }
    match one(b"ms k 1 ME C7\r\na\r\n") {
        TextRequest::Meta(MetaRequest::Set { mode, .. }) => assert_eq!(mode, MetaSetMode::Add),
        r => panic!("{r:?}"),
    }
    match one(b"ma k M- D5 J10 N0 v\r\n") {
        TextRequest::Meta(MetaRequest::Arithmetic { args, incr }) => {
            assert!(!incr);
            assert_eq!(args.flags.delta, Some(5));
            assert_eq!(args.flags.initial, Some(10));
            assert_eq!(args.flags.vivify_ttl, Some(0));
        }
        r => panic!("{r:?}"),
    }
    match one(b"mg k s v t N30 R10 T5 u h l\r\n") {
        TextRequest::Meta(MetaRequest::Get(a)) => {
            assert!(a.flags.return_size && a.flags.return_value && a.flags.return_ttl);
            assert_eq!((a.flags.vivify_ttl, a.flags.recache_ttl, a.flags.ttl), (Some(30), Some(10), Some(5)));
            assert!(a.flags.no_update && a.flags.return_hit && a.flags.return_last_access);
            assert_eq!(a.tokens.len(), 9);
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(
        one(b"me Zm9v b\r\n"),
        TextRequest::Meta(MetaRequest::Debug { key: std::borrow::Cow::Owned(b"foo".to_vec()), base64: true })
    );
    // ms: errors after the length parse swallow the data block
    let e = perr(b"ms k 5 x\r\n");
    assert_eq!((e.consumed, e.swallow), (10, 7));
    assert!(!e.noreply);
    assert_eq!(parse_text(b"ms k 5\r\nabc", &Limits::default()), Ok(None));
}

#[test]
fn meta_encoders() {
    let a = |line: &'static [u8]| match one(line) {
        TextRequest::Meta(MetaRequest::Get(a)) | TextRequest::Meta(MetaRequest::Delete(a)) => a,
        TextRequest::Meta(MetaRequest::Arithmetic { args, .. }) => args,
        r => panic!("{r:?}"),
    };
    let item = MetaItem {
        key: b"foo",
        key_binary: false,
        client_flags: 5,
        cas: 77,
        ttl_remaining: Some(29),
        last_access: 3,
        fetched: true,
        token_sent: true,
        stale: false,
        win: false,
    };
    let mut o = Vec::new();
    // matches the verified "mg foo k v t" -> "VA 0 kfoo t29 Z" shape
    meta::encode_mg_hit(&mut o, &a(b"mg foo k v t s c f l h O9\r\n"), &item, b"hi");
    assert_eq!(o, b"VA 2 kfoo t29 s2 c77 f5 l3 h1 O9 Z\r\nhi\r\n");
    o.clear();
    let it2 = MetaItem { ttl_remaining: None, token_sent: false, win: true, stale: true, key_binary: true, ..item };
    meta::encode_mg_hit(&mut o, &a(b"mg Zm9v b k t q\r\n"), &it2, b"hi");
    assert_eq!(o, b"HD kZm9v b t-1 X W\r\n");
    o.clear();
    meta::encode_mg_miss(&mut o, &a(b"mg Zm9v b k q\r\n"));
    assert!(o.is_empty());
    meta::encode_md(&mut o, &a(b"md k q O1\r\n"), MetaDeleteStatus::Deleted);
    assert!(o.is_empty());
    meta::encode_md(&mut o, &a(b"md k q O1 k\r\n"), MetaDeleteStatus::Exists);
    assert_eq!(o, b"EX O1 kk\r\n");
    o.clear();
    // verified: "ma k N0 J5 v" on a miss -> "VA 1\r\n5\r\n"; also with q
    let done = MetaArithResult::Done { value: 5, cas: 3, ttl_remaining: None, created: true };
    meta::encode_ma(&mut o, &a(b"ma k N0 J5 v\r\n"), done);
    meta::encode_ma(&mut o, &a(b"ma k N0 J5 v q\r\n"), done);
    assert_eq!(o, b"VA 1\r\n5\r\nVA 1\r\n5\r\n");
    o.clear();
    let upd = MetaArithResult::Done { value: 18446744073709551615, cas: 9, ttl_remaining: Some(10), created: false };
    meta::encode_ma(&mut o, &a(b"ma k q\r\n"), upd);
    assert!(o.is_empty());
    meta::encode_ma(&mut o, &a(b"ma k t c k O5\r\n"), upd);
    assert_eq!(o, b"HD t10 c9 kk O5\r\n");
    o.clear();
    meta::encode_me_hit(&mut o, b"foo", false, Some(10), 4, 12, false, 1, 70);
    meta::encode_me_hit(&mut o, b"foo", true, None, 0, 1, true, 2, 70);
    assert_eq!(
        o,
        b"ME foo exp=-10 la=4 cas=12 fetch=no cls=1 size=70\r\nME Zm9v exp=-1 la=0 cas=1 fetch=yes cls=2 size=70\r\n"
    );
}

// ---------------------------------------------------------------------------
// Binary protocol
// ---------------------------------------------------------------------------

fn breq(op: u8, key: &[u8], extras: &[u8], value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    binary::encode_request(&mut v, op, key, extras, value, 0xdeadbeef, 0);
    v
}

fn bparse(buf: &[u8]) -> binary::BinaryParse<'_> {
    parse_binary(buf, &Limits::default())
}

fn bok(buf: &[u8]) -> BinaryRequest<'_> {
    match bparse(buf) {
        Ok(Some((r, used))) => {
            assert_eq!(used, buf.len());
            r
        }
        o => panic!("{o:?}"),
    }
}

fn berr(buf: &[u8]) -> BinaryError<'_> {
    match bparse(buf) {
        Err(e) => e,
        o => panic!("{o:?}"),
    }
}

fn resp(op: u8, status: u16, keylen: u16, extlen: u8, body: &[u8], cas: u64) -> Vec<u8> {
    let mut v = vec![0x81, op];
    v.extend_from_slice(&keylen.to_be_bytes());
    v.push(extlen);
    v.push(0);
    v.extend_from_slice(&status.to_be_bytes());
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(&0xdeadbeefu32.to_be_bytes());
    v.extend_from_slice(&cas.to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn binary_parse_commands() {
    let set = breq(opcode::SETQ, b"bk", &[0, 0, 0, 7, 0, 0, 0, 9], b"val");
    let r = bok(&set);
    assert!(r.quiet);
    assert_eq!(
        r.command,
        BinaryCommand::Store { mode: BinaryStoreMode::Set, key: b"bk", flags: 7, exptime: 9, value: b"val" }
    );
    assert_eq!(bparse(&set[..set.len() - 1]), Ok(None));
    for n in 0..24 {
        assert_eq!(bparse(&set[..n]), Ok(None));
    }
    let mut ex = 5u64.to_be_bytes().to_vec();
    ex.extend_from_slice(&10u64.to_be_bytes());
    ex.extend_from_slice(&0xffffffffu32.to_be_bytes());
    assert_eq!(
        bok(&breq(opcode::DECREMENTQ, b"c", &ex, b"")).command,
        BinaryCommand::Arithmetic { incr: false, key: b"c", delta: 5, initial: 10, exptime: 0xffffffff }
    );
    assert_eq!(
        bok(&breq(opcode::GATKQ, b"k", &[0, 0, 0, 100], b"")).command,
        BinaryCommand::GetAndTouch { key: b"k", exptime: 100, return_key: true }
    );
    assert_eq!(
        bok(&breq(opcode::TOUCH, b"k", &[0, 0, 0, 1], b"")).command,
        BinaryCommand::Touch { key: b"k", exptime: 1 }
    );
    assert_eq!(bok(&breq(opcode::FLUSH, b"", &[0, 0, 0, 5], b"")).command, BinaryCommand::Flush { delay: 5 });
    assert_eq!(bok(&breq(opcode::FLUSHQ, b"", b"", b"")).command, BinaryCommand::Flush { delay: 0 });
    assert_eq!(bok(&breq(opcode::NOOP, b"", b"", b"")).command, BinaryCommand::Noop);
    assert_eq!(bok(&breq(opcode::VERSION, b"", b"", b"")).command, BinaryCommand::Version);
    assert_eq!(bok(&breq(opcode::QUITQ, b"", b"", b"")).command, BinaryCommand::Quit);
    assert_eq!(bok(&breq(opcode::STAT, b"items", b"", b"")).command, BinaryCommand::Stat { key: b"items" });
    assert_eq!(bok(&breq(opcode::DELETE, b"k", b"", b"")).command, BinaryCommand::Delete { key: b"k" });
    assert_eq!(
        bok(&breq(opcode::PREPENDQ, b"k", b"", b"xy")).command,
        BinaryCommand::Concat { append: false, key: b"k", value: b"xy" }
    );
    assert_eq!(bok(&breq(opcode::GETK, b"k", b"", b"")).command, BinaryCommand::Get { key: b"k", return_key: true });
}

#[test]
fn verified_binary_errors() {
    // invalid magic (after negotiation): silent close
    let mut bad = breq(opcode::VERSION, b"", b"", b"");
    bad[0] = 0x81;
    let e = berr(&bad);
    assert!(e.close && e.status.is_none());
    // unknown opcode: "Unknown command", swallow bodylen after key+extras
    let p0 = breq(0x50, b"", b"", b"");
    let e = berr(&p0);
    let mut o = Vec::new();
    e.encode(&mut o);
    assert_eq!(o, resp(0x50, 0x81, 0, 0, b"Unknown command", 0));
    assert!(!e.close);
    let p1 = breq(0x50, b"abc", b"", b"");
    let e = berr(&p1);
    assert_eq!((e.consumed, e.swallow), (27, 3)); // over-swallow, as memcached
                                                  // SASL refused (memcached without -S)
                                                  // SASL requests parse whole; the executor refuses them on a node without authentication
    let p2 = breq(opcode::SASL_LIST_MECHS, b"", b"", b"");
    assert_eq!(parse_binary(&p2, &Limits::default()).unwrap().unwrap().0.command, BinaryCommand::SaslListMechs);
    let p3 = breq(opcode::SASL_AUTH, b"PLAIN", b"", b"\0u\0p");
    let (r, n) = parse_binary(&p3, &Limits::default()).unwrap().unwrap();
    assert_eq!((r.command, n), (BinaryCommand::SaslAuth { mech: b"PLAIN", data: b"\0u\0p", step: false }, 33));
    assert_eq!(parse_binary(&p3[..30], &Limits::default()), Ok(None));
    // keylen > bodylen: Unknown command + close
    let mut kb = breq(opcode::GET, b"abc", b"", b"");
    kb[8..12].copy_from_slice(&2u32.to_be_bytes());
    let e = berr(&kb);
    assert_eq!((e.status, e.close), (Some(Status::UnknownCommand), true));
    // protocol errors: Invalid arguments + close
    for p in [
        breq(opcode::GET, b"abc", b"1234", b""),
        breq(opcode::GET, &[b'k'; 251], b"", b""),
        breq(opcode::NOOP, b"k", b"", b""),
        breq(opcode::FLUSH, b"x", b"", b""),
        breq(opcode::SET, b"", &[0; 8], b"v"),
        breq(opcode::APPEND, b"k", b"1234", b"v"),
        breq(opcode::GAT, b"k", b"", b""),
    ] {
        let e = berr(&p);
        let mut o = Vec::new();
        e.encode(&mut o);
        assert_eq!(o, resp(p[1], 4, 0, 0, b"Invalid arguments", 0));
        assert!(e.close);
    }
    // get with huge body: Invalid arguments
    let mut g = breq(opcode::GET, b"bk", b"", b"");
    g[8..12].copy_from_slice(&0xfffffff0u32.to_be_bytes());
    assert_eq!(berr(&g).status, Some(Status::InvalidArguments));
    // set with huge body: Too large., swallow the value, not closing
    let mut s = breq(opcode::SET, b"bk", &[0; 8], b"");
    s[8..12].copy_from_slice(&0xfffffff0u32.to_be_bytes());
    let e = berr(&s);
    let mut o = Vec::new();
    e.encode(&mut o);
    assert_eq!(o, resp(opcode::SET, 3, 0, 0, b"Too large.", 0));
    assert_eq!((e.swallow, e.close, e.unlink_key), (0xfffffff0 - 10, false, Some(&b"bk"[..])));
    // Stat with a longer body: only header+key consumed (verified: the rest is
    // parsed as the next packet)
    let mut st = breq(opcode::STAT, b"reset", b"", b"");
    st[8..12].copy_from_slice(&29u32.to_be_bytes());
    st.extend(breq(opcode::NOOP, b"", b"", b""));
    match bparse(&st) {
        Ok(Some((r, used))) => {
            assert_eq!(used, 29);
            assert_eq!(r.command, BinaryCommand::Stat { key: b"reset" });
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn verified_binary_responses() {
    let mut o = Vec::new();
    // get miss: "Not found"; getq miss: nothing; getk miss: key echoed
    let get = breq(opcode::GET, b"nokey", b"", b"");
    binary::encode_get_miss(&mut o, &bok(&get));
    assert_eq!(o, resp(0, 1, 0, 0, b"Not found", 0));
    o.clear();
    binary::encode_get_miss(&mut o, &bok(&breq(opcode::GETQ, b"nokey", b"", b"")));
    binary::encode_get_miss(&mut o, &bok(&breq(opcode::GETKQ, b"nokey", b"", b"")));
    binary::encode_get_miss(&mut o, &bok(&breq(opcode::GATQ, b"nokey", &[0; 4], b"")));
    assert!(o.is_empty());
    binary::encode_get_miss(&mut o, &bok(&breq(opcode::GETK, b"nokey", b"", b"")));
    assert_eq!(o, resp(0x0c, 1, 5, 0, b"nokey", 0));
    o.clear();
    binary::encode_get_miss(&mut o, &bok(&breq(opcode::TOUCH, b"nokey", &[0; 4], b"")));
    assert_eq!(o, resp(0x1c, 1, 0, 0, b"Not found", 0));
    o.clear();
    // hits: flags extras, key for K variants, value except Touch; quiet still sent
    binary::encode_get_hit(&mut o, &bok(&breq(opcode::GET, b"bk", b"", b"")), 7, 36, b"val");
    assert_eq!(o, resp(0, 0, 0, 4, b"\0\0\0\x07val", 36));
    o.clear();
    binary::encode_get_hit(&mut o, &bok(&breq(opcode::GETK, b"bk", b"", b"")), 7, 36, b"val");
    assert_eq!(o, resp(0x0c, 0, 2, 4, b"\0\0\0\x07bkval", 36));
    o.clear();
    binary::encode_get_hit(&mut o, &bok(&breq(opcode::GETQ, b"bk", b"", b"")), 7, 36, b"val");
    assert_eq!(o, resp(0x09, 0, 0, 4, b"\0\0\0\x07val", 36));
    o.clear();
    binary::encode_get_hit(&mut o, &bok(&breq(opcode::TOUCH, b"bk", &[0, 0, 0, 100], b"")), 7, 36, b"val");
    assert_eq!(o, resp(0x1c, 0, 0, 4, b"\0\0\0\x07", 36));
    o.clear();
    binary::encode_get_hit(&mut o, &bok(&breq(opcode::GATK, b"bk", &[0, 0, 0, 100], b"")), 7, 36, b"val");
    assert_eq!(o, resp(0x23, 0, 2, 4, b"\0\0\0\x07bkval", 36));
    o.clear();
    // set: empty success with new cas; setq: nothing
    let set = breq(opcode::SET, b"bk", &[0, 0, 0, 7, 0, 0, 0, 0], b"val");
    binary::encode_success(&mut o, &bok(&set), 35);
    assert_eq!(o, resp(1, 0, 0, 0, b"", 35));
    o.clear();
    binary::encode_success(&mut o, &bok(&breq(opcode::SETQ, b"bk", &[0; 8], b"v")), 35);
    assert!(o.is_empty());
    // errors are sent even for quiet opcodes
    binary::encode_error(&mut o, &bok(&breq(opcode::DELETEQ, b"ctr", b"", b"")), Status::KeyNotFound);
    assert_eq!(o, resp(0x14, 1, 0, 0, b"Not found", 0));
    o.clear();
    for (st, msg) in [
        (Status::KeyExists, &b"Data exists for key."[..]),
        (Status::NotStored, b"Not stored."),
        (Status::NonNumeric, b"Non-numeric server-side value for incr or decr"),
        (Status::OutOfMemory, b"Out of memory"),
        (Status::AuthError, b"Auth failure."),
    ] {
        assert_eq!(st.message().as_bytes(), msg);
    }
    // incr: 8-byte value
    let mut ex = 5u64.to_be_bytes().to_vec();
    ex.extend_from_slice(&10u64.to_be_bytes());
    ex.extend_from_slice(&0u32.to_be_bytes());
    binary::encode_arithmetic(&mut o, &bok(&breq(opcode::INCREMENT, b"ctr", &ex, b"")), 10, 37);
    assert_eq!(o, resp(5, 0, 0, 0, &10u64.to_be_bytes(), 37));
    o.clear();
    binary::encode_version(&mut o, &bok(&breq(opcode::VERSION, b"", b"", b"")), b"1.6.18");
    assert_eq!(o, resp(0x0b, 0, 0, 0, b"1.6.18", 0));
    o.clear();
    binary::encode_stat(&mut o, 0xdeadbeef, b"maxconns", b"1024");
    binary::encode_stat(&mut o, 0xdeadbeef, b"", b"");
    let mut exp = resp(0x10, 0, 8, 0, b"maxconns1024", 0);
    exp.extend(resp(0x10, 0, 0, 0, b"", 0));
    assert_eq!(o, exp);
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

/// Build a text storage command line (test-side encoder).
fn encode_store(
    cmd: &str,
    key: &[u8],
    flags: u32,
    exptime: i32,
    cas: Option<u64>,
    data: &[u8],
    noreply: bool,
) -> Vec<u8> {
    let mut v = format!("{cmd} ").into_bytes();
    v.extend_from_slice(key);
    v.extend_from_slice(format!(" {flags} {exptime} {}", data.len()).as_bytes());
    if let Some(c) = cas {
        v.extend_from_slice(format!(" {c}").as_bytes());
    }
    if noreply {
        v.extend_from_slice(b" noreply");
    }
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    v
}

fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0x21u8..0x7f, 1..250)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn text_never_panics(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = run_text(&input);
        let _ = parse_text(&input, &Limits::default());
    }

    #[test]
    fn text_never_panics_structured(
        words in proptest::collection::vec(
            prop_oneof![
                Just(b"set".to_vec()), Just(b"mg".to_vec()), Just(b"ms".to_vec()), Just(b"ma".to_vec()),
                Just(b"md".to_vec()), Just(b"me".to_vec()), Just(b"get".to_vec()), Just(b"cas".to_vec()),
                Just(b"delete".to_vec()), Just(b"noreply".to_vec()), Just(b"b".to_vec()), Just(b"5".to_vec()),
                Just(b"-1".to_vec()), Just(b"\r\n".to_vec()), proptest::collection::vec(any::<u8>(), 1..6)
            ], 0..30)
    ) {
        let input: Vec<u8> = words.join(&b' ');
        let _ = run_text(&input);
    }

    #[test]
    fn binary_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200), op in any::<u8>(), kl in 0u16..300, el in 0u8..30, bl in 0u32..400) {
        let _ = parse_binary(&input, &Limits::default());
        let mut v = vec![0x80, op];
        v.extend_from_slice(&kl.to_be_bytes());
        v.push(el);
        v.extend_from_slice(&[0, 0, 0]);
        v.extend_from_slice(&bl.to_be_bytes());
        v.extend_from_slice(&[0; 12]);
        v.extend_from_slice(&input);
        let _ = parse_binary(&v, &Limits::default());
    }

    #[test]
    fn store_roundtrip_and_prefixes(
        key in key_strategy(), flags in any::<u32>(), exptime in any::<i32>(),
        cas in proptest::option::of(any::<u64>()), data in proptest::collection::vec(any::<u8>(), 0..300),
        noreply in any::<bool>()
    ) {
        let cmd = if cas.is_some() { "cas" } else { "set" };
        let wire = encode_store(cmd, &key, flags, exptime, cas, &data, noreply);
        for i in 0..wire.len() {
            prop_assert_eq!(parse_text(&wire[..i], &Limits::default()), Ok(None));
        }
        let mut more = wire.clone();
        more.extend_from_slice(b"get x\r\n");
        let (req, used) = parse_text(&more, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(req, TextRequest::Store {
            command: if cas.is_some() { StoreCommand::Cas } else { StoreCommand::Set },
            key: &key, flags, exptime, cas: cas.unwrap_or(0), data: &data, noreply,
        });
    }

    #[test]
    fn meta_set_roundtrip_and_prefixes(key in proptest::collection::vec(any::<u8>(), 1..180), data in proptest::collection::vec(any::<u8>(), 0..100), opaque in 0u32..1_000_000) {
        let mut b64 = Vec::new();
        super::base64::encode_into(&key, &mut b64);
        let mut wire = b"ms ".to_vec();
        wire.extend_from_slice(&b64);
        wire.extend_from_slice(format!(" {} b O{opaque} k c T0\r\n", data.len()).as_bytes());
        wire.extend_from_slice(&data);
        wire.extend_from_slice(b"\r\n");
        for i in 0..wire.len() {
            prop_assert_eq!(parse_text(&wire[..i], &Limits::default()), Ok(None));
        }
        let (req, used) = parse_text(&wire, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        match req {
            TextRequest::Meta(MetaRequest::Set { args, data: d, mode }) => {
                prop_assert_eq!(&args.key[..], &key[..]);
                prop_assert_eq!(d, &data[..]);
                prop_assert_eq!(mode, MetaSetMode::Set);
                let mut o = Vec::new();
                meta::encode_ms(&mut o, &args, MetaStoreStatus::NotStored, 0);
                let mut exp = format!("NS O{opaque} k").into_bytes();
                exp.extend_from_slice(&b64);
                exp.extend_from_slice(b" b c0\r\n");
                prop_assert_eq!(o, exp);
            }
            r => prop_assert!(false, "{:?}", r),
        }
    }

    #[test]
    fn get_keys_roundtrip(keys in proptest::collection::vec(key_strategy(), 1..40)) {
        let mut wire = b"gets".to_vec();
        for k in &keys {
            wire.push(b' ');
            wire.extend_from_slice(k);
        }
        wire.extend_from_slice(b"\r\n");
        for i in 0..wire.len() {
            prop_assert_eq!(parse_text(&wire[..i], &Limits::default()), Ok(None));
        }
        let (req, used) = parse_text(&wire, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        let expect: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        prop_assert_eq!(req, TextRequest::Get { kind: GetKind::Gets, exptime: None, keys: expect });
    }

    #[test]
    fn binary_roundtrip_and_prefixes(key in proptest::collection::vec(any::<u8>(), 1..250), value in proptest::collection::vec(any::<u8>(), 0..200), flags in any::<u32>(), exp in any::<u32>(), q in any::<bool>()) {
        let mut extras = flags.to_be_bytes().to_vec();
        extras.extend_from_slice(&exp.to_be_bytes());
        let op = if q { opcode::ADDQ } else { opcode::ADD };
        let wire = breq(op, &key, &extras, &value);
        for i in 0..wire.len() {
            prop_assert_eq!(bparse(&wire[..i]), Ok(None));
        }
        let r = bok(&wire);
        prop_assert_eq!(r.quiet, q);
        prop_assert_eq!(r.command, BinaryCommand::Store { mode: BinaryStoreMode::Add, key: &key, flags, exptime: exp, value: &value });
    }
}
