//! Faults told apart, through the real binary: `hard-stop-after` ends sessions
//! in every state (queued, connecting) even with no queue or connect timeout; a
//! dead server is redispatched at once as HAProxy 2.6 does (HAProxy run side by
//! side as the oracle); a process that runs out of fds logs it, keeps its servers
//! UP and serves again once clients leave; a shard that dies stops the process.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use support::servers::Haproxy;
use support::*;

fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Socket fds the process holds (a readiness signal: accepted connections).
fn socket_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .map(|l| l.to_string_lossy().starts_with("socket:"))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

fn wait_exit(lb: &mut Ringlb, within: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + within;
    loop {
        if let Some(st) = lb.exited() {
            return Some(st);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn closed(c: &mut TcpStream) -> bool {
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 64];
    loop {
        match c.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
            }
        }
    }
}

#[test]
fn hard_stop_ends_queued_sessions_with_no_timeouts() {
    let srv = TestServer::start("echo", Behaviour::Echo);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("s.log");
    // No timeout queue, no timeout connect: only hard-stop-after can end them.
    let cfg = Cfg::new()
        .global("hard-stop-after = \"1s\"")
        .log(log.display())
        .log_global("tcplog")
        .listen(
            Proxy::new("l")
                .port(port)
                .server_with("s", srv.addr, "maxconn = 1"),
        )
        .build();
    let mut lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let base = socket_fds(lb.pid());
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    first.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    first.read_exact(&mut b).unwrap();
    let mut queued: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(b"q").unwrap();
            c
        })
        .collect();
    // Every queued client accepted: 1 + 20 client sockets and 1 server socket.
    assert!(
        wait_until(Duration::from_secs(5), || socket_fds(lb.pid()) >= base + 22),
        "fds {} base {base}",
        socket_fds(lb.pid())
    );
    assert_eq!(srv.accepted(), 1, "maxconn 1 holds the others in the queue");
    lb.signal(libc::SIGTERM);
    let st = wait_exit(&mut lb, Duration::from_secs(10)).expect("hard-stop-after must end it");
    assert!(st.success(), "{st:?}");
    assert!(closed(&mut first));
    for c in queued.iter_mut() {
        assert!(closed(c));
    }
    let lines = log_lines(&log);
    // Every session was killed, most while still queued. (A slot freed by a
    // killed session may be handed to a queued one that then connects before
    // its own kill is seen: `KC`/`KD` for it.)
    let killed = |code: &str| lines.iter().filter(|l| l.contains(code)).count();
    let (kq, kc, kd) = (killed(" KQ "), killed(" KC "), killed(" KD "));
    assert_eq!(kq + kc + kd, 21, "{lines:#?}");
    assert!(kq >= 15, "{lines:#?}");
}

#[test]
fn hard_stop_ends_sessions_stuck_connecting() {
    let blackhole = Blackhole::start();
    let addr = blackhole.addr;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("s.log");
    let cfg = Cfg::new()
        .global("hard-stop-after = \"500ms\"")
        .log(log.display())
        .log_global("tcplog")
        .listen(Proxy::new("l").port(port).server("s", addr))
        .build();
    let mut lb = Ringlb::start(&cfg, &[]);
    let base = socket_fds(lb.pid());
    let mut clients: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // Each client accepted and its server socket created (connecting).
    assert!(wait_until(Duration::from_secs(5), || socket_fds(lb.pid()) >= base + 10));
    lb.signal(libc::SIGTERM);
    let st = wait_exit(&mut lb, Duration::from_secs(10)).expect("hard-stop-after must end it");
    assert!(st.success());
    for c in clients.iter_mut() {
        assert!(closed(c));
    }
    let lines = log_lines(&log);
    assert_eq!(
        lines.iter().filter(|l| l.contains(" KC ")).count(),
        5,
        "{lines:#?}"
    );
}

/// One session: send `hi`, expect it echoed.
fn echo_once(port: u16) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"hi").unwrap();
    let mut b = [0u8; 2];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hi");
}

/// The retries field (`%rc`) and server of each tcplog line.
fn retries_fields(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let srv = f.iter().find(|x| x.contains('/') && x.starts_with("l/"))?;
            let counts = f.get(f.len().checked_sub(2)?)?;
            let rc = counts.rsplit('/').next()?;
            Some((srv.to_string(), rc.to_string()))
        })
        .collect()
}

#[test]
fn a_dead_server_is_redispatched_at_once_like_haproxy() {
    let live = TestServer::start("live", Behaviour::Echo);
    let dead = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("s.log");
    let port = free_port();
    let cfg = Cfg::new()
        .log(log.display())
        .log_global("tcplog")
        .defaults("retries = 3")
        .defaults("redispatch = true")
        .timeouts("5s", "5s", "5s")
        .listen(
            Proxy::new("l")
                .port(port)
                .balance("roundrobin")
                .server("dead", &dead)
                .server("live", live.addr),
        )
        .build();
    let lb = Ringlb::start(&cfg, &["--shards", "1"]);
    for _ in 0..6 {
        echo_once(port);
    }
    assert!(
        wait_until(Duration::from_secs(5), || log_lines(&log)
            .iter()
            .filter(|l| l.contains(" l l/"))
            .count()
            == 6),
        "{:#?}",
        log_lines(&log)
    );
    drop(lb);
    let ours = retries_fields(
        &log_lines(&log)
            .into_iter()
            .filter(|l| l.contains(" l l/"))
            .collect::<Vec<_>>(),
    );

    let hport = free_port();
    let hcfg = format!(
        "global\n  log stdout format raw local0\ndefaults\n  mode tcp\n  log global\n  option tcplog\n  \
         option redispatch\n  option dontlognull\n  retries 3\n  timeout connect 5s\n  timeout client 5s\n  timeout server 5s\n\
         listen l\n  bind 127.0.0.1:{hport}\n  balance roundrobin\n  server dead {dead}\n  server live {}\n",
        live.addr
    );
    let h = Haproxy::start(&hcfg, &[hport]);
    for _ in 0..6 {
        echo_once(hport);
    }
    let theirs = || {
        retries_fields(
            &h.output()
                .into_iter()
                .filter(|l| l.contains(" l l/"))
                .collect::<Vec<_>>(),
        )
    };
    assert!(wait_until(Duration::from_secs(5), || theirs().len() == 6));
    // Both: every session ends on the live server, and one that met the dead
    // server went there on its first retry (`+1`): no turn-around pause, no
    // second try of the dead one. (Which sessions meet the dead server first
    // depends on each round robin's internals, so the sets are compared.)
    for (who, fields) in [("ringlb", &ours), ("haproxy", &theirs())] {
        assert_eq!(fields.len(), 6, "{who}: {fields:?}");
        assert!(
            fields
                .iter()
                .all(|(s, rc)| s == "l/live" && (rc == "0" || rc == "+1")),
            "{who}: {fields:?}"
        );
        assert!(fields.iter().any(|(_, rc)| rc == "+1"), "{who}: {fields:?}");
    }
}

#[test]
fn running_out_of_fds_is_logged_and_counted_and_service_resumes() {
    let srv = TestServer::start("echo", Behaviour::Echo);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("s.log");
    let cfg = Cfg::new()
        .global("maxconn = 1000")
        .log(log.display())
        .log_global("tcplog")
        .defaults("retries = 3")
        .timeouts("2s", "10s", "10s")
        .defaults("check = { type = \"tcp\" }")
        .listen(Proxy::new("l").port(port).server_with(
            "s",
            srv.addr,
            "check = true, inter = \"100ms\", fall = 2",
        ))
        .build();
    let lb = Ringlb::start(&cfg, &["--shards", "1"]);
    echo_once(port);
    // Lower the running process's fd limit to what it holds now plus a few.
    let pid = lb.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    let limit = open + 6;
    let st = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={limit}:")])
        .status()
        .expect("prlimit (util-linux)");
    assert!(st.success());
    // More clients than fds: some are accepted and cannot reach the server, the
    // rest wait in the backlog or see accept fail.
    let mut clients: Vec<TcpStream> = (0..12)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    for c in clients.iter_mut() {
        let _ = c.write_all(b"hi");
    }
    assert!(
        wait_until(Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains(" RC ")
                && (text.contains("cannot connect to a server: Too many open files")
                    || text.contains("cannot accept a connection"))
        }),
        "no RC line or alert in the log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Several check intervals pass with the process out of fds: the server is
    // not marked DOWN for the proxy's own shortage.
    std::thread::sleep(Duration::from_millis(500));
    drop(clients);
    let st = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=4096:"])
        .status()
        .unwrap();
    assert!(st.success());
    // Service resumes by itself.
    assert!(wait_until(Duration::from_secs(10), || {
        let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 2];
        c.write_all(b"hi").is_ok() && c.read_exact(&mut b).is_ok() && &b == b"hi"
    }));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("is DOWN"),
        "server marked DOWN for a local shortage:\n{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn a_shard_that_dies_stops_the_process_with_a_clear_message() {
    let srv = TestServer::start("echo", Behaviour::Echo);
    let port = free_port();
    let cfg = Cfg::new()
        .listen(Proxy::new("l").port(port).server("s", srv.addr))
        .build();
    let mut lb = Ringlb::start_env(
        &cfg,
        &["--shards", "1"],
        &[("RINGLB_TEST_PANIC_SHARD", "0")],
    );
    let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let st = wait_exit(&mut lb, Duration::from_secs(10)).expect("the process must end");
    assert_eq!(st.code(), Some(2), "{}", lb.output());
    assert!(
        lb.output().contains("shard 0 died: injected fault"),
        "{}",
        lb.output()
    );
}
