//! COMMAND (COUNT, INFO, DOCS, LIST, GETKEYS[ANDFLAGS]) from the registry, and CONFIG
//! GET/SET/RESETSTAT/REWRITE.

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ COMMAND

pub(crate) fn command_entry(out: &mut ReplyBuf, c: &Command) {
    ferrocache_node::command_docs::reply_info(out, c)
}

pub(crate) fn sorted_commands() -> Vec<&'static Command> {
    let mut v: Vec<_> = table().iter().collect();
    v.sort_by_key(|c| c.name);
    v
}

pub(crate) fn command_all(ctx: &mut Ctx, a: Args) {
    if a.len() > 1 {
        return ctx
            .out
            .error(&format!("ERR unknown subcommand '{}'. Try COMMAND HELP.", String::from_utf8_lossy(&a[1])));
    }
    let cmds = sorted_commands();
    ctx.out.array(cmds.len());
    for c in cmds {
        command_entry(ctx.out, c);
    }
}

pub(crate) fn command_count(ctx: &mut Ctx, _a: Args) {
    ctx.out.int(table().by_name.len() as i64);
}

pub(crate) fn find_command(name: &[u8]) -> Option<&'static Command> {
    let s = String::from_utf8_lossy(name).to_lowercase();
    if let Some((parent, sub)) = s.split_once('|') {
        let p = table().lookup(parent.as_bytes())?;
        return ferrocache_node::table::lookup_sub(p, sub.as_bytes());
    }
    table().lookup(s.as_bytes())
}

pub(crate) fn command_info(ctx: &mut Ctx, a: Args) {
    if a.len() == 2 {
        return command_all(ctx, a.from(1).from(1));
    }
    ctx.out.array(a.len() - 2);
    for n in a.iter().skip(2) {
        match find_command(n) {
            Some(c) => command_entry(ctx.out, c),
            None => ctx.out.null(),
        }
    }
}

pub(crate) fn command_docs(ctx: &mut Ctx, a: Args) {
    let cmds: Vec<&'static Command> =
        if a.len() == 2 { sorted_commands() } else { a.iter().skip(2).filter_map(find_command).collect() };
    ctx.out.map(cmds.len());
    for c in cmds {
        ctx.out.bulk(c.name.as_bytes());
        ferrocache_node::command_docs::reply_docs(ctx.out, c);
    }
}

pub(crate) fn command_list(ctx: &mut Ctx, a: Args) {
    let mut filter: Option<(String, String)> = None;
    if a.len() == 5 && eq_ic(&a[2], "filterby") {
        filter = Some((String::from_utf8_lossy(&a[3]).to_lowercase(), String::from_utf8_lossy(&a[4]).to_string()));
    } else if a.len() != 2 {
        return ctx.out.error(ERR_SYNTAX);
    }
    let mut names: Vec<&str> = Vec::new();
    // commandListWithFilter: every command, then its subcommands (by full name).
    for c in sorted_commands().into_iter().flat_map(|c| std::iter::once(c).chain(c.subcommands.iter())) {
        let ok = match &filter {
            None => true,
            // No modules are loaded: a module filter matches nothing.
            Some((k, _)) if k == "module" => false,
            Some((k, v)) if k == "aclcat" => c.categories().iter().any(|x| x[1..].eq_ignore_ascii_case(v)),
            Some((k, v)) if k == "pattern" => {
                ferrocache_engine::glob::glob_match(v.as_bytes(), c.name.as_bytes(), true)
            }
            Some(_) => return ctx.out.error(ERR_SYNTAX),
        };
        if ok {
            names.push(c.name);
        }
    }
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
}

pub(crate) fn getkeys_common(ctx: &mut Ctx, a: Args, with_flags: bool) {
    let sub = a.from(2);
    let Some(c) = table().lookup(&sub[0]) else {
        return ctx.out.error("ERR Invalid command specified");
    };
    // lookupCommand: a container with more arguments must name a known subcommand.
    let c = if !c.subcommands.is_empty() && sub.len() >= 2 {
        match ferrocache_node::table::lookup_sub(c, &sub[1]) {
            Some(s) => s,
            None => return ctx.out.error("ERR Invalid command specified"),
        }
    } else {
        c
    };
    if !ferrocache_node::command_docs::has_keys(c) {
        return ctx.out.error("ERR The command has no key arguments");
    }
    if !c.arity_ok(sub.len()) {
        return ctx.out.error("ERR Invalid number of arguments specified for command");
    }
    let keys = match ferrocache_node::command_docs::getkeys(c, sub) {
        Ok(k) => k,
        Err(_) => return ctx.out.error("ERR Invalid arguments specified for command"),
    };
    ctx.out.array(keys.len());
    for (p, f) in keys {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(&sub[p]);
            ferrocache_node::command_docs::reply_key_flags(ctx.out, f);
        } else {
            ctx.out.bulk(&sub[p]);
        }
    }
}

pub(crate) fn command_getkeys(ctx: &mut Ctx, a: Args) {
    getkeys_common(ctx, a, false)
}
pub(crate) fn command_getkeysandflags(ctx: &mut Ctx, a: Args) {
    getkeys_common(ctx, a, true)
}

pub(crate) fn command_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
            "HELP",
            "    Prints this help.",
        ],
    );
}

// ------------------------------------------------------------------ CONFIG

pub(crate) fn config_get(ctx: &mut Ctx, a: Args) {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for p in a.iter().skip(2) {
        for kv in ctx.srv.config().matching(&String::from_utf8_lossy(p)) {
            if !pairs.iter().any(|x| x.0 == kv.0) {
                pairs.push(kv);
            }
        }
    }
    ctx.out.map(pairs.len());
    for (k, v) in pairs {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
}

pub(crate) fn config_set(ctx: &mut Ctx, a: Args) {
    if !a.len().is_multiple_of(2) {
        return ctx.wrong_arity();
    }
    // All-or-nothing, as Redis 7: validate every pair first.
    let mut seen: Vec<String> = vec![];
    for i in (2..a.len()).step_by(2) {
        let name = String::from_utf8_lossy(&a[i]).to_lowercase();
        let canon = ferrocache_node::config::find_spec(&name).map(|s| s.name.to_string()).unwrap_or(name.clone());
        if seen.contains(&canon) {
            return ctx.out.error(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - duplicate parameter",
                name
            ));
        }
        if ferrocache_node::config::PROTECTED.contains(&canon.as_str())
            && !allow_protected(ctx, "enable-protected-configs")
        {
            return ctx.out.error(&format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - can't set protected config",
                name
            ));
        }
        seen.push(canon);
    }
    let mut old: Vec<(String, String)> = vec![];
    for i in (2..a.len()).step_by(2) {
        let name = String::from_utf8_lossy(&a[i]).to_string();
        let val = String::from_utf8_lossy(&a[i + 1]).to_string();
        let prev = ctx.srv.config().get(&name);
        if let Err(e) = ctx.srv.config().set_runtime(&name, &val) {
            for (n, v) in old {
                let _ = ctx.srv.config().set_runtime(&n, &v);
            }
            return ctx.out.error(&e.0);
        }
        if let Some(p) = prev {
            old.push((name, p));
        }
    }
    // Redis's apply functions: a port that cannot be bound undoes the whole CONFIG SET.
    let port_changed = seen.iter().any(|n| n == "port")
        && old
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("port") && ctx.srv.config().get("port").as_deref() != Some(v));
    if port_changed {
        if let Err(e) = ferrocache_node::listeners::change_port(ctx.srv) {
            for (n, v) in old {
                let _ = ctx.srv.config().set_runtime(&n, &v);
            }
            return ctx.out.error(&format!("ERR CONFIG SET failed (possibly related to argument 'port') - {}", e));
        }
    }
    if let Err(e) = ferrocache_node::aof::config_changed(ctx, &seen) {
        return ctx.out.error(&e);
    }
    ferrocache_node::acl::config_changed(ctx.srv, &seen);
    if seen.iter().any(|n| n.starts_with("cluster-announce-")) {
        ferrocache_node::cluster::refresh_announced(ctx.srv);
    }
    // Redis's updateMaxmemory evicts at once down to the new limit (performEvictions), so the
    // evicted events are out before the reply. Inside EXEC/scripts shard locks are held: the
    // next write evicts instead.
    if seen.iter().any(|n| n == "maxmemory") && !ctx.client.in_exec {
        ferrocache_node::ensure_memory(ctx.srv, ferrocache_node::node::now_ms());
    }
    ctx.out.ok();
}

pub(crate) fn config_resetstat(ctx: &mut Ctx, _a: Args) {
    stats::reset();
    ctx.srv.keyspace().reset_stats();
    ferrocache_engine::lazyfree::reset_stats();
    let c = ctx.srv.counters();
    c.total_connections_received.store(0, Relaxed);
    c.rejected_connections.store(0, Relaxed);
    c.net_input_bytes.store(0, Relaxed);
    c.net_output_bytes.store(0, Relaxed);
    c.total_error_replies.store(0, Relaxed);
    c.pubsub_messages.store(0, Relaxed);
    c.evicted_keys.store(0, Relaxed);
    ctx.srv.slowlog().reset();
    ctx.srv.latency().reset(&[]);
    ctx.out.ok();
}

pub(crate) fn config_rewrite(ctx: &mut Ctx, _a: Args) {
    let Some(path) = ctx.srv.config().file.clone() else {
        return ctx.out.error("ERR The server is running without a config file");
    };
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut lines: Vec<String> = Vec::new();
    let mut written: Vec<&str> = Vec::new();
    let all = ctx.srv.config().all();
    // ACL users replace the old `user` lines (none are written when an aclfile is used).
    let mut user_lines = ferrocache_node::acl::config_user_lines(ctx.srv);
    for l in old.lines() {
        let t = l.trim();
        let name = t.split_whitespace().next().unwrap_or("").to_lowercase();
        if name == "user" {
            lines.extend(user_lines.take().unwrap_or_default());
            continue;
        }
        if t.starts_with('#') || name.is_empty() {
            if !t.starts_with("# Generated by CONFIG REWRITE") {
                lines.push(l.to_string());
            }
            continue;
        }
        match ferrocache_node::config::find_spec(&name) {
            Some(spec) => {
                if written.contains(&spec.name) {
                    continue;
                }
                let v = all.iter().find(|x| x.0 == spec.name).map(|x| x.1.clone()).unwrap_or_default();
                lines.push(format!("{} {}", spec.name, quote_config(spec.name, &v)));
                written.push(spec.name);
            }
            None => lines.push(l.to_string()),
        }
    }
    let mut header = false;
    for (name, v, is_default) in all.iter() {
        if *is_default || written.contains(name) {
            continue;
        }
        if !header {
            lines.push("# Generated by CONFIG REWRITE".into());
            header = true;
        }
        lines.push(format!("{} {}", name, quote_config(name, v)));
    }
    if let Some(u) = user_lines.take().filter(|u| !u.is_empty()) {
        if !header {
            lines.push("# Generated by CONFIG REWRITE".into());
        }
        lines.extend(u);
    }
    let mut text = lines.join("\n");
    text.push('\n');
    let tmp = path.with_extension("tmp-rewrite");
    if let Err(e) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path)) {
        return ctx.out.error(&format!("ERR Rewriting config file: {}", e));
    }
    ctx.out.ok();
}

pub(crate) fn quote_config(name: &str, v: &str) -> String {
    if let Some(spec) = ferrocache_node::config::find_spec(name) {
        if matches!(spec.kind, ferrocache_node::config::Kind::Memory) {
            if let Ok(n) = v.parse::<i64>() {
                return ferrocache_node::config::format_memory_for_rewrite(n);
            }
        }
    }
    if name == "save" || name == "bind" || name == "client-output-buffer-limit" {
        if v.is_empty() {
            return "\"\"".into();
        }
        return v.to_string();
    }
    if v.is_empty() || v.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

pub(crate) fn config_help(ctx: &mut Ctx, _a: Args) {
    help(
        ctx.out,
        &[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Prints this help.",
        ],
    );
}
