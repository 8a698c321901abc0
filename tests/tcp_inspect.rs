//! `tcp-request inspect-delay` / `tcp-request content` in mode tcp: TLS
//! passthrough routed by the ClientHello's SNI (`req.ssl_sni`), a plain
//! client rejected, a ClientHello sent in pieces. Each compared with the
//! installed haproxy running the same haproxy.cfg.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::servers::{haproxy_defaults, Haproxy, Nginx};
use support::tls::{client_config, Pki};
use support::*;

/// An nginx answering `NAME\n` over TLS with `cert` (a Pki file stem).
fn tls_backend(pki: &Pki, name: &str, cert: &str) -> Nginx {
    let d = pki.dir.path().to_path_buf();
    let name = name.to_string();
    let cert = cert.to_string();
    Nginx::start_with(&[], move |port, _| {
        format!(
            "listen 127.0.0.1:{port} ssl; ssl_certificate {d}/{cert}.crt; \
             ssl_certificate_key {d}/{cert}.key; location / {{ return 200 \"{name}\\n\"; }}",
            d = d.display()
        )
    })
}

/// The body of `GET /` over TLS with `sni`, the ClientHello written in
/// `pieces` parts `pause` apart; an error's text when the handshake fails.
fn get_over_tls(port: u16, pki: &Pki, sni: &str, pieces: usize, pause: Duration) -> String {
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(client_config(pki), name).unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    let step = hello.len().div_ceil(pieces);
    for (i, part) in hello.chunks(step).enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        sock.write_all(part).unwrap();
    }
    let mut tls = rustls::StreamOwned::new(conn, sock);
    if let Err(e) = tls.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n") {
        return format!("error: {e}");
    }
    let mut out = Vec::new();
    if let Err(e) = tls.read_to_end(&mut out) {
        if out.is_empty() {
            return format!("error: {e}");
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split("\r\n\r\n")
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string()
}

fn passthrough_cfg(port: u16, backends: &[&Nginx]) -> String {
    let mut c = "global\n    log stdout format raw local0\n".to_string();
    c += &haproxy_defaults("tcp", "2s", "30s");
    c += "    log global\n    option tcplog\n";
    c += &format!(
        "frontend fe\n    bind 127.0.0.1:{port}\n    \
         tcp-request inspect-delay 5s\n    \
         tcp-request content accept if {{ req_ssl_hello_type 1 }}\n    \
         tcp-request content reject\n    \
         use_backend b2 if {{ req.ssl_sni -i b.test }}\n    \
         use_backend b3 if {{ req_ssl_sni -m end .wild.test }}\n    \
         default_backend b1\n"
    );
    for (i, b) in backends.iter().enumerate() {
        c += &format!(
            "backend b{n}\n    server s{n} 127.0.0.1:{p}\n",
            n = i + 1,
            p = b.port
        );
    }
    c
}

/// Both proxies on the same haproxy.cfg; `f` runs against each port, then
/// each proxy's output is read once it holds `logged` lines about `fe`.
fn both<T>(
    cfg: impl Fn(u16) -> String,
    f: impl Fn(u16) -> T,
    logged: usize,
) -> ((T, Vec<String>), (T, String)) {
    let fe_lines = |out: &mut dyn Iterator<Item = &str>| out.filter(|l| l.contains(" fe ")).count();
    let hport = free_port();
    let h = Haproxy::start(&cfg(hport), &[hport]);
    let theirs = f(hport);
    assert!(
        wait_until(Duration::from_secs(5), || fe_lines(
            &mut h.output().iter().map(String::as_str)
        ) >= logged),
        "haproxy logged fewer than {logged} lines: {:?}",
        h.output()
    );
    let hlog = h.output();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg(port)).unwrap();
    let lb = Ringlb::start_file(dir, path, &["--shards", "2"]);
    let ours = f(port);
    assert!(
        wait_until(Duration::from_secs(5), || fe_lines(
            &mut lb.output().lines()
        ) >= logged),
        "ringlb logged fewer than {logged} lines:\n{}",
        lb.output()
    );
    ((theirs, hlog), (ours, lb.output()))
}

/// Three TLS nginx answering `one`, `two`, `three` with the a.test, b.test
/// and *.wild.test certificates.
fn three_tls_backends(pki: &Pki) -> [Nginx; 3] {
    [
        tls_backend(pki, "one", "1-a"),
        tls_backend(pki, "two", "2-b"),
        tls_backend(pki, "three", "3-w"),
    ]
}

#[test]
fn tls_passthrough_routes_by_sni_as_haproxy_does() {
    if !have("nginx") {
        return;
    }
    let pki = Pki::new();
    let b = three_tls_backends(&pki);
    let ask = |port: u16| {
        ["a.test", "b.test", "x.wild.test"]
            .map(|sni| get_over_tls(port, &pki, sni, 1, Duration::ZERO))
            .to_vec()
    };
    let ((theirs, _), (ours, _)) = both(|p| passthrough_cfg(p, &[&b[0], &b[1], &b[2]]), ask, 0);
    assert_eq!(theirs, ["one", "two", "three"], "haproxy");
    assert_eq!(ours, theirs, "ringlb");
}

#[test]
fn a_client_hello_in_three_pieces_is_waited_for() {
    if !have("nginx") {
        return;
    }
    let pki = Pki::new();
    let b = three_tls_backends(&pki);
    let ask = |port: u16| {
        let t = Instant::now();
        let got = ["b.test", "x.wild.test"]
            .map(|sni| get_over_tls(port, &pki, sni, 3, Duration::from_millis(300)))
            .to_vec();
        // Decided when the hello was complete, not at the 5 s delay.
        (got, t.elapsed() < Duration::from_secs(4))
    };
    let ((theirs, _), (ours, _)) = both(|p| passthrough_cfg(p, &[&b[0], &b[1], &b[2]]), ask, 0);
    assert_eq!(
        theirs,
        (vec!["two".to_string(), "three".into()], true),
        "haproxy"
    );
    assert_eq!(ours, theirs, "ringlb");
}

/// A tcplog line without its client port, date, total time and connection
/// counts.
fn shape(line: &str) -> String {
    let after = line.split("] ").nth(1).unwrap_or(line);
    let mut w: Vec<String> = after.split(' ').map(str::to_string).collect();
    if let Some(t) = w.get_mut(2) {
        let mut parts: Vec<&str> = t.split('/').collect();
        if let Some(last) = parts.last_mut() {
            *last = "T";
        }
        *t = parts.join("/");
    }
    // actconn/feconn/...: the probes may overlap.
    if w.len() > 5 {
        w.remove(5);
    }
    w.join(" ")
}

#[test]
fn tcp_request_content_reject_closes_a_plain_client_as_haproxy_does() {
    let server = TestServer::start("one", Behaviour::Hello);
    let cfg = |port: u16| {
        let mut c = "global\n    log stdout format raw local0\n".to_string();
        c += &haproxy_defaults("tcp", "2s", "30s");
        c += "    log global\n    option tcplog\n";
        c += &format!(
            "frontend fe\n    bind 127.0.0.1:{port}\n    \
             tcp-request inspect-delay 1s\n    \
             tcp-request content accept if {{ req_ssl_hello_type 1 }}\n    \
             tcp-request content reject\n    \
             default_backend b1\n\
             backend b1\n    server s1 {}\n",
            server.addr
        );
        c
    };
    // A plain request is refused at once; a client that says nothing is
    // refused when the delay expires (the last evaluation).
    let ask = |port: u16| {
        let mut out = Vec::new();
        for (send, min, max) in [
            (&b"GET / HTTP/1.0\r\n\r\n"[..], 0, 500),
            (&b""[..], 900, 2500),
            (&b"\x16\x03\x01\x00"[..], 900, 2500),
        ] {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(send).unwrap();
            let t = Instant::now();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap_or(usize::MAX);
            let ms = t.elapsed().as_millis();
            out.push((n, (min..max).contains(&ms)));
        }
        out
    };
    // Three probes, and the start-up check that waited for the port.
    let ((theirs, hlog), (ours, olog)) = both(cfg, ask, 4);
    assert_eq!(theirs, [(0, true), (0, true), (0, true)], "haproxy");
    assert_eq!(ours, theirs, "ringlb");
    // The last three lines (the start-up probe that waited for the port
    // is logged too, by both).
    let last3 = |v: Vec<String>| v[v.len().saturating_sub(3)..].to_vec();
    let hl = last3(
        hlog.iter()
            .filter(|l| l.contains(" fe "))
            .map(|l| shape(l))
            .collect(),
    );
    let ol = last3(
        olog.lines()
            .filter(|l| l.contains(" fe "))
            .map(shape)
            .collect(),
    );
    assert_eq!(hl.len(), 3, "{hlog:?}");
    assert_eq!(hl[0], "fe fe/<NOSRV> -1/-1/T 0 PR 0/0");
    assert_eq!(ol, hl, "ringlb log:\n{olog}");
    assert_eq!(server.accepted(), 0);
}
