//! The PROXY protocol through the real binary: `send-proxy` (v1) and
//! `send-proxy-v2` carry the client's address to nginx (`listen … proxy_protocol`,
//! `set_real_ip_from`, `real_ip_header proxy_protocol`) and to a second ringlb
//! with `accept-proxy`, whose log line names the original client; a connection
//! with garbage instead of a header is closed, counted and forwards nothing.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::servers::Nginx;
use support::*;

/// A TCP connection from a chosen loopback source address (127.0.0.x), so the
/// client's address differs from the proxy's.
fn connect_from(src: &str, port: u16) -> TcpStream {
    let s = socket2_free_connect(src, port);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn socket2_free_connect(src: &str, port: u16) -> TcpStream {
    let dst: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let src: SocketAddr = format!("{src}:0").parse().unwrap();
    let s = ringlb::sys::socket::Socket::bind_connect(&src, &dst).unwrap();
    let fd: std::os::fd::OwnedFd = s.into();
    let s = TcpStream::from(fd);
    s.set_nonblocking(false).unwrap();
    s
}

/// nginx trusting the PROXY header from 127.0.0.1, answering with the address
/// it then believes the client has.
fn nginx_proxy_protocol() -> Nginx {
    Nginx::start_with(&[], |port, _| {
        format!(
            "listen 127.0.0.1:{port} proxy_protocol; set_real_ip_from 127.0.0.1; \
             real_ip_header proxy_protocol; \
             location / {{ return 200 \"$remote_addr $proxy_protocol_addr\\n\"; }}"
        )
    })
}

/// Listen `l` bound to `127.0.0.1:port` (with `extra_bind` keys) in front of
/// server `s` at `server` (with `extra_server` keys).
fn listen(port: u16, server: &str, extra_server: &str, extra_bind: &str) -> Cfg {
    Cfg::new().timeouts("2s", "5s", "5s").listen(
        Proxy::new("l")
            .bind_with(format!("127.0.0.1:{port}"), extra_bind)
            .server_with("s", server, extra_server),
    )
}

fn http_get(c: &mut TcpStream) -> String {
    c.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn nginx_sees_the_real_client_with_v1_and_v2() {
    let ng = nginx_proxy_protocol();
    for v in ["v1", "v2"] {
        let port = free_port();
        let _lb = Ringlb::start(
            &listen(
                port,
                &format!("127.0.0.1:{}", ng.port),
                &format!("send-proxy = \"{v}\""),
                "",
            )
            .build(),
            &[],
        );
        let mut c = connect_from("127.0.0.7", port);
        let resp = http_get(&mut c);
        assert!(resp.starts_with("HTTP/1.1 200"), "{v}: {resp}");
        assert!(resp.ends_with("127.0.0.7 127.0.0.7\n"), "{v}: {resp}");
    }
}

#[test]
fn a_ringlb_chain_carries_the_client_address_and_refuses_garbage() {
    let srv = TestServer::start("echo", Behaviour::Echo);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("back.log");
    let (front_port, back_port) = (free_port(), free_port());
    let back_cfg = listen(back_port, &srv.addr.to_string(), "", "accept-proxy = true")
        .log(log.display())
        .log_global("tcplog")
        .build();
    let _back = Ringlb::start(&back_cfg, &[]);
    let _front = Ringlb::start(
        &listen(
            front_port,
            &format!("127.0.0.1:{back_port}"),
            "send-proxy = \"v2\"",
            "",
        )
        .build(),
        &[],
    );
    let mut c = connect_from("127.0.0.9", front_port);
    let client_port = c.local_addr().unwrap().port();
    c.write_all(b"hello").unwrap();
    let mut b = [0u8; 5];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hello", "bytes after the header pass byte-exact");
    drop(c);
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(&format!(" 127.0.0.9:{client_port} "))),
        "the back's log names the real client:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Garbage instead of a header: closed, nothing reaches the server.
    let before = srv.accepted();
    let mut g = TcpStream::connect(("127.0.0.1", back_port)).unwrap();
    g.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    g.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = g.read_to_end(&mut rest);
    assert!(rest.is_empty());
    assert_eq!(srv.accepted(), before, "nothing forwarded");
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("does not look like a PROXY protocol header")
    }));
    // A header trickled in pieces still works (no busy wait on a partial one).
    let hdr = b"PROXY TCP4 192.0.2.1 127.0.0.1 4242 80\r\n";
    let mut t = TcpStream::connect(("127.0.0.1", back_port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.set_nodelay(true).unwrap();
    for piece in hdr.chunks(7) {
        t.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    t.write_all(b"ok").unwrap();
    let mut two = [0u8; 2];
    t.read_exact(&mut two).unwrap();
    assert_eq!(&two, b"ok");
    drop(t);
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(" 192.0.2.1:4242 ")
    }));
}

/// In `mode http` too: each new server connection starts with the PROXY
/// header, and since it names one client, a kept-alive server connection
/// serves only that client (two clients from two addresses, each seen as
/// itself on every request).
#[test]
fn mode_http_sends_the_header_and_keeps_such_connections_private() {
    let ng = nginx_proxy_protocol();
    for v in ["v1", "v2"] {
        let port = free_port();
        let toml = listen(
            port,
            &format!("127.0.0.1:{}", ng.port),
            &format!("send-proxy = \"{v}\""),
            "",
        )
        .mode("http")
        .build();
        let _lb = Ringlb::start(&toml, &["--shards", "1"]);
        let ask = |c: &mut TcpStream| {
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.ends_with(b"\n") || !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = c.read(&mut chunk).unwrap();
                assert!(n > 0, "{v}: closed");
                buf.extend_from_slice(&chunk[..n]);
            }
            let text = String::from_utf8_lossy(&buf).to_string();
            text.rsplit("\r\n\r\n").next().unwrap_or("").to_string()
        };
        let mut a = connect_from("127.0.0.7", port);
        let mut b = connect_from("127.0.0.8", port);
        for _ in 0..3 {
            assert_eq!(ask(&mut a), "127.0.0.7 127.0.0.7\n", "{v}");
            assert_eq!(ask(&mut b), "127.0.0.8 127.0.0.8\n", "{v}");
        }
    }
}
