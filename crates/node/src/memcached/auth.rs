//! Authentication: whether a connection must log in, the text protocol's ASCII login
//! (memcached's `try_read_command_asciiauth`) and SASL PLAIN on the binary protocol, both
//! checked against the ACL.

use super::{McConn, McState, Outcome};
use crate::node::Node;
use ferrocache_protocol::memcache::binary;
use ferrocache_protocol::memcache::{BinaryCommand, BinaryRequest, Status};
use std::sync::atomic::Ordering::Relaxed;

/// Whether a new memcached connection must log in before anything else: the node's default
/// user needs a password (requirepass, or ACL `default` without nopass, or off) or is
/// restricted, so RESP clients must AUTH too; `memcached-auth no` opens the port anyway.
/// Connections keep what they had when they were accepted (as RESP clients after CONFIG SET
/// requirepass).
pub fn auth_required(srv: &Node) -> bool {
    (srv.config.hot.requirepass_set.load(Relaxed) || !srv.acl.default_full.load(Relaxed))
        && srv.config.get_bool("memcached-auth")
}

fn login(srv: &Node, conn: &McConn, user: &[u8], pass: &[u8]) -> bool {
    let st = &srv.mc.stats;
    McState::bump(&st.auth_cmds);
    let ok = crate::acl::memcached_login(srv, user, pass);
    if ok {
        conn.authenticated.store(true, Relaxed);
    } else {
        McState::bump(&st.auth_errors);
    }
    ok
}

/// One step of an unauthenticated text connection (memcached's `try_read_command_asciiauth`):
/// `None` = wait for more input, else (bytes consumed, close the connection).
pub fn text_auth(srv: &Node, conn: &McConn, buf: &[u8], out: &mut Vec<u8>) -> Option<(usize, bool)> {
    use ferrocache_protocol::memcache::auth::{parse_text_auth, TextAuth, AUTH_FAILURE};
    let line = |out: &mut Vec<u8>, l: &str| {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    match parse_text_auth(buf) {
        TextAuth::NeedMore => None,
        TextAuth::Close => Some((buf.len(), true)),
        TextAuth::Reply { consumed, line: l } => {
            line(out, l);
            Some((consumed, false))
        }
        TextAuth::Credentials { user, password, consumed } => {
            let ok = login(srv, conn, user, password);
            line(out, if ok { "STORED" } else { AUTH_FAILURE });
            Some((consumed, false))
        }
    }
}

/// SASL on the binary protocol (memcached -S): PLAIN only. Returns None for any other request.
pub(super) fn binary_auth(srv: &Node, conn: &McConn, req: &BinaryRequest<'_>, out: &mut Vec<u8>) -> Option<Outcome> {
    use ferrocache_protocol::memcache::auth::sasl_plain;
    match &req.command {
        BinaryCommand::SaslListMechs if auth_required(srv) || !conn.authenticated.load(Relaxed) => {
            binary::encode_version(out, req, b"PLAIN");
        }
        BinaryCommand::SaslAuth { mech, data, step } if auth_required(srv) || !conn.authenticated.load(Relaxed) => {
            let ok = !*step && *mech == b"PLAIN" && sasl_plain(data).is_some_and(|(u, p)| login(srv, conn, u, p));
            if ok {
                binary::encode_version(out, req, b"Authenticated");
            } else {
                if *step || *mech != b"PLAIN" || sasl_plain(data).is_none() {
                    McState::bump(&srv.mc.stats.auth_cmds);
                    McState::bump(&srv.mc.stats.auth_errors);
                }
                binary::encode_error(out, req, Status::AuthError);
            }
        }
        // memcached without -S.
        BinaryCommand::SaslListMechs | BinaryCommand::SaslAuth { .. } => {
            binary::encode_error(out, req, Status::UnknownCommand);
        }
        BinaryCommand::Version => return None,
        _ if !conn.authenticated.load(Relaxed) => {
            binary::encode_error(out, req, Status::AuthError);
            return Some(Outcome::Close);
        }
        _ => return None,
    }
    Some(Outcome::Continue)
}
