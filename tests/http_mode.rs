//! `mode http` end to end: real nginx and counting HTTP servers behind a real
//! ringlb, driven by `curl` and raw sockets; each request's httplog line read
//! back from the log file (and by `halog`).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::http::{KeepAliveOrigin, OriginFault};
use support::servers::Nginx;
use support::{free_port, have, pattern, wait_until, Cfg, Proxy, Ringlb};

/// A ringlb in `mode http` (one shard, so round robin and pools are one
/// shard's) in front of `servers`, logging httplog lines to a file.
struct Lb {
    port: u16,
    log: PathBuf,
    _lb: Ringlb,
    _dir: tempfile::TempDir,
}

/// Backend `app` with servers `s1`, `s2`… on the loopback `ports`.
fn app(ports: &[u16]) -> Proxy {
    ports
        .iter()
        .enumerate()
        .fold(Proxy::new("app"), |b, (i, p)| {
            b.server(&format!("s{}", i + 1), format!("127.0.0.1:{p}"))
        })
}

fn start(servers: &[u16], extra_defaults: &str, extra_backend: &str) -> Lb {
    start_cfg(
        Cfg::new().defaults(extra_defaults),
        app(servers).extra(extra_backend),
    )
}

/// One server `s1` on the loopback `port`, with `extra` keys.
fn start_with_server(port: u16, extra: &str) -> Lb {
    start_cfg(
        Cfg::new(),
        Proxy::new("app").server_with("s1", format!("127.0.0.1:{port}"), extra),
    )
}

/// `cfg` (its global and defaults lines) with frontend `web` in front of the
/// backend `app`.
fn start_cfg(cfg: Cfg, app: Proxy) -> Lb {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("http.log");
    let port = free_port();
    let cfg = if cfg.has_timeouts() {
        cfg
    } else {
        // Generous, so a loaded machine does not time out requests between
        // steps of a test; tests of timeouts set their own.
        cfg.timeouts("1s", "10s", "5s")
            .timeout("http-request", "5s")
            .timeout("http-keep-alive", "10s")
    };
    let toml = cfg
        .mode("http")
        .log_format("httplog")
        .defaults("retries = 0")
        .frontend(
            Proxy::new("web")
                .port(port)
                .default_backend("app")
                .log(log.display()),
        )
        .backend(app)
        .build();
    let lb = Ringlb::start(&toml, &["--shards", "1"]);
    Lb {
        port,
        log,
        _lb: lb,
        _dir: dir,
    }
}

impl Lb {
    /// The first `n` log lines (waits, bounded, for the writer thread).
    fn lines(&self, n: usize) -> Vec<String> {
        let read = || {
            std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        wait_until(Duration::from_secs(5), || read().len() >= n);
        read()
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Everything the proxy sends back on a new connection for `request`,
    /// until it closes (or the read timeout).
    fn exchange_to_end(&self, request: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        got
    }

    /// Asserts that the first log line shows `status` and termination `flags`.
    fn assert_first_line_has(&self, status: &str, flags: &str) {
        let lines = self.lines(1);
        assert!(
            lines[0].contains(&format!(" {status} ")) && lines[0].contains(&format!(" {flags} ")),
            "{}",
            lines[0]
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// `GET path` (Host: x) on `s`, and its response as [`read_response`] reads it.
fn get(s: &mut TcpStream, path: &str) -> (u16, String, Vec<u8>) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    read_response(s, false)
}

/// One response read off `s`: status, head text, body (by its framing).
fn read_response(s: &mut TcpStream, head_request: bool) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            // A signal for the test process (a child exiting) is no answer.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => {
                let why = format!("{other:?} after {:?}", String::from_utf8_lossy(&buf));
                return (0, why, Vec::new());
            }
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = head[9..12].parse().unwrap();
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if head_request || status == 204 || status == 304 || status < 200 {
        return (status, head, body);
    }
    if let Some(l) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
    {
        body.resize(l.trim().parse().unwrap(), 0);
        s.read_exact(&mut body).unwrap();
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                s.read_exact(&mut byte).unwrap();
                line.push(byte[0]);
            }
            let n = usize::from_str_radix(std::str::from_utf8(&line).unwrap().trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            s.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        s.read_to_end(&mut body).unwrap();
    }
    (status, head, body)
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl");
    (String::from_utf8_lossy(&out.stderr).into(), out.stdout)
}

/// Uploads `file` (holding `data`) with curl through `lb` to an echoing
/// [`KeepAliveOrigin`] and asserts that the same bytes come back with
/// `Content-Length` framing up and down, then chunked up and down.
fn assert_echoes_both_framings(lb: &Lb, file: &std::path::Path, data: &[u8]) {
    let upload = format!("@{}", file.display());
    let (err, out) = curl(&["--data-binary", &upload, &lb.url("/echo")]);
    assert!(out == data, "length body: {} bytes back; {err}", out.len());
    let (err, out) = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &upload,
        &lb.url("/chunked"),
    ]);
    assert!(out == data, "chunked body: {} bytes back; {err}", out.len());
}

#[test]
fn curl_reuses_one_client_connection_and_each_request_is_logged() {
    if !have("nginx") || !have("curl") {
        return;
    }
    let nginx = Nginx::start(&[("a.txt", "alpha\n"), ("b.txt", "beta\n")]);
    let lb = start(&[nginx.port], "", "");
    let (err, out) = curl(&["-v", &lb.url("/a.txt"), &lb.url("/b.txt")]);
    assert_eq!(out, b"alpha\nbeta\n");
    assert!(err.contains("Re-using existing connection"), "{err}");
    let lines = lb.lines(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains(" web app/s1 ") && lines[0].contains(" 200 "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with("\"GET /a.txt HTTP/1.1\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with("\"GET /b.txt HTTP/1.1\""),
        "{}",
        lines[1]
    );
    // The same client port: one connection.
    let port = |l: &str| l.split_whitespace().nth(5).unwrap().to_string();
    assert_eq!(port(&lines[0]), port(&lines[1]));
}

#[test]
fn each_request_on_one_connection_is_balanced_round_robin() {
    let a = KeepAliveOrigin::start("A", OriginFault::None);
    let b = KeepAliveOrigin::start("B", OriginFault::None);
    let lb = start(&[a.port, b.port], "", "balance = \"roundrobin\"");
    let mut s = lb.connect();
    let mut seen = String::new();
    for _ in 0..6 {
        let (status, _, body) = get(&mut s, "/");
        assert_eq!(status, 200);
        seen.push_str(std::str::from_utf8(&body).unwrap());
    }
    assert!(seen == "ABABAB" || seen == "BABABA", "{seen}");
    assert_eq!(a.requests(), 3);
    assert_eq!(b.requests(), 3);
}

#[test]
fn bodies_of_64_mib_cross_byte_exact_both_ways() {
    if !have("curl") || !have("nginx") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(7, 64 << 20);
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &data).unwrap();
    let origin = KeepAliveOrigin::start("E", OriginFault::None);
    let lb = start(&[origin.port], "", "");
    assert_echoes_both_framings(&lb, &file, &data);
    // A static file from nginx.
    let nginx = Nginx::start(&[("big.bin", "")]);
    std::fs::write(nginx.root.join("big.bin"), &data).unwrap();
    let lb2 = start(&[nginx.port], "", "");
    let (err, out) = curl(&[&lb2.url("/big.bin")]);
    assert!(out == data, "nginx file: {} bytes; {err}", out.len());
    let lines = lb2.lines(1);
    let bytes: usize = lines[0]
        .split_whitespace()
        .nth(11)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        lines[0].contains(" 200 ") && bytes > data.len(),
        "{}",
        lines[0]
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let origin = KeepAliveOrigin::start("P", OriginFault::None);
    let lb = start(&[origin.port], "", "");
    let mut s = lb.connect();
    s.write_all(
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /204 HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /4 HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    .unwrap();
    let (st, _, body) = read_response(&mut s, false);
    assert_eq!((st, body.as_slice()), (200, &b"P"[..]));
    let (st, _, body) = read_response(&mut s, false);
    assert_eq!((st, body.as_slice()), (200, &b"hello"[..]));
    let (st, head, body) = read_response(&mut s, false);
    assert_eq!(st, 204, "{head}");
    assert!(body.is_empty());
    let (st, head, _) = read_response(&mut s, true);
    assert_eq!(st, 200);
    assert!(head.contains("Content-Length: 1"), "{head}");
    let (st, _, body) = read_response(&mut s, false);
    assert_eq!((st, body.as_slice()), (200, &b"abcde"[..]));
    assert_eq!(lb.lines(5).len(), 5);
}

#[test]
fn head_and_304_from_nginx_have_no_body() {
    if !have("nginx") {
        return;
    }
    let nginx = Nginx::start(&[("x.html", "0123456789")]);
    let lb = start(&[nginx.port], "", "");
    let mut s = lb.connect();
    s.write_all(b"HEAD /x.html HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (st, head, _) = read_response(&mut s, true);
    assert_eq!(st, 200);
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("ETag: "))
        .expect("etag")
        .to_string();
    s.write_all(
        format!("GET /x.html HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let (st, _, _) = read_response(&mut s, false);
    assert_eq!(st, 304);
    // Still in step: the next response is the file.
    let (st, _, body) = get(&mut s, "/x.html");
    assert_eq!((st, body.as_slice()), (200, &b"0123456789"[..]));
}

#[test]
fn expect_100_continue_is_relayed_before_the_body() {
    let origin = KeepAliveOrigin::start("C", OriginFault::None);
    let lb = start(&[origin.port], "", "");
    let mut s = lb.connect();
    s.write_all(
        b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    // Nothing of the body is sent until the interim response arrives.
    let (st, _, _) = read_response(&mut s, false);
    assert_eq!(st, 100);
    s.write_all(b"data").unwrap();
    let (st, _, body) = read_response(&mut s, false);
    assert_eq!((st, body.as_slice()), (200, &b"data"[..]));
}

#[test]
fn server_closing_mid_response_truncates_and_logs_sd() {
    let origin = KeepAliveOrigin::start("M", OriginFault::CloseMidResponse);
    let lb = start(&[origin.port], "", "");
    let got = lb.exchange_to_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(got.starts_with(b"HTTP/1.1 200"));
    assert!(got.len() < 100_000, "the client sees the truncation");
    lb.assert_first_line_has("200", "SD--");
}

#[test]
fn server_closing_before_the_response_gives_502_sh() {
    let origin = KeepAliveOrigin::start("X", OriginFault::CloseBeforeResponse);
    let lb = start(&[origin.port], "", "");
    let got = lb.exchange_to_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(got, ringlb::http::errors::error_response(502).unwrap());
    lb.assert_first_line_has("502", "SH--");
}

#[test]
fn no_server_answers_haproxys_503() {
    let closed = free_port();
    let lb = start(&[closed], "", "");
    let got = lb.exchange_to_end(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(got, ringlb::http::errors::error_response(503).unwrap());
    lb.assert_first_line_has("503", "SC--");
}

#[test]
fn slowloris_is_cut_at_timeout_http_request_with_408() {
    let origin = KeepAliveOrigin::start("S", OriginFault::None);
    let lb = start_cfg(
        Cfg::new()
            .timeouts("1s", "5s", "3s")
            .timeout("http-request", "1s"),
        app(&[origin.port]),
    );
    let mut s = lb.connect();
    let t0 = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    // Trickle a header byte at a time; the proxy answers while we write.
    let mut got = Vec::new();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    for _ in 0..100 {
        let _ = s.write_all(b"X");
        let mut b = [0u8; 512];
        match s.read(&mut b) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    assert!(
        got.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert_eq!(origin.requests(), 0);
    lb.assert_first_line_has("408", "cR--");
}

#[test]
fn oversized_header_block_is_refused_while_another_client_flows() {
    let origin = KeepAliveOrigin::start("O", OriginFault::None);
    let lb = start(&[origin.port], "", "");
    let mut good = lb.connect();
    assert_eq!(get(&mut good, "/").0, 200);
    let mut bad = lb.connect();
    // Far more than the proxy reads before answering: the 400 must still
    // arrive, not be destroyed by a reset on close.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let _ = bad.write_all(big.as_bytes());
    let (st, _, _) = read_response(&mut bad, false);
    assert_eq!(st, 400);
    // A lingering close: FIN after the answer, not a reset.
    let mut rest = Vec::new();
    assert_eq!(bad.read_to_end(&mut rest).map_err(|e| e.kind()), Ok(0));
    assert_eq!(get(&mut good, "/").0, 200);
    assert_eq!(origin.requests(), 2);
}

#[test]
fn upgrade_turns_into_an_echo_tunnel() {
    let origin = KeepAliveOrigin::start("W", OriginFault::None);
    let lb = start(&[origin.port], "", "");
    let mut s = lb.connect();
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .unwrap();
    let (st, head, _) = read_response(&mut s, false);
    assert_eq!(st, 101, "{head}");
    for msg in [&b"ping"[..], b"\x81\x05hello", b"GET / HTTP/1.1\r\n\r\n"] {
        s.write_all(msg).unwrap();
        let mut back = vec![0; msg.len()];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
    }
    drop(s);
    let lines = lb.lines(1);
    assert!(lines[0].contains(" 101 "), "{}", lines[0]);
}

#[test]
fn idle_server_connections_are_reused_across_clients() {
    let origin = KeepAliveOrigin::start("R", OriginFault::None);
    let lb = start(&[origin.port], "", "");
    let mut total = 0;
    for _ in 0..4 {
        let mut s = lb.connect();
        for _ in 0..3 {
            assert_eq!(get(&mut s, "/").0, 200);
            total += 1;
        }
    }
    assert_eq!(origin.requests(), total);
    // http-reuse safe: each client's first request opens a connection; the
    // rest ride idle ones, whoever parked them.
    assert!(
        origin.accepted() <= 4,
        "{} connections for {total} requests",
        origin.accepted()
    );
}

#[test]
fn a_pooled_connection_the_server_closed_is_not_seen_by_the_client() {
    let origin = KeepAliveOrigin::start("Z", OriginFault::CloseAfterResponse);
    let lb = start(&[origin.port], "", "");
    let mut s = lb.connect();
    for i in 0..5 {
        let (st, head, body) = get(&mut s, "/");
        assert_eq!(
            (st, body.as_slice()),
            (200, &b"Z"[..]),
            "request {i}: {head}; log: {:?}",
            lb.lines(i + 1)
        );
    }
    assert_eq!(origin.requests(), 5);
    assert_eq!(origin.accepted(), 5);
}

#[test]
fn halog_reads_the_log_without_errors() {
    if !have("halog") {
        return;
    }
    let origin = KeepAliveOrigin::start("H", OriginFault::None);
    let lb = start(&[origin.port], "", "");
    let mut s = lb.connect();
    for i in 0..50 {
        assert_eq!(get(&mut s, &format!("/item?id={i}")).0, 200);
    }
    assert_eq!(get(&mut s, "/204").0, 204);
    let lines = lb.lines(51);
    assert_eq!(lines.len(), 51);
    let out = Command::new("sh")
        .args(["-c", &format!("halog -st < {}", lb.log.display())])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("51 lines in") && stderr.contains(" 0 parsing errors"),
        "{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["200", "50"]),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["204", "1"]),
        "{stdout}"
    );
}

/// The fields of an httplog line that do not depend on time or ports:
/// frontend, backend/server, which timers ran (-1 or not), status, captures,
/// termination state, connection counts, queues, request line.
fn stable_fields(line: &str) -> Vec<String> {
    let at = line.find(" [").expect("accept date");
    let rest = &line[at..];
    let rest = &rest[rest.find("] ").unwrap() + 2..];
    let f: Vec<&str> = rest.splitn(11, ' ').collect();
    let timers: Vec<&str> = f[2]
        .split('/')
        .map(|t| if t == "-1" { "-1" } else { "t" })
        .collect();
    vec![
        f[0].into(),
        f[1].into(),
        timers.join("/"),
        f[3].into(),
        f[5].into(),
        f[6].into(),
        f[7].into(),
        // actconn/feconn count whatever else the machine runs at that moment
        // (haproxy's own readiness probe among them): not compared.
        f[8].split('/').skip(2).collect::<Vec<_>>().join("/"),
        f[9].into(),
        f[10].into(),
    ]
}

#[test]
fn httplog_lines_match_haproxys_field_by_field() {
    if !have("haproxy") || !have("nginx") {
        return;
    }
    let nginx = Nginx::start(&[("index.html", "hi\n")]);
    let closed = free_port();
    let hport = free_port();
    let hport2 = free_port();
    let h = support::servers::Haproxy::start(
        &format!(
            "global\n  log stdout format raw local0\ndefaults\n  mode http\n  log global\n  option httplog\n  retries 0\n  timeout connect 1s\n  timeout client 5s\n  timeout server 3s\n  timeout http-request 1s\n\
             frontend web\n  bind 127.0.0.1:{hport}\n  default_backend app\nbackend app\n  server s1 127.0.0.1:{}\n\
             frontend web2\n  bind 127.0.0.1:{hport2}\n  default_backend app2\nbackend app2\n  server s1 127.0.0.1:{closed}\n",
            nginx.port
        ),
        &[hport],
    );
    // The same timeouts as the haproxy above.
    let timeouts = Cfg::new()
        .timeouts("1s", "5s", "3s")
        .timeout("http-request", "1s");
    let lb = start_cfg(timeouts.clone(), app(&[nginx.port]));
    let lb_down = start_cfg(timeouts, app(&[closed]));
    // Each exchange: what the client sends, then whether it waits for the
    // proxy's close.
    let exchanges: [(&[u8], bool); 3] = [
        (
            b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            true,
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", true),
        (b"GET / HT", true),
    ];
    let run = |port: u16, raw: &[u8]| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    };
    for (raw, _) in exchanges {
        let a = run(hport, raw);
        let b = run(lb.port, raw);
        assert_eq!(a.get(..12), b.get(..12), "{}", String::from_utf8_lossy(raw));
    }
    let a = run(hport2, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    let b = run(lb_down.port, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(a.get(..12), b.get(..12));
    // haproxy logs a request when its stream ends, which under load can come
    // after the next exchange's line; its readiness probe (a connection
    // closed at once) is logged `CR` or `PR` with `<BADREQ>`. So its lines
    // are put in exchange order by what each exchange is sure to show, and
    // the probe's is whatever is left over.
    let order = |l: &String| -> Option<usize> {
        if l.contains("GET /index.html") {
            Some(0)
        } else if l.contains(" PR-- ") && l.contains("<BADREQ>") {
            // The bad header, or the probe: resolved below.
            Some(1)
        } else if l.contains(" cR-- ") {
            Some(2)
        } else if l.contains(" web2 ") {
            Some(3)
        } else {
            None
        }
    };
    let lines = || -> Vec<String> {
        let mut by_exchange: Vec<Option<String>> = vec![None; 4];
        for l in h.output().into_iter().filter(|l| l.contains(" [")) {
            if let Some(i) = order(&l) {
                // Of two `PR` lines the later is the exchange's: the probe's
                // stream ended before any exchange began.
                by_exchange[i] = Some(l);
            }
        }
        by_exchange.into_iter().flatten().collect()
    };
    assert!(
        wait_until(Duration::from_secs(5), || lines().len() >= 4),
        "{:#?}",
        h.output()
    );
    let theirs = lines();
    let mut ours = lb.lines(3);
    ours.extend(lb_down.lines(1));
    for (t, o) in theirs.iter().zip(&ours) {
        let mut want = stable_fields(t);
        // Names differ only where the configs name servers differently.
        want[0] = want[0].replace("web2", "web");
        want[1] = want[1].replace("app2/", "app/");
        assert_eq!(stable_fields(o), want, "\nhaproxy: {t}\nringlb:  {o}");
    }
}

#[test]
fn expect_100_continue_to_a_server_that_never_sends_100() {
    // The server reads the whole request before answering, as an HTTP/1.0
    // server would; the client stops waiting for `100` and sends its body.
    let l = support::local_listener();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 1024];
        while !(got.ends_with(b"\r\n\r\ndata")) {
            match s.read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
        let _ = s.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
    });
    let lb = start(&[port], "", "");
    let mut s = lb.connect();
    s.write_all(
        b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .unwrap();
    // Like curl: wait a little for `100 Continue`, then send anyway.
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 64];
    assert!(
        s.read(&mut b).is_err(),
        "no interim response from this server"
    );
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"data").unwrap();
    let (st, _, body) = read_response(&mut s, false);
    assert_eq!((st, body.as_slice()), (201, &b"ok"[..]));
}

#[test]
fn server_maxconn_counts_requests_in_flight_not_connections() {
    // maxconn 1: two clients holding keep-alive connections still both get
    // answers, because the slot is held only while a request is in flight.
    let origin = KeepAliveOrigin::start("M", OriginFault::None);
    let dir_lb = start_with_server(origin.port, "maxconn = 1");
    let mut a = dir_lb.connect();
    let mut b = dir_lb.connect();
    for _ in 0..3 {
        for s in [&mut a, &mut b] {
            let (st, _, body) = get(s, "/");
            assert_eq!((st, body.as_slice()), (200, &b"M"[..]));
        }
    }
    let lines = dir_lb.lines(6);
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" 200 ") && l.contains(" ---- ")),
        "{lines:?}"
    );
}

#[test]
fn httpclose_closes_both_sides_after_each_response() {
    let origin = KeepAliveOrigin::start("C", OriginFault::None);
    let lb = start(&[origin.port], "httpclose = true", "");
    for _ in 0..3 {
        let mut s = lb.connect();
        let (st, head, body) = get(&mut s, "/");
        assert_eq!((st, body.as_slice()), (200, &b"C"[..]));
        assert!(head.contains("Connection: close"), "{head}");
        let mut rest = Vec::new();
        assert_eq!(
            s.read_to_end(&mut rest).unwrap(),
            0,
            "closed after the response"
        );
    }
    assert_eq!(origin.accepted(), 3, "no server connection reused");
}

#[test]
fn bodies_cross_byte_exact_on_the_copy_path_too() {
    if !have("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(11, 8 << 20);
    let file = dir.path().join("body.bin");
    std::fs::write(&file, &data).unwrap();
    let origin = KeepAliveOrigin::start("E", OriginFault::None);
    let lb = start_cfg(
        Cfg::new().global("tune = { splice = false }"),
        app(&[origin.port]),
    );
    assert_echoes_both_framings(&lb, &file, &data);
}

#[test]
fn http_reuse_never_and_always() {
    // Four clients one after the other, three requests each.
    let run = |reuse: &str| {
        let origin = KeepAliveOrigin::start("R", OriginFault::None);
        let lb = start(&[origin.port], "", &format!("http-reuse = \"{reuse}\""));
        for _ in 0..4 {
            let mut s = lb.connect();
            for _ in 0..3 {
                assert_eq!(get(&mut s, "/").0, 200);
            }
        }
        assert_eq!(origin.requests(), 12);
        origin.accepted()
    };
    // always: the first request of each client takes the idle connection too.
    assert_eq!(run("always"), 1);
    // never: each client keeps its own server connection for its requests.
    assert_eq!(run("never"), 4);
    assert_eq!(run("safe"), 4);
}

#[test]
fn a_soft_stop_closes_idle_keep_alive_connections_at_once() {
    let origin = KeepAliveOrigin::start("K", OriginFault::None);
    let mut lb = start_cfg(
        Cfg::new()
            .timeouts("1s", "60s", "60s")
            .timeout("http-keep-alive", "60s"),
        app(&[origin.port]),
    );
    let mut s = lb.connect();
    assert_eq!(get(&mut s, "/").0, 200);
    let t0 = Instant::now();
    // Without closing idle connections the drain would last the 60 s
    // keep-alive timeout.
    let st = lb
        ._lb
        .stop(Duration::from_secs(20))
        .expect("ringlb stopped");
    assert!(st.success());
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap_or(0), 0);
    assert!(t0.elapsed() < Duration::from_secs(20));
}

#[test]
fn forwardfor_appends_the_client_address_and_hop_by_hop_headers_stay_behind() {
    let (port, seen) = support::http::start_recording_origin();
    let lb = start(&[port], "forwardfor = true", "");
    let mut s = lb.connect();
    s.write_all(
        b"GET /f HTTP/1.1\r\nHost: x\r\nKeep-Alive: 300\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_response(&mut s, false).0, 204);
    let head = String::from_utf8(seen.lock().unwrap()[0].clone()).unwrap();
    assert_eq!(
        head,
        "GET /f HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n"
    );
}

#[test]
fn balance_uri_sends_one_uri_to_one_server_from_every_connection() {
    let a = KeepAliveOrigin::start("A", OriginFault::None);
    let b = KeepAliveOrigin::start("B", OriginFault::None);
    let lb = start(&[a.port, b.port], "", "balance = \"uri\"");
    let mut by_uri = std::collections::HashMap::new();
    for round in 0..3 {
        let mut s = lb.connect();
        for i in 0..8 {
            let (st, _, body) = get(&mut s, &format!("/item/{i}?r={round}"));
            assert_eq!(st, 200);
            let prev = by_uri.insert(i, body.clone());
            assert!(prev.is_none() || prev == Some(body), "/item/{i} moved");
        }
    }
    let servers: std::collections::HashSet<_> = by_uri.values().collect();
    assert_eq!(servers.len(), 2, "eight paths hash to both servers");
}

/// Which server answers each of `paths` (one connection, keep-alive), with
/// extra request headers.
fn who_answers(lb: &Lb, paths: &[String], headers: &[String]) -> Vec<Vec<u8>> {
    let mut s = lb.connect();
    paths
        .iter()
        .zip(headers)
        .map(|(p, h)| {
            s.write_all(format!("GET {p} HTTP/1.1\r\n{h}\r\n\r\n").as_bytes())
                .unwrap();
            let (st, _, body) = read_response(&mut s, false);
            assert_eq!(st, 200, "{p}");
            body
        })
        .collect()
}

#[test]
fn balance_options_choose_what_is_hashed() {
    let servers: Vec<KeepAliveOrigin> = ["A", "B", "C", "D"]
        .into_iter()
        .map(|n| KeepAliveOrigin::start(n, OriginFault::None))
        .collect();
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let distinct = |v: &[Vec<u8>]| v.iter().collect::<std::collections::HashSet<_>>().len();
    let host = vec!["Host: x".to_string(); 16];
    // `depth 1`: only the first directory counts; 16 files of /a/ on one
    // server, while without it the same paths spread.
    let paths: Vec<String> = (0..16).map(|i| format!("/a/{i}")).collect();
    let lb = start(&ports, "", "balance = \"uri depth 1\"");
    assert_eq!(distinct(&who_answers(&lb, &paths, &host)), 1, "depth 1");
    let lb = start(&ports, "", "balance = \"uri\"");
    assert!(distinct(&who_answers(&lb, &paths, &host)) > 1, "whole path");
    // `whole`: the query string counts too.
    let queries: Vec<String> = (0..16).map(|i| format!("/q?i={i}")).collect();
    let lb = start(&ports, "", "balance = \"uri\"");
    assert_eq!(distinct(&who_answers(&lb, &queries, &host)), 1, "no query");
    let lb = start(&ports, "", "balance = \"uri whole\"");
    assert!(
        distinct(&who_answers(&lb, &queries, &host)) > 1,
        "with query"
    );
    // `len 3`: only "/a/" of "/a/N".
    let lb = start(&ports, "", "balance = \"uri len 3\"");
    assert_eq!(distinct(&who_answers(&lb, &paths, &host)), 1, "len 3");
    // `hdr(host) use_domain_only`: www.example.com and api.example.com are
    // one domain.
    let hosts: Vec<String> = (0..16).map(|i| format!("Host: h{i}.example.com")).collect();
    let same = vec!["/".to_string(); 16];
    let lb = start(&ports, "", "balance = \"hdr(host) use_domain_only\"");
    assert_eq!(
        distinct(&who_answers(&lb, &same, &hosts)),
        1,
        "use_domain_only"
    );
    let lb = start(&ports, "", "balance = \"hdr(host)\"");
    assert!(distinct(&who_answers(&lb, &same, &hosts)) > 1, "whole host");
    // An option an algorithm does not take is refused with its name.
    let dir = tempfile::tempdir().unwrap();
    let cfg = support::write_file(
        dir.path(),
        "bad.toml",
        &Cfg::new()
            .backend(
                Proxy::new("b")
                    .balance("roundrobin depth 2")
                    .server("s", "127.0.0.1:1"),
            )
            .build(),
    );
    let (code, _, err) = support::ringlb_cmd(&["check", "-f", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("balance roundrobin: unknown option \"depth\""),
        "{err}"
    );
}

#[test]
fn a_request_that_meets_a_dead_reused_connection_is_retried_if_idempotent() {
    let origin = KeepAliveOrigin::start("D", OriginFault::DropSecondRequest);
    let lb = start(&[origin.port], "", "http-reuse = \"always\"");
    // Each GET after the first lands on the parked connection, which the
    // server drops at that very request: retried on a new one, unseen.
    for i in 0..3 {
        let mut s = lb.connect();
        let (st, _, body) = get(&mut s, "/");
        assert_eq!((st, body.as_slice()), (200, &b"D"[..]), "request {i}");
    }
    assert_eq!(origin.requests(), 3);
    assert_eq!(origin.accepted(), 3);
    // A POST is not replayed: the client gets the 502.
    let mut s = lb.connect();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .unwrap();
    assert_eq!(read_response(&mut s, false).0, 502);
}

#[test]
fn the_http_quickstart_config_is_valid() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/quickstart-http.toml");
    let (code, out, err) = support::ringlb_cmd(&["check", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn http_server_close_keeps_the_client_and_closes_the_server_side() {
    let origin = KeepAliveOrigin::start("S", OriginFault::None);
    let lb = start(&[origin.port], "http-server-close = true", "");
    let mut s = lb.connect();
    for _ in 0..3 {
        let (st, head, body) = get(&mut s, "/");
        assert_eq!((st, body.as_slice()), (200, &b"S"[..]));
        assert!(!head.contains("Connection: close"), "{head}");
    }
    assert_eq!(origin.accepted(), 3, "a server connection per request");
    let lines = lb.lines(3);
    let port = |l: &str| l.split_whitespace().nth(5).unwrap().to_string();
    assert!(
        lines.iter().all(|l| port(l) == port(&lines[0])),
        "{lines:?}"
    );
}

#[test]
fn a_server_that_never_answers_gives_504_sh_at_timeout_server() {
    // Accepts, reads, never answers.
    let l = support::local_listener();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().take(4) {
            held.push(c);
        }
    });
    let lb = start_cfg(Cfg::new().timeouts("1s", "5s", "500ms"), app(&[port]));
    let got = lb.exchange_to_end(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(got, ringlb::http::errors::error_response(504).unwrap());
    let lines = lb.lines(1);
    let f = stable_fields(&lines[0]);
    assert_eq!(f[2], "t/t/t/-1/t", "{}", lines[0]);
    assert_eq!(
        (f[3].as_str(), f[6].as_str()),
        ("504", "sH--"),
        "{}",
        lines[0]
    );
}

#[test]
fn garbage_and_aborts_leave_the_proxy_serving_with_no_slot_held() {
    let origin = KeepAliveOrigin::start("G", OriginFault::None);
    // maxconn 1: a slot leaked by any failure below would make the last
    // requests queue and time out (503 sQ).
    let lb = start_with_server(origin.port, "maxconn = 1");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let valid: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
        b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ];
    for i in 0..200 {
        let mut s = lb.connect();
        let base = valid[i % valid.len()];
        let mut msg = base.to_vec();
        match rnd() % 4 {
            // Cut anywhere, then close.
            0 => msg.truncate((rnd() as usize) % msg.len()),
            // A byte flipped anywhere.
            1 => {
                let at = (rnd() as usize) % msg.len();
                msg[at] = rnd() as u8;
            }
            // Random bytes.
            2 => msg = (0..(rnd() % 200)).map(|_| rnd() as u8).collect(),
            // Whole, twice (pipelined), then an abort mid-response.
            _ => msg.extend_from_slice(base),
        }
        let _ = s.write_all(&msg);
        if i % 10 == 0 {
            let mut b = [0u8; 64];
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = s.read(&mut b);
        }
    }
    for _ in 0..3 {
        let mut s = lb.connect();
        let (st, _, body) = get(&mut s, "/");
        assert_eq!((st, body.as_slice()), (200, &b"G"[..]));
    }
}

#[test]
fn request_timers_start_at_the_first_byte_not_the_accept() {
    let origin = KeepAliveOrigin::start("T", OriginFault::None);
    let lb = start_cfg(
        Cfg::new()
            .timeouts("1s", "5s", "3s")
            .timeout("http-request", "5s"),
        app(&[origin.port]),
    );
    let mut s = lb.connect();
    // Idle for 1 s (HAProxy's Ti), then a head that takes 200 ms (TR): the
    // timers must count the 200 ms and not the idle second.
    std::thread::sleep(Duration::from_millis(1000));
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(b"\r\n").unwrap();
    assert_eq!(read_response(&mut s, false).0, 200);
    let line = &lb.lines(1)[0];
    let timers: Vec<i64> = line
        .split_whitespace()
        .nth(9)
        .unwrap()
        .split('/')
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(
        (150..1000).contains(&timers[0]),
        "TR counts the head only: {line}"
    );
    assert!(
        (150..1000).contains(&timers[4]),
        "Ta starts with the request: {line}"
    );
}

#[test]
fn a_server_streaming_its_answer_while_reading_the_body_is_not_deadlocked() {
    if !have("curl") {
        return;
    }
    // Echoes each piece of the request body as it arrives (a chunked
    // response written before the body has ended), as a streaming service
    // does: with the body sent before the response is read, both sides would
    // block once the socket buffers are full.
    let l = support::local_listener();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = std::io::BufReader::new(s);
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut r, &mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        let mut buf = vec![0u8; 65536];
        while len > 0 {
            let n = match r.read(&mut buf[..len.min(65536)]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => other.unwrap(),
            };
            assert!(n > 0);
            w.write_all(format!("{n:x}\r\n").as_bytes()).unwrap();
            w.write_all(&buf[..n]).unwrap();
            w.write_all(b"\r\n").unwrap();
            len -= n;
        }
        w.write_all(b"0\r\n\r\n").unwrap();
    });
    let lb = start(&[port], "", "");
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(5, 32 << 20);
    let file = dir.path().join("stream.bin");
    std::fs::write(&file, &data).unwrap();
    let (err, out) = curl(&[
        "-H",
        "Expect:",
        "--data-binary",
        &format!("@{}", file.display()),
        &lb.url("/stream"),
    ]);
    assert!(out == data, "{} bytes back; {err}", out.len());
    let line = &lb.lines(1)[0];
    assert!(line.contains(" 200 ") && line.contains(" ---- "), "{line}");
}

#[test]
fn a_request_killed_by_hard_stop_after_is_logged_kh() {
    let l = support::local_listener();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().take(2) {
            held.push(c);
        }
    });
    let mut lb = start_cfg(
        Cfg::new()
            .global("hard-stop-after = \"300ms\"")
            .timeouts("1s", "30s", "30s"),
        app(&[port]),
    );
    let mut s = lb.connect();
    s.write_all(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // The request is with the server once the proxy has connected.
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string("/proc/net/tcp")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!(":{port:04X} ")) && l.contains(" 01 "))
            .count()
            >= 2
    }));
    assert!(lb
        ._lb
        .stop(Duration::from_secs(10))
        .expect("stopped")
        .success());
    let line = &lb.lines(1)[0];
    assert!(
        line.contains(" KH-- ") && line.ends_with("\"GET /stuck HTTP/1.1\""),
        "{line}"
    );
}

#[test]
fn forwardfor_has_the_client_address_even_without_a_log() {
    let (origin, seen) = support::http::start_recording_origin();
    let port = free_port();
    let _lb = Ringlb::start(
        &Cfg::new()
            .mode("http")
            .defaults("forwardfor = true")
            .timeouts("1s", "5s", "3s")
            .frontend(Proxy::new("web").port(port).default_backend("app"))
            .backend(app(&[origin]))
            .build(),
        &["--shards", "1"],
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(get(&mut s, "/").0, 204);
    let head = String::from_utf8(seen.lock().unwrap()[0].clone()).unwrap();
    assert!(
        head.contains("\r\nX-Forwarded-For: 127.0.0.1\r\n"),
        "{head}"
    );
}

#[test]
fn balance_url_param_and_hdr_hash_what_the_request_carries() {
    let a = KeepAliveOrigin::start("A", OriginFault::None);
    let b = KeepAliveOrigin::start("B", OriginFault::None);
    for (balance, request) in [
        (
            "url_param(user)",
            "GET /p?x=1&user={} HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (
            "hdr(X-User)",
            "GET /p HTTP/1.1\r\nHost: x\r\nX-User: {}\r\n\r\n",
        ),
    ] {
        let lb = start(&[a.port, b.port], "", &format!("balance = \"{balance}\""));
        let mut by_user = std::collections::HashMap::new();
        for round in 0..3 {
            let mut s = lb.connect();
            for user in 0..8 {
                s.write_all(request.replace("{}", &format!("u{user}")).as_bytes())
                    .unwrap();
                let (st, _, body) = read_response(&mut s, false);
                assert_eq!(st, 200);
                let prev = by_user.insert(user, body.clone());
                assert!(
                    prev.is_none() || prev == Some(body),
                    "{balance}: u{user} moved in round {round}"
                );
            }
        }
        let servers: std::collections::HashSet<_> = by_user.values().collect();
        assert_eq!(servers.len(), 2, "{balance}: eight users on both servers");
    }
}

#[test]
fn use_backend_rules_route_each_request_of_one_connection() {
    let api = KeepAliveOrigin::start("API", OriginFault::None);
    let web = KeepAliveOrigin::start("WEB", OriginFault::None);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("http.log");
    let _lb = Ringlb::start(
        &Cfg::new()
            .mode("http")
            .log_format("httplog")
            .timeouts("1s", "10s", "5s")
            .frontend(
                Proxy::new("web")
                    .port(port)
                    .log(log.display())
                    .extra(r#"acl = { is_api = "path_beg -i /api/", down = "nbsrv(api) lt 1" }"#)
                    .extra(r#"use-backend = [{ backend = "api", if = "is_api !down" }]"#)
                    .default_backend("site"),
            )
            .backend(Proxy::new("api").server("a1", format!("127.0.0.1:{}", api.port)))
            .backend(Proxy::new("site").server("w1", format!("127.0.0.1:{}", web.port)))
            .build(),
        &["--shards", "1"],
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for (path, want) in [
        ("/api/users", "API"),
        ("/index.html", "WEB"),
        ("/API/x", "API"),
        ("/apix", "WEB"),
    ] {
        let (st, _, body) = get(&mut s, path);
        assert_eq!((st, body.as_slice()), (200, want.as_bytes()), "{path}");
    }
    assert!(wait_until(
        Duration::from_secs(5),
        || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
            >= 4
    ));
    let text = std::fs::read_to_string(&log).unwrap();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().nth(8).unwrap())
        .collect();
    assert_eq!(names, ["api/a1", "site/w1", "api/a1", "site/w1"]);
}

#[test]
fn http_requests_are_counted_in_show_stat() {
    let origin = KeepAliveOrigin::start("C", OriginFault::None);
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let _lb = Ringlb::start(
        &Cfg::new()
            .admin_socket(sock.display())
            .mode("http")
            .timeouts("1s", "10s", "5s")
            .frontend(Proxy::new("web").port(port).default_backend("app"))
            .backend(app(&[origin.port]))
            .build(),
        &["--shards", "1"],
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for path in ["/a", "/b", "/204"] {
        get(&mut s, path);
    }
    let show_stat = || {
        let mut c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        c.write_all(b"show stat\n").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    };
    let field = |csv: &str, px: &str, sv: &str, name: &str| -> String {
        support::clients::stat_field(csv, px, sv, name).unwrap_or_default()
    };
    // Counters are published by the shard; wait (bounded) for them.
    let ok = wait_until(Duration::from_secs(5), || {
        field(&show_stat(), "app", "BACKEND", "hrsp_2xx") == "3"
    });
    let csv = show_stat();
    assert!(ok, "{csv}");
    assert_eq!(field(&csv, "web", "FRONTEND", "hrsp_2xx"), "3", "{csv}");
    assert_eq!(field(&csv, "app", "s1", "hrsp_2xx"), "3", "{csv}");
}

/// Established TCP connections to `port` on loopback (`ss`).
fn established_to(port: u16) -> usize {
    let out = Command::new("ss")
        .args([
            "-Htn",
            "state",
            "established",
            &format!("( dport = :{port} )"),
        ])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn pool_max_conn_and_pool_purge_delay_bound_idle_server_connections() {
    if !have("curl") || !have("ss") {
        return;
    }
    let three = |lb: &Lb| {
        let (err, out) = curl(&[&lb.url("/a"), &lb.url("/b"), &lb.url("/c")]);
        assert_eq!(out, b"keptkeptkept", "{err}");
    };
    // Default (no limit): the second and third requests ride the first's
    // server connection, parked in the pool between requests.
    let o = KeepAliveOrigin::start("kept", OriginFault::None);
    let lb = start(&[o.port], "", "");
    three(&lb);
    assert_eq!((o.accepted(), o.requests()), (1, 3));
    // pool-max-conn 0: nothing is kept, each request connects anew.
    let o = KeepAliveOrigin::start("kept", OriginFault::None);
    let lb = start_with_server(o.port, "pool-max-conn = 0");
    three(&lb);
    assert_eq!((o.accepted(), o.requests()), (3, 3));
    // pool-purge-delay 100ms: the idle connection left after the last
    // request is closed within a few periods (half, rounded up, each one).
    let o = KeepAliveOrigin::start("kept", OriginFault::None);
    let lb = start_with_server(o.port, "pool-purge-delay = \"100ms\"");
    three(&lb);
    assert_eq!(o.accepted(), 1);
    assert!(
        wait_until(Duration::from_secs(5), || established_to(o.port) == 0),
        "the idle server connection is still open"
    );
    // The next request connects again.
    three(&lb);
    assert_eq!(o.accepted(), 2);
}

/// Whether two files hold the same bytes, read a MiB at a time; if not,
/// where they part (for the failure message).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> Result<(), String> {
    let (Ok(mut fa), Ok(mut fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return Err("a file is missing".into());
    };
    let (la, lb) = (fa.metadata().unwrap().len(), fb.metadata().unwrap().len());
    if la != lb {
        return Err(format!("{la} bytes sent, {lb} received"));
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return Ok(());
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if let Some(i) = (0..n).find(|&i| ba[i] != bb[i]) {
            return Err(format!("first difference at byte {}", at + i as u64));
        }
        at += n as u64;
    }
}

/// `show activity`'s `splice_path_bytes` total on the admin socket.
fn spliced_bytes(sock: &std::path::Path) -> u64 {
    let out = Command::new("socat")
        .args(["-t", "2", "-", &format!("UNIX-CONNECT:{}", sock.display())])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"show activity\n")?;
            c.wait_with_output()
        })
        .expect("socat");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("splice_path_bytes: "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_1_gib_body_crosses_byte_exact_both_ways_by_splice() {
    if !have("curl") || !have("nginx") || !have("socat") {
        return;
    }
    const GIB: u64 = 1 << 30;
    let nginx = Nginx::start(&[("1g.bin", "")]);
    let src = nginx.root.join("1g.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        for i in 0..128 {
            f.write_all(&pattern(100 + i, 8 << 20)).unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    // Down: nginx's file through ringlb.
    let sock_down = dir.path().join("down.sock");
    // Long data timeouts: a whole suite running at once (and writing its own
    // large files) can stall curl's or the origin's side for seconds; what is
    // tested here is bytes and splice, not timeouts.
    let global = |s: &std::path::Path| {
        Cfg::new()
            .admin_socket(s.display())
            .timeouts("1s", "60s", "60s")
            .timeout("http-request", "5s")
            .timeout("http-keep-alive", "10s")
    };
    let lb = start_cfg(global(&sock_down), app(&[nginx.port]));
    let down = dir.path().join("down.bin");
    // A loaded machine (the whole suite at once) may need more than the
    // helper's 20 s for a GiB: curl takes the last --max-time given.
    let (err, _) = curl(&[
        "--max-time",
        "180",
        "-o",
        down.to_str().unwrap(),
        &lb.url("/1g.bin"),
    ]);
    if let Err(d) = same_file(&src, &down) {
        panic!("download differs: {d}; {err}");
    }
    std::fs::remove_file(&down).unwrap();
    // Up and back: the origin echoes the body (Content-Length both ways).
    let origin = KeepAliveOrigin::start("E", OriginFault::None);
    let sock_up = dir.path().join("up.sock");
    let lb2 = start_cfg(global(&sock_up), app(&[origin.port]));
    let back = dir.path().join("back.bin");
    // `-T` streams the file (a PUT with its Content-Length).
    let (err, _) = curl(&[
        "--max-time",
        "180",
        "-T",
        src.to_str().unwrap(),
        "-o",
        back.to_str().unwrap(),
        &lb2.url("/echo"),
    ]);
    if let Err(d) = same_file(&src, &back) {
        panic!("echoed body differs: {d}; {err}\n{}", lb2._lb.output());
    }
    // The bodies went by splice (the shards publish their counts about once
    // a second): all but the first bytes, which leave with the head in one
    // send, of 1 GiB down through the first, 2 GiB through the second.
    const FIRST: u64 = 1 << 20;
    assert!(
        wait_until(Duration::from_secs(10), || spliced_bytes(&sock_down)
            >= GIB - FIRST),
        "down: {} bytes spliced",
        spliced_bytes(&sock_down)
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            spliced_bytes(&sock_up) >= 2 * (GIB - FIRST)
        }),
        "up and back: {} bytes spliced",
        spliced_bytes(&sock_up)
    );
}

#[test]
fn tune_http_maxhdr_sets_how_many_header_lines_a_request_may_have() {
    let origin = KeepAliveOrigin::start("H", OriginFault::None);
    let request = |n: usize| {
        let mut r = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..n {
            r.push_str(&format!("X-H{i}: v\r\n"));
        }
        r.push_str("\r\n");
        r
    };
    let status = |lb: &Lb, n: usize| {
        let mut s = lb.connect();
        s.write_all(request(n).as_bytes()).unwrap();
        read_response(&mut s, false).0
    };
    // HAProxy 2.6's default, 101: fewer lines than that pass (Host and 99
    // more), 101 are refused (checked against haproxy).
    let lb = start_cfg(Cfg::new(), app(&[origin.port]));
    assert_eq!(status(&lb, 99), 200);
    assert_eq!(status(&lb, 100), 400);
    let lb = start_cfg(
        Cfg::new().global("tune = { http-maxhdr = 150 }"),
        app(&[origin.port]),
    );
    assert_eq!(status(&lb, 148), 200);
    assert_eq!(status(&lb, 149), 400);
}
