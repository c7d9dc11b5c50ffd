//! The `ferrocache` binary: `ferrocache server [CONFIG_FILE] [--option value ...]`.

use ferrocache_engine::memory::CountingAlloc;
use ferrocache_server::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc(std::alloc::System);

const USAGE: &str = "Usage: ferrocache server [/path/to/ferrocache.conf] [--option value ...]
       ferrocache server --port 7777
       ferrocache server /etc/redis/redis.conf --loglevel verbose
       ferrocache control [--data-dir DIR] [--port 8080] [--bind 127.0.0.1] [--sentinel-port 26379] [--read-timeout 20]
       ferrocache cluster create|describe|modify|delete|failover|events ... (--help)
       ferrocache --version

Options are Redis's configuration directives (port, bind, requirepass, maxmemory,
maxmemory-policy, databases, threads, ...), in a redis.conf-syntax file or as --name value.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(|s| s.as_str()) {
        Some("server") => server(&args[1..]),
        Some("control") => control(&args[1..]),
        Some("cluster") => ExitCode::from(ferrocache_control::cli::main(&args[1..]) as u8),
        Some("-v") | Some("--version") | Some("version") => {
            println!(
                "ferrocache {} (redis_version={})",
                env!("CARGO_PKG_VERSION"),
                ferrocache_node::node::REDIS_VERSION
            );
            ExitCode::SUCCESS
        }
        Some("-h") | Some("--help") | Some("help") | None => {
            println!("{}", USAGE);
            if args.is_empty() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Some(other) => {
            eprintln!("Unknown command '{}'.\n{}", other, USAGE);
            ExitCode::FAILURE
        }
    }
}

/// Parse `[CONFIG_FILE] [--name value ...]` into a Config (Redis's rules: a file first, then
/// command-line options, which win).
fn build_config(args: &[String]) -> Result<Config, String> {
    let mut i = 0;
    let mut file = None;
    if let Some(first) = args.first() {
        if !first.starts_with("--") {
            file = Some(PathBuf::from(first));
            i = 1;
        }
    }
    let file = file.map(|f| std::fs::canonicalize(&f).unwrap_or(f));
    let cfg = Config::new(file.clone());
    if let Some(f) = &file {
        cfg.load_file(f)?;
    }
    while i < args.len() {
        let a = &args[i];
        let Some(name) = a.strip_prefix("--") else {
            return Err(format!(
                "\n*** FATAL CONFIG ERROR ***\nUnexpected argument '{}' (options are given as --name value)",
                a
            ));
        };
        let mut vals = Vec::new();
        i += 1;
        while i < args.len()
            && !(args[i].starts_with("--")
                && args[i].len() > 2
                && !args[i][2..].starts_with(|c: char| c.is_ascii_digit()))
        {
            vals.push(args[i].clone());
            i += 1;
        }
        if vals.is_empty() && name != "save" {
            return Err(format!("\n*** FATAL CONFIG ERROR ***\nOption '--{}' needs a value", name));
        }
        if vals.len() == 1 && vals[0].is_empty() && name == "save" {
            vals.clear();
            vals.push(String::new());
        }
        cfg.set_startup(name, &vals).map_err(|e| {
            format!("\n*** FATAL CONFIG ERROR ***\nOption '--{} {}' (command line): {}", name, vals.join(" "), e)
        })?;
    }
    Ok(cfg)
}

fn server(args: &[String]) -> ExitCode {
    let cfg = match build_config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", e);
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = ferrocache_server::memcached::apply_engine_defaults(&cfg) {
        eprintln!("{}", e);
        return ExitCode::FAILURE;
    }
    let memcached_only = cfg.get("engine").as_deref() == Some("memcached");
    let dir = cfg.get("dir").unwrap_or_else(|| "./".into());
    if dir != "./" {
        if let Err(e) = std::env::set_current_dir(&dir) {
            eprintln!("Can't chdir to '{}': {}", dir, e);
            return ExitCode::FAILURE;
        }
    }
    ferrocache_server::init_log(&cfg);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = match cfg.get_i64("threads") {
        n if n > 0 => n as usize,
        _ => cores,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(threads).enable_all();
    // Connections made readable by one poll run in the order their data arrived (see
    // .cargo/config.toml): without this, the last one woken runs first.
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    let rt = builder.build().expect("tokio runtime");
    let srv = ferrocache_node::Node::new(cfg, threads, ferrocache_commands::registry());
    rt.block_on(async move {
        let mc_listeners = match ferrocache_server::memcached::bind_memcached(srv.config()).await {
            Ok(l) => l,
            Err(e) => {
                ferrocache_server::log('#', &e.to_string());
                return ExitCode::FAILURE;
            }
        };
        let resp = if memcached_only { Ok(Vec::new()) } else { ferrocache_server::bind_all(srv.config()).await };
        let listeners = match resp {
            Ok(l) if !l.is_empty() || !mc_listeners.is_empty() => l,
            Ok(_) => {
                ferrocache_server::log('#', "Failed listening on any address, exiting.");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                ferrocache_server::log('#', &e.to_string());
                return ExitCode::FAILURE;
            }
        };
        ferrocache_server::log(
            '*',
            &format!(
                "Ferrocache {} (Redis {} compatible) started, pid={}, threads={}",
                env!("CARGO_PKG_VERSION"),
                ferrocache_node::node::REDIS_VERSION,
                std::process::id(),
                threads
            ),
        );
        let addrs: Vec<String> = listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.to_string()).collect();
        let pidfile = srv.config().get("pidfile").unwrap_or_default();
        if !pidfile.is_empty() {
            if let Err(e) = std::fs::write(&pidfile, format!("{}\n", std::process::id())) {
                ferrocache_server::log('#', &format!("Failed to write PID file: {}", e));
            }
        }
        ferrocache_server::spawn_shutdown_tasks(&srv);
        let listeners = match ferrocache_server::load_data_serving(&srv, listeners).await {
            ferrocache_server::Loaded::Ready(l) => l,
            ferrocache_server::Loaded::Failed => return ExitCode::FAILURE,
            ferrocache_server::Loaded::Shutdown => ferrocache_server::exit_now().await,
        };
        if let Err(e) = ferrocache_node::cluster::link::start(&srv).await {
            ferrocache_server::log('#', &format!("Could not bind the cluster bus port: {}", e));
            return ExitCode::FAILURE;
        }
        let mc_addrs: Vec<String> =
            mc_listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.to_string()).collect();
        if !mc_addrs.is_empty() {
            ferrocache_server::log('*', &format!("Ready to accept memcached connections on {}", mc_addrs.join(", ")));
            let needs_pass = srv.config().hot.requirepass_set.load(std::sync::atomic::Ordering::Relaxed)
                || !srv.acl().default_full.load(std::sync::atomic::Ordering::Relaxed);
            if ferrocache_node::memcached::auth_required(&srv) {
                ferrocache_server::log(
                    '*',
                    "memcached clients must log in as an ACL user (SASL PLAIN on the binary protocol, \
                     `set <key> 0 0 <n>` with \"user password\" on the text protocol)",
                );
            } else if needs_pass {
                ferrocache_server::log(
                    '#',
                    "WARNING: memcached-auth is no: the memcached port serves every client without \
                     authentication although the node requires a password",
                );
            }
        }
        ferrocache_server::memcached::spawn(srv.clone(), mc_listeners);
        ferrocache_server::log('*', &format!("Ready to accept connections on {}", addrs.join(", ")));
        ferrocache_server::run(srv, listeners).await;
        ExitCode::SUCCESS
    })
}

/// `ferrocache control`: the control plane serving ElastiCache's API (see docs/control-plane.md).
fn control(args: &[String]) -> ExitCode {
    let mut opts = ferrocache_control::Options {
        data_dir: PathBuf::from("ferrocache-control"),
        port: 8080,
        bind: "127.0.0.1".into(),
        access_key_id: std::env::var("FERROCACHE_CONTROL_ACCESS_KEY_ID").ok().filter(|s| !s.is_empty()),
        secret_access_key: std::env::var("FERROCACHE_CONTROL_SECRET_ACCESS_KEY").ok().filter(|s| !s.is_empty()),
        sentinel_port: 26379,
        read_timeout: std::time::Duration::from_secs(20),
    };
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1).cloned();
        match (args[i].as_str(), val) {
            ("--data-dir", Some(v)) => opts.data_dir = PathBuf::from(v),
            ("--port", Some(v)) => match v.parse() {
                Ok(p) => opts.port = p,
                Err(_) => {
                    eprintln!("Invalid --port '{}'", v);
                    return ExitCode::FAILURE;
                }
            },
            ("--bind", Some(v)) => opts.bind = v,
            ("--sentinel-port", Some(v)) => match v.parse() {
                Ok(p) => opts.sentinel_port = p,
                Err(_) => {
                    eprintln!("Invalid --sentinel-port '{}'", v);
                    return ExitCode::FAILURE;
                }
            },
            ("--read-timeout", Some(v)) => match v.parse::<f64>() {
                Ok(s) if s > 0.0 => opts.read_timeout = std::time::Duration::from_secs_f64(s),
                _ => {
                    eprintln!("Invalid --read-timeout '{}'", v);
                    return ExitCode::FAILURE;
                }
            },
            ("-h" | "--help", _) => {
                println!("Usage: ferrocache control [--data-dir DIR] [--port 8080] [--bind 127.0.0.1] [--sentinel-port 26379] [--read-timeout 20]\n\nServes ElastiCache's API (AWS Query protocol, 2015-02-02); see docs/control-plane.md.\n--sentinel-port serves a Sentinel-compatible endpoint over the replication groups (0: off).\n--read-timeout: seconds a client may take to send a request's headers, and again its body.\nFERROCACHE_CONTROL_ACCESS_KEY_ID / FERROCACHE_CONTROL_SECRET_ACCESS_KEY turn on SigV4 verification.");
                return ExitCode::SUCCESS;
            }
            (other, _) => {
                eprintln!("Unknown or incomplete option '{}'.\nUsage: ferrocache control [--data-dir DIR] [--port 8080] [--bind 127.0.0.1] [--sentinel-port 26379] [--read-timeout 20]", other);
                return ExitCode::FAILURE;
            }
        }
        i += 2;
    }
    match ferrocache_control::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrocache control: {}", e);
            ExitCode::FAILURE
        }
    }
}
