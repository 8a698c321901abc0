//! `option httplog` lines as ringlb formats them are read by `halog` (Debian's
//! haproxy package) like HAProxy's own: 10,000 requests, no parse error, the
//! status codes, servers and URLs counted as written.

mod support;

use std::time::{Duration, UNIX_EPOCH};

use ringlb::log::{httplog, syslog_time, HttpRecord, Names, SessionRecord, Termination};
use support::clients::halog;

/// The line a file target gets: syslog prefix then the httplog line.
fn lines(n: usize) -> (String, [usize; 4]) {
    let names = Names {
        frontends: vec!["web".into()],
        backends: vec![("app".into(), vec!["a1".into(), "a2".into()])],
    };
    let mut out = String::new();
    let mut per_status = [0usize; 4]; // 200, 404, 503, 400
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = UNIX_EPOCH + Duration::from_millis(1_795_675_441_828 + i as u64 * 7);
        let kind = (x % 20) as usize;
        let (status, server, term, line): (u16, Option<usize>, Termination, Option<Box<[u8]>>) =
            match kind {
                0 => (
                    503,
                    None,
                    Termination::NO_SERVER,
                    Some(Box::from(&b"GET /down HTTP/1.1"[..])),
                ),
                1 => (400, None, Termination::PROXY_REQUEST, None),
                2 | 3 => (
                    404,
                    Some(1),
                    Termination::NORMAL,
                    Some(Box::from(
                        format!("GET /missing/{} HTTP/1.1", x % 5).as_bytes(),
                    )),
                ),
                _ => (
                    200,
                    Some((x % 2) as usize),
                    Termination::NORMAL,
                    Some(Box::from(
                        format!("GET /item?id={} HTTP/1.1", x % 100).as_bytes(),
                    )),
                ),
            };
        per_status[match status {
            200 => 0,
            404 => 1,
            503 => 2,
            _ => 3,
        }] += 1;
        let r = HttpRecord {
            session: SessionRecord {
                frontend: 0,
                backend: if status == 400 { None } else { Some(0) },
                server,
                client: format!("10.0.{}.{}:{}", x % 7, x % 250, 1024 + x % 60000)
                    .parse()
                    .unwrap(),
                accept_time: t,
                tw_ms: if server.is_some() { 0 } else { -1 },
                tc_ms: if server.is_some() { (x % 3) as i64 } else { -1 },
                tt_ms: 0,
                bytes_up: 90,
                bytes_down: if status == 400 { 0 } else { 200 + x % 5000 },
                termination: term,
                retries: 0,
                redispatched: false,
                actconn: 3,
                feconn: 3,
                beconn: 2,
                srv_conn: 1,
                srv_queue: 0,
                backend_queue: 0,
                ssl: None,
            },
            request_time: t,
            tr_request_ms: if status == 400 { -1 } else { 0 },
            tr_response_ms: if server.is_some() {
                (x % 40) as i64
            } else {
                -1
            },
            ta_ms: (x % 50) as i64,
            status,
            request_line: line,
            request_captures: Vec::new(),
            response_captures: Vec::new(),
            persistence: *b"--",
            log_level: None,
            samples: Vec::new(),
        };
        out.push_str(&format!(
            "{} lb1 ringlb[4242]: {}\n",
            syslog_time(t),
            httplog(&r, &names)
        ));
    }
    (out, per_status)
}

#[test]
fn halog_reads_ten_thousand_httplog_lines() {
    let (log, per_status) = lines(10_000);
    let (_, summary) = halog(&["-st"], &log);
    assert!(
        summary.contains("10000 lines in,") && summary.contains(" 0 parsing errors"),
        "{summary}"
    );
    let (codes, _) = halog(&["-st"], &log);
    for (code, n) in [200, 404, 503, 400].iter().zip(per_status) {
        assert!(
            codes.lines().any(|l| l
                .split_whitespace()
                .eq([code.to_string().as_str(), n.to_string().as_str()])),
            "{code} x{n} missing in\n{codes}"
        );
    }
    let (servers, _) = halog(&["-srv"], &log);
    assert!(
        servers.contains("app/a1 ") && servers.contains("app/a2 "),
        "{servers}"
    );
    let (urls, _) = halog(&["-u"], &log);
    // halog -u drops the query string; every 200 was for /item.
    let item = urls
        .lines()
        .find(|l| l.ends_with(" /item"))
        .unwrap_or_default();
    assert!(item.starts_with(&format!("{} 0 ", per_status[0])), "{urls}");
    let down = urls
        .lines()
        .find(|l| l.ends_with(" /down"))
        .unwrap_or_default();
    assert!(
        down.starts_with(&format!("{n} {n} ", n = per_status[2])),
        "{urls}"
    );
    assert!(urls.contains(" /missing/"), "{urls}");
}
