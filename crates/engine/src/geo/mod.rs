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
mod tests;
