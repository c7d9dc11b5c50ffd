//! Wire protocols: RESP2/RESP3 and memcached text/meta/binary. Parsing and encoding only, no IO.
pub mod memcache;
pub mod resp;
