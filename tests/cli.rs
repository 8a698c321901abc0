//! The command line contract (CONFIG.md): `check` verdicts and messages, exit codes
//! of `run` (1 config, 2 startup), pidfile, graceful stop and `hard-stop-after`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

/// A config whose layout is pinned: the `check` tests below edit it and assert
/// `FILE:LINE:COL` positions into it, so it is written out here by hand rather
/// than by `support::config` (whose layout is free to change).
fn cfg(port: u16, server: &str, extra_global: &str) -> String {
    format!(
        r#"[global]
{extra_global}

[defaults]
mode = "tcp"
timeout = {{ connect = "1s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{port}"]
default-backend = "be"

[[backend]]
name = "be"
servers = [{{ name = "a", address = "{server}" }}]
"#
    )
}

/// Frontend `fe` (with the default backend `be`) in front of server `a`.
fn tcp_cfg(fe: Proxy, server: &str) -> Cfg {
    Cfg::new()
        .mode("tcp")
        .timeouts("1s", "30s", "30s")
        .frontend(fe.default_backend("be"))
        .backend(Proxy::new("be").server("a", server))
}

fn check(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = write_file(dir.path(), "c.toml", text);
    ringlb_cmd(&["check", "-f", p.to_str().unwrap()])
}

#[test]
fn check_accepts_a_valid_config() {
    let (code, out, _) = check(&tcp_cfg(Proxy::new("fe").port(9000), "127.0.0.1:8000").build());
    assert_eq!(code, 0);
    assert!(out.trim_end().ends_with("configuration is valid"), "{out}");
}

#[test]
fn check_refuses_each_bad_config_with_line_and_message() {
    let good = cfg(9000, "127.0.0.1:8000", "");
    let cases = [
        (
            good.replace(
                "default-backend = \"be\"",
                "default-backend = \"be\"\nmaxconns = 1",
            ),
            ":12:1: unknown field `maxconns`",
        ),
        (
            good.replace("default-backend = \"be\"", "default-backend = \"nope\""),
            ":11:19: frontend \"fe\": default-backend \"nope\" does not exist",
        ),
        (
            format!("{good}\n[[backend]]\nname = \"be\"\n"),
            ":18:8: backend: duplicate name \"be\" (first defined at line 14)",
        ),
        (
            good.replace("127.0.0.1:8000", "10.0.0.1:99999"),
            ":15:36: backend \"be\": server \"a\": invalid address \"10.0.0.1:99999\"",
        ),
        (
            good.replace(
                "address = \"127.0.0.1:8000\"",
                "address = \"127.0.0.1:8000\", weight = 300",
            ),
            ":15:63: backend \"be\": server \"a\": weight 300 out of range 0-256",
        ),
    ];
    for (text, want) in cases {
        let (code, out, err) = check(&text);
        assert_eq!(code, 1, "should be refused: {want}\n{out}");
        assert!(
            err.contains("c.toml") && err.contains(want),
            "expected `{want}` in `{err}`"
        );
        assert!(!out.contains("configuration is valid"));
    }
}

#[test]
fn check_refuses_overflowing_durations_invalid_utf8_and_huge_values_briefly() {
    let good = cfg(9000, "127.0.0.1:8000", "");
    for (text, want) in [
        (
            good.replace("connect = \"1s\"", "connect = \"307445734561825861m\""),
            ":6:23: backend \"be\": timeout connect: timer overflow in \"307445734561825861m\" \
             (maximum value is 2147483647 ms or ~24.8 days)",
        ),
        (
            cfg(9000, "127.0.0.1:8000", "hard-stop-after = \"25d\""),
            "timer overflow in \"25d\"",
        ),
    ] {
        let (code, _, err) = check(&text);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(want), "expected `{want}` in `{err}`");
    }
    // A 1 MB bad value is quoted in a few dozen bytes, not echoed whole.
    let huge = good.replace("\"1s\"", &format!("\"1{}\"", "x".repeat(1 << 20)));
    let (code, _, err) = check(&huge);
    assert_eq!(code, 1);
    assert!(err.len() < 400, "{} bytes of error", err.len());
    // Invalid UTF-8 names its line and column.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    let mut bytes = good.into_bytes();
    let at = bytes.iter().position(|&b| b == b'[').unwrap() + 1;
    bytes.insert(at, 0xff);
    std::fs::write(&p, &bytes).unwrap();
    let (code, _, err) = ringlb_cmd(&["check", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("c.toml:1:2: invalid UTF-8 (byte 0xff)"),
        "{err}"
    );
}

#[test]
fn check_warns_about_missing_timeouts_like_haproxy() {
    let text = Cfg::new()
        .mode("tcp")
        .timeout("connect", "1s")
        .timeout("server", "30s")
        .frontend(Proxy::new("fe").port(9000).default_backend("be"))
        .backend(Proxy::new("be").server("a", "127.0.0.1:8000"))
        .build();
    let (code, out, _) = check(&text);
    assert_eq!(code, 0);
    assert!(
        out.contains("warning: missing timeouts for frontend 'fe'."),
        "{out}"
    );
    assert!(!out.contains("for backend 'be'"), "{out}");
}

#[test]
fn check_warns_when_the_backlog_exceeds_somaxconn() {
    let somaxconn: u64 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let fe = Proxy::new("fe").bind_with("127.0.0.1:9000", &format!("backlog = {}", somaxconn + 1));
    let text = tcp_cfg(fe, "127.0.0.1:8000").build();
    let (code, out, _) = check(&text);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("net.core.somaxconn is {somaxconn}"))
            && out.contains("kernel-tuning/ringlb-base.conf"),
        "{out}"
    );
}

#[test]
fn run_exits_1_on_a_bad_config_and_2_when_the_port_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_file(
        dir.path(),
        "bad.toml",
        &Cfg::new().global("maxconn = \"lots\"").build(),
    );
    let (code, _, err) = ringlb_cmd(&["run", "-f", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let taken = support::local_listener();
    let port = taken.local_addr().unwrap().port();
    // SO_REUSEPORT would share a port with another SO_REUSEPORT socket, not with this one.
    let p = write_file(
        dir.path(),
        "c.toml",
        &tcp_cfg(Proxy::new("fe").port(port), "127.0.0.1:1").build(),
    );
    let (code, _, err) = ringlb_cmd(&["run", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("frontend \"fe\": cannot bind 127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn run_refuses_a_maxconn_the_fd_limit_cannot_carry() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_file(
        dir.path(),
        "c.toml",
        &tcp_cfg(Proxy::new("fe").port(free_port()), "127.0.0.1:1")
            .global("maxconn = 9000000")
            .build(),
    );
    let (code, _, err) = ringlb_cmd(&["run", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("FD limit") && err.contains("maxconn=9000000"),
        "{err}"
    );
}

#[test]
fn pidfile_is_written_and_sigterm_stops_gracefully_after_draining() {
    let srv = TestServer::start("echo", Behaviour::Echo);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("ringlb.pid");
    let text = tcp_cfg(Proxy::new("fe").port(port), &srv.addr.to_string())
        .global(format!(
            "pidfile = {}",
            support::config::q(pidfile.display())
        ))
        .build();
    let mut lb = Ringlb::start(&text, &[]);
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, lb.pid());
    // A session open during the stop keeps working until it ends.
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"before").unwrap();
    let mut b = [0u8; 6];
    c.read_exact(&mut b).unwrap();
    ringlb::sys::signals::send(pid, libc::SIGTERM).unwrap();
    // New connections are refused once the listeners close.
    assert!(wait_until(Duration::from_secs(5), || TcpStream::connect((
        "127.0.0.1",
        port
    ))
    .is_err()));
    c.write_all(b"during").unwrap();
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"during");
    drop(c);
    let st = lb
        .stop(Duration::from_secs(10))
        .expect("ringlb exits once drained");
    assert!(st.success());
    assert!(!pidfile.exists(), "pidfile removed on exit");
}

#[test]
fn hard_stop_after_closes_sessions_that_do_not_end() {
    let srv = TestServer::start("echo", Behaviour::Echo);
    let port = free_port();
    let mut lb = Ringlb::start(
        &tcp_cfg(Proxy::new("fe").port(port), &srv.addr.to_string())
            .global("hard-stop-after = \"300ms\"")
            .build(),
        &[],
    );
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    let t0 = Instant::now();
    let st = lb
        .stop(Duration::from_secs(10))
        .expect("hard-stop-after must end the process");
    assert!(st.success());
    // Closed by the proxy: EOF or a reset, not a read that timed out.
    match c.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("session not closed by the hard stop: {other:?}"),
    }
    assert!(t0.elapsed() >= Duration::from_millis(250));
}

#[test]
fn http_request_rules_are_refused_by_run_in_mode_tcp() {
    // A TCP session applies `use-backend` (tests/l4_balance.rs) but no
    // http-request rule: a frontend relying on one is refused, not ignored.
    let dir = tempfile::tempdir().unwrap();
    let fe = Proxy::new("fe")
        .port(free_port())
        .extra(r#"http-request = ["deny"]"#);
    let text = tcp_cfg(fe, "127.0.0.1:1").build();
    let p = write_file(dir.path(), "c.toml", &text);
    let (code, _, err) = ringlb_cmd(&["run", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("http-request/http-response rules apply to mode http only"),
        "{err}"
    );
}
