//! Geo math, a bit-exact port of Redis 7.0's `geohash.c`,
//! `geohash_helper.c` and the pure helpers of `geo.c`.
//!
//! Positions are stored as sorted-set scores: a 52-bit interleaved geohash
//! (26 steps of longitude and latitude, latitude limited to the Web
//! Mercator range ±85.05112878). Searching a shape means scanning up to 9
//! score ranges `[min, max)` of the sorted set ([`search_ranges`]) and
//! filtering every candidate with [`GeoShape::within`].
//!
//! The trigonometry goes through the platform libm (Rust's `f64::sin` etc.
//! call into glibc on Linux, exactly like redis-server), so distances are
//! bit-identical on the same platform.

use std::fmt;

/// 26 steps = 52 bits.
pub const GEO_STEP_MAX: u8 = 26;
/// Latitude limits (EPSG:900913 / EPSG:3785 / OSGEO:41001).
pub const GEO_LAT_MIN: f64 = -85.05112878;
/// Upper latitude limit.
pub const GEO_LAT_MAX: f64 = 85.05112878;
/// Lower longitude limit.
pub const GEO_LONG_MIN: f64 = -180.0;
/// Upper longitude limit.
pub const GEO_LONG_MAX: f64 = 180.0;
/// Earth's quadratic mean radius for WGS-84, as used by Redis.
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

/// Errors of the geo commands; `Display` gives Redis's exact error text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GeoError {
    /// Longitude/latitude out of the supported range.
    InvalidLonLat(f64, f64),
    /// Unknown distance unit.
    UnsupportedUnit,
}

impl fmt::Display for GeoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GeoError::InvalidLonLat(lon, lat) => {
                write!(f, "ERR invalid longitude,latitude pair {},{}", format_c_f(*lon), format_c_f(*lat))
            }
            GeoError::UnsupportedUnit => f.write_str("ERR unsupported unit provided. please use M, KM, FT, MI"),
        }
    }
}

impl std::error::Error for GeoError {}

/// C's `printf("%f", x)`.
fn format_c_f(x: f64) -> String {
    if x.is_nan() {
        if x.is_sign_negative() { "-nan" } else { "nan" }.to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{x:.6}")
    }
}

/// A geohash: `step` bits of longitude and latitude interleaved
/// (latitude in the even bits, longitude in the odd bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct GeoHashBits {
    /// The interleaved bits (2 * step significant bits).
    pub bits: u64,
    /// Precision in steps.
    pub step: u8,
}

impl GeoHashBits {
    /// `HASHISZERO`: both bits and step are zero (a discarded neighbor).
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

/// A coordinate range.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GeoHashRange {
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

impl GeoHashRange {
    fn is_zero(&self) -> bool {
        self.max == 0.0 && self.min == 0.0
    }
}

/// The cell a hash decodes to.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GeoHashArea {
    /// The hash.
    pub hash: GeoHashBits,
    /// Longitude span of the cell.
    pub longitude: GeoHashRange,
    /// Latitude span of the cell.
    pub latitude: GeoHashRange,
}

/// The 8 neighbors of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GeoHashNeighbors {
    /// North.
    pub north: GeoHashBits,
    /// East.
    pub east: GeoHashBits,
    /// West.
    pub west: GeoHashBits,
    /// South.
    pub south: GeoHashBits,
    /// North-east.
    pub north_east: GeoHashBits,
    /// South-east.
    pub south_east: GeoHashBits,
    /// North-west.
    pub north_west: GeoHashBits,
    /// South-west.
    pub south_west: GeoHashBits,
}

/// WGS84 ranges used for the scores (`geohashGetCoordRange`).
pub const LONG_RANGE: GeoHashRange = GeoHashRange { min: GEO_LONG_MIN, max: GEO_LONG_MAX };
/// WGS84 latitude range used for the scores.
pub const LAT_RANGE: GeoHashRange = GeoHashRange { min: GEO_LAT_MIN, max: GEO_LAT_MAX };

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] =
        [0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let mut x = xlo as u64;
    let mut y = ylo as u64;
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// `geohashEncode`. `None` on invalid arguments (step 0 or > 32, zero
/// ranges, coordinates outside the WGS84/Mercator limits or the ranges).
pub fn geohash_encode(
    long_range: &GeoHashRange,
    lat_range: &GeoHashRange,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<GeoHashBits> {
    if step > 32 || step == 0 || lat_range.is_zero() || long_range.is_zero() {
        return None;
    }
    if !(GEO_LONG_MIN..=GEO_LONG_MAX).contains(&longitude) || !(GEO_LAT_MIN..=GEO_LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min || latitude > lat_range.max || longitude < long_range.min || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    let scale = (1u64 << step) as f64;
    lat_offset *= scale;
    long_offset *= scale;
    Some(GeoHashBits { bits: interleave64(lat_offset as u32, long_offset as u32), step })
}

/// `geohashEncodeWGS84`.
pub fn geohash_encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<GeoHashBits> {
    geohash_encode(&LONG_RANGE, &LAT_RANGE, longitude, latitude, step)
}

/// `geohashDecode`.
pub fn geohash_decode(long_range: &GeoHashRange, lat_range: &GeoHashRange, hash: GeoHashBits) -> Option<GeoHashArea> {
    if hash.is_zero() || lat_range.is_zero() || long_range.is_zero() {
        return None;
    }
    let step = hash.step;
    let hash_sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = hash_sep as u32;
    let ilono = (hash_sep >> 32) as u32;
    let div = (1u64 << step) as f64;
    Some(GeoHashArea {
        hash,
        latitude: GeoHashRange {
            min: lat_range.min + (ilato as f64 * 1.0 / div) * lat_scale,
            max: lat_range.min + (ilato.wrapping_add(1) as f64 * 1.0 / div) * lat_scale,
        },
        longitude: GeoHashRange {
            min: long_range.min + (ilono as f64 * 1.0 / div) * long_scale,
            max: long_range.min + (ilono.wrapping_add(1) as f64 * 1.0 / div) * long_scale,
        },
    })
}

/// `geohashDecodeWGS84`.
pub fn geohash_decode_wgs84(hash: GeoHashBits) -> Option<GeoHashArea> {
    geohash_decode(&LONG_RANGE, &LAT_RANGE, hash)
}

/// `geohashDecodeAreaToLongLat`: centre of the cell, clamped to the limits.
pub fn decode_area_to_long_lat(area: &GeoHashArea) -> [f64; 2] {
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(GEO_LONG_MIN, GEO_LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(GEO_LAT_MIN, GEO_LAT_MAX);
    [lon, lat]
}

/// `geohashDecodeToLongLatWGS84`: `[longitude, latitude]`.
pub fn geohash_decode_to_long_lat_wgs84(hash: GeoHashBits) -> Option<[f64; 2]> {
    geohash_decode_wgs84(hash).map(|a| decode_area_to_long_lat(&a))
}

fn move_x(hash: &mut GeoHashBits, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let y = hash.bits & 0x5555555555555555;
    let shift = 64 - hash.step as u32 * 2;
    let zz = 0x5555555555555555u64.checked_shr(shift).unwrap_or(0);
    if d > 0 {
        x = x.wrapping_add(zz.wrapping_add(1));
    } else {
        x |= zz;
        x = x.wrapping_sub(zz.wrapping_add(1));
    }
    x &= 0xaaaaaaaaaaaaaaaau64.checked_shr(shift).unwrap_or(0);
    hash.bits = x | y;
}

fn move_y(hash: &mut GeoHashBits, d: i8) {
    if d == 0 {
        return;
    }
    let x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = hash.bits & 0x5555555555555555;
    let shift = 64 - hash.step as u32 * 2;
    let zz = 0xaaaaaaaaaaaaaaaau64.checked_shr(shift).unwrap_or(0);
    if d > 0 {
        y = y.wrapping_add(zz.wrapping_add(1));
    } else {
        y |= zz;
        y = y.wrapping_sub(zz.wrapping_add(1));
    }
    y &= 0x5555555555555555u64.checked_shr(shift).unwrap_or(0);
    hash.bits = x | y;
}

/// `geohashNeighbors`.
pub fn geohash_neighbors(hash: &GeoHashBits) -> GeoHashNeighbors {
    let mv = |dx: i8, dy: i8| {
        let mut h = *hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    GeoHashNeighbors {
        east: mv(1, 0),
        west: mv(-1, 0),
        south: mv(0, -1),
        north: mv(0, 1),
        north_west: mv(-1, 1),
        north_east: mv(1, 1),
        south_east: mv(1, -1),
        south_west: mv(-1, -1),
    }
}

/// `geohashAlign52Bits`: left-align the hash to 52 bits (the score).
pub fn geohash_align_52bits(hash: GeoHashBits) -> u64 {
    hash.bits << (52 - hash.step as u32 * 2)
}

/// Checks longitude/latitude like `extractLongLatOrReply`.
pub fn validate_long_lat(longitude: f64, latitude: f64) -> Result<(), GeoError> {
    // NaN is rejected too (Redis never gets here with NaN: its double
    // parser refuses it).
    if !(GEO_LONG_MIN..=GEO_LONG_MAX).contains(&longitude) || !(GEO_LAT_MIN..=GEO_LAT_MAX).contains(&latitude) {
        return Err(GeoError::InvalidLonLat(longitude, latitude));
    }
    Ok(())
}

/// The GEOADD score of a position: validates it and returns the 52-bit
/// geohash (store it as the zset score; it is exactly representable as f64).
pub fn encode_score(longitude: f64, latitude: f64) -> Result<u64, GeoError> {
    validate_long_lat(longitude, latitude)?;
    let hash =
        geohash_encode_wgs84(longitude, latitude, GEO_STEP_MAX).ok_or(GeoError::InvalidLonLat(longitude, latitude))?;
    Ok(geohash_align_52bits(hash))
}

/// C's `(uint64_t)score` as compiled by gcc on x86-64 (matters only for
/// scores that were not produced by GEOADD, e.g. negative or huge ones).
fn score_to_bits(score: f64) -> u64 {
    const TWO63: f64 = 9223372036854775808.0;
    if score < TWO63 {
        // cvttsd2si: out of range gives 0x8000000000000000, as does the
        // saturating `as i64` for values below i64::MIN.
        score as i64 as u64
    } else {
        let d = score - TWO63;
        let v = if d < TWO63 { d as i64 as u64 } else { 1u64 << 63 };
        v ^ (1u64 << 63)
    }
}

/// `decodeGeohash`: the `[longitude, latitude]` of a zset score (what
/// GEOPOS prints, see [`format_coord`]).
pub fn decode_score(score: f64) -> [f64; 2] {
    let hash = GeoHashBits { bits: score_to_bits(score), step: GEO_STEP_MAX };
    // Never zero since step != 0.
    geohash_decode_to_long_lat_wgs84(hash).unwrap_or([0.0, 0.0])
}

/// The 11-character standard geohash GEOHASH returns for a zset score
/// (decoded, then re-encoded with the standard -90..90 latitude range).
pub fn geohash_to_string(score: f64) -> Option<String> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let xy = decode_score(score);
    let r_long = GeoHashRange { min: -180.0, max: 180.0 };
    let r_lat = GeoHashRange { min: -90.0, max: 90.0 };
    // Redis ignores a failed encode and uses bits = 0 (it is set before the
    // range checks); that cannot happen for decoded positions anyway.
    let bits = geohash_encode(&r_long, &r_lat, xy[0], xy[1], 26).map(|h| h.bits).unwrap_or(0);
    let mut s = String::with_capacity(11);
    for i in 0..11 {
        let idx = if i == 10 { 0 } else { ((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize };
        s.push(ALPHABET[idx] as char);
    }
    Some(s)
}

/// `extractUnitOrReply`: the factor converting the unit to meters
/// (case-insensitive m, km, ft, mi).
pub fn parse_unit(unit: &[u8]) -> Result<f64, GeoError> {
    if unit.eq_ignore_ascii_case(b"m") {
        Ok(1.0)
    } else if unit.eq_ignore_ascii_case(b"km") {
        Ok(1000.0)
    } else if unit.eq_ignore_ascii_case(b"ft") {
        Ok(0.3048)
    } else if unit.eq_ignore_ascii_case(b"mi") {
        Ok(1609.34)
    } else {
        Err(GeoError::UnsupportedUnit)
    }
}

#[inline]
fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

#[inline]
fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// `geohashGetLatDistance`.
pub fn geohash_get_lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// `geohashGetDistance`: haversine distance in meters.
pub fn geohash_get_distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return geohash_get_lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// `geohashGetDistanceIfInRadiusWGS84`: `Some(distance)` when the point
/// `(x2, y2)` is within `radius` meters of `(x1, y1)`.
pub fn distance_if_in_radius(x1: f64, y1: f64, x2: f64, y2: f64, radius: f64) -> Option<f64> {
    let d = geohash_get_distance(x1, y1, x2, y2);
    if d > radius {
        None
    } else {
        Some(d)
    }
}

/// `geohashGetDistanceIfInRectangle`: `Some(distance from the centre)`
/// when `(x2, y2)` is inside the `width_m` x `height_m` box centred on
/// `(x1, y1)`.
pub fn distance_if_in_rectangle(width_m: f64, height_m: f64, x1: f64, y1: f64, x2: f64, y2: f64) -> Option<f64> {
    let lat_distance = geohash_get_lat_distance(y2, y1);
    if lat_distance > height_m / 2.0 {
        return None;
    }
    let lon_distance = geohash_get_distance(x2, y2, x1, y2);
    if lon_distance > width_m / 2.0 {
        return None;
    }
    Some(geohash_get_distance(x1, y1, x2, y2))
}

/// `geohashEstimateStepsByRadius`.
pub fn estimate_steps_by_radius(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// The kind of a search shape, sizes in the shape's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShapeKind {
    /// BYRADIUS radius.
    Radius(f64),
    /// BYBOX width height.
    Box {
        /// Width.
        width: f64,
        /// Height.
        height: f64,
    },
}

/// A search shape (Redis's `GeoShape`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoShape {
    /// Centre `[longitude, latitude]`.
    pub xy: [f64; 2],
    /// Unit to meters factor (see [`parse_unit`]).
    pub conversion: f64,
    /// Radius or box, in the unit.
    pub kind: ShapeKind,
}

/// Search area: the centre cell, its decoded area, and the neighbors (some
/// zeroed when useless).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GeoHashRadius {
    /// Centre cell.
    pub hash: GeoHashBits,
    /// Its area.
    pub area: GeoHashArea,
    /// Neighbors; zeroed ones (see [`GeoHashBits::is_zero`]) are skipped.
    pub neighbors: GeoHashNeighbors,
}

impl GeoShape {
    /// A BYRADIUS shape.
    pub fn radius(lon: f64, lat: f64, radius: f64, conversion: f64) -> GeoShape {
        GeoShape { xy: [lon, lat], conversion, kind: ShapeKind::Radius(radius) }
    }

    /// A BYBOX shape.
    pub fn rect(lon: f64, lat: f64, width: f64, height: f64, conversion: f64) -> GeoShape {
        GeoShape { xy: [lon, lat], conversion, kind: ShapeKind::Box { width, height } }
    }

    /// `geohashBoundingBox`: `[min_lon, min_lat, max_lon, max_lat]`.
    pub fn bounding_box(&self) -> [f64; 4] {
        let [longitude, latitude] = self.xy;
        let (h, w) = match self.kind {
            ShapeKind::Radius(r) => (r, r),
            ShapeKind::Box { width, height } => (height / 2.0, width / 2.0),
        };
        let height = self.conversion * h;
        let width = self.conversion * w;
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
        let long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
        let southern = latitude < 0.0;
        [
            if southern { longitude - long_delta_bottom } else { longitude - long_delta_top },
            latitude - lat_delta,
            if southern { longitude + long_delta_bottom } else { longitude + long_delta_top },
            latitude + lat_delta,
        ]
    }

    /// `geohashCalculateAreasByShapeWGS84`.
    pub fn calculate_areas(&self) -> GeoHashRadius {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let [longitude, latitude] = self.xy;
        let radius_meters = match self.kind {
            ShapeKind::Radius(r) => r,
            ShapeKind::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * self.conversion;

        let mut steps = estimate_steps_by_radius(radius_meters, latitude);
        // Redis ignores failures (the centre is validated beforehand); on
        // failure its hash keeps step with bits 0 (or is left untouched).
        let encode = |steps: u8| {
            geohash_encode(&LONG_RANGE, &LAT_RANGE, longitude, latitude, steps)
                .unwrap_or(GeoHashBits { bits: 0, step: steps })
        };
        let decode = |h: GeoHashBits| geohash_decode(&LONG_RANGE, &LAT_RANGE, h).unwrap_or_default();
        let mut hash = encode(steps);
        let mut neighbors = geohash_neighbors(&hash);
        let mut area = decode(hash);

        let north = decode(neighbors.north);
        let south = decode(neighbors.south);
        let east = decode(neighbors.east);
        let west = decode(neighbors.west);
        let decrease_step = north.latitude.max < max_lat
            || south.latitude.min > min_lat
            || east.longitude.max < max_lon
            || west.longitude.min > min_lon;

        if steps > 1 && decrease_step {
            steps -= 1;
            hash = encode(steps);
            neighbors = geohash_neighbors(&hash);
            area = decode(hash);
        }

        if steps >= 2 {
            let zero = GeoHashBits::default();
            if area.latitude.min < min_lat {
                neighbors.south = zero;
                neighbors.south_west = zero;
                neighbors.south_east = zero;
            }
            if area.latitude.max > max_lat {
                neighbors.north = zero;
                neighbors.north_east = zero;
                neighbors.north_west = zero;
            }
            if area.longitude.min < min_lon {
                neighbors.west = zero;
                neighbors.south_west = zero;
                neighbors.north_west = zero;
            }
            if area.longitude.max > max_lon {
                neighbors.east = zero;
                neighbors.south_east = zero;
                neighbors.north_east = zero;
            }
        }
        GeoHashRadius { hash, area, neighbors }
    }

    /// `geoWithinShape`: decodes the score and tests membership. Returns the
    /// decoded `[lon, lat]` and the distance in meters from the centre.
    pub fn within(&self, score: f64) -> Option<([f64; 2], f64)> {
        let xy = decode_score(score);
        let d = match self.kind {
            ShapeKind::Radius(r) => distance_if_in_radius(self.xy[0], self.xy[1], xy[0], xy[1], r * self.conversion)?,
            ShapeKind::Box { width, height } => distance_if_in_rectangle(
                width * self.conversion,
                height * self.conversion,
                self.xy[0],
                self.xy[1],
                xy[0],
                xy[1],
            )?,
        };
        Some((xy, d))
    }
}

/// `scoresOfGeoHashBox`: the score range `[min, max)` of a cell.
pub fn scores_of_geohash_box(hash: GeoHashBits) -> (u64, u64) {
    let min = geohash_align_52bits(hash);
    let max = geohash_align_52bits(GeoHashBits { bits: hash.bits.wrapping_add(1), step: hash.step });
    (min, max)
}

/// The sorted-set score ranges `[min, max)` to scan, in Redis's order
/// (centre, N, S, E, W, NE, NW, SE, SW), skipping zeroed neighbors and a
/// neighbor equal to the previously processed one (as
/// `membersOfAllNeighbors` does, including its quirk of never comparing
/// against the centre cell). Candidates found in each range must be filtered
/// with [`GeoShape::within`]; with COUNT ... ANY the scan stops as soon as
/// enough matches were collected (also in the middle of a range).
pub fn search_ranges(shape: &GeoShape) -> Vec<(u64, u64)> {
    let r = shape.calculate_areas();
    let n = &r.neighbors;
    let cells = [r.hash, n.north, n.south, n.east, n.west, n.north_east, n.north_west, n.south_east, n.south_west];
    let mut out = Vec::with_capacity(9);
    let mut last_processed = 0usize;
    for (i, c) in cells.iter().enumerate() {
        if c.is_zero() {
            continue;
        }
        if last_processed != 0 && *c == cells[last_processed] {
            continue;
        }
        out.push(scores_of_geohash_box(*c));
        last_processed = i;
    }
    out
}

/// A search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoPoint<M> {
    /// Decoded longitude.
    pub longitude: f64,
    /// Decoded latitude.
    pub latitude: f64,
    /// Distance from the centre in meters (divide by the shape's conversion
    /// for the reply, like Redis does).
    pub dist: f64,
    /// The zset score.
    pub score: f64,
    /// The member.
    pub member: M,
}

/// Reference implementation of the GEOSEARCH scan over a zset given as a
/// slice sorted like a Redis zset (by score, then member). `limit` is the
/// COUNT of `COUNT n ANY` (0 = unlimited). Results are in scan order
/// (unsorted); sort them with [`sort_points`] for ASC/DESC.
pub fn search_sorted<M: Clone>(shape: &GeoShape, zset: &[(f64, M)], limit: usize) -> Vec<GeoPoint<M>> {
    let mut out = Vec::new();
    for (min, max) in search_ranges(shape) {
        if !out.is_empty() && limit != 0 && out.len() >= limit {
            break;
        }
        let (min, max) = (min as f64, max as f64);
        let start = zset.partition_point(|(s, _)| *s < min);
        for (score, member) in &zset[start..] {
            if *score >= max {
                break;
            }
            if let Some((xy, dist)) = shape.within(*score) {
                out.push(GeoPoint { longitude: xy[0], latitude: xy[1], dist, score: *score, member: member.clone() });
            }
            if !out.is_empty() && limit != 0 && out.len() >= limit {
                break;
            }
        }
    }
    out
}

/// Sorts hits by distance (stable, like glibc's merge-sort `qsort`).
pub fn sort_points<M>(points: &mut [GeoPoint<M>], descending: bool) {
    points.sort_by(|a, b| {
        let o = a.dist.partial_cmp(&b.dist).unwrap_or(std::cmp::Ordering::Equal);
        if descending {
            o.reverse()
        } else {
            o
        }
    });
}

/// GEOPOS / WITHCOORD formatting (`addReplyHumanLongDouble`: `%.17Lf`
/// with trailing zeros removed).
pub fn format_coord(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let mut s = format!("{x:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s
}

/// GEODIST / WITHDIST formatting (`fixedpoint_d2string(.., 4)`).
pub fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".to_string();
    }
    // llrint: round half to even; out of range gives LLONG_MIN on x86-64.
    let r = (d * 10000.0).round_ties_even();
    let sv: i64 =
        if r.is_finite() && (-9223372036854775808.0..9223372036854775808.0).contains(&r) { r as i64 } else { i64::MIN };
    let neg = sv < 0;
    let v = sv.unsigned_abs();
    format!("{}{}.{:04}", if neg { "-" } else { "" }, v / 10000, v % 10000)
}

#[cfg(test)]
mod tests {
    //! Golden values produced by a real redis-server 7.0.15 (x86-64, glibc)
    //! with GEOADD then ZSCORE / GEOHASH / GEOPOS / GEODIST / GEOSEARCH
    //! (RESP2 replies).
    use super::*;

    // (lon, lat, member, zscore, geohash, geopos lon, geopos lat)
    const POINTS: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
        (
            "12.119164",
            "36.603397",
            "p0",
            "3475935215073662",
            "sq885z2yhz0",
            "12.11916178464889526",
            "36.60339751570018763",
        ),
        (
            "13.754672",
            "36.289745",
            "p1",
            "3476029100171904",
            "sq3y2yrg540",
            "13.75467091798782349",
            "36.28974605000126274",
        ),
        (
            "13.179410",
            "37.462756",
            "p2",
            "3479006904184673",
            "sq9m5guuqs0",
            "13.17941218614578247",
            "37.46275670395666424",
        ),
        (
            "10.789995",
            "38.029743",
            "p3",
            "3473051724759169",
            "snz8me15310",
            "10.78999310731887817",
            "38.02974341064687991",
        ),
        (
            "10.687478",
            "37.734583",
            "p4",
            "3473001494899724",
            "snxwejq7uk0",
            "10.68747907876968384",
            "37.73458273580533984",
        ),
        (
            "10.849277",
            "36.362852",
            "p5",
            "3469976936926798",
            "snrwygshyr0",
            "10.84927529096603394",
            "36.36285247767892059",
        ),
        (
            "12.622596",
            "39.307408",
            "p6",
            "3479245299542700",
            "sqbzx5xqpz0",
            "12.62259632349014282",
            "39.30740763182907216",
        ),
        (
            "11.119010",
            "36.892956",
            "p7",
            "3470052407231463",
            "snxcvh0t590",
            "11.11900895833969116",
            "36.89295645677959357",
        ),
        (
            "13.637166",
            "39.790836",
            "p8",
            "3479395432489019",
            "sr1dq7dq2v0",
            "13.63716334104537964",
            "39.79083725550166406",
        ),
        (
            "13.385515",
            "37.586722",
            "p9",
            "3479044072558736",
            "sq9tbd7n900",
            "13.38551312685012817",
            "37.58672231169645528",
        ),
        (
            "15.381276",
            "36.186331",
            "p10",
            "3476432178406563",
            "sq6vy5829t0",
            "15.38127511739730835",
            "36.18633196142139496",
        ),
        (
            "14.792342",
            "37.158437",
            "p11",
            "3476506635038577",
            "sqde2s7rwd0",
            "14.79234248399734497",
            "37.15843808156643746",
        ),
        (
            "11.221275",
            "36.471169",
            "p12",
            "3469989589500727",
            "snrzrr75fw0",
            "11.22127622365951538",
            "36.47116871698094798",
        ),
        (
            "12.042409",
            "39.264505",
            "p13",
            "3479233575130138",
            "sqbx65ch260",
            "12.04240769147872925",
            "39.26450494148609494",
        ),
        (
            "11.403632",
            "38.326401",
            "p14",
            "3478942533740287",
            "sqb453pg7z0",
            "11.40363425016403198",
            "38.32640210569359596",
        ),
        (
            "13.694567",
            "37.489590",
            "p15",
            "3479034884588325",
            "sq9tr8u0dt0",
            "13.6945679783821106",
            "37.48958926214942977",
        ),
        (
            "13.238722",
            "36.251156",
            "p16",
            "3475996720515125",
            "sq3qjr24k90",
            "13.23872119188308716",
            "36.25115492035033071",
        ),
        (
            "10.798006",
            "36.823835",
            "p17",
            "3470032096568249",
            "snx9mxwf7u0",
            "10.7980075478553772",
            "36.82383461076441478",
        ),
        (
            "13.902000",
            "37.710369",
            "p18",
            "3479058810607873",
            "sq9ys2gnu40",
            "13.90199929475784302",
            "37.71036854457016574",
        ),
        (
            "12.070736",
            "38.342247",
            "p19",
            "3478976981076324",
            "sqbd4evxu80",
            "12.07073718309402466",
            "38.34224664766062318",
        ),
        (
            "12.765922",
            "37.199068",
            "p20",
            "3476060729488356",
            "sq95d7zu780",
            "12.76592284440994263",
            "37.1990671270294726",
        ),
        (
            "14.471897",
            "38.795978",
            "p21",
            "3479693531026402",
            "sqfk9qd4gw0",
            "14.47189897298812866",
            "38.79597694350924542",
        ),
        (
            "11.720483",
            "38.297695",
            "p22",
            "3478950931634049",
            "sqb3feys5p0",
            "11.72048360109329224",
            "38.29769385384292235",
        ),
        (
            "13.125983",
            "39.500550",
            "p23",
            "3479350631204065",
            "sr12dwy53s0",
            "13.12598258256912231",
            "39.50055084944953165",
        ),
        (
            "14.147226",
            "37.151751",
            "p24",
            "3476472404024925",
            "sqd53gm8wk0",
            "14.14722830057144165",
            "37.15175148714809694",
        ),
        (
            "15.400874",
            "36.472263",
            "p25",
            "3476449088344605",
            "sq6zqrwd660",
            "15.40087133646011353",
            "36.47226371652178756",
        ),
        (
            "12.590614",
            "39.028564",
            "p26",
            "3479193941989984",
            "sqbyn8bjye0",
            "12.59061366319656372",
            "39.02856295709018752",
        ),
        (
            "11.259923",
            "37.955852",
            "p27",
            "3478923870162563",
            "sq8pbjxhz50",
            "11.25992149114608765",
            "37.95585121940982987",
        ),
        (
            "10.696036",
            "38.672863",
            "p28",
            "3473256182236147",
            "snzs52htg80",
            "10.69603532552719116",
            "38.67286300207899075",
        ),
        (
            "14.322854",
            "38.292104",
            "p29",
            "3479493845439282",
            "sqf1vfvedt0",
            "14.32285398244857788",
            "38.29210479368657616",
        ),
        (
            "135.1720123",
            "-31.6815481",
            "p30",
            "3254559698281555",
            "r425gbt3850",
            "135.17201274633407593",
            "-31.68154694068827126",
        ),
        (
            "70.3063319",
            "16.0523161",
            "p31",
            "3575796204471373",
            "tdcgrf5x820",
            "70.30633360147476196",
            "16.05231686254053614",
        ),
        (
            "28.7622735",
            "-7.4494731",
            "p32",
            "2659751478772912",
            "kwsmweb59t0",
            "28.76227408647537231",
            "-7.44947324774413033",
        ),
        (
            "122.3884010",
            "75.6402543",
            "p33",
            "4348246788985951",
            "ytrn31bs2m0",
            "122.38840073347091675",
            "75.64025534778431847",
        ),
        (
            "-9.3245985",
            "27.9222902",
            "p34",
            "1948756242879873",
            "eucqgg45150",
            "-9.32460039854049683",
            "27.92228931566688033",
        ),
        (
            "-158.1590061",
            "34.2737928",
            "p35",
            "1225938704862529",
            "8qpdcp25k40",
            "-158.15900534391403198",
            "34.27379359673842174",
        ),
        (
            "52.9663876",
            "83.8756193",
            "p36",
            "3896020078476889",
            "vnvtjm0fyk0",
            "52.9663887619972229",
            "83.8756201583420733",
        ),
        (
            "115.8929232",
            "-36.6403000",
            "p37",
            "3136389608233004",
            "q96rt1ydub0",
            "115.89292198419570923",
            "-36.64030052105900381",
        ),
        (
            "-41.1150807",
            "28.6878270",
            "p38",
            "1905291610615187",
            "ej4g0qkytn0",
            "-41.11508041620254517",
            "28.68782580021042605",
        ),
        (
            "-171.8773459",
            "-6.5156318",
            "p39",
            "373191094360800",
            "2nvfbvfexw0",
            "-171.8773457407951355",
            "-6.51563127822047505",
        ),
        ("180", "85.05112878", "p40", "13510798882111488", "bp05b5048p0", "180", "85.0511287799999991"),
        ("-180", "-85.05112878", "p41", "0", "00bh0hbj200", "-179.99999731779098511", "-85.05112751263942528"),
        ("0", "0", "p42", "3377699720527872", "s0000000000", "0.00000268220901489", "0.00000126736058093"),
        ("-0.0001", "0.0001", "p43", "1876499844738231", "ebpbpbpbtd0", "-0.00009924173355103", "0.00010012148579364"),
        ("179.9999", "10", "p44", "4134140898114999", "xczbzuryjx0", "179.99990075826644897", "10.00000092823272979"),
        (
            "-179.9999",
            "10.001",
            "p45",
            "1131741147316745",
            "81b0bh8h430",
            "-179.99990075826644897",
            "10.0009996083695043",
        ),
        ("10", "84.5", "p46", "3755864852194410", "upp0ewcb0v0", "10.00000208616256714", "84.50000055624319373"),
        ("12", "-84.9", "p47", "2260631814691869", "h2bt106jsk0", "12.00000196695327759", "-84.89999983295615493"),
        (
            "13.361389",
            "38.115556",
            "p48",
            "3479099956230698",
            "sqc8b49rny0",
            "13.36138933897018433",
            "38.11555639549629859",
        ),
        (
            "15.087269",
            "37.502669",
            "p49",
            "3479447370796909",
            "sqdtr74hyu0",
            "15.08726745843887329",
            "37.50266842333162032",
        ),
        (
            "-73.9857",
            "40.7484",
            "p50",
            "1791875672646935",
            "dr5ru6j28h0",
            "-73.98570209741592407",
            "40.74839914563441567",
        ),
        (
            "151.2093",
            "-33.8688",
            "p51",
            "3252046221964352",
            "r3gx2f77bj0",
            "151.20929986238479614",
            "-33.86880091934155956",
        ),
        (
            "13.361389",
            "38.115556",
            "p52",
            "3479099956230698",
            "sqc8b49rny0",
            "13.36138933897018433",
            "38.11555639549629859",
        ),
    ];
    const DISTS: &[(&str, &str, &str, &str)] = &[
        ("p28", "p35", "ft", "38799868.9340"),
        ("p28", "p32", "KM", "5459.4063"),
        ("p12", "p11", "KM", "327.0224"),
        ("p30", "p40", "KM", "13137.0007"),
        ("p50", "p11", "m", "7338096.4391"),
        ("p28", "p19", "km", "125.1725"),
        ("p5", "p34", "m", "2113340.0225"),
        ("p38", "p25", "ft", "17363207.7226"),
        ("p41", "p47", "KM", "1111.5618"),
        ("p41", "p10", "KM", "14564.6124"),
        ("p0", "p33", "m", "6609593.3456"),
        ("p3", "p2", "km", "219.4000"),
        ("p15", "p38", "m", "5128456.5778"),
        ("p49", "p29", "mi", "68.6641"),
        ("p28", "p37", "km", "13623.9703"),
        ("p33", "p14", "mi", "4003.0853"),
        ("p31", "p0", "m", "6133107.8275"),
        ("p29", "p41", "mi", "9197.2579"),
        ("p26", "p35", "m", "11812112.1590"),
        ("p45", "p16", "mi", "9129.5794"),
        ("p48", "p14", "KM", "172.6706"),
        ("p18", "p1", "m", "158551.5438"),
        ("p36", "p49", "m", "5313104.0871"),
        ("p25", "p6", "mi", "247.6753"),
        ("p24", "p4", "m", "312307.8727"),
        ("p43", "p0", "km", "4258.7851"),
        ("p13", "p3", "ft", "574818.0853"),
        ("p24", "p45", "ft", "47808977.0673"),
        ("p26", "p4", "KM", "219.6448"),
        ("p40", "p12", "mi", "4035.4053"),
        ("p21", "p5", "mi", "260.0527"),
        ("p21", "p0", "ft", "1049499.3955"),
        ("p48", "p7", "km", "240.0723"),
        ("p15", "p45", "m", "14549046.9572"),
        ("p0", "p3", "ft", "647837.4248"),
        ("p51", "p31", "km", "10188.4447"),
        ("p43", "p35", "km", "15581.5466"),
        ("p28", "p32", "km", "5459.4063"),
        ("p46", "p49", "km", "5229.9489"),
        ("p26", "p41", "ft", "48843695.0041"),
        ("p0", "p0", "m", "0.0000"),
        ("p49", "p52", "m", "166274.1516"),
    ];
    // (args, reply: member|dist|hash|lon|lat entries joined with ";")
    const SEARCHES: &[(&str, &str)] = &[
        ("FROMLONLAT 13.5 38 BYRADIUS 100 km", "p2|66.0759|3479006904184673|13.17941218614578247|37.46275670395666424;p15|59.2941|3479034884588325|13.6945679783821106|37.48958926214942977;p9|47.0559|3479044072558736|13.38551312685012817|37.58672231169645528;p18|47.7925|3479058810607873|13.90199929475784302|37.71036854457016574;p48|17.6794|3479099956230698|13.36138933897018433|38.11555639549629859;p52|17.6794|3479099956230698|13.36138933897018433|38.11555639549629859;p29|78.9699|3479493845439282|14.32285398244857788|38.29210479368657616"),
        ("FROMLONLAT 13.5 38 BYRADIUS 100 km ASC", "p48|17.6794|3479099956230698|13.36138933897018433|38.11555639549629859;p52|17.6794|3479099956230698|13.36138933897018433|38.11555639549629859;p9|47.0559|3479044072558736|13.38551312685012817|37.58672231169645528;p18|47.7925|3479058810607873|13.90199929475784302|37.71036854457016574;p15|59.2941|3479034884588325|13.6945679783821106|37.48958926214942977;p2|66.0759|3479006904184673|13.17941218614578247|37.46275670395666424;p29|78.9699|3479493845439282|14.32285398244857788|38.29210479368657616"),
        ("FROMLONLAT 13.5 38 BYRADIUS 100 km DESC", "p29|78.9699|3479493845439282|14.32285398244857788|38.29210479368657616;p2|66.0759|3479006904184673|13.17941218614578247|37.46275670395666424;p15|59.2941|3479034884588325|13.6945679783821106|37.48958926214942977;p18|47.7925|3479058810607873|13.90199929475784302|37.71036854457016574;p9|47.0559|3479044072558736|13.38551312685012817|37.58672231169645528;p48|17.6794|3479099956230698|13.36138933897018433|38.11555639549629859;p52|17.6794|3479099956230698|13.36138933897018433|38.11555639549629859"),
        ("FROMLONLAT 13.5 38 BYRADIUS 200 mi", "p27|122.0706|3478923870162563|11.25992149114608765|37.95585121940982987;p14|116.1266|3478942533740287|11.40363425016403198|38.32640210569359596;p22|98.8810|3478950931634049|11.72048360109329224|38.29769385384292235;p19|81.1796|3478976981076324|12.07073718309402466|38.34224664766062318;p2|41.0578|3479006904184673|13.17941218614578247|37.46275670395666424;p15|36.8437|3479034884588325|13.6945679783821106|37.48958926214942977;p9|29.2392|3479044072558736|13.38551312685012817|37.58672231169645528;p18|29.6970|3479058810607873|13.90199929475784302|37.71036854457016574;p48|10.9855|3479099956230698|13.36138933897018433|38.11555639549629859;p52|10.9855|3479099956230698|13.36138933897018433|38.11555639549629859;p26|86.4383|3479193941989984|12.59061366319656372|39.02856295709018752;p13|117.5990|3479233575130138|12.04240769147872925|39.26450494148609494;p6|102.0147|3479245299542700|12.62259632349014282|39.30740763182907216;p23|105.6484|3479350631204065|13.12598258256912231|39.50055084944953165;p8|123.9898|3479395432489019|13.63716334104537964|39.79083725550166406;p49|93.2982|3479447370796909|15.08726745843887329|37.50266842333162032;p29|49.0697|3479493845439282|14.32285398244857788|38.29210479368657616;p21|76.1411|3479693531026402|14.47189897298812866|38.79597694350924542;p0|122.7954|3475935215073662|12.11916178464889526|36.60339751570018763;p16|121.7222|3475996720515125|13.23872119188308716|36.25115492035033071;p1|119.0303|3476029100171904|13.75467091798782349|36.28974605000126274;p20|68.4093|3476060729488356|12.76592284440994263|37.1990671270294726;p10|162.6820|3476432178406563|15.38127511739730835|36.18633196142139496;p25|148.6144|3476449088344605|15.40087133646011353|36.47226371652178756;p24|68.5104|3476472404024925|14.14722830057144165|37.15175148714809694;p11|91.6141|3476506635038577|14.79234248399734497|37.15843808156643746;p4|154.5381|3473001494899724|10.68747907876968384|37.73458273580533984;p3|147.5710|3473051724759169|10.78999310731887817|38.02974341064687991;p28|158.9521|3473256182236147|10.69603532552719116|38.67286300207899075;p5|184.6657|3469976936926798|10.84927529096603394|36.36285247767892059;p12|163.9597|3469989589500727|11.22127622365951538|36.47116871698094798;p17|169.1308|3470032096568249|10.7980075478553772|36.82383461076441478;p7|151.3931|3470052407231463|11.11900895833969116|36.89295645677959357"),
        ("FROMLONLAT 14 37.5 BYBOX 300 200 km", "p2|72.5463|3479006904184673|13.17941218614578247|37.46275670395666424;p15|26.9786|3479034884588325|13.6945679783821106|37.48958926214942977;p9|55.0435|3479044072558736|13.38551312685012817|37.58672231169645528;p18|24.9412|3479058810607873|13.90199929475784302|37.71036854457016574;p48|88.5260|3479099956230698|13.36138933897018433|38.11555639549629859;p52|88.5260|3479099956230698|13.36138933897018433|38.11555639549629859;p49|95.9406|3479447370796909|15.08726745843887329|37.50266842333162032;p29|92.5478|3479493845439282|14.32285398244857788|38.29210479368657616;p20|114.1335|3476060729488356|12.76592284440994263|37.1990671270294726;p24|40.8647|3476472404024925|14.14722830057144165|37.15175148714809694;p11|79.7123|3476506635038577|14.79234248399734497|37.15843808156643746"),
        ("FROMLONLAT 14 37.5 BYBOX 300 200 km DESC", "p20|114.1335|3476060729488356|12.76592284440994263|37.1990671270294726;p49|95.9406|3479447370796909|15.08726745843887329|37.50266842333162032;p29|92.5478|3479493845439282|14.32285398244857788|38.29210479368657616;p48|88.5260|3479099956230698|13.36138933897018433|38.11555639549629859;p52|88.5260|3479099956230698|13.36138933897018433|38.11555639549629859;p11|79.7123|3476506635038577|14.79234248399734497|37.15843808156643746;p2|72.5463|3479006904184673|13.17941218614578247|37.46275670395666424;p9|55.0435|3479044072558736|13.38551312685012817|37.58672231169645528;p24|40.8647|3476472404024925|14.14722830057144165|37.15175148714809694;p15|26.9786|3479034884588325|13.6945679783821106|37.48958926214942977;p18|24.9412|3479058810607873|13.90199929475784302|37.71036854457016574"),
        ("FROMLONLAT 12.1 38.9 BYBOX 400000 500000 ft ASC", "p13|134010.2446|3479233575130138|12.04240769147872925|39.26450494148609494;p26|146897.4399|3479193941989984|12.59061366319656372|39.02856295709018752;p19|203703.8622|3478976981076324|12.07073718309402466|38.34224664766062318;p6|209767.5764|3479245299542700|12.62259632349014282|39.30740763182907216;p22|244995.2956|3478950931634049|11.72048360109329224|38.29769385384292235;p14|288508.9073|3478942533740287|11.40363425016403198|38.32640210569359596"),
        ("FROMLONLAT 0 0 BYRADIUS 5000 km ASC", "p42|0.0003|3377699720527872|0.00000268220901489|0.00000126736058093;p43|0.0157|1876499844738231|-0.00009924173355103|0.00010012148579364;p34|3261.0292|1948756242879873|-9.32460039854049683|27.92228931566688033;p32|3295.7842|2659751478772912|28.76227408647537231|-7.44947324774413033;p5|4196.7622|3469976936926798|10.84927529096603394|36.36285247767892059;p12|4218.5994|3469989589500727|11.22127622365951538|36.47116871698094798;p17|4244.1877|3470032096568249|10.7980075478553772|36.82383461076441478;p16|4257.6548|3475996720515125|13.23872119188308716|36.25115492035033071;p0|4258.7928|3475935215073662|12.11916178464889526|36.60339751570018763;p7|4260.2797|3470052407231463|11.11900895833969116|36.89295645677959357;p1|4279.0261|3476029100171904|13.75467091798782349|36.28974605000126274;p10|4327.2166|3476432178406563|15.38127511739730835|36.18633196142139496;p4|4337.9306|3473001494899724|10.68747907876968384|37.73458273580533984;p20|4340.8213|3476060729488356|12.76592284440994263|37.1990671270294726;p25|4356.7981|3476449088344605|15.40087133646011353|36.47226371652178756;p3|4371.9539|3473051724759169|10.78999310731887817|38.02974341064687991;p27|4376.5482|3478923870162563|11.25992149114608765|37.95585121940982987;p24|4380.9937|3476472404024925|14.14722830057144165|37.15175148714809694;p2|4381.2251|3479006904184673|13.17941218614578247|37.46275670395666424;p15|4400.6233|3479034884588325|13.6945679783821106|37.48958926214942977;p9|4400.6515|3479044072558736|13.38551312685012817|37.58672231169645528;p11|4404.1462|3476506635038577|14.79234248399734497|37.15843808156643746;p14|4419.6312|3478942533740287|11.40363425016403198|38.32640210569359596;p22|4425.2646|3478950931634049|11.72048360109329224|38.29769385384292235;p18|4430.2291|3479058810607873|13.90199929475784302|37.71036854457016574;p28|4437.9623|3473256182236147|10.69603532552719116|38.67286300207899075;p19|4439.7884|3478976981076324|12.07073718309402466|38.34224664766062318;p49|4449.6961|3479447370796909|15.08726745843887329|37.50266842333162032;p48|4454.7332|3479099956230698|13.36138933897018433|38.11555639549629859;p52|4454.7332|3479099956230698|13.36138933897018433|38.11555639549629859;p29|4504.0759|3479493845439282|14.32285398244857788|38.29210479368657616;p26|4526.7451|3479193941989984|12.59061366319656372|39.02856295709018752;p13|4536.0899|3479233575130138|12.04240769147872925|39.26450494148609494;p6|4556.9017|3479245299542700|12.62259632349014282|39.30740763182907216;p21|4560.8335|3479693531026402|14.47189897298812866|38.79597694350924542;p23|4591.7695|3479350631204065|13.12598258256912231|39.50055084944953165;p8|4637.3168|3479395432489019|13.63716334104537964|39.79083725550166406"),
        ("FROMLONLAT 0 0 BYRADIUS 20000 km", "p42|0.0003|3377699720527872|0.00000268220901489|0.00000126736058093;p5|4196.7622|3469976936926798|10.84927529096603394|36.36285247767892059;p12|4218.5994|3469989589500727|11.22127622365951538|36.47116871698094798;p17|4244.1877|3470032096568249|10.7980075478553772|36.82383461076441478;p7|4260.2797|3470052407231463|11.11900895833969116|36.89295645677959357;p4|4337.9306|3473001494899724|10.68747907876968384|37.73458273580533984;p3|4371.9539|3473051724759169|10.78999310731887817|38.02974341064687991;p28|4437.9623|3473256182236147|10.69603532552719116|38.67286300207899075;p0|4258.7928|3475935215073662|12.11916178464889526|36.60339751570018763;p16|4257.6548|3475996720515125|13.23872119188308716|36.25115492035033071;p1|4279.0261|3476029100171904|13.75467091798782349|36.28974605000126274;p20|4340.8213|3476060729488356|12.76592284440994263|37.1990671270294726;p10|4327.2166|3476432178406563|15.38127511739730835|36.18633196142139496;p25|4356.7981|3476449088344605|15.40087133646011353|36.47226371652178756;p24|4380.9937|3476472404024925|14.14722830057144165|37.15175148714809694;p11|4404.1462|3476506635038577|14.79234248399734497|37.15843808156643746;p27|4376.5482|3478923870162563|11.25992149114608765|37.95585121940982987;p14|4419.6312|3478942533740287|11.40363425016403198|38.32640210569359596;p22|4425.2646|3478950931634049|11.72048360109329224|38.29769385384292235;p19|4439.7884|3478976981076324|12.07073718309402466|38.34224664766062318;p2|4381.2251|3479006904184673|13.17941218614578247|37.46275670395666424;p15|4400.6233|3479034884588325|13.6945679783821106|37.48958926214942977;p9|4400.6515|3479044072558736|13.38551312685012817|37.58672231169645528;p18|4430.2291|3479058810607873|13.90199929475784302|37.71036854457016574;p48|4454.7332|3479099956230698|13.36138933897018433|38.11555639549629859;p52|4454.7332|3479099956230698|13.36138933897018433|38.11555639549629859;p26|4526.7451|3479193941989984|12.59061366319656372|39.02856295709018752;p13|4536.0899|3479233575130138|12.04240769147872925|39.26450494148609494;p6|4556.9017|3479245299542700|12.62259632349014282|39.30740763182907216;p23|4591.7695|3479350631204065|13.12598258256912231|39.50055084944953165;p8|4637.3168|3479395432489019|13.63716334104537964|39.79083725550166406;p49|4449.6961|3479447370796909|15.08726745843887329|37.50266842333162032;p29|4504.0759|3479493845439282|14.32285398244857788|38.29210479368657616;p21|4560.8335|3479693531026402|14.47189897298812866|38.79597694350924542;p31|7908.6322|3575796204471373|70.30633360147476196|16.05231686254053614;p46|9407.9442|3755864852194410|10.00000208616256714|84.50000055624319373;p36|9600.5948|3896020078476889|52.9663887619972229|83.8756201583420733;p44|18908.4709|4134140898114999|179.99990075826644897|10.00000092823272979;p33|10859.4883|4348246788985951|122.38840073347091675|75.64025534778431847;p47|9455.5405|2260631814691869|12.00000196695327759|-84.89999983295615493;p32|3295.7842|2659751478772912|28.76227408647537231|-7.44947324774413033;p37|12291.8145|3136389608233004|115.89292198419570923|-36.64030052105900381;p51|15203.7386|3252046221964352|151.20929986238479614|-33.86880091934155956;p30|14139.4980|3254559698281555|135.17201274633407593|-31.68154694068827126;p45|18908.3598|1131741147316745|-179.99990075826644897|10.0009996083695043;p35|15581.5617|1225938704862529|-158.15900534391403198|34.27379359673842174;p50|8668.5603|1791875672646935|-73.98570209741592407|40.74839914563441567;p43|0.0157|1876499844738231|-0.00009924173355103|0.00010012148579364;p38|5409.0089|1905291610615187|-41.11508041620254517|28.68782580021042605;p34|3261.0292|1948756242879873|-9.32460039854049683|27.92228931566688033;p41|10560.8118|0|-179.99999731779098511|-85.05112751263942528;p39|18864.0557|373191094360800|-171.8773457407951355|-6.51563127822047505"),
        ("FROMLONLAT 10 84 BYRADIUS 300 km", "p46|55.6132|3755864852194410|10.00000208616256714|84.50000055624319373"),
        ("FROMLONLAT 10 -84 BYRADIUS 800 km", "p47|102.3745|2260631814691869|12.00000196695327759|-84.89999983295615493"),
        ("FROMLONLAT 13.361389 38.115556 BYRADIUS 0 m", ""),
        ("FROMLONLAT 13 38 BYRADIUS 150 km COUNT 5 ANY", "p14|144.2467|3478942533740287|11.40363425016403198|38.32640210569359596;p22|116.7126|3478950931634049|11.72048360109329224|38.29769385384292235;p19|89.7313|3478976981076324|12.07073718309402466|38.34224664766062318;p2|61.8046|3479006904184673|13.17941218614578247|37.46275670395666424;p15|83.3946|3479034884588325|13.6945679783821106|37.48958926214942977"),
        ("FROMLONLAT 13 38 BYRADIUS 150 km COUNT 5 ANY ASC", "p2|61.8046|3479006904184673|13.17941218614578247|37.46275670395666424;p15|83.3946|3479034884588325|13.6945679783821106|37.48958926214942977;p19|89.7313|3478976981076324|12.07073718309402466|38.34224664766062318;p22|116.7126|3478950931634049|11.72048360109329224|38.29769385384292235;p14|144.2467|3478942533740287|11.40363425016403198|38.32640210569359596"),
        ("FROMLONLAT 13 38 BYRADIUS 150 km COUNT 3", "p48|34.1601|3479099956230698|13.36138933897018433|38.11555639549629859;p52|34.1601|3479099956230698|13.36138933897018433|38.11555639549629859;p9|57.1063|3479044072558736|13.38551312685012817|37.58672231169645528"),
        ("FROMLONLAT 179.99 10 BYRADIUS 50 km", "p44|1.0845|4134140898114999|179.99990075826644897|10.00000092823272979;p45|1.1118|1131741147316745|-179.99990075826644897|10.0009996083695043"),
        ("FROMLONLAT -179.99 10 BYBOX 100 100 km", "p45|1.0902|1131741147316745|-179.99990075826644897|10.0009996083695043;p44|1.1062|4134140898114999|179.99990075826644897|10.00000092823272979"),
        ("FROMLONLAT 151 -34 BYBOX 100 80 km ASC", "p51|24.2075|3252046221964352|151.20929986238479614|-33.86880091934155956"),
        ("FROMLONLAT 13 38 BYRADIUS 1 m", ""),
        ("FROMLONLAT 13 38 BYBOX 10 10 mi", ""),
        ("FROMLONLAT 12 36.5 BYRADIUS 120 km", "p0|15.6724|3475935215073662|12.11916178464889526|36.60339751570018763;p16|114.3316|3475996720515125|13.23872119188308716|36.25115492035033071;p20|103.4063|3476060729488356|12.76592284440994263|37.1990671270294726;p5|104.1004|3469976936926798|10.84927529096603394|36.36285247767892059;p12|69.7123|3469989589500727|11.22127622365951538|36.47116871698094798;p17|113.1310|3470032096568249|10.7980075478553772|36.82383461076441478;p7|89.9072|3470052407231463|11.11900895833969116|36.89295645677959357"),
        ("FROMLONLAT 15 39.5 BYBOX 250 120 km", "p8|121.1186|3479395432489019|13.63716334104537964|39.79083725550166406"),
        ("FROMLONLAT -73.9 40.7 BYRADIUS 3000 mi", "p50|5.5981|1791875672646935|-73.98570209741592407|40.74839914563441567;p38|2024.2478|1905291610615187|-41.11508041620254517|28.68782580021042605"),
        ("FROMLONLAT 13 38 BYRADIUS 12000 km ASC", "p48|34.1601|3479099956230698|13.36138933897018433|38.11555639549629859;p52|34.1601|3479099956230698|13.36138933897018433|38.11555639549629859;p9|57.1063|3479044072558736|13.38551312685012817|37.58672231169645528;p2|61.8046|3479006904184673|13.17941218614578247|37.46275670395666424;p15|83.3946|3479034884588325|13.6945679783821106|37.48958926214942977;p18|85.5133|3479058810607873|13.90199929475784302|37.71036854457016574;p19|89.7313|3478976981076324|12.07073718309402466|38.34224664766062318;p20|91.4417|3476060729488356|12.76592284440994263|37.1990671270294726;p22|116.7126|3478950931634049|11.72048360109329224|38.29769385384292235;p26|119.8224|3479193941989984|12.59061366319656372|39.02856295709018752;p29|120.1870|3479493845439282|14.32285398244857788|38.29210479368657616;p24|138.3047|3476472404024925|14.14722830057144165|37.15175148714809694;p14|144.2467|3478942533740287|11.40363425016403198|38.32640210569359596;p6|149.0668|3479245299542700|12.62259632349014282|39.30740763182907216;p27|152.6362|3478923870162563|11.25992149114608765|37.95585121940982987;p21|155.8822|3479693531026402|14.47189897298812866|38.79597694350924542;p13|163.4106|3479233575130138|12.04240769147872925|39.26450494148609494;p23|167.2580|3479350631204065|13.12598258256912231|39.50055084944953165;p0|173.7896|3475935215073662|12.11916178464889526|36.60339751570018763;p11|183.6327|3476506635038577|14.79234248399734497|37.15843808156643746;p49|191.7109|3479447370796909|15.08726745843887329|37.50266842333162032;p3|193.6860|3473051724759169|10.78999310731887817|38.02974341064687991;p16|195.6660|3475996720515125|13.23872119188308716|36.25115492035033071;p1|201.6470|3476029100171904|13.75467091798782349|36.28974605000126274;p4|205.1821|3473001494899724|10.68747907876968384|37.73458273580533984;p8|206.6821|3479395432489019|13.63716334104537964|39.79083725550166406;p7|206.7554|3470052407231463|11.11900895833969116|36.89295645677959357;p28|214.4793|3473256182236147|10.69603532552719116|38.67286300207899075;p12|231.7778|3469989589500727|11.22127622365951538|36.47116871698094798;p17|234.4209|3470032096568249|10.7980075478553772|36.82383461076441478;p5|263.5804|3469976936926798|10.84927529096603394|36.36285247767892059;p25|272.1486|3476449088344605|15.40087133646011353|36.47226371652178756;p10|292.0882|3476432178406563|15.38127511739730835|36.18633196142139496;p34|2356.9479|1948756242879873|-9.32460039854049683|27.92228931566688033;p43|4431.4706|1876499844738231|-0.00009924173355103|0.00010012148579364;p42|4431.4781|3377699720527872|0.00000268220901489|0.00000126736058093;p38|5062.2997|1905291610615187|-41.11508041620254517|28.68782580021042605;p46|5172.9323|3755864852194410|10.00000208616256714|84.50000055624319373;p36|5274.6781|3896020078476889|52.9663887619972229|83.8756201583420733;p32|5312.8657|2659751478772912|28.76227408647537231|-7.44947324774413033;p31|6072.9218|3575796204471373|70.30633360147476196|16.05231686254053614;p33|6438.8749|4348246788985951|122.38840073347091675|75.64025534778431847;p50|7154.6840|1791875672646935|-73.98570209741592407|40.74839914563441567;p35|11930.2908|1225938704862529|-158.15900534391403198|34.27379359673842174"),
        ("FROMMEMBER p48 BYRADIUS 0 m", "p48|0.0000|3479099956230698|13.36138933897018433|38.11555639549629859;p52|0.0000|3479099956230698|13.36138933897018433|38.11555639549629859"),
        ("FROMMEMBER p3 BYRADIUS 50 km", "p3|0.0000|3473051724759169|10.78999310731887817|38.02974341064687991;p4|34.0408|3473001494899724|10.68747907876968384|37.73458273580533984;p27|42.0040|3478923870162563|11.25992149114608765|37.95585121940982987"),
        ("FROMMEMBER p48 BYRADIUS 30 km COUNT 4", "p48|0.0000|3479099956230698|13.36138933897018433|38.11555639549629859;p52|0.0000|3479099956230698|13.36138933897018433|38.11555639549629859"),
        ("FROMMEMBER p48 BYRADIUS 30 km DESC COUNT 40", "p48|0.0000|3479099956230698|13.36138933897018433|38.11555639549629859;p52|0.0000|3479099956230698|13.36138933897018433|38.11555639549629859"),
        ("FROMMEMBER p44 BYBOX 200 200 km", "p44|0.0000|4134140898114999|179.99990075826644897|10.00000092823272979;p45|0.1132|1131741147316745|-179.99990075826644897|10.0009996083695043"),
        ("FROMMEMBER p40 BYRADIUS 2000 km", "p40|0.0000|13510798882111488|180|85.0511287799999991;p46|1157.7669|3755864852194410|10.00000208616256714|84.50000055624319373;p36|1103.6019|3896020078476889|52.9663887619972229|83.8756201583420733;p33|1381.1561|4348246788985951|122.38840073347091675|75.64025534778431847"),
    ];

    fn zset() -> Vec<(f64, String)> {
        let mut z: Vec<(f64, String)> = POINTS
            .iter()
            .map(|&(lon, lat, m, ..)| {
                let s = encode_score(lon.parse().unwrap(), lat.parse().unwrap()).unwrap();
                (s as f64, m.to_string())
            })
            .collect();
        z.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));
        z
    }

    fn score_of(z: &[(f64, String)], m: &str) -> f64 {
        z.iter().find(|(_, n)| n == m).unwrap().0
    }

    #[test]
    fn golden_points() {
        for &(lon, lat, m, zscore, gh, plon, plat) in POINTS {
            let score = encode_score(lon.parse().unwrap(), lat.parse().unwrap()).unwrap();
            assert_eq!(score.to_string(), zscore, "{m}");
            // (180, GEO_LAT_MAX) sets bits 52 and 53, like Redis; still exact.
            assert_eq!(score as f64 as u64, score);
            let s = score as f64;
            assert_eq!(geohash_to_string(s).unwrap(), gh, "{m}");
            let [x, y] = decode_score(s);
            assert_eq!((format_coord(x).as_str(), format_coord(y).as_str()), (plon, plat), "{m}");
        }
    }

    #[test]
    fn golden_distances() {
        let z = zset();
        for &(a, b, unit, expected) in DISTS {
            let [x1, y1] = decode_score(score_of(&z, a));
            let [x2, y2] = decode_score(score_of(&z, b));
            let conv = parse_unit(unit.as_bytes()).unwrap();
            let d = geohash_get_distance(x1, y1, x2, y2) / conv;
            assert_eq!(format_distance(d), expected, "{a} {b} {unit}");
        }
    }

    fn parse_search(z: &[(f64, String)], args: &str) -> (GeoShape, u8, usize, bool) {
        let t: Vec<&str> = args.split(' ').collect();
        let (mut xy, mut kind, mut conv) = ([0.0, 0.0], ShapeKind::Radius(0.0), 1.0);
        let (mut sort, mut count, mut any) = (0, 0usize, false);
        let mut i = 0;
        while i < t.len() {
            match t[i] {
                "FROMLONLAT" => {
                    xy = [t[i + 1].parse().unwrap(), t[i + 2].parse().unwrap()];
                    validate_long_lat(xy[0], xy[1]).unwrap();
                    i += 3;
                }
                "FROMMEMBER" => {
                    xy = decode_score(score_of(z, t[i + 1]));
                    i += 2;
                }
                "BYRADIUS" => {
                    kind = ShapeKind::Radius(t[i + 1].parse().unwrap());
                    conv = parse_unit(t[i + 2].as_bytes()).unwrap();
                    i += 3;
                }
                "BYBOX" => {
                    kind = ShapeKind::Box { width: t[i + 1].parse().unwrap(), height: t[i + 2].parse().unwrap() };
                    conv = parse_unit(t[i + 3].as_bytes()).unwrap();
                    i += 4;
                }
                "ASC" => (sort, i) = (1, i + 1),
                "DESC" => (sort, i) = (2, i + 1),
                "ANY" => (any, i) = (true, i + 1),
                "COUNT" => (count, i) = (t[i + 1].parse().unwrap(), i + 2),
                other => panic!("{other}"),
            }
        }
        let shape = GeoShape { xy, conversion: conv, kind };
        (shape, sort, count, any)
    }

    fn run_search(z: &[(f64, String)], args: &str) -> String {
        let (shape, mut sort, count, any) = parse_search(z, args);
        let conv = shape.conversion;
        let mut hits = search_sorted(&shape, z, if any { count } else { 0 });
        if count != 0 && sort == 0 && !any {
            sort = 1;
        }
        if sort != 0 {
            sort_points(&mut hits, sort == 2);
        }
        if count != 0 {
            hits.truncate(count);
        }
        hits.iter()
            .map(|h| {
                format!(
                    "{}|{}|{}|{}|{}",
                    h.member,
                    format_distance(h.dist / conv),
                    h.score as u64,
                    format_coord(h.longitude),
                    format_coord(h.latitude)
                )
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    #[test]
    fn golden_searches() {
        let z = zset();
        for &(args, expected) in SEARCHES {
            assert_eq!(run_search(&z, args), expected, "{args}");
        }
    }

    #[test]
    fn golden_partial_sort_with_ties() {
        // p48 and p52 share a position (distance tie); Redis uses pqsort here.
        let z = zset();
        let cases: &[(&str, &str)] = &[
            ("FROMMEMBER p48 BYRADIUS 100 km COUNT 1", "p48"),
            ("FROMMEMBER p48 BYRADIUS 100 km COUNT 2", "p48,p52"),
            ("FROMMEMBER p48 BYRADIUS 100 km COUNT 3", "p48,p52,p9"),
            ("FROMMEMBER p48 BYRADIUS 100 km COUNT 3 DESC", "p29,p15,p2"),
        ];
        for &(args, expected) in cases {
            let got = run_search(&z, args);
            let members: Vec<&str> = got.split(';').map(|e| e.split('|').next().unwrap()).collect();
            assert_eq!(members.join(","), expected, "{args}");
        }
    }

    #[test]
    fn search_ranges_cover_all_matches() {
        // Brute force over the whole zset: the ranges must not miss a match,
        // except points whose score has bit 52/53 set (longitude 180 or
        // latitude GEO_LAT_MAX exactly): they lie past the 52-bit ranges
        // unless the centre cell overflows the same way, so Redis usually
        // misses them too (confirmed by the golden replies).
        let z = zset();
        for &(args, _) in SEARCHES {
            let (shape, _, count, _) = parse_search(&z, args);
            if count != 0 {
                continue;
            }
            let brute = z.iter().filter(|(s, _)| *s < (1u64 << 52) as f64 && shape.within(*s).is_some()).count();
            let all = z.iter().filter(|(s, _)| shape.within(*s).is_some()).count();
            let found = search_sorted(&shape, &z, 0).len();
            assert!(brute <= found && found <= all, "{args}");
            let ranges = search_ranges(&shape);
            assert!(!ranges.is_empty() && ranges.len() <= 9, "{args}");
        }
    }

    #[test]
    fn errors_and_units() {
        assert_eq!(
            encode_score(200.0, 100.0).unwrap_err().to_string(),
            "ERR invalid longitude,latitude pair 200.000000,100.000000"
        );
        assert_eq!(
            validate_long_lat(f64::INFINITY, 0.0).unwrap_err().to_string(),
            "ERR invalid longitude,latitude pair inf,0.000000"
        );
        assert_eq!(
            validate_long_lat(0.0078125, -85.05112879).unwrap_err().to_string(),
            "ERR invalid longitude,latitude pair 0.007812,-85.051129"
        );
        assert_eq!(
            validate_long_lat(-0.0000005, -85.05112879).unwrap_err().to_string(),
            "ERR invalid longitude,latitude pair -0.000000,-85.051129"
        );
        assert_eq!(
            parse_unit(b"yd").unwrap_err().to_string(),
            "ERR unsupported unit provided. please use M, KM, FT, MI"
        );
        assert_eq!(parse_unit(b"M"), Ok(1.0));
        assert_eq!(parse_unit(b"Km"), Ok(1000.0));
        assert_eq!(parse_unit(b"fT"), Ok(0.3048));
        assert_eq!(parse_unit(b"mi"), Ok(1609.34));
        assert!(validate_long_lat(180.0, GEO_LAT_MAX).is_ok());
        assert!(validate_long_lat(-180.0, GEO_LAT_MIN).is_ok());
    }

    #[test]
    fn odd_scores_decode_like_redis() {
        // ZADD arbitrary scores then GEOPOS / GEOHASH on redis-server 7.0.15.
        let cases: &[(f64, &str, &str, &str)] = &[
            (-1.0, "180", "85.0511287799999991", "bp05b5048p0"),
            (1e30, "-179.99999731779098511", "-85.05112751263942528", "00bh0hbj200"),
            (4503599627370496.0, "-179.99999731779098511", "85.0511287799999991", "bp05b5048p0"),
            (9007199254740992.0, "180", "-85.05112751263942528", "00bh0hbj200"),
            (1e19, "180", "85.0511287799999991", "bp05b5048p0"),
            (9.3e18, "180", "85.0511287799999991", "bp05b5048p0"),
            (f64::INFINITY, "-179.99999731779098511", "-85.05112751263942528", "00bh0hbj200"),
            (f64::NEG_INFINITY, "180", "-85.05112751263942528", "00bh0hbj200"),
            (-1e30, "180", "-85.05112751263942528", "00bh0hbj200"),
            (-9.3e18, "180", "-85.05112751263942528", "00bh0hbj200"),
            (18446744073709551616.0, "-179.99999731779098511", "-85.05112751263942528", "00bh0hbj200"),
            (4503599627370495.0, "179.99999731779098511", "85.05112751263942528", "zzpgzgpfxz0"),
        ];
        for &(s, lon, lat, gh) in cases {
            let [x, y] = decode_score(s);
            assert_eq!((format_coord(x).as_str(), format_coord(y).as_str()), (lon, lat), "{s}");
            assert_eq!(geohash_to_string(s).unwrap(), gh, "{s}");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(0.0001), "0.0001");
        assert_eq!(format_distance(6.064_295_159_839_17e-5), "0.0001");
        assert_eq!(format_distance(0.01), "0.0100");
        assert_eq!(format_distance(-12.34567), "-12.3457");
        assert_eq!(format_distance(166274.1516), "166274.1516");
        assert_eq!(format_coord(-0.0), "0");
        assert_eq!(format_coord(180.0), "180");
        assert_eq!(format_coord(1.5), "1.5");
    }

    #[test]
    fn steps_and_neighbors() {
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(1.0, 0.0), 24);
        assert_eq!(estimate_steps_by_radius(1.0, 70.0), 23);
        assert_eq!(estimate_steps_by_radius(1.0, -85.0), 22);
        assert_eq!(estimate_steps_by_radius(1e9, 0.0), 1);
        let h = geohash_encode_wgs84(13.361389, 38.115556, 10).unwrap();
        let n = geohash_neighbors(&h);
        let a = geohash_decode_wgs84(h).unwrap();
        let e = geohash_decode_wgs84(n.east).unwrap();
        let no = geohash_decode_wgs84(n.north).unwrap();
        assert_eq!(a.longitude.max, e.longitude.min);
        assert_eq!(a.latitude.max, no.latitude.min);
        assert_eq!(deinterleave64(interleave64(0x1234567, 0x7654321)), 0x7654321_01234567);
    }
}
