//! ElastiCache Auto Discovery: the `config get cluster` reply and the cluster key of older
//! engines, built from `memcached-cluster-version` / `memcached-cluster-nodes`.

use crate::node::Node;

/// The ElastiCache Auto Discovery key of engines older than 1.4.14.
pub const CLUSTER_KEY: &[u8] = b"AmazonElastiCache:cluster";

/// The Auto Discovery payload: `<version>\n<host>|<ip>|<port> ...\n` (nodes sorted by host).
pub fn cluster_payload(srv: &Node) -> Vec<u8> {
    let version = srv.config.get("memcached-cluster-version").unwrap_or_else(|| "1".into());
    let nodes = srv.config.get("memcached-cluster-nodes").unwrap_or_default();
    cluster_body(&version, &nodes)
}

/// `cluster_payload` from raw config values.
pub fn cluster_body(version: &str, nodes: &str) -> Vec<u8> {
    let mut list: Vec<&str> = nodes.split([' ', ',']).filter(|s| !s.is_empty()).collect();
    list.sort_by(|a, b| a.split('|').next().cmp(&b.split('|').next()).then(a.cmp(b)));
    let mut body = Vec::new();
    body.extend_from_slice(version.trim().as_bytes());
    body.push(b'\n');
    body.extend_from_slice(list.join(" ").as_bytes());
    body.push(b'\n');
    body
}

/// `config get cluster` reply: `CONFIG cluster 0 <bytes>\r\n<body>\r\nEND\r\n`.
pub fn encode_config_cluster(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(b"CONFIG cluster 0 ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\nEND\r\n");
}

/// ElastiCache's `config get cluster` is not a memcached command: handle it before parsing.
/// Returns the bytes consumed when `buf` starts with a complete `config ...` line.
pub fn try_config_line(srv: &Node, buf: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    if !buf.starts_with(b"config ") {
        return None;
    }
    let nl = memchr::memchr(b'\n', buf)?;
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let toks: Vec<&[u8]> = line.split(|&b| b == b' ').filter(|t| !t.is_empty()).collect();
    if toks.len() == 3 && toks[1] == b"get" && toks[2] == b"cluster" {
        encode_config_cluster(out, &cluster_payload(srv));
        return Some(nl + 1);
    }
    None
}

pub(super) fn cluster_configured(srv: &Node) -> bool {
    srv.config.get("memcached-cluster-nodes").is_some_and(|n| !n.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_payload_golden() {
        let body = cluster_body("12", "b.example|10.0.0.2|11211 a.example|10.0.0.1|11211");
        let mut out = Vec::new();
        encode_config_cluster(&mut out, &body);
        assert_eq!(
            out,
            b"CONFIG cluster 0 53\r\n12\na.example|10.0.0.1|11211 b.example|10.0.0.2|11211\n\r\nEND\r\n".to_vec()
        );
    }
}
