//! The node's client listeners for `bind` and `port`: bound at startup and rebound by CONFIG SET
//! port (Redis's changeListenPort: the new port is bound before the old one closes, so a port
//! in use fails the CONFIG SET and leaves everything as it was; connected clients stay).
//! The server crate's accept loops take each new set from `Rebind` and end the old ones.

use parking_lot::Mutex;
use std::net::{SocketAddr, TcpListener};

/// New listeners waiting for the accept loops, and the wakeup for them.
#[derive(Default)]
pub struct Rebind {
    pending: Mutex<Option<Vec<TcpListener>>>,
    pub notify: tokio::sync::Notify,
}

impl Rebind {
    /// Hand a new set of listeners to the accept loops (the current ones close).
    pub fn publish(&self, set: Vec<TcpListener>) {
        *self.pending.lock() = Some(set);
        self.notify.notify_one();
    }
    pub fn take(&self) -> Option<Vec<TcpListener>> {
        self.pending.lock().take()
    }
}

/// A listening socket with Redis's `tcp-backlog` (SO_REUSEADDR, as Redis), non-blocking.
pub fn listen(sa: SocketAddr, backlog: i64) -> std::io::Result<TcpListener> {
    let s = socket2::Socket::new(socket2::Domain::for_address(sa), socket2::Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if sa.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&sa.into())?;
    s.listen(backlog.clamp(1, i32::MAX as i64) as i32)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Bind every address of `binds` (Redis's `bind` syntax: `*`, IPv6, `-addr` optional) on
/// `port`. An optional address that cannot be bound is reported through `skipped`; `what`
/// names the listener in errors ("server", "memcached").
pub fn bind_all(
    what: &str,
    binds: &str,
    port: u16,
    backlog: i64,
    skipped: &mut dyn FnMut(SocketAddr, &std::io::Error),
) -> std::io::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for b in binds.split_whitespace() {
        let (optional, addr) = match b.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, b),
        };
        let addr = if addr == "*" { "0.0.0.0" } else { addr };
        let sa: SocketAddr =
            if addr.contains(':') { format!("[{}]:{}", addr, port) } else { format!("{}:{}", addr, port) }
                .parse()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{}: {}", addr, e)))?;
        match listen(sa, backlog) {
            Ok(l) => out.push(l),
            Err(e) if optional => skipped(sa, &e),
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("Could not create {} TCP listening socket {}: {}", what, sa, e),
                ))
            }
        }
    }
    Ok(out)
}

/// CONFIG SET port: bind the configured addresses on the new port and hand them over.
pub fn change_port(srv: &crate::Node) -> Result<(), String> {
    let cfg = &srv.config;
    let port = cfg.get_i64("port");
    let binds = cfg.get("bind").unwrap_or_else(|| "127.0.0.1".into());
    let set = bind_all("server", &binds, port as u16, cfg.get_i64("tcp-backlog"), &mut |_, _| {}).map_err(|e| {
        crate::persistence::log_line('#', &format!("Failed to change the listening port to {}: {}", port, e));
        "Unable to listen on this port".to_string()
    })?;
    srv.listen.publish(set);
    Ok(())
}
