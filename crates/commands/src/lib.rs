//! ferrocache-commands
