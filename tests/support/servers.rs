//! Real servers on loopback for integration tests — redis-server (and, as the
//! suite grows, nginx and PostgreSQL) — each on an ephemeral port in its own temp
//! directory, killed on drop. Readiness is checked by talking to the server, with
//! a bounded wait.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_until};

/// A `redis-server` on 127.0.0.1 with persistence off.
pub struct RedisServer {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// `extra` are further redis-server arguments, e.g. `["--replicaof", "127.0.0.1", "6379"]`.
    pub fn start(extra: &[&str]) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let (port, child) = start_on_a_free_port("redis-server", redis_ping, |port| {
            Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(dir.path())
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (Debian package redis-server) must be installed")
        });
        RedisServer {
            port,
            child,
            _dir: dir,
        }
    }

    /// `total_commands_processed` in the server's own `INFO stats`.
    pub fn commands_processed(&self) -> u64 {
        let info = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "INFO", "stats"])
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap()
    }
}

/// `redis-cli -p PORT ARGS…` over plain TCP: its stdout and stderr, each
/// trimmed, joined.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
        + String::from_utf8_lossy(&out.stderr).trim()
}

/// `redis-benchmark` to `port` (`extra` first, e.g. TLS options): GET and
/// SET, 20000 requests each from 50 clients pipelining 4. Asserts that it
/// succeeded, printed no error and reported both tests.
pub fn redis_benchmark(port: u16, extra: &[&str]) {
    let out = Command::new("redis-benchmark")
        .args(extra)
        .args(["-p", &port.to_string(), "-t", "get,set", "-n", "20000"])
        .args(["-c", "50", "-P", "4", "--csv"])
        .output()
        .unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "redis-benchmark failed: {csv}\n{stderr}"
    );
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
    for t in ["\"SET\"", "\"GET\""] {
        assert!(csv.lines().any(|l| l.starts_with(t)), "{csv}");
    }
}

/// Runs `spawn(port)` on a fresh port until `up(port)` holds (at most 10 s a
/// try, less if the process exits: another process may take the port between
/// `free_port` and the server's bind); five tries, then panics.
fn start_on_a_free_port(
    what: &str,
    up: impl Fn(u16) -> bool,
    mut spawn: impl FnMut(u16) -> Child,
) -> (u16, Child) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(port);
        let ready = wait_until(Duration::from_secs(10), || {
            up(port) || matches!(child.try_wait(), Ok(Some(_)))
        });
        if ready && up(port) {
            return (port, child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("{what} did not start");
}

/// Waits (bounded) until something accepts connections on 127.0.0.1:`port`.
fn listening(port: u16, timeout: Duration) -> bool {
    wait_until(timeout, || TcpStream::connect(("127.0.0.1", port)).is_ok())
}

fn redis_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut b = [0u8; 7];
    s.read_exact(&mut b).is_ok() && &b == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An nginx serving `root` on 127.0.0.1 (temp prefix; workers run as root so they
/// can read the test's temp files).
pub struct Nginx {
    pub port: u16,
    pub root: std::path::PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// `files` are (relative path, content) pairs created under the root.
    pub fn start(files: &[(&str, &str)]) -> Nginx {
        Self::start_with(files, |port, root| {
            format!("listen 127.0.0.1:{port}; root {};", root.display())
        })
    }

    /// As [`Nginx::start`], with the `server { … }` block's directives written
    /// by `server(port, root)` (a `listen` on that port included).
    pub fn start_with(
        files: &[(&str, &str)],
        server: impl Fn(u16, &std::path::Path) -> String,
    ) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        for (p, text) in files {
            let f = root.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        }
        let accepts = |port: u16| TcpStream::connect(("127.0.0.1", port)).is_ok();
        let (port, child) = start_on_a_free_port("nginx", accepts, |port| {
            let conf = dir.path().join("nginx.conf");
            std::fs::write(
                &conf,
                format!(
                    "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                     events {{ worker_connections 256; }}\n\
                     http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
                     server {{ {srv} }} }}\n",
                    d = dir.path().display(),
                    srv = server(port, &root)
                ),
            )
            .unwrap();
            Command::new("nginx")
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf)
                .args(["-g", "daemon off;"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx (Debian package nginx) must be installed")
        });
        Nginx {
            port,
            root,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM is nginx's fast shutdown: the master stops its workers too
        // (SIGKILL would leave a worker holding the port).
        let _ = ringlb::sys::signals::send(self.child.id(), libc::SIGTERM);
        let port = self.port;
        if !wait_until(Duration::from_secs(5), || {
            TcpStream::connect(("127.0.0.1", port)).is_err()
        }) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A throwaway PostgreSQL cluster on 127.0.0.1 (`trust` auth), run as the
/// `postgres` user from Debian's postgresql package.
pub struct Postgres {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn pg_bin(name: &str) -> std::path::PathBuf {
    let base = std::path::Path::new("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(base)
        .expect("postgresql installed")
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    versions
        .last()
        .expect("a postgresql version")
        .join("bin")
        .join(name)
}

impl Postgres {
    /// initdb only; `start` runs the server.
    pub fn init() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres {
            port: free_port(),
            child: None,
            dir,
        }
    }

    pub fn start(&mut self) {
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            listening(self.port, Duration::from_secs(20)),
            "postgres did not start"
        );
    }

    /// Kills the postmaster (SIGKILL; its backends exit when it is gone).
    pub fn kill(&mut self) {
        let pidfile = self.dir.path().join("data").join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<u32>().ok())
        {
            let _ = ringlb::sys::signals::send(pid, libc::SIGKILL);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let port = self.port;
        assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(
            ("127.0.0.1", port)
        )
        .is_err()));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
    }
}

/// A throwaway MariaDB (MySQL protocol) server on 127.0.0.1, from Debian's
/// mariadb-server package.
pub struct MariaDb {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl MariaDb {
    pub fn init() -> MariaDb {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mariadb-install-db")
            .arg("--user=root")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .output()
            .expect("mariadb-install-db (Debian package mariadb-server)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        MariaDb {
            port: free_port(),
            child: None,
            dir,
        }
    }

    pub fn start(&mut self) {
        let d = self.dir.path();
        let child = Command::new("mariadbd")
            .arg("--user=root")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            listening(self.port, Duration::from_secs(30)),
            "mariadbd did not start"
        );
    }
}

impl MariaDb {
    /// Runs SQL as root over the unix socket.
    pub fn sql(&self, q: &str) {
        let out = Command::new("mariadb")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("sock").display()
            ))
            .args(["-u", "root", "-e", q])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{q}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A haproxy.cfg `defaults` section (five lines): `mode`, `timeout connect`,
/// and `data` as both `timeout client` and `timeout server`.
pub fn haproxy_defaults(mode: &str, connect: &str, data: &str) -> String {
    format!(
        "defaults\n    mode {mode}\n    timeout connect {connect}\n    timeout client {data}\n    timeout server {data}\n"
    )
}

/// The installed HAProxy (Debian's `haproxy`), run in the foreground (`-db`) with
/// a config the test writes, as the oracle for behaviour ringlb must match. Its
/// stdout/stderr (where `log stdout` lines go) are collected.
pub struct Haproxy {
    child: Child,
    out: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts `haproxy -db -f CFG` and waits (bounded) until every port in
    /// `ports` accepts.
    pub fn start(cfg: &str, ports: &[u16]) -> Haproxy {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let mut child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("haproxy (Debian package haproxy) must be installed");
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    out.lock().unwrap().push(line);
                }
            });
        }
        let h = Haproxy {
            child,
            out,
            _dir: dir,
        };
        assert!(
            ports.iter().all(|&p| listening(p, Duration::from_secs(10))),
            "haproxy did not listen; output:\n{}",
            h.output().join("\n")
        );
        h
    }

    pub fn output(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
