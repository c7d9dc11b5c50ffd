//! HyperLogLog commands (Redis 7.0 hyperloglog.c). HLLs are plain string values.

use ferrocache_engine::hll::{self, is_valid_hll, HllError, HLL_DENSE_SIZE, HLL_HDR_SIZE};
use ferrocache_engine::{notify, Db, Value};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::{CommandError, Ctx, ErrorReply};
use ferrocache_protocol::resp::{Args, ReplyBuf};
use std::sync::atomic::Ordering::Relaxed;

const G: &str = "hyperloglog";

pub static COMMANDS: &[Command] = &[
    Command::new("pfadd", -2, WRITE | DENYOOM | FAST, (1, 1, 1), pfadd).group(G),
    Command::new("pfcount", -2, READONLY | MAY_REPLICATE, (1, -1, 1), pfcount).group(G),
    Command::new("pfmerge", -2, WRITE | DENYOOM, (1, -1, 1), pfmerge).group(G),
    Command::new("pfdebug", 3, WRITE | DENYOOM | ADMIN, (2, 2, 1), pfdebug).group(G),
];

const ERR_NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

fn sparse_max(ctx: &Ctx) -> usize {
    ctx.srv.config().hot.hll_sparse_max_bytes.load(Relaxed)
}

/// isHLLObjectOrReply on a looked-up value: Ok(bytes) for a valid HLL string, else the error
/// for the caller to reply with.
fn hll_bytes(v: &Value) -> Result<&[u8], CommandError> {
    match v.as_bytes() {
        None => Err(CommandError::WrongType),
        Some(b) if !is_valid_hll(b) => Err(CommandError::Static(ERR_NOT_HLL)),
        Some(b) => Ok(b),
    }
}

fn hll_err(out: &mut ReplyBuf, e: HllError) {
    out.error(e.as_str());
}

fn pfadd(ctx: &mut Ctx, a: Args) {
    let smax = sparse_max(ctx);
    let key = &a[1];
    let (mut db, out) = ctx.parts();
    let mut slot: Option<Vec<u8>> = match db.get_mut(key) {
        None => None,
        Some(e) => match hll_bytes(&e.value) {
            Err(e) => return out.fail(&e),
            Ok(b) => Some(b.to_vec()),
        },
    };
    let existed = slot.is_some();
    let elems: Vec<&[u8]> = a.iter().skip(2).collect();
    let r = hll::pfadd(&mut slot, &elems, smax);
    // Keep whatever the operation left in the slot (Redis modifies in place).
    if let Some(v) = slot {
        db.set(key, Value::Raw(Box::new(v)), existed);
    }
    match r {
        Err(e) => hll_err(out, e),
        Ok(updated) => {
            if updated {
                db.modified(key, notify::STRING, "pfadd");
            }
            out.int(updated as i64);
        }
    }
}

fn pfcount(ctx: &mut Ctx, a: Args) {
    let dbi = ctx.client.db;
    let (mut db, out) = ctx.parts();
    if a.len() > 2 {
        let mut vals: Vec<Vec<u8>> = Vec::new();
        for k in a.iter().skip(1) {
            if let Some(e) = db.get(k) {
                match hll_bytes(&e.value) {
                    Err(e) => return out.fail(&e),
                    Ok(b) => vals.push(b.to_vec()),
                }
            }
        }
        let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
        return match hll::pfcount_many(&refs) {
            Ok(n) => out.int(n as i64),
            Err(e) => hll_err(out, e),
        };
    }
    let key = &a[1];
    let Some(e) = db.get(key) else { return out.int(0) };
    if let Err(e) = hll_bytes(&e.value) {
        return out.fail(&e);
    }
    let v = e.value.as_raw_mut().expect("string");
    match hll::pfcount_ext(v) {
        Err(e) => hll_err(out, e),
        Ok((card, changed)) => {
            if changed {
                db.modified(key, 0, "");
                db.fx.propagate(dbi, a.iter().map(|x| x.to_vec()).collect());
            }
            out.int(card as i64);
        }
    }
}

fn pfmerge(ctx: &mut Ctx, a: Args) {
    let smax = sparse_max(ctx);
    let (mut db, out) = ctx.parts();
    let mut dest: Option<Vec<u8>> = None;
    let mut srcs: Vec<Vec<u8>> = Vec::new();
    for (i, k) in a.iter().enumerate().skip(1) {
        if let Some(e) = db.get(k) {
            match hll_bytes(&e.value) {
                Err(e) => return out.fail(&e),
                Ok(b) => {
                    if i == 1 {
                        dest = Some(b.to_vec());
                    } else {
                        srcs.push(b.to_vec());
                    }
                }
            }
        }
    }
    let refs: Vec<&[u8]> = srcs.iter().map(|v| v.as_slice()).collect();
    let existed = dest.is_some();
    match hll::pfmerge(dest.as_deref(), &refs, smax) {
        Err(e) => hll_err(out, e),
        Ok(v) => {
            db.set(&a[1], Value::Raw(Box::new(v)), existed);
            db.modified(&a[1], notify::STRING, "pfadd");
            out.ok();
        }
    }
}

fn decode_sparse(v: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut p = HLL_HDR_SIZE;
    while p < v.len() {
        let b = v[p];
        if b & 0xc0 == 0 {
            parts.push(format!("z:{}", (b & 0x3f) as usize + 1));
            p += 1;
        } else if b & 0xc0 == 0x40 {
            let n = (((b & 0x3f) as usize) << 8 | *v.get(p + 1).unwrap_or(&0) as usize) + 1;
            parts.push(format!("Z:{n}"));
            p += 2;
        } else {
            parts.push(format!("v:{},{}", ((b >> 2) & 0x1f) + 1, (b & 0x3) + 1));
            p += 1;
        }
    }
    parts.join(" ")
}

fn pfdebug(ctx: &mut Ctx, a: Args) {
    let sub = &a[1];
    let key = &a[2];
    let (mut db, out): (Db, &mut ReplyBuf) = ctx.parts();
    let Some(e) = db.get_mut(key) else { return out.error("ERR The specified key does not exist") };
    if let Err(e) = hll_bytes(&e.value) {
        return out.fail(&e);
    }
    let v = e.value.as_raw_mut().expect("string");
    if eq_ic(sub, "getreg") {
        let converted = match hll::to_dense(v) {
            Ok(c) => c,
            Err(e) => return hll_err(out, e),
        };
        let regs = match hll::registers(v) {
            Ok(r) => r,
            Err(e) => return hll_err(out, e),
        };
        debug_assert_eq!(v.len(), HLL_DENSE_SIZE);
        if converted {
            db.modified(key, 0, "");
        }
        out.array(regs.len());
        for r in regs {
            out.int(r as i64);
        }
    } else if eq_ic(sub, "decode") {
        if v[4] != hll::HLL_SPARSE {
            return out.error("ERR HLL encoding is not sparse");
        }
        let s = decode_sparse(v);
        out.bulk(s.as_bytes());
    } else if eq_ic(sub, "encoding") {
        match hll::encoding_name(v) {
            Ok(n) => out.simple(n),
            Err(e) => hll_err(out, e),
        }
    } else if eq_ic(sub, "todense") {
        match hll::to_dense(v) {
            Ok(c) => {
                if c {
                    db.modified(key, 0, "");
                }
                out.int(c as i64);
            }
            Err(e) => hll_err(out, e),
        }
    } else {
        out.error(&format!("ERR Unknown PFDEBUG subcommand '{}'", String::from_utf8_lossy(sub)));
    }
}
