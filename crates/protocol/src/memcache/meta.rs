//! memcached meta commands (`mg`, `ms`, `md`, `ma`, `mn`, `me`) as of 1.6.18:
//! flag parsing (`_meta_flag_preparse`) and reply encoding.
//!
//! Meta commands arrive in the text stream, so they are parsed by
//! [`super::text::parse_text`] and returned as `TextRequest::Meta`.

use std::borrow::Cow;

use super::base64;
use super::num::{safe_strtol, safe_strtoul, safe_strtoull};
use super::text::{item_too_large, TextError, TextErrorKind, TextParse, TextRequest};
use super::Limits;

/// `MFLAG_MAX_OPT_LENGTH`: at most 20 C tokens (command, key, flags, terminal).
const MFLAG_MAX_OPT_LENGTH: usize = 20;
/// `MFLAG_MAX_OPAQUE_LENGTH`: the whole `O...` token, including the `O`.
const MFLAG_MAX_OPAQUE_LENGTH: usize = 32;

/// Meta protocol error replies (all sent even in quiet mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaError {
    BadFormat,
    /// mg only: "options flags are too long".
    OptionsTooLongMg,
    /// ms/md/ma: "options flags too long".
    OptionsTooLong,
    DuplicateFlag,
    InvalidFlag,
    DecodingKey,
    BadToken,
    MTokenLength,
    InvalidInitial,
    InvalidDelta,
    /// md/ma report every preparse failure with this text.
    InvalidOrDuplicate,
    OpaqueTooLong,
    InvalidMsMode,
    InvalidMaMode,
}

impl MetaError {
    pub fn message(self) -> &'static str {
        match self {
            MetaError::BadFormat => "CLIENT_ERROR bad command line format",
            MetaError::OptionsTooLongMg => "CLIENT_ERROR options flags are too long",
            MetaError::OptionsTooLong => "CLIENT_ERROR options flags too long",
            MetaError::DuplicateFlag => "CLIENT_ERROR duplicate flag",
            MetaError::InvalidFlag => "CLIENT_ERROR invalid flag",
            MetaError::DecodingKey => "CLIENT_ERROR error decoding key",
            MetaError::BadToken => "CLIENT_ERROR bad token in command line format",
            MetaError::MTokenLength => "CLIENT_ERROR incorrect length for M token",
            MetaError::InvalidInitial => "CLIENT_ERROR invalid numeric initial value",
            MetaError::InvalidDelta => "CLIENT_ERROR invalid numeric delta value",
            MetaError::InvalidOrDuplicate => "CLIENT_ERROR invalid or duplicate flag",
            MetaError::OpaqueTooLong => "CLIENT_ERROR opaque token too long",
            MetaError::InvalidMsMode => "CLIENT_ERROR invalid mode for ms M token",
            MetaError::InvalidMaMode => "CLIENT_ERROR invalid mode for ma M token",
        }
    }
}

/// Typed view of the flags. Every meta command accepts the full flag set of
/// memcached's common preparse (e.g. `mg k D5` is valid and D is ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaFlags<'a> {
    /// `b`: key was base64 (already decoded into `MetaArgs::key`).
    pub base64_key: bool,
    /// `c`: return CAS.
    pub return_cas: bool,
    /// `f`: return client flags.
    pub return_flags: bool,
    /// `h`: return whether the item was fetched before.
    pub return_hit: bool,
    /// `k`: return key.
    pub return_key: bool,
    /// `l`: return seconds since last access.
    pub return_last_access: bool,
    /// `O<opaque>` (bytes after the `O`, at most 31).
    pub opaque: Option<&'a [u8]>,
    /// `q`: quiet (noreply semantics for the nominal reply).
    pub quiet: bool,
    /// `s`: return item size.
    pub return_size: bool,
    /// `t`: return TTL remaining (-1 for none).
    pub return_ttl: bool,
    /// `u`: don't bump the item in the LRU.
    pub no_update: bool,
    /// `v`: return value.
    pub return_value: bool,
    /// `N<ttl>`: vivify on miss with this TTL.
    pub vivify_ttl: Option<i32>,
    /// `R<ttl>`: win for recache if TTL is less than this.
    pub recache_ttl: Option<i32>,
    /// `T<ttl>`: update TTL (mg/ma/md I) or set TTL (ms).
    pub ttl: Option<i32>,
    /// `F<flags>`: client flags for ms (default 0).
    pub client_flags: Option<u32>,
    /// `C<cas>`: compare CAS.
    pub compare_cas: Option<u64>,
    /// `M<mode>`: raw mode byte.
    pub mode: Option<u8>,
    /// `J<initial>`: ma initial value for autovivify (default 0).
    pub initial: Option<u64>,
    /// `D<delta>`: ma delta (default 1).
    pub delta: Option<u64>,
    /// `I`: invalidate / mark stale.
    pub invalidate: bool,
}

/// Key and flags of a keyed meta command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaArgs<'a> {
    /// The key, base64-decoded when `flags.base64_key`.
    pub key: Cow<'a, [u8]>,
    pub flags: MetaFlags<'a>,
    /// The raw flag tokens in request order; reply flags are emitted in
    /// this order by the encoders below.
    pub tokens: Vec<&'a [u8]>,
}

/// `ms` mode (`M` token), after memcached's CAS upgrade: a `C` token turns
/// Set and Replace into [`MetaSetMode::Cas`]. For Append/Prepend with `C`
/// the engine performs the CAS check itself; Add ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaSetMode {
    Set,
    Add,
    Append,
    Prepend,
    Replace,
    Cas,
}

/// A parsed meta request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaRequest<'a> {
    /// `mg <key> <flags>*`
    Get(MetaArgs<'a>),
    /// `ms <key> <datalen> <flags>*\r\n<data>\r\n`. `invalidate` (I) only
    /// applies in CAS mode, as in memcached.
    Set { args: MetaArgs<'a>, mode: MetaSetMode, data: &'a [u8] },
    /// `md <key> <flags>*`
    Delete(MetaArgs<'a>),
    /// `ma <key> <flags>*`; `incr` false for `MD`/`M-`. Delta defaults to 1.
    Arithmetic { args: MetaArgs<'a>, incr: bool },
    /// `mn`: reply `MN\r\n` (and flush).
    Noop,
    /// `me <key> [b]`: debug dump.
    Debug { key: Cow<'a, [u8]>, base64: bool },
}

fn merr<'a>(e: MetaError, consumed: usize) -> TextError<'a> {
    // meta errors use out_errstring: never suppressed.
    let mut t = TextError::new_pub(TextErrorKind::Meta(e), consumed);
    t.noreply = false;
    t
}

/// `_meta_flag_preparse`.
fn preparse<'a>(flag_tokens: &[&'a [u8]], key: &mut Cow<'a, [u8]>) -> Result<MetaFlags<'a>, MetaError> {
    let mut seen = [false; 127];
    let mut f = MetaFlags::default();
    let mut has_error = false;
    let mut errstr = MetaError::BadFormat;
    for &t in flag_tokens {
        let o = t[0];
        if o >= 127 || seen[o as usize] {
            return Err(MetaError::DuplicateFlag);
        }
        seen[o as usize] = true;
        let arg = &t[1..];
        match o {
            b'b' => {
                match base64::decode(key) {
                    Some(d) => *key = Cow::Owned(d),
                    None => {
                        errstr = MetaError::DecodingKey;
                        has_error = true;
                    }
                }
                f.base64_key = true;
            }
            b'N' | b'T' | b'R' => match safe_strtol(arg) {
                Some(v) => match o {
                    b'N' => f.vivify_ttl = Some(v),
                    b'T' => f.ttl = Some(v),
                    _ => f.recache_ttl = Some(v),
                },
                None => {
                    errstr = MetaError::BadToken;
                    has_error = true;
                }
            },
            b'l' => f.return_last_access = true,
            b'O' => f.opaque = Some(arg),
            b'P' | b'L' => {}
            b'k' => f.return_key = true,
            b's' => f.return_size = true,
            b't' => f.return_ttl = true,
            b'c' => f.return_cas = true,
            b'f' => f.return_flags = true,
            b'v' => f.return_value = true,
            b'h' => f.return_hit = true,
            b'u' => f.no_update = true,
            b'q' => f.quiet = true,
            b'F' => match safe_strtoul(arg) {
                Some(v) => f.client_flags = Some(v),
                None => has_error = true,
            },
            b'C' => match safe_strtoull(arg) {
                Some(v) => f.compare_cas = Some(v),
                None => {
                    errstr = MetaError::BadToken;
                    has_error = true;
                }
            },
            b'M' => {
                if t.len() != 2 {
                    errstr = MetaError::MTokenLength;
                    has_error = true;
                } else {
                    f.mode = Some(t[1]);
                }
            }
            b'J' => match safe_strtoull(arg) {
                Some(v) => f.initial = Some(v),
                None => {
                    errstr = MetaError::InvalidInitial;
                    has_error = true;
                }
            },
            b'D' => match safe_strtoull(arg) {
                Some(v) => f.delta = Some(v),
                None => {
                    errstr = MetaError::InvalidDelta;
                    has_error = true;
                }
            },
            b'I' => f.invalidate = true,
            _ => return Err(MetaError::InvalidFlag),
        }
    }
    if has_error {
        Err(errstr)
    } else {
        Ok(f)
    }
}

fn opaque_too_long(tokens: &[&[u8]]) -> bool {
    tokens.iter().any(|t| t[0] == b'O' && t.len() > MFLAG_MAX_OPAQUE_LENGTH)
}

/// Parse a meta command line (`tokens[0]` is a two byte `m?` command).
pub(crate) fn parse_meta<'a>(buf: &'a [u8], line_end: usize, tokens: &[&'a [u8]], limits: &Limits) -> TextParse<'a> {
    let n = tokens.len();
    let ntokens = n + 1; // memcached counts the terminal token
    let ok = |r: MetaRequest<'a>| Ok(Some((TextRequest::Meta(r), line_end)));
    let error = || Err(TextError::new_pub(TextErrorKind::Error, line_end));
    match tokens[0][1] {
        b'n' => ok(MetaRequest::Noop),
        b'e' => {
            if n < 2 || tokens[1].len() > limits.max_key_len {
                return Err(merr(MetaError::BadFormat, line_end));
            }
            let mut key = Cow::Borrowed(tokens[1]);
            let b = n >= 3 && tokens[2] == b"b";
            if b {
                match base64::decode(tokens[1]) {
                    Some(d) => key = Cow::Owned(d),
                    None => return Err(merr(MetaError::BadFormat, line_end)),
                }
            }
            ok(MetaRequest::Debug { key, base64: b })
        }
        b'g' | b'd' | b'a' => {
            if n < 2 {
                return error();
            }
            if tokens[1].len() > limits.max_key_len {
                return Err(merr(MetaError::BadFormat, line_end));
            }
            let cmd = tokens[0][1];
            if ntokens > MFLAG_MAX_OPT_LENGTH {
                let e = if cmd == b'g' { MetaError::OptionsTooLongMg } else { MetaError::OptionsTooLong };
                return Err(merr(e, line_end));
            }
            let mut key = Cow::Borrowed(tokens[1]);
            let flag_tokens = &tokens[2..];
            let flags = match preparse(flag_tokens, &mut key) {
                Ok(f) => f,
                Err(e) => {
                    let e = if cmd == b'g' { e } else { MetaError::InvalidOrDuplicate };
                    return Err(merr(e, line_end));
                }
            };
            let mut incr = true;
            if cmd == b'a' {
                match flags.mode {
                    None | Some(b'I') | Some(b'+') => {}
                    Some(b'D') | Some(b'-') => incr = false,
                    Some(_) => return Err(merr(MetaError::InvalidMaMode, line_end)),
                }
            }
            // NOTE: for `ma` memcached checks the opaque length only while
            // writing the reply (after applying the delta); we reject up front.
            if opaque_too_long(flag_tokens) {
                return Err(merr(MetaError::OpaqueTooLong, line_end));
            }
            let args = MetaArgs { key, flags, tokens: flag_tokens.to_vec() };
            ok(match cmd {
                b'g' => MetaRequest::Get(args),
                b'd' => MetaRequest::Delete(args),
                _ => MetaRequest::Arithmetic { args, incr },
            })
        }
        b's' => parse_ms(buf, line_end, tokens, limits),
        _ => error(),
    }
}

fn parse_ms<'a>(buf: &'a [u8], line_end: usize, tokens: &[&'a [u8]], limits: &Limits) -> TextParse<'a> {
    let n = tokens.len();
    if n < 2 {
        return Err(TextError::new_pub(TextErrorKind::Error, line_end));
    }
    if tokens[1].len() > limits.max_key_len || n == 2 {
        return Err(merr(MetaError::BadFormat, line_end));
    }
    if n + 1 > MFLAG_MAX_OPT_LENGTH {
        return Err(merr(MetaError::OptionsTooLong, line_end));
    }
    let vlen = match safe_strtol(tokens[2]) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as u64 + 2,
        _ => return Err(merr(MetaError::BadFormat, line_end)),
    };
    let swallow = |e: TextErrorKind| {
        let mut t = TextError::new_pub(e, line_end);
        t.swallow = vlen;
        Err(t)
    };
    let mut key = Cow::Borrowed(tokens[1]);
    let flag_tokens = &tokens[3..];
    let flags = match preparse(flag_tokens, &mut key) {
        Ok(f) => f,
        Err(e) => return swallow(TextErrorKind::Meta(e)),
    };
    let has_error = opaque_too_long(flag_tokens);
    let mut mode = match flags.mode {
        None | Some(b'S') => MetaSetMode::Set,
        Some(b'E') => MetaSetMode::Add,
        Some(b'A') => MetaSetMode::Append,
        Some(b'P') => MetaSetMode::Prepend,
        Some(b'R') => MetaSetMode::Replace,
        Some(_) => return swallow(TextErrorKind::Meta(MetaError::InvalidMsMode)),
    };
    if flags.compare_cas.is_some() && matches!(mode, MetaSetMode::Set | MetaSetMode::Replace) {
        mode = MetaSetMode::Cas;
    }
    if has_error {
        return swallow(TextErrorKind::Meta(MetaError::OpaqueTooLong));
    }
    if item_too_large(limits, key.len(), flags.client_flags.unwrap_or(0), vlen) {
        let mut t = TextError::new_pub(TextErrorKind::TooLarge, line_end);
        t.swallow = vlen;
        t.unlink_key = Some(key);
        return Err(t);
    }
    let total = line_end + vlen as usize;
    if buf.len() < total {
        return Ok(None);
    }
    if &buf[total - 2..total] != b"\r\n" {
        // complete_nread_ascii: "metaset mode always returns errors".
        return Err(TextError::new_pub(TextErrorKind::BadDataChunk, total));
    }
    let data = &buf[line_end..total - 2];
    Ok(Some((
        TextRequest::Meta(MetaRequest::Set { args: MetaArgs { key, flags, tokens: flag_tokens.to_vec() }, mode, data }),
        total,
    )))
}

// ---------------------------------------------------------------------------
// Reply encoding
// ---------------------------------------------------------------------------

fn push_num<T: itoa::Integer>(out: &mut Vec<u8>, v: T) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// META_KEY: ` k<key>` or ` k<base64> b`.
fn push_key(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64::encode_into(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

fn push_opaque(out: &mut Vec<u8>, token: &[u8]) {
    out.push(b' ');
    out.extend_from_slice(token);
}

/// Emit only the `O` and `k` return flags in token order (miss/status replies).
fn push_opaque_and_key(out: &mut Vec<u8>, args: &MetaArgs<'_>) {
    for t in &args.tokens {
        match t[0] {
            b'O' => push_opaque(out, t),
            b'k' => push_key(out, &args.key, args.flags.base64_key),
            _ => {}
        }
    }
}

/// Item metadata needed to answer `mg` hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaItem<'a> {
    /// The stored key and whether it was stored binary (`ms ... b`); memcached
    /// echoes `k` from the item, so an autovivified item (`N`) is not binary.
    pub key: &'a [u8],
    pub key_binary: bool,
    pub client_flags: u32,
    pub cas: u64,
    /// Seconds of TTL left; `None` = never expires (`t-1`).
    pub ttl_remaining: Option<u32>,
    /// Seconds since last access (`l`).
    pub last_access: u32,
    /// Fetched before (`h1`).
    pub fetched: bool,
    /// Item already handed out a recache token (`Z`).
    pub token_sent: bool,
    /// Item is marked stale by `md I` / `ms I` (`X`).
    pub stale: bool,
    /// This request wins the recache token (`W`): vivified by `N`, `R`
    /// threshold passed, or stale without a token sent. The engine must then
    /// mark the item token-sent.
    pub win: bool,
}

/// `mg` hit: `VA <size> <flags>*\r\n<data>\r\n` or `HD <flags>*\r\n`.
/// Always sent, even with `q`.
pub fn encode_mg_hit(out: &mut Vec<u8>, args: &MetaArgs<'_>, item: &MetaItem<'_>, value: &[u8]) {
    if args.flags.return_value {
        out.extend_from_slice(b"VA ");
        push_num(out, value.len());
    } else {
        out.extend_from_slice(b"HD");
    }
    for t in &args.tokens {
        match t[0] {
            b's' => {
                out.extend_from_slice(b" s");
                push_num(out, value.len());
            }
            b't' => {
                out.extend_from_slice(b" t");
                match item.ttl_remaining {
                    None => out.extend_from_slice(b"-1"),
                    Some(r) => push_num(out, r),
                }
            }
            b'c' => {
                out.extend_from_slice(b" c");
                push_num(out, item.cas);
            }
            b'f' => {
                out.extend_from_slice(b" f");
                push_num(out, item.client_flags);
            }
            b'l' => {
                out.extend_from_slice(b" l");
                push_num(out, item.last_access);
            }
            b'h' => out.extend_from_slice(if item.fetched { b" h1" } else { b" h0" }),
            b'O' => push_opaque(out, t),
            b'k' => push_key(out, item.key, item.key_binary),
            _ => {}
        }
    }
    if item.token_sent {
        out.extend_from_slice(b" Z");
    }
    if item.stale {
        out.extend_from_slice(b" X");
    }
    if item.win {
        out.extend_from_slice(b" W");
    }
    out.extend_from_slice(b"\r\n");
    if args.flags.return_value {
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
}

/// `mg` miss: `EN <O/k flags>\r\n`, suppressed by `q`.
pub fn encode_mg_miss(out: &mut Vec<u8>, args: &MetaArgs<'_>) {
    if args.flags.quiet {
        return;
    }
    out.extend_from_slice(b"EN");
    push_opaque_and_key(out, args);
    out.extend_from_slice(b"\r\n");
}

/// Outcome of an `ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaStoreStatus {
    /// `HD` (suppressed with `q`)
    Stored,
    /// `EX` (CAS mismatch)
    Exists,
    /// `NF` (CAS/replace on a missing item)
    NotFound,
    /// `NS`
    NotStored,
}

/// `ms` reply: status then `O`, `k`, `c` flags in request order. `cas` is the
/// new CAS on success (memcached prints 0 otherwise).
pub fn encode_ms(out: &mut Vec<u8>, args: &MetaArgs<'_>, status: MetaStoreStatus, cas: u64) {
    if status == MetaStoreStatus::Stored && args.flags.quiet {
        return;
    }
    out.extend_from_slice(match status {
        MetaStoreStatus::Stored => b"HD",
        MetaStoreStatus::Exists => b"EX",
        MetaStoreStatus::NotFound => b"NF",
        MetaStoreStatus::NotStored => b"NS",
    });
    for t in &args.tokens {
        match t[0] {
            b'O' => push_opaque(out, t),
            b'k' => push_key(out, &args.key, args.flags.base64_key),
            b'c' => {
                out.extend_from_slice(b" c");
                push_num(out, cas);
            }
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Outcome of an `md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaDeleteStatus {
    /// `HD` (deleted, or marked stale with `I`); suppressed with `q`.
    Deleted,
    /// `NF`
    NotFound,
    /// `EX` (CAS mismatch)
    Exists,
}

/// `md` reply: status then `O`/`k` flags.
pub fn encode_md(out: &mut Vec<u8>, args: &MetaArgs<'_>, status: MetaDeleteStatus) {
    if status == MetaDeleteStatus::Deleted && args.flags.quiet {
        return;
    }
    out.extend_from_slice(match status {
        MetaDeleteStatus::Deleted => b"HD",
        MetaDeleteStatus::NotFound => b"NF",
        MetaDeleteStatus::Exists => b"EX",
    });
    push_opaque_and_key(out, args);
    out.extend_from_slice(b"\r\n");
}

/// Outcome of an `ma`. Errors use [`super::text::NON_NUMERIC`] or
/// `SERVER_ERROR out of memory` (never suppressed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaArithResult {
    /// Updated an existing item (`created` false) or autovivified one with
    /// `N` (`created` true, value = `J` initial). Quiet mode suppresses only
    /// the non-created case, as memcached does.
    Done { value: u64, cas: u64, ttl_remaining: Option<u32>, created: bool },
    /// `NF`
    NotFound,
    /// `EX`
    Exists,
}

/// `ma` reply: `HD`/`VA <len>` + `c`,`t`,`O`,`k` flags (+ value), or `NF`/`EX`.
pub fn encode_ma(out: &mut Vec<u8>, args: &MetaArgs<'_>, result: MetaArithResult) {
    match result {
        MetaArithResult::Done { value, cas, ttl_remaining, created } => {
            if args.flags.quiet && !created {
                return;
            }
            let mut b = itoa::Buffer::new();
            let v = b.format(value).as_bytes();
            if args.flags.return_value {
                out.extend_from_slice(b"VA ");
                push_num(out, v.len());
            } else {
                out.extend_from_slice(b"HD");
            }
            for t in &args.tokens {
                match t[0] {
                    b'c' => {
                        out.extend_from_slice(b" c");
                        push_num(out, cas);
                    }
                    b't' => {
                        out.extend_from_slice(b" t");
                        match ttl_remaining {
                            None => out.extend_from_slice(b"-1"),
                            Some(r) => push_num(out, r),
                        }
                    }
                    b'O' => push_opaque(out, t),
                    b'k' => push_key(out, &args.key, args.flags.base64_key),
                    _ => {}
                }
            }
            if args.flags.return_value {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(v);
            }
            out.extend_from_slice(b"\r\n");
        }
        MetaArithResult::NotFound | MetaArithResult::Exists => {
            out.extend_from_slice(if result == MetaArithResult::NotFound { b"NF" } else { b"EX" });
            push_opaque_and_key(out, args);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// `MN\r\n`
pub fn encode_mn(out: &mut Vec<u8>) {
    out.extend_from_slice(b"MN\r\n");
}

/// `me` hit: `ME <key> exp=%d la=%llu cas=%llu fetch=%s cls=%u size=%lu\r\n`.
/// `exp` is memcached's odd `current_time - exptime` (so the negated TTL)
/// or -1 when the item never expires; pass `ttl_remaining` and this does it.
#[allow(clippy::too_many_arguments)]
pub fn encode_me_hit(
    out: &mut Vec<u8>,
    key: &[u8],
    key_binary: bool,
    ttl_remaining: Option<u32>,
    last_access: u64,
    cas: u64,
    fetched: bool,
    slab_class: u32,
    total_size: u64,
) {
    out.extend_from_slice(b"ME ");
    if key_binary {
        base64::encode_into(key, out);
    } else {
        out.extend_from_slice(key);
    }
    out.extend_from_slice(b" exp=");
    match ttl_remaining {
        None => out.extend_from_slice(b"-1"),
        Some(r) => push_num(out, (r as i32).wrapping_neg()),
    }
    out.extend_from_slice(b" la=");
    push_num(out, last_access);
    out.extend_from_slice(b" cas=");
    push_num(out, cas);
    out.extend_from_slice(if fetched { b" fetch=yes" } else { b" fetch=no" });
    out.extend_from_slice(b" cls=");
    push_num(out, slab_class);
    out.extend_from_slice(b" size=");
    push_num(out, total_size);
    out.extend_from_slice(b"\r\n");
}

/// `me` / `mg` miss without flags: `EN\r\n`.
pub fn encode_en(out: &mut Vec<u8>) {
    out.extend_from_slice(b"EN\r\n");
}
