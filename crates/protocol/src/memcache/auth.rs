//! Authentication on the memcached port, as memcached 1.6.18 does it.
//!
//! * Text protocol with `-Y authfile` (`try_read_command_asciiauth` in proto_text.c): until a
//!   connection authenticates, its only accepted request is `set <key> <flags> <exptime>
//!   <bytes>` whose data block is `username password`; anything else answers
//!   `CLIENT_ERROR unauthenticated`.
//! * Binary protocol with `-S` (proto_bin.c): SASL_LIST_MECHS / SASL_AUTH / SASL_STEP; PLAIN's
//!   message is `authzid \0 authcid \0 password` (RFC 4616).

/// memcached's MAX_SASL_MECH_LEN.
pub const MAX_SASL_MECH_LEN: usize = 32;
/// The largest auth data block accepted before the connection is refused; memcached has no
/// bound here, an unauthenticated client must not make the server buffer gigabytes.
pub const MAX_AUTH_DATA: usize = 4096;

/// One step of the text protocol's authentication (see [`parse_text_auth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextAuth<'a> {
    /// Wait for more input.
    NeedMore,
    /// More than 2048 bytes without a newline: close without a reply.
    Close,
    /// Drop `consumed` bytes and answer `line` (then `\r\n`).
    Reply { consumed: usize, line: &'static str },
    /// A complete `set` whose data is at least two tokens: check `user` / `password`, drop
    /// `consumed` bytes, answer `STORED` or `CLIENT_ERROR authentication failure`.
    Credentials { user: &'a [u8], password: &'a [u8], consumed: usize },
}

pub const UNAUTHENTICATED: &str = "CLIENT_ERROR unauthenticated";
pub const AUTH_FAILURE: &str = "CLIENT_ERROR authentication failure";
const BAD_TERMINATION: &str = "CLIENT_ERROR bad command line termination";
const BAD_FORMAT: &str = "CLIENT_ERROR bad authentication token format";

fn tokens(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.split(|&c| c == b' ').filter(|t| !t.is_empty())
}

/// Parse the next authentication request of an unauthenticated text connection from the start
/// of `buf` (stateless: call again with the grown buffer after `NeedMore`).
pub fn parse_text_auth(buf: &[u8]) -> TextAuth<'_> {
    if buf.len() < 2 {
        return TextAuth::NeedMore;
    }
    let Some(nl) = buf.iter().position(|&c| c == b'\n') else {
        return if buf.len() > 2048 { TextAuth::Close } else { TextAuth::NeedMore };
    };
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let t: Vec<&[u8]> = tokens(line).collect();
    let size = match (t.len() >= 5 && t[0] == b"set", t.get(4)) {
        (true, Some(n)) => crate::memcache::num::safe_strtoul(n),
        _ => None,
    };
    let Some(size) = size else {
        return TextAuth::Reply { consumed: nl + 1, line: UNAUTHENTICATED };
    };
    let size = size as usize;
    if size > MAX_AUTH_DATA {
        return TextAuth::Close;
    }
    let start = nl + 1;
    let end = start + size + 2;
    if buf.len() < end {
        return TextAuth::NeedMore;
    }
    if &buf[end - 2..end] != b"\r\n" {
        return TextAuth::Reply { consumed: end, line: BAD_TERMINATION };
    }
    let mut d = tokens(&buf[start..end - 2]);
    match (d.next(), d.next()) {
        (Some(user), Some(password)) => TextAuth::Credentials { user, password, consumed: end },
        _ => TextAuth::Reply { consumed: end, line: BAD_FORMAT },
    }
}

/// Split a SASL PLAIN message into (authentication id, password); the authorization id must be
/// empty or equal to the authentication id.
pub fn sasl_plain(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut parts = msg.splitn(3, |&c| c == 0);
    let authz = parts.next()?;
    let user = parts.next()?;
    let pass = parts.next()?;
    if !authz.is_empty() && authz != user {
        return None;
    }
    Some((user, pass))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_auth_steps() {
        assert_eq!(parse_text_auth(b"s"), TextAuth::NeedMore);
        assert_eq!(parse_text_auth(b"set foo 0 0 7\r\nfoo"), TextAuth::NeedMore);
        assert_eq!(
            parse_text_auth(b"set foo 0 0 7\r\nfoo bar\r\nget x\r\n"),
            TextAuth::Credentials { user: b"foo", password: b"bar", consumed: 24 }
        );
        assert_eq!(parse_text_auth(b"get foo\r\n"), TextAuth::Reply { consumed: 9, line: UNAUTHENTICATED });
        assert_eq!(parse_text_auth(b"set foo 0 0 2\r\nhi\r\n"), TextAuth::Reply { consumed: 19, line: BAD_FORMAT });
        assert_eq!(parse_text_auth(b"set foo 0 0 2\r\nhixx"), TextAuth::Reply { consumed: 19, line: BAD_TERMINATION });
        assert_eq!(parse_text_auth(&[b'a'; 3000]), TextAuth::Close);
        assert_eq!(parse_text_auth(b"set a 0 0 99999999\r\n"), TextAuth::Close);
    }

    #[test]
    fn sasl_plain_message() {
        assert_eq!(sasl_plain(b"\0user\0pass"), Some((&b"user"[..], &b"pass"[..])));
        assert_eq!(sasl_plain(b"user\0user\0p\0w"), Some((&b"user"[..], &b"p\0w"[..])));
        assert_eq!(sasl_plain(b"other\0user\0pass"), None);
        assert_eq!(sasl_plain(b"userpass"), None);
    }
}
