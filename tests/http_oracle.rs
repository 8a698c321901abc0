//! HAProxy is the oracle: the same raw requests go to a real haproxy 2.6 (mode
//! http, in front of a small server on loopback) and to ringlb's sans-io request
//! reader, and the status each answers must agree — 400, 413, 422, 501, or the
//! server's 200 when the request is accepted. The few places where ringlb is
//! deliberately stricter are listed with both answers.
//!
//! Needs `haproxy` (Debian package, installed by `.ci/run`).

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringlb::http::head::Limits;
use ringlb::http::message::{Event, RequestReader};
use support::{free_port, wait_until};

/// A server that answers every request head with `200` and closes.
fn start_origin() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                let _ = s.shutdown(Shutdown::Write);
                while matches!(s.read(&mut chunk), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

struct Haproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_haproxy(origin: u16) -> Haproxy {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = format!(
        "global\n  maxconn 100\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 2s\n  timeout server 2s\n  timeout http-request 1s\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s 127.0.0.1:{origin}\n"
    );
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy (Debian package haproxy) must be installed");
    let h = Haproxy {
        child,
        port,
        _dir: dir,
    };
    assert!(
        wait_until(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "haproxy did not start"
    );
    h
}

/// The status haproxy answers to `raw` (0 if it closed without answering).
fn haproxy_status(port: u16, raw: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(3);
    while !out.windows(2).any(|w| w == b"\r\n") && Instant::now() < end {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    std::str::from_utf8(out.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// The status ringlb answers: the reader's refusal, or 200 from the server once
/// the request head is accepted.
fn ringlb_status(raw: &[u8]) -> u16 {
    let mut r = RequestReader::new(Limits::default());
    match r.next(raw, Instant::now()) {
        Ok(Event::Head { .. }) => 200,
        Ok(ev) => panic!("incomplete head: {ev:?}"),
        Err(e) => e.request_status(),
    }
}

fn headers(n: usize) -> Vec<u8> {
    let mut v = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 1..n {
        v.extend_from_slice(format!("X-{i}: a\r\n").as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    v
}

#[test]
fn request_verdicts_match_haproxy() {
    let origin = start_origin();
    let h = start_haproxy(origin);
    let long_uri = [
        &b"GET /"[..],
        &[b'a'; 15500],
        b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    .concat();
    let big_header = [
        &b"GET / HTTP/1.1\r\nHost: x\r\nX-A: "[..],
        &[b'a'; 15500],
        b"\r\n\r\n",
    ]
    .concat();
    let agree: Vec<(&str, Vec<u8>, u16)> = vec![
        ("plain", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 200),
        ("bare LF", b"GET / HTTP/1.1\nHost: x\n\n".to_vec(), 200),
        ("no Host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 200),
        ("HTTP/1.0", b"GET / HTTP/1.0\r\n\r\n".to_vec(), 200),
        ("empty value", b"GET / HTTP/1.1\r\nHost: x\r\nX-E:\r\n\r\n".to_vec(), 200),
        ("CL twice, equal", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n".to_vec(), 200),
        ("CL list, equal", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,1\r\n\r\na".to_vec(), 200),
        ("CL + TE", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(), 200),
        ("CL differs", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(), 400),
        ("CL signed", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na".to_vec(), 400),
        ("TE not chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 400),
        ("TE chunked twice", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n".to_vec(), 400),
        ("TE chunked then gzip", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec(), 400),
        ("TE gzip, chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(), 422),
        ("HTTP/1.0 GET with body", b"GET / HTTP/1.0\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".to_vec(), 413),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        ("authority differs", b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n".to_vec(), 400),
        ("space in name", b"GET / HTTP/1.1\r\nX A: a\r\n\r\n".to_vec(), 400),
        ("space before colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(), 400),
        ("leading space", b"GET / HTTP/1.1\r\n Host: x\r\n\r\n".to_vec(), 400),
        ("fragment", b"GET /a#f HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400),
        ("websocket without key", b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n".to_vec(), 400),
        ("100 header lines", headers(100), 200),
        ("101 header lines", headers(101), 400),
        ("long URI", long_uri, 400),
        ("big header", big_header, 400),
    ];
    let mut wrong = Vec::new();
    for (name, raw, want) in &agree {
        let hap = haproxy_status(h.port, raw);
        let ours = ringlb_status(raw);
        if hap != *want || ours != *want {
            wrong.push(format!(
                "{name}: haproxy {hap}, ringlb {ours}, expected {want}"
            ));
        }
    }
    // Deliberately stricter than haproxy 2.6 (or not tunnelling CONNECT):
    // (case, raw, haproxy's answer, ours).
    let differ: Vec<(&str, &[u8], u16, u16)> = vec![
        (
            "obs-fold",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
            200,
            400,
        ),
        (
            "NUL in value",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
            200,
            400,
        ),
        (
            "double spaces",
            b"GET  /  HTTP/1.1\r\nHost: x\r\n\r\n",
            200,
            400,
        ),
        (
            "CONNECT",
            b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
            200,
            501,
        ),
    ];
    for (name, raw, hap_want, ours_want) in differ {
        let hap = haproxy_status(h.port, raw);
        let ours = ringlb_status(raw);
        if hap != hap_want || ours != ours_want {
            wrong.push(format!(
                "{name}: haproxy {hap} (expected {hap_want}), ringlb {ours} (expected {ours_want})"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
