//! ferrocache-server
