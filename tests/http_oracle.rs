//! HAProxy is the oracle: the same raw requests go to a real haproxy 2.6 (mode
//! http, in front of a small server on loopback) and to ringlb's sans-io request
//! reader, and the status each answers must agree — 400, 413, 422, 501, or the
//! server's 200 when the request is accepted. Likewise for raw server responses:
//! passed on, or 502. The few places where ringlb is deliberately stricter are
//! listed with both answers. The heads ringlb forwards (request to the server,
//! response to the client) carry the same end-to-end headers and the same
//! `Connection` verdict as haproxy's, for each of `option http-keep-alive`,
//! `http-server-close` and `httpclose`. Chunked request bodies (sizes,
//! extensions, bare LF, trailers, malformed framing) are judged alike with
//! `option http-buffer-request`.
//!
//! Needs `haproxy` (Debian package, installed by `.ci/run`).

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use ringlb::http::head::{HeadParser, Headers, Limits, Method, Parsed, RequestHead, ResponseHead};
use ringlb::http::message::{Event, RequestReader, ResponseReader};
use ringlb::http::rewrite::{
    client_keep_alive, write_request, write_response, ForwardFor, HttpMode, Network, RequestContext,
};
use ringlb::http::validate::{check_request, check_response, list_words};
use support::{free_port, wait_until};

/// A server that answers every request head with `200` and closes.
fn start_origin() -> u16 {
    start_origin_with(Arc::new(Mutex::new(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec(),
    )))
}

/// A server that answers every request head with the bytes in `reply` and
/// closes.
fn start_origin_with(reply: Arc<Mutex<Vec<u8>>>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let reply = reply.lock().unwrap().clone();
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
                let _ = s.write_all(&reply);
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
        ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 200, 400),
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

/// The status ringlb sends the client for a server's response: the server's own
/// once its head is accepted, 502 when it is refused.
fn ringlb_response_status(raw: &[u8], method: Method) -> u16 {
    let mut r = ResponseReader::new(Limits::default());
    r.expect(method);
    match r.next(raw, Instant::now()) {
        Ok(Event::Head { .. }) => r.head().status,
        Ok(ev) => panic!("incomplete head: {ev:?}"),
        Err(e) => e.response_status(),
    }
}

/// (case, request sent, server's raw response, haproxy's status, ours).
type ResponseCase<'a> = (&'a str, &'a [u8], &'a [u8], u16, u16);

#[test]
fn response_verdicts_match_haproxy() {
    let reply = Arc::new(Mutex::new(Vec::new()));
    let origin = start_origin_with(reply.clone());
    let h = start_haproxy(origin);
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let ws = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let cases: Vec<ResponseCase> = vec![
        ("length", get, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, 200),
        ("no reason", get, b"HTTP/1.1 204\r\n\r\n", 204, 204),
        ("close-delimited", get, b"HTTP/1.0 200 OK\r\n\r\nall", 200, 200),
        ("chunked", get, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, 200),
        ("CL + TE", get, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, 200),
        ("CL differs", get, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok", 502, 502),
        ("TE gzip", get, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", 502, 502),
        ("bad status", get, b"HTTP/1.1 abc OK\r\n\r\n", 502, 502),
        ("space in name", get, b"HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 0\r\n\r\n", 502, 502),
        ("not HTTP", get, b"garbage\r\n\r\n", 502, 502),
        ("101 without accept", ws, b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 502, 502),
        ("101 with accept", ws, b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", 101, 101),
        // Deliberately stricter: haproxy unfolds obs-fold in responses and takes
        // any HTTP/d.d version as 1.1; httparse knows only 1.0 and 1.1.
        ("HTTP/2.0", get, b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, 502),
        ("obs-fold", get, b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", 200, 502),
    ];
    let mut wrong = Vec::new();
    for (name, request, response, hap_want, ours_want) in cases {
        *reply.lock().unwrap() = response.to_vec();
        let hap = haproxy_status(h.port, request);
        let ours = ringlb_response_status(response, Method::Get);
        if hap != hap_want || ours != ours_want {
            wrong.push(format!(
                "{name}: haproxy {hap} (expected {hap_want}), ringlb {ours} (expected {ours_want})"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A server that records each request head it gets and answers `204`.
fn start_recording_origin() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        log.lock().unwrap().push(buf[..end + 4].to_vec());
                        buf.drain(..end + 4);
                        let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
                    }
                }
            });
        }
    });
    (port, seen)
}

/// What of a forwarded head both proxies must agree on: the request line, the
/// end-to-end headers in order (names lower-cased: haproxy lower-cases them), and
/// which of close / keep-alive / upgrade `Connection` says.
fn end_to_end(raw: &[u8]) -> (String, Vec<(String, String)>, [bool; 3]) {
    let mut h = RequestHead::default();
    let parsed = HeadParser::new(Limits::default()).parse_request(raw, Instant::now(), &mut h);
    assert!(matches!(parsed, Ok(Parsed::Complete(_))), "{parsed:?}");
    let line = String::from_utf8_lossy(&h.request_line(raw)).into_owned();
    let (headers, connection) = end_to_end_headers(&h.headers, raw);
    (line, headers, connection)
}

type HeaderList = Vec<(String, String)>;

fn end_to_end_headers(h: &Headers, raw: &[u8]) -> (HeaderList, [bool; 3]) {
    let named: Vec<Vec<u8>> = h
        .values(raw, "connection")
        .flat_map(list_words)
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let hop = [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"upgrade",
        b"transfer-encoding",
    ];
    let headers = h
        .list
        .iter()
        .map(|x| {
            (
                x.name.get(raw).to_ascii_lowercase(),
                x.value.get(raw).to_vec(),
            )
        })
        .filter(|(n, _)| !hop.contains(&n.as_slice()) && !named.contains(n))
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(&n).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    let has = |t: &[u8]| named.iter().any(|w| w == t);
    (
        headers,
        [has(b"close"), has(b"keep-alive"), has(b"upgrade")],
    )
}

#[test]
fn forwarded_requests_match_haproxy() {
    let (origin, seen) = start_recording_origin();
    let dir = tempfile::tempdir().unwrap();
    let (ka, sc, hc) = (free_port(), free_port(), free_port());
    let cfg = format!(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 2s\n  timeout server 2s\n\
         frontend ka\n  bind 127.0.0.1:{ka}\n  option forwardfor\n  default_backend be\n\
         frontend sc\n  bind 127.0.0.1:{sc}\n  option http-server-close\n  option forwardfor header X-Real-IP\n  default_backend be\n\
         frontend hc\n  bind 127.0.0.1:{hc}\n  option httpclose\n  option forwardfor except 127.0.0.0/8\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:{origin}\n"
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
    let _h = Haproxy {
        child,
        port: ka,
        _dir: dir,
    };
    assert!(wait_until(Duration::from_secs(10), || [ka, sc, hc]
        .iter()
        .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())));

    let real_ip = ForwardFor {
        header: "X-Real-IP".into(),
        ..ForwardFor::default()
    };
    let except = ForwardFor {
        except: Some(Network {
            addr: "127.0.0.0".parse().unwrap(),
            prefix: 8,
        }),
        ..ForwardFor::default()
    };
    let default_ff = ForwardFor::default();
    let fronts = [
        (ka, HttpMode::KeepAlive, &default_ff),
        (sc, HttpMode::ServerClose, &real_ip),
        (hc, HttpMode::Close, &except),
    ];
    let requests: [&[u8]; 7] = [
        b"GET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /f HTTP/1.0\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: 9.9.9.9\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-Forwarded-For: 1.2.3.4\r\nUser-Agent: t\r\n\r\n",
        b"GET /b HTTP/1.0\r\nHost: x\r\n\r\n",
        b"GET /c HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        b"POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ];
    let mut wrong = Vec::new();
    for (port, mode, ff) in fronts {
        for raw in requests {
            seen.lock().unwrap().clear();
            let status = haproxy_status(port, raw);
            let theirs = seen.lock().unwrap().first().cloned().unwrap_or_default();
            if theirs.is_empty() {
                wrong.push(format!(
                    "{port}: haproxy answered {status}, forwarded nothing"
                ));
                continue;
            }
            let mut h = RequestHead::default();
            HeadParser::new(Limits::default())
                .parse_request(raw, Instant::now(), &mut h)
                .unwrap();
            let info = check_request(&h, raw).unwrap();
            let ctx = RequestContext {
                mode,
                forward_for: Some(ff),
                client: "127.0.0.1".parse().unwrap(),
            };
            let mut ours = Vec::new();
            write_request(&h, &info, raw, &ctx, &mut ours);
            let (a, b) = (end_to_end(&theirs), end_to_end(&ours));
            if a != b {
                wrong.push(format!(
                    "{mode:?} {:?}\n  haproxy {a:?}\n  ringlb  {b:?}",
                    String::from_utf8_lossy(&raw[..raw.len().min(20)])
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The response head haproxy sends back for `raw`.
fn haproxy_response_head(port: u16, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    out
}

fn response_end_to_end(raw: &[u8]) -> (u16, HeaderList, [bool; 3]) {
    let mut h = ResponseHead::default();
    let parsed = HeadParser::new(Limits::default()).parse_response(raw, Instant::now(), &mut h);
    assert!(matches!(parsed, Ok(Parsed::Complete(_))), "{parsed:?}");
    let (headers, connection) = end_to_end_headers(&h.headers, raw);
    (h.status, headers, connection)
}

#[test]
fn forwarded_responses_match_haproxy() {
    let reply = Arc::new(Mutex::new(Vec::new()));
    let origin = start_origin_with(reply.clone());
    let dir = tempfile::tempdir().unwrap();
    let (ka, sc, hc) = (free_port(), free_port(), free_port());
    let cfg = format!(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 2s\n  timeout server 2s\n\
         frontend ka\n  bind 127.0.0.1:{ka}\n  default_backend be\n\
         frontend sc\n  bind 127.0.0.1:{sc}\n  option http-server-close\n  default_backend be\n\
         frontend hc\n  bind 127.0.0.1:{hc}\n  option httpclose\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:{origin}\n"
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
    let _h = Haproxy {
        child,
        port: ka,
        _dir: dir,
    };
    assert!(wait_until(Duration::from_secs(10), || [ka, sc, hc]
        .iter()
        .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())));

    let fronts = [
        (ka, HttpMode::KeepAlive),
        (sc, HttpMode::ServerClose),
        (hc, HttpMode::Close),
    ];
    let requests: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ];
    let responses: [&[u8]; 3] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
    ];
    let mut wrong = Vec::new();
    for (port, mode) in fronts {
        for req in requests {
            for resp in responses {
                *reply.lock().unwrap() = resp.to_vec();
                let theirs = haproxy_response_head(port, req);
                if theirs.is_empty() {
                    wrong.push(format!("{mode:?}: no response"));
                    continue;
                }
                let mut rh = RequestHead::default();
                HeadParser::new(Limits::default())
                    .parse_request(req, Instant::now(), &mut rh)
                    .unwrap();
                let rinfo = check_request(&rh, req).unwrap();
                let mut h = ResponseHead::default();
                HeadParser::new(Limits::default())
                    .parse_response(resp, Instant::now(), &mut h)
                    .unwrap();
                let info = check_response(&h, resp, Method::Get).unwrap();
                let keep = client_keep_alive(mode, &rinfo, &info);
                let mut ours = Vec::new();
                write_response(&h, &info, resp, rh.version, keep, &mut ours);
                let (a, b) = (response_end_to_end(&theirs), response_end_to_end(&ours));
                if a != b {
                    wrong.push(format!(
                        "{mode:?} {:?} -> {:?}\n  haproxy {a:?}\n  ringlb  {b:?}",
                        String::from_utf8_lossy(&req[..16]),
                        String::from_utf8_lossy(&resp[..20])
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The status ringlb answers once it has read the whole request (head and body),
/// as HAProxy does with `option http-buffer-request`.
fn ringlb_status_after_body(raw: &[u8]) -> u16 {
    let mut r = RequestReader::new(Limits::default());
    let mut at = 0;
    loop {
        match r.next(&raw[at..], Instant::now()) {
            Ok(Event::Head { len }) | Ok(Event::Data { len }) | Ok(Event::Framing { len }) => {
                at += len
            }
            Ok(Event::End { .. }) => return 200,
            Ok(Event::NeedMore) => return 0,
            Err(e) => return e.request_status(),
        }
    }
}

#[test]
fn chunked_bodies_match_haproxy() {
    let origin = start_origin();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = format!(
        "defaults\n  mode http\n  timeout connect 1s\n  timeout client 2s\n  timeout server 2s\n  timeout http-request 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  option http-buffer-request\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:{origin}\n"
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
    let _h = Haproxy {
        child,
        port,
        _dir: dir,
    };
    assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(
        ("127.0.0.1", port)
    )
    .is_ok()));
    let bodies: [(&str, &[u8], u16); 14] = [
        ("plain", b"5\r\nhello\r\n0\r\n\r\n", 200),
        ("extension", b"5;a=b\r\nhello\r\n0\r\n\r\n", 200),
        (
            "blank before extension",
            b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
            200,
        ),
        ("upper-case hex", b"A\r\n0123456789\r\n0\r\n\r\n", 200),
        ("bare LF", b"5\nhello\n0\n\n", 200),
        ("trailers", b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", 200),
        ("leading zeros", b"0005\r\nhello\r\n000\r\n\r\n", 200),
        ("leading space", b" 5\r\nhello\r\n0\r\n\r\n", 400),
        ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n", 400),
        ("data too long", b"5\r\nhelloX\r\n0\r\n\r\n", 400),
        ("no size", b"\r\nhello\r\n0\r\n\r\n", 400),
        ("overflow", b"FFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n", 400),
        ("negative", b"-5\r\nhello\r\n0\r\n\r\n", 400),
        ("bad trailer", b"5\r\nhello\r\n0\r\nno colon\r\n\r\n", 400),
    ];
    let mut wrong = Vec::new();
    for (name, body, want) in bodies {
        let raw = [
            &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            body,
        ]
        .concat();
        let hap = haproxy_status(port, &raw);
        let ours = ringlb_status_after_body(&raw);
        if hap != want || ours != want {
            wrong.push(format!(
                "{name}: haproxy {hap}, ringlb {ours}, expected {want}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
