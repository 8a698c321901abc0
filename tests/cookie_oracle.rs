//! HAProxy is the oracle for cookie persistence: backends with `cookie ...
//! insert|rewrite|prefix` and its options run in a real haproxy 2.6 in front
//! of a recording server; ringlb's `http::rules::cookie` functions get the
//! same request and server response. The `Cookie` header the server receives
//! and the `Set-Cookie` / `Cache-Control` lines the client gets must agree.
//!
//! Needs `haproxy` (Debian package, installed by `.ci/run`).

mod support;

use ringlb::http::acl::Message;
use ringlb::http::rules::cookie::{on_request, on_response, ServerView, Stick};
use support::free_port;
use support::http::{haproxy_response_head, start_recording_origin_answering, Haproxy};
use support::oracle::compile;
use support::servers::haproxy_defaults;

/// A server that records each request head and answers `reply` (then closes).
fn origin(reply: &'static str) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    start_recording_origin_answering(reply.as_bytes(), true)
}

/// `name: value` lines of `head` named in `names`, names lower-cased.
fn lines(head: &[u8], names: &[&str]) -> Vec<String> {
    String::from_utf8_lossy(head)
        .split("\r\n")
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            let n = n.trim().to_ascii_lowercase();
            names
                .contains(&n.as_str())
                .then(|| format!("{n}: {}", v.trim()))
        })
        .collect()
}

struct Case {
    cookie: &'static str,
    reply: &'static str,
}

const PLAIN: &str = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const FRESH: &str =
    "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const FRESH_OWN: &str = "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nSet-Cookie: SRV=sess42\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const OWN: &str =
    "HTTP/1.1 200 OK\r\nSet-Cookie: SRV=sess42; path=/app\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

#[test]
fn cookie_persistence_matches_haproxy() {
    let cases = [
        Case {
            cookie: "SRV insert indirect nocache",
            reply: PLAIN,
        },
        Case {
            cookie: "SRV insert indirect nocache",
            reply: OWN,
        },
        Case {
            cookie: "SRV insert indirect nocache",
            reply: FRESH,
        },
        Case {
            cookie: "SRV insert nocache httponly",
            reply: FRESH_OWN,
        },
        Case {
            cookie: "SRV rewrite nocache",
            reply: FRESH_OWN,
        },
        Case {
            cookie: "SRV insert preserve httponly secure domain .example.com",
            reply: OWN,
        },
        Case {
            cookie: "SRV insert preserve httponly secure domain .example.com",
            reply: PLAIN,
        },
        Case {
            cookie: "SRV insert postonly",
            reply: PLAIN,
        },
        Case {
            cookie: "SRV rewrite nocache",
            reply: OWN,
        },
        Case {
            cookie: "SRV prefix",
            reply: OWN,
        },
        Case {
            cookie: "SRV prefix indirect",
            reply: OWN,
        },
    ];
    let requests: [&[u8]; 8] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nCookie: SRV=s1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1; SRV=s1; b=2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nCookie: SRV=bogus\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nCookie: SRV=s1~sess42; z=9\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"HEAD / HTTP/1.1\r\nHost: x\r\nCookie: SRV=s1; SRV=other\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nCookie: x=1\r\nCookie: SRV=s1\r\n\r\n",
    ];
    let mut cfg = String::from("global\n    maxconn 100\n");
    cfg.push_str(&haproxy_defaults("http", "1s", "2s"));
    let mut ports = Vec::new();
    let mut origins = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let port = free_port();
        let (o, seen) = origin(c.reply);
        cfg.push_str(&format!(
            "frontend f{i}\n    bind 127.0.0.1:{port}\n    default_backend b{i}\nbackend b{i}\n    cookie {}\n    server s1 127.0.0.1:{o} cookie s1\n",
            c.cookie
        ));
        ports.push(port);
        origins.push(seen);
    }
    let config = compile("c.cfg", &cfg);
    let _h = Haproxy::start(&cfg, &ports);
    let mut diffs = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let spec = config.backends[i].cookie.clone().expect("cookie spec");
        for raw in requests {
            origins[i].lock().unwrap().clear();
            let theirs_res = haproxy_response_head(ports[i], raw);
            let theirs_req = origins[i]
                .lock()
                .unwrap()
                .first()
                .cloned()
                .unwrap_or_default();
            // ringlb: the same decisions on the same bytes.
            let mut req = Message::parse_request(raw).unwrap();
            let servers = [ServerView {
                cookie: Some("s1"),
                usable: true,
            }];
            let stick = on_request(&spec, &mut req, &servers, false);
            let mut out = Vec::new();
            let mut head = ringlb::http::head::RequestHead::default();
            req.rebuild_request(&mut out, &mut head);
            let mut res = Message::parse_response(c.reply.as_bytes()).unwrap();
            let method = req.received_method().to_vec();
            on_response(&spec, &mut res, Some((0, Some("s1"))), stick, &method);
            let mut rout = Vec::new();
            let mut rhead = ringlb::http::head::ResponseHead::default();
            res.rebuild_response(&mut rout, &mut rhead);
            let want_req = lines(&theirs_req, &["cookie"]);
            let got_req = lines(&out, &["cookie"]);
            let names = ["set-cookie", "cache-control"];
            let want_res = lines(&theirs_res, &names);
            let got_res = lines(&rout, &names);
            if want_req != got_req || want_res != got_res {
                diffs.push(format!(
                    "cookie {} / {:?} ({stick:?}):\n  haproxy: {want_req:?} {want_res:?}\n  ringlb:  {got_req:?} {got_res:?}",
                    c.cookie,
                    String::from_utf8_lossy(raw).lines().nth(2).unwrap_or(""),
                ));
            }
            assert!(!matches!(stick, Stick::Down(_)));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// `maxidle`/`maxlife`: the dates haproxy writes into the cookie are the ones
/// ringlb writes (within the 4-second unit and the test's own delay), and a
/// cookie haproxy issued sticks in ringlb and is refreshed the same way.
#[test]
fn cookie_dates_match_haproxy() {
    use ringlb::http::rules::cookie::{b64tos30, on_request_at, on_response_at, Dates};
    let port = free_port();
    let (o, _seen) = origin(PLAIN);
    let defaults = haproxy_defaults("http", "1s", "2s");
    let cfg = format!(
        "{defaults}frontend f\n    bind 127.0.0.1:{port}\n    default_backend b\nbackend b\n    cookie SRV insert maxidle 30m maxlife 2h\n    server s1 127.0.0.1:{o} cookie s1\n"
    );
    let config = compile("d.cfg", &cfg);
    let spec = config.backends[0].cookie.clone().unwrap();
    let _h = Haproxy::start(&cfg, &[port]);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let set_cookie = |head: &[u8]| -> String {
        lines(head, &["set-cookie"])
            .first()
            .cloned()
            .unwrap_or_default()
            .trim_start_matches("set-cookie: ")
            .to_string()
    };
    let decode = |v: &str| -> Vec<u64> {
        let value = v.split(';').next().unwrap().trim_start_matches("SRV=");
        value
            .split('|')
            .skip(1)
            .map(|d| b64tos30(d.as_bytes()).unwrap() << 2)
            .collect()
    };
    let servers = [ServerView {
        cookie: Some("s1"),
        usable: true,
    }];
    // ringlb's `Set-Cookie` for a GET with `raw`'s cookie answered by PLAIN
    // at `now` (with the request's decision).
    let ours_for = |raw: &str| {
        let mut req = Message::parse_request(raw.as_bytes()).unwrap();
        let (stick, d) = on_request_at(&spec, &mut req, &servers, false, Some(now()));
        let mut res = Message::parse_response(PLAIN.as_bytes()).unwrap();
        on_response_at(
            &spec,
            &mut res,
            Some((0, Some("s1"))),
            stick,
            d,
            b"GET",
            Some(now()),
        );
        let set = res
            .lines(b"set-cookie")
            .next()
            .map(|v| String::from_utf8(v.to_vec()).unwrap());
        (stick, set)
    };
    // First visit.
    let theirs = set_cookie(&haproxy_response_head(
        port,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ));
    let t = now();
    let mut res = Message::parse_response(PLAIN.as_bytes()).unwrap();
    on_response_at(
        &spec,
        &mut res,
        Some((0, Some("s1"))),
        Stick::None,
        Dates::default(),
        b"GET",
        Some(t),
    );
    let ours = String::from_utf8(res.lines(b"set-cookie").next().unwrap().to_vec()).unwrap();
    assert!(
        theirs.starts_with("SRV=s1|") && theirs.ends_with("; path=/"),
        "{theirs}"
    );
    let (a, b) = (decode(&theirs), decode(&ours));
    assert_eq!(a.len(), 2, "{theirs}");
    assert_eq!(b.len(), 2, "{ours}");
    for (x, y) in a.iter().zip(&b) {
        assert!(x.abs_diff(*y) <= 8, "{theirs} vs {ours}");
    }
    // haproxy's cookie back to both: it sticks and the first date is kept.
    let value = theirs.split(';').next().unwrap().to_string();
    let raw = format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: {value}\r\n\r\n");
    let theirs2 = set_cookie(&haproxy_response_head(port, raw.as_bytes()));
    let (stick, ours2) = ours_for(&raw);
    assert_eq!(stick, Stick::Server(0));
    let ours2 = ours2.unwrap_or_default();
    // Within the same 4-second unit neither refreshes (the last date is not
    // in the past yet); later both do, keeping the first date.
    if theirs2.is_empty() || ours2.is_empty() {
        let t = now();
        let still_fresh = a[0] >= t.saturating_sub(4);
        assert!(still_fresh, "one side refreshed: {theirs2:?} vs {ours2:?}");
    } else {
        let (a, b) = (decode(&theirs2), decode(&ours2));
        assert_eq!(a[1], b[1], "first date kept: {theirs2} vs {ours2}");
        assert!(a[0].abs_diff(b[0]) <= 8, "{theirs2} vs {ours2}");
    }
    // Five seconds on, the last date is in the past: both refresh.
    std::thread::sleep(std::time::Duration::from_secs(5));
    let theirs3 = set_cookie(&haproxy_response_head(port, raw.as_bytes()));
    let ours3 = ours_for(&raw).1.expect("ringlb refreshes the cookie");
    let (x, y) = (decode(&theirs3), decode(&ours3));
    assert_eq!(x[1], a[1], "haproxy kept the first date: {theirs3}");
    assert_eq!(x[1], y[1], "first date kept: {theirs3} vs {ours3}");
    assert!(x[0].abs_diff(y[0]) <= 8, "{theirs3} vs {ours3}");
}
