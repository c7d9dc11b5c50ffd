//! memcached ASCII ("text") protocol: request parsing and reply encoding.
//!
//! The parser mirrors `try_read_command_ascii` / `process_command_ascii` of
//! memcached 1.6.18 (proto_text.c). See the module docs in `mod.rs` for how a
//! connection loop drives it.

use std::borrow::Cow;

use memchr::memchr;

use super::meta::{self, MetaRequest};
use super::num::{safe_strtol, safe_strtoul, safe_strtoull};
use super::Limits;

/// memcached's `MAX_TOKENS`: the tokenizer yields at most 23 tokens per pass.
pub(crate) const MAX_TOKENS: usize = 24;

/// Which retrieval command (`bget` parses as [`GetKind::Get`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetKind {
    /// `get` / `bget`: `VALUE <key> <flags> <bytes>`.
    Get,
    /// `gets`: adds the CAS unique.
    Gets,
    /// `gat <exptime>`: get and touch.
    Gat,
    /// `gats <exptime>`: get and touch, with CAS.
    Gats,
}

impl GetKind {
    /// Whether `VALUE` lines carry the CAS unique.
    pub fn returns_cas(self) -> bool {
        matches!(self, GetKind::Gets | GetKind::Gats)
    }
}

/// Storage command of the classic text protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCommand {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

/// `shutdown` arguments. memcached 1.6.18 without `-A` refuses every form
/// with [`SHUTDOWN_NOT_ENABLED`] before looking at the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    Immediate,
    Graceful,
    /// Would answer `CLIENT_ERROR invalid shutdown mode` if shutdown were enabled.
    Invalid,
}

/// A complete, well-formed text (or meta) request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextRequest<'a> {
    /// get/gets/gat/gats/bget. `exptime` is set for gat/gats. Keys are all
    /// validated (<= 250 bytes). May be empty for `gat <t>` (reply is `END`).
    Get { kind: GetKind, exptime: Option<i32>, keys: Vec<&'a [u8]> },
    /// set/add/replace/append/prepend/cas with its data block (without the
    /// trailing `\r\n`). `cas` is only meaningful for [`StoreCommand::Cas`].
    Store { command: StoreCommand, key: &'a [u8], flags: u32, exptime: i32, cas: u64, data: &'a [u8], noreply: bool },
    /// `delete <key> [0] [noreply]`.
    Delete { key: &'a [u8], noreply: bool },
    /// `incr`/`decr`.
    Arithmetic { incr: bool, key: &'a [u8], delta: u64, noreply: bool },
    /// `touch <key> <exptime> [noreply]`.
    Touch { key: &'a [u8], exptime: i32, noreply: bool },
    /// `flush_all [delay] [noreply]`; `delay` 0 (or negative) means now.
    /// If flush is disabled reply `CLIENT_ERROR flush_all not allowed`.
    FlushAll { delay: i32, noreply: bool },
    /// `version` (extra tokens ignored): reply with [`encode_version`].
    Version,
    /// `verbosity <level> [noreply]`: reply `OK`.
    Verbosity { level: u32, noreply: bool },
    /// `quit`: close the connection without a reply.
    Quit,
    /// `stats [args...]` (only the first 22 arguments are visible, as in
    /// memcached's tokenizer). Empty args = general stats.
    Stats { args: Vec<&'a [u8]> },
    /// `shutdown [graceful]`.
    Shutdown { mode: ShutdownMode },
    /// `cache_memlimit <megabytes> [noreply]`, already range checked
    /// (8 ..= 1_000_000_000). Reply `OK` or
    /// `MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust`.
    CacheMemlimit { megabytes: u32, noreply: bool },
    /// Administrative commands passed through verbatim: `slabs`, `lru`,
    /// `lru_crawler`, `watch`, `extstore`, `refresh_certs`. `args` excludes
    /// the command name. Unsupported ones should answer `ERROR`.
    Admin { command: &'a [u8], args: Vec<&'a [u8]> },
    /// Meta commands (mg/ms/md/ma/mn/me).
    Meta(MetaRequest<'a>),
}

/// What went wrong; [`TextErrorKind::message`] gives memcached's exact text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextErrorKind {
    /// `ERROR`
    Error,
    /// `CLIENT_ERROR bad command line format`
    BadFormat,
    /// `CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]`
    DeleteUsage,
    /// `CLIENT_ERROR bad data chunk`
    BadDataChunk,
    /// `SERVER_ERROR object too large for cache`
    TooLarge,
    /// `CLIENT_ERROR invalid exptime argument`
    InvalidExptime,
    /// `CLIENT_ERROR invalid numeric delta argument`
    InvalidDelta,
    /// `MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m`
    MemlimitTooSmall,
    /// `MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes`
    MemlimitNotBytes,
    /// Meta protocol errors.
    Meta(meta::MetaError),
    /// No newline within 2048 bytes and not a `get `/`gets ` line: memcached
    /// closes the connection without a reply.
    LineTooLong,
    /// A line whose last token starts with `HTTP/`: closed without reply.
    Http,
}

impl TextErrorKind {
    /// Exact reply line (without `\r\n`), `None` for silent closes.
    pub fn message(self) -> Option<&'static str> {
        Some(match self {
            TextErrorKind::Error => "ERROR",
            TextErrorKind::BadFormat => "CLIENT_ERROR bad command line format",
            TextErrorKind::DeleteUsage => "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
            TextErrorKind::BadDataChunk => "CLIENT_ERROR bad data chunk",
            TextErrorKind::TooLarge => "SERVER_ERROR object too large for cache",
            TextErrorKind::InvalidExptime => "CLIENT_ERROR invalid exptime argument",
            TextErrorKind::InvalidDelta => "CLIENT_ERROR invalid numeric delta argument",
            TextErrorKind::MemlimitTooSmall => "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
            TextErrorKind::MemlimitNotBytes => "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes",
            TextErrorKind::Meta(m) => m.message(),
            TextErrorKind::LineTooLong | TextErrorKind::Http => return None,
        })
    }
}

/// A rejected request. The connection must:
/// 1. drop `consumed` bytes from its buffer,
/// 2. write `message()` + `\r\n` unless `noreply` (see [`TextError::encode`]),
/// 3. discard the next `swallow` bytes of input (they may not have arrived
///    yet: memcached's `conn_swallow` state),
/// 4. close the connection if `close` (after flushing the reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError<'a> {
    pub kind: TextErrorKind,
    pub consumed: usize,
    pub swallow: u64,
    pub noreply: bool,
    pub close: bool,
    /// For a too-large `set` (and any too-large `ms`) memcached unlinks the
    /// existing item so stale data does not survive: the executor should
    /// delete this key.
    pub unlink_key: Option<Cow<'a, [u8]>>,
}

impl TextError<'_> {
    pub(crate) fn new_pub(kind: TextErrorKind, consumed: usize) -> Self {
        Self::new(kind, consumed)
    }

    fn new(kind: TextErrorKind, consumed: usize) -> Self {
        TextError { kind, consumed, swallow: 0, noreply: false, close: false, unlink_key: None }
    }

    fn noreply(mut self, nr: bool) -> Self {
        self.noreply = nr;
        self
    }

    /// Exact reply text, `None` if nothing is sent.
    pub fn message(&self) -> Option<&'static str> {
        if self.noreply {
            None
        } else {
            self.kind.message()
        }
    }

    /// Append the reply line (if any) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(m) = self.message() {
            out.extend_from_slice(m.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Result of [`parse_text`].
pub type TextParse<'a> = Result<Option<(TextRequest<'a>, usize)>, TextError<'a>>;

/// memcached's `tokenize_command`: split on single spaces (only `' '`),
/// at most `MAX_TOKENS - 1` tokens; returns the tokens and the unprocessed
/// remainder (if the limit was hit with input left).
pub(crate) fn tokenize(line: &[u8]) -> (Tokens<'_>, Option<&[u8]>) {
    let mut tokens = Tokens { buf: [&[]; MAX_TOKENS - 1], len: 0 };
    let mut s = 0;
    let mut i = 0;
    while i < line.len() {
        if line[i] == b' ' {
            if s != i {
                tokens.push(&line[s..i]);
                if tokens.len == MAX_TOKENS - 1 {
                    let rest = &line[i + 1..];
                    return (tokens, if rest.is_empty() { None } else { Some(rest) });
                }
            }
            s = i + 1;
        }
        i += 1;
    }
    if s != i {
        tokens.push(&line[s..i]);
    }
    (tokens, None)
}

/// One command line's tokens, on the stack (a request never allocates to be split).
pub(crate) struct Tokens<'a> {
    buf: [&'a [u8]; MAX_TOKENS - 1],
    len: usize,
}

impl<'a> Tokens<'a> {
    fn push(&mut self, t: &'a [u8]) {
        self.buf[self.len] = t;
        self.len += 1;
    }
}

impl<'a> std::ops::Deref for Tokens<'a> {
    type Target = [&'a [u8]];
    fn deref(&self) -> &Self::Target {
        &self.buf[..self.len]
    }
}

/// Is the last token (as memcached sees it) `noreply`? (`set_noreply_maybe`)
fn noreply_last(tokens: &[&[u8]]) -> bool {
    tokens.last().is_some_and(|t| *t == b"noreply")
}

/// memcached's `item_size_ok` with 64-bit `sizeof(item)` = 48 and CAS enabled:
/// `48 + nkey + 1 + (flags != 0 ? 4 : 0) + nbytes + 8 > item_size_max`.
/// (Verified: key `k`, flags 0 accepts 1048516 bytes, rejects 1048517;
/// flags 5 accepts 1048512, rejects 1048513.)
pub fn item_too_large(limits: &Limits, nkey: usize, flags: u32, nbytes_with_crlf: u64) -> bool {
    let suffix = if flags == 0 { 0 } else { 4 };
    let total = 48u64 + nkey as u64 + 1 + suffix + nbytes_with_crlf + 8;
    nbytes_with_crlf < 2 || total > limits.item_size_max as u64
}

/// Parse one request from the start of `buf`.
///
/// * `Ok(None)`: incomplete (no full command line yet, or the data block of a
///   storage command has not fully arrived). Read more and call again with
///   the same (grown) buffer.
/// * `Ok(Some((req, consumed)))`: execute `req`, then drop `consumed` bytes.
/// * `Err(e)`: see [`TextError`].
pub fn parse_text<'a>(buf: &'a [u8], limits: &Limits) -> TextParse<'a> {
    if buf.is_empty() {
        return Ok(None);
    }
    let nl = match memchr(b'\n', buf) {
        Some(i) => i,
        None => {
            if buf.len() > limits.max_line_len {
                // try_read_command_ascii: only large multigets may exceed.
                let sp = buf.iter().take_while(|&&c| c == b' ').count();
                let rest = &buf[sp..];
                let is_get = rest.starts_with(b"get ") || rest.starts_with(b"gets ");
                if sp > 100 || !is_get || buf.len() > limits.max_multiget_line {
                    let mut e = TextError::new(TextErrorKind::LineTooLong, buf.len());
                    e.close = true;
                    return Err(e);
                }
            }
            return Ok(None);
        }
    };
    let line_end = nl + 1;
    let mut line = &buf[..nl];
    if nl > 1 && buf[nl - 1] == b'\r' {
        line = &buf[..nl - 1];
    }
    // The C code works on NUL terminated strings: anything after a NUL is invisible.
    if let Some(z) = memchr(0, line) {
        line = &line[..z];
    }
    let (tokens, rest) = tokenize(line);
    parse_tokens(buf, line_end, &tokens, rest, limits)
}

fn err<'a>(kind: TextErrorKind, consumed: usize) -> TextParse<'a> {
    Err(TextError::new(kind, consumed))
}

fn parse_tokens<'a>(
    buf: &'a [u8],
    line_end: usize,
    tokens: &[&'a [u8]],
    rest: Option<&'a [u8]>,
    limits: &Limits,
) -> TextParse<'a> {
    let n = tokens.len();
    // ntokens in C counts a terminal token: ntokens == n + 1.
    if n == 0 || tokens[0].len() < 2 {
        return err(TextErrorKind::Error, line_end);
    }
    let cmd = tokens[0];
    let first = cmd[0];
    let ok = |req: TextRequest<'a>| Ok(Some((req, line_end)));

    if first == b'm' && cmd.len() == 2 {
        return meta::parse_meta(buf, line_end, tokens, limits);
    }
    match first {
        b'g' => {
            if n < 2 {
                return err(TextErrorKind::Error, line_end);
            }
            let kind = match cmd {
                b"get" => GetKind::Get,
                b"gets" => GetKind::Gets,
                b"gat" => GetKind::Gat,
                b"gats" => GetKind::Gats,
                _ => return err(TextErrorKind::Error, line_end),
            };
            parse_get(kind, line_end, tokens, rest, limits)
        }
        b's' => match cmd {
            b"set" => parse_store(buf, line_end, tokens, StoreCommand::Set, limits),
            b"stats" => ok(TextRequest::Stats { args: tokens[1..].to_vec() }),
            b"shutdown" => {
                let mode = if n == 1 {
                    ShutdownMode::Immediate
                } else if n == 2 && tokens[1] == b"graceful" {
                    ShutdownMode::Graceful
                } else {
                    ShutdownMode::Invalid
                };
                ok(TextRequest::Shutdown { mode })
            }
            b"slabs" => admin(cmd, tokens, line_end),
            _ => err(TextErrorKind::Error, line_end),
        },
        b'a' => match cmd {
            b"add" => parse_store(buf, line_end, tokens, StoreCommand::Add, limits),
            b"append" => parse_store(buf, line_end, tokens, StoreCommand::Append, limits),
            _ => err(TextErrorKind::Error, line_end),
        },
        b'c' => match cmd {
            b"cas" => parse_store(buf, line_end, tokens, StoreCommand::Cas, limits),
            b"cache_memlimit" => {
                if n != 2 && n != 3 {
                    return err(TextErrorKind::Error, line_end);
                }
                let noreply = noreply_last(tokens);
                let Some(mb) = safe_strtoul(tokens[1]) else {
                    return Err(TextError::new(TextErrorKind::Error, line_end).noreply(noreply));
                };
                if mb < 8 {
                    return Err(TextError::new(TextErrorKind::MemlimitTooSmall, line_end).noreply(noreply));
                }
                if mb > 1_000_000_000 {
                    return Err(TextError::new(TextErrorKind::MemlimitNotBytes, line_end).noreply(noreply));
                }
                ok(TextRequest::CacheMemlimit { megabytes: mb, noreply })
            }
            _ => err(TextErrorKind::Error, line_end),
        },
        b'i' => match cmd {
            b"incr" => parse_arith(true, line_end, tokens, limits),
            _ => err(TextErrorKind::Error, line_end),
        },
        b'd' => match cmd {
            b"delete" => parse_delete(line_end, tokens, limits),
            b"decr" => parse_arith(false, line_end, tokens, limits),
            _ => err(TextErrorKind::Error, line_end),
        },
        b't' => match cmd {
            b"touch" => {
                if n != 3 && n != 4 {
                    return err(TextErrorKind::Error, line_end);
                }
                let noreply = noreply_last(tokens);
                if tokens[1].len() > limits.max_key_len {
                    return Err(TextError::new(TextErrorKind::BadFormat, line_end).noreply(noreply));
                }
                let Some(exptime) = safe_strtol(tokens[2]) else {
                    return Err(TextError::new(TextErrorKind::InvalidExptime, line_end).noreply(noreply));
                };
                ok(TextRequest::Touch { key: tokens[1], exptime, noreply })
            }
            _ => err(TextErrorKind::Error, line_end),
        },
        _ => match cmd {
            b"replace" => parse_store(buf, line_end, tokens, StoreCommand::Replace, limits),
            b"prepend" => parse_store(buf, line_end, tokens, StoreCommand::Prepend, limits),
            b"bget" => {
                if n < 2 {
                    return err(TextErrorKind::Error, line_end);
                }
                parse_get(GetKind::Get, line_end, tokens, rest, limits)
            }
            b"flush_all" => {
                if !(1..=3).contains(&n) {
                    return err(TextErrorKind::Error, line_end);
                }
                let noreply = noreply_last(tokens);
                let mut delay = 0;
                if n + 1 != if noreply { 3 } else { 2 } {
                    match safe_strtol(tokens[1]) {
                        Some(d) => delay = d,
                        None => return Err(TextError::new(TextErrorKind::InvalidExptime, line_end).noreply(noreply)),
                    }
                }
                ok(TextRequest::FlushAll { delay, noreply })
            }
            b"version" => ok(TextRequest::Version),
            b"quit" => ok(TextRequest::Quit),
            b"lru_crawler" | b"watch" | b"refresh_certs" => admin(cmd, tokens, line_end),
            b"verbosity" => {
                if n != 2 && n != 3 {
                    return err(TextErrorKind::Error, line_end);
                }
                let noreply = noreply_last(tokens);
                match safe_strtoul(tokens[1]) {
                    Some(level) => ok(TextRequest::Verbosity { level, noreply }),
                    None => Err(TextError::new(TextErrorKind::BadFormat, line_end).noreply(noreply)),
                }
            }
            b"lru" | b"extstore" => {
                if n < 2 {
                    return err(TextErrorKind::Error, line_end);
                }
                admin(cmd, tokens, line_end)
            }
            _ => {
                if tokens[n - 1].starts_with(b"HTTP/") {
                    let mut e = TextError::new(TextErrorKind::Http, line_end);
                    e.close = true;
                    Err(e)
                } else {
                    err(TextErrorKind::Error, line_end)
                }
            }
        },
    }
}

fn admin<'a>(cmd: &'a [u8], tokens: &[&'a [u8]], line_end: usize) -> TextParse<'a> {
    Ok(Some((TextRequest::Admin { command: cmd, args: tokens[1..].to_vec() }, line_end)))
}

fn parse_get<'a>(
    kind: GetKind,
    line_end: usize,
    tokens: &[&'a [u8]],
    rest: Option<&'a [u8]>,
    limits: &Limits,
) -> TextParse<'a> {
    let mut idx = 1;
    let mut exptime = None;
    if matches!(kind, GetKind::Gat | GetKind::Gats) {
        match safe_strtol(tokens[1]) {
            Some(t) => exptime = Some(t),
            None => return err(TextErrorKind::InvalidExptime, line_end),
        }
        idx = 2;
    }
    let mut keys: Vec<&'a [u8]> = tokens[idx..].to_vec();
    if let Some(rest) = rest {
        // memcached re-tokenizes the remainder: every further word is a key.
        keys.extend(rest.split(|&b| b == b' ').filter(|t| !t.is_empty()));
    }
    if keys.iter().any(|k| k.len() > limits.max_key_len) {
        return err(TextErrorKind::BadFormat, line_end);
    }
    Ok(Some((TextRequest::Get { kind, exptime, keys }, line_end)))
}

fn parse_store<'a>(
    buf: &'a [u8],
    line_end: usize,
    tokens: &[&'a [u8]],
    command: StoreCommand,
    limits: &Limits,
) -> TextParse<'a> {
    let n = tokens.len();
    let handle_cas = command == StoreCommand::Cas;
    let (lo, hi) = if handle_cas { (6, 7) } else { (5, 6) };
    if n != lo && n != hi {
        return err(TextErrorKind::Error, line_end);
    }
    let noreply = noreply_last(tokens);
    let bad = || Err(TextError::new(TextErrorKind::BadFormat, line_end).noreply(noreply));
    let key = tokens[1];
    if key.len() > limits.max_key_len {
        return bad();
    }
    let (Some(flags), Some(exptime), Some(vlen)) =
        (safe_strtoul(tokens[2]), safe_strtol(tokens[3]), safe_strtol(tokens[4]))
    else {
        return bad();
    };
    let mut cas = 0;
    if handle_cas {
        match safe_strtoull(tokens[5]) {
            Some(c) => cas = c,
            None => return bad(),
        }
    }
    if !(0..=i32::MAX - 2).contains(&vlen) {
        return bad();
    }
    let nbytes = vlen as u64 + 2;
    if item_too_large(limits, key.len(), flags, nbytes) {
        let mut e = TextError::new(TextErrorKind::TooLarge, line_end).noreply(noreply);
        e.swallow = nbytes;
        if command == StoreCommand::Set {
            e.unlink_key = Some(Cow::Borrowed(key));
        }
        return Err(e);
    }
    let total = line_end + nbytes as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let data = &buf[line_end..total - 2];
    if &buf[total - 2..total] != b"\r\n" {
        return Err(TextError::new(TextErrorKind::BadDataChunk, total).noreply(noreply));
    }
    Ok(Some((TextRequest::Store { command, key, flags, exptime, cas, data, noreply }, total)))
}

fn parse_arith<'a>(incr: bool, line_end: usize, tokens: &[&'a [u8]], limits: &Limits) -> TextParse<'a> {
    let n = tokens.len();
    if n != 3 && n != 4 {
        return err(TextErrorKind::Error, line_end);
    }
    let noreply = noreply_last(tokens);
    if tokens[1].len() > limits.max_key_len {
        return Err(TextError::new(TextErrorKind::BadFormat, line_end).noreply(noreply));
    }
    let Some(delta) = safe_strtoull(tokens[2]) else {
        return Err(TextError::new(TextErrorKind::InvalidDelta, line_end).noreply(noreply));
    };
    Ok(Some((TextRequest::Arithmetic { incr, key: tokens[1], delta, noreply }, line_end)))
}

fn parse_delete<'a>(line_end: usize, tokens: &[&'a [u8]], limits: &Limits) -> TextParse<'a> {
    let n = tokens.len();
    if !(2..=4).contains(&n) {
        return err(TextErrorKind::Error, line_end);
    }
    let mut noreply = false;
    if n > 2 {
        let hold_is_zero = tokens[2] == b"0";
        noreply = noreply_last(tokens);
        let valid = (n == 3 && (hold_is_zero || noreply)) || (n == 4 && hold_is_zero && noreply);
        if !valid {
            return Err(TextError::new(TextErrorKind::DeleteUsage, line_end).noreply(noreply));
        }
    }
    if tokens[1].len() > limits.max_key_len {
        return Err(TextError::new(TextErrorKind::BadFormat, line_end).noreply(noreply));
    }
    Ok(Some((TextRequest::Delete { key: tokens[1], noreply }, line_end)))
}

// ---------------------------------------------------------------------------
// Reply encoding
// ---------------------------------------------------------------------------

/// Fixed single-line replies of the text protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextReply {
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    Ok,
    End,
    Reset,
    Error,
}

impl TextReply {
    /// The reply including `\r\n`.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            TextReply::Stored => b"STORED\r\n",
            TextReply::NotStored => b"NOT_STORED\r\n",
            TextReply::Exists => b"EXISTS\r\n",
            TextReply::NotFound => b"NOT_FOUND\r\n",
            TextReply::Deleted => b"DELETED\r\n",
            TextReply::Touched => b"TOUCHED\r\n",
            TextReply::Ok => b"OK\r\n",
            TextReply::End => b"END\r\n",
            TextReply::Reset => b"RESET\r\n",
            TextReply::Error => b"ERROR\r\n",
        }
    }

    /// Append unless `noreply`.
    pub fn encode(self, out: &mut Vec<u8>, noreply: bool) {
        if !noreply {
            out.extend_from_slice(self.as_bytes());
        }
    }
}

/// `ERROR: shutdown not enabled` (memcached without `-A`).
pub const SHUTDOWN_NOT_ENABLED: &str = "ERROR: shutdown not enabled";
/// `CLIENT_ERROR flush_all not allowed` (memcached with `-F`).
pub const FLUSH_NOT_ALLOWED: &str = "CLIENT_ERROR flush_all not allowed";
/// incr/decr on a value that is not a decimal number.
pub const NON_NUMERIC: &str = "CLIENT_ERROR cannot increment or decrement non-numeric value";
/// Allocation failure while storing.
pub const OUT_OF_MEMORY_STORING: &str = "SERVER_ERROR out of memory storing object";
/// `stats detail` with a bad argument.
pub const STATS_DETAIL_USAGE: &str = "CLIENT_ERROR usage: stats detail on|off|dump";

/// Append an arbitrary line plus `\r\n` (e.g. the constants above), unless
/// `noreply`. memcached replaces lines longer than 1022 bytes with
/// `SERVER_ERROR output line too long`.
pub fn encode_line(out: &mut Vec<u8>, line: &[u8], noreply: bool) {
    if noreply {
        return;
    }
    if line.len() + 2 > 1024 {
        out.extend_from_slice(b"SERVER_ERROR output line too long\r\n");
    } else {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
}

/// `VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n` (one hit of a get).
pub fn encode_value(out: &mut Vec<u8>, key: &[u8], flags: u32, data: &[u8], cas: Option<u64>) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    out.extend_from_slice(b.format(flags).as_bytes());
    out.push(b' ');
    out.extend_from_slice(b.format(data.len()).as_bytes());
    if let Some(c) = cas {
        out.push(b' ');
        out.extend_from_slice(b.format(c).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// `END\r\n` (terminates get and stats replies).
pub fn encode_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"END\r\n");
}

/// incr/decr success: the new value as decimal, unless `noreply`.
pub fn encode_number(out: &mut Vec<u8>, value: u64, noreply: bool) {
    if !noreply {
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// `STAT <name> <value>\r\n` (`STAT <name>\r\n` when value is empty, as
/// memcached's `append_ascii_stats`).
pub fn encode_stat(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name);
    if !value.is_empty() {
        out.push(b' ');
        out.extend_from_slice(value);
    }
    out.extend_from_slice(b"\r\n");
}

/// `VERSION <version>\r\n` (memcached: `VERSION 1.6.18`).
pub fn encode_version(out: &mut Vec<u8>, version: &[u8]) {
    out.extend_from_slice(b"VERSION ");
    out.extend_from_slice(version);
    out.extend_from_slice(b"\r\n");
}
