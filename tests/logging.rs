//! Logging through the real binary: one `tcplog` line per session in a file that
//! `halog` (Debian's haproxy package) parses, with the right termination codes;
//! and RFC3164 syslog over UDP with the tutorial's two targets (local0 info gets
//! session lines, local1 warning does not).

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use support::*;

fn session(port: u16) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The proxy may already have closed a session whose server refused.
    let _ = c.write_all(b"hello");
    let _ = c.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
}

#[test]
fn tcplog_lines_in_a_file_are_parsed_by_halog() {
    let srv = TestServer::start("echo", Behaviour::Echo);
    let (port, dead_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sessions.log");
    let cfg = Cfg::new()
        .log_with(log.display(), "facility = \"local0\", level = \"info\"")
        .mode("tcp")
        .log_global("tcplog")
        .defaults("retries = 0")
        .timeouts("1s", "10s", "10s")
        .frontend(Proxy::new("tcp-in").port(port).default_backend("app"))
        .frontend(
            Proxy::new("to-dead")
                .port(dead_port)
                .default_backend("dead"),
        )
        .backend(Proxy::new("app").server("app1", srv.addr))
        .backend(Proxy::new("dead").server("gone", format!("127.0.0.1:{}", free_port())))
        .build();
    let mut lb = Ringlb::start(&cfg, &["--shards", "2"]);
    for _ in 0..20 {
        session(port);
    }
    for _ in 0..5 {
        session(dead_port);
    }
    assert!(lb.stop(Duration::from_secs(10)).unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let sessions: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("] tcp-in ") || l.contains("] to-dead "))
        .collect();
    assert_eq!(sessions.len(), 25, "{text}");
    let ok = sessions
        .iter()
        .filter(|l| l.contains(" tcp-in app/app1 ") && l.contains(" 5 -- "))
        .count();
    assert_eq!(ok, 20, "{text}");
    let refused = sessions
        .iter()
        .filter(|l| l.contains(" to-dead dead/gone ") && l.contains("/-1/") && l.contains(" SC "))
        .count();
    assert_eq!(refused, 5, "{text}");
    assert!(
        text.contains("ringlb[") && text.contains("Proxy tcp-in started."),
        "{text}"
    );
    // halog reads our lines as it reads HAProxy's own TCP logs: every line
    // counted, every line parsed by the field-based reports, both servers listed
    // (its per-server table is HTTP-oriented and flags TCP lines, HAProxy's too).
    let input = sessions.join("\n");
    let halog = |args: &[&str]| support::clients::halog(args, &input);
    let (count, _) = halog(&["-c"]);
    assert_eq!(count.trim(), "25");
    let (_, summary) = halog(&["-st"]);
    assert!(
        summary.contains("25 lines in,") && summary.contains(" 0 parsing errors"),
        "{summary}"
    );
    let (srv_table, _) = halog(&["-srv"]);
    assert!(
        srv_table.contains("app/app1 ") && srv_table.contains("dead/gone "),
        "{srv_table}"
    );
}

#[test]
fn syslog_udp_targets_filter_by_level_like_the_tutorial() {
    let srv = TestServer::start("echo", Behaviour::Echo);
    let syslog = UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let target = format!("udp://{}", syslog.local_addr().unwrap());
    let port = free_port();
    let cfg = Cfg::new()
        .log_with(&target, "facility = \"local0\", level = \"info\"")
        .log_with(&target, "facility = \"local1\", level = \"warning\"")
        .mode("tcp")
        .log_global("tcplog")
        .timeouts("1s", "10s", "10s")
        .listen(Proxy::new("tcp-in").port(port).server("s1", srv.addr))
        .build();
    let mut lb = Ringlb::start(&cfg, &[]);
    for _ in 0..3 {
        session(port);
    }
    assert!(lb.stop(Duration::from_secs(10)).unwrap().success());
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    syslog
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Ok(n) = syslog.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let sessions: Vec<&String> = got
        .iter()
        .filter(|d| d.contains(" tcp-in tcp-in/s1 "))
        .collect();
    assert_eq!(sessions.len(), 3, "{got:#?}");
    // local0 (16) * 8 + info (6) = 134; local1 must not carry info lines.
    assert!(
        sessions
            .iter()
            .all(|d| d.starts_with("<134>") && d.contains(" ringlb[")),
        "{sessions:#?}"
    );
    assert!(
        !got.iter().any(|d| d.starts_with("<142>")),
        "local1/warning received an info line: {got:#?}"
    );
    // Notices (proxy start/stop) go to local0 only: 16*8+5 = 133.
    assert!(
        got.iter()
            .any(|d| d.starts_with("<133>") && d.contains("Proxy tcp-in started.")),
        "{got:#?}"
    );
}
