//! Balancing through the real binary: roundrobin weights, `source` stickiness
//! across shards, `leastconn` and `first`. Servers announce their name on
//! connect, so each session shows where it went.

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::*;

/// Frontend `fe` on `port` in front of backend `b` balancing `servers` (the
/// first with the first of `keys`, and so on) by `balance`.
fn config(port: u16, balance: &str, servers: &[TestServer], keys: &[&str]) -> Cfg {
    assert_eq!(servers.len(), keys.len(), "one set of keys per server");
    let b = servers
        .iter()
        .zip(keys)
        .fold(Proxy::new("b").balance(balance), |b, (s, extra)| {
            b.server_with(&s.name, s.addr, extra)
        });
    Cfg::new()
        .mode("tcp")
        .timeouts("2s", "30s", "30s")
        .timeout("queue", "10s")
        .frontend(Proxy::new("fe").port(port).default_backend("b"))
        .backend(b)
}

/// Test servers that say their name (`names`) on connect.
fn hello_servers(names: &[&str]) -> Vec<TestServer> {
    names
        .iter()
        .map(|n| TestServer::start(n, Behaviour::Hello))
        .collect()
}

fn hello(port: u16) -> (TcpStream, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let name = read_line(&mut c);
    (c, name)
}

#[test]
fn roundrobin_weights_1_2_3_over_600_sessions() {
    let s = hello_servers(&["w1", "w2", "w3"]);
    let port = free_port();
    let cfg = config(
        port,
        "roundrobin",
        &s,
        &["weight = 1", "weight = 2", "weight = 3"],
    )
    .build();
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..600 {
        let (_c, name) = hello(port);
        *counts.entry(name).or_default() += 1;
    }
    for (name, want) in [("w1", 100.0), ("w2", 200.0), ("w3", 300.0)] {
        let got = *counts.get(name).unwrap_or(&0) as f64;
        assert!(
            (got - want).abs() <= want * 0.02,
            "{name}: {got} vs {want} ({counts:?})"
        );
    }
}

#[test]
fn source_sends_one_client_address_to_one_server_from_every_shard() {
    let s = hello_servers(&["s1", "s2", "s3"]);
    let port = free_port();
    let cfg = config(port, "source", &s, &[""; 3]).build();
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let mut used = std::collections::HashSet::new();
    for ip in 2..26u8 {
        let src: SocketAddr = format!("127.0.0.{ip}:0").parse().unwrap();
        let mut names = std::collections::HashSet::new();
        // Eight connections from different source ports spread over both
        // shards' listeners (SO_REUSEPORT hashes the 4-tuple).
        for _ in 0..8 {
            let sock = ringlb::sys::socket::Socket::bind_connect(
                &src,
                &format!("127.0.0.1:{port}").parse().unwrap(),
            )
            .unwrap();
            let mut c = TcpStream::from(std::os::fd::OwnedFd::from(sock));
            c.set_nonblocking(false).unwrap();
            names.insert(read_line(&mut c));
        }
        assert_eq!(names.len(), 1, "client 127.0.0.{ip} went to {names:?}");
        used.extend(names);
    }
    assert!(
        used.len() >= 2,
        "24 client addresses should spread over servers: {used:?}"
    );
}

#[test]
fn leastconn_prefers_the_idle_server() {
    let s = hello_servers(&["l1", "l2"]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("s.log");
    // The session's log line is written after its server slot is released:
    // that line, not the server's own count, says ringlb sees the server idle.
    let cfg = config(port, "leastconn", &s, &[""; 2])
        .log(log.display())
        .log_global("tcplog")
        .build();
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let (c1, n1) = hello(port);
    let (_c2, n2) = hello(port);
    assert_ne!(n1, n2, "second session must go to the idle server");
    // Free the first server; the next session must pick it (0 vs 1).
    drop(c1);
    let sessions_logged = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" fe b/"))
            .count()
    };
    assert!(wait_until(Duration::from_secs(5), || sessions_logged() == 1));
    let (_c3, n3) = hello(port);
    assert_eq!(n3, n1, "idle server must be preferred");
}

#[test]
fn first_fills_servers_in_order() {
    let s = hello_servers(&["f1", "f2", "f3"]);
    let port = free_port();
    let cfg = config(port, "first", &s, &["maxconn = 2"; 3]).build();
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    let mut held = Vec::new();
    let mut names = Vec::new();
    for _ in 0..5 {
        let (c, n) = hello(port);
        held.push(c);
        names.push(n);
    }
    assert_eq!(names, ["f1", "f1", "f2", "f2", "f3"]);
}

/// The name a Hello server sends, over a connection from source 127.0.0.2
/// (socat binds it; the test process needs no privilege or unsafe code).
fn hello_from_127_0_0_2(port: u16) -> String {
    use std::io::BufRead;
    use std::process::Stdio;
    // stdin stays open until the name has arrived: a client that half-closes
    // at once may be cut before the server's greeting is forwarded.
    let mut child = std::process::Command::new("socat")
        .args(["-T", "5", "STDIO"])
        .arg(format!("TCP:127.0.0.1:{port},bind=127.0.0.2"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("socat (Debian package socat) must be installed");
    let mut line = String::new();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    drop(child.stdin.take());
    child.wait().unwrap();
    line.trim_end().to_string()
}

#[test]
fn use_backend_routes_tcp_sessions_as_haproxy_does() {
    // One frontend on two ports: `dst_port` sends the second port's sessions
    // to b2, `src 127.0.0.2` to b3 (the earlier rule wins on the second port),
    // an HTTP fetch never matches in mode tcp (no request has been read, as
    // HAProxy without `tcp-request inspect-delay`), the rest go to b1 — in
    // haproxy and in ringlb running the same haproxy.cfg.
    let s = hello_servers(&["one", "two", "three", "four"]);
    let cfg = |p1: u16, p2: u16| {
        let mut c = format!(
            "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  \
             timeout server 30s\nfrontend fe\n  bind 127.0.0.1:{p1}\n  bind 127.0.0.1:{p2}\n  \
             acl second dst_port {p2}\n  use_backend b2 if second\n  \
             use_backend b3 if {{ src 127.0.0.2 }}\n  use_backend b4 if {{ path_beg / }}\n  \
             default_backend b1\n"
        );
        for (i, srv) in s.iter().enumerate() {
            c += &format!("backend b{}\n  server {} {}\n", i + 1, srv.name, srv.addr);
        }
        c
    };
    let ask = |p1: u16, p2: u16| {
        vec![
            hello(p1).1,
            hello(p2).1,
            hello_from_127_0_0_2(p1),
            hello_from_127_0_0_2(p2),
        ]
    };
    let (h1, h2) = (free_port(), free_port());
    let _h = support::servers::Haproxy::start(&cfg(h1, h2), &[h1, h2]);
    let theirs = ask(h1, h2);
    let (r1, r2) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg(r1, r2)).unwrap();
    let _lb = Ringlb::start_file(dir, path, &["--shards", "2"]);
    let ours = ask(r1, r2);
    assert_eq!(theirs, ["one", "two", "three", "two"], "haproxy");
    assert_eq!(ours, theirs, "ringlb");
}
