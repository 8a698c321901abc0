//! Test support shared by every integration test: ephemeral ports, starting the
//! real `ringlb` binary with a config and waiting for its readiness line, small
//! counting TCP servers (the only home-made peers: they count or inject faults),
//! and (in `servers`) the real servers users run — nginx, redis-server,
//! PostgreSQL — on loopback; (in `load`) load that runs across reloads; (in
//! `config`) the builder of every test's TOML configuration; (in `oracle`) the
//! ringlb half of tests that compare with HAProxy; (in `syslog`) the log lines
//! both proxies send, received and masked for comparison.
#![allow(dead_code)]

pub mod clients;
pub mod config;
pub mod http;
pub mod load;
pub mod oracle;
pub mod servers;
pub mod syslog;
pub mod tls;

#[allow(unused_imports)]
pub use config::{Cfg, Proxy};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
///
/// Never the same port twice in one test binary: its tests run at once, the
/// kernel may hand a just-closed port out again, and two ringlb processes
/// binding one port with `SO_REUSEPORT` would split each other's clients.
pub fn free_port() -> u16 {
    local_listener().local_addr().unwrap().port()
}

/// A listener on an ephemeral 127.0.0.1 port no other test of this binary was
/// given: test servers listen through it. A plain `bind(0)` may be handed a
/// port [`free_port`] just gave out (and released) for a proxy that has not
/// bound it yet; the proxy's `SO_REUSEPORT` bind then fails while its readiness
/// check connects to the test server instead.
pub fn local_listener() -> TcpListener {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    for _ in 0..1000 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return l;
        }
    }
    panic!("no fresh port in 1000 tries");
}

/// Polls `f` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Is `tool` installed? A test that needs it skips loudly when it is not,
/// and fails under `CI=true` (where `.ci/run` installed it).
pub fn have(tool: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is not installed and CI=true"
        );
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

pub fn ringlb_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringlb"))
}

/// A running `ringlb` process; stopped with SIGTERM (then SIGKILL) on drop.
pub struct Ringlb {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Ringlb {
    /// Writes `toml` to a temp file and runs `ringlb run -f FILE ARGS…`, waiting
    /// (at most 10 s) for the `ringlb ready` line.
    pub fn start(toml: &str, args: &[&str]) -> Ringlb {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ringlb.toml");
        std::fs::write(&config, toml).unwrap();
        Self::start_file(dir, config, args)
    }

    pub fn start_file(dir: tempfile::TempDir, config: PathBuf, args: &[&str]) -> Ringlb {
        let mut argv: Vec<String> = vec!["run".into(), "-f".into(), config.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        Self::start_argv(dir, config, &argv)
    }

    /// As [`Ringlb::start`], with extra environment variables.
    pub fn start_env(toml: &str, args: &[&str], env: &[(&str, &str)]) -> Ringlb {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ringlb.toml");
        std::fs::write(&config, toml).unwrap();
        let mut argv: Vec<String> = vec!["run".into(), "-f".into(), config.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        Self::start_argv_env(dir, config, &argv, env)
    }

    /// Runs `ringlb ARGV…` exactly as given (HAProxy-style command lines), waiting
    /// for the `ringlb ready` line; `config` is only remembered.
    pub fn start_argv(dir: tempfile::TempDir, config: PathBuf, argv: &[String]) -> Ringlb {
        Self::start_argv_env(dir, config, argv, &[])
    }

    pub fn start_argv_env(
        dir: tempfile::TempDir,
        config: PathBuf,
        argv: &[String],
        env: &[(&str, &str)],
    ) -> Ringlb {
        let mut child = Command::new(ringlb_bin())
            .args(argv)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringlb");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.starts_with("ringlb ready") {
                    let _ = tx.send(());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let out = child.stdout.take().unwrap();
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let r = Ringlb {
            child: Some(child),
            dir,
            config,
            stderr,
        };
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            panic!("ringlb did not become ready; output:\n{}", r.output());
        }
        r
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `sig` to the process (it keeps running until it decides to exit).
    pub fn signal(&self, sig: i32) {
        if let Some(c) = self.child.as_ref() {
            ringlb::sys::signals::send(c.id(), sig).unwrap();
        }
    }

    /// The exit status if the process has ended (without waiting; asked again,
    /// the same status).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Everything ringlb printed so far (stderr and stdout lines).
    pub fn output(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// SIGTERM, then wait up to `timeout` for exit.
    pub fn stop(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = ringlb::sys::signals::send(child.id(), libc::SIGTERM);
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Ringlb {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Runs `ringlb ARGS…` to completion; returns (exit code, stdout, stderr).
pub fn ringlb_cmd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ringlb_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `text` to `name` inside `dir`, returning the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Connection counters of a test server.
#[derive(Default, Debug)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub active: AtomicU32,
    pub max_active: AtomicU32,
    pub bytes: AtomicU64,
}

/// How a test server treats each connection.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Echo everything back until EOF, then close.
    Echo,
    /// Read until EOF, then send `reply_len` bytes derived from what was read
    /// (a checksum-friendly pattern), then close.
    ReplyAfterEof,
    /// Send this server's name (`id`) on connect, then echo.
    Hello,
    /// Echo, but hold every connection open at least this long first.
    SlowEcho(Duration),
}

/// A thread-per-connection TCP server on an ephemeral loopback port that counts
/// concurrent connections exactly.
pub struct TestServer {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    pub name: String,
}

impl TestServer {
    pub fn start(name: &str, behaviour: Behaviour) -> TestServer {
        let l = local_listener();
        let addr = l.local_addr().unwrap();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let n = name.to_string();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { continue };
                let c = c.clone();
                let n = n.clone();
                c.accepted.fetch_add(1, Ordering::SeqCst);
                let now = c.active.fetch_add(1, Ordering::SeqCst) + 1;
                c.max_active.fetch_max(now, Ordering::SeqCst);
                std::thread::spawn(move || {
                    serve(&mut s, behaviour, &n, &c);
                    c.active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        TestServer {
            addr,
            counters,
            name: name.to_string(),
        }
    }

    pub fn accepted(&self) -> u64 {
        self.counters.accepted.load(Ordering::SeqCst)
    }

    pub fn max_active(&self) -> u32 {
        self.counters.max_active.load(Ordering::SeqCst)
    }
}

fn serve(s: &mut TcpStream, b: Behaviour, name: &str, c: &Counters) {
    let mut buf = vec![0u8; 65536];
    match b {
        Behaviour::Echo | Behaviour::Hello | Behaviour::SlowEcho(_) => {
            if let Behaviour::Hello = b {
                let _ = s.write_all(format!("{name}\n").as_bytes());
            }
            if let Behaviour::SlowEcho(d) = b {
                std::thread::sleep(d);
            }
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        c.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        if s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        }
        Behaviour::ReplyAfterEof => {
            let mut total = 0u64;
            let mut sum = 0u64;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Err(_) => return,
                    Ok(n) => {
                        total += n as u64;
                        sum = buf[..n]
                            .iter()
                            .fold(sum, |a, &x| a.wrapping_mul(31).wrapping_add(x as u64));
                    }
                }
            }
            c.bytes.fetch_add(total, Ordering::Relaxed);
            let _ = s.write_all(format!("got {total} bytes, sum {sum}\n").as_bytes());
        }
    }
}

/// A server address where connects hang: a listener with a backlog of 0
/// whose queue is full, so further SYNs are dropped. Held while it lives.
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: ringlb::sys::socket::Socket,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    pub fn start() -> Blackhole {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let listener = ringlb::sys::socket::Socket::listen(&addr, 0).unwrap();
        let mut fillers = Vec::new();
        for _ in 0..4 {
            if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                fillers.push(c);
            }
        }
        Blackhole {
            addr,
            _listener: listener,
            _fillers: fillers,
        }
    }
}

/// Which server answered a new connection to `port` (a `Behaviour::Hello`
/// test server says its name first).
pub fn which_server(port: u16) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    read_line(&mut c)
}

/// Listen section `app` on `port`, balancing round robin over `servers`,
/// each under its own name.
pub fn round_robin_app(port: u16, servers: &[&TestServer]) -> Proxy {
    servers.iter().fold(
        Proxy::new("app").port(port).balance("roundrobin"),
        |p, s| p.server(&s.name, s.addr),
    )
}

/// A deterministic pseudo-random byte stream (xorshift), so both ends can
/// compute what should arrive without storing it.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One line from `s` (up to `\n`), with a 5 s read timeout.
pub fn read_line(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).unwrap_or(0) == 1 {
        if b[0] == b'\n' {
            break;
        }
        out.push(b[0]);
    }
    String::from_utf8_lossy(&out).into_owned()
}
