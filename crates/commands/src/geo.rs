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
use ferrocache_node::{or_reply, CommandError, Ctx, ErrorReply};
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
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<[f64; 2], CommandError> {
    let mut xy = [0.0; 2];
    for (i, a) in [lon, lat].into_iter().enumerate() {
        xy[i] = parse_score(a).ok_or(CommandError::NotFloat)?;
    }
    validate_long_lat(xy[0], xy[1]).map_err(|e| CommandError::Custom(e.to_string()))?;
    Ok(xy)
}

fn unit(u: &[u8]) -> Result<f64, CommandError> {
    parse_unit(u).map_err(|e| CommandError::Custom(e.to_string()))
}

fn num(a: &[u8], msg: &'static str) -> Result<f64, CommandError> {
    parse_score(a).ok_or(CommandError::Static(msg))
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
        let xy = match lon_lat(&a[b], &a[b + 1]) {
            Ok(xy) => xy,
            Err(e) => return ctx.fail(&e),
        };
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
        match unit(&a[4]) {
            Ok(c) => to_meter = c,
            Err(e) => return ctx.fail(&e),
        }
    } else if a.len() > 5 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let (mut db, out) = ctx.parts();
    let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) else { return };
    let Some(z) = z else { return out.null() };
    let (Some(s1), Some(s2)) = (z.score(&a[2]), z.score(&a[3])) else { return out.null() };
    let p1 = decode_score(s1);
    let p2 = decode_score(s2);
    let d = geohash_get_distance(p1[0], p1[1], p2[0], p2[1]) / to_meter;
    out.bulk(format_distance(d).as_bytes());
}

fn geohash(ctx: &mut Ctx, a: Args) {
    let (mut db, out) = ctx.parts();
    let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) else { return };
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
    let Some(z) = or_reply(out, read_zset(&mut db, &a[1])) else { return };
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

#[derive(Debug, PartialEq, Clone, Copy)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// Which FROM* option gave GEOSEARCH its centre.
#[derive(Debug, PartialEq, Clone, Copy)]
enum GeoFrom {
    Member,
    LonLat,
}

/// The search area: BYRADIUS (or GEORADIUS's radius) or BYBOX, in the unit given;
/// `conversion` is that unit in meters.
#[derive(Debug, PartialEq, Clone, Copy)]
enum GeoBy {
    Radius { radius: f64, conversion: f64 },
    Box { width: f64, height: f64, conversion: f64 },
}

impl GeoBy {
    /// A radius and its unit (GEORADIUS*, BYRADIUS).
    fn radius(r: &[u8], u: &[u8]) -> Result<Self, CommandError> {
        let radius = num(r, "ERR need numeric radius")?;
        if radius < 0.0 {
            return Err(CommandError::Static("ERR radius cannot be negative"));
        }
        Ok(GeoBy::Radius { radius, conversion: unit(u)? })
    }
    /// A width, a height and their unit (BYBOX).
    fn rect(w: &[u8], h: &[u8], u: &[u8]) -> Result<Self, CommandError> {
        let width = num(w, "ERR need numeric width")?;
        let height = num(h, "ERR need numeric height")?;
        if height < 0.0 || width < 0.0 {
            return Err(CommandError::Static("ERR height or width cannot be negative"));
        }
        Ok(GeoBy::Box { width, height, conversion: unit(u)? })
    }
    fn conversion(self) -> f64 {
        match self {
            GeoBy::Radius { conversion, .. } | GeoBy::Box { conversion, .. } => conversion,
        }
    }
    fn shape(self, xy: [f64; 2]) -> GeoShape {
        match self {
            GeoBy::Radius { radius, conversion } => GeoShape::radius(xy[0], xy[1], radius, conversion),
            GeoBy::Box { width, height, conversion } => GeoShape::rect(xy[0], xy[1], width, height, conversion),
        }
    }
}

/// A parsed GEORADIUS / GEORADIUS_RO / GEORADIUSBYMEMBER / GEORADIUSBYMEMBER_RO / GEOSEARCH /
/// GEOSEARCHSTORE (`flags` says which), over the borrowed arguments.
#[derive(Debug, PartialEq, Clone)]
struct GeoSearchCommand<'a> {
    /// The source key.
    key: &'a [u8],
    /// The centre: [0, 0] while unknown (a member, when the source key is missing).
    center: [f64; 2],
    /// GEOSEARCH's FROMMEMBER / FROMLONLAT.
    from: Option<GeoFrom>,
    /// The area; None only when it is a member's and the source key is missing.
    by: Option<GeoBy>,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    any: bool,
    /// COUNT; 0 without it.
    count: i64,
    sort: Sort,
    /// STORE / STOREDIST destination (GEOSEARCHSTORE's first key).
    store: Option<&'a [u8]>,
    storedist: bool,
}

impl<'a> GeoSearchCommand<'a> {
    /// Redis's georadiusGeneric argument checks, in its order. Like Redis it reads the
    /// source's members where it meets them (GEORADIUSBYMEMBER's member, FROMMEMBER), so an
    /// unknown member is reported before the options after it are checked; `z` is the
    /// source, None when the key is missing (members are then not looked up).
    fn parse(a: Args<'a>, src: usize, flags: u32, z: Option<&SortedSet>) -> Result<Self, CommandError> {
        let arg = |i: usize| a.get(i).unwrap_or_default();
        let member_xy = |z: &SortedSet, m: &[u8]| match z.score(m) {
            Some(s) => Ok(decode_score(s)),
            None => Err(CommandError::Static("ERR could not decode requested zset member")),
        };
        let mut c = GeoSearchCommand {
            key: arg(src),
            center: [0.0; 2],
            from: None,
            by: None,
            withdist: false,
            withhash: false,
            withcoord: false,
            any: false,
            count: 0,
            sort: Sort::None,
            store: None,
            storedist: false,
        };
        let base_args;
        if flags & RADIUS_COORDS != 0 {
            base_args = 6;
            c.center = lon_lat(arg(2), arg(3))?;
            c.by = Some(GeoBy::radius(arg(4), arg(5))?);
        } else if flags & RADIUS_MEMBER != 0 {
            base_args = 5;
            if let Some(z) = z {
                c.center = member_xy(z, arg(2))?;
                c.by = Some(GeoBy::radius(arg(3), arg(4))?);
            }
        } else {
            base_args = if flags & GEOSEARCHSTORE != 0 { 3 } else { 2 };
            if flags & GEOSEARCHSTORE != 0 {
                c.store = Some(arg(1));
            }
        }
        let remaining = a.len().saturating_sub(base_args);
        let mut i = 0;
        while i < remaining {
            let j = base_args + i;
            let o = arg(j);
            if eq_ic(o, "withdist") {
                c.withdist = true;
            } else if eq_ic(o, "withhash") {
                c.withhash = true;
            } else if eq_ic(o, "withcoord") {
                c.withcoord = true;
            } else if eq_ic(o, "any") {
                c.any = true;
            } else if eq_ic(o, "asc") {
                c.sort = Sort::Asc;
            } else if eq_ic(o, "desc") {
                c.sort = Sort::Desc;
            } else if eq_ic(o, "count") && i + 1 < remaining {
                let n = parse_i64(arg(j + 1)).ok_or(CommandError::NotInt)?;
                if n <= 0 {
                    return Err(CommandError::Static("ERR COUNT must be > 0"));
                }
                c.count = n;
                i += 1;
            } else if (eq_ic(o, "store") || eq_ic(o, "storedist"))
                && i + 1 < remaining
                && flags & (RADIUS_NOSTORE | GEOSEARCH) == 0
            {
                c.store = Some(arg(j + 1));
                c.storedist = eq_ic(o, "storedist");
                i += 1;
            } else if eq_ic(o, "storedist") && flags & GEOSEARCH != 0 && flags & GEOSEARCHSTORE != 0 {
                c.storedist = true;
            } else if eq_ic(o, "frommember")
                && i + 1 < remaining
                && flags & GEOSEARCH != 0
                && c.from != Some(GeoFrom::LonLat)
            {
                if let Some(z) = z {
                    c.center = member_xy(z, arg(j + 1))?;
                }
                c.from = Some(GeoFrom::Member);
                i += 1;
            } else if eq_ic(o, "fromlonlat")
                && i + 2 < remaining
                && flags & GEOSEARCH != 0
                && c.from != Some(GeoFrom::Member)
            {
                c.center = lon_lat(arg(j + 1), arg(j + 2))?;
                c.from = Some(GeoFrom::LonLat);
                i += 2;
            } else if eq_ic(o, "byradius")
                && i + 2 < remaining
                && flags & GEOSEARCH != 0
                && !matches!(c.by, Some(GeoBy::Box { .. }))
            {
                c.by = Some(GeoBy::radius(arg(j + 1), arg(j + 2))?);
                i += 2;
            } else if eq_ic(o, "bybox")
                && i + 3 < remaining
                && flags & GEOSEARCH != 0
                && !matches!(c.by, Some(GeoBy::Radius { .. }))
            {
                c.by = Some(GeoBy::rect(arg(j + 1), arg(j + 2), arg(j + 3))?);
                i += 3;
            } else {
                return Err(CommandError::Syntax);
            }
            i += 1;
        }
        if c.store.is_some() && (c.withdist || c.withhash || c.withcoord) {
            return Err(CommandError::Custom(format!(
                "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
                if flags & GEOSEARCHSTORE != 0 { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" }
            )));
        }
        let name = String::from_utf8_lossy(arg(0));
        if flags & GEOSEARCH != 0 && c.from.is_none() {
            return Err(CommandError::Custom(format!(
                "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
            )));
        }
        if flags & GEOSEARCH != 0 && c.by.is_none() {
            return Err(CommandError::Custom(format!(
                "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
            )));
        }
        if c.any && c.count == 0 {
            return Err(CommandError::Static("ERR the ANY argument requires COUNT argument"));
        }
        Ok(c)
    }
}

fn georadius_generic(ctx: &mut Ctx, a: Args, src: usize, flags: u32) {
    let lim = zlimits(ctx);
    let (mut db, out) = ctx.parts();
    let z = match read_zset(&mut db, &a[src]) {
        Err(e) => return out.fail(&e),
        Ok(z) => z,
    };
    let c = match GeoSearchCommand::parse(a, src, flags, z) {
        Ok(c) => c,
        Err(e) => return out.fail(&e),
    };
    let Some(z) = z else {
        match c.store {
            Some(k) => {
                if db.remove(k).is_some() {
                    db.modified(k, notify::GENERIC, "del");
                }
                out.int(0);
            }
            None => out.empty_array(),
        }
        return;
    };
    let mut sort = c.sort;
    if c.count != 0 && sort == Sort::None && !c.any {
        sort = Sort::Asc;
    }
    // Present whenever the source key is (see `parse`).
    let by = c.by.expect("a search area");
    let conversion = by.conversion();
    let shape = by.shape(c.center);
    let limit = if c.any { c.count as usize } else { 0 };
    // Snapshot what the search needs from the source (members + scores), so the database
    // view is free for the store.
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
    if points.is_empty() && c.store.is_none() {
        return out.empty_array();
    }
    let count = c.count;
    let returned = if count == 0 || (points.len() as i64) < count { points.len() } else { count as usize };
    if sort != Sort::None {
        sort_points(&mut points, sort == Sort::Desc);
    }
    points.truncate(returned);
    match c.store {
        None => {
            let (withdist, withhash, withcoords) = (c.withdist, c.withhash, c.withcoord);
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
                let s = if c.storedist { p.dist / conversion } else { p.score };
                dst.insert(&p.member, s, &lim);
            }
            dst.convert_to_listpack_if_fits(&lim);
            let ev = if flags & GEOSEARCH != 0 { "geosearchstore" } else { "georadiusstore" };
            store_zset(&mut db, k, dst, ev);
            out.int(returned as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_engine::zset::ZsetLimits;
    use ferrocache_protocol::resp::OwnedArgs;

    const PALERMO: [f64; 2] = [13.361389, 38.115556];
    const CATANIA: [f64; 2] = [15.087269, 37.502669];

    fn source() -> SortedSet {
        let lim = ZsetLimits { max_listpack_entries: 128, max_listpack_value: 64 };
        let mut z = SortedSet::new_skiplist();
        for (m, xy) in [(&b"Palermo"[..], PALERMO), (b"Catania", CATANIA)] {
            z.insert(m, encode_score(xy[0], xy[1]).unwrap() as f64, &lim);
        }
        z
    }
    /// The stored position of a member (its geohash cell's centre).
    fn pos(xy: [f64; 2]) -> [f64; 2] {
        decode_score(encode_score(xy[0], xy[1]).unwrap() as f64)
    }
    /// Parse `s`, as the command named by its first word, over `z`.
    fn parse_with(s: &str, z: Option<&SortedSet>) -> Result<GeoSearchCommand<'static>, String> {
        // Leaked so the parsed command may outlive the helper: test-only.
        let o: &'static OwnedArgs = Box::leak(Box::new(OwnedArgs::from_slices(&s.split(' ').collect::<Vec<_>>())));
        let a = o.args();
        let name = String::from_utf8_lossy(&a[0]).to_ascii_lowercase();
        let (src, flags) = match name.as_str() {
            "georadius" => (1, RADIUS_COORDS),
            "georadius_ro" => (1, RADIUS_COORDS | RADIUS_NOSTORE),
            "georadiusbymember" => (1, RADIUS_MEMBER),
            "georadiusbymember_ro" => (1, RADIUS_MEMBER | RADIUS_NOSTORE),
            "geosearch" => (1, GEOSEARCH),
            "geosearchstore" => (2, GEOSEARCH | GEOSEARCHSTORE),
            _ => unreachable!("{name}"),
        };
        GeoSearchCommand::parse(a, src, flags, z).map_err(|e| e.to_string())
    }
    fn parse(s: &str) -> Result<GeoSearchCommand<'static>, String> {
        parse_with(s, Some(&source()))
    }
    fn err(s: &str) -> String {
        parse(s).unwrap_err()
    }
    fn radius(radius: f64, conversion: f64) -> Option<GeoBy> {
        Some(GeoBy::Radius { radius, conversion })
    }

    #[test]
    fn georadius_good() {
        let c = parse("GEORADIUS G 15 37 200 km WITHDIST withcoord WithHash COUNT 2 ASC").unwrap();
        assert_eq!(c.key, b"G");
        assert_eq!((c.center, c.by, c.from), ([15.0, 37.0], radius(200.0, 1000.0), None));
        assert!(c.withdist && c.withcoord && c.withhash && !c.any);
        assert_eq!((c.count, c.sort, c.store), (2, Sort::Asc, None));
        let c = parse("georadius G 15 37 1 mi desc any count 3 store d").unwrap();
        assert_eq!((c.sort, c.any, c.count, c.store, c.storedist), (Sort::Desc, true, 3, Some(&b"d"[..]), false));
        let c = parse("georadius G 15 37 1 ft STOREDIST d").unwrap();
        assert_eq!((c.store, c.storedist), (Some(&b"d"[..]), true));
        assert_eq!(c.by, radius(1.0, 0.3048));
        // The last of each option wins.
        let c = parse("georadius G 15 37 1 m asc desc count 1 count 5 store a store b").unwrap();
        assert_eq!((c.sort, c.count, c.store), (Sort::Desc, 5, Some(&b"b"[..])));
    }

    #[test]
    fn georadius_errors() {
        assert_eq!(err("georadius G x 37 200 km"), ERR_NOT_FLOAT);
        assert_eq!(err("georadius G 15 y 200 km"), ERR_NOT_FLOAT);
        assert_eq!(err("georadius G 200 37 200 km"), "ERR invalid longitude,latitude pair 200.000000,37.000000");
        assert_eq!(err("georadius G 15 37 abc km"), "ERR need numeric radius");
        assert_eq!(err("georadius G 15 37 -1 km"), "ERR radius cannot be negative");
        assert_eq!(err("georadius G 15 37 1 parsec"), "ERR unsupported unit provided. please use M, KM, FT, MI");
        assert_eq!(err("georadius G 15 37 1 km count 0"), "ERR COUNT must be > 0");
        assert_eq!(err("georadius G 15 37 1 km count x"), ERR_NOT_INT);
        assert_eq!(err("georadius G 15 37 1 km count"), ERR_SYNTAX);
        assert_eq!(err("georadius G 15 37 1 km store"), ERR_SYNTAX);
        assert_eq!(err("georadius G 15 37 1 km foo"), ERR_SYNTAX);
        assert_eq!(err("georadius G 15 37 1 km frommember Palermo"), ERR_SYNTAX);
        assert_eq!(err("georadius G 15 37 1 km byradius 1 km"), ERR_SYNTAX);
        assert_eq!(err("georadius_ro G 15 37 1 km store d"), ERR_SYNTAX);
        assert_eq!(err("georadiusbymember_ro G Palermo 1 km storedist d"), ERR_SYNTAX);
        assert_eq!(
            err("georadius G 15 37 1 km store d withdist"),
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        );
        assert_eq!(err("georadius G 15 37 1 km any"), "ERR the ANY argument requires COUNT argument");
        // Checked in order: the first bad argument decides.
        assert_eq!(err("georadius G 15 37 -1 parsec foo"), "ERR radius cannot be negative");
        assert_eq!(err("georadius G 15 37 1 km foo count 0"), ERR_SYNTAX);
        assert_eq!(err("georadius G 15 37 1 km any count 0"), "ERR COUNT must be > 0");
        assert_eq!(err("georadius G 15 37 1 km any withdist store d"), err("georadius G 15 37 1 km store d withdist"));
    }

    #[test]
    fn georadiusbymember() {
        let c = parse("georadiusbymember G Palermo 100 KM count 1").unwrap();
        assert_eq!((c.center, c.by, c.count), (pos(PALERMO), radius(100.0, 1000.0), 1));
        assert_eq!(err("georadiusbymember G nosuch 1 km"), "ERR could not decode requested zset member");
        assert_eq!(err("georadiusbymember G nosuch abc km"), "ERR could not decode requested zset member");
        assert_eq!(err("georadiusbymember G Palermo abc km"), "ERR need numeric radius");
        // Without the source key neither the member nor the radius is looked at.
        let c = parse_with("georadiusbymember nokey nosuch abc parsec", None).unwrap();
        assert_eq!((c.key, c.by), (&b"nokey"[..], None));
        assert_eq!(parse_with("georadiusbymember nokey m 1 km foo", None).unwrap_err(), ERR_SYNTAX);
    }

    #[test]
    fn geosearch_good() {
        let c = parse("geosearch G frommember Palermo byradius 200 km asc").unwrap();
        assert_eq!((c.from, c.center, c.by), (Some(GeoFrom::Member), pos(PALERMO), radius(200.0, 1000.0)));
        let c = parse("GEOSEARCH G BYBOX 400 300 Mi FROMLONLAT 15 37 WITHCOORD").unwrap();
        assert_eq!((c.from, c.center), (Some(GeoFrom::LonLat), [15.0, 37.0]));
        assert_eq!(c.by, Some(GeoBy::Box { width: 400.0, height: 300.0, conversion: 1609.34 }));
        assert!(c.withcoord);
        // FROMMEMBER twice: the last member is the centre.
        let c = parse("geosearch G frommember Palermo frommember Catania byradius 200 km").unwrap();
        assert_eq!(c.center, pos(CATANIA));
        let c = parse("geosearchstore D G fromlonlat 15 37 bybox 1 2 km storedist count 2 any").unwrap();
        assert_eq!((c.key, c.store, c.storedist), (&b"G"[..], Some(&b"D"[..]), true));
        assert_eq!((c.count, c.any), (2, true));
        let c = parse("geosearchstore D G fromlonlat 15 37 byradius 1 m").unwrap();
        assert_eq!((c.store, c.storedist), (Some(&b"D"[..]), false));
    }

    #[test]
    fn geosearch_errors() {
        let syntax = [
            "geosearch G frommember Palermo fromlonlat 1 2 byradius 1 km",
            "geosearch G fromlonlat 1 2 frommember Palermo byradius 1 km",
            "geosearch G frommember Palermo byradius 1 km bybox 1 1 km",
            "geosearch G frommember Palermo bybox 1 1 km byradius 1 km",
            "geosearch G frommember Palermo byradius 1 km storedist",
            "geosearch G frommember Palermo byradius 1 km store x",
            "geosearchstore D G frommember Palermo byradius 1 km store x",
            "geosearch G frommember Palermo byradius 1",
            "geosearch G frommember Palermo bybox 1 1",
            "geosearch G fromlonlat 1",
        ];
        for s in syntax {
            assert_eq!(err(s), ERR_SYNTAX, "{s}");
        }
        assert_eq!(err("geosearch G frommember Palermo bybox 1 -1 km"), "ERR height or width cannot be negative");
        assert_eq!(err("geosearch G frommember Palermo bybox a 1 km"), "ERR need numeric width");
        assert_eq!(err("geosearch G frommember Palermo bybox 1 a km"), "ERR need numeric height");
        assert_eq!(err("geosearch G frommember Palermo bybox a b parsec"), "ERR need numeric width");
        assert_eq!(err("geosearch G fromlonlat 1 x byradius 1 km"), ERR_NOT_FLOAT);
        assert_eq!(
            err("geosearchstore D G frommember Palermo byradius 1 km withdist"),
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        );
        // The command name as the client typed it.
        assert_eq!(
            err("GeoSearch G byradius 1 km asc withdist"),
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GeoSearch"
        );
        assert_eq!(
            err("geoSEARCH G frommember Palermo asc desc any"),
            "ERR exactly one of BYRADIUS and BYBOX can be specified for geoSEARCH"
        );
        assert_eq!(
            err("geosearch G frommember Palermo byradius 1 km any"),
            "ERR the ANY argument requires COUNT argument"
        );
    }

    #[test]
    fn geosearch_member_lookup_order() {
        // An unknown member is reported where it is met, before later arguments...
        let e = "ERR could not decode requested zset member";
        assert_eq!(err("geosearch G frommember nosuch byradius -1 km"), e);
        assert_eq!(err("geosearch G frommember nosuch foo"), e);
        // ...and after earlier ones.
        assert_eq!(err("geosearch G byradius -1 km frommember nosuch"), "ERR radius cannot be negative");
        assert_eq!(err("geosearch G foo frommember nosuch"), ERR_SYNTAX);
        // Without the source key members are not looked up.
        let c = parse_with("geosearch nokey frommember nosuch byradius 1 km", None).unwrap();
        assert_eq!((c.from, c.center), (Some(GeoFrom::Member), [0.0, 0.0]));
        assert_eq!(
            parse_with("geosearch nokey frommember nosuch byradius -1 km", None).unwrap_err(),
            "ERR radius cannot be negative"
        );
    }
}
