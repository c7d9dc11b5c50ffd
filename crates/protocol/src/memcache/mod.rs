//! Memcached protocols (text, meta, binary): request parsing and reply
//! encoding, byte-exact to memcached 1.6.18. No IO and no storage: a
//! connection loop feeds bytes in, an executor runs the typed requests
//! against the engine and uses the encoders here to build replies.
//!
//! # Driving the parser
//!
//! ```text
//! proto = None
//! swallow = 0                       // bytes still to discard (conn_swallow)
//! loop {
//!     read more bytes into buf
//!     // 1. swallow state: drop up to `swallow` bytes first
//!     let n = min(swallow, buf.len()); buf.advance(n); swallow -= n;
//!     if swallow > 0 { continue }   // need more input to finish swallowing
//!     // 2. protocol negotiation, once per connection, on the first byte
//!     proto.get_or_insert(negotiate(buf[0]));
//!     // 3. parse as many requests as the buffer holds
//!     match parse_text(&buf, &limits) {          // or parse_binary
//!         Ok(None) => continue,                  // incomplete: read more
//!         Ok(Some((req, consumed))) => { execute(req) -> encoders; buf.advance(consumed) }
//!         Err(e) => {
//!             e.encode(&mut out);                // nothing if e.noreply / silent close
//!             buf.advance(e.consumed);
//!             swallow = e.swallow;               // may exceed what is buffered
//!             if let Some(k) = e.unlink_key { engine.delete(k) } // too-large set
//!             if e.close { flush out; close }
//!         }
//!     }
//! }
//! ```
//!
//! * Call the parser again with the *same* (grown) buffer after `Ok(None)`;
//!   it is stateless. Storage commands (`set`, `ms`, binary Set/Append...)
//!   return `Ok(None)` until the whole data block is buffered, so the read
//!   buffer must be able to hold [`Limits::item_size_max`] plus a line.
//! * Requests borrow from the buffer (`&[u8]` slices, `Cow` for base64
//!   decoded meta keys): execute (or copy) before advancing.
//! * Text protocol only: a buffer with no `\n` in more than
//!   [`Limits::max_line_len`] bytes that does not start with `get `/`gets `
//!   is an error with `close` (memcached closes without reply).
//!
//! # Replies and quiet modes
//!
//! * Classic text commands carry `noreply`; the executor must then write
//!   nothing (memcached suppresses *every* reply, errors included, once it
//!   has seen `noreply` — the parser already applied that to its own errors
//!   via `TextError::noreply`). `get`-family commands have no noreply.
//! * Meta commands: `q` suppresses only the nominal reply: `EN` for mg
//!   misses, `HD` for ms/md, `HD`/`VA` for ma on existing items. The meta
//!   encoders (`meta::encode_*`) apply that themselves; errors always go out.
//!   `mn` answers `MN` and is the point to flush.
//! * Binary quiet opcodes (`BinaryRequest::quiet`): success replies are
//!   suppressed by `binary::encode_success` / `encode_arithmetic`; get hits
//!   are always sent and misses suppressed by `encode_get_miss`; errors via
//!   `binary::encode_error` are always sent. Noop should flush.
//! * `quit` (text) closes without reply; binary Quit replies (unless QuitQ)
//!   then closes.
//!
//! # Swallowing
//!
//! memcached answers some storage requests before reading their data and
//! then discards the data (`conn_swallow`): too-large text/meta sets
//! (`SERVER_ERROR object too large for cache`, swallow `bytes + 2`), `ms`
//! flag errors (swallow `datalen + 2`), binary E2BIG (swallow the value),
//! binary unknown opcodes / SASL. Errors in the *command line* of a classic
//! `set` (bad number, negative length, key too long) do not swallow: the
//! data line is then parsed as a command and yields `ERROR`, exactly like
//! memcached. A data block not followed by `\r\n` consumes `bytes + 2` and
//! answers `CLIENT_ERROR bad data chunk`.
//!
//! Verified against a real memcached 1.6.18 (`memcached -p 11311 -U 0`):
//! see the `verified` notes in the tests.

pub mod auth;
pub mod base64;
pub mod binary;
pub mod meta;
pub mod num;
pub mod text;

#[cfg(test)]
mod tests;

pub use binary::{parse_binary, BinaryCommand, BinaryError, BinaryHeader, BinaryRequest, Status};
pub use meta::{MetaArgs, MetaError, MetaFlags, MetaRequest, MetaSetMode};
pub use text::{parse_text, GetKind, StoreCommand, TextError, TextErrorKind, TextReply, TextRequest};

/// Parser limits (defaults = memcached 1.6.18 defaults).
#[derive(Debug, Clone)]
pub struct Limits {
    /// `KEY_MAX_LENGTH` (250).
    pub max_key_len: usize,
    /// `-I` item size max (1 MiB). The too-large test mimics memcached's
    /// item header arithmetic (see [`text::item_too_large`]).
    pub item_size_max: usize,
    /// Bytes without a newline before a non-get line is rejected (2048).
    pub max_line_len: usize,
    /// Cap for a newline-less `get`/`gets` line. memcached has none
    /// (`usize::MAX`); a server may want one.
    pub max_multiget_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_key_len: 250, item_size_max: 1024 * 1024, max_line_len: 2048, max_multiget_line: usize::MAX }
    }
}

/// Which protocol a connection speaks, decided on its first byte
/// (`try_read_command_negotiate`): 0x80 = binary, anything else = text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Text,
    Binary,
}

/// Protocol negotiation from the first byte a connection sends.
pub fn negotiate(first_byte: u8) -> Protocol {
    if first_byte == binary::MAGIC_REQUEST {
        Protocol::Binary
    } else {
        Protocol::Text
    }
}
