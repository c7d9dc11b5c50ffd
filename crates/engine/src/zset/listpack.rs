//! The compact ("listpack") encoding of a small sorted set: a single packed
//! byte buffer of entries kept in (score, member) order.
//!
//! Entry layout (all little endian):
//!
//! ```text
//! [len hdr][score: f64, 8 bytes][member bytes][len ftr]
//! ```
//!
//! `len hdr` is one byte if the member length is < 255, otherwise `0xFF`
//! followed by a `u32`. `len ftr` mirrors it backwards (one byte, or a `u32`
//! followed by `0xFF`) so the buffer can be walked in both directions like a
//! Redis listpack. A typical 10-byte member costs 20 bytes.
//!
//! Like Redis's listpack, lookups are linear scans; the encoding is only used
//! for small sets.

use super::RangePred;

#[derive(Clone, Default)]
pub(crate) struct Listpack {
    buf: Vec<u8>,
    len: usize,
}

#[inline(always)]
fn hdr_size(len: usize) -> usize {
    if len < 255 {
        1
    } else {
        5
    }
}

#[inline(always)]
pub(crate) fn entry_size(len: usize) -> usize {
    2 * hdr_size(len) + 8 + len
}

/// Decoded entry: score, member byte range and the offset of the next entry.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub score: f64,
    pub mstart: usize,
    pub mend: usize,
    pub next: usize,
}

#[inline(always)]
pub(crate) fn decode(buf: &[u8], pos: usize) -> Entry {
    let b = buf[pos];
    let (len, h) = if b != 0xFF {
        (b as usize, 1)
    } else {
        (u32::from_le_bytes(buf[pos + 1..pos + 5].try_into().unwrap()) as usize, 5)
    };
    let sp = pos + h;
    let score = f64::from_le_bytes(buf[sp..sp + 8].try_into().unwrap());
    let mstart = sp + 8;
    let mend = mstart + len;
    Entry { score, mstart, mend, next: mend + h }
}

/// Start offset of the entry that ends at `end`.
#[inline(always)]
pub(crate) fn prev_start(buf: &[u8], end: usize) -> usize {
    let b = buf[end - 1];
    let len =
        if b != 0xFF { b as usize } else { u32::from_le_bytes(buf[end - 5..end - 1].try_into().unwrap()) as usize };
    end - entry_size(len)
}

fn write_entry(dst: &mut [u8], member: &[u8], score: f64) {
    let len = member.len();
    let mut p = 0;
    if len < 255 {
        dst[0] = len as u8;
        p += 1;
    } else {
        dst[0] = 0xFF;
        dst[1..5].copy_from_slice(&(len as u32).to_le_bytes());
        p += 5;
    }
    dst[p..p + 8].copy_from_slice(&score.to_le_bytes());
    p += 8;
    dst[p..p + len].copy_from_slice(member);
    p += len;
    if len < 255 {
        dst[p] = len as u8;
    } else {
        dst[p..p + 4].copy_from_slice(&(len as u32).to_le_bytes());
        dst[p + 4] = 0xFF;
    }
}

impl Listpack {
    pub(crate) fn with_capacity(bytes: usize) -> Listpack {
        Listpack { buf: Vec::with_capacity(bytes), len: 0 }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub(crate) fn buf(&self) -> &[u8] {
        &self.buf
    }
    #[inline]
    pub(crate) fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Find `member`: (entry offset, score).
    #[inline]
    pub(crate) fn find(&self, member: &[u8]) -> Option<(usize, f64)> {
        let buf = &self.buf[..];
        let mut pos = 0;
        while pos < buf.len() {
            let e = decode(buf, pos);
            if e.mend - e.mstart == member.len() && &buf[e.mstart..e.mend] == member {
                return Some((pos, e.score));
            }
            pos = e.next;
        }
        None
    }

    /// 0-based rank of `member`.
    pub(crate) fn rank(&self, member: &[u8]) -> Option<usize> {
        let buf = &self.buf[..];
        let mut pos = 0;
        let mut r = 0;
        while pos < buf.len() {
            let e = decode(buf, pos);
            if &buf[e.mstart..e.mend] == member {
                return Some(r);
            }
            r += 1;
            pos = e.next;
        }
        None
    }

    /// Byte offset of the entry with 0-based rank `rank` (== buf len if
    /// `rank == len`).
    pub(crate) fn offset_of_rank(&self, rank: usize) -> usize {
        if rank >= self.len {
            return self.buf.len();
        }
        let buf = &self.buf[..];
        if rank > self.len / 2 {
            // Walk backwards from the end.
            let mut end = buf.len();
            for _ in 0..(self.len - rank) {
                end = prev_start(buf, end);
            }
            return end;
        }
        let mut pos = 0;
        for _ in 0..rank {
            pos = decode(buf, pos).next;
        }
        pos
    }

    /// Insert a member that is known to be absent (zzlInsert).
    pub(crate) fn insert(&mut self, member: &[u8], score: f64) {
        // Listpack scores go through d2string/strtod in Redis, which turns
        // -0 into integer 0.
        let score = if score == 0.0 { 0.0 } else { score };
        let buf = &self.buf[..];
        let mut pos = 0;
        while pos < buf.len() {
            let e = decode(buf, pos);
            if e.score > score || (e.score == score && &buf[e.mstart..e.mend] > member) {
                break;
            }
            pos = e.next;
        }
        let n = entry_size(member.len());
        let old = self.buf.len();
        self.buf.resize(old + n, 0);
        self.buf.copy_within(pos..old, pos + n);
        write_entry(&mut self.buf[pos..pos + n], member, score);
        self.len += 1;
    }

    /// Delete the entry at `pos`.
    pub(crate) fn delete_at(&mut self, pos: usize) {
        let next = decode(&self.buf, pos).next;
        self.buf.drain(pos..next);
        self.len -= 1;
    }

    /// Delete `count` consecutive entries starting at byte offset `pos`.
    pub(crate) fn delete_run(&mut self, pos: usize, count: usize) {
        let mut end = pos;
        for _ in 0..count {
            end = decode(&self.buf, end).next;
        }
        self.buf.drain(pos..end);
        self.len -= count;
    }

    /// Change the score of the entry at `pos` (delete + reinsert).
    pub(crate) fn update_score(&mut self, pos: usize, score: f64) {
        let e = decode(&self.buf, pos);
        let score = if score == 0.0 { 0.0 } else { score };
        // Fast path: the order is preserved, rewrite in place.
        let prev_ok = pos == 0 || {
            let p = decode(&self.buf, prev_start(&self.buf, pos));
            p.score < score || (p.score == score && self.buf[p.mstart..p.mend] < self.buf[e.mstart..e.mend])
        };
        let next_ok = e.next == self.buf.len() || {
            let n = decode(&self.buf, e.next);
            n.score > score || (n.score == score && self.buf[n.mstart..n.mend] > self.buf[e.mstart..e.mend])
        };
        if prev_ok && next_ok {
            let sp = e.mstart - 8;
            self.buf[sp..sp + 8].copy_from_slice(&score.to_le_bytes());
            return;
        }
        // Move the member bytes out of the way: shift the buffer so the
        // entry is removed, then reinsert. The member is copied into a small
        // stack buffer when possible to avoid a heap allocation.
        let len = e.mend - e.mstart;
        let mut stack = [0u8; 64];
        let heap: Vec<u8>;
        let member: &[u8] = if len <= stack.len() {
            stack[..len].copy_from_slice(&self.buf[e.mstart..e.mend]);
            &stack[..len]
        } else {
            heap = self.buf[e.mstart..e.mend].to_vec();
            &heap
        };
        self.buf.drain(pos..e.next);
        self.len -= 1;
        self.insert(member, score);
    }

    /// Offset and 0-based rank of the first entry in range.
    pub(crate) fn first_in_range<R: RangePred>(&self, r: &R) -> Option<(usize, usize)> {
        if r.is_empty() {
            return None;
        }
        let buf = &self.buf[..];
        let mut pos = 0;
        let mut rank = 0;
        while pos < buf.len() {
            let e = decode(buf, pos);
            let m = &buf[e.mstart..e.mend];
            if r.gte_min(e.score, m) {
                return if r.lte_max(e.score, m) { Some((pos, rank)) } else { None };
            }
            rank += 1;
            pos = e.next;
        }
        None
    }

    /// Offset and 0-based rank of the last entry in range.
    pub(crate) fn last_in_range<R: RangePred>(&self, r: &R) -> Option<(usize, usize)> {
        if r.is_empty() {
            return None;
        }
        let buf = &self.buf[..];
        let mut end = buf.len();
        let mut rank = self.len;
        while end > 0 {
            let pos = prev_start(buf, end);
            rank -= 1;
            let e = decode(buf, pos);
            let m = &buf[e.mstart..e.mend];
            if r.lte_max(e.score, m) {
                return if r.gte_min(e.score, m) { Some((pos, rank)) } else { None };
            }
            end = pos;
        }
        None
    }

    /// Delete all entries in range; returns the number removed.
    pub(crate) fn delete_range<R: RangePred>(&mut self, r: &R) -> usize {
        let Some((pos, _)) = self.first_in_range(r) else {
            return 0;
        };
        let buf = &self.buf[..];
        let mut end = pos;
        let mut n = 0;
        while end < buf.len() {
            let e = decode(buf, end);
            if !r.lte_max(e.score, &buf[e.mstart..e.mend]) {
                break;
            }
            n += 1;
            end = e.next;
        }
        self.buf.drain(pos..end);
        self.len -= n;
        n
    }

    /// Remove the entries with 0-based rank `start..=end` (clamped).
    pub(crate) fn delete_rank_range(&mut self, start: usize, end: usize) -> usize {
        if start > end || start >= self.len {
            return 0;
        }
        let end = end.min(self.len - 1);
        let pos = self.offset_of_rank(start);
        let n = end - start + 1;
        self.delete_run(pos, n);
        n
    }

    pub(crate) fn mem_usage(&self) -> usize {
        std::mem::size_of::<Listpack>() + self.buf.capacity()
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }

    /// Append an entry that sorts after every existing entry.
    pub(crate) fn push_back(&mut self, member: &[u8], score: f64) {
        let score = if score == 0.0 { 0.0 } else { score };
        let n = entry_size(member.len());
        let old = self.buf.len();
        self.buf.resize(old + n, 0);
        write_entry(&mut self.buf[old..], member, score);
        self.len += 1;
    }
}
