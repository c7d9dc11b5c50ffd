//! RESP request parsing (multibulk and inline, as Redis's `processMultibulkBuffer` /
//! `processInlineBuffer` do it) and reply encoding for RESP2 and RESP3.
//!
//! The parser never copies multibulk arguments: a parsed request is a list of spans into the
//! connection's read buffer. Inline requests (which need unquoting) are unescaped into a scratch
//! buffer owned by the parser. Errors carry Redis's exact reply text; after one the connection
//! must send the error and close, as Redis does.

use std::ops::{Index, Range};

/// Redis's PROTO_INLINE_MAX_SIZE: longest inline request / count line without a newline.
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;

/// The arguments of one request: spans into a buffer.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    buf: &'a [u8],
    spans: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    pub fn new(buf: &'a [u8], spans: &'a [Range<usize>]) -> Self {
        Args { buf, spans }
    }
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        self.spans.get(i).map(|r| &self.buf[r.clone()])
    }
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + DoubleEndedIterator + '_ {
        self.spans.iter().map(|r| &self.buf[r.clone()])
    }
    /// Arguments from index `start` on.
    pub fn from(&self, start: usize) -> Args<'a> {
        Args { buf: self.buf, spans: &self.spans[start.min(self.spans.len())..] }
    }
    pub fn to_owned(&self) -> OwnedArgs {
        let mut o = OwnedArgs::default();
        for a in self.iter() {
            o.push(a);
        }
        o
    }
}

impl<'a> Index<usize> for Args<'a> {
    type Output = [u8];
    fn index(&self, i: usize) -> &[u8] {
        &self.buf[self.spans[i].clone()]
    }
}

/// An owned request (queued in MULTI, built for propagation, ...).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct OwnedArgs {
    buf: Vec<u8>,
    spans: Vec<Range<usize>>,
}

impl OwnedArgs {
    pub fn from_slices<T: AsRef<[u8]>>(parts: &[T]) -> Self {
        let mut o = OwnedArgs::default();
        for p in parts {
            o.push(p.as_ref());
        }
        o
    }
    pub fn push(&mut self, a: &[u8]) {
        let s = self.buf.len();
        self.buf.extend_from_slice(a);
        self.spans.push(s..self.buf.len());
    }
    pub fn args(&self) -> Args<'_> {
        Args { buf: &self.buf, spans: &self.spans }
    }
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
    /// Replace argument `i` with `a` (rebuilds; used for effect rewriting).
    pub fn set(&mut self, i: usize, a: &[u8]) {
        let mut o = OwnedArgs::default();
        for (j, x) in self.args().iter().enumerate() {
            o.push(if j == i { a } else { x });
        }
        *self = o;
    }
    /// Encode as a RESP multibulk (the form AOF and replication use).
    pub fn encode_resp(&self, out: &mut Vec<u8>) {
        out.push(b'*');
        push_int(out, self.spans.len() as i64);
        out.extend_from_slice(b"\r\n");
        for a in self.args().iter() {
            out.push(b'$');
            push_int(out, a.len() as i64);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A protocol error: the reply text (without "-" and CRLF). The connection closes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// Limits the parser enforces (Redis config names).
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// proto-max-bulk-len
    pub proto_max_bulk_len: i64,
    /// True when the client still has to AUTH (Redis then caps lengths, CVE-2021-32675).
    pub auth_required: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits { proto_max_bulk_len: 512 * 1024 * 1024, auth_required: false }
    }
}

/// Outcome of one parse step.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete request of `consumed` bytes; its arguments are in `RespParser::args`.
    /// An empty request (`*0`, blank inline line) has no arguments and is skipped by callers.
    Request { consumed: usize },
    /// More bytes are needed. `hint` is how many more bytes at least (for big bulks).
    Incomplete { hint: usize },
}

/// Stateful RESP request parser. Keeps progress within a partial multibulk so that a huge
/// request arriving in many reads is scanned once.
#[derive(Default)]
pub struct RespParser {
    spans: Vec<Range<usize>>,
    scratch: Vec<u8>,
    inline: bool,
    // progress within an incomplete multibulk: total args, next position, pending bulk length
    mb_total: usize,
    pos: usize,
    bulk_len: Option<usize>,
}

fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\r', &buf[from..]).map(|i| i + from)
}

/// Redis's string2ll: optional '-', digits, no leading zeros, no '+', no spaces.
pub fn parse_i64_strict(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s.len() == 1 && s[0] == b'0' {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        if v > i64::MAX as u64 {
            return None;
        }
        Some(v as i64)
    }
}

impl RespParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Between requests: free the argument table and inline scratch grown by one huge request
    /// (an SADD of 100k members keeps 1.6 MB of spans otherwise, per connection, for good).
    pub fn release_large(&mut self) {
        if self.spans.capacity() > 1024 && self.mb_total == 0 {
            self.spans = Vec::new();
        }
        if self.scratch.capacity() > 64 * 1024 && self.mb_total == 0 {
            self.scratch = Vec::new();
        }
    }

    /// The arguments of the last complete request, over `buf` (the same buffer given to parse).
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> Args<'a> {
        if self.inline {
            Args { buf: &self.scratch, spans: &self.spans }
        } else {
            Args { buf, spans: &self.spans }
        }
    }

    /// Parse one request from the start of `buf`. Offsets in the returned spans are relative to
    /// `buf`. If `Incomplete` is returned the caller must pass the same bytes (plus more) again.
    pub fn parse(&mut self, buf: &[u8], limits: &ParseLimits) -> Result<Parsed, ProtocolError> {
        if buf.is_empty() {
            return Ok(Parsed::Incomplete { hint: 0 });
        }
        if buf[0] == b'*' {
            self.inline = false;
            self.parse_multibulk(buf, limits)
        } else {
            self.inline = true;
            self.parse_inline(buf)
        }
    }

    fn reset_progress(&mut self) {
        self.mb_total = 0;
        self.pos = 0;
        self.bulk_len = None;
    }

    fn parse_multibulk(&mut self, buf: &[u8], limits: &ParseLimits) -> Result<Parsed, ProtocolError> {
        if self.mb_total == 0 {
            self.spans.clear();
            let Some(cr) = find_cr(buf, 0) else {
                if buf.len() > PROTO_INLINE_MAX_SIZE {
                    return Err(ProtocolError("ERR Protocol error: too big mbulk count string".into()));
                }
                return Ok(Parsed::Incomplete { hint: 0 });
            };
            if cr + 1 >= buf.len() {
                return Ok(Parsed::Incomplete { hint: 0 });
            }
            let n = match parse_i64_strict(&buf[1..cr]) {
                Some(n) if n <= i32::MAX as i64 => n,
                _ => return Err(ProtocolError("ERR Protocol error: invalid multibulk length".into())),
            };
            if n > 10 && limits.auth_required {
                return Err(ProtocolError("ERR Protocol error: unauthenticated multibulk length".into()));
            }
            if n <= 0 {
                return Ok(Parsed::Request { consumed: cr + 2 });
            }
            self.mb_total = n as usize;
            self.pos = cr + 2;
            self.bulk_len = None;
            self.spans.reserve((n as usize).min(1024));
        }
        while self.spans.len() < self.mb_total {
            let len = match self.bulk_len {
                Some(l) => l,
                None => {
                    if self.pos >= buf.len() {
                        return Ok(Parsed::Incomplete { hint: 0 });
                    }
                    let Some(cr) = find_cr(buf, self.pos) else {
                        if buf.len() - self.pos > PROTO_INLINE_MAX_SIZE {
                            let e = "ERR Protocol error: too big bulk count string";
                            self.reset_progress();
                            return Err(ProtocolError(e.into()));
                        }
                        return Ok(Parsed::Incomplete { hint: 0 });
                    };
                    if cr + 1 >= buf.len() {
                        return Ok(Parsed::Incomplete { hint: 0 });
                    }
                    if buf[self.pos] != b'$' {
                        let c = buf[self.pos] as char;
                        self.reset_progress();
                        return Err(ProtocolError(format!("ERR Protocol error: expected '$', got '{}'", c)));
                    }
                    let l = match parse_i64_strict(&buf[self.pos + 1..cr]) {
                        Some(l) if l >= 0 && l <= limits.proto_max_bulk_len => l as usize,
                        _ => {
                            self.reset_progress();
                            return Err(ProtocolError("ERR Protocol error: invalid bulk length".into()));
                        }
                    };
                    if l > 16384 && limits.auth_required {
                        self.reset_progress();
                        return Err(ProtocolError("ERR Protocol error: unauthenticated bulk length".into()));
                    }
                    self.pos = cr + 2;
                    self.bulk_len = Some(l);
                    l
                }
            };
            if buf.len() < self.pos + len + 2 {
                return Ok(Parsed::Incomplete { hint: self.pos + len + 2 - buf.len() });
            }
            // Redis does not check the two bytes after a bulk: it skips them.
            self.spans.push(self.pos..self.pos + len);
            self.pos += len + 2;
            self.bulk_len = None;
        }
        let consumed = self.pos;
        self.reset_progress();
        Ok(Parsed::Request { consumed })
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Parsed, ProtocolError> {
        let Some(nl) = memchr::memchr(b'\n', buf) else {
            if buf.len() > PROTO_INLINE_MAX_SIZE {
                return Err(ProtocolError("ERR Protocol error: too big inline request".into()));
            }
            return Ok(Parsed::Incomplete { hint: 0 });
        };
        let mut end = nl;
        if end > 0 && buf[end - 1] == b'\r' {
            end -= 1;
        }
        self.spans.clear();
        self.scratch.clear();
        if !split_args(&buf[..end], &mut self.scratch, &mut self.spans) {
            return Err(ProtocolError("ERR Protocol error: unbalanced quotes in request".into()));
        }
        Ok(Parsed::Request { consumed: nl + 1 })
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c)
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Redis's sdssplitargs: split a line into arguments with "..." and '...' quoting.
/// Returns false on unbalanced quotes.
pub fn split_args(line: &[u8], out: &mut Vec<u8>, spans: &mut Vec<Range<usize>>) -> bool {
    let mut p = 0;
    let n = line.len();
    loop {
        while p < n && is_space(line[p]) {
            p += 1;
        }
        if p >= n {
            return true;
        }
        let start = out.len();
        let mut inq = false;
        let mut insq = false;
        let mut done = false;
        while !done {
            if inq {
                if p >= n {
                    return false;
                }
                if line[p] == b'\\'
                    && p + 3 < n
                    && line[p + 1] == b'x'
                    && hex_val(line[p + 2]).is_some()
                    && hex_val(line[p + 3]).is_some()
                {
                    out.push(hex_val(line[p + 2]).unwrap() * 16 + hex_val(line[p + 3]).unwrap());
                    p += 3;
                } else if line[p] == b'\\' && p + 1 < n {
                    p += 1;
                    out.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if line[p] == b'"' {
                    if p + 1 < n && !is_space(line[p + 1]) {
                        return false;
                    }
                    done = true;
                } else {
                    out.push(line[p]);
                }
            } else if insq {
                if p >= n {
                    return false;
                }
                if line[p] == b'\\' && p + 1 < n && line[p + 1] == b'\'' {
                    p += 1;
                    out.push(b'\'');
                } else if line[p] == b'\'' {
                    if p + 1 < n && !is_space(line[p + 1]) {
                        return false;
                    }
                    done = true;
                } else {
                    out.push(line[p]);
                }
            } else if p >= n {
                done = true;
            } else {
                match line[p] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => out.push(c),
                }
            }
            if p < n {
                p += 1;
            }
        }
        spans.push(start..out.len());
    }
}

pub fn push_int(out: &mut Vec<u8>, v: i64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// Redis 7.0's `%.17g` formatting of doubles (RESP2 bulk replies and RESP3 doubles).
pub fn format_double(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v.is_nan() {
        return "nan".into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // %.17g: 17 significant digits, trailing zeros removed, exponent form when exp < -4 or >= 17.
    let s = format!("{:.16e}", v);
    let (mant, exp) = s.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..17).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let a = exp.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        out.push_str(&a.to_string());
    } else if exp >= 0 {
        let e = exp as usize;
        if digits.len() <= e + 1 {
            out.push_str(digits);
            for _ in digits.len()..=e {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..=e]);
            out.push('.');
            out.push_str(&digits[e + 1..]);
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    }
    out
}

/// Protocol version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespVersion {
    Resp2,
    Resp3,
}

/// A connection's reply buffer. Commands write replies straight into it; it is flushed once
/// per pipeline batch. RESP3-only types degrade to their RESP2 forms as Redis does.
pub struct ReplyBuf {
    pub buf: Vec<u8>,
    pub resp3: bool,
    /// Number of error replies written (for INFO errorstats and failed_calls).
    pub errors: u64,
    /// The last error's prefix (e.g. "ERR", "WRONGTYPE"), for errorstats.
    pub last_error_code: Option<String>,
}

impl Default for ReplyBuf {
    fn default() -> Self {
        Self::new(false)
    }
}

impl ReplyBuf {
    pub fn new(resp3: bool) -> Self {
        ReplyBuf { buf: Vec::with_capacity(16 * 1024), resp3, errors: 0, last_error_code: None }
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    fn line(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        push_int(&mut self.buf, n);
        self.buf.extend_from_slice(b"\r\n");
    }
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }
    /// An error reply. `msg` includes the code, e.g. "ERR syntax error". Newlines are
    /// replaced with spaces as Redis does.
    pub fn error(&mut self, msg: &str) {
        self.errors += 1;
        let code = msg.split(' ').next().unwrap_or("ERR");
        self.last_error_code = Some(code.to_string());
        self.buf.push(b'-');
        for &c in msg.as_bytes() {
            self.buf.push(if c == b'\r' || c == b'\n' { b' ' } else { c });
        }
        self.buf.extend_from_slice(b"\r\n");
    }
    pub fn int(&mut self, v: i64) {
        self.line(b':', v);
    }
    pub fn bulk(&mut self, v: &[u8]) {
        self.line(b'$', v.len() as i64);
        self.buf.extend_from_slice(v);
        self.buf.extend_from_slice(b"\r\n");
    }
    pub fn bulk_str(&mut self, v: &str) {
        self.bulk(v.as_bytes());
    }
    pub fn bulk_int(&mut self, v: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(v).as_bytes());
    }
    /// A null bulk (RESP2 `$-1`, RESP3 `_`).
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }
    /// A null array (RESP2 `*-1`, RESP3 `_`).
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }
    pub fn array(&mut self, n: usize) {
        self.line(b'*', n as i64);
    }
    /// A map of `n` pairs (RESP2: array of 2n).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.line(b'%', n as i64);
        } else {
            self.line(b'*', 2 * n as i64);
        }
    }
    pub fn set(&mut self, n: usize) {
        if self.resp3 {
            self.line(b'~', n as i64);
        } else {
            self.line(b'*', n as i64);
        }
    }
    pub fn push(&mut self, n: usize) {
        if self.resp3 {
            self.line(b'>', n as i64);
        } else {
            self.line(b'*', n as i64);
        }
    }
    /// A double (RESP2: bulk string in %.17g form).
    pub fn double(&mut self, v: f64) {
        let s = format_double(v);
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }
    pub fn bool(&mut self, v: bool) {
        if self.resp3 {
            self.buf.extend_from_slice(if v { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(v as i64);
        }
    }
    /// A verbatim string (RESP3 `=`; RESP2 bulk).
    pub fn verbatim(&mut self, v: &[u8]) {
        if self.resp3 {
            self.line(b'=', v.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(v);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(v);
        }
    }
    pub fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub fn empty_array(&mut self) {
        self.buf.extend_from_slice(b"*0\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = RespParser::new();
        let mut pos = 0;
        let mut out = vec![];
        loop {
            match p.parse(&input[pos..], &ParseLimits::default())? {
                Parsed::Request { consumed } => {
                    let a = p.args(&input[pos..]);
                    out.push(a.iter().map(|x| x.to_vec()).collect());
                    pos += consumed;
                }
                Parsed::Incomplete { .. } => return Ok(out),
            }
        }
    }

    #[test]
    fn multibulk() {
        let r = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(r, vec![vec![b"GET".to_vec(), b"k".to_vec()], vec![b"PING".to_vec()]]);
    }

    #[test]
    fn inline_quotes() {
        let r = parse_all(b"set a \"b c\\n\" 'd\\'e'\r\n").unwrap();
        assert_eq!(r[0], vec![b"set".to_vec(), b"a".to_vec(), b"b c\n".to_vec(), b"d'e".to_vec()]);
        assert_eq!(parse_all(b"set \"a\r\n").unwrap_err().0, "ERR Protocol error: unbalanced quotes in request");
        assert_eq!(parse_all(b"\"a\"b\n").unwrap_err().0, "ERR Protocol error: unbalanced quotes in request");
    }

    #[test]
    fn errors() {
        assert_eq!(parse_all(b"*x\r\n").unwrap_err().0, "ERR Protocol error: invalid multibulk length");
        assert_eq!(parse_all(b"*1\r\n+x\r\n").unwrap_err().0, "ERR Protocol error: expected '$', got '+'");
        assert_eq!(parse_all(b"*1\r\n$-2\r\n").unwrap_err().0, "ERR Protocol error: invalid bulk length");
    }

    #[test]
    fn incremental() {
        let full = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut p = RespParser::new();
        for i in 1..full.len() {
            assert!(matches!(p.parse(&full[..i], &ParseLimits::default()).unwrap(), Parsed::Incomplete { .. }));
        }
        assert_eq!(p.parse(full, &ParseLimits::default()).unwrap(), Parsed::Request { consumed: full.len() });
        assert_eq!(p.args(full).get(2), Some(&b"hello"[..]));
    }

    #[test]
    fn doubles() {
        assert_eq!(format_double(1.1), "1.1000000000000001");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(1e20), "1e+20");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(1e-5), "1.0000000000000001e-05");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(123456789012345678.0), "1.2345678901234568e+17");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_all(&data);
        }

        /// Feeding a stream in pieces (as TCP may deliver it) parses to the same requests and
        /// the same error as feeding it whole: the parser keeps no state that a partial frame
        /// could corrupt.
        #[test]
        fn split_invariance(
            frames in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12), 1..4), 1..5),
            garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16),
            cut in 0usize..400,
        ) {
            let mut input = Vec::new();
            for f in &frames {
                OwnedArgs::from_slices(f).encode_resp(&mut input);
            }
            input.extend_from_slice(&garbage);
            let whole = parse_all(&input);
            let cut = cut % (input.len() + 1);
            // Feed the prefix, then the whole buffer from where the first pass stopped.
            let mut p = RespParser::new();
            let mut pos = 0;
            let mut got: Vec<Vec<Vec<u8>>> = vec![];
            let mut err = None;
            for end in [cut, input.len()] {
                loop {
                    match p.parse(&input[pos..end.max(pos)], &ParseLimits::default()) {
                        Ok(Parsed::Request { consumed }) => {
                            got.push(p.args(&input[pos..]).iter().map(|x| x.to_vec()).collect());
                            pos += consumed;
                        }
                        Ok(Parsed::Incomplete { .. }) => break,
                        Err(e) => {
                            err = Some(e.0);
                            break;
                        }
                    }
                }
                if err.is_some() {
                    break;
                }
            }
            match whole {
                Ok(w) => {
                    proptest::prop_assert!(err.is_none());
                    proptest::prop_assert_eq!(w, got.clone());
                }
                Err(e) => proptest::prop_assert_eq!(Some(e.0), err),
            }
            // The well-formed frames always come out first, intact.
            proptest::prop_assert!(got.len() >= frames.len());
            for (a, b) in got.iter().zip(frames.iter()) {
                proptest::prop_assert_eq!(a, b);
            }
        }

        #[test]
        fn roundtrip(args in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20), 1..6)) {
            let o = OwnedArgs::from_slices(&args);
            let mut enc = vec![];
            o.encode_resp(&mut enc);
            let r = parse_all(&enc).unwrap();
            proptest::prop_assert_eq!(r, vec![args]);
        }
    }
}
