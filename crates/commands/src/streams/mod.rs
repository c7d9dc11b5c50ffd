//! Stream commands (Redis 7.0 `t_stream.c`): XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM,
//! XREAD, XREADGROUP, XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO, XSETID.
//! Write effects follow Redis: XADD propagates with the generated ID (and `~` trims rewritten
//! to `=`), XREADGROUP/XCLAIM/XAUTOCLAIM propagate as XCLAIM / XGROUP SETID / CREATECONSUMER.
//!
//! Layout: this file holds the command table and the helpers every part shares (stream ID
//! parsing, entry replies, key lookup, the propagated XCLAIM / XGROUP SETID argv);
//! `basic` has XADD, XTRIM, XRANGE, XREVRANGE, XLEN, XDEL; `read` XREAD and XREADGROUP (with
//! blocking); `groups` XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM; `info` XINFO and XSETID.

mod basic;
mod groups;
mod info;
mod read;

use basic::{xadd, xdel, xlen, xrange, xrevrange, xtrim};
use groups::{xack, xautoclaim, xclaim, xgroup, xgroup_help, xpending};
use info::{xinfo, xinfo_help, xsetid};
use read::{xread, xread_keys, xreadgroup};

use ferrocache_engine::stream::{ConsumerGroup, NodeLimits, StreamEntry, StreamId, StreamValue};
use ferrocache_engine::{Db, Value};
use ferrocache_node::subcommand_required;
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::parse_i64;
use ferrocache_node::{or_reply, CommandError, Ctx};
use ferrocache_protocol::resp::{Args, ReplyBuf};

const G: &str = "stream";

pub static COMMANDS: &[Command] = &[
    Command::new("xadd", -5, WRITE | DENYOOM | FAST, (1, 1, 1), xadd).group(G),
    Command::new("xrange", -4, READONLY, (1, 1, 1), xrange).group(G),
    Command::new("xrevrange", -4, READONLY, (1, 1, 1), xrevrange).group(G),
    Command::new("xlen", 2, READONLY | FAST, (1, 1, 1), xlen).group(G),
    Command::new("xdel", -3, WRITE | FAST, (1, 1, 1), xdel).group(G),
    Command::new("xtrim", -4, WRITE, (1, 1, 1), xtrim).group(G),
    Command::new("xread", -4, READONLY | BLOCKING, (0, 0, 0), xread).keys(xread_keys).group(G),
    Command::new("xreadgroup", -7, WRITE | BLOCKING, (0, 0, 0), xreadgroup).keys(xread_keys).group(G),
    Command::new("xgroup", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(XGROUP_SUBS),
    Command::new("xsetid", -3, WRITE | DENYOOM | FAST, (1, 1, 1), xsetid).group(G),
    Command::new("xack", -4, WRITE | FAST, (1, 1, 1), xack).group(G),
    Command::new("xpending", -3, READONLY, (1, 1, 1), xpending).group(G),
    Command::new("xclaim", -6, WRITE | FAST, (1, 1, 1), xclaim).group(G),
    Command::new("xautoclaim", -6, WRITE | FAST, (1, 1, 1), xautoclaim).group(G),
    Command::new("xinfo", -2, 0, (0, 0, 0), subcommand_required).group(G).subs(XINFO_SUBS),
];

static XGROUP_SUBS: &[Command] = &[
    Command::new("xgroup|create", -5, WRITE | DENYOOM, (2, 2, 1), xgroup).group(G),
    Command::new("xgroup|setid", -5, WRITE, (2, 2, 1), xgroup).group(G),
    Command::new("xgroup|destroy", 4, WRITE, (2, 2, 1), xgroup).group(G),
    Command::new("xgroup|createconsumer", 5, WRITE | DENYOOM, (2, 2, 1), xgroup).group(G),
    Command::new("xgroup|delconsumer", 5, WRITE, (2, 2, 1), xgroup).group(G),
    Command::new("xgroup|help", 2, LOADING | STALE, (0, 0, 0), xgroup_help).group(G),
];

static XINFO_SUBS: &[Command] = &[
    Command::new("xinfo|consumers", 4, READONLY, (2, 2, 1), xinfo).group(G),
    Command::new("xinfo|groups", 3, READONLY, (2, 2, 1), xinfo).group(G),
    Command::new("xinfo|stream", -3, READONLY, (2, 2, 1), xinfo).group(G),
    Command::new("xinfo|help", 2, LOADING | STALE, (0, 0, 0), xinfo_help).group(G),
];

const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

// ------------------------------------------------------------------ helpers

/// `strtoull` as `string2ull` falls back to it: spaces, sign, leading zeros.
fn strtoull(s: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < s.len() && (s[i] == b' ' || (9..=13).contains(&s[i])) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    if i >= s.len() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in &s[i..] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

fn string2ull(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    if let Some(v) = ferrocache_engine::value::parse_i64_exact(s) {
        return if v < 0 { None } else { Some(v as u64) };
    }
    strtoull(s)
}

/// `streamGenericParseIDOrReply` without the reply. `seq_given`: accept `<ms>-*`.
fn parse_id_gen(a: &[u8], missing_seq: u64, strict: bool, seq_given: Option<&mut bool>) -> Option<StreamId> {
    if a.len() > 127 {
        return None;
    }
    // C string semantics: stop at the first NUL.
    let a = match a.iter().position(|&c| c == 0) {
        Some(p) => &a[..p],
        None => a,
    };
    if strict && (a == b"-" || a == b"+") {
        return None;
    }
    let mut sg = true;
    let r = (|| {
        if a == b"-" {
            return Some(StreamId::MIN);
        }
        if a == b"+" {
            return Some(StreamId::MAX);
        }
        match a.iter().position(|&c| c == b'-') {
            Some(p) => {
                let ms = string2ull(&a[..p])?;
                let rest = &a[p + 1..];
                let seq = if seq_given.is_some() && rest == b"*" {
                    sg = false;
                    0
                } else {
                    string2ull(rest)?
                };
                Some(StreamId::new(ms, seq))
            }
            None => Some(StreamId::new(string2ull(a)?, missing_seq)),
        }
    })();
    if let Some(g) = seq_given {
        *g = sg;
    }
    r
}

fn parse_id(out: &mut ReplyBuf, a: &[u8], missing_seq: u64) -> Option<StreamId> {
    let r = parse_id_gen(a, missing_seq, false, None);
    if r.is_none() {
        out.error(ERR_INVALID_ID);
    }
    r
}

fn parse_strict_id(a: &[u8], missing_seq: u64) -> Result<StreamId, CommandError> {
    parse_id_gen(a, missing_seq, true, None).ok_or(CommandError::Static(ERR_INVALID_ID))
}

/// `streamParseIntervalIDOrReply`: returns (id, exclusive).
fn parse_interval_id(out: &mut ReplyBuf, a: &[u8], missing_seq: u64) -> Option<(StreamId, bool)> {
    if a.len() > 1 && a[0] == b'(' {
        or_reply(out, parse_strict_id(&a[1..], missing_seq)).map(|id| (id, true))
    } else {
        parse_id(out, a, missing_seq).map(|id| (id, false))
    }
}

fn id_bulk(out: &mut ReplyBuf, id: StreamId) {
    out.bulk(&id.to_bytes());
}

fn reply_entry(out: &mut ReplyBuf, e: &StreamEntry) {
    out.array(2);
    id_bulk(out, e.id);
    out.array(e.fields.len());
    for f in &e.fields {
        out.bulk(f);
    }
}

fn node_limits(ctx: &Ctx) -> NodeLimits {
    let b = ctx.srv.config().get_i64("stream-node-max-bytes");
    let e = ctx.srv.config().get_i64("stream-node-max-entries");
    NodeLimits { max_bytes: b.max(0) as usize, max_entries: e.max(0) as usize }
}

/// Ok(None) missing, Err(WrongType) for another type.
fn lookup<'d>(db: &'d mut Db<'_, '_>, key: &[u8], write: bool) -> Result<Option<&'d mut StreamValue>, CommandError> {
    let e = if write { db.get_mut(key) } else { db.get(key) };
    match e {
        None => Ok(None),
        Some(e) => match &mut e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(CommandError::WrongType),
        },
    }
}

fn nogroup_key_group(key: &[u8], group: &[u8]) -> String {
    format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    )
}

fn int_arg_msg(out: &mut ReplyBuf, a: &[u8], msg: &str) -> Option<i64> {
    match parse_i64(a) {
        Some(v) => Some(v),
        None => {
            out.error(msg);
            None
        }
    }
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn num(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// The XCLAIM Redis propagates for a PEL change (`streamPropagateXCLAIM`).
fn xclaim_argv(
    key: &[u8],
    group: &[u8],
    g: &ConsumerGroup,
    id_arg: &[u8],
    consumer: &[u8],
    time: i64,
    count: u64,
) -> Vec<Vec<u8>> {
    vec![
        b("XCLAIM"),
        key.to_vec(),
        group.to_vec(),
        consumer.to_vec(),
        b("0"),
        id_arg.to_vec(),
        b("TIME"),
        num(time),
        b("RETRYCOUNT"),
        num(count as i64),
        b("FORCE"),
        b("JUSTID"),
        b("LASTID"),
        g.last_id.to_bytes(),
    ]
}

fn setid_argv(key: &[u8], group: &[u8], g: &ConsumerGroup) -> Vec<Vec<u8>> {
    vec![
        b("XGROUP"),
        b("SETID"),
        key.to_vec(),
        group.to_vec(),
        g.last_id.to_bytes(),
        b("ENTRIESREAD"),
        num(g.entries_read),
    ]
}

fn subcommand_syntax(out: &mut ReplyBuf, a: &Args) {
    out.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(&a[1]).chars().take(128).collect::<String>(),
        String::from_utf8_lossy(&a[0]).to_uppercase()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_parsing() {
        assert_eq!(parse_id_gen(b"1-2", 0, true, None), Some(StreamId::new(1, 2)));
        assert_eq!(parse_id_gen(b"5", 7, true, None), Some(StreamId::new(5, 7)));
        assert_eq!(parse_id_gen(b"-", 0, true, None), None);
        assert_eq!(parse_id_gen(b"-", 0, false, None), Some(StreamId::MIN));
        assert_eq!(parse_id_gen(b"+", 0, false, None), Some(StreamId::MAX));
        assert_eq!(parse_id_gen(b"007-1", 0, true, None), Some(StreamId::new(7, 1)));
        assert_eq!(parse_id_gen(b"1-x", 0, true, None), None);
        assert_eq!(parse_id_gen(b"-1", 0, true, None), None);
        let mut sg = true;
        assert_eq!(parse_id_gen(b"5-*", 0, true, Some(&mut sg)), Some(StreamId::new(5, 0)));
        assert!(!sg);
        assert_eq!(parse_id_gen(b"5-*", 0, true, None), None);
    }
}
