//! HyperLogLog, a bit-exact port of Redis 7.0's `hyperloglog.c`.
//!
//! An HLL is an ordinary Redis string value that holds Redis's exact byte
//! representation:
//!
//! ```text
//! +------+----------+---------+------------------+-----------+
//! | HYLL | encoding | 3 zeros | card (8 bytes LE) | registers |
//! +------+----------+---------+------------------+-----------+
//! ```
//!
//! * `encoding` is [`HLL_DENSE`] (0) or [`HLL_SPARSE`] (1).
//! * `card` caches the last computed cardinality (little endian); its most
//!   significant bit (bit 7 of byte 15) set means "cache invalid".
//! * Dense registers: 16384 registers of 6 bits each, packed LSB first
//!   (12288 bytes, total value length [`HLL_DENSE_SIZE`] = 12304).
//! * Sparse registers: run-length opcodes `ZERO` (`00xxxxxx`, 1..=64 zero
//!   registers), `XZERO` (`01xxxxxx xxxxxxxx`, 1..=16384 zero registers) and
//!   `VAL` (`1vvvvvxx`, 1..=4 registers of value 1..=32).
//!
//! Every function here is pure (works on byte slices / vectors); the command
//! layer owns key lookup, type checks (non-string values must be answered
//! with the usual WRONGTYPE error before calling in), keyspace notifications
//! and dirty counters.
//!
//! Reading the sparse representation mirrors Redis exactly, including the
//! fact that Redis may read one byte past the end of the string (the SDS null
//! terminator, always 0) when a corrupted value ends in the middle of an
//! `XZERO` opcode.

use std::fmt;

/// Number of bits of the hash used to select the register.
pub const HLL_P: u32 = 14;
/// Bits of the hash used to count the run of zeroes.
pub const HLL_Q: u32 = 64 - HLL_P;
/// Number of registers (16384).
pub const HLL_REGISTERS: usize = 1 << HLL_P;
const HLL_P_MASK: u64 = (HLL_REGISTERS as u64) - 1;
const HLL_BITS: usize = 6;
const HLL_REGISTER_MAX: u8 = (1 << HLL_BITS) - 1;
/// Size of the header ("HYLL", encoding, 3 unused bytes, 8 cardinality bytes).
pub const HLL_HDR_SIZE: usize = 16;
/// Exact length of a dense HLL value.
pub const HLL_DENSE_SIZE: usize = HLL_HDR_SIZE + (HLL_REGISTERS * HLL_BITS).div_ceil(8);
/// Dense encoding byte.
pub const HLL_DENSE: u8 = 0;
/// Sparse encoding byte.
pub const HLL_SPARSE: u8 = 1;
const HLL_MAX_ENCODING: u8 = 1;

/// Default of the `hll-sparse-max-bytes` configuration directive.
pub const DEFAULT_SPARSE_MAX_BYTES: usize = 3000;

const HLL_SPARSE_VAL_MAX_VALUE: u8 = 32;
const HLL_SPARSE_VAL_MAX_LEN: usize = 4;
const HLL_SPARSE_ZERO_MAX_LEN: usize = 64;
const HLL_SPARSE_XZERO_MAX_LEN: usize = 16384;
#[allow(clippy::excessive_precision)]
const HLL_ALPHA_INF: f64 = 0.721347520444481703680; // 0.5/ln(2)

/// Seed Redis passes to MurmurHash64A.
pub const HLL_HASH_SEED: u32 = 0xadc8_3b19;

/// Errors of the HLL commands; `Display` gives Redis's exact error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HllError {
    /// The string is not a valid HLL (bad magic, encoding, dense length...).
    WrongType,
    /// The sparse representation is corrupted.
    InvalidObj,
}

impl HllError {
    /// Redis's error reply text (without the leading `-` and CRLF).
    pub fn as_str(&self) -> &'static str {
        match self {
            HllError::WrongType => "WRONGTYPE Key is not a valid HyperLogLog string value.",
            HllError::InvalidObj => "INVALIDOBJ Corrupted HLL object detected",
        }
    }
}

impl fmt::Display for HllError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for HllError {}

// ---------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------

/// MurmurHash2, 64 bit version, endian neutral, as modified by Redis.
pub fn murmurhash64a(key: &[u8], seed: u32) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let len = key.len();
    // `len * m` in C is computed with `int len` promoted to uint64_t.
    let mut h: u64 = (seed as u64) ^ ((len as i32 as i64 as u64).wrapping_mul(M));
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().unwrap());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Returns `(register index, run length of the 000..1 pattern)` for `ele`
/// (Redis's `hllPatLen`).
pub fn hll_pat_len(ele: &[u8]) -> (usize, u8) {
    let mut hash = murmurhash64a(ele, HLL_HASH_SEED);
    let index = (hash & HLL_P_MASK) as usize;
    hash >>= HLL_P;
    hash |= 1u64 << HLL_Q;
    // Count includes the final 1 bit.
    let count = hash.trailing_zeros() as u8 + 1;
    (index, count)
}

// ---------------------------------------------------------------------------
// Dense representation
// ---------------------------------------------------------------------------

/// Reads the byte at `i`, or 0 past the end (emulates the SDS terminator).
#[inline]
fn byte_at(p: &[u8], i: usize) -> u8 {
    p.get(i).copied().unwrap_or(0)
}

#[inline]
fn dense_get(regs: &[u8], regnum: usize) -> u8 {
    let byte = regnum * HLL_BITS / 8;
    let fb = (regnum * HLL_BITS) & 7;
    let fb8 = 8 - fb;
    let b0 = byte_at(regs, byte) as u32;
    let b1 = byte_at(regs, byte + 1) as u32;
    (((b0 >> fb) | (b1 << fb8)) & HLL_REGISTER_MAX as u32) as u8
}

#[inline]
fn dense_set(regs: &mut [u8], regnum: usize, val: u8) {
    let byte = regnum * HLL_BITS / 8;
    let fb = (regnum * HLL_BITS) & 7;
    let fb8 = 8 - fb;
    let v = val as u32;
    let max = HLL_REGISTER_MAX as u32;
    regs[byte] &= !((max << fb) as u8);
    regs[byte] |= (v << fb) as u8;
    // The last register never spills into the byte after the registers.
    if byte + 1 < regs.len() {
        regs[byte + 1] &= !((max >> fb8) as u8);
        regs[byte + 1] |= (v >> fb8) as u8;
    }
}

/// `hllDenseSet`: raise register `index` to `count`; true when changed.
fn dense_set_if_greater(regs: &mut [u8], index: usize, count: u8) -> bool {
    let old = dense_get(regs, index);
    if count > old {
        dense_set(regs, index, count);
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------------------
// Sparse representation
// ---------------------------------------------------------------------------

#[inline]
fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
#[inline]
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
#[inline]
fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}
#[inline]
fn zero_len(b: u8) -> usize {
    (b & 0x3f) as usize + 1
}
#[inline]
fn xzero_len(b0: u8, b1: u8) -> usize {
    ((((b0 & 0x3f) as usize) << 8) | b1 as usize) + 1
}
#[inline]
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
#[inline]
fn val_len(b: u8) -> usize {
    (b & 0x3) as usize + 1
}
#[inline]
fn val_op(val: u8, len: usize) -> u8 {
    (((val - 1) << 2) | (len as u8 - 1)) | 0x80
}
#[inline]
fn zero_op(len: usize) -> u8 {
    (len - 1) as u8
}
#[inline]
fn xzero_op(len: usize) -> [u8; 2] {
    let l = len - 1;
    [((l >> 8) as u8) | 0x40, (l & 0xff) as u8]
}

/// Walks the sparse opcodes of `ops` calling `f(first_register, runlen, value)`
/// for each run; returns false if the representation is invalid (overflow
/// or not covering exactly [`HLL_REGISTERS`] registers).
fn sparse_for_each_run(ops: &[u8], mut f: impl FnMut(usize, usize, u8)) -> bool {
    let mut idx = 0usize;
    let mut p = 0usize;
    while p < ops.len() {
        let b = ops[p];
        let (runlen, val, oplen) = if is_zero(b) {
            (zero_len(b), 0, 1)
        } else if is_xzero(b) {
            (xzero_len(b, byte_at(ops, p + 1)), 0, 2)
        } else {
            (val_len(b), val_value(b), 1)
        };
        if runlen + idx > HLL_REGISTERS {
            return false;
        }
        f(idx, runlen, val);
        idx += runlen;
        p += oplen;
    }
    idx == HLL_REGISTERS
}

/// `hllSparseToDense`: converts in place; no-op on dense values.
fn sparse_to_dense(v: &mut Vec<u8>) -> Result<(), HllError> {
    if v[4] == HLL_DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; HLL_DENSE_SIZE];
    dense[..HLL_HDR_SIZE].copy_from_slice(&v[..HLL_HDR_SIZE]);
    dense[4] = HLL_DENSE;
    let valid = {
        let regs = &mut dense[HLL_HDR_SIZE..];
        sparse_for_each_run(&v[HLL_HDR_SIZE..], |first, runlen, val| {
            if val != 0 {
                for i in first..first + runlen {
                    dense_set(regs, i, val);
                }
            }
        })
    };
    if !valid {
        return Err(HllError::InvalidObj);
    }
    *v = dense;
    Ok(())
}

/// `hllSparseSet`. Returns Ok(true) when the register changed (possibly
/// promoting the value to dense), Ok(false) when no update was needed.
fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8, sparse_max_bytes: usize) -> Result<bool, HllError> {
    if count > HLL_SPARSE_VAL_MAX_VALUE {
        return promote(v, index, count);
    }

    // Step 1: locate the opcode covering `index`.
    let sparse = HLL_HDR_SIZE;
    let mut end = v.len();
    let mut p = sparse;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut span = 0usize;
    while p < end {
        let b = v[p];
        let mut oplen = 1;
        if is_zero(b) {
            span = zero_len(b);
        } else if is_val(b) {
            span = val_len(b);
        } else {
            span = xzero_len(b, byte_at(v, p + 1));
            oplen = 2;
        }
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(HllError::InvalidObj);
    }

    let b = v[p];
    let opcode_is_zero = is_zero(b);
    let opcode_is_xzero = is_xzero(b);
    let opcode_is_val = !opcode_is_zero && !opcode_is_xzero;
    let runlen = if opcode_is_zero {
        zero_len(b)
    } else if opcode_is_xzero {
        xzero_len(b, byte_at(v, p + 1))
    } else {
        val_len(b)
    };

    let mut done = false;
    if opcode_is_val {
        let oldcount = val_value(b);
        // Case A.
        if oldcount >= count {
            return Ok(false);
        }
        // Case B.
        if runlen == 1 {
            v[p] = val_op(count, 1);
            done = true;
        }
    }
    // Case C.
    if !done && opcode_is_zero && runlen == 1 {
        v[p] = val_op(count, 1);
        done = true;
    }

    if !done {
        // Case D: general case, split the opcode.
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        let last = first + span - 1;
        if opcode_is_zero || opcode_is_xzero {
            if index != first {
                let len = index - first;
                if len > HLL_SPARSE_ZERO_MAX_LEN {
                    seq.extend_from_slice(&xzero_op(len));
                } else {
                    seq.push(zero_op(len));
                }
            }
            seq.push(val_op(count, 1));
            if index != last {
                let len = last - index;
                if len > HLL_SPARSE_ZERO_MAX_LEN {
                    seq.extend_from_slice(&xzero_op(len));
                } else {
                    seq.push(zero_op(len));
                }
            }
        } else {
            let curval = val_value(b);
            if index != first {
                seq.push(val_op(curval, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(curval, last - index));
            }
        }

        // Step 3: substitute the new sequence for the old opcode.
        let oldlen = if opcode_is_xzero { 2 } else { 1 };
        let seqlen = seq.len();
        if seqlen > oldlen && v.len() + (seqlen - oldlen) > sparse_max_bytes {
            return promote(v, index, count);
        }
        // A corrupted value may end in the middle of an XZERO opcode.
        let old_end = (p + oldlen).min(v.len());
        v.splice(p..old_end, seq);
        // Redis adjusts the length by the nominal delta; keep in sync.
        let new_len = (end + seqlen).saturating_sub(oldlen);
        v.resize(new_len, 0);
        end = v.len();
    }

    // Step 4: merge adjacent VAL opcodes if possible.
    let mut p = prev.unwrap_or(sparse);
    let mut scanlen = 5;
    while p < end && scanlen > 0 {
        scanlen -= 1;
        let b = v[p];
        if is_xzero(b) {
            p += 2;
            continue;
        } else if is_zero(b) {
            p += 1;
            continue;
        }
        if p + 1 < end && is_val(v[p + 1]) {
            let v1 = val_value(b);
            let v2 = val_value(v[p + 1]);
            if v1 == v2 {
                let len = val_len(b) + val_len(v[p + 1]);
                if len <= HLL_SPARSE_VAL_MAX_LEN {
                    v[p + 1] = val_op(v1, len);
                    v.remove(p);
                    end -= 1;
                    continue;
                }
            }
        }
        p += 1;
    }

    invalidate_cache(v);
    Ok(true)
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    sparse_to_dense(v)?;
    // Redis asserts this is always a change for valid inputs.
    Ok(dense_set_if_greater(&mut v[HLL_HDR_SIZE..], index, count))
}

// ---------------------------------------------------------------------------
// Estimator
// ---------------------------------------------------------------------------

fn hll_sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_prime = z;
        z += x * y;
        y += y;
        if z_prime == z {
            break;
        }
    }
    z
}

fn hll_tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_prime = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if z_prime == z {
            break;
        }
    }
    z / 3.0
}

/// Ertl's improved estimator as implemented by Redis's `hllCount`.
fn estimate(reghisto: &[u32; 64]) -> u64 {
    let m = HLL_REGISTERS as f64;
    let q = HLL_Q as usize;
    let mut z = m * hll_tau((m - reghisto[q + 1] as f64) / m);
    for j in (1..=q).rev() {
        z += reghisto[j] as f64;
        z *= 0.5;
    }
    z += m * hll_sigma(reghisto[0] as f64 / m);
    // llroundl: round half away from zero; out of range (e.g. +inf when
    // every register is past the estimator's range) gives LLONG_MIN, as
    // x86-64 glibc does. Redis replies with the value cast to long long.
    let e = (HLL_ALPHA_INF * m * m / z).round();
    if e.is_finite() && e < 9_223_372_036_854_775_808.0 {
        e as i64 as u64
    } else {
        1u64 << 63
    }
}

fn histogram(v: &[u8]) -> Result<[u32; 64], HllError> {
    let mut reghisto = [0u32; 64];
    if v[4] == HLL_DENSE {
        let regs = &v[HLL_HDR_SIZE..];
        for i in 0..HLL_REGISTERS {
            reghisto[dense_get(regs, i) as usize] += 1;
        }
    } else {
        let ok = sparse_for_each_run(&v[HLL_HDR_SIZE..], |_, runlen, val| {
            reghisto[val as usize] += runlen as u32;
        });
        if !ok {
            return Err(HllError::InvalidObj);
        }
    }
    Ok(reghisto)
}

/// `hllMerge`: `max[i] = max(max[i], hll[i])`. `hll` must be validated.
fn merge_into(max: &mut [u8; HLL_REGISTERS], v: &[u8]) -> Result<(), HllError> {
    if v[4] == HLL_DENSE {
        let regs = &v[HLL_HDR_SIZE..];
        for (i, m) in max.iter_mut().enumerate() {
            let val = dense_get(regs, i);
            if val > *m {
                *m = val;
            }
        }
        Ok(())
    } else {
        let ok = sparse_for_each_run(&v[HLL_HDR_SIZE..], |first, runlen, val| {
            if val != 0 {
                for m in &mut max[first..first + runlen] {
                    if val > *m {
                        *m = val;
                    }
                }
            }
        });
        if ok {
            Ok(())
        } else {
            Err(HllError::InvalidObj)
        }
    }
}

fn invalidate_cache(v: &mut [u8]) {
    v[15] |= 0x80;
}

fn cache_valid(v: &[u8]) -> bool {
    v[15] & 0x80 == 0
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// A fresh empty HLL exactly as `createHLLObject` builds it: sparse, one
/// `XZERO` opcode covering all 16384 registers, cached cardinality 0 (valid).
///
/// Note that PFADD on a missing key additionally invalidates the cache (see
/// [`pfadd`]).
pub fn new_hll() -> Vec<u8> {
    let mut v = Vec::with_capacity(HLL_HDR_SIZE + 2);
    v.extend_from_slice(b"HYLL");
    v.push(HLL_SPARSE);
    v.extend_from_slice(&[0u8; 11]);
    let mut aux = HLL_REGISTERS;
    while aux > 0 {
        let xz = aux.min(HLL_SPARSE_XZERO_MAX_LEN);
        v.extend_from_slice(&xzero_op(xz));
        aux -= xz;
    }
    v
}

/// `isHLLObjectOrReply` for a string value: header length, magic, encoding
/// and (for dense) exact length. Does not walk the sparse opcodes.
pub fn is_valid_hll(v: &[u8]) -> bool {
    v.len() >= HLL_HDR_SIZE
        && &v[..4] == b"HYLL"
        && v[4] <= HLL_MAX_ENCODING
        && (v[4] != HLL_DENSE || v.len() == HLL_DENSE_SIZE)
}

fn check(v: &[u8]) -> Result<(), HllError> {
    if is_valid_hll(v) {
        Ok(())
    } else {
        Err(HllError::WrongType)
    }
}

/// Adds one element to an already validated HLL (`hllAdd`).
fn hll_add(v: &mut Vec<u8>, ele: &[u8], sparse_max_bytes: usize) -> Result<bool, HllError> {
    let (index, count) = hll_pat_len(ele);
    match v[4] {
        HLL_DENSE => Ok(dense_set_if_greater(&mut v[HLL_HDR_SIZE..], index, count)),
        HLL_SPARSE => sparse_set(v, index, count, sparse_max_bytes),
        _ => Err(HllError::InvalidObj),
    }
}

/// PFADD. `slot` is the key's string value (`None` when the key is
/// missing: an empty HLL is then created in the slot and the result is
/// `true` even without elements, exactly like Redis).
///
/// Returns whether the HLL changed (the `:1`/`:0` reply; when true the
/// caller signals the key as modified and fires the `pfadd` event).
///
/// On error the value may have been partially modified, as in Redis: the
/// caller keeps whatever is in `slot`.
pub fn pfadd(slot: &mut Option<Vec<u8>>, elements: &[&[u8]], sparse_max_bytes: usize) -> Result<bool, HllError> {
    let mut updated = false;
    let v = match slot {
        None => {
            updated = true;
            slot.insert(new_hll())
        }
        Some(v) => {
            check(v)?;
            v
        }
    };
    for ele in elements {
        if hll_add(v, ele, sparse_max_bytes)? {
            updated = true;
        }
    }
    if updated {
        invalidate_cache(v);
    }
    Ok(updated)
}

/// PFCOUNT on a single existing key. Returns the cached cardinality if the
/// cache is valid, otherwise recomputes it and stores it in the header (the
/// value is modified in place, like Redis does).
pub fn pfcount(value: &mut [u8]) -> Result<u64, HllError> {
    pfcount_ext(value).map(|(card, _)| card)
}

/// Like [`pfcount`], also telling whether the cached cardinality was
/// rewritten (Redis then signals the key as modified and bumps `dirty`, so
/// the change is propagated).
pub fn pfcount_ext(value: &mut [u8]) -> Result<(u64, bool), HllError> {
    check(value)?;
    if cache_valid(value) {
        let card = u64::from_le_bytes(value[8..16].try_into().unwrap());
        return Ok((card, false));
    }
    let card = estimate(&histogram(value)?);
    value[8..16].copy_from_slice(&card.to_le_bytes());
    Ok((card, true))
}

/// PFCOUNT with several keys: cardinality of the union, no value is
/// modified. `values` are the existing keys in argument order (missing keys
/// are simply left out by the caller). Note that Redis uses this path
/// whenever more than one key is given, even if only one exists.
pub fn pfcount_many(values: &[&[u8]]) -> Result<u64, HllError> {
    let mut max = Box::new([0u8; HLL_REGISTERS]);
    for v in values {
        check(v)?;
        merge_into(&mut max, v)?;
    }
    let mut reghisto = [0u32; 64];
    for &r in max.iter() {
        reghisto[r as usize] += 1;
    }
    Ok(estimate(&reghisto))
}

/// PFMERGE. `dest` is the destination's current value (`None` if missing),
/// `sources` the existing source values in argument order (missing ones left
/// out). Returns the new destination value.
///
/// Redis 7.0 semantics: the destination itself takes part in the union;
/// when the destination exists its representation is updated in place
/// (keeping its cached-cardinality bytes, then invalidated), otherwise a new
/// sparse HLL is created. The result is converted to dense if any input
/// (destination included) was dense; otherwise registers are set in the
/// sparse representation, which may still promote to dense if a value > 32
/// is needed or the size would exceed `sparse_max_bytes`.
pub fn pfmerge(dest: Option<&[u8]>, sources: &[&[u8]], sparse_max_bytes: usize) -> Result<Vec<u8>, HllError> {
    let mut max = Box::new([0u8; HLL_REGISTERS]);
    let mut use_dense = false;
    for v in dest.iter().chain(sources.iter()) {
        check(v)?;
        if v[4] == HLL_DENSE {
            use_dense = true;
        }
        merge_into(&mut max, v)?;
    }
    let mut out = match dest {
        Some(d) => d.to_vec(),
        None => new_hll(),
    };
    if use_dense {
        sparse_to_dense(&mut out)?;
    }
    for (j, &m) in max.iter().enumerate() {
        if m == 0 {
            continue;
        }
        match out[4] {
            HLL_DENSE => {
                dense_set_if_greater(&mut out[HLL_HDR_SIZE..], j, m);
            }
            _ => {
                // Redis ignores the return value here.
                let _ = sparse_set(&mut out, j, m, sparse_max_bytes);
            }
        }
    }
    invalidate_cache(&mut out);
    Ok(out)
}

/// Register values of a valid HLL (16384 entries), handy for debugging and
/// for a `PFDEBUG GETREG`-like command.
pub fn registers(value: &[u8]) -> Result<Vec<u8>, HllError> {
    check(value)?;
    let mut max = Box::new([0u8; HLL_REGISTERS]);
    merge_into(&mut max, value)?;
    Ok(max.to_vec())
}

/// `PFDEBUG TODENSE`: converts a sparse value to dense in place; returns
/// whether a conversion happened.
pub fn to_dense(value: &mut Vec<u8>) -> Result<bool, HllError> {
    check(value)?;
    if value[4] == HLL_DENSE {
        return Ok(false);
    }
    sparse_to_dense(value)?;
    Ok(true)
}

/// `PFDEBUG ENCODING`: "dense" or "sparse".
pub fn encoding_name(value: &[u8]) -> Result<&'static str, HllError> {
    check(value)?;
    Ok(if value[4] == HLL_DENSE { "dense" } else { "sparse" })
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    //! Golden values produced by a real redis-server 7.0.15 (x86-64, glibc):
    //! values fetched with GET, compared by length + FNV-1a 64 of the bytes
    //! (or byte for byte when short).
    use super::*;

    fn fnv(b: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf29ce484222325;
        for &x in b {
            h = (h ^ x as u64).wrapping_mul(0x100000001b3);
        }
        h
    }

    fn elems(prefix: &str, lo: usize, hi: usize) -> Vec<Vec<u8>> {
        (lo..hi).map(|i| format!("{prefix}{i}").into_bytes()).collect()
    }

    fn build(prefix: &str, lo: usize, hi: usize, max: usize) -> Vec<u8> {
        let els = elems(prefix, lo, hi);
        let refs: Vec<&[u8]> = els.iter().map(|e| e.as_slice()).collect();
        let mut slot = None;
        pfadd(&mut slot, &refs, max).unwrap();
        slot.unwrap()
    }

    fn named(name: &str) -> Option<Vec<u8>> {
        match name {
            "nokey" => None,
            "s1" => Some(build("elem:", 0, 100, 3000)),
            "s2" => Some(build("elem:", 50, 200, 3000)),
            _ => {
                let &(_, lo, hi, max, ..) = ADD_CASES.iter().find(|c| c.0 == name).unwrap();
                Some(build("elem:", lo, hi, max))
            }
        }
    }

    const ADD_CASES: &[(&str, usize, usize, usize, usize, u64, u64, u64)] = &[
        ("e0", 0, 0, 3000, 18, 0x524bc36d036c0579, 0, 0xfd8f436a8f6e62f9),
        ("e1", 0, 1, 3000, 21, 0x6492407f7eeeec07, 1, 0xfda83dcba4984c14),
        ("e100", 0, 100, 3000, 277, 0x2efa48de64f17043, 100, 0xd144edccca50447f),
        ("e5000", 0, 5000, 3000, 12304, 0x4d13305bf3283fd6, 4973, 0x5c59fad9853190ce),
        ("e100000", 0, 100000, 3000, 12304, 0xa27c89bdf140b344, 99904, 0x13146937cc2363c7),
        ("e300_m200", 0, 300, 200, 12304, 0x920e5c7b463fb074, 302, 0xe048c56a1cc93a09),
        ("e1000_m3000", 0, 1000, 3000, 1913, 0x951b49e4092fe72f, 1005, 0x9424dc8a6d57e9cf),
        ("e2000_m3000", 0, 2000, 3000, 12304, 0x2e90772b80d2afdc, 1994, 0xd819f1b9ba5aa2db),
        ("e100_m10000", 0, 100, 10000, 277, 0x2efa48de64f17043, 100, 0xd144edccca50447f),
    ];
    const EMPTY_AFTER_PFADD: &[u8] = b"\x48\x59\x4c\x4c\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff";
    const ABC_BYTES: &[u8] = b"\x48\x59\x4c\x4c\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x57\x31\x84\x47\xa1\x84\x42\x1d\x80\x50\xb1\x84\x4b\xfb\x80\x42\x5a";
    const ABC_COUNT: u64 = 5;
    const ABC_AFTER_COUNT: &[u8] = b"\x48\x59\x4c\x4c\x01\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x57\x31\x84\x47\xa1\x84\x42\x1d\x80\x50\xb1\x84\x4b\xfb\x80\x42\x5a";
    const E20_BYTES: &[u8] = b"\x48\x59\x4c\x4c\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x44\xbc\x84\x08\x84\x44\x1a\x80\x41\xbf\x80\x46\x90\x94\x42\x43\x84\x28\x84\x47\x7d\x8c\x44\x6b\x80\x40\xb5\x88\x4e\x22\x80\x41\x8f\x84\x42\xbd\x80\x40\x59\x84\x40\xba\x80\x40\xa5\x8c\x41\xe9\x84\x44\xd2\x84\x40\x4d\x80\x42\x0e\x80\x42\x66";
    const PFADD_RETS: &[i64] = &[1, 0, 1, 0, 1, 0];
    const COUNT_MANY: &[(&[&str], u64)] = &[
        (&["e100", "e5000"], 4973),
        (&["e1", "e100", "nokey"], 100),
        (&["e5000", "e100000"], 99904),
        (&["e0", "e1"], 1),
        (&["e100", "e300_m200", "e1000_m3000"], 1005),
    ];
    // (dest, sources, len, fnv, count, encoding)
    const MERGES: &[(Option<&str>, &[&str], usize, u64, u64, u8)] = &[
        (None, &["s1", "s2"], 494, 0xd6d8c45a61016bbd, 200, 1),
        (None, &["s1", "e5000"], 12304, 0x4d13305bf3283fd6, 4973, 0),
        (None, &["s1", "nokey"], 277, 0x2efa48de64f17043, 100, 1),
        (None, &["nokey"], 18, 0x524bc36d036c0579, 0, 1),
        (Some("d30"), &["s1", "s2"], 557, 0x87d87994f06412d2, 231, 1),
        (Some("d30"), &["e5000"], 12304, 0x3f7d6c2b9c9517e3, 5005, 0),
        (Some("d30nc"), &["s1"], 348, 0x58ce0c067bc106e6, 131, 1),
        (Some("d6000"), &["s1"], 12304, 0x79c1baf933a13505, 6042, 0),
        (None, &["e2000_m3000", "e1000_m3000"], 12304, 0x2e90772b80d2afdc, 1994, 0),
    ];
    const MERGE_SMALL: &[u8] = b"\x48\x59\x4c\x4c\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x44\xbc\x84\x08\x84\x44\x1a\x80\x4a\x96\x84\x28\x84\x47\x7d\x8c\x44\x6b\x80\x40\xb5\x88\x4e\x22\x80\x41\x8f\x84\x42\xbd\x80\x41\x15\x80\x40\xa5\x8c\x47\x0c\x80\x42\x0e\x80\x42\x66";
    // (id, invalid-cache bit, pfcount, pfadd a b c, len after pfadd, fnv after, pfcount after)
    const CORRUPT: &[(usize, bool, Result<i64, HllError>, Result<i64, HllError>, usize, u64, Result<i64, HllError>)] =
        &[
            (0, false, Ok(0), Ok(1), 26, 0x02b5a230e904b8ee, Err(HllError::InvalidObj)),
            (1, false, Ok(0), Ok(1), 28, 0xc69a277def1d8809, Err(HllError::InvalidObj)),
            (2, false, Ok(0), Err(HllError::InvalidObj), 16, 0x5699e86d7b48564b, Ok(0)),
            (
                3,
                false,
                Err(HllError::WrongType),
                Err(HllError::WrongType),
                26,
                0x563fd2eb88e0e4ea,
                Err(HllError::WrongType),
            ),
            (
                4,
                false,
                Err(HllError::WrongType),
                Err(HllError::WrongType),
                18,
                0xf9bb52fb05d10cee,
                Err(HllError::WrongType),
            ),
            (
                5,
                false,
                Err(HllError::WrongType),
                Err(HllError::WrongType),
                5,
                0xa430d84680aabd0b,
                Err(HllError::WrongType),
            ),
            (
                6,
                false,
                Err(HllError::WrongType),
                Err(HllError::WrongType),
                4,
                0x272879d8e9fefdba,
                Err(HllError::WrongType),
            ),
            (7, false, Ok(0), Ok(1), 278, 0x606b183c79e852d1, Ok(3)),
            (8, false, Ok(0), Ok(1), 27, 0x9f58481bf3039b86, Err(HllError::InvalidObj)),
            (9, false, Ok(0), Ok(1), 279, 0xbe4a5dc325c32306, Ok(4)),
            (10, false, Ok(0), Ok(0), 12304, 0x329328fcc9cc6d9a, Ok(0)),
            (11, false, Ok(0), Ok(1), 12304, 0xdf4a8aa58d692be2, Ok(4)),
            (12, false, Ok(0), Ok(0), 16400, 0x22a771e538e8564b, Ok(0)),
            (13, false, Ok(0), Ok(1), 279, 0xbe4c7fc325c3dfa3, Err(HllError::InvalidObj)),
            (0, true, Err(HllError::InvalidObj), Ok(1), 26, 0x02b5a230e904b8ee, Err(HllError::InvalidObj)),
            (1, true, Err(HllError::InvalidObj), Ok(1), 28, 0xc69a277def1d8809, Err(HllError::InvalidObj)),
            (
                2,
                true,
                Err(HllError::InvalidObj),
                Err(HllError::InvalidObj),
                16,
                0x569a686d7b492fcb,
                Err(HllError::InvalidObj),
            ),
            (
                3,
                true,
                Err(HllError::WrongType),
                Err(HllError::WrongType),
                26,
                0xf98ed6daf3bfdf6a,
                Err(HllError::WrongType),
            ),
            (
                4,
                true,
                Err(HllError::WrongType),
                Err(HllError::WrongType),
                18,
                0xa4fed2f891d36a6e,
                Err(HllError::WrongType),
            ),
            (
                5,
                true,
                Err(HllError::WrongType),
                Err(HllError::WrongType),
                5,
                0xa430d84680aabd0b,
                Err(HllError::WrongType),
            ),
            (
                6,
                true,
                Err(HllError::WrongType),
                Err(HllError::WrongType),
                4,
                0x272879d8e9fefdba,
                Err(HllError::WrongType),
            ),
            (7, true, Ok(0), Ok(1), 278, 0x606b183c79e852d1, Ok(3)),
            (8, true, Err(HllError::InvalidObj), Ok(1), 27, 0x9f58481bf3039b86, Err(HllError::InvalidObj)),
            (9, true, Ok(1), Ok(1), 279, 0xbe4a5dc325c32306, Ok(4)),
            (10, true, Ok(-9223372036854775808), Ok(0), 12304, 0x8d95a60fca2b941a, Ok(-9223372036854775808)),
            (11, true, Ok(1), Ok(1), 12304, 0xdf4a8aa58d692be2, Ok(4)),
            (12, true, Ok(50760319129350), Ok(0), 16400, 0x1aabd311daa92fcb, Ok(50760319129350)),
            (13, true, Err(HllError::InvalidObj), Ok(1), 279, 0xbe4c7fc325c3dfa3, Err(HllError::InvalidObj)),
        ];

    #[test]
    fn murmur_and_patlen_basics() {
        // Tail handling for every length 0..=16 must not panic and differ.
        let data: Vec<u8> = (0u8..16).collect();
        let hs: Vec<u64> = (0..=16).map(|n| murmurhash64a(&data[..n], HLL_HASH_SEED)).collect();
        for i in 0..hs.len() {
            for j in i + 1..hs.len() {
                assert_ne!(hs[i], hs[j]);
            }
        }
        let (idx, cnt) = hll_pat_len(b"a");
        assert!(idx < HLL_REGISTERS && (1..=51).contains(&cnt));
    }

    #[test]
    fn new_and_empty() {
        let mut slot = None;
        assert_eq!(pfadd(&mut slot, &[], 3000), Ok(true));
        assert_eq!(slot.as_deref().unwrap(), EMPTY_AFTER_PFADD);
        let mut fresh = new_hll();
        assert!(is_valid_hll(&fresh));
        assert_eq!(pfcount(&mut fresh), Ok(0));
        assert_eq!(pfcount(slot.as_mut().unwrap()), Ok(0));
    }

    #[test]
    fn small_exact_bytes() {
        let els: [&[u8]; 5] = [b"a", b"b", b"c", b"", b"\x00\xc3\xbf"];
        let mut slot = None;
        pfadd(&mut slot, &els, 3000).unwrap();
        let mut v = slot.unwrap();
        assert_eq!(v, ABC_BYTES);
        assert_eq!(pfcount(&mut v), Ok(ABC_COUNT));
        assert_eq!(v, ABC_AFTER_COUNT);
        assert_eq!(pfcount_ext(&mut v), Ok((ABC_COUNT, false)));
        assert_eq!(build("elem:", 0, 20, 3000), E20_BYTES);
    }

    #[test]
    fn pfadd_return_values() {
        let mut slot = None;
        let got: Vec<i64> = [b"a", b"a", b"b", b"a", b"c", b"b"]
            .iter()
            .map(|e| pfadd(&mut slot, &[&e[..]], 3000).unwrap() as i64)
            .collect();
        assert_eq!(got, PFADD_RETS);
    }

    #[test]
    fn golden_add_and_count() {
        for &(name, lo, hi, max, len, h, count, h2) in ADD_CASES {
            let mut v = build("elem:", lo, hi, max);
            assert_eq!(v.len(), len, "{name}");
            assert_eq!(fnv(&v), h, "{name}");
            assert_eq!(pfcount_ext(&mut v), Ok((count, true)), "{name}");
            assert_eq!(fnv(&v), h2, "{name}");
            assert_eq!(pfcount_ext(&mut v), Ok((count, false)), "{name}");
        }
    }

    #[test]
    fn golden_count_many() {
        for &(keys, count) in COUNT_MANY {
            let vals: Vec<Vec<u8>> = keys.iter().filter_map(|k| named(k)).collect();
            let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
            assert_eq!(pfcount_many(&refs), Ok(count), "{keys:?}");
        }
    }

    #[test]
    fn golden_merge() {
        for &(dest, srcs, len, h, count, enc) in MERGES {
            let dest_val = dest.map(|d| match d {
                "d30" => {
                    let mut v = build("d:", 0, 30, 3000);
                    pfcount(&mut v).unwrap();
                    v
                }
                "d30nc" => build("d:", 0, 30, 3000),
                "d6000" => build("d:", 0, 6000, 3000),
                _ => unreachable!(),
            });
            let vals: Vec<Vec<u8>> = srcs.iter().filter_map(|k| named(k)).collect();
            let refs: Vec<&[u8]> = vals.iter().map(|v| v.as_slice()).collect();
            let mut out = pfmerge(dest_val.as_deref(), &refs, 3000).unwrap();
            assert_eq!((out.len(), fnv(&out), out[4]), (len, h, enc), "{dest:?} {srcs:?}");
            assert_eq!(pfcount(&mut out), Ok(count), "{dest:?} {srcs:?}");
        }
        let s1 = build("elem:", 0, 10, 3000);
        let s2 = build("elem:", 5, 15, 3000);
        assert_eq!(pfmerge(None, &[&s1, &s2], 3000).unwrap(), MERGE_SMALL);
    }

    fn corrupt_value(id: usize, inv: bool) -> Vec<u8> {
        let hdr = |enc: u8| {
            let mut h = b"HYLL".to_vec();
            h.push(enc);
            h.extend_from_slice(&[0; 10]);
            h.push(if inv { 0x80 } else { 0 });
            h
        };
        let cat = |mut a: Vec<u8>, b: &[u8]| {
            a.extend_from_slice(b);
            a
        };
        match id {
            0 => cat(hdr(1), b"\x7f"),
            1 => cat(hdr(1), b"\x7f\xff\x80"),
            2 => hdr(1),
            3 => cat(hdr(0), &[0; 10]),
            4 => cat(hdr(2), b"\x7f\xff"),
            5 => b"hello".to_vec(),
            6 => b"HYLL".to_vec(),
            7 => cat(hdr(1), &[0x3f; 256]),
            8 => cat(hdr(1), b"\x7f\xfe"),
            9 => cat(cat(hdr(1), &[0x3f; 255]), b"\x3e\xfc"),
            10 => cat(hdr(0), &[0xff; 12288]),
            11 => cat(cat(hdr(0), &[0; 12287]), b"\xc0"),
            12 => cat(hdr(1), &[0xfc; 16384]),
            13 => cat(cat(hdr(1), &[0x3f; 255]), b"\x3f\x80"),
            _ => unreachable!(),
        }
    }

    #[test]
    fn golden_corrupted_values() {
        let els: [&[u8]; 3] = [b"a", b"b", b"c"];
        for &(id, inv, c1, add, len, h, c2) in CORRUPT {
            let ctx = format!("case {id} inv {inv}");
            let mut v = corrupt_value(id, inv);
            assert_eq!(pfcount(&mut v).map(|c| c as i64), c1, "{ctx}");
            let mut slot = Some(corrupt_value(id, inv));
            assert_eq!(pfadd(&mut slot, &els, 3000).map(|c| c as i64), add, "{ctx}");
            let mut after = slot.unwrap();
            assert_eq!((after.len(), fnv(&after)), (len, h), "{ctx}");
            assert_eq!(pfcount(&mut after).map(|c| c as i64), c2, "{ctx}");
            let valid = !matches!(c1, Err(HllError::WrongType));
            assert_eq!(is_valid_hll(&corrupt_value(id, inv)), valid, "{ctx}");
        }
    }

    #[test]
    fn error_texts() {
        assert_eq!(HllError::WrongType.to_string(), "WRONGTYPE Key is not a valid HyperLogLog string value.");
        assert_eq!(HllError::InvalidObj.to_string(), "INVALIDOBJ Corrupted HLL object detected");
        let bad = b"hello".to_vec();
        assert_eq!(pfcount_many(&[&bad]), Err(HllError::WrongType));
        assert_eq!(pfmerge(Some(&bad), &[], 3000), Err(HllError::WrongType));
    }

    #[test]
    fn promotion_on_large_value() {
        let mut v = new_hll();
        assert_eq!(sparse_set(&mut v, 100, 33, 3000), Ok(true));
        assert_eq!(v.len(), HLL_DENSE_SIZE);
        assert_eq!(registers(&v).unwrap()[100], 33);
        assert_eq!(encoding_name(&v), Ok("dense"));
    }

    #[test]
    fn dense_and_sparse_agree() {
        let sparse = build("x", 0, 500, 100_000);
        assert_eq!(sparse[4], HLL_SPARSE);
        let mut dense = sparse.clone();
        assert_eq!(to_dense(&mut dense), Ok(true));
        assert_eq!(registers(&sparse), registers(&dense));
        let (mut a, mut b) = (sparse.clone(), dense.clone());
        assert_eq!(pfcount(&mut a), pfcount(&mut b));
        assert_eq!(pfcount_many(&[&sparse]), pfcount(&mut a));
    }

    proptest::proptest! {
        #[test]
        fn sparse_matches_dense_registers(els in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..12), 0..300)) {
            let refs: Vec<&[u8]> = els.iter().map(|e| e.as_slice()).collect();
            let mut s = None;
            pfadd(&mut s, &refs, 1_000_000).unwrap();
            let s = s.unwrap();
            let mut expected = vec![0u8; HLL_REGISTERS];
            for e in &refs {
                let (i, c) = hll_pat_len(e);
                expected[i] = expected[i].max(c);
            }
            proptest::prop_assert_eq!(registers(&s).unwrap(), expected);
        }
    }
}
