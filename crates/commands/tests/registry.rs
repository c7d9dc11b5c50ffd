//! The registry the families give the node, checked against Redis 7.0.15's command metadata
//! (arity, flags, key positions, ACL categories) and the ACL's key specs.

use ferrocache_node::acl::{acl_id, keys_with_flags, KS_ACCESS, KS_DELETE, KS_INSERT, KS_UPDATE};
use ferrocache_node::command_docs::{command_flag_names, doc, redis_acl_categories};
use ferrocache_node::table::{self, flags};

/// The families' table, installed once per test process.
fn table() -> &'static table::Table {
    table::install(ferrocache_commands::registry());
    table::table()
}

#[test]
fn every_command_has_redis_acl_data() {
    let mut missing = Vec::new();
    for c in table().iter() {
        if acl_id(c).is_none() {
            missing.push(c.name);
        }
        for s in c.subcommands {
            if acl_id(s).is_none() {
                missing.push(s.name);
            }
        }
    }
    missing.sort();
    assert!(missing.is_empty(), "commands unknown to Redis's table: {:?}", missing);
}

#[test]
fn key_specs_give_redis_positions() {
    let t = table();
    let keys = |line: &str| {
        let owned = ferrocache_protocol::resp::OwnedArgs::from_slices(&line.split(' ').collect::<Vec<_>>());
        let a = owned.args();
        let base = t.lookup(&a[0]).unwrap();
        let cmd = if base.subcommands.is_empty() { base } else { table::lookup_sub(base, &a[1]).unwrap() };
        keys_with_flags(acl_id(cmd), cmd, a)
    };
    assert_eq!(keys("lmove a b left right"), vec![(1, KS_ACCESS | KS_DELETE), (2, KS_INSERT)]);
    assert_eq!(keys("mset a 1 b 2"), vec![(1, KS_UPDATE), (3, KS_UPDATE)]);
    assert_eq!(keys("eval s 2 k1 k2 a").iter().map(|k| k.0).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(keys("zunionstore d 2 a b weights 1 2").iter().map(|k| k.0).collect::<Vec<_>>(), vec![1, 3, 4]);
    assert_eq!(keys("xread count 2 streams s1 s2 0 0").iter().map(|k| k.0).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(keys("set k v get"), vec![(1, KS_ACCESS | KS_UPDATE)]);
    assert_eq!(keys("set k v"), vec![(1, KS_UPDATE)]);
}

/// The table's ACL categories against Redis's (from the metadata). The commands whose
/// categories still differ are listed (the same as tests/command_docs.rs CATEGORY_DIFFS,
/// where redis-server confirms Redis's side); categories belong to the ACL work.
#[test]
fn categories_vs_metadata() {
    // Since the ACL work (acl.rs) the table reports Redis's own categories for every command.
    const KNOWN: &[&str] = &[];
    let mut differ: Vec<String> = Vec::new();
    for c in table().iter().flat_map(|c| std::iter::once(c).chain(c.subcommands.iter())) {
        let redis = redis_acl_categories(c.name).expect("a Redis command");
        if c.categories() != redis {
            differ.push(format!("{}: ours {:?} Redis {:?}", c.name, c.categories(), redis));
        }
    }
    differ.sort();
    let names: Vec<&str> = differ.iter().map(|d| d.split(':').next().unwrap()).collect();
    assert_eq!(names, KNOWN, "{}", differ.join("\n"));
}

/// Our table agrees with Redis's metadata on arity, command flags and key positions (the
/// executor locks by the table's (first, last, step) / keys_fn).
#[test]
fn table_matches_metadata() {
    let mut bad = Vec::new();
    for c in table().iter().flat_map(|c| std::iter::once(c).chain(c.subcommands.iter())) {
        let Some(d) = doc(c) else {
            bad.push(format!("{}: not a Redis command", c.name));
            continue;
        };
        if c.arity as i64 != d.arity {
            bad.push(format!("{}: arity {} vs Redis {}", c.name, c.arity, d.arity));
        }
        let ours: Vec<&str> = command_flag_names(c);
        let redis: Vec<String> = d
            .command_flags
            .iter()
            .map(|f| f.to_lowercase())
            .filter(|f| {
                !matches!(
                    f.as_str(),
                    "sentinel" | "only_sentinel" | "protected" | "may_replicate" | "touches_arbitrary_keys"
                )
            })
            .collect();
        let mut ours_s: Vec<String> = ours.iter().filter(|f| **f != "movablekeys").map(|f| f.to_string()).collect();
        let mut redis_s = redis.clone();
        ours_s.sort();
        redis_s.sort();
        redis_s.dedup();
        if ours_s != redis_s {
            bad.push(format!("{}: flags {:?} vs Redis {:?}", c.name, ours_s, redis_s));
        }
        let ((f, l, s), movable) = d.legacy_range();
        if !c.has(flags::MOVABLE_KEYS) && (c.first_key, c.last_key, c.step) != (f, l, s) {
            bad.push(format!("{}: keys {:?} vs Redis {:?}", c.name, (c.first_key, c.last_key, c.step), (f, l, s)));
        }
        if c.has(flags::MOVABLE_KEYS) != movable {
            bad.push(format!("{}: movablekeys {} vs Redis {}", c.name, c.has(flags::MOVABLE_KEYS), movable));
        }
    }
    bad.sort();
    assert!(bad.is_empty(), "{} differences:\n{}", bad.len(), bad.join("\n"));
}
