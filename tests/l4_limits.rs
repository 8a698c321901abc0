//! Exact limits through the real binary: server `maxconn` with queueing across
//! shards, global and frontend `maxconn` (connections wait in the backlog, none
//! refused), queue timeouts, and retries with redispatch past a dead server.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::*;

/// Frontend `fe` on `port` (plus `frontend` lines) in front of backend `b`
/// (plus `backend` lines) with `servers`; `global` lines in `[global]`.
fn config(port: u16, global: &str, frontend: &str, backend: &str, servers: &[Srv]) -> String {
    let b = servers
        .iter()
        .fold(Proxy::new("b").extra(backend), |b, (name, addr, extra)| {
            b.server_with(name, addr, extra)
        });
    Cfg::new()
        .global(global)
        .mode("tcp")
        .timeouts("1s", "30s", "30s")
        .timeout("queue", "20s")
        .frontend(
            Proxy::new("fe")
                .port(port)
                .default_backend("b")
                .extra(frontend),
        )
        .backend(b)
        .build()
}

/// A server: name, address, extra keys.
type Srv = (String, String, &'static str);

fn srv(s: &TestServer, extra: &'static str) -> Srv {
    (s.name.clone(), s.addr.to_string(), extra)
}

/// Sends a line and expects it echoed.
fn ping(c: &mut TcpStream, msg: &str) -> bool {
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    if c.write_all(msg.as_bytes()).is_err() {
        return false;
    }
    let mut buf = vec![0u8; msg.len()];
    c.read_exact(&mut buf).is_ok() && buf == msg.as_bytes()
}

#[test]
fn server_maxconn_5_is_exact_under_50_concurrent_clients_across_shards() {
    let s = TestServer::start("slow", Behaviour::SlowEcho(Duration::from_millis(100)));
    let port = free_port();
    let _lb = Ringlb::start(
        &config(port, "", "", "", &[srv(&s, "maxconn = 5")]),
        &["--shards", "2"],
    );
    let clients: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let ok = ping(&mut c, &format!("client {i}\n"));
                c.shutdown(std::net::Shutdown::Write).unwrap();
                ok
            })
        })
        .collect();
    let ok = clients
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|&ok| ok)
        .count();
    assert_eq!(ok, 50, "every queued client must be served");
    assert_eq!(
        s.max_active(),
        5,
        "server saw more or fewer than maxconn at once"
    );
    assert_eq!(s.accepted(), 50);
}

/// Which connections have been served: their server greeted them.
fn served(conns: &[TcpStream]) -> Vec<bool> {
    conns
        .iter()
        .map(|c| {
            c.set_nonblocking(true).unwrap();
            let mut b = [0u8; 1];
            let r = matches!(c.peek(&mut b), Ok(n) if n > 0);
            c.set_nonblocking(false).unwrap();
            r
        })
        .collect()
}

fn count(v: &[bool]) -> usize {
    v.iter().filter(|&&b| b).count()
}

/// Opens `total` connections against a limit of `limit`, checks exactly `limit`
/// are served, then frees places and checks waiting ones are served in turn.
fn limit_holds(global: &str, frontend: &str, limit: usize, total: usize) {
    let s = TestServer::start("hello", Behaviour::Hello);
    let port = free_port();
    let _lb = Ringlb::start(
        &config(port, global, frontend, "", &[srv(&s, "")]),
        &["--shards", "2"],
    );
    let mut conns: Vec<TcpStream> = (0..total)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    assert!(wait_until(Duration::from_secs(5), || count(&served(
        &conns
    )) == limit));
    assert_eq!(s.accepted() as usize, limit);
    assert_eq!(s.counters.active.load(Ordering::SeqCst) as usize, limit);
    // Free three served places: exactly three waiting connections get served.
    let mut freed = 0;
    let flags = served(&conns);
    let mut i = 0;
    conns.retain(|_| {
        let keep = !(flags[i] && freed < 3 && {
            freed += 1;
            true
        });
        i += 1;
        keep
    });
    assert!(wait_until(Duration::from_secs(5), || s.accepted() as usize
        == limit + 3));
    let ok = wait_until(Duration::from_secs(5), || count(&served(&conns)) == limit);
    assert!(
        ok,
        "served {} of {} after freeing 3; server accepted {}, active {}",
        count(&served(&conns)),
        conns.len(),
        s.accepted(),
        s.counters.active.load(Ordering::SeqCst)
    );
    assert_eq!(s.counters.active.load(Ordering::SeqCst) as usize, limit);
    // Free everything served: the rest are served too — none was refused.
    let flags = served(&conns);
    let mut i = 0;
    conns.retain(|_| {
        let keep = !flags[i];
        i += 1;
        keep
    });
    assert!(wait_until(Duration::from_secs(5), || count(&served(
        &conns
    )) == conns.len()));
    assert_eq!(s.accepted() as usize, total);
}

#[test]
fn global_maxconn_holds_extra_connections_in_the_backlog_and_resumes() {
    limit_holds("maxconn = 10", "", 10, 15);
}

#[test]
fn frontend_maxconn_is_exact_too() {
    limit_holds("", "maxconn = 4", 4, 9);
}

#[test]
fn queue_timeout_closes_the_waiting_session() {
    let s = TestServer::start("echo", Behaviour::Echo);
    let port = free_port();
    let cfg = config(
        port,
        "",
        "",
        "timeout = { queue = \"300ms\" }",
        &[srv(&s, "maxconn = 1")],
    );
    let _lb = Ringlb::start(&cfg, &["--shards", "1"]);
    let mut first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(ping(&mut first, "a"));
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = second.write_all(b"b");
    let mut buf = [0u8; 1];
    // Closed by the proxy (EOF or reset), not by our read timeout.
    match second.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("queued session should have been closed, got {other:?}"),
    }
    assert_eq!(s.accepted(), 1);
}

#[test]
fn dead_server_with_retries_and_redispatch_loses_no_session() {
    let live = TestServer::start("live", Behaviour::Echo);
    let dead_port = free_port(); // nothing listens there: connects are refused
    let port = free_port();
    let servers = [
        ("dead".to_string(), format!("127.0.0.1:{dead_port}"), ""),
        srv(&live, ""),
    ];
    let cfg = config(port, "", "", "retries = 1\nredispatch = true", &servers);
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let mut failures = 0;
    for i in 0..100 {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        if !ping(&mut c, &format!("s{i}")) {
            failures += 1;
        }
    }
    assert_eq!(failures, 0);
    assert_eq!(live.accepted(), 100);
}
