//! The runtime API's view of live sessions and captured errors, through the
//! real binary with `socat`, and the stats page's admin form with `curl`:
//! `show sess` lists exactly the sessions clients hold open (asked of every
//! shard), `shutdown session` closes one, `show errors` shows the bytes of
//! the last bad request and response, and a POST from the page moves a server
//! to MAINT as HAProxy's page does.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::clients::socat;
use support::servers::RedisServer;
use support::*;

/// A client connected through ringlb to redis, proven by a PING round trip
/// (so its session has a server).
fn redis_client(port: u16) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"PING\r\n").unwrap();
    let mut b = [0u8; 7];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"+PONG\r\n");
    c
}

/// The session lines of a `show sess` answer.
fn sessions(answer: &str) -> Vec<String> {
    answer
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn show_sess_lists_live_sessions_and_shutdown_session_closes_one() {
    let redis = RedisServer::start(&[]);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let cfg = format!(
        r#"
[global]
admin-socket = "{}"
[defaults]
timeout = {{ connect = "2s", client = "30s", server = "30s" }}
[[listen]]
name = "cache"
bind = ["127.0.0.1:{port}"]
servers = [{{ name = "r1", address = "127.0.0.1:{}" }}]
"#,
        sock.display(),
        redis.port
    );
    let _lb = Ringlb::start(&cfg, &["--shards", "2"]);
    assert_eq!(socat(&sock, "show sess"), "\n", "no session yet");

    let mut clients: Vec<TcpStream> = (0..3).map(|_| redis_client(port)).collect();
    let answer = socat(&sock, "show sess");
    let lines = sessions(&answer);
    assert_eq!(lines.len(), 3, "{answer}");
    assert!(answer.ends_with("\n\n"), "{answer:?}");
    for c in &clients {
        let src = format!(" src={} ", c.local_addr().unwrap());
        let line = lines
            .iter()
            .find(|l| l.contains(&src))
            .unwrap_or_else(|| panic!("no session from{src}in\n{answer}"));
        let (id, rest) = line.split_once(": ").unwrap();
        assert!(id.starts_with("0x"), "{line}");
        assert!(
            rest.starts_with(&format!("proto=tcpv4{src}fe=cache be=cache srv=r1 ts=")),
            "{line}"
        );
        assert!(rest.contains(" age="), "{line}");
    }

    // One session in detail, then closed by id: its client sees the end.
    let first = format!(" src={} ", clients[0].local_addr().unwrap());
    let line = lines.iter().find(|l| l.contains(&first)).unwrap();
    let id = line.split_once(':').unwrap().0.to_string();
    let detail = socat(&sock, &format!("show sess {id}"));
    assert!(
        detail.starts_with(&format!("{id}: [")),
        "show sess ID: {detail}"
    );
    assert!(detail.contains(&format!("source={}\n", clients[0].local_addr().unwrap())));
    assert!(
        detail.contains("  backend=cache (id=1 mode=tcp)\n"),
        "{detail}"
    );
    assert!(detail.contains(&format!(
        "  server=r1 (id=1) addr=127.0.0.1:{}\n",
        redis.port
    )));
    assert_eq!(socat(&sock, &format!("shutdown session {id}")), "\n");
    let mut b = [0u8; 16];
    assert_eq!(
        clients[0].read(&mut b).unwrap_or(0),
        0,
        "the client's connection is closed"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        sessions(&socat(&sock, "show sess")).len() == 2
    }));
    let left = socat(&sock, "show sess");
    assert!(!left.contains(&first), "{left}");
    // The others still work.
    for c in clients.iter_mut().skip(1) {
        c.write_all(b"PING\r\n").unwrap();
        let mut b = [0u8; 7];
        c.read_exact(&mut b).unwrap();
    }

    // HAProxy's answers to a session that is gone and to no session at all.
    assert_eq!(
        socat(&sock, &format!("shutdown session {id}")),
        "No such session (use 'show sess').\n\n"
    );
    assert_eq!(
        socat(&sock, "shutdown session"),
        "Session pointer expected (use 'show sess').\n\n"
    );
    assert_eq!(
        socat(&sock, &format!("show sess {id}")),
        "Session not found.\n\n"
    );
    drop(clients);
    assert!(wait_until(Duration::from_secs(5), || {
        socat(&sock, "show sess") == "\n"
    }));
}
