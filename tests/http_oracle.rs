//! HAProxy is the oracle: the same raw requests go to a real haproxy 2.6 (mode
//! http, in front of a small server on loopback) and to ringlb's sans-io request
//! reader, and the status each answers must agree — 400, 413, 422, 501, or the
//! server's 200 when the request is accepted. Likewise for raw server responses
//! (passed on, or 502) and for chunked request bodies (sizes, extensions, bare
//! LF, trailers, malformed framing) with `option http-buffer-request`. The few
//! places where ringlb is deliberately stricter are listed with both answers.
//!
//! Needs `haproxy` (Debian package, installed by `.ci/run`).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ringlb::http::head::{Limits, Method};
use ringlb::http::message::{Event, RequestReader, ResponseReader};
use support::free_port;
use support::http::{haproxy_status, start_origin, start_origin_with, Haproxy};
use support::servers::haproxy_defaults;

/// haproxy in `mode http` in front of `origin`; its port.
fn start_haproxy(origin: u16) -> (Haproxy, u16) {
    let port = free_port();
    let defaults = haproxy_defaults("http", "1s", "2s");
    let cfg = format!(
        "global\n  maxconn 100\n{defaults}  timeout http-request 1s\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s 127.0.0.1:{origin}\n"
    );
    (Haproxy::start(&cfg, &[port]), port)
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
    let (_h, port) = start_haproxy(origin);
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
        let hap = haproxy_status(port, raw);
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
        let hap = haproxy_status(port, raw);
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
    let (_h, port) = start_haproxy(origin);
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
        let hap = haproxy_status(port, request);
        let ours = ringlb_response_status(response, Method::Get);
        if hap != hap_want || ours != ours_want {
            wrong.push(format!(
                "{name}: haproxy {hap} (expected {hap_want}), ringlb {ours} (expected {ours_want})"
            ));
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
    let port = free_port();
    let defaults = haproxy_defaults("http", "1s", "2s");
    let cfg = format!(
        "{defaults}  timeout http-request 1s\n\
         frontend fe\n  bind 127.0.0.1:{port}\n  option http-buffer-request\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:{origin}\n"
    );
    let _h = Haproxy::start(&cfg, &[port]);
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
