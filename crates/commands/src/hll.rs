//! hll commands (node part 2).

use crate::table::Command;

pub static COMMANDS: &[Command] = &[];
