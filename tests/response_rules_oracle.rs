//! HAProxy is the oracle for `http-response` rules: the same rules run in a
//! real haproxy 2.6 in front of a server answering canned responses, and in
//! ringlb's `http::rules` on the same responses; the status line and the
//! header lines (names lower-cased, as haproxy writes them; framing headers
//! aside) must agree, and a `deny` must send the same bytes.
//!
//! Needs `haproxy` (Debian package, installed by `.ci/run`).

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ringlb::http::acl::{Message, NoCounters};
use ringlb::http::rules::{Conn, Txn, Verdict};
use support::free_port;
use support::http::Haproxy;

/// The canned response for a path.
fn reply(path: &str) -> String {
    let extra = match path {
        "/err" => "Server: nginx\r\nCache-Control: public\r\n",
        "/ok" => "Server: nginx\r\nCache-Control: public, max-age=5\r\nX-Ver: v1.2\r\n",
        "/odd" => "X-Odd: 1\r\nX-Ver: 2\r\n",
        "/leak" => "X-Leak: secret\r\n",
        _ => "",
    };
    let status = if path == "/err" {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\n\r\n")
}

fn origin() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let path = String::from_utf8_lossy(&buf)
                    .split(' ')
                    .nth(1)
                    .unwrap_or("/")
                    .to_string();
                let _ = s.write_all(reply(&path).as_bytes());
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

fn exchange(port: u16, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(h) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..h]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if out.len() >= h + 4 + len {
                return out;
            }
        }
        if Instant::now() > end {
            return out;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Status line and header lines, names lower-cased, framing headers aside.
fn normal(head: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(head);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.split("\r\n");
    let mut out = vec![lines.next().unwrap_or("").to_string()];
    for l in lines {
        let Some((n, v)) = l.split_once(':') else {
            continue;
        };
        let n = n.trim().to_ascii_lowercase();
        if n == "content-length" || n == "connection" {
            continue;
        }
        out.push(format!("{n}: {}", v.trim()));
    }
    out
}

#[test]
fn response_rules_match_haproxy() {
    let port = free_port();
    let o = origin();
    let text = format!(
        r#"defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s

frontend fe
    bind 127.0.0.1:{port}
    http-request set-var(txn.path) path
    http-response set-header X-Fe fe-%[status]
    default_backend be

backend be
    acl err status ge 500
    http-response set-header X-Served-By ringlb
    http-response del-header Server
    http-response replace-value Cache-Control ^public$ private
    http-response replace-header X-Ver ^v(.*)$ version-\1
    http-response add-header X-Path %[var(txn.path)]
    http-response set-status 503 reason "Try Later" if err
    http-response set-status 299 if {{ res.hdr(x-odd) -m found }}
    http-response deny if {{ res.hdr(x-leak) -m found }}
    http-response add-header X-Status %[status]
    server s 127.0.0.1:{o}
"#
    );
    let c =
        ringlb::config::parse_haproxy(&[(PathBuf::from("r.cfg"), text.clone())], false, &|_| None)
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
    let _h = Haproxy::start(&text, &[port]);
    let fe = c.frontends[0].rules.get().expect("frontend rules");
    let be = c.backends[0].rules.get().expect("backend rules");
    let mut diffs = Vec::new();
    for path in ["/err", "/ok", "/odd", "/leak", "/plain"] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let theirs = exchange(port, raw.as_bytes());
        let mut txn = Txn::default();
        txn.req = Message::parse_request(raw.as_bytes()).unwrap();
        txn.begin();
        txn.res = Message::parse_response(reply(path).as_bytes()).unwrap();
        let conn = Conn {
            client: "127.0.0.1:40000".parse().unwrap(),
            local: "127.0.0.1:80".parse().unwrap(),
            tls: None,
            backend: Some(0),
            counters: &NoCounters,
        };
        let mut out = Vec::new();
        assert_eq!(
            fe.apply_request(&mut txn, &conn, &mut out),
            Verdict::Continue
        );
        let mut v = be.apply_response(&mut txn, &conn, &mut out);
        if v == Verdict::Continue {
            v = fe.apply_response(&mut txn, &conn, &mut out);
        }
        let ours = if v == Verdict::Continue {
            let mut o = Vec::new();
            let mut h = ringlb::http::head::ResponseHead::default();
            txn.res.rebuild_response(&mut o, &mut h);
            normal(&o)
        } else {
            if out != theirs {
                diffs.push(format!(
                    "{path}: deny\n  haproxy: {:?}\n  ringlb:  {:?}",
                    String::from_utf8_lossy(&theirs),
                    String::from_utf8_lossy(&out)
                ));
            }
            normal(&out)
        };
        let want = normal(&theirs);
        if want != ours {
            diffs.push(format!("{path}\n  haproxy: {want:?}\n  ringlb:  {ours:?}"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
