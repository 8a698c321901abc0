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
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
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
                .expect("redis-server (Debian package redis-server) must be installed");
            let up = wait_until(Duration::from_secs(10), || {
                redis_ping(port) || matches!(child.try_wait(), Ok(Some(_)))
            });
            if up && redis_ping(port) {
                return RedisServer {
                    port,
                    child,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }
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
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("www");
        for (p, text) in files {
            let f = root.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        }
        for _ in 0..5 {
            let port = free_port();
            let conf = dir.path().join("nginx.conf");
            std::fs::write(
                &conf,
                format!(
                    "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                     events {{ worker_connections 256; }}\n\
                     http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
                     server {{ listen 127.0.0.1:{port}; root {r}; }} }}\n",
                    d = dir.path().display(),
                    r = root.display()
                ),
            )
            .unwrap();
            let mut child = Command::new("nginx")
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&conf)
                .args(["-g", "daemon off;"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx (Debian package nginx) must be installed");
            let up = wait_until(Duration::from_secs(10), || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
                    || matches!(child.try_wait(), Ok(Some(_)))
            });
            if up && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Nginx {
                    port,
                    root,
                    child,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("nginx did not start");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
