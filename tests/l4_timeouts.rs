//! Timeouts through the real binary: an idle client is closed after `timeout
//! client`; a connect to a server that never answers the SYN ends after `timeout
//! connect`. Assertions are about what happens, with generous upper bounds so a
//! slow machine never fails them.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

/// Frontend `fe` on `port` in front of one server; `timeouts` are connect,
/// client and server.
fn config(port: u16, server: &str, timeouts: (&str, &str, &str)) -> String {
    let (connect, client, srv) = timeouts;
    Cfg::new()
        .mode("tcp")
        .defaults("retries = 0")
        .timeouts(connect, client, srv)
        .frontend(Proxy::new("fe").port(port).default_backend("b"))
        .backend(Proxy::new("b").server("s", server))
        .build()
}

fn expect_closed(c: &mut TcpStream, within: Duration) -> Duration {
    let t0 = Instant::now();
    c.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 16];
    match c.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the proxy to close the session, got {other:?}"),
    }
    t0.elapsed()
}

#[test]
fn idle_client_is_closed_after_timeout_client() {
    let s = TestServer::start("echo", Behaviour::Echo);
    let port = free_port();
    let _lb = Ringlb::start(
        &config(port, &s.addr.to_string(), ("1s", "300ms", "30s")),
        &[],
    );
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let waited = expect_closed(&mut c, Duration::from_secs(10));
    // Never before the timeout.
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || s
        .counters
        .active
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0));
}

#[test]
fn connect_to_a_server_that_never_answers_ends_after_timeout_connect() {
    let blackhole = Blackhole::start();
    let addr = blackhole.addr;
    let port = free_port();
    let _lb = Ringlb::start(
        &config(port, &addr.to_string(), ("400ms", "30s", "30s")),
        &[],
    );
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let waited = expect_closed(&mut c, Duration::from_secs(10));
    assert!(
        waited >= Duration::from_millis(350),
        "closed after {waited:?}"
    );
}
