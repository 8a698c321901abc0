//! The heads ringlb forwards — the request to the server, the response to the
//! client — compared with what a real haproxy 2.6 sends for the same input:
//! request line, end-to-end headers in order, `X-Forwarded-For` variants and the
//! `Connection` verdict, for `option http-keep-alive`, `http-server-close` and
//! `httpclose`. Header case and hop-by-hop headers differ on purpose (see
//! `src/http/rewrite.rs`), so both heads are compared without them.
//!
//! Needs `haproxy` (Debian package, installed by `.ci/run`).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ringlb::http::head::{HeadParser, Headers, Limits, Method, Parsed, RequestHead, ResponseHead};
use ringlb::http::rewrite::{
    client_keep_alive, write_request, write_response, ForwardFor, HttpMode, Network, RequestContext,
};
use ringlb::http::validate::{check_request, check_response, list_words};
use support::http::{
    haproxy_response_head, haproxy_status, start_origin_with, start_recording_origin, Haproxy,
};
use support::servers::haproxy_defaults;
use support::{free_port, Ringlb};

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
    let (ka, sc, hc) = (free_port(), free_port(), free_port());
    let defaults = haproxy_defaults("http", "1s", "2s");
    let cfg = format!(
        "{defaults}\
         frontend ka\n  bind 127.0.0.1:{ka}\n  option forwardfor\n  default_backend be\n\
         frontend sc\n  bind 127.0.0.1:{sc}\n  option http-server-close\n  option forwardfor header X-Real-IP\n  default_backend be\n\
         frontend hc\n  bind 127.0.0.1:{hc}\n  option httpclose\n  option forwardfor except 127.0.0.0/8\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:{origin}\n"
    );
    let _h = Haproxy::start(&cfg, &[ka, sc, hc]);

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
    let (ka, sc, hc) = (free_port(), free_port(), free_port());
    let defaults = haproxy_defaults("http", "1s", "2s");
    let cfg = format!(
        "{defaults}\
         frontend ka\n  bind 127.0.0.1:{ka}\n  default_backend be\n\
         frontend sc\n  bind 127.0.0.1:{sc}\n  option http-server-close\n  default_backend be\n\
         frontend hc\n  bind 127.0.0.1:{hc}\n  option httpclose\n  default_backend be\n\
         backend be\n  server s 127.0.0.1:{origin}\n"
    );
    let _h = Haproxy::start(&cfg, &[ka, sc, hc]);

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

/// `option forwardfor` with `header`, `except` and `if-none`, in a frontend
/// and in a backend, run by both proxies from one haproxy.cfg: the request
/// each forwards must carry the same end-to-end headers.
#[test]
fn forwardfor_options_on_the_wire_match_haproxy() {
    let (origin, seen) = start_recording_origin();
    let defaults = haproxy_defaults("http", "1s", "2s");
    let cfg = |p: [u16; 4]| {
        format!(
            "{defaults}\
             frontend plain\n  bind 127.0.0.1:{}\n  option forwardfor\n  default_backend be\n\
             frontend named\n  bind 127.0.0.1:{}\n  option forwardfor header X-Real-IP if-none\n  default_backend be\n\
             frontend except\n  bind 127.0.0.1:{}\n  option forwardfor except 127.0.0.0/8\n  default_backend be\n\
             frontend via_backend\n  bind 127.0.0.1:{}\n  default_backend be_ff\n\
             backend be\n  server s 127.0.0.1:{origin}\n\
             backend be_ff\n  option forwardfor header X-Client\n  server s 127.0.0.1:{origin}\n",
            p[0], p[1], p[2], p[3]
        )
    };
    let theirs = [free_port(), free_port(), free_port(), free_port()];
    let ours = [free_port(), free_port(), free_port(), free_port()];
    let _h = Haproxy::start(&cfg(theirs), &theirs);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ff.cfg");
    std::fs::write(&path, cfg(ours)).unwrap();
    let argv: Vec<String> = vec!["-f".into(), path.display().to_string(), "-db".into()];
    let _lb = Ringlb::start_argv(tempfile::tempdir().unwrap(), path.clone(), &argv);
    let requests: [&[u8]; 3] = [
        b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Real-IP: 9.9.9.9\r\n\r\n",
        b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: 1.2.3.4\r\nX-Client: 5.6.7.8\r\n\r\n",
    ];
    let forwarded = |port: u16, raw: &[u8]| {
        seen.lock().unwrap().clear();
        let status = haproxy_status(port, raw);
        assert_eq!(status, 204, "port {port}");
        let head = seen.lock().unwrap().first().cloned().expect("forwarded");
        end_to_end(&head)
    };
    let mut wrong = Vec::new();
    for (t, o) in theirs.iter().zip(&ours) {
        for raw in requests {
            let (a, b) = (forwarded(*t, raw), forwarded(*o, raw));
            if a != b {
                wrong.push(format!("{t}/{o}:\n  haproxy {a:?}\n  ringlb  {b:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
