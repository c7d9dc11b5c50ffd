//! The command families: one file per family, each a `COMMANDS` list of its commands (name,
//! arity, flags, key positions, handler). `registry()` hands them, with the commands the node
//! core implements itself (replication, transactions, cluster),
//! to `Node::new`; the node never imports this crate.
// Helpers return a typed `CommandError`; the handler writes it (`Ctx::fail`, `out.fail`,
// `or_reply`), so no helper replies on its own.
#![allow(clippy::type_complexity)]

pub mod acl;
pub mod bits;
pub mod connection;
pub mod geo;
pub mod hashes;
pub mod hll;
pub mod keys;
pub mod ldouble;
pub mod lists;
pub mod migrate;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server_cmds;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod zsets;
pub mod zsets_args;

use ferrocache_node::table::Registry;

/// Every command family, for `Node::new`.
pub fn registry() -> Registry {
    Registry(vec![
        strings::COMMANDS,
        bits::COMMANDS,
        keys::COMMANDS,
        migrate::COMMANDS,
        hashes::COMMANDS,
        connection::COMMANDS,
        server_cmds::COMMANDS,
        pubsub::COMMANDS,
        ferrocache_node::transactions::COMMANDS,
        lists::COMMANDS,
        sets::COMMANDS,
        zsets::COMMANDS,
        hll::COMMANDS,
        geo::COMMANDS,
        streams::COMMANDS,
        sort::COMMANDS,
        scripting::COMMANDS,
        persistence::COMMANDS,
        replication::COMMANDS,
        acl::COMMANDS,
        ferrocache_node::cluster::COMMANDS,
    ])
}
