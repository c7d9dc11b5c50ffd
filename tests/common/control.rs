//! A `ferrocache control` process for the control-plane tests: started on free ports with its
//! own data dir under CARGO_TARGET_TMPDIR, Query API calls over HTTP, and on drop kill -9 of the
//! control plane and of every node it started (their command lines name its data dir).

use super::free_port;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ControlPlane {
    child: Option<Child>,
    pub port: u16,
    /// The Sentinel-compatible port (0: not served).
    pub sentinel: u16,
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl ControlPlane {
    pub fn new(name: &str) -> ControlPlane {
        Self::build(name, &[], false)
    }

    /// With extra command-line options (e.g. `--read-timeout 2`).
    pub fn with_args(name: &str, args: &[&str]) -> ControlPlane {
        let mut cp = Self::unstarted(name, &[], false);
        cp.args = args.iter().map(|a| a.to_string()).collect();
        cp.start();
        cp
    }

    /// With extra environment variables (e.g. the SigV4 keys).
    pub fn with_env(name: &str, env: &[(&str, &str)]) -> ControlPlane {
        Self::build(name, env, false)
    }

    /// Also serving the Sentinel-compatible endpoint on a free port.
    pub fn with_sentinel(name: &str) -> ControlPlane {
        Self::build(name, &[], true)
    }

    fn build(name: &str, env: &[(&str, &str)], sentinel: bool) -> ControlPlane {
        let mut cp = Self::unstarted(name, env, sentinel);
        cp.start();
        cp
    }

    fn unstarted(name: &str, env: &[(&str, &str)], sentinel: bool) -> ControlPlane {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("control-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let sentinel = if sentinel { free_port() } else { 0 };
        ControlPlane { child: None, port: free_port(), sentinel, dir, env, args: vec![] }
    }

    /// Start the process (again, after `kill`) on the same ports and data dir.
    pub fn start(&mut self) {
        self.spawn();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Ready when the API answers HTTP and the Sentinel port answers PING: a bare TCP connect
        // could reach another process's listener that briefly holds the same port (every node
        // allocation binds a free port for a moment).
        while !(self.answers_http() && (self.sentinel == 0 || answers_ping(self.sentinel))) {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let log = std::fs::read_to_string(format!("{}.log", self.dir.display())).unwrap_or_default();
                panic!("control plane exited ({}) during start: {}", status, log);
            }
            assert!(Instant::now() < deadline, "control plane did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn(&mut self) {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(format!("{}.log", self.dir.display())).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ferrocache"))
            .args(["control", "--data-dir", self.dir.to_str().unwrap(), "--port", &self.port.to_string()])
            .args(["--sentinel-port", &self.sentinel.to_string()])
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Whether an HTTP request to the API port gets any HTTP answer (an error status counts).
    fn answers_http(&self) -> bool {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).max_idle_connections(0).build();
        match agent.get(&format!("http://127.0.0.1:{}/?Action=DescribeEvents&Version=2015-02-02", self.port)).call() {
            Ok(_) | Err(ureq::Error::Status(..)) => true,
            Err(_) => false,
        }
    }

    /// kill -9 the control plane (its nodes keep running).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// kill -9 and start again on the same ports and data dir.
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// POST a form-encoded Query request; (HTTP status, body). The Authorization header carries
    /// a signature that only a control plane without keys accepts.
    /// CreateCacheCluster and CreateReplicationGroup get `CacheNodeType=cache.t3.micro` unless
    /// the test gives one (ElastiCache requires it; an empty value sends none).
    pub fn call(&self, params: &[(&str, &str)]) -> (u16, String) {
        let mut all = vec![("Version", "2015-02-02")];
        all.extend_from_slice(params);
        let creates = params
            .iter()
            .any(|(k, v)| *k == "Action" && (*v == "CreateCacheCluster" || *v == "CreateReplicationGroup"));
        if creates && !params.iter().any(|(k, _)| *k == "CacheNodeType") {
            all.push(("CacheNodeType", "cache.t3.micro"));
        }
        let body: String = all.iter().map(|(k, v)| format!("{}={}", k, urlencode(v))).collect::<Vec<_>>().join("&");
        // A fresh connection per request: ureq's shared pool would hand a keep-alive connection
        // to a control plane killed since (kill/start tests) and fail with "connection reset"
        // (a POST is not retried on a stale pooled connection).
        let agent = ureq::AgentBuilder::new().max_idle_connections(0).build();
        let r = agent
            .post(&format!("http://127.0.0.1:{}/", self.port))
            .set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
            .set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/elasticache/aws4_request, SignedHeaders=host, Signature=0")
            .send_string(&body);
        match r {
            Ok(resp) => (resp.status(), resp.into_string().unwrap()),
            Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
            Err(e) => panic!("request failed: {}", e),
        }
    }

    /// A request that must succeed: its body.
    pub fn ok(&self, params: &[(&str, &str)]) -> String {
        let (code, body) = self.call(params);
        assert_eq!(code, 200, "{:?}: {}", params, body);
        body
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.kill();
        // Stop any node this test's control plane started (their command lines name our dir).
        let needle = self.dir.to_str().unwrap().to_string();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
                let cmd = std::fs::read(format!("/proc/{}/cmdline", pid)).unwrap_or_default();
                if String::from_utf8_lossy(&cmd).contains(&needle) {
                    unsafe { libc_kill(pid, 9) };
                }
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
            let _ = std::fs::remove_file(format!("{}.log", self.dir.display()));
        }
    }
}

/// Whether the port answers a RESP PING with +PONG.
fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 7];
    s.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// kill(2): send `sig` to `pid`.
pub fn signal(pid: i32, sig: i32) -> i32 {
    unsafe { libc_kill(pid, sig) }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{:02X}", b),
        })
        .collect()
}

/// The texts of every `<name>...</name>` element.
pub fn tags(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{}>", name), format!("</{}>", name));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let j = after.find(&close).unwrap();
        out.push(after[..j].to_string());
        rest = &after[j..];
    }
    out
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The Python venv the control-plane tests share (target/awscli-venv), with each of
/// `packages` — (the `import` statement's text that must succeed, the pip requirement) —
/// installed on first use. Its python, or None when it cannot be made (no network to PyPI, no
/// python3 venv): the caller prints SKIPPED.
pub fn shared_venv_python(packages: &[(&str, &str)]) -> Option<PathBuf> {
    // Tests run in parallel threads: one makes or updates the venv at a time.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("awscli-venv");
    let py = venv.join("bin/python");
    if !py.exists()
        && !Command::new("python3").args(["-m", "venv", venv.to_str().unwrap()]).status().is_ok_and(|s| s.success())
    {
        return None;
    }
    let has = |import: &str| {
        Command::new(&py)
            .args(["-c", &format!("import {}", import)])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    for (import, requirement) in packages {
        if !has(import) {
            let _ = Command::new(&py)
                .args(["-m", "pip", "install", "-q", requirement])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !has(import) {
                return None;
            }
        }
    }
    Some(py)
}
