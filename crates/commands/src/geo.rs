//! Geo commands (Redis 7.0 geo.c). Positions are sorted-set scores (52-bit geohashes).

use crate::zsets::{read_zset, store_zset, zlimits};
use ferrocache_engine::geo::{
    decode_score, encode_score, format_coord, format_distance, geohash_get_distance, geohash_to_string, parse_unit,
    search_ranges, sort_points, validate_long_lat, GeoPoint, GeoShape,
};
use ferrocache_engine::zset::{parse_score, ScoreRange, SortedSet, ZaddFlags};
use ferrocache_engine::{notify, Value};
use ferrocache_node::table::{flags::*, Command};
use ferrocache_node::util::*;
use ferrocache_node::Ctx;
use ferrocache_protocol::resp::{Args, ReplyBuf};

const G: &str = "geo";

pub static COMMANDS: &[Command] = &[
    Command::new("geoadd", -5, WRITE | DENYOOM, (1, 1, 1), geoadd).group(G),
    Command::new("geodist", -4, READONLY, (1, 1, 1), geodist).group(G),
    Command::new("geohash", -2, READONLY, (1, 1, 1), geohash).group(G),
    Command::new("geopos", -2, READONLY, (1, 1, 1), geopos).group(G),
    Command::new("georadius", -6, WRITE | DENYOOM, (1, 1, 1), georadius).group(G).keys(keys_georadius),
    Command::new("georadius_ro", -6, READONLY, (1, 1, 1), georadius_ro).group(G),
    Command::new("georadiusbymember", -5, WRITE | DENYOOM, (1, 1, 1), georadiusbymember)
        .group(G)
        .keys(keys_georadiusbymember),
    Command::new("georadiusbymember_ro", -5, READONLY, (1, 1, 1), georadiusbymember_ro).group(G),
    Command::new("geosearch", -7, READONLY, (1, 1, 1), geosearch).group(G),
    Command::new("geosearchstore", -8, WRITE | DENYOOM, (1, 2, 1), geosearchstore).group(G),
];

fn store_keys(a: Args, from: usize) -> Vec<usize> {
    let mut v = vec![1];
    let mut i = from;
    while i < a.len() {
        if (eq_ic(&a[i], "store") || eq_ic(&a[i], "storedist")) && i + 1 < a.len() {
            v.push(i + 1);
            i += 1;
        }
        i += 1;
    }
    v
}
fn keys_georadius(a: Args) -> Vec<usize> {
    store_keys(a, 6)
}
fn keys_georadiusbymember(a: Args) -> Vec<usize> {
    store_keys(a, 5)
}

/// Longitude and latitude arguments (extractLongLatOrReply).
fn lon_lat(out: &mut ReplyBuf, lon: &[u8], lat: &[u8]) -> Option<[f64; 2]> {
    let mut xy = [0.0; 2];
    for (i, a) in [lon, lat].into_iter().enumerate() {
        match parse_score(a) {
            Some(v) => xy[i] = v,
            None => {
                out.error(ERR_NOT_FLOAT);
                return None;
            }
        }
    }
    if let Err(e) = validate_long_lat(xy[0], xy[1]) {
        out.error(&e.to_string());
        return None;
    }
    Some(xy)
}

fn unit(out: &mut ReplyBuf, u: &[u8]) -> Option<f64> {
    match parse_unit(u) {
        Ok(c) => Some(c),
        Err(e) => {
            out.error(&e.to_string());
            None
        }
    }
}

fn num(out: &mut ReplyBuf, a: &[u8], msg: &str) -> Option<f64> {
    match parse_score(a) {
        Some(v) => Some(v),
        None => {
            out.error(msg);
            None
        }
    }
}

/// addReplyHumanLongDouble: bulk in RESP2, a double in RESP3.
fn reply_coord(out: &mut ReplyBuf, v: f64) {
    let s = format_coord(v);
    if out.resp3 {
        out.raw(b",");
        out.raw(s.as_bytes());
        out.raw(b"\r\n");
    } else {
        out.bulk(s.as_bytes());
    }
}

fn geoadd(ctx: &mut Ctx, a: Args) {
    let (mut xx, mut nx, mut ch) = (false, false, false);
    let mut idx = 2;
    while idx < a.len() {
        if eq_ic(&a[idx], "nx") {
            nx = true
        } else if eq_ic(&a[idx], "xx") {
            xx = true
        } else if eq_ic(&a[idx], "ch") {
            ch = true
        } else {
            break;
        }
        idx += 1;
    }
    if !(a.len() - idx).is_multiple_of(3) || (xx && nx) {
        return ctx.out.error(ERR_SYNTAX);
    }
    let elements = (a.len() - idx) / 3;
    let mut items = Vec::with_capacity(elements);
    for i in 0..elements {
        let b = idx + i * 3;
        let Some(xy) = lon_lat(ctx.out, &a[b], &a[b + 1]) else { return };
        let Ok(score) = encode_score(xy[0], xy[1]) else { return ctx.out.error(ERR_SYNTAX) };
        items.push((score, &a[b + 2]));
    }
    if items.is_empty() {
        return ctx.out.error(ERR_SYNTAX);
    }
    let lim = zlimits(ctx);
    let key = &a[1];
    let dbi = ctx.client.db;
    let (mut db, out) = ctx.parts();
    let exists = match db.get_mut(key) {
        None => false,
        Some(e) if matches!(e.value, Value::ZSet(_)) => true,
        Some(_) => return out.error(ERR_WRONGTYPE),
    };
    let (mut added, mut updated) = (0i64, 0i64);
    if exists || !xx {
        if !exists {
            db.set(key, Value::ZSet(Box::new(SortedSet::with_hint(1, items[0].1.len(), &lim))), false);
            db.fx.ready.push((dbi, ferrocache_engine::SmallBytes::new(key)));
        }
        let Some(Value::ZSet(z)) = db.get_mut(key).map(|e| &mut e.value) else { unreachable!() };
        let f = ZaddFlags { nx, xx, ..Default::default() };
        for (s, m) in &items {
            if let Ok(r) = z.zadd(m, *s as f64, f, &lim) {
                added += r.is_added() as i64;
                updated += r.is_updated() as i64;
            }
        }
    }
    out.int(if ch { added + updated } else { added });
    if added + updated > 0 {
        db.modified(key, notify::ZSET, "zadd");
        let mut argv = vec![b"zadd".to_vec(), key.to_vec()];
        for o in a.iter().take(idx).skip(2) {
            argv.push(o.to_vec());
        }
        for (s, m) in &items {
            argv.push(s.to_string().into_bytes());
            argv.push(m.to_vec());
        }
        db.fx.propagate(dbi, argv);
    }
    db.remove_if_empty(key);
    ctx.propagate_original = false;
}

fn geodist(ctx: &mut Ctx, a: Args) {
    let mut to_meter = 1.0;
    if a.len() == 5 {
        let Some(c) = unit(ctx.out, &a[4]) else { return };
        to_meter = c;
    } else if a.len() > 5 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let (mut db, out) = ctx.parts();
    let Ok(z) = read_zset(&mut db, out, &a[1]) else { return };
    let Some(z) = z else { return out.null() };
    let (Some(s1), Some(s2)) = (z.score(&a[2]), z.score(&a[3])) else { return out.null() };
    let p1 = decode_score(s1);
    let p2 = decode_score(s2);
    let d = geohash_get_distance(p1[0], p1[1], p2[0], p2[1]) / to_meter;
    out.bulk(format_distance(d).as_bytes());
}

fn geohash(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    let Ok(z) = read_zset(&mut db, out, &a[1]) else { return };
    out.array(a.len() - 2);
    for m in a.iter().skip(2) {
        match z.and_then(|z| z.score(m)).and_then(geohash_to_string) {
            Some(s) => out.bulk(s.as_bytes()),
            None => out.null(),
        }
    }
}

fn geopos(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    let Ok(z) = read_zset(&mut db, out, &a[1]) else { return };
    out.array(a.len() - 2);
    for m in a.iter().skip(2) {
        match z.and_then(|z| z.score(m)) {
            Some(s) => {
                let xy = decode_score(s);
                out.array(2);
                reply_coord(out, xy[0]);
                reply_coord(out, xy[1]);
            }
            None => out.null_array(),
        }
    }
}

const RADIUS_COORDS: u32 = 1;
const RADIUS_MEMBER: u32 = 2;
const RADIUS_NOSTORE: u32 = 4;
const GEOSEARCH: u32 = 8;
const GEOSEARCHSTORE: u32 = 16;

fn georadius(ctx: &mut Ctx, a: Args) {
    georadius_generic(ctx, a, 1, RADIUS_COORDS)
}
fn georadius_ro(ctx: &mut Ctx, a: Args) {
    georadius_generic(ctx, a, 1, RADIUS_COORDS | RADIUS_NOSTORE)
}
fn georadiusbymember(ctx: &mut Ctx, a: Args) {
    georadius_generic(ctx, a, 1, RADIUS_MEMBER)
}
fn georadiusbymember_ro(ctx: &mut Ctx, a: Args) {
    georadius_generic(ctx, a, 1, RADIUS_MEMBER | RADIUS_NOSTORE)
}
fn geosearch(ctx: &mut Ctx, a: Args) {
    georadius_generic(ctx, a, 1, GEOSEARCH)
}
fn geosearchstore(ctx: &mut Ctx, a: Args) {
    georadius_generic(ctx, a, 2, GEOSEARCH | GEOSEARCHSTORE)
}

#[derive(PartialEq, Clone, Copy)]
enum Sort {
    None,
    Asc,
    Desc,
}

fn georadius_generic(ctx: &mut Ctx, a: Args, src: usize, flags: u32) {
    let lim = zlimits(ctx);
    let (mut db, out) = ctx.parts();
    // Snapshot what the search needs from the source (members + scores), so the database
    // view is free for the store.
    let mut center_xy = [0.0f64; 2];
    let mut conversion = 1.0;
    let mut radius: Option<f64> = None;
    let mut boxwh: Option<(f64, f64)> = None;
    let mut storekey: Option<usize> = None;
    let mut storedist = false;
    let base_args;
    {
        let z = match read_zset(&mut db, out, &a[src]) {
            Err(()) => return,
            Ok(z) => z,
        };
        if flags & RADIUS_COORDS != 0 {
            base_args = 6;
            let Some(xy) = lon_lat(out, &a[2], &a[3]) else { return };
            center_xy = xy;
            let Some(r) = num(out, &a[4], "ERR need numeric radius") else { return };
            if r < 0.0 {
                return out.error("ERR radius cannot be negative");
            }
            let Some(c) = unit(out, &a[5]) else { return };
            radius = Some(r);
            conversion = c;
        } else if flags & RADIUS_MEMBER != 0 {
            base_args = 5;
            if let Some(z) = z {
                let Some(s) = z.score(&a[2]) else { return out.error("ERR could not decode requested zset member") };
                center_xy = decode_score(s);
                let Some(r) = num(out, &a[3], "ERR need numeric radius") else { return };
                if r < 0.0 {
                    return out.error("ERR radius cannot be negative");
                }
                let Some(c) = unit(out, &a[4]) else { return };
                radius = Some(r);
                conversion = c;
            }
        } else {
            base_args = if flags & GEOSEARCHSTORE != 0 { 3 } else { 2 };
            if flags & GEOSEARCHSTORE != 0 {
                storekey = Some(1);
            }
        }
        let (mut withdist, mut withhash, mut withcoords) = (false, false, false);
        let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
        let mut sort = Sort::None;
        let mut any = false;
        let mut count: i64 = 0;
        let remaining = a.len().saturating_sub(base_args);
        let mut i = 0;
        while i < remaining {
            let j = base_args + i;
            let arg = &a[j];
            if eq_ic(arg, "withdist") {
                withdist = true;
            } else if eq_ic(arg, "withhash") {
                withhash = true;
            } else if eq_ic(arg, "withcoord") {
                withcoords = true;
            } else if eq_ic(arg, "any") {
                any = true;
            } else if eq_ic(arg, "asc") {
                sort = Sort::Asc;
            } else if eq_ic(arg, "desc") {
                sort = Sort::Desc;
            } else if eq_ic(arg, "count") && i + 1 < remaining {
                let Some(c) = int_arg(out, &a[j + 1]) else { return };
                if c <= 0 {
                    return out.error("ERR COUNT must be > 0");
                }
                count = c;
                i += 1;
            } else if (eq_ic(arg, "store") || eq_ic(arg, "storedist"))
                && i + 1 < remaining
                && flags & (RADIUS_NOSTORE | GEOSEARCH) == 0
            {
                storekey = Some(j + 1);
                storedist = eq_ic(arg, "storedist");
                i += 1;
            } else if eq_ic(arg, "storedist") && flags & GEOSEARCH != 0 && flags & GEOSEARCHSTORE != 0 {
                storedist = true;
            } else if eq_ic(arg, "frommember") && i + 1 < remaining && flags & GEOSEARCH != 0 && !fromloc {
                if let Some(z) = z {
                    let Some(s) = z.score(&a[j + 1]) else {
                        return out.error("ERR could not decode requested zset member");
                    };
                    center_xy = decode_score(s);
                }
                frommember = true;
                i += 1;
            } else if eq_ic(arg, "fromlonlat") && i + 2 < remaining && flags & GEOSEARCH != 0 && !frommember {
                let Some(xy) = lon_lat(out, &a[j + 1], &a[j + 2]) else { return };
                center_xy = xy;
                fromloc = true;
                i += 2;
            } else if eq_ic(arg, "byradius") && i + 2 < remaining && flags & GEOSEARCH != 0 && !bybox {
                let Some(r) = num(out, &a[j + 1], "ERR need numeric radius") else { return };
                if r < 0.0 {
                    return out.error("ERR radius cannot be negative");
                }
                let Some(c) = unit(out, &a[j + 2]) else { return };
                radius = Some(r);
                conversion = c;
                byradius = true;
                i += 2;
            } else if eq_ic(arg, "bybox") && i + 3 < remaining && flags & GEOSEARCH != 0 && !byradius {
                let Some(w) = num(out, &a[j + 1], "ERR need numeric width") else { return };
                let Some(h) = num(out, &a[j + 2], "ERR need numeric height") else { return };
                if h < 0.0 || w < 0.0 {
                    return out.error("ERR height or width cannot be negative");
                }
                let Some(c) = unit(out, &a[j + 3]) else { return };
                boxwh = Some((w, h));
                conversion = c;
                bybox = true;
                i += 3;
            } else {
                return out.error(ERR_SYNTAX);
            }
            i += 1;
        }
        if storekey.is_some() && (withdist || withhash || withcoords) {
            return out.error(&format!(
                "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
                if flags & GEOSEARCHSTORE != 0 { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" }
            ));
        }
        let name = String::from_utf8_lossy(&a[0]).into_owned();
        if flags & GEOSEARCH != 0 && !(frommember || fromloc) {
            return out.error(&format!("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"));
        }
        if flags & GEOSEARCH != 0 && !(byradius || bybox) {
            return out.error(&format!("ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"));
        }
        if any && count == 0 {
            return out.error("ERR the ANY argument requires COUNT argument");
        }
        let Some(z) = z else {
            match storekey {
                Some(k) => {
                    if db.remove(&a[k]).is_some() {
                        db.modified(&a[k], notify::GENERIC, "del");
                    }
                    out.int(0);
                }
                None => out.empty_array(),
            }
            return;
        };
        if count != 0 && sort == Sort::None && !any {
            sort = Sort::Asc;
        }
        let shape = match (radius, boxwh) {
            (_, Some((w, h))) => GeoShape::rect(center_xy[0], center_xy[1], w, h, conversion),
            (Some(r), None) => GeoShape::radius(center_xy[0], center_xy[1], r, conversion),
            (None, None) => unreachable!(),
        };
        let limit = if any { count as usize } else { 0 };
        let mut points: Vec<GeoPoint<Vec<u8>>> = Vec::new();
        'boxes: for (min, max) in search_ranges(&shape) {
            if !points.is_empty() && limit != 0 && points.len() >= limit {
                break;
            }
            let r = ScoreRange { min: min as f64, max: max as f64, minex: false, maxex: true };
            for (m, score) in z.range_by_score(&r, false, 0, -1) {
                if let Some((xy, dist)) = shape.within(score) {
                    points.push(GeoPoint { longitude: xy[0], latitude: xy[1], dist, score, member: m.to_vec() });
                }
                if !points.is_empty() && limit != 0 && points.len() >= limit {
                    break 'boxes;
                }
            }
        }
        if points.is_empty() && storekey.is_none() {
            return out.empty_array();
        }
        let returned = if count == 0 || (points.len() as i64) < count { points.len() } else { count as usize };
        if sort != Sort::None {
            sort_points(&mut points, sort == Sort::Desc);
        }
        points.truncate(returned);
        match storekey {
            None => {
                let opts = withdist as usize + withhash as usize + withcoords as usize;
                out.array(returned);
                for p in &points {
                    if opts > 0 {
                        out.array(opts + 1);
                    }
                    out.bulk(&p.member);
                    if withdist {
                        out.bulk(format_distance(p.dist / conversion).as_bytes());
                    }
                    if withhash {
                        out.int(p.score as i64);
                    }
                    if withcoords {
                        out.array(2);
                        reply_coord(out, p.longitude);
                        reply_coord(out, p.latitude);
                    }
                }
            }
            Some(k) => {
                let mut dst = SortedSet::new_skiplist();
                for p in &points {
                    let s = if storedist { p.dist / conversion } else { p.score };
                    dst.insert(&p.member, s, &lim);
                }
                dst.convert_to_listpack_if_fits(&lim);
                let ev = if flags & GEOSEARCH != 0 { "geosearchstore" } else { "georadiusstore" };
                store_zset(&mut db, &a[k], dst, ev);
                out.int(returned as i64);
            }
        }
    }
}
