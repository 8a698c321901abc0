//! Health checks through the real binary and real servers: the tutorial's nginx
//! scenario (rename healthCheck.html → DOWN, traffic to the other server only,
//! restore → UP) across two shards; Redis master/replica with the `role:master`
//! tcp-check, including failover with `shutdown-sessions`; a server that never
//! answers; every server down → new sessions closed at once.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::servers::{Nginx, RedisServer};
use support::*;

fn log_has(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path)
        .map(|t| t.contains(needle))
        .unwrap_or(false)
}

/// One HTTP GET through the proxy; returns the body.
fn get(port: u16, path: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

/// Listen `app` on `port` (the section given), logging to `log`.
fn config(port: u16, log: &Path, app: Proxy) -> Cfg {
    Cfg::new()
        .log_with(log.display(), "level = \"info\"")
        .mode("tcp")
        .timeouts("1s", "10s", "10s")
        .timeout("check", "500ms")
        .listen(app.port(port))
}

/// Server keys: checked every 200 ms, rise 2, fall 2.
const CHECK_200MS: &str = r#"check = true, inter = "200ms", rise = 2, fall = 2"#;
/// Server keys: checked every 100 ms, fall 1.
const CHECK_100MS_FALL_1: &str = r#"check = true, inter = "100ms", fall = 1"#;

#[test]
fn tutorial_http_check_marks_a_server_down_and_up_again() {
    let a = Nginx::start(&[("healthCheck.html", "ok"), ("who.txt", "A")]);
    let b = Nginx::start(&[("healthCheck.html", "ok"), ("who.txt", "B")]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ringlb.log");
    let backend = Proxy::new("app")
        .check(r#"type = "http", method = "GET", uri = "/healthCheck.html""#)
        .server_with("a", format!("127.0.0.1:{}", a.port), CHECK_200MS)
        .server_with("b", format!("127.0.0.1:{}", b.port), CHECK_200MS);
    let _lb = Ringlb::start(&config(port, &log, backend).build(), &["--shards", "2"]);
    let seen: std::collections::HashSet<String> = (0..10).map(|_| get(port, "/who.txt")).collect();
    assert_eq!(
        seen.len(),
        2,
        "both servers take traffic from the start: {seen:?}"
    );
    std::fs::rename(a.root.join("healthCheck.html"), a.root.join("gone.html")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || log_has(
            &log,
            "Server app/a is DOWN, reason: Layer7 wrong status, code: 404"
        )),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(log_has(&log, "1 active and 0 backup servers left."));
    // Sessions through both shards now reach only b.
    for _ in 0..30 {
        assert_eq!(get(port, "/who.txt"), "B");
    }
    std::fs::rename(a.root.join("gone.html"), a.root.join("healthCheck.html")).unwrap();
    assert!(wait_until(Duration::from_secs(10), || log_has(
        &log,
        "Server app/a is UP, reason: Layer7 check passed, code: 200"
    )));
    assert!(log_has(&log, "2 active and 0 backup servers online."));
    let seen: std::collections::HashSet<String> = (0..10).map(|_| get(port, "/who.txt")).collect();
    assert_eq!(seen.len(), 2, "a takes traffic again: {seen:?}");
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_role_master_check_follows_a_failover_and_shuts_old_sessions() {
    let m = RedisServer::start(&[]);
    let r = RedisServer::start(&["--replicaof", "127.0.0.1", &m.port.to_string()]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ringlb.log");
    let backend = Proxy::new("app")
        .balance("first")
        .extra(r#"on-marked-down = "shutdown-sessions""#)
        .check(
            r#"type = "tcp-check", steps = [
  { send = "PING\\r\\n" }, { expect = "string +PONG" },
  { send = "info replication\\r\\n" }, { expect = "string role:master" },
  { send = "QUIT\\r\\n" }, { expect = "string +OK" },
]"#,
        )
        .server_with("r1", format!("127.0.0.1:{}", r.port), CHECK_200MS)
        .server_with("r2", format!("127.0.0.1:{}", m.port), CHECK_200MS);
    let _lb = Ringlb::start(&config(port, &log, backend).build(), &["--shards", "2"]);
    // r1 (the replica) is listed first but fails the role check.
    assert!(
        wait_until(Duration::from_secs(10), || log_has(
            &log,
            "Server app/r1 is DOWN"
        )),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for _ in 0..10 {
        assert!(redis_cli(port, &["INFO", "replication"]).contains("role:master"));
    }
    // A session open on the old master, to be shut when it is marked down.
    let mut held = TcpStream::connect(("127.0.0.1", port)).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    held.write_all(b"PING\r\n").unwrap();
    let mut b = [0u8; 7];
    held.read_exact(&mut b).unwrap();
    // Failover: promote the replica, demote the old master.
    assert!(redis_cli(r.port, &["REPLICAOF", "NO", "ONE"]).contains("OK"));
    assert!(redis_cli(m.port, &["REPLICAOF", "127.0.0.1", &r.port.to_string()]).contains("OK"));
    assert!(wait_until(Duration::from_secs(10), || log_has(
        &log,
        "Server app/r2 is DOWN"
    ) && log_has(
        &log,
        "Server app/r1 is UP"
    )));
    // shutdown-sessions: the proxy closes it (EOF or reset), our 10 s read
    // timeout must not be what ends the read.
    let mut rest = Vec::new();
    match held.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("session to the old master was not closed: {e}"),
    }
    for _ in 0..10 {
        let info = redis_cli(port, &["INFO", "replication"]);
        assert!(info.contains("role:master"), "{info}");
    }
}

#[test]
fn a_server_that_never_answers_goes_down_after_fall_timeouts() {
    // Bound by the kernel's choice: no window in which another test takes it.
    let silent = support::local_listener();
    let addr = silent.local_addr().unwrap();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ringlb.log");
    let backend = Proxy::new("app")
        .check(r#"type = "http", uri = "/""#)
        .server_with("silent", addr, r#"check = true, inter = "200ms", fall = 2"#);
    let _lb = Ringlb::start(
        &config(port, &log, backend)
            .timeout("check", "300ms")
            .build(),
        &[],
    );
    assert!(
        wait_until(Duration::from_secs(10), || log_has(
            &log,
            "Server app/silent is DOWN, reason: Layer7 timeout"
        )),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // A separate event, written a moment after the DOWN line.
    assert!(wait_until(Duration::from_secs(5), || log_has(
        &log,
        "backend app has no server available!"
    )));
}

#[test]
fn with_every_server_down_new_sessions_are_closed_at_once() {
    let (d1, d2) = (free_port(), free_port());
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ringlb.log");
    let backend = Proxy::new("app")
        .server_with("d1", format!("127.0.0.1:{d1}"), CHECK_100MS_FALL_1)
        .server_with("d2", format!("127.0.0.1:{d2}"), CHECK_100MS_FALL_1);
    let _lb = Ringlb::start(&config(port, &log, backend).build(), &["--shards", "2"]);
    assert!(wait_until(Duration::from_secs(10), || log_has(
        &log,
        "backend app has no server available!"
    )));
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let t0 = Instant::now();
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 1];
        match c.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("session not closed: {other:?}"),
        }
        slowest = slowest.max(t0.elapsed());
    }
    // No connect attempt, no retry pause: closing is immediate. The bound is
    // generous so a loaded machine cannot fail it; typical is well under 10 ms.
    assert!(
        slowest < Duration::from_millis(500),
        "slowest close took {slowest:?}"
    );
}

#[test]
fn pgsql_check_against_a_real_postgresql() {
    let mut pg = support::servers::Postgres::init();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ringlb.log");
    let backend = Proxy::new("app")
        .check(r#"type = "pgsql", user = "postgres""#)
        .server_with("pg", format!("127.0.0.1:{}", pg.port), CHECK_200MS);
    let _lb = Ringlb::start(&config(port, &log, backend).build(), &[]);
    // Not running yet: DOWN on connection errors.
    assert!(
        wait_until(Duration::from_secs(10), || log_has(
            &log,
            "Server app/pg is DOWN, reason: Layer4 connection problem"
        )),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    pg.start();
    assert!(
        wait_until(Duration::from_secs(10), || log_has(
            &log,
            "Server app/pg is UP, reason: Layer7 check passed"
        )),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Traffic reaches the real server through the proxy.
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-tAc",
            "select 40 + 2",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pg.kill();
    let downs = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("Server app/pg is DOWN")
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(10), || downs() == 2),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[test]
fn a_backup_takes_over_when_every_active_server_is_down() {
    let spare = TestServer::start("spare", Behaviour::Hello);
    let active = Nginx::start(&[("who.txt", "active")]);
    let dead = free_port();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ringlb.log");
    let backend = Proxy::new("app")
        .extra("retries = 0")
        .server_with("dead", format!("127.0.0.1:{dead}"), CHECK_100MS_FALL_1)
        .server_with(
            "alive",
            format!("127.0.0.1:{}", active.port),
            CHECK_100MS_FALL_1,
        )
        .server_with("spare", spare.addr, "backup = true");
    let _lb = Ringlb::start(&config(port, &log, backend).build(), &["--shards", "2"]);
    assert!(wait_until(Duration::from_secs(10), || log_has(
        &log,
        "Server app/dead is DOWN"
    )));
    // One active server left: it takes everything, the backup nothing.
    for _ in 0..10 {
        assert_eq!(get(port, "/who.txt"), "active");
    }
    assert_eq!(spare.accepted(), 0);
    drop(active);
    assert!(wait_until(Duration::from_secs(10), || log_has(
        &log,
        "Server app/alive is DOWN"
    )));
    assert!(
        log_has(&log, "0 active and 1 backup servers left."),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for _ in 0..10 {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(read_line(&mut c), "spare");
    }
    assert_eq!(spare.accepted(), 10);
}

#[test]
fn mysql_check_against_a_real_mariadb() {
    let mut db = support::servers::MariaDb::init();
    let dir = tempfile::tempdir().unwrap();
    let backend = |check: &str| {
        Proxy::new("app").check(check).server_with(
            "db",
            format!("127.0.0.1:{}", db.port),
            r#"check = true, inter = "200ms", rise = 2, fall = 1"#,
        )
    };
    // Handshake only, and a login (HAProxy's mysql-check with `user`).
    let log1 = dir.path().join("handshake.log");
    let log2 = dir.path().join("login.log");
    let _lb1 = Ringlb::start(
        &config(free_port(), &log1, backend("type = \"mysql\"")).build(),
        &[],
    );
    let _lb2 = Ringlb::start(
        &config(
            free_port(),
            &log2,
            backend("type = \"mysql\", user = \"haproxy_check\""),
        )
        .build(),
        &[],
    );
    for log in [&log1, &log2] {
        assert!(wait_until(Duration::from_secs(10), || log_has(
            log,
            "Server app/db is DOWN, reason: Layer4 connection problem"
        )));
    }
    db.start();
    // The passwordless check user HAProxy's manual recommends for mysql-check.
    db.sql("CREATE USER 'haproxy_check'@'127.0.0.1'; CREATE USER 'haproxy_check'@'localhost';");
    for log in [&log1, &log2] {
        assert!(
            wait_until(Duration::from_secs(15), || log_has(
                log,
                "Server app/db is UP, reason: Layer7 check passed"
            )),
            "{}: {}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

/// `on-marked-up shutdown-backup-sessions`: while the active server is DOWN
/// sessions go to the backup; when it is marked UP again, those are closed
/// (their clients reconnect to the active one). Without the option they stay.
#[test]
fn on_marked_up_shuts_the_backup_sessions() {
    for shut in [true, false] {
        let backup = TestServer::start("backup", Behaviour::Echo);
        let active_port = free_port();
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ringlb.log");
        let backend = Proxy::new("app")
            .extra(if shut {
                "on-marked-up = \"shutdown-backup-sessions\""
            } else {
                ""
            })
            .server_with(
                "a",
                format!("127.0.0.1:{active_port}"),
                r#"check = true, inter = "100ms", rise = 1, fall = 1"#,
            )
            .server_with("b", backup.addr, "backup = true");
        let _lb = Ringlb::start(&config(port, &log, backend).build(), &["--shards", "2"]);
        assert!(wait_until(Duration::from_secs(10), || log_has(
            &log,
            "Server app/a is DOWN"
        )));
        // Sessions on the backup, echoing.
        let mut held: Vec<TcpStream> = (0..4)
            .map(|_| {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                c.write_all(b"x").unwrap();
                let mut b = [0u8; 1];
                c.read_exact(&mut b).unwrap();
                c
            })
            .collect();
        // The active server comes up.
        let _active = std::net::TcpListener::bind(("127.0.0.1", active_port)).unwrap();
        assert!(wait_until(Duration::from_secs(10), || log_has(
            &log,
            "Server app/a is UP"
        )));
        for c in &mut held {
            if shut {
                let mut rest = Vec::new();
                match c.read_to_end(&mut rest) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                    Err(e) => panic!("a backup session was not closed: {e}"),
                }
            } else {
                c.write_all(b"y").unwrap();
                let mut b = [0u8; 1];
                c.read_exact(&mut b).unwrap();
                assert_eq!(&b, b"y", "without the option the session goes on");
            }
        }
    }
}

/// Which redis (by its port) a session reached: `CONFIG GET port` through it.
fn session_port(s: &mut TcpStream) -> u16 {
    s.write_all(b"CONFIG GET port\r\n").unwrap();
    // *2 $4 port $N NNNNN: five lines.
    let mut got = Vec::new();
    let mut b = [0u8; 256];
    while got.windows(2).filter(|w| w == b"\r\n").count() < 5 {
        let n = s.read(&mut b).unwrap();
        assert!(
            n > 0,
            "closed while answering: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    text.lines().nth(4).unwrap().trim().parse().unwrap()
}

/// Whether the proxy closed `s` (EOF or reset) within 10 s; a PING answered
/// means it is open.
fn closed_by_proxy(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if s.write_all(b"PING\r\n").is_err() {
        return true;
    }
    let mut b = [0u8; 7];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => {
            assert_eq!(&b, b"+PONG\r\n");
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        Err(e) => panic!("neither answered nor closed: {e}"),
    }
}

#[test]
fn on_marked_down_is_a_server_option_as_in_haproxy() {
    // `on-marked-down shutdown-sessions` on r1 only: putting both servers in
    // maintenance closes r1's session and leaves r2's open — in haproxy and
    // in ringlb running the same haproxy.cfg.
    let r1 = RedisServer::start(&[]);
    let r2 = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = |port: u16, sock: &Path| {
        format!(
            "global\n  stats socket {} level admin\ndefaults\n  mode tcp\n  timeout connect 2s\n  \
             timeout client 30s\n  timeout server 30s\nlisten app\n  bind 127.0.0.1:{port}\n  \
             balance roundrobin\n  \
             server r1 127.0.0.1:{} on-marked-down shutdown-sessions\n  \
             server r2 127.0.0.1:{}\n",
            sock.display(),
            r1.port,
            r2.port
        )
    };
    let scenario = |port: u16, sock: &Path| -> (bool, bool) {
        let mut on: std::collections::HashMap<u16, TcpStream> = Default::default();
        for _ in 0..2 {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let p = session_port(&mut s);
            on.insert(p, s);
        }
        assert_eq!(on.len(), 2, "round robin put one session on each server");
        // r2 first: events reach the shard in order, so once r1's session is
        // closed r2's maintenance has been applied too.
        clients::socat(sock, "disable server app/r2");
        clients::socat(sock, "disable server app/r1");
        let r1_closed = closed_by_proxy(on.get_mut(&r1.port).unwrap());
        let r2_closed = closed_by_proxy(on.get_mut(&r2.port).unwrap());
        (r1_closed, r2_closed)
    };
    let (hport, hsock) = (free_port(), dir.path().join("haproxy.sock"));
    let _h = support::servers::Haproxy::start(&cfg(hport, &hsock), &[hport]);
    let theirs = scenario(hport, &hsock);
    let (port, sock) = (free_port(), dir.path().join("ringlb.sock"));
    let rdir = tempfile::tempdir().unwrap();
    let path = rdir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg(port, &sock)).unwrap();
    let _lb = Ringlb::start_file(rdir, path, &["--shards", "1"]);
    let ours = scenario(port, &sock);
    assert_eq!(theirs, (true, false), "haproxy: (r1 closed, r2 closed)");
    assert_eq!(ours, theirs, "ringlb: (r1 closed, r2 closed)");
}
