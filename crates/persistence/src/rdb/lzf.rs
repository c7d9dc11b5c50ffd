//! LZF compression, a faithful port of Redis's bundled liblzf (`lzf_c.c`
//! with HLOG=16, VERY_FAST=1, ULTRA_FAST=0) so that compressed strings are
//! byte-identical to what redis-server writes, and `lzf_d.c` decompression.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

#[inline]
fn idx(h: u32) -> usize {
    ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// The hash table of positions + 1 (0 = empty), like liblzf's zeroed pointer table. Zeroing
/// 256 KB for every compressed string cost more than compressing a 1 KB value, so one table is
/// kept per thread and each call uses a new generation: a slot written by an earlier call
/// reads as empty, exactly as after zeroing.
struct Htab {
    slots: Vec<u64>,
    gen: u32,
}

impl Htab {
    /// Start a call: a new generation (every slot empty).
    fn begin(&mut self) {
        if self.slots.is_empty() || self.gen == u32::MAX {
            self.slots = vec![0; HSIZE];
            self.gen = 0;
        }
        self.gen += 1;
    }
    #[inline]
    fn get(&self, i: usize) -> u32 {
        let v = self.slots[i];
        if (v >> 32) as u32 == self.gen {
            v as u32
        } else {
            0
        }
    }
    #[inline]
    fn set(&mut self, i: usize, pos_plus_one: u32) {
        self.slots[i] = ((self.gen as u64) << 32) | pos_plus_one as u64;
    }
}

thread_local! {
    static HTAB: std::cell::RefCell<Htab> = const { std::cell::RefCell::new(Htab { slots: Vec::new(), gen: 0 }) };
}

/// Compress `input` into at most `out_len` bytes. Returns `None` when the
/// output would not fit (like `lzf_compress` returning 0).
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    if input.is_empty() || out_len == 0 {
        return None;
    }
    HTAB.with(|h| {
        let mut h = h.borrow_mut();
        h.begin();
        compress_with(input, out_len, &mut h)
    })
}

fn compress_with(input: &[u8], out_len: usize, htab: &mut Htab) -> Option<Vec<u8>> {
    let in_len = input.len();
    let mut out = vec![0u8; out_len];
    let inp = input;
    let byte = |i: usize| -> u32 { inp.get(i).copied().unwrap_or(0) as u32 };

    let mut ip = 0usize;
    let mut op = 0usize;
    let mut lit: usize = 0;
    op += 1; // start run

    let mut hval: u32 = (byte(ip) << 8) | byte(ip + 1);
    while in_len >= 3 && ip < in_len - 2 {
        hval = (hval << 8) | byte(ip + 2);
        let slot = idx(hval);
        let r = htab.get(slot);
        htab.set(slot, ip as u32 + 1);

        let matched = if r != 0 {
            let rf = (r - 1) as usize;
            rf < ip
                && (ip - rf - 1) < MAX_OFF
                && rf > 0
                && inp[rf + 2] == inp[ip + 2]
                && inp[rf] == inp[ip]
                && inp[rf + 1] == inp[ip + 1]
        } else {
            false
        };

        if matched {
            let rf = (r - 1) as usize;
            let off = ip - rf - 1;
            let mut len: usize = 2;
            let mut maxlen = in_len - ip - len;
            if maxlen > MAX_REF {
                maxlen = MAX_REF;
            }
            // Output space checks (conservative then exact).
            if op + 3 + 1 >= out_len && op - usize::from(lit == 0) + 3 + 1 >= out_len {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
            op -= usize::from(lit == 0); // undo run if length is zero

            // Match extension. The C code unrolls 16 steps without bound
            // checks when maxlen > 16; the observable result is the same as
            // this loop, since it compares at most maxlen+? bytes inside the
            // input: the unrolled part only runs when maxlen > 16.
            if maxlen > 16 {
                let mut broke = false;
                for _ in 0..16 {
                    len += 1;
                    if inp[rf + len] != inp[ip + len] {
                        broke = true;
                        break;
                    }
                }
                if !broke {
                    loop {
                        len += 1;
                        if !(len < maxlen && inp[rf + len] == inp[ip + len]) {
                            break;
                        }
                    }
                }
            } else {
                loop {
                    len += 1;
                    if !(len < maxlen && inp[rf + len] == inp[ip + len]) {
                        break;
                    }
                }
            }

            len -= 2; // len is now #octets - 1
            ip += 1;

            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                op += 1;
                out[op] = (len - 7) as u8;
                op += 1;
            }
            out[op] = off as u8;
            op += 1;

            lit = 0;
            op += 1; // start run

            ip += len + 1;

            if ip >= in_len - 2 {
                break;
            }

            ip -= 2;
            hval = (byte(ip) << 8) | byte(ip + 1);
            hval = (hval << 8) | byte(ip + 2);
            htab.set(idx(hval), ip as u32 + 1);
            ip += 1;
            hval = (hval << 8) | byte(ip + 2);
            htab.set(idx(hval), ip as u32 + 1);
            ip += 1;
        } else {
            if op >= out_len {
                return None;
            }
            lit += 1;
            out[op] = inp[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
    }

    if op + 3 > out_len {
        return None;
    }

    while ip < in_len {
        lit += 1;
        out[op] = inp[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }

    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// Decompress LZF data whose decompressed size is exactly `out_len`.
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len.min(1 << 24));
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if out.len() + n > out_len || ip + n > input.len() {
                return None;
            }
            out.extend_from_slice(&input[ip..ip + n]);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(ip)? as usize;
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
            ip += 1;
            len += 2;
            if out.len() + len > out_len || back > out.len() {
                return None;
            }
            // out[p] = out[p - back] for each new byte: copy from `start` in chunks that
            // double (a copy of a run is itself the run continued), not byte by byte.
            let start = out.len() - back;
            let mut left = len;
            while left > 0 {
                let n = left.min(out.len() - start);
                out.extend_from_within(start..start + n);
                left -= n;
            }
        }
    }
    if out.len() != out_len {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Back-references shorter than their length (runs, short periods) decompress exactly.
    #[test]
    fn overlapping_back_references_round_trip() {
        let mut inputs: Vec<Vec<u8>> = vec![vec![b'a'; 100_000], b"ab".repeat(50_000), b"xyz12".repeat(20_001)];
        inputs.push((0..70_000u32).map(|i| if i % 1000 < 900 { b'q' } else { (i % 251) as u8 }).collect());
        for x in &inputs {
            let c = compress(x, x.len()).expect("compressible");
            assert!(c.len() < x.len() / 10);
            assert_eq!(decompress(&c, x.len()).as_deref(), Some(x.as_slice()));
            // A wrong expected length is refused, not padded or cut.
            assert_eq!(decompress(&c, x.len() - 1), None);
            assert_eq!(decompress(&c, x.len() + 1), None);
        }
    }

    #[test]
    fn reused_table_compresses_like_a_zeroed_one() {
        let inputs: Vec<Vec<u8>> = (0..50u32)
            .map(|i| (0..(200 + i * 37)).map(|j| b"abcabcxyz-hello"[((j * (i + 3)) % 15) as usize]).collect())
            .collect();
        let fresh: Vec<_> = inputs
            .iter()
            .map(|x| {
                let x = x.clone();
                std::thread::spawn(move || compress(&x, x.len())).join().unwrap()
            })
            .collect();
        // The same inputs in one thread, each after the others filled the table.
        for _ in 0..2 {
            for (x, f) in inputs.iter().zip(&fresh) {
                assert_eq!(&compress(x, x.len()), f);
            }
        }
        assert!(fresh.iter().all(|f| f.is_some()));
    }

    #[test]
    fn roundtrip_simple() {
        let data = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa hello hello hello";
        let c = compress(data, data.len() - 4).unwrap();
        assert!(c.len() < data.len());
        assert_eq!(decompress(&c, data.len()).unwrap(), data.to_vec());
    }

    #[test]
    fn incompressible_returns_none() {
        let data: Vec<u8> = (0..64u32).map(|i| (i * 37 + 11) as u8).collect();
        assert!(compress(&data, data.len() - 4).is_none());
    }

    #[test]
    fn roundtrip_many() {
        let mut seed = 12345u64;
        for n in 1..400usize {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                v.push(b"abcab"[(seed >> 60) as usize % 5]);
            }
            if let Some(c) = compress(&v, n + 64) {
                assert_eq!(decompress(&c, n).unwrap(), v, "n={n}");
            }
        }
    }
}
