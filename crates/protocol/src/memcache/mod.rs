//! Memcached protocols (text, meta, binary): request parsing and reply encoding.
