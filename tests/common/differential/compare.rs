//! What a reply may differ in between the two servers, per command (`Rule`), and how the
//! commands are run and their replies normalised and compared.

use super::*;
use crate::common::{Raw, Reply};

// ---------------------------------------------------------------------------------------------
// normalisation

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    Exact,
    /// Only the reply's shape (types and array lengths).
    Shape,
    /// An integer compared within a tolerance (TTL-like clocks); negatives exactly.
    Approx(i64),
    /// An array compared as a multiset.
    Sorted,
    /// A flat array of pairs compared as a multiset of pairs (CONFIG GET with a glob).
    SortedPairs,
    /// HKEYS/HVALS/HGETALL: exact for listpack-encoded hashes (insertion order, like Redis),
    /// as a multiset for hashtable-encoded ones (whose order is Redis's dict order).
    HashOrder,
    /// A full SCAN-family iteration; the union of elements is compared.
    Scan,
    /// SRANDMEMBER/ZRANDMEMBER: the reply's shape, and whether every element returned is a
    /// member (with its score) of the key on that server, and distinct when it must be.
    RandMember,
    /// SPOP: the count is compared, then ferrocache's set is repaired to Redis's (see the loop).
    Spop,
    /// Streams: pending-entry idle times and delivery/seen timestamps are masked.
    StreamTimes,
}

pub fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

pub fn rule(cmd: &Cmd) -> Rule {
    let name = upper(&cmd[0]);
    let sub = cmd.get(1).map(|s| upper(s)).unwrap_or_default();
    match name.as_str() {
        "RANDOMKEY" | "TIME" | "HRANDFIELD" => Rule::Shape,
        "TTL" | "EXPIRETIME" => Rule::Approx(2),
        "PTTL" | "PEXPIRETIME" => Rule::Approx(2000),
        "KEYS" => Rule::Sorted,
        "CONFIG" if sub == "GET" => Rule::SortedPairs,
        "HKEYS" | "HVALS" => Rule::HashOrder,
        "HGETALL" | "DUMP" => Rule::HashOrder,
        "SCAN" | "HSCAN" | "SSCAN" | "ZSCAN" => Rule::Scan,
        "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" => Rule::Sorted,
        "SRANDMEMBER" | "ZRANDMEMBER" => Rule::RandMember,
        "SPOP" => Rule::Spop,
        "XPENDING" | "XINFO" => Rule::StreamTimes,
        "SORT" | "SORT_RO" if sort_unordered(cmd) => Rule::Sorted,
        "GEOSEARCH" | "GEORADIUS" | "GEORADIUS_RO" | "GEORADIUSBYMEMBER" | "GEORADIUSBYMEMBER_RO" => geo_rule(cmd),
        "OBJECT" if sub == "FREQ" || sub == "IDLETIME" => Rule::Shape,
        "EXEC" => Rule::Exact,
        _ => Rule::Exact,
    }
}

pub fn has_arg(cmd: &Cmd, a: &str) -> bool {
    cmd.iter().skip(1).any(|x| x.eq_ignore_ascii_case(a.as_bytes()))
}

/// SORT whose order Redis leaves to its input order (BY nosort / a constant pattern, which on a
/// set is the set's own order) or to an unstable sort (ALPHA by a pattern: equal or missing
/// weights compare equal): compared as a multiset.
pub fn sort_unordered(cmd: &Cmd) -> bool {
    let by = cmd.iter().position(|x| x.eq_ignore_ascii_case(b"BY")).and_then(|i| cmd.get(i + 1));
    match by {
        Some(p) => !p.contains(&b'*') || has_arg(cmd, "ALPHA") || p.starts_with(b"nosuch"),
        None => false,
    }
}

/// GEOSEARCH/GEORADIUS: without ASC/DESC (and without COUNT, which implies ASC) the order is the
/// geohash-box scan order; with ANY the subset found is scan-order dependent.
pub fn geo_rule(cmd: &Cmd) -> Rule {
    if has_arg(cmd, "ANY") {
        Rule::Shape
    } else if !has_arg(cmd, "ASC") && !has_arg(cmd, "DESC") && !has_arg(cmd, "COUNT") {
        Rule::Sorted
    } else {
        Rule::Exact
    }
}

/// Stream ids generated from the clock (`*`) differ between the servers: masked everywhere.
pub fn mask_auto_ids(r: Reply) -> Reply {
    match r {
        Reply::Bulk(b) => {
            let s = &b[..];
            if let Some(d) = s.iter().position(|&c| c == b'-') {
                if d >= 12
                    && s[..d].iter().all(u8::is_ascii_digit)
                    && s[d + 1..].iter().all(u8::is_ascii_digit)
                    && d + 1 < s.len()
                {
                    return Reply::Bulk(b"<auto-id>".to_vec());
                }
            }
            Reply::Bulk(b)
        }
        Reply::Array(v) => Reply::Array(v.into_iter().map(mask_auto_ids).collect()),
        other => other,
    }
}

/// XINFO/XPENDING: idle times, seen/active times and delivery timestamps masked.
pub fn mask_stream_times(cmd: &Cmd, r: Reply) -> Reply {
    fn walk(r: Reply, xpending_entry: bool) -> Reply {
        match r {
            Reply::Int(i) if i >= 1_000_000_000_000 => Reply::Int(-777),
            Reply::Array(v) => {
                let is_pending_entry = xpending_entry && v.len() == 4 && matches!(v[2], Reply::Int(_));
                let mut out = Vec::with_capacity(v.len());
                let mut mask_next = false;
                for (i, x) in v.into_iter().enumerate() {
                    if mask_next || (is_pending_entry && i == 2) {
                        out.push(Reply::Int(-777));
                        mask_next = false;
                        continue;
                    }
                    if let Reply::Bulk(k) = &x {
                        mask_next = matches!(k.as_slice(), b"idle" | b"seen-time" | b"active-time" | b"inactive");
                    }
                    out.push(walk(x, xpending_entry));
                }
                Reply::Array(out)
            }
            other => other,
        }
    }
    let xpending_ext = upper(&cmd[0]) == "XPENDING" && cmd.len() > 3;
    match r {
        Reply::Array(v) if xpending_ext => Reply::Array(v.into_iter().map(|e| walk(e, true)).collect()),
        other => walk(other, false),
    }
}

/// SRANDMEMBER/ZRANDMEMBER: shape plus membership checks against the key's current members.
pub fn rand_member(conn: &mut Raw, cmd: &Cmd, r: Reply) -> Reply {
    let z = upper(&cmd[0]) == "ZRANDMEMBER";
    let withscores = z && has_arg(cmd, "WITHSCORES");
    let items: Vec<Reply> = match &r {
        Reply::Bulk(_) => vec![r.clone()],
        Reply::Array(v) => v.clone(),
        _ => return r,
    };
    let all = if z {
        conn.cmd(&[b"ZRANGE".as_slice(), &cmd[1], b"0", b"-1", b"WITHSCORES"])
    } else {
        conn.cmd(&[b"SMEMBERS".as_slice(), &cmd[1]])
    };
    let all = match all {
        Reply::Array(v) => v,
        _ => Vec::new(),
    };
    let units: Vec<Vec<Reply>> = if withscores {
        items.chunks(2).map(|c| c.to_vec()).collect()
    } else {
        items.iter().map(|x| vec![x.clone()]).collect()
    };
    let members: Vec<Vec<Reply>> = if z {
        if withscores {
            all.chunks(2).map(|c| c.to_vec()).collect()
        } else {
            all.chunks(2).map(|c| vec![c[0].clone()]).collect()
        }
    } else {
        all.iter().map(|x| vec![x.clone()]).collect()
    };
    let all_members = units.iter().all(|u| members.contains(u));
    let count_pos = cmd
        .get(2)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| c >= 0);
    let mut distinct = true;
    if count_pos {
        let mut seen = Vec::new();
        for u in &units {
            if seen.contains(u) {
                distinct = false;
            }
            seen.push(u.clone());
        }
    }
    Reply::Array(vec![shape(&r), Reply::Bool(all_members), Reply::Bool(distinct)])
}

pub fn shape(r: &Reply) -> Reply {
    match r {
        Reply::Bulk(_) => Reply::Bulk(b"<bulk>".to_vec()),
        Reply::Int(_) => Reply::Int(0),
        Reply::Array(v) => Reply::Array(v.iter().map(shape).collect()),
        other => other.clone(),
    }
}

pub fn sorted(r: &Reply) -> Reply {
    match r {
        Reply::Array(v) => {
            let mut v = v.clone();
            v.sort_by(|a, b| format!("{:?}", a).cmp(&format!("{:?}", b)));
            Reply::Array(v)
        }
        other => other.clone(),
    }
}

/// Run one command on one connection and return its normalised reply.
pub fn run(conn: &mut Raw, cmd: &Cmd, in_multi: bool) -> Reply {
    let rule = if in_multi { Rule::Exact } else { rule(cmd) };
    if rule == Rule::Scan {
        return scan_all(conn, cmd);
    }
    let mut hashtable = false;
    if rule == Rule::HashOrder && cmd.len() == 2 {
        let enc = conn.cmd(&[b"OBJECT".as_slice(), b"ENCODING", &cmd[1]]);
        hashtable = enc == Reply::Bulk(b"hashtable".to_vec());
    }
    conn.send_cmd(cmd);
    let r = mask_auto_ids(conn.read());
    match rule {
        Rule::Shape => shape(&r),
        Rule::RandMember => rand_member(conn, cmd, r),
        Rule::StreamTimes => mask_stream_times(cmd, r),
        Rule::Spop => r,
        Rule::Sorted => sorted(&r),
        Rule::SortedPairs => sorted_pairs(&r),
        Rule::HashOrder if hashtable => {
            if upper(&cmd[0]) == "DUMP" {
                shape(&r)
            } else if upper(&cmd[0]) == "HGETALL" {
                sorted_pairs(&r)
            } else {
                sorted(&r)
            }
        }
        _ => {
            let name = upper(&cmd[0]);
            let sub = cmd.get(1).map(|s| upper(s)).unwrap_or_default();
            if name == "OBJECT" && sub == "ENCODING" && matches!(r.as_bytes(), Some(b"int" | b"embstr" | b"raw")) {
                // String encodings are not tracked like Redis's (see README): class only.
                Reply::Bulk(b"<string encoding>".to_vec())
            } else if name == "OBJECT" && sub == "REFCOUNT" && matches!(r, Reply::Int(_)) {
                shape(&r)
            } else {
                r
            }
        }
    }
}

/// Compare two normalised replies under the command's rule.
pub fn same(cmd: &Cmd, in_multi: bool, a: &Reply, b: &Reply) -> bool {
    match (if in_multi { Rule::Exact } else { rule(cmd) }, a, b) {
        (Rule::Spop, Reply::Array(x), Reply::Array(y)) => x.len() == y.len(),
        (Rule::Spop, Reply::Bulk(_), Reply::Bulk(_)) => true,
        (Rule::Approx(tol), Reply::Int(x), Reply::Int(y)) if *x >= 0 && *y >= 0 => (x - y).abs() <= tol,
        _ => a == b,
    }
}

pub fn sorted_pairs(r: &Reply) -> Reply {
    match r {
        Reply::Array(v) => {
            let mut p: Vec<Reply> = v.chunks(2).map(|c| Reply::Array(c.to_vec())).collect();
            p.sort_by(|a, b| format!("{:?}", a).cmp(&format!("{:?}", b)));
            Reply::Array(p)
        }
        other => other.clone(),
    }
}

pub fn scan_all(conn: &mut Raw, cmd: &Cmd) -> Reply {
    let cur_pos = if upper(&cmd[0]) == "SCAN" { 1 } else { 2 };
    let pairs = matches!(upper(&cmd[0]).as_str(), "HSCAN" | "ZSCAN");
    let mut cmd = cmd.clone();
    let mut all = Vec::new();
    for _ in 0..10_000 {
        conn.send_cmd(&cmd);
        let r = conn.read();
        let Reply::Array(v) = &r else { return r };
        let (Some(Reply::Bulk(cur)), Some(Reply::Array(items))) = (v.first(), v.get(1)) else {
            return r;
        };
        if pairs {
            // HSCAN/ZSCAN: field/value (member/score) pairs
            for p in items.chunks(2) {
                all.push(Reply::Array(p.to_vec()));
            }
        } else {
            all.extend(items.iter().cloned());
        }
        if cur.as_slice() == b"0" {
            break;
        }
        cmd[cur_pos] = cur.clone();
    }
    all.sort_by(|a, b| format!("{:?}", a).cmp(&format!("{:?}", b)));
    all.dedup();
    Reply::Array(all)
}

pub fn show(cmd: &Cmd) -> String {
    cmd.iter()
        .map(|a| {
            let s = String::from_utf8_lossy(a);
            if a.is_empty() || a.iter().any(|&b| b <= b' ' || b >= 0x7f || b == b'"') {
                format!("{:?}", s)
            } else {
                s.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lex range commands on a sorted set whose scores are not all equal have an unspecified
/// result (Redis's answer depends on its skiplist levels or listpack scan).
pub fn lex_key(cmd: &Cmd) -> Option<&[u8]> {
    if cmd.len() < 3 {
        return None;
    }
    match upper(&cmd[0]).as_str() {
        "ZRANGEBYLEX" | "ZREVRANGEBYLEX" | "ZLEXCOUNT" | "ZREMRANGEBYLEX" => Some(&cmd[1]),
        "ZRANGE" if has_arg(cmd, "BYLEX") => Some(&cmd[1]),
        "ZRANGESTORE" if has_arg(cmd, "BYLEX") => Some(&cmd[2]),
        _ => None,
    }
}

pub fn lex_unspecified(redis: &mut Raw, cmd: &Cmd) -> bool {
    let Some(key) = lex_key(cmd) else { return false };
    match redis.cmd(&[b"ZRANGE".as_slice(), key, b"0", b"-1", b"WITHSCORES"]) {
        Reply::Array(v) => {
            let scores: Vec<&Reply> = v.iter().skip(1).step_by(2).collect();
            scores.windows(2).any(|w| w[0] != w[1])
        }
        _ => false,
    }
}

/// After SPOP popped different random members on the two servers, put ferrocache's set back in
/// Redis's state (re-add what only it popped, remove what only Redis popped) and check that the
/// sets are then equal (which also checks that ferrocache popped actual members).
pub fn spop_repair(a: &mut Raw, b: &mut Raw, key: &[u8], ra: &Reply, rb: &Reply) -> bool {
    let list = |r: &Reply| -> Vec<Vec<u8>> {
        match r {
            Reply::Bulk(x) => vec![x.clone()],
            Reply::Array(v) => v.iter().filter_map(|x| x.as_bytes().map(|b| b.to_vec())).collect(),
            _ => Vec::new(),
        }
    };
    let (fa, fb) = (list(ra), list(rb));
    if fa == fb {
        return true;
    }
    let readd: Vec<&Vec<u8>> = fa.iter().filter(|x| !fb.contains(x)).collect();
    let rem: Vec<&Vec<u8>> = fb.iter().filter(|x| !fa.contains(x)).collect();
    if !readd.is_empty() {
        let mut c: Cmd = vec![b"SADD".to_vec(), key.to_vec()];
        c.extend(readd.into_iter().cloned());
        a.cmd(&c);
    }
    if !rem.is_empty() {
        let mut c: Cmd = vec![b"SREM".to_vec(), key.to_vec()];
        c.extend(rem.into_iter().cloned());
        a.cmd(&c);
    }
    let sa = sorted(&a.cmd(&[b"SMEMBERS".as_slice(), key]));
    let sb = sorted(&b.cmd(&[b"SMEMBERS".as_slice(), key]));
    if sa != sb {
        eprintln!("SPOP repair: sets differ: ferrocache {:?} redis {:?}", sa, sb);
        return false;
    }
    // Redis rebuilds the set when few members remain (intset again if they are all integers):
    // the encoding follows the members each server kept, so if it now differs, drop the key.
    let enc = [b"OBJECT".as_slice(), b"ENCODING", key];
    if a.cmd(&enc) != b.cmd(&enc) {
        a.cmd(&[b"DEL".as_slice(), key]);
        b.cmd(&[b"DEL".as_slice(), key]);
    }
    true
}
