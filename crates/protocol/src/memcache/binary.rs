//! memcached binary protocol (deprecated upstream, still served by 1.6.18):
//! request parsing and response encoding, mirroring proto_bin.c.

use super::text::item_too_large;
use super::Limits;

/// Request magic.
pub const MAGIC_REQUEST: u8 = 0x80;
/// Response magic.
pub const MAGIC_RESPONSE: u8 = 0x81;
/// Header length.
pub const HEADER_LEN: usize = 24;

/// Opcodes served by memcached 1.6.18.
pub mod opcode {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// Response status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    Success = 0x0000,
    KeyNotFound = 0x0001,
    KeyExists = 0x0002,
    TooLarge = 0x0003,
    InvalidArguments = 0x0004,
    NotStored = 0x0005,
    NonNumeric = 0x0006,
    AuthError = 0x0020,
    AuthContinue = 0x0021,
    UnknownCommand = 0x0081,
    OutOfMemory = 0x0082,
}

impl Status {
    /// Body memcached's `write_bin_error` sends for this status.
    pub fn message(self) -> &'static str {
        match self {
            Status::Success | Status::AuthContinue => "",
            Status::KeyNotFound => "Not found",
            Status::KeyExists => "Data exists for key.",
            Status::TooLarge => "Too large.",
            Status::InvalidArguments => "Invalid arguments",
            Status::NotStored => "Not stored.",
            Status::NonNumeric => "Non-numeric server-side value for incr or decr",
            Status::AuthError => "Auth failure.",
            Status::UnknownCommand => "Unknown command",
            Status::OutOfMemory => "Out of memory",
        }
    }
}

/// The 24-byte header (host byte order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BinaryHeader {
    pub magic: u8,
    pub opcode: u8,
    pub key_len: u16,
    pub extras_len: u8,
    pub data_type: u8,
    /// vbucket id in requests, status in responses.
    pub vbucket_or_status: u16,
    pub body_len: u32,
    pub opaque: u32,
    pub cas: u64,
}

impl BinaryHeader {
    /// Decode the first 24 bytes (`None` if shorter).
    pub fn decode(buf: &[u8]) -> Option<Self> {
        if buf.len() < HEADER_LEN {
            return None;
        }
        let u16at = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        let u32at = |i: usize| u32::from_be_bytes(buf[i..i + 4].try_into().unwrap());
        Some(BinaryHeader {
            magic: buf[0],
            opcode: buf[1],
            key_len: u16at(2),
            extras_len: buf[4],
            data_type: buf[5],
            vbucket_or_status: u16at(6),
            body_len: u32at(8),
            opaque: u32at(12),
            cas: u64::from_be_bytes(buf[16..24].try_into().unwrap()),
        })
    }

    /// Append the 24 encoded bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.magic);
        out.push(self.opcode);
        out.extend_from_slice(&self.key_len.to_be_bytes());
        out.push(self.extras_len);
        out.push(self.data_type);
        out.extend_from_slice(&self.vbucket_or_status.to_be_bytes());
        out.extend_from_slice(&self.body_len.to_be_bytes());
        out.extend_from_slice(&self.opaque.to_be_bytes());
        out.extend_from_slice(&self.cas.to_be_bytes());
    }
}

/// set/add/replace; a non-zero header CAS turns any of them into a CAS store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryStoreMode {
    Set,
    Add,
    Replace,
}

/// The command, with extras decoded. Quiet variants are folded into
/// [`BinaryRequest::quiet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryCommand<'a> {
    /// Get/GetQ/GetK/GetKQ.
    Get { key: &'a [u8], return_key: bool },
    /// Touch (reply carries the flags extras but no value).
    Touch { key: &'a [u8], exptime: u32 },
    /// GAT/GATQ/GATK/GATKQ.
    GetAndTouch { key: &'a [u8], exptime: u32, return_key: bool },
    /// Set/Add/Replace (+Q). `header.cas` != 0 means compare-and-swap.
    Store { mode: BinaryStoreMode, key: &'a [u8], flags: u32, exptime: u32, value: &'a [u8] },
    /// Append/Prepend (+Q); `header.cas` is checked by the engine if non-zero.
    Concat { append: bool, key: &'a [u8], value: &'a [u8] },
    /// Delete (+Q); `header.cas` must match if non-zero (else KeyExists).
    Delete { key: &'a [u8] },
    /// Increment/Decrement (+Q). On a miss, create with `initial` unless
    /// `exptime == 0xffffffff` (then KeyNotFound). `header.cas` is a CAS check.
    Arithmetic { incr: bool, key: &'a [u8], delta: u64, initial: u64, exptime: u32 },
    /// Quit (+Q): reply (unless quiet), then close.
    Quit,
    /// Flush (+Q) with optional delay (0 = now). memcached with flush disabled
    /// answers [`Status::AuthError`].
    Flush { delay: u32 },
    /// Noop: reply and flush the pipeline.
    Noop,
    /// Version: body is the version string.
    Version,
    /// Stat with an optional group (`key`), answered with [`encode_stat`]
    /// packets and an empty terminator; unknown groups get KeyNotFound.
    Stat { key: &'a [u8] },
    /// SASL_LIST_MECHS (answered `UnknownCommand` by a node without authentication).
    SaslListMechs,
    /// SASL_AUTH / SASL_STEP with the mechanism (the key) and its data (the value).
    SaslAuth { mech: &'a [u8], data: &'a [u8], step: bool },
}

/// A complete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryRequest<'a> {
    pub header: BinaryHeader,
    pub quiet: bool,
    pub command: BinaryCommand<'a>,
}

/// A rejected packet. The connection must drop `consumed` bytes, send the
/// error packet ([`BinaryError::encode`]) if `status` is `Some`, discard the
/// next `swallow` input bytes, and close after writing if `close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryError<'a> {
    /// `None`: close silently (invalid magic).
    pub status: Option<Status>,
    pub opcode: u8,
    pub opaque: u32,
    pub consumed: usize,
    pub swallow: u64,
    pub close: bool,
    /// Too-large Set: memcached unlinks the existing item.
    pub unlink_key: Option<&'a [u8]>,
}

impl BinaryError<'_> {
    /// Append the error response (header + text body), if any.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(s) = self.status {
            encode_error_raw(out, self.opcode, self.opaque, s);
        }
    }
}

/// Result of [`parse_binary`].
pub type BinaryParse<'a> = Result<Option<(BinaryRequest<'a>, usize)>, BinaryError<'a>>;

/// Parse one binary request from the start of `buf`. Same contract as
/// `parse_text`: `Ok(None)` = need more bytes.
///
/// Like memcached, only the header, extras and key must be present before a
/// request is validated; value-carrying commands additionally wait for the
/// value (unless rejected as too large, which is reported immediately with a
/// swallow count). Bytes beyond `extras + key` in non-value commands (e.g. a
/// Stat with a longer body) are *not* consumed: memcached parses them as the
/// next request.
pub fn parse_binary<'a>(buf: &'a [u8], limits: &Limits) -> BinaryParse<'a> {
    let Some(h) = BinaryHeader::decode(buf) else {
        return Ok(None);
    };
    let fail = |status: Option<Status>, consumed: usize, swallow: u64, close: bool| BinaryError {
        status,
        opcode: h.opcode,
        opaque: h.opaque,
        consumed,
        swallow,
        close,
        unlink_key: None,
    };
    if h.magic != MAGIC_REQUEST {
        return Err(fail(None, buf.len(), 0, true));
    }
    let extlen = h.extras_len as usize;
    let keylen = h.key_len as usize;
    let bodylen = h.body_len as u64;
    let head = HEADER_LEN + extlen + keylen;
    if buf.len() < head {
        return Ok(None);
    }
    if keylen as u64 > bodylen || (keylen + extlen) as u64 > bodylen {
        return Err(fail(Some(Status::UnknownCommand), head, 0, true));
    }
    let protocol_error = || Err(fail(Some(Status::InvalidArguments), head, 0, true));
    if keylen > limits.max_key_len {
        return protocol_error();
    }
    let extras = &buf[HEADER_LEN..HEADER_LEN + extlen];
    let key = &buf[HEADER_LEN + extlen..head];
    let be32 = |i: usize| u32::from_be_bytes(extras[i..i + 4].try_into().unwrap());
    let be64 = |i: usize| u64::from_be_bytes(extras[i..i + 8].try_into().unwrap());
    use opcode::*;
    let quiet = matches!(
        h.opcode,
        SETQ | ADDQ
            | REPLACEQ
            | DELETEQ
            | INCREMENTQ
            | DECREMENTQ
            | QUITQ
            | FLUSHQ
            | APPENDQ
            | PREPENDQ
            | GETQ
            | GETKQ
            | GATQ
            | GATKQ
    );
    let ok =
        |command: BinaryCommand<'a>, consumed: usize| Ok(Some((BinaryRequest { header: h, quiet, command }, consumed)));
    let empty = extlen == 0 && keylen == 0 && bodylen == 0;
    match h.opcode {
        VERSION => {
            if !empty {
                return protocol_error();
            }
            ok(BinaryCommand::Version, head)
        }
        FLUSH | FLUSHQ => {
            if !(keylen == 0 && bodylen == extlen as u64 && (extlen == 0 || extlen == 4)) {
                return protocol_error();
            }
            let delay = if extlen == 4 { be32(0) } else { 0 };
            ok(BinaryCommand::Flush { delay }, head)
        }
        NOOP => {
            if !empty {
                return protocol_error();
            }
            ok(BinaryCommand::Noop, head)
        }
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ => {
            if !(extlen == 8 && keylen != 0 && bodylen >= (keylen + 8) as u64) {
                return protocol_error();
            }
            let flags = be32(0);
            let exptime = be32(4);
            let vlen = bodylen - (keylen + extlen) as u64;
            if item_too_large(limits, keylen, flags, vlen + 2) {
                let mut e = fail(Some(Status::TooLarge), head, vlen, false);
                if matches!(h.opcode, SET | SETQ) {
                    e.unlink_key = Some(key);
                }
                return Err(e);
            }
            let total = head + vlen as usize;
            if buf.len() < total {
                return Ok(None);
            }
            let mode = match h.opcode {
                SET | SETQ => BinaryStoreMode::Set,
                ADD | ADDQ => BinaryStoreMode::Add,
                _ => BinaryStoreMode::Replace,
            };
            ok(BinaryCommand::Store { mode, key, flags, exptime, value: &buf[head..total] }, total)
        }
        GET | GETQ | GETK | GETKQ => {
            if !(extlen == 0 && bodylen == keylen as u64 && keylen > 0) {
                return protocol_error();
            }
            ok(BinaryCommand::Get { key, return_key: matches!(h.opcode, GETK | GETKQ) }, head)
        }
        DELETE | DELETEQ => {
            if !(keylen > 0 && extlen == 0 && bodylen == keylen as u64) {
                return protocol_error();
            }
            ok(BinaryCommand::Delete { key }, head)
        }
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => {
            if !(keylen > 0 && extlen == 20 && bodylen == (keylen + extlen) as u64) {
                return protocol_error();
            }
            ok(
                BinaryCommand::Arithmetic {
                    incr: matches!(h.opcode, INCREMENT | INCREMENTQ),
                    key,
                    delta: be64(0),
                    initial: be64(8),
                    exptime: be32(16),
                },
                head,
            )
        }
        APPEND | APPENDQ | PREPEND | PREPENDQ => {
            if !(keylen > 0 && extlen == 0) {
                return protocol_error();
            }
            let vlen = bodylen - keylen as u64;
            if item_too_large(limits, keylen, 0, vlen + 2) {
                return Err(fail(Some(Status::TooLarge), head, vlen, false));
            }
            let total = head + vlen as usize;
            if buf.len() < total {
                return Ok(None);
            }
            ok(
                BinaryCommand::Concat { append: matches!(h.opcode, APPEND | APPENDQ), key, value: &buf[head..total] },
                total,
            )
        }
        STAT => {
            if extlen != 0 {
                return protocol_error();
            }
            ok(BinaryCommand::Stat { key }, head)
        }
        QUIT | QUITQ => {
            if !empty {
                return protocol_error();
            }
            ok(BinaryCommand::Quit, head)
        }
        SASL_LIST_MECHS => {
            if !empty {
                return protocol_error();
            }
            ok(BinaryCommand::SaslListMechs, head)
        }
        SASL_AUTH | SASL_STEP => {
            if !(extlen == 0 && keylen != 0) {
                return protocol_error();
            }
            let vlen = bodylen - keylen as u64;
            if keylen > super::auth::MAX_SASL_MECH_LEN || vlen > super::auth::MAX_AUTH_DATA as u64 {
                // memcached -S: EINVAL and swallow; without -S: unknown command and swallow.
                return Err(fail(Some(Status::InvalidArguments), head, vlen, false));
            }
            let total = head + vlen as usize;
            if buf.len() < total {
                return Ok(None);
            }
            ok(BinaryCommand::SaslAuth { mech: key, data: &buf[head..total], step: h.opcode == SASL_STEP }, total)
        }
        TOUCH | GAT | GATQ | GATK | GATKQ => {
            if !(extlen == 4 && keylen != 0) {
                return protocol_error();
            }
            let exptime = be32(0);
            if h.opcode == TOUCH {
                ok(BinaryCommand::Touch { key, exptime }, head)
            } else {
                ok(BinaryCommand::GetAndTouch { key, exptime, return_key: matches!(h.opcode, GATK | GATKQ) }, head)
            }
        }
        // memcached swallows `bodylen` bytes *after* extras and key were
        // already consumed (over-swallowing when either is non-empty);
        // reproduced as is.
        _ => Err(fail(Some(Status::UnknownCommand), head, bodylen, false)),
    }
}

// ---------------------------------------------------------------------------
// Response encoding
// ---------------------------------------------------------------------------

/// Append a response header.
#[allow(clippy::too_many_arguments)]
pub fn encode_response_header(
    out: &mut Vec<u8>,
    opcode: u8,
    status: Status,
    key_len: u16,
    extras_len: u8,
    body_len: u32,
    opaque: u32,
    cas: u64,
) {
    BinaryHeader {
        magic: MAGIC_RESPONSE,
        opcode,
        key_len,
        extras_len,
        data_type: 0,
        vbucket_or_status: status as u16,
        body_len,
        opaque,
        cas,
    }
    .encode(out);
}

fn encode_error_raw(out: &mut Vec<u8>, opcode: u8, opaque: u32, status: Status) {
    let msg = status.message().as_bytes();
    encode_response_header(out, opcode, status, 0, 0, msg.len() as u32, opaque, 0);
    out.extend_from_slice(msg);
}

/// Error response (`write_bin_error`): always sent, even for quiet opcodes.
pub fn encode_error(out: &mut Vec<u8>, req: &BinaryRequest<'_>, status: Status) {
    encode_error_raw(out, req.header.opcode, req.header.opaque, status);
}

/// Success without body (`write_bin_response`), suppressed for quiet
/// opcodes. Set/Add/Replace/Append/Prepend pass the new CAS, others 0.
pub fn encode_success(out: &mut Vec<u8>, req: &BinaryRequest<'_>, cas: u64) {
    if req.quiet {
        return;
    }
    encode_response_header(out, req.header.opcode, Status::Success, 0, 0, 0, req.header.opaque, cas);
}

/// Get/GetK/GAT/GATK/Touch hit: 4-byte flags extras, the key for the K
/// variants, the value (not for Touch). Sent even for quiet opcodes.
pub fn encode_get_hit(out: &mut Vec<u8>, req: &BinaryRequest<'_>, flags: u32, cas: u64, value: &[u8]) {
    let (key, return_key, with_value) = match &req.command {
        BinaryCommand::Get { key, return_key } => (*key, *return_key, true),
        BinaryCommand::GetAndTouch { key, return_key, .. } => (*key, *return_key, true),
        BinaryCommand::Touch { key, .. } => (*key, false, false),
        _ => (&[][..], false, true),
    };
    let klen = if return_key { key.len() } else { 0 };
    let vlen = if with_value { value.len() } else { 0 };
    encode_response_header(
        out,
        req.header.opcode,
        Status::Success,
        klen as u16,
        4,
        (4 + klen + vlen) as u32,
        req.header.opaque,
        cas,
    );
    out.extend_from_slice(&flags.to_be_bytes());
    if return_key {
        out.extend_from_slice(key);
    }
    if with_value {
        out.extend_from_slice(value);
    }
}

/// Get-family / Touch miss: nothing for quiet opcodes; GetK/GATK echo the
/// key (as key and body, no text); others send "Not found".
pub fn encode_get_miss(out: &mut Vec<u8>, req: &BinaryRequest<'_>) {
    if req.quiet {
        return;
    }
    let key = match &req.command {
        BinaryCommand::Get { key, return_key: true } | BinaryCommand::GetAndTouch { key, return_key: true, .. } => *key,
        _ => &[][..],
    };
    if key.is_empty() {
        encode_error(out, req, Status::KeyNotFound);
    } else {
        encode_response_header(
            out,
            req.header.opcode,
            Status::KeyNotFound,
            key.len() as u16,
            0,
            key.len() as u32,
            req.header.opaque,
            0,
        );
        out.extend_from_slice(key);
    }
}

/// Increment/Decrement success: 8-byte big-endian value, new CAS; quiet
/// opcodes suppress it.
pub fn encode_arithmetic(out: &mut Vec<u8>, req: &BinaryRequest<'_>, value: u64, cas: u64) {
    if req.quiet {
        return;
    }
    encode_response_header(out, req.header.opcode, Status::Success, 0, 0, 8, req.header.opaque, cas);
    out.extend_from_slice(&value.to_be_bytes());
}

/// Version response (memcached body: `1.6.18`).
pub fn encode_version(out: &mut Vec<u8>, req: &BinaryRequest<'_>, version: &[u8]) {
    encode_response_header(out, req.header.opcode, Status::Success, 0, 0, version.len() as u32, req.header.opaque, 0);
    out.extend_from_slice(version);
}

/// One stat packet (opcode Stat, key = name, body = name + value); call with
/// empty name and value for the terminator.
pub fn encode_stat(out: &mut Vec<u8>, opaque: u32, name: &[u8], value: &[u8]) {
    encode_response_header(
        out,
        opcode::STAT,
        Status::Success,
        name.len() as u16,
        0,
        (name.len() + value.len()) as u32,
        opaque,
        0,
    );
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// Encode a request (for tests, fuzzing and clients).
pub fn encode_request(out: &mut Vec<u8>, opcode: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32, cas: u64) {
    BinaryHeader {
        magic: MAGIC_REQUEST,
        opcode,
        key_len: key.len() as u16,
        extras_len: extras.len() as u8,
        data_type: 0,
        vbucket_or_status: 0,
        body_len: (key.len() + extras.len() + value.len()) as u32,
        opaque,
        cas,
    }
    .encode(out);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}
